// The `lathe` binary: command-line parsing only (the one translation unit
// that includes CLI11, which costs seconds to compile). Every command's work
// lives in commands.cc / server_command.cc.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <map>

#include "base/build_info.h"
#include "cli/commands.h"
#include "cli/job_commands.h"
#include "cli/model_commands.h"
#include "cli/pipeline_commands.h"
#include "cli/serve_command.h"
#include "cli/server_command.h"
#include "cli/server_config.h"
#include "cli/sim_command.h"
#include "cli/tracking_commands.h"
#include "exec/local/shim.h"

namespace lathe::cli {
namespace {

int Finish(const Status& st) {
  if (st.ok()) return 0;
  std::string line = "error: " + st.message();
  if (!st.field().empty() && st.message().find(st.field()) == std::string::npos) {
    line += " (field: " + st.field() + ")";
  }
  std::cerr << line << "\n";
  return 1;
}

void AddListFlags(CLI::App* cmd, ListOptions* l) {
  cmd->add_option("--limit", l->limit, "Print one page of at most N items (default: all pages)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000}));
  cmd->add_option("--page-token", l->page_token, "Continue a listing from this token");
}

int Main(int argc, char** argv) {
  CLI::App app{"Lathe: a machine-learning platform in one binary.", "lathe"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("lathe ") + LATHE_VERSION + " (" + LATHE_GIT_COMMIT + ")");

  ClientOptions client;
  app.add_option("--server", client.server, "Server URL (default: $LATHE_SERVER, then `lathe login`)");
  app.add_option("--token", client.token, "API token (default: $LATHE_TOKEN, then `lathe login`)");
  app.add_option("-o,--output", client.output, "Output format: table, json or yaml")
      ->check(CLI::IsMember({"table", "json", "yaml"}));
  int exit_code = 0;
  auto run = [&exit_code](const Status& st) { exit_code = Finish(st); };

  // ---- server
  CLI::App* server = app.add_subcommand("server", "Run the control plane (API server)");
  std::map<std::string, std::string> flags;
  std::string home, listen, store, config, log_level, http_threads, local_nodes;
  std::vector<std::string> sets;
  server->add_option("--home", home, "State directory (default ./.lathe)");
  server->add_option("--listen", listen, "ADDRESS:PORT to serve on (default 127.0.0.1:8080)");
  server->add_option("--store", store, "sqlite://PATH or postgres://user@host:port/db");
  server->add_option("--config", config, "YAML config file");
  server->add_option("--log-level", log_level, "debug, info, warn, error or off");
  server->add_option("--http-threads", http_threads, "I/O threads (0 = one per core)");
  server->add_option("--local-nodes", local_nodes,
                     "Run jobs on N virtual nodes of this machine (0 = one node, the machine)");
  std::string settings_help = "Any setting as KEY=VALUE (repeatable). Settings:";
  for (const SettingInfo& s : ServerSettings()) {
    settings_help += "\n  " + s.key + " (" + s.env + "): " + s.help;
  }
  server->add_option("--set", sets, settings_help);
  server->callback([&] {
    for (const std::string& kv : sets) {
      size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        exit_code = Finish(InvalidArgumentError("--set: \"" + kv + "\" is not KEY=VALUE", "set"));
        return;
      }
      flags[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    if (!home.empty()) flags["home"] = home;
    if (!listen.empty()) flags["listen"] = listen;
    if (!store.empty()) flags["store"] = store;
    if (!config.empty()) flags["config"] = config;
    if (!log_level.empty()) flags["log_level"] = log_level;
    if (!http_threads.empty()) flags["http.threads"] = http_threads;
    if (!local_nodes.empty()) flags["executor.local.nodes"] = local_nodes;
    auto cfg = LoadServerConfig(flags, [](const char* name) { return std::getenv(name); });
    if (!cfg.ok()) {
      exit_code = Finish(cfg.status());
      return;
    }
    exit_code = RunServer(*cfg);
  });

  // ---- version
  app.add_subcommand("version", "Print the version")->callback([] {
    std::cout << "lathe " << LATHE_VERSION << " (" << LATHE_GIT_COMMIT << ")\n";
  });

  // ---- login / whoami
  CLI::App* login = app.add_subcommand("login", "Save a server URL and token for later commands");
  std::string token_file;
  login->add_option("--token-file", token_file, "File holding the token ('-' reads standard input)")
      ->required();
  login->callback([&] {
    std::string url = !client.server.empty() ? client.server
                      : std::getenv("LATHE_SERVER") ? std::getenv("LATHE_SERVER")
                                                    : "";
    if (url.empty()) {
      run(InvalidArgumentError("--server: required for login", "server"));
      return;
    }
    run(Login(url, token_file, std::cout));
  });
  app.add_subcommand("whoami", "Show the user behind the current token")->callback([&] {
    run(WhoAmI(client, std::cout));
  });

  // ---- project
  CLI::App* project = app.add_subcommand("project", "Manage projects (tenants)");
  project->require_subcommand(1);
  std::string name, description, user, role;
  ListOptions list;
  CLI::App* p_create = project->add_subcommand("create", "Create a project; you become its admin");
  p_create->add_option("name", name, "Project name (lower-case letters, digits, '-')")->required();
  p_create->add_option("--description", description, "What the project is for");
  p_create->callback([&] { run(ProjectCreate(client, name, description, std::cout)); });
  CLI::App* p_ls = project->add_subcommand("ls", "List the projects you can see");
  AddListFlags(p_ls, &list);
  p_ls->callback([&] { run(ProjectList(client, list, std::cout)); });
  CLI::App* p_get = project->add_subcommand("get", "Show one project");
  p_get->add_option("name", name, "Project name")->required();
  p_get->callback([&] { run(ProjectGet(client, name, std::cout)); });
  CLI::App* p_rm = project->add_subcommand("rm", "Delete a project and everything in it");
  p_rm->add_option("name", name, "Project name")->required();
  p_rm->callback([&] { run(ProjectRemove(client, name, std::cout)); });

  CLI::App* member = project->add_subcommand("member", "Manage who may use a project");
  member->require_subcommand(1);
  CLI::App* m_set = member->add_subcommand("set", "Add a member or change their role");
  m_set->add_option("project", name, "Project name")->required();
  m_set->add_option("user", user, "User name")->required();
  m_set->add_option("role", role, "viewer, editor or admin")->required();
  m_set->callback([&] { run(MemberSet(client, name, user, role, std::cout)); });
  CLI::App* m_ls = member->add_subcommand("ls", "List a project's members");
  m_ls->add_option("project", name, "Project name")->required();
  AddListFlags(m_ls, &list);
  m_ls->callback([&] { run(MemberList(client, name, list, std::cout)); });
  CLI::App* m_rm = member->add_subcommand("rm", "Remove a member");
  m_rm->add_option("project", name, "Project name")->required();
  m_rm->add_option("user", user, "User name")->required();
  m_rm->callback([&] { run(MemberRemove(client, name, user, std::cout)); });

  // ---- token
  CLI::App* token = app.add_subcommand("token", "Manage API tokens");
  token->require_subcommand(1);
  TokenCreateOptions tc;
  CLI::App* t_create = token->add_subcommand("create", "Create a token (shown once)");
  t_create->add_option("--name", tc.name, "What the token is for")->required();
  t_create->add_option("--user", tc.user, "Create it for another user (server admins)");
  t_create->add_option("--project", tc.project, "Scope the token to one project");
  t_create->add_option("--role", tc.role, "Cap a scoped token's role: viewer, editor or admin");
  t_create->add_option("--ttl", tc.ttl, "Expire after a duration: 90d, 12h, 30m, 45s");
  t_create->callback([&] { run(TokenCreate(client, tc, std::cout)); });
  CLI::App* t_ls = token->add_subcommand("ls", "List your tokens");
  bool all_users = false;
  t_ls->add_option("--user", user, "Another user's tokens (server admins)");
  t_ls->add_flag("--all", all_users, "Everyone's tokens (server admins)");
  AddListFlags(t_ls, &list);
  t_ls->callback([&] { run(TokenList(client, all_users ? "*" : user, list, std::cout)); });
  CLI::App* t_revoke = token->add_subcommand("revoke", "Revoke a token by id");
  t_revoke->add_option("id", name, "Token id (from `lathe token ls`)")->required();
  t_revoke->callback([&] { run(TokenRevoke(client, name, std::cout)); });

  // ---- user
  CLI::App* users = app.add_subcommand("user", "Manage users (server admins)");
  users->require_subcommand(1);
  bool is_admin = false;
  CLI::App* u_create = users->add_subcommand("create", "Create a user");
  u_create->add_option("name", name, "User name")->required();
  u_create->add_flag("--admin", is_admin, "Make the user a server admin");
  u_create->callback([&] { run(UserCreate(client, name, is_admin, std::cout)); });
  CLI::App* u_ls = users->add_subcommand("ls", "List users");
  AddListFlags(u_ls, &list);
  u_ls->callback([&] { run(UserList(client, list, std::cout)); });

  // ---- job
  CLI::App* job = app.add_subcommand("job", "Submit and manage training jobs");
  job->require_subcommand(1);
  std::string job_project, job_name;
  auto add_project = [&job_project](CLI::App* cmd) {
    cmd->add_option("--project", job_project, "Project of the job (default: $LATHE_PROJECT)");
  };
  auto add_job_arg = [&job_name](CLI::App* cmd) {
    cmd->add_option("job", job_name, "Job name or id")->required();
  };
  JobSubmitOptions submit_opts;
  CLI::App* j_submit = job->add_subcommand("submit", "Submit a job from a YAML or JSON spec");
  j_submit->add_option("-f,--file", submit_opts.file, "Job spec file ('-' reads standard input)")
      ->required();
  add_project(j_submit);
  j_submit->add_option("--code", submit_opts.code_dir,
                       "Upload this directory as a snapshot; it becomes the working directory");
  j_submit->add_flag("--wait", submit_opts.wait,
                     "Wait until the job ends; exit 1 unless it succeeded");
  j_submit->callback([&] {
    submit_opts.project = job_project;
    run(JobSubmit(client, submit_opts, std::cout));
  });
  JobListOptions job_list;
  CLI::App* j_ls = job->add_subcommand("ls", "List a project's jobs");
  add_project(j_ls);
  j_ls->add_option("--phase", job_list.phase,
                   "Only jobs in this phase: pending, admitted, launching, running, succeeded, "
                   "failed, cancelled, timed_out");
  j_ls->add_option("--queue", job_list.queue, "Only jobs of this queue");
  AddListFlags(j_ls, &list);
  j_ls->callback([&] {
    job_list.project = job_project;
    run(JobList(client, job_list, list, std::cout));
  });
  CLI::App* j_describe =
      job->add_subcommand("describe", "Show a job: fields, tasks, events, why it is pending");
  add_job_arg(j_describe);
  add_project(j_describe);
  j_describe->callback([&] { run(JobDescribe(client, job_project, job_name, std::cout)); });
  CLI::App* j_cancel = job->add_subcommand("cancel", "Cancel a job (its tasks get SIGTERM, then SIGKILL)");
  add_job_arg(j_cancel);
  add_project(j_cancel);
  j_cancel->callback([&] { run(JobCancel(client, job_project, job_name, std::cout)); });
  CLI::App* j_rm = job->add_subcommand("rm", "Delete a finished job, its events and logs");
  add_job_arg(j_rm);
  add_project(j_rm);
  j_rm->callback([&] { run(JobRemove(client, job_project, job_name, std::cout)); });
  JobLogsOptions logs_opts;
  CLI::App* j_logs = job->add_subcommand("logs", "Print a task's log");
  add_job_arg(j_logs);
  add_project(j_logs);
  j_logs->add_option("--role", logs_opts.role, "Role of the task (default: the job's first role)");
  j_logs->add_option("--index", logs_opts.index, "Replica index within the role (default 0)")
      ->check(CLI::NonNegativeNumber);
  j_logs->add_option("--stream", logs_opts.stream, "stdout (default) or stderr")
      ->check(CLI::IsMember({"stdout", "stderr"}));
  j_logs->add_flag("-f,--follow", logs_opts.follow, "Keep printing until the task ends");
  j_logs->callback([&] { run(JobLogs(client, job_project, job_name, logs_opts, std::cout)); });
  std::string wait_timeout;
  CLI::App* j_wait =
      job->add_subcommand("wait", "Wait until a job ends; exit 0 if it succeeded, 1 otherwise");
  add_job_arg(j_wait);
  add_project(j_wait);
  j_wait->add_option("--timeout", wait_timeout, "Give up after a duration: 10m, 1h, 90s");
  j_wait->callback([&] { run(JobWait(client, job_project, job_name, wait_timeout, std::cout)); });

  // ---- queue
  CLI::App* queue = app.add_subcommand("queue", "Manage scheduling queues (changes: server admins)");
  queue->require_subcommand(1);
  QueueOptions queue_opts;
  auto add_queue_flags = [&queue_opts](CLI::App* cmd) {
    cmd->add_option("-f,--file", queue_opts.file, "Queue spec file (YAML or JSON)");
    cmd->add_option("--parent", queue_opts.parent, "Parent queue ('-' = none)");
    cmd->add_option("--guarantee", queue_opts.guarantee,
                    "Guaranteed resources, e.g. cpu=4,memory=16Gi,gpu=0");
    cmd->add_option("--ceiling", queue_opts.ceiling,
                    "Most resources the queue may use, e.g. cpu=16,gpu=2 ('none' = unlimited)");
    cmd->add_option("--weight", queue_opts.weight, "Share of spare resources (default 1)")
        ->check(CLI::PositiveNumber);
  };
  CLI::App* q_ls = queue->add_subcommand("ls", "List queues with usage and pending jobs");
  AddListFlags(q_ls, &list);
  q_ls->callback([&] { run(QueueList(client, list, std::cout)); });
  CLI::App* q_get = queue->add_subcommand("get", "Show one queue");
  q_get->add_option("name", name, "Queue name")->required();
  q_get->callback([&] { run(QueueGet(client, name, std::cout)); });
  CLI::App* q_create = queue->add_subcommand("create", "Create a queue from flags or -f FILE");
  q_create->add_option("name", queue_opts.name, "Queue name (or `name` in -f's spec)");
  add_queue_flags(q_create);
  q_create->callback([&] { run(QueueCreate(client, queue_opts, std::cout)); });
  CLI::App* q_update =
      queue->add_subcommand("update", "Change a queue: only what the flags name, or all of -f FILE");
  q_update->add_option("name", queue_opts.name, "Queue name")->required();
  add_queue_flags(q_update);
  q_update->callback([&] { run(QueueUpdate(client, queue_opts, std::cout)); });
  CLI::App* q_rm = queue->add_subcommand("rm", "Delete a queue no active job uses");
  q_rm->add_option("name", name, "Queue name")->required();
  q_rm->callback([&] { run(QueueRemove(client, name, std::cout)); });

  // ---- experiment tracking
  std::string t_project;
  auto add_tracking_project = [&t_project](CLI::App* cmd) {
    cmd->add_option("--project", t_project, "Project (default: $LATHE_PROJECT)");
  };
  // Repeatable options take one value per flag, so they never swallow arguments.
  auto repeatable = [](CLI::Option* opt) { opt->allow_extra_args(false); };
  CLI::App* experiment = app.add_subcommand("experiment", "Manage tracking experiments");
  experiment->require_subcommand(1);
  std::string exp_name, exp_view;
  std::vector<std::string> exp_tags;
  CLI::App* e_ls = experiment->add_subcommand("ls", "List a project's experiments");
  add_tracking_project(e_ls);
  e_ls->add_option("--view", exp_view, "active (default), deleted or all")
      ->check(CLI::IsMember({"active", "deleted", "all"}));
  AddListFlags(e_ls, &list);
  e_ls->callback([&] { run(ExperimentList(client, t_project, exp_view, list, std::cout)); });
  CLI::App* e_create = experiment->add_subcommand("create", "Create an experiment");
  e_create->add_option("name", exp_name, "Experiment name (unique in the project)")->required();
  add_tracking_project(e_create);
  repeatable(e_create->add_option("--tag", exp_tags, "A tag as KEY=VALUE (repeatable)"));
  e_create->callback(
      [&] { run(ExperimentCreate(client, t_project, exp_name, exp_tags, std::cout)); });
  CLI::App* e_show = experiment->add_subcommand("show", "Show an experiment and its tags");
  e_show->add_option("experiment", exp_name, "Experiment id or name")->required();
  add_tracking_project(e_show);
  e_show->callback([&] { run(ExperimentShow(client, t_project, exp_name, std::cout)); });

  CLI::App* runs_cmd = app.add_subcommand("run", "Inspect and compare tracked runs");
  runs_cmd->require_subcommand(1);
  RunListOptions run_list;
  std::string run_ref;
  std::vector<std::string> run_refs, run_metrics;
  CLI::App* r_ls =
      runs_cmd->add_subcommand("ls", "List or search runs (newest first unless --order-by)");
  add_tracking_project(r_ls);
  repeatable(r_ls->add_option("--experiment", run_list.experiments,
                              "Only runs of this experiment, id or name (repeatable)"));
  r_ls->add_option("--filter", run_list.filter,
                   "MLflow filter: \"metrics.auc > 0.9 and params.lr = '0.01'\"");
  repeatable(r_ls->add_option("--order-by", run_list.order_by,
                              "Sort key, e.g. \"metrics.loss DESC\" (repeatable)"));
  r_ls->add_option("--view", run_list.view, "active (default), deleted or all")
      ->check(CLI::IsMember({"active", "deleted", "all"}));
  AddListFlags(r_ls, &list);
  r_ls->callback([&] {
    run_list.project = t_project;
    run(RunList(client, run_list, list, std::cout));
  });
  CLI::App* r_show =
      runs_cmd->add_subcommand("show", "Show a run: fields, params, tags, latest metrics");
  r_show->add_option("run", run_ref, "Run id or name")->required();
  add_tracking_project(r_show);
  r_show->callback([&] { run(RunShow(client, t_project, run_ref, std::cout)); });
  CLI::App* r_compare =
      runs_cmd->add_subcommand("compare", "Params and latest metrics of runs side by side");
  r_compare->add_option("runs", run_refs, "Run ids or names (two or more)")->required();
  repeatable(r_compare->add_option("--metric", run_metrics, "Only this metric (repeatable)"));
  add_tracking_project(r_compare);
  r_compare->callback(
      [&] { run(RunCompare(client, t_project, run_refs, run_metrics, std::cout)); });

  CLI::App* r_artifacts = runs_cmd->add_subcommand("artifacts", "List a run's artifacts");
  std::string artifact_path;
  bool artifacts_recursive = false;
  r_artifacts->add_option("run", run_ref, "Run id or name")->required();
  r_artifacts->add_option("path", artifact_path,
                          "A directory of the run's artifacts (default: the root)");
  r_artifacts->add_flag("-r,--recursive", artifacts_recursive, "List subdirectories too");
  add_tracking_project(r_artifacts);
  r_artifacts->callback([&] {
    run(RunArtifacts(client, t_project, run_ref, artifact_path, artifacts_recursive, std::cout));
  });

  CLI::App* metrics_cmd =
      app.add_subcommand("metrics", "A run's metric as a sparkline with min, max, last and count");
  std::string metric_key;
  int64_t max_points = 60;
  metrics_cmd->add_option("run", run_ref, "Run id or name")->required();
  metrics_cmd->add_option("key", metric_key, "Metric key")->required();
  metrics_cmd
      ->add_option("--max-points", max_points,
                   "Downsample to at most N points, one character each (default 60)")
      ->check(CLI::Range(int64_t{1}, int64_t{10000}));
  add_tracking_project(metrics_cmd);
  metrics_cmd->callback(
      [&] { run(MetricsShow(client, t_project, run_ref, metric_key, max_points, std::cout)); });

  // ---- model registry
  CLI::App* model = app.add_subcommand("model", "Manage registered models, versions and aliases");
  model->require_subcommand(1);
  std::string model_name, model_version, model_alias, model_stage, model_description;
  std::vector<std::string> model_tags;
  auto add_model_arg = [&model_name](CLI::App* cmd) {
    cmd->add_option("name", model_name, "Registered model name")->required();
  };
  ModelListOptions model_list;
  CLI::App* md_ls = model->add_subcommand("ls", "List a project's registered models");
  add_tracking_project(md_ls);
  md_ls->add_option("--filter", model_list.filter,
                   "Registry filter: \"name LIKE 'fraud%'\", \"tags.team = 'cv'\"");
  repeatable(md_ls->add_option("--order-by", model_list.order_by,
                               "Sort key: name, last_updated_timestamp DESC, creation_timestamp "
                               "(repeatable)"));
  AddListFlags(md_ls, &list);
  md_ls->callback([&] {
    model_list.project = t_project;
    run(ModelList(client, model_list, list, std::cout));
  });
  CLI::App* md_create = model->add_subcommand("create", "Create a registered model");
  add_model_arg(md_create);
  md_create->add_option("--description", model_description, "What the model is for");
  repeatable(md_create->add_option("--tag", model_tags, "A tag as KEY=VALUE (repeatable)"));
  add_tracking_project(md_create);
  md_create->callback([&] {
    run(ModelCreate(client, t_project, model_name, model_description, model_tags, std::cout));
  });
  CLI::App* md_show =
      model->add_subcommand("show", "Show a model: description, tags, aliases, latest versions");
  add_model_arg(md_show);
  add_tracking_project(md_show);
  md_show->callback([&] { run(ModelShow(client, t_project, model_name, std::cout)); });
  CLI::App* md_versions =
      model->add_subcommand("versions", "List a model's versions, newest first");
  add_model_arg(md_versions);
  add_tracking_project(md_versions);
  AddListFlags(md_versions, &list);
  md_versions->callback(
      [&] { run(ModelVersions(client, t_project, model_name, list, std::cout)); });
  CLI::App* md_version =
      model->add_subcommand("version", "Show one version with its lineage (run, job, code)");
  add_model_arg(md_version);
  md_version->add_option("version", model_version, "Version number")->required();
  add_tracking_project(md_version);
  md_version->callback(
      [&] { run(ModelVersionShow(client, t_project, model_name, model_version, std::cout)); });
  bool alias_delete = false;
  CLI::App* md_alias = model->add_subcommand(
      "alias", "Point an alias at a version, delete it (--delete), or show where it points");
  add_model_arg(md_alias);
  md_alias->add_option("alias", model_alias, "Alias name, e.g. champion")->required();
  md_alias->add_option("version", model_version, "Version number to point the alias at");
  md_alias->add_flag("--delete", alias_delete, "Delete the alias");
  add_tracking_project(md_alias);
  md_alias->callback([&] {
    run(ModelAlias(client, t_project, model_name, model_alias, model_version, alias_delete,
                   std::cout));
  });
  ModelRegisterOptions reg;
  CLI::App* md_register = model->add_subcommand(
      "register", "Register a new version (creating the model if it does not exist)");
  add_model_arg(md_register);
  md_register
      ->add_option("--source", reg.source,
                   "Where the model's files are: runs:/RUN_ID/PATH, mlflow-artifacts:/…, any URI")
      ->required();
  md_register->add_option("--run", reg.run, "Link the version to this run (id or name)");
  md_register->add_option("--description", reg.description, "Description of the version");
  repeatable(md_register->add_option("--tag", reg.tags, "A version tag as KEY=VALUE (repeatable)"));
  add_tracking_project(md_register);
  md_register->callback([&] {
    reg.project = t_project;
    reg.name = model_name;
    run(ModelRegister(client, reg, std::cout));
  });
  bool archive_existing = false;
  CLI::App* md_stage = model->add_subcommand("stage", "Move a version to a stage");
  add_model_arg(md_stage);
  md_stage->add_option("version", model_version, "Version number")->required();
  md_stage->add_option("stage", model_stage, "None, Staging, Production or Archived")->required();
  md_stage->add_flag("--archive-existing", archive_existing,
                    "Archive the model's other versions in that stage");
  add_tracking_project(md_stage);
  md_stage->callback([&] {
    run(ModelStage(client, t_project, model_name, model_version, model_stage, archive_existing,
                   std::cout));
  });
  CLI::App* md_rm =
      model->add_subcommand("rm", "Delete a version, or the model with all its versions");
  add_model_arg(md_rm);
  md_rm->add_option("version", model_version, "Version number (default: the whole model)");
  add_tracking_project(md_rm);
  md_rm->callback(
      [&] { run(ModelRemove(client, t_project, model_name, model_version, std::cout)); });

  // ---- pipelines, their runs and schedules
  std::string pl_project, pl_name, pl_run, pl_file;
  auto add_pl_project = [&pl_project](CLI::App* cmd) {
    cmd->add_option("-p,--project", pl_project, "Project (default: $LATHE_PROJECT)");
  };
  CLI::App* pipeline =
      app.add_subcommand("pipeline", "Create, list and run pipelines (docs/pipelines.md)");
  pipeline->require_subcommand(1);
  PipelineCreateOptions pl_create_opts;
  CLI::App* pl_create = pipeline->add_subcommand(
      "create", "Create a pipeline, or a new version when its spec or code changed");
  pl_create->add_option("-f,--file", pl_create_opts.file,
                        "Pipeline spec file, YAML or JSON ('-' reads standard input)")
      ->required();
  pl_create->add_option("--code", pl_create_opts.code_dir,
                        "Upload this directory as the version's code snapshot (the steps' "
                        "working directory)");
  add_pl_project(pl_create);
  pl_create->callback([&] {
    pl_create_opts.project = pl_project;
    run(PipelineCreate(client, pl_create_opts, std::cout));
  });
  CLI::App* pl_ls = pipeline->add_subcommand("ls", "List a project's pipelines");
  add_pl_project(pl_ls);
  AddListFlags(pl_ls, &list);
  pl_ls->callback([&] { run(PipelineList(client, pl_project, list, std::cout)); });
  CLI::App* pl_show =
      pipeline->add_subcommand("show", "Show a pipeline with its latest version's params and steps");
  pl_show->add_option("name", pl_name, "Pipeline name")->required();
  add_pl_project(pl_show);
  pl_show->callback([&] { run(PipelineShow(client, pl_project, pl_name, std::cout)); });
  CLI::App* pl_versions = pipeline->add_subcommand("versions", "List a pipeline's versions");
  pl_versions->add_option("name", pl_name, "Pipeline name")->required();
  add_pl_project(pl_versions);
  AddListFlags(pl_versions, &list);
  pl_versions->callback([&] { run(PipelineVersions(client, pl_project, pl_name, list, std::cout)); });
  PipelineRunOptions pl_run_opts;
  CLI::App* pl_run_cmd = pipeline->add_subcommand(
      "run", "Start a run of a pipeline (NAME), or create/update one from -f and run it");
  pl_run_cmd->add_option("name", pl_run_opts.name, "Pipeline name (or -f FILE)");
  pl_run_cmd->add_option("-f,--file", pl_run_opts.file,
                         "Create or update the pipeline from this spec first, then run it");
  pl_run_cmd->add_option("--version", pl_run_opts.version, "Run this version (default: latest)")
      ->check(CLI::PositiveNumber);
  repeatable(pl_run_cmd->add_option("--param", pl_run_opts.params,
                                    "A param as NAME=VALUE, converted to its declared type "
                                    "(repeatable)"));
  pl_run_cmd->add_option("--sample", pl_run_opts.sample,
                         "Quick mode: sets the int param `sample` to N (the pipeline must declare "
                         "it)")
      ->check(CLI::PositiveNumber);
  pl_run_cmd->add_flag("--no-cache", pl_run_opts.no_cache,
                       "Run every step: read no cached result and record none");
  pl_run_cmd->add_flag("--wait", pl_run_opts.wait,
                       "Wait until the run ends, printing step changes; exit 1 unless it "
                       "succeeded");
  pl_run_cmd->add_option("--code", pl_run_opts.code_dir,
                         "Upload this directory as the code of a new version (with -f, or the "
                         "latest spec)");
  add_pl_project(pl_run_cmd);
  pl_run_cmd->callback([&] {
    pl_run_opts.project = pl_project;
    run(PipelineRun(client, pl_run_opts, std::cout));
  });
  CLI::App* pl_rm =
      pipeline->add_subcommand("rm", "Delete a pipeline, its versions and runs (none active)");
  pl_rm->add_option("name", pl_name, "Pipeline name")->required();
  add_pl_project(pl_rm);
  pl_rm->callback([&] { run(PipelineRemove(client, pl_project, pl_name, std::cout)); });

  CLI::App* pipeline_run =
      app.add_subcommand("pipeline-run", "Inspect, cancel and retry pipeline runs");
  pipeline_run->require_subcommand(1);
  auto add_run_arg = [&pl_run](CLI::App* cmd) {
    cmd->add_option("run", pl_run, "Run id")->required();
  };
  PipelineRunListOptions pr_list;
  CLI::App* pr_ls = pipeline_run->add_subcommand("ls", "List a project's pipeline runs, newest first");
  pr_ls->add_option("--pipeline", pr_list.pipeline, "Only runs of this pipeline");
  pr_ls->add_option("--state", pr_list.state,
                    "Only runs in this state: pending, running, succeeded, failed, cancelled")
      ->check(CLI::IsMember({"pending", "running", "succeeded", "failed", "cancelled"}));
  pr_ls->add_option("--schedule", pr_list.schedule, "Only runs this schedule created");
  add_pl_project(pr_ls);
  AddListFlags(pr_ls, &list);
  pr_ls->callback([&] {
    pr_list.project = pl_project;
    run(PipelineRunList(client, pr_list, list, std::cout));
  });
  CLI::App* pr_describe = pipeline_run->add_subcommand(
      "describe", "Show a run: fields, nodes (state, attempt, cache, job, duration), outputs, "
                  "events");
  add_run_arg(pr_describe);
  add_pl_project(pr_describe);
  pr_describe->callback([&] { run(PipelineRunDescribe(client, pl_project, pl_run, std::cout)); });
  CLI::App* pr_cancel = pipeline_run->add_subcommand(
      "cancel", "Cancel a run: running steps are stopped, then the exit handler runs");
  add_run_arg(pr_cancel);
  add_pl_project(pr_cancel);
  pr_cancel->callback([&] { run(PipelineRunCancel(client, pl_project, pl_run, std::cout)); });
  bool retry_wait = false;
  CLI::App* pr_retry = pipeline_run->add_subcommand(
      "retry", "Resume a failed or cancelled run from its failed steps, keeping what succeeded");
  add_run_arg(pr_retry);
  add_pl_project(pr_retry);
  pr_retry->add_flag("--wait", retry_wait,
                     "Wait until the run ends, printing step changes; exit 1 unless it succeeded");
  pr_retry->callback(
      [&] { run(PipelineRunRetry(client, pl_project, pl_run, retry_wait, std::cout)); });
  CLI::App* pr_rm =
      pipeline_run->add_subcommand("rm", "Delete a finished run, its nodes and events");
  add_run_arg(pr_rm);
  add_pl_project(pr_rm);
  pr_rm->callback([&] { run(PipelineRunRemove(client, pl_project, pl_run, std::cout)); });

  CLI::App* schedule = app.add_subcommand(
      "schedule", "Run pipelines on cron or an interval; pause, skip, backfill (docs/pipelines.md)");
  schedule->require_subcommand(1);
  std::string sc_name;
  auto add_schedule_arg = [&sc_name](CLI::App* cmd) {
    cmd->add_option("name", sc_name, "Schedule name")->required();
  };
  CLI::App* sc_create =
      schedule->add_subcommand("create", "Create a schedule from a spec (409 if it exists)");
  sc_create->add_option("-f,--file", pl_file, "Schedule spec file, YAML or JSON ('-': stdin)")
      ->required();
  add_pl_project(sc_create);
  sc_create->callback([&] { run(SchedulePut(client, pl_project, pl_file, false, std::cout)); });
  CLI::App* sc_apply =
      schedule->add_subcommand("apply", "Create a schedule or replace its spec");
  sc_apply->add_option("-f,--file", pl_file, "Schedule spec file, YAML or JSON ('-': stdin)")
      ->required();
  add_pl_project(sc_apply);
  sc_apply->callback([&] { run(SchedulePut(client, pl_project, pl_file, true, std::cout)); });
  CLI::App* sc_ls = schedule->add_subcommand("ls", "List a project's schedules");
  add_pl_project(sc_ls);
  AddListFlags(sc_ls, &list);
  sc_ls->callback([&] { run(ScheduleList(client, pl_project, list, std::cout)); });
  CLI::App* sc_show = schedule->add_subcommand("show", "Show a schedule: timing, next tick, spec");
  add_schedule_arg(sc_show);
  add_pl_project(sc_show);
  sc_show->callback([&] { run(ScheduleShow(client, pl_project, sc_name, std::cout)); });
  CLI::App* sc_rm = schedule->add_subcommand(
      "rm", "Delete a schedule, its ticks and backfills (its runs stay)");
  add_schedule_arg(sc_rm);
  add_pl_project(sc_rm);
  sc_rm->callback([&] { run(ScheduleRemove(client, pl_project, sc_name, std::cout)); });
  CLI::App* sc_pause = schedule->add_subcommand(
      "pause", "Pause a schedule: its ticks are skipped until it resumes (never caught up)");
  add_schedule_arg(sc_pause);
  add_pl_project(sc_pause);
  sc_pause->callback([&] { run(SchedulePause(client, pl_project, sc_name, true, std::cout)); });
  CLI::App* sc_resume = schedule->add_subcommand("resume", "Resume a paused schedule");
  add_schedule_arg(sc_resume);
  add_pl_project(sc_resume);
  sc_resume->callback([&] { run(SchedulePause(client, pl_project, sc_name, false, std::cout)); });
  std::vector<std::string> skip_dates;
  bool skip_remove = false;
  CLI::App* sc_skip = schedule->add_subcommand(
      "skip", "Skip the ticks of dates (YYYY-MM-DD in the schedule's zone), or --remove them");
  add_schedule_arg(sc_skip);
  sc_skip->add_option("dates", skip_dates, "Dates YYYY-MM-DD")->required();
  sc_skip->add_flag("--remove", skip_remove, "Stop skipping these dates");
  add_pl_project(sc_skip);
  sc_skip->callback([&] {
    run(ScheduleSkip(client, pl_project, sc_name, skip_dates, skip_remove, std::cout));
  });
  CLI::App* sc_ticks = schedule->add_subcommand(
      "ticks", "The ticks a schedule handled: created, queued or skipped, and why");
  add_schedule_arg(sc_ticks);
  add_pl_project(sc_ticks);
  AddListFlags(sc_ticks, &list);
  sc_ticks->callback([&] { run(ScheduleTicks(client, pl_project, sc_name, list, std::cout)); });
  BackfillOptions backfill_opts;
  CLI::App* sc_backfill = schedule->add_subcommand(
      "backfill", "Create runs for the schedule's ticks in [--from, --to]");
  add_schedule_arg(sc_backfill);
  sc_backfill
      ->add_option("--from", backfill_opts.from,
                   "First time: RFC 3339 (2026-11-01T00:00:00Z) or YYYY-MM-DD (00:00 UTC)")
      ->required();
  sc_backfill
      ->add_option("--to", backfill_opts.to,
                   "Last time, inclusive: RFC 3339 or YYYY-MM-DD (00:00 UTC)")
      ->required();
  sc_backfill->add_option("--max-concurrency", backfill_opts.max_concurrency,
                          "Runs of the backfill active at once (default 1)")
      ->check(CLI::Range(int64_t{1}, int64_t{100}));
  sc_backfill
      ->add_option("--reprocess", backfill_opts.reprocess,
                   "Ticks that already have a run: none (leave them), failed (default: resume "
                   "failed or cancelled runs) or all (a new run each)")
      ->check(CLI::IsMember({"none", "failed", "all"}));
  add_pl_project(sc_backfill);
  sc_backfill->callback([&] {
    backfill_opts.project = pl_project;
    backfill_opts.name = sc_name;
    run(ScheduleBackfill(client, backfill_opts, std::cout));
  });
  CLI::App* sc_backfills =
      schedule->add_subcommand("backfills", "A schedule's backfills and their progress");
  add_schedule_arg(sc_backfills);
  add_pl_project(sc_backfills);
  sc_backfills->callback([&] { run(ScheduleBackfills(client, pl_project, sc_name, std::cout)); });

  // ---- shim (started by the local executor, not by people: hidden)
  CLI::App* shim = app.add_subcommand("shim", "Supervise one task of the local executor");
  shim->group("");
  std::string shim_dir;
  shim->add_option("--dir", shim_dir, "The task's directory (holds launch.json)")->required();
  shim->callback([&] { exit_code = exec::RunShim(shim_dir); });

  // ---- serve
  CLI::App* serve = app.add_subcommand(
      "serve", "Serve a model repository over KServe V2 and TF Serving REST (docs/serving.md)");
  ServeOptions serve_opts;
  serve->add_option("--repository", serve_opts.repository, "Model repository directory")
      ->required();
  serve->add_option("--http", serve_opts.http,
                    "ADDRESS:PORT of the REST front end (default 127.0.0.1:8000; port 0 = any)");
  serve->add_option("--grpc", serve_opts.grpc,
                    "ADDRESS:PORT of the KServe V2 gRPC front end (default: none; port 0 = any)");
  serve->add_option("--model-control-mode", serve_opts.model_control_mode,
                    "none (load all at start), poll (reload on changes) or explicit "
                    "(--load-model and the repository API)")
      ->check(CLI::IsMember({"none", "poll", "explicit"}));
  serve->add_option("--load-model", serve_opts.load_models,
                    "Explicit mode: a model to load at start (repeatable)");
  serve->add_option("--poll-interval-ms", serve_opts.poll_interval_ms,
                    "Poll mode: how often the repository is rescanned (default 5000)");
  serve->add_option("--http-threads", serve_opts.http_threads, "I/O threads (0 = one per core)");
  serve->add_option("--max-body-mib", serve_opts.max_body_mib,
                    "Largest request body in MiB (default 64)");
  serve->add_option("--backend-dir", serve_opts.backend_dir,
                    "Where the liblathe_backend_*.so live (default: backends/ beside lathe)");
  serve->add_option("--token-file", serve_opts.token_file,
                    "Bearer tokens, one per line: required on every route but health when "
                    "given; repository load/unload need one");
  serve->add_option("--url-file", serve_opts.url_file,
                    "Write http://HOST:PORT here once listening (removed on exit)");
  serve->add_option("--log-level", serve_opts.log_level, "debug, info, warn, error or off");
  serve->callback([&] {
    if (Status st = ValidateServeOptions(serve_opts); !st.ok()) {
      exit_code = Finish(st);
      return;
    }
    exit_code = RunServe(serve_opts);
  });

  // ---- sim
  CLI::App* sim = app.add_subcommand(
      "sim", "Simulate the scheduler on a cluster trace in virtual time, comparing policies");
  SimCommandOptions so;
  sim->add_option("--trace", so.trace, "Trace file, or PODS,NODES for openb")->required();
  sim->add_option("--format", so.format, "Trace format: philly, openb or csv")
      ->required()
      ->check(CLI::IsMember({"philly", "openb", "csv"}));
  sim->add_option("--cluster", so.cluster,
                  "Cluster-and-queues YAML (optional for openb with a node list)");
  sim->add_option("--policies", so.policies, "Comma-separated policies (default fifo,lathe)");
  sim->add_option("--mode", so.mode,
                  "events (arrivals and completions) or fgd-fill (FGD's fill-to-capacity protocol)")
      ->check(CLI::IsMember({"events", "fgd-fill"}));
  sim->add_option("--max-jobs", so.max_jobs, "Simulate only the first N selected jobs (0 = all)");
  sim->add_option("--sample-every", so.sample_every, "Keep every K-th job of the trace");
  sim->add_option("--start", so.start, "Keep jobs submitted at or after S seconds from trace start");
  sim->add_option("--end", so.end, "Keep jobs submitted before E seconds from trace start");
  sim->add_option("--queues", so.queues, "Keep only jobs of these trace queues (comma-separated)");
  sim->add_option("--cycle-seconds", so.cycle_seconds,
                  "Schedule every N virtual seconds (default: after every event batch)");
  sim->add_option("--sample-seconds", so.sample_seconds,
                  "Utilisation series interval (default: trace span / 200)");
  sim->add_option("--seed", so.seed, "Seed for random choices and fgd-fill sampling (default 1)");
  sim->add_option("--on-bad-row", so.on_bad_row, "abort (default) or skip bad trace rows")
      ->check(CLI::IsMember({"abort", "skip"}));
  sim->add_option("--fill-until", so.fill_until,
                  "fgd-fill: stop when requested GPUs reach this % of capacity (default 100)");
  sim->add_option("--fill-order", so.fill_order,
                  "fgd-fill: sample (default: tasks drawn with replacement) or trace (every pod once, "
                  "shuffled, then drawn with replacement: FGD's artifact)")
      ->check(CLI::IsMember({"sample", "trace"}));
  sim->add_option("--fill-nodes", so.fill_nodes,
                  "fgd-fill: all (default) or gpu (only nodes with GPUs, as FGD's artifact)")
      ->check(CLI::IsMember({"all", "gpu"}));
  sim->add_option("--baseline-variant", so.baseline_variant,
                  "lathe (default) or artifact: bestfit, dotproduct, gpu-packing and gpu-clustering "
                  "score as FGD's artifact does (cpu and GPU only, integer scores, ties to the "
                  "smallest node name)")
      ->check(CLI::IsMember({"lathe", "artifact"}));
  sim->add_flag("--no-estimates", so.no_estimates, "Do not tell the scheduler job durations");
  sim->add_flag("--validate", so.validate, "Validate every snapshot (slower)");
  sim->add_flag("-q,--quiet", so.quiet, "No progress on stderr");
  sim->callback([&] {
    so.output = client.output;
    run(RunSim(so, std::cout, std::cerr));
  });

  // Global options are accepted after the subcommand too.
  for (CLI::App* sub : app.get_subcommands({})) {
    sub->fallthrough();
    for (CLI::App* subsub : sub->get_subcommands({})) {
      subsub->fallthrough();
      for (CLI::App* leaf : subsub->get_subcommands({})) leaf->fallthrough();
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}

}  // namespace
}  // namespace lathe::cli

int main(int argc, char** argv) { return lathe::cli::Main(argc, argv); }
