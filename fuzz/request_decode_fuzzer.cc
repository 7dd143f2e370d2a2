// Fuzzes request decoding end to end: bytes become the body (or query) of
// the API's write routes, served by the real Api over a real SQLite store.
// Whatever the bytes, the answer must be a 2xx or a 4xx JSON error: a 5xx,
// a crash, a sanitizer report or a hang is a bug. The JSON and YAML parsers
// are also fed the raw bytes directly.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "api/api.h"
#include "base/json.h"
#include "base/log.h"
#include "base/yaml.h"

namespace {

struct Fixture {
  std::unique_ptr<lathe::store::Store> store;
  std::unique_ptr<lathe::tenancy::TenancyService> tenancy;
  std::unique_ptr<lathe::api::Api> api;
  lathe::MetricsRegistry metrics;
  std::string token;
};

std::string* g_dir = nullptr;

Fixture* MakeFixture() {
  lathe::SetLogLevel(lathe::LogLevel::kOff);
  char tmpl[] = "/tmp/lathe-fuzz-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  g_dir = new std::string(dir);
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(*g_dir, ec);
  });
  auto* f = new Fixture();
  auto store = lathe::store::OpenStore({.url = dir + "/lathe.db"});
  if (!store.ok()) std::abort();
  f->store = std::move(*store);
  f->tenancy = std::make_unique<lathe::tenancy::TenancyService>(*f->store, lathe::SystemClock());
  auto created = f->tenancy->Bootstrap([f](const std::string& t) {
    f->token = t;
    return lathe::OkStatus();
  });
  if (!created.ok() || !*created) std::abort();
  f->api = std::make_unique<lathe::api::Api>(*f->store, *f->tenancy, f->metrics);
  // Something for member and token routes to refer to.
  lathe::http::Request req;
  req.method = lathe::http::Method::kPost;
  req.path = req.target = "/api/v1/projects";
  req.headers = {{"authorization", "Bearer " + f->token}};
  req.body = R"({"name":"p"})";
  lathe::http::Response res;
  f->api->Handle(req, res);
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* f = MakeFixture();
  if (size == 0) return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);

  (void)lathe::ParseJson(bytes);
  (void)lathe::ParseYaml(bytes);

  struct Route {
    lathe::http::Method method;
    const char* path;
    const char* content_type;
  };
  static const Route kRoutes[] = {
      {lathe::http::Method::kPost, "/api/v1/projects", "application/json"},
      {lathe::http::Method::kPost, "/api/v1/tokens", "application/json"},
      {lathe::http::Method::kPost, "/api/v1/users", "application/json"},
      {lathe::http::Method::kPut, "/api/v1/projects/p/members/admin", "application/json"},
      {lathe::http::Method::kPost, "/api/v1/projects", "application/yaml"},
      {lathe::http::Method::kGet, "/api/v1/projects", ""},
  };
  const Route& route = kRoutes[data[0] % (sizeof(kRoutes) / sizeof(kRoutes[0]))];
  lathe::http::Request req;
  req.method = route.method;
  req.path = route.path;
  req.target = route.path;
  if (route.method == lathe::http::Method::kGet) {
    req.query = std::string(bytes);
    req.target += "?" + req.query;
  } else {
    req.body = std::string(bytes);
    req.headers.emplace_back("content-type", route.content_type);
  }
  req.headers.emplace_back("authorization", "Bearer " + f->token);
  lathe::http::Response res;
  f->api->Handle(req, res);
  if (res.status >= 500 || res.status < 200) {
    std::fprintf(stderr, "status %d for %s: %s\n", res.status, route.path, res.body.c_str());
    std::abort();
  }
  return 0;
}
