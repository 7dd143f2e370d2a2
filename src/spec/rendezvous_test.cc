#include "spec/rendezvous.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "base/yaml.h"

namespace lathe::spec {
namespace {

JobSpec MustParse(const std::string& yaml) {
  StatusOr<JsonValue> doc = ParseYaml(yaml);
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  if (!doc.ok()) return {};
  StatusOr<JobSpec> spec = ParseJobSpec(*doc);
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  return spec.ok() ? *spec : JobSpec{};
}

TaskRendezvous MustRender(const JobSpec& spec, const std::vector<TaskAddress>& tasks,
                          const std::string& role, int index) {
  StatusOr<TaskRendezvous> r = RenderRendezvous(spec, tasks, role, index);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : TaskRendezvous{};
}

using Env = std::map<std::string, std::string>;

TEST(Rendezvous, PyTorchMasterAndTwoWorkers) {
  JobSpec spec = MustParse(R"(
name: ddp
framework: pytorch
roles:
  - {name: master, command: x}
  - {name: worker, replicas: 2, command: x}
)");
  // master and worker 1 share node a; worker 0 is alone on node b.
  std::vector<TaskAddress> tasks = {{"master", 0, "10.0.0.1", 29500, "a"},
                                    {"worker", 0, "10.0.0.2", 29501, "b"},
                                    {"worker", 1, "10.0.0.1", 29502, "a"}};
  EXPECT_EQ(MustRender(spec, tasks, "master", 0).env, (Env{{"LATHE_NUM_REPLICAS", "1"},
                                                           {"LATHE_REPLICA_INDEX", "0"},
                                                           {"LATHE_ROLE", "master"},
                                                           {"LOCAL_RANK", "0"},
                                                           {"LOCAL_WORLD_SIZE", "2"},
                                                           {"MASTER_ADDR", "10.0.0.1"},
                                                           {"MASTER_PORT", "29500"},
                                                           {"PET_MASTER_ADDR", "10.0.0.1"},
                                                           {"PET_MASTER_PORT", "29500"},
                                                           {"PET_NNODES", "3"},
                                                           {"PET_NODE_RANK", "0"},
                                                           {"PET_NPROC_PER_NODE", "1"},
                                                           {"RANK", "0"},
                                                           {"WORLD_SIZE", "3"}}));
  Env w0 = MustRender(spec, tasks, "worker", 0).env;
  EXPECT_EQ(w0["RANK"], "1");
  EXPECT_EQ(w0["LOCAL_RANK"], "0");
  EXPECT_EQ(w0["LOCAL_WORLD_SIZE"], "1");
  EXPECT_EQ(w0["MASTER_ADDR"], "10.0.0.1");
  EXPECT_EQ(w0["LATHE_NUM_REPLICAS"], "2");
  Env w1 = MustRender(spec, tasks, "worker", 1).env;
  EXPECT_EQ(w1["RANK"], "2");
  EXPECT_EQ(w1["LOCAL_RANK"], "1");
  EXPECT_EQ(w1["WORLD_SIZE"], "3");
  EXPECT_EQ(w1["LATHE_REPLICA_INDEX"], "1");
  EXPECT_TRUE(MustRender(spec, tasks, "worker", 1).files.empty());
}

TEST(Rendezvous, PyTorchWorkersOnlyUseWorkerZero) {
  JobSpec spec =
      MustParse("name: ddp\nframework: pytorch\nroles: [{name: worker, replicas: 2, command: x}]");
  // The roles' order in `tasks` does not matter.
  std::vector<TaskAddress> tasks = {{"worker", 1, "127.0.0.1", 40001, "local"},
                                    {"worker", 0, "127.0.0.1", 40000, "local"}};
  Env w1 = MustRender(spec, tasks, "worker", 1).env;
  EXPECT_EQ(w1["MASTER_ADDR"], "127.0.0.1");
  EXPECT_EQ(w1["MASTER_PORT"], "40000");
  EXPECT_EQ(w1["RANK"], "1");
  EXPECT_EQ(w1["LOCAL_RANK"], "1");
  EXPECT_EQ(w1["WORLD_SIZE"], "2");
}

TEST(Rendezvous, TensorFlowConfig) {
  JobSpec spec = MustParse(R"(
name: tf
framework: tensorflow
roles:
  - {name: chief, command: x}
  - {name: ps, command: x}
  - {name: worker, replicas: 2, command: x}
  - {name: evaluator, command: x}
)");
  std::vector<TaskAddress> tasks = {{"chief", 0, "h0", 2000, "n0"},
                                    {"ps", 0, "h1", 2001, "n1"},
                                    {"worker", 0, "h2", 2002, "n2"},
                                    {"worker", 1, "::1", 2003, "n3"},
                                    {"evaluator", 0, "h4", 2004, "n4"}};
  TaskRendezvous r = MustRender(spec, tasks, "worker", 1);
  StatusOr<JsonValue> config = ParseJson(r.env["TF_CONFIG"]);
  ASSERT_TRUE(config.ok()) << r.env["TF_CONFIG"];
  EXPECT_EQ(
      config->Dump(),
      R"({"cluster":{"chief":["h0:2000"],"ps":["h1:2001"],"worker":["h2:2002","[::1]:2003"]},)"
      R"("task":{"type":"worker","index":1},"environment":"cloud"})");
  EXPECT_EQ(r.env["LATHE_ROLE"], "worker");
  EXPECT_EQ(r.env.count("RANK"), 0u);

  StatusOr<JsonValue> eval = ParseJson(MustRender(spec, tasks, "evaluator", 0).env["TF_CONFIG"]);
  ASSERT_TRUE(eval.ok());
  const JsonValue* task = eval->Find("task");
  ASSERT_NE(task, nullptr);
  EXPECT_EQ(task->Find("type")->as_string(), "evaluator");
  EXPECT_EQ(task->Find("index")->as_int(), 0);
  EXPECT_EQ(eval->Find("cluster")->Find("evaluator"), nullptr);  // not in the cluster
}

TEST(Rendezvous, MpiLauncherGetsHostfile) {
  JobSpec spec = MustParse(R"(
name: mpi
framework: mpi
roles:
  - {name: launcher, command: mpirun -np 3 ./hello}
  - {name: worker, replicas: 3}
)");
  std::vector<TaskAddress> tasks = {{"launcher", 0, "10.0.0.9", 0, "n9"},
                                    {"worker", 0, "10.0.0.1", 0, "n1"},
                                    {"worker", 1, "10.0.0.2", 0, "n2"},
                                    {"worker", 2, "10.0.0.1", 0, "n1"}};
  TaskRendezvous launcher = MustRender(spec, tasks, "launcher", 0);
  EXPECT_EQ(launcher.files, (Env{{"hostfile", "10.0.0.1 slots=2\n10.0.0.2 slots=1\n"}}));
  EXPECT_EQ(launcher.file_env, (Env{{"OMPI_MCA_orte_default_hostfile", "hostfile"}}));
  EXPECT_EQ(launcher.env, (Env{{"LATHE_MPI_NUM_WORKERS", "3"},
                               {"LATHE_NUM_REPLICAS", "1"},
                               {"LATHE_REPLICA_INDEX", "0"},
                               {"LATHE_ROLE", "launcher"},
                               {"OMPI_ALLOW_RUN_AS_ROOT", "1"},
                               {"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"}}));
  TaskRendezvous worker = MustRender(spec, tasks, "worker", 2);
  EXPECT_EQ(
      worker.env,
      (Env{{"LATHE_NUM_REPLICAS", "3"}, {"LATHE_REPLICA_INDEX", "2"}, {"LATHE_ROLE", "worker"}}));
  EXPECT_TRUE(worker.files.empty());
  EXPECT_TRUE(worker.file_env.empty());
}

TEST(Rendezvous, MpiWorkersOnOneHostAreOneLine) {
  JobSpec spec = MustParse(
      "name: mpi\nframework: mpi\nroles: [{name: launcher, command: x}, {name: worker, replicas: "
      "2}]");
  // Two scheduler nodes that are the same machine still make one line.
  std::vector<TaskAddress> tasks = {{"launcher", 0, "127.0.0.1", 0, "local"},
                                    {"worker", 0, "127.0.0.1", 0, "local"},
                                    {"worker", 1, "127.0.0.1", 0, "local-2"}};
  EXPECT_EQ(MustRender(spec, tasks, "launcher", 0).files.at("hostfile"), "127.0.0.1 slots=2\n");
}

TEST(Rendezvous, XgboostCountsTheMaster) {
  JobSpec spec = MustParse(R"(
name: xgb
framework: xgboost
roles:
  - {name: master, command: x}
  - {name: worker, replicas: 2, command: x}
)");
  std::vector<TaskAddress> tasks = {{"master", 0, "127.0.0.1", 9091, "local"},
                                    {"worker", 0, "127.0.0.1", 9092, "local"},
                                    {"worker", 1, "127.0.0.1", 9093, "local"}};
  EXPECT_EQ(MustRender(spec, tasks, "worker", 1).env, (Env{{"DMLC_NUM_WORKER", "3"},
                                                           {"DMLC_TASK_ID", "2"},
                                                           {"DMLC_TRACKER_PORT", "9091"},
                                                           {"DMLC_TRACKER_URI", "127.0.0.1"},
                                                           {"LATHE_NUM_REPLICAS", "2"},
                                                           {"LATHE_REPLICA_INDEX", "1"},
                                                           {"LATHE_ROLE", "worker"},
                                                           {"MASTER_ADDR", "127.0.0.1"},
                                                           {"MASTER_PORT", "9091"},
                                                           {"RANK", "2"},
                                                           {"WORLD_SIZE", "3"}}));
  EXPECT_EQ(MustRender(spec, tasks, "master", 0).env.at("DMLC_TASK_ID"), "0");
}

TEST(Rendezvous, NoFrameworkGetsOnlyLatheVariables) {
  JobSpec spec = MustParse("name: j\nroles: [{name: main, replicas: 2, command: x}]");
  EXPECT_EQ(
      MustRender(spec, {{"main", 1, "127.0.0.1", 0, "local"}}, "main", 1).env,
      (Env{{"LATHE_NUM_REPLICAS", "2"}, {"LATHE_REPLICA_INDEX", "1"}, {"LATHE_ROLE", "main"}}));
}

TEST(Rendezvous, EnvNamesCoverWhatIsRendered) {
  // Every variable a framework renders (but LATHE_*) is in its reserved list,
  // so a role's env can never collide with it.
  struct Case {
    const char* yaml;
    std::vector<TaskAddress> tasks;
  };
  const Case cases[] = {
      {"name: j\nframework: pytorch\nroles: [{name: master, command: x}]",
       {{"master", 0, "h", 1, "n"}}},
      {"name: j\nframework: tensorflow\nroles: [{name: worker, command: x}]",
       {{"worker", 0, "h", 1, "n"}}},
      {"name: j\nframework: mpi\nroles: [{name: launcher, command: x}, {name: worker}]",
       {{"launcher", 0, "h", 1, "n"}, {"worker", 0, "h", 1, "n"}}},
      {"name: j\nframework: xgboost\nroles: [{name: master, command: x}]",
       {{"master", 0, "h", 1, "n"}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    JobSpec spec = MustParse(c.yaml);
    TaskRendezvous r = MustRender(spec, c.tasks, c.tasks[0].role, 0);
    const std::vector<std::string>& names = RendezvousEnvNames(spec.framework);
    size_t rendered = 0;
    auto check = [&](const std::string& name) {
      if (name.rfind("LATHE_", 0) == 0) return;
      ++rendered;
      EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
    };
    for (const auto& [name, value] : r.env) check(name);
    for (const auto& [name, file] : r.file_env) check(name);
    EXPECT_EQ(rendered, names.size());
  }
  EXPECT_TRUE(RendezvousEnvNames(Framework::kNone).empty());
}

TEST(Rendezvous, MissingOrBadTasksAreErrors) {
  JobSpec spec = MustParse(
      "name: ddp\nframework: pytorch\nroles: [{name: master, command: x}, {name: worker, "
      "replicas: 2, command: x}]");
  std::vector<TaskAddress> all = {
      {"master", 0, "h", 1, "n"}, {"worker", 0, "h", 2, "n"}, {"worker", 1, "h", 3, "n"}};
  auto error = [&](const std::vector<TaskAddress>& tasks, const std::string& role, int index) {
    StatusOr<TaskRendezvous> r = RenderRendezvous(spec, tasks, role, index);
    EXPECT_FALSE(r.ok());
    if (r.ok()) return std::string();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    return r.status().message();
  };
  EXPECT_EQ(error({all[0], all[1]}, "worker", 0), "tasks: no address for worker[1]");
  EXPECT_EQ(error({all[0], all[1], all[2], all[2]}, "worker", 0),
            "tasks: worker[1] is listed twice");
  EXPECT_EQ(error({all[0], all[1], {"worker", 2, "h", 4, "n"}}, "worker", 0),
            "tasks: worker[2]: role worker has 2 replicas");
  EXPECT_EQ(error({all[0], all[1], all[2], {"ps", 0, "h", 4, "n"}}, "worker", 0),
            "tasks: ps[0] is not a role of the job");
  EXPECT_EQ(error({{"master", 0, "h", 0, "n"}, all[1], all[2]}, "worker", 0),
            "tasks: master[0] has no valid port (0)");
  EXPECT_EQ(error({{"master", 0, "", 1, "n"}, all[1], all[2]}, "worker", 0),
            "tasks: master[0] has no host");
  EXPECT_EQ(error(all, "worker", 2), "self: worker[2]: role worker has 2 replicas");
  EXPECT_EQ(error(all, "chief", 0), "self: \"chief\" is not a role of the job");

  JobSpec plain = MustParse("name: j\nroles: [{name: main, replicas: 2, command: x}]");
  StatusOr<TaskRendezvous> r = RenderRendezvous(plain, {{"main", 0, "h", 0, "n"}}, "main", 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "tasks: no address for main[1]");
}

}  // namespace
}  // namespace lathe::spec
