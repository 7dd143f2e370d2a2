// Cluster traces read into one in-memory form for the simulator.
//
//   StatusOr<Trace> t = ReadTrace(TraceFormat::kPhilly, "../shared/traces/philly_pollux.csv", {});
//
// Three formats (docs/sim.md has the details):
//  * kPhilly: the Pollux-processed Philly trace (timestamp, duration,
//    num_gpus, gpu_time, cluster). A job of g GPUs is a gang of
//    ceil(g/8) tasks of g/ceil(g/8) GPUs each (12 → 2×6, 16 → 2×8,
//    128 → 16×8); each task asks for kPhillyCpuPerGpu and kPhillyMemPerGpu
//    per GPU. The virtual cluster becomes the queue; the known duration is
//    the runtime estimate (for SJF and backfill).
//  * kOpenb: the Alibaba cluster-trace-gpu-v2023 pod list; one single-task
//    job per pod. num_gpu = 1 with gpu_milli < 1000 is a fractional GPU,
//    num_gpu = k asks for k whole GPUs. The queue is the pod's qos.
//  * kCsv: Lathe's own format, one job per row:
//    id,submit_time,duration,queue,priority,tasks,cpu_milli,memory_mib,gpu_milli,min_available,gpu_model
//
// Submit times are shifted so that the earliest job submits at 0; jobs are
// sorted by (submit time, row). A bad row is an INVALID_ARGUMENT
// "FILE:LINE: COLUMN: message" (abort, the default) or is skipped and
// counted (BadRowPolicy::kSkip). No function here keeps global state;
// all are thread-safe. Cost: linear in the file size.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "sched/model.h"

namespace lathe::sim {

inline constexpr int64_t kPhillyCpuPerGpu = 4000;    // milli-cores per GPU
inline constexpr int64_t kPhillyMemPerGpu = 32768;   // MiB per GPU
inline constexpr int kPhillyGpusPerTask = 8;         // a task never spans nodes of 8 GPUs

enum class TraceFormat { kPhilly, kOpenb, kCsv };

// "philly", "openb", "csv"; INVALID_ARGUMENT naming "format" otherwise.
StatusOr<TraceFormat> ParseTraceFormat(std::string_view name);

enum class BadRowPolicy { kAbort, kSkip };

struct ReadOptions {
  BadRowPolicy on_bad_row = BadRowPolicy::kAbort;
};

// One job of a trace: `tasks` identical tasks asking for `request` each.
struct TraceJob {
  std::string id;
  std::string queue;       // trace-level queue (VC, qos, ...); mapped by the cluster config
  int64_t priority = 0;
  int64_t submit_time = 0; // seconds since the trace's first submission
  int64_t duration = 0;    // seconds of running time (>= 1)
  int tasks = 1;
  sched::Resources request;  // per task
  int min_available = 0;     // 0 = all tasks (a gang)
  std::string gpu_model;     // "" = any
};

struct Trace {
  std::string source;            // the file(s) read
  std::vector<TraceJob> jobs;    // sorted by submit time
  int64_t rows = 0;              // data rows read, bad ones included
  int64_t skipped_rows = 0;
  std::vector<std::string> skipped_examples;  // the first few skip messages
};

// Parses `text` as the trace format `format`; `file_name` is used in error
// messages only.
StatusOr<Trace> ParseTrace(TraceFormat format, std::string_view text, std::string_view file_name,
                           const ReadOptions& options);
// Reads and parses the file at `path` (NOT_FOUND if it cannot be read).
StatusOr<Trace> ReadTrace(TraceFormat format, const std::string& path, const ReadOptions& options);

// The openb node list (sn, cpu_milli, memory_mib, gpu, model): one
// schedulable node per row, named by sn, GPU model = model ("" = CPU only).
StatusOr<std::vector<sched::Node>> ParseOpenbNodes(std::string_view text,
                                                   std::string_view file_name,
                                                   const ReadOptions& options,
                                                   int64_t* skipped = nullptr);
StatusOr<std::vector<sched::Node>> ReadOpenbNodes(const std::string& path,
                                                  const ReadOptions& options,
                                                  int64_t* skipped = nullptr);

// The whole file at `path`, or NOT_FOUND naming it.
StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace lathe::sim
