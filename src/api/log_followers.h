// The producer threads behind followed logs (GET …/jobs/{job}/logs?follow=true,
// job_handlers.cc): one thread per server-sent-event stream. A thread ends
// when its stream closes (client gone, server shutdown) or its task's log is
// drained; finished threads are joined on the next Start(), the rest by the
// destructor, which first wakes every Sleep(). Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "base/status.h"

namespace lathe::api {

class LogFollowers {
 public:
  static constexpr size_t kMaxStreams = 512;

  LogFollowers() = default;
  LogFollowers(const LogFollowers&) = delete;
  LogFollowers& operator=(const LogFollowers&) = delete;
  // Makes Sleep() return false and joins every thread.
  ~LogFollowers();

  // Runs `fn` on a new thread. RESOURCE_EXHAUSTED with kMaxStreams running,
  // UNAVAILABLE once the destructor has begun.
  Status Start(std::function<void()> fn);

  // Sleeps up to `ms`; false (at once) once the destructor has begun.
  bool Sleep(int64_t ms);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                    // guarded by mu_
  uint64_t next_id_ = 0;                     // guarded by mu_
  std::map<uint64_t, std::thread> threads_;  // guarded by mu_
  std::vector<uint64_t> done_;               // guarded by mu_: ended, not joined
};

}  // namespace lathe::api
