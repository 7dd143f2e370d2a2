// Configuration of `lathe server`, from four sources in this order of
// precedence: command-line flags > environment (LATHE_*) > YAML config file
// > built-in defaults. Every setting has a dotted key ("http.threads"); its
// environment variable is LATHE_ + the key upper-cased with '.' as '_'
// (LATHE_HTTP_THREADS). The config file is --config, else $LATHE_CONFIG,
// else <home>/config.yaml when that exists. docs/config.md lists them all.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace lathe::cli {

struct ServerConfig {
  std::string home = "./.lathe";
  std::string listen = "127.0.0.1:8080";
  std::string store;  // default: sqlite://<home>/lathe.db
  std::string log_level = "info";
  int64_t store_pool_size = 4;
  int64_t store_busy_timeout_ms = 5000;
  int64_t http_threads = 0;  // 0: one per core, at least 2
  int64_t http_max_body_bytes = 8 * 1024 * 1024;
  int64_t http_read_timeout_ms = 30'000;
  int64_t http_idle_timeout_ms = 60'000;
  int64_t http_shutdown_grace_ms = 10'000;
  int64_t auth_token_cache_ttl_ms = 10'000;
  // Training jobs (docs/config.md "Jobs").
  std::string scheduler_policy = "lathe";
  int64_t scheduler_interval_ms = 200;
  int64_t local_nodes = 0;          // 0 = this machine as one node
  std::string local_cpu;            // per node, e.g. "8" or "500m"; "" = detected
  std::string local_memory;         // per node, e.g. "16Gi"; "" = detected
  int64_t jobs_kill_grace_ms = 10'000;
  int64_t jobs_log_max_bytes = 64 << 20;
  // Pipelines and schedules (docs/config.md "Pipelines").
  std::string pipelines_data_root;  // default: <home>/pipelines
  int64_t pipelines_resync_interval_ms = 200;
  int64_t pipelines_max_fan_out = 10'000;
  int64_t schedules_resync_interval_ms = 1000;
  // Run artifacts (docs/tracking.md "Artifacts").
  std::string artifacts_root;  // default: <home>/artifacts
  int64_t artifacts_max_file_bytes = int64_t{5} << 30;

  // Where the file settings came from ("" if none), for the start-up log.
  std::string config_file;

  // Host and port split out of `listen` (validated by LoadServerConfig).
  std::string host() const;
  int port() const;
};

// One documented setting, for --help and docs.
struct SettingInfo {
  std::string key;
  std::string env;
  std::string help;
};
const std::vector<SettingInfo>& ServerSettings();

// Builds the config. `flags` maps setting keys to values given on the
// command line (plus "config" for the file); `getenv` looks up the
// environment. Errors are INVALID_ARGUMENT naming the setting and its source
// ("LATHE_HTTP_THREADS: \"x\" is not an integer").
StatusOr<ServerConfig> LoadServerConfig(const std::map<std::string, std::string>& flags,
                                        const std::function<const char*(const char*)>& getenv);

}  // namespace lathe::cli
