// Schedule specs: decoding with field-named errors, the canonical JSON form,
// RFC 3339 times, and the tick planning the schedule controller calls.
#include "spec/schedule_spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "spec/job_spec.h"

namespace lathe::spec {
namespace {

constexpr int kMaxConcurrency = 100;
constexpr int kMaxRetries = 10;
constexpr int kMaxHistoryLimit = 1000;
constexpr size_t kMaxSkipDates = 1000;
constexpr int64_t kMicros = 1'000'000;

Status FieldError(const std::string& field, const std::string& message) {
  return InvalidArgumentError(fmt::format("{}: {}", field, message), field);
}

std::string Quote(std::string_view s) {
  std::string out;
  AppendJsonString(&out, s.size() > 64 ? std::string(s.substr(0, 64)) + "..." : std::string(s));
  return out;
}

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

Status CheckName(const std::string& value, const std::string& field) {
  bool ok =
      !value.empty() && value.size() <= 63 && IsLowerAlnum(value.front()) &&
      IsLowerAlnum(value.back()) &&
      std::all_of(value.begin(), value.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
  if (ok) return OkStatus();
  return FieldError(field, fmt::format("{} is not a valid name (1-63 characters of a-z, 0-9 and "
                                       "'-', starting and ending with a letter or digit)",
                                       Quote(value)));
}

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// "YYYY-MM-DD" as days since the epoch, if it is a real date.
std::optional<int64_t> ParseDate(std::string_view s) {
  int y = 0, m = 0, d = 0;
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  if (!Digits(s, 0, 4, &y) || !Digits(s, 5, 2, &m) || !Digits(s, 8, 2, &d)) return std::nullopt;
  if (y < 1 || m < 1 || m > 12 || d < 1 || d > DaysInMonth(y, m)) return std::nullopt;
  return DaysFromCivil(y, m, d);
}

std::string FormatDate(int64_t days) {
  CivilDate d = CivilFromDays(days);
  return fmt::format("{:04d}-{:02d}-{:02d}", d.year, d.month, d.day);
}

// The first instant whose wall time is at or after `local` (the instant of
// `local`, or the end of the spring-forward gap that swallows it).
int64_t FirstInstantAtOrAfterLocal(const TimeZone& tz, int64_t local) {
  std::vector<int64_t> at = tz.LocalToUtc(local);
  if (!at.empty()) return at.front();
  constexpr int64_t kWindow = 26 * 3600;
  int64_t t = local - kWindow;
  for (int i = 0; i < 64; ++i) {
    std::optional<TimeZone::Change> c = tz.NextChange(t);
    if (!c) break;
    if (c->at + c->before <= local && local < c->at + c->after) return c->at;
    t = c->at;
  }
  return local - tz.OffsetAt(local);  // unreachable for a consistent zone
}

int64_t LocalDays(const TimeZone& tz, int64_t t_us) {
  int64_t s = FloorDiv(t_us, kMicros);
  return FloorDiv(s + tz.OffsetAt(s), 86400);
}

// [first instant, first instant of the next day) of the local day of t_us,
// in µs. Clamped to contain t_us (zones that fall back across midnight).
std::pair<int64_t, int64_t> LocalDayRange(const TimeZone& tz, int64_t days) {
  return {FirstInstantAtOrAfterLocal(tz, days * 86400) * kMicros,
          FirstInstantAtOrAfterLocal(tz, (days + 1) * 86400) * kMicros};
}

int64_t PeriodUs(const ScheduleSpec& s) { return *s.interval_seconds * kMicros; }

// The recurrence alone (no start, end or skip dates). nullopt: a cron with
// no tick within its 5-year search.
StatusOr<std::optional<int64_t>> RecurrenceNext(const ScheduleSpec& s, const TimeZone& tz,
                                                int64_t after_us) {
  if (s.interval_seconds) {
    int64_t anchor = s.start_us.value_or(0), p = PeriodUs(s);
    return std::optional<int64_t>(anchor + (FloorDiv(after_us - anchor, p) + 1) * p);
  }
  if (!s.cron) return InvalidArgumentError("schedule has neither cron nor interval", "cron");
  StatusOr<int64_t> t = NextCronTick(*s.cron, tz, after_us);
  if (!t.ok()) {
    if (t.status().code() == StatusCode::kNotFound) return std::optional<int64_t>();
    return t.status();
  }
  return std::optional<int64_t>(*t);
}

StatusOr<std::optional<int64_t>> RecurrencePrev(const ScheduleSpec& s, const TimeZone& tz,
                                                int64_t before_us) {
  if (s.interval_seconds) {
    int64_t anchor = s.start_us.value_or(0), p = PeriodUs(s);
    return std::optional<int64_t>(anchor + FloorDiv(before_us - 1 - anchor, p) * p);
  }
  if (!s.cron) return InvalidArgumentError("schedule has neither cron nor interval", "cron");
  StatusOr<int64_t> t = PrevCronTick(*s.cron, tz, before_us);
  if (!t.ok()) {
    if (t.status().code() == StatusCode::kNotFound) return std::optional<int64_t>();
    return t.status();
  }
  return std::optional<int64_t>(*t);
}

// Within [start, end].
StatusOr<std::optional<int64_t>> BoundedNext(const ScheduleSpec& s, const TimeZone& tz,
                                             int64_t after_us) {
  if (s.start_us && after_us < *s.start_us - 1) after_us = *s.start_us - 1;
  if (s.end_us && after_us >= *s.end_us) return std::optional<int64_t>();
  ASSIGN_OR_RETURN(std::optional<int64_t> t, RecurrenceNext(s, tz, after_us));
  if (t && s.end_us && *t > *s.end_us) return std::optional<int64_t>();
  return t;
}

StatusOr<std::optional<int64_t>> BoundedPrev(const ScheduleSpec& s, const TimeZone& tz,
                                             int64_t before_us) {
  if (s.end_us && before_us > *s.end_us + 1) before_us = *s.end_us + 1;
  if (s.start_us && before_us <= *s.start_us) return std::optional<int64_t>();
  ASSIGN_OR_RETURN(std::optional<int64_t> t, RecurrencePrev(s, tz, before_us));
  if (t && s.start_us && *t < *s.start_us) return std::optional<int64_t>();
  return t;
}

bool OnSkipDate(const ScheduleSpec& s, const TimeZone& tz, int64_t t_us) {
  return !s.skip_dates.empty() && s.skip_dates.count(LocalDate(tz, t_us)) > 0;
}

// `next` / `prev` past skip dates: a tick on a skipped date jumps the search
// to the end (start) of that local day, so each date costs one step and the
// loop is bounded by the number of skip dates.
template <typename Next>
StatusOr<std::optional<int64_t>> NextNotSkipped(const ScheduleSpec& s, const TimeZone& tz,
                                                int64_t after_us, Next next) {
  for (size_t i = 0; i <= s.skip_dates.size(); ++i) {
    ASSIGN_OR_RETURN(std::optional<int64_t> t, next(after_us));
    if (!t || !OnSkipDate(s, tz, *t)) return t;
    int64_t day_end = LocalDayRange(tz, LocalDays(tz, *t)).second;
    after_us = std::max(*t, day_end - 1);
  }
  return std::optional<int64_t>();
}

template <typename Prev>
StatusOr<std::optional<int64_t>> PrevNotSkipped(const ScheduleSpec& s, const TimeZone& tz,
                                                int64_t before_us, Prev prev) {
  for (size_t i = 0; i <= s.skip_dates.size(); ++i) {
    ASSIGN_OR_RETURN(std::optional<int64_t> t, prev(before_us));
    if (!t || !OnSkipDate(s, tz, *t)) return t;
    int64_t day_start = LocalDayRange(tz, LocalDays(tz, *t)).first;
    before_us = std::min(*t, day_start);
  }
  return std::optional<int64_t>();
}

// Ticks within [start, end] in (after, through] on skip dates, oldest
// first, at most `limit`.
StatusOr<std::vector<int64_t>> DateSkipped(const ScheduleSpec& s, const TimeZone& tz,
                                           int64_t after_us, int64_t through_us, size_t limit) {
  std::vector<int64_t> out;
  for (const std::string& date : s.skip_dates) {  // "YYYY-MM-DD" sorts by date
    if (out.size() >= limit) break;
    std::optional<int64_t> days = ParseDate(date);
    if (!days) continue;
    auto [day_start, day_end] = LocalDayRange(tz, *days);
    if (day_end <= after_us + 1 || day_start > through_us) continue;
    int64_t t = std::max(after_us, day_start - 1);
    while (out.size() < limit) {
      ASSIGN_OR_RETURN(std::optional<int64_t> next, BoundedNext(s, tz, t));
      if (!next || *next >= day_end || *next > through_us) break;
      if (LocalDate(tz, *next) == date) out.push_back(*next);
      t = *next;
    }
  }
  return out;
}

StatusOr<int64_t> ParseTimeField(const JsonValue* v, const std::string& field) {
  if (!v->is_string()) {
    return FieldError(
        field, fmt::format("expected an RFC 3339 time string, got {}", JsonTypeName(v->type())));
  }
  return ParseRfc3339(v->as_string(), field);
}

}  // namespace

std::string_view OverlapPolicyName(OverlapPolicy p) {
  switch (p) {
    case OverlapPolicy::kAllow:
      return "Allow";
    case OverlapPolicy::kForbid:
      return "Forbid";
    case OverlapPolicy::kReplace:
      return "Replace";
  }
  return "Allow";
}

StatusOr<int64_t> ParseRfc3339(std::string_view text, const std::string& field) {
  auto bad = [&] {
    return FieldError(field, fmt::format("{} is not an RFC 3339 time (use e.g. "
                                         "2026-11-01T00:00:00Z or 2026-11-01T01:00:00+01:00)",
                                         Quote(text)));
  };
  if (text.size() < 20 || text.size() > 40) return bad();
  std::optional<int64_t> days = ParseDate(text.substr(0, 10));
  if (!days) {
    int y = 0, m = 0, d = 0;
    if (Digits(text, 0, 4, &y) && text[4] == '-' && Digits(text, 5, 2, &m) && text[7] == '-' &&
        Digits(text, 8, 2, &d)) {
      return FieldError(field, fmt::format("{} is not a date", text.substr(0, 10)));
    }
    return bad();
  }
  char sep = text[10];
  if (sep != 'T' && sep != 't' && sep != ' ') return bad();
  int h = 0, mi = 0, sec = 0;
  if (!Digits(text, 11, 2, &h) || text[13] != ':' || !Digits(text, 14, 2, &mi) || text[16] != ':' ||
      !Digits(text, 17, 2, &sec)) {
    return bad();
  }
  if (h > 23 || mi > 59 || sec > 59) {
    return FieldError(field, fmt::format("{} is not a time of day", Quote(text.substr(11, 8))));
  }
  size_t pos = 19;
  int64_t micros = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t start = pos;
    int64_t scale = 100000;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      micros += (text[pos] - '0') * scale;  // digits past the microsecond are dropped
      scale /= 10;
      ++pos;
    }
    if (pos == start) return bad();
  }
  int64_t offset = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int oh = 0, om = 0;
    if (!Digits(text, pos + 1, 2, &oh) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
        !Digits(text, pos + 4, 2, &om) || oh > 23 || om > 59) {
      return bad();
    }
    offset = (text[pos] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
    pos += 6;
  } else {
    return bad();  // a time without an offset is ambiguous
  }
  if (pos != text.size()) return bad();
  int64_t seconds = *days * 86400 + h * 3600 + mi * 60 + sec - offset;
  return seconds * kMicros + micros;
}

std::string FormatTimeUtc(int64_t t_us) {
  int64_t s = FloorDiv(t_us, kMicros);
  int64_t frac = t_us - s * kMicros;
  int64_t days = FloorDiv(s, 86400);
  int64_t sod = s - days * 86400;
  std::string out = fmt::format("{}T{:02d}:{:02d}:{:02d}", FormatDate(days), sod / 3600,
                                sod % 3600 / 60, sod % 60);
  if (frac != 0) {
    std::string f = fmt::format("{:06d}", frac);
    while (f.back() == '0') f.pop_back();
    out += "." + f;
  }
  out += "Z";
  return out;
}

std::string LocalDate(const TimeZone& tz, int64_t t_us) { return FormatDate(LocalDays(tz, t_us)); }

StatusOr<ScheduleSpec> ParseScheduleSpec(const JsonValue& v, const ZoneLoader& load_zone) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, ""));
  ScheduleSpec s;
  std::string overlap = "Allow";
  int64_t max_concurrency = s.max_concurrency, retries = s.retries, history_limit = s.history_limit;
  std::vector<std::string> skip_dates;
  RETURN_IF_ERROR(r.String("name", &s.name, Presence::kRequired));
  RETURN_IF_ERROR(r.String("project", &s.project));
  RETURN_IF_ERROR(r.String("pipeline", &s.pipeline, Presence::kRequired));
  ASSIGN_OR_RETURN(const JsonValue* version, r.Value("pipeline_version"));
  ASSIGN_OR_RETURN(const JsonValue* cron, r.Value("cron"));
  ASSIGN_OR_RETURN(const JsonValue* interval, r.Value("interval"));
  RETURN_IF_ERROR(r.String("timezone", &s.timezone));
  ASSIGN_OR_RETURN(const JsonValue* start, r.Value("start"));
  ASSIGN_OR_RETURN(const JsonValue* end, r.Value("end"));
  RETURN_IF_ERROR(r.Bool("catchup", &s.catchup));
  RETURN_IF_ERROR(r.String("overlap", &overlap));
  RETURN_IF_ERROR(r.Int("max_concurrency", &max_concurrency));
  RETURN_IF_ERROR(r.Bool("depends_on_past", &s.depends_on_past));
  RETURN_IF_ERROR(r.Int("retries", &retries));
  RETURN_IF_ERROR(r.Int("history_limit", &history_limit));
  RETURN_IF_ERROR(r.Bool("paused", &s.paused));
  RETURN_IF_ERROR(r.StringList("skip_dates", &skip_dates));
  ASSIGN_OR_RETURN(const JsonValue* params, r.Value("params"));
  RETURN_IF_ERROR(r.Finish());

  RETURN_IF_ERROR(CheckName(s.name, "name"));
  if (!s.project.empty()) RETURN_IF_ERROR(CheckName(s.project, "project"));
  RETURN_IF_ERROR(CheckName(s.pipeline, "pipeline"));
  if (version != nullptr) {
    if (version->type() != JsonValue::Type::kInt) {
      return FieldError("pipeline_version",
                        fmt::format("expected an integer, got {}", JsonTypeName(version->type())));
    }
    if (version->as_int() < 1) {
      return FieldError(
          "pipeline_version",
          fmt::format("{} must be at least 1 (leave it out for the latest)", version->as_int()));
    }
    s.pipeline_version = version->as_int();
  }

  if (cron == nullptr && interval == nullptr) {
    return FieldError("cron", "a schedule needs cron or interval");
  }
  if (cron != nullptr && interval != nullptr) {
    return FieldError("interval", "cannot be set together with cron (use one of them)");
  }
  if (cron != nullptr) {
    if (!cron->is_string()) {
      return FieldError("cron",
                        fmt::format("expected a string, got {}", JsonTypeName(cron->type())));
    }
    ASSIGN_OR_RETURN(s.cron, ParseCron(cron->as_string(), "cron"));
  } else {
    if (interval->type() == JsonValue::Type::kInt && interval->as_int() < 1) {
      return FieldError("interval", "must be at least 1s");
    }
    ASSIGN_OR_RETURN(s.interval_seconds, ParseDurationSeconds(*interval, "interval"));
  }

  if (s.timezone.empty()) return FieldError("timezone", "must not be empty (default UTC)");
  if (load_zone) {
    StatusOr<std::shared_ptr<const TimeZone>> tz = load_zone(s.timezone);
    if (!tz.ok()) return FieldError("timezone", tz.status().message());
  } else if (Status st = CheckTimeZoneName(s.timezone); !st.ok()) {
    return FieldError("timezone", st.message());
  }

  if (start != nullptr) {
    ASSIGN_OR_RETURN(s.start_us, ParseTimeField(start, "start"));
  }
  if (end != nullptr) {
    ASSIGN_OR_RETURN(s.end_us, ParseTimeField(end, "end"));
  }
  if (s.interval_seconds && !s.start_us) {
    return FieldError("start", "is required with interval (interval ticks count from it)");
  }
  if (s.start_us && s.end_us && *s.end_us <= *s.start_us) {
    return FieldError("end", "must be after start");
  }

  if (overlap == "Allow") {
    s.overlap = OverlapPolicy::kAllow;
  } else if (overlap == "Forbid") {
    s.overlap = OverlapPolicy::kForbid;
  } else if (overlap == "Replace") {
    s.overlap = OverlapPolicy::kReplace;
  } else {
    return FieldError("overlap", fmt::format("{} is not an overlap policy (Allow, Forbid, Replace)",
                                             Quote(overlap)));
  }
  if (max_concurrency < 1 || max_concurrency > kMaxConcurrency) {
    return FieldError("max_concurrency",
                      fmt::format("{} is not in 1..{}", max_concurrency, kMaxConcurrency));
  }
  s.max_concurrency = static_cast<int>(max_concurrency);
  if (retries < 0 || retries > kMaxRetries) {
    return FieldError("retries", fmt::format("{} is not in 0..{}", retries, kMaxRetries));
  }
  s.retries = static_cast<int>(retries);
  if (history_limit < 0 || history_limit > kMaxHistoryLimit) {
    return FieldError("history_limit",
                      fmt::format("{} is not in 0..{}", history_limit, kMaxHistoryLimit));
  }
  s.history_limit = static_cast<int>(history_limit);

  if (skip_dates.size() > kMaxSkipDates) {
    return FieldError("skip_dates",
                      fmt::format("{} dates; at most {}", skip_dates.size(), kMaxSkipDates));
  }
  for (size_t i = 0; i < skip_dates.size(); ++i) {
    std::string f = fmt::format("skip_dates[{}]", i);
    const std::string& d = skip_dates[i];
    if (!ParseDate(d)) {
      bool shaped = d.size() == 10 && d[4] == '-' && d[7] == '-';
      return FieldError(f, shaped ? fmt::format("{} is not a date", d)
                                  : fmt::format("{} is not a date (use YYYY-MM-DD)", Quote(d)));
    }
    s.skip_dates.insert(d);
  }

  if (params == nullptr) {
    s.params = JsonValue::MakeObject({});
  } else if (!params->is_object()) {
    return FieldError("params",
                      fmt::format("expected an object, got {}", JsonTypeName(params->type())));
  } else {
    s.params = *params;
  }
  return s;
}

void WriteScheduleSpec(JsonWriter& w, const ScheduleSpec& spec) {
  w.BeginObject();
  w.Field("name", spec.name);
  w.Field("project", spec.project);
  w.Field("pipeline", spec.pipeline);
  if (spec.pipeline_version) w.Field("pipeline_version", *spec.pipeline_version);
  if (spec.cron) w.Field("cron", spec.cron->text);
  if (spec.interval_seconds) w.Field("interval", FormatDuration(*spec.interval_seconds));
  w.Field("timezone", spec.timezone);
  if (spec.start_us) w.Field("start", FormatTimeUtc(*spec.start_us));
  if (spec.end_us) w.Field("end", FormatTimeUtc(*spec.end_us));
  w.Field("catchup", spec.catchup);
  w.Field("overlap", OverlapPolicyName(spec.overlap));
  w.Field("max_concurrency", spec.max_concurrency);
  w.Field("depends_on_past", spec.depends_on_past);
  w.Field("retries", spec.retries);
  w.Field("history_limit", spec.history_limit);
  w.Field("paused", spec.paused);
  w.Key("skip_dates").BeginArray();
  for (const std::string& d : spec.skip_dates) w.String(d);
  w.EndArray();
  w.Key("params");
  if (spec.params.is_object()) {
    spec.params.Write(w);
  } else {
    w.BeginObject().EndObject();
  }
  w.EndObject();
}

StatusOr<std::optional<int64_t>> NextTick(const ScheduleSpec& s, const TimeZone& tz,
                                          int64_t after_us) {
  return NextNotSkipped(s, tz, after_us, [&](int64_t a) { return BoundedNext(s, tz, a); });
}

StatusOr<int64_t> PreviousTick(const ScheduleSpec& s, const TimeZone& tz, int64_t tick_us) {
  if (s.interval_seconds) return tick_us - PeriodUs(s);
  if (!s.cron) return InvalidArgumentError("schedule has neither cron nor interval", "cron");
  return PrevCronTick(*s.cron, tz, tick_us);
}

StatusOr<DueTicks> PlanTicks(const ScheduleSpec& s, const TimeZone& tz, int64_t created_us,
                             int64_t last_tick_us, int64_t now_us, size_t limit) {
  if (limit == 0) return InvalidArgumentError("PlanTicks: limit must be at least 1");
  DueTicks due;
  due.handled_through = last_tick_us;
  int64_t after = last_tick_us;
  if (last_tick_us == 0) {
    int64_t begin = std::max(created_us, s.start_us.value_or(std::numeric_limits<int64_t>::min()));
    after = begin - 1;
  }
  if (now_us <= after) return due;
  auto bounded_next = [&](int64_t a) { return BoundedNext(s, tz, a); };
  auto bounded_prev = [&](int64_t b) { return BoundedPrev(s, tz, b); };

  // The latest tick in (after, now], skip dates included: what the plan
  // accounts for when it is not cut short by `limit`.
  ASSIGN_OR_RETURN(std::optional<int64_t> prev_any, BoundedPrev(s, tz, now_us + 1));
  const int64_t through_all = prev_any.value_or(after) > after ? *prev_any : last_tick_us;

  if (s.catchup) {
    int64_t t = after;
    while (due.run.size() < limit) {
      ASSIGN_OR_RETURN(std::optional<int64_t> next, NextNotSkipped(s, tz, t, bounded_next));
      if (!next || *next > now_us) break;
      due.run.push_back(*next);
      t = *next;
    }
    due.handled_through = due.run.size() == limit ? due.run.back() : through_all;
  } else {
    ASSIGN_OR_RETURN(std::optional<int64_t> latest,
                     PrevNotSkipped(s, tz, now_us + 1, bounded_prev));
    if (latest && *latest > after) {
      due.run.push_back(*latest);
      int64_t t = after;
      while (due.skipped.size() < limit) {
        ASSIGN_OR_RETURN(std::optional<int64_t> next, NextNotSkipped(s, tz, t, bounded_next));
        if (!next || *next >= *latest) break;
        due.skipped.push_back(*next);
        t = *next;
      }
    }
    due.handled_through = through_all;
  }
  if (due.handled_through > after && !s.skip_dates.empty()) {
    ASSIGN_OR_RETURN(due.date_skipped, DateSkipped(s, tz, after, due.handled_through, limit));
  }
  return due;
}

StatusOr<std::vector<int64_t>> TicksBetween(const ScheduleSpec& s, const TimeZone& tz,
                                            int64_t from_us, int64_t to_us, size_t limit) {
  if (from_us > to_us) {
    return InvalidArgumentError(
        fmt::format("from: {} is after to {}", FormatTimeUtc(from_us), FormatTimeUtc(to_us)),
        "from");
  }
  auto next = [&](int64_t a) { return RecurrenceNext(s, tz, a); };
  std::vector<int64_t> out;
  int64_t t = from_us - 1;
  // At most limit + 1 searches: the extra one tells "exactly limit" from "more".
  for (;;) {
    ASSIGN_OR_RETURN(std::optional<int64_t> tick, NextNotSkipped(s, tz, t, next));
    if (!tick || *tick > to_us) break;
    if (out.size() == limit) {
      return InvalidArgumentError(
          fmt::format("from/to: more than {} ticks between {} and {}; backfill a shorter range",
                      limit, FormatTimeUtc(from_us), FormatTimeUtc(to_us)),
          "to");
    }
    out.push_back(*tick);
    t = *tick;
  }
  return out;
}

}  // namespace lathe::spec
