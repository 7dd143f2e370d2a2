// The tracking service's four targets (issue 5), in process (no HTTP):
//
//   ingest   10 threads, each LogBatch of 1,000 points (10 keys x 100 steps)
//            to its own run, for --seconds; durable on return. >= 1,000,000 pts/s
//   single   one-metric LogBatch calls in a loop, one caller: p50 well under
//            0.5 ms (the HTTP target's budget)
//   search   SearchRuns over --runs runs (metrics acc, loss; a param; a tag)
//            with "metrics.acc > 0.5" ordered by "metrics.loss ASC":
//            first page < 50 ms
//   history  GetHistory of a --points-point metric with max_points=1000:
//            < 30 ms
//
//   tracking_bench [--store=URL] [--seconds=5] [--runs=100000] [--points=1000000]
//                  [--keys=10] [--only=ingest,single,search,history]
//                  [--synchronous=NORMAL]  (SQLite, not durable: CPU cost only)
//                  [--keep=1]              (keep the temp database)
//
// Default store: SQLite in a fresh temp directory (WAL, synchronous=FULL).
// The search runs are seeded with plain SQL in large transactions (the
// service path would take minutes of fsyncs and is not what is measured);
// the history metric is logged through LogBatch.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <cmath>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "store/migrations.h"
#include "store/sqlite/sqlite_store.h"
#include "store/store.h"
#include "tenancy/tenancy.h"
#include "tracking/tracking.h"

namespace lathe::tracking {
namespace {

using Clock_ = std::chrono::steady_clock;

double Ms(Clock_::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Stats {
  double p50, p90, p99, max, mean;
};
Stats Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]; };
  double sum = 0;
  for (double x : v) sum += x;
  return {at(0.5), at(0.9), at(0.99), v.back(), sum / v.size()};
}

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

std::string Flag(int argc, char** argv, const std::string& name, const std::string& def) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--" + name + "=", 0) == 0) return a.substr(name.size() + 3);
  }
  return def;
}

struct Env {
  std::unique_ptr<store::Store> store;
  std::unique_ptr<tenancy::TenancyService> tenancy;
  std::unique_ptr<TrackingService> svc;
  tenancy::Principal admin;
};

void Ingest(Env& env, double seconds, int keys) {
  constexpr int kThreads = 10, kPoints = 1000;
  const int steps = kPoints / keys;
  std::vector<std::string> runs;
  for (int t = 0; t < kThreads; ++t) {
    auto r = env.svc->CreateRun(env.admin, "bench", {.run_name = "ingest-" + std::to_string(t)});
    Check(r.status(), "create run");
    runs.push_back(r->info.run_id);
  }
  std::atomic<bool> stop{false};
  std::atomic<int64_t> points{0};
  std::vector<std::vector<double>> lat(kThreads);
  std::vector<std::thread> threads;
  auto start = Clock_::now();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      int64_t step = 0;
      int64_t ts = 1'700'000'000'000;
      std::vector<Metric> batch(kPoints);
      std::vector<std::string> names;
      for (int k = 0; k < keys; ++k) names.push_back("metric_" + std::to_string(k));
      while (!stop.load(std::memory_order_relaxed)) {
        for (int s = 0; s < steps; ++s) {
          for (int k = 0; k < keys; ++k) {
            Metric& m = batch[s * keys + k];
            m.key = names[k];
            m.value = 0.001 * step + k;
            m.timestamp = ts + step;
            m.step = step;
          }
          ++step;
        }
        auto t0 = Clock_::now();
        Check(env.svc->LogBatch(env.admin, "bench", runs[t], batch, {}, {}), "log batch");
        lat[t].push_back(Ms(Clock_::now() - t0));
        points.fetch_add(kPoints, std::memory_order_relaxed);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : threads) th.join();
  double secs = std::chrono::duration<double>(Clock_::now() - start).count();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  Stats s = Summarize(all);
  std::printf("ingest   10 threads x LogBatch(1000 = %d keys x %d steps): %lld points in %.2f s = "
              "%.0f points/s; per call p50 %.2f ms p90 %.2f ms p99 %.2f ms max %.2f ms (%zu calls)\n",
              keys, steps, static_cast<long long>(points.load()), secs, points.load() / secs, s.p50,
              s.p90, s.p99, s.max, all.size());
}

void Single(Env& env, int n) {
  auto r = env.svc->CreateRun(env.admin, "bench", {.run_name = "single"});
  Check(r.status(), "create run");
  std::vector<double> lat;
  for (int i = 0; i < n + 100; ++i) {
    auto t0 = Clock_::now();
    Check(env.svc->LogBatch(env.admin, "bench", r->info.run_id,
                            {{"loss", 1.0 / (i + 1), 1'700'000'000'000 + i, i}}, {}, {}),
          "log metric");
    if (i >= 100) lat.push_back(Ms(Clock_::now() - t0));
  }
  Stats s = Summarize(lat);
  std::printf("single   one-metric LogBatch, 1 caller, %d calls: p50 %.3f ms p90 %.3f ms p99 %.3f ms "
              "max %.3f ms\n",
              n, s.p50, s.p90, s.p99, s.max);
}

void Search(Env& env, int runs) {
  auto exp = env.svc->CreateExperiment(env.admin, "bench", "search", {});
  Check(exp.status(), "create experiment");
  auto proj = env.tenancy->GetProject(env.admin, "bench");
  Check(proj.status(), "project");
  auto seed0 = Clock_::now();
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0, 1);
  const int64_t exp_id = std::stoll(exp->id);
  for (int start = 0; start < runs; start += 10000) {
    Check(store::RunInTx(*env.store, store::TxMode::kWrite,
                         [&](store::Tx& tx) -> Status {
                           for (int i = start; i < std::min(runs, start + 10000); ++i) {
                             char id[33];
                             std::snprintf(id, sizeof(id), "%016llx%016llx",
                                           static_cast<unsigned long long>(rng()),
                                           static_cast<unsigned long long>(i));
                             std::string run_id = id;
                             int64_t t = 1'700'000'000'000 + i;
                             RETURN_IF_ERROR(tx.Exec("INSERT INTO tracking_runs (run_id, experiment_id, "
                                                     "project_id, run_name, user_id, status, start_time, "
                                                     "end_time, lifecycle, job_id, artifact_uri) VALUES "
                                                     "(?, ?, ?, ?, 'bench', 'FINISHED', ?, ?, 'active', "
                                                     "'', 'x')",
                                                     {run_id, exp_id, proj->id,
                                                      "run-" + std::to_string(i), t, t + 1000})
                                                 .status());
                             for (const char* key : {"acc", "loss"}) {
                               RETURN_IF_ERROR(tx.Exec("INSERT INTO run_metrics (run_id, key, value, "
                                                       "is_nan, timestamp, step, points, next_seq, "
                                                       "tail_blocks, tail_points) VALUES (?, ?, ?, 0, "
                                                       "?, 100, 100, 1, 1, 100)",
                                                       {run_id, std::string(key), u(rng), t})
                                                   .status());
                             }
                             RETURN_IF_ERROR(tx.Exec("INSERT INTO run_params (run_id, key, value) "
                                                     "VALUES (?, 'lr', ?)",
                                                     {run_id, "0.0" + std::to_string(i % 7)})
                                                 .status());
                             RETURN_IF_ERROR(tx.Exec("INSERT INTO run_tags (run_id, key, value) VALUES "
                                                     "(?, 'team', ?)",
                                                     {run_id, std::string(i % 2 ? "ads" : "search")})
                                                 .status());
                           }
                           return OkStatus();
                         }),
          "seed runs");
  }
  Check(env.store->ExecScript("ANALYZE"), "analyze");
  std::printf("search   seeded %d runs in %.1f s\n", runs, Ms(Clock_::now() - seed0) / 1000);
  struct Case {
    const char* filter;
    std::vector<std::string> order;
    int64_t n;
  };
  std::vector<Case> cases = {
      {"metrics.acc > 0.5", {"metrics.loss ASC"}, 100},
      {"metrics.acc > 0.5", {"metrics.loss ASC"}, 1000},
      {"metrics.acc > 0.9", {"metrics.acc DESC"}, 100},
      {"metrics.acc > 0.5 and params.lr = '0.03' and tags.team = 'ads'", {"attributes.start_time DESC"}, 100},
      {"", {}, 100},
      // Worst cases for the run-driven plan: selective filters, start_time order.
      {"metrics.acc > 0.9999", {}, 100},
      {"params.lr = 'none'", {}, 100},
  };
  for (const Case& c : cases) {
    std::vector<double> lat;
    size_t got = 0;
    for (int i = 0; i < 12; ++i) {
      RunSearch q{.experiment_ids = {exp->id}, .filter = c.filter, .order_by = c.order};
      q.page.max_results = c.n;
      auto t0 = Clock_::now();
      auto page = env.svc->SearchRuns(env.admin, "bench", q);
      Check(page.status(), "search");
      if (i >= 2) lat.push_back(Ms(Clock_::now() - t0));
      got = page->runs.size();
    }
    Stats s = Summarize(lat);
    std::printf("search   %d runs, filter \"%s\" order_by \"%s\", first page of %lld (%zu runs): "
                "p50 %.2f ms max %.2f ms\n",
                runs, c.filter, c.order.empty() ? "" : c.order[0].c_str(),
                static_cast<long long>(c.n), got, s.p50, s.max);
  }
}

void History(Env& env, int64_t points) {
  auto r = env.svc->CreateRun(env.admin, "bench", {.run_name = "history"});
  Check(r.status(), "create run");
  auto t0 = Clock_::now();
  std::vector<Metric> batch(1000);
  for (int64_t start = 0; start < points; start += 1000) {
    for (int i = 0; i < 1000; ++i) {
      int64_t s = start + i;
      batch[i] = Metric{"loss", std::sin(s / 1000.0) + (s % 9973 == 0 ? 5 : 0), 1'700'000'000'000 + s, s};
    }
    Check(env.svc->LogBatch(env.admin, "bench", r->info.run_id, batch, {}, {}), "log");
  }
  std::printf("history  logged %lld points (1,000 per LogBatch, one caller) in %.1f s\n",
              static_cast<long long>(points), Ms(Clock_::now() - t0) / 1000);
  for (int64_t max_points : {1000, 10000}) {
    std::vector<double> lat;
    size_t n = 0;
    for (int i = 0; i < 22; ++i) {
      auto t1 = Clock_::now();
      auto h = env.svc->GetHistory(env.admin, "bench",
                                   {.run_id = r->info.run_id, .key = "loss", .max_points = max_points});
      Check(h.status(), "history");
      if (i >= 2) lat.push_back(Ms(Clock_::now() - t1));
      n = h->points.size();
    }
    Stats s = Summarize(lat);
    std::printf("history  %lld-point metric, max_points=%lld (%zu points back): p50 %.2f ms max %.2f ms\n",
                static_cast<long long>(points), static_cast<long long>(max_points), n, s.p50, s.max);
  }
  // Paging every point, 25,000 per page (MLflow's get-history).
  auto t2 = Clock_::now();
  HistoryRequest req{.run_id = r->info.run_id, .key = "loss", .page = {.max_results = 25000}};
  int64_t total = 0;
  int pages = 0;
  while (true) {
    auto h = env.svc->GetHistory(env.admin, "bench", req);
    Check(h.status(), "history page");
    total += static_cast<int64_t>(h->points.size());
    ++pages;
    if (h->next_page_token.empty()) break;
    req.page.page_token = h->next_page_token;
  }
  std::printf("history  every point in pages of 25,000: %lld points, %d pages, %.1f ms\n",
              static_cast<long long>(total), pages, Ms(Clock_::now() - t2));
}

// The disk's durable-write floor beside the store (4 KiB pwrite + fdatasync),
// as in store_write_bench: one durable commit costs at least this.
void FsyncFloor(const std::filesystem::path& dir) {
  std::string path = (dir / "floor").string();
  int fd = ::open(path.c_str(), O_CREAT | O_RDWR, 0600);
  if (fd < 0) return;
  char buf[4096] = {};
  std::vector<double> lat;
  for (int i = 0; i < 300; ++i) {
    auto t0 = Clock_::now();
    if (::pwrite(fd, buf, sizeof(buf), (i % 64) * 4096) < 0 || ::fdatasync(fd) != 0) break;
    lat.push_back(Ms(Clock_::now() - t0));
  }
  ::close(fd);
  ::unlink(path.c_str());
  if (lat.empty()) return;
  Stats s = Summarize(lat);
  std::printf("floor    4 KiB pwrite + fdatasync, 300 times: p50 %.3f ms p90 %.3f ms\n", s.p50, s.p90);
}

int Main(int argc, char** argv) {
  std::string url = Flag(argc, argv, "store", "");
  std::filesystem::path dir;
  if (url.empty()) {
    char tmpl[] = "/tmp/lathe-tracking-bench-XXXXXX";
    dir = mkdtemp(tmpl);
    url = "sqlite://" + (dir / "lathe.db").string();
  }
  const double seconds = std::stod(Flag(argc, argv, "seconds", "5"));
  const int runs = std::stoi(Flag(argc, argv, "runs", "100000"));
  const int64_t points = std::stoll(Flag(argc, argv, "points", "1000000"));
  const int keys = std::stoi(Flag(argc, argv, "keys", "10"));
  const std::string only = Flag(argc, argv, "only", "ingest,single,search,history");
  Env env;
  // --synchronous=NORMAL (SQLite only) is NOT durable: it isolates the CPU
  // cost of the service path from the disk's fdatasync.
  const std::string sync = Flag(argc, argv, "synchronous", "FULL");
  if (sync != "FULL" && !dir.empty()) {
    auto s = store::OpenSqliteStore({.path = (dir / "lathe.db").string(), .synchronous = sync});
    Check(s.status(), "open store");
    env.store = std::move(*s);
    Check(store::ApplyMigrations(*env.store, store::SchemaMigrations()), "migrate");
  } else {
    auto s = store::OpenStore({.url = url, .pool_size = 4});
    Check(s.status(), "open store");
    env.store = std::move(*s);
  }
  env.tenancy = std::make_unique<tenancy::TenancyService>(*env.store, SystemClock());
  std::string token;
  Check(env.tenancy->Bootstrap([&](const std::string& t) {
          token = t;
          return OkStatus();
        }).status(),
        "bootstrap");
  env.admin = *env.tenancy->Authenticate(token);
  Check(env.tenancy->CreateProject(env.admin, "bench", "").status(), "project");
  env.svc = std::make_unique<TrackingService>(*env.store, *env.tenancy, SystemClock());
  std::printf("store %s (%s, synchronous=%s)\n", url.c_str(), std::string(env.store->driver()).c_str(),
              sync.c_str());
  if (!dir.empty()) FsyncFloor(dir);
  if (only.find("ingest") != std::string::npos) Ingest(env, seconds, keys);
  if (only.find("single") != std::string::npos) Single(env, 2000);
  if (only.find("search") != std::string::npos) Search(env, runs);
  if (only.find("history") != std::string::npos) History(env, points);
  env.svc.reset();
  env.tenancy.reset();
  env.store.reset();
  if (!dir.empty() && Flag(argc, argv, "keep", "0") == "0") std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace lathe::tracking

int main(int argc, char** argv) { return lathe::tracking::Main(argc, argv); }
