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

}  // namespace
}  // namespace lathe::cli
