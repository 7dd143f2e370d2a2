#include "control/schedules.h"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "base/crypto.h"
#include "base/id.h"
#include "control/pipelines.h"

namespace lathe::control {

using store::AsInt;
using store::AsText;
using store::ResultSet;
using store::Tx;
using store::TxMode;
using store::Value;
using tenancy::Principal;
using tenancy::Role;

namespace {

constexpr std::string_view kReprocessNames[] = {"none", "failed", "all"};
constexpr int kMaxBackfillTicks = 10'000;
constexpr int kMaxBackfillConcurrency = 100;
constexpr int kBackfillsListed = 100;
constexpr size_t kMaxSkipDatesPerCall = 1000;
// The params a schedule passes itself; a schedule's `params` may not set them.
constexpr std::string_view kTimeParams[] = {"scheduled_time", "data_interval_start",
                                            "data_interval_end"};

constexpr const char* kScheduleColumns =
    "s.id, p.name, s.project_id, s.spec, s.last_tick, s.next_tick, s.created_by_id, "
    "COALESCE(u.name, ''), s.created_at, s.updated_at";

std::string SelectSchedules(std::string_view where) {
  return fmt::format(
      "SELECT {} FROM schedules s JOIN projects p ON p.id = s.project_id LEFT JOIN users u ON "
      "u.id = s.created_by_id WHERE {}",
      kScheduleColumns, where);
}

StatusOr<ScheduleRecord> ScheduleFromRow(const std::vector<Value>& r) {
  ScheduleRecord s;
  s.id = AsText(r[0]);
  s.project = AsText(r[1]);
  s.project_id = AsText(r[2]);
  s.spec_json = AsText(r[3]);
  ASSIGN_OR_RETURN(JsonValue v, ParseJson(s.spec_json));
  // The zone was checked when the spec was written; reads need only syntax.
  auto parsed = spec::ParseScheduleSpec(v, nullptr);
  if (!parsed.ok()) {
    return DataLossError(fmt::format("schedule {}: stored spec does not parse: {}", s.id,
                                     parsed.status().message()));
  }
  s.spec = std::move(*parsed);
  s.last_tick = AsInt(r[4]);
  s.next_tick = AsInt(r[5]);
  s.created_by_id = AsText(r[6]);
  s.created_by = AsText(r[7]);
  s.created_at = AsInt(r[8]);
  s.updated_at = AsInt(r[9]);
  return s;
}

StatusOr<ScheduleRecord> FindSchedule(Tx& tx, const tenancy::Project& proj,
                                      const std::string& name) {
  ASSIGN_OR_RETURN(ResultSet rs,
                   tx.Query(SelectSchedules("s.project_id = ? AND s.name = ?"), {proj.id, name}));
  if (rs.empty()) {
    return NotFoundError(
        fmt::format("schedule \"{}\" not found in project \"{}\"", name, proj.name));
  }
  return ScheduleFromRow(rs.rows[0]);
}

constexpr const char* kTickColumns =
    "tick, state, reason, message, run_id, run_state, backfill_id, attempts, created_at";

TickRecord TickFromRow(const std::vector<Value>& r) {
  TickRecord t;
  t.tick = AsInt(r[0]);
  t.state = AsText(r[1]);
  t.reason = AsText(r[2]);
  t.message = AsText(r[3]);
  t.run_id = AsText(r[4]);
  t.run_state = AsText(r[5]);
  t.backfill_id = AsText(r[6]);
  t.attempts = static_cast<int>(AsInt(r[7]));
  t.created_at = AsInt(r[8]);
  return t;
}

// "YYYY-MM-DD" naming a real date of the proleptic Gregorian calendar.
bool IsCalendarDate(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  auto number = [&](size_t from, size_t len, int* out) {
    const char* first = s.data() + from;
    for (size_t i = 0; i < len; ++i) {
      if (first[i] < '0' || first[i] > '9') return false;
    }
    return std::from_chars(first, first + len, *out).ec == std::errc();
  };
  int year = 0, month = 0, day = 0;
  if (!number(0, 4, &year) || !number(5, 2, &month) || !number(8, 2, &day)) return false;
  return month >= 1 && month <= 12 && day >= 1 && day <= DaysInMonth(year, month);
}

// Writes a changed spec back: re-parsed from its canonical form first, so
// every rule of the parser (limits included) holds for what is stored.
StatusOr<spec::ScheduleSpec> Canonical(const spec::ScheduleSpec& s,
                                       const spec::ZoneLoader& load_zone) {
  ASSIGN_OR_RETURN(JsonValue v, ParseJson(EncodeScheduleSpec(s)));
  return spec::ParseScheduleSpec(v, load_zone);
}

Status CheckParams(const spec::ScheduleSpec& s) {
  if (s.params.is_null()) return OkStatus();
  if (!s.params.is_object()) {
    return InvalidArgumentError("params: must be an object of param values", "params");
  }
  for (const auto& [name, value] : s.params.members()) {
    for (std::string_view reserved : kTimeParams) {
      if (name == reserved) {
        return InvalidArgumentError(
            fmt::format("params.{}: set by the schedule at each tick; declare it in the "
                        "pipeline as a string param instead of giving it here",
                        name),
            "params." + name);
      }
    }
  }
  return OkStatus();
}

StatusOr<std::vector<BackfillRecord>> LoadBackfills(Tx& tx, const ScheduleRecord& s) {
  ASSIGN_OR_RETURN(
      ResultSet rs,
      tx.Query(fmt::format("SELECT id, from_us, to_us, max_concurrency, reprocess, state, "
                           "created_at, finished_at FROM schedule_backfills WHERE schedule_id = ? "
                           "ORDER BY created_at DESC, id DESC LIMIT {}",
                           kBackfillsListed),
               {s.id}));
  std::vector<BackfillRecord> out;
  for (const auto& r : rs.rows) {
    BackfillRecord b;
    b.id = AsText(r[0]);
    b.schedule = s.spec.name;
    b.from = AsInt(r[1]);
    b.to = AsInt(r[2]);
    b.max_concurrency = static_cast<int>(AsInt(r[3]));
    ASSIGN_OR_RETURN(b.reprocess, ParseReprocess(AsText(r[4])));
    b.state = AsText(r[5]);
    b.created_at = AsInt(r[6]);
    b.finished_at = AsInt(r[7]);
    ASSIGN_OR_RETURN(
        ResultSet counts,
        tx.Query("SELECT COUNT(*), "
                 "SUM(CASE WHEN state = 'created' THEN 1 ELSE 0 END), "
                 "SUM(CASE WHEN state = 'created' AND run_state = 'succeeded' THEN 1 ELSE 0 END), "
                 "SUM(CASE WHEN state = 'skipped' OR (state = 'created' AND run_state IN "
                 "('failed', 'cancelled', 'removed')) THEN 1 ELSE 0 END) "
                 "FROM schedule_ticks WHERE backfill_id = ?",
                 {b.id}));
    b.total = static_cast<int>(AsInt(counts.rows[0][0]));
    b.created = static_cast<int>(AsInt(counts.rows[0][1]));
    b.succeeded = static_cast<int>(AsInt(counts.rows[0][2]));
    b.failed = static_cast<int>(AsInt(counts.rows[0][3]));
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace

std::string_view ReprocessName(Reprocess r) { return kReprocessNames[static_cast<int>(r)]; }

StatusOr<Reprocess> ParseReprocess(std::string_view s) {
  for (size_t i = 0; i < std::size(kReprocessNames); ++i) {
    if (kReprocessNames[i] == s) return static_cast<Reprocess>(i);
  }
  return InvalidArgumentError(fmt::format("reprocess: \"{}\" is not one of none, failed, all", s),
                              "reprocess");
}

// ---------------------------------------------------------------- store helpers

std::string EncodeScheduleSpec(const spec::ScheduleSpec& spec) {
  std::string out;
  JsonWriter w(&out);
  spec::WriteScheduleSpec(w, spec);
  return out;
}

StatusOr<std::vector<ScheduleRecord>> LoadSchedules(Tx& tx) {
  ASSIGN_OR_RETURN(ResultSet rs, tx.Query(SelectSchedules("1 = 1 ORDER BY s.id")));
  std::vector<ScheduleRecord> out;
  out.reserve(rs.size());
  for (const auto& r : rs.rows) {
    ASSIGN_OR_RETURN(ScheduleRecord s, ScheduleFromRow(r));
    out.push_back(std::move(s));
  }
  return out;
}

JsonValue TickParams(const spec::PipelineSpec& pipeline, const JsonValue& given, int64_t tick_us,
                     int64_t interval_start_us) {
  std::vector<JsonValue::Member> members;
  if (given.is_object()) members = given.members();
  auto declared = [&](std::string_view name) {
    return std::any_of(pipeline.params.begin(), pipeline.params.end(),
                       [&](const spec::ParamSpec& p) { return p.name == name; });
  };
  const int64_t values[] = {tick_us, interval_start_us, tick_us};
  for (size_t i = 0; i < std::size(kTimeParams); ++i) {
    if (!declared(kTimeParams[i])) continue;
    members.emplace_back(std::string(kTimeParams[i]),
                         JsonValue::MakeString(spec::FormatTimeUtc(values[i])));
  }
  return JsonValue::MakeObject(std::move(members));
}

StatusOr<int64_t> ComputeNextTick(const spec::ScheduleSpec& spec, const TimeZone& tz,
                                  int64_t created_at, int64_t last_tick) {
  // Before the first tick the timetable begins at max(start, creation), as
  // spec::PlanTicks has it (a tick at the start itself counts).
  int64_t after = last_tick;
  if (after == 0) after = spec.start_us ? std::max(*spec.start_us - 1, created_at) : created_at;
  ASSIGN_OR_RETURN(std::optional<int64_t> next, spec::NextTick(spec, tz, after));
  return next.value_or(0);
}

StatusOr<SchedulePipeline> ResolveSchedulePipeline(Tx& tx, const std::string& project_id,
                                                   const std::string& project,
                                                   const spec::ScheduleSpec& s) {
  ASSIGN_OR_RETURN(ResultSet rs,
                   tx.Query("SELECT id, latest_version FROM pipelines WHERE project_id = ? AND "
                            "name = ?",
                            {project_id, s.pipeline}));
  if (rs.empty()) {
    return Status(
        StatusCode::kNotFound,
        fmt::format("pipeline: pipeline \"{}\" not found in project \"{}\"", s.pipeline, project),
        "pipeline");
  }
  SchedulePipeline out;
  out.id = AsText(rs.rows[0][0]);
  const int64_t latest = AsInt(rs.rows[0][1]);
  const int64_t version = s.pipeline_version.value_or(latest);
  if (s.pipeline_version && (*s.pipeline_version < 1 || *s.pipeline_version > latest)) {
    return Status(StatusCode::kNotFound,
                  fmt::format("pipeline_version: pipeline \"{}\" has no version {} (latest: {})",
                              s.pipeline, *s.pipeline_version, latest),
                  "pipeline_version");
  }
  if (version >= 1) {
    ASSIGN_OR_RETURN(PipelineVersionRecord v, LoadVersion(tx, out.id, version));
    out.version = std::move(v);
  }
  return out;
}

// ---------------------------------------------------------------- service

ScheduleService::ScheduleService(store::Store& store, tenancy::TenancyService& tenancy,
                                 const Clock& clock, spec::ZoneLoader load_zone)
    : store_(store), tenancy_(tenancy), clock_(clock), load_zone_(std::move(load_zone)) {}

StatusOr<ScheduleRecord> ScheduleService::Put(const Principal& p, const std::string& project,
                                              const JsonValue& spec_json, bool create_only) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kEditor));
  ASSIGN_OR_RETURN(spec::ScheduleSpec s, spec::ParseScheduleSpec(spec_json, load_zone_));
  if (!s.project.empty() && s.project != proj.name) {
    return InvalidArgumentError(
        fmt::format("project: the spec names project \"{}\" but is written to \"{}\"", s.project,
                    proj.name),
        "project");
  }
  s.project = proj.name;
  RETURN_IF_ERROR(CheckParams(s));
  ASSIGN_OR_RETURN(std::shared_ptr<const TimeZone> tz, load_zone_(s.timezone));
  const int64_t now = clock_.NowMicros();
  const std::string text = EncodeScheduleSpec(s);

  ScheduleRecord out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(SchedulePipeline target, ResolveSchedulePipeline(tx, proj.id, proj.name, s));
    if (target.version) {
      // What a tick would pass: the time values are placeholders of the right type.
      JsonValue params = TickParams(target.version->spec, s.params, now, now);
      auto resolved = spec::ResolveParams(target.version->spec, params, false);
      if (!resolved.ok()) {
        return resolved.status().WithPrefix(
            fmt::format("pipeline \"{}\" version {}", s.pipeline, target.version->version));
      }
    }
    ASSIGN_OR_RETURN(
        ResultSet existing,
        tx.Query(SelectSchedules("s.project_id = ? AND s.name = ?"), {proj.id, s.name}));
    if (!existing.empty()) {
      if (create_only) {
        return AlreadyExistsError(
            fmt::format("name: a schedule named \"{}\" already exists in project \"{}\"", s.name,
                        proj.name),
            "name");
      }
      ASSIGN_OR_RETURN(out, ScheduleFromRow(existing.rows[0]));
      ASSIGN_OR_RETURN(out.next_tick, ComputeNextTick(s, *tz, out.created_at, out.last_tick));
      out.spec = s;
      out.spec_json = text;
      out.updated_at = now;
      return tx
          .Exec("UPDATE schedules SET spec = ?, next_tick = ?, updated_at = ? WHERE id = ?",
                {text, out.next_tick, now, out.id})
          .status();
    }
    out = ScheduleRecord{};
    out.id = NewId();
    out.project = proj.name;
    out.project_id = proj.id;
    out.spec = s;
    out.spec_json = text;
    out.created_by = p.user_name;
    out.created_by_id = p.user_id;
    out.created_at = now;
    out.updated_at = now;
    ASSIGN_OR_RETURN(out.next_tick, ComputeNextTick(s, *tz, now, 0));
    return tx
        .Exec(
            "INSERT INTO schedules (id, project_id, name, spec, last_tick, next_tick, "
            "created_by_id, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)",
            {out.id, proj.id, s.name, text, out.next_tick, p.user_id, now, now})
        .status();
  }));
  return out;
}

StatusOr<ScheduleRecord> ScheduleService::Get(const Principal& p, const std::string& project,
                                              const std::string& name) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kViewer));
  ScheduleRecord out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(out, FindSchedule(tx, proj, name));
    return OkStatus();
  }));
  return out;
}

StatusOr<tenancy::Page<ScheduleRecord>> ScheduleService::List(const Principal& p,
                                                              const std::string& project,
                                                              const tenancy::PageRequest& page) {
  RETURN_IF_ERROR(tenancy::ValidatePage(page));
  ASSIGN_OR_RETURN(std::string after, tenancy::DecodePageToken(page.page_token));
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kViewer));
  std::string where = "s.project_id = ?";
  std::vector<Value> params{proj.id};
  if (!after.empty()) {
    where += " AND s.id > ?";
    params.emplace_back(after);
  }
  // Oldest first (ids are ULIDs, ordered by creation time).
  where += fmt::format(" ORDER BY s.id LIMIT {}", page.limit + 1);
  tenancy::Page<ScheduleRecord> out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    out.items.clear();
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query(SelectSchedules(where), params));
    for (const auto& r : rs.rows) {
      ASSIGN_OR_RETURN(ScheduleRecord s, ScheduleFromRow(r));
      out.items.push_back(std::move(s));
    }
    return OkStatus();
  }));
  if (static_cast<int64_t>(out.items.size()) > page.limit) {
    out.items.pop_back();
    out.next_page_token = tenancy::EncodePageToken(out.items.back().id);
  }
  return out;
}

Status ScheduleService::Remove(const Principal& p, const std::string& project,
                               const std::string& name) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kEditor));
  return store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ScheduleRecord s, FindSchedule(tx, proj, name));
    RETURN_IF_ERROR(tx.Exec("DELETE FROM schedule_ticks WHERE schedule_id = ?", {s.id}).status());
    RETURN_IF_ERROR(
        tx.Exec("DELETE FROM schedule_backfills WHERE schedule_id = ?", {s.id}).status());
    return tx.Exec("DELETE FROM schedules WHERE id = ?", {s.id}).status();
  });
}

StatusOr<ScheduleRecord> ScheduleService::SetPaused(const Principal& p, const std::string& project,
                                                    const std::string& name, bool paused) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kEditor));
  const int64_t now = clock_.NowMicros();
  ScheduleRecord out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(out, FindSchedule(tx, proj, name));
    if (out.spec.paused == paused) return OkStatus();
    out.spec.paused = paused;
    out.spec_json = EncodeScheduleSpec(out.spec);
    out.updated_at = now;
    return tx
        .Exec("UPDATE schedules SET spec = ?, updated_at = ? WHERE id = ?",
              {out.spec_json, now, out.id})
        .status();
  }));
  return out;
}

StatusOr<ScheduleRecord> ScheduleService::Skip(const Principal& p, const std::string& project,
                                               const std::string& name,
                                               const std::vector<std::string>& dates, bool remove) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kEditor));
  if (dates.empty()) return InvalidArgumentError("dates: at least one date is required", "dates");
  if (dates.size() > kMaxSkipDatesPerCall) {
    return InvalidArgumentError(
        fmt::format("dates: at most {} dates per call, got {}", kMaxSkipDatesPerCall, dates.size()),
        "dates");
  }
  for (size_t i = 0; i < dates.size(); ++i) {
    if (!IsCalendarDate(dates[i])) {
      const std::string field = fmt::format("dates[{}]", i);
      return InvalidArgumentError(
          fmt::format("{}: \"{}\" is not a date YYYY-MM-DD", field, dates[i]), field);
    }
  }
  const int64_t now = clock_.NowMicros();
  ScheduleRecord out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(out, FindSchedule(tx, proj, name));
    spec::ScheduleSpec changed = out.spec;
    for (const std::string& d : dates) {
      if (remove) {
        changed.skip_dates.erase(d);
      } else {
        changed.skip_dates.insert(d);
      }
    }
    ASSIGN_OR_RETURN(out.spec, Canonical(changed, nullptr));
    ASSIGN_OR_RETURN(std::shared_ptr<const TimeZone> tz, load_zone_(out.spec.timezone));
    ASSIGN_OR_RETURN(out.next_tick, ComputeNextTick(out.spec, *tz, out.created_at, out.last_tick));
    out.spec_json = EncodeScheduleSpec(out.spec);
    out.updated_at = now;
    return tx
        .Exec("UPDATE schedules SET spec = ?, next_tick = ?, updated_at = ? WHERE id = ?",
              {out.spec_json, out.next_tick, now, out.id})
        .status();
  }));
  return out;
}

StatusOr<tenancy::Page<TickRecord>> ScheduleService::Ticks(const Principal& p,
                                                           const std::string& project,
                                                           const std::string& name,
                                                           const tenancy::PageRequest& page) {
  RETURN_IF_ERROR(tenancy::ValidatePage(page));
  // The token is the last tick of the page (tick rows have no id).
  std::optional<int64_t> before;
  if (!page.page_token.empty()) {
    std::string text;
    int64_t v = 0;
    const bool decoded = Base64UrlDecode(page.page_token, &text);
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (!decoded || text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      return InvalidArgumentError("page_token: not a page token returned by this API",
                                  "page_token");
    }
    before = v;
  }
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kViewer));
  tenancy::Page<TickRecord> out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    out.items.clear();
    ASSIGN_OR_RETURN(ScheduleRecord s, FindSchedule(tx, proj, name));
    std::string sql =
        fmt::format("SELECT {} FROM schedule_ticks WHERE schedule_id = ?", kTickColumns);
    std::vector<Value> params{s.id};
    if (before) {
      sql += " AND tick < ?";
      params.emplace_back(*before);
    }
    sql += fmt::format(" ORDER BY tick DESC LIMIT {}", page.limit + 1);
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query(sql, params));
    for (const auto& r : rs.rows) out.items.push_back(TickFromRow(r));
    return OkStatus();
  }));
  if (static_cast<int64_t>(out.items.size()) > page.limit) {
    out.items.pop_back();
    out.next_page_token = Base64UrlEncode(std::to_string(out.items.back().tick));
  }
  return out;
}

StatusOr<BackfillRecord> ScheduleService::Backfill(const Principal& p, const std::string& project,
                                                   const std::string& name, int64_t from_us,
                                                   int64_t to_us, int max_concurrency,
                                                   Reprocess reprocess) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kEditor));
  const int64_t now = clock_.NowMicros();
  if (from_us > now) {
    return InvalidArgumentError(
        fmt::format("from: {} is in the future; a backfill covers past ticks",
                    FormatRfc3339(from_us)),
        "from");
  }
  if (to_us < from_us) {
    return InvalidArgumentError(
        fmt::format("to: {} is before from ({})", FormatRfc3339(to_us), FormatRfc3339(from_us)),
        "to");
  }
  to_us = std::min(to_us, now);
  if (max_concurrency < 1 || max_concurrency > kMaxBackfillConcurrency) {
    return InvalidArgumentError(fmt::format("max_concurrency: {} is not in 1..{}", max_concurrency,
                                            kMaxBackfillConcurrency),
                                "max_concurrency");
  }
  ScheduleRecord s;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(s, FindSchedule(tx, proj, name));
    return OkStatus();
  }));
  ASSIGN_OR_RETURN(std::shared_ptr<const TimeZone> tz, load_zone_(s.spec.timezone));
  ASSIGN_OR_RETURN(std::vector<int64_t> ticks,
                   spec::TicksBetween(s.spec, *tz, from_us, to_us, kMaxBackfillTicks));

  BackfillRecord out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ScheduleRecord current, FindSchedule(tx, proj, name));
    if (current.id != s.id) {
      return AbortedError(fmt::format("schedule \"{}\" was replaced meanwhile; try again", name));
    }
    ASSIGN_OR_RETURN(ResultSet overlap,
                     tx.Query("SELECT id, from_us, to_us FROM schedule_backfills WHERE "
                              "schedule_id = ? AND state = 'running' AND from_us <= ? AND "
                              "to_us >= ? LIMIT 1",
                              {s.id, to_us, from_us}));
    if (!overlap.empty()) {
      return FailedPreconditionError(fmt::format(
          "backfill {} over {} .. {} of schedule \"{}\" is still running and overlaps this one",
          AsText(overlap.rows[0][0]), FormatRfc3339(AsInt(overlap.rows[0][1])),
          FormatRfc3339(AsInt(overlap.rows[0][2])), name));
    }
    out = BackfillRecord{};
    out.id = NewId();
    out.schedule = name;
    out.from = from_us;
    out.to = to_us;
    out.max_concurrency = max_concurrency;
    out.reprocess = reprocess;
    out.state = "running";
    out.created_at = now;
    RETURN_IF_ERROR(tx.Exec("INSERT INTO schedule_backfills (id, schedule_id, from_us, to_us, "
                            "max_concurrency, reprocess, state, created_at) VALUES (?, ?, ?, ?, "
                            "?, ?, 'running', ?)",
                            {out.id, s.id, from_us, to_us, static_cast<int64_t>(max_concurrency),
                             std::string(ReprocessName(reprocess)), now})
                        .status());
    struct Existing {
      std::string state, run_id, run_state;
    };
    std::map<int64_t, Existing> existing;
    ASSIGN_OR_RETURN(ResultSet rows,
                     tx.Query("SELECT t.tick, t.state, t.run_id, t.run_state, r.state FROM "
                              "schedule_ticks t LEFT JOIN pipeline_runs r ON r.id = t.run_id "
                              "WHERE t.schedule_id = ? AND t.tick >= ? AND t.tick <= ?",
                              {s.id, from_us, to_us}));
    for (const auto& r : rows.rows) {
      // The run's own state when it still exists (someone may have retried it).
      std::string run_state = store::IsNull(r[4]) ? AsText(r[3]) : AsText(r[4]);
      existing[AsInt(r[0])] = {AsText(r[1]), AsText(r[2]), std::move(run_state)};
    }
    for (int64_t t : ticks) {
      auto it = existing.find(t);
      if (it == existing.end()) {
        RETURN_IF_ERROR(
            tx.Exec("INSERT INTO schedule_ticks (schedule_id, tick, state, reason, "
                    "backfill_id, created_at) VALUES (?, ?, 'queued', 'Backfill', ?, ?)",
                    {s.id, t, out.id, now})
                .status());
        ++out.total;
        continue;
      }
      const Existing& e = it->second;
      bool take = false;
      if (e.state == "skipped") {
        take = true;
      } else if (e.state == "created") {
        take =
            reprocess == Reprocess::kAll ||
            (reprocess == Reprocess::kFailed &&
             (e.run_state == "failed" || e.run_state == "cancelled" || e.run_state == "removed"));
      }
      if (!take) continue;
      RETURN_IF_ERROR(tx.Exec("UPDATE schedule_ticks SET state = 'queued', reason = 'Backfill', "
                              "message = '', backfill_id = ? WHERE schedule_id = ? AND tick = ?",
                              {out.id, s.id, t})
                          .status());
      ++out.total;
    }
    if (out.total == 0) {
      out.state = "succeeded";
      out.finished_at = now;
      RETURN_IF_ERROR(tx.Exec("UPDATE schedule_backfills SET state = 'succeeded', finished_at = ? "
                              "WHERE id = ?",
                              {now, out.id})
                          .status());
    }
    return OkStatus();
  }));
  return out;
}

StatusOr<std::vector<BackfillRecord>> ScheduleService::Backfills(const Principal& p,
                                                                 const std::string& project,
                                                                 const std::string& name) {
  ASSIGN_OR_RETURN(tenancy::Project proj, tenancy_.AuthorizeProject(p, project, Role::kViewer));
  std::vector<BackfillRecord> out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ScheduleRecord s, FindSchedule(tx, proj, name));
    ASSIGN_OR_RETURN(out, LoadBackfills(tx, s));
    return OkStatus();
  }));
  return out;
}

}  // namespace lathe::control
