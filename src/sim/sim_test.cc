#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "sched/policy.h"
#include "sched/scheduler.h"
#include "sim/cluster_config.h"
#include "sim/metrics.h"
#include "sim/simulator.h"
#include "sim/trace.h"

namespace lathe::sim {
namespace {

using sched::Resources;

// ---------------------------------------------------------------------------
// A stand-in scheduler for the simulator's own tests: strict FIFO within
// priority (the head job blocks the rest), first fit, whole gangs. It lets these tests check
// the event loop with hand-computed answers independent of src/sched.
sched::Plan FirstFitFifo(const sched::Snapshot& s, const sched::Policy&) {
  struct Free {
    int64_t cpu, mem;
    std::vector<int64_t> gpus;
  };
  std::map<std::string, Free> free;
  for (const sched::Node& n : s.nodes) {
    free[n.name] = {n.capacity.cpu_milli, n.capacity.memory_mib,
                    std::vector<int64_t>(static_cast<size_t>(n.num_gpus), 1000)};
  }
  auto take = [&](const sched::Job& j, const sched::TaskPlacement& t) {
    Free& f = free[t.node];
    const Resources& r = j.groups[static_cast<size_t>(t.group)].request;
    f.cpu -= r.cpu_milli;
    f.mem -= r.memory_mib;
    for (const sched::GpuShare& g : t.gpus) f.gpus[static_cast<size_t>(g.index)] -= g.milli;
  };
  for (const sched::RunningJob& rj : s.running) {
    for (const sched::TaskPlacement& t : rj.tasks) take(rj.job, t);
  }
  std::vector<const sched::Job*> order;
  for (const sched::Job& j : s.pending) order.push_back(&j);
  std::stable_sort(order.begin(), order.end(), [](const sched::Job* a, const sched::Job* b) {
    if (a->priority != b->priority) return a->priority > b->priority;
    return a->submit_time < b->submit_time;
  });
  sched::Plan plan;
  bool blocked = false;
  for (const sched::Job* j : order) {
    if (blocked) {
      plan.pending.push_back({j->id, "behind the head job"});
      continue;
    }
    std::map<std::string, Free> trial = free;
    sched::Bind bind{j->id, {}};
    bool ok = true;
    for (size_t g = 0; g < j->groups.size() && ok; ++g) {
      const Resources& r = j->groups[g].request;
      for (int i = 0; i < j->groups[g].count && ok; ++i) {
        ok = false;
        for (const sched::Node& n : s.nodes) {
          if (!j->gpu_model.empty() && n.gpu_model != j->gpu_model) continue;
          Free& f = trial[n.name];
          if (f.cpu < r.cpu_milli || f.mem < r.memory_mib) continue;
          std::vector<sched::GpuShare> shares;
          if (r.gpu_milli > 0 && r.gpu_milli < 1000) {
            for (size_t k = 0; k < f.gpus.size(); ++k) {
              if (f.gpus[k] >= r.gpu_milli) {
                shares.push_back({static_cast<int>(k), r.gpu_milli});
                break;
              }
            }
            if (shares.empty()) continue;
          } else if (r.gpu_milli >= 1000) {
            for (size_t k = 0; k < f.gpus.size() && static_cast<int64_t>(shares.size()) * 1000 < r.gpu_milli; ++k) {
              if (f.gpus[k] == 1000) shares.push_back({static_cast<int>(k), 1000});
            }
            if (static_cast<int64_t>(shares.size()) * 1000 < r.gpu_milli) continue;
          }
          sched::TaskPlacement t{static_cast<int>(g), i, n.name, shares};
          f.cpu -= r.cpu_milli;
          f.mem -= r.memory_mib;
          for (const sched::GpuShare& sh : shares) f.gpus[static_cast<size_t>(sh.index)] -= sh.milli;
          bind.tasks.push_back(t);
          ok = true;
          break;
        }
      }
    }
    if (ok) {
      free = trial;
      plan.binds.push_back(std::move(bind));
    } else {
      blocked = true;
      plan.pending.push_back({j->id, "does not fit"});
    }
  }
  return plan;
}

std::string SharedTrace(const std::string& name) {
  // Tests run from the build directory or the repo; the traces live in
  // ../shared/traces beside the repository root.
  std::filesystem::path root = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
  return (root / ".." / "shared" / "traces" / name).lexically_normal().string();
}

sched::Node MakeNode(const std::string& name, int gpus, int64_t cpu = 64000, int64_t mem = 512000) {
  sched::Node n;
  n.name = name;
  n.num_gpus = gpus;
  n.gpu_model = gpus > 0 ? "V100" : "";
  n.capacity = {cpu, mem, gpus * 1000};
  return n;
}

SimJob MakeJob(const std::string& id, int64_t submit, int64_t duration, int64_t gpu_milli,
               int tasks = 1, int64_t priority = 0) {
  SimJob j;
  j.duration = duration;
  j.job.id = id;
  j.job.queue = "default";
  j.job.submit_time = submit;
  j.job.priority = priority;
  j.job.groups.push_back({"task", tasks, {1000, 1024, gpu_milli}});
  j.job.runtime_estimate = duration;
  return j;
}

Workload OneNode(int gpus, std::vector<SimJob> jobs) {
  Workload w;
  w.nodes.push_back(MakeNode("n0", gpus));
  w.queues.push_back(sched::Queue{.name = "default"});
  w.jobs = std::move(jobs);
  return w;
}

SimOptions StandIn() {
  SimOptions o;
  o.schedule = FirstFitFifo;
  return o;
}

// ---------------------------------------------------------------------------
// Trace readers

TEST(Trace, PhillyRowsAreSortedShiftedAndSplitIntoGangs) {
  std::string text =
      "timestamp,duration,num_gpus,gpu_time,cluster\n"
      "2017-10-09 07:01:55,66.0,1,66.0,11cb48\n"
      "2017-10-09 06:13:03,2951.0,16,47216.0,6214e9\n"
      "2017-10-09 06:13:04,10.4,12,120.0,6214e9\n"
      "\n";
  auto t = ParseTrace(TraceFormat::kPhilly, text, "p.csv", {});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->jobs.size(), 3u);
  EXPECT_EQ(t->jobs[0].id, "philly-3");
  EXPECT_EQ(t->jobs[0].submit_time, 0);
  EXPECT_EQ(t->jobs[0].tasks, 2);
  EXPECT_EQ(t->jobs[0].request.gpu_milli, 8000);
  EXPECT_EQ(t->jobs[0].request.cpu_milli, 8 * kPhillyCpuPerGpu);
  EXPECT_EQ(t->jobs[0].queue, "6214e9");
  EXPECT_EQ(t->jobs[1].submit_time, 1);
  EXPECT_EQ(t->jobs[1].tasks, 2);
  EXPECT_EQ(t->jobs[1].request.gpu_milli, 6000);
  EXPECT_EQ(t->jobs[1].duration, 10);
  EXPECT_EQ(t->jobs[2].submit_time, 48 * 60 + 52);
  EXPECT_EQ(t->jobs[2].request.gpu_milli, 1000);
}

TEST(Trace, BadRowNamesFileLineAndColumn) {
  std::string text =
      "timestamp,duration,num_gpus,gpu_time,cluster\n"
      "2017-10-09 07:01:55,66.0,1,66.0,a\n"
      "2017-10-09 07:01:56,abc,1,66.0,a\n"
      "2017-13-09 07:01:56,1,1,66.0,a\n";
  auto t = ParseTrace(TraceFormat::kPhilly, text, "philly_pollux.csv", {});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("philly_pollux.csv:3: duration: \"abc\" is not a number"),
            std::string::npos)
      << t.status().message();
  EXPECT_EQ(t.status().field(), "duration");

  ReadOptions skip;
  skip.on_bad_row = BadRowPolicy::kSkip;
  auto s = ParseTrace(TraceFormat::kPhilly, text, "philly_pollux.csv", skip);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->jobs.size(), 1u);
  EXPECT_EQ(s->rows, 3);
  EXPECT_EQ(s->skipped_rows, 2);
  ASSERT_EQ(s->skipped_examples.size(), 2u);
  EXPECT_NE(s->skipped_examples[1].find("philly_pollux.csv:4: timestamp"), std::string::npos);
}

TEST(Trace, MissingColumnAndWrongFieldCount) {
  auto t = ParseTrace(TraceFormat::kPhilly, "timestamp,duration\n", "x.csv", {});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("x.csv:1: header: missing column \"num_gpus\""), std::string::npos);
  auto u = ParseTrace(TraceFormat::kCsv,
                      "id,submit_time,duration,cpu_milli,memory_mib,gpu_milli\na,1,2,3\n", "y.csv", {});
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("y.csv:2: row: 4 fields, the header has 6"), std::string::npos);
}

TEST(Trace, OpenbPodsFractionalAndWholeGpus) {
  std::string text =
      "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"
      "p0,12000,16384,1,1000,,LS,Running,0,100,0\n"
      "p1,6000,12288,1,460,,BE,Running,10,50,20\n"
      "p2,8000,8192,4,1000,V100M32,LS,Running,30,40,30\n"
      "p3,4000,1024,0,0,,BE,Pending,40,90,\n";
  auto t = ParseTrace(TraceFormat::kOpenb, text, "pods.csv", {});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->jobs.size(), 4u);
  EXPECT_EQ(t->jobs[0].request, (Resources{12000, 16384, 1000}));
  EXPECT_EQ(t->jobs[1].request.gpu_milli, 460);
  EXPECT_EQ(t->jobs[1].duration, 30);  // deletion − scheduled
  EXPECT_EQ(t->jobs[1].queue, "BE");
  EXPECT_EQ(t->jobs[2].request.gpu_milli, 4000);
  EXPECT_EQ(t->jobs[2].gpu_model, "V100M32");
  EXPECT_EQ(t->jobs[3].request.gpu_milli, 0);
  EXPECT_EQ(t->jobs[3].duration, 50);  // never scheduled: its lifetime

  auto bad = ParseTrace(TraceFormat::kOpenb,
                        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,creation_time,deletion_time\n"
                        "p,1,1,1,0,0,1\n",
                        "pods.csv", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("pods.csv:2: gpu_milli"), std::string::npos);
}

TEST(Trace, OpenbNodes) {
  auto n = ParseOpenbNodes("sn,cpu_milli,memory_mib,gpu,model\na,32000,262144,0,\nb,96000,393216,8,G2\n",
                           "nodes.csv", {});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(n->size(), 2u);
  EXPECT_EQ((*n)[0].num_gpus, 0);
  EXPECT_EQ((*n)[0].gpu_model, "");
  EXPECT_EQ((*n)[1].capacity, (Resources{96000, 393216, 8000}));
  EXPECT_EQ((*n)[1].gpu_model, "G2");
  auto bad = ParseOpenbNodes("sn,cpu_milli,memory_mib,gpu,model\na,x,1,0,\n", "nodes.csv", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("nodes.csv:2: cpu_milli: \"x\" is not a number"),
            std::string::npos);
}

TEST(Trace, LatheCsvFormat) {
  std::string text =
      "id,submit_time,duration,queue,priority,tasks,cpu_milli,memory_mib,gpu_milli,min_available,gpu_model\n"
      "train,100,3600,research,5,4,8000,65536,2000,4,A100\n"
      "notebook,50,600,,0,1,2000,4096,250,,\n";
  auto t = ParseTrace(TraceFormat::kCsv, text, "jobs.csv", {});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->jobs.size(), 2u);
  EXPECT_EQ(t->jobs[0].id, "notebook");
  EXPECT_EQ(t->jobs[0].queue, "default");
  EXPECT_EQ(t->jobs[1].submit_time, 50);
  EXPECT_EQ(t->jobs[1].tasks, 4);
  EXPECT_EQ(t->jobs[1].priority, 5);
  EXPECT_EQ(t->jobs[1].gpu_model, "A100");
  auto bad = ParseTrace(TraceFormat::kCsv,
                        "id,submit_time,duration,cpu_milli,memory_mib,gpu_milli\na,1,2,3,4,1500\n",
                        "jobs.csv", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("jobs.csv:2: gpu_milli"), std::string::npos);
}

TEST(Trace, RealTracesRowCounts) {
  std::string philly = SharedTrace("philly_pollux.csv");
  if (!std::filesystem::exists(philly)) GTEST_SKIP() << "trace not found: " << philly;
  auto p = ReadTrace(TraceFormat::kPhilly, philly, {});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->jobs.size(), 82247u);
  int64_t gpus = 0;
  for (const TraceJob& j : p->jobs) gpus += j.tasks * j.request.gpu_milli / 1000;
  auto raw = ReadFileToString(philly);
  ASSERT_TRUE(raw.ok());
  EXPECT_GT(gpus, 82247);

  auto pods = ReadTrace(TraceFormat::kOpenb, SharedTrace("openb_pod_list_default.csv"), {});
  ASSERT_TRUE(pods.ok()) << pods.status().ToString();
  EXPECT_EQ(pods->jobs.size(), 8152u);
  int fractional = 0;
  for (const TraceJob& j : pods->jobs) fractional += j.request.gpu_milli > 0 && j.request.gpu_milli < 1000;
  EXPECT_EQ(fractional, 3078);

  auto nodes = ReadOpenbNodes(SharedTrace("openb_node_list_all_node.csv"), {});
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  EXPECT_EQ(nodes->size(), 1523u);
  int64_t node_gpus = 0;
  for (const sched::Node& n : *nodes) node_gpus += n.num_gpus;
  EXPECT_EQ(node_gpus, 6212);
}

// ---------------------------------------------------------------------------
// Cluster config

TEST(ClusterConfig, NodeGroupsAndQueues) {
  auto c = ParseClusterConfig(R"(
nodes:
  - {count: 2, name_prefix: g-, cpu: 64, memory_mib: 1024, gpus: 8, gpu_model: V100,
     labels: {zone: a}, taints: [{key: gpu, value: "yes", effect: NoSchedule}], pool: train}
  - {count: 1, cpu: 8.5, memory_mib: 2048}
queues:
  - {name: root}
  - {name: a, parent: root, weight: 2, guarantee: {gpus: 4}, ceiling: {gpus: 12, cpu: 100}}
default_queue: a
queue_map: {"6214e9": root}
)",
                              "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->nodes.size(), 3u);
  EXPECT_EQ(c->nodes[1].name, "g-1");
  EXPECT_EQ(c->nodes[1].capacity, (Resources{64000, 1024, 8000}));
  EXPECT_EQ(c->nodes[0].taints.size(), 1u);
  EXPECT_EQ(c->nodes[0].pool, "train");
  EXPECT_EQ(c->nodes[2].capacity.cpu_milli, 8500);
  EXPECT_EQ(c->nodes[2].gpu_model, "");
  ASSERT_EQ(c->queues.size(), 2u);
  EXPECT_EQ(c->queues[1].guarantee.gpu_milli, 4000);
  EXPECT_EQ(c->queues[1].ceiling.value.gpu_milli, 12000);
  EXPECT_EQ(c->queues[1].ceiling.value.memory_mib, sched::Limit::kUnlimited);
  EXPECT_EQ(MapQueue(*c, "6214e9"), "root");
  EXPECT_EQ(MapQueue(*c, "a"), "a");
  EXPECT_EQ(MapQueue(*c, "other"), "a");
}

TEST(ClusterConfig, ErrorsNameTheField) {
  struct Case {
    std::string yaml, field;
  };
  std::vector<Case> cases = {
      {"nodes: [{count: 1, cpu: 1, memory_mib: 1, gpus: many}]", "nodes[0].gpus"},
      {"nodes: [{count: 0, cpu: 1, memory_mib: 1}]", "nodes[0].count"},
      {"nodes: [{count: 1, cpu: 1}]", "nodes[0].memory_mib"},
      {"nodes: [{count: 1, cpu: 1, memory_mib: 1, colour: red}]", "nodes[0].colour"},
      {"nodes: [{count: 1, cpu: 1, memory_mib: 1, taints: [{key: a, effect: Sometimes}]}]",
       "nodes[0].taints[0].effect"},
      {"nodes_from: openb\nqueues: [{name: a, parent: b}]", "queues[0].parent"},
      {"nodes_from: openb\nqueues: [{name: a, weight: 0}]", "queues[0].weight"},
      {"nodes_from: openb\nqueues: [{name: a, guarantee: {gpu: 1}}]", "queues[0].guarantee.gpu"},
      {"nodes_from: openb\nqueues: [{name: a}]\ndefault_queue: b", "default_queue"},
      {"nodes_from: slurm", "nodes_from"},
      {"queues: []", "nodes"},
  };
  for (const Case& c : cases) {
    auto r = ParseClusterConfig(c.yaml, "");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().field(), c.field) << c.yaml << " → " << r.status().message();
    EXPECT_NE(r.status().message().find(c.field), std::string::npos) << r.status().message();
  }
}

// ---------------------------------------------------------------------------
// Metrics

TEST(Metrics, FragmentFollowsFgdDefinition) {
  NodeFree n{10000, 10000, {1000, 300}};
  EXPECT_EQ(NodeFragmentMilli(n, {1000, 0, 500}), 300);    // the 300 cannot hold 500
  EXPECT_EQ(NodeFragmentMilli(n, {1000, 0, 200}), 0);      // both can
  EXPECT_EQ(NodeFragmentMilli(n, {1000, 0, 1000}), 300);   // partly used GPU
  EXPECT_EQ(NodeFragmentMilli(n, {1000, 0, 2000}), 1300);  // cannot run at all
  EXPECT_EQ(NodeFragmentMilli(n, {1000, 0, 0}), 1300);     // asks for no GPU
  EXPECT_EQ(NodeFragmentMilli(n, {20000, 0, 100}), 1300);  // not enough CPU
  std::vector<sched::WorkloadClass> classes = {{{1000, 0, 500}, 1}, {{1000, 0, 200}, 3}};
  EXPECT_DOUBLE_EQ(FragmentedGpuMilli({n, n}, classes), 2 * 0.25 * 300);
  EXPECT_EQ(Percentile({5, 1, 3, 2, 4}, 50), 3);
  EXPECT_EQ(Percentile({5, 1, 3, 2, 4}, 100), 5);
  auto cl = WorkloadClasses({{1, 5, 2}, {1, 6, 2}, {3, 0, 0}});
  ASSERT_EQ(cl.size(), 2u);
  EXPECT_EQ(cl[0].weight, 2);
}

// ---------------------------------------------------------------------------
// Simulator with the stand-in scheduler

TEST(Simulator, FifoOnOneNodeGivesHandComputedJcts) {
  // 2 GPUs. a (2 GPUs, 10 s) runs 0–10; b and c wait for it; then both fit.
  Workload w = OneNode(2, {MakeJob("a", 0, 10, 2000), MakeJob("b", 1, 5, 1000), MakeJob("c", 2, 3, 1000)});
  auto r = Simulate(w, sched::Policy{.name = "standin"}, StandIn());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->finished, 3);
  // JCTs: a 10, b 15−1 = 14, c 13−2 = 11.
  EXPECT_DOUBLE_EQ(r->avg_jct, (10.0 + 14 + 11) / 3);
  EXPECT_EQ(r->p99_jct, 14);
  EXPECT_DOUBLE_EQ(r->avg_wait, (0.0 + 9 + 8) / 3);
  EXPECT_EQ(r->makespan, 15);
  // GPU busy: 2 GPUs for 10 s, then 2 for 3 s, 1 for 2 s, over 15 s.
  EXPECT_NEAR(r->gpu_util, (20.0 + 6 + 2) / 30, 1e-9);
  EXPECT_EQ(r->preemptions, 0);
  EXPECT_EQ(r->never_started, 0);
}

TEST(Simulator, InvariantsOnASmallTrace) {
  std::vector<SimJob> jobs;
  for (int i = 0; i < 60; ++i) {
    int64_t gpu = i % 5 == 0 ? 4000 : i % 3 == 0 ? 500 : 1000;
    jobs.push_back(MakeJob("j" + std::to_string(i), i * 7 % 50, 5 + i * 13 % 40, gpu, i % 7 == 0 ? 2 : 1));
  }
  std::stable_sort(jobs.begin(), jobs.end(),
                   [](const SimJob& a, const SimJob& b) { return a.job.submit_time < b.job.submit_time; });
  Workload w;
  w.nodes = {MakeNode("n0", 8), MakeNode("n1", 4), MakeNode("n2", 0)};
  w.queues.push_back(sched::Queue{.name = "default"});
  w.jobs = jobs;
  for (int64_t cycle : {0, 10}) {
    SimOptions o = StandIn();
    o.cycle_seconds = cycle;
    o.sample_seconds = 3;
    auto r = Simulate(w, sched::Policy{.name = "standin"}, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->finished, 60);
    EXPECT_EQ(r->never_started, 0);
    EXPECT_GE(r->avg_wait, 0);
    double min_jct = 1e18;
    for (const SimJob& j : jobs) min_jct = std::min(min_jct, static_cast<double>(j.duration));
    EXPECT_GE(r->p50_jct, min_jct);
    EXPECT_LE(r->gpu_util, 1.0);
    EXPECT_LE(r->cpu_util, 1.0);
    EXPECT_GT(r->gpu_util, 0.0);
    ASSERT_FALSE(r->series.empty());
    for (const Sample& s : r->series) {
      EXPECT_LE(s.gpu_util, 1.0);
      EXPECT_GE(s.unallocated_gpus, 0);
      EXPECT_LE(s.fragmented_gpus, s.unallocated_gpus + 1e-9);
    }
    ASSERT_EQ(r->queues.size(), 1u);
    EXPECT_DOUBLE_EQ(r->queues[0].deserved, 1.0);
    EXPECT_LE(r->queues[0].share, 1.0);
  }
}

TEST(Simulator, JobTooBigNeverStarts) {
  Workload w = OneNode(2, {MakeJob("big", 0, 10, 4000), MakeJob("ok", 5, 10, 1000)});
  // Strict FIFO blocks behind "big" forever: both never start, the run ends.
  auto r = Simulate(w, sched::Policy{.name = "standin"}, StandIn());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->never_started, 2);
  EXPECT_EQ(r->finished, 0);
}

TEST(Simulator, PreemptedJobRequeuesWithRemainingTimeAndAttainedService) {
  // a runs from 0; at t=4 the higher-priority b arrives and a is preempted;
  // b runs 4–6; a resumes at 6 with 6 s left and ends at 12.
  Workload w = OneNode(1, {MakeJob("a", 0, 10, 1000), MakeJob("b", 4, 2, 1000, 1, /*priority=*/1)});
  std::vector<int64_t> attained_seen;
  SimOptions o;
  o.schedule = [&](const sched::Snapshot& s, const sched::Policy& p) {
    for (const sched::Job& j : s.pending) {
      if (j.id == "a" && s.now > 0) attained_seen.push_back(j.attained_gpu_seconds);
    }
    for (const sched::Job& j : s.pending) {
      if (j.priority > 0 && !s.running.empty() && s.running[0].job.priority == 0) {
        sched::Plan plan;
        plan.preemptions.push_back({s.running[0].job.id, j.id, "priority"});
        return plan;
      }
    }
    return FirstFitFifo(s, p);
  };
  auto r = Simulate(w, sched::Policy{.name = "preempt"}, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->preemptions, 1);
  EXPECT_EQ(r->finished, 2);
  EXPECT_EQ(r->makespan, 12);
  EXPECT_DOUBLE_EQ(r->avg_jct, (12.0 + 2) / 2);
  ASSERT_FALSE(attained_seen.empty());
  EXPECT_EQ(attained_seen[0], 4);
}

TEST(Simulator, ChecksThatReservedJobsStartByTheirFirstExpectedStart) {
  // a holds the node until 10; a stand-in promises b the node from t=5 (a
  // wrong promise): b starts at 10 and is counted 5 s late.
  Workload w = OneNode(1, {MakeJob("a", 0, 10, 1000), MakeJob("b", 0, 5, 1000)});
  SimOptions o;
  o.schedule = [](const sched::Snapshot& s, const sched::Policy& p) {
    sched::Plan plan = FirstFitFifo(s, p);
    for (const sched::Job& j : s.pending) {
      bool bound = false;
      for (const sched::Bind& b : plan.binds) bound |= b.job_id == j.id;
      if (!bound) plan.reservations.push_back({j.id, {"n0"}, 5});
    }
    return plan;
  };
  auto r = Simulate(w, sched::Policy{.name = "promise"}, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->reserved_jobs, 1);
  EXPECT_EQ(r->reserved_started_late, 1);
  EXPECT_EQ(r->max_reservation_delay, 5);
  ASSERT_EQ(r->by_gpus.size(), 1u);
  EXPECT_EQ(r->by_gpus[0].gpus, 1);
  EXPECT_EQ(r->by_gpus[0].jobs, 2);
  EXPECT_DOUBLE_EQ(r->by_gpus[0].avg_jct, (10.0 + 15) / 2);
  EXPECT_DOUBLE_EQ(r->by_gpus[0].avg_wait, (0.0 + 10) / 2);
}

TEST(Simulator, OverCommittingPlanIsAnInternalError) {
  Workload w = OneNode(1, {MakeJob("a", 0, 10, 1000), MakeJob("b", 0, 10, 1000)});
  SimOptions o;
  o.schedule = [](const sched::Snapshot& s, const sched::Policy&) {
    sched::Plan plan;
    for (const sched::Job& j : s.pending) plan.binds.push_back({j.id, {{0, 0, "n0", {{0, 1000}}}}});
    return plan;
  };
  auto r = Simulate(w, sched::Policy{.name = "bad"}, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("policy bad"), std::string::npos);
  EXPECT_NE(r.status().message().find("over-committed"), std::string::npos);
}

TEST(Simulator, BuildWorkloadSelectsAndMapsQueues) {
  Trace t;
  for (int i = 0; i < 10; ++i) {
    TraceJob j;
    j.id = "t" + std::to_string(i);
    j.queue = i % 2 ? "odd" : "even";
    j.submit_time = 100 + i;
    j.duration = 5;
    j.request = {1000, 10, 1000};
    t.jobs.push_back(j);
  }
  ClusterConfig c;
  c.nodes = {MakeNode("n", 1)};
  SelectOptions s;
  s.sample_every = 2;
  s.max_jobs = 3;
  auto w = BuildWorkload(t, c, c.nodes, s);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_EQ(w->jobs.size(), 3u);
  EXPECT_EQ(w->jobs[0].job.submit_time, 0);
  EXPECT_EQ(w->jobs[1].job.id, "t2");
  ASSERT_EQ(w->queues.size(), 1u);  // only "even" jobs were kept
  EXPECT_EQ(w->queues[0].name, "even");

  c.queues = {sched::Queue{.name = "q"}};
  auto bad = BuildWorkload(t, c, c.nodes, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("default_queue"), std::string::npos);
  c.default_queue = "q";
  EXPECT_TRUE(BuildWorkload(t, c, c.nodes, {}).ok());
}

TEST(Fill, ArrivesUntilCapacityWithStandIn) {
  std::vector<sched::Node> nodes = {MakeNode("a", 2), MakeNode("b", 2)};
  std::vector<SimJob> pool = {MakeJob("x", 0, 1, 300), MakeJob("y", 0, 1, 1000), MakeJob("z", 0, 1, 0)};
  FillOptions o;
  o.seed = 7;
  o.schedule = FirstFitFifo;
  auto r = RunFill(nodes, pool, sched::Policy{.name = "standin"}, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_FALSE(r->curve.empty());
  EXPECT_GE(r->curve.back().arrived, 1.0);
  EXPECT_LT(r->curve[r->curve.size() - 2].arrived, 1.0);
  EXPECT_DOUBLE_EQ(r->capacity_gpus, 4);
  for (size_t i = 1; i < r->curve.size(); ++i) {
    EXPECT_GE(r->curve[i].arrived, r->curve[i - 1].arrived);
    EXPECT_LE(r->curve[i].unallocated, r->curve[i - 1].unallocated);
    EXPECT_GE(r->curve[i].unallocated, 0);
  }
  // Same seed, same curve.
  auto again = RunFill(nodes, pool, sched::Policy{.name = "standin"}, o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->curve.size(), r->curve.size());
  EXPECT_EQ(again->curve.back().unallocated, r->curve.back().unallocated);
}

// --fill-until 130 (FGD's artifact inflates the workload to 130 % of
// capacity): the same arrivals as a fill to 100 %, continued.
TEST(Fill, BeyondCapacityContinuesTheSameArrivals) {
  std::vector<sched::Node> nodes = {MakeNode("a", 2), MakeNode("b", 2)};
  std::vector<SimJob> pool = {MakeJob("x", 0, 1, 300), MakeJob("y", 0, 1, 1000), MakeJob("z", 0, 1, 700)};
  FillOptions o;
  o.seed = 3;
  o.schedule = FirstFitFifo;
  auto to100 = RunFill(nodes, pool, sched::Policy{.name = "standin"}, o);
  o.until = 1.3;
  auto to130 = RunFill(nodes, pool, sched::Policy{.name = "standin"}, o);
  ASSERT_TRUE(to100.ok() && to130.ok());
  EXPECT_GE(to130->curve.back().arrived, 1.3);
  EXPECT_LT(to130->curve[to130->curve.size() - 2].arrived, 1.3);
  ASSERT_GT(to130->curve.size(), to100->curve.size());
  for (size_t i = 0; i < to100->curve.size(); ++i) {
    EXPECT_EQ(to130->curve[i].arrived, to100->curve[i].arrived) << i;
    EXPECT_EQ(to130->curve[i].unallocated, to100->curve[i].unallocated) << i;
  }
  EXPECT_EQ(to130->UnallocatedAt(1.0), to100->curve.back().unallocated);
  EXPECT_LE(to130->curve.back().unallocated, to100->curve.back().unallocated);
}

// --fill-order trace (FGD's artifact: every pod once in shuffled order, then
// drawn with replacement), and a fresh policy seed every cycle.
TEST(Fill, TraceOrderReplaysEveryTaskOnceBeforeSampling) {
  std::vector<sched::Node> nodes = {MakeNode("a", 4), MakeNode("b", 4)};
  std::vector<SimJob> pool;
  for (int i = 0; i < 8; ++i) {
    pool.push_back(MakeJob("p" + std::to_string(i), 0, 1, 1000));
    pool.back().job.groups[0].request.cpu_milli = 100 + i;  // tells the tasks apart
  }
  std::vector<int64_t> seen;
  std::set<uint64_t> seeds;
  FillOptions o;
  o.seed = 5;
  o.until = 2.0;  // 16 one-GPU arrivals on 8 GPUs
  o.order = FillOrder::kTrace;
  o.schedule = [&](const sched::Snapshot& snap, const sched::Policy& policy) {
    seen.push_back(snap.pending.at(0).groups.at(0).request.cpu_milli);
    seeds.insert(policy.seed);
    return sched::Plan{};
  };
  auto r = RunFill(nodes, pool, sched::Policy{.name = "probe"}, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(seen.size(), 16u);
  std::vector<int64_t> first(seen.begin(), seen.begin() + 8);
  std::vector<int64_t> sorted = first;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 8; ++i) EXPECT_EQ(sorted[i], 100 + i);  // each pod once
  std::vector<int64_t> identity = {100, 101, 102, 103, 104, 105, 106, 107};
  EXPECT_NE(first, identity);  // shuffled
  EXPECT_EQ(seeds.size(), 16u);  // every cycle its own seed
  EXPECT_EQ(r->failed, 16);

  // Same seed, same order; the default order samples with replacement.
  seen.clear();
  ASSERT_TRUE(RunFill(nodes, pool, sched::Policy{.name = "probe"}, o).ok());
  EXPECT_EQ(std::vector<int64_t>(seen.begin(), seen.begin() + 8), first);
}

// ---------------------------------------------------------------------------
// The production scheduler

TEST(SimulatorWithScheduler, EveryNamedPolicyFinishesASmallTrace) {
  std::vector<SimJob> jobs;
  for (int i = 0; i < 40; ++i) {
    int64_t gpu = i % 5 == 0 ? 4000 : i % 3 == 0 ? 500 : 1000;
    SimJob j = MakeJob("j" + std::to_string(i), i * 3, 20 + i * 17 % 60, gpu, i % 9 == 0 ? 2 : 1);
    j.job.queue = i % 2 ? "a" : "b";
    jobs.push_back(j);
  }
  Workload w;
  w.nodes = {MakeNode("n0", 8), MakeNode("n1", 8), MakeNode("n2", 4)};
  w.queues = {sched::Queue{.name = "a"}, sched::Queue{.name = "b", .weight = 3}};
  w.jobs = jobs;
  for (const std::string& name : sched::NamedPolicyNames()) {
    auto policy = sched::NamedPolicy(name);
    ASSERT_TRUE(policy.ok()) << name;
    SimOptions o;
    o.validate = true;
    auto r = Simulate(w, *policy, o);
    ASSERT_TRUE(r.ok()) << name << ": " << r.status().ToString();
    EXPECT_EQ(r->finished, 40) << name;
    EXPECT_LE(r->gpu_util, 1.0) << name;
    EXPECT_GE(r->avg_wait, 0) << name;
    ASSERT_EQ(r->queues.size(), 2u);
    EXPECT_DOUBLE_EQ(r->queues[1].deserved, 0.75);
  }
  EXPECT_FALSE(sched::NamedPolicy("no-such-policy").ok());
}

// The trade-off behind bench/sim_philly.md, by hand. One node of 8 GPUs;
// a (4 GPUs) runs 0–100; big (8 GPUs) arrives at 1; s1 (1 GPU, 10 s) at 2;
// s2 (1 GPU, 500 s) at 3.
//  fifo-strict: big waits for a (100–110), s1 and s2 wait behind big.
//  fifo (best-effort): s1 and s2 start at once; big waits until s2 ends (503).
//  easy: big reserves the node from 100; s1 ends by then and backfills; s2
//        would not and waits; big runs 100–110 as reserved, and s2, which
//        then gets the reservation, at 110.
TEST(SimulatorWithScheduler, EasyKeepsTheGangsPlaceWhereBestEffortFifoLetsSmallJobsPass) {
  Workload w = OneNode(8, {MakeJob("a", 0, 100, 4000), MakeJob("big", 1, 10, 8000),
                           MakeJob("s1", 2, 10, 1000), MakeJob("s2", 3, 500, 1000)});
  struct Want {
    const char* policy;
    double big_jct, small_avg_jct;
    int64_t reserved;
  };
  for (const Want& want : {Want{"fifo-strict", 109, (118.0 + 607) / 2, 0},
                           Want{"fifo", 512, (10.0 + 500) / 2, 0},
                           Want{"easy", 109, (10.0 + 607) / 2, 2}}) {
    auto r = Simulate(w, sched::NamedPolicy(want.policy).value(), SimOptions{.validate = true});
    ASSERT_TRUE(r.ok()) << want.policy << ": " << r.status().ToString();
    ASSERT_EQ(r->finished, 4) << want.policy;
    std::map<int64_t, double> jct;
    for (const SizeClass& c : r->by_gpus) jct[c.gpus] = c.avg_jct;
    EXPECT_DOUBLE_EQ(jct[8], want.big_jct) << want.policy;
    EXPECT_DOUBLE_EQ(jct[1], want.small_avg_jct) << want.policy;
    EXPECT_EQ(r->reserved_jobs, want.reserved) << want.policy;
    EXPECT_EQ(r->reserved_started_late, 0) << want.policy;
  }
}

// EASY's promise over random Philly-like workloads (gangs of 1–32 GPUs,
// heavy-tailed durations, an overloaded cluster, one queue, equal
// priorities, exact runtime estimates): every job that gets a reservation
// starts no later than the expected start of its first reservation, i.e.
// backfilled jobs never delay it and the reservation never drifts.
TEST(SimulatorWithScheduler, EasyBackfillNeverDelaysTheReservedJob) {
  int64_t reserved = 0;
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    std::mt19937_64 rng(seed);
    auto rnd = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    Workload w;
    for (int i = 0; i < 4; ++i) w.nodes.push_back(MakeNode("n" + std::to_string(i), 8, 48000, 393216));
    w.queues.push_back(sched::Queue{.name = "default"});
    static constexpr int kGpus[] = {1, 1, 1, 1, 1, 1, 2, 4, 8, 12, 16, 24, 32};
    int64_t t = 0;
    for (int j = 0; j < 120; ++j) {
      t += rnd(0, 120);
      int gpus = kGpus[rnd(0, 12)];
      int tasks = (gpus + 7) / 8;
      int per_task = gpus / tasks;
      int64_t duration = static_cast<int64_t>(std::pow(10.0, rnd(10, 40) / 10.0));
      SimJob sj = MakeJob("j" + std::to_string(j), t, duration, per_task * 1000, tasks);
      sj.job.groups[0].request.cpu_milli = 4000LL * per_task;
      sj.job.groups[0].request.memory_mib = 32768LL * per_task;
      w.jobs.push_back(sj);
    }
    sched::Policy drf_backfill = sched::NamedPolicy("drf").value();
    drf_backfill.backfill = true;
    for (const sched::Policy& policy : {sched::NamedPolicy("easy").value(), drf_backfill}) {
      auto r = Simulate(w, policy, SimOptions{.validate = true});
      ASSERT_TRUE(r.ok()) << "seed " << seed << " " << policy.name << ": " << r.status().ToString();
      EXPECT_EQ(r->finished, 120) << "seed " << seed << " " << policy.name;
      EXPECT_EQ(r->reserved_started_late, 0)
          << "seed " << seed << " " << policy.name << ": up to " << r->max_reservation_delay << " s late";
      reserved += r->reserved_jobs;
    }
  }
  EXPECT_GT(reserved, 200);  // the workloads do exercise reservations
}

TEST(SimulatorWithScheduler, FillOnFractionalTasks) {
  std::vector<sched::Node> nodes;
  for (int i = 0; i < 8; ++i) nodes.push_back(MakeNode("n" + std::to_string(i), 4));
  std::vector<SimJob> pool = {MakeJob("x", 0, 1, 300), MakeJob("y", 0, 1, 1000),
                              MakeJob("z", 0, 1, 500), MakeJob("w", 0, 1, 2000)};
  for (const char* name : {"random", "bestfit", "fgd", "bestfit-artifact", "dotproduct-artifact",
                           "gpu-packing-artifact", "gpu-clustering-artifact"}) {
    auto policy = sched::NamedPolicy(name);
    ASSERT_TRUE(policy.ok()) << name;
    FillOptions o;
    o.validate = true;
    auto r = RunFill(nodes, pool, *policy, o);
    ASSERT_TRUE(r.ok()) << name << ": " << r.status().ToString();
    EXPECT_GE(r->curve.back().arrived, 1.0);
    EXPECT_GE(r->curve.back().unallocated, 0);
  }
}

}  // namespace
}  // namespace lathe::sim
