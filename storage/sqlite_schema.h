// Our tables inside the --libsqlite3-db file, their version, and the migrations between versions
// (spec gearman.md §6.4). Our tables carry a `roundhouse_` prefix so they sit beside a gearmand
// table (default `gearman_queue`) in the same file.
//
// Version 1:
//   roundhouse_meta(key TEXT PRIMARY KEY, value INTEGER)   'schema_version', 'handle_ceiling'
//   roundhouse_jobs(id INTEGER PRIMARY KEY, handle TEXT, function BLOB, unique_key BLOB,
//                   priority INTEGER, when_to_run INTEGER, reducer BLOB, data BLOB)
// `id` is the number in the job's handle, so id order is submission order. Every column is NOT
// NULL; an empty unique is an empty BLOB and never collides (one row per job).
//
// A later version adds the Jenkins journal as migration 1 -> 2; append to the migration table in
// sqlite_schema.cc and raise kSchemaVersion.
//
// Thread-safety: functions take the connection they use; call them from its owning thread.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "protocol/status.h"

namespace roundhouse::storage {

inline constexpr int kSchemaVersion = 2;  // 2: the Jenkins tables
inline constexpr char kJobsTable[] = "roundhouse_jobs";
inline constexpr char kMetaTable[] = "roundhouse_meta";

// The schema version recorded in the file: 0 when our meta table is absent (a new file, or one
// only gearmand has used). Fails with a clear message for a file that is not a database.
Result<int> ReadSchemaVersion(sqlite3* db, const std::string& path);

// Brings a freshly opened connection to the current schema: refuses a newer version and a
// non-database before writing anything; then switches the file to WAL, sets synchronous=FULL
// (and max_page_count when non-zero) and applies the pending migrations in one IMMEDIATE
// transaction.
Status PrepareSchema(sqlite3* db, const std::string& path, uint32_t max_page_count);

// Per-connection settings every connection of ours uses (synchronous=FULL; max_page_count when
// non-zero). Writes nothing.
Status ConfigureConnection(sqlite3* db, uint32_t max_page_count);

// The persisted handle ceiling (0 if none), read in the caller's transaction.
Result<uint64_t> ReadHandleCeiling(sqlite3* db);

// SQL that raises the persisted handle ceiling to ?1 and never lowers it.
extern const char kRaiseCeilingSql[];

}  // namespace roundhouse::storage
