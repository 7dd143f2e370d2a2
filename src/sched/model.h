// The scheduler's world as plain values: the Snapshot it reads and the Plan
// it returns. No clock, no I/O: "now" is a field of the Snapshot.
//
// Units: cpu in milli-cores, memory in MiB, GPU in milli-GPUs (1000 = one
// whole GPU). A task asks for either a fraction of ONE GPU (0 < gpu < 1000)
// or whole GPUs (a multiple of 1000); other GPU requests are invalid.
// Times are seconds (the server passes wall-clock seconds, the simulator
// virtual seconds).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lathe::sched {

struct Resources {
  int64_t cpu_milli = 0;
  int64_t memory_mib = 0;
  int64_t gpu_milli = 0;

  Resources& operator+=(const Resources& o);
  Resources& operator-=(const Resources& o);
  friend Resources operator+(Resources a, const Resources& b) { return a += b; }
  friend Resources operator-(Resources a, const Resources& b) { return a -= b; }
  Resources operator*(int64_t n) const;
  friend bool operator==(const Resources&, const Resources&) = default;
  // Every dimension of *this <= the same dimension of `o`.
  bool FitsIn(const Resources& o) const;
  bool IsZero() const { return cpu_milli == 0 && memory_mib == 0 && gpu_milli == 0; }
};

// A queue limit where any dimension may be unlimited.
struct Limit {
  static constexpr int64_t kUnlimited = INT64_MAX;
  Resources value{kUnlimited, kUnlimited, kUnlimited};
  static Limit Unlimited() { return {}; }
  bool Allows(const Resources& r) const { return r.FitsIn(value); }
};

enum class TaintEffect { kNoSchedule, kPreferNoSchedule };

struct Taint {
  std::string key;
  std::string value;
  TaintEffect effect = TaintEffect::kNoSchedule;
};

// Kubernetes semantics: op "Exists" matches any value of `key` (an empty
// key with Exists matches every taint); "Equal" needs the same value. An
// unset effect matches both effects.
struct Toleration {
  std::string key;
  std::string op = "Equal";  // "Equal" | "Exists"
  std::string value;
  std::optional<TaintEffect> effect;
};

struct Node {
  std::string name;
  std::string pool;       // node pool; "" = default
  std::string gpu_model;  // "" for CPU-only nodes
  // Allocatable capacity. capacity.gpu_milli must be 1000 × num_gpus.
  Resources capacity;
  int num_gpus = 0;
  std::map<std::string, std::string> labels;
  std::vector<Taint> taints;
  bool schedulable = true;  // false: cordoned, nothing new lands here
};

// A queue in a tree (parent "" = under the root). Deserved shares come from
// weights among siblings; `guarantee` is always available to the queue
// while it has demand (never lent away so that it cannot be reclaimed);
// `ceiling` is a hard cap on what the queue and its children hold.
struct Queue {
  std::string name;
  std::string parent;
  Resources guarantee;
  Limit ceiling;
  int64_t weight = 1;        // >= 1
  bool reclaimable = true;   // may others reclaim what it borrowed?
};

// One role of a job: `count` identical tasks.
struct TaskGroup {
  std::string name;  // "worker", "ps", ...
  int count = 1;
  Resources request;  // per task
};

struct Job {
  std::string id;
  std::string queue;
  int64_t priority = 0;    // higher first
  int64_t submit_time = 0;
  std::vector<TaskGroup> groups;
  // Gang size: the job starts only when this many tasks can start together.
  // 0 means all tasks.
  int min_available = 0;
  std::map<std::string, std::string> node_selector;  // all must match labels
  std::vector<Toleration> tolerations;
  std::string gpu_model;  // required GPU model, "" = any
  std::string pool;       // required node pool, "" = any
  std::optional<int64_t> runtime_estimate;  // seconds, for backfill and SJF
  // GPU-seconds this job has already received (preempted and resumed jobs),
  // for least-attained-service ordering.
  int64_t attained_gpu_seconds = 0;
  bool preemptible = true;

  int TotalTasks() const;
  int GangSize() const { return min_available > 0 ? min_available : TotalTasks(); }
};

// Where one task runs: a node and, for GPU tasks, which GPU indices with
// how many milli-GPUs each (one entry of < 1000 for a fractional task, or
// k entries of 1000 for a k-GPU task).
struct GpuShare {
  int index = 0;
  int64_t milli = 0;
};

struct TaskPlacement {
  int group = 0;  // index into Job::groups
  int index = 0;  // task index within the group
  std::string node;
  std::vector<GpuShare> gpus;
};

struct RunningJob {
  Job job;
  int64_t start_time = 0;
  std::vector<TaskPlacement> tasks;
};

struct Snapshot {
  int64_t now = 0;
  std::vector<Node> nodes;
  std::vector<Queue> queues;  // a job's queue must be listed
  std::vector<Job> pending;
  std::vector<RunningJob> running;
};

struct Bind {
  std::string job_id;
  std::vector<TaskPlacement> tasks;
};

struct Preemption {
  std::string job_id;      // the victim; preempted whole
  std::string for_job_id;  // who needed the room
  std::string reason;
};

struct Reservation {
  std::string job_id;
  std::vector<std::string> nodes;
  int64_t expected_start = 0;
};

struct PendingReason {
  std::string job_id;
  // For people: "queue team-a at its ceiling for gpu", "gang needs 4 GPUs on
  // nodes labelled x; 3 free".
  std::string reason;
};

struct PlanStats {
  int64_t jobs_considered = 0;
  int64_t tasks_placed = 0;
  int64_t node_evaluations = 0;  // (task, node) pairs filtered or scored
};

struct Plan {
  std::vector<Bind> binds;
  std::vector<Preemption> preemptions;
  std::vector<Reservation> reservations;
  std::vector<PendingReason> pending;  // one per pending job not bound
  PlanStats stats;
};

}  // namespace lathe::sched
