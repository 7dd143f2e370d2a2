// Pipeline specs: decoding with field-named errors, reference and
// dependency validation, the stable topological order, the canonical JSON
// form, params, and template rendering for the controller.
#include "spec/pipeline_spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <functional>
#include <queue>
#include <set>
#include <unordered_map>

namespace lathe::spec {
namespace {

constexpr size_t kMaxPipelineName = 63;
constexpr size_t kMaxStepName = 40;
constexpr size_t kMaxIdentifier = 64;  // param and output names
constexpr size_t kMaxDescription = 64 * 1024;
constexpr int64_t kMaxParallelism = 100'000;
constexpr double kMaxBackoffFactor = 10;
constexpr int64_t kMaxRetryBackoffSeconds = 86'400;
constexpr size_t kMaxExperimentName = 500;  // as job_spec.cc

constexpr std::string_view kRefForms =
    "params.NAME, steps.STEP.outputs.parameters.NAME, steps.STEP.outputs.artifacts.NAME, item, "
    "item.KEY, pipeline.run_id, pipeline.name, pipeline.version, outputs.parameters.NAME, "
    "outputs.artifacts.NAME";
constexpr std::string_view kWhenRefForms =
    "params.NAME, steps.STEP.outputs.parameters.NAME, item, item.KEY, pipeline.run_id, "
    "pipeline.name, pipeline.version";
constexpr std::string_view kResults =
    "succeeded, failed, errored, skipped, omitted; any_succeeded, all_failed for for_each steps";

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

Status CheckName(const std::string& value, const std::string& field, size_t max) {
  bool ok =
      !value.empty() && value.size() <= max && IsLowerAlnum(value.front()) &&
      IsLowerAlnum(value.back()) &&
      std::all_of(value.begin(), value.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
  if (ok) return OkStatus();
  return FieldError(field, fmt::format("{} is not a valid name (1-{} characters of a-z, 0-9 and "
                                       "'-', starting and ending with a letter or digit)",
                                       Quote(value), max));
}

// Param and output names: [A-Za-z_][A-Za-z0-9_]*.
Status CheckIdentifier(const std::string& value, const std::string& field) {
  auto head = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  bool ok = !value.empty() && value.size() <= kMaxIdentifier && head(value[0]) &&
            std::all_of(value.begin(), value.end(),
                        [&](char c) { return head(c) || (c >= '0' && c <= '9'); });
  if (ok) return OkStatus();
  return FieldError(field, fmt::format("{} is not a valid name (1-{} characters of letters, digits "
                                       "and '_', not starting with a digit)",
                                       Quote(value), kMaxIdentifier));
}

std::string_view Trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string> SplitDots(std::string_view s) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    parts.emplace_back(s.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) return parts;
    start = dot + 1;
  }
}

std::string JoinNames(const std::vector<std::string>& names) {
  if (names.empty()) return "none";
  std::string out;
  for (const std::string& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

// ---- references

struct Ref {
  enum class Kind {
    kUnknown,
    kParam,
    kStepParameter,
    kStepArtifact,
    kItem,
    kPipeline,
    kOwnParameter,
    kOwnArtifact,
  };
  Kind kind = Kind::kUnknown;
  std::string step;
  std::string name;               // param, output or pipeline field
  std::vector<std::string> keys;  // item.KEY.KEY…
};

Ref ClassifyRef(std::string_view text) {
  std::vector<std::string> p = SplitDots(text);
  Ref r;
  if (p[0] == "params" && p.size() == 2) {
    r.kind = Ref::Kind::kParam;
    r.name = p[1];
  } else if (p[0] == "steps" && p.size() == 5 && p[2] == "outputs" &&
             (p[3] == "parameters" || p[3] == "artifacts")) {
    r.kind = p[3] == "parameters" ? Ref::Kind::kStepParameter : Ref::Kind::kStepArtifact;
    r.step = p[1];
    r.name = p[4];
  } else if (p[0] == "item") {
    r.kind = Ref::Kind::kItem;
    r.keys.assign(p.begin() + 1, p.end());
  } else if (p[0] == "pipeline" && p.size() == 2 &&
             (p[1] == "run_id" || p[1] == "name" || p[1] == "version")) {
    r.kind = Ref::Kind::kPipeline;
    r.name = p[1];
  } else if (p[0] == "outputs" && p.size() == 3 && (p[1] == "parameters" || p[1] == "artifacts")) {
    r.kind = p[1] == "parameters" ? Ref::Kind::kOwnParameter : Ref::Kind::kOwnArtifact;
    r.name = p[2];
  }
  return r;
}

struct TemplateRef {
  std::string ref;
  size_t begin = 0;  // offset of "{{"
  size_t end = 0;    // one past "}}"
};

// Every `{{ ref }}` in `text`. Linear: each step moves past a "}}".
StatusOr<std::vector<TemplateRef>> ScanTemplate(std::string_view text, const std::string& field) {
  std::vector<TemplateRef> out;
  size_t pos = 0;
  while (true) {
    size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) return out;
    size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      return FieldError(field, fmt::format("unterminated \"{{{{\" at offset {} (a template "
                                           "string cannot hold a literal \"{{{{\")",
                                           open));
    }
    std::string_view inner = Trim(text.substr(open + 2, close - open - 2));
    if (!IsRefText(inner)) {
      return FieldError(field,
                        fmt::format("{} at offset {} is not a reference ({})",
                                    Quote(text.substr(open, close + 2 - open)), open, kRefForms));
    }
    out.push_back({std::string(inner), open, close + 2});
    pos = close + 2;
  }
}

std::string Braced(std::string_view ref) { return fmt::format("{{{{{}}}}}", ref); }

// The value `ref` stands for in `ctx`. Outputs, paths and pipeline names are
// strings. Messages do not name the field (callers add it).
StatusOr<JsonValue> LookupRef(std::string_view text, const TemplateContext& ctx) {
  Ref r = ClassifyRef(text);
  switch (r.kind) {
    case Ref::Kind::kParam: {
      const JsonValue* v = ctx.params != nullptr ? ctx.params->Find(r.name) : nullptr;
      if (v == nullptr) return InvalidArgumentError(fmt::format("unknown param {}", Quote(r.name)));
      return *v;
    }
    case Ref::Kind::kStepParameter:
    case Ref::Kind::kStepArtifact: {
      bool param = r.kind == Ref::Kind::kStepParameter;
      const auto* all = param ? ctx.step_parameters : ctx.step_artifacts;
      const char* what = param ? "output parameter" : "artifact";
      if (all != nullptr) {
        auto s = all->find(r.step);
        if (s != all->end()) {
          auto o = s->second.find(r.name);
          if (o != s->second.end()) return JsonValue::MakeString(o->second);
        }
      }
      return InvalidArgumentError(fmt::format("step {} has no {} {} (did it succeed?)",
                                              Quote(r.step), what, Quote(r.name)));
    }
    case Ref::Kind::kItem: {
      if (ctx.item == nullptr) {
        return InvalidArgumentError("item is only defined in a for_each step");
      }
      const JsonValue* v = ctx.item;
      std::string path = "item";
      for (const std::string& key : r.keys) {
        const JsonValue* next = v->is_object() ? v->Find(key) : nullptr;
        if (next == nullptr) {
          return InvalidArgumentError(
              v->is_object()
                  ? fmt::format("{} has no member {}", path, Quote(key))
                  : fmt::format("{} is {}, not an object", path, JsonTypeName(v->type())));
        }
        path += "." + key;
        v = next;
      }
      return *v;
    }
    case Ref::Kind::kPipeline:
      if (r.name == "version") return JsonValue::MakeInt(ctx.pipeline_version);
      return JsonValue::MakeString(r.name == "run_id" ? ctx.run_id : ctx.pipeline_name);
    case Ref::Kind::kOwnParameter:
    case Ref::Kind::kOwnArtifact:
      if (ctx.outputs_dir.empty()) {
        return InvalidArgumentError("this node has no outputs directory");
      }
      return JsonValue::MakeString(
          fmt::format("{}/{}/{}", ctx.outputs_dir,
                      r.kind == Ref::Kind::kOwnParameter ? "parameters" : "artifacts", r.name));
    case Ref::Kind::kUnknown:
      break;
  }
  return InvalidArgumentError(fmt::format("unknown reference (use {})", kRefForms));
}

std::string RenderValue(const JsonValue& v) { return v.is_string() ? v.as_string() : v.Dump(); }

ExprValue ToExprValue(const JsonValue& v) {
  switch (v.type()) {
    case JsonValue::Type::kBool:
      return ExprValue::Bool(v.as_bool());
    case JsonValue::Type::kInt:
    case JsonValue::Type::kDouble:
      return ExprValue::Number(v.as_double());
    case JsonValue::Type::kString:
      return ExprValue::String(v.as_string());
    default:
      return ExprValue::String(v.Dump());
  }
}

// Calls fn(field, string) for every templated string of a job, with the
// field path as the document spells it. JobT is JobSpec or const JobSpec.
template <typename JobT, typename Fn>
Status VisitTemplateStrings(JobT& job, bool shorthand, const std::string& path, const Fn& fn) {
  for (size_t r = 0; r < job.roles.size(); ++r) {
    auto& role = job.roles[r];
    std::string base = shorthand ? path : Join(path, fmt::format("roles[{}]", r));
    std::string command = Join(base, "command");
    // A string command became {/bin/sh, -c, text}: name the text `command`.
    bool shell =
        role.command.size() == 3 && role.command[0] == "/bin/sh" && role.command[1] == "-c";
    for (size_t i = 0; i < role.command.size(); ++i) {
      RETURN_IF_ERROR(
          fn(shell && i == 2 ? command : fmt::format("{}[{}]", command, i), role.command[i]));
    }
    for (size_t i = 0; i < role.args.size(); ++i) {
      RETURN_IF_ERROR(fn(fmt::format("{}[{}]", Join(base, "args"), i), role.args[i]));
    }
    for (auto& [key, value] : role.env) RETURN_IF_ERROR(fn(Join(Join(base, "env"), key), value));
    RETURN_IF_ERROR(fn(Join(base, "working_dir"), role.working_dir));
  }
  if (job.tracking_experiment) {
    RETURN_IF_ERROR(fn(Join(path, "tracking.experiment"), *job.tracking_experiment));
  }
  return OkStatus();
}

// ---- params

StatusOr<ParamType> ParseParamType(const std::string& s, const std::string& field) {
  for (ParamType t : {ParamType::kString, ParamType::kInt, ParamType::kFloat, ParamType::kBool,
                      ParamType::kList}) {
    if (s == ParamTypeName(t)) return t;
  }
  return FieldError(
      field, fmt::format("{} is not a param type (string, int, float, bool, list)", Quote(s)));
}

// The param-type spelling of a JSON value's type, for "expected int, got string".
std::string_view ValueTypeName(const JsonValue& v) {
  switch (v.type()) {
    case JsonValue::Type::kNull:
      return "null";
    case JsonValue::Type::kBool:
      return "bool";
    case JsonValue::Type::kInt:
      return "int";
    case JsonValue::Type::kDouble:
      return "float";
    case JsonValue::Type::kString:
      return "string";
    case JsonValue::Type::kArray:
      return "list";
    case JsonValue::Type::kObject:
      return "object";
  }
  return "value";
}

bool HasParamType(ParamType t, const JsonValue& v) {
  switch (t) {
    case ParamType::kString:
      return v.is_string();
    case ParamType::kInt:
      return v.type() == JsonValue::Type::kInt;
    case ParamType::kFloat:
      return v.is_number();
    case ParamType::kBool:
      return v.type() == JsonValue::Type::kBool;
    case ParamType::kList:
      return v.is_array();
  }
  return false;
}

Status ParamTypeError(ParamType t, const JsonValue& v, const std::string& field) {
  std::string shown = v.is_string() ? " " + Quote(v.as_string()) : "";
  return FieldError(
      field, fmt::format("expected {}, got {}{}", ParamTypeName(t), ValueTypeName(v), shown));
}

// A command-line string as a value of type `t`; nullopt when it is not one.
std::optional<JsonValue> CoerceString(ParamType t, const std::string& s) {
  if (t == ParamType::kString) return JsonValue::MakeString(s);
  if (t == ParamType::kBool) {
    if (s == "true") return JsonValue::MakeBool(true);
    if (s == "false") return JsonValue::MakeBool(false);
    return std::nullopt;
  }
  std::string_view text = Trim(s);
  if (text.empty()) return std::nullopt;
  StatusOr<JsonValue> v = ParseJson(text);
  if (!v.ok() || !HasParamType(t, *v)) return std::nullopt;
  if (t == ParamType::kFloat) return JsonValue::MakeDouble(v->as_double());
  return std::move(v).value();
}

StatusOr<ParamSpec> ParseParam(const JsonValue& v, const std::string& path) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  ParamSpec p;
  std::string type = "string";
  RETURN_IF_ERROR(r.String("name", &p.name, Presence::kRequired));
  RETURN_IF_ERROR(r.String("type", &type));
  ASSIGN_OR_RETURN(const JsonValue* def, r.Value("default"));
  RETURN_IF_ERROR(r.String("description", &p.description));
  RETURN_IF_ERROR(r.Finish());
  RETURN_IF_ERROR(CheckIdentifier(p.name, r.PathOf("name")));
  ASSIGN_OR_RETURN(p.type, ParseParamType(type, r.PathOf("type")));
  if (def != nullptr) {
    if (!HasParamType(p.type, *def)) return ParamTypeError(p.type, *def, r.PathOf("default"));
    p.default_value = *def;
  }
  if (p.description.size() > kMaxDescription) {
    return FieldError(r.PathOf("description"),
                      fmt::format("is longer than {} bytes", kMaxDescription));
  }
  return p;
}

// ---- steps

enum class Where { kJob, kWhen, kForEach };

// One reference a step makes, with where it is written (for errors).
struct RefUse {
  std::string ref;
  std::string field;
  std::optional<size_t> offset;  // set in expressions
  Where where = Where::kJob;
};

std::string Located(const RefUse& u) {
  if (u.offset) return fmt::format(" (at offset {})", *u.offset);
  return fmt::format(" (in {})", Braced(u.ref));
}

struct ParsedStep {
  StepSpec spec;
  std::string path;  // "steps[2]" or "on_exit"
  bool is_exit = false;
  std::vector<RefUse> uses;
};

// Errors of the shorthand's role ("steps[0].roles[0].command") are named as
// the user wrote them ("steps[0].command").
Status RenameShorthandError(const Status& s, const std::string& path) {
  std::string from = Join(path, "roles[0]");
  const std::string& f = s.field();
  if (f.size() <= from.size() || f.compare(0, from.size(), from) != 0 || f[from.size()] != '.') {
    return s;
  }
  std::string renamed = path + f.substr(from.size());
  if (path.empty()) renamed.erase(0, 1);
  std::string message = s.message();
  if (message.compare(0, f.size(), f) == 0) message = renamed + message.substr(f.size());
  return Status(s.code(), std::move(message), std::move(renamed));
}

Status ParseOutputs(const JsonValue& v, const std::string& path, StepSpec* step) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  RETURN_IF_ERROR(r.StringList("parameters", &step->output_parameters));
  RETURN_IF_ERROR(r.StringList("artifacts", &step->output_artifacts));
  RETURN_IF_ERROR(r.Finish());
  for (auto [key, names] : {std::pair{"parameters", &step->output_parameters},
                            std::pair{"artifacts", &step->output_artifacts}}) {
    std::string field = r.PathOf(key);
    if (names->size() > kMaxStepOutputs) {
      return FieldError(field, fmt::format("more than {} names", kMaxStepOutputs));
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < names->size(); ++i) {
      std::string f = fmt::format("{}[{}]", field, i);
      RETURN_IF_ERROR(CheckIdentifier((*names)[i], f));
      if (!seen.insert((*names)[i]).second) {
        return FieldError(f, fmt::format("{} is listed twice", Quote((*names)[i])));
      }
    }
  }
  return OkStatus();
}

StatusOr<RetryOn> ParseRetryOn(const std::string& s, const std::string& field) {
  for (RetryOn o : {RetryOn::kFailure, RetryOn::kError, RetryOn::kAll}) {
    if (s == RetryOnName(o)) return o;
  }
  return FieldError(field, fmt::format("{} is not failure, error or all", Quote(s)));
}

StatusOr<RetrySpec> ParseRetry(const JsonValue& v, const std::string& path) {
  RetrySpec retry;
  int64_t limit = 0;
  std::string limit_field = path;
  if (v.is_number()) {
    // `retry: 2` is the limit alone.
    if (v.type() != JsonValue::Type::kInt) {
      return FieldError(path, fmt::format("expected an integer or an object, got {}", v.Dump()));
    }
    limit = v.as_int();
  } else {
    if (!v.is_object()) {
      return FieldError(
          path, fmt::format("expected a retry limit or an object, got {}", JsonTypeName(v.type())));
    }
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
    std::string on = std::string(RetryOnName(retry.on));
    RETURN_IF_ERROR(r.Int("limit", &limit));
    RETURN_IF_ERROR(r.String("on", &on));
    ASSIGN_OR_RETURN(const JsonValue* backoff, r.Value("backoff"));
    RETURN_IF_ERROR(r.Double("factor", &retry.backoff_factor));
    ASSIGN_OR_RETURN(const JsonValue* max_backoff, r.Value("max_backoff"));
    RETURN_IF_ERROR(r.Finish());
    limit_field = r.PathOf("limit");
    ASSIGN_OR_RETURN(retry.on, ParseRetryOn(on, r.PathOf("on")));
    if (backoff != nullptr) {
      ASSIGN_OR_RETURN(retry.backoff_seconds, ParseDurationSeconds(*backoff, r.PathOf("backoff")));
      if (retry.backoff_seconds > kMaxRetryBackoffSeconds) {
        return FieldError(
            r.PathOf("backoff"),
            fmt::format("{} is above the {} cap", FormatDuration(retry.backoff_seconds),
                        FormatDuration(kMaxRetryBackoffSeconds)));
      }
    }
    if (!(retry.backoff_factor >= 1 && retry.backoff_factor <= kMaxBackoffFactor)) {
      return FieldError(r.PathOf("factor"),
                        fmt::format("{} is not in 1..{}", retry.backoff_factor, kMaxBackoffFactor));
    }
    if (max_backoff != nullptr) {
      ASSIGN_OR_RETURN(retry.max_backoff_seconds,
                       ParseDurationSeconds(*max_backoff, r.PathOf("max_backoff")));
      if (retry.max_backoff_seconds > kMaxRetryBackoffSeconds) {
        return FieldError(
            r.PathOf("max_backoff"),
            fmt::format("{} is above the {} cap", FormatDuration(retry.max_backoff_seconds),
                        FormatDuration(kMaxRetryBackoffSeconds)));
      }
      if (retry.max_backoff_seconds < retry.backoff_seconds) {
        return FieldError(
            r.PathOf("max_backoff"),
            fmt::format("{} is below backoff {}", FormatDuration(retry.max_backoff_seconds),
                        FormatDuration(retry.backoff_seconds)));
      }
    } else {
      // A long first backoff raises the default cap rather than erroring.
      retry.max_backoff_seconds = std::max(retry.max_backoff_seconds, retry.backoff_seconds);
    }
  }
  if (limit < 0 || limit > kMaxRetryLimit) {
    return FieldError(limit_field, fmt::format("{} is not in 0..{}", limit, kMaxRetryLimit));
  }
  retry.limit = static_cast<int>(limit);
  return retry;
}

StatusOr<CacheSpec> ParseCache(const JsonValue& v, const std::string& path) {
  CacheSpec cache;
  if (v.type() == JsonValue::Type::kBool) {
    cache.enabled = v.as_bool();
    return cache;
  }
  if (!v.is_object()) {
    return FieldError(
        path, fmt::format("expected a boolean or an object, got {}", JsonTypeName(v.type())));
  }
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  RETURN_IF_ERROR(r.Bool("enabled", &cache.enabled));
  ASSIGN_OR_RETURN(const JsonValue* max_age, r.Value("max_age"));
  RETURN_IF_ERROR(r.Finish());
  if (max_age != nullptr) {
    ASSIGN_OR_RETURN(cache.max_age_seconds, ParseDurationSeconds(*max_age, r.PathOf("max_age")));
  }
  return cache;
}

bool IsStepKey(std::string_view k) {
  return k == "name" || k == "depends" || k == "when" || k == "for_each" || k == "parallelism" ||
         k == "outputs" || k == "retry" || k == "timeout" || k == "cache" || k == "optional";
}

bool IsShorthandKey(std::string_view k) {
  return k == "command" || k == "args" || k == "env" || k == "resources" || k == "working_dir";
}

// Decodes one step and checks what can be checked without the other steps:
// fields, names, the job template, expression and template syntax. The
// references it makes are collected in `uses` for CheckReferences.
StatusOr<ParsedStep> ParseStep(const JsonValue& v, const std::string& path, bool is_exit) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  ParsedStep ps;
  ps.path = path;
  ps.is_exit = is_exit;
  StepSpec& step = ps.spec;
  int64_t parallelism = 0;
  RETURN_IF_ERROR(r.String("name", &step.name, Presence::kRequired));
  ASSIGN_OR_RETURN(const JsonValue* depends, r.Value("depends"));
  ASSIGN_OR_RETURN(const JsonValue* when, r.Value("when"));
  ASSIGN_OR_RETURN(const JsonValue* for_each, r.Value("for_each"));
  RETURN_IF_ERROR(r.Int("parallelism", &parallelism));
  ASSIGN_OR_RETURN(const JsonValue* outputs, r.Value("outputs"));
  ASSIGN_OR_RETURN(const JsonValue* retry, r.Value("retry"));
  ASSIGN_OR_RETURN(const JsonValue* timeout, r.Value("timeout"));
  ASSIGN_OR_RETURN(const JsonValue* cache, r.Value("cache"));
  RETURN_IF_ERROR(r.Bool("optional", &step.optional));
  RETURN_IF_ERROR(CheckName(step.name, r.PathOf("name"), kMaxStepName));

  // The rest of the object is the job template (ParseJobSpec rejects what
  // it does not know), written either with roles or with the shorthand.
  std::vector<JsonValue::Member> job_members, role_members;
  job_members.emplace_back("name", JsonValue::MakeString(step.name));
  bool has_roles = false;
  for (const JsonValue::Member& m : v.members()) {
    if (IsStepKey(m.first)) continue;
    if (m.first == "project") {
      return FieldError(r.PathOf("project"),
                        "not allowed in a step (step jobs run in the pipeline's project)");
    }
    if (IsShorthandKey(m.first)) {
      role_members.push_back(m);
      continue;
    }
    if (m.first == "roles" && !m.second.is_null()) has_roles = true;
    job_members.push_back(m);
  }
  if (!role_members.empty()) {
    if (has_roles) {
      return FieldError(r.PathOf(role_members[0].first),
                        "not allowed together with roles (give command, args, env, resources "
                        "and working_dir inside each role)");
    }
    const JsonValue* framework = v.Find("framework");
    if (framework != nullptr && framework->is_string() && framework->as_string() != "none") {
      return FieldError(r.PathOf("framework"),
                        "a step with a command runs one role \"main\" (framework none); give "
                        "roles for a distributed job");
    }
    role_members.insert(role_members.begin(), {"name", JsonValue::MakeString("main")});
    job_members.emplace_back(
        "roles", JsonValue::MakeArray({JsonValue::MakeObject(std::move(role_members))}));
    step.job_shorthand = true;
  } else if (!has_roles) {
    return FieldError(r.PathOf("command"),
                      "required: a string (run by /bin/sh -c) or a list of strings (or give "
                      "roles)");
  }
  StatusOr<JobSpec> job = ParseJobSpec(JsonValue::MakeObject(std::move(job_members)), path);
  if (!job.ok()) {
    return step.job_shorthand ? RenameShorthandError(job.status(), path) : job.status();
  }
  step.job = std::move(job).value();
  for (const auto& [key, value] : step.job.labels) {
    if (value.find("{{") != std::string::npos) {
      return FieldError(Join(r.PathOf("labels"), key), "templates are not expanded in labels");
    }
  }
  if (step.job.tracking_experiment && step.job.tracking_experiment->size() > kMaxExperimentName) {
    return FieldError(r.PathOf("tracking.experiment"),
                      fmt::format("must be 1..{} characters", kMaxExperimentName));
  }
  if (timeout != nullptr) {
    ASSIGN_OR_RETURN(int64_t t, ParseDurationSeconds(*timeout, r.PathOf("timeout")));
    step.timeout_seconds = t;
    step.job.timeout_seconds = t;
  }
  RETURN_IF_ERROR(
      VisitTemplateStrings(step.job, step.job_shorthand, path,
                           [&](const std::string& f, const std::string& s) -> Status {
                             ASSIGN_OR_RETURN(std::vector<TemplateRef> refs, ScanTemplate(s, f));
                             for (TemplateRef& t : refs)
                               ps.uses.push_back({std::move(t.ref), f, std::nullopt, Where::kJob});
                             return OkStatus();
                           }));

  if (outputs != nullptr) RETURN_IF_ERROR(ParseOutputs(*outputs, r.PathOf("outputs"), &step));
  if (retry != nullptr) {
    ASSIGN_OR_RETURN(step.retry, ParseRetry(*retry, r.PathOf("retry")));
  }
  if (cache != nullptr) {
    ASSIGN_OR_RETURN(step.cache, ParseCache(*cache, r.PathOf("cache")));
  }

  if (for_each != nullptr) {
    std::string f = r.PathOf("for_each");
    if (for_each->is_array()) {
      step.for_each_list = *for_each;
    } else if (for_each->is_string()) {
      const std::string& text = for_each->as_string();
      ASSIGN_OR_RETURN(std::vector<TemplateRef> refs, ScanTemplate(text, f));
      bool single = refs.size() == 1 &&
                    Trim(std::string_view(text).substr(0, refs[0].begin)).empty() &&
                    Trim(std::string_view(text).substr(refs[0].end)).empty();
      if (!single) {
        return FieldError(f, fmt::format("{} is not one \"{{{{ref}}}}\" (for_each takes a list, "
                                         "\"{{{{params.NAME}}}}\" or "
                                         "\"{{{{steps.STEP.outputs.parameters.NAME}}}}\")",
                                         Quote(text)));
      }
      Ref::Kind kind = ClassifyRef(refs[0].ref).kind;
      if (kind != Ref::Kind::kParam && kind != Ref::Kind::kStepParameter) {
        return FieldError(f, fmt::format("for_each takes a list param or an upstream output "
                                         "parameter, not {}",
                                         Braced(refs[0].ref)));
      }
      step.for_each_template = text;
      ps.uses.push_back({refs[0].ref, f, std::nullopt, Where::kForEach});
    } else {
      return FieldError(f, fmt::format("expected a list or a \"{{{{ref}}}}\" string, got {}",
                                       JsonTypeName(for_each->type())));
    }
  }
  if (parallelism < 0) {
    return FieldError(r.PathOf("parallelism"),
                      fmt::format("{} must not be negative (0 means unlimited)", parallelism));
  }
  if (parallelism > kMaxParallelism) {
    return FieldError(r.PathOf("parallelism"),
                      fmt::format("{} is above {}", parallelism, kMaxParallelism));
  }
  if (parallelism > 0 && !step.fan_out()) {
    return FieldError(r.PathOf("parallelism"), "only used with for_each");
  }
  step.parallelism = static_cast<int>(parallelism);

  if (depends != nullptr) {
    std::string f = r.PathOf("depends");
    if (is_exit) return FieldError(f, "not allowed: the exit handler runs after every other step");
    if (!depends->is_string()) {
      return FieldError(f, fmt::format("expected an expression such as \"prep && "
                                       "train.succeeded\", got {}",
                                       JsonTypeName(depends->type())));
    }
    ASSIGN_OR_RETURN(step.depends, ParseExpr(depends->as_string(), f));
  }
  if (when != nullptr) {
    std::string f = r.PathOf("when");
    if (!when->is_string()) {
      return FieldError(f, fmt::format("expected an expression such as \"params.x > 0.5\", got {}",
                                       JsonTypeName(when->type())));
    }
    ASSIGN_OR_RETURN(step.when, ParseExpr(when->as_string(), f));
    step.when_text = when->as_string();
    for (size_t i = 0; i < step.when->refs().size(); ++i) {
      ps.uses.push_back({step.when->refs()[i], f, step.when->ref_offsets()[i], Where::kWhen});
    }
  }
  return ps;
}

bool Declares(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

struct PipelineIndex {
  std::unordered_map<std::string, const ParamSpec*> params;
  std::unordered_map<std::string, size_t> steps;  // name -> index in `parsed`
  const std::vector<ParsedStep>* parsed = nullptr;
  std::string exit_name;  // "" = no exit handler

  const ParamSpec* FindParam(const std::string& name) const {
    auto it = params.find(name);
    return it == params.end() ? nullptr : it->second;
  }
};

// How many (item, key) lookups the static check of `item.KEY` against a
// literal for_each list may make per step; past it, RenderTemplate reports
// a missing key when the node is rendered.
constexpr size_t kItemCheckBudget = 1'000'000;

// Checks one reference of `ps`; records the steps whose outputs it uses.
Status CheckUse(const ParsedStep& ps, const RefUse& use, const PipelineIndex& index,
                std::map<std::string, const RefUse*>* used_steps, size_t* item_budget) {
  const StepSpec& step = ps.spec;
  Ref r = ClassifyRef(use.ref);
  auto error = [&](const std::string& message) {
    return FieldError(use.field, message + Located(use));
  };
  switch (r.kind) {
    case Ref::Kind::kParam: {
      const ParamSpec* p = index.FindParam(r.name);
      if (p == nullptr) return error(fmt::format("unknown param {}", Quote(r.name)));
      if (use.where == Where::kForEach && p->type != ParamType::kList &&
          p->type != ParamType::kString) {
        return error(fmt::format("for_each needs a list param; params.{} is {}", r.name,
                                 ParamTypeName(p->type)));
      }
      return OkStatus();
    }
    case Ref::Kind::kStepParameter:
    case Ref::Kind::kStepArtifact: {
      if (r.step == step.name) {
        return error(
            fmt::format("a step cannot read its own outputs through steps.{} (write "
                        "them to {{{{outputs.parameters.NAME}}}})",
                        r.step));
      }
      if (!index.exit_name.empty() && r.step == index.exit_name) {
        return error(fmt::format("{} is the exit handler; other steps cannot use its outputs",
                                 Quote(r.step)));
      }
      auto it = index.steps.find(r.step);
      if (it == index.steps.end()) return error(fmt::format("unknown step {}", Quote(r.step)));
      const StepSpec& up = (*index.parsed)[it->second].spec;
      bool param = r.kind == Ref::Kind::kStepParameter;
      const std::vector<std::string>& declared = param ? up.output_parameters : up.output_artifacts;
      if (!Declares(declared, r.name)) {
        return error(fmt::format("step {} declares no output {} {} (it declares: {})",
                                 Quote(r.step), param ? "parameter" : "artifact", Quote(r.name),
                                 JoinNames(declared)));
      }
      if (!ps.is_exit) used_steps->emplace(r.step, &use);
      return OkStatus();
    }
    case Ref::Kind::kItem: {
      if (!step.fan_out()) return error("item is only defined in a for_each step");
      if (r.keys.empty() || !step.for_each_list) return OkStatus();
      // A literal list can be checked now: every item must have the keys.
      const std::vector<JsonValue>& items = step.for_each_list->items();
      size_t cost = items.size() * r.keys.size();
      if (cost > *item_budget) return OkStatus();
      *item_budget -= cost;
      for (size_t i = 0; i < items.size(); ++i) {
        const JsonValue* v = &items[i];
        for (const std::string& key : r.keys) {
          v = v->is_object() ? v->Find(key) : nullptr;
          if (v == nullptr) {
            return error(
                fmt::format("for_each item {} has no member {}", i, Quote(use.ref.substr(5))));
          }
        }
      }
      return OkStatus();
    }
    case Ref::Kind::kPipeline:
      return OkStatus();
    case Ref::Kind::kOwnParameter:
    case Ref::Kind::kOwnArtifact: {
      if (use.where != Where::kJob) {
        return error(
            fmt::format("{} is where the step writes an output; use it in the command, "
                        "args or env",
                        use.ref));
      }
      bool param = r.kind == Ref::Kind::kOwnParameter;
      const std::vector<std::string>& declared =
          param ? step.output_parameters : step.output_artifacts;
      if (!Declares(declared, r.name)) {
        return error(fmt::format("{} is not declared in this step's outputs.{}", Quote(r.name),
                                 param ? "parameters" : "artifacts"));
      }
      return OkStatus();
    }
    case Ref::Kind::kUnknown:
      break;
  }
  if (use.where == Where::kWhen) {
    std::string first = SplitDots(use.ref)[0];
    std::string hint = index.steps.count(first) || first == index.exit_name
                           ? "step results belong in depends"
                           : fmt::format("quote string literals: '{}'", use.ref);
    return FieldError(use.field, fmt::format("unknown reference {}{} (use {}; {})", Quote(use.ref),
                                             Located(use), kWhenRefForms, hint));
  }
  return FieldError(use.field, fmt::format("unknown reference {}{} (use {})", Quote(use.ref),
                                           Located(use), kRefForms));
}

// References of every kind, then `depends` and the steps it must mention.
// Fills depends_on.
Status CheckReferences(ParsedStep& ps, const PipelineIndex& index) {
  StepSpec& step = ps.spec;
  std::map<std::string, const RefUse*> used_steps;
  size_t item_budget = kItemCheckBudget;
  for (const RefUse& use : ps.uses) {
    RETURN_IF_ERROR(CheckUse(ps, use, index, &used_steps, &item_budget));
  }
  if (!step.depends) {
    step.depends_on.clear();
    for (const auto& [name, use] : used_steps) step.depends_on.push_back(name);
    return OkStatus();
  }
  std::string f = Join(ps.path, "depends");
  std::set<std::string> mentioned;
  const Expr& e = *step.depends;
  for (size_t i = 0; i < e.refs().size(); ++i) {
    const std::string& ref = e.refs()[i];
    std::string at = fmt::format(" (at offset {})", e.ref_offsets()[i]);
    std::vector<std::string> parts = SplitDots(ref);
    if (parts.size() > 2) {
      return FieldError(f, fmt::format("{} is not a step result{} (use STEP or STEP.RESULT: {})",
                                       Quote(ref), at, kResults));
    }
    const std::string& s = parts[0];
    if (s == step.name) return FieldError(f, fmt::format("a step cannot depend on itself{}", at));
    if (!index.exit_name.empty() && s == index.exit_name) {
      return FieldError(
          f, fmt::format("{} is the exit handler; steps cannot depend on it{}", Quote(s), at));
    }
    auto it = index.steps.find(s);
    if (it == index.steps.end()) {
      return FieldError(f, fmt::format("unknown step {}{}", Quote(s), at));
    }
    if (parts.size() == 2) {
      const std::string& result = parts[1];
      bool fan = result == "any_succeeded" || result == "all_failed";
      bool known = fan || result == "succeeded" || result == "failed" || result == "errored" ||
                   result == "skipped" || result == "omitted";
      if (!known) {
        return FieldError(
            f, fmt::format("{} is not a step result{} ({})", Quote(result), at, kResults));
      }
      if (fan && !(*index.parsed)[it->second].spec.fan_out()) {
        return FieldError(f, fmt::format("{}.{} is only for for_each steps{} ({} has no "
                                         "for_each)",
                                         s, result, at, Quote(s)));
      }
    }
    mentioned.insert(s);
  }
  for (const auto& [name, use] : used_steps) {
    if (!mentioned.count(name)) {
      return FieldError(use->field,
                        fmt::format("uses outputs of step {}, which depends does not mention "
                                    "(add {} to depends: reading outputs of a step you do not "
                                    "wait for is a race)",
                                    Quote(name), name));
    }
  }
  step.depends_on.assign(mentioned.begin(), mentioned.end());
  return OkStatus();
}

// Kahn's algorithm, taking the ready step written first each time, so the
// order is stable and sorting a sorted list changes nothing. On a cycle,
// names it from the step written first on it.
StatusOr<std::vector<size_t>> TopologicalOrder(const std::vector<ParsedStep>& steps,
                                               const PipelineIndex& index) {
  size_t n = steps.size();
  std::vector<size_t> waiting(n);
  std::vector<std::vector<size_t>> dependents(n);
  for (size_t i = 0; i < n; ++i) {
    waiting[i] = steps[i].spec.depends_on.size();
    for (const std::string& d : steps[i].spec.depends_on)
      dependents[index.steps.at(d)].push_back(i);
  }
  std::priority_queue<size_t, std::vector<size_t>, std::greater<size_t>> ready;
  for (size_t i = 0; i < n; ++i) {
    if (waiting[i] == 0) ready.push(i);
  }
  std::vector<size_t> order;
  order.reserve(n);
  std::vector<bool> done(n, false);
  while (!ready.empty()) {
    size_t i = ready.top();
    ready.pop();
    order.push_back(i);
    done[i] = true;
    for (size_t d : dependents[i]) {
      if (--waiting[d] == 0) ready.push(d);
    }
  }
  if (order.size() == n) return order;

  // Every step left waits on another step left, so walking "waits on" edges
  // from any of them must come back to a step already seen.
  size_t start = 0;
  while (done[start]) ++start;
  std::vector<size_t> walk;
  std::vector<size_t> position(n, SIZE_MAX);
  size_t u = start;
  while (position[u] == SIZE_MAX) {
    position[u] = walk.size();
    walk.push_back(u);
    for (const std::string& d : steps[u].spec.depends_on) {
      size_t j = index.steps.at(d);
      if (!done[j]) {
        u = j;
        break;
      }
    }
  }
  // walk[position[u]..] is the cycle in "waits on" order; reverse it into
  // the order steps would run, starting at the step written first.
  std::vector<size_t> cycle(walk.begin() + static_cast<std::ptrdiff_t>(position[u]), walk.end());
  std::reverse(cycle.begin(), cycle.end());
  std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
  std::string text;
  for (size_t i : cycle) text += steps[i].spec.name + " -> ";
  text += steps[cycle[0]].spec.name;
  const ParsedStep& first = steps[cycle[0]];
  std::string field = first.spec.depends ? Join(first.path, "depends") : first.path;
  return FieldError(field, fmt::format("cycle {}", text));
}

// ---- writing

void WriteStep(JsonWriter& w, const StepSpec& step) {
  w.BeginObject();
  w.Field("name", step.name);
  if (step.depends) w.Field("depends", step.depends->text());
  if (step.when) w.Field("when", step.when->text());
  if (step.for_each_list) {
    w.Key("for_each");
    step.for_each_list->Write(w);
  } else if (!step.for_each_template.empty()) {
    w.Field("for_each", step.for_each_template);
  }
  w.Field("parallelism", step.parallelism);
  w.Key("outputs").BeginObject();
  w.Key("parameters").BeginArray();
  for (const std::string& n : step.output_parameters) w.String(n);
  w.EndArray();
  w.Key("artifacts").BeginArray();
  for (const std::string& n : step.output_artifacts) w.String(n);
  w.EndArray();
  w.EndObject();
  w.Key("retry").BeginObject();
  w.Field("limit", step.retry.limit);
  w.Field("on", RetryOnName(step.retry.on));
  w.Field("backoff", FormatDuration(step.retry.backoff_seconds));
  w.Key("factor").Double(step.retry.backoff_factor);
  w.Field("max_backoff", FormatDuration(step.retry.max_backoff_seconds));
  w.EndObject();
  if (step.timeout_seconds) w.Field("timeout", FormatDuration(*step.timeout_seconds));
  w.Key("cache").BeginObject();
  w.Field("enabled", step.cache.enabled);
  if (step.cache.max_age_seconds) w.Field("max_age", FormatDuration(*step.cache.max_age_seconds));
  w.EndObject();
  w.Field("optional", step.optional);

  // The job template in the job's own canonical form, less what the step
  // owns (name, project, timeout); the shorthand's role is written flat.
  std::string job_json;
  JsonWriter jw(&job_json);
  WriteJobSpec(jw, step.job);
  StatusOr<JsonValue> job = ParseJson(job_json);
  assert(job.ok() && "WriteJobSpec wrote malformed JSON");
  if (job.ok()) {
    for (const JsonValue::Member& m : job->members()) {
      if (m.first == "name" || m.first == "project" || m.first == "timeout") continue;
      if (m.first == "roles" && step.job_shorthand && m.second.items().size() == 1) {
        for (const JsonValue::Member& rm : m.second.items()[0].members()) {
          if (rm.first == "name" || rm.first == "replicas") continue;
          w.Key(rm.first);
          rm.second.Write(w);
        }
        continue;
      }
      w.Key(m.first);
      m.second.Write(w);
    }
  }
  w.EndObject();
}

}  // namespace

std::string_view ParamTypeName(ParamType t) {
  switch (t) {
    case ParamType::kString:
      return "string";
    case ParamType::kInt:
      return "int";
    case ParamType::kFloat:
      return "float";
    case ParamType::kBool:
      return "bool";
    case ParamType::kList:
      return "list";
  }
  return "string";
}

std::string_view RetryOnName(RetryOn r) {
  switch (r) {
    case RetryOn::kFailure:
      return "failure";
    case RetryOn::kError:
      return "error";
    case RetryOn::kAll:
      return "all";
  }
  return "all";
}

const StepSpec* PipelineSpec::FindStep(std::string_view name) const {
  for (const StepSpec& s : steps) {
    if (s.name == name) return &s;
  }
  if (on_exit && on_exit->name == name) return &*on_exit;
  return nullptr;
}

StatusOr<PipelineSpec> ParsePipelineSpec(const JsonValue& v) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, ""));
  PipelineSpec spec;
  RETURN_IF_ERROR(r.String("name", &spec.name, Presence::kRequired));
  RETURN_IF_ERROR(r.String("project", &spec.project));
  RETURN_IF_ERROR(r.String("description", &spec.description));
  ASSIGN_OR_RETURN(const JsonValue* params, r.Value("params"));
  ASSIGN_OR_RETURN(const JsonValue* steps, r.Value("steps", Presence::kRequired));
  ASSIGN_OR_RETURN(const JsonValue* on_exit, r.Value("on_exit"));
  RETURN_IF_ERROR(r.Finish());

  RETURN_IF_ERROR(CheckName(spec.name, "name", kMaxPipelineName));
  if (!spec.project.empty()) RETURN_IF_ERROR(CheckName(spec.project, "project", kMaxPipelineName));
  if (spec.description.size() > kMaxDescription) {
    return FieldError("description", fmt::format("is longer than {} bytes", kMaxDescription));
  }

  if (params != nullptr) {
    if (!params->is_array()) {
      return FieldError(
          "params", fmt::format("expected a list of params, got {}", JsonTypeName(params->type())));
    }
    if (params->items().size() > kMaxPipelineParams) {
      return FieldError("params", fmt::format("more than {} params", kMaxPipelineParams));
    }
    std::map<std::string, size_t> seen;
    for (size_t i = 0; i < params->items().size(); ++i) {
      std::string path = fmt::format("params[{}]", i);
      ASSIGN_OR_RETURN(ParamSpec p, ParseParam(params->items()[i], path));
      auto [it, inserted] = seen.emplace(p.name, i);
      if (!inserted) {
        return FieldError(path + ".name", fmt::format("{} is already the name of params[{}]",
                                                      Quote(p.name), it->second));
      }
      spec.params.push_back(std::move(p));
    }
  }

  if (!steps->is_array()) {
    return FieldError("steps",
                      fmt::format("expected a list of steps, got {}", JsonTypeName(steps->type())));
  }
  if (steps->items().empty()) return FieldError("steps", "a pipeline needs at least one step");
  if (steps->items().size() > kMaxPipelineSteps) {
    return FieldError("steps", fmt::format("more than {} steps", kMaxPipelineSteps));
  }
  std::vector<ParsedStep> parsed;
  parsed.reserve(steps->items().size());
  PipelineIndex index;
  for (const ParamSpec& p : spec.params) index.params.emplace(p.name, &p);
  index.parsed = &parsed;
  for (size_t i = 0; i < steps->items().size(); ++i) {
    std::string path = fmt::format("steps[{}]", i);
    ASSIGN_OR_RETURN(ParsedStep ps, ParseStep(steps->items()[i], path, false));
    auto [it, inserted] = index.steps.emplace(ps.spec.name, i);
    if (!inserted) {
      return FieldError(path + ".name", fmt::format("{} is already the name of steps[{}]",
                                                    Quote(ps.spec.name), it->second));
    }
    parsed.push_back(std::move(ps));
  }
  std::optional<ParsedStep> exit;
  if (on_exit != nullptr) {
    ASSIGN_OR_RETURN(exit, ParseStep(*on_exit, "on_exit", true));
    auto it = index.steps.find(exit->spec.name);
    if (it != index.steps.end()) {
      return FieldError("on_exit.name", fmt::format("{} is already the name of steps[{}]",
                                                    Quote(exit->spec.name), it->second));
    }
    index.exit_name = exit->spec.name;
  }

  for (ParsedStep& ps : parsed) RETURN_IF_ERROR(CheckReferences(ps, index));
  if (exit) RETURN_IF_ERROR(CheckReferences(*exit, index));
  ASSIGN_OR_RETURN(std::vector<size_t> order, TopologicalOrder(parsed, index));

  spec.steps.reserve(parsed.size());
  for (size_t i : order) spec.steps.push_back(std::move(parsed[i].spec));
  if (exit) spec.on_exit = std::move(exit->spec);
  return spec;
}

void WritePipelineSpec(JsonWriter& w, const PipelineSpec& spec) {
  w.BeginObject();
  w.Field("name", spec.name);
  w.Field("project", spec.project);
  w.Field("description", spec.description);
  w.Key("params").BeginArray();
  for (const ParamSpec& p : spec.params) {
    w.BeginObject();
    w.Field("name", p.name);
    w.Field("type", ParamTypeName(p.type));
    if (p.default_value) {
      w.Key("default");
      p.default_value->Write(w);
    }
    w.Field("description", p.description);
    w.EndObject();
  }
  w.EndArray();
  w.Key("steps").BeginArray();
  for (const StepSpec& s : spec.steps) WriteStep(w, s);
  w.EndArray();
  if (spec.on_exit) {
    w.Key("on_exit");
    WriteStep(w, *spec.on_exit);
  }
  w.EndObject();
}

StatusOr<JsonValue> ResolveParams(const PipelineSpec& spec, const JsonValue& given,
                                  bool coerce_strings) {
  if (!given.is_null() && !given.is_object()) {
    return FieldError("params",
                      fmt::format("expected an object, got {}", JsonTypeName(given.type())));
  }
  for (const JsonValue::Member& m : given.members()) {
    bool declared = std::any_of(spec.params.begin(), spec.params.end(),
                                [&](const ParamSpec& p) { return p.name == m.first; });
    if (!declared) {
      std::vector<std::string> names;
      for (const ParamSpec& p : spec.params) names.push_back(p.name);
      return FieldError(Join("params", m.first),
                        fmt::format("not a param of pipeline {} (it declares: {})",
                                    Quote(spec.name), JoinNames(names)));
    }
  }
  std::vector<JsonValue::Member> out;
  out.reserve(spec.params.size());
  for (const ParamSpec& p : spec.params) {
    std::string field = Join("params", p.name);
    const JsonValue* v = given.is_object() ? given.Find(p.name) : nullptr;
    if (v == nullptr || v->is_null()) {
      if (!p.default_value) {
        return FieldError(
            field, fmt::format("required: the param has no default (a {})", ParamTypeName(p.type)));
      }
      out.emplace_back(p.name, *p.default_value);
      continue;
    }
    if (HasParamType(p.type, *v)) {
      out.emplace_back(p.name, *v);
      continue;
    }
    if (coerce_strings && v->is_string()) {
      std::optional<JsonValue> c = CoerceString(p.type, v->as_string());
      if (c) {
        out.emplace_back(p.name, std::move(*c));
        continue;
      }
    }
    return ParamTypeError(p.type, *v, field);
  }
  return JsonValue::MakeObject(std::move(out));
}

StatusOr<std::string> RenderTemplate(std::string_view text, const TemplateContext& ctx,
                                     const std::string& field) {
  ASSIGN_OR_RETURN(std::vector<TemplateRef> refs, ScanTemplate(text, field));
  std::string out;
  size_t pos = 0;
  for (const TemplateRef& t : refs) {
    out.append(text.substr(pos, t.begin - pos));
    StatusOr<JsonValue> v = LookupRef(t.ref, ctx);
    if (!v.ok()) {
      return Status(v.status().code(),
                    fmt::format("{}: {} at offset {}: {}", field, Braced(t.ref), t.begin,
                                v.status().message()),
                    field);
    }
    out += RenderValue(*v);
    pos = t.end;
    if (out.size() > kMaxRenderedBytes) break;
  }
  if (out.size() <= kMaxRenderedBytes) out.append(text.substr(pos));
  if (out.size() > kMaxRenderedBytes) {
    return FieldError(field,
                      fmt::format("the rendered text is longer than {} bytes", kMaxRenderedBytes));
  }
  if (out.find('\0') != std::string::npos) {
    return FieldError(field, "the rendered text contains a NUL character");
  }
  return out;
}

StatusOr<std::vector<std::string>> TemplateRefs(std::string_view text, const std::string& field) {
  ASSIGN_OR_RETURN(std::vector<TemplateRef> refs, ScanTemplate(text, field));
  std::vector<std::string> out;
  out.reserve(refs.size());
  for (TemplateRef& t : refs) out.push_back(std::move(t.ref));
  return out;
}

std::vector<std::string> StepInputRefs(const StepSpec& step) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& ref) {
    if (seen.insert(ref).second) out.push_back(ref);
  };
  auto scan = [&](std::string_view text) {
    StatusOr<std::vector<TemplateRef>> refs = ScanTemplate(text, "");
    // Parsed specs hold only well-formed templates; a hand-built one with
    // malformed braces contributes nothing here and fails at rendering.
    if (refs.ok()) {
      for (const TemplateRef& t : *refs) add(t.ref);
    }
  };
  VisitTemplateStrings(step.job, step.job_shorthand, "",
                       [&](const std::string&, const std::string& s) {
                         scan(s);
                         return OkStatus();
                       })
      .IgnoreError();
  if (step.when) {
    for (const std::string& ref : step.when->refs()) add(ref);
  }
  scan(step.for_each_template);
  return out;
}

StatusOr<JobSpec> RenderStepJob(const StepSpec& step, const TemplateContext& ctx,
                                const std::string& field) {
  JobSpec job = step.job;
  RETURN_IF_ERROR(VisitTemplateStrings(job, step.job_shorthand, field,
                                       [&](const std::string& f, std::string& s) -> Status {
                                         if (s.find("{{") == std::string::npos) return OkStatus();
                                         ASSIGN_OR_RETURN(s, RenderTemplate(s, ctx, f));
                                         return OkStatus();
                                       }));
  for (size_t r = 0; r < job.roles.size(); ++r) {
    if (!job.roles[r].command.empty() && job.roles[r].command[0].empty()) {
      std::string base = step.job_shorthand ? field : Join(field, fmt::format("roles[{}]", r));
      return FieldError(Join(base, "command[0]"), "the program is empty after rendering");
    }
  }
  if (job.tracking_experiment &&
      (job.tracking_experiment->empty() || job.tracking_experiment->size() > kMaxExperimentName)) {
    return FieldError(Join(field, "tracking.experiment"),
                      fmt::format("must be 1..{} characters after rendering", kMaxExperimentName));
  }
  return job;
}

StatusOr<bool> EvalWhen(const StepSpec& step, const TemplateContext& ctx,
                        const std::string& field) {
  if (!step.when) return true;
  RefResolver resolve = [&ctx](const std::string& ref) -> StatusOr<ExprValue> {
    StatusOr<JsonValue> v = LookupRef(ref, ctx);
    if (!v.ok()) {
      return Status(v.status().code(), fmt::format("{}: {}", ref, v.status().message()));
    }
    return ToExprValue(*v);
  };
  return EvalExpr(*step.when, resolve, field);
}

StatusOr<std::vector<JsonValue>> ResolveForEach(const StepSpec& step, const TemplateContext& ctx,
                                                size_t max_items, const std::string& field) {
  std::string f = field.empty() ? step.name + ".for_each" : field;
  auto check_size = [&](size_t n, std::string_view source) -> Status {
    if (n <= max_items) return OkStatus();
    return FieldError(
        f, fmt::format("{} has {} items, more than the limit of {}", source, n, max_items));
  };
  if (step.for_each_list) {
    RETURN_IF_ERROR(check_size(step.for_each_list->items().size(), "the list"));
    return step.for_each_list->items();
  }
  if (step.for_each_template.empty()) return FieldError(f, "the step has no for_each");
  ASSIGN_OR_RETURN(std::vector<TemplateRef> refs, ScanTemplate(step.for_each_template, f));
  if (refs.size() != 1) {
    return FieldError(f,
                      fmt::format("{} is not one \"{{{{ref}}}}\"", Quote(step.for_each_template)));
  }
  std::string source = Braced(refs[0].ref);
  StatusOr<JsonValue> v = LookupRef(refs[0].ref, ctx);
  if (!v.ok()) {
    return Status(v.status().code(), fmt::format("{}: {}: {}", f, source, v.status().message()), f);
  }
  if (v->is_string()) {
    // Output parameters (and string params) hold the list as JSON text.
    StatusOr<JsonValue> parsed = ParseJson(v->as_string());
    if (!parsed.ok() || !parsed->is_array()) {
      return FieldError(f,
                        fmt::format("{} is {}, not a JSON array", source, Quote(v->as_string())));
    }
    v = std::move(parsed);
  }
  if (!v->is_array()) {
    return FieldError(f, fmt::format("{} is {}, not a list", source, JsonTypeName(v->type())));
  }
  RETURN_IF_ERROR(check_size(v->items().size(), source));
  return v->items();
}

std::string NodeId(std::string_view step, std::optional<size_t> item) {
  if (!item) return std::string(step);
  return fmt::format("{}[{}]", step, *item);
}

}  // namespace lathe::spec
