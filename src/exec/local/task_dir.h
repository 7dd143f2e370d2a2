// The on-disk contract between the local executor (server side) and `lathe
// shim` (one per task): file names in a task directory, the launch.json and
// status.json records, atomic writes, the lock probe and cgroup v2
// detection. Internal to src/exec/local; see README.md for the layout and the
// crash windows.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "exec/executor.h"

namespace lathe::exec::local {

inline constexpr char kLaunchFile[] = "launch.json";
inline constexpr char kStatusFile[] = "status.json";
inline constexpr char kLockFile[] = "lock";
inline constexpr char kShimPidFile[] = "shim.pid";
inline constexpr char kShimLogFile[] = "shim.log";
// Held shared by log readers and exclusively by the shim while it rotates,
// so a reader sees a consistent (base, current, .1) triple.
inline constexpr char kLogLockFile[] = "log.lock";

// <root>/.events: where shims drop an empty marker file right after they
// wrote status "running" or "exited", so an executor watching the directory
// (inotify) learns of the change at once. Markers are hints, not state: the
// shim writes one only when the directory exists (an executor created it),
// a failure never affects the task, and the watcher deletes them. Not a
// valid job id, so no task directory can collide with it.
inline constexpr char kEventsDir[] = ".events";

// CLOCK_MONOTONIC in milliseconds, and a sleep that resumes after EINTR.
int64_t MonotonicMs();
void SleepMs(int64_t ms);

// "stdout" / "stderr".
const char* StreamName(LogStream s);
// <dir>/stdout.log, <dir>/stdout.log.1, <dir>/stdout.base.
std::string LogPath(const std::string& dir, LogStream s);
std::string RotatedLogPath(const std::string& dir, LogStream s);
std::string LogBasePath(const std::string& dir, LogStream s);

// True for names the executor or the shim write into a task directory (and
// their temporaries); TaskLaunch::files may not use them.
bool IsReservedFileName(const std::string& name);

// What the shim runs: everything resolved by the executor at Launch (final
// environment, absolute working directory, cgroup decision).
struct LaunchSpec {
  TaskKey key;
  std::string node;
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;  // the complete environment
  std::string working_dir;                 // absolute
  sched::Resources resources;
  std::vector<int> gpu_indices;
  int64_t kill_grace_ms = 10000;
  int64_t log_max_bytes = 64 << 20;
  // Where the shim creates the task's cgroup ("" = limits advisory).
  std::string cgroup_base;
  // Why limits are advisory when cgroup_base is "".
  std::string limits_reason;
  // Where the shim drops its event markers (<root>/.events; "" = none).
  std::string events_dir;
};
std::string EncodeLaunchSpec(const LaunchSpec& spec);
StatusOr<LaunchSpec> DecodeLaunchSpec(std::string_view json);

// status.json. "running" is written (durably) before the task's process
// may exec; "exited" once it is gone.
struct StatusRecord {
  std::string state;  // "running" | "exited"
  int64_t pid = 0;
  int64_t shim_pid = 0;
  int64_t started_at_us = 0;
  int64_t finished_at_us = 0;
  int exit_code = 0;
  int signal = 0;
  bool limits_enforced = false;
  std::string message;
  std::string cgroup;  // the task's cgroup directory, "" if none
};
std::string EncodeStatusRecord(const StatusRecord& r);
StatusOr<StatusRecord> DecodeStatusRecord(std::string_view json);

// Creates an empty, uniquely named marker for `state` in `events_dir`
// ("<pid>-<monotonic ns>-<state>"; not synced: a hint needs no durability).
// NOT_FOUND when the directory does not exist (no executor watches it).
Status DropEventMarker(const std::string& events_dir, std::string_view state);

// Writes `path` atomically: a temporary beside it, fsync (when `durable`),
// rename, fsync of the directory (when `durable`).
Status WriteFileAtomic(const std::string& path, std::string_view data, bool durable = true);
// The whole file; NOT_FOUND when it does not exist.
StatusOr<std::string> ReadFile(const std::string& path);
// The last `max_bytes` of a file, "" when unreadable (for error messages).
std::string ReadFileTail(const std::string& path, int64_t max_bytes);

// An exclusive flock on <dir>/lock, released on destruction.
class TaskLock {
 public:
  TaskLock() = default;
  TaskLock(TaskLock&& o) noexcept : fd_(o.fd_), busy_(o.busy_) { o.fd_ = -1; }
  TaskLock& operator=(TaskLock&& o) noexcept;
  TaskLock(const TaskLock&) = delete;
  TaskLock& operator=(const TaskLock&) = delete;
  ~TaskLock();

  // False when someone else (a live shim) holds the lock.
  bool acquired() const { return !busy_; }

  // Tries once, never blocks; an error only for I/O failures. `create`
  // makes the lock file when missing (the shim does); otherwise a missing
  // file counts as acquired (nobody can hold what does not exist).
  static StatusOr<TaskLock> TryAcquire(const std::string& dir, bool create);

 private:
  TaskLock(int fd, bool busy) : fd_(fd), busy_(busy) {}
  int fd_ = -1;
  bool busy_ = false;
};

// Whether a live shim holds <dir>/lock. Probing takes the lock for an
// instant, so a shim acquiring it retries for a short while.
StatusOr<bool> ShimIsLive(const std::string& dir);

// cgroup v2 support for limits: where task cgroups go, or why limits are
// advisory. `configured`: "" = detect (<cgroup2 mount>/lathe), "none" =
// never, else an absolute directory inside a cgroup2 hierarchy.
struct CgroupSupport {
  std::string base;    // "" = advisory
  std::string reason;  // why advisory
};
CgroupSupport DetectCgroupSupport(const std::string& configured);

// A task's cgroup directory name under the base: key path with '/' -> '.'.
std::string CgroupName(const TaskKey& key);

}  // namespace lathe::exec::local
