// ApplyMigrations: forward-only schema migrations, one write transaction per
// migration together with its `schema_migrations` row.
//
// Concurrent starts: every migration transaction first takes the store's
// migration lock — on PostgreSQL `pg_advisory_xact_lock(kMigrationLockKey)`,
// on SQLite the database write lock that BEGIN IMMEDIATE already holds — and
// only then reads the current version, so two processes never apply the same
// migration; the second one sees the first one's rows and skips them.
#include <cctype>
#include <chrono>
#include <string>

#include "base/log.h"
#include "store/migrations.h"

namespace lathe::store {
namespace {

// An arbitrary constant shared by every Lathe binary: "LATHEMIG".
constexpr int64_t kMigrationLockKey = 0x4c4154484d4947;

constexpr std::string_view kCreateTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

bool IsPostgres(const Store& store) { return store.driver() == "postgres"; }

Status LockMigrations(Store& store, Tx& tx) {
  if (!IsPostgres(store)) return OkStatus();  // BEGIN IMMEDIATE holds the lock
  return tx.Query("SELECT pg_advisory_xact_lock(?)", {Value(kMigrationLockKey)}).status();
}

StatusOr<bool> TableExists(Store& store, Tx& tx) {
  ResultSet rows;
  if (IsPostgres(store)) {
    ASSIGN_OR_RETURN(rows, tx.Query("SELECT COUNT(*) FROM information_schema.tables "
                                    "WHERE table_schema = current_schema() "
                                    "AND table_name = 'schema_migrations'"));
  } else {
    ASSIGN_OR_RETURN(rows, tx.Query("SELECT COUNT(*) FROM sqlite_master "
                                    "WHERE type = 'table' AND name = 'schema_migrations'"));
  }
  return !rows.empty() && AsInt(rows.rows[0][0]) > 0;
}

StatusOr<int> VersionIn(Tx& tx) {
  ASSIGN_OR_RETURN(ResultSet rows, tx.Query("SELECT MAX(version) FROM schema_migrations"));
  if (rows.empty() || IsNull(rows.rows[0][0])) return 0;
  return static_cast<int>(AsInt(rows.rows[0][0]));
}

Status CheckNotNewer(int current, const std::vector<Migration>& migrations) {
  int known = migrations.empty() ? 0 : migrations.back().version;
  if (current > known) {
    return FailedPreconditionError("database schema is at version " + std::to_string(current) +
                                   " but this lathe binary knows versions up to " +
                                   std::to_string(known) + "; upgrade lathe");
  }
  return OkStatus();
}

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::vector<std::string> SplitSqlStatements(std::string_view script) {
  std::vector<std::string> statements;
  std::string current;
  bool has_code = false;  // current holds more than whitespace and comments
  auto flush = [&] {
    size_t b = current.find_first_not_of(" \t\r\n");
    size_t e = current.find_last_not_of(" \t\r\n");
    if (has_code) statements.push_back(current.substr(b, e - b + 1));
    current.clear();
    has_code = false;
  };
  size_t i = 0;
  const size_t n = script.size();
  while (i < n) {
    char c = script[i];
    size_t end = i + 1;  // one past the token starting at i
    bool trivia = c == ' ' || c == '\t' || c == '\r' || c == '\n';
    if (c == '\'' || c == '"') {
      // Quoted: a doubled quote is an escaped quote, so scanning to the next
      // quote character and continuing handles it.
      size_t close = script.find(c, i + 1);
      end = close == std::string_view::npos ? n : close + 1;
    } else if (c == '-' && i + 1 < n && script[i + 1] == '-') {
      size_t nl = script.find('\n', i);
      end = nl == std::string_view::npos ? n : nl + 1;
      trivia = true;
    } else if (c == '/' && i + 1 < n && script[i + 1] == '*') {
      size_t close = script.find("*/", i + 2);
      end = close == std::string_view::npos ? n : close + 2;
      trivia = true;
    } else if (c == '$') {
      // $tag$ … $tag$ (PostgreSQL dollar quoting); tag is [A-Za-z0-9_]*.
      size_t j = i + 1;
      while (j < n && (std::isalnum(static_cast<unsigned char>(script[j])) || script[j] == '_')) {
        ++j;
      }
      if (j < n && script[j] == '$' &&
          !(j > i + 1 && std::isdigit(static_cast<unsigned char>(script[i + 1])))) {
        std::string_view tag = script.substr(i, j - i + 1);
        size_t close = script.find(tag, j + 1);
        end = close == std::string_view::npos ? n : close + tag.size();
      }
    } else if (c == ';') {
      flush();
      i = end;
      continue;
    }
    if (!trivia) has_code = true;
    current.append(script.substr(i, end - i));
    i = end;
  }
  flush();
  return statements;
}

StatusOr<int> CurrentSchemaVersion(Store& store) {
  ASSIGN_OR_RETURN(std::unique_ptr<Tx> tx, store.Begin(TxMode::kRead));
  ASSIGN_OR_RETURN(bool exists, TableExists(store, *tx));
  if (!exists) return 0;
  return VersionIn(*tx);
}

Status ApplyMigrations(Store& store, const std::vector<Migration>& migrations) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version <= (i == 0 ? 0 : migrations[i - 1].version)) {
      return InternalError("migration versions must be positive and increasing; version " +
                           std::to_string(migrations[i].version) + " (\"" + migrations[i].name +
                           "\") is out of order");
    }
  }

  // Fast path for an up-to-date database: one read transaction.
  ASSIGN_OR_RETURN(int current, CurrentSchemaVersion(store));
  RETURN_IF_ERROR(CheckNotNewer(current, migrations));
  if (!migrations.empty() && current == migrations.back().version) return OkStatus();

  RETURN_IF_ERROR(RunInTx(store, TxMode::kWrite, [&](Tx& tx) -> Status {
    RETURN_IF_ERROR(LockMigrations(store, tx));
    return tx.Exec(kCreateTable).status();
  }));

  for (const Migration& migration : migrations) {
    bool applied = false;
    Status status = RunInTx(store, TxMode::kWrite, [&](Tx& tx) -> Status {
      applied = false;
      RETURN_IF_ERROR(LockMigrations(store, tx));
      ASSIGN_OR_RETURN(int version, VersionIn(tx));
      RETURN_IF_ERROR(CheckNotNewer(version, migrations));
      if (version >= migration.version) return OkStatus();  // someone else did it
      const std::string& script = IsPostgres(store) && !migration.postgres_sql.empty()
                                      ? migration.postgres_sql
                                      : migration.sql;
      for (const std::string& statement : SplitSqlStatements(script)) {
        Status s = tx.Exec(statement).status();
        if (!s.ok()) {
          return s.WithPrefix("migration " + std::to_string(migration.version) + " (\"" +
                              migration.name + "\")");
        }
      }
      RETURN_IF_ERROR(
          tx.Exec("INSERT INTO schema_migrations (version, name, applied_at) "
                  "VALUES (?, ?, ?)",
                  {Value(int64_t{migration.version}), Value(migration.name), Value(NowMicros())})
              .status());
      applied = true;
      return OkStatus();
    });
    RETURN_IF_ERROR(status);
    if (applied) {
      LOG_INFO("store: applied migration {} ({})", migration.version, migration.name);
    }
  }
  return OkStatus();
}

}  // namespace lathe::store
