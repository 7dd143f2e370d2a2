#include "cli/tracking_commands.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <set>

#include <fmt/core.h>

#include "base/json.h"
#include "cli/session.h"
#include "http/message.h"

namespace lathe::cli {
namespace {

using http::Method;

std::string Text(const JsonValue& object, const std::string& field) {
  const JsonValue* v = object.Find(field);
  return v != nullptr && v->is_string() ? v->as_string() : "";
}

StatusOr<std::string> ViewParam(const std::string& view) {
  if (view.empty() || view == "active") return std::string("active");
  if (view == "deleted" || view == "all") return view;
  return InvalidArgumentError(
      fmt::format("--view: \"{}\" is not one of active, deleted, all", view), "view");
}

// A metric value as the wire carries it: a number, or "NaN"/"Infinity"/"-Infinity".
double MetricValue(const JsonValue* v) {
  if (v == nullptr) return std::numeric_limits<double>::quiet_NaN();
  if (v->is_number()) return v->as_double();
  if (v->is_string()) {
    if (v->as_string() == "Infinity") return std::numeric_limits<double>::infinity();
    if (v->as_string() == "-Infinity") return -std::numeric_limits<double>::infinity();
  }
  return std::numeric_limits<double>::quiet_NaN();
}

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return fmt::format("{:.6g}", v);
}

// {k: v} → [{key, value}] rows, sorted by key.
std::vector<JsonValue> MapRows(const JsonValue* map) {
  std::vector<JsonValue> rows;
  if (map == nullptr || !map->is_object()) return rows;
  for (const auto& [key, value] : map->members()) {
    rows.push_back(JsonValue::MakeObject({{"key", JsonValue::MakeString(key)}, {"value", value}}));
  }
  std::sort(rows.begin(), rows.end(),
            [](const JsonValue& a, const JsonValue& b) { return Text(a, "key") < Text(b, "key"); });
  return rows;
}

// The latest value of `key` in a run's "metrics" map as table text.
std::string LatestText(const JsonValue& run, const std::string& key) {
  const JsonValue* metrics = run.Find("metrics");
  const JsonValue* m = metrics != nullptr ? metrics->Find(key) : nullptr;
  if (m == nullptr) return "-";
  return Number(MetricValue(m->is_object() ? m->Find("value") : m));
}

bool IsRunId(const std::string& s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Runs of one search page, and the next page token.
StatusOr<JsonValue> SearchPage(Session& s, const std::string& project, const RunListOptions& r,
                               const std::string& view, int64_t limit, const std::string& token) {
  std::string body = JsonBody([&](JsonWriter& w) {
    w.BeginObject();
    if (!r.experiments.empty()) {
      w.Key("experiments").BeginArray();
      for (const std::string& e : r.experiments) w.String(e);
      w.EndArray();
    }
    if (!r.filter.empty()) w.Field("filter", r.filter);
    if (!r.order_by.empty()) {
      w.Key("order_by").BeginArray();
      for (const std::string& o : r.order_by) w.String(o);
      w.EndArray();
    }
    w.Field("view", view);
    w.Field("limit", limit);
    if (!token.empty()) w.Field("page_token", token);
    w.EndObject();
  });
  return s.api->Call(Method::kPost, ProjectPath(project) + "/runs:search", body);
}

// "metrics.loss", "params.lr", "tags.team" named in a filter or order-by.
std::vector<std::string> NamedKeys(const RunListOptions& r) {
  std::vector<std::string> keys;
  auto scan = [&keys](const std::string& text) {
    for (const char* kind : {"metrics.", "params.", "tags."}) {
      size_t at = 0;
      while ((at = text.find(kind, at)) != std::string::npos) {
        bool word_start = at == 0 || !(std::isalnum(static_cast<unsigned char>(text[at - 1])) ||
                                       text[at - 1] == '_' || text[at - 1] == '.');
        size_t begin = at + std::string(kind).size();
        size_t end = begin;
        if (end < text.size() && text[end] == '`') {
          size_t close = text.find('`', end + 1);
          if (close == std::string::npos) break;
          std::string key = std::string(kind) + text.substr(end + 1, close - end - 1);
          if (word_start && std::find(keys.begin(), keys.end(), key) == keys.end())
            keys.push_back(key);
          at = close + 1;
          continue;
        }
        while (end < text.size() &&
               (std::isalnum(static_cast<unsigned char>(text[end])) ||
                std::string_view("_-./:").find(text[end]) != std::string::npos)) {
          ++end;
        }
        std::string key = std::string(kind) + text.substr(begin, end - begin);
        if (word_start && end > begin && std::find(keys.begin(), keys.end(), key) == keys.end()) {
          keys.push_back(key);
        }
        at = end;
      }
    }
  };
  scan(r.filter);
  for (const std::string& o : r.order_by) scan(o);
  return keys;
}

// A run as a table row: its fields plus the extra keys ("metrics.loss").
JsonValue RunRow(const JsonValue& run, const std::vector<std::string>& extra) {
  std::vector<JsonValue::Member> m;
  for (const char* f : {"run_id", "run_name", "experiment_id", "status", "user", "start_time",
                        "end_time", "job_id"}) {
    const JsonValue* v = run.Find(f);
    m.emplace_back(f, v != nullptr ? *v : JsonValue());
  }
  for (const std::string& key : extra) {
    size_t dot = key.find('.');
    std::string kind = key.substr(0, dot), name = key.substr(dot + 1);
    std::string text = "-";
    if (kind == "metrics") {
      text = LatestText(run, name);
    } else {
      const JsonValue* map = run.Find(kind);
      const JsonValue* v = map != nullptr ? map->Find(name) : nullptr;
      if (v != nullptr && v->is_string()) text = v->as_string();
    }
    m.emplace_back(key, JsonValue::MakeString(text));
  }
  return JsonValue::MakeObject(std::move(m));
}

}  // namespace

StatusOr<std::string> ResolveProject(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = Env("LATHE_PROJECT")) return std::string(env);
  return InvalidArgumentError("--project: required (or set LATHE_PROJECT)", "project");
}

std::string ProjectPath(const std::string& project) { return "/api/v1/projects/" + Seg(project); }

StatusOr<JsonValue> FindRun(Session& s, const std::string& project, const std::string& ref) {
  if (IsRunId(ref)) return s.api->Call(Method::kGet, ProjectPath(project) + "/runs/" + Seg(ref));
  if (ref.find('\'') != std::string::npos) {
    return InvalidArgumentError(
        fmt::format("run \"{}\": give its id (names with ' are not searchable)", ref), "run");
  }
  RunListOptions by_name;
  by_name.filter = "attributes.run_name = '" + ref + "'";
  ASSIGN_OR_RETURN(JsonValue page, SearchPage(s, project, by_name, "active", 2, ""));
  const JsonValue* runs = page.Find("runs");
  if (runs == nullptr || !runs->is_array() || runs->items().empty()) {
    return NotFoundError(fmt::format("run \"{}\" not found in project \"{}\"", ref, project));
  }
  if (runs->items().size() > 1) {
    return FailedPreconditionError(
        fmt::format("several runs are named \"{}\": give a run id (lathe run ls)", ref), "run");
  }
  return runs->items()[0];
}

StatusOr<std::vector<std::pair<std::string, std::string>>> ParseTagFlags(
    const std::vector<std::string>& tags) {
  std::vector<std::pair<std::string, std::string>> kv;
  for (const std::string& t : tags) {
    size_t eq = t.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgumentError(fmt::format("--tag: \"{}\" is not KEY=VALUE", t), "tag");
    }
    kv.emplace_back(t.substr(0, eq), t.substr(eq + 1));
  }
  return kv;
}

// ---- experiments

Status ExperimentList(const ClientOptions& o, const std::string& project_flag,
                      const std::string& view, const ListOptions& l, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(std::string v, ViewParam(view));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  return PrintListing(s, ProjectPath(project) + "/experiments?view=" + v, l,
                      {{"ID", "id"},
                       {"NAME", "name"},
                       {"LIFECYCLE", "lifecycle"},
                       {"CREATED", "created_at"},
                       {"UPDATED", "updated_at"}},
                      out);
}

Status ExperimentCreate(const ClientOptions& o, const std::string& project_flag,
                        const std::string& name, const std::vector<std::string>& tags,
                        std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(auto kv, ParseTagFlags(tags));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue e, s.api->Call(Method::kPost, ProjectPath(project) + "/experiments",
                                            JsonBody([&](JsonWriter& w) {
                                              w.BeginObject().Field("name", name);
                                              if (!kv.empty()) {
                                                w.Key("tags").BeginObject();
                                                for (const auto& [k, v] : kv) w.Field(k, v);
                                                w.EndObject();
                                              }
                                              w.EndObject();
                                            })));
  if (s.format == OutputFormat::kTable) {
    out << fmt::format("experiment \"{}\" created (id {})\n", Text(e, "name"), Text(e, "id"));
  } else {
    PrintObject(out, s.format, e, {});
  }
  return OkStatus();
}

Status ExperimentShow(const ClientOptions& o, const std::string& project_flag,
                      const std::string& experiment, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue e, s.api->Call(Method::kGet, ProjectPath(project) + "/experiments/" +
                                                              Seg(experiment)));
  PrintObject(out, s.format, e,
              {{"ID", "id"},
               {"NAME", "name"},
               {"PROJECT", "project"},
               {"LIFECYCLE", "lifecycle"},
               {"ARTIFACT LOCATION", "artifact_location"},
               {"CREATED", "created_at"},
               {"UPDATED", "updated_at"}});
  if (s.format == OutputFormat::kTable) {
    std::vector<JsonValue> tags = MapRows(e.Find("tags"));
    out << "\nTags:\n";
    if (tags.empty()) {
      out << "(none)\n";
    } else {
      PrintList(out, s.format, tags, {{"KEY", "key"}, {"VALUE", "value"}});
    }
  }
  return OkStatus();
}

// ---- runs

Status RunList(const ClientOptions& o, const RunListOptions& r, const ListOptions& l,
               std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(r.project));
  ASSIGN_OR_RETURN(std::string view, ViewParam(r.view));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  std::vector<JsonValue> runs;
  std::string token = l.page_token;
  while (true) {
    ASSIGN_OR_RETURN(JsonValue page,
                     SearchPage(s, project, r, view, l.limit > 0 ? l.limit : 1000, token));
    const JsonValue* items = page.Find("runs");
    if (items == nullptr || !items->is_array()) {
      return UnknownError("server sent a run search answer without \"runs\"");
    }
    for (const JsonValue& run : items->items()) runs.push_back(run);
    token = Text(page, "next_page_token");
    if (l.limit > 0 || token.empty()) break;
  }
  if (s.format != OutputFormat::kTable) {
    PrintList(out, s.format, runs, {});
  } else {
    std::vector<std::string> extra = NamedKeys(r);
    std::vector<Column> columns = {
        {"RUN ID", "run_id"}, {"NAME", "run_name"}, {"EXPERIMENT", "experiment_id"},
        {"STATUS", "status"}, {"USER", "user"},     {"STARTED", "start_time"}};
    for (const std::string& key : extra) columns.push_back({key, key});
    for (JsonValue& run : runs) run = RunRow(run, extra);
    PrintList(out, s.format, runs, columns);
  }
  if (l.limit > 0 && !token.empty()) std::cerr << "more results: --page-token " << token << "\n";
  return OkStatus();
}

Status RunShow(const ClientOptions& o, const std::string& project_flag, const std::string& ref,
               std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue run, FindRun(s, project, ref));
  if (s.format != OutputFormat::kTable) {
    PrintObject(out, s.format, run, {});
    return OkStatus();
  }
  PrintObject(out, s.format, run,
              {{"RUN ID", "run_id"},
               {"NAME", "run_name"},
               {"EXPERIMENT", "experiment_id"},
               {"USER", "user"},
               {"STATUS", "status"},
               {"STARTED", "start_time"},
               {"ENDED", "end_time"},
               {"JOB", "job_id"},
               {"LIFECYCLE", "lifecycle"},
               {"ARTIFACT URI", "artifact_uri"}});
  for (const char* kind : {"params", "tags"}) {
    std::vector<JsonValue> rows = MapRows(run.Find(kind));
    out << "\n" << (std::string(kind) == "params" ? "Params" : "Tags") << ":\n";
    if (rows.empty()) {
      out << "(none)\n";
    } else {
      PrintList(out, s.format, rows, {{"KEY", "key"}, {"VALUE", "value"}});
    }
  }
  std::vector<JsonValue> metrics;
  for (const JsonValue& row : MapRows(run.Find("metrics"))) {
    const JsonValue* m = row.Find("value");  // {value, step, timestamp}
    std::string key = Text(row, "key");
    metrics.push_back(JsonValue::MakeObject(
        {{"key", JsonValue::MakeString(key)},
         {"value", JsonValue::MakeString(LatestText(run, key))},
         {"step", m != nullptr && m->Find("step") ? *m->Find("step") : JsonValue()},
         {"timestamp",
          m != nullptr && m->Find("timestamp") ? *m->Find("timestamp") : JsonValue()}}));
  }
  out << "\nMetrics (latest):\n";
  if (metrics.empty()) {
    out << "(none)\n";
  } else {
    PrintList(out, s.format, metrics,
              {{"KEY", "key"}, {"VALUE", "value"}, {"STEP", "step"}, {"TIMESTAMP", "timestamp"}});
  }
  return OkStatus();
}

Status RunCompare(const ClientOptions& o, const std::string& project_flag,
                  const std::vector<std::string>& refs, const std::vector<std::string>& only,
                  std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  if (refs.size() < 2) return InvalidArgumentError("RUN: give at least two runs to compare", "run");
  ASSIGN_OR_RETURN(Session s, Connect(o));
  std::vector<JsonValue> runs;
  for (const std::string& ref : refs) {
    ASSIGN_OR_RETURN(JsonValue run, FindRun(s, project, ref));
    runs.push_back(std::move(run));
  }
  std::set<std::string> param_keys, metric_keys;
  for (const JsonValue& run : runs) {
    if (const JsonValue* p = run.Find("params"); p != nullptr && p->is_object()) {
      for (const auto& m : p->members()) param_keys.insert(m.first);
    }
    if (const JsonValue* mm = run.Find("metrics"); mm != nullptr && mm->is_object()) {
      for (const auto& m : mm->members()) {
        if (only.empty() || std::find(only.begin(), only.end(), m.first) != only.end()) {
          metric_keys.insert(m.first);
        }
      }
    }
  }
  for (const std::string& k : only) metric_keys.insert(k);  // asked for: shown even if absent

  if (s.format != OutputFormat::kTable) {
    std::vector<JsonValue> items;
    for (const JsonValue& run : runs) {
      std::vector<JsonValue::Member> metrics;
      const JsonValue* mm = run.Find("metrics");
      for (const std::string& k : metric_keys) {
        const JsonValue* m = mm != nullptr ? mm->Find(k) : nullptr;
        if (m != nullptr) metrics.emplace_back(k, *m);
      }
      const JsonValue* params = run.Find("params");
      items.push_back(JsonValue::MakeObject(
          {{"run_id", JsonValue::MakeString(Text(run, "run_id"))},
           {"run_name", JsonValue::MakeString(Text(run, "run_name"))},
           {"params", params != nullptr ? *params : JsonValue::MakeObject({})},
           {"metrics", JsonValue::MakeObject(std::move(metrics))}}));
    }
    PrintObject(out, s.format, JsonValue::MakeObject({{"runs", JsonValue::MakeArray(items)}}), {});
    return OkStatus();
  }
  // Columns are the runs, headed by name (with the id's start when names repeat).
  std::map<std::string, int> name_count;
  for (const JsonValue& run : runs) name_count[Text(run, "run_name")]++;
  std::vector<Column> columns = {{"KEY", "key"}};
  for (size_t i = 0; i < runs.size(); ++i) {
    std::string name = Text(runs[i], "run_name");
    std::string id = Text(runs[i], "run_id");
    if (name.empty() || name_count[name] > 1) name += (name.empty() ? "" : " ") + id.substr(0, 8);
    columns.push_back({name, "r" + std::to_string(i)});
  }
  std::vector<JsonValue> rows;
  auto add_row = [&](const std::string& label, auto&& cell) {
    std::vector<JsonValue::Member> m = {{"key", JsonValue::MakeString(label)}};
    for (size_t i = 0; i < runs.size(); ++i) {
      m.emplace_back("r" + std::to_string(i), JsonValue::MakeString(cell(runs[i])));
    }
    rows.push_back(JsonValue::MakeObject(std::move(m)));
  };
  for (const std::string& k : param_keys) {
    add_row("params." + k, [&k](const JsonValue& run) {
      const JsonValue* p = run.Find("params");
      const JsonValue* v = p != nullptr ? p->Find(k) : nullptr;
      return v != nullptr && v->is_string() ? v->as_string() : std::string("-");
    });
  }
  for (const std::string& k : metric_keys) {
    add_row("metrics." + k, [&k](const JsonValue& run) { return LatestText(run, k); });
  }
  PrintList(out, s.format, rows, columns);
  return OkStatus();
}

std::string Sparkline(const std::vector<double>& values) {
  static const char* const kBlocks[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : values) {
    if (std::isfinite(v)) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  std::string line;
  for (double v : values) {
    if (std::isnan(v)) {
      line += " ";
    } else if (std::isinf(v)) {
      line += v > 0 ? kBlocks[7] : kBlocks[0];
    } else if (hi <= lo) {
      line += kBlocks[3];  // a flat line
    } else {
      line += kBlocks[static_cast<int>(std::lround((v - lo) / (hi - lo) * 7))];
    }
  }
  return line;
}

Status MetricsShow(const ClientOptions& o, const std::string& project_flag, const std::string& ref,
                   const std::string& key, int64_t max_points, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  if (max_points < 1 || max_points > 10000) {
    return InvalidArgumentError("--max-points: must be from 1 to 10000", "max-points");
  }
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue run, FindRun(s, project, ref));
  const std::string run_id = Text(run, "run_id");
  ASSIGN_OR_RETURN(JsonValue h,
                   s.api->Call(Method::kGet, fmt::format("{}/runs/{}/metrics/{}?max_points={}",
                                                         ProjectPath(project), Seg(run_id),
                                                         Seg(key), max_points)));
  const JsonValue* points = h.Find("points");
  if (points == nullptr || !points->is_array() || points->items().empty()) {
    return NotFoundError(
        fmt::format("run \"{}\" has no points for metric \"{}\"", Text(run, "run_name"), key));
  }
  std::vector<double> values;
  double lo = std::numeric_limits<double>::quiet_NaN(), hi = lo;
  JsonValue lo_step, hi_step;
  for (const JsonValue& p : points->items()) {
    double v = MetricValue(p.Find("value"));
    values.push_back(v);
    if (std::isnan(v)) continue;
    const JsonValue* step = p.Find("step");
    if (std::isnan(lo) || v < lo) {
      lo = v;
      lo_step = step != nullptr ? *step : JsonValue();
    }
    if (std::isnan(hi) || v > hi) {
      hi = v;
      hi_step = step != nullptr ? *step : JsonValue();
    }
  }
  const JsonValue& last = points->items().back();
  const JsonValue* total = h.Find("total_points");
  int64_t count = total != nullptr && total->is_number() ? total->as_int()
                                                         : static_cast<int64_t>(values.size());
  auto number = [](double v) {
    return std::isfinite(v) ? JsonValue::MakeDouble(v) : JsonValue::MakeString(Number(v));
  };
  if (s.format != OutputFormat::kTable) {
    std::vector<JsonValue::Member> m = h.members();
    m.emplace_back("run_id", JsonValue::MakeString(run_id));
    m.emplace_back("summary",
                   JsonValue::MakeObject({
                       {"min", number(lo)},
                       {"min_step", lo_step},
                       {"max", number(hi)},
                       {"max_step", hi_step},
                       {"last", number(values.back())},
                       {"last_step", last.Find("step") ? *last.Find("step") : JsonValue()},
                       {"count", JsonValue::MakeInt(count)},
                   }));
    PrintObject(out, s.format, JsonValue::MakeObject(std::move(m)), {});
    return OkStatus();
  }
  auto step_text = [](const JsonValue& step) { return step.is_null() ? "-" : step.Dump(); };
  const JsonValue* down = h.Find("downsampled");
  bool downsampled = down != nullptr && down->type() == JsonValue::Type::kBool && down->as_bool();
  out << fmt::format("{}  {} (run {})\n", key, Text(run, "run_name"), run_id);
  out << Sparkline(values) << "\n";
  out << fmt::format("min {} (step {})   max {} (step {})   last {} (step {})   count {}{}\n",
                     Number(lo), step_text(lo_step), Number(hi), step_text(hi_step),
                     Number(values.back()),
                     step_text(last.Find("step") ? *last.Find("step") : JsonValue()), count,
                     downsampled ? fmt::format(" ({} shown)", values.size()) : "");
  return OkStatus();
}

// ---- artifacts

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", v, kUnits[unit]);
}

namespace {

// One directory's listing as the server sent it ({root_uri, files}).
StatusOr<JsonValue> ListArtifactDir(Session& s, const std::string& base, const std::string& path) {
  std::string url = base;
  if (!path.empty()) url += "?path=" + http::PercentEncode(path);
  ASSIGN_OR_RETURN(JsonValue listing, s.api->Call(Method::kGet, url));
  const JsonValue* files = listing.Find("files");
  if (files != nullptr && !files->is_array()) {
    return UnknownError("server sent an artifact listing whose \"files\" is not a list");
  }
  return listing;
}

bool IsDir(const JsonValue& file) {
  const JsonValue* is_dir = file.Find("is_dir");
  return is_dir != nullptr && is_dir->type() == JsonValue::Type::kBool && is_dir->as_bool();
}

// Appends the files of `listing` to `out`; with `recursive`, each
// directory's own listing follows it.
Status AppendArtifacts(Session& s, const std::string& base, const JsonValue& listing,
                       bool recursive, int depth, std::vector<JsonValue>* out) {
  const JsonValue* files = listing.Find("files");
  if (files == nullptr) return OkStatus();
  for (const JsonValue& f : files->items()) {
    out->push_back(f);
    // A server listing a directory as itself would loop: the depth bounds it.
    if (recursive && IsDir(f) && depth < 64) {
      ASSIGN_OR_RETURN(JsonValue sub, ListArtifactDir(s, base, Text(f, "path")));
      RETURN_IF_ERROR(AppendArtifacts(s, base, sub, recursive, depth + 1, out));
    }
  }
  return OkStatus();
}

}  // namespace

Status RunArtifacts(const ClientOptions& o, const std::string& project_flag, const std::string& ref,
                    const std::string& path, bool recursive, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue run, FindRun(s, project, ref));
  const std::string base =
      fmt::format("{}/runs/{}/artifacts", ProjectPath(project), Seg(Text(run, "run_id")));
  std::string dir = path;
  while (!dir.empty() && dir.back() == '/') dir.pop_back();
  while (!dir.empty() && dir.front() == '/') dir.erase(0, 1);
  ASSIGN_OR_RETURN(JsonValue listing, ListArtifactDir(s, base, dir));
  std::vector<JsonValue> files;
  RETURN_IF_ERROR(AppendArtifacts(s, base, listing, recursive, 0, &files));
  if (s.format != OutputFormat::kTable) {
    const JsonValue* root = listing.Find("root_uri");
    PrintObject(out, s.format,
                JsonValue::MakeObject({{"root_uri", root != nullptr ? *root : JsonValue()},
                                       {"files", JsonValue::MakeArray(std::move(files))}}),
                {});
    return OkStatus();
  }
  if (files.empty()) {
    out << (dir.empty() ? fmt::format("run \"{}\" has no artifacts\n", Text(run, "run_name"))
                        : fmt::format("no artifacts under \"{}\"\n", dir));
    return OkStatus();
  }
  std::vector<JsonValue> rows;
  for (const JsonValue& f : files) {
    bool d = IsDir(f);
    const JsonValue* size = f.Find("file_size");
    uint64_t bytes = size != nullptr && size->is_number() && size->as_double() > 0
                         ? static_cast<uint64_t>(size->as_double())
                         : 0;
    rows.push_back(JsonValue::MakeObject(
        {{"path", JsonValue::MakeString(Text(f, "path"))},
         {"type", JsonValue::MakeString(d ? "dir" : "file")},
         {"size", d ? JsonValue() : JsonValue::MakeString(HumanBytes(bytes))}}));
  }
  PrintList(out, s.format, rows, {{"PATH", "path"}, {"TYPE", "type"}, {"SIZE", "size"}});
  return OkStatus();
}

}  // namespace lathe::cli
