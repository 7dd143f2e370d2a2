#include "tracking/metric_block.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace lathe::tracking {
namespace {

TEST(MetricBlock, SegmentsRoundTripAndConcatenate) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<Point> a{{0, 1700000000000, 1.5}, {1, 1700000000100, -inf}, {-5, 3, inf}};
  std::vector<Point> b{{std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(),
                        std::nan("")}};
  std::string bytes;
  AppendSegment(a, &bytes);
  AppendSegment(b, &bytes);
  std::vector<Point> out;
  ASSERT_TRUE(DecodeSegments(bytes, &out).ok());
  ASSERT_EQ(out.size(), 4u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out[i].step, a[i].step);
    EXPECT_EQ(out[i].timestamp, a[i].timestamp);
    EXPECT_EQ(out[i].value, a[i].value);
  }
  EXPECT_EQ(out[3].step, b[0].step);
  EXPECT_EQ(out[3].timestamp, b[0].timestamp);
  EXPECT_TRUE(std::isnan(out[3].value));
  std::vector<Point> junk;
  EXPECT_EQ(DecodeSegments(bytes.substr(0, bytes.size() - 3), &junk).code(), StatusCode::kDataLoss);
}

TEST(MetricBlock, Base64RoundTrip) {
  for (size_t n = 0; n < 20; ++n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(i * 37 + 200));
    std::string back;
    ASSERT_TRUE(Base64Decode(Base64Encode(s), &back));
    EXPECT_EQ(back, s);
  }
  std::string out;
  EXPECT_FALSE(Base64Decode("abc", &out));
  EXPECT_FALSE(Base64Decode("a!cd", &out));
}

TEST(MetricBlock, SummaryKeepsMinMaxLastAndSkipsNaN) {
  std::vector<Point> pts{{3, 10, 5}, {1, 11, -2}, {3, 12, std::nan("")}, {2, 13, 9}};
  BlockSummary s = Summarize(pts);
  EXPECT_EQ(s.count, 4);
  EXPECT_EQ(s.min_step, 1);
  EXPECT_EQ(s.max_step, 3);
  EXPECT_EQ(s.min.value, -2);
  EXPECT_EQ(s.max.value, 9);
  EXPECT_EQ(s.last.timestamp, 12);  // step 3, latest timestamp
  EXPECT_TRUE(std::isnan(s.last.value));
  BlockSummary t = Summarize({{4, 1, 100}});
  BlockSummary m = MergeSummaries(s, t);
  EXPECT_EQ(m.count, 5);
  EXPECT_EQ(m.max.value, 100);
  EXPECT_EQ(m.last.step, 4);
  BlockSummary nan_only = Summarize({{0, 0, std::nan("")}});
  EXPECT_FALSE(nan_only.has_min_max);
}

}  // namespace
}  // namespace lathe::tracking
