// The job controller: one level-triggered reconcile loop over the store
// (DESIGN.md "Desired state in the store, controllers reconcile").
//
// Each pass, for every active job: cancellation and deadlines; observe the
// tasks of admitted/launching/running jobs through the executor and move
// phases; then build a scheduler Snapshot (executor inventory, queues,
// pending and running jobs) and apply the Plan: binds → admitted (placement
// persisted first), preemptions → tasks killed and the job back to pending
// with a new attempt; then launch admitted jobs. Every step is idempotent
// (executor launches are idempotent per task key, phase writes are
// compare-and-set on the stored phase), so a crash at any point is repaired
// by the next pass of a restarted server: no task starts twice, no job is lost.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/clock.h"
#include "base/metrics.h"
#include "control/jobs.h"
#include "exec/executor.h"
#include "sched/policy.h"
#include "store/store.h"
#include "tenancy/tenancy.h"

namespace lathe::tracking {
class TrackingService;
}  // namespace lathe::tracking

namespace lathe::control {

struct ControllerOptions {
  std::string policy = "lathe";       // sched::NamedPolicy
  int64_t resync_interval_ms = 200;   // a pass at least this often
  int64_t kill_grace_ms = 10'000;     // SIGTERM → SIGKILL
  int64_t log_max_bytes = 64 << 20;   // per task stream
  std::string server_url;             // LATHE_SERVER in jobs
  std::string code_root;              // $LATHE_HOME/code (snapshots)
  std::string work_root;              // $LATHE_HOME/work (per-task code copies)
  std::string python_path;            // added to PYTHONPATH ("" = none)
  // Creates the tracking run of jobs whose spec asks for one
  // (`tracking: {experiment}`) and ends it with the job; null = no runs.
  tracking::TrackingService* tracking = nullptr;
  // Called on the controller thread after a job's terminal phase is stored
  // (the pipeline controller's Poke, so a step's end is seen at once).
  // Must not block; null = nobody to tell.
  std::function<void(const JobRecord&)> on_job_terminal;
};

class JobController {
 public:
  JobController(store::Store& store, tenancy::TenancyService& tenancy, exec::Executor& executor,
                const Clock& clock, ControllerOptions options);
  ~JobController();

  // LATHE_SERVER for jobs, once the server knows its address. Before Start().
  void SetServerUrl(std::string url);
  void Start();  // runs passes on a thread until Stop()
  void Stop();
  // Asks for a pass soon (after a submit or cancel).
  void Poke();
  // One pass, synchronously (tests; also what the thread runs).
  Status RunPass();

  // The scheduler's last reason for a pending job ("" if none yet).
  std::string PendingReason(const std::string& job_id) const;
  // Rejects a spec no node of the inventory could ever hold (submit-time check).
  Status CheckFits(const spec::JobSpec& spec);
  exec::Executor& executor() { return executor_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  exec::Executor& executor_;
};

}  // namespace lathe::control
