// /api/v1/projects/{project}/… routes for experiment tracking
// (docs/tracking.md "Native API"): decode → tracking::TrackingService →
// encode. Metric ingest (POST …/runs/{id}/log) decodes with simdjson
// directly (tracking_codec.h); every other body goes through the JSON tree.
#include <cerrno>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "api/api.h"
#include "api/tracking_codec.h"
#include "base/clock.h"
#include "tracking/tracking.h"

namespace lathe::api {

using http::Method;
using tracking::Experiment;
using tracking::Run;
using tracking::RunInfo;
using tracking::TrackingService;

namespace {

constexpr int64_t kDefaultRunLimit = 100;
constexpr int64_t kMaxRunLimit = 50'000;  // MLflow's search_runs limit
constexpr int64_t kDefaultPointLimit = 1'000;
constexpr int64_t kMaxPointLimit = 25'000;  // MLflow's get-history page
constexpr int64_t kMaxDownsampledPoints = 10'000;
constexpr int64_t kDefaultComparePoints = 1'000;
constexpr size_t kMaxCompareRuns = 100;
constexpr int64_t kExperimentPage = 1'000;

// ---- encoding

void WriteMillisTime(JsonWriter& w, std::string_view key, int64_t ms) {
  WriteTimeField(w, key, ms * 1000);
}

void WriteTagMap(JsonWriter& w, std::string_view key, const std::vector<tracking::Tag>& tags) {
  w.Key(key).BeginObject();
  for (const tracking::Tag& t : tags) w.Field(t.key, t.value);
  w.EndObject();
}

void EncodeExperiment(JsonWriter& w, const Experiment& e) {
  w.BeginObject()
      .Field("id", e.id)
      .Field("name", e.name)
      .Field("project", e.project)
      .Field("artifact_location", e.artifact_location)
      .Field("lifecycle", LifecycleName(e.lifecycle));
  WriteMillisTime(w, "created_at", e.creation_time);
  WriteMillisTime(w, "updated_at", e.last_update_time);
  WriteTagMap(w, "tags", e.tags);
  w.EndObject();
}

void EncodePoint(JsonWriter& w, const tracking::Metric& m) {
  w.BeginObject().Field("step", m.step).Key("value");
  WriteMetricValue(w, m.value);
  w.Field("timestamp", m.timestamp).EndObject();
}

void EncodeRunInfoFields(JsonWriter& w, const RunInfo& i) {
  w.Field("run_id", i.run_id)
      .Field("run_name", i.run_name)
      .Field("experiment_id", i.experiment_id)
      .Field("user", i.user_id)
      .Field("status", tracking::RunStatusName(i.status));
  WriteMillisTime(w, "start_time", i.start_time);
  WriteMillisTime(w, "end_time", i.end_time);
  w.Field("artifact_uri", i.artifact_uri).Field("lifecycle", LifecycleName(i.lifecycle));
  w.Key("job_id");
  if (i.job_id.empty()) {
    w.Null();
  } else {
    w.String(i.job_id);
  }
}

void EncodeRun(JsonWriter& w, const Run& r) {
  w.BeginObject();
  EncodeRunInfoFields(w, r.info);
  WriteTagMap(w, "params", r.params);
  WriteTagMap(w, "tags", r.tags);
  w.Key("metrics").BeginObject();
  for (const tracking::Metric& m : r.latest_metrics) {
    w.Key(m.key).BeginObject().Key("value");
    WriteMetricValue(w, m.value);
    w.Field("step", m.step).Field("timestamp", m.timestamp).EndObject();
  }
  w.EndObject().EndObject();
}

// ---- decoding

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::vector<tracking::Tag> ToTags(const std::map<std::string, std::string>& m) {
  std::vector<tracking::Tag> out;
  out.reserve(m.size());
  for (const auto& [k, v] : m) out.push_back({k, v});
  return out;
}

// A time given as RFC 3339 or as integer milliseconds since the epoch.
StatusOr<int64_t> TimeMillis(const JsonValue& v, const std::string& field) {
  if (v.type() == JsonValue::Type::kInt) return v.as_int();
  if (v.is_string()) return ParseRfc3339Millis(v.as_string(), field);
  return InvalidArgumentError(
      fmt::format("{}: expected an RFC 3339 time or milliseconds since the epoch, got {}", field,
                  JsonTypeName(v.type())),
      field);
}

StatusOr<tracking::ViewType> ParseView(std::string_view s, std::string_view field) {
  if (s.empty() || s == "active") return tracking::ViewType::kActiveOnly;
  if (s == "deleted") return tracking::ViewType::kDeletedOnly;
  if (s == "all") return tracking::ViewType::kAll;
  return InvalidArgumentError(
      fmt::format("{}: \"{}\" is not one of active, deleted, all", field, s), std::string(field));
}

StatusOr<int64_t> QueryInt(const http::Request& req, std::string_view name, int64_t fallback,
                           int64_t min, int64_t max) {
  std::string text;
  if (!req.QueryParam(name, &text) || text.empty()) return fallback;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0' || errno != 0 || v < min || v > max) {
    return InvalidArgumentError(
        fmt::format("{}: \"{}\" is not an integer in [{}, {}]", name, text, min, max),
        std::string(name));
  }
  return v;
}

StatusOr<int64_t> CheckedRange(int64_t v, std::string_view field, int64_t min, int64_t max) {
  if (v < min || v > max) {
    return InvalidArgumentError(fmt::format("{}: {} is not in [{}, {}]", field, v, min, max),
                                std::string(field));
  }
  return v;
}

// An experiment by id, else by name.
StatusOr<Experiment> ResolveExperiment(TrackingService& svc, const tenancy::Principal& p,
                                       const std::string& project, const std::string& id_or_name) {
  if (AllDigits(id_or_name)) {
    auto e = svc.GetExperiment(p, project, id_or_name);
    if (e.ok() || e.status().code() != StatusCode::kNotFound) return e;
  }
  return svc.GetExperimentByName(p, project, id_or_name);
}

// Every experiment id of the project (any lifecycle).
StatusOr<std::vector<std::string>> AllExperimentIds(TrackingService& svc,
                                                    const tenancy::Principal& p,
                                                    const std::string& project) {
  std::vector<std::string> ids;
  tracking::Page page;
  page.max_results = kExperimentPage;
  do {
    std::string next;
    ASSIGN_OR_RETURN(std::vector<Experiment> list,
                     svc.SearchExperiments(p, project, tracking::ViewType::kAll, page, &next));
    for (const Experiment& e : list) ids.push_back(e.id);
    page.page_token = std::move(next);
  } while (!page.page_token.empty());
  return ids;
}

// Every point of a history request, following its pages.
StatusOr<tracking::History> FullHistory(TrackingService& svc, const tenancy::Principal& p,
                                        const std::string& project, tracking::HistoryRequest req) {
  tracking::History all;
  req.page.max_results = kMaxPointLimit;
  while (true) {
    ASSIGN_OR_RETURN(tracking::History h, svc.GetHistory(p, project, req));
    if (all.points.empty()) {
      all.points = std::move(h.points);
    } else {
      all.points.insert(all.points.end(), h.points.begin(), h.points.end());
    }
    all.total_points = h.total_points;
    all.downsampled = h.downsampled;
    if (h.next_page_token.empty()) break;
    req.page.page_token = std::move(h.next_page_token);
  }
  return all;
}

}  // namespace

void Api::RegisterTrackingRoutes() {
  TrackingService* svc = tracking_;
  const std::string base = "/api/v1/projects/{project}";

  // ----- experiments
  Authed(Method::kPost, base + "/experiments", [svc](Call& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
    std::string name;
    std::map<std::string, std::string> tags;
    RETURN_IF_ERROR(r.String("name", &name, Presence::kRequired));
    RETURN_IF_ERROR(r.StringMap("tags", &tags));
    RETURN_IF_ERROR(r.Finish());
    ASSIGN_OR_RETURN(Experiment e, svc->CreateExperiment(*c.principal, c.req.PathParam("project"),
                                                         name, ToTags(tags)));
    WriteJson(c.res, 201, [&](JsonWriter& w) { EncodeExperiment(w, e); });
    return OkStatus();
  });

  Authed(Method::kGet, base + "/experiments", [svc](Call& c) -> Status {
    ASSIGN_OR_RETURN(tenancy::PageRequest page, PageFromQuery(c.req));
    std::string view_text;
    c.req.QueryParam("view", &view_text);
    ASSIGN_OR_RETURN(tracking::ViewType view, ParseView(view_text, "view"));
    tracking::Page p{page.limit, page.page_token};
    std::string next;
    ASSIGN_OR_RETURN(std::vector<Experiment> list,
                     svc->SearchExperiments(*c.principal, c.req.PathParam("project"), view, p,
                                            &next));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Key("items").BeginArray();
      for (const Experiment& e : list) EncodeExperiment(w, e);
      w.EndArray().Field("next_page_token", next).EndObject();
    });
    return OkStatus();
  });

  Authed(Method::kGet, base + "/experiments/{experiment}", [svc](Call& c) -> Status {
    ASSIGN_OR_RETURN(Experiment e, ResolveExperiment(*svc, *c.principal,
                                                     c.req.PathParam("project"),
                                                     c.req.PathParam("experiment")));
    WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeExperiment(w, e); });
    return OkStatus();
  });

  // ----- runs
  Authed(Method::kPost, base + "/runs", [svc](Call& c) -> Status {
    const std::string& project = c.req.PathParam("project");
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
    std::string experiment;
    std::map<std::string, std::string> tags;
    tracking::CreateRun req;
    RETURN_IF_ERROR(r.String("experiment", &experiment));
    RETURN_IF_ERROR(r.String("run_name", &req.run_name));
    RETURN_IF_ERROR(r.StringMap("tags", &tags));
    ASSIGN_OR_RETURN(const JsonValue* start, r.Value("start_time"));
    if (start != nullptr) {
      ASSIGN_OR_RETURN(req.start_time, TimeMillis(*start, "start_time"));
    }
    RETURN_IF_ERROR(r.Finish());
    req.tags = ToTags(tags);
    if (!experiment.empty()) {
      // An experiment named here is created on first use, as MLflow's
      // set_experiment does.
      auto e = ResolveExperiment(*svc, *c.principal, project, experiment);
      if (!e.ok() && e.status().code() == StatusCode::kNotFound) {
        e = svc->CreateExperiment(*c.principal, project, experiment, {});
        if (!e.ok() && e.status().code() == StatusCode::kAlreadyExists) {
          e = svc->GetExperimentByName(*c.principal, project, experiment);  // lost a race
        }
      }
      if (!e.ok()) return e.status().WithField("experiment");
      req.experiment_id = e->id;
    }
    ASSIGN_OR_RETURN(Run run, svc->CreateRun(*c.principal, project, req));
    WriteJson(c.res, 201, [&](JsonWriter& w) { EncodeRun(w, run); });
    return OkStatus();
  });

  Authed(Method::kGet, base + "/runs/{run}", [svc](Call& c) -> Status {
    ASSIGN_OR_RETURN(Run run, svc->GetRun(*c.principal, c.req.PathParam("project"),
                                          c.req.PathParam("run")));
    WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeRun(w, run); });
    return OkStatus();
  });

  Authed(Method::kPatch, base + "/runs/{run}", [svc](Call& c) -> Status {
    const std::string& project = c.req.PathParam("project");
    const std::string& run_id = c.req.PathParam("run");
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
    std::string status_text, run_name;
    bool has_name = body.Find("run_name") != nullptr;
    RETURN_IF_ERROR(r.String("status", &status_text));
    RETURN_IF_ERROR(r.String("run_name", &run_name));
    ASSIGN_OR_RETURN(const JsonValue* end, r.Value("end_time"));
    RETURN_IF_ERROR(r.Finish());
    std::optional<tracking::RunStatus> status;
    if (!status_text.empty()) {
      ASSIGN_OR_RETURN(status, tracking::ParseRunStatus(status_text));
    }
    std::optional<int64_t> end_time;
    if (end != nullptr) {
      ASSIGN_OR_RETURN(end_time, TimeMillis(*end, "end_time"));
    } else if (status && *status != tracking::RunStatus::kRunning &&
               *status != tracking::RunStatus::kScheduled) {
      end_time = SystemClock().NowMicros() / 1000;  // a run that ends now
    }
    std::optional<std::string> name;
    if (has_name) name = run_name;
    RETURN_IF_ERROR(svc->UpdateRun(*c.principal, project, run_id, status, end_time, name).status());
    ASSIGN_OR_RETURN(Run run, svc->GetRun(*c.principal, project, run_id));
    WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeRun(w, run); });
    return OkStatus();
  });

  Authed(Method::kPost, base + "/runs/{run}/log", [svc](Call& c) -> Status {
    ASSIGN_OR_RETURN(LogBody b, DecodeLogBody(c.req.body, LogBodyFormat::kNative,
                                              SystemClock().NowMicros() / 1000));
    RETURN_IF_ERROR(svc->LogBatch(*c.principal, c.req.PathParam("project"),
                                  c.req.PathParam("run"), b.metrics, b.params, b.tags));
    c.res.status = 200;
    c.res.content_type = "application/json";
    c.res.body = "{}";
    return OkStatus();
  });

  Authed(Method::kPost, base + "/runs:search", [svc](Call& c) -> Status {
    const std::string& project = c.req.PathParam("project");
    JsonValue body = JsonValue::MakeObject({});
    if (!c.req.body.empty()) {
      ASSIGN_OR_RETURN(body, ParseBody(c.req));
    }
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
    std::vector<std::string> experiments;
    std::string view_text;
    tracking::RunSearch search;
    int64_t limit = kDefaultRunLimit;
    RETURN_IF_ERROR(r.StringList("experiments", &experiments));
    RETURN_IF_ERROR(r.String("filter", &search.filter));
    RETURN_IF_ERROR(r.StringList("order_by", &search.order_by));
    RETURN_IF_ERROR(r.String("view", &view_text));
    RETURN_IF_ERROR(r.Int("limit", &limit));
    RETURN_IF_ERROR(r.String("page_token", &search.page.page_token));
    RETURN_IF_ERROR(r.Finish());
    ASSIGN_OR_RETURN(search.view, ParseView(view_text, "view"));
    ASSIGN_OR_RETURN(search.page.max_results, CheckedRange(limit, "limit", 1, kMaxRunLimit));
    for (size_t i = 0; i < experiments.size(); ++i) {
      auto e = ResolveExperiment(*svc, *c.principal, project, experiments[i]);
      if (!e.ok()) return e.status().WithField(fmt::format("experiments[{}]", i));
      search.experiment_ids.push_back(e->id);
    }
    if (experiments.empty()) {
      ASSIGN_OR_RETURN(search.experiment_ids, AllExperimentIds(*svc, *c.principal, project));
    }
    tracking::RunPage page;
    if (!search.experiment_ids.empty()) {
      ASSIGN_OR_RETURN(page, svc->SearchRuns(*c.principal, project, search));
    }
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Key("runs").BeginArray();
      for (const Run& run : page.runs) EncodeRun(w, run);
      w.EndArray().Field("next_page_token", page.next_page_token).EndObject();
    });
    return OkStatus();
  });

  Authed(Method::kGet, base + "/runs/{run}/metrics/{key}", [svc](Call& c) -> Status {
    tracking::HistoryRequest req;
    req.run_id = c.req.PathParam("run");
    req.key = c.req.PathParam("key");
    ASSIGN_OR_RETURN(req.max_points, QueryInt(c.req, "max_points", 0, 0, kMaxDownsampledPoints));
    ASSIGN_OR_RETURN(req.page.max_results,
                     QueryInt(c.req, "limit", kDefaultPointLimit, 1, kMaxPointLimit));
    c.req.QueryParam("page_token", &req.page.page_token);
    std::string text;
    if (c.req.QueryParam("start_step", &text) && !text.empty()) {
      ASSIGN_OR_RETURN(req.start_step, QueryInt(c.req, "start_step", 0, INT64_MIN, INT64_MAX));
    }
    if (c.req.QueryParam("end_step", &text) && !text.empty()) {
      ASSIGN_OR_RETURN(req.end_step, QueryInt(c.req, "end_step", 0, INT64_MIN, INT64_MAX));
    }
    ASSIGN_OR_RETURN(tracking::History h,
                     svc->GetHistory(*c.principal, c.req.PathParam("project"), req));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Field("key", req.key).Key("points").BeginArray();
      for (const tracking::Metric& m : h.points) EncodePoint(w, m);
      w.EndArray()
          .Field("total_points", h.total_points)
          .Field("downsampled", h.downsampled)
          .Field("next_page_token", h.next_page_token)
          .EndObject();
    });
    return OkStatus();
  });

  Authed(Method::kPost, base + "/runs:compare", [svc](Call& c) -> Status {
    const std::string& project = c.req.PathParam("project");
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
    std::vector<std::string> run_ids, keys;
    int64_t max_points = kDefaultComparePoints;
    RETURN_IF_ERROR(r.StringList("run_ids", &run_ids, Presence::kRequired));
    RETURN_IF_ERROR(r.StringList("keys", &keys));
    RETURN_IF_ERROR(r.Int("max_points", &max_points));
    RETURN_IF_ERROR(r.Finish());
    if (run_ids.empty() || run_ids.size() > kMaxCompareRuns) {
      return InvalidArgumentError(
          fmt::format("run_ids: {} runs; compare takes 1 to {}", run_ids.size(), kMaxCompareRuns),
          "run_ids");
    }
    ASSIGN_OR_RETURN(max_points, CheckedRange(max_points, "max_points", 0, kMaxDownsampledPoints));
    std::string out;
    JsonWriter w(&out);
    w.BeginObject().Key("runs").BeginArray();
    for (size_t i = 0; i < run_ids.size(); ++i) {
      auto run = svc->GetRun(*c.principal, project, run_ids[i]);
      if (!run.ok()) return run.status().WithField(fmt::format("run_ids[{}]", i));
      w.BeginObject().Field("run_id", run->info.run_id).Field("run_name", run->info.run_name);
      WriteTagMap(w, "params", run->params);
      w.Key("metrics").BeginObject();
      std::vector<std::string> run_keys = keys;
      if (run_keys.empty()) {
        for (const tracking::Metric& m : run->latest_metrics) run_keys.push_back(m.key);
      }
      for (const std::string& key : run_keys) {
        tracking::HistoryRequest req;
        req.run_id = run->info.run_id;
        req.key = key;
        req.max_points = max_points;
        ASSIGN_OR_RETURN(tracking::History h, FullHistory(*svc, *c.principal, project, req));
        w.Key(key).BeginArray();
        for (const tracking::Metric& m : h.points) EncodePoint(w, m);
        w.EndArray();
      }
      w.EndObject().EndObject();
    }
    w.EndArray().EndObject();
    c.res.status = 200;
    c.res.content_type = "application/json";
    c.res.body = std::move(out);
    return OkStatus();
  });
}

}  // namespace lathe::api
