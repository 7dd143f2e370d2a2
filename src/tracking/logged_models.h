// MLflow 3 logged models: a model logged to an experiment, with its own id
// ("m-" + 32 hex digits), files, tags and params, optionally produced by a
// run (source_run_id) and recorded as that run's output. What
// `mlflow.<flavor>.log_model(...)` of an MLflow 3 client creates, and what
// `mlflow.register_model("models:/<model_id>", …)` and loading read
// (docs/mlflow.md "Logged models").
//
//   Create (PENDING) ── files PUT to artifact_location ──▶ Finalize (READY | FAILED)
//   LogOutputs(run, [model_id, step]) links a run to the models it produced.
//
// Semantics follow MLflow's tracking store: a model's artifact_location is
// <experiment artifact_location>/models/<model_id>/artifacts; tags are
// last-write-wins; params are immutable (the same value again is a no-op, a
// different one is INVALID_ARGUMENT); deletes are soft (a deleted model is
// NOT_FOUND everywhere, and is left out of searches). Authorization is that
// of runs: viewer reads, editor writes, everything scoped to the project.
// Unknown or deleted models are NOT_FOUND ("Logged model with ID '…' not
// found."). All methods are thread-safe (state lives in the store).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "store/store.h"
#include "tenancy/tenancy.h"
#include "tracking/tracking.h"

namespace lathe::tracking {

enum class LoggedModelStatus { kPending, kReady, kFailed };
// MLflow's enum names: "LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY",
// "LOGGED_MODEL_UPLOAD_FAILED".
std::string_view LoggedModelStatusName(LoggedModelStatus s);
// Accepts the enum names, their numbers (1, 2, 3) and the short names
// MLflow's Python entity prints (PENDING, READY, FAILED).
StatusOr<LoggedModelStatus> ParseLoggedModelStatus(std::string_view s,
                                                   std::string_view field = "status");

struct LoggedModel {
  std::string model_id;           // "m-" + 32 lower-case hex digits
  std::string experiment_id;      // the real id (never "0")
  std::string name;
  std::string artifact_location;  // mlflow-artifacts:/<exp>/models/<model_id>/artifacts
  LoggedModelStatus status = LoggedModelStatus::kPending;
  std::string status_message;
  std::string model_type;         // "" = unset
  std::string source_run_id;      // "" = not produced by a run
  std::string user_id;            // who created it
  Lifecycle lifecycle = Lifecycle::kActive;
  int64_t creation_time = 0;      // ms
  int64_t last_update_time = 0;   // ms
  std::vector<Tag> tags;          // by key
  std::vector<Param> params;      // by key
};

struct CreateLoggedModel {
  std::string experiment_id;  // "" or "0" = the project's default experiment
  std::string name;           // "" = generated ("bold-crane-42")
  std::string model_type;
  std::string source_run_id;  // "" or a run of the project
  std::vector<Param> params;
  std::vector<Tag> tags;
};

struct LoggedModelOrder {
  // An attribute (name, model_id, model_type, status, source_run_id,
  // creation_timestamp, last_updated_timestamp) or params.k / tags.k /
  // metrics.k, as in the filter.
  std::string field;
  bool ascending = true;
};

struct LoggedModelSearch {
  std::vector<std::string> experiment_ids;  // required, non-empty ("0" = default)
  // MLflow's filter grammar (search.h) over the attributes above (numbers:
  // creation_timestamp / creation_time, last_updated_timestamp), params.k
  // and tags.k; metrics.k clauses match nothing (no metrics are linked to
  // logged models here). status compares with READY / PENDING / FAILED
  // (or the LOGGED_MODEL_… names).
  std::string filter;
  std::vector<LoggedModelOrder> order_by;  // empty = creation_timestamp descending
  Page page;                               // max_results 1–50,000
};

struct LoggedModelPage {
  std::vector<LoggedModel> models;
  std::string next_page_token;
};

class LoggedModelService {
 public:
  // `tracking` resolves experiments and runs; all must outlive this.
  LoggedModelService(store::Store& store, tenancy::TenancyService& tenancy,
                     TrackingService& tracking, const Clock& clock);
  ~LoggedModelService();

  // A new PENDING model in an active experiment (editor). Limits as
  // MLflow's: ≤ 100 params and ≤ 100 tags per call, keys ≤ 250, param
  // values ≤ 6,000, tag values ≤ 8,000; a name ≤ 500 characters without
  // '/' or ':'. A source_run_id outside the project is INVALID_ARGUMENT.
  StatusOr<LoggedModel> Create(const tenancy::Principal& p, const std::string& project,
                               const CreateLoggedModel& req);
  StatusOr<LoggedModel> Get(const tenancy::Principal& p, const std::string& project,
                            const std::string& model_id);
  // As Get, when the caller holds at least `min` in the project (kViewer to
  // read the model's files, kEditor to write them); NOT_FOUND /
  // PERMISSION_DENIED otherwise.
  StatusOr<LoggedModel> Authorize(const tenancy::Principal& p, const std::string& project,
                                  const std::string& model_id, tenancy::Role min);
  // Sets the final status, kReady or kFailed (others INVALID_ARGUMENT).
  // Finalizing again overwrites it (replays are safe).
  StatusOr<LoggedModel> Finalize(const tenancy::Principal& p, const std::string& project,
                                 const std::string& model_id, LoggedModelStatus status);
  // Soft delete; deleting a deleted model again is OK (a retried request).
  Status Delete(const tenancy::Principal& p, const std::string& project,
                const std::string& model_id);
  // Upserts tags atomically (limits as in Create).
  Status SetTags(const tenancy::Principal& p, const std::string& project,
                 const std::string& model_id, const std::vector<Tag>& tags);
  // NOT_FOUND when the model has no tag `key`.
  Status DeleteTag(const tenancy::Principal& p, const std::string& project,
                   const std::string& model_id, const std::string& key);
  // Adds params atomically (limits as in Create; immutable as run params).
  Status LogParams(const tenancy::Principal& p, const std::string& project,
                   const std::string& model_id, const std::vector<Param>& params);
  // Reads every active model of the experiments, then filters, orders and
  // pages in memory: cost linear in the experiments' models per page.
  StatusOr<LoggedModelPage> Search(const tenancy::Principal& p, const std::string& project,
                                   const LoggedModelSearch& search);

  // Records models an active run produced (MLflow's runs/outputs), at most
  // 1,000 per call; each must be a model of the project (else NOT_FOUND).
  // An output already recorded (same model and step) is a no-op.
  Status LogOutputs(const tenancy::Principal& p, const std::string& project,
                    const std::string& run_id, const std::vector<ModelOutput>& outputs);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe::tracking
