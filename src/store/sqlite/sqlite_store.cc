// SQLite driver: one writer connection behind a mutex, a pool of query_only
// reader connections, per-connection prepared-statement caches.
#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/log.h"

namespace lathe::store {
namespace {

// Past this many distinct SQL texts a connection drops its whole cache;
// Lathe's SQL is static text, so this only bounds accidental growth.
constexpr size_t kMaxCachedStatements = 512;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Maps an (extended) SQLite result code to a Status carrying SQLite's text.
Status SqliteStatus(int rc, sqlite3* db, std::string_view context) {
  std::string message(context);
  message += ": ";
  message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return AlreadyExistsError(std::move(message));
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:  // FOREIGNKEY, CHECK, NOTNULL and the rest
      return FailedPreconditionError(std::move(message));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return AbortedError(std::move(message));
    case SQLITE_READONLY:  // a write in a read transaction (query_only)
      return FailedPreconditionError(std::move(message));
    case SQLITE_CANTOPEN:
      return UnavailableError(std::move(message));
    default:
      return InternalError(std::move(message));
  }
}

// True when `rest` holds nothing but whitespace, ';' and comments.
bool OnlyTrivia(std::string_view rest) {
  size_t i = 0;
  while (i < rest.size()) {
    char c = rest[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ';') {
      ++i;
    } else if (rest.substr(i).starts_with("--")) {
      size_t end = rest.find('\n', i);
      i = end == std::string_view::npos ? rest.size() : end + 1;
    } else if (rest.substr(i).starts_with("/*")) {
      size_t end = rest.find("*/", i + 2);
      i = end == std::string_view::npos ? rest.size() : end + 2;
    } else {
      return false;
    }
  }
  return true;
}

// One sqlite3 handle with its prepared-statement cache. Not thread-safe:
// used by one thread at a time, whoever holds it (the writer mutex or a
// reader checked out of the pool).
class Connection {
 public:
  explicit Connection(sqlite3* db) : db_(db) {}
  ~Connection() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* db() const { return db_; }

  // Returns the cached statement for `sql`, preparing it on first use. The
  // statement stays owned by the cache; callers reset it after use.
  StatusOr<sqlite3_stmt*> Prepare(std::string_view sql) {
    if (auto it = cache_.find(sql); it != cache_.end()) return it->second;
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK) return SqliteStatus(rc, db_, "prepare");
    if (stmt == nullptr) return InvalidArgumentError("empty SQL statement");
    std::string_view rest(tail, sql.data() + sql.size() - tail);
    if (!OnlyTrivia(rest)) {
      sqlite3_finalize(stmt);
      return InvalidArgumentError("one statement per Query/Exec; got more after: " +
                                  std::string(sql.substr(0, sql.size() - rest.size())));
    }
    if (cache_.size() >= kMaxCachedStatements) {
      for (auto& [cached_sql, cached] : cache_) sqlite3_finalize(cached);
      cache_.clear();
    }
    cache_.emplace(std::string(sql), stmt);
    return stmt;
  }

  // Runs a statement without parameters and discards its rows.
  Status Simple(std::string_view sql) {
    ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(sql));
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    }
    Status status = rc == SQLITE_DONE ? OkStatus() : SqliteStatus(rc, db_, sql);
    sqlite3_reset(stmt);
    return status;
  }

 private:
  sqlite3* const db_;
  std::unordered_map<std::string, sqlite3_stmt*, StringHash, std::equal_to<>> cache_;
};

// Runs PRAGMA `sql` (or any statement) outside the cache, returning the
// first column of the first row ("" when none).
StatusOr<std::string> PragmaValue(sqlite3* db, const std::string& sql) {
  std::string value;
  char* error = nullptr;
  int rc = sqlite3_exec(
      db, sql.c_str(),
      [](void* out, int n, char** values, char**) {
        if (n > 0 && values[0] != nullptr) *static_cast<std::string*>(out) = values[0];
        return 0;
      },
      &value, &error);
  if (rc != SQLITE_OK) {
    Status status = SqliteStatus(rc, db, sql);
    sqlite3_free(error);
    return status;
  }
  return value;
}

StatusOr<std::unique_ptr<Connection>> OpenConnection(const SqliteStoreOptions& options,
                                                     bool reader) {
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (reader ? 0 : SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(options.path.c_str(), &db, flags, nullptr);
  auto conn = std::make_unique<Connection>(db);  // owns db even when open failed
  if (rc != SQLITE_OK) {
    return SqliteStatus(rc, db, "open SQLite database \"" + options.path + "\"");
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  if (!reader) {
    ASSIGN_OR_RETURN(std::string mode, PragmaValue(db, "PRAGMA journal_mode=WAL"));
    if (mode != "wal") {
      return InternalError("SQLite database \"" + options.path +
                           "\" refused WAL mode (journal_mode=" + mode + ")");
    }
  }
  RETURN_IF_ERROR(PragmaValue(db, "PRAGMA synchronous=" + options.synchronous).status());
  RETURN_IF_ERROR(PragmaValue(db, "PRAGMA foreign_keys=ON").status());
  if (reader) RETURN_IF_ERROR(PragmaValue(db, "PRAGMA query_only=ON").status());
  return conn;
}

class SqliteStore;

class SqliteTx final : public Tx {
 public:
  // Takes over `conn` (a checked-out reader, or the writer with `writer_lock`
  // held) on which BEGIN already succeeded.
  SqliteTx(SqliteStore* store, Connection* conn, TxMode mode,
           std::unique_lock<std::mutex> writer_lock)
      : store_(store), conn_(conn), mode_(mode), writer_lock_(std::move(writer_lock)) {}
  ~SqliteTx() override {
    if (conn_ != nullptr) Finish(/*commit=*/false).IgnoreError();
  }

  StatusOr<ResultSet> Query(std::string_view sql, const std::vector<Value>& params) override {
    ResultSet rows;
    ASSIGN_OR_RETURN(int64_t changes, Run(sql, params, &rows));
    (void)changes;
    return rows;
  }
  StatusOr<int64_t> Exec(std::string_view sql, const std::vector<Value>& params) override {
    return Run(sql, params, nullptr);
  }
  Status Commit() override {
    if (conn_ == nullptr) return FailedPreconditionError("transaction already finished");
    if (!poison_.ok()) {
      Status first = poison_;
      Finish(/*commit=*/false).IgnoreError();
      return first.WithPrefix("commit refused, transaction rolled back after an earlier error");
    }
    return Finish(/*commit=*/true);
  }

 private:
  // Runs one statement, appending rows to `out` when non-null; returns the
  // rows changed. Poisons the Tx on error.
  StatusOr<int64_t> Run(std::string_view sql, const std::vector<Value>& params, ResultSet* out);
  StatusOr<int64_t> Step(std::string_view sql, const std::vector<Value>& params, ResultSet* out);
  // Commits or rolls back, then gives the connection back. Idempotent.
  Status Finish(bool commit);

  SqliteStore* const store_;
  Connection* conn_;  // nullptr once finished
  const TxMode mode_;
  std::unique_lock<std::mutex> writer_lock_;  // owns SqliteStore::writer_mu_ for kWrite
  Status poison_;                             // first statement error, if any
};

class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<Connection> writer, std::vector<std::unique_ptr<Connection>> readers)
      : writer_(std::move(writer)), readers_(std::move(readers)) {
    for (auto& r : readers_) free_readers_.push_back(r.get());
  }
  ~SqliteStore() override {
    // Readers close first: the writer, closing last, checkpoints the WAL.
    readers_.clear();
    writer_.reset();
  }

  StatusOr<std::unique_ptr<Tx>> Begin(TxMode mode) override {
    transactions_.fetch_add(1, std::memory_order_relaxed);
    if (mode == TxMode::kWrite) {
      std::unique_lock<std::mutex> lock(writer_mu_);
      RETURN_IF_ERROR(writer_->Simple("BEGIN IMMEDIATE"));
      return std::unique_ptr<Tx>(
          std::make_unique<SqliteTx>(this, writer_.get(), mode, std::move(lock)));
    }
    Connection* reader = AcquireReader();
    Status begun = reader->Simple("BEGIN");
    if (!begun.ok()) {
      ReleaseReader(reader);
      return begun;
    }
    return std::unique_ptr<Tx>(
        std::make_unique<SqliteTx>(this, reader, mode, std::unique_lock<std::mutex>()));
  }

  std::string_view driver() const override { return "sqlite"; }

  Status ExecScript(std::string_view sql) override {
    std::lock_guard<std::mutex> lock(writer_mu_);
    std::string script(sql);
    char* error = nullptr;
    int rc = sqlite3_exec(writer_->db(), script.c_str(), nullptr, nullptr, &error);
    sqlite3_free(error);
    if (rc != SQLITE_OK) return SqliteStatus(rc, writer_->db(), "script");
    return OkStatus();
  }

  StoreStats stats() const override {
    StoreStats s;
    s.transactions = transactions_.load(std::memory_order_relaxed);
    s.statements = statements_.load(std::memory_order_relaxed);
    return s;
  }

  void CountStatement() { statements_.fetch_add(1, std::memory_order_relaxed); }

  Connection* AcquireReader() {
    std::unique_lock<std::mutex> lock(pool_mu_);
    pool_cv_.wait(lock, [this] { return !free_readers_.empty(); });
    Connection* conn = free_readers_.back();
    free_readers_.pop_back();
    return conn;
  }
  void ReleaseReader(Connection* conn) {
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      free_readers_.push_back(conn);
    }
    pool_cv_.notify_one();
  }

 private:
  // writer_mu_ guards all use of *writer_: held for a whole write transaction
  // (by the SqliteTx that owns it) and for ExecScript.
  std::mutex writer_mu_;
  std::unique_ptr<Connection> writer_;
  // The reader connections; the vector itself is immutable after open.
  std::vector<std::unique_ptr<Connection>> readers_;
  // pool_mu_ guards free_readers_ (readers not checked out by a SqliteTx);
  // pool_cv_ is signalled when one is returned.
  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<Connection*> free_readers_;
  std::atomic<int64_t> transactions_{0};
  std::atomic<int64_t> statements_{0};
};

StatusOr<int64_t> SqliteTx::Run(std::string_view sql, const std::vector<Value>& params,
                                ResultSet* out) {
  if (conn_ == nullptr) return FailedPreconditionError("transaction already finished");
  if (!poison_.ok()) return poison_;
  store_->CountStatement();
  StatusOr<int64_t> result = Step(sql, params, out);
  if (!result.ok()) poison_ = result.status();
  return result;
}

StatusOr<int64_t> SqliteTx::Step(std::string_view sql, const std::vector<Value>& params,
                                 ResultSet* out) {
  sqlite3* db = conn_->db();
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt, conn_->Prepare(sql));
  int expected = sqlite3_bind_parameter_count(stmt);
  if (expected != static_cast<int>(params.size())) {
    return InvalidArgumentError("statement has " + std::to_string(expected) + " placeholders but " +
                                std::to_string(params.size()) +
                                " parameters were given: " + std::string(sql));
  }
  for (int i = 0; i < expected; ++i) {
    const Value& v = params[i];
    int rc = SQLITE_OK;
    if (std::holds_alternative<std::monostate>(v)) {
      rc = sqlite3_bind_null(stmt, i + 1);
    } else if (const auto* n = std::get_if<int64_t>(&v)) {
      rc = sqlite3_bind_int64(stmt, i + 1, *n);
    } else if (const auto* d = std::get_if<double>(&v)) {
      rc = sqlite3_bind_double(stmt, i + 1, *d);
    } else {
      const std::string& s = std::get<std::string>(v);
      // STATIC: `params` outlives the statement's use; we reset below.
      rc = sqlite3_bind_text64(stmt, i + 1, s.data(), s.size(), SQLITE_STATIC, SQLITE_UTF8);
    }
    if (rc != SQLITE_OK) {
      sqlite3_clear_bindings(stmt);
      return SqliteStatus(rc, db, "bind");
    }
  }
  if (out != nullptr) {
    int n = sqlite3_column_count(stmt);
    out->columns.reserve(n);
    for (int c = 0; c < n; ++c) out->columns.emplace_back(sqlite3_column_name(stmt, c));
  }
  const int64_t total_before = sqlite3_total_changes64(db);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    if (out == nullptr) continue;
    int n = sqlite3_column_count(stmt);
    std::vector<Value>& row = out->rows.emplace_back();
    row.reserve(n);
    for (int c = 0; c < n; ++c) {
      switch (sqlite3_column_type(stmt, c)) {
        case SQLITE_INTEGER:
          row.emplace_back(static_cast<int64_t>(sqlite3_column_int64(stmt, c)));
          break;
        case SQLITE_FLOAT:
          row.emplace_back(sqlite3_column_double(stmt, c));
          break;
        case SQLITE_NULL:
          row.emplace_back(std::monostate{});
          break;
        default: {  // TEXT and BLOB: bytes as they are
          const void* data = sqlite3_column_blob(stmt, c);
          int size = sqlite3_column_bytes(stmt, c);
          row.emplace_back(std::string(static_cast<const char*>(data), size));
        }
      }
    }
  }
  Status status = rc == SQLITE_DONE ? OkStatus() : SqliteStatus(rc, db, "statement");
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  RETURN_IF_ERROR(status);
  // sqlite3_changes64 reports the last INSERT/UPDATE/DELETE, which may be
  // an earlier statement; count only when this one changed something.
  return sqlite3_total_changes64(db) == total_before ? int64_t{0} : sqlite3_changes64(db);
}

Status SqliteTx::Finish(bool commit) {
  if (conn_ == nullptr) return OkStatus();
  Status status;
  if (commit) {
    status = conn_->Simple("COMMIT");
  }
  if (!commit || !status.ok()) {
    // SQLite may already have rolled back (e.g. after SQLITE_FULL).
    if (!sqlite3_get_autocommit(conn_->db())) {
      Status rolled_back = conn_->Simple("ROLLBACK");
      if (!rolled_back.ok()) LOG_WARN("sqlite: rollback failed: {}", rolled_back.ToString());
    }
  }
  if (mode_ == TxMode::kRead) store_->ReleaseReader(conn_);
  conn_ = nullptr;
  if (writer_lock_.owns_lock()) writer_lock_.unlock();
  return status;
}

}  // namespace

StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const SqliteStoreOptions& options) {
  if (options.path.empty()) return InvalidArgumentError("SQLite path is empty", "store");
  std::filesystem::path parent = std::filesystem::path(options.path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return UnavailableError("cannot create directory \"" + parent.string() +
                              "\" for the SQLite database: " + ec.message());
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer, OpenConnection(options, /*reader=*/false));
  std::vector<std::unique_ptr<Connection>> readers;
  for (int i = 0; i < std::max(1, options.pool_size); ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader, OpenConnection(options, /*reader=*/true));
    readers.push_back(std::move(reader));
  }
  return std::unique_ptr<Store>(
      std::make_unique<SqliteStore>(std::move(writer), std::move(readers)));
}

}  // namespace lathe::store
