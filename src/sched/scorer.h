// Placement scorers: plugins that rank the nodes a task fits on and choose
// which GPU(s) of the node it takes.
//
// A scorer is registered by name in the table of scorer.cc (the Envoy /
// DuckDB pattern: one class and one table row per plugin); Policy::scorer
// names it. Built-in scorers:
//   binpack        most-allocated first (Volcano binpack formula)
//   spread         least-allocated first
//   random         uniform at random (seeded by Policy::seed)
//   bestfit        least weighted remaining resources after placement
//   dotproduct     smallest dot product of the node's free vector and the
//                  task's request (FGD paper's baseline after Tetris)
//   gpu-packing    occupied GPUs first, then idle GPUs on busy nodes, then
//                  idle nodes (FGD paper's baseline)
//   gpu-clustering nodes already running tasks with the same GPU request
//   fgd            Fragmentation Gradient Descent (Weng et al., ATC'23)
//   bestfit-artifact, dotproduct-artifact, gpu-packing-artifact,
//   gpu-clustering-artifact
//                  the same baselines as FGD's artifact scores them (integer
//                  scores over cpu and GPU, equal scores to the smallest node
//                  name); for reproducing its experiment (lathe sim
//                  --baseline-variant artifact), not for production
//   fgd-artifact   fgd as FGD's artifact runs it (typical pods, equal scores
//                  to the smallest node name, GPU by integer score); for the
//                  same experiment, not for production
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "sched/cluster_state.h"
#include "sched/model.h"
#include "sched/policy.h"

namespace lathe::sched {

// The scorer of the "lathe" policy; README.md says why.
inline constexpr char kLatheDefaultScorer[] = "fgd";

class Scorer {
 public:
  virtual ~Scorer() = default;

  // Scores placing one task of `request` on node n, which state.Fits(n,
  // request); higher is better, ties go to the node found first. Sets *gpus
  // to the GPU shares the task would take on n (empty without GPU request).
  // Cost: O(GPUs of n) for every scorer but fgd, which is O(GPUs × workload
  // classes) per distinct GPU choice.
  virtual double Score(const ClusterState& state, int n, const Resources& request,
                       std::vector<GpuShare>* gpus) = 0;

  // Whether the candidate search starts at a rotating position (spreading
  // scorers, as kube-scheduler does) instead of the first node (packing
  // scorers, where filling the same nodes first is the point).
  virtual bool RotateStart() const { return false; }
};

// What a scorer may look at when it is created (the whole snapshot, e.g. to
// derive the workload for fgd) and the policy (seed, workload).
struct ScorerEnv {
  const Snapshot* snapshot = nullptr;
  const Policy* policy = nullptr;
};

// NOT_FOUND naming the scorer if none is registered under `name`.
StatusOr<std::unique_ptr<Scorer>> MakeScorer(const std::string& name, const ScorerEnv& env);
std::vector<std::string> ScorerNames();

// GPU choices shared by scorers. Pack: a fraction goes to the fitting GPU
// with the least free milli; k whole GPUs are the first k wholly free ones.
// Spread: a fraction goes to the GPU with the most free milli.
// Precondition: state.Fits(n, request).
std::vector<GpuShare> PackGpus(const ClusterState& state, int n, const Resources& request);
std::vector<GpuShare> SpreadGpus(const ClusterState& state, int n, const Resources& request);

// The workload classes fgd uses: policy.workload if set, else the distinct
// GPU-requesting task requests of the snapshot's pending and running jobs
// weighted by task count (the most frequent kMaxWorkloadClasses), weights
// normalised to sum 1.
inline constexpr int kMaxWorkloadClasses = 24;
std::vector<WorkloadClass> FgdWorkload(const Snapshot& snapshot, const Policy& policy);

// FGD artifact's "typical pods": `classes` (weights are task counts or
// shares) sorted by weight, most popular first (equal weights: the larger
// (cpu, GPU per GPU, GPU count) first), cut after the first class at which
// the cumulative weight reaches `popularity` of the total, weights
// renormalised to sum 1. The artifact's default (95 %) on openb keeps 35 of
// 91 classes: 1-GPU and fractional ones and CPU-only ones, none of 2, 4 or 8
// GPUs. Pure; O(C log C).
std::vector<WorkloadClass> FgdTypicalPods(std::vector<WorkloadClass> classes, double popularity = 0.95);

// FGD's node score for a placement that lowers the node's fragmentation
// F_n(M) by `frag_decrease_milli` (negative when F_n grows), as the paper's
// implementation scores it (Weng et al., ATC'23, artifact
// hkust-adsl/kubernetes-scheduler-simulator): the decrease in GPUs through a
// sigmoid onto kube-scheduler's integer node scores 0..kFgdScoreLevels,
// floor(kFgdScoreLevels · 1 / (1 + e^(−decrease / 1000))). Placements whose
// ΔF differ by less than one level (about 0.04 GPU near ΔF = 0, more as
// |ΔF| grows: the sigmoid saturates) score the same; the fgd scorer breaks
// such ties by bin-packing. Monotone non-decreasing in its argument; pure.
inline constexpr int kFgdScoreLevels = 100;
double FgdNodeScore(double frag_decrease_milli);

// F_n(M) of FGD for a node in the given state: the expected GPU milli that a
// task drawn from `workload` cannot use on the node. FragmentationModel
// precomputes what does not depend on the node (per-class GPU thresholds);
// Of() costs O(GPUs × distinct thresholds + classes).
class FragmentationModel {
 public:
  explicit FragmentationModel(std::vector<WorkloadClass> workload);
  double Of(int64_t cpu_free, int64_t mem_free, const int32_t* gpu_free, int num_gpus) const;

 private:
  std::vector<WorkloadClass> workload_;
  std::vector<int64_t> thresholds_;  // distinct per-GPU needs
  std::vector<int> threshold_of_;    // per class, index into thresholds_
};
double NodeFragmentation(int64_t cpu_free, int64_t mem_free, const int32_t* gpu_free, int num_gpus,
                         const std::vector<WorkloadClass>& workload);

}  // namespace lathe::sched
