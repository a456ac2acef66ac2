// The writer side of SqliteStore: one connection, its prepared statements, the index of the job
// segments (segment_index.h), and the commit of one batch of records in one transaction (group
// commit): the batch's new jobs become one new segment row (or a few, past kSegmentBytes), its
// removes set bits in the segments' done bitmaps.
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

#include "base/status.h"
#include "storage/job_store.h"
#include "storage/segment_codec.h"
#include "storage/segment_index.h"
#include "storage/sqlite_util.h"

namespace roundhouse::storage {

// The command-line option that lets start-up drop damaged stored jobs (config key without the
// dashes); named in the error that refuses to start.
inline constexpr char kSkipDamagedOption[] = "--libsqlite3-skip-damaged";

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
  // Takes a connection whose schema is current (PrepareSchema ran), prepares the statements and
  // loads the segment index (reads every segment, checking every record's checksum). Damage to
  // anything that may hold a queued job (SegmentScan::damaged) is an error listing what was
  // found and naming kSkipDamagedOption, unless `skip_damaged`: then each damaged part is logged
  // with what it held and retired for good in one transaction (damaged records marked finished,
  // an unreadable rest cut off, a damaged bitmap replaced by one that counts every intact record
  // as queued), so later starts need no option.
  static Result<BatchWriter> Create(sql::Db db, std::string path, bool skip_damaged);

  BatchWriter(BatchWriter&&) = default;
  BatchWriter& operator=(BatchWriter&&) = default;

  // Applies `ops` in order in one IMMEDIATE transaction and commits (durable on return, as
  // synchronous=FULL). An add followed by a remove of the same id in the batch writes nothing.
  // On failure the transaction is rolled back, nothing of the batch is stored (the index is left
  // as it was), and the Status carries SQLite's message; the connection stays usable.
  Status Commit(const std::vector<WriteOp>& ops);

 private:
  BatchWriter(sql::Db db, std::string path) : db_(std::move(db)), path_(std::move(path)) {}
  Status LoadIndex(bool skip_damaged);
  Status Apply(const std::vector<WriteOp>& ops);
  // Plans the batch's compaction into delta_: reads each chosen segment, copies its live records.
  // A segment that cannot be read, or shows damage to a live record, is logged and pinned
  // (SegmentIndex::Pin) instead: it never fails the batch.
  void PlanCompaction();
  // Writes delta_'s segment rows and bitmaps.
  Status WriteSegments();
  // Stores a finished-job bitmap with its checksum.
  Status PutBitmap(uint64_t id, const std::vector<uint8_t>& done);
  // Start-up with skip_damaged: replaces segment `id`'s bytes by `*records` when given (empty:
  // deletes the segment) and its bitmap by `done`.
  Status RewriteDamaged(uint64_t id, const std::string* records, const std::vector<uint8_t>& done);

  // Statements are declared after db_ so they are finalized before the connection closes.
  sql::Db db_;
  std::string path_;
  sql::Stmt begin_, commit_, rollback_, insert_segment_, read_segment_, delete_segment_, put_done_,
      delete_done_, remove_row_, ceiling_, put_master_, delete_master_, put_journal_,
      delete_journal_;
  SegmentIndex index_;
  SegmentIndex::Delta delta_;  // the batch being committed; applied to index_ after COMMIT
  std::vector<segment::Reader::Entry> live_;  // PlanCompaction's scratch, kept for its capacity
};

}  // namespace roundhouse::storage
