// Pipelines, their versions and runs as stored records, and the service the
// API calls (desired state in the store; PipelineController in
// pipeline_controller.h acts on it). docs/pipelines.md is the user's guide.
//
// A pipeline has versions 1, 2, … (a new version only when the spec or the
// code digest changed); a run is pinned to the version it started with.
// A run's nodes are the steps it has reached: one node per step, or one per
// item of a `for_each` step ("train[3]"). Node states:
//   pending → running → succeeded | failed | errored
//   skipped (its `when` was false), omitted (its `depends` was false),
//   cancelled (the run was cancelled first)
// A node's attempts are jobs named "<run-prefix>-<node>-<attempt>" and
// inserted in the same transaction that records the node's attempt, so a
// crash never starts an attempt twice. Cache hits are nodes that succeeded
// without a job (`cached`, with the run and node they reused).
//
// A run's terminal state (documented in docs/pipelines.md "Run states"):
// cancelled when cancel was asked; otherwise failed when any non-optional
// node failed or errored — whatever the leaves say — or the exit handler
// failed; otherwise succeeded.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/json.h"
#include "base/status.h"
#include "spec/pipeline_spec.h"
#include "store/store.h"
#include "tenancy/tenancy.h"

namespace lathe::control {

enum class RunState { kPending, kRunning, kSucceeded, kFailed, kCancelled };
std::string_view RunStateName(RunState s);  // "pending", "running", …
StatusOr<RunState> ParseRunState(std::string_view s, std::string_view field = "state");
bool IsTerminal(RunState s);

enum class NodeState {
  kPending, kRunning, kSucceeded, kFailed, kErrored, kSkipped, kOmitted, kCancelled
};
std::string_view NodeStateName(NodeState s);  // "pending", …, "cancelled"
StatusOr<NodeState> ParseNodeState(std::string_view s);
bool IsTerminal(NodeState s);

struct PipelineRecord {
  std::string id;
  std::string project;
  std::string project_id;
  std::string name;
  std::string description;
  int64_t latest_version = 0;
  std::string created_by;
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

struct PipelineVersionRecord {
  std::string pipeline_id;
  std::string pipeline;  // name
  int64_t version = 0;
  spec::PipelineSpec spec;
  std::string digest;  // sha256 of the canonical spec JSON and the code digest
  std::string code;    // code snapshot digest, "" = none
  std::string created_by;
  int64_t created_at = 0;
};

// One output artifact of a node: where it is and the sha256 of its content
// (a file, or a directory tree: names and contents in sorted order).
struct ArtifactRef {
  std::string path;
  std::string digest;
};

struct NodeRecord {
  std::string node;  // "train" or "train[3]"
  std::string step;
  int item = -1;     // fan-out item index, -1 = none
  NodeState state = NodeState::kPending;
  std::string reason;   // "Completed", "Cached", "WhenFalse", "UpstreamFailed", …
  std::string message;
  int attempt = 0;      // attempts started (0 = none yet)
  std::string job_id;   // the current attempt's job, "" = none
  std::string job_name;
  std::map<std::string, std::string> parameters;   // output values
  std::map<std::string, ArtifactRef> artifacts;    // output artifacts
  bool cached = false;
  std::string cache_key;     // "" = caching off for this node
  std::string cache_source;  // "<run id>/<node>" reused on a hit
  int64_t not_before = 0;    // retry backoff (µs)
  int64_t created_at = 0;
  int64_t started_at = 0;
  int64_t finished_at = 0;
};

struct RunEvent {
  int64_t seq = 0;
  int64_t time = 0;
  std::string type;  // "Normal" | "Warning"
  std::string reason;
  std::string message;
};

struct RunRecord {
  std::string id;
  std::string project;
  std::string project_id;
  std::string pipeline_id;
  std::string pipeline;
  int64_t version = 0;
  JsonValue params;  // resolved: one member per declared param
  RunState state = RunState::kPending;
  std::string reason;
  std::string message;
  std::string created_by;
  std::string created_by_id;
  std::string code;           // pinned with the version
  bool cache_enabled = true;  // a run may turn caching off for all its steps
  bool cancel_requested = false;
  int retries = 0;            // times `retry` resumed it
  std::string schedule_id;    // "" unless a schedule created it
  int64_t scheduled_time = 0;
  int64_t created_at = 0;
  int64_t started_at = 0;
  int64_t finished_at = 0;
  std::vector<NodeRecord> nodes;  // filled by GetRun / LoadRun
};

struct RunFilter {
  std::string project;                 // required
  std::string pipeline;                // "" = any
  std::optional<RunState> state;
  std::string schedule;                // schedule id, "" = any
};

struct StartRunRequest {
  std::string pipeline;                 // name
  std::optional<int64_t> version;       // absent = latest
  JsonValue params;                     // object (may be null = none given)
  bool coerce_strings = false;          // params from the command line
  std::optional<int64_t> sample;        // --sample N (sets params.sample)
  bool cache = true;                    // false: no step reads the cache
};

// The DAG for the UI: nodes with states and edges between steps.
struct RunGraph {
  struct Step {
    std::string name;
    NodeState state = NodeState::kPending;  // aggregate over its nodes
    int items = 0;                          // fan-out items (0 = plain step)
    bool exit_handler = false;
  };
  std::vector<Step> steps;                  // spec order, exit handler last
  std::vector<std::pair<std::string, std::string>> edges;  // upstream step -> step
  std::vector<NodeRecord> nodes;
};

class PipelineService {
 public:
  PipelineService(store::Store& store, tenancy::TenancyService& tenancy, const Clock& clock);

  // Creates the pipeline (version 1) or adds a version when the spec or the
  // code changed; an identical spec and code returns the existing latest
  // version with `created` false. Needs editor. The spec's project, when
  // set, must equal `project`.
  struct Created {
    PipelineVersionRecord version;
    bool created = false;
  };
  StatusOr<Created> Create(const tenancy::Principal& p, const std::string& project,
                           const JsonValue& spec, const std::string& code);
  StatusOr<PipelineRecord> Get(const tenancy::Principal& p, const std::string& project,
                               const std::string& name);
  StatusOr<tenancy::Page<PipelineRecord>> List(const tenancy::Principal& p,
                                               const std::string& project,
                                               const tenancy::PageRequest& page);
  StatusOr<PipelineVersionRecord> GetVersion(const tenancy::Principal& p,
                                             const std::string& project, const std::string& name,
                                             std::optional<int64_t> version);
  StatusOr<tenancy::Page<PipelineVersionRecord>> ListVersions(const tenancy::Principal& p,
                                                              const std::string& project,
                                                              const std::string& name,
                                                              const tenancy::PageRequest& page);
  // FAILED_PRECONDITION while a run of it is active or a schedule uses it.
  Status Remove(const tenancy::Principal& p, const std::string& project, const std::string& name);

  StatusOr<RunRecord> StartRun(const tenancy::Principal& p, const std::string& project,
                               const StartRunRequest& req);
  // By id; with its nodes.
  StatusOr<RunRecord> GetRun(const tenancy::Principal& p, const std::string& project,
                             const std::string& run_id);
  StatusOr<tenancy::Page<RunRecord>> ListRuns(const tenancy::Principal& p, const RunFilter& filter,
                                              const tenancy::PageRequest& page);
  StatusOr<std::vector<RunEvent>> RunEvents(const tenancy::Principal& p, const std::string& project,
                                            const std::string& run_id);
  StatusOr<RunGraph> Graph(const tenancy::Principal& p, const std::string& project,
                           const std::string& run_id);
  // Marks the run for cancellation; the controller kills running steps and
  // runs the exit handler. Terminal runs: FAILED_PRECONDITION.
  StatusOr<RunRecord> CancelRun(const tenancy::Principal& p, const std::string& project,
                                const std::string& run_id);
  // Resumes a failed or cancelled run from its failed steps: nodes that
  // succeeded (cache hits included) are kept with their outputs; every other
  // node is forgotten and reached again. The run goes back to running with
  // `retries` + 1. Non-terminal or succeeded runs: FAILED_PRECONDITION.
  StatusOr<RunRecord> RetryRun(const tenancy::Principal& p, const std::string& project,
                               const std::string& run_id);
  // Deletes a terminal run, its nodes and events (not its step jobs).
  Status RemoveRun(const tenancy::Principal& p, const std::string& project,
                   const std::string& run_id);

 private:
  store::Store& store_;
  tenancy::TenancyService& tenancy_;
  const Clock& clock_;
};

// ---- store helpers shared with the controllers (no authorization)

// What a new run needs; the schedule controller inserts runs with these.
struct NewRun {
  std::string project_id;
  std::string pipeline;                // name in the project
  std::optional<int64_t> version;      // absent = latest
  JsonValue params;                    // given params (validated here)
  bool coerce_strings = false;
  std::optional<int64_t> sample;       // sets params.sample (kSampleParam)
  bool cache = true;
  std::string created_by_id;
  std::string schedule_id;
  int64_t scheduled_time = 0;
};
// Validates params against the version (INVALID_ARGUMENT "params.x: …";
// "params.sample" when `sample` is given and the version declares no int
// param `sample`), inserts the run (pending) and its first event.
// NOT_FOUND (field "pipeline" / "version") when either does not exist.
StatusOr<RunRecord> InsertRun(store::Tx& tx, const NewRun& run, int64_t now_us);
// NOT_FOUND when there is no such run. Nodes ordered by creation, then id.
StatusOr<RunRecord> LoadRun(store::Tx& tx, const std::string& run_id, bool with_nodes);
// Every node of a run (one query), ordered as LoadRun orders them.
StatusOr<std::vector<NodeRecord>> LoadNodes(store::Tx& tx, const std::string& run_id);
// The `outputs` column of a node or cache entry:
// {"parameters": {NAME: VALUE}, "artifacts": {NAME: {"path", "digest"}}}.
std::string EncodeNodeOutputs(const std::map<std::string, std::string>& parameters,
                              const std::map<std::string, ArtifactRef>& artifacts);
Status DecodeNodeOutputs(std::string_view text, std::map<std::string, std::string>* parameters,
                         std::map<std::string, ArtifactRef>* artifacts);
// Active (non-terminal) run ids, oldest first.
StatusOr<std::vector<std::string>> ActiveRunIds(store::Tx& tx);
// As CancelRun / RetryRun without the checks of who may; FAILED_PRECONDITION
// for a run in the wrong state.
Status RequestCancel(store::Tx& tx, const std::string& run_id, const std::string& why,
                     int64_t now_us);
Status ResumeRun(store::Tx& tx, const std::string& run_id, int64_t now_us);
Status DeleteRun(store::Tx& tx, const std::string& run_id);
StatusOr<PipelineVersionRecord> LoadVersion(store::Tx& tx, const std::string& pipeline_id,
                                            int64_t version);
Status AppendRunEvent(store::Tx& tx, const std::string& run_id, const RunEvent& event);

}  // namespace lathe::control
