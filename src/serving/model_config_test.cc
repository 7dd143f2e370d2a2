#include "serving/model_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace lathe::serving {
namespace {

using ::testing::HasSubstr;

constexpr const char* kFull = R"(
name: resnet
backend: torchscript
model_filename: model.pt
max_batch_size: 8
inputs:
  - name: image
    datatype: FP32
    dims: [3, -1, -1]
  - name: scale
    datatype: FP32
    dims: [1]
    optional: true
outputs:
  - name: logits
    datatype: FP32
    dims: [1000]
dynamic_batching:
  max_queue_delay_us: 500
  preferred_batch_sizes: [8, 4]
  max_queue_size: 64
  default_timeout_us: 100000
  priority_levels: 3
  default_priority_level: 2
instances: {count: 2, threads: 4}
version_policy: {latest: 2}
labels: {stable: 3, canary: 4}
canary: {label: canary, weight: 10}
slo: {p99_ms: 50}
warmup:
  - name: small
    batch_size: 4
    inputs:
      image: {fill: random, dims: [3, 224, 224]}
    count: 3
parameters:
  intra_op: 4
  mode: fast
  enable: true
)";

ModelConfig MustParse(std::string_view yaml, std::string_view dir = "m") {
  StatusOr<ModelConfig> c = ParseModelConfig(yaml, dir);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : ModelConfig{};
}

Status ParseError(std::string_view yaml, std::string_view dir = "m") {
  StatusOr<ModelConfig> c = ParseModelConfig(yaml, dir);
  EXPECT_FALSE(c.ok()) << "parsed: " << yaml;
  return c.status();
}

constexpr const char* kMinimal = R"(
backend: xgboost
inputs: [{name: x, datatype: FP32, dims: [4]}]
outputs: [{name: y, datatype: FP32, dims: [1]}]
)";

TEST(ModelConfig, ParsesEverySection) {
  ModelConfig c = MustParse(kFull, "resnet");
  EXPECT_EQ(c.name, "resnet");
  EXPECT_EQ(c.backend, Backend::kTorchScript);
  EXPECT_EQ(c.model_filename, "model.pt");
  EXPECT_EQ(c.max_batch_size, 8);
  ASSERT_EQ(c.inputs.size(), 2u);
  EXPECT_EQ(c.inputs[0].name, "image");
  EXPECT_EQ(c.inputs[0].type, DataType::kFp32);
  EXPECT_EQ(c.inputs[0].dims, (std::vector<int64_t>{3, -1, -1}));
  EXPECT_FALSE(c.inputs[0].optional);
  EXPECT_TRUE(c.inputs[1].optional);
  ASSERT_EQ(c.outputs.size(), 1u);
  ASSERT_TRUE(c.dynamic_batching.has_value());
  EXPECT_EQ(c.dynamic_batching->max_queue_delay_us, 500);
  EXPECT_EQ(c.dynamic_batching->preferred_batch_sizes, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(c.dynamic_batching->max_queue_size, 64);
  EXPECT_EQ(c.dynamic_batching->default_timeout_us, 100000);
  EXPECT_EQ(c.dynamic_batching->priority_levels, 3);
  EXPECT_EQ(c.dynamic_batching->default_priority_level, 2);
  EXPECT_EQ(c.instances.count, 2);
  EXPECT_EQ(c.instances.threads, 4);
  EXPECT_EQ(c.version_policy.kind, VersionPolicy::Kind::kLatest);
  EXPECT_EQ(c.version_policy.latest, 2);
  EXPECT_EQ(c.labels.at("stable"), 3);
  EXPECT_EQ(c.labels.at("canary"), 4);
  ASSERT_TRUE(c.canary.has_value());
  EXPECT_EQ(c.canary->label, "canary");
  EXPECT_EQ(c.canary->weight_percent, 10);
  EXPECT_EQ(c.slo.p99_ms, 50);
  ASSERT_EQ(c.warmup.size(), 1u);
  const Warmup& w = c.warmup[0];
  EXPECT_EQ(w.name, "small");
  EXPECT_EQ(w.batch_size, 4);
  EXPECT_EQ(w.count, 3);
  EXPECT_EQ(w.inputs.at("image").fill, WarmupInput::Fill::kRandom);
  EXPECT_EQ(w.inputs.at("image").dims, (std::vector<int64_t>{3, 224, 224}));
  // Unlisted inputs are zero-filled with their config dims.
  EXPECT_EQ(w.inputs.at("scale").fill, WarmupInput::Fill::kZero);
  EXPECT_EQ(w.inputs.at("scale").dims, (std::vector<int64_t>{1}));
  EXPECT_EQ(c.parameters.at("intra_op"), "4");
  EXPECT_EQ(c.parameters.at("mode"), "fast");
  EXPECT_EQ(c.parameters.at("enable"), "true");
}

TEST(ModelConfig, DefaultsAreSane) {
  ModelConfig c = MustParse(kMinimal, "fraud");
  EXPECT_EQ(c.name, "fraud");  // from the directory
  EXPECT_EQ(c.backend, Backend::kXgboost);
  EXPECT_EQ(c.max_batch_size, 0);
  EXPECT_FALSE(c.dynamic_batching.has_value());
  EXPECT_EQ(c.instances.count, 1);
  EXPECT_EQ(c.instances.threads, 1);
  EXPECT_EQ(c.version_policy.kind, VersionPolicy::Kind::kLatest);
  EXPECT_EQ(c.version_policy.latest, 1);
  EXPECT_TRUE(c.labels.empty());
  EXPECT_FALSE(c.canary.has_value());
  EXPECT_EQ(c.slo.p99_ms, 0);
  EXPECT_TRUE(c.warmup.empty());
  EXPECT_EQ(BackendPlatform(c.backend), "xgboost");
  EXPECT_EQ(BackendPlatform(Backend::kTorchScript), "pytorch_torchscript");
}

TEST(ModelConfig, BareDynamicBatchingMeansDefaults) {
  std::string yaml = std::string(kMinimal) + "max_batch_size: 4\ndynamic_batching:\n";
  ModelConfig c = MustParse(yaml);
  ASSERT_TRUE(c.dynamic_batching.has_value());
  EXPECT_EQ(c.dynamic_batching->max_queue_delay_us, 0);
  EXPECT_TRUE(c.dynamic_batching->preferred_batch_sizes.empty());
  c = MustParse(std::string(kMinimal) + "max_batch_size: 4\ndynamic_batching: {}\n");
  ASSERT_TRUE(c.dynamic_batching.has_value());
}

TEST(ModelConfig, MetadataShapeAddsTheBatchDimension) {
  ModelConfig c = MustParse(kFull, "resnet");
  EXPECT_EQ(MetadataShape(c, c.inputs[0]), (std::vector<int64_t>{-1, 3, -1, -1}));
  ModelConfig u = MustParse(kMinimal);
  EXPECT_EQ(MetadataShape(u, u.inputs[0]), (std::vector<int64_t>{4}));
}

TEST(ModelConfig, VersionPolicyForms) {
  auto policy = [](const std::string& p) {
    return MustParse(std::string(kMinimal) + "version_policy: " + p + "\n").version_policy;
  };
  EXPECT_EQ(policy("all").kind, VersionPolicy::Kind::kAll);
  EXPECT_EQ(policy("{all: {}}").kind, VersionPolicy::Kind::kAll);
  EXPECT_EQ(policy("latest").latest, 1);
  EXPECT_EQ(policy("{latest: 3}").latest, 3);
  VersionPolicy s = policy("{specific: [7, 2, 5]}");
  EXPECT_EQ(s.kind, VersionPolicy::Kind::kSpecific);
  EXPECT_EQ(s.specific, (std::vector<int64_t>{2, 5, 7}));
}

struct BadCase {
  std::string extra;  // appended to kMinimal (or replacing it when `whole`)
  std::string field;
  std::string message;
  bool whole = false;
};

class ModelConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ModelConfigErrors, NameTheField) {
  const BadCase& c = GetParam();
  Status s = ParseError(c.whole ? c.extra : std::string(kMinimal) + c.extra);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.field(), c.field) << s.message();
  EXPECT_THAT(s.message(), HasSubstr(c.message));
  if (!c.field.empty()) {
    EXPECT_THAT(s.message(), ::testing::StartsWith(c.field + ": "));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fields, ModelConfigErrors,
    ::testing::Values(
        BadCase{"backend: onnx\ninputs: [{name: x, datatype: FP32, dims: [1]}]\n"
                "outputs: [{name: y, datatype: FP32, dims: [1]}]\n",
                "backend", "\"onnx\" is not a backend", true},
        BadCase{"inputs: [{name: x, datatype: FP32, dims: [1]}]\n"
                "outputs: [{name: y, datatype: FP32, dims: [1]}]\n",
                "backend", "required field is missing", true},
        BadCase{"backend: xgboost\ninputs: [{name: x, datatype: FP32, dims: [1]},\n"
                "  {name: z, datatype: FP32, dims: [0]}]\n"
                "outputs: [{name: y, datatype: FP32, dims: [1]}]\n",
                "inputs[1].dims[0]", "0 is not a dimension", true},
        BadCase{"backend: xgboost\ninputs: [{name: x, datatype: FP32, dims: [-2]}]\n"
                "outputs: [{name: y, datatype: FP32, dims: [1]}]\n",
                "inputs[0].dims[0]", "-2 is not a dimension", true},
        BadCase{"backend: xgboost\ninputs: [{name: x, datatype: FP32, dims: [a]}]\n"
                "outputs: [{name: y, datatype: FP32, dims: [1]}]\n",
                "inputs[0].dims[0]", "expected an integer, got a string", true},
        BadCase{"backend: xgboost\ninputs: [{name: x, datatype: float32, dims: [1]}]\n"
                "outputs: [{name: y, datatype: FP32, dims: [1]}]\n",
                "inputs[0].datatype", "\"float32\" is not a datatype", true},
        BadCase{"backend: xgboost\ninputs: [{name: x, datatype: FP32, dims: [1]},\n"
                "  {name: x, datatype: FP32, dims: [2]}]\n"
                "outputs: [{name: y, datatype: FP32, dims: [1]}]\n",
                "inputs[1].name", "duplicate input name \"x\"", true},
        BadCase{"backend: xgboost\ninputs: []\noutputs: [{name: y, datatype: FP32, dims: [1]}]\n",
                "inputs", "at least one input", true},
        BadCase{"backend: xgboost\ninputs: [{name: x, datatype: FP32, dims: [1]}]\n"
                "outputs: [{name: y, datatype: FP32, dims: [1], optional: true}]\n",
                "outputs[0].optional", "unknown field", true},
        BadCase{"backend: xgboost\ninputs: [{name: x, datatype: FP32}]\n"
                "outputs: [{name: y, datatype: FP32, dims: [1]}]\n",
                "inputs[0].dims", "required field is missing", true},
        BadCase{"name: other\n", "name", "differs from the model's directory name \"m\""},
        BadCase{"colour: blue\n", "colour", "unknown field"},
        BadCase{"max_batch_size: -1\n", "max_batch_size", "-1 is not in 0..65536"},
        BadCase{"dynamic_batching: {max_queue_delay_us: 100}\n", "dynamic_batching",
                "needs max_batch_size > 0"},
        BadCase{"max_batch_size: 8\ndynamic_batching: {preferred_batch_sizes: [4, 16]}\n",
                "dynamic_batching.preferred_batch_sizes[1]", "16 is not in 1..8"},
        BadCase{"max_batch_size: 8\ndynamic_batching: {preferred_batch_sizes: [4, 4]}\n",
                "dynamic_batching.preferred_batch_sizes", "4 is listed twice"},
        BadCase{"max_batch_size: 8\ndynamic_batching: {priority_levels: 2, "
                "default_priority_level: 3}\n",
                "dynamic_batching.default_priority_level", "3 is not in 1..2"},
        BadCase{"max_batch_size: 8\ndynamic_batching: {default_priority_level: 1}\n",
                "dynamic_batching.default_priority_level", "needs priority_levels > 0"},
        BadCase{"max_batch_size: 8\ndynamic_batching: {max_queue_delay_us: -5}\n",
                "dynamic_batching.max_queue_delay_us", "-5 is not in"},
        BadCase{"instances: {count: 0}\n", "instances.count", "0 is not in 1..64"},
        BadCase{"instances: {threads: 1000}\n", "instances.threads", "1000 is not in 1..256"},
        BadCase{"version_policy: newest\n", "version_policy", "\"newest\" is not a version policy"},
        BadCase{"version_policy: {latest: 0}\n", "version_policy.latest", "0 is not in"},
        BadCase{"version_policy: {specific: []}\n", "version_policy.specific", "lists no versions"},
        BadCase{"version_policy: {specific: [1, 1]}\n", "version_policy.specific",
                "1 is listed twice"},
        BadCase{"version_policy: {specific: [0]}\n", "version_policy.specific[0]", "0 is not in"},
        BadCase{"version_policy: {latest: 1, all: {}}\n", "version_policy", "expected one of"},
        BadCase{"labels: {Stable: 1}\n", "labels.Stable", "is not a label"},
        BadCase{"labels: {'3': 1}\n", "labels.3", "is not a label"},
        BadCase{"labels: {stable: 0}\n", "labels.stable", "0 is not in"},
        BadCase{"labels: {stable: 1}\ncanary: {label: beta, weight: 5}\n", "canary.label",
                "\"beta\" is not one of the model's labels"},
        BadCase{"canary: {version: 2, label: x, weight: 5}\n", "canary",
                "exactly one of version and label"},
        BadCase{"canary: {weight: 5}\n", "canary", "exactly one of version and label"},
        BadCase{"canary: {version: 2, weight: 101}\n", "canary.weight", "101 is not in 0..100"},
        BadCase{"canary: {version: 2}\n", "canary.weight", "required field is missing"},
        BadCase{"slo: {p99_ms: -1}\n", "slo.p99_ms", "is not in"},
        BadCase{"warmup: {name: w}\n", "warmup", "expected a list"},
        BadCase{"warmup: [{batch_size: 1}]\n", "warmup[0].name", "required field is missing"},
        BadCase{"warmup: [{name: w, batch_size: 2}]\n", "warmup[0].batch_size",
                "must be 1: the model does not batch"},
        BadCase{"warmup: [{name: w, inputs: {nope: zero}}]\n", "warmup[0].inputs.nope",
                "\"nope\" is not an input of the model"},
        BadCase{"warmup: [{name: w, inputs: {x: ones}}]\n", "warmup[0].inputs.x",
                "expected zero or random, got \"ones\""},
        BadCase{"warmup: [{name: w, count: 0}]\n", "warmup[0].count", "0 is not in 1..1000"},
        BadCase{"warmup: [{name: w, inputs: {x: {fill: zero, dims: [5]}}}]\n",
                "warmup[0].inputs.x.dims[0]", "[5] does not match the input's dims [4]"},
        BadCase{"parameters: {a: [1, 2]}\n", "parameters.a",
                "expected a string, number or boolean"},
        BadCase{"model_filename: ../model.pt\n", "model_filename", "must be a file name"}));

TEST(ModelConfig, WarmupOfVariableDimsNeedsDims) {
  std::string yaml = R"(
backend: torchscript
max_batch_size: 4
inputs: [{name: x, datatype: FP32, dims: [-1, 3]}]
outputs: [{name: y, datatype: FP32, dims: [1]}]
warmup: [{name: w, batch_size: 2}]
)";
  Status s = ParseError(yaml);
  EXPECT_EQ(s.field(), "warmup[0].inputs.x");
  EXPECT_THAT(s.message(), HasSubstr("variable dims [-1,3]"));
  ModelConfig c = MustParse(R"(
backend: torchscript
max_batch_size: 4
inputs: [{name: x, datatype: FP32, dims: [-1, 3]}]
outputs: [{name: y, datatype: FP32, dims: [1]}]
warmup: [{name: w, batch_size: 2, inputs: {x: {dims: [7, 3]}}}]
)");
  EXPECT_EQ(c.warmup[0].inputs.at("x").dims, (std::vector<int64_t>{7, 3}));
  EXPECT_EQ(c.warmup[0].inputs.at("x").fill, WarmupInput::Fill::kZero);
}

TEST(ModelConfig, AllocationBombsInConfigAreRejected) {
  // Fixed dims whose full batch is over the tensor limit.
  Status s = ParseError(R"(
backend: torchscript
max_batch_size: 64
inputs: [{name: x, datatype: FP32, dims: [1000000000, 1000000000]}]
outputs: [{name: y, datatype: FP32, dims: [1]}]
)");
  EXPECT_EQ(s.field(), "inputs[0].dims");
  EXPECT_THAT(s.message(), HasSubstr("too large"));
  // Warmup dims that would allocate terabytes.
  s = ParseError(R"(
backend: torchscript
max_batch_size: 4
inputs: [{name: x, datatype: FP32, dims: [-1, -1]}]
outputs: [{name: y, datatype: FP32, dims: [1]}]
warmup: [{name: w, inputs: {x: {dims: [1000000, 1000000]}}}]
)");
  EXPECT_EQ(s.field(), "warmup[0].inputs.x.dims");
  EXPECT_THAT(s.message(), HasSubstr("too large"));
  // Rank beyond the limit (the batch dimension counts).
  std::string dims = "[";
  for (int i = 0; i < 32; ++i) dims += i ? ", 1" : "1";
  dims += "]";
  s = ParseError("backend: xgboost\nmax_batch_size: 2\ninputs: [{name: x, datatype: FP32, dims: " +
                 dims + "}]\noutputs: [{name: y, datatype: FP32, dims: [1]}]\n");
  EXPECT_EQ(s.field(), "inputs[0].dims");
  EXPECT_THAT(s.message(), HasSubstr("32 dimensions; at most 31"));
}

TEST(ModelConfig, YamlErrorsAndOddDocuments) {
  Status s = ParseError("backend: [\n");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  s = ParseError("");
  EXPECT_THAT(s.message(), HasSubstr("backend: required field is missing"));
  s = ParseError("- a\n- b\n");
  EXPECT_THAT(s.message(), HasSubstr("expected an object"));
}

TEST(ModelConfig, ModelNames) {
  EXPECT_TRUE(IsValidModelName("resnet-50_v1.2"));
  EXPECT_FALSE(IsValidModelName(""));
  EXPECT_FALSE(IsValidModelName(".hidden"));
  EXPECT_FALSE(IsValidModelName("a/b"));
  EXPECT_FALSE(IsValidModelName("a b"));
  EXPECT_FALSE(IsValidModelName(std::string(129, 'a')));
  Status s = ParseError(kMinimal, "bad name");
  EXPECT_EQ(s.field(), "name");
}

}  // namespace
}  // namespace lathe::serving
