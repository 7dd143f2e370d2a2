#include "sched/scenario.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "base/json.h"
#include "base/yaml.h"

namespace lathe::sched {
namespace {

Status Bad(const std::string& field, const std::string& message) {
  return InvalidArgumentError(fmt::format("{}: {}", field, message), field);
}

// {cpu_milli, memory_mib, gpu_milli}; absent dimensions keep *out's value.
Status ReadResources(const JsonValue& v, const std::string& path, Resources* out) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  RETURN_IF_ERROR(r.Int("cpu_milli", &out->cpu_milli));
  RETURN_IF_ERROR(r.Int("memory_mib", &out->memory_mib));
  RETURN_IF_ERROR(r.Int("gpu_milli", &out->gpu_milli));
  return r.Finish();
}

Status ReadEffect(const std::string& s, const std::string& field, TaintEffect* out) {
  if (s == "NoSchedule") {
    *out = TaintEffect::kNoSchedule;
  } else if (s == "PreferNoSchedule") {
    *out = TaintEffect::kPreferNoSchedule;
  } else {
    return Bad(field, fmt::format("expected NoSchedule or PreferNoSchedule, got \"{}\"", s));
  }
  return OkStatus();
}

template <typename F>
Status ForEachItem(ObjectReader& r, std::string_view key, F f) {
  ASSIGN_OR_RETURN(const JsonValue* list, r.Value(key));
  if (list == nullptr) return OkStatus();
  if (!list->is_array()) return Bad(r.PathOf(key), "expected a list");
  for (size_t i = 0; i < list->items().size(); ++i) {
    RETURN_IF_ERROR(f(list->items()[i], fmt::format("{}[{}]", r.PathOf(key), i)));
  }
  return OkStatus();
}

Status ReadNodes(const JsonValue& v, const std::string& path, std::vector<Node>* out) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  Node n;
  int64_t count = 0, gpus = 0;
  RETURN_IF_ERROR(r.String("name", &n.name, Presence::kRequired));
  RETURN_IF_ERROR(r.Int("count", &count));
  RETURN_IF_ERROR(r.String("pool", &n.pool));
  RETURN_IF_ERROR(r.String("gpu_model", &n.gpu_model));
  RETURN_IF_ERROR(r.Int("cpu_milli", &n.capacity.cpu_milli, Presence::kRequired));
  RETURN_IF_ERROR(r.Int("memory_mib", &n.capacity.memory_mib, Presence::kRequired));
  RETURN_IF_ERROR(r.Int("gpus", &gpus));
  n.num_gpus = static_cast<int>(gpus);
  n.capacity.gpu_milli = 1000 * gpus;
  RETURN_IF_ERROR(r.StringMap("labels", &n.labels));
  RETURN_IF_ERROR(r.Bool("schedulable", &n.schedulable));
  RETURN_IF_ERROR(ForEachItem(r, "taints", [&](const JsonValue& t, const std::string& tp) {
    ASSIGN_OR_RETURN(ObjectReader tr, ObjectReader::Make(t, tp));
    Taint taint;
    std::string effect = "NoSchedule";
    RETURN_IF_ERROR(tr.String("key", &taint.key, Presence::kRequired));
    RETURN_IF_ERROR(tr.String("value", &taint.value));
    RETURN_IF_ERROR(tr.String("effect", &effect));
    RETURN_IF_ERROR(ReadEffect(effect, tr.PathOf("effect"), &taint.effect));
    n.taints.push_back(taint);
    return tr.Finish();
  }));
  RETURN_IF_ERROR(r.Finish());
  // `count: k` expands to nodes name-0 .. name-(k-1).
  if (count <= 0) {
    out->push_back(n);
  } else {
    for (int64_t i = 0; i < count; ++i) {
      Node copy = n;
      copy.name = fmt::format("{}-{}", n.name, i);
      out->push_back(copy);
    }
  }
  return OkStatus();
}

Status ReadQueue(const JsonValue& v, const std::string& path, Queue* q) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  RETURN_IF_ERROR(r.String("name", &q->name, Presence::kRequired));
  RETURN_IF_ERROR(r.String("parent", &q->parent));
  RETURN_IF_ERROR(r.Int("weight", &q->weight));
  RETURN_IF_ERROR(r.Bool("reclaimable", &q->reclaimable));
  ASSIGN_OR_RETURN(const JsonValue* g, r.Value("guarantee"));
  if (g) RETURN_IF_ERROR(ReadResources(*g, r.PathOf("guarantee"), &q->guarantee));
  ASSIGN_OR_RETURN(const JsonValue* c, r.Value("ceiling"));
  if (c) RETURN_IF_ERROR(ReadResources(*c, r.PathOf("ceiling"), &q->ceiling.value));
  return r.Finish();
}

// The fields of a job; for running jobs also start_time and placements.
Status ReadJob(const JsonValue& v, const std::string& path, Job* job, RunningJob* running) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  RETURN_IF_ERROR(r.String("id", &job->id, Presence::kRequired));
  RETURN_IF_ERROR(r.String("queue", &job->queue, Presence::kRequired));
  RETURN_IF_ERROR(r.Int("priority", &job->priority));
  RETURN_IF_ERROR(r.Int("submit_time", &job->submit_time));
  int64_t min_available = 0;
  RETURN_IF_ERROR(r.Int("min_available", &min_available));
  job->min_available = static_cast<int>(min_available);
  RETURN_IF_ERROR(r.StringMap("node_selector", &job->node_selector));
  RETURN_IF_ERROR(r.String("gpu_model", &job->gpu_model));
  RETURN_IF_ERROR(r.String("pool", &job->pool));
  RETURN_IF_ERROR(r.Int("attained_gpu_seconds", &job->attained_gpu_seconds));
  RETURN_IF_ERROR(r.Bool("preemptible", &job->preemptible));
  ASSIGN_OR_RETURN(const JsonValue* est, r.Value("runtime_estimate"));
  if (est) {
    if (est->type() != JsonValue::Type::kInt) return Bad(r.PathOf("runtime_estimate"), "expected an integer");
    job->runtime_estimate = est->as_int();
  }
  auto read_group = [&](const JsonValue& gv, const std::string& gp) -> Status {
    ASSIGN_OR_RETURN(ObjectReader gr, ObjectReader::Make(gv, gp));
    TaskGroup g;
    int64_t count = 1;
    RETURN_IF_ERROR(gr.String("name", &g.name));
    RETURN_IF_ERROR(gr.Int("count", &count));
    g.count = static_cast<int>(count);
    RETURN_IF_ERROR(gr.Int("cpu_milli", &g.request.cpu_milli));
    RETURN_IF_ERROR(gr.Int("memory_mib", &g.request.memory_mib));
    RETURN_IF_ERROR(gr.Int("gpu_milli", &g.request.gpu_milli));
    job->groups.push_back(g);
    return gr.Finish();
  };
  // `tasks:` is one group; `groups:` a list of them.
  ASSIGN_OR_RETURN(const JsonValue* tasks, r.Value("tasks"));
  if (tasks) RETURN_IF_ERROR(read_group(*tasks, r.PathOf("tasks")));
  RETURN_IF_ERROR(ForEachItem(r, "groups", read_group));
  if (job->groups.empty()) return Bad(path, "a job needs tasks or groups");
  RETURN_IF_ERROR(ForEachItem(r, "tolerations", [&](const JsonValue& t, const std::string& tp) {
    ASSIGN_OR_RETURN(ObjectReader tr, ObjectReader::Make(t, tp));
    Toleration tol;
    std::string effect;
    RETURN_IF_ERROR(tr.String("key", &tol.key));
    RETURN_IF_ERROR(tr.String("op", &tol.op));
    RETURN_IF_ERROR(tr.String("value", &tol.value));
    RETURN_IF_ERROR(tr.String("effect", &effect));
    if (!effect.empty()) {
      TaintEffect e;
      RETURN_IF_ERROR(ReadEffect(effect, tr.PathOf("effect"), &e));
      tol.effect = e;
    }
    job->tolerations.push_back(tol);
    return tr.Finish();
  }));
  if (running != nullptr) {
    RETURN_IF_ERROR(r.Int("start_time", &running->start_time));
    // placements: one per task in (group, index) order: {node, gpus: [i..]}.
    std::vector<std::pair<int, int>> order;
    for (size_t g = 0; g < job->groups.size(); ++g) {
      for (int t = 0; t < job->groups[g].count; ++t) order.emplace_back(static_cast<int>(g), t);
    }
    size_t k = 0;
    RETURN_IF_ERROR(ForEachItem(r, "placements", [&](const JsonValue& p, const std::string& pp) {
      if (k >= order.size()) return Bad(pp, "more placements than tasks");
      ASSIGN_OR_RETURN(ObjectReader pr, ObjectReader::Make(p, pp));
      TaskPlacement tp;
      tp.group = order[k].first;
      tp.index = order[k].second;
      ++k;
      RETURN_IF_ERROR(pr.String("node", &tp.node, Presence::kRequired));
      int64_t gpu = job->groups[tp.group].request.gpu_milli;
      RETURN_IF_ERROR(ForEachItem(pr, "gpus", [&](const JsonValue& i, const std::string& ip) {
        if (i.type() != JsonValue::Type::kInt) return Bad(ip, "expected a GPU index");
        tp.gpus.push_back({static_cast<int>(i.as_int()), gpu >= 1000 ? 1000 : gpu});
        return OkStatus();
      }));
      running->tasks.push_back(tp);
      return pr.Finish();
    }));
  }
  return r.Finish();
}

Status ReadPolicy(const JsonValue& v, const std::string& path, Policy* p) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  std::string name, scorer, queue_order, job_order;
  RETURN_IF_ERROR(r.String("name", &name, Presence::kRequired));
  auto named = NamedPolicy(name);
  if (!named.ok()) return Bad(r.PathOf("name"), named.status().message());
  *p = *named;
  RETURN_IF_ERROR(r.String("scorer", &p->scorer));
  RETURN_IF_ERROR(r.Bool("largest_first", &p->largest_first));
  RETURN_IF_ERROR(r.Bool("gang", &p->gang));
  RETURN_IF_ERROR(r.Bool("preempt", &p->preempt));
  RETURN_IF_ERROR(r.Bool("reclaim", &p->reclaim));
  RETURN_IF_ERROR(r.Bool("backfill", &p->backfill));
  RETURN_IF_ERROR(r.Bool("head_blocks", &p->head_blocks));
  RETURN_IF_ERROR(r.Double("aging_per_hour", &p->aging_per_hour));
  int64_t seed = static_cast<int64_t>(p->seed);
  RETURN_IF_ERROR(r.Int("seed", &seed));
  p->seed = static_cast<uint64_t>(seed);
  RETURN_IF_ERROR(r.String("queue_order", &queue_order));
  if (queue_order == "fifo") p->queue_order = QueueOrder::kFifo;
  if (queue_order == "drf") p->queue_order = QueueOrder::kDrf;
  if (!queue_order.empty() && queue_order != "fifo" && queue_order != "drf") {
    return Bad(r.PathOf("queue_order"), "expected fifo or drf");
  }
  RETURN_IF_ERROR(r.String("job_order", &job_order));
  if (job_order == "fifo") {
    p->job_order = JobOrder::kFifo;
  } else if (job_order == "priority") {
    p->job_order = JobOrder::kPriority;
  } else if (job_order == "sjf") {
    p->job_order = JobOrder::kShortestFirst;
  } else if (job_order == "las") {
    p->job_order = JobOrder::kLeastAttained;
  } else if (!job_order.empty()) {
    return Bad(r.PathOf("job_order"), "expected fifo, priority, sjf or las");
  }
  RETURN_IF_ERROR(ForEachItem(r, "workload", [&](const JsonValue& w, const std::string& wp) {
    ASSIGN_OR_RETURN(ObjectReader wr, ObjectReader::Make(w, wp));
    WorkloadClass c;
    RETURN_IF_ERROR(wr.Int("cpu_milli", &c.request.cpu_milli));
    RETURN_IF_ERROR(wr.Int("memory_mib", &c.request.memory_mib));
    RETURN_IF_ERROR(wr.Int("gpu_milli", &c.request.gpu_milli));
    RETURN_IF_ERROR(wr.Double("weight", &c.weight));
    p->workload.push_back(c);
    return wr.Finish();
  }));
  return r.Finish();
}

Status ReadExpect(const JsonValue& v, const std::string& path, ScenarioExpect* e) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  ASSIGN_OR_RETURN(const JsonValue* binds, r.Value("binds"));
  if (binds) {
    if (!binds->is_object()) return Bad(r.PathOf("binds"), "expected a map of job id to nodes");
    for (const auto& [job, nodes] : binds->members()) {
      std::string jp = r.PathOf("binds") + "." + job;
      std::vector<std::string>& list = e->binds[job];
      if (nodes.is_string()) {
        list.push_back(nodes.as_string());
        continue;
      }
      if (!nodes.is_array()) return Bad(jp, "expected a node name or a list of them");
      for (const JsonValue& n : nodes.items()) {
        if (!n.is_string()) return Bad(jp, "expected node names");
        list.push_back(n.as_string());
      }
    }
  }
  ASSIGN_OR_RETURN(const JsonValue* gpus, r.Value("bind_gpus"));
  if (gpus) {
    if (!gpus->is_object()) return Bad(r.PathOf("bind_gpus"), "expected a map of job id to GPU lists");
    for (const auto& [job, tasks] : gpus->members()) {
      std::string jp = r.PathOf("bind_gpus") + "." + job;
      if (!tasks.is_array()) return Bad(jp, "expected a list per task");
      auto& out = e->bind_gpus[job];
      for (const JsonValue& t : tasks.items()) {
        if (!t.is_array()) return Bad(jp, "expected a list of GPU indices per task");
        std::vector<int> idx;
        for (const JsonValue& i : t.items()) idx.push_back(static_cast<int>(i.as_int()));
        out.push_back(idx);
      }
    }
  }
  RETURN_IF_ERROR(r.StringList("bound", &e->bound));
  RETURN_IF_ERROR(r.Bool("any_other_binds", &e->any_other_binds));
  RETURN_IF_ERROR(r.StringMap("pending", &e->pending));
  ASSIGN_OR_RETURN(const JsonValue* pre, r.Value("preemptions"));
  if (pre) {
    e->preemptions.emplace();
    RETURN_IF_ERROR(ForEachItem(r, "preemptions", [&](const JsonValue& p, const std::string& pp) {
      ASSIGN_OR_RETURN(ObjectReader pr, ObjectReader::Make(p, pp));
      std::string victim, for_job;
      RETURN_IF_ERROR(pr.String("victim", &victim, Presence::kRequired));
      RETURN_IF_ERROR(pr.String("for", &for_job, Presence::kRequired));
      e->preemptions->emplace_back(victim, for_job);
      return pr.Finish();
    }));
  }
  ASSIGN_OR_RETURN(const JsonValue* res, r.Value("reservations"));
  if (res) {
    e->reservations.emplace();
    if (!res->is_object()) return Bad(r.PathOf("reservations"), "expected a map of job id to reservation");
    for (const auto& [job, rv] : res->members()) {
      ASSIGN_OR_RETURN(ObjectReader rr, ObjectReader::Make(rv, r.PathOf("reservations") + "." + job));
      ScenarioExpect::ReservationExpect re;
      RETURN_IF_ERROR(rr.StringList("nodes", &re.nodes));
      int64_t start = -1;
      RETURN_IF_ERROR(rr.Int("start", &start));
      if (start >= 0) re.start = start;
      RETURN_IF_ERROR(rr.Finish());
      (*e->reservations)[job] = re;
    }
  }
  return r.Finish();
}

}  // namespace

StatusOr<Scenario> ParseScenario(std::string_view yaml) {
  ASSIGN_OR_RETURN(JsonValue doc, ParseYaml(yaml));
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(doc, ""));
  Scenario s;
  RETURN_IF_ERROR(r.String("description", &s.description));
  RETURN_IF_ERROR(r.Int("now", &s.snapshot.now));
  ASSIGN_OR_RETURN(const JsonValue* policy, r.Value("policy", Presence::kRequired));
  RETURN_IF_ERROR(ReadPolicy(*policy, "policy", &s.policy));
  RETURN_IF_ERROR(ForEachItem(r, "nodes", [&](const JsonValue& v, const std::string& p) {
    return ReadNodes(v, p, &s.snapshot.nodes);
  }));
  RETURN_IF_ERROR(ForEachItem(r, "queues", [&](const JsonValue& v, const std::string& p) {
    Queue q;
    RETURN_IF_ERROR(ReadQueue(v, p, &q));
    s.snapshot.queues.push_back(q);
    return OkStatus();
  }));
  RETURN_IF_ERROR(ForEachItem(r, "running", [&](const JsonValue& v, const std::string& p) {
    RunningJob rj;
    RETURN_IF_ERROR(ReadJob(v, p, &rj.job, &rj));
    s.snapshot.running.push_back(rj);
    return OkStatus();
  }));
  RETURN_IF_ERROR(ForEachItem(r, "pending", [&](const JsonValue& v, const std::string& p) {
    Job j;
    RETURN_IF_ERROR(ReadJob(v, p, &j, nullptr));
    s.snapshot.pending.push_back(j);
    return OkStatus();
  }));
  ASSIGN_OR_RETURN(const JsonValue* expect, r.Value("expect", Presence::kRequired));
  RETURN_IF_ERROR(ReadExpect(*expect, "expect", &s.expect));
  RETURN_IF_ERROR(r.Finish());
  return s;
}

std::vector<std::string> CheckScenario(const Scenario& s, const Plan& plan) {
  std::vector<std::string> diffs;
  const ScenarioExpect& e = s.expect;
  std::map<std::string, const Bind*> binds;
  for (const Bind& b : plan.binds) binds[b.job_id] = &b;
  auto nodes_of = [](const Bind& b) {
    std::vector<TaskPlacement> t = b.tasks;
    std::sort(t.begin(), t.end(), [](const TaskPlacement& x, const TaskPlacement& y) {
      return std::make_pair(x.group, x.index) < std::make_pair(y.group, y.index);
    });
    return t;
  };
  for (const auto& [job, nodes] : e.binds) {
    auto it = binds.find(job);
    if (it == binds.end()) {
      std::string why;
      for (const PendingReason& p : plan.pending) {
        if (p.job_id == job) why = p.reason;
      }
      diffs.push_back(fmt::format("{}: expected a bind, got none (pending: {})", job, why));
      continue;
    }
    std::vector<TaskPlacement> tasks = nodes_of(*it->second);
    std::vector<std::string> got;
    for (const TaskPlacement& t : tasks) got.push_back(t.node);
    bool same = got.size() == nodes.size();
    for (size_t i = 0; same && i < got.size(); ++i) same = nodes[i] == "*" || nodes[i] == got[i];
    if (!same) {
      diffs.push_back(fmt::format("{}: expected nodes [{}], got [{}]", job, fmt::join(nodes, ", "),
                                  fmt::join(got, ", ")));
    }
    auto g = e.bind_gpus.find(job);
    if (g != e.bind_gpus.end()) {
      std::vector<std::string> want, have;
      for (const auto& idx : g->second) want.push_back(fmt::format("[{}]", fmt::join(idx, ",")));
      for (const TaskPlacement& t : tasks) {
        std::vector<int> idx;
        for (const GpuShare& sh : t.gpus) idx.push_back(sh.index);
        have.push_back(fmt::format("[{}]", fmt::join(idx, ",")));
      }
      if (want != have) {
        diffs.push_back(fmt::format("{}: expected GPUs {}, got {}", job, fmt::join(want, " "),
                                    fmt::join(have, " ")));
      }
    }
  }
  for (const std::string& job : e.bound) {
    if (binds.count(job) == 0) diffs.push_back(fmt::format("{}: expected to be bound", job));
  }
  if (!e.any_other_binds) {
    for (const Bind& b : plan.binds) {
      if (e.binds.count(b.job_id) == 0 &&
          std::find(e.bound.begin(), e.bound.end(), b.job_id) == e.bound.end()) {
        std::vector<std::string> got;
        for (const TaskPlacement& t : nodes_of(b)) got.push_back(t.node);
        diffs.push_back(fmt::format("{}: unexpected bind to [{}]", b.job_id, fmt::join(got, ", ")));
      }
    }
  }
  for (const auto& [job, substring] : e.pending) {
    const PendingReason* found = nullptr;
    for (const PendingReason& p : plan.pending) {
      if (p.job_id == job) found = &p;
    }
    if (found == nullptr) {
      diffs.push_back(fmt::format("{}: expected pending with \"{}\", but it has no reason", job, substring));
    } else if (found->reason.find(substring) == std::string::npos) {
      diffs.push_back(fmt::format("{}: expected a reason containing \"{}\", got \"{}\"", job,
                                  substring, found->reason));
    }
  }
  if (e.preemptions) {
    std::set<std::pair<std::string, std::string>> want(e.preemptions->begin(), e.preemptions->end());
    std::set<std::pair<std::string, std::string>> have;
    for (const Preemption& p : plan.preemptions) have.emplace(p.job_id, p.for_job_id);
    if (want != have) {
      std::vector<std::string> w, h;
      for (const auto& [v, f] : want) w.push_back(v + " for " + f);
      for (const auto& [v, f] : have) h.push_back(v + " for " + f);
      diffs.push_back(fmt::format("preemptions: expected [{}], got [{}]", fmt::join(w, "; "),
                                  fmt::join(h, "; ")));
    }
  }
  if (e.reservations) {
    std::map<std::string, const Reservation*> have;
    for (const Reservation& r : plan.reservations) have[r.job_id] = &r;
    if (have.size() != e.reservations->size()) {
      diffs.push_back(fmt::format("reservations: expected {}, got {}", e.reservations->size(), have.size()));
    }
    for (const auto& [job, re] : *e.reservations) {
      auto it = have.find(job);
      if (it == have.end()) {
        diffs.push_back(fmt::format("{}: expected a reservation", job));
        continue;
      }
      std::vector<std::string> a = re.nodes, b = it->second->nodes;
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      if (!a.empty() && a != b) {
        diffs.push_back(fmt::format("{}: expected reserved nodes [{}], got [{}]", job,
                                    fmt::join(a, ", "), fmt::join(b, ", ")));
      }
      if (re.start && *re.start != it->second->expected_start) {
        diffs.push_back(fmt::format("{}: expected reservation start {}, got {}", job, *re.start,
                                    it->second->expected_start));
      }
    }
  }
  return diffs;
}

std::vector<std::string> CheckPlanInvariants(const Snapshot& s, const Policy& policy, const Plan& plan) {
  std::vector<std::string> bad;
  std::map<std::string, int> node_index;
  for (size_t i = 0; i < s.nodes.size(); ++i) node_index[s.nodes[i].name] = static_cast<int>(i);
  std::map<std::string, const Job*> pending;
  for (const Job& j : s.pending) pending[j.id] = &j;
  std::map<std::string, int> queue_index;
  for (size_t i = 0; i < s.queues.size(); ++i) queue_index[s.queues[i].name] = static_cast<int>(i);

  std::vector<Resources> used(s.nodes.size());
  std::vector<std::vector<int64_t>> gpu(s.nodes.size());
  for (size_t i = 0; i < s.nodes.size(); ++i) gpu[i].assign(s.nodes[i].num_gpus, 0);
  std::vector<Resources> queue_alloc(s.queues.size());
  auto charge = [&](const Job& job, const TaskPlacement& tp, const std::string& who) {
    auto n = node_index.find(tp.node);
    if (n == node_index.end()) {
      bad.push_back(fmt::format("{}: unknown node {}", who, tp.node));
      return;
    }
    const Resources& req = job.groups[tp.group].request;
    used[n->second] += Resources{req.cpu_milli, req.memory_mib, 0};
    int64_t sum = 0;
    for (const GpuShare& sh : tp.gpus) {
      if (sh.index < 0 || sh.index >= s.nodes[n->second].num_gpus) {
        bad.push_back(fmt::format("{}: GPU {} not on {}", who, sh.index, tp.node));
        continue;
      }
      gpu[n->second][sh.index] += sh.milli;
      sum += sh.milli;
    }
    if (sum != req.gpu_milli) bad.push_back(fmt::format("{}: GPU shares {} != request {}", who, sum, req.gpu_milli));
    if (req.gpu_milli > 0 && req.gpu_milli < 1000 && tp.gpus.size() != 1) {
      bad.push_back(fmt::format("{}: a fraction spread over {} GPUs", who, tp.gpus.size()));
    }
    for (int q = queue_index[job.queue]; q >= 0;
         q = s.queues[q].parent.empty() ? -1 : queue_index[s.queues[q].parent]) {
      queue_alloc[q] += req;
    }
  };
  for (const RunningJob& rj : s.running) {
    for (const TaskPlacement& tp : rj.tasks) charge(rj.job, tp, rj.job.id);
  }
  std::vector<Resources> before = queue_alloc;
  std::set<std::string> bound;
  for (const Bind& b : plan.binds) {
    auto j = pending.find(b.job_id);
    if (j == pending.end()) {
      bad.push_back(fmt::format("{}: bound but not pending", b.job_id));
      continue;
    }
    if (!bound.insert(b.job_id).second) bad.push_back(fmt::format("{}: bound twice", b.job_id));
    const Job& job = *j->second;
    int need = policy.gang ? job.GangSize() : 1;
    if (static_cast<int>(b.tasks.size()) < need) {
      bad.push_back(fmt::format("{}: partial gang, {} of {} tasks", b.job_id, b.tasks.size(), need));
    }
    std::set<std::pair<int, int>> seen;
    for (const TaskPlacement& tp : b.tasks) {
      if (tp.group < 0 || tp.group >= static_cast<int>(job.groups.size()) || tp.index < 0 ||
          tp.index >= job.groups[tp.group].count || !seen.insert({tp.group, tp.index}).second) {
        bad.push_back(fmt::format("{}: bad task ({}, {})", b.job_id, tp.group, tp.index));
        continue;
      }
      charge(job, tp, b.job_id);
    }
  }
  for (size_t i = 0; i < s.nodes.size(); ++i) {
    const Node& n = s.nodes[i];
    if (used[i].cpu_milli > n.capacity.cpu_milli || used[i].memory_mib > n.capacity.memory_mib) {
      bad.push_back(fmt::format("node {} over-committed: cpu {}/{} mem {}/{}", n.name, used[i].cpu_milli,
                                n.capacity.cpu_milli, used[i].memory_mib, n.capacity.memory_mib));
    }
    for (int g = 0; g < n.num_gpus; ++g) {
      if (gpu[i][g] > 1000) bad.push_back(fmt::format("node {} GPU {} at {} milli", n.name, g, gpu[i][g]));
    }
  }
  for (size_t q = 0; q < s.queues.size(); ++q) {
    // A ceiling may already be exceeded by running jobs (it was lowered);
    // the plan must not add to a dimension over it.
    const Resources& c = s.queues[q].ceiling.value;
    auto over = [&](int64_t now, int64_t was, int64_t cap) { return now > cap && now > was; };
    if (over(queue_alloc[q].cpu_milli, before[q].cpu_milli, c.cpu_milli) ||
        over(queue_alloc[q].memory_mib, before[q].memory_mib, c.memory_mib) ||
        over(queue_alloc[q].gpu_milli, before[q].gpu_milli, c.gpu_milli)) {
      bad.push_back(fmt::format("queue {} over its ceiling", s.queues[q].name));
    }
  }
  // Preemptions: running, preemptible victims, each once, for pending jobs
  // that are not bound; a victim of another queue (reclaim) never takes its
  // queue below its guarantee.
  std::map<std::string, const RunningJob*> running;
  for (const RunningJob& rj : s.running) running[rj.job.id] = &rj;
  std::set<std::string> victims;
  // Walk the preemptions in plan order as the scheduler made them: what a
  // queue holds is running + binds - victims so far + the gangs of earlier
  // preemptors (they hold their room). A reclaim victim must leave its
  // queue at or above its guarantee in every resource it uses.
  std::vector<Resources> held = queue_alloc;
  auto add_path = [&](const std::string& queue, const Resources& r, int sign) {
    for (int q = queue_index[queue]; q >= 0;
         q = s.queues[q].parent.empty() ? -1 : queue_index[s.queues[q].parent]) {
      if (sign > 0) {
        held[q] += r;
      } else {
        held[q] -= r;
      }
    }
  };
  auto gang_of = [&](const Job& job) {
    Resources gang;
    int left = policy.gang ? job.GangSize() : 1;
    for (const TaskGroup& g : job.groups) {
      int take = std::min(left, g.count);
      gang += g.request * take;
      left -= take;
    }
    return gang;
  };
  std::string current;
  for (size_t i = 0; i <= plan.preemptions.size(); ++i) {
    const std::string next = i < plan.preemptions.size() ? plan.preemptions[i].for_job_id : "";
    if (next != current && !current.empty() && pending.count(current)) {
      add_path(pending[current]->queue, gang_of(*pending[current]), +1);
    }
    current = next;
    if (i == plan.preemptions.size()) break;
    const Preemption& p = plan.preemptions[i];
    auto v = running.find(p.job_id);
    auto f = pending.find(p.for_job_id);
    if (v == running.end() || f == pending.end()) continue;
    Resources use;
    for (const TaskPlacement& tp : v->second->tasks) use += v->second->job.groups[tp.group].request;
    int q = queue_index[v->second->job.queue];
    const Resources& g = s.queues[q].guarantee;
    if (v->second->job.queue != f->second->queue &&
        ((use.cpu_milli > 0 && held[q].cpu_milli - use.cpu_milli < g.cpu_milli) ||
         (use.memory_mib > 0 && held[q].memory_mib - use.memory_mib < g.memory_mib) ||
         (use.gpu_milli > 0 && held[q].gpu_milli - use.gpu_milli < g.gpu_milli))) {
      bad.push_back(fmt::format("reclaiming {} took queue {} below its guarantee", p.job_id,
                                s.queues[q].name));
    }
    add_path(v->second->job.queue, use, -1);
  }
  std::set<std::string> reasoned;
  for (const PendingReason& p : plan.pending) {
    if (p.reason.empty()) bad.push_back(fmt::format("{}: empty pending reason", p.job_id));
    if (bound.count(p.job_id)) bad.push_back(fmt::format("{}: bound and pending", p.job_id));
    if (!reasoned.insert(p.job_id).second) bad.push_back(fmt::format("{}: two pending reasons", p.job_id));
  }
  for (const Job& j : s.pending) {
    if (!bound.count(j.id) && !reasoned.count(j.id)) {
      bad.push_back(fmt::format("{}: neither bound nor given a reason", j.id));
    }
  }
  return bad;
}

}  // namespace lathe::sched
