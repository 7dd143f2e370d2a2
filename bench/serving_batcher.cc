// The dynamic batcher against calling the model directly (results in
// serving_batcher.md).
//
//   serving_batcher_bench [--seconds S] [--clients N] [--instances I]
//                         [--batch-cost-us B] [--row-cost-us R] [--delay-us D]
//                         [--max-batch M] [--overhead-requests K] [--sleep 1]
//
// 1. Throughput. A fake model that burns B µs per Execute plus R µs per row
//    (spinning, like a CPU model; with --sleep 1 the cost is slept, like a
//    model on an accelerator that leaves the CPU free). In process: I
//    threads call Execute with full batches of M rows back to back.
//    Batched: N client threads, each submitting one-row requests in a closed
//    loop (submit, wait for the answer, repeat) through a DynamicBatcher with
//    I instances, max batch M and queue delay D. Reported: rows/s of each
//    and their ratio.
// 2. Overhead at low load. One client, one-row requests, a model that costs
//    nothing: p50/p99 of Submit → answer against a direct Execute call.
// 3. Overload. Open-loop one-row arrivals at 3× the in-process capacity, a
//    20 ms deadline and max_queue_size 4 × M: latency of what is answered,
//    share refused or expired, resident memory.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
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
  int64_t max_batch = 32;
  int overhead_requests = 20000;
  bool sleep = false;  // the model's cost is slept (an accelerator), not spun
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
    else if (k == "--sleep")
      a.sleep = std::atoi(v) != 0;
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
  s->spin = !a.sleep;
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
  double mean_execute_us;  // wall time of one Execute
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
  r.mean_execute_us =
      static_cast<double>(s1.compute_infer.ns - s0.compute_infer.ns) / 1e3 /
      static_cast<double>(std::max<uint64_t>(s1.compute_infer.count - s0.compute_infer.count, 1));
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

long ResidentKiB() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * 4;
}

// Open-loop arrivals at `factor` × the capacity measured above, with a
// deadline and a bounded queue: what is admitted and answered should stay
// within its deadline (plus at most one batch), the rest be refused or
// expire, and memory stay flat.
void Overload(const Args& a, double capacity_rows_per_s, double factor) {
  auto state = CostState(a);
  std::vector<std::unique_ptr<ModelInstance>> instances;
  for (int i = 0; i < a.instances; ++i) {
    instances.push_back(std::make_unique<testing::FakeInstance>(state));
  }
  const int64_t deadline_us = 20'000;
  const int64_t queue = 4 * a.max_batch;
  std::string yaml = fmt::format(R"(
name: bench
backend: torchscript
max_batch_size: {}
inputs: [{{name: x, datatype: FP32, dims: [16]}}]
outputs: [{{name: y, datatype: FP32, dims: [16]}}]
dynamic_batching: {{max_queue_delay_us: {}, max_queue_size: {}, default_timeout_us: {}}}
)",
                                 a.max_batch, a.delay_us, queue, deadline_us);
  auto config = std::make_shared<const ModelConfig>(*ParseModelConfig(yaml, "bench"));
  MetricsRegistry registry;
  ServingMetrics metrics(registry);
  auto batcher = std::make_unique<DynamicBatcher>(config, 1, std::move(instances),
                                                  BatcherOptions{.metrics = &metrics});
  struct Tally {
    std::mutex mu;
    std::vector<double> ok_us;
    int64_t full = 0, expired = 0, other = 0;
  } tally;
  const double rate = capacity_rows_per_s * factor;
  const long rss_before = ResidentKiB();
  long rss_peak = rss_before;
  std::atomic<int64_t> sent{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  // One generator: every ~200 µs it sends what the schedule owes (bursts of
  // a few dozen), so generating costs little CPU next to serving.
  {
    threads.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        const double now_s = std::chrono::duration<double>(Clock::now() - start).count();
        const int64_t owed = static_cast<int64_t>(now_s * rate) - sent.load();
        if (owed <= 0) {
          std::this_thread::sleep_for(std::chrono::microseconds(200));
          continue;
        }
        sent.fetch_add(1, std::memory_order_relaxed);
        const auto t0 = Clock::now();
        batcher->Submit(OneRow(), [&tally, t0](StatusOr<InferResponse> r) {
          const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
          std::lock_guard<std::mutex> lock(tally.mu);
          if (r.ok())
            tally.ok_us.push_back(us);
          else if (r.status().code() == StatusCode::kResourceExhausted)
            ++tally.full;
          else if (r.status().code() == StatusCode::kDeadlineExceeded)
            ++tally.expired;
          else
            ++tally.other;
        });
      }
    });
  }
  while (Clock::now() - start < std::chrono::duration<double>(a.seconds)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    rss_peak = std::max(rss_peak, ResidentKiB());
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  batcher->Drain();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(tally.ok_us.begin(), tally.ok_us.end());
  const double n = static_cast<double>(sent.load());
  auto pct = [&](double q) {
    return tally.ok_us.empty() ? 0.0
                               : tally.ok_us[static_cast<size_t>(q * (tally.ok_us.size() - 1))];
  };
  std::printf(
      "overload  %.1fx capacity (%.0f req/s offered, %.0f sent), deadline %lld us, "
      "max_queue_size %lld\n",
      factor, rate, n / elapsed, static_cast<long long>(deadline_us),
      static_cast<long long>(queue));
  std::printf("  answered OK %5.1f %% (%.0f/s)  p50 %.0f us  p99 %.0f us  max %.0f us\n",
              100 * static_cast<double>(tally.ok_us.size()) / n,
              static_cast<double>(tally.ok_us.size()) / elapsed, pct(0.5), pct(0.99), pct(1.0));
  std::printf("  queue full  %5.1f %%   expired %5.1f %%   other %lld\n",
              100 * static_cast<double>(tally.full) / n,
              100 * static_cast<double>(tally.expired) / n, static_cast<long long>(tally.other));
  std::printf("  resident memory %ld KiB before, %ld KiB peak\n", rss_before, rss_peak);
}

}  // namespace
}  // namespace lathe::serving

int main(int argc, char** argv) {
  using namespace lathe::serving;
  const Args a = Parse(argc, argv);
  std::printf(
      "model: %lld us per batch + %lld us per row (%s), max batch %lld, "
      "%d instance(s); batcher delay %lld us; %d clients; %.1f s per phase; %u cpus\n",
      static_cast<long long>(a.batch_cost_us), static_cast<long long>(a.row_cost_us),
      a.sleep ? "sleeping" : "spinning", static_cast<long long>(a.max_batch), a.instances,
      static_cast<long long>(a.delay_us), a.clients, a.seconds,
      std::thread::hardware_concurrency());
  const double direct = InProcessThroughput(a);
  const BatchedResult batched = BatchedThroughput(a);
  std::printf("throughput\n");
  std::printf("  in-process, full batches  %10.0f rows/s\n", direct);
  std::printf(
      "  batcher, %d clients       %10.0f rows/s  (%.1f %%; mean batch %.1f; "
      "latency p50 %.0f us p99 %.0f us)\n",
      a.clients, batched.rows_per_s, 100 * batched.rows_per_s / direct, batched.mean_batch,
      batched.p50_us, batched.p99_us);
  // Execute itself takes longer in the batched run when the box has no idle
  // core for the worker to wake on: that part is the machine, not the
  // batcher.
  std::printf("  mean Execute: in-process %.0f us, batched %.0f us\n",
              1e6 * static_cast<double>(a.max_batch) * a.instances / direct,
              batched.mean_execute_us);
  Overhead(a);
  Overload(a, direct, 3.0);
  return 0;
}
