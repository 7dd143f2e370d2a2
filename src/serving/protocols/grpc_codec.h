// KServe V2 over gRPC: ModelInferRequest/ModelInferResponse (the generated
// messages of grpc_predict_v2.proto) to and from InferRequest/InferResponse,
// and lathe::Status to and from grpc::Status. Internal to the gRPC front end
// (library lathe_serving_grpc): only its .cc files, its test and its
// benchmark include this header, since it pulls in the generated code.
//
// Decoding checks what can be checked without the model, as the REST
// decoder does (v2_codec.h), with the same messages: datatype names, shapes
// (negative dimensions, rank and byte limits, before anything is
// allocated), element counts of typed contents and byte lengths of raw
// contents against the shapes, the typed field matching the datatype (and
// no other one set), integer ranges of narrow types (INT8 from int_contents,
// ...), raw and typed never mixed, FP16/BF16 raw only, BYTES raw as 4-byte
// length-prefixed elements, parameters (same reserved names and rules as
// REST: `priority`, `timeout` ≥ 0 integers; sequence batching, shared
// memory and classification refused). Errors are INVALID_ARGUMENT naming
// the tensor (`inputs[1] "b": ...`) or the parameter (`parameters.timeout:
// ...`). Checking against the model is ValidateInferRequest, in the batcher.
#pragma once

#include <memory>

#include <grpcpp/support/status.h>

#include "base/status.h"
#include "serving/infer_request.h"
#include "serving/protocols/grpc_predict_v2.pb.h"
#include "serving/tensor.h"

namespace lathe::serving {

struct GrpcInferRequest {
  InferRequest request;
  // Outputs go back as typed contents instead of raw_output_contents.
  bool typed_outputs = false;
};

// Decodes `message`. Raw input tensors are views into `message`, which
// `owner` must keep alive (null: the bytes are copied instead).
StatusOr<GrpcInferRequest> DecodeGrpcInferRequest(const inference::ModelInferRequest& message,
                                                  std::shared_ptr<const void> owner,
                                                  const TensorLimits& limits = {});

// Fills `out` (model name, version, id, parameters, outputs). With `typed`,
// outputs go in `contents` unless one of them is FP16/BF16 (no typed field),
// in which case all go raw. INTERNAL when an output's bytes do not match its
// shape (a backend bug).
Status EncodeGrpcInferResponse(const InferResponse& response, bool typed,
                               inference::ModelInferResponse* out);

// For clients, tests and benchmarks: the request with every input raw
// (`raw`) or typed (FP16/BF16 always raw, so typed fails for them).
Status EncodeGrpcInferRequest(const InferRequest& request, bool raw,
                              inference::ModelInferRequest* out);
// The response as an InferResponse (outputs copied from raw or typed
// contents, checked against their shapes).
StatusOr<InferResponse> DecodeGrpcInferResponse(const inference::ModelInferResponse& message,
                                                const TensorLimits& limits = {});

// The one mapping to the wire: same code (lathe::StatusCode is gRPC's
// numbering), same message.
grpc::Status ToGrpcStatus(const Status& status);
Status FromGrpcStatus(const grpc::Status& status);

}  // namespace lathe::serving
