#include "sched/scorer.h"

#include <gtest/gtest.h>

#include <cmath>

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

TEST(FgdNodeScore, MapsTheFragmentationDecreaseOntoIntegerLevels) {
  EXPECT_EQ(FgdNodeScore(0), 50);         // no change: the sigmoid's midpoint
  EXPECT_EQ(FgdNodeScore(1000), 73);      // one GPU less fragmented: 100 σ(1) = 73.1
  EXPECT_EQ(FgdNodeScore(-1000), 26);     // one GPU more fragmented: 100 σ(−1) = 26.9
  EXPECT_EQ(FgdNodeScore(-3), FgdNodeScore(-9));  // within one level: the same score
  EXPECT_LT(FgdNodeScore(-50), FgdNodeScore(-3));
  EXPECT_EQ(FgdNodeScore(-1e6), 0);
  EXPECT_EQ(FgdNodeScore(1e6), kFgdScoreLevels);
  for (double d = -8000; d < 8000; d += 37) EXPECT_LE(FgdNodeScore(d), FgdNodeScore(d + 37)) << d;
}

// Two nodes whose ΔF differ by less than one score level: the fuller node
// wins (bin-packing tie-break), although exact ΔF would pick the emptier one.
TEST(FgdScorer, BreaksTiesWithinOneLevelByBinpacking) {
  Snapshot s;
  s.nodes = {Node{.name = "a", .capacity = {32000, 1 << 20, 2000}, .num_gpus = 2},
             Node{.name = "b", .capacity = {32000, 1 << 20, 2000}, .num_gpus = 2}};
  s.queues = {Queue{.name = "q"}};
  RunningJob busy;
  busy.job.id = "busy";
  busy.job.queue = "q";
  busy.job.groups.push_back({"t", 1, {22000, 0, 500}});
  busy.tasks.push_back(TaskPlacement{.node = "b", .gpus = {{0, 500}}});
  s.running.push_back(busy);
  Policy p;
  // Mostly small tasks; a few that need 9 or 31 cores.
  p.workload = {{Resources{0, 0, 500}, 0.988}, {Resources{9000, 0, 500}, 0.01},
                {Resources{31000, 0, 500}, 0.002}};
  ClusterState state(s);
  auto scorer = MakeScorer("fgd", ScorerEnv{&s, &p});
  ASSERT_TRUE(scorer.ok());
  const Resources task{2000, 0, 500};
  std::vector<GpuShare> gpus_a, gpus_b;
  // a: F 0 -> 3 (the 31-core class no longer fits); b: F 3 -> 12 (nor the
  // 9-core one). Both decreases, −3 and −9 milli, score 49.
  double a = (*scorer)->Score(state, 0, task, &gpus_a);
  double b = (*scorer)->Score(state, 1, task, &gpus_b);
  EXPECT_EQ(std::floor(a), 49);
  EXPECT_EQ(std::floor(b), 49);
  EXPECT_GT(b, a);
  ASSERT_EQ(gpus_b.size(), 1u);
  EXPECT_EQ(gpus_b[0].milli, 500);
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
