// The dynamic batcher of one model version: admits requests, queues them by
// priority, merges them into batches and runs them on the version's
// instances (Triton's dynamic batcher, protocols.md §2).
//
//   Submit ──validate──overload──queue full?──▶ per-priority FIFO queues
//                                                 │      ▲ timer thread fails
//                                                 │      │ requests whose
//       worker i (one per ModelInstance) ◀────────┘      │ deadline passes
//         forms a batch, concatenates inputs along dim 0,
//         Execute, splits outputs by each request's rows, answers
//
// Admission (in the caller's thread, answered inline when refused):
//   * the request is checked against the config (ValidateInferRequest, and
//     its tensors' byte counts): INVALID_ARGUMENT;
//   * the overload controller (overload.h) may shed its priority level:
//     RESOURCE_EXHAUSTED "shed: overload level N ...";
//   * a full queue (max_queue_size over all levels) answers
//     RESOURCE_EXHAUSTED at once, naming the model and the limit;
//   * a draining batcher answers UNAVAILABLE.
// Deadlines: the request's timeout_us, capped by default_timeout_us (0 =
// none), counted from Submit. A request still queued at its deadline is
// failed DEADLINE_EXCEEDED by a timer (or an idle worker) at that moment,
// even while every instance is busy with a long batch (unlike Triton,
// server#7512). A request already executing finishes.
// Batch formation (a free worker, under the batcher's mutex):
//   * without dynamic_batching, or with max_batch_size 0: one request per
//     Execute, highest priority first;
//   * else take requests highest priority first, FIFO within a level, while
//     their rows sum to ≤ max_batch_size and their inputs have the same
//     names and non-batch dimensions as the first (a request that does not
//     fit ends the batch);
//   * send at once the largest prefix whose rows equal a preferred batch
//     size; else send everything taken when the batch is full (the next
//     request does not fit, or rows == max_batch_size), when the oldest
//     queued request has waited max_queue_delay_us, or when draining; else
//     wait.
//   * Before executing, requests whose `cancelled` hook says so are dropped
//     (CANCELLED), and those past their deadline fail.
//   * Requests asking for different outputs share a batch: the union is
//     executed and each gets the outputs it named, in its order.
//
// Threads: instances.size() workers (each owns one ModelInstance; Execute is
// never called concurrently on one instance), one timer, and one responder
// that splits and answers a finished batch while its worker runs the next
// one (only when more work is queued; at low load the worker answers
// itself). State is guarded by one mutex; Submit takes it once. `done` runs
// on a batcher thread (or inline in Submit when the request is refused) and
// must not block for long: it delays the next answers.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "serving/backend.h"
#include "serving/infer_request.h"
#include "serving/model_config.h"
#include "serving/overload.h"
#include "serving/serving_metrics.h"

namespace lathe::serving {

// Called exactly once with the answer.
using InferDone = std::function<void(StatusOr<InferResponse>)>;

// What a front end knows about a request beyond its wire form.
struct RequestContext {
  // Polled once just before the request executes; true means its client
  // has gone and it is dropped with CANCELLED. Runs on a worker thread: it
  // must be cheap and thread-safe (an atomic load). Empty = never.
  std::function<bool()> cancelled;
};

struct BatcherOptions {
  // Where the per-version metrics go; null = DefaultServingMetrics().
  ServingMetrics* metrics = nullptr;
  // Overload control window and hysteresis (the objective is the config's
  // slo.p99_ms; none = no shedding).
  OverloadOptions overload;
};

class DynamicBatcher {
 public:
  // Starts one worker per instance (instances must not be empty) and the
  // timer thread. `version` labels metrics and responses.
  DynamicBatcher(std::shared_ptr<const ModelConfig> config, int64_t version,
                 std::vector<std::unique_ptr<ModelInstance>> instances,
                 BatcherOptions options = {});
  // Drains (see Drain). Must not run on a batcher thread (from `done`).
  ~DynamicBatcher();

  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  // Queues `request`; `done` gets the response or the error exactly once.
  // Thread-safe. Costs one validation, one lock and, when a worker is idle,
  // one wake-up.
  void Submit(InferRequest request, InferDone done, RequestContext context = {});

  // As Submit, except that when the batcher is draining it returns false
  // and leaves the arguments untouched (not answered), so the caller can
  // route the request to the version that replaced this one. Returns true
  // when the request was taken (and will be, or was, answered).
  bool TrySubmit(InferRequest& request, InferDone& done, RequestContext& context);

  // Stops admitting (UNAVAILABLE / TrySubmit false), runs everything queued
  // without waiting for batch delays, waits for running batches and their
  // answers, stops the threads and destroys the instances. Idempotent and
  // thread-safe; must not be called from a batcher thread.
  void Drain();

  const ModelConfig& config() const { return *config_; }
  int64_t version() const { return version_; }
  // Current overload level (0 = nothing shed); also the
  // lathe_inference_overload_level gauge.
  int overload_level() const { return overload_.level(); }
  // The overload window's last p99 in nanoseconds.
  int64_t window_p99_ns() const { return overload_.window_p99_ns(); }
  // Requests waiting for a batch now.
  int64_t queue_depth() const;
  // Triton-style statistics since construction.
  ModelStatistics Statistics() const;

 private:
  struct Pending;
  class Queue;
  struct Executed;

  void WorkerLoop(size_t index);
  void TimerLoop();
  // Requires mu_. Moves the requests whose deadline is ≤ now into `out` and
  // recomputes next_deadline_.
  void ExpireLocked(int64_t now, std::vector<Pending>* out);
  // Requires mu_. Moves a batch into `batch` when one is ready; otherwise
  // leaves it empty and returns when it will be (by the queue delay).
  int64_t FormBatchLocked(int64_t now, std::vector<Pending>* batch);
  // Requires mu_.
  void TakeLocked(size_t count, std::vector<Pending>* batch);
  void SignalIfDrainedLocked();
  // Drops cancelled and expired requests, runs the rest; null when none
  // was left.
  std::unique_ptr<Executed> ExecuteBatch(ModelInstance& instance, std::vector<Pending>* batch);
  // Splits the outputs and answers every request of the batch.
  void Answer(Executed& executed);
  void ResponderLoop();
  void Fail(Pending& p, const Status& status, FailureReason reason, int64_t now);
  void FailAll(std::vector<Pending>* list, FailureReason reason);
  void Refuse(InferDone& done, const Status& status, FailureReason reason, int64_t start);

  const std::shared_ptr<const ModelConfig> config_;
  const int64_t version_;
  const std::string version_name_;
  // Batching parameters from the config.
  const bool batching_;           // dynamic_batching set and max_batch_size > 0
  const int64_t max_batch_size_;  // rows per Execute when batching_
  const int64_t max_delay_ns_;
  const std::vector<int64_t> preferred_;  // ascending
  const int64_t min_preferred_;           // 0 when none
  const int64_t max_queue_size_;          // 0 = unbounded
  const int64_t default_timeout_ns_;      // 0 = none
  const int levels_;                      // ≥ 1
  const int default_level_;               // 0-based index

  ServingMetrics::Version metrics_;
  StatisticsRecorder stats_;
  OverloadController overload_;

  std::vector<std::unique_ptr<ModelInstance>> instances_;  // one per worker

  mutable std::mutex mu_;
  std::condition_variable work_cv_;     // workers: work, batch ready, draining
  std::condition_variable timer_cv_;    // the timer: an earlier deadline
  std::condition_variable drained_cv_;  // Drain: queue empty, nothing running
  std::vector<Queue> queues_;           // guarded by mu_; one per priority level
  int64_t queued_ = 0;                  // guarded by mu_; requests in queues_
  int64_t queued_rows_ = 0;             // guarded by mu_
  int64_t next_deadline_;               // guarded by mu_; ≤ every queued deadline
  int64_t timer_wake_;                  // guarded by mu_; when the timer wakes by itself
  int idle_ = 0;                        // guarded by mu_; workers waiting on work_cv_
  int running_ = 0;                     // guarded by mu_; batches taken, not yet answered
  std::deque<std::unique_ptr<Executed>> answers_;  // guarded by mu_; for the responder
  std::condition_variable answer_cv_;              // the responder: answers_ not empty
  bool draining_ = false;                          // guarded by mu_
  bool stopping_ = false;                          // guarded by mu_

  std::mutex drain_mu_;   // serialises Drain
  bool drained_ = false;  // guarded by drain_mu_
  std::vector<std::thread> workers_;
  std::thread timer_;
  std::thread responder_;
};

}  // namespace lathe::serving
