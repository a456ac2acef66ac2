// Small owning wrappers and helpers over the SQLite C API, shared by the store, the schema code
// and the gearmand import. Errors become Status values carrying SQLite's own message.
//
// Thread-safety: a connection (and its statements) is used by one thread at a time; these
// helpers add no locking of their own.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace roundhouse::storage::sql {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// Appended to every message about a file SQLite reports damaged (SQLITE_CORRUPT): the damage is
// below our checksummed records, in SQLite's own structure.
inline constexpr char kCorruptHint[] =
    " (the SQLite structure of the file is damaged: stop the server, copy out what can be read "
    "with tools/rh-salvage DB NEW.db and start on NEW.db with --libsqlite3-skip-damaged; "
    "doc/storage.md)";

// "<what>: <sqlite3_errmsg(db)>", plus kCorruptHint when SQLite reports the file damaged.
Status Error(sqlite3* db, std::string_view what);

// Opens `path` read-write, creating it if missing, with the busy timeout set. Writes nothing.
Result<Db> OpenDb(const std::string& path, int busy_timeout_ms);

// Runs one or more statements that return no rows needed by the caller.
Status Exec(sqlite3* db, const char* sql);

// Prepares `sql`; `persistent` for statements kept for the connection's lifetime.
Result<Stmt> Prepare(sqlite3* db, std::string_view sql, bool persistent = false);

// Steps a statement that returns no rows, then resets it (bindings are kept).
Status StepDone(sqlite3* db, sqlite3_stmt* stmt, std::string_view what);

// Binds `bytes` as a BLOB; an empty view binds an empty BLOB, never NULL. The bytes must stay
// alive and unchanged until the statement is reset or rebound (SQLITE_STATIC).
inline int BindBlob(sqlite3_stmt* stmt, int index, std::string_view bytes) {
  static const char kEmpty = 0;
  return sqlite3_bind_blob64(stmt, index, bytes.empty() ? &kEmpty : bytes.data(), bytes.size(),
                             SQLITE_STATIC);
}

// The column's bytes whatever its storage class (TEXT and BLOB as stored, numbers as text,
// NULL as empty).
inline std::string ColumnBytes(sqlite3_stmt* stmt, int col) {
  const void* p = sqlite3_column_blob(stmt, col);
  const int n = sqlite3_column_bytes(stmt, col);
  return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), n);
}

// `name` as a double-quoted SQL identifier.
std::string QuoteIdentifier(std::string_view name);

// Whether a table called `name` exists in the main schema.
Result<bool> TableExists(sqlite3* db, std::string_view name);

}  // namespace roundhouse::storage::sql
