// Our tables inside the --libsqlite3-db file, their version, and the migrations between versions
// (doc/protocol.md §6.4). Our tables carry a `roundhouse_` prefix so they sit beside a gearmand
// table (default `gearman_queue`) in the same file.
//
// Version 1:
//   roundhouse_meta(key TEXT PRIMARY KEY, value INTEGER)   'schema_version', 'handle_ceiling'
//   roundhouse_jobs(id INTEGER PRIMARY KEY, handle TEXT, function BLOB, unique_key BLOB,
//                   priority INTEGER, when_to_run INTEGER, reducer BLOB, data BLOB)
// `id` is the number in the job's handle, so id order is submission order. Every column is NOT
// NULL; an empty unique is an empty BLOB and never collides (one row per job).
//
// Version 2 adds the Jenkins tables (roundhouse_jenkins_masters, roundhouse_jenkins_journal).
// Version 3 stores new background jobs in segments, one row per group commit:
//   roundhouse_job_segments(id INTEGER PRIMARY KEY, records BLOB)   format: segment_codec.h
//   roundhouse_job_segment_done(segment INTEGER PRIMARY KEY, done BLOB)  finished-job bitmaps
// (why, and how segments are deleted and compacted: segment_index.h). roundhouse_jobs keeps the
// rows of earlier versions and the jobs imported from gearmand; both tables are replayed.
// Version 4 checksums everything a job's fate depends on (doc/storage.md):
//   - each segment record ends with its CRC-32C (segment_codec.h); the migration rewrites the
//     version 3 segments in the new format;
//   - roundhouse_job_segment_done.checksum: CRC-32C of the bitmap;
//   - roundhouse_jobs.checksum: the checksum the row's job would carry as a segment record
//     (segment::RecordChecksum), filled in for the existing rows by the migration.
// A NULL checksum (possible only by editing the file) counts as a mismatch.
//
// To change the schema, append a migration to the table in sqlite_schema.cc and raise
// kSchemaVersion.
//
// Thread-safety: functions take the connection they use; call them from its owning thread.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "storage/crc32c.h"
#include "storage/segment_codec.h"

namespace roundhouse::storage {

// 2: the Jenkins tables; 3: job segments; 4: checksums
inline constexpr int kSchemaVersion = 4;
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

// The checksum stored beside a finished-job bitmap.
inline uint32_t BitmapChecksum(std::string_view done) { return Crc32c(done); }

// One stored job segment as ScanSegments hands it over: its records (bytes pointing into `blob`,
// damaged ones flagged) and its finished-job bitmap (bit i = record i removed; shorter than
// needed reads as zeros). Valid during the callback only.
struct SegmentScan {
  uint64_t id = 0;
  std::string_view blob;
  std::string_view done;
  // The bitmap's checksum matched (or the segment has no bitmap). When false, which of the
  // records finished is unknown: finished() answers false for all of them.
  bool done_intact = true;
  std::vector<segment::Reader::Entry> records;
  // Where the bytes that could not be delimited into records begin (blob.size() if none).
  size_t readable_bytes = 0;

  bool finished(size_t slot) const {
    return done_intact && slot / 8 < done.size() &&
           (static_cast<uint8_t>(done[slot / 8]) >> (slot % 8) & 1) != 0;
  }
  // Anything damaged that may hold a job still queued: a damaged record not known finished, an
  // unreadable rest, or a damaged bitmap.
  bool damaged() const;
  // One printable line per damaged part, saying what it held ("job segment 7 record 3 (byte
  // 412): checksum mismatch; lost handle H:x:12, function f, ...").
  std::vector<std::string> DescribeDamage() const;
};

// Calls `fn` for every job segment in id order, inside the caller's transaction, and stops at
// the first error it returns. Damage inside a segment is not an error (see SegmentScan); an error
// is SQLite's (including a database page it reports corrupt).
Status ScanSegments(sqlite3* db, const std::function<Status(const SegmentScan&)>& fn);

// A roundhouse_jobs row's values as a job record, the way replay reads them (a priority out of
// range reads as NORMAL). Columns from `first` on: id, handle, function, unique_key, reducer,
// data, priority, when_to_run (the order of kSelectJobRowsSql).
JobRecord JobFromRow(sqlite3_stmt* stmt, int first);
extern const char kSelectJobRowsSql[];

}  // namespace roundhouse::storage
