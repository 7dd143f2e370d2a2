#include "serving/http_frontend.h"

#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <utility>

#include <fmt/core.h>

#include "base/crypto.h"
#include "base/json.h"
#include "base/log.h"
#include "base/strings.h"
#include "http/deferred.h"
#include "serving/infer_request.h"
#include "serving/protocols/tfserving_codec.h"
#include "serving/protocols/v2_codec.h"
#include "serving/repository.h"

namespace lathe::serving {

namespace {

using http::Method;
using http::Request;
using http::Response;

constexpr std::string_view kInferHeaderLength = "Inference-Header-Content-Length";

// The one place a Status becomes an HTTP answer on these routes.
Response ErrorResponse(const Status& status, int retry_after_s) {
  Response res;
  res.status = V2HttpStatus(status);
  res.content_type = "application/json";
  res.body = EncodeV2Error(status);
  if (res.status == 429) res.SetHeader("Retry-After", std::to_string(retry_after_s));
  if (res.status == 401) res.SetHeader("WWW-Authenticate", "Bearer realm=\"lathe\"");
  return res;
}

void WriteJsonBody(Response& res, int status, std::string body) {
  res.status = status;
  res.content_type = "application/json";
  res.body = std::move(body);
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n')) {
    --e;
  }
  return std::string(s.substr(b, e - b));
}

// A {v} path segment: a positive decimal version number.
StatusOr<int64_t> ParseVersionSegment(std::string_view text) {
  std::optional<int64_t> v = ParseVersionDir(text);
  if (!v) {
    return InvalidArgumentError(
        fmt::format("version \"{}\" is not a version number (a positive integer)", text),
        "version");
  }
  return *v;
}

void WriteShape(JsonWriter& w, const std::vector<int64_t>& shape) {
  w.BeginArray();
  for (int64_t d : shape) w.Int(d);
  w.EndArray();
}

void WriteTensorMetadata(JsonWriter& w, std::string_view key, const ModelConfig& config,
                         const std::vector<TensorConfig>& tensors) {
  w.Key(key).BeginArray();
  for (const TensorConfig& t : tensors) {
    w.BeginObject().Field("name", t.name).Field("datatype", DataTypeName(t.type));
    w.Key("shape");
    WriteShape(w, MetadataShape(config, t));
    w.EndObject();
  }
  w.EndArray();
}

std::string_view TfDataType(DataType type) {
  switch (type) {
    case DataType::kBool:
      return "DT_BOOL";
    case DataType::kUint8:
      return "DT_UINT8";
    case DataType::kUint16:
      return "DT_UINT16";
    case DataType::kUint32:
      return "DT_UINT32";
    case DataType::kUint64:
      return "DT_UINT64";
    case DataType::kInt8:
      return "DT_INT8";
    case DataType::kInt16:
      return "DT_INT16";
    case DataType::kInt32:
      return "DT_INT32";
    case DataType::kInt64:
      return "DT_INT64";
    case DataType::kFp16:
      return "DT_HALF";
    case DataType::kBf16:
      return "DT_BFLOAT16";
    case DataType::kFp32:
      return "DT_FLOAT";
    case DataType::kFp64:
      return "DT_DOUBLE";
    case DataType::kBytes:
      return "DT_STRING";
  }
  return "DT_INVALID";
}

// TF Serving's ModelVersionStatus.State for our version states.
std::string_view TfState(VersionState state) {
  switch (state) {
    case VersionState::kLoading:
      return "LOADING";
    case VersionState::kReady:
      return "AVAILABLE";
    case VersionState::kUnloading:
      return "UNLOADING";
    case VersionState::kUnavailable:
      return "END";
  }
  return "UNKNOWN";
}

void WriteDuration(JsonWriter& w, std::string_view key, const DurationStat& d) {
  w.Key(key).BeginObject();
  w.Key("count").Uint(d.count);
  w.Key("ns").Uint(d.ns);
  w.EndObject();
}

// The model's config.yaml as JSON (the /config route).
std::string ConfigToJson(const ModelConfig& c) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject()
      .Field("name", c.name)
      .Field("backend", BackendName(c.backend))
      .Field("platform", BackendPlatform(c.backend));
  if (!c.model_filename.empty()) w.Field("model_filename", c.model_filename);
  w.Field("max_batch_size", c.max_batch_size);
  for (bool inputs : {true, false}) {
    w.Key(inputs ? "inputs" : "outputs").BeginArray();
    for (const TensorConfig& t : inputs ? c.inputs : c.outputs) {
      w.BeginObject().Field("name", t.name).Field("datatype", DataTypeName(t.type));
      w.Key("dims");
      WriteShape(w, t.dims);
      if (inputs) w.Field("optional", t.optional);
      w.EndObject();
    }
    w.EndArray();
  }
  if (c.dynamic_batching) {
    const DynamicBatching& d = *c.dynamic_batching;
    w.Key("dynamic_batching").BeginObject().Field("max_queue_delay_us", d.max_queue_delay_us);
    w.Key("preferred_batch_sizes");
    WriteShape(w, d.preferred_batch_sizes);
    w.Field("max_queue_size", d.max_queue_size)
        .Field("default_timeout_us", d.default_timeout_us)
        .Field("priority_levels", d.priority_levels)
        .Field("default_priority_level", d.default_priority_level)
        .EndObject();
  }
  w.Key("instances")
      .BeginObject()
      .Field("count", c.instances.count)
      .Field("threads", c.instances.threads)
      .EndObject();
  w.Key("version_policy");
  switch (c.version_policy.kind) {
    case VersionPolicy::Kind::kLatest:
      w.BeginObject().Field("latest", c.version_policy.latest).EndObject();
      break;
    case VersionPolicy::Kind::kAll:
      w.String("all");
      break;
    case VersionPolicy::Kind::kSpecific:
      w.BeginObject().Key("specific");
      WriteShape(w, c.version_policy.specific);
      w.EndObject();
      break;
  }
  w.Key("labels").BeginObject();
  for (const auto& [label, v] : c.labels) w.Field(label, v);
  w.EndObject();
  if (c.canary) {
    w.Key("canary").BeginObject();
    if (c.canary->label.empty()) {
      w.Field("version", c.canary->version);
    } else {
      w.Field("label", c.canary->label);
    }
    w.Field("weight", c.canary->weight_percent).EndObject();
  }
  w.Key("slo").BeginObject().Field("p99_ms", c.slo.p99_ms).EndObject();
  w.Key("warmup").BeginArray();
  for (const Warmup& wu : c.warmup) {
    w.BeginObject()
        .Field("name", wu.name)
        .Field("batch_size", wu.batch_size)
        .Field("count", wu.count);
    w.Key("inputs").BeginObject();
    for (const auto& [name, in] : wu.inputs) {
      w.Key(name).BeginObject().Field("fill",
                                      in.fill == WarmupInput::Fill::kZero ? "zero" : "random");
      w.Key("dims");
      WriteShape(w, in.dims);
      w.EndObject();
    }
    w.EndObject().EndObject();
  }
  w.EndArray();
  w.Key("parameters").BeginObject();
  for (const auto& [k, v] : c.parameters) w.Field(k, v);
  w.EndObject().EndObject();
  return out;
}

// Splits the raw rest of a TF Serving path ("m/versions/3:predict") into
// percent-decoded segments.
StatusOr<std::vector<std::string>> DecodeSegments(std::string_view raw) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= raw.size()) {
    size_t slash = raw.find('/', start);
    if (slash == std::string_view::npos) slash = raw.size();
    std::string seg;
    if (!http::PercentDecode(raw.substr(start, slash - start), &seg, false)) {
      return InvalidArgumentError("malformed %-escape in the path");
    }
    out.push_back(std::move(seg));
    start = slash + 1;
  }
  return out;
}

}  // namespace

StatusOr<std::vector<std::string>> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError(fmt::format("cannot read token file {}", path));
  std::vector<std::string> tokens;
  std::string line;
  while (std::getline(in, line)) {
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#') continue;
    tokens.push_back(std::move(t));
  }
  if (in.bad()) return InternalError(fmt::format("cannot read token file {}", path));
  if (tokens.empty()) {
    return InvalidArgumentError(fmt::format("token file {} holds no token (one per line)", path));
  }
  return tokens;
}

HttpFrontend::HttpFrontend(ModelManager& manager, HttpFrontendOptions options)
    : manager_(manager),
      options_(std::move(options)),
      metrics_(options_.metrics != nullptr ? *options_.metrics : DefaultRegistry()) {
  for (const std::string& t : options_.tokens) token_hashes_.push_back(Sha256Hex(t));
  control_thread_ = std::thread([this] { ControlLoop(); });
}

HttpFrontend::~HttpFrontend() {
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    stopping_ = true;
  }
  control_cv_.notify_all();
  control_thread_.join();
}

void HttpFrontend::Control(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    control_queue_.push_back(std::move(fn));
  }
  control_cv_.notify_one();
}

void HttpFrontend::ControlLoop() {
  std::unique_lock<std::mutex> lock(control_mu_);
  for (;;) {
    control_cv_.wait(lock, [this] { return stopping_ || !control_queue_.empty(); });
    if (control_queue_.empty()) return;  // stopping, and everything queued has run
    std::function<void()> fn = std::move(control_queue_.front());
    control_queue_.pop_front();
    lock.unlock();
    fn();
    lock.lock();
  }
}

bool HttpFrontend::TokenMatches(std::string_view token) const {
  const std::string hash = Sha256Hex(token);
  bool match = false;
  // Every configured token is compared, so the time does not say which matched.
  for (const std::string& h : token_hashes_) match |= ConstantTimeEquals(hash, h);
  return match;
}

Status HttpFrontend::Authorize(const Request& req) const {
  if (token_hashes_.empty()) return OkStatus();
  std::string_view auth = req.Header("authorization");
  constexpr std::string_view kBearer = "bearer ";
  if (auth.size() <= kBearer.size() ||
      !EqualsIgnoreCaseAscii(auth.substr(0, kBearer.size()), kBearer)) {
    return UnauthenticatedError("this server needs a bearer token (Authorization: Bearer <token>)");
  }
  if (!TokenMatches(Trim(auth.substr(kBearer.size())))) {
    return UnauthenticatedError("the bearer token is not one this server accepts");
  }
  return OkStatus();
}

Status HttpFrontend::AuthorizeManagement(const Request& req) const {
  if (token_hashes_.empty()) {
    return PermissionDeniedError(
        "repository load and unload need a bearer token, and this server has none: start "
        "`lathe serve` with --token-file FILE (one token per line)");
  }
  return Authorize(req);
}

void HttpFrontend::WriteError(Response& res, const Status& status) const {
  res = ErrorResponse(status, options_.retry_after_s);
}

void HttpFrontend::Register(http::Router& router) {
  // Wraps a handler with the token check and the {m}/{v} path parameters.
  auto model_route = [this](auto fn, bool versioned) {
    return [this, fn, versioned](Request& req, Response& res) {
      if (Status a = Authorize(req); !a.ok()) return WriteError(res, a);
      Target t;
      t.model = req.PathParam("m");
      if (versioned) {
        StatusOr<int64_t> v = ParseVersionSegment(req.PathParam("v"));
        if (!v.ok()) return WriteError(res, v.status());
        t.selector.version = *v;
      }
      fn(t, req, res);
    };
  };
  auto both = [&](Method method, const std::string& suffix, auto fn) {
    router.Add(method, "/v2/models/{m}" + suffix, model_route(fn, false));
    router.Add(method, "/v2/models/{m}/versions/{v}" + suffix, model_route(fn, true));
  };

  // Health: no token, so that probes work without one.
  router.Add(Method::kGet, "/v2/health/live",
             [](Request&, Response& res) { WriteJsonBody(res, 200, R"({"live":true})"); });
  router.Add(Method::kGet, "/v2/health/ready", [this](Request&, Response& res) {
    const bool ready = !draining_.load();
    WriteJsonBody(res, ready ? 200 : 503, ready ? R"({"ready":true})" : R"({"ready":false})");
  });
  router.Add(Method::kGet, "/v2", [this](Request& req, Response& res) {
    if (Status a = Authorize(req); !a.ok()) return WriteError(res, a);
    ServerMetadata(res);
  });

  both(Method::kGet, "",
       [this](const Target& t, Request&, Response& res) { ModelMetadata(t, res); });
  both(Method::kGet, "/ready",
       [this](const Target& t, Request&, Response& res) { ModelReady(t, res); });
  both(Method::kPost, "/infer",
       [this](const Target& t, Request& req, Response& res) { V2Infer(t, req, res); });
  both(Method::kGet, "/config",
       [this](const Target& t, Request&, Response& res) { ModelConfigJson(t, res); });
  both(Method::kGet, "/stats", [this](const Target& t, Request&, Response& res) {
    Stats(t.model, t.selector.version, res);
  });
  router.Add(Method::kGet, "/v2/models/stats", [this](Request& req, Response& res) {
    if (Status a = Authorize(req); !a.ok()) return WriteError(res, a);
    Stats({}, 0, res);
  });

  router.Add(Method::kPost, "/v2/repository/index", [this](Request& req, Response& res) {
    if (Status a = Authorize(req); !a.ok()) return WriteError(res, a);
    RepositoryIndex(req, res);
  });
  for (bool load : {true, false}) {
    router.Add(Method::kPost,
               load ? "/v2/repository/models/{m}/load" : "/v2/repository/models/{m}/unload",
               [this, load](Request& req, Response& res) {
                 if (Status a = AuthorizeManagement(req); !a.ok()) return WriteError(res, a);
                 RepositoryControl(load, req.PathParam("m"), req, res);
               });
  }

  router.Add(Method::kGet, "/v1/models/{path*}", [this](Request& req, Response& res) {
    if (Status a = Authorize(req); !a.ok()) return WriteError(res, a);
    TfGet(req, res);
  });
  router.Add(Method::kPost, "/v1/models/{path*}", [this](Request& req, Response& res) {
    if (Status a = Authorize(req); !a.ok()) return WriteError(res, a);
    TfPost(req, res);
  });

  router.Add(Method::kGet, "/metrics", [this](Request& req, Response& res) {
    if (Status a = Authorize(req); !a.ok()) return WriteError(res, a);
    res.status = 200;
    res.content_type = "text/plain; version=0.0.4; charset=utf-8";
    res.body = metrics_.Render();
  });

  router.SetErrorHandler([](Request& req, Response& res, int status, std::string_view message) {
    res.status = status;
    res.content_type = "application/json";
    res.body.clear();
    JsonWriter(&res.body)
        .BeginObject()
        .Field("error", fmt::format("{} {}: {}", http::MethodName(req.method), req.path, message))
        .EndObject();
  });
}

// ---- KServe V2

void HttpFrontend::ServerMetadata(Response& res) const {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject().Field("name", options_.server_name).Field("version", options_.server_version);
  w.Key("extensions").BeginArray();
  for (const char* e : {"binary_tensor_data", "model_repository", "statistics",
                        "model_configuration", "schedule_policy"}) {
    w.String(e);
  }
  w.EndArray().EndObject();
  WriteJsonBody(res, 200, std::move(out));
}

void HttpFrontend::ModelMetadata(const Target& t, Response& res) const {
  auto v = manager_.Resolve(t.model, t.selector);
  if (!v.ok()) return WriteError(res, v.status());
  const ModelConfig& c = *(*v)->config;
  std::string out;
  JsonWriter w(&out);
  w.BeginObject().Field("name", t.model);
  w.Key("versions").BeginArray();
  for (int64_t rv : manager_.ReadyVersions(t.model)) w.String(std::to_string(rv));
  w.EndArray();
  w.Field("platform", BackendPlatform(c.backend));
  WriteTensorMetadata(w, "inputs", c, c.inputs);
  WriteTensorMetadata(w, "outputs", c, c.outputs);
  w.EndObject();
  WriteJsonBody(res, 200, std::move(out));
}

void HttpFrontend::ModelReady(const Target& t, Response& res) const {
  auto v = manager_.Resolve(t.model, t.selector);
  if (!v.ok() && v.status().code() == StatusCode::kNotFound) return WriteError(res, v.status());
  std::string out;
  JsonWriter(&out).BeginObject().Field("name", t.model).Field("ready", v.ok()).EndObject();
  // Known but not ready: 503, as /v2/health/ready (4xx or 5xx = false).
  WriteJsonBody(res, v.ok() ? 200 : 503, std::move(out));
}

void HttpFrontend::V2Infer(const Target& t, Request& req, Response& res) {
  std::optional<uint64_t> header_length;
  if (std::string_view h = req.Header("inference-header-content-length"); !h.empty()) {
    StatusOr<uint64_t> n = ParseInferenceHeaderLength(h);
    if (!n.ok()) {
      return WriteError(res, InvalidArgumentError(
                                 fmt::format("{}: {}", kInferHeaderLength, n.status().message())));
    }
    header_length = *n;
  }
  // Binary tensors stay views into the body, which they keep alive.
  auto body = std::make_shared<const std::string>(std::move(req.body));
  StatusOr<InferRequest> decoded = DecodeV2Request(std::move(body), header_length, options_.limits);
  if (!decoded.ok()) return WriteError(res, decoded.status());
  InferRequest& request = *decoded;

  // What the encoder needs once the request has moved into the batcher.
  auto wants = std::make_shared<InferRequest>();
  wants->outputs = request.outputs;
  wants->binary_data_output = request.binary_data_output;

  auto deferred = std::make_shared<http::Deferred>();
  res.deferred = deferred;
  RequestContext context;
  context.cancelled = [deferred] { return deferred->cancelled(); };
  const int retry_after = options_.retry_after_s;
  // Runs on a batcher thread (or inline when the request is refused).
  manager_.Infer(
      t.model, t.selector, std::move(request),
      [deferred, wants, retry_after](StatusOr<InferResponse> r) {
        if (!r.ok()) {
          deferred->Complete(ErrorResponse(r.status(), retry_after));
          return;
        }
        StatusOr<V2EncodedResponse> enc = EncodeV2Response(*r, *wants);
        if (!enc.ok()) {
          deferred->Complete(ErrorResponse(enc.status(), retry_after));
          return;
        }
        Response out;
        out.status = 200;
        if (enc->header_length) {
          out.content_type = "application/octet-stream";
          out.SetHeader(std::string(kInferHeaderLength), std::to_string(*enc->header_length));
        } else {
          out.content_type = "application/json";
        }
        out.body = std::move(enc->body);
        deferred->Complete(std::move(out));
      },
      std::move(context));
}

void HttpFrontend::ModelConfigJson(const Target& t, Response& res) const {
  auto v = manager_.Resolve(t.model, t.selector);
  if (!v.ok()) return WriteError(res, v.status());
  WriteJsonBody(res, 200, ConfigToJson(*(*v)->config));
}

void HttpFrontend::Stats(std::string_view model, int64_t version, Response& res) const {
  auto stats = manager_.Statistics(model, version);
  if (!stats.ok()) return WriteError(res, stats.status());
  std::string out;
  JsonWriter w(&out);
  w.BeginObject().Key("model_stats").BeginArray();
  for (const ModelStatistics& s : *stats) {
    w.BeginObject()
        .Field("name", s.name)
        .Field("version", s.version)
        .Field("last_inference", s.last_inference_ms);
    w.Key("inference_count").Uint(s.inference_count);
    w.Key("execution_count").Uint(s.execution_count);
    w.Key("inference_stats").BeginObject();
    WriteDuration(w, "success", s.success);
    WriteDuration(w, "fail", s.fail);
    WriteDuration(w, "queue", s.queue);
    WriteDuration(w, "compute_input", {});
    WriteDuration(w, "compute_infer", s.compute_infer);
    WriteDuration(w, "compute_output", {});
    w.EndObject();
    // Lathe's addition: failed requests by reason (the metric's labels).
    w.Key("failures").BeginObject();
    for (size_t i = 0; i < kFailureReasons; ++i) {
      w.Key(FailureReasonName(static_cast<FailureReason>(i))).Uint(s.failures[i]);
    }
    w.EndObject();
    w.Key("batch_stats").BeginArray().EndArray();
    w.EndObject();
  }
  w.EndArray().EndObject();
  WriteJsonBody(res, 200, std::move(out));
}

void HttpFrontend::RepositoryIndex(const Request& req, Response& res) const {
  bool ready_only = false;
  if (!Trim(req.body).empty()) {
    StatusOr<JsonValue> body = ParseJson(req.body);
    if (!body.ok() || !body->is_object()) {
      return WriteError(
          res, InvalidArgumentError("the body must be a JSON object like {\"ready\": true}"));
    }
    for (const auto& [key, value] : body->members()) {
      if (key != "ready") {
        return WriteError(res, InvalidArgumentError(fmt::format("unknown field \"{}\"", key), key));
      }
      if (value.type() != JsonValue::Type::kBool) {
        return WriteError(res, InvalidArgumentError("ready: expected a boolean", "ready"));
      }
      ready_only = value.as_bool();
    }
  }
  std::string out;
  JsonWriter w(&out);
  w.BeginArray();
  for (const ModelIndexEntry& e : manager_.Index(ready_only)) {
    w.BeginObject().Field("name", e.name);
    if (!e.version.empty()) w.Field("version", e.version);
    w.Field("state", VersionStateName(e.state)).Field("reason", e.reason).EndObject();
  }
  w.EndArray();
  WriteJsonBody(res, 200, std::move(out));
}

void HttpFrontend::RepositoryControl(bool load, const std::string& model, const Request& req,
                                     Response& res) {
  if (!Trim(req.body).empty()) {
    StatusOr<JsonValue> body = ParseJson(req.body);
    if (!body.ok() || !body->is_object()) {
      return WriteError(res, InvalidArgumentError("the body must be a JSON object"));
    }
    if (const JsonValue* params = body->Find("parameters"); params != nullptr) {
      if (!params->is_object()) {
        return WriteError(res,
                          InvalidArgumentError("parameters: expected an object", "parameters"));
      }
      if (params->Find("config") != nullptr) {
        return WriteError(
            res, InvalidArgumentError("parameters.config is not supported: edit the model's "
                                      "config.yaml in the repository, then load it",
                                      "parameters.config"));
      }
    }
  }
  // A load blocks until the model is loaded and warm: off the I/O thread.
  auto deferred = std::make_shared<http::Deferred>();
  res.deferred = deferred;
  const int retry_after = options_.retry_after_s;
  Control([this, load, model, deferred, retry_after] {
    Status st = load ? manager_.Load(model) : manager_.Unload(model);
    LOG_INFO("repository {} of model \"{}\": {}", load ? "load" : "unload", model,
             st.ok() ? "done" : st.ToString());
    if (!st.ok()) {
      deferred->Complete(ErrorResponse(st, retry_after));
      return;
    }
    Response out;
    WriteJsonBody(out, 200, "{}");
    deferred->Complete(std::move(out));
  });
}

// ---- TF Serving

namespace {

// "m", "m/versions/3" or "m/labels/l" (segments) → the target; `rest` is
// what follows (empty, or "metadata").
StatusOr<std::pair<std::string, VersionSelector>> ParseTfTarget(
    const std::vector<std::string>& segs, size_t* consumed) {
  VersionSelector sel;
  if (segs.empty() || segs[0].empty()) return NotFoundError("no model named in the path");
  *consumed = 1;
  if (segs.size() >= 3 && (segs[1] == "versions" || segs[1] == "labels")) {
    if (segs[1] == "versions") {
      StatusOr<int64_t> v = ParseVersionSegment(segs[2]);
      if (!v.ok()) return v.status();
      sel.version = *v;
    } else {
      sel.label = segs[2];
    }
    *consumed = 3;
  }
  return std::make_pair(segs[0], sel);
}

}  // namespace

void HttpFrontend::TfGet(const Request& req, Response& res) const {
  StatusOr<std::vector<std::string>> segs = DecodeSegments(req.PathParam("path"));
  if (!segs.ok()) return WriteError(res, segs.status());
  size_t used = 0;
  auto target = ParseTfTarget(*segs, &used);
  if (!target.ok()) return WriteError(res, target.status());
  Target t{target->first, target->second};
  if (used == segs->size()) return TfStatus(t, res);
  if (used + 1 == segs->size() && (*segs)[used] == "metadata") return TfMetadata(t, res);
  WriteError(res, NotFoundError(fmt::format("no route GET {}", req.path)));
}

void HttpFrontend::TfPost(Request& req, Response& res) {
  StatusOr<std::vector<std::string>> segs = DecodeSegments(req.PathParam("path"));
  if (!segs.ok()) return WriteError(res, segs.status());
  // The verb is the suffix of the last segment: "m:predict", ".../3:predict".
  std::string& last = segs->back();
  const size_t colon = last.rfind(':');
  if (colon == std::string::npos) {
    return WriteError(
        res, NotFoundError(fmt::format(
                 "no route POST {}: expected .../<model>[/versions/<n>]:predict", req.path)));
  }
  const std::string verb = last.substr(colon + 1);
  last.resize(colon);
  size_t used = 0;
  auto target = ParseTfTarget(*segs, &used);
  if (!target.ok()) return WriteError(res, target.status());
  if (used != segs->size()) {
    return WriteError(res, NotFoundError(fmt::format("no route POST {}", req.path)));
  }
  Target t{target->first, target->second};
  if (verb == "predict") return TfPredict(t, req, res);
  if (verb == "classify" || verb == "regress") {
    return WriteError(res,
                      UnimplementedError(fmt::format(":{} is not supported; use :predict", verb)));
  }
  WriteError(res, NotFoundError(fmt::format("unknown method \":{}\" (use :predict)", verb)));
}

void HttpFrontend::TfStatus(const Target& t, Response& res) const {
  int64_t want = t.selector.version;
  if (!t.selector.label.empty()) {
    auto v = manager_.Resolve(t.model, t.selector);
    if (!v.ok()) return WriteError(res, v.status());
    want = (*v)->version;
  }
  std::string out;
  JsonWriter w(&out);
  w.BeginObject().Key("model_version_status").BeginArray();
  int n = 0;
  for (const ModelIndexEntry& e : manager_.Index()) {
    if (e.name != t.model || e.version.empty()) continue;
    if (want > 0 && e.version != std::to_string(want)) continue;
    ++n;
    const bool failed = e.state == VersionState::kUnavailable && !e.reason.empty();
    w.BeginObject().Field("version", e.version).Field("state", TfState(e.state));
    w.Key("status")
        .BeginObject()
        .Field("error_code", failed ? "UNKNOWN" : "OK")
        .Field("error_message", failed ? e.reason : std::string())
        .EndObject();
    w.EndObject();
  }
  w.EndArray().EndObject();
  if (n == 0) {
    return WriteError(
        res, NotFoundError(want > 0 ? fmt::format("model \"{}\" has no version {}", t.model, want)
                                    : fmt::format("unknown model \"{}\"", t.model)));
  }
  WriteJsonBody(res, 200, std::move(out));
}

void HttpFrontend::TfMetadata(const Target& t, Response& res) const {
  auto v = manager_.Resolve(t.model, t.selector);
  if (!v.ok()) return WriteError(res, v.status());
  const ModelConfig& c = *(*v)->config;
  std::string out;
  JsonWriter w(&out);
  w.BeginObject()
      .Key("model_spec")
      .BeginObject()
      .Field("name", t.model)
      .Field("signature_name", "")
      .Field("version", std::to_string((*v)->version))
      .EndObject();
  w.Key("metadata")
      .BeginObject()
      .Key("signature_def")
      .BeginObject()
      .Key("signature_def")
      .BeginObject()
      .Key("serving_default")
      .BeginObject();
  for (bool inputs : {true, false}) {
    w.Key(inputs ? "inputs" : "outputs").BeginObject();
    for (const TensorConfig& tc : inputs ? c.inputs : c.outputs) {
      w.Key(tc.name).BeginObject().Field("dtype", TfDataType(tc.type));
      w.Key("tensor_shape").BeginObject().Key("dim").BeginArray();
      for (int64_t d : MetadataShape(c, tc)) {
        w.BeginObject().Field("size", std::to_string(d)).Field("name", "").EndObject();
      }
      w.EndArray().Field("unknown_rank", false).EndObject();
      w.Field("name", tc.name).EndObject();
    }
    w.EndObject();
  }
  w.Field("method_name", "tensorflow/serving/predict");
  w.EndObject().EndObject().EndObject().EndObject().EndObject();
  WriteJsonBody(res, 200, std::move(out));
}

void HttpFrontend::TfPredict(const Target& t, Request& req, Response& res) {
  // The request carries no datatypes: they come from the config of the
  // version that would serve it.
  auto v = manager_.Resolve(t.model, t.selector);
  if (!v.ok()) return WriteError(res, v.status());
  StatusOr<TfServingRequest> decoded =
      DecodeTfServingPredict(req.body, *(*v)->config, options_.limits);
  if (!decoded.ok()) return WriteError(res, decoded.status());
  const TfServingFormat format = decoded->format;

  auto deferred = std::make_shared<http::Deferred>();
  res.deferred = deferred;
  RequestContext context;
  context.cancelled = [deferred] { return deferred->cancelled(); };
  const int retry_after = options_.retry_after_s;
  manager_.Infer(
      t.model, t.selector, std::move(decoded->request),
      [deferred, format, retry_after](StatusOr<InferResponse> r) {
        if (!r.ok()) {
          deferred->Complete(ErrorResponse(r.status(), retry_after));
          return;
        }
        StatusOr<std::string> body = EncodeTfServingPredict(*r, format);
        if (!body.ok()) {
          deferred->Complete(ErrorResponse(body.status(), retry_after));
          return;
        }
        Response out;
        WriteJsonBody(out, 200, std::move(*body));
        deferred->Complete(std::move(out));
      },
      std::move(context));
}

}  // namespace lathe::serving
