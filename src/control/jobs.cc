#include "control/jobs.h"

#include <fmt/core.h>

#include <unordered_map>

#include "base/id.h"
#include "base/json.h"

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

constexpr std::string_view kPhaseNames[] = {"pending",   "admitted", "launching", "running",
                                            "succeeded", "failed",   "cancelled", "timed_out"};

constexpr const char* kJobColumns =
    "j.id, p.name, j.project_id, j.created_by, j.spec, j.phase, j.reason, j.message, j.attempt, "
    "j.restarts, j.cancel_requested, j.code, j.tasks, j.created_at, j.admitted_at, j.started_at, "
    "j.finished_at, j.not_before, j.created_by_id, j.run_id";

constexpr const char* kTerminalPhases = "('succeeded', 'failed', 'cancelled', 'timed_out')";

std::string EncodeTasks(const std::vector<TaskRecord>& tasks) {
  std::string out;
  JsonWriter w(&out);
  w.BeginArray();
  for (const TaskRecord& t : tasks) {
    w.BeginObject().Field("role", t.role).Field("index", t.index).Field("node", t.node);
    w.Key("gpus").BeginArray();
    for (int g : t.gpus) w.Int(g);
    w.EndArray();
    w.Field("host", t.host).Field("port", t.port).Field("state", t.state);
    w.Field("exit_code", t.exit_code).Field("signal", t.signal);
    w.Field("started_at", t.started_at).Field("finished_at", t.finished_at);
    w.EndObject();
  }
  w.EndArray();
  return out;
}

StatusOr<std::vector<TaskRecord>> DecodeTasks(const std::string& text) {
  ASSIGN_OR_RETURN(JsonValue v, ParseJson(text));
  std::vector<TaskRecord> out;
  for (const JsonValue& item : v.items()) {
    TaskRecord t;
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(item, "tasks"));
    int64_t index = 0, port = 0, exit_code = 0, signal = 0;
    RETURN_IF_ERROR(r.String("role", &t.role));
    RETURN_IF_ERROR(r.Int("index", &index));
    RETURN_IF_ERROR(r.String("node", &t.node));
    ASSIGN_OR_RETURN(const JsonValue* gpus, r.Value("gpus"));
    if (gpus != nullptr) {
      for (const JsonValue& g : gpus->items()) t.gpus.push_back(static_cast<int>(g.as_int()));
    }
    RETURN_IF_ERROR(r.String("host", &t.host));
    RETURN_IF_ERROR(r.Int("port", &port));
    RETURN_IF_ERROR(r.String("state", &t.state));
    RETURN_IF_ERROR(r.Int("exit_code", &exit_code));
    RETURN_IF_ERROR(r.Int("signal", &signal));
    RETURN_IF_ERROR(r.Int("started_at", &t.started_at));
    RETURN_IF_ERROR(r.Int("finished_at", &t.finished_at));
    t.index = static_cast<int>(index);
    t.port = static_cast<int>(port);
    t.exit_code = static_cast<int>(exit_code);
    t.signal = static_cast<int>(signal);
    out.push_back(std::move(t));
  }
  return out;
}

std::string EncodeSpec(const spec::JobSpec& s) {
  std::string out;
  JsonWriter w(&out);
  spec::WriteJobSpec(w, s);
  return out;
}

StatusOr<JobRecord> JobFromRow(const std::vector<Value>& r, SpecCache* cache = nullptr) {
  JobRecord j;
  j.id = AsText(r[0]);
  j.project = AsText(r[1]);
  j.project_id = AsText(r[2]);
  j.created_by = AsText(r[3]);
  const spec::JobSpec* cached = nullptr;
  if (cache != nullptr) {
    auto it = cache->find(j.id);
    if (it != cache->end()) cached = &it->second;
  }
  if (cached != nullptr) {
    j.spec = *cached;
  } else {
    ASSIGN_OR_RETURN(JsonValue spec_json, ParseJson(AsText(r[4])));
    auto parsed = spec::ParseJobSpec(spec_json, "", /*trusted=*/true);
    if (!parsed.ok()) {
      return DataLossError(fmt::format("job {}: stored spec does not parse: {}", j.id,
                                       parsed.status().message()));
    }
    j.spec = std::move(*parsed);
    if (cache) cache->emplace(j.id, j.spec);
  }
  ASSIGN_OR_RETURN(j.phase, ParsePhase(AsText(r[5])));
  j.reason = AsText(r[6]);
  j.message = AsText(r[7]);
  j.attempt = static_cast<int>(AsInt(r[8]));
  j.restarts = static_cast<int>(AsInt(r[9]));
  j.cancel_requested = AsInt(r[10]) != 0;
  j.code = AsText(r[11]);
  ASSIGN_OR_RETURN(j.tasks, DecodeTasks(AsText(r[12])));
  j.created_at = AsInt(r[13]);
  j.admitted_at = AsInt(r[14]);
  j.started_at = AsInt(r[15]);
  j.finished_at = AsInt(r[16]);
  j.not_before = AsInt(r[17]);
  j.created_by_id = AsText(r[18]);
  j.run_id = AsText(r[19]);
  return j;
}

std::string SelectJobs(std::string_view where) {
  return fmt::format("SELECT {} FROM jobs j JOIN projects p ON p.id = j.project_id WHERE {}",
                     kJobColumns, where);
}

// The job `id_or_name` of project `project_id`, or NOT_FOUND.
StatusOr<JobRecord> FindJob(Tx& tx, const std::string& project_id, const std::string& project,
                            const std::string& id_or_name) {
  ASSIGN_OR_RETURN(ResultSet rs, tx.Query(SelectJobs("j.project_id = ? AND (j.id = ? OR j.name = ?)"),
                                          {project_id, id_or_name, id_or_name}));
  if (rs.empty()) {
    return NotFoundError(fmt::format("job \"{}\" not found in project \"{}\"", id_or_name, project));
  }
  return JobFromRow(rs.rows[0]);
}

std::string EncodeQueue(const spec::QueueSpec& q) {
  std::string out;
  JsonWriter w(&out);
  spec::WriteQueueSpec(w, q);
  return out;
}

StatusOr<QueueRecord> QueueFromRow(const std::vector<Value>& r) {
  QueueRecord q;
  ASSIGN_OR_RETURN(JsonValue v, ParseJson(AsText(r[0])));
  auto parsed = spec::ParseQueueSpec(v);
  if (!parsed.ok()) {
    return DataLossError(fmt::format("queue: stored spec does not parse: {}", parsed.status().message()));
  }
  q.spec = std::move(*parsed);
  q.created_at = AsInt(r[1]);
  q.updated_at = AsInt(r[2]);
  return q;
}

Status AdminOnly(const Principal& p, std::string_view what) {
  if (!p.is_admin || p.scoped()) {
    return PermissionDeniedError(fmt::format("only server admins can {}", what));
  }
  return OkStatus();
}

Status InsertEvent(Tx& tx, const std::string& job_id, const JobEvent& e) {
  // next_event is the per-job sequence; bump it and use the old value.
  ASSIGN_OR_RETURN(ResultSet rs,
                   tx.Query("UPDATE jobs SET next_event = next_event + 1 WHERE id = ? "
                            "RETURNING next_event",
                            {job_id}));
  if (rs.empty()) return NotFoundError(fmt::format("job {} not found", job_id));
  const int64_t seq = AsInt(rs.rows[0][0]) - 1;
  return tx.Exec("INSERT INTO job_events (job_id, seq, time, type, reason, message) "
                 "VALUES (?, ?, ?, ?, ?, ?)",
                 {job_id, seq, e.time, e.type, e.reason, e.message})
      .status();
}

}  // namespace

std::string_view PhaseName(Phase p) { return kPhaseNames[static_cast<int>(p)]; }

StatusOr<Phase> ParsePhase(std::string_view s, std::string_view field) {
  for (size_t i = 0; i < std::size(kPhaseNames); ++i) {
    if (kPhaseNames[i] == s) return static_cast<Phase>(i);
  }
  return InvalidArgumentError(
      fmt::format("{}: \"{}\" is not a phase (pending, admitted, launching, running, succeeded, "
                  "failed, cancelled, timed_out)",
                  field, s),
      std::string(field));
}

bool IsTerminal(Phase p) { return p >= Phase::kSucceeded; }

JobService::JobService(store::Store& store, tenancy::TenancyService& tenancy, const Clock& clock)
    : store_(store), tenancy_(tenancy), clock_(clock) {}

StatusOr<std::vector<JobRecord>> JobService::Submit(const Principal& p,
                                                    std::vector<spec::JobSpec> jobs,
                                                    const std::string& code, const FitCheck& fits) {
  if (jobs.empty()) return InvalidArgumentError("jobs: at least one job is required", "jobs");
  const bool batch = jobs.size() > 1;
  auto prefix = [&](size_t i, const Status& st) {
    if (!batch) return st;
    std::string field = fmt::format("jobs[{}]", i);
    if (!st.field().empty()) field += "." + st.field();
    return Status(st.code(), fmt::format("jobs[{}].{}", i, st.message()), field);
  };
  // Authorization per distinct project (the API passes one; batches may mix).
  std::unordered_map<std::string, tenancy::Project> projects;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const std::string& name = jobs[i].project;
    if (name.empty()) return prefix(i, InvalidArgumentError("project: required", "project"));
    if (projects.count(name)) continue;
    ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, name, Role::kEditor));
    projects.emplace(name, std::move(proj));
  }
  if (fits) {
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (Status st = fits(jobs[i]); !st.ok()) return prefix(i, st);
    }
  }
  std::vector<JobRecord> out;
  const int64_t now = clock_.NowMicros();
  Status st = store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    out.clear();
    for (size_t i = 0; i < jobs.size(); ++i) {
      const tenancy::Project& proj = projects.at(jobs[i].project);
      JobRecord j;
      j.project = proj.name;
      j.project_id = proj.id;
      j.created_by = p.user_name;
      j.created_by_id = p.user_id;
      j.spec = jobs[i];
      j.code = code;
      j.created_at = now;
      auto inserted = InsertJob(tx, std::move(j));
      if (!inserted.ok()) return prefix(i, inserted.status());
      out.push_back(std::move(*inserted));
    }
    return OkStatus();
  });
  RETURN_IF_ERROR(st);
  return out;
}

StatusOr<JobRecord> JobService::Get(const Principal& p, const std::string& project,
                                    const std::string& id_or_name) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kViewer));
  JobRecord out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(out, FindJob(tx, proj.id, proj.name, id_or_name));
    return OkStatus();
  }));
  return out;
}

StatusOr<tenancy::Page<JobRecord>> JobService::List(const Principal& p, const JobFilter& filter,
                                                    const tenancy::PageRequest& page) {
  RETURN_IF_ERROR(tenancy::ValidatePage(page));
  ASSIGN_OR_RETURN(std::string before, tenancy::DecodePageToken(page.page_token));
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, filter.project, Role::kViewer));
  std::string where = "j.project_id = ?";
  std::vector<Value> params{proj.id};
  if (filter.phase) {
    where += " AND j.phase = ?";
    params.emplace_back(std::string(PhaseName(*filter.phase)));
  }
  if (!filter.queue.empty()) {
    where += " AND j.queue = ?";
    params.emplace_back(filter.queue);
  }
  if (!before.empty()) {
    where += " AND j.id < ?";
    params.emplace_back(before);
  }
  // Newest first (ids are ULIDs, ordered by creation time).
  where += fmt::format(" ORDER BY j.id DESC LIMIT {}", page.limit + 1);
  tenancy::Page<JobRecord> out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    out.items.clear();
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query(SelectJobs(where), params));
    for (const auto& r : rs.rows) {
      ASSIGN_OR_RETURN(JobRecord j, JobFromRow(r));
      out.items.push_back(std::move(j));
    }
    return OkStatus();
  }));
  if (static_cast<int64_t>(out.items.size()) > page.limit) {
    out.items.pop_back();
    out.next_page_token = tenancy::EncodePageToken(out.items.back().id);
  }
  return out;
}

StatusOr<std::vector<JobEvent>> JobService::Events(const Principal& p, const std::string& project,
                                                   const std::string& id_or_name) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kViewer));
  std::vector<JobEvent> out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    out.clear();
    ASSIGN_OR_RETURN(JobRecord j, FindJob(tx, proj.id, proj.name, id_or_name));
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT seq, time, type, reason, message FROM "
                                            "job_events WHERE job_id = ? ORDER BY seq",
                                            {j.id}));
    for (const auto& r : rs.rows) {
      out.push_back({AsInt(r[0]), AsInt(r[1]), AsText(r[2]), AsText(r[3]), AsText(r[4])});
    }
    return OkStatus();
  }));
  return out;
}

StatusOr<JobRecord> JobService::Cancel(const Principal& p, const std::string& project,
                                       const std::string& id_or_name) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kEditor));
  JobRecord out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(out, FindJob(tx, proj.id, proj.name, id_or_name));
    if (IsTerminal(out.phase)) {
      return FailedPreconditionError(
          fmt::format("job \"{}\" already ended ({})", out.spec.name, PhaseName(out.phase)));
    }
    if (out.cancel_requested) return OkStatus();
    RETURN_IF_ERROR(
        tx.Exec("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", {out.id}).status());
    out.cancel_requested = true;
    return InsertEvent(tx, out.id,
                       {0, clock_.NowMicros(), "Normal", "CancelRequested",
                        fmt::format("cancel requested by {}", p.user_name)});
  }));
  return out;
}

StatusOr<JobRecord> JobService::Remove(const Principal& p, const std::string& project,
                                       const std::string& id_or_name) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kEditor));
  JobRecord out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(out, FindJob(tx, proj.id, proj.name, id_or_name));
    if (!IsTerminal(out.phase)) {
      return FailedPreconditionError(fmt::format(
          "job \"{}\" is {}; cancel it first (`lathe job cancel`)", out.spec.name, PhaseName(out.phase)));
    }
    return DeleteJob(tx, out.id);
  }));
  return out;
}

// ---------------------------------------------------------------- queues

StatusOr<QueueRecord> JobService::PutQueue(const Principal& p, const spec::QueueSpec& q,
                                           bool create_only) {
  RETURN_IF_ERROR(AdminOnly(p, "create or change queues"));
  QueueRecord out;
  const int64_t now = clock_.NowMicros();
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(std::vector<QueueRecord> all, LoadQueues(tx));
    std::unordered_map<std::string, std::string> parent_of;
    const QueueRecord* existing = nullptr;
    for (const QueueRecord& r : all) {
      parent_of[r.spec.name] = r.spec.parent;
      if (r.spec.name == q.name) existing = &r;
    }
    if (existing != nullptr && create_only) {
      return AlreadyExistsError(fmt::format("queue \"{}\" already exists", q.name), "name");
    }
    if (!q.parent.empty()) {
      if (!parent_of.count(q.parent)) {
        return InvalidArgumentError(fmt::format("parent: queue \"{}\" does not exist", q.parent),
                                    "parent");
      }
      // Jobs live in leaf queues: a queue with active jobs cannot become a parent.
      ASSIGN_OR_RETURN(ResultSet active,
                       tx.Query(fmt::format("SELECT COUNT(*) FROM jobs WHERE queue = ? AND phase "
                                            "NOT IN {}",
                                            kTerminalPhases),
                                {q.parent}));
      if (AsInt(active.rows[0][0]) > 0) {
        return FailedPreconditionError(
            fmt::format("parent: queue \"{}\" has {} active jobs; jobs live in leaf queues, so it "
                        "cannot get child queues until they end",
                        q.parent, AsInt(active.rows[0][0])),
            "parent");
      }
      // No cycles: walk up from the new parent.
      parent_of[q.name] = q.parent;
      std::string cur = q.parent;
      for (size_t steps = 0; !cur.empty(); ++steps) {
        if (cur == q.name || steps > parent_of.size()) {
          return InvalidArgumentError(
              fmt::format("parent: \"{}\" would make a cycle of queues", q.parent), "parent");
        }
        cur = parent_of[cur];
      }
    }
    out.spec = q;
    out.created_at = existing ? existing->created_at : now;
    out.updated_at = now;
    return tx.Exec("INSERT INTO queues (name, parent, spec, created_at, updated_at) VALUES "
                   "(?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET parent = excluded.parent, "
                   "spec = excluded.spec, updated_at = excluded.updated_at",
                   {q.name, q.parent, EncodeQueue(q), out.created_at, now})
        .status();
  }));
  return out;
}

StatusOr<QueueRecord> JobService::GetQueue(const Principal&, const std::string& name) {
  QueueRecord out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT spec, created_at, updated_at FROM queues "
                                            "WHERE name = ?",
                                            {name}));
    if (rs.empty()) return NotFoundError(fmt::format("queue \"{}\" not found", name));
    ASSIGN_OR_RETURN(out, QueueFromRow(rs.rows[0]));
    return OkStatus();
  }));
  return out;
}

StatusOr<std::vector<QueueRecord>> JobService::ListQueues(const Principal&) {
  std::vector<QueueRecord> out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(out, LoadQueues(tx));
    return OkStatus();
  }));
  return out;
}

Status JobService::DeleteQueue(const Principal& p, const std::string& name) {
  RETURN_IF_ERROR(AdminOnly(p, "delete queues"));
  if (name == "default") {
    return FailedPreconditionError("queue \"default\" cannot be deleted (jobs without a queue use it)");
  }
  return store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ResultSet children,
                     tx.Query("SELECT name FROM queues WHERE parent = ? LIMIT 1", {name}));
    if (!children.empty()) {
      return FailedPreconditionError(fmt::format("queue \"{}\" has child queue \"{}\"; delete it first",
                                                 name, AsText(children.rows[0][0])));
    }
    ASSIGN_OR_RETURN(ResultSet active,
                     tx.Query(fmt::format("SELECT COUNT(*) FROM jobs WHERE queue = ? AND phase "
                                          "NOT IN {}",
                                          kTerminalPhases),
                              {name}));
    if (AsInt(active.rows[0][0]) > 0) {
      return FailedPreconditionError(fmt::format("queue \"{}\" has {} active jobs", name,
                                                 AsInt(active.rows[0][0])));
    }
    ASSIGN_OR_RETURN(int64_t n, tx.Exec("DELETE FROM queues WHERE name = ?", {name}));
    if (n == 0) return NotFoundError(fmt::format("queue \"{}\" not found", name));
    return OkStatus();
  });
}

Status JobService::EnsureDefaultQueue() {
  const int64_t now = clock_.NowMicros();
  spec::QueueSpec q;
  q.name = "default";
  return store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    return tx.Exec("INSERT INTO queues (name, parent, spec, created_at, updated_at) VALUES "
                   "(?, '', ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                   {q.name, EncodeQueue(q), now, now})
        .status();
  });
}

// ---------------------------------------------------------------- store helpers

StatusOr<JobRecord> InsertJob(Tx& tx, JobRecord job, const std::string& event_message) {
  const spec::JobSpec& s = job.spec;
  ASSIGN_OR_RETURN(ResultSet qs, tx.Query("SELECT (SELECT COUNT(*) FROM queues WHERE name = ?), "
                                          "(SELECT COUNT(*) FROM queues WHERE parent = ?)",
                                          {s.queue, s.queue}));
  if (AsInt(qs.rows[0][0]) == 0) {
    return InvalidArgumentError(
        fmt::format("queue: \"{}\" does not exist (see `lathe queue ls`)", s.queue), "queue");
  }
  if (AsInt(qs.rows[0][1]) > 0) {
    return InvalidArgumentError(
        fmt::format("queue: \"{}\" has child queues; jobs go to leaf queues", s.queue), "queue");
  }
  if (job.id.empty()) job.id = NewId();
  auto inserted = tx.Exec(
      "INSERT INTO jobs (id, project_id, name, queue, spec, phase, reason, message, code, "
      "created_by, created_by_id, created_at, ttl_seconds, next_event) VALUES (?, ?, ?, ?, ?, "
      "'pending', 'Submitted', '', ?, ?, ?, ?, ?, 1)",
      {job.id, job.project_id, s.name, s.queue, EncodeSpec(s), job.code, job.created_by,
       job.created_by_id, job.created_at, s.ttl_seconds_after_finished.value_or(0)});
  if (!inserted.ok()) {
    if (inserted.status().code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError(fmt::format("name: a job named \"{}\" already exists in project "
                                            "\"{}\" (remove it first, or pick another name)",
                                            s.name, job.project),
                                "name");
    }
    return inserted.status();
  }
  const std::string message = event_message.empty()
                                  ? fmt::format("submitted by {} to queue {}", job.created_by, s.queue)
                                  : event_message;
  RETURN_IF_ERROR(tx.Exec("INSERT INTO job_events (job_id, seq, time, type, reason, message) "
                          "VALUES (?, 0, ?, 'Normal', 'Submitted', ?)",
                          {job.id, job.created_at, message})
                      .status());
  job.phase = Phase::kPending;
  job.reason = "Submitted";
  return job;
}

Status RequestJobCancel(Tx& tx, const std::string& id, const std::string& why, int64_t now_us) {
  ASSIGN_OR_RETURN(ResultSet rs,
                   tx.Query("SELECT phase, cancel_requested FROM jobs WHERE id = ?", {id}));
  if (rs.empty()) return NotFoundError(fmt::format("job {} not found", id));
  ASSIGN_OR_RETURN(Phase phase, ParsePhase(AsText(rs.rows[0][0])));
  if (IsTerminal(phase) || AsInt(rs.rows[0][1]) != 0) return OkStatus();
  RETURN_IF_ERROR(tx.Exec("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", {id}).status());
  return InsertEvent(tx, id, {0, now_us, "Normal", "CancelRequested", why});
}

StatusOr<JobRecord> LoadJob(Tx& tx, const std::string& id) {
  ASSIGN_OR_RETURN(ResultSet rs, tx.Query(SelectJobs("j.id = ?"), {id}));
  if (rs.empty()) return NotFoundError(fmt::format("job {} not found", id));
  return JobFromRow(rs.rows[0]);
}

StatusOr<std::vector<JobRecord>> LoadActiveJobs(Tx& tx, SpecCache* cache) {
  ASSIGN_OR_RETURN(ResultSet rs,
                   tx.Query(SelectJobs(fmt::format("j.phase NOT IN {} ORDER BY j.id", kTerminalPhases))));
  std::vector<JobRecord> out;
  out.reserve(rs.size());
  for (const auto& r : rs.rows) {
    ASSIGN_OR_RETURN(JobRecord j, JobFromRow(r, cache));
    out.push_back(std::move(j));
  }
  return out;
}

StatusOr<std::vector<std::string>> ExpiredJobs(Tx& tx, int64_t now_us) {
  ASSIGN_OR_RETURN(ResultSet rs,
                   tx.Query(fmt::format("SELECT id FROM jobs WHERE phase IN {} AND ttl_seconds > 0 "
                                        "AND finished_at + ttl_seconds * 1000000 <= ?",
                                        kTerminalPhases),
                            {now_us}));
  std::vector<std::string> out;
  for (const auto& r : rs.rows) out.push_back(AsText(r[0]));
  return out;
}

Status DeleteJob(Tx& tx, const std::string& id) {
  RETURN_IF_ERROR(tx.Exec("DELETE FROM job_events WHERE job_id = ?", {id}).status());
  return tx.Exec("DELETE FROM jobs WHERE id = ?", {id}).status();
}

StatusOr<std::vector<QueueRecord>> LoadQueues(Tx& tx) {
  ASSIGN_OR_RETURN(ResultSet rs,
                   tx.Query("SELECT spec, created_at, updated_at FROM queues ORDER BY name"));
  std::vector<QueueRecord> out;
  for (const auto& r : rs.rows) {
    ASSIGN_OR_RETURN(QueueRecord q, QueueFromRow(r));
    out.push_back(std::move(q));
  }
  return out;
}

StatusOr<bool> SaveTransition(Tx& tx, const JobRecord& job, Phase expected, const JobEvent& event) {
  ASSIGN_OR_RETURN(
      int64_t n,
      tx.Exec("UPDATE jobs SET phase = ?, reason = ?, message = ?, attempt = ?, restarts = ?, "
              "tasks = ?, admitted_at = ?, started_at = ?, finished_at = ?, not_before = ? "
              "WHERE id = ? AND phase = ?",
              {std::string(PhaseName(job.phase)), job.reason, job.message,
               static_cast<int64_t>(job.attempt), static_cast<int64_t>(job.restarts),
               EncodeTasks(job.tasks), job.admitted_at, job.started_at, job.finished_at,
               job.not_before, job.id, std::string(PhaseName(expected))}));
  if (n == 0) return false;
  RETURN_IF_ERROR(InsertEvent(tx, job.id, event));
  return true;
}

Status SetJobRun(Tx& tx, const std::string& job_id, const std::string& run_id) {
  return tx.Exec("UPDATE jobs SET run_id = ? WHERE id = ?", {run_id, job_id}).status();
}

Status AppendEvent(Tx& tx, const std::string& job_id, const JobEvent& event) {
  return InsertEvent(tx, job_id, event);
}

}  // namespace lathe::control
