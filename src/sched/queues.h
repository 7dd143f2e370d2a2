// QueueTree: the hierarchical queues of one cycle and their accounting.
//
// Terms (README.md "Queues" has the full rules and the reasons for them):
//  * allocated(q): what q's subtree holds (running jobs + binds so far).
//  * deserved(q): q's fair share, by weighted water-filling among siblings
//    of the parent's deserved share (the root deserves the cluster), each
//    child floored at its guarantee and capped at max(guarantee,
//    min(ceiling, demand)) per dimension; demand = allocated + pending.
//  * ceiling: allocated(x) + request <= ceiling(x) for q and every ancestor
//    x, always.
//  * guarantee protection: reserve(q) = min(guarantee, allocated +
//    unprocessed pending demand) - allocated (>= 0) is kept free for q.
//    A request of q may use the cluster's free resources minus the
//    reserves of every queue that is a sibling of q or of one of q's
//    ancestors. Beyond that a queue may borrow idle resources past its
//    deserved share, up to its ceiling.
//  * share(q) = max over resources of allocated / deserved (allocated /
//    cluster where deserved is 0): the DRF key, lowest first.
// Not thread-safe.
#pragma once

#include <string>
#include <vector>

#include "sched/model.h"

namespace lathe::sched {

class QueueTree {
 public:
  // Precondition: ValidateSnapshot(snapshot).ok(). `total` is the cluster's
  // schedulable capacity. Counts running jobs as allocated and pending jobs
  // (all their tasks) as pending demand, then computes deserved shares.
  QueueTree(const Snapshot& snapshot, const Resources& total);

  int size() const { return static_cast<int>(queues_.size()); }
  // Index of the queue named `name`, or -1.
  int Index(const std::string& name) const;
  const Queue& queue(int q) const { return *queues_[q].spec; }
  const std::string& name(int q) const { return queues_[q].spec->name; }
  int parent(int q) const { return queues_[q].parent; }  // -1 at the top
  const std::vector<int>& children(int q) const { return queues_[q].children; }
  const std::vector<int>& top_level() const { return top_; }

  const Resources& allocated(int q) const { return queues_[q].allocated; }
  const Resources& deserved(int q) const { return queues_[q].deserved; }
  const Resources& demand(int q) const { return queues_[q].demand; }
  const Resources& total() const { return total_; }

  // DRF share of q (see above).
  double Share(int q) const;

  // Adds (sign +1) or removes (-1) `r` to the allocation of q and its
  // ancestors.
  void Allocate(int q, const Resources& r, int sign);
  // The pending demand of q's subtree still to be processed this cycle;
  // Settle removes a job's request once it is bound or given up on.
  void SettlePending(int q, const Resources& r);

  // "" if q may be allocated `r` now; otherwise why not, for people
  // ("queue team-a at its ceiling for gpu", ...).
  std::string CheckAllocatable(int q, const Resources& r) const;
  // The ceiling part of CheckAllocatable only.
  std::string CheckCeiling(int q, const Resources& r) const;

  // What is left of q's guarantee that it is not using (>= 0 per dimension).
  Resources UnusedGuarantee(int q) const;

 private:
  struct Entry {
    const Queue* spec = nullptr;
    int parent = -1;
    std::vector<int> children;
    Resources allocated;
    Resources pending;  // unprocessed pending demand
    Resources demand;   // allocated + pending at the start of the cycle
    Resources deserved;
  };
  void ComputeDeserved(const std::vector<int>& siblings, const Resources& parent_deserved);
  Resources Reserve(int q) const;  // effective reserve of q's subtree

  std::vector<Entry> queues_;
  std::vector<int> top_;
  std::vector<std::pair<std::string, int>> names_;
  Resources total_;
};

}  // namespace lathe::sched
