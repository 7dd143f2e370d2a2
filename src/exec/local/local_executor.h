// The local executor: tasks run on this machine, each under its own
// supervisor process (`lathe shim`, shim.h) that outlives the server.
//
// Layout under `root` (one directory per task, TaskKey::Path()):
//   <root>/<job>/<attempt>/<role>/<index>/
//     launch.json   what to run (written atomically before the shim starts)
//     lock          flock held by the live shim for its whole life
//     status.json   written atomically: running (pid, start) then exited
//     stdout.log, stdout.log.1, stderr.log, stderr.log.1, *.base
// A restarted server finds live shims by their lock and finished ones by
// status.json; a directory whose lock is free and whose status is not
// "exited" is a lost task.
#pragma once

#include <memory>
#include <string>

#include "exec/executor.h"

namespace lathe::exec {

struct LocalExecutorOptions {
  std::string root;       // absolute, e.g. $LATHE_HOME/tasks
  std::string shim_path;  // the lathe binary; run as `<shim_path> shim --dir D`
  // 0: this machine as one node named "local". N > 0: N virtual nodes
  // "local-0" … "local-(N-1)", each with `node_capacity` (for tests of
  // gangs and placement on one machine).
  int virtual_nodes = 0;
  // Zero dimensions are detected (online CPUs × 1000, MemTotal, no GPUs).
  sched::Resources node_capacity;
  // Where task cgroups go (cgroup v2, cpu.max and memory.max from the
  // task's resources): "" = detect (<cgroup2 mount>/lathe when the cpu and
  // memory controllers are available there), "none" = never; otherwise an
  // absolute directory inside the cgroup2 hierarchy. Without one, limits
  // are advisory and TaskStatus::message says why.
  std::string cgroup_base;
  // true: Launch waits (up to about 2 s) until the shim has taken the task
  // over, so a shim that cannot start is an error at once. false: Launch
  // returns once the shim is spawned (about a millisecond) and a reaper
  // thread collects the detaching shim; a shim that dies before taking the
  // task over then shows as kUnknown in Observe (Launch again to retry).
  // The server uses false so that a burst of admissions starts quickly.
  bool wait_for_start = true;
};

// Thread-safe: all task state lives in the task directories, so several
// executor objects (or a restarted server) over one root see the same tasks.
// With wait_for_start, Launch blocks for at most about 2 s (until the shim
// reports); the other methods only for file I/O.

std::unique_ptr<Executor> NewLocalExecutor(const LocalExecutorOptions& options);

}  // namespace lathe::exec
