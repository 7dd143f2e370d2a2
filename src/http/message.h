// HTTP requests and responses as plain values, so handlers, routers and
// middleware never see Boost.Beast (whose headers cost seconds per TU).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lathe::http {

class Deferred;
class SseStream;

enum class Method { kGet, kHead, kPost, kPut, kPatch, kDelete, kOptions, kOther };

std::string_view MethodName(Method m);
Method ParseMethod(std::string_view text);

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  Method method = Method::kGet;
  std::string target;  // as received: "/api/v1/projects?limit=10"
  std::string path;    // percent-decoded path: "/api/v1/projects"
  std::string query;   // raw query string without '?': "limit=10"
  Headers headers;     // names lower-cased
  std::string body;
  // Set instead of `body` when the server streamed the body to a file
  // (ServerOptions::spool_body): a temporary file in ServerOptions::spool_dir
  // holding exactly the body, which the handler may rename elsewhere (same
  // file system) to keep it. The server deletes it after the handler
  // returns if it is still there. `body` stays empty.
  std::string body_file;
  uint64_t body_file_size = 0;
  std::string remote_addr;  // "127.0.0.1:51234"

  // Filled by the router: values of "{name}" segments, and the matched
  // pattern ("/api/v1/projects/{project}") for metrics and logs.
  std::vector<std::pair<std::string, std::string>> path_params;
  std::string route;
  // Filled by the API layer.
  std::string request_id;
  // Filled by the API layer once authenticated: the user name, for logs.
  std::string user;

  // The first header named `name` (lower-case), or "" if absent.
  std::string_view Header(std::string_view name) const;
  // A path parameter, or "" if absent.
  const std::string& PathParam(std::string_view name) const;
  // The first query parameter named `name`, percent-decoded; false if absent.
  bool QueryParam(std::string_view name, std::string* value) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  Headers headers;  // extra headers; Content-Length/Type are set by the server
  std::string body;
  // When set (and `sse` is not), the body is this file's contents, sent in
  // chunks as the socket drains (never read whole): Content-Length is the
  // file's size when the server opens it; `body` is ignored. A file that
  // cannot be opened is answered 404 with a JSON error.
  std::string body_file;
  // When set, the server sends the headers, then streams events from it as
  // text/event-stream until either side closes (see sse.h). `body` is ignored.
  std::shared_ptr<SseStream> sse;
  // When set, this response is only a promise: the handler returns at once
  // and some thread later calls deferred->Complete(real response), which
  // the server then writes (see deferred.h). The other fields are ignored.
  // Until then the connection reads no further request (answers stay in
  // order) and the request counts in Server::inflight_requests().
  std::shared_ptr<Deferred> deferred;

  void SetHeader(std::string name, std::string value);
};

// Decodes %XX escapes (and '+' as space when `plus_as_space`). Returns false
// on a malformed escape.
bool PercentDecode(std::string_view in, std::string* out, bool plus_as_space);
std::string PercentEncode(std::string_view in);

// "Not Found" for 404, etc.
std::string_view StatusReason(int status);

}  // namespace lathe::http
