#include "sim/metrics.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

namespace lathe::sim {

double NodeFragmentMilli(const NodeFree& node, const sched::Resources& task) {
  int64_t free_total = 0;
  for (int64_t f : node.gpu_free) free_total += f;
  if (free_total == 0) return 0;
  if (task.gpu_milli == 0 || task.cpu_milli > node.cpu_milli || task.memory_mib > node.memory_mib) {
    return static_cast<double>(free_total);
  }
  if (task.gpu_milli < 1000) {
    // A fraction of one GPU: GPUs with less free than asked are fragments.
    int64_t frag = 0;
    bool fits = false;
    for (int64_t f : node.gpu_free) {
      if (f < task.gpu_milli) {
        frag += f;
      } else {
        fits = true;
      }
    }
    return fits ? static_cast<double>(frag) : static_cast<double>(free_total);
  }
  // k whole GPUs: only fully free GPUs are usable, and only if there are k.
  int64_t whole = 0, partial = 0;
  for (int64_t f : node.gpu_free) {
    if (f == 1000) {
      ++whole;
    } else {
      partial += f;
    }
  }
  if (whole * 1000 < task.gpu_milli) return static_cast<double>(free_total);
  return static_cast<double>(partial);
}

double FragmentedGpuMilli(const std::vector<NodeFree>& nodes,
                          const std::vector<sched::WorkloadClass>& classes) {
  double total_weight = 0;
  for (const sched::WorkloadClass& c : classes) total_weight += c.weight;
  if (total_weight <= 0) return 0;
  double frag = 0;
  for (const NodeFree& n : nodes) {
    if (n.gpu_free.empty()) continue;
    for (const sched::WorkloadClass& c : classes) {
      frag += c.weight / total_weight * NodeFragmentMilli(n, c.request);
    }
  }
  return frag;
}

std::vector<sched::WorkloadClass> WorkloadClasses(const std::vector<sched::Resources>& tasks) {
  std::map<std::pair<int64_t, int64_t>, double> counts;
  for (const sched::Resources& t : tasks) counts[{t.cpu_milli, t.gpu_milli}] += 1;
  std::vector<sched::WorkloadClass> classes;
  for (const auto& [key, n] : counts) {
    sched::WorkloadClass c;
    c.request.cpu_milli = key.first;
    c.request.gpu_milli = key.second;
    c.weight = n;
    classes.push_back(c);
  }
  std::stable_sort(classes.begin(), classes.end(),
                   [](const auto& a, const auto& b) { return a.weight > b.weight; });
  return classes;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  double rank = std::ceil(p / 100.0 * static_cast<double>(values.size()));
  size_t i = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return values[std::min(i, values.size() - 1)];
}

const FillPoint* FillResult::PointAt(double at) const {
  if (curve.empty()) return nullptr;
  for (const FillPoint& p : curve) {
    if (p.arrived >= at - 1e-12) return &p;
  }
  return &curve.back();
}

double FillResult::UnallocatedAt(double at) const {
  const FillPoint* p = PointAt(at);
  return p == nullptr ? 1.0 : p->unallocated;
}

void WriteSimResultJson(const SimResult& r, JsonWriter& w, size_t max_series) {
  w.BeginObject();
  w.Field("policy", r.policy);
  w.Field("jobs", r.jobs).Field("finished", r.finished).Field("never_started", r.never_started);
  w.Key("avg_jct").Double(r.avg_jct).Key("p50_jct").Double(r.p50_jct);
  w.Key("p95_jct").Double(r.p95_jct).Key("p99_jct").Double(r.p99_jct);
  w.Key("avg_wait").Double(r.avg_wait).Key("p95_wait").Double(r.p95_wait);
  w.Field("makespan", r.makespan);
  w.Key("cpu_util").Double(r.cpu_util).Key("gpu_util").Double(r.gpu_util);
  w.Key("avg_unallocated_gpus").Double(r.avg_unallocated_gpus);
  w.Key("avg_fragmented_gpus").Double(r.avg_fragmented_gpus);
  w.Field("preemptions", r.preemptions).Field("reservations", r.reservations);
  w.Field("reserved_jobs", r.reserved_jobs).Field("reserved_started_late", r.reserved_started_late);
  w.Field("max_reservation_delay", r.max_reservation_delay);
  w.Field("cycles", r.cycles);
  w.Key("schedule_seconds").Double(r.schedule_seconds);
  w.Key("wall_seconds").Double(r.wall_seconds);
  w.Key("queues").BeginArray();
  for (const QueueShare& q : r.queues) {
    w.BeginObject().Field("queue", q.queue).Key("deserved").Double(q.deserved);
    w.Key("share").Double(q.share).Field("jobs", q.jobs).Key("avg_jct").Double(q.avg_jct);
    w.EndObject();
  }
  w.EndArray();
  w.Key("by_gpus").BeginArray();
  for (const SizeClass& c : r.by_gpus) {
    w.BeginObject().Field("gpus", c.gpus).Field("jobs", c.jobs);
    w.Key("avg_jct").Double(c.avg_jct).Key("avg_wait").Double(c.avg_wait).EndObject();
  }
  w.EndArray();
  // Thin the series evenly to at most max_series points.
  size_t step = 1;
  if (max_series > 0 && r.series.size() > max_series) {
    step = (r.series.size() + max_series - 1) / max_series;
  }
  w.Key("series").BeginArray();
  for (size_t i = 0; i < r.series.size(); i += step) {
    const Sample& s = r.series[i];
    w.BeginObject().Field("time", s.time).Key("cpu_util").Double(s.cpu_util);
    w.Key("gpu_util").Double(s.gpu_util).Key("unallocated_gpus").Double(s.unallocated_gpus);
    w.Key("fragmented_gpus").Double(s.fragmented_gpus);
    w.Field("pending", s.pending).Field("running", s.running).EndObject();
  }
  w.EndArray();
  w.EndObject();
}

void WriteFillResultJson(const FillResult& r, JsonWriter& w, const std::vector<double>& loads) {
  w.BeginObject();
  w.Field("policy", r.policy);
  w.Key("capacity_gpus").Double(r.capacity_gpus);
  w.Field("tasks", static_cast<int64_t>(r.curve.size())).Field("failed", r.failed);
  w.Key("schedule_seconds").Double(r.schedule_seconds);
  const FillPoint* end = r.curve.empty() ? nullptr : &r.curve.back();
  w.Key("end").BeginObject();
  if (end != nullptr) {
    w.Key("arrived").Double(end->arrived).Key("unallocated").Double(end->unallocated);
    w.Key("unallocated_gpus").Double(end->unallocated * r.capacity_gpus);
    w.Key("fragmented").Double(end->fragmented);
  }
  w.EndObject();
  w.Key("curve").BeginArray();
  for (double load : loads) {
    const FillPoint* p = r.PointAt(load);
    if (p == nullptr) continue;
    w.BeginObject().Key("load").Double(load).Key("arrived").Double(p->arrived);
    w.Key("allocated").Double(p->allocated).Key("unallocated").Double(p->unallocated);
    w.Key("fragmented").Double(p->fragmented).Field("failed", p->failed).EndObject();
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace lathe::sim
