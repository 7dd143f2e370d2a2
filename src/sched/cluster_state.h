// ClusterState: the mutable view of the nodes during one scheduling cycle.
//
// Built from a Snapshot (capacity minus the running placements), then changed
// by Take/Release as the cycle tentatively places tasks (see statement.h for
// the transactional wrapper). It also keeps the two indexes that make a cycle
// on 10,000 nodes cheap:
//
//  * node groups: nodes with the same static attributes (pool, GPU model,
//    labels, taints, schedulable) form one group and lie in one contiguous
//    range of "positions"; predicates are evaluated once per group, not per
//    node;
//  * a max-tree over positions holding, per subtree, the component-wise
//    maximum of (free cpu, free memory, largest free share of one GPU, number
//    of wholly free GPUs). FindFitting walks it and skips every subtree in
//    which no node can hold the request, so finding k fitting nodes costs
//    about k·log(N) instead of a scan of all N nodes.
//
// Not thread-safe; one per cycle.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sched/model.h"

namespace lathe::sched {

// A half-open range [lo, hi) of positions.
struct PositionRange {
  int lo = 0;
  int hi = 0;
};

class ClusterState {
 public:
  // Precondition: ValidateSnapshot(snapshot).ok(). Keeps a pointer to
  // `snapshot`, which must outlive this object.
  explicit ClusterState(const Snapshot& snapshot);

  int num_nodes() const { return static_cast<int>(nodes_.size()); }
  const Node& node(int n) const { return *nodes_[n]; }
  // Index of the node named `name`, or -1.
  int NodeIndex(const std::string& name) const;
  // Rank of node n among all nodes in byte-wise name order (0 = smallest
  // name); names are unique, so ranks are 0..num_nodes()-1. O(1).
  int name_rank(int n) const { return name_rank_[n]; }

  int64_t free_cpu(int n) const { return free_[n].cpu; }
  int64_t free_mem(int n) const { return free_[n].mem; }
  // Free milli of each GPU of node n (num_gpus entries).
  const int32_t* gpu_free(int n) const { return gpu_free_.data() + gpu_offset_[n]; }
  int num_gpus(int n) const { return nodes_[n]->num_gpus; }
  int whole_free_gpus(int n) const { return free_[n].whole_gpus; }
  int64_t max_gpu_free(int n) const { return free_[n].max_gpu; }
  int64_t free_gpu_total(int n) const { return free_[n].gpu_total; }
  // Number of tasks on node n (running or placed this cycle).
  int num_tasks(int n) const { return task_count_[n]; }
  // Number of tasks on node n whose GPU request is exactly `gpu_milli`.
  int TasksWithGpuRequest(int n, int64_t gpu_milli) const;
  // (GPU request, number of tasks) for every distinct GPU request of the
  // tasks on node n; CPU-only tasks are not listed.
  const std::vector<std::pair<int64_t, int>>& GpuKinds(int n) const { return gpu_kinds_[n]; }
  // Bumped on every change of node n (for per-node score caches).
  uint64_t version(int n) const { return version_[n]; }

  // Sum of the capacity of schedulable nodes.
  const Resources& total() const { return total_; }
  // Largest capacity of any node, per dimension (>= 1), for normalising.
  const Resources& max_node_capacity() const { return max_capacity_; }

  // Whether node n has room for one task of `request`: cpu and memory, and
  // for a fraction one GPU with that much free, for k whole GPUs k wholly
  // free GPUs. Ignores predicates (labels, taints, ...).
  bool Fits(int n, const Resources& request) const;

  // Adds a task's usage on node n (Take) or removes it (Release). `gpus` are
  // the shares the task holds. Precondition for Take: the shares fit.
  void Take(int n, const Resources& request, const std::vector<GpuShare>& gpus);
  void Release(int n, const Resources& request, const std::vector<GpuShare>& gpus);

  // Node groups (same static attributes), as position ranges.
  int num_groups() const { return static_cast<int>(groups_.size()); }
  PositionRange group_range(int g) const { return groups_[g]; }
  // A node of group g (all of them share pool, model, labels, taints).
  int group_representative(int g) const { return by_position_[groups_[g].lo]; }
  int node_at(int position) const { return by_position_[position]; }
  int position_of(int n) const { return position_[n]; }

  // Appends to *out (in position order, starting at the first position >=
  // `start` and wrapping around within `ranges`) up to `limit` nodes that
  // Fit `request`. Adds the number of tree nodes visited to *visited.
  // Nodes with a non-zero entry in `excluded` (indexed by node, may be
  // null) are skipped.
  void FindFitting(const std::vector<PositionRange>& ranges, const Resources& request, int start,
                   int limit, std::vector<int>* out, int64_t* visited,
                   const std::vector<char>* excluded = nullptr) const;

 private:
  struct Free {
    int64_t cpu = 0;
    int64_t mem = 0;
    int64_t max_gpu = 0;   // largest free milli on one GPU
    int64_t whole_gpus = 0;
    int64_t gpu_total = 0;
  };
  void Refresh(int n);
  void UpdateTree(int position);
  bool TreeFits(const Free& f, const Resources& r) const;
  void Collect(int tree_node, int l, int r, int lo, int hi, const Resources& request, int limit,
               std::vector<int>* out, int64_t* visited, const std::vector<char>* excluded) const;
  void CountGpuKind(int n, int64_t gpu_milli, int delta);

  std::vector<const Node*> nodes_;
  std::vector<Free> free_;
  std::vector<int32_t> gpu_free_;
  std::vector<int> gpu_offset_;
  std::vector<int> task_count_;
  std::vector<uint64_t> version_;
  // Per node: (gpu request, number of tasks) pairs, for gpu-clustering.
  std::vector<std::vector<std::pair<int64_t, int>>> gpu_kinds_;
  std::vector<std::pair<std::string, int>> names_;  // sorted, for NodeIndex
  std::vector<int> name_rank_;                      // node -> index in names_

  std::vector<int> by_position_;
  std::vector<int> position_;
  std::vector<PositionRange> groups_;
  int tree_size_ = 1;           // leaves, a power of two
  std::vector<Free> tree_;      // 2 * tree_size_ entries, 1-based heap layout
  Resources total_;
  Resources max_capacity_{1, 1, 1};
};

// The shares a request takes on a node: whole GPUs as k entries of 1000,
// a fraction as one entry.
int WholeGpus(const Resources& request);
bool IsFraction(const Resources& request);

}  // namespace lathe::sched
