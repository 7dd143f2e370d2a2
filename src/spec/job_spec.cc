// Job and queue specs: decoding with field-named errors, validation, the
// canonical JSON form, and the scheduler's view.
#include "spec/job_spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace lathe::spec {
namespace {

constexpr int kMaxReplicas = 1000;
constexpr int64_t kMaxPriority = 1'000'000;
constexpr int kMaxRestartLimit = 100;
constexpr int64_t kMaxBackoffSeconds = 300;
constexpr int64_t kMaxQueueWeight = 1'000'000;
constexpr size_t kMaxLabelKey = 253;
constexpr size_t kMaxLabelValue = 256;
constexpr size_t kMaxExperimentName = 500;  // MLflow's limit

// Defaults for a role's resources when absent (docs/jobs.md).
constexpr int64_t kDefaultCpuMilli = 1000;
constexpr int64_t kDefaultMemoryMib = 1024;

Status FieldError(const std::string& field, const std::string& message) {
  return InvalidArgumentError(fmt::format("{}: {}", field, message), field);
}

std::string Join(const std::string& path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return fmt::format("{}.{}", path, key);
}

std::string Quote(std::string_view s) {
  std::string out;
  AppendJsonString(&out, s.size() > 64 ? std::string(s.substr(0, 64)) + "..." : std::string(s));
  return out;
}

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

bool IsDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  if (!IsLowerAlnum(s.front()) || !IsLowerAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
}

Status CheckName(const std::string& value, const std::string& field) {
  if (IsDnsLabel(value)) return OkStatus();
  return FieldError(field, fmt::format("{} is not a valid name (1-63 characters of a-z, 0-9 and "
                                       "'-', starting and ending with a letter or digit)",
                                       Quote(value)));
}

bool IsEnvName(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsAlnum(c) || c == '_'; });
}

Status CheckNoNul(const std::string& value, const std::string& field) {
  if (value.find('\0') == std::string::npos) return OkStatus();
  return FieldError(field, "must not contain a NUL character");
}

// Label and node-selector keys: "team", "example.com/gpu-kind".
Status CheckLabels(const std::map<std::string, std::string>& labels, const std::string& field) {
  for (const auto& [key, value] : labels) {
    std::string f = Join(field, key);
    bool ok = !key.empty() && key.size() <= kMaxLabelKey && IsAlnum(key.front()) &&
              IsAlnum(key.back()) && std::all_of(key.begin(), key.end(), [](char c) {
                return IsAlnum(c) || c == '-' || c == '_' || c == '.' || c == '/';
              });
    if (!ok) {
      return FieldError(f, fmt::format("{} is not a valid label key (letters, digits, '-', '_', "
                                       "'.' and '/', starting and ending with a letter or digit)",
                                       Quote(key)));
    }
    if (value.size() > kMaxLabelValue) {
      return FieldError(f, fmt::format("value is longer than {} characters", kMaxLabelValue));
    }
    RETURN_IF_ERROR(CheckNoNul(value, f));
  }
  return OkStatus();
}

StatusOr<Framework> ParseFramework(const std::string& s, const std::string& field) {
  for (Framework f : {Framework::kNone, Framework::kPyTorch, Framework::kTensorFlow,
                      Framework::kMpi, Framework::kXgboost}) {
    if (s == FrameworkName(f)) return f;
  }
  return FieldError(field, fmt::format("{} is not a framework (none, pytorch, tensorflow, mpi, "
                                       "xgboost)",
                                       Quote(s)));
}

// command: a string (run by /bin/sh -c) or a list of strings (argv).
Status ParseCommand(const JsonValue* v, const std::string& field, std::vector<std::string>* out,
                    bool* was_string) {
  *was_string = false;
  if (v == nullptr) return OkStatus();
  if (v->is_string()) {
    if (v->as_string().find_first_not_of(" \t\r\n") == std::string::npos) {
      return FieldError(field, "must not be empty");
    }
    RETURN_IF_ERROR(CheckNoNul(v->as_string(), field));
    *out = {"/bin/sh", "-c", v->as_string()};
    *was_string = true;
    return OkStatus();
  }
  if (!v->is_array()) {
    return FieldError(field, fmt::format("expected a string or a list of strings, got {}",
                                         JsonTypeName(v->type())));
  }
  std::vector<std::string> argv;
  for (size_t i = 0; i < v->items().size(); ++i) {
    const JsonValue& item = v->items()[i];
    std::string f = fmt::format("{}[{}]", field, i);
    if (!item.is_string()) {
      return FieldError(f, fmt::format("expected a string, got {}", JsonTypeName(item.type())));
    }
    RETURN_IF_ERROR(CheckNoNul(item.as_string(), f));
    argv.push_back(item.as_string());
  }
  if (!argv.empty() && argv[0].empty()) {
    return FieldError(field + "[0]", "the program must not be empty");
  }
  *out = std::move(argv);
  return OkStatus();
}

// {cpu, memory, gpu}; absent dimensions keep the defaults.
Status ParseRoleResources(const JsonValue* v, const std::string& field, sched::Resources* out) {
  *out = {kDefaultCpuMilli, kDefaultMemoryMib, 0};
  if (v == nullptr) return OkStatus();
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(*v, field));
  ASSIGN_OR_RETURN(const JsonValue* cpu, r.Value("cpu"));
  ASSIGN_OR_RETURN(const JsonValue* memory, r.Value("memory"));
  ASSIGN_OR_RETURN(const JsonValue* gpu, r.Value("gpu"));
  RETURN_IF_ERROR(r.Finish());
  if (cpu != nullptr) {
    ASSIGN_OR_RETURN(out->cpu_milli, ParseCpuMilli(*cpu, r.PathOf("cpu")));
  }
  if (memory != nullptr) {
    ASSIGN_OR_RETURN(out->memory_mib, ParseMemoryMib(*memory, r.PathOf("memory")));
  }
  if (gpu != nullptr) {
    ASSIGN_OR_RETURN(out->gpu_milli, ParseGpuMilli(*gpu, r.PathOf("gpu")));
  }
  return OkStatus();
}

Status CheckEnv(const std::map<std::string, std::string>& env, const std::string& field,
                Framework framework) {
  const std::vector<std::string>& reserved = RendezvousEnvNames(framework);
  for (const auto& [key, value] : env) {
    std::string f = Join(field, key);
    if (!IsEnvName(key)) {
      return FieldError(f, fmt::format("{} is not a valid environment variable name (letters, "
                                       "digits and '_', not starting with a digit)",
                                       Quote(key)));
    }
    if (key.rfind("LATHE_", 0) == 0) {
      return FieldError(f, fmt::format("{} is reserved: names starting with LATHE_ are set by "
                                       "Lathe",
                                       key));
    }
    if (std::find(reserved.begin(), reserved.end(), key) != reserved.end()) {
      return FieldError(f, fmt::format("{} is set by Lathe for {} jobs (rendezvous); remove it "
                                       "from env",
                                       key, FrameworkName(framework)));
    }
    RETURN_IF_ERROR(CheckNoNul(value, f));
  }
  return OkStatus();
}

StatusOr<Role> ParseRole(const JsonValue& v, const std::string& path, Framework framework) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  Role role;
  int64_t replicas = 1;
  RETURN_IF_ERROR(r.String("name", &role.name, Presence::kRequired));
  RETURN_IF_ERROR(r.Int("replicas", &replicas));
  ASSIGN_OR_RETURN(const JsonValue* command, r.Value("command"));
  RETURN_IF_ERROR(r.StringList("args", &role.args));
  RETURN_IF_ERROR(r.StringMap("env", &role.env));
  ASSIGN_OR_RETURN(const JsonValue* resources, r.Value("resources"));
  RETURN_IF_ERROR(r.String("working_dir", &role.working_dir));
  RETURN_IF_ERROR(r.Finish());

  RETURN_IF_ERROR(CheckName(role.name, r.PathOf("name")));
  if (replicas < 1 || replicas > kMaxReplicas) {
    return FieldError(r.PathOf("replicas"),
                      fmt::format("{} is not in 1..{}", replicas, kMaxReplicas));
  }
  role.replicas = static_cast<int>(replicas);
  bool was_string = false;
  RETURN_IF_ERROR(ParseCommand(command, r.PathOf("command"), &role.command, &was_string));
  bool held = framework == Framework::kMpi && role.name == "worker";
  if (role.command.empty() && !held) {
    return FieldError(r.PathOf("command"),
                      "required: a string (run by /bin/sh -c) or a list of strings");
  }
  if (was_string && !role.args.empty()) {
    return FieldError(r.PathOf("args"),
                      "not allowed with a string command (put the arguments in the string, or "
                      "give command as a list)");
  }
  for (size_t i = 0; i < role.args.size(); ++i) {
    RETURN_IF_ERROR(CheckNoNul(role.args[i], fmt::format("{}[{}]", r.PathOf("args"), i)));
  }
  RETURN_IF_ERROR(CheckEnv(role.env, r.PathOf("env"), framework));
  RETURN_IF_ERROR(ParseRoleResources(resources, r.PathOf("resources"), &role.resources));
  RETURN_IF_ERROR(CheckNoNul(role.working_dir, r.PathOf("working_dir")));
  return role;
}

StatusOr<RestartPolicy> ParseRestartPolicyName(const std::string& s, const std::string& field,
                                               bool object_form) {
  if (s == "Never") return RestartPolicy::kNever;
  if (s == "OnFailure") return RestartPolicy::kOnFailure;
  if (s == "ExitCodes") {
    if (object_form) return RestartPolicy::kExitCodes;
    return FieldError(field,
                      "ExitCodes needs the object form {policy: ExitCodes, exit_codes: "
                      "[...]}");
  }
  return FieldError(field, fmt::format("{} is not a restart policy (Never, OnFailure{})", Quote(s),
                                       object_form ? ", ExitCodes" : ", or an object"));
}

StatusOr<Restart> ParseRestart(const JsonValue& v, const std::string& field) {
  Restart restart;
  if (v.is_string()) {
    ASSIGN_OR_RETURN(restart.policy, ParseRestartPolicyName(v.as_string(), field, false));
    return restart;
  }
  if (!v.is_object()) {
    return FieldError(field, fmt::format("expected a policy name (Never, OnFailure) or an object, "
                                         "got {}",
                                         JsonTypeName(v.type())));
  }
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, field));
  std::string policy;
  int64_t limit = restart.limit;
  RETURN_IF_ERROR(r.String("policy", &policy, Presence::kRequired));
  ASSIGN_OR_RETURN(const JsonValue* codes, r.Value("exit_codes"));
  RETURN_IF_ERROR(r.Int("limit", &limit));
  ASSIGN_OR_RETURN(const JsonValue* backoff, r.Value("backoff"));
  RETURN_IF_ERROR(r.Finish());

  ASSIGN_OR_RETURN(restart.policy, ParseRestartPolicyName(policy, r.PathOf("policy"), true));
  std::string codes_field = r.PathOf("exit_codes");
  if (codes != nullptr) {
    if (!codes->is_array()) {
      return FieldError(codes_field, fmt::format("expected a list of exit codes, got {}",
                                                 JsonTypeName(codes->type())));
    }
    for (size_t i = 0; i < codes->items().size(); ++i) {
      const JsonValue& item = codes->items()[i];
      std::string f = fmt::format("{}[{}]", codes_field, i);
      int64_t code = 0;
      if (item.type() == JsonValue::Type::kInt) {
        code = item.as_int();
      } else if (item.type() == JsonValue::Type::kDouble && std::isfinite(item.as_double()) &&
                 std::trunc(item.as_double()) == item.as_double()) {
        code = static_cast<int64_t>(std::clamp(item.as_double(), -1.0, 256.0));
      } else {
        return FieldError(f, fmt::format("expected an integer, got {}", JsonTypeName(item.type())));
      }
      if (code < 0 || code > 255) {
        return FieldError(f, fmt::format("{} is not in 0..255", item.Dump()));
      }
      restart.exit_codes.push_back(static_cast<int>(code));
    }
  }
  if (restart.policy == RestartPolicy::kExitCodes && restart.exit_codes.empty()) {
    return FieldError(codes_field, "policy ExitCodes needs at least one exit code");
  }
  if (restart.policy != RestartPolicy::kExitCodes && !restart.exit_codes.empty()) {
    return FieldError(codes_field, "only used with policy ExitCodes");
  }
  if (limit < 0 || limit > kMaxRestartLimit) {
    return FieldError(r.PathOf("limit"),
                      fmt::format("{} is not in 0..{}", limit, kMaxRestartLimit));
  }
  restart.limit = static_cast<int>(limit);
  if (backoff != nullptr) {
    ASSIGN_OR_RETURN(restart.backoff_seconds, ParseDurationSeconds(*backoff, r.PathOf("backoff")));
    if (restart.backoff_seconds > kMaxBackoffSeconds) {
      return FieldError(r.PathOf("backoff"), fmt::format("{} is above the {} cap",
                                                         FormatDuration(restart.backoff_seconds),
                                                         FormatDuration(kMaxBackoffSeconds)));
    }
  }
  return restart;
}

StatusOr<sched::Toleration> ParseToleration(const JsonValue& v, const std::string& path) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  sched::Toleration t;
  std::string effect;
  RETURN_IF_ERROR(r.String("key", &t.key));
  RETURN_IF_ERROR(r.String("operator", &t.op));
  RETURN_IF_ERROR(r.String("value", &t.value));
  RETURN_IF_ERROR(r.String("effect", &effect));
  RETURN_IF_ERROR(r.Finish());
  if (t.op != "Equal" && t.op != "Exists") {
    return FieldError(r.PathOf("operator"), fmt::format("{} is not Equal or Exists", Quote(t.op)));
  }
  if (t.op == "Equal" && t.key.empty()) {
    return FieldError(r.PathOf("key"), "an Equal toleration needs a key");
  }
  if (t.op == "Exists" && !t.value.empty()) {
    return FieldError(r.PathOf("value"), "must be empty with operator Exists");
  }
  if (effect == "NoSchedule") {
    t.effect = sched::TaintEffect::kNoSchedule;
  } else if (effect == "PreferNoSchedule") {
    t.effect = sched::TaintEffect::kPreferNoSchedule;
  } else if (!effect.empty()) {
    return FieldError(
        r.PathOf("effect"),
        fmt::format("{} is not NoSchedule or PreferNoSchedule (or empty for both)", Quote(effect)));
  }
  return t;
}

struct RoleRule {
  std::string_view name;
  int max_replicas;  // 0 = no limit beyond kMaxReplicas
  bool exactly;      // replicas must equal max_replicas
};

// The framework's role names, per-role replica rules and required roles.
Status CheckFrameworkRoles(const JobSpec& spec, const std::string& path) {
  std::vector<RoleRule> rules;
  std::string roles_text;
  switch (spec.framework) {
    case Framework::kNone:
      return OkStatus();
    case Framework::kPyTorch:
      rules = {{"master", 1, true}, {"worker", 0, false}};
      roles_text = "master, worker";
      break;
    case Framework::kTensorFlow:
      rules = {{"chief", 1, true}, {"ps", 0, false}, {"worker", 0, false}, {"evaluator", 0, false}};
      roles_text = "chief, ps, worker, evaluator";
      break;
    case Framework::kMpi:
      rules = {{"launcher", 1, true}, {"worker", 0, false}};
      roles_text = "launcher, worker";
      break;
    case Framework::kXgboost:
      rules = {{"master", 1, true}, {"worker", 0, false}};
      roles_text = "master, worker";
      break;
  }
  std::string framework(FrameworkName(spec.framework));
  std::set<std::string> present;
  for (size_t i = 0; i < spec.roles.size(); ++i) {
    const Role& role = spec.roles[i];
    std::string rf = Join(path, fmt::format("roles[{}]", i));
    auto rule = std::find_if(rules.begin(), rules.end(),
                             [&](const RoleRule& x) { return x.name == role.name; });
    if (rule == rules.end()) {
      return FieldError(rf + ".name", fmt::format("{} is not a {} role ({})", Quote(role.name),
                                                  framework, roles_text));
    }
    if (rule->exactly && role.replicas != rule->max_replicas) {
      return FieldError(rf + ".replicas",
                        fmt::format("the {} {} has exactly {} replica, got {}", framework,
                                    role.name, rule->max_replicas, role.replicas));
    }
    present.insert(role.name);
  }
  std::string roles_field = Join(path, "roles");
  auto need = [&](std::string_view role) -> Status {
    if (present.count(std::string(role))) return OkStatus();
    return FieldError(roles_field,
                      fmt::format("framework {} needs a \"{}\" role", framework, role));
  };
  switch (spec.framework) {
    case Framework::kNone:
    case Framework::kPyTorch:
      break;  // master or worker, either is enough
    case Framework::kTensorFlow:
      if (!present.count("chief") && !present.count("worker")) {
        return FieldError(roles_field,
                          "framework tensorflow needs a \"chief\" or a \"worker\" role");
      }
      break;
    case Framework::kMpi:
      RETURN_IF_ERROR(need("launcher"));
      RETURN_IF_ERROR(need("worker"));
      break;
    case Framework::kXgboost:
      RETURN_IF_ERROR(need("master"));
      break;
  }
  return OkStatus();
}

std::string_view RestartPolicyName(RestartPolicy p) {
  switch (p) {
    case RestartPolicy::kNever:
      return "Never";
    case RestartPolicy::kOnFailure:
      return "OnFailure";
    case RestartPolicy::kExitCodes:
      return "ExitCodes";
  }
  return "Never";
}

void WriteStringMap(JsonWriter& w, std::string_view key,
                    const std::map<std::string, std::string>& m) {
  w.Key(key).BeginObject();
  for (const auto& [k, v] : m) w.Field(k, v);
  w.EndObject();
}

void WriteStringList(JsonWriter& w, std::string_view key, const std::vector<std::string>& list) {
  w.Key(key).BeginArray();
  for (const auto& s : list) w.String(s);
  w.EndArray();
}

bool SameToleration(const sched::Toleration& a, const sched::Toleration& b) {
  return a.key == b.key && a.op == b.op && a.value == b.value && a.effect == b.effect;
}

// {cpu, memory, gpu} with every dimension optional and 0 allowed; absent
// dimensions are left as they are in *out.
Status ParseQueueResources(const JsonValue& v, const std::string& field, sched::Resources* out) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, field));
  ASSIGN_OR_RETURN(const JsonValue* cpu, r.Value("cpu"));
  ASSIGN_OR_RETURN(const JsonValue* memory, r.Value("memory"));
  ASSIGN_OR_RETURN(const JsonValue* gpu, r.Value("gpu"));
  RETURN_IF_ERROR(r.Finish());
  if (cpu != nullptr) {
    ASSIGN_OR_RETURN(out->cpu_milli, ParseCpuMilliOrZero(*cpu, r.PathOf("cpu")));
  }
  if (memory != nullptr) {
    ASSIGN_OR_RETURN(out->memory_mib, ParseMemoryMibOrZero(*memory, r.PathOf("memory")));
  }
  if (gpu != nullptr) {
    ASSIGN_OR_RETURN(out->gpu_milli, ParseGpuMilliTotal(*gpu, r.PathOf("gpu")));
  }
  return OkStatus();
}

}  // namespace

std::string_view FrameworkName(Framework f) {
  switch (f) {
    case Framework::kNone:
      return "none";
    case Framework::kPyTorch:
      return "pytorch";
    case Framework::kMpi:
      return "mpi";
    case Framework::kTensorFlow:
      return "tensorflow";
    case Framework::kXgboost:
      return "xgboost";
  }
  return "none";
}

int JobSpec::TotalReplicas() const {
  int total = 0;
  for (const Role& r : roles) total += r.replicas;
  return total;
}

bool operator==(const JobSpec& a, const JobSpec& b) {
  return a.name == b.name && a.project == b.project && a.queue == b.queue &&
         a.priority == b.priority && a.labels == b.labels && a.framework == b.framework &&
         a.roles == b.roles && a.min_available == b.min_available && a.restart == b.restart &&
         a.timeout_seconds == b.timeout_seconds &&
         a.ttl_seconds_after_finished == b.ttl_seconds_after_finished &&
         a.node_selector == b.node_selector && a.tracking_experiment == b.tracking_experiment &&
         a.pipeline == b.pipeline &&
         std::equal(a.tolerations.begin(), a.tolerations.end(), b.tolerations.begin(),
                    b.tolerations.end(), SameToleration);
}

StatusOr<JobSpec> ParseJobSpec(const JsonValue& v, const std::string& path, bool trusted) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  JobSpec spec;
  std::string framework = "none";
  int64_t min_available = 0;
  RETURN_IF_ERROR(r.String("name", &spec.name, Presence::kRequired));
  RETURN_IF_ERROR(r.String("project", &spec.project));
  RETURN_IF_ERROR(r.String("queue", &spec.queue));
  RETURN_IF_ERROR(r.Int("priority", &spec.priority));
  RETURN_IF_ERROR(r.StringMap("labels", &spec.labels));
  RETURN_IF_ERROR(r.String("framework", &framework));
  ASSIGN_OR_RETURN(const JsonValue* roles, r.Value("roles", Presence::kRequired));
  RETURN_IF_ERROR(r.Int("min_available", &min_available));
  ASSIGN_OR_RETURN(const JsonValue* restart, r.Value("restart_policy"));
  ASSIGN_OR_RETURN(const JsonValue* timeout, r.Value("timeout"));
  ASSIGN_OR_RETURN(const JsonValue* ttl, r.Value("ttl_after_finished"));
  RETURN_IF_ERROR(r.StringMap("node_selector", &spec.node_selector));
  ASSIGN_OR_RETURN(const JsonValue* tolerations, r.Value("tolerations"));
  ASSIGN_OR_RETURN(const JsonValue* tracking, r.Value("tracking"));
  // Only Lathe sets `pipeline` (on a step's job); from users it stays an
  // unknown field, which Finish() rejects.
  const JsonValue* pipeline = nullptr;
  if (trusted) {
    ASSIGN_OR_RETURN(pipeline, r.Value("pipeline"));
  }
  RETURN_IF_ERROR(r.Finish());

  RETURN_IF_ERROR(CheckName(spec.name, r.PathOf("name")));
  if (!spec.project.empty()) RETURN_IF_ERROR(CheckName(spec.project, r.PathOf("project")));
  RETURN_IF_ERROR(CheckName(spec.queue, r.PathOf("queue")));
  if (spec.priority < -kMaxPriority || spec.priority > kMaxPriority) {
    return FieldError(r.PathOf("priority"), fmt::format("{} is not in {}..{}", spec.priority,
                                                        -kMaxPriority, kMaxPriority));
  }
  RETURN_IF_ERROR(CheckLabels(spec.labels, r.PathOf("labels")));
  ASSIGN_OR_RETURN(spec.framework, ParseFramework(framework, r.PathOf("framework")));

  std::string roles_field = r.PathOf("roles");
  if (!roles->is_array()) {
    return FieldError(roles_field,
                      fmt::format("expected a list of roles, got {}", JsonTypeName(roles->type())));
  }
  if (roles->items().empty()) return FieldError(roles_field, "a job needs at least one role");
  std::map<std::string, size_t> role_index;
  for (size_t i = 0; i < roles->items().size(); ++i) {
    std::string rf = fmt::format("{}[{}]", roles_field, i);
    ASSIGN_OR_RETURN(Role role, ParseRole(roles->items()[i], rf, spec.framework));
    auto [it, inserted] = role_index.emplace(role.name, i);
    if (!inserted) {
      return FieldError(rf + ".name", fmt::format("{} is already the name of {}[{}]",
                                                  Quote(role.name), roles_field, it->second));
    }
    spec.roles.push_back(std::move(role));
  }
  RETURN_IF_ERROR(CheckFrameworkRoles(spec, path));

  int total = spec.TotalReplicas();
  if (min_available < 0) {
    return FieldError(r.PathOf("min_available"),
                      fmt::format("{} must not be negative (0 means all replicas)", min_available));
  }
  if (min_available > total) {
    return FieldError(r.PathOf("min_available"),
                      fmt::format("{} is more than the job's {} replicas", min_available, total));
  }
  spec.min_available = static_cast<int>(min_available);

  if (restart != nullptr) {
    ASSIGN_OR_RETURN(spec.restart, ParseRestart(*restart, r.PathOf("restart_policy")));
  }
  if (timeout != nullptr) {
    ASSIGN_OR_RETURN(spec.timeout_seconds, ParseDurationSeconds(*timeout, r.PathOf("timeout")));
  }
  if (ttl != nullptr) {
    ASSIGN_OR_RETURN(spec.ttl_seconds_after_finished,
                     ParseDurationSeconds(*ttl, r.PathOf("ttl_after_finished")));
  }
  RETURN_IF_ERROR(CheckLabels(spec.node_selector, r.PathOf("node_selector")));
  if (tracking != nullptr) {
    ASSIGN_OR_RETURN(ObjectReader t, ObjectReader::Make(*tracking, r.PathOf("tracking")));
    std::string experiment;
    RETURN_IF_ERROR(t.String("experiment", &experiment, Presence::kRequired));
    RETURN_IF_ERROR(t.Finish());
    if (experiment.empty() || experiment.size() > kMaxExperimentName) {
      return FieldError(t.PathOf("experiment"),
                        fmt::format("must be 1..{} characters", kMaxExperimentName));
    }
    spec.tracking_experiment = std::move(experiment);
  }
  if (pipeline != nullptr) {
    ASSIGN_OR_RETURN(ObjectReader pr, ObjectReader::Make(*pipeline, r.PathOf("pipeline")));
    JobSpec::PipelineContext ctx;
    RETURN_IF_ERROR(pr.String("run_id", &ctx.run_id, Presence::kRequired));
    RETURN_IF_ERROR(pr.String("node", &ctx.node, Presence::kRequired));
    RETURN_IF_ERROR(pr.String("outputs_dir", &ctx.outputs_dir, Presence::kRequired));
    RETURN_IF_ERROR(pr.Finish());
    spec.pipeline = std::move(ctx);
  }
  if (tolerations != nullptr) {
    std::string tf = r.PathOf("tolerations");
    if (!tolerations->is_array()) {
      return FieldError(tf, fmt::format("expected a list of tolerations, got {}",
                                        JsonTypeName(tolerations->type())));
    }
    for (size_t i = 0; i < tolerations->items().size(); ++i) {
      ASSIGN_OR_RETURN(sched::Toleration t,
                       ParseToleration(tolerations->items()[i], fmt::format("{}[{}]", tf, i)));
      spec.tolerations.push_back(std::move(t));
    }
  }
  return spec;
}

void WriteJobSpec(JsonWriter& w, const JobSpec& spec) {
  w.BeginObject();
  w.Field("name", spec.name);
  w.Field("project", spec.project);
  w.Field("queue", spec.queue);
  w.Field("priority", spec.priority);
  WriteStringMap(w, "labels", spec.labels);
  w.Field("framework", FrameworkName(spec.framework));
  w.Key("roles").BeginArray();
  for (const Role& role : spec.roles) {
    w.BeginObject();
    w.Field("name", role.name);
    w.Field("replicas", role.replicas);
    WriteStringList(w, "command", role.command);
    WriteStringList(w, "args", role.args);
    WriteStringMap(w, "env", role.env);
    w.Key("resources").BeginObject();
    w.Field("cpu", FormatCpu(role.resources.cpu_milli));
    w.Field("memory", FormatMemory(role.resources.memory_mib));
    w.Field("gpu", FormatGpu(role.resources.gpu_milli));
    w.EndObject();
    w.Field("working_dir", role.working_dir);
    w.EndObject();
  }
  w.EndArray();
  w.Field("min_available", spec.min_available);
  w.Key("restart_policy").BeginObject();
  w.Field("policy", RestartPolicyName(spec.restart.policy));
  w.Key("exit_codes").BeginArray();
  for (int code : spec.restart.exit_codes) w.Int(code);
  w.EndArray();
  w.Field("limit", spec.restart.limit);
  w.Field("backoff", FormatDuration(spec.restart.backoff_seconds));
  w.EndObject();
  if (spec.timeout_seconds) w.Field("timeout", FormatDuration(*spec.timeout_seconds));
  if (spec.ttl_seconds_after_finished) {
    w.Field("ttl_after_finished", FormatDuration(*spec.ttl_seconds_after_finished));
  }
  WriteStringMap(w, "node_selector", spec.node_selector);
  if (spec.tracking_experiment) {
    w.Key("tracking").BeginObject().Field("experiment", *spec.tracking_experiment).EndObject();
  }
  if (spec.pipeline) {
    w.Key("pipeline").BeginObject();
    w.Field("run_id", spec.pipeline->run_id);
    w.Field("node", spec.pipeline->node);
    w.Field("outputs_dir", spec.pipeline->outputs_dir);
    w.EndObject();
  }
  w.Key("tolerations").BeginArray();
  for (const sched::Toleration& t : spec.tolerations) {
    w.BeginObject();
    w.Field("key", t.key);
    w.Field("operator", t.op);
    w.Field("value", t.value);
    if (t.effect) {
      w.Field("effect",
              *t.effect == sched::TaintEffect::kNoSchedule ? "NoSchedule" : "PreferNoSchedule");
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

sched::Job ToSchedJob(const JobSpec& spec, const std::string& job_id, int64_t submit_time) {
  sched::Job job;
  job.id = job_id;
  job.queue = spec.queue;
  job.priority = spec.priority;
  job.submit_time = submit_time;
  for (const Role& role : spec.roles) {
    job.groups.push_back({role.name, role.replicas, role.resources});
  }
  job.min_available = spec.min_available;
  job.node_selector = spec.node_selector;
  job.tolerations = spec.tolerations;
  return job;
}

// ---- queues

bool operator==(const QueueSpec& a, const QueueSpec& b) {
  return a.name == b.name && a.parent == b.parent && a.guarantee == b.guarantee &&
         a.ceiling.value == b.ceiling.value && a.weight == b.weight &&
         a.reclaimable == b.reclaimable;
}

StatusOr<QueueSpec> ParseQueueSpec(const JsonValue& v, const std::string& path) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  QueueSpec q;
  RETURN_IF_ERROR(r.String("name", &q.name, Presence::kRequired));
  RETURN_IF_ERROR(r.String("parent", &q.parent));
  ASSIGN_OR_RETURN(const JsonValue* guarantee, r.Value("guarantee"));
  ASSIGN_OR_RETURN(const JsonValue* ceiling, r.Value("ceiling"));
  RETURN_IF_ERROR(r.Int("weight", &q.weight));
  RETURN_IF_ERROR(r.Bool("reclaimable", &q.reclaimable));
  RETURN_IF_ERROR(r.Finish());

  RETURN_IF_ERROR(CheckName(q.name, r.PathOf("name")));
  if (!q.parent.empty()) {
    RETURN_IF_ERROR(CheckName(q.parent, r.PathOf("parent")));
    if (q.parent == q.name) {
      return FieldError(r.PathOf("parent"), "a queue cannot be its own parent");
    }
  }
  if (guarantee != nullptr) {
    RETURN_IF_ERROR(ParseQueueResources(*guarantee, r.PathOf("guarantee"), &q.guarantee));
  }
  if (ceiling != nullptr) {
    RETURN_IF_ERROR(ParseQueueResources(*ceiling, r.PathOf("ceiling"), &q.ceiling.value));
  }
  if (q.weight < 1 || q.weight > kMaxQueueWeight) {
    return FieldError(r.PathOf("weight"),
                      fmt::format("{} is not in 1..{}", q.weight, kMaxQueueWeight));
  }
  const sched::Resources& g = q.guarantee;
  const sched::Resources& c = q.ceiling.value;
  std::string gf = r.PathOf("guarantee"), cf = r.PathOf("ceiling");
  if (g.cpu_milli > c.cpu_milli) {
    return FieldError(gf + ".cpu", fmt::format("{} is above {}.cpu {}", FormatCpu(g.cpu_milli), cf,
                                               FormatCpu(c.cpu_milli)));
  }
  if (g.memory_mib > c.memory_mib) {
    return FieldError(gf + ".memory",
                      fmt::format("{} is above {}.memory {}", FormatMemory(g.memory_mib), cf,
                                  FormatMemory(c.memory_mib)));
  }
  if (g.gpu_milli > c.gpu_milli) {
    return FieldError(gf + ".gpu", fmt::format("{} is above {}.gpu {}", FormatGpu(g.gpu_milli), cf,
                                               FormatGpu(c.gpu_milli)));
  }
  return q;
}

void WriteQueueSpec(JsonWriter& w, const QueueSpec& spec) {
  constexpr int64_t kUnlimited = sched::Limit::kUnlimited;
  w.BeginObject();
  w.Field("name", spec.name);
  w.Field("parent", spec.parent);
  w.Key("guarantee").BeginObject();
  w.Field("cpu", FormatCpu(spec.guarantee.cpu_milli));
  w.Field("memory", FormatMemory(spec.guarantee.memory_mib));
  w.Field("gpu", FormatGpu(spec.guarantee.gpu_milli));
  w.EndObject();
  // Unlimited dimensions are left out (absent means unlimited).
  const sched::Resources& c = spec.ceiling.value;
  w.Key("ceiling").BeginObject();
  if (c.cpu_milli != kUnlimited) w.Field("cpu", FormatCpu(c.cpu_milli));
  if (c.memory_mib != kUnlimited) w.Field("memory", FormatMemory(c.memory_mib));
  if (c.gpu_milli != kUnlimited) w.Field("gpu", FormatGpu(c.gpu_milli));
  w.EndObject();
  w.Field("weight", spec.weight);
  w.Field("reclaimable", spec.reclaimable);
  w.EndObject();
}

sched::Queue ToSchedQueue(const QueueSpec& spec) {
  sched::Queue q;
  q.name = spec.name;
  q.parent = spec.parent;
  q.guarantee = spec.guarantee;
  q.ceiling = spec.ceiling;
  q.weight = spec.weight;
  q.reclaimable = spec.reclaimable;
  return q;
}

}  // namespace lathe::spec
