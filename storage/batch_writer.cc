#include "storage/batch_writer.h"

#include <unordered_map>
#include <utility>

#include "storage/sqlite_schema.h"

namespace roundhouse::storage {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

constexpr int kRowsPerInsert = 32;
constexpr int kColumns = 8;

constexpr const char kInsertHead[] =
    "INSERT OR REPLACE INTO roundhouse_jobs(id, handle, function, unique_key, priority, "
    "when_to_run, reducer, data) VALUES";

std::string MultiRowInsertSql() {
  std::string sql = kInsertHead;
  for (int i = 0; i < kRowsPerInsert; ++i) {
    sql += i == 0 ? "(?,?,?,?,?,?,?,?)" : ",(?,?,?,?,?,?,?,?)";
  }
  return sql;
}

// Binds `rec` to parameters base+1 .. base+8 in the column order of kInsertHead. SQLITE_STATIC:
// the record outlives the step.
void BindRecord(sqlite3_stmt* s, int base, const JobRecord& rec) {
  sqlite3_bind_int64(s, base + 1, static_cast<sqlite3_int64>(rec.id));
  sqlite3_bind_text(s, base + 2, rec.handle.data(), static_cast<int>(rec.handle.size()),
                    SQLITE_STATIC);
  sql::BindBlob(s, base + 3, rec.function);
  sql::BindBlob(s, base + 4, rec.unique);
  sqlite3_bind_int(s, base + 5, rec.priority);
  sqlite3_bind_int64(s, base + 6, rec.when);
  sql::BindBlob(s, base + 7, rec.reducer);
  sql::BindBlob(s, base + 8, rec.data);
}

}  // namespace

Result<BatchWriter> BatchWriter::Create(sql::Db db, std::string path) {
  BatchWriter w(std::move(db), std::move(path));
  sqlite3* raw = w.db_.get();
  struct {
    sql::Stmt* slot;
    const char* sql;
  } const statements[] = {
      {&w.begin_, "BEGIN IMMEDIATE"},
      {&w.commit_, "COMMIT"},
      {&w.rollback_, "ROLLBACK"},
      // OR REPLACE: a second Add of one id (which the broker does not do) overwrites, never fails
      // the whole batch.
      {&w.insert_,
       "INSERT OR REPLACE INTO roundhouse_jobs(id, handle, function, unique_key, priority, "
       "when_to_run, reducer, data) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
      {&w.insert_many_, nullptr},
      {&w.remove_, "DELETE FROM roundhouse_jobs WHERE id = ?1"},
      {&w.ceiling_, kRaiseCeilingSql},
      {&w.put_master_,
       "INSERT OR REPLACE INTO roundhouse_jenkins_masters(name, settings) VALUES(?1, ?2)"},
      {&w.delete_master_, "DELETE FROM roundhouse_jenkins_masters WHERE name = ?1"},
      {&w.put_journal_,
       "INSERT OR REPLACE INTO roundhouse_jenkins_journal(master, handle, entry) "
       "VALUES(?1, ?2, ?3)"},
      {&w.delete_journal_,
       "DELETE FROM roundhouse_jenkins_journal WHERE master = ?1 AND handle = ?2"},
  };
  const std::string many = MultiRowInsertSql();
  for (const auto& s : statements) {
    auto stmt = sql::Prepare(raw, s.sql != nullptr ? s.sql : many.c_str(), /*persistent=*/true);
    if (!stmt.ok()) return Status::Error(w.path_ + ": " + stmt.status().message());
    *s.slot = std::move(stmt).value();
  }
  return w;
}

Status BatchWriter::Apply(const std::vector<WriteOp>& ops) {
  sqlite3* db = db_.get();
  // Position of the last remove of each id, only built when the batch has removes.
  std::unordered_map<uint64_t, size_t> last_remove;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (const auto* r = std::get_if<RemoveOp>(&ops[i])) last_remove[r->id] = i;
  }
  // Removes and ceilings first, in order; then the adds, in order, many rows per statement. The
  // outcome is the same as applying `ops` in order: an add with a later remove of its id is not
  // written at all, and every other add concerns an id that no later op touches (a remove before
  // it still runs before it). It is all one transaction either way.
  inserts_.clear();
  for (size_t i = 0; i < ops.size(); ++i) {
    Status status = std::visit(
        Overloaded{
            [&](const JobRecord& rec) {
              if (!last_remove.empty()) {
                auto it = last_remove.find(rec.id);
                if (it != last_remove.end() && it->second > i) return Status::Ok();
              }
              inserts_.push_back(&rec);
              return Status::Ok();
            },
            [&](const RemoveOp& op) {
              sqlite3_bind_int64(remove_.get(), 1, static_cast<sqlite3_int64>(op.id));
              return sql::StepDone(db, remove_.get(), "cannot delete a job");
            },
            [&](const CeilingOp& op) {
              sqlite3_bind_int64(ceiling_.get(), 1, static_cast<sqlite3_int64>(op.ceiling));
              return sql::StepDone(db, ceiling_.get(), "cannot store the handle ceiling");
            },
            [&](const RowOp& op) {
              const RowChange& c = *op.change;
              const bool journal = c.table == RowChange::Table::kJournal;
              sqlite3_stmt* s = journal ? (c.remove ? delete_journal_.get() : put_journal_.get())
                                        : (c.remove ? delete_master_.get() : put_master_.get());
              int n = 1;
              sqlite3_bind_text(s, n++, c.key.data(), static_cast<int>(c.key.size()),
                                SQLITE_STATIC);
              if (journal) {
                sqlite3_bind_text(s, n++, c.key2.data(), static_cast<int>(c.key2.size()),
                                  SQLITE_STATIC);
              }
              if (!c.remove) {
                sqlite3_bind_text(s, n, c.value.data(), static_cast<int>(c.value.size()),
                                  SQLITE_STATIC);
              }
              return sql::StepDone(db, s,
                                   journal ? "cannot store a jenkins journal entry"
                                           : "cannot store a jenkins master");
            },
        },
        ops[i]);
    if (!status.ok()) return status;
  }
  size_t next = 0;
  for (; inserts_.size() - next >= kRowsPerInsert; next += kRowsPerInsert) {
    sqlite3_stmt* s = insert_many_.get();
    for (int row = 0; row < kRowsPerInsert; ++row) {
      BindRecord(s, row * kColumns, *inserts_[next + row]);
    }
    // Not cleared afterwards: every parameter is bound again before the next step, and a reset
    // statement never reads the stale SQLITE_STATIC pointers.
    if (Status st = sql::StepDone(db, s, "cannot store a job"); !st.ok()) return st;
  }
  for (; next < inserts_.size(); ++next) {
    BindRecord(insert_.get(), 0, *inserts_[next]);
    if (Status st = sql::StepDone(db, insert_.get(), "cannot store a job"); !st.ok()) return st;
  }
  return Status::Ok();
}

Status BatchWriter::Commit(const std::vector<WriteOp>& ops) {
  sqlite3* db = db_.get();
  Status status = sql::StepDone(db, begin_.get(), "cannot begin a transaction");
  if (status.ok()) status = Apply(ops);
  if (status.ok()) status = sql::StepDone(db, commit_.get(), "cannot commit");
  if (status.ok()) return status;
  // A failed statement or COMMIT may leave the transaction open (SQLITE_FULL, SQLITE_BUSY on
  // COMMIT); roll it back so the next batch starts clean.
  if (sqlite3_get_autocommit(db) == 0) (void)sql::StepDone(db, rollback_.get(), "rollback");
  return Status::Error("SQLite write to " + path_ + " failed: " + status.message());
}

}  // namespace roundhouse::storage
