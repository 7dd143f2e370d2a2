// One scheduling cycle. README.md describes the cycle and its rules; the
// comments here say why the code is shaped as it is.
#include "sched/scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <unordered_map>

#include "sched/cycle.h"
#include "sched/cluster_state.h"
#include "sched/describe.h"
#include "sched/queues.h"
#include "sched/scorer.h"
#include "sched/statement.h"

namespace lathe::sched {
namespace internal {
namespace {

// Up to this many nodes every fitting node is scored; above it, the first
// max(kMinCandidates, N / kCandidateDivisor) fitting nodes found are (see
// README.md "Candidate nodes").
constexpr int kScoreAllNodesUpTo = 2000;
constexpr int kMinCandidates = 100;
constexpr int kCandidateDivisor = 100;
// Failed requests remembered per eligibility class (see failures_).
constexpr size_t kMaxRememberedFailures = 32;

bool Tolerates(const std::vector<Toleration>& tolerations, const Taint& taint) {
  for (const Toleration& t : tolerations) {
    if (t.effect && *t.effect != taint.effect) continue;
    if (t.op == "Exists") {
      if (t.key.empty() || t.key == taint.key) return true;
    } else if (t.key == taint.key && t.value == taint.value) {
      return true;
    }
  }
  return false;
}

std::string TaintText(const Taint& t) {
  return fmt::format("{}={}:{}", t.key, t.value,
                     t.effect == TaintEffect::kNoSchedule ? "NoSchedule" : "PreferNoSchedule");
}

std::string LabelsText(const std::map<std::string, std::string>& labels) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : labels) parts.push_back(k + "=" + v);
  return fmt::format("{}", fmt::join(parts, ","));
}

// Where a job may run, by its static constraints only.

}  // namespace

Cycle::Cycle(const Snapshot& snapshot, const Policy& policy)
    : snapshot_(snapshot), policy_(policy), state_(snapshot), queues_(snapshot, state_.total()) {
  ScorerEnv env{&snapshot, &policy};
  auto scorer = MakeScorer(policy.scorer, env);
  scorer_ = scorer.ok() ? std::move(scorer).value() : MakeScorer("binpack", env).value();
  int n = state_.num_nodes();
  candidate_limit_ =
      n <= kScoreAllNodesUpTo ? std::max(n, 1) : std::max(kMinCandidates, n / kCandidateDivisor);
  evicted_.assign(snapshot.running.size(), false);
  for (const RunningJob& rj : snapshot.running) running_queue_.push_back(queues_.Index(rj.job.queue));
}

void Cycle::BuildJobs() {
  const Resources& total = state_.total();
  jobs_.reserve(snapshot_.pending.size());
  for (const Job& job : snapshot_.pending) {
    JobEntry e;
    e.job = &job;
    e.queue = queues_.Index(job.queue);
    int left = job.GangSize();
    for (const TaskGroup& g : job.groups) {
      e.total += g.request * g.count;
      int take = std::min(left, g.count);
      e.gang += g.request * take;
      left -= take;
    }
    double waited_h = static_cast<double>(std::max<int64_t>(0, snapshot_.now - job.submit_time)) / 3600.0;
    e.priority = static_cast<double>(job.priority) + policy_.aging_per_hour * waited_h;
    auto frac = [](int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / b : 0.0; };
    e.size = std::max({frac(e.total.cpu_milli, total.cpu_milli),
                       frac(e.total.memory_mib, total.memory_mib),
                       frac(e.total.gpu_milli, total.gpu_milli)});
    jobs_.push_back(e);
  }
  queue_jobs_.assign(queues_.size(), {});
  for (JobEntry& e : jobs_) queue_jobs_[e.queue].push_back(&e);
  auto age = [](const JobEntry* a, const JobEntry* b) {
    if (a->job->submit_time != b->job->submit_time) return a->job->submit_time < b->job->submit_time;
    return a->job->id < b->job->id;
  };
  auto size_then_age = [&](const JobEntry* a, const JobEntry* b) {
    if (policy_.largest_first && a->size != b->size) return a->size > b->size;
    return age(a, b);
  };
  for (auto& list : queue_jobs_) {
    switch (policy_.job_order) {
      case JobOrder::kFifo:
        std::sort(list.begin(), list.end(), age);
        break;
      case JobOrder::kPriority:
        std::sort(list.begin(), list.end(), [&](const JobEntry* a, const JobEntry* b) {
          if (a->priority != b->priority) return a->priority > b->priority;
          return size_then_age(a, b);
        });
        break;
      case JobOrder::kShortestFirst:
        std::sort(list.begin(), list.end(), [&](const JobEntry* a, const JobEntry* b) {
          int64_t ra = a->job->runtime_estimate.value_or(INT64_MAX);
          int64_t rb = b->job->runtime_estimate.value_or(INT64_MAX);
          if (ra != rb) return ra < rb;
          return size_then_age(a, b);
        });
        break;
      case JobOrder::kLeastAttained:
        std::sort(list.begin(), list.end(), [&](const JobEntry* a, const JobEntry* b) {
          if (a->job->attained_gpu_seconds != b->job->attained_gpu_seconds) {
            return a->job->attained_gpu_seconds < b->job->attained_gpu_seconds;
          }
          return size_then_age(a, b);
        });
        break;
    }
  }
  cursor_.assign(queues_.size(), 0);
  active_.assign(queues_.size(), 0);
  for (int q = 0; q < queues_.size(); ++q) {
    if (queue_jobs_[q].empty()) continue;
    for (int x = q; x >= 0; x = queues_.parent(x)) ++active_[x];
  }
}

// DRF: walk down from the top, at each level the child with the lowest
// share among those with jobs left (Volcano hdrf); ties by snapshot order.
// FIFO: the leaf whose next job is oldest.
int Cycle::PickQueue() {
  if (policy_.queue_order == QueueOrder::kFifo) {
    int best = -1;
    for (int q = 0; q < queues_.size(); ++q) {
      if (cursor_[q] >= queue_jobs_[q].size()) continue;
      if (best < 0) {
        best = q;
        continue;
      }
      const Job* a = queue_jobs_[q][cursor_[q]]->job;
      const Job* b = queue_jobs_[best][cursor_[best]]->job;
      if (a->submit_time < b->submit_time || (a->submit_time == b->submit_time && a->id < b->id)) best = q;
    }
    return best;
  }
  const std::vector<int>* level = &queues_.top_level();
  int chosen = -1;
  while (true) {
    int best = -1;
    double best_share = 0;
    for (int q : *level) {
      if (active_[q] == 0) continue;
      double s = queues_.Share(q);
      if (best < 0 || s < best_share) {
        best = q;
        best_share = s;
      }
    }
    if (best < 0) return chosen;
    chosen = best;
    if (cursor_[best] < queue_jobs_[best].size() || queues_.children(best).empty()) return best;
    level = &queues_.children(best);
  }
}

Eligibility& Cycle::EligibilityOf(const Job& job) {
  std::string key = job.pool;
  key += '\x1f';
  key += job.gpu_model;
  key += '\x1f';
  key += LabelsText(job.node_selector);
  for (const Toleration& t : job.tolerations) {
    key += fmt::format("\x1e{}|{}|{}|{}", t.key, t.op, t.value, t.effect ? static_cast<int>(*t.effect) : -1);
  }
  auto [it, inserted] = eligibility_.try_emplace(key);
  Eligibility& el = it->second;
  if (!inserted) return el;

  std::vector<std::string> where;
  if (!job.pool.empty()) where.push_back("in pool " + job.pool);
  if (!job.gpu_model.empty()) where.push_back("with gpu_model " + job.gpu_model);
  if (!job.node_selector.empty()) {
    where.push_back(fmt::format("with label{} {}", job.node_selector.size() > 1 ? "s" : "",
                                LabelsText(job.node_selector)));
  }
  if (!where.empty()) el.where = fmt::format(" {}", fmt::join(where, " "));

  // Filters in order; the first that leaves no group names the reason.
  int schedulable = 0, pool = 0, model = 0, selector = 0;
  int cordoned_nodes = 0, tainted_nodes = 0;
  const Taint* untolerated = nullptr;
  for (int g = 0; g < state_.num_groups(); ++g) {
    const Node& n = state_.node(state_.group_representative(g));
    const int size = state_.group_range(g).hi - state_.group_range(g).lo;
    if (!n.schedulable) {
      cordoned_nodes += size;
      continue;
    }
    ++schedulable;
    if (!job.pool.empty() && n.pool != job.pool) continue;
    ++pool;
    if (!job.gpu_model.empty() && n.gpu_model != job.gpu_model) continue;
    ++model;
    bool labels_ok = true;
    for (const auto& [k, v] : job.node_selector) {
      auto l = n.labels.find(k);
      if (l == n.labels.end() || l->second != v) {
        labels_ok = false;
        break;
      }
    }
    if (!labels_ok) continue;
    ++selector;
    bool taints_ok = true;
    for (const Taint& t : n.taints) {
      if (t.effect == TaintEffect::kNoSchedule && !Tolerates(job.tolerations, t)) {
        if (untolerated == nullptr) untolerated = &t;
        taints_ok = false;
        break;
      }
    }
    if (!taints_ok) {
      tainted_nodes += size;
      continue;
    }
    PositionRange r = state_.group_range(g);
    if (!el.ranges.empty() && el.ranges.back().hi == r.lo) {
      el.ranges.back().hi = r.hi;
    } else {
      el.ranges.push_back(r);
    }
  }
  std::vector<std::string> excluded;
  if (tainted_nodes > 0) {
    excluded.push_back(fmt::format("{} node{} with untolerated taint {}", tainted_nodes,
                                   tainted_nodes > 1 ? "s" : "", TaintText(*untolerated)));
  }
  if (cordoned_nodes > 0) {
    excluded.push_back(fmt::format("{} cordoned node{}", cordoned_nodes, cordoned_nodes > 1 ? "s" : ""));
  }
  if (!excluded.empty()) el.excluded = fmt::format("; not considered: {}", fmt::join(excluded, ", "));
  if (!el.ranges.empty()) return el;
  if (schedulable == 0) {
    el.reason = "no schedulable node (all nodes are cordoned)";
  } else if (pool == 0) {
    el.reason = fmt::format("no schedulable node in pool {}", job.pool);
  } else if (model == 0) {
    el.reason = fmt::format("no node has gpu_model {}{}", job.gpu_model,
                            job.pool.empty() ? "" : " in pool " + job.pool);
  } else if (selector == 0) {
    el.reason = fmt::format("no node has label{} {}{}", job.node_selector.size() > 1 ? "s" : "",
                            LabelsText(job.node_selector),
                            where.size() > 1 ? " and the job's other constraints" : "");
  } else {
    el.reason = fmt::format("every node{} has a taint the job does not tolerate ({})", el.where,
                            untolerated ? TaintText(*untolerated) : "?");
  }
  return el;
}

std::string Cycle::Diagnose(const Eligibility& el, const Resources& req) const {
  int nodes = 0, cpu = 0, mem = 0, gpu = 0;
  for (const PositionRange& r : el.ranges) {
    for (int p = r.lo; p < r.hi; ++p) {
      int n = state_.node_at(p);
      ++nodes;
      if (state_.free_cpu(n) < req.cpu_milli) ++cpu;
      if (state_.free_mem(n) < req.memory_mib) ++mem;
      if (req.gpu_milli > 0 && !state_.Fits(n, Resources{0, 0, req.gpu_milli})) ++gpu;
    }
  }
  std::vector<std::string> lacks;
  if (gpu > 0) {
    std::string what = IsFraction(req) ? fmt::format("a GPU with {} free", static_cast<double>(req.gpu_milli) / 1000)
                                       : fmt::format("{} free GPU{}", WholeGpus(req), WholeGpus(req) > 1 ? "s" : "");
    lacks.push_back(fmt::format("{} lack {}", gpu, what));
  }
  if (cpu > 0) lacks.push_back(fmt::format("{} lack cpu", cpu));
  if (mem > 0) lacks.push_back(fmt::format("{} lack memory", mem));
  return fmt::format("no node{} has room for {} ({} node{}: {}{})", el.where, DescribeResources(req),
                     nodes, nodes == 1 ? "" : "s", fmt::join(lacks, ", "), el.excluded);
}

bool Cycle::PlaceTask(const JobEntry& e, Eligibility& el, const Resources& req, bool first,
                      Statement& st, TaskPlacement* out, std::string* why) {
  (void)e;
  // A failure with every node holds without the reserved nodes too.
  for (int mode = 0; remember_failures_ && mode <= (exclude_ != nullptr ? 1 : 0); ++mode) {
    for (const auto& [failed, reason] : el.failures[mode]) {
      if (failed.FitsIn(req)) {
        *why = reason;
        return false;
      }
    }
  }
  fitting_.clear();
  int start = scorer_->RotateStart() ? rotate_ : 0;
  state_.FindFitting(el.ranges, req, start, candidate_limit_, &fitting_, &plan_.stats.node_evaluations,
                     exclude_);
  if (fitting_.empty()) {
    *why = Diagnose(el, req);
    // Only a failure against the committed state is safe to remember.
    auto& failures = el.failures[exclude_ != nullptr ? 1 : 0];
    if (remember_failures_ && first && st.size() == 0 && failures.size() < kMaxRememberedFailures) {
      failures.emplace_back(req, *why);
    }
    return false;
  }
  int best = -1;
  double best_score = 0;
  std::vector<GpuShare> gpus, best_gpus;
  for (int n : fitting_) {
    double s = scorer_->Score(state_, n, req, &gpus);
    ++plan_.stats.node_evaluations;
    if (best < 0 || s > best_score) {
      best = n;
      best_score = s;
      best_gpus = gpus;
    }
  }
  if (scorer_->RotateStart()) rotate_ = (state_.position_of(best) + 1) % std::max(1, state_.num_nodes());
  st.Place(best, e.queue, req, best_gpus);
  out->node = state_.node(best).name;
  out->gpus = std::move(best_gpus);
  return true;
}

int Cycle::PlaceTasks(const JobEntry& e, Eligibility& el, Statement& st, Bind* bind,
                      std::string* first_failure, int max_tasks) {
  const Job& job = *e.job;
  const int gang = policy_.gang ? job.GangSize() : 1;
  const int total = job.TotalTasks();
  int placed = 0, tried = 0;
  for (int g = 0; g < static_cast<int>(job.groups.size()); ++g) {
    const TaskGroup& tg = job.groups[g];
    for (int t = 0; t < tg.count && placed < max_tasks; ++t) {
      ++tried;
      // Each task must fit the queue given what the job already placed (the
      // up-front check covered the first GangSize() tasks only if they all
      // place).
      std::string q = queues_.CheckAllocatable(e.queue, tg.request);
      if (!q.empty()) {
        if (first_failure->empty()) *first_failure = q;
        tried += tg.count - t - 1;
        break;
      }
      TaskPlacement tp;
      tp.group = g;
      tp.index = t;
      std::string task_why;
      if (!PlaceTask(e, el, tg.request, placed == 0, st, &tp, &task_why)) {
        if (first_failure->empty()) *first_failure = task_why;
        // Identical tasks of the group will not fit either.
        tried += tg.count - t - 1;
        break;
      }
      bind->tasks.push_back(std::move(tp));
      ++placed;
    }
    // Stop early when the gang can no longer be reached.
    if (placed + (total - tried) < gang) break;
  }
  return placed;
}

bool Cycle::Allocate(JobEntry& e) {
  const Job& job = *e.job;
  ++plan_.stats.jobs_considered;
  queues_.SettlePending(e.queue, e.total);

  std::string why = queues_.CheckAllocatable(e.queue, e.gang);
  if (!why.empty()) {
    Pend(e, why);
    return false;
  }
  Eligibility& el = EligibilityOf(job);
  if (el.ranges.empty()) {
    Pend(e, el.reason);
    return false;
  }
  const int gang = policy_.gang ? job.GangSize() : 1;
  Statement st(&state_, &queues_);
  Bind bind;
  bind.job_id = job.id;
  std::string first_failure;
  exclude_ = reserved_for_ != nullptr && !MayUseReservedNodes(e) ? &reserved_ : nullptr;
  int placed = PlaceTasks(e, el, st, &bind, &first_failure);
  const bool excluded = exclude_ != nullptr;
  exclude_ = nullptr;
  if (placed >= gang && placed > 0) {
    st.Commit();
    plan_.stats.tasks_placed += placed;
    bound_.emplace_back(&e, plan_.binds.size());
    plan_.binds.push_back(std::move(bind));
    return false;
  }
  st.Discard();
  std::string reason = first_failure;
  if (job.GangSize() > 1 && policy_.gang) {
    reason = fmt::format("gang needs {} tasks{}{}; only {} fit: {}", job.GangSize(),
                         job.groups.size() == 1 ? " of " + DescribeResources(job.groups[0].request) : "",
                         el.where.empty() ? "" : " on nodes" + el.where, placed, first_failure);
  }
  if (excluded) {
    reason += fmt::format(
        "; nodes reserved for job {} from t={} were not considered (the job {} before then)",
        reserved_for_->job->id, reserved_start_,
        job.runtime_estimate ? "would still run" : "has no runtime estimate to show it ends");
  }
  Pend(e, reason);
  // Only a job short of free resources gets the reservation, not one held
  // back by its queue, its constraints or an existing reservation.
  const bool short_of_resources = !excluded && queues_.CheckAllocatable(e.queue, e.gang).empty();
  if (policy_.backfill && reserved_for_ == nullptr && short_of_resources) {
    Reserve(e, el, plan_.pending.size() - 1);
  }
  return short_of_resources;
}

void Cycle::BlockBehind(const JobEntry& head, int q) {
  const bool all = policy_.queue_order == QueueOrder::kFifo;
  for (int x = all ? 0 : q; x < (all ? queues_.size() : q + 1); ++x) {
    if (cursor_[x] >= queue_jobs_[x].size()) continue;
    for (; cursor_[x] < queue_jobs_[x].size(); ++cursor_[x]) {
      // Not tried, so not in failed_: a blocked job does not preempt.
      plan_.pending.push_back({queue_jobs_[x][cursor_[x]]->job->id,
                               fmt::format("behind job {}, which does not fit (strict order)", head.job->id)});
    }
    for (int y = x; y >= 0; y = queues_.parent(y)) --active_[y];
  }
}

Plan Cycle::Run() {
  BuildJobs();
  while (true) {
    int q = PickQueue();
    if (q < 0) break;
    JobEntry* e = queue_jobs_[q][cursor_[q]++];
    if (cursor_[q] == queue_jobs_[q].size()) {
      for (int x = q; x >= 0; x = queues_.parent(x)) --active_[x];
    }
    if (Allocate(*e) && policy_.head_blocks && !policy_.backfill) BlockBehind(*e, q);
  }
  if (policy_.preempt || policy_.reclaim) Evict();
  return std::move(plan_);
}

}  // namespace internal

Plan Schedule(const Snapshot& snapshot, const Policy& policy) {
  internal::Cycle cycle(snapshot, policy);
  return cycle.Run();
}

}  // namespace lathe::sched
