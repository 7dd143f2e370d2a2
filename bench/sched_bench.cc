// Scheduling-cycle benchmark: one Schedule() call on a large synthetic
// cluster. Results and machine in sched.md.
//
//   sched_bench [--quarter] [policy ...]   (default: lathe drf spread fgd)
//
// --quarter runs only the 1/4 size.
//
// Full size: 10,000 nodes (40 % 8-GPU, 30 % 2-GPU, 30 % CPU-only), 100,000
// pending single-task jobs (a third fractional GPU, a third one GPU, a third
// CPU-only) plus 1,000 gangs of 8 one-GPU tasks, in 8 queues, on an empty
// cluster whose GPUs the demand exceeds. The 1/4 and 1/2 sizes scale nodes
// and jobs together, to show how the cost grows with jobs × nodes.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "sched/policy.h"
#include "sched/scheduler.h"

namespace {

using lathe::sched::Job;
using lathe::sched::Node;
using lathe::sched::Plan;
using lathe::sched::Policy;
using lathe::sched::Queue;
using lathe::sched::Snapshot;
using lathe::sched::TaskGroup;

Snapshot MakeSnapshot(int nodes, int jobs, int gangs, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  Snapshot s;
  s.now = 1'000'000;
  for (int i = 0; i < nodes; ++i) {
    Node n;
    n.name = "node-" + std::to_string(i);
    int kind = i % 10;
    if (kind < 4) {
      n.num_gpus = 8;
      n.gpu_model = "A100";
      n.capacity = {96'000, 786'432, 8'000};
    } else if (kind < 7) {
      n.num_gpus = 2;
      n.gpu_model = "T4";
      n.capacity = {32'000, 262'144, 2'000};
    } else {
      n.capacity = {64'000, 262'144, 0};
    }
    n.labels["zone"] = "z" + std::to_string(i % 4);
    s.nodes.push_back(n);
  }
  for (int q = 0; q < 8; ++q) {
    Queue queue;
    queue.name = "team-" + std::to_string(q);
    queue.weight = 1 + q % 3;
    s.queues.push_back(queue);
  }
  static constexpr int64_t kFractions[] = {250, 500, 500, 300};
  for (int j = 0; j < jobs; ++j) {
    Job job;
    job.id = "job-" + std::to_string(j);
    job.queue = "team-" + std::to_string(pick(8));
    job.priority = pick(3);
    job.submit_time = pick(1'000'000);
    TaskGroup g{.name = "task", .count = 1};
    int kind = j % 3;
    g.request.cpu_milli = 1000 * (1 + pick(8));
    g.request.memory_mib = 4096 * (1 + pick(8));
    if (kind == 0) g.request.gpu_milli = kFractions[pick(4)];
    if (kind == 1) g.request.gpu_milli = 1000;
    job.groups.push_back(g);
    job.runtime_estimate = 600 + pick(36'000);
    s.pending.push_back(job);
  }
  for (int j = 0; j < gangs; ++j) {
    Job job;
    job.id = "gang-" + std::to_string(j);
    job.queue = "team-" + std::to_string(pick(8));
    job.priority = pick(3);
    job.submit_time = pick(1'000'000);
    job.groups.push_back(TaskGroup{.name = "worker", .count = 8, .request = {8'000, 65'536, 1'000}});
    s.pending.push_back(job);
  }
  return s;
}

double PeakRssMib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> policies;
  std::vector<int> divisors = {4, 2, 1};
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--quarter") {
      divisors = {4};
    } else {
      policies.push_back(argv[i]);
    }
  }
  if (policies.empty()) policies = {"lathe", "drf", "spread", "fgd"};

  std::printf("%-8s %5s %7s %8s %9s %9s %9s %10s %10s %9s %8s %4s\n", "policy", "size", "nodes",
              "jobs", "cycle_ms", "bound", "tasks", "decide/s", "place/s", "evals/job", "gpu_use",
              "resv");
  for (const std::string& name : policies) {
    auto policy = lathe::sched::NamedPolicy(name);
    if (!policy.ok()) {
      std::fprintf(stderr, "%s\n", policy.status().ToString().c_str());
      return 2;
    }
    for (int div : divisors) {
      Snapshot s = MakeSnapshot(10'000 / div, 100'000 / div, 1'000 / div, 42);
      lathe::Status valid = lathe::sched::ValidateSnapshot(s);
      if (!valid.ok()) {
        std::fprintf(stderr, "%s\n", valid.ToString().c_str());
        return 1;
      }
      auto start = std::chrono::steady_clock::now();
      Plan plan = lathe::sched::Schedule(s, *policy);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      int64_t gpu_total = 0, gpu_used = 0;
      for (const Node& n : s.nodes) gpu_total += n.capacity.gpu_milli;
      for (const auto& b : plan.binds) {
        for (const auto& t : b.tasks) {
          for (const auto& g : t.gpus) gpu_used += g.milli;
        }
      }
      std::printf("%-8s %5s %7zu %8zu %9.0f %9zu %9lld %10.0f %10.0f %9.1f %7.1f%% %4zu\n",
                  name.c_str(),
                  div == 1 ? "1" : ("1/" + std::to_string(div)).c_str(), s.nodes.size(),
                  s.pending.size(), secs * 1000, plan.binds.size(),
                  static_cast<long long>(plan.stats.tasks_placed),
                  static_cast<double>(plan.stats.jobs_considered) / secs,
                  static_cast<double>(plan.stats.tasks_placed) / secs,
                  static_cast<double>(plan.stats.node_evaluations) /
                      static_cast<double>(std::max<int64_t>(1, plan.stats.jobs_considered)),
                  100.0 * static_cast<double>(gpu_used) / static_cast<double>(gpu_total),
                  plan.reservations.size());
      std::fflush(stdout);
    }
  }
  std::printf("peak RSS %.0f MiB\n", PeakRssMib());
  return 0;
}
