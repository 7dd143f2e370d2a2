// What Lathe injects into each task of a distributed job so the framework
// finds its peers, as Kubeflow's training operators do (docs/jobs.md
// "Frameworks"). Pure: the controller supplies every task's address.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "spec/job_spec.h"

namespace lathe::spec {

// One task of a job as placed: its role, index, and the host and port it
// can listen on (chosen by the controller, fixed for an attempt).
struct TaskAddress {
  std::string role;
  int index = 0;
  std::string host;  // e.g. "127.0.0.1" for the local executor
  int port = 0;
  std::string node;  // scheduler node name (LOCAL_RANK counts per node)
};

struct TaskRendezvous {
  std::map<std::string, std::string> env;
  // Files to create in the task's directory before it starts, name ->
  // contents (the MPI hostfile). Their absolute paths are passed in env
  // (e.g. OMPI hostfile path) by the executor via `file_env` below.
  std::map<std::string, std::string> files;
  // env var -> file name in `files`; the executor sets the var to the
  // file's absolute path.
  std::map<std::string, std::string> file_env;
};

// `tasks` lists every task of the job (all roles, all indices; any order).
// Returns the additions for `self` (role, index). RANK is global: the
// master role's tasks first, then the other roles in spec order.
//   pytorch:    MASTER_ADDR, MASTER_PORT (master 0, else worker 0),
//               WORLD_SIZE (all replicas), RANK, LOCAL_RANK and
//               LOCAL_WORLD_SIZE (among the job's tasks on self's node),
//               PET_MASTER_ADDR, PET_MASTER_PORT, PET_NNODES (= WORLD_SIZE),
//               PET_NODE_RANK (= RANK), PET_NPROC_PER_NODE=1 (for torchrun)
//   tensorflow: TF_CONFIG {"cluster":{role:[host:port…]},"task":{type,index},
//               "environment":"cloud"}; roles in spec order, the evaluator
//               left out of the cluster (as TFJob does)
//   mpi:        launcher gets OMPI_MCA_orte_default_hostfile (via file_env)
//               + a hostfile ("host slots=N" per distinct worker host),
//               OMPI_ALLOW_RUN_AS_ROOT=1, OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
//               and LATHE_MPI_NUM_WORKERS; workers get nothing more
//   xgboost:    DMLC_TRACKER_URI, DMLC_TRACKER_PORT (master 0's address),
//               DMLC_NUM_WORKER (all replicas, master included),
//               DMLC_TASK_ID (= RANK), plus MASTER_ADDR/PORT,
//               WORLD_SIZE, RANK as the Kubeflow operator does
//   every framework: LATHE_ROLE, LATHE_REPLICA_INDEX, LATHE_NUM_REPLICAS
// INVALID_ARGUMENT (field "tasks" or "self") when self is not a task of the
// spec, or `tasks` lists an unknown or duplicate task, lacks one (any
// framework but none), or lacks a host/port that is used. Pure; cheap.
StatusOr<TaskRendezvous> RenderRendezvous(const JobSpec& spec,
                                          const std::vector<TaskAddress>& tasks,
                                          const std::string& self_role, int self_index);

}  // namespace lathe::spec
