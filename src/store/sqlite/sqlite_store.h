// The SQLite driver of the Store (store/store.h).
//
// One database file in WAL mode with synchronous=FULL: a write transaction
// whose Commit() returned OK survives kill -9 and power loss. Connections:
//   - one writer connection, guarded by a mutex held for the whole write
//     transaction (BEGIN IMMEDIATE), so writers in this process queue on the
//     mutex and never see SQLITE_BUSY from each other;
//   - `pool_size` reader connections (BEGIN deferred, PRAGMA query_only=ON)
//     handed out from a free list; Begin(kRead) blocks while all are busy.
// Every connection has foreign_keys=ON, the busy timeout, and its own cache
// of prepared statements keyed by SQL text. Another process writing the
// same file makes BEGIN IMMEDIATE wait up to the busy timeout, then ABORTED.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "store/store.h"

namespace lathe::store {

struct SqliteStoreOptions {
  // Path of the database file; its parent directory is created if missing.
  std::string path;
  // Reader connections (at least 1).
  int pool_size = 4;
  // How long a statement waits for another process's lock before ABORTED.
  int busy_timeout_ms = 5000;
  // PRAGMA synchronous for every connection. "FULL" is the product setting
  // (durable on commit); "NORMAL" exists for benchmarks only — it may lose
  // the last commits on power loss.
  std::string synchronous = "FULL";
};

// Opens (creating if needed) the database. Does not run migrations: use
// OpenStore (store.h) for that. INTERNAL/UNAVAILABLE when the file cannot be
// opened or configured. The returned Store is thread-safe.
StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const SqliteStoreOptions& options);

}  // namespace lathe::store
