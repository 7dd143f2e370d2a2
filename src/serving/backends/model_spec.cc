#include "serving/backends/model_spec.h"

#include <simdjson.h>

#include <cstdlib>
#include <cstring>
#include <limits>

namespace lathe::serving::backends {
namespace {

constexpr const char* kNames[] = {"BOOL",  "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                                  "INT32", "INT64", "FP16",   "BF16",   "FP32",   "FP64", "BYTES"};
constexpr uint64_t kSizes[] = {1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 2, 4, 8, 0};
static_assert(std::size(kNames) == kNumDataTypes && std::size(kSizes) == kNumDataTypes);

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

std::string ParseTensor(element e, const std::string& path, bool input, TensorSpec* t) {
  object o;
  if (e.get(o)) return path + ": expected an object";
  std::string_view name, datatype;
  if (o["name"].get(name)) return path + ".name: expected a string";
  if (o["datatype"].get(datatype)) return path + ".datatype: expected a string";
  t->name = std::string(name);
  t->datatype = DataTypeFromName(datatype);
  if (t->datatype < 0)
    return path + ".datatype: unknown datatype \"" + std::string(datatype) + "\"";
  array dims;
  if (o["dims"].get(dims)) return path + ".dims: expected an array";
  for (element d : dims) {
    int64_t v;
    if (d.get(v) || v < -1) return path + ".dims: expected integers >= -1";
    t->dims.push_back(v);
  }
  if (input) {
    bool optional = false;
    auto field = o["optional"];
    if (!field.error() && field.get(optional)) return path + ".optional: expected a boolean";
    t->optional = optional;
  }
  return {};
}

std::string ParseTensors(object root, const char* key, bool input, std::vector<TensorSpec>* out) {
  array a;
  if (root[key].get(a)) return std::string(key) + ": expected an array";
  size_t i = 0;
  for (element e : a) {
    TensorSpec t;
    std::string err = ParseTensor(e, std::string(key) + "[" + std::to_string(i++) + "]", input, &t);
    if (!err.empty()) return err;
    out->push_back(std::move(t));
  }
  return {};
}

}  // namespace

const char* DataTypeName(LatheDataType type) {
  return type >= 0 && type < kNumDataTypes ? kNames[type] : "?";
}

LatheDataType DataTypeFromName(std::string_view name) {
  for (LatheDataType i = 0; i < kNumDataTypes; ++i) {
    if (name == kNames[i]) return i;
  }
  return -1;
}

uint64_t DataTypeSize(LatheDataType type) {
  return type >= 0 && type < kNumDataTypes ? kSizes[type] : 0;
}

int ModelSpec::FindInput(std::string_view n) const {
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].name == n) return static_cast<int>(i);
  }
  return -1;
}

int ModelSpec::FindOutput(std::string_view n) const {
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].name == n) return static_cast<int>(i);
  }
  return -1;
}

std::string ModelSpec::Parameter(const std::string& key, std::string fallback) const {
  auto it = parameters.find(key);
  return it == parameters.end() ? fallback : it->second;
}

std::string ParseModelSpec(std::string_view json, ModelSpec* spec) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  object root;
  if (auto err = parser.parse(padded).get(root)) {
    return std::string("config JSON: ") + simdjson::error_message(err);
  }
  std::string_view name;
  if (root["name"].get(name)) return "name: expected a string";
  spec->name = std::string(name);
  if (root["max_batch_size"].get(spec->max_batch_size) || spec->max_batch_size < 0) {
    return "max_batch_size: expected an integer >= 0";
  }
  auto filename = root["model_filename"];
  if (!filename.error()) {
    std::string_view f;
    if (filename.get(f)) return "model_filename: expected a string";
    spec->model_filename = std::string(f);
  }
  if (std::string err = ParseTensors(root, "inputs", true, &spec->inputs); !err.empty()) return err;
  if (std::string err = ParseTensors(root, "outputs", false, &spec->outputs); !err.empty()) {
    return err;
  }
  auto params = root["parameters"];
  if (!params.error()) {
    object p;
    if (params.get(p)) return "parameters: expected an object";
    for (auto field : p) {
      std::string_view value;
      if (field.value.get(value)) {
        return "parameters." + std::string(field.key) + ": expected a string";
      }
      spec->parameters[std::string(field.key)] = std::string(value);
    }
  }
  return {};
}

std::string FormatShape(const int64_t* shape, size_t rank) {
  std::string s = "[";
  for (size_t i = 0; i < rank; ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string MatchInputs(const ModelSpec& spec, const LatheBackendTensor* inputs, uint32_t n,
                        std::vector<const LatheBackendTensor*>* ordered, int64_t* batch) {
  ordered->assign(spec.inputs.size(), nullptr);
  *batch = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const LatheBackendTensor& t = inputs[i];
    const std::string_view name = t.name ? t.name : "";
    int k = spec.FindInput(name);
    if (k < 0) return "unknown input \"" + std::string(name) + "\"";
    if ((*ordered)[k]) return "input \"" + std::string(name) + "\" given twice";
    (*ordered)[k] = &t;
    const TensorSpec& c = spec.inputs[k];
    const std::string label = "input \"" + c.name + "\"";
    if (t.datatype != c.datatype) {
      return label + ": datatype " + DataTypeName(t.datatype) + " but the model takes " +
             DataTypeName(c.datatype);
    }
    const size_t lead = spec.batching() ? 1 : 0;
    const std::string shape = FormatShape(t.shape, t.rank);
    if (t.rank != c.dims.size() + lead) {
      return label + ": shape " + shape + " has rank " + std::to_string(t.rank) +
             " but the model takes rank " + std::to_string(c.dims.size() + lead);
    }
    if (spec.batching()) {
      const int64_t b = t.shape[0];
      if (b < 1 || b > spec.max_batch_size) {
        return label + ": batch size " + std::to_string(b) + " is not in 1.." +
               std::to_string(spec.max_batch_size);
      }
      if (*batch != 0 && b != *batch) {
        return label + ": batch size " + std::to_string(b) + " differs from the other inputs' " +
               std::to_string(*batch);
      }
      *batch = b;
    }
    // Element count with an overflow check; byte sizes are bounded by the
    // host's tensor limits, so 2^62 is a safe ceiling.
    uint64_t count = 1;
    for (uint32_t d = 0; d < t.rank; ++d) {
      const int64_t v = t.shape[d];
      if (v < 0) return label + ": shape " + shape + " has a negative dimension";
      if (d >= lead && c.dims[d - lead] != -1 && c.dims[d - lead] != v) {
        std::vector<int64_t> want(c.dims);
        if (lead) want.insert(want.begin(), -1);
        return label + ": shape " + shape + " does not match the model's " +
               FormatShape(want.data(), want.size());
      }
      if (v != 0 && count > (uint64_t{1} << 62) / static_cast<uint64_t>(v)) {
        return label + ": shape " + shape + " is too large";
      }
      count *= static_cast<uint64_t>(v);
    }
    const uint64_t size = DataTypeSize(t.datatype);
    if (size == 0) return label + ": datatype " + DataTypeName(t.datatype) + " is not supported";
    if (count * size != t.byte_size) {
      return label + ": shape " + shape + " needs " + std::to_string(count * size) +
             " bytes, got " + std::to_string(t.byte_size);
    }
    if (t.byte_size != 0 && t.data == nullptr) return label + ": no data";
  }
  for (size_t k = 0; k < spec.inputs.size(); ++k) {
    if (!(*ordered)[k] && !spec.inputs[k].optional) {
      return "missing input \"" + spec.inputs[k].name + "\"";
    }
  }
  return {};
}

char* ErrorCopy(std::string_view message) {
  char* s = static_cast<char*>(std::malloc(message.size() + 1));
  if (s == nullptr) return nullptr;
  std::memcpy(s, message.data(), message.size());
  s[message.size()] = '\0';
  return s;
}

char* LoadNotFound(std::string_view message) {
  return ErrorCopy("NOT_FOUND: " + std::string(message));
}

char* LoadInvalid(std::string_view message) {
  return ErrorCopy("INVALID_ARGUMENT: " + std::string(message));
}

}  // namespace lathe::serving::backends
