// What every backend plugin shares: the model description LatheBackendLoad
// receives (its config JSON, backend_abi.h) as a value, the input checks
// that turn a wrong dtype or shape into LATHE_BACKEND_INVALID_ARGUMENT, and
// the error strings that cross the ABI.
//
// Compiled into each plugin (position-independent, hidden symbols); it
// depends on simdjson and the C++ standard library only, never on
// lathe_base or LibTorch, so a plugin carries nothing of the host's.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "serving/backend_abi.h"

namespace lathe::serving::backends {

// The LatheDataType values (serving::DataType's order; backend.cc checks
// that the two agree).
enum DataTypeCode : LatheDataType {
  kBool = 0,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kBf16,
  kFp32,
  kFp64,
  kBytes,
};
inline constexpr LatheDataType kNumDataTypes = kBytes + 1;

// "FP32" etc.; "?" for a value outside the enum.
const char* DataTypeName(LatheDataType type);
// The inverse; -1 for an unknown name.
LatheDataType DataTypeFromName(std::string_view name);
// Bytes per element; 0 for BYTES and unknown values.
uint64_t DataTypeSize(LatheDataType type);

struct TensorSpec {
  std::string name;
  LatheDataType datatype = kFp32;
  std::vector<int64_t> dims;  // without the batch dimension when batching
  bool optional = false;
};

struct ModelSpec {
  std::string name;
  int64_t max_batch_size = 0;
  std::string model_filename;  // "" = the backend's default
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  std::map<std::string, std::string> parameters;

  bool batching() const { return max_batch_size > 0; }
  // Index into inputs/outputs, or -1.
  int FindInput(std::string_view name) const;
  int FindOutput(std::string_view name) const;
  // parameters[key] or `fallback`.
  std::string Parameter(const std::string& key, std::string fallback = {}) const;
};

// Parses LatheBackendLoad's config JSON. Returns "" on success, else what is
// wrong with it.
std::string ParseModelSpec(std::string_view json, ModelSpec* spec);

// Execute's inputs in config order: the tensors of `inputs` matched by name,
// nullptr for an optional input left out. `batch` is the common leading
// dimension when the model batches (else 0). Returns "" when every input
// is known, present unless optional, of the config's datatype, with a shape
// that fits the config's dims (and a batch in 1..max_batch_size) and
// exactly the bytes its shape needs; else a message for
// LATHE_BACKEND_INVALID_ARGUMENT naming the input.
std::string MatchInputs(const ModelSpec& spec, const LatheBackendTensor* inputs, uint32_t n,
                        std::vector<const LatheBackendTensor*>* ordered, int64_t* batch);

// "[2,3]".
std::string FormatShape(const int64_t* shape, size_t rank);

// A malloc'd copy of `message` for the ABI's *error (freed with
// LatheBackendFreeError, i.e. free()).
char* ErrorCopy(std::string_view message);

// LatheBackendLoad's error convention (backend_abi.h): a message starting
// with "NOT_FOUND: " or "INVALID_ARGUMENT: " carries that code to the
// host; any other message is INTERNAL.
char* LoadNotFound(std::string_view message);
char* LoadInvalid(std::string_view message);

}  // namespace lathe::serving::backends
