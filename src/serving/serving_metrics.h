// What the model server counts, per model and version: the Prometheus
// families on /metrics and the Triton-like statistics behind
// /v2/models/<m>/stats (protocols.md §1.6, §2).
//
// Families (labels model, version; times in seconds, as base/metrics does):
//   lathe_inference_request_success_total          requests answered OK
//   lathe_inference_request_failure_total{reason}  rejected_queue_full, shed,
//       timeout, cancelled, backend_error, invalid, unavailable
//   lathe_inference_count_total                    batch rows executed
//   lathe_inference_exec_count_total               Execute calls (batches)
//   lathe_inference_request_duration_seconds       Submit to answer (histogram)
//   lathe_inference_queue_duration_seconds         Submit to batch start
//   lathe_inference_compute_duration_seconds       one Execute (per batch)
//   lathe_inference_batch_size                     rows per Execute
//   lathe_inference_inflight_requests              admitted, not yet answered
//   lathe_inference_queue_depth                    waiting for a batch
//   lathe_inference_overload_level                 OverloadController level
//   lathe_inference_window_p99_seconds             its sliding-window p99
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/metrics.h"

namespace lathe::serving {

// Why a request failed; one label value each.
enum class FailureReason {
  kQueueFull,     // max_queue_size reached: RESOURCE_EXHAUSTED at once
  kShed,          // overload control shed its priority level
  kTimeout,       // its deadline passed while it waited
  kCancelled,     // its client left before it ran
  kBackendError,  // Execute failed, or its outputs were malformed
  kInvalid,       // the request does not fit the model's config
  kUnavailable,   // the version is draining or unloaded
};
inline constexpr size_t kFailureReasons = 7;

// "rejected_queue_full", "shed", "timeout", "cancelled", "backend_error",
// "invalid", "unavailable".
std::string_view FailureReasonName(FailureReason reason);

// The families, registered once in one registry. Registering twice in the
// same registry replaces the families (base/metrics), so a process makes one
// ServingMetrics per registry: DefaultServingMetrics() for DefaultRegistry(),
// or its own in tests.
class ServingMetrics {
 public:
  explicit ServingMetrics(MetricsRegistry& registry);

  // The children of one model version, looked up once (With() takes a
  // mutex) and then updated lock-free. References stay valid as long as
  // the registry.
  struct Version {
    CounterChild* success;
    std::array<CounterChild*, kFailureReasons> failure;
    CounterChild* inference_count;
    CounterChild* exec_count;
    HistogramChild* request_duration;
    HistogramChild* queue_duration;
    HistogramChild* compute_duration;
    HistogramChild* batch_size;
    GaugeChild* inflight;
    GaugeChild* queue_depth;
    GaugeChild* overload_level;
    GaugeChild* window_p99;
  };
  // Thread-safe.
  Version For(const std::string& model, const std::string& version);

 private:
  Counter& success_;
  Counter& failure_;
  Counter& inference_count_;
  Counter& exec_count_;
  Histogram& request_duration_;
  Histogram& queue_duration_;
  Histogram& compute_duration_;
  Histogram& batch_size_;
  Gauge& inflight_;
  Gauge& queue_depth_;
  Gauge& overload_level_;
  Gauge& window_p99_;
};

// The one ServingMetrics of DefaultRegistry(), made on first use.
ServingMetrics& DefaultServingMetrics();

// A cumulative {count, total nanoseconds} pair, as Triton's statistics
// report them.
struct DurationStat {
  uint64_t count = 0;
  uint64_t ns = 0;
};

// Triton's per-model statistics (protocols.md §1.6), for one version.
struct ModelStatistics {
  std::string name;
  std::string version;
  int64_t last_inference_ms = 0;                     // Unix epoch ms of the last answer; 0 = none
  uint64_t inference_count = 0;                      // rows executed (a batch of 8 counts 8)
  uint64_t execution_count = 0;                      // Execute calls
  DurationStat success;                              // end-to-end time of successful requests
  DurationStat fail;                                 // end-to-end time of failed requests
  DurationStat queue;                                // per executed request: Submit to batch start
  DurationStat compute_infer;                        // per executed request: its batch's Execute
  std::array<uint64_t, kFailureReasons> failures{};  // by FailureReason
};

// The counters behind ModelStatistics: lock-free updates, a snapshot read.
class StatisticsRecorder {
 public:
  void Success(uint64_t e2e_ns) { Add(success_, e2e_ns); }
  void Failure(FailureReason reason, uint64_t e2e_ns);
  void Executed(uint64_t rows, uint64_t requests, uint64_t queue_ns_sum, uint64_t compute_ns);
  void Answered(int64_t now_ms) { last_ms_.store(now_ms, std::memory_order_relaxed); }
  ModelStatistics Snapshot(std::string name, std::string version) const;

 private:
  struct Pair {
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> ns{0};
  };
  static void Add(Pair& p, uint64_t ns, uint64_t count = 1) {
    p.count.fetch_add(count, std::memory_order_relaxed);
    p.ns.fetch_add(ns, std::memory_order_relaxed);
  }
  static DurationStat Read(const Pair& p) {
    return {p.count.load(std::memory_order_relaxed), p.ns.load(std::memory_order_relaxed)};
  }
  Pair success_, fail_, queue_, compute_;
  std::atomic<uint64_t> inference_count_{0};
  std::atomic<uint64_t> execution_count_{0};
  std::atomic<int64_t> last_ms_{0};
  std::array<std::atomic<uint64_t>, kFailureReasons> failures_{};
};

}  // namespace lathe::serving
