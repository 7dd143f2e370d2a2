// A model's config.yaml: what the model takes and returns, how requests are
// batched and queued, how many instances run it, which versions load, and
// what warms it up (Triton's model configuration semantics, protocols.md §2,
// written in YAML; reference in docs/serving.md).
//
// Batch dimension: with max_batch_size > 0 the first dimension of every
// input and output is the batch and is NOT written in `dims` (as Triton
// does): `dims: [3, 224, 224]` with max_batch_size 8 accepts requests of
// shape [n, 3, 224, 224] with 1 ≤ n ≤ 8, and model metadata reports
// [-1, 3, 224, 224]. With max_batch_size 0 the model does not batch and
// `dims` is the full shape.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "serving/tensor.h"

namespace lathe::serving {

enum class Backend { kTorchScript, kXgboost };

// "torchscript", "xgboost".
std::string_view BackendName(Backend backend);
// The V2 metadata "platform": "pytorch_torchscript", "xgboost".
std::string_view BackendPlatform(Backend backend);

struct TensorConfig {
  std::string name;
  DataType type = DataType::kFp32;
  // Without the batch dimension when the model batches; -1 = any size.
  std::vector<int64_t> dims;
  // Inputs only: a request may leave it out.
  bool optional = false;
};

struct DynamicBatching {
  // How long the batcher may hold the oldest request to fill a preferred or
  // full batch (0 = send what is there at once).
  int64_t max_queue_delay_us = 0;
  // Batch sizes to send at once when they can be formed; ascending, each
  // ≤ max_batch_size. Empty = the largest possible.
  std::vector<int64_t> preferred_batch_sizes;
  // Requests waiting, over all priority levels; 0 = unbounded. A full queue
  // rejects new requests at once.
  int64_t max_queue_size = 0;
  // A request still queued after this long is rejected (0 = no timeout). A
  // request's own `timeout` parameter may only lower it.
  int64_t default_timeout_us = 0;
  // 0 = one level; N > 0 = levels 1 (highest) … N, all of level 1 served
  // before level 2.
  int64_t priority_levels = 0;
  // The level of requests that name none (or priority 0); in 1..N when
  // priority_levels is N > 0, else 0.
  int64_t default_priority_level = 0;
};

struct Instances {
  int64_t count = 1;
  // Intra-op threads of each instance (LibTorch set_num_threads, XGBoost
  // nthread).
  int64_t threads = 1;
};

struct VersionPolicy {
  enum class Kind { kLatest, kAll, kSpecific };
  Kind kind = Kind::kLatest;
  int64_t latest = 1;             // kLatest: how many of the highest versions
  std::vector<int64_t> specific;  // kSpecific: ascending, unique
};

// Requests that name no version go to `target` with probability
// weight_percent / 100, the rest to the default version.
struct Canary {
  // Exactly one of version and label is set.
  int64_t version = 0;
  std::string label;
  int64_t weight_percent = 0;
};

// The latency objective that overload control keeps: when the p99 of
// request latency would exceed it, new requests are shed.
struct LatencyObjective {
  int64_t p99_ms = 0;  // 0 = none
};

struct WarmupInput {
  enum class Fill { kZero, kRandom };
  Fill fill = Fill::kZero;
  // Per-request dims (without the batch dimension when the model batches);
  // taken from the input's config unless it has -1 dims, then required.
  std::vector<int64_t> dims;
};

struct Warmup {
  std::string name;
  int64_t batch_size = 1;
  // By input name; every model input is listed (inputs not written in the
  // YAML get kZero with the config's dims).
  std::map<std::string, WarmupInput> inputs;
  int64_t count = 1;
};

struct ModelConfig {
  std::string name;
  Backend backend = Backend::kTorchScript;
  // The model file inside a version directory; empty = the backend's default.
  std::string model_filename;
  int64_t max_batch_size = 0;
  std::vector<TensorConfig> inputs;
  std::vector<TensorConfig> outputs;
  // Set when the YAML has a dynamic_batching section.
  std::optional<DynamicBatching> dynamic_batching;
  Instances instances;
  VersionPolicy version_policy;
  // label → version.
  std::map<std::string, int64_t> labels;
  std::optional<Canary> canary;
  LatencyObjective slo;
  std::vector<Warmup> warmup;
  // Backend-specific settings, passed through as strings.
  std::map<std::string, std::string> parameters;

  // The input or output named `name`, or nullptr.
  const TensorConfig* FindInput(std::string_view name) const;
  const TensorConfig* FindOutput(std::string_view name) const;
};

// Limits on what a config may ask for.
inline constexpr int64_t kMaxBatchSizeLimit = 1 << 16;
inline constexpr int64_t kMaxInstances = 64;
inline constexpr int64_t kMaxThreadsPerInstance = 256;
inline constexpr int64_t kMaxQueueDelayUs = 60'000'000;
inline constexpr int64_t kMaxPriorityLevels = 1000;
inline constexpr int64_t kMaxWarmupCount = 1000;
inline constexpr size_t kMaxTensorsPerModel = 1024;

// Parses config.yaml text. `dir_name` is the model's directory name: `name`
// defaults to it and, when given, must equal it. Every error is
// INVALID_ARGUMENT naming the field path ("inputs[1].dims[0]: ..."), with the
// path also in Status::field(). `limits` bounds warmup tensor sizes.
StatusOr<ModelConfig> ParseModelConfig(std::string_view yaml, std::string_view dir_name,
                                       const TensorLimits& limits = {});
// The same from an already-parsed tree (JSON or YAML).
StatusOr<ModelConfig> ModelConfigFromJson(const JsonValue& value, std::string_view dir_name,
                                          const TensorLimits& limits = {});

// The shape the V2 model metadata reports for `t`: dims with a leading -1
// when the model batches.
std::vector<int64_t> MetadataShape(const ModelConfig& config, const TensorConfig& t);

// Whether `name` may name a model (a directory of the repository and a URL
// path segment): 1-128 of [A-Za-z0-9_.-], not starting with '.'.
bool IsValidModelName(std::string_view name);

}  // namespace lathe::serving
