#include "api/api.h"

#include <cerrno>
#include <cstdlib>

#include <fmt/core.h>

#include "api/errors.h"
#include "api/log_followers.h"
#include "api/mlflow_errors.h"
#include "base/build_info.h"
#include "base/clock.h"
#include "base/id.h"
#include "base/log.h"
#include "base/yaml.h"

namespace lathe::api {

namespace {

constexpr int64_t kDefaultPageLimit = 100;

// A client-supplied request id is kept when it is short and printable.
bool AcceptableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

StatusOr<std::string_view> BearerToken(const http::Request& req) {
  std::string_view h = req.Header("authorization");
  if (h.empty()) return UnauthenticatedError("missing Authorization: Bearer <token> header");
  constexpr std::string_view kBearer = "Bearer ";
  if (h.size() <= kBearer.size() || h.substr(0, kBearer.size()) != kBearer) {
    return UnauthenticatedError("Authorization header must be \"Bearer <token>\"");
  }
  return h.substr(kBearer.size());
}

}  // namespace

StatusOr<JsonValue> ParseBody(const http::Request& req) {
  std::string_view type = req.Header("content-type");
  if (type.find("yaml") != std::string_view::npos) return ParseYaml(req.body);
  if (!type.empty() && type.find("json") == std::string_view::npos) {
    return InvalidArgumentError(
        fmt::format("Content-Type \"{}\" is not supported; send application/json", type),
        "Content-Type");
  }
  return ParseJson(req.body);
}

StatusOr<tenancy::PageRequest> PageFromQuery(const http::Request& req) {
  tenancy::PageRequest page;
  page.limit = kDefaultPageLimit;
  std::string limit;
  if (req.QueryParam("limit", &limit)) {
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(limit.c_str(), &end, 10);
    if (limit.empty() || *end != '\0' || errno != 0) {
      return InvalidArgumentError(fmt::format("limit: \"{}\" is not an integer", limit), "limit");
    }
    page.limit = v;
  }
  req.QueryParam("page_token", &page.page_token);
  RETURN_IF_ERROR(tenancy::ValidatePage(page));
  return page;
}

void WriteJson(http::Response& res, int status, const std::function<void(JsonWriter&)>& fn) {
  res.status = status;
  res.content_type = "application/json";
  res.body.clear();
  JsonWriter w(&res.body);
  fn(w);
}

void WriteTimeField(JsonWriter& w, std::string_view key, int64_t micros) {
  w.Key(key);
  if (micros == 0) {
    w.Null();
  } else {
    w.String(FormatRfc3339(micros));
  }
}

Api::Api(store::Store& store, tenancy::TenancyService& tenancy, MetricsRegistry& metrics,
         JobRoutes job_routes, TrackingRoutes tracking_routes, PipelineRoutes pipeline_routes)
    : store_(store),
      tenancy_(tenancy),
      metrics_(metrics),
      requests_(metrics.AddCounter("lathe_http_requests_total", "HTTP requests served.",
                                   {"method", "route", "code"})),
      latency_(metrics.AddHistogram("lathe_http_request_duration_seconds",
                                    "Time to handle an HTTP request, from parsed request to "
                                    "response ready.",
                                    {"method", "route"})),
      job_routes_(std::move(job_routes)),
      tracking_(tracking_routes.tracking),
      registry_(tracking_routes.registry),
      artifacts_(tracking_routes.artifacts),
      logged_models_(tracking_routes.logged_models),
      pipeline_routes_(pipeline_routes) {
  metrics.AddGauge("lathe_build_info", "Build information.", {"version", "commit"})
      .With({LATHE_VERSION, LATHE_GIT_COMMIT})
      .Set(1);
  router_.SetErrorHandler([this](http::Request& req, http::Response& res, int status,
                                 std::string_view message) {
    // MLflow clients read {"error_code", "message"}; its route names are
    // public, so no token is needed to learn that one does not exist.
    if (tracking_ != nullptr &&
        (req.path.rfind("/api/2.0/", 0) == 0 || req.path.rfind("/ajax-api/2.0/", 0) == 0)) {
      return WriteMlflowErrorBody(status, status == 405 ? "BAD_REQUEST" : "ENDPOINT_NOT_FOUND",
                                  message, res);
    }
    // Unknown /api/v1 paths need a token too, so route names do not leak.
    if (req.path.rfind("/api/", 0) == 0) {
      auto token = BearerToken(req);
      Status auth = token.ok() ? tenancy_.Authenticate(*token).status() : token.status();
      if (!auth.ok()) return WriteError(auth, req.request_id, res);
    }
    WriteErrorBody(status, status == 405 ? "METHOD_NOT_ALLOWED" : "NOT_FOUND", message, "",
                   req.request_id, res);
  });
  RegisterSystemRoutes();
  RegisterTenancyRoutes();
  if (job_routes_.jobs != nullptr) RegisterJobRoutes();
  if (tracking_ != nullptr) {
    RegisterTrackingRoutes();
    RegisterMlflowRoutes();
    if (registry_ != nullptr) RegisterRegistryRoutes();
    if (artifacts_ != nullptr) RegisterArtifactRoutes();
    if (logged_models_ != nullptr) RegisterLoggedModelRoutes();
  }
  if (pipeline_routes_.pipelines != nullptr) {
    RegisterPipelineRoutes();
    if (pipeline_routes_.schedules != nullptr) RegisterScheduleRoutes();
  }
}

Api::~Api() = default;

void Api::Authed(http::Method method, std::string_view pattern, ApiHandler handler) {
  router_.Add(method, pattern, [this, h = std::move(handler)](http::Request& req,
                                                               http::Response& res) {
    auto token = BearerToken(req);
    if (!token.ok()) return WriteError(token.status(), req.request_id, res);
    auto principal = tenancy_.Authenticate(*token);
    if (!principal.ok()) return WriteError(principal.status(), req.request_id, res);
    req.user = principal->user_name;
    Call call{req, res, &*principal};
    Status st = h(call);
    if (!st.ok()) WriteError(st, req.request_id, res, call.invalid_as);
  });
}

void Api::Public(http::Method method, std::string_view pattern, ApiHandler handler) {
  router_.Add(method, pattern, [h = std::move(handler)](http::Request& req, http::Response& res) {
    Call call{req, res, nullptr};
    Status st = h(call);
    if (!st.ok()) WriteError(st, req.request_id, res);
  });
}

void Api::Handle(http::Request& req, http::Response& res) {
  const int64_t start = SystemClock().MonotonicNanos();
  std::string_view client_id = req.Header("x-request-id");
  req.request_id = AcceptableRequestId(client_id) ? std::string(client_id) : NewId();
  router_.Dispatch(req, res);
  res.SetHeader("X-Request-Id", req.request_id);

  const double seconds = static_cast<double>(SystemClock().MonotonicNanos() - start) / 1e9;
  const std::string_view route = req.route.empty() ? std::string_view("unmatched") : req.route;
  const std::string method(http::MethodName(req.method));
  requests_.With({method, std::string(route), std::to_string(res.status)}).Increment();
  latency_.With({method, std::string(route)}).Observe(seconds);
  if (LogEnabled(LogLevel::kInfo)) {
    LogAccess(fmt::format("{} \"{} {}\" {} {} {}us rid={} user={}", req.remote_addr, method,
                          req.target, res.status, res.body.size(),
                          static_cast<int64_t>(seconds * 1e6), req.request_id,
                          req.user.empty() ? "-" : req.user));
  }
}

void Api::RegisterSystemRoutes() {
  Public(http::Method::kGet, "/healthz", [](Call& c) {
    WriteJson(c.res, 200, [](JsonWriter& w) { w.BeginObject().Field("status", "ok").EndObject(); });
    return OkStatus();
  });
  Public(http::Method::kGet, "/readyz", [this](Call& c) {
    if (draining_.load()) return UnavailableError("server is shutting down");
    Status st = store::RunInTx(store_, store::TxMode::kRead,
                               [](store::Tx& tx) { return tx.Query("SELECT 1").status(); });
    if (!st.ok()) return UnavailableError("store is not reachable: " + st.message());
    WriteJson(c.res, 200, [](JsonWriter& w) { w.BeginObject().Field("status", "ready").EndObject(); });
    return OkStatus();
  });
  Public(http::Method::kGet, "/metrics", [this](Call& c) {
    c.res.status = 200;
    c.res.content_type = "text/plain; version=0.0.4; charset=utf-8";
    c.res.body = metrics_.Render();
    return OkStatus();
  });
}

}  // namespace lathe::api
