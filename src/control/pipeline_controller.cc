#include "control/pipeline_controller.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <fmt/core.h>

#include "base/crypto.h"
#include "base/log.h"
#include "control/jobs.h"

namespace lathe::control {

using store::AsInt;
using store::AsText;
using store::ResultSet;
using store::Tx;
using store::TxMode;
using store::Value;

namespace fs = std::filesystem;

namespace {

constexpr int64_t kMicros = 1'000'000;
// Rows per statement / transaction when a pass touches many nodes (fan-outs
// of thousands of items): bounded statements, short write transactions.
constexpr size_t kJobQueryChunk = 500;
constexpr size_t kDispatchChunk = 200;
// An artifact directory with more files than this is an error rather than
// a digest that takes minutes.
constexpr size_t kMaxArtifactFiles = 100'000;
constexpr size_t kMaxCachedSpecs = 1024;
constexpr std::string_view kExitField = "on_exit";

// A transaction that found the run or a node no longer as this pass saw it:
// nothing of it is written and the next pass looks again.
Status Stale(std::string what) { return FailedPreconditionError("stale: " + std::move(what)); }
bool IsStale(const Status& st) {
  return st.code() == StatusCode::kFailedPrecondition && st.message().rfind("stale: ", 0) == 0;
}

// ---- artifacts

class Sha256Stream {
 public:
  Sha256Stream() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256Stream() { EVP_MD_CTX_free(ctx_); }
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void Update(std::string_view data) { EVP_DigestUpdate(ctx_, data.data(), data.size()); }
  std::string HexDigest() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out += kHex[md[i] >> 4];
      out += kHex[md[i] & 15];
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

Status HashFile(const fs::path& path, Sha256Stream& h) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InternalError(fmt::format("cannot read {}", path.string()));
  std::string buf(1 << 16, '\0');
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.Update(std::string_view(buf.data(), static_cast<size_t>(in.gcount())));
  }
  if (in.bad()) return InternalError(fmt::format("error reading {}", path.string()));
  return OkStatus();
}

// sha256 of a file's content, or of a directory tree: for each regular file
// in sorted relative-path order, its path, a NUL, its size, a NUL and its
// content. Empty directories do not count.
StatusOr<std::string> DigestArtifact(const fs::path& path) {
  std::error_code ec;
  Sha256Stream h;
  if (fs::is_regular_file(path, ec)) {
    h.Update("file\n");
    RETURN_IF_ERROR(HashFile(path, h));
    return h.HexDigest();
  }
  if (!fs::is_directory(path, ec)) {
    return NotFoundError(fmt::format("{} is neither a file nor a directory", path.string()));
  }
  std::vector<std::string> files;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    if (files.size() >= kMaxArtifactFiles) {
      return ResourceExhaustedError(fmt::format("{} holds more than {} files", path.string(),
                                                kMaxArtifactFiles));
    }
    files.push_back(fs::relative(it->path(), path, ec).generic_string());
  }
  if (ec) return InternalError(fmt::format("cannot list {}: {}", path.string(), ec.message()));
  std::sort(files.begin(), files.end());
  h.Update("dir\n");
  for (const std::string& f : files) {
    const fs::path full = path / f;
    h.Update(f);
    h.Update(std::string_view("\0", 1));
    h.Update(std::to_string(fs::file_size(full, ec)));
    h.Update(std::string_view("\0", 1));
    RETURN_IF_ERROR(HashFile(full, h));
  }
  return h.HexDigest();
}

// ---- names

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void TrimDashes(std::string& s) {
  while (!s.empty() && s.back() == '-') s.pop_back();
}

// "<pipeline prefix>-<run id suffix>-<node>-<attempt>" in [a-z0-9-], at
// most 63 characters: long ones keep a hash of what was cut. `salt` (used
// when the plain name is taken) adds a hash that makes it unique.
std::string StepJobName(const std::string& pipeline, const std::string& run_id,
                        const std::string& node, int attempt, const std::string& salt) {
  std::string prefix = pipeline.substr(0, 20);
  TrimDashes(prefix);
  std::string run = Lower(run_id.size() > 8 ? run_id.substr(run_id.size() - 8) : run_id);
  std::string san;
  for (char c : node) {
    if (c == '[') {
      san += '-';
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-') {
      san += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  std::string base = fmt::format("{}-{}-{}", prefix, run, san);
  const std::string tail = fmt::format("-{}", attempt);
  if (!salt.empty() || base.size() + tail.size() > 63) {
    const std::string hash = Sha256Hex(base + "\n" + salt).substr(0, 8);
    if (base.size() + tail.size() + 9 > 63) base.resize(63 - tail.size() - 9);
    TrimDashes(base);
    base += "-" + hash;
  }
  return base + tail;
}

// ---- outputs

// Text of an output value as a JSON value for a fan-in array: JSON when it
// parses as JSON, a string otherwise.
void AppendJsonValueText(std::string* out, const std::string& value) {
  auto parsed = ParseJson(value);
  if (parsed.ok() && !value.empty()) {
    out->append(parsed->Dump());
  } else {
    AppendJsonString(out, value);
  }
}

// Reads one output parameter written by a step.
StatusOr<std::string> ReadParameter(const fs::path& file, int64_t max_bytes) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    return NotFoundError(fmt::format("declared output parameter {} was not written",
                                     file.filename().string()));
  }
  const auto size = fs::file_size(file, ec);
  if (ec) return InternalError(fmt::format("cannot stat {}: {}", file.string(), ec.message()));
  if (static_cast<int64_t>(size) > max_bytes) {
    return ResourceExhaustedError(fmt::format("output parameter {} is {} bytes; the limit is {}",
                                              file.filename().string(), size, max_bytes));
  }
  std::ifstream in(file, std::ios::binary);
  std::string text(size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (!in && !in.eof()) return InternalError(fmt::format("cannot read {}", file.string()));
  text.resize(static_cast<size_t>(in.gcount()));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

int64_t RetryBackoffSeconds(const spec::RetrySpec& r, int retries_done) {
  double b = static_cast<double>(std::max<int64_t>(r.backoff_seconds, 0));
  const double cap = static_cast<double>(std::max<int64_t>(r.max_backoff_seconds, 0));
  for (int i = 0; i < retries_done && b < cap; ++i) b *= std::max(r.backoff_factor, 1.0);
  return static_cast<int64_t>(std::min(b, cap));
}

bool RetryCovers(spec::RetryOn on, NodeState outcome) {
  switch (on) {
    case spec::RetryOn::kFailure: return outcome == NodeState::kFailed;
    case spec::RetryOn::kError: return outcome == NodeState::kErrored;
    case spec::RetryOn::kAll: return outcome == NodeState::kFailed || outcome == NodeState::kErrored;
  }
  return false;
}

// ---- store writes

Status InsertNode(Tx& tx, const std::string& run_id, const NodeRecord& n) {
  return tx
      .Exec("INSERT INTO pipeline_nodes (run_id, node, step, item, state, reason, message, "
            "attempt, job_id, job_name, outputs, cached, cache_key, cache_source, not_before, "
            "created_at, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?, ?, ?) ON CONFLICT (run_id, node) DO NOTHING",
            {run_id, n.node, n.step, int64_t{n.item}, std::string(NodeStateName(n.state)),
             n.reason, n.message, int64_t{n.attempt}, n.job_id, n.job_name,
             EncodeNodeOutputs(n.parameters, n.artifacts), int64_t{n.cached ? 1 : 0}, n.cache_key,
             n.cache_source, n.not_before, n.created_at, n.started_at, n.finished_at})
      .status();
}

// Writes `n` over the stored node if that is still in `state` at `attempt`
// (compare-and-set); false when it is not.
StatusOr<bool> UpdateNode(Tx& tx, const std::string& run_id, const NodeRecord& n,
                          NodeState state, int attempt) {
  ASSIGN_OR_RETURN(
      int64_t changed,
      tx.Exec("UPDATE pipeline_nodes SET state = ?, reason = ?, message = ?, attempt = ?, "
              "job_id = ?, job_name = ?, outputs = ?, cached = ?, cache_key = ?, cache_source = ?, "
              "not_before = ?, started_at = ?, finished_at = ? WHERE run_id = ? AND node = ? AND "
              "state = ? AND attempt = ?",
              {std::string(NodeStateName(n.state)), n.reason, n.message, int64_t{n.attempt},
               n.job_id, n.job_name, EncodeNodeOutputs(n.parameters, n.artifacts),
               int64_t{n.cached ? 1 : 0}, n.cache_key, n.cache_source, n.not_before, n.started_at,
               n.finished_at, run_id, n.node, std::string(NodeStateName(state)),
               int64_t{attempt}}));
  return changed > 0;
}

// A parsed pipeline version and the index the controller needs of it.
struct CompiledSpec {
  spec::PipelineSpec spec;
  std::vector<const spec::StepSpec*> steps;        // spec.steps, then on_exit
  std::unordered_map<std::string, size_t> index;   // step name -> position in steps
  size_t exit = SIZE_MAX;                          // position of on_exit
  std::vector<std::vector<size_t>> depends_on;     // per step, positions
};

// What a step's nodes add up to, for `depends` and readiness.
struct StepSummary {
  size_t total = 0;
  size_t count[8] = {};
  size_t of(NodeState s) const { return count[static_cast<int>(s)]; }
  bool reached() const { return total > 0; }
  bool settled() const { return total > 0 && of(NodeState::kPending) + of(NodeState::kRunning) == 0; }
  bool succeeded() const {
    return settled() && of(NodeState::kSucceeded) > 0 &&
           of(NodeState::kSucceeded) + of(NodeState::kSkipped) == total;
  }
  bool skipped() const { return total > 0 && of(NodeState::kSkipped) == total; }
  bool omitted() const { return total > 0 && of(NodeState::kOmitted) == total; }
  bool failed() const { return of(NodeState::kFailed) > 0; }
  bool errored() const { return of(NodeState::kErrored) + of(NodeState::kCancelled) > 0; }
};

}  // namespace

struct PipelineController::Impl {
  store::Store& store;
  tenancy::TenancyService& tenancy;
  const Clock& clock;
  PipelineControllerOptions options;

  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;    // guarded by mu
  bool poked = false;   // guarded by mu

  // Controller-thread state (RunPass is never called concurrently).
  std::unordered_map<std::string, std::shared_ptr<const CompiledSpec>> specs;  // "pipeline/version"
  // Resolved for_each items per "run/step" (deterministic from settled
  // upstream outputs, so a restarted controller resolves the same list).
  std::unordered_map<std::string, std::shared_ptr<const std::vector<JsonValue>>> items;
  std::unordered_set<std::string> cancelled_jobs;  // cancel asked (this process)
  std::unordered_set<std::string> refilled;        // "run/step" gaps checked (this process)

  HistogramChild* pass_seconds = nullptr;
  CounterChild* nodes_started = nullptr;
  CounterChild* cache_hits = nullptr;

  Impl(store::Store& s, tenancy::TenancyService& t, const Clock& c, PipelineControllerOptions o,
       MetricsRegistry* metrics)
      : store(s), tenancy(t), clock(c), options(std::move(o)) {
    if (metrics != nullptr) {
      pass_seconds = &metrics
                          ->AddHistogram("lathe_pipeline_controller_pass_seconds",
                                         "Duration of one pipeline controller pass.", {})
                          .With({});
      nodes_started = &metrics
                           ->AddCounter("lathe_pipeline_nodes_started_total",
                                        "Pipeline step attempts started (jobs inserted).")
                           .With({});
      cache_hits = &metrics
                        ->AddCounter("lathe_pipeline_cache_hits_total",
                                     "Pipeline nodes that reused a cached result.")
                        .With({});
    }
  }

  Status Pass();
  Status Reconcile(const std::string& run_id);
  StatusOr<std::shared_ptr<const CompiledSpec>> Compile(const RunRecord& run);
};

namespace {

// One run during one pass: the run, its nodes, and what the pass derives.
struct RunState_ {
  RunRecord run;
  std::shared_ptr<const CompiledSpec> cs;
  std::vector<NodeRecord> nodes;
  std::vector<std::vector<size_t>> by_step;  // step position -> node indices
  std::unordered_map<std::string, size_t> by_id;
  // Upstream outputs for templates (built on first use in a pass).
  bool outputs_built = false;
  std::map<std::string, std::map<std::string, std::string>> parameters, artifacts, digests;
  std::vector<RunEvent> events;  // written with the next transaction
  int64_t now = 0;

  void Index() {
    by_step.assign(cs->steps.size(), {});
    by_id.clear();
    for (size_t i = 0; i < nodes.size(); ++i) {
      auto it = cs->index.find(nodes[i].step);
      if (it != cs->index.end()) by_step[it->second].push_back(i);
      by_id[nodes[i].node] = i;
    }
    for (auto& list : by_step) {
      std::sort(list.begin(), list.end(),
                [&](size_t a, size_t b) { return nodes[a].item < nodes[b].item; });
    }
  }
  void Add(NodeRecord n) {
    auto it = cs->index.find(n.step);
    nodes.push_back(std::move(n));
    const size_t i = nodes.size() - 1;
    if (it != cs->index.end()) by_step[it->second].push_back(i);
    by_id[nodes[i].node] = i;
  }
  StepSummary Summary(size_t step) const {
    StepSummary s;
    for (size_t i : by_step[step]) {
      s.total += 1;
      s.count[static_cast<int>(nodes[i].state)] += 1;
    }
    return s;
  }
  void Event(std::string type, std::string reason, std::string message) {
    events.push_back({0, now, std::move(type), std::move(reason), std::move(message)});
  }

  // Template maps of every step's outputs: a plain step's values as they
  // are, a fan-out step's as JSON arrays in item order (null where an item
  // has none), as pipeline_spec.h says.
  void BuildOutputs() {
    if (outputs_built) return;
    outputs_built = true;
    parameters.clear();
    artifacts.clear();
    digests.clear();
    for (size_t s = 0; s < cs->steps.size(); ++s) {
      const spec::StepSpec& step = *cs->steps[s];
      const auto& list = by_step[s];
      if (list.empty()) continue;
      if (!step.fan_out()) {
        const NodeRecord& n = nodes[list[0]];
        if (n.state != NodeState::kSucceeded) continue;
        for (const auto& [k, v] : n.parameters) parameters[step.name][k] = v;
        for (const auto& [k, a] : n.artifacts) {
          artifacts[step.name][k] = a.path;
          digests[step.name][k] = a.digest;
        }
        continue;
      }
      // A fan-out without items has one node (item -1) and empty arrays.
      std::vector<size_t> item_nodes;
      for (size_t i : list) {
        if (nodes[i].item >= 0) item_nodes.push_back(i);
      }
      for (const std::string& name : step.output_parameters) {
        std::string arr = "[";
        for (size_t k = 0; k < item_nodes.size(); ++k) {
          if (k > 0) arr += ',';
          const NodeRecord& n = nodes[item_nodes[k]];
          auto it = n.parameters.find(name);
          if (n.state != NodeState::kSucceeded || it == n.parameters.end()) {
            arr += "null";
          } else {
            AppendJsonValueText(&arr, it->second);
          }
        }
        parameters[step.name][name] = arr + "]";
      }
      for (const std::string& name : step.output_artifacts) {
        std::string paths = "[", sums = "[";
        for (size_t k = 0; k < item_nodes.size(); ++k) {
          if (k > 0) {
            paths += ',';
            sums += ',';
          }
          const NodeRecord& n = nodes[item_nodes[k]];
          auto it = n.artifacts.find(name);
          if (n.state != NodeState::kSucceeded || it == n.artifacts.end()) {
            paths += "null";
            sums += "null";
          } else {
            AppendJsonString(&paths, it->second.path);
            AppendJsonString(&sums, it->second.digest);
          }
        }
        artifacts[step.name][name] = paths + "]";
        digests[step.name][name] = sums + "]";
      }
    }
  }

  spec::TemplateContext Context(const JsonValue* item, std::string outputs_dir) {
    BuildOutputs();
    spec::TemplateContext ctx;
    ctx.params = &run.params;
    ctx.step_parameters = &parameters;
    ctx.step_artifacts = &artifacts;
    ctx.item = item;
    ctx.run_id = run.id;
    ctx.pipeline_name = run.pipeline;
    ctx.pipeline_version = run.version;
    ctx.outputs_dir = std::move(outputs_dir);
    return ctx;
  }
};

std::string StepField(const CompiledSpec& cs, size_t step) {
  return step == cs.exit ? std::string(kExitField) : cs.steps[step]->name;
}

}  // namespace

// ---------------------------------------------------------------- the pass

StatusOr<std::shared_ptr<const CompiledSpec>> PipelineController::Impl::Compile(const RunRecord& run) {
  const std::string key = fmt::format("{}/{}", run.pipeline_id, run.version);
  auto it = specs.find(key);
  if (it != specs.end()) return it->second;
  PipelineVersionRecord v;
  RETURN_IF_ERROR(store::RunInTx(store, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(v, LoadVersion(tx, run.pipeline_id, run.version));
    return OkStatus();
  }));
  auto cs = std::make_shared<CompiledSpec>();
  cs->spec = std::move(v.spec);
  for (const spec::StepSpec& s : cs->spec.steps) cs->steps.push_back(&s);
  if (cs->spec.on_exit) {
    cs->exit = cs->steps.size();
    cs->steps.push_back(&*cs->spec.on_exit);
  }
  for (size_t i = 0; i < cs->steps.size(); ++i) cs->index[cs->steps[i]->name] = i;
  cs->depends_on.resize(cs->steps.size());
  for (size_t i = 0; i < cs->steps.size(); ++i) {
    for (const std::string& d : cs->steps[i]->depends_on) {
      auto d_it = cs->index.find(d);
      if (d_it == cs->index.end() || d_it->second == cs->exit) {
        return DataLossError(fmt::format("pipeline {} version {}: step {} depends on unknown step {}",
                                         run.pipeline, run.version, cs->steps[i]->name, d));
      }
      cs->depends_on[i].push_back(d_it->second);
    }
  }
  if (specs.size() >= kMaxCachedSpecs) specs.clear();
  specs.emplace(key, cs);
  return std::shared_ptr<const CompiledSpec>(cs);
}

Status PipelineController::Impl::Pass() {
  const int64_t start = clock.MonotonicNanos();
  std::vector<std::string> ids;
  RETURN_IF_ERROR(store::RunInTx(store, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ids, ActiveRunIds(tx));
    return OkStatus();
  }));
  Status first;
  for (const std::string& id : ids) {
    Status st = Reconcile(id);
    if (!st.ok() && !IsStale(st)) {
      LOG_WARN("pipeline run {}: {}", id, st.ToString());
      if (first.ok()) first = st;
    }
  }
  // Forget per-run memory of runs that are no longer active.
  std::unordered_set<std::string> active(ids.begin(), ids.end());
  for (auto it = items.begin(); it != items.end();) {
    const std::string run = it->first.substr(0, it->first.find('/'));
    it = active.count(run) ? std::next(it) : items.erase(it);
  }
  for (auto it = refilled.begin(); it != refilled.end();) {
    const std::string run = it->substr(0, it->find('/'));
    it = active.count(run) ? std::next(it) : refilled.erase(it);
  }
  if (pass_seconds != nullptr) {
    pass_seconds->Observe(static_cast<double>(clock.MonotonicNanos() - start) / 1e9);
  }
  return first;
}

Status PipelineController::Impl::Reconcile(const std::string& run_id) {
  RunState_ r;
  RETURN_IF_ERROR(store::RunInTx(store, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(r.run, LoadRun(tx, run_id, true));
    return OkStatus();
  }));
  if (IsTerminal(r.run.state)) return OkStatus();
  ASSIGN_OR_RETURN(r.cs, Compile(r.run));
  r.nodes = std::move(r.run.nodes);
  r.run.nodes.clear();
  r.Index();
  r.now = clock.NowMicros();
  const CompiledSpec& cs = *r.cs;
  bool poke_jobs = false;

  // Writes r.events (and whatever `fn` writes) in one transaction.
  auto write = [&](const std::function<Status(Tx&)>& fn) -> Status {
    Status st = store::RunInTx(store, TxMode::kWrite, [&](Tx& tx) -> Status {
      RETURN_IF_ERROR(fn(tx));
      for (const RunEvent& e : r.events) RETURN_IF_ERROR(AppendRunEvent(tx, r.run.id, e));
      return OkStatus();
    });
    r.events.clear();
    return st;
  };

  // 0. pending → running.
  if (r.run.state == RunState::kPending) {
    r.Event("Normal", "Started", fmt::format("{} version {}: {} steps{}", r.run.pipeline,
                                              r.run.version, cs.spec.steps.size(),
                                              cs.spec.on_exit ? " and an exit handler" : ""));
    RETURN_IF_ERROR(write([&](Tx& tx) -> Status {
      ASSIGN_OR_RETURN(int64_t n, tx.Exec("UPDATE pipeline_runs SET state = 'running', reason = "
                                          "'Running', started_at = ? WHERE id = ? AND state = "
                                          "'pending'",
                                          {r.now, r.run.id}));
      if (n == 0) return Stale("run left pending");
      return OkStatus();
    }));
    r.run.state = RunState::kRunning;
    r.run.started_at = r.now;
  }

  // 1. Observe running nodes through their jobs (one query per chunk).
  {
    std::vector<size_t> running;
    for (size_t i = 0; i < r.nodes.size(); ++i) {
      if (r.nodes[i].state == NodeState::kRunning) running.push_back(i);
    }
    struct JobView {
      Phase phase;
      std::string reason, message;
    };
    std::unordered_map<std::string, JobView> jobs;
    for (size_t begin = 0; begin < running.size(); begin += kJobQueryChunk) {
      const size_t end = std::min(running.size(), begin + kJobQueryChunk);
      std::vector<Value> ids;
      for (size_t k = begin; k < end; ++k) ids.emplace_back(r.nodes[running[k]].job_id);
      RETURN_IF_ERROR(store::RunInTx(store, TxMode::kRead, [&](Tx& tx) -> Status {
        ASSIGN_OR_RETURN(ResultSet rs,
                         tx.Query(fmt::format("SELECT id, phase, reason, message FROM jobs WHERE "
                                              "id IN {}",
                                              store::Placeholders(ids.size())),
                                  ids));
        for (const auto& row : rs.rows) {
          ASSIGN_OR_RETURN(Phase ph, ParsePhase(AsText(row[1])));
          jobs[AsText(row[0])] = {ph, AsText(row[2]), AsText(row[3])};
        }
        return OkStatus();
      }));
    }
    struct Change {
      size_t index;
      NodeRecord next;
      int attempt;
      bool cache_entry;
    };
    std::vector<Change> changes;
    for (size_t i : running) {
      const NodeRecord& n = r.nodes[i];
      const spec::StepSpec& step = *cs.steps[cs.index.at(n.step)];
      auto j = jobs.find(n.job_id);
      if (j != jobs.end() && !IsTerminal(j->second.phase)) continue;
      NodeRecord next = n;
      next.finished_at = r.now;
      NodeState outcome;
      if (j == jobs.end()) {
        outcome = NodeState::kErrored;
        next.reason = "JobVanished";
        next.message = fmt::format("job {} was removed before it ended", n.job_name);
      } else if (j->second.phase == Phase::kSucceeded) {
        // Outputs: read from disk, so reading again after a crash is harmless.
        const fs::path dir = fs::path(options.data_root) / r.run.id / n.node /
                             std::to_string(n.attempt);
        outcome = NodeState::kSucceeded;
        next.reason = "Completed";
        next.message = j->second.message;
        next.parameters.clear();
        next.artifacts.clear();
        for (const std::string& name : step.output_parameters) {
          auto v = ReadParameter(dir / "parameters" / name, options.max_output_bytes);
          if (!v.ok()) {
            outcome = NodeState::kErrored;
            next.reason = v.status().code() == StatusCode::kNotFound ? "MissingOutput" : "BadOutput";
            next.message = std::string(v.status().message());
            break;
          }
          next.parameters[name] = std::move(*v);
        }
        for (size_t a = 0; outcome == NodeState::kSucceeded && a < step.output_artifacts.size(); ++a) {
          const std::string& name = step.output_artifacts[a];
          const fs::path path = dir / "artifacts" / name;
          std::error_code ec;
          if (!fs::exists(path, ec)) {
            outcome = NodeState::kErrored;
            next.reason = "MissingOutput";
            next.message = fmt::format("declared output artifact {} was not written", name);
            break;
          }
          auto digest = DigestArtifact(path);
          if (!digest.ok()) {
            outcome = NodeState::kErrored;
            next.reason = "BadOutput";
            next.message = std::string(digest.status().message());
            break;
          }
          next.artifacts[name] = {path.string(), *digest};
        }
        if (outcome != NodeState::kSucceeded) {
          next.parameters.clear();
          next.artifacts.clear();
        }
      } else if (j->second.phase == Phase::kFailed) {
        outcome = NodeState::kFailed;
        next.reason = "Failed";
        next.message = fmt::format("job {}: {}", n.job_name, j->second.message);
      } else if (j->second.phase == Phase::kCancelled && r.run.cancel_requested) {
        outcome = NodeState::kCancelled;
        next.reason = "Cancelled";
        next.message = "the run was cancelled";
      } else {
        outcome = NodeState::kErrored;
        next.reason = j->second.phase == Phase::kTimedOut ? "TimedOut" : "JobCancelled";
        next.message = fmt::format("job {}: {}", n.job_name, j->second.message);
      }
      next.state = outcome;
      const bool fan = n.item >= 0;
      if (!r.run.cancel_requested && RetryCovers(step.retry.on, outcome) &&
          n.attempt - 1 < step.retry.limit) {
        const int64_t backoff = RetryBackoffSeconds(step.retry, n.attempt - 1);
        next.state = NodeState::kPending;
        next.not_before = r.now + backoff * kMicros;
        next.job_id.clear();
        next.finished_at = 0;
        next.message = fmt::format("attempt {} {} ({}: {}); retry {} of {} in {}s", n.attempt,
                                   NodeStateName(outcome), next.reason, next.message, n.attempt,
                                   step.retry.limit, backoff);
        next.reason = "Retrying";
        r.Event("Warning", "Retrying", fmt::format("{}: {}", n.node, next.message));
      } else if (outcome == NodeState::kSucceeded) {
        if (!fan) r.Event("Normal", "Succeeded", fmt::format("{}: attempt {} succeeded", n.node, n.attempt));
      } else {
        r.Event("Warning", std::string(outcome == NodeState::kFailed ? "Failed" : "Errored"),
                fmt::format("{}: {}: {}", n.node, next.reason, next.message));
      }
      changes.push_back({i, std::move(next), n.attempt,
                         outcome == NodeState::kSucceeded && !n.cache_key.empty()});
    }
    if (!changes.empty()) {
      RETURN_IF_ERROR(write([&](Tx& tx) -> Status {
        for (const Change& c : changes) {
          ASSIGN_OR_RETURN(bool ok, UpdateNode(tx, r.run.id, c.next, NodeState::kRunning, c.attempt));
          if (!ok) return Stale(fmt::format("node {} changed", c.next.node));
          if (c.cache_entry) {
            RETURN_IF_ERROR(
                tx.Exec("INSERT INTO pipeline_cache (project_id, cache_key, run_id, node, outputs, "
                        "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (project_id, cache_key) "
                        "DO UPDATE SET run_id = excluded.run_id, node = excluded.node, outputs = "
                        "excluded.outputs, created_at = excluded.created_at",
                        {r.run.project_id, c.next.cache_key, r.run.id, c.next.node,
                         EncodeNodeOutputs(c.next.parameters, c.next.artifacts), r.now})
                    .status());
          }
        }
        return OkStatus();
      }));
      for (Change& c : changes) r.nodes[c.index] = std::move(c.next);
    }
  }

  // 2. Cancellation: stop running steps, forget pending ones; the exit
  // handler still runs once nothing else does.
  if (r.run.cancel_requested) {
    std::vector<size_t> pending;
    std::vector<std::string> to_cancel;
    for (size_t i = 0; i < r.nodes.size(); ++i) {
      const NodeRecord& n = r.nodes[i];
      if (cs.index.at(n.step) == cs.exit) continue;
      if (n.state == NodeState::kPending) pending.push_back(i);
      if (n.state == NodeState::kRunning && !cancelled_jobs.count(n.job_id)) {
        to_cancel.push_back(n.job_id);
      }
    }
    if (!pending.empty() || !to_cancel.empty()) {
      std::vector<NodeRecord> next;
      for (size_t i : pending) {
        NodeRecord n = r.nodes[i];
        n.state = NodeState::kCancelled;
        n.reason = "Cancelled";
        n.message = "the run was cancelled before it started";
        n.finished_at = r.now;
        next.push_back(std::move(n));
      }
      if (!pending.empty()) {
        r.Event("Normal", "Cancelled", fmt::format("{} waiting nodes cancelled", pending.size()));
      }
      RETURN_IF_ERROR(write([&](Tx& tx) -> Status {
        for (size_t k = 0; k < pending.size(); ++k) {
          ASSIGN_OR_RETURN(bool ok, UpdateNode(tx, r.run.id, next[k], NodeState::kPending,
                                               r.nodes[pending[k]].attempt));
          if (!ok) return Stale("node changed");
        }
        for (const std::string& job : to_cancel) {
          Status st = RequestJobCancel(tx, job, fmt::format("pipeline run {} cancelled", r.run.id),
                                       r.now);
          if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
        }
        return OkStatus();
      }));
      for (size_t k = 0; k < pending.size(); ++k) r.nodes[pending[k]] = std::move(next[k]);
      for (const std::string& job : to_cancel) cancelled_jobs.insert(job);
      if (!to_cancel.empty()) poke_jobs = true;
    }
  }

  // 3. Reach steps whose upstream steps have settled (topological order, so
  // omitted and skipped steps propagate within one pass).
  std::vector<NodeRecord> reached;
  auto reach = [&](NodeRecord n) {
    n.created_at = r.now;
    if (IsTerminal(n.state)) {
      n.started_at = r.now;
      n.finished_at = r.now;
    }
    reached.push_back(n);
    r.Add(std::move(n));
  };
  auto single = [&](const spec::StepSpec& step, NodeState state, std::string reason,
                    std::string message) {
    NodeRecord n;
    n.node = step.name;
    n.step = step.name;
    n.state = state;
    n.reason = std::move(reason);
    n.message = std::move(message);
    r.outputs_built = false;  // a fan-out without items now has (empty) outputs
    r.Event(state == NodeState::kErrored ? "Warning" : "Normal",
            std::string(state == NodeState::kSkipped   ? "Skipped"
                        : state == NodeState::kOmitted ? "Omitted"
                        : state == NodeState::kErrored ? "Errored"
                                                       : "Reached"),
            fmt::format("{}: {}{}{}", step.name, n.reason, n.message.empty() ? "" : ": ", n.message));
    reach(std::move(n));
  };
  // The item nodes of a fan-out step that it does not have yet (all of
  // them when it is reached; the ones a retried run forgot otherwise).
  auto fill_items = [&](size_t s, const std::vector<JsonValue>& list, bool when_per_item) {
    const spec::StepSpec& step = *cs.steps[s];
    const std::string field = StepField(cs, s);
    std::vector<bool> have(list.size(), false);
    for (size_t i : r.by_step[s]) {
      const int item = r.nodes[i].item;
      if (item >= 0 && static_cast<size_t>(item) < list.size()) have[static_cast<size_t>(item)] = true;
    }
    size_t added = 0, skipped = 0;
    for (size_t k = 0; k < list.size(); ++k) {
      if (have[k]) continue;
      NodeRecord n;
      n.node = spec::NodeId(step.name, k);
      n.step = step.name;
      n.item = static_cast<int>(k);
      n.reason = "Waiting";
      if (when_per_item) {
        spec::TemplateContext ictx = r.Context(&list[k], "");
        auto ok = spec::EvalWhen(step, ictx, field + ".when");
        if (!ok.ok()) {
          n.state = NodeState::kErrored;
          n.reason = "InvalidWhen";
          n.message = std::string(ok.status().message());
        } else if (!*ok) {
          n.state = NodeState::kSkipped;
          n.reason = "WhenFalse";
          skipped += 1;
        }
      }
      added += 1;
      reach(std::move(n));
    }
    if (added == 0) return;
    r.outputs_built = false;
    r.Event("Normal", "FanOut",
            fmt::format("{}: {} of {} items{}{}", step.name, added, list.size(),
                        step.parallelism > 0 ? fmt::format(", {} at a time", step.parallelism) : "",
                        skipped > 0 ? fmt::format(", {} skipped by when", skipped) : ""));
  };
  auto uses_item = [](const spec::StepSpec& step) {
    if (!step.when) return false;
    for (const std::string& ref : step.when->refs()) {
      if (ref == "item" || ref.rfind("item.", 0) == 0) return true;
    }
    return false;
  };
  // Reaches one step (its `depends` held): `when`, `for_each`, new nodes.
  auto reach_step = [&](size_t s) {
    const spec::StepSpec& step = *cs.steps[s];
    const std::string field = StepField(cs, s);
    const bool when_per_item = uses_item(step);
    if (step.when && !(when_per_item && step.fan_out())) {
      spec::TemplateContext ctx = r.Context(nullptr, "");
      auto ok = spec::EvalWhen(step, ctx, field + ".when");
      if (!ok.ok()) return single(step, NodeState::kErrored, "InvalidWhen", std::string(ok.status().message()));
      if (!*ok) return single(step, NodeState::kSkipped, "WhenFalse", step.when_text);
    }
    if (!step.fan_out()) {
      NodeRecord n;
      n.node = step.name;
      n.step = step.name;
      n.reason = "Waiting";
      return reach(std::move(n));
    }
    spec::TemplateContext ctx = r.Context(nullptr, "");
    auto list = spec::ResolveForEach(step, ctx, options.max_fan_out, field + ".for_each");
    if (!list.ok()) {
      return single(step, NodeState::kErrored, "InvalidForEach", std::string(list.status().message()));
    }
    if (list->empty()) return single(step, NodeState::kSkipped, "NoItems", "for_each gave no items");
    auto shared = std::make_shared<const std::vector<JsonValue>>(std::move(*list));
    items[r.run.id + "/" + step.name] = shared;
    fill_items(s, *shared, when_per_item);
  };

  std::vector<StepSummary> summary(cs.steps.size());
  bool all_settled = true;  // every step but the exit handler
  for (size_t s = 0; s < cs.steps.size(); ++s) {
    if (s == cs.exit) continue;
    const spec::StepSpec& step = *cs.steps[s];
    bool ready = true;
    for (size_t d : cs.depends_on[s]) ready = ready && summary[d].settled();
    const std::string refill_key = fmt::format("{}/{}#{}", r.run.id, step.name, r.run.retries);
    if (ready && !r.by_step[s].empty() && r.run.retries > 0 && step.fan_out() &&
        !r.run.cancel_requested && r.nodes[r.by_step[s][0]].item >= 0 &&
        !refilled.count(refill_key)) {
      // A retried run forgot the items that did not succeed: bring them back.
      refilled.insert(refill_key);
      auto it = items.find(r.run.id + "/" + step.name);
      if (it == items.end()) {
        spec::TemplateContext ctx = r.Context(nullptr, "");
        auto list = spec::ResolveForEach(step, ctx, options.max_fan_out, step.name + ".for_each");
        if (list.ok()) {
          it = items.emplace(r.run.id + "/" + step.name,
                             std::make_shared<const std::vector<JsonValue>>(std::move(*list)))
                   .first;
        }
      }
      if (it != items.end()) fill_items(s, *it->second, uses_item(step));
    }
    if (!r.by_step[s].empty() || r.run.cancel_requested) {
      summary[s] = r.Summary(s);
      if (!summary[s].settled() && !(r.run.cancel_requested && !summary[s].reached())) {
        all_settled = false;
      }
      continue;
    }
    if (!ready) {
      all_settled = false;
      continue;
    }
    // `depends`: step results; absent = every upstream as a bare S.
    bool holds = true;
    bool upstream_failed = false;
    for (size_t d : cs.depends_on[s]) {
      upstream_failed = upstream_failed || summary[d].failed() || summary[d].errored();
    }
    if (step.depends) {
      auto result = spec::EvalExpr(
          *step.depends,
          [&](const std::string& ref) -> StatusOr<spec::ExprValue> {
            const size_t dot = ref.find('.');
            const std::string name = ref.substr(0, dot);
            auto it = cs.index.find(name);
            if (it == cs.index.end() || it->second == cs.exit) {
              return InvalidArgumentError(fmt::format("unknown step \"{}\"", name));
            }
            const StepSummary& u = summary[it->second];
            const std::string what = dot == std::string::npos ? "" : ref.substr(dot + 1);
            bool v;
            if (what.empty()) {
              v = u.succeeded() || u.skipped();
            } else if (what == "succeeded") {
              v = u.succeeded();
            } else if (what == "failed") {
              v = u.failed();
            } else if (what == "errored") {
              v = u.errored();
            } else if (what == "skipped") {
              v = u.skipped();
            } else if (what == "omitted") {
              v = u.omitted();
            } else if (what == "any_succeeded") {
              v = u.of(NodeState::kSucceeded) > 0;
            } else if (what == "all_failed") {
              v = u.total > 0 && u.of(NodeState::kFailed) == u.total;
            } else {
              return InvalidArgumentError(fmt::format("\"{}\" is not a step result", ref));
            }
            return spec::ExprValue::Bool(v);
          },
          step.name + ".depends");
      if (!result.ok()) {
        single(step, NodeState::kErrored, "InvalidDepends", std::string(result.status().message()));
      } else if (!*result) {
        single(step, NodeState::kOmitted, "DependsFalse", step.depends->text());
      } else {
        reach_step(s);
      }
    } else {
      for (size_t d : cs.depends_on[s]) holds = holds && (summary[d].succeeded() || summary[d].skipped());
      if (holds) {
        reach_step(s);
      } else {
        std::string why;
        for (size_t d : cs.depends_on[s]) {
          if (summary[d].succeeded() || summary[d].skipped()) continue;
          why += (why.empty() ? "" : ", ") + fmt::format("{} did not succeed", cs.steps[d]->name);
        }
        single(step, NodeState::kOmitted, upstream_failed ? "UpstreamFailed" : "DependsFalse", why);
      }
    }
    summary[s] = r.Summary(s);
    if (!summary[s].settled()) all_settled = false;
  }

  // 4. The exit handler, once every other node is terminal.
  bool others_terminal = true;
  for (const NodeRecord& n : r.nodes) {
    if (cs.index.at(n.step) != cs.exit && !IsTerminal(n.state)) others_terminal = false;
  }
  const bool others_done = r.run.cancel_requested ? others_terminal : all_settled;
  if (cs.exit != SIZE_MAX && others_done && r.by_step[cs.exit].empty()) reach_step(cs.exit);

  if (!reached.empty()) {
    RETURN_IF_ERROR(write([&](Tx& tx) -> Status {
      for (const NodeRecord& n : reached) RETURN_IF_ERROR(InsertNode(tx, r.run.id, n));
      return OkStatus();
    }));
  }

  // 5. Dispatch pending nodes whose backoff has passed, within parallelism:
  // a cache hit, or the attempt's job inserted with the node's attempt.
  struct Attempt {
    size_t index;
    NodeRecord next;
    std::optional<JobRecord> job;  // absent: decided without a job (cache or error)
    bool try_cache = false;
  };
  std::vector<Attempt> attempts;
  for (size_t s = 0; s < cs.steps.size(); ++s) {
    if (r.run.cancel_requested && s != cs.exit) continue;
    const spec::StepSpec& step = *cs.steps[s];
    size_t running = 0;
    for (size_t i : r.by_step[s]) running += r.nodes[i].state == NodeState::kRunning;
    for (size_t i : r.by_step[s]) {
      const NodeRecord& n = r.nodes[i];
      if (n.state != NodeState::kPending || n.not_before > r.now) continue;
      if (step.parallelism > 0 && running >= static_cast<size_t>(step.parallelism)) break;
      running += 1;
      const std::string field = StepField(cs, s);
      Attempt a{i, n, std::nullopt, false};
      NodeRecord& next = a.next;
      next.attempt = n.attempt + 1;
      const JsonValue* item = nullptr;
      std::shared_ptr<const std::vector<JsonValue>> list;
      if (n.item >= 0) {
        auto it = items.find(r.run.id + "/" + step.name);
        if (it == items.end()) {
          spec::TemplateContext ctx = r.Context(nullptr, "");
          auto resolved = spec::ResolveForEach(step, ctx, options.max_fan_out, field + ".for_each");
          if (resolved.ok()) {
            it = items.emplace(r.run.id + "/" + step.name,
                               std::make_shared<const std::vector<JsonValue>>(std::move(*resolved)))
                     .first;
          }
        }
        if (it != items.end()) list = it->second;
        if (list == nullptr || static_cast<size_t>(n.item) >= list->size()) {
          next.attempt = n.attempt;
          next.state = NodeState::kErrored;
          next.reason = "InvalidForEach";
          next.message = "the step's items can no longer be resolved";
          next.finished_at = r.now;
          attempts.push_back(std::move(a));
          continue;
        }
        item = &(*list)[static_cast<size_t>(n.item)];
      }
      const std::string outputs_dir =
          (fs::path(options.data_root) / r.run.id / n.node / std::to_string(next.attempt)).string();
      spec::TemplateContext ctx = r.Context(item, outputs_dir);
      auto rendered = spec::RenderStepJob(step, ctx, field);
      if (!rendered.ok()) {
        next.attempt = n.attempt;
        next.state = NodeState::kErrored;
        next.reason = "InvalidTemplate";
        next.message = std::string(rendered.status().message());
        next.finished_at = r.now;
        r.Event("Warning", "Errored", fmt::format("{}: {}", n.node, next.message));
        attempts.push_back(std::move(a));
        continue;
      }
      // Cache key: the job as rendered with a fixed outputs placeholder and
      // upstream artifacts by digest, the code snapshot and the declared
      // outputs, so identical work in another run of the project hits.
      const bool cache_on = r.run.cache_enabled && step.cache.enabled && s != cs.exit;
      next.cache_key.clear();
      if (cache_on) {
        spec::TemplateContext kctx = ctx;
        kctx.outputs_dir = "{{outputs}}";
        kctx.step_artifacts = &r.digests;
        auto keyed = spec::RenderStepJob(step, kctx, field);
        if (keyed.ok()) {
          std::string text;
          JsonWriter w(&text);
          w.BeginObject().Key("job");
          keyed->name = step.name;
          keyed->project.clear();
          keyed->pipeline.reset();
          spec::WriteJobSpec(w, *keyed);
          w.Field("code", r.run.code);
          w.Key("parameters").BeginArray();
          for (const std::string& p : step.output_parameters) w.String(p);
          w.EndArray().Key("artifacts").BeginArray();
          for (const std::string& p : step.output_artifacts) w.String(p);
          w.EndArray().EndObject();
          next.cache_key = Sha256Hex(text);
          a.try_cache = true;
        }
      }
      spec::JobSpec js = std::move(*rendered);
      js.project = r.run.project;
      js.pipeline = spec::JobSpec::PipelineContext{r.run.id, n.node, outputs_dir};
      js.name = StepJobName(r.run.pipeline, r.run.id, n.node, next.attempt, "");
      JobRecord job;
      job.project = r.run.project;
      job.project_id = r.run.project_id;
      job.created_by = r.run.created_by;
      job.created_by_id = r.run.created_by_id;
      job.spec = std::move(js);
      job.code = r.run.code;
      job.created_at = r.now;
      a.job = std::move(job);
      next.state = NodeState::kRunning;
      next.reason = "Started";
      next.message.clear();
      next.not_before = 0;
      next.started_at = r.now;
      next.finished_at = 0;
      next.parameters.clear();
      next.artifacts.clear();
      attempts.push_back(std::move(a));
    }
  }
  for (size_t begin = 0; begin < attempts.size(); begin += kDispatchChunk) {
    const size_t end = std::min(attempts.size(), begin + kDispatchChunk);
    std::vector<Attempt> chunk(std::make_move_iterator(attempts.begin() + begin),
                               std::make_move_iterator(attempts.begin() + end));
    size_t started = 0, hits = 0;
    Status st = write([&](Tx& tx) -> Status {
      started = hits = 0;
      ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT state, cancel_requested FROM pipeline_runs "
                                              "WHERE id = ?",
                                              {r.run.id}));
      if (rs.empty() || AsText(rs.rows[0][0]) != "running") return Stale("run is not running");
      const bool cancel = AsInt(rs.rows[0][1]) != 0;
      for (Attempt& a : chunk) {
        const NodeRecord& before = r.nodes[a.index];
        const bool exit_handler = cs.index.at(before.step) == cs.exit;
        if (cancel && !exit_handler) return Stale("run cancelled");
        NodeRecord& next = a.next;
        if (a.job && a.try_cache) {
          ASSIGN_OR_RETURN(ResultSet hit,
                           tx.Query("SELECT run_id, node, outputs, created_at FROM pipeline_cache "
                                    "WHERE project_id = ? AND cache_key = ?",
                                    {r.run.project_id, next.cache_key}));
          const spec::StepSpec& step = *cs.steps[cs.index.at(before.step)];
          bool usable = !hit.empty();
          if (usable && step.cache.max_age_seconds &&
              r.now - AsInt(hit.rows[0][3]) > *step.cache.max_age_seconds * kMicros) {
            usable = false;
          }
          std::map<std::string, std::string> params;
          std::map<std::string, ArtifactRef> arts;
          if (usable && !DecodeNodeOutputs(AsText(hit.rows[0][2]), &params, &arts).ok()) usable = false;
          for (const auto& [name, ref] : arts) {
            std::error_code ec;
            if (usable && !fs::exists(ref.path, ec)) usable = false;  // its files are gone
          }
          if (usable) {
            next.state = NodeState::kSucceeded;
            next.attempt = before.attempt;
            next.reason = "Cached";
            next.cached = true;
            next.cache_source = fmt::format("{}/{}", AsText(hit.rows[0][0]), AsText(hit.rows[0][1]));
            next.message = fmt::format("reused the result of {}", next.cache_source);
            next.parameters = std::move(params);
            next.artifacts = std::move(arts);
            next.finished_at = r.now;
            a.job.reset();
            hits += 1;
            if (before.item < 0) {
              r.Event("Normal", "Cached", fmt::format("{}: {}", before.node, next.message));
            }
          }
        }
        if (a.job) {
          // A name left by an earlier life of this node (a retried run) or
          // one too close to another node's: make it unique.
          ASSIGN_OR_RETURN(ResultSet taken, tx.Query("SELECT 1 FROM jobs WHERE project_id = ? "
                                                     "AND name = ?",
                                                     {r.run.project_id, a.job->spec.name}));
          if (!taken.empty()) {
            a.job->spec.name = StepJobName(
                r.run.pipeline, r.run.id, before.node, next.attempt,
                fmt::format("{}/{}/{}/{}", r.run.id, before.node, r.run.retries, next.attempt));
          }
          auto inserted = InsertJob(
              tx, *a.job,
              fmt::format("step {} of pipeline run {} (attempt {})", before.node, r.run.id,
                          next.attempt));
          if (!inserted.ok() && inserted.status().code() == StatusCode::kInvalidArgument) {
            // The template names a queue that cannot take jobs: the node
            // errors rather than retrying forever.
            next.state = NodeState::kErrored;
            next.attempt = before.attempt;
            next.reason = "InvalidJob";
            next.message = std::string(inserted.status().message());
            next.started_at = before.started_at;
            next.finished_at = r.now;
            a.job.reset();
            r.Event("Warning", "Errored", fmt::format("{}: {}", before.node, next.message));
          } else {
            RETURN_IF_ERROR(inserted.status());
            next.job_id = inserted->id;
            next.job_name = inserted->spec.name;
            started += 1;
            if (before.item < 0) {
              r.Event("Normal", "Started",
                      fmt::format("{}: attempt {} as job {}", before.node, next.attempt, next.job_name));
            }
          }
        }
        ASSIGN_OR_RETURN(bool ok, UpdateNode(tx, r.run.id, next, NodeState::kPending, before.attempt));
        if (!ok) return Stale(fmt::format("node {} changed", before.node));
      }
      return OkStatus();
    });
    if (IsStale(st)) break;
    RETURN_IF_ERROR(st);
    for (Attempt& a : chunk) r.nodes[a.index] = std::move(a.next);
    if (started > 0) poke_jobs = true;
    if (nodes_started != nullptr) nodes_started->Increment(static_cast<double>(started));
    if (cache_hits != nullptr) cache_hits->Increment(static_cast<double>(hits));
  }
  if (poke_jobs && options.poke_jobs) options.poke_jobs();

  // 6. Settle: every reached node terminal and nothing left to reach.
  bool done = r.run.cancel_requested || all_settled;
  for (const NodeRecord& n : r.nodes) done = done && IsTerminal(n.state);
  if (cs.exit != SIZE_MAX && r.by_step[cs.exit].empty()) done = false;
  if (!done) return OkStatus();
  RunState state = RunState::kSucceeded;
  std::string reason = "Succeeded", message;
  std::vector<std::string> failed;
  size_t succeeded = 0, cached = 0;
  bool exit_failed = false;
  for (const NodeRecord& n : r.nodes) {
    const size_t s = cs.index.at(n.step);
    if (n.state == NodeState::kSucceeded) succeeded += 1;
    if (n.cached) cached += 1;
    const bool bad = n.state == NodeState::kFailed || n.state == NodeState::kErrored ||
                     (n.state == NodeState::kCancelled && !r.run.cancel_requested);
    if (!bad) continue;
    if (s == cs.exit) {
      exit_failed = true;
    } else if (!cs.steps[s]->optional) {
      failed.push_back(n.node);
    }
  }
  if (r.run.cancel_requested) {
    state = RunState::kCancelled;
    reason = "Cancelled";
    message = "cancelled on request";
  } else if (!failed.empty()) {
    state = RunState::kFailed;
    reason = "StepFailed";
    std::string names;
    for (size_t k = 0; k < failed.size() && k < 5; ++k) names += (k ? ", " : "") + failed[k];
    message = fmt::format("{} node{} failed: {}{}", failed.size(), failed.size() == 1 ? "" : "s",
                          names, failed.size() > 5 ? ", …" : "");
  } else if (exit_failed) {
    state = RunState::kFailed;
    reason = "ExitHandlerFailed";
    message = fmt::format("the exit handler {} failed", cs.spec.on_exit->name);
  } else {
    message = fmt::format("{} nodes succeeded ({} from the cache)", succeeded, cached);
  }
  r.Event(state == RunState::kSucceeded ? "Normal" : "Warning", reason, message);
  RETURN_IF_ERROR(write([&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(int64_t n,
                     tx.Exec("UPDATE pipeline_runs SET state = ?, reason = ?, message = ?, "
                             "finished_at = ? WHERE id = ? AND state = 'running'",
                             {std::string(RunStateName(state)), reason, message, r.now, r.run.id}));
    if (n == 0) return Stale("run left running");
    return OkStatus();
  }));
  LOG_INFO("pipeline run {} ({}/{}): {} ({})", r.run.id, r.run.project, r.run.pipeline,
           RunStateName(state), message);
  return OkStatus();
}

// ---------------------------------------------------------------- PipelineController

PipelineController::PipelineController(store::Store& store, tenancy::TenancyService& tenancy,
                                       const Clock& clock, PipelineControllerOptions options,
                                       MetricsRegistry* metrics)
    : impl_(std::make_unique<Impl>(store, tenancy, clock, std::move(options), metrics)) {}

PipelineController::~PipelineController() { Stop(); }

void PipelineController::Start() {
  impl_->thread = std::thread([this] {
    std::unique_lock<std::mutex> lock(impl_->mu);
    while (!impl_->stop) {
      impl_->poked = false;
      lock.unlock();
      if (Status st = impl_->Pass(); !st.ok()) LOG_WARN("pipeline controller pass: {}", st.ToString());
      lock.lock();
      if (impl_->stop) break;
      if (!impl_->poked) {
        impl_->cv.wait_for(lock, std::chrono::milliseconds(impl_->options.resync_interval_ms),
                           [this] { return impl_->stop || impl_->poked; });
      }
    }
  });
}

void PipelineController::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void PipelineController::Poke() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->poked = true;
  }
  impl_->cv.notify_all();
}

Status PipelineController::RunPass() { return impl_->Pass(); }

}  // namespace lathe::control
