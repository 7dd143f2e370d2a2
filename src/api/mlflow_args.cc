// Shared pieces of the MLflow REST 2.0 layer (mlflow_call.h).
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "api/mlflow_call.h"
#include "api/tracking_codec.h"
#include "base/strings.h"

namespace lathe::api {

using http::Method;

Status Missing(std::string_view key) {
  return InvalidArgumentError(
      fmt::format("Missing value for required parameter '{}'. See the API docs for more "
                  "information about request parameters.",
                  key),
      std::string(key));
}

// A request's arguments as one JSON object: the query string of a GET
// (repeated keys become arrays, every value a string), else the JSON body
// (a JSON string holding JSON is unwrapped; an empty body is {}).
StatusOr<JsonValue> ParseArgs(const http::Request& req) {
  if (req.method == Method::kGet || req.method == Method::kHead) {
    std::vector<JsonValue::Member> members;
    std::string_view rest = req.query;
    while (!rest.empty()) {
      size_t amp = rest.find('&');
      std::string_view pair = rest.substr(0, amp);
      rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
      if (pair.empty()) continue;
      size_t eq = pair.find('=');
      std::string key, value;
      if (!http::PercentDecode(pair.substr(0, eq), &key, true)) continue;
      std::string_view raw = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
      if (!http::PercentDecode(raw, &value, true)) value.assign(raw);
      JsonValue v = JsonValue::MakeString(std::move(value));
      auto it = std::find_if(members.begin(), members.end(),
                             [&](const JsonValue::Member& m) { return m.first == key; });
      if (it == members.end()) {
        members.emplace_back(std::move(key), std::move(v));
      } else {
        std::vector<JsonValue> items =
            it->second.is_array() ? it->second.items() : std::vector<JsonValue>{it->second};
        items.push_back(std::move(v));
        it->second = JsonValue::MakeArray(std::move(items));
      }
    }
    return JsonValue::MakeObject(std::move(members));
  }
  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) return JsonValue::MakeObject({});
  ASSIGN_OR_RETURN(JsonValue v, ParseJson(req.body));
  if (v.is_string()) {
    ASSIGN_OR_RETURN(v, ParseJson(v.as_string()));
  }
  if (!v.is_object()) {
    return InvalidArgumentError(
        fmt::format("body: expected a JSON object, got {}", JsonTypeName(v.type())), "body");
  }
  return v;
}

StatusOr<std::string> Args::Str(std::string_view key, bool required) const {
  const JsonValue* x = v_.Find(key);
  if (x == nullptr || x->is_null()) {
    if (required) return Missing(key);
    return std::string();
  }
  if (x->is_string()) {
    if (required && x->as_string().empty()) return Missing(key);
    return x->as_string();
  }
  if (x->type() == JsonValue::Type::kInt) return std::to_string(x->as_int());
  return TypeError(key, "a string", *x);
}

StatusOr<std::optional<int64_t>> Args::Int(std::string_view key) const {
  const JsonValue* x = v_.Find(key);
  if (x == nullptr || x->is_null()) return std::optional<int64_t>();
  if (x->type() == JsonValue::Type::kInt) return std::optional<int64_t>(x->as_int());
  if (x->is_string() && !x->as_string().empty()) {
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(x->as_string().c_str(), &end, 10);
    if (*end == '\0' && errno == 0) return std::optional<int64_t>(v);
  }
  if (x->is_string() && x->as_string().empty()) return std::optional<int64_t>();
  return TypeError(key, "an integer", *x);
}

StatusOr<std::vector<std::string>> Args::List(std::string_view key) const {
  std::vector<std::string> out;
  const JsonValue* x = v_.Find(key);
  if (x == nullptr || x->is_null()) return out;
  if (x->is_string()) {
    out.push_back(x->as_string());
    return out;
  }
  if (!x->is_array()) return TypeError(key, "an array of strings", *x);
  for (const JsonValue& item : x->items()) {
    if (!item.is_string()) return TypeError(key, "an array of strings", *x);
    out.push_back(item.as_string());
  }
  return out;
}

StatusOr<std::vector<tracking::Tag>> Args::Tags(std::string_view key) const {
  std::vector<tracking::Tag> out;
  const JsonValue* x = v_.Find(key);
  if (x == nullptr || x->is_null()) return out;
  if (!x->is_array()) return TypeError(key, "an array of {key, value}", *x);
  for (size_t i = 0; i < x->items().size(); ++i) {
    const JsonValue& item = x->items()[i];
    const JsonValue* k = item.Find("key");
    const JsonValue* v = item.Find("value");
    if (!item.is_object() || k == nullptr || !k->is_string() ||
        (v != nullptr && !v->is_null() && !v->is_string())) {
      std::string field = fmt::format("{}[{}]", key, i);
      return InvalidArgumentError(
          fmt::format("{}: expected {{\"key\": string, \"value\": string}}", field), field);
    }
    out.push_back({k->as_string(), v != nullptr && v->is_string() ? v->as_string() : ""});
  }
  return out;
}

StatusOr<std::string> Args::RunId() const {
  ASSIGN_OR_RETURN(std::string id, Str("run_id"));
  if (id.empty()) {
    ASSIGN_OR_RETURN(id, Str("run_uuid"));
  }
  if (id.empty()) return Missing("run_id");
  return id;
}

Status Args::TypeError(std::string_view key, std::string_view want, const JsonValue& got) {
  return InvalidArgumentError(
      fmt::format("Invalid value for parameter '{}': expected {}, got {}", key, want,
                  JsonTypeName(got.type())),
      std::string(key));
}

StatusOr<std::optional<bool>> Args::Bool(std::string_view key) const {
  const JsonValue* x = v_.Find(key);
  if (x == nullptr || x->is_null()) return std::optional<bool>();
  if (x->type() == JsonValue::Type::kBool) return std::optional<bool>(x->as_bool());
  if (x->is_string()) {
    std::string v = AsciiLower(x->as_string());
    if (v == "true") return std::optional<bool>(true);
    if (v == "false") return std::optional<bool>(false);
    if (v.empty()) return std::optional<bool>();
  }
  return TypeError(key, "a boolean", *x);
}

StatusOr<int64_t> InRange(std::optional<int64_t> v, int64_t fallback, std::string_view field,
                          int64_t min, int64_t max) {
  if (!v) return fallback;
  if (*v < min || *v > max) {
    return InvalidArgumentError(
        fmt::format("Invalid value {} for parameter '{}' supplied: it must be between {} and {}",
                    *v, field, min, max),
        std::string(field));
  }
  return *v;
}

void WriteEmpty(http::Response& res) {
  res.status = 200;
  res.content_type = "application/json";
  res.body = "{}";
}

void EncodeKeyValues(JsonWriter& w, std::string_view key, const std::vector<tracking::Tag>& tags) {
  if (tags.empty()) return;
  w.Key(key).BeginArray();
  for (const tracking::Tag& t : tags) {
    w.BeginObject().Field("key", t.key).Field("value", t.value).EndObject();
  }
  w.EndArray();
}

void WriteNextPageToken(JsonWriter& w, const std::string& token) {
  if (!token.empty()) w.Field("next_page_token", token);
}

}  // namespace lathe::api
