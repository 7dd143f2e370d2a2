// Cron expressions: parsing, and the search for the next and previous tick
// in a time zone under the DST rules of schedule_spec.h.
//
// The search walks the zone's UTC-offset segments (spans of constant
// offset). Inside a segment local time is UTC plus a constant, so the first
// matching local time is found by calendar arithmetic (skip whole months,
// days, hours, then minutes), never minute by minute; a segment boundary
// either repeats local times (fall back) or skips them (spring forward),
// which is where the DST rules apply.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <limits>

#include "spec/schedule_spec.h"

namespace lathe::spec {
namespace {

constexpr size_t kMaxCronLength = 256;
constexpr int64_t kHorizonSeconds = 5 * 366 * 86400;  // "5 years"
constexpr uint32_t kAllHours = (1u << 24) - 1;
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

Status FieldError(const std::string& field, const std::string& message) {
  return InvalidArgumentError(fmt::format("{}: {}", field, message), field);
}

std::string Quote(std::string_view s) {
  std::string out;
  AppendJsonString(&out, s.size() > 64 ? std::string(s.substr(0, 64)) + "..." : std::string(s));
  return out;
}

struct FieldKind {
  std::string_view name;
  int min, max;
  std::array<std::string_view, 12> names;  // index 0 = value `min`; empty when none
  std::string_view names_hint;
};

constexpr FieldKind kMinute{"minute", 0, 59, {}, ""};
constexpr FieldKind kHour{"hour", 0, 23, {}, ""};
constexpr FieldKind kDom{"day of month", 1, 31, {}, ""};
constexpr FieldKind kMonth{
    "month",
    1,
    12,
    {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"},
    " (or JAN-DEC)"};
// 7 is Sunday too, as in Vixie cron.
constexpr FieldKind kDow{
    "day of week", 0, 7, {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}, " (or SUN-SAT)"};

char Upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

StatusOr<int> ParseValue(std::string_view tok, const FieldKind& k, const std::string& field) {
  if (!tok.empty() &&
      std::all_of(tok.begin(), tok.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (tok.size() > 4) {
      return FieldError(field, fmt::format("{} {} out of range {}-{}", k.name, tok, k.min, k.max));
    }
    int v = 0;
    for (char c : tok) v = v * 10 + (c - '0');
    if (v < k.min || v > k.max) {
      return FieldError(field, fmt::format("{} {} out of range {}-{}", k.name, v, k.min, k.max));
    }
    return v;
  }
  if (tok.size() == 3) {
    for (size_t i = 0; i < k.names.size() && !k.names[i].empty(); ++i) {
      if (Upper(tok[0]) == k.names[i][0] && Upper(tok[1]) == k.names[i][1] &&
          Upper(tok[2]) == k.names[i][2]) {
        return k.min + static_cast<int>(i);
      }
    }
  }
  return FieldError(field,
                    fmt::format("{} {} is not a number{}", k.name, Quote(tok), k.names_hint));
}

// One field: a comma list of `*`, `a`, `a-b`, each optionally `/step`
// (`a/step` means a through the maximum, as in cronie).
Status ParseField(std::string_view text, const FieldKind& k, const std::string& field,
                  uint64_t* bits, bool* star) {
  *bits = 0;
  *star = !text.empty() && text[0] == '*';
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view item = text.substr(pos, comma - pos);
    pos = comma + 1;
    if (item.empty()) {
      return FieldError(field, fmt::format("empty item in {} field {}", k.name, Quote(text)));
    }
    std::string_view range = item;
    int step = 1;
    bool has_step = false;
    if (size_t slash = item.find('/'); slash != std::string_view::npos) {
      range = item.substr(0, slash);
      std::string_view s = item.substr(slash + 1);
      bool digits = !s.empty() && s.size() <= 4 &&
                    std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!digits) {
        return FieldError(field,
                          fmt::format("step {} in {} field is not a number", Quote(s), k.name));
      }
      step = 0;
      for (char c : s) step = step * 10 + (c - '0');
      if (step == 0) {
        return FieldError(field, fmt::format("step 0 in {} field must be at least 1", k.name));
      }
      has_step = true;
    }
    int lo = k.min, hi = k.max;
    if (range == "*") {
      if (&k == &kDow) hi = 6;  // `*` is each day once, not Sunday twice
    } else if (size_t dash = range.find('-'); dash != std::string_view::npos) {
      ASSIGN_OR_RETURN(lo, ParseValue(range.substr(0, dash), k, field));
      ASSIGN_OR_RETURN(hi, ParseValue(range.substr(dash + 1), k, field));
      if (lo > hi) {
        return FieldError(field, fmt::format("{} range {} is backwards", k.name, Quote(range)));
      }
    } else {
      ASSIGN_OR_RETURN(lo, ParseValue(range, k, field));
      hi = has_step ? k.max : lo;
    }
    for (int v = lo; v <= hi; v += step) *bits |= uint64_t{1} << v;
  }
  return OkStatus();
}

struct Macro {
  std::string_view name, expansion;
};
constexpr Macro kMacros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

int NextBit(uint64_t mask, int after) {
  if (after >= 63) return -1;
  uint64_t rest = mask >> (after + 1);
  if (rest == 0) return -1;
  return after + 1 + std::countr_zero(rest);
}

int PrevBit(uint64_t mask, int before) {
  if (before <= 0) return -1;
  uint64_t rest = mask & ((uint64_t{1} << before) - 1);
  if (rest == 0) return -1;
  return 63 - std::countl_zero(rest);
}

bool DayMatches(const CronExpr& c, const CivilDate& d, int64_t days) {
  bool dom = (c.days_of_month >> d.day) & 1;
  bool dow = (c.days_of_week >> WeekdayFromDays(days)) & 1;
  // Vixie cron: when both fields are restricted either may match.
  if (c.dom_restricted && c.dow_restricted) return dom || dow;
  return dom && dow;
}

int64_t FirstOfNextMonth(const CivilDate& d) {
  return d.month == 12 ? DaysFromCivil(d.year + 1, 1, 1) : DaysFromCivil(d.year, d.month + 1, 1);
}

// The first matching local minute at or after `from`, if not after `limit`.
// Each step skips at least to the next minute, hour, day or month that can
// match, so a search over years takes a few thousand steps at most.
std::optional<int64_t> FirstMatch(const CronExpr& c, int64_t from, int64_t limit) {
  int64_t l = FloorDiv(from, 60) * 60;
  if (l < from) l += 60;
  while (l <= limit) {
    int64_t days = FloorDiv(l, 86400);
    int64_t sod = l - days * 86400;
    CivilDate d = CivilFromDays(days);
    if (!((c.months >> d.month) & 1)) {
      l = FirstOfNextMonth(d) * 86400;
      continue;
    }
    if (!DayMatches(c, d, days)) {
      l = (days + 1) * 86400;
      continue;
    }
    int h = static_cast<int>(sod / 3600), m = static_cast<int>(sod % 3600 / 60);
    if (!((c.hours >> h) & 1)) {
      int nh = NextBit(c.hours, h);
      l = nh < 0 ? (days + 1) * 86400 : days * 86400 + nh * 3600;
      continue;
    }
    if (!((c.minutes >> m) & 1)) {
      int nm = NextBit(c.minutes, m);
      l = nm < 0 ? days * 86400 + (h + 1) * 3600 : days * 86400 + h * 3600 + nm * 60;
      continue;
    }
    return l;
  }
  return std::nullopt;
}

// The last matching local minute at or before `from`, if not before `limit`.
std::optional<int64_t> LastMatch(const CronExpr& c, int64_t from, int64_t limit) {
  int64_t l = FloorDiv(from, 60) * 60;
  while (l >= limit) {
    int64_t days = FloorDiv(l, 86400);
    int64_t sod = l - days * 86400;
    CivilDate d = CivilFromDays(days);
    if (!((c.months >> d.month) & 1)) {
      l = DaysFromCivil(d.year, d.month, 1) * 86400 - 60;
      continue;
    }
    if (!DayMatches(c, d, days)) {
      l = days * 86400 - 60;
      continue;
    }
    int h = static_cast<int>(sod / 3600), m = static_cast<int>(sod % 3600 / 60);
    if (!((c.hours >> h) & 1)) {
      int ph = PrevBit(c.hours, h);
      l = ph < 0 ? days * 86400 - 60 : days * 86400 + ph * 3600 + 59 * 60;
      continue;
    }
    if (!((c.minutes >> m) & 1)) {
      int pm = PrevBit(c.minutes, m);
      l = pm < 0 ? days * 86400 + h * 3600 - 60 : days * 86400 + h * 3600 + pm * 60;
      continue;
    }
    return l;
  }
  return std::nullopt;
}

// The tick set, segment by segment. A segment [a, b) has offset `off`; the
// previous one ended at local time a + off_prev. With an hour field of
// every hour, every instant whose local time matches is a tick. Otherwise
// a local time L matches once: in the segment where it first occurs (L >=
// a + off_prev, so a repeated time fires in the earlier segment only), and a
// local time skipped by the jump (a + off_prev <= L < a + off) fires at a.
std::optional<int64_t> NextSeconds(const CronExpr& c, const TimeZone& tz, int64_t after,
                                   int64_t horizon) {
  const bool every_hour = c.hours == kAllHours;
  int64_t seg_start = after;
  int32_t off = tz.OffsetAt(after);
  std::optional<TimeZone::Change> prev = tz.PrevChange(after);
  int64_t prev_local_end = prev ? prev->at + prev->before : kMin;
  bool first = true;
  // Each pass moves to the next offset change; the horizon bounds them.
  for (;;) {
    std::optional<TimeZone::Change> next = tz.NextChange(seg_start);
    int64_t hi_local = next ? next->at + off : kMax;  // exclusive
    int64_t limit = std::min(hi_local - 1, horizon + off);
    if (!first && !every_hour && seg_start + off > prev_local_end) {
      if (FirstMatch(c, prev_local_end, std::min(seg_start + off - 1, limit))) return seg_start;
    }
    int64_t lo = first ? after + off + 1 : seg_start + off;
    if (!every_hour) lo = std::max(lo, prev_local_end);
    if (std::optional<int64_t> l = FirstMatch(c, lo, limit)) return *l - off;
    if (!next || next->at > horizon) return std::nullopt;
    prev_local_end = hi_local;
    seg_start = next->at;
    off = next->after;
    first = false;
  }
}

std::optional<int64_t> PrevSeconds(const CronExpr& c, const TimeZone& tz, int64_t at_or_before,
                                   int64_t horizon) {
  const bool every_hour = c.hours == kAllHours;
  int64_t t = at_or_before;
  int32_t off = tz.OffsetAt(t);
  for (;;) {
    std::optional<TimeZone::Change> prev = tz.PrevChange(t);
    int64_t seg_start = prev ? prev->at : kMin;
    int64_t seg_local = prev ? seg_start + off : kMin;
    int64_t prev_local_end = prev ? prev->at + prev->before : kMin;
    int64_t lo = every_hour ? seg_local : std::max(seg_local, prev_local_end);
    lo = std::max(lo, horizon + off);
    if (std::optional<int64_t> l = LastMatch(c, t + off, lo)) return *l - off;
    if (!prev || seg_start < horizon) return std::nullopt;
    if (!every_hour && seg_local > prev_local_end && LastMatch(c, seg_local - 1, prev_local_end)) {
      return seg_start;
    }
    t = seg_start - 1;
    off = prev->before;
  }
}

std::string TimeText(int64_t seconds) { return FormatTimeUtc(seconds * 1'000'000); }

}  // namespace

StatusOr<CronExpr> ParseCron(std::string_view text, const std::string& field) {
  if (text.size() > kMaxCronLength) {
    return FieldError(field, fmt::format("longer than {} characters", kMaxCronLength));
  }
  auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  size_t b = 0, e = text.size();
  while (b < e && is_space(text[b])) ++b;
  while (e > b && is_space(text[e - 1])) --e;
  std::string_view trimmed = text.substr(b, e - b);
  CronExpr cron;
  cron.text = std::string(trimmed);

  std::string_view body = trimmed;
  if (!trimmed.empty() && trimmed[0] == '@') {
    std::string lower(trimmed);
    for (char& ch : lower) ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    const Macro* found = nullptr;
    for (const Macro& m : kMacros) {
      if (lower == m.name) found = &m;
    }
    if (found == nullptr) {
      return FieldError(field, fmt::format("{} is not a cron macro (@yearly, @annually, @monthly, "
                                           "@weekly, @daily, @midnight, @hourly)",
                                           Quote(trimmed)));
    }
    body = found->expansion;
  }

  std::vector<std::string_view> fields;
  size_t pos = 0;
  while (pos < body.size()) {
    while (pos < body.size() && is_space(body[pos])) ++pos;
    size_t start = pos;
    while (pos < body.size() && !is_space(body[pos])) ++pos;
    if (pos > start) fields.push_back(body.substr(start, pos - start));
  }
  if (fields.size() != 5) {
    return FieldError(field, fmt::format("expected 5 fields, got {}", fields.size()));
  }
  uint64_t bits = 0;
  bool star = false;
  RETURN_IF_ERROR(ParseField(fields[0], kMinute, field, &bits, &star));
  cron.minutes = bits;
  RETURN_IF_ERROR(ParseField(fields[1], kHour, field, &bits, &star));
  cron.hours = static_cast<uint32_t>(bits);
  RETURN_IF_ERROR(ParseField(fields[2], kDom, field, &bits, &star));
  cron.days_of_month = static_cast<uint32_t>(bits);
  cron.dom_restricted = !star;
  RETURN_IF_ERROR(ParseField(fields[3], kMonth, field, &bits, &star));
  cron.months = static_cast<uint16_t>(bits);
  RETURN_IF_ERROR(ParseField(fields[4], kDow, field, &bits, &star));
  if (bits & (uint64_t{1} << 7)) bits = (bits | 1) & 0x7f;
  cron.days_of_week = static_cast<uint8_t>(bits);
  cron.dow_restricted = !star;

  // A day of month that no selected month has (30 February) would never
  // fire; say so now rather than at the first tick. With both day fields
  // restricted the weekdays fire, and a star day-of-week only narrows days
  // that exist.
  if (!(cron.dom_restricted && cron.dow_restricted)) {
    bool possible = false;
    for (int m = 1; m <= 12 && !possible; ++m) {
      if (!((cron.months >> m) & 1)) continue;
      int max_day = m == 2 ? 29 : DaysInMonth(2001, m);
      for (int d = 1; d <= max_day && !possible; ++d) possible = (cron.days_of_month >> d) & 1;
    }
    if (!possible) {
      return FieldError(field, fmt::format("{} never fires (no selected month has the selected "
                                           "days of month)",
                                           Quote(cron.text)));
    }
  }
  return cron;
}

StatusOr<int64_t> NextCronTick(const CronExpr& cron, const TimeZone& tz, int64_t after_us) {
  int64_t after = FloorDiv(after_us, 1'000'000);
  std::optional<int64_t> t = NextSeconds(cron, tz, after, after + kHorizonSeconds);
  if (!t) {
    return NotFoundError(fmt::format("cron: {} never fires in the 5 years after {} ({})",
                                     Quote(cron.text), TimeText(after), tz.name()));
  }
  return *t * 1'000'000;
}

StatusOr<int64_t> PrevCronTick(const CronExpr& cron, const TimeZone& tz, int64_t before_us) {
  // The last whole second strictly before `before_us`.
  int64_t at_or_before = FloorDiv(before_us - 1, 1'000'000);
  std::optional<int64_t> t = PrevSeconds(cron, tz, at_or_before, at_or_before - kHorizonSeconds);
  if (!t) {
    return NotFoundError(fmt::format("cron: {} never fires in the 5 years before {} ({})",
                                     Quote(cron.text), TimeText(at_or_before), tz.name()));
  }
  return *t * 1'000'000;
}

}  // namespace lathe::spec
