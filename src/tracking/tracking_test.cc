// TrackingService against SQLite (a temp directory per test) and, when
// LATHE_TEST_POSTGRES_URL is set, PostgreSQL (a fresh schema per test), as
// store_conformance_test does.
#include "tracking/tracking.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>
#include <set>
#include <thread>

#include "tracking/group_commit.h"
#include "tracking/logged_models.h"

namespace lathe::tracking {
namespace {

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
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  PGresult* res = PQexec(conn, sql.c_str());
  EXPECT_TRUE(PQresultStatus(res) == PGRES_COMMAND_OK) << sql << ": " << PQresultErrorMessage(res);
  PQclear(res);
  PQfinish(conn);
}

class TrackingTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string url;
    if (GetParam() == "postgres") {
      const char* base = std::getenv("LATHE_TEST_POSTGRES_URL");
      if (base == nullptr || base[0] == '\0') {
        GTEST_SKIP() << "PostgreSQL not tested: set LATHE_TEST_POSTGRES_URL";
      }
      pg_base_ = base;
      schema_ = "t_" + RandomSuffix();
      PgAdmin(pg_base_, "CREATE SCHEMA " + schema_);
      url = pg_base_ + (pg_base_.find('?') == std::string::npos ? "?" : "&") +
            "options=-csearch_path%3D" + schema_;
    } else {
      dir_ = std::filesystem::temp_directory_path() / ("lathe_tracking_test_" + RandomSuffix());
      url = "sqlite://" + (dir_ / "lathe.db").string();
    }
    auto s = store::OpenStore({.url = url, .pool_size = 8});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    tenancy_ = std::make_unique<tenancy::TenancyService>(*store_, clock_, 0);
    std::string token;
    ASSERT_TRUE(tenancy_->Bootstrap([&](const std::string& t) {
                  token = t;
                  return OkStatus();
                }).ok());
    admin_ = *tenancy_->Authenticate(token);
    ASSERT_TRUE(tenancy_->CreateProject(admin_, "ml", "").ok());
    ASSERT_TRUE(tenancy_->CreateProject(admin_, "other", "").ok());
    svc_ = std::make_unique<TrackingService>(*store_, *tenancy_, clock_);
    models_ = std::make_unique<LoggedModelService>(*store_, *tenancy_, *svc_, clock_);
  }
  void TearDown() override {
    models_.reset();
    svc_.reset();
    tenancy_.reset();
    store_.reset();
    if (!schema_.empty()) PgAdmin(pg_base_, "DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  Principal MakeUser(const std::string& name, Role role) {
    EXPECT_TRUE(tenancy_->CreateUser(admin_, name, false).ok());
    EXPECT_TRUE(tenancy_->SetMember(admin_, "ml", name, role).ok());
    auto t = tenancy_->CreateToken(admin_, {.name = "t", .user = name});
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return *tenancy_->Authenticate(t->secret);
  }

  tracking::Run NewRun(const std::string& exp = "0", const std::string& name = "") {
    auto r = svc_->CreateRun(admin_, "ml", {.experiment_id = exp, .run_name = name});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : tracking::Run{};
  }

  std::filesystem::path dir_;
  std::string pg_base_, schema_;
  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<tenancy::TenancyService> tenancy_;
  std::unique_ptr<TrackingService> svc_;
  std::unique_ptr<LoggedModelService> models_;
  Principal admin_;
};

INSTANTIATE_TEST_SUITE_P(Drivers, TrackingTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

// ---------------------------------------------------------------- experiments

TEST_P(TrackingTest, ExperimentsHaveGlobalIdsAndArtifactLocations) {
  auto a = svc_->CreateExperiment(admin_, "ml", "demo", {{"team", "ads"}});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = svc_->CreateExperiment(admin_, "other", "demo", {});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_NE(a->id, b->id);
  EXPECT_EQ(a->artifact_location, "mlflow-artifacts:/" + a->id);
  EXPECT_EQ(a->project, "ml");
  EXPECT_EQ(a->tags, (std::vector<Tag>{{"team", "ads"}}));
  EXPECT_EQ(a->creation_time, clock_.NowMicros() / 1000);
  auto dup = svc_->CreateExperiment(admin_, "ml", "demo", {});
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  // Another project's experiment is not visible by id.
  EXPECT_EQ(svc_->GetExperiment(admin_, "ml", b->id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(svc_->GetExperiment(admin_, "ml", "12345").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(svc_->GetExperiment(admin_, "ml", "abc").status().code(), StatusCode::kInvalidArgument);
  auto by_name = svc_->GetExperimentByName(admin_, "ml", "demo");
  ASSERT_TRUE(by_name.ok());
  EXPECT_EQ(by_name->id, a->id);
  EXPECT_EQ(svc_->GetExperimentByName(admin_, "ml", "nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(svc_->CreateExperiment(admin_, "ml", "", {}).status().code(), StatusCode::kInvalidArgument);
  auto too_long = svc_->CreateExperiment(admin_, "ml", std::string(501, 'x'), {});
  EXPECT_EQ(too_long.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_long.status().message().find("500"), std::string::npos);
}

TEST_P(TrackingTest, ExperimentZeroIsTheProjectsDefault) {
  auto d = svc_->GetExperiment(admin_, "ml", "0");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->name, "Default");
  auto again = svc_->GetExperimentByName(admin_, "ml", "Default");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, d->id);
  auto other = svc_->GetExperiment(admin_, "other", "0");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->id, d->id);
  EXPECT_EQ(svc_->SetExperimentLifecycle(admin_, "ml", "0", Lifecycle::kDeleted).code(),
            StatusCode::kInvalidArgument);
  tracking::Run r = NewRun("0");
  EXPECT_EQ(r.info.experiment_id, d->id);
}

TEST_P(TrackingTest, RenameDeleteRestoreAndTags) {
  auto e = *svc_->CreateExperiment(admin_, "ml", "a", {});
  ASSERT_TRUE(svc_->CreateExperiment(admin_, "ml", "b", {}).ok());
  EXPECT_EQ(svc_->RenameExperiment(admin_, "ml", e.id, "b").code(), StatusCode::kAlreadyExists);
  clock_.Advance(5000);
  ASSERT_TRUE(svc_->RenameExperiment(admin_, "ml", e.id, "c").ok());
  auto got = *svc_->GetExperiment(admin_, "ml", e.id);
  EXPECT_EQ(got.name, "c");
  EXPECT_EQ(got.last_update_time, e.creation_time + 5);
  ASSERT_TRUE(svc_->SetExperimentTag(admin_, "ml", e.id, {"k", "v1"}).ok());
  ASSERT_TRUE(svc_->SetExperimentTag(admin_, "ml", e.id, {"k", "v2"}).ok());
  EXPECT_EQ(svc_->GetExperiment(admin_, "ml", e.id)->tags, (std::vector<Tag>{{"k", "v2"}}));
  ASSERT_TRUE(svc_->DeleteExperimentTag(admin_, "ml", e.id, "k").ok());
  EXPECT_TRUE(svc_->GetExperiment(admin_, "ml", e.id)->tags.empty());
  EXPECT_EQ(svc_->DeleteExperimentTag(admin_, "ml", e.id, "k").code(), StatusCode::kNotFound);

  tracking::Run r = NewRun(e.id);
  ASSERT_TRUE(svc_->SetExperimentLifecycle(admin_, "ml", e.id, Lifecycle::kDeleted).ok());
  EXPECT_EQ(svc_->GetExperiment(admin_, "ml", e.id)->lifecycle, Lifecycle::kDeleted);
  EXPECT_EQ(svc_->GetRun(admin_, "ml", r.info.run_id)->info.lifecycle, Lifecycle::kDeleted);
  EXPECT_EQ(svc_->CreateRun(admin_, "ml", {.experiment_id = e.id}).status().code(),
            StatusCode::kInvalidArgument);
  std::string token;
  auto active = *svc_->SearchExperiments(admin_, "ml", ViewType::kActiveOnly, {}, &token);
  auto deleted = *svc_->SearchExperiments(admin_, "ml", ViewType::kDeletedOnly, {}, &token);
  auto all = *svc_->SearchExperiments(admin_, "ml", ViewType::kAll, {}, &token);
  EXPECT_EQ(active.size(), 2u);  // b and Default
  EXPECT_EQ(deleted.size(), 1u);
  EXPECT_EQ(all.size(), 3u);
  ASSERT_TRUE(svc_->SetExperimentLifecycle(admin_, "ml", e.id, Lifecycle::kActive).ok());
  EXPECT_EQ(svc_->GetRun(admin_, "ml", r.info.run_id)->info.lifecycle, Lifecycle::kActive);
}

TEST_P(TrackingTest, SearchExperimentsPages) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(svc_->CreateExperiment(admin_, "ml", "e" + std::to_string(i), {}).ok());
  std::set<std::string> seen;
  Page page{.max_results = 2};
  for (int pages = 0; pages < 10; ++pages) {
    std::string next;
    auto got = svc_->SearchExperiments(admin_, "ml", ViewType::kAll, page, &next);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    for (auto& e : *got) EXPECT_TRUE(seen.insert(e.id).second);
    if (next.empty()) break;
    page.page_token = next;
  }
  EXPECT_EQ(seen.size(), 6u);  // and Default
  EXPECT_EQ(svc_->SearchExperiments(admin_, "ml", ViewType::kAll, {.page_token = "zz"}, nullptr)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST_P(TrackingTest, RolesGateReadsAndWrites) {
  Principal viewer = MakeUser("vera", Role::kViewer);
  Principal editor = MakeUser("ed", Role::kEditor);
  EXPECT_EQ(svc_->CreateExperiment(viewer, "ml", "x", {}).status().code(), StatusCode::kPermissionDenied);
  auto e = svc_->CreateExperiment(editor, "ml", "x", {});
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_TRUE(svc_->GetExperiment(viewer, "ml", e->id).ok());
  tracking::Run r = NewRun(e->id);
  EXPECT_EQ(svc_->LogBatch(viewer, "ml", r.info.run_id, {{"m", 1, 1, 0}}, {}, {}).code(),
            StatusCode::kPermissionDenied);
  EXPECT_TRUE(svc_->LogBatch(editor, "ml", r.info.run_id, {{"m", 1, 1, 0}}, {}, {}).ok());
  EXPECT_TRUE(svc_->GetRun(viewer, "ml", r.info.run_id).ok());
  // A project the user is not a member of does not exist for them.
  EXPECT_EQ(svc_->GetExperiment(viewer, "other", "0").status().code(), StatusCode::kNotFound);
  auto by_editor = svc_->CreateRun(editor, "ml", {.experiment_id = e->id});
  ASSERT_TRUE(by_editor.ok());
  EXPECT_EQ(by_editor->info.user_id, "ed");
}

// ---------------------------------------------------------------- runs

TEST_P(TrackingTest, CreateRunGeneratesIdAndName) {
  tracking::Run r = NewRun();
  EXPECT_EQ(r.info.run_id.size(), 32u);
  EXPECT_EQ(r.info.run_id.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_FALSE(r.info.run_name.empty());
  EXPECT_EQ(r.tags, (std::vector<Tag>{{"mlflow.runName", r.info.run_name}}));
  EXPECT_EQ(r.info.status, RunStatus::kRunning);
  EXPECT_EQ(r.info.start_time, clock_.NowMicros() / 1000);
  EXPECT_EQ(r.info.end_time, 0);
  EXPECT_EQ(r.info.user_id, "admin");
  auto exp = *svc_->GetExperiment(admin_, "ml", "0");
  EXPECT_EQ(r.info.artifact_uri, exp.artifact_location + "/" + r.info.run_id + "/artifacts");
  auto named = svc_->CreateRun(admin_, "ml",
                               {.tags = {{"mlflow.runName", "from-tag"}, {"a", "b"}}, .job_id = "J1"});
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->info.run_name, "from-tag");
  EXPECT_EQ(named->info.job_id, "J1");
  auto got = *svc_->GetRun(admin_, "ml", named->info.run_id);
  EXPECT_EQ(got.info.job_id, "J1");
  EXPECT_EQ(got.tags, (std::vector<Tag>{{"a", "b"}, {"mlflow.runName", "from-tag"}}));
  EXPECT_EQ(svc_->GetRun(admin_, "ml", "0123456789abcdef0123456789abcdef").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(svc_->GetRun(admin_, "other", r.info.run_id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(svc_->CreateRun(admin_, "ml", {.experiment_id = "999"}).status().code(), StatusCode::kNotFound);
}

TEST_P(TrackingTest, UpdateRunAndSoftDelete) {
  tracking::Run r = NewRun("0", "first");
  auto info = svc_->UpdateRun(admin_, "ml", r.info.run_id, RunStatus::kFinished, int64_t{123}, "second");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->status, RunStatus::kFinished);
  EXPECT_EQ(info->end_time, 123);
  auto got = *svc_->GetRun(admin_, "ml", r.info.run_id);
  EXPECT_EQ(got.info.run_name, "second");
  EXPECT_EQ(got.tags, (std::vector<Tag>{{"mlflow.runName", "second"}}));
  // Setting the mlflow.runName tag renames the run, as MLflow does.
  ASSERT_TRUE(svc_->LogBatch(admin_, "ml", r.info.run_id, {}, {}, {{"mlflow.runName", "third"}}).ok());
  EXPECT_EQ(svc_->GetRun(admin_, "ml", r.info.run_id)->info.run_name, "third");
  // Unset fields are kept.
  info = svc_->UpdateRun(admin_, "ml", r.info.run_id, std::nullopt, std::nullopt, std::nullopt);
  EXPECT_EQ(info->status, RunStatus::kFinished);
  EXPECT_EQ(info->end_time, 123);
  ASSERT_TRUE(svc_->SetRunLifecycle(admin_, "ml", r.info.run_id, Lifecycle::kDeleted).ok());
  EXPECT_EQ(svc_->GetRun(admin_, "ml", r.info.run_id)->info.lifecycle, Lifecycle::kDeleted);
  EXPECT_EQ(svc_->LogBatch(admin_, "ml", r.info.run_id, {{"m", 1, 1, 0}}, {}, {}).code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(svc_->SetRunLifecycle(admin_, "ml", r.info.run_id, Lifecycle::kActive).ok());
  EXPECT_EQ(svc_->SetRunLifecycle(admin_, "ml", "nope", Lifecycle::kActive).code(), StatusCode::kNotFound);
  EXPECT_EQ(ParseRunStatus("DONE").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseRunStatus("KILLED"), RunStatus::kKilled);
}

// ---------------------------------------------------------------- logging

TEST_P(TrackingTest, ParamsAreImmutableTagsLastWriteWins) {
  tracking::Run r = NewRun();
  const std::string& id = r.info.run_id;
  ASSERT_TRUE(svc_->LogBatch(admin_, "ml", id, {}, {{"lr", "0.1"}}, {{"t", "1"}}).ok());
  ASSERT_TRUE(svc_->LogBatch(admin_, "ml", id, {}, {{"lr", "0.1"}}, {{"t", "2"}}).ok());
  Status changed = svc_->LogBatch(admin_, "ml", id, {{"m", 5, 1, 0}}, {{"lr", "0.2"}}, {{"t", "3"}});
  EXPECT_EQ(changed.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(changed.message().find("Changing param values is not allowed"), std::string::npos);
  // Atomic: the failed batch stored neither its metric nor its tag.
  tracking::Run got = *svc_->GetRun(admin_, "ml", id);
  EXPECT_EQ(got.params, (std::vector<Param>{{"lr", "0.1"}}));
  EXPECT_TRUE(got.latest_metrics.empty());
  EXPECT_EQ(got.tags[1], (Tag{"t", "2"}));
  ASSERT_TRUE(svc_->DeleteTag(admin_, "ml", id, "t").ok());
  EXPECT_EQ(svc_->DeleteTag(admin_, "ml", id, "t").code(), StatusCode::kNotFound);
  EXPECT_EQ(svc_->GetRun(admin_, "ml", id)->tags.size(), 1u);
  EXPECT_EQ(svc_->LogBatch(admin_, "ml", id, {}, {{"a", "1"}, {"a", "2"}}, {}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(svc_->LogBatch(admin_, "ml", "feedfeedfeedfeedfeedfeedfeedfeed", {}, {{"a", "1"}}, {}).code(),
            StatusCode::kNotFound);
}

TEST_P(TrackingTest, DatasetInputsAreStoredOncePerNameAndDigestInOrder) {
  tracking::Run r = NewRun();
  const std::string& id = r.info.run_id;
  tracking::DatasetInput train{{"train", "d1", "local", "{\"uri\": \"/data\"}", "", ""},
                               {{"mlflow.data.context", "training"}}};
  tracking::DatasetInput eval{{"eval", "d2", "code", "{}", "{\"cols\": []}", "{}"}, {}};
  ASSERT_TRUE(svc_->LogInputs(admin_, "ml", id, {train}).ok());
  ASSERT_TRUE(svc_->LogInputs(admin_, "ml", id, {train, eval}).ok());  // a retry + a new one
  auto got = svc_->GetRun(admin_, "ml", id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->inputs, (std::vector<tracking::DatasetInput>{train, eval}));
  tracking::DatasetInput bad = eval;
  bad.dataset.digest = std::string(37, 'x');
  Status st = svc_->LogInputs(admin_, "ml", id, {train, bad});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.field(), "datasets[1].dataset.digest");
  bad = eval;
  bad.dataset.source.clear();
  EXPECT_EQ(svc_->LogInputs(admin_, "ml", id, {bad}).field(), "datasets[0].dataset.source");
  EXPECT_EQ(svc_->LogInputs(admin_, "ml", "feedfeedfeedfeedfeedfeedfeedfeed", {train}).code(),
            StatusCode::kNotFound);
}

TEST_P(TrackingTest, LimitsNameTheField) {
  tracking::Run r = NewRun();
  const std::string& id = r.info.run_id;
  std::vector<Metric> many(1001, Metric{"m", 1, 1, 0});
  Status s = svc_->LogBatch(admin_, "ml", id, many, {}, {});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.field(), "metrics");
  EXPECT_NE(s.message().find("1000"), std::string::npos);
  std::vector<Param> params(101, Param{"p", "v"});
  EXPECT_EQ(svc_->LogBatch(admin_, "ml", id, {}, params, {}).field(), "params");
  std::vector<Tag> tags(101, Tag{"t", "v"});
  EXPECT_EQ(svc_->LogBatch(admin_, "ml", id, {}, {}, tags).field(), "tags");
  std::vector<Metric> m900(900, Metric{"m", 1, 1, 0});
  std::vector<Param> p100(100, Param{"p", "v"});
  std::vector<Tag> t100(1, Tag{"t", "v"});
  EXPECT_EQ(svc_->LogBatch(admin_, "ml", id, m900, p100, t100).code(), StatusCode::kInvalidArgument);
  s = svc_->LogBatch(admin_, "ml", id, {}, {{"p", std::string(6001, 'x')}}, {});
  EXPECT_EQ(s.field(), "params[0]");
  EXPECT_NE(s.message().find("6000"), std::string::npos);
  EXPECT_EQ(svc_->LogBatch(admin_, "ml", id, {}, {}, {{"t", std::string(8001, 'x')}}).field(), "tags[0]");
  EXPECT_TRUE(svc_->LogBatch(admin_, "ml", id, {}, {}, {{"t", std::string(8000, 'x')}}).ok());
  s = svc_->LogBatch(admin_, "ml", id, {{std::string(251, 'k'), 1, 1, 0}}, {}, {});
  EXPECT_EQ(s.field(), "metrics[0].key");
  EXPECT_NE(s.message().find("250"), std::string::npos);
  EXPECT_EQ(svc_->LogBatch(admin_, "ml", id, {{"../x", 1, 1, 0}}, {}, {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(svc_->LogBatch(admin_, "ml", id, {{"a*b", 1, 1, 0}}, {}, {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(svc_->LogBatch(admin_, "ml", id, {}, {{"", "v"}}, {}).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(svc_->LogBatch(admin_, "ml", id, {{"train/loss:0 a-b.c", 1, 1, 0}}, {}, {}).ok());
}

TEST_P(TrackingTest, LatestMetricAndNaNInf) {
  tracking::Run r = NewRun();
  const std::string& id = r.info.run_id;
  const double inf = std::numeric_limits<double>::infinity();
  ASSERT_TRUE(svc_->LogBatch(admin_, "ml", id,
                             {{"loss", 3, 100, 1}, {"loss", 2, 101, 2}, {"loss", 9, 99, 0},
                              {"n", std::nan(""), 5, 0}, {"i", -inf, 5, 0}, {"j", inf, 5, 0}},
                             {}, {})
                  .ok());
  // A later step logged earlier in time still wins; an older step does not.
  ASSERT_TRUE(svc_->LogBatch(admin_, "ml", id, {{"loss", 7, 50, 1}}, {}, {}).ok());
  tracking::Run got = *svc_->GetRun(admin_, "ml", id);
  ASSERT_EQ(got.latest_metrics.size(), 4u);
  EXPECT_EQ(got.latest_metrics[0].key, "i");
  EXPECT_EQ(got.latest_metrics[0].value, -inf);
  EXPECT_EQ(got.latest_metrics[1].value, inf);
  EXPECT_EQ(got.latest_metrics[2].key, "loss");
  EXPECT_EQ(got.latest_metrics[2].value, 2);
  EXPECT_EQ(got.latest_metrics[2].step, 2);
  EXPECT_EQ(got.latest_metrics[2].timestamp, 101);
  EXPECT_TRUE(std::isnan(got.latest_metrics[3].value));
  auto h = *svc_->GetHistory(admin_, "ml", {.run_id = id, .key = "loss"});
  ASSERT_EQ(h.points.size(), 4u);
  EXPECT_EQ(h.points[0].value, 9);
  EXPECT_EQ(h.points[1].value, 7);  // step 1, ts 50 before ts 100
  EXPECT_EQ(h.points[2].value, 3);
  auto hn = *svc_->GetHistory(admin_, "ml", {.run_id = id, .key = "n"});
  ASSERT_EQ(hn.points.size(), 1u);
  EXPECT_TRUE(std::isnan(hn.points[0].value));
  // A zero timestamp means "now".
  ASSERT_TRUE(svc_->LogBatch(admin_, "ml", id, {{"z", 1, 0, 0}}, {}, {}).ok());
  EXPECT_EQ(svc_->GetHistory(admin_, "ml", {.run_id = id, .key = "z"})->points[0].timestamp,
            clock_.NowMicros() / 1000);
}

TEST_P(TrackingTest, ReplayedBatchIsStoredOnce) {
  tracking::Run r = NewRun();
  std::vector<Metric> batch;
  for (int i = 0; i < 10; ++i) batch.push_back({"m", double(i), 1000 + i, i});
  ASSERT_TRUE(svc_->LogBatch(admin_, "ml", r.info.run_id, batch, {{"p", "1"}}, {}).ok());
  ASSERT_TRUE(svc_->LogBatch(admin_, "ml", r.info.run_id, batch, {{"p", "1"}}, {}).ok());
  auto h = *svc_->GetHistory(admin_, "ml", {.run_id = r.info.run_id, .key = "m"});
  EXPECT_EQ(h.points.size(), 10u);
  EXPECT_EQ(h.total_points, 10);
  // A different batch with some equal points is new data.
  batch.resize(5);
  ASSERT_TRUE(svc_->LogBatch(admin_, "ml", r.info.run_id, batch, {}, {}).ok());
  EXPECT_EQ(svc_->GetHistory(admin_, "ml", {.run_id = r.info.run_id, .key = "m"})->total_points, 15);
}

TEST_P(TrackingTest, ManySmallBatchesMergeIntoBlocks) {
  tracking::Run r = NewRun();
  // 1,000 single-point logs (tail merges) and big batches.
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(svc_->LogBatch(admin_, "ml", r.info.run_id, {{"m", double(i), 10 + i, i}}, {}, {}).ok());
  }
  for (int b = 0; b < 3; ++b) {
    std::vector<Metric> batch;
    for (int i = 0; i < 1000; ++i) {
      int s = 1000 + b * 1000 + i;
      batch.push_back({"m", double(s), 10 + s, s});
    }
    ASSERT_TRUE(svc_->LogBatch(admin_, "ml", r.info.run_id, batch, {}, {}).ok());
  }
  std::vector<Metric> all;
  HistoryRequest req{.run_id = r.info.run_id, .key = "m", .page = {.max_results = 700}};
  for (int pages = 0; pages < 100; ++pages) {
    auto h = svc_->GetHistory(admin_, "ml", req);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    EXPECT_EQ(h->total_points, 4000);
    all.insert(all.end(), h->points.begin(), h->points.end());
    if (h->next_page_token.empty()) break;
    req.page.page_token = h->next_page_token;
  }
  ASSERT_EQ(all.size(), 4000u);
  for (int i = 0; i < 4000; ++i) {
    ASSERT_EQ(all[i].step, i);
    ASSERT_EQ(all[i].value, i);
  }
  int64_t blocks = 0;
  ASSERT_TRUE(store::RunInTx(*store_, store::TxMode::kRead, [&](store::Tx& tx) -> Status {
                auto rs = tx.Query("SELECT COUNT(*) FROM metric_blocks");
                if (!rs.ok()) return rs.status();
                blocks = store::AsInt(rs->rows[0][0]);
                return OkStatus();
              }).ok());
  EXPECT_LT(blocks, 20);
}

TEST_P(TrackingTest, HistoryDownsamplesKeepingMinMaxLast) {
  tracking::Run r = NewRun();
  // 20,000 points: a sine wave with one spike up and one down.
  for (int b = 0; b < 20; ++b) {
    std::vector<Metric> batch;
    for (int i = 0; i < 1000; ++i) {
      int s = b * 1000 + i;
      double v = std::sin(s / 500.0);
      if (s == 12345) v = 100;
      if (s == 777) v = -100;
      batch.push_back({"m", v, 1000 + s, s});
    }
    ASSERT_TRUE(svc_->LogBatch(admin_, "ml", r.info.run_id, batch, {}, {}).ok());
  }
  auto h = svc_->GetHistory(admin_, "ml", {.run_id = r.info.run_id, .key = "m", .max_points = 300});
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_TRUE(h->downsampled);
  EXPECT_EQ(h->total_points, 20000);
  EXPECT_LE(h->points.size(), 300u);
  EXPECT_GE(h->points.size(), 200u);
  bool spike_up = false, spike_down = false;
  for (size_t i = 0; i < h->points.size(); ++i) {
    spike_up |= h->points[i].value == 100 && h->points[i].step == 12345;
    spike_down |= h->points[i].value == -100 && h->points[i].step == 777;
    if (i > 0) {
      EXPECT_LE(h->points[i - 1].step, h->points[i].step);
    }
  }
  EXPECT_TRUE(spike_up);
  EXPECT_TRUE(spike_down);
  EXPECT_EQ(h->points.back().step, 19999);  // the last point survives
  // A step range narrows it; few enough points come back whole.
  auto narrow = svc_->GetHistory(admin_, "ml", {.run_id = r.info.run_id, .key = "m", .start_step = 100,
                                                .end_step = 299, .max_points = 300});
  ASSERT_TRUE(narrow.ok());
  EXPECT_FALSE(narrow->downsampled);
  EXPECT_EQ(narrow->total_points, 200);
  ASSERT_EQ(narrow->points.size(), 200u);
  EXPECT_EQ(narrow->points.front().step, 100);
  EXPECT_EQ(narrow->points.back().step, 299);
  // Range that cuts blocks, downsampled: every bucket's extremes are real points.
  auto cut = *svc_->GetHistory(admin_, "ml", {.run_id = r.info.run_id, .key = "m", .start_step = 500,
                                              .end_step = 15499, .max_points = 30});
  EXPECT_TRUE(cut.downsampled);
  EXPECT_EQ(cut.total_points, 15000);
  EXPECT_LE(cut.points.size(), 30u);
  EXPECT_EQ(cut.points.front().step >= 500, true);
  EXPECT_EQ(cut.points.back().step, 15499);
  EXPECT_EQ(svc_->GetHistory(admin_, "ml", {.run_id = r.info.run_id, .key = "m", .max_points = 10001})
                .status()
                .field(),
            "max_points");
  EXPECT_EQ(svc_->GetHistory(admin_, "ml", {.run_id = "nope", .key = "m"}).status().code(),
            StatusCode::kNotFound);
  auto none = svc_->GetHistory(admin_, "ml", {.run_id = r.info.run_id, .key = "absent"});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->points.empty());
}

TEST_P(TrackingTest, ConcurrentLoggersStoreEveryPointOnce) {
  constexpr int kThreads = 10, kBatches = 20, kPerBatch = 100;
  std::vector<std::string> runs;
  for (int t = 0; t < kThreads; ++t) runs.push_back(NewRun().info.run_id);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<Metric> batch;
        for (int i = 0; i < kPerBatch; ++i) {
          int s = b * kPerBatch + i;
          batch.push_back({i % 2 ? "a" : "b", double(s), 1 + s, s});
        }
        // Every thread also writes to a shared run; params must not clash.
        if (!svc_->LogBatch(admin_, "ml", runs[t], batch, {{"p" + std::to_string(b), "v"}}, {}).ok()) ++failures;
        if (!svc_->LogBatch(admin_, "ml", runs[0], {{"shared", double(t), 1 + b, t * 1000 + b}}, {}, {}).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    for (const char* key : {"a", "b"}) {
      auto h = svc_->GetHistory(admin_, "ml", {.run_id = runs[t], .key = key, .page = {.max_results = 25000}});
      ASSERT_TRUE(h.ok());
      EXPECT_EQ(h->total_points, kBatches * kPerBatch / 2);
      EXPECT_EQ(h->points.size(), size_t(kBatches * kPerBatch / 2));
    }
    EXPECT_EQ(svc_->GetRun(admin_, "ml", runs[t])->params.size(), size_t(kBatches));
  }
  auto shared = *svc_->GetHistory(admin_, "ml", {.run_id = runs[0], .key = "shared", .page = {.max_results = 25000}});
  EXPECT_EQ(shared.total_points, kThreads * kBatches);
}

// ---------------------------------------------------------------- search

TEST_P(TrackingTest, SearchRunsFiltersOrdersAndPages) {
  auto e = *svc_->CreateExperiment(admin_, "ml", "s", {});
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(1000);
    tracking::Run r = NewRun(e.id, "run-" + std::to_string(i));
    ids.push_back(r.info.run_id);
    std::vector<Metric> m{{"acc", i / 10.0, 1, 0}};
    if (i % 3 != 0) m.push_back({"loss", 10.0 - i, 1, 0});
    ASSERT_TRUE(svc_->LogBatch(admin_, "ml", r.info.run_id, m, {{"lr", i % 2 ? "0.1" : "0.01"}},
                               {{"team", i < 5 ? "Ads" : "search"}})
                    .ok());
    if (i == 9) {
      ASSERT_TRUE(svc_->UpdateRun(admin_, "ml", r.info.run_id, RunStatus::kFinished, int64_t{5}, std::nullopt).ok());
    }
  }
  NewRun("0");  // another experiment
  auto search = [&](std::string filter, std::vector<std::string> order = {}, int64_t n = 100) {
    RunSearch q{.experiment_ids = {e.id}, .filter = std::move(filter), .order_by = std::move(order)};
    q.page.max_results = n;
    auto page = svc_->SearchRuns(admin_, "ml", q);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    std::vector<std::string> names;
    if (page.ok()) {
      for (auto& r : page->runs) names.push_back(r.info.run_name);
    }
    return names;
  };
  using V = std::vector<std::string>;
  // Default order: start_time DESC.
  EXPECT_EQ(search("").size(), 10u);
  EXPECT_EQ(search("")[0], "run-9");
  EXPECT_EQ(search("metrics.acc >= 0.7"), (V{"run-9", "run-8", "run-7"}));
  EXPECT_EQ(search("metrics.acc > 0.5 and params.lr = '0.1'"), (V{"run-9", "run-7"}));
  EXPECT_EQ(search("metrics.acc < 0.3", {"metrics.acc ASC"}), (V{"run-0", "run-1", "run-2"}));
  // Ordered by a metric some runs lack: those come last.
  V by_loss = search("", {"metrics.loss ASC"});
  EXPECT_EQ((V{by_loss.begin(), by_loss.begin() + 3}), (V{"run-8", "run-7", "run-5"}));
  EXPECT_EQ((V{by_loss.end() - 4, by_loss.end()}), (V{"run-9", "run-6", "run-3", "run-0"}));
  EXPECT_EQ(search("tags.team LIKE 'A%'").size(), 5u);
  EXPECT_EQ(search("tags.team LIKE 'a%'").size(), 0u);  // LIKE is case-sensitive
  EXPECT_EQ(search("tags.team ILIKE 'a%'").size(), 5u);
  EXPECT_EQ(search("attributes.status = 'FINISHED'"), (V{"run-9"}));
  EXPECT_EQ(search("attributes.status != 'FINISHED'").size(), 9u);
  EXPECT_EQ(search("attributes.run_name IN ('run-1', 'run-3')"), (V{"run-3", "run-1"}));
  EXPECT_EQ(search("attributes.run_name NOT IN ('run-1', 'run-3')").size(), 8u);
  EXPECT_EQ(search("attributes.run_id = '" + ids[4] + "'"), (V{"run-4"}));
  EXPECT_EQ(search("attributes.end_time = 5"), (V{"run-9"}));
  EXPECT_EQ(search("params.lr = '0.01'", {"attributes.run_name DESC"}),
            (V{"run-8", "run-6", "run-4", "run-2", "run-0"}));
  EXPECT_EQ(search("", {"params.lr DESC", "attributes.run_name ASC"}, 3), (V{"run-1", "run-3", "run-5"}));
  // Pages: every run once, in order.
  V paged;
  RunSearch q{.experiment_ids = {e.id}, .order_by = {"metrics.acc DESC"}};
  q.page.max_results = 3;
  for (int i = 0; i < 10; ++i) {
    auto page = *svc_->SearchRuns(admin_, "ml", q);
    for (auto& r : page.runs) paged.push_back(r.info.run_name);
    if (page.next_page_token.empty()) break;
    q.page.page_token = page.next_page_token;
  }
  EXPECT_EQ(paged, search("", {"metrics.acc DESC"}));
  EXPECT_EQ(paged.size(), 10u);
  // Pages across the runs that lack the order key, with a page of only those.
  for (int64_t size : {3, 7, 1}) {
    paged.clear();
    q = RunSearch{.experiment_ids = {e.id}, .order_by = {"metrics.loss DESC"}};
    q.page.max_results = size;
    for (int i = 0; i < 20; ++i) {
      auto page = *svc_->SearchRuns(admin_, "ml", q);
      for (auto& r : page.runs) paged.push_back(r.info.run_name);
      if (page.next_page_token.empty()) break;
      q.page.page_token = page.next_page_token;
    }
    EXPECT_EQ(paged, (V{"run-1", "run-2", "run-4", "run-5", "run-7", "run-8", "run-9", "run-6", "run-3",
                        "run-0"}))
        << size;
  }
  // Runs carry their data; deleted runs only in their view.
  auto one = *svc_->SearchRuns(admin_, "ml", {.experiment_ids = {e.id}, .filter = "attributes.run_name = 'run-2'"});
  ASSERT_EQ(one.runs.size(), 1u);
  EXPECT_EQ(one.runs[0].params, (std::vector<Param>{{"lr", "0.01"}}));
  EXPECT_EQ(one.runs[0].latest_metrics.size(), 2u);
  EXPECT_EQ(one.runs[0].tags.size(), 2u);
  ASSERT_TRUE(svc_->SetRunLifecycle(admin_, "ml", ids[2], Lifecycle::kDeleted).ok());
  EXPECT_EQ(search("").size(), 9u);
  auto deleted = *svc_->SearchRuns(admin_, "ml", {.experiment_ids = {e.id}, .view = ViewType::kDeletedOnly});
  EXPECT_EQ(deleted.runs.size(), 1u);
  // No experiment ids: the whole project (11 runs, one deleted).
  EXPECT_EQ(svc_->SearchRuns(admin_, "ml", {})->runs.size(), 10u);
  // Another project's experiment shows nothing.
  EXPECT_TRUE(svc_->SearchRuns(admin_, "other", {.experiment_ids = {e.id}})->runs.empty());
  // Errors.
  auto bad = svc_->SearchRuns(admin_, "ml", {.filter = "metrics.acc >"});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().field(), "filter");
  auto bad_order = svc_->SearchRuns(admin_, "ml", {.order_by = {"metrics.acc sideways"}});
  EXPECT_EQ(bad_order.status().field(), "order_by[0]");
  EXPECT_EQ(svc_->SearchRuns(admin_, "ml", {.page = {.max_results = 50001}}).status().field(), "max_results");
  EXPECT_EQ(svc_->SearchRuns(admin_, "ml", {.page = {.page_token = "%%"}}).status().field(), "page_token");
  EXPECT_EQ(svc_->SearchRuns(admin_, "ml", {.experiment_ids = {"x"}}).status().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------- logged models

TEST_P(TrackingTest, LoggedModelLifecycleFromPendingToReady) {
  tracking::Run run = NewRun();
  clock_.Advance(1000);
  auto m = models_->Create(admin_, "ml",
                           {.experiment_id = "0",
                            .name = "clf",
                            .model_type = "Classifier",
                            .source_run_id = run.info.run_id,
                            .params = {{"alpha", "0.5"}},
                            .tags = {{"b", "1"}, {"a", "x"}, {"b", "2"}}});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->model_id.size(), 34u);
  EXPECT_EQ(m->model_id.substr(0, 2), "m-");
  EXPECT_EQ(m->model_id.find_first_not_of("0123456789abcdef", 2), std::string::npos);
  EXPECT_EQ(m->experiment_id, run.info.experiment_id);
  EXPECT_EQ(m->artifact_location,
            "mlflow-artifacts:/" + run.info.experiment_id + "/models/" + m->model_id + "/artifacts");
  EXPECT_EQ(m->status, LoggedModelStatus::kPending);
  EXPECT_EQ(m->user_id, admin_.user_name);
  EXPECT_EQ(m->tags, (std::vector<Tag>{{"a", "x"}, {"b", "2"}}));
  EXPECT_EQ(m->params, (std::vector<Param>{{"alpha", "0.5"}}));

  clock_.Advance(5'000'000);
  auto ready = models_->Finalize(admin_, "ml", m->model_id, LoggedModelStatus::kReady);
  ASSERT_TRUE(ready.ok()) << ready.status().ToString();
  EXPECT_EQ(ready->status, LoggedModelStatus::kReady);
  EXPECT_EQ(ready->last_update_time, m->creation_time + 5000);
  EXPECT_EQ(models_->Finalize(admin_, "ml", m->model_id, LoggedModelStatus::kPending).status().code(),
            StatusCode::kInvalidArgument);

  // Outputs of the run, once per (model, step), in the order logged.
  ASSERT_TRUE(models_->LogOutputs(admin_, "ml", run.info.run_id, {{m->model_id, 3}}).ok());
  ASSERT_TRUE(models_->LogOutputs(admin_, "ml", run.info.run_id, {{m->model_id, 3}}).ok());
  auto got = svc_->GetRun(admin_, "ml", run.info.run_id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->outputs, (std::vector<ModelOutput>{{m->model_id, 3}}));
  EXPECT_EQ(models_->LogOutputs(admin_, "ml", run.info.run_id, {{"m-0000", 0}}).code(),
            StatusCode::kNotFound);

  // A default name is generated; a name with '/' is refused.
  auto unnamed = models_->Create(admin_, "ml", {.experiment_id = "0"});
  ASSERT_TRUE(unnamed.ok());
  EXPECT_FALSE(unnamed->name.empty());
  EXPECT_EQ(models_->Create(admin_, "ml", {.experiment_id = "0", .name = "a/b"}).status().code(),
            StatusCode::kInvalidArgument);
  // A source run of another project is refused.
  auto other_run = svc_->CreateRun(admin_, "other", {});
  ASSERT_TRUE(other_run.ok());
  EXPECT_EQ(models_->Create(admin_, "ml", {.experiment_id = "0", .source_run_id = other_run->info.run_id})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST_P(TrackingTest, LoggedModelTagsParamsAndSoftDelete) {
  auto m = models_->Create(admin_, "ml", {.experiment_id = "0", .name = "m"});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const std::string id = m->model_id;
  ASSERT_TRUE(models_->SetTags(admin_, "ml", id, {{"k", "1"}}).ok());
  ASSERT_TRUE(models_->SetTags(admin_, "ml", id, {{"k", "2"}}).ok());
  ASSERT_TRUE(models_->LogParams(admin_, "ml", id, {{"p", "1"}}).ok());
  ASSERT_TRUE(models_->LogParams(admin_, "ml", id, {{"p", "1"}}).ok());  // same value: a no-op
  EXPECT_EQ(models_->LogParams(admin_, "ml", id, {{"q", "1"}, {"p", "2"}}).code(),
            StatusCode::kInvalidArgument);
  auto got = models_->Get(admin_, "ml", id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->tags, (std::vector<Tag>{{"k", "2"}}));
  EXPECT_EQ(got->params, (std::vector<Param>{{"p", "1"}}));  // the failed call stored nothing
  EXPECT_TRUE(models_->DeleteTag(admin_, "ml", id, "k").ok());
  EXPECT_EQ(models_->DeleteTag(admin_, "ml", id, "k").code(), StatusCode::kNotFound);

  // Limits name the field.
  std::vector<Tag> many(101, Tag{"k", "v"});
  for (size_t i = 0; i < many.size(); ++i) many[i].key += std::to_string(i);
  EXPECT_EQ(models_->SetTags(admin_, "ml", id, many).code(), StatusCode::kInvalidArgument);
  Status long_value = models_->LogParams(admin_, "ml", id, {{"big", std::string(6001, 'x')}});
  EXPECT_EQ(long_value.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(long_value.field(), "params[0].value");
  EXPECT_EQ(models_->SetTags(admin_, "ml", id, {{std::string(251, 'k'), "v"}}).code(),
            StatusCode::kInvalidArgument);

  // Roles: viewers read, editors write; other projects do not see it.
  Principal viewer = MakeUser("vera", Role::kViewer);
  EXPECT_TRUE(models_->Get(viewer, "ml", id).ok());
  EXPECT_EQ(models_->SetTags(viewer, "ml", id, {{"x", "y"}}).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(models_->Create(viewer, "ml", {.experiment_id = "0"}).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(models_->Get(admin_, "other", id).status().code(), StatusCode::kNotFound);

  // Soft delete: gone for reads and writes; a second delete is a no-op.
  ASSERT_TRUE(models_->Delete(admin_, "ml", id).ok());
  EXPECT_TRUE(models_->Delete(admin_, "ml", id).ok());
  EXPECT_EQ(models_->Get(admin_, "ml", id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(models_->Finalize(admin_, "ml", id, LoggedModelStatus::kReady).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(models_->Delete(admin_, "ml", "m-unknown").code(), StatusCode::kNotFound);
  auto page = models_->Search(admin_, "ml", {.experiment_ids = {"0"}});
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->models.empty());
}

TEST_P(TrackingTest, SearchLoggedModelsFiltersOrdersAndPages) {
  auto exp = svc_->CreateExperiment(admin_, "ml", "search", {});
  ASSERT_TRUE(exp.ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(1000);
    auto m = models_->Create(admin_, "ml",
                             {.experiment_id = exp->id,
                              .name = "model-" + std::to_string(i),
                              .params = {{"lr", i % 2 == 0 ? "even" : "odd"}}});
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    ids.push_back(m->model_id);
  }
  ASSERT_TRUE(models_->Finalize(admin_, "ml", ids[1], LoggedModelStatus::kReady).ok());
  ASSERT_TRUE(models_->Create(admin_, "ml", {.experiment_id = "0", .name = "elsewhere"}).ok());

  auto names = [](const LoggedModelPage& p) {
    std::vector<std::string> out;
    for (const LoggedModel& m : p.models) out.push_back(m.name);
    return out;
  };
  // Newest first by default; pages continue where they stopped.
  auto p1 = models_->Search(admin_, "ml", {.experiment_ids = {exp->id}, .page = {2, ""}});
  ASSERT_TRUE(p1.ok()) << p1.status().ToString();
  EXPECT_EQ(names(*p1), (std::vector<std::string>{"model-4", "model-3"}));
  auto p2 = models_->Search(admin_, "ml",
                            {.experiment_ids = {exp->id}, .page = {10, p1->next_page_token}});
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(names(*p2), (std::vector<std::string>{"model-2", "model-1", "model-0"}));
  EXPECT_TRUE(p2->next_page_token.empty());

  auto by = [&](const std::string& filter, std::vector<LoggedModelOrder> order = {}) {
    auto r = models_->Search(admin_, "ml",
                             {.experiment_ids = {exp->id}, .filter = filter, .order_by = order});
    EXPECT_TRUE(r.ok()) << filter << ": " << r.status().ToString();
    return r.ok() ? names(*r) : std::vector<std::string>{};
  };
  EXPECT_EQ(by("params.lr = 'odd'", {{"name", true}}),
            (std::vector<std::string>{"model-1", "model-3"}));
  EXPECT_EQ(by("status = 'LOGGED_MODEL_READY'"), (std::vector<std::string>{"model-1"}));
  EXPECT_EQ(by("status = 'READY'"), (std::vector<std::string>{"model-1"}));
  EXPECT_EQ(by("name LIKE 'model-%' AND name != 'model-0'", {{"creation_timestamp", true}}),
            (std::vector<std::string>{"model-1", "model-2", "model-3", "model-4"}));
  EXPECT_EQ(by("name IN ('model-0', 'model-4')", {{"name", false}}),
            (std::vector<std::string>{"model-4", "model-0"}));
  EXPECT_TRUE(by("metrics.acc > 0.5").empty());
  auto bad = models_->Search(admin_, "ml", {.experiment_ids = {exp->id}, .filter = "colour = 'red'"});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  auto no_exp = models_->Search(admin_, "ml", {});
  EXPECT_EQ(no_exp.status().code(), StatusCode::kInvalidArgument);
}

TEST(GroupCommit, OneBadWorkDoesNotFailItsNeighbours) {
  char tmpl[] = "/tmp/lathe-gc-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  auto store = *store::OpenStore({.url = dir + "/db"});
  ASSERT_TRUE(store::RunInTx(*store, store::TxMode::kWrite, [](store::Tx& tx) {
                return tx.Exec("CREATE TABLE t (k INTEGER PRIMARY KEY)").status();
              }).ok());
  GroupCommitter gc(*store);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0}, dup{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 50; ++j) {
        int64_t k = (i % 4) * 1000 + j;  // two threads insert each key: one conflicts
        Status s = gc.Run([&](store::Tx& tx) { return tx.Exec("INSERT INTO t (k) VALUES (?)", {k}).status(); });
        if (s.ok()) {
          ++ok;
        } else if (s.code() == StatusCode::kAlreadyExists) {
          ++dup;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 200);
  EXPECT_EQ(dup.load(), 200);
  EXPECT_GT(gc.stats().works, 0);
  store.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lathe::tracking
