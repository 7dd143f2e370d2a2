#include "http/router.h"

#include <gtest/gtest.h>

#include <string>

namespace lathe::http {
namespace {

Request MakeRequest(Method method, std::string target) {
  Request req;
  req.method = method;
  req.target = target;
  std::string raw = target.substr(0, target.find('?'));
  PercentDecode(raw, &req.path, false);
  return req;
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto named = [](std::string name) {
      return [name](Request& req, Response& res) {
        res.body = name;
        for (const auto& [key, value] : req.path_params) res.body += "|" + key + "=" + value;
      };
    };
    router_.Add(Method::kGet, "/api/v1/projects", named("list"));
    router_.Add(Method::kPost, "/api/v1/projects", named("create"));
    router_.Add(Method::kGet, "/api/v1/projects/{project}", named("get"));
    router_.Add(Method::kDelete, "/api/v1/projects/{project}", named("delete"));
    router_.Add(Method::kGet, "/api/v1/projects/mine", named("mine"));
    router_.Add(Method::kGet, "/api/v1/projects/{project}/members/{user}", named("member"));
    router_.Add(Method::kGet, "/", named("root"));
  }

  Response Run(Method method, std::string target, Request* out = nullptr) {
    Request req = MakeRequest(method, std::move(target));
    Response res;
    router_.Dispatch(req, res);
    if (out) *out = req;
    return res;
  }

  Router router_;
};

TEST_F(RouterTest, MatchesLiteralsAndParameters) {
  EXPECT_EQ(Run(Method::kGet, "/api/v1/projects").body, "list");
  EXPECT_EQ(Run(Method::kPost, "/api/v1/projects").body, "create");
  Request req;
  EXPECT_EQ(Run(Method::kGet, "/api/v1/projects/p1/members/alice?x=1", &req).body,
            "member|project=p1|user=alice");
  EXPECT_EQ(req.route, "/api/v1/projects/{project}/members/{user}");
  EXPECT_EQ(req.PathParam("user"), "alice");
  EXPECT_EQ(Run(Method::kGet, "/").body, "root");
}

TEST_F(RouterTest, LiteralBeatsParameter) {
  EXPECT_EQ(Run(Method::kGet, "/api/v1/projects/mine").body, "mine");
  EXPECT_EQ(Run(Method::kGet, "/api/v1/projects/yours").body, "get|project=yours");
  // DELETE has no literal route: the parameter route still takes "mine".
  EXPECT_EQ(Run(Method::kDelete, "/api/v1/projects/mine").body, "delete|project=mine");
}

TEST_F(RouterTest, TrailingSlashIsIgnored) {
  EXPECT_EQ(Run(Method::kGet, "/api/v1/projects/").body, "list");
  EXPECT_EQ(Run(Method::kGet, "/api/v1/projects/p1/").body, "get|project=p1");
}

TEST_F(RouterTest, UnknownPathIs404) {
  Response res = Run(Method::kGet, "/api/v1/nothing");
  EXPECT_EQ(res.status, 404);
  EXPECT_NE(res.body.find("NOT_FOUND"), std::string::npos);
  EXPECT_EQ(Run(Method::kGet, "/api/v1/projects/p1/members").status, 404);
  EXPECT_EQ(Run(Method::kGet, "/api/v1//projects").status, 404);
}

TEST_F(RouterTest, KnownPathOtherMethodIs405WithAllow) {
  Response res = Run(Method::kPut, "/api/v1/projects");
  EXPECT_EQ(res.status, 405);
  std::string allow;
  for (const auto& [name, value] : res.headers) {
    if (name == "Allow") allow = value;
  }
  EXPECT_EQ(allow, "GET, HEAD, POST");
  res = Run(Method::kPatch, "/api/v1/projects/mine");
  EXPECT_EQ(res.status, 405);
  for (const auto& [name, value] : res.headers) {
    if (name == "Allow") allow = value;
  }
  EXPECT_EQ(allow, "GET, HEAD, DELETE");
}

TEST_F(RouterTest, HeadFallsBackToGet) {
  EXPECT_EQ(Run(Method::kHead, "/api/v1/projects/p1").body, "get|project=p1");
}

TEST_F(RouterTest, EncodedSlashStaysInsideItsSegment) {
  Request req;
  EXPECT_EQ(Run(Method::kGet, "/api/v1/projects/a%2Fb", &req).body, "get|project=a/b");
  EXPECT_EQ(req.path, "/api/v1/projects/a/b");
  EXPECT_EQ(Run(Method::kGet, "/api/v1/projects/a%20b/members/c%2Fd").body,
            "member|project=a b|user=c/d");
  // Encoded literal segments still match their literal.
  EXPECT_EQ(Run(Method::kGet, "/api/%761/projects").body, "list");
}

TEST_F(RouterTest, ErrorHookDecidesTheBody) {
  int seen = 0;
  router_.SetErrorHandler([&](Request&, Response& res, int status, std::string_view message) {
    seen = status;
    res.status = status;
    res.body = std::string(message);
  });
  EXPECT_EQ(Run(Method::kGet, "/nope").status, 404);
  EXPECT_EQ(seen, 404);
  Response res = Run(Method::kPut, "/api/v1/projects");
  EXPECT_EQ(seen, 405);
  EXPECT_EQ(res.status, 405);
  bool has_allow = false;
  for (const auto& [name, value] : res.headers) has_allow |= name == "Allow";
  EXPECT_TRUE(has_allow);
}

TEST_F(RouterTest, RequestsBuiltWithoutTargetUseThePath) {
  Request req;
  req.method = Method::kGet;
  req.path = "/api/v1/projects/p9";
  Response res;
  router_.Dispatch(req, res);
  EXPECT_EQ(res.body, "get|project=p9");
}

// Rest parameters: "{name*}" as the last segment takes the raw remainder.
class RestRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto named = [](std::string name) {
      return [name](Request& req, Response& res) {
        res.body = name;
        for (const auto& [key, value] : req.path_params) res.body += "|" + key + "=" + value;
      };
    };
    router_.Add(Method::kGet, "/api/v1/runs/{run}/artifacts/{path*}", named("artifact"));
    router_.Add(Method::kPut, "/api/v1/runs/{run}/artifacts/{path*}", named("upload"));
    router_.Add(Method::kGet, "/api/v1/runs/{run}/artifacts/latest", named("latest"));
    router_.Add(Method::kGet, "/files/{name}", named("one"));
    router_.Add(Method::kGet, "/files/{name}/meta", named("meta"));
    router_.Add(Method::kGet, "/files/{path*}", named("rest"));
    router_.Add(Method::kGet, "/{all*}", named("all"));
  }

  Response Run(Method method, std::string target, Request* out = nullptr) {
    Request req = MakeRequest(method, std::move(target));
    Response res;
    router_.Dispatch(req, res);
    if (out) *out = req;
    return res;
  }

  Router router_;
};

TEST_F(RestRouterTest, TakesTheRawRemainderOfThePath) {
  Request req;
  EXPECT_EQ(Run(Method::kGet, "/api/v1/runs/r1/artifacts/a/b%2Fc.txt?x=1/2", &req).body,
            "artifact|run=r1|path=a/b%2Fc.txt");
  EXPECT_EQ(req.route, "/api/v1/runs/{run}/artifacts/{path*}");
  EXPECT_EQ(req.PathParam("path"), "a/b%2Fc.txt");
  EXPECT_EQ(Run(Method::kGet, "/api/v1/runs/r1/artifacts/model.pt").body,
            "artifact|run=r1|path=model.pt");
  EXPECT_EQ(Run(Method::kGet, "/api/v1/runs/r%201/artifacts/a%20b/c").body,
            "artifact|run=r 1|path=a%20b/c");
  EXPECT_EQ(Run(Method::kPut, "/api/v1/runs/r1/artifacts/x/y/z").body, "upload|run=r1|path=x/y/z");
  // The one ignored trailing slash is not part of the value.
  EXPECT_EQ(Run(Method::kGet, "/api/v1/runs/r1/artifacts/a/b/").body, "artifact|run=r1|path=a/b");
  EXPECT_EQ(Run(Method::kGet, "/anything/at/all").body, "all|all=anything/at/all");
}

TEST_F(RestRouterTest, NeedsOneOrMoreWellFormedSegments) {
  // "/api/v1/runs/r1/artifacts" itself is matched only by "/{all*}".
  EXPECT_EQ(Run(Method::kGet, "/api/v1/runs/r1/artifacts").body,
            "all|all=api/v1/runs/r1/artifacts");
  EXPECT_EQ(Run(Method::kPut, "/api/v1/runs/r1/artifacts").status, 405);
  EXPECT_EQ(Run(Method::kPut, "/api/v1/runs/r1/artifacts/").status, 405);
  // An empty or malformed segment matches no rest parameter, not even "/{all*}".
  EXPECT_EQ(Run(Method::kGet, "/api/v1/runs/r1/artifacts/a//b").status, 404);
  EXPECT_EQ(Run(Method::kGet, "/api/v1/runs/r1/artifacts/a/%zz").status, 404);
  EXPECT_EQ(Run(Method::kGet, "/").status, 404);
}

TEST_F(RestRouterTest, LiteralAndParameterBeatRest) {
  EXPECT_EQ(Run(Method::kGet, "/api/v1/runs/r1/artifacts/latest").body, "latest|run=r1");
  EXPECT_EQ(Run(Method::kGet, "/api/v1/runs/r1/artifacts/latest/x").body,
            "artifact|run=r1|path=latest/x");
  EXPECT_EQ(Run(Method::kGet, "/files/a").body, "one|name=a");
  EXPECT_EQ(Run(Method::kGet, "/files/a%2Fb").body, "one|name=a/b");
  EXPECT_EQ(Run(Method::kGet, "/files/a/meta").body, "meta|name=a");
  EXPECT_EQ(Run(Method::kGet, "/files/a/b").body, "rest|path=a/b");
  EXPECT_EQ(Run(Method::kGet, "/files/a/meta/b").body, "rest|path=a/meta/b");
}

TEST_F(RestRouterTest, MethodsAndHead) {
  Response res = Run(Method::kDelete, "/api/v1/runs/r1/artifacts/a/b");
  EXPECT_EQ(res.status, 405);
  std::string allow;
  for (const auto& [name, value] : res.headers) {
    if (name == "Allow") allow = value;
  }
  EXPECT_EQ(allow, "GET, HEAD, PUT");
  EXPECT_EQ(Run(Method::kHead, "/api/v1/runs/r1/artifacts/a/b").body, "artifact|run=r1|path=a/b");
}

TEST_F(RestRouterTest, RequestsBuiltWithoutTargetUseTheDecodedPath) {
  Request req;
  req.method = Method::kGet;
  req.path = "/api/v1/runs/r1/artifacts/a b/c";
  Response res;
  router_.Dispatch(req, res);
  EXPECT_EQ(res.body, "artifact|run=r1|path=a b/c");
}

TEST(RouterDeathTest, DuplicateRestRouteAborts) {
  Router router;
  router.Add(Method::kGet, "/a/{x*}", [](Request&, Response&) {});
  router.Add(Method::kGet, "/a/{x}", [](Request&, Response&) {});  // not a duplicate
  EXPECT_DEATH(router.Add(Method::kGet, "/a/{y*}", [](Request&, Response&) {}), "duplicate route");
}

TEST(RouterDeathTest, RestParameterMustBeLast) {
  Router router;
  EXPECT_DEATH(router.Add(Method::kGet, "/a/{x*}/b", [](Request&, Response&) {}),
               "not the last segment");
}

TEST(RouterDeathTest, DuplicateRouteAborts) {
  Router router;
  router.Add(Method::kGet, "/a/{x}", [](Request&, Response&) {});
  EXPECT_DEATH(router.Add(Method::kGet, "/a/{y}", [](Request&, Response&) {}), "duplicate route");
}

}  // namespace
}  // namespace lathe::http
