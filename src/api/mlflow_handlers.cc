// MLflow REST API 2.0 over the tracking service (docs/mlflow.md;
// ../shared/research/protocols.md §5): /api/2.0/mlflow/… and the same under
// /ajax-api/2.0/mlflow/…, plus GET /health and GET /version.
//
// Every route: authenticate (Bearer <lathe token>, or HTTP Basic whose
// password is a Lathe token) → resolve the project (the token's scope, else
// X-Lathe-Project, else "default") → decode the arguments (GET: the query
// string; else the JSON body, unknown fields ignored) → TrackingService →
// encode as MLflow does (snake_case, ms timestamps, NaN as strings, empty
// fields left out). Errors go through mlflow_errors.h.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "api/api.h"
#include "api/mlflow_call.h"
#include "api/mlflow_errors.h"
#include "api/tracking_codec.h"
#include "base/build_info.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/strings.h"
#include "tracking/tracking.h"

namespace lathe::api {

using http::Method;
using tracking::Experiment;
using tracking::Run;
using tracking::RunInfo;
using tracking::TrackingService;

namespace {

// The MLflow release whose REST API this layer follows; GET /version says it.
constexpr std::string_view kMlflowVersion = "2.9.2";
constexpr std::string_view kLogModelHistoryTag = "mlflow.log-model.history";
constexpr std::string_view kRunNameTag = "mlflow.runName";
constexpr size_t kMaxBatchBytes = 1'000'000;
constexpr int64_t kDefaultSearchResults = 1'000;
constexpr int64_t kMaxSearchResults = 50'000;
constexpr int64_t kMaxHistoryPage = 25'000;
constexpr int64_t kDefaultIntervalPoints = 320;
constexpr int64_t kMaxIntervalPoints = 2'500;
constexpr size_t kMaxIntervalRuns = 100;

// ---- authentication and project

// Standard base64 (with padding), as HTTP Basic uses it.
bool Base64Decode(std::string_view text, std::string* out) {
  std::string url;
  url.reserve(text.size());
  for (char c : text) {
    if (c == '=') break;
    url.push_back(c == '+' ? '-' : c == '/' ? '_' : c);
  }
  return Base64UrlDecode(url, out);
}

// The Lathe token of an MLflow request: `Bearer <token>`
// (MLFLOW_TRACKING_TOKEN) or `Basic base64(user:token)`
// (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD; the user name is
// not checked, the token decides who calls).
StatusOr<std::string> MlflowToken(const http::Request& req) {
  std::string_view h = req.Header("authorization");
  if (h.empty()) {
    return UnauthenticatedError(
        "missing Authorization header: set MLFLOW_TRACKING_TOKEN to a Lathe API token (or "
        "MLFLOW_TRACKING_PASSWORD to the token, with any MLFLOW_TRACKING_USERNAME)");
  }
  constexpr std::string_view kBearer = "Bearer ", kBasic = "Basic ";
  if (h.size() > kBearer.size() && h.substr(0, kBearer.size()) == kBearer) {
    return std::string(h.substr(kBearer.size()));
  }
  if (h.size() > kBasic.size() && h.substr(0, kBasic.size()) == kBasic) {
    std::string decoded;
    size_t colon = std::string::npos;
    if (Base64Decode(h.substr(kBasic.size()), &decoded)) colon = decoded.find(':');
    if (colon == std::string::npos || colon + 1 == decoded.size()) {
      return UnauthenticatedError(
          "Authorization: Basic credentials must be base64(user:token) with a Lathe API token "
          "as the password");
    }
    return decoded.substr(colon + 1);
  }
  return UnauthenticatedError("Authorization header must be \"Bearer <token>\" or \"Basic …\"");
}

// Names of the projects that scoped tokens reach, by project id (names
// never change; a deleted project's scoped tokens stop authenticating).
}  // namespace

class MlflowScopes {
 public:
  StatusOr<std::string> Get(tenancy::TenancyService& tenancy, const tenancy::Principal& p) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = names_.find(p.scope_project_id);
      if (it != names_.end()) return it->second;
    }
    ASSIGN_OR_RETURN(tenancy::Page<tenancy::Project> page, tenancy.ListProjects(p, {1, ""}));
    if (page.items.empty()) {
      return NotFoundError("the project this token is scoped to no longer exists");
    }
    std::lock_guard<std::mutex> lock(mu_);
    names_[p.scope_project_id] = page.items.front().name;
    return page.items.front().name;
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::string> names_;  // guarded by mu_
};

namespace {

StatusOr<tracking::ViewType> ParseViewType(std::string_view s, std::string_view field) {
  if (s.empty() || s == "ACTIVE_ONLY" || s == "1") return tracking::ViewType::kActiveOnly;
  if (s == "DELETED_ONLY" || s == "2") return tracking::ViewType::kDeletedOnly;
  if (s == "ALL" || s == "3") return tracking::ViewType::kAll;
  return InvalidArgumentError(
      fmt::format("Invalid value for parameter '{}': \"{}\" is not ACTIVE_ONLY, DELETED_ONLY or "
                  "ALL",
                  field, s),
      std::string(field));
}

// ---- encoding (MLflow leaves empty fields out)

void EncodeExperiment(JsonWriter& w, const Experiment& e) {
  w.BeginObject()
      .Field("experiment_id", e.id)
      .Field("name", e.name)
      .Field("artifact_location", e.artifact_location)
      .Field("lifecycle_stage", LifecycleName(e.lifecycle))
      .Field("last_update_time", e.last_update_time)
      .Field("creation_time", e.creation_time);
  EncodeKeyValues(w, "tags", e.tags);
  w.EndObject();
}

void EncodeMetric(JsonWriter& w, const tracking::Metric& m, std::string_view run_id = {}) {
  w.BeginObject().Field("key", m.key).Key("value");
  WriteMetricValue(w, m.value);
  w.Field("timestamp", m.timestamp).Field("step", m.step);
  if (!run_id.empty()) w.Field("run_id", run_id);
  w.EndObject();
}

void EncodeRunInfo(JsonWriter& w, const RunInfo& i) {
  w.BeginObject()
      .Field("run_id", i.run_id)
      .Field("run_uuid", i.run_id)
      .Field("run_name", i.run_name)
      .Field("experiment_id", i.experiment_id)
      .Field("user_id", i.user_id)
      .Field("status", tracking::RunStatusName(i.status))
      .Field("start_time", i.start_time);
  if (i.end_time != 0) w.Field("end_time", i.end_time);
  w.Field("artifact_uri", i.artifact_uri).Field("lifecycle_stage", LifecycleName(i.lifecycle));
  w.EndObject();
}

void EncodeRun(JsonWriter& w, const Run& r) {
  w.BeginObject().Key("info");
  EncodeRunInfo(w, r.info);
  w.Key("data").BeginObject();
  if (!r.latest_metrics.empty()) {
    w.Key("metrics").BeginArray();
    for (const tracking::Metric& m : r.latest_metrics) EncodeMetric(w, m);
    w.EndArray();
  }
  EncodeKeyValues(w, "params", r.params);
  EncodeKeyValues(w, "tags", r.tags);
  w.EndObject().Key("inputs").BeginObject();
  if (!r.inputs.empty()) {
    w.Key("dataset_inputs").BeginArray();
    for (const tracking::DatasetInput& in : r.inputs) {
      w.BeginObject();
      EncodeKeyValues(w, "tags", in.tags);
      const tracking::Dataset& d = in.dataset;
      w.Key("dataset").BeginObject().Field("name", d.name).Field("digest", d.digest);
      w.Field("source_type", d.source_type).Field("source", d.source);
      if (!d.schema.empty()) w.Field("schema", d.schema);
      if (!d.profile.empty()) w.Field("profile", d.profile);
      w.EndObject().EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  // MLflow 3: the logged models the run produced (runs/outputs).
  if (!r.outputs.empty()) {
    w.Key("outputs").BeginObject().Key("model_outputs").BeginArray();
    for (const tracking::ModelOutput& o : r.outputs) {
      w.BeginObject().Field("model_id", o.model_id).Field("step", o.step).EndObject();
    }
    w.EndArray().EndObject();
  }
  w.EndObject();
}

// log-inputs' `datasets`: [{tags: [{key, value}], dataset: {name, digest,
// source_type, source, schema, profile}}].
StatusOr<std::vector<tracking::DatasetInput>> DecodeDatasetInputs(const JsonValue& args) {
  std::vector<tracking::DatasetInput> out;
  const JsonValue* list = args.Find("datasets");
  if (list == nullptr || list->is_null()) return out;
  auto bad = [](const std::string& field, std::string_view want) {
    return InvalidArgumentError(fmt::format("Invalid value for parameter '{}': expected {}", field, want),
                                field);
  };
  if (!list->is_array()) return bad("datasets", "an array");
  for (size_t i = 0; i < list->items().size(); ++i) {
    const JsonValue& item = list->items()[i];
    const std::string field = fmt::format("datasets[{}]", i);
    if (!item.is_object()) return bad(field, "an object {tags, dataset}");
    const JsonValue* d = item.Find("dataset");
    if (d == nullptr || !d->is_object()) return bad(field + ".dataset", "an object");
    tracking::DatasetInput in;
    struct Slot {
      const char* key;
      std::string* value;
    };
    const Slot slots[] = {{"name", &in.dataset.name},           {"digest", &in.dataset.digest},
                          {"source_type", &in.dataset.source_type}, {"source", &in.dataset.source},
                          {"schema", &in.dataset.schema},       {"profile", &in.dataset.profile}};
    for (const Slot& slot : slots) {
      const JsonValue* v = d->Find(slot.key);
      if (v == nullptr || v->is_null()) continue;
      if (!v->is_string()) return bad(fmt::format("{}.dataset.{}", field, slot.key), "a string");
      *slot.value = v->as_string();
    }
    if (const JsonValue* tags = item.Find("tags"); tags != nullptr) {
      // Args names errors after its key: give it the full path.
      std::vector<JsonValue::Member> named;
      named.emplace_back(field + ".tags", *tags);
      ASSIGN_OR_RETURN(in.tags, Args(JsonValue::MakeObject(std::move(named))).Tags(field + ".tags"));
    }
    out.push_back(std::move(in));
  }
  return out;
}

// ---- experiments/search filter: the `name` attribute only
// (`name = 'x'`, `name != 'x'`, `name LIKE 'x%'`, `name ILIKE '%X%'`,
// conditions joined by AND; `attribute.`/`attributes.` prefixes allowed).

struct NameCondition {
  std::string op;  // "=", "!=", "LIKE", "ILIKE"
  std::string value;
};

StatusOr<std::vector<NameCondition>> ParseNameFilter(std::string_view filter) {
  std::vector<NameCondition> out;
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError(
        fmt::format("Invalid filter '{}': {} (experiments/search supports conditions on name: "
                    "name = 'x', name != 'x', name LIKE 'x%', name ILIKE 'x%', joined by AND)",
                    filter, why),
        "filter");
  };
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < filter.size() && (filter[i] == ' ' || filter[i] == '\t')) ++i;
  };
  auto word = [&] {
    skip_ws();
    size_t start = i;
    while (i < filter.size() && filter[i] != ' ' && filter[i] != '\t' && filter[i] != '\'' &&
           filter[i] != '=' && filter[i] != '!')
      ++i;
    return std::string(filter.substr(start, i - start));
  };
  skip_ws();
  while (i < filter.size()) {
    std::string ident = word();
    for (std::string_view prefix : {"attributes.", "attribute.", "attr."}) {
      if (ident.rfind(prefix, 0) == 0) ident = ident.substr(prefix.size());
    }
    if (AsciiLower(ident) != "name") return bad(fmt::format("unsupported identifier \"{}\"", ident));
    skip_ws();
    NameCondition c;
    if (filter.substr(i, 2) == "!=") {
      c.op = "!=";
      i += 2;
    } else if (i < filter.size() && filter[i] == '=') {
      c.op = "=";
      ++i;
    } else {
      c.op = word();
      for (char& ch : c.op) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      if (c.op != "LIKE" && c.op != "ILIKE") return bad("unsupported comparator");
    }
    skip_ws();
    if (i >= filter.size() || filter[i] != '\'') return bad("expected a quoted value");
    size_t end = filter.find('\'', i + 1);
    if (end == std::string_view::npos) return bad("unterminated string");
    c.value = std::string(filter.substr(i + 1, end - i - 1));
    i = end + 1;
    out.push_back(std::move(c));
    skip_ws();
    if (i >= filter.size()) break;
    if (AsciiLower(word()) != "and") return bad("conditions must be joined by AND");
    skip_ws();
  }
  return out;
}

bool NameMatches(const std::vector<NameCondition>& conds, const std::string& name) {
  for (const NameCondition& c : conds) {
    bool ok = c.op == "="      ? name == c.value
              : c.op == "!="   ? name != c.value
              : c.op == "LIKE" ? SqlLikeMatch(name, c.value)
                               : SqlLikeMatch(AsciiLower(name), AsciiLower(c.value));
    if (!ok) return false;
  }
  return true;
}

// The tag value log-model appends to: a JSON array of MLmodel dicts.
StatusOr<std::string> AppendModelHistory(const std::string& history, const std::string& model_json) {
  auto model = ParseJson(model_json);
  if (!model.ok() || !model->is_object()) {
    return InvalidArgumentError(
        "Invalid value for parameter 'model_json': expected an MLmodel as a JSON object",
        "model_json");
  }
  std::vector<JsonValue> items;
  if (!history.empty()) {
    auto old = ParseJson(history);
    if (old.ok() && old->is_array()) items = old->items();
  }
  items.push_back(std::move(*model));
  return JsonValue::MakeArray(std::move(items)).Dump();
}

}  // namespace

// Registers `rpc` under both MLflow prefixes (/api/2.0/mlflow and
// /ajax-api/2.0/mlflow) behind MLflow authentication and project resolution.
void Api::AddMlflow(Method method, std::string_view rpc, MlflowHandler handler) {
  AddMlflowRoute(method, fmt::format("/api/2.0/mlflow{}", rpc), handler);
  AddMlflowRoute(method, fmt::format("/ajax-api/2.0/mlflow{}", rpc), std::move(handler));
}

void Api::AddMlflowRoute(Method method, std::string pattern, MlflowHandler handler) {
  if (mlflow_scopes_ == nullptr) mlflow_scopes_ = std::make_shared<MlflowScopes>();
  http::Handler h = [this, scopes = mlflow_scopes_, handler = std::move(handler)](http::Request& req,
                                                                  http::Response& res) {
    auto token = MlflowToken(req);
    if (!token.ok()) return WriteMlflowError(token.status(), req.request_id, res);
    auto principal = tenancy_.Authenticate(*token);
    if (!principal.ok()) return WriteMlflowError(principal.status(), req.request_id, res);
    req.user = principal->user_name;
    std::string project;
    if (principal->scoped()) {
      auto name = scopes->Get(tenancy_, *principal);
      if (!name.ok()) return WriteMlflowError(name.status(), req.request_id, res);
      project = std::move(*name);
    } else {
      project = std::string(req.Header("x-lathe-project"));
      if (project.empty()) project = std::string(kDefaultProject);
    }
    MlflowCall call{req, res, *principal, project};
    Status st = handler(call);
    if (st.ok()) return;
    if (st.code() == StatusCode::kNotFound && !principal->scoped()) {
      // Say so when it is the project, not the resource, that is missing.
      auto proj = tenancy_.AuthorizeProject(*principal, project, tenancy::Role::kViewer);
      if (!proj.ok() && proj.status().code() == StatusCode::kNotFound) {
        st = NotFoundError(fmt::format(
            "project \"{}\" does not exist or is not yours. MLflow calls act in the project "
            "of a project-scoped token (MLFLOW_TRACKING_TOKEN), else in the project named by "
            "the X-Lathe-Project header, else in the project \"default\": create it (lathe "
            "project create default) or choose another",
            project));
      }
    }
    WriteMlflowError(st, req.request_id, res);
  };
  router_.Add(method, pattern, std::move(h));
}

void Api::RegisterMlflowRoutes() {
  TrackingService* svc = tracking_;
  auto add = [this](Method method, std::string_view rpc, MlflowHandler handler) {
    AddMlflow(method, rpc, std::move(handler));
  };

  // ----- plain routes
  router_.Add(Method::kGet, "/health", [](http::Request&, http::Response& res) {
    res.status = 200;
    res.content_type = "text/plain; charset=utf-8";
    res.body = "OK";
  });
  router_.Add(Method::kGet, "/version", [](http::Request&, http::Response& res) {
    res.status = 200;
    res.content_type = "text/plain; charset=utf-8";
    res.body = std::string(kMlflowVersion);
    res.SetHeader("X-Lathe-Version", LATHE_VERSION);
  });

  // ----- experiments
  add(Method::kPost, "/experiments/create", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("name", true));
    ASSIGN_OR_RETURN(std::vector<tracking::Tag> tags, a.Tags("tags"));
    ASSIGN_OR_RETURN(Experiment e, svc->CreateExperiment(c.principal, c.project, name, tags));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Field("experiment_id", e.id).EndObject();
    });
    return OkStatus();
  });

  add(Method::kGet, "/experiments/get", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string id, a.Str("experiment_id", true));
    ASSIGN_OR_RETURN(Experiment e, svc->GetExperiment(c.principal, c.project, id));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Key("experiment");
      EncodeExperiment(w, e);
      w.EndObject();
    });
    return OkStatus();
  });

  add(Method::kGet, "/experiments/get-by-name", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string name, a.Str("experiment_name", true));
    ASSIGN_OR_RETURN(Experiment e, svc->GetExperimentByName(c.principal, c.project, name));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Key("experiment");
      EncodeExperiment(w, e);
      w.EndObject();
    });
    return OkStatus();
  });

  MlflowHandler search_experiments = [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::optional<int64_t> max, a.Int("max_results"));
    ASSIGN_OR_RETURN(std::string view_text, a.Str("view_type"));
    ASSIGN_OR_RETURN(std::string filter, a.Str("filter"));
    tracking::Page page;
    ASSIGN_OR_RETURN(page.max_results,
                     InRange(max, kDefaultSearchResults, "max_results", 1, kMaxSearchResults));
    ASSIGN_OR_RETURN(page.page_token, a.Str("page_token"));
    ASSIGN_OR_RETURN(tracking::ViewType view, ParseViewType(view_text, "view_type"));
    std::vector<NameCondition> conds;
    if (!filter.empty()) {
      ASSIGN_OR_RETURN(conds, ParseNameFilter(filter));
    }
    std::string next;
    ASSIGN_OR_RETURN(std::vector<Experiment> list,
                     svc->SearchExperiments(c.principal, c.project, view, page, &next));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject();
      bool any = false;
      for (const Experiment& e : list) {
        if (!NameMatches(conds, e.name)) continue;
        if (!any) w.Key("experiments").BeginArray();
        any = true;
        EncodeExperiment(w, e);
      }
      if (any) w.EndArray();
      WriteNextPageToken(w, next);
      w.EndObject();
    });
    return OkStatus();
  };
  add(Method::kGet, "/experiments/search", search_experiments);
  add(Method::kPost, "/experiments/search", search_experiments);

  add(Method::kPost, "/experiments/update", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string id, a.Str("experiment_id", true));
    ASSIGN_OR_RETURN(std::string new_name, a.Str("new_name"));
    if (new_name.empty()) {
      RETURN_IF_ERROR(svc->GetExperiment(c.principal, c.project, id).status());
    } else {
      RETURN_IF_ERROR(svc->RenameExperiment(c.principal, c.project, id, new_name));
    }
    WriteEmpty(c.res);
    return OkStatus();
  });

  // (A structured binding cannot be captured by a lambda under clang 14.)
  for (const auto& route : {std::pair{"/experiments/delete", tracking::Lifecycle::kDeleted},
                            std::pair{"/experiments/restore", tracking::Lifecycle::kActive}}) {
    const tracking::Lifecycle lifecycle = route.second;
    add(Method::kPost, route.first, [svc, lifecycle](MlflowCall& c) -> Status {
      ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
      Args a(std::move(v));
      ASSIGN_OR_RETURN(std::string id, a.Str("experiment_id", true));
      RETURN_IF_ERROR(svc->SetExperimentLifecycle(c.principal, c.project, id, lifecycle));
      WriteEmpty(c.res);
      return OkStatus();
    });
  }

  add(Method::kPost, "/experiments/set-experiment-tag", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string id, a.Str("experiment_id", true));
    ASSIGN_OR_RETURN(std::string key, a.Str("key", true));
    ASSIGN_OR_RETURN(std::string value, a.Str("value"));
    RETURN_IF_ERROR(svc->SetExperimentTag(c.principal, c.project, id, {key, value}));
    WriteEmpty(c.res);
    return OkStatus();
  });

  add(Method::kPost, "/experiments/delete-experiment-tag", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string id, a.Str("experiment_id", true));
    ASSIGN_OR_RETURN(std::string key, a.Str("key", true));
    RETURN_IF_ERROR(svc->DeleteExperimentTag(c.principal, c.project, id, key));
    WriteEmpty(c.res);
    return OkStatus();
  });

  // ----- runs
  add(Method::kPost, "/runs/create", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    tracking::CreateRun req;
    ASSIGN_OR_RETURN(req.experiment_id, a.Str("experiment_id"));
    ASSIGN_OR_RETURN(req.run_name, a.Str("run_name"));
    ASSIGN_OR_RETURN(std::optional<int64_t> start, a.Int("start_time"));
    ASSIGN_OR_RETURN(req.tags, a.Tags("tags"));
    // The run belongs to the caller (the token's user), whatever user_id says.
    if (start) req.start_time = *start;
    bool name_tag = false;
    for (const tracking::Tag& t : req.tags) {
      if (t.key != kRunNameTag) continue;
      name_tag = true;
      if (req.run_name.empty()) req.run_name = t.value;
    }
    if (!name_tag && !req.run_name.empty()) {
      req.tags.push_back({std::string(kRunNameTag), req.run_name});
    }
    ASSIGN_OR_RETURN(Run run, svc->CreateRun(c.principal, c.project, req));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Key("run");
      EncodeRun(w, run);
      w.EndObject();
    });
    return OkStatus();
  });

  add(Method::kGet, "/runs/get", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string run_id, a.RunId());
    ASSIGN_OR_RETURN(Run run, svc->GetRun(c.principal, c.project, run_id));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Key("run");
      EncodeRun(w, run);
      w.EndObject();
    });
    return OkStatus();
  });

  add(Method::kPost, "/runs/update", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string run_id, a.RunId());
    ASSIGN_OR_RETURN(std::string status_text, a.Str("status"));
    ASSIGN_OR_RETURN(std::optional<int64_t> end_time, a.Int("end_time"));
    ASSIGN_OR_RETURN(std::string run_name, a.Str("run_name"));
    std::optional<tracking::RunStatus> status;
    if (!status_text.empty()) {
      ASSIGN_OR_RETURN(status, tracking::ParseRunStatus(status_text));
    }
    std::optional<std::string> name;
    if (!run_name.empty()) name = run_name;
    ASSIGN_OR_RETURN(RunInfo info,
                     svc->UpdateRun(c.principal, c.project, run_id, status, end_time, name));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Key("run_info");
      EncodeRunInfo(w, info);
      w.EndObject();
    });
    return OkStatus();
  });

  // (A structured binding cannot be captured by a lambda under clang 14.)
  for (const auto& route : {std::pair{"/runs/delete", tracking::Lifecycle::kDeleted},
                            std::pair{"/runs/restore", tracking::Lifecycle::kActive}}) {
    const tracking::Lifecycle lifecycle = route.second;
    add(Method::kPost, route.first, [svc, lifecycle](MlflowCall& c) -> Status {
      ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
      Args a(std::move(v));
      ASSIGN_OR_RETURN(std::string run_id, a.RunId());
      RETURN_IF_ERROR(svc->SetRunLifecycle(c.principal, c.project, run_id, lifecycle));
      WriteEmpty(c.res);
      return OkStatus();
    });
  }

  add(Method::kPost, "/runs/search", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    tracking::RunSearch search;
    ASSIGN_OR_RETURN(search.experiment_ids, a.List("experiment_ids"));
    ASSIGN_OR_RETURN(search.filter, a.Str("filter"));
    ASSIGN_OR_RETURN(search.order_by, a.List("order_by"));
    ASSIGN_OR_RETURN(search.page.page_token, a.Str("page_token"));
    ASSIGN_OR_RETURN(std::string view_text, a.Str("run_view_type"));
    ASSIGN_OR_RETURN(search.view, ParseViewType(view_text, "run_view_type"));
    ASSIGN_OR_RETURN(std::optional<int64_t> max, a.Int("max_results"));
    ASSIGN_OR_RETURN(search.page.max_results,
                     InRange(max, kDefaultSearchResults, "max_results", 1, kMaxSearchResults));
    tracking::RunPage page;
    if (!search.experiment_ids.empty()) {
      ASSIGN_OR_RETURN(page, svc->SearchRuns(c.principal, c.project, search));
    }
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject();
      if (!page.runs.empty()) {
        w.Key("runs").BeginArray();
        for (const Run& run : page.runs) EncodeRun(w, run);
        w.EndArray();
      }
      WriteNextPageToken(w, page.next_page_token);
      w.EndObject();
    });
    return OkStatus();
  });

  // ----- logging: log-metric and log-batch decode with simdjson directly.
  add(Method::kPost, "/runs/log-metric", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(LogBody b, DecodeLogBody(c.req.body, LogBodyFormat::kMlflowMetric,
                                              SystemClock().NowMicros() / 1000));
    if (b.run_id.empty()) return Missing("run_id");
    RETURN_IF_ERROR(svc->LogBatch(c.principal, c.project, b.run_id, b.metrics, {}, {}));
    WriteEmpty(c.res);
    return OkStatus();
  });

  add(Method::kPost, "/runs/log-batch", [svc](MlflowCall& c) -> Status {
    if (c.req.body.size() > kMaxBatchBytes) {
      return InvalidArgumentError(
          fmt::format("Batched logging API requests must be at most {} bytes, got a request of "
                      "{} bytes",
                      kMaxBatchBytes, c.req.body.size()),
          "body");
    }
    ASSIGN_OR_RETURN(LogBody b, DecodeLogBody(c.req.body, LogBodyFormat::kMlflowBatch,
                                              SystemClock().NowMicros() / 1000));
    if (b.run_id.empty()) return Missing("run_id");
    RETURN_IF_ERROR(svc->LogBatch(c.principal, c.project, b.run_id, b.metrics, b.params, b.tags));
    WriteEmpty(c.res);
    return OkStatus();
  });

  add(Method::kPost, "/runs/log-parameter", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string run_id, a.RunId());
    ASSIGN_OR_RETURN(std::string key, a.Str("key", true));
    ASSIGN_OR_RETURN(std::string value, a.Str("value"));
    RETURN_IF_ERROR(svc->LogBatch(c.principal, c.project, run_id, {}, {{key, value}}, {}));
    WriteEmpty(c.res);
    return OkStatus();
  });

  add(Method::kPost, "/runs/set-tag", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string run_id, a.RunId());
    ASSIGN_OR_RETURN(std::string key, a.Str("key", true));
    ASSIGN_OR_RETURN(std::string value, a.Str("value"));
    RETURN_IF_ERROR(svc->LogBatch(c.principal, c.project, run_id, {}, {}, {{key, value}}));
    WriteEmpty(c.res);
    return OkStatus();
  });

  add(Method::kPost, "/runs/delete-tag", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string run_id, a.RunId());
    ASSIGN_OR_RETURN(std::string key, a.Str("key", true));
    RETURN_IF_ERROR(svc->DeleteTag(c.principal, c.project, run_id, key));
    WriteEmpty(c.res);
    return OkStatus();
  });

  // MLflow keeps logged models as a JSON array in one run tag.
  add(Method::kPost, "/runs/log-model", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string run_id, a.RunId());
    ASSIGN_OR_RETURN(std::string model_json, a.Str("model_json", true));
    ASSIGN_OR_RETURN(Run run, svc->GetRun(c.principal, c.project, run_id));
    std::string history;
    for (const tracking::Tag& t : run.tags) {
      if (t.key == kLogModelHistoryTag) history = t.value;
    }
    ASSIGN_OR_RETURN(std::string value, AppendModelHistory(history, model_json));
    RETURN_IF_ERROR(svc->LogBatch(c.principal, c.project, run_id, {}, {},
                                  {{std::string(kLogModelHistoryTag), value}}));
    WriteEmpty(c.res);
    return OkStatus();
  });

  // Dataset inputs are stored; model inputs (MLflow 3) are accepted and
  // ignored (docs/mlflow.md).
  add(Method::kPost, "/runs/log-inputs", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    ASSIGN_OR_RETURN(std::vector<tracking::DatasetInput> inputs, DecodeDatasetInputs(v));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string run_id, a.RunId());
    RETURN_IF_ERROR(svc->LogInputs(c.principal, c.project, run_id, inputs));
    WriteEmpty(c.res);
    return OkStatus();
  });

  // ----- metrics
  add(Method::kGet, "/metrics/get-history", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    tracking::HistoryRequest req;
    ASSIGN_OR_RETURN(req.run_id, a.RunId());
    ASSIGN_OR_RETURN(req.key, a.Str("metric_key", true));
    ASSIGN_OR_RETURN(req.page.page_token, a.Str("page_token"));
    ASSIGN_OR_RETURN(std::optional<int64_t> max, a.Int("max_results"));
    ASSIGN_OR_RETURN(req.page.max_results,
                     InRange(max, kMaxHistoryPage, "max_results", 1, kMaxHistoryPage));
    // Without max_results MLflow answers every point in one response.
    const bool all = !max && req.page.page_token.empty();
    std::vector<tracking::Metric> points;
    std::string next;
    while (true) {
      ASSIGN_OR_RETURN(tracking::History h, svc->GetHistory(c.principal, c.project, req));
      if (points.empty()) {
        points = std::move(h.points);
      } else {
        points.insert(points.end(), h.points.begin(), h.points.end());
      }
      next = std::move(h.next_page_token);
      if (!all || next.empty()) break;
      req.page.page_token = next;
    }
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject();
      if (!points.empty()) {
        w.Key("metrics").BeginArray();
        for (const tracking::Metric& m : points) EncodeMetric(w, m);
        w.EndArray();
      }
      if (!all) WriteNextPageToken(w, next);
      w.EndObject();
    });
    return OkStatus();
  });

  add(Method::kGet, "/metrics/get-history-bulk-interval", [svc](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::vector<std::string> run_ids, a.List("run_ids"));
    ASSIGN_OR_RETURN(std::string key, a.Str("metric_key", true));
    ASSIGN_OR_RETURN(std::optional<int64_t> start, a.Int("start_step"));
    ASSIGN_OR_RETURN(std::optional<int64_t> end, a.Int("end_step"));
    ASSIGN_OR_RETURN(std::optional<int64_t> max, a.Int("max_results"));
    if (run_ids.empty()) return Missing("run_ids");
    if (run_ids.size() > kMaxIntervalRuns) {
      return InvalidArgumentError(
          fmt::format("GetMetricHistoryBulkInterval request must specify at most {} run_ids. "
                      "Received {} run_ids.",
                      kMaxIntervalRuns, run_ids.size()),
          "run_ids");
    }
    if (start.has_value() != end.has_value()) {
      return InvalidArgumentError(
          "If either start step or end step are specified, both must be specified.",
          start ? "end_step" : "start_step");
    }
    if (start && *start > *end) {
      return InvalidArgumentError("end_step must be greater than start_step.", "end_step");
    }
    ASSIGN_OR_RETURN(int64_t points,
                     InRange(max, kDefaultIntervalPoints, "max_results", 1, kMaxIntervalPoints));
    std::string out;
    JsonWriter w(&out);
    w.BeginObject();
    bool any = false;
    for (const std::string& run_id : run_ids) {
      tracking::HistoryRequest req;
      req.run_id = run_id;
      req.key = key;
      req.start_step = start;
      req.end_step = end;
      req.max_points = points;
      ASSIGN_OR_RETURN(tracking::History h, svc->GetHistory(c.principal, c.project, req));
      for (const tracking::Metric& m : h.points) {
        if (!any) w.Key("metrics").BeginArray();
        any = true;
        EncodeMetric(w, m, run_id);
      }
    }
    if (any) w.EndArray();
    w.EndObject();
    c.res.status = 200;
    c.res.content_type = "application/json";
    c.res.body = std::move(out);
    return OkStatus();
  });

  // artifacts/list is in artifact_handlers.cc, with the artifact store.
}

}  // namespace lathe::api
