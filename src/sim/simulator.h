// The cluster simulator: the production scheduler (sched::Schedule) driven
// by a trace in virtual time.
//
//   ASSIGN_OR_RETURN(Workload w, BuildWorkload(trace, config, nodes, select));
//   ASSIGN_OR_RETURN(SimResult r, Simulate(w, *sched::NamedPolicy("fifo"), options));
//
// Events: job arrivals (at submit time) and completions (start + remaining
// duration). Scheduling cycles run after every batch of events at one
// instant (or every `cycle_seconds` of virtual time), each on a Snapshot
// kept incrementally (jobs are appended and removed, never copied per
// cycle). A plan is applied as: preemptions first (the victim stops, its
// attained GPU-seconds grow by what it ran, its remaining duration shrinks
// by the same time, and it re-queues with its original submit time, with no
// restart penalty), then binds (the job runs for its remaining duration).
// A running job's attained_gpu_seconds is what it had before its current
// run (the scheduler adds the time since start_time itself).
// Reservations are not applied; they are counted and checked: a job that
// starts after the expected start of its first reservation is counted as
// late (SimResult::reserved_started_late). A plan that over-commits a
// node, binds an unknown job or part of a gang is an INTERNAL error naming
// the policy: the simulator checks the scheduler's guarantees.
//
// Deterministic: the same workload, policy and options give the same
// result. Not thread-safe per call; separate calls share nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "base/status.h"
#include "sched/model.h"
#include "sched/policy.h"
#include "sim/cluster_config.h"
#include "sim/metrics.h"
#include "sim/trace.h"

namespace lathe::sim {

// The scheduler under test; sched::Schedule in the product.
using ScheduleFn = std::function<sched::Plan(const sched::Snapshot&, const sched::Policy&)>;

struct SimJob {
  sched::Job job;        // one task group; runtime_estimate = duration
  int64_t duration = 0;  // seconds of running time
};

struct Workload {
  std::vector<sched::Node> nodes;
  std::vector<sched::Queue> queues;
  std::vector<SimJob> jobs;  // sorted by submit time, first at 0
};

// Which trace jobs to simulate, applied in this order.
struct SelectOptions {
  int64_t window_start = -1;  // keep submit_time >= this (seconds from trace start); -1 = all
  int64_t window_end = -1;    // keep submit_time < this; -1 = all
  std::vector<std::string> queues;  // keep these trace queues; empty = all
  int64_t sample_every = 1;   // keep every k-th remaining job
  int64_t max_jobs = 0;       // keep the first N remaining jobs; 0 = all
  bool runtime_estimates = true;  // give the scheduler the true duration
};

// The nodes a config names: its node groups, or for `nodes_from: openb`
// the node list at `node_file` (if not empty) or config.node_file.
StatusOr<std::vector<sched::Node>> ResolveNodes(const ClusterConfig& config,
                                                const std::string& node_file,
                                                const ReadOptions& options);

// Selects jobs, maps trace queues to configured ones (INVALID_ARGUMENT if a
// job maps to an unknown queue), shifts submit times to start at 0.
StatusOr<Workload> BuildWorkload(const Trace& trace, const ClusterConfig& config,
                                 std::vector<sched::Node> nodes, const SelectOptions& select);

struct SimOptions {
  int64_t cycle_seconds = 0;     // 0: a cycle after every event batch
  int64_t sample_seconds = 0;    // utilisation series interval; 0 = span / 200
  bool validate = false;         // ValidateSnapshot before every cycle
  int max_cycles_per_instant = 4;  // back-to-back cycles while plans preempt
  std::ostream* progress = nullptr;  // progress lines every ~2 s of wall time
  ScheduleFn schedule;           // empty = sched::Schedule
};

// Runs `workload` under `policy` until every job finished or nothing more
// can start. Cost: the scheduler's cost per cycle times the number of
// cycles, plus O(pending + running) per cycle.
StatusOr<SimResult> Simulate(const Workload& workload, const sched::Policy& policy,
                             const SimOptions& options);

// The FGD experiment (Weng et al., ATC'23): tasks from `pool` arrive one at
// a time with no departures, each scheduled in its own cycle on `nodes` (one
// unlimited queue), until the requested GPUs reach `until` × the cluster's
// GPU capacity. A task that does not fit is dropped (counted as failed). If
// policy.workload is empty it is set to WorkloadClasses(pool), which is also
// the fragmentation measure's workload. Each cycle gets its own policy.seed,
// derived from `seed` and the step, so random scorers draw afresh per task.
//
// Arrival order:
//   kSample  every task drawn uniformly with replacement (seeded);
//   kTrace   every task of `pool` once in a seeded random order (FGD's
//            artifact: --shuffle-pod), then drawn with replacement (its
//            workload tuning up to -tune).
enum class FillOrder { kSample, kTrace };
struct FillOptions {
  uint64_t seed = 1;
  double until = 1.0;
  FillOrder order = FillOrder::kSample;
  bool validate = false;
  std::ostream* progress = nullptr;
  ScheduleFn schedule;  // empty = sched::Schedule
};
StatusOr<FillResult> RunFill(const std::vector<sched::Node>& nodes,
                             const std::vector<SimJob>& pool, const sched::Policy& policy,
                             const FillOptions& options);

}  // namespace lathe::sim
