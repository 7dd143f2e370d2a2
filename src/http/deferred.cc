#include "http/deferred.h"

#include <utility>

#include "base/log.h"
#include "http/wire.h"

namespace lathe::http {

bool DeferredState::Complete(Response res) {
  // Declared before the lock: destroyed after it is released.
  std::function<void()> notify;
  std::lock_guard<std::mutex> lock(mu_);
  if (completed_) {
    LOG_ERROR("http: Deferred::Complete called twice (status {}); the second response is dropped",
              res.status);
    return false;
  }
  completed_ = true;
  if (cancelled_.load(std::memory_order_relaxed)) return false;
  response_ = std::move(res);
  has_response_ = true;
  notify = std::move(on_complete_);
  on_complete_ = nullptr;
  // Under the lock: Cancel() (called before the connection's io_context is
  // destroyed) must not return while a post to it is under way.
  if (notify) notify();
  return true;
}

void DeferredState::CompleteIfPending() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (completed_ || cancelled_.load(std::memory_order_relaxed)) return;
  }
  LOG_ERROR("http: a Deferred response was destroyed without Complete(); answering 500");
  Response res;
  res.status = 500;
  res.body = ErrorJson("INTERNAL", "internal error: the response was never completed");
  // No Complete() can race with this: it runs in the last Deferred's
  // destructor, and only a Deferred calls Complete().
  Complete(std::move(res));
}

bool DeferredState::Take(Response* res) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!has_response_) return false;
  *res = std::move(response_);
  response_ = Response();
  has_response_ = false;
  return true;
}

void DeferredState::OnComplete(std::function<void()> on_complete) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_.load(std::memory_order_relaxed)) return;
  if (has_response_) {
    on_complete();
    return;
  }
  on_complete_ = std::move(on_complete);
}

void DeferredState::Cancel() {
  // Destroyed after the lock is released (a dropped response may hold
  // another Deferred or an SseStream).
  Response dropped;
  std::function<void()> notify;
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_.store(true, std::memory_order_release);
  if (has_response_) {
    dropped = std::move(response_);
    has_response_ = false;
  }
  notify = std::move(on_complete_);
  on_complete_ = nullptr;
}

Deferred::Deferred() : state_(std::make_shared<DeferredState>()) {}

Deferred::~Deferred() { state_->CompleteIfPending(); }

bool Deferred::Complete(Response res) { return state_->Complete(std::move(res)); }

}  // namespace lathe::http
