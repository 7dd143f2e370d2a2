#include "serving/infer_request.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace lathe::serving {
namespace {

using ::testing::HasSubstr;

ModelConfig Config(std::string_view yaml) {
  StatusOr<ModelConfig> c = ParseModelConfig(yaml, "m");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

const ModelConfig& Batched() {
  static const ModelConfig c = Config(R"(
backend: torchscript
max_batch_size: 8
inputs:
  - {name: x, datatype: FP32, dims: [3, -1]}
  - {name: ids, datatype: INT64, dims: [2]}
  - {name: mask, datatype: BOOL, dims: [2], optional: true}
outputs:
  - {name: y, datatype: FP32, dims: [1]}
  - {name: z, datatype: FP16, dims: [1]}
dynamic_batching: {priority_levels: 3}
)");
  return c;
}

Tensor Input(std::string name, DataType type, std::vector<int64_t> shape) {
  return Tensor{std::move(name), type, std::move(shape), {}};
}

InferRequest Good(int64_t batch = 2) {
  InferRequest r;
  r.inputs.push_back(Input("x", DataType::kFp32, {batch, 3, 5}));
  r.inputs.push_back(Input("ids", DataType::kInt64, {batch, 2}));
  return r;
}

Status Error(const InferRequest& r, const ModelConfig& c = Batched()) {
  StatusOr<int64_t> v = ValidateInferRequest(r, c);
  EXPECT_FALSE(v.ok());
  return v.status();
}

TEST(ValidateInferRequest, AcceptsAGoodRequestAndReturnsTheBatchSize) {
  StatusOr<int64_t> batch = ValidateInferRequest(Good(2), Batched());
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_EQ(*batch, 2);
  InferRequest r = Good(8);
  r.inputs.push_back(Input("mask", DataType::kBool, {8, 2}));
  r.outputs.push_back({"y", true});
  r.priority = 3;
  EXPECT_EQ(*ValidateInferRequest(r, Batched()), 8);
}

TEST(ValidateInferRequest, NamesTheBadInput) {
  InferRequest r = Good();
  r.inputs.push_back(Input("w", DataType::kFp32, {2}));
  Status s = Error(r);
  EXPECT_EQ(s.message(), "inputs[2] \"w\": the model has no such input (its inputs: x, ids, mask)");
  EXPECT_EQ(s.field(), "inputs[2].name");

  r = Good();
  r.inputs.push_back(Input("x", DataType::kFp32, {2, 3, 5}));
  EXPECT_EQ(Error(r).message(), "inputs[2] \"x\": given twice");

  r = Good();
  r.inputs[1].type = DataType::kInt32;
  s = Error(r);
  EXPECT_EQ(s.message(), "inputs[1] \"ids\": datatype INT32 does not match the model's INT64");
  EXPECT_EQ(s.field(), "inputs[1].datatype");

  r = Good();
  r.inputs.pop_back();
  s = Error(r);
  EXPECT_EQ(s.message(), "inputs: the model's input \"ids\" is missing");

  EXPECT_EQ(Error(InferRequest{}).message(), "inputs: the request has no inputs");
}

TEST(ValidateInferRequest, ChecksShapesAndTheBatchDimension) {
  InferRequest r = Good();
  r.inputs[0].shape = {2, 4, 5};
  Status s = Error(r);
  EXPECT_EQ(s.message(),
            "inputs[0] \"x\": shape [2,4,5] does not match the model's [-1,3,-1] "
            "(the first dimension is the batch)");
  EXPECT_EQ(s.field(), "inputs[0].shape");

  r = Good();
  r.inputs[0].shape = {3, 5};  // batch dimension left out
  EXPECT_THAT(Error(r).message(), HasSubstr("shape [3,5] does not match"));

  r = Good();
  r.inputs[0].shape = {2, 3, 0};  // -1 accepts any size, even 0
  EXPECT_TRUE(ValidateInferRequest(r, Batched()).ok());

  EXPECT_EQ(Error(Good(9)).message(),
            "inputs[0] \"x\": batch size 9 is not in 1..8 (max_batch_size)");
  EXPECT_THAT(Error(Good(0)).message(), HasSubstr("batch size 0 is not in 1..8"));

  r = Good(2);
  r.inputs[1].shape = {3, 2};
  EXPECT_EQ(Error(r).message(),
            "inputs[1] \"ids\": batch size 3 differs from 2 of inputs[0] \"x\"");
}

TEST(ValidateInferRequest, ModelsWithoutBatchingTakeTheFullShape) {
  ModelConfig c = Config(R"(
backend: xgboost
inputs: [{name: x, datatype: FP32, dims: [-1, 4]}]
outputs: [{name: y, datatype: FP32, dims: [-1]}]
)");
  InferRequest r;
  r.inputs.push_back(Input("x", DataType::kFp32, {100, 4}));
  EXPECT_EQ(*ValidateInferRequest(r, c), 1);
  r.inputs[0].shape = {1, 100, 4};
  EXPECT_EQ(Error(r, c).message(),
            "inputs[0] \"x\": shape [1,100,4] does not match the model's "
            "[-1,4]");
}

TEST(ValidateInferRequest, RequestedOutputs) {
  InferRequest r = Good();
  r.outputs.push_back({"nope", std::nullopt});
  Status s = Error(r);
  EXPECT_EQ(s.message(), "outputs[0] \"nope\": the model has no such output (its outputs: y, z)");
  EXPECT_EQ(s.field(), "outputs[0].name");
  r = Good();
  r.outputs = {{"y", std::nullopt}, {"y", true}};
  EXPECT_EQ(Error(r).message(), "outputs[1] \"y\": requested twice (also outputs[0])");
}

TEST(ValidateInferRequest, Priority) {
  InferRequest r = Good();
  r.priority = 4;
  Status s = Error(r);
  EXPECT_EQ(s.field(), "parameters.priority");
  EXPECT_THAT(s.message(), HasSubstr("0 for the default, or 1..3"));
  ModelConfig plain = Config(R"(
backend: xgboost
inputs: [{name: x, datatype: FP32, dims: [4]}]
outputs: [{name: y, datatype: FP32, dims: [1]}]
)");
  InferRequest p;
  p.inputs.push_back(Input("x", DataType::kFp32, {4}));
  p.priority = 7;  // nothing to order: ignored
  EXPECT_TRUE(ValidateInferRequest(p, plain).ok());
}

TEST(WantsBinaryOutput, OutputParameterOverridesTheRequest) {
  InferRequest r;
  r.outputs = {{"a", true}, {"b", false}, {"c", std::nullopt}};
  EXPECT_TRUE(WantsBinaryOutput(r, "a"));
  EXPECT_FALSE(WantsBinaryOutput(r, "b"));
  EXPECT_FALSE(WantsBinaryOutput(r, "c"));
  r.binary_data_output = true;
  EXPECT_FALSE(WantsBinaryOutput(r, "b"));
  EXPECT_TRUE(WantsBinaryOutput(r, "c"));
  EXPECT_TRUE(WantsBinaryOutput(r, "unlisted"));
}

}  // namespace
}  // namespace lathe::serving
