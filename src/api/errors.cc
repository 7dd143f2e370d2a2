#include "api/errors.h"

#include "base/json.h"
#include "base/log.h"

namespace lathe::api {

int HttpStatusFor(StatusCode code, InvalidAs invalid_as) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument:
      return invalid_as == InvalidAs::kUnprocessable ? 422 : 400;
    case StatusCode::kOutOfRange: return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kAborted:
    case StatusCode::kFailedPrecondition: return 409;
    case StatusCode::kResourceExhausted: return 429;
    case StatusCode::kCancelled: return 499;
    case StatusCode::kUnimplemented: return 501;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kDeadlineExceeded: return 504;
    case StatusCode::kUnknown:
    case StatusCode::kInternal:
    case StatusCode::kDataLoss: return 500;
  }
  return 500;
}

void WriteError(const Status& status, std::string_view request_id, http::Response& res,
                InvalidAs invalid_as) {
  res.status = HttpStatusFor(status.code(), invalid_as);
  const StatusCode code = status.code();
  if (code == StatusCode::kInternal || code == StatusCode::kUnknown ||
      code == StatusCode::kDataLoss) {
    LOG_ERROR("request {} failed: {}", request_id, status.ToString());
  }
  if (status.code() == StatusCode::kUnauthenticated) {
    res.SetHeader("WWW-Authenticate", "Bearer realm=\"lathe\"");
  }
  WriteErrorBody(res.status, StatusCodeName(code), status.message(), status.field(), request_id,
                 res);
}

void WriteErrorBody(int http_status, std::string_view code, std::string_view message,
                    std::string_view field, std::string_view request_id, http::Response& res) {
  res.status = http_status;
  res.content_type = "application/json";
  res.body.clear();
  JsonWriter w(&res.body);
  w.BeginObject().Key("error").BeginObject();
  w.Field("code", code);
  w.Field("message", message);
  if (!field.empty()) w.Field("field", field);
  if (!request_id.empty()) w.Field("request_id", request_id);
  w.EndObject().EndObject();
}

}  // namespace lathe::api
