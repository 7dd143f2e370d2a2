#include "spec/job_spec.h"

#include <gtest/gtest.h>

#include "base/yaml.h"

namespace lathe::spec {
namespace {

StatusOr<JobSpec> ParseJobYaml(const std::string& yaml, const std::string& path = "") {
  StatusOr<JsonValue> doc = ParseYaml(yaml);
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  if (!doc.ok()) return doc.status();
  return ParseJobSpec(*doc, path);
}

JobSpec MustParse(const std::string& yaml) {
  StatusOr<JobSpec> spec = ParseJobYaml(yaml);
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  return spec.ok() ? *spec : JobSpec{};
}

std::string Canonical(const JobSpec& spec) {
  std::string out;
  JsonWriter w(&out);
  WriteJobSpec(w, spec);
  return out;
}

constexpr char kFull[] = R"(
name: resnet-ddp
project: vision
queue: team-a
priority: 10
labels: {team: vision, example.com/owner: ana}
framework: pytorch
roles:
  - name: master
    command: python3 train.py --epochs 3
    env: {NCCL_DEBUG: INFO}
    resources: {cpu: 2, memory: 4Gi, gpu: 1}
    working_dir: src
  - name: worker
    replicas: 2
    command: [python3, train.py]
    args: [--epochs, "3"]
    resources: {cpu: 500m, memory: 1536Mi, gpu: 0.5}
min_available: 3
restart_policy: {policy: ExitCodes, exit_codes: [1, 137], limit: 5, backoff: 30s}
timeout: 1h30m
ttl_after_finished: 2d
node_selector: {gpu-model: a100}
tolerations:
  - {key: dedicated, operator: Equal, value: ml, effect: NoSchedule}
  - {operator: Exists}
tracking: {experiment: resnet}
)";

TEST(JobSpec, ParsesEveryField) {
  JobSpec spec = MustParse(kFull);
  EXPECT_EQ(spec.name, "resnet-ddp");
  EXPECT_EQ(spec.project, "vision");
  EXPECT_EQ(spec.queue, "team-a");
  EXPECT_EQ(spec.priority, 10);
  EXPECT_EQ(spec.labels.at("example.com/owner"), "ana");
  EXPECT_EQ(spec.framework, Framework::kPyTorch);
  ASSERT_EQ(spec.roles.size(), 2u);
  const Role& master = spec.roles[0];
  EXPECT_EQ(master.replicas, 1);
  EXPECT_EQ(master.command,
            (std::vector<std::string>{"/bin/sh", "-c", "python3 train.py --epochs 3"}));
  EXPECT_EQ(master.env.at("NCCL_DEBUG"), "INFO");
  EXPECT_EQ(master.resources, (sched::Resources{2000, 4096, 1000}));
  EXPECT_EQ(master.working_dir, "src");
  const Role& worker = spec.roles[1];
  EXPECT_EQ(worker.replicas, 2);
  EXPECT_EQ(worker.command, (std::vector<std::string>{"python3", "train.py"}));
  EXPECT_EQ(worker.args, (std::vector<std::string>{"--epochs", "3"}));
  EXPECT_EQ(worker.resources, (sched::Resources{500, 1536, 500}));
  EXPECT_EQ(spec.TotalReplicas(), 3);
  EXPECT_EQ(spec.min_available, 3);
  EXPECT_EQ(spec.restart.policy, RestartPolicy::kExitCodes);
  EXPECT_EQ(spec.restart.exit_codes, (std::vector<int>{1, 137}));
  EXPECT_EQ(spec.restart.limit, 5);
  EXPECT_EQ(spec.restart.backoff_seconds, 30);
  EXPECT_EQ(spec.timeout_seconds, 5400);
  EXPECT_EQ(spec.ttl_seconds_after_finished, 172800);
  EXPECT_EQ(spec.node_selector.at("gpu-model"), "a100");
  ASSERT_EQ(spec.tolerations.size(), 2u);
  EXPECT_EQ(spec.tolerations[0].key, "dedicated");
  EXPECT_EQ(spec.tolerations[0].value, "ml");
  EXPECT_EQ(spec.tolerations[0].effect, sched::TaintEffect::kNoSchedule);
  EXPECT_EQ(spec.tolerations[1].op, "Exists");
  EXPECT_FALSE(spec.tolerations[1].effect.has_value());
  EXPECT_EQ(spec.tracking_experiment, "resnet");
}

TEST(JobSpec, TrackingNeedsAnExperimentName) {
  for (const char* bad : {"tracking: {}", "tracking: {experiment: \"\"}",
                          "tracking: {experiment: x, run: y}"}) {
    auto v = ParseYaml(std::string("name: j\nroles: [{name: main, command: [\"true\"]}]\n") + bad);
    ASSERT_TRUE(v.ok());
    auto spec = ParseJobSpec(*v);
    ASSERT_FALSE(spec.ok()) << bad;
    EXPECT_EQ(spec.status().field().rfind("tracking", 0), 0u) << spec.status().field();
  }
}

TEST(JobSpec, PipelineContextOnlyFromTrustedSources) {
  const std::string doc =
      "name: j\nroles: [{name: main, command: [\"true\"]}]\n"
      "pipeline: {run_id: R1, node: \"train[3]\", outputs_dir: /tmp/o}\n";
  auto v = ParseYaml(doc);
  ASSERT_TRUE(v.ok());
  // Users cannot set it: it is an unknown field for them.
  auto untrusted = ParseJobSpec(*v);
  ASSERT_FALSE(untrusted.ok());
  EXPECT_EQ(untrusted.status().field(), "pipeline");
  auto trusted = ParseJobSpec(*v, "", true);
  ASSERT_TRUE(trusted.ok()) << trusted.status().ToString();
  ASSERT_TRUE(trusted->pipeline.has_value());
  EXPECT_EQ(trusted->pipeline->run_id, "R1");
  EXPECT_EQ(trusted->pipeline->node, "train[3]");
  EXPECT_EQ(trusted->pipeline->outputs_dir, "/tmp/o");
  // Stored form round-trips, and the context takes part in equality.
  std::string json = Canonical(*trusted);
  auto again = ParseJobSpec(*ParseJson(json), "", true);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(*again == *trusted);
  JobSpec other = *trusted;
  other.pipeline->node = "train[4]";
  EXPECT_FALSE(other == *trusted);
  // All three members are required.
  auto partial = ParseYaml("name: j\nroles: [{name: main, command: [\"true\"]}]\n"
                           "pipeline: {run_id: R1, node: n}\n");
  ASSERT_TRUE(partial.ok());
  auto bad = ParseJobSpec(*partial, "", true);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().field(), "pipeline.outputs_dir");
}

TEST(JobSpec, CanonicalJsonParsesBackEqual) {
  JobSpec spec = MustParse(kFull);
  std::string json = Canonical(spec);
  StatusOr<JsonValue> doc = ParseJson(json);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  StatusOr<JobSpec> again = ParseJobSpec(*doc);
  ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << json;
  EXPECT_TRUE(*again == spec) << json;
  EXPECT_EQ(Canonical(*again), json);
  JobSpec other = spec;
  other.tolerations[1].effect = sched::TaintEffect::kPreferNoSchedule;
  EXPECT_FALSE(other == spec);
}

TEST(JobSpec, DefaultsAreWrittenExplicitly) {
  JobSpec spec = MustParse(R"(
name: hello
roles: [{name: main, command: [echo, hi]}]
)");
  EXPECT_EQ(spec.queue, "default");
  EXPECT_EQ(spec.framework, Framework::kNone);
  EXPECT_EQ(spec.roles[0].replicas, 1);
  EXPECT_EQ(spec.roles[0].resources, (sched::Resources{1000, 1024, 0}));
  EXPECT_EQ(spec.restart.policy, RestartPolicy::kNever);
  EXPECT_EQ(spec.min_available, 0);
  EXPECT_EQ(Canonical(spec),
            R"({"name":"hello","project":"","queue":"default","priority":0,"labels":{},)"
            R"("framework":"none","roles":[{"name":"main","replicas":1,"command":["echo","hi"],)"
            R"("args":[],"env":{},"resources":{"cpu":"1","memory":"1Gi","gpu":"0"},)"
            R"("working_dir":""}],"min_available":0,"restart_policy":{"policy":"Never",)"
            R"("exit_codes":[],"limit":3,"backoff":"10s"},"node_selector":{},"tolerations":[]})");
  StatusOr<JsonValue> doc = ParseJson(Canonical(spec));
  ASSERT_TRUE(doc.ok());
  EXPECT_TRUE(*ParseJobSpec(*doc) == spec);
}

TEST(JobSpec, MpiWorkerWithoutCommandRoundTrips) {
  JobSpec spec = MustParse(R"(
name: allreduce
framework: mpi
roles:
  - {name: launcher, command: mpirun -np 2 ./hello}
  - {name: worker, replicas: 2}
)");
  EXPECT_TRUE(spec.roles[1].command.empty());
  StatusOr<JsonValue> doc = ParseJson(Canonical(spec));
  ASSERT_TRUE(doc.ok());
  StatusOr<JobSpec> again = ParseJobSpec(*doc);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(*again == spec);
}

TEST(JobSpec, RestartPolicyForms) {
  const std::string head = "name: j\nroles: [{name: main, command: x}]\n";
  Restart r = MustParse(head + "restart_policy: OnFailure\n").restart;
  EXPECT_EQ(r.policy, RestartPolicy::kOnFailure);
  EXPECT_EQ(r.limit, 3);
  EXPECT_EQ(r.backoff_seconds, 10);
  r = MustParse(head + "restart_policy: Never\n").restart;
  EXPECT_EQ(r.policy, RestartPolicy::kNever);
  r = MustParse(head + "restart_policy: {policy: OnFailure, limit: 0, backoff: 5m}\n").restart;
  EXPECT_EQ(r.policy, RestartPolicy::kOnFailure);
  EXPECT_EQ(r.limit, 0);
  EXPECT_EQ(r.backoff_seconds, 300);
}

struct BadCase {
  const char* yaml;
  const char* field;
  const char* message;  // the whole message
};

// Every validation rule, with the exact field path and message.
TEST(JobSpec, ValidationNamesTheField) {
  const BadCase cases[] = {
      {"roles: [{name: m, command: x}]", "name", "name: required field is missing"},
      {"name: My_Job\nroles: [{name: m, command: x}]", "name",
       "name: \"My_Job\" is not a valid name (1-63 characters of a-z, 0-9 and '-', starting and "
       "ending with a letter or digit)"},
      {"name: -j\nroles: [{name: m, command: x}]", "name", nullptr},
      {"name: j-\nroles: [{name: m, command: x}]", "name", nullptr},
      {"name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
       "roles: [{name: m, command: x}]",
       "name", nullptr},
      {"name: j\nproject: Vision\nroles: [{name: m, command: x}]", "project", nullptr},
      {"name: j\nqueue: ''\nroles: [{name: m, command: x}]", "queue", nullptr},
      {"name: j\nrole: []\nroles: [{name: m, command: x}]", "role", "role: unknown field"},
      {"name: j\npriority: 1000001\nroles: [{name: m, command: x}]", "priority",
       "priority: 1000001 is not in -1000000..1000000"},
      {"name: j\npriority: high\nroles: [{name: m, command: x}]", "priority",
       "priority: expected an integer, got a string"},
      {"name: j\nlabels: {'bad key': x}\nroles: [{name: m, command: x}]", "labels.bad key",
       nullptr},
      {"name: j\nframework: torch\nroles: [{name: m, command: x}]", "framework",
       "framework: \"torch\" is not a framework (none, pytorch, tensorflow, mpi, xgboost)"},
      {"name: j", "roles", "roles: required field is missing"},
      {"name: j\nroles: []", "roles", "roles: a job needs at least one role"},
      {"name: j\nroles: {name: m}", "roles", "roles: expected a list of roles, got an object"},
      {"name: j\nroles: [{name: m, command: x}, {name: m, command: y}]", "roles[1].name",
       "roles[1].name: \"m\" is already the name of roles[0]"},
      {"name: j\nroles: [{name: Main, command: x}]", "roles[0].name", nullptr},
      {"name: j\nroles: [{name: m, command: x, replicas: 0}]", "roles[0].replicas",
       "roles[0].replicas: 0 is not in 1..1000"},
      {"name: j\nroles: [{name: m, command: x, replicas: 1001}]", "roles[0].replicas", nullptr},
      {"name: j\nroles: [{name: m}]", "roles[0].command",
       "roles[0].command: required: a string (run by /bin/sh -c) or a list of strings"},
      {"name: j\nroles: [{name: m, command: []}]", "roles[0].command", nullptr},
      {"name: j\nroles: [{name: m, command: '  '}]", "roles[0].command",
       "roles[0].command: must not be empty"},
      {"name: j\nroles: [{name: m, command: [python3, 3]}]", "roles[0].command[1]",
       "roles[0].command[1]: expected a string, got an integer"},
      {"name: j\nroles: [{name: m, command: 3}]", "roles[0].command",
       "roles[0].command: expected a string or a list of strings, got an integer"},
      {"name: j\nroles: [{name: m, command: x, args: [a]}]", "roles[0].args", nullptr},
      {"name: j\nroles: [{name: m, command: x, env: {1X: a}}]", "roles[0].env.1X",
       "roles[0].env.1X: \"1X\" is not a valid environment variable name (letters, digits and "
       "'_', not starting with a digit)"},
      {"name: j\nroles: [{name: m, command: x, env: {A-B: a}}]", "roles[0].env.A-B", nullptr},
      {"name: j\nroles: [{name: m, command: x, env: {LATHE_ROLE: a}}]", "roles[0].env.LATHE_ROLE",
       "roles[0].env.LATHE_ROLE: LATHE_ROLE is reserved: names starting with LATHE_ are set by "
       "Lathe"},
      {"name: j\nframework: pytorch\nroles: [{name: worker, command: x, env: {RANK: '0'}}]",
       "roles[0].env.RANK",
       "roles[0].env.RANK: RANK is set by Lathe for pytorch jobs (rendezvous); remove it from "
       "env"},
      {"name: j\nframework: tensorflow\nroles: [{name: worker, command: x, env: {TF_CONFIG: a}}]",
       "roles[0].env.TF_CONFIG", nullptr},
      {"name: j\nframework: xgboost\nroles: [{name: master, command: x, env: {DMLC_TASK_ID: a}}]",
       "roles[0].env.DMLC_TASK_ID", nullptr},
      {"name: j\nroles: [{name: m, command: x, resources: {memory: 3GB}}]",
       "roles[0].resources.memory",
       "roles[0].resources.memory: \"3GB\" is not a quantity (use e.g. 512Mi, 4Gi)"},
      {"name: j\nroles: [{name: m, command: x}, {name: n, command: x, resources: {memory: 3GB}}]",
       "roles[1].resources.memory", nullptr},
      {"name: j\nroles: [{name: m, command: x, resources: {cpu: 0}}]", "roles[0].resources.cpu",
       "roles[0].resources.cpu: 0 must be greater than 0"},
      {"name: j\nroles: [{name: m, command: x, resources: {gpu: 1.5}}]", "roles[0].resources.gpu",
       nullptr},
      {"name: j\nroles: [{name: m, command: x, resources: {gpus: 1}}]", "roles[0].resources.gpus",
       "roles[0].resources.gpus: unknown field"},
      {"name: j\nroles: [{name: m, command: x, replicas: 2}]\nmin_available: 3", "min_available",
       "min_available: 3 is more than the job's 2 replicas"},
      {"name: j\nroles: [{name: m, command: x}]\nmin_available: -1", "min_available", nullptr},
      {"name: j\nroles: [{name: m, command: x}]\nrestart_policy: Always", "restart_policy",
       "restart_policy: \"Always\" is not a restart policy (Never, OnFailure, or an object)"},
      {"name: j\nroles: [{name: m, command: x}]\nrestart_policy: ExitCodes", "restart_policy",
       nullptr},
      {"name: j\nroles: [{name: m, command: x}]\nrestart_policy: 3", "restart_policy", nullptr},
      {"name: j\nroles: [{name: m, command: x}]\nrestart_policy: {limit: 2}",
       "restart_policy.policy", "restart_policy.policy: required field is missing"},
      {"name: j\nroles: [{name: m, command: x}]\nrestart_policy: {policy: Sometimes}",
       "restart_policy.policy", nullptr},
      {"name: j\nroles: [{name: m, command: x}]\nrestart_policy: {policy: ExitCodes}",
       "restart_policy.exit_codes",
       "restart_policy.exit_codes: policy ExitCodes needs at least one exit code"},
      {"name: j\nroles: [{name: m, command: x}]\n"
       "restart_policy: {policy: ExitCodes, exit_codes: [1, 2, 256]}",
       "restart_policy.exit_codes[2]", "restart_policy.exit_codes[2]: 256 is not in 0..255"},
      {"name: j\nroles: [{name: m, command: x}]\n"
       "restart_policy: {policy: ExitCodes, exit_codes: [-1]}",
       "restart_policy.exit_codes[0]", nullptr},
      {"name: j\nroles: [{name: m, command: x}]\n"
       "restart_policy: {policy: ExitCodes, exit_codes: [a]}",
       "restart_policy.exit_codes[0]",
       "restart_policy.exit_codes[0]: expected an integer, got a "
       "string"},
      {"name: j\nroles: [{name: m, command: x}]\n"
       "restart_policy: {policy: OnFailure, exit_codes: [1]}",
       "restart_policy.exit_codes", "restart_policy.exit_codes: only used with policy ExitCodes"},
      {"name: j\nroles: [{name: m, command: x}]\nrestart_policy: {policy: OnFailure, limit: 101}",
       "restart_policy.limit", "restart_policy.limit: 101 is not in 0..100"},
      {"name: j\nroles: [{name: m, command: x}]\nrestart_policy: {policy: OnFailure, limit: -1}",
       "restart_policy.limit", nullptr},
      {"name: j\nroles: [{name: m, command: x}]\n"
       "restart_policy: {policy: OnFailure, backoff: 10x}",
       "restart_policy.backoff", nullptr},
      {"name: j\nroles: [{name: m, command: x}]\n"
       "restart_policy: {policy: OnFailure, backoff: 6m}",
       "restart_policy.backoff", "restart_policy.backoff: 6m is above the 5m cap"},
      {"name: j\nroles: [{name: m, command: x}]\ntimeout: 0", "timeout",
       "timeout: 0 must be greater than 0"},
      {"name: j\nroles: [{name: m, command: x}]\nttl_after_finished: soon", "ttl_after_finished",
       nullptr},
      {"name: j\nroles: [{name: m, command: x}]\nnode_selector: {a: 1}", "node_selector.a",
       "node_selector.a: expected a string, got an integer"},
      {"name: j\nroles: [{name: m, command: x}]\ntolerations: [{key: a, effect: NoExecute}]",
       "tolerations[0].effect",
       "tolerations[0].effect: \"NoExecute\" is not NoSchedule or PreferNoSchedule (or empty for "
       "both)"},
      {"name: j\nroles: [{name: m, command: x}]\ntolerations: [{key: a}, {operator: In}]",
       "tolerations[1].operator", "tolerations[1].operator: \"In\" is not Equal or Exists"},
      {"name: j\nroles: [{name: m, command: x}]\ntolerations: [{value: a}]", "tolerations[0].key",
       "tolerations[0].key: an Equal toleration needs a key"},
      {"name: j\nroles: [{name: m, command: x}]\ntolerations: [{key: a, operator: Exists, value: "
       "b}]",
       "tolerations[0].value", "tolerations[0].value: must be empty with operator Exists"},
      {"name: j\nroles: [{name: m, command: x}]\ntolerations: [{key: a, effects: NoSchedule}]",
       "tolerations[0].effects", nullptr},
      {"name: j\nroles: [{name: m, command: x}]\ntolerations: {key: a}", "tolerations", nullptr},
      // Framework role rules.
      {"name: j\nframework: pytorch\nroles: [{name: chief, command: x}]", "roles[0].name",
       "roles[0].name: \"chief\" is not a pytorch role (master, worker)"},
      {"name: j\nframework: pytorch\nroles: [{name: master, command: x, replicas: 2}]",
       "roles[0].replicas", "roles[0].replicas: the pytorch master has exactly 1 replica, got 2"},
      {"name: j\nframework: tensorflow\nroles: [{name: ps, command: x}]", "roles",
       "roles: framework tensorflow needs a \"chief\" or a \"worker\" role"},
      {"name: j\nframework: tensorflow\nroles: [{name: chief, command: x, replicas: 2}]",
       "roles[0].replicas", nullptr},
      {"name: j\nframework: tensorflow\nroles: [{name: master, command: x}]", "roles[0].name",
       nullptr},
      {"name: j\nframework: mpi\nroles: [{name: launcher, command: x}]", "roles",
       "roles: framework mpi needs a \"worker\" role"},
      {"name: j\nframework: mpi\nroles: [{name: worker, command: x}]", "roles",
       "roles: framework mpi needs a \"launcher\" role"},
      {"name: j\nframework: mpi\nroles: [{name: launcher, command: x, replicas: 2}, {name: "
       "worker}]",
       "roles[0].replicas", nullptr},
      {"name: j\nframework: mpi\nroles: [{name: launcher}, {name: worker}]", "roles[0].command",
       nullptr},
      {"name: j\nroles: [{name: worker}]", "roles[0].command", nullptr},  // held only under mpi
      {"name: j\nframework: xgboost\nroles: [{name: worker, command: x}]", "roles",
       "roles: framework xgboost needs a \"master\" role"},
      {"name: j\nframework: xgboost\nroles: [{name: master, command: x}, {name: ps, command: x}]",
       "roles[1].name", nullptr},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.yaml);
    StatusOr<JobSpec> spec = ParseJobYaml(c.yaml);
    ASSERT_FALSE(spec.ok());
    EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(spec.status().field(), c.field);
    const std::string& m = spec.status().message();
    EXPECT_EQ(m.rfind(std::string(c.field) + ": ", 0), 0u) << m;
    if (c.message != nullptr) {
      EXPECT_EQ(m, c.message);
    }
  }
}

TEST(JobSpec, PathPrefixesEveryField) {
  StatusOr<JobSpec> spec =
      ParseJobYaml("name: j\nroles: [{name: m, command: x, replicas: 0}]", "jobs[3]");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().field(), "jobs[3].roles[0].replicas");
  EXPECT_EQ(spec.status().message(), "jobs[3].roles[0].replicas: 0 is not in 1..1000");
  spec = ParseJobYaml("name: j\nframework: mpi\nroles: [{name: launcher, command: x}]", "jobs[1]");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().field(), "jobs[1].roles");
}

TEST(JobSpec, FrameworkRolesAccepted) {
  MustParse("name: j\nframework: pytorch\nroles: [{name: worker, replicas: 4, command: x}]");
  MustParse(
      "name: j\nframework: tensorflow\nroles: [{name: chief, command: x}, {name: ps, replicas: 2, "
      "command: x}, {name: worker, replicas: 2, command: x}, {name: evaluator, command: x}]");
  MustParse("name: j\nframework: xgboost\nroles: [{name: master, command: x}]");
  // Rendezvous names are free to use under another framework.
  MustParse("name: j\nroles: [{name: main, command: x, env: {RANK: '3', TF_CONFIG: '{}'}}]");
}

TEST(JobSpec, ToSchedJobHasOneGroupPerRole) {
  JobSpec spec = MustParse(kFull);
  sched::Job job = ToSchedJob(spec, "job-1", 1234);
  EXPECT_EQ(job.id, "job-1");
  EXPECT_EQ(job.queue, "team-a");
  EXPECT_EQ(job.priority, 10);
  EXPECT_EQ(job.submit_time, 1234);
  ASSERT_EQ(job.groups.size(), 2u);
  EXPECT_EQ(job.groups[0].name, "master");
  EXPECT_EQ(job.groups[0].count, 1);
  EXPECT_EQ(job.groups[0].request, (sched::Resources{2000, 4096, 1000}));
  EXPECT_EQ(job.groups[1].name, "worker");
  EXPECT_EQ(job.groups[1].count, 2);
  EXPECT_EQ(job.groups[1].request, (sched::Resources{500, 1536, 500}));
  EXPECT_EQ(job.min_available, 3);
  EXPECT_EQ(job.TotalTasks(), 3);
  EXPECT_EQ(job.node_selector, spec.node_selector);
  ASSERT_EQ(job.tolerations.size(), 2u);
  EXPECT_EQ(job.tolerations[0].key, "dedicated");

  JobSpec mpi = MustParse(
      "name: j\nframework: mpi\nroles: [{name: launcher, command: x}, {name: worker, replicas: "
      "2}]");
  sched::Job mj = ToSchedJob(mpi, "job-2", 0);
  ASSERT_EQ(mj.groups.size(), 2u);
  EXPECT_EQ(mj.groups[0].name, "launcher");  // the launcher holds resources too
  EXPECT_EQ(mj.TotalTasks(), 3);
}

// ---- queues

StatusOr<QueueSpec> ParseQueueYaml(const std::string& yaml) {
  StatusOr<JsonValue> doc = ParseYaml(yaml);
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  if (!doc.ok()) return doc.status();
  return ParseQueueSpec(*doc);
}

std::string CanonicalQueue(const QueueSpec& q) {
  std::string out;
  JsonWriter w(&out);
  WriteQueueSpec(w, q);
  return out;
}

TEST(QueueSpec, ParsesAndRoundTrips) {
  StatusOr<QueueSpec> q = ParseQueueYaml(R"(
name: team-a
parent: research
guarantee: {cpu: 16, memory: 64Gi, gpu: 2}
ceiling: {cpu: 64, gpu: 8}
weight: 3
reclaimable: false
)");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->guarantee, (sched::Resources{16000, 65536, 2000}));
  EXPECT_EQ(q->ceiling.value.cpu_milli, 64000);
  EXPECT_EQ(q->ceiling.value.memory_mib, sched::Limit::kUnlimited);
  EXPECT_EQ(q->ceiling.value.gpu_milli, 8000);
  EXPECT_EQ(q->weight, 3);
  EXPECT_FALSE(q->reclaimable);
  std::string json = CanonicalQueue(*q);
  EXPECT_EQ(json, R"({"name":"team-a","parent":"research","guarantee":{"cpu":"16","memory":"64Gi",)"
                  R"("gpu":"2"},"ceiling":{"cpu":"64","gpu":"8"},"weight":3,"reclaimable":false})");
  StatusOr<JsonValue> doc = ParseJson(json);
  ASSERT_TRUE(doc.ok());
  StatusOr<QueueSpec> again = ParseQueueSpec(*doc);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(*again == *q);

  sched::Queue sq = ToSchedQueue(*q);
  EXPECT_EQ(sq.name, "team-a");
  EXPECT_EQ(sq.parent, "research");
  EXPECT_EQ(sq.guarantee, q->guarantee);
  EXPECT_EQ(sq.ceiling.value, q->ceiling.value);
  EXPECT_EQ(sq.weight, 3);
  EXPECT_FALSE(sq.reclaimable);
}

TEST(QueueSpec, DefaultsUnlimitedCeilingAndFractionalGpuTotals) {
  StatusOr<QueueSpec> q = ParseQueueYaml("name: default\nguarantee: {gpu: 2.5, cpu: 0}");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->parent, "");
  EXPECT_EQ(q->guarantee, (sched::Resources{0, 0, 2500}));
  EXPECT_EQ(q->ceiling.value, sched::Limit::Unlimited().value);
  EXPECT_EQ(q->weight, 1);
  EXPECT_TRUE(q->reclaimable);
  EXPECT_EQ(CanonicalQueue(*q),
            R"({"name":"default","parent":"","guarantee":{"cpu":"0","memory":"0Mi","gpu":"2.5"},)"
            R"("ceiling":{},"weight":1,"reclaimable":true})");
}

TEST(QueueSpec, ValidationNamesTheField) {
  const BadCase cases[] = {
      {"parent: x", "name", "name: required field is missing"},
      {"name: Team", "name", nullptr},
      {"name: a\nparent: a", "parent", "parent: a queue cannot be its own parent"},
      {"name: a\nparent: B", "parent", nullptr},
      {"name: a\nweight: 0", "weight", "weight: 0 is not in 1..1000000"},
      {"name: a\nguarantee: {cpu: -1}", "guarantee.cpu", nullptr},
      {"name: a\nguarantee: {memory: lots}", "guarantee.memory", nullptr},
      {"name: a\nceiling: {gpus: 1}", "ceiling.gpus", "ceiling.gpus: unknown field"},
      {"name: a\nguarantee: {gpu: 8}\nceiling: {gpu: 4}", "guarantee.gpu",
       "guarantee.gpu: 8 is above ceiling.gpu 4"},
      {"name: a\nguarantee: {memory: 2Gi}\nceiling: {memory: 1Gi}", "guarantee.memory",
       "guarantee.memory: 2Gi is above ceiling.memory 1Gi"},
      {"name: a\nguarantee: {cpu: 2}\nceiling: {cpu: 1500m}", "guarantee.cpu",
       "guarantee.cpu: 2 is above ceiling.cpu 1500m"},
      {"name: a\nreclaimable: yes please", "reclaimable", nullptr},
      {"name: a\nshare: 1", "share", nullptr},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.yaml);
    StatusOr<QueueSpec> q = ParseQueueYaml(c.yaml);
    ASSERT_FALSE(q.ok());
    EXPECT_EQ(q.status().field(), c.field);
    EXPECT_EQ(q.status().message().rfind(std::string(c.field) + ": ", 0), 0u)
        << q.status().message();
    if (c.message != nullptr) {
      EXPECT_EQ(q.status().message(), c.message);
    }
  }
}

}  // namespace
}  // namespace lathe::spec
