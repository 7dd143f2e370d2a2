// IANA time zones from the system's TZif files (/usr/share/zoneinfo, the
// tzdata package): UTC offsets over time, for cron schedules.
//
// A TimeZone is immutable once built and safe to share between threads.
// Times are whole seconds since the Unix epoch; "local seconds" are seconds
// since 1970-01-01 00:00 of the zone's wall clock (a civil time, not an
// instant). Leap seconds are ignored (POSIX time), as cron does.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace lathe {

// Proleptic Gregorian calendar arithmetic (valid far beyond any TZif range).
struct CivilDate {
  int64_t year = 1970;
  int month = 1;  // 1..12
  int day = 1;    // 1..31
};
// Days since 1970-01-01 of a civil date (negative before). The date need not
// be normalised: day 0 is the last day of the previous month.
int64_t DaysFromCivil(int64_t year, int month, int day);
CivilDate CivilFromDays(int64_t days);
// 0 = Sunday … 6 = Saturday.
int WeekdayFromDays(int64_t days);
bool IsLeapYear(int64_t year);
int DaysInMonth(int64_t year, int month);
// Floor division, for times before the epoch.
inline int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

class TimeZone {
 public:
  // UTC (no file needed).
  static std::shared_ptr<const TimeZone> Utc();
  // Parses TZif (versions 1-4; the 64-bit block when present, and the footer
  // POSIX TZ string for times after the last transition). INVALID_ARGUMENT
  // when `data` is not TZif or its footer is not a TZ string.
  static StatusOr<std::shared_ptr<const TimeZone>> FromTzif(std::string name,
                                                            std::string_view data);

  const std::string& name() const { return name_; }
  // Offset from UTC in seconds at the instant `utc_seconds`.
  int32_t OffsetAt(int64_t utc_seconds) const;
  // The instants whose local wall time is `local_seconds` (seconds since
  // 1970-01-01 00:00 local): one normally, two in a fall-back overlap
  // (earliest first), none in a spring-forward gap.
  std::vector<int64_t> LocalToUtc(int64_t local_seconds) const;

  // A change of the UTC offset: from `at` on the offset is `after`, just
  // before it was `before` (never equal: transitions that only rename the
  // zone's abbreviation are not changes).
  struct Change {
    int64_t at = 0;
    int32_t before = 0;
    int32_t after = 0;
  };
  // The first change strictly after `utc_seconds`, nullopt when the offset
  // never changes again. O(log transitions).
  std::optional<Change> NextChange(int64_t utc_seconds) const;
  // The last change at or before `utc_seconds`, nullopt when none.
  std::optional<Change> PrevChange(int64_t utc_seconds) const;

  struct PosixRule;  // the footer's rule (timezone.cc)

 private:
  struct Transition {
    int64_t at;      // UTC seconds
    int32_t offset;  // seconds east of UTC from `at` on
  };
  // Changes of the footer rule whose year is in [year_from, year_to],
  // oldest first, each with the offset in effect from it on.
  std::vector<Transition> RuleTransitions(int64_t year_from, int64_t year_to) const;
  // True when `t` is governed by the footer rule.
  bool InRule(int64_t t) const;

  std::string name_;
  int32_t initial_offset_ = 0;
  std::vector<Transition> transitions_;
  // After the last transition: the POSIX TZ rule of the footer (null = the
  // last offset holds forever).
  std::shared_ptr<const PosixRule> rule_;
};

// Loads `name` ("Europe/Berlin", "UTC") from $TZDIR, or /usr/share/zoneinfo
// when $TZDIR is unset. INVALID_ARGUMENT for names with "..", a leading '/'
// or characters outside [A-Za-z0-9_+-/]; NOT_FOUND "unknown time zone
// \"Mars/Base\"" when no such file exists; INVALID_ARGUMENT when the file is
// not TZif. "UTC" and "Etc/UTC" work without tzdata. Zones are cached per
// process (keyed by directory and name); thread-safe.
StatusOr<std::shared_ptr<const TimeZone>> LoadTimeZone(const std::string& name);
// The name checks of LoadTimeZone alone (no file is read).
Status CheckTimeZoneName(const std::string& name);

}  // namespace lathe
