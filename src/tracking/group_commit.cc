#include "tracking/group_commit.h"

namespace lathe::tracking {

Status GroupCommitter::Run(const Work& work) {
  Pending me{&work};
  std::unique_lock<std::mutex> lock(mu_);
  queue_.push_back(&me);
  while (!me.done) {
    if (leading_) {
      cv_.wait(lock);
      continue;
    }
    leading_ = true;
    std::deque<Pending*> group;
    while (!queue_.empty() && group.size() < max_group_) {
      group.push_back(queue_.front());
      queue_.pop_front();
    }
    lock.unlock();
    CommitGroup(group);
    lock.lock();
    ++stats_.groups;
    stats_.works += static_cast<int64_t>(group.size());
    for (Pending* p : group) p->done = true;
    leading_ = false;
    cv_.notify_all();
  }
  return me.result;
}

void GroupCommitter::CommitGroup(std::deque<Pending*>& group) {
  Status group_status = [&]() -> Status {
    ASSIGN_OR_RETURN(std::unique_ptr<store::Tx> tx, store_.Begin(store::TxMode::kWrite));
    for (Pending* p : group) p->result = (*p->work)(*tx);
    return tx->Commit();
  }();
  if (group_status.ok()) return;
  if (group.size() == 1 && group_status.code() != StatusCode::kAborted) {
    // Alone: the error is its own (no neighbour to isolate from).
    Pending* p = group.front();
    if (p->result.ok()) p->result = group_status;
    return;
  }
  for (Pending* p : group) {
    p->result = store::RunInTx(store_, store::TxMode::kWrite, *p->work);
  }
}

GroupCommitter::Stats GroupCommitter::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace lathe::tracking
