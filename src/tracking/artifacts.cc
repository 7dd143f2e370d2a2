#include "tracking/artifacts.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <utility>

#include <fmt/core.h>

namespace lathe::tracking {
namespace {

constexpr size_t kMaxSegmentBytes = 255;  // NAME_MAX
constexpr std::string_view kSpoolName = ".spool";
constexpr std::string_view kRunArtifactsDir = "artifacts";
constexpr std::string_view kModelsDir = "models";
constexpr int64_t kStaleSpoolSeconds = 3600;

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Errors of the file system itself (not of the request): the message names
// the path relative to the run, never the server's directories.
Status IoError(std::string_view what, std::string_view rel, int err) {
  return InternalError(fmt::format("artifact store: {} \"{}\": {}", what, rel, std::strerror(err)));
}

// Length of the UTF-8 sequence starting at s[i], or 0 when invalid
// (overlong forms, surrogates and code points past U+10FFFF included).
size_t Utf8Length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// Why `segment` may not be a path segment, or "" when it may.
std::string SegmentProblem(std::string_view segment) {
  if (segment.empty()) return "an empty segment (\"//\")";
  if (segment == "." || segment == "..") return fmt::format("a \"{}\" segment", segment);
  if (segment.size() > kMaxSegmentBytes) {
    return fmt::format("a segment longer than {} bytes", kMaxSegmentBytes);
  }
  for (size_t i = 0; i < segment.size();) {
    const unsigned char c = static_cast<unsigned char>(segment[i]);
    if (c == '\\') return "a backslash";
    if (c < 0x20 || c == 0x7f) return fmt::format("the control character 0x{:02x}", c);
    const size_t n = Utf8Length(segment, i);
    if (n == 0) return "bytes that are not UTF-8";
    i += n;
  }
  return "";
}

// Experiment and run ids come from the store; they must still be one plain
// segment each, since they name directories.
Status CheckRun(const ArtifactRun& run) {
  const std::string& owner = run.model_id.empty() ? run.run_id : run.model_id;
  for (std::string_view id : {std::string_view(run.experiment_id), std::string_view(owner)}) {
    bool ok = !id.empty() && id.size() <= 64;
    for (char c : id) {
      ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '-' || c == '_');
    }
    if (!ok) return InvalidArgumentError(fmt::format("artifact store: bad run id \"{}\"", id));
  }
  return OkStatus();
}

std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty()) return out;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    out.push_back(path.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

// The components from the root down to the run's artifact directory.
std::vector<std::string> RunComponents(const ArtifactRun& run) {
  if (!run.model_id.empty()) {
    return {run.experiment_id, std::string(kModelsDir), run.model_id, std::string(kRunArtifactsDir)};
  }
  return {run.experiment_id, run.run_id, std::string(kRunArtifactsDir)};
}

// How one directory entry is: absent, a link, a directory, a regular file or
// something else; with its size for a file.
enum class Kind { kAbsent, kLink, kDir, kFile, kOther };

StatusOr<Kind> KindAt(int dir, const std::string& name, std::string_view rel,
                      uint64_t* size = nullptr) {
  struct stat st;
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Kind::kAbsent;
    return IoError("stat", rel, errno);
  }
  if (size != nullptr) *size = static_cast<uint64_t>(st.st_size);
  if (S_ISLNK(st.st_mode)) return Kind::kLink;
  if (S_ISDIR(st.st_mode)) return Kind::kDir;
  if (S_ISREG(st.st_mode)) return Kind::kFile;
  return Kind::kOther;
}

Status LinkRefused(std::string_view rel) {
  return FailedPreconditionError(
      fmt::format("path: \"{}\" is a symbolic link; artifacts never follow links", rel), "path");
}

// The path of component i of `names` for messages: relative to the run's
// artifacts (the first `first` components are the run's own directories).
std::string RelName(const std::vector<std::string>& names, size_t first, size_t i) {
  if (i < first) return "the run's artifact directory";
  std::string out;
  for (size_t k = first; k <= i; ++k) {
    if (!out.empty()) out += '/';
    out += names[k];
  }
  return fmt::format("\"{}\"", out);
}

// Opens `names` one below the other from `dir`, never following a link:
// each with openat(O_DIRECTORY | O_NOFOLLOW) relative to its parent. With
// `create`, missing directories are made (and their parent synced, so an
// acknowledged Put's directories survive a crash). The first `first` names
// are the run's own directories. NOT_FOUND naming `rel` when one is absent
// (without `create`); FAILED_PRECONDITION when one is a link;
// INVALID_ARGUMENT when one is not a directory.
StatusOr<Fd> OpenDirs(int dir, const std::vector<std::string>& names, size_t first, bool create,
                      std::string_view rel) {
  Fd current;
  int parent = dir;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    if (create) {
      if (::mkdirat(parent, name.c_str(), 0755) == 0) {
        if (::fsync(parent) != 0) return IoError("sync the directory of", rel, errno);
      } else if (errno != EEXIST) {
        return IoError("create a directory for", rel, errno);
      }
    }
    int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      auto absent = [&] {
        return NotFoundError(rel.empty() ? std::string("the run has no artifacts")
                                         : fmt::format("artifact \"{}\" does not exist", rel));
      };
      if (err == ENOENT) return absent();
      if (err != ELOOP && err != ENOTDIR) return IoError("open a directory of", rel, err);
      ASSIGN_OR_RETURN(Kind kind, KindAt(parent, name, rel));
      if (kind == Kind::kAbsent) return absent();
      if (kind == Kind::kLink) {
        return FailedPreconditionError(
            fmt::format("path: {} is a symbolic link; artifacts never follow links",
                        RelName(names, first, i)),
            "path");
      }
      return InvalidArgumentError(
          fmt::format("path: {} is a file, not a directory", RelName(names, first, i)), "path");
    }
    current = Fd(fd);
    parent = current.get();
  }
  if (!current.valid()) {
    int fd = ::fcntl(dir, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return IoError("open a directory of", rel, errno);
    current = Fd(fd);
  }
  return current;
}

// Removes the directory `name` in `parent` and everything in it, never
// following a link (links are unlinked themselves).
Status RemoveTree(int parent, const std::string& name, const std::string& rel) {
  int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP || errno == ENOTDIR) {
      if (::unlinkat(parent, name.c_str(), 0) != 0 && errno != ENOENT) {
        return IoError("delete", rel, errno);
      }
      return OkStatus();
    }
    if (errno == ENOENT) return OkStatus();
    return IoError("open directory", rel, errno);
  }
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    const int err = errno;
    ::close(fd);
    return IoError("read directory", rel, err);
  }
  std::vector<std::pair<std::string, bool>> entries;  // name, is a directory
  while (dirent* e = ::readdir(d)) {
    std::string child = e->d_name;
    if (child == "." || child == "..") continue;
    struct stat st;
    if (::fstatat(fd, child.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      const int err = errno;
      ::closedir(d);
      return IoError("stat", rel + "/" + child, err);
    }
    entries.emplace_back(std::move(child), S_ISDIR(st.st_mode));
  }
  Status st = OkStatus();
  for (const auto& [child, is_dir] : entries) {
    const std::string child_rel = rel.empty() ? child : rel + "/" + child;
    if (is_dir) {
      st = RemoveTree(fd, child, child_rel);
    } else if (::unlinkat(fd, child.c_str(), 0) != 0 && errno != ENOENT) {
      st = IoError("delete", child_rel, errno);
    }
    if (!st.ok()) break;
  }
  ::closedir(d);  // closes fd
  if (!st.ok()) return st;
  if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return IoError("delete directory", rel, errno);
  }
  return OkStatus();
}

}  // namespace

ArtifactStore::ArtifactStore(ArtifactOptions options) : options_(std::move(options)) {}

std::string ArtifactStore::spool_dir() const {
  return options_.root + "/" + std::string(kSpoolName);
}

Status ArtifactStore::Init() {
  if (options_.root.empty())
    return InvalidArgumentError("artifacts.root: must not be empty", "artifacts.root");
  std::error_code ec;
  std::filesystem::path root = std::filesystem::absolute(options_.root, ec);
  if (ec) return InternalError(fmt::format("artifacts.root {}: {}", options_.root, ec.message()));
  options_.root = root.lexically_normal().string();
  while (options_.root.size() > 1 && options_.root.back() == '/') options_.root.pop_back();
  std::filesystem::create_directories(options_.root, ec);
  if (ec) {
    return InternalError(
        fmt::format("cannot create artifacts.root {}: {}", options_.root, ec.message()));
  }
  const std::string spool = spool_dir();
  if (::mkdir(spool.c_str(), 0700) != 0 && errno != EEXIST) {
    return InternalError(fmt::format("cannot create {}: {}", spool, std::strerror(errno)));
  }
  struct stat st;
  if (::lstat(spool.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return InternalError(fmt::format("{} is not a directory", spool));
  }
  ::chmod(spool.c_str(), 0700);
  // Bodies left by a crash. An hour's grace, in case another server shares
  // the root and is spooling right now.
  const time_t now = ::time(nullptr);
  for (const auto& entry : std::filesystem::directory_iterator(spool, ec)) {
    struct stat fst;
    if (::lstat(entry.path().c_str(), &fst) == 0 && S_ISREG(fst.st_mode) &&
        now - fst.st_mtime > kStaleSpoolSeconds) {
      ::unlink(entry.path().c_str());
    }
  }
  return OkStatus();
}

StatusOr<std::string> ArtifactStore::CleanPath(std::string_view path, std::string_view field,
                                               bool allow_empty, size_t max_bytes) {
  const std::string f(field);
  if (path.size() > max_bytes) {
    return InvalidArgumentError(
        fmt::format("{}: {} bytes long, over the limit of {}", f, path.size(), max_bytes), f);
  }
  if (!path.empty() && path.front() == '/') {
    if (path == "/" && allow_empty) return std::string();
    return InvalidArgumentError(
        fmt::format("{}: \"{}\" is absolute; give a path relative to the run's artifacts", f, path),
        f);
  }
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.empty()) {
    if (allow_empty) return std::string();
    return InvalidArgumentError(fmt::format("{}: must not be empty", f), f);
  }
  for (std::string_view segment : Split(path)) {
    std::string why = SegmentProblem(segment);
    if (!why.empty()) {
      // Control characters and broken UTF-8 would garble the message itself.
      std::string shown;
      for (char c : path) {
        const unsigned char u = static_cast<unsigned char>(c);
        shown += (u < 0x20 || u == 0x7f) ? fmt::format("\\x{:02x}", u) : std::string(1, c);
      }
      if (why == "bytes that are not UTF-8") shown = "…";
      return InvalidArgumentError(fmt::format("{}: \"{}\" has {}", f, shown, why), f);
    }
  }
  return std::string(path);
}

Status ArtifactStore::PutBytes(const ArtifactRun& run, std::string_view path,
                               std::string_view data) {
  std::string tmp = spool_dir() + "/put-XXXXXX";
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return IoError("create spool file for", path, errno);
  Fd file(fd);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return IoError("write spool file for", path, err);
    }
    off += static_cast<size_t>(n);
  }
  file.Reset();
  Status st = Put(run, path, tmp);
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

Status ArtifactStore::Put(const ArtifactRun& run, std::string_view path,
                          const std::string& spooled_file) {
  ASSIGN_OR_RETURN(std::string rel, CleanPath(path, "path", false, options_.max_path_bytes));
  RETURN_IF_ERROR(CheckRun(run));

  // The body: a regular file, synced before it becomes visible.
  {
    Fd src(::open(spooled_file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!src.valid()) return IoError("open the uploaded body of", rel, errno);
    struct stat st;
    if (::fstat(src.get(), &st) != 0) return IoError("stat the uploaded body of", rel, errno);
    if (!S_ISREG(st.st_mode)) {
      return InternalError(fmt::format("artifact store: the body of \"{}\" is not a file", rel));
    }
    if (static_cast<uint64_t>(st.st_size) > options_.max_file_bytes) {
      return InvalidArgumentError(
          fmt::format(
              "artifact \"{}\" is {} bytes, over the limit of {} (artifacts.max_file_bytes)", rel,
              st.st_size, options_.max_file_bytes),
          "body");
    }
    if (::fsync(src.get()) != 0) return IoError("sync the uploaded body of", rel, errno);
  }

  std::vector<std::string_view> segments = Split(rel);
  const std::string name(segments.back());
  std::vector<std::string> names = RunComponents(run);
  const size_t first = names.size();
  for (size_t i = 0; i + 1 < segments.size(); ++i) names.emplace_back(segments[i]);

  Fd root(::open(options_.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return IoError("open the artifact root for", rel, errno);
  ASSIGN_OR_RETURN(Fd dir, OpenDirs(root.get(), names, first, /*create=*/true, rel));
  ASSIGN_OR_RETURN(Kind kind, KindAt(dir.get(), name, rel));
  switch (kind) {
    case Kind::kLink:
      return LinkRefused(rel);
    case Kind::kDir:
      return InvalidArgumentError(fmt::format("path: \"{}\" is a directory", rel), "path");
    case Kind::kOther:
      return InvalidArgumentError(fmt::format("path: \"{}\" is not a regular file", rel), "path");
    case Kind::kAbsent:
    case Kind::kFile:
      break;
  }
  // rename(2) replaces the name atomically and never follows a link at the
  // target, so a link planted between the check above and here is replaced,
  // not written through.
  if (::renameat(AT_FDCWD, spooled_file.c_str(), dir.get(), name.c_str()) != 0) {
    const int err = errno;
    if (err == EISDIR || err == ENOTEMPTY || err == EEXIST) {
      return InvalidArgumentError(fmt::format("path: \"{}\" is a directory", rel), "path");
    }
    return IoError(err == EXDEV ? "move (spool_dir is on another file system)" : "move", rel, err);
  }
  if (::fsync(dir.get()) != 0) return IoError("sync the directory of", rel, errno);
  return OkStatus();
}

StatusOr<std::string> ArtifactStore::ResolveFile(const ArtifactRun& run,
                                                 std::string_view path) const {
  ASSIGN_OR_RETURN(std::string rel, CleanPath(path, "path", false, options_.max_path_bytes));
  RETURN_IF_ERROR(CheckRun(run));
  std::vector<std::string_view> segments = Split(rel);
  const std::string name(segments.back());
  std::vector<std::string> names = RunComponents(run);
  const size_t first = names.size();
  for (size_t i = 0; i + 1 < segments.size(); ++i) names.emplace_back(segments[i]);
  auto absent = [&] { return NotFoundError(fmt::format("artifact \"{}\" does not exist", rel)); };

  Fd root(::open(options_.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return IoError("open the artifact root for", rel, errno);
  auto dir = OpenDirs(root.get(), names, first, /*create=*/false, rel);
  if (!dir.ok()) {
    // A file where a directory would be: the artifact does not exist.
    if (dir.status().code() == StatusCode::kInvalidArgument) return absent();
    return dir.status();
  }
  ASSIGN_OR_RETURN(Kind kind, KindAt(dir->get(), name, rel));
  switch (kind) {
    case Kind::kLink:
      return LinkRefused(rel);
    case Kind::kDir:
      return NotFoundError(fmt::format("artifact \"{}\" is a directory, not a file", rel));
    case Kind::kAbsent:
    case Kind::kOther:
      return absent();
    case Kind::kFile:
      break;
  }
  std::string file = options_.root;
  for (const std::string& name : RunComponents(run)) file += "/" + name;
  return file + "/" + std::string(rel);
}

StatusOr<std::vector<FileInfo>> ArtifactStore::List(const ArtifactRun& run,
                                                    std::string_view path) const {
  ASSIGN_OR_RETURN(std::string rel, CleanPath(path, "path", true, options_.max_path_bytes));
  RETURN_IF_ERROR(CheckRun(run));
  std::vector<std::string> names = RunComponents(run);
  const size_t first = names.size();
  for (std::string_view s : Split(rel)) names.emplace_back(s);

  std::vector<FileInfo> out;
  Fd root(::open(options_.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return IoError("open the artifact root for", rel, errno);
  auto dir = OpenDirs(root.get(), names, first, /*create=*/false, rel);
  if (!dir.ok()) {
    // Absent, or a file: MLflow lists nothing.
    StatusCode code = dir.status().code();
    if (code == StatusCode::kNotFound || code == StatusCode::kInvalidArgument) return out;
    return dir.status();
  }
  const int fd = dir->get();
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) return IoError("read the directory", rel, errno);
  dir->Release();  // closedir closes it
  Status st = OkStatus();
  while (dirent* e = ::readdir(d)) {
    std::string child = e->d_name;
    if (child == "." || child == ".." || !SegmentProblem(child).empty()) continue;
    uint64_t size = 0;
    auto kind = KindAt(fd, child, rel, &size);
    if (!kind.ok()) {
      st = kind.status();
      break;
    }
    if (*kind != Kind::kDir && *kind != Kind::kFile) continue;
    FileInfo info;
    info.path = rel.empty() ? child : rel + "/" + child;
    info.is_dir = *kind == Kind::kDir;
    info.file_size = info.is_dir ? 0 : size;
    out.push_back(std::move(info));
  }
  ::closedir(d);
  if (!st.ok()) return st;
  std::sort(out.begin(), out.end(),
            [](const FileInfo& a, const FileInfo& b) { return a.path < b.path; });
  return out;
}

Status ArtifactStore::Delete(const ArtifactRun& run, std::string_view path) {
  ASSIGN_OR_RETURN(std::string rel, CleanPath(path, "path", true, options_.max_path_bytes));
  RETURN_IF_ERROR(CheckRun(run));
  std::vector<std::string> names = RunComponents(run);
  const size_t first = names.size();
  for (std::string_view s : Split(rel)) names.emplace_back(s);
  const std::string name = names.back();
  names.pop_back();
  auto absent = [&] {
    return NotFoundError(rel.empty() ? std::string("the run has no artifacts")
                                     : fmt::format("artifact \"{}\" does not exist", rel));
  };

  Fd root(::open(options_.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return IoError("open the artifact root for", rel, errno);
  auto dir = OpenDirs(root.get(), names, first, /*create=*/false, rel);
  if (!dir.ok()) {
    if (dir.status().code() == StatusCode::kInvalidArgument) return absent();
    return dir.status();
  }
  ASSIGN_OR_RETURN(Kind kind, KindAt(dir->get(), name, rel));
  switch (kind) {
    case Kind::kAbsent:
      return absent();
    case Kind::kDir:
      RETURN_IF_ERROR(RemoveTree(dir->get(), name, rel));
      break;
    case Kind::kLink:
    case Kind::kFile:
    case Kind::kOther:
      if (::unlinkat(dir->get(), name.c_str(), 0) != 0) {
        if (errno == ENOENT) return absent();
        return IoError("delete", rel, errno);
      }
      break;
  }
  if (::fsync(dir->get()) != 0) return IoError("sync the directory of", rel, errno);
  return OkStatus();
}

}  // namespace lathe::tracking
