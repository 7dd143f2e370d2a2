// Value accessors, RunInTx and OpenStore's dispatch by URL scheme.
#include "store/store.h"

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <random>
#include <thread>

#include "base/clock.h"
#include "base/log.h"
#include "base/metrics.h"
#include "store/migrations.h"
#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace lathe::store {

bool IsNull(const Value& v) { return std::holds_alternative<std::monostate>(v); }

int64_t AsInt(const Value& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
  if (const auto* s = std::get_if<std::string>(&v)) {
    int64_t out = 0;
    auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), out);
    if (ec == std::errc()) return out;
    return static_cast<int64_t>(std::strtod(s->c_str(), nullptr));
  }
  return 0;
}

double AsDouble(const Value& v) {
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  if (const auto* s = std::get_if<std::string>(&v)) return std::strtod(s->c_str(), nullptr);
  return 0;
}

const std::string& AsText(const Value& v) {
  static const std::string* const kEmpty = new std::string();
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  return *kEmpty;
}

namespace {

// Store latency as the API sees it: one observation per RunInTx call,
// retries and backoff included.
HistogramChild& TxLatency(std::string_view driver, TxMode mode) {
  static Histogram& family = DefaultRegistry().AddHistogram(
      "lathe_store_transaction_duration_seconds",
      "Time of a store transaction through RunInTx, retries included.", {"driver", "mode"});
  // Each thread keeps the two children of its store's driver, so the hot
  // path takes no lock.
  thread_local std::string cached_driver;
  thread_local HistogramChild* cached[2] = {nullptr, nullptr};
  if (driver != cached_driver) {
    cached_driver = std::string(driver);
    cached[0] = cached[1] = nullptr;
  }
  const int slot = mode == TxMode::kRead ? 0 : 1;
  if (cached[slot] == nullptr) {
    cached[slot] = &family.With({std::string(driver), slot == 0 ? "read" : "write"});
  }
  return *cached[slot];
}

Status RunWithRetries(Store& store, TxMode mode, const std::function<Status(Tx&)>& fn) {
  constexpr int kMaxRetries = 5;
  thread_local std::minstd_rand rng(std::random_device{}());
  Status last;
  for (int attempt = 0; attempt <= kMaxRetries; ++attempt) {
    if (attempt > 0) {
      // Exponential backoff with full jitter: 1, 2, 4, 8, 16 ms ceilings.
      const int ceiling_us = 1000 << (attempt - 1);
      std::uniform_int_distribution<int> dist(ceiling_us / 2, ceiling_us);
      std::this_thread::sleep_for(std::chrono::microseconds(dist(rng)));
    }
    last = [&]() -> Status {
      ASSIGN_OR_RETURN(std::unique_ptr<Tx> tx, store.Begin(mode));
      RETURN_IF_ERROR(fn(*tx));
      return tx->Commit();
    }();
    if (last.code() != StatusCode::kAborted) return last;
    LOG_DEBUG("store: transaction aborted (attempt {}): {}", attempt + 1, last.message());
  }
  return last.WithPrefix("transaction still aborted after " + std::to_string(kMaxRetries) +
                         " retries");
}

}  // namespace

Status RunInTx(Store& store, TxMode mode, const std::function<Status(Tx&)>& fn) {
  const int64_t start = SystemClock().MonotonicNanos();
  Status result = RunWithRetries(store, mode, fn);
  TxLatency(store.driver(), mode)
      .Observe(static_cast<double>(SystemClock().MonotonicNanos() - start) / 1e9);
  return result;
}

StatusOr<std::unique_ptr<Store>> OpenStore(const StoreOptions& options) {
  const std::string& url = options.url;
  std::unique_ptr<Store> store;
  if (url.starts_with("postgres://") || url.starts_with("postgresql://")) {
    ASSIGN_OR_RETURN(store, OpenPostgresStore(url, options));
  } else {
    std::string path;
    if (url.starts_with("sqlite://")) {
      path = url.substr(std::string_view("sqlite://").size());
    } else if (url.find("://") == std::string::npos && !url.empty()) {
      path = url;
    } else {
      return InvalidArgumentError(
          "unsupported store URL \"" + url +
              "\": use postgres://…, postgresql://…, sqlite://PATH or a file path",
          "store");
    }
    if (path.empty()) return InvalidArgumentError("store URL names no SQLite file", "store");
    if (path == ":memory:" || path.starts_with("file:")) {
      return InvalidArgumentError(
          "in-memory/URI SQLite databases are not supported (the store pools "
          "connections); give a file path",
          "store");
    }
    SqliteStoreOptions sqlite_options;
    sqlite_options.path = path;
    sqlite_options.pool_size = options.pool_size;
    sqlite_options.busy_timeout_ms = options.busy_timeout_ms;
    ASSIGN_OR_RETURN(store, OpenSqliteStore(sqlite_options));
  }
  RETURN_IF_ERROR(ApplyMigrations(*store, SchemaMigrations()));
  return store;
}

std::string Placeholders(size_t n) {
  std::string s = "(";
  for (size_t i = 0; i < n; ++i) s += i == 0 ? "?" : ", ?";
  return s + ")";
}

}  // namespace lathe::store
