// RegistryService over the store. Layout (schema.cc, migration 5):
//   registered_models      one row per model: surrogate `id` (renames touch
//                          this row only), unique (project_id, name), and
//                          `last_version`, the counter that numbers versions
//   registered_model_tags  (model_id, key)
//   model_versions         (model_id, version)
//   model_version_tags     (model_id, version, key)
//   model_aliases          (model_id, alias) → version
// One transaction per call; times are MLflow's milliseconds. Searches build
// SQL from the registry filter grammar (registry.h) and page by offset.
#include "registry/registry.h"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <set>

#include "base/crypto.h"
#include "base/id.h"
#include "base/strings.h"

namespace lathe::registry {

using store::AsInt;
using store::AsText;
using store::Placeholders;
using store::ResultSet;
using store::Tx;
using store::TxMode;
using store::Value;
using tenancy::Role;

namespace {

// Limits (protocols.md §5.7).
constexpr size_t kMaxModelName = 256;
constexpr size_t kMaxTagKey = 250;
constexpr size_t kMaxTagValue = 100'000;
constexpr size_t kMaxAlias = 255;
constexpr int64_t kMaxModelResults = 1'000;
constexpr int64_t kMaxVersionResults = 200'000;

constexpr std::string_view kStages[] = {"None", "Staging", "Production", "Archived"};

// Lineage tags set by the job controller (and pipelines).
constexpr std::string_view kJobIdTag = "lathe.job_id";
constexpr std::string_view kJobNameTag = "lathe.job_name";
constexpr std::string_view kPipelineRunTag = "lathe.pipeline_run_id";
constexpr std::string_view kPipelineStepTag = "lathe.pipeline_step";
constexpr std::string_view kCodeDigestTag = "lathe.code_digest";

const char* kVersionColumns =
    "v.version, v.creation_time, v.last_update_time, v.user_id, v.description, v.stage, "
    "v.source, v.run_id, v.run_link, v.status, v.status_message";

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20; });
}

Status ModelNotFound(std::string_view name) {
  return NotFoundError(fmt::format("Registered Model with name={} not found", name));
}
Status VersionNotFound(std::string_view name, int64_t version) {
  return NotFoundError(fmt::format("Model Version (name={}, version={}) not found", name, version));
}

Status ValidateModelName(std::string_view name, std::string_view field) {
  if (name.empty()) {
    return InvalidArgumentError(fmt::format("{}: Registered model name cannot be empty.", field),
                                std::string(field));
  }
  if (name.size() > kMaxModelName) {
    return InvalidArgumentError(
        fmt::format("{}: model name of {} characters exceeds the limit of {}", field, name.size(),
                    kMaxModelName),
        std::string(field));
  }
  if (name.find('/') != std::string_view::npos || HasControl(name)) {
    return InvalidArgumentError(
        fmt::format("{}: model name \"{}\" may not contain '/' or control characters", field, name),
        std::string(field));
  }
  return OkStatus();
}

// MLflow's tag key rule: alphanumerics, _ - . space / :, no "..", no
// leading '/'; at most 250 characters. Values: at most 100,000, no NUL.
// Errors name `field`, or `value_field` for the value when given.
Status ValidateTag(const Tag& t, std::string_view field, std::string_view value_field = {}) {
  if (t.key.empty()) {
    return InvalidArgumentError(fmt::format("{}: a tag key is required", field),
                                std::string(field));
  }
  if (t.key.size() > kMaxTagKey) {
    return InvalidArgumentError(
        fmt::format("{}: tag key \"{}…\" is longer than the limit of {} characters", field,
                    t.key.substr(0, 40), kMaxTagKey),
        std::string(field));
  }
  for (char c : t.key) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
          c == ' ' || c == '/' || c == ':')) {
      return InvalidArgumentError(
          fmt::format("{}: Invalid tag name: '{}'. Names may only contain alphanumerics, "
                      "underscores (_), dashes (-), periods (.), spaces ( ), colons (:) and "
                      "slashes (/).",
                      field, t.key),
          std::string(field));
    }
  }
  if (t.key.find("..") != std::string::npos || t.key.front() == '/') {
    return InvalidArgumentError(
        fmt::format("{}: Invalid tag name: '{}' (no '..', no leading '/')", field, t.key),
        std::string(field));
  }
  if (value_field.empty()) value_field = field;
  if (t.value.size() > kMaxTagValue) {
    return InvalidArgumentError(
        fmt::format("{}: tag value of {} characters exceeds the limit of {}", value_field,
                    t.value.size(), kMaxTagValue),
        std::string(value_field));
  }
  if (t.value.find('\0') != std::string::npos) {
    return InvalidArgumentError(fmt::format("{}: tag value contains a NUL character", value_field),
                                std::string(value_field));
  }
  return OkStatus();
}

Status ValidateTags(const std::vector<Tag>& tags, std::string_view field) {
  for (size_t i = 0; i < tags.size(); ++i) {
    RETURN_IF_ERROR(ValidateTag(tags[i], fmt::format("{}[{}]", field, i)));
  }
  return OkStatus();
}

Status ValidateAlias(std::string_view alias) {
  if (alias.empty()) {
    return InvalidArgumentError("alias: Registered model alias name cannot be empty.", "alias");
  }
  if (alias.size() > kMaxAlias) {
    return InvalidArgumentError(fmt::format("alias: alias of {} characters exceeds the limit of {}",
                                            alias.size(), kMaxAlias),
                                "alias");
  }
  for (char c : alias) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) {
      return InvalidArgumentError(
          fmt::format("alias: Invalid alias name: '{}'. Alias names may only contain "
                      "alphanumerics, underscores (_) and dashes (-).",
                      alias),
          "alias");
    }
  }
  if (EqualsIgnoreCaseAscii(alias, "latest")) {
    return InvalidArgumentError("alias: 'latest' alias name (case insensitive) is reserved.",
                                "alias");
  }
  if ((alias[0] == 'v' || alias[0] == 'V') && alias.size() > 1 &&
      std::all_of(alias.begin() + 1, alias.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return InvalidArgumentError(
        fmt::format("alias: Version alias name '{}' is reserved (v<number> names a version).",
                    alias),
        "alias");
  }
  return OkStatus();
}

// "o:<offset>" as an opaque token.
std::string EncodeOffsetToken(int64_t offset) {
  return Base64UrlEncode("o:" + std::to_string(offset));
}
StatusOr<int64_t> DecodeOffsetToken(std::string_view token) {
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

// MLflow's LIKE is case-sensitive; SQLite's LIKE ignores ASCII case, so
// there a case-sensitive pattern becomes GLOB.
std::string LikeToGlob(std::string_view like) {
  std::string out;
  for (char c : like) {
    switch (c) {
      case '%':
        out += '*';
        break;
      case '_':
        out += '?';
        break;
      case '*':
        out += "[*]";
        break;
      case '?':
        out += "[?]";
        break;
      case '[':
        out += "[[]";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// ---------------------------------------------------------------- filter

// The registry's filter grammar (registry.h), parsed into clauses.
enum class Attr { kName, kTag, kRunId, kVersion, kSource, kStage };

struct Clause {
  Attr attr = Attr::kName;
  std::string key;  // tag key
  std::string op;   // "=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN"
  std::vector<std::string> values;  // one, or the IN list
  int64_t number = 0;               // version_number
};

class FilterParser {
 public:
  FilterParser(std::string_view text, bool versions) : text_(text), versions_(versions) {}

  StatusOr<std::vector<Clause>> Parse() {
    std::vector<Clause> out;
    if (AtEnd()) return out;
    while (true) {
      ASSIGN_OR_RETURN(Clause c, ParseClause());
      out.push_back(std::move(c));
      if (AtEnd()) break;
      std::string w = Word();
      if (EqualsIgnoreCaseAscii(w, "or")) return Error("OR is not supported; join conditions with AND");
      if (!EqualsIgnoreCaseAscii(w, "and")) return Error("expected AND between conditions");
    }
    return out;
  }

 private:
  Status Error(std::string_view what) const {
    return InvalidArgumentError(
        fmt::format("filter: {} at position {} of \"{}\"", what, pos_ + 1, text_), "filter");
  }
  void Skip() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool AtEnd() {
    Skip();
    return pos_ >= text_.size();
  }
  static bool IdentChar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == ':' ||
           c == '/' || c == '-';
  }
  std::string Word() {
    Skip();
    size_t start = pos_;
    while (pos_ < text_.size() && std::isalpha(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }
  // 'text', "text" or `text`; a doubled quote inside stands for itself.
  StatusOr<std::string> Quoted() {
    Skip();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"' && text_[pos_] != '`')) {
      return Error("expected a quoted string");
    }
    char q = text_[pos_++];
    std::string out;
    while (pos_ < text_.size()) {
      char c = text_[pos_++];
      if (c == q) {
        if (pos_ < text_.size() && text_[pos_] == q) {
          out += q;
          ++pos_;
          continue;
        }
        return out;
      }
      out += c;
    }
    return Error("unterminated string");
  }

  StatusOr<Clause> ParseClause() {
    Skip();
    size_t start = pos_;
    Clause c;
    std::string ident;
    while (pos_ < text_.size() && IdentChar(text_[pos_])) ++pos_;
    ident = std::string(text_.substr(start, pos_ - start));
    std::string lower = ident;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (lower == "tags." || lower == "tag.") {
      ASSIGN_OR_RETURN(c.key, Quoted());  // tags.`key with spaces`
      c.attr = Attr::kTag;
    } else if (lower.starts_with("tags.") || lower.starts_with("tag.")) {
      c.attr = Attr::kTag;
      c.key = ident.substr(ident.find('.') + 1);
    } else {
      for (std::string_view prefix : {"attributes.", "attribute.", "attr."}) {
        if (lower.starts_with(prefix)) lower = lower.substr(prefix.size());
      }
      if (lower == "name") {
        c.attr = Attr::kName;
      } else if (versions_ && lower == "run_id") {
        c.attr = Attr::kRunId;
      } else if (versions_ && (lower == "version_number" || lower == "version")) {
        c.attr = Attr::kVersion;
      } else if (versions_ && (lower == "source_path" || lower == "source")) {
        c.attr = Attr::kSource;
      } else if (versions_ && lower == "current_stage") {
        c.attr = Attr::kStage;
      } else {
        pos_ = start;
        return Error(
            fmt::format("unsupported identifier \"{}\" (use name, tags.<key>{})", ident,
                        versions_ ? ", run_id, version_number, source_path, current_stage" : ""));
      }
    }
    // The comparator.
    Skip();
    if (text_.substr(pos_, 2) == "!=" || text_.substr(pos_, 2) == "<>") {
      c.op = "!=";
      pos_ += 2;
    } else if (text_.substr(pos_, 2) == "<=" || text_.substr(pos_, 2) == ">=") {
      c.op = std::string(text_.substr(pos_, 2));
      pos_ += 2;
    } else if (pos_ < text_.size() &&
               (text_[pos_] == '=' || text_[pos_] == '<' || text_[pos_] == '>')) {
      c.op = std::string(1, text_[pos_++]);
    } else {
      std::string w = Word();
      for (char& ch : w) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      if (w == "NOT") {
        std::string in = Word();
        if (!EqualsIgnoreCaseAscii(in, "in")) return Error("expected IN after NOT");
        w = "NOT IN";
      }
      if (w != "LIKE" && w != "ILIKE" && w != "IN" && w != "NOT IN") {
        return Error("expected a comparator (=, !=, LIKE, ILIKE, IN)");
      }
      c.op = w;
    }
    const bool ordering = c.op == "<" || c.op == "<=" || c.op == ">" || c.op == ">=";
    const bool list = c.op == "IN" || c.op == "NOT IN";
    if (c.attr == Attr::kVersion) {
      if (c.op == "LIKE" || c.op == "ILIKE" || list) {
        return Error("version_number takes =, !=, <, <=, >, >= and an integer");
      }
      Skip();
      std::string digits;
      if (pos_ < text_.size() && (text_[pos_] == '\'' || text_[pos_] == '"')) {
        ASSIGN_OR_RETURN(digits, Quoted());
      } else {
        size_t s = pos_;
        while (pos_ < text_.size() &&
               (std::isdigit(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '-')) {
          ++pos_;
        }
        digits = std::string(text_.substr(s, pos_ - s));
      }
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), c.number);
      if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
        return Error("expected an integer version");
      }
      return c;
    }
    if (ordering) return Error(fmt::format("'{}' compares numbers only (version_number)", c.op));
    if (list) {
      if (c.attr == Attr::kTag) return Error("tags take =, !=, LIKE, ILIKE");
      Skip();
      if (pos_ >= text_.size() || text_[pos_] != '(') return Error("expected '(' after IN");
      ++pos_;
      while (true) {
        ASSIGN_OR_RETURN(std::string v, Quoted());
        c.values.push_back(std::move(v));
        Skip();
        if (pos_ < text_.size() && text_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (pos_ < text_.size() && text_[pos_] == ')') {
          ++pos_;
          break;
        }
        return Error("expected ',' or ')' in the IN list");
      }
    } else {
      ASSIGN_OR_RETURN(std::string v, Quoted());
      c.values.push_back(std::move(v));
    }
    if (c.attr == Attr::kStage && c.op != "LIKE" && c.op != "ILIKE") {
      for (std::string& v : c.values) {
        ASSIGN_OR_RETURN(v, ParseStage(v, "filter"));
      }
    }
    return c;
  }

  std::string_view text_;
  bool versions_;
  size_t pos_ = 0;
};

// ORDER BY terms for `order_by`. Names sort by their bytes on both drivers
// (PostgreSQL's default collation would follow the locale).
StatusOr<std::string> OrderBySql(const std::vector<std::string>& order_by, bool versions,
                                 bool postgres) {
  const std::string name_column = postgres ? "m.name COLLATE \"C\"" : "m.name";
  std::vector<std::string> terms;
  std::set<std::string> seen;
  for (size_t i = 0; i < order_by.size(); ++i) {
    std::string field = fmt::format("order_by[{}]", i);
    std::string_view s = order_by[i];
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    size_t space = s.find_first_of(" \t");
    std::string key(s.substr(0, space));
    std::string dir;
    if (space != std::string_view::npos) {
      std::string_view rest = s.substr(space);
      while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.front())))
        rest.remove_prefix(1);
      dir = std::string(rest);
    }
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (std::string_view prefix : {"attributes.", "attribute.", "attr."}) {
      if (key.starts_with(prefix)) key = key.substr(prefix.size());
    }
    bool asc = true;
    if (EqualsIgnoreCaseAscii(dir, "desc")) {
      asc = false;
    } else if (!dir.empty() && !EqualsIgnoreCaseAscii(dir, "asc")) {
      return InvalidArgumentError(
          fmt::format("{}: \"{}\": expected ASC or DESC after the key", field, order_by[i]), field);
    }
    std::string column;
    if (key == "name") {
      column = name_column;
    } else if (key == "creation_timestamp") {
      column = versions ? "v.creation_time" : "m.creation_time";
    } else if (key == "last_updated_timestamp" || key == "timestamp") {
      column = versions ? "v.last_update_time" : "m.last_update_time";
    } else if (versions && (key == "version_number" || key == "version")) {
      column = "v.version";
    } else {
      return InvalidArgumentError(
          fmt::format("{}: Invalid order by key '{}'; valid keys are name, creation_timestamp, "
                      "last_updated_timestamp{}",
                      field, key, versions ? ", version_number" : ""),
          field);
    }
    if (!seen.insert(column).second) {
      return InvalidArgumentError(
          fmt::format("{}: order_by contains duplicate fields: {}", field, key), field);
    }
    terms.push_back(column + (asc ? " ASC" : " DESC"));
  }
  if (!seen.contains(name_column)) terms.push_back(name_column + " ASC");
  if (versions && !seen.contains("v.version")) terms.push_back("v.version DESC");
  std::string out;
  for (const std::string& t : terms) out += (out.empty() ? "" : ", ") + t;
  return out;
}

ModelVersion VersionFromRow(const std::vector<Value>& r, size_t at, const std::string& name) {
  ModelVersion v;
  v.name = name;
  v.version = AsInt(r[at]);
  v.creation_timestamp = AsInt(r[at + 1]);
  v.last_updated_timestamp = AsInt(r[at + 2]);
  v.user_id = AsText(r[at + 3]);
  v.description = AsText(r[at + 4]);
  v.current_stage = AsText(r[at + 5]);
  v.source = AsText(r[at + 6]);
  v.run_id = AsText(r[at + 7]);
  v.run_link = AsText(r[at + 8]);
  const std::string& status = AsText(r[at + 9]);
  v.status = status == "PENDING_REGISTRATION"  ? ModelVersionStatus::kPendingRegistration
             : status == "FAILED_REGISTRATION" ? ModelVersionStatus::kFailedRegistration
                                               : ModelVersionStatus::kReady;
  v.status_message = AsText(r[at + 10]);
  return v;
}

std::string TagValue(const std::vector<Tag>& tags, std::string_view key) {
  for (const Tag& t : tags) {
    if (t.key == key) return t.value;
  }
  return "";
}

}  // namespace

std::string_view ModelVersionStatusName(ModelVersionStatus s) {
  switch (s) {
    case ModelVersionStatus::kPendingRegistration:
      return "PENDING_REGISTRATION";
    case ModelVersionStatus::kFailedRegistration:
      return "FAILED_REGISTRATION";
    case ModelVersionStatus::kReady:
      return "READY";
  }
  return "READY";
}

StatusOr<std::string> ParseStage(std::string_view stage, std::string_view field) {
  for (std::string_view s : kStages) {
    if (EqualsIgnoreCaseAscii(stage, s)) return std::string(s);
  }
  return InvalidArgumentError(
      fmt::format("{}: Invalid Model Version stage: {}. Value must be one of None, Staging, "
                  "Production, Archived.",
                  field, stage),
      std::string(field));
}

// ---------------------------------------------------------------- Impl

struct RegistryService::Impl {
  Impl(store::Store& s, tenancy::TenancyService& t, TrackingService& tr, const Clock& c)
      : store(s), tenancy(t), tracking(tr), clock(c), postgres(s.driver() == "postgres") {}

  store::Store& store;
  tenancy::TenancyService& tenancy;
  TrackingService& tracking;
  const Clock& clock;
  const bool postgres;

  int64_t NowMs() const { return clock.NowMicros() / 1000; }

  StatusOr<tenancy::Project> Authorize(const tenancy::Principal& p, const std::string& project,
                                       Role role) {
    return tenancy.AuthorizeProject(p, project, role);
  }

  // A model's row (no tags, aliases or versions yet) and its id.
  struct ModelRow {
    std::string id;
    RegisteredModel model;
  };

  static constexpr const char* kModelColumns =
      "m.id, m.name, m.description, m.creation_time, m.last_update_time";

  static ModelRow ModelFromRow(const std::vector<Value>& r, const std::string& project) {
    ModelRow row;
    row.id = AsText(r[0]);
    row.model.name = AsText(r[1]);
    row.model.project = project;
    row.model.description = AsText(r[2]);
    row.model.creation_timestamp = AsInt(r[3]);
    row.model.last_updated_timestamp = AsInt(r[4]);
    return row;
  }

  StatusOr<ModelRow> FindModel(Tx& tx, const tenancy::Project& proj, const std::string& name) {
    ASSIGN_OR_RETURN(ResultSet rs,
                     tx.Query(fmt::format("SELECT {} FROM registered_models m WHERE m.project_id = "
                                          "? AND m.name = ?",
                                          kModelColumns),
                              {proj.id, name}));
    if (rs.empty()) return ModelNotFound(name);
    return ModelFromRow(rs.rows[0], proj.name);
  }

  // Tags and aliases of `versions` (all of model `model_id`), in place.
  Status LoadVersionDetails(Tx& tx, const std::string& model_id,
                            std::vector<ModelVersion>& versions) {
    for (ModelVersion& v : versions) {
      ASSIGN_OR_RETURN(ResultSet tags, tx.Query("SELECT key, value FROM model_version_tags WHERE "
                                                "model_id = ? AND version = ? ORDER BY key",
                                                {model_id, v.version}));
      v.tags.clear();
      for (auto& r : tags.rows) v.tags.push_back({AsText(r[0]), AsText(r[1])});
      ASSIGN_OR_RETURN(ResultSet aliases, tx.Query("SELECT alias FROM model_aliases WHERE model_id "
                                                   "= ? AND version = ? ORDER BY alias",
                                                   {model_id, v.version}));
      v.aliases.clear();
      for (auto& r : aliases.rows) v.aliases.push_back(AsText(r[0]));
    }
    return OkStatus();
  }

  StatusOr<ModelVersion> LoadVersion(Tx& tx, const ModelRow& m, int64_t version) {
    ASSIGN_OR_RETURN(ResultSet rs,
                     tx.Query(fmt::format("SELECT {} FROM model_versions v WHERE v.model_id = ? "
                                          "AND v.version = ?",
                                          kVersionColumns),
                              {m.id, version}));
    if (rs.empty()) return VersionNotFound(m.model.name, version);
    std::vector<ModelVersion> one{VersionFromRow(rs.rows[0], 0, m.model.name)};
    RETURN_IF_ERROR(LoadVersionDetails(tx, m.id, one));
    return std::move(one[0]);
  }

  // The highest version in each stage, by version.
  StatusOr<std::vector<ModelVersion>> LatestVersions(Tx& tx, const ModelRow& m) {
    ASSIGN_OR_RETURN(ResultSet rs,
                     tx.Query(fmt::format("SELECT {} FROM model_versions v WHERE v.model_id = ? "
                                          "AND v.version = (SELECT MAX(x.version) FROM "
                                          "model_versions x WHERE x.model_id = v.model_id AND "
                                          "x.stage = v.stage) ORDER BY v.version",
                                          kVersionColumns),
                              {m.id}));
    std::vector<ModelVersion> out;
    for (auto& r : rs.rows) out.push_back(VersionFromRow(r, 0, m.model.name));
    RETURN_IF_ERROR(LoadVersionDetails(tx, m.id, out));
    return out;
  }

  // Fills the model's tags, aliases and latest versions.
  Status LoadModelDetails(Tx& tx, ModelRow& m) {
    ASSIGN_OR_RETURN(ResultSet tags, tx.Query("SELECT key, value FROM registered_model_tags WHERE "
                                              "model_id = ? ORDER BY key",
                                              {m.id}));
    m.model.tags.clear();
    for (auto& r : tags.rows) m.model.tags.push_back({AsText(r[0]), AsText(r[1])});
    ASSIGN_OR_RETURN(ResultSet aliases, tx.Query("SELECT alias, version FROM model_aliases WHERE "
                                                 "model_id = ? ORDER BY alias",
                                                 {m.id}));
    m.model.aliases.clear();
    for (auto& r : aliases.rows) m.model.aliases.push_back({AsText(r[0]), AsInt(r[1])});
    ASSIGN_OR_RETURN(m.model.latest_versions, LatestVersions(tx, m));
    return OkStatus();
  }

  StatusOr<RegisteredModel> LoadModel(Tx& tx, const tenancy::Project& proj,
                                      const std::string& name) {
    ASSIGN_OR_RETURN(ModelRow m, FindModel(tx, proj, name));
    RETURN_IF_ERROR(LoadModelDetails(tx, m));
    return std::move(m.model);
  }

  Status TouchModel(Tx& tx, const std::string& model_id, int64_t now) {
    return tx
        .Exec("UPDATE registered_models SET last_update_time = ? WHERE id = ?", {now, model_id})
        .status();
  }

  // SQL for `column <op> value` with MLflow's LIKE semantics on this driver.
  std::string StringComparison(const std::string& column, const Clause& c,
                               std::vector<Value>* args) {
    if (c.op == "IN" || c.op == "NOT IN") {
      for (const std::string& v : c.values) args->emplace_back(v);
      return column + " " + c.op + " " + Placeholders(c.values.size());
    }
    const std::string& v = c.values[0];
    if (c.op == "LIKE") {
      if (postgres) {
        args->emplace_back(v);
        return column + " LIKE ?";
      }
      args->emplace_back(LikeToGlob(v));
      return column + " GLOB ?";
    }
    if (c.op == "ILIKE") {
      args->emplace_back(v);
      return column + (postgres ? " ILIKE ?" : " LIKE ?");
    }
    args->emplace_back(v);
    return column + " " + c.op + " ?";
  }

  // " AND …" for every clause.
  std::string WhereSql(const std::vector<Clause>& clauses, bool versions,
                       std::vector<Value>* args) {
    std::string sql;
    for (const Clause& c : clauses) {
      sql += " AND ";
      switch (c.attr) {
        case Attr::kName:
          sql += StringComparison("m.name", c, args);
          break;
        case Attr::kRunId:
          sql += StringComparison("v.run_id", c, args);
          break;
        case Attr::kSource:
          sql += StringComparison("v.source", c, args);
          break;
        case Attr::kStage:
          sql += StringComparison("v.stage", c, args);
          break;
        case Attr::kVersion:
          args->emplace_back(c.number);
          sql += "v.version " + c.op + " ?";
          break;
        case Attr::kTag: {
          args->emplace_back(c.key);
          std::string value = StringComparison("t.value", c, args);
          sql += versions ? "EXISTS (SELECT 1 FROM model_version_tags t WHERE t.model_id = "
                            "v.model_id AND t.version = v.version AND t.key = ? AND " +
                                value + ")"
                          : "EXISTS (SELECT 1 FROM registered_model_tags t WHERE t.model_id = "
                            "m.id AND t.key = ? AND " +
                                value + ")";
          break;
        }
      }
    }
    return sql;
  }
};

RegistryService::RegistryService(store::Store& store, tenancy::TenancyService& tenancy,
                                 TrackingService& tracking, const Clock& clock)
    : impl_(std::make_unique<Impl>(store, tenancy, tracking, clock)) {}

RegistryService::~RegistryService() = default;

// ---------------------------------------------------------------- models

StatusOr<RegisteredModel> RegistryService::CreateModel(const tenancy::Principal& p,
                                                       const std::string& project,
                                                       const std::string& name,
                                                       const std::string& description,
                                                       const std::vector<Tag>& tags) {
  RETURN_IF_ERROR(ValidateModelName(name, "name"));
  RETURN_IF_ERROR(ValidateTags(tags, "tags"));
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  RegisteredModel out;
  Status st = store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ResultSet taken, tx.Query("SELECT 1 FROM registered_models WHERE project_id = "
                                               "? AND name = ?",
                                               {proj.id, name}));
    if (!taken.empty()) {
      return AlreadyExistsError(fmt::format("Registered Model (name={}) already exists.", name),
                                "name");
    }
    const std::string id = NewId();
    const int64_t now = impl_->NowMs();
    RETURN_IF_ERROR(tx.Exec("INSERT INTO registered_models (id, project_id, name, description, "
                            "creation_time, last_update_time, last_version) VALUES (?, ?, ?, ?, ?, "
                            "?, 0)",
                            {id, proj.id, name, description, now, now})
                        .status());
    for (const Tag& t : tags) {
      RETURN_IF_ERROR(tx.Exec("INSERT INTO registered_model_tags (model_id, key, value) VALUES (?, "
                              "?, ?) ON CONFLICT (model_id, key) DO UPDATE SET value = "
                              "excluded.value",
                              {id, t.key, t.value})
                          .status());
    }
    ASSIGN_OR_RETURN(out, impl_->LoadModel(tx, proj, name));
    return OkStatus();
  });
  if (st.code() == StatusCode::kAlreadyExists) {
    // Another server inserted the same name between our check and insert.
    return AlreadyExistsError(fmt::format("Registered Model (name={}) already exists.", name),
                              "name");
  }
  RETURN_IF_ERROR(st);
  return out;
}

StatusOr<RegisteredModel> RegistryService::GetModel(const tenancy::Principal& p,
                                                    const std::string& project,
                                                    const std::string& name) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kViewer));
  RegisteredModel out;
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(out, impl_->LoadModel(tx, proj, name));
    return OkStatus();
  }));
  return out;
}

StatusOr<RegisteredModel> RegistryService::RenameModel(const tenancy::Principal& p,
                                                       const std::string& project,
                                                       const std::string& name,
                                                       const std::string& new_name) {
  RETURN_IF_ERROR(ValidateModelName(new_name, "new_name"));
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  RegisteredModel out;
  Status st = store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Impl::ModelRow m, impl_->FindModel(tx, proj, name));
    if (new_name != name) {
      ASSIGN_OR_RETURN(ResultSet taken, tx.Query("SELECT 1 FROM registered_models WHERE "
                                                 "project_id = ? AND name = ?",
                                                 {proj.id, new_name}));
      if (!taken.empty()) {
        return AlreadyExistsError(
            fmt::format("Registered Model (name={}) already exists.", new_name), "new_name");
      }
      const int64_t now = impl_->NowMs();
      RETURN_IF_ERROR(tx.Exec("UPDATE registered_models SET name = ?, last_update_time = ? WHERE "
                              "id = ?",
                              {new_name, now, m.id})
                          .status());
      // As MLflow: the versions' names change, so their update time moves.
      RETURN_IF_ERROR(
          tx.Exec("UPDATE model_versions SET last_update_time = ? WHERE model_id = ?", {now, m.id})
              .status());
    }
    ASSIGN_OR_RETURN(out, impl_->LoadModel(tx, proj, new_name));
    return OkStatus();
  });
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError(fmt::format("Registered Model (name={}) already exists.", new_name),
                              "new_name");
  }
  RETURN_IF_ERROR(st);
  return out;
}

StatusOr<RegisteredModel> RegistryService::UpdateModel(const tenancy::Principal& p,
                                                       const std::string& project,
                                                       const std::string& name,
                                                       const std::string& description) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  RegisteredModel out;
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Impl::ModelRow m, impl_->FindModel(tx, proj, name));
    RETURN_IF_ERROR(tx.Exec("UPDATE registered_models SET description = ?, last_update_time = ? "
                            "WHERE id = ?",
                            {description, impl_->NowMs(), m.id})
                        .status());
    ASSIGN_OR_RETURN(out, impl_->LoadModel(tx, proj, name));
    return OkStatus();
  }));
  return out;
}

Status RegistryService::DeleteModel(const tenancy::Principal& p, const std::string& project,
                                    const std::string& name) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  return store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Impl::ModelRow m, impl_->FindModel(tx, proj, name));
    // Children first, so the delete does not depend on cascades.
    for (const char* sql : {"DELETE FROM model_aliases WHERE model_id = ?",
                            "DELETE FROM model_version_tags WHERE model_id = ?",
                            "DELETE FROM model_versions WHERE model_id = ?",
                            "DELETE FROM registered_model_tags WHERE model_id = ?",
                            "DELETE FROM registered_models WHERE id = ?"}) {
      RETURN_IF_ERROR(tx.Exec(sql, {m.id}).status());
    }
    return OkStatus();
  });
}

StatusOr<std::vector<RegisteredModel>> RegistryService::SearchModels(const tenancy::Principal& p,
                                                                     const std::string& project,
                                                                     const RegistrySearch& search,
                                                                     std::string* next_page_token) {
  if (search.max_results < 1 || search.max_results > kMaxModelResults) {
    return InvalidArgumentError(
        fmt::format("max_results: Invalid value for request parameter max_results. It must be "
                    "between 1 and {}, but got value {}",
                    kMaxModelResults, search.max_results),
        "max_results");
  }
  ASSIGN_OR_RETURN(int64_t offset, DecodeOffsetToken(search.page_token));
  ASSIGN_OR_RETURN(std::vector<Clause> clauses, FilterParser(search.filter, false).Parse());
  ASSIGN_OR_RETURN(std::string order, OrderBySql(search.order_by, false, impl_->postgres));
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kViewer));
  std::vector<RegisteredModel> out;
  if (next_page_token != nullptr) next_page_token->clear();
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kRead, [&](Tx& tx) -> Status {
    out.clear();
    std::vector<Value> args{proj.id};
    std::string sql = fmt::format("SELECT {} FROM registered_models m WHERE m.project_id = ?",
                                  Impl::kModelColumns) +
                      impl_->WhereSql(clauses, false, &args) + " ORDER BY " + order +
                      " LIMIT ? OFFSET ?";
    args.emplace_back(search.max_results + 1);
    args.emplace_back(offset);
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query(sql, args));
    const bool more = static_cast<int64_t>(rs.size()) > search.max_results;
    if (more) rs.rows.pop_back();
    for (auto& r : rs.rows) {
      Impl::ModelRow m = Impl::ModelFromRow(r, proj.name);
      RETURN_IF_ERROR(impl_->LoadModelDetails(tx, m));
      out.push_back(std::move(m.model));
    }
    if (more && next_page_token != nullptr) {
      *next_page_token = EncodeOffsetToken(offset + search.max_results);
    }
    return OkStatus();
  }));
  return out;
}

StatusOr<std::vector<ModelVersion>> RegistryService::GetLatestVersions(
    const tenancy::Principal& p, const std::string& project, const std::string& name,
    const std::vector<std::string>& stages) {
  std::set<std::string> wanted;
  for (size_t i = 0; i < stages.size(); ++i) {
    ASSIGN_OR_RETURN(std::string s, ParseStage(stages[i], fmt::format("stages[{}]", i)));
    wanted.insert(std::move(s));
  }
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kViewer));
  std::vector<ModelVersion> out;
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Impl::ModelRow m, impl_->FindModel(tx, proj, name));
    ASSIGN_OR_RETURN(std::vector<ModelVersion> latest, impl_->LatestVersions(tx, m));
    out.clear();
    for (ModelVersion& v : latest) {
      if (wanted.empty() || wanted.contains(v.current_stage)) out.push_back(std::move(v));
    }
    return OkStatus();
  }));
  return out;
}

Status RegistryService::SetModelTag(const tenancy::Principal& p, const std::string& project,
                                    const std::string& name, const Tag& tag) {
  RETURN_IF_ERROR(ValidateTag(tag, "key", "value"));
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  return store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Impl::ModelRow m, impl_->FindModel(tx, proj, name));
    return tx
        .Exec(
            "INSERT INTO registered_model_tags (model_id, key, value) VALUES (?, ?, ?) ON "
            "CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
            {m.id, tag.key, tag.value})
        .status();
  });
}

Status RegistryService::DeleteModelTag(const tenancy::Principal& p, const std::string& project,
                                       const std::string& name, const std::string& key) {
  if (key.empty()) return InvalidArgumentError("key: a tag key is required", "key");
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  return store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Impl::ModelRow m, impl_->FindModel(tx, proj, name));
    return tx.Exec("DELETE FROM registered_model_tags WHERE model_id = ? AND key = ?", {m.id, key})
        .status();
  });
}

// ---------------------------------------------------------------- aliases

Status RegistryService::SetAlias(const tenancy::Principal& p, const std::string& project,
                                 const std::string& name, const std::string& alias,
                                 int64_t version) {
  RETURN_IF_ERROR(ValidateAlias(alias));
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  return store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Impl::ModelRow m, impl_->FindModel(tx, proj, name));
    ASSIGN_OR_RETURN(ResultSet v, tx.Query("SELECT 1 FROM model_versions WHERE model_id = ? AND "
                                           "version = ?",
                                           {m.id, version}));
    if (v.empty()) return VersionNotFound(name, version);
    return tx
        .Exec(
            "INSERT INTO model_aliases (model_id, alias, version) VALUES (?, ?, ?) ON CONFLICT "
            "(model_id, alias) DO UPDATE SET version = excluded.version",
            {m.id, alias, version})
        .status();
  });
}

Status RegistryService::DeleteAlias(const tenancy::Principal& p, const std::string& project,
                                    const std::string& name, const std::string& alias) {
  RETURN_IF_ERROR(ValidateAlias(alias));
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  return store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Impl::ModelRow m, impl_->FindModel(tx, proj, name));
    return tx.Exec("DELETE FROM model_aliases WHERE model_id = ? AND alias = ?", {m.id, alias})
        .status();
  });
}

StatusOr<ModelVersion> RegistryService::GetVersionByAlias(const tenancy::Principal& p,
                                                          const std::string& project,
                                                          const std::string& name,
                                                          const std::string& alias) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kViewer));
  ModelVersion out;
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Impl::ModelRow m, impl_->FindModel(tx, proj, name));
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT version FROM model_aliases WHERE model_id = ? "
                                            "AND alias = ?",
                                            {m.id, alias}));
    if (rs.empty()) {
      return NotFoundError(
          fmt::format("Registered model alias {} not found for model {}.", alias, name));
    }
    ASSIGN_OR_RETURN(out, impl_->LoadVersion(tx, m, AsInt(rs.rows[0][0])));
    return OkStatus();
  }));
  return out;
}

// ---------------------------------------------------------------- versions

StatusOr<ModelVersion> RegistryService::CreateVersion(const tenancy::Principal& p,
                                                      const std::string& project,
                                                      const CreateModelVersion& req) {
  RETURN_IF_ERROR(ValidateModelName(req.name, "name"));
  if (req.source.empty()) {
    return InvalidArgumentError("source: a model version needs a source (where its files are)",
                                "source");
  }
  if (HasControl(req.source)) {
    return InvalidArgumentError("source: contains control characters", "source");
  }
  RETURN_IF_ERROR(ValidateTags(req.tags, "tags"));
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  if (!req.run_id.empty()) {
    auto run = impl_->tracking.AuthorizeRun(p, project, req.run_id, Role::kViewer);
    if (!run.ok()) {
      if (run.status().code() != StatusCode::kNotFound) return run.status();
      return InvalidArgumentError(
          fmt::format("run_id: run \"{}\" does not exist in project \"{}\"", req.run_id, project),
          "run_id");
    }
  }
  ModelVersion out;
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Impl::ModelRow m, impl_->FindModel(tx, proj, req.name));
    const int64_t now = impl_->NowMs();
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("UPDATE registered_models SET last_version = "
                                            "last_version + 1, last_update_time = ? WHERE id = ? "
                                            "RETURNING last_version",
                                            {now, m.id}));
    if (rs.empty()) return ModelNotFound(req.name);
    const int64_t version = AsInt(rs.rows[0][0]);
    RETURN_IF_ERROR(tx.Exec("INSERT INTO model_versions (model_id, version, creation_time, "
                            "last_update_time, user_id, description, stage, source, run_id, "
                            "run_link, status, status_message) VALUES (?, ?, ?, ?, ?, ?, 'None', "
                            "?, ?, ?, 'READY', '')",
                            {m.id, version, now, now, p.user_name, req.description, req.source,
                             req.run_id, req.run_link})
                        .status());
    for (const Tag& t : req.tags) {
      RETURN_IF_ERROR(tx.Exec("INSERT INTO model_version_tags (model_id, version, key, value) "
                              "VALUES (?, ?, ?, ?) ON CONFLICT (model_id, version, key) DO UPDATE "
                              "SET value = excluded.value",
                              {m.id, version, t.key, t.value})
                          .status());
    }
    ASSIGN_OR_RETURN(out, impl_->LoadVersion(tx, m, version));
    return OkStatus();
  }));
  return out;
}

StatusOr<ModelVersion> RegistryService::GetVersion(const tenancy::Principal& p,
                                                   const std::string& project,
                                                   const std::string& name, int64_t version) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kViewer));
  ModelVersion out;
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Impl::ModelRow m, impl_->FindModel(tx, proj, name));
    ASSIGN_OR_RETURN(out, impl_->LoadVersion(tx, m, version));
    return OkStatus();
  }));
  return out;
}

StatusOr<ModelVersion> RegistryService::UpdateVersion(const tenancy::Principal& p,
                                                      const std::string& project,
                                                      const std::string& name, int64_t version,
                                                      const std::string& description) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  ModelVersion out;
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Impl::ModelRow m, impl_->FindModel(tx, proj, name));
    ASSIGN_OR_RETURN(int64_t n, tx.Exec("UPDATE model_versions SET description = ?, "
                                        "last_update_time = ? WHERE model_id = ? AND version = ?",
                                        {description, impl_->NowMs(), m.id, version}));
    if (n == 0) return VersionNotFound(name, version);
    ASSIGN_OR_RETURN(out, impl_->LoadVersion(tx, m, version));
    return OkStatus();
  }));
  return out;
}

Status RegistryService::DeleteVersion(const tenancy::Principal& p, const std::string& project,
                                      const std::string& name, int64_t version) {
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  return store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Impl::ModelRow m, impl_->FindModel(tx, proj, name));
    ASSIGN_OR_RETURN(ResultSet v, tx.Query("SELECT 1 FROM model_versions WHERE model_id = ? AND "
                                           "version = ?",
                                           {m.id, version}));
    if (v.empty()) return VersionNotFound(name, version);
    for (const char* sql : {"DELETE FROM model_aliases WHERE model_id = ? AND version = ?",
                            "DELETE FROM model_version_tags WHERE model_id = ? AND version = ?",
                            "DELETE FROM model_versions WHERE model_id = ? AND version = ?"}) {
      RETURN_IF_ERROR(tx.Exec(sql, {m.id, version}).status());
    }
    return impl_->TouchModel(tx, m.id, impl_->NowMs());
  });
}

StatusOr<std::vector<ModelVersion>> RegistryService::SearchVersions(const tenancy::Principal& p,
                                                                    const std::string& project,
                                                                    const RegistrySearch& search,
                                                                    std::string* next_page_token) {
  if (search.max_results < 1 || search.max_results > kMaxVersionResults) {
    return InvalidArgumentError(
        fmt::format("max_results: Invalid value for request parameter max_results. It must be "
                    "between 1 and {}, but got value {}",
                    kMaxVersionResults, search.max_results),
        "max_results");
  }
  ASSIGN_OR_RETURN(int64_t offset, DecodeOffsetToken(search.page_token));
  ASSIGN_OR_RETURN(std::vector<Clause> clauses, FilterParser(search.filter, true).Parse());
  ASSIGN_OR_RETURN(std::string order, OrderBySql(search.order_by, true, impl_->postgres));
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kViewer));
  std::vector<ModelVersion> out;
  if (next_page_token != nullptr) next_page_token->clear();
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kRead, [&](Tx& tx) -> Status {
    out.clear();
    std::vector<Value> args{proj.id};
    std::string sql = fmt::format(
        "SELECT m.id, m.name, {} FROM model_versions v JOIN "
        "registered_models m ON m.id = v.model_id WHERE m.project_id = ?",
        kVersionColumns);
    if (!search.model.empty()) {
      ASSIGN_OR_RETURN(Impl::ModelRow m, impl_->FindModel(tx, proj, search.model));
      sql += " AND m.id = ?";
      args.emplace_back(m.id);
    }
    sql += impl_->WhereSql(clauses, true, &args) + " ORDER BY " + order + " LIMIT ? OFFSET ?";
    args.emplace_back(search.max_results + 1);
    args.emplace_back(offset);
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query(sql, args));
    const bool more = static_cast<int64_t>(rs.size()) > search.max_results;
    if (more) rs.rows.pop_back();
    for (auto& r : rs.rows) {
      std::vector<ModelVersion> one{VersionFromRow(r, 2, AsText(r[1]))};
      RETURN_IF_ERROR(impl_->LoadVersionDetails(tx, AsText(r[0]), one));
      out.push_back(std::move(one[0]));
    }
    if (more && next_page_token != nullptr) {
      *next_page_token = EncodeOffsetToken(offset + search.max_results);
    }
    return OkStatus();
  }));
  return out;
}

StatusOr<ModelVersion> RegistryService::TransitionStage(const tenancy::Principal& p,
                                                        const std::string& project,
                                                        const std::string& name, int64_t version,
                                                        const std::string& stage,
                                                        bool archive_existing) {
  ASSIGN_OR_RETURN(std::string canonical, ParseStage(stage));
  if (archive_existing && canonical != "Staging" && canonical != "Production") {
    return InvalidArgumentError(
        fmt::format("archive_existing_versions: Model version transition cannot archive existing "
                    "model versions because '{}' is not an Active stage. Valid stages are "
                    "Staging, Production",
                    canonical),
        "archive_existing_versions");
  }
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  ModelVersion out;
  RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Impl::ModelRow m, impl_->FindModel(tx, proj, name));
    const int64_t now = impl_->NowMs();
    ASSIGN_OR_RETURN(int64_t n, tx.Exec("UPDATE model_versions SET stage = ?, last_update_time = ? "
                                        "WHERE model_id = ? AND version = ?",
                                        {canonical, now, m.id, version}));
    if (n == 0) return VersionNotFound(name, version);
    if (archive_existing) {
      RETURN_IF_ERROR(tx.Exec("UPDATE model_versions SET stage = 'Archived', last_update_time = ? "
                              "WHERE model_id = ? AND stage = ? AND version != ?",
                              {now, m.id, canonical, version})
                          .status());
    }
    RETURN_IF_ERROR(impl_->TouchModel(tx, m.id, now));
    ASSIGN_OR_RETURN(out, impl_->LoadVersion(tx, m, version));
    return OkStatus();
  }));
  return out;
}

Status RegistryService::SetVersionTag(const tenancy::Principal& p, const std::string& project,
                                      const std::string& name, int64_t version, const Tag& tag) {
  RETURN_IF_ERROR(ValidateTag(tag, "key", "value"));
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  return store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Impl::ModelRow m, impl_->FindModel(tx, proj, name));
    ASSIGN_OR_RETURN(ResultSet v, tx.Query("SELECT 1 FROM model_versions WHERE model_id = ? AND "
                                           "version = ?",
                                           {m.id, version}));
    if (v.empty()) return VersionNotFound(name, version);
    return tx
        .Exec(
            "INSERT INTO model_version_tags (model_id, version, key, value) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (model_id, version, key) DO UPDATE SET value = excluded.value",
            {m.id, version, tag.key, tag.value})
        .status();
  });
}

Status RegistryService::DeleteVersionTag(const tenancy::Principal& p, const std::string& project,
                                         const std::string& name, int64_t version,
                                         const std::string& key) {
  if (key.empty()) return InvalidArgumentError("key: a tag key is required", "key");
  ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kEditor));
  return store::RunInTx(impl_->store, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Impl::ModelRow m, impl_->FindModel(tx, proj, name));
    ASSIGN_OR_RETURN(ResultSet v, tx.Query("SELECT 1 FROM model_versions WHERE model_id = ? AND "
                                           "version = ?",
                                           {m.id, version}));
    if (v.empty()) return VersionNotFound(name, version);
    return tx
        .Exec("DELETE FROM model_version_tags WHERE model_id = ? AND version = ? AND key = ?",
              {m.id, version, key})
        .status();
  });
}

// ---------------------------------------------------------------- lineage

StatusOr<Lineage> RegistryService::GetLineage(const tenancy::Principal& p,
                                              const std::string& project, const std::string& name,
                                              int64_t version) {
  Lineage out;
  ASSIGN_OR_RETURN(out.version, GetVersion(p, project, name, version));
  if (out.version.run_id.empty()) return out;
  auto run = impl_->tracking.GetRun(p, project, out.version.run_id);
  if (!run.ok()) {
    // The run may have been removed with its project data; the version stays.
    if (run.status().code() == StatusCode::kNotFound) return out;
    return run.status();
  }
  out.run = run->info;
  auto experiment = impl_->tracking.GetExperiment(p, project, run->info.experiment_id);
  if (experiment.ok()) {
    out.experiment_name = experiment->name;
  } else if (experiment.status().code() != StatusCode::kNotFound) {
    return experiment.status();
  }
  out.job_id = run->info.job_id.empty() ? TagValue(run->tags, kJobIdTag) : run->info.job_id;
  out.job_name = TagValue(run->tags, kJobNameTag);
  out.pipeline_run_id = TagValue(run->tags, kPipelineRunTag);
  out.pipeline_step = TagValue(run->tags, kPipelineStepTag);
  out.code_digest = TagValue(run->tags, kCodeDigestTag);
  if (!out.job_id.empty() && (out.job_name.empty() || out.code_digest.empty())) {
    // Runs created before the controller tagged them: the job row knows.
    ASSIGN_OR_RETURN(tenancy::Project proj, impl_->Authorize(p, project, Role::kViewer));
    RETURN_IF_ERROR(store::RunInTx(impl_->store, TxMode::kRead, [&](Tx& tx) -> Status {
      ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT name, code FROM jobs WHERE id = ? AND "
                                              "project_id = ?",
                                              {out.job_id, proj.id}));
      if (rs.empty()) return OkStatus();
      if (out.job_name.empty()) out.job_name = AsText(rs.rows[0][0]);
      if (out.code_digest.empty()) out.code_digest = AsText(rs.rows[0][1]);
      return OkStatus();
    }));
  }
  return out;
}

StatusOr<std::string> RegistryService::GetDownloadUri(const tenancy::Principal& p,
                                                      const std::string& project,
                                                      const std::string& name, int64_t version) {
  ASSIGN_OR_RETURN(ModelVersion v, GetVersion(p, project, name, version));
  constexpr std::string_view kRuns = "runs:/";
  if (!v.source.starts_with(kRuns)) return v.source;
  std::string_view rest = std::string_view(v.source).substr(kRuns.size());
  size_t slash = rest.find('/');
  std::string run_id(rest.substr(0, slash));
  std::string path(slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1));
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  if (run_id.empty()) return v.source;
  auto run = impl_->tracking.AuthorizeRun(p, project, run_id, Role::kViewer);
  if (!run.ok()) {
    if (run.status().code() == StatusCode::kNotFound) return v.source;
    return run.status();
  }
  return path.empty() ? run->artifact_uri : run->artifact_uri + "/" + path;
}

}  // namespace lathe::registry
