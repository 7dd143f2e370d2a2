// Overload control for one model version: keeps the p99 of end-to-end
// latency under the model's objective (config `slo.p99_ms`) by shedding the
// lowest priority levels first.
//
// Algorithm
//   * Latencies of answered requests (successes and deadline expiries;
//     rejections are not latencies) go into a sliding window of `slices`
//     time slices covering `window_ns`, each slice a log-scale histogram
//     (quarter octaves, ≤ 19 % error; fixed memory whatever the rate).
//   * Every slice (window_ns / slices) the controller evaluates the window's
//     p99. A level change needs `hold_ns` since the previous one, and after a
//     change the window restarts, so the next decision sees only latencies
//     observed under the new level (no double counting of the backlog that
//     caused the first raise).
//       p99 > objective, ≥ min_samples        → level + 1 (up to max_level)
//       p99 < recover_ratio × objective, ≥ min_samples → level − 1
//       fewer than min_samples for a whole window      → level − 1 (probe)
//   * Level L sheds the L lowest priority levels: with N levels (index 0 =
//     priority 1 = highest), a request of index i is rejected when
//     i ≥ N − L. max_level is N − 1, so the highest priority is never shed;
//     a model with one priority level has nothing to shed and relies on its
//     queue limit and deadlines.
//
// Time is passed in (monotonic nanoseconds), so the controller is tested
// with exact times. Thread-safe: Record and evaluation take one mutex;
// Admits and level() read atomics and lock only when an evaluation is due.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

namespace lathe::serving {

struct OverloadOptions {
  int64_t window_ns = 2'000'000'000;
  int slices = 10;
  int64_t hold_ns = 400'000'000;
  double recover_ratio = 0.8;
  int64_t min_samples = 16;
};

class OverloadController {
 public:
  // objective_ns 0 = no objective: the level stays 0. max_level ≥ 0.
  OverloadController(int64_t objective_ns, int max_level, OverloadOptions options = {});

  // Records answered requests' latencies observed at now_ns.
  void Record(int64_t now_ns, std::span<const int64_t> latencies_ns);
  void Record(int64_t now_ns, int64_t latency_ns) { Record(now_ns, {&latency_ns, 1}); }

  // Whether a request of priority index `index` (0 = highest) of a model
  // with `levels` levels is admitted at now_ns. Evaluates the window first
  // when a slice has passed.
  bool Admits(int index, int levels, int64_t now_ns) {
    MaybeEvaluate(now_ns);
    return index < levels - level_.load(std::memory_order_relaxed);
  }
  // Evaluates if due and returns the level.
  int Level(int64_t now_ns) {
    MaybeEvaluate(now_ns);
    return level();
  }
  int level() const { return level_.load(std::memory_order_relaxed); }
  // The p99 of the last evaluation (ns); 0 when it had no samples.
  int64_t window_p99_ns() const { return p99_ns_.load(std::memory_order_relaxed); }
  int64_t objective_ns() const { return objective_ns_; }

  // The p99 of the samples now in the window, computed now (for tests).
  int64_t WindowP99Ns(int64_t now_ns);

 private:
  static constexpr int kBuckets = 168;
  struct Slice {
    int64_t epoch = -1;
    int64_t count = 0;
    std::array<uint32_t, kBuckets> buckets{};
  };
  void MaybeEvaluate(int64_t now_ns) {
    if (objective_ns_ > 0 && now_ns >= next_eval_ns_.load(std::memory_order_relaxed)) {
      Evaluate(now_ns);
    }
  }
  void Evaluate(int64_t now_ns);
  // Requires mu_.
  int64_t P99Locked(int64_t now_ns, int64_t* count) const;
  void ChangeLocked(int delta, int64_t now_ns);

  const int64_t objective_ns_;
  const int max_level_;
  const OverloadOptions options_;
  const int64_t slice_ns_;
  std::atomic<int> level_{0};
  std::atomic<int64_t> p99_ns_{0};
  std::atomic<int64_t> next_eval_ns_{0};
  std::mutex mu_;
  std::vector<Slice> slices_;    // guarded by mu_; ring indexed by epoch
  int64_t last_change_ns_ = 0;   // guarded by mu_
  int64_t window_start_ns_ = 0;  // guarded by mu_: samples before it are ignored
  bool started_ = false;         // guarded by mu_
};

}  // namespace lathe::serving
