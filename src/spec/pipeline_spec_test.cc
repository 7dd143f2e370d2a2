#include "spec/pipeline_spec.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/yaml.h"

namespace lathe::spec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

StatusOr<PipelineSpec> ParseText(const std::string& yaml) {
  StatusOr<JsonValue> doc = ParseYaml(yaml);
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  if (!doc.ok()) return doc.status();
  return ParsePipelineSpec(*doc);
}

PipelineSpec MustParse(const std::string& yaml) {
  StatusOr<PipelineSpec> spec = ParseText(yaml);
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  return spec.ok() ? *spec : PipelineSpec{};
}

Status ParseStatus(const std::string& yaml) {
  StatusOr<PipelineSpec> spec = ParseText(yaml);
  return spec.ok() ? OkStatus() : spec.status();
}

std::string Canonical(const PipelineSpec& spec) {
  std::string out;
  JsonWriter w(&out);
  WritePipelineSpec(w, spec);
  return out;
}

std::vector<std::string> StepNames(const PipelineSpec& spec) {
  std::vector<std::string> names;
  for (const StepSpec& s : spec.steps) names.push_back(s.name);
  return names;
}

JsonValue Json(const std::string& text) {
  StatusOr<JsonValue> v = ParseJson(text);
  EXPECT_TRUE(v.ok()) << text << ": " << v.status().ToString();
  return v.ok() ? *v : JsonValue();
}

constexpr char kFull[] = R"yaml(
name: train-eval
project: demo
description: prepare, train, evaluate, register
params:
  - {name: threshold, type: float, default: 0.8, description: minimum AUC}
  - {name: sample, type: int, default: 0}
  - {name: seeds, type: list, default: [1, 2, 3]}
  - {name: register, type: bool, default: true}
  - {name: dataset}
steps:
  - name: train
    depends: "prep.succeeded && (check.failed || check.skipped)"
    when: "{{params.threshold}} > 0.5 && params.register"
    for_each: "{{params.seeds}}"
    parallelism: 2
    queue: gpu
    priority: 5
    labels: {team: ml}
    command: [python3, train.py, --seed, "{{item}}", --data, "{{steps.prep.outputs.artifacts.train}}"]
    args: [--rows, "{{steps.prep.outputs.parameters.rows}}"]
    env: {DATASET: "{{params.dataset}}"}
    resources: {cpu: 2, memory: 4Gi, gpu: 1}
    working_dir: src
    outputs: {parameters: [auc], artifacts: [model]}
    retry: {limit: 2, on: failure, backoff: 30s, factor: 3, max_backoff: 20m}
    timeout: 1h
    cache: {enabled: true, max_age: 7d}
    optional: true
    tracking: {experiment: "train-{{params.dataset}}"}
  - name: prep
    command: python3 prep.py --sample {{params.sample}} --out {{outputs.artifacts.train}}
    outputs: {parameters: [rows], artifacts: [train]}
    cache: false
  - name: check
    command: [python3, check.py]
    retry: 3
  - name: dist
    depends: train
    framework: pytorch
    min_available: 3
    restart_policy: OnFailure
    node_selector: {gpu-model: a100}
    tolerations: [{key: dedicated, operator: Equal, value: ml, effect: NoSchedule}]
    ttl_after_finished: 2d
    roles:
      - {name: master, command: [python3, ddp.py, "{{steps.train.outputs.parameters.auc}}"]}
      - {name: worker, replicas: 2, command: [python3, ddp.py], env: {MODEL: "{{steps.train.outputs.artifacts.model}}"}}
on_exit:
  name: notify
  when: "steps.train.outputs.parameters.auc >= 0"
  command: [echo, "{{pipeline.name}}", "{{pipeline.run_id}}", "{{pipeline.version}}"]
)yaml";

TEST(PipelineSpec, ParsesEveryField) {
  PipelineSpec spec = MustParse(kFull);
  EXPECT_EQ(spec.name, "train-eval");
  EXPECT_EQ(spec.project, "demo");
  EXPECT_EQ(spec.description, "prepare, train, evaluate, register");
  ASSERT_EQ(spec.params.size(), 5u);
  EXPECT_EQ(spec.params[0].name, "threshold");
  EXPECT_EQ(spec.params[0].type, ParamType::kFloat);
  EXPECT_EQ(spec.params[0].default_value->as_double(), 0.8);
  EXPECT_EQ(spec.params[0].description, "minimum AUC");
  EXPECT_EQ(spec.params[1].type, ParamType::kInt);
  EXPECT_EQ(spec.params[2].type, ParamType::kList);
  EXPECT_EQ(spec.params[2].default_value->Dump(), "[1,2,3]");
  EXPECT_EQ(spec.params[3].type, ParamType::kBool);
  EXPECT_EQ(spec.params[4].type, ParamType::kString);  // the default type
  EXPECT_FALSE(spec.params[4].default_value.has_value());

  // Topologically sorted: prep and check before train, dist last.
  EXPECT_THAT(StepNames(spec), ElementsAre("prep", "check", "train", "dist"));

  const StepSpec& train = *spec.FindStep("train");
  EXPECT_EQ(train.depends->text(), "prep.succeeded && (check.failed || check.skipped)");
  EXPECT_THAT(train.depends_on, ElementsAre("check", "prep"));
  EXPECT_EQ(train.when_text, "{{params.threshold}} > 0.5 && params.register");
  EXPECT_THAT(train.when->refs(), ElementsAre("params.threshold", "params.register"));
  EXPECT_EQ(train.for_each_template, "{{params.seeds}}");
  EXPECT_FALSE(train.for_each_list.has_value());
  EXPECT_TRUE(train.fan_out());
  EXPECT_EQ(train.parallelism, 2);
  EXPECT_TRUE(train.job_shorthand);
  EXPECT_EQ(train.job.name, "train");
  EXPECT_EQ(train.job.project, "");
  EXPECT_EQ(train.job.queue, "gpu");
  EXPECT_EQ(train.job.priority, 5);
  EXPECT_EQ(train.job.labels.at("team"), "ml");
  ASSERT_EQ(train.job.roles.size(), 1u);
  const Role& main = train.job.roles[0];
  EXPECT_EQ(main.name, "main");
  EXPECT_EQ(main.replicas, 1);
  EXPECT_EQ(main.command[3], "{{item}}");  // kept verbatim
  EXPECT_EQ(main.args,
            (std::vector<std::string>{"--rows", "{{steps.prep.outputs.parameters.rows}}"}));
  EXPECT_EQ(main.env.at("DATASET"), "{{params.dataset}}");
  EXPECT_EQ(main.resources, (sched::Resources{2000, 4096, 1000}));
  EXPECT_EQ(main.working_dir, "src");
  EXPECT_THAT(train.output_parameters, ElementsAre("auc"));
  EXPECT_THAT(train.output_artifacts, ElementsAre("model"));
  EXPECT_EQ(train.retry.limit, 2);
  EXPECT_EQ(train.retry.on, RetryOn::kFailure);
  EXPECT_EQ(train.retry.backoff_seconds, 30);
  EXPECT_EQ(train.retry.backoff_factor, 3.0);
  EXPECT_EQ(train.retry.max_backoff_seconds, 1200);
  EXPECT_EQ(train.timeout_seconds, 3600);
  EXPECT_EQ(train.job.timeout_seconds, 3600);
  EXPECT_TRUE(train.cache.enabled);
  EXPECT_EQ(train.cache.max_age_seconds, 7 * 86400);
  EXPECT_TRUE(train.optional);
  EXPECT_EQ(train.job.tracking_experiment, "train-{{params.dataset}}");

  const StepSpec& prep = *spec.FindStep("prep");
  EXPECT_FALSE(prep.depends.has_value());
  EXPECT_TRUE(prep.depends_on.empty());
  EXPECT_EQ(prep.job.roles[0].command,
            (std::vector<std::string>{"/bin/sh", "-c",
                                      "python3 prep.py --sample {{params.sample}} --out "
                                      "{{outputs.artifacts.train}}"}));
  EXPECT_FALSE(prep.cache.enabled);
  EXPECT_FALSE(prep.fan_out());
  EXPECT_EQ(prep.retry.limit, 0);
  EXPECT_EQ(prep.retry.on, RetryOn::kAll);  // defaults
  EXPECT_EQ(prep.retry.backoff_seconds, 10);
  EXPECT_EQ(prep.retry.max_backoff_seconds, 600);

  EXPECT_EQ(spec.FindStep("check")->retry.limit, 3);  // `retry: 3`

  const StepSpec& dist = *spec.FindStep("dist");
  EXPECT_FALSE(dist.job_shorthand);
  EXPECT_EQ(dist.job.framework, Framework::kPyTorch);
  EXPECT_EQ(dist.job.min_available, 3);
  EXPECT_EQ(dist.job.restart.policy, RestartPolicy::kOnFailure);
  EXPECT_EQ(dist.job.node_selector.at("gpu-model"), "a100");
  EXPECT_EQ(dist.job.tolerations.size(), 1u);
  EXPECT_EQ(dist.job.ttl_seconds_after_finished, 2 * 86400);
  EXPECT_EQ(dist.job.roles[1].replicas, 2);
  EXPECT_THAT(dist.depends_on, ElementsAre("train"));

  ASSERT_TRUE(spec.on_exit.has_value());
  EXPECT_EQ(spec.on_exit->name, "notify");
  EXPECT_TRUE(spec.on_exit->depends_on.empty());
  EXPECT_EQ(spec.FindStep("notify"), &*spec.on_exit);
  EXPECT_EQ(spec.FindStep("nope"), nullptr);
}

TEST(PipelineSpec, RoundTripsThroughCanonicalJson) {
  PipelineSpec spec = MustParse(kFull);
  std::string first = Canonical(spec);
  StatusOr<PipelineSpec> again = ParsePipelineSpec(Json(first));
  ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << first;
  EXPECT_EQ(Canonical(*again), first);
  // Field by field, where the canonical text could hide a difference.
  ASSERT_EQ(again->steps.size(), spec.steps.size());
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    const StepSpec& a = spec.steps[i];
    const StepSpec& b = again->steps[i];
    SCOPED_TRACE(a.name);
    EXPECT_EQ(a.name, b.name);
    EXPECT_TRUE(a.job == b.job);
    EXPECT_EQ(a.job_shorthand, b.job_shorthand);
    EXPECT_EQ(a.depends.has_value(), b.depends.has_value());
    if (a.depends && b.depends) {
      EXPECT_EQ(a.depends->text(), b.depends->text());
    }
    EXPECT_EQ(a.depends_on, b.depends_on);
    EXPECT_EQ(a.when_text, b.when_text);
    EXPECT_EQ(a.for_each_template, b.for_each_template);
    EXPECT_EQ(a.for_each_list.has_value(), b.for_each_list.has_value());
    EXPECT_EQ(a.parallelism, b.parallelism);
    EXPECT_EQ(a.output_parameters, b.output_parameters);
    EXPECT_EQ(a.output_artifacts, b.output_artifacts);
    EXPECT_EQ(a.retry.limit, b.retry.limit);
    EXPECT_EQ(a.retry.on, b.retry.on);
    EXPECT_EQ(a.retry.backoff_seconds, b.retry.backoff_seconds);
    EXPECT_EQ(a.retry.backoff_factor, b.retry.backoff_factor);
    EXPECT_EQ(a.retry.max_backoff_seconds, b.retry.max_backoff_seconds);
    EXPECT_EQ(a.timeout_seconds, b.timeout_seconds);
    EXPECT_EQ(a.cache.enabled, b.cache.enabled);
    EXPECT_EQ(a.cache.max_age_seconds, b.cache.max_age_seconds);
    EXPECT_EQ(a.optional, b.optional);
  }
  ASSERT_EQ(again->params.size(), spec.params.size());
  for (size_t i = 0; i < spec.params.size(); ++i) {
    EXPECT_EQ(again->params[i].name, spec.params[i].name);
    EXPECT_EQ(again->params[i].type, spec.params[i].type);
    ASSERT_EQ(again->params[i].default_value.has_value(), spec.params[i].default_value.has_value());
    if (spec.params[i].default_value) {
      EXPECT_EQ(again->params[i].default_value->Dump(), spec.params[i].default_value->Dump());
    }
    EXPECT_EQ(again->params[i].description, spec.params[i].description);
  }
  EXPECT_TRUE(again->on_exit->job == spec.on_exit->job);
  EXPECT_EQ(again->on_exit->when_text, spec.on_exit->when_text);
}

TEST(PipelineSpec, CanonicalFormOfASmallSpec) {
  PipelineSpec spec = MustParse(R"(
name: p
steps:
  - name: a
    command: [echo, hi]
    for_each: [1, {k: v}]
)");
  EXPECT_EQ(Canonical(spec),
            R"({"name":"p","project":"","description":"","params":[],"steps":[{"name":"a",)"
            R"("for_each":[1,{"k":"v"}],"parallelism":0,"outputs":{"parameters":[],)"
            R"("artifacts":[]},"retry":{"limit":0,"on":"all","backoff":"10s","factor":2,)"
            R"("max_backoff":"10m"},"cache":{"enabled":true},"optional":false,"queue":"default",)"
            R"("priority":0,"labels":{},"framework":"none","command":["echo","hi"],"args":[],)"
            R"("env":{},"resources":{"cpu":"1","memory":"1Gi","gpu":"0"},"working_dir":"",)"
            R"("min_available":0,"restart_policy":{"policy":"Never","exit_codes":[],"limit":3,)"
            R"("backoff":"10s"},"node_selector":{},"tolerations":[]}]})");
  StatusOr<PipelineSpec> again = ParsePipelineSpec(Json(Canonical(spec)));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->steps[0].for_each_list->Dump(), R"([1,{"k":"v"}])");
  EXPECT_EQ(Canonical(*again), Canonical(spec));
}

TEST(PipelineSpec, TopologicalOrderIsStable) {
  // e waits on d, which is written after it; a, b, c are independent and
  // keep their order; the sort of a sorted list changes nothing.
  PipelineSpec spec = MustParse(R"(
name: p
steps:
  - {name: e, depends: d, command: [x]}
  - {name: a, command: [x]}
  - {name: d, depends: "b && a", command: [x]}
  - {name: b, command: [x]}
  - {name: c, command: [x]}
)");
  EXPECT_THAT(StepNames(spec), ElementsAre("a", "b", "d", "e", "c"));
  StatusOr<PipelineSpec> again = ParsePipelineSpec(Json(Canonical(spec)));
  ASSERT_TRUE(again.ok());
  EXPECT_THAT(StepNames(*again), ElementsAre("a", "b", "d", "e", "c"));
}

TEST(PipelineSpec, ImpliesDependsFromTemplatesWhenAndForEach) {
  PipelineSpec spec = MustParse(R"(
name: p
steps:
  - {name: a, command: [x], outputs: {parameters: [n, list]}}
  - {name: b, command: [x], outputs: {artifacts: [f]}}
  - {name: c, command: [x], outputs: {parameters: [v]}}
  - name: d
    command: [x, "{{steps.b.outputs.artifacts.f}}"]
    when: "steps.c.outputs.parameters.v == 'go'"
    for_each: "{{steps.a.outputs.parameters.list}}"
)");
  const StepSpec& d = *spec.FindStep("d");
  EXPECT_FALSE(d.depends.has_value());
  EXPECT_THAT(d.depends_on, ElementsAre("a", "b", "c"));
  EXPECT_THAT(StepNames(spec), ElementsAre("a", "b", "c", "d"));
  EXPECT_THAT(StepInputRefs(d),
              ElementsAre("steps.b.outputs.artifacts.f", "steps.c.outputs.parameters.v",
                          "steps.a.outputs.parameters.list"));
}

TEST(PipelineSpec, ExplicitDependsMustMentionEveryStepWhoseOutputsAreUsed) {
  Status s = ParseStatus(R"(
name: p
steps:
  - {name: a, command: [x], outputs: {parameters: [n]}}
  - {name: b, command: [x]}
  - {name: c, depends: b, command: [x, y, "{{steps.a.outputs.parameters.n}}"]}
)");
  EXPECT_EQ(s.field(), "steps[2].command[2]");
  EXPECT_THAT(s.message(), HasSubstr("uses outputs of step \"a\", which depends does not mention"));
  PipelineSpec ok = MustParse(R"(
name: p
steps:
  - {name: a, command: [x], outputs: {parameters: [n]}}
  - {name: b, command: [x]}
  - {name: c, depends: "b && a.succeeded", command: [x, "{{steps.a.outputs.parameters.n}}"]}
)");
  EXPECT_THAT(ok.FindStep("c")->depends_on, ElementsAre("a", "b"));
}

TEST(PipelineSpec, ExitHandlerMayUseAnyStepsOutputsWithoutDepending) {
  PipelineSpec spec = MustParse(R"(
name: p
steps:
  - {name: a, command: [x], outputs: {parameters: [n]}}
on_exit: {name: bye, command: [echo, "{{steps.a.outputs.parameters.n}}"], when: "params.x", for_each: [1]}
params: [{name: x, type: bool, default: true}]
)");
  EXPECT_TRUE(spec.on_exit->depends_on.empty());
}

struct BadCase {
  std::string name;
  std::string yaml;
  std::string field;
  std::string message;  // a substring of the message
};

// A one-step pipeline around `step` (a YAML flow mapping's body).
std::string OneStep(const std::string& step) {
  return fmt::format("name: p\nsteps:\n  - {{name: a, {}}}\n", step);
}

TEST(PipelineSpec, RejectsBadSpecsNamingTheField) {
  const std::vector<BadCase> cases = {
      {"missing steps", "name: p", "steps", "required field is missing"},
      {"no steps", "name: p\nsteps: []", "steps", "at least one step"},
      {"steps not a list", "name: p\nsteps: {}", "steps", "expected a list of steps"},
      {"bad pipeline name", "name: P_1\nsteps: [{name: a, command: x}]", "name",
       "\"P_1\" is not a valid name"},
      {"long pipeline name", "name: " + std::string(64, 'a') + "\nsteps: [{name: a, command: x}]",
       "name", "1-63 characters"},
      {"bad project", "name: p\nproject: Demo\nsteps: [{name: a, command: x}]", "project",
       "not a valid name"},
      {"unknown top field", "name: p\nstep: []\nsteps: [{name: a, command: x}]", "step", "unknown"},
      {"bad step name", "name: p\nsteps: [{name: Bad_1, command: x}]", "steps[0].name",
       "not a valid name"},
      {"long step name", "name: p\nsteps: [{name: " + std::string(41, 'a') + ", command: x}]",
       "steps[0].name", "1-40 characters"},
      {"duplicate step", "name: p\nsteps: [{name: a, command: x}, {name: a, command: y}]",
       "steps[1].name", "\"a\" is already the name of steps[0]"},
      {"exit handler name taken",
       "name: p\nsteps: [{name: a, command: x}]\non_exit: {name: a, command: y}", "on_exit.name",
       "already the name of steps[0]"},
      {"unknown step field", OneStep("command: x, dependz: b"), "steps[0].dependz", "unknown"},
      {"project in a step", OneStep("command: x, project: q"), "steps[0].project",
       "not allowed in a step"},
      {"no command", OneStep("queue: q"), "steps[0].command", "required"},
      {"command and roles", OneStep("command: x, roles: [{name: m, command: y}]"),
       "steps[0].command", "not allowed together with roles"},
      {"shorthand with a framework", OneStep("command: x, framework: pytorch"),
       "steps[0].framework", "framework none"},
      {"shorthand error named as written", OneStep("command: [x], resources: {memory: 3GB}"),
       "steps[0].resources.memory", "steps[0].resources.memory: "},
      {"reserved env", OneStep("command: [x], env: {LATHE_RUN_ID: y}"), "steps[0].env.LATHE_RUN_ID",
       "reserved"},
      {"role error", OneStep("roles: [{name: m, replicas: 0, command: x}]"),
       "steps[0].roles[0].replicas", "not in 1..1000"},
      {"template in a label", OneStep("command: x, labels: {k: \"{{params.x}}\"}"),
       "steps[0].labels.k", "not expanded in labels"},
      // params
      {"bad param name", "name: p\nparams: [{name: 1x}]\nsteps: [{name: a, command: x}]",
       "params[0].name", "not a valid name"},
      {"duplicate param", "name: p\nparams: [{name: x}, {name: x}]\nsteps: [{name: a, command: x}]",
       "params[1].name", "already the name of params[0]"},
      {"bad param type",
       "name: p\nparams: [{name: x, type: double}]\nsteps: [{name: a, command: x}]",
       "params[0].type", "\"double\" is not a param type"},
      {"param default of the wrong type",
       "name: p\nparams: [{name: x, type: float}, {name: n, type: int, default: \"3\"}]\n"
       "steps: [{name: a, command: x}]",
       "params[1].default", "params[1].default: expected int, got string \"3\""},
      {"float default is not an int",
       "name: p\nparams: [{name: n, type: int, default: 1.5}]\nsteps: [{name: a, command: x}]",
       "params[0].default", "expected int, got float"},
      {"list default",
       "name: p\nparams: [{name: n, type: list, default: a}]\nsteps: [{name: a, command: x}]",
       "params[0].default", "expected list, got string"},
      {"unknown param field",
       "name: p\nparams: [{name: n, typo: 1}]\nsteps: [{name: a, command: x}]", "params[0].typo",
       "unknown"},
      // references in templates
      {"unknown param", OneStep("command: [x, \"{{params.nope}}\"]"), "steps[0].command[1]",
       "unknown param \"nope\" (in {{params.nope}})"},
      {"unknown step in a template",
       "name: p\nsteps:\n  - {name: a, command: [x]}\n  - {name: b, command: "
       "[\"{{steps.trian.outputs.parameters.x}}\"]}",
       "steps[1].command[0]", "unknown step \"trian\""},
      {"undeclared output",
       "name: p\nsteps:\n  - {name: a, command: [x], outputs: {parameters: [rows]}}\n"
       "  - {name: b, command: [x], args: [\"{{steps.a.outputs.parameters.rowz}}\"]}",
       "steps[1].args[0]", "step \"a\" declares no output parameter \"rowz\" (it declares: rows)"},
      {"undeclared artifact",
       "name: p\nsteps:\n  - {name: a, command: [x]}\n"
       "  - {name: b, command: [x], env: {D: \"{{steps.a.outputs.artifacts.train}}\"}}",
       "steps[1].env.D", "declares no output artifact \"train\" (it declares: none)"},
      {"own outputs through steps",
       OneStep("command: [x, \"{{steps.a.outputs.parameters.n}}\"], outputs: {parameters: [n]}"),
       "steps[0].command[1]", "cannot read its own outputs"},
      {"undeclared own output", OneStep("command: [x, \"{{outputs.parameters.n}}\"]"),
       "steps[0].command[1]", "\"n\" is not declared in this step's outputs.parameters"},
      {"item outside for_each", OneStep("command: \"echo {{item}}\""), "steps[0].command",
       "item is only defined in a for_each step"},
      {"literal items lack the key",
       OneStep("command: [x, \"{{item.lr}}\"], for_each: [{lr: 1}, {bs: 2}]"),
       "steps[0].command[1]", "for_each item 1 has no member \"lr\""},
      {"unknown reference", OneStep("command: [x, \"{{foo.bar}}\"]"), "steps[0].command[1]",
       "unknown reference \"foo.bar\""},
      {"unknown pipeline field", OneStep("command: [x, \"{{pipeline.owner}}\"]"),
       "steps[0].command[1]", "unknown reference"},
      {"malformed braces", OneStep("command: [x, \"{{params.x\"]"), "steps[0].command[1]",
       "unterminated \"{{\" at offset 0"},
      {"not a reference in braces", OneStep("command: [x, \"a {{ 1 + 2 }}\"]"),
       "steps[0].command[1]", "\"{{ 1 + 2 }}\" at offset 2 is not a reference"},
      {"exit handler referenced by a step",
       "name: p\nsteps: [{name: a, command: [x, \"{{steps.bye.outputs.parameters.n}}\"]}]\n"
       "on_exit: {name: bye, command: x, outputs: {parameters: [n]}}",
       "steps[0].command[1]", "\"bye\" is the exit handler"},
      // depends
      {"unknown step in depends",
       "name: p\nsteps:\n  - {name: a, command: x}\n  - {name: b, command: x}\n"
       "  - {name: c, depends: \"trian\", command: x}",
       "steps[2].depends", "steps[2].depends: unknown step \"trian\" (at offset 0)"},
      {"depends on itself", OneStep("command: x, depends: a"), "steps[0].depends",
       "cannot depend on itself"},
      {"bad result",
       "name: p\nsteps: [{name: a, command: x}, {name: b, command: x, depends: a.Succeeded}]",
       "steps[1].depends", "\"Succeeded\" is not a step result (at offset 0)"},
      {"too many parts",
       "name: p\nsteps: [{name: a, command: x}, {name: b, command: x, depends: a.b.c}]",
       "steps[1].depends", "\"a.b.c\" is not a step result"},
      {"fan-out result on a plain step",
       "name: p\nsteps: [{name: a, command: x}, {name: b, command: x, depends: a.any_succeeded}]",
       "steps[1].depends", "only for for_each steps"},
      {"depends on the exit handler",
       "name: p\nsteps: [{name: a, command: x, depends: bye}]\non_exit: {name: bye, command: y}",
       "steps[0].depends", "steps cannot depend on it"},
      {"depends in the exit handler",
       "name: p\nsteps: [{name: a, command: x}]\non_exit: {name: bye, command: y, depends: a}",
       "on_exit.depends", "not allowed"},
      {"depends syntax",
       "name: p\nsteps: [{name: a, command: x}, {name: b, command: x, depends: \"a &&\"}]",
       "steps[1].depends", "unexpected end of expression at offset 4"},
      {"depends not a string", OneStep("command: x, depends: [b]"), "steps[0].depends",
       "expected an expression"},
      // when
      {"when syntax", OneStep("command: x, when: \"params.x > \""), "steps[0].when",
       "unexpected end of expression"},
      {"when with a step result",
       "name: p\nsteps: [{name: a, command: x}, {name: b, command: x, when: a.succeeded}]",
       "steps[1].when", "step results belong in depends"},
      {"when with a bare word",
       "name: p\nparams: [{name: x}]\nsteps: [{name: a, command: x, when: \"params.x == heads\"}]",
       "steps[0].when",
       "unknown reference \"heads\" (at offset 12) (use params.NAME, "
       "steps.STEP.outputs.parameters.NAME, item, item.KEY, pipeline.run_id, pipeline.name, "
       "pipeline.version; quote string literals: 'heads')"},
      {"when with an unknown param", OneStep("command: x, when: \"params.t > 1\""), "steps[0].when",
       "unknown param \"t\" (at offset 0)"},
      {"when with item outside for_each", OneStep("command: x, when: \"item > 1\""),
       "steps[0].when", "item is only defined in a for_each step"},
      {"when with own outputs",
       OneStep("command: x, when: \"outputs.parameters.n\", outputs: {parameters: [n]}"),
       "steps[0].when", "is where the step writes an output"},
      {"when not a string", OneStep("command: x, when: true"), "steps[0].when",
       "expected an expression"},
      // for_each and parallelism
      {"for_each not a list", OneStep("command: x, for_each: 3"), "steps[0].for_each",
       "expected a list or a \"{{ref}}\" string, got an integer"},
      {"for_each text", OneStep("command: x, for_each: \"a,b\""), "steps[0].for_each",
       "is not one \"{{ref}}\""},
      {"for_each two refs",
       "name: p\nparams: [{name: l, type: list}]\nsteps: [{name: a, command: x, for_each: "
       "\"{{params.l}}{{params.l}}\"}]",
       "steps[0].for_each", "is not one \"{{ref}}\""},
      {"for_each over item", OneStep("command: x, for_each: \"{{item}}\""), "steps[0].for_each",
       "for_each takes a list param or an upstream output parameter"},
      {"for_each over an int param",
       "name: p\nparams: [{name: n, type: int}]\nsteps: [{name: a, command: x, for_each: "
       "\"{{params.n}}\"}]",
       "steps[0].for_each", "for_each needs a list param; params.n is int"},
      {"negative parallelism", OneStep("command: x, for_each: [1], parallelism: -1"),
       "steps[0].parallelism", "must not be negative"},
      {"parallelism without for_each", OneStep("command: x, parallelism: 2"),
       "steps[0].parallelism", "only used with for_each"},
      // outputs, retry, timeout, cache
      {"bad output name", OneStep("command: x, outputs: {parameters: [a-b]}"),
       "steps[0].outputs.parameters[0]", "not a valid name"},
      {"duplicate output", OneStep("command: x, outputs: {artifacts: [m, m]}"),
       "steps[0].outputs.artifacts[1]", "listed twice"},
      {"unknown outputs field", OneStep("command: x, outputs: {files: [m]}"),
       "steps[0].outputs.files", "unknown"},
      {"retry limit too high", OneStep("command: x, retry: {limit: 101}"), "steps[0].retry.limit",
       "101 is not in 0..100"},
      {"negative retry", OneStep("command: x, retry: -1"), "steps[0].retry", "-1 is not in 0..100"},
      {"retry on", OneStep("command: x, retry: {on: always}"), "steps[0].retry.on",
       "\"always\" is not failure, error or all"},
      {"retry backoff", OneStep("command: x, retry: {backoff: soon}"), "steps[0].retry.backoff",
       "not a duration"},
      {"retry factor", OneStep("command: x, retry: {factor: 0.5}"), "steps[0].retry.factor",
       "not in 1..10"},
      {"retry max below backoff", OneStep("command: x, retry: {backoff: 1m, max_backoff: 30s}"),
       "steps[0].retry.max_backoff", "below backoff"},
      {"retry unknown field", OneStep("command: x, retry: {limits: 1}"), "steps[0].retry.limits",
       "unknown"},
      {"timeout", OneStep("command: x, timeout: -5"), "steps[0].timeout", ""},
      {"timeout text", OneStep("command: x, timeout: forever"), "steps[0].timeout",
       "not a duration"},
      {"cache type", OneStep("command: x, cache: yes please"), "steps[0].cache",
       "expected a boolean or an object"},
      {"cache max age", OneStep("command: x, cache: {max_age: 0}"), "steps[0].cache.max_age", ""},
      {"optional type", OneStep("command: x, optional: 1"), "steps[0].optional",
       "expected a boolean"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    Status s = ParseStatus(c.yaml);
    ASSERT_FALSE(s.ok()) << c.yaml;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.field(), c.field) << s.message();
    EXPECT_THAT(s.message(), HasSubstr(c.message));
    EXPECT_EQ(s.message().rfind(c.field + ": ", 0), 0u) << s.message();
  }
}

TEST(PipelineSpec, RejectsCycles) {
  Status s = ParseStatus(R"(
name: p
steps:
  - {name: prep, command: x}
  - {name: check, command: x}
  - {name: eval, depends: train, command: x}
  - {name: train, depends: "prep && eval", command: x}
)");
  EXPECT_EQ(s.field(), "steps[2].depends");
  EXPECT_EQ(s.message(), "steps[2].depends: cycle eval -> train -> eval");

  // A cycle through outputs only (no depends): named at the step itself.
  s = ParseStatus(R"(
name: p
steps:
  - {name: a, command: x}
  - {name: b, command: [x, "{{steps.d.outputs.parameters.n}}"], outputs: {parameters: [n]}}
  - {name: c, command: [x, "{{steps.b.outputs.parameters.n}}"], outputs: {parameters: [n]}}
  - {name: d, command: [x, "{{steps.c.outputs.parameters.n}}"], outputs: {parameters: [n]}}
)");
  EXPECT_EQ(s.message(), "steps[1]: cycle b -> c -> d -> b");

  // A cycle behind an acyclic prefix, found from a step that is not on it.
  s = ParseStatus(R"(
name: p
steps:
  - {name: z, depends: x, command: x}
  - {name: x, depends: y, command: x}
  - {name: y, depends: x, command: x}
)");
  EXPECT_EQ(s.message(), "steps[1].depends: cycle x -> y -> x");
}

TEST(PipelineSpec, HandlesManySteps) {
  // A wide fan-in: 2,000 steps and one that waits on all of them.
  std::string yaml = "name: p\nsteps:\n";
  std::string all;
  for (int i = 0; i < 2000; ++i) {
    yaml += fmt::format("  - {{name: s{}, command: x}}\n", i);
    all += fmt::format("{}s{}", i ? " && " : "", i);
  }
  yaml += fmt::format("  - {{name: join, depends: \"{}\", command: x}}\n", all);
  PipelineSpec spec = MustParse(yaml);
  ASSERT_EQ(spec.steps.size(), 2001u);
  EXPECT_EQ(spec.steps.back().name, "join");
  EXPECT_EQ(spec.steps.back().depends_on.size(), 2000u);
}

TEST(PipelineSpec, ResolveParamsFillsDefaultsAndChecksTypes) {
  PipelineSpec spec = MustParse(R"(
name: p
params:
  - {name: threshold, type: float, default: 0.8}
  - {name: sample, type: int, default: 0}
  - {name: seeds, type: list, default: [1]}
  - {name: flag, type: bool, default: false}
  - {name: dataset}
steps: [{name: a, command: x}]
)");
  StatusOr<JsonValue> v = ResolveParams(spec, Json(R"({"dataset":"iris","sample":100})"), false);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->Dump(),
            R"({"threshold":0.8,"sample":100,"seeds":[1],"flag":false,"dataset":"iris"})");

  // float accepts an integer; null counts as absent.
  v = ResolveParams(spec, Json(R"({"dataset":"x","threshold":1,"sample":null})"), false);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->Find("threshold")->Dump(), "1");
  EXPECT_EQ(v->Find("sample")->Dump(), "0");

  auto error = [&](const std::string& given, bool coerce) {
    StatusOr<JsonValue> r = ResolveParams(spec, Json(given), coerce);
    EXPECT_FALSE(r.ok()) << given;
    return r.ok() ? Status() : r.status();
  };
  Status s = error(R"({})", false);
  EXPECT_EQ(s.field(), "params.dataset");
  EXPECT_EQ(s.message(), "params.dataset: required: the param has no default (a string)");
  s = error(R"({"dataset":"x","sampel":3})", false);
  EXPECT_EQ(s.field(), "params.sampel");
  EXPECT_THAT(s.message(), HasSubstr("not a param of pipeline \"p\" (it declares: threshold, "
                                     "sample, seeds, flag, dataset)"));
  s = error(R"({"dataset":"x","sample":"3"})", false);
  EXPECT_EQ(s.message(), "params.sample: expected int, got string \"3\"");
  s = error(R"({"dataset":"x","sample":2.5})", false);
  EXPECT_EQ(s.message(), "params.sample: expected int, got float");
  s = error(R"({"dataset":3})", false);
  EXPECT_EQ(s.message(), "params.dataset: expected string, got int");
  s = error(R"({"dataset":"x","seeds":"[1,2]"})", false);
  EXPECT_EQ(s.field(), "params.seeds");
  s = error(R"({"dataset":"x","flag":1})", false);
  EXPECT_EQ(s.message(), "params.flag: expected bool, got int");
  s = error(R"([1])", false);
  EXPECT_EQ(s.field(), "params");
}

TEST(PipelineSpec, ResolveParamsCoercesCommandLineStrings) {
  PipelineSpec spec = MustParse(R"(
name: p
params:
  - {name: threshold, type: float, default: 0.8}
  - {name: sample, type: int, default: 0}
  - {name: seeds, type: list, default: [1]}
  - {name: flag, type: bool, default: false}
  - {name: dataset, default: d}
steps: [{name: a, command: x}]
)");
  StatusOr<JsonValue> v = ResolveParams(
      spec,
      Json(R"({"threshold":"0.5","sample":"3","seeds":"[1, 2]","flag":"true","dataset":"42"})"),
      true);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->Dump(), R"({"threshold":0.5,"sample":3,"seeds":[1,2],"flag":true,"dataset":"42"})");
  v = ResolveParams(spec, Json(R"({"threshold":"2","flag":"false"})"), true);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->Find("threshold")->type(), JsonValue::Type::kDouble);
  EXPECT_EQ(v->Find("flag")->Dump(), "false");

  for (const char* bad : {R"({"sample":"3.5"})", R"({"sample":"three"})", R"({"sample":""})",
                          R"({"threshold":"NaN"})", R"({"flag":"yes"})", R"({"seeds":"1,2"})",
                          R"({"seeds":"{}"})", R"({"sample":"99999999999999999999"})"}) {
    StatusOr<JsonValue> r = ResolveParams(spec, Json(bad), true);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("expected ")) << bad;
    EXPECT_EQ(r.status().field().rfind("params.", 0), 0u);
  }
}

struct Context {
  JsonValue params =
      Json(R"({"name":"iris","n":3,"lr":0.5,"on":true,"seeds":[1,2],"cfg":{"a":1}})");
  std::map<std::string, std::map<std::string, std::string>> parameters = {
      {"prep", {{"rows", "1000"}, {"shards", "[\"a\",\"b\"]"}, {"evil", "{{params.name}}"}}},
      {"fan", {{"auc", "[0.9,0.8]"}}}};
  std::map<std::string, std::map<std::string, std::string>> artifacts = {
      {"prep", {{"train", "/data/run/prep/1/artifacts/train"}}}};
  JsonValue item = Json(R"({"lr":0.1,"name":"x","nested":{"k":"v"}})");
  TemplateContext ctx;
  Context() {
    ctx.params = &params;
    ctx.step_parameters = &parameters;
    ctx.step_artifacts = &artifacts;
    ctx.item = &item;
    ctx.run_id = "r-123";
    ctx.pipeline_name = "train-eval";
    ctx.pipeline_version = 4;
    ctx.outputs_dir = "/data/run/train/1";
  }
  std::string Render(const std::string& text) {
    StatusOr<std::string> r = RenderTemplate(text, ctx, "f");
    EXPECT_TRUE(r.ok()) << text << ": " << r.status().ToString();
    return r.ok() ? *r : "";
  }
  Status RenderError(const std::string& text) {
    StatusOr<std::string> r = RenderTemplate(text, ctx, "steps[1].command[3]");
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? Status() : r.status();
  }
};

TEST(PipelineTemplate, RendersEveryKindOfReference) {
  Context c;
  EXPECT_EQ(c.Render("plain text"), "plain text");
  EXPECT_EQ(c.Render("{{params.name}}"), "iris");
  EXPECT_EQ(c.Render("n={{ params.n }} lr={{params.lr}} on={{params.on}}"), "n=3 lr=0.5 on=true");
  EXPECT_EQ(c.Render("{{params.seeds}} {{params.cfg}}"), "[1,2] {\"a\":1}");
  EXPECT_EQ(c.Render("--rows {{steps.prep.outputs.parameters.rows}}"), "--rows 1000");
  EXPECT_EQ(c.Render("{{steps.prep.outputs.artifacts.train}}"), "/data/run/prep/1/artifacts/train");
  EXPECT_EQ(c.Render("{{steps.fan.outputs.parameters.auc}}"), "[0.9,0.8]");
  EXPECT_EQ(c.Render("{{item}}"), R"({"lr":0.1,"name":"x","nested":{"k":"v"}})");
  EXPECT_EQ(c.Render("{{item.lr}}/{{item.name}}/{{item.nested.k}}"), "0.1/x/v");
  EXPECT_EQ(c.Render("{{pipeline.run_id}} {{pipeline.name}} v{{pipeline.version}}"),
            "r-123 train-eval v4");
  EXPECT_EQ(c.Render("{{outputs.parameters.auc}}:{{outputs.artifacts.model}}"),
            "/data/run/train/1/parameters/auc:/data/run/train/1/artifacts/model");
  EXPECT_EQ(c.Render("a }} b"), "a }} b");  // a stray "}}" is text
  JsonValue s = JsonValue::MakeString("seed-7");
  c.ctx.item = &s;
  EXPECT_EQ(c.Render("{{item}}"), "seed-7");
  JsonValue n = JsonValue::MakeInt(7);
  c.ctx.item = &n;
  EXPECT_EQ(c.Render("{{item}}"), "7");
}

TEST(PipelineTemplate, DoesNotExpandSubstitutedText) {
  Context c;
  EXPECT_EQ(c.Render("{{steps.prep.outputs.parameters.evil}}"), "{{params.name}}");
  JsonValue p = Json(R"({"name":"{{params.name}}"})");
  c.ctx.params = &p;
  EXPECT_EQ(c.Render("x{{params.name}}y"), "x{{params.name}}y");
}

TEST(PipelineTemplate, ErrorsNameTheField) {
  Context c;
  Status s = c.RenderError("a {{params.nope}}");
  EXPECT_EQ(s.field(), "steps[1].command[3]");
  EXPECT_EQ(s.message(),
            "steps[1].command[3]: {{params.nope}} at offset 2: unknown param \"nope\"");
  s = c.RenderError("{{steps.prep.outputs.parameters.auc}}");
  EXPECT_THAT(s.message(), HasSubstr("step \"prep\" has no output parameter \"auc\""));
  s = c.RenderError("{{steps.gone.outputs.artifacts.x}}");
  EXPECT_THAT(s.message(), HasSubstr("step \"gone\" has no artifact \"x\""));
  s = c.RenderError("{{item.missing}}");
  EXPECT_THAT(s.message(), HasSubstr("item has no member \"missing\""));
  s = c.RenderError("{{item.lr.x}}");
  EXPECT_THAT(s.message(), HasSubstr("item.lr is a number, not an object"));
  s = c.RenderError("{{params}}");
  EXPECT_THAT(s.message(), HasSubstr("unknown reference"));
  s = c.RenderError("{{x}");
  EXPECT_THAT(s.message(), HasSubstr("unterminated \"{{\" at offset 0"));
  s = c.RenderError("{{}}");
  EXPECT_THAT(s.message(), HasSubstr("\"{{}}\" at offset 0 is not a reference"));
  s = c.RenderError("{{{params.name}}}");
  EXPECT_THAT(s.message(), HasSubstr("is not a reference"));
  s = c.RenderError("{{params.name}} {{");
  EXPECT_THAT(s.message(), HasSubstr("unterminated \"{{\" at offset 16"));
  c.ctx.item = nullptr;
  s = c.RenderError("{{item}}");
  EXPECT_THAT(s.message(), HasSubstr("item is only defined in a for_each step"));
  c.ctx.outputs_dir.clear();
  s = c.RenderError("{{outputs.parameters.x}}");
  EXPECT_THAT(s.message(), HasSubstr("no outputs directory"));
  TemplateContext empty;
  StatusOr<std::string> r = RenderTemplate("{{params.x}}", empty, "f");
  EXPECT_FALSE(r.ok());
}

TEST(PipelineTemplate, BoundsTheOutput) {
  Context c;
  JsonValue big = Json(fmt::format(R"({{"name":"{}"}})", std::string(300 * 1024, 'x')));
  c.ctx.params = &big;
  EXPECT_EQ(c.Render("{{params.name}}{{params.name}}{{params.name}}").size(), 900u * 1024);
  Status s = c.RenderError("{{params.name}}{{params.name}}{{params.name}}{{params.name}}");
  EXPECT_THAT(s.message(), HasSubstr("longer than 1048576 bytes"));
  JsonValue nul = JsonValue::MakeObject({{"name", JsonValue::MakeString(std::string("a\0b", 3))}});
  c.ctx.params = &nul;
  s = c.RenderError("{{params.name}}");
  EXPECT_THAT(s.message(), HasSubstr("NUL"));
}

TEST(PipelineTemplate, TemplateRefs) {
  StatusOr<std::vector<std::string>> refs =
      TemplateRefs("a {{params.x}} b {{ item.k }} {{params.x}}", "f");
  ASSERT_TRUE(refs.ok());
  EXPECT_THAT(*refs, ElementsAre("params.x", "item.k", "params.x"));
  EXPECT_FALSE(TemplateRefs("{{", "f").ok());
}

TEST(PipelineTemplate, RenderStepJobRendersEveryTemplatedString) {
  PipelineSpec spec = MustParse(R"(
name: p
params: [{name: name}, {name: n, type: int}]
steps:
  - name: prep
    command: [x]
    outputs: {parameters: [rows, shards], artifacts: [train]}
  - name: train
    for_each: [{lr: 0.1}]
    command: "python3 train.py --lr {{item.lr}}"
    env: {DATA: "{{steps.prep.outputs.artifacts.train}}", FIXED: "1"}
    working_dir: "{{params.name}}"
    tracking: {experiment: "exp-{{params.name}}"}
    outputs: {parameters: [auc]}
    args: []
  - name: dist
    framework: pytorch
    roles:
      - {name: master, command: [python3, "{{params.n}}"], args: ["{{outputs.parameters.loss}}"]}
      - {name: worker, replicas: 2, command: [python3], env: {ROWS: "{{steps.prep.outputs.parameters.rows}}"}}
    outputs: {parameters: [loss]}
)");
  Context c;
  JsonValue item = Json(R"({"lr":0.1})");
  c.ctx.item = &item;
  StatusOr<JobSpec> job = RenderStepJob(*spec.FindStep("train"), c.ctx, "steps[1]");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->roles[0].command[2], "python3 train.py --lr 0.1");
  EXPECT_EQ(job->roles[0].env.at("DATA"), "/data/run/prep/1/artifacts/train");
  EXPECT_EQ(job->roles[0].env.at("FIXED"), "1");
  EXPECT_EQ(job->roles[0].working_dir, "iris");
  EXPECT_EQ(job->tracking_experiment, "exp-iris");
  // The template itself is untouched.
  EXPECT_EQ(spec.FindStep("train")->job.roles[0].working_dir, "{{params.name}}");

  job = RenderStepJob(*spec.FindStep("dist"), c.ctx, "steps[2]");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->roles[0].command[1], "3");
  EXPECT_EQ(job->roles[0].args[0], "/data/run/train/1/parameters/loss");
  EXPECT_EQ(job->roles[1].env.at("ROWS"), "1000");

  // Errors are named as the document spells the field.
  c.ctx.step_artifacts = nullptr;
  job = RenderStepJob(*spec.FindStep("train"), c.ctx, "steps[1]");
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().field(), "steps[1].env.DATA");
  c.ctx.step_parameters = nullptr;
  job = RenderStepJob(*spec.FindStep("dist"), c.ctx, "steps[2]");
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().field(), "steps[2].roles[1].env.ROWS");
  JsonValue no_name = Json(R"({"name":"","n":1})");
  c.ctx.params = &no_name;
  job = RenderStepJob(*spec.FindStep("train"), c.ctx, "steps[1]");
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().field(), "steps[1].env.DATA");
}

TEST(PipelineTemplate, RenderStepJobRejectsAnEmptyProgram) {
  PipelineSpec spec = MustParse(R"(
name: p
params: [{name: prog}]
steps: [{name: a, command: ["{{params.prog}}", x]}]
)");
  Context c;
  JsonValue empty = Json(R"({"prog":""})");
  c.ctx.params = &empty;
  StatusOr<JobSpec> job = RenderStepJob(spec.steps[0], c.ctx, "steps[0]");
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().field(), "steps[0].command[0]");
}

TEST(PipelineTemplate, EvalWhen) {
  PipelineSpec spec = MustParse(R"(
name: p
params: [{name: threshold, type: float, default: 0.8}, {name: on, type: bool}, {name: seeds, type: list}]
steps:
  - {name: prep, command: x, outputs: {parameters: [rows]}}
  - name: a
    command: x
    when: "{{params.threshold}} > 0.5 && steps.prep.outputs.parameters.rows >= 1000 && params.on"
  - {name: b, command: x, when: "params.seeds == '[1,2]' && pipeline.version == 4"}
  - {name: c, command: x, for_each: [{k: 1}, {k: 2}], when: "item.k != 1"}
  - {name: d, command: x}
)");
  Context c;
  JsonValue params = Json(R"({"threshold":0.8,"on":true,"seeds":[1,2]})");
  c.ctx.params = &params;
  EXPECT_TRUE(*EvalWhen(*spec.FindStep("a"), c.ctx, "steps[1].when"));
  EXPECT_TRUE(*EvalWhen(*spec.FindStep("b"), c.ctx, "steps[2].when"));
  EXPECT_TRUE(*EvalWhen(*spec.FindStep("d"), c.ctx, "steps[4].when"));  // no when
  JsonValue item1 = Json(R"({"k":1})"), item2 = Json(R"({"k":2})");
  c.ctx.item = &item1;
  EXPECT_FALSE(*EvalWhen(*spec.FindStep("c"), c.ctx, "steps[3].when"));
  c.ctx.item = &item2;
  EXPECT_TRUE(*EvalWhen(*spec.FindStep("c"), c.ctx, "steps[3].when"));
  JsonValue off = Json(R"({"threshold":0.8,"on":false,"seeds":[]})");
  c.ctx.params = &off;
  EXPECT_FALSE(*EvalWhen(*spec.FindStep("a"), c.ctx, "steps[1].when"));
  c.ctx.params = &params;
  c.ctx.step_parameters = nullptr;
  StatusOr<bool> v = EvalWhen(*spec.FindStep("a"), c.ctx, "steps[1].when");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().field(), "steps[1].when");
  EXPECT_THAT(v.status().message(),
              HasSubstr("steps[1].when: steps.prep.outputs.parameters.rows: step \"prep\" has no "
                        "output parameter"));
}

TEST(PipelineTemplate, ResolveForEach) {
  PipelineSpec spec = MustParse(R"(
name: p
params: [{name: seeds, type: list, default: [1, 2, 3]}, {name: text, default: "[\"a\"]"}]
steps:
  - {name: prep, command: x, outputs: {parameters: [shards, rows]}}
  - {name: lit, command: x, for_each: [{lr: 0.1}, {lr: 0.2}]}
  - {name: byparam, command: x, for_each: "{{params.seeds}}"}
  - {name: bytext, command: x, for_each: " {{ params.text }} "}
  - {name: byoutput, command: x, for_each: "{{steps.prep.outputs.parameters.shards}}"}
  - {name: bad, command: x, for_each: "{{steps.prep.outputs.parameters.rows}}"}
  - {name: plain, command: x}
)");
  Context c;
  JsonValue params = Json(R"({"seeds":[1,2,3],"text":"[\"a\"]"})");
  c.ctx.params = &params;
  auto items = [&](const std::string& step, size_t max = 100) {
    StatusOr<std::vector<JsonValue>> r = ResolveForEach(*spec.FindStep(step), c.ctx, max);
    EXPECT_TRUE(r.ok()) << step << ": " << r.status().ToString();
    std::vector<std::string> out;
    if (r.ok()) {
      for (const JsonValue& v : *r) out.push_back(v.Dump());
    }
    return out;
  };
  EXPECT_THAT(items("lit"), ElementsAre(R"({"lr":0.1})", R"({"lr":0.2})"));
  EXPECT_THAT(items("byparam"), ElementsAre("1", "2", "3"));
  EXPECT_THAT(items("bytext"), ElementsAre("\"a\""));
  EXPECT_THAT(items("byoutput"), ElementsAre("\"a\"", "\"b\""));

  StatusOr<std::vector<JsonValue>> r = ResolveForEach(*spec.FindStep("bad"), c.ctx, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().field(), "bad.for_each");
  EXPECT_THAT(r.status().message(), HasSubstr("is \"1000\", not a JSON array"));
  r = ResolveForEach(*spec.FindStep("byparam"), c.ctx, 2, "steps[2].for_each");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "steps[2].for_each: {{params.seeds}} has 3 items, more than the limit of 2");
  r = ResolveForEach(*spec.FindStep("lit"), c.ctx, 1);
  EXPECT_FALSE(r.ok());
  r = ResolveForEach(*spec.FindStep("plain"), c.ctx, 10);
  EXPECT_FALSE(r.ok());
  c.ctx.step_parameters = nullptr;
  r = ResolveForEach(*spec.FindStep("byoutput"), c.ctx, 10);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("has no output parameter \"shards\""));
  JsonValue wrong = Json(R"({"seeds":5,"text":"x"})");
  c.ctx.params = &wrong;
  r = ResolveForEach(*spec.FindStep("byparam"), c.ctx, 10);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("is an integer, not a list"));
}

TEST(PipelineSpec, NodeIds) {
  EXPECT_EQ(NodeId("train", std::nullopt), "train");
  EXPECT_EQ(NodeId("train", 3), "train[3]");
  EXPECT_EQ(NodeId("train", 0), "train[0]");
}

TEST(PipelineSpec, ParsesJsonDocumentsToo) {
  StatusOr<PipelineSpec> spec = ParsePipelineSpec(
      Json(R"({"name":"p","steps":[{"name":"a","command":["echo","{{pipeline.run_id}}"]}]})"));
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->steps[0].job.roles[0].command[1], "{{pipeline.run_id}}");
}

TEST(PipelineSpec, NamesParamAndRetryOptions) {
  EXPECT_EQ(ParamTypeName(ParamType::kString), "string");
  EXPECT_EQ(ParamTypeName(ParamType::kInt), "int");
  EXPECT_EQ(ParamTypeName(ParamType::kFloat), "float");
  EXPECT_EQ(ParamTypeName(ParamType::kBool), "bool");
  EXPECT_EQ(ParamTypeName(ParamType::kList), "list");
  EXPECT_EQ(RetryOnName(RetryOn::kFailure), "failure");
  EXPECT_EQ(RetryOnName(RetryOn::kError), "error");
  EXPECT_EQ(RetryOnName(RetryOn::kAll), "all");
}

}  // namespace
}  // namespace lathe::spec
