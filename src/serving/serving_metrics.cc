#include "serving/serving_metrics.h"

#include <vector>

namespace lathe::serving {

namespace {

constexpr std::string_view kReasonNames[kFailureReasons] = {
    "rejected_queue_full", "shed",    "timeout",    "cancelled",
    "backend_error",       "invalid", "unavailable"};

// Powers of two up to kMaxBatchSizeLimit (65536).
std::vector<double> BatchSizeBuckets() {
  std::vector<double> b;
  for (double v = 1; v <= 65536; v *= 2) b.push_back(v);
  return b;
}

}  // namespace

std::string_view FailureReasonName(FailureReason reason) {
  return kReasonNames[static_cast<size_t>(reason)];
}

ServingMetrics::ServingMetrics(MetricsRegistry& r)
    : success_(r.AddCounter("lathe_inference_request_success_total",
                            "Inference requests answered successfully.", {"model", "version"})),
      failure_(r.AddCounter("lathe_inference_request_failure_total",
                            "Inference requests that failed, by reason.",
                            {"model", "version", "reason"})),
      inference_count_(r.AddCounter("lathe_inference_count_total",
                                    "Batch rows executed (a request of batch 8 counts 8).",
                                    {"model", "version"})),
      exec_count_(r.AddCounter("lathe_inference_exec_count_total",
                               "Model executions (batches); average batch = count / exec_count.",
                               {"model", "version"})),
      request_duration_(r.AddHistogram("lathe_inference_request_duration_seconds",
                                       "End-to-end time in the model server: admission to answer.",
                                       {"model", "version"})),
      queue_duration_(r.AddHistogram("lathe_inference_queue_duration_seconds",
                                     "Time a request waited for its batch to start.",
                                     {"model", "version"})),
      compute_duration_(r.AddHistogram("lathe_inference_compute_duration_seconds",
                                       "Time of one model execution (one batch).",
                                       {"model", "version"})),
      batch_size_(r.AddHistogram("lathe_inference_batch_size", "Rows per model execution.",
                                 {"model", "version"}, BatchSizeBuckets())),
      inflight_(r.AddGauge("lathe_inference_inflight_requests",
                           "Requests admitted and not yet answered (queued or executing).",
                           {"model", "version"})),
      queue_depth_(r.AddGauge("lathe_inference_queue_depth", "Requests waiting for a batch.",
                              {"model", "version"})),
      overload_level_(r.AddGauge("lathe_inference_overload_level",
                                 "Overload degradation level: the number of lowest priority "
                                 "levels being shed (0 = none).",
                                 {"model", "version"})),
      window_p99_(r.AddGauge("lathe_inference_window_p99_seconds",
                             "p99 of end-to-end latency over the overload control window.",
                             {"model", "version"})) {}

ServingMetrics::Version ServingMetrics::For(const std::string& model, const std::string& version) {
  Version v;
  const std::vector<std::string> labels = {model, version};
  v.success = &success_.With(labels);
  for (size_t i = 0; i < kFailureReasons; ++i) {
    v.failure[i] = &failure_.With({model, version, std::string(kReasonNames[i])});
  }
  v.inference_count = &inference_count_.With(labels);
  v.exec_count = &exec_count_.With(labels);
  v.request_duration = &request_duration_.With(labels);
  v.queue_duration = &queue_duration_.With(labels);
  v.compute_duration = &compute_duration_.With(labels);
  v.batch_size = &batch_size_.With(labels);
  v.inflight = &inflight_.With(labels);
  v.queue_depth = &queue_depth_.With(labels);
  v.overload_level = &overload_level_.With(labels);
  v.window_p99 = &window_p99_.With(labels);
  return v;
}

ServingMetrics& DefaultServingMetrics() {
  static ServingMetrics* const kMetrics = new ServingMetrics(DefaultRegistry());
  return *kMetrics;
}

void StatisticsRecorder::Failure(FailureReason reason, uint64_t e2e_ns) {
  Add(fail_, e2e_ns);
  failures_[static_cast<size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
}

void StatisticsRecorder::Executed(uint64_t rows, uint64_t requests, uint64_t queue_ns_sum,
                                  uint64_t compute_ns) {
  inference_count_.fetch_add(rows, std::memory_order_relaxed);
  execution_count_.fetch_add(1, std::memory_order_relaxed);
  Add(queue_, queue_ns_sum, requests);
  // Triton attributes a batch's compute time to each of its requests.
  Add(compute_, compute_ns * requests, requests);
}

ModelStatistics StatisticsRecorder::Snapshot(std::string name, std::string version) const {
  ModelStatistics s;
  s.name = std::move(name);
  s.version = std::move(version);
  s.last_inference_ms = last_ms_.load(std::memory_order_relaxed);
  s.inference_count = inference_count_.load(std::memory_order_relaxed);
  s.execution_count = execution_count_.load(std::memory_order_relaxed);
  s.success = Read(success_);
  s.fail = Read(fail_);
  s.queue = Read(queue_);
  s.compute_infer = Read(compute_);
  for (size_t i = 0; i < kFailureReasons; ++i) {
    s.failures[i] = failures_[i].load(std::memory_order_relaxed);
  }
  return s;
}

}  // namespace lathe::serving
