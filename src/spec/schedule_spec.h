// Schedules (docs/pipelines.md "Schedules"): cron expressions with a time
// zone or a fixed interval, start/end, catchup, overlap policy, skips; and
// the pure planning functions the schedule controller calls with the time
// it reads from an injected Clock. No I/O, no clock: times are arguments
// (µs since the epoch); zones come in as TimeZone values.
//
// Ticks. A schedule fires at tick times T1 < T2 < …; the run created for
// tick Ti covers the data interval [T(i-1), Ti) (the interval ends at the
// tick, as in Airflow) and is created at or after Ti. Runs receive
// `scheduled_time` = Ti, `data_interval_start` = T(i-1) (for the first tick:
// Ti minus one period) and `data_interval_end` = Ti, as RFC 3339 strings.
// T(i-1) is the recurrence's previous tick (PreviousTick): start, end and
// skip dates do not move data intervals, so the run after a skipped date
// still covers one period.
//
// Cron: 5 fields "m h dom mon dow" (numbers, names JAN…DEC / SUN…SAT, `*`,
// ranges a-b, steps */15 and 1-10/3 (and a/15 = a through the maximum),
// lists; day of week 0-7 with 0 and 7 Sunday) and the macros @yearly
// @annually @monthly @weekly @daily @midnight @hourly. Day of month and day
// of week as in Vixie cron: when both fields are restricted a day matching
// either fires; a field that begins with `*` (including "*/2") is not
// restricted, and then both must match. A day of month that no selected
// month has ("0 0 30 2 *") is rejected when parsed.
// Fields are matched in the schedule's IANA time zone (default UTC).
// Daylight-saving rules:
//   - a local time that does not exist (spring forward gap) fires once, at
//     the first instant after the gap (02:30 on a 02:00→03:00 day fires at
//     03:00 local; several times in one gap fire once);
//   - a local time that occurs twice (fall back) fires once, at its first
//     occurrence;
//   - schedules whose hour field is every hour (`*`, `*/1`, `0-23`) fire at
//     every real instant whose wall time matches: a repeated hour fires
//     twice, a skipped hour not at all (the next hour comes anyway).
// Zones with 30-minute shifts (Australia/Lord_Howe) follow the same rules.
//
// Interval: every N seconds, anchored at `start` (required for intervals):
// ticks are start, start + N, start + 2N, … (N counts real seconds: DST
// does not shift an interval schedule).
//
// Bounds. `start` and `end` bound tick times: no tick before start, none
// after end (both inclusive). Skip dates ("YYYY-MM-DD", the tick's date in
// the schedule's zone) remove the ticks of those dates: NextTick never
// returns them, so they are never due; PlanTicks reports them in
// `date_skipped` so the controller can record them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
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
  bool dom_restricted = false;  // the field did not begin with `*`
  bool dow_restricted = false;
};

// INVALID_ARGUMENT naming `field` and the bad token ("cron: minute 61 out of
// range 0-59", "cron: expected 5 fields, got 6").
StatusOr<CronExpr> ParseCron(std::string_view text, const std::string& field);

// The first tick strictly after `after_us` (µs since the epoch) in zone `tz`,
// in whole seconds. Searches at most 5 years ahead, skipping whole months,
// days and hours that cannot match (a few thousand steps at most); NOT_FOUND
// "cron: … never fires in the 5 years after …" when none ("0 0 29 2 1-5"
// can wait longer).
StatusOr<int64_t> NextCronTick(const CronExpr& cron, const TimeZone& tz, int64_t after_us);
// The last tick strictly before `before_us`; the same rules and bound.
StatusOr<int64_t> PrevCronTick(const CronExpr& cron, const TimeZone& tz, int64_t before_us);

// RFC 3339 ("2026-11-01T00:00:00Z", "2026-11-01T01:00:00.5+01:00"; 'T' or a
// space; fractions kept to the microsecond) -> µs since the epoch.
// INVALID_ARGUMENT naming `field` otherwise.
StatusOr<int64_t> ParseRfc3339(std::string_view text, const std::string& field);
// "2026-11-01T00:00:00Z" (a fraction only when the time has one).
std::string FormatTimeUtc(int64_t t_us);

enum class OverlapPolicy { kAllow, kForbid, kReplace };
std::string_view OverlapPolicyName(OverlapPolicy p);  // "Allow", "Forbid", "Replace"

struct ScheduleSpec {
  std::string name;                         // [a-z0-9-], 1..63, unique in the project
  std::string project;                      // "" when the document has none
  std::string pipeline;                     // pipeline name in the same project
  std::optional<int64_t> pipeline_version;  // absent = latest at each tick
  std::optional<CronExpr> cron;             // exactly one of cron / interval
  std::optional<int64_t> interval_seconds;
  std::string timezone = "UTC";     // IANA name
  std::optional<int64_t> start_us;  // no tick before (RFC 3339 in the document)
  std::optional<int64_t> end_us;    // no tick after
  bool catchup = false;             // off by default
  OverlapPolicy overlap = OverlapPolicy::kAllow;
  int max_concurrency = 1;  // active runs of this schedule, 1..100
  bool depends_on_past = false;
  int retries = 0;         // per run: resume-from-failed retries
  int history_limit = 10;  // finished runs kept per schedule, 0..1000
  bool paused = false;
  std::set<std::string> skip_dates;  // "YYYY-MM-DD" in the schedule's zone
  JsonValue params;                  // object; scheduled_time etc. are added
};

// Decodes and validates. Errors are INVALID_ARGUMENT naming the field from
// the document's root ("cron: minute 61 out of range 0-59", "timezone:
// unknown time zone \"Mars/Base\"", "skip_dates[0]: 2026-02-30 is not a
// date"); unknown fields are errors. `load_zone` checks the zone exists
// (null: only the name's syntax is checked). At most 1000 skip dates.
using ZoneLoader = std::function<StatusOr<std::shared_ptr<const TimeZone>>(const std::string&)>;
StatusOr<ScheduleSpec> ParseScheduleSpec(const JsonValue& v, const ZoneLoader& load_zone);
void WriteScheduleSpec(JsonWriter& w, const ScheduleSpec& spec);

// The first tick strictly after `after_us` that is within [start, end] and
// not on a skipped date; nullopt when the schedule has ended (or a cron
// finds no tick in the 5 years after `after_us`).
StatusOr<std::optional<int64_t>> NextTick(const ScheduleSpec& s, const TimeZone& tz,
                                          int64_t after_us);

// The previous tick before `tick_us` (data_interval_start); for the first
// tick, tick_us minus one period (cron: the tick before it, ignoring start).
// Start, end and skip dates are ignored: data intervals are the
// recurrence's periods.
StatusOr<int64_t> PreviousTick(const ScheduleSpec& s, const TimeZone& tz, int64_t tick_us);

// Which ticks are due at `now_us`, given the last tick already handled
// (`last_tick_us`, 0 = none yet: the schedule begins at max(start,
// `created_us`), and ticks before that beginning are never due, even with
// catchup on).
//   catchup on:  every tick in (last, now], oldest first, at most `limit`;
//                `handled_through` is then the last tick returned and the
//                rest are due on the next call (no gap, no duplicate);
//   catchup off: only the latest tick in (last, now] runs; older ones are
//                passed over and the oldest `limit` of them are returned in
//                `skipped` (for the record); handled_through is the latest
//                tick, however many were passed over.
// Ticks on skip dates are never in `run` or `skipped`; those in (last,
// handled_through] are listed in `date_skipped` (the oldest `limit`), and
// handled_through moves past them when they are the latest ticks due.
// Paused schedules are not handled here (the controller records their
// ticks as skipped). When nothing is due, handled_through = last_tick_us.
// `limit` must be at least 1. Cost: O(limit + skip dates) tick searches.
struct DueTicks {
  std::vector<int64_t> run;           // ticks to create runs for, oldest first
  std::vector<int64_t> skipped;       // ticks passed over (catchup off), oldest first
  std::vector<int64_t> date_skipped;  // ticks on skip dates, oldest first
  int64_t handled_through = 0;        // the new last_tick_us
};
StatusOr<DueTicks> PlanTicks(const ScheduleSpec& s, const TimeZone& tz, int64_t created_us,
                             int64_t last_tick_us, int64_t now_us, size_t limit);

// The ticks in [from_us, to_us] (backfill), oldest first, at most `limit`
// (INVALID_ARGUMENT when more: the caller names --from/--to). Skip dates
// apply; start and end do not (a backfill names its own range, often
// before the schedule's start).
StatusOr<std::vector<int64_t>> TicksBetween(const ScheduleSpec& s, const TimeZone& tz,
                                            int64_t from_us, int64_t to_us, size_t limit);

// "2026-11-23" of `t_us` in zone `tz`.
std::string LocalDate(const TimeZone& tz, int64_t t_us);

}  // namespace lathe::spec
