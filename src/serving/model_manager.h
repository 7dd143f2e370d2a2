// The model manager: which versions of which models are loaded, and which
// one serves a request (TF Serving's Manager over a Source of versions,
// with Triton's repository API and control modes, protocols.md §2-3).
//
//   repository dir ──scan──▶ plan per model ──load (loader × instances.count,
//   (repository.h)            (policy, changes)   warmup) in the background──▶
//   apply: one new Snapshot published atomically ──▶ drain + drop old versions
//
// Request path: Infer/Resolve copy the pointer to an immutable Snapshot (a
// mutex held for the copy only; nothing shared with loading), pick the
// version and submit to its DynamicBatcher. A request that meets a version being swapped out
// (its batcher draining) is routed again on the new snapshot, so a swap
// loses nothing: what is queued on the old version finishes there.
//
// Version choice for a request:
//   * an explicit version number, or a label (config `labels`), must be
//     READY, else NOT_FOUND (unknown) or UNAVAILABLE (known, not ready);
//   * otherwise the default version: the highest READY version that is not
//     the canary target; with `canary {version|label, weight}` and its
//     target READY, weight % of requests go to the target instead. The split
//     is deterministic per request id (a hash of the id, so a retried
//     request sees the same version); requests without an id are split by a
//     per-thread pseudo-random sequence.
//
// Control modes (repository.h):
//   none      Create loads every model; Load/Unload are refused.
//   poll      as none, then a thread rescans every poll_interval_ms: new or
//             changed versions (config.yaml or files of the version
//             directory) load and warm in the background and replace the
//             old atomically; versions no longer selected (or whose
//             directory went) drain and unload; a failed load keeps the old
//             load serving, records the reason, and is not retried until
//             something changes.
//   explicit  Create loads startup_models; Load(model) re-reads config.yaml
//             and (re)loads what changed or failed; Unload(model) drains and
//             unloads every version.
// Thread-safe. Control operations (Create's load, Poll, Load, Unload) run
// one at a time; loads within one run in parallel (load_threads).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/status.h"
#include "serving/backend.h"
#include "serving/batcher.h"
#include "serving/model_config.h"
#include "serving/repository.h"
#include "serving/serving_metrics.h"

namespace lathe::serving {

// Loads instance `index` of the version in `version_dir`.
using InstanceLoader = std::function<StatusOr<std::unique_ptr<ModelInstance>>(
    const ModelConfig& config, const std::string& version_dir, int index)>;

// LoadModelInstance through the backend plugins with `options` (defined in
// plugin_loader.cc; a binary that calls it links the backend host code).
InstanceLoader PluginInstanceLoader(BackendOptions options);

// A version's state in the repository index (Triton's names).
enum class VersionState { kLoading, kReady, kUnavailable, kUnloading };
// "LOADING", "READY", "UNAVAILABLE", "UNLOADING".
std::string_view VersionStateName(VersionState state);

struct ModelIndexEntry {
  std::string name;
  std::string version;  // "" for a model with no version to report
  VersionState state = VersionState::kUnavailable;
  std::string reason;  // why not READY, or what went wrong while it serves
};

// Which version a request asks for: a number, a label, or neither (the
// default version and the canary split).
struct VersionSelector {
  int64_t version = 0;
  std::string label;
};

// A loaded, warmed version. Shared by snapshots; its batcher is drained by
// the manager when the version is replaced or unloaded.
struct ModelVersion {
  std::string model;
  int64_t version = 0;
  std::shared_ptr<const ModelConfig> config;
  std::unique_ptr<DynamicBatcher> batcher;
};

struct ModelManagerOptions {
  std::string repository;
  ModelControlMode mode = ModelControlMode::kNone;
  // explicit mode: the models loaded by Create (`--load-model`).
  std::vector<std::string> startup_models;
  // poll mode: how often the repository is rescanned.
  int64_t poll_interval_ms = 5000;
  // Required: how instances are loaded (PluginInstanceLoader in `lathe
  // serve`, a fake in tests).
  InstanceLoader loader;
  // Loads that run at once within one control operation.
  int load_threads = 4;
  // Null = DefaultServingMetrics().
  ServingMetrics* metrics = nullptr;
  OverloadOptions overload;
  TensorLimits limits;
};

class ModelManager {
 public:
  // Loads what the mode loads at start (see above) and, in poll mode,
  // starts the poll thread. Fails when the repository cannot be listed, the
  // loader is missing, or (explicit mode) a startup model fails to load;
  // other models' failures are in Index().
  static StatusOr<std::unique_ptr<ModelManager>> Create(ModelManagerOptions options);
  // Stops polling, drains and unloads every version.
  ~ModelManager();

  ModelManager(const ModelManager&) = delete;
  ModelManager& operator=(const ModelManager&) = delete;

  // Routes `request` to a version of `model` and submits it to its batcher;
  // `done` is called exactly once (inline when the model or version cannot
  // serve: NOT_FOUND or UNAVAILABLE). Lock-free apart from the batcher's.
  void Infer(std::string_view model, const VersionSelector& selector, InferRequest request,
             InferDone done, RequestContext context = {});

  // The version that would serve a request with this id (for metadata and
  // readiness endpoints, and tests).
  StatusOr<std::shared_ptr<const ModelVersion>> Resolve(std::string_view model,
                                                        const VersionSelector& selector,
                                                        std::string_view request_id = {}) const;

  // explicit mode only (FAILED_PRECONDITION otherwise). Load re-reads the
  // model's directory and config.yaml, loads new or changed versions, retries
  // failed ones, unloads versions the policy no longer selects; returns the
  // first load error (older loads keep serving). NOT_FOUND when the
  // repository has no such model directory. Blocks until done.
  Status Load(const std::string& model);
  // Drains and unloads every version of `model` (NOT_FOUND if not loaded).
  Status Unload(const std::string& model);

  // One rescan now, as the poll thread does (any mode; for tests and a
  // SIGHUP-style reload). Returns the first load error.
  Status Poll();

  // The repository index: one entry per known version, plus one per model
  // with no version (its reason says why). With ready_only, READY only.
  std::vector<ModelIndexEntry> Index(bool ready_only = false) const;
  // Whether the model (version 0 = any of its versions) is READY.
  bool IsReady(std::string_view model, int64_t version = 0) const;
  // The READY versions of `model`, ascending (empty if none).
  std::vector<int64_t> ReadyVersions(std::string_view model) const;
  // Statistics of the READY versions: all models (model ""), one model, or
  // one version. NOT_FOUND when the model or version is not READY.
  StatusOr<std::vector<ModelStatistics>> Statistics(std::string_view model = {},
                                                    int64_t version = 0) const;

  ModelControlMode mode() const { return options_.mode; }

 private:
  struct VersionRecord {
    VersionState state = VersionState::kLoading;
    std::string reason;
    std::shared_ptr<const ModelVersion> serving;  // null unless it serves
    std::string fingerprint;                      // of the serving load (config + files)
    std::string failed_fingerprint;               // of the last failed attempt
  };
  struct ModelRecord {
    std::string path;
    // The config the newest serving load used (labels, canary).
    std::shared_ptr<const ModelConfig> config;
    // Why the repository's current state of the model does not load (bad
    // config.yaml, no versions, unloaded); OK otherwise.
    Status status;
    std::map<int64_t, VersionRecord> versions;
  };
  struct Snapshot;
  struct LoadJob;

  explicit ModelManager(ModelManagerOptions options);

  // Brings the given models (scan entries) to what their entries select;
  // `gone` are models whose directory disappeared. With retry_failed, loads
  // that failed before are tried again even if nothing changed.
  Status Sync(const std::vector<ModelEntry>& entries, const std::vector<std::string>& gone,
              bool retry_failed);
  void RunLoads(std::vector<LoadJob>* jobs);
  // Requires mu_.
  void PublishLocked();
  void PollLoop();

  const ModelManagerOptions options_;
  ServingMetrics& metrics_;

  // The request path's view. A plain mutex held only to copy or replace the
  // pointer (libstdc++ 12's atomic<shared_ptr> spins on a bit ThreadSanitizer
  // cannot see, and is no faster).
  std::shared_ptr<const Snapshot> Current() const {
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    return snapshot_;
  }
  void Store(std::shared_ptr<const Snapshot> next) {
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    snapshot_.swap(next);
  }  // the old snapshot is released here, outside the lock
  mutable std::mutex snapshot_mu_;
  std::shared_ptr<const Snapshot> snapshot_;  // guarded by snapshot_mu_

  std::mutex control_mu_;  // serialises control operations
  mutable std::mutex mu_;
  std::map<std::string, ModelRecord, std::less<>> models_;  // guarded by mu_

  std::mutex poll_mu_;
  std::condition_variable poll_cv_;
  bool stop_ = false;  // guarded by poll_mu_
  std::thread poller_;
};

}  // namespace lathe::serving
