#include "serving/protocols/tensor_json.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include <fmt/core.h>

#include "base/json.h"
#include "base/strings.h"

namespace lathe::serving::tensor_json {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

enum class Conv { kOk, kType, kRange, kFraction, kFp16, kBase64 };

template <typename T>
Conv ToInteger(element e, T* out) {
  constexpr bool kSigned = std::is_signed_v<T>;
  switch (e.type()) {
    case element_type::INT64: {
      int64_t v = e.get_int64().value_unsafe();
      if constexpr (kSigned) {
        if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) {
          return Conv::kRange;
        }
      } else {
        if (v < 0 || static_cast<uint64_t>(v) > std::numeric_limits<T>::max()) return Conv::kRange;
      }
      *out = static_cast<T>(v);
      return Conv::kOk;
    }
    case element_type::UINT64: {
      // simdjson uses UINT64 only above INT64_MAX.
      uint64_t v = e.get_uint64().value_unsafe();
      if (v > static_cast<uint64_t>(std::numeric_limits<T>::max())) return Conv::kRange;
      *out = static_cast<T>(v);
      return Conv::kOk;
    }
    case element_type::DOUBLE: {
      double d = e.get_double().value_unsafe();
      if (!std::isfinite(d) || std::trunc(d) != d) return Conv::kFraction;
      // Bounds as doubles: min is exact (0 or -2^k), max + 1 is 2^k.
      const double lo = static_cast<double>(std::numeric_limits<T>::min());
      const double hi = std::ldexp(1.0, std::numeric_limits<T>::digits);
      if (d < lo || d >= hi) return Conv::kRange;
      *out = static_cast<T>(d);
      return Conv::kOk;
    }
    default:
      return Conv::kType;
  }
}

bool NonFinite(std::string_view s, double* out) {
  if (EqualsIgnoreCaseAscii(s, "NaN")) {
    *out = std::numeric_limits<double>::quiet_NaN();
  } else if (EqualsIgnoreCaseAscii(s, "Infinity") || EqualsIgnoreCaseAscii(s, "Inf") ||
             EqualsIgnoreCaseAscii(s, "+Infinity") || EqualsIgnoreCaseAscii(s, "+Inf")) {
    *out = std::numeric_limits<double>::infinity();
  } else if (EqualsIgnoreCaseAscii(s, "-Infinity") || EqualsIgnoreCaseAscii(s, "-Inf")) {
    *out = -std::numeric_limits<double>::infinity();
  } else {
    return false;
  }
  return true;
}

template <typename T>
Conv ToFloat(element e, T* out) {
  double d;
  if (e.get_double().get(d) != simdjson::SUCCESS) {
    std::string_view s;
    if (e.get_string().get(s) != simdjson::SUCCESS || !NonFinite(s, &d)) return Conv::kType;
    *out = static_cast<T>(d);
    return Conv::kOk;
  }
  if constexpr (std::is_same_v<T, float>) {
    // Values that round to FLT_MAX are fine ("3.4028235e+38", the shortest
    // spelling of FLT_MAX, is above it); those that round to infinity are
    // not. The cut is FLT_MAX + half an ulp (ties round to even: infinity).
    constexpr double kRoundsToInfinity = 0x1.ffffffp127;
    const double a = std::fabs(d);
    if (a >= kRoundsToInfinity) return Conv::kRange;
    if (a > std::numeric_limits<float>::max())
      d = std::copysign(std::numeric_limits<float>::max(), d);
  }
  *out = static_cast<T>(d);
  return Conv::kOk;
}

std::string_view Want(DataType type) {
  switch (type) {
    case DataType::kBool:
      return "true or false";
    case DataType::kFp32:
    case DataType::kFp64:
      return "a number";
    case DataType::kBytes:
      return "a string";
    default:
      return "an integer";
  }
}

Status LeafError(int64_t index, DataType type, element e, Conv c) {
  switch (c) {
    case Conv::kRange:
      return InvalidArgumentError(fmt::format("data[{}]: {} is out of range for {}", index,
                                              simdjson::to_string(e), DataTypeName(type)));
    case Conv::kFraction:
      return InvalidArgumentError(fmt::format("data[{}]: {} is not an integer ({} takes integers)",
                                              index, simdjson::to_string(e), DataTypeName(type)));
    case Conv::kBase64:
      return InvalidArgumentError(
          fmt::format("data[{}]: the b64 value is not valid base64", index));
    case Conv::kFp16:
      return InvalidArgumentError(
          fmt::format("{} data cannot be sent as JSON; send it as binary data (binary_data_size)",
                      DataTypeName(type)));
    default:
      return InvalidArgumentError(
          fmt::format("data[{}]: expected {}, got {}", index, Want(type), TypeName(e)));
  }
}

// Walks the leaves of a value in row-major order, converting each with
// Sink::Add; the walk itself is the same for every datatype.
template <typename Sink>
class LeafWalker {
 public:
  LeafWalker(Sink& sink, size_t max_depth, int64_t max_count)
      : sink_(sink), max_depth_(max_depth), max_count_(max_count) {}

  Status Walk(element e, size_t depth) {
    if (e.type() == element_type::ARRAY) {
      if (depth >= max_depth_) {
        return InvalidArgumentError(
            fmt::format("data is nested deeper than the shape's {} dimensions", max_depth_));
      }
      simdjson::dom::array items = e.get_array().value_unsafe();
      for (element item : items) {
        RETURN_IF_ERROR(Walk(item, depth + 1));
        if (n_ > max_count_) return OkStatus();
      }
      return OkStatus();
    }
    if (n_ == max_count_) {
      ++n_;  // "more than max_count"; the caller reports the real count
      return OkStatus();
    }
    Conv c = sink_.Add(e, n_);
    if (c != Conv::kOk) return LeafError(n_, Sink::kType, e, c);
    ++n_;
    return OkStatus();
  }

  int64_t count() const { return n_; }

 private:
  Sink& sink_;
  size_t max_depth_;
  int64_t max_count_;
  int64_t n_ = 0;
};

// Fixed-size elements go straight into room reserved for max_count of them.
template <typename T, DataType K>
struct NumberSink {
  static constexpr DataType kType = K;
  char* dst;
  Conv Add(element e, int64_t n) {
    T v;
    Conv c;
    if constexpr (std::is_floating_point_v<T>) {
      c = ToFloat(e, &v);
    } else {
      c = ToInteger(e, &v);
    }
    if (c == Conv::kOk) std::memcpy(dst + static_cast<size_t>(n) * sizeof v, &v, sizeof v);
    return c;
  }
};

struct BoolSink {
  static constexpr DataType kType = DataType::kBool;
  char* dst;
  Conv Add(element e, int64_t n) {
    bool b;
    if (e.get_bool().get(b) != simdjson::SUCCESS) return Conv::kType;
    dst[n] = b ? 1 : 0;
    return Conv::kOk;
  }
};

struct BytesSink {
  static constexpr DataType kType = DataType::kBytes;
  std::string* out;
  bool allow_b64;
  std::string decoded;
  Conv Add(element e, int64_t) {
    std::string_view s;
    if (e.get_string().get(s) == simdjson::SUCCESS) {
      return AppendBytesElement(out, s).ok() ? Conv::kOk : Conv::kRange;
    }
    simdjson::dom::object o;
    if (allow_b64 && e.get_object().get(o) == simdjson::SUCCESS && o.size() == 1 &&
        o["b64"].get_string().get(s) == simdjson::SUCCESS) {
      decoded.clear();
      if (!Base64Decode(s, &decoded)) return Conv::kBase64;
      return AppendBytesElement(out, decoded).ok() ? Conv::kOk : Conv::kRange;
    }
    return Conv::kType;
  }
};

template <typename Sink, size_t kSize>
StatusOr<int64_t> RunFixed(element value, size_t max_depth, int64_t max_count, std::string* out) {
  const size_t base = out->size();
  out->resize(base + static_cast<size_t>(max_count) * kSize);
  Sink sink{out->data() + base};
  LeafWalker<Sink> walker(sink, max_depth, max_count);
  Status s = walker.Walk(value, 0);
  out->resize(base + static_cast<size_t>(std::min(walker.count(), max_count)) * kSize);
  if (!s.ok()) return s;
  return walker.count();
}

template <typename T, DataType K>
StatusOr<int64_t> RunNumbers(element value, size_t max_depth, int64_t max_count, std::string* out) {
  return RunFixed<NumberSink<T, K>, sizeof(T)>(value, max_depth, max_count, out);
}

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int B64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

simdjson::dom::parser& ThreadParser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

constexpr size_t kMaxRetainedParserBytes = 16 << 20;

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

StatusOr<element> ParseDocument(std::string_view json, std::string* scratch) {
  simdjson::dom::parser& parser = ThreadParser();
  element root;
  simdjson::error_code err = parser.parse(json.data(), json.size(), true).get(root);
  if (err == simdjson::SUCCESS) return root;
  if (err != simdjson::DEPTH_ERROR && err != simdjson::MEMALLOC &&
      QuoteNonFiniteLiterals(json, scratch) &&
      parser.parse(scratch->data(), scratch->size(), true).get(root) == simdjson::SUCCESS) {
    return root;
  }
  if (err == simdjson::DEPTH_ERROR) {
    return InvalidArgumentError(
        fmt::format("malformed JSON: nested deeper than {} levels", parser.max_depth()));
  }
  // The base parser locates the error (slow; only on this path).
  Status located = ParseJson(json).status();
  if (!located.ok()) return located;
  return InvalidArgumentError(fmt::format("malformed JSON: {}", simdjson::error_message(err)));
}

ParserTrim::~ParserTrim() {
  if (ThreadParser().capacity() > kMaxRetainedParserBytes) ThreadParser() = simdjson::dom::parser();
}

std::string_view TypeName(element e) {
  switch (e.type()) {
    case element_type::ARRAY:
      return "an array";
    case element_type::OBJECT:
      return "an object";
    case element_type::INT64:
    case element_type::UINT64:
      return "an integer";
    case element_type::DOUBLE:
      return "a number";
    case element_type::STRING:
      return "a string";
    case element_type::BOOL:
      return "a boolean";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "a value";
}

StatusOr<int64_t> AppendLeaves(element value, DataType type, size_t max_depth, int64_t max_count,
                               bool allow_b64, std::string* out) {
  switch (type) {
    case DataType::kBool:
      return RunFixed<BoolSink, 1>(value, max_depth, max_count, out);
    case DataType::kUint8:
      return RunNumbers<uint8_t, DataType::kUint8>(value, max_depth, max_count, out);
    case DataType::kUint16:
      return RunNumbers<uint16_t, DataType::kUint16>(value, max_depth, max_count, out);
    case DataType::kUint32:
      return RunNumbers<uint32_t, DataType::kUint32>(value, max_depth, max_count, out);
    case DataType::kUint64:
      return RunNumbers<uint64_t, DataType::kUint64>(value, max_depth, max_count, out);
    case DataType::kInt8:
      return RunNumbers<int8_t, DataType::kInt8>(value, max_depth, max_count, out);
    case DataType::kInt16:
      return RunNumbers<int16_t, DataType::kInt16>(value, max_depth, max_count, out);
    case DataType::kInt32:
      return RunNumbers<int32_t, DataType::kInt32>(value, max_depth, max_count, out);
    case DataType::kInt64:
      return RunNumbers<int64_t, DataType::kInt64>(value, max_depth, max_count, out);
    case DataType::kFp32:
      return RunNumbers<float, DataType::kFp32>(value, max_depth, max_count, out);
    case DataType::kFp64:
      return RunNumbers<double, DataType::kFp64>(value, max_depth, max_count, out);
    case DataType::kBytes: {
      BytesSink sink{out, allow_b64, {}};
      LeafWalker<BytesSink> walker(sink, max_depth, max_count);
      RETURN_IF_ERROR(walker.Walk(value, 0));
      return walker.count();
    }
    case DataType::kFp16:
    case DataType::kBf16:
      return LeafError(0, type, value, Conv::kFp16);
  }
  return InternalError("unknown datatype");
}

int64_t CountLeaves(element value, size_t max_depth) {
  if (value.type() != element_type::ARRAY || max_depth == 0) return 1;
  int64_t n = 0;
  simdjson::dom::array items = value.get_array().value_unsafe();
  for (element item : items) n += CountLeaves(item, max_depth - 1);
  return n;
}

// ------------------------------------------------------------------ writing

namespace {

// The longest text of one element: "-2.2250738585072014e-308" and ".0".
constexpr size_t kMaxElementChars = 32;

char* WriteInt(int64_t v, char* p) { return std::to_chars(p, p + 24, v).ptr; }
char* WriteUint(uint64_t v, char* p) { return std::to_chars(p, p + 24, v).ptr; }

template <typename F>
char* WriteFloating(F v, char* p) {
  if (std::isnan(v)) {
    std::memcpy(p, "NaN", 3);
    return p + 3;
  }
  if (std::isinf(v)) {
    if (v < 0) *p++ = '-';
    std::memcpy(p, "Infinity", 8);
    return p + 8;
  }
  char* end = std::to_chars(p, p + kMaxElementChars - 2, v).ptr;
  // "3" would read back as an integer; "3.0" keeps the type visible.
  for (const char* q = p; q < end; ++q) {
    if (*q == '.' || *q == 'e') return end;
  }
  *end++ = '.';
  *end++ = '0';
  return end;
}

// One element of a fixed-size type at `src`, as JSON text at `p`.
char* WriteFixed(DataType type, const char* src, char* p) {
  switch (type) {
    case DataType::kBool:
      if (*src != 0) {
        std::memcpy(p, "true", 4);
        return p + 4;
      }
      std::memcpy(p, "false", 5);
      return p + 5;
    case DataType::kUint8:
      return WriteUint(Load<uint8_t>(src), p);
    case DataType::kUint16:
      return WriteUint(Load<uint16_t>(src), p);
    case DataType::kUint32:
      return WriteUint(Load<uint32_t>(src), p);
    case DataType::kUint64:
      return WriteUint(Load<uint64_t>(src), p);
    case DataType::kInt8:
      return WriteInt(Load<int8_t>(src), p);
    case DataType::kInt16:
      return WriteInt(Load<int16_t>(src), p);
    case DataType::kInt32:
      return WriteInt(Load<int32_t>(src), p);
    case DataType::kInt64:
      return WriteInt(Load<int64_t>(src), p);
    case DataType::kFp16:
      return WriteFloating(HalfToFloat(Load<uint16_t>(src)), p);
    case DataType::kBf16:
      return WriteFloating(Bf16ToFloat(Load<uint16_t>(src)), p);
    case DataType::kFp32:
      return WriteFloating(Load<float>(src), p);
    case DataType::kFp64:
      return WriteFloating(Load<double>(src), p);
    case DataType::kBytes:
      break;
  }
  return p;
}

}  // namespace

void AppendInt(int64_t v, std::string* out) {
  char buf[kMaxElementChars];
  out->append(buf, WriteInt(v, buf));
}

void AppendUint(uint64_t v, std::string* out) {
  char buf[kMaxElementChars];
  out->append(buf, WriteUint(v, buf));
}

void AppendFloat(float v, std::string* out) {
  char buf[kMaxElementChars];
  out->append(buf, WriteFloating(v, buf));
}

void AppendDouble(double v, std::string* out) {
  char buf[kMaxElementChars];
  out->append(buf, WriteFloating(v, buf));
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      // Subnormal: normalise into a float's exponent range.
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float Bf16ToFloat(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

Status ElementWriter::AppendOne(std::string* out) {
  if (type_ == DataType::kBytes) {
    if (bytes_.size() - pos_ < 4) return InternalError("BYTES tensor data ends inside a length");
    const uint32_t n = Load<uint32_t>(bytes_.data() + pos_);
    if (bytes_.size() - pos_ - 4 < n)
      return InternalError("BYTES tensor element overruns its data");
    std::string_view s = bytes_.substr(pos_ + 4, n);
    if (!b64_ && !simdjson::validate_utf8(s.data(), s.size())) {
      return InvalidArgumentError(fmt::format(
          "BYTES element {} is not valid UTF-8, which a JSON string cannot carry", bytes_index_));
    }
    pos_ += 4 + n;
    ++bytes_index_;
    if (b64_) {
      out->append("{\"b64\":\"");
      out->append(Base64Encode(s));
      out->append("\"}");
    } else {
      AppendJsonString(out, s);
    }
    return OkStatus();
  }
  const size_t size = DataTypeSize(type_);
  if (bytes_.size() - pos_ < size) return InternalError("tensor data is shorter than its shape");
  char buf[kMaxElementChars];
  out->append(buf, WriteFixed(type_, bytes_.data() + pos_, buf));
  pos_ += size;
  return OkStatus();
}

Status ElementWriter::AppendRun(int64_t count, std::string* out) {
  if (type_ == DataType::kBytes) {
    for (int64_t i = 0; i < count; ++i) {
      if (i > 0) out->push_back(',');
      RETURN_IF_ERROR(AppendOne(out));
    }
    return OkStatus();
  }
  // Fixed-size elements: check the bytes once, then write text straight into
  // the string, a chunk at a time so the room made for the longest text
  // stays small whatever the tensor's size.
  const size_t size = DataTypeSize(type_);
  if (count < 0 || static_cast<uint64_t>(count) > (bytes_.size() - pos_) / size) {
    return InternalError("tensor data is shorter than its shape");
  }
  constexpr int64_t kChunk = 1024;
  const char* src = bytes_.data() + pos_;
  for (int64_t done = 0; done < count;) {
    const int64_t n = std::min(kChunk, count - done);
    const size_t base = out->size();
    out->resize(base + static_cast<size_t>(n) * (kMaxElementChars + 1));
    char* p = out->data() + base;
    for (int64_t i = 0; i < n; ++i) {
      if (done + i > 0) *p++ = ',';
      p = WriteFixed(type_, src, p);
      src += size;
    }
    out->resize(static_cast<size_t>(p - out->data()));
    done += n;
  }
  pos_ += static_cast<size_t>(count) * size;
  return OkStatus();
}

Status ElementWriter::AppendNested(std::span<const int64_t> shape, std::string* out) {
  if (shape.empty()) return AppendOne(out);
  out->push_back('[');
  if (shape.size() == 1) {
    RETURN_IF_ERROR(AppendRun(shape[0], out));
  } else {
    for (int64_t i = 0; i < shape[0]; ++i) {
      if (i > 0) out->push_back(',');
      RETURN_IF_ERROR(AppendNested(shape.subspan(1), out));
    }
  }
  out->push_back(']');
  return OkStatus();
}

Status AppendFlat(const Tensor& t, std::string* out) {
  Status sized = CheckTensorData(t);
  if (!sized.ok()) return InternalError(fmt::format("output {}", sized.message()));
  ElementWriter w(t.type, t.data.bytes(), false);
  out->push_back('[');
  // The element count again, now known to be within the data.
  int64_t count = 1;
  for (int64_t d : t.shape) count *= d;
  Status written = w.AppendRun(count, out);
  if (!written.ok()) return written.WithPrefix(fmt::format("\"{}\"", t.name));
  out->push_back(']');
  return OkStatus();
}

// -------------------------------------------------------------------- text

bool QuoteNonFiniteLiterals(std::string_view json, std::string* out) {
  static constexpr std::string_view kLiterals[] = {"-Infinity", "Infinity", "NaN"};
  out->clear();
  bool changed = false;
  bool in_string = false;
  for (size_t i = 0; i < json.size();) {
    char c = json[i];
    if (in_string) {
      out->push_back(c);
      if (c == '\\' && i + 1 < json.size()) {
        out->push_back(json[i + 1]);
        i += 2;
        continue;
      }
      if (c == '"') in_string = false;
      ++i;
      continue;
    }
    if (c == '"') {
      in_string = true;
      out->push_back(c);
      ++i;
      continue;
    }
    bool matched = false;
    for (std::string_view lit : kLiterals) {
      if (json.substr(i, lit.size()) == lit) {
        // A whole token only: not followed by more of a word.
        size_t end = i + lit.size();
        if (end < json.size() &&
            (std::isalnum(static_cast<unsigned char>(json[end])) || json[end] == '_')) {
          continue;
        }
        out->push_back('"');
        out->append(lit);
        out->push_back('"');
        i = end;
        matched = changed = true;
        break;
      }
    }
    if (!matched) {
      out->push_back(c);
      ++i;
    }
  }
  return changed;
}

std::string Base64Encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(data[i]) << 16 | static_cast<uint8_t>(data[i + 1]) << 8 |
                 static_cast<uint8_t>(data[i + 2]);
    out.push_back(kB64[v >> 18]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
    out.push_back(kB64[v & 63]);
  }
  if (size_t rest = data.size() - i; rest > 0) {
    uint32_t v = static_cast<uint8_t>(data[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(data[i + 1]) << 8;
    out.push_back(kB64[v >> 18]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kB64[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

bool Base64Decode(std::string_view text, std::string* out) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return false;
  out->reserve(out->size() + text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = B64Value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

}  // namespace lathe::serving::tensor_json
