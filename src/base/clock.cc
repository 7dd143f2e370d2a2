#include "base/clock.h"

#include <chrono>
#include <ctime>

#include <fmt/core.h>

namespace lathe {
namespace {

class RealClock final : public Clock {
 public:
  int64_t NowMicros() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t MonotonicNanos() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace

Clock& SystemClock() {
  static RealClock* const kClock = new RealClock();
  return *kClock;
}

int64_t FakeClock::NowMicros() const {
  std::lock_guard<std::mutex> lock(mu_);
  return now_;
}

int64_t FakeClock::MonotonicNanos() const {
  std::lock_guard<std::mutex> lock(mu_);
  return now_ * 1000;
}

void FakeClock::Advance(int64_t micros) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ += micros;
}

void FakeClock::Set(int64_t now_micros) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ = now_micros;
}

std::string FormatRfc3339(int64_t micros) {
  int64_t secs = micros / 1'000'000;
  int64_t rem = micros % 1'000'000;
  if (rem < 0) {
    rem += 1'000'000;
    --secs;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, rem / 1000);
}

}  // namespace lathe
