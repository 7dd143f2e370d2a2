// PipelineService and PipelineController against SQLite (a temp directory
// per test) and, when LATHE_TEST_POSTGRES_URL is set, PostgreSQL (a fresh
// schema per test). Steps run for real: a JobController over the local
// executor starts `lathe-shim` per task, so outputs are files the step's
// shell command writes under $LATHE_OUTPUTS. The job controller runs on its
// thread; the pipeline controller either on its thread or pass by pass
// (tests that need to stop between passes: retries, crash/restart).
#include "control/pipelines.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "base/yaml.h"
#include "control/controller.h"
#include "control/pipeline_controller.h"
#include "exec/local/local_executor.h"

namespace lathe::control {
namespace {

namespace fs = std::filesystem;
using tenancy::Principal;
using tenancy::Role;

std::string RandomSuffix() {
  static std::mt19937_64 rng(std::random_device{}());
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  char buf[17];
  snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

void PgAdmin(const std::string& base, const std::string& sql) {
  PGconn* conn = PQconnectdb(base.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  PGresult* res = PQexec(conn, sql.c_str());
  EXPECT_TRUE(PQresultStatus(res) == PGRES_COMMAND_OK) << sql << ": " << PQresultErrorMessage(res);
  PQclear(res);
  PQfinish(conn);
}

JsonValue Yaml(const std::string& text) {
  auto v = ParseYaml(text);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? *v : JsonValue();
}

class PipelinesTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string url;
    dir_ = fs::temp_directory_path() / ("lathe_pipelines_test_" + RandomSuffix());
    fs::create_directories(dir_);
    if (GetParam() == "postgres") {
      const char* base = std::getenv("LATHE_TEST_POSTGRES_URL");
      if (base == nullptr || base[0] == '\0') {
        GTEST_SKIP() << "PostgreSQL not tested: set LATHE_TEST_POSTGRES_URL";
      }
      pg_base_ = base;
      schema_ = "p_" + RandomSuffix();
      PgAdmin(pg_base_, "CREATE SCHEMA " + schema_);
      url = pg_base_ + (pg_base_.find('?') == std::string::npos ? "?" : "&") +
            "options=-csearch_path%3D" + schema_;
    } else {
      url = "sqlite://" + (dir_ / "lathe.db").string();
    }
    auto s = store::OpenStore({.url = url, .pool_size = 8});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    tenancy_ = std::make_unique<tenancy::TenancyService>(*store_, clock_, 0);
    std::string token;
    ASSERT_TRUE(tenancy_
                    ->Bootstrap([&](const std::string& t) {
                      token = t;
                      return OkStatus();
                    })
                    .ok());
    admin_ = *tenancy_->Authenticate(token);
    ASSERT_TRUE(tenancy_->CreateProject(admin_, "team", "").ok());
    jobs_ = std::make_unique<JobService>(*store_, *tenancy_, clock_);
    ASSERT_TRUE(jobs_->EnsureDefaultQueue().ok());
    service_ = std::make_unique<PipelineService>(*store_, *tenancy_, clock_);

    exec::LocalExecutorOptions eo;
    eo.root = (dir_ / "tasks").string();
    eo.shim_path = LATHE_SHIM_TEST_MAIN;
    eo.cgroup_base = "none";
    eo.node_capacity = {64'000, 65'536, 0};
    executor_ = exec::NewLocalExecutor(eo);
    ControllerOptions co;
    co.server_url = "http://127.0.0.1:1";
    co.resync_interval_ms = 10;
    co.kill_grace_ms = 500;
    co.code_root = (dir_ / "code").string();
    co.work_root = (dir_ / "work").string();
    co.on_job_terminal = [this](const JobRecord&) {
      std::lock_guard<std::mutex> lock(pipes_mu_);
      if (pipes_) pipes_->Poke();
    };
    job_controller_ = std::make_unique<JobController>(*store_, *tenancy_, *executor_, clock_, co);
    job_controller_->Start();
  }

  void TearDown() override {
    StopPipelines();
    if (job_controller_) job_controller_->Stop();
    job_controller_.reset();
    executor_.reset();
    service_.reset();
    jobs_.reset();
    tenancy_.reset();
    store_.reset();
    if (!schema_.empty()) PgAdmin(pg_base_, "DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // A pipeline controller; `thread` false: the test calls Pass().
  void StartPipelines(bool thread = true, MetricsRegistry* metrics = nullptr) {
    StopPipelines();
    PipelineControllerOptions po;
    po.data_root = (dir_ / "pipelines").string();
    po.resync_interval_ms = 10;
    po.max_fan_out = 100;
    po.poke_jobs = [this] { job_controller_->Poke(); };
    auto c = std::make_unique<PipelineController>(*store_, *tenancy_, clock_, po, metrics);
    if (thread) c->Start();
    std::lock_guard<std::mutex> lock(pipes_mu_);
    pipes_ = std::move(c);
  }
  void StopPipelines() {
    std::unique_ptr<PipelineController> c;
    {
      std::lock_guard<std::mutex> lock(pipes_mu_);
      c = std::move(pipes_);
    }
    if (c) c->Stop();
  }
  void Pass() {
    Status st = pipes_->RunPass();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  PipelineVersionRecord Create(const std::string& yaml, const std::string& code = "",
                               bool* created = nullptr) {
    auto c = service_->Create(admin_, "team", Yaml(yaml), code);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (!c.ok()) return {};
    if (created != nullptr) *created = c->created;
    return c->version;
  }
  RunRecord Start(const std::string& pipeline, StartRunRequest req = {}) {
    req.pipeline = pipeline;
    auto r = service_->StartRun(admin_, "team", req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok() && pipes_) pipes_->Poke();
    return r.ok() ? *r : RunRecord{};
  }
  RunRecord Get(const std::string& id) {
    auto r = service_->GetRun(admin_, "team", id);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : RunRecord{};
  }
  // Polls until the run is terminal (the controller thread drives it).
  RunRecord Wait(const std::string& id, int timeout_ms = 20'000) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    RunRecord r;
    while (std::chrono::steady_clock::now() < until) {
      r = Get(id);
      if (IsTerminal(r.state)) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "run " << id << " still " << RunStateName(r.state) << " after " << timeout_ms
                  << " ms: " << Describe(r);
    return r;
  }
  // Passes until `done(run)` or the timeout (the test drives the controller).
  RunRecord PassUntil(const std::string& id, const std::function<bool(const RunRecord&)>& done,
                      int timeout_ms = 20'000) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    RunRecord r;
    while (std::chrono::steady_clock::now() < until) {
      Pass();
      r = Get(id);
      if (done(r)) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ADD_FAILURE() << "run " << id << " did not get there in " << timeout_ms << " ms: " << Describe(r);
    return r;
  }
  static std::string Describe(const RunRecord& r) {
    std::string out = std::string(RunStateName(r.state)) + " " + r.reason + " " + r.message + "\n";
    for (const NodeRecord& n : r.nodes) {
      out += "  " + n.node + ": " + std::string(NodeStateName(n.state)) + " " + n.reason + " " +
             n.message + "\n";
    }
    return out;
  }
  static const NodeRecord* Node(const RunRecord& r, const std::string& node) {
    for (const NodeRecord& n : r.nodes) {
      if (n.node == node) return &n;
    }
    return nullptr;
  }
  static NodeState StateOf(const RunRecord& r, const std::string& node) {
    const NodeRecord* n = Node(r, node);
    EXPECT_NE(n, nullptr) << "no node " << node << " in\n" << Describe(r);
    return n ? n->state : NodeState::kPending;
  }
  std::vector<JobRecord> Jobs() {
    auto page = jobs_->List(admin_, {.project = "team"}, {.limit = 1000});
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    return page.ok() ? page->items : std::vector<JobRecord>{};
  }
  // Lines appended by steps (`echo X >> $LOG`): how often each step ran.
  std::string LogPath() const { return (dir_ / "ran.log").string(); }
  std::vector<std::string> Ran() const {
    std::ifstream in(LogPath());
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  static int Count(const std::vector<std::string>& v, const std::string& s) {
    return static_cast<int>(std::count(v.begin(), v.end(), s));
  }

  fs::path dir_;
  std::string pg_base_, schema_;
  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<tenancy::TenancyService> tenancy_;
  std::unique_ptr<JobService> jobs_;
  std::unique_ptr<PipelineService> service_;
  std::unique_ptr<exec::Executor> executor_;
  std::unique_ptr<JobController> job_controller_;
  std::mutex pipes_mu_;
  std::unique_ptr<PipelineController> pipes_;  // guarded by pipes_mu_ (the callback reads it)
  Principal admin_;
};

INSTANTIATE_TEST_SUITE_P(Drivers, PipelinesTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

// A two-step line whose second step reads the first one's output value and
// artifact; both run as jobs with the step context in their environment.
std::string LinearSpec(const std::string& log) {
  return R"(
name: line
params:
  - {name: n, type: int, default: 3}
steps:
  - name: prep
    command: "echo prep >> )" + log + R"( && echo {{params.n}} > {{outputs.parameters.rows}} && mkdir -p {{outputs.artifacts.data}} && echo hello > {{outputs.artifacts.data}}/a.txt && echo $LATHE_PIPELINE_STEP > $LATHE_OUTPUTS/parameters/whoami"
    outputs: {parameters: [rows, whoami], artifacts: [data]}
  - name: train
    command: "echo train >> )" + log + R"( && test {{steps.prep.outputs.parameters.rows}} = 3 && cat {{steps.prep.outputs.artifacts.data}}/a.txt > {{outputs.parameters.greeting}}"
    outputs: {parameters: [greeting]}
)";
}

// ---------------------------------------------------------------- versions

TEST_P(PipelinesTest, VersionsChangeOnlyWithTheSpecOrCode) {
  bool created = false;
  PipelineVersionRecord v1 = Create(LinearSpec("/dev/null"), "", &created);
  EXPECT_TRUE(created);
  EXPECT_EQ(v1.version, 1);
  PipelineVersionRecord again = Create(LinearSpec("/dev/null"), "", &created);
  EXPECT_FALSE(created);
  EXPECT_EQ(again.version, 1);
  EXPECT_EQ(again.digest, v1.digest);
  PipelineVersionRecord v2 = Create(LinearSpec("/tmp/other.log"), "", &created);
  EXPECT_TRUE(created);
  EXPECT_EQ(v2.version, 2);
  PipelineVersionRecord v3 = Create(LinearSpec("/tmp/other.log"), "abc123", &created);
  EXPECT_TRUE(created);
  EXPECT_EQ(v3.version, 3);
  EXPECT_EQ(v3.code, "abc123");

  auto pl = service_->Get(admin_, "team", "line");
  ASSERT_TRUE(pl.ok()) << pl.status().ToString();
  EXPECT_EQ(pl->latest_version, 3);
  auto versions = service_->ListVersions(admin_, "team", "line", {.limit = 2});
  ASSERT_TRUE(versions.ok()) << versions.status().ToString();
  ASSERT_EQ(versions->items.size(), 2u);
  EXPECT_EQ(versions->items[0].version, 3);
  EXPECT_EQ(versions->items[1].version, 2);
  ASSERT_FALSE(versions->next_page_token.empty());
  auto rest = service_->ListVersions(admin_, "team", "line",
                                     {.limit = 2, .page_token = versions->next_page_token});
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  ASSERT_EQ(rest->items.size(), 1u);
  EXPECT_EQ(rest->items[0].version, 1);
  EXPECT_TRUE(rest->next_page_token.empty());

  // A run is pinned to the version it started with.
  StartRunRequest req;
  req.version = 1;
  RunRecord run = Start("line", req);
  EXPECT_EQ(run.version, 1);
  EXPECT_EQ(Start("line").version, 3);
  req.version = 9;
  auto missing = service_->StartRun(admin_, "team", {.pipeline = "line", .version = 9});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().field(), "version");

  auto list = service_->List(admin_, "team", {});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->items.size(), 1u);
  EXPECT_EQ(list->items[0].name, "line");
}

TEST_P(PipelinesTest, BadSpecsAndProjectsAreRejected) {
  auto bad = service_->Create(admin_, "team", Yaml("name: x\nsteps: [{name: a, command: \"true\", depends: \"b\"}]\n"), "");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().field().rfind("steps[0]", 0), 0u) << bad.status().ToString();
  auto other = service_->Create(admin_, "team",
                                Yaml("name: x\nproject: elsewhere\nsteps: [{name: a, command: \"true\"}]\n"), "");
  EXPECT_EQ(other.status().field(), "project");
  auto unknown = service_->Create(admin_, "nope", Yaml("name: x\nsteps: [{name: a, command: \"true\"}]\n"), "");
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  // Viewers read, editors write.
  ASSERT_TRUE(tenancy_->CreateUser(admin_, "vera", false).ok());
  ASSERT_TRUE(tenancy_->SetMember(admin_, "team", "vera", Role::kViewer).ok());
  auto t = tenancy_->CreateToken(admin_, {.name = "t", .user = "vera"});
  ASSERT_TRUE(t.ok());
  Principal vera = *tenancy_->Authenticate(t->secret);
  Create("name: x\nsteps: [{name: a, command: \"true\"}]\n");
  EXPECT_TRUE(service_->Get(vera, "team", "x").ok());
  EXPECT_EQ(service_->Create(vera, "team", Yaml("name: y\nsteps: [{name: a, command: \"true\"}]\n"), "")
                .status()
                .code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(service_->StartRun(vera, "team", {.pipeline = "x"}).status().code(),
            StatusCode::kPermissionDenied);
}

TEST_P(PipelinesTest, ParamsAreCheckedAndSampleNeedsTheParam) {
  Create(R"(
name: p
params:
  - {name: rate, type: float}
  - {name: sample, type: int, default: 0}
steps: [{name: a, command: "true"}]
)");
  auto missing = service_->StartRun(admin_, "team", {.pipeline = "p"});
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().field(), "params.rate");
  auto wrong = service_->StartRun(admin_, "team",
                                  {.pipeline = "p", .params = Yaml("{rate: fast}")});
  EXPECT_EQ(wrong.status().field(), "params.rate");
  auto unknown = service_->StartRun(admin_, "team",
                                    {.pipeline = "p", .params = Yaml("{rate: 1, nope: 2}")});
  EXPECT_EQ(unknown.status().field(), "params.nope");
  // From the command line strings are converted; --sample sets the param.
  auto ok = service_->StartRun(admin_, "team",
                               {.pipeline = "p", .params = Yaml("{rate: \"0.5\"}"),
                                .coerce_strings = true, .sample = 100});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->state, RunState::kPending);
  EXPECT_DOUBLE_EQ(ok->params.Find("rate")->as_double(), 0.5);
  EXPECT_EQ(ok->params.Find("sample")->as_int(), 100);

  Create("name: q\nsteps: [{name: a, command: \"true\"}]\n");
  auto no_sample = service_->StartRun(admin_, "team", {.pipeline = "q", .sample = 10});
  EXPECT_EQ(no_sample.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(no_sample.status().field(), "params.sample");
  auto no_pipeline = service_->StartRun(admin_, "team", {.pipeline = "zzz"});
  EXPECT_EQ(no_pipeline.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(no_pipeline.status().field(), "pipeline");
}

// ---------------------------------------------------------------- runs

TEST_P(PipelinesTest, LinearRunPassesOutputsDownstream) {
  StartPipelines();
  Create(LinearSpec(LogPath()));
  RunRecord run = Wait(Start("line").id);
  ASSERT_EQ(run.state, RunState::kSucceeded) << Describe(run);
  const NodeRecord* prep = Node(run, "prep");
  const NodeRecord* train = Node(run, "train");
  ASSERT_TRUE(prep && train);
  EXPECT_EQ(prep->parameters.at("rows"), "3");
  EXPECT_EQ(prep->parameters.at("whoami"), "prep");  // LATHE_PIPELINE_STEP
  EXPECT_EQ(prep->artifacts.at("data").digest.size(), 64u);
  EXPECT_TRUE(fs::exists(prep->artifacts.at("data").path + "/a.txt"));
  EXPECT_EQ(train->parameters.at("greeting"), "hello");
  EXPECT_EQ(prep->attempt, 1);
  EXPECT_FALSE(prep->job_id.empty());
  EXPECT_LE(prep->job_name.size(), 63u);
  EXPECT_EQ(Ran(), (std::vector<std::string>{"prep", "train"}));
  // Step jobs are jobs of the run's project, created by the run's creator,
  // with the step context in their spec.
  auto job = jobs_->Get(admin_, "team", train->job_id);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  ASSERT_TRUE(job->spec.pipeline.has_value());
  EXPECT_EQ(job->spec.pipeline->run_id, run.id);
  EXPECT_EQ(job->spec.pipeline->node, "train");
  EXPECT_EQ(job->created_by, "admin");

  auto graph = service_->Graph(admin_, "team", run.id);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  ASSERT_EQ(graph->steps.size(), 2u);
  EXPECT_EQ(graph->steps[0].name, "prep");
  EXPECT_EQ(graph->steps[1].state, NodeState::kSucceeded);
  ASSERT_EQ(graph->edges.size(), 1u);
  EXPECT_EQ(graph->edges[0], (std::pair<std::string, std::string>{"prep", "train"}));
  auto events = service_->RunEvents(admin_, "team", run.id);
  ASSERT_TRUE(events.ok());
  ASSERT_FALSE(events->empty());
  EXPECT_EQ(events->front().reason, "Created");
  EXPECT_EQ(events->back().reason, "Succeeded");

  auto runs = service_->ListRuns(admin_, {.project = "team", .pipeline = "line"}, {});
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->items.size(), 1u);
  EXPECT_TRUE(service_->RemoveRun(admin_, "team", run.id).ok());
  EXPECT_EQ(service_->GetRun(admin_, "team", run.id).status().code(), StatusCode::kNotFound);
}

TEST_P(PipelinesTest, MissingDeclaredOutputErrorsTheNode) {
  StartPipelines();
  Create(R"(
name: m
steps:
  - name: a
    command: "true"
    outputs: {parameters: [x]}
)");
  RunRecord run = Wait(Start("m").id);
  EXPECT_EQ(run.state, RunState::kFailed);
  EXPECT_EQ(StateOf(run, "a"), NodeState::kErrored);
  EXPECT_EQ(Node(run, "a")->reason, "MissingOutput");
}

TEST_P(PipelinesTest, FanOutWithParallelismAndFanIn) {
  StartPipelines();
  Create(R"(
name: fan
steps:
  - name: gen
    command: "echo '[1, 2, 3, 4, 5]' > {{outputs.parameters.list}}"
    outputs: {parameters: [list]}
  - name: sq
    for_each: "{{steps.gen.outputs.parameters.list}}"
    parallelism: 2
    command: "echo $(( {{item}} * {{item}} )) > {{outputs.parameters.v}}; date +%s%N > {{outputs.parameters.t0}}; sleep 0.2; date +%s%N > {{outputs.parameters.t1}}"
    outputs: {parameters: [v, t0, t1]}
  - name: sum
    command: "echo '{{steps.sq.outputs.parameters.v}}' > {{outputs.parameters.all}}"
    outputs: {parameters: [all]}
)");
  RunRecord run = Wait(Start("fan").id, 30'000);
  ASSERT_EQ(run.state, RunState::kSucceeded) << Describe(run);
  EXPECT_EQ(Node(run, "sum")->parameters.at("all"), "[1,4,9,16,25]");
  // Never more than two items at once.
  std::vector<std::pair<int64_t, int>> edges;
  for (int i = 0; i < 5; ++i) {
    const NodeRecord* n = Node(run, "sq[" + std::to_string(i) + "]");
    ASSERT_NE(n, nullptr);
    edges.push_back({std::stoll(n->parameters.at("t0")), +1});
    edges.push_back({std::stoll(n->parameters.at("t1")), -1});
  }
  std::sort(edges.begin(), edges.end());
  int live = 0, peak = 0;
  for (const auto& e : edges) peak = std::max(peak, live += e.second);
  EXPECT_LE(peak, 2);
  auto graph = service_->Graph(admin_, "team", run.id);
  ASSERT_TRUE(graph.ok());
  EXPECT_EQ(graph->steps[1].items, 5);
}

TEST_P(PipelinesTest, WhenSkipsAndDependsOmits) {
  StartPipelines();
  auto v = service_->Create(admin_, "team", Yaml(R"(
name: cond
params:
  - {name: go, type: bool, default: false}
steps:
  - name: check
    command: "exit 1"
    optional: true
  - name: gated
    when: "params.go"
    command: "true"
  - name: on-fail
    depends: "check.failed"
    command: "true"
  - name: on-ok
    depends: "check.succeeded"
    command: "true"
  - name: after-gated
    depends: "gated.skipped && !gated.succeeded"
    command: "true"
  - name: after-check
    depends: "check"
    command: "true"
)"),
                            "");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  RunRecord run = Wait(Start("cond").id);
  // The optional step failed: the run still succeeds.
  EXPECT_EQ(run.state, RunState::kSucceeded) << Describe(run);
  EXPECT_EQ(StateOf(run, "check"), NodeState::kFailed);
  EXPECT_EQ(StateOf(run, "gated"), NodeState::kSkipped);
  EXPECT_EQ(Node(run, "gated")->reason, "WhenFalse");
  EXPECT_EQ(StateOf(run, "on-fail"), NodeState::kSucceeded);
  EXPECT_EQ(StateOf(run, "on-ok"), NodeState::kOmitted);
  EXPECT_EQ(Node(run, "on-ok")->reason, "DependsFalse");
  EXPECT_EQ(StateOf(run, "after-gated"), NodeState::kSucceeded);
  EXPECT_EQ(StateOf(run, "after-check"), NodeState::kOmitted);
}

TEST_P(PipelinesTest, EmptyFanOutIsOneSkippedNode) {
  StartPipelines();
  Create(R"(
name: empty
steps:
  - name: none
    for_each: []
    command: "true"
    outputs: {parameters: [v]}
  - name: after
    command: "test '{{steps.none.outputs.parameters.v}}' = '[]'"
)");
  RunRecord run = Wait(Start("empty").id);
  EXPECT_EQ(run.state, RunState::kSucceeded) << Describe(run);
  EXPECT_EQ(StateOf(run, "none"), NodeState::kSkipped);
  EXPECT_EQ(Node(run, "none")->reason, "NoItems");
  EXPECT_EQ(StateOf(run, "after"), NodeState::kSucceeded);
}

TEST_P(PipelinesTest, FailedStepFailsTheRunWhateverTheLeavesSay) {
  StartPipelines();
  Create(R"(
name: strict
steps:
  - name: a
    command: "exit 3"
  - name: cleanup
    depends: "a.failed"
    command: "true"
  - name: b
    command: "true"
    depends: "a"
)");
  RunRecord run = Wait(Start("strict").id);
  EXPECT_EQ(run.state, RunState::kFailed) << Describe(run);
  EXPECT_EQ(run.reason, "StepFailed");
  EXPECT_EQ(StateOf(run, "a"), NodeState::kFailed);
  EXPECT_EQ(StateOf(run, "cleanup"), NodeState::kSucceeded);
  EXPECT_EQ(StateOf(run, "b"), NodeState::kOmitted);
  EXPECT_EQ(Node(run, "b")->reason, "DependsFalse");
}

TEST_P(PipelinesTest, DefaultDependsSaysUpstreamFailed) {
  StartPipelines();
  Create(R"(
name: up
steps:
  - name: a
    command: "exit 1"
    outputs: {parameters: [x]}
  - name: b
    command: "echo {{steps.a.outputs.parameters.x}}"
)");
  RunRecord run = Wait(Start("up").id);
  EXPECT_EQ(run.state, RunState::kFailed);
  EXPECT_EQ(StateOf(run, "b"), NodeState::kOmitted);
  EXPECT_EQ(Node(run, "b")->reason, "UpstreamFailed");
}

TEST_P(PipelinesTest, RetriesWaitForTheirBackoff) {
  StartPipelines(/*thread=*/false);
  // Fails twice, then succeeds (a counter file outlives attempts).
  const std::string counter = (dir_ / "count").string();
  Create(R"(
name: flaky
steps:
  - name: a
    command: "n=$(cat )" + counter + R"( 2>/dev/null || echo 0); n=$((n+1)); echo $n > )" + counter + R"(; test $n -ge 3"
    retry: {limit: 3, on: failure, backoff: 10s, factor: 2, max_backoff: 15s}
)");
  RunRecord run = Start("flaky");
  run = PassUntil(run.id, [](const RunRecord& r) {
    const NodeRecord* n = Node(r, "a");
    return n && n->state == NodeState::kPending && n->attempt == 1;
  });
  const NodeRecord* a = Node(run, "a");
  EXPECT_EQ(a->reason, "Retrying");
  EXPECT_EQ(a->not_before, clock_.NowMicros() + 10'000'000);
  // Not before its backoff.
  for (int i = 0; i < 5; ++i) Pass();
  EXPECT_EQ(Node(Get(run.id), "a")->attempt, 1);
  clock_.Advance(10'000'000);
  run = PassUntil(run.id, [](const RunRecord& r) {
    const NodeRecord* n = Node(r, "a");
    return n && n->state == NodeState::kPending && n->attempt == 2;
  });
  // The second backoff doubles, capped at 15 s.
  EXPECT_EQ(Node(run, "a")->not_before, clock_.NowMicros() + 15'000'000);
  clock_.Advance(15'000'000);
  run = PassUntil(run.id, [](const RunRecord& r) { return IsTerminal(r.state); });
  EXPECT_EQ(run.state, RunState::kSucceeded) << Describe(run);
  EXPECT_EQ(Node(run, "a")->attempt, 3);
  EXPECT_EQ(Jobs().size(), 3u);
}

TEST_P(PipelinesTest, IdenticalWorkHitsTheCache) {
  StartPipelines();
  Create(LinearSpec(LogPath()));
  RunRecord first = Wait(Start("line").id);
  ASSERT_EQ(first.state, RunState::kSucceeded) << Describe(first);
  RunRecord second = Wait(Start("line").id);
  ASSERT_EQ(second.state, RunState::kSucceeded) << Describe(second);
  for (const char* step : {"prep", "train"}) {
    const NodeRecord* n = Node(second, step);
    ASSERT_NE(n, nullptr);
    EXPECT_TRUE(n->cached) << step;
    EXPECT_EQ(n->reason, "Cached");
    EXPECT_EQ(n->cache_source, first.id + "/" + step);
    EXPECT_TRUE(n->job_id.empty());
  }
  EXPECT_EQ(Node(second, "train")->parameters.at("greeting"), "hello");
  EXPECT_EQ(Node(second, "prep")->artifacts.at("data").path,
            Node(first, "prep")->artifacts.at("data").path);
  EXPECT_EQ(Ran(), (std::vector<std::string>{"prep", "train"}));
  // Another param value is other work.
  StartRunRequest req;
  req.params = Yaml("{n: 4}");
  RunRecord third = Wait(Start("line", req).id);
  EXPECT_FALSE(Node(third, "prep")->cached);
  EXPECT_EQ(StateOf(third, "train"), NodeState::kFailed);  // it wants 3 rows
  // Cache off for a run: everything runs again.
  StartRunRequest off;
  off.cache = false;
  RunRecord fourth = Wait(Start("line", off).id);
  ASSERT_EQ(fourth.state, RunState::kSucceeded) << Describe(fourth);
  EXPECT_FALSE(Node(fourth, "prep")->cached);
  EXPECT_TRUE(Node(fourth, "prep")->cache_key.empty());
  EXPECT_EQ(Count(Ran(), "prep"), 3);
}

TEST_P(PipelinesTest, CacheHonoursMaxAgeAndStepSwitch) {
  StartPipelines();
  Create(R"(
name: aged
steps:
  - name: a
    command: "echo a >> )" + LogPath() + R"("
    cache: {max_age: 1h}
  - name: b
    command: "echo b >> )" + LogPath() + R"("
    cache: false
)");
  ASSERT_EQ(Wait(Start("aged").id).state, RunState::kSucceeded);
  RunRecord second = Wait(Start("aged").id);
  EXPECT_TRUE(Node(second, "a")->cached);
  EXPECT_FALSE(Node(second, "b")->cached);
  clock_.Advance(int64_t{3601} * 1'000'000);
  RunRecord third = Wait(Start("aged").id);
  EXPECT_FALSE(Node(third, "a")->cached);
  EXPECT_EQ(Count(Ran(), "a"), 2);
  EXPECT_EQ(Count(Ran(), "b"), 3);
}

TEST_P(PipelinesTest, RetryRunResumesFromTheFailedStep) {
  StartPipelines();
  const std::string flag = (dir_ / "fixed").string();
  Create(R"(
name: resume
steps:
  - name: prep
    command: "echo prep >> )" + LogPath() + R"( && echo 7 > {{outputs.parameters.x}}"
    outputs: {parameters: [x]}
    cache: false
  - name: train
    command: "echo train >> )" + LogPath() + R"( && test -f )" + flag + R"( && echo {{steps.prep.outputs.parameters.x}} > {{outputs.parameters.y}}"
    outputs: {parameters: [y]}
    cache: false
  - name: items
    for_each: [1, 2, 3]
    command: "echo item{{item}} >> )" + LogPath() + R"( && (test {{item}} != 2 || test -f )" + flag + R"y()"
    cache: false
)y");
  RunRecord run = Wait(Start("resume").id);
  ASSERT_EQ(run.state, RunState::kFailed) << Describe(run);
  EXPECT_EQ(StateOf(run, "train"), NodeState::kFailed);
  EXPECT_EQ(StateOf(run, "items[1]"), NodeState::kFailed);
  EXPECT_EQ(service_->RetryRun(admin_, "team", run.id).status().code(), StatusCode::kOk);
  EXPECT_EQ(service_->RetryRun(admin_, "team", run.id).status().code(),
            StatusCode::kFailedPrecondition);  // running now
  std::ofstream(flag) << "ok";
  run = Wait(run.id);
  ASSERT_EQ(run.state, RunState::kSucceeded) << Describe(run);
  EXPECT_EQ(run.retries, 1);
  EXPECT_EQ(Node(run, "train")->parameters.at("y"), "7");
  const std::vector<std::string> ran = Ran();
  EXPECT_EQ(Count(ran, "prep"), 1);  // reused, never rerun
  EXPECT_EQ(Count(ran, "train"), 2);
  EXPECT_EQ(Count(ran, "item1"), 1);
  EXPECT_EQ(Count(ran, "item2"), 2);
  EXPECT_EQ(Count(ran, "item3"), 1);
  EXPECT_EQ(service_->RetryRun(admin_, "team", run.id).status().code(),
            StatusCode::kFailedPrecondition);  // succeeded
}

TEST_P(PipelinesTest, CancelStopsStepsThenRunsTheExitHandler) {
  StartPipelines();
  Create(R"(
name: long
steps:
  - name: slow
    command: "sleep 30"
  - name: after
    depends: "slow"
    command: "echo after >> )" + LogPath() + R"("
on_exit:
  name: notify
  command: "echo notify >> )" + LogPath() + R"("
)");
  RunRecord run = Start("long");
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    run = Get(run.id);
    const NodeRecord* n = Node(run, "slow");
    if (n && n->state == NodeState::kRunning) {
      auto job = jobs_->Get(admin_, "team", n->job_id);
      if (job.ok() && job->phase == Phase::kRunning) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto cancelled = service_->CancelRun(admin_, "team", run.id);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status().ToString();
  EXPECT_TRUE(cancelled->cancel_requested);
  run = Wait(run.id);
  EXPECT_EQ(run.state, RunState::kCancelled) << Describe(run);
  EXPECT_EQ(StateOf(run, "slow"), NodeState::kCancelled);
  EXPECT_EQ(Node(run, "after"), nullptr);  // never reached
  EXPECT_EQ(StateOf(run, "notify"), NodeState::kSucceeded);
  EXPECT_EQ(Ran(), (std::vector<std::string>{"notify"}));
  auto job = jobs_->Get(admin_, "team", Node(run, "slow")->job_id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->phase, Phase::kCancelled);
  EXPECT_EQ(service_->CancelRun(admin_, "team", run.id).status().code(),
            StatusCode::kFailedPrecondition);
  auto graph = service_->Graph(admin_, "team", run.id);
  ASSERT_TRUE(graph.ok());
  EXPECT_TRUE(graph->steps.back().exit_handler);
  EXPECT_EQ(graph->edges.back(), (std::pair<std::string, std::string>{"after", "notify"}));
}

TEST_P(PipelinesTest, FailingExitHandlerFailsTheRun) {
  StartPipelines();
  Create(R"(
name: ex
steps:
  - name: a
    command: "true"
on_exit:
  name: bye
  command: "exit 1"
)");
  RunRecord run = Wait(Start("ex").id);
  EXPECT_EQ(run.state, RunState::kFailed) << Describe(run);
  EXPECT_EQ(run.reason, "ExitHandlerFailed");
}

TEST_P(PipelinesTest, RestartedControllerNeverStartsAStepTwice) {
  StartPipelines(/*thread=*/false);
  Create(R"(
name: crash
steps:
  - name: a
    command: "echo a >> )" + LogPath() + R"( && sleep 0.3"
  - name: b
    for_each: [1, 2, 3]
    command: "echo b{{item}} >> )" + LogPath() + R"("
  - name: c
    command: "echo c >> )" + LogPath() + R"("
)");
  RunRecord run = Start("crash");
  // Controller 1 starts `a`, then "dies" (every transaction it made is all
  // that is left).
  run = PassUntil(run.id, [](const RunRecord& r) {
    const NodeRecord* n = Node(r, "a");
    return n && n->state == NodeState::kRunning;
  });
  StartPipelines(/*thread=*/false);  // controller 2 on the same store
  run = PassUntil(run.id, [](const RunRecord& r) { return Node(r, "b[0]") != nullptr; });
  // Dies again while the fan-out is in flight; controller 3 finishes.
  StartPipelines(/*thread=*/false);
  Pass();
  StartPipelines(/*thread=*/false);
  run = PassUntil(run.id, [](const RunRecord& r) { return IsTerminal(r.state); });
  EXPECT_EQ(run.state, RunState::kSucceeded) << Describe(run);
  EXPECT_EQ(Jobs().size(), 5u);
  const std::vector<std::string> ran = Ran();
  for (const char* s : {"a", "b1", "b2", "b3", "c"}) EXPECT_EQ(Count(ran, s), 1) << s;
  for (const NodeRecord& n : run.nodes) EXPECT_EQ(n.attempt, 1) << n.node;
}

TEST_P(PipelinesTest, LongNamesMakeValidJobNamesAndMetricsCount) {
  MetricsRegistry metrics;
  StartPipelines(true, &metrics);
  const std::string step(40, 's');
  Create(R"(
name: a-rather-long-pipeline-name-that-goes-on-and-on
steps:
  - name: )" + step + R"(
    for_each: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    command: "true"
)");
  RunRecord run = Wait(Start("a-rather-long-pipeline-name-that-goes-on-and-on").id);
  ASSERT_EQ(run.state, RunState::kSucceeded) << Describe(run);
  std::set<std::string> names;
  for (const NodeRecord& n : run.nodes) {
    EXPECT_TRUE(tenancy::ValidateName(n.job_name).ok()) << n.job_name;
    names.insert(n.job_name);
  }
  EXPECT_EQ(names.size(), 11u);
  const std::string text = metrics.Render();
  EXPECT_NE(text.find("lathe_pipeline_nodes_started_total 11"), std::string::npos) << text;
  EXPECT_NE(text.find("lathe_pipeline_controller_pass_seconds_count"), std::string::npos);
  Wait(Start("a-rather-long-pipeline-name-that-goes-on-and-on").id);
  EXPECT_NE(metrics.Render().find("lathe_pipeline_cache_hits_total 11"), std::string::npos);
  StopPipelines();  // before `metrics` goes
}

TEST_P(PipelinesTest, RemoveRefusesWhileARunIsActive) {
  Create("name: r\nsteps: [{name: a, command: \"sleep 30\"}]\n");
  RunRecord run = Start("r");
  EXPECT_EQ(service_->Remove(admin_, "team", "r").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(service_->RemoveRun(admin_, "team", run.id).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(service_->CancelRun(admin_, "team", run.id).ok());
  StartPipelines(false);
  run = PassUntil(run.id, [](const RunRecord& r) { return IsTerminal(r.state); });
  EXPECT_EQ(run.state, RunState::kCancelled);
  EXPECT_TRUE(service_->Remove(admin_, "team", "r").ok());
  EXPECT_EQ(service_->Get(admin_, "team", "r").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace lathe::control
