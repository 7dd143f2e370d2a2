// The gRPC front end of `lathe serve`: the KServe V2 / Open Inference
// Protocol service `inference.GRPCInferenceService` (protocols.md §1.5;
// protocols/grpc_predict_v2.proto) over a ModelManager.
//
//   gRPC callback thread                          batcher thread
//   ────────────────────                          ──────────────
//   auth → DecodeGrpcInferRequest (grpc_codec)
//        → ModelManager::Infer(request, done) ──▶ validate, queue, batch,
//   return the reactor (thread released)          Execute, done(response)
//                                                   → EncodeGrpcInferResponse
//                                                   → reactor->Finish
//
// ModelInfer never holds a thread while its batch waits: the handler
// decodes, submits and returns a ServerUnaryReactor, which the batcher's
// `done` finishes. Raw input tensors are views into the request message (a
// MessageAllocator keeps it alive as long as a tensor refers to it), so
// they are not copied before the batcher concatenates them.
//
// Requests. Inputs come as typed `contents` or as `raw_input_contents`
// (one entry per input), never both; FP16/BF16 only raw; element counts
// and byte lengths are checked against the shapes (TensorLimits) before
// anything is allocated. Request parameters: `priority`, `timeout` (µs) as
// on REST; the client's gRPC deadline also bounds the request's queue time
// (the lower of the two); a call cancelled by its client (or past its
// deadline) is dropped before it executes.
// Responses. Outputs go in `raw_output_contents` (the default, as Triton
// does). A request asks for typed `contents` instead with the request
// parameter `binary_data_output: false`, or `binary_data: false` on any
// requested output; the protocol does not allow mixing, so then every output
// is typed, except when one is FP16/BF16, which forces raw for all.
//
// Status codes (ToGrpcStatus in grpc_codec.h; lathe::StatusCode is gRPC's
// numbering): INVALID_ARGUMENT for bad input, naming the tensor
// (`inputs[0] "x": ...`) or parameter; NOT_FOUND for an unknown model,
// version or label; RESOURCE_EXHAUSTED for a full queue or a request shed by
// overload control; DEADLINE_EXCEEDED when its deadline passed while queued;
// UNAVAILABLE for a model that is not ready or a draining version;
// INTERNAL for backend failures; UNAUTHENTICATED for a missing or wrong
// token.
//
// Auth: with tokens configured (the same list the HTTP front end takes,
// ReadTokenFile in http_frontend.h), every RPC but the health ones
// (ServerLive, ServerReady, ModelReady) needs metadata `authorization:
// Bearer <token>`. Tokens are compared by SHA-256 in constant time.
//
// Thread-safe. The ModelManager must outlive the front end.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "serving/model_manager.h"
#include "serving/tensor.h"

namespace lathe::serving {

struct GrpcFrontendOptions {
  // host:port to listen on; port 0 = any free port (see GrpcFrontend::port).
  std::string address = "127.0.0.1:8001";
  // Accepted bearer tokens; empty = no auth.
  std::vector<std::string> tokens;
  // Largest request and response message, in bytes.
  int64_t max_message_bytes = int64_t{64} << 20;
  TensorLimits limits;
  // ServerMetadata.
  std::string server_name = "lathe";
  std::string server_version;  // "" = this build's version
};

class GrpcFrontend {
 public:
  // Listens on options.address and starts serving. UNAVAILABLE when the
  // address cannot be bound, INVALID_ARGUMENT for a bad option.
  static StatusOr<std::unique_ptr<GrpcFrontend>> Start(ModelManager& manager,
                                                       GrpcFrontendOptions options);
  // Shutdown(0) unless already shut down.
  ~GrpcFrontend();

  GrpcFrontend(const GrpcFrontend&) = delete;
  GrpcFrontend& operator=(const GrpcFrontend&) = delete;

  // The port the server listens on (the one chosen for port 0).
  int port() const { return port_; }

  // Stops accepting calls, lets calls in flight finish for up to
  // `grace_ms`, then cancels the rest; returns when every call has ended
  // (an inference already queued is answered by its batcher first).
  // Idempotent; thread-safe.
  void Shutdown(int64_t grace_ms);

  // While draining, ServerReady answers false (the server is about to
  // stop); everything else still works. Thread-safe.
  void SetDraining(bool draining);

  // Implementation (grpc_frontend.cc), kept out of this header so only the
  // front end's own files see the generated protobuf and gRPC headers.
  class Impl;

 private:
  GrpcFrontend(std::unique_ptr<Impl> impl, int port);

  std::unique_ptr<Impl> impl_;
  const int port_;
};

}  // namespace lathe::serving
