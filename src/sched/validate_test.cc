#include <gtest/gtest.h>

#include "sched/policy.h"
#include "sched/scheduler.h"

namespace lathe::sched {
namespace {

Snapshot Valid() {
  Snapshot s;
  Node n;
  n.name = "n0";
  n.num_gpus = 2;
  n.capacity = {8000, 32768, 2000};
  s.nodes.push_back(n);
  s.queues.push_back(Queue{.name = "a"});
  Job j;
  j.id = "j0";
  j.queue = "a";
  j.groups.push_back(TaskGroup{.name = "w", .count = 2, .request = {1000, 1024, 500}});
  s.pending.push_back(j);
  return s;
}

void ExpectField(const Snapshot& s, const std::string& field) {
  Status st = ValidateSnapshot(s);
  ASSERT_FALSE(st.ok()) << "expected an error at " << field;
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.field(), field) << st.ToString();
}

TEST(ValidateSnapshot, AcceptsAValidSnapshot) { EXPECT_TRUE(ValidateSnapshot(Valid()).ok()); }

TEST(ValidateSnapshot, NamesTheBadField) {
  {
    Snapshot s = Valid();
    s.pending[0].queue = "nope";
    ExpectField(s, "pending[0].queue");
  }
  {
    Snapshot s = Valid();
    s.pending[0].groups[0].request.gpu_milli = 1500;
    ExpectField(s, "pending[0].groups[0].request.gpu_milli");
  }
  {
    Snapshot s = Valid();
    s.pending[0].groups[0].request.cpu_milli = -1;
    ExpectField(s, "pending[0].groups[0].request.cpu_milli");
  }
  {
    Snapshot s = Valid();
    s.pending[0].min_available = 3;
    ExpectField(s, "pending[0].min_available");
  }
  {
    Snapshot s = Valid();
    s.pending.push_back(s.pending[0]);
    ExpectField(s, "pending[1].id");
  }
  {
    Snapshot s = Valid();
    s.nodes.push_back(s.nodes[0]);
    ExpectField(s, "nodes[1].name");
  }
  {
    Snapshot s = Valid();
    s.nodes[0].capacity.gpu_milli = 1500;
    ExpectField(s, "nodes[0].capacity.gpu_milli");
  }
  {
    Snapshot s = Valid();
    s.queues.push_back(Queue{.name = "b", .parent = "c"});
    ExpectField(s, "queues[1].parent");
  }
  {
    Snapshot s = Valid();
    s.queues.push_back(Queue{.name = "b", .parent = "c"});
    s.queues.push_back(Queue{.name = "c", .parent = "b"});
    ExpectField(s, "queues[1].parent");
  }
  {
    Snapshot s = Valid();
    s.queues.push_back(Queue{.name = "a"});
    ExpectField(s, "queues[1].name");
  }
  {
    Snapshot s = Valid();
    s.queues[0].weight = 0;
    ExpectField(s, "queues[0].weight");
  }
  {
    Snapshot s = Valid();
    s.queues.push_back(Queue{.name = "child", .parent = "a"});
    ExpectField(s, "pending[0].queue");  // jobs go to leaf queues
  }
  {
    Snapshot s = Valid();
    RunningJob rj{.job = s.pending[0]};
    rj.job.id = "r";
    rj.tasks.push_back({.group = 0, .index = 0, .node = "ghost", .gpus = {{0, 500}}});
    s.running.push_back(rj);
    ExpectField(s, "running[0].tasks[0].node");
  }
  {
    Snapshot s = Valid();
    RunningJob rj{.job = s.pending[0]};
    rj.job.id = "r";
    rj.tasks.push_back({.group = 0, .index = 0, .node = "n0", .gpus = {{0, 500}}});
    rj.tasks.push_back({.group = 0, .index = 1, .node = "n0", .gpus = {{0, 500}}});
    s.running.push_back(rj);
    EXPECT_TRUE(ValidateSnapshot(s).ok());
    s.running[0].job.groups[0].request.gpu_milli = 600;
    s.running[0].tasks[0].gpus[0].milli = 600;
    s.running[0].tasks[1].gpus[0].milli = 600;
    ExpectField(s, "running[0].tasks[1].gpus[0].milli");
  }
  {
    Snapshot s = Valid();
    RunningJob rj{.job = s.pending[0]};
    rj.job.id = "r";
    rj.job.groups[0].request = {5000, 0, 0};
    rj.tasks.push_back({.group = 0, .index = 0, .node = "n0"});
    rj.tasks.push_back({.group = 0, .index = 1, .node = "n0"});
    s.running.push_back(rj);
    ExpectField(s, "running[0].tasks[1].node");
  }
}

TEST(NamedPolicy, KnowsEveryListedName) {
  for (const std::string& name : NamedPolicyNames()) {
    auto p = NamedPolicy(name);
    ASSERT_TRUE(p.ok()) << name;
    EXPECT_EQ(p->name, name);
    EXPECT_TRUE(ValidatePolicy(*p).ok()) << name;
  }
  auto bad = NamedPolicy("nope");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
  EXPECT_NE(bad.status().message().find("nope"), std::string::npos);
}

TEST(ValidatePolicy, NamesTheBadField) {
  Policy p;
  p.scorer = "nope";
  EXPECT_EQ(ValidatePolicy(p).field(), "scorer");
  p = Policy{};
  p.aging_per_hour = -1;
  EXPECT_EQ(ValidatePolicy(p).field(), "aging_per_hour");
  p = Policy{};
  p.workload = {{Resources{0, 0, 500}, 1}, {Resources{0, 0, 500}, -1}};
  EXPECT_EQ(ValidatePolicy(p).field(), "workload[1].weight");
}

}  // namespace
}  // namespace lathe::sched
