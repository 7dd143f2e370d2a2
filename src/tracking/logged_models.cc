#include "tracking/logged_models.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <functional>
#include <mutex>
#include <random>
#include <unordered_map>
#include <utility>

#include <fmt/core.h>

#include "base/crypto.h"
#include "base/strings.h"
#include "tracking/search.h"

namespace lathe::tracking {

using store::AsInt;
using store::AsText;
using store::Placeholders;
using store::ResultSet;
using store::Tx;
using store::TxMode;
using store::Value;
using tenancy::Role;

namespace {

// Limits (protocols.md §5.7; MLflow validates logged-model tags and params
// as a run's).
constexpr size_t kMaxKey = 250;
constexpr size_t kMaxParamValue = 6000;
constexpr size_t kMaxTagValue = 8000;
constexpr size_t kMaxPerCall = 100;
constexpr size_t kMaxName = 500;
constexpr size_t kMaxModelType = 500;
constexpr size_t kMaxOutputsPerCall = 1000;
constexpr int64_t kMaxSearchResults = 50'000;

const char* kColumns =
    "model_id, experiment_id, name, artifact_location, status, status_message, model_type, "
    "source_run_id, user_id, lifecycle, creation_time, last_update_time";

std::string_view StatusText(LoggedModelStatus s) {
  switch (s) {
    case LoggedModelStatus::kPending: return "PENDING";
    case LoggedModelStatus::kReady: return "READY";
    case LoggedModelStatus::kFailed: return "FAILED";
  }
  return "PENDING";
}

LoggedModel ModelFromRow(const std::vector<Value>& r) {
  LoggedModel m;
  m.model_id = AsText(r[0]);
  m.experiment_id = std::to_string(AsInt(r[1]));
  m.name = AsText(r[2]);
  m.artifact_location = AsText(r[3]);
  m.status = ParseLoggedModelStatus(AsText(r[4])).value_or(LoggedModelStatus::kPending);
  m.status_message = AsText(r[5]);
  m.model_type = AsText(r[6]);
  m.source_run_id = AsText(r[7]);
  m.user_id = AsText(r[8]);
  m.lifecycle = AsText(r[9]) == "deleted" ? Lifecycle::kDeleted : Lifecycle::kActive;
  m.creation_time = AsInt(r[10]);
  m.last_update_time = AsInt(r[11]);
  return m;
}

Status ModelNotFound(std::string_view id) {
  return NotFoundError(fmt::format("Logged model with ID '{}' not found.", id));
}

bool HasControl(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

Status CheckKey(std::string_view key, const std::string& field) {
  if (key.empty()) {
    return InvalidArgumentError(fmt::format("{}: a key must not be empty", field), field);
  }
  if (key.size() > kMaxKey) {
    return InvalidArgumentError(
        fmt::format("{}: key of {} characters exceeds the limit of {}", field, key.size(), kMaxKey),
        field);
  }
  if (key.find('\0') != std::string_view::npos) {
    return InvalidArgumentError(fmt::format("{}: key contains a NUL character", field), field);
  }
  return OkStatus();
}

Status CheckEntries(const std::vector<Tag>& entries, std::string_view what, size_t max_value) {
  if (entries.size() > kMaxPerCall) {
    return InvalidArgumentError(fmt::format("{}: {} entries exceed the limit of {} per request",
                                            what, entries.size(), kMaxPerCall),
                                std::string(what));
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string field = fmt::format("{}[{}]", what, i);
    RETURN_IF_ERROR(CheckKey(entries[i].key, field + ".key"));
    if (entries[i].value.size() > max_value) {
      return InvalidArgumentError(fmt::format("{}.value: {} characters exceed the limit of {}",
                                              field, entries[i].value.size(), max_value),
                                  field + ".value");
    }
    if (entries[i].value.find('\0') != std::string::npos) {
      return InvalidArgumentError(fmt::format("{}.value contains a NUL character", field),
                                  field + ".value");
    }
  }
  return OkStatus();
}

// Model ids come from clients in paths: anything not shaped like ours
// cannot name a model.
bool PlausibleModelId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

const search::AttributeSet& ModelAttributes() {
  static const search::AttributeSet* const kAttrs = new search::AttributeSet{
      {"name", "model_id", "model_type", "status", "source_run_id"},
      {"creation_timestamp", "creation_time", "last_updated_timestamp"}};
  return *kAttrs;
}

// The short status name a filter value means ("LOGGED_MODEL_READY" and
// "READY" alike); other text is left as it is.
std::string StatusFilterValue(const std::string& v) {
  auto s = ParseLoggedModelStatus(v);
  return s.ok() ? std::string(StatusText(*s)) : v;
}

const std::string* FindEntry(const std::vector<Tag>& entries, const std::string& key) {
  for (const Tag& t : entries) {
    if (t.key == key) return &t.value;
  }
  return nullptr;
}

// The value a comparison or an order key reads from a model: a string, a
// number, or nothing (absent params/tags; metrics are never linked).
struct FieldValue {
  bool present = false;
  bool numeric = false;
  std::string text;
  int64_t number = 0;
};

FieldValue Read(const LoggedModel& m, search::EntityType type, const std::string& key) {
  FieldValue v;
  switch (type) {
    case search::EntityType::kMetric:
      return v;
    case search::EntityType::kParam:
    case search::EntityType::kTag: {
      const std::string* s =
          FindEntry(type == search::EntityType::kParam ? m.params : m.tags, key);
      if (s != nullptr) {
        v.present = true;
        v.text = *s;
      }
      return v;
    }
    case search::EntityType::kAttribute:
      break;
  }
  v.present = true;
  if (key == "creation_timestamp" || key == "creation_time" || key == "last_updated_timestamp") {
    v.numeric = true;
    v.number = key == "last_updated_timestamp" ? m.last_update_time : m.creation_time;
  } else if (key == "name") {
    v.text = m.name;
  } else if (key == "model_id") {
    v.text = m.model_id;
  } else if (key == "model_type") {
    v.text = m.model_type;
  } else if (key == "status") {
    v.text = std::string(StatusText(m.status));
  } else if (key == "source_run_id") {
    v.text = m.source_run_id;
  }
  return v;
}

bool Matches(const LoggedModel& m, const search::Comparison& c) {
  FieldValue v = Read(m, c.type, c.key);
  if (!v.present) return false;
  using search::Op;
  if (v.numeric) {
    const double x = static_cast<double>(v.number);
    switch (c.op) {
      case Op::kEq: return x == c.number;
      case Op::kNe: return x != c.number;
      case Op::kLt: return x < c.number;
      case Op::kLe: return x <= c.number;
      case Op::kGt: return x > c.number;
      case Op::kGe: return x >= c.number;
      default: return false;
    }
  }
  const bool status = c.type == search::EntityType::kAttribute && c.key == "status";
  auto value = [&](const std::string& t) { return status ? StatusFilterValue(t) : t; };
  switch (c.op) {
    case Op::kEq: return v.text == value(c.text);
    case Op::kNe: return v.text != value(c.text);
    case Op::kLike: return SqlLikeMatch(v.text, c.text);
    case Op::kILike: return SqlLikeMatch(AsciiLower(v.text), AsciiLower(c.text));
    case Op::kIn:
    case Op::kNotIn: {
      bool in = false;
      for (const std::string& item : c.list) in = in || v.text == value(item);
      return c.op == Op::kIn ? in : !in;
    }
    default: return false;
  }
}

// Orders by the keys, models lacking a key last (as MLflow puts them), then
// by creation time (newest first) and id for a stable order across pages.
bool Before(const LoggedModel& a, const LoggedModel& b, const std::vector<search::OrderKey>& keys) {
  for (const search::OrderKey& k : keys) {
    FieldValue x = Read(a, k.type, k.key), y = Read(b, k.type, k.key);
    if (x.present != y.present) return x.present;
    if (!x.present) continue;
    int cmp = x.numeric ? (x.number < y.number ? -1 : x.number > y.number ? 1 : 0)
                        : x.text.compare(y.text);
    if (cmp != 0) return k.ascending ? cmp < 0 : cmp > 0;
  }
  if (a.creation_time != b.creation_time) return a.creation_time > b.creation_time;
  return a.model_id < b.model_id;
}

std::string EncodeOffset(int64_t offset) { return Base64UrlEncode("o:" + std::to_string(offset)); }

StatusOr<int64_t> DecodeOffset(std::string_view token) {
  if (token.empty()) return int64_t{0};
  std::string raw;
  int64_t v = -1;
  if (Base64UrlDecode(token, &raw) && raw.starts_with("o:")) {
    auto [end, ec] = std::from_chars(raw.data() + 2, raw.data() + raw.size(), v);
    if (ec != std::errc() || end != raw.data() + raw.size()) v = -1;
  }
  if (v < 0) {
    return InvalidArgumentError("page_token: not a page token returned by this API", "page_token");
  }
  return v;
}

}  // namespace

std::string_view LoggedModelStatusName(LoggedModelStatus s) {
  switch (s) {
    case LoggedModelStatus::kPending: return "LOGGED_MODEL_PENDING";
    case LoggedModelStatus::kReady: return "LOGGED_MODEL_READY";
    case LoggedModelStatus::kFailed: return "LOGGED_MODEL_UPLOAD_FAILED";
  }
  return "LOGGED_MODEL_PENDING";
}

StatusOr<LoggedModelStatus> ParseLoggedModelStatus(std::string_view s, std::string_view field) {
  if (s == "LOGGED_MODEL_PENDING" || s == "PENDING" || s == "1") return LoggedModelStatus::kPending;
  if (s == "LOGGED_MODEL_READY" || s == "READY" || s == "2") return LoggedModelStatus::kReady;
  if (s == "LOGGED_MODEL_UPLOAD_FAILED" || s == "UPLOAD_FAILED" || s == "FAILED" || s == "3") {
    return LoggedModelStatus::kFailed;
  }
  return InvalidArgumentError(
      fmt::format("Invalid value for parameter '{}': \"{}\" is not LOGGED_MODEL_PENDING, "
                  "LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED",
                  field, s),
      std::string(field));
}

struct LoggedModelService::Impl {
  Impl(store::Store& s, tenancy::TenancyService& t, TrackingService& tr, const Clock& c)
      : store(s), tenancy(t), tracking(tr), clock(c), rng(std::random_device{}()) {}

  store::Store& store;
  tenancy::TenancyService& tenancy;
  TrackingService& tracking;
  const Clock& clock;
  std::mutex rng_mu;
  std::mt19937_64 rng;  // guarded by rng_mu

  int64_t NowMs() const { return clock.NowMicros() / 1000; }

  std::string NewModelId() {
    std::lock_guard<std::mutex> lock(rng_mu);
    const uint64_t a = rng(), b = rng();
    return fmt::format("m-{:016x}{:016x}", a, b);
  }
  std::string NewName() {
    std::lock_guard<std::mutex> lock(rng_mu);
    const uint64_t a = rng(), b = rng(), c = rng();
    return RandomName(a, b, c);
  }

  // The model's row (with tags and params) when it is an active model of
  // the project; NOT_FOUND otherwise.
  StatusOr<LoggedModel> Load(Tx& tx, const std::string& project_id, const std::string& model_id,
                             bool with_data = true) {
    if (!PlausibleModelId(model_id)) return ModelNotFound(model_id);
    ASSIGN_OR_RETURN(ResultSet rs,
                     tx.Query(fmt::format("SELECT {} FROM logged_models WHERE model_id = ? AND "
                                          "project_id = ? AND lifecycle = 'active'",
                                          kColumns),
                              {model_id, project_id}));
    if (rs.empty()) return ModelNotFound(model_id);
    std::vector<LoggedModel> models{ModelFromRow(rs.rows[0])};
    if (with_data) RETURN_IF_ERROR(LoadData(tx, models));
    return std::move(models[0]);
  }

  // Tags and params of `models`, in place, sorted by key.
  Status LoadData(Tx& tx, std::vector<LoggedModel>& models) {
    constexpr size_t kChunk = 50;
    static const std::string in = Placeholders(kChunk);
    static const std::string tags_sql =
        "SELECT model_id, key, value FROM logged_model_tags WHERE model_id IN " + in;
    static const std::string params_sql =
        "SELECT model_id, key, value FROM logged_model_params WHERE model_id IN " + in;
    std::unordered_map<std::string, LoggedModel*> by_id;
    for (LoggedModel& m : models) by_id[m.model_id] = &m;
    for (size_t start = 0; start < models.size(); start += kChunk) {
      std::vector<Value> ids;
      for (size_t i = start; i < start + kChunk; ++i) {
        ids.emplace_back(i < models.size() ? models[i].model_id : std::string());
      }
      ASSIGN_OR_RETURN(ResultSet ts, tx.Query(tags_sql, ids));
      for (auto& r : ts.rows) by_id[AsText(r[0])]->tags.push_back({AsText(r[1]), AsText(r[2])});
      ASSIGN_OR_RETURN(ResultSet ps, tx.Query(params_sql, ids));
      for (auto& r : ps.rows) by_id[AsText(r[0])]->params.push_back({AsText(r[1]), AsText(r[2])});
    }
    auto by_key = [](const Tag& a, const Tag& b) { return a.key < b.key; };
    for (LoggedModel& m : models) {
      std::sort(m.tags.begin(), m.tags.end(), by_key);
      std::sort(m.params.begin(), m.params.end(), by_key);
    }
    return OkStatus();
  }

  Status UpsertTags(Tx& tx, const std::string& model_id, const std::vector<Tag>& tags) {
    for (const Tag& t : tags) {
      RETURN_IF_ERROR(tx.Exec("INSERT INTO logged_model_tags (model_id, key, value) VALUES (?, ?, "
                              "?) ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                              {model_id, t.key, t.value})
                          .status());
    }
    return OkStatus();
  }

  // Params are immutable: the same value again is a no-op, another value
  // fails the whole call (nothing of it is stored: the Tx rolls back).
  Status InsertParams(Tx& tx, const std::string& model_id, const std::vector<Param>& params) {
    for (size_t i = 0; i < params.size(); ++i) {
      const Param& p = params[i];
      ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT value FROM logged_model_params WHERE "
                                              "model_id = ? AND key = ?",
                                              {model_id, p.key}));
      if (!rs.empty()) {
        if (AsText(rs.rows[0][0]) == p.value) continue;
        return InvalidArgumentError(
            fmt::format("Changing param values is not allowed. Param with key='{}' was already "
                        "logged with value='{}' for logged model ID='{}'. Attempted logging new "
                        "value '{}'.",
                        p.key, AsText(rs.rows[0][0]), model_id, p.value),
            fmt::format("params[{}].value", i));
      }
      RETURN_IF_ERROR(tx.Exec("INSERT INTO logged_model_params (model_id, key, value) VALUES (?, "
                              "?, ?)",
                              {model_id, p.key, p.value})
                          .status());
    }
    return OkStatus();
  }

  Status Touch(Tx& tx, const std::string& model_id) {
    return tx.Exec("UPDATE logged_models SET last_update_time = ? WHERE model_id = ?",
                   {NowMs(), model_id})
        .status();
  }

  // Runs `fn` on the active model in a write transaction (editor).
  Status Write(const tenancy::Principal& p, const std::string& project,
               const std::string& model_id, const std::function<Status(Tx&)>& fn) {
    ASSIGN_OR_RETURN(tenancy::Project proj, tenancy.AuthorizeProject(p, project, Role::kEditor));
    return store::RunInTx(store, TxMode::kWrite, [&](Tx& tx) -> Status {
      RETURN_IF_ERROR(Load(tx, proj.id, model_id, /*with_data=*/false).status());
      RETURN_IF_ERROR(fn(tx));
      return Touch(tx, model_id);
    });
  }
};

LoggedModelService::LoggedModelService(store::Store& store, tenancy::TenancyService& tenancy,
                                       TrackingService& tracking, const Clock& clock)
    : impl_(std::make_unique<Impl>(store, tenancy, tracking, clock)) {}

LoggedModelService::~LoggedModelService() = default;

StatusOr<LoggedModel> LoggedModelService::Create(const tenancy::Principal& p,
                                                 const std::string& project,
                                                 const CreateLoggedModel& req) {
  if (req.name.size() > kMaxName || HasControl(req.name) ||
      req.name.find_first_of("/:") != std::string::npos) {
    return InvalidArgumentError(
        fmt::format("Invalid model name ('{}'): a logged model's name has at most {} characters "
                    "and no '/', ':' or control characters",
                    req.name, kMaxName),
        "name");
  }
  if (req.model_type.size() > kMaxModelType || HasControl(req.model_type)) {
    return InvalidArgumentError(
        fmt::format("model_type: at most {} characters, no control characters", kMaxModelType),
        "model_type");
  }
  RETURN_IF_ERROR(CheckEntries(req.params, "params", kMaxParamValue));
  RETURN_IF_ERROR(CheckEntries(req.tags, "tags", kMaxTagValue));
  ASSIGN_OR_RETURN(tenancy::Project proj,
                   impl_->tenancy.AuthorizeProject(p, project, Role::kEditor));
  ASSIGN_OR_RETURN(Experiment exp, impl_->tracking.GetExperiment(p, project, req.experiment_id));
  if (exp.lifecycle != Lifecycle::kActive) {
    return InvalidArgumentError(
        fmt::format("experiment {} must be in the 'active' state; it is deleted", exp.id),
        "experiment_id");
  }
  if (!req.source_run_id.empty()) {
    auto run = impl_->tracking.AuthorizeRun(p, project, req.source_run_id, Role::kViewer);
    if (!run.ok()) {
      if (run.status().code() != StatusCode::kNotFound) return run.status();
      return InvalidArgumentError(fmt::format("source_run_id: run \"{}\" does not exist in "
                                              "project \"{}\"",
                                              req.source_run_id, project),
                                  "source_run_id");
    }
  }
  LoggedModel m;
  m.model_id = impl_->NewModelId();
  m.experiment_id = exp.id;
  m.name = req.name.empty() ? impl_->NewName() : req.name;
  m.artifact_location = fmt::format("{}/models/{}/artifacts", exp.artifact_location, m.model_id);
  m.model_type = req.model_type;
  m.source_run_id = req.source_run_id;
  m.user_id = p.user_name;
  m.creation_time = m.last_update_time = impl_->NowMs();
  // The last value of a key given twice wins, as MLflow's dict does.
  for (const Tag& t : req.tags) {
    auto it = std::find_if(m.tags.begin(), m.tags.end(), [&](const Tag& x) { return x.key == t.key; });
    if (it == m.tags.end()) {
      m.tags.push_back(t);
    } else {
      it->value = t.value;
    }
  }
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    RETURN_IF_ERROR(tx.Exec("INSERT INTO logged_models (model_id, project_id, experiment_id, name, "
                            "artifact_location, status, status_message, model_type, source_run_id, "
                            "user_id, lifecycle, creation_time, last_update_time) VALUES (?, ?, ?, "
                            "?, ?, ?, '', ?, ?, ?, 'active', ?, ?)",
                            {m.model_id, proj.id, AsInt(Value(m.experiment_id)), m.name,
                             m.artifact_location, std::string(StatusText(m.status)), m.model_type,
                             m.source_run_id, m.user_id, m.creation_time, m.last_update_time})
                        .status());
    RETURN_IF_ERROR(impl_->UpsertTags(tx, m.model_id, m.tags));
    return impl_->InsertParams(tx, m.model_id, req.params);
  }));
  for (const Param& param : req.params) {
    if (FindEntry(m.params, param.key) == nullptr) m.params.push_back(param);
  }
  auto by_key = [](const Tag& a, const Tag& b) { return a.key < b.key; };
  std::sort(m.tags.begin(), m.tags.end(), by_key);
  std::sort(m.params.begin(), m.params.end(), by_key);
  return m;
}

StatusOr<LoggedModel> LoggedModelService::Get(const tenancy::Principal& p,
                                              const std::string& project,
                                              const std::string& model_id) {
  return Authorize(p, project, model_id, Role::kViewer);
}

StatusOr<LoggedModel> LoggedModelService::Authorize(const tenancy::Principal& p,
                                                    const std::string& project,
                                                    const std::string& model_id, Role min) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->tenancy.AuthorizeProject(p, project, min));
  LoggedModel m;
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(m, impl_->Load(tx, proj.id, model_id));
    return OkStatus();
  }));
  return m;
}

StatusOr<LoggedModel> LoggedModelService::Finalize(const tenancy::Principal& p,
                                                   const std::string& project,
                                                   const std::string& model_id,
                                                   LoggedModelStatus status) {
  if (status == LoggedModelStatus::kPending) {
    return InvalidArgumentError(
        "Invalid value for parameter 'status': a logged model is finalized as LOGGED_MODEL_READY "
        "or LOGGED_MODEL_UPLOAD_FAILED",
        "status");
  }
  RETURN_IF_ERROR(impl_->Write(p, project, model_id, [&](Tx& tx) -> Status {
    return tx.Exec("UPDATE logged_models SET status = ? WHERE model_id = ?",
                   {std::string(StatusText(status)), model_id})
        .status();
  }));
  return Get(p, project, model_id);
}

Status LoggedModelService::Delete(const tenancy::Principal& p, const std::string& project,
                                  const std::string& model_id) {
  ASSIGN_OR_RETURN(tenancy::Project proj,
                   impl_->tenancy.AuthorizeProject(p, project, Role::kEditor));
  if (!PlausibleModelId(model_id)) return ModelNotFound(model_id);
  return store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(int64_t n, tx.Exec("UPDATE logged_models SET lifecycle = 'deleted', "
                                        "last_update_time = ? WHERE model_id = ? AND project_id = ?",
                                        {impl_->NowMs(), model_id, proj.id}));
    if (n == 0) return ModelNotFound(model_id);
    return OkStatus();
  });
}

Status LoggedModelService::SetTags(const tenancy::Principal& p, const std::string& project,
                                   const std::string& model_id, const std::vector<Tag>& tags) {
  RETURN_IF_ERROR(CheckEntries(tags, "tags", kMaxTagValue));
  return impl_->Write(p, project, model_id,
                      [&](Tx& tx) { return impl_->UpsertTags(tx, model_id, tags); });
}

Status LoggedModelService::DeleteTag(const tenancy::Principal& p, const std::string& project,
                                     const std::string& model_id, const std::string& key) {
  return impl_->Write(p, project, model_id, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(int64_t n, tx.Exec("DELETE FROM logged_model_tags WHERE model_id = ? AND "
                                        "key = ?",
                                        {model_id, key}));
    if (n == 0) {
      return NotFoundError(
          fmt::format("No tag with key '{}' found for logged model with ID '{}'.", key, model_id));
    }
    return OkStatus();
  });
}

Status LoggedModelService::LogParams(const tenancy::Principal& p, const std::string& project,
                                     const std::string& model_id,
                                     const std::vector<Param>& params) {
  RETURN_IF_ERROR(CheckEntries(params, "params", kMaxParamValue));
  return impl_->Write(p, project, model_id,
                      [&](Tx& tx) { return impl_->InsertParams(tx, model_id, params); });
}

StatusOr<LoggedModelPage> LoggedModelService::Search(const tenancy::Principal& p,
                                                     const std::string& project,
                                                     const LoggedModelSearch& search) {
  if (search.page.max_results < 1 || search.page.max_results > kMaxSearchResults) {
    return InvalidArgumentError(fmt::format("Invalid value for parameter 'max_results': {} is not "
                                            "in [1, {}]",
                                            search.page.max_results, kMaxSearchResults),
                                "max_results");
  }
  if (search.experiment_ids.empty()) {
    return InvalidArgumentError("experiment_ids: give at least one experiment", "experiment_ids");
  }
  ASSIGN_OR_RETURN(std::vector<search::Comparison> filter,
                   search::ParseFilter(search.filter, ModelAttributes()));
  std::vector<search::OrderKey> order;
  for (size_t i = 0; i < search.order_by.size(); ++i) {
    const std::string field = fmt::format("order_by[{}].field_name", i);
    ASSIGN_OR_RETURN(search::OrderKey k,
                     search::ParseOrderBy(search.order_by[i].field, field, ModelAttributes()));
    k.ascending = k.ascending && search.order_by[i].ascending;
    order.push_back(std::move(k));
  }
  if (order.empty()) order.push_back({search::EntityType::kAttribute, "creation_timestamp", false});
  ASSIGN_OR_RETURN(int64_t offset, DecodeOffset(search.page.page_token));
  ASSIGN_OR_RETURN(tenancy::Project proj,
                   impl_->tenancy.AuthorizeProject(p, project, Role::kViewer));
  std::vector<Value> experiments;
  for (const std::string& id : search.experiment_ids) {
    ASSIGN_OR_RETURN(Experiment e, impl_->tracking.GetExperiment(p, project, id));
    experiments.emplace_back(AsInt(Value(e.id)));
  }
  std::vector<LoggedModel> models;
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kRead, [&](Tx& tx) -> Status {
    models.clear();
    std::vector<Value> args = experiments;
    args.emplace_back(proj.id);
    ASSIGN_OR_RETURN(ResultSet rs,
                     tx.Query(fmt::format("SELECT {} FROM logged_models WHERE experiment_id IN {} "
                                          "AND project_id = ? AND lifecycle = 'active'",
                                          kColumns, Placeholders(experiments.size())),
                              args));
    for (const auto& r : rs.rows) models.push_back(ModelFromRow(r));
    return impl_->LoadData(tx, models);
  }));
  std::erase_if(models, [&](const LoggedModel& m) {
    for (const search::Comparison& c : filter) {
      if (!Matches(m, c)) return true;
    }
    return false;
  });
  std::sort(models.begin(), models.end(),
            [&](const LoggedModel& a, const LoggedModel& b) { return Before(a, b, order); });
  LoggedModelPage page;
  const int64_t total = static_cast<int64_t>(models.size());
  const int64_t begin = std::min(offset, total);
  const int64_t end = std::min(total, begin + search.page.max_results);
  page.models.assign(std::make_move_iterator(models.begin() + begin),
                     std::make_move_iterator(models.begin() + end));
  if (end < total) page.next_page_token = EncodeOffset(end);
  return page;
}

Status LoggedModelService::LogOutputs(const tenancy::Principal& p, const std::string& project,
                                      const std::string& run_id,
                                      const std::vector<ModelOutput>& outputs) {
  if (outputs.size() > kMaxOutputsPerCall) {
    return InvalidArgumentError(fmt::format("models: {} outputs exceed the limit of {} per call",
                                            outputs.size(), kMaxOutputsPerCall),
                                "models");
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].model_id.empty()) {
      return InvalidArgumentError(fmt::format("Missing value for required parameter "
                                              "'models[{}].model_id'",
                                              i),
                                  fmt::format("models[{}].model_id", i));
    }
  }
  ASSIGN_OR_RETURN(RunInfo run, impl_->tracking.AuthorizeRun(p, project, run_id, Role::kEditor));
  ASSIGN_OR_RETURN(tenancy::Project proj,
                   impl_->tenancy.AuthorizeProject(p, project, Role::kEditor));
  return store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    for (const ModelOutput& o : outputs) {
      RETURN_IF_ERROR(impl_->Load(tx, proj.id, o.model_id, /*with_data=*/false).status());
    }
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT COALESCE(MAX(seq), 0) FROM run_outputs WHERE "
                                            "run_id = ?",
                                            {run.run_id}));
    int64_t seq = AsInt(rs.rows[0][0]);
    for (const ModelOutput& o : outputs) {
      RETURN_IF_ERROR(tx.Exec("INSERT INTO run_outputs (run_id, model_id, step, seq) VALUES (?, ?, "
                              "?, ?) ON CONFLICT (run_id, model_id, step) DO NOTHING",
                              {run.run_id, o.model_id, o.step, ++seq})
                          .status());
    }
    return OkStatus();
  });
}

}  // namespace lathe::tracking
