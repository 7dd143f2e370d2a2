// Job and queue specs: the resource types users write (YAML or JSON,
// docs/jobs.md), decoded into plain structs with every error naming the
// field path ("roles[1].resources.memory: \"3GB\" is not a quantity").
// Pure: no I/O, no clock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "sched/model.h"

namespace lathe::spec {

// ---- quantities and durations (Kubernetes-style strings or plain numbers)

// cpu: 2, 0.5, "2", "500m" -> milli-cores. Must be > 0 after rounding.
StatusOr<int64_t> ParseCpuMilli(const JsonValue& v, const std::string& field);
// memory: "512Mi", "4Gi", "1G", "1500M", "1Ti", a bare number of bytes
// (JSON integer or "1048576") -> MiB, rounded up. Must be > 0.
StatusOr<int64_t> ParseMemoryMib(const JsonValue& v, const std::string& field);
// gpu: 0, 1, 4, 0.5, "250m" -> milli-GPU. A fraction of one GPU (0 < g < 1)
// or whole GPUs; 1.5 is invalid (the scheduler's model, sched/model.h).
StatusOr<int64_t> ParseGpuMilli(const JsonValue& v, const std::string& field);
// duration: 90 (seconds), "90s", "15m", "1h30m", "2d" -> seconds (> 0).
StatusOr<int64_t> ParseDurationSeconds(const JsonValue& v, const std::string& field);
// As ParseCpuMilli / ParseMemoryMib, but 0 is allowed (queue guarantees and
// ceilings).
StatusOr<int64_t> ParseCpuMilliOrZero(const JsonValue& v, const std::string& field);
StatusOr<int64_t> ParseMemoryMibOrZero(const JsonValue& v, const std::string& field);
// GPUs in total (a queue's guarantee or ceiling): like ParseGpuMilli, but any
// amount >= 0 (2.5 GPUs is a valid total).
StatusOr<int64_t> ParseGpuMilliTotal(const JsonValue& v, const std::string& field);
// Canonical text for output: "500m"/"2" cpu, "512Mi"/"4Gi" memory,
// "0.5"/"2" gpu, "1h30m" durations.
std::string FormatCpu(int64_t milli);
std::string FormatMemory(int64_t mib);
std::string FormatGpu(int64_t milli);
std::string FormatDuration(int64_t seconds);

// ---- jobs

enum class Framework { kNone, kPyTorch, kMpi, kTensorFlow, kXgboost };
std::string_view FrameworkName(Framework f);  // "none", "pytorch", ...
// The environment variables RenderRendezvous (rendezvous.h) sets for `f`,
// besides the LATHE_* ones every framework gets. A role's `env` may not set
// them (nor any LATHE_* name).
const std::vector<std::string>& RendezvousEnvNames(Framework f);

struct Role {
  std::string name;                       // [a-z0-9-], unique in the job
  int replicas = 1;                       // >= 1
  std::vector<std::string> command;       // argv[0..]; may be empty only for
                                          // MPI workers (Lathe holds them)
  std::vector<std::string> args;          // appended to command
  std::map<std::string, std::string> env;
  sched::Resources resources;             // per replica; cpu and memory > 0;
                                          // absent: cpu 1, memory 1Gi, gpu 0
  std::string working_dir;                // relative to the code snapshot, or absolute

  friend bool operator==(const Role&, const Role&) = default;
};

enum class RestartPolicy { kNever, kOnFailure, kExitCodes };

struct Restart {
  RestartPolicy policy = RestartPolicy::kNever;
  std::vector<int> exit_codes;   // kExitCodes: restart only on these codes
  int limit = 3;                 // restarts after the first attempt
  int64_t backoff_seconds = 10;  // doubles per restart, capped at 300 s

  friend bool operator==(const Restart&, const Restart&) = default;
};

struct JobSpec {
  std::string name;       // [a-z0-9-], 1..63
  std::string project;    // project name; "" when the document has none
                          // (the caller decides, e.g. from the request)
  std::string queue = "default";
  int64_t priority = 0;
  std::map<std::string, std::string> labels;
  Framework framework = Framework::kNone;
  std::vector<Role> roles;  // at least one
  int min_available = 0;    // gang size; 0 = all replicas of all roles
  Restart restart;
  std::optional<int64_t> timeout_seconds;              // active deadline
  std::optional<int64_t> ttl_seconds_after_finished;   // then removed
  std::map<std::string, std::string> node_selector;
  std::vector<sched::Toleration> tolerations;
  // `tracking: {experiment: NAME}`: the controller creates a tracking run
  // for the job in that experiment (created if absent) and passes its id as
  // LATHE_RUN_ID; the run ends with the job. Absent = no run.
  std::optional<std::string> tracking_experiment;
  // Set by the pipeline controller on a step's job, never by users:
  // ParseJobSpec rejects `pipeline` unless `trusted` (stored specs). The job
  // controller passes LATHE_PIPELINE_RUN_ID, LATHE_PIPELINE_STEP (the node,
  // "train[3]") and LATHE_OUTPUTS (the directory holding parameters/ and
  // artifacts/) to every task, and tags the job's tracking run with
  // lathe.pipeline_run_id and lathe.pipeline_step.
  struct PipelineContext {
    std::string run_id;
    std::string node;
    std::string outputs_dir;
    friend bool operator==(const PipelineContext&, const PipelineContext&) = default;
  };
  std::optional<PipelineContext> pipeline;

  int TotalReplicas() const;
  // Field by field (the spec changed?).
  friend bool operator==(const JobSpec& a, const JobSpec& b);
};

// Decodes and validates. `path` prefixes error fields ("" at the root,
// "jobs[3]" in a batch). Unknown fields are errors. Framework rules:
//   pytorch: roles named master (0..1 replica) and/or worker;
//   tensorflow: chief (0..1), ps, worker, evaluator;
//   mpi: exactly one "launcher" role with 1 replica and a "worker" role;
//   xgboost: master (1 replica) and worker;
//   none: any role names.
// `trusted`: the spec comes from the store (or the pipeline controller), so
// Lathe-only fields (`pipeline`) are accepted.
StatusOr<JobSpec> ParseJobSpec(const JsonValue& v, const std::string& path = "",
                               bool trusted = false);
// Canonical JSON (what the store keeps and the API returns); ParseJobSpec of
// it gives back an equal spec.
void WriteJobSpec(JsonWriter& w, const JobSpec& spec);

// The scheduler's view: one TaskGroup per role; MPI launchers included
// (they hold their resources too).
sched::Job ToSchedJob(const JobSpec& spec, const std::string& job_id, int64_t submit_time);

// ---- queues

struct QueueSpec {
  std::string name;    // [a-z0-9-]
  std::string parent;  // "" = top level
  sched::Resources guarantee;
  sched::Limit ceiling;  // absent dimensions unlimited
  int64_t weight = 1;
  bool reclaimable = true;

  friend bool operator==(const QueueSpec& a, const QueueSpec& b);
};

// { name, parent, guarantee: {cpu, memory, gpu}, ceiling: {...}, weight,
//   reclaimable }
StatusOr<QueueSpec> ParseQueueSpec(const JsonValue& v, const std::string& path = "");
void WriteQueueSpec(JsonWriter& w, const QueueSpec& spec);
sched::Queue ToSchedQueue(const QueueSpec& spec);

}  // namespace lathe::spec
