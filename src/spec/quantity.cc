// Quantities (cpu, memory, gpu) and durations: Kubernetes-style strings or
// plain JSON numbers, parsed exactly (decimal arithmetic, never binary
// floating point) and rounded up to the unit the scheduler counts in.
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <string_view>

#include "spec/job_spec.h"

namespace lathe::spec {
namespace {

using U128 = unsigned __int128;

// Upper bounds keep every sum the scheduler forms (replicas × tasks × jobs)
// far from int64 overflow.
constexpr int64_t kMaxMilli = 1'000'000'000'000;                // 1e9 cores or GPUs
constexpr int64_t kMaxMib = int64_t{1} << 40;                   // 1 EiB
constexpr int64_t kMaxDurationSeconds = int64_t{3650} * 86400;  // 10 years
constexpr int kMaxDigits = 20;  // significant digits of a number we accept

Status FieldError(const std::string& field, const std::string& message) {
  return InvalidArgumentError(fmt::format("{}: {}", field, message), field);
}

// The user's text quoted for a message, cut short when long.
std::string Quote(std::string_view s) {
  std::string out;
  if (s.size() > 64) {
    AppendJsonString(&out, std::string(s.substr(0, 64)) + "...");
  } else {
    AppendJsonString(&out, s);
  }
  return out;
}

// A non-negative decimal number: mant / 10^scale.
struct Decimal {
  U128 mant = 0;
  int scale = 0;
};

U128 Pow10(int n) {
  U128 r = 1;
  for (int i = 0; i < n; ++i) r *= 10;
  return r;
}

enum class NumberParse { kOk, kSyntax, kTooLarge };

// Parses the longest prefix of `s` that is a decimal number ("12", "1.5",
// ".5", "2e3"); `*rest` receives the remainder (the suffix).
NumberParse ParseDecimal(std::string_view s, Decimal* out, std::string_view* rest) {
  size_t i = 0;
  int digits = 0;  // significant digits taken into mant
  bool any = false;
  U128 mant = 0;
  int scale = 0;
  auto take = [&](char c) -> bool {
    if (mant == 0 && c == '0') return true;  // leading zeros are free
    if (++digits > kMaxDigits) return false;
    mant = mant * 10 + static_cast<unsigned>(c - '0');
    return true;
  };
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    if (!take(s[i])) return NumberParse::kTooLarge;
    any = true;
    ++i;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    // Trailing zeros of the fraction add nothing.
    size_t end = i;
    while (end > start && s[end - 1] == '0') --end;
    for (size_t k = start; k < end; ++k) {
      if (!take(s[k])) return NumberParse::kTooLarge;
      ++scale;
    }
    any = any || i > start;
  }
  if (!any) return NumberParse::kSyntax;
  // An exponent: e or E, an optional sign, digits. Without digits after it
  // the 'e' is not an exponent (and no suffix of ours starts with e).
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    bool negative = false;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) negative = s[j++] == '-';
    size_t start = j;
    int exp = 0;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') {
      if (exp > 1000) return NumberParse::kTooLarge;
      exp = exp * 10 + (s[j] - '0');
      ++j;
    }
    if (j > start) {
      scale += negative ? exp : -exp;
      i = j;
    }
  }
  if (scale < 0) {
    if (mant != 0) {
      if (-scale + digits > kMaxDigits) return NumberParse::kTooLarge;
      mant *= Pow10(-scale);
    }
    scale = 0;
  }
  *out = {mant, scale};
  *rest = s.substr(i);
  return NumberParse::kOk;
}

// ceil(d × mult / div), or -1 when above `max`.
int64_t CeilScaled(const Decimal& d, uint64_t mult, uint64_t div, int64_t max) {
  if (d.mant == 0) return 0;
  // d.mant < 10^20 < 2^67 and mult <= 2^50: the product fits in 128 bits.
  U128 num = d.mant * mult;  // < 10^35
  int scale = d.scale;
  if (scale > 30) {
    // ceil(ceil(a / b) / c) == ceil(a / (b c)): shrink the scale first so
    // that 10^scale × div stays within 128 bits.
    if (scale - 30 >= 36) return 1;  // a positive value far below one unit
    U128 p = Pow10(scale - 30);
    num = num / p + (num % p != 0 ? 1 : 0);
    scale = 30;
  }
  U128 den = Pow10(scale) * div;
  U128 q = num / den + (num % den != 0 ? 1 : 0);
  if (q > static_cast<U128>(max)) return -1;
  return static_cast<int64_t>(q);
}

// A JSON number as a Decimal. Doubles go through their shortest faithful
// decimal text (%.15g), so 0.1 is one tenth and not 0.1000000000000000055.
enum class NumberCheck { kOk, kNegative, kNotFinite, kTooLarge };
NumberCheck NumberToDecimal(const JsonValue& v, Decimal* out) {
  if (v.type() == JsonValue::Type::kInt) {
    if (v.as_int() < 0) return NumberCheck::kNegative;
    *out = {static_cast<U128>(v.as_int()), 0};
    return NumberCheck::kOk;
  }
  double d = v.as_double();
  if (!std::isfinite(d)) return NumberCheck::kNotFinite;
  if (d < 0) return NumberCheck::kNegative;
  if (d == 0) d = 0;  // -0.0 would print as "-0"
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", d);
  std::string_view rest;
  if (ParseDecimal(buf, out, &rest) != NumberParse::kOk || !rest.empty()) {
    return NumberCheck::kTooLarge;
  }
  return NumberCheck::kOk;
}

struct Unit {
  std::string_view suffix;
  uint64_t mult;
};

struct QuantityKind {
  std::string_view what;      // "a cpu quantity"
  std::string_view examples;  // "2, 0.5, 500m"
  const Unit* units;          // suffix -> multiplier into the base unit
  size_t num_units;
  uint64_t number_mult;  // multiplier for a plain JSON number
  uint64_t div;          // base unit -> result unit
  int64_t max;           // in result units
  std::string_view max_text;
};

constexpr Unit kMilliUnits[] = {{"", 1000}, {"m", 1}};
constexpr Unit kByteUnits[] = {
    {"", 1},
    {"k", 1'000},
    {"M", 1'000'000},
    {"G", 1'000'000'000},
    {"T", 1'000'000'000'000},
    {"P", 1'000'000'000'000'000},
    {"Ki", uint64_t{1} << 10},
    {"Mi", uint64_t{1} << 20},
    {"Gi", uint64_t{1} << 30},
    {"Ti", uint64_t{1} << 40},
    {"Pi", uint64_t{1} << 50},
};

constexpr QuantityKind kCpu{"a cpu quantity", "2, 0.5, 500m",    kMilliUnits, 2, 1000, 1,
                            kMaxMilli,        "1000000000 cores"};
constexpr QuantityKind kGpu{"a gpu quantity", "1, 4, 0.5, 250m", kMilliUnits, 2, 1000, 1,
                            kMaxMilli,        "1000000000 GPUs"};
constexpr QuantityKind kMemory{"a quantity",      "512Mi, 4Gi", kByteUnits, 11, 1,
                               uint64_t{1} << 20, kMaxMib,      "1024Pi"};

// Parses `v` as `kind`; 0 is allowed here (callers decide).
StatusOr<int64_t> ParseQuantity(const JsonValue& v, const std::string& field,
                                const QuantityKind& kind) {
  Decimal d;
  uint64_t mult = kind.number_mult;
  std::string shown;
  if (v.is_number()) {
    shown = v.Dump();
    switch (NumberToDecimal(v, &d)) {
      case NumberCheck::kOk:
        break;
      case NumberCheck::kNegative:
        return FieldError(field, fmt::format("{} must not be negative", shown));
      case NumberCheck::kNotFinite:
        return FieldError(field, "must be a finite number");
      case NumberCheck::kTooLarge:
        return FieldError(field, fmt::format("{} is too large (at most {})", shown, kind.max_text));
    }
  } else if (v.is_string()) {
    const std::string& s = v.as_string();
    shown = Quote(s);
    auto not_quantity = [&] {
      return FieldError(field,
                        fmt::format("{} is not {} (use e.g. {})", shown, kind.what, kind.examples));
    };
    if (!s.empty() && s[0] == '-') {
      return FieldError(field, fmt::format("{} must not be negative", shown));
    }
    std::string_view rest;
    switch (ParseDecimal(s, &d, &rest)) {
      case NumberParse::kOk:
        break;
      case NumberParse::kSyntax:
        return not_quantity();
      case NumberParse::kTooLarge:
        return FieldError(field, fmt::format("{} is too large (at most {})", shown, kind.max_text));
    }
    bool found = false;
    for (size_t i = 0; i < kind.num_units; ++i) {
      if (rest == kind.units[i].suffix) {
        mult = kind.units[i].mult;
        found = true;
        break;
      }
    }
    if (!found) return not_quantity();
  } else {
    return FieldError(field, fmt::format("expected {} (e.g. {}), got {}", kind.what, kind.examples,
                                         JsonTypeName(v.type())));
  }
  int64_t result = CeilScaled(d, mult, kind.div, kind.max);
  if (result < 0) {
    return FieldError(field, fmt::format("{} is too large (at most {})", shown, kind.max_text));
  }
  return result;
}

Status CheckPositive(int64_t value, const JsonValue& v, const std::string& field) {
  if (value > 0) return OkStatus();
  return FieldError(field, fmt::format("{} must be greater than 0",
                                       v.is_string() ? Quote(v.as_string()) : v.Dump()));
}

Status CheckGpu(int64_t milli, const JsonValue& v, const std::string& field) {
  if (milli < 1000 || milli % 1000 == 0) return OkStatus();
  return FieldError(field, fmt::format("{} is neither a fraction of one GPU (below 1) nor whole "
                                       "GPUs (use e.g. 0.5, 250m, 1, 4)",
                                       v.is_string() ? Quote(v.as_string()) : v.Dump()));
}

// "3" / "250" / "5" -> the digits after "0." without trailing zeros.
std::string MilliFraction(int64_t milli) {
  std::string s = fmt::format("{:03d}", milli % 1000);
  while (!s.empty() && s.back() == '0') s.pop_back();
  return s;
}

}  // namespace

StatusOr<int64_t> ParseCpuMilli(const JsonValue& v, const std::string& field) {
  ASSIGN_OR_RETURN(int64_t milli, ParseQuantity(v, field, kCpu));
  RETURN_IF_ERROR(CheckPositive(milli, v, field));
  return milli;
}

StatusOr<int64_t> ParseCpuMilliOrZero(const JsonValue& v, const std::string& field) {
  return ParseQuantity(v, field, kCpu);
}

StatusOr<int64_t> ParseMemoryMib(const JsonValue& v, const std::string& field) {
  ASSIGN_OR_RETURN(int64_t mib, ParseQuantity(v, field, kMemory));
  RETURN_IF_ERROR(CheckPositive(mib, v, field));
  return mib;
}

StatusOr<int64_t> ParseMemoryMibOrZero(const JsonValue& v, const std::string& field) {
  return ParseQuantity(v, field, kMemory);
}

StatusOr<int64_t> ParseGpuMilli(const JsonValue& v, const std::string& field) {
  ASSIGN_OR_RETURN(int64_t milli, ParseQuantity(v, field, kGpu));
  RETURN_IF_ERROR(CheckGpu(milli, v, field));
  return milli;
}

StatusOr<int64_t> ParseGpuMilliTotal(const JsonValue& v, const std::string& field) {
  return ParseQuantity(v, field, kGpu);
}

StatusOr<int64_t> ParseDurationSeconds(const JsonValue& v, const std::string& field) {
  constexpr std::string_view kUse = "(use e.g. 90, 90s, 15m, 1h30m, 2d)";
  int64_t seconds = 0;
  std::string shown;
  if (v.type() == JsonValue::Type::kInt) {
    seconds = v.as_int();
    shown = v.Dump();
  } else if (v.type() == JsonValue::Type::kDouble) {
    double d = v.as_double();
    shown = v.Dump();
    if (!std::isfinite(d)) return FieldError(field, "must be a finite number");
    if (std::trunc(d) != d) {
      return FieldError(field, fmt::format("{} is not a whole number of seconds {}", shown, kUse));
    }
    if (std::fabs(d) > static_cast<double>(kMaxDurationSeconds)) {
      return FieldError(field, fmt::format("{} is too long (at most 3650d)", shown));
    }
    seconds = static_cast<int64_t>(d);
  } else if (v.is_string()) {
    const std::string& s = v.as_string();
    shown = Quote(s);
    auto bad = [&] {
      return FieldError(field, fmt::format("{} is not a duration {}", shown, kUse));
    };
    if (!s.empty() && s[0] == '-') {
      return FieldError(field, fmt::format("{} must not be negative", shown));
    }
    if (s.empty()) return bad();
    // Units in decreasing order, each at most once; a bare number is seconds.
    constexpr std::pair<char, int64_t> kUnits[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
    size_t next_unit = 0;
    size_t i = 0;
    while (i < s.size()) {
      size_t start = i;
      int64_t n = 0;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        if (n > kMaxDurationSeconds) {
          return FieldError(field, fmt::format("{} is too long (at most 3650d)", shown));
        }
        n = n * 10 + (s[i] - '0');
        ++i;
      }
      if (i == start) return bad();
      if (i == s.size()) {
        if (start != 0) return bad();  // "1h30": a number without its unit
        seconds = n;
        break;
      }
      size_t u = next_unit;
      while (u < 4 && kUnits[u].first != s[i]) ++u;
      if (u == 4) return bad();
      if (n > kMaxDurationSeconds / kUnits[u].second) {
        return FieldError(field, fmt::format("{} is too long (at most 3650d)", shown));
      }
      seconds += n * kUnits[u].second;
      next_unit = u + 1;
      ++i;
    }
  } else {
    return FieldError(field,
                      fmt::format("expected a duration {}, got {}", kUse, JsonTypeName(v.type())));
  }
  if (seconds < 0) return FieldError(field, fmt::format("{} must not be negative", shown));
  if (seconds == 0) return FieldError(field, fmt::format("{} must be greater than 0", shown));
  if (seconds > kMaxDurationSeconds) {
    return FieldError(field, fmt::format("{} is too long (at most 3650d)", shown));
  }
  return seconds;
}

std::string FormatCpu(int64_t milli) {
  if (milli % 1000 == 0) return fmt::format("{}", milli / 1000);
  return fmt::format("{}m", milli);
}

std::string FormatMemory(int64_t mib) {
  constexpr std::pair<std::string_view, int64_t> kUnits[] = {
      {"Pi", int64_t{1} << 30}, {"Ti", int64_t{1} << 20}, {"Gi", int64_t{1} << 10}};
  if (mib != 0) {
    for (const auto& [suffix, size] : kUnits) {
      if (mib % size == 0) return fmt::format("{}{}", mib / size, suffix);
    }
  }
  return fmt::format("{}Mi", mib);
}

std::string FormatGpu(int64_t milli) {
  if (milli % 1000 == 0) return fmt::format("{}", milli / 1000);
  return fmt::format("{}.{}", milli / 1000, MilliFraction(milli));
}

std::string FormatDuration(int64_t seconds) {
  if (seconds <= 0) return fmt::format("{}s", seconds);
  std::string out;
  constexpr std::pair<char, int64_t> kUnits[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
  for (const auto& [unit, size] : kUnits) {
    if (seconds >= size) {
      out += fmt::format("{}{}", seconds / size, unit);
      seconds %= size;
    }
  }
  return out;
}

}  // namespace lathe::spec
