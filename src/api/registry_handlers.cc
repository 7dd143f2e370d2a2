// Model registry routes (docs/registry.md) over registry::RegistryService:
//  * MLflow REST 2.0 (protocols.md §5.4): registered-models/… and
//    model-versions/… under /api/2.0/mlflow and /ajax-api/2.0/mlflow, with
//    MLflow's encoding (versions as strings, ms timestamps, empty fields
//    left out) and error codes (mlflow_errors.h);
//  * native: /api/v1/projects/{project}/models… (JSON, RFC 3339 times, tags
//    as {k: v}, 201 on create, 204 on delete, {items, next_page_token}).
#include <cerrno>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "api/api.h"
#include "api/mlflow_call.h"
#include "registry/registry.h"
#include "tracking/logged_models.h"
#include "tracking/tracking.h"

namespace lathe::api {

using http::Method;
using registry::ModelVersion;
using registry::RegisteredModel;
using registry::RegistryService;

namespace {
// The logged-model tag MLflow 3 keeps its model versions in: a JSON array of
// {"name", "version"}.
constexpr std::string_view kModelVersionsTag = "mlflow.modelVersions";
}  // namespace

namespace {

constexpr int64_t kDefaultModelResults = 100;
constexpr int64_t kMaxModelResults = 1'000;
constexpr int64_t kDefaultVersionResults = 10'000;
constexpr int64_t kMaxVersionResults = 200'000;

// ---- MLflow encoding (empty fields left out; versions as strings)

void EncodeMlflowVersion(JsonWriter& w, const ModelVersion& v) {
  w.BeginObject()
      .Field("name", v.name)
      .Field("version", std::to_string(v.version))
      .Field("creation_timestamp", v.creation_timestamp)
      .Field("last_updated_timestamp", v.last_updated_timestamp);
  if (!v.user_id.empty()) w.Field("user_id", v.user_id);
  w.Field("current_stage", v.current_stage);
  if (!v.description.empty()) w.Field("description", v.description);
  w.Field("source", v.source);
  if (!v.run_id.empty()) w.Field("run_id", v.run_id);
  w.Field("status", registry::ModelVersionStatusName(v.status));
  if (!v.status_message.empty()) w.Field("status_message", v.status_message);
  EncodeKeyValues(w, "tags", v.tags);
  if (!v.run_link.empty()) w.Field("run_link", v.run_link);
  if (!v.aliases.empty()) {
    w.Key("aliases").BeginArray();
    for (const std::string& a : v.aliases) w.String(a);
    w.EndArray();
  }
  w.EndObject();
}

void EncodeMlflowModel(JsonWriter& w, const RegisteredModel& m) {
  w.BeginObject()
      .Field("name", m.name)
      .Field("creation_timestamp", m.creation_timestamp)
      .Field("last_updated_timestamp", m.last_updated_timestamp);
  if (!m.description.empty()) w.Field("description", m.description);
  if (!m.latest_versions.empty()) {
    w.Key("latest_versions").BeginArray();
    for (const ModelVersion& v : m.latest_versions) EncodeMlflowVersion(w, v);
    w.EndArray();
  }
  EncodeKeyValues(w, "tags", m.tags);
  if (!m.aliases.empty()) {
    w.Key("aliases").BeginArray();
    for (const registry::ModelAlias& a : m.aliases) {
      w.BeginObject()
          .Field("alias", a.alias)
          .Field("version", std::to_string(a.version))
          .EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
}

void WriteModel(http::Response& res, const RegisteredModel& m) {
  WriteJson(res, 200, [&](JsonWriter& w) {
    w.BeginObject().Key("registered_model");
    EncodeMlflowModel(w, m);
    w.EndObject();
  });
}

void WriteVersion(http::Response& res, const ModelVersion& v) {
  WriteJson(res, 200, [&](JsonWriter& w) {
    w.BeginObject().Key("model_version");
    EncodeMlflowVersion(w, v);
    w.EndObject();
  });
}

void WriteVersionList(http::Response& res, const std::vector<ModelVersion>& versions,
                      const std::string& next_page_token) {
  WriteJson(res, 200, [&](JsonWriter& w) {
    w.BeginObject();
    if (!versions.empty()) {
      w.Key("model_versions").BeginArray();
      for (const ModelVersion& v : versions) EncodeMlflowVersion(w, v);
      w.EndArray();
    }
    WriteNextPageToken(w, next_page_token);
    w.EndObject();
  });
}

// MLflow's `version`: required, an integer (number or decimal string).
StatusOr<int64_t> RequiredVersion(const Args& a) {
  ASSIGN_OR_RETURN(std::optional<int64_t> v, a.Int("version"));
  if (!v) return Missing("version");
  return *v;
}

// ---- native encoding

void WriteMillisTime(JsonWriter& w, std::string_view key, int64_t ms) {
  WriteTimeField(w, key, ms * 1000);
}

void WriteStringOrNull(JsonWriter& w, std::string_view key, std::string_view value) {
  w.Key(key);
  if (value.empty()) {
    w.Null();
  } else {
    w.String(value);
  }
}

void WriteTagMap(JsonWriter& w, const std::vector<tracking::Tag>& tags) {
  w.Key("tags").BeginObject();
  for (const tracking::Tag& t : tags) w.Field(t.key, t.value);
  w.EndObject();
}

// The fields of a native version, without the closing brace.
void EncodeVersionFields(JsonWriter& w, const ModelVersion& v) {
  w.Field("name", v.name).Field("version", v.version);
  WriteMillisTime(w, "created_at", v.creation_timestamp);
  WriteMillisTime(w, "updated_at", v.last_updated_timestamp);
  w.Field("user", v.user_id)
      .Field("description", v.description)
      .Field("stage", v.current_stage)
      .Field("source", v.source);
  WriteStringOrNull(w, "run_id", v.run_id);
  w.Field("run_link", v.run_link).Field("status", registry::ModelVersionStatusName(v.status));
  WriteTagMap(w, v.tags);
  w.Key("aliases").BeginArray();
  for (const std::string& a : v.aliases) w.String(a);
  w.EndArray();
}

void EncodeVersion(JsonWriter& w, const ModelVersion& v) {
  w.BeginObject();
  EncodeVersionFields(w, v);
  w.EndObject();
}

void EncodeModel(JsonWriter& w, const RegisteredModel& m) {
  w.BeginObject()
      .Field("name", m.name)
      .Field("project", m.project)
      .Field("description", m.description);
  WriteMillisTime(w, "created_at", m.creation_timestamp);
  WriteMillisTime(w, "updated_at", m.last_updated_timestamp);
  WriteTagMap(w, m.tags);
  w.Key("aliases").BeginObject();
  for (const registry::ModelAlias& a : m.aliases) w.Field(a.alias, a.version);
  w.EndObject().Key("latest_versions").BeginArray();
  for (const ModelVersion& v : m.latest_versions) EncodeVersion(w, v);
  w.EndArray().EndObject();
}

void EncodeLineage(JsonWriter& w, const registry::Lineage& l) {
  w.Key("lineage").BeginObject();
  WriteStringOrNull(w, "run_id", l.version.run_id);
  WriteStringOrNull(w, "run_name", l.run ? std::string_view(l.run->run_name) : "");
  WriteStringOrNull(w, "run_status", l.run ? tracking::RunStatusName(l.run->status) : "");
  WriteStringOrNull(w, "experiment_id", l.run ? std::string_view(l.run->experiment_id) : "");
  WriteStringOrNull(w, "experiment_name", l.experiment_name);
  WriteStringOrNull(w, "job_id", l.job_id);
  WriteStringOrNull(w, "job_name", l.job_name);
  WriteStringOrNull(w, "pipeline_run_id", l.pipeline_run_id);
  WriteStringOrNull(w, "pipeline_step", l.pipeline_step);
  WriteStringOrNull(w, "code_digest", l.code_digest);
  w.EndObject();
}

std::vector<tracking::Tag> ToTags(const std::map<std::string, std::string>& m) {
  std::vector<tracking::Tag> out;
  out.reserve(m.size());
  for (const auto& [k, v] : m) out.push_back({k, v});
  return out;
}

// {version} of a native path: a positive integer.
StatusOr<int64_t> PathVersion(const http::Request& req) {
  const std::string& text = req.PathParam("version");
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < 1) {
    return InvalidArgumentError(fmt::format("version: \"{}\" is not a version number", text),
                                "version");
  }
  return v;
}

void NoContent(http::Response& res) {
  res.status = 204;
  res.body.clear();
}

}  // namespace

void Api::RegisterRegistryRoutes() {
  RegistryService* reg = registry_;
  tracking::LoggedModelService* logged = logged_models_;
  auto add = [this](Method method, std::string_view rpc, MlflowHandler handler) {
    AddMlflow(method, rpc, std::move(handler));
  };

  // ================================================= MLflow: registered models
  add(Method::kPost, "/registered-models/create", [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(std::vector<tracking::Tag> tags, a.Tags("tags"));
    ASSIGN_OR_RETURN(std::string description, a.Str("description"));
    ASSIGN_OR_RETURN(RegisteredModel m,
                     reg->CreateModel(c.principal, c.project, name, description, tags));
    WriteModel(c.res, m);
    return OkStatus();
  });

  add(Method::kGet, "/registered-models/get", [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(RegisteredModel m, reg->GetModel(c.principal, c.project, name));
    WriteModel(c.res, m);
    return OkStatus();
  });

  add(Method::kPost, "/registered-models/rename", [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(std::string new_name, a.Str("new_name"));
    ASSIGN_OR_RETURN(RegisteredModel m, reg->RenameModel(c.principal, c.project, name, new_name));
    WriteModel(c.res, m);
    return OkStatus();
  });

  // As MLflow: an absent description clears it.
  add(Method::kPatch, "/registered-models/update", [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(std::string description, a.Str("description"));
    ASSIGN_OR_RETURN(RegisteredModel m,
                     reg->UpdateModel(c.principal, c.project, name, description));
    WriteModel(c.res, m);
    return OkStatus();
  });

  add(Method::kDelete, "/registered-models/delete", [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    RETURN_IF_ERROR(reg->DeleteModel(c.principal, c.project, name));
    WriteEmpty(c.res);
    return OkStatus();
  });

  MlflowHandler search_models = [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    registry::RegistrySearch search;
    ASSIGN_OR_RETURN(search.filter, a.Str("filter"));
    ASSIGN_OR_RETURN(search.order_by, a.List("order_by"));
    ASSIGN_OR_RETURN(search.page_token, a.Str("page_token"));
    ASSIGN_OR_RETURN(std::optional<int64_t> max, a.Int("max_results"));
    ASSIGN_OR_RETURN(search.max_results,
                     InRange(max, kDefaultModelResults, "max_results", 1, kMaxModelResults));
    std::string next;
    ASSIGN_OR_RETURN(std::vector<RegisteredModel> models,
                     reg->SearchModels(c.principal, c.project, search, &next));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject();
      if (!models.empty()) {
        w.Key("registered_models").BeginArray();
        for (const RegisteredModel& m : models) EncodeMlflowModel(w, m);
        w.EndArray();
      }
      WriteNextPageToken(w, next);
      w.EndObject();
    });
    return OkStatus();
  };
  add(Method::kGet, "/registered-models/search", search_models);
  add(Method::kPost, "/registered-models/search", search_models);

  MlflowHandler latest_versions = [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(std::vector<std::string> stages, a.List("stages"));
    ASSIGN_OR_RETURN(std::vector<ModelVersion> versions,
                     reg->GetLatestVersions(c.principal, c.project, name, stages));
    WriteVersionList(c.res, versions, "");
    return OkStatus();
  };
  add(Method::kGet, "/registered-models/get-latest-versions", latest_versions);
  add(Method::kPost, "/registered-models/get-latest-versions", latest_versions);

  add(Method::kPost, "/registered-models/set-tag", [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(std::string key, a.Str("key", true));
    ASSIGN_OR_RETURN(std::string value, a.Str("value"));
    RETURN_IF_ERROR(reg->SetModelTag(c.principal, c.project, name, {key, value}));
    WriteEmpty(c.res);
    return OkStatus();
  });

  add(Method::kDelete, "/registered-models/delete-tag", [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(std::string key, a.Str("key", true));
    RETURN_IF_ERROR(reg->DeleteModelTag(c.principal, c.project, name, key));
    WriteEmpty(c.res);
    return OkStatus();
  });

  // ---- aliases
  add(Method::kPost, "/registered-models/alias", [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(std::string alias, a.Str("alias", true));
    ASSIGN_OR_RETURN(int64_t version, RequiredVersion(a));
    RETURN_IF_ERROR(reg->SetAlias(c.principal, c.project, name, alias, version));
    WriteEmpty(c.res);
    return OkStatus();
  });

  add(Method::kDelete, "/registered-models/alias", [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(std::string alias, a.Str("alias", true));
    RETURN_IF_ERROR(reg->DeleteAlias(c.principal, c.project, name, alias));
    WriteEmpty(c.res);
    return OkStatus();
  });

  add(Method::kGet, "/registered-models/alias", [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(std::string alias, a.Str("alias", true));
    ASSIGN_OR_RETURN(ModelVersion mv, reg->GetVersionByAlias(c.principal, c.project, name, alias));
    WriteVersion(c.res, mv);
    return OkStatus();
  });

  // ================================================= MLflow: model versions
  // MLflow 3 registers logged models: `model_id`, and a source that is
  // "models:/<model_id>" or the model's artifact location. The version is
  // linked to the model's source run, its source becomes the model's
  // artifact location (where the files are, what get-download-uri answers,
  // as MLflow's storage_location), and the model gets the tag
  // mlflow.modelVersions listing the versions made from it.
  add(Method::kPost, "/model-versions/create", [reg, logged](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    registry::CreateModelVersion req;
    ASSIGN_OR_RETURN(req.name, a.Str("name", true));
    ASSIGN_OR_RETURN(req.source, a.Str("source", true));
    ASSIGN_OR_RETURN(req.run_id, a.Str("run_id"));
    ASSIGN_OR_RETURN(req.run_link, a.Str("run_link"));
    ASSIGN_OR_RETURN(req.description, a.Str("description"));
    ASSIGN_OR_RETURN(req.tags, a.Tags("tags"));
    ASSIGN_OR_RETURN(std::string model_id, a.Str("model_id"));
    const std::string_view kModelsScheme = "models:/";
    const bool models_uri = req.source.starts_with(kModelsScheme);
    if (model_id.empty() && models_uri) {
      std::string_view rest = std::string_view(req.source).substr(kModelsScheme.size());
      if (rest.starts_with("m-") && rest.find_first_of("/@") == std::string_view::npos) {
        model_id = std::string(rest);
      }
    }
    std::optional<tracking::LoggedModel> model;
    if (!model_id.empty() && logged != nullptr) {
      ASSIGN_OR_RETURN(model, logged->Get(c.principal, c.project, model_id));
      if (req.run_id.empty()) req.run_id = model->source_run_id;
      if (models_uri) req.source = model->artifact_location;
    }
    ASSIGN_OR_RETURN(ModelVersion mv, reg->CreateVersion(c.principal, c.project, req));
    if (model) {
      std::vector<JsonValue> versions;
      for (const tracking::Tag& t : model->tags) {
        if (t.key != kModelVersionsTag) continue;
        auto old = ParseJson(t.value);
        if (old.ok() && old->is_array()) versions = old->items();
      }
      std::vector<JsonValue::Member> entry;
      entry.emplace_back("name", JsonValue::MakeString(mv.name));
      entry.emplace_back("version", JsonValue::MakeString(std::to_string(mv.version)));
      versions.push_back(JsonValue::MakeObject(std::move(entry)));
      RETURN_IF_ERROR(logged->SetTags(
          c.principal, c.project, model->model_id,
          {{std::string(kModelVersionsTag), JsonValue::MakeArray(std::move(versions)).Dump()}}));
    }
    WriteVersion(c.res, mv);
    return OkStatus();
  });

  add(Method::kGet, "/model-versions/get", [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(int64_t version, RequiredVersion(a));
    ASSIGN_OR_RETURN(ModelVersion mv, reg->GetVersion(c.principal, c.project, name, version));
    WriteVersion(c.res, mv);
    return OkStatus();
  });

  // As MLflow: an absent description clears it.
  add(Method::kPatch, "/model-versions/update", [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(int64_t version, RequiredVersion(a));
    ASSIGN_OR_RETURN(std::string description, a.Str("description"));
    ASSIGN_OR_RETURN(ModelVersion mv,
                     reg->UpdateVersion(c.principal, c.project, name, version, description));
    WriteVersion(c.res, mv);
    return OkStatus();
  });

  add(Method::kDelete, "/model-versions/delete", [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(int64_t version, RequiredVersion(a));
    RETURN_IF_ERROR(reg->DeleteVersion(c.principal, c.project, name, version));
    WriteEmpty(c.res);
    return OkStatus();
  });

  MlflowHandler search_versions = [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    registry::RegistrySearch search;
    ASSIGN_OR_RETURN(search.filter, a.Str("filter"));
    ASSIGN_OR_RETURN(search.order_by, a.List("order_by"));
    ASSIGN_OR_RETURN(search.page_token, a.Str("page_token"));
    ASSIGN_OR_RETURN(std::optional<int64_t> max, a.Int("max_results"));
    ASSIGN_OR_RETURN(search.max_results,
                     InRange(max, kDefaultVersionResults, "max_results", 1, kMaxVersionResults));
    std::string next;
    ASSIGN_OR_RETURN(std::vector<ModelVersion> versions,
                     reg->SearchVersions(c.principal, c.project, search, &next));
    WriteVersionList(c.res, versions, next);
    return OkStatus();
  };
  add(Method::kGet, "/model-versions/search", search_versions);
  add(Method::kPost, "/model-versions/search", search_versions);

  add(Method::kGet, "/model-versions/get-download-uri", [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(int64_t version, RequiredVersion(a));
    ASSIGN_OR_RETURN(std::string uri, reg->GetDownloadUri(c.principal, c.project, name, version));
    WriteJson(c.res, 200,
              [&](JsonWriter& w) { w.BeginObject().Field("artifact_uri", uri).EndObject(); });
    return OkStatus();
  });

  add(Method::kPost, "/model-versions/transition-stage", [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(int64_t version, RequiredVersion(a));
    ASSIGN_OR_RETURN(std::string stage, a.Str("stage", true));
    ASSIGN_OR_RETURN(std::optional<bool> archive, a.Bool("archive_existing_versions"));
    ASSIGN_OR_RETURN(ModelVersion mv, reg->TransitionStage(c.principal, c.project, name, version,
                                                           stage, archive.value_or(false)));
    WriteVersion(c.res, mv);
    return OkStatus();
  });

  add(Method::kPost, "/model-versions/set-tag", [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(int64_t version, RequiredVersion(a));
    ASSIGN_OR_RETURN(std::string key, a.Str("key", true));
    ASSIGN_OR_RETURN(std::string value, a.Str("value"));
    RETURN_IF_ERROR(reg->SetVersionTag(c.principal, c.project, name, version, {key, value}));
    WriteEmpty(c.res);
    return OkStatus();
  });

  add(Method::kDelete, "/model-versions/delete-tag", [reg](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(int64_t version, RequiredVersion(a));
    ASSIGN_OR_RETURN(std::string key, a.Str("key", true));
    RETURN_IF_ERROR(reg->DeleteVersionTag(c.principal, c.project, name, version, key));
    WriteEmpty(c.res);
    return OkStatus();
  });

  // ================================================= native
  const std::string base = "/api/v1/projects/{project}/models";

  Authed(Method::kPost, base, [reg](Call& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
    std::string name, description;
    std::map<std::string, std::string> tags;
    RETURN_IF_ERROR(r.String("name", &name, Presence::kRequired));
    RETURN_IF_ERROR(r.String("description", &description));
    RETURN_IF_ERROR(r.StringMap("tags", &tags));
    RETURN_IF_ERROR(r.Finish());
    ASSIGN_OR_RETURN(RegisteredModel m, reg->CreateModel(*c.principal, c.req.PathParam("project"),
                                                         name, description, ToTags(tags)));
    WriteJson(c.res, 201, [&](JsonWriter& w) { EncodeModel(w, m); });
    return OkStatus();
  });

  Authed(Method::kGet, base, [reg](Call& c) -> Status {
    ASSIGN_OR_RETURN(tenancy::PageRequest page, PageFromQuery(c.req));
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    registry::RegistrySearch search;
    ASSIGN_OR_RETURN(search.filter, a.Str("filter"));
    ASSIGN_OR_RETURN(search.order_by, a.List("order_by"));
    search.max_results = page.limit;
    search.page_token = page.page_token;
    std::string next;
    ASSIGN_OR_RETURN(std::vector<RegisteredModel> models,
                     reg->SearchModels(*c.principal, c.req.PathParam("project"), search, &next));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Key("items").BeginArray();
      for (const RegisteredModel& m : models) EncodeModel(w, m);
      w.EndArray().Field("next_page_token", next).EndObject();
    });
    return OkStatus();
  });

  Authed(Method::kGet, base + "/{model}", [reg](Call& c) -> Status {
    ASSIGN_OR_RETURN(RegisteredModel m, reg->GetModel(*c.principal, c.req.PathParam("project"),
                                                      c.req.PathParam("model")));
    WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeModel(w, m); });
    return OkStatus();
  });

  Authed(Method::kPatch, base + "/{model}", [reg](Call& c) -> Status {
    const std::string& project = c.req.PathParam("project");
    std::string name = c.req.PathParam("model");
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
    std::string new_name, description;
    const bool rename = body.Find("name") != nullptr && !body.Find("name")->is_null();
    const bool describe =
        body.Find("description") != nullptr && !body.Find("description")->is_null();
    RETURN_IF_ERROR(r.String("name", &new_name));
    RETURN_IF_ERROR(r.String("description", &description));
    RETURN_IF_ERROR(r.Finish());
    std::optional<RegisteredModel> m;
    if (rename) {
      ASSIGN_OR_RETURN(m, reg->RenameModel(*c.principal, project, name, new_name));
      name = new_name;
    }
    if (describe) {
      ASSIGN_OR_RETURN(m, reg->UpdateModel(*c.principal, project, name, description));
    }
    if (!m) {
      ASSIGN_OR_RETURN(m, reg->GetModel(*c.principal, project, name));
    }
    WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeModel(w, *m); });
    return OkStatus();
  });

  Authed(Method::kDelete, base + "/{model}", [reg](Call& c) -> Status {
    RETURN_IF_ERROR(
        reg->DeleteModel(*c.principal, c.req.PathParam("project"), c.req.PathParam("model")));
    NoContent(c.res);
    return OkStatus();
  });

  Authed(Method::kPut, base + "/{model}/tags/{key}", [reg](Call& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
    std::string value;
    RETURN_IF_ERROR(r.String("value", &value, Presence::kRequired));
    RETURN_IF_ERROR(r.Finish());
    RETURN_IF_ERROR(reg->SetModelTag(*c.principal, c.req.PathParam("project"),
                                     c.req.PathParam("model"), {c.req.PathParam("key"), value}));
    NoContent(c.res);
    return OkStatus();
  });

  Authed(Method::kDelete, base + "/{model}/tags/{key}", [reg](Call& c) -> Status {
    RETURN_IF_ERROR(reg->DeleteModelTag(*c.principal, c.req.PathParam("project"),
                                        c.req.PathParam("model"), c.req.PathParam("key")));
    NoContent(c.res);
    return OkStatus();
  });

  // ---- versions
  Authed(Method::kPost, base + "/{model}/versions", [reg](Call& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
    registry::CreateModelVersion req;
    req.name = c.req.PathParam("model");
    std::map<std::string, std::string> tags;
    RETURN_IF_ERROR(r.String("source", &req.source, Presence::kRequired));
    RETURN_IF_ERROR(r.String("run_id", &req.run_id));
    RETURN_IF_ERROR(r.String("run_link", &req.run_link));
    RETURN_IF_ERROR(r.String("description", &req.description));
    RETURN_IF_ERROR(r.StringMap("tags", &tags));
    RETURN_IF_ERROR(r.Finish());
    req.tags = ToTags(tags);
    ASSIGN_OR_RETURN(ModelVersion mv,
                     reg->CreateVersion(*c.principal, c.req.PathParam("project"), req));
    WriteJson(c.res, 201, [&](JsonWriter& w) { EncodeVersion(w, mv); });
    return OkStatus();
  });

  Authed(Method::kGet, base + "/{model}/versions", [reg](Call& c) -> Status {
    ASSIGN_OR_RETURN(tenancy::PageRequest page, PageFromQuery(c.req));
    registry::RegistrySearch search;
    search.model = c.req.PathParam("model");
    search.order_by = {"version_number DESC"};
    search.max_results = page.limit;
    search.page_token = page.page_token;
    std::string next;
    ASSIGN_OR_RETURN(std::vector<ModelVersion> versions,
                     reg->SearchVersions(*c.principal, c.req.PathParam("project"), search, &next));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Key("items").BeginArray();
      for (const ModelVersion& v : versions) EncodeVersion(w, v);
      w.EndArray().Field("next_page_token", next).EndObject();
    });
    return OkStatus();
  });

  Authed(Method::kGet, base + "/{model}/versions/{version}", [reg](Call& c) -> Status {
    ASSIGN_OR_RETURN(int64_t version, PathVersion(c.req));
    ASSIGN_OR_RETURN(registry::Lineage l, reg->GetLineage(*c.principal, c.req.PathParam("project"),
                                                          c.req.PathParam("model"), version));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject();
      EncodeVersionFields(w, l.version);
      EncodeLineage(w, l);
      w.EndObject();
    });
    return OkStatus();
  });

  Authed(Method::kPatch, base + "/{model}/versions/{version}", [reg](Call& c) -> Status {
    const std::string& project = c.req.PathParam("project");
    const std::string& name = c.req.PathParam("model");
    ASSIGN_OR_RETURN(int64_t version, PathVersion(c.req));
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
    std::string description, stage;
    bool archive = false;
    const bool describe =
        body.Find("description") != nullptr && !body.Find("description")->is_null();
    RETURN_IF_ERROR(r.String("description", &description));
    RETURN_IF_ERROR(r.String("stage", &stage));
    RETURN_IF_ERROR(r.Bool("archive_existing_versions", &archive));
    RETURN_IF_ERROR(r.Finish());
    if (archive && stage.empty()) {
      return InvalidArgumentError(
          "archive_existing_versions: only meaningful with a stage to move the version to",
          "archive_existing_versions");
    }
    if (!stage.empty()) {
      // Checked before anything is written, so a bad stage changes nothing.
      RETURN_IF_ERROR(registry::ParseStage(stage).status());
    }
    std::optional<ModelVersion> mv;
    if (describe) {
      ASSIGN_OR_RETURN(mv, reg->UpdateVersion(*c.principal, project, name, version, description));
    }
    if (!stage.empty()) {
      ASSIGN_OR_RETURN(mv,
                       reg->TransitionStage(*c.principal, project, name, version, stage, archive));
    }
    if (!mv) {
      ASSIGN_OR_RETURN(mv, reg->GetVersion(*c.principal, project, name, version));
    }
    WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeVersion(w, *mv); });
    return OkStatus();
  });

  Authed(Method::kDelete, base + "/{model}/versions/{version}", [reg](Call& c) -> Status {
    ASSIGN_OR_RETURN(int64_t version, PathVersion(c.req));
    RETURN_IF_ERROR(reg->DeleteVersion(*c.principal, c.req.PathParam("project"),
                                       c.req.PathParam("model"), version));
    NoContent(c.res);
    return OkStatus();
  });

  Authed(Method::kPut, base + "/{model}/versions/{version}/tags/{key}", [reg](Call& c) -> Status {
    ASSIGN_OR_RETURN(int64_t version, PathVersion(c.req));
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
    std::string value;
    RETURN_IF_ERROR(r.String("value", &value, Presence::kRequired));
    RETURN_IF_ERROR(r.Finish());
    RETURN_IF_ERROR(reg->SetVersionTag(*c.principal, c.req.PathParam("project"),
                                       c.req.PathParam("model"), version,
                                       {c.req.PathParam("key"), value}));
    NoContent(c.res);
    return OkStatus();
  });

  Authed(Method::kDelete, base + "/{model}/versions/{version}/tags/{key}",
         [reg](Call& c) -> Status {
           ASSIGN_OR_RETURN(int64_t version, PathVersion(c.req));
           RETURN_IF_ERROR(reg->DeleteVersionTag(*c.principal, c.req.PathParam("project"),
                                                 c.req.PathParam("model"), version,
                                                 c.req.PathParam("key")));
           NoContent(c.res);
           return OkStatus();
         });

  // ---- aliases
  Authed(Method::kPut, base + "/{model}/aliases/{alias}", [reg](Call& c) -> Status {
    const std::string& project = c.req.PathParam("project");
    const std::string& name = c.req.PathParam("model");
    const std::string& alias = c.req.PathParam("alias");
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
    int64_t version = 0;
    RETURN_IF_ERROR(r.Int("version", &version, Presence::kRequired));
    RETURN_IF_ERROR(r.Finish());
    RETURN_IF_ERROR(reg->SetAlias(*c.principal, project, name, alias, version));
    ASSIGN_OR_RETURN(ModelVersion mv, reg->GetVersionByAlias(*c.principal, project, name, alias));
    WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeVersion(w, mv); });
    return OkStatus();
  });

  Authed(Method::kGet, base + "/{model}/aliases/{alias}", [reg](Call& c) -> Status {
    ASSIGN_OR_RETURN(ModelVersion mv,
                     reg->GetVersionByAlias(*c.principal, c.req.PathParam("project"),
                                            c.req.PathParam("model"), c.req.PathParam("alias")));
    WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeVersion(w, mv); });
    return OkStatus();
  });

  Authed(Method::kDelete, base + "/{model}/aliases/{alias}", [reg](Call& c) -> Status {
    RETURN_IF_ERROR(reg->DeleteAlias(*c.principal, c.req.PathParam("project"),
                                     c.req.PathParam("model"), c.req.PathParam("alias")));
    NoContent(c.res);
    return OkStatus();
  });
}

}  // namespace lathe::api
