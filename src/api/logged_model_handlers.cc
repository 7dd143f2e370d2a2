// MLflow 3 logged models over the REST API (docs/mlflow.md "Logged
// models"; mlflow/protos/service.proto, all under /api/2.0/mlflow and
// /ajax-api/2.0/mlflow):
//
//   POST   /logged-models                          CreateLoggedModel    → {model}
//   GET    /logged-models/{model_id}               GetLoggedModel       → {model}
//   PATCH  /logged-models/{model_id}               FinalizeLoggedModel  → {model}
//   DELETE /logged-models/{model_id}               DeleteLoggedModel    → {}
//   POST   /logged-models/search                   SearchLoggedModels   → {models, next_page_token}
//   PATCH  /logged-models/{model_id}/tags          SetLoggedModelTags   → {model}
//   DELETE /logged-models/{model_id}/tags/{key}    DeleteLoggedModelTag → {}
//   POST   /logged-models/{model_id}/params        LogLoggedModelParams → {}
//   GET    /logged-models/{model_id}/artifacts/directories  ListLoggedModelArtifacts
//   POST   /runs/outputs                           LogOutputs           → {}
//
// The files themselves go through the mlflow-artifacts proxy
// (artifact_handlers.cc) at <exp>/models/<model_id>/artifacts/<path>.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "api/api.h"
#include "api/mlflow_call.h"
#include "http/message.h"
#include "tracking/artifacts.h"
#include "tracking/logged_models.h"
#include "tracking/tracking.h"

namespace lathe::api {

using http::Method;
using tracking::LoggedModel;
using tracking::LoggedModelService;

namespace {

constexpr int64_t kDefaultSearchResults = 50;  // SearchLoggedModels.max_results' default
constexpr int64_t kMaxSearchResults = 50'000;

// LoggedModel{info, data} as MLflow encodes it (empty fields left out;
// no metrics are linked to logged models here).
void EncodeLoggedModel(JsonWriter& w, const LoggedModel& m) {
  w.BeginObject().Key("info").BeginObject();
  w.Field("model_id", m.model_id)
      .Field("experiment_id", m.experiment_id)
      .Field("name", m.name)
      .Field("creation_timestamp_ms", m.creation_time)
      .Field("last_updated_timestamp_ms", m.last_update_time)
      .Field("artifact_uri", m.artifact_location)
      .Field("status", tracking::LoggedModelStatusName(m.status));
  if (!m.model_type.empty()) w.Field("model_type", m.model_type);
  if (!m.source_run_id.empty()) w.Field("source_run_id", m.source_run_id);
  if (!m.status_message.empty()) w.Field("status_message", m.status_message);
  EncodeKeyValues(w, "tags", m.tags);
  w.EndObject().Key("data").BeginObject();
  EncodeKeyValues(w, "params", m.params);
  w.EndObject().EndObject();
}

void WriteModel(http::Response& res, const LoggedModel& m) {
  WriteJson(res, 200, [&](JsonWriter& w) {
    w.BeginObject().Key("model");
    EncodeLoggedModel(w, m);
    w.EndObject();
  });
}

// The {model_id} path parameter (the router decoded it).
StatusOr<std::string> ModelIdParam(const http::Request& req) {
  const std::string& id = req.PathParam("model_id");
  if (id.empty()) return Missing("model_id");
  return id;
}

// A rest parameter's raw value, each segment percent-decoded once (tag
// keys may hold '/', which clients send unencoded).
StatusOr<std::string> DecodedRest(const http::Request& req, const std::string& name) {
  const std::string& raw = req.PathParam(name);
  std::string out;
  size_t start = 0;
  while (true) {
    size_t slash = raw.find('/', start);
    std::string_view segment = std::string_view(raw).substr(
        start, slash == std::string::npos ? std::string::npos : slash - start);
    std::string decoded;
    if (!http::PercentDecode(segment, &decoded, false)) {
      return InvalidArgumentError(fmt::format("{}: \"{}\" has a malformed %-escape", name, raw),
                                  name);
    }
    if (start != 0) out += '/';
    out += decoded;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

// order_by: [{field_name, ascending (default true)}], or strings
// ("name DESC") as the run search takes them.
StatusOr<std::vector<tracking::LoggedModelOrder>> DecodeOrderBy(const JsonValue& args) {
  std::vector<tracking::LoggedModelOrder> out;
  const JsonValue* list = args.Find("order_by");
  if (list == nullptr || list->is_null()) return out;
  std::vector<JsonValue> items = list->is_array() ? list->items() : std::vector<JsonValue>{*list};
  for (size_t i = 0; i < items.size(); ++i) {
    const JsonValue& item = items[i];
    const std::string field = fmt::format("order_by[{}]", i);
    tracking::LoggedModelOrder o;
    if (item.is_string()) {
      // A GET-style "field [ASC|DESC]" or a JSON object in a string.
      auto parsed = ParseJson(item.as_string());
      if (parsed.ok() && parsed->is_object()) {
        std::vector<JsonValue::Member> wrapped;
        wrapped.emplace_back("order_by", JsonValue::MakeArray({*parsed}));
        ASSIGN_OR_RETURN(std::vector<tracking::LoggedModelOrder> one,
                         DecodeOrderBy(JsonValue::MakeObject(std::move(wrapped))));
        out.push_back(std::move(one[0]));
        continue;
      }
      o.field = item.as_string();
      out.push_back(std::move(o));
      continue;
    }
    if (!item.is_object()) {
      return InvalidArgumentError(
          fmt::format("Invalid value for parameter '{}': expected {{field_name, ascending}}", field),
          field);
    }
    Args a(item);
    ASSIGN_OR_RETURN(o.field, a.Str("field_name"));
    if (o.field.empty()) return Missing(field + ".field_name");
    ASSIGN_OR_RETURN(std::optional<bool> asc, a.Bool("ascending"));
    o.ascending = asc.value_or(true);
    out.push_back(std::move(o));
  }
  return out;
}

// runs/outputs' models: [{model_id, step}].
StatusOr<std::vector<tracking::ModelOutput>> DecodeModelOutputs(const JsonValue& args) {
  std::vector<tracking::ModelOutput> out;
  const JsonValue* list = args.Find("models");
  if (list == nullptr || list->is_null()) return out;
  if (!list->is_array()) {
    return InvalidArgumentError("Invalid value for parameter 'models': expected an array",
                                "models");
  }
  for (size_t i = 0; i < list->items().size(); ++i) {
    const JsonValue& item = list->items()[i];
    const std::string field = fmt::format("models[{}]", i);
    if (!item.is_object()) {
      return InvalidArgumentError(
          fmt::format("Invalid value for parameter '{}': expected {{model_id, step}}", field),
          field);
    }
    Args a(item);
    tracking::ModelOutput o;
    ASSIGN_OR_RETURN(o.model_id, a.Str("model_id"));
    if (o.model_id.empty()) return Missing(field + ".model_id");
    ASSIGN_OR_RETURN(std::optional<int64_t> step, a.Int("step"));
    o.step = step.value_or(0);
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace

void Api::RegisterLoggedModelRoutes() {
  LoggedModelService* svc = logged_models_;
  tracking::ArtifactStore* files = artifacts_;

  AddMlflow(Method::kPost, "/logged-models", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    tracking::CreateLoggedModel req;
    ASSIGN_OR_RETURN(req.experiment_id, a.Str("experiment_id", true));
    ASSIGN_OR_RETURN(req.name, a.Str("name"));
    ASSIGN_OR_RETURN(req.model_type, a.Str("model_type"));
    ASSIGN_OR_RETURN(req.source_run_id, a.Str("source_run_id"));
    ASSIGN_OR_RETURN(req.params, a.Tags("params"));
    ASSIGN_OR_RETURN(req.tags, a.Tags("tags"));
    ASSIGN_OR_RETURN(LoggedModel m, svc->Create(c.principal, c.project, req));
    WriteModel(c.res, m);
    return OkStatus();
  });

  AddMlflow(Method::kGet, "/logged-models/{model_id}", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(std::string id, ModelIdParam(c.req));
    ASSIGN_OR_RETURN(LoggedModel m, svc->Get(c.principal, c.project, id));
    WriteModel(c.res, m);
    return OkStatus();
  });

  AddMlflow(Method::kPatch, "/logged-models/{model_id}", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(std::string id, ModelIdParam(c.req));
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string status_text, a.Str("status", true));
    ASSIGN_OR_RETURN(tracking::LoggedModelStatus status,
                     tracking::ParseLoggedModelStatus(status_text));
    ASSIGN_OR_RETURN(LoggedModel m, svc->Finalize(c.principal, c.project, id, status));
    WriteModel(c.res, m);
    return OkStatus();
  });

  AddMlflow(Method::kDelete, "/logged-models/{model_id}", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(std::string id, ModelIdParam(c.req));
    RETURN_IF_ERROR(svc->Delete(c.principal, c.project, id));
    WriteEmpty(c.res);
    return OkStatus();
  });

  AddMlflow(Method::kPost, "/logged-models/search", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    ASSIGN_OR_RETURN(std::vector<tracking::LoggedModelOrder> order, DecodeOrderBy(v));
    Args a(std::move(v));
    tracking::LoggedModelSearch search;
    search.order_by = std::move(order);
    ASSIGN_OR_RETURN(search.experiment_ids, a.List("experiment_ids"));
    ASSIGN_OR_RETURN(search.filter, a.Str("filter"));
    ASSIGN_OR_RETURN(search.page.page_token, a.Str("page_token"));
    ASSIGN_OR_RETURN(std::optional<int64_t> max, a.Int("max_results"));
    ASSIGN_OR_RETURN(search.page.max_results,
                     InRange(max, kDefaultSearchResults, "max_results", 1, kMaxSearchResults));
    // `datasets` narrows which metrics a filter reads; no metrics are linked
    // to logged models here, so it changes nothing.
    ASSIGN_OR_RETURN(tracking::LoggedModelPage page, svc->Search(c.principal, c.project, search));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject();
      if (!page.models.empty()) {
        w.Key("models").BeginArray();
        for (const LoggedModel& m : page.models) EncodeLoggedModel(w, m);
        w.EndArray();
      }
      WriteNextPageToken(w, page.next_page_token);
      w.EndObject();
    });
    return OkStatus();
  });

  AddMlflow(Method::kPatch, "/logged-models/{model_id}/tags", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(std::string id, ModelIdParam(c.req));
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::vector<tracking::Tag> tags, a.Tags("tags"));
    RETURN_IF_ERROR(svc->SetTags(c.principal, c.project, id, tags));
    ASSIGN_OR_RETURN(LoggedModel m, svc->Get(c.principal, c.project, id));
    WriteModel(c.res, m);
    return OkStatus();
  });

  AddMlflow(Method::kDelete, "/logged-models/{model_id}/tags/{tag_key*}",
            [svc](MlflowCall& c) -> Status {
              ASSIGN_OR_RETURN(std::string id, ModelIdParam(c.req));
              ASSIGN_OR_RETURN(std::string key, DecodedRest(c.req, "tag_key"));
              RETURN_IF_ERROR(svc->DeleteTag(c.principal, c.project, id, key));
              WriteEmpty(c.res);
              return OkStatus();
            });

  AddMlflow(Method::kPost, "/logged-models/{model_id}/params", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(std::string id, ModelIdParam(c.req));
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::vector<tracking::Param> params, a.Tags("params"));
    RETURN_IF_ERROR(svc->LogParams(c.principal, c.project, id, params));
    WriteEmpty(c.res);
    return OkStatus();
  });

  // As artifacts/list for runs: paths relative to the model's artifact
  // root, not paged.
  if (files != nullptr) {
    AddMlflow(Method::kGet, "/logged-models/{model_id}/artifacts/directories",
              [svc, files](MlflowCall& c) -> Status {
                ASSIGN_OR_RETURN(std::string id, ModelIdParam(c.req));
                ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
                Args a(std::move(v));
                ASSIGN_OR_RETURN(std::string path, a.Str("artifact_directory_path"));
                ASSIGN_OR_RETURN(std::string clean,
                                 tracking::ArtifactStore::CleanPath(path, "artifact_directory_path",
                                                                    true));
                ASSIGN_OR_RETURN(LoggedModel m, svc->Get(c.principal, c.project, id));
                ASSIGN_OR_RETURN(std::vector<tracking::FileInfo> entries,
                                 files->List({m.experiment_id, "", m.model_id}, clean));
                WriteJson(c.res, 200, [&](JsonWriter& w) {
                  w.BeginObject().Field("root_uri", m.artifact_location);
                  if (!entries.empty()) {
                    w.Key("files").BeginArray();
                    for (const tracking::FileInfo& f : entries) {
                      w.BeginObject().Field("path", f.path).Field("is_dir", f.is_dir);
                      if (!f.is_dir) w.Field("file_size", static_cast<int64_t>(f.file_size));
                      w.EndObject();
                    }
                    w.EndArray();
                  }
                  w.EndObject();
                });
                return OkStatus();
              });
  }

  AddMlflow(Method::kPost, "/runs/outputs", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    ASSIGN_OR_RETURN(std::vector<tracking::ModelOutput> outputs, DecodeModelOutputs(v));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string run_id, a.RunId());
    RETURN_IF_ERROR(svc->LogOutputs(c.principal, c.project, run_id, outputs));
    WriteEmpty(c.res);
    return OkStatus();
  });
}

}  // namespace lathe::api
