// Golden scheduling scenarios: a declarative YAML file (cluster, queues,
// running and pending jobs, a policy) and the plan it must produce. Test
// support only (it reads files; src/sched itself does no I/O). The format
// is described in testdata/README.md.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "sched/model.h"
#include "sched/policy.h"

namespace lathe::sched {

struct ScenarioExpect {
  // job id -> node per task in (group, index) order; "*" matches any node.
  // A job absent here must not be bound, unless any_other_binds.
  std::map<std::string, std::vector<std::string>> binds;
  // job id -> GPU indices per task (optional, only for listed jobs).
  std::map<std::string, std::vector<std::vector<int>>> bind_gpus;
  // Jobs that must be bound, anywhere.
  std::vector<std::string> bound;
  bool any_other_binds = false;
  // job id -> substring of its pending reason.
  std::map<std::string, std::string> pending;
  // (victim, for) pairs, exactly; checked only when `preemptions` is given.
  std::optional<std::vector<std::pair<std::string, std::string>>> preemptions;
  // job id -> nodes of its reservation (any order) and expected start.
  struct ReservationExpect {
    std::vector<std::string> nodes;
    std::optional<int64_t> start;
  };
  std::optional<std::map<std::string, ReservationExpect>> reservations;
};

struct Scenario {
  std::string description;
  Snapshot snapshot;
  Policy policy;
  ScenarioExpect expect;
};

// Parses a scenario; INVALID_ARGUMENT naming the field on bad input.
StatusOr<Scenario> ParseScenario(std::string_view yaml);

// The differences between `plan` and `expect`, one line each; empty if the
// plan matches.
std::vector<std::string> CheckScenario(const Scenario& scenario, const Plan& plan);

// The invariants every plan keeps (scheduler.h), one line per violation:
// over-committed nodes and GPUs, partial gangs, exceeded ceilings, jobs
// without a bind and without a reason, unknown or twice-bound jobs.
std::vector<std::string> CheckPlanInvariants(const Snapshot& snapshot, const Policy& policy,
                                             const Plan& plan);

}  // namespace lathe::sched
