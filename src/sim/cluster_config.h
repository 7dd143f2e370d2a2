// The simulated cluster and its queues, from a YAML file:
//
//   nodes:                       # node groups...
//     - {count: 100, name_prefix: gpu-, cpu: 64, memory_mib: 524288,
//        gpus: 8, gpu_model: V100, labels: {zone: a}, pool: train,
//        taints: [{key: k, value: v, effect: NoSchedule}]}
//   nodes_from: openb            # ...or the openb node list (--trace PODS,NODES
//   node_file: ../traces/x.csv   #    or this path, relative to the YAML file)
//   queues:
//     - {name: research, parent: "", weight: 2, reclaimable: true,
//        guarantee: {cpu: 16, memory_mib: 65536, gpus: 8},
//        ceiling: {gpus: 64}}
//   default_queue: research      # trace queues not listed map here
//   queue_map: {6214e9: research}
//
// With no `queues`, every distinct trace queue becomes a weight-1 top-level
// queue with no guarantee and no ceiling. Errors are INVALID_ARGUMENT naming
// the field ("nodes[1].gpus: expected an integer, got a string").
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "sched/model.h"
#include "sim/trace.h"

namespace lathe::sim {

struct ClusterConfig {
  std::vector<sched::Node> nodes;   // from node groups (empty with nodes_from)
  std::string nodes_from;           // "" or "openb"
  std::string node_file;            // resolved path for nodes_from, may be ""
  std::vector<sched::Queue> queues; // empty: one queue per trace queue
  std::string default_queue;        // "" = "default"
  std::map<std::string, std::string> queue_map;
};

// Decodes the YAML text. `base_dir` resolves a relative node_file.
StatusOr<ClusterConfig> ParseClusterConfig(std::string_view yaml, const std::string& base_dir);
// Reads and decodes the file at `path`.
StatusOr<ClusterConfig> LoadClusterConfig(const std::string& path);

// The queue a trace job goes to: queue_map, then the trace queue itself if
// listed (or when queues are implicit), then default_queue.
std::string MapQueue(const ClusterConfig& config, const std::string& trace_queue);

}  // namespace lathe::sim
