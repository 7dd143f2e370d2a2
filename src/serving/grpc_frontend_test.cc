// The gRPC front end through a real server on port 0 and the generated
// client stub, over a ModelManager whose instances are fakes.
#include "serving/grpc_frontend.h"

#include <stdlib.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <thread>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "serving/fake_instance.h"
#include "serving/protocols/grpc_codec.h"
#include "serving/protocols/grpc_predict_v2.grpc.pb.h"

namespace lathe::serving {
namespace {

namespace fs = std::filesystem;
using inference::GRPCInferenceService;
using inference::ModelInferRequest;
using inference::ModelInferResponse;
using testing::FakeInstance;
using testing::FakeState;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// Returns each input `<n>` as output `<n>_out`, for any datatype.
class EchoInstance final : public ModelInstance {
 public:
  StatusOr<std::vector<Tensor>> Execute(const std::vector<Tensor>& inputs,
                                        const std::vector<std::string>& outputs) override {
    std::vector<std::string> names = outputs;
    if (names.empty()) {
      for (const Tensor& t : inputs) names.push_back(t.name + "_out");
    }
    std::vector<Tensor> out;
    for (const std::string& name : names) {
      for (const Tensor& t : inputs) {
        if (t.name + "_out" == name) {
          out.push_back(Tensor{name, t.type, t.shape, TensorData(std::string(t.data.bytes()))});
        }
      }
    }
    return out;
  }
};

constexpr char kFakeConfig[] = R"(
backend: torchscript
max_batch_size: 64
inputs: [{name: x, datatype: FP32, dims: [2]}]
outputs: [{name: y, datatype: FP32, dims: [2]}, {name: z, datatype: FP32, dims: [2]}]
dynamic_batching: {max_queue_size: 100}
)";

constexpr char kQueueConfig[] = R"(
backend: torchscript
max_batch_size: 1
inputs: [{name: x, datatype: FP32, dims: [2]}]
outputs: [{name: y, datatype: FP32, dims: [2]}, {name: z, datatype: FP32, dims: [2]}]
dynamic_batching: {max_queue_size: 1}
)";

constexpr char kEchoConfig[] = R"(
backend: torchscript
max_batch_size: 0
inputs:
  - {name: s, datatype: BYTES, dims: [-1]}
  - {name: i, datatype: INT8, dims: [-1]}
  - {name: h, datatype: FP16, dims: [-1], optional: true}
outputs:
  - {name: s_out, datatype: BYTES, dims: [-1]}
  - {name: i_out, datatype: INT8, dims: [-1]}
  - {name: h_out, datatype: FP16, dims: [-1]}
)";

class GrpcFrontendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = ::testing::TempDir() + "lathe-grpc-XXXXXX";
    ASSERT_NE(::mkdtemp(repo_.data()), nullptr);
    WriteModel("m", kFakeConfig);
    WriteModel("slow", kFakeConfig);
    WriteModel("q", kQueueConfig);
    WriteModel("echo", kEchoConfig);

    ModelManagerOptions o;
    o.repository = repo_;
    o.loader = [this](const ModelConfig& config, const std::string&,
                      int) -> StatusOr<std::unique_ptr<ModelInstance>> {
      if (config.name == "echo") return std::unique_ptr<ModelInstance>(new EchoInstance());
      auto state = std::make_shared<FakeState>();
      {
        std::lock_guard<std::mutex> lock(mu_);
        states_[config.name] = state;
      }
      return std::unique_ptr<ModelInstance>(new FakeInstance(state));
    };
    o.metrics = &metrics_;
    StatusOr<std::unique_ptr<ModelManager>> m = ModelManager::Create(std::move(o));
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    manager_ = *std::move(m);
    StartServer({});
  }

  void TearDown() override {
    for (auto& [name, state] : states_) state->Open();
    frontend_.reset();
    manager_.reset();
    std::error_code ec;
    fs::remove_all(repo_, ec);
  }

  void StartServer(GrpcFrontendOptions options) {
    frontend_.reset();
    options.address = "127.0.0.1:0";
    StatusOr<std::unique_ptr<GrpcFrontend>> f = GrpcFrontend::Start(*manager_, std::move(options));
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    frontend_ = *std::move(f);
    ASSERT_GT(frontend_->port(), 0);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(frontend_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = GRPCInferenceService::NewStub(channel_);
  }

  void WriteModel(const std::string& name, const std::string& config) {
    fs::create_directories(repo_ + "/" + name + "/1");
    std::ofstream(repo_ + "/" + name + "/config.yaml") << config;
    std::ofstream(repo_ + "/" + name + "/1/model.txt") << "fake";
  }

  std::shared_ptr<FakeState> State(const std::string& model) {
    std::lock_guard<std::mutex> lock(mu_);
    return states_.at(model);
  }

  // A request for the fake model: x of shape [rows, 2], raw or typed.
  static ModelInferRequest XRequest(const std::string& model, std::vector<float> x,
                                    bool raw = true) {
    InferRequest r;
    const int64_t rows = static_cast<int64_t>(x.size() / 2);
    r.inputs.push_back(MakeTensor("x", DataType::kFp32, {rows, 2}, x));
    ModelInferRequest m;
    EXPECT_TRUE(EncodeGrpcInferRequest(r, raw, &m).ok());
    m.set_model_name(model);
    return m;
  }

  grpc::Status Infer(const ModelInferRequest& req, ModelInferResponse* res,
                     std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    return stub_->ModelInfer(&ctx, req, res);
  }

  // An inference that starts now and completes later.
  struct Call {
    grpc::ClientContext ctx;
    ModelInferRequest req;
    ModelInferResponse res;
    std::promise<grpc::Status> done;
  };
  std::unique_ptr<Call> Start(ModelInferRequest req) {
    auto call = std::make_unique<Call>();
    call->req = std::move(req);
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    Call* c = call.get();
    stub_->async()->ModelInfer(&c->ctx, &c->req, &c->res,
                               [c](grpc::Status s) { c->done.set_value(std::move(s)); });
    return call;
  }

  int64_t QueueDepth(const std::string& model) {
    StatusOr<std::shared_ptr<const ModelVersion>> v = manager_->Resolve(model, {});
    return v.ok() ? (*v)->batcher->queue_depth() : -1;
  }

  template <typename Pred>
  static bool WaitFor(Pred pred) {
    const auto until = Clock::now() + std::chrono::seconds(5);
    while (!pred()) {
      if (Clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

  static std::vector<float> Floats(const std::string& bytes) {
    std::vector<float> v(bytes.size() / sizeof(float));
    std::memcpy(v.data(), bytes.data(), bytes.size());
    return v;
  }

  std::string repo_;
  MetricsRegistry registry_;
  ServingMetrics metrics_{registry_};
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<FakeState>> states_;  // guarded by mu_
  std::unique_ptr<ModelManager> manager_;
  std::unique_ptr<GrpcFrontend> frontend_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<GRPCInferenceService::Stub> stub_;
};

TEST_F(GrpcFrontendTest, HealthAndMetadata) {
  grpc::ClientContext c1, c2, c3, c4, c5, c6;
  inference::ServerLiveResponse live;
  ASSERT_TRUE(stub_->ServerLive(&c1, {}, &live).ok());
  EXPECT_TRUE(live.live());

  inference::ServerReadyResponse ready;
  ASSERT_TRUE(stub_->ServerReady(&c2, {}, &ready).ok());
  EXPECT_TRUE(ready.ready());

  inference::ModelReadyRequest mr;
  mr.set_name("m");
  inference::ModelReadyResponse mready;
  ASSERT_TRUE(stub_->ModelReady(&c3, mr, &mready).ok());
  EXPECT_TRUE(mready.ready());
  mr.set_name("nope");
  ASSERT_TRUE(stub_->ModelReady(&c4, mr, &mready).ok());
  EXPECT_FALSE(mready.ready());

  inference::ServerMetadataResponse sm;
  ASSERT_TRUE(stub_->ServerMetadata(&c5, {}, &sm).ok());
  EXPECT_EQ(sm.name(), "lathe");
  EXPECT_FALSE(sm.version().empty());
  EXPECT_THAT(sm.extensions(), ::testing::Contains("schedule_policy"));

  inference::ModelMetadataRequest mm;
  mm.set_name("m");
  inference::ModelMetadataResponse meta;
  grpc::Status s = stub_->ModelMetadata(&c6, mm, &meta);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(meta.name(), "m");
  EXPECT_THAT(meta.versions(), ElementsAre("1"));
  EXPECT_EQ(meta.platform(), "pytorch_torchscript");
  ASSERT_EQ(meta.inputs_size(), 1);
  EXPECT_EQ(meta.inputs(0).name(), "x");
  EXPECT_EQ(meta.inputs(0).datatype(), "FP32");
  EXPECT_THAT(meta.inputs(0).shape(), ElementsAre(-1, 2));
  ASSERT_EQ(meta.outputs_size(), 2);
  EXPECT_EQ(meta.outputs(1).name(), "z");

  frontend_->SetDraining(true);
  grpc::ClientContext c7;
  ASSERT_TRUE(stub_->ServerReady(&c7, {}, &ready).ok());
  EXPECT_FALSE(ready.ready());
}

TEST_F(GrpcFrontendTest, MetadataOfUnknownModelOrVersionIsNotFound) {
  inference::ModelMetadataRequest mm;
  inference::ModelMetadataResponse meta;
  mm.set_name("nope");
  grpc::ClientContext c1;
  EXPECT_EQ(stub_->ModelMetadata(&c1, mm, &meta).error_code(), grpc::StatusCode::NOT_FOUND);
  mm.set_name("m");
  mm.set_version("7");
  grpc::ClientContext c2;
  EXPECT_EQ(stub_->ModelMetadata(&c2, mm, &meta).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(GrpcFrontendTest, RawInputsAndRawOutputs) {
  ModelInferRequest req = XRequest("m", {1, 2, 3, 4});
  req.set_id("req-1");
  ModelInferResponse res;
  grpc::Status s = Infer(req, &res);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(res.model_name(), "m");
  EXPECT_EQ(res.model_version(), "1");
  EXPECT_EQ(res.id(), "req-1");
  ASSERT_EQ(res.outputs_size(), 2);
  ASSERT_EQ(res.raw_output_contents_size(), 2);
  EXPECT_EQ(res.outputs(0).name(), "y");
  EXPECT_EQ(res.outputs(0).datatype(), "FP32");
  EXPECT_THAT(res.outputs(0).shape(), ElementsAre(2, 2));
  EXPECT_FALSE(res.outputs(0).has_contents());
  EXPECT_THAT(Floats(res.raw_output_contents(0)), ElementsAre(2, 4, 6, 8));
  EXPECT_THAT(Floats(res.raw_output_contents(1)), ElementsAre(2, 3, 4, 5));
}

TEST_F(GrpcFrontendTest, TypedInputsAndRequestedOutputs) {
  ModelInferRequest req = XRequest("m", {1, 2}, /*raw=*/false);
  ASSERT_EQ(req.raw_input_contents_size(), 0);
  req.add_outputs()->set_name("z");
  ModelInferResponse res;
  grpc::Status s = Infer(req, &res);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(res.outputs_size(), 1);
  EXPECT_EQ(res.outputs(0).name(), "z");
  EXPECT_THAT(Floats(res.raw_output_contents(0)), ElementsAre(2, 3));
}

TEST_F(GrpcFrontendTest, TypedOutputsWhenAsked) {
  ModelInferRequest req = XRequest("m", {1, 2});
  (*req.mutable_parameters())["binary_data_output"].set_bool_param(false);
  ModelInferResponse res;
  grpc::Status s = Infer(req, &res);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(res.raw_output_contents_size(), 0);
  ASSERT_EQ(res.outputs_size(), 2);
  EXPECT_THAT(res.outputs(0).contents().fp32_contents(), ElementsAre(2, 4));
  EXPECT_THAT(res.outputs(1).contents().fp32_contents(), ElementsAre(2, 3));

  // Per output, as the REST binary extension's binary_data.
  ModelInferRequest one = XRequest("m", {5, 6});
  auto* o = one.add_outputs();
  o->set_name("y");
  (*o->mutable_parameters())["binary_data"].set_bool_param(false);
  ModelInferResponse res1;
  ASSERT_TRUE(Infer(one, &res1).ok());
  EXPECT_THAT(res1.outputs(0).contents().fp32_contents(), ElementsAre(10, 12));
}

TEST_F(GrpcFrontendTest, RawBytesInt8AndFp16RoundTrip) {
  InferRequest r;
  r.inputs.push_back(MakeBytesTensor("s", {3}, {"a", "", std::string("\0\xff", 2)}));
  r.inputs.push_back(MakeTensor("i", DataType::kInt8, {2}, std::vector<int8_t>{-128, 127}));
  r.inputs.push_back(MakeTensor("h", DataType::kFp16, {1}, std::vector<uint16_t>{0x3c00}));
  ModelInferRequest req;
  ASSERT_TRUE(EncodeGrpcInferRequest(r, /*raw=*/true, &req).ok());
  req.set_model_name("echo");
  ModelInferResponse res;
  grpc::Status s = Infer(req, &res);
  ASSERT_TRUE(s.ok()) << s.error_message();
  StatusOr<InferResponse> decoded = DecodeGrpcInferResponse(res);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->outputs.size(), 3u);
  EXPECT_EQ(decoded->outputs[0].name, "s_out");
  EXPECT_EQ(decoded->outputs[0].type, DataType::kBytes);
  EXPECT_EQ(decoded->outputs[0].data.bytes(), r.inputs[0].data.bytes());
  EXPECT_EQ(decoded->outputs[1].data.bytes(), r.inputs[1].data.bytes());
  EXPECT_EQ(decoded->outputs[2].type, DataType::kFp16);
  EXPECT_EQ(decoded->outputs[2].data.bytes(), r.inputs[2].data.bytes());

  // Typed outputs asked for, but FP16 has no typed field: all stay raw.
  (*req.mutable_parameters())["binary_data_output"].set_bool_param(false);
  ASSERT_TRUE(Infer(req, &res).ok());
  EXPECT_EQ(res.raw_output_contents_size(), 3);
}

TEST_F(GrpcFrontendTest, TypedBytesAndInt8RoundTrip) {
  ModelInferRequest req;
  req.set_model_name("echo");
  auto* s = req.add_inputs();
  s->set_name("s");
  s->set_datatype("BYTES");
  s->add_shape(2);
  s->mutable_contents()->add_bytes_contents("hello");
  s->mutable_contents()->add_bytes_contents(std::string(1, '\0'));
  auto* i = req.add_inputs();
  i->set_name("i");
  i->set_datatype("INT8");
  i->add_shape(1);
  i->mutable_contents()->add_int_contents(-5);
  (*req.mutable_parameters())["binary_data_output"].set_bool_param(false);
  ModelInferResponse res;
  grpc::Status st = Infer(req, &res);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(res.outputs_size(), 2);
  EXPECT_EQ(res.raw_output_contents_size(), 0);
  EXPECT_THAT(res.outputs(0).contents().bytes_contents(), ElementsAre("hello", std::string(1, '\0')));
  EXPECT_THAT(res.outputs(1).contents().int_contents(), ElementsAre(-5));

  // INT8 out of range in int_contents.
  i->mutable_contents()->set_int_contents(0, 300);
  st = Infer(req, &res);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("inputs[1] \"i\": element 0 (300) is out of range"));

  // FP16 cannot go typed.
  auto* h = req.add_inputs();
  h->set_name("h");
  h->set_datatype("FP16");
  h->add_shape(1);
  i->mutable_contents()->set_int_contents(0, 1);
  st = Infer(req, &res);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("inputs[2] \"h\": FP16 has no typed contents"));
}

TEST_F(GrpcFrontendTest, BadInputsNameTheTensorAndOthersKeepWorking) {
  struct Case {
    std::string what;
    std::function<void(ModelInferRequest*)> edit;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"wrong datatype", [](ModelInferRequest* r) { r->mutable_inputs(0)->set_datatype("INT32"); },
       "\"x\""},
      {"unknown datatype", [](ModelInferRequest* r) { r->mutable_inputs(0)->set_datatype("F32"); },
       "inputs[0] \"x\": \"F32\" is not a datatype"},
      {"wrong shape",
       [](ModelInferRequest* r) {
         r->mutable_inputs(0)->clear_shape();
         r->mutable_inputs(0)->add_shape(1);
         r->mutable_inputs(0)->add_shape(4);
       },
       "\"x\""},
      {"wrong name", [](ModelInferRequest* r) { r->mutable_inputs(0)->set_name("w"); }, "\"w\""},
      {"raw length",
       [](ModelInferRequest* r) { r->mutable_raw_input_contents(0)->resize(12); },
       "inputs[0] \"x\": raw_input_contents[0]: 4 elements of FP32 need 16 bytes but data has 12"},
      {"raw and typed",
       [](ModelInferRequest* r) { r->mutable_inputs(0)->mutable_contents()->add_fp32_contents(1); },
       "inputs[0] \"x\": has contents and the request has raw_input_contents"},
      {"raw count", [](ModelInferRequest* r) { r->add_raw_input_contents("extra"); },
       "raw_input_contents: 2 entries for 1 inputs"},
      {"absurd shape",
       [](ModelInferRequest* r) {
         r->mutable_inputs(0)->clear_shape();
         r->mutable_inputs(0)->add_shape(int64_t{1} << 40);
         r->mutable_inputs(0)->add_shape(int64_t{1} << 40);
       },
       "inputs[0] \"x\""},
      {"negative dimension",
       [](ModelInferRequest* r) { r->mutable_inputs(0)->set_shape(0, -2); }, "inputs[0] \"x\""},
      {"bad priority",
       [](ModelInferRequest* r) { (*r->mutable_parameters())["priority"].set_string_param("hi"); },
       "parameters.priority: expected a non-negative integer"},
      {"unknown output", [](ModelInferRequest* r) { r->add_outputs()->set_name("nope"); },
       "\"nope\""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ModelInferRequest req = XRequest("m", {1, 2, 3, 4});
    c.edit(&req);
    ModelInferResponse res;
    grpc::Status s = Infer(req, &res);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));
    // A good call right after still works.
    ModelInferResponse ok;
    ASSERT_TRUE(Infer(XRequest("m", {1, 1}), &ok).ok());
    EXPECT_THAT(Floats(ok.raw_output_contents(0)), ElementsAre(2, 2));
  }
  // Typed contents in the wrong field, and too few elements.
  ModelInferRequest typed = XRequest("m", {1, 2}, /*raw=*/false);
  typed.mutable_inputs(0)->mutable_contents()->clear_fp32_contents();
  typed.mutable_inputs(0)->mutable_contents()->add_int_contents(1);
  typed.mutable_inputs(0)->mutable_contents()->add_int_contents(2);
  ModelInferResponse res;
  grpc::Status s = Infer(typed, &res);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(),
              HasSubstr("inputs[0] \"x\": datatype FP32 takes fp32_contents, not int_contents"));
  typed.mutable_inputs(0)->mutable_contents()->clear_int_contents();
  typed.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
  s = Infer(typed, &res);
  EXPECT_THAT(s.error_message(),
              HasSubstr("inputs[0] \"x\": shape has 2 elements but fp32_contents has 1"));
}

TEST_F(GrpcFrontendTest, UnknownModelOrVersionIsNotFound) {
  ModelInferResponse res;
  EXPECT_EQ(Infer(XRequest("nope", {1, 2}), &res).error_code(), grpc::StatusCode::NOT_FOUND);
  ModelInferRequest req = XRequest("m", {1, 2});
  req.set_model_version("9");
  EXPECT_EQ(Infer(req, &res).error_code(), grpc::StatusCode::NOT_FOUND);
  req.set_model_version("no-such-label");
  EXPECT_EQ(Infer(req, &res).error_code(), grpc::StatusCode::NOT_FOUND);
  req.set_model_version("1");
  EXPECT_TRUE(Infer(req, &res).ok());
}

TEST_F(GrpcFrontendTest, FullQueueIsResourceExhausted) {
  std::shared_ptr<FakeState> state = State("q");
  state->Close();
  auto first = Start(XRequest("q", {1, 1}));  // executing, held at the gate
  ASSERT_TRUE(state->WaitHeld(1));
  auto second = Start(XRequest("q", {2, 2}));  // queued: the queue is full
  ASSERT_TRUE(WaitFor([&] { return QueueDepth("q") == 1; }));
  ModelInferResponse res;
  grpc::Status s = Infer(XRequest("q", {3, 3}), &res);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  state->Open();
  EXPECT_TRUE(first->done.get_future().get().ok());
  EXPECT_TRUE(second->done.get_future().get().ok());
}

TEST_F(GrpcFrontendTest, ClientDeadlineBoundsTheQueueWait) {
  std::shared_ptr<FakeState> state = State("slow");
  state->Close();
  auto first = Start(XRequest("slow", {1, 1}));
  ASSERT_TRUE(state->WaitHeld(1));
  // Queued behind the held batch; its deadline passes while it waits.
  ModelInferResponse res;
  const auto t0 = Clock::now();
  grpc::Status s = Infer(XRequest("slow", {2, 2}), &res, std::chrono::milliseconds(200));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));
  // The server dropped it too: the queue empties without running it.
  EXPECT_TRUE(WaitFor([&] { return QueueDepth("slow") == 0; }));
  // The `timeout` parameter (µs) gives a server-side DEADLINE_EXCEEDED.
  ModelInferRequest timed = XRequest("slow", {3, 3});
  (*timed.mutable_parameters())["timeout"].set_int64_param(50'000);
  s = Infer(timed, &res);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  state->Open();
  EXPECT_TRUE(first->done.get_future().get().ok());
  EXPECT_THAT(state->batch_sizes(), ElementsAre(1));
}

TEST_F(GrpcFrontendTest, CancelledCallIsDroppedBeforeExecution) {
  std::shared_ptr<FakeState> state = State("slow");
  state->Close();
  auto first = Start(XRequest("slow", {1, 1}));
  ASSERT_TRUE(state->WaitHeld(1));
  auto second = Start(XRequest("slow", {2, 2}));
  ASSERT_TRUE(WaitFor([&] { return QueueDepth("slow") == 1; }));
  second->ctx.TryCancel();
  EXPECT_EQ(second->done.get_future().get().error_code(), grpc::StatusCode::CANCELLED);
  // Let the server see the cancellation before the batch forms.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  state->Open();
  EXPECT_TRUE(first->done.get_future().get().ok());
  ModelInferResponse res;
  ASSERT_TRUE(Infer(XRequest("slow", {3, 3}), &res).ok());
  // The cancelled request never executed: batches of the first and third.
  EXPECT_THAT(state->first_values(), ElementsAre(1, 3));
}

TEST_F(GrpcFrontendTest, ConcurrentCallsAreBatchedTogether) {
  std::shared_ptr<FakeState> state = State("m");
  state->Close();
  auto first = Start(XRequest("m", {0, 0}));
  ASSERT_TRUE(state->WaitHeld(1));
  std::vector<std::unique_ptr<Call>> calls;
  for (int i = 0; i < 64; ++i) {
    calls.push_back(Start(XRequest("m", {float(i), float(i)})));
  }
  ASSERT_TRUE(WaitFor([&] { return QueueDepth("m") == 64; })) << QueueDepth("m");
  state->Open();
  EXPECT_TRUE(first->done.get_future().get().ok());
  for (int i = 0; i < 64; ++i) {
    grpc::Status s = calls[i]->done.get_future().get();
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_THAT(Floats(calls[i]->res.raw_output_contents(0)), ElementsAre(2 * i, 2 * i));
  }
  EXPECT_THAT(state->batch_sizes(), ElementsAre(1, 64));
}

TEST_F(GrpcFrontendTest, BearerTokens) {
  GrpcFrontendOptions o;
  o.tokens = {"s3cret", "other"};
  StartServer(o);
  ModelInferResponse res;
  {
    grpc::ClientContext ctx;
    grpc::Status s = stub_->ModelInfer(&ctx, XRequest("m", {1, 2}), &res);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer wrong");
    EXPECT_EQ(stub_->ModelInfer(&ctx, XRequest("m", {1, 2}), &res).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "bearer other");
    grpc::Status s = stub_->ModelInfer(&ctx, XRequest("m", {1, 2}), &res);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
  {
    // Health needs no token; metadata does.
    grpc::ClientContext c1, c2;
    inference::ServerReadyResponse ready;
    EXPECT_TRUE(stub_->ServerReady(&c1, {}, &ready).ok());
    inference::ModelMetadataRequest mm;
    mm.set_name("m");
    inference::ModelMetadataResponse meta;
    EXPECT_EQ(stub_->ModelMetadata(&c2, mm, &meta).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
}

TEST_F(GrpcFrontendTest, MessageSizeLimit) {
  GrpcFrontendOptions o;
  o.max_message_bytes = 1024;
  StartServer(o);
  ModelInferResponse res;
  grpc::Status s = Infer(XRequest("m", std::vector<float>(1024, 1.0f)), &res);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_TRUE(Infer(XRequest("m", {1, 2}), &res).ok());
}

TEST_F(GrpcFrontendTest, BusyPortFailsToStart) {
  GrpcFrontendOptions o;
  o.address = "127.0.0.1:" + std::to_string(frontend_->port());
  StatusOr<std::unique_ptr<GrpcFrontend>> f = GrpcFrontend::Start(*manager_, o);
  EXPECT_EQ(f.status().code(), StatusCode::kUnavailable);
}

TEST_F(GrpcFrontendTest, BackendFailureIsInternal) {
  State("m")->fail = true;
  ModelInferResponse res;
  grpc::Status s = Infer(XRequest("m", {1, 2}), &res);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(s.error_message(), HasSubstr("injected failure"));
}

}  // namespace
}  // namespace lathe::serving
