// The HTTP front end of `lathe serve`: KServe V2 REST (JSON and the binary
// tensor extension), TF Serving REST, Triton's repository, statistics and
// config extensions, and Prometheus /metrics, over a ModelManager
// (protocols.md §1, §4; routes and status codes in docs/serving.md).
//
//   http::Server I/O thread                      batcher thread
//   ───────────────────────                      ──────────────
//   auth → decode (v2_codec / tfserving_codec)
//        → ModelManager::Infer(request, done) ──▶ validate, queue, batch,
//   return Response::deferred                     Execute, done(response)
//                                                   → encode → Deferred::Complete
//
// Inference never blocks an I/O thread: the handler decodes, submits and
// returns a Deferred; the batcher's `done` encodes the answer and completes
// it. A request whose client has gone is dropped before it executes (the
// Deferred's cancelled() is the RequestContext hook). Repository load and
// unload, which block for the whole load, run on the front end's own
// control thread and also answer through a Deferred.
//
// Status codes (V2HttpStatus, one mapping for V2 and TF Serving routes):
// 400 bad input (naming the tensor or field), 401 missing or wrong token,
// 403 management without any token configured, 404 unknown model, version or
// label, 429 queue full or shed by overload control (with Retry-After),
// 503 model not ready / unloading / server draining, 504 deadline exceeded,
// 500 backend failure. Error bodies are {"error": "<message>"}.
//
// Auth: bearer tokens (`Authorization: Bearer <token>`). With no token
// configured, inference, metadata, statistics and /metrics are open and
// repository load/unload answer 403; with tokens, every route but the health
// probes needs one. Tokens are compared by their SHA-256 in constant time.
//
// Thread-safe once registered: handlers run concurrently on I/O threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/metrics.h"
#include "base/status.h"
#include "http/message.h"
#include "http/router.h"
#include "serving/model_manager.h"
#include "serving/tensor.h"

namespace lathe::serving {

struct HttpFrontendOptions {
  // Accepted bearer tokens; empty = no auth (and no management).
  std::vector<std::string> tokens;
  // Rendered on /metrics; null = DefaultRegistry().
  MetricsRegistry* metrics = nullptr;
  TensorLimits limits;
  // Server metadata (GET /v2).
  std::string server_name = "lathe";
  std::string server_version;
  // The Retry-After header (seconds) of 429 answers.
  int retry_after_s = 1;
};

// Reads bearer tokens from a file: one per line; blank lines and lines
// starting with '#' are skipped, surrounding whitespace trimmed. Fails when
// the file cannot be read or holds no token.
StatusOr<std::vector<std::string>> ReadTokenFile(const std::string& path);

class HttpFrontend {
 public:
  // `manager` must outlive the front end. Starts the control thread.
  HttpFrontend(ModelManager& manager, HttpFrontendOptions options);
  // Finishes queued control operations and joins the control thread.
  ~HttpFrontend();

  HttpFrontend(const HttpFrontend&) = delete;
  HttpFrontend& operator=(const HttpFrontend&) = delete;

  // Adds every route (listed in docs/serving.md) to `router`. Call once,
  // before the server starts; the router must not outlive the front end.
  void Register(http::Router& router);

  // While draining, /v2/health/ready answers 503 (the server is about to
  // stop); everything else still works. Thread-safe.
  void SetDraining(bool draining) { draining_.store(draining); }

 private:
  // What a handler learned from the path: model and version selector.
  struct Target {
    std::string model;
    VersionSelector selector;
  };

  // Checks the bearer token: OK when none is configured or the request
  // carries one of them; UNAUTHENTICATED otherwise.
  Status Authorize(const http::Request& req) const;
  // For management routes: PERMISSION_DENIED without any configured token.
  Status AuthorizeManagement(const http::Request& req) const;
  bool TokenMatches(std::string_view token) const;

  // Writes `status` as {"error": ...} with its HTTP status (and Retry-After
  // for 429, WWW-Authenticate for 401).
  void WriteError(http::Response& res, const Status& status) const;

  void ServerMetadata(http::Response& res) const;
  void ModelMetadata(const Target& t, http::Response& res) const;
  void ModelReady(const Target& t, http::Response& res) const;
  void V2Infer(const Target& t, http::Request& req, http::Response& res);
  void ModelConfigJson(const Target& t, http::Response& res) const;
  void Stats(std::string_view model, int64_t version, http::Response& res) const;
  void RepositoryIndex(const http::Request& req, http::Response& res) const;
  void RepositoryControl(bool load, const std::string& model, const http::Request& req,
                         http::Response& res);
  // TF Serving: GET status / metadata and POST :predict, parsed from the
  // raw rest of the path after /v1/models/.
  void TfGet(const http::Request& req, http::Response& res) const;
  void TfPost(http::Request& req, http::Response& res);
  void TfStatus(const Target& t, http::Response& res) const;
  void TfMetadata(const Target& t, http::Response& res) const;
  void TfPredict(const Target& t, http::Request& req, http::Response& res);

  // Runs `fn` on the control thread.
  void Control(std::function<void()> fn);
  void ControlLoop();

  ModelManager& manager_;
  const HttpFrontendOptions options_;
  MetricsRegistry& metrics_;
  std::vector<std::string> token_hashes_;  // SHA-256 hex of each token
  std::atomic<bool> draining_{false};

  std::mutex control_mu_;
  std::condition_variable control_cv_;
  std::deque<std::function<void()>> control_queue_;  // guarded by control_mu_
  bool stopping_ = false;                            // guarded by control_mu_
  std::thread control_thread_;
};

}  // namespace lathe::serving
