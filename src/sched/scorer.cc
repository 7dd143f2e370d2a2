#include "sched/scorer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <tuple>

namespace lathe::sched {

std::vector<GpuShare> PackGpus(const ClusterState& state, int n, const Resources& request) {
  std::vector<GpuShare> out;
  const int32_t* free = state.gpu_free(n);
  const int gpus = state.num_gpus(n);
  if (IsFraction(request)) {
    int best = -1;
    for (int i = 0; i < gpus; ++i) {
      if (free[i] >= request.gpu_milli && (best < 0 || free[i] < free[best])) best = i;
    }
    if (best >= 0) out.push_back({best, request.gpu_milli});
  } else {
    int k = WholeGpus(request);
    for (int i = 0; i < gpus && static_cast<int>(out.size()) < k; ++i) {
      if (free[i] == 1000) out.push_back({i, 1000});
    }
  }
  return out;
}

std::vector<GpuShare> SpreadGpus(const ClusterState& state, int n, const Resources& request) {
  if (!IsFraction(request)) return PackGpus(state, n, request);
  const int32_t* free = state.gpu_free(n);
  int best = 0;
  for (int i = 1; i < state.num_gpus(n); ++i) {
    if (free[i] > free[best]) best = i;
  }
  return {{best, request.gpu_milli}};
}

namespace {

// Volcano binpack: sum over requested resources of (used + request) /
// allocatable, averaged, times 10.
double BinpackScore(const ClusterState& state, int n, const Resources& r) {
  const Resources& cap = state.node(n).capacity;
  double sum = 0;
  int dims = 0;
  auto add = [&](int64_t req, int64_t free, int64_t capacity) {
    if (req <= 0 || capacity <= 0) return;
    sum += static_cast<double>(capacity - free + req) / static_cast<double>(capacity);
    ++dims;
  };
  add(r.cpu_milli, state.free_cpu(n), cap.cpu_milli);
  add(r.memory_mib, state.free_mem(n), cap.memory_mib);
  add(r.gpu_milli, state.free_gpu_total(n), cap.gpu_milli);
  return dims == 0 ? 0 : 10 * sum / dims;
}

class BinpackScorer : public Scorer {
 public:
  double Score(const ClusterState& state, int n, const Resources& r,
               std::vector<GpuShare>* gpus) override {
    *gpus = PackGpus(state, n, r);
    return BinpackScore(state, n, r);
  }
};

// Least allocated after placement, over cpu, memory and (if the node has
// any) GPU.
class SpreadScorer : public Scorer {
 public:
  double Score(const ClusterState& state, int n, const Resources& r,
               std::vector<GpuShare>* gpus) override {
    *gpus = SpreadGpus(state, n, r);
    const Resources& cap = state.node(n).capacity;
    double sum = static_cast<double>(state.free_cpu(n) - r.cpu_milli) / std::max<int64_t>(1, cap.cpu_milli) +
                 static_cast<double>(state.free_mem(n) - r.memory_mib) / std::max<int64_t>(1, cap.memory_mib);
    int dims = 2;
    if (cap.gpu_milli > 0) {
      sum += static_cast<double>(state.free_gpu_total(n) - r.gpu_milli) / cap.gpu_milli;
      ++dims;
    }
    return 10 * sum / dims;
  }
  bool RotateStart() const override { return true; }
};

class RandomScorer : public Scorer {
 public:
  explicit RandomScorer(uint64_t seed) : rng_(seed) {}
  double Score(const ClusterState& state, int n, const Resources& r,
               std::vector<GpuShare>* gpus) override {
    *gpus = PackGpus(state, n, r);
    return std::uniform_real_distribution<double>(0, 1)(rng_);
  }
  bool RotateStart() const override { return true; }

 private:
  std::mt19937_64 rng_;
};

// Remaining resources after placement, each normalised by the largest node's
// capacity so that dimensions weigh the same; the least remaining wins.
class BestFitScorer : public Scorer {
 public:
  double Score(const ClusterState& state, int n, const Resources& r,
               std::vector<GpuShare>* gpus) override {
    *gpus = PackGpus(state, n, r);
    const Resources& m = state.max_node_capacity();
    double rest = static_cast<double>(state.free_cpu(n) - r.cpu_milli) / m.cpu_milli +
                  static_cast<double>(state.free_mem(n) - r.memory_mib) / m.memory_mib +
                  static_cast<double>(state.free_gpu_total(n) - r.gpu_milli) / m.gpu_milli;
    return -rest;
  }
};

// Dot product of the node's free vector and the request, both normalised by
// the largest node's capacity; the smallest wins.
class DotProductScorer : public Scorer {
 public:
  double Score(const ClusterState& state, int n, const Resources& r,
               std::vector<GpuShare>* gpus) override {
    *gpus = PackGpus(state, n, r);
    const Resources& m = state.max_node_capacity();
    auto term = [](int64_t free, int64_t req, int64_t max) {
      return (static_cast<double>(free) / max) * (static_cast<double>(req) / max);
    };
    return -(term(state.free_cpu(n), r.cpu_milli, m.cpu_milli) +
             term(state.free_mem(n), r.memory_mib, m.memory_mib) +
             term(state.free_gpu_total(n), r.gpu_milli, m.gpu_milli));
  }
};

// Tiers: a fraction on an already occupied GPU (3), idle GPUs of a node
// that already runs GPU work (2), an idle node (1); within a tier fewer
// free GPUs first. CPU-only tasks bin-pack.
class GpuPackingScorer : public Scorer {
 public:
  double Score(const ClusterState& state, int n, const Resources& r,
               std::vector<GpuShare>* gpus) override {
    *gpus = PackGpus(state, n, r);
    if (r.gpu_milli == 0) return BinpackScore(state, n, r);
    const int32_t* free = state.gpu_free(n);
    const int total = state.num_gpus(n);
    double tier = state.free_gpu_total(n) < 1000LL * total ? 2 : 1;
    if (IsFraction(r) && !gpus->empty() && free[(*gpus)[0].index] < 1000) tier = 3;
    return tier * 100 - static_cast<double>(state.free_gpu_total(n)) / 1000.0;
  }
};

// Nodes that already run tasks with the same GPU request first (most such
// tasks first), then bin-packing.
class GpuClusteringScorer : public Scorer {
 public:
  double Score(const ClusterState& state, int n, const Resources& r,
               std::vector<GpuShare>* gpus) override {
    *gpus = PackGpus(state, n, r);
    double same = r.gpu_milli > 0 ? state.TasksWithGpuRequest(n, r.gpu_milli) : 0;
    return same * 100 + BinpackScore(state, n, r);
  }
};

// How FGD's artifact breaks ties between equal node scores. Its go.mod
// replaces k8s.io/kubernetes by a fork (mental2008/kubernetes
// v1.20.5-minor) whose selectHost does not pick among the best nodes at
// random, as kube-scheduler does, but "for reproducibility" takes the one
// with the smallest name (byte-wise; openb's names are zero-padded, so it is
// the lowest node number). Returns a term in (0, 1) that is larger the
// smaller n's name, to add to an integer score. O(1).
double ArtifactTieBreak(const ClusterState& state, int n) {
  const int count = std::max(1, state.num_nodes());
  return 0.999 * static_cast<double>(count - state.name_rank(n)) / count;
}

// F_n before placement under a fragmentation model, cached per node version:
// what the two FGD scorers share.
class FragmentationCache {
 public:
  explicit FragmentationCache(std::vector<WorkloadClass> workload) : model_(std::move(workload)) {}

  double Before(const ClusterState& state, int n) {
    if (cache_.size() < static_cast<size_t>(state.num_nodes())) {
      cache_.resize(state.num_nodes(), {UINT64_MAX, 0});
    }
    auto& [version, value] = cache_[n];
    if (version != state.version(n)) {
      version = state.version(n);
      value = model_.Of(state.free_cpu(n), state.free_mem(n), state.gpu_free(n), state.num_gpus(n));
    }
    return value;
  }
  const FragmentationModel& model() const { return model_; }

 private:
  FragmentationModel model_;
  std::vector<std::pair<uint64_t, double>> cache_;
};

// What both FGD scorers share: the node's fragmentation before (cached per
// node version) and after placing the task. For a fraction, every distinct
// free level among the GPUs that fit is tried, in index order, and `better`
// (after of the candidate, after of the best so far) decides which one is
// taken; whole GPUs are packed. Returns F after the chosen placement.
class FgdScorerBase : public Scorer {
 protected:
  explicit FgdScorerBase(std::vector<WorkloadClass> workload) : frag_(std::move(workload)) {}

  template <typename Better>
  double After(const ClusterState& state, int n, const Resources& r,
               std::vector<GpuShare>* gpus, Better better) {
    const int count = state.num_gpus(n);
    const int32_t* free = state.gpu_free(n);
    scratch_.assign(free, free + count);
    const int64_t cpu = state.free_cpu(n) - r.cpu_milli;
    const int64_t mem = state.free_mem(n) - r.memory_mib;
    if (!IsFraction(r)) {
      *gpus = PackGpus(state, n, r);
      for (const GpuShare& s : *gpus) scratch_[s.index] -= static_cast<int32_t>(s.milli);
      return frag_.model().Of(cpu, mem, scratch_.data(), count);
    }
    int best = -1;
    double best_after = 0;
    for (int i = 0; i < count; ++i) {
      if (free[i] < r.gpu_milli) continue;
      bool seen = false;  // same free level as an earlier GPU: same result
      for (int j = 0; j < i && !seen; ++j) seen = free[j] == free[i];
      if (seen) continue;
      scratch_[i] -= static_cast<int32_t>(r.gpu_milli);
      const double after = frag_.model().Of(cpu, mem, scratch_.data(), count);
      scratch_[i] += static_cast<int32_t>(r.gpu_milli);
      if (best < 0 || better(after, best_after)) {
        best = i;
        best_after = after;
      }
    }
    *gpus = {{best, r.gpu_milli}};
    return best_after;
  }

  FragmentationCache frag_;

 private:
  std::vector<int32_t> scratch_;
};

// FGD: place the task where the node's fragmentation F_n(M) grows least.
// Within a node, a fraction goes to the GPU whose exact ΔF is smallest.
// Across nodes, ΔF is compared at the resolution of FgdNodeScore (the score
// of the paper's implementation); nodes with the same score go to the better
// bin-packing node, which also decides where ΔF is zero everywhere (e.g.
// CPU-only tasks on CPU-only nodes).
class FgdScorer : public FgdScorerBase {
 public:
  explicit FgdScorer(std::vector<WorkloadClass> workload) : FgdScorerBase(std::move(workload)) {}

  double Score(const ClusterState& state, int n, const Resources& r,
               std::vector<GpuShare>* gpus) override {
    const double before = frag_.Before(state, n);
    const double after = After(state, n, r, gpus, [](double a, double b) { return a < b; });
    // BinpackScore is in [0, 10], so the tie-break term stays below one
    // score level.
    return FgdNodeScore(before - after) + 0.01 * BinpackScore(state, n, r);
  }
};

// FGD as its artifact runs it (hkust-adsl/kubernetes-scheduler-simulator,
// FGDScore with Open-Gpu-Share's FGD GPU selection), for reproducing its
// experiment. It differs from FgdScorer in three points only:
//  - the workload is the artifact's "typical pods" (FgdTypicalPods: the most
//    popular classes covering 95 % of tasks, CPU-only ones included,
//    memory ignored), not every class;
//  - within a node a fraction goes to the first GPU (by index) with the best
//    integer node score, not the smallest exact ΔF;
//  - nodes with the same integer score go to the smallest node name
//    (ArtifactTieBreak, the artifact's kube-scheduler fork), not to the
//    better bin-packing node.
class ArtifactFgdScorer : public FgdScorerBase {
 public:
  explicit ArtifactFgdScorer(std::vector<WorkloadClass> typical)
      : FgdScorerBase(std::move(typical)) {}

  double Score(const ClusterState& state, int n, const Resources& r,
               std::vector<GpuShare>* gpus) override {
    const double before = frag_.Before(state, n);
    // A GPU scoring the same as an earlier one is never preferred to it
    // (strictly better wins).
    const double after = After(state, n, r, gpus, [before](double a, double b) {
      return FgdNodeScore(before - a) > FgdNodeScore(before - b);
    });
    return FgdNodeScore(before - after) + ArtifactTieBreak(state, n);
  }
};

// The baselines as FGD's artifact scores them (hkust-adsl/kubernetes-
// scheduler-simulator, the "-artifact" rows of the table below), for
// reproducing its experiment: kube-scheduler integer node scores 0..100 over
// cpu and GPU only (no memory), normalised by the artifact's largest node
// spec (128 cores, 8 GPUs), and nodes with the same integer score going to
// the smallest node name (ArtifactTieBreak). The artifact's plugins that
// normalise (NormalizeScore: (s − min) · 100 / (max − min)) keep the order
// and the ties of scores within 0..100, so normalising is left out. GPU
// choice: tightest fitting GPU (Open-Gpu-Share's "best"). Not meant for
// production: name order is an arbitrary preference.
class ArtifactScorer : public Scorer {
 public:
  double Score(const ClusterState& state, int n, const Resources& r,
               std::vector<GpuShare>* gpus) final {
    *gpus = PackGpus(state, n, r);
    return static_cast<double>(IntegerScore(state, n, r)) + ArtifactTieBreak(state, n);
  }

 protected:
  static constexpr double kMaxSpecCpu = 128000;
  static constexpr double kMaxSpecGpu = 8000;
  static constexpr int64_t kMaxNodeScore = 100;
  virtual int64_t IntegerScore(const ClusterState& state, int n, const Resources& r) const = 0;
};

// Best fit: 100 · (1 − ½·(cpu left after)/128 cores − ½·(GPU left after)/8 GPUs).
class ArtifactBestFitScorer : public ArtifactScorer {
 protected:
  int64_t IntegerScore(const ClusterState& state, int n, const Resources& r) const override {
    double rest = 0.5 * static_cast<double>(state.free_cpu(n) - r.cpu_milli) / kMaxSpecCpu +
                  0.5 * static_cast<double>(state.free_gpu_total(n) - r.gpu_milli) / kMaxSpecGpu;
    return static_cast<int64_t>((1 - rest) * kMaxNodeScore);
  }
};

// Dot product (Tetris), dimensions merged: 100 · (1 − (free · request) / 2)
// over (cpu, total GPU), each divided by the largest spec.
class ArtifactDotProductScorer : public ArtifactScorer {
 protected:
  int64_t IntegerScore(const ClusterState& state, int n, const Resources& r) const override {
    double dot = static_cast<double>(state.free_cpu(n)) / kMaxSpecCpu * (static_cast<double>(r.cpu_milli) / kMaxSpecCpu) +
                 static_cast<double>(state.free_gpu_total(n)) / kMaxSpecGpu *
                     (static_cast<double>(r.gpu_milli) / kMaxSpecGpu);
    return static_cast<int64_t>(kMaxNodeScore * (1 - dot / 2));
  }
};

// GPU packing: a CPU-only task scores 0 everywhere (so it goes to the
// smallest-named node it fits on). A GPU task:
// on an idle node max(33 − GPUs, GPUs); needing wholly free GPUs of a busy
// node max(50 − those GPUs, 33); only partly used GPUs max(100 − Σ free
// percent of them / 10, 50).
class ArtifactGpuPackingScorer : public ArtifactScorer {
 protected:
  int64_t IntegerScore(const ClusterState& state, int n, const Resources& r) const override {
    if (r.gpu_milli <= 0) return 0;
    const int count = state.num_gpus(n);
    const int32_t* free = state.gpu_free(n);
    const int whole = state.whole_free_gpus(n);
    if (whole == count) return std::max<int64_t>(kMaxNodeScore / 3 - whole, whole);
    std::vector<GpuShare> use = PackGpus(state, n, r);
    int whole_used = 0;
    int64_t free_percent = 0;
    for (const GpuShare& s : use) {
      if (free[s.index] == 1000) ++whole_used;
      free_percent += free[s.index] * 100 / 1000;
    }
    if (whole_used > 0) return std::max<int64_t>(kMaxNodeScore / 2 - whole_used, kMaxNodeScore / 3);
    return std::max<int64_t>(kMaxNodeScore - free_percent / 10, kMaxNodeScore / 2);
  }
};

// GPU clustering by "affinity": every fractional task has the tag share-gpu,
// a task of k whole GPUs k-gpu. A GPU task scores 75..100 on a node whose
// tasks all have its tag, 50..75 on one with its tag among others, 25..50 on
// a node without GPU tasks, 0..25 elsewhere; within a band
// 25 · (8 GPUs − free GPU) / 8 GPUs. A CPU-only task scores 0 everywhere.
class ArtifactGpuClusteringScorer : public ArtifactScorer {
 protected:
  int64_t IntegerScore(const ClusterState& state, int n, const Resources& r) const override {
    if (r.gpu_milli <= 0) return 0;
    auto tag = [](int64_t gpu_milli) { return gpu_milli < 1000 ? int64_t{0} : gpu_milli / 1000; };
    const int64_t mine = tag(r.gpu_milli);
    int same = 0;
    std::vector<int64_t> tags;
    for (const auto& [milli, count] : state.GpuKinds(n)) {
      if (milli <= 0 || count <= 0) continue;
      int64_t t = tag(milli);
      if (t == mine) same += count;
      if (std::find(tags.begin(), tags.end(), t) == tags.end()) tags.push_back(t);
    }
    const int64_t fill = kMaxNodeScore / 4 * (static_cast<int64_t>(kMaxSpecGpu) - state.free_gpu_total(n)) /
                         static_cast<int64_t>(kMaxSpecGpu);
    if (same > 0) return fill + (tags.size() == 1 ? kMaxNodeScore * 3 / 4 : kMaxNodeScore * 2 / 4);
    return fill + (tags.empty() ? kMaxNodeScore / 4 : 0);
  }
};

// The classes fgd-artifact starts from: policy.workload if set, else every
// distinct (cpu, GPU) request of the snapshot's pending and running tasks,
// CPU-only ones included, weighted by task count (the artifact groups the
// trace's pods this way; memory is not part of a class).
std::vector<WorkloadClass> ArtifactFgdClasses(const Snapshot& snapshot, const Policy& policy) {
  if (!policy.workload.empty()) return policy.workload;
  std::map<std::pair<int64_t, int64_t>, double> counts;
  auto add = [&](const Job& job) {
    for (const TaskGroup& g : job.groups) counts[{g.request.cpu_milli, g.request.gpu_milli}] += g.count;
  };
  for (const Job& j : snapshot.pending) add(j);
  for (const RunningJob& rj : snapshot.running) add(rj.job);
  std::vector<WorkloadClass> out;
  for (const auto& [k, w] : counts) out.push_back({Resources{k.first, 0, k.second}, w});
  return out;
}

struct ScorerEntry {
  const char* name;
  std::unique_ptr<Scorer> (*make)(const ScorerEnv& env);
};

const ScorerEntry kScorers[] = {
    {"binpack", [](const ScorerEnv&) -> std::unique_ptr<Scorer> { return std::make_unique<BinpackScorer>(); }},
    {"spread", [](const ScorerEnv&) -> std::unique_ptr<Scorer> { return std::make_unique<SpreadScorer>(); }},
    {"fgd",
     [](const ScorerEnv& env) -> std::unique_ptr<Scorer> {
       return std::make_unique<FgdScorer>(FgdWorkload(*env.snapshot, *env.policy));
     }},
    {"random",
     [](const ScorerEnv& env) -> std::unique_ptr<Scorer> {
       return std::make_unique<RandomScorer>(env.policy->seed);
     }},
    {"bestfit", [](const ScorerEnv&) -> std::unique_ptr<Scorer> { return std::make_unique<BestFitScorer>(); }},
    {"dotproduct", [](const ScorerEnv&) -> std::unique_ptr<Scorer> { return std::make_unique<DotProductScorer>(); }},
    {"gpu-packing", [](const ScorerEnv&) -> std::unique_ptr<Scorer> { return std::make_unique<GpuPackingScorer>(); }},
    {"gpu-clustering", [](const ScorerEnv&) -> std::unique_ptr<Scorer> { return std::make_unique<GpuClusteringScorer>(); }},
    {"bestfit-artifact", [](const ScorerEnv&) -> std::unique_ptr<Scorer> { return std::make_unique<ArtifactBestFitScorer>(); }},
    {"dotproduct-artifact", [](const ScorerEnv&) -> std::unique_ptr<Scorer> { return std::make_unique<ArtifactDotProductScorer>(); }},
    {"gpu-packing-artifact", [](const ScorerEnv&) -> std::unique_ptr<Scorer> { return std::make_unique<ArtifactGpuPackingScorer>(); }},
    {"gpu-clustering-artifact", [](const ScorerEnv&) -> std::unique_ptr<Scorer> { return std::make_unique<ArtifactGpuClusteringScorer>(); }},
    {"fgd-artifact",
     [](const ScorerEnv& env) -> std::unique_ptr<Scorer> {
       return std::make_unique<ArtifactFgdScorer>(FgdTypicalPods(ArtifactFgdClasses(*env.snapshot, *env.policy)));
     }},
};

}  // namespace

double FgdNodeScore(double frag_decrease_milli) {
  double sigmoid = 1.0 / (1.0 + std::exp(-frag_decrease_milli / 1000.0));
  return std::floor(kFgdScoreLevels * sigmoid);
}

FragmentationModel::FragmentationModel(std::vector<WorkloadClass> workload)
    : workload_(std::move(workload)) {
  for (const WorkloadClass& m : workload_) {
    int64_t per_gpu = std::min<int64_t>(std::max<int64_t>(m.request.gpu_milli, 0), 1000);
    auto it = std::find(thresholds_.begin(), thresholds_.end(), per_gpu);
    threshold_of_.push_back(static_cast<int>(it - thresholds_.begin()));
    if (it == thresholds_.end()) thresholds_.push_back(per_gpu);
  }
}

double FragmentationModel::Of(int64_t cpu_free, int64_t mem_free, const int32_t* gpu_free,
                              int num_gpus) const {
  int64_t total = 0;
  int32_t max_free = 0;
  int whole = 0;
  for (int i = 0; i < num_gpus; ++i) {
    total += gpu_free[i];
    max_free = std::max(max_free, gpu_free[i]);
    if (gpu_free[i] == 1000) ++whole;
  }
  if (total == 0) return 0;
  // Free milli on GPUs below each distinct per-GPU need, computed once.
  // On the stack for the usual few thresholds; a long policy.workload may
  // have more.
  int64_t stack[32];
  std::vector<int64_t> heap;
  int64_t* lost_below = stack;
  const size_t thresholds = thresholds_.size();
  if (thresholds > 32) {
    heap.resize(thresholds);
    lost_below = heap.data();
  }
  for (size_t t = 0; t < thresholds; ++t) {
    int64_t lost = 0;
    for (int i = 0; i < num_gpus; ++i) {
      if (gpu_free[i] < thresholds_[t]) lost += gpu_free[i];
    }
    lost_below[t] = lost;
  }
  double f = 0;
  for (size_t k = 0; k < workload_.size(); ++k) {
    const WorkloadClass& m = workload_[k];
    const Resources& r = m.request;
    bool fits = cpu_free >= r.cpu_milli && mem_free >= r.memory_mib &&
                (r.gpu_milli <= 0 || (r.gpu_milli < 1000 ? max_free >= r.gpu_milli
                                                           : whole >= r.gpu_milli / 1000));
    size_t t = static_cast<size_t>(threshold_of_[k]);
    if (!fits || r.gpu_milli <= 0) {
      // The task cannot run here (or uses no GPU): every free GPU milli is
      // lost to it.
      f += m.weight * static_cast<double>(total);
    } else {
      // It can run: GPUs with less free than it needs per GPU are lost to it.
      f += m.weight * static_cast<double>(lost_below[t]);
    }
  }
  return f;
}

double NodeFragmentation(int64_t cpu_free, int64_t mem_free, const int32_t* gpu_free, int num_gpus,
                         const std::vector<WorkloadClass>& workload) {
  return FragmentationModel(workload).Of(cpu_free, mem_free, gpu_free, num_gpus);
}

std::vector<WorkloadClass> FgdWorkload(const Snapshot& snapshot, const Policy& policy) {
  std::vector<WorkloadClass> out;
  if (!policy.workload.empty()) {
    out = policy.workload;
  } else {
    // CPU-only classes add the same amount to every node's F_n change, so
    // they are left out: they do not change the argmin.
    std::map<std::tuple<int64_t, int64_t, int64_t>, double> counts;
    auto add = [&](const Job& job) {
      for (const TaskGroup& g : job.groups) {
        if (g.request.gpu_milli <= 0) continue;
        counts[{g.request.gpu_milli, g.request.cpu_milli, g.request.memory_mib}] += g.count;
      }
    };
    for (const Job& j : snapshot.pending) add(j);
    for (const RunningJob& rj : snapshot.running) add(rj.job);
    for (const auto& [k, w] : counts) {
      out.push_back({Resources{std::get<1>(k), std::get<2>(k), std::get<0>(k)}, w});
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const WorkloadClass& a, const WorkloadClass& b) { return a.weight > b.weight; });
    if (out.size() > static_cast<size_t>(kMaxWorkloadClasses)) out.resize(kMaxWorkloadClasses);
  }
  double sum = 0;
  for (const WorkloadClass& m : out) sum += m.weight;
  if (sum > 0) {
    for (WorkloadClass& m : out) m.weight /= sum;
  }
  return out;
}

std::vector<WorkloadClass> FgdTypicalPods(std::vector<WorkloadClass> classes, double popularity) {
  // Most popular first; equal counts: the larger (cpu, GPU per GPU, GPU
  // count) first, as the artifact orders them.
  auto key = [](const WorkloadClass& c) {
    const int64_t g = c.request.gpu_milli;
    return std::make_tuple(c.request.cpu_milli, std::min<int64_t>(g, 1000),
                           g <= 0 ? 0 : (g < 1000 ? 1 : g / 1000));
  };
  std::sort(classes.begin(), classes.end(), [&](const WorkloadClass& a, const WorkloadClass& b) {
    if (a.weight != b.weight) return a.weight > b.weight;
    return key(a) > key(b);
  });
  double total = 0;
  for (const WorkloadClass& c : classes) total += c.weight;
  double kept = 0;
  size_t n = 0;
  while (n < classes.size() && kept < popularity * total) kept += classes[n++].weight;
  classes.resize(n);
  for (WorkloadClass& c : classes) c.weight = kept > 0 ? c.weight / kept : 0;
  return classes;
}

StatusOr<std::unique_ptr<Scorer>> MakeScorer(const std::string& name, const ScorerEnv& env) {
  for (const ScorerEntry& e : kScorers) {
    if (name == e.name) return e.make(env);
  }
  return NotFoundError(fmt::format("no placement scorer named \"{}\" (known: {})", name,
                                   fmt::join(ScorerNames(), ", ")));
}

std::vector<std::string> ScorerNames() {
  std::vector<std::string> names;
  for (const ScorerEntry& e : kScorers) names.push_back(e.name);
  return names;
}

}  // namespace lathe::sched
