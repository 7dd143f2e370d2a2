// The PostgreSQL driver of the Store (store/store.h), on libpq.
//
// A pool of `pool_size` connections, opened lazily (the first one eagerly,
// so a wrong URL fails at open); a connection found broken is reset
// (PQreset) before it is handed out. Begin() blocks while all are in use.
// Statements go through PQexecParams with text parameters; `?` placeholders
// are translated to $1…$n once per distinct SQL text (cached).
//
// Isolation: write transactions are `BEGIN ISOLATION LEVEL READ COMMITTED`
// (each statement sees the latest committed data; row locks serialize
// conflicting writers, so callers use `INSERT … ON CONFLICT`, conditional
// UPDATEs or `SELECT … FOR UPDATE` for read-modify-write). Read transactions
// are `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`: one snapshot for the
// whole transaction, as store.h promises for kRead, and writes fail.
//
// Result types follow the column type (PQftype): int2/int4/int8 -> int64,
// bool -> int64 0/1, float4/float8 -> double, numeric -> int64 when its text
// is integral and fits, else double; everything else -> text.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "store/store.h"

namespace lathe::store {

// Opens a pool on the libpq connection URI `url` (postgres://… or
// postgresql://…, libpq query parameters allowed). Uses options.pool_size
// (at least 1). Does not run migrations: use OpenStore (store.h).
// UNAVAILABLE when the server cannot be reached. Thread-safe Store.
StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url,
                                                   const StoreOptions& options);

// `sql` with its `?` placeholders rewritten as $1, $2, …
struct TranslatedSql {
  std::string sql;
  int params = 0;                    // placeholders found
  bool empty = true;                 // nothing but whitespace, ';' and comments
  bool multiple_statements = false;  // a statement follows a top-level ';'
};

// Rewrites `?` placeholders, skipping those inside '…' and "…" quotes,
// $tag$…$tag$ bodies and -- / /* */ comments. Pure.
TranslatedSql TranslatePlaceholders(std::string_view sql);

}  // namespace lathe::store
