// Schedules and backfills as stored records, the service the API calls, and
// the ScheduleController that turns due ticks into pipeline runs
// (docs/pipelines.md "Schedules"). Time comes from an injected Clock, so
// tests drive ticks, downtime and DST with a FakeClock.
//
// Every tick a schedule handles gets one row in `schedule_ticks`
// (schedule, tick) — created together with its run, or recorded as skipped
// — in one transaction, so a restarted server neither repeats nor loses a
// tick: after downtime, catchup on creates one run per missed tick (oldest
// first); catchup off creates a run for the latest missed tick only and
// records the others as skipped.
//
// Per tick, in order: paused or a skip date → skipped (reason recorded);
// overlap Forbid with an active run → skipped; Replace → active runs
// cancelled, then the run is created; Allow → created, but it waits
// (`queued`) while max_concurrency runs of the schedule are active;
// depends_on_past → queued until the previous tick's run succeeded.
// A failed run is resumed from its failed steps up to `retries` times.
// Finished runs beyond `history_limit` are deleted, oldest first.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/json.h"
#include "base/metrics.h"
#include "base/status.h"
#include "spec/schedule_spec.h"
#include "store/store.h"
#include "tenancy/tenancy.h"

namespace lathe::control {

struct ScheduleRecord {
  std::string id;
  std::string project;
  std::string project_id;
  spec::ScheduleSpec spec;
  int64_t last_tick = 0;   // the last tick handled (µs), 0 = none yet
  int64_t next_tick = 0;   // the next tick (µs), 0 = ended
  std::string created_by;
  std::string created_by_id;
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

struct TickRecord {
  int64_t tick = 0;
  std::string state;    // "queued" | "created" | "skipped"
  std::string reason;   // why skipped or queued ("Paused", "SkipDate", "Overlap",
                        // "CatchupOff", "DependsOnPast", "MaxConcurrency")
  std::string run_id;   // "" until created
  std::string backfill_id;
  int attempts = 0;     // run-level retries used
  int64_t created_at = 0;
};

enum class Reprocess { kNone, kFailed, kAll };
std::string_view ReprocessName(Reprocess r);  // "none", "failed", "all"
StatusOr<Reprocess> ParseReprocess(std::string_view s);

struct BackfillRecord {
  std::string id;
  std::string schedule;  // name
  int64_t from = 0, to = 0;
  int max_concurrency = 1;
  Reprocess reprocess = Reprocess::kFailed;
  std::string state;  // "running" | "succeeded" | "failed" | "cancelled"
  int total = 0, created = 0, succeeded = 0, failed = 0;
  int64_t created_at = 0;
  int64_t finished_at = 0;
};

class ScheduleService {
 public:
  ScheduleService(store::Store& store, tenancy::TenancyService& tenancy, const Clock& clock,
                  spec::ZoneLoader load_zone);

  // Create, or replace the spec of an existing schedule (`create_only`:
  // ALREADY_EXISTS instead). Changing the cron/interval keeps last_tick.
  StatusOr<ScheduleRecord> Put(const tenancy::Principal& p, const std::string& project,
                               const JsonValue& spec, bool create_only);
  StatusOr<ScheduleRecord> Get(const tenancy::Principal& p, const std::string& project,
                               const std::string& name);
  StatusOr<tenancy::Page<ScheduleRecord>> List(const tenancy::Principal& p,
                                               const std::string& project,
                                               const tenancy::PageRequest& page);
  Status Remove(const tenancy::Principal& p, const std::string& project, const std::string& name);
  StatusOr<ScheduleRecord> SetPaused(const tenancy::Principal& p, const std::string& project,
                                     const std::string& name, bool paused);
  // Adds (or with `remove`, drops) dates "YYYY-MM-DD" to skip.
  StatusOr<ScheduleRecord> Skip(const tenancy::Principal& p, const std::string& project,
                                const std::string& name, const std::vector<std::string>& dates,
                                bool remove);
  StatusOr<tenancy::Page<TickRecord>> Ticks(const tenancy::Principal& p, const std::string& project,
                                            const std::string& name,
                                            const tenancy::PageRequest& page);
  // Creates runs for every tick in [from, to] (at most 10,000), at most
  // `max_concurrency` active at once. Ticks that already have a run:
  // reprocess none = leave them, failed = resume failed/cancelled ones, all =
  // a new run for every tick.
  StatusOr<BackfillRecord> Backfill(const tenancy::Principal& p, const std::string& project,
                                    const std::string& name, int64_t from_us, int64_t to_us,
                                    int max_concurrency, Reprocess reprocess);
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
  size_t max_ticks_per_pass = 100;  // catchup creates at most this many runs per pass
  // Called after runs were created, resumed or cancelled (PipelineController::Poke).
  std::function<void()> poke_pipelines;
};

class ScheduleController {
 public:
  ScheduleController(store::Store& store, const Clock& clock, spec::ZoneLoader load_zone,
                     ScheduleControllerOptions options, MetricsRegistry* metrics = nullptr);
  ~ScheduleController();
  void Start();
  void Stop();
  void Poke();
  Status RunPass();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe::control
