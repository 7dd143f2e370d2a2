#include "serving/overload.h"

#include <gtest/gtest.h>

namespace lathe::serving {
namespace {

constexpr int64_t kMs = 1'000'000;

OverloadOptions Options() {
  return {.window_ns = 1000 * kMs,
          .slices = 10,
          .hold_ns = 200 * kMs,
          .recover_ratio = 0.8,
          .min_samples = 10};
}

// Records `n` latencies of `latency_ms` spread over the 100 ms before `now`.
void Feed(OverloadController& c, int64_t now, int64_t latency_ms, int n = 50) {
  for (int i = 0; i < n; ++i) c.Record(now - 100 * kMs + i * (100 * kMs / n), latency_ms * kMs);
}

TEST(OverloadController, P99IsWithinABucketOfTheTruth) {
  OverloadController c(100 * kMs, 2, Options());
  const int64_t now = 10'000 * kMs;
  for (int i = 1; i <= 1000; ++i) c.Record(now, int64_t{i} * 100'000);  // 0.1 .. 100 ms
  const double p99 = static_cast<double>(c.WindowP99Ns(now)) / kMs;
  EXPECT_GE(p99, 99.0);
  EXPECT_LE(p99, 99.0 * 1.25);
}

TEST(OverloadController, WindowForgetsOldSlices) {
  OverloadController c(100 * kMs, 2, Options());
  const int64_t t0 = 10'000 * kMs;
  Feed(c, t0, 500);
  EXPECT_GT(c.WindowP99Ns(t0), 400 * kMs);
  EXPECT_EQ(c.WindowP99Ns(t0 + 1200 * kMs), 0);  // a whole window later
}

TEST(OverloadController, ShedsLowestPriorityFirstNeverTheHighest) {
  OverloadController c(50 * kMs, 2, Options());  // 3 levels: may shed 2
  int64_t now = 10'000 * kMs;
  EXPECT_EQ(c.Level(now), 0);
  EXPECT_TRUE(c.Admits(2, 3, now));
  // Over the objective, but the first change waits out the hold time.
  Feed(c, now + 100 * kMs, 80);
  now += 100 * kMs;
  EXPECT_EQ(c.Level(now), 0);
  now += 200 * kMs;
  Feed(c, now, 80);
  EXPECT_EQ(c.Level(now), 1);
  EXPECT_TRUE(c.Admits(0, 3, now));
  EXPECT_TRUE(c.Admits(1, 3, now));
  EXPECT_FALSE(c.Admits(2, 3, now));
  // The window restarted: the next raise needs new samples and the hold.
  now += 100 * kMs;
  EXPECT_EQ(c.Level(now), 1);
  now += 150 * kMs;
  Feed(c, now, 80);
  EXPECT_EQ(c.Level(now), 2);
  EXPECT_TRUE(c.Admits(0, 3, now));
  EXPECT_FALSE(c.Admits(1, 3, now));
  // Capped: priority 1 is never shed.
  for (int i = 0; i < 5; ++i) {
    now += 300 * kMs;
    Feed(c, now, 500);
    EXPECT_EQ(c.Level(now), 2);
    EXPECT_TRUE(c.Admits(0, 3, now));
  }
}

TEST(OverloadController, RecoversWithHysteresis) {
  OverloadController c(50 * kMs, 2, Options());
  int64_t now = 10'000 * kMs;
  c.Level(now);
  now += 300 * kMs;
  Feed(c, now, 80);
  ASSERT_EQ(c.Level(now), 1);
  // Between 80 % and 100 % of the objective: hold the level.
  for (int i = 0; i < 4; ++i) {
    now += 300 * kMs;
    Feed(c, now, 45);
    EXPECT_EQ(c.Level(now), 1);
  }
  // Below 80 % over the window (the 45 ms samples age out): step down.
  for (int i = 0; i < 4; ++i) {
    now += 300 * kMs;
    Feed(c, now, 30);
    c.Level(now);
  }
  EXPECT_EQ(c.Level(now), 0);
  EXPECT_TRUE(c.Admits(2, 3, now));
}

TEST(OverloadController, StepsDownWhenNothingIsMeasured) {
  OverloadController c(50 * kMs, 2, Options());
  int64_t now = 10'000 * kMs;
  c.Level(now);
  now += 300 * kMs;
  Feed(c, now, 80);
  ASSERT_EQ(c.Level(now), 1);
  now += 500 * kMs;  // quiet, but less than a window
  EXPECT_EQ(c.Level(now), 1);
  now += 600 * kMs;
  EXPECT_EQ(c.Level(now), 0);
}

TEST(OverloadController, TooFewSamplesDoNotRaise) {
  OverloadController c(50 * kMs, 2, Options());
  int64_t now = 10'000 * kMs;
  c.Level(now);
  now += 300 * kMs;
  Feed(c, now, 500, 5);  // under min_samples
  EXPECT_EQ(c.Level(now), 0);
}

TEST(OverloadController, NoObjectiveOrOneLevelShedsNothing) {
  OverloadController none(0, 2, Options());
  OverloadController one_level(50 * kMs, 0, Options());
  int64_t now = 10'000 * kMs;
  none.Level(now);
  one_level.Level(now);
  now += 300 * kMs;
  Feed(none, now, 500);
  Feed(one_level, now, 500);
  EXPECT_EQ(none.Level(now), 0);
  EXPECT_EQ(one_level.Level(now), 0);
  EXPECT_TRUE(none.Admits(2, 3, now));
  EXPECT_TRUE(one_level.Admits(0, 1, now));
}

}  // namespace
}  // namespace lathe::serving
