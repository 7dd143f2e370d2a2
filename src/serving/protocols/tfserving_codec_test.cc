#include "serving/protocols/tfserving_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

namespace lathe::serving {
namespace {

using ::testing::HasSubstr;

ModelConfig Config(std::string_view yaml) {
  StatusOr<ModelConfig> c = ParseModelConfig(yaml, "m");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

const ModelConfig& OneInput() {
  static const ModelConfig c = Config(R"(
backend: xgboost
max_batch_size: 16
inputs: [{name: x, datatype: FP32, dims: [3]}]
outputs: [{name: y, datatype: FP32, dims: [1]}]
)");
  return c;
}

const ModelConfig& TwoInputs() {
  static const ModelConfig c = Config(R"(
backend: torchscript
max_batch_size: 16
inputs:
  - {name: ids, datatype: INT64, dims: [-1]}
  - {name: img_bytes, datatype: BYTES, dims: [1]}
outputs: [{name: y, datatype: FP32, dims: [1]}]
)");
  return c;
}

template <typename T>
std::vector<T> Values(const Tensor& t) {
  std::vector<T> v(t.data.size() / sizeof(T));
  std::memcpy(v.data(), t.data.data(), t.data.size());
  return v;
}

TfServingRequest MustDecode(std::string_view body, const ModelConfig& c) {
  StatusOr<TfServingRequest> r = DecodeTfServingPredict(body, c);
  EXPECT_TRUE(r.ok()) << r.status().ToString() << "\n" << body;
  return r.ok() ? *std::move(r) : TfServingRequest{};
}

Status DecodeError(std::string_view body, const ModelConfig& c) {
  StatusOr<TfServingRequest> r = DecodeTfServingPredict(body, c);
  EXPECT_FALSE(r.ok()) << "decoded: " << body;
  return r.status();
}

TEST(TfServingDecode, RowFormatOneInput) {
  TfServingRequest r = MustDecode(R"({"instances": [[1, 2, 3], [4, 5, 6]]})", OneInput());
  EXPECT_EQ(r.format, TfServingFormat::kRow);
  ASSERT_EQ(r.request.inputs.size(), 1u);
  const Tensor& x = r.request.inputs[0];
  EXPECT_EQ(x.name, "x");
  EXPECT_EQ(x.type, DataType::kFp32);
  EXPECT_EQ(x.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(Values<float>(x), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(*ValidateInferRequest(r.request, OneInput()), 2);
}

TEST(TfServingDecode, RowFormatNamedInputs) {
  TfServingRequest r = MustDecode(R"({"signature_name": "serving_default", "instances": [
      {"ids": [1, 2], "img_bytes": [{"b64": "AAEC"}]},
      {"img_bytes": ["plain"], "ids": [3, 4]}]})",
                                  TwoInputs());
  ASSERT_EQ(r.request.inputs.size(), 2u);
  const Tensor& ids = r.request.inputs[0];
  EXPECT_EQ(ids.name, "ids");
  EXPECT_EQ(ids.shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(Values<int64_t>(ids), (std::vector<int64_t>{1, 2, 3, 4}));
  const Tensor& img = r.request.inputs[1];
  EXPECT_EQ(img.shape, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(*SplitBytesElements(img.data.bytes()),
            (std::vector<std::string_view>{std::string_view("\0\1\2", 3), "plain"}));
  EXPECT_EQ(*ValidateInferRequest(r.request, TwoInputs()), 2);
}

TEST(TfServingDecode, ColumnarFormat) {
  TfServingRequest r = MustDecode(R"({"inputs": [[1, 2, 3]]})", OneInput());
  EXPECT_EQ(r.format, TfServingFormat::kColumnar);
  EXPECT_EQ(r.request.inputs[0].shape, (std::vector<int64_t>{1, 3}));
  r = MustDecode(R"({"inputs": {"ids": [[1], [2], [3]], "img_bytes": [["a"], ["b"], ["c"]]}})",
                 TwoInputs());
  ASSERT_EQ(r.request.inputs.size(), 2u);
  EXPECT_EQ(r.request.inputs[0].shape, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(r.request.inputs[1].shape, (std::vector<int64_t>{3, 1}));
  // Scalars and empty lists have shapes too.
  ModelConfig scalar = Config(R"(
backend: xgboost
inputs: [{name: t, datatype: FP64, dims: []}]
outputs: [{name: y, datatype: FP32, dims: [1]}]
)");
  r = MustDecode(R"({"inputs": 2.5})", scalar);
  EXPECT_TRUE(r.request.inputs[0].shape.empty());
  EXPECT_EQ(Values<double>(r.request.inputs[0]), (std::vector<double>{2.5}));
  r = MustDecode(R"({"inputs": [[], []]})", OneInput());
  EXPECT_EQ(r.request.inputs[0].shape, (std::vector<int64_t>{2, 0}));
}

TEST(TfServingDecode, NonFiniteLiteralsAsTfServingSendsThem) {
  TfServingRequest r = MustDecode(R"({"instances": [[NaN, Infinity, -Infinity]]})", OneInput());
  std::vector<float> v = Values<float>(r.request.inputs[0]);
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_TRUE(std::isinf(v[1]) && v[1] > 0);
  EXPECT_TRUE(std::isinf(v[2]) && v[2] < 0);
}

TEST(TfServingDecode, BadRequests) {
  Status s = DecodeError(R"({"instances": [[1,2,3]], "inputs": [[1,2,3]]})", OneInput());
  EXPECT_THAT(s.message(), HasSubstr("exactly one of instances"));
  s = DecodeError(R"({})", OneInput());
  EXPECT_THAT(s.message(), HasSubstr("exactly one of instances"));
  s = DecodeError(R"({"instances": [[1,2,3]], "extra": 1})", OneInput());
  EXPECT_THAT(s.message(), HasSubstr("extra: unknown field"));
  s = DecodeError(R"({"instances": [[1,2,3], [4,5]]})", OneInput());
  EXPECT_THAT(s.message(), HasSubstr("instances \"x\": the lists are not rectangular"));
  s = DecodeError(R"({"instances": [[1,2,3], 4]})", OneInput());
  EXPECT_THAT(s.message(), HasSubstr("not rectangular"));
  s = DecodeError(R"({"instances": [[1,"a",3]]})", OneInput());
  EXPECT_THAT(s.message(), HasSubstr("data[1]: expected a number, got a string"));
  s = DecodeError(R"({"instances": 5})", OneInput());
  EXPECT_EQ(s.message(), "instances: expected a list, got an integer");
  s = DecodeError(R"({"instances": [[1], [2]]})", TwoInputs());
  EXPECT_THAT(s.message(),
              HasSubstr("the model has 2 inputs; each instance must be {name: value}"));
  s = DecodeError(R"({"instances": [{"ids": [1], "img_bytes": ["a"]}, {"ids": [2]}]})",
                  TwoInputs());
  EXPECT_EQ(s.message(), "instances[1]: has 1 inputs where instances[0] has 2");
  s = DecodeError(R"({"instances": [{"ids": [1], "img_bytes": ["a"]},
                                    {"ids": [2], "other": ["b"]}]})",
                  TwoInputs());
  EXPECT_THAT(s.message(), HasSubstr("instances[1] \"img_bytes\": missing"));
  s = DecodeError(R"({"instances": [{"ids": [1, 2], "img_bytes": ["a"]},
                                    {"ids": [2], "img_bytes": ["b"]}]})",
                  TwoInputs());
  EXPECT_EQ(s.message(), "instances[1] \"ids\": shape [1] differs from [2] of instances[0]");
  s = DecodeError(R"({"instances": [{"nope": [1]}]})", TwoInputs());
  EXPECT_EQ(
      s.message(),
      "instances[0].nope: \"nope\" is not an input of the model (its inputs: ids, img_bytes)");
  s = DecodeError(R"({"instances": [{"ids": [1], "img_bytes": [{"b64": "%%"}]}]})", TwoInputs());
  EXPECT_THAT(s.message(), HasSubstr("not valid base64"));
  s = DecodeError(R"({"inputs": [[1]]})", TwoInputs());
  EXPECT_THAT(s.message(), HasSubstr("the model has 2 inputs; give them as {name: value}"));
  s = DecodeError(R"({"signature_name": "classify", "instances": [[1,2,3]]})", OneInput());
  EXPECT_THAT(s.message(), HasSubstr("\"classify\" is not a signature of the model"));
  s = DecodeError(R"({"instances": [[1,2,3]]})", TwoInputs());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  std::string deep = std::string(40, '[') + "1" + std::string(40, ']');
  s = DecodeError(R"({"inputs": )" + deep + "}", OneInput());
  EXPECT_THAT(s.message(), HasSubstr("nested deeper than 32 dimensions"));
  s = DecodeError("not json", OneInput());
  EXPECT_THAT(s.message(), HasSubstr("malformed JSON"));
}

InferResponse Outputs() {
  InferResponse r;
  r.outputs.push_back(
      MakeTensor("scores", DataType::kFp32, {2, 2}, std::vector<float>{0.5f, 1, 2, 3}));
  r.outputs.push_back(MakeTensor("label", DataType::kInt32, {2}, std::vector<int32_t>{7, 8}));
  return r;
}

TEST(TfServingEncode, RowFormat) {
  InferResponse one;
  one.outputs.push_back(Outputs().outputs[0]);
  EXPECT_EQ(*EncodeTfServingPredict(one, TfServingFormat::kRow),
            R"({"predictions":[[0.5,1.0],[2.0,3.0]]})");
  EXPECT_EQ(*EncodeTfServingPredict(Outputs(), TfServingFormat::kRow),
            R"({"predictions":[{"scores":[0.5,1.0],"label":7},{"scores":[2.0,3.0],"label":8}]})");
}

TEST(TfServingEncode, ColumnarFormat) {
  EXPECT_EQ(*EncodeTfServingPredict(Outputs(), TfServingFormat::kColumnar),
            R"({"outputs":{"scores":[[0.5,1.0],[2.0,3.0]],"label":[7,8]}})");
  InferResponse one;
  one.outputs.push_back(Outputs().outputs[1]);
  EXPECT_EQ(*EncodeTfServingPredict(one, TfServingFormat::kColumnar), R"({"outputs":[7,8]})");
}

TEST(TfServingEncode, BytesOutputsNamedBytesAreBase64) {
  InferResponse r;
  r.outputs.push_back(MakeBytesTensor("img_bytes", {1}, {std::string("\0\1", 2)}));
  r.outputs.push_back(MakeBytesTensor("text", {1}, {"hi"}));
  EXPECT_EQ(*EncodeTfServingPredict(r, TfServingFormat::kColumnar),
            R"({"outputs":{"img_bytes":[{"b64":"AAE="}],"text":["hi"]}})");
}

TEST(TfServingEncode, BytesThatAreNotUtf8NeedBase64) {
  InferResponse r;
  r.outputs.push_back(MakeBytesTensor("text", {1}, {"\xc3"}));
  Status s = EncodeTfServingPredict(r, TfServingFormat::kColumnar).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("BYTES element 0 is not valid UTF-8"));
  r.outputs[0].name = "text_bytes";
  EXPECT_EQ(*EncodeTfServingPredict(r, TfServingFormat::kColumnar),
            R"({"outputs":[{"b64":"ww=="}]})");
}

TEST(TfServingEncode, RowsNeedASharedBatchDimension) {
  InferResponse r = Outputs();
  r.outputs[1] = MakeTensor("label", DataType::kInt32, {3}, std::vector<int32_t>{1, 2, 3});
  Status s = EncodeTfServingPredict(r, TfServingFormat::kRow).status();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("columnar"));
  r.outputs[1].shape = {4};  // bytes for 3
  EXPECT_EQ(EncodeTfServingPredict(r, TfServingFormat::kColumnar).status().code(),
            StatusCode::kInternal);
}

TEST(TfServingEncode, RoundTripThroughTheDecoder) {
  ModelConfig c = Config(R"(
backend: xgboost
inputs: [{name: scores, datatype: FP32, dims: [2, 2]}, {name: label, datatype: INT32, dims: [2]}]
outputs: [{name: y, datatype: FP32, dims: [1]}]
)");
  StatusOr<std::string> body = EncodeTfServingPredict(Outputs(), TfServingFormat::kColumnar);
  ASSERT_TRUE(body.ok());
  // {"outputs": ...} read back as {"inputs": ...}.
  std::string request = "{\"inputs\"" + body->substr(std::string("{\"outputs\"").size());
  TfServingRequest r = MustDecode(request, c);
  ASSERT_EQ(r.request.inputs.size(), 2u);
  EXPECT_EQ(r.request.inputs[0].data.bytes(), Outputs().outputs[0].data.bytes());
  EXPECT_EQ(r.request.inputs[1].data.bytes(), Outputs().outputs[1].data.bytes());
  EXPECT_EQ(EncodeTfServingError(NotFoundError("Servable not found")),
            R"({"error":"Servable not found"})");
}

}  // namespace
}  // namespace lathe::serving
