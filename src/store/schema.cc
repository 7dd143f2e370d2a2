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
  };
  return *kMigrations;
}

}  // namespace lathe::store
