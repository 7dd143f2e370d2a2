// Jobs and queues as stored records, and the service the API calls
// (desired state in the store; the JobController in controller.h acts on it).
//
// Phases (docs/jobs.md "Lifecycle"):
//   pending → admitted → launching → running → succeeded | failed |
//   cancelled | timed_out
// A restart (restart policy, or preemption) goes back to pending with the
// next attempt number; the gang restarts together. Every transition is
// written with an event in the same transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "spec/job_spec.h"
#include "store/store.h"
#include "tenancy/tenancy.h"

namespace lathe::control {

enum class Phase { kPending, kAdmitted, kLaunching, kRunning, kSucceeded, kFailed, kCancelled, kTimedOut };
std::string_view PhaseName(Phase p);  // "pending", …, "timed_out"
StatusOr<Phase> ParsePhase(std::string_view s, std::string_view field = "phase");
bool IsTerminal(Phase p);

// Where one task of the current attempt runs (persisted with the job).
struct TaskRecord {
  std::string role;
  int index = 0;
  std::string node;
  std::vector<int> gpus;
  std::string host;  // where peers reach it
  int port = 0;      // the port it may listen on (rendezvous)
  // Filled as the controller observes the task.
  std::string state;  // "", "starting", "running", "exited", "lost"
  int exit_code = 0;
  int signal = 0;
  int64_t started_at = 0;   // µs; when the process started (0 = not seen)
  int64_t finished_at = 0;  // µs; when it exited
};

struct JobEvent {
  int64_t seq = 0;
  int64_t time = 0;  // µs since epoch
  std::string type;  // "Normal" | "Warning"
  std::string reason;
  std::string message;
};

struct JobRecord {
  std::string id;
  std::string project;     // project name
  std::string project_id;
  std::string created_by;  // user name
  std::string created_by_id;
  spec::JobSpec spec;
  Phase phase = Phase::kPending;
  std::string reason;   // of the last transition ("Completed", "BackoffLimitExceeded", …)
  std::string message;
  int attempt = 0;      // current attempt, from 0
  int restarts = 0;     // restarts charged to the restart policy
  bool cancel_requested = false;
  std::string code;     // code snapshot digest, "" = none
  std::string run_id;   // the job's tracking run (spec.tracking_experiment), "" = none
  std::vector<TaskRecord> tasks;  // current attempt's placement
  int64_t created_at = 0;
  int64_t admitted_at = 0;   // 0 = not yet (current attempt)
  int64_t started_at = 0;    // first time all tasks ran (current attempt)
  int64_t finished_at = 0;
  int64_t not_before = 0;    // restart backoff: not scheduled before this (µs)
};

struct JobFilter {
  std::string project;            // required
  std::optional<Phase> phase;
  std::string queue;              // "" = any
};

struct QueueRecord {
  spec::QueueSpec spec;
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

class JobService {
 public:
  JobService(store::Store& store, tenancy::TenancyService& tenancy, const Clock& clock);

  // Inserts pending jobs in one transaction (all or none). Needs editor on
  // each job's project. Rejects with INVALID_ARGUMENT (field "jobs[i]…" when
  // more than one) a job whose queue does not exist, a name already used in
  // the project, or a task no node could ever hold (`fits` says why not;
  // called per job, may be null).
  using FitCheck = std::function<Status(const spec::JobSpec&)>;
  StatusOr<std::vector<JobRecord>> Submit(const tenancy::Principal& p,
                                          std::vector<spec::JobSpec> jobs,
                                          const std::string& code, const FitCheck& fits);

  // By id or by name within `project`.
  StatusOr<JobRecord> Get(const tenancy::Principal& p, const std::string& project,
                          const std::string& id_or_name);
  StatusOr<tenancy::Page<JobRecord>> List(const tenancy::Principal& p, const JobFilter& filter,
                                          const tenancy::PageRequest& page);
  StatusOr<std::vector<JobEvent>> Events(const tenancy::Principal& p, const std::string& project,
                                         const std::string& id_or_name);
  // Marks the job for cancellation (the controller kills its tasks).
  // Terminal jobs: FAILED_PRECONDITION.
  StatusOr<JobRecord> Cancel(const tenancy::Principal& p, const std::string& project,
                             const std::string& id_or_name);
  // Deletes a terminal job's record and events (FAILED_PRECONDITION while
  // it is not terminal). Returns the removed record (for executor cleanup).
  StatusOr<JobRecord> Remove(const tenancy::Principal& p, const std::string& project,
                             const std::string& id_or_name);

  // Queues: anyone authenticated may read; only server admins change them.
  StatusOr<QueueRecord> PutQueue(const tenancy::Principal& p, const spec::QueueSpec& q, bool create_only);
  StatusOr<QueueRecord> GetQueue(const tenancy::Principal& p, const std::string& name);
  StatusOr<std::vector<QueueRecord>> ListQueues(const tenancy::Principal& p);
  Status DeleteQueue(const tenancy::Principal& p, const std::string& name);  // only when no active job uses it

  // Ensures the "default" queue exists (server start).
  Status EnsureDefaultQueue();

 private:
  store::Store& store_;
  tenancy::TenancyService& tenancy_;
  const Clock& clock_;
};

// ---- store helpers shared with the controller (no authorization)

// Inserts `job` (pending, with its "Submitted" event) inside the caller's
// transaction, so a caller can record what the job is for in the same
// commit (the pipeline controller: the node's attempt). The caller fills
// project, project_id, created_by(_id), spec, code and created_at; `id` is
// generated when empty. INVALID_ARGUMENT (field "queue") for a queue that
// does not exist or is not a leaf, ALREADY_EXISTS (field "name") for a name
// taken in the project (the transaction is then poisoned). `event_message`
// "" = "submitted by USER to queue Q". No authorization.
StatusOr<JobRecord> InsertJob(store::Tx& tx, JobRecord job, const std::string& event_message = "");
// Marks a job for cancellation without the checks of who may (a controller
// acting for the job's owner); OK and nothing happens for a terminal job or
// one already marked. NOT_FOUND when there is no such job.
Status RequestJobCancel(store::Tx& tx, const std::string& id, const std::string& why,
                        int64_t now_us);
// Reads one job row by id (any project).
StatusOr<JobRecord> LoadJob(store::Tx& tx, const std::string& id);
// Active (non-terminal) jobs, oldest first. Specs never change once
// stored, so a caller may pass a cache (job id -> spec) to skip re-parsing.
using SpecCache = std::unordered_map<std::string, spec::JobSpec>;
StatusOr<std::vector<JobRecord>> LoadActiveJobs(store::Tx& tx, SpecCache* cache = nullptr);
// Ids of terminal jobs whose TTL after finishing has passed at `now_us`.
StatusOr<std::vector<std::string>> ExpiredJobs(store::Tx& tx, int64_t now_us);
// Deletes a job row and its events (no checks).
Status DeleteJob(store::Tx& tx, const std::string& id);
StatusOr<std::vector<QueueRecord>> LoadQueues(store::Tx& tx);
// Writes phase/reason/message/attempt/restarts/tasks/timestamps of `job`
// if its stored phase is still `expected` (returns false when not: someone
// else moved it), and appends an event.
StatusOr<bool> SaveTransition(store::Tx& tx, const JobRecord& job, Phase expected,
                              const JobEvent& event);
// Records the job's tracking run.
Status SetJobRun(store::Tx& tx, const std::string& job_id, const std::string& run_id);
// Appends an event without changing the phase.
Status AppendEvent(store::Tx& tx, const std::string& job_id, const JobEvent& event);

}  // namespace lathe::control
