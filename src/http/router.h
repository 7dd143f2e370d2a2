// Routes requests to handlers by method and path pattern. Patterns are
// literal segments and "{name}" parameters, which match one non-empty
// segment: "/api/v1/projects/{project}/members/{user}". A literal segment
// wins over a parameter at the same position. Unknown path: 404; known path,
// other method: 405 with an Allow header (both via the error hook).
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
  // Registers a route. Aborts on a duplicate (method, pattern): a programmer error.
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
    std::vector<std::string> segments;  // "{x}" for parameters
    std::string pattern;
    Handler handler;
  };
  bool Match(const Route& route, const std::vector<std::string_view>& parts,
             std::vector<std::pair<std::string, std::string>>* params) const;
  std::vector<Route> routes_;
  std::function<void(Request&, Response&, int, std::string_view)> on_error_;
};

}  // namespace lathe::http
