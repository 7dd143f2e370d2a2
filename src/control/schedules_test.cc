// ScheduleService and ScheduleController against SQLite (a temp directory
// per test) and, when LATHE_TEST_POSTGRES_URL is set, PostgreSQL (a fresh
// schema per test). Time is a FakeClock; runs do not execute: a test ends
// a run by writing its state, as the pipeline controller would.
#include "control/schedules.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "base/timezone.h"
#include "base/yaml.h"
#include "control/pipelines.h"

namespace lathe::control {
namespace {

using store::AsInt;
using store::AsText;
using tenancy::Principal;
using tenancy::Role;

std::string RandomSuffix() {
  static std::mt19937_64 rng(std::random_device{}());
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  char buf[17];
  snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

void PgAdmin(const std::string& base, const std::string& sql) {
  PGconn* conn = PQconnectdb(base.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  PGresult* res = PQexec(conn, sql.c_str());
  EXPECT_TRUE(PQresultStatus(res) == PGRES_COMMAND_OK) << sql << ": " << PQresultErrorMessage(res);
  PQclear(res);
  PQfinish(conn);
}

int64_t T(const std::string& rfc3339) {
  auto t = spec::ParseRfc3339(rfc3339, "t");
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? *t : 0;
}

constexpr int64_t kMinute = 60'000'000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;

// A pipeline that receives the three time params, and one that declares none.
constexpr const char* kTimedPipeline = R"(
name: etl
params:
  - {name: scheduled_time, type: string, default: ""}
  - {name: data_interval_start, type: string, default: ""}
  - {name: data_interval_end, type: string, default: ""}
  - {name: lr, type: float, default: 0.1}
steps:
  - name: main
    command: ["true"]
)";
constexpr const char* kPlainPipeline = R"(
name: plain
params:
  - {name: lr, type: float, default: 0.1}
steps:
  - name: main
    command: ["true"]
)";

// A store whose n-th write commit (counting from 1) fails without writing
// anything, as a server killed just before that commit would.
class CrashingStore final : public store::Store {
 public:
  CrashingStore(store::Store& base, int fail_at) : base_(base), fail_at_(fail_at) {}
  StatusOr<std::unique_ptr<store::Tx>> Begin(store::TxMode mode) override {
    ASSIGN_OR_RETURN(std::unique_ptr<store::Tx> tx, base_.Begin(mode));
    if (mode == store::TxMode::kRead) return tx;
    return std::unique_ptr<store::Tx>(std::make_unique<CrashingTx>(std::move(tx), *this));
  }
  std::string_view driver() const override { return base_.driver(); }
  Status ExecScript(std::string_view sql) override { return base_.ExecScript(sql); }

 private:
  class CrashingTx final : public store::Tx {
   public:
    CrashingTx(std::unique_ptr<store::Tx> tx, CrashingStore& owner)
        : tx_(std::move(tx)), owner_(owner) {}
    StatusOr<store::ResultSet> Query(std::string_view sql,
                                     const std::vector<store::Value>& params) override {
      return tx_->Query(sql, params);
    }
    StatusOr<int64_t> Exec(std::string_view sql, const std::vector<store::Value>& params) override {
      return tx_->Exec(sql, params);
    }
    Status Commit() override {
      if (++owner_.commits_ == owner_.fail_at_) {
        tx_.reset();  // rolled back
        return UnavailableError("killed before this commit");
      }
      return tx_->Commit();
    }

   private:
    std::unique_ptr<store::Tx> tx_;
    CrashingStore& owner_;
  };

  store::Store& base_;
  int fail_at_;
  int commits_ = 0;
};

struct ScheduledRun {
  std::string id;
  int64_t scheduled_time = 0;
  std::string state;
  bool cancel_requested = false;
  JsonValue params;
};

class SchedulesTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string url;
    if (GetParam() == "postgres") {
      const char* base = std::getenv("LATHE_TEST_POSTGRES_URL");
      if (base == nullptr || base[0] == '\0') {
        GTEST_SKIP() << "PostgreSQL not tested: set LATHE_TEST_POSTGRES_URL";
      }
      pg_base_ = base;
      schema_ = "s_" + RandomSuffix();
      PgAdmin(pg_base_, "CREATE SCHEMA " + schema_);
      url = pg_base_ + (pg_base_.find('?') == std::string::npos ? "?" : "&") +
            "options=-csearch_path%3D" + schema_;
    } else {
      dir_ = std::filesystem::temp_directory_path() / ("lathe_schedules_test_" + RandomSuffix());
      url = "sqlite://" + (dir_ / "lathe.db").string();
    }
    auto s = store::OpenStore({.url = url, .pool_size = 8});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    clock_.Set(T("2026-01-01T00:30:00Z"));
    tenancy_ = std::make_unique<tenancy::TenancyService>(*store_, clock_, 0);
    std::string token;
    ASSERT_TRUE(tenancy_
                    ->Bootstrap([&](const std::string& t) {
                      token = t;
                      return OkStatus();
                    })
                    .ok());
    admin_ = *tenancy_->Authenticate(token);
    ASSERT_TRUE(tenancy_->CreateProject(admin_, "ml", "").ok());
    pipelines_ = std::make_unique<PipelineService>(*store_, *tenancy_, clock_);
    ASSERT_TRUE(pipelines_->Create(admin_, "ml", Yaml(kTimedPipeline), "").ok());
    ASSERT_TRUE(pipelines_->Create(admin_, "ml", Yaml(kPlainPipeline), "").ok());
    service_ = std::make_unique<ScheduleService>(*store_, *tenancy_, clock_, Zones());
    NewController();
  }
  void TearDown() override {
    controller_.reset();
    service_.reset();
    pipelines_.reset();
    tenancy_.reset();
    store_.reset();
    if (!schema_.empty()) PgAdmin(pg_base_, "DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  static spec::ZoneLoader Zones() {
    return [](const std::string& name) { return LoadTimeZone(name); };
  }
  static JsonValue Yaml(const std::string& text) {
    auto v = ParseYaml(text);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : JsonValue();
  }

  // A controller on the same store: building a new one is a server restart.
  void NewController(size_t max_ticks_per_pass = 100) {
    controller_.reset();
    ScheduleControllerOptions o;
    o.max_ticks_per_pass = max_ticks_per_pass;
    o.poke_pipelines = [this] { ++pokes_; };
    controller_ = std::make_unique<ScheduleController>(*store_, clock_, Zones(), o);
  }
  void Pass() {
    Status st = controller_->RunPass();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  ScheduleRecord Put(const std::string& yaml) {
    auto s = service_->Put(admin_, "ml", Yaml(yaml), false);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : ScheduleRecord{};
  }

  std::vector<ScheduledRun> Runs(const std::string& schedule_id) {
    std::vector<ScheduledRun> out;
    Status st = store::RunInTx(*store_, store::TxMode::kRead, [&](store::Tx& tx) -> Status {
      out.clear();
      ASSIGN_OR_RETURN(store::ResultSet rs,
                       tx.Query("SELECT id, scheduled_time, state, cancel_requested, params FROM "
                                "pipeline_runs WHERE schedule_id = ? ORDER BY scheduled_time, "
                                "created_at, id",
                                {schedule_id}));
      for (const auto& r : rs.rows) {
        ScheduledRun run{AsText(r[0]), AsInt(r[1]), AsText(r[2]), AsInt(r[3]) != 0, {}};
        ASSIGN_OR_RETURN(run.params, ParseJson(AsText(r[4])));
        out.push_back(std::move(run));
      }
      return OkStatus();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }
  std::vector<int64_t> RunTimes(const std::string& schedule_id) {
    std::vector<int64_t> out;
    for (const ScheduledRun& r : Runs(schedule_id)) out.push_back(r.scheduled_time);
    return out;
  }
  // Ends (or restarts) a run as the pipeline controller would.
  void SetRunState(const std::string& run_id, const std::string& state) {
    Status st = store::RunInTx(*store_, store::TxMode::kWrite, [&](store::Tx& tx) -> Status {
      return tx
          .Exec("UPDATE pipeline_runs SET state = ?, finished_at = ? WHERE id = ?",
                {state, clock_.NowMicros(), run_id})
          .status();
    });
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  std::map<int64_t, TickRecord> Ticks(const std::string& name) {
    auto page = service_->Ticks(admin_, "ml", name, {.limit = 1000});
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    std::map<int64_t, TickRecord> out;
    if (page.ok()) {
      for (const TickRecord& t : page->items) out[t.tick] = t;
    }
    return out;
  }
  std::vector<int64_t> Hours(const std::string& from, int n) {
    std::vector<int64_t> out;
    for (int i = 0; i < n; ++i) out.push_back(T(from) + i * kHour);
    return out;
  }
  static std::string Param(const ScheduledRun& r, const std::string& name) {
    const JsonValue* v = r.params.Find(name);
    return v == nullptr ? "<absent>" : v->as_string();
  }

  std::filesystem::path dir_;
  std::string pg_base_, schema_;
  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<tenancy::TenancyService> tenancy_;
  std::unique_ptr<PipelineService> pipelines_;
  std::unique_ptr<ScheduleService> service_;
  std::unique_ptr<ScheduleController> controller_;
  Principal admin_;
  int pokes_ = 0;
};

INSTANTIATE_TEST_SUITE_P(Drivers, SchedulesTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

constexpr const char* kHourly = R"(
name: hourly
pipeline: etl
cron: "0 * * * *"
max_concurrency: 100
params: {lr: 0.5}
)";

TEST_P(SchedulesTest, CronTicksCreateOneRunPerTickWithTimeParams) {
  ScheduleRecord s = Put(kHourly);
  EXPECT_EQ(s.next_tick, T("2026-01-01T01:00:00Z"));
  Pass();
  EXPECT_TRUE(Runs(s.id).empty());  // nothing due at 00:30

  clock_.Set(T("2026-01-01T01:00:00Z"));
  Pass();
  Pass();  // a second pass at the same time adds nothing
  std::vector<ScheduledRun> runs = Runs(s.id);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].scheduled_time, T("2026-01-01T01:00:00Z"));
  EXPECT_EQ(runs[0].state, "pending");
  EXPECT_EQ(Param(runs[0], "scheduled_time"), "2026-01-01T01:00:00Z");
  EXPECT_EQ(Param(runs[0], "data_interval_start"), "2026-01-01T00:00:00Z");
  EXPECT_EQ(Param(runs[0], "data_interval_end"), "2026-01-01T01:00:00Z");
  EXPECT_EQ(runs[0].params.Find("lr")->as_double(), 0.5);
  EXPECT_GE(pokes_, 1);

  clock_.Set(T("2026-01-01T01:59:59Z"));
  Pass();
  EXPECT_EQ(Runs(s.id).size(), 1u);
  clock_.Set(T("2026-01-01T02:00:00Z"));
  Pass();
  EXPECT_EQ(RunTimes(s.id), Hours("2026-01-01T01:00:00Z", 2));

  auto got = service_->Get(admin_, "ml", "hourly");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->last_tick, T("2026-01-01T02:00:00Z"));
  EXPECT_EQ(got->next_tick, T("2026-01-01T03:00:00Z"));
  auto ticks = Ticks("hourly");
  ASSERT_EQ(ticks.size(), 2u);
  for (const auto& [tick, t] : ticks) {
    EXPECT_EQ(t.state, "created");
    EXPECT_EQ(t.run_state, "pending");
    EXPECT_FALSE(t.run_id.empty());
  }
}

TEST_P(SchedulesTest, ReplacingTheSpecKeepsLastTickAndHistory) {
  ScheduleRecord s = Put(std::string(kHourly) + "catchup: true\n");
  clock_.Set(T("2026-01-01T02:10:00Z"));
  Pass();
  // Every 20 minutes from now on: 02:20 is the next tick, nothing before
  // 02:00 (the last handled tick) is repeated.
  ScheduleRecord replaced = Put(R"(
name: hourly
pipeline: etl
cron: "*/20 * * * *"
catchup: true
max_concurrency: 100
)");
  EXPECT_EQ(replaced.id, s.id);
  EXPECT_EQ(replaced.last_tick, T("2026-01-01T02:00:00Z"));
  EXPECT_EQ(replaced.next_tick, T("2026-01-01T02:20:00Z"));
  clock_.Set(T("2026-01-01T03:00:00Z"));
  Pass();
  EXPECT_EQ(RunTimes(s.id),
            (std::vector<int64_t>{T("2026-01-01T01:00:00Z"), T("2026-01-01T02:00:00Z"),
                                  T("2026-01-01T02:20:00Z"), T("2026-01-01T02:40:00Z"),
                                  T("2026-01-01T03:00:00Z")}));
}

TEST_P(SchedulesTest, PipelinesThatDeclareNoTimeParamsGetNone) {
  ScheduleRecord s = Put(R"(
name: plain-hourly
pipeline: plain
cron: "@hourly"
)");
  clock_.Set(T("2026-01-01T01:00:00Z"));
  Pass();
  std::vector<ScheduledRun> runs = Runs(s.id);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(Param(runs[0], "scheduled_time"), "<absent>");
  EXPECT_EQ(runs[0].scheduled_time, T("2026-01-01T01:00:00Z"));
}

TEST_P(SchedulesTest, DowntimeWithCatchupOffRunsTheLatestTickAndRecordsTheRest) {
  ScheduleRecord s = Put(kHourly);
  clock_.Set(T("2026-01-01T05:10:00Z"));  // down through 01:00 … 05:00
  NewController();
  Pass();
  EXPECT_EQ(RunTimes(s.id), std::vector<int64_t>{T("2026-01-01T05:00:00Z")});
  auto ticks = Ticks("hourly");
  ASSERT_EQ(ticks.size(), 5u);
  for (int64_t t : Hours("2026-01-01T01:00:00Z", 4)) {
    EXPECT_EQ(ticks[t].state, "skipped");
    EXPECT_EQ(ticks[t].reason, "CatchupOff");
  }
  EXPECT_EQ(ticks[T("2026-01-01T05:00:00Z")].state, "created");
  Pass();
  EXPECT_EQ(Runs(s.id).size(), 1u);
}

TEST_P(SchedulesTest, DowntimeWithCatchupOnRunsEveryMissedTickOnceAcrossPassesAndRestarts) {
  ScheduleRecord s = Put(std::string(kHourly) + "catchup: true\n");
  clock_.Set(T("2026-01-01T10:10:00Z"));  // ten missed ticks
  NewController(/*max_ticks_per_pass=*/3);
  Pass();
  EXPECT_EQ(RunTimes(s.id), Hours("2026-01-01T01:00:00Z", 3));
  NewController(3);  // restart mid-way
  Pass();
  EXPECT_EQ(RunTimes(s.id), Hours("2026-01-01T01:00:00Z", 6));
  Pass();
  NewController(3);
  Pass();
  EXPECT_EQ(RunTimes(s.id), Hours("2026-01-01T01:00:00Z", 10));
  Pass();
  EXPECT_EQ(RunTimes(s.id), Hours("2026-01-01T01:00:00Z", 10));  // no duplicates, no gaps
  // More downtime after a restart: the next ticks follow on exactly.
  clock_.Set(T("2026-01-01T12:00:00Z"));
  NewController(3);
  Pass();
  EXPECT_EQ(RunTimes(s.id), Hours("2026-01-01T01:00:00Z", 12));
  for (const auto& [tick, t] : Ticks("hourly")) EXPECT_EQ(t.state, "created") << tick;
}

TEST_P(SchedulesTest, AKillBeforeAnyCommitNeitherRepeatsNorLosesATick) {
  for (int fail_at = 1; fail_at <= 7; ++fail_at) {
    const std::string name = "crash-" + std::to_string(fail_at);
    ScheduleRecord s = Put("name: " + name + R"(
pipeline: etl
cron: "0 * * * *"
catchup: true
max_concurrency: 100
)");
    const int64_t first = (clock_.NowMicros() / kHour + 1) * kHour;
    clock_.Advance(5 * kHour);  // from :30 to :30: five ticks
    {
      // The server runs passes until it is killed at its fail_at-th write.
      CrashingStore crashing(*store_, fail_at);
      ScheduleControllerOptions o;
      o.max_ticks_per_pass = 2;
      ScheduleController doomed(crashing, clock_, Zones(), o);
      for (int i = 0; i < 10 && doomed.RunPass().ok(); ++i) {
      }
    }
    NewController(2);
    for (int i = 0; i < 4; ++i) Pass();
    std::vector<int64_t> want;
    for (int i = 0; i < 5; ++i) want.push_back(first + i * kHour);
    EXPECT_EQ(RunTimes(s.id), want) << "killed at write " << fail_at;
    auto got = service_->Get(admin_, "ml", name);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->last_tick, want.back());
    ASSERT_TRUE(service_->Remove(admin_, "ml", name).ok());
  }
}

TEST_P(SchedulesTest, TheLoopRunsPassesWhenPoked) {
  ScheduleRecord s = Put(kHourly);
  MetricsRegistry metrics;
  ScheduleControllerOptions o;
  o.resync_interval_ms = 60'000;
  ScheduleController loop(*store_, clock_, Zones(), o, &metrics);
  loop.Start();
  clock_.Set(T("2026-01-01T01:00:00Z"));
  loop.Poke();
  for (int i = 0; i < 1000 && Runs(s.id).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  loop.Stop();
  EXPECT_EQ(RunTimes(s.id), std::vector<int64_t>{T("2026-01-01T01:00:00Z")});
  EXPECT_NE(metrics.Render().find("lathe_schedule_ticks_total{result=\"created\"} 1"),
            std::string::npos)
      << metrics.Render();
}

TEST_P(SchedulesTest, PausedTicksAreSkippedAndNotCaughtUp) {
  ScheduleRecord s = Put(std::string(kHourly) + "catchup: true\n");
  clock_.Set(T("2026-01-01T01:00:00Z"));
  Pass();
  ASSERT_TRUE(service_->SetPaused(admin_, "ml", "hourly", true).ok());
  clock_.Set(T("2026-01-01T03:30:00Z"));
  Pass();
  EXPECT_EQ(RunTimes(s.id), std::vector<int64_t>{T("2026-01-01T01:00:00Z")});
  auto ticks = Ticks("hourly");
  EXPECT_EQ(ticks[T("2026-01-01T02:00:00Z")].reason, "Paused");
  EXPECT_EQ(ticks[T("2026-01-01T03:00:00Z")].state, "skipped");

  auto resumed = service_->SetPaused(admin_, "ml", "hourly", false);
  ASSERT_TRUE(resumed.ok());
  EXPECT_FALSE(resumed->spec.paused);
  Pass();
  EXPECT_EQ(Runs(s.id).size(), 1u);  // 02:00 and 03:00 stay skipped
  clock_.Set(T("2026-01-01T04:00:00Z"));
  Pass();
  EXPECT_EQ(RunTimes(s.id),
            (std::vector<int64_t>{T("2026-01-01T01:00:00Z"), T("2026-01-01T04:00:00Z")}));
}

TEST_P(SchedulesTest, SkipDatesAreRecordedAndValidated) {
  ScheduleRecord s = Put(R"(
name: daily
pipeline: etl
cron: "0 6 * * *"
catchup: true
max_concurrency: 10
)");
  auto skipped = service_->Skip(admin_, "ml", "daily", {"2026-01-02"}, false);
  ASSERT_TRUE(skipped.ok()) << skipped.status().ToString();
  EXPECT_EQ(skipped->spec.skip_dates, std::set<std::string>{"2026-01-02"});
  auto bad = service_->Skip(admin_, "ml", "daily", {"2026-01-03", "2026-02-30"}, false);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().field(), "dates[1]");

  clock_.Set(T("2026-01-03T07:00:00Z"));
  Pass();
  EXPECT_EQ(RunTimes(s.id),
            (std::vector<int64_t>{T("2026-01-01T06:00:00Z"), T("2026-01-03T06:00:00Z")}));
  auto ticks = Ticks("daily");
  EXPECT_EQ(ticks[T("2026-01-02T06:00:00Z")].state, "skipped");
  EXPECT_EQ(ticks[T("2026-01-02T06:00:00Z")].reason, "SkipDate");

  auto removed = service_->Skip(admin_, "ml", "daily", {"2026-01-02"}, true);
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(removed->spec.skip_dates.empty());
}

TEST_P(SchedulesTest, ForbidSkipsTicksWhileARunIsActive) {
  ScheduleRecord s = Put(std::string(kHourly) + "overlap: Forbid\n");
  clock_.Set(T("2026-01-01T01:00:00Z"));
  Pass();
  clock_.Set(T("2026-01-01T02:00:00Z"));
  Pass();
  std::vector<ScheduledRun> runs = Runs(s.id);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(Ticks("hourly")[T("2026-01-01T02:00:00Z")].reason, "Overlap");
  SetRunState(runs[0].id, "succeeded");
  clock_.Set(T("2026-01-01T03:00:00Z"));
  Pass();
  EXPECT_EQ(RunTimes(s.id),
            (std::vector<int64_t>{T("2026-01-01T01:00:00Z"), T("2026-01-01T03:00:00Z")}));
}

TEST_P(SchedulesTest, ReplaceCancelsActiveRunsThenCreates) {
  ScheduleRecord s = Put(std::string(kHourly) + "overlap: Replace\n");
  clock_.Set(T("2026-01-01T01:00:00Z"));
  Pass();
  clock_.Set(T("2026-01-01T02:00:00Z"));
  Pass();
  std::vector<ScheduledRun> runs = Runs(s.id);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_TRUE(runs[0].cancel_requested);
  EXPECT_FALSE(runs[1].cancel_requested);
  EXPECT_EQ(runs[1].scheduled_time, T("2026-01-01T02:00:00Z"));
}

TEST_P(SchedulesTest, AllowQueuesBeyondMaxConcurrencyAndCreatesOldestFirst) {
  ScheduleRecord s = Put(R"(
name: hourly
pipeline: etl
cron: "0 * * * *"
overlap: Allow
max_concurrency: 2
catchup: true
)");
  clock_.Set(T("2026-01-01T04:00:00Z"));
  Pass();
  std::vector<ScheduledRun> runs = Runs(s.id);
  ASSERT_EQ(runs.size(), 2u);
  auto ticks = Ticks("hourly");
  EXPECT_EQ(ticks[T("2026-01-01T03:00:00Z")].state, "queued");
  EXPECT_EQ(ticks[T("2026-01-01T03:00:00Z")].reason, "MaxConcurrency");
  EXPECT_EQ(ticks[T("2026-01-01T04:00:00Z")].state, "queued");

  SetRunState(runs[1].id, "failed");
  Pass();
  EXPECT_EQ(RunTimes(s.id), Hours("2026-01-01T01:00:00Z", 3));  // 03:00 before 04:00
  NewController();
  Pass();
  EXPECT_EQ(Runs(s.id).size(), 3u);
  SetRunState(runs[0].id, "succeeded");
  Pass();
  EXPECT_EQ(RunTimes(s.id), Hours("2026-01-01T01:00:00Z", 4));
  EXPECT_EQ(Ticks("hourly")[T("2026-01-01T04:00:00Z")].state, "created");
}

TEST_P(SchedulesTest, DependsOnPastWaitsForThePreviousRunToSucceed) {
  ScheduleRecord s = Put(std::string(kHourly) + "depends_on_past: true\n");
  clock_.Set(T("2026-01-01T01:00:00Z"));
  Pass();
  clock_.Set(T("2026-01-01T02:00:00Z"));
  Pass();
  std::vector<ScheduledRun> runs = Runs(s.id);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(Ticks("hourly")[T("2026-01-01T02:00:00Z")].reason, "DependsOnPast");

  // Failed for good: the next ticks wait behind it.
  SetRunState(runs[0].id, "failed");
  clock_.Set(T("2026-01-01T03:00:00Z"));
  Pass();
  EXPECT_EQ(Runs(s.id).size(), 1u);
  auto ticks = Ticks("hourly");
  EXPECT_EQ(ticks[T("2026-01-01T02:00:00Z")].state, "queued");
  EXPECT_EQ(ticks[T("2026-01-01T03:00:00Z")].state, "queued");
  EXPECT_EQ(ticks[T("2026-01-01T01:00:00Z")].run_state, "failed");

  // Someone retries the failed run and it succeeds: 02:00 runs, 03:00 waits for it.
  auto retried = pipelines_->RetryRun(admin_, "ml", runs[0].id);
  ASSERT_TRUE(retried.ok()) << retried.status().ToString();
  Pass();
  EXPECT_EQ(Runs(s.id).size(), 1u);
  SetRunState(runs[0].id, "succeeded");
  Pass();
  EXPECT_EQ(RunTimes(s.id), Hours("2026-01-01T01:00:00Z", 2));
  EXPECT_EQ(Ticks("hourly")[T("2026-01-01T03:00:00Z")].state, "queued");
  SetRunState(Runs(s.id)[1].id, "succeeded");
  Pass();
  EXPECT_EQ(RunTimes(s.id), Hours("2026-01-01T01:00:00Z", 3));
}

TEST_P(SchedulesTest, FailedRunsAreResumedUpToRetries) {
  ScheduleRecord s = Put(std::string(kHourly) + "retries: 2\n");
  clock_.Set(T("2026-01-01T01:00:00Z"));
  Pass();
  const std::string run = Runs(s.id)[0].id;
  for (int attempt = 1; attempt <= 2; ++attempt) {
    SetRunState(run, "failed");
    Pass();
    EXPECT_EQ(Runs(s.id)[0].state, "running") << attempt;
    EXPECT_EQ(Ticks("hourly")[T("2026-01-01T01:00:00Z")].attempts, attempt);
  }
  SetRunState(run, "failed");
  Pass();
  NewController();
  Pass();
  EXPECT_EQ(Runs(s.id)[0].state, "failed");
  auto tick = Ticks("hourly")[T("2026-01-01T01:00:00Z")];
  EXPECT_EQ(tick.attempts, 2);
  EXPECT_EQ(tick.run_state, "failed");
  EXPECT_EQ(Runs(s.id).size(), 1u);
}

TEST_P(SchedulesTest, HistoryLimitDeletesOldestFinishedRunsAndKeepsTicks) {
  ScheduleRecord s = Put(std::string(kHourly) + "catchup: true\nhistory_limit: 2\n");
  clock_.Set(T("2026-01-01T05:00:00Z"));
  Pass();
  std::vector<ScheduledRun> runs = Runs(s.id);
  ASSERT_EQ(runs.size(), 5u);
  for (const ScheduledRun& r : runs) {
    clock_.Advance(1'000'000);
    SetRunState(r.id, r.scheduled_time == T("2026-01-01T05:00:00Z") ? "running" : "succeeded");
  }
  Pass();  // observes the ends
  Pass();
  EXPECT_EQ(RunTimes(s.id),
            (std::vector<int64_t>{T("2026-01-01T03:00:00Z"), T("2026-01-01T04:00:00Z"),
                                  T("2026-01-01T05:00:00Z")}));
  auto ticks = Ticks("hourly");
  ASSERT_EQ(ticks.size(), 5u);
  EXPECT_EQ(ticks[T("2026-01-01T01:00:00Z")].run_state, "succeeded");
  EXPECT_FALSE(ticks[T("2026-01-01T01:00:00Z")].run_id.empty());
}

constexpr const char* kDaily = R"(
name: daily
pipeline: etl
cron: "0 6 * * *"
max_concurrency: 100
)";

TEST_P(SchedulesTest, BackfillCreatesRunsInOrderWithinItsConcurrency) {
  clock_.Set(T("2026-01-10T00:00:00Z"));
  ScheduleRecord s = Put(kDaily);
  auto b = service_->Backfill(admin_, "ml", "daily", T("2026-01-01T00:00:00Z"),
                              T("2026-01-05T23:00:00Z"), 2, Reprocess::kNone);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->total, 5);
  EXPECT_EQ(b->state, "running");
  Pass();
  Pass();
  std::vector<ScheduledRun> runs = Runs(s.id);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].scheduled_time, T("2026-01-01T06:00:00Z"));
  EXPECT_EQ(Param(runs[1], "scheduled_time"), "2026-01-02T06:00:00Z");
  SetRunState(runs[0].id, "succeeded");
  Pass();  // observes, then creates 01-03
  EXPECT_EQ(RunTimes(s.id).size(), 3u);
  for (int i = 0; i < 4; ++i) {
    for (const ScheduledRun& r : Runs(s.id)) {
      if (r.state == "pending") SetRunState(r.id, "succeeded");
    }
    Pass();
  }
  std::vector<int64_t> want;
  for (int d = 0; d < 5; ++d) want.push_back(T("2026-01-01T06:00:00Z") + d * kDay);
  EXPECT_EQ(RunTimes(s.id), want);
  auto list = service_->Backfills(admin_, "ml", "daily");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].state, "succeeded");
  EXPECT_EQ((*list)[0].succeeded, 5);
  EXPECT_EQ((*list)[0].created, 5);

  // reprocess none over ticks that all have runs: nothing to do.
  auto none = service_->Backfill(admin_, "ml", "daily", T("2026-01-01T00:00:00Z"),
                                 T("2026-01-05T23:00:00Z"), 2, Reprocess::kNone);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->total, 0);
  EXPECT_EQ(none->state, "succeeded");
}

TEST_P(SchedulesTest, BackfillReprocessFailedResumesFailedRunsAndAllCreatesNewOnes) {
  clock_.Set(T("2026-01-10T00:00:00Z"));
  ScheduleRecord s = Put(kDaily);
  ASSERT_TRUE(service_
                  ->Backfill(admin_, "ml", "daily", T("2026-01-01T00:00:00Z"),
                             T("2026-01-03T23:00:00Z"), 10, Reprocess::kNone)
                  .ok());
  Pass();
  std::vector<ScheduledRun> runs = Runs(s.id);
  ASSERT_EQ(runs.size(), 3u);
  SetRunState(runs[0].id, "succeeded");
  SetRunState(runs[1].id, "failed");
  SetRunState(runs[2].id, "cancelled");
  Pass();
  auto first = service_->Backfills(admin_, "ml", "daily");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ((*first)[0].state, "failed");
  EXPECT_EQ((*first)[0].failed, 2);

  auto failed = service_->Backfill(admin_, "ml", "daily", T("2026-01-01T00:00:00Z"),
                                   T("2026-01-03T23:00:00Z"), 10, Reprocess::kFailed);
  ASSERT_TRUE(failed.ok()) << failed.status().ToString();
  EXPECT_EQ(failed->total, 2);
  Pass();
  runs = Runs(s.id);
  ASSERT_EQ(runs.size(), 3u);  // resumed, not new
  EXPECT_EQ(runs[0].state, "succeeded");
  EXPECT_EQ(runs[1].state, "running");
  EXPECT_EQ(runs[2].state, "running");
  SetRunState(runs[1].id, "succeeded");
  SetRunState(runs[2].id, "succeeded");
  Pass();
  Pass();
  auto list = service_->Backfills(admin_, "ml", "daily");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ((*list)[0].id, failed->id);
  EXPECT_EQ((*list)[0].state, "succeeded");

  auto all = service_->Backfill(admin_, "ml", "daily", T("2026-01-01T00:00:00Z"),
                                T("2026-01-03T23:00:00Z"), 1, Reprocess::kAll);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->total, 3);
  // An overlapping backfill while this one runs is refused.
  auto overlapping = service_->Backfill(admin_, "ml", "daily", T("2026-01-03T00:00:00Z"),
                                        T("2026-01-04T00:00:00Z"), 1, Reprocess::kAll);
  EXPECT_EQ(overlapping.status().code(), StatusCode::kFailedPrecondition);
  Pass();
  EXPECT_EQ(Runs(s.id).size(), 4u);  // max_concurrency 1
  const std::string new_run = Ticks("daily")[T("2026-01-01T06:00:00Z")].run_id;
  EXPECT_NE(new_run, runs[0].id);
  SetRunState(new_run, "succeeded");
  Pass();
  EXPECT_EQ(Runs(s.id).size(), 5u);
}

TEST_P(SchedulesTest, BackfillTakesSkippedTicksAndValidatesItsRange) {
  ScheduleRecord s = Put(kHourly);
  clock_.Set(T("2026-01-01T04:00:00Z"));
  Pass();  // catchup off: 01:00-03:00 skipped, 04:00 created
  auto b = service_->Backfill(admin_, "ml", "hourly", T("2026-01-01T00:00:00Z"),
                              T("2026-01-01T09:00:00Z"), 5, Reprocess::kNone);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->to, T("2026-01-01T04:00:00Z"));  // capped at now
  EXPECT_EQ(b->total, 4);                       // 00:00 and the three skipped ticks
  Pass();
  EXPECT_EQ(RunTimes(s.id), Hours("2026-01-01T00:00:00Z", 5));

  EXPECT_EQ(service_
                ->Backfill(admin_, "ml", "hourly", T("2026-01-01T03:00:00Z"),
                           T("2026-01-01T02:00:00Z"), 1, Reprocess::kNone)
                .status()
                .field(),
            "to");
  EXPECT_EQ(service_
                ->Backfill(admin_, "ml", "hourly", T("2026-01-01T01:00:00Z"),
                           T("2026-01-01T02:00:00Z"), 0, Reprocess::kNone)
                .status()
                .field(),
            "max_concurrency");
  EXPECT_EQ(service_
                ->Backfill(admin_, "ml", "hourly", T("2026-02-01T00:00:00Z"),
                           T("2026-02-02T00:00:00Z"), 1, Reprocess::kNone)
                .status()
                .field(),
            "from");
}

TEST_P(SchedulesTest, BackfillIgnoresPauseButHonoursSkipDates) {
  clock_.Set(T("2026-01-10T00:00:00Z"));
  ScheduleRecord s = Put(std::string(kDaily) + "paused: true\nskip_dates: [\"2026-01-02\"]\n");
  auto b = service_->Backfill(admin_, "ml", "daily", T("2026-01-01T00:00:00Z"),
                              T("2026-01-03T23:00:00Z"), 5, Reprocess::kNone);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->total, 2);
  Pass();
  EXPECT_EQ(RunTimes(s.id),
            (std::vector<int64_t>{T("2026-01-01T06:00:00Z"), T("2026-01-03T06:00:00Z")}));
}

TEST_P(SchedulesTest, DaylightSavingDayInBerlinFiresTheMissingTimeOnce) {
  clock_.Set(T("2026-03-26T12:00:00Z"));
  ScheduleRecord s = Put(R"(
name: nightly
pipeline: etl
cron: "30 2 * * *"
timezone: Europe/Berlin
catchup: true
max_concurrency: 100
)");
  clock_.Set(T("2026-03-31T12:00:00Z"));
  Pass();
  // 02:30 CET = 01:30Z; on 29 March 02:30 does not exist: 03:00 CEST = 01:00Z;
  // then 02:30 CEST = 00:30Z.
  EXPECT_EQ(RunTimes(s.id),
            (std::vector<int64_t>{T("2026-03-27T01:30:00Z"), T("2026-03-28T01:30:00Z"),
                                  T("2026-03-29T01:00:00Z"), T("2026-03-30T00:30:00Z"),
                                  T("2026-03-31T00:30:00Z")}));
  std::vector<ScheduledRun> runs = Runs(s.id);
  EXPECT_EQ(Param(runs[2], "data_interval_start"), "2026-03-28T01:30:00Z");
}

TEST_P(SchedulesTest, StartAndEndBoundTheTicks) {
  ScheduleRecord s = Put(R"(
name: bounded
pipeline: etl
interval: 1h
start: "2026-01-01T02:00:00Z"
end: "2026-01-01T05:00:00Z"
catchup: true
max_concurrency: 100
)");
  EXPECT_EQ(s.next_tick, T("2026-01-01T02:00:00Z"));
  clock_.Set(T("2026-01-02T00:00:00Z"));
  Pass();
  Pass();
  EXPECT_EQ(RunTimes(s.id), Hours("2026-01-01T02:00:00Z", 4));
  auto got = service_->Get(admin_, "ml", "bounded");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->next_tick, 0);
}

TEST_P(SchedulesTest, BadSpecsNameTheField) {
  auto put = [&](const std::string& yaml) { return service_->Put(admin_, "ml", Yaml(yaml), true); };
  auto st = put("name: a\npipeline: nope\ncron: \"@daily\"\n").status();
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_EQ(st.field(), "pipeline");
  st = put("name: a\npipeline: etl\ncron: \"61 * * * *\"\n").status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.field(), "cron");
  st = put("name: a\npipeline: etl\ncron: \"@daily\"\ntimezone: Mars/Base\n").status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.field(), "timezone");
  st = put("name: a\npipeline: etl\ncron: \"@daily\"\nparams: {lrr: 1.0}\n").status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.field(), "params.lrr");
  st = put("name: a\npipeline: etl\ncron: \"@daily\"\nparams: {lr: fast}\n").status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.field(), "params.lr");
  st = put("name: a\npipeline: etl\ncron: \"@daily\"\nparams: {scheduled_time: x}\n").status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.field(), "params.scheduled_time");
  st = put("name: a\npipeline: etl\npipeline_version: 7\ncron: \"@daily\"\n").status();
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_EQ(st.field(), "pipeline_version");
  st = put("name: a\nproject: other\npipeline: etl\ncron: \"@daily\"\n").status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.field(), "project");
  ASSERT_TRUE(put("name: a\npipeline: etl\ncron: \"@daily\"\n").ok());
  st = put("name: a\npipeline: etl\ncron: \"@daily\"\n").status();
  EXPECT_EQ(st.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(st.field(), "name");
}

TEST_P(SchedulesTest, ViewersReadAndEditorsWrite) {
  ASSERT_TRUE(tenancy_->CreateUser(admin_, "vera", false).ok());
  ASSERT_TRUE(tenancy_->SetMember(admin_, "ml", "vera", Role::kViewer).ok());
  auto token = tenancy_->CreateToken(admin_, {.name = "t", .user = "vera"});
  ASSERT_TRUE(token.ok());
  Principal viewer = *tenancy_->Authenticate(token->secret);
  Put(kHourly);
  EXPECT_TRUE(service_->Get(viewer, "ml", "hourly").ok());
  EXPECT_TRUE(service_->Ticks(viewer, "ml", "hourly", {}).ok());
  EXPECT_EQ(service_->SetPaused(viewer, "ml", "hourly", true).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(service_->Put(viewer, "ml", Yaml(kHourly), false).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(service_->Remove(viewer, "ml", "hourly").code(), StatusCode::kPermissionDenied);
}

TEST_P(SchedulesTest, ARunThatCannotBeCreatedSkipsTheTickAndTheScheduleGoesOn) {
  ScheduleRecord s = Put(kHourly);
  // Version 2 of the pipeline needs a param the schedule does not give.
  auto v2 = pipelines_->Create(admin_, "ml", Yaml(R"(
name: etl
params:
  - {name: scheduled_time, type: string, default: ""}
  - {name: region, type: string}
steps:
  - name: main
    command: ["true"]
)"),
                               "");
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  clock_.Set(T("2026-01-01T01:00:00Z"));
  Pass();
  EXPECT_TRUE(Runs(s.id).empty());
  TickRecord tick = Ticks("hourly")[T("2026-01-01T01:00:00Z")];
  EXPECT_EQ(tick.state, "skipped");
  EXPECT_EQ(tick.reason, "RunError");
  EXPECT_NE(tick.message.find("params."), std::string::npos) << tick.message;
  auto got = service_->Get(admin_, "ml", "hourly");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->last_tick, T("2026-01-01T01:00:00Z"));
}

TEST_P(SchedulesTest, ListPagesTicksPageAndRemoveKeepsRuns) {
  ScheduleRecord s = Put(std::string(kHourly) + "catchup: true\n");
  Put("name: b-sched\npipeline: etl\ncron: \"@daily\"\n");
  Put("name: c-sched\npipeline: etl\ncron: \"@daily\"\n");
  auto page = service_->List(admin_, "ml", {.limit = 2});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[0].spec.name, "hourly");
  auto rest = service_->List(admin_, "ml", {.limit = 2, .page_token = page->next_page_token});
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  ASSERT_EQ(rest->items.size(), 1u);
  EXPECT_EQ(rest->items[0].spec.name, "c-sched");
  EXPECT_TRUE(rest->next_page_token.empty());

  clock_.Set(T("2026-01-01T05:00:00Z"));
  Pass();
  auto ticks = service_->Ticks(admin_, "ml", "hourly", {.limit = 3});
  ASSERT_TRUE(ticks.ok());
  ASSERT_EQ(ticks->items.size(), 3u);
  EXPECT_EQ(ticks->items[0].tick, T("2026-01-01T05:00:00Z"));  // newest first
  auto older =
      service_->Ticks(admin_, "ml", "hourly", {.limit = 3, .page_token = ticks->next_page_token});
  ASSERT_TRUE(older.ok());
  ASSERT_EQ(older->items.size(), 2u);
  EXPECT_EQ(older->items[1].tick, T("2026-01-01T01:00:00Z"));

  ASSERT_TRUE(service_->Remove(admin_, "ml", "hourly").ok());
  EXPECT_EQ(service_->Get(admin_, "ml", "hourly").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Runs(s.id).size(), 5u);  // runs stay
  clock_.Set(T("2026-01-01T06:00:00Z"));
  Pass();
  EXPECT_EQ(Runs(s.id).size(), 5u);
}

}  // namespace
}  // namespace lathe::control
