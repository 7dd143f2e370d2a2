#include "serving/model_manager.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "base/log.h"
#include "serving/warmup.h"

namespace lathe::serving {

namespace fs = std::filesystem;

namespace {

uint64_t Fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Whether a request goes to the canary: a hash of its id when it has one,
// else the next value of a per-thread sequence.
bool ToCanary(std::string_view id, int64_t weight_percent) {
  if (weight_percent <= 0) return false;
  if (weight_percent >= 100) return true;
  uint64_t h;
  if (!id.empty()) {
    h = Mix(Fnv1a(id));
  } else {
    thread_local uint64_t state =
        Mix(static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
            std::hash<std::thread::id>()(std::this_thread::get_id()));
    state += 0x9e3779b97f4a7c15ull;
    h = Mix(state);
  }
  return static_cast<int64_t>(h % 100) < weight_percent;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// What a load of `dir` with this config depends on: the config text and
// every file's path, size and modification time. A change reloads it.
std::string VersionFingerprint(std::string_view config_text, const std::string& dir) {
  std::vector<std::string> lines;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code e;
    std::string line = it->path().string().substr(std::min(dir.size(), it->path().string().size()));
    if (it->is_regular_file(e)) {
      line += fmt::format("|{}|{}", it->file_size(e),
                          static_cast<int64_t>(it->last_write_time(e).time_since_epoch().count()));
    }
    lines.push_back(std::move(line));
  }
  if (ec) lines.push_back("error: " + ec.message());
  std::sort(lines.begin(), lines.end());
  uint64_t h = Fnv1a(config_text);
  for (const std::string& l : lines) h = Fnv1a(l, Fnv1a("\n", h));
  return fmt::format("{:016x}", h);
}

// Runs fn(i) for i in [0, n) on up to `threads` threads.
void ParallelFor(size_t n, int threads, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  const size_t t = std::clamp<size_t>(static_cast<size_t>(std::max(threads, 1)), 1, n);
  if (t == 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  pool.reserve(t);
  for (size_t k = 0; k < t; ++k) {
    pool.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < n;) fn(i);
    });
  }
  for (std::thread& th : pool) th.join();
}

}  // namespace

std::string_view VersionStateName(VersionState state) {
  switch (state) {
    case VersionState::kLoading:
      return "LOADING";
    case VersionState::kReady:
      return "READY";
    case VersionState::kUnavailable:
      return "UNAVAILABLE";
    case VersionState::kUnloading:
      return "UNLOADING";
  }
  return "UNKNOWN";
}

struct ModelManager::Snapshot {
  struct Route {
    std::shared_ptr<const ModelConfig> config;
    std::vector<std::shared_ptr<const ModelVersion>> ready;  // ascending
    std::shared_ptr<const ModelVersion> default_version;
    std::shared_ptr<const ModelVersion> canary;  // null = no split
    int64_t canary_weight = 0;

    const std::shared_ptr<const ModelVersion>* Find(int64_t v) const {
      for (const auto& r : ready) {
        if (r->version == v) return &r;
      }
      return nullptr;
    }
  };
  std::map<std::string, Route, std::less<>> models;
};

struct ModelManager::LoadJob {
  std::string model;
  int64_t version = 0;
  std::string dir;
  std::shared_ptr<const ModelConfig> config;
  std::string fingerprint;
  // Results.
  std::shared_ptr<const ModelVersion> loaded;
  Status status;
};

ModelManager::ModelManager(ModelManagerOptions options)
    : options_(std::move(options)),
      metrics_(options_.metrics != nullptr ? *options_.metrics : DefaultServingMetrics()) {
  Store(std::make_shared<const Snapshot>());
}

StatusOr<std::unique_ptr<ModelManager>> ModelManager::Create(ModelManagerOptions options) {
  if (!options.loader) {
    return InvalidArgumentError("ModelManagerOptions.loader is required", "loader");
  }
  // Fail early when the repository itself cannot be read.
  ASSIGN_OR_RETURN(RepositoryScan scan, ScanRepository(options.repository, options.limits));
  for (const std::string& w : scan.warnings) LOG_WARN("model repository: {}", w);
  std::unique_ptr<ModelManager> m(new ModelManager(std::move(options)));
  if (m->options_.mode == ModelControlMode::kExplicit) {
    for (const std::string& name : m->options_.startup_models) RETURN_IF_ERROR(m->Load(name));
  } else {
    Status s = m->Poll();
    if (!s.ok()) LOG_WARN("model repository {}: {}", m->options_.repository, s.ToString());
  }
  if (m->options_.mode == ModelControlMode::kPoll) {
    m->poller_ = std::thread([raw = m.get()] { raw->PollLoop(); });
  }
  return m;
}

ModelManager::~ModelManager() {
  {
    std::lock_guard<std::mutex> lock(poll_mu_);
    stop_ = true;
  }
  poll_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
  std::lock_guard<std::mutex> control(control_mu_);
  std::vector<std::shared_ptr<const ModelVersion>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, rec] : models_) {
      for (auto& [v, vr] : rec.versions) {
        if (vr.serving) all.push_back(std::move(vr.serving));
      }
    }
    models_.clear();
    Store(std::make_shared<const Snapshot>());
  }
  for (const auto& v : all) v->batcher->Drain();
}

void ModelManager::PollLoop() {
  std::unique_lock<std::mutex> lock(poll_mu_);
  while (true) {
    poll_cv_.wait_for(lock,
                      std::chrono::milliseconds(std::max<int64_t>(options_.poll_interval_ms, 1)),
                      [this] { return stop_; });
    if (stop_) return;
    lock.unlock();
    Status s = Poll();
    if (!s.ok()) LOG_WARN("model repository poll: {}", s.ToString());
    lock.lock();
  }
}

Status ModelManager::Poll() {
  std::lock_guard<std::mutex> control(control_mu_);
  ASSIGN_OR_RETURN(RepositoryScan scan, ScanRepository(options_.repository, options_.limits));
  std::vector<ModelEntry> entries;
  std::vector<std::string> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (ModelEntry& e : scan.models) {
      // In explicit mode a rescan only refreshes what was loaded on request.
      if (options_.mode == ModelControlMode::kExplicit) {
        auto it = models_.find(e.name);
        if (it == models_.end() || it->second.versions.empty()) continue;
      }
      entries.push_back(std::move(e));
    }
    for (const auto& [name, rec] : models_) {
      bool present = std::any_of(entries.begin(), entries.end(),
                                 [&](const ModelEntry& e) { return e.name == name; });
      if (!present && !rec.versions.empty()) gone.push_back(name);
    }
  }
  return Sync(entries, gone, /*retry_failed=*/false);
}

Status ModelManager::Load(const std::string& model) {
  if (options_.mode != ModelControlMode::kExplicit) {
    return FailedPreconditionError(fmt::format(
        "the model control mode is {}: models are loaded and unloaded on request only in "
        "explicit mode (--model-control-mode explicit)",
        ModelControlModeName(options_.mode)));
  }
  std::lock_guard<std::mutex> control(control_mu_);
  ASSIGN_OR_RETURN(RepositoryScan scan, ScanRepository(options_.repository, options_.limits));
  for (ModelEntry& e : scan.models) {
    if (e.name != model) continue;
    std::vector<ModelEntry> one;
    one.push_back(std::move(e));
    return Sync(one, {}, /*retry_failed=*/true);
  }
  return NotFoundError(
      fmt::format("model \"{}\": no such model directory in {}", model, options_.repository));
}

Status ModelManager::Unload(const std::string& model) {
  if (options_.mode != ModelControlMode::kExplicit) {
    return FailedPreconditionError(fmt::format(
        "the model control mode is {}: models are loaded and unloaded on request only in "
        "explicit mode (--model-control-mode explicit)",
        ModelControlModeName(options_.mode)));
  }
  std::lock_guard<std::mutex> control(control_mu_);
  std::vector<std::shared_ptr<const ModelVersion>> drain;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(model);
    if (it == models_.end() || it->second.versions.empty()) {
      return NotFoundError(fmt::format("model \"{}\" is not loaded", model));
    }
    for (auto& [v, vr] : it->second.versions) {
      vr.state = VersionState::kUnloading;
      vr.reason.clear();
      if (vr.serving) drain.push_back(std::move(vr.serving));
    }
    it->second.status = UnavailableError("unloaded");
    PublishLocked();
  }
  for (const auto& v : drain) v->batcher->Drain();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(model);
  if (it != models_.end()) it->second.versions.clear();
  LOG_INFO("model \"{}\" unloaded", model);
  return OkStatus();
}

Status ModelManager::Sync(const std::vector<ModelEntry>& entries,
                          const std::vector<std::string>& gone, bool retry_failed) {
  // File system reads first, without the state lock.
  struct Plan {
    const ModelEntry* entry;
    std::shared_ptr<const ModelConfig> config;
    std::vector<std::string> fingerprints;  // per entry->versions
  };
  std::vector<Plan> plans;
  for (const ModelEntry& e : entries) {
    Plan p{&e, nullptr, {}};
    if (e.status.ok()) {
      p.config = std::make_shared<const ModelConfig>(e.config);
      const std::string text = ReadText(e.path + "/" + std::string(kConfigFileName));
      for (int64_t v : e.versions) {
        p.fingerprints.push_back(VersionFingerprint(text, e.path + "/" + std::to_string(v)));
      }
    }
    plans.push_back(std::move(p));
  }

  // Decide what to load and mark it LOADING.
  std::vector<LoadJob> jobs;
  std::set<std::string> report;  // models whose config error is news
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Plan& p : plans) {
      const ModelEntry& e = *p.entry;
      ModelRecord& rec = models_[e.name];
      rec.path = e.path;
      if (!e.status.ok() && (retry_failed || !(rec.status == e.status))) report.insert(e.name);
      rec.status = e.status;
      if (!e.status.ok()) continue;  // whatever serves keeps serving
      for (size_t i = 0; i < e.versions.size(); ++i) {
        const int64_t v = e.versions[i];
        VersionRecord& vr = rec.versions[v];
        const std::string& fp = p.fingerprints[i];
        if (vr.serving && vr.fingerprint == fp) continue;
        if (!retry_failed && vr.failed_fingerprint == fp) continue;
        jobs.push_back(LoadJob{e.name, v, e.path + "/" + std::to_string(v), p.config, fp, {}, {}});
        if (vr.serving) {
          vr.reason = "reloading: the new load serves once it is ready";
        } else {
          vr.state = VersionState::kLoading;
          vr.reason.clear();
        }
      }
    }
  }

  RunLoads(&jobs);

  // Apply: one snapshot with every change, then drain what it replaced.
  Status first_error;
  std::vector<std::shared_ptr<const ModelVersion>> drain;
  std::vector<std::pair<std::string, int64_t>> unloading;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (LoadJob& job : jobs) {
      VersionRecord& vr = models_[job.model].versions[job.version];
      if (job.status.ok()) {
        if (vr.serving) drain.push_back(std::move(vr.serving));
        vr.serving = std::move(job.loaded);
        vr.state = VersionState::kReady;
        vr.reason.clear();
        vr.fingerprint = job.fingerprint;
        vr.failed_fingerprint.clear();
        LOG_INFO("model \"{}\" version {} READY", job.model, job.version);
        continue;
      }
      if (first_error.ok()) first_error = job.status;
      vr.failed_fingerprint = job.fingerprint;
      if (vr.serving) {
        vr.reason = fmt::format("a reload failed; the previous load keeps serving: {}",
                                job.status.message());
      } else {
        vr.state = VersionState::kUnavailable;
        vr.reason = job.status.message();
      }
      LOG_WARN("{}", job.status.ToString());
    }
    for (const Plan& p : plans) {
      const ModelEntry& e = *p.entry;
      ModelRecord& rec = models_[e.name];
      if (!e.status.ok()) {
        if (first_error.ok() && report.contains(e.name)) first_error = e.status;
        continue;
      }
      // Whether every version the policy selects serves (now or since an
      // earlier sync: a failure is not retried by every poll).
      bool all_loaded = true;
      for (int64_t v : e.versions) {
        auto it = rec.versions.find(v);
        if (it == rec.versions.end() || !it->second.serving) all_loaded = false;
      }
      if (all_loaded || !rec.config) rec.config = p.config;
      // Versions the policy no longer selects (or whose directory went)
      // go, unless a failed load means the model would lose what serves.
      for (auto it = rec.versions.begin(); it != rec.versions.end();) {
        const int64_t v = it->first;
        VersionRecord& vr = it->second;
        if (std::binary_search(e.versions.begin(), e.versions.end(), v)) {
          ++it;
          continue;
        }
        if (!vr.serving) {
          it = rec.versions.erase(it);
          continue;
        }
        if (!all_loaded) {
          vr.reason =
              "no longer selected by the version policy; kept serving while a newer "
              "version fails to load";
          ++it;
          continue;
        }
        vr.state = VersionState::kUnloading;
        vr.reason.clear();
        drain.push_back(std::move(vr.serving));
        unloading.emplace_back(e.name, v);
        ++it;
      }
    }
    for (const std::string& name : gone) {
      auto it = models_.find(name);
      if (it == models_.end()) continue;
      for (auto& [v, vr] : it->second.versions) {
        vr.state = VersionState::kUnloading;
        vr.reason = "the model directory was removed";
        if (vr.serving) drain.push_back(std::move(vr.serving));
        unloading.emplace_back(name, v);
      }
    }
    PublishLocked();
  }

  for (const auto& v : drain) v->batcher->Drain();
  if (!unloading.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, v] : unloading) {
      auto it = models_.find(name);
      if (it == models_.end()) continue;
      auto vit = it->second.versions.find(v);
      if (vit != it->second.versions.end() && vit->second.state == VersionState::kUnloading) {
        it->second.versions.erase(vit);
        LOG_INFO("model \"{}\" version {} unloaded", name, v);
      }
    }
    for (const std::string& name : gone) {
      auto it = models_.find(name);
      if (it != models_.end() && it->second.versions.empty()) models_.erase(it);
    }
  }
  return first_error;
}

void ModelManager::RunLoads(std::vector<LoadJob>* jobs) {
  ParallelFor(jobs->size(), options_.load_threads, [&](size_t i) {
    LoadJob& job = (*jobs)[i];
    const ModelConfig& config = *job.config;
    const std::string where = fmt::format("model \"{}\" version {}", job.model, job.version);
    std::vector<std::unique_ptr<ModelInstance>> instances;
    for (int k = 0; k < static_cast<int>(std::max<int64_t>(config.instances.count, 1)); ++k) {
      StatusOr<std::unique_ptr<ModelInstance>> inst = options_.loader(config, job.dir, k);
      if (!inst.ok()) {
        job.status = inst.status().WithPrefix(fmt::format("{}: loading instance {}", where, k));
        return;
      }
      if (*inst == nullptr) {
        job.status = InternalError(fmt::format("{}: the loader returned no instance", where));
        return;
      }
      Status warm = RunWarmup(config, **inst);
      if (!warm.ok()) {
        job.status = warm.WithPrefix(fmt::format("{}: instance {}", where, k));
        return;
      }
      instances.push_back(*std::move(inst));
    }
    auto loaded = std::make_shared<ModelVersion>();
    loaded->model = job.model;
    loaded->version = job.version;
    loaded->config = job.config;
    loaded->batcher = std::make_unique<DynamicBatcher>(
        job.config, job.version, std::move(instances),
        BatcherOptions{.metrics = &metrics_, .overload = options_.overload});
    job.loaded = std::move(loaded);
  });
}

void ModelManager::PublishLocked() {
  auto next = std::make_shared<Snapshot>();
  for (const auto& [name, rec] : models_) {
    Snapshot::Route route;
    for (const auto& [v, vr] : rec.versions) {
      if (vr.serving) route.ready.push_back(vr.serving);
    }
    if (route.ready.empty()) continue;
    route.config = rec.config ? rec.config : route.ready.back()->config;
    const ModelConfig& c = *route.config;
    if (c.canary && c.canary->weight_percent > 0) {
      int64_t target = c.canary->version;
      if (!c.canary->label.empty()) {
        auto l = c.labels.find(c.canary->label);
        target = l != c.labels.end() ? l->second : 0;
      }
      if (const auto* t = route.Find(target)) {
        route.canary = *t;
        route.canary_weight = c.canary->weight_percent;
      }
    }
    for (auto it = route.ready.rbegin(); it != route.ready.rend(); ++it) {
      if (*it != route.canary) {
        route.default_version = *it;
        break;
      }
    }
    if (!route.default_version) {
      // Only the canary target is ready: it takes everything.
      route.default_version = route.canary;
      route.canary = nullptr;
    }
    next->models.emplace(name, std::move(route));
  }
  Store(std::move(next));
}

StatusOr<std::shared_ptr<const ModelVersion>> ModelManager::Resolve(
    std::string_view model, const VersionSelector& selector, std::string_view request_id) const {
  const std::shared_ptr<const Snapshot> snap = Current();
  auto it = snap->models.find(model);
  // Why a version is not ready, from the records (the slow path).
  auto not_ready = [&](int64_t version) -> Status {
    std::lock_guard<std::mutex> lock(mu_);
    auto m = models_.find(model);
    if (m == models_.end()) return NotFoundError(fmt::format("unknown model \"{}\"", model));
    if (version == 0) {
      std::string why = m->second.status.ok() ? "no version is ready" : m->second.status.message();
      for (const auto& [v, vr] : m->second.versions) {
        why += fmt::format("; version {}: {}{}{}", v, VersionStateName(vr.state),
                           vr.reason.empty() ? "" : ": ", vr.reason);
      }
      return UnavailableError(fmt::format("model \"{}\" is not ready: {}", model, why));
    }
    auto v = m->second.versions.find(version);
    if (v == m->second.versions.end()) {
      return NotFoundError(fmt::format("model \"{}\" has no version {}", model, version));
    }
    return UnavailableError(fmt::format("model \"{}\" version {} is {}{}{}", model, version,
                                        VersionStateName(v->second.state),
                                        v->second.reason.empty() ? "" : ": ", v->second.reason));
  };
  if (it == snap->models.end()) return not_ready(0);
  const Snapshot::Route& route = it->second;
  int64_t want = selector.version;
  if (!selector.label.empty()) {
    auto l = route.config->labels.find(selector.label);
    if (l == route.config->labels.end()) {
      std::vector<std::string> names;
      for (const auto& [label, v] : route.config->labels) names.push_back(label);
      return NotFoundError(
          fmt::format("model \"{}\" has no label \"{}\" (its labels: {})", model, selector.label,
                      names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
    }
    want = l->second;
  }
  if (want > 0) {
    if (const auto* v = route.Find(want)) return *v;
    return not_ready(want);
  }
  if (route.canary && ToCanary(request_id, route.canary_weight)) return route.canary;
  return route.default_version;
}

void ModelManager::Infer(std::string_view model, const VersionSelector& selector,
                         InferRequest request, InferDone done, RequestContext context) {
  // A version being swapped out refuses (TrySubmit false) once it drains;
  // the next snapshot no longer routes to it.
  for (int attempt = 0; attempt < 3; ++attempt) {
    StatusOr<std::shared_ptr<const ModelVersion>> v = Resolve(model, selector, request.id);
    if (!v.ok()) {
      done(v.status());
      return;
    }
    if ((*v)->batcher->TrySubmit(request, done, context)) return;
    std::this_thread::yield();
  }
  done(UnavailableError(fmt::format("model \"{}\" is unloading", model)));
}

std::vector<ModelIndexEntry> ModelManager::Index(bool ready_only) const {
  std::vector<ModelIndexEntry> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, rec] : models_) {
    if (rec.versions.empty()) {
      if (!ready_only) {
        out.push_back({name, "", VersionState::kUnavailable,
                       rec.status.ok() ? "no version loaded" : rec.status.message()});
      }
      continue;
    }
    for (const auto& [v, vr] : rec.versions) {
      if (ready_only && vr.state != VersionState::kReady) continue;
      std::string reason = vr.reason;
      if (!rec.status.ok() && reason.empty()) {
        reason = fmt::format("the repository's model no longer loads; {}: {}",
                             vr.serving ? "the previous load keeps serving" : "not loaded",
                             rec.status.message());
      }
      out.push_back({name, std::to_string(v), vr.state, std::move(reason)});
    }
  }
  return out;
}

bool ModelManager::IsReady(std::string_view model, int64_t version) const {
  const std::shared_ptr<const Snapshot> snap = Current();
  auto it = snap->models.find(model);
  if (it == snap->models.end()) return false;
  return version == 0 || it->second.Find(version) != nullptr;
}

std::vector<int64_t> ModelManager::ReadyVersions(std::string_view model) const {
  const std::shared_ptr<const Snapshot> snap = Current();
  std::vector<int64_t> out;
  auto it = snap->models.find(model);
  if (it == snap->models.end()) return out;
  for (const auto& v : it->second.ready) out.push_back(v->version);
  return out;
}

StatusOr<std::vector<ModelStatistics>> ModelManager::Statistics(std::string_view model,
                                                                int64_t version) const {
  const std::shared_ptr<const Snapshot> snap = Current();
  std::vector<ModelStatistics> out;
  for (const auto& [name, route] : snap->models) {
    if (!model.empty() && name != model) continue;
    for (const auto& v : route.ready) {
      if (version != 0 && v->version != version) continue;
      out.push_back(v->batcher->Statistics());
    }
  }
  if (out.empty() && !model.empty()) {
    return NotFoundError(version == 0
                             ? fmt::format("model \"{}\" is not ready", model)
                             : fmt::format("model \"{}\" version {} is not ready", model, version));
  }
  return out;
}

}  // namespace lathe::serving
