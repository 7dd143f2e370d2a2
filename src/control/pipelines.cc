// PipelineService and the pipeline store helpers. Layout (schema.cc,
// migration 8):
//   pipelines            one row per pipeline: unique (project_id, name),
//                        `latest_version`, the counter that numbers versions
//   pipeline_versions    (pipeline_id, version) → canonical spec JSON, digest
//   pipeline_runs        one row per run, pinned to (pipeline_id, version);
//                        `next_event` numbers its events
//   pipeline_nodes       (run_id, node): the nodes a run reached
//   pipeline_run_events  (run_id, seq), a rolling window of kMaxRunEvents
//   pipeline_cache       (project_id, cache_key) → the outputs of a node
// One transaction per call.
#include "control/pipelines.h"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <unordered_map>

#include "base/crypto.h"
#include "base/id.h"

namespace lathe::control {

using store::AsInt;
using store::AsText;
using store::ResultSet;
using store::Tx;
using store::TxMode;
using store::Value;
using tenancy::Principal;
using tenancy::Role;

namespace {

constexpr std::string_view kRunStateNames[] = {"pending", "running", "succeeded", "failed",
                                               "cancelled"};
// Events kept per run: older ones are dropped as new ones come (a 10,000-item
// fan-out must not grow the table without bound).
constexpr int64_t kMaxRunEvents = 2000;

constexpr const char* kRunColumns =
    "r.id, p.name, r.project_id, r.pipeline_id, pl.name, r.version, r.params, r.state, r.reason, "
    "r.message, r.created_by_id, COALESCE(u.name, ''), r.code, r.cache_enabled, "
    "r.cancel_requested, r.retries, r.schedule_id, r.scheduled_time, r.created_at, r.started_at, "
    "r.finished_at";

constexpr const char* kNodeColumns =
    "node, step, item, state, reason, message, attempt, job_id, job_name, outputs, cached, "
    "cache_key, cache_source, not_before, created_at, started_at, finished_at";

constexpr const char* kPipelineColumns =
    "pl.id, p.name, pl.project_id, pl.name, pl.description, pl.latest_version, "
    "COALESCE(u.name, ''), pl.created_at, pl.updated_at";

std::string SelectRuns(std::string_view where) {
  return fmt::format(
      "SELECT {} FROM pipeline_runs r JOIN projects p ON p.id = r.project_id JOIN pipelines pl "
      "ON pl.id = r.pipeline_id LEFT JOIN users u ON u.id = r.created_by_id WHERE {}",
      kRunColumns, where);
}

std::string SelectPipelines(std::string_view where) {
  return fmt::format(
      "SELECT {} FROM pipelines pl JOIN projects p ON p.id = pl.project_id LEFT JOIN users u ON "
      "u.id = pl.created_by_id WHERE {}",
      kPipelineColumns, where);
}

PipelineRecord PipelineFromRow(const std::vector<Value>& r) {
  PipelineRecord out;
  out.id = AsText(r[0]);
  out.project = AsText(r[1]);
  out.project_id = AsText(r[2]);
  out.name = AsText(r[3]);
  out.description = AsText(r[4]);
  out.latest_version = AsInt(r[5]);
  out.created_by = AsText(r[6]);
  out.created_at = AsInt(r[7]);
  out.updated_at = AsInt(r[8]);
  return out;
}

StatusOr<RunRecord> RunFromRow(const std::vector<Value>& r) {
  RunRecord run;
  run.id = AsText(r[0]);
  run.project = AsText(r[1]);
  run.project_id = AsText(r[2]);
  run.pipeline_id = AsText(r[3]);
  run.pipeline = AsText(r[4]);
  run.version = AsInt(r[5]);
  auto params = ParseJson(AsText(r[6]));
  if (!params.ok()) {
    return DataLossError(fmt::format("pipeline run {}: stored params do not parse: {}", run.id,
                                     params.status().message()));
  }
  run.params = std::move(*params);
  ASSIGN_OR_RETURN(run.state, ParseRunState(AsText(r[7])));
  run.reason = AsText(r[8]);
  run.message = AsText(r[9]);
  run.created_by_id = AsText(r[10]);
  run.created_by = AsText(r[11]);
  run.code = AsText(r[12]);
  run.cache_enabled = AsInt(r[13]) != 0;
  run.cancel_requested = AsInt(r[14]) != 0;
  run.retries = static_cast<int>(AsInt(r[15]));
  run.schedule_id = AsText(r[16]);
  run.scheduled_time = AsInt(r[17]);
  run.created_at = AsInt(r[18]);
  run.started_at = AsInt(r[19]);
  run.finished_at = AsInt(r[20]);
  return run;
}

StatusOr<NodeRecord> NodeFromRow(const std::vector<Value>& r) {
  NodeRecord n;
  n.node = AsText(r[0]);
  n.step = AsText(r[1]);
  n.item = static_cast<int>(AsInt(r[2]));
  ASSIGN_OR_RETURN(n.state, ParseNodeState(AsText(r[3])));
  n.reason = AsText(r[4]);
  n.message = AsText(r[5]);
  n.attempt = static_cast<int>(AsInt(r[6]));
  n.job_id = AsText(r[7]);
  n.job_name = AsText(r[8]);
  if (Status st = DecodeNodeOutputs(AsText(r[9]), &n.parameters, &n.artifacts); !st.ok()) {
    return DataLossError(fmt::format("node {}: stored outputs do not parse: {}", n.node, st.message()));
  }
  n.cached = AsInt(r[10]) != 0;
  n.cache_key = AsText(r[11]);
  n.cache_source = AsText(r[12]);
  n.not_before = AsInt(r[13]);
  n.created_at = AsInt(r[14]);
  n.started_at = AsInt(r[15]);
  n.finished_at = AsInt(r[16]);
  return n;
}

std::string CanonicalSpec(const spec::PipelineSpec& s) {
  std::string out;
  JsonWriter w(&out);
  spec::WritePipelineSpec(w, s);
  return out;
}

StatusOr<spec::PipelineSpec> DecodeStoredSpec(const std::string& text, const std::string& what) {
  auto v = ParseJson(text);
  if (!v.ok()) return DataLossError(fmt::format("{}: stored spec does not parse: {}", what, v.status().message()));
  auto parsed = spec::ParsePipelineSpec(*v);
  if (!parsed.ok()) {
    return DataLossError(
        fmt::format("{}: stored spec does not parse: {}", what, parsed.status().message()));
  }
  return std::move(*parsed);
}

// The pipeline `name` of project `project_id`, or NOT_FOUND naming `field`.
StatusOr<PipelineRecord> FindPipeline(Tx& tx, const std::string& project_id,
                                      const std::string& name, const std::string& field = "") {
  ASSIGN_OR_RETURN(ResultSet rs,
                   tx.Query(SelectPipelines("pl.project_id = ? AND pl.name = ?"), {project_id, name}));
  if (rs.empty()) {
    Status st = NotFoundError(fmt::format("pipeline \"{}\" not found", name));
    return field.empty() ? st : st.WithField(field);
  }
  return PipelineFromRow(rs.rows[0]);
}

StatusOr<RunRecord> FindRun(Tx& tx, const std::string& project_id, const std::string& project,
                            const std::string& run_id, bool with_nodes) {
  auto run = LoadRun(tx, run_id, with_nodes);
  if (run.ok() && run->project_id != project_id) run = NotFoundError("");
  if (!run.ok() && run.status().code() == StatusCode::kNotFound) {
    return NotFoundError(
        fmt::format("pipeline run \"{}\" not found in project \"{}\"", run_id, project));
  }
  return run;
}

// Version page tokens: versions are numbers, not ids.
std::string EncodeVersionToken(int64_t version) {
  return Base64UrlEncode(fmt::format("v{}", version));
}

StatusOr<int64_t> DecodeVersionToken(std::string_view token) {
  if (token.empty()) return int64_t{0};
  std::string text;
  int64_t v = 0;
  if (Base64UrlDecode(token, &text) && text.size() > 1 && text[0] == 'v') {
    auto [p, ec] = std::from_chars(text.data() + 1, text.data() + text.size(), v);
    if (ec == std::errc() && p == text.data() + text.size() && v > 0) return v;
  }
  return InvalidArgumentError("page_token: not a page token returned by this API", "page_token");
}

// A step's aggregate state for the graph: running while any node runs,
// pending while any waits, then the worst outcome of its nodes.
NodeState AggregateState(const std::vector<const NodeRecord*>& nodes) {
  if (nodes.empty()) return NodeState::kPending;
  bool any[8] = {};
  for (const NodeRecord* n : nodes) any[static_cast<int>(n->state)] = true;
  auto has = [&](NodeState s) { return any[static_cast<int>(s)]; };
  for (NodeState s : {NodeState::kRunning, NodeState::kPending, NodeState::kFailed,
                      NodeState::kErrored, NodeState::kCancelled, NodeState::kSucceeded,
                      NodeState::kSkipped}) {
    if (has(s)) return s;
  }
  return NodeState::kOmitted;
}

}  // namespace

// ---------------------------------------------------------------- states

std::string_view RunStateName(RunState s) { return kRunStateNames[static_cast<int>(s)]; }

StatusOr<RunState> ParseRunState(std::string_view s, std::string_view field) {
  for (size_t i = 0; i < std::size(kRunStateNames); ++i) {
    if (kRunStateNames[i] == s) return static_cast<RunState>(i);
  }
  return InvalidArgumentError(
      fmt::format("{}: \"{}\" is not a run state (pending, running, succeeded, failed, cancelled)",
                  field, s),
      std::string(field));
}

bool IsTerminal(RunState s) { return s >= RunState::kSucceeded; }

std::string_view NodeStateName(NodeState s) {
  switch (s) {
    case NodeState::kPending: return "pending";
    case NodeState::kRunning: return "running";
    case NodeState::kSucceeded: return "succeeded";
    case NodeState::kFailed: return "failed";
    case NodeState::kErrored: return "errored";
    case NodeState::kSkipped: return "skipped";
    case NodeState::kOmitted: return "omitted";
    case NodeState::kCancelled: return "cancelled";
  }
  return "pending";
}

StatusOr<NodeState> ParseNodeState(std::string_view s) {
  for (int i = 0; i <= static_cast<int>(NodeState::kCancelled); ++i) {
    if (NodeStateName(static_cast<NodeState>(i)) == s) return static_cast<NodeState>(i);
  }
  return DataLossError(fmt::format("\"{}\" is not a node state", s));
}

bool IsTerminal(NodeState s) { return s != NodeState::kPending && s != NodeState::kRunning; }

// ---------------------------------------------------------------- outputs

std::string EncodeNodeOutputs(const std::map<std::string, std::string>& parameters,
                              const std::map<std::string, ArtifactRef>& artifacts) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject().Key("parameters").BeginObject();
  for (const auto& [k, v] : parameters) w.Field(k, v);
  w.EndObject().Key("artifacts").BeginObject();
  for (const auto& [k, a] : artifacts) {
    w.Key(k).BeginObject().Field("path", a.path).Field("digest", a.digest).EndObject();
  }
  w.EndObject().EndObject();
  return out;
}

Status DecodeNodeOutputs(std::string_view text, std::map<std::string, std::string>* parameters,
                         std::map<std::string, ArtifactRef>* artifacts) {
  parameters->clear();
  artifacts->clear();
  if (text.empty() || text == "{}") return OkStatus();
  ASSIGN_OR_RETURN(JsonValue v, ParseJson(text));
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, "outputs"));
  RETURN_IF_ERROR(r.StringMap("parameters", parameters));
  ASSIGN_OR_RETURN(const JsonValue* arts, r.Value("artifacts"));
  RETURN_IF_ERROR(r.Finish());
  if (arts == nullptr) return OkStatus();
  if (!arts->is_object()) return InvalidArgumentError("outputs.artifacts: expected an object");
  for (const auto& [name, a] : arts->members()) {
    ASSIGN_OR_RETURN(ObjectReader ar, ObjectReader::Make(a, "outputs.artifacts." + name));
    ArtifactRef ref;
    RETURN_IF_ERROR(ar.String("path", &ref.path));
    RETURN_IF_ERROR(ar.String("digest", &ref.digest));
    RETURN_IF_ERROR(ar.Finish());
    artifacts->emplace(name, std::move(ref));
  }
  return OkStatus();
}

// ---------------------------------------------------------------- store helpers

StatusOr<PipelineVersionRecord> LoadVersion(Tx& tx, const std::string& pipeline_id, int64_t version) {
  ASSIGN_OR_RETURN(
      ResultSet rs,
      tx.Query("SELECT v.spec, v.digest, v.code, COALESCE(u.name, ''), v.created_at, pl.name "
               "FROM pipeline_versions v JOIN pipelines pl ON pl.id = v.pipeline_id LEFT JOIN "
               "users u ON u.id = v.created_by_id WHERE v.pipeline_id = ? AND v.version = ?",
               {pipeline_id, version}));
  if (rs.empty()) {
    return NotFoundError(fmt::format("pipeline version {} not found", version)).WithField("version");
  }
  const auto& r = rs.rows[0];
  PipelineVersionRecord out;
  out.pipeline_id = pipeline_id;
  out.pipeline = AsText(r[5]);
  out.version = version;
  ASSIGN_OR_RETURN(out.spec, DecodeStoredSpec(AsText(r[0]), fmt::format("pipeline {} version {}",
                                                                        out.pipeline, version)));
  out.digest = AsText(r[1]);
  out.code = AsText(r[2]);
  out.created_by = AsText(r[3]);
  out.created_at = AsInt(r[4]);
  return out;
}

Status AppendRunEvent(Tx& tx, const std::string& run_id, const RunEvent& e) {
  // next_event is the per-run sequence; bump it and use the old value.
  ASSIGN_OR_RETURN(ResultSet rs, tx.Query("UPDATE pipeline_runs SET next_event = next_event + 1 "
                                          "WHERE id = ? RETURNING next_event",
                                          {run_id}));
  if (rs.empty()) return NotFoundError(fmt::format("pipeline run {} not found", run_id));
  const int64_t seq = AsInt(rs.rows[0][0]) - 1;
  if (seq >= kMaxRunEvents) {
    RETURN_IF_ERROR(tx.Exec("DELETE FROM pipeline_run_events WHERE run_id = ? AND seq <= ?",
                            {run_id, seq - kMaxRunEvents})
                        .status());
  }
  return tx.Exec("INSERT INTO pipeline_run_events (run_id, seq, time, type, reason, message) "
                 "VALUES (?, ?, ?, ?, ?, ?)",
                 {run_id, seq, e.time, e.type, e.reason, e.message})
      .status();
}

StatusOr<RunRecord> InsertRun(Tx& tx, const NewRun& req, int64_t now_us) {
  ASSIGN_OR_RETURN(PipelineRecord pl, FindPipeline(tx, req.project_id, req.pipeline, "pipeline"));
  const int64_t version = req.version.value_or(pl.latest_version);
  if (version < 1 || version > pl.latest_version) {
    return NotFoundError(fmt::format("pipeline \"{}\" has no version {} (latest: {})", pl.name,
                                     version, pl.latest_version))
        .WithField("version");
  }
  ASSIGN_OR_RETURN(PipelineVersionRecord v, LoadVersion(tx, pl.id, version));
  JsonValue given = req.params.is_null() ? JsonValue::MakeObject({}) : req.params;
  if (!given.is_object()) {
    return InvalidArgumentError(
        fmt::format("params: expected an object, got {}", JsonTypeName(given.type())), "params");
  }
  if (req.sample) {
    const std::string field = fmt::format("params.{}", spec::kSampleParam);
    const spec::ParamSpec* declared = nullptr;
    for (const spec::ParamSpec& p : v.spec.params) {
      if (p.name == spec::kSampleParam) declared = &p;
    }
    if (declared == nullptr || declared->type != spec::ParamType::kInt) {
      return InvalidArgumentError(
          fmt::format("{}: --sample needs the pipeline to declare an int param \"{}\" (version "
                      "{} of \"{}\" {})",
                      field, spec::kSampleParam, version, pl.name,
                      declared == nullptr ? "has none"
                                          : fmt::format("declares it as {}",
                                                        spec::ParamTypeName(declared->type))),
          field);
    }
    if (*req.sample < 1) {
      return InvalidArgumentError(fmt::format("{}: --sample must be at least 1, got {}", field,
                                              *req.sample),
                                  field);
    }
    std::vector<JsonValue::Member> members;
    for (const auto& m : given.members()) {
      if (m.first != spec::kSampleParam) members.push_back(m);
    }
    members.emplace_back(std::string(spec::kSampleParam), JsonValue::MakeInt(*req.sample));
    given = JsonValue::MakeObject(std::move(members));
  }
  ASSIGN_OR_RETURN(JsonValue params, spec::ResolveParams(v.spec, given, req.coerce_strings));
  const std::string id = NewId();
  RETURN_IF_ERROR(
      tx.Exec("INSERT INTO pipeline_runs (id, project_id, pipeline_id, version, params, state, "
              "reason, message, created_by_id, code, cache_enabled, cancel_requested, retries, "
              "schedule_id, scheduled_time, created_at, next_event) VALUES (?, ?, ?, ?, ?, "
              "'pending', 'Created', '', ?, ?, ?, 0, 0, ?, ?, ?, 0)",
              {id, req.project_id, pl.id, version, params.Dump(), req.created_by_id, v.code,
               int64_t{req.cache ? 1 : 0}, req.schedule_id, req.scheduled_time, now_us})
          .status());
  std::string msg = fmt::format("run of {} version {}", pl.name, version);
  if (!req.schedule_id.empty()) {
    msg += fmt::format(" by schedule {} for {}", req.schedule_id, FormatRfc3339(req.scheduled_time));
  }
  if (!req.cache) msg += "; cache off";
  RETURN_IF_ERROR(AppendRunEvent(tx, id, {0, now_us, "Normal", "Created", msg}));
  return LoadRun(tx, id, false);
}

StatusOr<RunRecord> LoadRun(Tx& tx, const std::string& run_id, bool with_nodes) {
  ASSIGN_OR_RETURN(ResultSet rs, tx.Query(SelectRuns("r.id = ?"), {run_id}));
  if (rs.empty()) return NotFoundError(fmt::format("pipeline run {} not found", run_id));
  ASSIGN_OR_RETURN(RunRecord run, RunFromRow(rs.rows[0]));
  if (with_nodes) {
    ASSIGN_OR_RETURN(run.nodes, LoadNodes(tx, run_id));
  }
  return run;
}

StatusOr<std::vector<NodeRecord>> LoadNodes(Tx& tx, const std::string& run_id) {
  ASSIGN_OR_RETURN(ResultSet rs,
                   tx.Query(fmt::format("SELECT {} FROM pipeline_nodes WHERE run_id = ? ORDER BY "
                                        "created_at, step, item, node",
                                        kNodeColumns),
                            {run_id}));
  std::vector<NodeRecord> out;
  out.reserve(rs.size());
  for (const auto& r : rs.rows) {
    ASSIGN_OR_RETURN(NodeRecord n, NodeFromRow(r));
    out.push_back(std::move(n));
  }
  return out;
}

StatusOr<std::vector<std::string>> ActiveRunIds(Tx& tx) {
  ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT id FROM pipeline_runs WHERE state IN "
                                          "('pending', 'running') ORDER BY created_at, id"));
  std::vector<std::string> out;
  out.reserve(rs.size());
  for (const auto& r : rs.rows) out.push_back(AsText(r[0]));
  return out;
}

Status RequestCancel(Tx& tx, const std::string& run_id, const std::string& why, int64_t now_us) {
  ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT state, cancel_requested FROM pipeline_runs "
                                          "WHERE id = ?",
                                          {run_id}));
  if (rs.empty()) return NotFoundError(fmt::format("pipeline run {} not found", run_id));
  ASSIGN_OR_RETURN(RunState state, ParseRunState(AsText(rs.rows[0][0])));
  if (IsTerminal(state)) {
    return FailedPreconditionError(
        fmt::format("pipeline run {} already ended ({})", run_id, RunStateName(state)));
  }
  if (AsInt(rs.rows[0][1]) != 0) return OkStatus();
  RETURN_IF_ERROR(
      tx.Exec("UPDATE pipeline_runs SET cancel_requested = 1 WHERE id = ?", {run_id}).status());
  return AppendRunEvent(tx, run_id, {0, now_us, "Normal", "CancelRequested", why});
}

Status ResumeRun(Tx& tx, const std::string& run_id, int64_t now_us) {
  ASSIGN_OR_RETURN(RunRecord run, LoadRun(tx, run_id, false));
  if (run.state != RunState::kFailed && run.state != RunState::kCancelled) {
    return FailedPreconditionError(fmt::format(
        "pipeline run {} is {}; only failed or cancelled runs can be retried", run_id,
        RunStateName(run.state)));
  }
  ASSIGN_OR_RETURN(PipelineVersionRecord v, LoadVersion(tx, run.pipeline_id, run.version));
  // Succeeded nodes (cache hits included) keep their outputs and are never
  // run again; everything else is reached anew. The exit handler always
  // runs at the end of a run, so it runs again too.
  RETURN_IF_ERROR(tx.Exec("DELETE FROM pipeline_nodes WHERE run_id = ? AND state <> 'succeeded'",
                          {run_id})
                      .status());
  if (v.spec.on_exit) {
    RETURN_IF_ERROR(tx.Exec("DELETE FROM pipeline_nodes WHERE run_id = ? AND step = ?",
                            {run_id, v.spec.on_exit->name})
                        .status());
  }
  ASSIGN_OR_RETURN(int64_t n,
                   tx.Exec("UPDATE pipeline_runs SET state = 'running', reason = 'Retrying', "
                           "message = '', cancel_requested = 0, retries = retries + 1, "
                           "finished_at = 0 WHERE id = ? AND state = ?",
                           {run_id, std::string(RunStateName(run.state))}));
  if (n == 0) return AbortedError(fmt::format("pipeline run {} changed state concurrently", run_id));
  return AppendRunEvent(
      tx, run_id,
      {0, now_us, "Normal", "Retrying",
       fmt::format("retry {}: resuming from the steps that did not succeed", run.retries + 1)});
}

Status DeleteRun(Tx& tx, const std::string& run_id) {
  ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT state FROM pipeline_runs WHERE id = ?", {run_id}));
  if (rs.empty()) return NotFoundError(fmt::format("pipeline run {} not found", run_id));
  ASSIGN_OR_RETURN(RunState state, ParseRunState(AsText(rs.rows[0][0])));
  if (!IsTerminal(state)) {
    return FailedPreconditionError(fmt::format(
        "pipeline run {} is {}; cancel it first (`lathe pipeline-run cancel`)", run_id,
        RunStateName(state)));
  }
  RETURN_IF_ERROR(tx.Exec("DELETE FROM pipeline_run_events WHERE run_id = ?", {run_id}).status());
  RETURN_IF_ERROR(tx.Exec("DELETE FROM pipeline_nodes WHERE run_id = ?", {run_id}).status());
  return tx.Exec("DELETE FROM pipeline_runs WHERE id = ?", {run_id}).status();
}

// ---------------------------------------------------------------- service

PipelineService::PipelineService(store::Store& store, tenancy::TenancyService& tenancy,
                                 const Clock& clock)
    : store_(store), tenancy_(tenancy), clock_(clock) {}

StatusOr<PipelineService::Created> PipelineService::Create(const Principal& p,
                                                           const std::string& project,
                                                           const JsonValue& spec_json,
                                                           const std::string& code) {
  ASSIGN_OR_RETURN(spec::PipelineSpec parsed, spec::ParsePipelineSpec(spec_json));
  if (!parsed.project.empty() && parsed.project != project) {
    return InvalidArgumentError(
        fmt::format("project: the spec names project \"{}\" but the request is for \"{}\"",
                    parsed.project, project),
        "project");
  }
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kEditor));
  const std::string canonical = CanonicalSpec(parsed);
  const std::string digest = Sha256Hex(canonical + "\n" + code);
  const int64_t now = clock_.NowMicros();
  Created out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    out = Created{};
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT id, latest_version FROM pipelines WHERE "
                                            "project_id = ? AND name = ?",
                                            {proj.id, parsed.name}));
    std::string id;
    int64_t version = 1;
    if (rs.empty()) {
      id = NewId();
      auto inserted = tx.Exec(
          "INSERT INTO pipelines (id, project_id, name, description, latest_version, "
          "created_by_id, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
          {id, proj.id, parsed.name, parsed.description, p.user_id, now, now});
      // A concurrent create of the same name: run again and find it.
      if (inserted.status().code() == StatusCode::kAlreadyExists) {
        return AbortedError("pipeline created concurrently");
      }
      RETURN_IF_ERROR(inserted.status());
    } else {
      id = AsText(rs.rows[0][0]);
      const int64_t latest = AsInt(rs.rows[0][1]);
      ASSIGN_OR_RETURN(ResultSet last, tx.Query("SELECT digest FROM pipeline_versions WHERE "
                                                "pipeline_id = ? AND version = ?",
                                                {id, latest}));
      if (!last.empty() && AsText(last.rows[0][0]) == digest) {
        ASSIGN_OR_RETURN(out.version, LoadVersion(tx, id, latest));
        return OkStatus();
      }
      version = latest + 1;
      ASSIGN_OR_RETURN(int64_t n,
                       tx.Exec("UPDATE pipelines SET latest_version = ?, description = ?, "
                               "updated_at = ? WHERE id = ? AND latest_version = ?",
                               {version, parsed.description, now, id, latest}));
      if (n == 0) return AbortedError("pipeline version added concurrently");
    }
    RETURN_IF_ERROR(tx.Exec("INSERT INTO pipeline_versions (pipeline_id, version, spec, digest, "
                            "code, created_by_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            {id, version, canonical, digest, code, p.user_id, now})
                        .status());
    out.created = true;
    out.version.pipeline_id = id;
    out.version.pipeline = parsed.name;
    out.version.version = version;
    out.version.spec = parsed;
    out.version.digest = digest;
    out.version.code = code;
    out.version.created_by = p.user_name;
    out.version.created_at = now;
    return OkStatus();
  }));
  return out;
}

StatusOr<PipelineRecord> PipelineService::Get(const Principal& p, const std::string& project,
                                              const std::string& name) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kViewer));
  PipelineRecord out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(out, FindPipeline(tx, proj.id, name));
    return OkStatus();
  }));
  return out;
}

StatusOr<tenancy::Page<PipelineRecord>> PipelineService::List(const Principal& p,
                                                              const std::string& project,
                                                              const tenancy::PageRequest& page) {
  RETURN_IF_ERROR(tenancy::ValidatePage(page));
  ASSIGN_OR_RETURN(std::string before, tenancy::DecodePageToken(page.page_token));
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kViewer));
  std::string where = "pl.project_id = ?";
  std::vector<Value> params{proj.id};
  if (!before.empty()) {
    where += " AND pl.id < ?";
    params.emplace_back(before);
  }
  // Newest first (ids are ULIDs, ordered by creation time).
  where += fmt::format(" ORDER BY pl.id DESC LIMIT {}", page.limit + 1);
  tenancy::Page<PipelineRecord> out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    out.items.clear();
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query(SelectPipelines(where), params));
    for (const auto& r : rs.rows) out.items.push_back(PipelineFromRow(r));
    return OkStatus();
  }));
  if (static_cast<int64_t>(out.items.size()) > page.limit) {
    out.items.pop_back();
    out.next_page_token = tenancy::EncodePageToken(out.items.back().id);
  }
  return out;
}

StatusOr<PipelineVersionRecord> PipelineService::GetVersion(const Principal& p,
                                                            const std::string& project,
                                                            const std::string& name,
                                                            std::optional<int64_t> version) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kViewer));
  PipelineVersionRecord out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(PipelineRecord pl, FindPipeline(tx, proj.id, name));
    const int64_t v = version.value_or(pl.latest_version);
    auto loaded = LoadVersion(tx, pl.id, v);
    if (loaded.status().code() == StatusCode::kNotFound) {
      return NotFoundError(fmt::format("pipeline \"{}\" has no version {} (latest: {})", name, v,
                                       pl.latest_version));
    }
    ASSIGN_OR_RETURN(out, std::move(loaded));
    return OkStatus();
  }));
  return out;
}

StatusOr<tenancy::Page<PipelineVersionRecord>> PipelineService::ListVersions(
    const Principal& p, const std::string& project, const std::string& name,
    const tenancy::PageRequest& page) {
  RETURN_IF_ERROR(tenancy::ValidatePage(page));
  ASSIGN_OR_RETURN(int64_t before, DecodeVersionToken(page.page_token));
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kViewer));
  tenancy::Page<PipelineVersionRecord> out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    out.items.clear();
    ASSIGN_OR_RETURN(PipelineRecord pl, FindPipeline(tx, proj.id, name));
    ASSIGN_OR_RETURN(ResultSet rs,
                     tx.Query(fmt::format("SELECT version FROM pipeline_versions WHERE "
                                          "pipeline_id = ? AND version < ? ORDER BY version DESC "
                                          "LIMIT {}",
                                          page.limit + 1),
                              {pl.id, before > 0 ? before : pl.latest_version + 1}));
    for (const auto& r : rs.rows) {
      ASSIGN_OR_RETURN(PipelineVersionRecord v, LoadVersion(tx, pl.id, AsInt(r[0])));
      out.items.push_back(std::move(v));
    }
    return OkStatus();
  }));
  if (static_cast<int64_t>(out.items.size()) > page.limit) {
    out.items.pop_back();
    out.next_page_token = EncodeVersionToken(out.items.back().version);
  }
  return out;
}

Status PipelineService::Remove(const Principal& p, const std::string& project,
                               const std::string& name) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kEditor));
  return store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(PipelineRecord pl, FindPipeline(tx, proj.id, name));
    ASSIGN_OR_RETURN(ResultSet active,
                     tx.Query("SELECT id FROM pipeline_runs WHERE pipeline_id = ? AND state IN "
                              "('pending', 'running') LIMIT 1",
                              {pl.id}));
    if (!active.empty()) {
      return FailedPreconditionError(
          fmt::format("pipeline \"{}\" has an active run ({}); cancel it first", name,
                      AsText(active.rows[0][0])));
    }
    ASSIGN_OR_RETURN(ResultSet schedules,
                     tx.Query("SELECT name, spec FROM schedules WHERE project_id = ?", {proj.id}));
    for (const auto& r : schedules.rows) {
      auto spec = ParseJson(AsText(r[1]));
      if (!spec.ok()) continue;
      const JsonValue* target = spec->Find("pipeline");
      if (target != nullptr && target->is_string() && target->as_string() == name) {
        return FailedPreconditionError(fmt::format(
            "pipeline \"{}\" is used by schedule \"{}\"; delete the schedule first", name,
            AsText(r[0])));
      }
    }
    const std::string runs = "(SELECT id FROM pipeline_runs WHERE pipeline_id = ?)";
    RETURN_IF_ERROR(
        tx.Exec(fmt::format("DELETE FROM pipeline_run_events WHERE run_id IN {}", runs), {pl.id})
            .status());
    RETURN_IF_ERROR(
        tx.Exec(fmt::format("DELETE FROM pipeline_nodes WHERE run_id IN {}", runs), {pl.id})
            .status());
    RETURN_IF_ERROR(tx.Exec("DELETE FROM pipeline_runs WHERE pipeline_id = ?", {pl.id}).status());
    RETURN_IF_ERROR(
        tx.Exec("DELETE FROM pipeline_versions WHERE pipeline_id = ?", {pl.id}).status());
    return tx.Exec("DELETE FROM pipelines WHERE id = ?", {pl.id}).status();
  });
}

StatusOr<RunRecord> PipelineService::StartRun(const Principal& p, const std::string& project,
                                              const StartRunRequest& req) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kEditor));
  NewRun run;
  run.project_id = proj.id;
  run.pipeline = req.pipeline;
  run.version = req.version;
  run.params = req.params;
  run.coerce_strings = req.coerce_strings;
  run.sample = req.sample;
  run.cache = req.cache;
  run.created_by_id = p.user_id;
  RunRecord out;
  const int64_t now = clock_.NowMicros();
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(out, InsertRun(tx, run, now));
    return OkStatus();
  }));
  return out;
}

StatusOr<RunRecord> PipelineService::GetRun(const Principal& p, const std::string& project,
                                            const std::string& run_id) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kViewer));
  RunRecord out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(out, FindRun(tx, proj.id, proj.name, run_id, true));
    return OkStatus();
  }));
  return out;
}

StatusOr<tenancy::Page<RunRecord>> PipelineService::ListRuns(const Principal& p,
                                                             const RunFilter& filter,
                                                             const tenancy::PageRequest& page) {
  RETURN_IF_ERROR(tenancy::ValidatePage(page));
  ASSIGN_OR_RETURN(std::string before, tenancy::DecodePageToken(page.page_token));
  ASSIGN_OR_RETURN(tenancy::Project proj,
                   tenancy_.AuthorizeProject(p, filter.project, Role::kViewer));
  std::string where = "r.project_id = ?";
  std::vector<Value> params{proj.id};
  if (!filter.pipeline.empty()) {
    where += " AND pl.name = ?";
    params.emplace_back(filter.pipeline);
  }
  if (filter.state) {
    where += " AND r.state = ?";
    params.emplace_back(std::string(RunStateName(*filter.state)));
  }
  if (!filter.schedule.empty()) {
    where += " AND r.schedule_id = ?";
    params.emplace_back(filter.schedule);
  }
  if (!before.empty()) {
    where += " AND r.id < ?";
    params.emplace_back(before);
  }
  where += fmt::format(" ORDER BY r.id DESC LIMIT {}", page.limit + 1);
  tenancy::Page<RunRecord> out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    out.items.clear();
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query(SelectRuns(where), params));
    for (const auto& r : rs.rows) {
      ASSIGN_OR_RETURN(RunRecord run, RunFromRow(r));
      out.items.push_back(std::move(run));
    }
    return OkStatus();
  }));
  if (static_cast<int64_t>(out.items.size()) > page.limit) {
    out.items.pop_back();
    out.next_page_token = tenancy::EncodePageToken(out.items.back().id);
  }
  return out;
}

StatusOr<std::vector<RunEvent>> PipelineService::RunEvents(const Principal& p,
                                                           const std::string& project,
                                                           const std::string& run_id) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kViewer));
  std::vector<RunEvent> out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    out.clear();
    ASSIGN_OR_RETURN(RunRecord run, FindRun(tx, proj.id, proj.name, run_id, false));
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT seq, time, type, reason, message FROM "
                                            "pipeline_run_events WHERE run_id = ? ORDER BY seq",
                                            {run.id}));
    for (const auto& r : rs.rows) {
      out.push_back({AsInt(r[0]), AsInt(r[1]), AsText(r[2]), AsText(r[3]), AsText(r[4])});
    }
    return OkStatus();
  }));
  return out;
}

StatusOr<RunGraph> PipelineService::Graph(const Principal& p, const std::string& project,
                                          const std::string& run_id) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kViewer));
  RunRecord run;
  PipelineVersionRecord version;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(run, FindRun(tx, proj.id, proj.name, run_id, true));
    ASSIGN_OR_RETURN(version, LoadVersion(tx, run.pipeline_id, run.version));
    return OkStatus();
  }));
  const spec::PipelineSpec& s = version.spec;
  std::unordered_map<std::string, std::vector<const NodeRecord*>> by_step;
  for (const NodeRecord& n : run.nodes) by_step[n.step].push_back(&n);
  RunGraph g;
  auto add_step = [&](const spec::StepSpec& st, bool exit_handler) {
    RunGraph::Step out;
    out.name = st.name;
    out.exit_handler = exit_handler;
    const auto& nodes = by_step[st.name];
    out.state = AggregateState(nodes);
    for (const NodeRecord* n : nodes) {
      if (n->item >= 0) out.items += 1;
    }
    g.steps.push_back(std::move(out));
  };
  std::set<std::string> upstream;
  for (const spec::StepSpec& st : s.steps) {
    add_step(st, false);
    for (const std::string& d : st.depends_on) {
      g.edges.emplace_back(d, st.name);
      upstream.insert(d);
    }
  }
  if (s.on_exit) {
    add_step(*s.on_exit, true);
    for (const spec::StepSpec& st : s.steps) {
      if (!upstream.count(st.name)) g.edges.emplace_back(st.name, s.on_exit->name);
    }
  }
  g.nodes = std::move(run.nodes);
  return g;
}

StatusOr<RunRecord> PipelineService::CancelRun(const Principal& p, const std::string& project,
                                               const std::string& run_id) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kEditor));
  RunRecord out;
  const int64_t now = clock_.NowMicros();
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(RunRecord run, FindRun(tx, proj.id, proj.name, run_id, false));
    RETURN_IF_ERROR(
        RequestCancel(tx, run.id, fmt::format("cancel requested by {}", p.user_name), now));
    ASSIGN_OR_RETURN(out, LoadRun(tx, run.id, true));
    return OkStatus();
  }));
  return out;
}

StatusOr<RunRecord> PipelineService::RetryRun(const Principal& p, const std::string& project,
                                              const std::string& run_id) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kEditor));
  RunRecord out;
  const int64_t now = clock_.NowMicros();
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(RunRecord run, FindRun(tx, proj.id, proj.name, run_id, false));
    RETURN_IF_ERROR(ResumeRun(tx, run.id, now));
    ASSIGN_OR_RETURN(out, LoadRun(tx, run.id, true));
    return OkStatus();
  }));
  return out;
}

Status PipelineService::RemoveRun(const Principal& p, const std::string& project,
                                  const std::string& run_id) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kEditor));
  return store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(RunRecord run, FindRun(tx, proj.id, proj.name, run_id, false));
    return DeleteRun(tx, run.id);
  });
}

}  // namespace lathe::control
