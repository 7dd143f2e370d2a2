// IANA time zones from the system's TZif files (/usr/share/zoneinfo, the
// tzdata package): UTC offsets over time, for cron schedules.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace lathe {

class TimeZone {
 public:
  // UTC (no file needed).
  static std::shared_ptr<const TimeZone> Utc();
  // Parses TZif (versions 1-3; the 64-bit block when present, and the footer
  // POSIX TZ string for times after the last transition). INVALID_ARGUMENT
  // when `data` is not TZif.
  static StatusOr<std::shared_ptr<const TimeZone>> FromTzif(std::string name,
                                                            std::string_view data);

  const std::string& name() const { return name_; }
  // Offset from UTC in seconds at the instant `utc_seconds`.
  int32_t OffsetAt(int64_t utc_seconds) const;
  // The instants whose local wall time is `local_seconds` (seconds since
  // 1970-01-01 00:00 local): one normally, two in a fall-back overlap
  // (earliest first), none in a spring-forward gap.
  std::vector<int64_t> LocalToUtc(int64_t local_seconds) const;

 private:
  struct Transition {
    int64_t at;       // UTC seconds
    int32_t offset;   // seconds east of UTC from `at` on
  };
  std::string name_;
  int32_t initial_offset_ = 0;
  std::vector<Transition> transitions_;
  // After the last transition: the POSIX TZ rule of the footer ("" = the
  // last offset holds forever).
  struct PosixRule;
  std::shared_ptr<const PosixRule> rule_;
};

// Loads `name` ("Europe/Berlin", "UTC") from `dir` (default
// /usr/share/zoneinfo, overridden by $TZDIR). INVALID_ARGUMENT for names
// with ".." or a leading '/', NOT_FOUND "unknown time zone" otherwise.
// Zones are cached per process; thread-safe.
StatusOr<std::shared_ptr<const TimeZone>> LoadTimeZone(const std::string& name);

}  // namespace lathe
