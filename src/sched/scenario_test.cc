// One test per golden scenario file in testdata/ (format: testdata/README.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sched/scenario.h"
#include "sched/scheduler.h"

namespace lathe::sched {
namespace {

std::vector<std::string> ScenarioFiles() {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(LATHE_SCHED_TESTDATA)) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path().stem().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class GoldenScenario : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenScenario, PlanMatches) {
  std::string path = std::string(LATHE_SCHED_TESTDATA) + "/" + GetParam() + ".yaml";
  auto scenario = ParseScenario(ReadFile(path));
  ASSERT_TRUE(scenario.ok()) << path << ": " << scenario.status().ToString();
  Status valid = ValidateSnapshot(scenario->snapshot);
  ASSERT_TRUE(valid.ok()) << path << ": " << valid.ToString();
  Plan plan = Schedule(scenario->snapshot, scenario->policy);
  std::string dump;
  for (const Bind& b : plan.binds) {
    dump += "  bind " + b.job_id + ":";
    for (const TaskPlacement& t : b.tasks) {
      dump += " " + t.node + "[";
      for (const GpuShare& g : t.gpus) dump += std::to_string(g.index) + ":" + std::to_string(g.milli) + " ";
      dump += "]";
    }
    dump += "\n";
  }
  for (const PendingReason& p : plan.pending) dump += "  pending " + p.job_id + ": " + p.reason + "\n";
  for (const Preemption& p : plan.preemptions) {
    dump += "  preempt " + p.job_id + " for " + p.for_job_id + ": " + p.reason + "\n";
  }
  for (const Reservation& r : plan.reservations) {
    dump += "  reserve " + r.job_id + " at " + std::to_string(r.expected_start) + "\n";
  }
  for (const std::string& d : CheckScenario(*scenario, plan)) ADD_FAILURE() << d;
  for (const std::string& d : CheckPlanInvariants(scenario->snapshot, scenario->policy, plan)) {
    ADD_FAILURE() << "invariant: " << d;
  }
  if (HasFailure()) std::cerr << scenario->description << "\nplan:\n" << dump;
  // Same inputs, same plan.
  Plan again = Schedule(scenario->snapshot, scenario->policy);
  ASSERT_EQ(again.binds.size(), plan.binds.size());
  for (size_t i = 0; i < plan.binds.size(); ++i) {
    EXPECT_EQ(again.binds[i].job_id, plan.binds[i].job_id);
  }
}

INSTANTIATE_TEST_SUITE_P(Testdata, GoldenScenario, ::testing::ValuesIn(ScenarioFiles()),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(ScenarioFormat, BadFieldIsNamed) {
  auto s = ParseScenario(R"(
policy: {name: drf}
nodes:
  - {name: a, cpu_milli: 1000, memory_mib: 10, gpuz: 1}
expect: {}
)");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().field(), "nodes[0].gpuz");
}

TEST(ScenarioFormat, UnknownPolicyIsNamed) {
  auto s = ParseScenario("policy: {name: nope}\nexpect: {}\n");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().field(), "policy.name");
}

}  // namespace
}  // namespace lathe::sched
