// Checks shared by the serving fuzzers: what a decoded request must satisfy
// whatever bytes it came from. A violated check prints what differs and
// aborts, which libFuzzer reports as a crash with the input saved.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "serving/infer_request.h"
#include "serving/protocols/tfserving_codec.h"
#include "serving/protocols/v2_codec.h"

namespace lathe::serving::fuzz {

[[noreturn]] inline void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s: %s\n", what, detail.c_str());
  std::abort();
}

// Bad input is INVALID_ARGUMENT, never anything else.
inline void ExpectInvalidArgument(const Status& s, const char* where) {
  if (!s.ok() && s.code() != StatusCode::kInvalidArgument) Fail(where, s.ToString());
}

inline bool HasHalf(const std::vector<Tensor>& tensors) {
  for (const Tensor& t : tensors) {
    if (t.type == DataType::kFp16 || t.type == DataType::kBf16) return true;
  }
  return false;
}

// Element-wise equality where every NaN equals every NaN (JSON spells all
// of them "NaN", so their payload bits do not survive).
inline bool SameData(const Tensor& a, const Tensor& b) {
  if (a.data.size() != b.data.size()) return false;
  if (a.type == DataType::kFp32 || a.type == DataType::kFp64) {
    const size_t size = DataTypeSize(a.type);
    for (size_t i = 0; i < a.data.size(); i += size) {
      double x, y;
      if (size == 4) {
        float fx, fy;
        std::memcpy(&fx, a.data.data() + i, 4);
        std::memcpy(&fy, b.data.data() + i, 4);
        x = fx;
        y = fy;
      } else {
        std::memcpy(&x, a.data.data() + i, 8);
        std::memcpy(&y, b.data.data() + i, 8);
      }
      if (std::isnan(x) && std::isnan(y)) continue;
      if (std::memcmp(a.data.data() + i, b.data.data() + i, size) != 0) return false;
    }
    return true;
  }
  return a.data.bytes() == b.data.bytes();
}

inline void ExpectSameTensors(const std::vector<Tensor>& a, const std::vector<Tensor>& b,
                              bool compare_empty_shapes, const char* where) {
  if (a.size() != b.size()) Fail(where, "tensor count differs");
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name) Fail(where, "name differs: " + a[i].name + " vs " + b[i].name);
    if (a[i].type != b[i].type) Fail(where, "datatype differs for " + a[i].name);
    // Nested JSON lists cannot say how long the dimensions after a zero are.
    bool empty = a[i].data.empty() && a[i].type != DataType::kBytes;
    if ((compare_empty_shapes || !empty) && a[i].shape != b[i].shape) {
      Fail(where, "shape differs for " + a[i].name + ": " + FormatShape(a[i].shape) + " vs " +
                      FormatShape(b[i].shape));
    }
    if (!SameData(a[i], b[i])) Fail(where, "data differs for " + a[i].name);
  }
}

inline void ExpectSameRequest(const InferRequest& a, const InferRequest& b, const char* where) {
  if (a.id != b.id) Fail(where, "id differs");
  if (a.priority != b.priority || a.timeout_us != b.timeout_us ||
      a.binary_data_output != b.binary_data_output) {
    Fail(where, "reserved parameters differ");
  }
  if (a.parameters != b.parameters) Fail(where, "parameters differ");
  if (a.outputs.size() != b.outputs.size()) Fail(where, "requested outputs differ");
  for (size_t i = 0; i < a.outputs.size(); ++i) {
    if (a.outputs[i].name != b.outputs[i].name ||
        a.outputs[i].binary_data != b.outputs[i].binary_data) {
      Fail(where, "requested output differs");
    }
  }
  ExpectSameTensors(a.inputs, b.inputs, true, where);
}

// A model the decoded requests are validated against.
inline const ModelConfig& FuzzModel() {
  static const ModelConfig* config = [] {
    StatusOr<ModelConfig> c = ParseModelConfig(R"(
backend: torchscript
max_batch_size: 8
inputs:
  - {name: x, datatype: FP32, dims: [-1]}
  - {name: s_bytes, datatype: BYTES, dims: [-1], optional: true}
  - {name: i, datatype: INT64, dims: [2], optional: true}
outputs:
  - {name: y, datatype: FP32, dims: [1]}
dynamic_batching: {priority_levels: 2}
)",
                                               "m");
    if (!c.ok()) Fail("fuzz model", c.status().ToString());
    return new ModelConfig(*c);
  }();
  return *config;
}

// Everything a successfully decoded V2 request must survive: validation
// against a model, re-encoding as JSON and as binary and decoding back to
// the same request, and being echoed as a response.
inline void CheckV2Request(const InferRequest& r) {
  ExpectInvalidArgument(ValidateInferRequest(r, FuzzModel()).status(), "validate");

  std::vector<std::string> all;
  for (const Tensor& t : r.inputs) all.push_back(t.name);
  StatusOr<V2EncodedResponse> binary = EncodeV2Request(r, all);
  if (!binary.ok()) Fail("encode binary", binary.status().ToString());
  StatusOr<InferRequest> back = DecodeV2Request(binary->body, binary->header_length);
  if (!back.ok()) Fail("decode re-encoded binary", back.status().ToString());
  ExpectSameRequest(r, *back, "binary round trip");

  // JSON carries neither FP16/BF16 nor BYTES that are not UTF-8.
  StatusOr<V2EncodedResponse> json = EncodeV2Request(r);
  if (!json.ok()) {
    ExpectInvalidArgument(json.status(), "encode JSON");
  } else if (!HasHalf(r.inputs)) {
    StatusOr<InferRequest> again = DecodeV2Request(json->body, json->header_length);
    if (!again.ok()) Fail("decode re-encoded JSON", again.status().ToString() + "\n" + json->body);
    ExpectSameRequest(r, *again, "JSON round trip");
  }

  InferResponse echo;
  echo.model_name = "m";
  echo.model_version = "1";
  echo.id = r.id;
  echo.outputs = r.inputs;
  StatusOr<V2EncodedResponse> response = EncodeV2Response(echo, r);
  if (!response.ok()) {
    ExpectInvalidArgument(response.status(), "encode response");
    return;
  }
  bool json_half = false;
  for (const Tensor& t : echo.outputs) {
    if ((t.type == DataType::kFp16 || t.type == DataType::kBf16) && !WantsBinaryOutput(r, t.name)) {
      json_half = true;
    }
  }
  if (json_half) return;  // our decoder takes no FP16 in JSON
  StatusOr<InferResponse> decoded = DecodeV2Response(response->body, response->header_length);
  if (!decoded.ok()) Fail("decode response", decoded.status().ToString());
  ExpectSameTensors(echo.outputs, decoded->outputs, true, "response round trip");
}

// The same bytes as a TF Serving :predict body for FuzzModel().
inline void CheckTfServing(std::string_view body) {
  StatusOr<TfServingRequest> r = DecodeTfServingPredict(body, FuzzModel());
  if (!r.ok()) {
    ExpectInvalidArgument(r.status(), "decode TF Serving");
    return;
  }
  ExpectInvalidArgument(ValidateInferRequest(r->request, FuzzModel()).status(),
                        "validate TF Serving");
  InferResponse echo;
  echo.outputs = r->request.inputs;
  for (TfServingFormat format : {TfServingFormat::kRow, TfServingFormat::kColumnar}) {
    StatusOr<std::string> out = EncodeTfServingPredict(echo, format);
    if (!out.ok() && out.status().code() != StatusCode::kFailedPrecondition) {
      ExpectInvalidArgument(out.status(), "encode TF Serving");
    }
    // {"outputs": {name: value}} read back as {"inputs": ...} is the request.
    if (out.ok() && format == TfServingFormat::kColumnar && echo.outputs.size() >= 2) {
      std::string again = "{\"inputs\"" + out->substr(std::strlen("{\"outputs\""));
      StatusOr<TfServingRequest> back = DecodeTfServingPredict(again, FuzzModel());
      if (!back.ok()) Fail("decode TF Serving round trip", back.status().ToString() + "\n" + again);
      ExpectSameTensors(echo.outputs, back->request.inputs, false, "TF Serving round trip");
    }
  }
}

}  // namespace lathe::serving::fuzz
