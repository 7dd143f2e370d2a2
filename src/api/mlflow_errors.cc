#include "api/mlflow_errors.h"

#include <string>

#include "base/json.h"
#include "base/log.h"

namespace lathe::api {

MlflowError MlflowErrorFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return {200, ""};
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kFailedPrecondition: return {400, "INVALID_PARAMETER_VALUE"};
    case StatusCode::kAlreadyExists: return {400, "RESOURCE_ALREADY_EXISTS"};
    case StatusCode::kNotFound: return {404, "RESOURCE_DOES_NOT_EXIST"};
    case StatusCode::kUnauthenticated: return {401, "UNAUTHENTICATED"};
    case StatusCode::kPermissionDenied: return {403, "PERMISSION_DENIED"};
    case StatusCode::kAborted: return {409, "ABORTED"};
    case StatusCode::kResourceExhausted: return {429, "REQUEST_LIMIT_EXCEEDED"};
    case StatusCode::kCancelled: return {499, "CANCELLED"};
    case StatusCode::kUnimplemented: return {501, "NOT_IMPLEMENTED"};
    case StatusCode::kUnavailable: return {503, "TEMPORARILY_UNAVAILABLE"};
    case StatusCode::kDeadlineExceeded: return {504, "DEADLINE_EXCEEDED"};
    case StatusCode::kDataLoss: return {500, "DATA_LOSS"};
    case StatusCode::kUnknown:
    case StatusCode::kInternal: return {500, "INTERNAL_ERROR"};
  }
  return {500, "INTERNAL_ERROR"};
}

void WriteMlflowError(const Status& status, std::string_view request_id, http::Response& res) {
  const StatusCode code = status.code();
  if (code == StatusCode::kInternal || code == StatusCode::kUnknown ||
      code == StatusCode::kDataLoss) {
    LOG_ERROR("request {} failed: {}", request_id, status.ToString());
  }
  if (code == StatusCode::kUnauthenticated) {
    res.SetHeader("WWW-Authenticate", "Bearer realm=\"lathe\"");
  }
  const MlflowError e = MlflowErrorFor(code);
  const std::string& field = status.field();
  const std::string& message = status.message();
  if (!field.empty() && message.rfind(field, 0) != 0) {
    WriteMlflowErrorBody(e.http_status, e.error_code, field + ": " + message, res);
  } else {
    WriteMlflowErrorBody(e.http_status, e.error_code, message, res);
  }
}

void WriteMlflowErrorBody(int http_status, std::string_view error_code, std::string_view message,
                          http::Response& res) {
  res.status = http_status;
  res.content_type = "application/json";
  res.body.clear();
  JsonWriter w(&res.body);
  w.BeginObject().Field("error_code", error_code).Field("message", message).EndObject();
}

}  // namespace lathe::api
