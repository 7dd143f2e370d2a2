#include "exec/local/local_executor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>

#include <fmt/core.h>

#include "base/clock.h"
#include "exec/local/task_dir.h"

namespace lathe::exec {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Clock = std::chrono::steady_clock;

bool WaitFor(const std::function<bool()>& done, int timeout_ms = 10000) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

// Gone or a zombie (dead, waiting for its parent to reap it).
bool IsGone(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  return paren == std::string::npos || (paren + 2 < text.size() && text[paren + 2] == 'Z');
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Counts task event callbacks, with the wall-clock time (the shims' clock
// for started_at / finished_at) of each.
class EventRecorder {
 public:
  std::function<void()> Callback() {
    return [this] {
      std::lock_guard<std::mutex> lock(mu_);
      calls_.push_back(SystemClock().NowMicros());
    };
  }
  std::vector<int64_t> calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  // The first call at or after `us`, or -1.
  int64_t FirstAtOrAfter(int64_t us) {
    for (int64_t t : calls()) {
      if (t >= us) return t;
    }
    return -1;
  }

 private:
  std::mutex mu_;
  std::vector<int64_t> calls_;  // guarded by mu_
};

bool DirIsEmpty(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_empty(dir, ec);
}

class LocalExecutorTest : public ::testing::Test {
 protected:
  // Shims (and orphaned tasks) reparent to the test process, so TearDown can
  // reap them and prove that nothing is left behind.
  static void SetUpTestSuite() { ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0); }

  void SetUp() override {
    char tmpl[] = "/tmp/lathe_exec_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    exec_ = NewExecutor();
  }

  void TearDown() override {
    std::error_code ec;
    for (const auto& job : fs::directory_iterator(root_, ec)) {
      StatusOr<std::vector<TaskStatus>> tasks = exec_->ObserveJob(job.path().filename().string());
      if (!tasks.ok()) continue;
      for (const TaskStatus& t : *tasks) exec_->Kill(t.key).IgnoreError();
    }
    // Every shim and task exits and is reaped: no child of ours remains.
    bool all_reaped = WaitFor([] {
      while (::waitpid(-1, nullptr, WNOHANG) > 0) {
      }
      return errno == ECHILD;
    });
    EXPECT_TRUE(all_reaped) << "processes left behind";
    fs::remove_all(root_, ec);
  }

  std::unique_ptr<Executor> NewExecutor(const std::string& shim = LATHE_SHIM_TEST_MAIN,
                                        const std::string& cgroup_base = "") {
    LocalExecutorOptions o;
    o.root = root_;
    o.shim_path = shim;
    o.cgroup_base = cgroup_base;
    return NewLocalExecutor(o);
  }

  TaskLaunch Sh(const std::string& job, const std::string& script) {
    TaskLaunch l;
    l.key = TaskKey{job, 0, "worker", 0};
    l.node = "local";
    l.argv = {"/bin/sh", "-c", script};
    l.kill_grace_ms = 2000;
    return l;
  }

  std::string Dir(const TaskKey& key) { return root_ + "/" + key.Path(); }
  std::string EventsDir() { return root_ + "/" + local::kEventsDir; }

  TaskStatus WaitState(const TaskKey& key, TaskState want, int timeout_ms = 10000) {
    TaskStatus last;
    WaitFor(
        [&] {
          StatusOr<TaskStatus> st = exec_->Observe(key);
          if (st.ok()) last = *st;
          return st.ok() && st->state == want;
        },
        timeout_ms);
    EXPECT_EQ(TaskStateName(last.state), TaskStateName(want)) << key.Path() << ": " << last.message;
    return last;
  }

  std::string ReadAll(const TaskKey& key, LogStream stream) {
    std::string out;
    int64_t offset = 0;
    for (;;) {
      StatusOr<LogChunk> c = exec_->ReadLog(key, stream, offset, 7);
      EXPECT_TRUE(c.ok()) << c.status().ToString();
      if (!c.ok()) return out;
      out += c->data;
      offset = c->next_offset;
      if (c->eof) return out;
    }
  }

  // The shim drops its exit marker just after status.json says "exited".
  bool ExitAnnounced(const TaskKey& key) {
    return Slurp(Dir(key) + "/" + local::kShimLogFile).find("task exited") != std::string::npos;
  }

  std::string root_;
  EventRecorder events_;  // outlives exec_, which may call it until destroyed
  std::unique_ptr<Executor> exec_;
};

TEST(TaskKey, PathNamesJobAttemptRoleIndex) {
  EXPECT_EQ((TaskKey{"job-1", 2, "worker", 3}.Path()), "job-1/2/worker/3");
  EXPECT_EQ(TaskStateName(TaskState::kLost), "lost");
  EXPECT_EQ(TaskStateName(TaskState::kStarting), "starting");
}

TEST_F(LocalExecutorTest, InventoryIsThisMachineOrVirtualNodes) {
  StatusOr<std::vector<sched::Node>> nodes = exec_->Inventory();
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ((*nodes)[0].name, "local");
  EXPECT_EQ((*nodes)[0].capacity.cpu_milli, ::sysconf(_SC_NPROCESSORS_ONLN) * 1000);
  EXPECT_GT((*nodes)[0].capacity.memory_mib, 0);
  EXPECT_EQ((*nodes)[0].num_gpus, 0);
  EXPECT_EQ((*nodes)[0].labels.at("lathe.dev/executor"), "local");

  LocalExecutorOptions o;
  o.root = root_;
  o.shim_path = LATHE_SHIM_TEST_MAIN;
  o.virtual_nodes = 3;
  o.node_capacity = {4000, 8192, 2000};
  nodes = NewLocalExecutor(o)->Inventory();
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ(nodes->size(), 3u);
  EXPECT_EQ((*nodes)[2].name, "local-2");
  EXPECT_EQ((*nodes)[2].capacity, (sched::Resources{4000, 8192, 2000}));
  EXPECT_EQ((*nodes)[2].num_gpus, 2);
}

TEST_F(LocalExecutorTest, RunsEchoAndReadsItsLog) {
  TaskLaunch l = Sh("echo", "echo hi");
  l.argv = {"echo", "hi"};
  ASSERT_TRUE(exec_->Launch(l).ok());
  TaskStatus st = WaitState(l.key, TaskState::kExited);
  EXPECT_EQ(st.exit_code, 0);
  EXPECT_EQ(st.signal, 0);
  EXPECT_GT(st.pid, 0);
  EXPECT_GE(st.finished_at_us, st.started_at_us);
  EXPECT_EQ(ReadAll(l.key, LogStream::kStdout), "hi\n");
  EXPECT_EQ(ReadAll(l.key, LogStream::kStderr), "");
  StatusOr<LogChunk> c = exec_->ReadLog(l.key, LogStream::kStdout, 1, 100);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->data, "i\n");
  EXPECT_EQ(c->next_offset, 3);
  EXPECT_TRUE(c->eof);
}

TEST_F(LocalExecutorTest, ReportsExitCodesAndSignals) {
  TaskLaunch code = Sh("code", "echo oops >&2; exit 3");
  TaskLaunch sig = Sh("sig", "kill -9 $$");
  ASSERT_TRUE(exec_->Launch(code).ok());
  ASSERT_TRUE(exec_->Launch(sig).ok());
  TaskStatus st = WaitState(code.key, TaskState::kExited);
  EXPECT_EQ(st.exit_code, 3);
  EXPECT_EQ(st.signal, 0);
  EXPECT_EQ(ReadAll(code.key, LogStream::kStderr), "oops\n");
  st = WaitState(sig.key, TaskState::kExited);
  EXPECT_EQ(st.signal, SIGKILL);
  EXPECT_EQ(st.exit_code, 128 + SIGKILL);
}

TEST_F(LocalExecutorTest, SetsEnvFilesGpusAndWorkingDir) {
  ::setenv("LATHE_TEST_SERVER_SECRET", "leak", 1);
  std::string work = root_ + "/work";
  fs::create_directories(work);
  TaskLaunch l = Sh("env",
                    "echo \"$FOO\"; pwd; cat \"$CONFIG\"; echo \"$CUDA_VISIBLE_DEVICES\"; "
                    "echo \"[$LATHE_TEST_SERVER_SECRET]\"; test -n \"$PATH\" && echo path");
  l.env = {{"FOO", "bar baz"}};
  l.working_dir = work;
  l.files = {{"config.json", "{\"lr\":0.1}\n"}};
  l.file_env = {{"CONFIG", "config.json"}};
  l.gpu_indices = {1, 3};
  ASSERT_TRUE(exec_->Launch(l).ok());
  EXPECT_EQ(WaitState(l.key, TaskState::kExited).exit_code, 0);
  EXPECT_EQ(ReadAll(l.key, LogStream::kStdout),
            "bar baz\n" + work + "\n{\"lr\":0.1}\n1,3\n[]\npath\n");
  ::unsetenv("LATHE_TEST_SERVER_SECRET");

  // Without a working_dir the task runs in its own directory.
  TaskLaunch own = Sh("own", "pwd");
  ASSERT_TRUE(exec_->Launch(own).ok());
  WaitState(own.key, TaskState::kExited);
  EXPECT_EQ(ReadAll(own.key, LogStream::kStdout), Dir(own.key) + "\n");
}

TEST_F(LocalExecutorTest, RejectsBadLaunches) {
  TaskLaunch l = Sh("bad", "true");
  l.node = "elsewhere";
  EXPECT_EQ(exec_->Launch(l).field(), "node");
  l = Sh("bad", "true");
  l.files = {{"status.json", "x"}};
  EXPECT_EQ(exec_->Launch(l).code(), StatusCode::kInvalidArgument);
  l = Sh("bad", "true");
  l.key.role = "../x";
  EXPECT_EQ(exec_->Launch(l).field(), "key.role");
  l = Sh("bad", "true");
  l.argv.clear();
  EXPECT_EQ(exec_->Launch(l).field(), "argv");
  EXPECT_FALSE(fs::exists(root_ + "/bad"));
}

TEST_F(LocalExecutorTest, ExecFailureExits127WithTheError) {
  TaskLaunch l = Sh("noexec", "");
  l.argv = {"/nonexistent/program", "x"};
  ASSERT_TRUE(exec_->Launch(l).ok());
  TaskStatus st = WaitState(l.key, TaskState::kExited);
  EXPECT_EQ(st.exit_code, 127);
  EXPECT_THAT(st.message, HasSubstr("exec /nonexistent/program: No such file or directory"));
  EXPECT_THAT(ReadAll(l.key, LogStream::kStderr), HasSubstr("No such file or directory"));
}

TEST_F(LocalExecutorTest, MissingShimBinaryIsAnError) {
  auto broken = NewExecutor(root_ + "/no-such-lathe");
  Status s = broken->Launch(Sh("noshim", "true"));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
}

TEST_F(LocalExecutorTest, LaunchTwiceStartsOnce) {
  std::string count = root_ + "/count";
  TaskLaunch l = Sh("once", "echo started >> " + count + "; sleep 0.3");
  ASSERT_TRUE(exec_->Launch(l).ok());
  ASSERT_TRUE(exec_->Launch(l).ok());
  ASSERT_TRUE(NewExecutor()->Launch(l).ok());
  WaitState(l.key, TaskState::kExited);
  ASSERT_TRUE(exec_->Launch(l).ok());  // after it ended, too
  EXPECT_EQ(WaitState(l.key, TaskState::kExited).exit_code, 0);
  EXPECT_EQ(Slurp(count), "started\n");
}

TEST_F(LocalExecutorTest, ConcurrentLaunchesStartOnce) {
  std::string count = root_ + "/count";
  TaskLaunch l = Sh("race", "echo started >> " + count);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] { EXPECT_TRUE(NewExecutor()->Launch(l).ok()); });
  }
  for (auto& t : threads) t.join();
  WaitState(l.key, TaskState::kExited);
  EXPECT_EQ(Slurp(count), "started\n");
}

TEST_F(LocalExecutorTest, LaunchInterruptedBeforeTheShimIsCompletedByTheNextLaunch) {
  // A "shim" that does nothing stands for a server that died after writing
  // launch.json and before the shim took over.
  std::string count = root_ + "/count";
  TaskLaunch l = Sh("interrupted", "echo started >> " + count);
  EXPECT_FALSE(NewExecutor("/bin/true")->Launch(l).ok());
  StatusOr<TaskStatus> st = exec_->Observe(l.key);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->state, TaskState::kUnknown);
  ASSERT_TRUE(exec_->Launch(l).ok());
  EXPECT_EQ(WaitState(l.key, TaskState::kExited).exit_code, 0);
  EXPECT_EQ(Slurp(count), "started\n");
}

TEST_F(LocalExecutorTest, KillBeforeTheShimTookOverMeansItNeverStarts) {
  std::string count = root_ + "/count";
  TaskLaunch l = Sh("killed-early", "echo started >> " + count);
  EXPECT_FALSE(NewExecutor("/bin/true")->Launch(l).ok());
  ASSERT_TRUE(exec_->Kill(l.key).ok());
  ASSERT_TRUE(exec_->Launch(l).ok());
  TaskStatus st = WaitState(l.key, TaskState::kExited);
  EXPECT_EQ(st.signal, SIGTERM);
  EXPECT_EQ(st.message, "killed before start");
  EXPECT_FALSE(fs::exists(count));
  EXPECT_TRUE(exec_->Kill(TaskKey{"never", 0, "worker", 0}).ok());
}

TEST_F(LocalExecutorTest, KillLetsATaskThatTrapsTermExitCleanly) {
  TaskLaunch l =
      Sh("trap", "trap 'echo bye; exit 7' TERM; echo ready; while :; do sleep 0.05; done");
  ASSERT_TRUE(exec_->Launch(l).ok());
  ASSERT_TRUE(WaitFor([&] { return ReadAll(l.key, LogStream::kStdout) == "ready\n"; }));
  ASSERT_TRUE(exec_->Kill(l.key).ok());
  TaskStatus st = WaitState(l.key, TaskState::kExited);
  EXPECT_EQ(st.exit_code, 7);
  EXPECT_EQ(st.signal, 0);
  EXPECT_EQ(ReadAll(l.key, LogStream::kStdout), "ready\nbye\n");
}

TEST_F(LocalExecutorTest, KillEscalatesToSigkillAfterTheGracePeriod) {
  TaskLaunch l = Sh("stubborn", "trap '' TERM; echo ready; while :; do sleep 0.05; done");
  l.kill_grace_ms = 300;
  ASSERT_TRUE(exec_->Launch(l).ok());
  ASSERT_TRUE(WaitFor([&] { return ReadAll(l.key, LogStream::kStdout) == "ready\n"; }));
  auto start = Clock::now();
  ASSERT_TRUE(exec_->Kill(l.key).ok());
  ASSERT_TRUE(exec_->Kill(l.key).ok());  // repeated: the grace period is not restarted
  TaskStatus st = WaitState(l.key, TaskState::kExited);
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  EXPECT_EQ(st.signal, SIGKILL);
  EXPECT_GE(elapsed.count(), 280);
  EXPECT_LT(elapsed.count(), 5000);
  EXPECT_TRUE(exec_->Kill(l.key).ok());  // ended: still OK
}

TEST_F(LocalExecutorTest, ANewExecutorReattachesToARunningTask) {
  TaskLaunch l = Sh("reattach", "echo waiting; while [ ! -e go ]; do sleep 0.02; done; echo done");
  ASSERT_TRUE(exec_->Launch(l).ok());
  WaitState(l.key, TaskState::kRunning);
  exec_ = NewExecutor();  // the server restarted
  TaskStatus st = WaitState(l.key, TaskState::kRunning);
  EXPECT_THAT(st.message, StartsWith("limits "));
  StatusOr<std::vector<TaskStatus>> job = exec_->ObserveJob("reattach");
  ASSERT_TRUE(job.ok());
  ASSERT_EQ(job->size(), 1u);
  EXPECT_EQ((*job)[0].key, l.key);
  EXPECT_EQ((*job)[0].state, TaskState::kRunning);
  std::ofstream(Dir(l.key) + "/go") << "";
  EXPECT_EQ(WaitState(l.key, TaskState::kExited).exit_code, 0);
  EXPECT_EQ(ReadAll(l.key, LogStream::kStdout), "waiting\ndone\n");
}

TEST_F(LocalExecutorTest, ReadLogFollowsARunningTask) {
  TaskLaunch l = Sh("follow", "echo a; while [ ! -e go ]; do sleep 0.02; done; echo b");
  ASSERT_TRUE(exec_->Launch(l).ok());
  StatusOr<LogChunk> c = InternalError("not read yet");
  ASSERT_TRUE(WaitFor([&] {
    c = exec_->ReadLog(l.key, LogStream::kStdout, 0, 100);
    return c.ok() && c->data == "a\n";
  }));
  EXPECT_TRUE(c->eof);
  EXPECT_EQ(c->next_offset, 2);
  std::ofstream(Dir(l.key) + "/go") << "";
  WaitState(l.key, TaskState::kExited);
  c = exec_->ReadLog(l.key, LogStream::kStdout, 2, 100);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->data, "b\n");
  EXPECT_EQ(c->next_offset, 4);
  EXPECT_EQ(exec_->ReadLog(TaskKey{"nope", 0, "w", 0}, LogStream::kStdout, 0, 10).status().code(),
            StatusCode::kNotFound);
}

TEST_F(LocalExecutorTest, AShimKilledWithSigkillIsLostAndTakesItsTaskDown) {
  TaskLaunch l = Sh("lost", "");
  l.argv = {"sleep", "30"};
  ASSERT_TRUE(exec_->Launch(l).ok());
  TaskStatus st = WaitState(l.key, TaskState::kRunning);
  pid_t task = static_cast<pid_t>(st.pid);
  pid_t shim = static_cast<pid_t>(std::stol(Slurp(Dir(l.key) + "/shim.pid")));
  ASSERT_GT(task, 0);
  ASSERT_NE(task, shim);
  ASSERT_EQ(::kill(shim, SIGKILL), 0);
  st = WaitState(l.key, TaskState::kLost);
  EXPECT_THAT(st.message, HasSubstr("vanished"));
  EXPECT_TRUE(WaitFor([&] { return IsGone(task); })) << "the task outlived its shim";
  EXPECT_TRUE(exec_->Kill(l.key).ok());
  EXPECT_TRUE(exec_->Launch(l).ok());  // never restarted under the same key
  EXPECT_EQ(WaitState(l.key, TaskState::kLost).pid, task);
}

TEST_F(LocalExecutorTest, NothingOfATaskOutlivesIt) {
  // A background child in the task's process group and one that left it
  // with setsid: both die when the task's main process exits.
  TaskLaunch l =
      Sh("orphans", "sleep 30 & echo $! > bg; setsid sleep 30 & echo $! > escaped; exit 0");
  ASSERT_TRUE(exec_->Launch(l).ok());
  EXPECT_EQ(WaitState(l.key, TaskState::kExited).exit_code, 0);
  pid_t bg = static_cast<pid_t>(std::stol(Slurp(Dir(l.key) + "/bg")));
  pid_t escaped = static_cast<pid_t>(std::stol(Slurp(Dir(l.key) + "/escaped")));
  EXPECT_TRUE(WaitFor([&] { return IsGone(bg); }));
  EXPECT_TRUE(WaitFor([&] { return IsGone(escaped); }));
}

TEST_F(LocalExecutorTest, RotatesLogsAndKeepsOffsetsAcrossRotation) {
  TaskLaunch l =
      Sh("rotate", "i=0; while [ $i -lt 100 ]; do printf 'line%03d\\n' $i; i=$((i+1)); done");
  l.log_max_bytes = 100;
  ASSERT_TRUE(exec_->Launch(l).ok());
  EXPECT_EQ(WaitState(l.key, TaskState::kExited).exit_code, 0);
  std::string all;
  for (int i = 0; i < 100; ++i) all += fmt::format("line{:03d}\n", i);
  ASSERT_EQ(all.size(), 800u);
  EXPECT_EQ(fs::file_size(Dir(l.key) + "/stdout.log.1"), 100u);
  EXPECT_EQ(fs::file_size(Dir(l.key) + "/stdout.log"), 100u);

  // Offset 0 was rotated away: the read jumps to the oldest byte kept.
  StatusOr<LogChunk> c = exec_->ReadLog(l.key, LogStream::kStdout, 0, 1000);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->data, all.substr(600));
  EXPECT_EQ(c->next_offset, 800);
  EXPECT_TRUE(c->eof);
  // A read that spans .1 and the current file.
  c = exec_->ReadLog(l.key, LogStream::kStdout, 690, 20);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->data, all.substr(690, 20));
  EXPECT_EQ(c->next_offset, 710);
  EXPECT_FALSE(c->eof);
  // Past the end: nothing, positioned at the end.
  c = exec_->ReadLog(l.key, LogStream::kStdout, 5000, 10);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->data, "");
  EXPECT_EQ(c->next_offset, 800);
  EXPECT_TRUE(c->eof);
}

TEST_F(LocalExecutorTest, LimitsSayWhetherTheyAreEnforced) {
  TaskLaunch l = Sh("limits", "true");
  l.resources = {500, 64, 0};
  ASSERT_TRUE(exec_->Launch(l).ok());
  TaskStatus st = WaitState(l.key, TaskState::kExited);
  if (st.limits_enforced) {
    EXPECT_THAT(st.message, StartsWith("limits enforced: cgroup v2 "));
  } else {
    // This machine (cgroup v1 hybrid: cgroup2 without cpu/memory) lands here.
    EXPECT_THAT(st.message, StartsWith("limits advisory: "));
  }
  std::printf("limits on this machine: %s\n", st.message.c_str());

  exec_ = NewExecutor(LATHE_SHIM_TEST_MAIN, "none");
  TaskLaunch off = Sh("limits-off", "true");
  ASSERT_TRUE(exec_->Launch(off).ok());
  st = WaitState(off.key, TaskState::kExited);
  EXPECT_FALSE(st.limits_enforced);
  EXPECT_EQ(st.message, "limits advisory: cgroup limits disabled by configuration");
}

TEST_F(LocalExecutorTest, RemoveRefusesLiveTasksAndDeletesEndedOnes) {
  TaskLaunch a = Sh("rm", "while [ ! -e go ]; do sleep 0.02; done");
  TaskLaunch b = a;
  b.key.attempt = 1;
  b.key.index = 1;
  ASSERT_TRUE(exec_->Launch(a).ok());
  ASSERT_TRUE(exec_->Launch(b).ok());
  WaitState(a.key, TaskState::kRunning);
  EXPECT_EQ(exec_->Remove("rm").code(), StatusCode::kFailedPrecondition);
  std::ofstream(Dir(a.key) + "/go") << "";
  std::ofstream(Dir(b.key) + "/go") << "";
  WaitState(a.key, TaskState::kExited);
  WaitState(b.key, TaskState::kExited);
  StatusOr<std::vector<TaskStatus>> job = exec_->ObserveJob("rm");
  ASSERT_TRUE(job.ok());
  ASSERT_EQ(job->size(), 2u);
  EXPECT_EQ((*job)[1].key, b.key);
  // The shims may still be finishing; Remove succeeds once they are gone.
  EXPECT_TRUE(WaitFor([&] { return exec_->Remove("rm").ok(); }));
  EXPECT_FALSE(fs::exists(root_ + "/rm"));
  EXPECT_EQ(exec_->Observe(a.key)->state, TaskState::kUnknown);
  EXPECT_TRUE(exec_->Remove("rm").ok());
}

TEST_F(LocalExecutorTest, TaskEventCallbackFollowsAStartAndAnExitWithinASecond) {
  exec_->SetTaskEventCallback(events_.Callback());
  TaskLaunch l = Sh("events", "sleep 0.5");
  ASSERT_TRUE(exec_->Launch(l).ok());
  TaskStatus st = WaitState(l.key, TaskState::kExited);
  ASSERT_GT(st.finished_at_us, st.started_at_us);
  // The exit marker is dropped after finished_at is taken; the call follows it.
  ASSERT_TRUE(WaitFor([&] { return events_.FirstAtOrAfter(st.finished_at_us) >= 0; }, 2000));
  EXPECT_LE(events_.FirstAtOrAfter(st.finished_at_us) - st.finished_at_us, 1'000'000);
  const int64_t on_start = events_.FirstAtOrAfter(st.started_at_us);
  EXPECT_LT(on_start, st.finished_at_us) << "no call while the task ran";
  // Markers are deleted once announced.
  EXPECT_TRUE(WaitFor([&] { return DirIsEmpty(EventsDir()); }, 2000));
}

TEST_F(LocalExecutorTest, AClearedTaskEventCallbackIsNeverCalledAgain) {
  exec_->SetTaskEventCallback(events_.Callback());
  exec_->SetTaskEventCallback(nullptr);
  TaskLaunch l = Sh("cleared", "true");
  ASSERT_TRUE(exec_->Launch(l).ok());
  WaitState(l.key, TaskState::kExited);
  ASSERT_TRUE(WaitFor([&] { return ExitAnnounced(l.key); }));
  // The watcher deletes a marker only after its (empty) call.
  ASSERT_TRUE(WaitFor([&] { return DirIsEmpty(EventsDir()); }, 2000));
  EXPECT_TRUE(events_.calls().empty());
}

TEST_F(LocalExecutorTest, ABurstOfExitsIsAnnouncedInFewCallsAndLeavesNoMarkers) {
  exec_->SetTaskEventCallback(events_.Callback());
  constexpr int kTasks = 20;
  std::vector<TaskKey> keys;
  for (int i = 0; i < kTasks; ++i) {
    TaskLaunch l = Sh(fmt::format("burst-{}", i), "true");
    ASSERT_TRUE(exec_->Launch(l).ok());
    keys.push_back(l.key);
  }
  int64_t last_exit = 0;
  for (const TaskKey& k : keys) {
    last_exit = std::max(last_exit, WaitState(k, TaskState::kExited).finished_at_us);
  }
  for (const TaskKey& k : keys) ASSERT_TRUE(WaitFor([&] { return ExitAnnounced(k); }));
  ASSERT_TRUE(WaitFor([&] { return DirIsEmpty(EventsDir()); }, 5000));
  const std::vector<int64_t> calls = events_.calls();
  // At most one call per marker (a start and an exit per task), and one
  // after the last exit.
  EXPECT_GE(calls.size(), 1u);
  EXPECT_LE(calls.size(), 2u * kTasks);
  EXPECT_GE(events_.FirstAtOrAfter(last_exit), last_exit);
}

TEST_F(LocalExecutorTest, MarkersAreDroppedOnlyWhileWatchedAndSweptAtStart) {
  // Nobody ever watched this root: no directory, so no markers pile up.
  TaskLaunch l = Sh("unwatched", "true");
  ASSERT_TRUE(exec_->Launch(l).ok());
  WaitState(l.key, TaskState::kExited);
  EXPECT_FALSE(fs::exists(EventsDir()));

  // A watcher that went away (a server restart) leaves its directory; exits
  // meanwhile leave markers, swept by the next watcher when it starts.
  {
    EventRecorder events;
    auto first = NewExecutor();
    first->SetTaskEventCallback(events.Callback());
    TaskLaunch slow = Sh("outlives", "sleep 0.3");
    ASSERT_TRUE(first->Launch(slow).ok());
    WaitState(slow.key, TaskState::kRunning);
    const int64_t start = local::MonotonicMs();
    first.reset();  // stops its thread at once, with a callback set and a task running
    EXPECT_LT(local::MonotonicMs() - start, 1000);
    WaitState(slow.key, TaskState::kExited);
    ASSERT_TRUE(WaitFor([&] { return ExitAnnounced(slow.key); }));
  }
  std::error_code ec;
  EXPECT_FALSE(fs::is_empty(EventsDir(), ec)) << "the exit marker stays for the next watcher";
  exec_->SetTaskEventCallback(events_.Callback());
  EXPECT_TRUE(DirIsEmpty(EventsDir()));

  // The directory is no job's.
  TaskLaunch bad = Sh(local::kEventsDir, "true");
  EXPECT_EQ(exec_->Launch(bad).field(), "key.job_id");
  EXPECT_EQ(exec_->ObserveJob(local::kEventsDir).status().field(), "job_id");
  EXPECT_EQ(exec_->Remove(local::kEventsDir).field(), "job_id");
  EXPECT_TRUE(fs::is_directory(EventsDir()));
}

}  // namespace
}  // namespace lathe::exec
