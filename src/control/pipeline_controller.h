// The pipeline controller: a level-triggered reconcile loop over active
// pipeline runs (DESIGN.md "Desired state in the store, controllers
// reconcile"), beside the JobController that runs the step jobs.
//
// Each pass, for every active run (oldest first): load the pinned version
// and the nodes; for every step whose upstream steps are terminal, evaluate
// `depends` (false → omitted) and `when` (false → skipped), resolve
// `for_each` items, render the job template, compute the cache key and
// either reuse a cached result or insert the step's job and the node's
// attempt in one transaction; observe running nodes' jobs and, when one
// ends, read its outputs (<outputs_dir>/parameters/NAME,
// <outputs_dir>/artifacts/NAME), digest its artifacts, record the cache
// entry, or schedule a retry with backoff; honour cancellation (cancel the
// jobs, then the exit handler); finally settle the run's state.
// Every write is compare-and-set on stored state, so a server killed at any
// point and restarted continues each run without starting a step twice.
//
// Cache key (docs/pipelines.md "Caching"): sha256 over the canonical JSON
// of the rendered job spec (command, args, env, resources, …), the step's
// input values (params and upstream output values it references), the
// digests of the upstream artifacts it references, the code snapshot digest
// and the step's declared outputs. Scope: the project. A hit older than the
// step's cache.max_age is ignored. A run with cache off neither reads nor
// writes entries.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/metrics.h"
#include "base/status.h"
#include "control/pipelines.h"
#include "store/store.h"
#include "tenancy/tenancy.h"

namespace lathe::control {

struct PipelineControllerOptions {
  // $LATHE_HOME/pipelines: <run id>/<node>/<attempt>/{parameters,artifacts}.
  std::string data_root;
  int64_t resync_interval_ms = 200;   // a pass at least this often
  size_t max_fan_out = 10'000;        // items of one for_each step
  int64_t max_output_bytes = 1 << 20; // one output parameter file
  // Called after step jobs were inserted or cancelled (JobController::Poke).
  std::function<void()> poke_jobs;
};

class PipelineController {
 public:
  PipelineController(store::Store& store, tenancy::TenancyService& tenancy, const Clock& clock,
                     PipelineControllerOptions options, MetricsRegistry* metrics = nullptr);
  ~PipelineController();

  void Start();  // passes on a thread until Stop()
  void Stop();
  void Poke();   // a pass soon (run started, job ended, cancel)
  Status RunPass();  // one pass, synchronously (tests; what the thread runs)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe::control
