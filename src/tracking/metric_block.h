// Metric points stored in blocks: the storage unit of a metric's history.
//
// A block holds the points of one (run, key) in arrival order as
// concatenated *segments* (one per LogBatch that wrote them), each
//   varint count, then per point: zigzag-varint step delta, zigzag-varint
//   timestamp delta (from the previous point of the segment, starting at 0),
//   8 bytes of the IEEE double (little endian; NaN and ±Inf as they are)
// so two blocks merge by concatenating their bytes (no re-encoding), and
// the whole is stored as base64 text (PostgreSQL text holds no NUL bytes;
// one format for both drivers). About 10-12 bytes per point before base64.
//
// Beside the bytes each block row carries a Summary (count, step range, the
// min, max and last point) so that downsampling reads summaries, not points.
// Pure functions; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tracking/tracking.h"

namespace lathe::tracking {

struct Point {
  int64_t step = 0;
  int64_t timestamp = 0;
  double value = 0;
};

// "Later" in a metric's own order: by step, then timestamp.
inline bool PointBefore(const Point& a, const Point& b) {
  return a.step != b.step ? a.step < b.step : a.timestamp < b.timestamp;
}

struct BlockSummary {
  int64_t count = 0;
  int64_t min_step = 0, max_step = 0;
  // The smallest and largest non-NaN values with where they were logged;
  // has_min_max is false when every value is NaN.
  bool has_min_max = false;
  Point min, max;
  // The last point by (step, timestamp); ties go to the later arrival.
  Point last;
};

// Appends one segment holding `points` to `bytes` (raw, not base64).
void AppendSegment(const std::vector<Point>& points, std::string* bytes);
// Decodes every segment of `bytes`, appending points in arrival order.
// DATA_LOSS when the bytes are malformed.
Status DecodeSegments(std::string_view bytes, std::vector<Point>* out);

// Summary of `points` (count > 0), and the merge of two summaries where `b`
// arrived after `a`.
BlockSummary Summarize(const std::vector<Point>& points);
BlockSummary MergeSummaries(const BlockSummary& a, const BlockSummary& b);
// Folds one point into `s` (arrived after everything in s; s.count may be 0).
void AddToSummary(const Point& p, BlockSummary* s);

// Standard base64 with padding.
std::string Base64Encode(std::string_view bytes);
bool Base64Decode(std::string_view text, std::string* out);

}  // namespace lathe::tracking
