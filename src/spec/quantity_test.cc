#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "spec/job_spec.h"

namespace lathe::spec {
namespace {

JsonValue S(std::string s) { return JsonValue::MakeString(std::move(s)); }
JsonValue I(int64_t i) { return JsonValue::MakeInt(i); }
JsonValue D(double d) { return JsonValue::MakeDouble(d); }

// The error of `result`, checked to be INVALID_ARGUMENT naming `field` with
// a message starting "field: ".
template <typename T>
std::string ErrorOf(const StatusOr<T>& result, const std::string& field) {
  EXPECT_FALSE(result.ok());
  if (result.ok()) return "";
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().field(), field);
  const std::string& m = result.status().message();
  EXPECT_EQ(m.rfind(field + ": ", 0), 0u) << m;
  return m;
}

TEST(Quantity, CpuAcceptsCoresFractionsAndMilli) {
  EXPECT_EQ(*ParseCpuMilli(I(2), "cpu"), 2000);
  EXPECT_EQ(*ParseCpuMilli(D(0.5), "cpu"), 500);
  EXPECT_EQ(*ParseCpuMilli(D(0.1), "cpu"), 100);  // not 101 from binary rounding
  EXPECT_EQ(*ParseCpuMilli(S("2"), "cpu"), 2000);
  EXPECT_EQ(*ParseCpuMilli(S("1.5"), "cpu"), 1500);
  EXPECT_EQ(*ParseCpuMilli(S("500m"), "cpu"), 500);
  EXPECT_EQ(*ParseCpuMilli(S(".25"), "cpu"), 250);
  EXPECT_EQ(*ParseCpuMilli(S("0.0001"), "cpu"), 1);  // rounded up to 1m
  EXPECT_EQ(*ParseCpuMilli(S("1e1"), "cpu"), 10000);
  EXPECT_EQ(*ParseCpuMilli(S("2.000000000000000000000000"), "cpu"), 2000);
}

TEST(Quantity, CpuRejectsBadValues) {
  EXPECT_EQ(ErrorOf(ParseCpuMilli(S("two"), "roles[0].resources.cpu"), "roles[0].resources.cpu"),
            "roles[0].resources.cpu: \"two\" is not a cpu quantity (use e.g. 2, 0.5, 500m)");
  EXPECT_EQ(ErrorOf(ParseCpuMilli(S("-1"), "cpu"), "cpu"), "cpu: \"-1\" must not be negative");
  EXPECT_EQ(ErrorOf(ParseCpuMilli(I(-2), "cpu"), "cpu"), "cpu: -2 must not be negative");
  EXPECT_EQ(ErrorOf(ParseCpuMilli(I(0), "cpu"), "cpu"), "cpu: 0 must be greater than 0");
  EXPECT_EQ(ErrorOf(ParseCpuMilli(S("0m"), "cpu"), "cpu"), "cpu: \"0m\" must be greater than 0");
  ErrorOf(ParseCpuMilli(S(""), "cpu"), "cpu");
  ErrorOf(ParseCpuMilli(S("1 "), "cpu"), "cpu");
  ErrorOf(ParseCpuMilli(S("1Gi"), "cpu"), "cpu");
  ErrorOf(ParseCpuMilli(S("."), "cpu"), "cpu");
  ErrorOf(ParseCpuMilli(S("+1"), "cpu"), "cpu");
  ErrorOf(ParseCpuMilli(S("1e400"), "cpu"), "cpu");
  ErrorOf(ParseCpuMilli(S("99999999999999999999999"), "cpu"), "cpu");
  ErrorOf(ParseCpuMilli(I(std::numeric_limits<int64_t>::max()), "cpu"), "cpu");
  ErrorOf(ParseCpuMilli(D(std::nan("")), "cpu"), "cpu");
  ErrorOf(ParseCpuMilli(D(INFINITY), "cpu"), "cpu");
  EXPECT_EQ(ErrorOf(ParseCpuMilli(JsonValue::MakeBool(true), "cpu"), "cpu"),
            "cpu: expected a cpu quantity (e.g. 2, 0.5, 500m), got a boolean");
  EXPECT_EQ(*ParseCpuMilliOrZero(I(0), "cpu"), 0);
}

TEST(Quantity, MemoryBinaryDecimalAndBytesRoundUpToMib) {
  EXPECT_EQ(*ParseMemoryMib(S("512Mi"), "m"), 512);
  EXPECT_EQ(*ParseMemoryMib(S("4Gi"), "m"), 4096);
  EXPECT_EQ(*ParseMemoryMib(S("1.5Gi"), "m"), 1536);
  EXPECT_EQ(*ParseMemoryMib(S("1Ti"), "m"), 1 << 20);
  EXPECT_EQ(*ParseMemoryMib(S("1Pi"), "m"), int64_t{1} << 30);
  EXPECT_EQ(*ParseMemoryMib(S("2048Ki"), "m"), 2);
  EXPECT_EQ(*ParseMemoryMib(S("2049Ki"), "m"), 3);    // rounded up
  EXPECT_EQ(*ParseMemoryMib(S("1G"), "m"), 954);      // 1e9 / 2^20 = 953.67
  EXPECT_EQ(*ParseMemoryMib(S("1500M"), "m"), 1431);  // 1.5e9 / 2^20 = 1430.5
  EXPECT_EQ(*ParseMemoryMib(S("1k"), "m"), 1);
  EXPECT_EQ(*ParseMemoryMib(S("1T"), "m"), 953675);     // 1e12 / 2^20 = 953674.3
  EXPECT_EQ(*ParseMemoryMib(S("1P"), "m"), 953674317);  // 1e15 / 2^20 = 953674316.4
  EXPECT_EQ(*ParseMemoryMib(S("1048576"), "m"), 1);
  EXPECT_EQ(*ParseMemoryMib(I(1048577), "m"), 2);
  EXPECT_EQ(*ParseMemoryMib(I(1), "m"), 1);
  EXPECT_EQ(*ParseMemoryMib(D(2147483648.0), "m"), 2048);
  EXPECT_EQ(*ParseMemoryMib(S("1024Pi"), "m"), int64_t{1} << 40);
}

TEST(Quantity, MemoryRejectsBadValues) {
  EXPECT_EQ(
      ErrorOf(ParseMemoryMib(S("3GB"), "roles[1].resources.memory"), "roles[1].resources.memory"),
      "roles[1].resources.memory: \"3GB\" is not a quantity (use e.g. 512Mi, 4Gi)");
  ErrorOf(ParseMemoryMib(S("1K"), "m"), "m");
  ErrorOf(ParseMemoryMib(S("1m"), "m"), "m");
  ErrorOf(ParseMemoryMib(S("Gi"), "m"), "m");
  ErrorOf(ParseMemoryMib(S("1Ei"), "m"), "m");
  EXPECT_EQ(ErrorOf(ParseMemoryMib(S("2048Pi"), "m"), "m"),
            "m: \"2048Pi\" is too large (at most 1024Pi)");
  ErrorOf(ParseMemoryMib(S("-1Gi"), "m"), "m");
  ErrorOf(ParseMemoryMib(I(0), "m"), "m");
  ErrorOf(ParseMemoryMib(S("0Gi"), "m"), "m");
  ErrorOf(ParseMemoryMib(JsonValue::MakeArray({}), "m"), "m");
  EXPECT_EQ(*ParseMemoryMibOrZero(S("0"), "m"), 0);
}

TEST(Quantity, GpuFractionOfOneOrWholeGpus) {
  EXPECT_EQ(*ParseGpuMilli(I(0), "g"), 0);
  EXPECT_EQ(*ParseGpuMilli(I(1), "g"), 1000);
  EXPECT_EQ(*ParseGpuMilli(I(4), "g"), 4000);
  EXPECT_EQ(*ParseGpuMilli(D(0.5), "g"), 500);
  EXPECT_EQ(*ParseGpuMilli(S("250m"), "g"), 250);
  EXPECT_EQ(*ParseGpuMilli(S("0.25"), "g"), 250);
  EXPECT_EQ(*ParseGpuMilli(S("2000m"), "g"), 2000);
  EXPECT_EQ(ErrorOf(ParseGpuMilli(D(1.5), "roles[0].resources.gpu"), "roles[0].resources.gpu"),
            "roles[0].resources.gpu: 1.5 is neither a fraction of one GPU (below 1) nor whole "
            "GPUs (use e.g. 0.5, 250m, 1, 4)");
  ErrorOf(ParseGpuMilli(S("1500m"), "g"), "g");
  ErrorOf(ParseGpuMilli(I(-1), "g"), "g");
  ErrorOf(ParseGpuMilli(S("one"), "g"), "g");
  EXPECT_EQ(*ParseGpuMilliTotal(S("2.5"), "g"), 2500);
}

TEST(Quantity, Durations) {
  EXPECT_EQ(*ParseDurationSeconds(I(90), "t"), 90);
  EXPECT_EQ(*ParseDurationSeconds(D(90.0), "t"), 90);
  EXPECT_EQ(*ParseDurationSeconds(S("90"), "t"), 90);
  EXPECT_EQ(*ParseDurationSeconds(S("90s"), "t"), 90);
  EXPECT_EQ(*ParseDurationSeconds(S("15m"), "t"), 900);
  EXPECT_EQ(*ParseDurationSeconds(S("1h30m"), "t"), 5400);
  EXPECT_EQ(*ParseDurationSeconds(S("2d"), "t"), 172800);
  EXPECT_EQ(*ParseDurationSeconds(S("1d2h3m4s"), "t"), 93784);
  EXPECT_EQ(*ParseDurationSeconds(S("90m"), "t"), 5400);
  EXPECT_EQ(ErrorOf(ParseDurationSeconds(S("1h30"), "timeout"), "timeout"),
            "timeout: \"1h30\" is not a duration (use e.g. 90, 90s, 15m, 1h30m, 2d)");
  ErrorOf(ParseDurationSeconds(S("30m1h"), "t"), "t");  // units in decreasing order
  ErrorOf(ParseDurationSeconds(S("1h1h"), "t"), "t");
  ErrorOf(ParseDurationSeconds(S("1.5h"), "t"), "t");
  ErrorOf(ParseDurationSeconds(S("1w"), "t"), "t");
  ErrorOf(ParseDurationSeconds(S(""), "t"), "t");
  ErrorOf(ParseDurationSeconds(S("h"), "t"), "t");
  ErrorOf(ParseDurationSeconds(S("-5s"), "t"), "t");
  ErrorOf(ParseDurationSeconds(I(-5), "t"), "t");
  EXPECT_EQ(ErrorOf(ParseDurationSeconds(I(0), "t"), "t"), "t: 0 must be greater than 0");
  ErrorOf(ParseDurationSeconds(D(1.5), "t"), "t");
  ErrorOf(ParseDurationSeconds(D(std::nan("")), "t"), "t");
  ErrorOf(ParseDurationSeconds(S("99999999999999999999d"), "t"), "t");
  ErrorOf(ParseDurationSeconds(S("3651d"), "t"), "t");
  ErrorOf(ParseDurationSeconds(JsonValue::MakeBool(false), "t"), "t");
}

TEST(Quantity, FormatsCanonicalText) {
  EXPECT_EQ(FormatCpu(2000), "2");
  EXPECT_EQ(FormatCpu(500), "500m");
  EXPECT_EQ(FormatCpu(1500), "1500m");
  EXPECT_EQ(FormatMemory(512), "512Mi");
  EXPECT_EQ(FormatMemory(4096), "4Gi");
  EXPECT_EQ(FormatMemory(1536), "1536Mi");
  EXPECT_EQ(FormatMemory(1 << 20), "1Ti");
  EXPECT_EQ(FormatMemory(int64_t{3} << 30), "3Pi");
  EXPECT_EQ(FormatMemory(0), "0Mi");
  EXPECT_EQ(FormatGpu(0), "0");
  EXPECT_EQ(FormatGpu(2000), "2");
  EXPECT_EQ(FormatGpu(500), "0.5");
  EXPECT_EQ(FormatGpu(250), "0.25");
  EXPECT_EQ(FormatGpu(1), "0.001");
  EXPECT_EQ(FormatGpu(2500), "2.5");
  EXPECT_EQ(FormatDuration(5400), "1h30m");
  EXPECT_EQ(FormatDuration(90), "1m30s");
  EXPECT_EQ(FormatDuration(172800), "2d");
  EXPECT_EQ(FormatDuration(93784), "1d2h3m4s");
}

TEST(Quantity, FormattedTextParsesBack) {
  for (int64_t milli : {1, 250, 999, 1000, 1500, 64000}) {
    EXPECT_EQ(*ParseCpuMilli(S(FormatCpu(milli)), "c"), milli);
  }
  for (int64_t mib : {1, 512, 1024, 1536, 1 << 20, 1 << 30}) {
    EXPECT_EQ(*ParseMemoryMib(S(FormatMemory(mib)), "m"), mib);
  }
  for (int64_t milli : {0, 1, 125, 500, 999, 1000, 8000}) {
    EXPECT_EQ(*ParseGpuMilli(S(FormatGpu(milli)), "g"), milli);
  }
  for (int64_t s : {1, 59, 60, 61, 3600, 5400, 86400, 93784}) {
    EXPECT_EQ(*ParseDurationSeconds(S(FormatDuration(s)), "t"), s);
  }
}

}  // namespace
}  // namespace lathe::spec
