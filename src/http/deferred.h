// Deferred (asynchronous) responses. A handler that cannot answer at once
// (the model server hands an inference request to a dynamic batcher) creates
// a Deferred, puts it in Response::deferred and returns: the I/O thread goes
// on serving other connections. Later any thread calls Complete() once and
// the server writes that response on the connection's own I/O thread.
//
//   router.Add(Method::kPost, "/v2/models/{m}/infer", [&](Request& req, Response& res) {
//     auto d = std::make_shared<http::Deferred>();
//     res.deferred = d;
//     batcher.Enqueue(std::move(req.body), d);  // copies what it needs: req dies on return
//   });
//   // on the batcher's thread, for each request of a finished batch:
//   if (!d->cancelled()) d->Complete(std::move(response));
//
// The Request dies when the handler returns (and a spooled body_file is
// deleted unless renamed): the producer copies or moves what it needs.
// The server applies no timeout while it waits, so the producer owns the
// deadline (complete with 503/504 rather than never). Like std::promise, a
// Deferred destroyed without Complete() answers for itself: 500
// {"error":{"code":"INTERNAL",..}} (logged), so a request lost by its
// producer never leaves its client waiting.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>

#include "http/message.h"

namespace lathe::http {

// The state a Deferred shares with the connection that waits for it. Only
// server.cc uses it; a producer sees Deferred. All methods are thread-safe.
class DeferredState {
 public:
  // The producer's answer (Deferred::Complete). False, and `res` dropped,
  // when the state was cancelled or already completed.
  bool Complete(Response res);
  // Deferred's destructor: completes with 500 unless completed before.
  void CompleteIfPending();
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // For the server. Moves the completed response to *res; false when it has
  // not arrived (or was taken already).
  bool Take(Response* res);
  // For the server: `on_complete` runs once when the response is there (at
  // once, on this thread, if it already is; else on the completing thread).
  // It runs under this state's lock so that Cancel() is a barrier: once
  // Cancel() has returned it never runs again. It must be cheap (post to the
  // connection's I/O thread) and must not call back into this state.
  void OnComplete(std::function<void()> on_complete);
  // For the server: the connection is closed (client gone, shutdown).
  // cancelled() becomes true, a response not yet taken is dropped,
  // on_complete is dropped, and later Complete() calls return false.
  void Cancel();

 private:
  mutable std::mutex mu_;
  bool completed_ = false;              // guarded by mu_: Complete() was called
  bool has_response_ = false;           // guarded by mu_: response_ not yet taken
  Response response_;                   // guarded by mu_
  std::function<void()> on_complete_;   // guarded by mu_
  std::atomic<bool> cancelled_{false};  // written under mu_
};

class Deferred {
 public:
  Deferred();
  ~Deferred();  // answers 500 when Complete() was never called (see above)
  Deferred(const Deferred&) = delete;
  Deferred& operator=(const Deferred&) = delete;

  // Hands over the response; call exactly once, from any thread. It is
  // serialized and written like a handler's response (one buffer,
  // keep-alive, HEAD; body_file and sse work too; a `deferred` inside it is
  // answered 500) on the connection's I/O thread: Complete() itself only
  // moves `res` and posts, so it is cheap and never blocks on the network.
  // Returns true when the connection took the response: it is written
  // unless the connection closes first. Returns false, dropping `res`, when
  // the client has gone or the connection was closed by a server shutdown
  // (see cancelled()), or when Complete() was already called (a programmer
  // error; logged). Never throws.
  bool Complete(Response res);
  // True once the connection is gone (client disconnected, server shut
  // down): the producer may drop the queued work; Complete() returns false.
  // Thread-safe and cheap (one atomic load): fine to poll per batch.
  bool cancelled() const { return state_->cancelled(); }

  // For the server (server.cc).
  const std::shared_ptr<DeferredState>& state() const { return state_; }

 private:
  std::shared_ptr<DeferredState> state_;
};

}  // namespace lathe::http
