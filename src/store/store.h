// The Store: Lathe's one source of truth, a relational database behind a
// small interface with two drivers (sqlite/, postgres/) and one conformance
// suite (store_conformance_test.cc).
//
// Callers write portable SQL with `?` placeholders; drivers translate
// (PostgreSQL: `$1`, `$2`, …). Portable means: types TEXT, BIGINT, INTEGER,
// DOUBLE PRECISION; `INSERT … ON CONFLICT … DO …`; `RETURNING`; no
// driver-specific functions. Timestamps are BIGINT microseconds since the
// epoch; booleans are INTEGER 0/1.
//
// Every statement runs inside a transaction. A write transaction that
// commits is durable when Commit() returns OK (SQLite: WAL with
// synchronous=FULL; PostgreSQL: the server's fsync). A Tx destroyed without
// Commit() rolls back. Errors map to Status codes in the drivers:
//   unique/primary-key violation -> ALREADY_EXISTS
//   foreign-key / check violation -> FAILED_PRECONDITION
//   lock contention or serialization failure -> ABORTED (retryable)
//   connection lost / database unreachable -> UNAVAILABLE
//   anything else -> INTERNAL
// Additions to the contract, kept identical in both drivers:
//   - a write attempted in a kRead transaction -> FAILED_PRECONDITION;
//   - a malformed call (wrong number of parameters, several statements in
//     one Query/Exec, empty SQL) -> INVALID_ARGUMENT;
//   - after any statement of a Tx fails, the Tx is poisoned (PostgreSQL
//     semantics, enforced on SQLite too so code behaves the same on both):
//     further Query/Exec/Commit return that first error and the Tx rolls
//     back. To tolerate a conflict, use `INSERT … ON CONFLICT`.
//   - transactions do not nest: a thread that holds a kWrite Tx and begins
//     another kWrite Tx on the same store deadlocks (SQLite: one writer).
//   - a Tx must be destroyed before the Store that began it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"

namespace lathe::store {

// A column value or bound parameter: NULL, integer, real or text.
using Value = std::variant<std::monostate, int64_t, double, std::string>;

inline Value Null() { return Value(std::monostate{}); }

// Rows materialized in memory; control-plane queries are small and paged.
struct ResultSet {
  std::vector<std::string> columns;
  std::vector<std::vector<Value>> rows;

  bool empty() const { return rows.empty(); }
  size_t size() const { return rows.size(); }
};

// Typed access to one cell. A NULL reads as 0 / "" ; use IsNull to tell.
// Across types: AsInt of a double truncates, AsDouble of an int converts,
// AsInt/AsDouble of text parse it (0 when it is not a number), AsText of a
// non-text value is "" (the returned reference is valid as long as `v`).
bool IsNull(const Value& v);
int64_t AsInt(const Value& v);
double AsDouble(const Value& v);
const std::string& AsText(const Value& v);

enum class TxMode {
  kRead,   // a consistent snapshot; statements that write fail
  kWrite,  // serialized with other writers (SQLite: the single writer)
};

class Tx {
 public:
  virtual ~Tx() = default;
  // Runs one statement and returns its rows (SELECT, or … RETURNING).
  virtual StatusOr<ResultSet> Query(std::string_view sql, const std::vector<Value>& params = {}) = 0;
  // Runs one statement and returns the number of rows it changed.
  virtual StatusOr<int64_t> Exec(std::string_view sql, const std::vector<Value>& params = {}) = 0;
  // Commits. After Commit (OK or not) the Tx may not be used again.
  virtual Status Commit() = 0;
};

struct StoreStats {
  int64_t transactions = 0;
  int64_t statements = 0;
};

class Store {
 public:
  virtual ~Store() = default;
  // Starts a transaction. Thread-safe; blocks while the store's connections
  // are all in use (SQLite: at most one write transaction at a time).
  virtual StatusOr<std::unique_ptr<Tx>> Begin(TxMode mode) = 0;
  // "sqlite" or "postgres".
  virtual std::string_view driver() const = 0;
  // Runs raw DDL outside of the migration machinery; used by migrations only.
  virtual Status ExecScript(std::string_view sql) = 0;
  // Counters since the store was opened (transactions begun, statements
  // run). Thread-safe, cheap (relaxed atomics). Added for /metrics and
  // benchmarks; drivers that do not count return zeros.
  virtual StoreStats stats() const { return {}; }
};

// Runs `fn` in a transaction of `mode` and commits when it returns OK.
// ABORTED errors (contention) retry the whole function up to 5 times with
// backoff, so `fn` must be safe to run again: it may only touch the store.
Status RunInTx(Store& store, TxMode mode, const std::function<Status(Tx&)>& fn);

// The IN list "(?, ?, …)" of n portable placeholders (n ≥ 1).
std::string Placeholders(size_t n);

struct StoreOptions {
  // "sqlite:///abs/path/lathe.db", "sqlite://relative/path.db", a plain file
  // path (SQLite), or "postgres://user@host:port/db" / "postgresql://…".
  std::string url;
  // SQLite: reader connections in the pool. PostgreSQL: total connections.
  int pool_size = 4;
  // SQLite: how long a statement waits for a lock before ABORTED.
  int busy_timeout_ms = 5000;
};

// Opens the store named by options.url and brings its schema up to date
// (store/migrations.h). Fails with FAILED_PRECONDITION, naming both
// versions, when the database's schema is newer than this binary knows.
StatusOr<std::unique_ptr<Store>> OpenStore(const StoreOptions& options);

}  // namespace lathe::store
