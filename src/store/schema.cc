// Lathe's schema history. Append only: a released migration is never edited.
#include "store/migrations.h"

namespace lathe::store {

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
  };
  return *kMigrations;
}

}  // namespace lathe::store
