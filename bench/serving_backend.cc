// In-process inference speed of the example models (examples/models) through
// the backend plugins: one ModelInstance, Execute called back to back on one
// thread, no batcher, no protocol. This is the "in-process limit" the
// serving benchmark compares `lathe serve` against. Results in
// bench/serving_backend.md.
//
//   examples/models/make_repository.sh /tmp/models
//   build/src/serving/backends/serving_backend_bench --repository /tmp/models
//       [--plugins build/backends] [--seconds 3] [--threads 1] [--batches 1,64]
//
// Inputs are random (FP32 normal, INT64 uniform in [0, 1000)), made once per
// batch size. Prints a Markdown table: p50/p99 of one Execute, and
// throughput in samples (rows) per second.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "serving/backend.h"
#include "serving/model_config.h"

using namespace lathe;
using namespace lathe::serving;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<Tensor> RandomInputs(const ModelConfig& c, int64_t batch, std::mt19937_64& rng) {
  std::vector<Tensor> inputs;
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int64_t> ids(0, 999);
  for (const TensorConfig& t : c.inputs) {
    std::vector<int64_t> shape(t.dims);
    if (c.max_batch_size > 0) shape.insert(shape.begin(), batch);
    int64_t n = 1;
    for (int64_t& d : shape) n *= (d = d < 0 ? 1 : d);
    if (t.type == DataType::kInt64) {
      std::vector<int64_t> v(n);
      for (auto& x : v) x = ids(rng);
      inputs.push_back(MakeTensor<int64_t>(t.name, t.type, shape, v));
    } else {
      std::vector<float> v(n);
      for (auto& x : v) x = normal(rng);
      inputs.push_back(MakeTensor<float>(t.name, DataType::kFp32, shape, v));
    }
  }
  return inputs;
}

}  // namespace

int main(int argc, char** argv) {
  std::string repository, plugins = LATHE_BACKEND_DIR;
  double seconds = 3;
  int threads = 1;
  std::vector<int64_t> batches = {1, 64};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--repository")
      repository = value;
    else if (flag == "--plugins")
      plugins = value;
    else if (flag == "--seconds")
      seconds = std::atof(value.c_str());
    else if (flag == "--threads")
      threads = std::atoi(value.c_str());
    else if (flag == "--batches") {
      batches.clear();
      std::stringstream s(value);
      for (std::string b; std::getline(s, b, ',');) batches.push_back(std::atoll(b.c_str()));
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (repository.empty()) {
    std::fprintf(stderr,
                 "usage: %s --repository DIR [--plugins DIR] [--seconds S] "
                 "[--threads N] [--batches 1,64]\n",
                 argv[0]);
    return 2;
  }

  std::printf("| model | backend | batch | threads | p50 µs | p99 µs | samples/s |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|\n");
  std::mt19937_64 rng(42);
  for (const char* model : {"mlp", "dlrm", "fraud_xgb"}) {
    std::ifstream f(repository + "/" + model + "/config.yaml");
    if (!f) {
      std::fprintf(stderr, "%s: no config.yaml, skipped\n", model);
      continue;
    }
    std::stringstream text;
    text << f.rdbuf();
    StatusOr<ModelConfig> config = ParseModelConfig(text.str(), model);
    if (!config.ok()) {
      std::fprintf(stderr, "%s: %s\n", model, config.status().ToString().c_str());
      return 1;
    }
    config->instances.threads = threads;
    StatusOr<std::unique_ptr<ModelInstance>> instance = LoadModelInstance(
        *config, repository + "/" + model + "/1", 0, BackendOptions{.plugin_dir = plugins});
    if (!instance.ok()) {
      std::fprintf(stderr, "%s: %s\n", model, instance.status().ToString().c_str());
      return 1;
    }
    for (int64_t batch : batches) {
      const std::vector<Tensor> inputs = RandomInputs(*config, batch, rng);
      auto run = [&] {
        StatusOr<std::vector<Tensor>> out = (*instance)->Execute(inputs, {});
        if (!out.ok()) {
          std::fprintf(stderr, "%s: %s\n", model, out.status().ToString().c_str());
          std::exit(1);
        }
      };
      for (auto end = Clock::now() + std::chrono::milliseconds(300); Clock::now() < end;) run();
      std::vector<double> us;
      const auto start = Clock::now();
      const auto end = start + std::chrono::duration<double>(seconds);
      for (auto t = start; t < end;) {
        run();
        const auto now = Clock::now();
        us.push_back(std::chrono::duration<double, std::micro>(now - t).count());
        t = now;
      }
      const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      std::sort(us.begin(), us.end());
      std::printf("| %s | %s | %lld | %d | %.1f | %.1f | %.0f |\n", model,
                  std::string(BackendName(config->backend)).c_str(), static_cast<long long>(batch),
                  threads, us[us.size() / 2], us[std::min(us.size() - 1, us.size() * 99 / 100)],
                  static_cast<double>(batch) * us.size() / elapsed);
      std::fflush(stdout);
    }
  }
  return 0;
}
