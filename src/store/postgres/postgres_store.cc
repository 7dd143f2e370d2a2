// PostgreSQL driver: a pool of libpq connections, `?` → `$n` translation
// cached per SQL text, text-format parameters, SQLSTATE → Status mapping.
#include "store/postgres/postgres_store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/log.h"

namespace lathe::store {
namespace {

// Type OIDs from pg_type.h (stable across PostgreSQL versions).
constexpr Oid kBoolOid = 16;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kFloat4Oid = 700;
constexpr Oid kFloat8Oid = 701;
constexpr Oid kNumericOid = 1700;

// Distinct SQL texts whose translation is cached; past this the cache is
// dropped (Lathe's SQL is static text, so this only bounds accidents).
constexpr size_t kMaxCachedTranslations = 4096;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

std::string Trimmed(const char* text) {
  std::string s = text != nullptr ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The Status for a failed libpq call: `res` may be null (no result at all).
Status PgStatus(PGconn* conn, const PGresult* res, std::string_view context) {
  std::string message(context);
  message += ": ";
  const char* sqlstate = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  message +=
      Trimmed(res != nullptr && PQresultErrorMessage(res)[0] != '\0' ? PQresultErrorMessage(res)
                                                                     : PQerrorMessage(conn));
  if (sqlstate == nullptr) {
    if (PQstatus(conn) != CONNECTION_OK) return UnavailableError(std::move(message));
    return InternalError(std::move(message));
  }
  std::string_view code(sqlstate);
  message += " (SQLSTATE " + std::string(code) + ")";
  if (code == "23505") return AlreadyExistsError(std::move(message));
  if (code == "23503" || code == "23514" || code == "23502" || code.starts_with("23")) {
    return FailedPreconditionError(std::move(message));
  }
  if (code == "40001" || code == "40P01" || code == "55P03") {
    return AbortedError(std::move(message));
  }
  if (code == "25006") return FailedPreconditionError(std::move(message));  // read-only tx
  if (code.starts_with("08") || code == "57P01" || code == "57P02" || code == "57P03") {
    return UnavailableError(std::move(message));  // connection lost, server shutting down
  }
  return InternalError(std::move(message));
}

// One pooled connection. Not thread-safe: used by whoever checked it out.
struct PgConnection {
  PGconn* conn = nullptr;
  ~PgConnection() {
    if (conn != nullptr) PQfinish(conn);
  }
};

void IgnoreNotice(void*, const char* message) {
  LOG_DEBUG("postgres notice: {}", Trimmed(message));
}

class PostgresStore;

class PostgresTx final : public Tx {
 public:
  // Takes over `conn`, on which BEGIN already succeeded.
  PostgresTx(PostgresStore* store, PgConnection* conn) : store_(store), conn_(conn) {}
  ~PostgresTx() override;

  StatusOr<ResultSet> Query(std::string_view sql, const std::vector<Value>& params) override {
    ResultSet rows;
    ASSIGN_OR_RETURN(int64_t changes, Run(sql, params, &rows));
    (void)changes;
    return rows;
  }
  StatusOr<int64_t> Exec(std::string_view sql, const std::vector<Value>& params) override {
    return Run(sql, params, nullptr);
  }
  Status Commit() override;

 private:
  StatusOr<int64_t> Run(std::string_view sql, const std::vector<Value>& params, ResultSet* out);
  StatusOr<int64_t> Execute(std::string_view sql, const std::vector<Value>& params, ResultSet* out);
  // ROLLBACK (best effort) and give the connection back. Idempotent.
  void Abandon();

  PostgresStore* const store_;
  PgConnection* conn_;  // nullptr once finished
  Status poison_;       // first statement error, if any
};

class PostgresStore final : public Store {
 public:
  PostgresStore(std::string url, int pool_size) : url_(std::move(url)) {
    for (int i = 0; i < pool_size; ++i) {
      slots_.push_back(std::make_unique<PgConnection>());
      free_.push_back(slots_.back().get());
    }
  }

  StatusOr<std::unique_ptr<Tx>> Begin(TxMode mode) override {
    transactions_.fetch_add(1, std::memory_order_relaxed);
    ASSIGN_OR_RETURN(PgConnection * conn, Acquire());
    const char* begin = mode == TxMode::kWrite ? "BEGIN ISOLATION LEVEL READ COMMITTED"
                                               : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    Status status;
    for (int attempt = 0; attempt < 2; ++attempt) {
      Result res(PQexec(conn->conn, begin));
      if (res != nullptr && PQresultStatus(res.get()) == PGRES_COMMAND_OK) {
        return std::unique_ptr<Tx>(std::make_unique<PostgresTx>(this, conn));
      }
      status = PgStatus(conn->conn, res.get(), "BEGIN");
      // A pooled connection whose server went away: reconnect once.
      if (PQstatus(conn->conn) == CONNECTION_OK) break;
      PQreset(conn->conn);
      if (PQstatus(conn->conn) != CONNECTION_OK) break;
    }
    Release(conn);
    return status;
  }

  std::string_view driver() const override { return "postgres"; }

  Status ExecScript(std::string_view sql) override {
    ASSIGN_OR_RETURN(PgConnection * conn, Acquire());
    std::string script(sql);
    Result res(PQexec(conn->conn, script.c_str()));
    Status status;
    if (res == nullptr || PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
      if (res == nullptr || PQresultStatus(res.get()) != PGRES_TUPLES_OK) {
        status = PgStatus(conn->conn, res.get(), "script");
      }
    }
    Release(conn);
    return status;
  }

  StoreStats stats() const override {
    StoreStats s;
    s.transactions = transactions_.load(std::memory_order_relaxed);
    s.statements = statements_.load(std::memory_order_relaxed);
    return s;
  }

  void CountStatement() { statements_.fetch_add(1, std::memory_order_relaxed); }

  // Checks a connection out of the pool, blocking while none is free, and
  // makes sure it is connected. UNAVAILABLE (connection returned to the
  // pool) when the server cannot be reached.
  StatusOr<PgConnection*> Acquire() {
    PgConnection* conn = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !free_.empty(); });
      conn = free_.back();
      free_.pop_back();
    }
    if (conn->conn == nullptr) {
      conn->conn = PQconnectdb(url_.c_str());
      if (conn->conn != nullptr && PQstatus(conn->conn) == CONNECTION_OK) {
        PQsetNoticeProcessor(conn->conn, IgnoreNotice, nullptr);
        PQsetClientEncoding(conn->conn, "UTF8");
      }
    } else if (PQstatus(conn->conn) != CONNECTION_OK) {
      PQreset(conn->conn);
    }
    if (conn->conn == nullptr || PQstatus(conn->conn) != CONNECTION_OK) {
      Status status = UnavailableError(
          "cannot connect to PostgreSQL: " +
          (conn->conn != nullptr ? Trimmed(PQerrorMessage(conn->conn)) : "out of memory"));
      if (conn->conn != nullptr) PQfinish(conn->conn);
      conn->conn = nullptr;
      Release(conn);
      return status;
    }
    return conn;
  }

  // Returns a connection to the pool. One left mid-transaction or broken is
  // closed, to be reopened on next use.
  void Release(PgConnection* conn) {
    if (conn->conn != nullptr && (PQstatus(conn->conn) != CONNECTION_OK ||
                                  PQtransactionStatus(conn->conn) != PQTRANS_IDLE)) {
      PQfinish(conn->conn);
      conn->conn = nullptr;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      free_.push_back(conn);
    }
    cv_.notify_one();
  }

  // The `$n` form of `sql`, translated once per distinct text.
  std::shared_ptr<const TranslatedSql> Translate(std::string_view sql) {
    {
      std::shared_lock<std::shared_mutex> lock(translations_mu_);
      if (auto it = translations_.find(sql); it != translations_.end()) return it->second;
    }
    auto t = std::make_shared<const TranslatedSql>(TranslatePlaceholders(sql));
    std::unique_lock<std::shared_mutex> lock(translations_mu_);
    if (translations_.size() >= kMaxCachedTranslations) translations_.clear();
    translations_.emplace(std::string(sql), t);
    return t;
  }

 private:
  const std::string url_;
  // The connections; the vector itself is immutable after construction.
  std::vector<std::unique_ptr<PgConnection>> slots_;
  // mu_ guards free_ (connections not checked out); cv_ signals a return.
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<PgConnection*> free_;
  // translations_mu_ guards translations_ (SQL text → $n form).
  std::shared_mutex translations_mu_;
  std::unordered_map<std::string, std::shared_ptr<const TranslatedSql>, StringHash, std::equal_to<>>
      translations_;
  std::atomic<int64_t> transactions_{0};
  std::atomic<int64_t> statements_{0};
};

PostgresTx::~PostgresTx() { Abandon(); }

void PostgresTx::Abandon() {
  if (conn_ == nullptr) return;
  if (PQstatus(conn_->conn) == CONNECTION_OK) {
    Result res(PQexec(conn_->conn, "ROLLBACK"));
    if (res == nullptr || PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
      LOG_WARN("postgres: {}", PgStatus(conn_->conn, res.get(), "ROLLBACK").ToString());
    }
  }
  store_->Release(conn_);
  conn_ = nullptr;
}

Status PostgresTx::Commit() {
  if (conn_ == nullptr) return FailedPreconditionError("transaction already finished");
  if (!poison_.ok()) {
    Abandon();
    return poison_.WithPrefix("commit refused, transaction rolled back after an earlier error");
  }
  Result res(PQexec(conn_->conn, "COMMIT"));
  Status status;
  if (res == nullptr || PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
    status = PgStatus(conn_->conn, res.get(), "COMMIT");
  } else if (std::strcmp(PQcmdStatus(res.get()), "COMMIT") != 0) {
    // The server answers COMMIT of a failed transaction with ROLLBACK.
    status = AbortedError("COMMIT: the server rolled the transaction back");
  }
  if (!status.ok() && status.code() == StatusCode::kUnavailable) {
    // The connection died around COMMIT: whether it committed is unknown.
    status = status.WithPrefix("outcome unknown");
  }
  store_->Release(conn_);
  conn_ = nullptr;
  return status;
}

StatusOr<int64_t> PostgresTx::Run(std::string_view sql, const std::vector<Value>& params,
                                  ResultSet* out) {
  if (conn_ == nullptr) return FailedPreconditionError("transaction already finished");
  if (!poison_.ok()) return poison_;
  store_->CountStatement();
  StatusOr<int64_t> result = Execute(sql, params, out);
  if (!result.ok()) poison_ = result.status();
  return result;
}

StatusOr<int64_t> PostgresTx::Execute(std::string_view sql, const std::vector<Value>& params,
                                      ResultSet* out) {
  std::shared_ptr<const TranslatedSql> t = store_->Translate(sql);
  if (t->empty) return InvalidArgumentError("empty SQL statement");
  if (t->multiple_statements) {
    return InvalidArgumentError("one statement per Query/Exec: " + std::string(sql));
  }
  if (t->params != static_cast<int>(params.size())) {
    return InvalidArgumentError("statement has " + std::to_string(t->params) +
                                " placeholders but " + std::to_string(params.size()) +
                                " parameters were given: " + std::string(sql));
  }
  // Text-format parameters. int64/double are typed (int8/float8) so that
  // `SELECT ?` and arithmetic on parameters behave as on SQLite; text and
  // NULL are left untyped for the server to infer from context.
  const int n = static_cast<int>(params.size());
  std::vector<std::string> storage(n);
  std::vector<const char*> values(n, nullptr);
  std::vector<Oid> types(n, 0);
  for (int i = 0; i < n; ++i) {
    const Value& v = params[i];
    if (const auto* x = std::get_if<int64_t>(&v)) {
      storage[i] = std::to_string(*x);
      values[i] = storage[i].c_str();
      types[i] = kInt8Oid;
    } else if (const auto* d = std::get_if<double>(&v)) {
      char buf[64];
      auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), *d);
      storage[i] = ec == std::errc() ? std::string(buf, end) : "NaN";
      values[i] = storage[i].c_str();
      types[i] = kFloat8Oid;
    } else if (const auto* s = std::get_if<std::string>(&v)) {
      if (s->find('\0') != std::string::npos) {
        return InvalidArgumentError("text parameter " + std::to_string(i + 1) +
                                    " contains a NUL byte, which PostgreSQL text cannot hold");
      }
      values[i] = s->c_str();
    }
  }
  Result res(PQexecParams(conn_->conn, t->sql.c_str(), n, types.data(), values.data(), nullptr,
                          nullptr, /*resultFormat=*/0));
  ExecStatusType st = res != nullptr ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return PgStatus(conn_->conn, res.get(), "statement");
  }
  if (out != nullptr && st == PGRES_TUPLES_OK) {
    const int cols = PQnfields(res.get());
    const int rows = PQntuples(res.get());
    out->columns.reserve(cols);
    std::vector<Oid> oids(cols);
    for (int c = 0; c < cols; ++c) {
      out->columns.emplace_back(PQfname(res.get(), c));
      oids[c] = PQftype(res.get(), c);
    }
    out->rows.reserve(rows);
    for (int r = 0; r < rows; ++r) {
      std::vector<Value>& row = out->rows.emplace_back();
      row.reserve(cols);
      for (int c = 0; c < cols; ++c) {
        if (PQgetisnull(res.get(), r, c)) {
          row.emplace_back(std::monostate{});
          continue;
        }
        const char* text = PQgetvalue(res.get(), r, c);
        const int len = PQgetlength(res.get(), r, c);
        switch (oids[c]) {
          case kInt2Oid:
          case kInt4Oid:
          case kInt8Oid: {
            int64_t x = 0;
            std::from_chars(text, text + len, x);
            row.emplace_back(x);
            break;
          }
          case kBoolOid:
            row.emplace_back(int64_t{text[0] == 't' ? 1 : 0});
            break;
          case kNumericOid: {
            int64_t x = 0;
            auto [end, ec] = std::from_chars(text, text + len, x);
            if (ec == std::errc() && end == text + len) {
              row.emplace_back(x);
            } else {
              row.emplace_back(std::strtod(text, nullptr));
            }
            break;
          }
          case kFloat4Oid:
          case kFloat8Oid:
            // strtod reads "NaN", "Infinity" and "-Infinity" as PostgreSQL writes them.
            row.emplace_back(std::strtod(text, nullptr));
            break;
          default:
            row.emplace_back(std::string(text, len));
        }
      }
    }
  }
  const char* tuples = PQcmdTuples(res.get());
  int64_t changed = 0;
  if (tuples != nullptr && tuples[0] != '\0') {
    std::from_chars(tuples, tuples + std::strlen(tuples), changed);
  }
  // SELECT reports its row count in the tag; only writes count as changes.
  if (std::strncmp(PQcmdStatus(res.get()), "SELECT", 6) == 0) changed = 0;
  return changed;
}

}  // namespace

TranslatedSql TranslatePlaceholders(std::string_view sql) {
  TranslatedSql t;
  std::string& out = t.sql;
  out.reserve(sql.size() + 16);
  bool after_semicolon = false;
  size_t i = 0;
  const size_t len = sql.size();
  while (i < len) {
    char c = sql[i];
    size_t end = i + 1;
    bool trivia = false;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      trivia = true;
    } else if (c == ';') {
      trivia = true;
      after_semicolon = true;
    } else if (c == '\'' || c == '"') {
      size_t close = sql.find(c, i + 1);  // '' inside a literal re-enters here
      end = close == std::string_view::npos ? len : close + 1;
    } else if (c == '-' && i + 1 < len && sql[i + 1] == '-') {
      size_t nl = sql.find('\n', i);
      end = nl == std::string_view::npos ? len : nl + 1;
      trivia = true;
    } else if (c == '/' && i + 1 < len && sql[i + 1] == '*') {
      size_t close = sql.find("*/", i + 2);
      end = close == std::string_view::npos ? len : close + 2;
      trivia = true;
    } else if (c == '$' && i + 1 < len && !std::isdigit(static_cast<unsigned char>(sql[i + 1]))) {
      size_t j = i + 1;
      while (j < len && (std::isalnum(static_cast<unsigned char>(sql[j])) || sql[j] == '_')) ++j;
      if (j < len && sql[j] == '$') {
        std::string_view tag = sql.substr(i, j - i + 1);
        size_t close = sql.find(tag, j + 1);
        end = close == std::string_view::npos ? len : close + tag.size();
      }
    }
    if (!trivia) {
      if (after_semicolon && !t.empty) t.multiple_statements = true;
      t.empty = false;
      after_semicolon = false;
    }
    if (c == '?') {
      out += '$';
      out += std::to_string(++t.params);
    } else {
      out.append(sql.substr(i, end - i));
    }
    i = end;
  }
  return t;
}

StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url,
                                                   const StoreOptions& options) {
  auto store = std::make_unique<PostgresStore>(url, std::max(1, options.pool_size));
  // Connect one eagerly so that a wrong URL or a down server fails here.
  ASSIGN_OR_RETURN(PgConnection * conn, store->Acquire());
  store->Release(conn);
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace lathe::store
