#include "serving/model_manager.h"

#include <stdlib.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <sstream>
#include <thread>

#include <fmt/core.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "serving/fake_instance.h"

namespace lathe::serving {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using testing::FakeInstance;
using testing::FakeState;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr auto kWait = std::chrono::seconds(5);

// Loads FakeInstances whose factor is the text of <version>/model.txt; the
// text "fail" makes the load fail.
class FakeLoader {
 public:
  InstanceLoader Loader() {
    return [this](const ModelConfig& config, const std::string& dir, int index) {
      return Load(config, dir, index);
    };
  }

  StatusOr<std::unique_ptr<ModelInstance>> Load(const ModelConfig& config, const std::string& dir,
                                                int index) {
    loads.fetch_add(1);
    std::ifstream in(dir + "/model.txt");
    std::stringstream text;
    text << in.rdbuf();
    if (text.str().rfind("fail", 0) == 0) {
      return NotFoundError("fake loader: " + dir + "/model.txt says fail");
    }
    auto state = std::make_shared<FakeState>();
    state->factor = std::stof(text.str());
    if (close_gates) state->Close();
    {
      std::lock_guard<std::mutex> lock(mu);
      states[fs::path(dir).filename().string() + "#" + std::to_string(index)] = state;
    }
    return std::unique_ptr<ModelInstance>(
        std::make_unique<FakeInstance>(state, config.max_batch_size > 0));
  }

  // The state of instance `index` of version `v` (the latest load).
  std::shared_ptr<FakeState> State(int64_t v, int index = 0) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = states.find(std::to_string(v) + "#" + std::to_string(index));
    return it == states.end() ? nullptr : it->second;
  }

  std::atomic<int> loads{0};
  std::atomic<bool> close_gates{false};
  std::mutex mu;
  std::map<std::string, std::shared_ptr<FakeState>> states;
};

std::string Config(std::string_view extra) {
  return fmt::format(R"(
backend: torchscript
max_batch_size: 8
inputs: [{{name: x, datatype: FP32, dims: [2]}}]
outputs: [{{name: y, datatype: FP32, dims: [2]}}, {{name: z, datatype: FP32, dims: [2]}}]
dynamic_batching: {{}}
{}
)",
                     extra);
}

InferRequest Request(float x, std::string id = "") {
  InferRequest r;
  r.id = std::move(id);
  r.inputs.push_back(MakeTensor("x", DataType::kFp32, {1, 2}, std::vector<float>{x, x}));
  return r;
}

class ModelManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = ::testing::TempDir() + "lathe-models-XXXXXX";
    ASSERT_NE(::mkdtemp(repo_.data()), nullptr);
  }
  void TearDown() override {
    manager_.reset();
    std::error_code ec;
    fs::remove_all(repo_, ec);
  }

  void WriteFile(const std::string& path, const std::string& text) {
    fs::create_directories(fs::path(path).parent_path());
    // Write then rename, as a deployment would, so a poll never reads half.
    std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp);
      out << text;
    }
    fs::rename(tmp, path);
  }
  void WriteModel(const std::string& name, const std::string& config) {
    WriteFile(repo_ + "/" + name + "/config.yaml", config);
  }
  void WriteVersion(const std::string& name, int64_t v, const std::string& factor) {
    // A version appears atomically: built aside, then renamed into place.
    const std::string dir = repo_ + "/" + name + "/" + std::to_string(v);
    const std::string staging = repo_ + "/." + name + "-" + std::to_string(v);
    fs::create_directories(staging);
    {
      std::ofstream out(staging + "/model.txt");
      out << factor;
    }
    if (fs::exists(dir)) fs::remove_all(dir);
    fs::rename(staging, dir);
  }

  void Start(ModelControlMode mode, std::vector<std::string> startup = {}, int64_t poll_ms = 20) {
    ModelManagerOptions o;
    o.repository = repo_;
    o.mode = mode;
    o.startup_models = std::move(startup);
    o.poll_interval_ms = poll_ms;
    o.loader = loader_.Loader();
    o.metrics = &metrics_;
    StatusOr<std::unique_ptr<ModelManager>> m = ModelManager::Create(std::move(o));
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    manager_ = *std::move(m);
  }

  StatusOr<InferResponse> Infer(std::string_view model, VersionSelector selector, float x,
                                std::string id = "") {
    auto p = std::make_shared<std::promise<StatusOr<InferResponse>>>();
    auto f = p->get_future();
    manager_->Infer(model, selector, Request(x, std::move(id)),
                    [p](StatusOr<InferResponse> r) { p->set_value(std::move(r)); });
    if (f.wait_for(kWait) != std::future_status::ready) {
      return DeadlineExceededError("test: no answer in 5 s");
    }
    return f.get();
  }

  // y[0] of an answer, or -1.
  float Y(const StatusOr<InferResponse>& r) {
    if (!r.ok() || r->outputs.empty()) return -1;
    float v;
    std::memcpy(&v, r->outputs[0].data.data(), sizeof v);
    return v;
  }

  template <typename Pred>
  bool WaitFor(Pred pred) {
    const auto until = Clock::now() + kWait;
    while (!pred()) {
      if (Clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

  // A copy: Index() returns a fresh vector each time.
  std::optional<ModelIndexEntry> Entry(const std::vector<ModelIndexEntry>& index,
                                       std::string_view name, std::string_view version) {
    for (const ModelIndexEntry& e : index) {
      if (e.name == name && e.version == version) return e;
    }
    return std::nullopt;
  }

  std::string repo_;
  FakeLoader loader_;
  MetricsRegistry registry_;
  ServingMetrics metrics_{registry_};
  std::unique_ptr<ModelManager> manager_;
};

TEST_F(ModelManagerTest, VersionPoliciesSelectWhatLoads) {
  WriteModel("latest2", Config("version_policy: {latest: 2}"));
  WriteModel("all", Config("version_policy: all"));
  WriteModel("some", Config("version_policy: {specific: [1, 3]}"));
  WriteModel("one", Config(""));
  for (const char* m : {"latest2", "all", "some", "one"}) {
    for (int v = 1; v <= 3; ++v) WriteVersion(m, v, std::to_string(v));
  }
  Start(ModelControlMode::kNone);
  EXPECT_THAT(manager_->ReadyVersions("latest2"), ElementsAre(2, 3));
  EXPECT_THAT(manager_->ReadyVersions("all"), ElementsAre(1, 2, 3));
  EXPECT_THAT(manager_->ReadyVersions("some"), ElementsAre(1, 3));
  EXPECT_THAT(manager_->ReadyVersions("one"), ElementsAre(3));
  // The default is the highest version; a number picks one.
  StatusOr<InferResponse> r = Infer("some", {}, 1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->model_version, "3");
  EXPECT_EQ(Y(r), 3);
  r = Infer("some", {.version = 1}, 1);
  EXPECT_EQ(r->model_version, "1");
  EXPECT_EQ(Y(r), 1);
  EXPECT_EQ(Infer("some", {.version = 2}, 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Infer("nope", {}, 1).status().code(), StatusCode::kNotFound);
  // Load and Unload belong to explicit mode.
  EXPECT_EQ(manager_->Load("one").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(manager_->Unload("one").code(), StatusCode::kFailedPrecondition);
}

TEST_F(ModelManagerTest, LabelsRouteToTheirVersion) {
  WriteModel("m", Config("version_policy: all\nlabels: {stable: 1, beta: 2}"));
  WriteVersion("m", 1, "10");
  WriteVersion("m", 2, "20");
  Start(ModelControlMode::kNone);
  EXPECT_EQ(Infer("m", {.label = "stable"}, 1)->model_version, "1");
  EXPECT_EQ(Infer("m", {.label = "beta"}, 1)->model_version, "2");
  EXPECT_EQ(Y(Infer("m", {.label = "beta"}, 1)), 20);
  StatusOr<InferResponse> r = Infer("m", {.label = "gamma"}, 1);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("beta, stable"));
}

TEST_F(ModelManagerTest, CanarySplitsByWeightAndIsStablePerRequestId) {
  WriteModel("m", Config("version_policy: all\nlabels: {stable: 1, canary: 2}\n"
                         "canary: {label: canary, weight: 10}"));
  WriteVersion("m", 1, "1");
  WriteVersion("m", 2, "2");
  Start(ModelControlMode::kNone);
  constexpr int kRequests = 10000;
  std::atomic<int> to_canary{0}, answered{0}, failed{0};
  std::promise<void> all;
  for (int i = 0; i < kRequests; ++i) {
    manager_->Infer("m", {}, Request(1, "req-" + std::to_string(i)),
                    [&](StatusOr<InferResponse> r) {
                      if (!r.ok())
                        failed.fetch_add(1);
                      else if (r->model_version == "2")
                        to_canary.fetch_add(1);
                      if (answered.fetch_add(1) + 1 == kRequests) all.set_value();
                    });
  }
  ASSERT_EQ(all.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(failed.load(), 0);
  // 10 % of 10,000: σ = 30, so ±150 is five σ.
  EXPECT_NEAR(to_canary.load(), 1000, 150);
  // Deterministic per id, and without the split the default is version 1.
  for (int i = 0; i < 20; ++i) {
    const std::string id = "again-" + std::to_string(i);
    const int64_t v = (*manager_->Resolve("m", {}, id))->version;
    for (int k = 0; k < 5; ++k) EXPECT_EQ((*manager_->Resolve("m", {}, id))->version, v);
  }
  // Requests without an id are split too.
  int no_id = 0;
  for (int i = 0; i < kRequests; ++i) no_id += (*manager_->Resolve("m", {}))->version == 2;
  EXPECT_NEAR(no_id, 1000, 150);
}

TEST_F(ModelManagerTest, PollModeSwapsInANewVersionAndDrainsTheOld) {
  WriteModel("m", Config(""));
  WriteVersion("m", 1, "2");
  Start(ModelControlMode::kPoll);
  StatusOr<InferResponse> r = Infer("m", {}, 5);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Y(r), 10);
  // A request in flight on version 1 (its instance held) finishes there.
  std::shared_ptr<FakeState> v1 = loader_.State(1);
  ASSERT_NE(v1, nullptr);
  v1->Close();
  auto p = std::make_shared<std::promise<StatusOr<InferResponse>>>();
  auto in_flight = p->get_future();
  manager_->Infer("m", {}, Request(7),
                  [p](StatusOr<InferResponse> r) { p->set_value(std::move(r)); });
  ASSERT_TRUE(v1->WaitHeld(1));

  WriteVersion("m", 2, "3");
  ASSERT_TRUE(WaitFor([&] { return manager_->IsReady("m", 2); }));
  EXPECT_THAT(manager_->ReadyVersions("m"), ElementsAre(2));
  r = Infer("m", {}, 5);
  EXPECT_EQ(r->model_version, "2");
  EXPECT_EQ(Y(r), 15);
  // Version 1 is draining: unloading, its request still held.
  std::optional<ModelIndexEntry> e = Entry(manager_->Index(), "m", "1");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->state, VersionState::kUnloading);
  EXPECT_FALSE(v1->destroyed);
  v1->Open();
  ASSERT_EQ(in_flight.wait_for(kWait), std::future_status::ready);
  StatusOr<InferResponse> old = in_flight.get();
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->model_version, "1");
  EXPECT_EQ(Y(old), 14);
  ASSERT_TRUE(WaitFor([&] { return !Entry(manager_->Index(), "m", "1").has_value(); }));
  EXPECT_TRUE(v1->destroyed);
}

TEST_F(ModelManagerTest, PollModeKeepsTheOldVersionWhenTheNewOneFails) {
  WriteModel("m", Config(""));
  WriteVersion("m", 1, "2");
  Start(ModelControlMode::kPoll);
  ASSERT_TRUE(manager_->IsReady("m", 1));
  WriteVersion("m", 2, "fail");
  ASSERT_TRUE(WaitFor([&] {
    std::optional<ModelIndexEntry> e = Entry(manager_->Index(), "m", "2");
    return e.has_value() && e->state == VersionState::kUnavailable;
  }));
  // Several polls later (an unchanged failure is not retried), version 1
  // still serves.
  const int loads = loader_.loads.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(loader_.loads.load(), loads);
  std::vector<ModelIndexEntry> index = manager_->Index();
  EXPECT_THAT(Entry(index, "m", "2")->reason, HasSubstr("model.txt says fail"));
  EXPECT_THAT(Entry(index, "m", "2")->reason, HasSubstr("model \"m\" version 2"));
  ASSERT_TRUE(Entry(index, "m", "1").has_value());
  EXPECT_EQ(Entry(index, "m", "1")->state, VersionState::kReady);
  EXPECT_THAT(Entry(index, "m", "1")->reason, HasSubstr("kept serving"));
  StatusOr<InferResponse> r = Infer("m", {}, 5);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->model_version, "1");
  EXPECT_EQ(Y(r), 10);
  // Fixed: it loads and takes over.
  WriteVersion("m", 2, "4");
  ASSERT_TRUE(WaitFor([&] { return manager_->ReadyVersions("m") == std::vector<int64_t>{2}; }));
  EXPECT_EQ(Y(Infer("m", {}, 5)), 20);
}

TEST_F(ModelManagerTest, PollModeReloadsAChangedConfigAndKeepsServingABrokenOne) {
  WriteModel("m", Config(""));
  WriteVersion("m", 1, "2");
  Start(ModelControlMode::kPoll);
  std::shared_ptr<FakeState> first = loader_.State(1);
  ASSERT_NE(first, nullptr);
  WriteModel("m", Config("instances: {count: 2}"));
  ASSERT_TRUE(WaitFor([&] { return loader_.State(1, 1) != nullptr && first->destroyed; }));
  ASSERT_TRUE(WaitFor([&] { return manager_->IsReady("m", 1); }));
  EXPECT_EQ((*manager_->Resolve("m", {}))->config->instances.count, 2);
  WriteModel("m", "max_batch_size: [oops]\n");
  ASSERT_TRUE(WaitFor([&] {
    std::optional<ModelIndexEntry> e = Entry(manager_->Index(), "m", "1");
    return e.has_value() && e->reason.find("no longer loads") != std::string::npos;
  }));
  EXPECT_EQ(Y(Infer("m", {}, 1)), 2);
}

TEST_F(ModelManagerTest, PollModeUnloadsARemovedModel) {
  WriteModel("m", Config(""));
  WriteVersion("m", 1, "2");
  Start(ModelControlMode::kPoll);
  ASSERT_TRUE(manager_->IsReady("m"));
  fs::remove_all(repo_ + "/m");
  ASSERT_TRUE(WaitFor([&] { return manager_->Index().empty(); }));
  EXPECT_EQ(Infer("m", {}, 1).status().code(), StatusCode::kNotFound);
}

TEST_F(ModelManagerTest, ExplicitLoadAndUnload) {
  WriteModel("m", Config(""));
  WriteVersion("m", 1, "2");
  WriteModel("other", Config(""));
  WriteVersion("other", 1, "2");
  Start(ModelControlMode::kExplicit, {"other"});
  EXPECT_TRUE(manager_->IsReady("other"));
  EXPECT_EQ(Infer("m", {}, 1).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(manager_->Load("m").ok());
  EXPECT_EQ(Y(Infer("m", {}, 1)), 2);
  EXPECT_EQ(manager_->Load("missing").code(), StatusCode::kNotFound);

  ASSERT_TRUE(manager_->Unload("m").ok());
  StatusOr<InferResponse> r = Infer("m", {}, 1);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("unloaded"));
  std::optional<ModelIndexEntry> e = Entry(manager_->Index(), "m", "");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->state, VersionState::kUnavailable);
  EXPECT_EQ(e->reason, "unloaded");
  EXPECT_EQ(manager_->Unload("m").code(), StatusCode::kNotFound);

  // Load re-reads config.yaml.
  WriteModel("m", Config("version_policy: all\nlabels: {stable: 1}"));
  WriteVersion("m", 2, "3");
  ASSERT_TRUE(manager_->Load("m").ok());
  EXPECT_THAT(manager_->ReadyVersions("m"), ElementsAre(1, 2));
  EXPECT_EQ(Infer("m", {.label = "stable"}, 1)->model_version, "1");
  EXPECT_EQ(Y(Infer("m", {}, 1)), 3);
  // A failed load reports its reason and keeps what serves.
  WriteVersion("m", 2, "fail");
  Status s = manager_->Load("m");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("says fail"));
  EXPECT_EQ(Y(Infer("m", {}, 1)), 3);
}

TEST_F(ModelManagerTest, WarmupRunsBeforeTheVersionIsReady) {
  WriteModel("m", Config("instances: {count: 2}\n"
                         "warmup: [{name: w, batch_size: 4, inputs: {x: random}, count: 3}]"));
  WriteVersion("m", 1, "2");
  Start(ModelControlMode::kExplicit);
  loader_.close_gates = true;
  std::thread load([&] { EXPECT_TRUE(manager_->Load("m").ok()); });
  ASSERT_TRUE(WaitFor([&] { return loader_.State(1) != nullptr; }));
  std::shared_ptr<FakeState> s0 = loader_.State(1);
  ASSERT_TRUE(s0->WaitHeld(1));  // the first warmup run is in progress
  std::optional<ModelIndexEntry> e = Entry(manager_->Index(), "m", "1");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->state, VersionState::kLoading);
  EXPECT_FALSE(manager_->IsReady("m"));
  EXPECT_EQ(Infer("m", {}, 1).status().code(), StatusCode::kUnavailable);
  s0->Open();
  ASSERT_TRUE(WaitFor([&] { return loader_.State(1, 1) != nullptr; }));
  loader_.State(1, 1)->Open();
  load.join();
  EXPECT_TRUE(manager_->IsReady("m"));
  for (int i = 0; i < 2; ++i) {
    std::shared_ptr<FakeState> s = loader_.State(1, i);
    EXPECT_EQ(s->calls.load(), 3);
    EXPECT_THAT(s->batch_sizes(), ElementsAre(4, 4, 4));
  }
  EXPECT_EQ(Y(Infer("m", {}, 1)), 2);
}

TEST_F(ModelManagerTest, FailedWarmupLeavesTheVersionUnavailable) {
  WriteModel("m", Config("warmup: [{name: w}]"));
  WriteVersion("m", 1, "2");
  ModelManagerOptions o;
  o.repository = repo_;
  o.mode = ModelControlMode::kNone;
  o.metrics = &metrics_;
  o.loader = [](const ModelConfig&, const std::string&,
                int) -> StatusOr<std::unique_ptr<ModelInstance>> {
    auto s = std::make_shared<FakeState>();
    s->fail = true;
    return std::unique_ptr<ModelInstance>(std::make_unique<FakeInstance>(s));
  };
  StatusOr<std::unique_ptr<ModelManager>> m = ModelManager::Create(std::move(o));
  ASSERT_TRUE(m.ok());
  std::vector<ModelIndexEntry> index = (*m)->Index();
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0].state, VersionState::kUnavailable);
  EXPECT_THAT(index[0].reason, HasSubstr("warmup \"w\""));
  EXPECT_THAT(index[0].reason, HasSubstr("injected failure"));
}

TEST_F(ModelManagerTest, BadConfigIsReportedInTheIndex) {
  WriteModel("bad", "backend: torchscript\nmax_batch_size: -3\n");
  WriteVersion("bad", 1, "2");
  WriteModel("good", Config(""));
  WriteVersion("good", 1, "2");
  Start(ModelControlMode::kNone);
  EXPECT_TRUE(manager_->IsReady("good"));
  std::optional<ModelIndexEntry> e = Entry(manager_->Index(), "bad", "");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->state, VersionState::kUnavailable);
  EXPECT_THAT(e->reason, HasSubstr("config.yaml"));
  EXPECT_EQ(manager_->Index(/*ready_only=*/true).size(), 1u);
  StatusOr<InferResponse> r = Infer("bad", {}, 1);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

TEST_F(ModelManagerTest, StatisticsPerVersion) {
  WriteModel("m", Config("version_policy: all"));
  WriteVersion("m", 1, "2");
  WriteVersion("m", 2, "2");
  Start(ModelControlMode::kNone);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Infer("m", {.version = 1}, 1).ok());
  ASSERT_TRUE(Infer("m", {}, 1).ok());
  StatusOr<std::vector<ModelStatistics>> all = manager_->Statistics("m");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].version, "1");
  EXPECT_EQ((*all)[0].success.count, 3u);
  EXPECT_EQ((*all)[1].success.count, 1u);
  EXPECT_EQ(manager_->Statistics("m", 2)->size(), 1u);
  EXPECT_EQ(manager_->Statistics("m", 7).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(manager_->Statistics()->size(), 2u);
  EXPECT_THAT(registry_.Render(),
              HasSubstr("lathe_inference_request_success_total{model=\"m\",version=\"1\"} 3"));
}

}  // namespace
}  // namespace lathe::serving
