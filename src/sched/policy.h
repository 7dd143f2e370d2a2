// Policy: which named plugins a scheduling cycle uses, and their knobs.
// Plugins are registered by name (scorer.h) so the server, `lathe sim
// --policies a,b,c` and scenario files pick them the same way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "sched/model.h"

namespace lathe::sched {

// How pending jobs are ordered within a queue.
enum class JobOrder {
  kFifo,          // submit time
  kPriority,      // priority, then the queue-internal fair share, then age (default)
  kShortestFirst, // runtime_estimate ascending (unknown last), then age
  kLeastAttained, // attained_gpu_seconds ascending, then age (Tiresias-like)
};

// How queues take turns.
enum class QueueOrder {
  kFifo,  // no fair share: the oldest head job of any queue goes first
  kDrf,   // dominant-resource share of allocated vs deserved, lowest first (default)
};

// One class of task in the expected workload, for the fragmentation-aware
// scorer: its request and how often it occurs (weights need not sum to 1).
struct WorkloadClass {
  Resources request;
  double weight = 1;
};

struct Policy {
  std::string name;  // for reports: "drf+binpack", "fgd", ...
  QueueOrder queue_order = QueueOrder::kDrf;
  JobOrder job_order = JobOrder::kPriority;
  // Placement scorer by registered name: "binpack", "spread", "fgd",
  // "random", "bestfit", "dotproduct", "gpu-packing", "gpu-clustering".
  std::string scorer = "binpack";
  // Order jobs within the same priority by size, largest first.
  bool largest_first = false;
  // Gangs are all-or-nothing. Always true in production; a policy may turn
  // it off only in the simulator to measure what gang scheduling costs.
  bool gang = true;
  bool preempt = false;   // within a queue, by priority
  bool reclaim = false;   // across queues, down to guarantees
  bool backfill = false;  // EASY backfill with reservations
  // Strict order: a job that cannot start blocks every job after it in its
  // queue (with queue_order kFifo: every later job of any queue), as a
  // FIFO batch queue without backfill does. Off: best-effort, later jobs
  // that fit start (Kueue BestEffortFIFO). With backfill on, the blocked
  // head's reservation is what holds later jobs back (EASY), so this has
  // no effect.
  bool head_blocks = false;
  // Aging: a pending job's effective priority rises by this much per hour
  // waited, so low priority jobs do not starve. 0 disables.
  double aging_per_hour = 0;
  // Seed for scorers that break ties or choose at random; the same snapshot,
  // policy and seed give the same plan.
  uint64_t seed = 1;
  // Expected workload for "fgd"; empty = derived from the snapshot's pending
  // and running tasks.
  std::vector<WorkloadClass> workload;
};

// The named policies `lathe sim --policies` accepts: "fifo" (submit order,
// best-effort: a job that does not fit does not block later ones),
// "fifo-strict" (submit order, the first job that does not fit blocks the
// rest), "drf", "binpack", "spread", "fgd", "random", "bestfit",
// "dotproduct", "gpu-packing", "gpu-clustering", "sjf", "las", "lathe" (the
// default production policy, without backfill) and "easy" (lathe plus EASY
// backfill). NOT_FOUND naming the policy otherwise.
StatusOr<Policy> NamedPolicy(const std::string& name);
std::vector<std::string> NamedPolicyNames();

// Added (not part of the original interface): checks a hand-built or edited
// policy. INVALID_ARGUMENT naming the field ("scorer", "aging_per_hour",
// "workload[2].weight"). Schedule() itself treats an unknown scorer as
// "binpack".
Status ValidatePolicy(const Policy& policy);

}  // namespace lathe::sched
