#include "api/tracking_codec.h"

#include <simdjson.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <limits>

#include <fmt/core.h>

#include "base/strings.h"

namespace lathe::api {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

std::string_view TypeName(element e) {
  switch (e.type()) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64:
    case element_type::UINT64: return "an integer";
    case element_type::DOUBLE: return "a number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

// Names a field for errors. The path ("metrics[3].value") is only built
// when an error is reported: formatting it for every point would cost more
// than decoding the point.
struct Field {
  static constexpr size_t kNoIndex = static_cast<size_t>(-1);
  Field(const char* k) : key(k) {}  // NOLINT: a plain field name
  Field(std::string_view k) : key(k) {}  // NOLINT
  Field(std::string_view p, size_t i, std::string_view k) : parent(p), index(i), key(k) {}
  std::string str() const {
    return index == kNoIndex ? std::string(key) : fmt::format("{}[{}].{}", parent, index, key);
  }
  std::string_view parent;
  size_t index = kNoIndex;
  std::string_view key;
};

Status TypeError(const Field& f, std::string_view want, element got) {
  std::string field = f.str();
  return InvalidArgumentError(fmt::format("{}: expected {}, got {}", field, want, TypeName(got)),
                              field);
}

StatusOr<double> MetricValue(element e, const Field& f) {
  switch (e.type()) {
    case element_type::DOUBLE: return double(e);
    case element_type::INT64: return static_cast<double>(int64_t(e));
    case element_type::UINT64: return static_cast<double>(uint64_t(e));
    case element_type::STRING: {
      std::string_view s = std::string_view(e);
      if (EqualsIgnoreCaseAscii(s, "NaN")) return std::numeric_limits<double>::quiet_NaN();
      if (EqualsIgnoreCaseAscii(s, "Infinity") || EqualsIgnoreCaseAscii(s, "Inf") ||
          EqualsIgnoreCaseAscii(s, "+Infinity")) {
        return std::numeric_limits<double>::infinity();
      }
      if (EqualsIgnoreCaseAscii(s, "-Infinity") || EqualsIgnoreCaseAscii(s, "-Inf")) {
        return -std::numeric_limits<double>::infinity();
      }
      // Protobuf's JSON also allows numbers as strings.
      std::string text(s);
      char* end = nullptr;
      errno = 0;
      double v = std::strtod(text.c_str(), &end);
      if (!text.empty() && *end == '\0' && errno == 0) return v;
      std::string field = f.str();
      return InvalidArgumentError(
          fmt::format("{}: \"{}\" is not a number (use a number, \"NaN\", \"Infinity\" or "
                      "\"-Infinity\")",
                      field, s),
          field);
    }
    default: return TypeError(f, "a number", e);
  }
}

StatusOr<int64_t> IntValue(element e, const Field& f) {
  switch (e.type()) {
    case element_type::INT64: return int64_t(e);
    case element_type::UINT64: {
      uint64_t u = uint64_t(e);
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) break;
      return static_cast<int64_t>(u);
    }
    case element_type::DOUBLE: {
      double d = double(e);
      if (d != std::floor(d) || std::fabs(d) > 9.2e18) break;
      return static_cast<int64_t>(d);
    }
    case element_type::STRING: {
      std::string text{std::string_view(e)};
      char* end = nullptr;
      errno = 0;
      long long v = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || errno != 0) break;
      return static_cast<int64_t>(v);
    }
    default: return TypeError(f, "an integer", e);
  }
  std::string field = f.str();
  return InvalidArgumentError(fmt::format("{}: expected a 64-bit integer", field), field);
}

StatusOr<std::string_view> StringValue(element e, const Field& f) {
  if (e.type() != element_type::STRING) return TypeError(f, "a string", e);
  return std::string_view(e);
}

// One metric object. `parent` and `i` name it in errors.
Status DecodeMetric(simdjson::dom::object o, std::string_view parent, size_t i, bool strict,
                    int64_t now_ms, tracking::Metric* m) {
  bool has_key = false, has_value = false, has_ts = false;
  for (simdjson::dom::key_value_pair kv : o) {
    std::string_view k = kv.key;
    if (k == "key") {
      if (kv.value.type() != element_type::STRING) {
        return TypeError(Field(parent, i, "key"), "a string", kv.value);
      }
      m->key.assign(std::string_view(kv.value));
      has_key = true;
    } else if (k == "value") {
      ASSIGN_OR_RETURN(m->value, MetricValue(kv.value, Field(parent, i, "value")));
      has_value = true;
    } else if (k == "timestamp") {
      if (kv.value.is_null()) continue;
      ASSIGN_OR_RETURN(m->timestamp, IntValue(kv.value, Field(parent, i, "timestamp")));
      has_ts = true;
    } else if (k == "step") {
      if (kv.value.is_null()) continue;
      ASSIGN_OR_RETURN(m->step, IntValue(kv.value, Field(parent, i, "step")));
    } else if (strict) {
      std::string field = Field(parent, i, k).str();
      return InvalidArgumentError(fmt::format("{}: unknown field", field), field);
    }
  }
  if (!has_key) {
    std::string field = Field(parent, i, "key").str();
    return InvalidArgumentError(fmt::format("{}: missing required field", field), field);
  }
  if (!has_value) {
    std::string field = Field(parent, i, "value").str();
    return InvalidArgumentError(fmt::format("{}: missing required field", field), field);
  }
  if (!has_ts) m->timestamp = now_ms;
  return OkStatus();
}

Status DecodeMetrics(element e, std::string_view field, bool strict, int64_t now_ms,
                     std::vector<tracking::Metric>* out) {
  if (e.is_null()) return OkStatus();
  if (e.type() != element_type::ARRAY) return TypeError(Field(field), "an array", e);
  simdjson::dom::array a = e;
  out->resize(a.size());
  size_t i = 0;
  for (element item : a) {
    if (item.type() != element_type::OBJECT) {
      return TypeError(Field(fmt::format("{}[{}]", field, i)), "an object", item);
    }
    RETURN_IF_ERROR(DecodeMetric(item, field, i, strict, now_ms, &(*out)[i]));
    ++i;
  }
  return OkStatus();
}

// Native params/tags: {k: v} with string values.
Status DecodeStringMap(element e, std::string_view field, std::vector<tracking::Tag>* out) {
  if (e.is_null()) return OkStatus();
  if (e.type() != element_type::OBJECT) return TypeError(Field(field), "an object", e);
  for (simdjson::dom::key_value_pair kv : simdjson::dom::object(e)) {
    if (kv.value.type() != element_type::STRING) {
      return TypeError(Field(fmt::format("{}.{}", field, kv.key)), "a string", kv.value);
    }
    out->push_back({std::string(kv.key), std::string(std::string_view(kv.value))});
  }
  return OkStatus();
}

// MLflow params/tags: [{key, value}].
Status DecodeKeyValues(element e, std::string_view field, std::vector<tracking::Tag>* out) {
  if (e.is_null()) return OkStatus();
  if (e.type() != element_type::ARRAY) return TypeError(Field(field), "an array", e);
  size_t i = 0;
  for (element item : simdjson::dom::array(e)) {
    if (item.type() != element_type::OBJECT) {
      return TypeError(Field(fmt::format("{}[{}]", field, i)), "an object", item);
    }
    tracking::Tag t;
    bool has_key = false;
    for (simdjson::dom::key_value_pair kv : simdjson::dom::object(item)) {
      if (kv.key == "key") {
        ASSIGN_OR_RETURN(std::string_view s, StringValue(kv.value, Field(field, i, "key")));
        t.key.assign(s);
        has_key = true;
      } else if (kv.key == "value") {
        if (kv.value.is_null()) continue;
        ASSIGN_OR_RETURN(std::string_view s, StringValue(kv.value, Field(field, i, "value")));
        t.value.assign(s);
      }
    }
    if (!has_key) {
      std::string f = Field(field, i, "key").str();
      return InvalidArgumentError(fmt::format("{}: missing required field", f), f);
    }
    out->push_back(std::move(t));
    ++i;
  }
  return OkStatus();
}

Status MalformedJson(std::string_view body) {
  // The tree parser locates the syntax error; it only runs on this cold path.
  auto tree = ParseJson(body);
  if (!tree.ok()) return tree.status();
  return InvalidArgumentError("malformed JSON");
}

StatusOr<LogBody> DecodeRoot(element root, LogBodyFormat format, int64_t now_ms) {
  if (root.type() != element_type::OBJECT) return TypeError("body", "an object", root);
  LogBody out;
  const bool native = format == LogBodyFormat::kNative;
  std::string run_uuid;
  tracking::Metric single;
  bool has_key = false, has_value = false, has_ts = false;
  for (simdjson::dom::key_value_pair kv : simdjson::dom::object(root)) {
    std::string_view k = kv.key;
    if (native) {
      if (k == "metrics") {
        RETURN_IF_ERROR(DecodeMetrics(kv.value, "metrics", true, now_ms, &out.metrics));
      } else if (k == "params") {
        RETURN_IF_ERROR(DecodeStringMap(kv.value, "params", &out.params));
      } else if (k == "tags") {
        RETURN_IF_ERROR(DecodeStringMap(kv.value, "tags", &out.tags));
      } else {
        return InvalidArgumentError(fmt::format("{}: unknown field", k), std::string(k));
      }
      continue;
    }
    if (k == "run_id" || k == "run_uuid") {
      if (kv.value.is_null()) continue;
      ASSIGN_OR_RETURN(std::string_view s, StringValue(kv.value, Field(k)));
      (k == "run_id" ? out.run_id : run_uuid).assign(s);
    } else if (format == LogBodyFormat::kMlflowBatch) {
      if (k == "metrics") {
        RETURN_IF_ERROR(DecodeMetrics(kv.value, "metrics", false, now_ms, &out.metrics));
      } else if (k == "params") {
        RETURN_IF_ERROR(DecodeKeyValues(kv.value, "params", &out.params));
      } else if (k == "tags") {
        RETURN_IF_ERROR(DecodeKeyValues(kv.value, "tags", &out.tags));
      }
    } else if (k == "key") {
      ASSIGN_OR_RETURN(std::string_view s, StringValue(kv.value, "key"));
      single.key.assign(s);
      has_key = true;
    } else if (k == "value") {
      ASSIGN_OR_RETURN(single.value, MetricValue(kv.value, "value"));
      has_value = true;
    } else if (k == "timestamp") {
      if (kv.value.is_null()) continue;
      ASSIGN_OR_RETURN(single.timestamp, IntValue(kv.value, "timestamp"));
      has_ts = true;
    } else if (k == "step") {
      if (kv.value.is_null()) continue;
      ASSIGN_OR_RETURN(single.step, IntValue(kv.value, "step"));
    }
  }
  if (out.run_id.empty()) out.run_id = std::move(run_uuid);
  if (format == LogBodyFormat::kMlflowMetric) {
    if (!has_key) return InvalidArgumentError("Missing value for required parameter 'key'", "key");
    if (!has_value) {
      return InvalidArgumentError("Missing value for required parameter 'value'", "value");
    }
    if (!has_ts) single.timestamp = now_ms;
    out.metrics.push_back(std::move(single));
  }
  return out;
}

}  // namespace

StatusOr<LogBody> DecodeLogBody(std::string_view body, LogBodyFormat format, int64_t now_ms) {
  thread_local simdjson::dom::parser parser;
  element root;
  if (parser.parse(body.data(), body.size(), true).get(root) != simdjson::SUCCESS) {
    return MalformedJson(body);
  }
  if (format != LogBodyFormat::kNative && root.type() == element_type::STRING) {
    // A JSON string holding the JSON (old clients): parse its content.
    std::string inner{std::string_view(root)};
    if (parser.parse(inner.data(), inner.size(), true).get(root) != simdjson::SUCCESS) {
      return MalformedJson(inner);
    }
    return DecodeRoot(root, format, now_ms);
  }
  return DecodeRoot(root, format, now_ms);
}

void WriteMetricValue(JsonWriter& w, double value) {
  if (std::isnan(value)) {
    w.String("NaN");
  } else if (std::isinf(value)) {
    w.String(value > 0 ? "Infinity" : "-Infinity");
  } else {
    w.Double(value);
  }
}

std::string_view LifecycleName(tracking::Lifecycle l) {
  return l == tracking::Lifecycle::kDeleted ? "deleted" : "active";
}

StatusOr<int64_t> ParseRfc3339Millis(std::string_view text, std::string_view field) {
  auto bad = [&] {
    return InvalidArgumentError(
        fmt::format("{}: \"{}\" is not an RFC 3339 time (2026-11-23T01:07:22.123Z)", field, text),
        std::string(field));
  };
  // YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)
  auto digits = [&](size_t pos, size_t n, int* out) {
    if (pos + n > text.size()) return false;
    int v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return true;
  };
  int year, mon, day, hour, min, sec;
  if (!digits(0, 4, &year) || text.size() < 19 || text[4] != '-' || !digits(5, 2, &mon) ||
      text[7] != '-' || !digits(8, 2, &day) || (text[10] != 'T' && text[10] != 't' &&
                                                text[10] != ' ') ||
      !digits(11, 2, &hour) || text[13] != ':' || !digits(14, 2, &min) || text[16] != ':' ||
      !digits(17, 2, &sec)) {
    return bad();
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) {
    return bad();
  }
  size_t pos = 19;
  int64_t millis = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int64_t scale = 100;
    size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      millis += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return bad();
  }
  int64_t offset_min = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int oh, om;
    if (!digits(pos + 1, 2, &oh) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
        !digits(pos + 4, 2, &om)) {
      return bad();
    }
    offset_min = (text[pos] == '-' ? -1 : 1) * (oh * 60 + om);
    pos += 6;
  } else {
    return bad();
  }
  if (pos != text.size()) return bad();
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  const int64_t seconds = static_cast<int64_t>(timegm(&tm)) - offset_min * 60;
  return seconds * 1000 + millis;
}

}  // namespace lathe::api
