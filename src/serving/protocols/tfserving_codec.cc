#include "serving/protocols/tfserving_codec.h"

#include <simdjson.h>

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

// {"b64": "..."}: one binary value, not a map of input names.
bool IsB64(element e) {
  object o;
  std::string_view s;
  return e.get_object().get(o) == simdjson::SUCCESS && o.size() == 1 &&
         o["b64"].get_string().get(s) == simdjson::SUCCESS;
}

bool IsNamedMap(element e) { return e.type() == element_type::OBJECT && !IsB64(e); }

// The shape of a rectangular nest of lists: the lengths along the first
// elements, then every list checked against them.
class ShapeReader {
 public:
  ShapeReader(size_t max_rank, std::string_view what) : max_rank_(max_rank), what_(what) {}

  StatusOr<std::vector<int64_t>> Read(element v) {
    std::vector<int64_t> shape;
    element cur = v;
    while (cur.type() == element_type::ARRAY) {
      array a = cur.get_array().value_unsafe();
      if (shape.size() == max_rank_) {
        return Invalid(fmt::format("{}: nested deeper than {} dimensions", what_, max_rank_));
      }
      shape.push_back(static_cast<int64_t>(a.size()));
      if (a.size() == 0) break;
      cur = a.at(0).value_unsafe();
    }
    RETURN_IF_ERROR(Check(v, shape, 0));
    return shape;
  }

 private:
  Status Check(element v, const std::vector<int64_t>& shape, size_t depth) {
    if (depth == shape.size()) {
      if (v.type() == element_type::ARRAY) {
        return Invalid(
            fmt::format("{}: the lists are not rectangular: a list where shape {} "
                        "has a value",
                        what_, FormatShape(shape)));
      }
      return OkStatus();
    }
    array a;
    if (v.get_array().get(a) != simdjson::SUCCESS) {
      return Invalid(
          fmt::format("{}: the lists are not rectangular: {} where shape {} has a "
                      "list",
                      what_, TypeName(v), FormatShape(shape)));
    }
    if (static_cast<int64_t>(a.size()) != shape[depth]) {
      return Invalid(
          fmt::format("{}: the lists are not rectangular: a list of {} where shape "
                      "{} has {} at dimension {}",
                      what_, a.size(), FormatShape(shape), shape[depth], depth));
    }
    for (element item : a) RETURN_IF_ERROR(Check(item, shape, depth + 1));
    return OkStatus();
  }

  size_t max_rank_;
  std::string_view what_;
};

// The rank left for one instance once the batch dimension is counted.
size_t InnerRank(const TensorLimits& limits) {
  return limits.max_rank > 0 ? limits.max_rank - 1 : 0;
}

// Appends the leaves of `v` (whose shape is `shape`) as `type` to `bytes`.
Status AppendValue(element v, const std::vector<int64_t>& shape, DataType type,
                   const TensorLimits& limits, std::string_view what, std::string* bytes) {
  StatusOr<int64_t> count = CheckedElementCount(shape, type, limits);
  if (!count.ok()) return count.status().WithPrefix(what);
  // The shape was read from `v` itself, so the count is within the body.
  StatusOr<int64_t> n = tensor_json::AppendLeaves(v, type, shape.size(), *count, true, bytes);
  if (!n.ok()) return n.status().WithPrefix(what);
  if (*n != *count) {
    return InternalError(fmt::format("{}: {} values where the shape has {}", what, *n, *count));
  }
  return OkStatus();
}

Status UnknownInput(const ModelConfig& config, std::string_view name, std::string field) {
  std::string names;
  for (const TensorConfig& t : config.inputs) {
    if (!names.empty()) names += ", ";
    names += t.name;
  }
  return Invalid(
      fmt::format("{}: \"{}\" is not an input of the model (its inputs: {})", field, name, names),
      field);
}

// Columnar: one whole tensor per value.
StatusOr<Tensor> ColumnTensor(element v, const TensorConfig& c, const TensorLimits& limits,
                              const std::string& what) {
  Tensor t;
  t.name = c.name;
  t.type = c.type;
  ASSIGN_OR_RETURN(t.shape, ShapeReader(limits.max_rank, what).Read(v));
  std::string bytes;
  RETURN_IF_ERROR(AppendValue(v, t.shape, t.type, limits, what, &bytes));
  t.data = TensorData(std::move(bytes));
  return t;
}

Status DecodeColumnar(element inputs, const ModelConfig& config, const TensorLimits& limits,
                      InferRequest* r) {
  if (IsNamedMap(inputs)) {
    object o = inputs.get_object().value_unsafe();
    for (auto [name, value] : o) {
      std::string field = fmt::format("inputs.{}", name);
      const TensorConfig* c = config.FindInput(name);
      if (c == nullptr) return UnknownInput(config, name, field);
      for (const Tensor& t : r->inputs) {
        if (t.name == name) return Invalid(fmt::format("{}: given twice", field), field);
      }
      std::string what = fmt::format("inputs \"{}\"", name);
      ASSIGN_OR_RETURN(Tensor t, ColumnTensor(value, *c, limits, what));
      r->inputs.push_back(std::move(t));
    }
    return OkStatus();
  }
  if (config.inputs.size() != 1) {
    return Invalid(fmt::format("inputs: the model has {} inputs; give them as {{name: value}}",
                               config.inputs.size()),
                   "inputs");
  }
  const TensorConfig& c = config.inputs[0];
  ASSIGN_OR_RETURN(Tensor t, ColumnTensor(inputs, c, limits, fmt::format("inputs \"{}\"", c.name)));
  r->inputs.push_back(std::move(t));
  return OkStatus();
}

Status DecodeRows(element instances, const ModelConfig& config, const TensorLimits& limits,
                  InferRequest* r) {
  array rows;
  if (instances.get_array().get(rows) != simdjson::SUCCESS) {
    return Invalid(fmt::format("instances: expected a list, got {}", TypeName(instances)),
                   "instances");
  }
  const size_t n = rows.size();
  const bool named = n > 0 && IsNamedMap(rows.at(0).value_unsafe());
  if (!named) {
    if (config.inputs.size() != 1) {
      return Invalid(fmt::format("instances: the model has {} inputs; each instance must be "
                                 "{{name: value}}",
                                 config.inputs.size()),
                     "instances");
    }
    // The whole list is the tensor: its first dimension is the batch.
    const TensorConfig& c = config.inputs[0];
    ASSIGN_OR_RETURN(Tensor t,
                     ColumnTensor(instances, c, limits, fmt::format("instances \"{}\"", c.name)));
    r->inputs.push_back(std::move(t));
    return OkStatus();
  }
  // Named: instance 0 fixes the names and each input's per-example shape.
  struct Column {
    const TensorConfig* config;
    std::vector<int64_t> inner;
    std::string bytes;
  };
  std::vector<Column> columns;
  object first = rows.at(0).value_unsafe().get_object().value_unsafe();
  for (auto [name, value] : first) {
    std::string field = fmt::format("instances[0].{}", name);
    const TensorConfig* c = config.FindInput(name);
    if (c == nullptr) return UnknownInput(config, name, field);
    for (const Column& col : columns) {
      if (col.config->name == name) return Invalid(fmt::format("{}: given twice", field), field);
    }
    std::string what = fmt::format("instances[0] \"{}\"", name);
    ASSIGN_OR_RETURN(std::vector<int64_t> inner,
                     ShapeReader(InnerRank(limits), what).Read(value));
    columns.push_back({c, std::move(inner), {}});
  }
  size_t i = 0;
  for (element row : rows) {
    const std::string path = fmt::format("instances[{}]", i);
    object o;
    if (!IsNamedMap(row) || row.get_object().get(o) != simdjson::SUCCESS) {
      return Invalid(fmt::format("{}: expected {{name: value}} like instances[0], got {}", path,
                                 TypeName(row)),
                     path);
    }
    if (o.size() != columns.size()) {
      return Invalid(fmt::format("{}: has {} inputs where instances[0] has {}", path, o.size(),
                                 columns.size()),
                     path);
    }
    for (Column& col : columns) {
      element value;
      const std::string what = fmt::format("{} \"{}\"", path, col.config->name);
      if (o.at_key(col.config->name).get(value) != simdjson::SUCCESS) {
        return Invalid(fmt::format("{}: missing (every instance needs the same inputs)", what),
                       path);
      }
      ASSIGN_OR_RETURN(std::vector<int64_t> inner,
                       ShapeReader(InnerRank(limits), what).Read(value));
      if (inner != col.inner) {
        return Invalid(fmt::format("{}: shape {} differs from {} of instances[0]", what,
                                   FormatShape(inner), FormatShape(col.inner)),
                       path);
      }
      // Checked against the limit as a whole batch so far.
      std::vector<int64_t> so_far = {static_cast<int64_t>(i) + 1};
      so_far.insert(so_far.end(), inner.begin(), inner.end());
      Status size = CheckedElementCount(so_far, col.config->type, limits).status();
      if (!size.ok()) return size.WithPrefix(what);
      RETURN_IF_ERROR(AppendValue(value, inner, col.config->type, limits, what, &col.bytes));
    }
    ++i;
  }
  for (Column& col : columns) {
    Tensor t;
    t.name = col.config->name;
    t.type = col.config->type;
    t.shape.push_back(static_cast<int64_t>(n));
    t.shape.insert(t.shape.end(), col.inner.begin(), col.inner.end());
    t.data = TensorData(std::move(col.bytes));
    r->inputs.push_back(std::move(t));
  }
  return OkStatus();
}

bool WantsB64(const Tensor& t) {
  return t.type == DataType::kBytes && t.name.size() >= 6 &&
         t.name.compare(t.name.size() - 6, 6, "_bytes") == 0;
}

// Names the output in an error from writing it.
Status Named(const Status& s, const Tensor& t) {
  if (s.ok()) return s;
  if (s.code() == StatusCode::kInvalidArgument) {
    return InvalidArgumentError(
        fmt::format("output \"{}\": {} (only outputs named *_bytes are answered in base64)", t.name,
                    s.message()));
  }
  return s.WithPrefix(fmt::format("output \"{}\"", t.name));
}

Status CheckOutput(const Tensor& t) {
  Status sized = CheckTensorData(t);
  if (!sized.ok()) return InternalError(fmt::format("output {}", sized.message()));
  return OkStatus();
}

}  // namespace

StatusOr<TfServingRequest> DecodeTfServingPredict(std::string_view body, const ModelConfig& config,
                                                  const TensorLimits& limits) {
  tensor_json::ParserTrim trim;
  std::string scratch;
  ASSIGN_OR_RETURN(element root, tensor_json::ParseDocument(body, &scratch));
  object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) {
    return Invalid(fmt::format("request: expected a JSON object, got {}", TypeName(root)));
  }
  element instances, inputs;
  bool has_instances = false, has_inputs = false, has_signature = false;
  for (auto [key, value] : obj) {
    std::string field(key);
    if (key == "signature_name") {
      std::string_view s;
      if (has_signature) return Invalid("signature_name: given twice", field);
      has_signature = true;
      if (value.get_string().get(s) != simdjson::SUCCESS) {
        return Invalid(fmt::format("signature_name: expected a string, got {}", TypeName(value)),
                       field);
      }
      if (!s.empty() && s != "serving_default") {
        return Invalid(fmt::format("signature_name: \"{}\" is not a signature of the model (it "
                                   "has serving_default)",
                                   s),
                       field);
      }
    } else if (key == "instances") {
      if (has_instances) return Invalid("instances: given twice", field);
      has_instances = true;
      instances = value;
    } else if (key == "inputs") {
      if (has_inputs) return Invalid("inputs: given twice", field);
      has_inputs = true;
      inputs = value;
    } else {
      return Invalid(fmt::format("{}: unknown field (a predict request has instances or inputs, "
                                 "and signature_name)",
                                 key),
                     field);
    }
  }
  if (has_instances == has_inputs) {
    return Invalid("give exactly one of instances (row format) and inputs (columnar format)");
  }
  TfServingRequest out;
  if (has_instances) {
    out.format = TfServingFormat::kRow;
    RETURN_IF_ERROR(DecodeRows(instances, config, limits, &out.request));
  } else {
    out.format = TfServingFormat::kColumnar;
    RETURN_IF_ERROR(DecodeColumnar(inputs, config, limits, &out.request));
  }
  return out;
}

StatusOr<std::string> EncodeTfServingPredict(const InferResponse& response,
                                             TfServingFormat format) {
  const std::vector<Tensor>& outs = response.outputs;
  for (const Tensor& t : outs) RETURN_IF_ERROR(CheckOutput(t));
  std::string out;
  if (format == TfServingFormat::kColumnar || outs.size() == 1) {
    out.append(format == TfServingFormat::kColumnar ? "{\"outputs\":" : "{\"predictions\":");
    if (outs.size() == 1) {
      tensor_json::ElementWriter w(outs[0].type, outs[0].data.bytes(), WantsB64(outs[0]));
      RETURN_IF_ERROR(Named(w.AppendNested(outs[0].shape, &out), outs[0]));
    } else {
      out.push_back('{');
      for (size_t i = 0; i < outs.size(); ++i) {
        if (i > 0) out.push_back(',');
        AppendJsonString(&out, outs[i].name);
        out.push_back(':');
        tensor_json::ElementWriter w(outs[i].type, outs[i].data.bytes(), WantsB64(outs[i]));
        RETURN_IF_ERROR(Named(w.AppendNested(outs[i].shape, &out), outs[i]));
      }
      out.push_back('}');
    }
    out.push_back('}');
    return out;
  }
  // Row format, several outputs: one object per example.
  int64_t rows = -1;
  for (const Tensor& t : outs) {
    if (t.shape.empty() || (rows != -1 && t.shape[0] != rows)) {
      return FailedPreconditionError(
          "the model's outputs do not share a first (batch) dimension, so they cannot be "
          "answered per instance; send the request in the columnar format (inputs)");
    }
    rows = t.shape[0];
  }
  std::vector<tensor_json::ElementWriter> writers;
  writers.reserve(outs.size());
  for (const Tensor& t : outs) writers.emplace_back(t.type, t.data.bytes(), WantsB64(t));
  out.append("{\"predictions\":[");
  for (int64_t r = 0; r < rows; ++r) {
    if (r > 0) out.push_back(',');
    out.push_back('{');
    for (size_t i = 0; i < outs.size(); ++i) {
      if (i > 0) out.push_back(',');
      AppendJsonString(&out, outs[i].name);
      out.push_back(':');
      RETURN_IF_ERROR(
          Named(writers[i].AppendNested(std::span(outs[i].shape).subspan(1), &out), outs[i]));
    }
    out.push_back('}');
  }
  out.append("]}");
  return out;
}

std::string EncodeTfServingError(const Status& status) {
  std::string out;
  JsonWriter(&out).BeginObject().Field("error", status.message()).EndObject();
  return out;
}

}  // namespace lathe::serving
