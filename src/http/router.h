// Routes requests to handlers by method and path pattern. Patterns are
// literal segments and "{name}" parameters, which match one non-empty
// segment: "/api/v1/projects/{project}/members/{user}". The LAST segment may
// be a rest parameter "{name*}", which matches one or more remaining
// segments: "/api/v1/runs/{run}/artifacts/{path*}". At the same position a
// literal segment wins over a parameter, and a parameter over a rest
// parameter. Unknown path: 404; known path, other method: 405 with an Allow
// header (both via the error hook).
//
// Details:
// * The path is split on '/' from the RAW request target (Request::target,
//   falling back to Request::path when the target is empty), then each
//   segment is percent-decoded: "/projects/a%2Fb" gives {project} = "a/b"
//   and never matches a two-segment pattern. A segment with a malformed
//   escape matches no parameter.
// * A rest parameter's value is NOT decoded: it is the raw remainder of the
//   target's path ("a/b%2Fc.txt" for ".../artifacts/a/b%2Fc.txt"), without
//   the query and without the one ignored trailing slash, so a handler can
//   tell an encoded "%2F" from a separator; it splits on '/' and decodes
//   each segment itself. Each of its segments must be non-empty and
//   well-formed ("a//b" matches nothing). For a request without a target the
//   remainder comes from the decoded Request::path.
// * One trailing slash is ignored on both sides: "/api/v1/projects/"
//   matches "/api/v1/projects". Empty inner segments ("//") match nothing.
// * HEAD falls back to the GET route when no HEAD route exists; the server
//   then sends the headers only. The Allow header lists HEAD wherever GET is.
// * Without SetErrorHandler, 404/405 get a JSON error body
//   {"error":{"code":"NOT_FOUND"|"METHOD_NOT_ALLOWED","message":...}}.
//   The Allow header is set before the hook runs (and re-added if the hook
//   dropped it).
// * Matching is a linear scan over the routes: fine for the ~100 routes of
//   the API (well under a microsecond each). Add() is not thread-safe;
//   Dispatch() is const and may run concurrently once routes are added.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace lathe::http {

using Handler = std::function<void(Request&, Response&)>;

class Router {
 public:
  // Registers a route. Aborts on a duplicate (method, pattern) or a rest
  // parameter before the last segment: programmer errors. Patterns that
  // differ only in parameter names ("/a/{x}" and "/a/{y}", "/a/{x*}" and
  // "/a/{y*}") are duplicates.
  void Add(Method method, std::string_view pattern, Handler handler);
  // Finds the handler for req.method and req.path, fills req.path_params and
  // req.route, and calls it. Otherwise calls `not_found` (status 404) or
  // `not_allowed` (405), set by SetErrorHandler.
  void Dispatch(Request& req, Response& res) const;
  // Called as fn(req, res, status, message) for 404 and 405.
  void SetErrorHandler(std::function<void(Request&, Response&, int, std::string_view)> fn);

 private:
  struct Node;
  struct Route {
    Method method;
    std::vector<std::string> segments;  // "{x}" for parameters, "{x*}" for a rest parameter
    bool has_rest = false;              // the last segment is "{x*}"
    std::string pattern;
    Handler handler;
  };
  bool Match(const Route& route, const std::vector<std::string_view>& parts,
             std::vector<std::pair<std::string, std::string>>* params) const;
  std::vector<Route> routes_;
  std::function<void(Request&, Response&, int, std::string_view)> on_error_;
};

}  // namespace lathe::http
