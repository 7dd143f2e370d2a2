// Open-loop REST load generator for `lathe serve` (KServe V2 infer, JSON or
// binary tensors). Results in bench/serving.md; driven by bench/serving/run.sh.
//
//   serving_loadgen --url http://127.0.0.1:8000 --model mlp [--mode json|binary]
//       [--rate 200] [--duration 5] [--connections 4] [--rows 1]
//       [--timeout-us 0] [--warmup 1]
//
// Arrivals are Poisson at --rate per second in total, split evenly over
// --connections keep-alive connections, each with its own schedule and
// thread. Latency runs from a request's SCHEDULED send time to its answer:
// when the server (or this client) falls behind, the requests that should
// have gone meanwhile are charged for the wait (no coordinated omission).
// Inputs come from the model's V2 metadata: FP32 normal, INT64 uniform in
// [0, 1000), one body made once (rows × the model's dims, -1 dims as 1).
// --timeout-us adds the V2 `timeout` parameter (the request's deadline).
//
// Prints one JSON line: offered and achieved rate, answered requests by
// status (0 = transport error), requests still unsent when the run ended (the
// client was behind: the offered rate was not delivered), latency
// percentiles of the 200s (ms), and the p99 of everything answered.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "base/json.h"
#include "http/client.h"
#include "serving/protocols/v2_codec.h"
#include "serving/tensor.h"

using namespace lathe;
using namespace lathe::serving;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string url = "http://127.0.0.1:8000";
  std::string model;
  std::string mode = "json";
  double rate = 200;
  double duration = 5;
  int connections = 4;
  int64_t rows = 1;
  int64_t timeout_us = 0;
  double warmup = 1;
};

struct Body {
  std::string bytes;
  http::Headers headers;
};

StatusOr<Body> MakeBody(const Options& o) {
  ASSIGN_OR_RETURN(auto client, http::Client::Make(o.url, 10'000));
  ASSIGN_OR_RETURN(http::ClientResponse meta,
                   client->Do(http::Method::kGet, "/v2/models/" + o.model));
  if (meta.status != 200)
    return NotFoundError(fmt::format("metadata: {} {}", meta.status, meta.body));
  ASSIGN_OR_RETURN(JsonValue m, ParseJson(meta.body));
  InferRequest req;
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int64_t> ids(0, 999);
  std::vector<std::string> names;
  for (const JsonValue& in : m.Find("inputs")->items()) {
    std::vector<int64_t> shape;
    bool first = true;
    for (const JsonValue& d : in.Find("shape")->items()) {
      shape.push_back(d.as_int() >= 0 ? d.as_int() : (first ? o.rows : 1));
      first = false;
    }
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    const std::string& name = in.Find("name")->as_string();
    const std::string& type = in.Find("datatype")->as_string();
    if (type == "INT64") {
      std::vector<int64_t> v(n);
      for (auto& x : v) x = ids(rng);
      req.inputs.push_back(MakeTensor<int64_t>(name, DataType::kInt64, shape, v));
    } else if (type == "FP32") {
      std::vector<float> v(n);
      for (auto& x : v) x = normal(rng);
      req.inputs.push_back(MakeTensor<float>(name, DataType::kFp32, shape, v));
    } else {
      return InvalidArgumentError("loadgen makes FP32 and INT64 inputs only, not " + type);
    }
    names.push_back(name);
  }
  req.timeout_us = o.timeout_us;
  const bool binary = o.mode == "binary";
  req.binary_data_output = binary;
  ASSIGN_OR_RETURN(V2EncodedResponse enc,
                   EncodeV2Request(req, binary ? names : std::vector<std::string>{}));
  Body b{std::move(enc.body), {}};
  if (enc.header_length) {
    b.headers.emplace_back("Inference-Header-Content-Length", std::to_string(*enc.header_length));
    b.headers.emplace_back("Content-Type", "application/octet-stream");
  }
  return b;
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t i =
      std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(i), v.end());
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], v = argv[i + 1];
    if (flag == "--url")
      o.url = v;
    else if (flag == "--model")
      o.model = v;
    else if (flag == "--mode")
      o.mode = v;
    else if (flag == "--rate")
      o.rate = std::atof(v.c_str());
    else if (flag == "--duration")
      o.duration = std::atof(v.c_str());
    else if (flag == "--connections")
      o.connections = std::atoi(v.c_str());
    else if (flag == "--rows")
      o.rows = std::atoll(v.c_str());
    else if (flag == "--timeout-us")
      o.timeout_us = std::atoll(v.c_str());
    else if (flag == "--warmup")
      o.warmup = std::atof(v.c_str());
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (o.model.empty() || (o.mode != "json" && o.mode != "binary") || o.rate <= 0 ||
      o.connections < 1 || o.duration <= 0 || o.duration > 600) {
    std::fprintf(stderr,
                 "usage: %s --model M [--url U] [--mode json|binary] [--rate R] [--duration S "
                 "(<= 600)] [--connections N] [--rows K] [--timeout-us T] [--warmup S]\n",
                 argv[0]);
    return 2;
  }
  StatusOr<Body> body = MakeBody(o);
  if (!body.ok()) {
    std::fprintf(stderr, "loadgen: %s\n", body.status().ToString().c_str());
    return 1;
  }
  const std::string path = "/v2/models/" + o.model + "/infer";

  std::mutex mu;
  std::vector<double> ok_ms, all_ms;  // guarded by mu
  std::map<int, int64_t> by_status;   // guarded by mu; 0 = transport error
  int64_t answered_in_window = 0;     // guarded by mu
  int64_t unsent = 0;                 // guarded by mu
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  const auto measure_from =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
  const auto end = measure_from + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(o.duration));
  std::vector<std::thread> threads;
  for (int c = 0; c < o.connections; ++c) {
    threads.emplace_back([&, c] {
      auto client = http::Client::Make(o.url, 30'000);
      if (!client.ok()) return;
      std::mt19937_64 rng(1000 + c);
      std::exponential_distribution<double> gap(o.rate / o.connections);
      std::vector<double> my_ok, my_all;
      std::map<int, int64_t> my_status;
      int64_t my_answered = 0;
      auto next = start + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(gap(rng)));
      int64_t my_unsent = 0;
      while (next < end) {
        if (Clock::now() >= end) {
          // Behind at the end of the run: what is still scheduled is counted
          // as unsent rather than sent late, so a run never outlasts --duration
          // by more than the requests in flight.
          ++my_unsent;
          next +=
              std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap(rng)));
          continue;
        }
        std::this_thread::sleep_until(next);
        StatusOr<http::ClientResponse> r =
            (*client)->Do(http::Method::kPost, path, body->headers, body->bytes);
        const auto now = Clock::now();
        if (next >= measure_from) {
          const double ms = std::chrono::duration<double, std::milli>(now - next).count();
          const int status = r.ok() ? r->status : 0;
          ++my_status[status];
          my_all.push_back(ms);
          if (status == 200) my_ok.push_back(ms);
          if (now <= end) ++my_answered;
        }
        next +=
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap(rng)));
      }
      std::lock_guard<std::mutex> lock(mu);
      ok_ms.insert(ok_ms.end(), my_ok.begin(), my_ok.end());
      all_ms.insert(all_ms.end(), my_all.begin(), my_all.end());
      for (auto [s, n] : my_status) by_status[s] += n;
      answered_in_window += my_answered;
      unsent += my_unsent;
    });
  }
  for (auto& t : threads) t.join();

  int64_t total = 0;
  std::string statuses;
  for (auto [s, n] : by_status) {
    total += n;
    statuses += fmt::format("{}\"{}\":{}", statuses.empty() ? "" : ",", s, n);
  }
  const double ok_max = ok_ms.empty() ? 0 : *std::max_element(ok_ms.begin(), ok_ms.end());
  std::printf(
      "{\"model\":\"%s\",\"mode\":\"%s\",\"connections\":%d,\"rows\":%lld,\"offered_rps\":%.1f,"
      "\"achieved_rps\":%.1f,\"requests\":%lld,\"unsent\":%lld,\"status\":{%s},\"ok_share\":%.4f,"
      "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"all_p99_ms\":%.3f}\n",
      o.model.c_str(), o.mode.c_str(), o.connections, static_cast<long long>(o.rows), o.rate,
      static_cast<double>(answered_in_window) / o.duration, static_cast<long long>(total),
      static_cast<long long>(unsent), statuses.c_str(),
      total > 0 ? static_cast<double>(ok_ms.size()) / static_cast<double>(total) : 0.0,
      Percentile(ok_ms, 50), Percentile(ok_ms, 90), Percentile(ok_ms, 99), ok_max,
      Percentile(all_ms, 99));
  return 0;
}
