// `lathe shim --dir TASKDIR`: the supervisor of one local task (see
// local_executor.h for the directory layout). It detaches from the server
// (new session), holds TASKDIR/lock, starts the task in its own process
// group with TASKDIR/launch.json's argv/env/cwd, copies stdout/stderr into
// size-rotated logs, forwards SIGTERM (then SIGKILL after the grace period)
// and writes the exit status atomically. Returns the process exit code.
#pragma once

#include <string>

namespace lathe::exec {

int RunShim(const std::string& task_dir);

}  // namespace lathe::exec
