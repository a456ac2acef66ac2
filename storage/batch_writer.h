// The writer side of SqliteStore: one connection, its prepared statements, and the commit of
// one batch of records in one transaction (group commit).
//
// Thread-safety: owned and used by the store's writer thread only (constructed on the loop
// thread before that thread starts).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "protocol/status.h"
#include "storage/job_store.h"
#include "storage/sqlite_util.h"

namespace roundhouse::storage {

struct RemoveOp {
  uint64_t id;
};
struct CeilingOp {
  uint64_t ceiling;
};
// A row of one of the Jenkins tables, stored or deleted: a runtime-registered master (key =
// name, value = its settings) or a journal entry (key = master, key2 = handle, value = entry).
// Behind a pointer so the variant stays small (and GCC 12 does not misjudge strings inside it
// as uninitialised).
struct RowChange {
  enum class Table { kMasters, kJournal };
  Table table = Table::kMasters;
  std::string key;
  std::string key2;
  bool remove = false;
  std::string value;
  // Its caller waits for the commit (the store counts it with the Adds of the batch); such a
  // change is not carried over a failed commit, its callback reports the failure instead.
  bool acked = false;
};
struct RowOp {
  std::shared_ptr<const RowChange> change;
};
// One queued record, in the order the loop thread issued it.
using WriteOp = std::variant<JobRecord, RemoveOp, CeilingOp, RowOp>;

class BatchWriter {
 public:
  // Takes a connection whose schema is current (PrepareSchema ran) and prepares the statements.
  static Result<BatchWriter> Create(sql::Db db, std::string path);

  BatchWriter(BatchWriter&&) = default;
  BatchWriter& operator=(BatchWriter&&) = default;

  // Applies `ops` in order in one IMMEDIATE transaction and commits (durable on return, as
  // synchronous=FULL). An add followed by a remove of the same id in the batch writes neither
  // row. On failure the transaction is rolled back, nothing of the batch is stored, and the
  // Status carries SQLite's message; the connection stays usable for later batches.
  Status Commit(const std::vector<WriteOp>& ops);

 private:
  BatchWriter(sql::Db db, std::string path) : db_(std::move(db)), path_(std::move(path)) {}
  Status Apply(const std::vector<WriteOp>& ops);

  // Statements are declared after db_ so they are finalized before the connection closes.
  sql::Db db_;
  std::string path_;
  sql::Stmt begin_, commit_, rollback_, insert_, remove_, ceiling_, put_master_, delete_master_,
      put_journal_, delete_journal_;
  // kRowsPerInsert rows per statement: one cursor and one step for many appended rows.
  sql::Stmt insert_many_;
  std::vector<const JobRecord*> inserts_;  // Apply's scratch: the adds that are written
};

}  // namespace roundhouse::storage
