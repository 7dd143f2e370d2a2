#include "cli/server_command.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/core.h>

#include "api/api.h"
#include "base/build_info.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/timezone.h"
#include "control/controller.h"
#include "control/jobs.h"
#include "control/pipeline_controller.h"
#include "control/pipelines.h"
#include "control/schedules.h"
#include "exec/local/local_executor.h"
#include "http/server.h"
#include "spec/job_spec.h"
#include "store/store.h"
#include "tenancy/tenancy.h"
#include "tracking/artifacts.h"
#include "tracking/logged_models.h"
#include "registry/registry.h"
#include "tracking/tracking.h"

namespace lathe::cli {
namespace {

// Writes `content` to `path` atomically (temp file, fsync, rename) with `mode`.
Status WriteFileAtomic(const std::string& path, const std::string& content, mode_t mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return InternalError(fmt::format("cannot create {}: {}", tmp, std::strerror(errno)));
  ::fchmod(fd, mode);  // the umask may have narrowed or the file pre-existed
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return InternalError(fmt::format("cannot write {}: {}", tmp, std::strerror(errno)));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return InternalError(fmt::format("cannot sync {}: {}", tmp, std::strerror(errno)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return InternalError(fmt::format("cannot rename {}: {}", tmp, std::strerror(errno)));
  }
  return OkStatus();
}

// The tasks' supervisor: `lathe-shim` beside this binary (small, starts
// fast), else this binary's own `lathe shim`.
std::string ShimPath() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "lathe";
  auto shim = self.parent_path() / "lathe-shim";
  if (::access(shim.c_str(), X_OK) == 0) return shim.string();
  return self.string();
}

double ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

}  // namespace

int RunServer(const ServerConfig& config) {
  const int64_t start_mono = SystemClock().MonotonicNanos();
  LogLevel level = LogLevel::kInfo;
  ParseLogLevel(config.log_level, &level);
  SetLogLevel(level);

  // Block the shutdown signals before any thread starts so that only the
  // waiting thread below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::error_code ec;
  std::filesystem::create_directories(config.home, ec);
  if (ec) {
    LOG_ERROR("cannot create home directory {}: {}", config.home, ec.message());
    return 1;
  }
  ::chmod(config.home.c_str(), 0700);
  if (!config.config_file.empty()) LOG_INFO("config file {}", config.config_file);

  auto store = store::OpenStore({.url = config.store,
                                 .pool_size = static_cast<int>(config.store_pool_size),
                                 .busy_timeout_ms = static_cast<int>(config.store_busy_timeout_ms)});
  if (!store.ok()) {
    LOG_ERROR("cannot open store {}: {}", config.store, store.status().ToString());
    return 1;
  }
  LOG_INFO("store {} ({})", config.store, (*store)->driver());

  tenancy::TenancyService tenancy(**store, SystemClock(), config.auth_token_cache_ttl_ms);
  const std::string token_path = config.home + "/admin.token";
  auto bootstrap = tenancy.Bootstrap([&](const std::string& token) {
    return WriteFileAtomic(token_path, token + "\n", 0600);
  });
  if (!bootstrap.ok()) {
    LOG_ERROR("cannot create the admin user: {}", bootstrap.status().ToString());
    return 1;
  }
  if (*bootstrap) {
    LOG_INFO("first start: created admin user \"admin\"; its API token is in {} (mode 0600)",
             token_path);
  }

  MetricsRegistry& metrics = DefaultRegistry();
  metrics.AddCallbackGauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                           ResidentBytes);
  const double start_time = static_cast<double>(SystemClock().NowMicros()) / 1e6;
  metrics.AddCallbackGauge("process_start_time_seconds", "Start time since the Unix epoch.",
                           [start_time] { return start_time; });
  // Training jobs: the job service (API side), the local executor and the
  // job controller (scheduler + reconcile loop).
  const std::string home_abs = std::filesystem::absolute(config.home).lexically_normal().string();
  control::JobService jobs(**store, tenancy, SystemClock());
  if (Status q = jobs.EnsureDefaultQueue(); !q.ok()) {
    LOG_ERROR("cannot create the default queue: {}", q.ToString());
    return 1;
  }
  // Experiment tracking: the native and MLflow REST routes call it.
  tracking::TrackingService tracking(**store, tenancy, SystemClock());
  // The model registry: versions link back to tracking runs.
  registry::RegistryService registry(**store, tenancy, tracking, SystemClock());
  // MLflow 3 logged models (log_model, register_model("models:/<id>")).
  tracking::LoggedModelService logged_models(**store, tenancy, tracking, SystemClock());
  exec::LocalExecutorOptions local;
  local.root = home_abs + "/tasks";
  local.shim_path = ShimPath();
  local.virtual_nodes = static_cast<int>(config.local_nodes);
  local.wait_for_start = false;  // the controller observes the start; bursts launch fast
  if (!config.local_cpu.empty()) {
    local.node_capacity.cpu_milli = *spec::ParseCpuMilli(JsonValue::MakeString(config.local_cpu), "");
  }
  if (!config.local_memory.empty()) {
    local.node_capacity.memory_mib =
        *spec::ParseMemoryMib(JsonValue::MakeString(config.local_memory), "");
  }
  std::unique_ptr<exec::Executor> executor = exec::NewLocalExecutor(local);
  control::ControllerOptions copts;
  copts.policy = config.scheduler_policy;
  copts.resync_interval_ms = config.scheduler_interval_ms;
  copts.kill_grace_ms = config.jobs_kill_grace_ms;
  copts.log_max_bytes = config.jobs_log_max_bytes;
  copts.code_root = home_abs + "/code";
  copts.work_root = home_abs + "/work";
  copts.tracking = &tracking;
  // Jobs find the Python SDK (python/lathe) on PYTHONPATH when it lies beside
  // this binary: <bin>/python, <bin>/../python (a checkout's build*/lathe) or
  // <bin>/../share/lathe/python (an install).
  {
    std::error_code ec;
    const std::filesystem::path bin =
        std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
    for (const char* rel : {"python", "../python", "../share/lathe/python"}) {
      const std::filesystem::path dir = (bin / rel).lexically_normal();
      if (!ec && std::filesystem::exists(dir / "lathe" / "__init__.py", ec)) {
        copts.python_path = dir.string();
        break;
      }
    }
  }
  // Pipelines: steps are jobs. The job controller pokes the pipeline
  // controller when a step's job ends, the pipeline controller pokes the job
  // controller when it inserts or cancels step jobs, and the schedule
  // controller pokes the pipeline controller when it creates, resumes or
  // cancels runs. The pointer is set before either controller starts.
  control::PipelineController* pipeline_controller_ptr = nullptr;
  copts.on_job_terminal = [&pipeline_controller_ptr](const control::JobRecord& job) {
    if (job.spec.pipeline.has_value() && pipeline_controller_ptr != nullptr) {
      pipeline_controller_ptr->Poke();
    }
  };
  control::JobController controller(**store, tenancy, *executor, SystemClock(), copts);
  control::PipelineService pipelines(**store, tenancy, SystemClock());
  control::PipelineControllerOptions popts;
  popts.data_root =
      std::filesystem::absolute(config.pipelines_data_root).lexically_normal().string();
  popts.resync_interval_ms = config.pipelines_resync_interval_ms;
  popts.max_fan_out = static_cast<size_t>(config.pipelines_max_fan_out);
  popts.poke_jobs = [&controller] { controller.Poke(); };
  control::PipelineController pipeline_controller(**store, tenancy, SystemClock(), popts, &metrics);
  pipeline_controller_ptr = &pipeline_controller;
  // Schedules: cron in IANA zones from the system's tzdata.
  control::ScheduleService schedules(**store, tenancy, SystemClock(), LoadTimeZone);
  control::ScheduleControllerOptions sopts;
  sopts.resync_interval_ms = config.schedules_resync_interval_ms;
  sopts.poke_pipelines = [&pipeline_controller] { pipeline_controller.Poke(); };
  control::ScheduleController schedule_controller(**store, SystemClock(), LoadTimeZone, sopts,
                                                  &metrics);
  // Run artifacts: files under artifacts.root; uploads are spooled there.
  tracking::ArtifactStore artifacts({.root = config.artifacts_root,
                                     .max_file_bytes =
                                         static_cast<uint64_t>(config.artifacts_max_file_bytes)});
  if (Status a = artifacts.Init(); !a.ok()) {
    LOG_ERROR("cannot use artifacts.root {}: {}", config.artifacts_root, a.ToString());
    return 1;
  }

  api::Api api(**store, tenancy, metrics, {&jobs, &controller, copts.code_root},
               {&tracking, &registry, &artifacts, &logged_models},
               {&pipelines, &schedules, &pipeline_controller, &schedule_controller});

  http::ServerOptions opts;
  opts.host = config.host();
  opts.port = config.port();
  opts.threads = config.http_threads > 0
                     ? static_cast<int>(config.http_threads)
                     : std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  opts.max_body_bytes = static_cast<size_t>(config.http_max_body_bytes);
  opts.read_timeout_ms = static_cast<int>(config.http_read_timeout_ms);
  opts.idle_timeout_ms = static_cast<int>(config.http_idle_timeout_ms);
  opts.shutdown_grace_ms = static_cast<int>(config.http_shutdown_grace_ms);
  opts.spool_dir = artifacts.spool_dir();
  opts.spool_body = [&api](const http::Request& head) { return api.SpoolLimit(head); };
  http::Server server(opts, [&api](http::Request& req, http::Response& res) { api.Handle(req, res); });
  Status st = server.Start();
  if (!st.ok()) {
    LOG_ERROR("cannot listen on {}: {}", config.listen, st.ToString());
    return 1;
  }
  metrics.AddCallbackGauge("lathe_http_open_connections", "Open HTTP connections.",
                           [&server] { return static_cast<double>(server.open_connections()); });

  const std::string url = fmt::format("http://{}:{}", opts.host, server.port());
  const std::string url_path = config.home + "/server.url";
  if (Status w = WriteFileAtomic(url_path, url + "\n", 0644); !w.ok()) {
    LOG_WARN("could not write {}: {}", url_path, w.ToString());
  }
  controller.SetServerUrl(url);
  controller.Start();
  pipeline_controller.Start();
  schedule_controller.Start();
  LOG_INFO("lathe {} ({}) listening on {} with {} I/O threads; ready in {} ms", LATHE_VERSION,
           LATHE_GIT_COMMIT, url, opts.threads,
           (SystemClock().MonotonicNanos() - start_mono) / 1'000'000);

  int sig = 0;
  sigwait(&signals, &sig);
  LOG_INFO("received {}; draining (up to {} ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
           opts.shutdown_grace_ms);
  api.SetDraining(true);
  server.Shutdown();
  // Upstream first, so no controller pokes one that has stopped: schedules
  // create runs, runs insert jobs.
  schedule_controller.Stop();
  pipeline_controller.Stop();
  controller.Stop();  // tasks keep running under their shims; a restart reattaches
  std::filesystem::remove(url_path, ec);
  LOG_INFO("stopped");
  return 0;
}

}  // namespace lathe::cli
