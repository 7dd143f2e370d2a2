#include "serving/protocols/grpc_codec.h"

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace lathe::serving {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// One tensor of every datatype that has a typed field.
std::vector<Tensor> EveryTypedTensor() {
  return {
      MakeTensor("b", DataType::kBool, {2}, std::vector<uint8_t>{1, 0}),
      MakeTensor("u8", DataType::kUint8, {2}, std::vector<uint8_t>{0, 255}),
      MakeTensor("u16", DataType::kUint16, {1}, std::vector<uint16_t>{65535}),
      MakeTensor("u32", DataType::kUint32, {1}, std::vector<uint32_t>{4000000000u}),
      MakeTensor("u64", DataType::kUint64, {1},
                 std::vector<uint64_t>{std::numeric_limits<uint64_t>::max()}),
      MakeTensor("i8", DataType::kInt8, {2}, std::vector<int8_t>{-128, 127}),
      MakeTensor("i16", DataType::kInt16, {1}, std::vector<int16_t>{-32768}),
      MakeTensor("i32", DataType::kInt32, {2, 1}, std::vector<int32_t>{-7, 7}),
      MakeTensor("i64", DataType::kInt64, {1}, std::vector<int64_t>{int64_t{1} << 40}),
      MakeTensor("f32", DataType::kFp32, {3}, std::vector<float>{0.5f, -1, 3}),
      MakeTensor("f64", DataType::kFp64, {1}, std::vector<double>{1e300}),
      MakeBytesTensor("s", {2}, {"", "xyz"}),
  };
}

TEST(GrpcCodec, EveryTypedDatatypeRoundTripsRawAndTyped) {
  for (bool raw : {true, false}) {
    SCOPED_TRACE(raw ? "raw" : "typed");
    InferRequest r;
    r.id = "id-7";
    r.inputs = EveryTypedTensor();
    r.priority = 2;
    r.timeout_us = 500;
    r.parameters.emplace_back("custom", std::string("v"));
    ModelInferRequest m;
    ASSERT_TRUE(EncodeGrpcInferRequest(r, raw, &m).ok());
    EXPECT_EQ(m.raw_input_contents_size(), raw ? 12 : 0);
    StatusOr<GrpcInferRequest> d = DecodeGrpcInferRequest(m, nullptr);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(d->request.id, "id-7");
    EXPECT_EQ(d->request.priority, 2);
    EXPECT_EQ(d->request.timeout_us, 500);
    ASSERT_EQ(d->request.parameters.size(), 1u);
    EXPECT_EQ(d->request.parameters[0].first, "custom");
    ASSERT_EQ(d->request.inputs.size(), r.inputs.size());
    for (size_t i = 0; i < r.inputs.size(); ++i) {
      SCOPED_TRACE(r.inputs[i].name);
      EXPECT_EQ(d->request.inputs[i].type, r.inputs[i].type);
      EXPECT_EQ(d->request.inputs[i].shape, r.inputs[i].shape);
      EXPECT_EQ(d->request.inputs[i].data.bytes(), r.inputs[i].data.bytes());
    }

    // The same tensors as response outputs.
    InferResponse res;
    res.model_name = "m";
    res.model_version = "3";
    res.outputs = EveryTypedTensor();
    ModelInferResponse out;
    ASSERT_TRUE(EncodeGrpcInferResponse(res, /*typed=*/!raw, &out).ok());
    EXPECT_EQ(out.raw_output_contents_size(), raw ? 12 : 0);
    StatusOr<InferResponse> back = DecodeGrpcInferResponse(out);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->model_version, "3");
    for (size_t i = 0; i < res.outputs.size(); ++i) {
      EXPECT_EQ(back->outputs[i].data.bytes(), res.outputs[i].data.bytes()) << res.outputs[i].name;
    }
  }
}

TEST(GrpcCodec, RawTensorsAreViewsOfTheMessage) {
  auto m = std::make_shared<ModelInferRequest>();
  InferRequest r;
  r.inputs.push_back(MakeTensor("x", DataType::kFp32, {2}, std::vector<float>{1, 2}));
  ASSERT_TRUE(EncodeGrpcInferRequest(r, true, m.get()).ok());
  StatusOr<GrpcInferRequest> d = DecodeGrpcInferRequest(*m, m);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->request.inputs[0].data.data(), m->raw_input_contents(0).data());
}

TEST(GrpcCodec, Parameters) {
  ModelInferRequest m;
  auto& p = *m.mutable_parameters();
  p["u"].set_uint64_param(7);
  p["d"].set_double_param(0.25);
  p["b"].set_bool_param(true);
  StatusOr<GrpcInferRequest> d = DecodeGrpcInferRequest(m, nullptr);
  ASSERT_TRUE(d.ok());
  // In key order.
  ASSERT_EQ(d->request.parameters.size(), 3u);
  EXPECT_EQ(d->request.parameters[0].first, "b");
  EXPECT_EQ(std::get<double>(d->request.parameters[1].second), 0.25);
  EXPECT_EQ(std::get<int64_t>(d->request.parameters[2].second), 7);
  EXPECT_FALSE(d->typed_outputs);

  p["u"].set_uint64_param(std::numeric_limits<uint64_t>::max());
  EXPECT_THAT(DecodeGrpcInferRequest(m, nullptr).status().message(),
              HasSubstr("parameters.u: 18446744073709551615 is over 2^63-1"));
  p.erase("u");
  p["empty"];
  EXPECT_THAT(DecodeGrpcInferRequest(m, nullptr).status().message(),
              HasSubstr("parameters.empty: the parameter has no value"));
  p.erase("empty");
  p["sequence_id"].set_int64_param(1);
  EXPECT_THAT(DecodeGrpcInferRequest(m, nullptr).status().message(),
              HasSubstr("sequence batching is not supported"));
  p.erase("sequence_id");
  p["timeout"].set_int64_param(-1);
  EXPECT_THAT(DecodeGrpcInferRequest(m, nullptr).status().message(),
              HasSubstr("parameters.timeout: expected a non-negative integer"));
}

TEST(GrpcCodec, RequestedOutputs) {
  ModelInferRequest m;
  auto* o = m.add_outputs();
  o->set_name("y");
  (*o->mutable_parameters())["binary_data"].set_bool_param(false);
  StatusOr<GrpcInferRequest> d = DecodeGrpcInferRequest(m, nullptr);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->typed_outputs);
  ASSERT_EQ(d->request.outputs.size(), 1u);
  EXPECT_EQ(d->request.outputs[0].binary_data, false);

  (*o->mutable_parameters())["classification"].set_int64_param(3);
  EXPECT_THAT(DecodeGrpcInferRequest(m, nullptr).status().message(),
              HasSubstr("outputs[0].parameters.classification: classification outputs are not "
                        "supported"));
  m.mutable_outputs(0)->clear_name();
  EXPECT_THAT(DecodeGrpcInferRequest(m, nullptr).status().message(),
              HasSubstr("outputs[0].name: required field is missing"));
}

TEST(GrpcCodec, BadInputs) {
  auto decode = [](const ModelInferRequest& m) {
    return DecodeGrpcInferRequest(m, nullptr).status();
  };
  ModelInferRequest m;
  auto* in = m.add_inputs();
  in->set_name("s");
  in->set_datatype("BYTES");
  in->add_shape(2);
  // BYTES raw: length prefixes that claim more than there is.
  m.add_raw_input_contents(std::string("\x05\x00\x00\x00" "ab", 6));
  Status s = decode(m);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("inputs[0] \"s\": raw_input_contents[0]: BYTES element 0 "
                                     "claims 5 bytes but only 2 remain"));
  EXPECT_EQ(s.field(), "raw_input_contents[0]");

  // A shape whose bytes overflow, rejected before anything is allocated.
  m.clear_raw_input_contents();
  in->set_datatype("FP64");
  in->clear_shape();
  for (int i = 0; i < 4; ++i) in->add_shape(int64_t{1} << 20);
  s = decode(m);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("inputs[0] \"s\": "));

  // Rank over the limit.
  in->clear_shape();
  for (int i = 0; i < 40; ++i) in->add_shape(1);
  EXPECT_THAT(decode(m).message(), HasSubstr("shape has more than 32 dimensions"));

  in->clear_shape();
  in->add_shape(1);
  in->clear_name();
  EXPECT_THAT(decode(m).message(), HasSubstr("inputs[0].name: required field is missing"));
  in->set_name("s");
  (*in->mutable_parameters())["shared_memory_region"].set_string_param("r");
  EXPECT_THAT(decode(m).message(), HasSubstr("shared memory is not supported"));
}

TEST(GrpcCodec, StatusMapping) {
  grpc::Status g = ToGrpcStatus(ResourceExhaustedError("queue full"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(g.error_message(), "queue full");
  EXPECT_EQ(ToGrpcStatus(NotFoundError("x")).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ToGrpcStatus(UnavailableError("x")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ToGrpcStatus(DeadlineExceededError("x")).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(ToGrpcStatus(OkStatus()).ok());
  EXPECT_EQ(FromGrpcStatus(g).code(), StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace lathe::serving
