#include "cli/model_commands.h"

#include <algorithm>
#include <iostream>
#include <optional>
#include <utility>

#include <fmt/core.h>

#include "cli/session.h"
#include "cli/tracking_commands.h"
#include "http/message.h"

namespace lathe::cli {

// ---- pure helpers

StatusOr<int64_t> ParseModelVersion(const std::string& text, const std::string& field) {
  bool digits = !text.empty() && text.size() <= 18 &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  int64_t v = digits ? std::stoll(text) : 0;
  if (v < 1) {
    return InvalidArgumentError(
        fmt::format("{}: \"{}\" is not a version number (1, 2, …)", field, text), field);
  }
  return v;
}

std::string AliasesText(const JsonValue* aliases) {
  if (aliases == nullptr) return "-";
  std::vector<std::string> parts;
  if (aliases->is_array()) {
    for (const JsonValue& a : aliases->items()) {
      if (a.is_string()) parts.push_back(a.as_string());
    }
  } else if (aliases->is_object()) {
    for (const auto& [alias, version] : aliases->members()) {
      parts.push_back(alias + "=" + (version.is_string() ? version.as_string() : version.Dump()));
    }
  }
  if (parts.empty()) return "-";
  std::sort(parts.begin(), parts.end());
  std::string text;
  for (const std::string& p : parts) text += (text.empty() ? "" : ",") + p;
  return text;
}

JsonValue VersionRow(const JsonValue& version) {
  std::vector<JsonValue::Member> m;
  for (const char* f :
       {"version", "stage", "aliases", "status", "run_id", "source", "created_at"}) {
    if (std::string_view(f) == "aliases") {
      m.emplace_back(f, JsonValue::MakeString(AliasesText(version.Find("aliases"))));
      continue;
    }
    const JsonValue* v = version.Find(f);
    m.emplace_back(f, v != nullptr ? *v : JsonValue());
  }
  return JsonValue::MakeObject(std::move(m));
}

std::vector<JsonValue> LineageRows(const JsonValue* lineage) {
  std::vector<JsonValue> rows;
  if (lineage == nullptr || !lineage->is_object()) return rows;
  for (const char* key :
       {"run_id", "run_name", "run_status", "experiment_id", "experiment_name", "job_id",
        "job_name", "pipeline_run_id", "pipeline_step", "code_digest"}) {
    const JsonValue* v = lineage->Find(key);
    rows.push_back(JsonValue::MakeObject(
        {{"key", JsonValue::MakeString(key)}, {"value", v != nullptr ? *v : JsonValue()}}));
  }
  return rows;
}

bool IsRunsUri(const std::string& uri) { return uri.rfind("runs:/", 0) == 0; }

StatusOr<RunsUri> ParseRunsUri(const std::string& uri) {
  if (!IsRunsUri(uri)) {
    return InvalidArgumentError(fmt::format("source: \"{}\" is not a runs:/ URI", uri), "source");
  }
  std::string rest = uri.substr(std::string_view("runs:/").size());
  while (!rest.empty() && rest.front() == '/') rest.erase(0, 1);
  size_t slash = rest.find('/');
  RunsUri parsed;
  parsed.run_id = rest.substr(0, slash);
  if (slash != std::string::npos) parsed.path = rest.substr(slash + 1);
  while (!parsed.path.empty() && parsed.path.back() == '/') parsed.path.pop_back();
  while (!parsed.path.empty() && parsed.path.front() == '/') parsed.path.erase(0, 1);
  if (parsed.run_id.empty()) {
    return InvalidArgumentError(
        fmt::format("source: \"{}\" names no run (expected runs:/<run_id>/<path>)", uri), "source");
  }
  return parsed;
}

std::string JoinArtifactUri(const std::string& artifact_uri, const std::string& path) {
  if (path.empty()) return artifact_uri;
  std::string base = artifact_uri;
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string rel = path;
  while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
  return base + "/" + rel;
}

// ---- commands

namespace {

using http::Method;

std::string Text(const JsonValue& object, const std::string& field) {
  const JsonValue* v = object.Find(field);
  return v != nullptr && v->is_string() ? v->as_string() : "";
}

std::string ModelPath(const std::string& project, const std::string& name) {
  return ProjectPath(project) + "/models/" + Seg(name);
}

std::string VersionPath(const std::string& project, const std::string& name, int64_t version) {
  return fmt::format("{}/versions/{}", ModelPath(project, name), version);
}

const std::vector<Column>& VersionColumns() {
  static const auto* const kCols = new std::vector<Column>{
      {"VERSION", "version"}, {"STAGE", "stage"},   {"ALIASES", "aliases"},   {"STATUS", "status"},
      {"RUN", "run_id"},      {"SOURCE", "source"}, {"CREATED", "created_at"}};
  return *kCols;
}

// A version with its aliases as one cell, for PrintObject.
JsonValue VersionDisplay(const JsonValue& version) {
  std::vector<JsonValue::Member> m;
  for (const auto& [key, value] : version.members()) {
    m.emplace_back(key, key == "aliases" ? JsonValue::MakeString(AliasesText(&value)) : value);
  }
  return JsonValue::MakeObject(std::move(m));
}

// {k: v} → [{key, value}] rows sorted by key, for tag and alias tables.
std::vector<JsonValue> MapRows(const JsonValue* map) {
  std::vector<JsonValue> rows;
  if (map == nullptr || !map->is_object()) return rows;
  for (const auto& [key, value] : map->members()) {
    rows.push_back(JsonValue::MakeObject({{"key", JsonValue::MakeString(key)}, {"value", value}}));
  }
  std::sort(rows.begin(), rows.end(),
            [](const JsonValue& a, const JsonValue& b) { return Text(a, "key") < Text(b, "key"); });
  return rows;
}

void PrintSection(std::ostream& out, const std::string& title, const std::vector<JsonValue>& rows,
                  const std::vector<Column>& columns) {
  out << "\n" << title << ":\n";
  if (rows.empty()) {
    out << "(none)\n";
  } else {
    PrintList(out, OutputFormat::kTable, rows, columns);
  }
}

void PrintVersion(std::ostream& out, OutputFormat format, const JsonValue& version) {
  if (format != OutputFormat::kTable) {
    PrintObject(out, format, version, {});
    return;
  }
  PrintObject(out, format, VersionDisplay(version),
              {{"MODEL", "name"},
               {"VERSION", "version"},
               {"STAGE", "stage"},
               {"STATUS", "status"},
               {"ALIASES", "aliases"},
               {"SOURCE", "source"},
               {"RUN", "run_id"},
               {"RUN LINK", "run_link"},
               {"USER", "user"},
               {"DESCRIPTION", "description"},
               {"CREATED", "created_at"},
               {"UPDATED", "updated_at"}});
}

// A {"tags": {k: v}} member for a request body.
void WriteTags(JsonWriter& w, const std::vector<std::pair<std::string, std::string>>& tags) {
  if (tags.empty()) return;
  w.Key("tags").BeginObject();
  for (const auto& [k, v] : tags) w.Field(k, v);
  w.EndObject();
}

}  // namespace

Status ModelList(const ClientOptions& o, const ModelListOptions& m, const ListOptions& l,
                 std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(m.project));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  std::string path = ProjectPath(project) + "/models";
  char sep = '?';
  if (!m.filter.empty()) {
    path += fmt::format("{}filter={}", sep, http::PercentEncode(m.filter));
    sep = '&';
  }
  for (const std::string& key : m.order_by) {
    path += fmt::format("{}order_by={}", sep, http::PercentEncode(key));
    sep = '&';
  }
  std::string next;
  ASSIGN_OR_RETURN(std::vector<JsonValue> models, s.api->List(path, l.limit, l.page_token, &next));
  if (s.format != OutputFormat::kTable) {
    PrintList(out, s.format, models, {});
  } else {
    std::vector<JsonValue> rows;
    for (const JsonValue& model : models) {
      int64_t latest = 0;
      if (const JsonValue* lv = model.Find("latest_versions"); lv != nullptr && lv->is_array()) {
        for (const JsonValue& v : lv->items()) {
          if (const JsonValue* n = v.Find("version"); n != nullptr && n->is_number()) {
            latest = std::max(latest, n->as_int());
          }
        }
      }
      rows.push_back(JsonValue::MakeObject(
          {{"name", JsonValue::MakeString(Text(model, "name"))},
           {"latest", latest > 0 ? JsonValue::MakeInt(latest) : JsonValue()},
           {"aliases", JsonValue::MakeString(AliasesText(model.Find("aliases")))},
           {"updated_at", JsonValue::MakeString(Text(model, "updated_at"))},
           {"description", JsonValue::MakeString(Text(model, "description"))}}));
    }
    PrintList(out, s.format, rows,
              {{"NAME", "name"},
               {"LATEST", "latest"},
               {"ALIASES", "aliases"},
               {"UPDATED", "updated_at"},
               {"DESCRIPTION", "description"}});
  }
  if (!next.empty()) std::cerr << "more results: --page-token " << next << "\n";
  return OkStatus();
}

Status ModelCreate(const ClientOptions& o, const std::string& project_flag, const std::string& name,
                   const std::string& description, const std::vector<std::string>& tags,
                   std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(auto kv, ParseTagFlags(tags));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue model, s.api->Call(Method::kPost, ProjectPath(project) + "/models",
                                                JsonBody([&](JsonWriter& w) {
                                                  w.BeginObject().Field("name", name);
                                                  if (!description.empty())
                                                    w.Field("description", description);
                                                  WriteTags(w, kv);
                                                  w.EndObject();
                                                })));
  if (s.format == OutputFormat::kTable) {
    out << fmt::format("model \"{}\" created in project \"{}\"\n", Text(model, "name"), project);
  } else {
    PrintObject(out, s.format, model, {});
  }
  return OkStatus();
}

Status ModelShow(const ClientOptions& o, const std::string& project_flag, const std::string& name,
                 std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue model, s.api->Call(Method::kGet, ModelPath(project, name)));
  if (s.format != OutputFormat::kTable) {
    PrintObject(out, s.format, model, {});
    return OkStatus();
  }
  PrintObject(out, s.format, model,
              {{"NAME", "name"},
               {"PROJECT", "project"},
               {"DESCRIPTION", "description"},
               {"CREATED", "created_at"},
               {"UPDATED", "updated_at"}});
  PrintSection(out, "Tags", MapRows(model.Find("tags")), {{"KEY", "key"}, {"VALUE", "value"}});
  PrintSection(out, "Aliases", MapRows(model.Find("aliases")),
               {{"ALIAS", "key"}, {"VERSION", "value"}});
  std::vector<JsonValue> latest;
  if (const JsonValue* lv = model.Find("latest_versions"); lv != nullptr && lv->is_array()) {
    for (const JsonValue& v : lv->items()) latest.push_back(VersionRow(v));
  }
  PrintSection(out, "Latest versions", latest, VersionColumns());
  return OkStatus();
}

Status ModelVersions(const ClientOptions& o, const std::string& project_flag,
                     const std::string& name, const ListOptions& l, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  std::string next;
  ASSIGN_OR_RETURN(
      std::vector<JsonValue> versions,
      s.api->List(ModelPath(project, name) + "/versions", l.limit, l.page_token, &next));
  if (s.format != OutputFormat::kTable) {
    PrintList(out, s.format, versions, {});
  } else if (versions.empty()) {
    out << fmt::format("model \"{}\" has no versions\n", name);
  } else {
    for (JsonValue& v : versions) v = VersionRow(v);
    PrintList(out, s.format, versions, VersionColumns());
  }
  if (!next.empty()) std::cerr << "more results: --page-token " << next << "\n";
  return OkStatus();
}

Status ModelVersionShow(const ClientOptions& o, const std::string& project_flag,
                        const std::string& name, const std::string& version_text,
                        std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(int64_t version, ParseModelVersion(version_text));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue v, s.api->Call(Method::kGet, VersionPath(project, name, version)));
  PrintVersion(out, s.format, v);
  if (s.format == OutputFormat::kTable) {
    PrintSection(out, "Tags", MapRows(v.Find("tags")), {{"KEY", "key"}, {"VALUE", "value"}});
    const JsonValue* lineage = v.Find("lineage");
    out << "\nLineage:\n";
    if (lineage == nullptr || !lineage->is_object()) {
      out << "(unknown)\n";
    } else {
      PrintList(out, s.format, LineageRows(lineage), {{"KEY", "key"}, {"VALUE", "value"}});
    }
  }
  return OkStatus();
}

Status ModelAlias(const ClientOptions& o, const std::string& project_flag, const std::string& name,
                  const std::string& alias, const std::string& version_text, bool remove,
                  std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  if (remove && !version_text.empty()) {
    return InvalidArgumentError("--delete: give no VERSION with it", "version");
  }
  const std::string path = ModelPath(project, name) + "/aliases/" + Seg(alias);
  if (remove) {
    ASSIGN_OR_RETURN(Session s, Connect(o));
    RETURN_IF_ERROR(s.api->Call(Method::kDelete, path).status());
    if (s.format == OutputFormat::kTable) {
      out << fmt::format("alias \"{}\" of model \"{}\" deleted\n", alias, name);
    }
    return OkStatus();
  }
  if (version_text.empty()) {  // show where it points
    ASSIGN_OR_RETURN(Session s, Connect(o));
    ASSIGN_OR_RETURN(JsonValue v, s.api->Call(Method::kGet, path));
    PrintVersion(out, s.format, v);
    return OkStatus();
  }
  ASSIGN_OR_RETURN(int64_t version, ParseModelVersion(version_text));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue v, s.api->Call(Method::kPut, path, JsonBody([&](JsonWriter& w) {
                                              w.BeginObject().Field("version", version).EndObject();
                                            })));
  if (s.format == OutputFormat::kTable) {
    out << fmt::format("alias \"{}\" of model \"{}\" now points at version {}\n", alias, name,
                       version);
  } else {
    PrintObject(out, s.format, v, {});
  }
  return OkStatus();
}

Status ModelRegister(const ClientOptions& o, const ModelRegisterOptions& r, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(r.project));
  if (r.source.empty()) return InvalidArgumentError("--source: required", "source");
  ASSIGN_OR_RETURN(auto tags, ParseTagFlags(r.tags));
  std::optional<RunsUri> runs_uri;
  if (IsRunsUri(r.source)) {
    ASSIGN_OR_RETURN(runs_uri, ParseRunsUri(r.source));
  }
  ASSIGN_OR_RETURN(Session s, Connect(o));

  std::string source = r.source;
  std::string run_id;
  if (!r.run.empty()) {
    ASSIGN_OR_RETURN(JsonValue run, FindRun(s, project, r.run));
    run_id = Text(run, "run_id");
  }
  if (runs_uri) {
    if (!run_id.empty() && run_id != runs_uri->run_id) {
      return InvalidArgumentError(
          fmt::format("--run names run {} but --source names run {}", run_id, runs_uri->run_id),
          "run");
    }
    ASSIGN_OR_RETURN(JsonValue run, FindRun(s, project, runs_uri->run_id));
    run_id = Text(run, "run_id");
    const std::string artifact_uri = Text(run, "artifact_uri");
    if (artifact_uri.empty()) {
      return FailedPreconditionError(fmt::format("run {} has no artifact URI", run_id), "source");
    }
    source = JoinArtifactUri(artifact_uri, runs_uri->path);
  }

  bool created = false;
  auto model = s.api->Call(
      Method::kPost, ProjectPath(project) + "/models",
      JsonBody([&](JsonWriter& w) { w.BeginObject().Field("name", r.name).EndObject(); }));
  if (model.ok()) {
    created = true;
  } else if (model.status().code() != StatusCode::kAlreadyExists) {
    return model.status();
  }
  ASSIGN_OR_RETURN(JsonValue version,
                   s.api->Call(Method::kPost, ModelPath(project, r.name) + "/versions",
                               JsonBody([&](JsonWriter& w) {
                                 w.BeginObject().Field("source", source);
                                 if (!run_id.empty()) w.Field("run_id", run_id);
                                 if (!r.description.empty()) w.Field("description", r.description);
                                 WriteTags(w, tags);
                                 w.EndObject();
                               })));
  if (s.format == OutputFormat::kTable) {
    if (created) out << fmt::format("model \"{}\" created in project \"{}\"\n", r.name, project);
    const JsonValue* n = version.Find("version");
    out << fmt::format("model \"{}\" version {} registered\n", r.name,
                       n != nullptr ? n->Dump() : "?");
  }
  PrintVersion(out, s.format, version);
  return OkStatus();
}

Status ModelStage(const ClientOptions& o, const std::string& project_flag, const std::string& name,
                  const std::string& version_text, const std::string& stage, bool archive_existing,
                  std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(int64_t version, ParseModelVersion(version_text));
  if (stage.empty()) {
    return InvalidArgumentError("STAGE: one of None, Staging, Production, Archived", "stage");
  }
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue v, s.api->Call(Method::kPatch, VersionPath(project, name, version),
                                            JsonBody([&](JsonWriter& w) {
                                              w.BeginObject().Field("stage", stage);
                                              if (archive_existing) {
                                                w.Field("archive_existing_versions", true);
                                              }
                                              w.EndObject();
                                            })));
  if (s.format == OutputFormat::kTable) {
    std::string now = Text(v, "stage").empty() ? stage : Text(v, "stage");
    out << fmt::format("model \"{}\" version {} is now in stage {}{}\n", name, version, now,
                       archive_existing ? fmt::format(" (other {} versions archived)", now) : "");
  } else {
    PrintObject(out, s.format, v, {});
  }
  return OkStatus();
}

Status ModelRemove(const ClientOptions& o, const std::string& project_flag, const std::string& name,
                   const std::string& version_text, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  if (version_text.empty()) {
    ASSIGN_OR_RETURN(Session s, Connect(o));
    RETURN_IF_ERROR(s.api->Call(Method::kDelete, ModelPath(project, name)).status());
    if (s.format == OutputFormat::kTable) {
      out << fmt::format("model \"{}\" and its versions deleted\n", name);
    }
    return OkStatus();
  }
  ASSIGN_OR_RETURN(int64_t version, ParseModelVersion(version_text));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  RETURN_IF_ERROR(s.api->Call(Method::kDelete, VersionPath(project, name, version)).status());
  if (s.format == OutputFormat::kTable) {
    out << fmt::format("model \"{}\" version {} deleted\n", name, version);
  }
  return OkStatus();
}

}  // namespace lathe::cli
