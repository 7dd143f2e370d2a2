// `lathe shim`: see shim.h for the contract and README.md for the crash
// windows. The shim is single-threaded; after fork the child only sets up
// its process and execs.
#include "exec/local/shim.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "base/clock.h"
#include "exec/local/task_dir.h"

extern char** environ;

namespace lathe::exec {
namespace {

using local::LaunchSpec;
using local::MonotonicMs;
using local::SleepMs;
using local::StatusRecord;

constexpr int64_t kLockWaitMs = 1000;      // a probe holds the lock for an instant
constexpr int64_t kDrainTimeoutMs = 2000;  // after the task ended
constexpr size_t kReadChunk = 64 * 1024;


// Diagnostics go to TASKDIR/shim.log (the shim's stderr).
template <typename... Args>
void ShimLog(fmt::format_string<Args...> format, Args&&... args) {
  std::string line =
      fmt::format("{} lathe shim[{}]: {}\n", FormatRfc3339(SystemClock().NowMicros()), ::getpid(),
                  fmt::format(format, std::forward<Args>(args)...));
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

bool WriteAllFd(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Writes a small control file (cgroup knobs).
bool WriteControl(const std::string& path, const std::string& value, std::string* error) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0 || !WriteAllFd(fd, value.data(), value.size())) {
    *error = fmt::format("write {}: {}", path, std::strerror(errno));
    if (fd >= 0) ::close(fd);
    return false;
  }
  ::close(fd);
  return true;
}

// One output stream of the task: copied into <stream>.log, rotated into
// <stream>.log.1 at max_bytes, with <stream>.base holding the logical offset
// of the current file's first byte.
class RotatingLog {
 public:
  ~RotatingLog() {
    if (fd_ >= 0) ::close(fd_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }

  Status Open(const std::string& dir, LogStream stream, int64_t max_bytes) {
    dir_ = dir;
    stream_ = stream;
    max_bytes_ = max_bytes;
    std::string lock_path = dir + "/" + local::kLogLockFile;
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0)
      return InternalError(fmt::format("open {}: {}", lock_path, std::strerror(errno)));
    StatusOr<std::string> base = local::ReadFile(local::LogBasePath(dir, stream));
    if (base.ok()) base_ = std::atoll(base->c_str());
    return OpenCurrent(/*truncate=*/false);
  }

  // Appends task output; on an I/O error the bytes are dropped (the task
  // must not block on its supervisor's disk).
  void Append(const char* data, size_t n) {
    while (n > 0) {
      if (size_ >= max_bytes_) Rotate();
      if (fd_ < 0) return;
      size_t k = std::min(n, static_cast<size_t>(max_bytes_ - size_));
      if (!WriteAllFd(fd_, data, k)) {
        ShimLog("write {}: {}", local::LogPath(dir_, stream_), std::strerror(errno));
        return;
      }
      size_ += static_cast<int64_t>(k);
      data += k;
      n -= k;
    }
  }

 private:
  Status OpenCurrent(bool truncate) {
    std::string path = local::LogPath(dir_, stream_);
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0),
                 0644);
    if (fd_ < 0) return InternalError(fmt::format("open {}: {}", path, std::strerror(errno)));
    struct stat st;
    size_ = ::fstat(fd_, &st) == 0 ? st.st_size : 0;
    return OkStatus();
  }

  // current -> .1 (replacing the old .1), a new current, the new base; under
  // the log lock so readers never see a half-rotated set.
  void Rotate() {
    while (::flock(lock_fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
    std::string cur = local::LogPath(dir_, stream_);
    if (::rename(cur.c_str(), local::RotatedLogPath(dir_, stream_).c_str()) != 0) {
      ShimLog("rotate {}: {}", cur, std::strerror(errno));
    }
    ::close(fd_);
    base_ += size_;
    Status s = OpenCurrent(/*truncate=*/true);
    if (!s.ok()) ShimLog("{}", s.message());
    s = local::WriteFileAtomic(local::LogBasePath(dir_, stream_), std::to_string(base_),
                               /*durable=*/false);
    if (!s.ok()) ShimLog("{}", s.message());
    ::flock(lock_fd_, LOCK_UN);
  }

  std::string dir_;
  LogStream stream_ = LogStream::kStdout;
  int64_t max_bytes_ = 0;
  int fd_ = -1;
  int lock_fd_ = -1;
  int64_t size_ = 0;  // bytes in the current file
  int64_t base_ = 0;  // logical offset of the current file's first byte
};

// The task's cgroup v2 directory while it runs.
class TaskCgroup {
 public:
  // Creates <base>/<name> with cpu.max and memory.max. On failure the
  // directory is removed and `error` says why.
  bool Create(const std::string& base, const std::string& name, const sched::Resources& r,
              std::string* error) {
    path_ = base + "/" + name;
    if (::mkdir(path_.c_str(), 0755) != 0) {
      // A leftover from a shim that died: empty cgroups can be removed.
      if (errno != EEXIST || ::rmdir(path_.c_str()) != 0 || ::mkdir(path_.c_str(), 0755) != 0) {
        *error = fmt::format("mkdir {}: {}", path_, std::strerror(errno));
        path_.clear();
        return false;
      }
    }
    std::string cpu = r.cpu_milli > 0 ? fmt::format("{} 100000", r.cpu_milli * 100) : "max 100000";
    std::string mem = r.memory_mib > 0 ? std::to_string(r.memory_mib * 1024 * 1024) : "max";
    if (!WriteControl(path_ + "/cpu.max", cpu, error) ||
        !WriteControl(path_ + "/memory.max", mem, error)) {
      Remove();
      return false;
    }
    return true;
  }

  bool AddProcess(pid_t pid, std::string* error) {
    if (WriteControl(path_ + "/cgroup.procs", std::to_string(pid), error)) return true;
    Remove();
    return false;
  }

  // Kills whatever is left in the cgroup and removes it.
  void Remove() {
    if (path_.empty()) return;
    std::string ignored;
    WriteControl(path_ + "/cgroup.kill", "1", &ignored);  // kernel >= 5.14
    for (int i = 0; i < 100 && ::rmdir(path_.c_str()) != 0 && errno == EBUSY; ++i) SleepMs(10);
    path_.clear();
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Processes whose parent is this shim other than `except`. As a child
// subreaper the shim inherits every orphaned descendant of its task.
std::vector<pid_t> ChildrenOfSelf() {
  std::vector<pid_t> out;
  pid_t self = ::getpid();
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    StatusOr<std::string> stat = local::ReadFile(fmt::format("/proc/{}/stat", pid));
    if (!stat.ok()) continue;
    size_t paren = stat->rfind(')');
    if (paren == std::string::npos) continue;
    char state = 0;
    long ppid = 0;
    if (std::sscanf(stat->c_str() + paren + 1, " %c %ld", &state, &ppid) == 2 && ppid == self) {
      out.push_back(static_cast<pid_t>(pid));
    }
  }
  ::closedir(proc);
  return out;
}

class Supervisor {
 public:
  explicit Supervisor(std::string dir) : dir_(std::move(dir)) {}
  int Run();

 private:
  Status WriteStatus(const StatusRecord& r) {
    return local::WriteFileAtomic(dir_ + "/" + local::kStatusFile, local::EncodeStatusRecord(r));
  }
  // Tells a watching executor that status.json changed (local::kEventsDir).
  // Best effort: the executor's periodic pass sees the change anyway.
  void NotifyExecutor(std::string_view state);
  // Records an exit without ever starting the task.
  int FinishUnstarted(int exit_code, int signal, const std::string& message);
  bool TermPending();
  void HandleSignals();
  void ReapChildren();
  void ReadPipe(int* fd, RotatingLog* log);
  void ReadExecError();

  std::string dir_;
  LaunchSpec spec_;
  int signal_fd_ = -1;
  pid_t child_ = -1;
  bool child_done_ = false;
  int wait_status_ = 0;
  bool term_sent_ = false;
  bool kill_sent_ = false;
  int64_t kill_deadline_ms_ = 0;
  int out_fd_ = -1;
  int err_fd_ = -1;
  int exec_err_fd_ = -1;
  std::string exec_error_;
  RotatingLog stdout_log_;
  RotatingLog stderr_log_;
};

void Supervisor::NotifyExecutor(std::string_view state) {
  if (spec_.events_dir.empty()) return;
  Status s = local::DropEventMarker(spec_.events_dir, state);
  // NOT_FOUND: no executor ever watched this root.
  if (!s.ok() && s.code() != StatusCode::kNotFound) ShimLog("event marker: {}", s.message());
}

int Supervisor::FinishUnstarted(int exit_code, int signal, const std::string& message) {
  StatusRecord r;
  r.state = "exited";
  r.shim_pid = ::getpid();
  r.started_at_us = r.finished_at_us = SystemClock().NowMicros();
  r.exit_code = exit_code;
  r.signal = signal;
  r.message = message;
  ShimLog("not starting the task: {}", message);
  Status s = WriteStatus(r);
  if (!s.ok()) {
    ShimLog("{}", s.message());
    return 1;
  }
  NotifyExecutor(r.state);
  return 0;
}

bool Supervisor::TermPending() {
  bool term = false;
  signalfd_siginfo si;
  while (::read(signal_fd_, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
    if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) term = true;
  }
  return term;
}

void Supervisor::HandleSignals() {
  signalfd_siginfo si;
  while (::read(signal_fd_, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
    if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) && !term_sent_ && !child_done_) {
      ShimLog("signal {}: SIGTERM to the task, SIGKILL after {} ms", si.ssi_signo,
              spec_.kill_grace_ms);
      ::kill(-child_, SIGTERM);
      term_sent_ = true;
      kill_deadline_ms_ = MonotonicMs() + spec_.kill_grace_ms;
    }
  }
  ReapChildren();
}

void Supervisor::ReapChildren() {
  for (;;) {
    int st = 0;
    pid_t p = ::waitpid(-1, &st, WNOHANG);
    if (p <= 0) return;
    if (p == child_) {
      child_done_ = true;
      wait_status_ = st;
    }
  }
}

void Supervisor::ReadPipe(int* fd, RotatingLog* log) {
  char buf[kReadChunk];
  ssize_t n = ::read(*fd, buf, sizeof(buf));
  if (n > 0) {
    log->Append(buf, static_cast<size_t>(n));
  } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
    ::close(*fd);
    *fd = -1;
  }
}

void Supervisor::ReadExecError() {
  char buf[1024];
  ssize_t n = ::read(exec_err_fd_, buf, sizeof(buf));
  if (n > 0) {
    exec_error_.append(buf, static_cast<size_t>(n));
  } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
    ::close(exec_err_fd_);
    exec_err_fd_ = -1;
  }
}

int Supervisor::Run() {
  // Signals arrive through a descriptor so the loop below sees them in order
  // with task output; the child restores the defaults before exec.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
  signal_fd_ = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) {
    ShimLog("signalfd: {}", std::strerror(errno));
    return 1;
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);

  // 1. Ownership: the lock for the shim's whole life. Probes by the server
  // take it for an instant, so retry briefly; a lock still held after that
  // belongs to another live shim of this task.
  local::TaskLock lock;
  for (int64_t deadline = MonotonicMs() + kLockWaitMs;;) {
    StatusOr<local::TaskLock> l = local::TaskLock::TryAcquire(dir_, /*create=*/true);
    if (!l.ok()) {
      ShimLog("{}", l.status().message());
      return 1;
    }
    if (l->acquired()) {
      lock = std::move(*l);
      break;
    }
    if (MonotonicMs() >= deadline) {
      ShimLog("another shim holds {}/lock; exiting", dir_);
      return 0;
    }
    SleepMs(10);
  }
  Status s = local::WriteFileAtomic(dir_ + "/" + local::kShimPidFile, std::to_string(::getpid()),
                                    /*durable=*/false);
  if (!s.ok()) {
    ShimLog("{}", s.message());
    return 1;
  }

  // 2. Never twice: a status file means a shim already started this task
  // (or recorded that it will not run).
  StatusOr<std::string> existing = local::ReadFile(dir_ + "/" + local::kStatusFile);
  if (existing.ok()) {
    ShimLog("{} exists: the task was started before; not starting it again", local::kStatusFile);
    return 0;
  }
  if (existing.status().code() != StatusCode::kNotFound) {
    ShimLog("{}", existing.status().message());
    return 1;
  }

  StatusOr<std::string> launch_text = local::ReadFile(dir_ + "/" + local::kLaunchFile);
  if (!launch_text.ok()) return FinishUnstarted(127, 0, launch_text.status().message());
  StatusOr<LaunchSpec> spec = local::DecodeLaunchSpec(*launch_text);
  if (!spec.ok()) {
    return FinishUnstarted(127, 0,
                           fmt::format("bad {}: {}", local::kLaunchFile, spec.status().message()));
  }
  spec_ = std::move(*spec);
  if (TermPending()) return FinishUnstarted(128 + SIGTERM, SIGTERM, "killed before start");

  s = stdout_log_.Open(dir_, LogStream::kStdout, spec_.log_max_bytes);
  if (s.ok()) s = stderr_log_.Open(dir_, LogStream::kStderr, spec_.log_max_bytes);
  if (!s.ok()) return FinishUnstarted(127, 0, s.message());

  // 3. Limits.
  TaskCgroup cgroup;
  std::string limits_error;
  bool limits =
      !spec_.cgroup_base.empty() && cgroup.Create(spec_.cgroup_base, local::CgroupName(spec_.key),
                                                  spec_.resources, &limits_error);

  // 4. The child: its own process group, dies with the shim, waits for the
  // go byte so that status.json says "running" before it can exec.
  int out_pipe[2], err_pipe[2], go_pipe[2], exec_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(go_pipe, O_CLOEXEC) != 0 || ::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    cgroup.Remove();
    return FinishUnstarted(127, 0, fmt::format("pipe: {}", std::strerror(errno)));
  }
  int dev_null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : spec_.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<char*> argv;
  for (auto& a : spec_.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t shim_pid = ::getpid();

  child_ = ::fork();
  if (child_ < 0) {
    cgroup.Remove();
    return FinishUnstarted(127, 0, fmt::format("fork: {}", std::strerror(errno)));
  }
  if (child_ == 0) {
    ::setpgid(0, 0);
    // A shim killed with -9 takes its task down with it: that is what makes
    // reporting the task "lost" safe. Re-check the parent: it may already be
    // gone before the death signal was armed.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != shim_pid) ::_exit(1);
    if (dev_null >= 0) ::dup2(dev_null, STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGHUP, SIG_DFL);
    ::signal(SIGPIPE, SIG_DFL);
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);  // nothing of the caller's leaks into the task
    char go = 0;
    while (::read(go_pipe[0], &go, 1) < 0 && errno == EINTR) {
    }
    if (go != 'g') ::_exit(1);
    auto fail = [&](const char* what, const std::string& arg) {
      int err = errno;
      std::string msg = fmt::format("{} {}: {}", what, arg, std::strerror(err));
      (void)!::write(exec_pipe[1], msg.data(), msg.size());
      std::string line = "lathe shim: " + msg + "\n";
      (void)!::write(STDERR_FILENO, line.data(), line.size());
      ::_exit(127);
    };
    if (::chdir(spec_.working_dir.c_str()) != 0) fail("chdir", spec_.working_dir);
    environ = envp.data();  // execvp resolves argv[0] through the task's PATH
    ::execvp(argv[0], argv.data());
    fail("exec", spec_.argv[0]);
  }

  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::close(go_pipe[0]);
  ::close(exec_pipe[1]);
  if (dev_null >= 0) ::close(dev_null);
  ::setpgid(child_, child_);
  if (limits && !cgroup.AddProcess(child_, &limits_error)) limits = false;

  StatusRecord rec;
  rec.state = "running";
  rec.pid = child_;
  rec.shim_pid = shim_pid;
  rec.started_at_us = SystemClock().NowMicros();
  rec.limits_enforced = limits;
  rec.cgroup = limits ? cgroup.path() : "";
  if (limits) {
    rec.message = fmt::format("limits enforced: cgroup v2 {}", cgroup.path());
  } else {
    rec.message = fmt::format("limits advisory: {}",
                              limits_error.empty() ? spec_.limits_reason : limits_error);
  }
  s = WriteStatus(rec);
  if (!s.ok()) {
    // The task has not run and no status says it did: a relaunch may start it.
    ShimLog("{}; not starting the task", s.message());
    ::kill(child_, SIGKILL);
    ::waitpid(child_, nullptr, 0);
    cgroup.Remove();
    return 1;
  }
  (void)!::write(go_pipe[1], "g", 1);
  ::close(go_pipe[1]);
  NotifyExecutor(rec.state);
  ShimLog("started pid {}: {}", child_, spec_.argv[0]);

  // 5. Supervise: copy output, forward SIGTERM, escalate to SIGKILL.
  out_fd_ = out_pipe[0];
  err_fd_ = err_pipe[0];
  exec_err_fd_ = exec_pipe[0];
  while (!child_done_) {
    pollfd fds[4];
    int n = 0;
    fds[n++] = {signal_fd_, POLLIN, 0};
    if (out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
    if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
    if (exec_err_fd_ >= 0) fds[n++] = {exec_err_fd_, POLLIN, 0};
    int timeout = -1;
    if (term_sent_ && !kill_sent_) {
      timeout = static_cast<int>(
          std::clamp<int64_t>(kill_deadline_ms_ - MonotonicMs(), 0, 24 * 3600 * 1000));
    }
    if (::poll(fds, static_cast<nfds_t>(n), timeout) < 0 && errno != EINTR) {
      ShimLog("poll: {}", std::strerror(errno));
      SleepMs(10);
    }
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == signal_fd_)
        HandleSignals();
      else if (fds[i].fd == out_fd_)
        ReadPipe(&out_fd_, &stdout_log_);
      else if (fds[i].fd == err_fd_)
        ReadPipe(&err_fd_, &stderr_log_);
      else if (fds[i].fd == exec_err_fd_)
        ReadExecError();
    }
    if (term_sent_ && !kill_sent_ && !child_done_ && MonotonicMs() >= kill_deadline_ms_) {
      ShimLog("grace period over: SIGKILL to the task");
      ::kill(-child_, SIGKILL);
      kill_sent_ = true;
    }
  }

  // 6. The task ended: nothing of it may remain. Kill its process group and
  // every orphaned descendant (they were reparented to this subreaper), then
  // drain the pipes.
  ::kill(-child_, SIGKILL);
  for (int64_t deadline = MonotonicMs() + kDrainTimeoutMs; MonotonicMs() < deadline;) {
    for (pid_t p : ChildrenOfSelf()) ::kill(p, SIGKILL);
    ReapChildren();
    // 0: children alive; > 0: one more reaped (maybe others left); -1: none.
    bool children_left = ::waitpid(-1, nullptr, WNOHANG) >= 0;
    if (out_fd_ < 0 && err_fd_ < 0 && !children_left) break;
    pollfd fds[2];
    int n = 0;
    if (out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
    if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
    if (n == 0) {
      SleepMs(10);
      continue;
    }
    ::poll(fds, static_cast<nfds_t>(n), 50);
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == out_fd_)
        ReadPipe(&out_fd_, &stdout_log_);
      else if (fds[i].fd == err_fd_)
        ReadPipe(&err_fd_, &stderr_log_);
    }
  }
  while (exec_err_fd_ >= 0) ReadExecError();
  if (out_fd_ >= 0) ::close(out_fd_);
  if (err_fd_ >= 0) ::close(err_fd_);
  cgroup.Remove();

  rec.state = "exited";
  rec.finished_at_us = SystemClock().NowMicros();
  if (WIFSIGNALED(wait_status_)) {
    rec.signal = WTERMSIG(wait_status_);
    rec.exit_code = 128 + rec.signal;
  } else {
    rec.exit_code = WEXITSTATUS(wait_status_);
  }
  if (!exec_error_.empty()) rec.message = exec_error_ + "; " + rec.message;
  s = WriteStatus(rec);
  if (!s.ok()) {
    ShimLog("{}", s.message());
    return 1;
  }
  NotifyExecutor(rec.state);
  ShimLog("task exited: code {} signal {}", rec.exit_code, rec.signal);
  return 0;
}

}  // namespace

int RunShim(const std::string& task_dir) {
  char* real = ::realpath(task_dir.c_str(), nullptr);
  if (real == nullptr) {
    std::fprintf(stderr, "lathe shim: %s: %s\n", task_dir.c_str(), std::strerror(errno));
    return 2;
  }
  std::string dir = real;
  std::free(real);

  // Detach: the caller (the server, through Launch) reaps this process at
  // once; the supervisor below is reparented to init (or a subreaper) and
  // leads its own session, so it survives the server.
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    std::fprintf(stderr, "lathe shim: fork: %s\n", std::strerror(errno));
    return 1;
  }
  if (pid > 0) return 0;
  ::setsid();
  int null_fd = ::open("/dev/null", O_RDWR);
  std::string log_path = dir + "/" + local::kShimLogFile;
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
  if (log_fd < 0) log_fd = null_fd;
  if (log_fd >= 0) {
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
  }
  if (null_fd > STDERR_FILENO) ::close(null_fd);
  if (log_fd > STDERR_FILENO && log_fd != null_fd) ::close(log_fd);
  return Supervisor(std::move(dir)).Run();
}

}  // namespace lathe::exec
