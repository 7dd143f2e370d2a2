// The API's conventions, driven in-process through Api::Handle (no sockets).
#include "api/api.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

namespace lathe::api {
namespace {

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lathe-api-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto s = store::OpenStore({.url = dir_ + "/lathe.db"});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    tenancy_ = std::make_unique<tenancy::TenancyService>(*store_, SystemClock(), 10'000);
    ASSERT_TRUE(tenancy_->Bootstrap([&](const std::string& t) {
                          admin_token_ = t;
                          return OkStatus();
                        }).ok());
    api_ = std::make_unique<Api>(*store_, *tenancy_, metrics_);
  }
  void TearDown() override {
    api_.reset();
    tenancy_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  http::Response Send(http::Method method, const std::string& target, const std::string& token,
                      const std::string& body = "") {
    http::Request req;
    req.method = method;
    req.target = target;
    size_t q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) req.query = target.substr(q + 1);
    if (!token.empty()) req.headers.emplace_back("authorization", "Bearer " + token);
    if (!body.empty()) req.headers.emplace_back("content-type", "application/json");
    req.body = body;
    http::Response res;
    api_->Handle(req, res);
    return res;
  }
  JsonValue Json(const http::Response& res) {
    auto v = ParseJson(res.body);
    EXPECT_TRUE(v.ok()) << res.body;
    return v.ok() ? *v : JsonValue();
  }
  std::string ErrorField(const http::Response& res, const char* key) {
    JsonValue v = Json(res);
    const JsonValue* e = v.Find("error");
    if (e == nullptr) return "<no error>";
    const JsonValue* f = e->Find(key);
    return f ? f->as_string() : "";
  }

  std::string dir_;
  MetricsRegistry metrics_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<tenancy::TenancyService> tenancy_;
  std::unique_ptr<Api> api_;
  std::string admin_token_;
};

TEST_F(ApiTest, ApiNeedsATokenButHealthAndMetricsDoNot) {
  EXPECT_EQ(Send(http::Method::kGet, "/api/v1/projects", "").status, 401);
  EXPECT_EQ(Send(http::Method::kGet, "/api/v1/projects", "lathe_wrong").status, 401);
  EXPECT_EQ(Send(http::Method::kGet, "/api/v1/no-such-route", "").status, 401);
  EXPECT_EQ(Send(http::Method::kGet, "/api/v1/no-such-route", admin_token_).status, 404);
  EXPECT_EQ(Send(http::Method::kGet, "/api/v1/projects", admin_token_).status, 200);
  EXPECT_EQ(Send(http::Method::kGet, "/healthz", "").status, 200);
  EXPECT_EQ(Send(http::Method::kGet, "/readyz", "").status, 200);
  http::Response m = Send(http::Method::kGet, "/metrics", "");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("lathe_http_requests_total{method=\"GET\",route=\"/api/v1/projects\",code=\"401\"} 2"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("lathe_build_info{"), std::string::npos);
}

TEST_F(ApiTest, ErrorsAreJsonWithCodeMessageFieldAndRequestId) {
  http::Response r = Send(http::Method::kPost, "/api/v1/projects", admin_token_, R"({"name": 7})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ErrorField(r, "code"), "INVALID_ARGUMENT");
  EXPECT_EQ(ErrorField(r, "field"), "name");
  EXPECT_FALSE(ErrorField(r, "request_id").empty());

  r = Send(http::Method::kPost, "/api/v1/projects", admin_token_, R"({"name":"a","colour":"red"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ErrorField(r, "field"), "colour");
  r = Send(http::Method::kPost, "/api/v1/projects", admin_token_, R"({"name":"a",)");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(ErrorField(r, "message").find("byte"), std::string::npos);
  // Nothing was written by the rejected requests.
  JsonValue list = Json(Send(http::Method::kGet, "/api/v1/projects", admin_token_));
  ASSERT_EQ(list.Find("items")->items().size(), 1u);  // "default", from the first start
  EXPECT_EQ(list.Find("items")->items()[0].Find("name")->as_string(), "default");

  EXPECT_EQ(Send(http::Method::kPost, "/api/v1/projects", admin_token_, R"({"name":"a"})").status, 201);
  r = Send(http::Method::kPost, "/api/v1/projects", admin_token_, R"({"name":"a"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(ErrorField(r, "code"), "ALREADY_EXISTS");
  r = Send(http::Method::kPatch, "/api/v1/projects/a", admin_token_);
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(ErrorField(r, "code"), "METHOD_NOT_ALLOWED");
  r = Send(http::Method::kGet, "/api/v1/nowhere", admin_token_);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(ErrorField(r, "code"), "NOT_FOUND");
}

TEST_F(ApiTest, RequestIdIsEchoedOrGenerated) {
  http::Request req;
  req.method = http::Method::kGet;
  req.path = req.target = "/healthz";
  req.headers.emplace_back("x-request-id", "trace-123");
  http::Response res;
  api_->Handle(req, res);
  bool found = false;
  for (const auto& [k, v] : res.headers) found |= (k == "X-Request-Id" && v == "trace-123");
  EXPECT_TRUE(found);
}

TEST_F(ApiTest, ProjectScopedTokenCannotReadOrChangeAnotherProject) {
  ASSERT_EQ(Send(http::Method::kPost, "/api/v1/projects", admin_token_, R"({"name":"a"})").status, 201);
  ASSERT_EQ(Send(http::Method::kPost, "/api/v1/projects", admin_token_, R"({"name":"b"})").status, 201);
  http::Response t = Send(http::Method::kPost, "/api/v1/tokens", admin_token_,
                          R"({"name":"ci","project":"a","role":"editor"})");
  ASSERT_EQ(t.status, 201) << t.body;
  std::string scoped = Json(t).Find("token")->as_string();

  EXPECT_EQ(Send(http::Method::kGet, "/api/v1/projects/a", scoped).status, 200);
  EXPECT_EQ(Send(http::Method::kGet, "/api/v1/projects/b", scoped).status, 404);
  EXPECT_EQ(Send(http::Method::kDelete, "/api/v1/projects/b", scoped).status, 404);
  EXPECT_EQ(Send(http::Method::kGet, "/api/v1/projects/b/members", scoped).status, 404);
  EXPECT_EQ(Send(http::Method::kPut, "/api/v1/projects/b/members/admin", scoped, R"({"role":"viewer"})").status,
            404);
  EXPECT_EQ(Send(http::Method::kDelete, "/api/v1/projects/a", scoped).status, 403);
  JsonValue list = Json(Send(http::Method::kGet, "/api/v1/projects", scoped));
  ASSERT_EQ(list.Find("items")->items().size(), 1u);
  EXPECT_EQ(list.Find("items")->items()[0].Find("name")->as_string(), "a");
  // b is untouched.
  EXPECT_EQ(Send(http::Method::kGet, "/api/v1/projects/b", admin_token_).status, 200);
}

TEST_F(ApiTest, TokensAreShownOnceAndRevocable) {
  http::Response t = Send(http::Method::kPost, "/api/v1/tokens", admin_token_, R"({"name":"laptop"})");
  ASSERT_EQ(t.status, 201);
  JsonValue created = Json(t);
  std::string secret = created.Find("token")->as_string();
  std::string id = created.Find("id")->as_string();
  JsonValue list = Json(Send(http::Method::kGet, "/api/v1/tokens", admin_token_));
  for (const JsonValue& item : list.Find("items")->items()) EXPECT_EQ(item.Find("token"), nullptr);
  EXPECT_EQ(Send(http::Method::kGet, "/api/v1/whoami", secret).status, 200);
  EXPECT_EQ(Send(http::Method::kDelete, "/api/v1/tokens/" + id, admin_token_).status, 204);
  EXPECT_EQ(Send(http::Method::kGet, "/api/v1/whoami", secret).status, 401);
}

TEST_F(ApiTest, ListsPaginate) {
  ASSERT_EQ(Send(http::Method::kDelete, "/api/v1/projects/default", admin_token_).status, 204);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Send(http::Method::kPost, "/api/v1/projects", admin_token_,
                   "{\"name\":\"p" + std::to_string(i) + "\"}")
                  .status,
              201);
  }
  JsonValue page = Json(Send(http::Method::kGet, "/api/v1/projects?limit=2", admin_token_));
  EXPECT_EQ(page.Find("items")->items().size(), 2u);
  std::string next = page.Find("next_page_token")->as_string();
  ASSERT_FALSE(next.empty());
  JsonValue page2 = Json(Send(http::Method::kGet, "/api/v1/projects?limit=2&page_token=" + next, admin_token_));
  EXPECT_EQ(page2.Find("items")->items()[0].Find("name")->as_string(), "p2");
  EXPECT_EQ(Send(http::Method::kGet, "/api/v1/projects?limit=abc", admin_token_).status, 400);
  EXPECT_EQ(Send(http::Method::kGet, "/api/v1/projects?limit=5000", admin_token_).status, 400);
}

}  // namespace
}  // namespace lathe::api
