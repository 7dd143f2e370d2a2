// Open-loop load generator for the KServe V2 gRPC front end.
//
// Sends ModelInfer calls at a fixed rate whatever the answers do (open loop:
// a slow server does not slow the sender down, so queueing shows up in the
// latencies instead of hiding as a lower offered rate), over N HTTP/2
// connections, with the callback client API. A call's latency is measured
// from its *scheduled* send time, not from when it was actually sent, so a
// sender that falls behind is charged to the latency (no coordinated
// omission). At most --max-outstanding calls are in flight; a send that
// would exceed it is counted as skipped.
//
//   serving_grpc_loadgen --target 127.0.0.1:8001 --model mlp --input x
//                        --dims 256 --rate 2000 --duration 10
//   serving_grpc_loadgen --self --rate 5000 --duration 5  (in-process
//                        server, fake model)
//
// --self starts a GrpcFrontend in this process over a ModelManager whose
// model "fake" (x FP32 [b, dims] -> y, z) is testing::FakeInstance with a
// configurable cost; the server and the client then share the machine's
// cores. Results: bench/serving.md.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <grpcpp/grpcpp.h>

#include "base/metrics.h"
#include "serving/fake_instance.h"
#include "serving/grpc_frontend.h"
#include "serving/model_manager.h"
#include "serving/protocols/grpc_codec.h"
#include "serving/protocols/grpc_predict_v2.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
using lathe::serving::DataType;

struct Options {
  std::string target;
  bool self = false;
  std::string model = "fake";
  std::string input = "x";
  std::string datatype = "FP32";
  int64_t dims = 16;
  int64_t rows = 1;
  double rate = 1000;
  double duration_s = 5;
  int connections = 4;
  int64_t max_outstanding = 20000;
  std::string token;
  // --self only.
  int64_t self_cost_us = 100;
  int64_t self_per_row_us = 2;
  int64_t self_max_batch = 64;
  int64_t self_delay_us = 200;
  int64_t self_instances = 2;
};

[[noreturn]] void Usage(const char* error) {
  std::fprintf(stderr,
               "error: %s\nusage: grpc_loadgen (--target HOST:PORT | --self) [--model M] "
               "[--input NAME] [--datatype FP32|INT64|...] [--dims D] [--rows R] [--rate N/s] "
               "[--duration S] [--connections C] [--max-outstanding K] [--token T] "
               "[--self-cost-us U] [--self-per-row-us U] [--self-max-batch B] "
               "[--self-delay-us U] [--self-instances I]\n",
               error);
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--target") o.target = next();
    else if (a == "--self") o.self = true;
    else if (a == "--model") o.model = next();
    else if (a == "--input") o.input = next();
    else if (a == "--datatype") o.datatype = next();
    else if (a == "--dims") o.dims = std::stoll(next());
    else if (a == "--rows") o.rows = std::stoll(next());
    else if (a == "--rate") o.rate = std::stod(next());
    else if (a == "--duration") o.duration_s = std::stod(next());
    else if (a == "--connections") o.connections = std::stoi(next());
    else if (a == "--max-outstanding") o.max_outstanding = std::stoll(next());
    else if (a == "--token") o.token = next();
    else if (a == "--self-cost-us") o.self_cost_us = std::stoll(next());
    else if (a == "--self-per-row-us") o.self_per_row_us = std::stoll(next());
    else if (a == "--self-max-batch") o.self_max_batch = std::stoll(next());
    else if (a == "--self-delay-us") o.self_delay_us = std::stoll(next());
    else if (a == "--self-instances") o.self_instances = std::stoll(next());
    else Usage(("unknown flag " + a).c_str());
  }
  if (o.self == !o.target.empty()) Usage("give exactly one of --target and --self");
  if (o.rate <= 0 || o.duration_s <= 0 || o.dims <= 0 || o.rows <= 0 || o.connections <= 0) {
    Usage("--rate, --duration, --dims, --rows and --connections must be positive");
  }
  return o;
}

// The in-process server of --self.
struct SelfServer {
  std::string repo;
  lathe::MetricsRegistry registry;
  std::unique_ptr<lathe::serving::ServingMetrics> metrics;
  std::mutex mu;
  std::vector<std::shared_ptr<lathe::serving::testing::FakeState>> states;
  std::unique_ptr<lathe::serving::ModelManager> manager;
  std::unique_ptr<lathe::serving::GrpcFrontend> frontend;

  ~SelfServer() {
    frontend.reset();
    manager.reset();
    std::error_code ec;
    if (!repo.empty()) std::filesystem::remove_all(repo, ec);
  }

  std::string Start(const Options& o) {
    repo = (std::filesystem::temp_directory_path() / "lathe-loadgen-XXXXXX").string();
    if (::mkdtemp(repo.data()) == nullptr) Usage("cannot create a temporary repository");
    std::filesystem::create_directories(repo + "/fake/1");
    std::ofstream(repo + "/fake/1/model.txt") << "fake";
    std::ofstream(repo + "/fake/config.yaml") << fmt::format(
        "backend: torchscript\nmax_batch_size: {}\n"
        "inputs: [{{name: x, datatype: FP32, dims: [{}]}}]\n"
        "outputs: [{{name: y, datatype: FP32, dims: [{}]}}, {{name: z, datatype: FP32, dims: "
        "[{}]}}]\n"
        "dynamic_batching: {{max_queue_delay_us: {}}}\ninstances: {{count: {}}}\n",
        o.self_max_batch, o.dims, o.dims, o.dims, o.self_delay_us, o.self_instances);
    metrics = std::make_unique<lathe::serving::ServingMetrics>(registry);
    lathe::serving::ModelManagerOptions mo;
    mo.repository = repo;
    mo.metrics = metrics.get();
    mo.loader = [this, &o](const lathe::serving::ModelConfig&, const std::string&, int)
        -> lathe::StatusOr<std::unique_ptr<lathe::serving::ModelInstance>> {
      auto state = std::make_shared<lathe::serving::testing::FakeState>();
      state->sleep_us = o.self_cost_us;
      state->per_row_us = o.self_per_row_us;
      std::lock_guard<std::mutex> lock(mu);
      states.push_back(state);
      return std::unique_ptr<lathe::serving::ModelInstance>(
          new lathe::serving::testing::FakeInstance(state));
    };
    auto m = lathe::serving::ModelManager::Create(std::move(mo));
    if (!m.ok()) Usage(m.status().ToString().c_str());
    manager = *std::move(m);
    lathe::serving::GrpcFrontendOptions fo;
    fo.address = "127.0.0.1:0";
    auto f = lathe::serving::GrpcFrontend::Start(*manager, fo);
    if (!f.ok()) Usage(f.status().ToString().c_str());
    frontend = *std::move(f);
    return "127.0.0.1:" + std::to_string(frontend->port());
  }

  double MeanBatch() {
    std::lock_guard<std::mutex> lock(mu);
    int64_t rows = 0, batches = 0;
    for (auto& s : states) {
      for (int64_t b : s->batch_sizes()) {
        rows += b;
        ++batches;
      }
    }
    return batches == 0 ? 0 : static_cast<double>(rows) / static_cast<double>(batches);
  }
};

inference::ModelInferRequest BuildRequest(const Options& o) {
  std::optional<DataType> type = lathe::serving::ParseDataType(o.datatype);
  if (!type || *type == DataType::kBytes) Usage("--datatype: a fixed-size V2 datatype");
  const size_t n = static_cast<size_t>(o.rows * o.dims);
  std::string bytes(n * lathe::serving::DataTypeSize(*type), '\0');
  std::mt19937 rng(1);
  if (*type == DataType::kFp32) {
    std::uniform_real_distribution<float> u(-1, 1);
    for (size_t i = 0; i < n; ++i) {
      float v = u(rng);
      std::memcpy(bytes.data() + i * sizeof v, &v, sizeof v);
    }
  }
  inference::ModelInferRequest req;
  req.set_model_name(o.model);
  auto* in = req.add_inputs();
  in->set_name(o.input);
  in->set_datatype(o.datatype);
  in->add_shape(o.rows);
  in->add_shape(o.dims);
  req.add_raw_input_contents(std::move(bytes));
  return req;
}

struct CallState {
  grpc::ClientContext ctx;
  inference::ModelInferResponse res;
  Clock::time_point scheduled;
};

struct Results {
  std::mutex mu;
  std::vector<int64_t> latencies_us;          // guarded by mu; successful calls
  std::map<std::string, int64_t> errors;      // guarded by mu; by code and message head
  std::atomic<int64_t> outstanding{0};
  std::atomic<int64_t> completed{0};
};

int64_t Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  Options o = Parse(argc, argv);
  SelfServer self;
  std::string target = o.self ? self.Start(o) : o.target;
  if (o.self) o.model = "fake", o.input = "x", o.datatype = "FP32";

  const inference::ModelInferRequest request = BuildRequest(o);
  std::vector<std::unique_ptr<inference::GRPCInferenceService::Stub>> stubs;
  for (int i = 0; i < o.connections; ++i) {
    grpc::ChannelArguments args;
    // One connection per channel: without a channel-local subchannel pool,
    // channels to the same target share one connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(64 << 20);
    auto channel =
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
      std::fprintf(stderr, "cannot connect to %s\n", target.c_str());
      return 1;
    }
    stubs.push_back(inference::GRPCInferenceService::NewStub(channel));
  }

  Results results;
  const int64_t total = static_cast<int64_t>(o.rate * o.duration_s);
  results.latencies_us.reserve(static_cast<size_t>(total));
  const auto interval = std::chrono::duration<double>(1.0 / o.rate);
  int64_t skipped = 0;
  const Clock::time_point t0 = Clock::now() + std::chrono::milliseconds(10);
  for (int64_t i = 0; i < total; ++i) {
    const Clock::time_point when =
        t0 + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(i));
    std::this_thread::sleep_until(when);
    if (results.outstanding.load() >= o.max_outstanding) {
      ++skipped;
      continue;
    }
    results.outstanding.fetch_add(1);
    auto* call = new CallState();
    call->scheduled = when;
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (!o.token.empty()) call->ctx.AddMetadata("authorization", "Bearer " + o.token);
    stubs[static_cast<size_t>(i) % stubs.size()]->async()->ModelInfer(
        &call->ctx, &request, &call->res, [call, &results](grpc::Status s) {
          const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(
                                 Clock::now() - call->scheduled)
                                 .count();
          {
            std::lock_guard<std::mutex> lock(results.mu);
            if (s.ok()) {
              results.latencies_us.push_back(us);
            } else {
              ++results.errors[fmt::format("{}: {}", static_cast<int>(s.error_code()),
                                           s.error_message().substr(0, 80))];
            }
          }
          delete call;
          results.completed.fetch_add(1);
          results.outstanding.fetch_sub(1);
        });
  }
  const Clock::time_point sent_end = Clock::now();
  while (results.outstanding.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const Clock::time_point end = Clock::now();

  std::lock_guard<std::mutex> lock(results.mu);
  std::vector<int64_t>& l = results.latencies_us;
  std::sort(l.begin(), l.end());
  const double secs = std::chrono::duration<double>(end - t0).count();
  const double send_secs = std::chrono::duration<double>(sent_end - t0).count();
  int64_t errors = 0;
  for (auto& [k, n] : results.errors) errors += n;
  std::printf(
      "target %s model %s rows %lld dims %lld connections %d\n"
      "offered %.0f/s for %.1f s (sent over %.2f s): %lld ok, %lld errors, %lld skipped; "
      "%.0f ok/s\n"
      "latency us (from scheduled send): p50 %lld  p90 %lld  p99 %lld  p99.9 %lld  max %lld\n",
      target.c_str(), o.model.c_str(), static_cast<long long>(o.rows),
      static_cast<long long>(o.dims), o.connections, o.rate, o.duration_s, send_secs,
      static_cast<long long>(l.size()), static_cast<long long>(errors),
      static_cast<long long>(skipped), static_cast<double>(l.size()) / secs,
      static_cast<long long>(Percentile(l, 0.5)), static_cast<long long>(Percentile(l, 0.9)),
      static_cast<long long>(Percentile(l, 0.99)), static_cast<long long>(Percentile(l, 0.999)),
      static_cast<long long>(l.empty() ? 0 : l.back()));
  for (auto& [k, n] : results.errors) std::printf("  error x%lld: %s\n", static_cast<long long>(n), k.c_str());
  if (o.self) std::printf("server mean batch size %.1f rows\n", self.MeanBatch());
  return 0;
}
