#include "cli/server_config.h"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include <fmt/core.h>

#include "base/json.h"
#include "base/log.h"
#include "base/yaml.h"
#include "sched/policy.h"
#include "spec/job_spec.h"

namespace lathe::cli {
namespace {

struct Setting {
  SettingInfo info;
  std::string* text = nullptr;
  int64_t* number = nullptr;
  int64_t min = 0;
  bool bytes = false;  // `number` also takes a quantity: "512Mi", "5Gi", "1G"
};

// A byte count: an integer, optionally with a binary (Ki, Mi, Gi, Ti) or
// decimal (K, M, G, T) suffix. False when malformed or past int64.
bool ParseByteQuantity(const std::string& text, int64_t* out) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return false;
  const std::string suffix = text.substr(digits);
  static const std::pair<const char*, int64_t> kUnits[] = {
      {"", 1},
      {"Ki", int64_t{1} << 10}, {"Mi", int64_t{1} << 20}, {"Gi", int64_t{1} << 30},
      {"Ti", int64_t{1} << 40}, {"K", 1'000}, {"M", 1'000'000}, {"G", 1'000'000'000},
      {"T", 1'000'000'000'000}};
  for (const auto& [unit, factor] : kUnits) {
    if (suffix != unit) continue;
    errno = 0;
    long long v = std::strtoll(text.substr(0, digits).c_str(), nullptr, 10);
    if (errno != 0 || v > INT64_MAX / factor) return false;
    *out = v * factor;
    return true;
  }
  return false;
}

std::vector<Setting> Bind(ServerConfig& c) {
  auto text = [](std::string key, std::string help, std::string* p) {
    return Setting{{key, "", std::move(help)}, p, nullptr, 0};
  };
  auto number = [](std::string key, std::string help, int64_t* p, int64_t min) {
    return Setting{{key, "", std::move(help)}, nullptr, p, min};
  };
  auto bytes = [](std::string key, std::string help, int64_t* p, int64_t min) {
    return Setting{{key, "", std::move(help)}, nullptr, p, min, true};
  };
  std::vector<Setting> s = {
      text("home", "state directory: database, admin token, logs (default ./.lathe)", &c.home),
      text("listen", "address:port to serve on; port 0 picks a free port (default 127.0.0.1:8080)",
           &c.listen),
      text("store", "sqlite://PATH or postgres://user@host:port/db (default sqlite://<home>/lathe.db)",
           &c.store),
      text("log_level", "debug, info, warn, error or off (default info)", &c.log_level),
      number("database.pool_size", "SQLite reader connections / PostgreSQL connections (default 4)",
             &c.store_pool_size, 1),
      number("database.busy_timeout_ms", "SQLite lock wait before a transaction retries (default 5000)",
             &c.store_busy_timeout_ms, 0),
      number("http.threads", "I/O threads; 0 = one per core, at least 2 (default 0)",
             &c.http_threads, 0),
      number("http.max_body_bytes", "largest request body accepted (default 8388608)",
             &c.http_max_body_bytes, 1),
      number("http.read_timeout_ms", "time allowed to receive one request (default 30000)",
             &c.http_read_timeout_ms, 1),
      number("http.idle_timeout_ms", "keep-alive idle time before closing (default 60000)",
             &c.http_idle_timeout_ms, 1),
      number("http.shutdown_grace_ms",
             "on SIGTERM, how long in-flight requests may finish (default 10000)",
             &c.http_shutdown_grace_ms, 0),
      number("auth.token_cache_ttl_ms",
             "how long a verified token is trusted without a store lookup; revocations through "
             "this server apply at once (default 10000)",
             &c.auth_token_cache_ttl_ms, 0),
      text("scheduler.policy",
           "named scheduling policy for training jobs: lathe, easy, fifo, drf, binpack, spread, "
           "fgd, ... (default lathe; docs/scheduler.md)",
           &c.scheduler_policy),
      number("scheduler.interval_ms",
             "the job controller's pass interval; submits and cancels also wake it (default 200)",
             &c.scheduler_interval_ms, 10),
      number("executor.local.nodes",
             "0 = this machine is one node \"local\"; N = N virtual nodes local-0..local-N-1 for "
             "testing gangs and placement (default 0)",
             &c.local_nodes, 0),
      text("executor.local.cpu", "CPU capacity per local node, e.g. 8 or 500m (default: online CPUs)",
           &c.local_cpu),
      text("executor.local.memory",
           "memory capacity per local node, e.g. 16Gi (default: MemTotal of this machine)",
           &c.local_memory),
      number("jobs.kill_grace_ms", "cancel: SIGTERM, then SIGKILL after this long (default 10000)",
             &c.jobs_kill_grace_ms, 0),
      number("jobs.log_max_bytes",
             "per task and stream, a log is rotated at this size; one rotated file is kept "
             "(default 67108864)",
             &c.jobs_log_max_bytes, 4096),
      text("pipelines.data_root",
           "where pipeline steps write their outputs: <root>/<run>/<node>/<attempt>/{parameters,"
           "artifacts} (default <home>/pipelines)",
           &c.pipelines_data_root),
      number("pipelines.resync_interval_ms",
             "the pipeline controller's pass interval; runs starting and steps ending also wake "
             "it (default 200)",
             &c.pipelines_resync_interval_ms, 10),
      number("pipelines.max_fan_out", "most items one for_each step may fan out to (default 10000)",
             &c.pipelines_max_fan_out, 1),
      number("schedules.resync_interval_ms",
             "the schedule controller's pass interval: how late a tick may fire (default 1000)",
             &c.schedules_resync_interval_ms, 10),
      text("artifacts.root",
           "where run artifacts are stored; uploads are spooled in <root>/.spool (default "
           "<home>/artifacts)",
           &c.artifacts_root),
      bytes("artifacts.max_file_bytes",
            "largest artifact file one upload may store, bytes or a quantity like 512Mi or 5Gi; "
            "larger uploads get 413 (default 5Gi)",
            &c.artifacts_max_file_bytes, 1),
  };
  for (Setting& x : s) {
    std::string env = "LATHE_";
    for (char ch : x.info.key) env.push_back(ch == '.' ? '_' : static_cast<char>(std::toupper(ch)));
    x.info.env = env;
  }
  return s;
}

Status Assign(Setting& s, const std::string& value, const std::string& source) {
  if (s.text != nullptr) {
    *s.text = value;
    return OkStatus();
  }
  long long v = 0;
  if (s.bytes) {
    int64_t n = 0;
    if (!ParseByteQuantity(value, &n)) {
      return InvalidArgumentError(
          fmt::format("{}: \"{}\" is not a byte count (an integer, or a quantity like 512Mi, 5Gi, "
                      "1G)",
                      source, value),
          s.info.key);
    }
    v = n;
  } else {
    char* end = nullptr;
    errno = 0;
    v = std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || errno != 0) {
      return InvalidArgumentError(fmt::format("{}: \"{}\" is not an integer", source, value),
                                  s.info.key);
    }
  }
  if (v < s.min) {
    return InvalidArgumentError(fmt::format("{}: {} is below the minimum {}", source, v, s.min),
                                s.info.key);
  }
  *s.number = v;
  return OkStatus();
}

// Flattens {"http": {"threads": 2}} into "http.threads" -> "2".
Status Flatten(const JsonValue& v, const std::string& prefix, const std::string& file,
               std::map<std::string, std::string>* out) {
  for (const auto& [k, child] : v.members()) {
    std::string key = prefix.empty() ? k : prefix + "." + k;
    switch (child.type()) {
      case JsonValue::Type::kObject: RETURN_IF_ERROR(Flatten(child, key, file, out)); break;
      case JsonValue::Type::kString: (*out)[key] = child.as_string(); break;
      case JsonValue::Type::kInt: (*out)[key] = std::to_string(child.as_int()); break;
      case JsonValue::Type::kBool: (*out)[key] = child.as_bool() ? "true" : "false"; break;
      case JsonValue::Type::kNull: break;
      default:
        return InvalidArgumentError(
            fmt::format("{}: {}: expected a string or an integer, got {}", file, key,
                        JsonTypeName(child.type())),
            key);
    }
  }
  return OkStatus();
}

}  // namespace

const std::vector<SettingInfo>& ServerSettings() {
  static const std::vector<SettingInfo>* const kInfo = [] {
    ServerConfig c;
    auto* out = new std::vector<SettingInfo>();
    for (const Setting& s : Bind(c)) out->push_back(s.info);
    return out;
  }();
  return *kInfo;
}

std::string ServerConfig::host() const { return listen.substr(0, listen.rfind(':')); }

int ServerConfig::port() const { return std::atoi(listen.substr(listen.rfind(':') + 1).c_str()); }

StatusOr<ServerConfig> LoadServerConfig(const std::map<std::string, std::string>& flags,
                                        const std::function<const char*(const char*)>& getenv) {
  ServerConfig c;
  std::vector<Setting> settings = Bind(c);
  auto env_of = [&](const Setting& s) -> const char* { return getenv(s.info.env.c_str()); };

  // Which file? --config, else $LATHE_CONFIG, else <home>/config.yaml if present
  // (home itself resolved from flags and environment only).
  std::string file;
  bool explicit_file = false;
  if (auto it = flags.find("config"); it != flags.end()) {
    file = it->second;
    explicit_file = true;
  } else if (const char* e = getenv("LATHE_CONFIG"); e != nullptr && *e != '\0') {
    file = e;
    explicit_file = true;
  } else {
    std::string home = c.home;
    if (const char* e = getenv("LATHE_HOME"); e != nullptr && *e != '\0') home = e;
    if (auto it = flags.find("home"); it != flags.end()) home = it->second;
    std::string candidate = home + "/config.yaml";
    if (std::filesystem::exists(candidate)) file = candidate;
  }

  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) {
      return InvalidArgumentError(fmt::format("config file {}: cannot be read", file), "config");
    }
    std::stringstream buf;
    buf << in.rdbuf();
    auto doc = ParseYaml(buf.str());
    if (!doc.ok()) return doc.status().WithPrefix("config file " + file);
    if (!doc->is_object()) {
      return InvalidArgumentError(fmt::format("config file {}: expected a mapping", file), "config");
    }
    std::map<std::string, std::string> values;
    RETURN_IF_ERROR(Flatten(*doc, "", file, &values));
    for (const auto& [key, value] : values) {
      Setting* s = nullptr;
      for (Setting& x : settings) {
        if (x.info.key == key) s = &x;
      }
      if (s == nullptr) {
        return InvalidArgumentError(fmt::format("config file {}: {}: unknown setting", file, key),
                                    key);
      }
      RETURN_IF_ERROR(Assign(*s, value, fmt::format("config file {}: {}", file, key)));
    }
    c.config_file = file;
  }
  (void)explicit_file;

  for (Setting& s : settings) {
    if (const char* e = env_of(s); e != nullptr && *e != '\0') {
      RETURN_IF_ERROR(Assign(s, e, s.info.env));
    }
  }
  for (const auto& [key, value] : flags) {
    if (key == "config") continue;
    Setting* s = nullptr;
    for (Setting& x : settings) {
      if (x.info.key == key) s = &x;
    }
    if (s == nullptr) return InvalidArgumentError(fmt::format("unknown setting {}", key), key);
    RETURN_IF_ERROR(Assign(*s, value, "--" + key));
  }

  // Validation of the merged result.
  LogLevel level;
  if (!ParseLogLevel(c.log_level, &level)) {
    return InvalidArgumentError(
        fmt::format("log_level: \"{}\" is not one of debug, info, warn, error, off", c.log_level),
        "log_level");
  }
  size_t colon = c.listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgumentError(
        fmt::format("listen: \"{}\" is not ADDRESS:PORT (e.g. 127.0.0.1:8080)", c.listen), "listen");
  }
  std::string port = c.listen.substr(colon + 1);
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535) {
    return InvalidArgumentError(fmt::format("listen: port \"{}\" is not in 0..65535", port), "listen");
  }
  if (c.home.empty()) return InvalidArgumentError("home: must not be empty", "home");
  if (auto policy = sched::NamedPolicy(c.scheduler_policy); !policy.ok()) {
    return InvalidArgumentError(fmt::format("scheduler.policy: \"{}\" is not a policy ({})",
                                            c.scheduler_policy, policy.status().message()),
                                "scheduler.policy");
  }
  if (!c.local_cpu.empty()) {
    RETURN_IF_ERROR(spec::ParseCpuMilli(JsonValue::MakeString(c.local_cpu), "executor.local.cpu").status());
  }
  if (!c.local_memory.empty()) {
    RETURN_IF_ERROR(
        spec::ParseMemoryMib(JsonValue::MakeString(c.local_memory), "executor.local.memory").status());
  }
  if (c.store.empty()) c.store = "sqlite://" + c.home + "/lathe.db";
  if (c.artifacts_root.empty()) c.artifacts_root = c.home + "/artifacts";
  if (c.pipelines_data_root.empty()) c.pipelines_data_root = c.home + "/pipelines";
  return c;
}

}  // namespace lathe::cli
