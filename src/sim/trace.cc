#include "sim/trace.h"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

namespace lathe::sim {
namespace {

constexpr size_t kMaxSkippedExamples = 5;

// A row-level error: the column it is about and a message.
struct RowError {
  std::string column;
  std::string message;
};

// Splits one CSV line into fields. Double-quoted fields may hold commas and
// "" for a quote; none of the supported traces needs more.
std::vector<std::string> SplitCsvLine(std::string_view line) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else {
      field += c;
    }
  }
  fields.push_back(std::move(field));
  return fields;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A CSV table with named columns, read row by row.
class CsvRows {
 public:
  using RowFn = std::function<bool(int64_t line, const std::vector<std::string>& fields)>;

  // Parses the header; `required` columns must all be present.
  static StatusOr<CsvRows> Make(std::string_view text, std::string_view file,
                                const std::vector<std::string>& required) {
    CsvRows rows(text, file);
    std::string_view header;
    if (!rows.NextLine(&header)) {
      return InvalidArgumentError(fmt::format("{}: empty file, expected a header line", file));
    }
    std::vector<std::string> names = SplitCsvLine(header);
    for (size_t i = 0; i < names.size(); ++i) {
      rows.index_[std::string(Trim(names[i]))] = static_cast<int>(i);
    }
    for (const std::string& r : required) {
      if (!rows.index_.count(r)) {
        return InvalidArgumentError(
            fmt::format("{}:1: header: missing column \"{}\"", file, r), r);
      }
    }
    rows.columns_ = static_cast<int>(names.size());
    return rows;
  }

  int Column(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? -1 : it->second;
  }

  // Calls `fn` for every non-empty data line until it returns false.
  void ForEach(const RowFn& fn) {
    std::string_view line;
    while (NextLine(&line)) {
      if (Trim(line).empty()) continue;
      if (!fn(line_, SplitCsvLine(line))) return;
    }
  }
  int columns() const { return columns_; }

 private:
  CsvRows(std::string_view text, std::string_view file) : text_(text), file_(file) {}
  bool NextLine(std::string_view* line) {
    if (pos_ >= text_.size()) return false;
    size_t end = text_.find('\n', pos_);
    if (end == std::string_view::npos) end = text_.size();
    *line = text_.substr(pos_, end - pos_);
    if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
    pos_ = end + 1;
    ++line_;
    return true;
  }

  std::string_view text_;
  std::string_view file_;
  size_t pos_ = 0;
  int64_t line_ = 0;
  int columns_ = 0;
  std::map<std::string, int> index_;
};

// Field accessors that fill a RowError naming the column.
class RowReader {
 public:
  RowReader(const CsvRows& rows, const std::vector<std::string>& fields)
      : rows_(rows), fields_(fields) {}

  bool Has(const std::string& column) const {
    int i = rows_.Column(column);
    return i >= 0 && i < static_cast<int>(fields_.size()) && !Trim(fields_[i]).empty();
  }
  std::string Str(const std::string& column) const {
    int i = rows_.Column(column);
    if (i < 0 || i >= static_cast<int>(fields_.size())) return "";
    return std::string(Trim(fields_[i]));
  }
  bool Double(const std::string& column, double* out, RowError* err) const {
    std::string s = Str(column);
    if (s.empty()) return Fail(column, "missing value", err);
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v)) {
      return Fail(column, fmt::format("\"{}\" is not a number", s), err);
    }
    *out = v;
    return true;
  }
  // An integer; "12.0" is accepted (several traces write integers as floats).
  bool Int(const std::string& column, int64_t* out, RowError* err) const {
    double v = 0;
    if (!Double(column, &v, err)) return false;
    if (v != std::floor(v) || std::fabs(v) > 9e15) {
      return Fail(column, fmt::format("\"{}\" is not an integer", Str(column)), err);
    }
    *out = static_cast<int64_t>(v);
    return true;
  }
  bool NonNegativeInt(const std::string& column, int64_t* out, RowError* err) const {
    if (!Int(column, out, err)) return false;
    if (*out < 0) return Fail(column, fmt::format("{} is negative", *out), err);
    return true;
  }
  static bool Fail(const std::string& column, std::string message, RowError* err) {
    err->column = column;
    err->message = std::move(message);
    return false;
  }

 private:
  const CsvRows& rows_;
  const std::vector<std::string>& fields_;
};

// Drives one CSV table: `parse_row` turns a row into zero or one job or
// returns false with a RowError. Applies the bad-row policy.
using ParseRowFn =
    std::function<bool(const RowReader& row, int64_t line, TraceJob* job, RowError* err)>;

Status ParseRows(std::string_view text, std::string_view file, const std::vector<std::string>& required,
                 const ReadOptions& options, const ParseRowFn& parse_row, Trace* trace) {
  ASSIGN_OR_RETURN(CsvRows rows, CsvRows::Make(text, file, required));
  Status status;
  rows.ForEach([&](int64_t line, const std::vector<std::string>& fields) {
    ++trace->rows;
    RowReader row(rows, fields);
    TraceJob job;
    RowError err;
    bool ok = true;
    if (static_cast<int>(fields.size()) != rows.columns()) {
      err = {"row", fmt::format("{} fields, the header has {}", fields.size(), rows.columns())};
      ok = false;
    } else {
      ok = parse_row(row, line, &job, &err);
    }
    if (ok) {
      trace->jobs.push_back(std::move(job));
      return true;
    }
    std::string message = fmt::format("{}:{}: {}: {}", file, line, err.column, err.message);
    if (options.on_bad_row == BadRowPolicy::kAbort) {
      status = InvalidArgumentError(message + " (use --on-bad-row skip to skip bad rows)",
                                    err.column);
      return false;
    }
    ++trace->skipped_rows;
    if (trace->skipped_examples.size() < kMaxSkippedExamples) {
      trace->skipped_examples.push_back(std::move(message));
    }
    return true;
  });
  return status;
}

// Shifts submit times to start at 0 and sorts by (submit time, input order).
void Normalize(Trace* trace) {
  if (trace->jobs.empty()) return;
  int64_t first = trace->jobs[0].submit_time;
  for (const TraceJob& j : trace->jobs) first = std::min(first, j.submit_time);
  for (TraceJob& j : trace->jobs) j.submit_time -= first;
  std::stable_sort(trace->jobs.begin(), trace->jobs.end(),
                   [](const TraceJob& a, const TraceJob& b) { return a.submit_time < b.submit_time; });
}

// "YYYY-MM-DD HH:MM:SS" (UTC) as seconds since the epoch.
bool ParseTimestamp(std::string_view s, int64_t* out) {
  int y, mo, d, h, mi, sec;
  char tail;
  std::string str(s);
  if (std::sscanf(str.c_str(), "%4d-%2d-%2d %2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &sec, &tail) != 6) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || h < 0 || mi < 0 ||
      sec < 0) {
    return false;
  }
  // Days from civil (Howard Hinnant's algorithm), no time zone involved.
  int64_t yy = y - (mo <= 2);
  int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
  int64_t yoe = yy - era * 400;
  int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = era * 146097 + doe - 719468;
  *out = days * 86400 + h * 3600 + mi * 60 + sec;
  return true;
}

int64_t RoundDuration(double seconds) { return std::max<int64_t>(1, std::llround(seconds)); }

bool ParsePhillyRow(const RowReader& row, int64_t line, TraceJob* job, RowError* err) {
  std::string ts = row.Str("timestamp");
  if (!ParseTimestamp(ts, &job->submit_time)) {
    return RowReader::Fail("timestamp",
                           fmt::format("\"{}\" is not a YYYY-MM-DD HH:MM:SS time", ts), err);
  }
  double duration = 0;
  if (!row.Double("duration", &duration, err)) return false;
  if (duration < 0) return RowReader::Fail("duration", fmt::format("{} is negative", duration), err);
  int64_t gpus = 0;
  if (!row.Int("num_gpus", &gpus, err)) return false;
  if (gpus < 1 || gpus > 100000) {
    return RowReader::Fail("num_gpus", fmt::format("{} is not a GPU count >= 1", gpus), err);
  }
  std::string vc = row.Str("cluster");
  if (vc.empty()) return RowReader::Fail("cluster", "missing value", err);
  int tasks = static_cast<int>((gpus + kPhillyGpusPerTask - 1) / kPhillyGpusPerTask);
  if (gpus % tasks != 0) tasks = static_cast<int>(gpus);  // no even split: one GPU per task
  int64_t per_task = gpus / tasks;
  job->id = fmt::format("philly-{}", line);
  job->queue = vc;
  job->duration = RoundDuration(duration);
  job->tasks = tasks;
  job->request = {per_task * kPhillyCpuPerGpu, per_task * kPhillyMemPerGpu, per_task * 1000};
  return true;
}

bool ParseOpenbRow(const RowReader& row, int64_t /*line*/, TraceJob* job, RowError* err) {
  job->id = row.Str("name");
  if (job->id.empty()) return RowReader::Fail("name", "missing value", err);
  int64_t cpu = 0, mem = 0, num_gpu = 0, gpu_milli = 0, created = 0, deleted = 0;
  if (!row.NonNegativeInt("cpu_milli", &cpu, err) || !row.NonNegativeInt("memory_mib", &mem, err) ||
      !row.NonNegativeInt("num_gpu", &num_gpu, err) ||
      !row.NonNegativeInt("creation_time", &created, err) ||
      !row.NonNegativeInt("deletion_time", &deleted, err)) {
    return false;
  }
  if (row.Has("gpu_milli") && !row.NonNegativeInt("gpu_milli", &gpu_milli, err)) return false;
  int64_t start = created;
  if (row.Has("scheduled_time") && !row.NonNegativeInt("scheduled_time", &start, err)) return false;
  if (num_gpu > 1 && gpu_milli != 0 && gpu_milli != 1000) {
    return RowReader::Fail("gpu_milli",
                           fmt::format("{} with num_gpu {}: only one GPU may be shared", gpu_milli,
                                       num_gpu),
                           err);
  }
  if (num_gpu == 1 && (gpu_milli <= 0 || gpu_milli > 1000)) {
    return RowReader::Fail("gpu_milli", fmt::format("{} is not in 1..1000", gpu_milli), err);
  }
  if (deleted < created) {
    return RowReader::Fail("deletion_time",
                           fmt::format("{} is before creation_time {}", deleted, created), err);
  }
  job->submit_time = created;
  // Running time as observed; a pod never scheduled runs for its lifetime.
  job->duration = std::max<int64_t>(1, deleted - std::max(start, created));
  job->queue = row.Str("qos").empty() ? "default" : row.Str("qos");
  job->request = {cpu, mem, num_gpu == 1 ? gpu_milli : num_gpu * 1000};
  // A list of admissible models ("V100M16|V100M32") cannot be expressed as one
  // model constraint; such pods run on any model (docs/sim.md).
  std::string spec = row.Str("gpu_spec");
  if (spec.find('|') == std::string::npos) job->gpu_model = spec;
  return true;
}

bool ParseCsvRow(const RowReader& row, int64_t /*line*/, TraceJob* job, RowError* err) {
  job->id = row.Str("id");
  if (job->id.empty()) return RowReader::Fail("id", "missing value", err);
  int64_t duration = 0, tasks = 1, cpu = 0, mem = 0, gpu = 0, min_available = 0;
  if (!row.NonNegativeInt("submit_time", &job->submit_time, err) ||
      !row.NonNegativeInt("duration", &duration, err) ||
      !row.NonNegativeInt("cpu_milli", &cpu, err) || !row.NonNegativeInt("memory_mib", &mem, err) ||
      !row.NonNegativeInt("gpu_milli", &gpu, err)) {
    return false;
  }
  if (row.Has("priority") && !row.Int("priority", &job->priority, err)) return false;
  if (row.Has("tasks") && !row.NonNegativeInt("tasks", &tasks, err)) return false;
  if (tasks < 1 || tasks > 100000) {
    return RowReader::Fail("tasks", fmt::format("{} is not in 1..100000", tasks), err);
  }
  if (row.Has("min_available") && !row.NonNegativeInt("min_available", &min_available, err)) {
    return false;
  }
  if (min_available > tasks) {
    return RowReader::Fail("min_available",
                           fmt::format("{} is more than tasks ({})", min_available, tasks), err);
  }
  if (gpu >= 1000 ? gpu % 1000 != 0 : false) {
    return RowReader::Fail(
        "gpu_milli", fmt::format("{} is neither a fraction (< 1000) nor whole GPUs", gpu), err);
  }
  job->duration = std::max<int64_t>(1, duration);
  job->queue = row.Str("queue").empty() ? "default" : row.Str("queue");
  job->tasks = static_cast<int>(tasks);
  job->min_available = static_cast<int>(min_available);
  job->request = {cpu, mem, gpu};
  job->gpu_model = row.Str("gpu_model");
  return true;
}

}  // namespace

StatusOr<TraceFormat> ParseTraceFormat(std::string_view name) {
  if (name == "philly") return TraceFormat::kPhilly;
  if (name == "openb") return TraceFormat::kOpenb;
  if (name == "csv") return TraceFormat::kCsv;
  return InvalidArgumentError(
      fmt::format("format: unknown trace format \"{}\" (philly, openb or csv)", name), "format");
}

StatusOr<Trace> ParseTrace(TraceFormat format, std::string_view text, std::string_view file_name,
                           const ReadOptions& options) {
  Trace trace;
  trace.source = std::string(file_name);
  switch (format) {
    case TraceFormat::kPhilly:
      RETURN_IF_ERROR(ParseRows(text, file_name, {"timestamp", "duration", "num_gpus", "cluster"},
                                options, ParsePhillyRow, &trace));
      break;
    case TraceFormat::kOpenb:
      RETURN_IF_ERROR(ParseRows(text, file_name,
                                {"name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli",
                                 "creation_time", "deletion_time"},
                                options, ParseOpenbRow, &trace));
      break;
    case TraceFormat::kCsv:
      RETURN_IF_ERROR(ParseRows(text, file_name,
                                {"id", "submit_time", "duration", "cpu_milli", "memory_mib",
                                 "gpu_milli"},
                                options, ParseCsvRow, &trace));
      break;
  }
  Normalize(&trace);
  return trace;
}

StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(fmt::format("{}: cannot open file", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

StatusOr<Trace> ReadTrace(TraceFormat format, const std::string& path, const ReadOptions& options) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ParseTrace(format, text, path, options);
}

StatusOr<std::vector<sched::Node>> ParseOpenbNodes(std::string_view text,
                                                   std::string_view file_name,
                                                   const ReadOptions& options,
                                                   int64_t* skipped) {
  // Reuse the row driver: a node travels as a TraceJob whose request is its
  // capacity and whose tasks field is its GPU count.
  Trace scratch;
  auto parse = [](const RowReader& row, int64_t, TraceJob* out, RowError* err) {
    out->id = row.Str("sn");
    if (out->id.empty()) return RowReader::Fail("sn", "missing value", err);
    int64_t cpu = 0, mem = 0, gpus = 0;
    if (!row.NonNegativeInt("cpu_milli", &cpu, err) || !row.NonNegativeInt("memory_mib", &mem, err) ||
        !row.NonNegativeInt("gpu", &gpus, err)) {
      return false;
    }
    if (gpus > 1024) return RowReader::Fail("gpu", fmt::format("{} GPUs is too many", gpus), err);
    out->tasks = static_cast<int>(gpus);
    out->request = {cpu, mem, gpus * 1000};
    out->gpu_model = row.Str("model");
    return true;
  };
  RETURN_IF_ERROR(ParseRows(text, file_name, {"sn", "cpu_milli", "memory_mib", "gpu"}, options,
                            parse, &scratch));
  if (skipped != nullptr) *skipped = scratch.skipped_rows;
  std::vector<sched::Node> nodes;
  nodes.reserve(scratch.jobs.size());
  for (TraceJob& j : scratch.jobs) {
    sched::Node n;
    n.name = std::move(j.id);
    n.capacity = j.request;
    n.num_gpus = j.tasks;
    n.gpu_model = j.tasks > 0 ? j.gpu_model : "";
    nodes.push_back(std::move(n));
  }
  return nodes;
}

StatusOr<std::vector<sched::Node>> ReadOpenbNodes(const std::string& path,
                                                  const ReadOptions& options, int64_t* skipped) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ParseOpenbNodes(text, path, options, skipped);
}

}  // namespace lathe::sim
