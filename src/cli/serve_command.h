// `lathe serve`: the model server. Serves a model repository over KServe V2
// and TF Serving REST (serving/http_frontend.h), and KServe V2 gRPC when asked
// (serving/grpc_frontend.h), until SIGTERM or SIGINT.
// Usage and routes: docs/serving.md#lathe-serve.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace lathe::cli {

struct ServeOptions {
  std::string repository;                   // required: the model repository
  std::string http = "127.0.0.1:8000";      // ADDRESS:PORT of the REST front end (port 0 = any)
  std::string grpc;                         // ADDRESS:PORT of the gRPC front end; "" = none
  std::string model_control_mode = "none";  // none | poll | explicit
  std::vector<std::string> load_models;     // explicit mode: loaded at start
  int64_t poll_interval_ms = 5000;          // poll mode
  int64_t http_threads = 0;                 // 0 = one per core (at least 2)
  int64_t max_body_mib = 64;                // largest request body
  std::string backend_dir;                  // "" = backends/ beside the binary
  std::string token_file;                   // bearer tokens, one per line
  std::string url_file;                     // written with http://HOST:PORT once listening
  std::string log_level = "info";
};

// Checks the options (each error names its flag). Pure.
Status ValidateServeOptions(const ServeOptions& options);

// Splits "HOST:PORT" (PORT 0-65535) naming `flag` in errors.
Status ParseHostPort(const std::string& text, const std::string& flag, std::string* host,
                     int* port);

// Loads the repository, serves until SIGTERM or SIGINT, then drains: the
// readiness probe turns 503, the listener closes, requests in flight finish
// (up to 10 s), every model version drains and unloads. Returns the process
// exit code (0 after a clean drain, 1 when it could not start).
int RunServe(const ServeOptions& options);

}  // namespace lathe::cli
