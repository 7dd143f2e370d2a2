// Run artifacts over HTTP (docs/tracking.md "Artifacts", docs/mlflow.md):
//
//   MLflow artifact proxy (protocols.md §5.5), under /api/2.0 and /ajax-api/2.0:
//     PUT|GET|DELETE /mlflow-artifacts/artifacts/<exp>/<run>/artifacts/<path>
//     GET            /mlflow-artifacts/artifacts?path=<exp>/<run>/artifacts[/<dir>]
//     (and the same with <exp>/models/<model_id>/artifacts: an MLflow 3
//     logged model's files, authorized through LoggedModelService)
//     POST           /mlflow-artifacts/mpu/{create,complete,abort}/<path>  (refused)
//   MLflow RPC: GET /api/2.0/mlflow/artifacts/list
//   native:   PUT|GET|DELETE /api/v1/projects/{p}/runs/{run}/artifacts/<path>
//             GET            /api/v1/projects/{p}/runs/{run}/artifacts?path=<dir>
//
// Every route resolves the run through TrackingService::AuthorizeRun (viewer
// to read, editor to write; a run of another project is NOT_FOUND), then
// hands the cleaned path to tracking::ArtifactStore. Uploads arrive spooled
// to a file (SpoolLimit below); downloads are sent from the file.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "api/api.h"
#include "api/mlflow_call.h"
#include "base/strings.h"
#include "tracking/artifacts.h"
#include "tracking/logged_models.h"
#include "tracking/tracking.h"

namespace lathe::api {

using http::Method;
using tracking::ArtifactRun;
using tracking::ArtifactStore;
using tracking::FileInfo;
using tracking::RunInfo;
using tracking::TrackingService;

namespace {

constexpr std::string_view kProxyPrefixes[] = {"/api/2.0/mlflow-artifacts",
                                               "/ajax-api/2.0/mlflow-artifacts"};
constexpr std::string_view kRunArtifacts = "artifacts";
constexpr std::string_view kModelsDir = "models";
// MLflow clients fall back to one PUT when the answer's message starts so.
constexpr std::string_view kNoMultipart =
    "Multipart upload is not supported for the current artifact repository";

std::vector<std::string_view> SplitSlash(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t slash = s.find('/', start);
    out.push_back(s.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

// The value of a "{path*}" rest parameter, which the router leaves raw:
// each segment percent-decoded once and joined with '/'. A segment that
// does not decode, or decodes to hold a '/' (an encoded separator, "%2F"),
// is refused naming the path.
StatusOr<std::string> RestPath(const http::Request& req) {
  const std::string& raw = req.PathParam("path");
  std::string out;
  bool first = true;
  for (std::string_view segment : SplitSlash(raw)) {
    std::string decoded;
    if (!http::PercentDecode(segment, &decoded, false)) {
      return InvalidArgumentError(fmt::format("path: \"{}\" has a malformed %-escape", raw),
                                  "path");
    }
    if (decoded.find('/') != std::string::npos) {
      return InvalidArgumentError(
          fmt::format("path: \"{}\" has an encoded '/' (%2F) inside a segment", raw), "path");
    }
    if (!first) out += '/';
    first = false;
    out += decoded;
  }
  return out;
}

// An artifact path of the proxy: a run's, "<exp>/<run>/artifacts[/<path>]",
// or an MLflow 3 logged model's, "<exp>/models/<model_id>/artifacts[/<path>]".
struct ProxyPath {
  std::string experiment_id;
  std::string run_id;    // set for a run's path
  std::string model_id;  // set for a logged model's path
  std::string rel;       // "" = the artifact root
};

StatusOr<ProxyPath> ParseProxyPath(std::string_view path) {
  ASSIGN_OR_RETURN(std::string clean, ArtifactStore::CleanPath(path, "path"));
  std::vector<std::string_view> parts = SplitSlash(clean);
  ProxyPath out;
  size_t root = 0;  // segments before <path>
  if (parts.size() >= 4 && parts[1] == kModelsDir && parts[3] == kRunArtifacts) {
    out = {std::string(parts[0]), "", std::string(parts[2]), ""};
    root = 4;
  } else if (parts.size() >= 3 && parts[2] == kRunArtifacts) {
    out = {std::string(parts[0]), std::string(parts[1]), "", ""};
    root = 3;
  } else {
    return InvalidArgumentError(
        fmt::format("path: \"{}\" is neither <experiment_id>/<run_id>/artifacts[/<path>] nor "
                    "<experiment_id>/models/<model_id>/artifacts[/<path>]",
                    clean),
        "path");
  }
  size_t prefix = root - 1;  // the separators
  for (size_t i = 0; i < root; ++i) prefix += parts[i].size();
  if (clean.size() > prefix) out.rel = clean.substr(prefix + 1);
  return out;
}

// MLflow's choice (mlflow/server/handlers.py _guess_mime_type): text-like
// extensions as text/plain, a few well-known types, else octet-stream.
std::string_view GuessContentType(std::string_view rel) {
  std::string_view name = rel.substr(rel.rfind('/') + 1);
  size_t dot = name.rfind('.');
  std::string ext = AsciiLower(std::string(dot == std::string_view::npos ? name : name.substr(dot + 1)));
  static constexpr std::string_view kText[] = {
      "txt",  "log",   "err",  "cfg",  "conf", "cnf",     "cf",       "ini", "properties",
      "prop", "hocon", "toml", "yaml", "yml",  "xml",     "json",     "js",  "py",
      "py3",  "csv",   "tsv",  "md",   "rst",  "mlmodel", "mlproject"};
  for (std::string_view t : kText) {
    if (ext == t) return "text/plain";
  }
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {"html", "text/html"},
      {"htm", "text/html"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"svg", "image/svg+xml"},
      {"webp", "image/webp"},
      {"bmp", "image/bmp"},
      {"pdf", "application/pdf"},
      {"gz", "application/gzip"},
      {"zip", "application/zip"},
      {"tar", "application/x-tar"},
      {"mp4", "video/mp4"},
      {"wav", "audio/x-wav"},
      {"mp3", "audio/mpeg"},
      {"parquet", "application/octet-stream"}};
  for (const auto& [e, type] : kTypes) {
    if (ext == e) return type;
  }
  return "application/octet-stream";
}

// Answers with the file: its type guessed from the name, as a download
// (Content-Disposition: attachment, nosniff), so an uploaded HTML file is
// not rendered in this origin.
void SendFile(http::Response& res, const std::string& file, std::string_view rel) {
  res.status = 200;
  res.body.clear();
  res.body_file = file;
  res.content_type = std::string(GuessContentType(rel));
  res.SetHeader("Content-Disposition", "attachment; filename*=UTF-8''" +
                                           http::PercentEncode(rel.substr(rel.rfind('/') + 1)));
  res.SetHeader("X-Content-Type-Options", "nosniff");
}

// Stores the request body at `rel`: the spooled file when the server
// streamed it to disk, else the body it read into memory. Returns its size.
StatusOr<uint64_t> StoreBody(ArtifactStore& store, const ArtifactRun& run, const std::string& rel,
                             const http::Request& req) {
  if (!req.body_file.empty()) {
    RETURN_IF_ERROR(store.Put(run, rel, req.body_file));
    return req.body_file_size;
  }
  RETURN_IF_ERROR(store.PutBytes(run, rel, req.body));
  return static_cast<uint64_t>(req.body.size());
}

// The run `run_id` of `project` when the caller holds `role` there, checked
// to belong to `experiment_id` when that is given (the proxy's paths carry
// both).
StatusOr<RunInfo> AuthorizedRun(TrackingService& svc, const tenancy::Principal& p,
                                const std::string& project, const std::string& run_id,
                                const std::string& experiment_id, tenancy::Role role) {
  ASSIGN_OR_RETURN(RunInfo info, svc.AuthorizeRun(p, project, run_id, role));
  if (!experiment_id.empty() && info.experiment_id != experiment_id) {
    return NotFoundError(fmt::format("run {} is not in experiment {}", run_id, experiment_id));
  }
  return info;
}

ArtifactRun RunOf(const RunInfo& info) { return {info.experiment_id, info.run_id, ""}; }

// The owner of a proxy path, a run or a logged model, when the caller
// holds `role` in the project: an owner of another experiment, project or
// none at all is NOT_FOUND. Writes need an active run (a deleted logged
// model is NOT_FOUND for reads and writes alike).
StatusOr<ArtifactRun> AuthorizedOwner(TrackingService& svc, tracking::LoggedModelService* models,
                                      const tenancy::Principal& p, const std::string& project,
                                      const ProxyPath& path, tenancy::Role role) {
  if (path.model_id.empty()) {
    ASSIGN_OR_RETURN(RunInfo info,
                     AuthorizedRun(svc, p, project, path.run_id, path.experiment_id, role));
    return RunOf(info);
  }
  if (models == nullptr) {
    return NotFoundError(fmt::format("logged model {} not found", path.model_id));
  }
  ASSIGN_OR_RETURN(tracking::LoggedModel m, models->Authorize(p, project, path.model_id, role));
  if (m.experiment_id != path.experiment_id) {
    return NotFoundError(
        fmt::format("logged model {} is not in experiment {}", path.model_id, path.experiment_id));
  }
  return ArtifactRun{m.experiment_id, "", m.model_id};
}

// Segments of a request target's path (no query).
std::vector<std::string_view> TargetSegments(const http::Request& head) {
  std::string_view t = head.target.empty() ? std::string_view(head.path) : head.target;
  t = t.substr(0, t.find('?'));
  if (!t.empty() && t.front() == '/') t.remove_prefix(1);
  return SplitSlash(t);
}

}  // namespace

void Api::RegisterArtifactRoutes() {
  TrackingService* svc = tracking_;
  ArtifactStore* store = artifacts_;
  tracking::LoggedModelService* models = logged_models_;

  // ----- MLflow artifact proxy
  for (std::string_view prefix : kProxyPrefixes) {
    const std::string files = fmt::format("{}/artifacts/{{path*}}", prefix);
    AddMlflowRoute(Method::kPut, files, [svc, store, models](MlflowCall& c) -> Status {
      ASSIGN_OR_RETURN(std::string path, RestPath(c.req));
      ASSIGN_OR_RETURN(ProxyPath p, ParseProxyPath(path));
      ASSIGN_OR_RETURN(ArtifactRun owner, AuthorizedOwner(*svc, models, c.principal, c.project, p,
                                                             tenancy::Role::kEditor));
      if (p.rel.empty()) {
        return InvalidArgumentError(
            fmt::format("path: \"{}\" names an artifact root, not a file", path), "path");
      }
      RETURN_IF_ERROR(StoreBody(*store, owner, p.rel, c.req).status());
      WriteEmpty(c.res);
      return OkStatus();
    });
    AddMlflowRoute(Method::kGet, files, [svc, store, models](MlflowCall& c) -> Status {
      ASSIGN_OR_RETURN(std::string path, RestPath(c.req));
      ASSIGN_OR_RETURN(ProxyPath p, ParseProxyPath(path));
      ASSIGN_OR_RETURN(ArtifactRun owner, AuthorizedOwner(*svc, models, c.principal, c.project, p,
                                                             tenancy::Role::kViewer));
      if (p.rel.empty()) return NotFoundError("the artifact root is a directory, not a file");
      ASSIGN_OR_RETURN(std::string file, store->ResolveFile(owner, p.rel));
      SendFile(c.res, file, p.rel);
      return OkStatus();
    });
    // Deleting what is absent succeeds, as MLflow's does (a retried DELETE).
    AddMlflowRoute(Method::kDelete, files, [svc, store, models](MlflowCall& c) -> Status {
      ASSIGN_OR_RETURN(std::string path, RestPath(c.req));
      ASSIGN_OR_RETURN(ProxyPath p, ParseProxyPath(path));
      ASSIGN_OR_RETURN(ArtifactRun owner, AuthorizedOwner(*svc, models, c.principal, c.project, p,
                                                             tenancy::Role::kEditor));
      Status st = store->Delete(owner, p.rel);
      if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
      WriteEmpty(c.res);
      return OkStatus();
    });
    // The listed directory's entries by base name (the client joins them to
    // the path it asked for); file_size only for files; is_dir always (the
    // client reads it unconditionally).
    AddMlflowRoute(
        Method::kGet, fmt::format("{}/artifacts", prefix), [svc, store, models](MlflowCall& c) -> Status {
          std::string path;
          if (!c.req.QueryParam("path", &path) || path.empty()) {
            return InvalidArgumentError(
                "path: give <experiment_id>/<run_id>/artifacts[/<directory>] or "
                "<experiment_id>/models/<model_id>/artifacts[/<directory>]",
                "path");
          }
          ASSIGN_OR_RETURN(ProxyPath p, ParseProxyPath(path));
          ASSIGN_OR_RETURN(ArtifactRun owner, AuthorizedOwner(*svc, models, c.principal, c.project, p,
                                                             tenancy::Role::kViewer));
          ASSIGN_OR_RETURN(std::vector<FileInfo> entries, store->List(owner, p.rel));
          WriteJson(c.res, 200, [&](JsonWriter& w) {
            w.BeginObject();
            if (!entries.empty()) {
              w.Key("files").BeginArray();
              for (const FileInfo& f : entries) {
                w.BeginObject()
                    .Field("path", std::string_view(f.path).substr(f.path.rfind('/') + 1))
                    .Field("is_dir", f.is_dir);
                if (!f.is_dir) w.Field("file_size", static_cast<int64_t>(f.file_size));
                w.EndObject();
              }
              w.EndArray();
            }
            w.EndObject();
          });
          return OkStatus();
        });
    for (std::string_view step : {"create", "complete", "abort"}) {
      AddMlflowRoute(Method::kPost, fmt::format("{}/mpu/{}/{{path*}}", prefix, step),
                     [](MlflowCall&) -> Status {
                       return UnimplementedError(
                           fmt::format("{}: upload the file with one PUT to "
                                       "/api/2.0/mlflow-artifacts/artifacts/<path>",
                                       kNoMultipart));
                     });
    }
  }

  // ----- MLflow artifacts/list: paths relative to the run's artifact root.
  // Not paged: page_token is accepted and no next_page_token is given, as
  // MLflow's own server does for proxied artifacts.
  AddMlflow(Method::kGet, "/artifacts/list", [svc, store](MlflowCall& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue v, ParseArgs(c.req));
    Args a(std::move(v));
    ASSIGN_OR_RETURN(std::string run_id, a.RunId());
    ASSIGN_OR_RETURN(std::string path, a.Str("path"));
    ASSIGN_OR_RETURN(std::string clean, ArtifactStore::CleanPath(path, "path", true));
    ASSIGN_OR_RETURN(RunInfo info,
                     svc->AuthorizeRun(c.principal, c.project, run_id, tenancy::Role::kViewer));
    ASSIGN_OR_RETURN(std::vector<FileInfo> entries, store->List(RunOf(info), clean));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Field("root_uri", info.artifact_uri);
      if (!entries.empty()) {
        w.Key("files").BeginArray();
        for (const FileInfo& f : entries) {
          w.BeginObject().Field("path", f.path).Field("is_dir", f.is_dir);
          if (!f.is_dir) w.Field("file_size", static_cast<int64_t>(f.file_size));
          w.EndObject();
        }
        w.EndArray();
      }
      w.EndObject();
    });
    return OkStatus();
  });

  // ----- native
  const std::string base = "/api/v1/projects/{project}/runs/{run}/artifacts";
  auto run_for = [svc](Call& c, tenancy::Role role) {
    return svc->AuthorizeRun(*c.principal, c.req.PathParam("project"), c.req.PathParam("run"),
                             role);
  };
  Authed(Method::kPut, base + "/{path*}", [store, run_for](Call& c) -> Status {
    ASSIGN_OR_RETURN(RunInfo info, run_for(c, tenancy::Role::kEditor));
    ASSIGN_OR_RETURN(std::string path, RestPath(c.req));
    ASSIGN_OR_RETURN(std::string rel, ArtifactStore::CleanPath(path, "path"));
    ASSIGN_OR_RETURN(uint64_t size, StoreBody(*store, RunOf(info), rel, c.req));
    WriteJson(c.res, 201, [&](JsonWriter& w) {
      w.BeginObject().Field("path", rel).Field("file_size", static_cast<int64_t>(size)).EndObject();
    });
    return OkStatus();
  });
  Authed(Method::kGet, base + "/{path*}", [store, run_for](Call& c) -> Status {
    ASSIGN_OR_RETURN(RunInfo info, run_for(c, tenancy::Role::kViewer));
    ASSIGN_OR_RETURN(std::string path, RestPath(c.req));
    ASSIGN_OR_RETURN(std::string rel, ArtifactStore::CleanPath(path, "path"));
    ASSIGN_OR_RETURN(std::string file, store->ResolveFile(RunOf(info), rel));
    SendFile(c.res, file, rel);
    return OkStatus();
  });
  Authed(Method::kDelete, base + "/{path*}", [store, run_for](Call& c) -> Status {
    ASSIGN_OR_RETURN(RunInfo info, run_for(c, tenancy::Role::kEditor));
    ASSIGN_OR_RETURN(std::string path, RestPath(c.req));
    ASSIGN_OR_RETURN(std::string rel, ArtifactStore::CleanPath(path, "path"));
    RETURN_IF_ERROR(store->Delete(RunOf(info), rel));
    c.res.status = 204;
    c.res.body.clear();
    return OkStatus();
  });
  Authed(Method::kGet, base, [store, run_for](Call& c) -> Status {
    ASSIGN_OR_RETURN(RunInfo info, run_for(c, tenancy::Role::kViewer));
    std::string path;
    c.req.QueryParam("path", &path);
    ASSIGN_OR_RETURN(std::string rel, ArtifactStore::CleanPath(path, "path", true));
    ASSIGN_OR_RETURN(std::vector<FileInfo> entries, store->List(RunOf(info), rel));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Field("root_uri", info.artifact_uri).Key("files").BeginArray();
      for (const FileInfo& f : entries) {
        w.BeginObject()
            .Field("path", f.path)
            .Field("is_dir", f.is_dir)
            .Field("file_size", static_cast<int64_t>(f.file_size))
            .EndObject();
      }
      w.EndArray().EndObject();
    });
    return OkStatus();
  });
}

// Streams the two upload route shapes to a file: PUT
// /{api,ajax-api}/2.0/mlflow-artifacts/artifacts/<one or more segments> and
// PUT /api/v1/projects/<p>/runs/<r>/artifacts/<one or more segments>.
uint64_t Api::SpoolLimit(const http::Request& head) const {
  if (artifacts_ == nullptr || head.method != Method::kPut) return 0;
  std::vector<std::string_view> s = TargetSegments(head);
  if (!s.empty() && s.back().empty()) s.pop_back();  // one trailing slash
  const bool proxy = s.size() >= 5 && (s[0] == "api" || s[0] == "ajax-api") && s[1] == "2.0" &&
                     s[2] == "mlflow-artifacts" && s[3] == "artifacts";
  const bool native = s.size() >= 8 && s[0] == "api" && s[1] == "v1" && s[2] == "projects" &&
                      s[4] == "runs" && s[6] == "artifacts";
  return proxy || native ? artifacts_->options().max_file_bytes : 0;
}

}  // namespace lathe::api
