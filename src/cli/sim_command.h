// `lathe sim`: runs the production scheduler over a cluster trace in virtual
// time, once per policy, and prints one row per policy (docs/sim.md).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "base/status.h"

namespace lathe::cli {

struct SimCommandOptions {
  std::string trace;      // FILE or PODS,NODES (openb)
  std::string format;     // philly | openb | csv
  std::string cluster;    // cluster-and-queues YAML; optional for openb with a node list
  std::string policies = "fifo,lathe";  // comma-separated NamedPolicy names
  std::string mode = "events";          // events | fgd-fill
  std::string output = "table";         // table | json | yaml
  std::string on_bad_row = "abort";     // abort | skip
  std::string queues;          // keep only these trace queues (comma-separated)
  int64_t max_jobs = 0;        // 0 = all
  int64_t sample_every = 1;
  int64_t start = -1;          // window on submit time, seconds from trace start
  int64_t end = -1;
  int64_t cycle_seconds = 0;   // 0 = a cycle per event batch
  int64_t sample_seconds = 0;  // series interval; 0 = automatic
  uint64_t seed = 1;
  double fill_until = 100;     // fgd-fill: stop at this % of GPU capacity requested
  std::string fill_order = "sample";  // fgd-fill: sample | trace (every pod once, shuffled, then sampled)
  std::string fill_nodes = "all";     // fgd-fill: all | gpu (only nodes with GPUs, as FGD's artifact)
  std::string baseline_variant = "lathe";  // lathe | artifact (FGD artifact's baseline scorers)
  bool no_estimates = false;   // hide durations from the scheduler
  bool validate = false;       // ValidateSnapshot every cycle
  bool quiet = false;          // no progress on stderr
};

// Reads the inputs, runs every policy and writes the report to `out`;
// progress and notes go to `err`. Errors are one-line Statuses naming the
// flag or field (unknown policy: the list of known ones).
Status RunSim(const SimCommandOptions& options, std::ostream& out, std::ostream& err);

}  // namespace lathe::cli
