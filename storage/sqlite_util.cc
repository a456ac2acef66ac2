#include "storage/sqlite_util.h"

namespace roundhouse::storage::sql {

Status Error(sqlite3* db, std::string_view what) {
  std::string message(what);
  message += ": ";
  message += db != nullptr ? sqlite3_errmsg(db) : "out of memory";
  if (db != nullptr && (sqlite3_errcode(db) & 0xff) == SQLITE_CORRUPT) message += kCorruptHint;
  return Status::Error(std::move(message));
}

Result<Db> OpenDb(const std::string& path, int busy_timeout_ms) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) return Error(raw, "cannot open SQLite database " + path);
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, busy_timeout_ms);
  return db;
}

Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) == SQLITE_OK) return Status::Ok();
  std::string message = err != nullptr ? err : sqlite3_errmsg(db);
  sqlite3_free(err);
  return Status::Error(message);
}

Result<Stmt> Prepare(sqlite3* db, std::string_view sql, bool persistent) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    persistent ? SQLITE_PREPARE_PERSISTENT : 0, &raw, nullptr);
  Stmt stmt(raw);
  if (rc != SQLITE_OK) return Error(db, "cannot prepare \"" + std::string(sql) + "\"");
  return stmt;
}

Status StepDone(sqlite3* db, sqlite3_stmt* stmt, std::string_view what) {
  const int rc = sqlite3_step(stmt);
  Status status = rc == SQLITE_DONE || rc == SQLITE_ROW ? Status::Ok() : Error(db, what);
  sqlite3_reset(stmt);
  return status;
}

std::string QuoteIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

Result<bool> TableExists(sqlite3* db, std::string_view name) {
  auto stmt = Prepare(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
  if (!stmt.ok()) return stmt.status();
  sqlite3_stmt* s = stmt.value().get();
  sqlite3_bind_text(s, 1, name.data(), static_cast<int>(name.size()), SQLITE_STATIC);
  const int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Error(db, "cannot read the schema");
}

}  // namespace roundhouse::storage::sql
