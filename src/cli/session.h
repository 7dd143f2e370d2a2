// What the client commands share (commands.cc, job_commands.cc,
// pipeline_commands.cc): a
// connection to the server with the chosen output format, and small helpers
// for request paths and bodies. Internal to src/cli.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace lathe::cli {

struct Session {
  std::unique_ptr<ApiClient> api;
  OutputFormat format;
};

// Resolves server and token (commands.h: flags, environment, saved login)
// and the output format.
StatusOr<Session> Connect(const ClientOptions& o);

// The value of environment variable `name`, or nullptr when unset or empty.
const char* Env(const char* name);

// A JSON document written by `fn`.
std::string JsonBody(const std::function<void(JsonWriter&)>& fn);

// `s` percent-encoded as one path segment.
std::string Seg(const std::string& s);

// A YAML or JSON mapping from a file ("-": standard input); errors name -f.
StatusOr<JsonValue> ReadSpecFile(const std::string& path);

// `tar -czf - -C dir .` of a --code directory: the snapshot to upload.
StatusOr<std::string> TarDirectory(const std::string& dir);

// Prints one page (l.limit > 0) or every page of a list endpoint; a next
// page token goes to stderr.
Status PrintListing(Session& s, const std::string& path, const ListOptions& l,
                    const std::vector<Column>& columns, std::ostream& out);

}  // namespace lathe::cli
