#include "exec/local/task_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/core.h>

#include "base/json.h"

namespace lathe::exec::local {

int64_t MonotonicMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void SleepMs(int64_t ms) {
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>((ms % 1000) * 1000000)};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

Status ErrnoError(std::string_view what, const std::string& path, int err) {
  return InternalError(fmt::format("{} {}: {}", what, path, ErrnoText(err)));
}

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return InternalError(fmt::format("write: {}", ErrnoText(errno)));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void WriteResources(JsonWriter& w, const sched::Resources& r) {
  w.BeginObject()
      .Field("cpu_milli", r.cpu_milli)
      .Field("memory_mib", r.memory_mib)
      .Field("gpu_milli", r.gpu_milli)
      .EndObject();
}

void WriteStringMap(JsonWriter& w, const std::map<std::string, std::string>& m) {
  w.BeginObject();
  for (const auto& [k, v] : m) w.Field(k, v);
  w.EndObject();
}

Status ReadInt(ObjectReader& r, std::string_view key, int* out) {
  int64_t v = *out;
  RETURN_IF_ERROR(r.Int(key, &v));
  *out = static_cast<int>(v);
  return OkStatus();
}

}  // namespace

const char* StreamName(LogStream s) { return s == LogStream::kStdout ? "stdout" : "stderr"; }

std::string LogPath(const std::string& dir, LogStream s) {
  return fmt::format("{}/{}.log", dir, StreamName(s));
}
std::string RotatedLogPath(const std::string& dir, LogStream s) {
  return fmt::format("{}/{}.log.1", dir, StreamName(s));
}
std::string LogBasePath(const std::string& dir, LogStream s) {
  return fmt::format("{}/{}.base", dir, StreamName(s));
}

bool IsReservedFileName(const std::string& name) {
  static const std::set<std::string> kReserved = {
      kLaunchFile,  kStatusFile,    kLockFile,     kShimPidFile, kShimLogFile,   kLogLockFile,
      "stdout.log", "stdout.log.1", "stdout.base", "stderr.log", "stderr.log.1", "stderr.base"};
  if (kReserved.count(name) > 0) return true;
  // Temporaries of atomic writes: "<name>.tmp.<pid>.<n>".
  return name.find(".tmp.") != std::string::npos;
}

std::string EncodeLaunchSpec(const LaunchSpec& spec) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("key")
      .BeginObject()
      .Field("job_id", spec.key.job_id)
      .Field("attempt", spec.key.attempt)
      .Field("role", spec.key.role)
      .Field("index", spec.key.index)
      .EndObject();
  w.Field("node", spec.node);
  w.Key("argv").BeginArray();
  for (const auto& a : spec.argv) w.String(a);
  w.EndArray();
  w.Key("env");
  WriteStringMap(w, spec.env);
  w.Field("working_dir", spec.working_dir);
  w.Key("resources");
  WriteResources(w, spec.resources);
  w.Key("gpu_indices").BeginArray();
  for (int g : spec.gpu_indices) w.Int(g);
  w.EndArray();
  w.Field("kill_grace_ms", spec.kill_grace_ms);
  w.Field("log_max_bytes", spec.log_max_bytes);
  w.Field("cgroup_base", spec.cgroup_base);
  w.Field("limits_reason", spec.limits_reason);
  if (!spec.events_dir.empty()) w.Field("events_dir", spec.events_dir);
  w.EndObject();
  out.push_back('\n');
  return out;
}

StatusOr<LaunchSpec> DecodeLaunchSpec(std::string_view json) {
  ASSIGN_OR_RETURN(JsonValue doc, ParseJson(json));
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(doc, ""));
  LaunchSpec spec;
  ASSIGN_OR_RETURN(const JsonValue* key, r.Value("key", Presence::kRequired));
  {
    ASSIGN_OR_RETURN(ObjectReader k, ObjectReader::Make(*key, "key"));
    RETURN_IF_ERROR(k.String("job_id", &spec.key.job_id, Presence::kRequired));
    RETURN_IF_ERROR(ReadInt(k, "attempt", &spec.key.attempt));
    RETURN_IF_ERROR(k.String("role", &spec.key.role, Presence::kRequired));
    RETURN_IF_ERROR(ReadInt(k, "index", &spec.key.index));
    RETURN_IF_ERROR(k.Finish());
  }
  RETURN_IF_ERROR(r.String("node", &spec.node));
  RETURN_IF_ERROR(r.StringList("argv", &spec.argv, Presence::kRequired));
  RETURN_IF_ERROR(r.StringMap("env", &spec.env));
  RETURN_IF_ERROR(r.String("working_dir", &spec.working_dir, Presence::kRequired));
  ASSIGN_OR_RETURN(const JsonValue* res, r.Value("resources"));
  if (res != nullptr) {
    ASSIGN_OR_RETURN(ObjectReader rr, ObjectReader::Make(*res, "resources"));
    RETURN_IF_ERROR(rr.Int("cpu_milli", &spec.resources.cpu_milli));
    RETURN_IF_ERROR(rr.Int("memory_mib", &spec.resources.memory_mib));
    RETURN_IF_ERROR(rr.Int("gpu_milli", &spec.resources.gpu_milli));
    RETURN_IF_ERROR(rr.Finish());
  }
  ASSIGN_OR_RETURN(const JsonValue* gpus, r.Value("gpu_indices"));
  if (gpus != nullptr) {
    if (!gpus->is_array())
      return InvalidArgumentError("gpu_indices: expected an array", "gpu_indices");
    for (const JsonValue& g : gpus->items()) {
      if (g.type() != JsonValue::Type::kInt) {
        return InvalidArgumentError("gpu_indices: expected integers", "gpu_indices");
      }
      spec.gpu_indices.push_back(static_cast<int>(g.as_int()));
    }
  }
  RETURN_IF_ERROR(r.Int("kill_grace_ms", &spec.kill_grace_ms));
  RETURN_IF_ERROR(r.Int("log_max_bytes", &spec.log_max_bytes));
  RETURN_IF_ERROR(r.String("cgroup_base", &spec.cgroup_base));
  RETURN_IF_ERROR(r.String("limits_reason", &spec.limits_reason));
  RETURN_IF_ERROR(r.String("events_dir", &spec.events_dir));
  RETURN_IF_ERROR(r.Finish());
  if (spec.argv.empty()) return InvalidArgumentError("argv: empty", "argv");
  if (spec.log_max_bytes <= 0)
    return InvalidArgumentError("log_max_bytes: must be > 0", "log_max_bytes");
  return spec;
}

std::string EncodeStatusRecord(const StatusRecord& r) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Field("state", r.state);
  w.Field("pid", r.pid);
  w.Field("shim_pid", r.shim_pid);
  w.Field("started_at_us", r.started_at_us);
  if (r.state == "exited") {
    w.Field("exit_code", r.exit_code);
    w.Field("signal", r.signal);
    w.Field("finished_at_us", r.finished_at_us);
  }
  w.Field("limits_enforced", r.limits_enforced);
  w.Field("message", r.message);
  w.Field("cgroup", r.cgroup);
  w.EndObject();
  out.push_back('\n');
  return out;
}

StatusOr<StatusRecord> DecodeStatusRecord(std::string_view json) {
  ASSIGN_OR_RETURN(JsonValue doc, ParseJson(json));
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(doc, ""));
  StatusRecord rec;
  RETURN_IF_ERROR(r.String("state", &rec.state, Presence::kRequired));
  RETURN_IF_ERROR(r.Int("pid", &rec.pid));
  RETURN_IF_ERROR(r.Int("shim_pid", &rec.shim_pid));
  RETURN_IF_ERROR(r.Int("started_at_us", &rec.started_at_us));
  RETURN_IF_ERROR(r.Int("finished_at_us", &rec.finished_at_us));
  RETURN_IF_ERROR(ReadInt(r, "exit_code", &rec.exit_code));
  RETURN_IF_ERROR(ReadInt(r, "signal", &rec.signal));
  RETURN_IF_ERROR(r.Bool("limits_enforced", &rec.limits_enforced));
  RETURN_IF_ERROR(r.String("message", &rec.message));
  RETURN_IF_ERROR(r.String("cgroup", &rec.cgroup));
  // Newer shims may add fields; an older server still reads the state.
  if (rec.state != "running" && rec.state != "exited") {
    return InvalidArgumentError(fmt::format("state: unknown \"{}\"", rec.state), "state");
  }
  return rec;
}

Status DropEventMarker(const std::string& events_dir, std::string_view state) {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const std::string path =
      fmt::format("{}/{}-{}{:09}-{}", events_dir, ::getpid(), ts.tv_sec, ts.tv_nsec, state);
  // O_EXCL: only a new directory entry raises the watcher's IN_CREATE.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == ENOENT) return NotFoundError(fmt::format("{} does not exist", events_dir));
    return ErrnoError("create", path, errno);
  }
  ::close(fd);
  return OkStatus();
}

Status WriteFileAtomic(const std::string& path, std::string_view data, bool durable) {
  static std::atomic<uint64_t> counter{0};
  std::string tmp = fmt::format("{}.tmp.{}.{}", path, ::getpid(), counter.fetch_add(1));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("create", tmp, errno);
  Status s = WriteAll(fd, data);
  if (s.ok() && durable && ::fsync(fd) != 0) s = ErrnoError("fsync", tmp, errno);
  if (::close(fd) != 0 && s.ok()) s = ErrnoError("close", tmp, errno);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = ErrnoError("rename", tmp, errno);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  if (durable) {
    std::string dir = DirName(path);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return ErrnoError("open", dir, errno);
    int rc = ::fsync(dfd);
    int err = errno;
    ::close(dfd);
    if (rc != 0) return ErrnoError("fsync", dir, err);
  }
  return OkStatus();
}

StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFoundError(fmt::format("{} does not exist", path));
    return ErrnoError("open", path, errno);
  }
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return ErrnoError("read", path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string ReadFileTail(const std::string& path, int64_t max_bytes) {
  StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return "";
  if (static_cast<int64_t>(text->size()) <= max_bytes) return *text;
  return text->substr(text->size() - static_cast<size_t>(max_bytes));
}

TaskLock& TaskLock::operator=(TaskLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    busy_ = o.busy_;
    o.fd_ = -1;
  }
  return *this;
}

TaskLock::~TaskLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

StatusOr<TaskLock> TaskLock::TryAcquire(const std::string& dir, bool create) {
  std::string path = dir + "/" + kLockFile;
  int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) {
    if (errno == ENOENT && !create) return TaskLock(-1, false);
    return ErrnoError("open", path, errno);
  }
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return TaskLock(-1, true);
    return ErrnoError("flock", path, err);
  }
  return TaskLock(fd, false);
}

StatusOr<bool> ShimIsLive(const std::string& dir) {
  ASSIGN_OR_RETURN(TaskLock lock, TaskLock::TryAcquire(dir, /*create=*/false));
  return !lock.acquired();
}

namespace {

// The mount point of the cgroup2 hierarchy, "" when none is mounted.
std::string FindCgroup2Mount() {
  std::ifstream mounts("/proc/self/mounts");
  std::string line;
  while (std::getline(mounts, line)) {
    std::istringstream fields(line);
    std::string dev, dir, type;
    fields >> dev >> dir >> type;
    if (type == "cgroup2") return dir;
  }
  return "";
}

std::set<std::string> ReadWords(const std::string& path) {
  std::set<std::string> words;
  std::ifstream in(path);
  std::string w;
  while (in >> w) words.insert(w);
  return words;
}

// Enables +cpu +memory for the children of `dir` unless already enabled.
Status EnableControllers(const std::string& dir) {
  std::set<std::string> enabled = ReadWords(dir + "/cgroup.subtree_control");
  for (const char* c : {"cpu", "memory"}) {
    if (enabled.count(c) > 0) continue;
    std::string path = dir + "/cgroup.subtree_control";
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open", path, errno);
    std::string word = fmt::format("+{}", c);
    ssize_t n = ::write(fd, word.data(), word.size());
    int err = errno;
    ::close(fd);
    if (n < 0) return ErrnoError(fmt::format("enable {} in", c), path, err);
  }
  return OkStatus();
}

}  // namespace

CgroupSupport DetectCgroupSupport(const std::string& configured) {
  if (configured == "none") return {"", "cgroup limits disabled by configuration"};
  std::string mount = FindCgroup2Mount();
  if (mount.empty()) return {"", "no cgroup v2 hierarchy is mounted"};
  std::string base = configured.empty() ? mount + "/lathe" : configured;
  if (base.rfind(mount + "/", 0) != 0) {
    return {"",
            fmt::format("cgroup base {} is not inside the cgroup v2 hierarchy at {}", base, mount)};
  }
  std::string parent = DirName(base);
  std::set<std::string> available = ReadWords(parent + "/cgroup.controllers");
  std::string missing;
  for (const char* c : {"cpu", "memory"}) {
    if (available.count(c) == 0) missing += missing.empty() ? c : std::string(", ") + c;
  }
  if (!missing.empty()) {
    return {"", fmt::format("cgroup v2 at {} lacks the {} controllers (cgroup v1 or hybrid mode)",
                            parent, missing)};
  }
  Status s = EnableControllers(parent);
  if (s.ok() && ::mkdir(base.c_str(), 0755) != 0 && errno != EEXIST) {
    s = ErrnoError("mkdir", base, errno);
  }
  if (s.ok()) s = EnableControllers(base);
  if (!s.ok()) return {"", fmt::format("cannot set up cgroup {}: {}", base, s.message())};
  return {base, ""};
}

std::string CgroupName(const TaskKey& key) {
  std::string name = key.Path();
  for (char& c : name) {
    if (c == '/') c = '.';
  }
  return name;
}

}  // namespace lathe::exec::local
