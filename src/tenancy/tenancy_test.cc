#include "tenancy/tenancy.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

namespace lathe::tenancy {
namespace {

class TenancyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lathe-tenancy-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto s = store::OpenStore({.url = dir_ + "/lathe.db"});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    svc_ = std::make_unique<TenancyService>(*store_, clock_, /*token_cache_ttl_ms=*/0);
    std::string token;
    auto created = svc_->Bootstrap([&](const std::string& t) {
      token = t;
      return OkStatus();
    });
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    ASSERT_TRUE(*created);
    auto admin = svc_->Authenticate(token);
    ASSERT_TRUE(admin.ok());
    admin_ = *admin;
  }
  void TearDown() override {
    svc_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A user with an unscoped token.
  Principal MakeUser(const std::string& name) {
    EXPECT_TRUE(svc_->CreateUser(admin_, name, false).ok());
    TokenRequest req{.name = "t", .user = name};
    auto t = svc_->CreateToken(admin_, req);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return *svc_->Authenticate(t->secret);
  }

  std::string dir_;
  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<TenancyService> svc_;
  Principal admin_;
};

TEST_F(TenancyTest, BootstrapCreatesTheAdminOnlyOnce) {
  EXPECT_TRUE(admin_.is_admin);
  EXPECT_EQ(admin_.user_name, "admin");
  // With the project MLflow clients land in, the admin its admin member.
  auto def = svc_->AuthorizeProject(admin_, kDefaultProjectName, Role::kAdmin);
  ASSERT_TRUE(def.ok()) << def.status().ToString();
  EXPECT_EQ(def->name, "default");
  auto again = svc_->Bootstrap([](const std::string&) { return OkStatus(); });
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST(TenancyBootstrap, AFailedSaveCreatesNoAdmin) {
  char tmpl[] = "/tmp/lathe-tenancy-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  auto store = store::OpenStore({.url = dir + "/lathe.db"});
  ASSERT_TRUE(store.ok());
  FakeClock clock;
  TenancyService svc(**store, clock, 0);
  auto failed = svc.Bootstrap([](const std::string&) { return InternalError("disk full"); });
  EXPECT_EQ(failed.status().code(), StatusCode::kInternal);
  std::string token;
  auto created = svc.Bootstrap([&](const std::string& t) {
    token = t;
    return OkStatus();
  });
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(*created);
  auto admin = svc.Authenticate(token);
  ASSERT_TRUE(admin.ok());
  // The failed attempt left no project behind to collide with.
  EXPECT_TRUE(svc.GetProject(*admin, "default").ok());
  std::filesystem::remove_all(dir);
}

TEST_F(TenancyTest, UnknownRevokedAndExpiredTokensAreRejected) {
  EXPECT_EQ(svc_->Authenticate("lathe_nope").status().code(), StatusCode::kUnauthenticated);
  auto t = svc_->CreateToken(admin_, {.name = "short", .ttl_seconds = 60});
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(svc_->Authenticate(t->secret).ok());
  clock_.Advance(61'000'000);
  EXPECT_EQ(svc_->Authenticate(t->secret).status().message(), "token has expired");
  auto t2 = svc_->CreateToken(admin_, {.name = "revoked"});
  ASSERT_TRUE(svc_->RevokeToken(admin_, t2->id).ok());
  EXPECT_EQ(svc_->Authenticate(t2->secret).status().message(), "token has been revoked");
}

TEST_F(TenancyTest, ScopedTokenCannotSeeOrChangeAnotherProject) {
  ASSERT_TRUE(svc_->CreateProject(admin_, "a", "").ok());
  ASSERT_TRUE(svc_->CreateProject(admin_, "b", "").ok());
  auto t = svc_->CreateToken(admin_, {.name = "a-only", .project = "a"});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  Principal scoped = *svc_->Authenticate(t->secret);
  EXPECT_TRUE(svc_->GetProject(scoped, "a").ok());
  EXPECT_EQ(svc_->GetProject(scoped, "b").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(svc_->DeleteProject(scoped, "b").code(), StatusCode::kNotFound);
  auto list = svc_->ListProjects(scoped, {});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->items.size(), 1u);
  EXPECT_EQ(list->items[0].name, "a");
  EXPECT_EQ(svc_->CreateProject(scoped, "c", "").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(svc_->CreateToken(scoped, {.name = "x", .project = "b"}).status().code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(svc_->GetProject(admin_, "b").ok());
  // It sees and revokes only tokens of its own scope.
  auto tokens = svc_->ListTokens(scoped, "", {});
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->items.size(), 1u);
  EXPECT_EQ(tokens->items[0].project, "a");
  EXPECT_EQ(svc_->RevokeToken(scoped, admin_.token_id).code(), StatusCode::kNotFound);
  EXPECT_TRUE(svc_->Authenticate(t->secret).ok());
}

TEST_F(TenancyTest, RolesGateWrites) {
  Principal alice = MakeUser("alice");
  Principal bob = MakeUser("bob");
  ASSERT_TRUE(svc_->CreateProject(alice, "ads", "ranking").ok());
  EXPECT_EQ(svc_->GetProject(bob, "ads").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(svc_->SetMember(alice, "ads", "bob", Role::kViewer).ok());
  auto seen = svc_->GetProject(bob, "ads");
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->role, Role::kViewer);
  EXPECT_EQ(svc_->DeleteProject(bob, "ads").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(svc_->SetMember(bob, "ads", "bob", Role::kAdmin).code(), StatusCode::kPermissionDenied);
  // The last admin cannot leave.
  EXPECT_EQ(svc_->RemoveMember(alice, "ads", "alice").code(), StatusCode::kFailedPrecondition);
  // A viewer-role token of an admin is a viewer.
  auto t = svc_->CreateToken(alice, {.name = "ro", .project = "ads", .role = Role::kViewer});
  ASSERT_TRUE(t.ok());
  Principal ro = *svc_->Authenticate(t->secret);
  EXPECT_EQ(svc_->DeleteProject(ro, "ads").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(svc_->CreateToken(ro, {.name = "up", .role = Role::kAdmin}).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_TRUE(svc_->DeleteProject(alice, "ads").ok());
  EXPECT_EQ(svc_->Authenticate(t->secret).status().code(), StatusCode::kUnauthenticated);
}

TEST_F(TenancyTest, OnlyAdminsManageUsers) {
  Principal alice = MakeUser("alice");
  EXPECT_EQ(svc_->CreateUser(alice, "eve", false).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(svc_->ListUsers(alice, {}).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(svc_->CreateUser(admin_, "alice", false).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(svc_->CreateUser(admin_, "Bad_Name", false).status().field(), "name");
}

TEST_F(TenancyTest, ListsPageWithCursors) {
  ASSERT_TRUE(svc_->DeleteProject(admin_, "default").ok());  // created at bootstrap
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(svc_->CreateProject(admin_, "p" + std::to_string(i), "").ok());
    clock_.Advance(1000);
  }
  std::vector<std::string> names;
  PageRequest page{.limit = 3};
  int pages = 0;
  while (true) {
    auto r = svc_->ListProjects(admin_, page);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ++pages;
    for (const auto& p : r->items) names.push_back(p.name);
    if (r->next_page_token.empty()) break;
    page.page_token = r->next_page_token;
  }
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(names.size(), 7u);
  EXPECT_EQ(names.front(), "p0");
  EXPECT_EQ(names.back(), "p6");
  EXPECT_EQ(svc_->ListProjects(admin_, {.limit = 0}).status().field(), "limit");
  EXPECT_EQ(svc_->ListProjects(admin_, {.limit = 5, .page_token = "garbage!"}).status().field(),
            "page_token");
}

}  // namespace
}  // namespace lathe::tenancy
