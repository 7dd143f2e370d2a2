#include "serving/infer_request.h"

#include <algorithm>

#include <fmt/core.h>

namespace lathe::serving {

namespace {

std::string Names(const std::vector<TensorConfig>& tensors) {
  std::string s;
  for (const TensorConfig& t : tensors) {
    if (!s.empty()) s += ", ";
    s += t.name;
  }
  return s;
}

Status InputError(size_t i, const Tensor& t, std::string_view what, std::string_view message) {
  std::string field = fmt::format("inputs[{}].{}", i, what);
  return InvalidArgumentError(fmt::format("inputs[{}] \"{}\": {}", i, t.name, message), field);
}

}  // namespace

bool WantsBinaryOutput(const InferRequest& request, std::string_view name) {
  for (const RequestedOutput& o : request.outputs) {
    if (o.name == name && o.binary_data) return *o.binary_data;
  }
  return request.binary_data_output;
}

StatusOr<int64_t> ValidateInferRequest(const InferRequest& request, const ModelConfig& config) {
  if (request.inputs.empty()) {
    return InvalidArgumentError("inputs: the request has no inputs", "inputs");
  }
  const bool batched = config.max_batch_size > 0;
  std::vector<bool> seen(config.inputs.size(), false);
  int64_t batch = -1;
  size_t batch_from = 0;
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    const Tensor& t = request.inputs[i];
    const TensorConfig* c = config.FindInput(t.name);
    if (c == nullptr) {
      return InputError(
          i, t, "name",
          fmt::format("the model has no such input (its inputs: {})", Names(config.inputs)));
    }
    size_t index = static_cast<size_t>(c - config.inputs.data());
    if (seen[index]) return InputError(i, t, "name", "given twice");
    seen[index] = true;
    if (t.type != c->type) {
      return InputError(i, t, "datatype",
                        fmt::format("datatype {} does not match the model's {}",
                                    DataTypeName(t.type), DataTypeName(c->type)));
    }
    std::vector<int64_t> want = MetadataShape(config, *c);
    bool match = t.shape.size() == want.size();
    for (size_t d = 0; match && d < want.size(); ++d) {
      match = t.shape[d] >= 0 && (want[d] == -1 || want[d] == t.shape[d]);
    }
    if (!match) {
      return InputError(
          i, t, "shape",
          fmt::format("shape {} does not match the model's {}{}", FormatShape(t.shape),
                      FormatShape(want), batched ? " (the first dimension is the batch)" : ""));
    }
    if (batched) {
      int64_t n = t.shape[0];
      if (n < 1 || n > config.max_batch_size) {
        return InputError(i, t, "shape",
                          fmt::format("batch size {} is not in 1..{} (max_batch_size)", n,
                                      config.max_batch_size));
      }
      if (batch == -1) {
        batch = n;
        batch_from = i;
      } else if (n != batch) {
        return InputError(i, t, "shape",
                          fmt::format("batch size {} differs from {} of inputs[{}] \"{}\"", n,
                                      batch, batch_from, request.inputs[batch_from].name));
      }
    }
  }
  for (size_t k = 0; k < config.inputs.size(); ++k) {
    if (!seen[k] && !config.inputs[k].optional) {
      return InvalidArgumentError(
          fmt::format("inputs: the model's input \"{}\" is missing", config.inputs[k].name),
          "inputs");
    }
  }
  for (size_t i = 0; i < request.outputs.size(); ++i) {
    const std::string& name = request.outputs[i].name;
    std::string field = fmt::format("outputs[{}].name", i);
    if (config.FindOutput(name) == nullptr) {
      return InvalidArgumentError(
          fmt::format("outputs[{}] \"{}\": the model has no such output (its outputs: {})", i, name,
                      Names(config.outputs)),
          field);
    }
    for (size_t j = 0; j < i; ++j) {
      if (request.outputs[j].name == name) {
        return InvalidArgumentError(
            fmt::format("outputs[{}] \"{}\": requested twice (also outputs[{}])", i, name, j),
            field);
      }
    }
  }
  // A model without priority levels has nothing to order: any priority is
  // accepted and ignored. With levels, one outside them is an error rather
  // than silently the default.
  const int64_t levels = config.dynamic_batching ? config.dynamic_batching->priority_levels : 0;
  if (request.priority < 0 || (levels > 0 && request.priority > levels)) {
    return InvalidArgumentError(
        fmt::format("parameters.priority: {} is not a priority level of the model (0 for the "
                    "default, or 1..{})",
                    request.priority, std::max<int64_t>(levels, 1)),
        "parameters.priority");
  }
  if (request.timeout_us < 0) {
    return InvalidArgumentError("parameters.timeout: must not be negative", "parameters.timeout");
  }
  return batched ? batch : int64_t{1};
}

}  // namespace lathe::serving
