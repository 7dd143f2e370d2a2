// Model registry (issue 5): registered models, their versions, aliases,
// tags, MLflow's deprecated stages, and lineage from a version back to the
// run, job, pipeline run and code snapshot it came from. One service over
// the store that the native API (/api/v1/projects/{p}/models…), the MLflow
// REST 2.0 layer (registered-models/…, model-versions/…) and `lathe model`
// call. docs/registry.md is the reference.
//
// Scoping: a registered model belongs to a project; its name is unique
// within the project. Reading needs viewer, writing editor on the project.
//
// Semantics follow MLflow (../shared/research/protocols.md §5.4, §5.8):
// * Versions are numbered 1, 2, 3, … per model, never reused (deleting
//   version 3 and creating another gives 4). A version is created READY
//   (Lathe copies nothing at registration: `source` is where the files are).
// * Aliases ("champion", "challenger") point at one version each; setting
//   an alias that exists moves it; deleting a version drops its aliases.
//   Deleting an alias or a tag that is not there succeeds (as MLflow does,
//   so a retried delete is harmless); the model or version must exist.
//   Alias names: 1..255 chars of [A-Za-z0-9_-], not "latest" and not of the
//   form v<digits> (MLflow reserves those).
// * Stages: None, Staging, Production, Archived (case-insensitive on input,
//   stored capitalised). transition with archive_existing_versions moves the
//   other versions in that stage to Archived.
// * latest_versions of a model: the highest version in each stage.
// * Tags: last write wins. Limits (§5.7): tag key 250 characters of
//   [A-Za-z0-9_-. /:] (MLflow's key rule), tag value 100,000, alias 255,
//   model name 1..256 characters without '/' or control characters.
// * Deleting a model deletes its versions, tags and aliases (hard delete, as
//   MLflow does).
// * Timestamps: a model's last_updated_timestamp moves on its own edits
//   (description, rename) and when a version is created, deleted or changes
//   stage; a version's on its edits, stage changes and its model's rename.
// Errors: NOT_FOUND for an unknown model/version/alias, ALREADY_EXISTS for a
// duplicate model name, INVALID_ARGUMENT naming the field otherwise; a
// viewer writing is PERMISSION_DENIED, a project the caller cannot see
// NOT_FOUND. Thread-safe; each call is one store transaction (plus a
// read of the source run for CreateVersion, GetLineage, GetDownloadUri).
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
#include "tracking/tracking.h"

namespace lathe::registry {

using tracking::RunInfo;
using tracking::Tag;
using tracking::TrackingService;

enum class ModelVersionStatus { kPendingRegistration, kFailedRegistration, kReady };
std::string_view ModelVersionStatusName(ModelVersionStatus s);  // "READY", …

// "None" | "Staging" | "Production" | "Archived" (any case) → canonical;
// INVALID_ARGUMENT naming `field` otherwise.
StatusOr<std::string> ParseStage(std::string_view stage, std::string_view field = "stage");

struct ModelAlias {
  std::string alias;
  int64_t version = 0;
  friend bool operator==(const ModelAlias&, const ModelAlias&) = default;
};

struct ModelVersion {
  std::string name;             // the registered model
  int64_t version = 0;          // 1, 2, …
  int64_t creation_timestamp = 0;      // ms since epoch
  int64_t last_updated_timestamp = 0;  // ms
  std::string user_id;
  std::string description;
  std::string current_stage = "None";
  // Where the model's files are: an artifact URI such as
  // "mlflow-artifacts:/3/<run_id>/artifacts/model" or "runs:/<run_id>/model".
  std::string source;
  std::string run_id;           // "" = not linked to a run
  std::string run_link;
  ModelVersionStatus status = ModelVersionStatus::kReady;
  std::string status_message;
  std::vector<Tag> tags;
  std::vector<std::string> aliases;  // the aliases pointing at this version
};

struct RegisteredModel {
  std::string name;
  std::string project;
  int64_t creation_timestamp = 0;      // ms
  int64_t last_updated_timestamp = 0;  // ms
  std::string description;
  std::vector<ModelVersion> latest_versions;  // the highest version per stage
  std::vector<Tag> tags;
  std::vector<ModelAlias> aliases;            // ordered by alias
};

struct CreateModelVersion {
  std::string name;
  std::string source;       // required, non-empty
  std::string run_id;       // optional; must be a run of the same project
  std::string run_link;
  std::string description;
  std::vector<Tag> tags;
};

// Where a version came from. Fields the chain does not reach stay empty.
struct Lineage {
  ModelVersion version;
  std::optional<RunInfo> run;     // the source run, when run_id is set and the run exists
  std::string experiment_name;    // of that run
  std::string job_id;             // the run's Lathe job (RunInfo::job_id or tag lathe.job_id)
  std::string job_name;           // tag lathe.job_name
  std::string pipeline_run_id;    // tag lathe.pipeline_run_id (pipelines, issue 7)
  std::string pipeline_step;      // tag lathe.pipeline_step
  std::string code_digest;        // tag lathe.code_digest (the job's code snapshot)
};

// A search over models or versions. `filter` takes MLflow's registry
// grammar, a conjunction (`and`) of:
//   name = 'm' | name != 'm' | name LIKE 'pat%' | name ILIKE 'pat%'
//   tags.<key> = 'v' | tags.<key> != 'v' | tags.<key> LIKE 'v%'
//   (versions only) run_id = '…' | run_id IN ('a','b') | version_number = 3
//   | source_path = '…' | current_stage = 'Production'
// `order_by`: "name", "name DESC", "last_updated_timestamp DESC",
// "creation_timestamp", (versions) "version_number DESC". Default: models by
// name; versions by name, then version descending. Pages are offsets in an
// opaque token. max_results: models 1..1,000, versions 1..200,000.
struct RegistrySearch {
  // Versions only: restrict to this model (exact name; NOT_FOUND when it does
  // not exist). ANDed with `filter`.
  std::string model;
  std::string filter;
  std::vector<std::string> order_by;
  int64_t max_results = 100;
  std::string page_token;
};

class RegistryService {
 public:
  // `tracking` resolves source runs and lineage.
  RegistryService(store::Store& store, tenancy::TenancyService& tenancy, TrackingService& tracking,
                  const Clock& clock);
  ~RegistryService();

  // ---- registered models
  StatusOr<RegisteredModel> CreateModel(const tenancy::Principal& p, const std::string& project,
                                        const std::string& name, const std::string& description,
                                        const std::vector<Tag>& tags);
  StatusOr<RegisteredModel> GetModel(const tenancy::Principal& p, const std::string& project,
                                     const std::string& name);
  StatusOr<RegisteredModel> RenameModel(const tenancy::Principal& p, const std::string& project,
                                        const std::string& name, const std::string& new_name);
  StatusOr<RegisteredModel> UpdateModel(const tenancy::Principal& p, const std::string& project,
                                        const std::string& name, const std::string& description);
  Status DeleteModel(const tenancy::Principal& p, const std::string& project,
                     const std::string& name);
  StatusOr<std::vector<RegisteredModel>> SearchModels(const tenancy::Principal& p,
                                                      const std::string& project,
                                                      const RegistrySearch& search,
                                                      std::string* next_page_token);
  // The latest version in each of `stages` (all stages when empty).
  StatusOr<std::vector<ModelVersion>> GetLatestVersions(const tenancy::Principal& p,
                                                        const std::string& project,
                                                        const std::string& name,
                                                        const std::vector<std::string>& stages);
  Status SetModelTag(const tenancy::Principal& p, const std::string& project,
                     const std::string& name, const Tag& tag);
  // OK when the model has no tag `key`.
  Status DeleteModelTag(const tenancy::Principal& p, const std::string& project,
                        const std::string& name, const std::string& key);

  // ---- aliases
  Status SetAlias(const tenancy::Principal& p, const std::string& project, const std::string& name,
                  const std::string& alias, int64_t version);
  Status DeleteAlias(const tenancy::Principal& p, const std::string& project,
                     const std::string& name, const std::string& alias);
  StatusOr<ModelVersion> GetVersionByAlias(const tenancy::Principal& p, const std::string& project,
                                           const std::string& name, const std::string& alias);

  // ---- versions
  StatusOr<ModelVersion> CreateVersion(const tenancy::Principal& p, const std::string& project,
                                       const CreateModelVersion& req);
  StatusOr<ModelVersion> GetVersion(const tenancy::Principal& p, const std::string& project,
                                    const std::string& name, int64_t version);
  StatusOr<ModelVersion> UpdateVersion(const tenancy::Principal& p, const std::string& project,
                                       const std::string& name, int64_t version,
                                       const std::string& description);
  Status DeleteVersion(const tenancy::Principal& p, const std::string& project,
                       const std::string& name, int64_t version);
  StatusOr<std::vector<ModelVersion>> SearchVersions(const tenancy::Principal& p,
                                                     const std::string& project,
                                                     const RegistrySearch& search,
                                                     std::string* next_page_token);
  StatusOr<ModelVersion> TransitionStage(const tenancy::Principal& p, const std::string& project,
                                         const std::string& name, int64_t version,
                                         const std::string& stage, bool archive_existing);
  Status SetVersionTag(const tenancy::Principal& p, const std::string& project,
                       const std::string& name, int64_t version, const Tag& tag);
  Status DeleteVersionTag(const tenancy::Principal& p, const std::string& project,
                          const std::string& name, int64_t version, const std::string& key);
  StatusOr<Lineage> GetLineage(const tenancy::Principal& p, const std::string& project,
                               const std::string& name, int64_t version);
  // Where a client downloads the version's files (MLflow's
  // get-download-uri): a "runs:/<run_id>/<path>" source resolves to
  // "<the run's artifact_uri>/<path>" when the run exists in the project;
  // any other source is returned as it is.
  StatusOr<std::string> GetDownloadUri(const tenancy::Principal& p, const std::string& project,
                                       const std::string& name, int64_t version);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe::registry
