#include "serving/grpc_frontend.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/message_allocator.h>

#include "base/build_info.h"
#include "base/crypto.h"
#include "base/strings.h"
#include "serving/protocols/grpc_codec.h"
#include "serving/protocols/grpc_predict_v2.grpc.pb.h"

namespace lathe::serving {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;

// The messages of one ModelInfer call. The request sits behind a shared_ptr
// so that raw input tensors can be views into it that outlive the call
// (the batcher may hold a request a little after answering it); gRPC
// releases the holder when the call ends, the request goes with the last
// tensor.
class InferMessages final : public grpc::MessageHolder<ModelInferRequest, ModelInferResponse> {
 public:
  InferMessages() : request_(std::make_shared<ModelInferRequest>()) {
    set_request(request_.get());
    set_response(&response_);
  }
  void Release() override { delete this; }
  std::shared_ptr<const void> owner() const { return request_; }

 private:
  std::shared_ptr<ModelInferRequest> request_;
  ModelInferResponse response_;
};

class InferMessageAllocator final
    : public grpc::MessageAllocator<ModelInferRequest, ModelInferResponse> {
 public:
  grpc::MessageHolder<ModelInferRequest, ModelInferResponse>* AllocateMessages() override {
    return new InferMessages();
  }
};

// One ModelInfer call, finished from the batcher's `done`. gRPC calls
// OnDone (and we delete it) only after Finish, so the cancellation hook the
// batcher polls before executing always sees a live reactor.
class InferReactor final : public grpc::ServerUnaryReactor {
 public:
  void OnCancel() override { cancelled_.store(true, std::memory_order_relaxed); }
  void OnDone() override { delete this; }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> cancelled_{false};
};

// "" = the server's choice; a positive decimal number = that version;
// anything else = a label.
VersionSelector ParseVersion(const std::string& version) {
  VersionSelector s;
  if (version.empty()) return s;
  int64_t n = 0;
  const char* end = version.data() + version.size();
  auto [p, ec] = std::from_chars(version.data(), end, n);
  if (ec == std::errc() && p == end && n > 0) {
    s.version = n;
  } else {
    s.label = version;
  }
  return s;
}

}  // namespace

class GrpcFrontend::Impl final : public inference::GRPCInferenceService::CallbackService {
 public:
  Impl(ModelManager& manager, GrpcFrontendOptions options)
      : manager_(manager), options_(std::move(options)) {
    for (const std::string& t : options_.tokens) token_hashes_.push_back(Sha256Hex(t));
    if (options_.server_version.empty()) options_.server_version = LATHE_VERSION;
    SetMessageAllocatorFor_ModelInfer(&allocator_);
  }

  // Health: never behind auth (probes carry no token).
  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* ctx,
                                       const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* res) override {
    res->set_live(true);
    return Done(ctx, OkStatus());
  }

  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* ctx,
                                        const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* res) override {
    // As the HTTP front end's /v2/health/ready: ready unless draining;
    // per-model readiness is ModelReady.
    res->set_ready(!draining_.load());
    return Done(ctx, OkStatus());
  }

  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* ctx,
                                       const inference::ModelReadyRequest* req,
                                       inference::ModelReadyResponse* res) override {
    const VersionSelector s = ParseVersion(req->version());
    bool ready;
    if (!s.label.empty()) {
      ready = manager_.Resolve(req->name(), s).ok();
    } else {
      ready = manager_.IsReady(req->name(), s.version);
    }
    res->set_ready(ready);
    return Done(ctx, OkStatus());
  }

  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* ctx,
                                           const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* res) override {
    if (Status s = Authorize(ctx); !s.ok()) return Done(ctx, s);
    res->set_name(options_.server_name);
    res->set_version(options_.server_version);
    // What this service implements of Triton's extensions: the request
    // parameters, and priority/timeout scheduling (schedule_policy).
    res->add_extensions("parameters");
    res->add_extensions("schedule_policy");
    return Done(ctx, OkStatus());
  }

  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* ctx,
                                          const inference::ModelMetadataRequest* req,
                                          inference::ModelMetadataResponse* res) override {
    if (Status s = Authorize(ctx); !s.ok()) return Done(ctx, s);
    if (req->name().empty()) return Done(ctx, InvalidArgumentError("name: the model name is empty"));
    StatusOr<std::shared_ptr<const ModelVersion>> v =
        manager_.Resolve(req->name(), ParseVersion(req->version()));
    if (!v.ok()) return Done(ctx, v.status());
    const ModelConfig& config = *(*v)->config;
    res->set_name(req->name());
    for (int64_t n : manager_.ReadyVersions(req->name())) res->add_versions(std::to_string(n));
    res->set_platform(std::string(BackendPlatform(config.backend)));
    auto add = [&](const TensorConfig& t, inference::ModelMetadataResponse::TensorMetadata* m) {
      m->set_name(t.name);
      m->set_datatype(std::string(DataTypeName(t.type)));
      std::vector<int64_t> shape = MetadataShape(config, t);
      m->mutable_shape()->Add(shape.begin(), shape.end());
    };
    for (const TensorConfig& t : config.inputs) add(t, res->add_inputs());
    for (const TensorConfig& t : config.outputs) add(t, res->add_outputs());
    return Done(ctx, OkStatus());
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx,
                                       const ModelInferRequest* req,
                                       ModelInferResponse* res) override {
    auto* reactor = new InferReactor();
    auto finish = [reactor](const Status& s) {
      reactor->Finish(ToGrpcStatus(s));
      return reactor;
    };
    if (Status s = Authorize(ctx); !s.ok()) return finish(s);
    if (req->model_name().empty()) {
      return finish(InvalidArgumentError("model_name: the model name is empty", "model_name"));
    }
    std::shared_ptr<const void> owner;
    if (auto* holder = dynamic_cast<InferMessages*>(ctx->GetRpcAllocatorState())) {
      owner = holder->owner();
    }
    StatusOr<GrpcInferRequest> decoded = DecodeGrpcInferRequest(*req, owner, options_.limits);
    if (!decoded.ok()) return finish(decoded.status());
    InferRequest& request = decoded->request;

    // The client's deadline bounds the time the request may wait for a
    // batch (with the `timeout` parameter and the model's default, the
    // lowest wins).
    const auto deadline = ctx->deadline();
    if (deadline != std::chrono::system_clock::time_point::max()) {
      const int64_t left_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                  deadline - std::chrono::system_clock::now())
                                  .count();
      if (left_us <= 0) {
        return finish(DeadlineExceededError("the call's deadline passed before it was queued"));
      }
      request.timeout_us = request.timeout_us == 0 ? left_us : std::min(request.timeout_us, left_us);
    }

    const bool typed = decoded->typed_outputs;
    RequestContext context{[reactor] { return reactor->cancelled(); }};
    manager_.Infer(
        req->model_name(), ParseVersion(req->model_version()), std::move(request),
        [reactor, res, typed](StatusOr<InferResponse> response) {
          if (!response.ok()) {
            reactor->Finish(ToGrpcStatus(response.status()));
            return;
          }
          reactor->Finish(ToGrpcStatus(EncodeGrpcInferResponse(*response, typed, res)));
        },
        std::move(context));
    return reactor;
  }

  void SetDraining(bool draining) { draining_.store(draining); }

  void Shutdown(int64_t grace_ms) {
    std::lock_guard<std::mutex> lock(shutdown_mu_);
    if (server_ == nullptr) return;
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
    server_->Wait();
    server_.reset();
  }

  ModelManager& manager_;
  GrpcFrontendOptions options_;
  std::vector<std::string> token_hashes_;  // SHA-256 hex of each token
  std::atomic<bool> draining_{false};
  InferMessageAllocator allocator_;

  std::mutex shutdown_mu_;
  std::unique_ptr<grpc::Server> server_;  // guarded by shutdown_mu_ after Start

 private:
  static grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, const Status& s) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }

  // OK when no token is configured or the call carries one of them.
  Status Authorize(const grpc::CallbackServerContext* ctx) const {
    if (token_hashes_.empty()) return OkStatus();
    const auto& md = ctx->client_metadata();
    auto it = md.find("authorization");
    if (it == md.end()) {
      return UnauthenticatedError("missing token: send metadata 'authorization: Bearer <token>'");
    }
    std::string_view value(it->second.data(), it->second.size());
    constexpr std::string_view kBearer = "bearer ";
    if (value.size() <= kBearer.size() ||
        !EqualsIgnoreCaseAscii(value.substr(0, kBearer.size()), kBearer)) {
      return UnauthenticatedError("the authorization metadata is not 'Bearer <token>'");
    }
    const std::string hash = Sha256Hex(value.substr(kBearer.size()));
    bool match = false;
    for (const std::string& h : token_hashes_) match |= ConstantTimeEquals(hash, h);
    if (!match) return UnauthenticatedError("invalid token");
    return OkStatus();
  }
};

StatusOr<std::unique_ptr<GrpcFrontend>> GrpcFrontend::Start(ModelManager& manager,
                                                           GrpcFrontendOptions options) {
  if (options.max_message_bytes <= 0 || options.max_message_bytes > INT32_MAX) {
    return InvalidArgumentError(
        fmt::format("max_message_bytes: {} is not in 1..2^31-1", options.max_message_bytes),
        "max_message_bytes");
  }
  if (options.address.empty()) return InvalidArgumentError("address: empty", "address");
  auto impl = std::make_unique<Impl>(manager, options);

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.address, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  // gRPC sets SO_REUSEPORT by default, which lets a second server bind a
  // port already in use without an error; a busy port must fail instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(impl.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return UnavailableError(fmt::format("grpc: cannot listen on {}", options.address));
  }
  impl->server_ = std::move(server);
  return std::unique_ptr<GrpcFrontend>(new GrpcFrontend(std::move(impl), port));
}

GrpcFrontend::GrpcFrontend(std::unique_ptr<Impl> impl, int port)
    : impl_(std::move(impl)), port_(port) {}

GrpcFrontend::~GrpcFrontend() { Shutdown(0); }

void GrpcFrontend::Shutdown(int64_t grace_ms) { impl_->Shutdown(grace_ms); }

void GrpcFrontend::SetDraining(bool draining) { impl_->SetDraining(draining); }

}  // namespace lathe::serving
