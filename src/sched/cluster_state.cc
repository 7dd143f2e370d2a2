#include "sched/cluster_state.h"

#include <algorithm>
#include <numeric>

namespace lathe::sched {

int WholeGpus(const Resources& request) {
  return request.gpu_milli >= 1000 ? static_cast<int>(request.gpu_milli / 1000) : 0;
}

bool IsFraction(const Resources& request) {
  return request.gpu_milli > 0 && request.gpu_milli < 1000;
}

namespace {

// The static attributes that decide every predicate except resource fit.
std::string StaticKey(const Node& n) {
  std::string k;
  k += n.schedulable ? '1' : '0';
  k += '\x1f';
  k += n.pool;
  k += '\x1f';
  k += n.gpu_model;
  for (const auto& [key, value] : n.labels) {
    k += '\x1e';
    k += key;
    k += '=';
    k += value;
  }
  for (const Taint& t : n.taints) {
    k += '\x1d';
    k += t.key;
    k += '=';
    k += t.value;
    k += t.effect == TaintEffect::kNoSchedule ? 'N' : 'P';
  }
  return k;
}

}  // namespace

ClusterState::ClusterState(const Snapshot& snapshot) {
  const int n = static_cast<int>(snapshot.nodes.size());
  nodes_.reserve(n);
  free_.resize(n);
  gpu_offset_.resize(n);
  task_count_.assign(n, 0);
  version_.assign(n, 0);
  gpu_kinds_.resize(n);
  names_.reserve(n);
  int gpus = 0;
  for (int i = 0; i < n; ++i) {
    const Node& node = snapshot.nodes[i];
    nodes_.push_back(&node);
    gpu_offset_[i] = gpus;
    gpus += node.num_gpus;
    names_.emplace_back(node.name, i);
    if (node.schedulable) total_ += node.capacity;
    max_capacity_.cpu_milli = std::max(max_capacity_.cpu_milli, node.capacity.cpu_milli);
    max_capacity_.memory_mib = std::max(max_capacity_.memory_mib, node.capacity.memory_mib);
    max_capacity_.gpu_milli = std::max(max_capacity_.gpu_milli, node.capacity.gpu_milli);
  }
  std::sort(names_.begin(), names_.end());
  name_rank_.resize(n);
  for (int r = 0; r < n; ++r) name_rank_[names_[r].second] = r;
  gpu_free_.assign(gpus, 1000);
  for (int i = 0; i < n; ++i) {
    free_[i].cpu = nodes_[i]->capacity.cpu_milli;
    free_[i].mem = nodes_[i]->capacity.memory_mib;
  }

  // Positions: nodes sorted by static attributes, stable in snapshot order.
  std::vector<std::string> keys(n);
  for (int i = 0; i < n; ++i) keys[i] = StaticKey(*nodes_[i]);
  by_position_.resize(n);
  std::iota(by_position_.begin(), by_position_.end(), 0);
  std::stable_sort(by_position_.begin(), by_position_.end(),
                   [&](int a, int b) { return keys[a] < keys[b]; });
  position_.resize(n);
  for (int p = 0; p < n; ++p) {
    position_[by_position_[p]] = p;
    if (p == 0 || keys[by_position_[p]] != keys[by_position_[p - 1]]) {
      groups_.push_back({p, p + 1});
    } else {
      groups_.back().hi = p + 1;
    }
  }
  while (tree_size_ < n) tree_size_ *= 2;
  tree_.assign(2 * tree_size_, Free{-1, -1, -1, -1, -1});

  for (const RunningJob& rj : snapshot.running) {
    for (const TaskPlacement& tp : rj.tasks) {
      int idx = NodeIndex(tp.node);
      if (idx < 0 || tp.group < 0 || tp.group >= static_cast<int>(rj.job.groups.size())) continue;
      const Resources& req = rj.job.groups[tp.group].request;
      free_[idx].cpu -= req.cpu_milli;
      free_[idx].mem -= req.memory_mib;
      for (const GpuShare& s : tp.gpus) {
        if (s.index >= 0 && s.index < nodes_[idx]->num_gpus) {
          gpu_free_[gpu_offset_[idx] + s.index] -= static_cast<int32_t>(s.milli);
        }
      }
      ++task_count_[idx];
      if (req.gpu_milli > 0) CountGpuKind(idx, req.gpu_milli, +1);
    }
  }
  for (int i = 0; i < n; ++i) Refresh(i);
  // Build inner nodes once (Refresh only updated leaves' paths lazily).
  for (int t = tree_size_ - 1; t >= 1; --t) {
    const Free& a = tree_[2 * t];
    const Free& b = tree_[2 * t + 1];
    tree_[t] = {std::max(a.cpu, b.cpu), std::max(a.mem, b.mem), std::max(a.max_gpu, b.max_gpu),
                std::max(a.whole_gpus, b.whole_gpus), std::max(a.gpu_total, b.gpu_total)};
  }
}

int ClusterState::NodeIndex(const std::string& name) const {
  auto it = std::lower_bound(names_.begin(), names_.end(), std::make_pair(name, -1));
  if (it == names_.end() || it->first != name) return -1;
  return it->second;
}

int ClusterState::TasksWithGpuRequest(int n, int64_t gpu_milli) const {
  for (const auto& [kind, count] : gpu_kinds_[n]) {
    if (kind == gpu_milli) return count;
  }
  return 0;
}

void ClusterState::CountGpuKind(int n, int64_t gpu_milli, int delta) {
  auto& kinds = gpu_kinds_[n];
  for (auto it = kinds.begin(); it != kinds.end(); ++it) {
    if (it->first == gpu_milli) {
      it->second += delta;
      if (it->second == 0) kinds.erase(it);
      return;
    }
  }
  if (delta > 0) kinds.emplace_back(gpu_milli, delta);
}

void ClusterState::Refresh(int n) {
  Free& f = free_[n];
  f.max_gpu = 0;
  f.whole_gpus = 0;
  f.gpu_total = 0;
  const int32_t* g = gpu_free(n);
  for (int i = 0; i < nodes_[n]->num_gpus; ++i) {
    f.max_gpu = std::max<int64_t>(f.max_gpu, g[i]);
    if (g[i] == 1000) ++f.whole_gpus;
    f.gpu_total += g[i];
  }
  ++version_[n];
  // Cordoned nodes never fit anything: their leaf stays at -1.
  if (nodes_[n]->schedulable) tree_[tree_size_ + position_[n]] = f;
}

void ClusterState::UpdateTree(int position) {
  for (int t = (tree_size_ + position) / 2; t >= 1; t /= 2) {
    const Free& a = tree_[2 * t];
    const Free& b = tree_[2 * t + 1];
    tree_[t] = {std::max(a.cpu, b.cpu), std::max(a.mem, b.mem), std::max(a.max_gpu, b.max_gpu),
                std::max(a.whole_gpus, b.whole_gpus), std::max(a.gpu_total, b.gpu_total)};
  }
}

bool ClusterState::TreeFits(const Free& f, const Resources& r) const {
  if (f.cpu < r.cpu_milli || f.mem < r.memory_mib) return false;
  if (r.gpu_milli <= 0) return true;
  if (r.gpu_milli < 1000) return f.max_gpu >= r.gpu_milli;
  return f.whole_gpus >= r.gpu_milli / 1000;
}

bool ClusterState::Fits(int n, const Resources& request) const {
  return TreeFits(free_[n], request);
}

void ClusterState::Take(int n, const Resources& request, const std::vector<GpuShare>& gpus) {
  free_[n].cpu -= request.cpu_milli;
  free_[n].mem -= request.memory_mib;
  for (const GpuShare& s : gpus) gpu_free_[gpu_offset_[n] + s.index] -= static_cast<int32_t>(s.milli);
  ++task_count_[n];
  if (request.gpu_milli > 0) CountGpuKind(n, request.gpu_milli, +1);
  Refresh(n);
  UpdateTree(position_[n]);
}

void ClusterState::Release(int n, const Resources& request, const std::vector<GpuShare>& gpus) {
  free_[n].cpu += request.cpu_milli;
  free_[n].mem += request.memory_mib;
  for (const GpuShare& s : gpus) gpu_free_[gpu_offset_[n] + s.index] += static_cast<int32_t>(s.milli);
  --task_count_[n];
  if (request.gpu_milli > 0) CountGpuKind(n, request.gpu_milli, -1);
  Refresh(n);
  UpdateTree(position_[n]);
}

void ClusterState::Collect(int t, int l, int r, int lo, int hi, const Resources& request,
                           int limit, std::vector<int>* out, int64_t* visited,
                           const std::vector<char>* excluded) const {
  if (static_cast<int>(out->size()) >= limit || r <= lo || hi <= l) return;
  ++*visited;
  if (!TreeFits(tree_[t], request)) return;
  if (r - l == 1) {
    if (excluded == nullptr || !(*excluded)[by_position_[l]]) out->push_back(by_position_[l]);
    return;
  }
  int m = (l + r) / 2;
  Collect(2 * t, l, m, lo, hi, request, limit, out, visited, excluded);
  Collect(2 * t + 1, m, r, lo, hi, request, limit, out, visited, excluded);
}

void ClusterState::FindFitting(const std::vector<PositionRange>& ranges, const Resources& request,
                               int start, int limit, std::vector<int>* out, int64_t* visited,
                               const std::vector<char>* excluded) const {
  // First the parts of the ranges at or after `start`, then those before.
  for (int pass = 0; pass < 2; ++pass) {
    for (const PositionRange& pr : ranges) {
      int lo = pass == 0 ? std::max(pr.lo, start) : pr.lo;
      int hi = pass == 0 ? pr.hi : std::min(pr.hi, start);
      if (lo >= hi) continue;
      Collect(1, 0, tree_size_, lo, hi, request, limit, out, visited, excluded);
      if (static_cast<int>(out->size()) >= limit) return;
    }
  }
}

}  // namespace lathe::sched
