// The model repository (Triton's layout, protocols.md §2):
//
//   <repo>/<model>/config.yaml
//   <repo>/<model>/<version>/<model file>     version = 1, 2, 17, ...
//
// A version directory's name is a positive decimal number without a leading
// zero; other entries of a model directory (files, "0", "007", "v2",
// hidden names) are ignored. The model's version policy picks the versions
// to load from those present.
//
// Everything that decides is a pure function of a directory listing and the
// config text (ResolveModel, VersionsInListing, SelectVersions), so it is
// tested without a file system; ScanRepository adds the reads. One model's
// bad config or missing versions is reported in its entry and never stops
// the others from being resolved.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "serving/model_config.h"

namespace lathe::serving {

// When the server reads the repository (the `lathe serve` flag).
//   none      load every model at start, never look again (the default);
//   poll      rescan periodically; a changed model is reloaded and keeps
//             serving its old versions if the new ones fail to load;
//   explicit  load and unload only on request (repository API, --load-model).
enum class ModelControlMode { kNone, kPoll, kExplicit };

std::string_view ModelControlModeName(ModelControlMode mode);
// "none", "poll", "explicit"; INVALID_ARGUMENT naming the choices otherwise.
StatusOr<ModelControlMode> ParseModelControlMode(std::string_view name);

inline constexpr std::string_view kConfigFileName = "config.yaml";
// config.yaml files larger than this are rejected unread.
inline constexpr uint64_t kMaxConfigBytes = 1 << 20;

struct DirEntry {
  std::string name;
  bool is_dir = false;
};

// The version numbers named by the directories of `listing`, ascending.
std::vector<int64_t> VersionsInListing(const std::vector<DirEntry>& listing);

// The version of a directory name: a positive decimal without a leading zero
// that fits int64; nullopt otherwise.
std::optional<int64_t> ParseVersionDir(std::string_view name);

struct VersionSelection {
  std::vector<int64_t> versions;  // to load, ascending
  std::vector<int64_t> missing;   // asked for by a specific policy but absent
};

// Applies `policy` to the `available` versions (ascending, unique).
VersionSelection SelectVersions(const VersionPolicy& policy, const std::vector<int64_t>& available);

// What the repository says about one model.
struct ModelEntry {
  std::string name;
  std::string path;  // <repo>/<name>
  // OK, or why the model cannot be loaded (bad config.yaml, no versions,
  // a label or canary naming a version that is not loaded). When not OK,
  // `config` and the version lists may be empty.
  Status status;
  ModelConfig config;
  std::vector<int64_t> available;  // numeric version directories, ascending
  std::vector<int64_t> versions;   // to load (the policy applied), ascending
  std::vector<std::string> warnings;
};

// Resolves one model from its directory listing and the text of its
// config.yaml (nullopt when the file is absent). Pure.
ModelEntry ResolveModel(std::string_view name, std::string_view path,
                        const std::vector<DirEntry>& listing,
                        const std::optional<std::string>& config_yaml,
                        const TensorLimits& limits = {});

struct RepositoryScan {
  std::vector<ModelEntry> models;  // by name
  // Entries of the root that are not models (bad names), for the log.
  std::vector<std::string> warnings;
};

// Reads `root`: every subdirectory is a model (hidden ones are skipped;
// names that are not valid model names are reported in warnings). Fails only
// when `root` itself cannot be listed. Symbolic links to directories count
// as directories (repositories are often assembled from links).
StatusOr<RepositoryScan> ScanRepository(const std::string& root, const TensorLimits& limits = {});

}  // namespace lathe::serving
