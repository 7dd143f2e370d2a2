// Executors run the tasks the scheduler placed (DESIGN.md "Executors are
// plugins behind one interface"): inventory, launch, kill, observe, logs.
// The job controller (src/control) is the only caller. Implementations:
// local/ (a `lathe shim` per task on this machine). Every method is
// idempotent per TaskKey, so a controller that crashed mid-way repeats it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "sched/model.h"

namespace lathe::exec {

// One task of one attempt of a job. Attempts count from 0; a gang restart
// starts a new attempt, so the same (role, index) never runs twice under one key.
struct TaskKey {
  std::string job_id;
  int attempt = 0;
  std::string role;
  int index = 0;

  // "JOBID/ATTEMPT/ROLE/INDEX": unique, usable as a relative directory path.
  std::string Path() const;
  friend bool operator==(const TaskKey&, const TaskKey&) = default;
  friend auto operator<=>(const TaskKey&, const TaskKey&) = default;
};

struct TaskLaunch {
  TaskKey key;
  std::string node;               // a node name from Inventory()
  std::vector<std::string> argv;  // argv[0] resolved through PATH
  std::map<std::string, std::string> env;  // added to a minimal base env
                                            // (PATH, HOME, LANG, TMPDIR)
  std::string working_dir;        // absolute; "" = the task's own directory
  sched::Resources resources;     // limits where the executor can enforce them
  std::vector<int> gpu_indices;   // CUDA_VISIBLE_DEVICES
  // Files written into the task directory before start, name -> contents;
  // `file_env` sets env var -> the file's absolute path.
  std::map<std::string, std::string> files;
  std::map<std::string, std::string> file_env;
  int64_t kill_grace_ms = 10000;  // SIGTERM, then SIGKILL after this
  int64_t log_max_bytes = 64 << 20;  // per stream; rotated once (.1)
};

enum class TaskState {
  kStarting,  // launched, process not confirmed yet
  kRunning,
  kExited,    // exit_code / signal valid
  kLost,      // the supervisor vanished without recording an exit status
  kUnknown,   // never launched under this key (no trace of it)
};
std::string_view TaskStateName(TaskState s);

struct TaskStatus {
  TaskKey key;
  TaskState state = TaskState::kUnknown;
  int exit_code = 0;  // kExited: the exit code, or 128 + signal
  int signal = 0;     // kExited by a signal: its number, else 0
  int64_t pid = 0;
  int64_t started_at_us = 0;
  int64_t finished_at_us = 0;
  // Whether cpu/memory limits are enforced (cgroup v2) or advisory, and why.
  bool limits_enforced = false;
  std::string message;  // "limits advisory: cgroup v2 memory controller not available"
};

enum class LogStream { kStdout, kStderr };

struct LogChunk {
  std::string data;
  int64_t next_offset = 0;  // pass back to continue
  bool eof = false;         // no more data now (the task may still write)
};

class Executor {
 public:
  virtual ~Executor() = default;
  virtual std::string_view name() const = 0;

  // The nodes tasks can run on (capacity, labels, GPUs) for the scheduler.
  virtual StatusOr<std::vector<sched::Node>> Inventory() = 0;

  // Starts the task unless a task with this key was already launched
  // (then OK and nothing happens): a task is never started twice.
  virtual Status Launch(const TaskLaunch& launch) = 0;

  // Asks the task to stop: SIGTERM to its process group, SIGKILL after the
  // grace period given at launch. OK if it already ended or never started.
  virtual Status Kill(const TaskKey& key) = 0;

  // The task's current state (never blocks on the task).
  virtual StatusOr<TaskStatus> Observe(const TaskKey& key) = 0;

  // Every task this executor knows of under `job_id` (all attempts), for
  // reattaching after a restart.
  virtual StatusOr<std::vector<TaskStatus>> ObserveJob(const std::string& job_id) = 0;

  // Reads a task's log from `offset` (offsets count from the first byte the
  // task ever wrote; rotated-away bytes read as skipped: next_offset jumps).
  // At most `max_bytes`.
  virtual StatusOr<LogChunk> ReadLog(const TaskKey& key, LogStream stream, int64_t offset,
                                     int64_t max_bytes) = 0;

  // Deletes everything kept for the job's tasks (logs, directories). Only
  // for tasks that have ended; a live task is FAILED_PRECONDITION.
  virtual Status Remove(const std::string& job_id) = 0;

  // Sets the function the executor calls, from a thread of its own, soon
  // after one of its tasks started or exited, so the controller can run a
  // pass at once instead of at its next periodic one. A hint only: calls
  // are coalesced (one call may stand for many changes), carry no detail and
  // may be missing (the caller keeps its periodic pass; Observe stays the
  // truth). `on_event` must be quick and must not call back into this
  // method. An empty function clears it; once this returns, the previous
  // function is neither running nor called again. The default never calls
  // anything (executors without notifications).
  virtual void SetTaskEventCallback(std::function<void()> /*on_event*/) {}
};

}  // namespace lathe::exec
