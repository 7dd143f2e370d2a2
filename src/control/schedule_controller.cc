// The ScheduleController (schedules.h has the rules). Each pass, for every
// schedule, in this order:
//   1. observe its runs: mirror their states into the tick rows, resume
//      failed ones that have retries left;
//   2. create the runs of queued ticks, oldest first, until one must wait;
//   3. handle the ticks spec::PlanTicks says are due, each in its own
//      transaction with the schedule's last_tick (the crash guarantee);
//   4. create the runs of running backfills, and end the finished ones;
//   5. delete finished runs beyond the history limit.
// The stored spec is compared in every write, so a schedule changed by the
// service (paused, replaced) while a pass runs is picked up again on the
// next pass instead of being acted on with its old spec.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "base/log.h"
#include "control/pipelines.h"
#include "control/schedules.h"

namespace lathe::control {

using store::AsInt;
using store::AsText;
using store::ResultSet;
using store::Tx;
using store::TxMode;

namespace {

// Run states as pipeline_runs stores them (RunStateName).
constexpr const char* kActiveStates = "('pending', 'running')";
constexpr const char* kFinishedStates = "('succeeded', 'failed', 'cancelled')";

// Errors of a run that cannot be created for a tick (the pipeline or its
// version is gone, params no longer fit): the tick is skipped "RunError"
// rather than retried every pass. Anything else (the store) is retried.
bool IsRunError(const Status& st) {
  return st.code() == StatusCode::kInvalidArgument || st.code() == StatusCode::kNotFound ||
         st.code() == StatusCode::kFailedPrecondition;
}

struct Decision {
  enum Kind { kCreate, kQueue, kSkip };
  Kind kind = kCreate;
  std::string reason;
  std::vector<std::string> cancel;  // Replace: the active runs to cancel first
};

// What one schedule's reconcile works with.
struct Context {
  const ScheduleRecord& s;
  const TimeZone& tz;
  int64_t now = 0;
  int64_t last_tick = 0;  // as stored, advanced as ticks are handled
  int64_t next_tick = 0;
  bool changed = false;  // the stored spec changed under this pass: stop here
};

// Run ids of the schedule's own (not backfilled) ticks whose runs are
// active, as last observed.
StatusOr<std::vector<std::string>> ActiveRegularRuns(Tx& tx, const std::string& schedule_id) {
  ASSIGN_OR_RETURN(ResultSet rs,
                   tx.Query(fmt::format("SELECT run_id FROM schedule_ticks WHERE schedule_id = ? "
                                        "AND run_state IN {} AND backfill_id = '' ORDER BY tick",
                                        kActiveStates),
                            {schedule_id}));
  std::vector<std::string> out;
  for (const auto& r : rs.rows) out.push_back(AsText(r[0]));
  return out;
}

// The state of the run of the latest tick before `tick` that has a run:
// the run's own state while it exists, else the last one seen. nullopt for
// the first tick.
StatusOr<std::optional<std::string>> PreviousRunState(Tx& tx, const std::string& schedule_id,
                                                      int64_t tick) {
  ASSIGN_OR_RETURN(ResultSet rs,
                   tx.Query("SELECT t.run_state, r.state FROM schedule_ticks t LEFT JOIN "
                            "pipeline_runs r ON r.id = t.run_id WHERE t.schedule_id = ? AND "
                            "t.tick < ? AND t.run_id <> '' ORDER BY t.tick DESC LIMIT 1",
                            {schedule_id, tick}));
  if (rs.empty()) return std::optional<std::string>();
  const auto& r = rs.rows[0];
  return std::optional<std::string>(store::IsNull(r[1]) ? AsText(r[0]) : AsText(r[1]));
}

StatusOr<Decision> Decide(Tx& tx, const Context& c, int64_t tick, bool queued) {
  const spec::ScheduleSpec& spec = c.s.spec;
  if (spec.paused) {
    if (queued) return Decision{Decision::kQueue, "Paused", {}};
    return Decision{Decision::kSkip, "Paused", {}};
  }
  if (spec.skip_dates.count(spec::LocalDate(c.tz, tick))) {
    return Decision{Decision::kSkip, "SkipDate", {}};
  }
  ASSIGN_OR_RETURN(std::vector<std::string> active, ActiveRegularRuns(tx, c.s.id));
  if (spec.overlap == spec::OverlapPolicy::kForbid && !active.empty()) {
    return Decision{Decision::kSkip, "Overlap", {}};
  }
  if (!queued) {
    ASSIGN_OR_RETURN(ResultSet older,
                     tx.Query("SELECT reason FROM schedule_ticks WHERE schedule_id = ? AND state "
                              "= 'queued' AND backfill_id = '' AND tick < ? ORDER BY tick LIMIT 1",
                              {c.s.id, tick}));
    if (!older.empty()) return Decision{Decision::kQueue, AsText(older.rows[0][0]), {}};
  }
  if (spec.depends_on_past) {
    ASSIGN_OR_RETURN(std::optional<std::string> previous, PreviousRunState(tx, c.s.id, tick));
    if (previous && *previous != RunStateName(RunState::kSucceeded)) {
      return Decision{Decision::kQueue, "DependsOnPast", {}};
    }
  }
  if (spec.overlap == spec::OverlapPolicy::kAllow &&
      active.size() >= static_cast<size_t>(spec.max_concurrency)) {
    return Decision{Decision::kQueue, "MaxConcurrency", {}};
  }
  Decision d;
  if (spec.overlap == spec::OverlapPolicy::kReplace) d.cancel = std::move(active);
  return d;
}

}  // namespace

struct ScheduleController::Impl {
  store::Store& store;
  const Clock& clock;
  spec::ZoneLoader load_zone;
  ScheduleControllerOptions options;

  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;   // guarded by mu
  bool poked = false;  // guarded by mu

  // Controller-thread state.
  std::unordered_map<std::string, std::string> logged_errors;  // schedule id -> last logged
  bool poke_pipelines = false;  // runs were created, resumed or cancelled this pass

  // Null without a metrics registry.
  CounterChild* ticks_created = nullptr;
  CounterChild* ticks_queued = nullptr;
  CounterChild* ticks_skipped = nullptr;
  CounterChild* retries = nullptr;
  HistogramChild* pass_seconds = nullptr;

  Impl(store::Store& s, const Clock& c, spec::ZoneLoader z, ScheduleControllerOptions o,
       MetricsRegistry* metrics)
      : store(s), clock(c), load_zone(std::move(z)), options(std::move(o)) {
    if (options.max_ticks_per_pass == 0) options.max_ticks_per_pass = 1;
    if (metrics == nullptr) return;
    Counter& ticks = metrics->AddCounter("lathe_schedule_ticks_total",
                                         "Schedule ticks handled, by result.", {"result"});
    ticks_created = &ticks.With({"created"});
    ticks_queued = &ticks.With({"queued"});
    ticks_skipped = &ticks.With({"skipped"});
    retries = &metrics
                   ->AddCounter("lathe_schedule_retries_total",
                                "Failed schedule runs resumed by their retries.")
                   .With({});
    pass_seconds = &metrics
                        ->AddHistogram("lathe_schedule_controller_pass_seconds",
                                       "Duration of one schedule controller pass.", {})
                        .With({});
  }

  static void Count(CounterChild* c) {
    if (c != nullptr) c->Increment();
  }
  void CountDecision(Decision::Kind k) {
    Count(k == Decision::kCreate ? ticks_created
                                 : (k == Decision::kQueue ? ticks_queued : ticks_skipped));
  }

  Status Pass();
  Status Reconcile(const ScheduleRecord& s, int64_t now);
  Status ObserveRuns(Context& c);
  Status DrainQueued(Context& c);
  Status HandleDue(Context& c);
  Status HandleTick(Context& c, int64_t tick, const std::string& forced_skip);
  Status RunBackfills(Context& c);
  Status TrimHistory(Context& c);

  // The run of `tick`: params as the rules say, the version a tick runs now.
  StatusOr<RunRecord> CreateRun(Tx& tx, const Context& c, int64_t tick);
  Status CancelRuns(Tx& tx, const Context& c, int64_t tick, const std::vector<std::string>& ids);
  // False (and c.changed) when the stored spec is no longer the one this
  // pass works with.
  StatusOr<bool> SpecUnchanged(Tx& tx, Context& c);
};

StatusOr<RunRecord> ScheduleController::Impl::CreateRun(Tx& tx, const Context& c, int64_t tick) {
  ASSIGN_OR_RETURN(SchedulePipeline target,
                   ResolveSchedulePipeline(tx, c.s.project_id, c.s.project, c.s.spec));
  if (!target.version) {
    return FailedPreconditionError(
        fmt::format("pipeline \"{}\" has no version yet", c.s.spec.pipeline));
  }
  ASSIGN_OR_RETURN(int64_t previous, spec::PreviousTick(c.s.spec, c.tz, tick));
  NewRun run;
  run.project_id = c.s.project_id;
  run.pipeline = c.s.spec.pipeline;
  run.version = target.version->version;
  run.params = TickParams(target.version->spec, c.s.spec.params, tick, previous);
  run.created_by_id = c.s.created_by_id;
  run.schedule_id = c.s.id;
  run.scheduled_time = tick;
  return InsertRun(tx, run, c.now);
}

Status ScheduleController::Impl::CancelRuns(Tx& tx, const Context& c, int64_t tick,
                                            const std::vector<std::string>& ids) {
  for (const std::string& id : ids) {
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT state FROM pipeline_runs WHERE id = ?", {id}));
    if (rs.empty()) continue;
    ASSIGN_OR_RETURN(RunState state, ParseRunState(AsText(rs.rows[0][0])));
    if (IsTerminal(state)) continue;
    RETURN_IF_ERROR(
        RequestCancel(tx, id,
                      fmt::format("replaced by the run of tick {} (schedule {}, overlap Replace)",
                                  spec::FormatTimeUtc(tick), c.s.spec.name),
                      c.now));
  }
  return OkStatus();
}

StatusOr<bool> ScheduleController::Impl::SpecUnchanged(Tx& tx, Context& c) {
  ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT spec FROM schedules WHERE id = ?", {c.s.id}));
  if (rs.empty() || AsText(rs.rows[0][0]) != c.s.spec_json) {
    c.changed = true;
    return false;
  }
  return true;
}

// 1. Mirror run states into tick rows; resume failed runs with retries left.
Status ScheduleController::Impl::ObserveRuns(Context& c) {
  ResultSet changed, gone;
  RETURN_IF_ERROR(store::RunInTx(store, TxMode::kRead, [&](Tx& tx) -> Status {
    // Runs of the schedule are few (history limit + active), and joined to
    // their tick through the primary key.
    ASSIGN_OR_RETURN(changed,
                     tx.Query("SELECT r.id, r.state, t.tick, t.attempts FROM pipeline_runs r JOIN "
                              "schedule_ticks t ON t.schedule_id = r.schedule_id AND t.tick = "
                              "r.scheduled_time AND t.run_id = r.id WHERE r.schedule_id = ? AND "
                              "r.state <> t.run_state ORDER BY t.tick",
                              {c.s.id}));
    ASSIGN_OR_RETURN(gone, tx.Query(fmt::format("SELECT t.tick, t.run_id FROM schedule_ticks t "
                                                "LEFT JOIN pipeline_runs r ON r.id = t.run_id "
                                                "WHERE t.schedule_id = ? AND t.run_state IN {} "
                                                "AND r.id IS NULL",
                                                kActiveStates),
                                    {c.s.id}));
    return OkStatus();
  }));
  for (const auto& row : changed.rows) {
    const std::string run_id = AsText(row[0]);
    const int64_t tick = AsInt(row[2]);
    const int64_t attempts = AsInt(row[3]);
    bool resumed = false;
    RETURN_IF_ERROR(store::RunInTx(store, TxMode::kWrite, [&](Tx& tx) -> Status {
      resumed = false;
      ASSIGN_OR_RETURN(RunRecord run, LoadRun(tx, run_id, false));
      if (run.state == RunState::kFailed && attempts < c.s.spec.retries) {
        ASSIGN_OR_RETURN(int64_t n,
                         tx.Exec("UPDATE schedule_ticks SET attempts = attempts + 1 WHERE "
                                 "schedule_id = ? AND tick = ? AND run_id = ? AND attempts = ?",
                                 {c.s.id, tick, run_id, attempts}));
        if (n == 0) return OkStatus();  // seen by an earlier pass
        RETURN_IF_ERROR(ResumeRun(tx, run_id, c.now));
        RETURN_IF_ERROR(
            AppendRunEvent(tx, run_id,
                           {0, c.now, "Normal", "ScheduleRetry",
                            fmt::format("schedule {} resumes the failed run (retry {} of {})",
                                        c.s.spec.name, attempts + 1, c.s.spec.retries)}));
        ASSIGN_OR_RETURN(run, LoadRun(tx, run_id, false));
        resumed = true;
      }
      return tx
          .Exec(
              "UPDATE schedule_ticks SET run_state = ? WHERE schedule_id = ? AND tick = ? AND "
              "run_id = ?",
              {std::string(RunStateName(run.state)), c.s.id, tick, run_id})
          .status();
    }));
    if (resumed) {
      Count(retries);
      poke_pipelines = true;
    }
  }
  for (const auto& row : gone.rows) {
    RETURN_IF_ERROR(store::RunInTx(store, TxMode::kWrite, [&](Tx& tx) -> Status {
      return tx
          .Exec(fmt::format("UPDATE schedule_ticks SET run_state = 'removed' WHERE schedule_id = ? "
                            "AND tick = ? AND run_id = ? AND run_state IN {}",
                            kActiveStates),
                {c.s.id, AsInt(row[0]), AsText(row[1])})
          .status();
    }));
  }
  return OkStatus();
}

// 2. Queued ticks of the schedule, oldest first, until one must wait.
Status ScheduleController::Impl::DrainQueued(Context& c) {
  bool any = false;
  RETURN_IF_ERROR(store::RunInTx(store, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT tick FROM schedule_ticks WHERE schedule_id = ? "
                                            "AND state = 'queued' AND backfill_id = '' LIMIT 1",
                                            {c.s.id}));
    any = !rs.empty();
    return OkStatus();
  }));
  for (size_t i = 0; any && i < options.max_ticks_per_pass && !c.changed; ++i) {
    bool done = false;
    int64_t tick = 0;
    Status run_error;
    std::string error_message;
    std::optional<Decision::Kind> outcome;
    auto attempt = [&](bool record_error) {
      return store::RunInTx(store, TxMode::kWrite, [&](Tx& tx) -> Status {
        done = false;
        run_error = OkStatus();
        outcome.reset();
        ASSIGN_OR_RETURN(bool same, SpecUnchanged(tx, c));
        if (!same) return OkStatus();
        ASSIGN_OR_RETURN(ResultSet q,
                         tx.Query("SELECT tick, reason FROM schedule_ticks WHERE schedule_id = ? "
                                  "AND state = 'queued' AND backfill_id = '' ORDER BY tick LIMIT 1",
                                  {c.s.id}));
        if (q.empty() || (record_error && AsInt(q.rows[0][0]) != tick)) {
          done = true;
          return OkStatus();
        }
        tick = AsInt(q.rows[0][0]);
        const std::string reason = AsText(q.rows[0][1]);
        if (record_error) {
          outcome = Decision::kSkip;
          return tx
              .Exec(
                  "UPDATE schedule_ticks SET state = 'skipped', reason = 'RunError', message = ? "
                  "WHERE schedule_id = ? AND tick = ? AND state = 'queued'",
                  {error_message, c.s.id, tick})
              .status();
        }
        ASSIGN_OR_RETURN(Decision d, Decide(tx, c, tick, true));
        outcome = d.kind;
        if (d.kind == Decision::kSkip) {
          return tx
              .Exec(
                  "UPDATE schedule_ticks SET state = 'skipped', reason = ? WHERE schedule_id = ? "
                  "AND tick = ? AND state = 'queued'",
                  {d.reason, c.s.id, tick})
              .status();
        }
        if (d.kind == Decision::kQueue) {
          done = true;
          if (d.reason == reason) return OkStatus();
          return tx
              .Exec(
                  "UPDATE schedule_ticks SET reason = ? WHERE schedule_id = ? AND tick = ? AND "
                  "state = 'queued'",
                  {d.reason, c.s.id, tick})
              .status();
        }
        RETURN_IF_ERROR(CancelRuns(tx, c, tick, d.cancel));
        StatusOr<RunRecord> run = CreateRun(tx, c, tick);
        if (!run.ok()) {
          if (IsRunError(run.status())) run_error = run.status();
          return run.status();
        }
        return tx
            .Exec(
                "UPDATE schedule_ticks SET state = 'created', reason = '', message = '', "
                "run_id = ?, run_state = ?, attempts = 0 WHERE schedule_id = ? AND tick = ? AND "
                "state = 'queued'",
                {run->id, std::string(RunStateName(run->state)), c.s.id, tick})
            .status();
      });
    };
    Status st = attempt(false);
    if (!st.ok() && !run_error.ok()) {
      error_message = run_error.message();
      st = attempt(true);
    }
    RETURN_IF_ERROR(st);
    if (outcome) {
      // A queued tick that stays queued was counted when it was queued.
      if (*outcome != Decision::kQueue) CountDecision(*outcome);
      if (*outcome == Decision::kCreate) poke_pipelines = true;
    }
    if (done) break;
  }
  return OkStatus();
}

// 3. One due tick: its row (with its run) and the schedule's last_tick in
// one transaction. `forced_skip`: the planner passed the tick over
// ("CatchupOff", "SkipDate").
Status ScheduleController::Impl::HandleTick(Context& c, int64_t tick,
                                            const std::string& forced_skip) {
  ASSIGN_OR_RETURN(int64_t next, ComputeNextTick(c.s.spec, c.tz, c.s.created_at, tick));
  Status run_error;
  std::string error_message;
  std::optional<Decision::Kind> outcome;
  auto attempt = [&](bool record_error) {
    return store::RunInTx(store, TxMode::kWrite, [&](Tx& tx) -> Status {
      run_error = OkStatus();
      outcome.reset();
      ASSIGN_OR_RETURN(int64_t n,
                       tx.Exec("UPDATE schedules SET last_tick = ?, next_tick = ? WHERE id = ? AND "
                               "last_tick = ? AND spec = ?",
                               {tick, next, c.s.id, c.last_tick, c.s.spec_json}));
      if (n == 0) {
        c.changed = true;
        return OkStatus();
      }
      ASSIGN_OR_RETURN(
          ResultSet existing,
          tx.Query("SELECT state FROM schedule_ticks WHERE schedule_id = ? AND tick = ?",
                   {c.s.id, tick}));
      if (!existing.empty()) return OkStatus();  // a backfill took the tick first
      auto insert = [&](Decision::Kind kind, const std::string& reason, const std::string& message,
                        const std::string& run_id, const std::string& run_state) {
        outcome = kind;
        const char* state = kind == Decision::kCreate  ? "created"
                            : kind == Decision::kQueue ? "queued"
                                                       : "skipped";
        return tx
            .Exec(
                "INSERT INTO schedule_ticks (schedule_id, tick, state, reason, message, run_id, "
                "run_state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                {c.s.id, tick, std::string(state), reason, message, run_id, run_state, c.now})
            .status();
      };
      if (!forced_skip.empty()) return insert(Decision::kSkip, forced_skip, "", "", "");
      if (record_error) return insert(Decision::kSkip, "RunError", error_message, "", "");
      ASSIGN_OR_RETURN(Decision d, Decide(tx, c, tick, false));
      if (d.kind != Decision::kCreate) return insert(d.kind, d.reason, "", "", "");
      RETURN_IF_ERROR(CancelRuns(tx, c, tick, d.cancel));
      StatusOr<RunRecord> run = CreateRun(tx, c, tick);
      if (!run.ok()) {
        if (IsRunError(run.status())) run_error = run.status();
        return run.status();
      }
      return insert(Decision::kCreate, "", "", run->id, std::string(RunStateName(run->state)));
    });
  };
  Status st = attempt(false);
  if (!st.ok() && !run_error.ok()) {
    error_message = run_error.message();
    st = attempt(true);
  }
  RETURN_IF_ERROR(st);
  if (c.changed) return OkStatus();
  c.last_tick = tick;
  c.next_tick = next;
  if (outcome) {
    CountDecision(*outcome);
    if (*outcome == Decision::kCreate) poke_pipelines = true;
  }
  return OkStatus();
}

Status ScheduleController::Impl::HandleDue(Context& c) {
  if (c.s.last_tick != 0 && c.s.next_tick == 0) return OkStatus();  // ended
  ASSIGN_OR_RETURN(spec::DueTicks due,
                   spec::PlanTicks(c.s.spec, c.tz, c.s.created_at, c.s.last_tick, c.now,
                                   options.max_ticks_per_pass));
  // The planner's lists, merged in tick order: older ticks are handled (and
  // last_tick advanced past them) first.
  std::vector<std::pair<int64_t, std::string>> ticks;
  for (int64_t t : due.run) ticks.emplace_back(t, "");
  for (int64_t t : due.skipped) ticks.emplace_back(t, "CatchupOff");
  for (int64_t t : due.date_skipped) ticks.emplace_back(t, "SkipDate");
  std::sort(ticks.begin(), ticks.end());
  for (const auto& [tick, forced_skip] : ticks) {
    if (tick <= c.last_tick) continue;
    RETURN_IF_ERROR(HandleTick(c, tick, forced_skip));
    if (c.changed) return OkStatus();
  }
  // Passed-over ticks beyond the planner's record limit, and the next tick
  // when the spec changed it: last_tick/next_tick catch up without rows.
  const int64_t through = std::max(due.handled_through, c.last_tick);
  ASSIGN_OR_RETURN(int64_t next, ComputeNextTick(c.s.spec, c.tz, c.s.created_at, through));
  if (through == c.last_tick && next == c.next_tick) return OkStatus();
  return store::RunInTx(store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(int64_t n,
                     tx.Exec("UPDATE schedules SET last_tick = ?, next_tick = ? WHERE id = ? AND "
                             "last_tick = ? AND spec = ?",
                             {through, next, c.s.id, c.last_tick, c.s.spec_json}));
    if (n == 0) {
      c.changed = true;
    } else {
      c.last_tick = through;
      c.next_tick = next;
    }
    return OkStatus();
  });
}

// 4. Backfills: their queued ticks in tick order, at most max_concurrency of
// their runs active; a backfill ends once none of its ticks is open.
Status ScheduleController::Impl::RunBackfills(Context& c) {
  ResultSet backfills;
  RETURN_IF_ERROR(store::RunInTx(store, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(backfills, tx.Query("SELECT id, max_concurrency, reprocess FROM "
                                         "schedule_backfills WHERE schedule_id = ? AND state = "
                                         "'running' ORDER BY created_at, id",
                                         {c.s.id}));
    return OkStatus();
  }));
  for (const auto& b : backfills.rows) {
    const std::string id = AsText(b[0]);
    const int64_t max_concurrency = AsInt(b[1]);
    ASSIGN_OR_RETURN(Reprocess reprocess, ParseReprocess(AsText(b[2])));
    // Read first: most passes find a backfill at its concurrency, or done.
    int64_t total = 0, open = 0, succeeded = 0, active = 0, queued = 0;
    RETURN_IF_ERROR(store::RunInTx(store, TxMode::kRead, [&](Tx& tx) -> Status {
      ASSIGN_OR_RETURN(
          ResultSet counts,
          tx.Query(fmt::format("SELECT COUNT(*), SUM(CASE WHEN state = 'queued' OR run_state IN "
                               "{0} THEN 1 ELSE 0 END), SUM(CASE WHEN state = 'created' AND "
                               "run_state = 'succeeded' THEN 1 ELSE 0 END), SUM(CASE WHEN "
                               "run_state IN {0} THEN 1 ELSE 0 END), SUM(CASE WHEN state = "
                               "'queued' THEN 1 ELSE 0 END) FROM schedule_ticks WHERE "
                               "backfill_id = ?",
                               kActiveStates),
                   {id}));
      total = AsInt(counts.rows[0][0]);
      open = AsInt(counts.rows[0][1]);
      succeeded = AsInt(counts.rows[0][2]);
      active = AsInt(counts.rows[0][3]);
      queued = AsInt(counts.rows[0][4]);
      return OkStatus();
    }));
    if (open == 0) {
      // Every tick it took has ended (a RunError tick counts as not succeeded).
      RETURN_IF_ERROR(store::RunInTx(store, TxMode::kWrite, [&](Tx& tx) -> Status {
        return tx
            .Exec(
                "UPDATE schedule_backfills SET state = ?, finished_at = ? WHERE id = ? AND "
                "state = 'running'",
                {std::string(succeeded == total ? "succeeded" : "failed"), c.now, id})
            .status();
      }));
      continue;
    }
    if (queued == 0 || active >= max_concurrency) continue;
    for (size_t i = 0; i < options.max_ticks_per_pass; ++i) {
      bool done = false;
      int64_t tick = 0;
      Status run_error;
      std::string error_message;
      bool created = false;
      auto attempt = [&](bool record_error) {
        return store::RunInTx(store, TxMode::kWrite, [&](Tx& tx) -> Status {
          done = false;
          created = false;
          run_error = OkStatus();
          ASSIGN_OR_RETURN(ResultSet active,
                           tx.Query(fmt::format("SELECT COUNT(*) FROM schedule_ticks WHERE "
                                                "backfill_id = ? AND run_state IN {}",
                                                kActiveStates),
                                    {id}));
          if (AsInt(active.rows[0][0]) >= max_concurrency) {
            done = true;
            return OkStatus();
          }
          ASSIGN_OR_RETURN(ResultSet q,
                           tx.Query("SELECT tick, run_id FROM schedule_ticks WHERE backfill_id = ? "
                                    "AND state = 'queued' ORDER BY tick LIMIT 1",
                                    {id}));
          if (q.empty() || (record_error && AsInt(q.rows[0][0]) != tick)) {
            done = true;
            return OkStatus();
          }
          tick = AsInt(q.rows[0][0]);
          const std::string old_run = AsText(q.rows[0][1]);
          if (record_error) {
            return tx
                .Exec(
                    "UPDATE schedule_ticks SET state = 'skipped', reason = 'RunError', "
                    "message = ? WHERE schedule_id = ? AND tick = ? AND state = 'queued'",
                    {error_message, c.s.id, tick})
                .status();
          }
          std::string run_id, run_state;
          if (!old_run.empty() && reprocess != Reprocess::kAll) {
            ASSIGN_OR_RETURN(ResultSet rs,
                             tx.Query("SELECT state FROM pipeline_runs WHERE id = ?", {old_run}));
            if (!rs.empty()) {
              ASSIGN_OR_RETURN(RunState state, ParseRunState(AsText(rs.rows[0][0])));
              if (state == RunState::kFailed || state == RunState::kCancelled) {
                RETURN_IF_ERROR(ResumeRun(tx, old_run, c.now));
                RETURN_IF_ERROR(
                    AppendRunEvent(tx, old_run,
                                   {0, c.now, "Normal", "Backfill",
                                    fmt::format("backfill {} of schedule {} resumes the run", id,
                                                c.s.spec.name)}));
                state = RunState::kRunning;
                created = true;
              }
              // A run someone already retried is left as it is.
              run_id = old_run;
              run_state = std::string(RunStateName(state));
            }
          }
          if (run_id.empty()) {
            StatusOr<RunRecord> run = CreateRun(tx, c, tick);
            if (!run.ok()) {
              if (IsRunError(run.status())) run_error = run.status();
              return run.status();
            }
            run_id = run->id;
            run_state = std::string(RunStateName(run->state));
            created = true;
          }
          return tx
              .Exec(
                  "UPDATE schedule_ticks SET state = 'created', reason = '', message = '', "
                  "run_id = ?, run_state = ?, attempts = 0 WHERE schedule_id = ? AND tick = ? "
                  "AND state = 'queued'",
                  {run_id, run_state, c.s.id, tick})
              .status();
        });
      };
      Status st = attempt(false);
      if (!st.ok() && !run_error.ok()) {
        error_message = run_error.message();
        st = attempt(true);
      }
      RETURN_IF_ERROR(st);
      if (created) {
        Count(ticks_created);
        poke_pipelines = true;
      }
      if (done) break;
    }
  }
  return OkStatus();
}

// 5. Finished runs beyond the history limit, oldest finished first. A run
// counts once its end was observed (its tick mirrors it, so a failed run
// with retries left was resumed instead), or when no tick names it any more
// (replaced by a backfill's `reprocess all`).
Status ScheduleController::Impl::TrimHistory(Context& c) {
  std::vector<std::string> excess;
  RETURN_IF_ERROR(store::RunInTx(store, TxMode::kRead, [&](Tx& tx) -> Status {
    excess.clear();
    ASSIGN_OR_RETURN(
        ResultSet rs,
        tx.Query(fmt::format("SELECT r.id FROM pipeline_runs r LEFT JOIN schedule_ticks t ON "
                             "t.schedule_id = r.schedule_id AND t.tick = r.scheduled_time AND "
                             "t.run_id = r.id WHERE r.schedule_id = ? AND r.state IN {} AND "
                             "(t.tick IS NULL OR t.run_state = r.state) ORDER BY r.finished_at "
                             "DESC, r.id DESC",
                             kFinishedStates),
                 {c.s.id}));
    for (size_t i = static_cast<size_t>(c.s.spec.history_limit); i < rs.size(); ++i) {
      excess.push_back(AsText(rs.rows[i][0]));
    }
    return OkStatus();
  }));
  if (excess.empty()) return OkStatus();
  return store::RunInTx(store, TxMode::kWrite, [&](Tx& tx) -> Status {
    // A schedule removed meanwhile has no tick rows left to mirror its runs:
    // they are no longer its history to trim.
    ASSIGN_OR_RETURN(bool same, SpecUnchanged(tx, c));
    if (!same) return OkStatus();
    for (const std::string& id : excess) {
      ASSIGN_OR_RETURN(ResultSet rs,
                       tx.Query("SELECT state FROM pipeline_runs WHERE id = ?", {id}));
      if (rs.empty()) continue;
      ASSIGN_OR_RETURN(RunState state, ParseRunState(AsText(rs.rows[0][0])));
      if (!IsTerminal(state)) continue;  // retried meanwhile
      RETURN_IF_ERROR(DeleteRun(tx, id));
    }
    return OkStatus();
  });
}

Status ScheduleController::Impl::Reconcile(const ScheduleRecord& s, int64_t now) {
  ASSIGN_OR_RETURN(std::shared_ptr<const TimeZone> tz, load_zone(s.spec.timezone));
  Context c{s, *tz, now, s.last_tick, s.next_tick, false};
  RETURN_IF_ERROR(ObserveRuns(c));
  RETURN_IF_ERROR(DrainQueued(c));
  if (c.changed) return OkStatus();
  RETURN_IF_ERROR(HandleDue(c));
  RETURN_IF_ERROR(RunBackfills(c));
  return TrimHistory(c);
}

Status ScheduleController::Impl::Pass() {
  const int64_t started = clock.MonotonicNanos();
  const int64_t now = clock.NowMicros();
  poke_pipelines = false;
  std::vector<ScheduleRecord> schedules;
  Status loaded = store::RunInTx(store, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(schedules, LoadSchedules(tx));
    return OkStatus();
  });
  if (!loaded.ok()) {
    LOG_WARN("schedule controller: loading schedules: {}", loaded.ToString());
    return loaded;
  }
  Status first;
  for (const ScheduleRecord& s : schedules) {
    Status st = Reconcile(s, now);
    if (st.ok()) {
      logged_errors.erase(s.id);
      continue;
    }
    // A broken schedule fails every pass the same way: log it when it changes.
    std::string& logged = logged_errors[s.id];
    if (logged != st.ToString()) {
      logged = st.ToString();
      LOG_WARN("schedule {} ({}/{}): {}", s.id, s.project, s.spec.name, logged);
    }
    if (first.ok()) first = st;
  }
  if (poke_pipelines && options.poke_pipelines) options.poke_pipelines();
  if (pass_seconds != nullptr) {
    pass_seconds->Observe(static_cast<double>(clock.MonotonicNanos() - started) / 1e9);
  }
  return first;
}

// ---------------------------------------------------------------- ScheduleController

ScheduleController::ScheduleController(store::Store& store, const Clock& clock,
                                       spec::ZoneLoader load_zone,
                                       ScheduleControllerOptions options, MetricsRegistry* metrics)
    : impl_(std::make_unique<Impl>(store, clock, std::move(load_zone), std::move(options),
                                   metrics)) {}

ScheduleController::~ScheduleController() { Stop(); }

void ScheduleController::Start() {
  impl_->thread = std::thread([this] {
    std::unique_lock<std::mutex> lock(impl_->mu);
    while (!impl_->stop) {
      impl_->poked = false;
      lock.unlock();
      // Errors are logged per schedule inside the pass.
      impl_->Pass().IgnoreError();
      lock.lock();
      if (impl_->stop) break;
      if (!impl_->poked) {
        impl_->cv.wait_for(lock, std::chrono::milliseconds(impl_->options.resync_interval_ms),
                           [this] { return impl_->stop || impl_->poked; });
      }
    }
  });
}

void ScheduleController::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void ScheduleController::Poke() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->poked = true;
  }
  impl_->cv.notify_all();
}

Status ScheduleController::RunPass() { return impl_->Pass(); }

}  // namespace lathe::control
