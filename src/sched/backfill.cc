// EASY backfill (Slurm semantics, not Volcano's "backfill" action): the
// first job that cannot be placed for want of free resources gets a
// reservation; later jobs may start only if, by their runtime estimate,
// they end before it starts, or on nodes it does not reserve. README.md
// "Backfill" has the rules.
#include <fmt/format.h>

#include <algorithm>

#include "sched/cycle.h"

namespace lathe::sched::internal {

bool Cycle::MayUseReservedNodes(const JobEntry& e) const {
  const auto& est = e.job->runtime_estimate;
  return est.has_value() && snapshot_.now + *est <= reserved_start_;
}

void Cycle::Reserve(const JobEntry& e, Eligibility& el, size_t pending_index) {
  // Future releases, by estimated end. Jobs without an estimate never end
  // as far as the reservation is concerned.
  struct Release {
    int64_t end;
    bool running;  // else bound this cycle
    size_t index;  // into snapshot_.running or bound_
  };
  std::vector<Release> releases;
  for (size_t r = 0; r < snapshot_.running.size(); ++r) {
    const RunningJob& rj = snapshot_.running[r];
    if (evicted_[r] || !rj.job.runtime_estimate) continue;
    releases.push_back({std::max(snapshot_.now, rj.start_time + *rj.job.runtime_estimate), true, r});
  }
  for (size_t b = 0; b < bound_.size(); ++b) {
    const Job& job = *bound_[b].first->job;
    if (!job.runtime_estimate) continue;
    releases.push_back({snapshot_.now + *job.runtime_estimate, false, b});
  }
  std::stable_sort(releases.begin(), releases.end(),
                   [](const Release& a, const Release& b) { return a.end < b.end; });

  auto move_bound = [&](size_t b, int sign) {
    const JobEntry& be = *bound_[b].first;
    for (const TaskPlacement& tp : plan_.binds[bound_[b].second].tasks) {
      int n = state_.NodeIndex(tp.node);
      const Resources& req = be.job->groups[tp.group].request;
      if (sign < 0) {
        state_.Release(n, req, tp.gpus);
      } else {
        state_.Take(n, req, tp.gpus);
      }
      queues_.Allocate(be.queue, req, sign);
    }
  };

  // Group ends: boundaries[i] = number of releases with end <= the i-th
  // distinct end time.
  std::vector<size_t> boundaries;
  for (size_t i = 0; i < releases.size(); ++i) {
    if (i + 1 == releases.size() || releases[i + 1].end != releases[i].end) boundaries.push_back(i + 1);
  }
  // Moves the look-ahead state to "the first k releases done".
  size_t released = 0;
  auto release_to = [&](size_t k) {
    for (; released < k; ++released) {
      const Release& r = releases[released];
      if (r.running) {
        MoveRunning(static_cast<int>(r.index), -1);
      } else {
        move_bound(r.index, -1);
      }
    }
    for (; released > k; --released) {
      const Release& r = releases[released - 1];
      if (r.running) {
        MoveRunning(static_cast<int>(r.index), +1);
      } else {
        move_bound(r.index, +1);
      }
    }
  };
  const int gang = policy_.gang ? e.job->GangSize() : 1;
  std::vector<std::string> nodes;
  auto fits_after = [&](size_t b) {
    release_to(boundaries[b]);
    Statement st(&state_, &queues_);
    Bind bind;
    std::string why;
    if (PlaceTasks(e, el, st, &bind, &why, gang) < gang) return false;
    nodes.clear();
    for (const TaskPlacement& tp : bind.tasks) nodes.push_back(tp.node);
    return true;  // st discards
  };

  // Freed resources make remembered failures stale while we look ahead.
  const bool remember = remember_failures_;
  remember_failures_ = false;
  // Fitting is monotone in the releases (more free resources), so gallop
  // then bisect: O(log releases) placement attempts instead of one per
  // release, which matters when thousands of jobs were just bound.
  bool found = false;
  size_t lo = 0, hi = 0;  // fits after boundaries[hi]; not after boundaries[lo - 1]
  for (size_t step = 1, b = 0; b < boundaries.size(); step *= 2) {
    if (fits_after(b)) {
      found = true;
      hi = b;
      break;
    }
    lo = b + 1;
    b = std::min(b + step, boundaries.size() - 1);
    if (lo > b) break;
  }
  int64_t start = 0;
  if (found) {
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (fits_after(mid)) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    fits_after(hi);  // the nodes of the earliest fit
    start = releases[boundaries[hi] - 1].end;
  }
  release_to(0);
  remember_failures_ = remember;
  if (!found) return;

  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  reserved_for_ = &e;
  reserved_start_ = start;
  reserved_.assign(state_.num_nodes(), 0);
  for (const std::string& n : nodes) reserved_[state_.NodeIndex(n)] = 1;
  plan_.reservations.push_back({e.job->id, nodes, start});
  plan_.pending[pending_index].reason +=
      fmt::format("; reserved {} from t={} (EASY backfill)", fmt::join(nodes, ", "), start);
}

}  // namespace lathe::sched::internal
