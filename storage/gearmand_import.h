// Import of a gearmand libsqlite3 queue table (doc/protocol.md §6.2, §6.4).
//
// gearmand's table: unique_key TEXT, function_name TEXT, priority INTEGER, data BLOB,
// when_to_run INTEGER (absent in old files), primary key (unique_key, function_name). Each row
// becomes one background job in our table with a fresh id and handle; the imported rows are
// deleted in the same transaction, so a crash leaves either the old rows or the imported jobs,
// never both and never neither.
//
// Thread-safety: uses only the connection passed in; call from that connection's thread while
// no other statement of it is active.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "base/status.h"

namespace roundhouse::storage {

struct ImportOptions {
  std::string table;          // --libsqlite3-table; must not be one of ours
  uint64_t first_id = 0;      // lowest id to hand out (raised as described below)
  std::string handle_prefix;  // handle = prefix + ":" + id
};

// If `options.table` exists and has rows: in one IMMEDIATE transaction, copies every row (in
// rowid order, i.e. gearmand's insertion order) into our jobs table with ids counting up from
// max(first_id, persisted handle ceiling, highest stored id + 1, 1), deletes the copied rows,
// raises the persisted handle ceiling above the last id, and commits. Column values: TEXT or
// BLOB (or anything else, as text) for unique/function/data, NULL as empty; priority outside
// 0..2 (or not an integer; decimal TEXT counts as one) becomes 1; NULL, non-integer or negative
// when_to_run becomes 0.
// Returns the number of jobs imported (0 when the table is absent or empty). On error nothing
// is changed.
Result<uint64_t> ImportGearmandTable(sqlite3* db, const ImportOptions& options);

}  // namespace roundhouse::storage
