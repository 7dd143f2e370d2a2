#include "cli/pipeline_commands.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include <fmt/core.h>

#include "api/tracking_codec.h"
#include "base/clock.h"
#include "base/json.h"
#include "cli/session.h"
#include "http/message.h"

namespace lathe::cli {
namespace {

using http::Method;

// `--param` flags one run takes at most.
constexpr size_t kMaxParams = 1000;

std::string Text(const JsonValue& object, const std::string& field) {
  const JsonValue* v = object.Find(field);
  return v != nullptr && v->is_string() ? v->as_string() : "";
}

int64_t Int(const JsonValue& object, const std::string& field) {
  const JsonValue* v = object.Find(field);
  return v != nullptr && v->type() == JsonValue::Type::kInt ? v->as_int() : 0;
}

bool Bool(const JsonValue& object, const std::string& field) {
  const JsonValue* v = object.Find(field);
  return v != nullptr && v->type() == JsonValue::Type::kBool && v->as_bool();
}

// --project, else $LATHE_PROJECT, else the spec's `project` (when a spec
// was read).
StatusOr<std::string> ResolveProject(const std::string& flag, const JsonValue* spec = nullptr) {
  if (!flag.empty()) return flag;
  if (const char* env = Env("LATHE_PROJECT")) return std::string(env);
  if (spec != nullptr && !Text(*spec, "project").empty()) return Text(*spec, "project");
  return InvalidArgumentError(
      spec != nullptr ? "--project: required (or set LATHE_PROJECT, or `project` in the spec)"
                      : "--project: required (or set LATHE_PROJECT)",
      "project");
}

std::string ProjectPath(const std::string& project) { return "/api/v1/projects/" + Seg(project); }
std::string PipelinePath(const std::string& project, const std::string& name) {
  return ProjectPath(project) + "/pipelines/" + Seg(name);
}
std::string RunPath(const std::string& project, const std::string& run) {
  return ProjectPath(project) + "/pipeline-runs/" + Seg(run);
}
std::string SchedulePath(const std::string& project, const std::string& name) {
  return ProjectPath(project) + "/schedules/" + Seg(name);
}

// A path with `?k=v&…` for the non-empty values.
std::string WithQuery(std::string path,
                      const std::vector<std::pair<std::string, std::string>>& query) {
  char sep = '?';
  for (const auto& [key, value] : query) {
    if (value.empty()) continue;
    path += sep + key + "=" + http::PercentEncode(value);
    sep = '&';
  }
  return path;
}

// The µs between two RFC 3339 fields of `object` ("" when `from` is unset;
// until now while `to` is unset).
std::string DurationText(const JsonValue& object, const std::string& from, const std::string& to) {
  auto from_ms = api::ParseRfc3339Millis(Text(object, from), from);
  if (!from_ms.ok()) return "";
  int64_t end_ms = SystemClock().NowMicros() / 1000;
  if (!Text(object, to).empty()) {
    auto to_ms = api::ParseRfc3339Millis(Text(object, to), to);
    if (!to_ms.ok()) return "";
    end_ms = *to_ms;
  }
  const int64_t ms = std::max<int64_t>(0, end_ms - *from_ms);
  if (ms < 10'000) return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000);
  const int64_t s = ms / 1000;
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s / 60) % 60);
}

// ---- columns and rows

const std::vector<Column>& PipelineColumns() {
  static const auto* const kCols = new std::vector<Column>{{"NAME", "name"},
                                                           {"LATEST", "latest_version"},
                                                           {"UPDATED", "updated_at"},
                                                           {"CREATED BY", "created_by"},
                                                           {"DESCRIPTION", "description"}};
  return *kCols;
}

const std::vector<Column>& VersionColumns() {
  static const auto* const kCols = new std::vector<Column>{{"VERSION", "version"},
                                                           {"CREATED", "created_at"},
                                                           {"CREATED BY", "created_by"},
                                                           {"CODE", "code"},
                                                           {"DIGEST", "digest"}};
  return *kCols;
}

const std::vector<Column>& RunColumns() {
  static const auto* const kCols = new std::vector<Column>{{"ID", "id"},
                                                           {"PIPELINE", "pipeline"},
                                                           {"VERSION", "version"},
                                                           {"STATE", "state"},
                                                           {"REASON", "reason"},
                                                           {"SCHEDULED", "scheduled_time"},
                                                           {"CREATED", "created_at"},
                                                           {"FINISHED", "finished_at"}};
  return *kCols;
}

const std::vector<Column>& ScheduleColumns() {
  static const auto* const kCols = new std::vector<Column>{
      {"NAME", "name"},         {"PIPELINE", "pipeline"},   {"WHEN", "when"},
      {"TIMEZONE", "timezone"}, {"PAUSED", "paused"},       {"CATCHUP", "catchup"},
      {"OVERLAP", "overlap"},   {"NEXT TICK", "next_tick"}, {"LAST TICK", "last_tick"}};
  return *kCols;
}

const std::vector<Column>& TickColumns() {
  static const auto* const kCols = new std::vector<Column>{
      {"TICK", "tick"},        {"STATE", "state"},         {"REASON", "reason"},
      {"RUN", "run_id"},       {"RUN STATE", "run_state"}, {"BACKFILL", "backfill_id"},
      {"ATTEMPTS", "attempts"}};
  return *kCols;
}

const std::vector<Column>& BackfillColumns() {
  static const auto* const kCols = new std::vector<Column>{{"ID", "id"},
                                                           {"FROM", "from"},
                                                           {"TO", "to"},
                                                           {"STATE", "state"},
                                                           {"TOTAL", "total"},
                                                           {"CREATED", "created"},
                                                           {"SUCCEEDED", "succeeded"},
                                                           {"FAILED", "failed"},
                                                           {"MAX CONCURRENCY", "max_concurrency"},
                                                           {"REPROCESS", "reprocess"}};
  return *kCols;
}

// A schedule as a table row: the spec's timing flattened to text.
JsonValue ScheduleRow(const JsonValue& s) {
  static const JsonValue kEmpty = JsonValue::MakeObject({});
  const JsonValue* spec = s.Find("spec");
  if (spec == nullptr || !spec->is_object()) spec = &kEmpty;
  std::string when = Text(*spec, "cron");
  if (when.empty()) {
    for (const char* key : {"interval", "interval_seconds"}) {
      const JsonValue* v = spec->Find(key);
      if (v == nullptr || v->is_null()) continue;
      when = "every " + (v->is_string() ? v->as_string() : v->Dump() + "s");
      break;
    }
  }
  auto field = [&](const char* key) {
    const JsonValue* v = spec->Find(key);
    return v != nullptr ? *v : JsonValue();
  };
  auto top = [&](const char* key) {
    const JsonValue* v = s.Find(key);
    return v != nullptr ? *v : JsonValue();
  };
  return JsonValue::MakeObject({
      {"name", top("name")},
      {"pipeline", top("pipeline")},
      {"when", JsonValue::MakeString(when)},
      {"timezone", field("timezone")},
      {"paused", top("paused")},
      {"catchup", field("catchup")},
      {"overlap", field("overlap")},
      {"next_tick", top("next_tick")},
      {"last_tick", top("last_tick")},
  });
}

// ---- printing one object

void PrintVersionCreated(Session& s, const JsonValue& v, std::ostream& out) {
  if (s.format != OutputFormat::kTable) return PrintObject(out, s.format, v, {});
  out << fmt::format("pipeline \"{}\" version {} ({})\n", Text(v, "pipeline"), Int(v, "version"),
                     Bool(v, "created") ? "new" : "unchanged");
}

void PrintRunStarted(Session& s, const JsonValue& run, bool wait, std::ostream& out) {
  if (s.format == OutputFormat::kTable) {
    out << fmt::format("pipeline run {} started (pipeline \"{}\" version {})\n", Text(run, "id"),
                       Text(run, "pipeline"), Int(run, "version"));
  } else if (!wait) {
    PrintObject(out, s.format, run, {});
  }
}

void PrintSchedule(Session& s, const JsonValue& sched, std::ostream& out) {
  if (s.format != OutputFormat::kTable) return PrintObject(out, s.format, sched, {});
  PrintObject(out, s.format, ScheduleRow(sched), ScheduleColumns());
}

// ---- waiting for a run

bool TerminalRunState(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "cancelled";
}

// "succeeded (cached)", "failed (Error: exit code 1)".
std::string NodeChange(const JsonValue& node) {
  std::string text = Text(node, "state");
  if (Bool(node, "cached")) {
    text += " (cached)";
  } else if (text != "running" && text != "succeeded" && !Text(node, "reason").empty()) {
    text += " (" + Text(node, "reason");
    if (!Text(node, "message").empty()) text += ": " + Text(node, "message");
    text += ")";
  }
  return text;
}

// Polls the run until it is terminal, printing each node's state changes as
// they are seen (table output); OK only when it succeeded.
Status WaitForRun(Session& s, const std::string& project, const std::string& run_id,
                  std::ostream& out) {
  std::map<std::string, std::string> seen;  // node -> last printed change
  auto pause = std::chrono::milliseconds(100);
  while (true) {
    ASSIGN_OR_RETURN(JsonValue run, s.api->Call(Method::kGet, RunPath(project, run_id)));
    if (s.format == OutputFormat::kTable) {
      if (const JsonValue* nodes = run.Find("nodes"); nodes != nullptr && nodes->is_array()) {
        for (const JsonValue& n : nodes->items()) {
          const std::string change = NodeChange(n);
          std::string& last = seen[Text(n, "node")];
          if (change == last) continue;
          last = change;
          out << fmt::format("  {}: {}\n", Text(n, "node"), change);
          out.flush();
        }
      }
    }
    const std::string state = Text(run, "state");
    if (TerminalRunState(state)) {
      if (s.format == OutputFormat::kTable) {
        out << fmt::format("pipeline run {} {}", run_id, state);
        if (!Text(run, "reason").empty()) out << " (" << Text(run, "reason") << ")";
        out << "\n";
      } else {
        PrintObject(out, s.format, run, {});
      }
      if (state == "succeeded") return OkStatus();
      const std::string why =
          Text(run, "message").empty() ? Text(run, "reason") : Text(run, "message");
      return FailedPreconditionError(
          fmt::format("pipeline run {} ended {}{}", run_id, state, why.empty() ? "" : ": " + why));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 3 / 2, std::chrono::milliseconds(1000));
  }
}

// Uploads `code_dir` (if any) and creates the pipeline version; returns the
// version object.
StatusOr<JsonValue> CreateVersion(Session& s, const std::string& project, const JsonValue& spec,
                                  const std::string& code_dir, const std::string& archive) {
  std::string code;
  if (!code_dir.empty()) {
    ASSIGN_OR_RETURN(JsonValue uploaded, s.api->Call(Method::kPut, ProjectPath(project) + "/code",
                                                     archive, "application/gzip"));
    code = Text(uploaded, "digest");
  }
  const std::string body = JsonBody([&](JsonWriter& w) {
    w.BeginObject().Key("spec");
    spec.Write(w);
    if (!code.empty()) w.Field("code", code);
    w.EndObject();
  });
  return s.api->Call(Method::kPost, ProjectPath(project) + "/pipelines", body);
}

StatusOr<JsonValue> ParamsFromFlags(const std::vector<std::string>& flags) {
  if (flags.size() > kMaxParams) {
    return InvalidArgumentError(
        fmt::format("--param: {} given; at most {}", flags.size(), kMaxParams), "param");
  }
  std::vector<JsonValue::Member> members;
  std::set<std::string> names;
  for (const std::string& kv : flags) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgumentError(fmt::format("--param: \"{}\" is not NAME=VALUE", kv), "param");
    }
    std::string name = kv.substr(0, eq);
    if (!names.insert(name).second) {
      return InvalidArgumentError(fmt::format("--param: {} given twice", name), "param");
    }
    members.emplace_back(std::move(name), JsonValue::MakeString(kv.substr(eq + 1)));
  }
  return JsonValue::MakeObject(std::move(members));
}

}  // namespace

// ---- pipelines

Status PipelineCreate(const ClientOptions& o, const PipelineCreateOptions& p, std::ostream& out) {
  ASSIGN_OR_RETURN(JsonValue spec, ReadSpecFile(p.file));
  ASSIGN_OR_RETURN(std::string project, ResolveProject(p.project, &spec));
  std::string archive;
  if (!p.code_dir.empty()) {
    ASSIGN_OR_RETURN(archive, TarDirectory(p.code_dir));
  }
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue v, CreateVersion(s, project, spec, p.code_dir, archive));
  PrintVersionCreated(s, v, out);
  return OkStatus();
}

Status PipelineList(const ClientOptions& o, const std::string& project_flag, const ListOptions& l,
                    std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  return PrintListing(s, ProjectPath(project) + "/pipelines", l, PipelineColumns(), out);
}

Status PipelineShow(const ClientOptions& o, const std::string& project_flag,
                    const std::string& name, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue p, s.api->Call(Method::kGet, PipelinePath(project, name)));
  ASSIGN_OR_RETURN(JsonValue latest,
                   s.api->Call(Method::kGet, PipelinePath(project, name) + "/versions/latest"));
  if (s.format != OutputFormat::kTable) {
    std::vector<JsonValue::Member> members = p.members();
    members.emplace_back("latest", latest);
    PrintObject(out, s.format, JsonValue::MakeObject(std::move(members)), {});
    return OkStatus();
  }
  PrintObject(out, s.format, p,
              {{"NAME", "name"},
               {"ID", "id"},
               {"PROJECT", "project"},
               {"DESCRIPTION", "description"},
               {"LATEST VERSION", "latest_version"},
               {"CREATED BY", "created_by"},
               {"CREATED", "created_at"},
               {"UPDATED", "updated_at"}});
  static const JsonValue kEmpty = JsonValue::MakeObject({});
  const JsonValue* spec = latest.Find("spec");
  if (spec == nullptr || !spec->is_object()) spec = &kEmpty;
  out << "\nParams:\n";
  const JsonValue* params = spec->Find("params");
  if (params != nullptr && params->is_array() && !params->items().empty()) {
    PrintList(out, s.format, params->items(),
              {{"NAME", "name"},
               {"TYPE", "type"},
               {"DEFAULT", "default"},
               {"DESCRIPTION", "description"}});
  } else {
    out << "(none)\n";
  }
  out << "\nSteps:\n";
  std::vector<JsonValue> steps;
  if (const JsonValue* list = spec->Find("steps"); list != nullptr && list->is_array()) {
    steps = list->items();
  }
  if (const JsonValue* on_exit = spec->Find("on_exit");
      on_exit != nullptr && on_exit->is_object()) {
    steps.push_back(*on_exit);
  }
  PrintList(out, s.format, steps,
            {{"NAME", "name"}, {"DEPENDS", "depends"}, {"WHEN", "when"}, {"FOR EACH", "for_each"}});
  return OkStatus();
}

Status PipelineVersions(const ClientOptions& o, const std::string& project_flag,
                        const std::string& name, const ListOptions& l, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  return PrintListing(s, PipelinePath(project, name) + "/versions", l, VersionColumns(), out);
}

Status PipelineRemove(const ClientOptions& o, const std::string& project_flag,
                      const std::string& name, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  RETURN_IF_ERROR(s.api->Call(Method::kDelete, PipelinePath(project, name)).status());
  if (s.format == OutputFormat::kTable) out << fmt::format("pipeline \"{}\" deleted\n", name);
  return OkStatus();
}

Status PipelineRun(const ClientOptions& o, const PipelineRunOptions& r, std::ostream& out) {
  if (r.file.empty() && r.name.empty()) {
    return InvalidArgumentError("NAME: give a pipeline name or -f FILE", "name");
  }
  if (r.version > 0 && (!r.file.empty() || !r.code_dir.empty())) {
    return InvalidArgumentError(
        "--version: not with -f or --code (the run takes the version they create)", "version");
  }
  ASSIGN_OR_RETURN(JsonValue params, ParamsFromFlags(r.params));
  JsonValue spec;
  if (!r.file.empty()) {
    ASSIGN_OR_RETURN(spec, ReadSpecFile(r.file));
    if (!r.name.empty() && Text(spec, "name") != r.name) {
      return InvalidArgumentError(fmt::format("NAME: \"{}\" does not match the name in {}, \"{}\"",
                                              r.name, r.file, Text(spec, "name")),
                                  "name");
    }
  }
  ASSIGN_OR_RETURN(std::string project,
                   ResolveProject(r.project, r.file.empty() ? nullptr : &spec));
  std::string archive;
  if (!r.code_dir.empty()) {
    ASSIGN_OR_RETURN(archive, TarDirectory(r.code_dir));
  }
  ASSIGN_OR_RETURN(Session s, Connect(o));
  std::string name = r.name;
  int64_t version = r.version;
  if (!r.file.empty() || !r.code_dir.empty()) {
    if (r.file.empty()) {
      // --code alone: the latest spec with the new code.
      ASSIGN_OR_RETURN(JsonValue latest,
                       s.api->Call(Method::kGet, PipelinePath(project, name) + "/versions/latest"));
      const JsonValue* latest_spec = latest.Find("spec");
      if (latest_spec == nullptr) return InternalError("the server sent a version without a spec");
      spec = *latest_spec;
    }
    ASSIGN_OR_RETURN(JsonValue v, CreateVersion(s, project, spec, r.code_dir, archive));
    if (s.format == OutputFormat::kTable) PrintVersionCreated(s, v, out);
    name = Text(v, "pipeline");
    version = Int(v, "version");
  }
  const std::string body = JsonBody([&](JsonWriter& w) {
    w.BeginObject();
    if (version > 0) w.Field("version", version);
    w.Key("params");
    params.Write(w);
    w.Field("coerce_strings", true);
    if (r.sample > 0) w.Field("sample", r.sample);
    w.Field("cache", !r.no_cache).EndObject();
  });
  ASSIGN_OR_RETURN(JsonValue run,
                   s.api->Call(Method::kPost, PipelinePath(project, name) + "/runs", body));
  PrintRunStarted(s, run, r.wait, out);
  if (!r.wait) return OkStatus();
  return WaitForRun(s, project, Text(run, "id"), out);
}

// ---- runs

Status PipelineRunList(const ClientOptions& o, const PipelineRunListOptions& r,
                       const ListOptions& l, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(r.project));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  const std::string path =
      WithQuery(ProjectPath(project) + "/pipeline-runs",
                {{"pipeline", r.pipeline}, {"state", r.state}, {"schedule", r.schedule}});
  return PrintListing(s, path, l, RunColumns(), out);
}

Status PipelineRunDescribe(const ClientOptions& o, const std::string& project_flag,
                           const std::string& run_id, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue run, s.api->Call(Method::kGet, RunPath(project, run_id)));
  ASSIGN_OR_RETURN(JsonValue ev, s.api->Call(Method::kGet, RunPath(project, run_id) + "/events"));
  const JsonValue* events = ev.Find("events");
  if (s.format != OutputFormat::kTable) {
    std::vector<JsonValue::Member> members = run.members();
    members.emplace_back("events", events != nullptr ? *events : JsonValue::MakeArray({}));
    PrintObject(out, s.format, JsonValue::MakeObject(std::move(members)), {});
    return OkStatus();
  }
  std::vector<JsonValue::Member> fields = run.members();
  const JsonValue* params = run.Find("params");
  fields.emplace_back("params_text",
                      JsonValue::MakeString(params != nullptr ? params->Dump() : "{}"));
  PrintObject(out, s.format, JsonValue::MakeObject(std::move(fields)),
              {{"ID", "id"},
               {"PIPELINE", "pipeline"},
               {"VERSION", "version"},
               {"STATE", "state"},
               {"REASON", "reason"},
               {"MESSAGE", "message"},
               {"PARAMS", "params_text"},
               {"CACHE", "cache"},
               {"RETRIES", "retries"},
               {"SCHEDULE", "schedule_id"},
               {"SCHEDULED", "scheduled_time"},
               {"CREATED BY", "created_by"},
               {"CREATED", "created_at"},
               {"STARTED", "started_at"},
               {"FINISHED", "finished_at"},
               {"CODE", "code"}});

  std::vector<JsonValue> rows, outputs;
  if (const JsonValue* nodes = run.Find("nodes"); nodes != nullptr && nodes->is_array()) {
    for (const JsonValue& n : nodes->items()) {
      std::string job = Text(n, "job_name");
      if (Bool(n, "cached")) job = Text(n, "cache_source");
      rows.push_back(JsonValue::MakeObject({
          {"node", JsonValue::MakeString(Text(n, "node"))},
          {"state", JsonValue::MakeString(Text(n, "state"))},
          {"attempt", JsonValue::MakeInt(Int(n, "attempt"))},
          {"cached", JsonValue::MakeBool(Bool(n, "cached"))},
          {"job", JsonValue::MakeString(job)},
          {"duration", JsonValue::MakeString(DurationText(n, "started_at", "finished_at"))},
          {"reason", JsonValue::MakeString(Text(n, "reason"))},
      }));
      const JsonValue* outs = n.Find("outputs");
      if (outs == nullptr) continue;
      if (const JsonValue* ps = outs->Find("parameters"); ps != nullptr && ps->is_object()) {
        for (const auto& [key, value] : ps->members()) {
          outputs.push_back(JsonValue::MakeObject({
              {"node", JsonValue::MakeString(Text(n, "node"))},
              {"kind", JsonValue::MakeString("parameter")},
              {"name", JsonValue::MakeString(key)},
              {"value", value},
          }));
        }
      }
      if (const JsonValue* as = outs->Find("artifacts"); as != nullptr && as->is_object()) {
        for (const auto& [key, value] : as->members()) {
          outputs.push_back(JsonValue::MakeObject({
              {"node", JsonValue::MakeString(Text(n, "node"))},
              {"kind", JsonValue::MakeString("artifact")},
              {"name", JsonValue::MakeString(key)},
              {"value", JsonValue::MakeString(Text(value, "path"))},
          }));
        }
      }
    }
  }
  out << "\nNodes:\n";
  if (rows.empty()) {
    out << "(none reached yet)\n";
  } else {
    PrintList(out, s.format, rows,
              {{"NODE", "node"},
               {"STATE", "state"},
               {"ATTEMPT", "attempt"},
               {"CACHED", "cached"},
               {"JOB", "job"},
               {"DURATION", "duration"},
               {"REASON", "reason"}});
  }
  out << "\nOutputs:\n";
  if (outputs.empty()) {
    out << "(none)\n";
  } else {
    PrintList(out, s.format, outputs,
              {{"NODE", "node"}, {"KIND", "kind"}, {"NAME", "name"}, {"VALUE", "value"}});
  }
  out << "\nEvents:\n";
  if (events != nullptr && events->is_array() && !events->items().empty()) {
    PrintList(out, s.format, events->items(),
              {{"TIME", "time"}, {"TYPE", "type"}, {"REASON", "reason"}, {"MESSAGE", "message"}});
  } else {
    out << "(none)\n";
  }
  return OkStatus();
}

Status PipelineRunCancel(const ClientOptions& o, const std::string& project_flag,
                         const std::string& run_id, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue run, s.api->Call(Method::kPost, RunPath(project, run_id) + "/cancel"));
  if (s.format == OutputFormat::kTable) {
    out << fmt::format("pipeline run {} cancelling\n", Text(run, "id"));
  } else {
    PrintObject(out, s.format, run, {});
  }
  return OkStatus();
}

Status PipelineRunRetry(const ClientOptions& o, const std::string& project_flag,
                        const std::string& run_id, bool wait, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue run, s.api->Call(Method::kPost, RunPath(project, run_id) + "/retry"));
  if (s.format == OutputFormat::kTable) {
    out << fmt::format("pipeline run {} resumed from its failed steps (retry {})\n",
                       Text(run, "id"), Int(run, "retries"));
  } else if (!wait) {
    PrintObject(out, s.format, run, {});
  }
  if (!wait) return OkStatus();
  return WaitForRun(s, project, Text(run, "id"), out);
}

Status PipelineRunRemove(const ClientOptions& o, const std::string& project_flag,
                         const std::string& run_id, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  RETURN_IF_ERROR(s.api->Call(Method::kDelete, RunPath(project, run_id)).status());
  if (s.format == OutputFormat::kTable) out << fmt::format("pipeline run {} deleted\n", run_id);
  return OkStatus();
}

// ---- schedules

Status SchedulePut(const ClientOptions& o, const std::string& project_flag, const std::string& file,
                   bool replace, std::ostream& out) {
  ASSIGN_OR_RETURN(JsonValue spec, ReadSpecFile(file));
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag, &spec));
  const std::string name = Text(spec, "name");
  if (replace && name.empty()) {
    return InvalidArgumentError(fmt::format("{}: `name` is required", file), "name");
  }
  ASSIGN_OR_RETURN(Session s, Connect(o));
  StatusOr<JsonValue> saved =
      replace ? s.api->Call(Method::kPut, SchedulePath(project, name), spec.Dump())
              : s.api->Call(Method::kPost, ProjectPath(project) + "/schedules", spec.Dump());
  if (!saved.ok()) return saved.status().WithPrefix(file);
  if (s.format == OutputFormat::kTable) {
    out << fmt::format("schedule \"{}\" saved; next tick {}\n", Text(*saved, "name"),
                       CellText(*saved, "next_tick"));
  } else {
    PrintObject(out, s.format, *saved, {});
  }
  return OkStatus();
}

Status ScheduleList(const ClientOptions& o, const std::string& project_flag, const ListOptions& l,
                    std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  std::string next;
  ASSIGN_OR_RETURN(std::vector<JsonValue> items,
                   s.api->List(ProjectPath(project) + "/schedules", l.limit, l.page_token, &next));
  if (s.format == OutputFormat::kTable) {
    for (JsonValue& item : items) item = ScheduleRow(item);
  }
  PrintList(out, s.format, items, ScheduleColumns());
  if (!next.empty()) std::cerr << "more results: --page-token " << next << "\n";
  return OkStatus();
}

Status ScheduleShow(const ClientOptions& o, const std::string& project_flag,
                    const std::string& name, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue sched, s.api->Call(Method::kGet, SchedulePath(project, name)));
  PrintSchedule(s, sched, out);
  if (s.format != OutputFormat::kTable) return OkStatus();
  const JsonValue* spec = sched.Find("spec");
  if (spec == nullptr || !spec->is_object()) return OkStatus();
  PrintObject(out, s.format, *spec,
              {{"START", "start"},
               {"END", "end"},
               {"MAX CONCURRENCY", "max_concurrency"},
               {"DEPENDS ON PAST", "depends_on_past"},
               {"RETRIES", "retries"},
               {"HISTORY LIMIT", "history_limit"},
               {"SKIP DATES", "skip_dates"},
               {"PARAMS", "params"}});
  return OkStatus();
}

Status ScheduleRemove(const ClientOptions& o, const std::string& project_flag,
                      const std::string& name, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  RETURN_IF_ERROR(s.api->Call(Method::kDelete, SchedulePath(project, name)).status());
  if (s.format == OutputFormat::kTable) out << fmt::format("schedule \"{}\" deleted\n", name);
  return OkStatus();
}

Status SchedulePause(const ClientOptions& o, const std::string& project_flag,
                     const std::string& name, bool paused, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(
      JsonValue sched,
      s.api->Call(Method::kPost, SchedulePath(project, name) + (paused ? "/pause" : "/resume")));
  if (s.format == OutputFormat::kTable) {
    out << fmt::format("schedule \"{}\" {}\n", name, paused ? "paused" : "resumed");
  } else {
    PrintObject(out, s.format, sched, {});
  }
  return OkStatus();
}

Status ScheduleSkip(const ClientOptions& o, const std::string& project_flag,
                    const std::string& name, const std::vector<std::string>& dates, bool remove,
                    std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  const std::string body = JsonBody([&](JsonWriter& w) {
    w.BeginObject().Key("dates").BeginArray();
    for (const std::string& d : dates) w.String(d);
    w.EndArray().Field("remove", remove).EndObject();
  });
  ASSIGN_OR_RETURN(JsonValue sched,
                   s.api->Call(Method::kPost, SchedulePath(project, name) + "/skip", body));
  if (s.format == OutputFormat::kTable) {
    const JsonValue* spec = sched.Find("spec");
    const JsonValue* skips = spec != nullptr ? spec->Find("skip_dates") : nullptr;
    out << fmt::format("schedule \"{}\" skips {}\n", name,
                       skips != nullptr && skips->is_array() && !skips->items().empty()
                           ? skips->Dump()
                           : "no dates");
  } else {
    PrintObject(out, s.format, sched, {});
  }
  return OkStatus();
}

Status ScheduleTicks(const ClientOptions& o, const std::string& project_flag,
                     const std::string& name, const ListOptions& l, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  return PrintListing(s, SchedulePath(project, name) + "/ticks", l, TickColumns(), out);
}

Status ScheduleBackfill(const ClientOptions& o, const BackfillOptions& b, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(b.project));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  const std::string body = JsonBody([&](JsonWriter& w) {
    w.BeginObject()
        .Field("from", b.from)
        .Field("to", b.to)
        .Field("max_concurrency", b.max_concurrency)
        .Field("reprocess", b.reprocess)
        .EndObject();
  });
  StatusOr<JsonValue> created =
      s.api->Call(Method::kPost, SchedulePath(project, b.name) + "/backfills", body);
  if (!created.ok()) {
    // The API names its body fields; the user typed flags.
    const std::string& field = created.status().field();
    if (field == "from" || field == "to" || field == "max_concurrency" || field == "reprocess") {
      const std::string flag = field == "max_concurrency" ? "max-concurrency" : field;
      std::string message = created.status().message();
      if (message.rfind(field + ":", 0) == 0) message = "--" + flag + message.substr(field.size());
      return Status(created.status().code(), std::move(message), flag);
    }
    return created.status();
  }
  if (s.format == OutputFormat::kTable) {
    out << fmt::format("backfill {} of schedule \"{}\": {} ticks from {} to {}\n",
                       Text(*created, "id"), b.name, Int(*created, "total"),
                       CellText(*created, "from"), CellText(*created, "to"));
  } else {
    PrintObject(out, s.format, *created, {});
  }
  return OkStatus();
}

Status ScheduleBackfills(const ClientOptions& o, const std::string& project_flag,
                         const std::string& name, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  return PrintListing(s, SchedulePath(project, name) + "/backfills", {}, BackfillColumns(), out);
}

}  // namespace lathe::cli
