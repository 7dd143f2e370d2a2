#include "spec/schedule_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <set>

#include "base/yaml.h"

namespace lathe::spec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// µs of an RFC 3339 time; the tests write every instant in UTC.
int64_t T(std::string_view rfc3339) {
  auto t = ParseRfc3339(rfc3339, "t");
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? *t : 0;
}

std::vector<std::string> Fmt(const std::vector<int64_t>& ticks) {
  std::vector<std::string> out;
  for (int64_t t : ticks) out.push_back(FormatTimeUtc(t));
  return out;
}

CronExpr Cron(std::string_view text) {
  auto c = ParseCron(text, "cron");
  EXPECT_TRUE(c.ok()) << text << ": " << c.status().ToString();
  return c.ok() ? *c : CronExpr{};
}

std::shared_ptr<const TimeZone> Zone(const std::string& name) {
  auto tz = LoadTimeZone(name);
  return tz.ok() ? *tz : nullptr;
}

#define REQUIRE_ZONE(var, name) \
  auto var = Zone(name);        \
  if (var == nullptr) GTEST_SKIP() << name << " is not installed (tzdata)"

// The next `n` cron ticks after `from`, as UTC text.
std::vector<std::string> Next(std::string_view cron, const TimeZone& tz, std::string_view from,
                              int n) {
  CronExpr c = Cron(cron);
  std::vector<int64_t> out;
  int64_t t = T(from);
  for (int i = 0; i < n; ++i) {
    auto next = NextCronTick(c, tz, t);
    EXPECT_TRUE(next.ok()) << next.status().ToString();
    if (!next.ok()) break;
    out.push_back(*next);
    t = *next;
  }
  return Fmt(out);
}

std::vector<int> Bits(uint64_t mask) {
  std::vector<int> out;
  for (int i = 0; i < 64; ++i) {
    if ((mask >> i) & 1) out.push_back(i);
  }
  return out;
}

// ---- cron parsing

TEST(ParseCron, FieldsRangesStepsListsAndNames) {
  CronExpr c = Cron("*/15 0-6/3 1,15 JAN-MAR,dec mon-FRI");
  EXPECT_THAT(Bits(c.minutes), ElementsAre(0, 15, 30, 45));
  EXPECT_THAT(Bits(c.hours), ElementsAre(0, 3, 6));
  EXPECT_THAT(Bits(c.days_of_month), ElementsAre(1, 15));
  EXPECT_THAT(Bits(c.months), ElementsAre(1, 2, 3, 12));
  EXPECT_THAT(Bits(c.days_of_week), ElementsAre(1, 2, 3, 4, 5));
  EXPECT_TRUE(c.dom_restricted);
  EXPECT_TRUE(c.dow_restricted);
  EXPECT_EQ(c.text, "*/15 0-6/3 1,15 JAN-MAR,dec mon-FRI");

  EXPECT_THAT(Bits(Cron("1-10/3 * * * *").minutes), ElementsAre(1, 4, 7, 10));
  EXPECT_THAT(Bits(Cron("5/20 * * * *").minutes), ElementsAre(5, 25, 45));
  EXPECT_THAT(Bits(Cron("0 0 * * 7").days_of_week), ElementsAre(0));  // 7 = Sunday
  EXPECT_THAT(Bits(Cron("0 0 * * 5-7").days_of_week), ElementsAre(0, 5, 6));
  EXPECT_THAT(Bits(Cron("0 0 * * *").days_of_week), ElementsAre(0, 1, 2, 3, 4, 5, 6));
  EXPECT_EQ(Bits(Cron("* * * * *").minutes).size(), 60u);
  EXPECT_THAT(Bits(Cron("59 23 31 12 6").minutes), ElementsAre(59));
  // Vixie: a field that begins with `*` is unrestricted, steps included.
  CronExpr star_step = Cron("0 0 */2 * 1");
  EXPECT_FALSE(star_step.dom_restricted);
  EXPECT_TRUE(star_step.dow_restricted);
  EXPECT_THAT(Bits(Cron("0 0 1 * *").days_of_week), ElementsAre(0, 1, 2, 3, 4, 5, 6));
  EXPECT_EQ(Cron("  0 2 * * *\t").text, "0 2 * * *");
}

TEST(ParseCron, Macros) {
  struct {
    const char* macro;
    const char* same_as;
  } cases[] = {{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
               {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
               {"@hourly", "0 * * * *"}, {"@Daily", "0 0 * * *"}};
  for (const auto& c : cases) {
    CronExpr a = Cron(c.macro), b = Cron(c.same_as);
    EXPECT_EQ(a.text, c.macro);
    EXPECT_EQ(a.minutes, b.minutes) << c.macro;
    EXPECT_EQ(a.hours, b.hours) << c.macro;
    EXPECT_EQ(a.days_of_month, b.days_of_month) << c.macro;
    EXPECT_EQ(a.months, b.months) << c.macro;
    EXPECT_EQ(a.days_of_week, b.days_of_week) << c.macro;
    EXPECT_EQ(a.dom_restricted, b.dom_restricted) << c.macro;
    EXPECT_EQ(a.dow_restricted, b.dow_restricted) << c.macro;
  }
}

TEST(ParseCron, ErrorsNameTheFieldAndToken) {
  struct {
    const char* text;
    const char* message;
  } cases[] = {
      {"61 * * * *", "cron: minute 61 out of range 0-59"},
      {"0 2 * * * *", "cron: expected 5 fields, got 6"},
      {"0 2 * *", "cron: expected 5 fields, got 4"},
      {"", "cron: expected 5 fields, got 0"},
      {"0 24 * * *", "cron: hour 24 out of range 0-23"},
      {"0 0 0 * *", "cron: day of month 0 out of range 1-31"},
      {"0 0 32 * *", "cron: day of month 32 out of range 1-31"},
      {"0 0 * 13 *", "cron: month 13 out of range 1-12"},
      {"0 0 * * 8", "cron: day of week 8 out of range 0-7"},
      {"x * * * *", "cron: minute \"x\" is not a number"},
      {"0 0 * FOO *", "cron: month \"FOO\" is not a number (or JAN-DEC)"},
      {"0 0 * * MONDAY", "cron: day of week \"MONDAY\" is not a number (or SUN-SAT)"},
      {"0 0 * JAN-MON *", "cron: month \"MON\" is not a number (or JAN-DEC)"},
      {"*/0 * * * *", "cron: step 0 in minute field must be at least 1"},
      {"*/x * * * *", "cron: step \"x\" in minute field is not a number"},
      {"0 5-1 * * *", "cron: hour range \"5-1\" is backwards"},
      {"1,,2 * * * *", "cron: empty item in minute field \"1,,2\""},
      {"1, * * * *", "cron: empty item in minute field \"1,\""},
      {"-5 * * * *", "cron: minute \"\" is not a number"},
      {"@reboot",
       "cron: \"@reboot\" is not a cron macro (@yearly, @annually, @monthly, @weekly, "
       "@daily, @midnight, @hourly)"},
      {"0 0 30 2 *",
       "cron: \"0 0 30 2 *\" never fires (no selected month has the selected days "
       "of month)"},
      {"0 0 31 4,6,9,11 *",
       "cron: \"0 0 31 4,6,9,11 *\" never fires (no selected month has the "
       "selected days of month)"},
  };
  for (const auto& c : cases) {
    auto r = ParseCron(c.text, "cron");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(), c.message) << c.text;
    EXPECT_EQ(r.status().field(), "cron");
  }
  EXPECT_FALSE(ParseCron(std::string(300, '*'), "cron").ok());
  // Both day fields restricted: the weekday fires even if the date cannot.
  EXPECT_TRUE(ParseCron("0 0 30 2 1", "cron").ok());
  EXPECT_TRUE(ParseCron("0 0 29 2 *", "cron").ok());
}

// ---- the next tick, UTC

TEST(NextCronTick, StepsAcrossHoursDaysAndMonthEnds) {
  auto utc = TimeZone::Utc();
  EXPECT_THAT(Next("*/15 * * * *", *utc, "2026-01-31T23:50:00Z", 3),
              ElementsAre("2026-02-01T00:00:00Z", "2026-02-01T00:15:00Z", "2026-02-01T00:30:00Z"));
  // Strictly after: a tick at `after` is not returned, fractions count.
  EXPECT_THAT(Next("0 2 * * *", *utc, "2026-11-01T02:00:00Z", 1),
              ElementsAre("2026-11-02T02:00:00Z"));
  EXPECT_THAT(Next("0 2 * * *", *utc, "2026-11-01T01:59:59.999999Z", 1),
              ElementsAre("2026-11-01T02:00:00Z"));
  EXPECT_THAT(Next("0 0 31 * *", *utc, "2026-01-31T00:00:00Z", 4),
              ElementsAre("2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z",
                          "2026-08-31T00:00:00Z"));
  EXPECT_THAT(Next("0 0 1 */3 *", *utc, "2026-11-15T00:00:00Z", 3),
              ElementsAre("2027-01-01T00:00:00Z", "2027-04-01T00:00:00Z", "2027-07-01T00:00:00Z"));
  EXPECT_THAT(Next("@yearly", *utc, "2026-06-01T00:00:00Z", 2),
              ElementsAre("2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"));
  EXPECT_THAT(Next("30 4 * * 1-5", *utc, "2026-11-20T12:00:00Z", 3),  // Fri → Mon
              ElementsAre("2026-11-23T04:30:00Z", "2026-11-24T04:30:00Z", "2026-11-25T04:30:00Z"));
}

TEST(NextCronTick, LeapYears) {
  auto utc = TimeZone::Utc();
  EXPECT_THAT(Next("0 12 29 2 *", *utc, "2026-03-01T00:00:00Z", 2),
              ElementsAre("2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"));
  EXPECT_THAT(Next("0 0 28-29 2 *", *utc, "2027-02-27T00:00:00Z", 3),
              ElementsAre("2027-02-28T00:00:00Z", "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z"));
  // 2100 is not a leap year: after February 2096 the next 29 February is in
  // 2104, beyond the 5-year search.
  auto r = NextCronTick(Cron("0 0 29 2 *"), *utc, T("2096-03-01T00:00:00Z"));
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("never fires in the 5 years after"));
}

TEST(NextCronTick, DayOfMonthOrDayOfWeek) {
  auto utc = TimeZone::Utc();
  // Both restricted: the 13th or any Friday (Vixie cron).
  EXPECT_THAT(Next("0 0 13 * 5", *utc, "2026-11-01T00:00:00Z", 8),
              ElementsAre("2026-11-06T00:00:00Z", "2026-11-13T00:00:00Z", "2026-11-20T00:00:00Z",
                          "2026-11-27T00:00:00Z", "2026-12-04T00:00:00Z", "2026-12-11T00:00:00Z",
                          "2026-12-13T00:00:00Z", "2026-12-18T00:00:00Z"));
  // A `*/2` day of month is unrestricted, so both must match: odd days
  // that are Mondays.
  EXPECT_THAT(Next("0 0 */2 * 1", *utc, "2026-11-01T00:00:00Z", 4),
              ElementsAre("2026-11-09T00:00:00Z", "2026-11-23T00:00:00Z", "2026-12-07T00:00:00Z",
                          "2026-12-21T00:00:00Z"));
  // Only day of week restricted.
  EXPECT_THAT(Next("0 9 * * SUN", *utc, "2026-11-23T00:00:00Z", 2),
              ElementsAre("2026-11-29T09:00:00Z", "2026-12-06T09:00:00Z"));
}

TEST(NextCronTick, NeverFiresIsNotFoundAndFast) {
  // ParseCron rejects 30 February; built by hand it searches 5 years.
  CronExpr c;
  c.text = "0 0 30 2 *";
  c.minutes = 1;
  c.hours = 1;
  c.days_of_month = 1u << 30;
  c.months = 1u << 2;
  c.days_of_week = 0x7f;
  c.dom_restricted = true;
  auto start = std::chrono::steady_clock::now();
  auto r = NextCronTick(c, *TimeZone::Utc(), T("2026-01-01T00:00:00Z"));
  auto prev = PrevCronTick(c, *TimeZone::Utc(), T("2026-01-01T00:00:00Z"));
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(),
            "cron: \"0 0 30 2 *\" never fires in the 5 years after 2026-01-01T00:00:00Z (UTC)");
  EXPECT_EQ(prev.status().code(), StatusCode::kNotFound);
  // Month and day skipping: a few thousand steps, not 2.6 million minutes.
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 200);
}

TEST(PrevCronTick, MirrorsNext) {
  auto utc = TimeZone::Utc();
  auto p = PrevCronTick(Cron("0 2 * * *"), *utc, T("2026-11-01T02:00:00Z"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(FormatTimeUtc(*p), "2026-10-31T02:00:00Z");
  p = PrevCronTick(Cron("0 2 * * *"), *utc, T("2026-11-01T02:00:00.000001Z"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(FormatTimeUtc(*p), "2026-11-01T02:00:00Z");
  p = PrevCronTick(Cron("0 0 31 * *"), *utc, T("2026-03-01T00:00:00Z"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(FormatTimeUtc(*p), "2026-01-31T00:00:00Z");
  p = PrevCronTick(Cron("0 12 29 2 *"), *utc, T("2028-02-01T00:00:00Z"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(FormatTimeUtc(*p), "2024-02-29T12:00:00Z");
}

// ---- time zones and DST

TEST(NextCronTick, BerlinSpringForwardFiresAtTheEndOfTheGap) {
  REQUIRE_ZONE(tz, "Europe/Berlin");
  // 2026-03-29 02:00 CET → 03:00 CEST: 02:30 does not exist; it fires at
  // 03:00 CEST (01:00 UTC).
  EXPECT_THAT(Next("30 2 * * *", *tz, "2026-03-27T12:00:00Z", 3),
              ElementsAre("2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"));
  // Several times in one gap fire once; 03:00 itself is the same instant.
  EXPECT_THAT(Next("0,15,30,45 2 * * *", *tz, "2026-03-28T12:00:00Z", 2),
              ElementsAre("2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"));
  EXPECT_THAT(Next("0 2,3 * * *", *tz, "2026-03-28T12:00:00Z", 3),
              ElementsAre("2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-30T01:00:00Z"));
}

TEST(NextCronTick, BerlinFallBackFiresOnceAtTheFirstOccurrence) {
  REQUIRE_ZONE(tz, "Europe/Berlin");
  // 2026-10-25 03:00 CEST → 02:00 CET: 02:30 happens at 00:30 and 01:30 UTC.
  EXPECT_THAT(Next("30 2 * * *", *tz, "2026-10-24T12:00:00Z", 2),
              ElementsAre("2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"));
  // From inside the repeated hour (second pass) the next day is next.
  EXPECT_THAT(Next("30 2 * * *", *tz, "2026-10-25T01:00:00Z", 1),
              ElementsAre("2026-10-26T01:30:00Z"));
}

TEST(NextCronTick, NewYorkSpringForwardAndFallBack) {
  REQUIRE_ZONE(tz, "America/New_York");
  // 2026-03-08 02:00 EST → 03:00 EDT (07:00 UTC).
  EXPECT_THAT(Next("30 2 * * *", *tz, "2026-03-07T12:00:00Z", 2),
              ElementsAre("2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"));
  // 2026-11-01 02:00 EDT → 01:00 EST (06:00 UTC): 01:30 fires once, EDT.
  EXPECT_THAT(Next("30 1 * * *", *tz, "2026-10-31T12:00:00Z", 2),
              ElementsAre("2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"));
  // Every hour: real hours, the repeated one twice, the skipped one never.
  EXPECT_THAT(Next("30 * * * *", *tz, "2026-11-01T04:00:00Z", 4),
              ElementsAre("2026-11-01T04:30:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z",
                          "2026-11-01T07:30:00Z"));
  EXPECT_THAT(Next("30 * * * *", *tz, "2026-03-08T05:00:00Z", 3),
              ElementsAre("2026-03-08T05:30:00Z", "2026-03-08T06:30:00Z", "2026-03-08T07:30:00Z"));
  // Daily at midnight keeps local midnight across both changes.
  EXPECT_THAT(Next("@daily", *tz, "2026-03-07T12:00:00Z", 2),
              ElementsAre("2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z"));
}

TEST(NextCronTick, LordHoweHalfHourShift) {
  REQUIRE_ZONE(tz, "Australia/Lord_Howe");
  // 2026-10-04 02:00 +10:30 → 02:30 +11: 02:15 fires at 02:30 local.
  EXPECT_THAT(Next("15 2 * * *", *tz, "2026-10-02T12:00:00Z", 3),
              ElementsAre("2026-10-02T15:45:00Z", "2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"));
  // 2026-04-05 02:00 +11 → 01:30 +10:30: 01:45 happens twice, fires once.
  EXPECT_THAT(Next("45 1 * * *", *tz, "2026-04-03T00:00:00Z", 3),
              ElementsAre("2026-04-03T14:45:00Z", "2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"));
}

TEST(NextCronTick, AfterTheLastTransitionUsesTheFooterRule) {
  REQUIRE_ZONE(berlin, "Europe/Berlin");
  REQUIRE_ZONE(ny, "America/New_York");
  EXPECT_THAT(Next("0 12 * * *", *berlin, "2100-07-01T00:00:00Z", 1),
              ElementsAre("2100-07-01T10:00:00Z"));
  EXPECT_THAT(Next("0 12 * * *", *berlin, "2100-12-01T00:00:00Z", 1),
              ElementsAre("2100-12-01T11:00:00Z"));
  EXPECT_THAT(Next("30 2 * * *", *berlin, "2100-03-27T12:00:00Z", 2),
              ElementsAre("2100-03-28T01:00:00Z", "2100-03-29T00:30:00Z"));
  EXPECT_THAT(Next("30 1 * * *", *ny, "2100-11-06T12:00:00Z", 2),
              ElementsAre("2100-11-07T05:30:00Z", "2100-11-08T06:30:00Z"));
}

// The tick set by brute force, minute by minute over UTC, straight from
// the rules in schedule_spec.h: a wall time fires at its first occurrence,
// a skipped one at the end of the gap; with every hour, every occurrence.
bool Matches(const CronExpr& c, int64_t local) {
  int64_t days = FloorDiv(local, 86400);
  int64_t sod = local - days * 86400;
  CivilDate d = CivilFromDays(days);
  bool dom = (c.days_of_month >> d.day) & 1, dow = (c.days_of_week >> WeekdayFromDays(days)) & 1;
  bool day = c.dom_restricted && c.dow_restricted ? dom || dow : dom && dow;
  return day && ((c.months >> d.month) & 1) && ((c.hours >> (sod / 3600)) & 1) &&
         ((c.minutes >> (sod % 3600 / 60)) & 1);
}

std::vector<int64_t> BruteForce(const CronExpr& c, const TimeZone& tz, int64_t from, int64_t to) {
  const bool every_hour = c.hours == (1u << 24) - 1;
  std::vector<int64_t> out;
  int64_t max_local = std::numeric_limits<int64_t>::min();
  int64_t prev_local = 0;
  for (int64_t t = from - 2 * 86400; t <= to; t += 60) {
    int64_t local = t + tz.OffsetAt(t);
    bool fire = false;
    if (every_hour) {
      fire = Matches(c, local);
    } else {
      fire = local > max_local && Matches(c, local);
      if (t > from - 2 * 86400 && local > prev_local + 60) {
        for (int64_t l = std::max(prev_local + 60, max_local + 60); l < local; l += 60) {
          fire = fire || Matches(c, l);
        }
      }
    }
    if (fire && t > from) out.push_back(t * 1'000'000);
    max_local = std::max(max_local, local);
    prev_local = local;
  }
  return out;
}

TEST(NextCronTick, AgreesWithBruteForceAroundDstChanges) {
  struct Window {
    const char* zone;
    const char* from;
  } windows[] = {
      {"Europe/Berlin", "2026-03-27T00:00:00Z"},
      {"Europe/Berlin", "2026-10-23T00:00:00Z"},
      {"America/New_York", "2026-03-06T00:00:00Z"},
      {"America/New_York", "2026-10-30T00:00:00Z"},
      {"Australia/Lord_Howe", "2026-04-02T00:00:00Z"},
      {"Australia/Lord_Howe", "2026-10-01T00:00:00Z"},
      {"Europe/Berlin", "2100-03-26T00:00:00Z"},
      {"America/New_York", "2100-11-05T00:00:00Z"},
      {"UTC", "2026-02-27T00:00:00Z"},
  };
  const char* crons[] = {"30 2 * * *",   "*/15 2 * * *",  "0,30 1-3 * * *", "30 * * * *",
                         "*/20 * * * *", "0 3 * * *",     "45 1 * * *",     "15 2 * * 0",
                         "0 0 * * *",    "*/7 0-4 * * *", "0 * * * *"};
  int checked = 0;
  for (const Window& w : windows) {
    auto tz = Zone(w.zone);
    if (tz == nullptr) continue;
    int64_t from = T(w.from), to = from + 4 * 86400 * int64_t{1'000'000};
    for (const char* text : crons) {
      CronExpr c = Cron(text);
      std::vector<int64_t> want = BruteForce(c, *tz, from / 1'000'000, to / 1'000'000);
      std::vector<int64_t> got;
      int64_t t = from;
      for (int i = 0; i < 2000; ++i) {
        auto next = NextCronTick(c, *tz, t);
        ASSERT_TRUE(next.ok());
        if (*next > to) break;
        got.push_back(*next);
        t = *next;
      }
      ASSERT_EQ(Fmt(got), Fmt(want)) << w.zone << " " << text;
      // Walking back gives the same ticks.
      for (size_t i = 1; i < got.size(); ++i) {
        auto prev = PrevCronTick(c, *tz, got[i]);
        ASSERT_TRUE(prev.ok());
        ASSERT_EQ(FormatTimeUtc(*prev), FormatTimeUtc(got[i - 1])) << w.zone << " " << text;
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, static_cast<int>(std::size(crons)));  // UTC at least
}

// ---- RFC 3339

TEST(Rfc3339, ParsesOffsetsAndFractions) {
  EXPECT_EQ(T("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(T("2026-11-01T00:00:00Z"), T("2026-11-01T01:00:00+01:00"));
  EXPECT_EQ(T("2026-11-01T00:00:00Z"), T("2026-10-31T18:30:00-05:30"));
  EXPECT_EQ(T("2026-11-01t00:00:00.5z") - T("2026-11-01T00:00:00Z"), 500000);
  EXPECT_EQ(T("2026-11-01 00:00:00.1234567Z") - T("2026-11-01T00:00:00Z"), 123456);
  EXPECT_EQ(T("1969-12-31T23:59:59Z"), -1'000'000);
  for (const char* bad : {"2026-11-01T00:00:00", "2026-11-01", "yesterday", "2026-11-01T00:00Z",
                          "2026-11-01T00:00:00+0100", "2026-11-01T00:00:00.Z",
                          "2026-11-01T00:00:00Zjunk", "2026-11-01T00:00:00+24:00"}) {
    auto r = ParseRfc3339(bad, "start");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().field(), "start");
    EXPECT_THAT(r.status().message(), HasSubstr("is not an RFC 3339 time")) << bad;
  }
  EXPECT_EQ(ParseRfc3339("2026-02-30T00:00:00Z", "start").status().message(),
            "start: 2026-02-30 is not a date");
  EXPECT_EQ(ParseRfc3339("2026-11-01T24:00:00Z", "end").status().message(),
            "end: \"24:00:00\" is not a time of day");
}

TEST(Rfc3339, FormatsUtc) {
  EXPECT_EQ(FormatTimeUtc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatTimeUtc(T("2026-11-23T01:07:22Z")), "2026-11-23T01:07:22Z");
  EXPECT_EQ(FormatTimeUtc(T("2026-11-23T01:07:22Z") + 120000), "2026-11-23T01:07:22.12Z");
  EXPECT_EQ(FormatTimeUtc(-500000), "1969-12-31T23:59:59.5Z");
}

TEST(LocalDate, IsTheDateInTheZone) {
  REQUIRE_ZONE(berlin, "Europe/Berlin");
  REQUIRE_ZONE(ny, "America/New_York");
  int64_t t = T("2026-12-24T23:30:00Z");
  EXPECT_EQ(LocalDate(*TimeZone::Utc(), t), "2026-12-24");
  EXPECT_EQ(LocalDate(*berlin, t), "2026-12-25");
  EXPECT_EQ(LocalDate(*ny, T("2026-12-25T03:00:00Z")), "2026-12-24");
}

// ---- schedule documents

ScheduleSpec Spec(std::string_view yaml) {
  auto v = ParseYaml(yaml);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  if (!v.ok()) return {};
  auto s = ParseScheduleSpec(*v, LoadTimeZone);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? *s : ScheduleSpec{};
}

std::string Write(const ScheduleSpec& s) {
  std::string out;
  JsonWriter w(&out);
  WriteScheduleSpec(w, s);
  return out;
}

TEST(ParseScheduleSpec, FullDocumentAndRoundTrip) {
  ScheduleSpec s = Spec(R"(
name: nightly
project: demo
pipeline: train-eval
pipeline_version: 3
cron: "0 2 * * *"
timezone: Europe/Berlin
start: 2026-11-01T00:00:00Z
end: 2027-01-01T00:00:00+01:00
catchup: true
overlap: Forbid
max_concurrency: 2
depends_on_past: true
retries: 3
history_limit: 20
paused: false
skip_dates: [2026-12-25, 2026-12-24]
params: {threshold: 0.9, sample: 100}
)");
  EXPECT_EQ(s.name, "nightly");
  EXPECT_EQ(s.project, "demo");
  EXPECT_EQ(s.pipeline, "train-eval");
  EXPECT_EQ(s.pipeline_version, 3);
  ASSERT_TRUE(s.cron.has_value());
  EXPECT_EQ(s.cron->text, "0 2 * * *");
  EXPECT_FALSE(s.interval_seconds.has_value());
  EXPECT_EQ(s.timezone, "Europe/Berlin");
  EXPECT_EQ(s.start_us, T("2026-11-01T00:00:00Z"));
  EXPECT_EQ(s.end_us, T("2026-12-31T23:00:00Z"));
  EXPECT_TRUE(s.catchup);
  EXPECT_EQ(s.overlap, OverlapPolicy::kForbid);
  EXPECT_EQ(s.max_concurrency, 2);
  EXPECT_TRUE(s.depends_on_past);
  EXPECT_EQ(s.retries, 3);
  EXPECT_EQ(s.history_limit, 20);
  EXPECT_THAT(s.skip_dates, ElementsAre("2026-12-24", "2026-12-25"));
  EXPECT_EQ(s.params.Dump(), R"({"threshold":0.9,"sample":100})");

  std::string json = Write(s);
  EXPECT_EQ(json,
            R"({"name":"nightly","project":"demo","pipeline":"train-eval","pipeline_version":3,)"
            R"("cron":"0 2 * * *","timezone":"Europe/Berlin","start":"2026-11-01T00:00:00Z",)"
            R"("end":"2026-12-31T23:00:00Z","catchup":true,"overlap":"Forbid",)"
            R"("max_concurrency":2,"depends_on_past":true,"retries":3,"history_limit":20,)"
            R"("paused":false,"skip_dates":["2026-12-24","2026-12-25"],)"
            R"("params":{"threshold":0.9,"sample":100}})");
  auto again = ParseScheduleSpec(*ParseJson(json), LoadTimeZone);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(Write(*again), json);
}

TEST(ParseScheduleSpec, DefaultsAndIntervals) {
  ScheduleSpec s =
      Spec("name: hourly\npipeline: p\ninterval: 1h30m\nstart: 2026-11-01T00:00:00Z\n");
  EXPECT_EQ(s.interval_seconds, 5400);
  EXPECT_EQ(s.timezone, "UTC");
  EXPECT_FALSE(s.catchup);
  EXPECT_EQ(s.overlap, OverlapPolicy::kAllow);
  EXPECT_EQ(s.max_concurrency, 1);
  EXPECT_EQ(s.retries, 0);
  EXPECT_EQ(s.history_limit, 10);
  EXPECT_FALSE(s.paused);
  EXPECT_FALSE(s.pipeline_version.has_value());
  EXPECT_TRUE(s.params.is_object());
  std::string json = Write(s);
  EXPECT_THAT(json, HasSubstr(R"("interval":"1h30m")"));
  auto again = ParseScheduleSpec(*ParseJson(json), LoadTimeZone);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(Write(*again), json);
  EXPECT_EQ(
      Spec("name: a\npipeline: p\ninterval: 3600\nstart: 2026-11-01T00:00:00Z\n").interval_seconds,
      3600);
  EXPECT_EQ(OverlapPolicyName(OverlapPolicy::kReplace), "Replace");
  // Without a zone loader only the name's syntax is checked.
  auto v = ParseYaml("name: a\npipeline: p\ncron: '@daily'\ntimezone: Mars/Base\n");
  EXPECT_TRUE(ParseScheduleSpec(*v, nullptr).ok());
}

TEST(ParseScheduleSpec, ErrorsNameTheirField) {
  const std::string base = "name: nightly\npipeline: train-eval\n";
  struct {
    std::string extra;
    std::string field;
    std::string message;
  } cases[] = {
      {"cron: '61 * * * *'\n", "cron", "cron: minute 61 out of range 0-59"},
      {"cron: '0 2 * * * *'\n", "cron", "cron: expected 5 fields, got 6"},
      {"cron: 5\n", "cron", "cron: expected a string, got an integer"},
      {"cron: '@daily'\ntimezone: Mars/Base\n", "timezone",
       "timezone: unknown time zone \"Mars/Base\""},
      {"cron: '@daily'\ntimezone: ../../etc/passwd\n", "timezone",
       "timezone: time zone \"../../etc/passwd\" must not contain \"..\""},
      {"cron: '@daily'\nstart: yesterday\n", "start",
       "start: \"yesterday\" is not an RFC 3339 time (use e.g. 2026-11-01T00:00:00Z or "
       "2026-11-01T01:00:00+01:00)"},
      {"cron: '@daily'\nstart: 2026-11-01T00:00:00Z\nend: 2026-11-01T00:00:00Z\n", "end",
       "end: must be after start"},
      {"interval: 0\nstart: 2026-11-01T00:00:00Z\n", "interval", "interval: must be at least 1s"},
      {"interval: 1h\n", "start",
       "start: is required with interval (interval ticks count from it)"},
      {"interval: 1h\ncron: '@daily'\n", "interval",
       "interval: cannot be set together with cron (use one of them)"},
      {"", "cron", "cron: a schedule needs cron or interval"},
      {"cron: '@daily'\nskip_dates: [2026-02-30]\n", "skip_dates[0]",
       "skip_dates[0]: 2026-02-30 is not a date"},
      {"cron: '@daily'\nskip_dates: [2026-12-25, Dec 26]\n", "skip_dates[1]",
       "skip_dates[1]: \"Dec 26\" is not a date (use YYYY-MM-DD)"},
      {"cron: '@daily'\noverlap: Sometimes\n", "overlap",
       "overlap: \"Sometimes\" is not an overlap policy (Allow, Forbid, Replace)"},
      {"cron: '@daily'\nmax_concurrency: 0\n", "max_concurrency",
       "max_concurrency: 0 is not in 1..100"},
      {"cron: '@daily'\nmax_concurrency: 101\n", "max_concurrency",
       "max_concurrency: 101 is not in 1..100"},
      {"cron: '@daily'\nretries: 11\n", "retries", "retries: 11 is not in 0..10"},
      {"cron: '@daily'\nhistory_limit: 1001\n", "history_limit",
       "history_limit: 1001 is not in 0..1000"},
      {"cron: '@daily'\npipeline_version: 0\n", "pipeline_version",
       "pipeline_version: 0 must be at least 1 (leave it out for the latest)"},
      {"cron: '@daily'\nparams: fast\n", "params", "params: expected an object, got a string"},
      {"cron: '@daily'\ncatchup: maybe\n", "catchup", ""},
      {"cron: '@daily'\ncronn: x\n", "cronn", ""},
  };
  for (const auto& c : cases) {
    auto v = ParseYaml(base + c.extra);
    ASSERT_TRUE(v.ok()) << c.extra;
    auto r = ParseScheduleSpec(*v, LoadTimeZone);
    ASSERT_FALSE(r.ok()) << c.extra;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.extra;
    EXPECT_EQ(r.status().field(), c.field) << c.extra << r.status().message();
    if (!c.message.empty()) {
      EXPECT_EQ(r.status().message(), c.message) << c.extra;
    }
  }
  auto bad_name =
      ParseScheduleSpec(*ParseYaml("name: Nightly\npipeline: p\ncron: '@daily'\n"), LoadTimeZone);
  EXPECT_EQ(bad_name.status().field(), "name");
  auto no_pipeline = ParseScheduleSpec(*ParseYaml("name: n\ncron: '@daily'\n"), LoadTimeZone);
  EXPECT_EQ(no_pipeline.status().field(), "pipeline");
  std::string many = base + "cron: '@daily'\nskip_dates: [";
  for (int i = 0; i < 1001; ++i) many += std::string(i ? "," : "") + "2026-01-01";
  many += "]\n";
  EXPECT_EQ(ParseScheduleSpec(*ParseYaml(many), LoadTimeZone).status().field(), "skip_dates");
}

// ---- planning

ScheduleSpec Hourly(bool catchup) {
  ScheduleSpec s;
  s.name = "hourly";
  s.pipeline = "p";
  s.cron = Cron("0 * * * *");
  s.catchup = catchup;
  return s;
}

DueTicks Plan(const ScheduleSpec& s, const TimeZone& tz, std::string_view created, int64_t last,
              std::string_view now, size_t limit = 100) {
  auto due = PlanTicks(s, tz, T(created), last, T(now), limit);
  EXPECT_TRUE(due.ok()) << due.status().ToString();
  return due.ok() ? *due : DueTicks{};
}

TEST(PlanTicks, CatchupOnRunsEveryMissedTickOldestFirst) {
  auto utc = TimeZone::Utc();
  ScheduleSpec s = Hourly(true);
  // Down from 03:10 to 09:30: six missed ticks.
  DueTicks d =
      Plan(s, *utc, "2026-11-01T00:00:00Z", T("2026-11-01T03:00:00Z"), "2026-11-01T09:30:00Z");
  EXPECT_THAT(Fmt(d.run),
              ElementsAre("2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z",
                          "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z", "2026-11-01T09:00:00Z"));
  EXPECT_TRUE(d.skipped.empty());
  EXPECT_TRUE(d.date_skipped.empty());
  EXPECT_EQ(FormatTimeUtc(d.handled_through), "2026-11-01T09:00:00Z");
}

TEST(PlanTicks, CatchupLimitContinuesOnTheNextCall) {
  auto utc = TimeZone::Utc();
  ScheduleSpec s = Hourly(true);
  DueTicks a =
      Plan(s, *utc, "2026-11-01T00:00:00Z", T("2026-11-01T03:00:00Z"), "2026-11-01T09:30:00Z", 4);
  EXPECT_THAT(Fmt(a.run), ElementsAre("2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z",
                                      "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"));
  EXPECT_EQ(a.handled_through, a.run.back());
  DueTicks b = Plan(s, *utc, "2026-11-01T00:00:00Z", a.handled_through, "2026-11-01T09:30:00Z", 4);
  EXPECT_THAT(Fmt(b.run), ElementsAre("2026-11-01T08:00:00Z", "2026-11-01T09:00:00Z"));
  DueTicks c = Plan(s, *utc, "2026-11-01T00:00:00Z", b.handled_through, "2026-11-01T09:30:00Z", 4);
  EXPECT_TRUE(c.run.empty());
  EXPECT_EQ(c.handled_through, b.handled_through);
}

TEST(PlanTicks, CatchupOffRunsOnlyTheLatestAndListsTheRest) {
  auto utc = TimeZone::Utc();
  ScheduleSpec s = Hourly(false);
  DueTicks d =
      Plan(s, *utc, "2026-11-01T00:00:00Z", T("2026-11-01T03:00:00Z"), "2026-11-01T09:30:00Z");
  EXPECT_THAT(Fmt(d.run), ElementsAre("2026-11-01T09:00:00Z"));
  EXPECT_THAT(Fmt(d.skipped),
              ElementsAre("2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z",
                          "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z"));
  EXPECT_EQ(FormatTimeUtc(d.handled_through), "2026-11-01T09:00:00Z");
  // The record is capped; the schedule still moves to the latest tick.
  DueTicks capped =
      Plan(s, *utc, "2026-11-01T00:00:00Z", T("2026-11-01T03:00:00Z"), "2026-11-01T09:30:00Z", 2);
  EXPECT_THAT(Fmt(capped.run), ElementsAre("2026-11-01T09:00:00Z"));
  EXPECT_THAT(Fmt(capped.skipped), ElementsAre("2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z"));
  EXPECT_EQ(FormatTimeUtc(capped.handled_through), "2026-11-01T09:00:00Z");
  // A year of downtime costs one backward search, not 8,760 forward ones.
  DueTicks year =
      Plan(s, *utc, "2026-11-01T00:00:00Z", T("2026-11-01T03:00:00Z"), "2027-11-01T00:30:00Z", 3);
  EXPECT_THAT(Fmt(year.run), ElementsAre("2027-11-01T00:00:00Z"));
  EXPECT_EQ(year.skipped.size(), 3u);
}

TEST(PlanTicks, NothingDue) {
  auto utc = TimeZone::Utc();
  for (bool catchup : {true, false}) {
    DueTicks d = Plan(Hourly(catchup), *utc, "2026-11-01T00:00:00Z", T("2026-11-01T03:00:00Z"),
                      "2026-11-01T03:59:59Z");
    EXPECT_TRUE(d.run.empty());
    EXPECT_TRUE(d.skipped.empty());
    EXPECT_EQ(FormatTimeUtc(d.handled_through), "2026-11-01T03:00:00Z");
    // The first tick not reached yet: still none handled.
    DueTicks first = Plan(Hourly(catchup), *utc, "2026-11-01T00:10:00Z", 0, "2026-11-01T00:50:00Z");
    EXPECT_TRUE(first.run.empty());
    EXPECT_EQ(first.handled_through, 0);
  }
  EXPECT_EQ(PlanTicks(Hourly(true), *utc, 0, 0, T("2026-11-01T00:00:00Z"), 0).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(PlanTicks, TheScheduleBeginsAtCreationOrStart) {
  auto utc = TimeZone::Utc();
  // Created at 00:30: the 00:00 tick is before the beginning, never due.
  DueTicks on = Plan(Hourly(true), *utc, "2026-11-01T00:30:00Z", 0, "2026-11-01T03:10:00Z");
  EXPECT_THAT(Fmt(on.run),
              ElementsAre("2026-11-01T01:00:00Z", "2026-11-01T02:00:00Z", "2026-11-01T03:00:00Z"));
  DueTicks off = Plan(Hourly(false), *utc, "2026-11-01T00:30:00Z", 0, "2026-11-01T03:10:00Z");
  EXPECT_THAT(Fmt(off.run), ElementsAre("2026-11-01T03:00:00Z"));
  EXPECT_THAT(Fmt(off.skipped), ElementsAre("2026-11-01T01:00:00Z", "2026-11-01T02:00:00Z"));
  // A tick at the creation instant is due.
  DueTicks exact = Plan(Hourly(true), *utc, "2026-11-01T01:00:00Z", 0, "2026-11-01T01:00:00Z");
  EXPECT_THAT(Fmt(exact.run), ElementsAre("2026-11-01T01:00:00Z"));
  // A start after the creation: nothing before it, and it is inclusive.
  ScheduleSpec s = Hourly(true);
  s.start_us = T("2026-11-01T02:00:00Z");
  DueTicks started = Plan(s, *utc, "2026-10-01T00:00:00Z", 0, "2026-11-01T03:10:00Z");
  EXPECT_THAT(Fmt(started.run), ElementsAre("2026-11-01T02:00:00Z", "2026-11-01T03:00:00Z"));
  // A start in the future: nothing yet.
  s.start_us = T("2026-12-01T00:00:00Z");
  EXPECT_TRUE(Plan(s, *utc, "2026-10-01T00:00:00Z", 0, "2026-11-01T03:10:00Z").run.empty());
}

TEST(PlanTicks, EndIsTheLastTick) {
  auto utc = TimeZone::Utc();
  ScheduleSpec s = Hourly(true);
  s.end_us = T("2026-11-01T05:00:00Z");
  DueTicks d =
      Plan(s, *utc, "2026-11-01T00:00:00Z", T("2026-11-01T03:00:00Z"), "2026-11-02T00:00:00Z");
  EXPECT_THAT(Fmt(d.run), ElementsAre("2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z"));
  auto next = NextTick(s, *utc, T("2026-11-01T05:00:00Z"));
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());
  s.catchup = false;
  DueTicks off =
      Plan(s, *utc, "2026-11-01T00:00:00Z", T("2026-11-01T03:00:00Z"), "2026-11-02T00:00:00Z");
  EXPECT_THAT(Fmt(off.run), ElementsAre("2026-11-01T05:00:00Z"));
  EXPECT_THAT(Fmt(off.skipped), ElementsAre("2026-11-01T04:00:00Z"));
}

TEST(PlanTicks, SkipDatesAreNeverDueAndAreReported) {
  REQUIRE_ZONE(berlin, "Europe/Berlin");
  ScheduleSpec s = Hourly(true);
  s.cron = Cron("0 2 * * *");
  s.timezone = "Europe/Berlin";
  s.skip_dates = {"2026-12-25"};
  DueTicks on =
      Plan(s, *berlin, "2026-11-01T00:00:00Z", T("2026-12-23T01:00:00Z"), "2026-12-27T12:00:00Z");
  EXPECT_THAT(Fmt(on.run),
              ElementsAre("2026-12-24T01:00:00Z", "2026-12-26T01:00:00Z", "2026-12-27T01:00:00Z"));
  EXPECT_THAT(Fmt(on.date_skipped), ElementsAre("2026-12-25T01:00:00Z"));
  EXPECT_EQ(FormatTimeUtc(on.handled_through), "2026-12-27T01:00:00Z");
  s.catchup = false;
  DueTicks off =
      Plan(s, *berlin, "2026-11-01T00:00:00Z", T("2026-12-23T01:00:00Z"), "2026-12-27T12:00:00Z");
  EXPECT_THAT(Fmt(off.run), ElementsAre("2026-12-27T01:00:00Z"));
  EXPECT_THAT(Fmt(off.skipped), ElementsAre("2026-12-24T01:00:00Z", "2026-12-26T01:00:00Z"));
  EXPECT_THAT(Fmt(off.date_skipped), ElementsAre("2026-12-25T01:00:00Z"));
  // When the skipped date holds the latest tick, the plan moves past it.
  for (bool catchup : {true, false}) {
    s.catchup = catchup;
    DueTicks d =
        Plan(s, *berlin, "2026-11-01T00:00:00Z", T("2026-12-24T01:00:00Z"), "2026-12-25T12:00:00Z");
    EXPECT_TRUE(d.run.empty());
    EXPECT_TRUE(d.skipped.empty());
    EXPECT_THAT(Fmt(d.date_skipped), ElementsAre("2026-12-25T01:00:00Z"));
    EXPECT_EQ(FormatTimeUtc(d.handled_through), "2026-12-25T01:00:00Z");
    DueTicks again =
        Plan(s, *berlin, "2026-11-01T00:00:00Z", d.handled_through, "2026-12-25T13:00:00Z");
    EXPECT_TRUE(again.date_skipped.empty());
  }
  // The date is the zone's: 00:30 Berlin on the 25th is 23:30 UTC on the 24th.
  s.cron = Cron("30 0 * * *");
  auto next = NextTick(s, *berlin, T("2026-12-23T23:30:00Z"));
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ(FormatTimeUtc(**next), "2026-12-25T23:30:00Z");
}

TEST(PlanTicks, DowntimeAcrossDstWithCatchup) {
  REQUIRE_ZONE(berlin, "Europe/Berlin");
  ScheduleSpec s = Hourly(true);
  s.cron = Cron("30 2 * * *");
  s.timezone = "Europe/Berlin";
  DueTicks d =
      Plan(s, *berlin, "2026-03-01T00:00:00Z", T("2026-03-27T01:30:00Z"), "2026-03-30T12:00:00Z");
  EXPECT_THAT(Fmt(d.run),
              ElementsAre("2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"));
}

TEST(PlanTicks, RandomDowntimeNeitherRepeatsNorLosesTicks) {
  REQUIRE_ZONE(ny, "America/New_York");
  // A controller that wakes at irregular times (seconds to days apart, over
  // both DST changes of 2026) with small limits: with catchup on, the runs
  // it creates are exactly the schedule's ticks; with catchup off, each run
  // is the latest tick at its call and ticks never repeat.
  const char* crons[] = {"30 1 * * *", "*/20 * * * *", "0 2 * * 1-5", "15,45 0-3 * * *"};
  uint64_t seed = 12345;
  auto rnd = [&](uint64_t n) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (seed >> 33) % n;
  };
  for (const char* text : crons) {
    for (bool catchup : {true, false}) {
      ScheduleSpec s = Hourly(catchup);
      s.cron = Cron(text);
      s.timezone = "America/New_York";
      int64_t created = T("2026-03-01T00:00:00Z"), end = T("2026-11-15T00:00:00Z");
      int64_t now = created, last = 0;
      std::vector<int64_t> runs;
      std::set<int64_t> seen;
      for (int step = 0; step < 5000 && now < end; ++step) {
        static constexpr int64_t kSteps[] = {1, 59, 600, 3600, 3 * 3600, 86400, 5 * 86400};
        now += kSteps[rnd(std::size(kSteps))] * 1'000'000;
        auto due = PlanTicks(s, *ny, created, last, now, 1 + rnd(5));
        ASSERT_TRUE(due.ok());
        for (int64_t t : due->run) {
          ASSERT_GT(t, last);
          ASSERT_LE(t, now);
          ASSERT_TRUE(seen.insert(t).second) << "duplicate " << FormatTimeUtc(t);
          runs.push_back(t);
        }
        for (int64_t t : due->skipped) ASSERT_TRUE(seen.insert(t).second);
        if (!catchup && !due->run.empty()) {
          auto after = NextTick(s, *ny, due->run.back());
          ASSERT_TRUE(after.ok());
          ASSERT_TRUE(!after->has_value() || **after > now) << "not the latest tick";
        }
        ASSERT_GE(due->handled_through, last);
        last = due->handled_through;
      }
      if (catchup) {
        // Everything up to the last handled tick, no gap.
        auto all = TicksBetween(s, *ny, created, last, 100000);
        ASSERT_TRUE(all.ok());
        ASSERT_EQ(Fmt(runs), Fmt(*all)) << text;
      }
    }
  }
}

TEST(Schedules, IntervalsAnchorAtStart) {
  auto utc = TimeZone::Utc();
  ScheduleSpec s = Spec(
      "name: six\npipeline: p\ninterval: 6h\nstart: 2026-11-01T00:00:00Z\n"
      "catchup: true\nskip_dates: [2026-11-03]\n");
  auto next = [&](std::string_view after) {
    auto t = NextTick(s, *utc, T(after));
    EXPECT_TRUE(t.ok());
    return t.ok() && t->has_value() ? FormatTimeUtc(**t) : std::string("none");
  };
  EXPECT_EQ(next("2026-01-01T00:00:00Z"), "2026-11-01T00:00:00Z");
  EXPECT_EQ(next("2026-11-01T00:00:00Z"), "2026-11-01T06:00:00Z");
  EXPECT_EQ(next("2026-11-01T07:00:00Z"), "2026-11-01T12:00:00Z");
  EXPECT_EQ(next("2026-11-02T18:00:00Z"), "2026-11-04T00:00:00Z");  // the 3rd is skipped
  DueTicks d = Plan(s, *utc, "2026-10-01T00:00:00Z", 0, "2026-11-02T01:00:00Z");
  EXPECT_THAT(Fmt(d.run),
              ElementsAre("2026-11-01T00:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T12:00:00Z",
                          "2026-11-01T18:00:00Z", "2026-11-02T00:00:00Z"));
  auto prev = PreviousTick(s, *utc, T("2026-11-01T00:00:00Z"));
  ASSERT_TRUE(prev.ok());
  EXPECT_EQ(FormatTimeUtc(*prev), "2026-10-31T18:00:00Z");
}

TEST(Schedules, PreviousTickIsTheDataIntervalStart) {
  REQUIRE_ZONE(berlin, "Europe/Berlin");
  ScheduleSpec s = Hourly(true);
  s.cron = Cron("30 2 * * *");
  s.start_us = T("2026-03-29T00:00:00Z");
  // The DST day's tick covers the day before; start does not matter.
  auto prev = PreviousTick(s, *berlin, T("2026-03-29T01:00:00Z"));
  ASSERT_TRUE(prev.ok());
  EXPECT_EQ(FormatTimeUtc(*prev), "2026-03-28T01:30:00Z");
  // Skip dates do not shorten or stretch intervals.
  s.skip_dates = {"2026-03-30"};
  prev = PreviousTick(s, *berlin, T("2026-03-31T00:30:00Z"));
  ASSERT_TRUE(prev.ok());
  EXPECT_EQ(FormatTimeUtc(*prev), "2026-03-30T00:30:00Z");
}

TEST(TicksBetween, BoundsSkipDatesAndLimit) {
  auto utc = TimeZone::Utc();
  ScheduleSpec s = Hourly(false);
  s.start_us = T("2026-11-10T00:00:00Z");  // backfills may reach before start
  s.end_us = T("2026-11-20T00:00:00Z");
  auto r = TicksBetween(s, *utc, T("2026-11-01T01:00:00Z"), T("2026-11-01T05:00:00Z"), 10);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(Fmt(*r),
              ElementsAre("2026-11-01T01:00:00Z", "2026-11-01T02:00:00Z", "2026-11-01T03:00:00Z",
                          "2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z"));
  r = TicksBetween(s, *utc, T("2026-11-01T00:30:00Z"), T("2026-11-01T01:59:59Z"), 10);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(Fmt(*r), ElementsAre("2026-11-01T01:00:00Z"));
  // Exactly the limit is fine, one more is an error.
  r = TicksBetween(s, *utc, T("2026-11-01T00:00:00Z"), T("2026-11-01T23:00:00Z"), 24);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 24u);
  r = TicksBetween(s, *utc, T("2026-11-01T00:00:00Z"), T("2026-11-02T00:00:00Z"), 24);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().field(), "to");
  EXPECT_THAT(r.status().message(), HasSubstr("more than 24 ticks"));
  r = TicksBetween(s, *utc, T("2026-11-02T00:00:00Z"), T("2026-11-01T00:00:00Z"), 24);
  EXPECT_EQ(r.status().field(), "from");
  s.skip_dates = {"2026-11-02"};
  r = TicksBetween(s, *utc, T("2026-11-01T22:00:00Z"), T("2026-11-03T01:00:00Z"), 100);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(Fmt(*r), ElementsAre("2026-11-01T22:00:00Z", "2026-11-01T23:00:00Z",
                                   "2026-11-03T00:00:00Z", "2026-11-03T01:00:00Z"));
  r = TicksBetween(s, *utc, T("2026-11-02T00:00:00Z"), T("2026-11-02T23:59:59Z"), 100);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

}  // namespace
}  // namespace lathe::spec
