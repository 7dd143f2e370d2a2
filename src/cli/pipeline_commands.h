// `lathe pipeline …`, `lathe pipeline-run …` and `lathe schedule …`:
// clients of the pipeline and schedule routes (docs/api.md "Pipelines",
// docs/pipelines.md "CLI"). Like commands.h, each returns a Status that
// main.cc prints as one line (exit code 1).
//
// The project: --project, else $LATHE_PROJECT, else (for commands that read
// a spec with -f) the spec's own `project`; otherwise an error naming
// --project.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "base/status.h"
#include "cli/commands.h"

namespace lathe::cli {

// ---- pipelines

struct PipelineCreateOptions {
  std::string file;  // YAML or JSON pipeline spec ("-" = standard input)
  std::string project;
  std::string code_dir;  // uploaded as a snapshot (as `job submit --code`), pinned to the version
};
// Creates the pipeline or a new version of it; prints the name, the version
// and whether it is new (an unchanged spec and code keep the version).
Status PipelineCreate(const ClientOptions& o, const PipelineCreateOptions& p, std::ostream& out);
Status PipelineList(const ClientOptions& o, const std::string& project, const ListOptions& l,
                    std::ostream& out);
// Fields, then the latest version's params and steps.
Status PipelineShow(const ClientOptions& o, const std::string& project, const std::string& name,
                    std::ostream& out);
Status PipelineVersions(const ClientOptions& o, const std::string& project, const std::string& name,
                        const ListOptions& l, std::ostream& out);
Status PipelineRemove(const ClientOptions& o, const std::string& project, const std::string& name,
                      std::ostream& out);

struct PipelineRunOptions {
  std::string name;  // the pipeline; "" when -f names it
  std::string file;  // create or update the pipeline from this spec first
  std::string project;
  std::string code_dir;             // a new version with this code (with -f, or the latest spec)
  int64_t version = 0;              // 0 = latest (not with -f or --code: the run takes theirs)
  std::vector<std::string> params;  // "k=v"; values are converted to the declared type
  int64_t sample = 0;               // > 0: quick mode, params.sample = N
  bool no_cache = false;
  bool wait = false;  // poll until the run ends, printing step changes; OK iff succeeded
};
Status PipelineRun(const ClientOptions& o, const PipelineRunOptions& r, std::ostream& out);

// ---- runs

struct PipelineRunListOptions {
  std::string project;
  std::string pipeline;  // "" = any
  std::string state;     // "" = any
  std::string schedule;  // schedule name, "" = any
};
Status PipelineRunList(const ClientOptions& o, const PipelineRunListOptions& r,
                       const ListOptions& l, std::ostream& out);
// Fields, a table of nodes (NODE STATE ATTEMPT CACHED JOB DURATION REASON),
// outputs and events.
Status PipelineRunDescribe(const ClientOptions& o, const std::string& project,
                           const std::string& run, std::ostream& out);
Status PipelineRunCancel(const ClientOptions& o, const std::string& project, const std::string& run,
                         std::ostream& out);
// Resumes from the failed steps; `wait` as PipelineRunOptions::wait.
Status PipelineRunRetry(const ClientOptions& o, const std::string& project, const std::string& run,
                        bool wait, std::ostream& out);
Status PipelineRunRemove(const ClientOptions& o, const std::string& project, const std::string& run,
                         std::ostream& out);

// ---- schedules

// `replace` false: create only (`schedule create`, 409 when it exists);
// true: create or replace (`schedule apply`).
Status SchedulePut(const ClientOptions& o, const std::string& project, const std::string& file,
                   bool replace, std::ostream& out);
Status ScheduleList(const ClientOptions& o, const std::string& project, const ListOptions& l,
                    std::ostream& out);
Status ScheduleShow(const ClientOptions& o, const std::string& project, const std::string& name,
                    std::ostream& out);
Status ScheduleRemove(const ClientOptions& o, const std::string& project, const std::string& name,
                      std::ostream& out);
Status SchedulePause(const ClientOptions& o, const std::string& project, const std::string& name,
                     bool paused, std::ostream& out);
// Adds (or with `remove`, drops) dates YYYY-MM-DD, in the schedule's zone.
Status ScheduleSkip(const ClientOptions& o, const std::string& project, const std::string& name,
                    const std::vector<std::string>& dates, bool remove, std::ostream& out);
Status ScheduleTicks(const ClientOptions& o, const std::string& project, const std::string& name,
                     const ListOptions& l, std::ostream& out);

struct BackfillOptions {
  std::string project;
  std::string name;
  std::string from;  // RFC 3339, or YYYY-MM-DD = 00:00 UTC that day
  std::string to;    // same; inclusive
  int64_t max_concurrency = 1;
  std::string reprocess = "failed";  // none | failed | all
};
Status ScheduleBackfill(const ClientOptions& o, const BackfillOptions& b, std::ostream& out);
Status ScheduleBackfills(const ClientOptions& o, const std::string& project,
                         const std::string& name, std::ostream& out);

}  // namespace lathe::cli
