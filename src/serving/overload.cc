#include "serving/overload.h"

#include <algorithm>
#include <bit>

namespace lathe::serving {

namespace {

constexpr uint64_t kMaxMicros = (uint64_t{1} << 41) - 1;

// Quarter-octave bucket of a latency: microseconds 0..3 map to 0..3; from 4
// on, (highest bit) × 4 + the next two bits.
int BucketOf(int64_t ns) {
  uint64_t us = ns <= 0 ? 0 : std::min<uint64_t>(static_cast<uint64_t>(ns) / 1000, kMaxMicros);
  if (us < 4) return static_cast<int>(us);
  int msb = 63 - std::countl_zero(us);
  return msb * 4 + static_cast<int>((us >> (msb - 2)) & 3);
}

// The exclusive upper bound of a bucket, in nanoseconds (the p99 reported
// errs high).
int64_t BucketUpperNs(int b) {
  if (b < 8) return int64_t{b + 1} * 1000;
  int msb = b / 4;
  int frac = b % 4;
  return (int64_t{5 + frac} << (msb - 2)) * 1000;
}

}  // namespace

OverloadController::OverloadController(int64_t objective_ns, int max_level, OverloadOptions options)
    : objective_ns_(std::max<int64_t>(objective_ns, 0)),
      max_level_(std::max(max_level, 0)),
      options_(options),
      slice_ns_(std::max<int64_t>(options.window_ns / std::max(options.slices, 1), 1)),
      slices_(static_cast<size_t>(std::max(options.slices, 1))) {}

void OverloadController::Record(int64_t now_ns, std::span<const int64_t> latencies_ns) {
  if (objective_ns_ == 0 || latencies_ns.empty()) return;
  const int64_t epoch = now_ns / slice_ns_;
  std::lock_guard<std::mutex> lock(mu_);
  Slice& s = slices_[static_cast<size_t>(epoch % static_cast<int64_t>(slices_.size()))];
  if (s.epoch != epoch) {
    s.epoch = epoch;
    s.count = 0;
    s.buckets.fill(0);
  }
  for (int64_t ns : latencies_ns) ++s.buckets[static_cast<size_t>(BucketOf(ns))];
  s.count += static_cast<int64_t>(latencies_ns.size());
}

int64_t OverloadController::P99Locked(int64_t now_ns, int64_t* count) const {
  const int64_t epoch = now_ns / slice_ns_;
  const int64_t oldest = epoch - static_cast<int64_t>(slices_.size()) + 1;
  std::array<uint64_t, kBuckets> sum{};
  uint64_t n = 0;
  for (const Slice& s : slices_) {
    if (s.epoch < oldest || s.epoch > epoch || s.count == 0) continue;
    for (int b = 0; b < kBuckets; ++b)
      sum[static_cast<size_t>(b)] += s.buckets[static_cast<size_t>(b)];
    n += static_cast<uint64_t>(s.count);
  }
  *count = static_cast<int64_t>(n);
  if (n == 0) return 0;
  const uint64_t rank = (n * 99 + 99) / 100;  // ceil(0.99 n)
  uint64_t acc = 0;
  for (int b = 0; b < kBuckets; ++b) {
    acc += sum[static_cast<size_t>(b)];
    if (acc >= rank) return BucketUpperNs(b);
  }
  return BucketUpperNs(kBuckets - 1);
}

int64_t OverloadController::WindowP99Ns(int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t count;
  return P99Locked(now_ns, &count);
}

void OverloadController::ChangeLocked(int delta, int64_t now_ns) {
  level_.store(level_.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  last_change_ns_ = now_ns;
  window_start_ns_ = now_ns;
  for (Slice& s : slices_) s.epoch = -1;
}

void OverloadController::Evaluate(int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  if (now_ns < next_eval_ns_.load(std::memory_order_relaxed)) return;  // another thread did it
  next_eval_ns_.store((now_ns / slice_ns_ + 1) * slice_ns_, std::memory_order_relaxed);
  if (!started_) {
    started_ = true;
    last_change_ns_ = window_start_ns_ = now_ns;
  }
  int64_t count = 0;
  const int64_t p99 = P99Locked(now_ns, &count);
  p99_ns_.store(p99, std::memory_order_relaxed);
  if (now_ns - last_change_ns_ < options_.hold_ns) return;
  const int level = level_.load(std::memory_order_relaxed);
  if (count >= options_.min_samples) {
    if (p99 > objective_ns_ && level < max_level_) {
      ChangeLocked(+1, now_ns);
    } else if (level > 0 && static_cast<double>(p99) <
                                options_.recover_ratio * static_cast<double>(objective_ns_)) {
      ChangeLocked(-1, now_ns);
    }
  } else if (level > 0 && now_ns - window_start_ns_ >= options_.window_ns) {
    // Too little traffic to judge for a whole window (the shed levels send
    // nothing measurable): step down and see.
    ChangeLocked(-1, now_ns);
  }
}

}  // namespace lathe::serving
