// Pipeline specs (docs/pipelines.md): typed params, steps that are job
// templates, `depends` / `when` expressions, `for_each` fan-out, outputs,
// retries, caching and an exit handler. Decoded from YAML or JSON into plain
// structs; every error names its location in the spec as a field path
// ("steps[2].depends: unknown step \"trian\" (at offset 0)"), which the API
// answers with 422. Pure: no I/O, no clock.
//
// Document shape (YAML or JSON; unknown fields are errors):
//   name: train-eval              [a-z0-9-], 1..63
//   project: demo                 optional
//   description: …
//   params:                       {name, type, default, description}; type is
//     - {name: threshold, type: float, default: 0.8}   string (the default),
//                                  int, float, bool or list; no default =
//                                  required at run time
//   steps:
//     - name: prep                [a-z0-9-], 1..40, unique (on_exit included)
//       <job template>            any field of a job spec (docs/jobs.md) but
//                                  name and project: queue, priority, labels,
//                                  framework, roles, min_available,
//                                  restart_policy, ttl_after_finished,
//                                  node_selector, tolerations, tracking; or the
//                                  shorthand command/args/env/resources/
//                                  working_dir for one role "main" (1 replica,
//                                  framework none), not mixed with roles
//       depends: "a && !b.failed"  pipeline_expr.h
//       when: "params.x > 0.5"     pipeline_expr.h; `{{ref}}` is sugar for ref
//       for_each: [1, 2] | "{{params.list}}" | "{{steps.S.outputs.parameters.N}}"
//       parallelism: 2            items at once, 0 = unlimited; for_each only
//       outputs: {parameters: [rows], artifacts: [train]}
//       retry: {limit: 2, on: failure|error|all, backoff: 10s, factor: 2,
//               max_backoff: 10m}   or `retry: 2` (limit only)
//       timeout: 1h               per attempt; also the job's timeout
//       cache: {enabled: true, max_age: 7d}   or `cache: false`
//       optional: false
//   on_exit: {name: notify, …}    a step without `depends`
//
// Templates. Strings in a step's job template (command, args, env values,
// working_dir, tracking.experiment; not labels, which are rejected if they
// hold "{{"), in `for_each` and in `when` may contain `{{ref}}` (spaces
// inside the braces allowed), where ref is one of
//   params.NAME                             a param's value
//   steps.STEP.outputs.parameters.NAME      an upstream step's output value
//   steps.STEP.outputs.artifacts.NAME       the path of an upstream artifact
//   item  |  item.KEY[.KEY…]                the current for_each item
//   pipeline.run_id | pipeline.name | pipeline.version
//   outputs.parameters.NAME                 where this step writes a value
//   outputs.artifacts.NAME                  where this step writes an artifact
// (the last two in the job template only). Rendered text: strings as they
// are, numbers as JSON numbers, bools as true/false, lists and objects as
// compact JSON. Substituted text is never expanded again, and there is no
// escape for a literal "{{": a "{{" that does not open a reference is an
// error. A string `command` runs under /bin/sh -c, so values substituted
// into it are shell text: use the list form for values you do not control.
// For a fanned-out upstream step, an output parameter renders as the JSON
// array of every item's value (in item order; values that parse as JSON are
// embedded as such, others as strings) and an artifact as the JSON array of
// every item's path. TemplateContext carries these already joined.
//
// Dependencies. A step that uses another step's outputs (in templates,
// `when` or `for_each`) depends on it. Without `depends`, a step waits for
// every step it uses, each as a bare `S` (succeeded or skipped). With
// `depends`, the expression must mention every step whose outputs the step
// uses (reading outputs of a step you do not wait for is a race). A `when`
// that uses `item` is evaluated per item (a false item is skipped).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "spec/job_spec.h"
#include "spec/pipeline_expr.h"

namespace lathe::spec {

enum class ParamType { kString, kInt, kFloat, kBool, kList };
std::string_view ParamTypeName(ParamType t);  // "string", "int", "float", "bool", "list"

struct ParamSpec {
  std::string name;  // [A-Za-z_][A-Za-z0-9_]*
  ParamType type = ParamType::kString;
  std::optional<JsonValue> default_value;  // absent = required at run time
  std::string description;
};

enum class RetryOn { kFailure, kError, kAll };  // non-zero exit | other errors | both
std::string_view RetryOnName(RetryOn r);        // "failure", "error", "all"

struct RetrySpec {
  int limit = 0;  // retries after the first attempt (0 = none)
  RetryOn on = RetryOn::kAll;
  int64_t backoff_seconds = 10;  // before the first retry
  double backoff_factor = 2.0;   // multiplies per retry
  int64_t max_backoff_seconds = 600;
};

struct CacheSpec {
  bool enabled = true;                     // caching is on by default
  std::optional<int64_t> max_age_seconds;  // absent = entries never expire
};

struct StepSpec {
  std::string name;  // [a-z0-9-], 1..40, unique in the pipeline
  // The job template: the same document as a job spec (docs/jobs.md) without
  // `name` and `project` (Lathe names step jobs itself). After parsing,
  // job.name holds the step's name as a placeholder and job.project is "";
  // the controller sets both on each node's job. job.timeout_seconds equals
  // timeout_seconds. Template strings are kept as written.
  JobSpec job;
  // The document gave command/args/env/resources/working_dir directly (one
  // role "main"); kept so that errors and the canonical form say `command`,
  // not `roles[0].command`.
  bool job_shorthand = false;
  std::optional<Expr> depends;          // absent: every step referenced in templates
                                        // or `when`, each as `S` (succeeded||skipped)
  std::vector<std::string> depends_on;  // the steps `depends` mentions (or implied), sorted
  std::optional<Expr> when;             // evaluated once `depends` holds; false = skipped
  std::string when_text;                // as written ("" = none); when->text() is the same
  // for_each: a literal list, or one template naming a list param (or a
  // string param holding a JSON array) or an upstream output parameter
  // holding a JSON array.
  std::optional<JsonValue> for_each_list;
  std::string for_each_template;               // "" when for_each_list is set or no fan-out
  int parallelism = 0;                         // items running at once; 0 = unlimited
  std::vector<std::string> output_parameters;  // names, [A-Za-z_][A-Za-z0-9_]*
  std::vector<std::string> output_artifacts;
  RetrySpec retry;
  std::optional<int64_t> timeout_seconds;  // per attempt (the job's deadline)
  CacheSpec cache;
  bool optional = false;  // a failure does not fail the run
  bool fan_out() const { return for_each_list.has_value() || !for_each_template.empty(); }
};

struct PipelineSpec {
  std::string name;     // [a-z0-9-], 1..63
  std::string project;  // "" when the document has none
  std::string description;
  std::vector<ParamSpec> params;
  std::vector<StepSpec> steps;  // in a topological order after parsing
  // Runs after every other step is terminal, whatever happened; its `depends`
  // is not allowed, `when` is. Its result does not change the run's state
  // unless it fails (then the run fails). Steps may not reference it; it may
  // use any step's outputs (rendering fails if they were not produced).
  std::optional<StepSpec> on_exit;

  // The step named `name` (on_exit included), or nullptr. Linear in the
  // number of steps: callers looking up many steps build their own index.
  const StepSpec* FindStep(std::string_view name) const;
};

// Limits on one spec (bounded validation work and stored size).
inline constexpr size_t kMaxPipelineSteps = 20'000;
inline constexpr size_t kMaxPipelineParams = 500;
inline constexpr size_t kMaxStepOutputs = 100;  // of each kind
inline constexpr int kMaxRetryLimit = 100;
inline constexpr size_t kMaxRenderedBytes = 1 << 20;  // one rendered string

// Decodes and validates: unknown fields, names, param types and defaults,
// expression syntax, references to unknown steps, params or outputs,
// cycles ("steps[3].depends: cycle train -> eval -> train", or "steps[3]:
// cycle …" when the step's dependencies are implied by its templates),
// for_each sources. Steps come back topologically sorted (stable: spec order
// among ready steps); error paths use the indices as written. Errors are
// INVALID_ARGUMENT with the field path.
StatusOr<PipelineSpec> ParsePipelineSpec(const JsonValue& v);

// Canonical JSON of the spec as written (ParsePipelineSpec of it gives the
// same spec, steps in the sorted order); the stored form of a pipeline
// version.
void WritePipelineSpec(JsonWriter& w, const PipelineSpec& spec);

// Checks `given` (an object, or null for none) against the declared params
// and fills defaults: unknown names, missing required params and type errors
// are INVALID_ARGUMENT naming "params.NAME". int takes JSON integers, float
// any number, list a JSON array, bool true/false, string a string. A null
// value counts as absent. Strings are converted when `given` comes from the
// command line (`coerce_strings`: "3" -> int 3, "0.5" -> float, "true" /
// "false" -> bool, "[1,2]" -> list). Returns an object with one member per
// declared param, in declared order.
StatusOr<JsonValue> ResolveParams(const PipelineSpec& spec, const JsonValue& given,
                                  bool coerce_strings);

// The documented quick-mode param: `lathe pipeline run --sample N` sets
// params.sample = N (an int param the pipeline must declare to use it).
inline constexpr std::string_view kSampleParam = "sample";

// What a template may reference while a node is resolved. Pointers are
// borrowed for the duration of a call; null ones make their refs fail.
struct TemplateContext {
  const JsonValue* params = nullptr;  // object from ResolveParams
  // step name -> output name -> value (JSON text of the value as stored:
  // strings are plain, numbers as written).
  const std::map<std::string, std::map<std::string, std::string>>* step_parameters = nullptr;
  // step name -> artifact name -> absolute path.
  const std::map<std::string, std::map<std::string, std::string>>* step_artifacts = nullptr;
  const JsonValue* item = nullptr;  // null outside a fan-out
  std::string run_id, pipeline_name;
  int64_t pipeline_version = 0;
  // Where this node writes its own outputs.
  std::string outputs_dir;  // <dir>/parameters/NAME and <dir>/artifacts/NAME
};

// Replaces every `{{ref}}` in `text`. Unknown refs, refs to outputs that do
// not exist and malformed braces are INVALID_ARGUMENT naming `field`, as
// is a result longer than kMaxRenderedBytes or holding a NUL byte. Linear in
// the text and the substituted values.
StatusOr<std::string> RenderTemplate(std::string_view text, const TemplateContext& ctx,
                                     const std::string& field);

// The refs of every `{{ref}}` in `text`, in order (duplicates kept);
// INVALID_ARGUMENT naming `field` for malformed braces. No lookup is done.
StatusOr<std::vector<std::string>> TemplateRefs(std::string_view text, const std::string& field);

// Every ref the step's templates, `when` and `for_each` use, first
// appearance order, without duplicates: what a node's inputs are (params
// and upstream outputs) for the cache key.
std::vector<std::string> StepInputRefs(const StepSpec& step);

// The node's job spec: the step's template with every string rendered.
// Errors name `field` + the string's path ("steps[1].command[3]",
// "steps[1].roles[0].env.DATA"); an empty rendered program is an error.
StatusOr<JobSpec> RenderStepJob(const StepSpec& step, const TemplateContext& ctx,
                                const std::string& field);

// Evaluates the step's `when` (true when it has none) with refs resolved
// from `ctx`: params and item values keep their JSON types (numbers, bools,
// strings; lists and objects as JSON text), output parameters and pipeline
// fields are strings (pipeline.version a number). Errors name `field`.
StatusOr<bool> EvalWhen(const StepSpec& step, const TemplateContext& ctx, const std::string& field);

// The items of a fan-out step (INVALID_ARGUMENT naming `field`, or
// "STEP.for_each" when it is empty, when the source is not a list, or is
// longer than `max_items`). A step without for_each is an error too.
StatusOr<std::vector<JsonValue>> ResolveForEach(const StepSpec& step, const TemplateContext& ctx,
                                                size_t max_items, const std::string& field = {});

// Node ids: "train" for a plain step, "train[3]" for item 3 of a fan-out.
std::string NodeId(std::string_view step, std::optional<size_t> item);

}  // namespace lathe::spec
