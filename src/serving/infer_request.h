// An inference request and its response as every protocol decodes them
// (KServe V2 REST and gRPC, TF Serving REST), and the check of a request
// against the model's config that all of them share.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/status.h"
#include "serving/model_config.h"
#include "serving/tensor.h"

namespace lathe::serving {

// A V2 `$parameters` value: string, number or bool.
using ParameterValue = std::variant<bool, int64_t, double, std::string>;
// In request order; keys are unique.
using Parameters = std::vector<std::pair<std::string, ParameterValue>>;

struct RequestedOutput {
  std::string name;
  // The output's own `binary_data` parameter; unset = the request default.
  std::optional<bool> binary_data;
};

struct InferRequest {
  std::string id;
  // In request order, names unique.
  std::vector<Tensor> inputs;
  // Empty = every output of the model.
  std::vector<RequestedOutput> outputs;
  // The reserved request parameters (protocols.md §1.6).
  int64_t priority = 0;    // 0 = the model's default level; 1 = highest
  int64_t timeout_us = 0;  // 0 = the model's default; may only lower it
  bool binary_data_output = false;
  // Every other request-level parameter, for the backend.
  Parameters parameters;
};

struct InferResponse {
  std::string model_name;
  std::string model_version;
  std::string id;
  Parameters parameters;
  std::vector<Tensor> outputs;
};

// Whether the output `name` goes back as binary data: its own binary_data
// parameter when given, else the request's binary_data_output.
bool WantsBinaryOutput(const InferRequest& request, std::string_view name);

// Checks `request` against `config`: every input is one of the model's (no
// duplicates) and every non-optional input is present, datatypes match,
// shapes match the dims (-1 = any size) with, when the model batches, a
// leading batch dimension in 1..max_batch_size shared by all inputs;
// requested outputs exist and are not repeated; the priority is one of the
// model's levels (any is accepted when it has none). Returns the batch size
// (1 when the model does not batch).
// Errors are INVALID_ARGUMENT naming the tensor
// (`inputs[0] "x": shape [2,3] does not match the model's [-1,4]`).
// Tensor byte counts are the decoder's job and are not rechecked here.
StatusOr<int64_t> ValidateInferRequest(const InferRequest& request, const ModelConfig& config);

}  // namespace lathe::serving
