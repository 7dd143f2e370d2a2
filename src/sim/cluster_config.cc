#include "sim/cluster_config.h"

#include <fmt/core.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "base/json.h"
#include "base/yaml.h"

namespace lathe::sim {
namespace {

constexpr int64_t kMaxNodes = 1'000'000;

Status FieldError(const std::string& field, const std::string& message) {
  return InvalidArgumentError(fmt::format("{}: {}", field, message), field);
}

// {cpu: cores, memory_mib: MiB, gpus: GPUs (fractions allowed)}; absent
// dimensions keep `*out`'s value.
Status DecodeResources(const JsonValue& value, const std::string& path, sched::Resources* out) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(value, path));
  double cpu = -1, gpus = -1;
  int64_t mem = -1;
  RETURN_IF_ERROR(r.Double("cpu", &cpu));
  RETURN_IF_ERROR(r.Int("memory_mib", &mem));
  RETURN_IF_ERROR(r.Double("gpus", &gpus));
  RETURN_IF_ERROR(r.Finish());
  if (cpu != -1) {
    if (cpu < 0 || cpu > 1e12) return FieldError(r.PathOf("cpu"), "must be >= 0");
    out->cpu_milli = std::llround(cpu * 1000);
  }
  if (mem != -1) {
    if (mem < 0) return FieldError(r.PathOf("memory_mib"), "must be >= 0");
    out->memory_mib = mem;
  }
  if (gpus != -1) {
    if (gpus < 0 || gpus > 1e12) return FieldError(r.PathOf("gpus"), "must be >= 0");
    out->gpu_milli = std::llround(gpus * 1000);
  }
  return OkStatus();
}

StatusOr<sched::TaintEffect> DecodeEffect(const std::string& s, const std::string& path) {
  if (s.empty() || s == "NoSchedule") return sched::TaintEffect::kNoSchedule;
  if (s == "PreferNoSchedule") return sched::TaintEffect::kPreferNoSchedule;
  return FieldError(path, fmt::format("\"{}\" is not NoSchedule or PreferNoSchedule", s));
}

Status DecodeNodeGroup(const JsonValue& value, const std::string& path,
                       std::vector<sched::Node>* nodes, std::set<std::string>* names) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(value, path));
  int64_t count = 0, memory = 0, gpus = 0;
  double cpu = 0;
  std::string prefix, model, pool;
  std::map<std::string, std::string> labels;
  RETURN_IF_ERROR(r.Int("count", &count, Presence::kRequired));
  RETURN_IF_ERROR(r.String("name_prefix", &prefix));
  RETURN_IF_ERROR(r.Double("cpu", &cpu, Presence::kRequired));
  RETURN_IF_ERROR(r.Int("memory_mib", &memory, Presence::kRequired));
  RETURN_IF_ERROR(r.Int("gpus", &gpus));
  RETURN_IF_ERROR(r.String("gpu_model", &model));
  RETURN_IF_ERROR(r.String("pool", &pool));
  RETURN_IF_ERROR(r.StringMap("labels", &labels));
  std::vector<sched::Taint> taints;
  ASSIGN_OR_RETURN(const JsonValue* tv, r.Value("taints"));
  if (tv != nullptr) {
    if (!tv->is_array()) return FieldError(r.PathOf("taints"), "expected an array");
    for (size_t i = 0; i < tv->items().size(); ++i) {
      std::string tpath = fmt::format("{}[{}]", r.PathOf("taints"), i);
      ASSIGN_OR_RETURN(ObjectReader tr, ObjectReader::Make(tv->items()[i], tpath));
      sched::Taint t;
      std::string effect;
      RETURN_IF_ERROR(tr.String("key", &t.key, Presence::kRequired));
      RETURN_IF_ERROR(tr.String("value", &t.value));
      RETURN_IF_ERROR(tr.String("effect", &effect));
      RETURN_IF_ERROR(tr.Finish());
      ASSIGN_OR_RETURN(t.effect, DecodeEffect(effect, tr.PathOf("effect")));
      taints.push_back(std::move(t));
    }
  }
  RETURN_IF_ERROR(r.Finish());
  if (count < 1 || count > kMaxNodes) {
    return FieldError(r.PathOf("count"), fmt::format("{} is not in 1..{}", count, kMaxNodes));
  }
  if (cpu <= 0) return FieldError(r.PathOf("cpu"), "must be > 0 (cores)");
  if (memory <= 0) return FieldError(r.PathOf("memory_mib"), "must be > 0");
  if (gpus < 0 || gpus > 1024) return FieldError(r.PathOf("gpus"), "must be in 0..1024");
  if (prefix.empty()) prefix = fmt::format("node{}-", nodes->size());
  for (int64_t i = 0; i < count; ++i) {
    sched::Node n;
    n.name = fmt::format("{}{}", prefix, i);
    if (!names->insert(n.name).second) {
      return FieldError(r.PathOf("name_prefix"), fmt::format("node name \"{}\" repeats", n.name));
    }
    n.pool = pool;
    n.gpu_model = gpus > 0 ? model : "";
    n.capacity = {std::llround(cpu * 1000), memory, gpus * 1000};
    n.num_gpus = static_cast<int>(gpus);
    n.labels = labels;
    n.taints = taints;
    nodes->push_back(std::move(n));
  }
  return OkStatus();
}

Status DecodeQueue(const JsonValue& value, const std::string& path, sched::Queue* q) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(value, path));
  RETURN_IF_ERROR(r.String("name", &q->name, Presence::kRequired));
  RETURN_IF_ERROR(r.String("parent", &q->parent));
  RETURN_IF_ERROR(r.Int("weight", &q->weight));
  RETURN_IF_ERROR(r.Bool("reclaimable", &q->reclaimable));
  ASSIGN_OR_RETURN(const JsonValue* g, r.Value("guarantee"));
  if (g != nullptr) RETURN_IF_ERROR(DecodeResources(*g, r.PathOf("guarantee"), &q->guarantee));
  ASSIGN_OR_RETURN(const JsonValue* c, r.Value("ceiling"));
  if (c != nullptr) RETURN_IF_ERROR(DecodeResources(*c, r.PathOf("ceiling"), &q->ceiling.value));
  RETURN_IF_ERROR(r.Finish());
  if (q->name.empty()) return FieldError(r.PathOf("name"), "must not be empty");
  if (q->weight < 1) return FieldError(r.PathOf("weight"), "must be >= 1");
  return OkStatus();
}

}  // namespace

StatusOr<ClusterConfig> ParseClusterConfig(std::string_view yaml, const std::string& base_dir) {
  ASSIGN_OR_RETURN(JsonValue doc, ParseYaml(yaml));
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(doc, ""));
  ClusterConfig config;
  RETURN_IF_ERROR(r.String("nodes_from", &config.nodes_from));
  RETURN_IF_ERROR(r.String("node_file", &config.node_file));
  RETURN_IF_ERROR(r.String("default_queue", &config.default_queue));
  RETURN_IF_ERROR(r.StringMap("queue_map", &config.queue_map));
  ASSIGN_OR_RETURN(const JsonValue* nodes, r.Value("nodes"));
  ASSIGN_OR_RETURN(const JsonValue* queues, r.Value("queues"));
  RETURN_IF_ERROR(r.Finish());

  if (!config.nodes_from.empty() && config.nodes_from != "openb") {
    return FieldError("nodes_from", fmt::format("\"{}\" is not a node source (openb)",
                                                config.nodes_from));
  }
  if (!config.node_file.empty() && config.nodes_from.empty()) {
    return FieldError("node_file", "needs nodes_from: openb");
  }
  if (!config.node_file.empty() && !base_dir.empty() &&
      std::filesystem::path(config.node_file).is_relative()) {
    config.node_file = (std::filesystem::path(base_dir) / config.node_file).lexically_normal().string();
  }
  if (nodes != nullptr) {
    if (!nodes->is_array()) return FieldError("nodes", "expected an array of node groups");
    if (!config.nodes_from.empty()) return FieldError("nodes", "give either nodes or nodes_from");
    std::set<std::string> names;
    for (size_t i = 0; i < nodes->items().size(); ++i) {
      RETURN_IF_ERROR(
          DecodeNodeGroup(nodes->items()[i], fmt::format("nodes[{}]", i), &config.nodes, &names));
    }
  }
  if (config.nodes.empty() && config.nodes_from.empty()) {
    return FieldError("nodes", "required: node groups, or nodes_from: openb");
  }
  if (queues != nullptr) {
    if (!queues->is_array()) return FieldError("queues", "expected an array of queues");
    std::set<std::string> names;
    for (size_t i = 0; i < queues->items().size(); ++i) {
      sched::Queue q;
      std::string path = fmt::format("queues[{}]", i);
      RETURN_IF_ERROR(DecodeQueue(queues->items()[i], path, &q));
      if (!names.insert(q.name).second) {
        return FieldError(path + ".name", fmt::format("queue \"{}\" is listed twice", q.name));
      }
      config.queues.push_back(std::move(q));
    }
    for (size_t i = 0; i < config.queues.size(); ++i) {
      const std::string& parent = config.queues[i].parent;
      if (!parent.empty() && !names.count(parent)) {
        return FieldError(fmt::format("queues[{}].parent", i),
                          fmt::format("unknown queue \"{}\"", parent));
      }
    }
    if (!config.default_queue.empty() && !names.count(config.default_queue)) {
      return FieldError("default_queue", fmt::format("unknown queue \"{}\"", config.default_queue));
    }
    for (const auto& [from, to] : config.queue_map) {
      if (!names.count(to)) {
        return FieldError("queue_map." + from, fmt::format("unknown queue \"{}\"", to));
      }
    }
  }
  return config;
}

StatusOr<ClusterConfig> LoadClusterConfig(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  StatusOr<ClusterConfig> config =
      ParseClusterConfig(text, std::filesystem::path(path).parent_path().string());
  if (!config.ok()) return config.status().WithPrefix(path);
  return config;
}

std::string MapQueue(const ClusterConfig& config, const std::string& trace_queue) {
  auto it = config.queue_map.find(trace_queue);
  if (it != config.queue_map.end()) return it->second;
  if (config.queues.empty()) return trace_queue;
  for (const sched::Queue& q : config.queues) {
    if (q.name == trace_queue) return trace_queue;
  }
  return config.default_queue.empty() ? "default" : config.default_queue;
}

}  // namespace lathe::sim
