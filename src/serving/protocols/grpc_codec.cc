#include "serving/protocols/grpc_codec.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/core.h>

namespace lathe::serving {
namespace {

using inference::InferParameter;
using inference::InferTensorContents;
using inference::ModelInferRequest;
using inference::ModelInferResponse;
using ::google::protobuf::Map;
using ::google::protobuf::RepeatedField;

// The typed field of InferTensorContents that carries a datatype
// (protocols.md §1.3); kNone for FP16/BF16, which are raw only.
enum class Field { kBool, kInt, kInt64, kUint, kUint64, kFp32, kFp64, kBytes, kNone };
constexpr size_t kFields = 8;

constexpr std::string_view kFieldNames[kFields] = {
    "bool_contents",   "int_contents",  "int64_contents", "uint_contents",
    "uint64_contents", "fp32_contents", "fp64_contents",  "bytes_contents"};

Field FieldFor(DataType type) {
  switch (type) {
    case DataType::kBool:
      return Field::kBool;
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32:
      return Field::kInt;
    case DataType::kInt64:
      return Field::kInt64;
    case DataType::kUint8:
    case DataType::kUint16:
    case DataType::kUint32:
      return Field::kUint;
    case DataType::kUint64:
      return Field::kUint64;
    case DataType::kFp32:
      return Field::kFp32;
    case DataType::kFp64:
      return Field::kFp64;
    case DataType::kBytes:
      return Field::kBytes;
    case DataType::kFp16:
    case DataType::kBf16:
      return Field::kNone;
  }
  return Field::kNone;
}

int FieldSize(const InferTensorContents& c, Field f) {
  switch (f) {
    case Field::kBool:
      return c.bool_contents_size();
    case Field::kInt:
      return c.int_contents_size();
    case Field::kInt64:
      return c.int64_contents_size();
    case Field::kUint:
      return c.uint_contents_size();
    case Field::kUint64:
      return c.uint64_contents_size();
    case Field::kFp32:
      return c.fp32_contents_size();
    case Field::kFp64:
      return c.fp64_contents_size();
    case Field::kBytes:
      return c.bytes_contents_size();
    case Field::kNone:
      return 0;
  }
  return 0;
}

std::string_view FieldName(Field f) { return kFieldNames[static_cast<size_t>(f)]; }

// Appends the elements of `values` as T (a narrower or equal integer type),
// failing at the first that T cannot hold.
template <typename T, typename Wire>
Status AppendNarrowed(const RepeatedField<Wire>& values, DataType type, std::string* out) {
  out->resize(static_cast<size_t>(values.size()) * sizeof(T));
  char* p = out->data();
  for (int i = 0; i < values.size(); ++i) {
    const Wire v = values.Get(i);
    if constexpr (!std::is_same_v<T, Wire>) {
      if (v < static_cast<Wire>(std::numeric_limits<T>::min()) ||
          v > static_cast<Wire>(std::numeric_limits<T>::max())) {
        return InvalidArgumentError(
            fmt::format("element {} ({}) is out of range for {}", i, v, DataTypeName(type)));
      }
    }
    const T t = static_cast<T>(v);
    std::memcpy(p + static_cast<size_t>(i) * sizeof(T), &t, sizeof(T));
  }
  return OkStatus();
}

// The bytes of `count` elements of `type` from typed contents. Messages do
// not name the tensor (the caller prefixes it).
Status TypedToBytes(const InferTensorContents& c, DataType type, int64_t count,
                    const TensorLimits& limits, std::string* out) {
  const Field want = FieldFor(type);
  if (want == Field::kNone) {
    return InvalidArgumentError(fmt::format(
        "{} has no typed contents; send it in raw_input_contents", DataTypeName(type)));
  }
  for (size_t f = 0; f < kFields; ++f) {
    const Field other = static_cast<Field>(f);
    if (other != want && FieldSize(c, other) > 0) {
      return InvalidArgumentError(fmt::format("datatype {} takes {}, not {}", DataTypeName(type),
                                              FieldName(want), FieldName(other)));
    }
  }
  const int64_t have = FieldSize(c, want);
  if (have != count) {
    return InvalidArgumentError(
        fmt::format("shape has {} elements but {} has {}", count, FieldName(want), have));
  }
  switch (type) {
    case DataType::kBool: {
      out->resize(static_cast<size_t>(count));
      for (int i = 0; i < c.bool_contents_size(); ++i) (*out)[i] = c.bool_contents(i) ? 1 : 0;
      return OkStatus();
    }
    case DataType::kInt8:
      return AppendNarrowed<int8_t>(c.int_contents(), type, out);
    case DataType::kInt16:
      return AppendNarrowed<int16_t>(c.int_contents(), type, out);
    case DataType::kInt32:
      return AppendNarrowed<int32_t>(c.int_contents(), type, out);
    case DataType::kInt64:
      return AppendNarrowed<int64_t>(c.int64_contents(), type, out);
    case DataType::kUint8:
      return AppendNarrowed<uint8_t>(c.uint_contents(), type, out);
    case DataType::kUint16:
      return AppendNarrowed<uint16_t>(c.uint_contents(), type, out);
    case DataType::kUint32:
      return AppendNarrowed<uint32_t>(c.uint_contents(), type, out);
    case DataType::kUint64:
      return AppendNarrowed<uint64_t>(c.uint64_contents(), type, out);
    case DataType::kFp32:
      return AppendNarrowed<float>(c.fp32_contents(), type, out);
    case DataType::kFp64:
      return AppendNarrowed<double>(c.fp64_contents(), type, out);
    case DataType::kBytes: {
      uint64_t total = 0;
      for (const std::string& s : c.bytes_contents()) total += 4 + s.size();
      if (total > limits.max_bytes) {
        return InvalidArgumentError(fmt::format("{} bytes of BYTES elements exceed the limit of {}",
                                                total, limits.max_bytes));
      }
      out->reserve(total);
      for (int i = 0; i < c.bytes_contents_size(); ++i) {
        Status s = AppendBytesElement(out, c.bytes_contents(i));
        if (!s.ok()) return s.WithPrefix(fmt::format("bytes_contents[{}]", i));
      }
      return OkStatus();
    }
    case DataType::kFp16:
    case DataType::kBf16:
      break;
  }
  return OkStatus();  // not reached: FP16/BF16 returned above
}

StatusOr<ParameterValue> FromProto(const InferParameter& p, const std::string& field) {
  switch (p.parameter_choice_case()) {
    case InferParameter::kBoolParam:
      return ParameterValue(p.bool_param());
    case InferParameter::kInt64Param:
      return ParameterValue(p.int64_param());
    case InferParameter::kStringParam:
      return ParameterValue(p.string_param());
    case InferParameter::kDoubleParam:
      return ParameterValue(p.double_param());
    case InferParameter::kUint64Param:
      if (p.uint64_param() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return InvalidArgumentError(
            fmt::format("{}: {} is over 2^63-1", field, p.uint64_param()), field);
      }
      return ParameterValue(static_cast<int64_t>(p.uint64_param()));
    case InferParameter::PARAMETER_CHOICE_NOT_SET:
      break;
  }
  return InvalidArgumentError(fmt::format("{}: the parameter has no value", field), field);
}

void ToProto(const ParameterValue& v, InferParameter* p) {
  if (const bool* b = std::get_if<bool>(&v)) {
    p->set_bool_param(*b);
  } else if (const int64_t* i = std::get_if<int64_t>(&v)) {
    p->set_int64_param(*i);
  } else if (const double* d = std::get_if<double>(&v)) {
    p->set_double_param(*d);
  } else {
    p->set_string_param(std::get<std::string>(v));
  }
}

// A protobuf map in key order (its own order is unspecified), so requests
// decode the same way every time.
template <typename V>
std::vector<std::pair<const std::string*, const V*>> Sorted(const Map<std::string, V>& map) {
  std::vector<std::pair<const std::string*, const V*>> out;
  out.reserve(map.size());
  for (const auto& [k, v] : map) out.emplace_back(&k, &v);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return *a.first < *b.first; });
  return out;
}

// Request parameters: the reserved ones (as on REST, v2_codec.h) go into
// the request, the rest are kept for the backend.
Status DecodeRequestParameters(const Map<std::string, InferParameter>& params,
                               GrpcInferRequest* out) {
  InferRequest& r = out->request;
  for (const auto& [key, param] : Sorted(params)) {
    const std::string field = "parameters." + *key;
    StatusOr<ParameterValue> value = FromProto(*param, field);
    if (!value.ok()) return value.status();
    if (*key == "priority" || *key == "timeout") {
      const int64_t* n = std::get_if<int64_t>(&*value);
      if (n == nullptr || *n < 0) {
        return InvalidArgumentError(fmt::format("{}: expected a non-negative integer", field), field);
      }
      (*key == "priority" ? r.priority : r.timeout_us) = *n;
    } else if (*key == "binary_data_output") {
      const bool* b = std::get_if<bool>(&*value);
      if (b == nullptr) return InvalidArgumentError(fmt::format("{}: expected a boolean", field), field);
      r.binary_data_output = *b;
      if (!*b) out->typed_outputs = true;
    } else if (*key == "sequence_id" || *key == "sequence_start" || *key == "sequence_end") {
      return InvalidArgumentError(fmt::format("{}: sequence batching is not supported", field),
                                  field);
    } else {
      r.parameters.emplace_back(*key, *std::move(value));
    }
  }
  return OkStatus();
}

Status DecodeRequestedOutputs(const ModelInferRequest& m, GrpcInferRequest* out) {
  for (int i = 0; i < m.outputs_size(); ++i) {
    const ModelInferRequest::InferRequestedOutputTensor& o = m.outputs(i);
    if (o.name().empty()) {
      std::string field = fmt::format("outputs[{}].name", i);
      return InvalidArgumentError(fmt::format("{}: required field is missing", field), field);
    }
    RequestedOutput r{o.name(), std::nullopt};
    for (const auto& [key, param] : Sorted(o.parameters())) {
      const std::string field = fmt::format("outputs[{}].parameters.{}", i, *key);
      if (*key == "binary_data") {
        if (param->parameter_choice_case() != InferParameter::kBoolParam) {
          return InvalidArgumentError(fmt::format("{}: expected a boolean", field), field);
        }
        r.binary_data = param->bool_param();
        if (!param->bool_param()) out->typed_outputs = true;
      } else if (*key == "classification") {
        return InvalidArgumentError(
            fmt::format("{}: classification outputs are not supported", field), field);
      } else if (key->starts_with("shared_memory")) {
        return InvalidArgumentError(fmt::format("{}: shared memory is not supported", field), field);
      }
      // Other output parameters have no meaning here and are ignored.
    }
    out->request.outputs.push_back(std::move(r));
  }
  return OkStatus();
}

Status DecodeInput(const ModelInferRequest& m, int i, const std::shared_ptr<const void>& owner,
                   const TensorLimits& limits, Tensor* t) {
  const ModelInferRequest::InferInputTensor& in = m.inputs(i);
  if (in.name().empty()) {
    std::string field = fmt::format("inputs[{}].name", i);
    return InvalidArgumentError(fmt::format("{}: required field is missing", field), field);
  }
  // `inputs[0] "x": <message>`, with the field path `inputs[0].<what>`.
  auto fail = [&](std::string_view what, const Status& s) {
    return InvalidArgumentError(fmt::format("inputs[{}] \"{}\": {}", i, in.name(), s.message()),
                                fmt::format("inputs[{}].{}", i, what));
  };
  t->name = in.name();
  std::optional<DataType> type = ParseDataType(in.datatype());
  if (!type) {
    return fail("datatype", InvalidArgumentError(fmt::format(
                                "\"{}\" is not a datatype (one of {})", in.datatype(),
                                DataTypeNames())));
  }
  t->type = *type;
  if (static_cast<size_t>(in.shape_size()) > limits.max_rank) {
    return fail("shape", InvalidArgumentError(
                             fmt::format("shape has more than {} dimensions", limits.max_rank)));
  }
  t->shape.assign(in.shape().begin(), in.shape().end());
  StatusOr<int64_t> count = CheckedElementCount(t->shape, t->type, limits);
  if (!count.ok()) return fail("shape", count.status());
  for (const auto& [key, value] : in.parameters()) {
    if (key.starts_with("shared_memory")) {
      return fail(
          "parameters." + key,
          InvalidArgumentError(fmt::format(
              "{}: shared memory is not supported; send the data in the request", key)));
    }
    // Other tensor parameters (binary_data_size, ...) have no meaning here.
  }
  if (m.raw_input_contents_size() > 0) {
    if (in.has_contents()) {
      return fail("contents", InvalidArgumentError(
                                  "has contents and the request has raw_input_contents; "
                                  "send every input one way or the other"));
    }
    const std::string& raw = m.raw_input_contents(i);
    Status s = CheckTensorBytes(t->type, *count, raw);
    if (!s.ok()) {
      return InvalidArgumentError(fmt::format("inputs[{}] \"{}\": raw_input_contents[{}]: {}", i,
                                              in.name(), i, s.message()),
                                  fmt::format("raw_input_contents[{}]", i));
    }
    t->data = owner ? TensorData(owner, raw) : TensorData(raw);
    return OkStatus();
  }
  std::string bytes;
  Status s = TypedToBytes(in.contents(), t->type, *count, limits, &bytes);
  if (!s.ok()) return fail("contents", s);
  t->data = TensorData(std::move(bytes));
  return OkStatus();
}

// Typed contents from tensor bytes already checked against the shape.
void BytesToTyped(const Tensor& t, InferTensorContents* c) {
  std::string_view b = t.data.bytes();
  auto each = [&]<typename T>(T, auto&& add) {
    const size_t n = b.size() / sizeof(T);
    for (size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, b.data() + i * sizeof(T), sizeof(T));
      add(v);
    }
  };
  switch (t.type) {
    case DataType::kBool:
      c->mutable_bool_contents()->Reserve(static_cast<int>(b.size()));
      for (char ch : b) c->add_bool_contents(ch != 0);
      break;
    case DataType::kInt8:
      each(int8_t{}, [&](int8_t v) { c->add_int_contents(v); });
      break;
    case DataType::kInt16:
      each(int16_t{}, [&](int16_t v) { c->add_int_contents(v); });
      break;
    case DataType::kInt32:
      each(int32_t{}, [&](int32_t v) { c->add_int_contents(v); });
      break;
    case DataType::kInt64:
      each(int64_t{}, [&](int64_t v) { c->add_int64_contents(v); });
      break;
    case DataType::kUint8:
      each(uint8_t{}, [&](uint8_t v) { c->add_uint_contents(v); });
      break;
    case DataType::kUint16:
      each(uint16_t{}, [&](uint16_t v) { c->add_uint_contents(v); });
      break;
    case DataType::kUint32:
      each(uint32_t{}, [&](uint32_t v) { c->add_uint_contents(v); });
      break;
    case DataType::kUint64:
      each(uint64_t{}, [&](uint64_t v) { c->add_uint64_contents(v); });
      break;
    case DataType::kFp32: {
      RepeatedField<float>* f = c->mutable_fp32_contents();
      f->Resize(static_cast<int>(b.size() / sizeof(float)), 0.0f);
      if (!b.empty()) std::memcpy(f->mutable_data(), b.data(), b.size());
      break;
    }
    case DataType::kFp64: {
      RepeatedField<double>* f = c->mutable_fp64_contents();
      f->Resize(static_cast<int>(b.size() / sizeof(double)), 0.0);
      if (!b.empty()) std::memcpy(f->mutable_data(), b.data(), b.size());
      break;
    }
    case DataType::kBytes: {
      StatusOr<std::vector<std::string_view>> elements = SplitBytesElements(b);
      // The bytes were checked against the shape; a split cannot fail here.
      if (elements.ok()) {
        for (std::string_view e : *elements) c->add_bytes_contents(std::string(e));
      }
      break;
    }
    case DataType::kFp16:
    case DataType::kBf16:
      break;
  }
}

// Output tensor bytes from typed contents (client side).
StatusOr<std::string> TypedOutputBytes(const InferTensorContents& c, DataType type, int64_t count,
                                       const TensorLimits& limits) {
  std::string bytes;
  RETURN_IF_ERROR(TypedToBytes(c, type, count, limits, &bytes));
  return bytes;
}

}  // namespace

StatusOr<GrpcInferRequest> DecodeGrpcInferRequest(const ModelInferRequest& m,
                                                  std::shared_ptr<const void> owner,
                                                  const TensorLimits& limits) {
  GrpcInferRequest out;
  InferRequest& r = out.request;
  r.id = m.id();
  if (m.raw_input_contents_size() > 0 && m.raw_input_contents_size() != m.inputs_size()) {
    return InvalidArgumentError(
        fmt::format("raw_input_contents: {} entries for {} inputs (one per input, in order)",
                    m.raw_input_contents_size(), m.inputs_size()),
        "raw_input_contents");
  }
  r.inputs.resize(static_cast<size_t>(m.inputs_size()));
  for (int i = 0; i < m.inputs_size(); ++i) {
    RETURN_IF_ERROR(DecodeInput(m, i, owner, limits, &r.inputs[static_cast<size_t>(i)]));
  }
  RETURN_IF_ERROR(DecodeRequestedOutputs(m, &out));
  RETURN_IF_ERROR(DecodeRequestParameters(m.parameters(), &out));
  return out;
}

Status EncodeGrpcInferResponse(const InferResponse& response, bool typed, ModelInferResponse* out) {
  out->set_model_name(response.model_name);
  out->set_model_version(response.model_version);
  out->set_id(response.id);
  for (const auto& [key, value] : response.parameters) {
    ToProto(value, &(*out->mutable_parameters())[key]);
  }
  for (const Tensor& t : response.outputs) {
    RETURN_IF_ERROR(CheckTensorData(t).WithPrefix("backend output"));
    if (FieldFor(t.type) == Field::kNone) typed = false;
  }
  out->mutable_outputs()->Reserve(static_cast<int>(response.outputs.size()));
  if (!typed) out->mutable_raw_output_contents()->Reserve(static_cast<int>(response.outputs.size()));
  for (const Tensor& t : response.outputs) {
    ModelInferResponse::InferOutputTensor* o = out->add_outputs();
    o->set_name(t.name);
    o->set_datatype(std::string(DataTypeName(t.type)));
    o->mutable_shape()->Add(t.shape.begin(), t.shape.end());
    if (typed) {
      BytesToTyped(t, o->mutable_contents());
    } else {
      out->add_raw_output_contents(std::string(t.data.bytes()));
    }
  }
  return OkStatus();
}

Status EncodeGrpcInferRequest(const InferRequest& request, bool raw, ModelInferRequest* out) {
  out->set_id(request.id);
  for (const Tensor& t : request.inputs) {
    ModelInferRequest::InferInputTensor* in = out->add_inputs();
    in->set_name(t.name);
    in->set_datatype(std::string(DataTypeName(t.type)));
    in->mutable_shape()->Add(t.shape.begin(), t.shape.end());
    if (raw) {
      out->add_raw_input_contents(std::string(t.data.bytes()));
    } else {
      if (FieldFor(t.type) == Field::kNone) {
        return InvalidArgumentError(
            fmt::format("\"{}\": {} can only be sent raw", t.name, DataTypeName(t.type)));
      }
      BytesToTyped(t, in->mutable_contents());
    }
  }
  for (const RequestedOutput& o : request.outputs) {
    ModelInferRequest::InferRequestedOutputTensor* r = out->add_outputs();
    r->set_name(o.name);
    if (o.binary_data) (*r->mutable_parameters())["binary_data"].set_bool_param(*o.binary_data);
  }
  auto& params = *out->mutable_parameters();
  if (request.priority != 0) params["priority"].set_int64_param(request.priority);
  if (request.timeout_us != 0) params["timeout"].set_int64_param(request.timeout_us);
  for (const auto& [key, value] : request.parameters) ToProto(value, &params[key]);
  return OkStatus();
}

StatusOr<InferResponse> DecodeGrpcInferResponse(const ModelInferResponse& m,
                                                const TensorLimits& limits) {
  InferResponse r;
  r.model_name = m.model_name();
  r.model_version = m.model_version();
  r.id = m.id();
  for (const auto& [key, param] : Sorted(m.parameters())) {
    StatusOr<ParameterValue> v = FromProto(*param, "parameters." + *key);
    if (!v.ok()) return v.status();
    r.parameters.emplace_back(*key, *std::move(v));
  }
  const bool raw = m.raw_output_contents_size() > 0;
  if (raw && m.raw_output_contents_size() != m.outputs_size()) {
    return InvalidArgumentError(fmt::format("raw_output_contents: {} entries for {} outputs",
                                            m.raw_output_contents_size(), m.outputs_size()));
  }
  for (int i = 0; i < m.outputs_size(); ++i) {
    const ModelInferResponse::InferOutputTensor& o = m.outputs(i);
    auto prefix = [&] { return fmt::format("outputs[{}] \"{}\"", i, o.name()); };
    Tensor t;
    t.name = o.name();
    std::optional<DataType> type = ParseDataType(o.datatype());
    if (!type) return InvalidArgumentError(fmt::format("{}: bad datatype", prefix()));
    t.type = *type;
    t.shape.assign(o.shape().begin(), o.shape().end());
    StatusOr<int64_t> count = CheckedElementCount(t.shape, t.type, limits);
    if (!count.ok()) return count.status().WithPrefix(prefix());
    if (raw) {
      RETURN_IF_ERROR(CheckTensorBytes(t.type, *count, m.raw_output_contents(i)).WithPrefix(prefix()));
      t.data = TensorData(m.raw_output_contents(i));
    } else {
      StatusOr<std::string> bytes = TypedOutputBytes(o.contents(), t.type, *count, limits);
      if (!bytes.ok()) return bytes.status().WithPrefix(prefix());
      t.data = TensorData(*std::move(bytes));
    }
    r.outputs.push_back(std::move(t));
  }
  return r;
}

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), status.message());
}

Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return OkStatus();
  return Status(static_cast<StatusCode>(status.error_code()), status.error_message());
}

}  // namespace lathe::serving
