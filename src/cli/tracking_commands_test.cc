#include "cli/tracking_commands.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace lathe::cli {
namespace {

TEST(Sparkline, ScalesBetweenTheFiniteMinimumAndMaximum) {
  EXPECT_EQ(Sparkline({0, 1, 2, 3, 4, 5, 6, 7}), "▁▂▃▄▅▆▇█");
  EXPECT_EQ(Sparkline({10, 0, 5}), "█▁▅");
}

TEST(Sparkline, FlatSeriesIsAFlatLine) {
  EXPECT_EQ(Sparkline({2.5, 2.5, 2.5}), "▄▄▄");
  EXPECT_EQ(Sparkline({}), "");
}

TEST(Sparkline, NonFiniteValuesDoNotStretchTheScale) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(Sparkline({0, nan, 7, inf, -inf}), "▁ ██▁");
}

TEST(HumanBytes, BinaryUnitsWithOneDecimal) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1024), "1.0 KiB");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(5ull << 20), "5.0 MiB");
  EXPECT_EQ(HumanBytes(3ull << 30), "3.0 GiB");
  EXPECT_EQ(HumanBytes(2ull << 50), "2.0 PiB");
  EXPECT_EQ(HumanBytes(4096ull << 50), "4096.0 PiB");
}

TEST(ParseTagFlags, KeyEqualsValue) {
  auto kv = ParseTagFlags({"team=cv", "note=a=b", "empty="});
  ASSERT_TRUE(kv.ok());
  ASSERT_EQ(kv->size(), 3u);
  EXPECT_EQ((*kv)[1], (std::pair<std::string, std::string>("note", "a=b")));
  EXPECT_EQ((*kv)[2].second, "");
  EXPECT_EQ(ParseTagFlags({"novalue"}).status().field(), "tag");
  EXPECT_EQ(ParseTagFlags({"=v"}).status().field(), "tag");
}

}  // namespace
}  // namespace lathe::cli
