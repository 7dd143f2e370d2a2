#include "serving/warmup.h"

#include <cstring>
#include <random>
#include <string>

#include <fmt/core.h>

namespace lathe::serving {

namespace {

template <typename T>
void Put(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out->append(b, sizeof(T));
}

// One random element of `type` (not BYTES) in its little-endian bytes.
void PutRandom(std::string* out, DataType type, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const int64_t small = static_cast<int64_t>(rng() % 10);
  switch (type) {
    case DataType::kBool:
      Put<uint8_t>(out, static_cast<uint8_t>(rng() & 1));
      return;
    case DataType::kUint8:
      return Put<uint8_t>(out, static_cast<uint8_t>(small));
    case DataType::kUint16:
      return Put<uint16_t>(out, static_cast<uint16_t>(small));
    case DataType::kUint32:
      return Put<uint32_t>(out, static_cast<uint32_t>(small));
    case DataType::kUint64:
      return Put<uint64_t>(out, static_cast<uint64_t>(small));
    case DataType::kInt8:
      return Put<int8_t>(out, static_cast<int8_t>(small));
    case DataType::kInt16:
      return Put<int16_t>(out, static_cast<int16_t>(small));
    case DataType::kInt32:
      return Put<int32_t>(out, static_cast<int32_t>(small));
    case DataType::kInt64:
      return Put<int64_t>(out, small);
    case DataType::kFp16: {
      // 0, 0.25, 0.5 or 0.75 as IEEE half.
      static constexpr uint16_t kHalves[] = {0x0000, 0x3400, 0x3800, 0x3A00};
      return Put<uint16_t>(out, kHalves[rng() % 4]);
    }
    case DataType::kBf16: {
      float f = static_cast<float>(unit(rng));
      uint32_t bits;
      std::memcpy(&bits, &f, sizeof bits);
      return Put<uint16_t>(out, static_cast<uint16_t>(bits >> 16));
    }
    case DataType::kFp32:
      return Put<float>(out, static_cast<float>(unit(rng)));
    case DataType::kFp64:
      return Put<double>(out, unit(rng));
    case DataType::kBytes:
      return;
  }
}

}  // namespace

std::vector<Tensor> WarmupInputs(const ModelConfig& config, const Warmup& warmup, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Tensor> inputs;
  inputs.reserve(config.inputs.size());
  for (const TensorConfig& c : config.inputs) {
    auto it = warmup.inputs.find(c.name);
    WarmupInput in =
        it != warmup.inputs.end() ? it->second : WarmupInput{WarmupInput::Fill::kZero, c.dims};
    Tensor t;
    t.name = c.name;
    t.type = c.type;
    if (config.max_batch_size > 0) t.shape.push_back(warmup.batch_size);
    t.shape.insert(t.shape.end(), in.dims.begin(), in.dims.end());
    int64_t count = 1;
    for (int64_t d : t.shape) count *= d;  // the config parser bounded these
    std::string bytes;
    if (c.type == DataType::kBytes) {
      for (int64_t i = 0; i < count; ++i) {
        std::string element;
        if (in.fill == WarmupInput::Fill::kRandom) {
          element.resize(1 + rng() % 8);
          for (char& ch : element) ch = static_cast<char>('0' + rng() % 10);
        }
        AppendBytesElement(&bytes, element).IgnoreError();  // short: cannot fail
      }
    } else if (in.fill == WarmupInput::Fill::kZero) {
      bytes.assign(static_cast<size_t>(count) * DataTypeSize(c.type), '\0');
    } else {
      bytes.reserve(static_cast<size_t>(count) * DataTypeSize(c.type));
      for (int64_t i = 0; i < count; ++i) PutRandom(&bytes, c.type, rng);
    }
    t.data = TensorData(std::move(bytes));
    inputs.push_back(std::move(t));
  }
  return inputs;
}

Status RunWarmup(const ModelConfig& config, ModelInstance& instance) {
  uint64_t seed = 1;
  for (const Warmup& w : config.warmup) {
    const std::vector<Tensor> inputs = WarmupInputs(config, w, seed++);
    for (int64_t i = 0; i < w.count; ++i) {
      StatusOr<std::vector<Tensor>> out = instance.Execute(inputs, {});
      if (!out.ok()) {
        return out.status().WithPrefix(
            fmt::format("warmup \"{}\" (run {} of {})", w.name, i + 1, w.count));
      }
    }
  }
  return OkStatus();
}

}  // namespace lathe::serving
