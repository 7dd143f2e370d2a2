#include "control/controller.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <fmt/core.h>

#include "base/log.h"
#include "base/subprocess.h"
#include "sched/scheduler.h"
#include "spec/rendezvous.h"
#include "tracking/tracking.h"

namespace lathe::control {

using exec::TaskKey;
using exec::TaskState;
using exec::TaskStatus;
using store::Tx;
using store::TxMode;

namespace {

constexpr int64_t kMicros = 1'000'000;
constexpr int64_t kMaxBackoffSeconds = 300;
constexpr const char* kLocalHost = "127.0.0.1";
// Jobs admitted per transaction before their tasks start (see ScheduleJobs).
constexpr size_t kAdmitChunk = 8;
constexpr size_t kLaunchThreads = 4;
// A task whose shim never took it over after this many launches fails.
constexpr int kMaxLaunches = 5;
// The stop intents a running job can carry in `reason` while its tasks end.
constexpr std::string_view kReasonTaskFailed = "TaskFailed";
constexpr std::string_view kReasonTaskLost = "TaskLost";
constexpr std::string_view kReasonCompleted = "Completing";
constexpr std::string_view kReasonPreempted = "Preempted";

// A free TCP port on loopback (bound, read back, released).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// Runs argv to completion; OK when it exits 0.
Status RunCommand(const std::vector<std::string>& argv) {
  std::string err;
  ASSIGN_OR_RETURN(int code, RunQuietProcess(argv, &err));
  if (code == 0) return OkStatus();
  return InternalError(fmt::format("{} exited with {}: {}", argv[0], code, err));
}

TaskKey KeyOf(const JobRecord& job, const TaskRecord& t) {
  return TaskKey{job.id, job.attempt, t.role, t.index};
}

// The role whose tasks decide success, by framework (Kubeflow's defaults):
// pytorch/xgboost: master 0 (else every worker); tensorflow: chief 0 (else
// every worker); mpi: the launcher; none: every task.
bool Succeeded(const JobRecord& job, const std::vector<TaskStatus>& st) {
  auto exited_ok = [&](const std::string& role, int index) {
    for (size_t i = 0; i < job.tasks.size(); ++i) {
      if (job.tasks[i].role == role && job.tasks[i].index == index) {
        return st[i].state == TaskState::kExited && st[i].exit_code == 0;
      }
    }
    return false;
  };
  auto has_role = [&](const std::string& role) {
    return std::any_of(job.tasks.begin(), job.tasks.end(),
                       [&](const TaskRecord& t) { return t.role == role; });
  };
  auto all_of_role = [&](const std::string& role) {
    for (size_t i = 0; i < job.tasks.size(); ++i) {
      if (!role.empty() && job.tasks[i].role != role) continue;
      if (!(st[i].state == TaskState::kExited && st[i].exit_code == 0)) return false;
    }
    return true;
  };
  switch (job.spec.framework) {
    case spec::Framework::kPyTorch:
    case spec::Framework::kXgboost:
      return has_role("master") ? exited_ok("master", 0) : all_of_role("worker");
    case spec::Framework::kTensorFlow:
      return has_role("chief") ? exited_ok("chief", 0) : all_of_role("worker");
    case spec::Framework::kMpi:
      return exited_ok("launcher", 0);
    case spec::Framework::kNone:
      break;
  }
  return all_of_role("");
}

bool Ended(const TaskStatus& s) {
  return s.state == TaskState::kExited || s.state == TaskState::kLost ||
         s.state == TaskState::kUnknown;
}

// Copies what the executor reports of a task into its stored record.
void Record(TaskRecord& t, const TaskStatus& s) {
  t.state = std::string(exec::TaskStateName(s.state));
  if (s.started_at_us > 0) t.started_at = s.started_at_us;
  if (s.state == TaskState::kExited) {
    t.exit_code = s.exit_code;
    t.signal = s.signal;
    t.finished_at = s.finished_at_us;
  }
}

int64_t BackoffSeconds(const spec::Restart& r, int restarts) {
  int64_t b = std::max<int64_t>(r.backoff_seconds, 0);
  for (int i = 0; i < restarts && b < kMaxBackoffSeconds; ++i) b *= 2;
  return std::min(b, kMaxBackoffSeconds);
}

CounterChild& TransitionsMetric() {
  static Counter& family = DefaultRegistry().AddCounter(
      "lathe_job_transitions_total", "Job phase transitions written by the job controller.");
  return family.With({});
}

HistogramChild& PassSecondsMetric() {
  static Histogram& family = DefaultRegistry().AddHistogram(
      "lathe_job_controller_pass_seconds", "Duration of one job controller pass.", {});
  return family.With({});
}

}  // namespace

struct JobController::Impl {
  store::Store& store;
  tenancy::TenancyService& tenancy;
  exec::Executor& executor;
  const Clock& clock;
  ControllerOptions options;
  sched::Policy policy;

  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  bool poked = false;
  bool events_hooked = false;  // the executor calls Poke() (Start() to Stop())

  mutable std::mutex reasons_mu;
  std::unordered_map<std::string, std::string> reasons;  // guarded by reasons_mu

  // Controller-thread state.
  SpecCache spec_cache;
  std::unordered_map<std::string, std::string> secrets;  // job id/attempt -> LATHE_TOKEN
  std::set<TaskKey> killed;                              // Kill sent (this process)
  std::map<TaskKey, int> launch_counts;                  // Launch calls (this process)
  int64_t last_ttl_sweep_us = 0;

  CounterChild& transitions;
  HistogramChild& pass_seconds;

  Impl(store::Store& s, tenancy::TenancyService& t, exec::Executor& e, const Clock& c,
       ControllerOptions o)
      : store(s),
        tenancy(t),
        executor(e),
        clock(c),
        options(std::move(o)),
        transitions(TransitionsMetric()),
        pass_seconds(PassSecondsMetric()) {}

  Status Pass();
  Status Save(JobRecord& job, Phase expected, Phase next, std::string reason, std::string message,
              const std::string& type = "Normal");
  Status Observe(JobRecord& job);
  Status StopTasks(JobRecord& job, const std::vector<TaskStatus>& st);
  Status Finalize(JobRecord& job, Phase expected, const std::vector<TaskStatus>& st);
  Status Launch(JobRecord& job, const std::vector<TaskStatus>& st);
  Status PrepareLaunches(JobRecord& job, const std::vector<TaskStatus>& st,
                         std::vector<exec::TaskLaunch>* out);
  // Starts `launches` on up to kLaunchThreads threads (their file syncs
  // overlap); returns the first error.
  Status LaunchAll(const std::vector<exec::TaskLaunch>& launches);
  Status ScheduleJobs(std::vector<JobRecord>& jobs, const std::vector<sched::Node>& nodes,
                      const std::vector<QueueRecord>& queues);
  Status SweepExpired();
  // The job's tracking run: created (with its experiment) before the first
  // launch when the spec asks for one; ended with the job.
  Status EnsureRun(JobRecord& job);
  void EndRun(const JobRecord& job);
  StatusOr<std::vector<TaskStatus>> ObserveTasks(const JobRecord& job);
  StatusOr<std::string> PrepareWorkdir(const JobRecord& job, const TaskRecord& t);
  std::string SecretKey(const JobRecord& job) const { return fmt::format("{}/{}", job.id, job.attempt); }
};

// ---------------------------------------------------------------- transitions

Status JobController::Impl::Save(JobRecord& job, Phase expected, Phase next, std::string reason,
                                 std::string message, const std::string& type) {
  job.phase = next;
  job.reason = std::move(reason);
  job.message = std::move(message);
  const int64_t now = clock.NowMicros();
  if (IsTerminal(next)) job.finished_at = now;
  JobEvent ev{0, now, type, job.reason, job.message};
  bool saved = false;
  RETURN_IF_ERROR(store::RunInTx(store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(saved, SaveTransition(tx, job, expected, ev));
    if (saved && IsTerminal(next)) {
      RETURN_IF_ERROR(tenancy.RevokeTokensNamed(tx, "job-" + job.id));
    }
    return OkStatus();
  }));
  if (!saved) return AbortedError(fmt::format("job {} changed phase concurrently", job.id));
  if (IsTerminal(next)) {
    tenancy.ForgetCachedTokens();
    spec_cache.erase(job.id);
    EndRun(job);
    if (options.on_job_terminal) options.on_job_terminal(job);
  }
  if (expected != next) {
    transitions.Increment();
    LOG_INFO("job {} ({}/{}): {} -> {} ({}{}{})", job.id, job.project, job.spec.name,
             PhaseName(expected), PhaseName(next), job.reason, job.message.empty() ? "" : ": ",
             job.message);
  }
  return OkStatus();
}

StatusOr<std::vector<TaskStatus>> JobController::Impl::ObserveTasks(const JobRecord& job) {
  std::vector<TaskStatus> out;
  out.reserve(job.tasks.size());
  for (const TaskRecord& t : job.tasks) {
    ASSIGN_OR_RETURN(TaskStatus s, executor.Observe(KeyOf(job, t)));
    out.push_back(std::move(s));
  }
  return out;
}

// Kills every live task of the current attempt once (per process).
Status JobController::Impl::StopTasks(JobRecord& job, const std::vector<TaskStatus>& st) {
  for (size_t i = 0; i < job.tasks.size(); ++i) {
    if (Ended(st[i])) continue;
    TaskKey key = KeyOf(job, job.tasks[i]);
    if (killed.count(key)) continue;
    RETURN_IF_ERROR(executor.Kill(key));
    killed.insert(key);
  }
  return OkStatus();
}

// All tasks have ended: the job leaves the phase it is in for good.
Status JobController::Impl::Finalize(JobRecord& job, Phase expected,
                                     const std::vector<TaskStatus>& st) {
  int failed_code = -1;
  for (const TaskRecord& t : job.tasks) {
    if (failed_code < 0 && t.state == "exited" && t.exit_code != 0) failed_code = t.exit_code;
  }
  for (size_t i = 0; i < job.tasks.size(); ++i) {
    Record(job.tasks[i], st[i]);
    killed.erase(KeyOf(job, job.tasks[i]));
    launch_counts.erase(KeyOf(job, job.tasks[i]));
  }
  secrets.erase(SecretKey(job));
  if (job.cancel_requested) {
    return Save(job, expected, Phase::kCancelled, "Cancelled", "cancelled on request");
  }
  const std::optional<int64_t>& timeout = job.spec.timeout_seconds;
  if (timeout && job.started_at > 0 && clock.NowMicros() - job.started_at >= *timeout * kMicros) {
    return Save(job, expected, Phase::kTimedOut, "DeadlineExceeded",
                fmt::format("ran longer than its timeout of {}", spec::FormatDuration(*timeout)),
                "Warning");
  }
  if (job.reason == kReasonCompleted) {
    return Save(job, expected, Phase::kSucceeded, "Completed", job.message);
  }
  if (job.reason == kReasonPreempted) {
    const std::string msg = job.message;
    job.attempt += 1;
    job.tasks.clear();
    job.admitted_at = 0;
    job.not_before = 0;
    return Save(job, expected, Phase::kPending, "Preempted",
                fmt::format("{}; requeued as attempt {}", msg, job.attempt), "Warning");
  }
  // Failure: TaskFailed / TaskLost. The failing task's exit code was
  // recorded in job.tasks when the failure was detected (Observe, step 3).
  const std::string cause_msg = job.message;
  int cause_code = -1;
  if (job.reason == kReasonTaskFailed) cause_code = failed_code;
  const spec::Restart& r = job.spec.restart;
  bool restartable = false;
  switch (r.policy) {
    case spec::RestartPolicy::kNever: break;
    case spec::RestartPolicy::kOnFailure: restartable = true; break;
    case spec::RestartPolicy::kExitCodes:
      restartable = cause_code >= 0 &&
                    std::find(r.exit_codes.begin(), r.exit_codes.end(), cause_code) != r.exit_codes.end();
      break;
  }
  if (restartable && job.restarts < r.limit) {
    const int64_t backoff = BackoffSeconds(r, job.restarts);
    job.restarts += 1;
    job.attempt += 1;
    job.tasks.clear();
    job.admitted_at = 0;
    job.not_before = clock.NowMicros() + backoff * kMicros;
    return Save(job, expected, Phase::kPending, "Restarting",
                fmt::format("{}; restart {} of {} (the whole gang) in {}s", cause_msg, job.restarts,
                            r.limit, backoff),
                "Warning");
  }
  std::string reason = job.reason;
  std::string msg = cause_msg;
  if (restartable) {
    reason = "BackoffLimitExceeded";
    msg = fmt::format("{}; restart limit {} reached", cause_msg, r.limit);
  }
  return Save(job, expected, Phase::kFailed, reason, msg, "Warning");
}

// ---------------------------------------------------------------- launching

StatusOr<std::string> JobController::Impl::PrepareWorkdir(const JobRecord& job, const TaskRecord& t) {
  const spec::Role* role = nullptr;
  for (const spec::Role& r : job.spec.roles) {
    if (r.name == t.role) role = &r;
  }
  const std::string wd = role != nullptr ? role->working_dir : "";
  if (!wd.empty() && wd.front() == '/') return wd;
  if (job.code.empty()) return wd.empty() ? std::string() : wd;  // relative to the task dir
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(options.work_root) / job.id / std::to_string(job.attempt) /
                       fmt::format("{}-{}", t.role, t.index);
  std::error_code ec;
  if (!fs::exists(dir / ".lathe-ready", ec)) {
    const fs::path archive = fs::path(options.code_root) / (job.code + ".tar.gz");
    if (!fs::exists(archive, ec)) {
      return FailedPreconditionError(fmt::format("code snapshot {} is missing", job.code));
    }
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    if (ec) return InternalError(fmt::format("cannot create {}: {}", dir.string(), ec.message()));
    RETURN_IF_ERROR(RunCommand({"tar", "-xzf", archive.string(), "-C", dir.string(),
                                "--no-same-owner"}));
    RunCommand({"touch", (dir / ".lathe-ready").string()}).IgnoreError();
  }
  return wd.empty() ? dir.string() : (dir / wd).string();
}

Status JobController::Impl::Launch(JobRecord& job, const std::vector<TaskStatus>& st) {
  std::vector<exec::TaskLaunch> launches;
  RETURN_IF_ERROR(PrepareLaunches(job, st, &launches));
  for (const exec::TaskLaunch& l : launches) RETURN_IF_ERROR(executor.Launch(l));
  return OkStatus();
}

Status JobController::Impl::PrepareLaunches(JobRecord& job, const std::vector<TaskStatus>& st,
                                            std::vector<exec::TaskLaunch>* out) {
  if (Status run = EnsureRun(job); !run.ok()) {
    // The job runs without a run rather than not at all; its events say why.
    LOG_WARN("job {}: no tracking run: {}", job.id, run.ToString());
    job.spec.tracking_experiment.reset();
    Status ev = store::RunInTx(store, TxMode::kWrite, [&](Tx& tx) {
      return AppendEvent(tx, job.id,
                         {0, clock.NowMicros(), "Warning", "TrackingRunFailed", run.message()});
    });
    ev.IgnoreError();
  }
  // Rendezvous addresses of every task of this attempt.
  std::vector<spec::TaskAddress> addrs;
  for (const TaskRecord& t : job.tasks) addrs.push_back({t.role, t.index, t.host, t.port, t.node});
  const bool mpi = job.spec.framework == spec::Framework::kMpi;
  bool workers_up = true;
  if (mpi) {
    for (size_t i = 0; i < job.tasks.size(); ++i) {
      if (job.tasks[i].role != "launcher" && st[i].state != TaskState::kRunning) workers_up = false;
    }
  }
  auto secret = secrets.find(SecretKey(job));
  if (secret == secrets.end()) {
    // A token scoped to the job's project, for LATHE_TOKEN (revoked when the job ends).
    std::string token;
    RETURN_IF_ERROR(store::RunInTx(store, TxMode::kWrite, [&](Tx& tx) -> Status {
      ASSIGN_OR_RETURN(tenancy::Token t,
                       tenancy.MintScopedToken(tx, job.created_by_id, job.project_id,
                                               "job-" + job.id, 0));
      token = t.secret;
      return OkStatus();
    }));
    secret = secrets.emplace(SecretKey(job), token).first;
  }
  for (size_t i = 0; i < job.tasks.size(); ++i) {
    const TaskRecord& t = job.tasks[i];
    if (st[i].state != TaskState::kUnknown) continue;  // launched before
    if (mpi && t.role == "launcher" && !workers_up) continue;
    const spec::Role* role = nullptr;
    for (const spec::Role& r : job.spec.roles) {
      if (r.name == t.role) role = &r;
    }
    if (role == nullptr) return InternalError(fmt::format("job {}: no role {}", job.id, t.role));
    exec::TaskLaunch l;
    l.key = KeyOf(job, t);
    l.node = t.node;
    l.argv = role->command;
    l.argv.insert(l.argv.end(), role->args.begin(), role->args.end());
    if (l.argv.empty()) {
      // MPI workers without a command are held for the launcher's mpirun.
      l.argv = {"sleep", "infinity"};
    }
    l.env = role->env;
    ASSIGN_OR_RETURN(spec::TaskRendezvous rv, spec::RenderRendezvous(job.spec, addrs, t.role, t.index));
    for (auto& [k, v] : rv.env) l.env[k] = v;
    l.files = rv.files;
    l.file_env = rv.file_env;
    l.env["LATHE_SERVER"] = options.server_url;
    l.env["LATHE_TOKEN"] = secret->second;
    l.env["LATHE_PROJECT"] = job.project;
    l.env["LATHE_JOB_ID"] = job.id;
    l.env["LATHE_JOB_NAME"] = job.spec.name;
    l.env["LATHE_ATTEMPT"] = std::to_string(job.attempt);
    if (!job.run_id.empty()) l.env["LATHE_RUN_ID"] = job.run_id;
    if (job.spec.pipeline) {
      const spec::JobSpec::PipelineContext& pc = *job.spec.pipeline;
      l.env["LATHE_PIPELINE_RUN_ID"] = pc.run_id;
      l.env["LATHE_PIPELINE_STEP"] = pc.node;
      l.env["LATHE_OUTPUTS"] = pc.outputs_dir;
      // The step writes its outputs into parameters/ and artifacts/; the
      // pipeline controller reads them there once the job succeeded.
      std::error_code ec;
      for (const char* sub : {"parameters", "artifacts"}) {
        std::filesystem::create_directories(std::filesystem::path(pc.outputs_dir) / sub, ec);
        if (ec) {
          return InternalError(fmt::format("job {}: cannot create {}/{}: {}", job.id,
                                           pc.outputs_dir, sub, ec.message()));
        }
      }
    }
    if (!options.python_path.empty()) {
      auto it = l.env.find("PYTHONPATH");
      l.env["PYTHONPATH"] = it == l.env.end() ? options.python_path
                                              : it->second + ":" + options.python_path;
    }
    ASSIGN_OR_RETURN(l.working_dir, PrepareWorkdir(job, t));
    const spec::Role& r = *role;
    l.resources = r.resources;
    l.gpu_indices = t.gpus;
    l.kill_grace_ms = options.kill_grace_ms;
    l.log_max_bytes = options.log_max_bytes;
    launch_counts[l.key] += 1;
    out->push_back(std::move(l));
  }
  return OkStatus();
}

Status JobController::Impl::LaunchAll(const std::vector<exec::TaskLaunch>& launches) {
  if (launches.size() <= 1) {
    return launches.empty() ? OkStatus() : executor.Launch(launches[0]);
  }
  std::vector<Status> results(launches.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next.fetch_add(1); i < launches.size(); i = next.fetch_add(1)) {
      results[i] = executor.Launch(launches[i]);
    }
  };
  std::vector<std::thread> threads;
  const size_t n = std::min(launches.size(), kLaunchThreads);
  for (size_t t = 1; t < n; ++t) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  for (const Status& st : results) RETURN_IF_ERROR(st);
  return OkStatus();
}

// ---------------------------------------------------------------- observing

Status JobController::Impl::Observe(JobRecord& job) {
  const Phase phase = job.phase;
  ASSIGN_OR_RETURN(std::vector<TaskStatus> st, ObserveTasks(job));
  const int64_t now = clock.NowMicros();
  const bool all_ended = std::all_of(st.begin(), st.end(), Ended);

  // 1. Stopping: cancel, deadline, or a decision taken in an earlier pass.
  const std::optional<int64_t>& timeout = job.spec.timeout_seconds;
  const bool deadline = timeout && job.started_at > 0 && now - job.started_at >= *timeout * kMicros;
  const bool stopping = job.cancel_requested || deadline || job.reason == kReasonTaskFailed ||
                        job.reason == kReasonTaskLost || job.reason == kReasonCompleted ||
                        job.reason == kReasonPreempted;
  if (stopping) {
    if (phase == Phase::kAdmitted) {
      // Nothing was launched (launch happens after the launching phase is stored).
      std::vector<TaskStatus> none(job.tasks.size());
      return Finalize(job, phase, none);
    }
    if (all_ended) return Finalize(job, phase, st);
    return StopTasks(job, st);
  }

  // 2. Admitted: store "launching" (and mint the job's token) before any
  // process starts, so a restart knows launches may have happened.
  if (phase == Phase::kAdmitted) {
    RETURN_IF_ERROR(Save(job, Phase::kAdmitted, Phase::kLaunching, "Launching",
                         fmt::format("starting {} tasks", job.tasks.size())));
    RETURN_IF_ERROR(Launch(job, st));
    return Observe(job);  // now launching: record what already started
  }

  // 3. Failures: a lost task or one that exited non-zero fails the attempt.
  for (size_t i = 0; i < st.size(); ++i) {
    const TaskRecord& t = job.tasks[i];
    auto launched = launch_counts.find(KeyOf(job, t));
    const bool never_started = st[i].state == TaskState::kUnknown &&
                               launched != launch_counts.end() && launched->second >= kMaxLaunches;
    const bool lost = st[i].state == TaskState::kLost || never_started;
    const bool failed = st[i].state == TaskState::kExited && st[i].exit_code != 0;
    if (!lost && !failed) continue;
    for (size_t k = 0; k < st.size(); ++k) {
      if (k != i && st[k].state == TaskState::kExited) continue;  // keep the cause unique
      Record(job.tasks[k], st[k]);
    }
    std::string msg = never_started
                          ? fmt::format("{}-{}: never started ({} launches, no supervisor took it over)",
                                        t.role, t.index, kMaxLaunches)
                      : lost ? fmt::format("{}-{}: its supervisor vanished (lost)", t.role, t.index)
                      : st[i].signal != 0
                          ? fmt::format("{}-{} was killed by signal {} (exit code {})", t.role,
                                        t.index, st[i].signal, st[i].exit_code)
                          : fmt::format("{}-{} exited with exit code {}", t.role, t.index,
                                        st[i].exit_code);
    if (all_ended) {
      job.reason = std::string(lost ? kReasonTaskLost : kReasonTaskFailed);
      job.message = msg;
      return Finalize(job, phase, st);
    }
    RETURN_IF_ERROR(Save(job, phase, phase,
                         std::string(lost ? kReasonTaskLost : kReasonTaskFailed), msg, "Warning"));
    return StopTasks(job, st);
  }

  // 4. Launching: start what is not started; running once every task ran.
  if (phase == Phase::kLaunching) {
    RETURN_IF_ERROR(Launch(job, st));
    const bool all_started = std::all_of(st.begin(), st.end(), [](const TaskStatus& s) {
      return s.state == TaskState::kRunning || s.state == TaskState::kExited;
    });
    if (!all_started) return OkStatus();
    for (size_t k = 0; k < st.size(); ++k) Record(job.tasks[k], st[k]);
    if (job.started_at == 0) job.started_at = now;
    const std::string limits =
        st.empty() || st[0].limits_enforced || st[0].message.empty() ? "" : "; " + st[0].message;
    RETURN_IF_ERROR(Save(job, Phase::kLaunching, Phase::kRunning, "Running",
                         fmt::format("all {} tasks started{}", st.size(), limits)));
  }

  // 5. Running: success by the framework's rule; stragglers are stopped.
  if (Succeeded(job, st)) {
    for (size_t k = 0; k < st.size(); ++k) Record(job.tasks[k], st[k]);
    job.reason = std::string(kReasonCompleted);
    job.message = all_ended ? "every task exited 0" : "the deciding tasks exited 0; stopping the rest";
    if (all_ended) return Finalize(job, Phase::kRunning, st);
    RETURN_IF_ERROR(Save(job, Phase::kRunning, Phase::kRunning, job.reason, job.message));
    return StopTasks(job, st);
  }
  return OkStatus();
}

// ---------------------------------------------------------------- scheduling

Status JobController::Impl::ScheduleJobs(std::vector<JobRecord>& jobs,
                                         const std::vector<sched::Node>& nodes,
                                         const std::vector<QueueRecord>& queues) {
  const int64_t now = clock.NowMicros();
  sched::Snapshot snap;
  snap.now = now / kMicros;
  snap.nodes = nodes;
  std::unordered_map<std::string, bool> leaf;  // queue name -> has no children
  for (const QueueRecord& q : queues) {
    snap.queues.push_back(spec::ToSchedQueue(q.spec));
    leaf.emplace(q.spec.name, true);
  }
  for (const QueueRecord& q : queues) {
    if (!q.spec.parent.empty()) leaf[q.spec.parent] = false;
  }
  std::unordered_map<std::string, std::string> unschedulable;  // job id -> why
  std::unordered_map<std::string, JobRecord*> by_id;
  for (JobRecord& j : jobs) {
    if (IsTerminal(j.phase)) continue;
    sched::Job sj = spec::ToSchedJob(j.spec, j.id, j.created_at / kMicros);
    auto q = leaf.find(j.spec.queue);
    if (q == leaf.end() || !q->second) {
      // Submit refuses these; a queue deleted or given children since must
      // not stop everyone else's scheduling.
      // (Queues with active jobs can neither be deleted nor get children,
      // so only pending jobs can be here.)
      unschedulable[j.id] = q == leaf.end()
                                ? fmt::format("queue {} no longer exists", j.spec.queue)
                                : fmt::format("queue {} is not a leaf queue", j.spec.queue);
      continue;
    }
    if (j.phase == Phase::kPending) {
      if (j.cancel_requested || j.not_before > now) continue;
      by_id[j.id] = &j;
      snap.pending.push_back(std::move(sj));
      continue;
    }
    sched::RunningJob rj;
    rj.start_time = (j.admitted_at > 0 ? j.admitted_at : now) / kMicros;
    for (const TaskRecord& t : j.tasks) {
      sched::TaskPlacement p;
      for (size_t g = 0; g < j.spec.roles.size(); ++g) {
        if (j.spec.roles[g].name == t.role) p.group = static_cast<int>(g);
      }
      p.index = t.index;
      p.node = t.node;
      const int64_t gpu = j.spec.roles[p.group].resources.gpu_milli;
      for (int idx : t.gpus) p.gpus.push_back({idx, gpu < 1000 ? gpu : 1000});
      rj.tasks.push_back(std::move(p));
    }
    rj.job = std::move(sj);
    snap.running.push_back(std::move(rj));
  }
  if (snap.pending.empty()) {
    std::lock_guard<std::mutex> lock(reasons_mu);
    reasons = std::move(unschedulable);
    return OkStatus();
  }
  if (Status v = sched::ValidateSnapshot(snap); !v.ok()) {
    return InternalError("scheduler snapshot is invalid: " + v.ToString());
  }
  sched::Plan plan = sched::Schedule(snap, policy);

  // Binds: persist the placement (admitted) for all of them in one transaction.
  std::vector<JobRecord*> admitted;
  std::vector<JobRecord> updated;
  for (const sched::Bind& b : plan.binds) {
    auto it = by_id.find(b.job_id);
    if (it == by_id.end()) continue;
    JobRecord j = *it->second;
    j.tasks.clear();
    for (const sched::TaskPlacement& p : b.tasks) {
      TaskRecord t;
      t.role = j.spec.roles[p.group].name;
      t.index = p.index;
      t.node = p.node;
      for (const sched::GpuShare& g : p.gpus) t.gpus.push_back(g.index);
      t.host = kLocalHost;
      for (const sched::Node& n : nodes) {
        auto h = n.labels.find("lathe.dev/host");
        if (n.name == p.node && h != n.labels.end()) t.host = h->second;
      }
      t.port = FreePort();
      j.tasks.push_back(std::move(t));
    }
    std::sort(j.tasks.begin(), j.tasks.end(), [&](const TaskRecord& a, const TaskRecord& c) {
      auto order = [&](const std::string& role) {
        for (size_t g = 0; g < j.spec.roles.size(); ++g) {
          if (j.spec.roles[g].name == role) return g;
        }
        return j.spec.roles.size();
      };
      return std::make_pair(order(a.role), a.index) < std::make_pair(order(c.role), c.index);
    });
    j.phase = Phase::kAdmitted;
    j.admitted_at = now;
    std::set<std::string> where;
    for (const TaskRecord& t : j.tasks) where.insert(t.node);
    std::string nodes_text;
    for (const std::string& n : where) nodes_text += (nodes_text.empty() ? "" : ", ") + n;
    j.reason = "Admitted";
    j.message = fmt::format("{} tasks placed on {} (attempt {})", j.tasks.size(), nodes_text, j.attempt);
    updated.push_back(std::move(j));
  }
  // Admit in small chunks: each chunk's transitions (admitted, then
  // launching with the job's token) commit in one transaction, then its
  // tasks start, so a burst of admissions does not wait behind one another.
  for (size_t begin = 0; begin < updated.size(); begin += kAdmitChunk) {
    const size_t end = std::min(updated.size(), begin + kAdmitChunk);
    std::vector<bool> saved(end - begin, false);
    std::vector<std::string> tokens(end - begin);
    const int64_t at = clock.NowMicros();
    RETURN_IF_ERROR(store::RunInTx(store, TxMode::kWrite, [&](Tx& tx) -> Status {
      for (size_t i = begin; i < end; ++i) {
        JobRecord& j = updated[i];
        j.phase = Phase::kAdmitted;
        j.admitted_at = at;
        ASSIGN_OR_RETURN(bool ok, SaveTransition(tx, j, Phase::kPending,
                                                 {0, at, "Normal", j.reason, j.message}));
        saved[i - begin] = ok;
        if (!ok) continue;
        ASSIGN_OR_RETURN(tenancy::Token t, tenancy.MintScopedToken(tx, j.created_by_id, j.project_id,
                                                                   "job-" + j.id, 0));
        tokens[i - begin] = t.secret;
        j.phase = Phase::kLaunching;
        j.reason = "Launching";
        j.message = fmt::format("starting {} tasks", j.tasks.size());
        ASSIGN_OR_RETURN(ok, SaveTransition(tx, j, Phase::kAdmitted,
                                            {0, at, "Normal", j.reason, j.message}));
      }
      return OkStatus();
    }));
    std::vector<exec::TaskLaunch> launches;
    for (size_t i = begin; i < end; ++i) {
      if (!saved[i - begin]) continue;
      transitions.Increment();
      transitions.Increment();
      JobRecord& j = *by_id[updated[i].id];
      j = std::move(updated[i]);
      secrets[SecretKey(j)] = tokens[i - begin];
      std::vector<TaskStatus> none(j.tasks.size());
      if (Status st = PrepareLaunches(j, none, &launches); !st.ok()) {
        LOG_WARN("job {}: {}", j.id, st.ToString());
      }
    }
    // A failed launch is retried by the next pass (Observe sees kUnknown).
    if (Status st = LaunchAll(launches); !st.ok()) LOG_WARN("launching tasks: {}", st.ToString());
  }

  // Preemptions: the victim's tasks stop; Finalize requeues it.
  for (const sched::Preemption& p : plan.preemptions) {
    for (JobRecord& j : jobs) {
      if (j.id != p.job_id || IsTerminal(j.phase) || j.phase == Phase::kPending) continue;
      RETURN_IF_ERROR(Save(j, j.phase, j.phase, std::string(kReasonPreempted),
                           fmt::format("preempted for job {}: {}", p.for_job_id, p.reason),
                           "Warning"));
    }
  }

  std::lock_guard<std::mutex> lock(reasons_mu);
  reasons = std::move(unschedulable);
  for (const sched::PendingReason& r : plan.pending) reasons[r.job_id] = r.reason;
  return OkStatus();
}

Status JobController::Impl::EnsureRun(JobRecord& job) {
  if (options.tracking == nullptr || !job.spec.tracking_experiment || !job.run_id.empty()) {
    return OkStatus();
  }
  ASSIGN_OR_RETURN(tenancy::Principal p, tenancy.PrincipalForUser(job.created_by_id));
  const std::string& name = *job.spec.tracking_experiment;
  auto exp = options.tracking->GetExperimentByName(p, job.project, name);
  if (exp.status().code() == StatusCode::kNotFound) {
    exp = options.tracking->CreateExperiment(p, job.project, name, {});
    if (exp.status().code() == StatusCode::kAlreadyExists) {
      exp = options.tracking->GetExperimentByName(p, job.project, name);
    }
  }
  RETURN_IF_ERROR(exp.status());
  tracking::CreateRun req;
  req.experiment_id = exp->id;
  req.run_name = job.spec.name;
  req.user_id = job.created_by;
  req.job_id = job.id;
  req.tags = {{"lathe.job_id", job.id}, {"lathe.job_name", job.spec.name}};
  // Lineage (docs/registry.md): the code snapshot the job ran.
  if (!job.code.empty()) req.tags.push_back({"lathe.code_digest", job.code});
  if (job.spec.pipeline) {
    req.tags.push_back({"lathe.pipeline_run_id", job.spec.pipeline->run_id});
    req.tags.push_back({"lathe.pipeline_step", job.spec.pipeline->node});
  }
  ASSIGN_OR_RETURN(tracking::Run run, options.tracking->CreateRun(p, job.project, req));
  RETURN_IF_ERROR(store::RunInTx(store, TxMode::kWrite, [&](Tx& tx) -> Status {
    RETURN_IF_ERROR(SetJobRun(tx, job.id, run.info.run_id));
    return AppendEvent(tx, job.id,
                       {0, clock.NowMicros(), "Normal", "TrackingRun",
                        fmt::format("run {} in experiment {} (LATHE_RUN_ID)", run.info.run_id, name)});
  }));
  job.run_id = run.info.run_id;
  return OkStatus();
}

void JobController::Impl::EndRun(const JobRecord& job) {
  if (options.tracking == nullptr || job.run_id.empty()) return;
  tracking::RunStatus status = tracking::RunStatus::kFailed;
  if (job.phase == Phase::kSucceeded) status = tracking::RunStatus::kFinished;
  if (job.phase == Phase::kCancelled) status = tracking::RunStatus::kKilled;
  auto p = tenancy.PrincipalForUser(job.created_by_id);
  Status st = p.status();
  if (st.ok()) {
    st = options.tracking
             ->UpdateRun(*p, job.project, job.run_id, status, clock.NowMicros() / 1000, std::nullopt)
             .status();
  }
  if (!st.ok()) LOG_WARN("job {}: could not end its tracking run {}: {}", job.id, job.run_id, st.ToString());
}

Status JobController::Impl::SweepExpired() {
  const int64_t now = clock.NowMicros();
  if (now - last_ttl_sweep_us < 5 * kMicros) return OkStatus();
  last_ttl_sweep_us = now;
  std::vector<std::string> ids;
  RETURN_IF_ERROR(store::RunInTx(store, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ids, ExpiredJobs(tx, now));
    return OkStatus();
  }));
  for (const std::string& id : ids) {
    Status rm = executor.Remove(id);
    if (!rm.ok() && rm.code() != StatusCode::kNotFound) {
      LOG_WARN("job {}: TTL cleanup of its tasks failed: {}", id, rm.ToString());
      continue;
    }
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(options.work_root) / id, ec);
    RETURN_IF_ERROR(store::RunInTx(store, TxMode::kWrite, [&](Tx& tx) { return DeleteJob(tx, id); }));
    LOG_INFO("job {}: removed after its TTL", id);
  }
  return OkStatus();
}

Status JobController::Impl::Pass() {
  const int64_t start = clock.MonotonicNanos();
  std::vector<JobRecord> jobs;
  std::vector<QueueRecord> queues;
  RETURN_IF_ERROR(store::RunInTx(store, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(jobs, LoadActiveJobs(tx, &spec_cache));
    ASSIGN_OR_RETURN(queues, LoadQueues(tx));
    return OkStatus();
  }));
  // Observe and advance every job that holds resources; pending jobs that
  // were cancelled end here too.
  for (JobRecord& j : jobs) {
    Status st;
    if (j.phase == Phase::kPending) {
      if (j.cancel_requested) st = Save(j, Phase::kPending, Phase::kCancelled, "Cancelled", "cancelled while pending");
    } else {
      st = Observe(j);
    }
    if (!st.ok() && st.code() != StatusCode::kAborted) {
      LOG_WARN("job {}: {}", j.id, st.ToString());
    }
  }
  ASSIGN_OR_RETURN(std::vector<sched::Node> nodes, executor.Inventory());
  RETURN_IF_ERROR(ScheduleJobs(jobs, nodes, queues));
  RETURN_IF_ERROR(SweepExpired());
  pass_seconds.Observe(static_cast<double>(clock.MonotonicNanos() - start) / 1e9);
  return OkStatus();
}

// ---------------------------------------------------------------- JobController

JobController::JobController(store::Store& store, tenancy::TenancyService& tenancy,
                             exec::Executor& executor, const Clock& clock, ControllerOptions options)
    : impl_(std::make_unique<Impl>(store, tenancy, executor, clock, std::move(options))),
      executor_(executor) {
  auto policy = sched::NamedPolicy(impl_->options.policy);
  if (policy.ok()) {
    impl_->policy = *policy;
  } else {
    LOG_WARN("scheduler policy \"{}\": {}; using \"lathe\"", impl_->options.policy,
             policy.status().message());
    impl_->policy = *sched::NamedPolicy("lathe");
  }
}

JobController::~JobController() { Stop(); }

void JobController::SetServerUrl(std::string url) { impl_->options.server_url = std::move(url); }

void JobController::Start() {
  // A task that started or ended is seen at once rather than on the next
  // resync (issue 7: step-to-step dispatch); Stop() clears it first.
  impl_->executor.SetTaskEventCallback([this] { Poke(); });
  impl_->events_hooked = true;
  impl_->thread = std::thread([this] {
    std::unique_lock<std::mutex> lock(impl_->mu);
    while (!impl_->stop) {
      impl_->poked = false;
      lock.unlock();
      if (Status st = impl_->Pass(); !st.ok()) LOG_WARN("job controller pass: {}", st.ToString());
      lock.lock();
      if (impl_->stop) break;
      if (!impl_->poked) {
        impl_->cv.wait_for(lock, std::chrono::milliseconds(impl_->options.resync_interval_ms),
                           [this] { return impl_->stop || impl_->poked; });
      }
    }
  });
}

void JobController::Stop() {
  // Before anything stops: once this returns the executor's thread is not
  // inside Poke() and never enters it again, so this object may go away.
  if (impl_->events_hooked) {
    impl_->executor.SetTaskEventCallback(nullptr);
    impl_->events_hooked = false;
  }
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void JobController::Poke() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->poked = true;
  }
  impl_->cv.notify_all();
}

Status JobController::RunPass() { return impl_->Pass(); }

std::string JobController::PendingReason(const std::string& job_id) const {
  std::lock_guard<std::mutex> lock(impl_->reasons_mu);
  auto it = impl_->reasons.find(job_id);
  return it == impl_->reasons.end() ? std::string() : it->second;
}

Status JobController::CheckFits(const spec::JobSpec& spec) {
  ASSIGN_OR_RETURN(std::vector<sched::Node> nodes, executor_.Inventory());
  sched::Resources total;
  for (const sched::Node& n : nodes) {
    if (n.schedulable) total += n.capacity;
  }
  sched::Resources gang;
  for (size_t i = 0; i < spec.roles.size(); ++i) {
    const spec::Role& r = spec.roles[i];
    const sched::Node* largest = nullptr;
    bool fits = false;
    for (const sched::Node& n : nodes) {
      if (!n.schedulable) continue;
      bool selected = std::all_of(spec.node_selector.begin(), spec.node_selector.end(),
                                  [&](const auto& kv) {
                                    auto it = n.labels.find(kv.first);
                                    return it != n.labels.end() && it->second == kv.second;
                                  });
      if (!selected) continue;
      if (largest == nullptr || n.capacity.cpu_milli > largest->capacity.cpu_milli) largest = &n;
      if (r.resources.FitsIn(n.capacity)) fits = true;
    }
    const std::string field = fmt::format("roles[{}].resources", i);
    if (largest == nullptr) {
      return InvalidArgumentError(
          fmt::format("node_selector: no node has all of the labels asked for (role {})", r.name),
          "node_selector");
    }
    if (!fits) {
      return InvalidArgumentError(
          fmt::format("{}: role {} asks for cpu {}, memory {}, gpu {} per replica; no node can "
                      "hold that (largest: {} with cpu {}, memory {}, gpu {})",
                      field, r.name, spec::FormatCpu(r.resources.cpu_milli),
                      spec::FormatMemory(r.resources.memory_mib), spec::FormatGpu(r.resources.gpu_milli),
                      largest->name, spec::FormatCpu(largest->capacity.cpu_milli),
                      spec::FormatMemory(largest->capacity.memory_mib),
                      spec::FormatGpu(largest->capacity.gpu_milli)),
          field);
    }
    gang += r.resources * r.replicas;
  }
  if (!gang.FitsIn(total)) {
    return InvalidArgumentError(
        fmt::format("roles: the whole job asks for cpu {}, memory {}, gpu {}; the cluster has cpu "
                    "{}, memory {}, gpu {} in all",
                    spec::FormatCpu(gang.cpu_milli), spec::FormatMemory(gang.memory_mib),
                    spec::FormatGpu(gang.gpu_milli), spec::FormatCpu(total.cpu_milli),
                    spec::FormatMemory(total.memory_mib), spec::FormatGpu(total.gpu_milli)),
        "roles");
  }
  return OkStatus();
}

}  // namespace lathe::control
