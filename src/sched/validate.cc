// ValidateSnapshot: every rule the scheduler relies on, with the field named.
#include <fmt/format.h>

#include <map>
#include <set>
#include <string>

#include "sched/scheduler.h"

namespace lathe::sched {
namespace {

Status Invalid(const std::string& field, const std::string& message) {
  return InvalidArgumentError(fmt::format("{}: {}", field, message), field);
}

Status CheckNonNegative(const Resources& r, const std::string& field) {
  if (r.cpu_milli < 0) return Invalid(field + ".cpu_milli", "must not be negative");
  if (r.memory_mib < 0) return Invalid(field + ".memory_mib", "must not be negative");
  if (r.gpu_milli < 0) return Invalid(field + ".gpu_milli", "must not be negative");
  return OkStatus();
}

Status CheckToleration(const Toleration& t, const std::string& field) {
  if (t.op != "Equal" && t.op != "Exists") {
    return Invalid(field + ".op", fmt::format("must be Equal or Exists, got \"{}\"", t.op));
  }
  if (t.op == "Equal" && t.key.empty()) {
    return Invalid(field + ".key", "an Equal toleration needs a key");
  }
  return OkStatus();
}

// The job fields shared by pending and running jobs.
Status CheckJob(const Job& job, const std::string& field,
                const std::map<std::string, int>& queue_index,
                const std::set<std::string>& parents) {
  if (job.id.empty()) return Invalid(field + ".id", "must not be empty");
  auto q = queue_index.find(job.queue);
  if (q == queue_index.end()) {
    return Invalid(field + ".queue", fmt::format("unknown queue \"{}\"", job.queue));
  }
  if (parents.count(job.queue) > 0) {
    return Invalid(field + ".queue",
                   fmt::format("queue \"{}\" has child queues; jobs go to leaf queues", job.queue));
  }
  if (job.groups.empty()) return Invalid(field + ".groups", "a job needs at least one task group");
  for (size_t g = 0; g < job.groups.size(); ++g) {
    const TaskGroup& tg = job.groups[g];
    std::string gf = fmt::format("{}.groups[{}]", field, g);
    if (tg.count < 1) return Invalid(gf + ".count", "must be at least 1");
    RETURN_IF_ERROR(CheckNonNegative(tg.request, gf + ".request"));
    int64_t gpu = tg.request.gpu_milli;
    if (gpu >= 1000 && gpu % 1000 != 0) {
      return Invalid(gf + ".request.gpu_milli",
                     fmt::format("{} is neither a fraction of one GPU (< 1000) nor whole GPUs "
                                 "(a multiple of 1000)",
                                 gpu));
    }
  }
  if (job.min_available < 0) return Invalid(field + ".min_available", "must not be negative");
  if (job.min_available > job.TotalTasks()) {
    return Invalid(field + ".min_available",
                   fmt::format("{} is more than the job's {} tasks", job.min_available,
                               job.TotalTasks()));
  }
  if (job.runtime_estimate && *job.runtime_estimate < 0) {
    return Invalid(field + ".runtime_estimate", "must not be negative");
  }
  if (job.attained_gpu_seconds < 0) {
    return Invalid(field + ".attained_gpu_seconds", "must not be negative");
  }
  for (size_t t = 0; t < job.tolerations.size(); ++t) {
    RETURN_IF_ERROR(CheckToleration(job.tolerations[t], fmt::format("{}.tolerations[{}]", field, t)));
  }
  return OkStatus();
}

}  // namespace

Status ValidateSnapshot(const Snapshot& s) {
  // Nodes.
  std::map<std::string, int> node_index;
  for (size_t i = 0; i < s.nodes.size(); ++i) {
    const Node& n = s.nodes[i];
    std::string f = fmt::format("nodes[{}]", i);
    if (n.name.empty()) return Invalid(f + ".name", "must not be empty");
    if (!node_index.emplace(n.name, static_cast<int>(i)).second) {
      return Invalid(f + ".name", fmt::format("duplicate node name \"{}\"", n.name));
    }
    RETURN_IF_ERROR(CheckNonNegative(n.capacity, f + ".capacity"));
    if (n.num_gpus < 0) return Invalid(f + ".num_gpus", "must not be negative");
    if (n.capacity.gpu_milli != int64_t{1000} * n.num_gpus) {
      return Invalid(f + ".capacity.gpu_milli",
                     fmt::format("{} is not 1000 × num_gpus ({})", n.capacity.gpu_milli,
                                 n.num_gpus));
    }
    for (size_t t = 0; t < n.taints.size(); ++t) {
      if (n.taints[t].key.empty()) {
        return Invalid(fmt::format("{}.taints[{}].key", f, t), "must not be empty");
      }
    }
  }

  // Queues: unique names, known parents, no cycles, sane limits.
  std::map<std::string, int> queue_index;
  std::set<std::string> parents;
  for (size_t i = 0; i < s.queues.size(); ++i) {
    const Queue& q = s.queues[i];
    std::string f = fmt::format("queues[{}]", i);
    if (q.name.empty()) return Invalid(f + ".name", "must not be empty");
    if (!queue_index.emplace(q.name, static_cast<int>(i)).second) {
      return Invalid(f + ".name", fmt::format("duplicate queue name \"{}\"", q.name));
    }
    RETURN_IF_ERROR(CheckNonNegative(q.guarantee, f + ".guarantee"));
    RETURN_IF_ERROR(CheckNonNegative(q.ceiling.value, f + ".ceiling"));
    if (q.weight < 1) return Invalid(f + ".weight", "must be at least 1");
    if (!q.guarantee.FitsIn(q.ceiling.value)) {
      return Invalid(f + ".guarantee", "must not exceed the ceiling");
    }
  }
  for (size_t i = 0; i < s.queues.size(); ++i) {
    const Queue& q = s.queues[i];
    if (q.parent.empty()) continue;
    std::string f = fmt::format("queues[{}].parent", i);
    if (queue_index.count(q.parent) == 0) {
      return Invalid(f, fmt::format("unknown parent queue \"{}\"", q.parent));
    }
    parents.insert(q.parent);
    // Walk up; more steps than queues means a cycle.
    std::string cur = q.parent;
    for (size_t steps = 0; !cur.empty(); ++steps) {
      if (steps > s.queues.size() || cur == q.name) {
        return Invalid(f, fmt::format("queue \"{}\" is its own ancestor (a cycle)", q.name));
      }
      cur = s.queues[queue_index[cur]].parent;
    }
  }

  // Jobs: unique ids across pending and running.
  std::set<std::string> ids;
  for (size_t i = 0; i < s.pending.size(); ++i) {
    std::string f = fmt::format("pending[{}]", i);
    RETURN_IF_ERROR(CheckJob(s.pending[i], f, queue_index, parents));
    if (!ids.insert(s.pending[i].id).second) {
      return Invalid(f + ".id", fmt::format("duplicate job id \"{}\"", s.pending[i].id));
    }
  }

  // Running jobs: placements on known nodes within capacity.
  struct Used {
    Resources r;
    std::vector<int64_t> gpu;
  };
  std::vector<Used> used(s.nodes.size());
  for (size_t i = 0; i < s.nodes.size(); ++i) used[i].gpu.assign(s.nodes[i].num_gpus, 0);
  for (size_t i = 0; i < s.running.size(); ++i) {
    const RunningJob& rj = s.running[i];
    std::string f = fmt::format("running[{}]", i);
    RETURN_IF_ERROR(CheckJob(rj.job, f + ".job", queue_index, parents));
    if (!ids.insert(rj.job.id).second) {
      return Invalid(f + ".job.id", fmt::format("duplicate job id \"{}\"", rj.job.id));
    }
    std::set<std::pair<int, int>> seen_tasks;
    for (size_t t = 0; t < rj.tasks.size(); ++t) {
      const TaskPlacement& tp = rj.tasks[t];
      std::string tf = fmt::format("{}.tasks[{}]", f, t);
      if (tp.group < 0 || tp.group >= static_cast<int>(rj.job.groups.size())) {
        return Invalid(tf + ".group", fmt::format("no task group {}", tp.group));
      }
      const TaskGroup& g = rj.job.groups[tp.group];
      if (tp.index < 0 || tp.index >= g.count) {
        return Invalid(tf + ".index", fmt::format("group {} has {} tasks", g.name, g.count));
      }
      if (!seen_tasks.insert({tp.group, tp.index}).second) {
        return Invalid(tf + ".index", "task placed twice");
      }
      auto n = node_index.find(tp.node);
      if (n == node_index.end()) {
        return Invalid(tf + ".node", fmt::format("unknown node \"{}\"", tp.node));
      }
      const Node& node = s.nodes[n->second];
      Used& u = used[n->second];
      u.r += Resources{g.request.cpu_milli, g.request.memory_mib, 0};
      int64_t gpu_total = 0;
      for (size_t k = 0; k < tp.gpus.size(); ++k) {
        const GpuShare& sh = tp.gpus[k];
        std::string sf = fmt::format("{}.gpus[{}]", tf, k);
        if (sh.index < 0 || sh.index >= node.num_gpus) {
          return Invalid(sf + ".index",
                         fmt::format("node {} has {} GPUs", node.name, node.num_gpus));
        }
        if (sh.milli <= 0 || sh.milli > 1000) return Invalid(sf + ".milli", "must be in 1..1000");
        u.gpu[sh.index] += sh.milli;
        gpu_total += sh.milli;
        if (u.gpu[sh.index] > 1000) {
          return Invalid(sf + ".milli", fmt::format("GPU {} of node {} is over-committed",
                                                    sh.index, node.name));
        }
      }
      if (gpu_total != g.request.gpu_milli) {
        return Invalid(tf + ".gpus", fmt::format("shares sum to {} milli-GPU, the task asks {}",
                                                 gpu_total, g.request.gpu_milli));
      }
      if (g.request.gpu_milli >= 1000) {
        for (size_t k = 0; k < tp.gpus.size(); ++k) {
          if (tp.gpus[k].milli != 1000) {
            return Invalid(fmt::format("{}.gpus[{}].milli", tf, k),
                           "a whole-GPU task takes 1000 of each GPU");
          }
        }
      } else if (g.request.gpu_milli > 0 && tp.gpus.size() != 1) {
        return Invalid(tf + ".gpus", "a fractional GPU task uses exactly one GPU");
      }
      if (u.r.cpu_milli > node.capacity.cpu_milli || u.r.memory_mib > node.capacity.memory_mib) {
        return Invalid(tf + ".node",
                       fmt::format("node {} is over-committed by its running tasks", node.name));
      }
    }
  }
  return OkStatus();
}

}  // namespace lathe::sched
