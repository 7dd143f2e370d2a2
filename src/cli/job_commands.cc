#include "cli/job_commands.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <fmt/core.h>

#include "base/json.h"
#include "base/yaml.h"
#include "cli/session.h"
#include "http/message.h"

extern char** environ;

namespace lathe::cli {
namespace {

using http::Method;

bool Terminal(const std::string& phase) {
  return phase == "succeeded" || phase == "failed" || phase == "cancelled" || phase == "timed_out";
}

std::string Text(const JsonValue& object, const std::string& field) {
  const JsonValue* v = object.Find(field);
  return v != nullptr && v->is_string() ? v->as_string() : "";
}

StatusOr<std::string> ResolveProject(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = Env("LATHE_PROJECT")) return std::string(env);
  return InvalidArgumentError("--project: required (or set LATHE_PROJECT)", "project");
}

std::string JobPath(const std::string& project, const std::string& job) {
  return "/api/v1/projects/" + Seg(project) + "/jobs/" + Seg(job);
}

// "cpu=4,memory=16Gi,gpu=0" → {"cpu":"4","memory":"16Gi","gpu":"0"}.
StatusOr<JsonValue> ParseResourceFlag(const std::string& text, const std::string& flag) {
  std::vector<JsonValue::Member> members;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t eq = item.find('=');
    std::string key = item.substr(0, eq);
    if (eq == std::string::npos || (key != "cpu" && key != "memory" && key != "gpu") ||
        eq + 1 == item.size()) {
      return InvalidArgumentError(
          fmt::format("--{}: \"{}\" is not cpu=N, memory=N or gpu=N (e.g. cpu=4,memory=16Gi,gpu=0)",
                      flag, item),
          flag);
    }
    members.emplace_back(key, JsonValue::MakeString(item.substr(eq + 1)));
  }
  return JsonValue::MakeObject(std::move(members));
}

// "cpu=4,memory=16Gi,gpu=0" from a resources object (absent: "-").
std::string ResourcesText(const JsonValue* r) {
  if (r == nullptr || !r->is_object() || r->members().empty()) return "-";
  std::string out;
  for (const auto& [key, value] : r->members()) {
    if (!out.empty()) out += ",";
    out += key + "=" + (value.is_string() ? value.as_string() : value.Dump());
  }
  return out;
}

const std::vector<Column>& JobColumns() {
  static const auto* const kCols = new std::vector<Column>{
      {"NAME", "name"},       {"PHASE", "phase"},        {"REASON", "reason"}, {"QUEUE", "queue"},
      {"ATTEMPT", "attempt"}, {"CREATED", "created_at"}, {"ID", "id"}};
  return *kCols;
}

StatusOr<JsonValue> GetJob(Session& s, const std::string& project, const std::string& job) {
  return s.api->Call(Method::kGet, JobPath(project, job));
}

// Polls the job until it is terminal; OK when it succeeded.
Status WaitForJob(Session& s, const std::string& project, const std::string& job,
                  int64_t timeout_seconds, std::ostream& out) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  auto pause = std::chrono::milliseconds(100);
  while (true) {
    ASSIGN_OR_RETURN(JsonValue j, GetJob(s, project, job));
    const std::string phase = Text(j, "phase");
    if (Terminal(phase)) {
      if (s.format == OutputFormat::kTable) {
        out << fmt::format("job \"{}\" {}", Text(j, "name"), phase);
        if (!Text(j, "reason").empty()) out << " (" << Text(j, "reason") << ")";
        out << "\n";
      } else {
        PrintObject(out, s.format, j, {});
      }
      if (phase == "succeeded") return OkStatus();
      std::string why = Text(j, "message").empty() ? Text(j, "reason") : Text(j, "message");
      return FailedPreconditionError(fmt::format("job \"{}\" ended {}{}", Text(j, "name"), phase,
                                                 why.empty() ? "" : ": " + why));
    }
    if (timeout_seconds > 0 && std::chrono::steady_clock::now() + pause > deadline) {
      return DeadlineExceededError(
          fmt::format("job \"{}\" is still {} after --timeout", Text(j, "name"), phase));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 3 / 2, std::chrono::milliseconds(2000));
  }
}

}  // namespace

// A YAML or JSON document from a file ("-": standard input).
StatusOr<JsonValue> ReadSpecFile(const std::string& path) {
  std::stringstream buf;
  if (path == "-") {
    buf << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) return InvalidArgumentError(fmt::format("-f: cannot read {}", path), "file");
    buf << in.rdbuf();
  }
  auto doc = ParseYaml(buf.str());
  if (!doc.ok()) return doc.status().WithPrefix(path);
  if (!doc->is_object())
    return InvalidArgumentError(fmt::format("{}: expected a mapping", path), "file");
  return doc;
}

// `tar -czf - -C dir .`, its standard output collected.
StatusOr<std::string> TarDirectory(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return InvalidArgumentError(fmt::format("--code: {} is not a directory", dir), "code");
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return InternalError(std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  const char* argv[] = {"tar", "-czf", "-", "-C", dir.c_str(), ".", nullptr};
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "tar", &actions, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return InternalError(fmt::format("--code: cannot run tar: {}", std::strerror(rc)));
  }
  std::string archive;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    archive.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return InvalidArgumentError(fmt::format("--code: tar could not archive {}", dir), "code");
  }
  return archive;
}

Status JobSubmit(const ClientOptions& o, const JobSubmitOptions& j, std::ostream& out) {
  ASSIGN_OR_RETURN(JsonValue doc, ReadSpecFile(j.file));
  std::string project = j.project;
  if (project.empty() && Env("LATHE_PROJECT")) project = Env("LATHE_PROJECT");
  if (project.empty()) project = Text(doc, "project");
  if (project.empty()) {
    return InvalidArgumentError(
        "--project: required (or set LATHE_PROJECT, or `project` in the spec)", "project");
  }
  std::string archive;
  if (!j.code_dir.empty()) {
    ASSIGN_OR_RETURN(archive, TarDirectory(j.code_dir));
  }
  ASSIGN_OR_RETURN(Session s, Connect(o));
  std::string path = "/api/v1/projects/" + Seg(project) + "/jobs";
  if (!archive.empty()) {
    ASSIGN_OR_RETURN(JsonValue uploaded,
                     s.api->Call(Method::kPut, "/api/v1/projects/" + Seg(project) + "/code",
                                 archive, "application/gzip"));
    path += "?code=" + Text(uploaded, "digest");
  }
  ASSIGN_OR_RETURN(JsonValue job, s.api->Call(Method::kPost, path, doc.Dump()));
  if (s.format == OutputFormat::kTable) {
    out << fmt::format("job \"{}\" submitted (id {}, queue {})\n", Text(job, "name"),
                       Text(job, "id"), Text(job, "queue"));
  } else if (!j.wait) {
    PrintObject(out, s.format, job, {});
  }
  if (!j.wait) return OkStatus();
  return WaitForJob(s, project, Text(job, "id"), 0, out);
}

Status JobList(const ClientOptions& o, const JobListOptions& j, const ListOptions& l,
               std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(j.project));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  std::string path = "/api/v1/projects/" + Seg(project) + "/jobs";
  std::string sep = "?";
  if (!j.phase.empty()) {
    path += sep + "phase=" + http::PercentEncode(j.phase);
    sep = "&";
  }
  if (!j.queue.empty()) path += sep + "queue=" + http::PercentEncode(j.queue);
  return PrintListing(s, path, l, JobColumns(), out);
}

Status JobDescribe(const ClientOptions& o, const std::string& project_flag, const std::string& job,
                   std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue j, GetJob(s, project, job));
  ASSIGN_OR_RETURN(JsonValue ev,
                   s.api->Call(Method::kGet, JobPath(project, Text(j, "id")) + "/events"));
  const JsonValue* events = ev.Find("events");
  if (s.format != OutputFormat::kTable) {
    std::vector<JsonValue::Member> members = j.members();
    members.emplace_back("events", events != nullptr ? *events : JsonValue::MakeArray({}));
    PrintObject(out, s.format, JsonValue::MakeObject(std::move(members)), {});
    return OkStatus();
  }
  std::vector<Column> fields = {
      {"NAME", "name"},         {"ID", "id"},       {"PROJECT", "project"}, {"QUEUE", "queue"},
      {"PRIORITY", "priority"}, {"PHASE", "phase"}, {"REASON", "reason"},   {"MESSAGE", "message"}};
  if (Text(j, "phase") == "pending") fields.push_back({"PENDING REASON", "pending_reason"});
  for (Column c : std::vector<Column>{{"ATTEMPT", "attempt"},
                                      {"RESTARTS", "restarts"},
                                      {"CREATED BY", "created_by"},
                                      {"CREATED", "created_at"},
                                      {"ADMITTED", "admitted_at"},
                                      {"STARTED", "started_at"},
                                      {"FINISHED", "finished_at"},
                                      {"CODE", "code"},
                                      {"RUN", "run_id"}}) {
    fields.push_back(c);
  }
  PrintObject(out, s.format, j, fields);
  const JsonValue* tasks = j.Find("tasks");
  out << "\nTasks:\n";
  if (tasks != nullptr && tasks->is_array() && !tasks->items().empty()) {
    PrintList(out, s.format, tasks->items(),
              {{"ROLE", "role"},
               {"INDEX", "index"},
               {"NODE", "node"},
               {"STATE", "state"},
               {"EXIT CODE", "exit_code"},
               {"SIGNAL", "signal"}});
  } else {
    out << "(none placed)\n";
  }
  out << "\nEvents:\n";
  if (events != nullptr && events->is_array() && !events->items().empty()) {
    PrintList(out, s.format, events->items(),
              {{"TIME", "time"}, {"TYPE", "type"}, {"REASON", "reason"}, {"MESSAGE", "message"}});
  } else {
    out << "(none)\n";
  }
  return OkStatus();
}

Status JobCancel(const ClientOptions& o, const std::string& project_flag, const std::string& job,
                 std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue j, s.api->Call(Method::kPost, JobPath(project, job) + ":cancel"));
  if (s.format == OutputFormat::kTable) {
    out << fmt::format("job \"{}\" cancelling\n", Text(j, "name"));
  } else {
    PrintObject(out, s.format, j, {});
  }
  return OkStatus();
}

Status JobRemove(const ClientOptions& o, const std::string& project_flag, const std::string& job,
                 std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  ASSIGN_OR_RETURN(Session s, Connect(o));
  RETURN_IF_ERROR(s.api->Call(Method::kDelete, JobPath(project, job)).status());
  if (s.format == OutputFormat::kTable) out << fmt::format("job \"{}\" deleted\n", job);
  return OkStatus();
}

Status JobLogs(const ClientOptions& o, const std::string& project_flag, const std::string& job,
               const JobLogsOptions& l, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  if (l.stream != "stdout" && l.stream != "stderr") {
    return InvalidArgumentError(fmt::format("--stream: \"{}\" is not stdout or stderr", l.stream),
                                "stream");
  }
  ASSIGN_OR_RETURN(Session s, Connect(o));
  std::string path =
      JobPath(project, job) + "/logs?stream=" + l.stream + "&index=" + std::to_string(l.index);
  if (!l.role.empty()) path += "&role=" + http::PercentEncode(l.role);
  if (!l.follow) {
    ASSIGN_OR_RETURN(std::string text, s.api->GetText(path));
    out << text;
    out.flush();
    return OkStatus();
  }
  Status failed;
  RETURN_IF_ERROR(
      s.api->Stream(path + "&follow=true", [&](std::string_view event, std::string_view data) {
        if (event == "end") return false;
        auto doc = ParseJson(data);
        if (!doc.ok()) {
          failed = doc.status().WithPrefix("server sent an unreadable log event");
          return false;
        }
        if (event == "error") {
          failed = UnavailableError(Text(*doc, "message"));
          return false;
        }
        if (event == "log") {
          out << Text(*doc, "text");
          out.flush();
        }
        return true;
      }));
  return failed;
}

Status JobWait(const ClientOptions& o, const std::string& project_flag, const std::string& job,
               const std::string& timeout, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string project, ResolveProject(project_flag));
  int64_t seconds = 0;
  if (!timeout.empty()) {
    ASSIGN_OR_RETURN(seconds, ParseDurationSeconds(timeout, "timeout"));
  }
  ASSIGN_OR_RETURN(Session s, Connect(o));
  return WaitForJob(s, project, job, seconds, out);
}

// ---- queues

namespace {

// A queue as a table row: spec fields and usage flattened to text.
JsonValue QueueRow(const JsonValue& q) {
  static const JsonValue kEmpty = JsonValue::MakeObject({});
  const JsonValue* spec = q.Find("spec");
  if (spec == nullptr) spec = &kEmpty;
  const JsonValue* weight = spec->Find("weight");
  return JsonValue::MakeObject({
      {"name", JsonValue::MakeString(Text(q, "name"))},
      {"parent", JsonValue::MakeString(Text(*spec, "parent"))},
      {"weight", weight != nullptr ? *weight : JsonValue()},
      {"guarantee", JsonValue::MakeString(ResourcesText(spec->Find("guarantee")))},
      {"ceiling", JsonValue::MakeString(ResourcesText(spec->Find("ceiling")))},
      {"usage", JsonValue::MakeString(ResourcesText(q.Find("usage")))},
      {"running", q.Find("running") != nullptr ? *q.Find("running") : JsonValue()},
      {"pending", q.Find("pending") != nullptr ? *q.Find("pending") : JsonValue()},
  });
}

const std::vector<Column>& QueueColumns() {
  static const auto* const kCols = new std::vector<Column>{
      {"NAME", "name"},           {"PARENT", "parent"},   {"WEIGHT", "weight"},
      {"GUARANTEE", "guarantee"}, {"CEILING", "ceiling"}, {"USAGE", "usage"},
      {"RUNNING", "running"},     {"PENDING", "pending"}};
  return *kCols;
}

void PrintQueue(std::ostream& out, OutputFormat format, const JsonValue& q) {
  if (format == OutputFormat::kTable) {
    PrintObject(out, format, QueueRow(q), QueueColumns());
  } else {
    PrintObject(out, format, q, {});
  }
}

// `base` (a queue spec object, may be empty) with the flags' changes.
StatusOr<JsonValue> MergeQueueFlags(const JsonValue& base, const QueueOptions& q) {
  std::vector<JsonValue::Member> members;
  auto set = [&members](const std::string& key, JsonValue v) {
    for (auto& m : members) {
      if (m.first == key) {
        m.second = std::move(v);
        return;
      }
    }
    members.emplace_back(key, std::move(v));
  };
  for (const auto& m : base.members()) members.push_back(m);
  if (!q.name.empty()) set("name", JsonValue::MakeString(q.name));
  if (!q.parent.empty()) set("parent", JsonValue::MakeString(q.parent == "-" ? "" : q.parent));
  if (!q.guarantee.empty()) {
    ASSIGN_OR_RETURN(JsonValue g, ParseResourceFlag(q.guarantee, "guarantee"));
    set("guarantee", std::move(g));
  }
  if (q.ceiling == "none") {
    set("ceiling", JsonValue::MakeObject({}));
  } else if (!q.ceiling.empty()) {
    ASSIGN_OR_RETURN(JsonValue c, ParseResourceFlag(q.ceiling, "ceiling"));
    set("ceiling", std::move(c));
  }
  if (q.weight > 0) set("weight", JsonValue::MakeInt(q.weight));
  return JsonValue::MakeObject(std::move(members));
}

}  // namespace

Status QueueList(const ClientOptions& o, const ListOptions& l, std::ostream& out) {
  ASSIGN_OR_RETURN(Session s, Connect(o));
  std::string next;
  ASSIGN_OR_RETURN(std::vector<JsonValue> items,
                   s.api->List("/api/v1/queues", l.limit, l.page_token, &next));
  if (s.format == OutputFormat::kTable) {
    for (JsonValue& q : items) q = QueueRow(q);
  }
  PrintList(out, s.format, items, QueueColumns());
  if (!next.empty()) std::cerr << "more results: --page-token " << next << "\n";
  return OkStatus();
}

Status QueueGet(const ClientOptions& o, const std::string& name, std::ostream& out) {
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue q, s.api->Call(Method::kGet, "/api/v1/queues/" + Seg(name)));
  PrintQueue(out, s.format, q);
  return OkStatus();
}

Status QueueCreate(const ClientOptions& o, const QueueOptions& q, std::ostream& out) {
  JsonValue base = JsonValue::MakeObject({});
  if (!q.file.empty()) {
    ASSIGN_OR_RETURN(base, ReadSpecFile(q.file));
  }
  ASSIGN_OR_RETURN(JsonValue body, MergeQueueFlags(base, q));
  if (Text(body, "name").empty()) {
    return InvalidArgumentError("NAME: required (as an argument or `name` in -f's spec)", "name");
  }
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue created, s.api->Call(Method::kPost, "/api/v1/queues", body.Dump()));
  PrintQueue(out, s.format, created);
  return OkStatus();
}

Status QueueUpdate(const ClientOptions& o, const QueueOptions& q, std::ostream& out) {
  ASSIGN_OR_RETURN(Session s, Connect(o));
  JsonValue base;
  if (!q.file.empty()) {
    ASSIGN_OR_RETURN(base, ReadSpecFile(q.file));
  } else {
    ASSIGN_OR_RETURN(JsonValue current, s.api->Call(Method::kGet, "/api/v1/queues/" + Seg(q.name)));
    const JsonValue* spec = current.Find("spec");
    base = spec != nullptr && spec->is_object() ? *spec : JsonValue::MakeObject({});
  }
  ASSIGN_OR_RETURN(JsonValue body, MergeQueueFlags(base, q));
  ASSIGN_OR_RETURN(JsonValue saved,
                   s.api->Call(Method::kPut, "/api/v1/queues/" + Seg(q.name), body.Dump()));
  PrintQueue(out, s.format, saved);
  return OkStatus();
}

Status QueueRemove(const ClientOptions& o, const std::string& name, std::ostream& out) {
  ASSIGN_OR_RETURN(Session s, Connect(o));
  RETURN_IF_ERROR(s.api->Call(Method::kDelete, "/api/v1/queues/" + Seg(name)).status());
  if (s.format == OutputFormat::kTable) out << fmt::format("queue \"{}\" deleted\n", name);
  return OkStatus();
}

}  // namespace lathe::cli
