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

#include "api/errors.h"
#include "base/json.h"
#include "base/metrics.h"
#include "base/status.h"
#include "http/message.h"
#include "http/router.h"
#include "store/store.h"
#include "tenancy/tenancy.h"

namespace lathe::control {
class JobService;
class JobController;
class PipelineService;
class PipelineController;
class ScheduleService;
class ScheduleController;
}  // namespace lathe::control

namespace lathe::tracking {
class TrackingService;
class ArtifactStore;
class LoggedModelService;
}  // namespace lathe::tracking

namespace lathe::registry {
class RegistryService;
}  // namespace lathe::registry

namespace lathe::api {

// One request in flight, as handlers see it.
struct Call {
  http::Request& req;
  http::Response& res;
  // Set for authenticated routes.
  const tenancy::Principal* principal = nullptr;
  // How a returned INVALID_ARGUMENT is answered (errors.h): handlers that
  // take a resource spec switch to kUnprocessable (422) once the body parsed.
  InvalidAs invalid_as = InvalidAs::kBadRequest;
};

using ApiHandler = std::function<Status(Call&)>;

// Parses the body as JSON (or YAML when Content-Type says yaml).
StatusOr<JsonValue> ParseBody(const http::Request& req);
// `limit` and `page_token` from the query string.
StatusOr<tenancy::PageRequest> PageFromQuery(const http::Request& req);
// Sets a JSON body written by `fn` and the status code.
void WriteJson(http::Response& res, int status, const std::function<void(JsonWriter&)>& fn);
// `key`: an RFC 3339 time, or null for 0 (µs since the epoch).
void WriteTimeField(JsonWriter& w, std::string_view key, int64_t micros);
// OK when `code` is the digest of a snapshot uploaded to `code_root`
// (PUT …/code); INVALID_ARGUMENT naming `code` otherwise.
Status CheckCodeSnapshot(const std::string& code_root, const std::string& project,
                         const std::string& code);

// What the job, queue and code routes need (job_handlers.cc). Without a
// JobService those routes are not registered (tests of other layers).
struct JobRoutes {
  control::JobService* jobs = nullptr;
  // Pending reasons, submit-time fit checks, logs and cleanup through its
  // executor; may be null (then no fit check, no pending_reason, and the
  // log routes answer UNAVAILABLE).
  control::JobController* controller = nullptr;
  // Where uploaded code snapshots live ($LATHE_HOME/code): <digest>.tar.gz
  // and the extracted <digest>/. Required when `jobs` is set.
  std::string code_root;
};

// What the pipeline and schedule routes need (pipeline_handlers.cc). A null
// service leaves its routes out; code digests are checked against
// JobRoutes::code_root.
struct PipelineRoutes {
  control::PipelineService* pipelines = nullptr;
  control::ScheduleService* schedules = nullptr;  // needs `pipelines`
  // Poked after runs start, are cancelled or retried, and after schedule
  // changes, so the controllers act at once; may be null (tests).
  control::PipelineController* pipeline_controller = nullptr;
  control::ScheduleController* schedule_controller = nullptr;
};

class LogFollowers;
class MlflowScopes;
struct MlflowCall;

// What the tracking, registry and artifact routes need. Each null service
// leaves its routes out (tests of other layers).
struct TrackingRoutes {
  // The native tracking routes (tracking_handlers.cc) and the MLflow REST
  // 2.0 tracking routes (mlflow_handlers.cc).
  tracking::TrackingService* tracking = nullptr;
  // Model registry: native (/api/v1/projects/{p}/models…) and MLflow
  // (registered-models/…, model-versions/…) routes (registry_handlers.cc).
  // Needs `tracking`.
  registry::RegistryService* registry = nullptr;
  // Run artifacts: native (/api/v1/projects/{p}/runs/{run}/artifacts…), the
  // MLflow artifacts/list RPC and the mlflow-artifacts proxy
  // (artifact_handlers.cc). Needs `tracking`.
  tracking::ArtifactStore* artifacts = nullptr;
  // MLflow 3 logged models (logged-models/…, runs/outputs;
  // logged_model_handlers.cc); the proxy then also serves their files and
  // model-versions/create resolves model_id. Needs `tracking`.
  tracking::LoggedModelService* logged_models = nullptr;
};

class Api {
 public:
  // The services must outlive the Api. Destroying the Api stops and joins
  // the threads that stream followed logs, so destroy it before the
  // JobController (and after the http::Server has shut down). With a
  // `tracking` service, the native tracking routes (tracking_handlers.cc)
  // and the MLflow REST 2.0 routes (mlflow_handlers.cc) are registered;
  // null leaves them out (tests of other layers).
  Api(store::Store& store, tenancy::TenancyService& tenancy, MetricsRegistry& metrics,
      JobRoutes job_routes = {}, TrackingRoutes tracking_routes = {},
      PipelineRoutes pipeline_routes = {});
  ~Api();

  // Serves one request. Thread-safe.
  void Handle(http::Request& req, http::Response& res);

  // Registers a route that requires a bearer token (all of /api/v1).
  void Authed(http::Method method, std::string_view pattern, ApiHandler handler);
  // Registers a route open to everyone (/healthz, /readyz, /metrics).
  void Public(http::Method method, std::string_view pattern, ApiHandler handler);

  // For http::ServerOptions::spool_body: the upload limit for requests whose
  // body is streamed to a file (artifact uploads), 0 for every other
  // request (read into memory). Thread-safe.
  uint64_t SpoolLimit(const http::Request& head) const;

  // While draining for shutdown, /readyz answers 503.
  void SetDraining(bool draining) { draining_.store(draining); }

 private:
  void RegisterSystemRoutes();
  void RegisterTenancyRoutes();
  void RegisterJobRoutes();
  void RegisterTrackingRoutes();
  void RegisterMlflowRoutes();
  void RegisterRegistryRoutes();   // registry_handlers.cc
  void RegisterArtifactRoutes();   // artifact_handlers.cc
  void RegisterLoggedModelRoutes();  // logged_model_handlers.cc
  void RegisterPipelineRoutes();     // pipeline_handlers.cc
  void RegisterScheduleRoutes();     // pipeline_handlers.cc
  // MLflow routes (mlflow_handlers.cc): authentication, project, errors.
  void AddMlflow(http::Method method, std::string_view rpc,
                 std::function<Status(MlflowCall&)> handler);
  void AddMlflowRoute(http::Method method, std::string pattern,
                      std::function<Status(MlflowCall&)> handler);

  store::Store& store_;
  tenancy::TenancyService& tenancy_;
  MetricsRegistry& metrics_;
  Counter& requests_;
  Histogram& latency_;
  http::Router router_;
  std::atomic<bool> draining_{false};
  JobRoutes job_routes_;
  tracking::TrackingService* tracking_ = nullptr;
  registry::RegistryService* registry_ = nullptr;
  tracking::ArtifactStore* artifacts_ = nullptr;
  tracking::LoggedModelService* logged_models_ = nullptr;
  PipelineRoutes pipeline_routes_;
  std::shared_ptr<MlflowScopes> mlflow_scopes_;
  std::unique_ptr<LogFollowers> log_followers_;
};

}  // namespace lathe::api
