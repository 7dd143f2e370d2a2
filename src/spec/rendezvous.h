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

// `tasks` lists every task of the job (all roles, all indices) in the
// job's role order. Returns the additions for `self` (role, index).
//   pytorch:    MASTER_ADDR, MASTER_PORT (master 0, else worker 0),
//               WORLD_SIZE, RANK (master first), LOCAL_RANK, PET_NNODES…
//   tensorflow: TF_CONFIG {"cluster":{role:[host:port…]},"task":{type,index}}
//   mpi:        launcher gets OMPI_MCA_orte_default_hostfile + a hostfile
//               ("host slots=N" per worker node); workers get nothing
//   xgboost:    DMLC_TRACKER_URI, DMLC_TRACKER_PORT (master 0's address),
//               DMLC_NUM_WORKER, DMLC_TASK_ID, plus MASTER_ADDR/PORT,
//               WORLD_SIZE, RANK as the Kubeflow operator does
//   every framework: LATHE_ROLE, LATHE_REPLICA_INDEX, LATHE_NUM_REPLICAS
StatusOr<TaskRendezvous> RenderRendezvous(const JobSpec& spec,
                                          const std::vector<TaskAddress>& tasks,
                                          const std::string& self_role, int self_index);

}  // namespace lathe::spec
