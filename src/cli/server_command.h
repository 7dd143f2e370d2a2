// `lathe server`: the control plane process.
#pragma once

#include "cli/server_config.h"

namespace lathe::cli {

// Runs the server until SIGTERM or SIGINT, then shuts down gracefully
// (stop accepting, finish in-flight requests, exit). Returns the process
// exit code. Writes <home>/server.url once listening and removes it on exit.
int RunServer(const ServerConfig& config);

}  // namespace lathe::cli
