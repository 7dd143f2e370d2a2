// One conformance suite for every Store driver. SQLite always runs (a temp
// directory per test); PostgreSQL runs when LATHE_TEST_POSTGRES_URL names a
// server (scripts/pg.sh start DIR prints one), each test in a fresh schema.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>
#include <thread>

#include "store/migrations.h"
#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"
#include "store/store.h"

namespace lathe::store {
namespace {

std::string RandomSuffix() {
  static std::mt19937_64 rng(std::random_device{}());
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  char buf[17];
  snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

// A fresh, empty database that disappears with this object.
class TestDatabase {
 public:
  virtual ~TestDatabase() = default;
  virtual const std::string& url() const = 0;
};

class SqliteTestDatabase final : public TestDatabase {
 public:
  SqliteTestDatabase() {
    dir_ = std::filesystem::temp_directory_path() / ("lathe_store_test_" + RandomSuffix());
    // The store must create the missing parent directory itself.
    url_ = "sqlite://" + (dir_ / "sub" / "lathe.db").string();
  }
  ~SqliteTestDatabase() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& url() const override { return url_; }

 private:
  std::filesystem::path dir_;
  std::string url_;
};

// A schema of its own in the server's database, selected through the
// connection's search_path.
class PostgresTestDatabase final : public TestDatabase {
 public:
  explicit PostgresTestDatabase(std::string base) : base_(std::move(base)) {
    schema_ = "t_" + RandomSuffix();
    Admin("CREATE SCHEMA " + schema_);
    url_ = base_ + (base_.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" +
           schema_;
  }
  ~PostgresTestDatabase() override { Admin("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE"); }
  const std::string& url() const override { return url_; }

  // Runs `sql` on a separate superuser connection.
  void Admin(const std::string& sql) {
    PGconn* conn = PQconnectdb(base_.c_str());
    ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
    PQsetNoticeProcessor(
        conn, [](void*, const char*) {}, nullptr);
    PGresult* res = PQexec(conn, sql.c_str());
    EXPECT_TRUE(PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
        << sql << ": " << PQresultErrorMessage(res);
    PQclear(res);
    PQfinish(conn);
  }

  std::string base_;
  std::string schema_;
  std::string url_;
};

constexpr const char* kTestTables[] = {
    "CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
    "score DOUBLE PRECISION, note TEXT, big BIGINT, CHECK (score IS NULL OR score >= -1000))",
    "CREATE TABLE parts (id INTEGER PRIMARY KEY, "
    "thing_id INTEGER NOT NULL REFERENCES things(id), label TEXT)",
};

class StoreConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (is_postgres()) {
      const char* url = std::getenv("LATHE_TEST_POSTGRES_URL");
      if (url == nullptr || url[0] == '\0') {
        GTEST_SKIP() << "PostgreSQL driver not tested: set LATHE_TEST_POSTGRES_URL "
                        "(e.g. from `scripts/pg.sh start DIR`)";
      }
    }
    db_ = MakeDatabase();
    store_ = Open();
    ASSERT_NE(store_, nullptr);
    ASSERT_TRUE(RunInTx(*store_, TxMode::kWrite, [](Tx& tx) -> Status {
                  for (const char* sql : kTestTables) RETURN_IF_ERROR(tx.Exec(sql).status());
                  return OkStatus();
                }).ok());
  }

  bool is_postgres() const { return GetParam() == "postgres"; }

  std::unique_ptr<TestDatabase> MakeDatabase() const {
    if (is_postgres()) {
      return std::make_unique<PostgresTestDatabase>(std::getenv("LATHE_TEST_POSTGRES_URL"));
    }
    return std::make_unique<SqliteTestDatabase>();
  }

  StatusOr<std::unique_ptr<Store>> TryOpen(const std::string& url, int pool_size = 4,
                                           int busy_timeout_ms = 5000) {
    StoreOptions options;
    options.url = url;
    options.pool_size = pool_size;
    options.busy_timeout_ms = busy_timeout_ms;
    return OpenStore(options);
  }

  std::unique_ptr<Store> Open(int pool_size = 4) {
    StatusOr<std::unique_ptr<Store>> store = TryOpen(db_->url(), pool_size);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // The single value of a one-row, one-column query in a read transaction.
  Value Scalar(const std::string& sql, const std::vector<Value>& params = {}) {
    auto tx = store_->Begin(TxMode::kRead);
    EXPECT_TRUE(tx.ok()) << tx.status().ToString();
    if (!tx.ok()) return Null();
    auto rows = (*tx)->Query(sql, params);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    if (!rows.ok() || rows->size() != 1 || rows->rows[0].size() != 1) {
      ADD_FAILURE() << "expected one cell from " << sql;
      return Null();
    }
    return rows->rows[0][0];
  }

  int64_t CountThings() { return AsInt(Scalar("SELECT COUNT(*) FROM things")); }

  Status InsertThing(Tx& tx, int64_t id, const std::string& name) {
    return tx.Exec("INSERT INTO things (id, name) VALUES (?, ?)", {Value(id), Value(name)})
        .status();
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<Store> store_;
};

// ---- migrations ----------------------------------------------------------

TEST_P(StoreConformance, MigrationsApplyAndAreIdempotentOnReopen) {
  const int latest = SchemaMigrations().back().version;
  StatusOr<int> version = CurrentSchemaVersion(*store_);
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  EXPECT_EQ(*version, latest);
  EXPECT_EQ(AsInt(Scalar("SELECT COUNT(*) FROM schema_migrations")),
            static_cast<int64_t>(SchemaMigrations().size()));
  EXPECT_EQ(AsInt(Scalar("SELECT COUNT(*) FROM users")), 0);
  EXPECT_GT(AsInt(Scalar("SELECT MIN(applied_at) FROM schema_migrations")), 1'600'000'000'000'000);

  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_TRUE(ApplyMigrations(*store_, SchemaMigrations()).ok());
  EXPECT_EQ(*CurrentSchemaVersion(*store_), latest);
  EXPECT_EQ(AsInt(Scalar("SELECT COUNT(*) FROM schema_migrations")),
            static_cast<int64_t>(SchemaMigrations().size()));
}

TEST_P(StoreConformance, NewMigrationAppliesOnlyWhatIsMissing) {
  std::vector<Migration> migrations = SchemaMigrations();
  const int next = migrations.back().version + 1;
  migrations.push_back({next, "extra tables",
                        "CREATE TABLE extra (x INTEGER DEFAULT 1); -- a comment; with ';'\n"
                        "CREATE TABLE extra2 (y TEXT NOT NULL DEFAULT 'a;b')",
                        ""});
  ASSERT_TRUE(ApplyMigrations(*store_, migrations).ok());
  EXPECT_EQ(*CurrentSchemaVersion(*store_), next);
  ASSERT_TRUE(RunInTx(*store_, TxMode::kWrite, [](Tx& tx) {
                return tx.Exec("INSERT INTO extra2 DEFAULT VALUES").status();
              }).ok());
  EXPECT_EQ(AsText(Scalar("SELECT y FROM extra2")), "a;b");
  EXPECT_TRUE(ApplyMigrations(*store_, migrations).ok());
  EXPECT_EQ(AsInt(Scalar("SELECT COUNT(*) FROM schema_migrations")),
            static_cast<int64_t>(migrations.size()));
}

TEST_P(StoreConformance, FailedMigrationLeavesNoTrace) {
  std::vector<Migration> migrations = SchemaMigrations();
  const int before = migrations.back().version;
  migrations.push_back(
      {before + 1, "broken", "CREATE TABLE half_done (x INTEGER); CREATE TABLEX nonsense", ""});
  Status status = ApplyMigrations(*store_, migrations);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("broken"), std::string::npos) << status.ToString();
  EXPECT_EQ(*CurrentSchemaVersion(*store_), before);
  auto tx = store_->Begin(TxMode::kRead);
  ASSERT_TRUE(tx.ok());
  EXPECT_FALSE((*tx)->Query("SELECT COUNT(*) FROM half_done").ok())
      << "DDL of a failed migration must roll back with it";
}

TEST_P(StoreConformance, NewerSchemaIsRefused) {
  ASSERT_TRUE(RunInTx(*store_, TxMode::kWrite, [](Tx& tx) {
                return tx
                    .Exec(
                        "INSERT INTO schema_migrations (version, name, applied_at) "
                        "VALUES (999, 'from the future', 0)")
                    .status();
              }).ok());
  store_.reset();
  StatusOr<std::unique_ptr<Store>> reopened = TryOpen(db_->url());
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), StatusCode::kFailedPrecondition);
  const std::string& message = reopened.status().message();
  EXPECT_NE(message.find("version 999"), std::string::npos) << message;
  EXPECT_NE(message.find("versions up to " + std::to_string(SchemaMigrations().back().version)),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("upgrade lathe"), std::string::npos) << message;
}

TEST_P(StoreConformance, ConcurrentStartsMigrateOnce) {
  std::unique_ptr<TestDatabase> fresh = MakeDatabase();
  constexpr int kOpeners = 4;
  std::vector<std::thread> threads;
  std::vector<Status> results(kOpeners);
  std::vector<std::unique_ptr<Store>> stores(kOpeners);
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      auto s = TryOpen(fresh->url());
      results[i] = s.status();
      if (s.ok()) stores[i] = std::move(s).value();
    });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
  ASSERT_NE(stores[0], nullptr);
  auto tx = stores[0]->Begin(TxMode::kRead);
  ASSERT_TRUE(tx.ok());
  auto rows = (*tx)->Query("SELECT COUNT(*), MAX(version) FROM schema_migrations");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(AsInt(rows->rows[0][0]), static_cast<int64_t>(SchemaMigrations().size()));
  EXPECT_EQ(AsInt(rows->rows[0][1]), SchemaMigrations().back().version);
}

// ---- values and statements ------------------------------------------------

TEST_P(StoreConformance, EveryValueTypeRoundTrips) {
  const std::string tricky = "it's \"quoted\"; -- not a comment ? /* nor this */ héllo 世界 🚀";
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  ASSERT_TRUE(RunInTx(*store_, TxMode::kWrite, [&](Tx& tx) -> Status {
                RETURN_IF_ERROR(tx.Exec("INSERT INTO things (id, name, score, note, big) "
                                        "VALUES (?, ?, ?, ?, ?)",
                                        {Value(int64_t{1}), Value(tricky), Value(3.25),
                                         Value(std::string("?")), Value(kMax)})
                                    .status());
                RETURN_IF_ERROR(tx.Exec("INSERT INTO things (id, name, score, note, big) "
                                        "VALUES (?, ?, ?, ?, ?)",
                                        {Value(int64_t{2}), Value(std::string("")), Value(-1e-300),
                                         Null(), Value(kMin)})
                                    .status());
                return tx
                    .Exec(
                        "INSERT INTO things (id, name, score, note, big) "
                        "VALUES (?, ?, ?, ?, ?)",
                        {Value(int64_t{3}), Value(std::string("nulls")), Null(), Null(), Null()})
                    .status();
              }).ok());

  auto tx = store_->Begin(TxMode::kRead);
  ASSERT_TRUE(tx.ok());
  auto rows = (*tx)->Query("SELECT id, name, score, note, big FROM things ORDER BY id");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ(rows->columns, (std::vector<std::string>{"id", "name", "score", "note", "big"}));
  const auto& r1 = rows->rows[0];
  EXPECT_EQ(std::get<int64_t>(r1[0]), 1);
  EXPECT_EQ(std::get<std::string>(r1[1]), tricky);
  EXPECT_EQ(std::get<double>(r1[2]), 3.25);
  EXPECT_EQ(std::get<std::string>(r1[3]), "?");
  EXPECT_EQ(std::get<int64_t>(r1[4]), kMax);
  const auto& r2 = rows->rows[1];
  EXPECT_EQ(AsText(r2[1]), "");
  EXPECT_FALSE(IsNull(r2[1]));
  EXPECT_EQ(std::get<double>(r2[2]), -1e-300);
  EXPECT_TRUE(IsNull(r2[3]));
  EXPECT_EQ(std::get<int64_t>(r2[4]), kMin);
  const auto& r3 = rows->rows[2];
  EXPECT_TRUE(IsNull(r3[2]));
  EXPECT_TRUE(IsNull(r3[4]));
  EXPECT_EQ(AsInt(r3[4]), 0);
  EXPECT_EQ(AsDouble(r3[2]), 0.0);
  EXPECT_EQ(AsText(r3[3]), "");

  // Parameters compare by value, including text equal to the tricky one.
  auto found = (*tx)->Query("SELECT id FROM things WHERE name = ?", {Value(tricky)});
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(AsInt(found->rows[0][0]), 1);
  // Integer and real parameters come back as they went in.
  auto echo = (*tx)->Query("SELECT ? + 1, ? * 2", {Value(int64_t{41}), Value(1.5)});
  ASSERT_TRUE(echo.ok()) << echo.status().ToString();
  EXPECT_EQ(std::get<int64_t>(echo->rows[0][0]), 42);
  EXPECT_EQ(std::get<double>(echo->rows[0][1]), 3.0);
}

TEST_P(StoreConformance, UpdateAndDeleteReportRowsChanged) {
  ASSERT_TRUE(RunInTx(*store_, TxMode::kWrite, [&](Tx& tx) -> Status {
                for (int64_t i = 1; i <= 5; ++i) {
                  RETURN_IF_ERROR(InsertThing(tx, i, "n" + std::to_string(i)));
                }
                return OkStatus();
              }).ok());
  auto tx = store_->Begin(TxMode::kWrite);
  ASSERT_TRUE(tx.ok());
  auto updated =
      (*tx)->Exec("UPDATE things SET score = ? WHERE id <= ?", {Value(1.5), Value(int64_t{3})});
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(*updated, 3);
  auto selected = (*tx)->Exec("SELECT * FROM things");
  ASSERT_TRUE(selected.ok());
  EXPECT_EQ(*selected, 0) << "a SELECT changes nothing";
  auto deleted = (*tx)->Exec("DELETE FROM things WHERE id > ?", {Value(int64_t{4})});
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 1);
  auto none = (*tx)->Exec("DELETE FROM things WHERE id > 100");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);
  ASSERT_TRUE((*tx)->Commit().ok());
  EXPECT_EQ(CountThings(), 4);
}

TEST_P(StoreConformance, QuestionMarksInsideLiteralsAreNotPlaceholders) {
  ASSERT_TRUE(RunInTx(*store_, TxMode::kWrite, [](Tx& tx) {
                return tx
                    .Exec(
                        "INSERT INTO things (id, name, note) /* ? */ "
                        "VALUES (?, 'what?', 'it''s ? here') -- trailing ?",
                        {Value(int64_t{7})})
                    .status();
              }).ok());
  auto tx = store_->Begin(TxMode::kRead);
  ASSERT_TRUE(tx.ok());
  auto rows = (*tx)->Query(
      "SELECT note, \"name\" FROM things WHERE name = 'what?' AND id = ? AND note <> '?'",
      {Value(int64_t{7})});
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(AsText(rows->rows[0][0]), "it's ? here");
  EXPECT_EQ(AsText(rows->rows[0][1]), "what?");
}

TEST_P(StoreConformance, MalformedCallsAreInvalidArgument) {
  {
    auto tx = store_->Begin(TxMode::kWrite);
    ASSERT_TRUE(tx.ok());
    auto too_few = (*tx)->Exec("INSERT INTO things (id, name) VALUES (?, ?)", {Value(int64_t{1})});
    EXPECT_EQ(too_few.status().code(), StatusCode::kInvalidArgument) << too_few.status().ToString();
  }
  {
    auto tx = store_->Begin(TxMode::kWrite);
    ASSERT_TRUE(tx.ok());
    auto two = (*tx)->Exec("DELETE FROM things; DELETE FROM parts");
    EXPECT_EQ(two.status().code(), StatusCode::kInvalidArgument) << two.status().ToString();
  }
  {
    auto tx = store_->Begin(TxMode::kWrite);
    ASSERT_TRUE(tx.ok());
    auto empty = (*tx)->Exec("  ; ");
    EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument) << empty.status().ToString();
  }
  {
    auto tx = store_->Begin(TxMode::kWrite);
    ASSERT_TRUE(tx.ok());
    EXPECT_TRUE((*tx)->Exec("DELETE FROM things;  -- one statement, trailing trivia").ok());
  }
}

TEST_P(StoreConformance, ReturningGivesTheWrittenRow) {
  auto tx = store_->Begin(TxMode::kWrite);
  ASSERT_TRUE(tx.ok());
  auto rows = (*tx)->Query(
      "INSERT INTO things (id, name, score) VALUES (?, ?, ?) RETURNING id, name, score",
      {Value(int64_t{10}), Value(std::string("ten")), Value(10.5)});
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(AsInt(rows->rows[0][0]), 10);
  EXPECT_EQ(AsText(rows->rows[0][1]), "ten");
  EXPECT_EQ(AsDouble(rows->rows[0][2]), 10.5);
  auto upserted = (*tx)->Query(
      "INSERT INTO things (id, name) VALUES (?, ?) "
      "ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING name",
      {Value(int64_t{10}), Value(std::string("TEN"))});
  ASSERT_TRUE(upserted.ok()) << upserted.status().ToString();
  EXPECT_EQ(AsText(upserted->rows[0][0]), "TEN");
  ASSERT_TRUE((*tx)->Commit().ok());
}

// ---- errors ---------------------------------------------------------------

TEST_P(StoreConformance, UniqueViolationIsAlreadyExists) {
  ASSERT_TRUE(
      RunInTx(*store_, TxMode::kWrite, [&](Tx& tx) { return InsertThing(tx, 1, "one"); }).ok());
  Status same_name =
      RunInTx(*store_, TxMode::kWrite, [&](Tx& tx) { return InsertThing(tx, 2, "one"); });
  EXPECT_EQ(same_name.code(), StatusCode::kAlreadyExists) << same_name.ToString();
  Status same_key =
      RunInTx(*store_, TxMode::kWrite, [&](Tx& tx) { return InsertThing(tx, 1, "uno"); });
  EXPECT_EQ(same_key.code(), StatusCode::kAlreadyExists) << same_key.ToString();
  EXPECT_EQ(CountThings(), 1);
}

TEST_P(StoreConformance, ForeignKeyViolationIsFailedPrecondition) {
  Status status = RunInTx(*store_, TxMode::kWrite, [](Tx& tx) {
    return tx.Exec("INSERT INTO parts (id, thing_id) VALUES (1, 42)").status();
  });
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
  ASSERT_TRUE(
      RunInTx(*store_, TxMode::kWrite, [&](Tx& tx) { return InsertThing(tx, 42, "x"); }).ok());
  ASSERT_TRUE(RunInTx(*store_, TxMode::kWrite, [](Tx& tx) {
                return tx.Exec("INSERT INTO parts (id, thing_id) VALUES (1, 42)").status();
              }).ok());
  Status delete_parent = RunInTx(*store_, TxMode::kWrite, [](Tx& tx) {
    return tx.Exec("DELETE FROM things WHERE id = 42").status();
  });
  EXPECT_EQ(delete_parent.code(), StatusCode::kFailedPrecondition) << delete_parent.ToString();
}

TEST_P(StoreConformance, NotNullAndCheckViolationsAreFailedPrecondition) {
  Status not_null = RunInTx(*store_, TxMode::kWrite, [](Tx& tx) {
    return tx.Exec("INSERT INTO things (id, name) VALUES (?, ?)", {Value(int64_t{1}), Null()})
        .status();
  });
  EXPECT_EQ(not_null.code(), StatusCode::kFailedPrecondition) << not_null.ToString();
  Status check = RunInTx(*store_, TxMode::kWrite, [](Tx& tx) {
    return tx.Exec("INSERT INTO things (id, name, score) VALUES (1, 'a', -5000)").status();
  });
  EXPECT_EQ(check.code(), StatusCode::kFailedPrecondition) << check.ToString();
}

TEST_P(StoreConformance, FailedStatementPoisonsTheTransaction) {
  ASSERT_TRUE(
      RunInTx(*store_, TxMode::kWrite, [&](Tx& tx) { return InsertThing(tx, 1, "one"); }).ok());
  auto tx = store_->Begin(TxMode::kWrite);
  ASSERT_TRUE(tx.ok());
  ASSERT_TRUE(InsertThing(**tx, 2, "two").ok());
  Status dup = InsertThing(**tx, 3, "one");
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists);
  Status after = InsertThing(**tx, 4, "four");
  EXPECT_EQ(after.code(), StatusCode::kAlreadyExists) << "later statements repeat the first error";
  Status commit = (*tx)->Commit();
  EXPECT_EQ(commit.code(), StatusCode::kAlreadyExists) << commit.ToString();
  tx->reset();
  EXPECT_EQ(CountThings(), 1) << "nothing of the poisoned transaction is kept";
}

TEST_P(StoreConformance, SyntaxErrorIsInternal) {
  auto tx = store_->Begin(TxMode::kRead);
  ASSERT_TRUE(tx.ok());
  auto rows = (*tx)->Query("SELEC 1");
  EXPECT_EQ(rows.status().code(), StatusCode::kInternal) << rows.status().ToString();
  EXPECT_FALSE(rows.status().message().empty());
}

// ---- transactions -----------------------------------------------------------

TEST_P(StoreConformance, TxDestroyedWithoutCommitRollsBack) {
  {
    auto tx = store_->Begin(TxMode::kWrite);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(InsertThing(**tx, 1, "one").ok());
  }
  EXPECT_EQ(CountThings(), 0);
  // The connection is usable afterwards.
  ASSERT_TRUE(
      RunInTx(*store_, TxMode::kWrite, [&](Tx& tx) { return InsertThing(tx, 1, "one"); }).ok());
  EXPECT_EQ(CountThings(), 1);
}

TEST_P(StoreConformance, UseAfterCommitFails) {
  auto tx = store_->Begin(TxMode::kWrite);
  ASSERT_TRUE(tx.ok());
  ASSERT_TRUE((*tx)->Commit().ok());
  EXPECT_FALSE((*tx)->Exec("DELETE FROM things").ok());
  EXPECT_FALSE((*tx)->Commit().ok());
}

TEST_P(StoreConformance, ReadTxCannotWrite) {
  auto tx = store_->Begin(TxMode::kRead);
  ASSERT_TRUE(tx.ok());
  Status status = InsertThing(**tx, 1, "one");
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
  tx->reset();
  EXPECT_EQ(CountThings(), 0);
}

TEST_P(StoreConformance, ReadTxSeesOneSnapshot) {
  ASSERT_TRUE(
      RunInTx(*store_, TxMode::kWrite, [&](Tx& tx) { return InsertThing(tx, 1, "one"); }).ok());
  auto reader = store_->Begin(TxMode::kRead);
  ASSERT_TRUE(reader.ok());
  auto before = (*reader)->Query("SELECT COUNT(*) FROM things");
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(
      RunInTx(*store_, TxMode::kWrite, [&](Tx& tx) { return InsertThing(tx, 2, "two"); }).ok());
  auto after = (*reader)->Query("SELECT COUNT(*) FROM things");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(AsInt(before->rows[0][0]), 1);
  EXPECT_EQ(AsInt(after->rows[0][0]), 1) << "a read transaction keeps its snapshot";
  ASSERT_TRUE((*reader)->Commit().ok());
  EXPECT_EQ(CountThings(), 2);
}

TEST_P(StoreConformance, ConcurrentWritersAndReadersAllSucceed) {
  store_.reset();
  store_ = Open(/*pool_size=*/2);
  ASSERT_NE(store_, nullptr);
  constexpr int kWriters = 8;
  constexpr int kInsertsEach = 200;
  constexpr int kReaders = 4;
  std::atomic<int> failures{0};
  std::atomic<bool> writing{true};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kInsertsEach; ++i) {
        int64_t id = int64_t{w} * kInsertsEach + i;
        Status s = RunInTx(*store_, TxMode::kWrite,
                           [&](Tx& tx) { return InsertThing(tx, id, "t" + std::to_string(id)); });
        if (!s.ok()) {
          ++failures;
          ADD_FAILURE() << s.ToString();
        }
      }
    });
  }
  std::atomic<int64_t> reads{0};
  for (int r = 0; r < kReaders; ++r) {  // more readers than pooled connections
    threads.emplace_back([&] {
      int64_t last = 0;
      while (writing.load()) {
        Status s = RunInTx(*store_, TxMode::kRead, [&](Tx& tx) -> Status {
          ASSIGN_OR_RETURN(ResultSet rows, tx.Query("SELECT COUNT(*) FROM things"));
          int64_t n = AsInt(rows.rows[0][0]);
          if (n < last) return InternalError("count went backwards");
          last = n;
          return OkStatus();
        });
        if (!s.ok()) {
          ++failures;
          ADD_FAILURE() << s.ToString();
        }
        ++reads;
      }
    });
  }
  for (int w = 0; w < kWriters; ++w) threads[w].join();
  writing = false;
  for (size_t i = kWriters; i < threads.size(); ++i) threads[i].join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(CountThings(), kWriters * kInsertsEach);
  StoreStats stats = store_->stats();
  EXPECT_GE(stats.transactions, kWriters * kInsertsEach);
  EXPECT_GE(stats.statements, kWriters * kInsertsEach);
}

TEST_P(StoreConformance, RunInTxRetriesAborted) {
  int calls = 0;
  Status status = RunInTx(*store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ++calls;
    RETURN_IF_ERROR(InsertThing(tx, 1, "one"));
    if (calls < 3) return AbortedError("simulated contention");
    return OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(CountThings(), 1) << "aborted attempts rolled back";

  calls = 0;
  status = RunInTx(*store_, TxMode::kWrite, [&](Tx&) {
    ++calls;
    return AbortedError("always");
  });
  EXPECT_EQ(status.code(), StatusCode::kAborted);
  EXPECT_EQ(calls, 6) << "one attempt and five retries";

  calls = 0;
  status = RunInTx(*store_, TxMode::kWrite, [&](Tx&) {
    ++calls;
    return NotFoundError("not retryable");
  });
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_EQ(calls, 1);
}

TEST_P(StoreConformance, LockContentionIsAborted) {
  ASSERT_TRUE(
      RunInTx(*store_, TxMode::kWrite, [&](Tx& tx) { return InsertThing(tx, 1, "one"); }).ok());
  auto holder = store_->Begin(TxMode::kWrite);
  ASSERT_TRUE(holder.ok());
  ASSERT_TRUE((*holder)->Exec("UPDATE things SET score = 1 WHERE id = 1").ok());
  Status status;
  if (is_postgres()) {
    // Another connection of the pool waits on the row lock, then gives up.
    auto waiter = store_->Begin(TxMode::kWrite);
    ASSERT_TRUE(waiter.ok());
    ASSERT_TRUE((*waiter)->Exec("SET LOCAL lock_timeout = '50ms'").ok());
    status = (*waiter)->Exec("UPDATE things SET score = 2 WHERE id = 1").status();
  } else {
    // Another process (here: a second store on the same file) cannot get
    // the write lock within its busy timeout.
    auto other = TryOpen(db_->url(), 1, /*busy_timeout_ms=*/50);
    ASSERT_TRUE(other.ok()) << other.status().ToString();
    status = (*other)->Begin(TxMode::kWrite).status();
  }
  EXPECT_EQ(status.code(), StatusCode::kAborted) << status.ToString();
}

TEST_P(StoreConformance, BrokenPooledConnectionIsReplaced) {
  if (!is_postgres()) GTEST_SKIP() << "PostgreSQL only: SQLite has no server connection";
  store_.reset();
  store_ = Open(/*pool_size=*/1);
  ASSERT_NE(store_, nullptr);
  int64_t pid = 0;
  ASSERT_TRUE(RunInTx(*store_, TxMode::kRead, [&](Tx& tx) -> Status {
                ASSIGN_OR_RETURN(ResultSet rows, tx.Query("SELECT pg_backend_pid()"));
                pid = AsInt(rows.rows[0][0]);
                return OkStatus();
              }).ok());
  static_cast<PostgresTestDatabase*>(db_.get())->Admin("SELECT pg_terminate_backend(" +
                                                       std::to_string(pid) + ")");
  Status status =
      RunInTx(*store_, TxMode::kWrite, [&](Tx& tx) { return InsertThing(tx, 1, "after"); });
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(CountThings(), 1);
}

// ---- durability ---------------------------------------------------------------

TEST_P(StoreConformance, CommitIsDurableAcrossReopen) {
  ASSERT_TRUE(
      RunInTx(*store_, TxMode::kWrite, [&](Tx& tx) { return InsertThing(tx, 1, "kept"); }).ok());
  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(AsText(Scalar("SELECT name FROM things WHERE id = 1")), "kept");
}

TEST_P(StoreConformance, AcknowledgedCommitSurvivesKill9) {
  store_.reset();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child commits, then dies without any cleanup.
    StoreOptions options;
    options.url = db_->url();
    auto store = OpenStore(options);
    if (!store.ok()) _exit(2);
    Status s =
        RunInTx(**store, TxMode::kWrite, [&](Tx& tx) { return InsertThing(tx, 5, "acked"); });
    if (!s.ok()) _exit(3);
    kill(getpid(), SIGKILL);
    _exit(4);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited with " << WEXITSTATUS(wstatus);
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(AsText(Scalar("SELECT name FROM things WHERE id = 5")), "acked");
}

INSTANTIATE_TEST_SUITE_P(Drivers, StoreConformance, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// ---- driver-specific and pure pieces --------------------------------------------

TEST(SqliteStore, IsWalWithFullSyncAndForeignKeysOnEveryConnection) {
  SqliteTestDatabase db;
  StoreOptions options;
  options.url = db.url();
  auto store = OpenStore(options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (TxMode mode : {TxMode::kWrite, TxMode::kRead}) {
    auto tx = (*store)->Begin(mode);
    ASSERT_TRUE(tx.ok());
    auto journal = (*tx)->Query("PRAGMA journal_mode");
    ASSERT_TRUE(journal.ok());
    EXPECT_EQ(AsText(journal->rows[0][0]), "wal");
    auto sync = (*tx)->Query("PRAGMA synchronous");
    ASSERT_TRUE(sync.ok());
    EXPECT_EQ(AsInt(sync->rows[0][0]), 2) << "2 = FULL";
    auto fk = (*tx)->Query("PRAGMA foreign_keys");
    ASSERT_TRUE(fk.ok());
    EXPECT_EQ(AsInt(fk->rows[0][0]), 1);
  }
}

TEST(OpenStore, AcceptsSqliteUrlsAndPlainPaths) {
  auto dir = std::filesystem::temp_directory_path() / ("lathe_open_test_" + RandomSuffix());
  for (const std::string& url :
       {"sqlite://" + (dir / "a" / "x.db").string(), (dir / "b" / "y.db").string()}) {
    StoreOptions options;
    options.url = url;
    auto store = OpenStore(options);
    ASSERT_TRUE(store.ok()) << url << ": " << store.status().ToString();
    EXPECT_EQ((*store)->driver(), "sqlite");
  }
  EXPECT_TRUE(std::filesystem::exists(dir / "a" / "x.db"));
  EXPECT_TRUE(std::filesystem::exists(dir / "b" / "y.db"));
  std::filesystem::remove_all(dir);
}

TEST(OpenStore, UnknownSchemeIsInvalidArgumentNamingStore) {
  for (const char* url : {"mysql://root@localhost/db", ""}) {
    StoreOptions options;
    options.url = url;
    auto store = OpenStore(options);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument) << url;
    EXPECT_EQ(store.status().field(), "store") << url;
  }
}

TEST(OpenStore, UnreachablePostgresIsUnavailable) {
  StoreOptions options;
  options.url = "postgres://postgres@127.0.0.1:1/nothing?connect_timeout=2";
  auto store = OpenStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable) << store.status().ToString();
}

TEST(PostgresPlaceholders, TranslatesOnlyTopLevelQuestionMarks) {
  TranslatedSql t = TranslatePlaceholders(
      "SELECT ?, 'a?''?', \"we?rd\", $$ ? $$, $x$ ? $x$ -- ?\n FROM t WHERE a = ? /* ? */");
  EXPECT_EQ(t.sql,
            "SELECT $1, 'a?''?', \"we?rd\", $$ ? $$, $x$ ? $x$ -- ?\n FROM t WHERE a = $2 /* ? */");
  EXPECT_EQ(t.params, 2);
  EXPECT_FALSE(t.empty);
  EXPECT_FALSE(t.multiple_statements);
  EXPECT_EQ(TranslatePlaceholders("INSERT INTO t VALUES (?, ?, ?)").sql,
            "INSERT INTO t VALUES ($1, $2, $3)");
  EXPECT_TRUE(TranslatePlaceholders("SELECT 1; SELECT 2").multiple_statements);
  EXPECT_FALSE(TranslatePlaceholders("SELECT 1; -- done\n").multiple_statements);
  EXPECT_TRUE(TranslatePlaceholders(" ; -- nothing\n").empty);
}

TEST(SplitSqlStatements, SplitsOnTopLevelSemicolonsOnly) {
  std::vector<std::string> parts = SplitSqlStatements(
      "CREATE TABLE a (x TEXT DEFAULT ';');\n"
      "-- comment; here\n"
      "CREATE TABLE \"b;c\" (y INTEGER); /* ; */\n"
      "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;;\n");
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], "CREATE TABLE a (x TEXT DEFAULT ';')");
  EXPECT_EQ(parts[1], "-- comment; here\nCREATE TABLE \"b;c\" (y INTEGER)");
  EXPECT_EQ(parts[2], "/* ; */\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql");
  EXPECT_TRUE(SplitSqlStatements(" ;\n ; ").empty());
}

}  // namespace
}  // namespace lathe::store
