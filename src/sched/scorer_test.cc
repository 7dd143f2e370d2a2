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

// The baselines as FGD's artifact scores them: integer kube-scheduler
// scores plus a tie-break in (0, 1) towards the smallest node name.
TEST(ArtifactScorers, IntegerScoresWithTiesToTheSmallestName) {
  Snapshot s;
  s.nodes = {Node{.name = "idle", .capacity = {96000, 1 << 20, 8000}, .num_gpus = 8},
             Node{.name = "share", .capacity = {96000, 1 << 20, 8000}, .num_gpus = 8},
             Node{.name = "whole", .capacity = {96000, 1 << 20, 8000}, .num_gpus = 8}};
  s.queues = {Queue{.name = "q"}};
  auto run = [&](const std::string& id, const std::string& node, Resources req, std::vector<GpuShare> gpus) {
    RunningJob rj;
    rj.job.id = id;
    rj.job.queue = "q";
    rj.job.groups.push_back({"t", 1, req});
    rj.tasks.push_back(TaskPlacement{.node = node, .gpus = std::move(gpus)});
    s.running.push_back(rj);
  };
  run("a", "share", {8000, 0, 300}, {{0, 300}});
  run("b", "whole", {16000, 0, 2000}, {{0, 1000}, {1, 1000}});
  Policy p;
  p.seed = 3;
  ClusterState state(s);
  auto score = [&](const char* name, int n, Resources r) {
    auto scorer = MakeScorer(name, ScorerEnv{&s, &p});
    EXPECT_TRUE(scorer.ok()) << name;
    std::vector<GpuShare> gpus;
    return (*scorer)->Score(state, n, r, &gpus);
  };
  const Resources frac{4000, 0, 500};
  // Best fit on the idle node: 100 (1 − ½ 92/128 − ½ 7.5/8) = 17.2 → 17.
  EXPECT_EQ(std::floor(score("bestfit-artifact", 0, frac)), 17);
  // Dot product: 100 (1 − (96/128 · 4/128 + 8/8 · 0.5/8) / 2) = 95.7 → 95.
  EXPECT_EQ(std::floor(score("dotproduct-artifact", 0, frac)), 95);
  // Packing: idle node 33 − 8 = 25; a shared GPU with 700 free: 100 − 70/10 = 93;
  // idle GPUs of a busy node: 50 − 1 = 49.
  EXPECT_EQ(std::floor(score("gpu-packing-artifact", 0, frac)), 25);
  EXPECT_EQ(std::floor(score("gpu-packing-artifact", 1, frac)), 93);
  EXPECT_EQ(std::floor(score("gpu-packing-artifact", 2, frac)), 49);
  // Clustering: the node with only share-gpu tasks 75 + ⌊25·0.3/8⌋ = 75;
  // an idle node 25 + 0; a node with other tags 0 + ⌊25·2/8⌋ = 6.
  EXPECT_EQ(std::floor(score("gpu-clustering-artifact", 1, frac)), 75);
  EXPECT_EQ(std::floor(score("gpu-clustering-artifact", 0, frac)), 25);
  EXPECT_EQ(std::floor(score("gpu-clustering-artifact", 2, frac)), 6);
  // CPU-only tasks score 0 everywhere for packing and clustering; the tie
  // goes to the smallest name ("idle" < "share" < "whole").
  const Resources cpu{4000, 1024, 0};
  for (const char* name : {"gpu-packing-artifact", "gpu-clustering-artifact"}) {
    for (int n = 0; n < 3; ++n) EXPECT_LT(score(name, n, cpu), 1) << name;
    EXPECT_GT(score(name, 0, cpu), score(name, 1, cpu)) << name;
    EXPECT_GT(score(name, 1, cpu), score(name, 2, cpu)) << name;
  }
  // Not the seed: the same scores with another one.
  const double before = score("bestfit-artifact", 2, frac);
  p.seed = 4;
  EXPECT_EQ(score("bestfit-artifact", 2, frac), before);
}

// Name order, not snapshot order, decides the artifact's ties: two idle
// nodes listed "b" then "a" give a whole-GPU task the same integer score, and
// "a" wins, for fgd-artifact too.
TEST(ArtifactScorers, EqualScoresGoToTheSmallestNodeName) {
  Snapshot s;
  s.nodes = {Node{.name = "openb-node-0002", .capacity = {96000, 1 << 20, 8000}, .num_gpus = 8},
             Node{.name = "openb-node-0001", .capacity = {96000, 1 << 20, 8000}, .num_gpus = 8}};
  s.queues = {Queue{.name = "q"}};
  Policy p;
  p.workload = {{Resources{4000, 0, 500}, 1.0}};
  ClusterState state(s);
  EXPECT_EQ(state.name_rank(0), 1);
  EXPECT_EQ(state.name_rank(1), 0);
  const Resources whole{8000, 0, 1000};
  for (const char* name : {"fgd-artifact", "bestfit-artifact", "dotproduct-artifact", "gpu-packing-artifact",
                           "gpu-clustering-artifact"}) {
    auto scorer = MakeScorer(name, ScorerEnv{&s, &p});
    ASSERT_TRUE(scorer.ok()) << name;
    std::vector<GpuShare> gpus;
    double second = (*scorer)->Score(state, 0, whole, &gpus);
    double first = (*scorer)->Score(state, 1, whole, &gpus);
    EXPECT_EQ(std::floor(first), std::floor(second)) << name;
    EXPECT_GT(first, second) << name;
  }
}

// The artifact's typical pods: most popular first, cut at the first class
// where 95 % of tasks are covered; equal counts go larger request first.
TEST(FgdTypicalPods, KeepsThePopularClassesCoveringTheThreshold) {
  std::vector<WorkloadClass> classes = {{Resources{0, 0, 2000}, 1},  {Resources{4000, 0, 500}, 3},
                                        {Resources{8000, 0, 0}, 5},  {Resources{0, 0, 8000}, 1},
                                        {Resources{2000, 0, 1000}, 10}};
  std::vector<WorkloadClass> t = FgdTypicalPods(classes);
  // 10 + 5 + 3 = 18 of 20 < 95 %; the 8-GPU class (larger than the 2-GPU one
  // at the same count) brings it to 19 = 95 %.
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[0].request.gpu_milli, 1000);
  EXPECT_EQ(t[1].request.gpu_milli, 0);
  EXPECT_EQ(t[2].request.gpu_milli, 500);
  EXPECT_EQ(t[3].request.gpu_milli, 8000);
  EXPECT_DOUBLE_EQ(t[0].weight, 10.0 / 19);
  EXPECT_DOUBLE_EQ(t[3].weight, 1.0 / 19);
  EXPECT_EQ(FgdTypicalPods(classes, 1.0).size(), 5u);
}

// A fraction on a node with an idle GPU and a 600-milli one: exact ΔF
// prefers the idle GPU by 6 milli, the integer score cannot tell
// them apart, so fgd-artifact takes the first GPU (the partly used one) and
// fgd the idle one.
TEST(ArtifactFgdScorer, TakesTheFirstGpuWithTheBestIntegerScore) {
  Snapshot s;
  s.nodes = {Node{.name = "a", .capacity = {32000, 1 << 20, 2000}, .num_gpus = 2}};
  s.queues = {Queue{.name = "q"}};
  RunningJob busy;
  busy.job.id = "busy";
  busy.job.queue = "q";
  busy.job.groups.push_back({"t", 1, {1000, 0, 400}});
  busy.tasks.push_back(TaskPlacement{.node = "a", .gpus = {{0, 400}}});
  s.running.push_back(busy);
  Policy p;
  // 94 % + 6 %: both classes are in the 95 % cut.
  p.workload = {{Resources{0, 0, 0}, 0.94}, {Resources{0, 0, 500}, 0.06}};
  ClusterState state(s);
  const Resources task{1000, 0, 500};
  std::vector<GpuShare> artifact_gpus, fgd_gpus;
  auto artifact = MakeScorer("fgd-artifact", ScorerEnv{&s, &p});
  auto fgd = MakeScorer("fgd", ScorerEnv{&s, &p});
  ASSERT_TRUE(artifact.ok());
  ASSERT_TRUE(fgd.ok());
  double score = (*artifact)->Score(state, 0, task, &artifact_gpus);
  (*fgd)->Score(state, 0, task, &fgd_gpus);
  ASSERT_EQ(artifact_gpus.size(), 1u);
  ASSERT_EQ(fgd_gpus.size(), 1u);
  // GPU 0 (600 free) -> 100: the 500-class loses 100 milli there, so the
  // decrease is 0.94·500 − 0.06·100 = 464 milli on GPU 0 and 470 on GPU 1
  // (idle): 100 σ(0.464) = 61.4 and 100 σ(0.470) = 61.5, one level.
  EXPECT_EQ(artifact_gpus[0].index, 0);
  EXPECT_EQ(fgd_gpus[0].index, 1);
  // The name tie-break stays below one level.
  EXPECT_EQ(std::floor(score), 61);
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
