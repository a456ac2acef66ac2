#include "storage/sqlite_schema.h"

#include <iterator>
#include <string>
#include <unordered_map>

#include "storage/sqlite_util.h"

namespace roundhouse::storage {
namespace {

// migrations[k] takes the schema from version k to k + 1. Append only; never edit a shipped one.
constexpr const char* kMigrations[] = {
    // 0 -> 1: the job table and the meta table.
    "CREATE TABLE roundhouse_meta ("
    "  key TEXT PRIMARY KEY NOT NULL,"
    "  value INTEGER NOT NULL);"
    "CREATE TABLE roundhouse_jobs ("
    "  id INTEGER PRIMARY KEY,"
    "  handle TEXT NOT NULL,"
    "  function BLOB NOT NULL,"
    "  unique_key BLOB NOT NULL,"
    "  priority INTEGER NOT NULL,"
    "  when_to_run INTEGER NOT NULL,"
    "  reducer BLOB NOT NULL,"
    "  data BLOB NOT NULL);",
    // 1 -> 2: Jenkins masters registered at runtime (admin `jenkins add`), settings as
    // `key=value` lines,
    "CREATE TABLE roundhouse_jenkins_masters ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  settings TEXT NOT NULL);"
    // and the journal of builds the adapters dispatched (doc/jenkins.md §4.11), one entry per
    // master and Gearman handle.
    "CREATE TABLE roundhouse_jenkins_journal ("
    "  master TEXT NOT NULL,"
    "  handle TEXT NOT NULL,"
    "  entry TEXT NOT NULL,"
    "  PRIMARY KEY(master, handle));",
    // 2 -> 3: background jobs in segments, one row per group commit (segment_index.h, format in
    // segment_codec.h), and the bitmaps of their finished jobs. roundhouse_jobs stays: rows
    // stored before, and jobs imported from gearmand, are replayed and deleted from there.
    "CREATE TABLE roundhouse_job_segments ("
    "  id INTEGER PRIMARY KEY,"
    "  records BLOB NOT NULL);"
    "CREATE TABLE roundhouse_job_segment_done ("
    "  segment INTEGER PRIMARY KEY,"
    "  done BLOB NOT NULL);",
    // 3 -> 4: checksums. Segment records get their CRC-32C (the v3 blobs are rewritten; one that
    // does not parse is left as it is and reads as damaged), bitmaps and job rows a column.
    // The rh_* functions are registered by PrepareSchema for the migration.
    "UPDATE roundhouse_job_segments SET records = rh_segment_v3_to_v4(records);"
    "ALTER TABLE roundhouse_job_segment_done ADD COLUMN checksum INTEGER;"
    "UPDATE roundhouse_job_segment_done SET checksum = rh_crc32c(done);"
    "ALTER TABLE roundhouse_jobs ADD COLUMN checksum INTEGER;"
    "UPDATE roundhouse_jobs SET checksum = rh_job_checksum(id, handle, function, unique_key, "
    "  reducer, data, priority, when_to_run);",
};
static_assert(std::size(kMigrations) == kSchemaVersion,
              "kSchemaVersion must equal the number of migrations");

// A job record from the row values of roundhouse_jobs, read through `bytes(i)` and `number(i)`
// for the i-th of: id, handle, function, unique_key, reducer, data, priority, when_to_run.
template <class Bytes, class Number>
JobRecord MakeJob(const Bytes& bytes, const Number& number) {
  JobRecord rec;
  rec.id = static_cast<uint64_t>(number(0));
  rec.handle = bytes(1);
  rec.function = bytes(2);
  rec.unique = bytes(3);
  rec.reducer = bytes(4);
  rec.data = bytes(5);
  const int64_t priority = number(6);
  rec.priority = priority >= 0 && priority <= 2 ? static_cast<uint8_t>(priority) : 1;
  rec.when = number(7);
  return rec;
}

std::string ValueBytes(sqlite3_value* v) {
  const void* p = sqlite3_value_blob(v);
  const int n = sqlite3_value_bytes(v);
  return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), n);
}

void SqlCrc32c(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) {
  const std::string bytes = ValueBytes(argv[0]);
  sqlite3_result_int64(ctx, BitmapChecksum(bytes));
}

void SqlJobChecksum(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) {
  const JobRecord rec = MakeJob([&](int i) { return ValueBytes(argv[i]); },
                                [&](int i) { return sqlite3_value_int64(argv[i]); });
  sqlite3_result_int64(ctx, segment::RecordChecksum(rec));
}

void SqlSegmentV3ToV4(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) {
  const std::string v3 = ValueBytes(argv[0]);
  std::string v4;
  if (!segment::ConvertLegacySegment(v3, &v4).ok()) v4 = v3;  // reads as damaged from now on
  sqlite3_result_blob64(ctx, v4.data(), v4.size(), SQLITE_TRANSIENT);
}

Status RegisterMigrationFunctions(sqlite3* db) {
  struct {
    const char* name;
    int args;
    void (*fn)(sqlite3_context*, int, sqlite3_value**);
  } const functions[] = {
      {"rh_crc32c", 1, &SqlCrc32c},
      {"rh_job_checksum", 8, &SqlJobChecksum},
      {"rh_segment_v3_to_v4", 1, &SqlSegmentV3ToV4},
  };
  for (const auto& f : functions) {
    if (sqlite3_create_function_v2(db, f.name, f.args, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
                                   f.fn, nullptr, nullptr, nullptr) != SQLITE_OK) {
      return sql::Error(db, std::string("cannot register ") + f.name);
    }
  }
  return Status::Ok();
}

Result<int64_t> ReadMetaValue(sqlite3* db, const char* key) {
  auto stmt = sql::Prepare(db, "SELECT value FROM roundhouse_meta WHERE key = ?1");
  if (!stmt.ok()) return stmt.status();
  sqlite3_stmt* s = stmt.value().get();
  sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
  const int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) return static_cast<int64_t>(sqlite3_column_int64(s, 0));
  if (rc == SQLITE_DONE) return int64_t{0};
  return sql::Error(db, std::string("cannot read ") + key);
}

Status Migrate(sqlite3* db, const std::string& path) {
  if (Status s = sql::Exec(db, "BEGIN IMMEDIATE"); !s.ok()) {
    return Status::Error("cannot lock " + path + " to update its schema: " + s.message());
  }
  // Re-read inside the write lock: another process may have migrated meanwhile.
  auto version = ReadSchemaVersion(db, path);
  Status status = version.status();
  if (status.ok() && version.value() > kSchemaVersion) {
    status = Status::Error(path + " has schema version " + std::to_string(version.value()) +
                           ", newer than this build knows (" + std::to_string(kSchemaVersion) +
                           "); refusing to use it");
  }
  for (int v = status.ok() ? version.value() : kSchemaVersion; v < kSchemaVersion; ++v) {
    if (Status s = sql::Exec(db, kMigrations[v]); !s.ok()) {
      status = Status::Error("schema migration " + std::to_string(v) + " -> " +
                             std::to_string(v + 1) + " of " + path + " failed: " + s.message());
      break;
    }
  }
  if (status.ok() && version.value() < kSchemaVersion) {
    const std::string set_version =
        "INSERT INTO roundhouse_meta(key, value) VALUES('schema_version', " +
        std::to_string(kSchemaVersion) + ") ON CONFLICT(key) DO UPDATE SET value = excluded.value";
    status = sql::Exec(db, set_version.c_str());
  }
  if (status.ok()) status = sql::Exec(db, "COMMIT");
  if (!status.ok() && sqlite3_get_autocommit(db) == 0) (void)sql::Exec(db, "ROLLBACK");
  return status;
}

}  // namespace

const char kRaiseCeilingSql[] =
    "INSERT INTO roundhouse_meta(key, value) VALUES('handle_ceiling', ?1) "
    "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)";

Result<int> ReadSchemaVersion(sqlite3* db, const std::string& path) {
  auto exists = sql::TableExists(db, kMetaTable);
  if (!exists.ok()) {
    const int code = sqlite3_errcode(db);
    if ((code & 0xff) == SQLITE_NOTADB || (code & 0xff) == SQLITE_CORRUPT) {
      return Status::Error(path + " is not a usable SQLite database (" + sqlite3_errmsg(db) +
                           "); refusing to touch it" +
                           ((code & 0xff) == SQLITE_CORRUPT ? sql::kCorruptHint : ""));
    }
    return Status::Error(path + ": " + exists.status().message());
  }
  if (!exists.value()) return 0;
  auto version = ReadMetaValue(db, "schema_version");
  if (!version.ok()) return Status::Error(path + ": " + version.status().message());
  if (version.value() < 0 || version.value() > 1'000'000) {
    return Status::Error(path + " has an invalid schema version " +
                         std::to_string(version.value()));
  }
  return static_cast<int>(version.value());
}

Status ConfigureConnection(sqlite3* db, uint32_t max_page_count) {
  if (Status s = sql::Exec(db, "PRAGMA synchronous = FULL"); !s.ok()) return s;
  if (max_page_count != 0) {
    const std::string pragma = "PRAGMA max_page_count = " + std::to_string(max_page_count);
    if (Status s = sql::Exec(db, pragma.c_str()); !s.ok()) return s;
  }
  return Status::Ok();
}

Status PrepareSchema(sqlite3* db, const std::string& path, uint32_t max_page_count) {
  // Read before any write: a foreign or newer file must be left exactly as it is.
  auto version = ReadSchemaVersion(db, path);
  if (!version.ok()) return version.status();
  if (version.value() > kSchemaVersion) {
    return Status::Error(path + " has schema version " + std::to_string(version.value()) +
                         ", newer than this build knows (" + std::to_string(kSchemaVersion) +
                         "); refusing to use it");
  }
  auto mode = sql::Prepare(db, "PRAGMA journal_mode = WAL");
  if (!mode.ok()) return mode.status();
  if (sqlite3_step(mode.value().get()) != SQLITE_ROW) {
    return sql::Error(db, "cannot switch " + path + " to WAL mode");
  }
  const std::string got = sql::ColumnBytes(mode.value().get(), 0);
  mode.value().reset();
  if (got != "wal") {
    return Status::Error("cannot switch " + path + " to WAL mode (journal mode stays \"" + got +
                         "\")");
  }
  if (Status s = ConfigureConnection(db, max_page_count); !s.ok()) {
    return Status::Error(path + ": " + s.message());
  }
  if (Status s = RegisterMigrationFunctions(db); !s.ok()) return s;
  return Migrate(db, path);
}

Status ScanSegments(sqlite3* db, const std::function<Status(const SegmentScan&)>& fn) {
  struct Bitmap {
    std::string done;
    bool intact = false;
  };
  std::unordered_map<uint64_t, Bitmap> done;
  auto bitmaps =
      sql::Prepare(db, "SELECT segment, done, checksum FROM roundhouse_job_segment_done");
  if (!bitmaps.ok()) return bitmaps.status();
  sqlite3_stmt* b = bitmaps.value().get();
  int rc;
  while ((rc = sqlite3_step(b)) == SQLITE_ROW) {
    Bitmap& bitmap = done[static_cast<uint64_t>(sqlite3_column_int64(b, 0))];
    bitmap.done = sql::ColumnBytes(b, 1);
    bitmap.intact =
        sqlite3_column_type(b, 2) == SQLITE_INTEGER &&
        static_cast<uint64_t>(sqlite3_column_int64(b, 2)) == BitmapChecksum(bitmap.done);
  }
  if (rc != SQLITE_DONE) return sql::Error(db, "cannot read the job segment bitmaps");

  auto segments = sql::Prepare(db, "SELECT id, records FROM roundhouse_job_segments ORDER BY id");
  if (!segments.ok()) return segments.status();
  sqlite3_stmt* r = segments.value().get();
  SegmentScan scan;
  while ((rc = sqlite3_step(r)) == SQLITE_ROW) {
    scan.id = static_cast<uint64_t>(sqlite3_column_int64(r, 0));
    const void* blob = sqlite3_column_blob(r, 1);
    scan.blob = blob == nullptr ? std::string_view()
                                : std::string_view(static_cast<const char*>(blob),
                                                   static_cast<size_t>(sqlite3_column_bytes(r, 1)));
    auto bits = done.find(scan.id);
    scan.done = bits == done.end() ? std::string_view() : std::string_view(bits->second.done);
    scan.done_intact = bits == done.end() || bits->second.intact;
    scan.records.clear();
    segment::Reader reader(scan.blob);
    while (!reader.done()) {
      auto entry = reader.Next();
      if (!entry.ok()) break;
      scan.records.push_back(entry.value());
    }
    scan.readable_bytes = reader.offset();
    if (Status s = fn(scan); !s.ok()) return s;
  }
  if (rc != SQLITE_DONE) return sql::Error(db, "cannot read the job segments");
  return Status::Ok();
}

bool SegmentScan::damaged() const {
  if (!done_intact || readable_bytes != blob.size()) return true;
  for (size_t slot = 0; slot < records.size(); ++slot) {
    if (!records[slot].intact && !finished(slot)) return true;
  }
  return false;
}

std::vector<std::string> SegmentScan::DescribeDamage() const {
  std::vector<std::string> out;
  const std::string where = "job segment " + std::to_string(id);
  if (!done_intact) {
    out.push_back(where + ": its finished-job bitmap is damaged; which of its " +
                  std::to_string(records.size()) +
                  " records finished is unknown, so all of them count as queued");
  }
  size_t offset = 0;
  for (size_t slot = 0; slot < records.size(); ++slot) {
    const auto& entry = records[slot];
    if (!entry.intact && !finished(slot)) {
      out.push_back(where + " record " + std::to_string(slot) + " (byte " + std::to_string(offset) +
                    "): checksum mismatch; lost " + segment::DescribeDamaged(entry.bytes));
    }
    offset += entry.bytes.size();
  }
  if (readable_bytes != blob.size()) {
    out.push_back(where + ": bytes " + std::to_string(readable_bytes) + " to " +
                  std::to_string(blob.size()) + " (after record " + std::to_string(records.size()) +
                  ") cannot be read as records; the jobs stored there are lost");
  }
  return out;
}

const char kSelectJobRowsSql[] =
    "SELECT id, handle, function, unique_key, reducer, data, priority, when_to_run, checksum "
    "FROM roundhouse_jobs ORDER BY id";

JobRecord JobFromRow(sqlite3_stmt* stmt, int first) {
  return MakeJob(
      [&](int i) { return sql::ColumnBytes(stmt, first + i); },
      [&](int i) { return static_cast<int64_t>(sqlite3_column_int64(stmt, first + i)); });
}

Result<uint64_t> ReadHandleCeiling(sqlite3* db) {
  auto value = ReadMetaValue(db, "handle_ceiling");
  if (!value.ok()) return value.status();
  return static_cast<uint64_t>(value.value());
}

}  // namespace roundhouse::storage
