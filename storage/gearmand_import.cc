#include "storage/gearmand_import.h"

#include <algorithm>
#include <optional>
#include <set>
#include <string>

#include "base/text.h"
#include "storage/sqlite_schema.h"
#include "storage/sqlite_util.h"

namespace roundhouse::storage {
namespace {

// The column names of `table` (PRAGMA table_info).
Result<std::set<std::string>> Columns(sqlite3* db, const std::string& table) {
  auto stmt = sql::Prepare(db, "PRAGMA table_info(" + sql::QuoteIdentifier(table) + ")");
  if (!stmt.ok()) return stmt.status();
  std::set<std::string> names;
  int rc;
  while ((rc = sqlite3_step(stmt.value().get())) == SQLITE_ROW) {
    names.insert(sql::ColumnBytes(stmt.value().get(), 1));
  }
  if (rc != SQLITE_DONE) return sql::Error(db, "cannot read the columns of " + table);
  return names;
}

Result<uint64_t> HighestStoredId(sqlite3* db) {
  auto stmt = sql::Prepare(db, "SELECT max(id) FROM roundhouse_jobs");
  if (!stmt.ok()) return stmt.status();
  if (sqlite3_step(stmt.value().get()) != SQLITE_ROW) {
    return sql::Error(db, "cannot read the highest job id");
  }
  return static_cast<uint64_t>(sqlite3_column_int64(stmt.value().get(), 0));
}

// An integer column value; TEXT or BLOB holding exactly a decimal integer counts too (a table
// created without type affinity keeps what the writer bound). Anything else: nullopt.
std::optional<int64_t> IntegerValue(sqlite3_stmt* s, int col) {
  const int type = sqlite3_column_type(s, col);
  if (type == SQLITE_INTEGER) return sqlite3_column_int64(s, col);
  if (type != SQLITE_TEXT && type != SQLITE_BLOB) return std::nullopt;
  return ParseDecimal<int64_t>(sql::ColumnBytes(s, col));
}

uint8_t ImportedPriority(sqlite3_stmt* s, int col) {
  const std::optional<int64_t> p = IntegerValue(s, col);
  return p && *p >= 0 && *p <= 2 ? static_cast<uint8_t>(*p) : 1;
}

int64_t ImportedWhen(sqlite3_stmt* s, int col) {
  return std::max<int64_t>(0, IntegerValue(s, col).value_or(0));
}

// Everything between BEGIN IMMEDIATE and COMMIT; the caller rolls back on error.
Result<uint64_t> CopyRows(sqlite3* db, const ImportOptions& options) {
  auto columns = Columns(db, options.table);
  if (!columns.ok()) return columns.status();
  const auto& have = columns.value();
  for (const char* required : {"unique_key", "function_name", "data"}) {
    if (have.count(required) == 0) {
      return Status::Error("table " + options.table + " has no column " + required +
                           "; it is not a gearmand libsqlite3 queue");
    }
  }
  const std::string table = sql::QuoteIdentifier(options.table);
  const std::string select = std::string("SELECT unique_key, function_name, ") +
                             (have.count("priority") != 0 ? "priority" : "1") + ", data, " +
                             (have.count("when_to_run") != 0 ? "when_to_run" : "0") + " FROM " +
                             table + " ORDER BY rowid";
  auto rows = sql::Prepare(db, select);
  if (!rows.ok()) return rows.status();

  auto ceiling = ReadHandleCeiling(db);
  if (!ceiling.ok()) return ceiling.status();
  auto highest = HighestStoredId(db);
  if (!highest.ok()) return highest.status();
  uint64_t next_id =
      std::max({options.first_id, ceiling.value(), highest.value() + 1, uint64_t{1}});

  auto insert = sql::Prepare(db,
                             "INSERT INTO roundhouse_jobs(id, handle, function, unique_key, "
                             "priority, when_to_run, reducer, data, checksum) "
                             "VALUES(?1, ?2, ?3, ?4, ?5, ?6, x'', ?7, ?8)");
  if (!insert.ok()) return insert.status();

  sqlite3_stmt* r = rows.value().get();
  sqlite3_stmt* ins = insert.value().get();
  uint64_t imported = 0;
  int rc;
  while ((rc = sqlite3_step(r)) == SQLITE_ROW) {
    JobRecord rec;
    rec.id = next_id;
    rec.handle = options.handle_prefix + ":" + std::to_string(next_id);
    rec.unique = sql::ColumnBytes(r, 0);
    rec.function = sql::ColumnBytes(r, 1);
    rec.data = sql::ColumnBytes(r, 3);
    rec.priority = static_cast<uint8_t>(ImportedPriority(r, 2));
    rec.when = ImportedWhen(r, 4);
    sqlite3_bind_int64(ins, 1, static_cast<sqlite3_int64>(next_id));
    sqlite3_bind_text(ins, 2, rec.handle.data(), static_cast<int>(rec.handle.size()),
                      SQLITE_STATIC);
    sql::BindBlob(ins, 3, rec.function);
    sql::BindBlob(ins, 4, rec.unique);
    sqlite3_bind_int(ins, 5, rec.priority);
    sqlite3_bind_int64(ins, 6, rec.when);
    sql::BindBlob(ins, 7, rec.data);
    sqlite3_bind_int64(ins, 8, static_cast<sqlite3_int64>(segment::RecordChecksum(rec)));
    if (Status s = sql::StepDone(db, ins, "cannot store an imported job"); !s.ok()) return s;
    ++next_id;
    ++imported;
  }
  if (rc != SQLITE_DONE) return sql::Error(db, "cannot read " + options.table);
  if (imported == 0) return imported;
  // The write lock is held since BEGIN IMMEDIATE, so the rows copied are all the rows.
  rows.value().reset();
  const std::string delete_all = "DELETE FROM " + table;
  if (Status s = sql::Exec(db, delete_all.c_str()); !s.ok()) return s;

  auto raise = sql::Prepare(db, kRaiseCeilingSql);
  if (!raise.ok()) return raise.status();
  sqlite3_bind_int64(raise.value().get(), 1, static_cast<sqlite3_int64>(next_id));
  if (Status s = sql::StepDone(db, raise.value().get(), "cannot raise the handle ceiling");
      !s.ok()) {
    return s;
  }
  return imported;
}

}  // namespace

Result<uint64_t> ImportGearmandTable(sqlite3* db, const ImportOptions& options) {
  if (options.table.empty()) return uint64_t{0};
  if (options.table == kJobsTable || options.table == kMetaTable) {
    return Status::Error("--libsqlite3-table " + options.table +
                         " names one of roundhouse's own tables");
  }
  auto exists = sql::TableExists(db, options.table);
  if (!exists.ok()) return exists.status();
  if (!exists.value()) return uint64_t{0};

  if (Status s = sql::Exec(db, "BEGIN IMMEDIATE"); !s.ok()) {
    return Status::Error("cannot lock the database to import " + options.table + ": " +
                         s.message());
  }
  auto imported = CopyRows(db, options);
  Status status = imported.status();
  if (status.ok()) status = sql::Exec(db, "COMMIT");
  if (!status.ok()) {
    if (sqlite3_get_autocommit(db) == 0) (void)sql::Exec(db, "ROLLBACK");
    return Status::Error("import of gearmand table " + options.table +
                         " failed: " + status.message());
  }
  return imported;
}

}  // namespace roundhouse::storage
