#include "sched/scorer.h"

#include <gtest/gtest.h>

namespace lathe::sched {
namespace {

TEST(NodeFragmentation, CountsGpuMilliATaskClassCannotUse) {
  std::vector<WorkloadClass> half = {{Resources{1000, 0, 500}, 1.0}};
  int32_t free[] = {200, 1000, 600, 0};
  // 200 is below the 500 a task needs; 1000, 600 and 0 are not lost.
  EXPECT_DOUBLE_EQ(NodeFragmentation(8000, 1000, free, 4, half), 200);
  // Without cpu the task cannot run at all: all 1800 free milli are lost.
  EXPECT_DOUBLE_EQ(NodeFragmentation(500, 1000, free, 4, half), 1800);

  std::vector<WorkloadClass> whole = {{Resources{0, 0, 2000}, 1.0}};
  // Two GPUs needed, one whole free: nothing fits, everything is lost.
  EXPECT_DOUBLE_EQ(NodeFragmentation(8000, 1000, free, 4, whole), 1800);
  int32_t two[] = {1000, 1000, 300};
  EXPECT_DOUBLE_EQ(NodeFragmentation(8000, 1000, two, 3, whole), 300);

  std::vector<WorkloadClass> mix = {{Resources{0, 0, 500}, 0.5}, {Resources{0, 0, 1000}, 0.5}};
  EXPECT_DOUBLE_EQ(NodeFragmentation(8000, 1000, free, 4, mix), 0.5 * 200 + 0.5 * 800);
}

TEST(FgdWorkload, DerivesNormalisedGpuClassesFromTheSnapshot) {
  Snapshot s;
  Job a;
  a.groups.push_back({"w", 3, {1000, 0, 500}});
  a.groups.push_back({"cpu", 5, {1000, 0, 0}});
  Job b;
  b.groups.push_back({"w", 1, {0, 0, 2000}});
  s.pending = {a, b};
  std::vector<WorkloadClass> w = FgdWorkload(s, Policy{});
  ASSERT_EQ(w.size(), 2u);  // CPU-only classes are left out
  EXPECT_EQ(w[0].request.gpu_milli, 500);
  EXPECT_DOUBLE_EQ(w[0].weight, 0.75);
  EXPECT_DOUBLE_EQ(w[1].weight, 0.25);
}

TEST(MakeScorer, KnowsEveryNameAndRejectsOthers) {
  Snapshot s;
  Policy p;
  ScorerEnv env{&s, &p};
  for (const std::string& name : ScorerNames()) EXPECT_TRUE(MakeScorer(name, env).ok()) << name;
  auto bad = MakeScorer("nope", env);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace lathe::sched
