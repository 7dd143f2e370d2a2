// Versioned, forward-only schema migrations.
//
// The schema's history is the list returned by SchemaMigrations() (schema.cc):
// version 1, 2, 3, … each applied at most once, in order, each in its own
// transaction together with its row in `schema_migrations`. A migration is
// never edited once released; changes are new migrations.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/store.h"

namespace lathe::store {

struct Migration {
  int version = 0;
  std::string name;
  // Portable DDL (see store.h), several statements separated by ';'.
  std::string sql;
  // When non-empty, used on PostgreSQL instead of `sql`.
  std::string postgres_sql;
};

// Lathe's schema history, oldest first.
const std::vector<Migration>& SchemaMigrations();

// Applies the migrations in `migrations` that the store has not seen.
// FAILED_PRECONDITION when the store's version is newer than the last of
// `migrations`: "database schema is at version 7 but this lathe binary knows
// versions up to 5; upgrade lathe". Safe against concurrent starts.
Status ApplyMigrations(Store& store, const std::vector<Migration>& migrations);

// The highest applied version, 0 for an empty database.
StatusOr<int> CurrentSchemaVersion(Store& store);

// Splits a script into statements on ';' at top level: outside '…' and "…"
// quotes, -- and /* */ comments, and PostgreSQL $tag$…$tag$ bodies. Returns
// the statements trimmed, empty ones dropped, without the ';'. Pure.
// (Added for ApplyMigrations, which runs each statement of a migration in
// the same transaction as its version row.)
std::vector<std::string> SplitSqlStatements(std::string_view script);

}  // namespace lathe::store
