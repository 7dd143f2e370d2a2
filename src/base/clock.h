// Time, injectable. Production code takes a `Clock&`; tests pass a FakeClock.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

namespace lathe {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, microseconds since the Unix epoch.
  virtual int64_t NowMicros() const = 0;
  // Monotonic time for measuring intervals, nanoseconds from an arbitrary origin.
  virtual int64_t MonotonicNanos() const = 0;
};

// The process-wide real clock. Thread-safe.
Clock& SystemClock();

// A clock that moves only when told. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now_micros = 1'700'000'000'000'000) : now_(now_micros) {}
  int64_t NowMicros() const override;
  int64_t MonotonicNanos() const override;
  void Advance(int64_t micros);
  void Set(int64_t now_micros);

 private:
  mutable std::mutex mu_;
  int64_t now_;  // guarded by mu_
};

// RFC 3339 in UTC with millisecond precision: "2026-11-23T01:07:22.123Z".
std::string FormatRfc3339(int64_t micros_since_epoch);

}  // namespace lathe
