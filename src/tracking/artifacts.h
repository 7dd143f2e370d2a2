// Run artifacts on the local file system (issue 5): files under
//   <root>/<experiment_id>/<run_id>/artifacts/<relative path>
// and, for MLflow 3 logged models (ArtifactRun::model_id),
//   <root>/<experiment_id>/models/<model_id>/artifacts/<relative path>
// where root is $LATHE_HOME/artifacts (config artifacts.root). The MLflow
// proxy (/api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts/<path>)
// and the native API (/api/v1/projects/{p}/runs/{run}/artifacts/<path>)
// both land here after the caller's access to the run was checked
// (TrackingService::AuthorizeRun). docs/tracking.md#artifacts.
//
// Nothing is ever buffered whole: uploads arrive as a file the HTTP server
// spooled (http::Request::body_file) in spool_dir(), which is on the same
// file system as the root, and are renamed into place; downloads are served
// from the file (http::Response::body_file).
//
// Safety. Every relative path goes through CleanPath: no empty path, no
// absolute path, no "." or ".." segment, no empty segment ("a//b"), no
// backslash, no NUL or other control character, at most max_path_bytes.
// Paths reach CleanPath already percent-decoded once, so "%2e%2e" is ".."
// and is refused; a literal '%' is an ordinary character. Below the root no
// symbolic link is followed: every directory and the final file are opened
// with O_NOFOLLOW relative to their parent (openat), so a link planted in the
// tree cannot lead reads or writes outside it. Directory entries that are
// links are not listed; Delete removes a link itself, never its target.
// Residual race: ResolveFile checks the file and returns a path that the HTTP
// server opens afterwards, so a link swapped into the tree between the two
// by someone with write access to the directory itself is followed; the API
// never creates links.
//
// Durability: Put fsyncs the file, renames it into place and fsyncs the
// directory, so an acknowledged upload survives a crash. Replacing an
// existing file is atomic (readers see the old or the new file, never a mix).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace lathe::tracking {

inline constexpr size_t kMaxArtifactPathBytes = 1024;

struct ArtifactOptions {
  std::string root;                               // required; created if missing
  uint64_t max_file_bytes = 5ull << 30;           // one upload (config artifacts.max_file_bytes)
  size_t max_path_bytes = kMaxArtifactPathBytes;  // a relative path
};

struct FileInfo {
  std::string path;  // relative to the run's artifact root ("model/MLmodel")
  bool is_dir = false;
  uint64_t file_size = 0;  // 0 for directories
};

// The run an artifact path belongs to, or (model_id set) the MLflow 3
// logged model: its files live in <root>/<experiment_id>/models/<model_id>/
// artifacts, beside the experiment's runs (run ids are 32 hex digits, so no
// run directory is named "models"), and run_id is not used.
struct ArtifactRun {
  std::string experiment_id;
  std::string run_id;
  std::string model_id;  // "" = the run's artifacts
};

// All methods are thread-safe: the store keeps no state besides its options;
// the file system orders concurrent writers (the last rename wins).
class ArtifactStore {
 public:
  explicit ArtifactStore(ArtifactOptions options);

  // Creates root and spool_dir (mode 0700) and makes root absolute; removes
  // spooled files older than an hour (left by a crash). Call once before
  // use. INTERNAL when a directory cannot be created.
  Status Init();

  const ArtifactOptions& options() const { return options_; }
  // Where the HTTP server spools upload bodies (<root>/.spool).
  std::string spool_dir() const;

  // Validates `path` (see Safety above; also: valid UTF-8, segments of at
  // most 255 bytes) and returns it normalised (a single trailing '/'
  // dropped). INVALID_ARGUMENT naming `field` and the offending segment or
  // byte otherwise. With allow_empty, "" (or "/") means the run's root.
  static StatusOr<std::string> CleanPath(std::string_view path, std::string_view field,
                                         bool allow_empty = false,
                                         size_t max_bytes = kMaxArtifactPathBytes);

  // Moves `spooled_file` (a file in spool_dir()) to `path` in the run,
  // creating parent directories. INVALID_ARGUMENT when a parent is an
  // existing file or the target is a directory; FAILED_PRECONDITION when a
  // component is a symbolic link. The spooled file is consumed on success.
  // A file over max_file_bytes is INVALID_ARGUMENT (the HTTP server refuses
  // larger bodies with 413 before they are spooled). Thread-safe; concurrent
  // Puts of one path leave one of the files whole.
  Status Put(const ArtifactRun& run, std::string_view path, const std::string& spooled_file);
  // As Put, for a body the HTTP server read into memory: writes `data` to a
  // file in spool_dir() first.
  Status PutBytes(const ArtifactRun& run, std::string_view path, std::string_view data);

  // Opens `path` for reading; returns a path the HTTP server can open (for
  // Response::body_file) after checking, component by component without
  // following links, that it is a regular file under the run. NOT_FOUND when
  // absent or a directory.
  // FAILED_PRECONDITION when a component is a symbolic link.
  StatusOr<std::string> ResolveFile(const ArtifactRun& run, std::string_view path) const;

  // Lists the directory `path` ("" = the run's root): its direct entries,
  // ordered by name, each FileInfo::path being `path`/<name> (MLflow's
  // convention: relative to the run's artifact root). An absent run
  // directory lists empty; `path` naming a file lists empty too (as MLflow
  // does). Symbolic links, special files and names CleanPath would refuse
  // are not listed; a link on the way to `path` is FAILED_PRECONDITION.
  // Not paged: one call reads the whole directory.
  StatusOr<std::vector<FileInfo>> List(const ArtifactRun& run, std::string_view path) const;

  // Deletes a file, or a directory with everything under it; "" deletes all
  // of the run's artifacts. NOT_FOUND when absent. Symbolic links in the way
  // above `path` are refused (FAILED_PRECONDITION); links inside a deleted
  // directory are unlinked, their targets untouched.
  Status Delete(const ArtifactRun& run, std::string_view path);

 private:
  ArtifactOptions options_;
};

}  // namespace lathe::tracking
