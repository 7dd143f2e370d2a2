// Lathe's schema history. Append only: a released migration is never edited.
#include "store/migrations.h"

namespace lathe::store {
namespace {

// Migration 3's DDL. SQLite gets WITHOUT ROWID on the small, key-addressed
// tables (one b-tree instead of two); PostgreSQL gets the same DDL without it.
constexpr const char* kTrackingSql = R"sql(
CREATE TABLE tracking_counters (
  name   TEXT PRIMARY KEY,
  value  BIGINT NOT NULL
);
INSERT INTO tracking_counters (name, value) VALUES ('experiment', 0);
CREATE TABLE experiments (
  id                BIGINT PRIMARY KEY,
  project_id        TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name              TEXT NOT NULL,
  artifact_location TEXT NOT NULL,
  lifecycle         TEXT NOT NULL,
  is_default        INTEGER NOT NULL DEFAULT 0,
  creation_time     BIGINT NOT NULL,
  last_update_time  BIGINT NOT NULL
);
CREATE UNIQUE INDEX experiments_by_project_name ON experiments(project_id, name);
CREATE UNIQUE INDEX experiments_default ON experiments(project_id) WHERE is_default = 1;
CREATE TABLE experiment_tags (
  experiment_id BIGINT NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
  key           TEXT NOT NULL,
  value         TEXT NOT NULL,
  PRIMARY KEY (experiment_id, key)
) WITHOUT ROWID;
CREATE TABLE tracking_runs (
  run_id        TEXT PRIMARY KEY,
  experiment_id BIGINT NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
  project_id    TEXT NOT NULL,
  run_name      TEXT NOT NULL,
  user_id       TEXT NOT NULL,
  status        TEXT NOT NULL,
  start_time    BIGINT NOT NULL,
  end_time      BIGINT NOT NULL DEFAULT 0,
  lifecycle     TEXT NOT NULL,
  job_id        TEXT NOT NULL DEFAULT '',
  artifact_uri  TEXT NOT NULL
);
CREATE INDEX tracking_runs_by_experiment ON tracking_runs(experiment_id, start_time);
CREATE INDEX tracking_runs_by_project ON tracking_runs(project_id, start_time);
CREATE TABLE run_params (
  run_id  TEXT NOT NULL REFERENCES tracking_runs(run_id) ON DELETE CASCADE,
  key     TEXT NOT NULL,
  value   TEXT NOT NULL,
  PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX run_params_by_key ON run_params(key, value);
CREATE TABLE run_tags (
  run_id  TEXT NOT NULL REFERENCES tracking_runs(run_id) ON DELETE CASCADE,
  key     TEXT NOT NULL,
  value   TEXT NOT NULL,
  PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX run_tags_by_key ON run_tags(key, value);
CREATE TABLE run_metrics (
  run_id      TEXT NOT NULL REFERENCES tracking_runs(run_id) ON DELETE CASCADE,
  key         TEXT NOT NULL,
  value       DOUBLE PRECISION,
  is_nan      INTEGER NOT NULL,
  timestamp   BIGINT NOT NULL,
  step        BIGINT NOT NULL,
  points      BIGINT NOT NULL,
  next_seq    BIGINT NOT NULL,
  tail_blocks INTEGER NOT NULL,
  tail_points BIGINT NOT NULL,
  PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX run_metrics_by_key ON run_metrics(key, value);
CREATE TABLE metric_blocks (
  run_id     TEXT NOT NULL REFERENCES tracking_runs(run_id) ON DELETE CASCADE,
  key        TEXT NOT NULL,
  seq        BIGINT NOT NULL,
  count      BIGINT NOT NULL,
  min_step   BIGINT NOT NULL,
  max_step   BIGINT NOT NULL,
  min_value  DOUBLE PRECISION,
  min_vstep  BIGINT NOT NULL,
  min_vts    BIGINT NOT NULL,
  max_value  DOUBLE PRECISION,
  max_vstep  BIGINT NOT NULL,
  max_vts    BIGINT NOT NULL,
  last_value DOUBLE PRECISION,
  last_ts    BIGINT NOT NULL,
  data       TEXT NOT NULL,
  PRIMARY KEY (run_id, key, seq)
);
CREATE TABLE metric_batches (
  run_id  TEXT NOT NULL REFERENCES tracking_runs(run_id) ON DELETE CASCADE,
  digest  TEXT NOT NULL,
  PRIMARY KEY (run_id, digest)
) WITHOUT ROWID;
)sql";

// Migration 5's DDL: the model registry. A model has a surrogate id, so a
// rename touches one row and its versions, aliases and tags follow.
// `last_version` numbers versions (1, 2, … never reused, even after a
// delete). Deletes cascade, and the service deletes children explicitly too.
constexpr const char* kRegistrySql = R"sql(
CREATE TABLE registered_models (
  id               TEXT PRIMARY KEY,
  project_id       TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name             TEXT NOT NULL,
  description      TEXT NOT NULL DEFAULT '',
  creation_time    BIGINT NOT NULL,
  last_update_time BIGINT NOT NULL,
  last_version     BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX registered_models_by_project_name ON registered_models(project_id, name);
CREATE TABLE registered_model_tags (
  model_id  TEXT NOT NULL REFERENCES registered_models(id) ON DELETE CASCADE,
  key       TEXT NOT NULL,
  value     TEXT NOT NULL,
  PRIMARY KEY (model_id, key)
) WITHOUT ROWID;
CREATE TABLE model_versions (
  model_id         TEXT NOT NULL REFERENCES registered_models(id) ON DELETE CASCADE,
  version          BIGINT NOT NULL,
  creation_time    BIGINT NOT NULL,
  last_update_time BIGINT NOT NULL,
  user_id          TEXT NOT NULL,
  description      TEXT NOT NULL DEFAULT '',
  stage            TEXT NOT NULL DEFAULT 'None',
  source           TEXT NOT NULL,
  run_id           TEXT NOT NULL DEFAULT '',
  run_link         TEXT NOT NULL DEFAULT '',
  status           TEXT NOT NULL DEFAULT 'READY',
  status_message   TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (model_id, version)
) WITHOUT ROWID;
CREATE INDEX model_versions_by_stage ON model_versions(model_id, stage, version);
CREATE INDEX model_versions_by_run ON model_versions(run_id);
CREATE TABLE model_version_tags (
  model_id  TEXT NOT NULL,
  version   BIGINT NOT NULL,
  key       TEXT NOT NULL,
  value     TEXT NOT NULL,
  PRIMARY KEY (model_id, version, key),
  FOREIGN KEY (model_id, version) REFERENCES model_versions(model_id, version) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE TABLE model_aliases (
  model_id  TEXT NOT NULL,
  alias     TEXT NOT NULL,
  version   BIGINT NOT NULL,
  PRIMARY KEY (model_id, alias),
  FOREIGN KEY (model_id, version) REFERENCES model_versions(model_id, version) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX model_aliases_by_version ON model_aliases(model_id, version);
)sql";

// Migration 6: MLflow dataset inputs, one row per (run, data set).
constexpr const char* kRunInputsSql = R"sql(
CREATE TABLE run_inputs (
  run_id         TEXT NOT NULL REFERENCES tracking_runs(run_id) ON DELETE CASCADE,
  name           TEXT NOT NULL,
  digest         TEXT NOT NULL,
  source_type    TEXT NOT NULL,
  source         TEXT NOT NULL,
  dataset_schema TEXT NOT NULL,
  profile        TEXT NOT NULL,
  tags           TEXT NOT NULL,
  seq            BIGINT NOT NULL,
  PRIMARY KEY (run_id, name, digest)
) WITHOUT ROWID;
)sql";

// Migration 7: MLflow 3 logged models (a model logged to an experiment,
// its files under <artifacts root>/<experiment>/models/<model_id>/artifacts),
// their tags and params, and the models a run produced (run outputs).
// `lifecycle` makes deletes soft, as MLflow's are.
constexpr const char* kLoggedModelsSql = R"sql(
CREATE TABLE logged_models (
  model_id          TEXT PRIMARY KEY,
  project_id        TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  experiment_id     BIGINT NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
  name              TEXT NOT NULL,
  artifact_location TEXT NOT NULL,
  status            TEXT NOT NULL,
  status_message    TEXT NOT NULL DEFAULT '',
  model_type        TEXT NOT NULL DEFAULT '',
  source_run_id     TEXT NOT NULL DEFAULT '',
  user_id           TEXT NOT NULL,
  lifecycle         TEXT NOT NULL,
  creation_time     BIGINT NOT NULL,
  last_update_time  BIGINT NOT NULL
);
CREATE INDEX logged_models_by_experiment ON logged_models(experiment_id, creation_time);
CREATE INDEX logged_models_by_run ON logged_models(source_run_id);
CREATE TABLE logged_model_tags (
  model_id  TEXT NOT NULL REFERENCES logged_models(model_id) ON DELETE CASCADE,
  key       TEXT NOT NULL,
  value     TEXT NOT NULL,
  PRIMARY KEY (model_id, key)
) WITHOUT ROWID;
CREATE TABLE logged_model_params (
  model_id  TEXT NOT NULL REFERENCES logged_models(model_id) ON DELETE CASCADE,
  key       TEXT NOT NULL,
  value     TEXT NOT NULL,
  PRIMARY KEY (model_id, key)
) WITHOUT ROWID;
CREATE TABLE run_outputs (
  run_id    TEXT NOT NULL REFERENCES tracking_runs(run_id) ON DELETE CASCADE,
  model_id  TEXT NOT NULL REFERENCES logged_models(model_id) ON DELETE CASCADE,
  step      BIGINT NOT NULL,
  seq       BIGINT NOT NULL,
  PRIMARY KEY (run_id, model_id, step)
) WITHOUT ROWID;
CREATE INDEX run_outputs_by_model ON run_outputs(model_id);
)sql";

// Migration 8: pipelines (docs/pipelines.md), their versions, runs, the
// nodes a run reached, run events, and the step cache (scope: project).
// A node row records its current attempt's job id in the same transaction
// that inserts the job, so no attempt starts twice.
constexpr const char* kPipelinesSql = R"sql(
CREATE TABLE pipelines (
  id              TEXT PRIMARY KEY,
  project_id      TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name            TEXT NOT NULL,
  description     TEXT NOT NULL DEFAULT '',
  latest_version  BIGINT NOT NULL DEFAULT 0,
  created_by_id   TEXT NOT NULL,
  created_at      BIGINT NOT NULL,
  updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX pipelines_by_project_name ON pipelines(project_id, name);
CREATE TABLE pipeline_versions (
  pipeline_id    TEXT NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
  version        BIGINT NOT NULL,
  spec           TEXT NOT NULL,
  digest         TEXT NOT NULL,
  code           TEXT NOT NULL DEFAULT '',
  created_by_id  TEXT NOT NULL,
  created_at     BIGINT NOT NULL,
  PRIMARY KEY (pipeline_id, version)
) WITHOUT ROWID;
CREATE TABLE pipeline_runs (
  id               TEXT PRIMARY KEY,
  project_id       TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  pipeline_id      TEXT NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
  version          BIGINT NOT NULL,
  params           TEXT NOT NULL,
  state            TEXT NOT NULL,
  reason           TEXT NOT NULL DEFAULT '',
  message          TEXT NOT NULL DEFAULT '',
  created_by_id    TEXT NOT NULL,
  code             TEXT NOT NULL DEFAULT '',
  cache_enabled    INTEGER NOT NULL DEFAULT 1,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  retries          INTEGER NOT NULL DEFAULT 0,
  schedule_id      TEXT NOT NULL DEFAULT '',
  scheduled_time   BIGINT NOT NULL DEFAULT 0,
  created_at       BIGINT NOT NULL,
  started_at       BIGINT NOT NULL DEFAULT 0,
  finished_at      BIGINT NOT NULL DEFAULT 0,
  next_event       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX pipeline_runs_by_state ON pipeline_runs(state, created_at);
CREATE INDEX pipeline_runs_by_project ON pipeline_runs(project_id, created_at);
CREATE INDEX pipeline_runs_by_pipeline ON pipeline_runs(pipeline_id, created_at);
CREATE INDEX pipeline_runs_by_schedule ON pipeline_runs(schedule_id, scheduled_time);
CREATE TABLE pipeline_nodes (
  run_id        TEXT NOT NULL REFERENCES pipeline_runs(id) ON DELETE CASCADE,
  node          TEXT NOT NULL,
  step          TEXT NOT NULL,
  item          INTEGER NOT NULL DEFAULT -1,
  state         TEXT NOT NULL,
  reason        TEXT NOT NULL DEFAULT '',
  message       TEXT NOT NULL DEFAULT '',
  attempt       INTEGER NOT NULL DEFAULT 0,
  job_id        TEXT NOT NULL DEFAULT '',
  job_name      TEXT NOT NULL DEFAULT '',
  outputs       TEXT NOT NULL DEFAULT '{}',
  cached        INTEGER NOT NULL DEFAULT 0,
  cache_key     TEXT NOT NULL DEFAULT '',
  cache_source  TEXT NOT NULL DEFAULT '',
  not_before    BIGINT NOT NULL DEFAULT 0,
  created_at    BIGINT NOT NULL,
  started_at    BIGINT NOT NULL DEFAULT 0,
  finished_at   BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, node)
) WITHOUT ROWID;
CREATE INDEX pipeline_nodes_by_job ON pipeline_nodes(job_id);
CREATE TABLE pipeline_run_events (
  run_id   TEXT NOT NULL REFERENCES pipeline_runs(id) ON DELETE CASCADE,
  seq      INTEGER NOT NULL,
  time     BIGINT NOT NULL,
  type     TEXT NOT NULL,
  reason   TEXT NOT NULL,
  message  TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE pipeline_cache (
  project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  cache_key   TEXT NOT NULL,
  run_id      TEXT NOT NULL,
  node        TEXT NOT NULL,
  outputs     TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  PRIMARY KEY (project_id, cache_key)
) WITHOUT ROWID;
)sql";

// Migration 9: schedules of pipeline runs, every tick they handled (one row
// per (schedule, tick): the guard against duplicate runs after a crash; its
// run's last seen state survives the run's deletion) and backfills. The
// controller's per-pass reads go through the indexes: queued ticks of a
// schedule, its ticks with active runs, a backfill's ticks.
constexpr const char* kSchedulesSql = R"sql(
CREATE TABLE schedules (
  id             TEXT PRIMARY KEY,
  project_id     TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name           TEXT NOT NULL,
  spec           TEXT NOT NULL,
  last_tick      BIGINT NOT NULL DEFAULT 0,
  next_tick      BIGINT NOT NULL DEFAULT 0,
  created_by_id  TEXT NOT NULL,
  created_at     BIGINT NOT NULL,
  updated_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX schedules_by_project_name ON schedules(project_id, name);
CREATE TABLE schedule_ticks (
  schedule_id  TEXT NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
  tick         BIGINT NOT NULL,
  state        TEXT NOT NULL,
  reason       TEXT NOT NULL DEFAULT '',
  message      TEXT NOT NULL DEFAULT '',
  run_id       TEXT NOT NULL DEFAULT '',
  run_state    TEXT NOT NULL DEFAULT '',
  backfill_id  TEXT NOT NULL DEFAULT '',
  attempts     INTEGER NOT NULL DEFAULT 0,
  created_at   BIGINT NOT NULL,
  PRIMARY KEY (schedule_id, tick)
) WITHOUT ROWID;
CREATE INDEX schedule_ticks_by_state ON schedule_ticks(schedule_id, state, tick);
CREATE INDEX schedule_ticks_by_run_state ON schedule_ticks(schedule_id, run_state);
CREATE INDEX schedule_ticks_by_backfill ON schedule_ticks(backfill_id, tick);
CREATE TABLE schedule_backfills (
  id               TEXT PRIMARY KEY,
  schedule_id      TEXT NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
  from_us          BIGINT NOT NULL,
  to_us            BIGINT NOT NULL,
  max_concurrency  INTEGER NOT NULL,
  reprocess        TEXT NOT NULL,
  state            TEXT NOT NULL,
  created_at       BIGINT NOT NULL,
  finished_at      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX schedule_backfills_by_schedule ON schedule_backfills(schedule_id, created_at);
)sql";

std::string WithoutRowidRemoved(std::string sql) {
  const std::string needle = " WITHOUT ROWID";
  for (size_t at; (at = sql.find(needle)) != std::string::npos;) sql.erase(at, needle.size());
  return sql;
}

}  // namespace

const std::vector<Migration>& SchemaMigrations() {
  static const std::vector<Migration>* const kMigrations = new std::vector<Migration>{
      {1, "tenancy: users, projects, memberships, tokens",
       R"sql(
CREATE TABLE users (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  is_admin    INTEGER NOT NULL DEFAULT 0,
  created_at  BIGINT NOT NULL
);
CREATE TABLE projects (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL DEFAULT '',
  created_by  TEXT NOT NULL,
  created_at  BIGINT NOT NULL
);
CREATE TABLE memberships (
  project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role        TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  PRIMARY KEY (project_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships(user_id);
CREATE TABLE tokens (
  id          TEXT PRIMARY KEY,
  user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name        TEXT NOT NULL,
  secret_hash TEXT NOT NULL UNIQUE,
  project_id  TEXT REFERENCES projects(id) ON DELETE CASCADE,
  role        TEXT,
  created_at  BIGINT NOT NULL,
  expires_at  BIGINT,
  revoked_at  BIGINT
);
CREATE INDEX tokens_by_user ON tokens(user_id);
)sql",
       ""},
      {2, "jobs: queues, jobs, job events",
       R"sql(
CREATE TABLE queues (
  name        TEXT PRIMARY KEY,
  parent      TEXT NOT NULL DEFAULT '',
  spec        TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL
);
CREATE TABLE jobs (
  id               TEXT PRIMARY KEY,
  project_id       TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name             TEXT NOT NULL,
  queue            TEXT NOT NULL,
  spec             TEXT NOT NULL,
  phase            TEXT NOT NULL,
  reason           TEXT NOT NULL DEFAULT '',
  message          TEXT NOT NULL DEFAULT '',
  attempt          INTEGER NOT NULL DEFAULT 0,
  restarts         INTEGER NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  code             TEXT NOT NULL DEFAULT '',
  tasks            TEXT NOT NULL DEFAULT '[]',
  created_by       TEXT NOT NULL,
  created_by_id    TEXT NOT NULL,
  created_at       BIGINT NOT NULL,
  admitted_at      BIGINT NOT NULL DEFAULT 0,
  started_at       BIGINT NOT NULL DEFAULT 0,
  finished_at      BIGINT NOT NULL DEFAULT 0,
  not_before       BIGINT NOT NULL DEFAULT 0,
  ttl_seconds      BIGINT NOT NULL DEFAULT 0,
  next_event       INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX jobs_by_project_name ON jobs(project_id, name);
CREATE INDEX jobs_by_phase ON jobs(phase, id);
CREATE INDEX jobs_by_queue ON jobs(queue, phase);
CREATE TABLE job_events (
  job_id   TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  seq      INTEGER NOT NULL,
  time     BIGINT NOT NULL,
  type     TEXT NOT NULL,
  reason   TEXT NOT NULL,
  message  TEXT NOT NULL,
  PRIMARY KEY (job_id, seq)
);
)sql",
       ""},
      {3, "tracking: experiments, runs, params, tags, metric blocks",
       kTrackingSql, WithoutRowidRemoved(kTrackingSql)},
      {4, "jobs: the tracking run of a job",
       "ALTER TABLE jobs ADD COLUMN run_id TEXT NOT NULL DEFAULT ''", ""},
      {5, "registry: registered models, versions, aliases, tags",
       kRegistrySql, WithoutRowidRemoved(kRegistrySql)},
      {6, "tracking: data sets a run read (MLflow log-inputs)",
       kRunInputsSql, WithoutRowidRemoved(kRunInputsSql)},
      {7, "tracking: MLflow 3 logged models, their tags and params, run outputs",
       kLoggedModelsSql, WithoutRowidRemoved(kLoggedModelsSql)},
      {8, "pipelines: versions, runs, nodes, run events, step cache",
       kPipelinesSql, WithoutRowidRemoved(kPipelinesSql)},
      {9, "schedules: ticks and backfills of pipeline runs",
       kSchedulesSql, WithoutRowidRemoved(kSchedulesSql)},
  };
  return *kMigrations;
}

}  // namespace lathe::store
