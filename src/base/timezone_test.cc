#include "base/timezone.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace lathe {
namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kHour = 3600;

int64_t At(int64_t y, int m, int d, int h = 0, int mi = 0) {
  return DaysFromCivil(y, m, d) * kDay + h * kHour + mi * 60;
}

// ---- TZif bytes built here, so the reader is tested without tzdata.

struct TzifSpec {
  char version = '2';
  std::vector<int64_t> times;
  std::vector<uint8_t> indices;
  std::vector<int32_t> offsets;  // one local time type each
  std::string footer;
};

void Put32(std::string* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void Put64(std::string* out, int64_t v) {
  for (int i = 7; i >= 0; --i) {
    out->push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff));
  }
}

std::string Block(const TzifSpec& z, int time_size) {
  std::string out = "TZif";
  out.push_back(z.version);
  out.append(15, '\0');
  Put32(&out, 0);  // isutcnt
  Put32(&out, 0);  // isstdcnt
  Put32(&out, 0);  // leapcnt
  Put32(&out, static_cast<uint32_t>(z.times.size()));
  Put32(&out, static_cast<uint32_t>(z.offsets.size()));
  Put32(&out, 4);  // charcnt: "ZZZ\0"
  for (int64_t t : z.times) {
    if (time_size == 8) {
      Put64(&out, t);
    } else {
      Put32(&out, static_cast<uint32_t>(static_cast<int32_t>(t)));
    }
  }
  for (uint8_t i : z.indices) out.push_back(static_cast<char>(i));
  for (int32_t off : z.offsets) {
    Put32(&out, static_cast<uint32_t>(off));
    out.push_back(0);  // isdst
    out.push_back(0);  // abbreviation index
  }
  out.append("ZZZ", 4);
  return out;
}

std::string Tzif(const TzifSpec& z) {
  std::string out = Block(z, 4);
  if (z.version == '\0') return out;
  out += Block(z, 8);
  out += "\n" + z.footer + "\n";
  return out;
}

std::shared_ptr<const TimeZone> MustParse(const TzifSpec& z) {
  auto tz = TimeZone::FromTzif("Test/Zone", Tzif(z));
  EXPECT_TRUE(tz.ok()) << tz.status().ToString();
  return tz.ok() ? *tz : TimeZone::Utc();
}

// A footer-only zone: no transitions, the rule covers all time.
std::shared_ptr<const TimeZone> RuleZone(const std::string& footer, int32_t std_offset) {
  TzifSpec z;
  z.offsets = {std_offset};
  z.footer = footer;
  return MustParse(z);
}

std::shared_ptr<const TimeZone> SystemZone(const std::string& name) {
  auto tz = LoadTimeZone(name);
  if (!tz.ok()) return nullptr;
  return *tz;
}

#define REQUIRE_ZONE(var, name) \
  auto var = SystemZone(name);  \
  if (var == nullptr) GTEST_SKIP() << name << " is not installed (tzdata)"

TEST(Calendar, CivilDaysRoundTripAndKnownDates) {
  EXPECT_EQ(DaysFromCivil(1970, 1, 1), 0);
  EXPECT_EQ(DaysFromCivil(1969, 12, 31), -1);
  EXPECT_EQ(DaysFromCivil(2024, 2, 29), 19782);
  EXPECT_EQ(DaysFromCivil(2026, 11, 23), 20780);
  EXPECT_EQ(DaysFromCivil(2026, 12, 0), DaysFromCivil(2026, 11, 30));  // day 0 = the day before
  EXPECT_EQ(WeekdayFromDays(DaysFromCivil(2026, 11, 23)), 1);          // a Monday
  EXPECT_EQ(WeekdayFromDays(DaysFromCivil(1969, 12, 28)), 0);          // a Sunday before the epoch
  for (int64_t days = -800000; days <= 800000; days += 997) {
    CivilDate d = CivilFromDays(days);
    ASSERT_EQ(DaysFromCivil(d.year, d.month, d.day), days);
  }
  EXPECT_TRUE(IsLeapYear(2000));
  EXPECT_FALSE(IsLeapYear(2100));
  EXPECT_TRUE(IsLeapYear(2028));
  EXPECT_EQ(DaysInMonth(2100, 2), 28);
  EXPECT_EQ(DaysInMonth(2028, 2), 29);
  EXPECT_EQ(FloorDiv(-1, 60), -1);
  EXPECT_EQ(FloorDiv(-60, 60), -1);
  EXPECT_EQ(FloorDiv(59, 60), 0);
}

TEST(TimeZone, UtcHasNoOffsetAndNoChanges) {
  auto utc = TimeZone::Utc();
  EXPECT_EQ(utc->name(), "UTC");
  EXPECT_EQ(utc->OffsetAt(At(2026, 6, 1)), 0);
  EXPECT_FALSE(utc->NextChange(0).has_value());
  EXPECT_FALSE(utc->PrevChange(At(2026, 6, 1)).has_value());
  EXPECT_EQ(utc->LocalToUtc(At(2026, 6, 1, 12)), std::vector<int64_t>{At(2026, 6, 1, 12)});
}

TEST(TimeZone, ParsesVersion1Transitions) {
  TzifSpec z;
  z.version = '\0';
  z.offsets = {0, 3600, -1800};
  z.times = {1000, 2000, 5000};
  z.indices = {1, 0, 2};
  auto tz = MustParse(z);
  EXPECT_EQ(tz->OffsetAt(-1'000'000), 0);  // before the first transition: type 0
  EXPECT_EQ(tz->OffsetAt(999), 0);
  EXPECT_EQ(tz->OffsetAt(1000), 3600);
  EXPECT_EQ(tz->OffsetAt(1999), 3600);
  EXPECT_EQ(tz->OffsetAt(2000), 0);
  EXPECT_EQ(tz->OffsetAt(5000), -1800);
  EXPECT_EQ(tz->OffsetAt(At(2100, 1, 1)), -1800);  // no footer: the last offset holds
  auto c = tz->NextChange(0);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->at, 1000);
  EXPECT_EQ(c->before, 0);
  EXPECT_EQ(c->after, 3600);
  c = tz->NextChange(1000);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->at, 2000);
  EXPECT_FALSE(tz->NextChange(5000).has_value());
  c = tz->PrevChange(4999);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->at, 2000);
  EXPECT_FALSE(tz->PrevChange(999).has_value());
}

TEST(TimeZone, TransitionsThatKeepTheOffsetAreNotChanges) {
  TzifSpec z;
  z.offsets = {0, 0, 3600};
  z.times = {1000, 2000};
  z.indices = {1, 2};  // 1000: a new abbreviation, same offset
  auto tz = MustParse(z);
  auto c = tz->NextChange(0);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->at, 2000);
  c = tz->PrevChange(1500);
  EXPECT_FALSE(c.has_value());
}

TEST(TimeZone, Version2FooterRuleAfterLastTransition) {
  TzifSpec z;
  z.offsets = {3208, 3600, 7200};  // LMT, then CET/CEST
  z.times = {At(1893, 4, 1), At(1996, 3, 31, 1), At(1996, 10, 27, 1)};
  z.indices = {1, 2, 1};
  z.footer = "CET-1CEST,M3.5.0,M10.5.0/3";
  auto tz = MustParse(z);
  EXPECT_EQ(tz->OffsetAt(At(1800, 1, 1)), 3208);
  EXPECT_EQ(tz->OffsetAt(At(1996, 7, 1)), 7200);
  // 2030: last Sunday of March is the 31st, of October the 27th; both
  // changes at 01:00 UTC.
  EXPECT_EQ(tz->OffsetAt(At(2030, 3, 31, 0, 59)), 3600);
  EXPECT_EQ(tz->OffsetAt(At(2030, 3, 31, 1)), 7200);
  EXPECT_EQ(tz->OffsetAt(At(2030, 10, 27, 0, 59)), 7200);
  EXPECT_EQ(tz->OffsetAt(At(2030, 10, 27, 1)), 3600);
  auto c = tz->NextChange(At(2030, 1, 1));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->at, At(2030, 3, 31, 1));
  EXPECT_EQ(c->before, 3600);
  EXPECT_EQ(c->after, 7200);
  c = tz->NextChange(c->at);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->at, At(2030, 10, 27, 1));
  c = tz->PrevChange(At(2030, 12, 31));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->at, At(2030, 10, 27, 1));
  EXPECT_EQ(c->before, 7200);
  // From the last table transition into the rule.
  c = tz->NextChange(At(1996, 10, 27, 1));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->at, At(1997, 3, 30, 1));
  c = tz->PrevChange(At(1997, 1, 1));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->at, At(1996, 10, 27, 1));
  EXPECT_EQ(c->before, 7200);
}

TEST(TimeZone, PosixRuleForms) {
  // Julian day (Feb 29 never counted): J60 is March 1 in every year.
  auto julian = RuleZone("XST3XDT,J60/2,J300/2", -3 * 3600);
  EXPECT_EQ(julian->OffsetAt(At(2028, 3, 1, 4, 59)), -3 * 3600);
  EXPECT_EQ(julian->OffsetAt(At(2028, 3, 1, 5)), -2 * 3600);
  // Zero-based day: 59 is March 1 in common years, February 29 in leap years.
  auto zero = RuleZone("XST3XDT,59/2,299/2", -3 * 3600);
  EXPECT_EQ(zero->OffsetAt(At(2027, 3, 1, 5)), -2 * 3600);
  EXPECT_EQ(zero->OffsetAt(At(2028, 2, 29, 5)), -2 * 3600);
  EXPECT_EQ(zero->OffsetAt(At(2028, 2, 29, 4, 59)), -3 * 3600);
  // Negative times (RFC 8536 v3, America/Nuuk): the day before, local.
  auto nuuk = RuleZone("<-02>2<-01>,M3.5.0/-1,M10.5.0/0", -2 * 3600);
  // Start: Saturday 2030-03-30 23:00 local (-02) = 2030-03-31 01:00 UTC.
  EXPECT_EQ(nuuk->OffsetAt(At(2030, 3, 31, 0, 59)), -2 * 3600);
  EXPECT_EQ(nuuk->OffsetAt(At(2030, 3, 31, 1)), -1 * 3600);
  // Times past 24h: M3.2.0/26 is Monday 02:00.
  auto late = RuleZone("XST5XDT,M3.2.0/26,M11.1.0/25", -5 * 3600);
  EXPECT_EQ(late->OffsetAt(At(2030, 3, 11, 6, 59)), -5 * 3600);  // 2030-03-10 is the 2nd Sunday
  EXPECT_EQ(late->OffsetAt(At(2030, 3, 11, 7)), -4 * 3600);
  // Fifth week = the last one: October 2030 has four Sundays after the 6th.
  auto last = RuleZone("XST0XDT,M3.5.0/1,M10.5.0/1", 0);
  // Ends at 01:00 daylight time = 00:00 UTC.
  EXPECT_EQ(last->OffsetAt(At(2030, 10, 26, 23, 59)), 3600);
  EXPECT_EQ(last->OffsetAt(At(2030, 10, 27, 0)), 0);
  // A DST name without a rule: the US default, DST one hour ahead.
  auto us = RuleZone("EST5EDT", -5 * 3600);
  EXPECT_EQ(us->OffsetAt(At(2030, 7, 1)), -4 * 3600);
  EXPECT_EQ(us->OffsetAt(At(2030, 1, 1)), -5 * 3600);
  // Southern hemisphere: daylight time spans the new year.
  auto sydney = RuleZone("AEST-10AEDT,M10.1.0,M4.1.0/3", 10 * 3600);
  EXPECT_EQ(sydney->OffsetAt(At(2030, 1, 15)), 11 * 3600);
  EXPECT_EQ(sydney->OffsetAt(At(2030, 7, 15)), 10 * 3600);
  // No daylight time at all.
  auto fixed = RuleZone("<+0545>-5:45", 20700);
  EXPECT_EQ(fixed->OffsetAt(At(2030, 7, 15)), 20700);
  EXPECT_FALSE(fixed->NextChange(At(2030, 1, 1)).has_value());
}

TEST(TimeZone, PermanentDaylightTimeHasNoChanges) {
  // Daylight time from January 1 00:00 to December 31 25:00: all year.
  auto tz = RuleZone("EST5EDT,0/0,J365/25", -5 * 3600);
  EXPECT_EQ(tz->OffsetAt(At(2030, 1, 1, 2)), -4 * 3600);
  EXPECT_EQ(tz->OffsetAt(At(2030, 6, 1)), -4 * 3600);
  EXPECT_EQ(tz->OffsetAt(At(2030, 12, 31, 23)), -4 * 3600);
  EXPECT_FALSE(tz->NextChange(At(2030, 6, 1)).has_value());
}

TEST(TimeZone, RejectsBadTzif) {
  EXPECT_EQ(TimeZone::FromTzif("X", "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TimeZone::FromTzif("X", std::string(60, 'a')).status().code(),
            StatusCode::kInvalidArgument);
  TzifSpec z;
  z.offsets = {0, 3600};
  z.times = {1000};
  z.indices = {1};
  z.footer = "UTC0";
  std::string good = Tzif(z);
  ASSERT_TRUE(TimeZone::FromTzif("X", good).ok());
  // Truncated anywhere in the data.
  for (size_t n : {size_t{44}, size_t{60}, good.size() / 2, good.size() - 3}) {
    auto r = TimeZone::FromTzif("X", good.substr(0, n));
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << n;
  }
  TzifSpec bad_index = z;
  bad_index.indices = {7};
  EXPECT_FALSE(TimeZone::FromTzif("X", Tzif(bad_index)).ok());
  TzifSpec unordered = z;
  unordered.times = {2000, 1000};
  unordered.indices = {1, 0};
  EXPECT_FALSE(TimeZone::FromTzif("X", Tzif(unordered)).ok());
  TzifSpec bad_footer = z;
  bad_footer.footer = "CET-1CEST,M13.5.0,M10.5.0";
  auto r = TimeZone::FromTzif("X", Tzif(bad_footer));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("TZ string"), std::string::npos) << r.status().message();
  TzifSpec no_types = z;
  no_types.offsets = {};
  no_types.times = {};
  no_types.indices = {};
  EXPECT_FALSE(TimeZone::FromTzif("X", Tzif(no_types)).ok());
}

TEST(TimeZone, LocalToUtcGapsAndOverlaps) {
  auto tz = RuleZone("CET-1CEST,M3.5.0,M10.5.0/3", 3600);
  // 2030-03-31 02:30 local does not exist.
  EXPECT_TRUE(tz->LocalToUtc(At(2030, 3, 31, 2, 30)).empty());
  EXPECT_EQ(tz->LocalToUtc(At(2030, 3, 31, 1, 59)), std::vector<int64_t>{At(2030, 3, 31, 0, 59)});
  EXPECT_EQ(tz->LocalToUtc(At(2030, 3, 31, 3)), std::vector<int64_t>{At(2030, 3, 31, 1)});
  // 2030-10-27 02:30 local happens twice, CEST first.
  EXPECT_EQ(tz->LocalToUtc(At(2030, 10, 27, 2, 30)),
            (std::vector<int64_t>{At(2030, 10, 27, 0, 30), At(2030, 10, 27, 1, 30)}));
}

TEST(TimeZone, SystemZonesMatchTheirKnownChanges) {
  REQUIRE_ZONE(berlin, "Europe/Berlin");
  REQUIRE_ZONE(ny, "America/New_York");
  struct Case {
    std::shared_ptr<const TimeZone> tz;
    int64_t from, at;
    int32_t before, after;
  } cases[] = {
      {berlin, At(2026, 1, 1), At(2026, 3, 29, 1), 3600, 7200},
      {berlin, At(2026, 6, 1), At(2026, 10, 25, 1), 7200, 3600},
      {ny, At(2026, 1, 1), At(2026, 3, 8, 7), -5 * 3600, -4 * 3600},
      {ny, At(2026, 6, 1), At(2026, 11, 1, 6), -4 * 3600, -5 * 3600},
      // Far beyond the table: the footer rule.
      {berlin, At(2100, 1, 1), At(2100, 3, 28, 1), 3600, 7200},
      {berlin, At(2100, 6, 1), At(2100, 10, 31, 1), 7200, 3600},
      {ny, At(2100, 1, 1), At(2100, 3, 14, 7), -5 * 3600, -4 * 3600},
      {ny, At(2100, 6, 1), At(2100, 11, 7, 6), -4 * 3600, -5 * 3600},
  };
  for (const Case& c : cases) {
    auto next = c.tz->NextChange(c.from);
    ASSERT_TRUE(next.has_value()) << c.tz->name();
    EXPECT_EQ(next->at, c.at) << c.tz->name() << " from " << c.from;
    EXPECT_EQ(next->before, c.before);
    EXPECT_EQ(next->after, c.after);
    auto prev = c.tz->PrevChange(c.at + 10);
    ASSERT_TRUE(prev.has_value());
    EXPECT_EQ(prev->at, c.at);
    EXPECT_EQ(c.tz->OffsetAt(c.at - 1), c.before);
    EXPECT_EQ(c.tz->OffsetAt(c.at), c.after);
  }
  // Before 1970 and before standard time (LMT, +0:53:28 in Berlin).
  EXPECT_EQ(berlin->OffsetAt(At(1880, 1, 1)), 3208);
}

TEST(TimeZone, LordHoweShiftsByHalfAnHour) {
  REQUIRE_ZONE(tz, "Australia/Lord_Howe");
  auto c = tz->NextChange(At(2026, 1, 1));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->at, At(2026, 4, 4, 15));  // 02:00 +11 -> 01:30 +10:30
  EXPECT_EQ(c->before, 11 * 3600);
  EXPECT_EQ(c->after, 10 * 3600 + 1800);
  c = tz->NextChange(c->at);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->at, At(2026, 10, 3, 15, 30));  // 02:00 +10:30 -> 02:30 +11
  // 01:45 local on 2026-04-05 happens twice, 30 minutes apart.
  EXPECT_EQ(tz->LocalToUtc(At(2026, 4, 5, 1, 45)),
            (std::vector<int64_t>{At(2026, 4, 4, 14, 45), At(2026, 4, 4, 15, 15)}));
  EXPECT_TRUE(tz->LocalToUtc(At(2026, 10, 4, 2, 15)).empty());
}

TEST(LoadTimeZone, ChecksNames) {
  for (const char* bad : {"../etc/passwd", "/etc/localtime", "Europe/../../x", "Europe/Berlin;",
                          "Europe Berlin", "", "Mars/Base.txt"}) {
    auto r = LoadTimeZone(bad);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  auto r = LoadTimeZone("Mars/Base");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "unknown time zone \"Mars/Base\"");
  EXPECT_TRUE(CheckTimeZoneName("Etc/GMT+5").ok());
  EXPECT_TRUE(CheckTimeZoneName("America/Port-au-Prince").ok());
}

TEST(LoadTimeZone, ReadsTzdirAndCaches) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("lathe-tz-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "Test");
  TzifSpec z;
  z.offsets = {3600};
  z.footer = "XST-1";
  {
    std::ofstream out(dir / "Test" / "Zone", std::ios::binary);
    out << Tzif(z);
  }
  {
    std::ofstream out(dir / "Test" / "Broken", std::ios::binary);
    out << "not a zone";
  }
  const char* old = std::getenv("TZDIR");
  std::string saved = old != nullptr ? old : "";
  ::setenv("TZDIR", dir.c_str(), 1);
  auto a = LoadTimeZone("Test/Zone");
  auto b = LoadTimeZone("Test/Zone");
  auto broken = LoadTimeZone("Test/Broken");
  auto directory = LoadTimeZone("Test");
  auto utc = LoadTimeZone("UTC");  // not in this directory: built in
  if (old != nullptr) {
    ::setenv("TZDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("TZDIR");
  }
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ((*a)->name(), "Test/Zone");
  EXPECT_EQ((*a)->OffsetAt(At(2030, 7, 1)), 3600);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->get(), b->get());  // cached
  EXPECT_EQ(broken.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(directory.status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(utc.ok());
  EXPECT_EQ((*utc)->OffsetAt(0), 0);
}

}  // namespace
}  // namespace lathe
