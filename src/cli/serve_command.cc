#include "cli/serve_command.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/core.h>

#include "base/build_info.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/metrics.h"
#include "http/router.h"
#include "http/server.h"
#include "serving/grpc_frontend.h"
#include "serving/http_frontend.h"
#include "serving/model_manager.h"
#include "serving/repository.h"

namespace lathe::cli {
namespace {

double ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

Status WriteUrlFile(const std::string& path, const std::string& url) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << url << "\n";
    if (!out.flush()) return InternalError(fmt::format("cannot write {}", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return InternalError(fmt::format("cannot rename {}: {}", tmp, ec.message()));
  return OkStatus();
}

}  // namespace

Status ParseHostPort(const std::string& text, const std::string& flag, std::string* host,
                     int* port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return InvalidArgumentError(
        fmt::format("{}: \"{}\" is not ADDRESS:PORT (e.g. 127.0.0.1:8000)", flag, text), flag);
  }
  const std::string p = text.substr(colon + 1);
  if (p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(p) > 65535) {
    return InvalidArgumentError(fmt::format("{}: \"{}\" is not a port (0-65535)", flag, p), flag);
  }
  *host = text.substr(0, colon);
  *port = std::stoi(p);
  return OkStatus();
}

Status ValidateServeOptions(const ServeOptions& o) {
  if (o.repository.empty()) return InvalidArgumentError("--repository: required", "repository");
  std::error_code ec;
  if (!std::filesystem::is_directory(o.repository, ec)) {
    return InvalidArgumentError(fmt::format("--repository: {} is not a directory", o.repository),
                                "repository");
  }
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(ParseHostPort(o.http, "--http", &host, &port));
  if (!o.grpc.empty()) RETURN_IF_ERROR(ParseHostPort(o.grpc, "--grpc", &host, &port));
  ASSIGN_OR_RETURN(serving::ModelControlMode mode,
                   serving::ParseModelControlMode(o.model_control_mode));
  if (!o.load_models.empty() && mode != serving::ModelControlMode::kExplicit) {
    return InvalidArgumentError(
        "--load-model: only with --model-control-mode explicit (the other modes load every "
        "model of the repository)",
        "load-model");
  }
  for (const std::string& m : o.load_models) {
    if (!serving::IsValidModelName(m)) {
      return InvalidArgumentError(fmt::format("--load-model: \"{}\" is not a model name", m),
                                  "load-model");
    }
  }
  if (o.poll_interval_ms < 10 || o.poll_interval_ms > 86'400'000) {
    return InvalidArgumentError("--poll-interval-ms: must be 10..86400000", "poll-interval-ms");
  }
  if (o.http_threads < 0 || o.http_threads > 256) {
    return InvalidArgumentError("--http-threads: must be 0..256", "http-threads");
  }
  if (o.max_body_mib < 1 || o.max_body_mib > 4096) {
    return InvalidArgumentError("--max-body-mib: must be 1..4096", "max-body-mib");
  }
  if (!o.backend_dir.empty() && !std::filesystem::is_directory(o.backend_dir, ec)) {
    return InvalidArgumentError(fmt::format("--backend-dir: {} is not a directory", o.backend_dir),
                                "backend-dir");
  }
  LogLevel level;
  if (!ParseLogLevel(o.log_level, &level)) {
    return InvalidArgumentError("--log-level: debug, info, warn, error or off", "log-level");
  }
  return OkStatus();
}

int RunServe(const ServeOptions& o) {
  const int64_t start_mono = SystemClock().MonotonicNanos();
  if (Status st = ValidateServeOptions(o); !st.ok()) {
    LOG_ERROR("{}", st.message());
    return 1;
  }
  LogLevel level = LogLevel::kInfo;
  ParseLogLevel(o.log_level, &level);
  SetLogLevel(level);

  // Block the shutdown signals before any thread starts so that only the
  // waiting thread below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::vector<std::string> tokens;
  if (!o.token_file.empty()) {
    StatusOr<std::vector<std::string>> t = serving::ReadTokenFile(o.token_file);
    if (!t.ok()) {
      LOG_ERROR("--token-file: {}", t.status().message());
      return 1;
    }
    tokens = *std::move(t);
  }

  MetricsRegistry& metrics = DefaultRegistry();
  metrics.AddCallbackGauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                           ResidentBytes);
  const double start_time = static_cast<double>(SystemClock().NowMicros()) / 1e6;
  metrics.AddCallbackGauge("process_start_time_seconds", "Start time since the Unix epoch.",
                           [start_time] { return start_time; });

  serving::ModelManagerOptions mo;
  mo.repository = o.repository;
  mo.mode = *serving::ParseModelControlMode(o.model_control_mode);
  mo.startup_models = o.load_models;
  mo.poll_interval_ms = o.poll_interval_ms;
  mo.loader = serving::PluginInstanceLoader({.plugin_dir = o.backend_dir});
  LOG_INFO("loading repository {} (model control mode {})", o.repository, o.model_control_mode);
  StatusOr<std::unique_ptr<serving::ModelManager>> created =
      serving::ModelManager::Create(std::move(mo));
  if (!created.ok()) {
    LOG_ERROR("cannot serve {}: {}", o.repository, created.status().ToString());
    return 1;
  }
  std::unique_ptr<serving::ModelManager> manager = *std::move(created);
  int ready = 0;
  for (const serving::ModelIndexEntry& e : manager->Index()) {
    if (e.state == serving::VersionState::kReady) {
      ++ready;  // the manager logged it
    } else {
      LOG_WARN("model \"{}\"{}: {}{}{}", e.name, e.version.empty() ? "" : " version " + e.version,
               serving::VersionStateName(e.state), e.reason.empty() ? "" : ": ", e.reason);
    }
  }

  serving::HttpFrontendOptions fo;
  fo.tokens = tokens;
  fo.server_version = LATHE_VERSION;
  auto frontend = std::make_unique<serving::HttpFrontend>(*manager, fo);
  http::Router router;
  frontend->Register(router);

  http::ServerOptions so;
  ParseHostPort(o.http, "--http", &so.host, &so.port).IgnoreError();  // validated above
  so.threads = o.http_threads > 0
                   ? static_cast<int>(o.http_threads)
                   : std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  so.max_body_bytes = static_cast<size_t>(o.max_body_mib) << 20;
  http::Server server(
      so, [&router](http::Request& req, http::Response& res) { router.Dispatch(req, res); });
  if (Status st = server.Start(); !st.ok()) {
    LOG_ERROR("cannot listen on {}: {}", o.http, st.ToString());
    return 1;
  }
  metrics.AddCallbackGauge("lathe_http_open_connections", "Open HTTP connections.",
                           [&server] { return static_cast<double>(server.open_connections()); });
  std::unique_ptr<serving::GrpcFrontend> grpc;
  if (!o.grpc.empty()) {
    serving::GrpcFrontendOptions go;
    go.address = o.grpc;
    go.tokens = tokens;
    go.max_message_bytes = o.max_body_mib << 20;
    go.server_version = LATHE_VERSION;
    StatusOr<std::unique_ptr<serving::GrpcFrontend>> g =
        serving::GrpcFrontend::Start(*manager, std::move(go));
    if (!g.ok()) {
      LOG_ERROR("cannot serve gRPC on {}: {}", o.grpc, g.status().ToString());
      server.Shutdown();
      return 1;
    }
    grpc = *std::move(g);
  }
  const std::string url = fmt::format("http://{}:{}", so.host, server.port());
  if (!o.url_file.empty()) {
    if (Status w = WriteUrlFile(o.url_file, url); !w.ok()) {
      LOG_WARN("could not write --url-file: {}", w.ToString());
    }
  }
  LOG_INFO(
      "lathe serve {} ({}): {} model version(s) ready; REST on {} ({} I/O threads{}){}; "
      "started in {} ms",
      LATHE_VERSION, LATHE_GIT_COMMIT, ready, url, so.threads,
      tokens.empty() ? ", no auth: repository load/unload disabled"
                     : fmt::format(", {} token(s)", tokens.size()),
      grpc ? fmt::format("; gRPC on {}:{}", o.grpc.substr(0, o.grpc.rfind(':')), grpc->port())
           : std::string(),
      (SystemClock().MonotonicNanos() - start_mono) / 1'000'000);

  int sig = 0;
  sigwait(&signals, &sig);
  LOG_INFO("received {}; draining (up to {} ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
           so.shutdown_grace_ms);
  frontend->SetDraining(true);
  if (grpc) grpc->SetDraining(true);
  server.Shutdown();  // stop accepting; requests in flight are answered
  if (grpc) grpc->Shutdown(so.shutdown_grace_ms);
  grpc.reset();
  frontend.reset();  // finishes a repository load/unload in progress
  manager.reset();   // every version drains its batcher and unloads
  if (!o.url_file.empty()) {
    std::error_code ec;
    std::filesystem::remove(o.url_file, ec);
  }
  LOG_INFO("stopped");
  return 0;
}

}  // namespace lathe::cli
