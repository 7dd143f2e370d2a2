#include "tracking/metric_block.h"

#include <cmath>
#include <cstring>

namespace lathe::tracking {
namespace {

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(const unsigned char*& p, const unsigned char* end, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    uint64_t byte = *p++;
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

struct DecodeTable {
  int8_t v[256];
  DecodeTable() {
    std::memset(v, -1, sizeof(v));
    for (int i = 0; i < 64; ++i) v[static_cast<unsigned char>(kB64[i])] = static_cast<int8_t>(i);
  }
};
const DecodeTable kDecode;

}  // namespace

void AppendSegment(const std::vector<Point>& points, std::string* bytes) {
  bytes->reserve(bytes->size() + 4 + points.size() * 12);
  PutVarint(points.size(), bytes);
  int64_t prev_step = 0, prev_ts = 0;
  for (const Point& p : points) {
    // Deltas wrap in unsigned arithmetic, so extreme values round-trip.
    PutVarint(ZigZag(static_cast<int64_t>(static_cast<uint64_t>(p.step) - static_cast<uint64_t>(prev_step))),
              bytes);
    PutVarint(ZigZag(static_cast<int64_t>(static_cast<uint64_t>(p.timestamp) -
                                          static_cast<uint64_t>(prev_ts))),
              bytes);
    char raw[8];
    std::memcpy(raw, &p.value, 8);  // little-endian hosts only (x86-64, aarch64)
    bytes->append(raw, 8);
    prev_step = p.step;
    prev_ts = p.timestamp;
  }
}

Status DecodeSegments(std::string_view bytes, std::vector<Point>* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const auto* end = p + bytes.size();
  while (p < end) {
    uint64_t n = 0;
    if (!GetVarint(p, end, &n) || n > bytes.size()) return DataLossError("metric block: bad count");
    out->reserve(out->size() + n);
    uint64_t step = 0, ts = 0;
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t ds = 0, dt = 0;
      if (!GetVarint(p, end, &ds) || !GetVarint(p, end, &dt) || end - p < 8) {
        return DataLossError("metric block: truncated point");
      }
      step += static_cast<uint64_t>(UnZigZag(ds));
      ts += static_cast<uint64_t>(UnZigZag(dt));
      Point pt;
      pt.step = static_cast<int64_t>(step);
      pt.timestamp = static_cast<int64_t>(ts);
      std::memcpy(&pt.value, p, 8);
      p += 8;
      out->push_back(pt);
    }
  }
  return OkStatus();
}

void AddToSummary(const Point& p, BlockSummary* s) {
  if (s->count == 0) {
    s->min_step = s->max_step = p.step;
    s->last = p;
  } else {
    s->min_step = std::min(s->min_step, p.step);
    s->max_step = std::max(s->max_step, p.step);
    if (!PointBefore(p, s->last)) s->last = p;
  }
  ++s->count;
  if (!std::isnan(p.value)) {
    if (!s->has_min_max) {
      s->has_min_max = true;
      s->min = s->max = p;
    } else {
      if (p.value < s->min.value) s->min = p;
      if (p.value > s->max.value) s->max = p;
    }
  }
}

BlockSummary Summarize(const std::vector<Point>& points) {
  BlockSummary s;
  for (const Point& p : points) AddToSummary(p, &s);
  return s;
}

BlockSummary MergeSummaries(const BlockSummary& a, const BlockSummary& b) {
  if (a.count == 0) return b;
  if (b.count == 0) return a;
  BlockSummary s = a;
  s.count += b.count;
  s.min_step = std::min(a.min_step, b.min_step);
  s.max_step = std::max(a.max_step, b.max_step);
  if (!PointBefore(b.last, a.last)) s.last = b.last;
  if (b.has_min_max) {
    if (!s.has_min_max) {
      s.has_min_max = true;
      s.min = b.min;
      s.max = b.max;
    } else {
      if (b.min.value < s.min.value) s.min = b.min;
      if (b.max.value > s.max.value) s.max = b.max;
    }
  }
  return s;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.resize((bytes.size() + 2) / 3 * 4);
  const auto* in = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size(), i = 0, o = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    out[o++] = kB64[v >> 18];
    out[o++] = kB64[(v >> 12) & 63];
    out[o++] = kB64[(v >> 6) & 63];
    out[o++] = kB64[v & 63];
  }
  if (i < n) {
    uint32_t v = uint32_t{in[i]} << 16;
    if (i + 1 < n) v |= uint32_t{in[i + 1]} << 8;
    out[o++] = kB64[v >> 18];
    out[o++] = kB64[(v >> 12) & 63];
    out[o++] = i + 1 < n ? kB64[(v >> 6) & 63] : '=';
    out[o++] = '=';
  }
  return out;
}

bool Base64Decode(std::string_view text, std::string* out) {
  out->clear();
  if (text.size() % 4 != 0) return false;
  if (text.empty()) return true;
  const auto* in = reinterpret_cast<const unsigned char*>(text.data());
  size_t pad = (in[text.size() - 1] == '=') + (in[text.size() - 2] == '=');
  out->resize(text.size() / 4 * 3 - pad);
  char* o = out->data();
  const size_t full = (text.size() - (pad ? 4 : 0)) / 4;
  // Four 6-bit values per step; a negative table entry anywhere marks bad input.
  int bad = 0;
  for (size_t q = 0; q < full; ++q) {
    const unsigned char* c = in + q * 4;
    int a = kDecode.v[c[0]], b = kDecode.v[c[1]], d2 = kDecode.v[c[2]], d3 = kDecode.v[c[3]];
    bad |= a | b | d2 | d3;
    uint32_t v = (uint32_t(a) << 18) | (uint32_t(b) << 12) | (uint32_t(d2) << 6) | uint32_t(d3);
    o[0] = static_cast<char>(v >> 16);
    o[1] = static_cast<char>(v >> 8);
    o[2] = static_cast<char>(v);
    o += 3;
  }
  if (bad < 0) return false;
  if (pad) {
    const unsigned char* c = in + full * 4;
    int a = kDecode.v[c[0]], b = kDecode.v[c[1]];
    int d2 = pad == 1 ? kDecode.v[c[2]] : 0;
    if (a < 0 || b < 0 || d2 < 0 || (pad == 2 && c[2] != '=')) return false;
    uint32_t v = (uint32_t(a) << 18) | (uint32_t(b) << 12) | (uint32_t(d2) << 6);
    o[0] = static_cast<char>(v >> 16);
    if (pad == 1) o[1] = static_cast<char>(v >> 8);
  }
  return true;
}

}  // namespace lathe::tracking
