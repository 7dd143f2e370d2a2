// TZif (RFC 8536) and POSIX TZ strings (the TZif footer), and the per-process
// cache of zones loaded from the system's zoneinfo directory.
#include "base/timezone.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

namespace lathe {

// ---- calendar

int64_t DaysFromCivil(int64_t year, int month, int day) {
  // Howard Hinnant's days_from_civil, with March as the first month of the
  // computational year so February's length falls last.
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t yoe = year - era * 400;
  const int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

CivilDate CivilFromDays(int64_t days) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {yoe + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

int WeekdayFromDays(int64_t days) {
  // 1970-01-01 was a Thursday.
  int64_t w = (days + 4) % 7;
  return static_cast<int>(w < 0 ? w + 7 : w);
}

bool IsLeapYear(int64_t year) { return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0); }

int DaysInMonth(int64_t year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && IsLeapYear(year)) return 29;
  return kDays[month - 1];
}

// ---- POSIX TZ rule

struct TimeZone::PosixRule {
  enum class Kind { kJulian, kZeroBased, kMonthWeekDay };
  struct Date {
    Kind kind = Kind::kMonthWeekDay;
    int n = 0;            // Jn: 1..365; n: 0..365
    int month = 0;        // Mm.w.d
    int week = 0;         // 1..5 (5 = last)
    int weekday = 0;      // 0 = Sunday
    int32_t time = 7200;  // local seconds after midnight; -167h..167h (RFC 8536 v3)
  };
  int32_t std_offset = 0;  // seconds east of UTC
  bool has_dst = false;
  int32_t dst_offset = 0;
  Date start, end;

  // Days since the epoch of `d` in `year`.
  static int64_t Day(const Date& d, int64_t year) {
    int64_t jan1 = DaysFromCivil(year, 1, 1);
    switch (d.kind) {
      case Kind::kJulian:  // February 29 is never counted
        return jan1 + d.n - 1 + (IsLeapYear(year) && d.n >= 60 ? 1 : 0);
      case Kind::kZeroBased:
        return jan1 + d.n;
      case Kind::kMonthWeekDay: {
        int64_t first = DaysFromCivil(year, d.month, 1);
        int64_t day = first + (d.weekday - WeekdayFromDays(first) + 7) % 7 + (d.week - 1) * 7;
        int64_t last = first + DaysInMonth(year, d.month) - 1;
        while (day > last) day -= 7;
        return day;
      }
    }
    return jan1;
  }
};

namespace {

constexpr int64_t kMaxTime = int64_t{1} << 40;  // ~34,000 years either side

int64_t YearOf(int64_t utc_seconds) {
  return CivilFromDays(FloorDiv(std::clamp(utc_seconds, -kMaxTime, kMaxTime), 86400)).year;
}

class TzStringParser {
 public:
  explicit TzStringParser(std::string_view s) : s_(s) {}

  StatusOr<TimeZone::PosixRule> Parse() {
    TimeZone::PosixRule rule;
    if (!Name()) return Error("expected a zone abbreviation");
    int32_t off = 0;
    if (!Offset(24, &off)) return Error("expected a UTC offset");
    rule.std_offset = -off;  // POSIX offsets count west of UTC
    if (AtEnd()) return rule;
    if (!Name()) return Error("expected a daylight-saving abbreviation");
    rule.has_dst = true;
    rule.dst_offset = rule.std_offset + 3600;
    if (!AtEnd() && Peek() != ',') {
      if (!Offset(24, &off)) return Error("expected a daylight-saving UTC offset");
      rule.dst_offset = -off;
    }
    if (AtEnd()) {
      // POSIX leaves the default rule to the implementation; tzcode uses
      // the US rules.
      rule.start = {TimeZone::PosixRule::Kind::kMonthWeekDay, 0, 3, 2, 0, 7200};
      rule.end = {TimeZone::PosixRule::Kind::kMonthWeekDay, 0, 11, 1, 0, 7200};
      return rule;
    }
    if (!Eat(',') || !Date(&rule.start)) return Error("expected the start of daylight saving");
    if (!Eat(',') || !Date(&rule.end)) return Error("expected the end of daylight saving");
    if (!AtEnd()) return Error("unexpected text after the rule");
    return rule;
  }

 private:
  Status Error(std::string_view what) const {
    return InvalidArgumentError(fmt::format("TZ string \"{}\": {} at offset {}", s_, what, pos_));
  }
  bool AtEnd() const { return pos_ >= s_.size(); }
  char Peek() const { return AtEnd() ? '\0' : s_[pos_]; }
  bool Eat(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }
  static bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }

  bool Name() {
    if (Eat('<')) {
      size_t start = pos_;
      while (!AtEnd() && Peek() != '>') ++pos_;
      if (pos_ - start < 3 || !Eat('>')) return false;
      return true;
    }
    size_t start = pos_;
    while (IsAlpha(Peek())) ++pos_;
    return pos_ - start >= 3;
  }
  bool Number(int max, int* out) {
    size_t start = pos_;
    int v = 0;
    while (IsDigit(Peek()) && pos_ - start < 4) v = v * 10 + (s_[pos_++] - '0');
    if (pos_ == start || v > max) return false;
    *out = v;
    return true;
  }
  // [+-]hh[:mm[:ss]] in seconds.
  bool Offset(int max_hours, int32_t* out) {
    int sign = 1;
    if (Eat('-')) {
      sign = -1;
    } else {
      Eat('+');
    }
    int h = 0, m = 0, sec = 0;
    if (!Number(max_hours, &h)) return false;
    if (Eat(':')) {
      if (!Number(59, &m)) return false;
      if (Eat(':') && !Number(59, &sec)) return false;
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    return true;
  }
  bool Date(TimeZone::PosixRule::Date* d) {
    using Kind = TimeZone::PosixRule::Kind;
    if (Eat('J')) {
      d->kind = Kind::kJulian;
      if (!Number(365, &d->n) || d->n < 1) return false;
    } else if (Eat('M')) {
      d->kind = Kind::kMonthWeekDay;
      if (!Number(12, &d->month) || d->month < 1 || !Eat('.')) return false;
      if (!Number(5, &d->week) || d->week < 1 || !Eat('.')) return false;
      if (!Number(6, &d->weekday)) return false;
    } else {
      d->kind = Kind::kZeroBased;
      if (!Number(365, &d->n)) return false;
    }
    d->time = 7200;
    if (Eat('/')) return Offset(167, &d->time);
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view data) : data_(data) {}
  bool Has(uint64_t n) const { return n <= data_.size() - pos_; }
  size_t pos() const { return pos_; }
  std::string_view Take(size_t n) {
    std::string_view v = data_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  uint8_t U8() { return static_cast<uint8_t>(data_[pos_++]); }
  uint32_t U32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | U8();
    return v;
  }
  int64_t I64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | U8();
    return static_cast<int64_t>(v);
  }
  std::string_view Rest() const { return data_.substr(pos_); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

struct TzifHeader {
  char version = 0;
  uint32_t isutcnt = 0, isstdcnt = 0, leapcnt = 0, timecnt = 0, typecnt = 0, charcnt = 0;
  uint64_t BlockSize(int time_size) const {
    return uint64_t{timecnt} * time_size + timecnt + uint64_t{typecnt} * 6 + charcnt +
           uint64_t{leapcnt} * (time_size + 4) + isstdcnt + isutcnt;
  }
};

Status TzifError(std::string_view name, std::string_view what) {
  return InvalidArgumentError(fmt::format("time zone \"{}\": not TZif: {}", name, what));
}

StatusOr<TzifHeader> ReadHeader(ByteReader& r, std::string_view name) {
  if (!r.Has(44)) return TzifError(name, "shorter than its header");
  if (r.Take(4) != "TZif") return TzifError(name, "bad magic");
  TzifHeader h;
  h.version = static_cast<char>(r.U8());
  if (h.version != '\0' && (h.version < '2' || h.version > '4')) {
    return TzifError(name, "unknown version");
  }
  r.Take(15);
  h.isutcnt = r.U32();
  h.isstdcnt = r.U32();
  h.leapcnt = r.U32();
  h.timecnt = r.U32();
  h.typecnt = r.U32();
  h.charcnt = r.U32();
  if (h.typecnt == 0) return TzifError(name, "no local time types");
  if (h.isutcnt != 0 && h.isutcnt != h.typecnt) return TzifError(name, "bad isutcnt");
  if (h.isstdcnt != 0 && h.isstdcnt != h.typecnt) return TzifError(name, "bad isstdcnt");
  return h;
}

}  // namespace

// ---- TimeZone

std::shared_ptr<const TimeZone> TimeZone::Utc() {
  static const std::shared_ptr<const TimeZone> utc = [] {
    auto tz = std::make_shared<TimeZone>();
    tz->name_ = "UTC";
    return tz;
  }();
  return utc;
}

StatusOr<std::shared_ptr<const TimeZone>> TimeZone::FromTzif(std::string name,
                                                             std::string_view data) {
  ByteReader r(data);
  ASSIGN_OR_RETURN(TzifHeader h, ReadHeader(r, name));
  int time_size = 4;
  if (h.version != '\0') {
    // Version 2+ repeats the data with 64-bit times after the v1 block; only
    // the second one is read.
    if (!r.Has(h.BlockSize(4))) return TzifError(name, "truncated version 1 block");
    r.Take(h.BlockSize(4));
    ASSIGN_OR_RETURN(h, ReadHeader(r, name));
    time_size = 8;
  }
  if (!r.Has(h.BlockSize(time_size))) return TzifError(name, "truncated data block");

  std::vector<int64_t> times(h.timecnt);
  for (auto& t : times) t = time_size == 8 ? r.I64() : static_cast<int32_t>(r.U32());
  std::vector<uint8_t> indices(h.timecnt);
  for (auto& i : indices) i = r.U8();
  std::vector<int32_t> offsets(h.typecnt);
  for (auto& off : offsets) {
    off = static_cast<int32_t>(r.U32());
    r.U8();  // isdst
    uint8_t desig = r.U8();
    // RFC 8536: -2^31 is invalid; real offsets stay within a day.
    if (off <= -26 * 3600 || off >= 26 * 3600) return TzifError(name, "UTC offset out of range");
    if (desig >= h.charcnt) return TzifError(name, "bad abbreviation index");
  }
  r.Take(h.charcnt);
  // Leap-second records and the std/wall and UT/local indicators are not
  // needed: times are POSIX seconds and the footer carries the rule.
  r.Take(uint64_t{h.leapcnt} * (time_size + 4) + h.isstdcnt + h.isutcnt);

  auto tz = std::make_shared<TimeZone>();
  tz->name_ = std::move(name);
  tz->initial_offset_ = offsets[0];
  tz->transitions_.reserve(times.size());
  for (size_t i = 0; i < times.size(); ++i) {
    if (indices[i] >= h.typecnt) return TzifError(tz->name_, "bad local time type index");
    if (i > 0 && times[i] <= times[i - 1]) return TzifError(tz->name_, "transitions out of order");
    tz->transitions_.push_back({times[i], offsets[indices[i]]});
  }

  if (h.version != '\0') {
    std::string_view rest = r.Rest();
    if (rest.empty() || rest[0] != '\n') return TzifError(tz->name_, "missing footer");
    size_t end = rest.find('\n', 1);
    if (end == std::string_view::npos) return TzifError(tz->name_, "unterminated footer");
    std::string_view footer = rest.substr(1, end - 1);
    if (!footer.empty()) {
      auto rule = TzStringParser(footer).Parse();
      if (!rule.ok()) {
        return InvalidArgumentError(
            fmt::format("time zone \"{}\": {}", tz->name_, rule.status().message()));
      }
      tz->rule_ = std::make_shared<const PosixRule>(*rule);
    }
  }
  return std::shared_ptr<const TimeZone>(std::move(tz));
}

bool TimeZone::InRule(int64_t t) const {
  return rule_ != nullptr && (transitions_.empty() || t > transitions_.back().at);
}

std::vector<TimeZone::Transition> TimeZone::RuleTransitions(int64_t year_from,
                                                            int64_t year_to) const {
  std::vector<Transition> out;
  if (rule_ == nullptr || !rule_->has_dst) return out;
  const PosixRule& r = *rule_;
  // One year more on each side, so changes that spill across a new year
  // ("J365/25") are merged with their neighbours before the range is cut.
  for (int64_t y = year_from - 1; y <= year_to + 1; ++y) {
    // The start time is in standard time, the end time in daylight time.
    out.push_back({PosixRule::Day(r.start, y) * 86400 + r.start.time - r.std_offset, r.dst_offset});
    out.push_back({PosixRule::Day(r.end, y) * 86400 + r.end.time - r.dst_offset, r.std_offset});
  }
  // At equal instants the end goes first, so a rule whose daylight time
  // ends when the next one starts ("EST5EDT,0/0,J365/25") stays in daylight
  // time all year.
  std::stable_sort(out.begin(), out.end(), [&](const Transition& a, const Transition& b) {
    if (a.at != b.at) return a.at < b.at;
    return a.offset == r.std_offset && b.offset != r.std_offset;
  });
  const int64_t range_begin = DaysFromCivil(year_from, 1, 1) * 86400;
  const int64_t range_end = DaysFromCivil(year_to + 1, 1, 1) * 86400;
  std::vector<Transition> merged;
  for (const Transition& t : out) {
    if (t.at < range_begin || t.at >= range_end) continue;
    if (!merged.empty() && merged.back().at == t.at) {
      merged.back() = t;
    } else {
      merged.push_back(t);
    }
  }
  return merged;
}

int32_t TimeZone::OffsetAt(int64_t utc_seconds) const {
  if (InRule(utc_seconds)) {
    if (!rule_->has_dst) return rule_->std_offset;
    int64_t y = YearOf(utc_seconds);
    int32_t offset = rule_->std_offset;
    for (const Transition& t : RuleTransitions(y - 1, y + 1)) {
      if (t.at > utc_seconds) break;
      offset = t.offset;
    }
    return offset;
  }
  if (transitions_.empty() || utc_seconds < transitions_.front().at) return initial_offset_;
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), utc_seconds,
                             [](int64_t t, const Transition& tr) { return t < tr.at; });
  return std::prev(it)->offset;
}

std::optional<TimeZone::Change> TimeZone::NextChange(int64_t utc_seconds) const {
  int32_t cur = OffsetAt(utc_seconds);
  int64_t t = utc_seconds;
  if (!InRule(t)) {
    auto it = std::upper_bound(transitions_.begin(), transitions_.end(), t,
                               [](int64_t v, const Transition& tr) { return v < tr.at; });
    for (; it != transitions_.end(); ++it) {
      if (it->offset != cur) return Change{it->at, cur, it->offset};
    }
    if (rule_ == nullptr) return std::nullopt;
    if (!transitions_.empty()) t = std::max(t, transitions_.back().at);
  }
  if (!rule_->has_dst) {
    // The rule's fixed offset takes over just after the last transition.
    if (rule_->std_offset != cur && !transitions_.empty() &&
        utc_seconds < transitions_.back().at + 1) {
      return Change{transitions_.back().at + 1, cur, rule_->std_offset};
    }
    return std::nullopt;
  }
  int64_t y = YearOf(t);
  for (const Transition& tr : RuleTransitions(y - 1, y + 2)) {
    if (tr.at <= t) continue;
    if (tr.offset != cur) return Change{tr.at, cur, tr.offset};
  }
  return std::nullopt;  // daylight time all year
}

std::optional<TimeZone::Change> TimeZone::PrevChange(int64_t utc_seconds) const {
  int64_t t = utc_seconds;
  if (InRule(t) && rule_->has_dst) {
    int64_t y = YearOf(t);
    std::vector<Transition> rule = RuleTransitions(y - 2, y + 1);
    for (auto it = rule.rbegin(); it != rule.rend(); ++it) {
      if (it->at > t) continue;
      if (!transitions_.empty() && it->at <= transitions_.back().at) break;
      int32_t before = OffsetAt(it->at - 1);
      if (before != it->offset) return Change{it->at, before, it->offset};
    }
  }
  if (transitions_.empty()) return std::nullopt;
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), t,
                             [](int64_t v, const Transition& tr) { return v < tr.at; });
  for (size_t i = static_cast<size_t>(it - transitions_.begin()); i-- > 0;) {
    int32_t before = i == 0 ? initial_offset_ : transitions_[i - 1].offset;
    if (before != transitions_[i].offset)
      return Change{transitions_[i].at, before, transitions_[i].offset};
  }
  return std::nullopt;
}

std::vector<int64_t> TimeZone::LocalToUtc(int64_t local_seconds) const {
  // Every instant with this wall time lies within a day and a bit of it
  // (offsets stay under 26 hours), so only the offsets in force in that
  // window can map to it.
  constexpr int64_t kWindow = 26 * 3600;
  std::vector<int32_t> offsets = {OffsetAt(local_seconds - kWindow)};
  int64_t t = local_seconds - kWindow;
  for (int i = 0; i < 64; ++i) {
    std::optional<Change> c = NextChange(t);
    if (!c || c->at > local_seconds + kWindow) break;
    offsets.push_back(c->after);
    t = c->at;
  }
  std::vector<int64_t> out;
  for (int32_t off : offsets) {
    int64_t candidate = local_seconds - off;
    if (OffsetAt(candidate) == off) out.push_back(candidate);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// ---- loading

Status CheckTimeZoneName(const std::string& name) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError(fmt::format(
        "time zone \"{}\" {}", name.size() > 64 ? name.substr(0, 64) + "..." : name, why));
  };
  if (name.empty()) return bad("is empty");
  if (name.size() > 255) return bad("is longer than 255 characters");
  if (name.front() == '/') return bad("must not start with '/'");
  if (name.find("..") != std::string::npos) return bad("must not contain \"..\"");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '+' || c == '-' || c == '/';
    if (!ok) return bad("may only contain letters, digits, '_', '+', '-' and '/'");
  }
  return OkStatus();
}

StatusOr<std::shared_ptr<const TimeZone>> LoadTimeZone(const std::string& name) {
  RETURN_IF_ERROR(CheckTimeZoneName(name));
  const char* env = std::getenv("TZDIR");
  std::string dir = env != nullptr && *env != '\0' ? env : "/usr/share/zoneinfo";
  std::string key = dir + '\0' + name;

  static std::mutex mu;
  // Guarded by mu. Bounded by the number of zone files (negative results
  // are not kept).
  static std::map<std::string, std::shared_ptr<const TimeZone>> cache;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache.find(key); it != cache.end()) return it->second;

  std::filesystem::path path = std::filesystem::path(dir) / name;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    if (name == "UTC" || name == "Etc/UTC") return TimeZone::Utc();
    return NotFoundError(fmt::format("unknown time zone \"{}\"", name));
  }
  constexpr uintmax_t kMaxSize = 1 << 20;
  uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec || size > kMaxSize) {
    return InvalidArgumentError(
        fmt::format("time zone \"{}\": {} is not a zone file", name, path.string()));
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream data;
  data << in.rdbuf();
  if (!in && !in.eof()) {
    return UnavailableError(fmt::format("time zone \"{}\": cannot read {}", name, path.string()));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const TimeZone> tz, TimeZone::FromTzif(name, data.str()));
  cache.emplace(std::move(key), tz);
  return tz;
}

}  // namespace lathe
