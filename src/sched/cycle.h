// Cycle: the state and steps of one scheduling cycle (internal to
// src/sched; Schedule() in scheduler.h is the interface). scheduler.cc holds
// the allocation pass, evict.cc preemption and reclaim, backfill.cc the
// reservations of EASY backfill.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sched/cluster_state.h"
#include "sched/model.h"
#include "sched/policy.h"
#include "sched/queues.h"
#include "sched/scorer.h"
#include "sched/statement.h"

namespace lathe::sched::internal {

struct Eligibility {
  std::vector<PositionRange> ranges;
  std::string where;   // "" or " on nodes with label x=y", for reasons
  std::string reason;  // why no node at all, when ranges is empty
  std::string excluded;  // "; 1 node excluded by taint k=v:NoSchedule", for reasons
  // Requests that found no fitting node, with the reason (see
  // eligibility_): [0] with every node, [1] without the reserved nodes.
  std::vector<std::pair<Resources, std::string>> failures[2];
};

struct JobEntry {
  const Job* job = nullptr;
  int queue = -1;
  Resources total;  // all tasks
  Resources gang;   // the first GangSize() tasks
  double priority = 0;  // effective, with aging
  double size = 0;      // dominant share of the cluster, for largest_first
};

class Cycle {
 public:
  // Both must outlive the cycle.
  Cycle(const Snapshot& snapshot, const Policy& policy);

  Plan Run();

 private:
  void BuildJobs();
  int PickQueue();
  // Tries to bind e. True if e got no bind for want of free resources (not
  // a queue limit or its constraints): the job that blocks later ones
  // under Policy::head_blocks and the one that gets an EASY reservation.
  bool Allocate(JobEntry& e);
  // Strict order (Policy::head_blocks): pends every job not yet tried of
  // queue q (of every queue with queue_order kFifo) behind `head`.
  void BlockBehind(const JobEntry& head, int q);
  // Places one task; false (with *why for the first task of a job) if no
  // node fits.
  bool PlaceTask(const JobEntry& e, Eligibility& el, const Resources& req, bool first,
                 Statement& st, TaskPlacement* out, std::string* why);
  // Places tasks of e (group order) into st, at most max_tasks, skipping
  // the rest of a group once one of its tasks does not fit; appends them to
  // *bind and returns how many were placed. *first_failure gets the reason
  // of the first task that did not place.
  int PlaceTasks(const JobEntry& e, Eligibility& el, Statement& st, Bind* bind,
                 std::string* first_failure, int max_tasks = INT32_MAX);
  Eligibility& EligibilityOf(const Job& job);

  // evict.cc: preemption (within a queue) and reclaim (across queues) for
  // the jobs that got no bind, in the order they were tried.
  void Evict();
  // Evicts running jobs for e if that makes e's gang fit; true if it did.
  bool TryEvict(const JobEntry& e, bool reclaim, size_t pending_index);
  // Whether pending e may preempt running job r of its own queue.
  bool Outranks(const JobEntry& e, const RunningJob& r) const;
  // backfill.cc: EASY backfill. Computes the reservation of e (the first
  // job that could not be placed for want of free resources): the earliest
  // time, by the runtime estimates of running and just-bound jobs, at which
  // its gang fits, and the nodes it would take then.
  void Reserve(const JobEntry& e, Eligibility& el, size_t pending_index);
  // Whether job e may use the reserved nodes: it ends, by its estimate,
  // before the reservation starts.
  bool MayUseReservedNodes(const JobEntry& e) const;

  // Whether r has a task on a node that e may use.
  bool Touches(const Eligibility& el, const RunningJob& r) const;
  // Releases (sign -1) or re-takes (+1) running job r's resources.
  void MoveRunning(int r, int sign);
  std::string Diagnose(const Eligibility& el, const Resources& req) const;
  void Pend(const JobEntry& e, std::string reason) {
    plan_.pending.push_back({e.job->id, std::move(reason)});
    failed_.push_back({&e, plan_.pending.size() - 1});
  }

  const Snapshot& snapshot_;
  const Policy& policy_;
  ClusterState state_;
  QueueTree queues_;
  std::unique_ptr<Scorer> scorer_;
  int candidate_limit_ = 1;
  int rotate_ = 0;  // next start position for rotating scorers
  // False once resources can be freed (eviction), see eligibility_.
  bool remember_failures_ = true;
  std::vector<bool> evicted_;  // per snapshot_.running index
  // Jobs bound this cycle, with their index in plan_.binds (for backfill).
  std::vector<std::pair<const JobEntry*, size_t>> bound_;
  // The EASY reservation, once made: its job, start, and per node whether
  // it is reserved; exclude_ points at reserved_ while a job that may not
  // use reserved nodes is being placed.
  const JobEntry* reserved_for_ = nullptr;
  int64_t reserved_start_ = 0;
  std::vector<char> reserved_;
  const std::vector<char>* exclude_ = nullptr;
  std::vector<int> running_queue_;

  std::vector<JobEntry> jobs_;
  // Per queue: its pending jobs in job order and the next one to try.
  std::vector<std::vector<JobEntry*>> queue_jobs_;
  std::vector<size_t> cursor_;
  std::vector<int> active_;  // queues in the subtree with jobs left

  // Static eligibility per constraint signature. Within a cycle free
  // resources only shrink (except when a Statement is discarded, which
  // restores an earlier state), so a request that found no node for the
  // first task of a job stays unplaceable, and so does any request at least
  // as large in every dimension: failures are remembered per eligibility and
  // answered without a search.
  std::unordered_map<std::string, Eligibility> eligibility_;
  std::vector<int> fitting_;
  // Jobs that did not get a bind, with their index in plan_.pending.
  std::vector<std::pair<const JobEntry*, size_t>> failed_;
  Plan plan_;
};

}  // namespace lathe::sched::internal
