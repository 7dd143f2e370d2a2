#include "sched/queues.h"

#include <fmt/format.h>

#include <algorithm>

#include "sched/describe.h"

namespace lathe::sched {
namespace {

constexpr int kDims = 3;
constexpr const char* kDimNames[kDims] = {"cpu", "memory", "gpu"};

int64_t& Dim(Resources& r, int d) {
  return d == 0 ? r.cpu_milli : d == 1 ? r.memory_mib : r.gpu_milli;
}
int64_t Dim(const Resources& r, int d) {
  return d == 0 ? r.cpu_milli : d == 1 ? r.memory_mib : r.gpu_milli;
}

Resources Max0(Resources r) {
  for (int d = 0; d < kDims; ++d) Dim(r, d) = std::max<int64_t>(0, Dim(r, d));
  return r;
}

Resources Min(const Resources& a, const Resources& b) {
  return {std::min(a.cpu_milli, b.cpu_milli), std::min(a.memory_mib, b.memory_mib),
          std::min(a.gpu_milli, b.gpu_milli)};
}

Resources Max(const Resources& a, const Resources& b) {
  return {std::max(a.cpu_milli, b.cpu_milli), std::max(a.memory_mib, b.memory_mib),
          std::max(a.gpu_milli, b.gpu_milli)};
}

Resources JobRequest(const Job& job) {
  Resources r;
  for (const TaskGroup& g : job.groups) r += g.request * g.count;
  return r;
}

}  // namespace

QueueTree::QueueTree(const Snapshot& snapshot, const Resources& total) : total_(total) {
  queues_.resize(snapshot.queues.size());
  for (size_t i = 0; i < snapshot.queues.size(); ++i) {
    queues_[i].spec = &snapshot.queues[i];
    names_.emplace_back(snapshot.queues[i].name, static_cast<int>(i));
  }
  std::sort(names_.begin(), names_.end());
  for (size_t i = 0; i < queues_.size(); ++i) {
    int p = queues_[i].spec->parent.empty() ? -1 : Index(queues_[i].spec->parent);
    queues_[i].parent = p;
    if (p >= 0) {
      queues_[p].children.push_back(static_cast<int>(i));
    } else {
      top_.push_back(static_cast<int>(i));
    }
  }
  for (const RunningJob& rj : snapshot.running) {
    int q = Index(rj.job.queue);
    if (q < 0) continue;
    Resources used;
    for (const TaskPlacement& tp : rj.tasks) {
      if (tp.group >= 0 && tp.group < static_cast<int>(rj.job.groups.size())) {
        used += rj.job.groups[tp.group].request;
      }
    }
    Allocate(q, used, +1);
  }
  for (const Job& job : snapshot.pending) {
    int q = Index(job.queue);
    for (; q >= 0; q = queues_[q].parent) queues_[q].pending += JobRequest(job);
  }
  for (Entry& e : queues_) e.demand = e.allocated + e.pending;
  ComputeDeserved(top_, total_);
}

int QueueTree::Index(const std::string& name) const {
  auto it = std::lower_bound(names_.begin(), names_.end(), std::make_pair(name, -1));
  if (it == names_.end() || it->first != name) return -1;
  return it->second;
}

// Weighted water-filling per dimension (Volcano proportion, with capacity's
// guarantee floor): everyone starts at its guarantee; what is left of the
// parent's share is handed out in rounds in proportion to weight among the
// children still below their cap, until it is gone or everyone is capped.
void QueueTree::ComputeDeserved(const std::vector<int>& siblings,
                                const Resources& parent_deserved) {
  if (siblings.empty()) return;
  for (int d = 0; d < kDims; ++d) {
    int64_t remaining = Dim(parent_deserved, d);
    std::vector<int64_t> cap(siblings.size());
    for (size_t i = 0; i < siblings.size(); ++i) {
      Entry& e = queues_[siblings[i]];
      int64_t g = Dim(e.spec->guarantee, d);
      cap[i] = std::max(g, std::min(Dim(e.spec->ceiling.value, d), Dim(e.demand, d)));
      Dim(e.deserved, d) = g;
      remaining -= g;
    }
    while (remaining > 0) {
      int64_t weights = 0;
      for (size_t i = 0; i < siblings.size(); ++i) {
        if (Dim(queues_[siblings[i]].deserved, d) < cap[i]) weights += queues_[siblings[i]].spec->weight;
      }
      if (weights == 0) break;
      int64_t handed = 0;
      for (size_t i = 0; i < siblings.size(); ++i) {
        Entry& e = queues_[siblings[i]];
        int64_t& des = Dim(e.deserved, d);
        if (des >= cap[i]) continue;
        // Round up so that small remainders still flow; capped by the cap.
        int64_t add = (remaining * e.spec->weight + weights - 1) / weights;
        add = std::min({add, cap[i] - des, remaining - handed});
        des += add;
        handed += add;
      }
      if (handed == 0) break;
      remaining -= handed;
    }
  }
  for (int q : siblings) ComputeDeserved(queues_[q].children, queues_[q].deserved);
}

double QueueTree::Share(int q) const {
  const Entry& e = queues_[q];
  double share = 0;
  for (int d = 0; d < kDims; ++d) {
    int64_t alloc = Dim(e.allocated, d);
    if (alloc <= 0) continue;
    int64_t base = Dim(e.deserved, d) > 0 ? Dim(e.deserved, d) : Dim(total_, d);
    if (base <= 0) continue;
    share = std::max(share, static_cast<double>(alloc) / static_cast<double>(base));
  }
  return share;
}

void QueueTree::Allocate(int q, const Resources& r, int sign) {
  for (; q >= 0; q = queues_[q].parent) {
    if (sign > 0) {
      queues_[q].allocated += r;
    } else {
      queues_[q].allocated -= r;
    }
  }
}

void QueueTree::SettlePending(int q, const Resources& r) {
  for (; q >= 0; q = queues_[q].parent) queues_[q].pending = Max0(queues_[q].pending - r);
}

Resources QueueTree::UnusedGuarantee(int q) const {
  return Max0(queues_[q].spec->guarantee - queues_[q].allocated);
}

Resources QueueTree::Reserve(int q) const {
  const Entry& e = queues_[q];
  Resources own = Max0(Min(e.spec->guarantee, e.allocated + e.pending) - e.allocated);
  Resources kids;
  for (int c : e.children) kids += Reserve(c);
  return Max(own, kids);
}

std::string QueueTree::CheckCeiling(int q, const Resources& r) const {
  for (int x = q; x >= 0; x = queues_[x].parent) {
    const Resources& ceiling = queues_[x].spec->ceiling.value;
    if (!r.FitsIn(ceiling)) {
      return fmt::format("job needs {} but queue {}'s ceiling is {} for {}", DescribeResources(r),
                         name(x), DescribeResources(Min(ceiling, Max(r, total_))),
                         ExceedingDimensions(r, ceiling));
    }
    if (!(queues_[x].allocated + r).FitsIn(ceiling)) {
      std::string who = x == q ? fmt::format("queue {}", name(x))
                               : fmt::format("queue {} (parent of {})", name(x), name(q));
      return fmt::format("{} at its ceiling for {}", who,
                         ExceedingDimensions(queues_[x].allocated + r, ceiling));
    }
  }
  return "";
}

std::string QueueTree::CheckAllocatable(int q, const Resources& r) const {
  std::string why = CheckCeiling(q, r);
  if (!why.empty()) return why;
  // Guarantee protection: the reserves of the siblings of q and of each of
  // its ancestors are not for q.
  Resources reserved;
  std::vector<std::string> holders;
  for (int x = q; x >= 0; x = queues_[x].parent) {
    const std::vector<int>& sibs = queues_[x].parent >= 0 ? queues_[queues_[x].parent].children : top_;
    for (int s : sibs) {
      if (s == x) continue;
      Resources res = Reserve(s);
      if (res.IsZero()) continue;
      reserved += res;
      holders.push_back(name(s));
    }
  }
  if (holders.empty()) return "";
  Resources used;
  for (int t : top_) used += queues_[t].allocated;
  Resources usable = Max0(total_ - used - reserved);
  for (int d = 0; d < kDims; ++d) {
    if (Dim(r, d) > 0 && Dim(r, d) > Dim(usable, d)) {
      std::sort(holders.begin(), holders.end());
      return fmt::format("the free {} is held for the guarantees of queue{} {}", kDimNames[d],
                         holders.size() > 1 ? "s" : "", fmt::join(holders, ", "));
    }
  }
  return "";
}

}  // namespace lathe::sched
