#include "exec/local/local_executor.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <utility>

#include <fmt/core.h>

#include "base/log.h"
#include "exec/local/task_dir.h"

extern char** environ;

namespace lathe::exec {
namespace {

namespace fs = std::filesystem;
using local::CgroupSupport;
using local::LaunchSpec;
using local::MonotonicMs;
using local::SleepMs;
using local::StatusRecord;

constexpr int64_t kShimStartTimeoutMs = 2000;
constexpr int64_t kKillReachTimeoutMs = 1000;
// One read of the inotify descriptor: about a thousand marker events.
constexpr size_t kEventBufferBytes = 64 * 1024;


// Through syscall(): glibc 2.36's <sys/pidfd.h> lacks extern "C".
int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
int PidfdSendSignal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// A path component chosen by the caller: job id, role, file name.
Status ValidateName(const std::string& value, const std::string& field) {
  if (value.empty()) return InvalidArgumentError(fmt::format("{}: empty", field), field);
  if (value == "." || value == ".." || value.find('/') != std::string::npos ||
      value.find('\0') != std::string::npos) {
    return InvalidArgumentError(fmt::format("{}: \"{}\" cannot be a directory name", field, value),
                                field);
  }
  return OkStatus();
}

// A job id names the job's directory under the root, beside kEventsDir.
Status ValidateJobId(const std::string& job_id, const std::string& field) {
  RETURN_IF_ERROR(ValidateName(job_id, field));
  if (job_id == local::kEventsDir) {
    return InvalidArgumentError(
        fmt::format("{}: \"{}\" is reserved by the executor", field, job_id), field);
  }
  return OkStatus();
}

Status ValidateKey(const TaskKey& key) {
  RETURN_IF_ERROR(ValidateJobId(key.job_id, "key.job_id"));
  RETURN_IF_ERROR(ValidateName(key.role, "key.role"));
  if (key.attempt < 0) return InvalidArgumentError("key.attempt: negative", "key.attempt");
  if (key.index < 0) return InvalidArgumentError("key.index: negative", "key.index");
  return OkStatus();
}

// fsync a directory so entries created in it survive a power loss.
void SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// status.json, or nullopt when there is none yet.
StatusOr<std::optional<StatusRecord>> ReadStatusRecord(const std::string& dir) {
  StatusOr<std::string> text = local::ReadFile(dir + "/" + local::kStatusFile);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return std::optional<StatusRecord>();
    return text.status();
  }
  StatusOr<StatusRecord> rec = local::DecodeStatusRecord(*text);
  if (!rec.ok()) {
    return DataLossError(fmt::format("{}/{}: {}", dir, local::kStatusFile, rec.status().message()));
  }
  return std::optional<StatusRecord>(std::move(*rec));
}

void FillFromRecord(const StatusRecord& r, TaskStatus* st) {
  st->pid = r.pid;
  st->started_at_us = r.started_at_us;
  st->finished_at_us = r.finished_at_us;
  st->exit_code = r.exit_code;
  st->signal = r.signal;
  st->limits_enforced = r.limits_enforced;
  st->message = r.message;
}

// A lost task's cgroup may still hold descendants that escaped its process
// group; cgroup.kill ends them. No-op without a cgroup.
void KillLostCgroup(const StatusRecord& r) {
  if (r.cgroup.empty() || !Exists(r.cgroup)) return;
  std::ofstream(r.cgroup + "/cgroup.kill") << "1";
  for (int i = 0; i < 50 && ::rmdir(r.cgroup.c_str()) != 0 && errno == EBUSY; ++i) SleepMs(10);
}

// Numeric directory names that print back the same (so keys round-trip).
std::vector<std::pair<int, std::string>> NumericSubdirs(const std::string& dir) {
  std::vector<std::pair<int, std::string>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_directory(ec)) continue;
    std::string name = e.path().filename().string();
    int n = 0;
    auto [ptr, err] = std::from_chars(name.data(), name.data() + name.size(), n);
    if (err != std::errc() || ptr != name.data() + name.size() || std::to_string(n) != name)
      continue;
    out.emplace_back(n, e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

sched::Resources DetectCapacity() {
  sched::Resources r;
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  r.cpu_milli = (cpus > 0 ? cpus : 1) * 1000;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemTotal:") {
      r.memory_mib = kib / 1024;
      break;
    }
  }
  return r;
}

// Waits for the shims Launch spawned without waiting (each forks its
// detached supervisor and exits at once), so none stays a zombie.
class Reaper {
 public:
  ~Reaper() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void Add(pid_t pid) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
    pids_.push_back(pid);
    cv_.notify_all();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !pids_.empty(); });
      if (pids_.empty()) return;  // stopping with nothing left to reap
      pid_t pid = pids_.front();
      pids_.pop_front();
      lock.unlock();
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<pid_t> pids_;  // guarded by mu_
  bool stop_ = false;       // guarded by mu_
  std::thread thread_;
};

// Calls the task event callback when shims drop markers into
// <root>/.events (task_dir.h): one inotify watch and one thread, started
// with the first callback, stopped by the destructor (an eventfd wakes it).
// Each read of the inotify descriptor (up to ~1,000 events) makes one call,
// then its markers are deleted, so a burst of exits costs a few calls and no
// memory beyond the read buffer; a queue overflow is one call and a sweep of
// the directory. Without inotify (or when the directory goes away) it logs
// once and the caller's periodic pass is all there is.
class TaskEventWatcher {
 public:
  explicit TaskEventWatcher(std::string dir) : dir_(std::move(dir)) {}
  TaskEventWatcher(const TaskEventWatcher&) = delete;
  TaskEventWatcher& operator=(const TaskEventWatcher&) = delete;

  ~TaskEventWatcher() {
    if (thread_.joinable()) {
      const uint64_t one = 1;
      (void)!::write(wake_fd_, &one, sizeof(one));
      thread_.join();
    }
    for (int fd : {inotify_fd_, wake_fd_, dir_fd_}) {
      if (fd >= 0) ::close(fd);
    }
  }

  void SetCallback(std::function<void()> on_event) {
    std::lock_guard<std::mutex> lock(mu_);
    callback_ = std::move(on_event);
    if (callback_ && !tried_) {
      tried_ = true;
      Start();
    }
  }

 private:
  // Under mu_, once.
  void Start() {
    auto fail = [&](const std::string& what) {
      LOG_WARN("task events: {}: {}; task state changes are noticed on the job controller's "
               "periodic pass only",
               what, std::strerror(errno));
      for (int* fd : {&inotify_fd_, &wake_fd_, &dir_fd_}) {
        if (*fd >= 0) ::close(*fd);
        *fd = -1;
      }
    };
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) {
      errno = ec.value();
      return fail(fmt::format("create {}", dir_));
    }
    inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd_ < 0) return fail("inotify_init1");
    if (::inotify_add_watch(inotify_fd_, dir_.c_str(), IN_CREATE | IN_MOVED_TO | IN_ONLYDIR) < 0) {
      return fail(fmt::format("watch {}", dir_));
    }
    dir_fd_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd_ < 0) return fail(fmt::format("open {}", dir_));
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) return fail("eventfd");
    // Markers of changes while nobody watched: the controller's first pass
    // observes every task anyway.
    SweepMarkers();
    thread_ = std::thread([this] { Run(); });
  }

  void Run() {
    alignas(inotify_event) char buf[kEventBufferBytes];
    bool watching = true;
    for (;;) {
      pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
      if (::poll(fds, watching ? 2 : 1, -1) < 0) {
        if (errno == EINTR) continue;
        LOG_WARN("task events: poll: {}", std::strerror(errno));
        return;
      }
      if (fds[0].revents != 0) return;  // stopping
      if (fds[1].revents == 0) continue;
      ssize_t len = ::read(inotify_fd_, buf, sizeof(buf));
      if (len < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (len <= 0) {
        LOG_WARN("task events: read: {}; periodic passes only", std::strerror(errno));
        watching = false;
        continue;
      }
      // Tell first, tidy after: the controller's pass overlaps the unlinks.
      Notify();
      bool overflow = false;
      for (ssize_t off = 0; off < len;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
        if ((ev->mask & IN_Q_OVERFLOW) != 0) overflow = true;
        if ((ev->mask & IN_IGNORED) != 0) {
          LOG_WARN("task events: {} went away; periodic passes only", dir_);
          watching = false;
        } else if (ev->len > 0 && (ev->mask & IN_ISDIR) == 0) {
          ::unlinkat(dir_fd_, ev->name, 0);  // ENOENT: a sweep took it
        }
      }
      if (overflow) SweepMarkers();
    }
  }

  void Notify() {
    std::lock_guard<std::mutex> lock(mu_);
    if (callback_) callback_();
  }

  // Deletes every marker in the directory.
  void SweepMarkers() {
    int fd = ::dup(dir_fd_);
    if (fd < 0) return;
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      ::close(fd);
      return;
    }
    while (const dirent* e = ::readdir(d)) {
      if (e->d_type == DT_DIR) continue;  // ".", ".." and nothing of ours
      ::unlinkat(dir_fd_, e->d_name, 0);
    }
    ::closedir(d);
  }

  const std::string dir_;
  std::mutex mu_;  // guards callback_ and tried_; held while callback_ runs
  std::function<void()> callback_;
  bool tried_ = false;
  // Set by Start() before the thread exists, constant after.
  int inotify_fd_ = -1;
  int wake_fd_ = -1;
  int dir_fd_ = -1;
  std::thread thread_;
};

class LocalExecutor final : public Executor {
 public:
  explicit LocalExecutor(LocalExecutorOptions options) : options_(std::move(options)) {
    sched::Resources detected = DetectCapacity();
    sched::Resources cap = options_.node_capacity;
    if (cap.cpu_milli == 0) cap.cpu_milli = detected.cpu_milli;
    if (cap.memory_mib == 0) cap.memory_mib = detected.memory_mib;
    int num_gpus = static_cast<int>(cap.gpu_milli / 1000);
    cap.gpu_milli = int64_t{num_gpus} * 1000;
    auto make = [&](std::string name) {
      sched::Node n;
      n.name = std::move(name);
      n.capacity = cap;
      n.num_gpus = num_gpus;
      n.labels = {{"lathe.dev/executor", "local"}};
      return n;
    };
    if (options_.virtual_nodes <= 0) {
      nodes_.push_back(make("local"));
    } else {
      for (int i = 0; i < options_.virtual_nodes; ++i)
        nodes_.push_back(make(fmt::format("local-{}", i)));
    }
    cgroup_ = local::DetectCgroupSupport(options_.cgroup_base);
  }

  std::string_view name() const override { return "local"; }

  StatusOr<std::vector<sched::Node>> Inventory() override { return nodes_; }

  Status Launch(const TaskLaunch& launch) override;
  Status Kill(const TaskKey& key) override;
  StatusOr<TaskStatus> Observe(const TaskKey& key) override;
  StatusOr<std::vector<TaskStatus>> ObserveJob(const std::string& job_id) override;
  StatusOr<LogChunk> ReadLog(const TaskKey& key, LogStream stream, int64_t offset,
                             int64_t max_bytes) override;
  Status Remove(const std::string& job_id) override;
  void SetTaskEventCallback(std::function<void()> on_event) override {
    events_.SetCallback(std::move(on_event));
  }

 private:
  std::string TaskDir(const TaskKey& key) const { return options_.root + "/" + key.Path(); }
  Status ValidateLaunch(const TaskLaunch& launch) const;
  LaunchSpec MakeSpec(const TaskLaunch& launch, const std::string& dir) const;
  Status WriteTaskFiles(const TaskLaunch& launch, const std::string& dir) const;
  Status StartShim(const std::string& dir) const;
  StatusOr<TaskStatus> ObserveDir(const TaskKey& key, const std::string& dir) const;

  const LocalExecutorOptions options_;
  std::vector<sched::Node> nodes_;
  CgroupSupport cgroup_;
  mutable Reaper reaper_;
  TaskEventWatcher events_{options_.root + "/" + local::kEventsDir};
};

Status LocalExecutor::ValidateLaunch(const TaskLaunch& launch) const {
  RETURN_IF_ERROR(ValidateKey(launch.key));
  if (launch.argv.empty() || launch.argv[0].empty()) {
    return InvalidArgumentError("argv: empty", "argv");
  }
  if (std::none_of(nodes_.begin(), nodes_.end(),
                   [&](const sched::Node& n) { return n.name == launch.node; })) {
    return InvalidArgumentError(
        fmt::format("node: \"{}\" is not a node of the local executor", launch.node), "node");
  }
  if (!launch.working_dir.empty() && launch.working_dir[0] != '/') {
    return InvalidArgumentError("working_dir: must be absolute", "working_dir");
  }
  for (const auto& [name, contents] : launch.files) {
    std::string field = fmt::format("files.{}", name);
    RETURN_IF_ERROR(ValidateName(name, field));
    if (local::IsReservedFileName(name)) {
      return InvalidArgumentError(fmt::format("{}: name is reserved by the executor", field),
                                  field);
    }
  }
  for (const auto& [var, file] : launch.file_env) {
    if (launch.files.count(file) == 0) {
      std::string field = fmt::format("file_env.{}", var);
      return InvalidArgumentError(fmt::format("{}: \"{}\" is not one of files", field, file),
                                  field);
    }
  }
  for (int g : launch.gpu_indices) {
    if (g < 0) return InvalidArgumentError("gpu_indices: negative index", "gpu_indices");
  }
  if (launch.kill_grace_ms < 0)
    return InvalidArgumentError("kill_grace_ms: negative", "kill_grace_ms");
  if (launch.log_max_bytes <= 0) {
    return InvalidArgumentError("log_max_bytes: must be positive", "log_max_bytes");
  }
  return OkStatus();
}

LaunchSpec LocalExecutor::MakeSpec(const TaskLaunch& launch, const std::string& dir) const {
  LaunchSpec spec;
  spec.key = launch.key;
  spec.node = launch.node;
  spec.argv = launch.argv;
  // Minimal base environment from the server; the server's other variables
  // (credentials, LATHE_*) never reach tasks.
  spec.env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  for (const char* var : {"PATH", "HOME", "LANG", "TMPDIR", "USER"}) {
    if (const char* v = ::getenv(var)) spec.env[var] = v;
  }
  for (const auto& [k, v] : launch.env) spec.env[k] = v;
  if (!launch.gpu_indices.empty()) {
    std::string devices;
    for (int g : launch.gpu_indices) devices += (devices.empty() ? "" : ",") + std::to_string(g);
    spec.env["CUDA_VISIBLE_DEVICES"] = devices;
  }
  for (const auto& [var, file] : launch.file_env) spec.env[var] = dir + "/" + file;
  spec.working_dir = launch.working_dir.empty() ? dir : launch.working_dir;
  spec.resources = launch.resources;
  spec.gpu_indices = launch.gpu_indices;
  spec.kill_grace_ms = launch.kill_grace_ms;
  spec.log_max_bytes = launch.log_max_bytes;
  spec.cgroup_base = cgroup_.base;
  spec.limits_reason = cgroup_.reason;
  spec.events_dir = options_.root + "/" + local::kEventsDir;
  return spec;
}

Status LocalExecutor::WriteTaskFiles(const TaskLaunch& launch, const std::string& dir) const {
  for (const auto& [name, contents] : launch.files) {
    RETURN_IF_ERROR(local::WriteFileAtomic(dir + "/" + name, contents));
  }
  // launch.json last: its presence means the directory is complete.
  return local::WriteFileAtomic(dir + "/" + local::kLaunchFile,
                                local::EncodeLaunchSpec(MakeSpec(launch, dir)));
}

Status LocalExecutor::Launch(const TaskLaunch& launch) {
  RETURN_IF_ERROR(ValidateLaunch(launch));
  const std::string dir = TaskDir(launch.key);
  if (Exists(dir + "/" + local::kLaunchFile)) {
    // Launched before. Start a shim again only if none ever took the task
    // over (no status) and none is live: the server died between writing
    // launch.json and the shim's start. The shim re-checks under its lock.
    if (Exists(dir + "/" + local::kStatusFile)) return OkStatus();
    ASSIGN_OR_RETURN(bool live, local::ShimIsLive(dir));
    if (live) return OkStatus();
    return StartShim(dir);
  }
  if (::access(options_.shim_path.c_str(), X_OK) != 0) {
    return FailedPreconditionError(
        fmt::format("shim binary {}: {}", options_.shim_path, std::strerror(errno)));
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return InternalError(fmt::format("create {}: {}", dir, ec.message()));
  // The new directory entries, up to the root, survive a power loss.
  for (fs::path p = fs::path(dir).parent_path(); p.string().size() >= options_.root.size();
       p = p.parent_path()) {
    SyncDir(p.string());
    if (p == p.parent_path()) break;
  }
  RETURN_IF_ERROR(WriteTaskFiles(launch, dir));
  return StartShim(dir);
}

Status LocalExecutor::StartShim(const std::string& dir) const {
  if (::access(options_.shim_path.c_str(), X_OK) != 0) {
    return FailedPreconditionError(
        fmt::format("shim binary {}: {}", options_.shim_path, std::strerror(errno)));
  }
  // posix_spawn (vfork-like, safe in a threaded server) into a new session
  // with nothing of the server's descriptors; the shim forks once more and
  // this process exits at once, so the server reaps it here and never owns
  // the long-lived supervisor.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
  std::string arg0 = options_.shim_path, arg1 = "shim", arg2 = "--dir", arg3 = dir;
  char* argv[] = {arg0.data(), arg1.data(), arg2.data(), arg3.data(), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, options_.shim_path.c_str(), &actions, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return FailedPreconditionError(
        fmt::format("start shim {}: {}", options_.shim_path, std::strerror(rc)));
  }

  if (!options_.wait_for_start) {
    reaper_.Add(pid);
    return OkStatus();
  }
  const int64_t deadline = MonotonicMs() + kShimStartTimeoutMs;
  std::string shim_log = dir + "/" + local::kShimLogFile;
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        return InternalError(fmt::format("shim {} for {} failed ({}): {}", options_.shim_path, dir,
                                         WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
                                         local::ReadFileTail(shim_log, 2000)));
      }
      break;
    }
    if (r < 0 && errno != EINTR) break;  // ECHILD: someone else reaped it
    if (MonotonicMs() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return InternalError(fmt::format("shim {} did not detach within {} ms", options_.shim_path,
                                       kShimStartTimeoutMs));
    }
    SleepMs(2);
  }
  // An early error for a shim that cannot start: wait until it has taken
  // the task over (status.json), for at most the deadline.
  while (MonotonicMs() < deadline) {
    if (Exists(dir + "/" + local::kStatusFile)) return OkStatus();
    SleepMs(5);
  }
  if (Exists(dir + "/" + local::kStatusFile)) return OkStatus();
  ASSIGN_OR_RETURN(bool live, local::ShimIsLive(dir));
  if (live) return OkStatus();  // slow, but alive: Observe says kStarting
  return InternalError(fmt::format("shim for {} did not start the task: {}", dir,
                                   local::ReadFileTail(shim_log, 2000)));
}

StatusOr<TaskStatus> LocalExecutor::ObserveDir(const TaskKey& key, const std::string& dir) const {
  TaskStatus st;
  st.key = key;
  if (!Exists(dir + "/" + local::kLaunchFile)) return st;  // kUnknown
  // Probe first, read second: a shim that is gone has written all it ever
  // will, so a status read after a free lock is final.
  ASSIGN_OR_RETURN(bool live, local::ShimIsLive(dir));
  ASSIGN_OR_RETURN(std::optional<StatusRecord> rec, ReadStatusRecord(dir));
  if (!rec) {
    // Launched, but no shim has taken the task over: starting while a shim
    // holds the lock; else never started (Launch again starts it).
    st.state = live ? TaskState::kStarting : TaskState::kUnknown;
    return st;
  }
  FillFromRecord(*rec, &st);
  if (rec->state == "exited") {
    st.state = TaskState::kExited;
  } else if (live) {
    st.state = TaskState::kRunning;
  } else {
    st.state = TaskState::kLost;
    st.message =
        fmt::format("the shim (pid {}) vanished without recording an exit status", rec->shim_pid);
  }
  return st;
}

StatusOr<TaskStatus> LocalExecutor::Observe(const TaskKey& key) {
  RETURN_IF_ERROR(ValidateKey(key));
  return ObserveDir(key, TaskDir(key));
}

StatusOr<std::vector<TaskStatus>> LocalExecutor::ObserveJob(const std::string& job_id) {
  RETURN_IF_ERROR(ValidateJobId(job_id, "job_id"));
  std::vector<TaskStatus> out;
  std::error_code ec;
  for (const auto& [attempt, attempt_dir] : NumericSubdirs(options_.root + "/" + job_id)) {
    std::vector<std::string> roles;
    for (const auto& e : fs::directory_iterator(attempt_dir, ec)) {
      if (e.is_directory(ec)) roles.push_back(e.path().filename().string());
    }
    std::sort(roles.begin(), roles.end());
    for (const std::string& role : roles) {
      for (const auto& [index, task_dir] : NumericSubdirs(attempt_dir + "/" + role)) {
        if (!Exists(task_dir + "/" + local::kLaunchFile)) continue;
        TaskKey key{job_id, attempt, role, index};
        ASSIGN_OR_RETURN(TaskStatus st, ObserveDir(key, task_dir));
        out.push_back(std::move(st));
      }
    }
  }
  return out;
}

Status LocalExecutor::Kill(const TaskKey& key) {
  RETURN_IF_ERROR(ValidateKey(key));
  const std::string dir = TaskDir(key);
  if (!Exists(dir + "/" + local::kLaunchFile)) return OkStatus();
  for (int64_t deadline = MonotonicMs() + kKillReachTimeoutMs;; SleepMs(10)) {
    ASSIGN_OR_RETURN(local::TaskLock lock, local::TaskLock::TryAcquire(dir, /*create=*/true));
    if (lock.acquired()) {
      // No live shim, and none can take the task over while this lock is
      // held: decide under it.
      ASSIGN_OR_RETURN(std::optional<StatusRecord> rec, ReadStatusRecord(dir));
      if (!rec) {
        // Never started: record that it will not, so a shim spawned by a
        // retried Launch exits without starting it.
        StatusRecord killed;
        killed.state = "exited";
        killed.exit_code = 128 + SIGTERM;
        killed.signal = SIGTERM;
        killed.message = "killed before start";
        return local::WriteFileAtomic(dir + "/" + local::kStatusFile,
                                      local::EncodeStatusRecord(killed));
      }
      if (rec->state != "exited") KillLostCgroup(*rec);
      return OkStatus();
    }
    // A live shim: signal it by a pidfd taken while it still holds the lock,
    // so a recycled pid is never signalled.
    StatusOr<std::string> pid_text = local::ReadFile(dir + "/" + local::kShimPidFile);
    pid_t pid = pid_text.ok() ? static_cast<pid_t>(std::atoll(pid_text->c_str())) : 0;
    if (pid > 0) {
      int pidfd = PidfdOpen(pid);
      if (pidfd >= 0) {
        StatusOr<bool> live = local::ShimIsLive(dir);
        StatusOr<std::string> again = local::ReadFile(dir + "/" + local::kShimPidFile);
        bool same = live.ok() && *live && again.ok() && *again == *pid_text;
        int rc = same ? PidfdSendSignal(pidfd, SIGTERM) : -1;
        ::close(pidfd);
        if (rc == 0) return OkStatus();
      }
    }
    if (MonotonicMs() >= deadline) {
      return UnavailableError(fmt::format("cannot reach the shim of {}", key.Path()));
    }
  }
}

StatusOr<LogChunk> LocalExecutor::ReadLog(const TaskKey& key, LogStream stream, int64_t offset,
                                          int64_t max_bytes) {
  RETURN_IF_ERROR(ValidateKey(key));
  if (offset < 0) return InvalidArgumentError("offset: negative", "offset");
  if (max_bytes <= 0) return InvalidArgumentError("max_bytes: must be positive", "max_bytes");
  const std::string dir = TaskDir(key);
  if (!Exists(dir + "/" + local::kLaunchFile)) {
    return NotFoundError(fmt::format("task {} was not launched", key.Path()));
  }
  LogChunk chunk;
  std::string lock_path = dir + "/" + local::kLogLockFile;
  int lock_fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (lock_fd < 0) {
    // The shim has not opened the logs yet.
    chunk.next_offset = 0;
    chunk.eof = true;
    return chunk;
  }
  // Base and both files as one consistent set (the shim rotates under the
  // exclusive lock); reading the opened files needs no lock.
  while (::flock(lock_fd, LOCK_SH) != 0 && errno == EINTR) {
  }
  StatusOr<std::string> base_text = local::ReadFile(local::LogBasePath(dir, stream));
  int64_t base = base_text.ok() ? std::atoll(base_text->c_str()) : 0;
  int cur_fd = ::open(local::LogPath(dir, stream).c_str(), O_RDONLY | O_CLOEXEC);
  int old_fd = ::open(local::RotatedLogPath(dir, stream).c_str(), O_RDONLY | O_CLOEXEC);
  ::flock(lock_fd, LOCK_UN);
  ::close(lock_fd);

  struct stat st;
  int64_t cur_size = cur_fd >= 0 && ::fstat(cur_fd, &st) == 0 ? st.st_size : 0;
  int64_t old_size = old_fd >= 0 && ::fstat(old_fd, &st) == 0 ? st.st_size : 0;
  const int64_t old_base = std::max<int64_t>(0, base - old_size);
  const int64_t end = base + cur_size;
  int64_t pos = std::min(std::max(offset, old_fd >= 0 ? old_base : base), end);
  std::string data;
  while (static_cast<int64_t>(data.size()) < max_bytes && pos < end) {
    int64_t want = max_bytes - static_cast<int64_t>(data.size());
    int fd = pos < base ? old_fd : cur_fd;
    int64_t file_off = pos < base ? pos - old_base : pos - base;
    int64_t limit = pos < base ? base - pos : end - pos;
    size_t n = static_cast<size_t>(std::min(want, limit));
    size_t had = data.size();
    data.resize(had + n);
    ssize_t got = fd >= 0 ? ::pread(fd, data.data() + had, n, file_off) : 0;
    if (got < 0 && errno == EINTR) {
      data.resize(had);
      continue;
    }
    data.resize(had + static_cast<size_t>(std::max<ssize_t>(got, 0)));
    if (got <= 0) break;
    pos += got;
  }
  if (cur_fd >= 0) ::close(cur_fd);
  if (old_fd >= 0) ::close(old_fd);
  chunk.data = std::move(data);
  chunk.next_offset = pos;
  chunk.eof = pos >= end;
  return chunk;
}

Status LocalExecutor::Remove(const std::string& job_id) {
  RETURN_IF_ERROR(ValidateJobId(job_id, "job_id"));
  const std::string job_dir = options_.root + "/" + job_id;
  ASSIGN_OR_RETURN(std::vector<TaskStatus> tasks, ObserveJob(job_id));
  for (const TaskStatus& t : tasks) {
    const std::string dir = TaskDir(t.key);
    ASSIGN_OR_RETURN(bool live, local::ShimIsLive(dir));
    if (live || t.state == TaskState::kRunning || t.state == TaskState::kStarting) {
      return FailedPreconditionError(fmt::format("task {} is {}: kill it before removing the job",
                                                 t.key.Path(),
                                                 live ? "still live" : TaskStateName(t.state)));
    }
    if (t.state == TaskState::kLost) {
      StatusOr<std::optional<StatusRecord>> rec = ReadStatusRecord(dir);
      if (rec.ok() && *rec) KillLostCgroup(**rec);
    }
  }
  std::error_code ec;
  fs::remove_all(job_dir, ec);
  if (ec) return InternalError(fmt::format("remove {}: {}", job_dir, ec.message()));
  return OkStatus();
}

}  // namespace

std::unique_ptr<Executor> NewLocalExecutor(const LocalExecutorOptions& options) {
  return std::make_unique<LocalExecutor>(options);
}

}  // namespace lathe::exec
