// The named policies of `lathe sim --policies` and the server default.
#include "sched/policy.h"

#include <fmt/format.h>

#include "sched/scorer.h"

namespace lathe::sched {
namespace {

// DRF between queues, priority inside a queue: the base of most policies.
Policy DrfWith(std::string name, std::string scorer) {
  Policy p;
  p.name = std::move(name);
  p.queue_order = QueueOrder::kDrf;
  p.job_order = JobOrder::kPriority;
  p.scorer = std::move(scorer);
  return p;
}

}  // namespace

StatusOr<Policy> NamedPolicy(const std::string& name) {
  if (name == "fifo") {
    Policy p = DrfWith("fifo", "binpack");
    p.queue_order = QueueOrder::kFifo;
    p.job_order = JobOrder::kFifo;
    return p;
  }
  if (name == "drf") return DrfWith("drf", "binpack");
  if (name == "sjf") {
    Policy p = DrfWith("sjf", "binpack");
    p.job_order = JobOrder::kShortestFirst;
    return p;
  }
  if (name == "las") {
    // Tiresias-like: least attained service first, and a job that has had
    // less service preempts one that has had more (within its queue).
    Policy p = DrfWith("las", "binpack");
    p.job_order = JobOrder::kLeastAttained;
    p.preempt = true;
    return p;
  }
  if (name == "lathe") {
    // The production default. See README.md "The default policy".
    Policy p = DrfWith("lathe", kLatheDefaultScorer);
    p.aging_per_hour = 1;
    p.largest_first = true;
    p.gang = true;
    p.preempt = true;
    p.reclaim = true;
    p.backfill = true;
    return p;
  }
  for (const std::string& s : ScorerNames()) {
    if (s == name) return DrfWith(name, s);
  }
  return NotFoundError(fmt::format("no scheduling policy named \"{}\" (known: {})", name,
                                   fmt::join(NamedPolicyNames(), ", ")));
}

std::vector<std::string> NamedPolicyNames() {
  return {"fifo",       "drf",         "binpack",        "spread", "fgd",
          "random",     "bestfit",     "dotproduct",     "gpu-packing",
          "gpu-clustering", "sjf",     "las",            "lathe"};
}

}  // namespace lathe::sched
