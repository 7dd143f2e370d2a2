// Running a helper program (tar, …) from a server thread.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace lathe {

// Runs `argv` (argv[0] found through PATH) to completion with a clean
// signal state (the server blocks SIGTERM/SIGINT in every thread and ignores
// SIGPIPE; the child inherits neither), stdin as is, stdout to /dev/null.
// Returns its exit status (128 + signal when killed) and appends up to 4 KiB
// of what it wrote on stderr to `*err`.
StatusOr<int> RunQuietProcess(const std::vector<std::string>& argv, std::string* err);

}  // namespace lathe
