// The one place where a Status becomes an MLflow REST 2.0 error
// (protocols.md §5.6): {"error_code":"RESOURCE_DOES_NOT_EXIST","message":"…"}
// with MLflow's HTTP status. MLflow clients raise RestException(error_code)
// and retry 429/5xx, so the mapping decides what a client retries.
#pragma once

#include <string_view>

#include "base/status.h"
#include "http/message.h"

namespace lathe::api {

struct MlflowError {
  int http_status;
  std::string_view error_code;
};

// INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION → 400
// INVALID_PARAMETER_VALUE (MLflow answers a write to a deleted run that
// way); ALREADY_EXISTS → 400 RESOURCE_ALREADY_EXISTS; NOT_FOUND → 404
// RESOURCE_DOES_NOT_EXIST; UNAUTHENTICATED → 401 UNAUTHENTICATED;
// PERMISSION_DENIED → 403 PERMISSION_DENIED; ABORTED → 409 ABORTED;
// RESOURCE_EXHAUSTED → 429 REQUEST_LIMIT_EXCEEDED; CANCELLED → 499;
// UNIMPLEMENTED → 501 NOT_IMPLEMENTED; UNAVAILABLE → 503
// TEMPORARILY_UNAVAILABLE; DEADLINE_EXCEEDED → 504; INTERNAL, UNKNOWN →
// 500 INTERNAL_ERROR; DATA_LOSS → 500 DATA_LOSS.
MlflowError MlflowErrorFor(StatusCode code);

// Fills `res` with the MLflow error for `status` (not OK). Bugs (INTERNAL,
// UNKNOWN, DATA_LOSS) are logged with the request id. The field, when the
// Status names one, is prefixed to the message unless already there.
void WriteMlflowError(const Status& status, std::string_view request_id, http::Response& res);

// The body itself, for answers without a Status (the router's 404/405).
void WriteMlflowErrorBody(int http_status, std::string_view error_code, std::string_view message,
                          http::Response& res);

}  // namespace lathe::api
