// `lathe job …` and `lathe queue …`: clients of the job and queue routes
// (docs/api.md "Jobs", "Queues"). Like commands.h, each returns a Status
// that main.cc prints as one line (exit code 1).
//
// The project of a job command: --project, else $LATHE_PROJECT, else (for
// submit only) the spec's own `project`; otherwise an error naming
// --project.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "base/status.h"
#include "cli/commands.h"

namespace lathe::cli {

struct JobSubmitOptions {
  std::string file;  // YAML or JSON job spec ("-" = standard input)
  std::string project;
  std::string code_dir;  // uploaded as a tar.gz snapshot, the job's working directory
  bool wait = false;     // then wait until the job ends (error unless it succeeded)
};
Status JobSubmit(const ClientOptions& o, const JobSubmitOptions& j, std::ostream& out);

struct JobListOptions {
  std::string project;
  std::string phase;
  std::string queue;
};
Status JobList(const ClientOptions& o, const JobListOptions& j, const ListOptions& l,
               std::ostream& out);
// Fields, tasks, events and (while pending) the scheduler's reason.
Status JobDescribe(const ClientOptions& o, const std::string& project, const std::string& job,
                   std::ostream& out);
Status JobCancel(const ClientOptions& o, const std::string& project, const std::string& job,
                 std::ostream& out);
Status JobRemove(const ClientOptions& o, const std::string& project, const std::string& job,
                 std::ostream& out);

struct JobLogsOptions {
  std::string role;  // "" = the first role
  int index = 0;
  std::string stream = "stdout";
  bool follow = false;  // stream until the task ends (server-sent events)
};
Status JobLogs(const ClientOptions& o, const std::string& project, const std::string& job,
               const JobLogsOptions& l, std::ostream& out);

// Polls until the job is terminal. OK only when it succeeded; otherwise an
// error naming its phase and reason. `timeout` ("10m"; "" = none): then
// DEADLINE_EXCEEDED.
Status JobWait(const ClientOptions& o, const std::string& project, const std::string& job,
               const std::string& timeout, std::ostream& out);

struct QueueOptions {
  std::string file;  // a queue spec (YAML/JSON) instead of the flags
  std::string name;
  std::string parent;     // update: "-" clears it
  std::string guarantee;  // "cpu=4,memory=16Gi,gpu=0"
  std::string ceiling;    // same; "none" clears (unlimited)
  int64_t weight = 0;     // 0 = unchanged / default
};
Status QueueList(const ClientOptions& o, const ListOptions& l, std::ostream& out);
Status QueueGet(const ClientOptions& o, const std::string& name, std::ostream& out);
Status QueueCreate(const ClientOptions& o, const QueueOptions& q, std::ostream& out);
// Changes only what the flags name (or replaces the spec with -f's).
Status QueueUpdate(const ClientOptions& o, const QueueOptions& q, std::ostream& out);
Status QueueRemove(const ClientOptions& o, const std::string& name, std::ostream& out);

}  // namespace lathe::cli
