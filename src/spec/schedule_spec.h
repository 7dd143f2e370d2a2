// Schedules (docs/pipelines.md "Schedules"): cron expressions with a time
// zone or a fixed interval, start/end, catchup, overlap policy, skips; and
// the pure planning functions the schedule controller calls with the time
// it reads from an injected Clock.
//
// Ticks. A schedule fires at tick times T1 < T2 < …; the run created for
// tick Ti covers the data interval [T(i-1), Ti) (the interval ends at the
// tick, as in Airflow) and is created at or after Ti. Runs receive
// `scheduled_time` = Ti, `data_interval_start` = T(i-1) (for the first tick:
// Ti minus one period) and `data_interval_end` = Ti, as RFC 3339 strings.
//
// Cron: 5 fields "m h dom mon dow" (numbers, names JAN…DEC / SUN…SAT, `*`,
// ranges, steps, lists; dom and dow both restricted = either matches, as in
// Vixie cron) and the macros @yearly @annually @monthly @weekly @daily
// @midnight @hourly. Fields are matched in the schedule's IANA time zone
// (default UTC). Daylight-saving rules, documented in docs/pipelines.md:
//   - a local time that does not exist (spring forward gap) fires once, at
//     the first instant after the gap (02:30 on a 02:00→03:00 day fires at
//     03:00 local);
//   - a local time that occurs twice (fall back) fires once, at its first
//     occurrence;
//   - schedules whose hour field is `*` fire every real hour (minute fields
//     match each UTC hour that exists).
// Interval: every N seconds from `start` (required for intervals).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "base/timezone.h"

namespace lathe::spec {

// A parsed cron expression.
struct CronExpr {
  std::string text;
  // Bit sets: minute 0..59, hour 0..23, dom 1..31, month 1..12, dow 0..6 (0 = Sunday).
  uint64_t minutes = 0;
  uint32_t hours = 0;
  uint32_t days_of_month = 0;
  uint16_t months = 0;
  uint8_t days_of_week = 0;
  bool dom_restricted = false;  // field was not `*`
  bool dow_restricted = false;
};

// INVALID_ARGUMENT naming `field` and the bad token ("cron: minute 61 out of
// range 0-59", "cron: expected 5 fields, got 6").
StatusOr<CronExpr> ParseCron(std::string_view text, const std::string& field);

// The first tick strictly after `after_us` (µs since the epoch) in zone `tz`.
// Searches at most 5 years ahead; NOT_FOUND when none (e.g. "0 0 30 2 *").
StatusOr<int64_t> NextCronTick(const CronExpr& cron, const TimeZone& tz, int64_t after_us);

enum class OverlapPolicy { kAllow, kForbid, kReplace };
std::string_view OverlapPolicyName(OverlapPolicy p);  // "Allow", "Forbid", "Replace"

struct ScheduleSpec {
  std::string name;      // [a-z0-9-], 1..63, unique in the project
  std::string project;   // "" when the document has none
  std::string pipeline;  // pipeline name in the same project
  std::optional<int64_t> pipeline_version;  // absent = latest at each tick
  std::optional<CronExpr> cron;             // exactly one of cron / interval
  std::optional<int64_t> interval_seconds;
  std::string timezone = "UTC";             // IANA name
  std::optional<int64_t> start_us;          // no tick before (RFC 3339 in the document)
  std::optional<int64_t> end_us;            // no tick after
  bool catchup = false;                     // off by default
  OverlapPolicy overlap = OverlapPolicy::kAllow;
  int max_concurrency = 1;                  // active runs of this schedule, 1..100
  bool depends_on_past = false;
  int retries = 0;                          // per run: resume-from-failed retries
  int history_limit = 10;                   // finished runs kept per schedule, 0..1000
  bool paused = false;
  std::set<std::string> skip_dates;         // "YYYY-MM-DD" in the schedule's zone
  JsonValue params;                         // object; scheduled_time etc. are added
};

// Decodes and validates (422 locations: "schedule.cron: …",
// "schedule.timezone: unknown time zone \"Mars/Base\""). `load_zone` checks
// the zone exists (null: only the syntax is checked).
using ZoneLoader = std::function<StatusOr<std::shared_ptr<const TimeZone>>(const std::string&)>;
StatusOr<ScheduleSpec> ParseScheduleSpec(const JsonValue& v, const ZoneLoader& load_zone);
void WriteScheduleSpec(JsonWriter& w, const ScheduleSpec& spec);

// The first tick strictly after `after_us` that is within [start, end] and
// not on a skipped date; nullopt when the schedule has ended.
StatusOr<std::optional<int64_t>> NextTick(const ScheduleSpec& s, const TimeZone& tz,
                                          int64_t after_us);

// The previous tick before `tick_us` (data_interval_start); for the first
// tick, tick_us minus one period (cron: the tick before it, ignoring start).
StatusOr<int64_t> PreviousTick(const ScheduleSpec& s, const TimeZone& tz, int64_t tick_us);

// Which ticks are due at `now_us`, given the last tick already handled
// (`last_tick_us`, 0 = none yet: the schedule begins at its start, or at
// the time it was created, `created_us`).
//   catchup on:  every tick in (last, now], oldest first, at most `limit`
//                (the rest are due on the next call);
//   catchup off: only the latest tick in (last, now]; older ones are skipped
//                and returned in `skipped` (at most `limit`, for the record).
struct DueTicks {
  std::vector<int64_t> run;      // ticks to create runs for
  std::vector<int64_t> skipped;  // ticks passed over (catchup off)
  int64_t handled_through = 0;   // the new last_tick_us
};
StatusOr<DueTicks> PlanTicks(const ScheduleSpec& s, const TimeZone& tz, int64_t created_us,
                             int64_t last_tick_us, int64_t now_us, size_t limit);

// The ticks in [from_us, to_us] (backfill), oldest first, at most `limit`
// (INVALID_ARGUMENT when more: the caller names --from/--to).
StatusOr<std::vector<int64_t>> TicksBetween(const ScheduleSpec& s, const TimeZone& tz,
                                            int64_t from_us, int64_t to_us, size_t limit);

// "2026-11-23" of `t_us` in zone `tz`.
std::string LocalDate(const TimeZone& tz, int64_t t_us);

}  // namespace lathe::spec
