// TensorFlow Serving's REST predict API (protocols.md §4), which KServe
// calls its V1 protocol: `POST /v1/models/<m>[/versions/<n>|/labels/<l>]:predict`.
//
// Requests carry no datatypes or shapes: datatypes come from the model's
// config and shapes from the nesting of the JSON lists, which must be
// rectangular.
//   Row format      {"instances": [...]} — one entry per example. For a
//                   model with one input an entry is that input's value;
//                   otherwise it is {input name: value}, with the same names
//                   in every entry. The tensor's shape is
//                   [number of entries] + the entries' common shape.
//                   Answer: {"predictions": ...} — with one output the
//                   output tensor as nested lists, else one
//                   {output name: value} object per example.
//   Columnar format {"inputs": value} for a one-input model, or
//                   {"inputs": {input name: value}}; each value is a whole
//                   tensor. Answer: {"outputs": value} or
//                   {"outputs": {output name: value}}.
// BYTES values are JSON strings or {"b64": "<base64>"}; BYTES outputs whose
// name ends in "_bytes" are answered as {"b64": ...}. Element coercion,
// NaN/Infinity (also accepted as bare literals, as TF Serving does) and
// number spelling as in tensor_json.h. `signature_name` may be absent or
// "serving_default".
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "serving/infer_request.h"
#include "serving/model_config.h"
#include "serving/tensor.h"

namespace lathe::serving {

enum class TfServingFormat { kRow, kColumnar };

struct TfServingRequest {
  InferRequest request;
  TfServingFormat format = TfServingFormat::kRow;
};

// Decodes a :predict body for the model described by `config` (for the
// input names and datatypes). The result still needs ValidateInferRequest
// (shapes, batch size, missing inputs). Errors are INVALID_ARGUMENT naming
// the input: `instances[2] "x": shape [3] differs from [4] of instances[0]`.
StatusOr<TfServingRequest> DecodeTfServingPredict(std::string_view body, const ModelConfig& config,
                                                  const TensorLimits& limits = {});

// Encodes the answer to a request of `format`. Fails with INTERNAL when an
// output's bytes do not match its shape, and with FAILED_PRECONDITION when
// the row format cannot express the outputs (several outputs that do not
// share their first dimension: ask in the columnar format).
StatusOr<std::string> EncodeTfServingPredict(const InferResponse& response, TfServingFormat format);

// `{"error":"<message>"}`.
std::string EncodeTfServingError(const Status& status);

}  // namespace lathe::serving
