// Batched metric ingest over HTTP with C++ clients (issue 5), for when the
// Python clients of tracking_http.py are the bottleneck (they are on 2
// cores: building and sending 1,000-point bodies costs them more CPU than
// the server spends storing them).
//
//   tracking_load URL TOKEN [clients=10] [requests=200] [points=1000] [api]
//
// api: native (POST …/runs/{id}/log), mlflow (runs/log-batch), or
// log-metric: MLflow runs/log-metric with one point per request, sent one
// at a time, for the synchronous-call latency without Python's overhead.
//
// Each client thread creates its own run in project "default" (which must
// exist), builds its `requests` bodies of `points` points (10 keys × points/10
// distinct steps, so no batch is a replay) before the clock starts, then
// sends them one after another over one keep-alive connection
// (lathe::http::Client). Prints points/s over the wall time from the first
// request to the last answer, and per-request latency percentiles. Any
// answer other than 200 aborts.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "http/client.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string Body(bool mlflow, const std::string& run_id, int req, int points) {
  if (points == 0) {  // one MLflow log-metric call
    return fmt::format(
        "{{\"run_uuid\":\"{0}\",\"key\":\"x\",\"value\":{1},\"timestamp\":{2},\"step\":{1},"
        "\"run_id\":\"{0}\"}}",
        run_id, req, 1795392659886 + req);
  }
  const int steps = points / 10;
  const long base = static_cast<long>(req) * steps;
  std::string out = mlflow ? fmt::format("{{\"run_id\":\"{}\",\"metrics\":[", run_id)
                           : std::string("{\"metrics\":[");
  for (int s = 0; s < steps; ++s) {
    for (int k = 0; k < 10; ++k) {
      if (s || k) out += ',';
      out += fmt::format("{{\"key\":\"k{}\",\"value\":{},\"step\":{},\"timestamp\":{}}}", k,
                         (base + s) * 0.001 + k, base + s, 1795392659886 + base + s);
    }
  }
  out += "]}";
  return out;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "tracking_load: %s\n", what.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) Die("usage: tracking_load URL TOKEN [clients] [requests] [points] [native|mlflow]");
  const std::string url = argv[1], token = argv[2];
  const int clients = argc > 3 ? std::atoi(argv[3]) : 10;
  const int requests = argc > 4 ? std::atoi(argv[4]) : 200;
  const std::string api = argc > 6 ? argv[6] : "native";
  const bool single = api == "log-metric";
  const bool mlflow = api == "mlflow" || single;
  const int points = single ? 0 : (argc > 5 ? std::atoi(argv[5]) : 1000);
  const lathe::http::Headers headers = {{"Authorization", "Bearer " + token},
                                        {"Content-Type", "application/json"}};

  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::vector<double>> latencies(clients);
  std::vector<Clock::time_point> ends(clients);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto client = lathe::http::Client::Make(url, 120'000);
      if (!client.ok()) Die(client.status().ToString());
      auto run = (*client)->Do(lathe::http::Method::kPost, "/api/v1/projects/default/runs",
                               headers, R"({"experiment":"bench"})");
      if (!run.ok() || run->status != 201) Die("cannot create a run");
      const size_t at = run->body.find("\"run_id\":\"");
      const std::string run_id = run->body.substr(at + 10, 32);
      const std::string path = single   ? "/api/2.0/mlflow/runs/log-metric"
                               : mlflow ? "/api/2.0/mlflow/runs/log-batch"
                                      : "/api/v1/projects/default/runs/" + run_id + "/log";
      std::vector<std::string> bodies;
      for (int r = 0; r < requests; ++r) bodies.push_back(Body(mlflow, run_id, r, points));
      ++ready;
      while (!go.load()) std::this_thread::yield();
      for (const std::string& b : bodies) {
        const auto t0 = Clock::now();
        auto res = (*client)->Do(lathe::http::Method::kPost, path, headers, b);
        if (!res.ok()) Die(res.status().ToString());
        if (res->status != 200) Die(fmt::format("HTTP {}: {}", res->status, res->body.substr(0, 300)));
        latencies[c].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      ends[c] = Clock::now();
    });
  }
  while (ready.load() < clients) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto start = Clock::now();
  go = true;
  for (auto& t : threads) t.join();
  const auto end = *std::max_element(ends.begin(), ends.end());
  const double seconds = std::chrono::duration<double>(end - start).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double q) { return all[std::min(all.size() - 1, static_cast<size_t>(q * all.size()))]; };
  const double total = static_cast<double>(clients) * requests * std::max(points, 1);
  std::printf(
      "{\"clients\": %d, \"points_per_request\": %d, \"api\": \"%s\", \"points\": %.0f, "
      "\"seconds\": %.3f, \"points_per_s\": %.0f, \"request_p50_ms\": %.2f, "
      "\"request_p90_ms\": %.2f, \"request_p99_ms\": %.2f}\n",
      clients, std::max(points, 1), api.c_str(), total, seconds, total / seconds, pct(0.5),
      pct(0.9), pct(0.99));
  return 0;
}
