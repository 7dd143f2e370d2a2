// Schedules and backfills as stored records, the service the API calls, and
// the ScheduleController that turns due ticks into pipeline runs
// (docs/pipelines.md "Schedules"). Time comes from an injected Clock, so
// tests drive ticks, downtime and DST with a FakeClock.
//
// Ticks and the crash guarantee. Every tick a schedule handles gets one row
// in `schedule_ticks` (schedule, tick). The row, the run created for it
// (control::InsertRun, with the schedule's id and the tick as
// scheduled_time) and the schedule's last_tick/next_tick are written in ONE
// transaction, so a server killed at any point and restarted neither repeats
// nor loses a tick. A schedule's timetable begins at max(start, the time it
// was created): earlier ticks are never due, even with catchup on (backfill
// them). After downtime, catchup on creates one run per missed
// tick, oldest first, at most `max_ticks_per_pass` per controller pass (the
// rest on the next passes); catchup off creates a run for the latest missed
// tick only and records the older ones as skipped "CatchupOff" (at most
// `max_ticks_per_pass` rows; ticks beyond that are passed over unrecorded).
//
// A tick's row: state `created` (it has a run), `queued` (it waits for its
// run) or `skipped` (it gets none), with the reason. `run_state` mirrors the
// state of its run (pending, running, succeeded, failed, cancelled; once a
// run is gone, its last state stays; "removed" when it was deleted before
// its end was seen), so the tick history outlives deleted runs.
//
// Per due tick, in this order:
//   1. paused → skipped "Paused". Pause means that ticks during the pause
//      are skipped and never caught up, even with catchup on (Argo's
//      `suspend`, not Airflow's un-pause + catchup): a pause is a decision
//      not to run, and resuming should not release a burst of stale runs.
//      To run the paused period after all, backfill it (a backfill takes
//      skipped ticks). Ticks already queued before the pause wait (reason
//      "Paused") and are created after the resume.
//   2. its date (in the schedule's zone) in skip_dates → skipped "SkipDate"
//      (spec::PlanTicks reports these apart; a skip date added after a tick
//      was queued skips it too).
//   3. overlap Forbid with an active run of the schedule → skipped "Overlap".
//   4. an older tick of the schedule still queued → queued behind it (ticks
//      are created in tick order).
//   5. depends_on_past and the previous tick that has a run (the latest
//      earlier row with a run, backfilled ones included; skipped ticks do
//      not count) did not succeed → queued "DependsOnPast" until it does.
//      A previous run that failed for good keeps the tick queued until
//      someone retries that run (`lathe pipeline-run retry`) or backfills
//      its tick (as Airflow's depends_on_past). A previous run deleted
//      before its end was seen counts as not succeeded. The first tick is
//      exempt.
//      depends_on_past is checked before Replace: it waits instead of
//      cancelling the run it waits for.
//   6. overlap Allow with max_concurrency runs of the schedule active →
//      queued "MaxConcurrency"; created later, oldest queued first.
//   7. created. Replace first asks every active run of the schedule to
//      cancel (RequestCancel), then creates the new one. Forbid and
//      Replace ignore max_concurrency (Forbid: at most one).
// "Active runs of the schedule" are the runs of its own ticks; backfill runs
// have their own limit and count neither for overlap nor max_concurrency.
// A tick whose run cannot be created (pipeline removed, a param no longer
// valid for the pipeline's latest version) is skipped "RunError" with the
// error in `message`; the schedule goes on.
//
// Params of a run: the schedule's `params`, plus `scheduled_time` (the
// tick), `data_interval_start` (the recurrence's previous tick,
// spec::PreviousTick: start, end and skip dates do not move it) and
// `data_interval_end` (the tick), RFC 3339 in UTC ("2026-03-29T01:00:00Z",
// spec::FormatTimeUtc) — each only when the pipeline declares it, as a
// string param (`{name: scheduled_time, type: string, default: ""}`): a
// pipeline that does not declare them does not receive them, since an
// undeclared param would fail the run's param validation. The schedule's
// own `params` may not name them. Put checks the params against the
// pipeline's version (pinned, or latest) as a tick would, so a typo is a
// 422 when the schedule is written, not a failed tick. A run uses the
// version pinned by `pipeline_version`, else the latest at its tick.
//
// Retries: a schedule's run (backfilled ones included) that ends failed is
// resumed from its failed steps (control::ResumeRun) up to `retries` times;
// the tick's `attempts` counts them. Cancelled runs are not retried.
//
// History: finished runs of the schedule (backfilled and replaced ones
// included) beyond `history_limit` are deleted (control::DeleteRun), oldest
// finished first, once their end was seen and no retry is left. Tick rows
// are kept with their run_id (then naming a deleted run) and run_state.
//
// Backfill [from, to] (to is capped at now: later ticks are the schedule's
// own): the ticks spec::TicksBetween gives (at most 10,000): not on a skip
// date — skip dates hold for backfills too, since they say a date has no
// run (remove the date to backfill it) — but regardless of the schedule's
// start and end (a backfill names its own range, often before the start).
// Paused, catchup and depends_on_past do not apply: a backfill is an
// explicit request. Per tick, when the backfill is created:
// no row or a skipped one → the backfill takes it; a queued regular tick →
// left (it gets its run anyway); a tick with a run → reprocess `none`: left;
// `failed`: taken when its run failed, was cancelled or is gone, and its run
// is then resumed (ResumeRun; a new run when the old one was deleted);
// `all`: taken, and it gets a new run (the tick's run_id then names the new
// one; the old run stays). Taken ticks are created in tick order, at most
// the backfill's max_concurrency of its runs active at once. A backfill
// whose range overlaps a running backfill of the same schedule is refused.
// It ends `succeeded` when every tick it took has a run that succeeded,
// `failed` otherwise (after retries), and right away when it took no tick.
//
// Remove deletes the schedule, its tick rows and backfills; its runs stay,
// and active ones go on (cancel them with `lathe pipeline-run cancel`).
// Runs are created on behalf of the user who created the schedule.
//
// Thread-safety: the service is thread-safe (all state is in the store).
// The controller runs passes on one thread; RunPass must not be called
// concurrently with a started controller.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/json.h"
#include "base/metrics.h"
#include "base/status.h"
#include "control/pipelines.h"
#include "spec/pipeline_spec.h"
#include "spec/schedule_spec.h"
#include "store/store.h"
#include "tenancy/tenancy.h"

namespace lathe::control {

struct ScheduleRecord {
  std::string id;
  std::string project;
  std::string project_id;
  spec::ScheduleSpec spec;
  std::string spec_json;  // the stored canonical spec (WriteScheduleSpec)
  int64_t last_tick = 0;  // the last tick handled (µs), 0 = none yet
  int64_t next_tick = 0;  // the next tick that would get a run (µs), 0 = ended
  std::string created_by;
  std::string created_by_id;
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

struct TickRecord {
  int64_t tick = 0;
  std::string state;      // "queued" | "created" | "skipped"
  std::string reason;     // why skipped or queued ("Paused", "SkipDate", "Overlap",
                          // "CatchupOff", "DependsOnPast", "MaxConcurrency",
                          // "Backfill", "RunError"); "" once created
  std::string message;    // details ("RunError": the error)
  std::string run_id;     // "" until created
  std::string run_state;  // the run's state as last seen, "" = no run yet
  std::string backfill_id;
  int attempts = 0;  // run-level retries used
  int64_t created_at = 0;
};

enum class Reprocess { kNone, kFailed, kAll };
std::string_view ReprocessName(Reprocess r);  // "none", "failed", "all"
// INVALID_ARGUMENT naming "reprocess" for anything else.
StatusOr<Reprocess> ParseReprocess(std::string_view s);

struct BackfillRecord {
  std::string id;
  std::string schedule;      // name
  int64_t from = 0, to = 0;  // µs; `to` as capped at creation time
  int max_concurrency = 1;
  Reprocess reprocess = Reprocess::kFailed;
  std::string state;  // "running" | "succeeded" | "failed"
  // Ticks the backfill took; of those, ticks with a run; runs that
  // succeeded; ticks that ended without success (failed, cancelled,
  // removed, or RunError).
  int total = 0, created = 0, succeeded = 0, failed = 0;
  int64_t created_at = 0;
  int64_t finished_at = 0;
};

class ScheduleService {
 public:
  ScheduleService(store::Store& store, tenancy::TenancyService& tenancy, const Clock& clock,
                  spec::ZoneLoader load_zone);

  // Create, or replace the spec of an existing schedule (`create_only`:
  // ALREADY_EXISTS naming "name" instead). Needs editor. The spec's project,
  // when set, must equal `project` (INVALID_ARGUMENT naming "project"); the
  // pipeline must exist in the project (NOT_FOUND naming "pipeline"; a
  // pinned version that does not exist: NOT_FOUND naming
  // "pipeline_version"); params are checked as a tick would pass them
  // (INVALID_ARGUMENT naming "params.NAME"). Replacing replaces the whole
  // spec, `paused` and `skip_dates` included, and keeps the schedule's
  // history: last_tick stays, so a new cron/interval starts after the last
  // handled tick (no tick is repeated), and ticks, runs and backfills stay.
  StatusOr<ScheduleRecord> Put(const tenancy::Principal& p, const std::string& project,
                               const JsonValue& spec, bool create_only);
  // Viewer. NOT_FOUND when no schedule has that name.
  StatusOr<ScheduleRecord> Get(const tenancy::Principal& p, const std::string& project,
                               const std::string& name);
  // Viewer. Oldest first.
  StatusOr<tenancy::Page<ScheduleRecord>> List(const tenancy::Principal& p,
                                               const std::string& project,
                                               const tenancy::PageRequest& page);
  // Editor. Deletes the schedule, its ticks and backfills; runs stay.
  Status Remove(const tenancy::Principal& p, const std::string& project, const std::string& name);
  // Editor. Pause or resume (see the rules above).
  StatusOr<ScheduleRecord> SetPaused(const tenancy::Principal& p, const std::string& project,
                                     const std::string& name, bool paused);
  // Editor. Adds (or with `remove`, drops) dates "YYYY-MM-DD" to skip; each
  // must be a real calendar date (INVALID_ARGUMENT naming "dates[i]").
  StatusOr<ScheduleRecord> Skip(const tenancy::Principal& p, const std::string& project,
                                const std::string& name, const std::vector<std::string>& dates,
                                bool remove);
  // Viewer. Tick rows, newest first; the page token is the last tick.
  StatusOr<tenancy::Page<TickRecord>> Ticks(const tenancy::Principal& p, const std::string& project,
                                            const std::string& name,
                                            const tenancy::PageRequest& page);
  // Editor. Creates a backfill over the ticks in [from, min(to, now)] (at
  // most 10,000; see the rules above); the controller creates its runs.
  // INVALID_ARGUMENT naming "from", "to" or "max_concurrency" (1..100);
  // FAILED_PRECONDITION when it overlaps a running backfill.
  StatusOr<BackfillRecord> Backfill(const tenancy::Principal& p, const std::string& project,
                                    const std::string& name, int64_t from_us, int64_t to_us,
                                    int max_concurrency, Reprocess reprocess);
  // Viewer. The schedule's latest 100 backfills, newest first, with counts.
  StatusOr<std::vector<BackfillRecord>> Backfills(const tenancy::Principal& p,
                                                  const std::string& project,
                                                  const std::string& name);

 private:
  store::Store& store_;
  tenancy::TenancyService& tenancy_;
  const Clock& clock_;
  spec::ZoneLoader load_zone_;
};

struct ScheduleControllerOptions {
  int64_t resync_interval_ms = 1000;
  // Catchup creates at most this many runs per pass per schedule; also the
  // bound on queued ticks created, and on backfill runs created, per pass.
  size_t max_ticks_per_pass = 100;
  // Called after runs were created, resumed or cancelled (PipelineController::Poke).
  std::function<void()> poke_pipelines;
};

class ScheduleController {
 public:
  // `metrics`, when set, gets the families lathe_schedule_ticks_total{result}
  // and lathe_schedule_controller_pass_seconds (register once per registry).
  ScheduleController(store::Store& store, const Clock& clock, spec::ZoneLoader load_zone,
                     ScheduleControllerOptions options, MetricsRegistry* metrics = nullptr);
  ~ScheduleController();
  void Start();  // passes on a thread until Stop()
  void Stop();
  void Poke();  // a pass soon (a schedule was written)
  // One pass over every schedule, synchronously (tests; what the thread
  // runs). A schedule whose pass fails does not stop the others; the first
  // error is returned.
  Status RunPass();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- store helpers shared by the service and the controller (no authorization)

// The canonical JSON of a spec, as stored.
std::string EncodeScheduleSpec(const spec::ScheduleSpec& spec);
// Every schedule, by id.
StatusOr<std::vector<ScheduleRecord>> LoadSchedules(store::Tx& tx);
// The params a tick's run gets (see the rules above): `given` (an object or
// null) plus the tick's time params the pipeline declares.
JsonValue TickParams(const spec::PipelineSpec& pipeline, const JsonValue& given, int64_t tick_us,
                     int64_t interval_start_us);
// The pipeline a schedule names and the version a tick would run now
// (nullopt when the pipeline has no version yet). NOT_FOUND naming
// "pipeline" or "pipeline_version".
struct SchedulePipeline {
  std::string id;
  std::optional<PipelineVersionRecord> version;
};
StatusOr<SchedulePipeline> ResolveSchedulePipeline(store::Tx& tx, const std::string& project_id,
                                                   const std::string& project,
                                                   const spec::ScheduleSpec& spec);
// The next tick that would get a run after `last_tick` (0 = none handled:
// from the start, or from `created_at`); 0 when the schedule has ended.
StatusOr<int64_t> ComputeNextTick(const spec::ScheduleSpec& spec, const TimeZone& tz,
                                  int64_t created_at, int64_t last_tick);

}  // namespace lathe::control
