// Rendezvous variables per framework, following what Kubeflow's training
// operators inject (PyTorchJob, TFJob, MPIJob v2, XGBoostJob); docs/jobs.md
// "Frameworks" lists them role by role.
#include "spec/rendezvous.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace lathe::spec {
namespace {

using TaskId = std::pair<std::string, int>;  // (role, index)

Status TasksError(const std::string& message) {
  return InvalidArgumentError(fmt::format("tasks: {}", message), "tasks");
}

std::string Name(const TaskId& id) { return fmt::format("{}[{}]", id.first, id.second); }

// "host:port", with IPv6 literals in brackets.
std::string HostPort(const TaskAddress& t) {
  if (t.host.find(':') != std::string::npos) return fmt::format("[{}]:{}", t.host, t.port);
  return fmt::format("{}:{}", t.host, t.port);
}

Status NeedEndpoint(const TaskAddress& t) {
  if (t.host.empty()) return TasksError(fmt::format("{}[{}] has no host", t.role, t.index));
  if (t.port < 1 || t.port > 65535) {
    return TasksError(fmt::format("{}[{}] has no valid port ({})", t.role, t.index, t.port));
  }
  return OkStatus();
}

const Role* FindRole(const JobSpec& spec, std::string_view name) {
  for (const Role& r : spec.roles) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

// The job's tasks indexed by (role, index), checked against the spec.
class TaskTable {
 public:
  static StatusOr<TaskTable> Make(const JobSpec& spec, const std::vector<TaskAddress>& tasks,
                                  bool need_all) {
    TaskTable table;
    for (const TaskAddress& t : tasks) {
      const Role* role = FindRole(spec, t.role);
      TaskId id{t.role, t.index};
      if (role == nullptr) {
        return TasksError(fmt::format("{} is not a role of the job", Name(id)));
      }
      if (t.index < 0 || t.index >= role->replicas) {
        return TasksError(
            fmt::format("{}: role {} has {} replicas", Name(id), t.role, role->replicas));
      }
      if (!table.by_id_.emplace(id, &t).second) {
        return TasksError(fmt::format("{} is listed twice", Name(id)));
      }
    }
    if (need_all) {
      for (const Role& role : spec.roles) {
        for (int i = 0; i < role.replicas; ++i) {
          if (table.Find(role.name, i) == nullptr) {
            return TasksError(fmt::format("no address for {}", Name({role.name, i})));
          }
        }
      }
    }
    return table;
  }

  const TaskAddress* Find(const std::string& role, int index) const {
    auto it = by_id_.find({role, index});
    return it == by_id_.end() ? nullptr : it->second;
  }

 private:
  std::map<TaskId, const TaskAddress*> by_id_;
};

// Global rank order: the master role's tasks first, then every other role
// in spec order, each by index (PyTorchJob and XGBoostJob).
std::vector<TaskId> RankOrder(const JobSpec& spec) {
  std::vector<TaskId> order;
  if (const Role* master = FindRole(spec, "master")) {
    for (int i = 0; i < master->replicas; ++i) order.emplace_back("master", i);
  }
  for (const Role& role : spec.roles) {
    if (role.name == "master") continue;
    for (int i = 0; i < role.replicas; ++i) order.emplace_back(role.name, i);
  }
  return order;
}

int RankOf(const std::vector<TaskId>& order, const TaskId& self) {
  return static_cast<int>(std::find(order.begin(), order.end(), self) - order.begin());
}

// Where a task runs, for counting tasks per node.
const std::string& NodeOf(const TaskAddress& t) { return t.node.empty() ? t.host : t.node; }

Status RenderPyTorch(const JobSpec& spec, const TaskTable& table, const TaskId& self,
                     std::map<std::string, std::string>* env) {
  const TaskAddress* master = table.Find("master", 0);
  if (master == nullptr) master = table.Find("worker", 0);
  if (master == nullptr) return TasksError("no master[0] or worker[0]");
  RETURN_IF_ERROR(NeedEndpoint(*master));
  std::vector<TaskId> order = RankOrder(spec);
  int rank = RankOf(order, self);
  const std::string& node = NodeOf(*table.Find(self.first, self.second));
  int local_rank = 0, local_world = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    if (NodeOf(*table.Find(order[i].first, order[i].second)) != node) continue;
    if (static_cast<int>(i) < rank) ++local_rank;
    ++local_world;
  }
  std::string world = std::to_string(spec.TotalReplicas());
  (*env)["MASTER_ADDR"] = master->host;
  (*env)["MASTER_PORT"] = std::to_string(master->port);
  (*env)["WORLD_SIZE"] = world;
  (*env)["RANK"] = std::to_string(rank);
  (*env)["LOCAL_RANK"] = std::to_string(local_rank);
  (*env)["LOCAL_WORLD_SIZE"] = std::to_string(local_world);
  // For torchrun (elastic launch) inside a task: one process per task.
  (*env)["PET_MASTER_ADDR"] = master->host;
  (*env)["PET_MASTER_PORT"] = std::to_string(master->port);
  (*env)["PET_NNODES"] = world;
  (*env)["PET_NODE_RANK"] = std::to_string(rank);
  (*env)["PET_NPROC_PER_NODE"] = "1";
  return OkStatus();
}

Status RenderTensorFlow(const JobSpec& spec, const TaskTable& table, const TaskId& self,
                        std::map<std::string, std::string>* env) {
  std::string config;
  JsonWriter w(&config);
  w.BeginObject();
  w.Key("cluster").BeginObject();
  for (const Role& role : spec.roles) {
    // As TFJob does: the evaluator is not part of the cluster.
    if (role.name == "evaluator") continue;
    w.Key(role.name).BeginArray();
    for (int i = 0; i < role.replicas; ++i) {
      const TaskAddress* t = table.Find(role.name, i);
      RETURN_IF_ERROR(NeedEndpoint(*t));
      w.String(HostPort(*t));
    }
    w.EndArray();
  }
  w.EndObject();
  w.Key("task").BeginObject();
  w.Field("type", self.first);
  w.Field("index", self.second);
  w.EndObject();
  w.Field("environment", "cloud");
  w.EndObject();
  (*env)["TF_CONFIG"] = std::move(config);
  return OkStatus();
}

Status RenderMpi(const JobSpec& spec, const TaskTable& table, const TaskId& self,
                 TaskRendezvous* out) {
  if (self.first != "launcher") return OkStatus();  // workers are held by Lathe
  const Role* workers = FindRole(spec, "worker");
  if (workers == nullptr) {
    return InvalidArgumentError("roles: an mpi job needs a \"worker\" role", "roles");
  }
  // One line per distinct worker host, in worker index order, with as many
  // slots as workers on it.
  std::vector<std::pair<std::string, int>> hosts;
  for (int i = 0; i < workers->replicas; ++i) {
    const TaskAddress* t = table.Find("worker", i);
    if (t->host.empty()) return TasksError(fmt::format("worker[{}] has no host", i));
    auto it =
        std::find_if(hosts.begin(), hosts.end(), [&](const auto& h) { return h.first == t->host; });
    if (it == hosts.end()) {
      hosts.emplace_back(t->host, 1);
    } else {
      ++it->second;
    }
  }
  std::string hostfile;
  for (const auto& [host, slots] : hosts) hostfile += fmt::format("{} slots={}\n", host, slots);
  out->files["hostfile"] = std::move(hostfile);
  out->file_env["OMPI_MCA_orte_default_hostfile"] = "hostfile";
  out->env["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
  out->env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
  out->env["LATHE_MPI_NUM_WORKERS"] = std::to_string(workers->replicas);
  return OkStatus();
}

Status RenderXgboost(const JobSpec& spec, const TaskTable& table, const TaskId& self,
                     std::map<std::string, std::string>* env) {
  const TaskAddress* master = table.Find("master", 0);
  if (master == nullptr) return TasksError("no master[0]");
  RETURN_IF_ERROR(NeedEndpoint(*master));
  std::string rank = std::to_string(RankOf(RankOrder(spec), self));
  std::string world = std::to_string(spec.TotalReplicas());
  (*env)["DMLC_TRACKER_URI"] = master->host;
  (*env)["DMLC_TRACKER_PORT"] = std::to_string(master->port);
  (*env)["DMLC_NUM_WORKER"] = world;
  (*env)["DMLC_TASK_ID"] = rank;
  (*env)["MASTER_ADDR"] = master->host;
  (*env)["MASTER_PORT"] = std::to_string(master->port);
  (*env)["WORLD_SIZE"] = world;
  (*env)["RANK"] = rank;
  return OkStatus();
}

}  // namespace

const std::vector<std::string>& RendezvousEnvNames(Framework f) {
  static const auto* const kNone = new std::vector<std::string>{};
  static const auto* const kPyTorch = new std::vector<std::string>{
      "MASTER_ADDR", "MASTER_PORT",      "WORLD_SIZE",        "RANK",
      "LOCAL_RANK",  "LOCAL_WORLD_SIZE", "PET_MASTER_ADDR",   "PET_MASTER_PORT",
      "PET_NNODES",  "PET_NODE_RANK",    "PET_NPROC_PER_NODE"};
  static const auto* const kTensorFlow = new std::vector<std::string>{"TF_CONFIG"};
  static const auto* const kMpi = new std::vector<std::string>{
      "OMPI_MCA_orte_default_hostfile", "OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"};
  static const auto* const kXgboost = new std::vector<std::string>{
      "DMLC_TRACKER_URI", "DMLC_TRACKER_PORT", "DMLC_NUM_WORKER", "DMLC_TASK_ID",
      "MASTER_ADDR",      "MASTER_PORT",       "WORLD_SIZE",      "RANK"};
  switch (f) {
    case Framework::kNone:
      return *kNone;
    case Framework::kPyTorch:
      return *kPyTorch;
    case Framework::kTensorFlow:
      return *kTensorFlow;
    case Framework::kMpi:
      return *kMpi;
    case Framework::kXgboost:
      return *kXgboost;
  }
  return *kNone;
}

StatusOr<TaskRendezvous> RenderRendezvous(const JobSpec& spec,
                                          const std::vector<TaskAddress>& tasks,
                                          const std::string& self_role, int self_index) {
  const Role* role = FindRole(spec, self_role);
  if (role == nullptr) {
    return InvalidArgumentError(fmt::format("self: \"{}\" is not a role of the job", self_role),
                                "self");
  }
  if (self_index < 0 || self_index >= role->replicas) {
    return InvalidArgumentError(fmt::format("self: {}[{}]: role {} has {} replicas", self_role,
                                            self_index, self_role, role->replicas),
                                "self");
  }
  ASSIGN_OR_RETURN(TaskTable table,
                   TaskTable::Make(spec, tasks, spec.framework != Framework::kNone));
  if (table.Find(self_role, self_index) == nullptr) {
    return TasksError(fmt::format("no address for {}[{}]", self_role, self_index));
  }
  TaskRendezvous out;
  out.env["LATHE_ROLE"] = self_role;
  out.env["LATHE_REPLICA_INDEX"] = std::to_string(self_index);
  out.env["LATHE_NUM_REPLICAS"] = std::to_string(role->replicas);
  TaskId self{self_role, self_index};
  switch (spec.framework) {
    case Framework::kNone:
      break;
    case Framework::kPyTorch:
      RETURN_IF_ERROR(RenderPyTorch(spec, table, self, &out.env));
      break;
    case Framework::kTensorFlow:
      RETURN_IF_ERROR(RenderTensorFlow(spec, table, self, &out.env));
      break;
    case Framework::kMpi:
      RETURN_IF_ERROR(RenderMpi(spec, table, self, &out));
      break;
    case Framework::kXgboost:
      RETURN_IF_ERROR(RenderXgboost(spec, table, self, &out.env));
      break;
  }
  return out;
}

}  // namespace lathe::spec
