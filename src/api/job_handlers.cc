// /api/v1 routes for training jobs, their logs and code snapshots, and
// queues (docs/api.md "Jobs" and "Queues"). Decode → control::JobService →
// encode; logs come from the controller's executor, followed over SSE by a
// producer thread per stream (log_followers.h).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "api/api.h"
#include "api/log_followers.h"
#include "base/crypto.h"
#include "base/id.h"
#include "base/log.h"
#include "base/subprocess.h"
#include "control/controller.h"
#include "control/jobs.h"
#include "exec/executor.h"
#include "http/sse.h"
#include "spec/job_spec.h"

namespace lathe::api {

using control::JobRecord;
using control::Phase;
using control::QueueRecord;
using http::Method;

namespace {

constexpr size_t kMaxBatch = 1000;
constexpr int64_t kLogReadBytes = 1 << 20;      // one ReadLog call, plain reads
constexpr int64_t kMaxLogResponse = 16 << 20;   // one plain (non-follow) answer
constexpr int64_t kFollowReadBytes = 64 << 10;  // one SSE event at most
constexpr int64_t kFollowPollMs = 100;          // while the log is idle

// ---- encoding

// `key`: `value`, or null when it is empty.
void WriteNullableString(JsonWriter& w, std::string_view key, const std::string& value) {
  w.Key(key);
  if (value.empty()) {
    w.Null();
  } else {
    w.String(value);
  }
}

void EncodeJob(JsonWriter& w, const JobRecord& j, control::JobController* controller) {
  w.BeginObject()
      .Field("id", j.id)
      .Field("name", j.spec.name)
      .Field("project", j.project)
      .Field("queue", j.spec.queue)
      .Field("priority", j.spec.priority)
      .Field("phase", control::PhaseName(j.phase))
      .Field("reason", j.reason)
      .Field("message", j.message)
      .Field("attempt", j.attempt)
      .Field("restarts", j.restarts)
      .Field("cancel_requested", j.cancel_requested)
      .Field("created_by", j.created_by);
  WriteNullableString(w, "code", j.code);
  WriteNullableString(w, "run_id", j.run_id);
  WriteTimeField(w, "created_at", j.created_at);
  WriteTimeField(w, "admitted_at", j.admitted_at);
  WriteTimeField(w, "started_at", j.started_at);
  WriteTimeField(w, "finished_at", j.finished_at);
  if (j.phase == Phase::kPending && controller != nullptr) {
    WriteNullableString(w, "pending_reason", controller->PendingReason(j.id));
  }
  w.Key("tasks").BeginArray();
  for (const control::TaskRecord& t : j.tasks) {
    w.BeginObject().Field("role", t.role).Field("index", t.index).Field("node", t.node);
    WriteNullableString(w, "state", t.state);
    w.Field("exit_code", t.exit_code).Field("signal", t.signal);
    WriteTimeField(w, "started_at", t.started_at);
    WriteTimeField(w, "finished_at", t.finished_at);
    w.EndObject();
  }
  w.EndArray();
  w.Key("spec");
  spec::WriteJobSpec(w, j.spec);
  w.EndObject();
}

void EncodeEvent(JsonWriter& w, const control::JobEvent& e) {
  w.BeginObject();
  WriteTimeField(w, "time", e.time);
  w.Field("type", e.type).Field("reason", e.reason).Field("message", e.message).EndObject();
}

// Allocation of a queue's admitted/launching/running jobs and its pending
// count, from the store's active jobs.
struct QueueUsage {
  sched::Resources allocated;
  int64_t running = 0;  // active jobs holding resources
  int64_t pending = 0;
};

StatusOr<std::map<std::string, QueueUsage>> LoadQueueUsage(store::Store& store) {
  std::map<std::string, QueueUsage> usage;
  RETURN_IF_ERROR(store::RunInTx(store, store::TxMode::kRead, [&](store::Tx& tx) -> Status {
    usage.clear();
    ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, control::LoadActiveJobs(tx));
    for (const JobRecord& j : jobs) {
      QueueUsage& u = usage[j.spec.queue];
      if (j.phase == Phase::kPending) {
        ++u.pending;
        continue;
      }
      ++u.running;
      for (const spec::Role& r : j.spec.roles) u.allocated += r.resources * r.replicas;
    }
    return OkStatus();
  }));
  return usage;
}

void EncodeQueue(JsonWriter& w, const QueueRecord& q, const QueueUsage& u) {
  w.BeginObject().Field("name", q.spec.name);
  WriteNullableString(w, "parent", q.spec.parent);
  w.Key("spec");
  spec::WriteQueueSpec(w, q.spec);
  w.Key("usage")
      .BeginObject()
      .Field("cpu", spec::FormatCpu(u.allocated.cpu_milli))
      .Field("memory", spec::FormatMemory(u.allocated.memory_mib))
      .Field("gpu", spec::FormatGpu(u.allocated.gpu_milli))
      .EndObject();
  w.Field("running", u.running).Field("pending", u.pending);
  WriteTimeField(w, "created_at", q.created_at);
  WriteTimeField(w, "updated_at", q.updated_at);
  w.EndObject();
}

// ---- decoding

// One job of a submission: the path names the project, so a `project` in
// the body must agree with it (or be absent).
StatusOr<spec::JobSpec> DecodeJob(const JsonValue& v, const std::string& path,
                                  const std::string& project) {
  if (v.is_object()) {
    if (const JsonValue* p = v.Find("project");
        p != nullptr && p->is_string() && p->as_string() != project) {
      std::string field = path.empty() ? "project" : path + ".project";
      return InvalidArgumentError(
          fmt::format("{}: \"{}\" does not match the project in the path, \"{}\"", field,
                      p->as_string(), project),
          field);
    }
  }
  ASSIGN_OR_RETURN(spec::JobSpec spec, spec::ParseJobSpec(v, path));
  spec.project = project;
  return spec;
}

// A queue spec from a body; `name` (from the path, may be "") must agree
// with the body's name, which may then be omitted.
StatusOr<spec::QueueSpec> DecodeQueue(const JsonValue& body, const std::string& name) {
  if (name.empty() || !body.is_object()) return spec::ParseQueueSpec(body);
  const JsonValue* n = body.Find("name");
  if (n != nullptr && n->is_string()) {
    if (n->as_string() != name) {
      return InvalidArgumentError(
          fmt::format("name: \"{}\" does not match the queue in the path, \"{}\"", n->as_string(),
                      name),
          "name");
    }
    return spec::ParseQueueSpec(body);
  }
  std::vector<JsonValue::Member> members = body.members();
  members.emplace_back("name", JsonValue::MakeString(name));
  return spec::ParseQueueSpec(JsonValue::MakeObject(std::move(members)));
}

StatusOr<int64_t> IntParam(const http::Request& req, std::string_view name, int64_t fallback,
                           int64_t min, int64_t max) {
  std::string text;
  if (!req.QueryParam(name, &text)) return fallback;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < min || v > max) {
    return InvalidArgumentError(
        fmt::format("{}: \"{}\" is not an integer in [{}, {}]", name, text, min, max),
        std::string(name));
  }
  return v;
}

StatusOr<bool> BoolParam(const http::Request& req, std::string_view name) {
  std::string text;
  if (!req.QueryParam(name, &text) || text == "false" || text == "0") return false;
  if (text == "true" || text == "1" || text.empty()) return true;
  return InvalidArgumentError(fmt::format("{}: \"{}\" is not true or false", name, text),
                              std::string(name));
}

// ---- code snapshots

bool IsDigest(std::string_view d) {
  return d.size() == 64 && std::all_of(d.begin(), d.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Keeps `body` (a tar.gz) as <root>/<digest>.tar.gz and extracted as
// <root>/<digest>/ (into a temporary directory, then renamed, so a
// snapshot directory is always complete). Idempotent per digest.
Status StoreSnapshot(const std::string& root, const std::string& digest, const std::string& body) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = fs::path(root) / digest;
  if (fs::is_directory(dir, ec)) return OkStatus();
  fs::create_directories(root, ec);
  if (ec) return InternalError(fmt::format("cannot create {}: {}", root, ec.message()));
  const std::string unique = NewId();
  const fs::path upload = fs::path(root) / (".upload-" + unique);
  const fs::path archive = fs::path(root) / (digest + ".tar.gz");
  {
    int fd = ::open(upload.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
      return InternalError(
          fmt::format("cannot create {}: {}", upload.string(), std::strerror(errno)));
    size_t off = 0;
    bool ok = true;
    while (ok && off < body.size()) {
      ssize_t n = ::write(fd, body.data() + off, body.size() - off);
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) off += static_cast<size_t>(n);
    }
    ok = ::close(fd) == 0 && ok;
    if (!ok) {
      fs::remove(upload, ec);
      return InternalError(fmt::format("cannot write {}", upload.string()));
    }
  }
  fs::rename(upload, archive, ec);
  if (ec) {
    fs::remove(upload, ec);
    return InternalError(fmt::format("cannot store {}", archive.string()));
  }
  const fs::path staging = fs::path(root) / (".extract-" + unique);
  fs::create_directory(staging, ec);
  if (ec) return InternalError(fmt::format("cannot create {}: {}", staging.string(), ec.message()));
  std::string err;
  auto rc =
      RunQuietProcess({"tar", "-xzf", archive.string(), "-C", staging.string(), "--no-same-owner"}, &err);
  if (!rc.ok() || *rc != 0) {
    fs::remove_all(staging, ec);
    fs::remove(archive, ec);
    if (!rc.ok()) return rc.status();
    // tar's stderr as one line: "gzip: stdin: not in gzip format; tar: …".
    std::string detail;
    for (size_t start = 0; start < err.size();) {
      size_t end = std::min(err.find('\n', start), err.size());
      if (end > start) detail += (detail.empty() ? "" : "; ") + err.substr(start, end - start);
      start = end + 1;
    }
    return InvalidArgumentError(fmt::format("body: not a gzip-compressed tar archive ({})", detail),
                                "body");
  }
  fs::rename(staging, dir, ec);
  if (ec) {
    // Another upload of the same bytes won the race: its copy is as good.
    std::error_code ignored;
    fs::remove_all(staging, ignored);
    if (!fs::is_directory(dir, ignored)) {
      return InternalError(
          fmt::format("cannot rename {} to {}: {}", staging.string(), dir.string(), ec.message()));
    }
  }
  return OkStatus();
}

// ---- logs

// The length of the longest prefix of `s` that does not end inside a
// multi-byte UTF-8 sequence that more bytes could still complete.
size_t CompleteUtf8Prefix(std::string_view s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    size_t want = c < 0x80             ? 1
                  : (c & 0xE0) == 0xC0 ? 2
                  : (c & 0xF0) == 0xE0 ? 3
                  : (c & 0xF8) == 0xF0 ? 4
                                       : 1;
    return want > back ? n - back : n;
  }
  return n;
}

// `s` with every invalid UTF-8 sequence replaced by U+FFFD, so that the log
// text is valid inside JSON.
std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  auto cont = [&](size_t k, unsigned lo, unsigned hi) {
    if (i + k >= s.size()) return false;
    auto c = static_cast<unsigned char>(s[i + k]);
    return c >= lo && c <= hi;
  };
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    if (c < 0x80) {
      len = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = cont(1, 0x80, 0xBF) ? 2 : 0;
    } else if (c >= 0xE0 && c <= 0xEF) {
      unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
      len = cont(1, lo, hi) && cont(2, 0x80, 0xBF) ? 3 : 0;
    } else if (c >= 0xF0 && c <= 0xF4) {
      unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
      len = cont(1, lo, hi) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) ? 4 : 0;
    }
    if (len == 0) {
      out.append("\xEF\xBF\xBD");
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

struct LogRequest {
  exec::TaskKey key;
  exec::LogStream stream = exec::LogStream::kStdout;
  int64_t offset = 0;
  bool follow = false;
};

StatusOr<LogRequest> DecodeLogRequest(const http::Request& req, const JobRecord& job) {
  LogRequest r;
  r.key.job_id = job.id;
  std::string role;
  req.QueryParam("role", &role);
  const spec::Role* found = nullptr;
  std::string names;
  for (const spec::Role& x : job.spec.roles) {
    if (role.empty() ? found == nullptr : x.name == role) found = &x;
    names += (names.empty() ? "" : ", ") + x.name;
  }
  if (found == nullptr) {
    return InvalidArgumentError(
        fmt::format("role: job \"{}\" has no role \"{}\" (roles: {})", job.spec.name, role, names),
        "role");
  }
  r.key.role = found->name;
  ASSIGN_OR_RETURN(int64_t index, IntParam(req, "index", 0, 0, found->replicas - 1));
  r.key.index = static_cast<int>(index);
  ASSIGN_OR_RETURN(int64_t attempt, IntParam(req, "attempt", job.attempt, 0, job.attempt));
  r.key.attempt = static_cast<int>(attempt);
  std::string stream = "stdout";
  req.QueryParam("stream", &stream);
  if (stream == "stderr") {
    r.stream = exec::LogStream::kStderr;
  } else if (stream != "stdout") {
    return InvalidArgumentError(fmt::format("stream: \"{}\" is not stdout or stderr", stream),
                                "stream");
  }
  ASSIGN_OR_RETURN(r.offset, IntParam(req, "offset", 0, 0, INT64_MAX));
  ASSIGN_OR_RETURN(r.follow, BoolParam(req, "follow"));
  return r;
}

// Whether the task of `key` will write no more: it exited or was lost, or
// it never started and never will (its job ended, was removed, or moved on
// to a later attempt).
bool TaskFinished(exec::Executor& executor, store::Store& store, const exec::TaskKey& key) {
  auto status = executor.Observe(key);
  if (status.ok()) {
    if (status->state == exec::TaskState::kExited || status->state == exec::TaskState::kLost) {
      return true;
    }
    if (status->state != exec::TaskState::kUnknown) return false;
  }
  bool finished = false;
  Status st = store::RunInTx(store, store::TxMode::kRead, [&](store::Tx& tx) -> Status {
    auto job = control::LoadJob(tx, key.job_id);
    if (!job.ok()) {
      finished = job.status().code() == StatusCode::kNotFound;
      return job.status().code() == StatusCode::kNotFound ? OkStatus() : job.status();
    }
    finished = control::IsTerminal(job->phase) || job->attempt != key.attempt;
    return OkStatus();
  });
  return st.ok() && finished;
}

// The producer of one followed log: "log" events with
// {"offset","next_offset","text"} until the task has finished and its log is
// drained, then one "end" event {"next_offset"}.
void FollowLog(LogFollowers& followers, exec::Executor& executor, store::Store& store, LogRequest r,
               std::shared_ptr<http::SseStream> sse) {
  int64_t offset = r.offset;
  bool finished = false;
  while (!sse->closed()) {
    auto chunk = executor.ReadLog(r.key, r.stream, offset, kFollowReadBytes);
    bool idle = true;
    if (!chunk.ok() && chunk.status().code() != StatusCode::kNotFound) {
      std::string data;
      JsonWriter w(&data);
      w.BeginObject().Field("message", chunk.status().message()).EndObject();
      sse->Send("error", data);
      break;
    }
    if (chunk.ok() && !chunk->data.empty()) {
      const std::string_view bytes = chunk->data;
      const int64_t start = chunk->next_offset - static_cast<int64_t>(bytes.size());
      // Hold back a character split by the read, unless nothing more comes.
      const size_t keep = finished && chunk->eof ? bytes.size() : CompleteUtf8Prefix(bytes);
      if (keep > 0) {
        std::string data;
        JsonWriter w(&data);
        w.BeginObject()
            .Field("offset", start)
            .Field("next_offset", start + static_cast<int64_t>(keep))
            .Field("text", SanitizeUtf8(bytes.substr(0, keep)))
            .EndObject();
        if (!sse->Send("log", data)) break;
        offset = start + static_cast<int64_t>(keep);
        idle = chunk->eof;
      }
    }
    if (!idle) continue;
    if (finished) {
      std::string data;
      JsonWriter w(&data);
      w.BeginObject().Field("next_offset", offset).EndObject();
      sse->Send("end", data);
      break;
    }
    // One more read after the task is seen finished drains what it wrote last.
    finished = TaskFinished(executor, store, r.key);
    if (!finished && !followers.Sleep(kFollowPollMs)) break;
  }
  sse->Close();
}

}  // namespace

Status CheckCodeSnapshot(const std::string& code_root, const std::string& project,
                         const std::string& code) {
  if (!IsDigest(code)) {
    return InvalidArgumentError(
        fmt::format("code: \"{}\" is not a snapshot digest (64 hex digits)", code), "code");
  }
  std::error_code ec;
  if (code_root.empty() ||
      !std::filesystem::is_directory(std::filesystem::path(code_root) / code, ec)) {
    return InvalidArgumentError(
        fmt::format("code: no snapshot {}; upload it with PUT /api/v1/projects/{}/code", code,
                    project),
        "code");
  }
  return OkStatus();
}

void Api::RegisterJobRoutes() {
  control::JobService* const jobs = job_routes_.jobs;
  control::JobController* const controller = job_routes_.controller;
  log_followers_ = std::make_unique<LogFollowers>();

  // ----- code snapshots
  Authed(Method::kPut, "/api/v1/projects/{project}/code", [this](Call& c) -> Status {
    RETURN_IF_ERROR(
        tenancy_.AuthorizeProject(*c.principal, c.req.PathParam("project"), tenancy::Role::kEditor)
            .status());
    if (c.req.body.empty()) {
      return InvalidArgumentError("body: empty; send a gzip-compressed tar archive", "body");
    }
    const std::string digest = Sha256Hex(c.req.body);
    RETURN_IF_ERROR(StoreSnapshot(job_routes_.code_root, digest, c.req.body));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject()
          .Field("digest", digest)
          .Field("size", static_cast<int64_t>(c.req.body.size()))
          .EndObject();
    });
    return OkStatus();
  });

  // ----- jobs
  auto submit = [this, jobs, controller](Call& c, bool batch) -> Status {
    const std::string& project = c.req.PathParam("project");
    std::string code;
    if (c.req.QueryParam("code", &code)) {
      RETURN_IF_ERROR(CheckCodeSnapshot(job_routes_.code_root, project, code));
    }
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    c.invalid_as = InvalidAs::kUnprocessable;
    std::vector<spec::JobSpec> specs;
    if (batch) {
      ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
      ASSIGN_OR_RETURN(const JsonValue* list, r.Value("jobs", Presence::kRequired));
      RETURN_IF_ERROR(r.Finish());
      if (!list->is_array()) {
        return InvalidArgumentError(
            fmt::format("jobs: expected an array, got {}", JsonTypeName(list->type())), "jobs");
      }
      if (list->items().empty() || list->items().size() > kMaxBatch) {
        return InvalidArgumentError(
            fmt::format("jobs: {} jobs; a batch holds 1 to {}", list->items().size(), kMaxBatch),
            "jobs");
      }
      specs.reserve(list->items().size());
      for (size_t i = 0; i < list->items().size(); ++i) {
        ASSIGN_OR_RETURN(spec::JobSpec s,
                         DecodeJob(list->items()[i], fmt::format("jobs[{}]", i), project));
        specs.push_back(std::move(s));
      }
    } else {
      ASSIGN_OR_RETURN(spec::JobSpec s, DecodeJob(body, "", project));
      specs.push_back(std::move(s));
    }
    control::JobService::FitCheck fits;
    if (controller != nullptr) {
      fits = [controller](const spec::JobSpec& s) { return controller->CheckFits(s); };
    }
    ASSIGN_OR_RETURN(std::vector<JobRecord> created,
                     jobs->Submit(*c.principal, std::move(specs), code, fits));
    if (controller != nullptr) controller->Poke();
    WriteJson(c.res, 201, [&](JsonWriter& w) {
      if (!batch) return EncodeJob(w, created.front(), controller);
      w.BeginObject().Key("jobs").BeginArray();
      for (const JobRecord& j : created) EncodeJob(w, j, controller);
      w.EndArray().EndObject();
    });
    return OkStatus();
  };
  Authed(Method::kPost, "/api/v1/projects/{project}/jobs",
         [submit](Call& c) { return submit(c, false); });
  Authed(Method::kPost, "/api/v1/projects/{project}/jobs:batch",
         [submit](Call& c) { return submit(c, true); });

  Authed(Method::kGet, "/api/v1/projects/{project}/jobs", [jobs, controller](Call& c) -> Status {
    control::JobFilter filter;
    filter.project = c.req.PathParam("project");
    std::string phase;
    if (c.req.QueryParam("phase", &phase) && !phase.empty()) {
      ASSIGN_OR_RETURN(filter.phase, control::ParsePhase(phase, "phase"));
    }
    c.req.QueryParam("queue", &filter.queue);
    ASSIGN_OR_RETURN(tenancy::PageRequest page, PageFromQuery(c.req));
    ASSIGN_OR_RETURN(tenancy::Page<JobRecord> list, jobs->List(*c.principal, filter, page));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Key("items").BeginArray();
      for (const JobRecord& j : list.items) EncodeJob(w, j, controller);
      w.EndArray().Field("next_page_token", list.next_page_token).EndObject();
    });
    return OkStatus();
  });

  Authed(Method::kGet, "/api/v1/projects/{project}/jobs/{job}",
         [jobs, controller](Call& c) -> Status {
           ASSIGN_OR_RETURN(JobRecord j, jobs->Get(*c.principal, c.req.PathParam("project"),
                                                   c.req.PathParam("job")));
           WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeJob(w, j, controller); });
           return OkStatus();
         });

  Authed(Method::kGet, "/api/v1/projects/{project}/jobs/{job}/events", [jobs](Call& c) -> Status {
    ASSIGN_OR_RETURN(
        std::vector<control::JobEvent> events,
        jobs->Events(*c.principal, c.req.PathParam("project"), c.req.PathParam("job")));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Key("events").BeginArray();
      for (const control::JobEvent& e : events) EncodeEvent(w, e);
      w.EndArray().EndObject();
    });
    return OkStatus();
  });

  // POST …/jobs/{job}:cancel. The router matches whole segments, so the
  // action suffix is taken apart here.
  Authed(Method::kPost, "/api/v1/projects/{project}/jobs/{job}",
         [jobs, controller](Call& c) -> Status {
           constexpr std::string_view kCancel = ":cancel";
           const std::string& target = c.req.PathParam("job");
           if (target.size() <= kCancel.size() ||
               target.compare(target.size() - kCancel.size(), kCancel.size(), kCancel) != 0) {
             c.res.SetHeader("Allow", "GET, HEAD, DELETE");
             WriteErrorBody(
                 405, "METHOD_NOT_ALLOWED",
                 "method POST not allowed for " + c.req.path + " (did you mean …:cancel?)", "",
                 c.req.request_id, c.res);
             return OkStatus();
           }
           ASSIGN_OR_RETURN(JobRecord j,
                            jobs->Cancel(*c.principal, c.req.PathParam("project"),
                                         target.substr(0, target.size() - kCancel.size())));
           if (controller != nullptr) controller->Poke();
           WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeJob(w, j, controller); });
           return OkStatus();
         });

  Authed(Method::kDelete, "/api/v1/projects/{project}/jobs/{job}",
         [jobs, controller](Call& c) -> Status {
           ASSIGN_OR_RETURN(JobRecord j, jobs->Remove(*c.principal, c.req.PathParam("project"),
                                                      c.req.PathParam("job")));
           if (controller != nullptr) {
             Status st = controller->executor().Remove(j.id);
             if (!st.ok() && st.code() != StatusCode::kNotFound) {
               LOG_WARN("request {}: job {} removed, but not its task files: {}", c.req.request_id,
                        j.id, st.ToString());
             }
           }
           c.res.status = 204;
           c.res.body.clear();
           return OkStatus();
         });

  Authed(Method::kGet, "/api/v1/projects/{project}/jobs/{job}/logs",
         [this, jobs, controller](Call& c) -> Status {
           ASSIGN_OR_RETURN(JobRecord j, jobs->Get(*c.principal, c.req.PathParam("project"),
                                                   c.req.PathParam("job")));
           ASSIGN_OR_RETURN(LogRequest r, DecodeLogRequest(c.req, j));
           if (controller == nullptr) return UnavailableError("this server runs no executor");
           exec::Executor& executor = controller->executor();
           if (r.follow) {
             auto sse = std::make_shared<http::SseStream>();
             RETURN_IF_ERROR(log_followers_->Start([this, &executor, r, sse] {
               FollowLog(*log_followers_, executor, store_, r, sse);
             }));
             c.res.status = 200;
             c.res.sse = std::move(sse);
             return OkStatus();
           }
           std::string text;
           int64_t offset = r.offset;
           while (static_cast<int64_t>(text.size()) < kMaxLogResponse) {
             auto chunk = executor.ReadLog(r.key, r.stream, offset, kLogReadBytes);
             if (!chunk.ok()) {
               if (chunk.status().code() == StatusCode::kNotFound) break;  // not started yet
               return chunk.status();
             }
             text += chunk->data;
             offset = chunk->next_offset;
             if (chunk->eof || chunk->data.empty()) break;
           }
           c.res.status = 200;
           c.res.content_type = "text/plain; charset=utf-8";
           c.res.SetHeader("X-Lathe-Next-Offset", std::to_string(offset));
           c.res.body = std::move(text);
           return OkStatus();
         });

  // ----- queues
  Authed(Method::kGet, "/api/v1/queues", [this, jobs](Call& c) -> Status {
    ASSIGN_OR_RETURN(tenancy::PageRequest page, PageFromQuery(c.req));
    std::string after;
    if (!page.page_token.empty()) {
      ASSIGN_OR_RETURN(after, tenancy::DecodePageToken(page.page_token));
    }
    ASSIGN_OR_RETURN(std::vector<QueueRecord> queues, jobs->ListQueues(*c.principal));
    ASSIGN_OR_RETURN(auto usage, LoadQueueUsage(store_));
    std::sort(queues.begin(), queues.end(),
              [](const QueueRecord& a, const QueueRecord& b) { return a.spec.name < b.spec.name; });
    auto first = std::upper_bound(
        queues.begin(), queues.end(), after,
        [](const std::string& name, const QueueRecord& q) { return name < q.spec.name; });
    if (after.empty()) first = queues.begin();
    const auto count = std::min<int64_t>(page.limit, queues.end() - first);
    const bool more = queues.end() - first > count;
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Key("items").BeginArray();
      for (auto it = first; it != first + count; ++it) EncodeQueue(w, *it, usage[it->spec.name]);
      w.EndArray().Field("next_page_token",
                         more ? tenancy::EncodePageToken((first + count - 1)->spec.name) : "");
      w.EndObject();
    });
    return OkStatus();
  });
  auto put_queue = [this, jobs](Call& c, const std::string& name, bool create_only) -> Status {
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    c.invalid_as = InvalidAs::kUnprocessable;
    ASSIGN_OR_RETURN(spec::QueueSpec q, DecodeQueue(body, name));
    ASSIGN_OR_RETURN(QueueRecord saved, jobs->PutQueue(*c.principal, q, create_only));
    ASSIGN_OR_RETURN(auto usage, LoadQueueUsage(store_));
    const bool created = create_only || saved.created_at == saved.updated_at;
    WriteJson(c.res, created ? 201 : 200,
              [&](JsonWriter& w) { EncodeQueue(w, saved, usage[saved.spec.name]); });
    return OkStatus();
  };
  Authed(Method::kPost, "/api/v1/queues", [put_queue](Call& c) { return put_queue(c, "", true); });
  Authed(Method::kPut, "/api/v1/queues/{queue}",
         [put_queue](Call& c) { return put_queue(c, c.req.PathParam("queue"), false); });
  Authed(Method::kGet, "/api/v1/queues/{queue}", [this, jobs](Call& c) -> Status {
    ASSIGN_OR_RETURN(QueueRecord q, jobs->GetQueue(*c.principal, c.req.PathParam("queue")));
    ASSIGN_OR_RETURN(auto usage, LoadQueueUsage(store_));
    WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeQueue(w, q, usage[q.spec.name]); });
    return OkStatus();
  });
  Authed(Method::kDelete, "/api/v1/queues/{queue}", [jobs](Call& c) -> Status {
    RETURN_IF_ERROR(jobs->DeleteQueue(*c.principal, c.req.PathParam("queue")));
    c.res.status = 204;
    c.res.body.clear();
    return OkStatus();
  });
}

}  // namespace lathe::api
