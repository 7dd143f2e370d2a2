// The one place where a Status becomes an HTTP answer for the Lathe REST API:
//   {"error":{"code":"NOT_FOUND","message":"…","field":"…","request_id":"…"}}
#pragma once

#include <string_view>

#include "base/status.h"
#include "http/message.h"

namespace lathe::api {

// What an INVALID_ARGUMENT means for the HTTP status: a malformed request
// (400), or a well-formed resource spec (a job, a queue) whose content does
// not validate (422 Unprocessable Entity; the code in the body stays
// INVALID_ARGUMENT and `field` names the spec path). Routes that take specs
// opt in through Call::invalid_as once the body has parsed.
enum class InvalidAs { kBadRequest, kUnprocessable };

// INVALID_ARGUMENT 400 (422 with kUnprocessable), UNAUTHENTICATED 401,
// PERMISSION_DENIED 403, NOT_FOUND 404, ALREADY_EXISTS / ABORTED /
// FAILED_PRECONDITION 409, OUT_OF_RANGE 400, RESOURCE_EXHAUSTED 429,
// UNIMPLEMENTED 501, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, everything
// else 500.
int HttpStatusFor(StatusCode code, InvalidAs invalid_as = InvalidAs::kBadRequest);

// Fills `res` with the JSON error for `status` (which must not be OK).
// INTERNAL, UNKNOWN and DATA_LOSS (bugs, not bad requests) are also logged
// with the request id; their message is sent too.
void WriteError(const Status& status, std::string_view request_id, http::Response& res,
                InvalidAs invalid_as = InvalidAs::kBadRequest);

// The error body itself, for the few HTTP-only answers that have no Status
// code: 405 METHOD_NOT_ALLOWED from the router. WriteError uses it too.
void WriteErrorBody(int http_status, std::string_view code, std::string_view message,
                    std::string_view field, std::string_view request_id, http::Response& res);

}  // namespace lathe::api
