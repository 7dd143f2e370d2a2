// What a simulation run reports, and the measures behind it.
//
// Definitions (docs/sim.md has the long form):
//  * JCT = completion − submission; queueing delay = JCT − duration (all the
//    time a job was not running, so a preempted job's waits add up).
//  * Utilisation = allocated / capacity, time-weighted over [first
//    submission, last completion].
//  * Unallocated GPU = capacity − allocated GPU milli, in GPUs.
//  * Fragmented GPU (FGD, Weng et al. ATC'23): for node n and a task class m,
//    F_n(m) = all free GPU milli of n if m cannot run on n (not enough CPU,
//    memory or GPU, or m asks for no GPU), else the free milli of those GPUs
//    that cannot hold m's GPU request (for a whole-GPU task, partly used
//    GPUs). The cluster's fragmentation is Σ_n Σ_m p_m F_n(m), with p_m the
//    class's share of the workload.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/json.h"
#include "sched/model.h"
#include "sched/policy.h"

namespace lathe::sim {

// Free resources of one node, tracked incrementally by the simulator.
struct NodeFree {
  int64_t cpu_milli = 0;
  int64_t memory_mib = 0;
  std::vector<int64_t> gpu_free;  // per GPU, milli
};

// F_n(m) of the header comment, in GPU milli. `classes` weights are
// normalised by the caller (FragmentedGpuMilli does it).
double NodeFragmentMilli(const NodeFree& node, const sched::Resources& task);
// Σ_n Σ_m p_m F_n(m), in GPU milli. 0 when `classes` is empty.
double FragmentedGpuMilli(const std::vector<NodeFree>& nodes,
                          const std::vector<sched::WorkloadClass>& classes);

// Task classes of a workload: identical (cpu, gpu) requests grouped with
// their task counts as weights (memory is left out, as in FGD's typical
// pods). Sorted by weight, heaviest first.
std::vector<sched::WorkloadClass> WorkloadClasses(const std::vector<sched::Resources>& tasks);

// p-th percentile (0..100) by nearest rank of an unsorted sample; 0 if empty.
double Percentile(std::vector<double> values, double p);

struct Sample {
  int64_t time = 0;
  double cpu_util = 0;          // allocated / capacity
  double gpu_util = 0;
  double unallocated_gpus = 0;  // GPUs
  double fragmented_gpus = 0;   // GPUs (FGD measure)
  int64_t pending = 0;
  int64_t running = 0;
};

struct QueueShare {
  std::string queue;
  double deserved = 0;   // static share from weights among siblings (fraction)
  double share = 0;      // time-averaged dominant share held (fraction of cluster)
  int64_t jobs = 0;
  double avg_jct = 0;
};

// Finished jobs of one size: the job's GPUs (all tasks, rounded up to whole
// GPUs; 0 for CPU-only jobs).
struct SizeClass {
  int64_t gpus = 0;
  int64_t jobs = 0;
  double avg_jct = 0;
  double avg_wait = 0;
};

struct SimResult {
  std::string policy;
  int64_t jobs = 0;
  int64_t finished = 0;
  int64_t never_started = 0;
  double avg_jct = 0, p50_jct = 0, p95_jct = 0, p99_jct = 0;
  double avg_wait = 0, p95_wait = 0;
  int64_t makespan = 0;           // last completion − first submission
  double cpu_util = 0, gpu_util = 0;  // time-weighted averages
  double avg_unallocated_gpus = 0;    // time-weighted average
  double avg_fragmented_gpus = 0;     // average over samples
  int64_t preemptions = 0;
  int64_t reservations = 0;       // reservations in plans, summed over cycles (not applied)
  // EASY reservations checked against what happened: jobs that got one,
  // how many of them started after the expected start of their FIRST
  // reservation, and the largest such delay (s). With exact runtime
  // estimates, one queue and equal priorities EASY promises none late.
  int64_t reserved_jobs = 0;
  int64_t reserved_started_late = 0;
  int64_t max_reservation_delay = 0;
  int64_t cycles = 0;
  double schedule_seconds = 0;    // wall time spent inside Schedule
  double wall_seconds = 0;        // wall time of the whole run
  std::vector<Sample> series;
  std::vector<QueueShare> queues;
  std::vector<SizeClass> by_gpus;  // by GPUs ascending
};

// One point of the FGD fill experiment.
struct FillPoint {
  double arrived = 0;      // requested GPUs so far / GPU capacity
  double allocated = 0;    // allocated GPUs / capacity
  double unallocated = 0;  // 1 − allocated
  double fragmented = 0;   // fragmented GPUs / capacity (FGD measure)
  int64_t tasks = 0;
  int64_t failed = 0;      // tasks that found no place (not retried)
};

struct FillResult {
  std::string policy;
  double capacity_gpus = 0;
  std::vector<FillPoint> curve;  // one point per arrived task
  int64_t failed = 0;
  double schedule_seconds = 0;
  // Unallocated fraction once arrivals reached `at` of capacity (the first
  // point at or beyond it; the last point if never reached).
  double UnallocatedAt(double at) const;
  const FillPoint* PointAt(double at) const;
};

void WriteSimResultJson(const SimResult& r, JsonWriter& w, size_t max_series);
void WriteFillResultJson(const FillResult& r, JsonWriter& w, const std::vector<double>& loads);

}  // namespace lathe::sim
