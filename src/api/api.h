// The Lathe REST API v1: one http handler that wraps routing in the
// conventions every route shares (docs/api.md):
//   request id (X-Request-Id, echoed or generated) → bearer authentication
//   for /api/v1 → route → JSON error mapping (errors.h) → metrics per route
//   → one access-log line.
// Handlers are `Status(Call&)`: decode the body, call a service, encode.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/json.h"
#include "base/metrics.h"
#include "base/status.h"
#include "http/message.h"
#include "http/router.h"
#include "store/store.h"
#include "tenancy/tenancy.h"

namespace lathe::api {

// One request in flight, as handlers see it.
struct Call {
  http::Request& req;
  http::Response& res;
  // Set for authenticated routes.
  const tenancy::Principal* principal = nullptr;
};

using ApiHandler = std::function<Status(Call&)>;

// Parses the body as JSON (or YAML when Content-Type says yaml).
StatusOr<JsonValue> ParseBody(const http::Request& req);
// `limit` and `page_token` from the query string.
StatusOr<tenancy::PageRequest> PageFromQuery(const http::Request& req);
// Sets a JSON body written by `fn` and the status code.
void WriteJson(http::Response& res, int status, const std::function<void(JsonWriter&)>& fn);

class Api {
 public:
  Api(store::Store& store, tenancy::TenancyService& tenancy, MetricsRegistry& metrics);

  // Serves one request. Thread-safe.
  void Handle(http::Request& req, http::Response& res);

  // Registers a route that requires a bearer token (all of /api/v1).
  void Authed(http::Method method, std::string_view pattern, ApiHandler handler);
  // Registers a route open to everyone (/healthz, /readyz, /metrics).
  void Public(http::Method method, std::string_view pattern, ApiHandler handler);

  // While draining for shutdown, /readyz answers 503.
  void SetDraining(bool draining) { draining_.store(draining); }

 private:
  void RegisterSystemRoutes();
  void RegisterTenancyRoutes();

  store::Store& store_;
  tenancy::TenancyService& tenancy_;
  MetricsRegistry& metrics_;
  Counter& requests_;
  Histogram& latency_;
  http::Router router_;
  std::atomic<bool> draining_{false};
};

}  // namespace lathe::api
