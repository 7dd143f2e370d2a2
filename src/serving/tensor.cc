#include "serving/tensor.h"

#include <cstring>
#include <limits>

#include <fmt/core.h>

namespace lathe::serving {

namespace {

struct TypeInfo {
  DataType type;
  std::string_view name;
  size_t size;
};

constexpr TypeInfo kTypes[] = {
    {DataType::kBool, "BOOL", 1},     {DataType::kUint8, "UINT8", 1},
    {DataType::kUint16, "UINT16", 2}, {DataType::kUint32, "UINT32", 4},
    {DataType::kUint64, "UINT64", 8}, {DataType::kInt8, "INT8", 1},
    {DataType::kInt16, "INT16", 2},   {DataType::kInt32, "INT32", 4},
    {DataType::kInt64, "INT64", 8},   {DataType::kFp16, "FP16", 2},
    {DataType::kBf16, "BF16", 2},     {DataType::kFp32, "FP32", 4},
    {DataType::kFp64, "FP64", 8},     {DataType::kBytes, "BYTES", 0},
};

constexpr uint32_t kMaxBytesElement = std::numeric_limits<uint32_t>::max();

uint32_t ReadLength(const char* p) {
  uint32_t n;
  std::memcpy(&n, p, sizeof n);
  return n;  // little-endian host (static_assert in tensor.h)
}

}  // namespace

std::string_view DataTypeName(DataType type) { return kTypes[static_cast<size_t>(type)].name; }

std::optional<DataType> ParseDataType(std::string_view name) {
  for (const TypeInfo& t : kTypes) {
    if (t.name == name) return t.type;
  }
  return std::nullopt;
}

size_t DataTypeSize(DataType type) { return kTypes[static_cast<size_t>(type)].size; }

std::string_view DataTypeNames() {
  return "BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, BF16, FP32, "
         "FP64, BYTES";
}

TensorData::TensorData(std::string bytes) {
  if (bytes.empty()) return;
  auto owned = std::make_shared<const std::string>(std::move(bytes));
  bytes_ = *owned;
  owner_ = std::move(owned);
}

std::string FormatShape(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(shape[i]);
  }
  s += ']';
  return s;
}

StatusOr<int64_t> CheckedElementCount(std::span<const int64_t> shape, DataType type,
                                      const TensorLimits& limits) {
  if (shape.size() > limits.max_rank) {
    return InvalidArgumentError(fmt::format("shape has {} dimensions; at most {} are allowed",
                                            shape.size(), limits.max_rank));
  }
  // BYTES elements take at least their 4-byte length prefix.
  const uint64_t element_bytes = type == DataType::kBytes ? 4 : DataTypeSize(type);
  const uint64_t max_elements = limits.max_bytes / element_bytes;
  uint64_t count = 1;
  bool zero = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      return InvalidArgumentError(fmt::format("shape {} has negative dimension {} at index {}",
                                              FormatShape(shape), shape[i], i));
    }
    if (shape[i] == 0) zero = true;
  }
  if (zero) return int64_t{0};
  for (int64_t d : shape) {
    const uint64_t dim = static_cast<uint64_t>(d);
    // count * dim > max_elements, without overflowing.
    if (dim > max_elements / count) {
      return InvalidArgumentError(
          fmt::format("shape {} is too large: over the {}-byte limit for one tensor",
                      FormatShape(shape), limits.max_bytes));
    }
    count *= dim;
  }
  return static_cast<int64_t>(count);
}

Status CheckTensorBytes(DataType type, int64_t count, std::string_view data) {
  if (type != DataType::kBytes) {
    // count × size cannot overflow: count passed CheckedElementCount's byte cap.
    const uint64_t want = static_cast<uint64_t>(count) * DataTypeSize(type);
    if (data.size() != want) {
      return InvalidArgumentError(fmt::format("{} elements of {} need {} bytes but data has {}",
                                              count, DataTypeName(type), want, data.size()));
    }
    return OkStatus();
  }
  size_t pos = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (data.size() - pos < 4) {
      return InvalidArgumentError(
          fmt::format("BYTES data ends inside the length of element {} (of {})", i, count));
    }
    const uint32_t n = ReadLength(data.data() + pos);
    pos += 4;
    if (data.size() - pos < n) {
      return InvalidArgumentError(fmt::format("BYTES element {} claims {} bytes but only {} remain",
                                              i, n, data.size() - pos));
    }
    pos += n;
  }
  if (pos != data.size()) {
    return InvalidArgumentError(
        fmt::format("{} bytes after the last of {} BYTES elements", data.size() - pos, count));
  }
  return OkStatus();
}

StatusOr<std::vector<std::string_view>> SplitBytesElements(std::string_view data) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < data.size()) {
    if (data.size() - pos < 4) {
      return InvalidArgumentError(
          fmt::format("BYTES data ends inside the length of element {}", out.size()));
    }
    const uint32_t n = ReadLength(data.data() + pos);
    pos += 4;
    if (data.size() - pos < n) {
      return InvalidArgumentError(fmt::format("BYTES element {} claims {} bytes but only {} remain",
                                              out.size(), n, data.size() - pos));
    }
    out.push_back(data.substr(pos, n));
    pos += n;
  }
  return out;
}

Status AppendBytesElement(std::string* out, std::string_view element) {
  if (element.size() > kMaxBytesElement) {
    return InvalidArgumentError(
        fmt::format("a BYTES element of {} bytes is over the 4 GiB limit", element.size()));
  }
  const uint32_t n = static_cast<uint32_t>(element.size());
  char len[4];
  std::memcpy(len, &n, sizeof n);
  out->append(len, 4);
  out->append(element);
  return OkStatus();
}

Status CheckTensorData(const Tensor& t) {
  // The data bounds the count: a shape claiming more than it holds fails.
  StatusOr<int64_t> count = CheckedElementCount(
      t.shape, t.type, TensorLimits{.max_rank = SIZE_MAX, .max_bytes = t.data.size()});
  Status s = count.ok() ? CheckTensorBytes(t.type, *count, t.data.bytes()) : count.status();
  if (!s.ok()) return s.WithPrefix(fmt::format("\"{}\"", t.name));
  return OkStatus();
}

Tensor MakeBytesTensor(std::string name, std::vector<int64_t> shape,
                       const std::vector<std::string>& values) {
  std::string bytes;
  for (const std::string& v : values) AppendBytesElement(&bytes, v).IgnoreError();
  return Tensor{std::move(name), DataType::kBytes, std::move(shape), TensorData(std::move(bytes))};
}

}  // namespace lathe::serving
