// Tensors as the model server moves them: a name, a KServe V2 datatype, a
// shape and the raw bytes, whatever protocol they came in on.
//
// Bytes are little-endian and row-major with no padding (the V2 binary
// layout). A BYTES tensor holds, per element, a 4-byte little-endian length
// followed by that many bytes. TensorData is immutable and shares its bytes:
// a tensor decoded from a binary request body is a view into that body (no
// copy), kept alive by a reference to it; copying a Tensor copies a pointer.
// Views are not aligned: a consumer that needs aligned elements copies (the
// batcher does anyway when it concatenates requests).
//
// Shapes are checked before anything is allocated for them: element counts
// are computed with overflow checks and capped by TensorLimits, so a request
// that claims shape [2^40, 2^40] is rejected without allocating.
#pragma once

#include <bit>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace lathe::serving {

static_assert(std::endian::native == std::endian::little,
              "tensor bytes are little-endian on the wire and in memory");

// The KServe V2 datatypes (protocols.md §1.3).
enum class DataType : uint8_t {
  kBool,
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

// "BOOL", "UINT8", ..., "BYTES".
std::string_view DataTypeName(DataType type);
// The inverse of DataTypeName (exact, upper case); nullopt for anything else.
std::optional<DataType> ParseDataType(std::string_view name);
// Bytes per element; 0 for BYTES (variable length).
size_t DataTypeSize(DataType type);
// "BOOL, UINT8, ..., BYTES" for error messages.
std::string_view DataTypeNames();

// The bytes of one tensor. Cheap to copy (a shared reference); never mutated.
class TensorData {
 public:
  TensorData() = default;
  // Owns `bytes`.
  explicit TensorData(std::string bytes);
  // A view of `bytes`, which `owner` keeps alive (for example the request
  // body `bytes` points into).
  TensorData(std::shared_ptr<const void> owner, std::string_view bytes)
      : owner_(std::move(owner)), bytes_(bytes) {}

  std::string_view bytes() const { return bytes_; }
  const char* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }

 private:
  std::shared_ptr<const void> owner_;
  // Never a null pointer, even when empty, so memcpy(dst, data(), 0) is fine.
  std::string_view bytes_{"", 0};
};

struct Tensor {
  std::string name;
  DataType type = DataType::kFp32;
  std::vector<int64_t> shape;
  TensorData data;
};

// Bounds on what one tensor may claim, checked before allocating.
struct TensorLimits {
  static constexpr size_t kDefaultMaxRank = 32;
  static constexpr uint64_t kDefaultMaxBytes = uint64_t{1} << 30;  // 1 GiB
  size_t max_rank = kDefaultMaxRank;
  // Decoded bytes of one tensor (for BYTES: elements × 4 bytes of length
  // prefix at least, plus the strings).
  uint64_t max_bytes = kDefaultMaxBytes;
};

// Elements in `shape`: the product of its dimensions (1 for rank 0). Fails
// with INVALID_ARGUMENT on a negative dimension, a rank above
// limits.max_rank, or a product whose bytes (at DataTypeSize, or 4 per
// element for BYTES) overflow or exceed limits.max_bytes. Never allocates in
// proportion to the shape. Messages ("shape [2,-1] has negative dimension
// -1 at index 1") do not name the tensor: callers prefix it (WithPrefix),
// so nothing is formatted on the success path.
StatusOr<int64_t> CheckedElementCount(std::span<const int64_t> shape, DataType type,
                                      const TensorLimits& limits);

// "[2,3,-1]".
std::string FormatShape(std::span<const int64_t> shape);

// Checks that `data` holds exactly `count` elements of `type`: count ×
// DataTypeSize bytes, or for BYTES `count` complete length-prefixed
// elements and nothing after them. As above, callers prefix the tensor.
Status CheckTensorBytes(DataType type, int64_t count, std::string_view data);

// Checks that a tensor's bytes hold exactly its shape's elements (no limits
// beyond the bytes themselves). Messages start with the tensor's quoted
// name. For tensors from backends, where a mismatch is a bug.
Status CheckTensorData(const Tensor& t);

// Splits a BYTES tensor's data into its elements (views into `data`).
// Fails when the data is not a sequence of complete length-prefixed
// elements.
StatusOr<std::vector<std::string_view>> SplitBytesElements(std::string_view data);

// Appends one BYTES element (length prefix + bytes) to `out`. Fails when the
// element is 4 GiB or larger.
Status AppendBytesElement(std::string* out, std::string_view element);

// Builds a tensor from values, for tests, warmup and backends. T must have
// the size of `type`'s elements (bool for BOOL, uint16_t for FP16/BF16).
template <typename T>
Tensor MakeTensor(std::string name, DataType type, std::vector<int64_t> shape,
                  std::span<const T> values) {
  std::string bytes(reinterpret_cast<const char*>(values.data()), values.size_bytes());
  return Tensor{std::move(name), type, std::move(shape), TensorData(std::move(bytes))};
}
template <typename T>
Tensor MakeTensor(std::string name, DataType type, std::vector<int64_t> shape,
                  const std::vector<T>& values) {
  return MakeTensor(std::move(name), type, std::move(shape), std::span<const T>(values));
}
// A BYTES tensor from strings (each under 4 GiB).
Tensor MakeBytesTensor(std::string name, std::vector<int64_t> shape,
                       const std::vector<std::string>& values);

}  // namespace lathe::serving
