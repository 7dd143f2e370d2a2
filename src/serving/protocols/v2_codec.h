// KServe V2 / Open Inference Protocol over REST: inference requests and
// responses as JSON and with the binary tensor extension
// (protocols.md §1.2-1.4), and V2's error body and HTTP status mapping.
//
// Request body = a JSON header of `Inference-Header-Content-Length` bytes
// (the whole body when that header is absent), then the raw bytes of every
// input whose parameters carry `binary_data_size`, concatenated in the order
// the inputs appear in the JSON. Tensor data from the binary part is not
// copied: those tensors are views into the body, which they keep alive.
//
// Decoding checks everything that can be checked without the model: JSON
// syntax and types, field names (unknown ones are rejected), datatype names,
// shapes (negative dimensions, rank and byte limits, before anything is
// allocated), element counts against shapes, data types against datatypes,
// binary sizes against shapes and against the bytes present, duplicate
// input and output names. Checking against the model is
// ValidateInferRequest (infer_request.h), shared with gRPC. All errors are
// INVALID_ARGUMENT naming the tensor or field, e.g.
// `inputs[0] "x": shape [2,3] has 6 elements but data has 5`.
//
// Reserved request parameters: `priority` (int ≥ 0), `timeout` (µs, int
// ≥ 0), `binary_data_output` (bool); sequence batching parameters
// (`sequence_id`, `sequence_start`, `sequence_end`) are rejected as
// unsupported; any other parameter is kept for the backend. Input
// parameters: `binary_data_size`; `shared_memory_*` is rejected as
// unsupported; others are ignored. Requested output parameters:
// `binary_data`; `classification` is rejected as unsupported; others are
// ignored.
//
// Thread-safe: the decoder keeps one simdjson parser per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "serving/infer_request.h"
#include "serving/tensor.h"

namespace lathe::serving {

// Parses the Inference-Header-Content-Length header value: a decimal
// integer, no sign or spaces.
StatusOr<uint64_t> ParseInferenceHeaderLength(std::string_view value);

// Decodes an inference request. `header_length` is the value of the
// Inference-Header-Content-Length header (nullopt when absent: the whole
// body is JSON). Binary tensors are views into `*body`.
StatusOr<InferRequest> DecodeV2Request(std::shared_ptr<const std::string> body,
                                       std::optional<uint64_t> header_length,
                                       const TensorLimits& limits = {});
// The same for a body the caller keeps: it is copied first.
StatusOr<InferRequest> DecodeV2Request(std::string_view body, std::optional<uint64_t> header_length,
                                       const TensorLimits& limits = {});

struct V2EncodedResponse {
  std::string body;
  // Set when binary outputs follow the JSON: the value of the
  // Inference-Header-Content-Length response header (the JSON's length).
  std::optional<size_t> header_length;
};

// Encodes `response`. Outputs for which WantsBinaryOutput(request, name)
// holds are written as binary data after the JSON header (with
// `binary_data_size`), the rest as flat JSON `data` arrays (number and NaN
// spellings in tensor_json.h). Fails with INTERNAL when an output's bytes do
// not match its shape (a backend bug). Writes no DOM.
StatusOr<V2EncodedResponse> EncodeV2Response(const InferResponse& response,
                                             const InferRequest& request);

// Encodes a request (for clients, tests, benchmarks and warmup): inputs
// listed in `binary_inputs` by name go as binary data. Returns the body
// and, when binary data follows, the header length.
StatusOr<V2EncodedResponse> EncodeV2Request(const InferRequest& request,
                                            const std::vector<std::string>& binary_inputs = {});

// Decodes a response body (for clients and tests).
StatusOr<InferResponse> DecodeV2Response(std::string_view body,
                                         std::optional<uint64_t> header_length,
                                         const TensorLimits& limits = {});

// `{"error":"<message>"}`.
std::string EncodeV2Error(const Status& status);

// The HTTP status for a non-OK Status on V2 routes: INVALID_ARGUMENT,
// FAILED_PRECONDITION, OUT_OF_RANGE, CANCELLED, UNKNOWN → 400,
// UNAUTHENTICATED → 401, PERMISSION_DENIED → 403, NOT_FOUND → 404,
// ALREADY_EXISTS / ABORTED → 409, RESOURCE_EXHAUSTED (queue full) → 429,
// UNIMPLEMENTED → 501, UNAVAILABLE → 503, DEADLINE_EXCEEDED → 504,
// INTERNAL / DATA_LOSS → 500.
int V2HttpStatus(const Status& status);

}  // namespace lathe::serving
