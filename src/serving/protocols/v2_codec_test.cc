#include "serving/protocols/v2_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace lathe::serving {
namespace {

using ::testing::HasSubstr;

template <typename T>
std::vector<T> Values(const Tensor& t) {
  std::vector<T> v(t.data.size() / sizeof(T));
  std::memcpy(v.data(), t.data.data(), t.data.size());
  return v;
}

InferRequest MustDecode(std::string_view body, std::optional<uint64_t> header = std::nullopt) {
  StatusOr<InferRequest> r = DecodeV2Request(body, header);
  EXPECT_TRUE(r.ok()) << r.status().ToString() << "\n" << body;
  return r.ok() ? *std::move(r) : InferRequest{};
}

Status DecodeError(std::string_view body, std::optional<uint64_t> header = std::nullopt,
                   const TensorLimits& limits = {}) {
  StatusOr<InferRequest> r = DecodeV2Request(body, header, limits);
  EXPECT_FALSE(r.ok()) << "decoded: " << body;
  if (r.ok()) return OkStatus();
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  return r.status();
}

// A request whose only input is `input` (a JSON object).
std::string WithInput(const std::string& input) { return R"({"inputs":[)" + input + "]}"; }

// ------------------------------------------------------------------ JSON

TEST(V2Json, DecodesARequest) {
  InferRequest r = MustDecode(R"({
    "id": "req-1",
    "parameters": {"priority": 2, "timeout": 5000, "binary_data_output": true, "tag": "a",
                   "temperature": 0.5, "flag": false},
    "inputs": [
      {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3.5, -4]]},
      {"name": "ids", "shape": [3], "datatype": "INT64", "data": [1, -2, 9007199254740993]},
      {"name": "s", "shape": [2], "datatype": "BYTES", "data": ["hi", ""],
       "parameters": {"content_type": "str"}}
    ],
    "outputs": [{"name": "y", "parameters": {"binary_data": false}}, {"name": "z"}]
  })");
  EXPECT_EQ(r.id, "req-1");
  EXPECT_EQ(r.priority, 2);
  EXPECT_EQ(r.timeout_us, 5000);
  EXPECT_TRUE(r.binary_data_output);
  ASSERT_EQ(r.parameters.size(), 3u);  // the reserved ones are taken out
  EXPECT_EQ(r.parameters[0].first, "tag");
  EXPECT_EQ(std::get<std::string>(r.parameters[0].second), "a");
  EXPECT_EQ(std::get<double>(r.parameters[1].second), 0.5);
  EXPECT_EQ(std::get<bool>(r.parameters[2].second), false);
  ASSERT_EQ(r.inputs.size(), 3u);
  EXPECT_EQ(r.inputs[0].name, "x");
  EXPECT_EQ(r.inputs[0].type, DataType::kFp32);
  EXPECT_EQ(r.inputs[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(Values<float>(r.inputs[0]), (std::vector<float>{1, 2, 3.5, -4}));
  EXPECT_EQ(Values<int64_t>(r.inputs[1]), (std::vector<int64_t>{1, -2, 9007199254740993}));
  EXPECT_EQ(*SplitBytesElements(r.inputs[2].data.bytes()),
            (std::vector<std::string_view>{"hi", ""}));
  ASSERT_EQ(r.outputs.size(), 2u);
  EXPECT_EQ(r.outputs[0].name, "y");
  EXPECT_EQ(r.outputs[0].binary_data, false);
  EXPECT_FALSE(r.outputs[1].binary_data.has_value());
}

TEST(V2Json, FlatAndNestedDataAreTheSame) {
  InferRequest flat = MustDecode(
      WithInput(R"({"name":"x","shape":[2,3],"datatype":"INT32","data":[1,2,3,4,5,6]})"));
  InferRequest nested = MustDecode(
      WithInput(R"({"name":"x","shape":[2,3],"datatype":"INT32","data":[[1,2,3],[4,5,6]]})"));
  EXPECT_EQ(flat.inputs[0].data.bytes(), nested.inputs[0].data.bytes());
}

TEST(V2Json, EveryDatatype) {
  InferRequest r = MustDecode(R"({"inputs":[
    {"name":"b","shape":[2],"datatype":"BOOL","data":[true,false]},
    {"name":"u8","shape":[2],"datatype":"UINT8","data":[0,255]},
    {"name":"u16","shape":[1],"datatype":"UINT16","data":[65535]},
    {"name":"u32","shape":[1],"datatype":"UINT32","data":[4294967295]},
    {"name":"u64","shape":[1],"datatype":"UINT64","data":[18446744073709551615]},
    {"name":"i8","shape":[2],"datatype":"INT8","data":[-128,127]},
    {"name":"i16","shape":[1],"datatype":"INT16","data":[-32768]},
    {"name":"i32","shape":[1],"datatype":"INT32","data":[-2147483648]},
    {"name":"i64","shape":[1],"datatype":"INT64","data":[-9223372036854775808]},
    {"name":"f64","shape":[2],"datatype":"FP64","data":[0.1,1e300]},
    {"name":"scalar","shape":[],"datatype":"FP32","data":[7]},
    {"name":"empty","shape":[0,3],"datatype":"FP32","data":[]}
  ]})");
  ASSERT_EQ(r.inputs.size(), 12u);
  EXPECT_EQ(r.inputs[0].data.bytes(), std::string("\1\0", 2));
  EXPECT_EQ(Values<uint8_t>(r.inputs[1]), (std::vector<uint8_t>{0, 255}));
  EXPECT_EQ(Values<uint16_t>(r.inputs[2])[0], 65535);
  EXPECT_EQ(Values<uint32_t>(r.inputs[3])[0], 4294967295u);
  EXPECT_EQ(Values<uint64_t>(r.inputs[4])[0], UINT64_MAX);
  EXPECT_EQ(Values<int8_t>(r.inputs[5]), (std::vector<int8_t>{-128, 127}));
  EXPECT_EQ(Values<int16_t>(r.inputs[6])[0], -32768);
  EXPECT_EQ(Values<int32_t>(r.inputs[7])[0], INT32_MIN);
  EXPECT_EQ(Values<int64_t>(r.inputs[8])[0], INT64_MIN);
  EXPECT_EQ(Values<double>(r.inputs[9]), (std::vector<double>{0.1, 1e300}));
  EXPECT_EQ(Values<float>(r.inputs[10]), (std::vector<float>{7}));
  EXPECT_TRUE(r.inputs[11].data.empty());
}

TEST(V2Json, NonFiniteFloatsAsLiteralsOrStrings) {
  InferRequest r = MustDecode(WithInput(
      R"({"name":"x","shape":[4],"datatype":"FP32","data":[NaN, Infinity, -Infinity, "NaN"]})"));
  std::vector<float> v = Values<float>(r.inputs[0]);
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_EQ(v[1], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[2], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(v[3]));
}

TEST(V2Json, CountMismatchesNameTheTensor) {
  Status s =
      DecodeError(WithInput(R"({"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5]})"));
  EXPECT_EQ(s.message(), "inputs[0] \"x\": shape [2,3] has 6 elements but data has 5");
  EXPECT_EQ(s.field(), "inputs[0].data");
  s = DecodeError(WithInput(R"({"name":"x","shape":[2],"datatype":"FP32","data":[[1,2],[3,4]]})"));
  EXPECT_THAT(s.message(), HasSubstr("nested deeper than the shape's 1 dimensions"));
  s = DecodeError(WithInput(R"({"name":"x","shape":[2],"datatype":"FP32","data":[1,2,3,4]})"));
  EXPECT_EQ(s.message(), "inputs[0] \"x\": shape [2] has 2 elements but data has 4");
}

TEST(V2Json, AbsurdShapesAreRejectedBeforeAllocating) {
  // 2^40 × 2^40 elements claimed by a body of a few bytes.
  Status s = DecodeError(WithInput(
      R"({"name":"x","shape":[1099511627776,1099511627776],"datatype":"FP32","data":[1]})"));
  EXPECT_THAT(s.message(), HasSubstr("inputs[0] \"x\": shape"));
  EXPECT_THAT(s.message(), HasSubstr("too large"));
  EXPECT_EQ(s.field(), "inputs[0].shape");
  // Under the byte limit, but far more elements than the body could hold.
  s = DecodeError(WithInput(R"({"name":"x","shape":[100000000],"datatype":"UINT8","data":[1]})"));
  EXPECT_EQ(s.message(),
            "inputs[0] \"x\": shape [100000000] has 100000000 elements but data "
            "has 1");
  // The byte limit is the caller's.
  s = DecodeError(WithInput(R"({"name":"x","shape":[3],"datatype":"FP64","data":[1,2,3]})"),
                  std::nullopt, TensorLimits{.max_bytes = 16});
  EXPECT_THAT(s.message(), HasSubstr("over the 16-byte limit"));
  std::string rank = "[";
  for (int i = 0; i < 40; ++i) rank += i ? ",1" : "1";
  rank += "]";
  s = DecodeError(
      WithInput(R"({"name":"x","shape":)" + rank + R"(,"datatype":"FP32","data":[1]})"));
  EXPECT_THAT(s.message(), HasSubstr("more than 32 dimensions"));
  s = DecodeError(WithInput(R"({"name":"x","shape":[-1],"datatype":"FP32","data":[]})"));
  EXPECT_THAT(s.message(), HasSubstr("negative dimension -1"));
  s = DecodeError(WithInput(R"({"name":"x","shape":[18446744073709551615],"datatype":"FP32",)"
                            R"("data":[]})"));
  EXPECT_THAT(s.message(), HasSubstr("shape[0]: expected an integer, got an integer over 2^63"));
  s = DecodeError(WithInput(R"({"name":"x","shape":[2.5],"datatype":"FP32","data":[]})"));
  EXPECT_THAT(s.message(), HasSubstr("shape[0]: expected an integer, got a number"));
  s = DecodeError(WithInput(R"({"name":"x","shape":"2","datatype":"FP32","data":[1,2]})"));
  EXPECT_THAT(s.message(), HasSubstr("expected shape as an array of integers, got a string"));
}

TEST(V2Json, WrongTypesNameTheElement) {
  Status s =
      DecodeError(WithInput(R"({"name":"x","shape":[3],"datatype":"FP32","data":[1,"two",3]})"));
  EXPECT_EQ(s.message(), "inputs[0] \"x\": data[1]: expected a number, got a string");
  EXPECT_EQ(s.field(), "inputs[0].data");
  s = DecodeError(WithInput(R"({"name":"x","shape":[1],"datatype":"INT8","data":[300]})"));
  EXPECT_EQ(s.message(), "inputs[0] \"x\": data[0]: 300 is out of range for INT8");
  s = DecodeError(WithInput(R"({"name":"x","shape":[1],"datatype":"INT32","data":[1.5]})"));
  EXPECT_THAT(s.message(), HasSubstr("1.5 is not an integer"));
  s = DecodeError(WithInput(R"({"name":"x","shape":[1],"datatype":"BOOL","data":[1]})"));
  EXPECT_THAT(s.message(), HasSubstr("expected true or false, got an integer"));
  s = DecodeError(WithInput(R"({"name":"x","shape":[1],"datatype":"BYTES","data":[1]})"));
  EXPECT_THAT(s.message(), HasSubstr("expected a string, got an integer"));
  s = DecodeError(WithInput(R"({"name":"x","shape":[1],"datatype":"FP16","data":[1]})"));
  EXPECT_THAT(s.message(), HasSubstr("FP16 data cannot be sent as JSON; send it as binary"));
  s = DecodeError(WithInput(R"({"name":"x","shape":[1],"datatype":"BF16","data":[1]})"));
  EXPECT_THAT(s.message(), HasSubstr("BF16"));
  s = DecodeError(WithInput(R"({"name":"x","shape":[1],"datatype":"float32","data":[1]})"));
  EXPECT_THAT(s.message(), HasSubstr("inputs[0] \"x\": \"float32\" is not a datatype"));
  EXPECT_EQ(s.field(), "inputs[0].datatype");
  s = DecodeError(WithInput(R"({"name":"x","shape":[1],"datatype":"FP32","data":1})"));
  EXPECT_THAT(s.message(), HasSubstr("expected data as an array, got an integer"));
  s = DecodeError(WithInput(R"({"name":"x","shape":[1],"datatype":"FP32","data":[{}]})"));
  EXPECT_THAT(s.message(), HasSubstr("data[0]: expected a number, got an object"));
}

TEST(V2Json, NamesAndFields) {
  Status s = DecodeError(WithInput(R"({"shape":[1],"datatype":"FP32","data":[1]})"));
  EXPECT_EQ(s.message(), "inputs[0].name: required field is missing");
  s = DecodeError(WithInput(R"({"name":"","shape":[1],"datatype":"FP32","data":[1]})"));
  EXPECT_THAT(s.message(), HasSubstr("the name is empty"));
  s = DecodeError(WithInput(R"({"name":7,"shape":[1],"datatype":"FP32","data":[1]})"));
  EXPECT_EQ(s.message(), "inputs[0].name: expected a string, got an integer");
  s = DecodeError(WithInput(R"({"name":"x","datatype":"FP32","data":[1]})"));
  EXPECT_EQ(s.message(), "inputs[0] \"x\": shape is missing");
  s = DecodeError(WithInput(R"({"name":"x","shape":[1],"data":[1]})"));
  EXPECT_EQ(s.message(), "inputs[0] \"x\": datatype is missing");
  s = DecodeError(WithInput(R"({"name":"x","shape":[1],"datatype":"FP32"})"));
  EXPECT_THAT(s.message(), HasSubstr("inputs[0] \"x\": no data"));
  s = DecodeError(WithInput(R"({"name":"x","shape":[1],"datatype":"FP32","data":[1],"extra":1})"));
  EXPECT_EQ(s.message(), "inputs[0].extra: unknown field");
  s = DecodeError(WithInput(R"({"name":"x","shape":[1],"datatype":"FP32","data":[1],"data":[2]})"));
  EXPECT_EQ(s.message(), "inputs[0].data: given twice");
  s = DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},
                                {"name":"y","shape":[1],"datatype":"FP32","data":[1]},
                                {"name":"x","shape":[1],"datatype":"FP32","data":[2]}]})");
  EXPECT_EQ(s.message(), "inputs[2] \"x\": the name is also used by inputs[0]");
  EXPECT_EQ(s.field(), "inputs[2].name");
  s = DecodeError(R"({"inputs":[]})");
  EXPECT_EQ(s.message(), "inputs: at least one tensor is needed");
  s = DecodeError(R"({"id":"a"})");
  EXPECT_EQ(s.message(), "inputs: required field is missing");
  s = DecodeError(R"({"inputs":{}})");
  EXPECT_EQ(s.message(), "inputs: expected an array, got an object");
  s = DecodeError(R"({"inputs":[1]})");
  EXPECT_EQ(s.message(), "inputs[0]: expected an object, got an integer");
  s = DecodeError(R"({"input":[]})");
  EXPECT_EQ(s.message(), "input: unknown field");
  s = DecodeError(R"({"id":1,"inputs":[]})");
  EXPECT_EQ(s.message(), "id: expected a string, got an integer");
  s = DecodeError(R"([1,2])");
  EXPECT_EQ(s.message(), "request: expected a JSON object, got an array");
}

TEST(V2Json, Parameters) {
  const std::string x = R"("inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}])";
  Status s = DecodeError("{\"parameters\":{\"priority\":-1}," + x + "}");
  EXPECT_EQ(s.message(), "parameters.priority: expected a non-negative integer");
  s = DecodeError("{\"parameters\":{\"timeout\":\"5\"}," + x + "}");
  EXPECT_EQ(s.message(), "parameters.timeout: expected a non-negative integer");
  s = DecodeError("{\"parameters\":{\"binary_data_output\":1}," + x + "}");
  EXPECT_EQ(s.message(), "parameters.binary_data_output: expected a boolean");
  s = DecodeError("{\"parameters\":{\"sequence_id\":1}," + x + "}");
  EXPECT_THAT(s.message(), HasSubstr("sequence batching is not supported"));
  s = DecodeError("{\"parameters\":{\"a\":[1]}," + x + "}");
  EXPECT_EQ(s.message(), "parameters.a: expected a string, number or boolean, got an array");
  s = DecodeError("{\"parameters\":{\"a\":1,\"a\":2}," + x + "}");
  EXPECT_EQ(s.message(), "parameters.a: given twice");
  s = DecodeError("{\"parameters\":[]," + x + "}");
  EXPECT_EQ(s.message(), "parameters: expected an object, got an array");
  s = DecodeError(WithInput(R"({"name":"x","shape":[1],"datatype":"FP32","data":[1],
                               "parameters":{"shared_memory_region":"r"}})"));
  EXPECT_THAT(s.message(), HasSubstr("shared memory is not supported"));
  s = DecodeError("{" + x + R"(,"outputs":[{"name":"y","parameters":{"classification":3}}]})");
  EXPECT_THAT(s.message(), HasSubstr("classification outputs are not supported"));
  s = DecodeError("{" + x + R"(,"outputs":[{"name":"y"},{"name":"y"}]})");
  EXPECT_EQ(s.message(), "outputs[1] \"y\": requested twice (also outputs[0])");
  s = DecodeError("{" + x + R"(,"outputs":[{"parameters":{}}]})");
  EXPECT_EQ(s.message(), "outputs[0].name: required field is missing");
  s = DecodeError("{" + x + R"(,"outputs":[{"name":"y","parameters":{"binary_data":"yes"}}]})");
  EXPECT_EQ(s.message(), "outputs[0].parameters.binary_data: expected a boolean, got a string");
}

TEST(V2Json, MalformedAndHostileJson) {
  Status s = DecodeError(R"({"inputs": [)");
  EXPECT_THAT(s.message(), HasSubstr("malformed JSON"));
  s = DecodeError("");
  EXPECT_THAT(s.message(), HasSubstr("malformed JSON"));
  s = DecodeError(R"({"inputs": [}]})");
  EXPECT_THAT(s.message(), HasSubstr("malformed JSON at byte 12"));
  // Deep nesting in data, and beyond what the parser takes at all.
  std::string deep = std::string(200, '[') + "1" + std::string(200, ']');
  s = DecodeError(WithInput(R"({"name":"x","shape":[1],"datatype":"FP32","data":)" + deep + "}"));
  EXPECT_THAT(s.message(), HasSubstr("nested deeper than the shape's 1 dimensions"));
  std::string deeper = std::string(100000, '[') + std::string(100000, ']');
  s = DecodeError(deeper);
  EXPECT_THAT(s.message(), HasSubstr("nested deeper"));
  s = DecodeError(std::string("{\"inputs\":[\"\xff\xfe\"]}"));
  EXPECT_THAT(s.message(), HasSubstr("UTF-8"));
  // Non-numeric data where numbers belong, everywhere.
  s = DecodeError(WithInput(R"({"name":"x","shape":[2],"datatype":"FP32","data":[null,1]})"));
  EXPECT_THAT(s.message(), HasSubstr("data[0]: expected a number, got null"));
  s = DecodeError(WithInput(R"({"name":"x","shape":[2],"datatype":"FP32","data":[true,1]})"));
  EXPECT_THAT(s.message(), HasSubstr("data[0]: expected a number, got a boolean"));
}

// ---------------------------------------------------------------- binary

std::string Raw(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

struct Body {
  std::string text;
  uint64_t header;
};

Body Binary(const std::string& json, const std::string& raw) { return {json + raw, json.size()}; }

TEST(V2Binary, TensorsAreViewsIntoTheBody) {
  const std::string json =
      R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","parameters":{"binary_data_size":16}},)"
      R"({"name":"j","shape":[1],"datatype":"INT32","data":[5]},)"
      R"({"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":11}}],)"
      R"("outputs":[{"name":"y","parameters":{"binary_data":true}}]})";
  std::string raw = Raw({1, 2, 3, 4}) + std::string("\3\0\0\0abc\0\0\0\0", 11);
  auto body = std::make_shared<const std::string>(json + raw);
  StatusOr<InferRequest> r = DecodeV2Request(body, json.size());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->inputs.size(), 3u);
  EXPECT_EQ(Values<float>(r->inputs[0]), (std::vector<float>{1, 2, 3, 4}));
  // No copy: the tensor points into the body.
  EXPECT_EQ(r->inputs[0].data.data(), body->data() + json.size());
  EXPECT_EQ(Values<int32_t>(r->inputs[1]), (std::vector<int32_t>{5}));
  EXPECT_EQ(*SplitBytesElements(r->inputs[2].data.bytes()),
            (std::vector<std::string_view>{"abc", ""}));
  // The request keeps the body alive.
  std::weak_ptr<const std::string> weak = body;
  body.reset();
  EXPECT_FALSE(weak.expired());
  EXPECT_EQ(Values<float>(r->inputs[0])[3], 4.0f);
}

TEST(V2Binary, HeaderLengthMismatches) {
  const std::string json =
      R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]})";
  Body b = Binary(json, Raw({1, 2}));
  EXPECT_TRUE(DecodeV2Request(b.text, b.header).ok());
  Status s = DecodeError(b.text, b.text.size() + 1);
  EXPECT_THAT(s.message(), HasSubstr("Inference-Header-Content-Length " +
                                     std::to_string(b.text.size() + 1) + " is larger than the"));
  s = DecodeError(b.text, 0);
  EXPECT_THAT(s.message(), HasSubstr("cannot be empty"));
  // Too short: the JSON is cut.
  s = DecodeError(b.text, b.header - 3);
  EXPECT_THAT(s.message(), HasSubstr("malformed JSON"));
  // Too long: binary bytes read as JSON.
  s = DecodeError(b.text, b.header + 2);
  EXPECT_THAT(s.message(), HasSubstr("malformed JSON"));
  // No header at all: the binary part is not JSON.
  s = DecodeError(b.text);
  EXPECT_THAT(s.message(), HasSubstr("malformed JSON"));
  // A JSON-only request told about binary data that is not there.
  s = DecodeError(json);
  EXPECT_EQ(s.message(),
            "inputs[0] \"x\": binary_data_size 8 but only 0 bytes of binary data "
            "remain (truncated body, or a wrong Inference-Header-Content-Length)");
  EXPECT_EQ(s.field(), "inputs[0].parameters.binary_data_size");
}

TEST(V2Binary, TruncatedAndTrailingData) {
  const std::string json =
      R"({"inputs":[{"name":"a","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}},)"
      R"({"name":"b","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]})";
  Body b = Binary(json, Raw({1, 2, 3, 4}).substr(0, 13));
  Status s = DecodeError(b.text, b.header);
  EXPECT_EQ(s.message(),
            "inputs[1] \"b\": binary_data_size 8 but only 5 bytes of binary data "
            "remain (truncated body, or a wrong Inference-Header-Content-Length)");
  b = Binary(json, Raw({1, 2, 3, 4, 5}));
  s = DecodeError(b.text, b.header);
  EXPECT_THAT(s.message(), HasSubstr("4 bytes follow the JSON header and the binary data of the "
                                     "inputs"));
  // A JSON-only request with a header length and trailing garbage.
  const std::string plain = WithInput(R"({"name":"x","shape":[1],"datatype":"FP32","data":[1]})");
  s = DecodeError(plain + "xx", plain.size());
  EXPECT_THAT(s.message(), HasSubstr("2 bytes follow the JSON header"));
}

TEST(V2Binary, SizesMustMatchShapes) {
  const std::string json =
      R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","parameters":{"binary_data_size":12}}]})";
  Body b = Binary(json, Raw({1, 2, 3}));
  Status s = DecodeError(b.text, b.header);
  EXPECT_EQ(s.message(),
            "inputs[0] \"x\": binary_data_size 12 does not match shape [2,2] of "
            "FP32 (16 bytes)");
  // BYTES elements must fill the binary part exactly.
  const std::string bytes_json =
      R"({"inputs":[{"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":9}}]})";
  b = Binary(bytes_json, std::string("\5\0\0\0abcde", 9));
  s = DecodeError(b.text, b.header);
  EXPECT_THAT(s.message(), HasSubstr("inputs[0] \"s\": BYTES data ends inside the length of "
                                     "element 1 (of 2)"));
  b = Binary(bytes_json, std::string("\xff\0\0\0abcde", 9));
  s = DecodeError(b.text, b.header);
  EXPECT_THAT(s.message(), HasSubstr("claims 255 bytes but only 5 remain"));
  s = DecodeError(WithInput(
      R"({"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4}})"));
  EXPECT_THAT(s.message(), HasSubstr("has both data and parameters.binary_data_size"));
  s = DecodeError(WithInput(
      R"({"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":-4}})"));
  EXPECT_THAT(s.message(), HasSubstr("-4 is not a non-negative 64-bit integer"));
  s = DecodeError(WithInput(
      R"({"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":"4"}})"));
  EXPECT_THAT(s.message(), HasSubstr("expected a non-negative integer, got a string"));
  // FP16 travels fine as binary.
  const std::string half =
      R"({"inputs":[{"name":"h","shape":[1],"datatype":"FP16","parameters":{"binary_data_size":2}}]})";
  b = Binary(half, std::string("\0\x3c", 2));
  StatusOr<InferRequest> r = DecodeV2Request(b.text, b.header);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->inputs[0].type, DataType::kFp16);
}

TEST(V2Binary, AbsurdShapeWithBinaryData) {
  const std::string json =
      R"({"inputs":[{"name":"x","shape":[1099511627776,1099511627776],"datatype":"FP32",)"
      R"("parameters":{"binary_data_size":4}}]})";
  Body b = Binary(json, Raw({1}));
  Status s = DecodeError(b.text, b.header);
  EXPECT_THAT(s.message(), HasSubstr("too large"));
}

TEST(V2Binary, HeaderLengthValues) {
  EXPECT_EQ(*ParseInferenceHeaderLength("153"), 153u);
  EXPECT_EQ(*ParseInferenceHeaderLength("0"), 0u);
  EXPECT_FALSE(ParseInferenceHeaderLength("").ok());
  EXPECT_FALSE(ParseInferenceHeaderLength("-1").ok());
  EXPECT_FALSE(ParseInferenceHeaderLength(" 1").ok());
  EXPECT_FALSE(ParseInferenceHeaderLength("1e3").ok());
  EXPECT_FALSE(ParseInferenceHeaderLength("99999999999999999999").ok());
}

// ------------------------------------------------------------ responses

InferResponse Response() {
  InferResponse r;
  r.model_name = "m";
  r.model_version = "3";
  r.id = "req-1";
  r.outputs.push_back(MakeTensor("y", DataType::kFp32, {2, 2}, std::vector<float>{1, 0.5f, -2, 3}));
  r.outputs.push_back(MakeBytesTensor("s", {1}, {"ok"}));
  return r;
}

TEST(V2Response, JsonExactly) {
  InferRequest req;
  StatusOr<V2EncodedResponse> e = EncodeV2Response(Response(), req);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_FALSE(e->header_length.has_value());
  EXPECT_EQ(e->body, R"({"model_name":"m","model_version":"3","id":"req-1","outputs":[)"
                     R"({"name":"y","datatype":"FP32","shape":[2,2],"data":[1.0,0.5,-2.0,3.0]},)"
                     R"({"name":"s","datatype":"BYTES","shape":[1],"data":["ok"]}]})");
}

TEST(V2Response, BinaryOutputsFollowTheHeader) {
  InferRequest req;
  req.outputs = {{"y", true}, {"s", std::nullopt}};
  StatusOr<V2EncodedResponse> e = EncodeV2Response(Response(), req);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  ASSERT_TRUE(e->header_length.has_value());
  const std::string json = e->body.substr(0, *e->header_length);
  EXPECT_EQ(json, R"({"model_name":"m","model_version":"3","id":"req-1","outputs":[)"
                  R"({"name":"y","datatype":"FP32","shape":[2,2],)"
                  R"("parameters":{"binary_data_size":16}},)"
                  R"({"name":"s","datatype":"BYTES","shape":[1],"data":["ok"]}]})");
  EXPECT_EQ(e->body.substr(*e->header_length), Raw({1, 0.5f, -2, 3}));
  StatusOr<InferResponse> back = DecodeV2Response(e->body, e->header_length);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->model_name, "m");
  EXPECT_EQ(back->model_version, "3");
  EXPECT_EQ(back->id, "req-1");
  EXPECT_EQ(Values<float>(back->outputs[0]), (std::vector<float>{1, 0.5f, -2, 3}));
}

TEST(V2Response, SpecialValuesAndHalfPrecision) {
  InferResponse r;
  r.model_name = "m";
  r.outputs.push_back(MakeTensor("f", DataType::kFp32, {3},
                                 std::vector<float>{std::numeric_limits<float>::quiet_NaN(),
                                                    std::numeric_limits<float>::infinity(),
                                                    -std::numeric_limits<float>::infinity()}));
  r.outputs.push_back(MakeTensor("h", DataType::kFp16, {2}, std::vector<uint16_t>{0x3c00, 0x3800}));
  r.outputs.push_back(MakeTensor("b", DataType::kBool, {2}, std::vector<uint8_t>{1, 0}));
  r.parameters.emplace_back("note", std::string("x"));
  StatusOr<V2EncodedResponse> e = EncodeV2Response(r, InferRequest{});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->body,
            R"({"model_name":"m","parameters":{"note":"x"},"outputs":[)"
            R"({"name":"f","datatype":"FP32","shape":[3],"data":[NaN,Infinity,-Infinity]},)"
            R"({"name":"h","datatype":"FP16","shape":[2],"data":[1.0,0.5]},)"
            R"({"name":"b","datatype":"BOOL","shape":[2],"data":[true,false]}]})");
  // Our own decoder reads the literals back (FP16 in JSON it does not).
  StatusOr<InferResponse> back = DecodeV2Response(e->body, std::nullopt);
  EXPECT_FALSE(back.ok());
  EXPECT_THAT(back.status().message(), HasSubstr("FP16"));
}

TEST(V2Response, BytesThatAreNotUtf8OnlyAsBinary) {
  InferResponse r;
  r.model_name = "m";
  r.outputs.push_back(MakeBytesTensor("s", {2}, {"ok", "\xff\xfe"}));
  Status s = EncodeV2Response(r, InferRequest{}).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "tensor \"s\": BYTES element 1 is not valid UTF-8, which a JSON string "
            "cannot carry; ask for it as binary data (binary_data)");
  InferRequest binary;
  binary.outputs = {{"s", true}};
  StatusOr<V2EncodedResponse> e = EncodeV2Response(r, binary);
  ASSERT_TRUE(e.ok());
  StatusOr<InferResponse> back = DecodeV2Response(e->body, e->header_length);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->outputs[0].data.bytes(), r.outputs[0].data.bytes());
}

TEST(V2Response, BackendBugsAreInternalErrors) {
  InferResponse r = Response();
  r.outputs[0].shape = {3, 2};  // 6 elements, 4 present
  EXPECT_EQ(EncodeV2Response(r, InferRequest{}).status().code(), StatusCode::kInternal);
  InferRequest binary;
  binary.binary_data_output = true;
  EXPECT_EQ(EncodeV2Response(r, binary).status().code(), StatusCode::kInternal);
  r = Response();
  r.outputs[1].data = TensorData(std::string("\x09\0\0\0ab", 6));
  EXPECT_EQ(EncodeV2Response(r, InferRequest{}).status().code(), StatusCode::kInternal);
}

// ------------------------------------------------------------ round trips

InferRequest AllTypes() {
  InferRequest r;
  r.id = "rt";
  r.priority = 1;
  r.timeout_us = 250;
  r.parameters.emplace_back("k", int64_t{3});
  r.inputs.push_back(MakeTensor("b", DataType::kBool, {3}, std::vector<uint8_t>{1, 0, 1}));
  r.inputs.push_back(MakeTensor("u8", DataType::kUint8, {2}, std::vector<uint8_t>{0, 255}));
  r.inputs.push_back(MakeTensor("u16", DataType::kUint16, {1}, std::vector<uint16_t>{65535}));
  r.inputs.push_back(MakeTensor("u32", DataType::kUint32, {1}, std::vector<uint32_t>{UINT32_MAX}));
  r.inputs.push_back(
      MakeTensor("u64", DataType::kUint64, {2}, std::vector<uint64_t>{0, UINT64_MAX}));
  r.inputs.push_back(MakeTensor("i8", DataType::kInt8, {2}, std::vector<int8_t>{-128, 127}));
  r.inputs.push_back(MakeTensor("i16", DataType::kInt16, {1}, std::vector<int16_t>{-32768}));
  r.inputs.push_back(
      MakeTensor("i32", DataType::kInt32, {2, 1}, std::vector<int32_t>{INT32_MIN, 7}));
  r.inputs.push_back(
      MakeTensor("i64", DataType::kInt64, {2}, std::vector<int64_t>{INT64_MIN, INT64_MAX}));
  r.inputs.push_back(MakeTensor("f32", DataType::kFp32, {2, 2},
                                std::vector<float>{0.1f, -1e-30f, 3.4028235e38f, 1.17549435e-38f}));
  r.inputs.push_back(MakeTensor("f64", DataType::kFp64, {3},
                                std::vector<double>{0.1, 5e-324, 1.7976931348623157e308}));
  r.inputs.push_back(MakeBytesTensor("s", {2}, {"h\xc3\xa9llo \"q\"\n", ""}));
  r.outputs = {{"y", true}, {"z", std::nullopt}};
  return r;
}

void ExpectSameRequest(const InferRequest& a, const InferRequest& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.priority, b.priority);
  EXPECT_EQ(a.timeout_us, b.timeout_us);
  EXPECT_EQ(a.binary_data_output, b.binary_data_output);
  EXPECT_EQ(a.parameters, b.parameters);
  ASSERT_EQ(a.inputs.size(), b.inputs.size());
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    EXPECT_EQ(a.inputs[i].name, b.inputs[i].name);
    EXPECT_EQ(a.inputs[i].type, b.inputs[i].type);
    EXPECT_EQ(a.inputs[i].shape, b.inputs[i].shape) << a.inputs[i].name;
    EXPECT_EQ(a.inputs[i].data.bytes(), b.inputs[i].data.bytes()) << a.inputs[i].name;
  }
  ASSERT_EQ(a.outputs.size(), b.outputs.size());
  for (size_t i = 0; i < a.outputs.size(); ++i) {
    EXPECT_EQ(a.outputs[i].name, b.outputs[i].name);
    EXPECT_EQ(a.outputs[i].binary_data, b.outputs[i].binary_data);
  }
}

TEST(V2RoundTrip, JsonKeepsEveryBit) {
  InferRequest r = AllTypes();
  StatusOr<V2EncodedResponse> e = EncodeV2Request(r);
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->header_length.has_value());
  StatusOr<InferRequest> back = DecodeV2Request(e->body, std::nullopt);
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << e->body;
  ExpectSameRequest(r, *back);
}

TEST(V2RoundTrip, BinaryAndMixed) {
  InferRequest r = AllTypes();
  r.inputs.push_back(MakeTensor("half", DataType::kFp16, {2}, std::vector<uint16_t>{1, 0xfbff}));
  std::vector<std::string> all;
  for (const Tensor& t : r.inputs) all.push_back(t.name);
  for (const std::vector<std::string>& binary :
       {all, std::vector<std::string>{"half", "s", "u8"}}) {
    StatusOr<V2EncodedResponse> e = EncodeV2Request(r, binary);
    ASSERT_TRUE(e.ok());
    ASSERT_TRUE(e->header_length.has_value());
    StatusOr<InferRequest> back = DecodeV2Request(e->body, *e->header_length);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ExpectSameRequest(r, *back);
  }
}

TEST(V2RoundTrip, ResponseJsonAndBinary) {
  InferResponse r = Response();
  for (bool binary : {false, true}) {
    InferRequest req;
    req.binary_data_output = binary;
    StatusOr<V2EncodedResponse> e = EncodeV2Response(r, req);
    ASSERT_TRUE(e.ok());
    StatusOr<InferResponse> back = DecodeV2Response(e->body, e->header_length);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ASSERT_EQ(back->outputs.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(back->outputs[i].shape, r.outputs[i].shape);
      EXPECT_EQ(back->outputs[i].data.bytes(), r.outputs[i].data.bytes());
    }
  }
}

TEST(V2Errors, BodyAndHttpStatus) {
  EXPECT_EQ(EncodeV2Error(InvalidArgumentError("inputs[0] \"x\": bad")),
            R"({"error":"inputs[0] \"x\": bad"})");
  EXPECT_EQ(V2HttpStatus(InvalidArgumentError("x")), 400);
  EXPECT_EQ(V2HttpStatus(NotFoundError("x")), 404);
  EXPECT_EQ(V2HttpStatus(ResourceExhaustedError("queue full")), 429);
  EXPECT_EQ(V2HttpStatus(UnavailableError("x")), 503);
  EXPECT_EQ(V2HttpStatus(UnimplementedError("x")), 501);
  EXPECT_EQ(V2HttpStatus(InternalError("x")), 500);
  EXPECT_EQ(V2HttpStatus(DeadlineExceededError("x")), 504);
}

}  // namespace
}  // namespace lathe::serving
