#include "serving/http_frontend.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <thread>

#include <fmt/core.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/json.h"
#include "http/client.h"
#include "http/router.h"
#include "http/server.h"
#include "serving/fake_instance.h"
#include "serving/protocols/v2_codec.h"

namespace lathe::serving {
namespace {

namespace fs = std::filesystem;
using testing::FakeInstance;
using testing::FakeState;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using http::Method;

// Loads FakeInstances (y = factor·x, z = x + 1) whose factor is the text of
// <version>/model.txt.
class FakeLoader {
 public:
  InstanceLoader Loader() {
    return [this](const ModelConfig& config, const std::string& dir, int) {
      std::ifstream in(dir + "/model.txt");
      std::stringstream text;
      text << in.rdbuf();
      auto state = std::make_shared<FakeState>();
      state->factor = std::stof(text.str());
      if (close_gates) state->Close();
      {
        std::lock_guard<std::mutex> lock(mu);
        states[config.name + "/" + fs::path(dir).filename().string()] = state;
      }
      return StatusOr<std::unique_ptr<ModelInstance>>(
          std::make_unique<FakeInstance>(state, config.max_batch_size > 0));
    };
  }
  std::shared_ptr<FakeState> State(const std::string& model, int64_t v) {
    std::lock_guard<std::mutex> lock(mu);
    return states[model + "/" + std::to_string(v)];
  }
  std::atomic<bool> close_gates{false};
  std::mutex mu;
  std::map<std::string, std::shared_ptr<FakeState>> states;
};

constexpr std::string_view kConfig = R"(
backend: torchscript
max_batch_size: 8
inputs: [{{name: x, datatype: FP32, dims: [2]}}]
outputs: [{{name: y, datatype: FP32, dims: [2]}}, {{name: z, datatype: FP32, dims: [2]}}]
dynamic_batching: {{max_queue_size: {}}}
instances: {{count: 1}}
version_policy: all
labels: {{stable: 1}}
)";

class HttpFrontendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = ::testing::TempDir() + "lathe-fe-XXXXXX";
    ASSERT_NE(::mkdtemp(repo_.data()), nullptr);
    WriteModel("m", 0);
    WriteVersion("m", 1, "2");
    WriteVersion("m", 2, "3");
    WriteModel("small", 1);
    WriteVersion("small", 1, "2");
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    server_.reset();
    manager_.reset();
    frontend_.reset();
    std::error_code ec;
    fs::remove_all(repo_, ec);
  }

  void WriteModel(const std::string& name, int queue) {
    fs::create_directories(repo_ + "/" + name);
    std::ofstream(repo_ + "/" + name + "/config.yaml") << fmt::format(kConfig, queue);
  }
  void WriteVersion(const std::string& name, int v, const std::string& factor) {
    fs::create_directories(repo_ + "/" + name + "/" + std::to_string(v));
    std::ofstream(repo_ + "/" + name + "/" + std::to_string(v) + "/model.txt") << factor;
  }

  void Start(ModelControlMode mode = ModelControlMode::kNone, std::vector<std::string> tokens = {},
             std::vector<std::string> startup = {}) {
    ModelManagerOptions o;
    o.repository = repo_;
    o.mode = mode;
    o.startup_models = std::move(startup);
    o.loader = loader_.Loader();
    o.metrics = &metrics_;
    StatusOr<std::unique_ptr<ModelManager>> m = ModelManager::Create(std::move(o));
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    manager_ = *std::move(m);
    HttpFrontendOptions fo;
    fo.tokens = std::move(tokens);
    fo.metrics = &registry_;
    fo.server_version = "test";
    frontend_ = std::make_unique<HttpFrontend>(*manager_, fo);
    frontend_->Register(router_);
    http::ServerOptions so;
    so.port = 0;
    so.threads = 2;
    server_ = std::make_unique<http::Server>(
        so, [this](http::Request& req, http::Response& res) { router_.Dispatch(req, res); });
    ASSERT_TRUE(server_->Start().ok());
    url_ = fmt::format("http://127.0.0.1:{}", server_->port());
    client_ = *http::Client::Make(url_, 10'000);
  }

  http::ClientResponse Do(Method method, std::string_view path, std::string_view body = {},
                          http::Headers headers = {}) {
    StatusOr<http::ClientResponse> r = client_->Do(method, path, headers, body);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : http::ClientResponse{};
  }
  http::ClientResponse Get(std::string_view path, http::Headers h = {}) {
    return Do(Method::kGet, path, {}, std::move(h));
  }
  http::ClientResponse Post(std::string_view path, std::string_view body, http::Headers h = {}) {
    return Do(Method::kPost, path, body, std::move(h));
  }
  static JsonValue Json(const http::ClientResponse& r) {
    StatusOr<JsonValue> v = ParseJson(r.body);
    EXPECT_TRUE(v.ok()) << r.body;
    return v.ok() ? *v : JsonValue();
  }
  static std::string Error(const http::ClientResponse& r) {
    const JsonValue j = Json(r);
    const JsonValue* e = j.Find("error");
    return e != nullptr && e->is_string() ? e->as_string() : "<no error in " + r.body + ">";
  }

  std::string repo_;
  FakeLoader loader_;
  MetricsRegistry registry_;
  ServingMetrics metrics_{registry_};
  std::unique_ptr<ModelManager> manager_;
  std::unique_ptr<HttpFrontend> frontend_;
  http::Router router_;
  std::unique_ptr<http::Server> server_;
  std::string url_;
  std::unique_ptr<http::Client> client_;
};

constexpr std::string_view kInfer =
    R"({"id":"r1","inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]})";

TEST_F(HttpFrontendTest, HealthAndServerMetadata) {
  Start();
  EXPECT_EQ(Get("/v2/health/live").status, 200);
  EXPECT_EQ(Get("/v2/health/ready").status, 200);
  http::ClientResponse meta = Get("/v2");
  ASSERT_EQ(meta.status, 200);
  EXPECT_THAT(meta.body, HasSubstr(R"("name":"lathe","version":"test")"));
  EXPECT_THAT(meta.body, HasSubstr("binary_tensor_data"));
  frontend_->SetDraining(true);
  EXPECT_EQ(Get("/v2/health/ready").status, 503);
  EXPECT_EQ(Get("/v2/health/live").status, 200);
}

TEST_F(HttpFrontendTest, ModelMetadataReadyConfigAndErrors) {
  Start();
  http::ClientResponse meta = Get("/v2/models/m");
  ASSERT_EQ(meta.status, 200) << meta.body;
  EXPECT_EQ(meta.body, R"({"name":"m","versions":["1","2"],"platform":"pytorch_torchscript",)"
                       R"("inputs":[{"name":"x","datatype":"FP32","shape":[-1,2]}],)"
                       R"("outputs":[{"name":"y","datatype":"FP32","shape":[-1,2]},)"
                       R"({"name":"z","datatype":"FP32","shape":[-1,2]}]})");
  EXPECT_EQ(Get("/v2/models/m/versions/1").status, 200);
  EXPECT_EQ(Get("/v2/models/m/ready").status, 200);
  EXPECT_EQ(Get("/v2/models/m/versions/2/ready").status, 200);

  http::ClientResponse unknown = Get("/v2/models/nope");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_THAT(Error(unknown), HasSubstr("\"nope\""));
  http::ClientResponse v9 = Get("/v2/models/m/versions/9/ready");
  EXPECT_EQ(v9.status, 404);
  EXPECT_THAT(Error(v9), HasSubstr("version 9"));
  http::ClientResponse bad = Get("/v2/models/m/versions/x1");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(Error(bad), HasSubstr("\"x1\""));

  http::ClientResponse cfg = Get("/v2/models/m/config");
  ASSERT_EQ(cfg.status, 200);
  const JsonValue c = Json(cfg);
  EXPECT_EQ(c.Find("max_batch_size")->as_int(), 8);
  EXPECT_EQ(c.Find("labels")->Find("stable")->as_int(), 1);
  EXPECT_EQ(c.Find("dynamic_batching")->Find("max_queue_size")->as_int(), 0);
}

TEST_F(HttpFrontendTest, V2JsonInferEchoesIdAndPicksVersions) {
  Start();
  http::ClientResponse r = Post("/v2/models/m/infer", kInfer);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"model_name":"m","model_version":"2","id":"r1","outputs":[)"
                    R"({"name":"y","datatype":"FP32","shape":[1,2],"data":[3.0,6.0]},)"
                    R"({"name":"z","datatype":"FP32","shape":[1,2],"data":[2.0,3.0]}]})");
  http::ClientResponse v1 = Post("/v2/models/m/versions/1/infer", kInfer);
  ASSERT_EQ(v1.status, 200) << v1.body;
  EXPECT_THAT(v1.body, HasSubstr(R"("model_version":"1")"));
  EXPECT_THAT(v1.body, HasSubstr("[2.0,4.0]"));
  http::ClientResponse only_z =
      Post("/v2/models/m/infer",
           R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]}],)"
           R"("outputs":[{"name":"z"}],"parameters":{"priority":0,"timeout":5000000}})");
  ASSERT_EQ(only_z.status, 200) << only_z.body;
  EXPECT_THAT(
      only_z.body,
      HasSubstr(
          R"("outputs":[{"name":"z","datatype":"FP32","shape":[2,2],"data":[2.0,3.0,4.0,5.0]}])"));
}

TEST_F(HttpFrontendTest, V2BinaryRoundTrip) {
  Start();
  InferRequest req;
  req.id = "bin";
  req.inputs.push_back(MakeTensor("x", DataType::kFp32, {2, 2}, std::vector<float>{1, 2, 3, 4}));
  req.outputs.push_back({"y", true});
  req.outputs.push_back({"z", false});
  StatusOr<V2EncodedResponse> enc = EncodeV2Request(req, {"x"});
  ASSERT_TRUE(enc.ok());
  ASSERT_TRUE(enc->header_length.has_value());
  http::ClientResponse r =
      Post("/v2/models/m/infer", enc->body,
           {{"Inference-Header-Content-Length", std::to_string(*enc->header_length)},
            {"Content-Type", "application/octet-stream"}});
  ASSERT_EQ(r.status, 200) << r.body;
  std::string_view hl = r.Header("inference-header-content-length");
  ASSERT_FALSE(hl.empty());
  EXPECT_EQ(r.Header("content-type"), "application/octet-stream");
  StatusOr<InferResponse> resp = DecodeV2Response(r.body, std::stoull(std::string(hl)));
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->id, "bin");
  ASSERT_EQ(resp->outputs.size(), 2u);
  std::vector<float> y(4);
  std::memcpy(y.data(), resp->outputs[0].data.data(), 16);
  EXPECT_EQ(y, (std::vector<float>{3, 6, 9, 12}));
  EXPECT_THAT(r.body.substr(0, std::stoull(std::string(hl))), HasSubstr("[2.0,3.0,4.0,5.0]"));
}

TEST_F(HttpFrontendTest, BadInputIsRefusedNamingTheProblemWhileOthersWork) {
  Start();
  struct Case {
    std::string body;
    http::Headers headers;
    std::string says;
  };
  InferRequest req;
  req.inputs.push_back(MakeTensor("x", DataType::kFp32, {1, 2}, std::vector<float>{1, 2}));
  V2EncodedResponse bin = *EncodeV2Request(req, {"x"});
  const std::string hl = std::to_string(*bin.header_length);
  const std::vector<Case> cases = {
      {R"({"inputs":[{"name":"x","shape":[1,2],"datatype":"INT32","data":[1,2]}]})", {}, "\"x\""},
      {R"({"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]})", {}, "\"x\""},
      {R"({"inputs":[{"name":"w","shape":[1,2],"datatype":"FP32","data":[1,2]}]})", {}, "\"w\""},
      {R"({"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1]}]})", {}, "\"x\""},
      {R"({"inputs":[{"name":"x","shape":[1099511627776,1099511627776],"datatype":"FP32","data":[1]}]})",
       {},
       "\"x\""},
      {R"({"inputs":[{"name":"x","shape":[9,2],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18]}]})",
       {},
       "\"x\""},
      {R"({"inputs": [)", {}, ""},
      // Truncated binary data, header length over the body, and a bad header value.
      {bin.body.substr(0, bin.body.size() - 3), {{"Inference-Header-Content-Length", hl}}, "\"x\""},
      {bin.body, {{"Inference-Header-Content-Length", std::to_string(bin.body.size() + 10)}}, ""},
      {bin.body, {{"Inference-Header-Content-Length", "-4"}}, "Inference-Header-Content-Length"},
  };
  for (const Case& c : cases) {
    http::ClientResponse r = Post("/v2/models/m/infer", c.body, c.headers);
    EXPECT_EQ(r.status, 400) << c.body << " → " << r.body;
    EXPECT_THAT(Error(r), HasSubstr(c.says)) << c.body;
    // The connection and the server go on.
    EXPECT_EQ(Post("/v2/models/m/infer", kInfer).status, 200);
  }
  http::ClientResponse good =
      Post("/v2/models/m/infer", bin.body, {{"Inference-Header-Content-Length", hl}});
  EXPECT_EQ(good.status, 200) << good.body;
  EXPECT_EQ(Post("/v2/models/nope/infer", kInfer).status, 404);
  EXPECT_EQ(Post("/v2/models/m/versions/7/infer", kInfer).status, 404);
}

TEST_F(HttpFrontendTest, TfServingPredictStatusAndMetadata) {
  Start();
  http::ClientResponse row = Post("/v1/models/m:predict", R"({"instances":[[1,2],[3,4]]})");
  ASSERT_EQ(row.status, 200) << row.body;
  EXPECT_EQ(row.body,
            R"({"predictions":[{"y":[3.0,6.0],"z":[2.0,3.0]},{"y":[9.0,12.0],"z":[4.0,5.0]}]})");
  http::ClientResponse col = Post("/v1/models/m/versions/1:predict", R"({"inputs":{"x":[[1,2]]}})");
  ASSERT_EQ(col.status, 200) << col.body;
  EXPECT_EQ(col.body, R"({"outputs":{"y":[[2.0,4.0]],"z":[[2.0,3.0]]}})");
  http::ClientResponse label = Post("/v1/models/m/labels/stable:predict", R"({"inputs":[[1,2]]})");
  ASSERT_EQ(label.status, 200) << label.body;
  EXPECT_THAT(label.body, HasSubstr("[[2.0,4.0]]"));

  http::ClientResponse bad = Post("/v1/models/m:predict", R"({"instances":[[1,2],[3]]})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(Error(bad), HasSubstr("not rectangular"));
  EXPECT_EQ(Post("/v1/models/m:classify", "{}").status, 501);
  EXPECT_EQ(Post("/v1/models/m:nope", "{}").status, 404);
  EXPECT_EQ(Post("/v1/models/m", "{}").status, 404);
  http::ClientResponse missing = Post("/v1/models/nope:predict", R"({"instances":[[1,2]]})");
  EXPECT_EQ(missing.status, 404);
  EXPECT_THAT(Error(missing), HasSubstr("\"nope\""));
  EXPECT_EQ(Post("/v1/models/m/labels/gold:predict", R"({"instances":[[1,2]]})").status, 404);

  http::ClientResponse status = Get("/v1/models/m");
  ASSERT_EQ(status.status, 200) << status.body;
  EXPECT_EQ(status.body,
            R"({"model_version_status":[{"version":"1","state":"AVAILABLE","status":)"
            R"({"error_code":"OK","error_message":""}},{"version":"2","state":"AVAILABLE",)"
            R"("status":{"error_code":"OK","error_message":""}}]})");
  http::ClientResponse one = Get("/v1/models/m/versions/2");
  ASSERT_EQ(one.status, 200);
  EXPECT_THAT(one.body, HasSubstr(R"("version":"2")"));
  EXPECT_THAT(one.body, ::testing::Not(HasSubstr(R"("version":"1")")));
  EXPECT_EQ(Get("/v1/models/nope").status, 404);

  http::ClientResponse meta = Get("/v1/models/m/labels/stable/metadata");
  ASSERT_EQ(meta.status, 200) << meta.body;
  EXPECT_THAT(meta.body,
              HasSubstr(R"("model_spec":{"name":"m","signature_name":"","version":"1"})"));
  EXPECT_THAT(meta.body, HasSubstr(R"("dtype":"DT_FLOAT")"));
  EXPECT_EQ(Get("/v1/models/m/metadata").status, 200);
  EXPECT_EQ(Get("/v1/models/m/other").status, 404);
}

TEST_F(HttpFrontendTest, StatsIndexAndMetrics) {
  Start();
  ASSERT_EQ(Post("/v2/models/m/infer", kInfer).status, 200);
  http::ClientResponse stats = Get("/v2/models/m/versions/2/stats");
  ASSERT_EQ(stats.status, 200) << stats.body;
  const JsonValue s = Json(stats);
  const JsonValue& first = s.Find("model_stats")->items().at(0);
  EXPECT_EQ(first.Find("name")->as_string(), "m");
  EXPECT_EQ(first.Find("inference_count")->as_int(), 1);
  EXPECT_EQ(first.Find("inference_stats")->Find("success")->Find("count")->as_int(), 1);
  EXPECT_EQ(Json(Get("/v2/models/stats")).Find("model_stats")->items().size(), 3u);
  EXPECT_EQ(Json(Get("/v2/models/m/stats")).Find("model_stats")->items().size(), 2u);
  EXPECT_EQ(Get("/v2/models/nope/stats").status, 404);

  http::ClientResponse index = Post("/v2/repository/index", "");
  ASSERT_EQ(index.status, 200);
  EXPECT_THAT(index.body, HasSubstr(R"({"name":"m","version":"1","state":"READY","reason":""})"));
  EXPECT_EQ(Post("/v2/repository/index", R"({"ready":true})").status, 200);
  EXPECT_EQ(Post("/v2/repository/index", R"({"ready":1})").status, 400);

  http::ClientResponse metrics = Get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.Header("content-type"), HasSubstr("text/plain"));
  EXPECT_THAT(metrics.body,
              HasSubstr(R"(lathe_inference_request_success_total{model="m",version="2"} 1)"));
  EXPECT_THAT(metrics.body, HasSubstr("lathe_inference_overload_level"));
}

TEST_F(HttpFrontendTest, FullQueueAnswers429AndDeadline504) {
  loader_.close_gates = true;
  Start();
  std::shared_ptr<FakeState> state = loader_.State("small", 1);
  ASSERT_NE(state, nullptr);
  auto send = [this](std::string body) {
    return std::async(std::launch::async, [this, body] {
      auto c = *http::Client::Make(url_, 10'000);
      return c->Do(Method::kPost, "/v2/models/small/infer", {}, body);
    });
  };
  auto running = send(std::string(kInfer));  // executes, held at the gate
  ASSERT_TRUE(state->WaitHeld(1));
  auto queued = send(std::string(kInfer));  // the one queue slot
  auto version = *manager_->Resolve("small", {});
  const auto until = Clock::now() + std::chrono::seconds(5);
  while (version->batcher->queue_depth() < 1 && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  http::ClientResponse full = Post("/v2/models/small/infer", kInfer);
  EXPECT_EQ(full.status, 429) << full.body;
  EXPECT_EQ(full.Header("retry-after"), "1");
  EXPECT_THAT(Error(full), HasSubstr("small"));
  state->Open();
  EXPECT_EQ(running.get()->status, 200);
  EXPECT_EQ(queued.get()->status, 200);

  // A request whose deadline passes while it waits: 504.
  state->Close();
  auto held = send(std::string(kInfer));
  ASSERT_TRUE(state->WaitHeld(1));
  http::ClientResponse late = Post(
      "/v2/models/small/infer",
      R"({"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}],"parameters":{"timeout":20000}})");
  EXPECT_EQ(late.status, 504) << late.body;
  state->Open();
  EXPECT_EQ(held.get()->status, 200);
}

TEST_F(HttpFrontendTest, RequestOfAClientThatLeftIsDroppedBeforeExecution) {
  loader_.close_gates = true;
  Start();
  std::shared_ptr<FakeState> state = loader_.State("m", 2);
  auto held = std::async(std::launch::async, [this] {
    auto c = *http::Client::Make(url_, 10'000);
    return c->Do(Method::kPost, "/v2/models/m/infer", {}, std::string(kInfer));
  });
  ASSERT_TRUE(state->WaitHeld(1));
  // A raw client sends a request and goes away while it is queued.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string wire =
      fmt::format("POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{}",
                  kInfer.size(), kInfer);
  ASSERT_EQ(::write(fd, wire.data(), wire.size()), static_cast<ssize_t>(wire.size()));
  auto version = *manager_->Resolve("m", {});
  const auto until = Clock::now() + std::chrono::seconds(5);
  while (version->batcher->queue_depth() < 1 && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::close(fd);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the server notices
  state->Open();
  EXPECT_EQ(held.get()->status, 200);
  // Only the first request executed; the second was dropped as cancelled.
  ASSERT_TRUE(manager_->Statistics("m", 2).ok());
  const ModelStatistics st = manager_->Statistics("m", 2)->at(0);
  EXPECT_EQ(state->calls.load(), 1);
  EXPECT_EQ(st.failures[static_cast<size_t>(FailureReason::kCancelled)], 1u);
}

TEST_F(HttpFrontendTest, ManagementNeedsAConfiguredToken) {
  Start(ModelControlMode::kExplicit, {}, {"m"});
  http::ClientResponse r = Post("/v2/repository/models/small/load", "");
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(Error(r), HasSubstr("--token-file"));
  // Inference and metadata stay open without tokens.
  EXPECT_EQ(Post("/v2/models/m/infer", kInfer).status, 200);
  EXPECT_EQ(Get("/v2/models/m").status, 200);
}

TEST_F(HttpFrontendTest, TokensGuardEverythingButHealth) {
  Start(ModelControlMode::kExplicit, {"s3cret", "other"}, {"m"});
  const http::Headers good = {{"Authorization", "Bearer s3cret"}};
  const http::Headers wrong = {{"Authorization", "Bearer s3cre"}};
  EXPECT_EQ(Get("/v2/health/ready").status, 200);
  EXPECT_EQ(Get("/v2/health/live").status, 200);
  for (const char* path : {"/v2", "/v2/models/m", "/metrics", "/v1/models/m", "/v2/models/stats"}) {
    http::ClientResponse none = Get(path);
    EXPECT_EQ(none.status, 401) << path;
    EXPECT_THAT(none.Header("www-authenticate"), HasSubstr("Bearer")) << path;
    EXPECT_EQ(Get(path, wrong).status, 401) << path;
    EXPECT_EQ(Get(path, good).status, 200) << path;
  }
  EXPECT_EQ(Post("/v2/models/m/infer", kInfer).status, 401);
  EXPECT_EQ(Post("/v2/models/m/infer", kInfer, {{"Authorization", "bearer other"}}).status, 200);

  EXPECT_EQ(Post("/v2/repository/models/small/load", "").status, 401);
  EXPECT_EQ(Post("/v2/models/small/infer", kInfer, good).status, 404);
  http::ClientResponse load = Post("/v2/repository/models/small/load", "", good);
  EXPECT_EQ(load.status, 200) << load.body;
  EXPECT_EQ(Post("/v2/models/small/infer", kInfer, good).status, 200);
  EXPECT_EQ(Post("/v2/repository/models/small/unload", "{}", good).status, 200);
  EXPECT_EQ(Post("/v2/models/small/infer", kInfer, good).status, 503);
  EXPECT_EQ(Post("/v2/repository/models/nope/load", "", good).status, 404);
  EXPECT_EQ(
      Post("/v2/repository/models/small/load", R"({"parameters":{"config":"{}"}})", good).status,
      400);
}

TEST(ReadTokenFile, SkipsBlanksAndComments) {
  const std::string path = ::testing::TempDir() + "lathe-tokens";
  std::ofstream(path) << "# tokens\n\n  abc  \ndef\n";
  StatusOr<std::vector<std::string>> t = ReadTokenFile(path);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, (std::vector<std::string>{"abc", "def"}));
  std::ofstream(path) << "# none\n";
  EXPECT_EQ(ReadTokenFile(path).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadTokenFile(path + ".missing").status().code(), StatusCode::kNotFound);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace lathe::serving
