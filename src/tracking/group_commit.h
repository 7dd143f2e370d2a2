// Group commit: concurrent writers share one write transaction, so one
// fsync acknowledges many of them (SQLite has one writer and a durable
// commit costs about one fdatasync, ~0.2 ms here and up to 4 ms on a
// throttled disk).
//
// Leader/follower, no thread of its own: a caller queues its Work; if no
// group is being committed it becomes the leader, takes everything queued
// (up to `max_group` works), runs them one after another in one kWrite
// transaction, commits, and wakes the owners. Callers that arrive meanwhile
// wait and form the next group, whose leader is one of them. A lone caller
// pays no hand-off: it leads a group of one.
//
// A Work must check before it writes: if it returns an error, it must have
// written nothing (a failed statement poisons the transaction, which then
// fails to commit — see below). When the shared transaction fails (a
// poisoned statement, a failed commit), every work of the group is run
// again alone in its own transaction (store::RunInTx, which also retries
// ABORTED), so one bad work cannot fail its neighbours. Works may thus run
// twice and must only touch the store.
//
// Each caller returns only after the commit that holds its writes (durable
// per store.h), or with its own error. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

#include "base/status.h"
#include "store/store.h"

namespace lathe::tracking {

class GroupCommitter {
 public:
  using Work = std::function<Status(store::Tx&)>;

  explicit GroupCommitter(store::Store& store, size_t max_group = 64)
      : store_(store), max_group_(max_group) {}

  // Runs `work` in a (shared) write transaction; returns its Status once
  // the transaction committed, or the error of the work or the commit.
  Status Run(const Work& work);

  struct Stats {
    int64_t groups = 0;  // transactions committed for groups
    int64_t works = 0;   // works that went through them
  };
  Stats stats() const;

 private:
  struct Pending {
    const Work* work;
    Status result;
    bool done = false;
  };
  void CommitGroup(std::deque<Pending*>& group);

  store::Store& store_;
  const size_t max_group_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending*> queue_;  // guarded by mu_
  bool leading_ = false;        // guarded by mu_: a group is being committed
  Stats stats_;                 // guarded by mu_
};

}  // namespace lathe::tracking
