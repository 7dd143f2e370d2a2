#include "serving/protocols/v2_codec.h"

#include <simdjson.h>

#include <algorithm>
#include <limits>

#include <fmt/core.h>

#include "base/json.h"
#include "serving/protocols/tensor_json.h"

namespace lathe::serving {

namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;
using tensor_json::TypeName;

Status Invalid(std::string message, std::string field = {}) {
  return InvalidArgumentError(std::move(message), std::move(field));
}

Status TypeError(std::string_view what, std::string_view field, std::string_view want,
                 element got) {
  return Invalid(fmt::format("{}: expected {}, got {}", what, want, TypeName(got)),
                 std::string(field));
}

StatusOr<ParameterValue> ParameterOf(element v, std::string_view field) {
  switch (v.type()) {
    case element_type::BOOL:
      return ParameterValue(v.get_bool().value_unsafe());
    case element_type::INT64:
      return ParameterValue(v.get_int64().value_unsafe());
    case element_type::DOUBLE:
      return ParameterValue(v.get_double().value_unsafe());
    case element_type::STRING:
      return ParameterValue(std::string(v.get_string().value_unsafe()));
    case element_type::UINT64:
      return Invalid(fmt::format("{}: {} is too large (parameters are 64-bit signed integers)",
                                 field, v.get_uint64().value_unsafe()),
                     std::string(field));
    default:
      return Invalid(
          fmt::format("{}: expected a string, number or boolean, got {}", field, TypeName(v)),
          std::string(field));
  }
}

StatusOr<int64_t> NonNegativeInt(element v, std::string_view field) {
  int64_t n;
  if (v.get_int64().get(n) != simdjson::SUCCESS || n < 0) {
    if (v.type() == element_type::INT64 || v.type() == element_type::UINT64) {
      return Invalid(
          fmt::format("{}: {} is not a non-negative 64-bit integer", field, simdjson::to_string(v)),
          std::string(field));
    }
    return TypeError(field, field, "a non-negative integer", v);
  }
  return n;
}

// Rejects a key seen twice in one object (simdjson keeps both).
Status Once(uint32_t* seen, uint32_t bit, std::string_view field) {
  if (*seen & bit) return Invalid(fmt::format("{}: given twice", field), std::string(field));
  *seen |= bit;
  return OkStatus();
}

std::string Join(std::string_view path, std::string_view key) {
  return fmt::format("{}.{}", path, key);
}

// The index of the second of two equal names in `names`, or -1. O(n log n),
// so a body with many entries cannot make it quadratic.
template <typename Range, typename NameOf>
int64_t FindDuplicate(const Range& items, NameOf name_of) {
  if (items.size() <= 8) {  // the usual case: no allocation
    for (size_t k = 1; k < items.size(); ++k) {
      for (size_t j = 0; j < k; ++j) {
        if (name_of(items[j]) == name_of(items[k])) return static_cast<int64_t>(k);
      }
    }
    return -1;
  }
  std::vector<std::pair<std::string_view, size_t>> names;
  names.reserve(items.size());
  for (size_t k = 0; k < items.size(); ++k) names.emplace_back(name_of(items[k]), k);
  std::sort(names.begin(), names.end());
  int64_t found = -1;
  for (size_t k = 1; k < names.size(); ++k) {
    if (names[k].first == names[k - 1].first) {
      // The earliest second occurrence, so errors do not depend on sorting.
      int64_t second = static_cast<int64_t>(std::max(names[k].second, names[k - 1].second));
      if (found == -1 || second < found) found = second;
    }
  }
  return found;
}

// One tensor of a request's inputs or a response's outputs.
struct DecodedTensor {
  Tensor tensor;
  int64_t count = 0;
  std::optional<uint64_t> binary_size;  // from parameters.binary_data_size
};

struct TensorContext {
  std::string_view list;  // "inputs" or "outputs"
  size_t index;
  bool is_request;  // input parameters differ from output ones
  size_t json_size;
  const TensorLimits* limits;
};

Status DecodeTensor(element e, const TensorContext& ctx, DecodedTensor* out) {
  Tensor& t = out->tensor;
  // Names for errors are only formatted when an error is reported: on a
  // small request, formatting them up front costs more than decoding.
  auto field = [&](std::string_view key) {
    return fmt::format("{}[{}].{}", ctx.list, ctx.index, key);
  };
  auto fail = [&](std::string_view key, std::string_view message) {
    return Invalid(fmt::format("{}[{}] \"{}\": {}", ctx.list, ctx.index, t.name, message),
                   field(key));
  };
  auto prefixed = [&](const Status& s, std::string_view key) {
    return s.WithPrefix(fmt::format("{}[{}] \"{}\"", ctx.list, ctx.index, t.name))
        .WithField(field(key));
  };
  object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) {
    std::string path = fmt::format("{}[{}]", ctx.list, ctx.index);
    return TypeError(path, path, "an object", e);
  }
  enum : uint32_t { kName = 1, kShape = 2, kType = 4, kParams = 8, kData = 16 };
  uint32_t seen = 0;
  auto once = [&](uint32_t bit, std::string_view key) {
    if (seen & bit) return Invalid(fmt::format("{}: given twice", field(key)), field(key));
    seen |= bit;
    return OkStatus();
  };
  std::string_view name, datatype;
  element shape, params, data;
  for (auto [key, value] : obj) {
    if (key == "name") {
      RETURN_IF_ERROR(once(kName, key));
      if (value.get_string().get(name) != simdjson::SUCCESS) {
        return TypeError(field(key), field(key), "a string", value);
      }
    } else if (key == "shape") {
      RETURN_IF_ERROR(once(kShape, key));
      shape = value;
    } else if (key == "datatype") {
      RETURN_IF_ERROR(once(kType, key));
      if (value.get_string().get(datatype) != simdjson::SUCCESS) {
        return TypeError(field(key), field(key), "a string", value);
      }
    } else if (key == "parameters") {
      RETURN_IF_ERROR(once(kParams, key));
      params = value;
    } else if (key == "data") {
      RETURN_IF_ERROR(once(kData, key));
      data = value;
    } else {
      return Invalid(fmt::format("{}: unknown field", field(key)), field(key));
    }
  }
  if (!(seen & kName)) {
    return Invalid(fmt::format("{}: required field is missing", field("name")), field("name"));
  }
  t.name = std::string(name);
  if (t.name.empty()) return fail("name", "the name is empty");
  if (!(seen & kType)) return fail("datatype", "datatype is missing");
  std::optional<DataType> type = ParseDataType(datatype);
  if (!type) {
    return fail("datatype",
                fmt::format("\"{}\" is not a datatype (one of {})", datatype, DataTypeNames()));
  }
  t.type = *type;
  if (!(seen & kShape)) return fail("shape", "shape is missing");
  array dims;
  if (shape.get_array().get(dims) != simdjson::SUCCESS) {
    return fail("shape",
                fmt::format("expected shape as an array of integers, got {}", TypeName(shape)));
  }
  for (element d : dims) {
    if (t.shape.size() == ctx.limits->max_rank) {
      return fail("shape", fmt::format("shape has more than {} dimensions", ctx.limits->max_rank));
    }
    int64_t n;
    if (d.get_int64().get(n) != simdjson::SUCCESS) {
      return fail("shape", fmt::format("shape[{}]: expected an integer, got {}", t.shape.size(),
                                       d.type() == element_type::UINT64 ? "an integer over 2^63"
                                                                        : TypeName(d)));
    }
    t.shape.push_back(n);
  }
  StatusOr<int64_t> count = CheckedElementCount(t.shape, t.type, *ctx.limits);
  if (!count.ok()) return prefixed(count.status(), "shape");
  out->count = *count;

  if (seen & kParams) {
    object p;
    if (params.get_object().get(p) != simdjson::SUCCESS) {
      return fail("parameters",
                  fmt::format("expected parameters as an object, got {}", TypeName(params)));
    }
    for (auto [key, value] : p) {
      if (key == "binary_data_size") {
        int64_t n;
        if (out->binary_size || value.get_int64().get(n) != simdjson::SUCCESS || n < 0) {
          std::string f = field("parameters.binary_data_size");
          if (out->binary_size) return Invalid(fmt::format("{}: given twice", f), f);
          return NonNegativeInt(value, f).status();
        }
        out->binary_size = static_cast<uint64_t>(n);
      } else if (ctx.is_request && key.starts_with("shared_memory")) {
        return fail(
            fmt::format("parameters.{}", key),
            fmt::format("{}: shared memory is not supported; send the data in the request", key));
      }
      // Other tensor parameters have no meaning here and are ignored.
    }
  }
  if (out->binary_size) {
    if (seen & kData) return fail("data", "has both data and parameters.binary_data_size");
    return OkStatus();
  }
  if (!(seen & kData)) {
    return fail("data", "no data (give data, or binary data with parameters.binary_data_size)");
  }
  if (data.type() != element_type::ARRAY) {
    return fail("data", fmt::format("expected data as an array, got {}", TypeName(data)));
  }
  const size_t max_depth = std::max<size_t>(t.shape.size(), 1);
  // Each JSON element takes at least two bytes ("1," or "1]"): a count over
  // half the body's size cannot be met, and room for it (AppendLeaves
  // reserves it) would let a small body claim a large allocation. So the
  // room is at most 4 × the body (FP64 / INT64 elements from "1,").
  const bool plausible = static_cast<uint64_t>(out->count) <= ctx.json_size / 2;
  std::string bytes;
  int64_t n = out->count + 1;
  if (plausible) {
    StatusOr<int64_t> appended =
        tensor_json::AppendLeaves(data, t.type, max_depth, out->count, false, &bytes);
    if (!appended.ok()) return prefixed(appended.status(), "data");
    n = *appended;
  }
  if (n != out->count) {
    if (n > out->count) n = tensor_json::CountLeaves(data, max_depth);
    return fail("data", fmt::format("shape {} has {} elements but data has {}",
                                    FormatShape(t.shape), out->count, n));
  }
  t.data = TensorData(std::move(bytes));
  return OkStatus();
}

Status DecodeTensorList(element e, std::string_view list, bool is_request, size_t json_size,
                        const TensorLimits& limits, std::vector<DecodedTensor>* out) {
  array items;
  if (e.get_array().get(items) != simdjson::SUCCESS) {
    return TypeError(list, list, "an array", e);
  }
  size_t i = 0;
  for (element item : items) {
    DecodedTensor t;
    RETURN_IF_ERROR(DecodeTensor(item, {list, i, is_request, json_size, &limits}, &t));
    out->push_back(std::move(t));
    ++i;
  }
  if (out->empty() && is_request) {
    return Invalid(fmt::format("{}: at least one tensor is needed", list), std::string(list));
  }
  int64_t dup =
      FindDuplicate(*out, [](const DecodedTensor& d) { return std::string_view(d.tensor.name); });
  if (dup >= 0) {
    const std::string& name = (*out)[dup].tensor.name;
    size_t first = 0;
    while ((*out)[first].tensor.name != name) ++first;
    return Invalid(
        fmt::format("{}[{}] \"{}\": the name is also used by {}[{}]", list, dup, name, list, first),
        fmt::format("{}[{}].name", list, dup));
  }
  return OkStatus();
}

// Gives each binary tensor its slice of the body after the JSON header.
Status AttachBinary(std::vector<DecodedTensor>* tensors, std::string_view list,
                    const std::shared_ptr<const std::string>& body, size_t header_length) {
  const std::string_view all(*body);
  size_t offset = header_length;
  for (size_t i = 0; i < tensors->size(); ++i) {
    DecodedTensor& d = (*tensors)[i];
    if (!d.binary_size) continue;
    auto fail = [&](std::string_view message) {
      return Invalid(fmt::format("{}[{}] \"{}\": {}", list, i, d.tensor.name, message),
                     fmt::format("{}[{}].parameters.binary_data_size", list, i));
    };
    const uint64_t size = *d.binary_size;
    if (d.tensor.type != DataType::kBytes) {
      const uint64_t want = static_cast<uint64_t>(d.count) * DataTypeSize(d.tensor.type);
      if (size != want) {
        return fail(fmt::format("binary_data_size {} does not match shape {} of {} ({} bytes)",
                                size, FormatShape(d.tensor.shape), DataTypeName(d.tensor.type),
                                want));
      }
    }
    if (size > all.size() - offset) {
      return fail(
          fmt::format("binary_data_size {} but only {} bytes of binary data remain "
                      "(truncated body, or a wrong Inference-Header-Content-Length)",
                      size, all.size() - offset));
    }
    std::string_view slice = all.substr(offset, static_cast<size_t>(size));
    if (d.tensor.type == DataType::kBytes) {
      Status ok = CheckTensorBytes(d.tensor.type, d.count, slice);
      if (!ok.ok()) return fail(ok.message());
    }
    d.tensor.data = TensorData(body, slice);
    offset += static_cast<size_t>(size);
  }
  if (offset != all.size()) {
    return Invalid(
        fmt::format("{} bytes follow the JSON header and the binary data of the {} "
                    "(Inference-Header-Content-Length {}, body {} bytes)",
                    all.size() - offset, list, header_length, all.size()));
  }
  return OkStatus();
}

StatusOr<size_t> HeaderLength(const std::string& body, std::optional<uint64_t> header_length) {
  if (!header_length) return body.size();
  if (*header_length == 0) {
    return Invalid("Inference-Header-Content-Length is 0: the JSON header cannot be empty");
  }
  if (*header_length > body.size()) {
    return Invalid(
        fmt::format("Inference-Header-Content-Length {} is larger than the {}-byte "
                    "body",
                    *header_length, body.size()));
  }
  return static_cast<size_t>(*header_length);
}

Status DecodeParameters(element e, std::string_view field, Parameters* out) {
  object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) {
    return TypeError(field, field, "an object", e);
  }
  for (auto [key, value] : obj) {
    StatusOr<ParameterValue> v = ParameterOf(value, key);
    if (!v.ok()) return ParameterOf(value, Join(field, key)).status();  // named in full
    out->emplace_back(std::string(key), *std::move(v));
  }
  int64_t dup = FindDuplicate(*out, [](const auto& p) { return std::string_view(p.first); });
  if (dup >= 0) {
    std::string f = Join(field, (*out)[dup].first);
    return Invalid(fmt::format("{}: given twice", f), f);
  }
  return OkStatus();
}

// Moves the reserved parameters out of `params` into the request.
Status TakeReservedParameters(Parameters* params, InferRequest* r) {
  Parameters rest;
  for (auto& [key, value] : *params) {
    std::string field = "parameters." + key;
    if (key == "priority" || key == "timeout") {
      const int64_t* n = std::get_if<int64_t>(&value);
      if (n == nullptr || *n < 0) {
        return Invalid(fmt::format("{}: expected a non-negative integer", field), field);
      }
      (key == "priority" ? r->priority : r->timeout_us) = *n;
    } else if (key == "binary_data_output") {
      const bool* b = std::get_if<bool>(&value);
      if (b == nullptr) return Invalid(fmt::format("{}: expected a boolean", field), field);
      r->binary_data_output = *b;
    } else if (key == "sequence_id" || key == "sequence_start" || key == "sequence_end") {
      return Invalid(fmt::format("{}: sequence batching is not supported", field), field);
    } else {
      rest.emplace_back(std::move(key), std::move(value));
    }
  }
  *params = std::move(rest);
  return OkStatus();
}

Status DecodeRequestedOutputs(element e, std::vector<RequestedOutput>* out) {
  array items;
  if (e.get_array().get(items) != simdjson::SUCCESS) {
    return TypeError("outputs", "outputs", "an array", e);
  }
  size_t i = 0;
  for (element item : items) {
    auto field = [&](std::string_view key) { return fmt::format("outputs[{}].{}", i, key); };
    object obj;
    if (item.get_object().get(obj) != simdjson::SUCCESS) {
      std::string path = fmt::format("outputs[{}]", i);
      return TypeError(path, path, "an object", item);
    }
    RequestedOutput o;
    uint32_t seen = 0;
    for (auto [key, value] : obj) {
      if (key == "name") {
        if (seen & 1) return Invalid(fmt::format("{}: given twice", field(key)), field(key));
        seen |= 1;
        std::string_view s;
        if (value.get_string().get(s) != simdjson::SUCCESS) {
          return TypeError(field(key), field(key), "a string", value);
        }
        o.name = std::string(s);
      } else if (key == "parameters") {
        if (seen & 2) return Invalid(fmt::format("{}: given twice", field(key)), field(key));
        seen |= 2;
        object p;
        if (value.get_object().get(p) != simdjson::SUCCESS) {
          return TypeError(field(key), field(key), "an object", value);
        }
        for (auto [pk, pv] : p) {
          // clang 14 (the fuzz build) cannot capture structured bindings.
          std::string_view param = pk;
          auto pf = [&] { return fmt::format("outputs[{}].parameters.{}", i, param); };
          if (pk == "binary_data") {
            bool b;
            if (pv.get_bool().get(b) != simdjson::SUCCESS) {
              return TypeError(pf(), pf(), "a boolean", pv);
            }
            o.binary_data = b;
          } else if (pk == "classification") {
            return Invalid(fmt::format("{}: classification outputs are not supported", pf()), pf());
          } else if (pk.starts_with("shared_memory")) {
            return Invalid(fmt::format("{}: shared memory is not supported", pf()), pf());
          }
        }
      } else {
        return Invalid(fmt::format("{}: unknown field", field(key)), field(key));
      }
    }
    if (!(seen & 1)) {
      return Invalid(fmt::format("{}: required field is missing", field("name")), field("name"));
    }
    out->push_back(std::move(o));
    ++i;
  }
  int64_t dup =
      FindDuplicate(*out, [](const RequestedOutput& o) { return std::string_view(o.name); });
  if (dup >= 0) {
    const std::string& name = (*out)[dup].name;
    size_t first = 0;
    while ((*out)[first].name != name) ++first;
    return Invalid(
        fmt::format("outputs[{}] \"{}\": requested twice (also outputs[{}])", dup, name, first),
        fmt::format("outputs[{}].name", dup));
  }
  return OkStatus();
}

std::vector<Tensor> TakeTensors(std::vector<DecodedTensor>* decoded) {
  std::vector<Tensor> out;
  out.reserve(decoded->size());
  for (DecodedTensor& d : *decoded) out.push_back(std::move(d.tensor));
  return out;
}

// ------------------------------------------------------------------ writing

void AppendParameterValue(const ParameterValue& v, std::string* out) {
  if (const bool* b = std::get_if<bool>(&v)) {
    out->append(*b ? "true" : "false");
  } else if (const int64_t* i = std::get_if<int64_t>(&v)) {
    tensor_json::AppendInt(*i, out);
  } else if (const double* d = std::get_if<double>(&v)) {
    tensor_json::AppendDouble(*d, out);
  } else {
    AppendJsonString(out, std::get<std::string>(v));
  }
}

void AppendParameters(const Parameters& params, std::string* out) {
  out->push_back('{');
  for (size_t i = 0; i < params.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendJsonString(out, params[i].first);
    out->push_back(':');
    AppendParameterValue(params[i].second, out);
  }
  out->push_back('}');
}

void AppendShape(const std::vector<int64_t>& shape, std::string* out) {
  out->push_back('[');
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out->push_back(',');
    tensor_json::AppendInt(shape[i], out);
  }
  out->push_back(']');
}

// Writes the tensors; those for which binary(t) holds get binary_data_size
// and their bytes are collected in `binary` (in order).
template <typename BinaryFn>
Status AppendTensors(const std::vector<Tensor>& tensors, BinaryFn binary, std::string* out,
                     std::vector<std::string_view>* blobs) {
  out->push_back('[');
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (i > 0) out->push_back(',');
    out->append("{\"name\":");
    AppendJsonString(out, t.name);
    out->append(",\"datatype\":\"");
    out->append(DataTypeName(t.type));
    out->append("\",\"shape\":");
    AppendShape(t.shape, out);
    if (binary(t)) {
      Status sized = CheckTensorData(t);
      if (!sized.ok()) return InternalError(fmt::format("tensor {}", sized.message()));
      out->append(",\"parameters\":{\"binary_data_size\":");
      tensor_json::AppendUint(t.data.size(), out);
      out->append("}}");
      blobs->push_back(t.data.bytes());
    } else {
      out->append(",\"data\":");
      Status written = tensor_json::AppendFlat(t, out);
      if (!written.ok() && written.code() == StatusCode::kInvalidArgument) {
        return InvalidArgumentError(
            fmt::format("tensor {}; ask for it as binary data (binary_data)", written.message()));
      }
      RETURN_IF_ERROR(written);
      out->push_back('}');
    }
  }
  out->push_back(']');
  return OkStatus();
}

V2EncodedResponse Finish(std::string json, const std::vector<std::string_view>& blobs) {
  V2EncodedResponse r;
  r.body = std::move(json);
  if (blobs.empty()) return r;
  r.header_length = r.body.size();
  size_t total = r.body.size();
  for (std::string_view b : blobs) total += b.size();
  r.body.reserve(total);
  for (std::string_view b : blobs) r.body.append(b);
  return r;
}

}  // namespace

StatusOr<uint64_t> ParseInferenceHeaderLength(std::string_view value) {
  if (value.empty() || value.size() > 19) {
    return Invalid(
        fmt::format("Inference-Header-Content-Length \"{}\" is not a byte count", value));
  }
  uint64_t n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') {
      return Invalid(
          fmt::format("Inference-Header-Content-Length \"{}\" is not a byte count", value));
    }
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

StatusOr<InferRequest> DecodeV2Request(std::shared_ptr<const std::string> body,
                                       std::optional<uint64_t> header_length,
                                       const TensorLimits& limits) {
  if (body == nullptr) return Invalid("empty request body");
  tensor_json::ParserTrim trim;
  ASSIGN_OR_RETURN(size_t json_length, HeaderLength(*body, header_length));
  std::string scratch;
  ASSIGN_OR_RETURN(element root, tensor_json::ParseDocument(
                                     std::string_view(*body).substr(0, json_length), &scratch));
  object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) {
    return TypeError("request", "", "a JSON object", root);
  }
  InferRequest r;
  std::vector<DecodedTensor> inputs;
  enum : uint32_t { kId = 1, kParams = 2, kInputs = 4, kOutputs = 8 };
  uint32_t seen = 0;
  for (auto [key, value] : obj) {
    if (key == "id") {
      RETURN_IF_ERROR(Once(&seen, kId, key));
      std::string_view id;
      if (value.get_string().get(id) != simdjson::SUCCESS) {
        return TypeError("id", "id", "a string", value);
      }
      r.id = std::string(id);
    } else if (key == "parameters") {
      RETURN_IF_ERROR(Once(&seen, kParams, key));
      RETURN_IF_ERROR(DecodeParameters(value, "parameters", &r.parameters));
    } else if (key == "inputs") {
      RETURN_IF_ERROR(Once(&seen, kInputs, key));
      RETURN_IF_ERROR(DecodeTensorList(value, "inputs", true, json_length, limits, &inputs));
    } else if (key == "outputs") {
      RETURN_IF_ERROR(Once(&seen, kOutputs, key));
      RETURN_IF_ERROR(DecodeRequestedOutputs(value, &r.outputs));
    } else {
      return Invalid(fmt::format("{}: unknown field", key), std::string(key));
    }
  }
  if (!(seen & kInputs)) return Invalid("inputs: required field is missing", "inputs");
  RETURN_IF_ERROR(TakeReservedParameters(&r.parameters, &r));
  RETURN_IF_ERROR(AttachBinary(&inputs, "inputs", body, json_length));
  r.inputs = TakeTensors(&inputs);
  return r;
}

StatusOr<InferRequest> DecodeV2Request(std::string_view body, std::optional<uint64_t> header_length,
                                       const TensorLimits& limits) {
  return DecodeV2Request(std::make_shared<const std::string>(body), header_length, limits);
}

StatusOr<InferResponse> DecodeV2Response(std::string_view body_text,
                                         std::optional<uint64_t> header_length,
                                         const TensorLimits& limits) {
  auto body = std::make_shared<const std::string>(body_text);
  tensor_json::ParserTrim trim;
  ASSIGN_OR_RETURN(size_t json_length, HeaderLength(*body, header_length));
  std::string scratch;
  ASSIGN_OR_RETURN(element root, tensor_json::ParseDocument(
                                     std::string_view(*body).substr(0, json_length), &scratch));
  object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) {
    return TypeError("response", "", "a JSON object", root);
  }
  InferResponse r;
  std::vector<DecodedTensor> outputs;
  for (auto [key, value] : obj) {
    std::string_view s;
    if (key == "model_name" || key == "model_version" || key == "id") {
      if (value.get_string().get(s) != simdjson::SUCCESS) {
        return TypeError(key, key, "a string", value);
      }
      (key == "model_name" ? r.model_name : key == "id" ? r.id : r.model_version) = s;
    } else if (key == "parameters") {
      RETURN_IF_ERROR(DecodeParameters(value, "parameters", &r.parameters));
    } else if (key == "outputs") {
      RETURN_IF_ERROR(DecodeTensorList(value, "outputs", false, json_length, limits, &outputs));
    } else {
      return Invalid(fmt::format("{}: unknown field", key), std::string(key));
    }
  }
  RETURN_IF_ERROR(AttachBinary(&outputs, "outputs", body, json_length));
  r.outputs = TakeTensors(&outputs);
  return r;
}

StatusOr<V2EncodedResponse> EncodeV2Response(const InferResponse& response,
                                             const InferRequest& request) {
  std::string out;
  out.reserve(256);
  out.append("{\"model_name\":");
  AppendJsonString(&out, response.model_name);
  if (!response.model_version.empty()) {
    out.append(",\"model_version\":");
    AppendJsonString(&out, response.model_version);
  }
  if (!response.id.empty()) {
    out.append(",\"id\":");
    AppendJsonString(&out, response.id);
  }
  if (!response.parameters.empty()) {
    out.append(",\"parameters\":");
    AppendParameters(response.parameters, &out);
  }
  out.append(",\"outputs\":");
  std::vector<std::string_view> blobs;
  RETURN_IF_ERROR(AppendTensors(
      response.outputs, [&](const Tensor& t) { return WantsBinaryOutput(request, t.name); }, &out,
      &blobs));
  out.push_back('}');
  return Finish(std::move(out), blobs);
}

StatusOr<V2EncodedResponse> EncodeV2Request(const InferRequest& request,
                                            const std::vector<std::string>& binary_inputs) {
  std::string out = "{";
  bool first = true;
  auto sep = [&] {
    if (!first) out.push_back(',');
    first = false;
  };
  if (!request.id.empty()) {
    sep();
    out.append("\"id\":");
    AppendJsonString(&out, request.id);
  }
  Parameters params = request.parameters;
  if (request.priority != 0) params.emplace_back("priority", request.priority);
  if (request.timeout_us != 0) params.emplace_back("timeout", request.timeout_us);
  if (request.binary_data_output) params.emplace_back("binary_data_output", true);
  if (!params.empty()) {
    sep();
    out.append("\"parameters\":");
    AppendParameters(params, &out);
  }
  sep();
  out.append("\"inputs\":");
  std::vector<std::string_view> blobs;
  RETURN_IF_ERROR(AppendTensors(
      request.inputs,
      [&](const Tensor& t) {
        return std::find(binary_inputs.begin(), binary_inputs.end(), t.name) != binary_inputs.end();
      },
      &out, &blobs));
  if (!request.outputs.empty()) {
    out.append(",\"outputs\":[");
    for (size_t i = 0; i < request.outputs.size(); ++i) {
      if (i > 0) out.push_back(',');
      out.append("{\"name\":");
      AppendJsonString(&out, request.outputs[i].name);
      if (request.outputs[i].binary_data) {
        out.append(",\"parameters\":{\"binary_data\":");
        out.append(*request.outputs[i].binary_data ? "true" : "false");
        out.push_back('}');
      }
      out.push_back('}');
    }
    out.push_back(']');
  }
  out.push_back('}');
  return Finish(std::move(out), blobs);
}

std::string EncodeV2Error(const Status& status) {
  std::string out;
  JsonWriter(&out).BeginObject().Field("error", status.message()).EndObject();
  return out;
}

int V2HttpStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kOutOfRange:
    case StatusCode::kCancelled:
    case StatusCode::kUnknown:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kAborted:
      return 409;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kUnimplemented:
      return 501;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    case StatusCode::kInternal:
    case StatusCode::kDataLoss:
      return 500;
  }
  return 500;
}

}  // namespace lathe::serving
