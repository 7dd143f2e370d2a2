#include "api/log_followers.h"

#include <chrono>
#include <utility>

#include <fmt/core.h>

namespace lathe::api {

LogFollowers::~LogFollowers() {
  std::map<uint64_t, std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& [id, t] : threads) t.join();
}

Status LogFollowers::Start(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  // A thread in done_ has left fn and only waits to be joined.
  for (uint64_t id : done_) {
    auto it = threads_.find(id);
    if (it != threads_.end()) {
      it->second.join();
      threads_.erase(it);
    }
  }
  done_.clear();
  if (stopping_) return UnavailableError("server is shutting down");
  if (threads_.size() >= kMaxStreams) {
    return ResourceExhaustedError(
        fmt::format("{} logs are being followed already; read without follow", kMaxStreams));
  }
  const uint64_t id = next_id_++;
  threads_.emplace(id, std::thread([this, id, fn = std::move(fn)] {
                     fn();
                     std::lock_guard<std::mutex> done_lock(mu_);
                     done_.push_back(id);
                   }));
  return OkStatus();
}

bool LogFollowers::Sleep(int64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
  return !stopping_;
}

}  // namespace lathe::api
