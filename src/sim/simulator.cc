#include "sim/simulator.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <queue>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "sched/scheduler.h"

namespace lathe::sim {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The per-node free resources the simulator tracks to check plans and
// measure fragmentation.
class ClusterState {
 public:
  explicit ClusterState(const std::vector<sched::Node>& nodes) {
    free_.reserve(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      const sched::Node& n = nodes[i];
      index_[n.name] = static_cast<int>(i);
      NodeFree f{n.capacity.cpu_milli, n.capacity.memory_mib,
                 std::vector<int64_t>(static_cast<size_t>(n.num_gpus), 1000)};
      free_.push_back(std::move(f));
      capacity_ += n.capacity;
    }
  }

  // Checks that `tasks` of `job` fit, then takes their resources.
  Status Allocate(const sched::Job& job, const std::vector<sched::TaskPlacement>& tasks) {
    // Check on a copy of the touched nodes so a failed plan changes nothing.
    std::map<int, NodeFree> touched;
    for (const sched::TaskPlacement& t : tasks) {
      auto it = index_.find(t.node);
      if (it == index_.end()) return InternalError(fmt::format("job {}: unknown node \"{}\"", job.id, t.node));
      if (t.group < 0 || t.group >= static_cast<int>(job.groups.size())) {
        return InternalError(fmt::format("job {}: task group {} does not exist", job.id, t.group));
      }
      const sched::Resources& req = job.groups[static_cast<size_t>(t.group)].request;
      auto [pos, inserted] = touched.try_emplace(it->second, free_[static_cast<size_t>(it->second)]);
      NodeFree& f = pos->second;
      f.cpu_milli -= req.cpu_milli;
      f.memory_mib -= req.memory_mib;
      int64_t gpu_sum = 0;
      for (const sched::GpuShare& g : t.gpus) {
        if (g.index < 0 || g.index >= static_cast<int>(f.gpu_free.size())) {
          return InternalError(fmt::format("job {}: node {} has no GPU {}", job.id, t.node, g.index));
        }
        f.gpu_free[static_cast<size_t>(g.index)] -= g.milli;
        gpu_sum += g.milli;
        if (f.gpu_free[static_cast<size_t>(g.index)] < 0) {
          return InternalError(
              fmt::format("job {}: GPU {} of node {} over-committed", job.id, g.index, t.node));
        }
      }
      if (gpu_sum != req.gpu_milli) {
        return InternalError(fmt::format("job {}: task on {} got {} milli-GPU, asked for {}", job.id,
                                         t.node, gpu_sum, req.gpu_milli));
      }
      if (f.cpu_milli < 0 || f.memory_mib < 0) {
        return InternalError(
            fmt::format("job {}: node {} over-committed (cpu or memory)", job.id, t.node));
      }
    }
    for (auto& [i, f] : touched) free_[static_cast<size_t>(i)] = std::move(f);
    for (const sched::TaskPlacement& t : tasks) allocated_ += job.groups[static_cast<size_t>(t.group)].request;
    return OkStatus();
  }

  void Release(const sched::Job& job, const std::vector<sched::TaskPlacement>& tasks) {
    for (const sched::TaskPlacement& t : tasks) {
      NodeFree& f = free_[static_cast<size_t>(index_.at(t.node))];
      const sched::Resources& req = job.groups[static_cast<size_t>(t.group)].request;
      f.cpu_milli += req.cpu_milli;
      f.memory_mib += req.memory_mib;
      for (const sched::GpuShare& g : t.gpus) f.gpu_free[static_cast<size_t>(g.index)] += g.milli;
      allocated_ -= req;
    }
  }

  int NodeIndex(const std::string& name) const { return index_.at(name); }
  const std::vector<NodeFree>& free() const { return free_; }
  const sched::Resources& capacity() const { return capacity_; }
  const sched::Resources& allocated() const { return allocated_; }

 private:
  std::unordered_map<std::string, int> index_;
  std::vector<NodeFree> free_;
  sched::Resources capacity_;
  sched::Resources allocated_;
};

double Ratio(int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0; }

double DominantShare(const sched::Resources& r, const sched::Resources& cap) {
  return std::max({Ratio(r.cpu_milli, cap.cpu_milli), Ratio(r.memory_mib, cap.memory_mib),
                   Ratio(r.gpu_milli, cap.gpu_milli)});
}

int64_t JobGpuMilli(const sched::Job& job, const std::vector<sched::TaskPlacement>& tasks) {
  int64_t g = 0;
  for (const sched::TaskPlacement& t : tasks) g += job.groups[static_cast<size_t>(t.group)].request.gpu_milli;
  return g;
}

sched::Resources TaskRequests(const sched::Job& job, const std::vector<sched::TaskPlacement>& tasks) {
  sched::Resources r;
  for (const sched::TaskPlacement& t : tasks) r += job.groups[static_cast<size_t>(t.group)].request;
  return r;
}

// One simulation run; Simulate() is a thin wrapper.
class Run {
 public:
  Run(const Workload& w, const sched::Policy& policy, const SimOptions& options)
      : w_(w), policy_(policy), options_(options), cluster_(w.nodes) {
    schedule_ = options.schedule ? options.schedule : ScheduleFn(sched::Schedule);
    snap_.nodes = w.nodes;
    snap_.queues = w.queues;
    records_.resize(w.jobs.size());
    for (size_t i = 0; i < w.jobs.size(); ++i) {
      index_[w.jobs[i].job.id] = static_cast<int>(i);
      records_[i].remaining = w.jobs[i].duration;
    }
    for (size_t i = 0; i < w.queues.size(); ++i) queue_index_[w.queues[i].name] = static_cast<int>(i);
    queue_alloc_.resize(w.queues.size());
    queue_integral_.resize(w.queues.size());
    std::vector<sched::Resources> tasks;
    for (const SimJob& j : w.jobs) {
      for (const sched::TaskGroup& g : j.job.groups) {
        for (int k = 0; k < g.count; ++k) tasks.push_back(g.request);
      }
    }
    classes_ = WorkloadClasses(tasks);
    int64_t span = w.jobs.empty() ? 0 : w.jobs.back().job.submit_time;
    sample_seconds_ = options.sample_seconds > 0 ? options.sample_seconds : std::max<int64_t>(1, span / 200);
  }

  StatusOr<SimResult> Go() {
    auto wall_start = Clock::now();
    last_progress_ = wall_start;
    size_t next_arrival = 0;
    int64_t now = 0;
    bool changed = false;
    while (true) {
      // The next instant: an arrival, a completion or (with cycle_seconds) a tick.
      int64_t next = INT64_MAX;
      if (next_arrival < w_.jobs.size()) next = w_.jobs[next_arrival].job.submit_time;
      while (!ends_.empty() && !EndIsCurrent(ends_.top())) ends_.pop();
      if (!ends_.empty()) next = std::min(next, ends_.top().time);
      if (options_.cycle_seconds > 0 && !snap_.pending.empty() && next != INT64_MAX) {
        int64_t tick = (now / options_.cycle_seconds + 1) * options_.cycle_seconds;
        next = std::min(next, tick);
      }
      if (next == INT64_MAX) break;  // nothing will ever happen again
      Advance(now, next);
      now = next;
      // Completions, then arrivals, at this instant.
      while (!ends_.empty() && (ends_.top().time == now || !EndIsCurrent(ends_.top()))) {
        End e = ends_.top();
        ends_.pop();
        if (!EndIsCurrent(e)) continue;
        Complete(e.job, now);
        changed = true;
      }
      while (next_arrival < w_.jobs.size() && w_.jobs[next_arrival].job.submit_time == now) {
        snap_.pending.push_back(w_.jobs[next_arrival].job);
        ++next_arrival;
        changed = true;
      }
      if (!finished_ids_.empty()) RemoveFinished();
      bool tick = options_.cycle_seconds > 0 && now % options_.cycle_seconds == 0;
      bool cycle = options_.cycle_seconds > 0 ? tick : changed;
      if (cycle && !snap_.pending.empty()) {
        for (int k = 0; k < std::max(1, options_.max_cycles_per_instant); ++k) {
          ASSIGN_OR_RETURN(bool again, Cycle(now));
          if (!again) break;
        }
      }
      changed = false;
      Progress(now, next_arrival, false);
    }
    Progress(now, next_arrival, true);
    SimResult r = Report(now);
    r.wall_seconds = Seconds(Clock::now() - wall_start);
    return r;
  }

 private:
  struct Record {
    int64_t first_start = -1;
    int64_t start = -1;   // current run's start
    int64_t end = -1;
    int64_t remaining = 0;
    int64_t attained = 0;  // GPU-seconds before the current run
    int64_t epoch = 0;     // bumped when a run is preempted
    int64_t gpu_milli = 0; // of the current run
    bool running = false;
  };
  struct End {
    int64_t time;
    int job;
    int64_t epoch;
    bool operator>(const End& o) const { return time != o.time ? time > o.time : job > o.job; }
  };

  bool EndIsCurrent(const End& e) const {
    const Record& r = records_[static_cast<size_t>(e.job)];
    return r.running && r.epoch == e.epoch;
  }

  // Integrates utilisation and records samples over [from, to).
  void Advance(int64_t from, int64_t to) {
    if (to <= from) return;
    if (!started_) {
      started_ = true;
      first_time_ = from;
      next_sample_ = from;
    }
    double dt = static_cast<double>(to - from);
    const sched::Resources& a = cluster_.allocated();
    cpu_integral_ += static_cast<double>(a.cpu_milli) * dt;
    gpu_integral_ += static_cast<double>(a.gpu_milli) * dt;
    for (size_t q = 0; q < queue_alloc_.size(); ++q) {
      queue_integral_[q][0] += static_cast<double>(queue_alloc_[q].cpu_milli) * dt;
      queue_integral_[q][1] += static_cast<double>(queue_alloc_[q].memory_mib) * dt;
      queue_integral_[q][2] += static_cast<double>(queue_alloc_[q].gpu_milli) * dt;
    }
    while (next_sample_ < to) {
      if (next_sample_ >= from) series_.push_back(SampleNow(next_sample_));
      next_sample_ += sample_seconds_;
    }
  }

  Sample SampleNow(int64_t t) const {
    const sched::Resources& cap = cluster_.capacity();
    const sched::Resources& a = cluster_.allocated();
    Sample s;
    s.time = t;
    s.cpu_util = Ratio(a.cpu_milli, cap.cpu_milli);
    s.gpu_util = Ratio(a.gpu_milli, cap.gpu_milli);
    s.unallocated_gpus = static_cast<double>(cap.gpu_milli - a.gpu_milli) / 1000.0;
    s.fragmented_gpus = FragmentedGpuMilli(cluster_.free(), classes_) / 1000.0;
    s.pending = static_cast<int64_t>(snap_.pending.size());
    s.running = static_cast<int64_t>(snap_.running.size());
    return s;
  }

  int QueueOf(const sched::Job& job) const {
    auto it = queue_index_.find(job.queue);
    return it == queue_index_.end() ? -1 : it->second;
  }

  void Complete(int job, int64_t now) {
    Record& r = records_[static_cast<size_t>(job)];
    r.running = false;
    r.end = now;
    r.remaining = 0;
    finished_ids_.insert(w_.jobs[static_cast<size_t>(job)].job.id);
  }

  // Drops finished jobs from the snapshot's running list and frees them.
  void RemoveFinished() {
    auto& running = snap_.running;
    auto keep = std::remove_if(running.begin(), running.end(), [&](const sched::RunningJob& rj) {
      if (!finished_ids_.count(rj.job.id)) return false;
      cluster_.Release(rj.job, rj.tasks);
      int q = QueueOf(rj.job);
      if (q >= 0) queue_alloc_[static_cast<size_t>(q)] -= TaskRequests(rj.job, rj.tasks);
      return true;
    });
    running.erase(keep, running.end());
    finished_ids_.clear();
  }

  // One scheduling cycle at `now`. Returns whether another cycle at the same
  // instant may help (the plan preempted something).
  StatusOr<bool> Cycle(int64_t now) {
    // A running job's attained_gpu_seconds stays what it had before its
    // current run: the scheduler adds (now − start_time) × its GPUs.
    snap_.now = now;
    if (options_.validate) {
      Status st = sched::ValidateSnapshot(snap_);
      if (!st.ok()) return st.WithPrefix(fmt::format("policy {}: snapshot at t={}", policy_.name, now));
    }
    auto t0 = Clock::now();
    sched::Plan plan = schedule_(snap_, policy_);
    schedule_seconds_ += Seconds(Clock::now() - t0);
    ++cycles_;
    auto fail = [&](const Status& st) {
      return InternalError(fmt::format("policy {}: plan at t={}: {}", policy_.name, now, st.message()));
    };

    // Preemptions: victims stop and go back to pending.
    if (!plan.preemptions.empty()) {
      std::unordered_set<std::string> victims;
      for (const sched::Preemption& p : plan.preemptions) victims.insert(p.job_id);
      std::vector<sched::Job> requeued;
      auto& running = snap_.running;
      auto keep = std::remove_if(running.begin(), running.end(), [&](sched::RunningJob& rj) {
        if (!victims.count(rj.job.id)) return false;
        victims.erase(rj.job.id);
        Record& r = records_[static_cast<size_t>(index_.at(rj.job.id))];
        int64_t ran = now - r.start;
        r.attained += r.gpu_milli * ran / 1000;
        r.remaining = std::max<int64_t>(1, r.remaining - ran);
        r.running = false;
        ++r.epoch;
        cluster_.Release(rj.job, rj.tasks);
        int q = QueueOf(rj.job);
        if (q >= 0) queue_alloc_[static_cast<size_t>(q)] -= TaskRequests(rj.job, rj.tasks);
        sched::Job job = std::move(rj.job);
        job.attained_gpu_seconds = r.attained;
        if (job.runtime_estimate) job.runtime_estimate = r.remaining;
        requeued.push_back(std::move(job));
        ++preemptions_;
        return true;
      });
      running.erase(keep, running.end());
      if (!victims.empty()) return fail(InternalError(fmt::format("preempts job {}, which is not running", *victims.begin())));
      for (sched::Job& j : requeued) snap_.pending.push_back(std::move(j));
    }

    // Binds: checked against the free resources, then started.
    if (!plan.binds.empty()) {
      std::unordered_map<std::string, const sched::Bind*> binds;
      for (const sched::Bind& b : plan.binds) {
        if (!binds.emplace(b.job_id, &b).second) return fail(InternalError("binds job " + b.job_id + " twice"));
      }
      auto& pending = snap_.pending;
      std::vector<sched::RunningJob> started;
      Status error;
      auto keep = std::remove_if(pending.begin(), pending.end(), [&](sched::Job& job) {
        auto it = binds.find(job.id);
        if (it == binds.end() || !error.ok()) return false;
        const sched::Bind& b = *it->second;
        binds.erase(it);
        if (static_cast<int>(b.tasks.size()) < job.GangSize()) {
          error = InternalError(fmt::format("binds {} of job {}'s gang of {}", b.tasks.size(), job.id,
                                            job.GangSize()));
          return false;
        }
        if (Status st = cluster_.Allocate(job, b.tasks); !st.ok()) {
          error = st;
          return false;
        }
        int idx = index_.at(job.id);
        Record& r = records_[static_cast<size_t>(idx)];
        r.running = true;
        r.start = now;
        if (r.first_start < 0) r.first_start = now;
        r.gpu_milli = JobGpuMilli(job, b.tasks);
        ends_.push(End{now + r.remaining, idx, r.epoch});
        int q = QueueOf(job);
        if (q >= 0) queue_alloc_[static_cast<size_t>(q)] += TaskRequests(job, b.tasks);
        sched::RunningJob rj;
        rj.job = std::move(job);
        rj.start_time = now;
        rj.tasks = b.tasks;
        started.push_back(std::move(rj));
        return true;
      });
      pending.erase(keep, pending.end());
      if (!error.ok()) return fail(error);
      if (!binds.empty()) return fail(InternalError("binds job " + binds.begin()->first + ", which is not pending"));
      for (sched::RunningJob& rj : started) {
        CheckReservation(rj.job.id, now);
        snap_.running.push_back(std::move(rj));
      }
    }
    reservations_ += static_cast<int64_t>(plan.reservations.size());
    for (const sched::Reservation& r : plan.reservations) {
      if (first_reserved_start_.emplace(r.job_id, r.expected_start).second) ++reserved_jobs_;
    }
    return !plan.preemptions.empty() && !snap_.pending.empty();
  }

  // A job that got a reservation starts: late if after the expected start
  // of its first one.
  void CheckReservation(const std::string& job_id, int64_t now) {
    auto it = first_reserved_start_.find(job_id);
    if (it == first_reserved_start_.end()) return;
    if (now > it->second) {
      ++reserved_started_late_;
      max_reservation_delay_ = std::max(max_reservation_delay_, now - it->second);
    }
    first_reserved_start_.erase(it);
  }

  void Progress(int64_t now, size_t arrived, bool last) {
    if (options_.progress == nullptr) return;
    auto t = Clock::now();
    if (t - last_progress_ < std::chrono::seconds(2) && (!last || !printed_)) return;
    last_progress_ = t;
    printed_ = true;
    int64_t finished = 0;
    for (const Record& r : records_) finished += r.end >= 0;
    *options_.progress << fmt::format(
        "sim {}: t={}s arrived {}/{} finished {} pending {} running {} cycles {}{}\n", policy_.name,
        now, arrived, w_.jobs.size(), finished, snap_.pending.size(), snap_.running.size(), cycles_,
        last ? " (done)" : "");
    options_.progress->flush();
  }

  SimResult Report(int64_t now) {
    SimResult r;
    r.policy = policy_.name;
    r.jobs = static_cast<int64_t>(w_.jobs.size());
    std::vector<double> jct, wait;
    int64_t last_end = 0;
    std::vector<double> queue_jct_sum(w_.queues.size(), 0);
    std::map<int64_t, SizeClass> by_gpus;
    std::vector<int64_t> queue_jobs(w_.queues.size(), 0);
    for (size_t i = 0; i < records_.size(); ++i) {
      const Record& rec = records_[i];
      const SimJob& j = w_.jobs[i];
      int q = QueueOf(j.job);
      if (q >= 0) ++queue_jobs[static_cast<size_t>(q)];
      if (rec.first_start < 0) ++r.never_started;
      if (rec.end < 0) continue;
      ++r.finished;
      double c = static_cast<double>(rec.end - j.job.submit_time);
      jct.push_back(c);
      wait.push_back(c - static_cast<double>(j.duration));
      last_end = std::max(last_end, rec.end);
      if (q >= 0) queue_jct_sum[static_cast<size_t>(q)] += c;
      int64_t milli = 0;
      for (const sched::TaskGroup& g : j.job.groups) milli += g.request.gpu_milli * g.count;
      SizeClass& size = by_gpus[(milli + 999) / 1000];
      ++size.jobs;
      size.avg_jct += c;  // sums until divided below
      size.avg_wait += c - static_cast<double>(j.duration);
    }
    for (auto& [gpus, size] : by_gpus) {
      size.gpus = gpus;
      size.avg_jct /= static_cast<double>(size.jobs);
      size.avg_wait /= static_cast<double>(size.jobs);
      r.by_gpus.push_back(size);
    }
    auto mean = [](const std::vector<double>& v) {
      double s = 0;
      for (double x : v) s += x;
      return v.empty() ? 0.0 : s / static_cast<double>(v.size());
    };
    r.avg_jct = mean(jct);
    r.p50_jct = Percentile(jct, 50);
    r.p95_jct = Percentile(jct, 95);
    r.p99_jct = Percentile(jct, 99);
    r.avg_wait = mean(wait);
    r.p95_wait = Percentile(wait, 95);
    r.makespan = started_ ? std::max(last_end, now) - first_time_ : 0;
    const sched::Resources& cap = cluster_.capacity();
    double span = static_cast<double>(std::max<int64_t>(1, now - first_time_));
    r.cpu_util = cap.cpu_milli > 0 ? cpu_integral_ / span / static_cast<double>(cap.cpu_milli) : 0;
    r.gpu_util = cap.gpu_milli > 0 ? gpu_integral_ / span / static_cast<double>(cap.gpu_milli) : 0;
    r.avg_unallocated_gpus = static_cast<double>(cap.gpu_milli) / 1000.0 * (1 - r.gpu_util);
    double frag = 0;
    for (const Sample& s : series_) frag += s.fragmented_gpus;
    r.avg_fragmented_gpus = series_.empty() ? 0 : frag / static_cast<double>(series_.size());
    r.preemptions = preemptions_;
    r.reservations = reservations_;
    r.reserved_jobs = reserved_jobs_;
    r.reserved_started_late = reserved_started_late_;
    r.max_reservation_delay = max_reservation_delay_;
    r.cycles = cycles_;
    r.schedule_seconds = schedule_seconds_;
    r.series = series_;
    // Queue shares: a queue holds its own and its descendants' allocations.
    size_t nq = w_.queues.size();
    std::vector<std::array<double, 3>> held = queue_integral_;
    std::vector<double> deserved(nq, 0);
    std::map<std::string, int64_t> sibling_weight;
    for (const sched::Queue& q : w_.queues) sibling_weight[q.parent] += q.weight;
    // Deserved: weight share among siblings times the parent's; parents are
    // resolved by repeated passes (trees are shallow).
    std::vector<bool> done(nq, false);
    for (size_t pass = 0; pass < nq + 1; ++pass) {
      for (size_t i = 0; i < nq; ++i) {
        if (done[i]) continue;
        const sched::Queue& q = w_.queues[i];
        double parent_share = 1;
        if (!q.parent.empty()) {
          auto it = queue_index_.find(q.parent);
          if (it == queue_index_.end() || !done[static_cast<size_t>(it->second)]) continue;
          parent_share = deserved[static_cast<size_t>(it->second)];
        }
        deserved[i] = parent_share * static_cast<double>(q.weight) /
                      static_cast<double>(sibling_weight[q.parent]);
        done[i] = true;
      }
    }
    for (size_t i = 0; i < nq; ++i) {
      // Add this queue's own integral to every ancestor.
      std::string parent = w_.queues[i].parent;
      for (size_t depth = 0; !parent.empty() && depth < nq; ++depth) {
        auto it = queue_index_.find(parent);
        if (it == queue_index_.end()) break;
        for (int d = 0; d < 3; ++d) held[static_cast<size_t>(it->second)][d] += queue_integral_[i][d];
        parent = w_.queues[static_cast<size_t>(it->second)].parent;
      }
    }
    for (size_t i = 0; i < nq; ++i) {
      QueueShare qs;
      qs.queue = w_.queues[i].name;
      qs.deserved = deserved[i];
      sched::Resources avg{std::llround(held[i][0] / span), std::llround(held[i][1] / span),
                           std::llround(held[i][2] / span)};
      qs.share = DominantShare(avg, cap);
      qs.jobs = queue_jobs[i];
      qs.avg_jct = queue_jobs[i] > 0 ? queue_jct_sum[i] / static_cast<double>(queue_jobs[i]) : 0;
      r.queues.push_back(qs);
    }
    return r;
  }

  const Workload& w_;
  const sched::Policy& policy_;
  const SimOptions& options_;
  ScheduleFn schedule_;
  ClusterState cluster_;
  sched::Snapshot snap_;
  std::vector<Record> records_;
  std::unordered_map<std::string, int> index_;
  std::unordered_map<std::string, int> queue_index_;
  std::vector<sched::Resources> queue_alloc_;
  std::vector<std::array<double, 3>> queue_integral_;
  std::priority_queue<End, std::vector<End>, std::greater<End>> ends_;
  std::unordered_set<std::string> finished_ids_;
  std::vector<sched::WorkloadClass> classes_;
  std::vector<Sample> series_;
  int64_t sample_seconds_ = 1;
  int64_t next_sample_ = 0;
  bool started_ = false;
  int64_t first_time_ = 0;
  double cpu_integral_ = 0, gpu_integral_ = 0;
  int64_t cycles_ = 0, preemptions_ = 0, reservations_ = 0;
  // Expected start of each pending job's first reservation (see CheckReservation).
  std::unordered_map<std::string, int64_t> first_reserved_start_;
  int64_t reserved_jobs_ = 0, reserved_started_late_ = 0, max_reservation_delay_ = 0;
  double schedule_seconds_ = 0;
  Clock::time_point last_progress_;
  bool printed_ = false;  // a progress line was written
};

}  // namespace

StatusOr<std::vector<sched::Node>> ResolveNodes(const ClusterConfig& config,
                                                const std::string& node_file,
                                                const ReadOptions& options) {
  if (config.nodes_from.empty()) {
    if (!node_file.empty()) {
      return InvalidArgumentError(
          "a node list was given with --trace but the cluster file has node groups "
          "(use nodes_from: openb)",
          "trace");
    }
    return config.nodes;
  }
  std::string path = !node_file.empty() ? node_file : config.node_file;
  if (path.empty()) {
    return InvalidArgumentError(
        "nodes_from: openb needs the node list: --trace PODS,NODES or node_file in the cluster file",
        "nodes_from");
  }
  ASSIGN_OR_RETURN(std::vector<sched::Node> nodes, ReadOpenbNodes(path, options));
  if (nodes.empty()) return InvalidArgumentError(path + ": no nodes", "nodes_from");
  return nodes;
}

StatusOr<Workload> BuildWorkload(const Trace& trace, const ClusterConfig& config,
                                 std::vector<sched::Node> nodes, const SelectOptions& select) {
  if (select.sample_every < 1) return InvalidArgumentError("sample-every: must be >= 1", "sample_every");
  if (select.max_jobs < 0) return InvalidArgumentError("max-jobs: must be >= 0", "max_jobs");
  Workload w;
  w.nodes = std::move(nodes);
  std::set<std::string> wanted(select.queues.begin(), select.queues.end());
  int64_t seen = 0;
  std::set<std::string> used_queues;
  for (const TraceJob& tj : trace.jobs) {
    if (select.window_start >= 0 && tj.submit_time < select.window_start) continue;
    if (select.window_end >= 0 && tj.submit_time >= select.window_end) continue;
    if (!wanted.empty() && !wanted.count(tj.queue)) continue;
    if (seen++ % select.sample_every != 0) continue;
    if (select.max_jobs > 0 && static_cast<int64_t>(w.jobs.size()) >= select.max_jobs) break;
    SimJob sj;
    sj.duration = tj.duration;
    sched::Job& j = sj.job;
    j.id = tj.id;
    j.queue = MapQueue(config, tj.queue);
    j.priority = tj.priority;
    j.submit_time = tj.submit_time;
    j.groups.push_back(sched::TaskGroup{"task", tj.tasks, tj.request});
    j.min_available = tj.min_available;
    j.gpu_model = tj.gpu_model;
    if (select.runtime_estimates) j.runtime_estimate = tj.duration;
    used_queues.insert(j.queue);
    w.jobs.push_back(std::move(sj));
  }
  if (!w.jobs.empty()) {
    int64_t first = w.jobs.front().job.submit_time;
    for (SimJob& j : w.jobs) j.job.submit_time -= first;
  }
  if (config.queues.empty()) {
    for (const std::string& name : used_queues) {
      sched::Queue q;
      q.name = name;
      w.queues.push_back(q);
    }
    if (w.queues.empty()) w.queues.push_back(sched::Queue{.name = "default"});
  } else {
    w.queues = config.queues;
    std::set<std::string> names;
    for (const sched::Queue& q : w.queues) names.insert(q.name);
    for (const std::string& q : used_queues) {
      if (!names.count(q)) {
        return InvalidArgumentError(
            fmt::format("trace jobs map to queue \"{}\", which the cluster file does not list "
                        "(set default_queue or queue_map)",
                        q),
            "default_queue");
      }
    }
  }
  return w;
}

StatusOr<SimResult> Simulate(const Workload& workload, const sched::Policy& policy,
                             const SimOptions& options) {
  if (workload.nodes.empty()) return InvalidArgumentError("the cluster has no nodes", "nodes");
  Run run(workload, policy, options);
  return run.Go();
}

StatusOr<FillResult> RunFill(const std::vector<sched::Node>& nodes,
                             const std::vector<SimJob>& pool, const sched::Policy& policy_in,
                             const FillOptions& options) {
  if (nodes.empty()) return InvalidArgumentError("the cluster has no nodes", "nodes");
  if (pool.empty()) return InvalidArgumentError("the trace has no tasks to sample", "trace");
  if (!(options.until > 0) || options.until > 10) {
    return InvalidArgumentError("fill-until: must be in (0, 1000] percent", "fill_until");
  }
  ScheduleFn schedule = options.schedule ? options.schedule : ScheduleFn(sched::Schedule);
  std::vector<sched::Resources> requests;
  for (const SimJob& j : pool) {
    for (const sched::TaskGroup& g : j.job.groups) {
      for (int k = 0; k < g.count; ++k) requests.push_back(g.request);
    }
  }
  std::vector<sched::WorkloadClass> classes = WorkloadClasses(requests);
  sched::Policy policy = policy_in;
  policy.seed = options.seed;
  if (policy.workload.empty()) policy.workload = classes;

  ClusterState cluster(nodes);
  const int64_t capacity = cluster.capacity().gpu_milli;
  if (capacity <= 0) return InvalidArgumentError("the cluster has no GPUs", "nodes");
  // Fragmentation per node, updated for the one node a bind touches.
  double total_weight = 0;
  for (const sched::WorkloadClass& c : classes) total_weight += c.weight;
  auto node_frag = [&](const NodeFree& n) {
    double f = 0;
    if (n.gpu_free.empty()) return f;
    for (const sched::WorkloadClass& c : classes) f += c.weight / total_weight * NodeFragmentMilli(n, c.request);
    return f;
  };
  std::vector<double> frag(nodes.size());
  double frag_total = 0;
  for (size_t i = 0; i < nodes.size(); ++i) frag_total += frag[i] = node_frag(cluster.free()[i]);

  sched::Snapshot snap;
  snap.nodes = nodes;
  snap.queues.push_back(sched::Queue{.name = "default"});
  FillResult result;
  result.policy = policy.name;
  result.capacity_gpus = static_cast<double>(capacity) / 1000.0;
  std::mt19937_64 rng(options.seed);
  std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
  std::vector<size_t> trace_order;
  if (options.order == FillOrder::kTrace) {
    trace_order.resize(pool.size());
    for (size_t i = 0; i < pool.size(); ++i) trace_order[i] = i;
    std::shuffle(trace_order.begin(), trace_order.end(), rng);
  }
  const uint64_t base_seed = policy.seed;
  int64_t arrived = 0;
  auto wall = Clock::now();
  auto last_progress = wall;
  for (int64_t k = 0; static_cast<double>(arrived) < options.until * static_cast<double>(capacity); ++k) {
    const size_t step = static_cast<size_t>(k);
    const SimJob& src = pool[step < trace_order.size() ? trace_order[step] : pick(rng)];
    // A fresh seed per cycle: a scorer is created per cycle, and the same
    // seed every cycle would repeat the same random draws node by node.
    policy.seed = base_seed + 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(k + 1);
    sched::Job job = src.job;
    job.id = fmt::format("fill-{}", k);
    job.queue = "default";
    job.submit_time = k;
    job.priority = 0;
    snap.now = k;
    snap.pending.clear();
    snap.pending.push_back(job);
    for (const sched::TaskGroup& g : job.groups) arrived += g.request.gpu_milli * g.count;
    if (options.validate) {
      Status st = sched::ValidateSnapshot(snap);
      if (!st.ok()) return st.WithPrefix(fmt::format("policy {}: fill step {}", policy.name, k));
    }
    auto t0 = Clock::now();
    sched::Plan plan = schedule(snap, policy);
    result.schedule_seconds += Seconds(Clock::now() - t0);
    bool bound = false;
    for (const sched::Bind& b : plan.binds) {
      if (b.job_id != job.id) {
        return InternalError(fmt::format("policy {}: fill step {} binds unknown job {}", policy.name, k, b.job_id));
      }
      if (static_cast<int>(b.tasks.size()) < job.GangSize()) {
        return InternalError(fmt::format("policy {}: fill step {} binds part of a gang", policy.name, k));
      }
      if (Status st = cluster.Allocate(job, b.tasks); !st.ok()) {
        return InternalError(fmt::format("policy {}: fill step {}: {}", policy.name, k, st.message()));
      }
      for (const sched::TaskPlacement& t : b.tasks) {
        size_t i = static_cast<size_t>(cluster.NodeIndex(t.node));
        frag_total -= frag[i];
        frag_total += frag[i] = node_frag(cluster.free()[i]);
      }
      sched::RunningJob rj;
      rj.job = job;
      rj.start_time = k;
      rj.tasks = b.tasks;
      snap.running.push_back(std::move(rj));
      bound = true;
    }
    if (!plan.preemptions.empty()) {
      return InternalError(fmt::format("policy {}: fill step {} preempts; the fill protocol has no preemption", policy.name, k));
    }
    if (!bound) ++result.failed;
    FillPoint p;
    p.tasks = k + 1;
    p.failed = result.failed;
    p.arrived = static_cast<double>(arrived) / static_cast<double>(capacity);
    p.allocated = static_cast<double>(cluster.allocated().gpu_milli) / static_cast<double>(capacity);
    p.unallocated = 1 - p.allocated;
    p.fragmented = frag_total / static_cast<double>(capacity);
    result.curve.push_back(p);
    if (options.progress != nullptr && Clock::now() - last_progress > std::chrono::seconds(2)) {
      last_progress = Clock::now();
      *options.progress << fmt::format("fill {}: {} tasks, arrived {:.1f}% of GPU capacity, {} failed\n",
                                       policy.name, k + 1, 100 * p.arrived, result.failed);
      options.progress->flush();
    }
  }
  return result;
}

}  // namespace lathe::sim
