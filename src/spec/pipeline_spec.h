// Pipeline specs (docs/pipelines.md): typed params, steps that are job
// templates, `depends` / `when` expressions, `for_each` fan-out, outputs,
// retries, caching and an exit handler. Decoded from YAML or JSON into plain
// structs; every error names its location in the spec as a field path
// ("steps[2].depends: unknown step \"trian\" (at offset 0)"), which the API
// answers with 422. Pure: no I/O, no clock.
//
// Templates. Strings in a step's job template (command, args, env values,
// working_dir), in `for_each` and in `when` may contain `{{ref}}`, where ref
// is one of
//   params.NAME                             a param's value
//   steps.STEP.outputs.parameters.NAME      an upstream step's output value
//   steps.STEP.outputs.artifacts.NAME       the path of an upstream artifact
//   item  |  item.KEY                       the current for_each item
//   pipeline.run_id | pipeline.name | pipeline.version
//   outputs.parameters.NAME                 where this step writes a value
//   outputs.artifacts.NAME                  where this step writes an artifact
// For a fanned-out upstream step, an output parameter renders as the JSON
// array of every item's value (in item order; values that parse as JSON are
// embedded as such, others as strings) and an artifact as the JSON array of
// every item's path. TemplateContext carries these already joined.
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
std::string_view RetryOnName(RetryOn r);         // "failure", "error", "all"

struct RetrySpec {
  int limit = 0;                 // retries after the first attempt (0 = none)
  RetryOn on = RetryOn::kAll;
  int64_t backoff_seconds = 10;  // before the first retry
  double backoff_factor = 2.0;   // multiplies per retry
  int64_t max_backoff_seconds = 600;
};

struct CacheSpec {
  bool enabled = true;                   // caching is on by default
  std::optional<int64_t> max_age_seconds;  // absent = entries never expire
};

struct StepSpec {
  std::string name;  // [a-z0-9-], 1..40, unique in the pipeline
  // The job template: the same document as a job spec (docs/jobs.md) without
  // `name` and `project` (Lathe names step jobs itself).
  JobSpec job;
  // Raw template strings are kept as written; they are resolved per node.
  std::optional<Expr> depends;  // absent: every step referenced in templates
                                // or `when`, each as `S` (succeeded||skipped)
  std::vector<std::string> depends_on;  // the steps `depends` mentions (or implied), sorted
  std::optional<Expr> when;      // evaluated once `depends` holds; false = skipped
  std::string when_text;
  // for_each: a literal list, or one template naming a list param or an
  // upstream output parameter holding a JSON array.
  std::optional<JsonValue> for_each_list;
  std::string for_each_template;  // "" when for_each_list is set or no fan-out
  int parallelism = 0;            // items running at once; 0 = unlimited
  std::vector<std::string> output_parameters;  // names, [A-Za-z_][A-Za-z0-9_]*
  std::vector<std::string> output_artifacts;
  RetrySpec retry;
  std::optional<int64_t> timeout_seconds;  // per attempt (the job's deadline)
  CacheSpec cache;
  bool optional = false;  // a failure does not fail the run
  bool fan_out() const { return for_each_list.has_value() || !for_each_template.empty(); }
};

struct PipelineSpec {
  std::string name;  // [a-z0-9-], 1..63
  std::string project;  // "" when the document has none
  std::string description;
  std::vector<ParamSpec> params;
  std::vector<StepSpec> steps;  // in a topological order after parsing
  // Runs after every other step is terminal, whatever happened; its `depends`
  // is not allowed, `when` is. Its result does not change the run's state
  // unless it fails (then the run fails).
  std::optional<StepSpec> on_exit;

  const StepSpec* FindStep(std::string_view name) const;  // on_exit included
};

// Decodes and validates: unknown fields, names, param types and defaults,
// expression syntax, references to unknown steps, params or outputs,
// cycles ("steps[3].depends: cycle train -> eval -> train"), for_each
// sources. Steps come back topologically sorted (stable: spec order among
// ready steps). Errors are INVALID_ARGUMENT with the field path.
StatusOr<PipelineSpec> ParsePipelineSpec(const JsonValue& v);

// Canonical JSON of the spec as written (ParsePipelineSpec of it gives the
// same spec); the stored form of a pipeline version.
void WritePipelineSpec(JsonWriter& w, const PipelineSpec& spec);

// Checks `given` against the declared params and fills defaults: unknown
// names, missing required params and type errors are INVALID_ARGUMENT naming
// "params.NAME". Strings are converted when `given` comes from the command
// line (`coerce_strings`: "3" -> int 3, "true" -> bool, "[1,2]" -> list).
// Returns an object with one member per declared param.
StatusOr<JsonValue> ResolveParams(const PipelineSpec& spec, const JsonValue& given,
                                  bool coerce_strings);

// The documented quick-mode param: `lathe pipeline run --sample N` sets
// params.sample = N (an int param the pipeline must declare to use it).
inline constexpr std::string_view kSampleParam = "sample";

// What a template may reference while a node is resolved.
struct TemplateContext {
  const JsonValue* params = nullptr;  // object from ResolveParams
  // step name -> output name -> value (JSON text of the value as stored:
  // strings are plain, numbers as written).
  const std::map<std::string, std::map<std::string, std::string>>* step_parameters = nullptr;
  // step name -> artifact name -> absolute path.
  const std::map<std::string, std::map<std::string, std::string>>* step_artifacts = nullptr;
  const JsonValue* item = nullptr;    // null outside a fan-out
  std::string run_id, pipeline_name;
  int64_t pipeline_version = 0;
  // Where this node writes its own outputs.
  std::string outputs_dir;  // <dir>/parameters/NAME and <dir>/artifacts/NAME
};

// Replaces every `{{ref}}` in `text`. Unknown refs, refs to outputs that do
// not exist and malformed braces are INVALID_ARGUMENT naming `field`.
StatusOr<std::string> RenderTemplate(std::string_view text, const TemplateContext& ctx,
                                     const std::string& field);

// The node's job spec: the step's template with every string rendered.
StatusOr<JobSpec> RenderStepJob(const StepSpec& step, const TemplateContext& ctx,
                                const std::string& field);

// The items of a fan-out step (INVALID_ARGUMENT when the source is not a
// list, or is longer than `max_items`).
StatusOr<std::vector<JsonValue>> ResolveForEach(const StepSpec& step, const TemplateContext& ctx,
                                                size_t max_items);

// Node ids: "train" for a plain step, "train[3]" for item 3 of a fan-out.
std::string NodeId(std::string_view step, std::optional<size_t> item);

}  // namespace lathe::spec
