#include "serving/batcher.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <thread>

#include <fmt/core.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "serving/fake_instance.h"

namespace lathe::serving {
namespace {

using ::testing::ElementsAre;
using testing::FakeInstance;
using testing::FakeState;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using Clock = std::chrono::steady_clock;

constexpr auto kWait = std::chrono::seconds(5);

ModelConfig Config(std::string_view batching, int64_t max_batch_size = 8,
                   std::string_view extra = "") {
  std::string yaml = fmt::format(R"(
name: m
backend: torchscript
max_batch_size: {}
inputs: [{{name: x, datatype: FP32, dims: [2]}}]
outputs: [{{name: y, datatype: FP32, dims: [2]}}, {{name: z, datatype: FP32, dims: [2]}}]
{}
{}
)",
                                 max_batch_size, batching, extra);
  StatusOr<ModelConfig> c = ParseModelConfig(yaml, "m");
  EXPECT_TRUE(c.ok()) << c.status().ToString() << "\n" << yaml;
  return c.ok() ? *c : ModelConfig{};
}

// x of `rows` rows of two values each: start, start+1, ...
InferRequest Request(int64_t rows, float start, std::string id = "", int64_t priority = 0,
                     int64_t timeout_us = 0, std::vector<std::string> outputs = {}) {
  std::vector<float> v(static_cast<size_t>(rows * 2));
  for (size_t i = 0; i < v.size(); ++i) v[i] = start + static_cast<float>(i);
  InferRequest r;
  r.id = std::move(id);
  r.inputs.push_back(MakeTensor("x", DataType::kFp32, {rows, 2}, v));
  for (std::string& o : outputs) r.outputs.push_back({std::move(o), std::nullopt});
  r.priority = priority;
  r.timeout_us = timeout_us;
  return r;
}

std::vector<float> Floats(const Tensor& t) {
  std::vector<float> v(t.data.size() / sizeof(float));
  if (!v.empty()) std::memcpy(v.data(), t.data.data(), t.data.size());
  return v;
}

// One request's answer.
class Call {
 public:
  Call()
      : promise_(std::make_shared<std::promise<StatusOr<InferResponse>>>()),
        future_(promise_->get_future()) {}
  InferDone Done() {
    auto p = promise_;
    auto answered = answered_;
    return [p, answered](StatusOr<InferResponse> r) {
      answered->fetch_add(1);
      p->set_value(std::move(r));
    };
  }
  bool Ready() { return future_.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }
  StatusOr<InferResponse> Get() {
    if (future_.wait_for(kWait) != std::future_status::ready) {
      return DeadlineExceededError("test: no answer within 5 s");
    }
    return future_.get();
  }
  int answered() const { return answered_->load(); }

 private:
  std::shared_ptr<std::promise<StatusOr<InferResponse>>> promise_;
  std::future<StatusOr<InferResponse>> future_;
  std::shared_ptr<std::atomic<int>> answered_ = std::make_shared<std::atomic<int>>(0);
};

class BatcherTest : public ::testing::Test {
 protected:
  std::unique_ptr<DynamicBatcher> Make(const ModelConfig& config, int instances = 1,
                                       OverloadOptions overload = {}) {
    std::vector<std::unique_ptr<ModelInstance>> list;
    for (int i = 0; i < instances; ++i) {
      list.push_back(std::make_unique<FakeInstance>(state_, config.max_batch_size > 0));
    }
    return std::make_unique<DynamicBatcher>(
        std::make_shared<const ModelConfig>(config), 3, std::move(list),
        BatcherOptions{.metrics = &metrics_, .overload = overload});
  }

  std::shared_ptr<FakeState> state_ = std::make_shared<FakeState>();
  MetricsRegistry registry_;
  ServingMetrics metrics_{registry_};
};

TEST_F(BatcherTest, MergesConcurrentRequestsUpToMaxBatchSize) {
  auto b = Make(Config("dynamic_batching: {max_queue_delay_us: 50000}", 4));
  std::vector<Call> calls(10);
  for (size_t i = 0; i < calls.size(); ++i) {
    b->Submit(Request(1, static_cast<float>(10 * i), "r" + std::to_string(i)), calls[i].Done());
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    StatusOr<InferResponse> r = calls[i].Get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->id, "r" + std::to_string(i));
    EXPECT_EQ(r->model_name, "m");
    EXPECT_EQ(r->model_version, "3");
    ASSERT_EQ(r->outputs.size(), 2u);
    EXPECT_EQ(r->outputs[0].name, "y");
    EXPECT_EQ(r->outputs[0].shape, (std::vector<int64_t>{1, 2}));
    const float x = static_cast<float>(10 * i);
    EXPECT_THAT(Floats(r->outputs[0]), ElementsAre(2 * x, 2 * (x + 1)));
    EXPECT_THAT(Floats(r->outputs[1]), ElementsAre(x + 1, x + 2));
  }
  // Two full batches go at once; the last two wait out the delay.
  EXPECT_THAT(state_->batch_sizes(), ElementsAre(4, 4, 2));
}

TEST_F(BatcherTest, PreferredBatchSizeGoesAtOnce) {
  auto b = Make(
      Config("dynamic_batching: {max_queue_delay_us: 10000000, preferred_batch_sizes: [2]}", 8));
  const auto start = Clock::now();
  Call a, c;
  b->Submit(Request(1, 0), a.Done());
  b->Submit(Request(1, 10), c.Done());
  ASSERT_TRUE(a.Get().ok());
  ASSERT_TRUE(c.Get().ok());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));  // far under the 10 s delay
  EXPECT_THAT(state_->batch_sizes(), ElementsAre(2));
  // A lone request waits for the delay; Drain sends it without waiting.
  Call d;
  b->Submit(Request(1, 20), d.Done());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(d.Ready());
  b->Drain();
  EXPECT_TRUE(d.Get().ok());
  EXPECT_THAT(state_->batch_sizes(), ElementsAre(2, 1));
}

TEST_F(BatcherTest, QueueDelayIsHonoured) {
  auto b = Make(Config("dynamic_batching: {max_queue_delay_us: 30000}", 8));
  const auto start = Clock::now();
  Call a;
  b->Submit(Request(1, 0), a.Done());
  ASSERT_TRUE(a.Get().ok());
  const auto waited = Clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(30));
  EXPECT_LT(waited, std::chrono::milliseconds(1000));
  EXPECT_THAT(state_->batch_sizes(), ElementsAre(1));
}

TEST_F(BatcherTest, SplitsOutputsByRowsAndRequestedOutputs) {
  auto b = Make(Config("dynamic_batching: {}", 8));
  state_->Close();
  Call first;
  b->Submit(Request(1, 100), first.Done());
  ASSERT_TRUE(state_->WaitHeld(1));
  // Queued behind the held batch, so they form one batch of 6 rows.
  Call a, c, d;
  b->Submit(Request(1, 0, "a", 0, 0, {"y"}), a.Done());
  b->Submit(Request(3, 10, "c", 0, 0, {"z", "y"}), c.Done());
  b->Submit(Request(2, 20, "d"), d.Done());
  state_->Open();
  ASSERT_TRUE(first.Get().ok());
  StatusOr<InferResponse> ra = a.Get(), rc = c.Get(), rd = d.Get();
  ASSERT_TRUE(ra.ok() && rc.ok() && rd.ok());
  EXPECT_THAT(state_->batch_sizes(), ElementsAre(1, 6));
  // The union of what they asked for: d asked for everything.
  EXPECT_TRUE(state_->requested()[1].empty());

  ASSERT_EQ(ra->outputs.size(), 1u);
  EXPECT_EQ(ra->outputs[0].name, "y");
  EXPECT_EQ(ra->outputs[0].shape, (std::vector<int64_t>{1, 2}));
  EXPECT_THAT(Floats(ra->outputs[0]), ElementsAre(0, 2));

  ASSERT_EQ(rc->outputs.size(), 2u);
  EXPECT_EQ(rc->outputs[0].name, "z");
  EXPECT_EQ(rc->outputs[1].name, "y");
  EXPECT_EQ(rc->outputs[0].shape, (std::vector<int64_t>{3, 2}));
  EXPECT_THAT(Floats(rc->outputs[0]), ElementsAre(11, 12, 13, 14, 15, 16));
  EXPECT_THAT(Floats(rc->outputs[1]), ElementsAre(20, 22, 24, 26, 28, 30));

  ASSERT_EQ(rd->outputs.size(), 2u);
  EXPECT_EQ(rd->outputs[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_THAT(Floats(rd->outputs[0]), ElementsAre(40, 42, 44, 46));
  EXPECT_THAT(Floats(rd->outputs[1]), ElementsAre(21, 22, 23, 24));
}

TEST_F(BatcherTest, OutputUnionWhenEveryRequestNamesOutputs) {
  auto b = Make(Config("dynamic_batching: {}", 8));
  state_->Close();
  Call first, a, c;
  b->Submit(Request(1, 0), first.Done());
  ASSERT_TRUE(state_->WaitHeld(1));
  b->Submit(Request(1, 0, "a", 0, 0, {"z"}), a.Done());
  b->Submit(Request(1, 0, "c", 0, 0, {"y"}), c.Done());
  state_->Open();
  ASSERT_TRUE(a.Get().ok());
  ASSERT_TRUE(c.Get().ok());
  ASSERT_EQ(state_->requested().size(), 2u);
  EXPECT_THAT(state_->requested()[1], ElementsAre("y", "z"));  // config order
}

TEST_F(BatcherTest, HigherPriorityIsServedFirst) {
  auto b = Make(Config("dynamic_batching: {priority_levels: 2, default_priority_level: 2}", 1));
  state_->Close();
  Call first;
  b->Submit(Request(1, 0), first.Done());
  ASSERT_TRUE(state_->WaitHeld(1));
  std::vector<Call> low(3), high(3);
  for (int i = 0; i < 3; ++i) b->Submit(Request(1, 100 + i, "", 2), low[i].Done());
  for (int i = 0; i < 3; ++i) b->Submit(Request(1, 200 + i, "", 1), high[i].Done());
  Call dflt;  // priority 0 = the default level, 2
  b->Submit(Request(1, 300), dflt.Done());
  state_->Open();
  for (Call& c : low) ASSERT_TRUE(c.Get().ok());
  for (Call& c : high) ASSERT_TRUE(c.Get().ok());
  ASSERT_TRUE(dflt.Get().ok());
  EXPECT_THAT(state_->first_values(), ElementsAre(0, 200, 201, 202, 100, 101, 102, 300));
}

TEST_F(BatcherTest, FullQueueRejectsAtOnce) {
  auto b = Make(Config("dynamic_batching: {max_queue_size: 2}", 8));
  state_->Close();
  Call running, q1, q2, over;
  b->Submit(Request(1, 0), running.Done());
  ASSERT_TRUE(state_->WaitHeld(1));
  b->Submit(Request(1, 0), q1.Done());
  b->Submit(Request(1, 0), q2.Done());
  b->Submit(Request(1, 0), over.Done());
  ASSERT_TRUE(over.Ready());  // answered inside Submit
  StatusOr<InferResponse> r = over.Get();
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(r.status().message(), HasSubstr("model \"m\" version 3"));
  EXPECT_THAT(r.status().message(), HasSubstr("max_queue_size"));
  EXPECT_THAT(r.status().message(), HasSubstr("2 requests"));
  state_->Open();
  EXPECT_TRUE(running.Get().ok());
  EXPECT_TRUE(q1.Get().ok());
  EXPECT_TRUE(q2.Get().ok());
  EXPECT_EQ(b->Statistics().failures[static_cast<size_t>(FailureReason::kQueueFull)], 1u);
}

TEST_F(BatcherTest, DeadlineExpiresWhileInstanceIsBusy) {
  auto b = Make(Config("dynamic_batching: {default_timeout_us: 40000}", 8));
  state_->Close();
  Call running;
  b->Submit(Request(1, 0), running.Done());
  ASSERT_TRUE(state_->WaitHeld(1));
  const auto start = Clock::now();
  Call own, by_default, longer;
  b->Submit(Request(1, 0, "", 0, 20'000), own.Done());         // its own 20 ms
  b->Submit(Request(1, 0), by_default.Done());                 // the model's 40 ms
  b->Submit(Request(1, 0, "", 0, 10'000'000), longer.Done());  // may only lower: 40 ms
  StatusOr<InferResponse> r1 = own.Get();
  const auto t1 = Clock::now() - start;
  StatusOr<InferResponse> r2 = by_default.Get();
  StatusOr<InferResponse> r3 = longer.Get();
  const auto t3 = Clock::now() - start;
  EXPECT_EQ(r1.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(r2.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(r3.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_THAT(r1.status().message(), HasSubstr("past its deadline"));
  EXPECT_GE(t1, std::chrono::milliseconds(20));
  EXPECT_LT(t1, std::chrono::milliseconds(500));
  EXPECT_GE(t3, std::chrono::milliseconds(40));
  EXPECT_LT(t3, std::chrono::milliseconds(500));
  EXPECT_FALSE(running.Ready());  // the long batch is still running
  state_->Open();
  EXPECT_TRUE(running.Get().ok());
  EXPECT_EQ(state_->calls.load(), 1);
  EXPECT_EQ(b->Statistics().failures[static_cast<size_t>(FailureReason::kTimeout)], 3u);
}

TEST_F(BatcherTest, DeadlineExpiresWhileWaitingForTheQueueDelay) {
  auto b = Make(Config("dynamic_batching: {max_queue_delay_us: 2000000}", 8));
  const auto start = Clock::now();
  Call c;
  b->Submit(Request(1, 0, "", 0, 20'000), c.Done());
  EXPECT_EQ(c.Get().status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(1000));
  EXPECT_EQ(state_->calls.load(), 0);
}

TEST_F(BatcherTest, CancelledRequestIsDroppedBeforeExecution) {
  auto b = Make(Config("dynamic_batching: {}", 8));
  state_->Close();
  Call running, gone, kept;
  b->Submit(Request(1, 0), running.Done());
  ASSERT_TRUE(state_->WaitHeld(1));
  auto left = std::make_shared<std::atomic<bool>>(false);
  b->Submit(Request(1, 50), gone.Done(), RequestContext{[left] { return left->load(); }});
  b->Submit(Request(1, 60), kept.Done());
  left->store(true);
  state_->Open();
  EXPECT_EQ(gone.Get().status().code(), StatusCode::kCancelled);
  EXPECT_TRUE(kept.Get().ok());
  EXPECT_THAT(state_->batch_sizes(), ElementsAre(1, 1));
  EXPECT_THAT(state_->first_values(), ElementsAre(0, 60));
}

TEST_F(BatcherTest, DrainFinishesQueuedWorkAndRefusesNew) {
  auto b = Make(Config("dynamic_batching: {max_queue_delay_us: 10000000}", 8));
  state_->Close();
  std::vector<Call> calls(4);
  for (Call& c : calls) b->Submit(Request(1, 0), c.Done());
  // Nothing runs yet: the batch waits for its 10 s delay.
  std::thread drainer([&] { b->Drain(); });
  ASSERT_TRUE(state_->WaitHeld(1));  // Drain sent the partial batch at once
  Call late;
  b->Submit(Request(1, 0), late.Done());
  EXPECT_EQ(late.Get().status().code(), StatusCode::kUnavailable);
  InferRequest r = Request(1, 0);
  InferDone d = [](StatusOr<InferResponse>) { FAIL() << "answered"; };
  RequestContext ctx;
  EXPECT_FALSE(b->TrySubmit(r, d, ctx));
  EXPECT_EQ(r.inputs.size(), 1u);  // untouched
  state_->Open();
  drainer.join();
  for (Call& c : calls) {
    ASSERT_TRUE(c.Ready());
    EXPECT_TRUE(c.Get().ok());
  }
  EXPECT_TRUE(state_->destroyed);
  b->Drain();  // idempotent
}

TEST_F(BatcherTest, DrainAnswersEverythingQueuedBehindRunningBatches) {
  auto b = Make(Config("dynamic_batching: {}", 2));
  state_->Close();
  std::vector<Call> calls(11);
  for (size_t i = 0; i < calls.size(); ++i) {
    b->Submit(Request(1, static_cast<float>(i)), calls[i].Done());
  }
  ASSERT_TRUE(state_->WaitHeld(1));
  std::thread drainer([&] { b->Drain(); });
  state_->Open();
  drainer.join();
  for (size_t i = 0; i < calls.size(); ++i) {
    ASSERT_TRUE(calls[i].Ready());
    StatusOr<InferResponse> r = calls[i].Get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(Floats(r->outputs[0])[0], 2.0f * static_cast<float>(i));
    EXPECT_EQ(calls[i].answered(), 1);
  }
  EXPECT_EQ(state_->calls.load(), 6);  // 1 + 5 batches of 2
}

TEST_F(BatcherTest, BackendErrorFailsTheBatch) {
  auto b = Make(Config("dynamic_batching: {}", 8));
  state_->fail = true;
  Call c;
  b->Submit(Request(2, 0), c.Done());
  StatusOr<InferResponse> r = c.Get();
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_THAT(r.status().message(), HasSubstr("model \"m\" version 3"));
  EXPECT_THAT(r.status().message(), HasSubstr("injected failure"));
  EXPECT_EQ(b->Statistics().failures[static_cast<size_t>(FailureReason::kBackendError)], 1u);
}

TEST_F(BatcherTest, InvalidRequestIsRefusedInline) {
  auto b = Make(Config("dynamic_batching: {}", 4));
  Call wrong_shape, too_big, bad_bytes;
  InferRequest r = Request(1, 0);
  r.inputs[0].shape = {1, 3};
  b->Submit(std::move(r), wrong_shape.Done());
  b->Submit(Request(5, 0), too_big.Done());
  InferRequest short_data = Request(1, 0);
  short_data.inputs[0].data = TensorData(std::string(4, '\0'));
  b->Submit(std::move(short_data), bad_bytes.Done());
  ASSERT_TRUE(wrong_shape.Ready() && too_big.Ready() && bad_bytes.Ready());
  EXPECT_EQ(wrong_shape.Get().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(too_big.Get().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_bytes.Get().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(state_->calls.load(), 0);
}

TEST_F(BatcherTest, WithoutDynamicBatchingEachRequestRunsAlone) {
  auto b = Make(Config("", 8), 2);
  std::vector<Call> calls(6);
  for (size_t i = 0; i < calls.size(); ++i) b->Submit(Request(2, 0), calls[i].Done());
  for (Call& c : calls) ASSERT_TRUE(c.Get().ok());
  EXPECT_THAT(state_->batch_sizes(), ElementsAre(2, 2, 2, 2, 2, 2));
}

TEST_F(BatcherTest, ModelWithoutBatchingTakesWholeShapes) {
  auto b = Make(Config("", 0));  // the config refuses dynamic_batching here
  InferRequest r;
  r.inputs.push_back(MakeTensor("x", DataType::kFp32, {2}, std::vector<float>{1, 2}));
  Call c;
  b->Submit(std::move(r), c.Done());
  StatusOr<InferResponse> out = c.Get();
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->outputs[0].shape, (std::vector<int64_t>{2}));
  EXPECT_THAT(Floats(out->outputs[0]), ElementsAre(2, 4));
}

TEST_F(BatcherTest, ManyClientsGetTheirOwnRows) {
  auto b = Make(Config("dynamic_batching: {max_queue_delay_us: 200}", 16), 2);
  std::atomic<int> wrong{0}, done{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const int64_t rows = 1 + (t + i) % 3;
        const float start = static_cast<float>(t * 10000 + i * 10);
        Call c;
        b->Submit(Request(rows, start), c.Done());
        StatusOr<InferResponse> r = c.Get();
        std::vector<float> want;
        for (int64_t k = 0; k < rows * 2; ++k) want.push_back(2 * (start + static_cast<float>(k)));
        if (!r.ok() || Floats(r->outputs[0]) != want) wrong.fetch_add(1);
        done.fetch_add(1);
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(done.load(), 1600);
  ModelStatistics s = b->Statistics();
  EXPECT_EQ(s.success.count, 1600u);
  EXPECT_LT(s.execution_count, 1600u);  // something was merged
}

TEST_F(BatcherTest, OverloadShedsLowestPriorityFirstAndRecovers) {
  OverloadOptions o{.window_ns = 200'000'000,
                    .slices = 10,
                    .hold_ns = 40'000'000,
                    .recover_ratio = 0.8,
                    .min_samples = 4};
  auto b = Make(Config("dynamic_batching: {priority_levels: 3, default_priority_level: 2}", 8,
                       "slo: {p99_ms: 20}"),
                4, o);
  state_->sleep_us = 40'000;  // every request takes 40 ms: twice the objective
  std::atomic<bool> stop{false};
  std::atomic<int> high_failures{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      while (!stop) {
        Call c;
        b->Submit(Request(1, 0, "", 1), c.Done());
        if (!c.Get().ok()) high_failures.fetch_add(1);
      }
    });
  }
  auto probe = [&](int64_t priority) {
    Call c;
    b->Submit(Request(1, 0, "", priority), c.Done());
    return c.Get().status();
  };
  // Level 1 sheds priority 3 only.
  auto until = Clock::now() + kWait;
  while (b->overload_level() < 1 && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GE(b->overload_level(), 1);
  Status shed = probe(3);
  EXPECT_EQ(shed.code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(shed.message(), HasSubstr("shed: overload level"));
  // Still over: level 2 sheds priorities 2 and 3, never 1.
  until = Clock::now() + kWait;
  while (b->overload_level() < 2 && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(b->overload_level(), 2);
  EXPECT_EQ(probe(2).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(probe(0).code(), StatusCode::kResourceExhausted);  // default level 2
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(b->overload_level(), 2);  // the top is the highest priority: never shed
  EXPECT_TRUE(probe(1).ok());
  EXPECT_EQ(high_failures.load(), 0);
  EXPECT_GT(b->Statistics().failures[static_cast<size_t>(FailureReason::kShed)], 0u);
  EXPECT_THAT(registry_.Render(),
              HasSubstr("lathe_inference_overload_level{model=\"m\",version=\"3\"} 2"));

  // Fast again: the level steps back down to 0 and everyone is admitted.
  state_->sleep_us = 1000;
  until = Clock::now() + kWait;
  while (b->overload_level() > 0 && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(b->overload_level(), 0);
  EXPECT_TRUE(probe(3).ok());
  stop = true;
  for (std::thread& t : clients) t.join();
}

TEST_F(BatcherTest, MetricsArePerModelAndVersion) {
  auto b = Make(Config("dynamic_batching: {max_queue_size: 1}", 8));
  Call ok1, ok2, bad;
  b->Submit(Request(2, 0), ok1.Done());
  ASSERT_TRUE(ok1.Get().ok());
  b->Submit(Request(3, 0), ok2.Done());
  ASSERT_TRUE(ok2.Get().ok());
  InferRequest r = Request(1, 0);
  r.inputs[0].name = "nope";
  b->Submit(std::move(r), bad.Done());
  ASSERT_FALSE(bad.Get().ok());
  const std::string text = registry_.Render();
  EXPECT_THAT(text,
              HasSubstr("lathe_inference_request_success_total{model=\"m\",version=\"3\"} 2"));
  EXPECT_THAT(text, HasSubstr("lathe_inference_request_failure_total{model=\"m\",version=\"3\","
                              "reason=\"invalid\"} 1"));
  EXPECT_THAT(text, HasSubstr("lathe_inference_request_failure_total{model=\"m\",version=\"3\","
                              "reason=\"rejected_queue_full\"} 0"));
  EXPECT_THAT(text, HasSubstr("lathe_inference_count_total{model=\"m\",version=\"3\"} 5"));
  EXPECT_THAT(text, HasSubstr("lathe_inference_exec_count_total{model=\"m\",version=\"3\"} 2"));
  EXPECT_THAT(text,
              HasSubstr("lathe_inference_batch_size_bucket{model=\"m\",version=\"3\",le=\"2\"} 1"));
  EXPECT_THAT(text, HasSubstr("lathe_inference_batch_size_count{model=\"m\",version=\"3\"} 2"));
  EXPECT_THAT(
      text, HasSubstr("lathe_inference_queue_duration_seconds_count{model=\"m\",version=\"3\"} 2"));
  EXPECT_THAT(
      text,
      HasSubstr("lathe_inference_compute_duration_seconds_count{model=\"m\",version=\"3\"} 2"));
  EXPECT_THAT(
      text,
      HasSubstr("lathe_inference_request_duration_seconds_count{model=\"m\",version=\"3\"} 2"));
  EXPECT_THAT(text, HasSubstr("lathe_inference_inflight_requests{model=\"m\",version=\"3\"} 0"));
  EXPECT_THAT(text, HasSubstr("lathe_inference_queue_depth{model=\"m\",version=\"3\"} 0"));

  ModelStatistics s = b->Statistics();
  EXPECT_EQ(s.name, "m");
  EXPECT_EQ(s.version, "3");
  EXPECT_EQ(s.inference_count, 5u);
  EXPECT_EQ(s.execution_count, 2u);
  EXPECT_EQ(s.success.count, 2u);
  EXPECT_GT(s.success.ns, 0u);
  EXPECT_EQ(s.fail.count, 1u);
  EXPECT_EQ(s.queue.count, 2u);
  EXPECT_EQ(s.compute_infer.count, 2u);
  EXPECT_GT(s.last_inference_ms, 0);
}

}  // namespace
}  // namespace lathe::serving
