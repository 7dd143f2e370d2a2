#include "serving/model_config.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/core.h>

#include "base/yaml.h"

namespace lathe::serving {

namespace {

constexpr size_t kMaxTensorNameLength = 256;
constexpr size_t kMaxLabelLength = 63;
constexpr int64_t kMaxSloMs = 3'600'000;

Status FieldError(const std::string& field, std::string_view message) {
  return InvalidArgumentError(fmt::format("{}: {}", field, message), field);
}

std::string Index(const std::string& path, size_t i) { return fmt::format("{}[{}]", path, i); }

std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

StatusOr<int64_t> IntValue(const JsonValue& v, const std::string& field) {
  if (v.type() == JsonValue::Type::kInt) return v.as_int();
  if (v.type() == JsonValue::Type::kDouble) {
    double d = v.as_double();
    if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9.007199254740992e15) {
      return static_cast<int64_t>(d);
    }
  }
  return FieldError(field, fmt::format("expected an integer, got {}", JsonTypeName(v.type())));
}

Status CheckRange(int64_t v, int64_t lo, int64_t hi, const std::string& field) {
  if (v < lo || v > hi) return FieldError(field, fmt::format("{} is not in {}..{}", v, lo, hi));
  return OkStatus();
}

// Reads an optional integer member of `r` into `out` and range-checks it.
Status RangedInt(ObjectReader& r, std::string_view key, int64_t lo, int64_t hi, int64_t* out) {
  RETURN_IF_ERROR(r.Int(key, out));
  return CheckRange(*out, lo, hi, r.PathOf(key));
}

StatusOr<std::vector<int64_t>> IntList(const JsonValue& v, const std::string& field) {
  if (!v.is_array()) {
    return FieldError(field,
                      fmt::format("expected a list of integers, got {}", JsonTypeName(v.type())));
  }
  std::vector<int64_t> out;
  out.reserve(v.items().size());
  for (size_t i = 0; i < v.items().size(); ++i) {
    ASSIGN_OR_RETURN(int64_t x, IntValue(v.items()[i], Index(field, i)));
    out.push_back(x);
  }
  return out;
}

bool IsTensorName(std::string_view s) {
  if (s.empty() || s.size() > kMaxTensorNameLength) return false;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

// Labels are lower-case words that cannot be mistaken for versions.
bool IsLabel(std::string_view s) {
  if (s.empty() || s.size() > kMaxLabelLength || !(s[0] >= 'a' && s[0] <= 'z')) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

Status ParseDims(const JsonValue* v, const std::string& field, size_t max_rank,
                 std::vector<int64_t>* out) {
  if (v == nullptr) return FieldError(field, "required field is missing");
  ASSIGN_OR_RETURN(*out, IntList(*v, field));
  if (out->size() > max_rank) {
    return FieldError(field,
                      fmt::format("{} dimensions; at most {} are allowed", out->size(), max_rank));
  }
  for (size_t i = 0; i < out->size(); ++i) {
    int64_t d = (*out)[i];
    if (d != -1 && d < 1) {
      return FieldError(Index(field, i),
                        fmt::format("{} is not a dimension (a positive size, or -1 for any)", d));
    }
  }
  return OkStatus();
}

StatusOr<TensorConfig> ParseTensor(const JsonValue& v, const std::string& path, bool is_input,
                                   const ModelConfig& config, const TensorLimits& limits) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  TensorConfig t;
  std::string datatype;
  RETURN_IF_ERROR(r.String("name", &t.name, Presence::kRequired));
  RETURN_IF_ERROR(r.String("datatype", &datatype, Presence::kRequired));
  ASSIGN_OR_RETURN(const JsonValue* dims, r.Value("dims"));
  if (is_input) RETURN_IF_ERROR(r.Bool("optional", &t.optional));
  RETURN_IF_ERROR(r.Finish());

  if (!IsTensorName(t.name)) {
    return FieldError(r.PathOf("name"),
                      fmt::format("must be 1-{} printable characters", kMaxTensorNameLength));
  }
  std::optional<DataType> type = ParseDataType(datatype);
  if (!type) {
    return FieldError(r.PathOf("datatype"), fmt::format("\"{}\" is not a datatype (one of {})",
                                                        datatype, DataTypeNames()));
  }
  t.type = *type;
  const bool batched = config.max_batch_size > 0;
  const size_t max_rank = limits.max_rank - (batched ? 1 : 0);
  RETURN_IF_ERROR(ParseDims(dims, r.PathOf("dims"), max_rank, &t.dims));
  // A full batch of the fixed dimensions must fit the tensor limit.
  std::vector<int64_t> full;
  if (batched) full.push_back(config.max_batch_size);
  for (int64_t d : t.dims) full.push_back(d == -1 ? 1 : d);
  Status size = CheckedElementCount(full, t.type, limits).status();
  if (!size.ok()) return size.WithPrefix(r.PathOf("dims")).WithField(r.PathOf("dims"));
  return t;
}

Status ParseTensors(const JsonValue* v, const std::string& field, bool is_input,
                    const ModelConfig& config, const TensorLimits& limits,
                    std::vector<TensorConfig>* out) {
  if (v == nullptr) return FieldError(field, "required field is missing");
  if (!v->is_array()) {
    return FieldError(field, fmt::format("expected a list, got {}", JsonTypeName(v->type())));
  }
  if (v->items().empty()) {
    return FieldError(
        field, fmt::format("the model needs at least one {}", is_input ? "input" : "output"));
  }
  if (v->items().size() > kMaxTensorsPerModel) {
    return FieldError(field, fmt::format("{} entries; at most {} are allowed", v->items().size(),
                                         kMaxTensorsPerModel));
  }
  std::set<std::string> names;
  for (size_t i = 0; i < v->items().size(); ++i) {
    std::string path = Index(field, i);
    ASSIGN_OR_RETURN(TensorConfig t, ParseTensor(v->items()[i], path, is_input, config, limits));
    if (!names.insert(t.name).second) {
      return FieldError(Join(path, "name"), fmt::format("duplicate {} name \"{}\"",
                                                        is_input ? "input" : "output", t.name));
    }
    out->push_back(std::move(t));
  }
  return OkStatus();
}

StatusOr<DynamicBatching> ParseDynamicBatching(const JsonValue& v, const std::string& path,
                                               int64_t max_batch_size) {
  DynamicBatching b;
  // `dynamic_batching: {}` and a bare `dynamic_batching:` both mean defaults.
  if (v.is_null()) {
    if (max_batch_size == 0) return FieldError(path, "needs max_batch_size > 0");
    return b;
  }
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  RETURN_IF_ERROR(RangedInt(r, "max_queue_delay_us", 0, kMaxQueueDelayUs, &b.max_queue_delay_us));
  ASSIGN_OR_RETURN(const JsonValue* preferred, r.Value("preferred_batch_sizes"));
  RETURN_IF_ERROR(
      RangedInt(r, "max_queue_size", 0, std::numeric_limits<int32_t>::max(), &b.max_queue_size));
  RETURN_IF_ERROR(RangedInt(r, "default_timeout_us", 0, std::numeric_limits<int64_t>::max(),
                            &b.default_timeout_us));
  RETURN_IF_ERROR(RangedInt(r, "priority_levels", 0, kMaxPriorityLevels, &b.priority_levels));
  RETURN_IF_ERROR(r.Int("default_priority_level", &b.default_priority_level));
  RETURN_IF_ERROR(r.Finish());

  if (max_batch_size == 0) {
    return FieldError(path,
                      "needs max_batch_size > 0 (a model that does not batch has no "
                      "batcher)");
  }
  if (preferred != nullptr) {
    std::string field = r.PathOf("preferred_batch_sizes");
    ASSIGN_OR_RETURN(b.preferred_batch_sizes, IntList(*preferred, field));
    for (size_t i = 0; i < b.preferred_batch_sizes.size(); ++i) {
      RETURN_IF_ERROR(CheckRange(b.preferred_batch_sizes[i], 1, max_batch_size, Index(field, i)));
    }
    std::sort(b.preferred_batch_sizes.begin(), b.preferred_batch_sizes.end());
    auto dup = std::adjacent_find(b.preferred_batch_sizes.begin(), b.preferred_batch_sizes.end());
    if (dup != b.preferred_batch_sizes.end()) {
      return FieldError(field, fmt::format("{} is listed twice", *dup));
    }
  }
  std::string level_field = r.PathOf("default_priority_level");
  if (b.priority_levels == 0) {
    if (b.default_priority_level != 0) {
      return FieldError(level_field, "needs priority_levels > 0");
    }
  } else {
    if (b.default_priority_level == 0) b.default_priority_level = b.priority_levels;
    RETURN_IF_ERROR(CheckRange(b.default_priority_level, 1, b.priority_levels, level_field));
  }
  return b;
}

StatusOr<VersionPolicy> ParseVersionPolicy(const JsonValue& v, const std::string& path) {
  VersionPolicy p;
  if (v.is_string()) {
    if (v.as_string() == "all") {
      p.kind = VersionPolicy::Kind::kAll;
      return p;
    }
    if (v.as_string() == "latest") return p;
    return FieldError(path, fmt::format("\"{}\" is not a version policy (all, latest, "
                                        "{{latest: N}} or {{specific: [versions]}})",
                                        v.as_string()));
  }
  if (!v.is_object() || v.members().size() != 1) {
    return FieldError(path, "expected one of all, latest, {latest: N}, {specific: [versions]}");
  }
  const auto& [key, value] = v.members()[0];
  std::string field = Join(path, key);
  if (key == "latest") {
    p.kind = VersionPolicy::Kind::kLatest;
    ASSIGN_OR_RETURN(p.latest, IntValue(value, field));
    RETURN_IF_ERROR(CheckRange(p.latest, 1, 1'000'000, field));
    return p;
  }
  if (key == "all") {
    if (!value.is_null() && !(value.is_object() && value.members().empty()) &&
        !(value.type() == JsonValue::Type::kBool && value.as_bool())) {
      return FieldError(field, "takes no settings (write `version_policy: all`)");
    }
    p.kind = VersionPolicy::Kind::kAll;
    return p;
  }
  if (key == "specific") {
    p.kind = VersionPolicy::Kind::kSpecific;
    ASSIGN_OR_RETURN(p.specific, IntList(value, field));
    if (p.specific.empty()) return FieldError(field, "lists no versions");
    for (size_t i = 0; i < p.specific.size(); ++i) {
      RETURN_IF_ERROR(
          CheckRange(p.specific[i], 1, std::numeric_limits<int64_t>::max(), Index(field, i)));
    }
    std::sort(p.specific.begin(), p.specific.end());
    auto dup = std::adjacent_find(p.specific.begin(), p.specific.end());
    if (dup != p.specific.end()) return FieldError(field, fmt::format("{} is listed twice", *dup));
    return p;
  }
  return FieldError(field, "unknown version policy (all, latest or specific)");
}

Status ParseLabels(const JsonValue& v, const std::string& path,
                   std::map<std::string, int64_t>* out) {
  if (!v.is_object()) {
    return FieldError(
        path, fmt::format("expected a map of label: version, got {}", JsonTypeName(v.type())));
  }
  for (const auto& [label, version] : v.members()) {
    std::string field = Join(path, label);
    if (!IsLabel(label)) {
      return FieldError(field, fmt::format("\"{}\" is not a label (1-{} of a-z, 0-9, '_', '-', "
                                           "starting with a letter)",
                                           label, kMaxLabelLength));
    }
    ASSIGN_OR_RETURN(int64_t n, IntValue(version, field));
    RETURN_IF_ERROR(CheckRange(n, 1, std::numeric_limits<int64_t>::max(), field));
    (*out)[label] = n;
  }
  return OkStatus();
}

StatusOr<Canary> ParseCanary(const JsonValue& v, const std::string& path,
                             const std::map<std::string, int64_t>& labels) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  Canary c;
  RETURN_IF_ERROR(r.Int("version", &c.version));
  RETURN_IF_ERROR(r.String("label", &c.label));
  RETURN_IF_ERROR(r.Int("weight", &c.weight_percent, Presence::kRequired));
  RETURN_IF_ERROR(r.Finish());
  if ((c.version != 0) == !c.label.empty()) {
    return FieldError(path, "give exactly one of version and label");
  }
  if (c.version != 0) {
    RETURN_IF_ERROR(
        CheckRange(c.version, 1, std::numeric_limits<int64_t>::max(), r.PathOf("version")));
  }
  if (!c.label.empty() && !labels.contains(c.label)) {
    return FieldError(r.PathOf("label"),
                      fmt::format("\"{}\" is not one of the model's labels", c.label));
  }
  RETURN_IF_ERROR(CheckRange(c.weight_percent, 0, 100, r.PathOf("weight")));
  return c;
}

StatusOr<WarmupInput::Fill> ParseFill(const JsonValue& v, const std::string& field) {
  if (v.is_string() && v.as_string() == "zero") return WarmupInput::Fill::kZero;
  if (v.is_string() && v.as_string() == "random") return WarmupInput::Fill::kRandom;
  return FieldError(field, fmt::format("expected zero or random, got {}",
                                       v.is_string() ? "\"" + v.as_string() + "\""
                                                     : std::string(JsonTypeName(v.type()))));
}

StatusOr<Warmup> ParseWarmup(const JsonValue& v, const std::string& path, const ModelConfig& config,
                             const TensorLimits& limits) {
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(v, path));
  Warmup w;
  RETURN_IF_ERROR(r.String("name", &w.name, Presence::kRequired));
  RETURN_IF_ERROR(r.Int("batch_size", &w.batch_size));
  ASSIGN_OR_RETURN(const JsonValue* inputs, r.Value("inputs"));
  RETURN_IF_ERROR(RangedInt(r, "count", 1, kMaxWarmupCount, &w.count));
  RETURN_IF_ERROR(r.Finish());
  if (w.name.empty()) return FieldError(r.PathOf("name"), "must not be empty");
  if (config.max_batch_size > 0) {
    RETURN_IF_ERROR(CheckRange(w.batch_size, 1, config.max_batch_size, r.PathOf("batch_size")));
  } else if (w.batch_size != 1) {
    return FieldError(r.PathOf("batch_size"),
                      "must be 1: the model does not batch (max_batch_size is 0)");
  }
  std::string inputs_field = r.PathOf("inputs");
  if (inputs != nullptr) {
    if (!inputs->is_object()) {
      return FieldError(inputs_field, fmt::format("expected a map of input name: zero|random, "
                                                  "got {}",
                                                  JsonTypeName(inputs->type())));
    }
    for (const auto& [name, spec] : inputs->members()) {
      std::string field = Join(inputs_field, name);
      if (config.FindInput(name) == nullptr) {
        return FieldError(field, fmt::format("\"{}\" is not an input of the model", name));
      }
      WarmupInput in;
      if (spec.is_object()) {
        ASSIGN_OR_RETURN(ObjectReader s, ObjectReader::Make(spec, field));
        ASSIGN_OR_RETURN(const JsonValue* fill, s.Value("fill"));
        ASSIGN_OR_RETURN(const JsonValue* dims, s.Value("dims"));
        RETURN_IF_ERROR(s.Finish());
        if (fill != nullptr) {
          ASSIGN_OR_RETURN(in.fill, ParseFill(*fill, s.PathOf("fill")));
        }
        if (dims != nullptr) {
          ASSIGN_OR_RETURN(in.dims, IntList(*dims, s.PathOf("dims")));
        }
      } else {
        ASSIGN_OR_RETURN(in.fill, ParseFill(spec, field));
      }
      w.inputs[name] = std::move(in);
    }
  }
  // Every input gets concrete dims that fit its config and the size limit.
  for (const TensorConfig& t : config.inputs) {
    std::string field = Join(inputs_field, t.name);
    auto [it, inserted] = w.inputs.try_emplace(t.name);
    WarmupInput& in = it->second;
    const bool variable = std::count(t.dims.begin(), t.dims.end(), -1) > 0;
    if (in.dims.empty() && !(t.dims.empty())) {
      if (variable) {
        return FieldError(field, fmt::format("the input has variable dims {}; give concrete "
                                             "dims: {{fill: zero, dims: [...]}}",
                                             FormatShape(t.dims)));
      }
      in.dims = t.dims;
    }
    std::string dims_field = Join(field, "dims");
    if (in.dims.size() != t.dims.size()) {
      return FieldError(dims_field, fmt::format("{} does not match the input's dims {}",
                                                FormatShape(in.dims), FormatShape(t.dims)));
    }
    for (size_t i = 0; i < in.dims.size(); ++i) {
      if (in.dims[i] < 1 || (t.dims[i] != -1 && in.dims[i] != t.dims[i])) {
        return FieldError(Index(dims_field, i),
                          fmt::format("{} does not match the input's dims {}", FormatShape(in.dims),
                                      FormatShape(t.dims)));
      }
    }
    std::vector<int64_t> full;
    if (config.max_batch_size > 0) full.push_back(w.batch_size);
    full.insert(full.end(), in.dims.begin(), in.dims.end());
    Status size = CheckedElementCount(full, t.type, limits).status();
    if (!size.ok()) return size.WithPrefix(dims_field).WithField(dims_field);
  }
  return w;
}

std::string ScalarText(const JsonValue& v) {
  switch (v.type()) {
    case JsonValue::Type::kString:
      return v.as_string();
    case JsonValue::Type::kBool:
      return v.as_bool() ? "true" : "false";
    case JsonValue::Type::kInt:
      return std::to_string(v.as_int());
    case JsonValue::Type::kDouble:
      return fmt::format("{}", v.as_double());
    default:
      return {};
  }
}

}  // namespace

std::string_view BackendName(Backend backend) {
  switch (backend) {
    case Backend::kTorchScript:
      return "torchscript";
    case Backend::kXgboost:
      return "xgboost";
  }
  return "unknown";
}

std::string_view BackendPlatform(Backend backend) {
  switch (backend) {
    case Backend::kTorchScript:
      return "pytorch_torchscript";
    case Backend::kXgboost:
      return "xgboost";
  }
  return "unknown";
}

const TensorConfig* ModelConfig::FindInput(std::string_view n) const {
  for (const TensorConfig& t : inputs) {
    if (t.name == n) return &t;
  }
  return nullptr;
}

const TensorConfig* ModelConfig::FindOutput(std::string_view n) const {
  for (const TensorConfig& t : outputs) {
    if (t.name == n) return &t;
  }
  return nullptr;
}

bool IsValidModelName(std::string_view name) {
  if (name.empty() || name.size() > 128 || name[0] == '.') return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '-')) {
      return false;
    }
  }
  return true;
}

std::vector<int64_t> MetadataShape(const ModelConfig& config, const TensorConfig& t) {
  std::vector<int64_t> shape;
  if (config.max_batch_size > 0) shape.push_back(-1);
  shape.insert(shape.end(), t.dims.begin(), t.dims.end());
  return shape;
}

StatusOr<ModelConfig> ModelConfigFromJson(const JsonValue& value, std::string_view dir_name,
                                          const TensorLimits& limits) {
  if (limits.max_rank < 2) return InvalidArgumentError("tensor limits allow no batched rank");
  ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(value, ""));
  ModelConfig c;
  std::string backend;
  RETURN_IF_ERROR(r.String("name", &c.name));
  RETURN_IF_ERROR(r.String("backend", &backend, Presence::kRequired));
  RETURN_IF_ERROR(r.String("model_filename", &c.model_filename));
  RETURN_IF_ERROR(RangedInt(r, "max_batch_size", 0, kMaxBatchSizeLimit, &c.max_batch_size));
  ASSIGN_OR_RETURN(const JsonValue* inputs, r.Value("inputs"));
  ASSIGN_OR_RETURN(const JsonValue* outputs, r.Value("outputs"));
  // Read dynamic_batching by hand: a bare `dynamic_batching:` (null) enables
  // it with defaults, which ObjectReader would take as absent.
  const JsonValue* batching = value.Find("dynamic_batching");
  (void)r.Value("dynamic_batching");
  ASSIGN_OR_RETURN(const JsonValue* instances, r.Value("instances"));
  ASSIGN_OR_RETURN(const JsonValue* policy, r.Value("version_policy"));
  ASSIGN_OR_RETURN(const JsonValue* labels, r.Value("labels"));
  ASSIGN_OR_RETURN(const JsonValue* canary, r.Value("canary"));
  ASSIGN_OR_RETURN(const JsonValue* slo, r.Value("slo"));
  ASSIGN_OR_RETURN(const JsonValue* warmup, r.Value("warmup"));
  ASSIGN_OR_RETURN(const JsonValue* parameters, r.Value("parameters"));
  RETURN_IF_ERROR(r.Finish());

  if (c.name.empty()) c.name = std::string(dir_name);
  if (c.name != dir_name) {
    return FieldError("name", fmt::format("\"{}\" differs from the model's directory name "
                                          "\"{}\" (leave it out or make them equal)",
                                          c.name, dir_name));
  }
  if (!IsValidModelName(c.name)) {
    return FieldError("name", fmt::format("\"{}\" is not a model name (1-128 of A-Z, a-z, 0-9, "
                                          "'_', '.', '-', not starting with '.')",
                                          c.name));
  }
  if (backend == "torchscript") {
    c.backend = Backend::kTorchScript;
  } else if (backend == "xgboost") {
    c.backend = Backend::kXgboost;
  } else {
    return FieldError("backend",
                      fmt::format("\"{}\" is not a backend (torchscript or xgboost)", backend));
  }
  if (c.model_filename.find('/') != std::string::npos || c.model_filename == "." ||
      c.model_filename == "..") {
    return FieldError("model_filename", "must be a file name inside the version directory");
  }
  RETURN_IF_ERROR(ParseTensors(inputs, "inputs", true, c, limits, &c.inputs));
  RETURN_IF_ERROR(ParseTensors(outputs, "outputs", false, c, limits, &c.outputs));
  if (batching != nullptr) {
    ASSIGN_OR_RETURN(c.dynamic_batching,
                     ParseDynamicBatching(*batching, "dynamic_batching", c.max_batch_size));
  }
  if (instances != nullptr) {
    ASSIGN_OR_RETURN(ObjectReader ir, ObjectReader::Make(*instances, "instances"));
    RETURN_IF_ERROR(RangedInt(ir, "count", 1, kMaxInstances, &c.instances.count));
    RETURN_IF_ERROR(RangedInt(ir, "threads", 1, kMaxThreadsPerInstance, &c.instances.threads));
    RETURN_IF_ERROR(ir.Finish());
  }
  if (policy != nullptr) {
    ASSIGN_OR_RETURN(c.version_policy, ParseVersionPolicy(*policy, "version_policy"));
  }
  if (labels != nullptr) RETURN_IF_ERROR(ParseLabels(*labels, "labels", &c.labels));
  if (canary != nullptr) {
    ASSIGN_OR_RETURN(c.canary, ParseCanary(*canary, "canary", c.labels));
  }
  if (slo != nullptr) {
    ASSIGN_OR_RETURN(ObjectReader sr, ObjectReader::Make(*slo, "slo"));
    RETURN_IF_ERROR(RangedInt(sr, "p99_ms", 0, kMaxSloMs, &c.slo.p99_ms));
    RETURN_IF_ERROR(sr.Finish());
  }
  if (warmup != nullptr) {
    if (!warmup->is_array()) {
      return FieldError("warmup",
                        fmt::format("expected a list, got {}", JsonTypeName(warmup->type())));
    }
    for (size_t i = 0; i < warmup->items().size(); ++i) {
      ASSIGN_OR_RETURN(Warmup w, ParseWarmup(warmup->items()[i], Index("warmup", i), c, limits));
      c.warmup.push_back(std::move(w));
    }
  }
  if (parameters != nullptr) {
    if (!parameters->is_object()) {
      return FieldError("parameters",
                        fmt::format("expected a map, got {}", JsonTypeName(parameters->type())));
    }
    for (const auto& [key, v] : parameters->members()) {
      if (v.is_array() || v.is_object() || v.is_null()) {
        return FieldError(
            Join("parameters", key),
            fmt::format("expected a string, number or boolean, got {}", JsonTypeName(v.type())));
      }
      c.parameters[key] = ScalarText(v);
    }
  }
  return c;
}

StatusOr<ModelConfig> ParseModelConfig(std::string_view yaml, std::string_view dir_name,
                                       const TensorLimits& limits) {
  ASSIGN_OR_RETURN(JsonValue tree, ParseYaml(yaml));
  return ModelConfigFromJson(tree, dir_name, limits);
}

}  // namespace lathe::serving
