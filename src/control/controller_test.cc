// The job controller against a real SQLite store and a fake executor whose
// tasks the test moves by hand: every phase transition, restarts, cancel,
// deadlines, preemption-free requeue, and a controller "restart" (a second
// controller object on the same store and executor) that must not start any
// task twice.
#include "control/controller.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>

#include "base/json.h"
#include "base/yaml.h"
#include "tracking/tracking.h"

namespace lathe::control {
namespace {

using exec::TaskKey;
using exec::TaskState;
using exec::TaskStatus;

class FakeExecutor : public exec::Executor {
 public:
  std::string_view name() const override { return "fake"; }
  StatusOr<std::vector<sched::Node>> Inventory() override {
    std::vector<sched::Node> nodes;
    for (int i = 0; i < 2; ++i) {
      sched::Node n;
      n.name = "n" + std::to_string(i);
      n.capacity = {4000, 8192, 0};
      nodes.push_back(n);
    }
    return nodes;
  }
  Status Launch(const exec::TaskLaunch& l) override {
    launches[l.key] += 1;
    if (!tasks.count(l.key)) {
      TaskStatus s;
      s.key = l.key;
      s.state = TaskState::kStarting;
      tasks[l.key] = s;
      env[l.key] = l.env;
      workdir[l.key] = l.working_dir;
    }
    return OkStatus();
  }
  Status Kill(const TaskKey& key) override {
    kills[key] += 1;
    return OkStatus();
  }
  StatusOr<TaskStatus> Observe(const TaskKey& key) override {
    auto it = tasks.find(key);
    if (it == tasks.end()) {
      TaskStatus s;
      s.key = key;
      return s;
    }
    return it->second;
  }
  StatusOr<std::vector<TaskStatus>> ObserveJob(const std::string& job_id) override {
    std::vector<TaskStatus> out;
    for (auto& [k, s] : tasks) {
      if (k.job_id == job_id) out.push_back(s);
    }
    return out;
  }
  StatusOr<exec::LogChunk> ReadLog(const TaskKey&, exec::LogStream, int64_t, int64_t) override {
    return exec::LogChunk{};
  }
  Status Remove(const std::string&) override { return OkStatus(); }

  // Test controls.
  void SetAll(const std::string& job_id, TaskState state, int exit_code = 0) {
    for (auto& [k, s] : tasks) {
      if (k.job_id == job_id && s.state != TaskState::kExited) {
        s.state = state;
        s.exit_code = exit_code;
      }
    }
  }
  void Set(const TaskKey& key, TaskState state, int exit_code = 0) {
    tasks[key].key = key;
    tasks[key].state = state;
    tasks[key].exit_code = exit_code;
  }

  std::map<TaskKey, TaskStatus> tasks;
  std::map<TaskKey, int> launches;
  std::map<TaskKey, int> kills;
  std::map<TaskKey, std::map<std::string, std::string>> env;
  std::map<TaskKey, std::string> workdir;
};

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lathe-control-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto s = store::OpenStore({.url = dir_ + "/lathe.db"});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    tenancy_ = std::make_unique<tenancy::TenancyService>(*store_, clock_, 0);
    std::string token;
    ASSERT_TRUE(tenancy_->Bootstrap([&](const std::string& t) {
                  token = t;
                  return OkStatus();
                }).ok());
    admin_ = *tenancy_->Authenticate(token);
    ASSERT_TRUE(tenancy_->CreateProject(admin_, "team", "").ok());
    jobs_ = std::make_unique<JobService>(*store_, *tenancy_, clock_);
    tracking_ = std::make_unique<tracking::TrackingService>(*store_, *tenancy_, clock_);
    ASSERT_TRUE(jobs_->EnsureDefaultQueue().ok());
    NewController();
  }
  void TearDown() override {
    controller_.reset();
    tracking_.reset();
    jobs_.reset();
    tenancy_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void NewController() {
    controller_.reset();
    ControllerOptions o;
    o.server_url = "http://127.0.0.1:1";
    o.tracking = tracking_.get();
    controller_ = std::make_unique<JobController>(*store_, *tenancy_, exec_, clock_, o);
  }

  JobRecord Submit(const std::string& yaml) {
    auto v = ParseYaml(yaml);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    auto spec = spec::ParseJobSpec(*v);
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    auto out = jobs_->Submit(admin_, {*spec}, "",
                             [this](const spec::JobSpec& s) { return controller_->CheckFits(s); });
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out->at(0);
  }
  JobRecord Get(const std::string& id) {
    auto j = jobs_->Get(admin_, "team", id);
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return *j;
  }
  void Pass() {
    Status st = controller_->RunPass();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  std::vector<std::string> EventReasons(const std::string& id) {
    std::vector<std::string> out;
    auto events = jobs_->Events(admin_, "team", id);
    EXPECT_TRUE(events.ok()) << events.status().ToString();
    if (!events.ok()) return out;
    const std::vector<JobEvent>& list = *events;
    for (const JobEvent& e : list) out.push_back(e.reason);
    return out;
  }

  std::string dir_;
  FakeClock clock_;
  FakeExecutor exec_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<tenancy::TenancyService> tenancy_;
  std::unique_ptr<JobService> jobs_;
  std::unique_ptr<tracking::TrackingService> tracking_;
  std::unique_ptr<JobController> controller_;
  tenancy::Principal admin_;
};

constexpr const char* kTwoWorkers = R"(
name: ddp
project: team
framework: pytorch
roles:
  - name: worker
    replicas: 2
    command: [python3, train.py]
    resources: {cpu: 1, memory: 1Gi}
)";

TEST_F(ControllerTest, JobRunsThroughEveryPhaseWithEvents) {
  JobRecord j = Submit(kTwoWorkers);
  EXPECT_EQ(j.phase, Phase::kPending);
  Pass();  // admitted → launching, tasks launched
  JobRecord got = Get(j.id);
  EXPECT_EQ(got.phase, Phase::kLaunching);
  ASSERT_EQ(got.tasks.size(), 2u);
  EXPECT_EQ(exec_.launches.size(), 2u);
  TaskKey w0{j.id, 0, "worker", 0};
  TaskKey w1{j.id, 0, "worker", 1};
  EXPECT_EQ(exec_.env[w1]["RANK"], "1");
  EXPECT_EQ(exec_.env[w1]["WORLD_SIZE"], "2");
  EXPECT_EQ(exec_.env[w1]["LATHE_JOB_ID"], j.id);
  EXPECT_EQ(exec_.env[w1]["LATHE_SERVER"], "http://127.0.0.1:1");
  // The job's token is scoped to its project.
  auto principal = tenancy_->Authenticate(exec_.env[w1]["LATHE_TOKEN"]);
  ASSERT_TRUE(principal.ok()) << principal.status().ToString();
  EXPECT_TRUE(principal->scoped());

  exec_.SetAll(j.id, TaskState::kRunning);
  Pass();
  EXPECT_EQ(Get(j.id).phase, Phase::kRunning);
  exec_.SetAll(j.id, TaskState::kExited, 0);
  Pass();
  got = Get(j.id);
  EXPECT_EQ(got.phase, Phase::kSucceeded);
  EXPECT_GT(got.finished_at, 0);
  EXPECT_EQ(EventReasons(j.id),
            (std::vector<std::string>{"Submitted", "Admitted", "Launching", "Running", "Completed"}));
  // Ended jobs' tokens are revoked.
  EXPECT_FALSE(tenancy_->Authenticate(exec_.env[w1]["LATHE_TOKEN"]).ok());
  EXPECT_EQ(exec_.launches[w0], 1);
}

TEST_F(ControllerTest, FailedTaskStopsTheGangAndRestartsItUpToTheLimit) {
  JobRecord j = Submit(std::string(kTwoWorkers) +
                       "restart_policy: {policy: OnFailure, limit: 1, backoff: 10}\n");
  Pass();
  exec_.SetAll(j.id, TaskState::kRunning);
  Pass();
  exec_.Set({j.id, 0, "worker", 1}, TaskState::kExited, 3);
  Pass();  // failure detected: worker 0 is asked to stop
  EXPECT_EQ(exec_.kills[(TaskKey{j.id, 0, "worker", 0})], 1);
  EXPECT_EQ(Get(j.id).phase, Phase::kRunning);
  exec_.Set({j.id, 0, "worker", 0}, TaskState::kExited, 143);
  Pass();
  JobRecord got = Get(j.id);
  EXPECT_EQ(got.phase, Phase::kPending);
  EXPECT_EQ(got.attempt, 1);
  EXPECT_EQ(got.restarts, 1);
  EXPECT_EQ(got.reason, "Restarting");
  Pass();  // backoff: not scheduled yet
  EXPECT_EQ(Get(j.id).phase, Phase::kPending);
  clock_.Advance(11'000'000);
  Pass();
  EXPECT_EQ(Get(j.id).phase, Phase::kLaunching);
  EXPECT_EQ(exec_.launches[(TaskKey{j.id, 1, "worker", 0})], 1);
  exec_.SetAll(j.id, TaskState::kExited, 3);
  Pass();
  got = Get(j.id);
  EXPECT_EQ(got.phase, Phase::kFailed);
  EXPECT_EQ(got.reason, "BackoffLimitExceeded");
}

TEST_F(ControllerTest, ExitCodesPolicyRestartsOnlyOnListedCodes) {
  JobRecord j = Submit(std::string(kTwoWorkers) +
                       "restart_policy: {policy: ExitCodes, exit_codes: [42], limit: 3}\n");
  Pass();
  exec_.SetAll(j.id, TaskState::kExited, 7);
  Pass();
  JobRecord got = Get(j.id);
  EXPECT_EQ(got.phase, Phase::kFailed);
  EXPECT_EQ(got.reason, "TaskFailed");
  EXPECT_NE(got.message.find("exit code 7"), std::string::npos) << got.message;
}

TEST_F(ControllerTest, CancelKillsTasksAndEndsCancelled) {
  JobRecord j = Submit(kTwoWorkers);
  Pass();
  exec_.SetAll(j.id, TaskState::kRunning);
  Pass();
  ASSERT_TRUE(jobs_->Cancel(admin_, "team", "ddp").ok());
  Pass();
  EXPECT_EQ(exec_.kills.size(), 2u);
  EXPECT_EQ(Get(j.id).phase, Phase::kRunning);
  Pass();  // kills are sent once
  EXPECT_EQ(exec_.kills[(TaskKey{j.id, 0, "worker", 0})], 1);
  exec_.SetAll(j.id, TaskState::kExited, 143);
  Pass();
  EXPECT_EQ(Get(j.id).phase, Phase::kCancelled);
  EXPECT_FALSE(jobs_->Cancel(admin_, "team", "ddp").ok());
  EXPECT_TRUE(jobs_->Remove(admin_, "team", "ddp").ok());
  EXPECT_EQ(jobs_->Get(admin_, "team", "ddp").status().code(), StatusCode::kNotFound);
}

TEST_F(ControllerTest, PendingCancelNeverLaunches) {
  JobRecord big = Submit(R"(
name: big
project: team
roles: [{name: main, replicas: 2, command: [sleep, "1"], resources: {cpu: 4, memory: 1Gi}}]
)");
  JobRecord j = Submit(R"(
name: waits
project: team
roles: [{name: main, command: [sleep, "1"], resources: {cpu: 4, memory: 1Gi}}]
)");
  Pass();
  EXPECT_EQ(Get(big.id).phase, Phase::kLaunching);
  EXPECT_EQ(Get(j.id).phase, Phase::kPending);
  EXPECT_FALSE(controller_->PendingReason(j.id).empty());
  ASSERT_TRUE(jobs_->Cancel(admin_, "team", j.id).ok());
  Pass();
  EXPECT_EQ(Get(j.id).phase, Phase::kCancelled);
  EXPECT_EQ(exec_.launches.count(TaskKey{j.id, 0, "main", 0}), 0u);
}

TEST_F(ControllerTest, DeadlineEndsTimedOut) {
  JobRecord j = Submit(std::string(kTwoWorkers) + "timeout: 60\n");
  Pass();
  exec_.SetAll(j.id, TaskState::kRunning);
  Pass();
  clock_.Advance(61'000'000);
  Pass();
  EXPECT_EQ(exec_.kills.size(), 2u);
  exec_.SetAll(j.id, TaskState::kExited, 143);
  Pass();
  EXPECT_EQ(Get(j.id).phase, Phase::kTimedOut);
}

TEST_F(ControllerTest, LostTaskFailsTheJob) {
  JobRecord j = Submit(kTwoWorkers);
  Pass();
  exec_.SetAll(j.id, TaskState::kRunning);
  Pass();
  exec_.Set({j.id, 0, "worker", 0}, TaskState::kLost);
  exec_.Set({j.id, 0, "worker", 1}, TaskState::kExited, 137);
  Pass();
  JobRecord got = Get(j.id);
  EXPECT_EQ(got.phase, Phase::kFailed);
  EXPECT_TRUE(got.reason == "TaskLost" || got.reason == "TaskFailed") << got.reason;
}

TEST_F(ControllerTest, RestartedControllerReattachesWithoutRelaunching) {
  JobRecord j = Submit(kTwoWorkers);
  Pass();
  exec_.SetAll(j.id, TaskState::kRunning);
  NewController();  // the server restarted; the executor's tasks live on
  Pass();
  EXPECT_EQ(Get(j.id).phase, Phase::kRunning);
  for (const auto& [key, n] : exec_.launches) EXPECT_EQ(n, 1) << key.Path();
  exec_.SetAll(j.id, TaskState::kExited, 0);
  NewController();
  Pass();
  EXPECT_EQ(Get(j.id).phase, Phase::kSucceeded);
}

TEST_F(ControllerTest, MpiLauncherStartsAfterEveryWorker) {
  JobRecord j = Submit(R"(
name: mpi
project: team
framework: mpi
roles:
  - {name: launcher, command: [mpirun, "-n", "2", hostname], resources: {cpu: 1, memory: 1Gi}}
  - {name: worker, replicas: 2, resources: {cpu: 1, memory: 1Gi}}
)");
  Pass();
  TaskKey launcher{j.id, 0, "launcher", 0};
  EXPECT_EQ(exec_.launches.count(launcher), 0u);
  EXPECT_EQ(exec_.launches.size(), 2u);
  exec_.SetAll(j.id, TaskState::kRunning);
  Pass();
  EXPECT_EQ(exec_.launches[launcher], 1);
  exec_.Set(launcher, TaskState::kRunning);
  Pass();
  EXPECT_EQ(Get(j.id).phase, Phase::kRunning);
  exec_.Set(launcher, TaskState::kExited, 0);
  Pass();  // success decided by the launcher; workers are stopped
  EXPECT_EQ(exec_.kills.size(), 2u);
  exec_.SetAll(j.id, TaskState::kExited, 143);
  Pass();
  EXPECT_EQ(Get(j.id).phase, Phase::kSucceeded);
}

TEST_F(ControllerTest, TrackedJobGetsARunThatEndsWithIt) {
  JobRecord j = Submit(std::string(kTwoWorkers) + "tracking: {experiment: ddp-runs}\n");
  Pass();
  TaskKey w0{j.id, 0, "worker", 0};
  TaskKey w1{j.id, 0, "worker", 1};
  const std::string run_id = exec_.env[w0]["LATHE_RUN_ID"];
  ASSERT_EQ(run_id.size(), 32u);
  EXPECT_EQ(exec_.env[w1]["LATHE_RUN_ID"], run_id);  // one run for the whole gang
  EXPECT_EQ(Get(j.id).run_id, run_id);
  auto run = tracking_->GetRun(admin_, "team", run_id);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_EQ(run->info.job_id, j.id);
  EXPECT_EQ(run->info.run_name, "ddp");
  EXPECT_EQ(run->info.status, tracking::RunStatus::kRunning);
  auto exp = tracking_->GetExperimentByName(admin_, "team", "ddp-runs");
  ASSERT_TRUE(exp.ok()) << exp.status().ToString();
  EXPECT_EQ(run->info.experiment_id, exp->id);
  exec_.SetAll(j.id, TaskState::kExited, 0);
  Pass();
  EXPECT_EQ(Get(j.id).phase, Phase::kSucceeded);
  run = tracking_->GetRun(admin_, "team", run_id);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->info.status, tracking::RunStatus::kFinished);
  EXPECT_GT(run->info.end_time, 0);
}

TEST_F(ControllerTest, SubmitRejectsWhatNoNodeCanHold) {
  auto v = ParseYaml(R"(
name: huge
project: team
roles: [{name: main, command: ["true"], resources: {cpu: 64, memory: 1Gi}}]
)");
  auto spec = spec::ParseJobSpec(*v);
  ASSERT_TRUE(spec.ok());
  auto out = jobs_->Submit(admin_, {*spec}, "",
                           [this](const spec::JobSpec& s) { return controller_->CheckFits(s); });
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().field(), "roles[0].resources");
  EXPECT_NE(out.status().message().find("no node can hold"), std::string::npos);
}

TEST_F(ControllerTest, SubmitRejectsMissingQueueAndDuplicateName) {
  auto spec = spec::ParseJobSpec(*ParseYaml(std::string(kTwoWorkers) + "queue: nope\n"));
  ASSERT_TRUE(spec.ok());
  auto out = jobs_->Submit(admin_, {*spec}, "", nullptr);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().field(), "queue");
  spec::QueueSpec parent, child;
  parent.name = "org";
  child.name = "team-a";
  child.parent = "org";
  ASSERT_TRUE(jobs_->PutQueue(admin_, parent, true).ok());
  ASSERT_TRUE(jobs_->PutQueue(admin_, child, true).ok());
  auto to_parent = spec::ParseJobSpec(*ParseYaml(std::string(kTwoWorkers) + "queue: org\n"));
  auto refused = jobs_->Submit(admin_, {*to_parent}, "", nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("leaf"), std::string::npos);
  Submit(kTwoWorkers);
  // A queue with active jobs cannot become a parent.
  spec::QueueSpec grandchild;
  grandchild.name = "sub";
  grandchild.parent = "default";
  EXPECT_EQ(jobs_->PutQueue(admin_, grandchild, true).status().code(),
            StatusCode::kFailedPrecondition);
  auto dup = jobs_->Submit(admin_, {*spec::ParseJobSpec(*ParseYaml(kTwoWorkers))}, "", nullptr);
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace lathe::control
