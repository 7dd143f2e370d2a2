#include "serving/batcher.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstring>
#include <deque>
#include <limits>

#include <fmt/core.h>

#include "base/clock.h"

namespace lathe::serving {

namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
// timer_wake_ while the timer thread is awake (it rechecks before sleeping).
constexpr int64_t kAwake = std::numeric_limits<int64_t>::min();
// Timeouts above this (about 11.5 days) are treated as this, so µs → ns
// cannot overflow.
constexpr int64_t kMaxTimeoutUs = int64_t{1'000'000} * 1'000'000;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::chrono::steady_clock::time_point TimePoint(int64_t ns) {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::nanoseconds(ns)));
}

int64_t NowMs() { return SystemClock().NowMicros() / 1000; }

// Byte offsets in `t` (whose first dimension is `rows`) at the row
// boundaries in `cuts` (ascending row numbers, first 0, last rows).
StatusOr<std::vector<size_t>> RowOffsets(const Tensor& t, const std::vector<int64_t>& cuts) {
  std::vector<size_t> offsets;
  offsets.reserve(cuts.size());
  const int64_t rows = t.shape.empty() ? 1 : t.shape[0];
  if (t.type != DataType::kBytes) {
    const size_t row_bytes = rows == 0 ? 0 : t.data.size() / static_cast<size_t>(rows);
    for (int64_t c : cuts) offsets.push_back(static_cast<size_t>(c) * row_bytes);
    return offsets;
  }
  int64_t per_row = 1;
  for (size_t d = 1; d < t.shape.size(); ++d) per_row *= t.shape[d];
  std::string_view bytes = t.data.bytes();
  size_t pos = 0;
  int64_t row = 0;
  for (int64_t c : cuts) {
    for (; row < c; ++row) {
      for (int64_t e = 0; e < per_row; ++e) {
        uint32_t len;
        if (bytes.size() - pos < sizeof len) return InternalError("truncated BYTES output");
        std::memcpy(&len, bytes.data() + pos, sizeof len);
        pos += sizeof len;
        if (bytes.size() - pos < len) return InternalError("truncated BYTES output");
        pos += len;
      }
    }
    offsets.push_back(pos);
  }
  return offsets;
}

}  // namespace

struct DynamicBatcher::Pending {
  InferRequest request;
  InferDone done;
  std::function<bool()> cancelled;
  int64_t rows = 0;
  int64_t arrival = 0;        // monotonic ns
  int64_t deadline = kNever;  // monotonic ns
};

// One priority level's FIFO: a ring buffer that allocates only to grow.
class DynamicBatcher::Queue {
 public:
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  Pending& operator[](size_t i) { return buf_[(head_ + i) & (buf_.size() - 1)]; }
  Pending& front() { return (*this)[0]; }

  void PushBack(Pending&& p) {
    if (size_ == buf_.size()) Grow();
    // While deadlines arrive in order (one timeout for everyone, the common
    // case) the expired requests are always at the front.
    monotone_ = size_ == 0 || (monotone_ && p.deadline >= (*this)[size_ - 1].deadline);
    (*this)[size_] = std::move(p);
    ++size_;
  }

  Pending PopFront() {
    Pending p = std::move(front());
    head_ = (head_ + 1) & (buf_.size() - 1);
    if (--size_ == 0) head_ = 0;
    return p;
  }

  // Moves the requests whose deadline is ≤ now to `out`, in order; returns
  // the earliest deadline left (kNever if none).
  int64_t ExtractExpired(int64_t now, std::vector<Pending>* out) {
    if (monotone_) {
      while (size_ > 0 && front().deadline <= now) out->push_back(PopFront());
      return size_ > 0 ? front().deadline : kNever;
    }
    int64_t next = kNever;
    size_t kept = 0;
    for (size_t i = 0; i < size_; ++i) {
      Pending& p = (*this)[i];
      if (p.deadline <= now) {
        out->push_back(std::move(p));
        continue;
      }
      next = std::min(next, p.deadline);
      if (kept != i) (*this)[kept] = std::move(p);
      ++kept;
    }
    size_ = kept;
    if (size_ == 0) {
      head_ = 0;
      monotone_ = true;
    }
    return next;
  }

 private:
  void Grow() {
    std::vector<Pending> next(std::max<size_t>(8, buf_.size() * 2));
    for (size_t i = 0; i < size_; ++i) next[i] = std::move((*this)[i]);
    buf_.swap(next);
    head_ = 0;
  }

  std::vector<Pending> buf_;  // size is 0 or a power of two
  size_t head_ = 0;
  size_t size_ = 0;
  bool monotone_ = true;  // deadlines non-decreasing front to back
};

// A batch that has run, waiting to be split and answered.
struct DynamicBatcher::Executed {
  std::vector<Pending> batch;
  std::vector<int64_t> cuts;  // row where each request starts, then the total
  int64_t total_rows = 0;
  std::vector<std::string> names;  // the outputs asked of the model
  StatusOr<std::vector<Tensor>> result;
};

DynamicBatcher::DynamicBatcher(std::shared_ptr<const ModelConfig> config, int64_t version,
                               std::vector<std::unique_ptr<ModelInstance>> instances,
                               BatcherOptions options)
    : config_(std::move(config)),
      version_(version),
      version_name_(std::to_string(version)),
      batching_(config_->dynamic_batching.has_value() && config_->max_batch_size > 0),
      max_batch_size_(std::max<int64_t>(config_->max_batch_size, 1)),
      max_delay_ns_(config_->dynamic_batching ? config_->dynamic_batching->max_queue_delay_us * 1000
                                              : 0),
      preferred_([&] {
        std::vector<int64_t> p;
        if (config_->dynamic_batching) p = config_->dynamic_batching->preferred_batch_sizes;
        std::sort(p.begin(), p.end());
        return p;
      }()),
      min_preferred_(preferred_.empty() ? 0 : preferred_.front()),
      max_queue_size_(config_->dynamic_batching ? config_->dynamic_batching->max_queue_size : 0),
      default_timeout_ns_(
          config_->dynamic_batching
              ? std::min(config_->dynamic_batching->default_timeout_us, kMaxTimeoutUs) * 1000
              : 0),
      levels_(config_->dynamic_batching ? static_cast<int>(std::max<int64_t>(
                                              config_->dynamic_batching->priority_levels, 1))
                                        : 1),
      default_level_(config_->dynamic_batching && config_->dynamic_batching->priority_levels > 0 &&
                             config_->dynamic_batching->default_priority_level > 0
                         ? static_cast<int>(config_->dynamic_batching->default_priority_level - 1)
                         : 0),
      metrics_((options.metrics != nullptr ? *options.metrics : DefaultServingMetrics())
                   .For(config_->name, version_name_)),
      overload_(config_->slo.p99_ms * 1'000'000, levels_ - 1, options.overload),
      instances_(std::move(instances)),
      next_deadline_(kNever),
      timer_wake_(kAwake) {
  queues_.resize(static_cast<size_t>(levels_));
  assert(!instances_.empty() && "a batcher needs at least one instance");
  if (instances_.empty()) draining_ = true;  // refuses everything rather than hang
  metrics_.overload_level->Set(0);
  metrics_.queue_depth->Set(0);
  workers_.reserve(instances_.size());
  for (size_t i = 0; i < instances_.size(); ++i) {
    workers_.emplace_back([this, i] { WorkerLoop(i); });
  }
  timer_ = std::thread([this] { TimerLoop(); });
  responder_ = std::thread([this] { ResponderLoop(); });
}

DynamicBatcher::~DynamicBatcher() { Drain(); }

void DynamicBatcher::Submit(InferRequest request, InferDone done, RequestContext context) {
  if (!TrySubmit(request, done, context)) {
    Refuse(done,
           UnavailableError(
               fmt::format("model \"{}\" version {} is unloading", config_->name, version_)),
           FailureReason::kUnavailable, NowNs());
  }
}

bool DynamicBatcher::TrySubmit(InferRequest& request, InferDone& done, RequestContext& context) {
  const int64_t start = NowNs();
  StatusOr<int64_t> rows = ValidateInferRequest(request, *config_);
  if (!rows.ok()) {
    Refuse(done, rows.status(), FailureReason::kInvalid, start);
    return true;
  }
  // The batcher concatenates by bytes, so a tensor whose bytes do not match
  // its shape must not get in (decoders check this too; this is cheap).
  static const TensorLimits kNoByteLimit{TensorLimits::kDefaultMaxRank,
                                         std::numeric_limits<uint64_t>::max()};
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    const Tensor& t = request.inputs[i];
    StatusOr<int64_t> n = CheckedElementCount(t.shape, t.type, kNoByteLimit);
    Status s = n.ok() ? CheckTensorBytes(t.type, *n, t.data.bytes()) : n.status();
    if (!s.ok()) {
      Refuse(done,
             s.WithPrefix(fmt::format("inputs[{}] \"{}\"", i, t.name))
                 .WithField(fmt::format("inputs[{}].data", i)),
             FailureReason::kInvalid, start);
      return true;
    }
  }
  // Instances take inputs in config order.
  if (request.inputs.size() > 1) {
    auto index = [this](const Tensor& t) {
      return config_->FindInput(t.name) - config_->inputs.data();
    };
    auto before = [&](const Tensor& a, const Tensor& b) { return index(a) < index(b); };
    if (!std::is_sorted(request.inputs.begin(), request.inputs.end(), before)) {
      std::sort(request.inputs.begin(), request.inputs.end(), before);
    }
  }
  int level = default_level_;
  if (levels_ > 1 && request.priority > 0) level = static_cast<int>(request.priority - 1);
  int64_t timeout_ns = std::min(request.timeout_us, kMaxTimeoutUs) * 1000;
  if (default_timeout_ns_ > 0 && (timeout_ns == 0 || timeout_ns > default_timeout_ns_)) {
    timeout_ns = default_timeout_ns_;
  }
  const int64_t deadline = timeout_ns > 0 ? start + timeout_ns : kNever;

  if (!overload_.Admits(level, levels_, start)) {
    const int l = overload_.level();
    metrics_.overload_level->Set(l);
    Refuse(done,
           ResourceExhaustedError(fmt::format(
               "shed: overload level {} (model \"{}\" version {} refuses priority levels {}..{} "
               "while its p99 latency, {:.1f} ms, is over its {} ms objective)",
               l, config_->name, version_, levels_ - l + 1, levels_,
               static_cast<double>(overload_.window_p99_ns()) / 1e6, config_->slo.p99_ms)),
           FailureReason::kShed, start);
    return true;
  }

  std::unique_lock<std::mutex> lock(mu_);
  if (draining_) return false;
  if (max_queue_size_ > 0 && queued_ >= max_queue_size_) {
    lock.unlock();
    Refuse(done,
           ResourceExhaustedError(fmt::format(
               "model \"{}\" version {}: the queue is full ({} requests, max_queue_size); retry "
               "later",
               config_->name, version_, max_queue_size_)),
           FailureReason::kQueueFull, start);
    return true;
  }
  metrics_.inflight->Add(1);
  queues_[static_cast<size_t>(level)].PushBack(Pending{
      std::move(request), std::move(done), std::move(context.cancelled), *rows, start, deadline});
  ++queued_;
  queued_rows_ += *rows;
  metrics_.queue_depth->Set(static_cast<double>(queued_));
  // Wake a worker when there is something for it to do now: a batch that is
  // ready, or a first request whose delay it must time. While a batch fills
  // under a queue delay the waiting worker is not woken per request.
  const bool ready = !batching_ || max_delay_ns_ == 0 || queued_rows_ >= max_batch_size_ ||
                     (min_preferred_ > 0 && queued_rows_ >= min_preferred_);
  const bool wake_worker = idle_ > 0 && (ready || queued_ == 1);
  if (deadline < next_deadline_) next_deadline_ = deadline;
  // The timer watches deadlines unless a worker takes this request now
  // (a worker that leaves requests queued re-arms the timer).
  const bool wake_timer = !(idle_ > 0 && ready) && next_deadline_ < timer_wake_;
  lock.unlock();
  if (wake_worker) work_cv_.notify_one();
  if (wake_timer) timer_cv_.notify_one();
  return true;
}

void DynamicBatcher::Refuse(InferDone& done, const Status& status, FailureReason reason,
                            int64_t start) {
  metrics_.failure[static_cast<size_t>(reason)]->Increment();
  stats_.Failure(reason, static_cast<uint64_t>(std::max<int64_t>(NowNs() - start, 0)));
  done(status);
}

void DynamicBatcher::Fail(Pending& p, const Status& status, FailureReason reason, int64_t now) {
  const int64_t e2e = std::max<int64_t>(now - p.arrival, 0);
  metrics_.failure[static_cast<size_t>(reason)]->Increment();
  metrics_.inflight->Add(-1);
  stats_.Failure(reason, static_cast<uint64_t>(e2e));
  stats_.Answered(NowMs());
  // An expired request is a latency the objective cares about.
  if (reason == FailureReason::kTimeout) overload_.Record(now, e2e);
  p.done(status);
}

void DynamicBatcher::FailAll(std::vector<Pending>* list, FailureReason reason) {
  const int64_t now = NowNs();
  for (Pending& p : *list) {
    Status s = reason == FailureReason::kTimeout
                   ? DeadlineExceededError(fmt::format(
                         "model \"{}\" version {}: the request waited {:.1f} ms in the queue, past "
                         "its deadline",
                         config_->name, version_, static_cast<double>(now - p.arrival) / 1e6))
                   : UnavailableError(fmt::format("model \"{}\" version {} is unloading",
                                                  config_->name, version_));
    Fail(p, s, reason, now);
  }
  list->clear();
}

void DynamicBatcher::ExpireLocked(int64_t now, std::vector<Pending>* out) {
  const size_t before = out->size();
  int64_t next = kNever;
  for (Queue& q : queues_) {
    if (!q.empty()) next = std::min(next, q.ExtractExpired(now, out));
  }
  next_deadline_ = next;
  if (out->size() == before) return;
  for (size_t i = before; i < out->size(); ++i) {
    --queued_;
    queued_rows_ -= (*out)[i].rows;
  }
  metrics_.queue_depth->Set(static_cast<double>(queued_));
  SignalIfDrainedLocked();
}

void DynamicBatcher::SignalIfDrainedLocked() {
  if (draining_ && queued_ == 0 && running_ == 0) drained_cv_.notify_all();
}

void DynamicBatcher::TakeLocked(size_t count, std::vector<Pending>* batch) {
  for (Queue& q : queues_) {
    while (count > 0 && !q.empty()) {
      batch->push_back(q.PopFront());
      --count;
      --queued_;
      queued_rows_ -= batch->back().rows;
    }
    if (count == 0) break;
  }
}

int64_t DynamicBatcher::FormBatchLocked(int64_t now, std::vector<Pending>* batch) {
  if (!batching_) {
    TakeLocked(1, batch);
    return 0;
  }
  auto same_shapes = [](const Pending& a, const Pending& b) {
    const std::vector<Tensor>& x = a.request.inputs;
    const std::vector<Tensor>& y = b.request.inputs;
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (x[i].name != y[i].name || x[i].shape.size() != y[i].shape.size() ||
          !std::equal(x[i].shape.begin() + 1, x[i].shape.end(), y[i].shape.begin() + 1)) {
        return false;
      }
    }
    return true;
  };
  int64_t oldest = kNever;
  for (Queue& q : queues_) {
    if (!q.empty()) oldest = std::min(oldest, q.front().arrival);
  }
  int64_t rows = 0;
  size_t count = 0;
  size_t preferred_count = 0;
  bool full = false;
  const Pending* first = nullptr;
  for (Queue& q : queues_) {
    for (size_t i = 0; i < q.size(); ++i) {
      const Pending& p = q[i];
      if ((first != nullptr && !same_shapes(*first, p)) || rows + p.rows > max_batch_size_) {
        full = true;
        break;
      }
      if (first == nullptr) first = &p;
      rows += p.rows;
      ++count;
      if (std::binary_search(preferred_.begin(), preferred_.end(), rows)) preferred_count = count;
      if (rows == max_batch_size_) {
        full = true;
        break;
      }
    }
    if (full) break;
  }
  size_t take;
  if (preferred_count > 0) {
    take = preferred_count;
  } else if (full || draining_ || now - oldest >= max_delay_ns_) {
    take = count;
  } else {
    return oldest + max_delay_ns_;
  }
  TakeLocked(take, batch);
  return 0;
}

void DynamicBatcher::WorkerLoop(size_t index) {
  ModelInstance& instance = *instances_[index];
  std::vector<Pending> batch;
  std::vector<Pending> expired;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (queued_ == 0) {
      if (stopping_) break;
      ++idle_;
      work_cv_.wait(lock);
      --idle_;
      continue;
    }
    const int64_t now = NowNs();
    if (next_deadline_ <= now) {
      ExpireLocked(now, &expired);
      if (!expired.empty()) {
        lock.unlock();
        FailAll(&expired, FailureReason::kTimeout);
        lock.lock();
        continue;
      }
    }
    const int64_t ready_at = FormBatchLocked(now, &batch);
    if (batch.empty()) {
      ++idle_;
      work_cv_.wait_until(lock, TimePoint(ready_at));
      --idle_;
      continue;
    }
    ++running_;
    metrics_.queue_depth->Set(static_cast<double>(queued_));
    bool wake_worker = false, wake_timer = false;
    if (queued_ > 0) {
      wake_worker = idle_ > 0;
      wake_timer = next_deadline_ < timer_wake_;
    }
    lock.unlock();
    if (wake_worker) work_cv_.notify_one();
    if (wake_timer) timer_cv_.notify_one();
    std::unique_ptr<Executed> executed = ExecuteBatch(instance, &batch);
    batch.clear();
    lock.lock();
    // Splitting and answering a batch costs a few µs per request. When more
    // work waits, the responder thread does it while this instance runs the
    // next batch; at low load the worker answers itself (no extra hand-off).
    // The responder's backlog is bounded by the number of instances.
    if (executed != nullptr && queued_ > 0 && answers_.size() < instances_.size()) {
      answers_.push_back(std::move(executed));
      answer_cv_.notify_one();
      continue;  // still counted in running_ until answered
    }
    if (executed != nullptr) {
      lock.unlock();
      Answer(*executed);
      executed.reset();
      lock.lock();
    }
    --running_;
    SignalIfDrainedLocked();
  }
}

void DynamicBatcher::ResponderLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (!answers_.empty()) {
      std::unique_ptr<Executed> executed = std::move(answers_.front());
      answers_.pop_front();
      lock.unlock();
      Answer(*executed);
      executed.reset();
      lock.lock();
      --running_;
      SignalIfDrainedLocked();
      continue;
    }
    if (stopping_) break;
    answer_cv_.wait(lock);
  }
}

void DynamicBatcher::TimerLoop() {
  std::vector<Pending> expired;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const int64_t now = NowNs();
    if (next_deadline_ <= now) {
      ExpireLocked(now, &expired);
      if (!expired.empty()) {
        lock.unlock();
        FailAll(&expired, FailureReason::kTimeout);
        lock.lock();
        continue;
      }
    }
    timer_wake_ = next_deadline_;
    if (next_deadline_ == kNever) {
      timer_cv_.wait(lock);
    } else {
      timer_cv_.wait_until(lock, TimePoint(next_deadline_));
    }
    timer_wake_ = kAwake;
  }
}

std::unique_ptr<DynamicBatcher::Executed> DynamicBatcher::ExecuteBatch(
    ModelInstance& instance, std::vector<Pending>* batch_ptr) {
  std::vector<Pending>& batch = *batch_ptr;
  const int64_t taken = NowNs();
  // Drop what no one waits for any more.
  size_t kept = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    Pending& p = batch[i];
    if (p.cancelled && p.cancelled()) {
      Fail(p,
           CancelledError(fmt::format("model \"{}\" version {}: the client cancelled the request",
                                      config_->name, version_)),
           FailureReason::kCancelled, taken);
      continue;
    }
    if (p.deadline <= taken) {
      Fail(p,
           DeadlineExceededError(fmt::format(
               "model \"{}\" version {}: the request waited {:.1f} ms in the queue, past its "
               "deadline",
               config_->name, version_, static_cast<double>(taken - p.arrival) / 1e6)),
           FailureReason::kTimeout, taken);
      continue;
    }
    if (kept != i) batch[kept] = std::move(p);
    ++kept;
  }
  batch.erase(batch.begin() + static_cast<ptrdiff_t>(kept), batch.end());
  if (batch.empty()) return nullptr;

  const size_t n = batch.size();
  int64_t total_rows = 0;
  std::vector<int64_t> cuts(n + 1, 0);  // row where each request starts, then the total
  for (size_t i = 0; i < n; ++i) {
    total_rows += batch[i].rows;
    cuts[i + 1] = total_rows;
  }

  // Inputs: the single request's own tensors, or one buffer per input
  // holding every request's rows in order.
  std::vector<Tensor> merged;
  const std::vector<Tensor>* inputs = &batch[0].request.inputs;
  if (n > 1) {
    merged.reserve(inputs->size());
    for (size_t k = 0; k < inputs->size(); ++k) {
      size_t bytes = 0;
      for (const Pending& p : batch) bytes += p.request.inputs[k].data.size();
      std::shared_ptr<char[]> buf = std::make_shared_for_overwrite<char[]>(bytes);
      char* w = buf.get();
      for (const Pending& p : batch) {
        const TensorData& d = p.request.inputs[k].data;
        if (d.size() > 0) std::memcpy(w, d.data(), d.size());
        w += d.size();
      }
      const Tensor& t0 = (*inputs)[k];
      Tensor t{t0.name, t0.type, t0.shape, {}};
      t.shape[0] = total_rows;
      t.data = TensorData(std::shared_ptr<const void>(buf, buf.get()),
                          std::string_view(buf.get(), bytes));
      merged.push_back(std::move(t));
    }
    inputs = &merged;
  }

  // Outputs: what the one request asked for, else the union (all of them
  // when any request asked for all).
  std::vector<std::string> names;
  bool all = false;
  for (const Pending& p : batch) all = all || p.request.outputs.empty();
  if (!all) {
    if (n == 1) {
      for (const RequestedOutput& o : batch[0].request.outputs) names.push_back(o.name);
    } else {
      for (const TensorConfig& c : config_->outputs) {
        bool wanted = false;
        for (const Pending& p : batch) {
          for (const RequestedOutput& o : p.request.outputs) wanted = wanted || o.name == c.name;
          if (wanted) break;
        }
        if (wanted) names.push_back(c.name);
      }
    }
  }

  const int64_t exec_start = NowNs();
  StatusOr<std::vector<Tensor>> result = instance.Execute(*inputs, names);
  const int64_t exec_end = NowNs();
  const int64_t compute_ns = exec_end - exec_start;

  metrics_.exec_count->Increment();
  metrics_.inference_count->Increment(static_cast<uint64_t>(total_rows));
  metrics_.compute_duration->Observe(static_cast<double>(compute_ns) / 1e9);
  metrics_.batch_size->Observe(static_cast<double>(total_rows));
  uint64_t queue_sum = 0;
  for (const Pending& p : batch) {
    const int64_t q = exec_start - p.arrival;
    queue_sum += static_cast<uint64_t>(q);
    metrics_.queue_duration->Observe(static_cast<double>(q) / 1e9);
  }
  stats_.Executed(static_cast<uint64_t>(total_rows), n, queue_sum,
                  static_cast<uint64_t>(compute_ns));
  return std::make_unique<Executed>(
      Executed{std::move(batch), std::move(cuts), total_rows, std::move(names), std::move(result)});
}

void DynamicBatcher::Answer(Executed& executed) {
  std::vector<Pending>& batch = executed.batch;
  const std::vector<int64_t>& cuts = executed.cuts;
  const int64_t total_rows = executed.total_rows;
  const std::vector<std::string>& names = executed.names;
  StatusOr<std::vector<Tensor>>& result = executed.result;
  const size_t n = batch.size();

  // Check the outputs and find each request's slice of them.
  Status error;
  std::vector<std::vector<size_t>> offsets;  // per output, per cut
  std::vector<std::shared_ptr<const Tensor>> held;
  if (!result.ok()) {
    error =
        result.status().WithPrefix(fmt::format("model \"{}\" version {}", config_->name, version_));
  } else {
    std::vector<Tensor>& outs = *result;
    if (!names.empty() && outs.size() != names.size()) {
      error = InternalError(
          fmt::format("model \"{}\" version {}: the backend returned {} outputs for {} requested",
                      config_->name, version_, outs.size(), names.size()));
    }
    for (size_t k = 0; error.ok() && k < outs.size(); ++k) {
      const Tensor& t = outs[k];
      Status s = CheckTensorData(t);
      if (s.ok() && batching_ && (t.shape.empty() || t.shape[0] != total_rows)) {
        s = InternalError(fmt::format("\"{}\": shape {} does not have the batch's {} rows first",
                                      t.name, FormatShape(t.shape), total_rows));
      }
      if (s.ok() && n > 1) {
        StatusOr<std::vector<size_t>> o = RowOffsets(t, cuts);
        if (o.ok()) {
          offsets.push_back(*std::move(o));
        } else {
          s = o.status();
        }
      }
      if (!s.ok()) {
        error = InternalError(fmt::format("model \"{}\" version {}: backend output {}",
                                          config_->name, version_, s.message()));
      }
    }
    if (error.ok() && n > 1) {
      held.reserve(outs.size());
      for (Tensor& t : outs) held.push_back(std::make_shared<const Tensor>(std::move(t)));
    }
  }

  const int64_t end = NowNs();
  const int64_t now_ms = NowMs();
  std::vector<int64_t> latencies;
  latencies.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    Pending& p = batch[i];
    if (!error.ok()) {
      Fail(p, error, FailureReason::kBackendError, end);
      continue;
    }
    InferResponse r;
    r.model_name = config_->name;
    r.model_version = version_name_;
    r.id = std::move(p.request.id);
    // Output k of the batch, this request's rows.
    auto slice = [&](size_t k) {
      if (n == 1) return std::move((*result)[k]);
      const Tensor& t = *held[k];
      Tensor s{t.name, t.type, t.shape, {}};
      if (batching_) s.shape[0] = p.rows;
      const size_t from = offsets[k][i];
      s.data = TensorData(held[k], t.data.bytes().substr(from, offsets[k][i + 1] - from));
      return s;
    };
    auto find = [&](const std::string& name) -> size_t {
      const size_t count = n == 1 ? result->size() : held.size();
      for (size_t k = 0; k < count; ++k) {
        const std::string& have = n == 1 ? (*result)[k].name : held[k]->name;
        if (have == name) return k;
      }
      return count;
    };
    Status missing;
    if (p.request.outputs.empty()) {
      const size_t count = n == 1 ? result->size() : held.size();
      r.outputs.reserve(count);
      for (size_t k = 0; k < count; ++k) r.outputs.push_back(slice(k));
    } else {
      r.outputs.reserve(p.request.outputs.size());
      for (const RequestedOutput& o : p.request.outputs) {
        size_t k = find(o.name);
        if (k == (n == 1 ? result->size() : held.size())) {
          missing =
              InternalError(fmt::format("model \"{}\" version {}: the backend returned no "
                                        "output \"{}\"",
                                        config_->name, version_, o.name));
          break;
        }
        r.outputs.push_back(slice(k));
      }
    }
    if (!missing.ok()) {
      Fail(p, missing, FailureReason::kBackendError, end);
      continue;
    }
    const int64_t e2e = end - p.arrival;
    latencies.push_back(e2e);
    metrics_.success->Increment();
    metrics_.request_duration->Observe(static_cast<double>(e2e) / 1e9);
    metrics_.inflight->Add(-1);
    stats_.Success(static_cast<uint64_t>(e2e));
    stats_.Answered(now_ms);
    p.done(std::move(r));
  }
  overload_.Record(end, latencies);
  metrics_.overload_level->Set(overload_.Level(end));
  metrics_.window_p99->Set(static_cast<double>(overload_.window_p99_ns()) / 1e9);
}

void DynamicBatcher::Drain() {
  std::lock_guard<std::mutex> drain_lock(drain_mu_);
  if (drained_) return;
  {
    std::unique_lock<std::mutex> lock(mu_);
    draining_ = true;
    work_cv_.notify_all();
    drained_cv_.wait(lock, [this] { return queued_ == 0 && running_ == 0; });
    stopping_ = true;
  }
  work_cv_.notify_all();
  timer_cv_.notify_all();
  answer_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  timer_.join();
  responder_.join();
  instances_.clear();
  drained_ = true;
}

int64_t DynamicBatcher::queue_depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_;
}

ModelStatistics DynamicBatcher::Statistics() const {
  return stats_.Snapshot(config_->name, version_name_);
}

}  // namespace lathe::serving
