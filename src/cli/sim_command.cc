#include "cli/sim_command.h"

#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

#include "base/json.h"
#include "base/yaml.h"
#include "sched/policy.h"
#include "sim/cluster_config.h"
#include "sim/simulator.h"
#include "sim/trace.h"

namespace lathe::cli {
namespace {

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, ',')) {
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

StatusOr<std::vector<sched::Policy>> ResolvePolicies(const SimCommandOptions& o) {
  std::vector<std::string> names = SplitList(o.policies);
  if (names.empty()) return InvalidArgumentError("--policies: name at least one policy", "policies");
  std::vector<sched::Policy> policies;
  for (const std::string& name : names) {
    StatusOr<sched::Policy> p = sched::NamedPolicy(name);
    if (!p.ok()) {
      std::string known;
      for (const std::string& k : sched::NamedPolicyNames()) known += (known.empty() ? "" : ", ") + k;
      return InvalidArgumentError(
          fmt::format("--policies: unknown policy \"{}\" (known: {})", name, known), "policies");
    }
    p->name = name;
    p->seed = o.seed;
    if (o.baseline_variant == "artifact") {
      // FGD artifact's own scoring of its baselines (sched/scorer.cc).
      for (const char* b : {"bestfit", "dotproduct", "gpu-packing", "gpu-clustering"}) {
        if (p->scorer == b) p->scorer = std::string(b) + "-artifact";
      }
    }
    policies.push_back(std::move(*p));
  }
  return policies;
}

// A plain text table: first column left-aligned, the rest right-aligned.
void PrintTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return;
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      std::string pad(width[i] - row[i].size(), ' ');
      line += i == 0 ? row[i] + pad : "  " + pad + row[i];
    }
    out << line << "\n";
  }
}

std::string Num(double v, int decimals = 0) { return fmt::format("{:.{}f}", v, decimals); }
std::string Pct(double fraction, int decimals = 1) { return fmt::format("{:.{}f}%", 100 * fraction, decimals); }

void Emit(std::ostream& out, const std::string& output, const std::string& json) {
  if (output == "yaml") {
    StatusOr<JsonValue> v = ParseJson(json);
    if (v.ok()) {
      out << ToYaml(*v);
      return;
    }
  }
  out << json << "\n";
}

struct Inputs {
  sim::Trace trace;
  sim::ClusterConfig config;
  std::vector<sched::Node> nodes;
  int64_t node_rows_skipped = 0;
};

StatusOr<Inputs> ReadInputs(const SimCommandOptions& o, std::ostream& err) {
  Inputs in;
  if (o.trace.empty()) return InvalidArgumentError("--trace: required", "trace");
  ASSIGN_OR_RETURN(sim::TraceFormat format, sim::ParseTraceFormat(o.format));
  sim::ReadOptions read;
  if (o.on_bad_row == "skip") {
    read.on_bad_row = sim::BadRowPolicy::kSkip;
  } else if (o.on_bad_row != "abort") {
    return InvalidArgumentError("--on-bad-row: \"" + o.on_bad_row + "\" is not skip or abort",
                                "on_bad_row");
  }
  std::vector<std::string> files = SplitList(o.trace);
  if (files.empty() || files.size() > 2) {
    return InvalidArgumentError("--trace: expected FILE or PODS,NODES", "trace");
  }
  if (files.size() == 2 && format != sim::TraceFormat::kOpenb) {
    return InvalidArgumentError("--trace: a node list (FILE,NODES) goes only with --format openb",
                                "trace");
  }
  std::string node_file = files.size() == 2 ? files[1] : "";
  if (!o.cluster.empty()) {
    ASSIGN_OR_RETURN(in.config, sim::LoadClusterConfig(o.cluster));
  } else if (format == sim::TraceFormat::kOpenb && !node_file.empty()) {
    in.config.nodes_from = "openb";
  } else {
    return InvalidArgumentError("--cluster: required (a cluster-and-queues YAML file)", "cluster");
  }
  ASSIGN_OR_RETURN(in.trace, sim::ReadTrace(format, files[0], read));
  ASSIGN_OR_RETURN(in.nodes, sim::ResolveNodes(in.config, node_file, read));
  if (!o.quiet) {
    err << fmt::format("read {} jobs from {}", in.trace.jobs.size(), files[0]);
    if (in.trace.skipped_rows > 0) err << fmt::format(" ({} bad rows skipped)", in.trace.skipped_rows);
    err << fmt::format("; cluster: {} nodes\n", in.nodes.size());
    for (const std::string& m : in.trace.skipped_examples) err << "  skipped: " << m << "\n";
  }
  return in;
}

Status RunEvents(const SimCommandOptions& o, const Inputs& in,
                 const std::vector<sched::Policy>& policies, std::ostream& out, std::ostream& err) {
  sim::SelectOptions select;
  select.window_start = o.start;
  select.window_end = o.end;
  select.queues = SplitList(o.queues);
  select.sample_every = o.sample_every;
  select.max_jobs = o.max_jobs;
  select.runtime_estimates = !o.no_estimates;
  ASSIGN_OR_RETURN(sim::Workload w, sim::BuildWorkload(in.trace, in.config, in.nodes, select));
  if (w.jobs.empty()) return InvalidArgumentError("no trace jobs left after selection", "trace");
  sim::SimOptions options;
  options.cycle_seconds = o.cycle_seconds;
  options.sample_seconds = o.sample_seconds;
  options.validate = o.validate;
  options.progress = o.quiet ? nullptr : &err;
  std::vector<sim::SimResult> results;
  for (const sched::Policy& p : policies) {
    ASSIGN_OR_RETURN(sim::SimResult r, sim::Simulate(w, p, options));
    results.push_back(std::move(r));
  }
  sched::Resources cap;
  for (const sched::Node& n : w.nodes) cap += n.capacity;
  const sim::SimResult* fifo = nullptr;
  for (const sim::SimResult& r : results) {
    if (r.policy == "fifo") fifo = &r;
  }

  if (o.output != "table") {
    std::string json;
    JsonWriter jw(&json);
    jw.BeginObject().Field("mode", "events").Field("trace", in.trace.source);
    jw.Field("format", o.format).Field("jobs", static_cast<int64_t>(w.jobs.size()));
    jw.Field("skipped_rows", in.trace.skipped_rows);
    jw.Field("nodes", static_cast<int64_t>(w.nodes.size()));
    jw.Key("gpus").Double(static_cast<double>(cap.gpu_milli) / 1000);
    jw.Key("results").BeginArray();
    for (const sim::SimResult& r : results) sim::WriteSimResultJson(r, jw, 200);
    jw.EndArray();
    if (fifo != nullptr && fifo->avg_jct > 0) {
      jw.Key("avg_jct_vs_fifo").BeginObject();
      for (const sim::SimResult& r : results) jw.Key(r.policy).Double(r.avg_jct / fifo->avg_jct);
      jw.EndObject();
    }
    jw.EndObject();
    Emit(out, o.output, json);
    return OkStatus();
  }
  out << fmt::format("{} jobs on {} nodes ({} GPUs); times in seconds\n", w.jobs.size(),
                     w.nodes.size(), Num(static_cast<double>(cap.gpu_milli) / 1000, 0));
  std::vector<std::vector<std::string>> rows = {
      {"POLICY", "FINISHED", "NEVER", "AVG JCT", fifo ? "VS FIFO" : "", "P50 JCT", "P95 JCT",
       "P99 JCT", "AVG WAIT", "P95 WAIT", "MAKESPAN", "GPU UTIL", "CPU UTIL", "UNALLOC GPU",
       "FRAG GPU", "PREEMPT", "CYCLES", "SCHED S"}};
  for (const sim::SimResult& r : results) {
    rows.push_back({r.policy, std::to_string(r.finished), std::to_string(r.never_started),
                    Num(r.avg_jct), fifo && fifo->avg_jct > 0 ? Num(r.avg_jct / fifo->avg_jct, 3) : "",
                    Num(r.p50_jct), Num(r.p95_jct), Num(r.p99_jct), Num(r.avg_wait), Num(r.p95_wait),
                    std::to_string(r.makespan), Pct(r.gpu_util), Pct(r.cpu_util),
                    Num(r.avg_unallocated_gpus, 1), Num(r.avg_fragmented_gpus, 1),
                    std::to_string(r.preemptions), std::to_string(r.cycles),
                    Num(r.schedule_seconds, 2)});
  }
  if (!fifo) {
    for (auto& row : rows) row.erase(row.begin() + 4);
  }
  PrintTable(out, rows);
  // Queue shares: time-averaged dominant share held vs deserved (weights).
  if (!results.empty() && results[0].queues.size() > 1 && results[0].queues.size() <= 40) {
    out << "\nqueue shares (time-averaged dominant share held; deserved from weights)\n";
    std::vector<std::vector<std::string>> q = {{"QUEUE", "DESERVED"}};
    for (const sim::SimResult& r : results) q[0].push_back(r.policy);
    for (size_t i = 0; i < results[0].queues.size(); ++i) {
      std::vector<std::string> row = {results[0].queues[i].queue, Pct(results[0].queues[i].deserved)};
      for (const sim::SimResult& r : results) row.push_back(Pct(r.queues[i].share));
      q.push_back(std::move(row));
    }
    PrintTable(out, q);
  }
  // Average JCT by job size: the trade-off between policies that favour
  // small jobs (best-effort fifo) and those that keep order for gangs (EASY).
  std::map<int64_t, std::map<std::string, const sim::SizeClass*>> sizes;
  for (const sim::SimResult& r : results) {
    for (const sim::SizeClass& c : r.by_gpus) sizes[c.gpus][r.policy] = &c;
  }
  if (sizes.size() > 1 && sizes.size() <= 24) {
    out << "\naverage JCT by job size (GPUs; jobs finished)\n";
    std::vector<std::vector<std::string>> t = {{"GPUS", "JOBS"}};
    for (const sim::SimResult& r : results) t[0].push_back(r.policy);
    for (const auto& [gpus, by_policy] : sizes) {
      std::vector<std::string> row = {std::to_string(gpus), std::to_string(by_policy.begin()->second->jobs)};
      for (const sim::SimResult& r : results) {
        auto it = by_policy.find(r.policy);
        row.push_back(it == by_policy.end() ? "-" : Num(it->second->avg_jct));
      }
      t.push_back(std::move(row));
    }
    PrintTable(out, t);
  }
  // EASY's promise, checked: a reserved job starts by its first expected start.
  for (const sim::SimResult& r : results) {
    if (r.reserved_jobs == 0) continue;
    out << fmt::format("\n{}: {} jobs got a reservation; {} started after its first expected start{}\n",
                       r.policy, r.reserved_jobs, r.reserved_started_late,
                       r.reserved_started_late > 0 ? fmt::format(" (up to {} s late)", r.max_reservation_delay) : "");
  }
  return OkStatus();
}

// Another fgd (fgd-artifact): not a baseline for fgd's reduction.
bool IsFgdVariant(const std::string& policy) { return policy.rfind("fgd-", 0) == 0; }

// The scorer other than fgd with the fewest unallocated GPUs when the
// arrived workload reached `at` of capacity, and fgd's reduction against it
// (1 − fgd / best); {nullptr, 0} without fgd, another scorer or a non-zero best.
std::pair<const sim::FillResult*, double> ReductionAt(const std::vector<sim::FillResult>& results,
                                                      double at) {
  const sim::FillResult* fgd = nullptr;
  const sim::FillResult* best = nullptr;
  for (const sim::FillResult& r : results) {
    if (r.policy == "fgd") {
      fgd = &r;
    } else if (IsFgdVariant(r.policy)) {
      continue;
    } else if (best == nullptr || r.UnallocatedAt(at) < best->UnallocatedAt(at)) {
      best = &r;
    }
  }
  if (fgd == nullptr || best == nullptr || best->UnallocatedAt(at) <= 0) return {nullptr, 0};
  return {best, 1 - fgd->UnallocatedAt(at) / best->UnallocatedAt(at)};
}

Status RunFgdFill(const SimCommandOptions& o, const Inputs& in,
                  const std::vector<sched::Policy>& policies, std::ostream& out, std::ostream& err) {
  sim::SelectOptions select;
  select.queues = SplitList(o.queues);
  select.window_start = o.start;
  select.window_end = o.end;
  select.sample_every = o.sample_every;
  select.max_jobs = o.max_jobs;
  ASSIGN_OR_RETURN(sim::Workload w, sim::BuildWorkload(in.trace, in.config, in.nodes, select));
  if (o.fill_nodes == "gpu") {
    // FGD's artifact simulates openb_node_list_gpu_node: the nodes with GPUs.
    std::erase_if(w.nodes, [](const sched::Node& n) { return n.num_gpus <= 0; });
  }
  sim::FillOptions options;
  options.seed = o.seed;
  options.until = o.fill_until / 100;
  options.order = o.fill_order == "trace" ? sim::FillOrder::kTrace : sim::FillOrder::kSample;
  options.validate = o.validate;
  options.progress = o.quiet ? nullptr : &err;
  std::vector<sim::FillResult> results;
  for (const sched::Policy& p : policies) {
    ASSIGN_OR_RETURN(sim::FillResult r, sim::RunFill(w.nodes, w.jobs, p, options));
    results.push_back(std::move(r));
  }
  // FGD's reduction of unallocated GPUs at the end vs the best other scorer.
  const sim::FillResult* fgd = nullptr;
  const sim::FillResult* best = nullptr;
  for (const sim::FillResult& r : results) {
    if (r.policy == "fgd") {
      fgd = &r;
    } else if (IsFgdVariant(r.policy)) {
      continue;
    } else if (best == nullptr || r.UnallocatedAt(o.fill_until / 100) < best->UnallocatedAt(o.fill_until / 100)) {
      best = &r;
    }
  }
  double until = o.fill_until / 100;
  std::vector<double> loads;
  for (double l : {0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.1, 1.2}) {
    if (l < until - 1e-9) loads.push_back(l);
  }
  loads.push_back(until);
  double reduction = 0;
  bool have_reduction = fgd && best && best->UnallocatedAt(until) > 0;
  if (have_reduction) reduction = 1 - fgd->UnallocatedAt(until) / best->UnallocatedAt(until);

  if (o.output != "table") {
    std::string json;
    JsonWriter jw(&json);
    jw.BeginObject().Field("mode", "fgd-fill").Field("trace", in.trace.source);
    jw.Field("pool_tasks", static_cast<int64_t>(w.jobs.size()));
    jw.Field("nodes", static_cast<int64_t>(w.nodes.size()));
    jw.Key("gpus").Double(results.empty() ? 0 : results[0].capacity_gpus);
    jw.Field("seed", static_cast<int64_t>(o.seed)).Key("until").Double(until);
    jw.Field("fill_order", o.fill_order).Field("fill_nodes", o.fill_nodes);
    jw.Field("baseline_variant", o.baseline_variant);
    jw.Key("results").BeginArray();
    for (const sim::FillResult& r : results) sim::WriteFillResultJson(r, jw, loads);
    jw.EndArray();
    if (have_reduction) {
      jw.Field("best_baseline", best->policy);
      jw.Key("fgd_reduction_vs_best_baseline").Double(reduction);
      if (until > 1 + 1e-9) {
        // FGD's own figures also report the capacity point.
        auto [best100, reduction100] = ReductionAt(results, 1.0);
        if (best100 != nullptr) {
          jw.Field("best_baseline_at_100", best100->policy);
          jw.Key("fgd_reduction_vs_best_baseline_at_100").Double(reduction100);
        }
      }
    }
    jw.EndObject();
    Emit(out, o.output, json);
    return OkStatus();
  }
  out << fmt::format(
      "FGD fill: tasks {} (seed {}) from {} pods until requested GPUs reach {:.0f}% of {} GPUs on "
      "{} nodes\nunallocated GPUs (% of capacity) when arrived workload reached X% of capacity\n",
      o.fill_order == "trace" ? "in trace order, shuffled, then sampled" : "sampled", o.seed, w.jobs.size(),
      o.fill_until, results.empty() ? 0 : results[0].capacity_gpus,
      w.nodes.size());
  std::vector<std::vector<std::string>> rows = {{"POLICY"}};
  for (double l : loads) rows[0].push_back(fmt::format("@{:.0f}%", 100 * l));
  for (const char* h : {"UNALLOC GPUS", "FRAG GPUS", "TASKS", "FAILED", "SCHED S"}) rows[0].push_back(h);
  for (const sim::FillResult& r : results) {
    std::vector<std::string> row = {r.policy};
    for (double l : loads) row.push_back(Pct(r.UnallocatedAt(l)));
    const sim::FillPoint* end = r.PointAt(until);
    row.push_back(Num(end ? end->unallocated * r.capacity_gpus : 0, 1));
    row.push_back(Num(end ? end->fragmented * r.capacity_gpus : 0, 1));
    row.push_back(std::to_string(end ? end->tasks : 0));
    row.push_back(std::to_string(end ? end->failed : 0));
    row.push_back(Num(r.schedule_seconds, 2));
    rows.push_back(std::move(row));
  }
  PrintTable(out, rows);
  if (have_reduction) {
    if (until > 1 + 1e-9) {
      auto [best100, reduction100] = ReductionAt(results, 1.0);
      if (best100 != nullptr) {
        out << fmt::format("fgd leaves {:.1f}% fewer unallocated GPUs at 100% than the best baseline ({})\n",
                           100 * reduction100, best100->policy);
      }
    }
    out << fmt::format("fgd leaves {:.1f}% fewer unallocated GPUs at {:.0f}% than the best baseline ({})\n",
                       100 * reduction, 100 * until, best->policy);
  }
  return OkStatus();
}

}  // namespace

Status RunSim(const SimCommandOptions& o, std::ostream& out, std::ostream& err) {
  if (o.output != "table" && o.output != "json" && o.output != "yaml") {
    return InvalidArgumentError("--output: \"" + o.output + "\" is not table, json or yaml", "output");
  }
  if (o.mode != "events" && o.mode != "fgd-fill") {
    return InvalidArgumentError("--mode: \"" + o.mode + "\" is not events or fgd-fill", "mode");
  }
  if (o.sample_every < 1) return InvalidArgumentError("--sample-every: must be >= 1", "sample_every");
  if (o.max_jobs < 0) return InvalidArgumentError("--max-jobs: must be >= 0", "max_jobs");
  if (o.cycle_seconds < 0) return InvalidArgumentError("--cycle-seconds: must be >= 0", "cycle_seconds");
  if (o.start >= 0 && o.end >= 0 && o.end <= o.start) {
    return InvalidArgumentError("--end: must be after --start", "end");
  }
  if (!(o.fill_until > 0 && o.fill_until <= 1000)) {
    return InvalidArgumentError("--fill-until: must be in (0, 1000] percent", "fill_until");
  }
  if (o.fill_order != "sample" && o.fill_order != "trace") {
    return InvalidArgumentError("--fill-order: \"" + o.fill_order + "\" is not sample or trace", "fill_order");
  }
  if (o.fill_nodes != "all" && o.fill_nodes != "gpu") {
    return InvalidArgumentError("--fill-nodes: \"" + o.fill_nodes + "\" is not all or gpu", "fill_nodes");
  }
  if (o.baseline_variant != "lathe" && o.baseline_variant != "artifact") {
    return InvalidArgumentError("--baseline-variant: \"" + o.baseline_variant + "\" is not lathe or artifact",
                                "baseline_variant");
  }
  ASSIGN_OR_RETURN(std::vector<sched::Policy> policies, ResolvePolicies(o));
  ASSIGN_OR_RETURN(Inputs in, ReadInputs(o, err));
  if (o.mode == "fgd-fill") return RunFgdFill(o, in, policies, out, err);
  return RunEvents(o, in, policies, out, err);
}

}  // namespace lathe::cli
