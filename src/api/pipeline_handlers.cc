// /api/v1 routes for pipelines, their versions and runs, and schedules
// (docs/api.md "Pipelines", docs/pipelines.md). Decode → control::
// PipelineService / ScheduleService → encode; the controllers are poked so a
// started, cancelled or retried run and a changed schedule are acted on at
// once rather than at the next resync. Spec errors (pipelines, schedules,
// run params) answer 422 with the location in the spec.
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "api/api.h"
#include "control/pipeline_controller.h"
#include "control/pipelines.h"
#include "control/schedules.h"
#include "spec/pipeline_spec.h"
#include "spec/schedule_spec.h"

namespace lathe::api {

using control::BackfillRecord;
using control::NodeRecord;
using control::PipelineRecord;
using control::PipelineVersionRecord;
using control::RunEvent;
using control::RunRecord;
using control::ScheduleRecord;
using control::TickRecord;
using http::Method;

namespace {

// One skip request names at most a year of dates.
constexpr size_t kMaxSkipDates = 366;

// ---- encoding (one encoder per record type)

void WriteNullableString(JsonWriter& w, std::string_view key, const std::string& value) {
  w.Key(key);
  if (value.empty()) {
    w.Null();
  } else {
    w.String(value);
  }
}

void EncodePipeline(JsonWriter& w, const PipelineRecord& p) {
  w.BeginObject()
      .Field("id", p.id)
      .Field("name", p.name)
      .Field("project", p.project)
      .Field("description", p.description)
      .Field("latest_version", p.latest_version)
      .Field("created_by", p.created_by);
  WriteTimeField(w, "created_at", p.created_at);
  WriteTimeField(w, "updated_at", p.updated_at);
  w.EndObject();
}

// A version; `with_spec` adds the canonical spec, `created` (create only)
// says whether this call added it.
void EncodeVersion(JsonWriter& w, const PipelineVersionRecord& v, bool with_spec,
                   std::optional<bool> created = std::nullopt) {
  w.BeginObject()
      .Field("pipeline", v.pipeline)
      .Field("version", v.version)
      .Field("digest", v.digest);
  WriteNullableString(w, "code", v.code);
  w.Field("created_by", v.created_by);
  WriteTimeField(w, "created_at", v.created_at);
  if (created.has_value()) w.Field("created", *created);
  if (with_spec) {
    w.Key("spec");
    spec::WritePipelineSpec(w, v.spec);
  }
  w.EndObject();
}

void EncodeNode(JsonWriter& w, const NodeRecord& n) {
  w.BeginObject().Field("node", n.node).Field("step", n.step).Key("item");
  if (n.item < 0) {
    w.Null();
  } else {
    w.Int(n.item);
  }
  w.Field("state", control::NodeStateName(n.state))
      .Field("reason", n.reason)
      .Field("message", n.message)
      .Field("attempt", n.attempt);
  WriteNullableString(w, "job_id", n.job_id);
  WriteNullableString(w, "job_name", n.job_name);
  w.Key("outputs").BeginObject().Key("parameters").BeginObject();
  for (const auto& [name, value] : n.parameters) w.Field(name, value);
  w.EndObject().Key("artifacts").BeginObject();
  for (const auto& [name, ref] : n.artifacts) {
    w.Key(name).BeginObject().Field("path", ref.path).Field("digest", ref.digest).EndObject();
  }
  w.EndObject().EndObject();
  w.Field("cached", n.cached);
  WriteNullableString(w, "cache_key", n.cache_key);
  WriteNullableString(w, "cache_source", n.cache_source);
  WriteTimeField(w, "not_before", n.not_before);
  WriteTimeField(w, "created_at", n.created_at);
  WriteTimeField(w, "started_at", n.started_at);
  WriteTimeField(w, "finished_at", n.finished_at);
  w.EndObject();
}

// A run; `with_nodes` adds the nodes it has reached.
void EncodeRun(JsonWriter& w, const RunRecord& r, bool with_nodes) {
  w.BeginObject()
      .Field("id", r.id)
      .Field("project", r.project)
      .Field("pipeline", r.pipeline)
      .Field("version", r.version)
      .Key("params");
  if (r.params.is_object()) {
    r.params.Write(w);
  } else {
    w.BeginObject().EndObject();
  }
  w.Field("state", control::RunStateName(r.state))
      .Field("reason", r.reason)
      .Field("message", r.message)
      .Field("created_by", r.created_by);
  WriteNullableString(w, "code", r.code);
  w.Field("cache", r.cache_enabled)
      .Field("cancel_requested", r.cancel_requested)
      .Field("retries", r.retries);
  WriteNullableString(w, "schedule_id", r.schedule_id);
  WriteTimeField(w, "scheduled_time", r.scheduled_time);
  WriteTimeField(w, "created_at", r.created_at);
  WriteTimeField(w, "started_at", r.started_at);
  WriteTimeField(w, "finished_at", r.finished_at);
  if (with_nodes) {
    w.Key("nodes").BeginArray();
    for (const NodeRecord& n : r.nodes) EncodeNode(w, n);
    w.EndArray();
  }
  w.EndObject();
}

void EncodeRunEvent(JsonWriter& w, const RunEvent& e) {
  w.BeginObject().Field("seq", e.seq);
  WriteTimeField(w, "time", e.time);
  w.Field("type", e.type).Field("reason", e.reason).Field("message", e.message).EndObject();
}

void EncodeGraph(JsonWriter& w, const control::RunGraph& g) {
  w.BeginObject().Key("steps").BeginArray();
  for (const control::RunGraph::Step& s : g.steps) {
    w.BeginObject()
        .Field("name", s.name)
        .Field("state", control::NodeStateName(s.state))
        .Field("items", s.items)
        .Field("exit_handler", s.exit_handler)
        .EndObject();
  }
  w.EndArray().Key("edges").BeginArray();
  for (const auto& [from, to] : g.edges) {
    w.BeginObject().Field("from", from).Field("to", to).EndObject();
  }
  w.EndArray().Key("nodes").BeginArray();
  for (const NodeRecord& n : g.nodes) EncodeNode(w, n);
  w.EndArray().EndObject();
}

void EncodeSchedule(JsonWriter& w, const ScheduleRecord& s) {
  w.BeginObject()
      .Field("id", s.id)
      .Field("name", s.spec.name)
      .Field("project", s.project)
      .Field("pipeline", s.spec.pipeline)
      .Field("paused", s.spec.paused);
  WriteTimeField(w, "last_tick", s.last_tick);
  WriteTimeField(w, "next_tick", s.next_tick);
  w.Field("created_by", s.created_by);
  WriteTimeField(w, "created_at", s.created_at);
  WriteTimeField(w, "updated_at", s.updated_at);
  w.Key("spec");
  spec::WriteScheduleSpec(w, s.spec);
  w.EndObject();
}

void EncodeTick(JsonWriter& w, const TickRecord& t) {
  w.BeginObject();
  WriteTimeField(w, "tick", t.tick);
  w.Field("state", t.state).Field("reason", t.reason).Field("message", t.message);
  WriteNullableString(w, "run_id", t.run_id);
  WriteNullableString(w, "run_state", t.run_state);
  WriteNullableString(w, "backfill_id", t.backfill_id);
  w.Field("attempts", t.attempts);
  WriteTimeField(w, "created_at", t.created_at);
  w.EndObject();
}

void EncodeBackfill(JsonWriter& w, const BackfillRecord& b) {
  w.BeginObject().Field("id", b.id).Field("schedule", b.schedule);
  WriteTimeField(w, "from", b.from);
  WriteTimeField(w, "to", b.to);
  w.Field("max_concurrency", b.max_concurrency)
      .Field("reprocess", control::ReprocessName(b.reprocess))
      .Field("state", b.state)
      .Field("total", b.total)
      .Field("created", b.created)
      .Field("succeeded", b.succeeded)
      .Field("failed", b.failed);
  WriteTimeField(w, "created_at", b.created_at);
  WriteTimeField(w, "finished_at", b.finished_at);
  w.EndObject();
}

template <typename T, typename Encode>
void WritePage(http::Response& res, const tenancy::Page<T>& page, Encode encode) {
  WriteJson(res, 200, [&](JsonWriter& w) {
    w.BeginObject().Key("items").BeginArray();
    for (const T& item : page.items) encode(w, item);
    w.EndArray().Field("next_page_token", page.next_page_token).EndObject();
  });
}

void NoContent(http::Response& res) {
  res.status = 204;
  res.body.clear();
}

// ---- decoding

// `{spec, code?}`, or the spec itself (a pipeline spec has no `spec` field);
// `?code=` names the snapshot in the second form.
struct PipelineBody {
  JsonValue spec;
  std::string code;
};

StatusOr<PipelineBody> DecodePipelineBody(const http::Request& req, const JsonValue& body) {
  PipelineBody out;
  const bool envelope = body.is_object() && body.Find("spec") != nullptr;
  std::string query_code;
  const bool has_query_code = req.QueryParam("code", &query_code);
  if (!envelope) {
    out.spec = body;
    out.code = query_code;
    return out;
  }
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
  ASSIGN_OR_RETURN(const JsonValue* spec, r.Value("spec", Presence::kRequired));
  RETURN_IF_ERROR(r.String("code", &out.code));
  RETURN_IF_ERROR(r.Finish());
  if (has_query_code && !out.code.empty() && query_code != out.code) {
    return InvalidArgumentError("code: the body and ?code= name different snapshots", "code");
  }
  if (out.code.empty()) out.code = query_code;
  out.spec = *spec;
  return out;
}

StatusOr<control::StartRunRequest> DecodeStartRun(const JsonValue& body,
                                                  const std::string& pipeline) {
  control::StartRunRequest req;
  req.pipeline = pipeline;
  if (body.is_null()) return req;  // an empty body: latest version, defaults
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
  ASSIGN_OR_RETURN(const JsonValue* has_version, r.Value("version"));
  if (has_version != nullptr) {
    int64_t version = 0;
    RETURN_IF_ERROR(r.Int("version", &version));
    if (version < 1) {
      return InvalidArgumentError(fmt::format("version: {} is not a version (1, 2, …)", version),
                                  "version");
    }
    req.version = version;
  }
  ASSIGN_OR_RETURN(const JsonValue* params, r.Value("params"));
  if (params != nullptr) {
    if (!params->is_object()) {
      return InvalidArgumentError(
          fmt::format("params: expected an object, got {}", JsonTypeName(params->type())),
          "params");
    }
    req.params = *params;
  }
  RETURN_IF_ERROR(r.Bool("coerce_strings", &req.coerce_strings));
  ASSIGN_OR_RETURN(const JsonValue* has_sample, r.Value("sample"));
  if (has_sample != nullptr) {
    int64_t sample = 0;
    RETURN_IF_ERROR(r.Int("sample", &sample));
    if (sample < 1) {
      return InvalidArgumentError(fmt::format("sample: {} is not a positive count", sample),
                                  "sample");
    }
    req.sample = sample;
  }
  RETURN_IF_ERROR(r.Bool("cache", &req.cache));
  RETURN_IF_ERROR(r.Finish());
  return req;
}

// A schedule spec from a body; `name` (from the path, may be "") must agree
// with the body's name, which may then be left out.
StatusOr<JsonValue> ScheduleSpecWithName(const JsonValue& body, const std::string& name) {
  if (name.empty() || !body.is_object()) return body;
  const JsonValue* n = body.Find("name");
  if (n != nullptr && n->is_string()) {
    if (n->as_string() != name) {
      return InvalidArgumentError(
          fmt::format("name: \"{}\" does not match the schedule in the path, \"{}\"",
                      n->as_string(), name),
          "name");
    }
    return body;
  }
  std::vector<JsonValue::Member> members = body.members();
  members.emplace_back("name", JsonValue::MakeString(name));
  return JsonValue::MakeObject(std::move(members));
}

// A backfill bound: RFC 3339, or "YYYY-MM-DD" meaning 00:00 UTC that day.
StatusOr<int64_t> ParseBackfillTime(const std::string& text, const std::string& field) {
  std::string full = text;
  if (text.size() == 10 && text[4] == '-' && text[7] == '-') full += "T00:00:00Z";
  auto micros = spec::ParseRfc3339(full, field);
  if (!micros.ok()) {
    return InvalidArgumentError(
        fmt::format("{}: \"{}\" is neither an RFC 3339 time (2026-11-23T02:00:00Z) nor a date "
                    "(2026-11-23, midnight UTC)",
                    field, text),
        field);
  }
  return *micros;
}

struct BackfillBody {
  int64_t from_us = 0;
  int64_t to_us = 0;
  int max_concurrency = 1;
  control::Reprocess reprocess = control::Reprocess::kFailed;
};

StatusOr<BackfillBody> DecodeBackfill(const JsonValue& body) {
  BackfillBody out;
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
  std::string from, to, reprocess;
  int64_t max_concurrency = 1;
  RETURN_IF_ERROR(r.String("from", &from, Presence::kRequired));
  RETURN_IF_ERROR(r.String("to", &to, Presence::kRequired));
  RETURN_IF_ERROR(r.Int("max_concurrency", &max_concurrency));
  RETURN_IF_ERROR(r.String("reprocess", &reprocess));
  RETURN_IF_ERROR(r.Finish());
  ASSIGN_OR_RETURN(out.from_us, ParseBackfillTime(from, "from"));
  ASSIGN_OR_RETURN(out.to_us, ParseBackfillTime(to, "to"));
  if (out.to_us < out.from_us) {
    return InvalidArgumentError(fmt::format("to: {} is before from, {}", to, from), "to");
  }
  if (max_concurrency < 1 || max_concurrency > 100) {
    return InvalidArgumentError(
        fmt::format("max_concurrency: {} is not in [1, 100]", max_concurrency), "max_concurrency");
  }
  out.max_concurrency = static_cast<int>(max_concurrency);
  if (!reprocess.empty()) {
    auto parsed = control::ParseReprocess(reprocess);
    if (!parsed.ok()) {
      return InvalidArgumentError(
          fmt::format("reprocess: \"{}\" is not one of none, failed, all", reprocess), "reprocess");
    }
    out.reprocess = *parsed;
  }
  return out;
}

struct SkipBody {
  std::vector<std::string> dates;
  bool remove = false;
};

StatusOr<SkipBody> DecodeSkip(const JsonValue& body) {
  SkipBody out;
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
  RETURN_IF_ERROR(r.StringList("dates", &out.dates, Presence::kRequired));
  RETURN_IF_ERROR(r.Bool("remove", &out.remove));
  RETURN_IF_ERROR(r.Finish());
  if (out.dates.empty() || out.dates.size() > kMaxSkipDates) {
    return InvalidArgumentError(
        fmt::format("dates: {} dates; give 1 to {}", out.dates.size(), kMaxSkipDates), "dates");
  }
  return out;
}

}  // namespace

void Api::RegisterPipelineRoutes() {
  control::PipelineService* const pipelines = pipeline_routes_.pipelines;
  control::PipelineController* const controller = pipeline_routes_.pipeline_controller;
  control::ScheduleService* const schedules = pipeline_routes_.schedules;
  auto poke = [controller] {
    if (controller != nullptr) controller->Poke();
  };
  const std::string base = "/api/v1/projects/{project}";

  // ----- pipelines and versions
  Authed(Method::kPost, base + "/pipelines", [this, pipelines](Call& c) -> Status {
    const std::string& project = c.req.PathParam("project");
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(PipelineBody decoded, DecodePipelineBody(c.req, body));
    if (!decoded.code.empty()) {
      RETURN_IF_ERROR(CheckCodeSnapshot(job_routes_.code_root, project, decoded.code));
    }
    c.invalid_as = InvalidAs::kUnprocessable;
    ASSIGN_OR_RETURN(control::PipelineService::Created created,
                     pipelines->Create(*c.principal, project, decoded.spec, decoded.code));
    WriteJson(c.res, created.created ? 201 : 200,
              [&](JsonWriter& w) { EncodeVersion(w, created.version, true, created.created); });
    return OkStatus();
  });

  Authed(Method::kGet, base + "/pipelines", [pipelines](Call& c) -> Status {
    ASSIGN_OR_RETURN(tenancy::PageRequest page, PageFromQuery(c.req));
    ASSIGN_OR_RETURN(tenancy::Page<PipelineRecord> list,
                     pipelines->List(*c.principal, c.req.PathParam("project"), page));
    WritePage(c.res, list, EncodePipeline);
    return OkStatus();
  });

  Authed(Method::kGet, base + "/pipelines/{pipeline}", [pipelines](Call& c) -> Status {
    ASSIGN_OR_RETURN(PipelineRecord p, pipelines->Get(*c.principal, c.req.PathParam("project"),
                                                      c.req.PathParam("pipeline")));
    WriteJson(c.res, 200, [&](JsonWriter& w) { EncodePipeline(w, p); });
    return OkStatus();
  });

  Authed(Method::kDelete, base + "/pipelines/{pipeline}", [pipelines](Call& c) -> Status {
    RETURN_IF_ERROR(
        pipelines->Remove(*c.principal, c.req.PathParam("project"), c.req.PathParam("pipeline")));
    NoContent(c.res);
    return OkStatus();
  });

  Authed(Method::kGet, base + "/pipelines/{pipeline}/versions", [pipelines](Call& c) -> Status {
    ASSIGN_OR_RETURN(tenancy::PageRequest page, PageFromQuery(c.req));
    ASSIGN_OR_RETURN(tenancy::Page<PipelineVersionRecord> list,
                     pipelines->ListVersions(*c.principal, c.req.PathParam("project"),
                                             c.req.PathParam("pipeline"), page));
    WritePage(c.res, list,
              [](JsonWriter& w, const PipelineVersionRecord& v) { EncodeVersion(w, v, false); });
    return OkStatus();
  });

  Authed(Method::kGet, base + "/pipelines/{pipeline}/versions/{version}",
         [pipelines](Call& c) -> Status {
           const std::string& text = c.req.PathParam("version");
           std::optional<int64_t> version;
           if (text != "latest") {
             char* end = nullptr;
             errno = 0;
             const long long v = std::strtoll(text.c_str(), &end, 10);
             if (text.empty() || *end != '\0' || errno != 0 || v < 1) {
               return NotFoundError(fmt::format("pipeline \"{}\" has no version \"{}\"",
                                                c.req.PathParam("pipeline"), text));
             }
             version = v;
           }
           ASSIGN_OR_RETURN(PipelineVersionRecord v,
                            pipelines->GetVersion(*c.principal, c.req.PathParam("project"),
                                                  c.req.PathParam("pipeline"), version));
           WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeVersion(w, v, true); });
           return OkStatus();
         });

  // ----- runs
  Authed(Method::kPost, base + "/pipelines/{pipeline}/runs", [pipelines, poke](Call& c) -> Status {
    JsonValue body;
    if (!c.req.body.empty()) {
      ASSIGN_OR_RETURN(body, ParseBody(c.req));
    }
    ASSIGN_OR_RETURN(control::StartRunRequest req,
                     DecodeStartRun(body, c.req.PathParam("pipeline")));
    // Params are checked against the pipeline's declarations: their errors
    // name "params.NAME" in the spec's terms.
    c.invalid_as = InvalidAs::kUnprocessable;
    ASSIGN_OR_RETURN(RunRecord run,
                     pipelines->StartRun(*c.principal, c.req.PathParam("project"), req));
    poke();
    WriteJson(c.res, 201, [&](JsonWriter& w) { EncodeRun(w, run, true); });
    return OkStatus();
  });

  Authed(Method::kGet, base + "/pipeline-runs", [pipelines, schedules](Call& c) -> Status {
    control::RunFilter filter;
    filter.project = c.req.PathParam("project");
    c.req.QueryParam("pipeline", &filter.pipeline);
    std::string state;
    if (c.req.QueryParam("state", &state) && !state.empty()) {
      ASSIGN_OR_RETURN(filter.state, control::ParseRunState(state, "state"));
    }
    std::string schedule;
    if (c.req.QueryParam("schedule", &schedule) && !schedule.empty()) {
      if (schedules == nullptr) return UnimplementedError("this server has no schedules");
      ASSIGN_OR_RETURN(ScheduleRecord s, schedules->Get(*c.principal, filter.project, schedule));
      filter.schedule = s.id;
    }
    ASSIGN_OR_RETURN(tenancy::PageRequest page, PageFromQuery(c.req));
    ASSIGN_OR_RETURN(tenancy::Page<RunRecord> list,
                     pipelines->ListRuns(*c.principal, filter, page));
    WritePage(c.res, list, [](JsonWriter& w, const RunRecord& r) { EncodeRun(w, r, false); });
    return OkStatus();
  });

  Authed(Method::kGet, base + "/pipeline-runs/{run}", [pipelines](Call& c) -> Status {
    ASSIGN_OR_RETURN(RunRecord run, pipelines->GetRun(*c.principal, c.req.PathParam("project"),
                                                      c.req.PathParam("run")));
    WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeRun(w, run, true); });
    return OkStatus();
  });

  Authed(Method::kGet, base + "/pipeline-runs/{run}/graph", [pipelines](Call& c) -> Status {
    ASSIGN_OR_RETURN(
        control::RunGraph graph,
        pipelines->Graph(*c.principal, c.req.PathParam("project"), c.req.PathParam("run")));
    WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeGraph(w, graph); });
    return OkStatus();
  });

  Authed(Method::kGet, base + "/pipeline-runs/{run}/events", [pipelines](Call& c) -> Status {
    ASSIGN_OR_RETURN(
        std::vector<RunEvent> events,
        pipelines->RunEvents(*c.principal, c.req.PathParam("project"), c.req.PathParam("run")));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Key("events").BeginArray();
      for (const RunEvent& e : events) EncodeRunEvent(w, e);
      w.EndArray().EndObject();
    });
    return OkStatus();
  });

  Authed(Method::kPost, base + "/pipeline-runs/{run}/cancel", [pipelines, poke](Call& c) -> Status {
    ASSIGN_OR_RETURN(RunRecord run, pipelines->CancelRun(*c.principal, c.req.PathParam("project"),
                                                         c.req.PathParam("run")));
    poke();
    WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeRun(w, run, true); });
    return OkStatus();
  });

  Authed(Method::kPost, base + "/pipeline-runs/{run}/retry", [pipelines, poke](Call& c) -> Status {
    ASSIGN_OR_RETURN(RunRecord run, pipelines->RetryRun(*c.principal, c.req.PathParam("project"),
                                                        c.req.PathParam("run")));
    poke();
    WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeRun(w, run, true); });
    return OkStatus();
  });

  Authed(Method::kDelete, base + "/pipeline-runs/{run}", [pipelines](Call& c) -> Status {
    RETURN_IF_ERROR(
        pipelines->RemoveRun(*c.principal, c.req.PathParam("project"), c.req.PathParam("run")));
    NoContent(c.res);
    return OkStatus();
  });
}

void Api::RegisterScheduleRoutes() {
  control::ScheduleService* const schedules = pipeline_routes_.schedules;
  control::ScheduleController* const controller = pipeline_routes_.schedule_controller;
  auto poke = [controller] {
    if (controller != nullptr) controller->Poke();
  };
  const std::string base = "/api/v1/projects/{project}/schedules";

  auto put = [schedules, poke](Call& c, const std::string& name, bool create_only) -> Status {
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    c.invalid_as = InvalidAs::kUnprocessable;
    ASSIGN_OR_RETURN(JsonValue spec, ScheduleSpecWithName(body, name));
    ASSIGN_OR_RETURN(ScheduleRecord saved,
                     schedules->Put(*c.principal, c.req.PathParam("project"), spec, create_only));
    poke();
    const bool created = create_only || saved.created_at == saved.updated_at;
    WriteJson(c.res, created ? 201 : 200, [&](JsonWriter& w) { EncodeSchedule(w, saved); });
    return OkStatus();
  };
  Authed(Method::kPost, base, [put](Call& c) { return put(c, "", true); });
  Authed(Method::kPut, base + "/{schedule}",
         [put](Call& c) { return put(c, c.req.PathParam("schedule"), false); });

  Authed(Method::kGet, base, [schedules](Call& c) -> Status {
    ASSIGN_OR_RETURN(tenancy::PageRequest page, PageFromQuery(c.req));
    ASSIGN_OR_RETURN(tenancy::Page<ScheduleRecord> list,
                     schedules->List(*c.principal, c.req.PathParam("project"), page));
    WritePage(c.res, list, EncodeSchedule);
    return OkStatus();
  });

  Authed(Method::kGet, base + "/{schedule}", [schedules](Call& c) -> Status {
    ASSIGN_OR_RETURN(ScheduleRecord s, schedules->Get(*c.principal, c.req.PathParam("project"),
                                                      c.req.PathParam("schedule")));
    WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeSchedule(w, s); });
    return OkStatus();
  });

  Authed(Method::kDelete, base + "/{schedule}", [schedules](Call& c) -> Status {
    RETURN_IF_ERROR(
        schedules->Remove(*c.principal, c.req.PathParam("project"), c.req.PathParam("schedule")));
    NoContent(c.res);
    return OkStatus();
  });

  for (const bool paused : {true, false}) {
    Authed(Method::kPost, base + "/{schedule}/" + (paused ? "pause" : "resume"),
           [schedules, poke, paused](Call& c) -> Status {
             ASSIGN_OR_RETURN(ScheduleRecord s,
                              schedules->SetPaused(*c.principal, c.req.PathParam("project"),
                                                   c.req.PathParam("schedule"), paused));
             poke();
             WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeSchedule(w, s); });
             return OkStatus();
           });
  }

  Authed(Method::kPost, base + "/{schedule}/skip", [schedules, poke](Call& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(SkipBody skip, DecodeSkip(body));
    ASSIGN_OR_RETURN(ScheduleRecord s,
                     schedules->Skip(*c.principal, c.req.PathParam("project"),
                                     c.req.PathParam("schedule"), skip.dates, skip.remove));
    poke();
    WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeSchedule(w, s); });
    return OkStatus();
  });

  Authed(Method::kGet, base + "/{schedule}/ticks", [schedules](Call& c) -> Status {
    ASSIGN_OR_RETURN(tenancy::PageRequest page, PageFromQuery(c.req));
    ASSIGN_OR_RETURN(tenancy::Page<TickRecord> list,
                     schedules->Ticks(*c.principal, c.req.PathParam("project"),
                                      c.req.PathParam("schedule"), page));
    WritePage(c.res, list, EncodeTick);
    return OkStatus();
  });

  Authed(Method::kPost, base + "/{schedule}/backfills", [schedules, poke](Call& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(BackfillBody b, DecodeBackfill(body));
    ASSIGN_OR_RETURN(
        BackfillRecord created,
        schedules->Backfill(*c.principal, c.req.PathParam("project"), c.req.PathParam("schedule"),
                            b.from_us, b.to_us, b.max_concurrency, b.reprocess));
    poke();
    WriteJson(c.res, 201, [&](JsonWriter& w) { EncodeBackfill(w, created); });
    return OkStatus();
  });

  Authed(Method::kGet, base + "/{schedule}/backfills", [schedules](Call& c) -> Status {
    ASSIGN_OR_RETURN(std::vector<BackfillRecord> list,
                     schedules->Backfills(*c.principal, c.req.PathParam("project"),
                                          c.req.PathParam("schedule")));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Key("items").BeginArray();
      for (const BackfillRecord& b : list) EncodeBackfill(w, b);
      w.EndArray().Field("next_page_token", "").EndObject();
    });
    return OkStatus();
  });
}

}  // namespace lathe::api
