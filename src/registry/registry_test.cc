// RegistryService against SQLite (a temp directory per test) and, when
// LATHE_TEST_POSTGRES_URL is set, PostgreSQL (a fresh schema per test), as
// tracking_test does.
#include "registry/registry.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <thread>

namespace lathe::registry {
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
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  PGresult* res = PQexec(conn, sql.c_str());
  EXPECT_TRUE(PQresultStatus(res) == PGRES_COMMAND_OK) << sql << ": " << PQresultErrorMessage(res);
  PQclear(res);
  PQfinish(conn);
}

std::vector<int64_t> Numbers(const std::vector<ModelVersion>& versions) {
  std::vector<int64_t> out;
  for (const ModelVersion& v : versions) out.push_back(v.version);
  return out;
}

std::vector<std::string> Names(const std::vector<RegisteredModel>& models) {
  std::vector<std::string> out;
  for (const RegisteredModel& m : models) out.push_back(m.name);
  return out;
}

class RegistryTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string url;
    if (GetParam() == "postgres") {
      const char* base = std::getenv("LATHE_TEST_POSTGRES_URL");
      if (base == nullptr || base[0] == '\0') {
        GTEST_SKIP() << "PostgreSQL not tested: set LATHE_TEST_POSTGRES_URL";
      }
      pg_base_ = base;
      schema_ = "r_" + RandomSuffix();
      PgAdmin(pg_base_, "CREATE SCHEMA " + schema_);
      url = pg_base_ + (pg_base_.find('?') == std::string::npos ? "?" : "&") +
            "options=-csearch_path%3D" + schema_;
    } else {
      dir_ = std::filesystem::temp_directory_path() / ("lathe_registry_test_" + RandomSuffix());
      url = "sqlite://" + (dir_ / "lathe.db").string();
    }
    auto s = store::OpenStore({.url = url, .pool_size = 8});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
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
    ASSERT_TRUE(tenancy_->CreateProject(admin_, "other", "").ok());
    tracking_ = std::make_unique<TrackingService>(*store_, *tenancy_, clock_);
    reg_ = std::make_unique<RegistryService>(*store_, *tenancy_, *tracking_, clock_);
  }
  void TearDown() override {
    reg_.reset();
    tracking_.reset();
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

  RegisteredModel NewModel(const std::string& name, const std::vector<Tag>& tags = {},
                           const std::string& project = "ml") {
    auto m = reg_->CreateModel(admin_, project, name, "", tags);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : RegisteredModel{};
  }

  ModelVersion NewVersion(const std::string& model, const std::string& run_id = "",
                          const std::vector<Tag>& tags = {}, const std::string& source = "") {
    CreateModelVersion req{
        .name = model,
        .source = source.empty() ? "mlflow-artifacts:/1/abc/artifacts/model" : source,
        .run_id = run_id,
        .tags = tags};
    auto v = reg_->CreateVersion(admin_, "ml", req);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : ModelVersion{};
  }

  std::filesystem::path dir_;
  std::string pg_base_, schema_;
  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<tenancy::TenancyService> tenancy_;
  std::unique_ptr<TrackingService> tracking_;
  std::unique_ptr<RegistryService> reg_;
  Principal admin_;
};

INSTANTIATE_TEST_SUITE_P(Drivers, RegistryTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

// ---------------------------------------------------------------- models

TEST_P(RegistryTest, ModelNamesAreUniquePerProject) {
  auto m = reg_->CreateModel(admin_, "ml", "churn", "predicts churn", {{"team", "ads"}});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->name, "churn");
  EXPECT_EQ(m->project, "ml");
  EXPECT_EQ(m->description, "predicts churn");
  EXPECT_EQ(m->tags, (std::vector<Tag>{{"team", "ads"}}));
  EXPECT_EQ(m->creation_timestamp, clock_.NowMicros() / 1000);
  EXPECT_EQ(m->last_updated_timestamp, m->creation_timestamp);
  EXPECT_TRUE(m->latest_versions.empty());
  EXPECT_TRUE(m->aliases.empty());

  auto dup = reg_->CreateModel(admin_, "ml", "churn", "", {});
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.status().field(), "name");
  EXPECT_TRUE(reg_->CreateModel(admin_, "other", "churn", "", {}).ok());

  auto got = reg_->GetModel(admin_, "ml", "churn");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->description, "predicts churn");
  EXPECT_EQ(reg_->GetModel(admin_, "ml", "nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->GetModel(admin_, "nope", "churn").status().code(), StatusCode::kNotFound);

  for (const std::string& bad :
       {std::string(), std::string("a/b"), std::string("tab\there"), std::string(257, 'x')}) {
    auto st = reg_->CreateModel(admin_, "ml", bad, "", {});
    EXPECT_EQ(st.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(st.status().field(), "name");
  }
  EXPECT_TRUE(reg_->CreateModel(admin_, "ml", std::string(256, 'x'), "", {}).ok());
  EXPECT_TRUE(reg_->CreateModel(admin_, "ml", "with space: and.dots-ü", "", {}).ok());
}

TEST_P(RegistryTest, UpdateTagsAndDelete) {
  NewModel("m");
  clock_.Advance(1000);
  auto u = reg_->UpdateModel(admin_, "ml", "m", "better");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->description, "better");
  EXPECT_EQ(u->last_updated_timestamp, u->creation_timestamp + 1);

  ASSERT_TRUE(reg_->SetModelTag(admin_, "ml", "m", {"k", "v1"}).ok());
  ASSERT_TRUE(reg_->SetModelTag(admin_, "ml", "m", {"k", "v2"}).ok());  // last write wins
  ASSERT_TRUE(reg_->SetModelTag(admin_, "ml", "m", {"a", ""}).ok());
  EXPECT_EQ(reg_->GetModel(admin_, "ml", "m")->tags, (std::vector<Tag>{{"a", ""}, {"k", "v2"}}));
  ASSERT_TRUE(reg_->DeleteModelTag(admin_, "ml", "m", "k").ok());
  EXPECT_TRUE(reg_->DeleteModelTag(admin_, "ml", "m", "k").ok());  // a retried delete
  EXPECT_EQ(reg_->GetModel(admin_, "ml", "m")->tags, (std::vector<Tag>{{"a", ""}}));
  EXPECT_EQ(reg_->SetModelTag(admin_, "ml", "nope", {"k", "v"}).code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->DeleteModelTag(admin_, "ml", "nope", "k").code(), StatusCode::kNotFound);

  NewVersion("m");
  NewVersion("m");
  ASSERT_TRUE(reg_->SetAlias(admin_, "ml", "m", "champion", 2).ok());
  ASSERT_TRUE(reg_->SetVersionTag(admin_, "ml", "m", 1, {"k", "v"}).ok());
  ASSERT_TRUE(reg_->DeleteModel(admin_, "ml", "m").ok());
  EXPECT_EQ(reg_->GetModel(admin_, "ml", "m").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->DeleteModel(admin_, "ml", "m").code(), StatusCode::kNotFound);
  // A new model of the same name starts over, with nothing of the old one.
  NewModel("m");
  EXPECT_EQ(NewVersion("m").version, 1);
  auto m = reg_->GetModel(admin_, "ml", "m");
  EXPECT_TRUE(m->tags.empty());
  EXPECT_TRUE(m->aliases.empty());
  EXPECT_TRUE(reg_->GetVersion(admin_, "ml", "m", 1)->tags.empty());
}

// ---------------------------------------------------------------- versions

TEST_P(RegistryTest, VersionsAreNumberedPerModelAndNeverReused) {
  NewModel("a");
  NewModel("b");
  clock_.Advance(5000);
  ModelVersion v1 = NewVersion("a", "", {{"k", "v"}});
  EXPECT_EQ(v1.name, "a");
  EXPECT_EQ(v1.version, 1);
  EXPECT_EQ(v1.status, ModelVersionStatus::kReady);
  EXPECT_EQ(v1.current_stage, "None");
  EXPECT_EQ(v1.user_id, "admin");
  EXPECT_EQ(v1.tags, (std::vector<Tag>{{"k", "v"}}));
  EXPECT_EQ(v1.creation_timestamp, clock_.NowMicros() / 1000);
  // Creating a version moves the model's update time.
  EXPECT_EQ(reg_->GetModel(admin_, "ml", "a")->last_updated_timestamp, v1.creation_timestamp);
  EXPECT_EQ(NewVersion("a").version, 2);
  EXPECT_EQ(NewVersion("a").version, 3);
  EXPECT_EQ(NewVersion("b").version, 1);
  ASSERT_TRUE(reg_->DeleteVersion(admin_, "ml", "a", 3).ok());
  EXPECT_EQ(reg_->GetVersion(admin_, "ml", "a", 3).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->DeleteVersion(admin_, "ml", "a", 3).code(), StatusCode::kNotFound);
  EXPECT_EQ(NewVersion("a").version, 4);
  ASSERT_TRUE(reg_->DeleteVersion(admin_, "ml", "a", 4).ok());
  EXPECT_EQ(NewVersion("a").version, 5);

  auto bad = reg_->CreateVersion(admin_, "ml", {.name = "a", .source = ""});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().field(), "source");
  EXPECT_EQ(reg_->CreateVersion(admin_, "ml", {.name = "nope", .source = "s3://x"}).status().code(),
            StatusCode::kNotFound);

  clock_.Advance(1000);
  auto u = reg_->UpdateVersion(admin_, "ml", "a", 1, "first");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->description, "first");
  EXPECT_EQ(u->last_updated_timestamp, clock_.NowMicros() / 1000);
  EXPECT_EQ(reg_->UpdateVersion(admin_, "ml", "a", 9, "x").status().code(), StatusCode::kNotFound);

  ASSERT_TRUE(reg_->SetVersionTag(admin_, "ml", "a", 1, {"k", "w"}).ok());
  ASSERT_TRUE(reg_->SetVersionTag(admin_, "ml", "a", 1, {"z", "1"}).ok());
  EXPECT_EQ(reg_->GetVersion(admin_, "ml", "a", 1)->tags,
            (std::vector<Tag>{{"k", "w"}, {"z", "1"}}));
  ASSERT_TRUE(reg_->DeleteVersionTag(admin_, "ml", "a", 1, "k").ok());
  EXPECT_TRUE(reg_->DeleteVersionTag(admin_, "ml", "a", 1, "k").ok());
  EXPECT_EQ(reg_->GetVersion(admin_, "ml", "a", 1)->tags, (std::vector<Tag>{{"z", "1"}}));
  EXPECT_EQ(reg_->SetVersionTag(admin_, "ml", "a", 3, {"k", "v"}).code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->DeleteVersionTag(admin_, "ml", "a", 3, "k").code(), StatusCode::kNotFound);
}

TEST_P(RegistryTest, ConcurrentRegistrationsGetDistinctNumbers) {
  NewModel("m");
  constexpr int kThreads = 6, kEach = 10;
  std::vector<std::vector<int64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto v = reg_->CreateVersion(admin_, "ml", {.name = "m", .source = "s3://m"});
        if (v.ok()) got[t].push_back(v->version);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<int64_t> all;
  for (const auto& g : got) all.insert(g.begin(), g.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), kThreads * kEach);
}

TEST_P(RegistryTest, AliasesMoveAndGoWithTheirVersion) {
  NewModel("m");
  NewVersion("m");
  NewVersion("m");
  NewVersion("m");
  ASSERT_TRUE(reg_->SetAlias(admin_, "ml", "m", "champion", 1).ok());
  ASSERT_TRUE(reg_->SetAlias(admin_, "ml", "m", "challenger", 2).ok());
  EXPECT_EQ(reg_->GetVersionByAlias(admin_, "ml", "m", "champion")->version, 1);
  // Setting an alias that exists moves it.
  ASSERT_TRUE(reg_->SetAlias(admin_, "ml", "m", "champion", 2).ok());
  auto v2 = reg_->GetVersionByAlias(admin_, "ml", "m", "champion");
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->version, 2);
  EXPECT_EQ(v2->aliases, (std::vector<std::string>{"challenger", "champion"}));
  EXPECT_TRUE(reg_->GetVersion(admin_, "ml", "m", 1)->aliases.empty());
  EXPECT_EQ(reg_->GetModel(admin_, "ml", "m")->aliases,
            (std::vector<ModelAlias>{{"challenger", 2}, {"champion", 2}}));

  EXPECT_EQ(reg_->SetAlias(admin_, "ml", "m", "x", 9).code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->SetAlias(admin_, "ml", "nope", "x", 1).code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->GetVersionByAlias(admin_, "ml", "m", "nope").status().code(),
            StatusCode::kNotFound);
  for (const std::string& bad :
       {std::string("latest"), std::string("LaTeSt"), std::string("v1"), std::string("V12"),
        std::string(""), std::string("a b"), std::string("a.b"), std::string(256, 'a')}) {
    Status st = reg_->SetAlias(admin_, "ml", "m", bad, 1);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(st.field(), "alias") << bad;
  }
  EXPECT_TRUE(reg_->SetAlias(admin_, "ml", "m", std::string(255, 'a'), 1).ok());
  EXPECT_TRUE(reg_->SetAlias(admin_, "ml", "m", "v1x", 1).ok());
  EXPECT_TRUE(reg_->SetAlias(admin_, "ml", "m", "version_1-b", 1).ok());

  ASSERT_TRUE(reg_->DeleteAlias(admin_, "ml", "m", "challenger").ok());
  EXPECT_EQ(reg_->GetVersionByAlias(admin_, "ml", "m", "challenger").status().code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(reg_->DeleteAlias(admin_, "ml", "m", "challenger").ok());  // a retried delete
  // Deleting a version drops its aliases.
  ASSERT_TRUE(reg_->DeleteVersion(admin_, "ml", "m", 2).ok());
  EXPECT_EQ(reg_->GetVersionByAlias(admin_, "ml", "m", "champion").status().code(),
            StatusCode::kNotFound);
  auto m = reg_->GetModel(admin_, "ml", "m");
  ASSERT_TRUE(m.ok());
  for (const ModelAlias& a : m->aliases) EXPECT_EQ(a.version, 1);
}

TEST_P(RegistryTest, StageTransitionsArchiveExistingVersions) {
  NewModel("m");
  for (int i = 0; i < 4; ++i) NewVersion("m");
  auto v1 = reg_->TransitionStage(admin_, "ml", "m", 1, "production", false);
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(v1->current_stage, "Production");  // any case in, capitalised out
  ASSERT_TRUE(reg_->TransitionStage(admin_, "ml", "m", 2, "Production", false).ok());
  EXPECT_EQ(reg_->GetVersion(admin_, "ml", "m", 1)->current_stage, "Production");
  ASSERT_TRUE(reg_->TransitionStage(admin_, "ml", "m", 3, "STAGING", false).ok());
  clock_.Advance(2000);
  auto v4 = reg_->TransitionStage(admin_, "ml", "m", 4, "Production", true);
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->last_updated_timestamp, clock_.NowMicros() / 1000);
  auto a1 = reg_->GetVersion(admin_, "ml", "m", 1);
  EXPECT_EQ(a1->current_stage, "Archived");
  EXPECT_EQ(a1->last_updated_timestamp, clock_.NowMicros() / 1000);
  EXPECT_EQ(reg_->GetVersion(admin_, "ml", "m", 2)->current_stage, "Archived");
  EXPECT_EQ(reg_->GetVersion(admin_, "ml", "m", 3)->current_stage, "Staging");  // other stages stay
  EXPECT_EQ(reg_->GetModel(admin_, "ml", "m")->last_updated_timestamp, clock_.NowMicros() / 1000);

  auto bad = reg_->TransitionStage(admin_, "ml", "m", 1, "Prod", false);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().field(), "stage");
  auto archive_none = reg_->TransitionStage(admin_, "ml", "m", 1, "None", true);
  EXPECT_EQ(archive_none.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(archive_none.status().field(), "archive_existing_versions");
  EXPECT_EQ(reg_->TransitionStage(admin_, "ml", "m", 9, "None", false).status().code(),
            StatusCode::kNotFound);
  ASSERT_TRUE(reg_->TransitionStage(admin_, "ml", "m", 3, "none", false).ok());
  EXPECT_EQ(reg_->GetVersion(admin_, "ml", "m", 3)->current_stage, "None");
}

TEST_P(RegistryTest, LatestVersionsAreTheHighestPerStage) {
  NewModel("m");
  for (int i = 0; i < 5; ++i) NewVersion("m");
  EXPECT_EQ(Numbers(reg_->GetModel(admin_, "ml", "m")->latest_versions), (std::vector<int64_t>{5}));
  ASSERT_TRUE(reg_->TransitionStage(admin_, "ml", "m", 1, "Production", false).ok());
  ASSERT_TRUE(reg_->TransitionStage(admin_, "ml", "m", 2, "Production", false).ok());
  ASSERT_TRUE(reg_->TransitionStage(admin_, "ml", "m", 3, "Staging", false).ok());
  ASSERT_TRUE(reg_->TransitionStage(admin_, "ml", "m", 4, "Archived", false).ok());
  auto m = reg_->GetModel(admin_, "ml", "m");
  EXPECT_EQ(Numbers(m->latest_versions), (std::vector<int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(m->latest_versions[0].current_stage, "Production");

  auto prod = reg_->GetLatestVersions(admin_, "ml", "m", {"production"});
  ASSERT_TRUE(prod.ok());
  EXPECT_EQ(Numbers(*prod), (std::vector<int64_t>{2}));
  EXPECT_EQ(Numbers(*reg_->GetLatestVersions(admin_, "ml", "m", {"Staging", "None"})),
            (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(Numbers(*reg_->GetLatestVersions(admin_, "ml", "m", {})),
            (std::vector<int64_t>{2, 3, 4, 5}));
  auto bad = reg_->GetLatestVersions(admin_, "ml", "m", {"None", "Live"});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().field(), "stages[1]");
  EXPECT_EQ(reg_->GetLatestVersions(admin_, "ml", "nope", {}).status().code(),
            StatusCode::kNotFound);
  // Deleting the latest Production version makes the one before it latest.
  ASSERT_TRUE(reg_->DeleteVersion(admin_, "ml", "m", 2).ok());
  EXPECT_EQ(Numbers(*reg_->GetLatestVersions(admin_, "ml", "m", {"Production"})),
            (std::vector<int64_t>{1}));
}

TEST_P(RegistryTest, RenameKeepsVersionsAliasesAndTags) {
  NewModel("old", {{"team", "ads"}});
  NewVersion("old", "", {{"k", "v"}});
  NewVersion("old");
  ASSERT_TRUE(reg_->SetAlias(admin_, "ml", "old", "champion", 2).ok());
  ASSERT_TRUE(reg_->TransitionStage(admin_, "ml", "old", 1, "Production", false).ok());
  NewModel("taken");
  auto clash = reg_->RenameModel(admin_, "ml", "old", "taken");
  EXPECT_EQ(clash.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(clash.status().field(), "new_name");
  EXPECT_EQ(reg_->RenameModel(admin_, "ml", "old", "").status().field(), "new_name");
  EXPECT_EQ(reg_->RenameModel(admin_, "ml", "nope", "x").status().code(), StatusCode::kNotFound);

  clock_.Advance(3000);
  auto m = reg_->RenameModel(admin_, "ml", "old", "new");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->name, "new");
  EXPECT_EQ(m->last_updated_timestamp, clock_.NowMicros() / 1000);
  EXPECT_EQ(m->tags, (std::vector<Tag>{{"team", "ads"}}));
  EXPECT_EQ(m->aliases, (std::vector<ModelAlias>{{"champion", 2}}));
  EXPECT_EQ(Numbers(m->latest_versions), (std::vector<int64_t>{1, 2}));
  for (const ModelVersion& v : m->latest_versions) EXPECT_EQ(v.name, "new");
  EXPECT_EQ(reg_->GetModel(admin_, "ml", "old").status().code(), StatusCode::kNotFound);
  auto v1 = reg_->GetVersion(admin_, "ml", "new", 1);
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->tags, (std::vector<Tag>{{"k", "v"}}));
  EXPECT_EQ(v1->current_stage, "Production");
  EXPECT_EQ(reg_->GetVersionByAlias(admin_, "ml", "new", "champion")->name, "new");
  EXPECT_EQ(NewVersion("new").version, 3);  // the counter goes with the model
  // The old name is free again.
  EXPECT_TRUE(reg_->CreateModel(admin_, "ml", "old", "", {}).ok());
  EXPECT_TRUE(reg_->RenameModel(admin_, "ml", "new", "new").ok());  // a no-op
}

// ---------------------------------------------------------------- search

TEST_P(RegistryTest, SearchModelsFiltersOrdersAndPages) {
  NewModel("prod-churn", {{"team", "ads"}});
  clock_.Advance(1000);
  NewModel("prod-fraud", {{"team", "risk"}});
  clock_.Advance(1000);
  NewModel("dev-churn", {{"team", "ads"}, {"tier", "1"}});
  clock_.Advance(1000);
  NewModel("Prod-Upper");
  NewModel("elsewhere", {}, "other");

  auto search = [&](const std::string& filter, std::vector<std::string> order = {},
                    int64_t max = 100, const std::string& token = "", std::string* next = nullptr) {
    RegistrySearch s{
        .filter = filter, .order_by = std::move(order), .max_results = max, .page_token = token};
    auto r = reg_->SearchModels(admin_, "ml", s, next);
    EXPECT_TRUE(r.ok()) << filter << ": " << r.status().ToString();
    return r.ok() ? Names(*r) : std::vector<std::string>{};
  };
  EXPECT_EQ(search(""),
            (std::vector<std::string>{"Prod-Upper", "dev-churn", "prod-churn", "prod-fraud"}));
  EXPECT_EQ(search("name = 'prod-churn'"), (std::vector<std::string>{"prod-churn"}));
  EXPECT_EQ(search("name LIKE 'prod-%'"), (std::vector<std::string>{"prod-churn", "prod-fraud"}));
  EXPECT_EQ(search("name ILIKE 'prod-%'"),
            (std::vector<std::string>{"Prod-Upper", "prod-churn", "prod-fraud"}));
  EXPECT_EQ(search("name != 'prod-churn' and name like '%churn'"),
            (std::vector<std::string>{"dev-churn"}));
  EXPECT_EQ(search("tags.team = 'ads'"), (std::vector<std::string>{"dev-churn", "prod-churn"}));
  EXPECT_EQ(search("tags.team = 'ads' AND tags.`tier` = '1'"),
            (std::vector<std::string>{"dev-churn"}));
  EXPECT_EQ(search("attributes.name = \"prod-fraud\""), (std::vector<std::string>{"prod-fraud"}));
  EXPECT_EQ(search("", {"name DESC"}),
            (std::vector<std::string>{"prod-fraud", "prod-churn", "dev-churn", "Prod-Upper"}));
  EXPECT_EQ(search("name LIKE '%churn'", {"creation_timestamp DESC"}),
            (std::vector<std::string>{"dev-churn", "prod-churn"}));
  EXPECT_EQ(search("name LIKE '%churn'", {"last_updated_timestamp ASC"}),
            (std::vector<std::string>{"prod-churn", "dev-churn"}));

  // Pages of 3: every model once, then no token.
  std::string next;
  EXPECT_EQ(search("", {}, 3, "", &next).size(), 3u);
  ASSERT_FALSE(next.empty());
  std::string last;
  EXPECT_EQ(search("", {}, 3, next, &last), (std::vector<std::string>{"prod-fraud"}));
  EXPECT_TRUE(last.empty());

  for (const char* bad : {"name = ", "name = 'x' or name = 'y'", "run_id = 'x'", "name > 'a'",
                          "name = 'unterminated", "tags.t IN ('a')"}) {
    auto r = reg_->SearchModels(admin_, "ml", {.filter = bad}, nullptr);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(r.status().field(), "filter") << bad;
  }
  auto bad_order = reg_->SearchModels(admin_, "ml", {.order_by = {"version_number"}}, nullptr);
  EXPECT_EQ(bad_order.status().field(), "order_by[0]");
  EXPECT_EQ(reg_->SearchModels(admin_, "ml", {.order_by = {"name", "name DESC"}}, nullptr)
                .status()
                .field(),
            "order_by[1]");
  EXPECT_EQ(reg_->SearchModels(admin_, "ml", {.max_results = 1001}, nullptr).status().field(),
            "max_results");
  EXPECT_EQ(reg_->SearchModels(admin_, "ml", {.page_token = "garbage!"}, nullptr).status().field(),
            "page_token");
}

TEST_P(RegistryTest, SearchVersionsFiltersOrdersAndPages) {
  auto run1 = tracking_->CreateRun(admin_, "ml", {});
  auto run2 = tracking_->CreateRun(admin_, "ml", {});
  ASSERT_TRUE(run1.ok() && run2.ok());
  const std::string r1 = run1->info.run_id, r2 = run2->info.run_id;
  NewModel("a");
  NewModel("b");
  NewVersion("a", r1, {{"k", "x"}}, "s3://bucket/a1");  // a/1
  NewVersion("a", r2, {}, "s3://bucket/a2");            // a/2
  NewVersion("a", "", {{"k", "y"}}, "gs://a3");         // a/3
  NewVersion("b", r1, {}, "s3://bucket/b1");            // b/1
  ASSERT_TRUE(reg_->TransitionStage(admin_, "ml", "a", 2, "Production", false).ok());

  auto search = [&](const std::string& filter, std::vector<std::string> order = {}) {
    std::vector<std::string> out;
    auto r = reg_->SearchVersions(admin_, "ml", {.filter = filter, .order_by = std::move(order)},
                                  nullptr);
    EXPECT_TRUE(r.ok()) << filter << ": " << r.status().ToString();
    if (r.ok()) {
      for (const ModelVersion& v : *r) out.push_back(v.name + "/" + std::to_string(v.version));
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(search(""), (V{"a/3", "a/2", "a/1", "b/1"}));
  EXPECT_EQ(search("name = 'a'"), (V{"a/3", "a/2", "a/1"}));
  EXPECT_EQ(search("run_id = '" + r1 + "'"), (V{"a/1", "b/1"}));
  EXPECT_EQ(search("run_id IN ('" + r1 + "', '" + r2 + "') and name = 'a'"), (V{"a/2", "a/1"}));
  EXPECT_EQ(search("version_number > 1"), (V{"a/3", "a/2"}));
  EXPECT_EQ(search("version_number = 1"), (V{"a/1", "b/1"}));
  EXPECT_EQ(search("current_stage = 'production'"), (V{"a/2"}));
  EXPECT_EQ(search("tags.k = 'y'"), (V{"a/3"}));
  EXPECT_EQ(search("tags.k LIKE '%'"), (V{"a/3", "a/1"}));
  EXPECT_EQ(search("source_path LIKE 's3://bucket/%'"), (V{"a/2", "a/1", "b/1"}));
  EXPECT_EQ(search("", {"version_number ASC"}), (V{"a/1", "b/1", "a/2", "a/3"}));
  EXPECT_EQ(search("", {"name DESC"}), (V{"b/1", "a/3", "a/2", "a/1"}));

  RegistrySearch only_b{.model = "b"};
  EXPECT_EQ(Numbers(*reg_->SearchVersions(admin_, "ml", only_b, nullptr)),
            (std::vector<int64_t>{1}));
  EXPECT_EQ(reg_->SearchVersions(admin_, "ml", {.model = "nope"}, nullptr).status().code(),
            StatusCode::kNotFound);
  // Pages.
  std::string next, last;
  auto p1 = reg_->SearchVersions(admin_, "ml", {.model = "a", .max_results = 2}, &next);
  ASSERT_TRUE(p1.ok());
  EXPECT_EQ(Numbers(*p1), (std::vector<int64_t>{3, 2}));
  auto p2 = reg_->SearchVersions(admin_, "ml", {.model = "a", .max_results = 2, .page_token = next},
                                 &last);
  EXPECT_EQ(Numbers(*p2), (std::vector<int64_t>{1}));
  EXPECT_TRUE(last.empty());
  EXPECT_EQ(reg_->SearchVersions(admin_, "ml", {.filter = "version_number = 'x'"}, nullptr)
                .status()
                .field(),
            "filter");
  EXPECT_EQ(reg_->SearchVersions(admin_, "ml", {.max_results = 200001}, nullptr).status().field(),
            "max_results");
}

// ---------------------------------------------------------------- permissions

TEST_P(RegistryTest, ViewersReadEditorsWriteOutsidersSeeNothing) {
  NewModel("m");
  NewVersion("m");
  ASSERT_TRUE(reg_->SetAlias(admin_, "ml", "m", "champion", 1).ok());
  Principal viewer = MakeUser("vic", Role::kViewer);
  EXPECT_TRUE(reg_->GetModel(viewer, "ml", "m").ok());
  EXPECT_TRUE(reg_->GetVersion(viewer, "ml", "m", 1).ok());
  EXPECT_TRUE(reg_->GetVersionByAlias(viewer, "ml", "m", "champion").ok());
  EXPECT_TRUE(reg_->SearchModels(viewer, "ml", {}, nullptr).ok());
  EXPECT_TRUE(reg_->SearchVersions(viewer, "ml", {}, nullptr).ok());
  EXPECT_TRUE(reg_->GetLatestVersions(viewer, "ml", "m", {}).ok());
  EXPECT_TRUE(reg_->GetLineage(viewer, "ml", "m", 1).ok());
  const StatusCode denied = StatusCode::kPermissionDenied;
  EXPECT_EQ(reg_->CreateModel(viewer, "ml", "x", "", {}).status().code(), denied);
  EXPECT_EQ(reg_->UpdateModel(viewer, "ml", "m", "d").status().code(), denied);
  EXPECT_EQ(reg_->RenameModel(viewer, "ml", "m", "n").status().code(), denied);
  EXPECT_EQ(reg_->DeleteModel(viewer, "ml", "m").code(), denied);
  EXPECT_EQ(reg_->SetModelTag(viewer, "ml", "m", {"k", "v"}).code(), denied);
  EXPECT_EQ(reg_->CreateVersion(viewer, "ml", {.name = "m", .source = "s"}).status().code(),
            denied);
  EXPECT_EQ(reg_->TransitionStage(viewer, "ml", "m", 1, "Staging", false).status().code(), denied);
  EXPECT_EQ(reg_->SetAlias(viewer, "ml", "m", "a", 1).code(), denied);
  EXPECT_EQ(reg_->DeleteAlias(viewer, "ml", "m", "champion").code(), denied);
  EXPECT_EQ(reg_->DeleteVersion(viewer, "ml", "m", 1).code(), denied);
  EXPECT_EQ(reg_->SetVersionTag(viewer, "ml", "m", 1, {"k", "v"}).code(), denied);
  Principal editor = MakeUser("eve", Role::kEditor);
  EXPECT_TRUE(reg_->CreateVersion(editor, "ml", {.name = "m", .source = "s"}).ok());
  EXPECT_EQ(reg_->GetVersion(admin_, "ml", "m", 2)->user_id, "eve");
  // Another project's models are invisible, to members of "ml" as well.
  EXPECT_EQ(reg_->GetModel(editor, "other", "m").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->GetModel(admin_, "other", "m").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(reg_->SearchModels(admin_, "other", {}, nullptr)->empty());
}

// ---------------------------------------------------------------- lineage

TEST_P(RegistryTest, LineageFollowsTheRunToItsJobPipelineAndCode) {
  auto exp = tracking_->CreateExperiment(admin_, "ml", "mnist", {});
  ASSERT_TRUE(exp.ok());
  auto run = tracking_->CreateRun(admin_, "ml",
                                  {.experiment_id = exp->id,
                                   .run_name = "train",
                                   .tags = {{"lathe.job_name", "train-mnist"},
                                            {"lathe.pipeline_run_id", "pr-1"},
                                            {"lathe.pipeline_step", "train"},
                                            {"lathe.code_digest", "sha256:abc"}},
                                   .job_id = "01JOB"});
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  NewModel("m");
  ModelVersion v = NewVersion("m", run->info.run_id);
  EXPECT_EQ(v.run_id, run->info.run_id);
  auto l = reg_->GetLineage(admin_, "ml", "m", 1);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->version.version, 1);
  ASSERT_TRUE(l->run.has_value());
  EXPECT_EQ(l->run->run_id, run->info.run_id);
  EXPECT_EQ(l->run->run_name, "train");
  EXPECT_EQ(l->experiment_name, "mnist");
  EXPECT_EQ(l->job_id, "01JOB");
  EXPECT_EQ(l->job_name, "train-mnist");
  EXPECT_EQ(l->pipeline_run_id, "pr-1");
  EXPECT_EQ(l->pipeline_step, "train");
  EXPECT_EQ(l->code_digest, "sha256:abc");

  // The job id may come from the tag alone.
  auto tagged = tracking_->CreateRun(admin_, "ml", {.tags = {{"lathe.job_id", "01OTHER"}}});
  ASSERT_TRUE(tagged.ok());
  NewVersion("m", tagged->info.run_id);
  auto l2 = reg_->GetLineage(admin_, "ml", "m", 2);
  ASSERT_TRUE(l2.ok());
  EXPECT_EQ(l2->job_id, "01OTHER");
  EXPECT_EQ(l2->experiment_name, "Default");
  EXPECT_TRUE(l2->job_name.empty());
  EXPECT_TRUE(l2->code_digest.empty());

  // No run: nothing beyond the version.
  NewVersion("m");
  auto l3 = reg_->GetLineage(admin_, "ml", "m", 3);
  ASSERT_TRUE(l3.ok());
  EXPECT_FALSE(l3->run.has_value());
  EXPECT_TRUE(l3->job_id.empty());
  EXPECT_EQ(reg_->GetLineage(admin_, "ml", "m", 9).status().code(), StatusCode::kNotFound);

  // A run that is not in the project is refused at create.
  auto foreign = tracking_->CreateRun(admin_, "other", {});
  ASSERT_TRUE(foreign.ok());
  for (const std::string& run_id : {foreign->info.run_id, std::string(32, 'f')}) {
    auto bad = reg_->CreateVersion(admin_, "ml", {.name = "m", .source = "s", .run_id = run_id});
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(bad.status().field(), "run_id");
  }
}

TEST_P(RegistryTest, DownloadUriResolvesRunSources) {
  auto run = tracking_->CreateRun(admin_, "ml", {});
  ASSERT_TRUE(run.ok());
  NewModel("m");
  NewVersion("m", run->info.run_id, {}, "runs:/" + run->info.run_id + "/model");
  NewVersion("m", "", {}, "s3://bucket/model");
  NewVersion("m", "", {}, "runs:/" + std::string(32, '0') + "/model");
  EXPECT_EQ(*reg_->GetDownloadUri(admin_, "ml", "m", 1), run->info.artifact_uri + "/model");
  EXPECT_EQ(*reg_->GetDownloadUri(admin_, "ml", "m", 2), "s3://bucket/model");
  EXPECT_EQ(*reg_->GetDownloadUri(admin_, "ml", "m", 3),
            "runs:/" + std::string(32, '0') + "/model");
  EXPECT_EQ(reg_->GetDownloadUri(admin_, "ml", "m", 4).status().code(), StatusCode::kNotFound);
}

// ---------------------------------------------------------------- limits

TEST_P(RegistryTest, LimitsAreMlflows) {
  NewModel("m");
  NewVersion("m");
  EXPECT_TRUE(reg_->SetModelTag(admin_, "ml", "m", {std::string(250, 'k'), "v"}).ok());
  Status key = reg_->SetModelTag(admin_, "ml", "m", {std::string(251, 'k'), "v"});
  EXPECT_EQ(key.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(key.message().find("250"), std::string::npos);
  EXPECT_TRUE(reg_->SetModelTag(admin_, "ml", "m", {"k", std::string(100'000, 'v')}).ok());
  Status value = reg_->SetModelTag(admin_, "ml", "m", {"k", std::string(100'001, 'v')});
  EXPECT_EQ(value.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(value.message().find("100000"), std::string::npos);
  EXPECT_EQ(reg_->SetVersionTag(admin_, "ml", "m", 1, {"k", std::string(100'001, 'v')}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(reg_->SetModelTag(admin_, "ml", "m", {"bad*key", "v"}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(reg_->SetModelTag(admin_, "ml", "m", {"", "v"}).code(), StatusCode::kInvalidArgument);
  auto tags = reg_->CreateModel(admin_, "ml", "n", "", {{"ok", "v"}, {"bad*", "v"}});
  EXPECT_EQ(tags.status().field(), "tags[1]");
  EXPECT_EQ(reg_->GetModel(admin_, "ml", "n").status().code(), StatusCode::kNotFound);
  auto vtags = reg_->CreateVersion(
      admin_, "ml", {.name = "m", .source = "s", .tags = {{std::string(251, 'k'), ""}}});
  EXPECT_EQ(vtags.status().field(), "tags[0]");
}

}  // namespace
}  // namespace lathe::registry
