// Experiment tracking: experiments, runs, params, tags, metric time series
// (issue 5). One service over the store that both the native API
// (/api/v1/projects/{p}/…) and the MLflow REST 2.0 layer call; transport
// details (MLflow error codes, NaN as strings, ms timestamps) stay in the
// handlers. docs/tracking.md is the reference.
//
// Scoping: every experiment belongs to a project (tenancy); a principal
// sees the experiments of the projects it can read and writes those it is
// an editor of. Each project has a default experiment, "Default", created
// when first needed; MLflow's experiment "0" means the caller's project's
// default experiment (the MLflow layer resolves the project: the token's
// scope, else the X-Lathe-Project header, else the project "default").
//
// Semantics follow MLflow (../shared/research/protocols.md §5.8): params
// are immutable (the same value again is a no-op, a different one is
// INVALID_ARGUMENT); tags are last-write-wins; metrics are an append-only
// history of (key, value, timestamp, step); a batch replayed by a retrying
// client stores its points once; deletes are soft (lifecycle "deleted").
// Limits (protocols.md §5.7) are INVALID_ARGUMENT naming the limit.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "store/store.h"
#include "tenancy/tenancy.h"

namespace lathe::tracking {

struct Tag {
  std::string key;
  std::string value;
  friend bool operator==(const Tag&, const Tag&) = default;
};
using Param = Tag;

enum class Lifecycle { kActive, kDeleted };
enum class ViewType { kActiveOnly, kDeletedOnly, kAll };
enum class RunStatus { kRunning, kScheduled, kFinished, kFailed, kKilled };
std::string_view RunStatusName(RunStatus s);  // "RUNNING", …
StatusOr<RunStatus> ParseRunStatus(std::string_view s, std::string_view field = "status");
// A readable name such as "bold-crane-42" from three random numbers: the
// names generated for runs and logged models.
std::string RandomName(uint64_t a, uint64_t b, uint64_t c);

struct Experiment {
  std::string id;          // decimal string, unique across projects ("1", "2", …)
  std::string name;        // unique within its project
  std::string project;     // project name
  std::string artifact_location;  // "mlflow-artifacts:/<id>"
  Lifecycle lifecycle = Lifecycle::kActive;
  int64_t creation_time = 0;      // ms since epoch
  int64_t last_update_time = 0;   // ms
  std::vector<Tag> tags;
};

struct Metric {
  std::string key;
  double value = 0;        // NaN and ±Inf allowed
  int64_t timestamp = 0;   // ms
  int64_t step = 0;
};

struct RunInfo {
  std::string run_id;          // 32 lower-case hex digits
  std::string run_name;
  std::string experiment_id;
  std::string user_id;
  RunStatus status = RunStatus::kRunning;
  int64_t start_time = 0;      // ms
  int64_t end_time = 0;        // ms, 0 = not ended
  std::string artifact_uri;    // <artifact_location>/<run_id>/artifacts
  Lifecycle lifecycle = Lifecycle::kActive;
  std::string job_id;          // the Lathe job that created it, "" = none
};

// A data set a run read (MLflow's log-inputs). Identified within a run by
// (name, digest); the other fields are stored as given.
struct Dataset {
  std::string name;         // ≤ 500 characters, required
  std::string digest;       // ≤ 36 characters, required
  std::string source_type;  // "local", "s3", "code", … required
  std::string source;       // ≤ 65,535 bytes, required (a JSON document in MLflow)
  std::string schema;       // ≤ 1 MiB − 1, optional
  std::string profile;      // ≤ 16 MiB − 1, optional
  friend bool operator==(const Dataset&, const Dataset&) = default;
};

struct DatasetInput {
  Dataset dataset;
  std::vector<Tag> tags;    // e.g. mlflow.data.context = "training"
  friend bool operator==(const DatasetInput&, const DatasetInput&) = default;
};

// A logged model a run produced (MLflow 3's run outputs;
// logged_models.h records them).
struct ModelOutput {
  std::string model_id;
  int64_t step = 0;
  friend bool operator==(const ModelOutput&, const ModelOutput&) = default;
};

struct Run {
  RunInfo info;
  std::vector<Metric> latest_metrics;  // the latest value per key
  std::vector<Param> params;
  std::vector<Tag> tags;
  std::vector<DatasetInput> inputs;    // in the order first logged
  std::vector<ModelOutput> outputs;    // in the order first logged
};

struct Page {
  int64_t max_results = 1000;
  std::string page_token;  // opaque, from the previous page
};

struct RunSearch {
  std::vector<std::string> experiment_ids;
  // MLflow's filter grammar: `metrics.auc > 0.9 and params.lr = '0.01' and
  // tags.team = 'ads' and attributes.status = 'FINISHED'` (search.h).
  std::string filter;
  std::vector<std::string> order_by;  // "metrics.loss DESC", "attributes.start_time"
  ViewType view = ViewType::kActiveOnly;
  Page page;
};

struct RunPage {
  std::vector<Run> runs;
  std::string next_page_token;
};

// History of one metric, optionally downsampled server-side: at most
// `max_points` points, chosen per step bucket so that each bucket's min,
// max and last values survive (charts keep spikes).
struct HistoryRequest {
  std::string run_id;
  std::string key;
  std::optional<int64_t> start_step, end_step;  // inclusive
  int64_t max_points = 0;  // 0 = every point (paged by `page`)
  Page page;
};

struct History {
  std::vector<Metric> points;  // ordered by step, then timestamp
  std::string next_page_token;
  int64_t total_points = 0;    // in the requested step range
  bool downsampled = false;
};

struct CreateRun {
  std::string experiment_id;  // "" or "0" = the project's default experiment
  std::string run_name;       // "" = generated ("bold-crane-42")
  std::string user_id;        // "" = the principal's user name
  int64_t start_time = 0;     // ms; 0 = now
  std::vector<Tag> tags;
  std::string job_id;
};

class TrackingService {
 public:
  TrackingService(store::Store& store, tenancy::TenancyService& tenancy, const Clock& clock);
  ~TrackingService();

  // ---- experiments (project = the project the caller acts in)
  StatusOr<Experiment> CreateExperiment(const tenancy::Principal& p, const std::string& project,
                                        const std::string& name, const std::vector<Tag>& tags);
  StatusOr<Experiment> GetExperiment(const tenancy::Principal& p, const std::string& project,
                                     const std::string& experiment_id);
  StatusOr<Experiment> GetExperimentByName(const tenancy::Principal& p, const std::string& project,
                                           const std::string& name);
  StatusOr<std::vector<Experiment>> SearchExperiments(const tenancy::Principal& p,
                                                      const std::string& project, ViewType view,
                                                      const Page& page, std::string* next_page_token);
  Status RenameExperiment(const tenancy::Principal& p, const std::string& project,
                          const std::string& experiment_id, const std::string& new_name);
  Status SetExperimentLifecycle(const tenancy::Principal& p, const std::string& project,
                                const std::string& experiment_id, Lifecycle lifecycle);
  Status SetExperimentTag(const tenancy::Principal& p, const std::string& project,
                          const std::string& experiment_id, const Tag& tag);
  // NOT_FOUND when the experiment has no tag `key`.
  Status DeleteExperimentTag(const tenancy::Principal& p, const std::string& project,
                             const std::string& experiment_id, const std::string& key);

  // ---- runs
  StatusOr<Run> CreateRun(const tenancy::Principal& p, const std::string& project,
                          const CreateRun& req);
  StatusOr<Run> GetRun(const tenancy::Principal& p, const std::string& project,
                       const std::string& run_id);
  // The run's info when the caller holds at least `min` on the project
  // (kViewer to read, kEditor to write, e.g. its artifacts); for kEditor the
  // run must also be active. NOT_FOUND / PERMISSION_DENIED otherwise.
  StatusOr<RunInfo> AuthorizeRun(const tenancy::Principal& p, const std::string& project,
                                 const std::string& run_id, tenancy::Role min);
  // Fields left unset are not changed.
  StatusOr<RunInfo> UpdateRun(const tenancy::Principal& p, const std::string& project,
                              const std::string& run_id, std::optional<RunStatus> status,
                              std::optional<int64_t> end_time, std::optional<std::string> run_name);
  Status SetRunLifecycle(const tenancy::Principal& p, const std::string& project,
                         const std::string& run_id, Lifecycle lifecycle);
  StatusOr<RunPage> SearchRuns(const tenancy::Principal& p, const std::string& project,
                               const RunSearch& search);

  // ---- logging. LogBatch is atomic: all of it is stored or none.
  // Durable when it returns OK; concurrent calls share one commit (group
  // commit, tracking/group_commit.h). A metric timestamp of 0 means "now".
  // Replays: a batch whose metrics equal, in order, a batch already logged
  // to the run (same keys, values, timestamps and steps, compared by a
  // 128-bit digest) stores no new points; its params and tags are applied
  // again, which is a no-op for the same values.
  Status LogBatch(const tenancy::Principal& p, const std::string& project,
                  const std::string& run_id, const std::vector<Metric>& metrics,
                  const std::vector<Param>& params, const std::vector<Tag>& tags);
  Status DeleteTag(const tenancy::Principal& p, const std::string& project,
                   const std::string& run_id, const std::string& key);
  // Records data sets the run read, atomically. A data set already logged
  // to the run (same name and digest) is a no-op, as in MLflow, so retries
  // are safe. Limits (protocols.md §5.7) are INVALID_ARGUMENT naming the
  // field, e.g. "datasets[2].dataset.digest".
  Status LogInputs(const tenancy::Principal& p, const std::string& project,
                   const std::string& run_id, const std::vector<DatasetInput>& inputs);

  StatusOr<History> GetHistory(const tenancy::Principal& p, const std::string& project,
                               const HistoryRequest& req);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe::tracking
