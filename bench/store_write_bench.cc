// Durable single-row INSERT, each in its own write transaction, on the
// SQLite store in a temp directory. Product target: p50 < 200 µs.
//
//   store_write_bench [--iterations=N] [--no_manual] [google-benchmark flags]
//
// First a manual loop times N transactions per variant and prints
// p50/p90/p99/max; then the Google Benchmark cases run (per-iteration time).
// Variants:
//   store_full      OpenStore defaults: WAL + synchronous=FULL (the product)
//   store_full_explicit  OpenSqliteStore with synchronous="FULL" spelled out
//   store_normal    synchronous=NORMAL, NOT durable on power loss (reference)
//   raw_sqlite_full the sqlite3 C API directly, WAL + FULL
//   fdatasync_floor 4 KiB pwrite + fdatasync: the device's durable-write floor
//   postgres        when LATHE_BENCH_POSTGRES_URL is set
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "store/sqlite/sqlite_store.h"
#include "store/store.h"

namespace lathe::store {
namespace {

constexpr const char* kCreate =
    "CREATE TABLE IF NOT EXISTS bench_rows (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
    "created_at BIGINT NOT NULL)";
constexpr const char* kInsert = "INSERT INTO bench_rows (id, name, created_at) VALUES (?, ?, ?)";

std::filesystem::path TempDir(const std::string& tag) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / ("lathe_bench_" + tag + "_XXXXXX"));
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  return buf.data();
}

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

// One way of doing a durable insert; `Insert(id)` commits one row.
class Writer {
 public:
  virtual ~Writer() = default;
  virtual void Insert(int64_t id) = 0;
};

class StoreWriter final : public Writer {
 public:
  explicit StoreWriter(std::unique_ptr<Store> store) : store_(std::move(store)) {
    Check(RunInTx(*store_, TxMode::kWrite, [](Tx& tx) { return tx.Exec(kCreate).status(); }),
          "create");
  }
  void Insert(int64_t id) override {
    auto tx = store_->Begin(TxMode::kWrite);
    Check(tx.status(), "begin");
    Check((*tx)->Exec(kInsert, {Value(id), Value(name_), Value(id * 1000)}).status(), "insert");
    Check((*tx)->Commit(), "commit");
  }

 private:
  std::unique_ptr<Store> store_;
  const std::string name_ = "a-typical-resource-name";
};

class RawSqliteWriter final : public Writer {
 public:
  explicit RawSqliteWriter(const std::string& path) {
    sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    sqlite3_exec(db_, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", nullptr, nullptr,
                 nullptr);
    sqlite3_exec(db_, kCreate, nullptr, nullptr, nullptr);
    sqlite3_prepare_v2(db_, kInsert, -1, &insert_, nullptr);
    sqlite3_prepare_v2(db_, "BEGIN IMMEDIATE", -1, &begin_, nullptr);
    sqlite3_prepare_v2(db_, "COMMIT", -1, &commit_, nullptr);
  }
  ~RawSqliteWriter() override {
    sqlite3_finalize(insert_);
    sqlite3_finalize(begin_);
    sqlite3_finalize(commit_);
    sqlite3_close_v2(db_);
  }
  void Insert(int64_t id) override {
    Step(begin_);
    sqlite3_bind_int64(insert_, 1, id);
    sqlite3_bind_text(insert_, 2, "a-typical-resource-name", -1, SQLITE_STATIC);
    sqlite3_bind_int64(insert_, 3, id * 1000);
    Step(insert_);
    Step(commit_);
  }

 private:
  void Step(sqlite3_stmt* stmt) {
    if (sqlite3_step(stmt) != SQLITE_DONE) {
      std::fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db_));
      std::exit(1);
    }
    sqlite3_reset(stmt);
  }
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
};

// The device's floor: overwrite 4 KiB in a preallocated file + fdatasync,
// which is what one durable WAL commit costs at least.
class FdatasyncFloor final : public Writer {
 public:
  explicit FdatasyncFloor(const std::string& path) {
    fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd_ < 0 || ftruncate(fd_, kSlots * 4096) != 0 || fsync(fd_) != 0) {
      std::perror("floor file");
      std::exit(1);
    }
  }
  ~FdatasyncFloor() override { close(fd_); }
  void Insert(int64_t id) override {
    char page[4096];
    std::memset(page, static_cast<int>(id & 0xff), sizeof(page));
    if (pwrite(fd_, page, sizeof(page), (id % kSlots) * 4096) != sizeof(page) ||
        fdatasync(fd_) != 0) {
      std::perror("pwrite/fdatasync");
      std::exit(1);
    }
  }

 private:
  static constexpr int64_t kSlots = 1024;
  int fd_ = -1;
};

struct Variant {
  std::string name;
  std::function<std::unique_ptr<Writer>(const std::filesystem::path& dir)> make;
};

std::unique_ptr<Writer> MakeStoreWriter(const std::filesystem::path& dir,
                                        const std::string& synchronous, bool via_open_store) {
  std::unique_ptr<Store> store;
  if (via_open_store) {
    StoreOptions options;
    options.url = "sqlite://" + (dir / "lathe.db").string();
    auto opened = OpenStore(options);
    Check(opened.status(), "open");
    store = std::move(opened).value();
  } else {
    SqliteStoreOptions options;
    options.path = (dir / "lathe.db").string();
    options.synchronous = synchronous;
    auto opened = OpenSqliteStore(options);
    Check(opened.status(), "open");
    store = std::move(opened).value();
  }
  return std::make_unique<StoreWriter>(std::move(store));
}

std::vector<Variant> Variants() {
  std::vector<Variant> v = {
      {"store_full", [](const auto& dir) { return MakeStoreWriter(dir, "FULL", true); }},
      {"store_full_explicit", [](const auto& dir) { return MakeStoreWriter(dir, "FULL", false); }},
      {"store_normal", [](const auto& dir) { return MakeStoreWriter(dir, "NORMAL", false); }},
      {"raw_sqlite_full",
       [](const auto& dir) {
         return std::make_unique<RawSqliteWriter>((dir / "raw.db").string());
       }},
      {"fdatasync_floor",
       [](const auto& dir) { return std::make_unique<FdatasyncFloor>((dir / "floor").string()); }},
  };
  if (const char* url = std::getenv("LATHE_BENCH_POSTGRES_URL"); url != nullptr && *url) {
    std::string pg_url = url;
    v.push_back({"postgres", [pg_url](const auto&) {
                   StoreOptions options;
                   options.url = pg_url;
                   auto opened = OpenStore(options);
                   Check(opened.status(), "open postgres");
                   auto writer = std::make_unique<StoreWriter>(std::move(opened).value());
                   return std::unique_ptr<Writer>(std::move(writer));
                 }});
  }
  return v;
}

// Ids differ across runs so that reruns against one PostgreSQL do not clash.
int64_t IdBase() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
             .count() %
         1'000'000'000'000 * 1000;
}

void RunManual(int iterations) {
  std::printf("%-20s %8s %9s %9s %9s %9s %9s %10s\n", "variant", "n", "mean_us", "p50_us", "p90_us",
              "p99_us", "max_us", "commits/s");
  for (const Variant& variant : Variants()) {
    std::filesystem::path dir = TempDir(variant.name);
    {
      std::unique_ptr<Writer> writer = variant.make(dir);
      int64_t id = IdBase();
      for (int i = 0; i < std::min(200, iterations); ++i) writer->Insert(id++);  // warm-up
      std::vector<double> us(iterations);
      auto start_all = std::chrono::steady_clock::now();
      for (int i = 0; i < iterations; ++i) {
        auto start = std::chrono::steady_clock::now();
        writer->Insert(id++);
        us[i] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                    .count();
      }
      double total_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_all).count();
      std::vector<double> sorted = us;
      std::sort(sorted.begin(), sorted.end());
      auto pct = [&](double p) {
        return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()))];
      };
      double mean = 0;
      for (double x : us) mean += x;
      mean /= us.size();
      std::printf("%-20s %8d %9.1f %9.1f %9.1f %9.1f %9.1f %10.0f\n", variant.name.c_str(),
                  iterations, mean, pct(0.50), pct(0.90), pct(0.99), sorted.back(),
                  iterations / total_s);
      std::fflush(stdout);
    }
    std::filesystem::remove_all(dir);
  }
}

void BM_DurableInsert(benchmark::State& state, const Variant& variant) {
  std::filesystem::path dir = TempDir(variant.name);
  {
    std::unique_ptr<Writer> writer = variant.make(dir);
    int64_t id = IdBase();
    for (auto _ : state) writer->Insert(id++);
    state.SetItemsProcessed(state.iterations());
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lathe::store

int main(int argc, char** argv) {
  int iterations = 3000;
  bool manual = true;
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--iterations=", 13) == 0) {
      iterations = std::max(1, std::atoi(argv[i] + 13));
    } else if (std::strcmp(argv[i], "--no_manual") == 0) {
      manual = false;
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (manual) lathe::store::RunManual(iterations);

  static const std::vector<lathe::store::Variant> variants = lathe::store::Variants();
  for (const auto& variant : variants) {
    benchmark::RegisterBenchmark(("BM_DurableInsert/" + variant.name).c_str(),
                                 lathe::store::BM_DurableInsert, variant)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
  int bench_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&bench_argc, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
