// What the native tracking routes (tracking_handlers.cc) and the MLflow
// routes (mlflow_handlers.cc) share: the metric-ingest body decoder, which
// reads simdjson's DOM straight into tracking::Metric vectors (no JsonValue
// tree: a 1,000-point batch is the hot path of issue 5), and the small
// value encodings both wire formats use.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "tracking/tracking.h"

namespace lathe::api {

// The shapes of a metric-logging body.
enum class LogBodyFormat {
  // Native POST …/runs/{id}/log: {metrics?: [{key, value, step?, timestamp?}],
  // params?: {k: v}, tags?: {k: v}}; unknown fields are errors.
  kNative,
  // MLflow runs/log-batch: {run_id|run_uuid, metrics: [{key, value,
  // timestamp, step}], params: [{key, value}], tags: [{key, value}]};
  // unknown fields ignored (3.x clients add model_id, dataset_name, …).
  kMlflowBatch,
  // MLflow runs/log-metric: {run_id|run_uuid, key, value, timestamp, step}.
  kMlflowMetric,
};

struct LogBody {
  std::string run_id;  // MLflow formats: run_id, else run_uuid; "" when absent
  std::vector<tracking::Metric> metrics;
  std::vector<tracking::Param> params;
  std::vector<tracking::Tag> tags;
};

// Decodes `body`. Metric values are numbers or "NaN", "Infinity",
// "-Infinity" (also "Inf", "-Inf", case-insensitive); integers (timestamps,
// steps) may also be decimal strings, as protobuf's JSON allows. A missing
// timestamp is `now_ms`, a missing step 0. MLflow formats accept a body
// that is a JSON string holding the JSON (old clients). Errors are
// INVALID_ARGUMENT naming the field ("metrics[3].value"). Thread-safe (one
// parser per thread); costs one pass over the bytes plus one allocation
// per key or value longer than the small-string buffer.
StatusOr<LogBody> DecodeLogBody(std::string_view body, LogBodyFormat format, int64_t now_ms);

// A metric value: a JSON number, or "NaN", "Infinity", "-Infinity".
void WriteMetricValue(JsonWriter& w, double value);

// "active" / "deleted".
std::string_view LifecycleName(tracking::Lifecycle l);

// Milliseconds since the epoch from RFC 3339 ("2026-11-23T01:07:22.123Z",
// "…+01:00"); INVALID_ARGUMENT naming `field` otherwise.
StatusOr<int64_t> ParseRfc3339Millis(std::string_view text, std::string_view field);

}  // namespace lathe::api
