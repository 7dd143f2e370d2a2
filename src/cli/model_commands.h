// `lathe model …`: a client of the native model-registry routes
// (/api/v1/projects/{project}/models…, docs/registry.md). Like commands.h,
// each returns a Status that main.cc prints as one line (exit code 1).
//
// The project: --project, else $LATHE_PROJECT, otherwise an error naming
// --project. A VERSION argument is a positive integer. With -o json / yaml a
// command prints the API's objects as they came (lists as {"items": […]}).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "cli/commands.h"

namespace lathe::cli {

struct ModelListOptions {
  std::string project;
  std::string filter;    // the registry's grammar: "name LIKE 'fraud%'", "tags.team = 'cv'"
  std::vector<std::string> order_by;  // "name", "last_updated_timestamp DESC", …
};
// Registered models: NAME, LATEST (highest version), ALIASES, UPDATED,
// DESCRIPTION. One page with l.limit > 0 (then a next page token on stderr).
Status ModelList(const ClientOptions& o, const ModelListOptions& m, const ListOptions& l,
                 std::ostream& out);

// `tags` are KEY=VALUE strings.
Status ModelCreate(const ClientOptions& o, const std::string& project, const std::string& name,
                   const std::string& description, const std::vector<std::string>& tags,
                   std::ostream& out);

// Fields, tags, aliases and the latest version of each stage.
Status ModelShow(const ClientOptions& o, const std::string& project, const std::string& name,
                 std::ostream& out);

// A model's versions, newest first: VERSION, STAGE, ALIASES, STATUS, RUN,
// SOURCE, CREATED.
Status ModelVersions(const ClientOptions& o, const std::string& project, const std::string& name,
                     const ListOptions& l, std::ostream& out);

// One version: fields, tags and its lineage (run, experiment, job,
// pipeline, code snapshot).
Status ModelVersionShow(const ClientOptions& o, const std::string& project, const std::string& name,
                        const std::string& version, std::ostream& out);

// Points `alias` at `version` (moving it if it exists). With `remove`,
// deletes the alias instead (then `version` must be empty). With neither a
// version nor `remove`, shows the version the alias points at.
Status ModelAlias(const ClientOptions& o, const std::string& project, const std::string& name,
                  const std::string& alias, const std::string& version, bool remove,
                  std::ostream& out);

struct ModelRegisterOptions {
  std::string project;
  std::string name;
  // Where the files are: "runs:/<run_id>/<path>" (resolved to the run's
  // artifact URI + path, and the version linked to the run),
  // "mlflow-artifacts:/…", or any URI (kept as given).
  std::string source;
  std::string run;  // a run id or name to link the version to ("" = none)
  std::string description;
  std::vector<std::string> tags;  // KEY=VALUE, on the version
};
// Creates the registered model if it does not exist, then a version of it;
// prints the version.
Status ModelRegister(const ClientOptions& o, const ModelRegisterOptions& r, std::ostream& out);

// Moves a version to `stage` (None, Staging, Production, Archived; any
// case). With `archive_existing`, the model's other versions in that stage
// become Archived.
Status ModelStage(const ClientOptions& o, const std::string& project, const std::string& name,
                  const std::string& version, const std::string& stage, bool archive_existing,
                  std::ostream& out);

// Deletes a version, or (version "") the model with all its versions.
Status ModelRemove(const ClientOptions& o, const std::string& project, const std::string& name,
                   const std::string& version, std::ostream& out);

// ---- pure helpers, exposed for tests

// "3" → 3. INVALID_ARGUMENT naming `field` unless a positive integer.
StatusOr<int64_t> ParseModelVersion(const std::string& text, const std::string& field = "version");

// Aliases as one cell: a version's ["champion", "prod"] → "champion,prod";
// a model's {"champion": 3, "prod": 2} → "champion=3,prod=2" (sorted by
// alias); absent or empty → "-".
std::string AliasesText(const JsonValue* aliases);

// A version as a table row: version, stage, aliases (AliasesText), status,
// run_id, source, created_at.
JsonValue VersionRow(const JsonValue& version);

// A version's lineage ({run_id, run_name, …}) as KEY/VALUE rows in a fixed
// order; absent or null values are "-". No lineage gives no rows.
std::vector<JsonValue> LineageRows(const JsonValue* lineage);

// "runs:/<run_id>/<path>" split into its run id and path (without leading
// or trailing '/', "" for the run's root). INVALID_ARGUMENT naming `source`
// when the URI has no run id. Does not ask the server whether the run exists.
struct RunsUri {
  std::string run_id;
  std::string path;
};
StatusOr<RunsUri> ParseRunsUri(const std::string& uri);

// True for a URI of the runs:/ scheme.
bool IsRunsUri(const std::string& uri);

// `artifact_uri` + "/" + `path` (no doubled '/'); `artifact_uri` alone when
// `path` is empty.
std::string JoinArtifactUri(const std::string& artifact_uri, const std::string& path);

}  // namespace lathe::cli
