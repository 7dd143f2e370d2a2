// Statement: tentative placements that are committed or discarded together
// (Volcano's transactional Statement). A gang's tasks are placed one by one
// into a Statement; if fewer than GangSize() place, Discard() returns the
// nodes and the queues to exactly the state before the first placement.
#pragma once

#include <vector>

#include "sched/cluster_state.h"
#include "sched/queues.h"

namespace lathe::sched {

class Statement {
 public:
  // Both must outlive the statement.
  Statement(ClusterState* state, QueueTree* queues) : state_(state), queues_(queues) {}
  ~Statement() { Discard(); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Takes `request` with `gpus` on node n for queue q, tentatively.
  void Place(int n, int q, const Resources& request, const std::vector<GpuShare>& gpus) {
    state_->Take(n, request, gpus);
    queues_->Allocate(q, request, +1);
    ops_.push_back({n, q, request, gpus});
  }
  // Keeps every placement.
  void Commit() { ops_.clear(); }
  // Undoes every placement since construction or the last Commit, newest first.
  void Discard() {
    for (auto it = ops_.rbegin(); it != ops_.rend(); ++it) {
      state_->Release(it->node, it->request, it->gpus);
      queues_->Allocate(it->queue, it->request, -1);
    }
    ops_.clear();
  }
  int size() const { return static_cast<int>(ops_.size()); }

 private:
  struct Op {
    int node;
    int queue;
    Resources request;
    std::vector<GpuShare> gpus;
  };
  ClusterState* state_;
  QueueTree* queues_;
  std::vector<Op> ops_;
};

}  // namespace lathe::sched
