// What the MLflow REST 2.0 handlers share (mlflow_handlers.cc for tracking,
// registry_handlers.cc for the model registry, artifact_handlers.cc for the
// mlflow-artifacts proxy): the call a handler sees, lenient argument readers
// (MLflow clients send int64 as numbers or strings; GET arguments arrive in
// the query string) and the encoders of MLflow's conventions (empty fields
// left out). Internal to src/api.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "http/message.h"
#include "tenancy/tenancy.h"
#include "tracking/tracking.h"

namespace lathe::api {

// The project MLflow calls act in when neither a scoped token nor the
// X-Lathe-Project header names one (created at first start).
inline constexpr std::string_view kDefaultProject = tenancy::kDefaultProjectName;

// One authenticated MLflow call (Api::AddMlflow resolved the principal and
// the project).
struct MlflowCall {
  http::Request& req;
  http::Response& res;
  const tenancy::Principal& principal;
  const std::string& project;
};

using MlflowHandler = std::function<Status(MlflowCall&)>;

// INVALID_ARGUMENT "Missing value for required parameter '<key>'…".
Status Missing(std::string_view key);

// A request's arguments as one JSON object: the query string of a GET
// (repeated keys become arrays, every value a string), else the JSON body
// (a JSON string holding JSON is unwrapped; an empty body is {}).
StatusOr<JsonValue> ParseArgs(const http::Request& req);

// Lenient readers over the arguments. Unknown keys are ignored.
class Args {
 public:
  explicit Args(JsonValue v) : v_(std::move(v)) {}
  // A string (an integer is accepted and printed); "" when absent unless
  // `required` (then Missing, also for "").
  StatusOr<std::string> Str(std::string_view key, bool required = false) const;
  // An integer given as a number or a decimal string; nullopt when absent.
  StatusOr<std::optional<int64_t>> Int(std::string_view key) const;
  // A bool given as true/false or "true"/"false"; nullopt when absent.
  StatusOr<std::optional<bool>> Bool(std::string_view key) const;
  // A string or an array of strings.
  StatusOr<std::vector<std::string>> List(std::string_view key) const;
  // [{key, value}, …].
  StatusOr<std::vector<tracking::Tag>> Tags(std::string_view key) const;
  // run_id, else the deprecated run_uuid; required.
  StatusOr<std::string> RunId() const;
  const JsonValue& json() const { return v_; }

 private:
  static Status TypeError(std::string_view key, std::string_view want, const JsonValue& got);
  JsonValue v_;
};

// `v`, or `fallback` when absent; INVALID_ARGUMENT naming `field` outside
// [min, max].
StatusOr<int64_t> InRange(std::optional<int64_t> v, int64_t fallback, std::string_view field,
                          int64_t min, int64_t max);

// 200 with "{}".
void WriteEmpty(http::Response& res);
// "key": [{"key": …, "value": …}, …], left out when empty.
void EncodeKeyValues(JsonWriter& w, std::string_view key, const std::vector<tracking::Tag>& tags);
// "next_page_token", left out when empty.
void WriteNextPageToken(JsonWriter& w, const std::string& token);


}  // namespace lathe::api
