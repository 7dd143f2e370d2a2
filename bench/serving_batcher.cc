// The dynamic batcher against calling the model directly (results in
// serving_batcher.md).
//
//   serving_batcher_bench [--seconds S] [--clients N] [--instances I]
//                         [--batch-cost-us B] [--row-cost-us R] [--delay-us D]
//                         [--max-batch M] [--overhead-requests K]
//
// 1. Throughput. A fake model that burns B µs per Execute plus R µs per row
//    (spinning, like a CPU model). In process: I threads call Execute with
//    full batches of M rows back to back. Batched: N client threads, each
//    submitting one-row requests in a closed loop (submit, wait for the
//    answer, repeat) through a DynamicBatcher with I instances, max batch M
//    and queue delay D. Reported: rows/s of each and their ratio.
// 2. Overhead at low load. One client, one-row requests, a model that costs
//    nothing: p50/p99 of Submit → answer against a direct Execute call.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "serving/batcher.h"
#include "serving/fake_instance.h"

namespace lathe::serving {
namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  double seconds = 3;
  int clients = 64;
  int instances = 1;
  int64_t batch_cost_us = 500;
  int64_t row_cost_us = 10;
  int64_t delay_us = 2000;
  int64_t max_batch = 64;
  int overhead_requests = 20000;
};

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--seconds")
      a.seconds = std::atof(v);
    else if (k == "--clients")
      a.clients = std::atoi(v);
    else if (k == "--instances")
      a.instances = std::atoi(v);
    else if (k == "--batch-cost-us")
      a.batch_cost_us = std::atoll(v);
    else if (k == "--row-cost-us")
      a.row_cost_us = std::atoll(v);
    else if (k == "--delay-us")
      a.delay_us = std::atoll(v);
    else if (k == "--max-batch")
      a.max_batch = std::atoll(v);
    else if (k == "--overhead-requests")
      a.overhead_requests = std::atoi(v);
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      std::exit(2);
    }
  }
  return a;
}

std::shared_ptr<const ModelConfig> Config(const Args& a) {
  std::string yaml = fmt::format(R"(
name: bench
backend: torchscript
max_batch_size: {}
inputs: [{{name: x, datatype: FP32, dims: [16]}}]
outputs: [{{name: y, datatype: FP32, dims: [16]}}]
dynamic_batching: {{max_queue_delay_us: {}}}
instances: {{count: {}}}
)",
                                 a.max_batch, a.delay_us, a.instances);
  StatusOr<ModelConfig> c = ParseModelConfig(yaml, "bench");
  if (!c.ok()) {
    std::fprintf(stderr, "%s\n", c.status().ToString().c_str());
    std::exit(1);
  }
  return std::make_shared<const ModelConfig>(*c);
}

InferRequest OneRow() {
  InferRequest r;
  r.inputs.push_back(MakeTensor("x", DataType::kFp32, {1, 16}, std::vector<float>(16, 1.0f)));
  r.outputs.push_back({"y", std::nullopt});
  return r;
}

std::shared_ptr<testing::FakeState> CostState(const Args& a) {
  auto s = std::make_shared<testing::FakeState>();
  s->sleep_us = a.batch_cost_us;
  s->per_row_us = a.row_cost_us;
  s->spin = true;
  return s;
}

// Rows per second of I threads calling Execute with full batches.
double InProcessThroughput(const Args& a) {
  auto state = CostState(a);
  std::vector<Tensor> batch = {
      MakeTensor("x", DataType::kFp32, {a.max_batch, 16},
                 std::vector<float>(static_cast<size_t>(a.max_batch * 16), 1.0f))};
  std::atomic<int64_t> rows{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < a.instances; ++i) {
    threads.emplace_back([&] {
      testing::FakeInstance inst(state);
      while (!stop.load(std::memory_order_relaxed)) {
        if (!inst.Execute(batch, {"y"}).ok()) std::abort();
        rows.fetch_add(a.max_batch, std::memory_order_relaxed);
      }
    });
  }
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(a.seconds));
  stop = true;
  for (std::thread& t : threads) t.join();
  return static_cast<double>(rows.load()) /
         std::chrono::duration<double>(Clock::now() - start).count();
}

struct BatchedResult {
  double rows_per_s;
  double mean_batch;
  double p50_us, p99_us;
};

BatchedResult BatchedThroughput(const Args& a) {
  auto state = CostState(a);
  std::vector<std::unique_ptr<ModelInstance>> instances;
  for (int i = 0; i < a.instances; ++i) {
    instances.push_back(std::make_unique<testing::FakeInstance>(state));
  }
  MetricsRegistry registry;
  ServingMetrics metrics(registry);
  DynamicBatcher batcher(Config(a), 1, std::move(instances), BatcherOptions{.metrics = &metrics});
  std::atomic<bool> stop{false};
  std::atomic<int64_t> answered{0};
  std::vector<std::vector<double>> latencies(static_cast<size_t>(a.clients));
  std::vector<std::thread> clients;
  for (int c = 0; c < a.clients; ++c) {
    clients.emplace_back([&, c] {
      std::atomic<int> flag{0};
      std::vector<double>& lat = latencies[static_cast<size_t>(c)];
      while (!stop.load(std::memory_order_relaxed)) {
        flag.store(0, std::memory_order_relaxed);
        const auto t0 = Clock::now();
        batcher.Submit(OneRow(), [&flag](StatusOr<InferResponse> r) {
          if (!r.ok()) std::abort();
          flag.store(1, std::memory_order_release);
          flag.notify_one();
        });
        flag.wait(0, std::memory_order_acquire);
        lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        answered.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  // Warm up for a tenth of the run, then measure.
  std::this_thread::sleep_for(std::chrono::duration<double>(a.seconds / 10));
  const int64_t before = answered.load();
  const ModelStatistics s0 = batcher.Statistics();
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(a.seconds));
  const int64_t after = answered.load();
  const ModelStatistics s1 = batcher.Statistics();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  for (std::thread& t : clients) t.join();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  BatchedResult r;
  r.rows_per_s = static_cast<double>(after - before) / elapsed;
  r.mean_batch =
      static_cast<double>(s1.inference_count - s0.inference_count) /
      static_cast<double>(std::max<uint64_t>(s1.execution_count - s0.execution_count, 1));
  r.p50_us = all.empty() ? 0 : all[all.size() / 2];
  r.p99_us = all.empty() ? 0 : all[all.size() * 99 / 100];
  return r;
}

struct Percentiles {
  double p50, p99;
};

Percentiles Summarise(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[v.size() * 99 / 100]};
}

// Submit → answer for one client against Execute, with a free model.
void Overhead(const Args& a) {
  auto state = std::make_shared<testing::FakeState>();
  Args z = a;
  z.instances = 1;
  z.delay_us = 0;
  std::vector<std::unique_ptr<ModelInstance>> instances;
  instances.push_back(std::make_unique<testing::FakeInstance>(state));
  MetricsRegistry registry;
  ServingMetrics metrics(registry);
  DynamicBatcher batcher(Config(z), 1, std::move(instances), BatcherOptions{.metrics = &metrics});
  testing::FakeInstance direct(state);

  std::vector<double> via, call;
  via.reserve(static_cast<size_t>(a.overhead_requests));
  call.reserve(static_cast<size_t>(a.overhead_requests));
  std::atomic<int> flag{0};
  for (int i = 0; i < a.overhead_requests; ++i) {
    // The in-process call gets the same request building as the batcher.
    auto t0 = Clock::now();
    InferRequest r = OneRow();
    if (!direct.Execute(r.inputs, {"y"}).ok()) std::abort();
    call.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());

    flag.store(0);
    t0 = Clock::now();
    batcher.Submit(OneRow(), [&flag](StatusOr<InferResponse> r) {
      if (!r.ok()) std::abort();
      flag.store(1, std::memory_order_release);
      flag.notify_one();
    });
    flag.wait(0, std::memory_order_acquire);
    via.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    // Low load: let the worker go back to sleep, as between real requests.
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  Percentiles v = Summarise(via), c = Summarise(call);
  std::printf("overhead  one client, free model, %d requests\n", a.overhead_requests);
  std::printf("  in-process Execute   p50 %7.1f us  p99 %7.1f us\n", c.p50, c.p99);
  std::printf("  through the batcher  p50 %7.1f us  p99 %7.1f us\n", v.p50, v.p99);
  std::printf("  overhead             p50 %7.1f us\n", v.p50 - c.p50);
}

}  // namespace
}  // namespace lathe::serving

int main(int argc, char** argv) {
  using namespace lathe::serving;
  const Args a = Parse(argc, argv);
  std::printf(
      "model: %lld us per batch + %lld us per row (spinning), max batch %lld, "
      "%d instance(s); batcher delay %lld us; %d clients; %.1f s per phase; %u cpus\n",
      static_cast<long long>(a.batch_cost_us), static_cast<long long>(a.row_cost_us),
      static_cast<long long>(a.max_batch), a.instances, static_cast<long long>(a.delay_us),
      a.clients, a.seconds, std::thread::hardware_concurrency());
  const double direct = InProcessThroughput(a);
  const BatchedResult batched = BatchedThroughput(a);
  std::printf("throughput\n");
  std::printf("  in-process, full batches  %10.0f rows/s\n", direct);
  std::printf(
      "  batcher, %d clients       %10.0f rows/s  (%.1f %%; mean batch %.1f; "
      "latency p50 %.0f us p99 %.0f us)\n",
      a.clients, batched.rows_per_s, 100 * batched.rows_per_s / direct, batched.mean_batch,
      batched.p50_us, batched.p99_us);
  Overhead(a);
  return 0;
}
