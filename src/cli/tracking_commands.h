// `lathe experiment …`, `lathe run …` and `lathe metrics`: clients of the
// native tracking routes (docs/tracking.md "Native API"). Like commands.h,
// each returns a Status that main.cc prints as one line (exit code 1).
//
// The project: --project, else $LATHE_PROJECT, otherwise an error naming
// --project. A RUN argument is a run id (32 hex digits) or a run name; a
// name must match exactly one run of the project.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "cli/commands.h"

namespace lathe::cli {

struct Session;

// ---- experiments
// `view`: active (default), deleted or all.
Status ExperimentList(const ClientOptions& o, const std::string& project, const std::string& view,
                      const ListOptions& l, std::ostream& out);
// `tags` are KEY=VALUE strings.
Status ExperimentCreate(const ClientOptions& o, const std::string& project, const std::string& name,
                        const std::vector<std::string>& tags, std::ostream& out);
// `experiment` is an id or a name. Fields, then its tags.
Status ExperimentShow(const ClientOptions& o, const std::string& project,
                      const std::string& experiment, std::ostream& out);

// ---- runs
struct RunListOptions {
  std::string project;
  std::vector<std::string> experiments;  // ids or names; none = every experiment
  std::string filter;                    // `metrics.auc > 0.9 and params.lr = '0.01'`
  std::vector<std::string> order_by;     // "metrics.loss DESC", "attributes.start_time"
  std::string view;                      // active (default), deleted or all
};
// One page of at most l.limit runs (then a next page token on stderr), or
// every matching run. The table adds a column for each metric, param or
// tag the filter or the order names.
Status RunList(const ClientOptions& o, const RunListOptions& r, const ListOptions& l,
               std::ostream& out);
// Fields, params, tags and the latest value of each metric.
Status RunShow(const ClientOptions& o, const std::string& project, const std::string& run,
               std::ostream& out);
// Params and latest metrics of each run side by side, one row per key
// (only the metrics named in `metrics` when it is not empty).
Status RunCompare(const ClientOptions& o, const std::string& project,
                  const std::vector<std::string>& runs, const std::vector<std::string>& metrics,
                  std::ostream& out);

// A metric's history downsampled by the server to at most `max_points`
// points (1-10,000): a sparkline and min / max / last / count.
Status MetricsShow(const ClientOptions& o, const std::string& project, const std::string& run,
                   const std::string& key, int64_t max_points, std::ostream& out);

// A run's artifacts under `path` ("" = the run's root): a table of PATH,
// TYPE and SIZE, or the API's listing ({root_uri, files}) as JSON/YAML. With
// `recursive`, directories are listed too, depth first (one request each).
Status RunArtifacts(const ClientOptions& o, const std::string& project, const std::string& run,
                    const std::string& path, bool recursive, std::ostream& out);

// ---- shared with model_commands.cc

// --project, else $LATHE_PROJECT; otherwise INVALID_ARGUMENT naming --project.
StatusOr<std::string> ResolveProject(const std::string& flag);
// "/api/v1/projects/<project, percent-encoded>".
std::string ProjectPath(const std::string& project);
// The run `ref` names: GET by id (32 hex digits), else a search by exact
// name, which must match one active run.
StatusOr<JsonValue> FindRun(Session& s, const std::string& project, const std::string& ref);

// `--tag` values "KEY=VALUE" as pairs; INVALID_ARGUMENT naming --tag for
// one without '=' or with an empty key.
StatusOr<std::vector<std::pair<std::string, std::string>>> ParseTagFlags(
    const std::vector<std::string>& tags);

// ---- pure helpers, exposed for tests

// A byte count for people: "512 B", "1.5 KiB", "3.0 MiB", "2.0 GiB".
std::string HumanBytes(uint64_t bytes);

// One block character (▁…█) per value, scaled between the finite minimum
// and maximum: NaN prints as a space, +Inf as █ and -Inf as ▁. Exposed for
// tests.
std::string Sparkline(const std::vector<double>& values);

}  // namespace lathe::cli
