// TrackingService over the store. Layout (schema.cc, migration 3):
//   experiments, experiment_tags, tracking_counters (experiment ids)
//   tracking_runs, run_params, run_tags
//   run_metrics     the latest point per (run, key) + block bookkeeping
//   metric_blocks   the history: blocks of points per (run, key) with summaries
//   metric_batches  digests of logged metric batches (replay dedupe)
// LogBatch goes through the GroupCommitter; everything else runs one
// transaction per call. Times are MLflow's milliseconds.
#include "tracking/tracking.h"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "base/crypto.h"
#include "base/json.h"
#include "tracking/group_commit.h"
#include "tracking/metric_block.h"
#include "tracking/search.h"

namespace lathe::tracking {

using store::AsDouble;
using store::AsInt;
using store::AsText;
using store::Placeholders;
using store::IsNull;
using store::ResultSet;
using store::Tx;
using store::TxMode;
using store::Value;
using tenancy::Role;

namespace {

// Limits (protocols.md §5.7).
constexpr size_t kMaxBatchMetrics = 1000;
constexpr size_t kMaxBatchParams = 100;
constexpr size_t kMaxBatchTags = 100;
constexpr size_t kMaxBatchEntities = 1000;
constexpr size_t kMaxParamValue = 6000;
constexpr size_t kMaxTagValue = 8000;
constexpr size_t kMaxKey = 250;
constexpr size_t kMaxExperimentName = 500;
constexpr size_t kMaxExperimentTagKey = 250;
constexpr size_t kMaxExperimentTagValue = 5000;
constexpr int64_t kMaxSearchResults = 50000;
constexpr int64_t kMaxHistoryPage = 25000;
constexpr int64_t kMaxHistoryPoints = 10000;
constexpr size_t kMaxRunName = 500;
constexpr size_t kMaxDatasetName = 500;
constexpr size_t kMaxDatasetDigest = 36;
constexpr size_t kMaxDatasetSource = 65'535;
constexpr size_t kMaxDatasetSchema = (1u << 20) - 1;
constexpr size_t kMaxDatasetProfile = (16u << 20) - 1;
constexpr size_t kMaxInputsPerCall = 1000;

// Block shape: a batch's points for one key become one block (split past
// kMaxBlockPoints); small blocks at the tail of a key are merged once there
// are kMaxTailBlocks of them or kTargetBlockPoints points.
constexpr int64_t kMaxBlockPoints = 4096;
constexpr int64_t kTargetBlockPoints = 1024;
constexpr int64_t kMaxTailBlocks = 16;

constexpr std::string_view kRunNameTag = "mlflow.runName";

std::string_view LifecycleName(Lifecycle l) { return l == Lifecycle::kDeleted ? "deleted" : "active"; }
Lifecycle ParseLifecycle(std::string_view s) {
  return s == "deleted" ? Lifecycle::kDeleted : Lifecycle::kActive;
}

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// MLflow's key rule: alphanumerics, _ - . space / : ; no "..", no leading "/".
Status ValidateKey(std::string_view key, std::string_view field) {
  if (key.empty()) return InvalidArgumentError(fmt::format("{}: a key is required", field), std::string(field));
  if (key.size() > kMaxKey) {
    return InvalidArgumentError(
        fmt::format("{}: key \"{}…\" is longer than the limit of {} characters", field,
                    key.substr(0, 40), kMaxKey),
        std::string(field));
  }
  for (char c : key) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
          c == ' ' || c == '/' || c == ':')) {
      return InvalidArgumentError(
          fmt::format("{}: key \"{}\" may only contain alphanumerics, underscores (_), dashes (-), "
                      "periods (.), spaces ( ), colons (:) and slashes (/)",
                      field, key),
          std::string(field));
    }
  }
  if (key.find("..") != std::string_view::npos || key.front() == '/') {
    return InvalidArgumentError(
        fmt::format("{}: key \"{}\" is not a valid relative path (no '..', no leading '/')", field, key),
        std::string(field));
  }
  return OkStatus();
}

Status ValidateValue(std::string_view value, size_t limit, std::string_view field) {
  if (value.size() > limit) {
    return InvalidArgumentError(fmt::format("{}: value of {} characters exceeds the limit of {}",
                                            field, value.size(), limit),
                                std::string(field));
  }
  if (HasNul(value)) {
    return InvalidArgumentError(fmt::format("{}: value contains a NUL character", field),
                                std::string(field));
  }
  return OkStatus();
}

// A data set input's fields against MLflow's limits; `field` prefixes
// errors ("datasets[2]").
Status ValidateDatasetInput(const DatasetInput& in, const std::string& field) {
  const Dataset& d = in.dataset;
  struct Check {
    const char* name;
    const std::string& value;
    size_t limit;
    bool required;
  };
  const Check checks[] = {{"name", d.name, kMaxDatasetName, true},
                          {"digest", d.digest, kMaxDatasetDigest, true},
                          {"source_type", d.source_type, kMaxDatasetName, true},
                          {"source", d.source, kMaxDatasetSource, true},
                          {"schema", d.schema, kMaxDatasetSchema, false},
                          {"profile", d.profile, kMaxDatasetProfile, false}};
  for (const Check& c : checks) {
    const std::string f = fmt::format("{}.dataset.{}", field, c.name);
    if (c.required && c.value.empty()) {
      return InvalidArgumentError(fmt::format("{}: a value is required", f), f);
    }
    RETURN_IF_ERROR(ValidateValue(c.value, c.limit, f));
  }
  for (size_t i = 0; i < in.tags.size(); ++i) {
    const std::string f = fmt::format("{}.tags[{}]", field, i);
    RETURN_IF_ERROR(ValidateKey(in.tags[i].key, f + ".key"));
    RETURN_IF_ERROR(ValidateValue(in.tags[i].value, kMaxTagValue, f + ".value"));
  }
  return OkStatus();
}

// Input tags are stored as a JSON array of [key, value] pairs.
std::string EncodeInputTags(const std::vector<Tag>& tags) {
  std::string out;
  JsonWriter w(&out);
  w.BeginArray();
  for (const Tag& t : tags) w.BeginArray().String(t.key).String(t.value).EndArray();
  w.EndArray();
  return out;
}

StatusOr<std::vector<Tag>> DecodeInputTags(const std::string& text) {
  ASSIGN_OR_RETURN(JsonValue v, ParseJson(text));
  std::vector<Tag> tags;
  if (!v.is_array()) return DataLossError("run_inputs.tags: not a JSON array");
  for (const JsonValue& pair : v.items()) {
    if (!pair.is_array() || pair.items().size() != 2 || !pair.items()[0].is_string() ||
        !pair.items()[1].is_string()) {
      return DataLossError("run_inputs.tags: not an array of [key, value] pairs");
    }
    tags.push_back({pair.items()[0].as_string(), pair.items()[1].as_string()});
  }
  return tags;
}

StatusOr<int64_t> ParseExperimentId(std::string_view id, std::string_view field = "experiment_id") {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), v);
  if (id.empty() || ec != std::errc() || end != id.data() + id.size() || v < 0) {
    return InvalidArgumentError(fmt::format("{}: \"{}\" is not an experiment id", field, id),
                                std::string(field));
  }
  return v;
}

Status ExperimentNotFound(std::string_view id) {
  return NotFoundError(fmt::format("experiment \"{}\" not found", id));
}
Status RunNotFound(std::string_view id) { return NotFoundError(fmt::format("run \"{}\" not found", id)); }

// A 128-bit digest of a metric batch: two independent 64-bit multiply-mix
// lanes over 8-byte words (stable across builds: it is stored).
struct Digest {
  uint64_t a = 0x243f6a8885a308d3ULL, b = 0x13198a2e03707344ULL;
  static uint64_t Mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
  }
  void Word(uint64_t w) {
    a = Mix(a ^ w) + 0x9e3779b97f4a7c15ULL;
    b = Mix(b + w * 0x100000001b3ULL) ^ a;
  }
  void Bytes(std::string_view s) {
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      Word(w);
    }
    uint64_t w = 0;
    std::memcpy(&w, s.data() + i, s.size() - i);
    Word(w ^ (uint64_t{s.size()} << 56));
  }
  std::string Hex() const { return fmt::format("{:016x}{:016x}", a, b); }
};

std::string BatchDigest(const std::vector<Metric>& metrics) {
  Digest d;
  const std::string* last_key = nullptr;
  for (const Metric& m : metrics) {
    if (last_key == nullptr || *last_key != m.key) d.Bytes(m.key);
    d.Word(0x6b6579ULL);  // a point separator, so key runs cannot alias
    last_key = &m.key;
    uint64_t bits;
    std::memcpy(&bits, &m.value, 8);
    d.Word(bits);
    d.Word(static_cast<uint64_t>(m.timestamp));
    d.Word(static_cast<uint64_t>(m.step));
  }
  return d.Hex();
}

// MLflow's order for "latest": (step, timestamp, value); NaN sorts lowest.
bool MetricLess(const Metric& a, const Metric& b) {
  if (a.step != b.step) return a.step < b.step;
  if (a.timestamp != b.timestamp) return a.timestamp < b.timestamp;
  if (std::isnan(a.value)) return !std::isnan(b.value);
  if (std::isnan(b.value)) return false;
  return a.value < b.value;
}

Value DoubleOrNull(double v) { return std::isnan(v) ? store::Null() : Value(v); }
double DoubleOrNaN(const Value& v) {
  return IsNull(v) ? std::numeric_limits<double>::quiet_NaN() : AsDouble(v);
}

constexpr const char* kAdjectives[] = {
    "able",   "amber",  "bold",   "brave",  "bright", "calm",   "clever", "crisp",  "dapper",
    "eager",  "fair",   "fast",   "gentle", "glad",   "grand",  "keen",   "kind",   "lively",
    "lucky",  "merry",  "mighty", "nimble", "noble",  "proud",  "quick",  "quiet",  "rare",
    "silent", "sleek",  "smooth", "snappy", "solid",  "stable", "sunny",  "swift",  "tidy",
    "vivid",  "warm",   "wise",   "zesty"};
constexpr const char* kNouns[] = {
    "ant",    "bear",   "bee",    "crane",  "crow",   "deer",   "dove",   "eagle",  "eel",
    "finch",  "fox",    "frog",   "goat",   "hare",   "hawk",   "heron",  "horse",  "ibis",
    "koala",  "lark",   "lion",   "lynx",   "mole",   "moth",   "newt",   "otter",  "owl",
    "panda",  "quail",  "robin",  "seal",   "shark",  "sloth",  "snail",  "swan",   "tiger",
    "trout",  "wasp",   "whale",  "wolf"};

const char* kExperimentColumns =
    "id, name, artifact_location, lifecycle, creation_time, last_update_time";
const char* kRunColumns =
    "run_id, run_name, experiment_id, user_id, status, start_time, end_time, artifact_uri, "
    "lifecycle, job_id";

RunInfo RunInfoFromRow(const std::vector<Value>& r) {
  RunInfo info;
  info.run_id = AsText(r[0]);
  info.run_name = AsText(r[1]);
  info.experiment_id = std::to_string(AsInt(r[2]));
  info.user_id = AsText(r[3]);
  info.status = ParseRunStatus(AsText(r[4])).value_or(RunStatus::kRunning);
  info.start_time = AsInt(r[5]);
  info.end_time = AsInt(r[6]);
  info.artifact_uri = AsText(r[7]);
  info.lifecycle = ParseLifecycle(AsText(r[8]));
  info.job_id = AsText(r[9]);
  return info;
}

// "o:<offset>" as an opaque token.
std::string EncodeOffsetToken(int64_t offset) { return Base64UrlEncode("o:" + std::to_string(offset)); }
StatusOr<int64_t> DecodeOffsetToken(std::string_view token) {
  if (token.empty()) return int64_t{0};
  std::string raw;
  int64_t v = -1;
  if (Base64UrlDecode(token, &raw) && raw.starts_with("o:")) {
    auto [end, ec] = std::from_chars(raw.data() + 2, raw.data() + raw.size(), v);
    if (ec != std::errc() || end != raw.data() + raw.size()) v = -1;
  }
  if (v < 0) return InvalidArgumentError("page_token: not a page token returned by this API", "page_token");
  return v;
}

// SQL for MLflow's LIKE (case-sensitive) on this driver: SQLite's LIKE
// ignores ASCII case, so case-sensitive patterns become GLOB.
std::string LikeToGlob(std::string_view like) {
  std::string out;
  for (char c : like) {
    switch (c) {
      case '%': out += '*'; break;
      case '_': out += '?'; break;
      case '*': out += "[*]"; break;
      case '?': out += "[?]"; break;
      case '[': out += "[[]"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::string RandomName(uint64_t a, uint64_t b, uint64_t c) {
  return fmt::format("{}-{}-{}", kAdjectives[a % std::size(kAdjectives)],
                     kNouns[b % std::size(kNouns)], c % 1000);
}

std::string_view RunStatusName(RunStatus s) {
  switch (s) {
    case RunStatus::kRunning: return "RUNNING";
    case RunStatus::kScheduled: return "SCHEDULED";
    case RunStatus::kFinished: return "FINISHED";
    case RunStatus::kFailed: return "FAILED";
    case RunStatus::kKilled: return "KILLED";
  }
  return "RUNNING";
}

StatusOr<RunStatus> ParseRunStatus(std::string_view s, std::string_view field) {
  for (RunStatus st : {RunStatus::kRunning, RunStatus::kScheduled, RunStatus::kFinished,
                       RunStatus::kFailed, RunStatus::kKilled}) {
    if (s == RunStatusName(st)) return st;
  }
  return InvalidArgumentError(
      fmt::format("{}: \"{}\" is not a run status (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED)",
                  field, s),
      std::string(field));
}

struct TrackingService::Impl {
  Impl(store::Store& s, tenancy::TenancyService& t, const Clock& c)
      : store(s), tenancy(t), clock(c), committer(s), postgres(s.driver() == "postgres"),
        rng(std::random_device{}()) {}

  store::Store& store;
  tenancy::TenancyService& tenancy;
  const Clock& clock;
  GroupCommitter committer;
  const bool postgres;
  std::mutex rng_mu;
  std::mt19937_64 rng;  // guarded by rng_mu

  int64_t NowMs() const { return clock.NowMicros() / 1000; }

  std::string NewRunId() {
    std::lock_guard<std::mutex> lock(rng_mu);
    return fmt::format("{:016x}{:016x}", rng(), rng());
  }
  std::string NewRunName() {
    std::lock_guard<std::mutex> lock(rng_mu);
    const uint64_t a = rng(), b = rng(), c = rng();
    return RandomName(a, b, c);
  }

  StatusOr<tenancy::Project> Authorize(const tenancy::Principal& p, const std::string& project,
                                       Role role) {
    return tenancy.AuthorizeProject(p, project, role);
  }

  // ---- experiments

  StatusOr<std::vector<Tag>> ExperimentTags(Tx& tx, int64_t id) {
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT key, value FROM experiment_tags WHERE "
                                            "experiment_id = ? ORDER BY key",
                                            {id}));
    std::vector<Tag> tags;
    for (auto& r : rs.rows) tags.push_back({AsText(r[0]), AsText(r[1])});
    return tags;
  }

  Experiment ExperimentFromRow(const std::vector<Value>& r, const std::string& project) {
    Experiment e;
    e.id = std::to_string(AsInt(r[0]));
    e.name = AsText(r[1]);
    e.project = project;
    e.artifact_location = AsText(r[2]);
    e.lifecycle = ParseLifecycle(AsText(r[3]));
    e.creation_time = AsInt(r[4]);
    e.last_update_time = AsInt(r[5]);
    return e;
  }

  // Inserts an experiment with the next id; ALREADY_EXISTS on a taken name.
  StatusOr<int64_t> InsertExperiment(Tx& tx, const std::string& project_id, const std::string& name,
                                     bool is_default, const std::vector<Tag>& tags) {
    ASSIGN_OR_RETURN(ResultSet taken, tx.Query("SELECT 1 FROM experiments WHERE project_id = ? AND "
                                               "name = ?",
                                               {project_id, name}));
    if (!taken.empty()) {
      return AlreadyExistsError(fmt::format("experiment \"{}\" already exists", name), "name");
    }
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("UPDATE tracking_counters SET value = value + 1 WHERE "
                                            "name = 'experiment' RETURNING value"));
    if (rs.empty()) return InternalError("tracking_counters has no 'experiment' row");
    int64_t id = AsInt(rs.rows[0][0]);
    int64_t now = NowMs();
    RETURN_IF_ERROR(tx.Exec("INSERT INTO experiments (id, project_id, name, artifact_location, "
                            "lifecycle, is_default, creation_time, last_update_time) VALUES "
                            "(?, ?, ?, ?, 'active', ?, ?, ?)",
                            {id, project_id, name, fmt::format("mlflow-artifacts:/{}", id),
                             int64_t{is_default ? 1 : 0}, now, now})
                        .status());
    for (const Tag& t : tags) {
      RETURN_IF_ERROR(tx.Exec("INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, "
                              "?) ON CONFLICT (experiment_id, key) DO UPDATE SET value = "
                              "excluded.value",
                              {id, t.key, t.value})
                          .status());
    }
    return id;
  }

  // The project's default experiment id, created ("Default") when missing.
  StatusOr<int64_t> DefaultExperiment(const std::string& project_id) {
    auto find = [&](Tx& tx) -> StatusOr<int64_t> {
      ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT id FROM experiments WHERE project_id = ? AND "
                                              "is_default = 1",
                                              {project_id}));
      if (rs.empty()) return int64_t{-1};
      return AsInt(rs.rows[0][0]);
    };
    int64_t id = -1;
    RETURN_IF_ERROR(store::RunInTx(store, TxMode::kRead, [&](Tx& tx) -> Status {
      ASSIGN_OR_RETURN(id, find(tx));
      return OkStatus();
    }));
    if (id >= 0) return id;
    Status st = store::RunInTx(store, TxMode::kWrite, [&](Tx& tx) -> Status {
      ASSIGN_OR_RETURN(id, find(tx));
      if (id >= 0) return OkStatus();
      // A user experiment already named "Default" becomes the default.
      ASSIGN_OR_RETURN(ResultSet named, tx.Query("SELECT id FROM experiments WHERE project_id = ? "
                                                 "AND name = 'Default'",
                                                 {project_id}));
      if (!named.empty()) {
        id = AsInt(named.rows[0][0]);
        return tx.Exec("UPDATE experiments SET is_default = 1 WHERE id = ?", {id}).status();
      }
      ASSIGN_OR_RETURN(id, InsertExperiment(tx, project_id, "Default", true, {}));
      return OkStatus();
    });
    if (st.code() == StatusCode::kAlreadyExists) {
      // Another server created it meanwhile (PostgreSQL): read it back.
      return DefaultExperiment(project_id);
    }
    RETURN_IF_ERROR(st);
    return id;
  }

  // Resolves an experiment id string ("" and "0" = the default experiment).
  StatusOr<int64_t> ResolveExperimentId(const std::string& project_id, const std::string& id,
                                        std::string_view field = "experiment_id") {
    if (id.empty() || id == "0") return DefaultExperiment(project_id);
    return ParseExperimentId(id, field);
  }

  StatusOr<Experiment> LoadExperiment(Tx& tx, const tenancy::Project& proj, int64_t id,
                                      std::string_view shown_id) {
    ASSIGN_OR_RETURN(ResultSet rs,
                     tx.Query(fmt::format("SELECT {} FROM experiments WHERE id = ? AND project_id = ?",
                                          kExperimentColumns),
                              {id, proj.id}));
    if (rs.empty()) return ExperimentNotFound(shown_id);
    Experiment e = ExperimentFromRow(rs.rows[0], proj.name);
    ASSIGN_OR_RETURN(e.tags, ExperimentTags(tx, id));
    return e;
  }

  // ---- runs

  // The run's row if it belongs to `project_id`, else NOT_FOUND.
  StatusOr<RunInfo> LoadRunInfo(Tx& tx, const std::string& project_id, const std::string& run_id) {
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query(fmt::format("SELECT {} FROM tracking_runs WHERE run_id = "
                                                        "? AND project_id = ?",
                                                        kRunColumns),
                                            {run_id, project_id}));
    if (rs.empty()) return RunNotFound(run_id);
    return RunInfoFromRow(rs.rows[0]);
  }

  Status RequireActive(const RunInfo& info) {
    if (info.lifecycle == Lifecycle::kActive) return OkStatus();
    return InvalidArgumentError(fmt::format("run \"{}\" must be in the 'active' state; it is deleted",
                                            info.run_id),
                                "run_id");
  }

  // Params, tags and latest metrics of `runs` (in place), in chunks of a
  // fixed number of placeholders so the statements stay cached.
  Status LoadRunData(Tx& tx, std::vector<Run>& runs) {
    constexpr size_t kChunk = 50;
    std::unordered_map<std::string, Run*> by_id;
    for (Run& r : runs) by_id[r.info.run_id] = &r;
    static const std::string in = Placeholders(kChunk);
    static const std::string params_sql = "SELECT run_id, key, value FROM run_params WHERE run_id IN " + in;
    static const std::string tags_sql = "SELECT run_id, key, value FROM run_tags WHERE run_id IN " + in;
    static const std::string metrics_sql =
        "SELECT run_id, key, value, timestamp, step, is_nan FROM run_metrics WHERE run_id IN " + in;
    static const std::string inputs_sql =
        "SELECT run_id, name, digest, source_type, source, dataset_schema, profile, tags FROM "
        "run_inputs WHERE run_id IN " + in + " ORDER BY run_id, seq";
    static const std::string outputs_sql =
        "SELECT run_id, model_id, step FROM run_outputs WHERE run_id IN " + in +
        " ORDER BY run_id, seq";
    for (size_t start = 0; start < runs.size(); start += kChunk) {
      std::vector<Value> ids;
      for (size_t i = start; i < start + kChunk; ++i) {
        ids.emplace_back(i < runs.size() ? runs[i].info.run_id : std::string());
      }
      ASSIGN_OR_RETURN(ResultSet ps, tx.Query(params_sql, ids));
      for (auto& r : ps.rows) by_id[AsText(r[0])]->params.push_back({AsText(r[1]), AsText(r[2])});
      ASSIGN_OR_RETURN(ResultSet ts, tx.Query(tags_sql, ids));
      for (auto& r : ts.rows) by_id[AsText(r[0])]->tags.push_back({AsText(r[1]), AsText(r[2])});
      ASSIGN_OR_RETURN(ResultSet ms, tx.Query(metrics_sql, ids));
      for (auto& r : ms.rows) {
        Metric m{AsText(r[1]), AsInt(r[5]) ? std::numeric_limits<double>::quiet_NaN() : AsDouble(r[2]),
                 AsInt(r[3]), AsInt(r[4])};
        by_id[AsText(r[0])]->latest_metrics.push_back(std::move(m));
      }
      ASSIGN_OR_RETURN(ResultSet is, tx.Query(inputs_sql, ids));
      for (auto& r : is.rows) {
        DatasetInput in{{AsText(r[1]), AsText(r[2]), AsText(r[3]), AsText(r[4]), AsText(r[5]),
                         AsText(r[6])},
                        {}};
        ASSIGN_OR_RETURN(in.tags, DecodeInputTags(AsText(r[7])));
        by_id[AsText(r[0])]->inputs.push_back(std::move(in));
      }
      ASSIGN_OR_RETURN(ResultSet os, tx.Query(outputs_sql, ids));
      for (auto& r : os.rows) by_id[AsText(r[0])]->outputs.push_back({AsText(r[1]), AsInt(r[2])});
    }
    for (Run& r : runs) {
      auto by_key = [](const auto& a, const auto& b) { return a.key < b.key; };
      std::sort(r.params.begin(), r.params.end(), by_key);
      std::sort(r.tags.begin(), r.tags.end(), by_key);
      std::sort(r.latest_metrics.begin(), r.latest_metrics.end(), by_key);
    }
    return OkStatus();
  }

  Status UpsertTag(Tx& tx, const std::string& run_id, const Tag& t) {
    RETURN_IF_ERROR(tx.Exec("INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?) ON CONFLICT "
                            "(run_id, key) DO UPDATE SET value = excluded.value",
                            {run_id, t.key, t.value})
                        .status());
    if (t.key == kRunNameTag) {
      RETURN_IF_ERROR(
          tx.Exec("UPDATE tracking_runs SET run_name = ? WHERE run_id = ?", {t.value, run_id}).status());
    }
    return OkStatus();
  }

  // ---- metrics

  // Appends `points` (arrival order) to (run, key) and maintains the
  // latest value and the block tail.
  Status AppendPoints(Tx& tx, const std::string& run_id, const std::string& key,
                      const std::vector<Point>& points) {
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT value, is_nan, timestamp, step, points, "
                                            "next_seq, tail_blocks, tail_points FROM run_metrics "
                                            "WHERE run_id = ? AND key = ?",
                                            {run_id, key}));
    bool have = !rs.empty();
    Metric latest;
    int64_t total = 0, next_seq = 0, tail_blocks = 0, tail_points = 0;
    if (have) {
      const auto& r = rs.rows[0];
      latest = Metric{key, AsInt(r[1]) ? std::numeric_limits<double>::quiet_NaN() : AsDouble(r[0]),
                      AsInt(r[2]), AsInt(r[3])};
      total = AsInt(r[4]);
      next_seq = AsInt(r[5]);
      tail_blocks = AsInt(r[6]);
      tail_points = AsInt(r[7]);
    }
    for (const Point& p : points) {
      Metric m{key, p.value, p.timestamp, p.step};
      if (!have || MetricLess(latest, m)) latest = m, have = true;
    }
    total += static_cast<int64_t>(points.size());

    for (size_t start = 0; start < points.size(); start += kMaxBlockPoints) {
      size_t end = std::min(points.size(), start + static_cast<size_t>(kMaxBlockPoints));
      std::vector<Point> chunk(points.begin() + static_cast<std::ptrdiff_t>(start),
                               points.begin() + static_cast<std::ptrdiff_t>(end));
      std::string bytes;
      AppendSegment(chunk, &bytes);
      RETURN_IF_ERROR(InsertBlock(tx, run_id, key, next_seq++, Summarize(chunk), bytes));
      int64_t n = static_cast<int64_t>(chunk.size());
      if (n >= kTargetBlockPoints) {
        tail_blocks = 0;
        tail_points = 0;
      } else {
        ++tail_blocks;
        tail_points += n;
      }
    }
    if (tail_blocks > 1 && (tail_blocks >= kMaxTailBlocks || tail_points >= kTargetBlockPoints)) {
      RETURN_IF_ERROR(MergeTail(tx, run_id, key, tail_blocks));
      if (tail_points >= kTargetBlockPoints) {
        tail_blocks = 0;
        tail_points = 0;
      } else {
        tail_blocks = 1;
      }
    }
    return tx
        .Exec("INSERT INTO run_metrics (run_id, key, value, is_nan, timestamp, step, points, "
              "next_seq, tail_blocks, tail_points) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
              "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, is_nan = "
              "excluded.is_nan, timestamp = excluded.timestamp, step = excluded.step, points = "
              "excluded.points, next_seq = excluded.next_seq, tail_blocks = excluded.tail_blocks, "
              "tail_points = excluded.tail_points",
              {run_id, key, DoubleOrNull(latest.value), int64_t{std::isnan(latest.value) ? 1 : 0},
               latest.timestamp, latest.step, total, next_seq, tail_blocks, tail_points})
        .status();
  }

  Status InsertBlock(Tx& tx, const std::string& run_id, const std::string& key, int64_t seq,
                     const BlockSummary& s, std::string_view bytes) {
    return tx
        .Exec("INSERT INTO metric_blocks (run_id, key, seq, count, min_step, max_step, min_value, "
              "min_vstep, min_vts, max_value, max_vstep, max_vts, last_value, last_ts, data) VALUES "
              "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
              {run_id, key, seq, s.count, s.min_step, s.max_step,
               s.has_min_max ? Value(s.min.value) : store::Null(), s.min.step, s.min.timestamp,
               s.has_min_max ? Value(s.max.value) : store::Null(), s.max.step, s.max.timestamp,
               DoubleOrNull(s.last.value), s.last.timestamp, Base64Encode(bytes)})
        .status();
  }

  // Merges the last `n` blocks of (run, key) into the first of them.
  Status MergeTail(Tx& tx, const std::string& run_id, const std::string& key, int64_t n) {
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT seq, count, min_step, max_step, min_value, "
                                            "min_vstep, min_vts, max_value, max_vstep, max_vts, "
                                            "last_value, last_ts, data FROM metric_blocks WHERE "
                                            "run_id = ? AND key = ? ORDER BY seq DESC LIMIT ?",
                                            {run_id, key, n}));
    if (rs.size() < 2) return OkStatus();
    std::reverse(rs.rows.begin(), rs.rows.end());
    BlockSummary merged;
    std::string bytes, raw;
    for (const auto& r : rs.rows) {
      merged = MergeSummaries(merged, SummaryFromRow(r, 1));
      if (!Base64Decode(AsText(r[12]), &raw)) return DataLossError("metric block: bad base64");
      bytes += raw;
    }
    int64_t first = AsInt(rs.rows.front()[0]);
    RETURN_IF_ERROR(tx.Exec("DELETE FROM metric_blocks WHERE run_id = ? AND key = ? AND seq > ?",
                            {run_id, key, first})
                        .status());
    RETURN_IF_ERROR(tx.Exec("DELETE FROM metric_blocks WHERE run_id = ? AND key = ? AND seq = ?",
                            {run_id, key, first})
                        .status());
    return InsertBlock(tx, run_id, key, first, merged, bytes);
  }

  // A summary from columns count, min_step, max_step, min_value, min_vstep,
  // min_vts, max_value, max_vstep, max_vts, last_value, last_ts at `at`.
  static BlockSummary SummaryFromRow(const std::vector<Value>& r, size_t at) {
    BlockSummary s;
    s.count = AsInt(r[at]);
    s.min_step = AsInt(r[at + 1]);
    s.max_step = AsInt(r[at + 2]);
    s.has_min_max = !IsNull(r[at + 3]);
    s.min = Point{AsInt(r[at + 4]), AsInt(r[at + 5]), AsDouble(r[at + 3])};
    s.max = Point{AsInt(r[at + 7]), AsInt(r[at + 8]), AsDouble(r[at + 6])};
    s.last = Point{s.max_step, AsInt(r[at + 10]), DoubleOrNaN(r[at + 9])};
    return s;
  }

  // One LogBatch inside a (shared) write transaction. Checks everything
  // before the first write (GroupCommitter's contract).
  Status ApplyBatch(Tx& tx, const std::string& project_id, const std::string& run_id,
                    const std::vector<Metric>& metrics, const std::vector<Param>& params,
                    const std::vector<Tag>& tags, const std::string& digest, int64_t now_ms) {
    ASSIGN_OR_RETURN(ResultSet run, tx.Query("SELECT lifecycle FROM tracking_runs WHERE run_id = ? "
                                             "AND project_id = ?",
                                             {run_id, project_id}));
    if (run.empty()) return RunNotFound(run_id);
    if (AsText(run.rows[0][0]) != "active") {
      return InvalidArgumentError(
          fmt::format("run \"{}\" must be in the 'active' state; it is deleted", run_id), "run_id");
    }
    std::vector<const Param*> new_params;
    for (size_t i = 0; i < params.size(); ++i) {
      const Param& p = params[i];
      ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT value FROM run_params WHERE run_id = ? AND key = ?",
                                              {run_id, p.key}));
      if (!rs.empty()) {
        if (AsText(rs.rows[0][0]) != p.value) {
          return InvalidArgumentError(
              fmt::format("params[{}]: Changing param values is not allowed. Param with key='{}' was "
                          "already logged with value='{}' for run ID='{}'. Attempted logging new "
                          "value '{}'.",
                          i, p.key, AsText(rs.rows[0][0]), run_id, p.value),
              fmt::format("params[{}]", i));
        }
        continue;
      }
      new_params.push_back(&p);
    }
    // ---- writes from here on
    for (const Param* p : new_params) {
      RETURN_IF_ERROR(tx.Exec("INSERT INTO run_params (run_id, key, value) VALUES (?, ?, ?) ON "
                              "CONFLICT (run_id, key) DO NOTHING",
                              {run_id, p->key, p->value})
                          .status());
    }
    for (const Tag& t : tags) RETURN_IF_ERROR(UpsertTag(tx, run_id, t));
    if (metrics.empty()) return OkStatus();
    ASSIGN_OR_RETURN(int64_t fresh, tx.Exec("INSERT INTO metric_batches (run_id, digest) VALUES (?, ?) "
                                            "ON CONFLICT (run_id, digest) DO NOTHING",
                                            {run_id, digest}));
    if (fresh == 0) return OkStatus();  // a replay: these points are stored already
    // Points per key in arrival order, keys in first-seen order.
    std::vector<std::pair<const std::string*, std::vector<Point>>> groups;
    std::unordered_map<std::string_view, size_t> index;
    for (const Metric& m : metrics) {
      auto [it, inserted] = index.try_emplace(m.key, groups.size());
      if (inserted) groups.emplace_back(&m.key, std::vector<Point>{});
      groups[it->second].second.push_back(
          Point{m.step, m.timestamp == 0 ? now_ms : m.timestamp, m.value});
    }
    for (auto& [key, points] : groups) RETURN_IF_ERROR(AppendPoints(tx, run_id, *key, points));
    return OkStatus();
  }

  // ---- search

  StatusOr<RunPage> SearchRuns(const tenancy::Project& proj, const RunSearch& search);
  StatusOr<History> GetHistory(const tenancy::Project& proj, const HistoryRequest& req);
};

// ---------------------------------------------------------------- experiments

TrackingService::TrackingService(store::Store& store, tenancy::TenancyService& tenancy,
                                 const Clock& clock)
    : impl_(std::make_unique<Impl>(store, tenancy, clock)) {}

TrackingService::~TrackingService() = default;

namespace {
Status ValidateExperimentName(const std::string& name, std::string_view field = "name") {
  if (name.empty()) return InvalidArgumentError(fmt::format("{}: an experiment name is required", field), std::string(field));
  if (name.size() > kMaxExperimentName) {
    return InvalidArgumentError(fmt::format("{}: experiment name of {} characters exceeds the limit of {}",
                                            field, name.size(), kMaxExperimentName),
                                std::string(field));
  }
  if (HasNul(name)) return InvalidArgumentError(fmt::format("{}: contains a NUL character", field), std::string(field));
  return OkStatus();
}

Status ValidateExperimentTag(const Tag& t, std::string_view field) {
  if (t.key.empty()) return InvalidArgumentError(fmt::format("{}: a key is required", field), std::string(field));
  if (t.key.size() > kMaxExperimentTagKey || HasNul(t.key)) {
    return InvalidArgumentError(fmt::format("{}: key is longer than the limit of {} characters", field,
                                            kMaxExperimentTagKey),
                                std::string(field));
  }
  return ValidateValue(t.value, kMaxExperimentTagValue, field);
}
}  // namespace

StatusOr<Experiment> TrackingService::CreateExperiment(const tenancy::Principal& p,
                                                       const std::string& project,
                                                       const std::string& name,
                                                       const std::vector<Tag>& tags) {
  RETURN_IF_ERROR(ValidateExperimentName(name));
  for (size_t i = 0; i < tags.size(); ++i) {
    RETURN_IF_ERROR(ValidateExperimentTag(tags[i], fmt::format("tags[{}]", i)));
  }
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  Experiment out;
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(int64_t id, impl_->InsertExperiment(tx, proj.id, name, false, tags));
    ASSIGN_OR_RETURN(out, impl_->LoadExperiment(tx, proj, id, std::to_string(id)));
    return OkStatus();
  }));
  return out;
}

StatusOr<Experiment> TrackingService::GetExperiment(const tenancy::Principal& p,
                                                    const std::string& project,
                                                    const std::string& experiment_id) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kViewer));
  ASSIGN_OR_RETURN(int64_t id, impl_->ResolveExperimentId(proj.id, experiment_id));
  Experiment out;
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(out, impl_->LoadExperiment(tx, proj, id, experiment_id));
    return OkStatus();
  }));
  return out;
}

StatusOr<Experiment> TrackingService::GetExperimentByName(const tenancy::Principal& p,
                                                          const std::string& project,
                                                          const std::string& name) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kViewer));
  if (name == "Default") RETURN_IF_ERROR(impl_->DefaultExperiment(proj.id).status());
  Experiment out;
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT id FROM experiments WHERE project_id = ? AND name = ?",
                                            {proj.id, name}));
    if (rs.empty()) {
      return NotFoundError(fmt::format("Could not find experiment with name '{}'", name));
    }
    ASSIGN_OR_RETURN(out, impl_->LoadExperiment(tx, proj, AsInt(rs.rows[0][0]), name));
    return OkStatus();
  }));
  return out;
}

StatusOr<std::vector<Experiment>> TrackingService::SearchExperiments(
    const tenancy::Principal& p, const std::string& project, ViewType view, const Page& page,
    std::string* next_page_token) {
  if (page.max_results < 1 || page.max_results > kMaxSearchResults) {
    return InvalidArgumentError(fmt::format("max_results: {} is outside 1..{}", page.max_results,
                                            kMaxSearchResults),
                                "max_results");
  }
  ASSIGN_OR_RETURN(int64_t after, DecodeOffsetToken(page.page_token));
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kViewer));
  RETURN_IF_ERROR(impl_->DefaultExperiment(proj.id).status());
  std::vector<Experiment> out;
  if (next_page_token != nullptr) next_page_token->clear();
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kRead, [&](Tx& tx) -> Status {
    out.clear();
    std::string sql = fmt::format("SELECT {} FROM experiments WHERE project_id = ?", kExperimentColumns);
    std::vector<Value> args{proj.id};
    if (view == ViewType::kActiveOnly) sql += " AND lifecycle = 'active'";
    if (view == ViewType::kDeletedOnly) sql += " AND lifecycle = 'deleted'";
    // Newest first; the token is the last id shown (ids only grow).
    if (after > 0) {
      sql += " AND id < ?";
      args.emplace_back(after);
    }
    sql += " ORDER BY id DESC LIMIT ?";
    args.emplace_back(page.max_results + 1);
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query(sql, args));
    bool more = static_cast<int64_t>(rs.size()) > page.max_results;
    if (more) rs.rows.pop_back();
    for (auto& r : rs.rows) {
      Experiment e = impl_->ExperimentFromRow(r, proj.name);
      ASSIGN_OR_RETURN(e.tags, impl_->ExperimentTags(tx, AsInt(r[0])));
      out.push_back(std::move(e));
    }
    if (more && next_page_token != nullptr) {
      *next_page_token = EncodeOffsetToken(AsInt(rs.rows.back()[0]));
    }
    return OkStatus();
  }));
  return out;
}

Status TrackingService::RenameExperiment(const tenancy::Principal& p, const std::string& project,
                                         const std::string& experiment_id,
                                         const std::string& new_name) {
  RETURN_IF_ERROR(ValidateExperimentName(new_name, "new_name"));
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  ASSIGN_OR_RETURN(int64_t id, impl_->ResolveExperimentId(proj.id, experiment_id));
  return store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Experiment e, impl_->LoadExperiment(tx, proj, id, experiment_id));
    if (e.name == new_name) return OkStatus();
    ASSIGN_OR_RETURN(ResultSet taken, tx.Query("SELECT 1 FROM experiments WHERE project_id = ? AND name = ?",
                                               {proj.id, new_name}));
    if (!taken.empty()) {
      return AlreadyExistsError(fmt::format("experiment \"{}\" already exists", new_name), "new_name");
    }
    return tx
        .Exec("UPDATE experiments SET name = ?, last_update_time = ? WHERE id = ?",
              {new_name, impl_->NowMs(), id})
        .status();
  });
}

Status TrackingService::SetExperimentLifecycle(const tenancy::Principal& p,
                                               const std::string& project,
                                               const std::string& experiment_id,
                                               Lifecycle lifecycle) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  ASSIGN_OR_RETURN(int64_t id, impl_->ResolveExperimentId(proj.id, experiment_id));
  return store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT lifecycle, is_default FROM experiments WHERE id = ? "
                                            "AND project_id = ?",
                                            {id, proj.id}));
    if (rs.empty()) return ExperimentNotFound(experiment_id);
    if (lifecycle == Lifecycle::kDeleted && AsInt(rs.rows[0][1]) == 1) {
      return InvalidArgumentError("Cannot delete the default experiment", "experiment_id");
    }
    std::string from(LifecycleName(lifecycle == Lifecycle::kDeleted ? Lifecycle::kActive : Lifecycle::kDeleted));
    std::string to(LifecycleName(lifecycle));
    if (AsText(rs.rows[0][0]) == to) return OkStatus();
    RETURN_IF_ERROR(tx.Exec("UPDATE experiments SET lifecycle = ?, last_update_time = ? WHERE id = ?",
                            {to, impl_->NowMs(), id})
                        .status());
    // As MLflow: deleting an experiment deletes its runs; restoring restores them.
    return tx
        .Exec("UPDATE tracking_runs SET lifecycle = ? WHERE experiment_id = ? AND lifecycle = ?",
              {to, id, from})
        .status();
  });
}

Status TrackingService::SetExperimentTag(const tenancy::Principal& p, const std::string& project,
                                         const std::string& experiment_id, const Tag& tag) {
  RETURN_IF_ERROR(ValidateExperimentTag(tag, "key"));
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  ASSIGN_OR_RETURN(int64_t id, impl_->ResolveExperimentId(proj.id, experiment_id));
  return store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT lifecycle FROM experiments WHERE id = ? AND "
                                            "project_id = ?",
                                            {id, proj.id}));
    if (rs.empty()) return ExperimentNotFound(experiment_id);
    if (AsText(rs.rows[0][0]) != "active") {
      return InvalidArgumentError("the experiment must be in the 'active' state", "experiment_id");
    }
    return tx
        .Exec("INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?) ON CONFLICT "
              "(experiment_id, key) DO UPDATE SET value = excluded.value",
              {id, tag.key, tag.value})
        .status();
  });
}

Status TrackingService::DeleteExperimentTag(const tenancy::Principal& p, const std::string& project,
                                            const std::string& experiment_id, const std::string& key) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  ASSIGN_OR_RETURN(int64_t id, impl_->ResolveExperimentId(proj.id, experiment_id));
  return store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT lifecycle FROM experiments WHERE id = ? AND "
                                            "project_id = ?",
                                            {id, proj.id}));
    if (rs.empty()) return ExperimentNotFound(experiment_id);
    if (AsText(rs.rows[0][0]) != "active") {
      return InvalidArgumentError("the experiment must be in the 'active' state", "experiment_id");
    }
    ASSIGN_OR_RETURN(int64_t n, tx.Exec("DELETE FROM experiment_tags WHERE experiment_id = ? AND "
                                        "key = ?",
                                        {id, key}));
    if (n == 0) {
      return NotFoundError(
          fmt::format("No tag with name: {} in experiment with id {}", key, experiment_id));
    }
    return OkStatus();
  });
}

// ---------------------------------------------------------------- runs

namespace {
Status ValidateRunTags(const std::vector<Tag>& tags, std::string_view field) {
  for (size_t i = 0; i < tags.size(); ++i) {
    std::string f = fmt::format("{}[{}]", field, i);
    RETURN_IF_ERROR(ValidateKey(tags[i].key, f));
    RETURN_IF_ERROR(ValidateValue(tags[i].value, kMaxTagValue, f));
  }
  return OkStatus();
}
}  // namespace

StatusOr<Run> TrackingService::CreateRun(const tenancy::Principal& p, const std::string& project,
                                         const tracking::CreateRun& req) {
  RETURN_IF_ERROR(ValidateRunTags(req.tags, "tags"));
  if (req.run_name.size() > kMaxRunName || HasNul(req.run_name)) {
    return InvalidArgumentError(fmt::format("run_name: longer than {} characters", kMaxRunName), "run_name");
  }
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  ASSIGN_OR_RETURN(int64_t exp_id, impl_->ResolveExperimentId(proj.id, req.experiment_id));
  Run run;
  run.info.run_id = impl_->NewRunId();
  run.info.run_name = req.run_name;
  for (const Tag& t : req.tags) {
    if (t.key == kRunNameTag && run.info.run_name.empty()) run.info.run_name = t.value;
  }
  if (run.info.run_name.empty()) run.info.run_name = impl_->NewRunName();
  run.info.experiment_id = std::to_string(exp_id);
  run.info.user_id = req.user_id.empty() ? p.user_name : req.user_id;
  run.info.status = RunStatus::kRunning;
  run.info.start_time = req.start_time != 0 ? req.start_time : impl_->NowMs();
  run.info.job_id = req.job_id;
  // Tags: the request's (last one wins per key), then mlflow.runName.
  std::map<std::string, std::string> tags;
  for (const Tag& t : req.tags) tags[t.key] = t.value;
  tags[std::string(kRunNameTag)] = run.info.run_name;
  for (auto& [k, v] : tags) run.tags.push_back({k, v});

  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT artifact_location, lifecycle FROM experiments "
                                            "WHERE id = ? AND project_id = ?",
                                            {exp_id, proj.id}));
    if (rs.empty()) return ExperimentNotFound(req.experiment_id);
    if (AsText(rs.rows[0][1]) != "active") {
      return InvalidArgumentError(
          fmt::format("experiment \"{}\" must be in the 'active' state to create runs", exp_id),
          "experiment_id");
    }
    run.info.artifact_uri = AsText(rs.rows[0][0]) + "/" + run.info.run_id + "/artifacts";
    RETURN_IF_ERROR(tx.Exec("INSERT INTO tracking_runs (run_id, experiment_id, project_id, run_name, "
                            "user_id, status, start_time, end_time, lifecycle, job_id, artifact_uri) "
                            "VALUES (?, ?, ?, ?, ?, 'RUNNING', ?, 0, 'active', ?, ?)",
                            {run.info.run_id, exp_id, proj.id, run.info.run_name, run.info.user_id,
                             run.info.start_time, run.info.job_id, run.info.artifact_uri})
                        .status());
    for (const Tag& t : run.tags) {
      RETURN_IF_ERROR(tx.Exec("INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?)",
                              {run.info.run_id, t.key, t.value})
                          .status());
    }
    return OkStatus();
  }));
  return run;
}

StatusOr<Run> TrackingService::GetRun(const tenancy::Principal& p, const std::string& project,
                                      const std::string& run_id) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kViewer));
  std::vector<Run> runs(1);
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kRead, [&](Tx& tx) -> Status {
    runs.assign(1, Run{});
    ASSIGN_OR_RETURN(runs[0].info, impl_->LoadRunInfo(tx, proj.id, run_id));
    return impl_->LoadRunData(tx, runs);
  }));
  return std::move(runs[0]);
}

StatusOr<RunInfo> TrackingService::AuthorizeRun(const tenancy::Principal& p,
                                                const std::string& project,
                                                const std::string& run_id, tenancy::Role min) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, min));
  RunInfo info;
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(info, impl_->LoadRunInfo(tx, proj.id, run_id));
    return OkStatus();
  }));
  if (min >= Role::kEditor) RETURN_IF_ERROR(impl_->RequireActive(info));
  return info;
}

StatusOr<RunInfo> TrackingService::UpdateRun(const tenancy::Principal& p, const std::string& project,
                                             const std::string& run_id,
                                             std::optional<RunStatus> status,
                                             std::optional<int64_t> end_time,
                                             std::optional<std::string> run_name) {
  if (run_name && (run_name->size() > kMaxRunName || HasNul(*run_name))) {
    return InvalidArgumentError(fmt::format("run_name: longer than {} characters", kMaxRunName), "run_name");
  }
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  RunInfo info;
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(info, impl_->LoadRunInfo(tx, proj.id, run_id));
    RETURN_IF_ERROR(impl_->RequireActive(info));
    if (status) info.status = *status;
    if (end_time) info.end_time = *end_time;
    if (run_name && !run_name->empty()) info.run_name = *run_name;
    RETURN_IF_ERROR(tx.Exec("UPDATE tracking_runs SET status = ?, end_time = ?, run_name = ? WHERE "
                            "run_id = ?",
                            {std::string(RunStatusName(info.status)), info.end_time, info.run_name,
                             run_id})
                        .status());
    if (run_name && !run_name->empty()) {
      RETURN_IF_ERROR(impl_->UpsertTag(tx, run_id, Tag{std::string(kRunNameTag), *run_name}));
    }
    return OkStatus();
  }));
  return info;
}

Status TrackingService::SetRunLifecycle(const tenancy::Principal& p, const std::string& project,
                                        const std::string& run_id, Lifecycle lifecycle) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  return store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(int64_t n, tx.Exec("UPDATE tracking_runs SET lifecycle = ? WHERE run_id = ? AND "
                                        "project_id = ?",
                                        {std::string(LifecycleName(lifecycle)), run_id, proj.id}));
    // Both drivers count a matched row as changed even when the value stays.
    if (n == 0) return RunNotFound(run_id);
    return OkStatus();
  });
}

Status TrackingService::LogBatch(const tenancy::Principal& p, const std::string& project,
                                 const std::string& run_id, const std::vector<Metric>& metrics,
                                 const std::vector<Param>& params, const std::vector<Tag>& tags) {
  if (metrics.size() > kMaxBatchMetrics) {
    return InvalidArgumentError(fmt::format("metrics: a batch may hold at most {} metrics, got {}",
                                            kMaxBatchMetrics, metrics.size()),
                                "metrics");
  }
  if (params.size() > kMaxBatchParams) {
    return InvalidArgumentError(fmt::format("params: a batch may hold at most {} params, got {}",
                                            kMaxBatchParams, params.size()),
                                "params");
  }
  if (tags.size() > kMaxBatchTags) {
    return InvalidArgumentError(
        fmt::format("tags: a batch may hold at most {} tags, got {}", kMaxBatchTags, tags.size()), "tags");
  }
  if (metrics.size() + params.size() + tags.size() > kMaxBatchEntities) {
    return InvalidArgumentError(
        fmt::format("a batch may hold at most {} metrics, params and tags in total, got {}",
                    kMaxBatchEntities, metrics.size() + params.size() + tags.size()),
        "metrics");
  }
  {
    // Keys repeat across a batch; validate each distinct key once.
    std::unordered_set<std::string_view> valid;
    for (size_t i = 0; i < metrics.size(); ++i) {
      if (valid.contains(metrics[i].key)) continue;
      Status st = ValidateKey(metrics[i].key, "key");
      if (!st.ok()) {
        std::string field = fmt::format("metrics[{}].key", i);
        return InvalidArgumentError(field + st.message().substr(3), field);
      }
      valid.insert(metrics[i].key);
    }
  }
  std::map<std::string_view, std::string_view> seen_params;
  for (size_t i = 0; i < params.size(); ++i) {
    std::string f = fmt::format("params[{}]", i);
    RETURN_IF_ERROR(ValidateKey(params[i].key, f));
    RETURN_IF_ERROR(ValidateValue(params[i].value, kMaxParamValue, f));
    auto [it, fresh] = seen_params.emplace(params[i].key, params[i].value);
    if (!fresh && it->second != params[i].value) {
      return InvalidArgumentError(
          fmt::format("{}: Changing param values is not allowed. Param with key='{}' appears twice "
                      "in the batch with different values",
                      f, params[i].key),
          f);
    }
  }
  RETURN_IF_ERROR(ValidateRunTags(tags, "tags"));
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  const std::string digest = metrics.empty() ? std::string() : BatchDigest(metrics);
  const int64_t now_ms = impl_->NowMs();
  GroupCommitter::Work work = [&](Tx& tx) {
    return impl_->ApplyBatch(tx, proj.id, run_id, metrics, params, tags, digest, now_ms);
  };
  return impl_->committer.Run(work);
}

Status TrackingService::DeleteTag(const tenancy::Principal& p, const std::string& project,
                                  const std::string& run_id, const std::string& key) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  return store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(RunInfo info, impl_->LoadRunInfo(tx, proj.id, run_id));
    RETURN_IF_ERROR(impl_->RequireActive(info));
    ASSIGN_OR_RETURN(int64_t n, tx.Exec("DELETE FROM run_tags WHERE run_id = ? AND key = ?", {run_id, key}));
    if (n == 0) {
      return NotFoundError(fmt::format("No tag with name: {} in run with id {}", key, run_id));
    }
    return OkStatus();
  });
}

Status TrackingService::LogInputs(const tenancy::Principal& p, const std::string& project,
                                  const std::string& run_id,
                                  const std::vector<DatasetInput>& inputs) {
  if (inputs.size() > kMaxInputsPerCall) {
    return InvalidArgumentError(fmt::format("datasets: {} data sets exceed the limit of {} per call",
                                            inputs.size(), kMaxInputsPerCall),
                                "datasets");
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    RETURN_IF_ERROR(ValidateDatasetInput(inputs[i], fmt::format("datasets[{}]", i)));
  }
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  return store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(RunInfo info, impl_->LoadRunInfo(tx, proj.id, run_id));
    RETURN_IF_ERROR(impl_->RequireActive(info));
    ASSIGN_OR_RETURN(ResultSet rs,
                     tx.Query("SELECT COALESCE(MAX(seq), 0) FROM run_inputs WHERE run_id = ?", {run_id}));
    int64_t seq = AsInt(rs.rows[0][0]);
    for (const DatasetInput& in : inputs) {
      const Dataset& d = in.dataset;
      RETURN_IF_ERROR(tx.Exec("INSERT INTO run_inputs (run_id, name, digest, source_type, source, "
                              "dataset_schema, profile, tags, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                              "ON CONFLICT (run_id, name, digest) DO NOTHING",
                              {run_id, d.name, d.digest, d.source_type, d.source, d.schema, d.profile,
                               EncodeInputTags(in.tags), ++seq})
                          .status());
    }
    return OkStatus();
  });
}

// ---------------------------------------------------------------- search

StatusOr<RunPage> TrackingService::SearchRuns(const tenancy::Principal& p, const std::string& project,
                                              const RunSearch& search) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kViewer));
  return impl_->SearchRuns(proj, search);
}

StatusOr<RunPage> TrackingService::Impl::SearchRuns(const tenancy::Project& proj,
                                                    const RunSearch& search) {
  if (search.page.max_results < 1 || search.page.max_results > kMaxSearchResults) {
    return InvalidArgumentError(fmt::format("max_results: {} is outside 1..{}", search.page.max_results,
                                            kMaxSearchResults),
                                "max_results");
  }
  ASSIGN_OR_RETURN(int64_t offset, DecodeOffsetToken(search.page.page_token));
  ASSIGN_OR_RETURN(std::vector<search::Comparison> filter, search::ParseFilter(search.filter));
  std::vector<search::OrderKey> order;
  for (size_t i = 0; i < search.order_by.size(); ++i) {
    auto k = search::ParseOrderBy(search.order_by[i]);
    if (!k.ok()) return k.status().WithField(fmt::format("order_by[{}]", i));
    order.push_back(*k);
  }
  std::vector<int64_t> experiments;
  for (size_t i = 0; i < search.experiment_ids.size(); ++i) {
    const std::string& id = search.experiment_ids[i];
    if (id == "0" || id.empty()) {
      ASSIGN_OR_RETURN(int64_t d, DefaultExperiment(proj.id));
      experiments.push_back(d);
    } else {
      ASSIGN_OR_RETURN(int64_t v, ParseExperimentId(id, fmt::format("experiment_ids[{}]", i)));
      experiments.push_back(v);
    }
  }

  // The query is built as a list of FROM items whose order is the join
  // order (CROSS JOIN fixes it on SQLite; PostgreSQL plans on its own):
  //  * ordered by a metric/param/tag first: that key's (key, value) index
  //    drives, so the first page stops after max_results matches; runs
  //    without the key (or with NaN) follow in a second query;
  //  * otherwise the runs drive, in start_time order.
  struct Part {
    std::string from;             // "tracking_runs r CROSS JOIN …"
    std::vector<Value> from_args;
    std::string where;            // " AND …" terms
    std::vector<Value> where_args;
    std::string order;
  };
  std::string base_where = "r.project_id = ?";
  std::vector<Value> base_args{proj.id};
  if (!experiments.empty()) {
    // Pad to a power of two so the statement text (and its cache entry) repeats.
    size_t n = 1;
    while (n < experiments.size()) n *= 2;
    base_where += " AND r.experiment_id IN " + Placeholders(n);
    for (size_t i = 0; i < n; ++i) base_args.emplace_back(i < experiments.size() ? experiments[i] : int64_t{-1});
  }
  if (search.view == ViewType::kActiveOnly) base_where += " AND r.lifecycle = 'active'";
  if (search.view == ViewType::kDeletedOnly) base_where += " AND r.lifecycle = 'deleted'";

  std::string filter_where;
  std::vector<Value> filter_args;
  auto string_op = [&](const std::string& column, const search::Comparison& c) -> std::string {
    switch (c.op) {
      case search::Op::kEq: filter_args.emplace_back(c.text); return column + " = ?";
      case search::Op::kNe: filter_args.emplace_back(c.text); return column + " != ?";
      case search::Op::kLike:
        if (postgres) {
          filter_args.emplace_back(c.text);
          return column + " LIKE ?";
        }
        filter_args.emplace_back(LikeToGlob(c.text));
        return column + " GLOB ?";
      case search::Op::kILike:
        filter_args.emplace_back(c.text);
        return column + (postgres ? " ILIKE ?" : " LIKE ?");
      case search::Op::kIn:
      case search::Op::kNotIn: {
        for (const auto& v : c.list) filter_args.emplace_back(v);
        return column + (c.op == search::Op::kIn ? " IN " : " NOT IN ") + Placeholders(c.list.size());
      }
      default: return "1 = 0";
    }
  };
  auto number_op = [&](const std::string& column, const search::Comparison& c, bool integral) {
    double v = c.number;
    // Compare integer columns with integers when the number is whole.
    if (integral && std::floor(v) == v && std::abs(v) < 9e18) {
      filter_args.emplace_back(static_cast<int64_t>(v));
    } else {
      filter_args.emplace_back(v);
    }
    return column + " " + std::string(search::OpName(c.op)) + " ?";
  };
  auto table_of = [](search::EntityType t) {
    return t == search::EntityType::kMetric  ? "run_metrics"
           : t == search::EntityType::kParam ? "run_params"
                                             : "run_tags";
  };

  // Filter joins: one FROM item per clause on a metric, param or tag.
  struct Joined {
    std::string table, alias, key;
    const search::Comparison* clause = nullptr;
  };
  std::vector<Joined> filter_joins;
  std::map<std::pair<int, std::string>, std::string> inner_alias;  // (type, key) -> alias
  int alias_n = 0;
  for (const auto& c : filter) {
    if (c.type == search::EntityType::kAttribute) {
      filter_where += " AND " + (search::IsNumericAttribute(c.key) ? number_op("r." + c.key, c, true)
                                                                  : string_op("r." + c.key, c));
      continue;
    }
    std::string alias = fmt::format("f{}", alias_n++);
    filter_joins.push_back({table_of(c.type), alias, c.key, &c});
    filter_where += " AND " + (c.type == search::EntityType::kMetric ? number_op(alias + ".value", c, false)
                                                                     : string_op(alias + ".value", c));
    inner_alias.emplace(std::make_pair(static_cast<int>(c.type), c.key), alias);
  }

  // ORDER BY terms; the first order key decides who drives.
  std::string lead_alias;         // a filter join that drives (its index order)
  std::optional<Joined> lead_key; // a key joined only for ordering, driving part 1
  std::string order_rest;         // terms after the first
  std::string first_term;
  std::vector<Joined> order_joins;  // LEFT JOINs for later order keys
  bool has_start = false, has_id = false;
  for (size_t i = 0; i < order.size(); ++i) {
    const auto& k = order[i];
    const char* dir = k.ascending ? " ASC" : " DESC";
    std::string term;
    if (k.type == search::EntityType::kAttribute) {
      term = "r." + k.key + dir;
      has_start |= k.key == "start_time";
      has_id |= k.key == "run_id";
    } else if (auto it = inner_alias.find({static_cast<int>(k.type), k.key}); it != inner_alias.end()) {
      term = it->second + ".value" + dir;
      if (i == 0) lead_alias = it->second;
    } else if (i == 0) {
      lead_key = Joined{table_of(k.type), "o0", k.key};
      term = "o0.value" + std::string(dir);
    } else {
      std::string alias = fmt::format("o{}", alias_n++);
      order_joins.push_back({table_of(k.type), alias, k.key});
      // Runs without the key (and NaN metrics) sort last either way, as in MLflow.
      term = fmt::format("({0}.value IS NULL), {0}.value{1}", alias, dir);
    }
    if (i == 0) {
      first_term = term;
    } else {
      order_rest += ", " + term;
    }
  }
  if (!has_start) order_rest += ", r.start_time DESC";
  if (!has_id) order_rest += ", r.run_id ASC";

  // Assembles one SELECT. `lead` is an extra first FROM item (or none).
  auto build = [&](const Joined* lead, const std::string& extra_where, std::vector<Value> extra_args,
                   const std::string& order_by, std::vector<Value>* args) {
    std::string from;
    std::vector<Value> from_args;
    std::string join_where;
    std::vector<Value> join_args;
    std::vector<const Joined*> items;
    if (lead != nullptr) items.push_back(lead);
    // The filter join that orders the page goes first too.
    for (const Joined& j : filter_joins) {
      if (j.alias == lead_alias) items.insert(items.begin(), &j);
    }
    auto place_runs = [&] {
      from += from.empty() ? "tracking_runs r" : " CROSS JOIN tracking_runs r";
    };
    for (const Joined* j : items) {
      from += (from.empty() ? "" : " CROSS JOIN ") + j->table + " " + j->alias;
      join_where += " AND " + j->alias + ".key = ?";
      join_args.emplace_back(j->key);
    }
    place_runs();
    for (const Joined& j : filter_joins) {
      if (j.alias == lead_alias) continue;
      from += " CROSS JOIN " + j.table + " " + j.alias;
      join_where += " AND " + j.alias + ".key = ?";
      join_args.emplace_back(j.key);
    }
    for (const Joined* j : items) join_where += " AND " + j->alias + ".run_id = r.run_id";
    for (const Joined& j : filter_joins) {
      if (j.alias != lead_alias) join_where += " AND " + j.alias + ".run_id = r.run_id";
    }
    for (const Joined& j : order_joins) {
      from += fmt::format(" LEFT JOIN {1} {0} ON {0}.run_id = r.run_id AND {0}.key = ?", j.alias, j.table);
      from_args.emplace_back(j.key);
    }
    std::string sql = "SELECT r.run_id, r.run_name, r.experiment_id, r.user_id, r.status, r.start_time, "
                      "r.end_time, r.artifact_uri, r.lifecycle, r.job_id FROM " +
                      from + " WHERE " + base_where + join_where + filter_where + extra_where +
                      " ORDER BY " + order_by + " LIMIT ? OFFSET ?";
    *args = std::move(from_args);
    for (auto& v : base_args) args->push_back(v);
    for (auto& v : join_args) args->push_back(v);
    for (auto& v : filter_args) args->push_back(v);
    for (auto& v : extra_args) args->push_back(std::move(v));
    return sql;
  };
  const int64_t want = search.page.max_results + 1;

  RunPage page;
  RETURN_IF_ERROR(store::RunInTx(store, TxMode::kRead, [&](Tx& tx) -> Status {
    page = RunPage{};
    ResultSet rs;
    if (!lead_key && lead_alias.empty()) {
      // Runs drive in start_time order unless a filter clause is selective:
      // probe each index-friendly clause's match count (bounded) and let the
      // smallest drive when it is under kSelective.
      constexpr int64_t kSelective = 5000;
      int64_t best = kSelective + 1;
      for (const Joined& j : filter_joins) {
        const search::Comparison& c = *j.clause;
        bool metric = c.type == search::EntityType::kMetric && c.op != search::Op::kNe;
        bool equal = c.type != search::EntityType::kMetric && c.op == search::Op::kEq;
        if (!metric && !equal) continue;
        std::string op = metric ? std::string(search::OpName(c.op)) : "=";
        Value v = metric ? Value(c.number) : Value(c.text);
        ASSIGN_OR_RETURN(ResultSet n, tx.Query(fmt::format("SELECT COUNT(*) FROM (SELECT 1 FROM {} WHERE key "
                                                           "= ? AND value {} ? LIMIT ?) t",
                                                           j.table, op),
                                               {j.key, v, kSelective + 1}));
        int64_t count = AsInt(n.rows[0][0]);
        if (count < best) {
          best = count;
          lead_alias = j.alias;
        }
      }
    }
    if (!lead_key) {
      std::string order_by = first_term.empty() ? order_rest.substr(2) : first_term + order_rest;
      std::vector<Value> args;
      std::string sql = build(nullptr, "", {}, order_by, &args);
      args.emplace_back(want);
      args.emplace_back(offset);
      ASSIGN_OR_RETURN(rs, tx.Query(sql, args));
    } else {
      // Part 1: runs with a value for the lead key, in its index order.
      std::vector<Value> args;
      std::string sql = build(&*lead_key, " AND o0.value IS NOT NULL", {}, first_term + order_rest, &args);
      args.emplace_back(want);
      args.emplace_back(offset);
      ASSIGN_OR_RETURN(rs, tx.Query(sql, args));
      if (static_cast<int64_t>(rs.size()) < want) {
        // Part 2: runs without one. Its offset needs part 1's size.
        int64_t part1 = offset + static_cast<int64_t>(rs.size());
        if (rs.empty() && offset > 0) {
          std::vector<Value> cargs;
          std::string count_sql = build(&*lead_key, " AND o0.value IS NOT NULL", {}, "r.run_id", &cargs);
          count_sql = "SELECT COUNT(*) FROM (" + count_sql + ") c";
          cargs.emplace_back(std::numeric_limits<int64_t>::max());
          cargs.emplace_back(int64_t{0});
          ASSIGN_OR_RETURN(ResultSet c, tx.Query(count_sql, cargs));
          part1 = AsInt(c.rows[0][0]);
        }
        std::vector<Value> args2;
        std::string sql2 = build(nullptr,
                                 fmt::format(" AND NOT EXISTS (SELECT 1 FROM {} x WHERE x.run_id = "
                                             "r.run_id AND x.key = ? AND x.value IS NOT NULL)",
                                             lead_key->table),
                                 {lead_key->key}, order_rest.substr(2), &args2);
        args2.emplace_back(want - static_cast<int64_t>(rs.size()));
        args2.emplace_back(std::max<int64_t>(0, offset - part1));
        ASSIGN_OR_RETURN(ResultSet rs2, tx.Query(sql2, args2));
        for (auto& row : rs2.rows) rs.rows.push_back(std::move(row));
      }
    }
    bool more = static_cast<int64_t>(rs.size()) > search.page.max_results;
    if (more) rs.rows.pop_back();
    page.runs.resize(rs.size());
    for (size_t i = 0; i < rs.size(); ++i) page.runs[i].info = RunInfoFromRow(rs.rows[i]);
    if (more) page.next_page_token = EncodeOffsetToken(offset + search.page.max_results);
    return LoadRunData(tx, page.runs);
  }));
  return page;
}

// ---------------------------------------------------------------- history

StatusOr<History> TrackingService::GetHistory(const tenancy::Principal& p, const std::string& project,
                                              const HistoryRequest& req) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kViewer));
  return impl_->GetHistory(proj, req);
}

namespace {

// The history page token: the (step, timestamp, block seq, index) of the
// last point returned, in the history's order.
struct HistoryCursor {
  int64_t step = 0, timestamp = 0, seq = 0, index = 0;
};
struct Located {
  Point p;
  int64_t seq = 0, index = 0;
};
bool LocatedBefore(const Located& a, const Located& b) {
  if (a.p.step != b.p.step) return a.p.step < b.p.step;
  if (a.p.timestamp != b.p.timestamp) return a.p.timestamp < b.p.timestamp;
  if (a.seq != b.seq) return a.seq < b.seq;
  return a.index < b.index;
}
std::string EncodeCursor(const Located& l) {
  return Base64UrlEncode(fmt::format("h:{}:{}:{}:{}", l.p.step, l.p.timestamp, l.seq, l.index));
}
StatusOr<std::optional<Located>> DecodeCursor(std::string_view token) {
  if (token.empty()) return std::optional<Located>();
  std::string raw;
  Located l;
  long long a, b, c, d;
  char tail;
  if (!Base64UrlDecode(token, &raw) ||
      std::sscanf(raw.c_str(), "h:%lld:%lld:%lld:%lld%c", &a, &b, &c, &d, &tail) != 4) {
    return InvalidArgumentError("page_token: not a page token returned by this API", "page_token");
  }
  l.p.step = a;
  l.p.timestamp = b;
  l.seq = c;
  l.index = d;
  return std::optional<Located>(l);
}

struct BlockRef {
  int64_t seq;
  BlockSummary s;
};

}  // namespace

StatusOr<History> TrackingService::Impl::GetHistory(const tenancy::Project& proj,
                                                    const HistoryRequest& req) {
  if (req.max_points < 0 || req.max_points > kMaxHistoryPoints) {
    return InvalidArgumentError(
        fmt::format("max_points: {} is outside 0..{}", req.max_points, kMaxHistoryPoints), "max_points");
  }
  if (req.max_points == 0 && (req.page.max_results < 1 || req.page.max_results > kMaxHistoryPage)) {
    return InvalidArgumentError(
        fmt::format("max_results: {} is outside 1..{}", req.page.max_results, kMaxHistoryPage),
        "max_results");
  }
  ASSIGN_OR_RETURN(std::optional<Located> cursor, DecodeCursor(req.page.page_token));
  const int64_t lo = req.start_step.value_or(std::numeric_limits<int64_t>::min());
  const int64_t hi = req.end_step.value_or(std::numeric_limits<int64_t>::max());
  History out;
  RETURN_IF_ERROR(store::RunInTx(store, TxMode::kRead, [&](Tx& tx) -> Status {
    out = History{};
    ASSIGN_OR_RETURN(ResultSet run, tx.Query("SELECT 1 FROM tracking_runs WHERE run_id = ? AND project_id = ?",
                                             {req.run_id, proj.id}));
    if (run.empty()) return RunNotFound(req.run_id);
    // Summaries only: `data` is read below for the blocks that need it.
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT seq, count, min_step, max_step, min_value, "
                                            "min_vstep, min_vts, max_value, max_vstep, max_vts, "
                                            "last_value, last_ts FROM metric_blocks WHERE run_id = ? "
                                            "AND key = ? ORDER BY seq",
                                            {req.run_id, req.key}));
    std::vector<BlockRef> full, partial;  // fully inside [lo, hi]; straddling it
    for (const auto& r : rs.rows) {
      BlockRef b{AsInt(r[0]), SummaryFromRow(r, 1)};
      if (b.s.max_step < lo || b.s.min_step > hi) continue;
      (b.s.min_step >= lo && b.s.max_step <= hi ? full : partial).push_back(b);
    }
    auto load = [&](int64_t seq, std::vector<Point>* pts) -> Status {
      ASSIGN_OR_RETURN(ResultSet d, tx.Query("SELECT data FROM metric_blocks WHERE run_id = ? AND "
                                             "key = ? AND seq = ?",
                                             {req.run_id, req.key, seq}));
      if (d.empty()) return InternalError("metric block vanished");
      std::string raw;
      if (!Base64Decode(AsText(d.rows[0][0]), &raw)) return DataLossError("metric block: bad base64");
      return DecodeSegments(raw, pts);
    };
    // Points of the partial blocks inside the range.
    std::vector<Located> edge;
    for (const BlockRef& b : partial) {
      std::vector<Point> pts;
      RETURN_IF_ERROR(load(b.seq, &pts));
      for (size_t i = 0; i < pts.size(); ++i) {
        if (pts[i].step >= lo && pts[i].step <= hi) edge.push_back({pts[i], b.seq, int64_t(i)});
      }
    }
    int64_t total = static_cast<int64_t>(edge.size());
    for (const BlockRef& b : full) total += b.s.count;
    out.total_points = total;

    if (req.max_points > 0 && total > req.max_points) {
      // Downsample: n buckets of equal step width over the points' step range;
      // each keeps its min, max and last point (3 per bucket).
      out.downsampled = true;
      int64_t first = std::numeric_limits<int64_t>::max(), last = std::numeric_limits<int64_t>::min();
      for (const BlockRef& b : full) first = std::min(first, b.s.min_step), last = std::max(last, b.s.max_step);
      for (const Located& l : edge) first = std::min(first, l.p.step), last = std::max(last, l.p.step);
      const int64_t buckets = std::max<int64_t>(1, req.max_points / 3);
      // Unsigned arithmetic: last - first fits in 64 bits even at the extremes.
      const uint64_t span = static_cast<uint64_t>(last) - static_cast<uint64_t>(first);
      uint64_t width = span / static_cast<uint64_t>(buckets) + 1;
      // Blocks that straddle a bucket boundary must be decoded; blocks that
      // fit in one bucket are read from their summary. When most blocks
      // cover the same step span (sequential logging), round the width up to
      // a multiple of it, so bucket edges fall between blocks — but only
      // while that keeps at least 3/4 of the buckets.
      if (full.size() >= 16) {
        std::vector<uint64_t> spans;
        for (const BlockRef& b : full) {
          spans.push_back(static_cast<uint64_t>(b.s.max_step) - static_cast<uint64_t>(b.s.min_step) + 1);
        }
        std::nth_element(spans.begin(), spans.begin() + spans.size() / 2, spans.end());
        const uint64_t quantum = spans[spans.size() / 2];
        if (quantum > 1 && width > quantum) {
          uint64_t aligned = (width + quantum - 1) / quantum * quantum;
          if (span / aligned + 1 >= static_cast<uint64_t>(buckets) * 3 / 4) width = aligned;
        }
      }
      auto bucket_of = [&](int64_t step) {
        return static_cast<int64_t>((static_cast<uint64_t>(step) - static_cast<uint64_t>(first)) / width);
      };
      std::vector<BlockSummary> acc(static_cast<size_t>(buckets));
      auto add_point = [&](const Point& pt) { AddToSummary(pt, &acc[static_cast<size_t>(bucket_of(pt.step))]); };
      for (const BlockRef& b : full) {
        if (bucket_of(b.s.min_step) == bucket_of(b.s.max_step)) {
          BlockSummary& a = acc[static_cast<size_t>(bucket_of(b.s.min_step))];
          a = MergeSummaries(a, b.s);
          continue;
        }
        std::vector<Point> pts;
        RETURN_IF_ERROR(load(b.seq, &pts));
        for (const Point& pt : pts) add_point(pt);
      }
      for (const Located& l : edge) add_point(l.p);
      for (const BlockSummary& a : acc) {
        if (a.count == 0) continue;
        std::vector<Point> keep;
        if (req.max_points >= 3 && a.has_min_max) {
          keep.push_back(a.min);
          keep.push_back(a.max);
        }
        keep.push_back(a.last);
        std::sort(keep.begin(), keep.end(), PointBefore);
        for (size_t i = 0; i < keep.size(); ++i) {
          const Point& k = keep[i];
          if (i > 0 && k.step == keep[i - 1].step && k.timestamp == keep[i - 1].timestamp &&
              (k.value == keep[i - 1].value || (std::isnan(k.value) && std::isnan(keep[i - 1].value)))) {
            continue;
          }
          out.points.push_back(Metric{req.key, k.value, k.timestamp, k.step});
        }
      }
      if (static_cast<int64_t>(out.points.size()) > req.max_points) out.points.resize(req.max_points);
      return OkStatus();
    }

    // Every point (or one page of them) in (step, timestamp, arrival) order.
    const int64_t limit = req.max_points > 0 ? total : req.page.max_results;
    std::vector<Located> pts;
    for (const Located& l : edge) {
      if (!cursor || LocatedBefore(*cursor, l)) pts.push_back(l);
    }
    // Decode blocks in order of their first step, stopping once `limit`
    // points precede every step of the blocks not yet decoded.
    std::sort(full.begin(), full.end(), [](const BlockRef& a, const BlockRef& b) {
      return a.s.min_step != b.s.min_step ? a.s.min_step < b.s.min_step : a.seq < b.seq;
    });
    bool stopped_early = false;
    for (const BlockRef& b : full) {
      if (cursor && b.s.max_step < cursor->p.step) continue;
      if (limit > 0 && static_cast<int64_t>(pts.size()) >= limit) {
        std::nth_element(pts.begin(), pts.begin() + (limit - 1), pts.end(), LocatedBefore);
        if (pts[static_cast<size_t>(limit - 1)].p.step < b.s.min_step) {
          stopped_early = true;
          break;
        }
      }
      std::vector<Point> raw;
      RETURN_IF_ERROR(load(b.seq, &raw));
      for (size_t i = 0; i < raw.size(); ++i) {
        Located l{raw[i], b.seq, static_cast<int64_t>(i)};
        if (!cursor || LocatedBefore(*cursor, l)) pts.push_back(l);
      }
    }
    std::sort(pts.begin(), pts.end(), LocatedBefore);
    bool more = stopped_early || static_cast<int64_t>(pts.size()) > limit;
    if (more && !pts.empty()) {
      if (static_cast<int64_t>(pts.size()) > limit) pts.resize(static_cast<size_t>(limit));
      out.next_page_token = EncodeCursor(pts.back());
    }
    out.points.reserve(pts.size());
    for (const Located& l : pts) out.points.push_back(Metric{req.key, l.p.value, l.p.timestamp, l.p.step});
    return OkStatus();
  }));
  return out;
}

}  // namespace lathe::tracking
