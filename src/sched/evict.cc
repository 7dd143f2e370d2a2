// Preemption and reclaim: after the allocation pass, the jobs that got no
// bind may make room by evicting running jobs. README.md "Preemption and
// reclaim" has the rules; the victims' resources are released in the
// cycle's state and the preemptor's gang is placed there (not bound: it
// starts in a later cycle, once the victims have exited), so two
// preemptors never count on the same freed resources.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "sched/cycle.h"
#include "sched/describe.h"

namespace lathe::sched::internal {
namespace {

// Tiresias-like service bands (GPU-seconds): a job preempts only jobs in a
// higher band, so two jobs with similar service do not evict each other in
// turn.
int LasBand(double attained_gpu_seconds) {
  if (attained_gpu_seconds < 3600) return 0;
  if (attained_gpu_seconds < 36000) return 1;
  return 2;
}

Resources RunningUsage(const RunningJob& r) {
  Resources used;
  for (const TaskPlacement& tp : r.tasks) used += r.job.groups[tp.group].request;
  return used;
}

}  // namespace

bool Cycle::Outranks(const JobEntry& e, const RunningJob& r) const {
  if (policy_.job_order == JobOrder::kLeastAttained) {
    double gpus = static_cast<double>(RunningUsage(r).gpu_milli) / 1000.0;
    double attained = static_cast<double>(r.job.attained_gpu_seconds) +
                      gpus * static_cast<double>(std::max<int64_t>(0, snapshot_.now - r.start_time));
    return LasBand(static_cast<double>(e.job->attained_gpu_seconds)) < LasBand(attained);
  }
  // Static priorities: aging orders the queue, it does not entitle a job
  // to evict others.
  return e.job->priority > r.job.priority;
}

bool Cycle::Touches(const Eligibility& el, const RunningJob& r) const {
  for (const TaskPlacement& tp : r.tasks) {
    int n = state_.NodeIndex(tp.node);
    if (n < 0) continue;
    int p = state_.position_of(n);
    for (const PositionRange& range : el.ranges) {
      if (p >= range.lo && p < range.hi) return true;
    }
  }
  return false;
}

void Cycle::MoveRunning(int r, int sign) {
  const RunningJob& rj = snapshot_.running[r];
  for (const TaskPlacement& tp : rj.tasks) {
    int n = state_.NodeIndex(tp.node);
    const Resources& req = rj.job.groups[tp.group].request;
    if (sign < 0) {
      state_.Release(n, req, tp.gpus);
    } else {
      state_.Take(n, req, tp.gpus);
    }
  }
  queues_.Allocate(running_queue_[r], RunningUsage(rj), sign);
}

bool Cycle::TryEvict(const JobEntry& e, bool reclaim, size_t pending_index) {
  const Job& job = *e.job;
  Eligibility& el = EligibilityOf(job);
  if (el.ranges.empty()) return false;
  if (!queues_.CheckCeiling(e.queue, e.gang).empty() && reclaim) return false;
  if (reclaim) {
    // Only a queue below its deserved share (or guarantee) reclaims.
    const Resources& alloc = queues_.allocated(e.queue);
    const Resources& des = queues_.deserved(e.queue);
    const Resources& guar = queues_.queue(e.queue).guarantee;
    Resources after = alloc + e.gang;
    auto within = [](int64_t req, int64_t a, int64_t d, int64_t g) {
      return req <= 0 || a <= std::max(d, g);
    };
    if (!within(e.gang.cpu_milli, after.cpu_milli, des.cpu_milli, guar.cpu_milli) ||
        !within(e.gang.memory_mib, after.memory_mib, des.memory_mib, guar.memory_mib) ||
        !within(e.gang.gpu_milli, after.gpu_milli, des.gpu_milli, guar.gpu_milli)) {
      return false;
    }
  }

  // Candidates, cheapest lost work first: elapsed run time × dominant share.
  const Resources& total = state_.total();
  auto dominant = [&](const Resources& r) {
    auto f = [](int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / b : 0.0; };
    return std::max({f(r.cpu_milli, total.cpu_milli), f(r.memory_mib, total.memory_mib),
                     f(r.gpu_milli, total.gpu_milli)});
  };
  struct Victim {
    int index;
    int64_t priority;
    double lost;
  };
  std::vector<Victim> victims;
  for (size_t r = 0; r < snapshot_.running.size(); ++r) {
    const RunningJob& rj = snapshot_.running[r];
    if (evicted_[r] || !rj.job.preemptible || running_queue_[r] < 0) continue;
    int vq = running_queue_[r];
    if (reclaim) {
      if (vq == e.queue) continue;
      bool reclaimable = true;
      for (int x = vq; x >= 0; x = queues_.parent(x)) reclaimable &= queues_.queue(x).reclaimable;
      if (!reclaimable) continue;
    } else {
      if (vq != e.queue || !Outranks(e, rj)) continue;
    }
    if (!Touches(el, rj)) continue;
    double elapsed = static_cast<double>(std::max<int64_t>(1, snapshot_.now - rj.start_time));
    victims.push_back({static_cast<int>(r), rj.job.priority, elapsed * dominant(RunningUsage(rj))});
  }
  std::sort(victims.begin(), victims.end(), [&](const Victim& a, const Victim& b) {
    if (!reclaim && a.priority != b.priority) return a.priority < b.priority;
    if (a.lost != b.lost) return a.lost < b.lost;
    return snapshot_.running[a.index].job.id < snapshot_.running[b.index].job.id;
  });

  // The preemptor needs room for its gang; more tasks may start later.
  const int hold = policy_.gang ? job.GangSize() : 1;
  auto fits = [&]() {
    if (!queues_.CheckAllocatable(e.queue, e.gang).empty()) return false;
    Statement st(&state_, &queues_);
    Bind bind;
    std::string why;
    int placed = PlaceTasks(e, el, st, &bind, &why, hold);
    return placed >= hold;  // st discards
  };

  std::vector<int> chosen;
  bool ok = false;
  for (const Victim& v : victims) {
    const RunningJob& rj = snapshot_.running[v.index];
    if (reclaim) {
      // The victim's queue must still be over its deserved share in a
      // resource the victim holds, and must not drop below its guarantee.
      int vq = running_queue_[v.index];
      Resources use = RunningUsage(rj);
      const Resources& a = queues_.allocated(vq);
      const Resources& d = queues_.deserved(vq);
      const Resources& g = queues_.queue(vq).guarantee;
      bool over = (use.cpu_milli > 0 && a.cpu_milli > d.cpu_milli) ||
                  (use.memory_mib > 0 && a.memory_mib > d.memory_mib) ||
                  (use.gpu_milli > 0 && a.gpu_milli > d.gpu_milli);
      bool keeps_guarantee = (use.cpu_milli == 0 || a.cpu_milli - use.cpu_milli >= g.cpu_milli) &&
                             (use.memory_mib == 0 || a.memory_mib - use.memory_mib >= g.memory_mib) &&
                             (use.gpu_milli == 0 || a.gpu_milli - use.gpu_milli >= g.gpu_milli);
      if (!over || !keeps_guarantee) continue;
    }
    MoveRunning(v.index, -1);
    chosen.push_back(v.index);
    // Cheap test first: the cluster's free total must hold the gang.
    Resources used;
    for (int t : queues_.top_level()) used += queues_.allocated(t);
    if (!e.gang.FitsIn(state_.total() - used)) continue;
    if (fits()) {
      ok = true;
      break;
    }
  }
  if (!ok) {
    for (auto it = chosen.rbegin(); it != chosen.rend(); ++it) MoveRunning(*it, +1);
    return false;
  }
  // Reverse pass: give back every victim the preemptor can do without.
  for (int i = static_cast<int>(chosen.size()) - 2; i >= 0; --i) {
    MoveRunning(chosen[i], +1);
    if (fits()) {
      chosen.erase(chosen.begin() + i);
    } else {
      MoveRunning(chosen[i], -1);
    }
  }
  // Hold the room for the preemptor: its gang stays placed in the cycle's
  // state so that later preemptors do not count on the same resources.
  {
    Statement st(&state_, &queues_);
    Bind bind;
    std::string why;
    PlaceTasks(e, el, st, &bind, &why, hold);
    st.Commit();
  }
  std::vector<std::string> names;
  for (int r : chosen) {
    evicted_[r] = true;
    const RunningJob& rj = snapshot_.running[r];
    names.push_back(rj.job.id);
    std::string reason =
        reclaim ? fmt::format("reclaimed by queue {} (below its deserved share) for job {}; queue {} "
                              "is over its deserved share",
                              queues_.name(e.queue), job.id, rj.job.queue)
                : fmt::format("preempted in queue {} by higher-priority job {}", rj.job.queue, job.id);
    plan_.preemptions.push_back({rj.job.id, job.id, reason});
  }
  plan_.pending[pending_index].reason =
      fmt::format("waiting for {} preempted job{} to exit ({})", chosen.size(),
                  chosen.size() == 1 ? "" : "s", fmt::join(names, ", "));
  return true;
}

void Cycle::Evict() {
  // Freed resources make remembered failures stale.
  remember_failures_ = false;
  for (const auto& [e, index] : failed_) {
    if (policy_.preempt && TryEvict(*e, /*reclaim=*/false, index)) continue;
    if (policy_.reclaim) TryEvict(*e, /*reclaim=*/true, index);
  }
}

}  // namespace lathe::sched::internal
