#include "storage/batch_writer.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "storage/segment_codec.h"
#include "storage/sqlite_schema.h"

namespace roundhouse::storage {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

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
      {&w.insert_segment_, "INSERT INTO roundhouse_job_segments(id, records) VALUES(?1, ?2)"},
      {&w.read_segment_, "SELECT records FROM roundhouse_job_segments WHERE id = ?1"},
      {&w.delete_segment_, "DELETE FROM roundhouse_job_segments WHERE id = ?1"},
      {&w.put_done_,
       "INSERT OR REPLACE INTO roundhouse_job_segment_done(segment, done) VALUES(?1, ?2)"},
      {&w.delete_done_, "DELETE FROM roundhouse_job_segment_done WHERE segment = ?1"},
      // Jobs stored one per row (before schema v3, or imported from gearmand).
      {&w.remove_row_, "DELETE FROM roundhouse_jobs WHERE id = ?1"},
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
  for (const auto& s : statements) {
    auto stmt = sql::Prepare(raw, s.sql, /*persistent=*/true);
    if (!stmt.ok()) return Status::Error(w.path_ + ": " + stmt.status().message());
    *s.slot = std::move(stmt).value();
  }
  if (Status s = w.LoadIndex(); !s.ok()) return s;
  return w;
}

Status BatchWriter::LoadIndex() {
  sqlite3* db = db_.get();
  if (Status s = sql::Exec(db, "BEGIN"); !s.ok()) return Status::Error(path_ + ": " + s.message());
  const Status status = ScanSegments(db, [&](const SegmentScan& scan) {
    std::vector<uint64_t> ids;
    ids.reserve(scan.records.size());
    for (const auto& entry : scan.records) ids.push_back(entry.id);
    index_.Load(scan.id, std::move(ids), scan.blob.size(),
                std::vector<uint8_t>(scan.done.begin(), scan.done.end()));
    return Status::Ok();
  });
  (void)sql::Exec(db, "COMMIT");
  if (!status.ok()) return Status::Error(path_ + ": " + status.message());
  return Status::Ok();
}

Status BatchWriter::Apply(const std::vector<WriteOp>& ops) {
  sqlite3* db = db_.get();
  // Position of the last remove of each id, only built when the batch has removes.
  std::unordered_map<uint64_t, size_t> last_remove;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (const auto* r = std::get_if<RemoveOp>(&ops[i])) last_remove[r->id] = i;
  }
  // In order: every remove and other row change runs (or is planned) where it stands; the adds go
  // into the batch's new segment in order. The outcome is the same as applying `ops` one by one:
  // an add with a later remove of its id is not written at all, and every other add concerns an
  // id that no later op touches. It is all one transaction either way.
  delta_.clear();
  for (size_t i = 0; i < ops.size(); ++i) {
    Status status = std::visit(
        Overloaded{
            [&](const JobRecord& rec) {
              if (!last_remove.empty()) {
                auto it = last_remove.find(rec.id);
                if (it != last_remove.end() && it->second > i) return Status::Ok();
              }
              segment::AppendRecord(rec, index_.PlanAppend(rec.id, &delta_));
              return Status::Ok();
            },
            [&](const RemoveOp& op) {
              if (index_.PlanRemove(op.id, &delta_)) return Status::Ok();
              sqlite3_bind_int64(remove_row_.get(), 1, static_cast<sqlite3_int64>(op.id));
              return sql::StepDone(db, remove_row_.get(), "cannot delete a job");
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
  if (Status s = PlanCompaction(); !s.ok()) return s;
  return WriteSegments();
}

Status BatchWriter::PlanCompaction() {
  sqlite3* db = db_.get();
  for (uint64_t id : index_.PlanCompaction(delta_)) {
    const SegmentIndex::Segment* state = index_.Find(id, delta_);
    sqlite3_stmt* r = read_segment_.get();
    sqlite3_bind_int64(r, 1, static_cast<sqlite3_int64>(id));
    if (sqlite3_step(r) != SQLITE_ROW) {
      Status error = sql::Error(db, "cannot read job segment " + std::to_string(id));
      sqlite3_reset(r);
      return error;
    }
    segment::Reader reader(std::string_view(static_cast<const char*>(sqlite3_column_blob(r, 0)),
                                            static_cast<size_t>(sqlite3_column_bytes(r, 0))));
    Status status;
    for (uint32_t slot = 0; !reader.done(); ++slot) {
      auto entry = reader.Next();
      if (!entry.ok() || slot >= state->slots) {
        status = Status::Error("job segment " + std::to_string(id) + " changed or is corrupt");
        break;
      }
      if (!state->is_done(slot)) {
        index_.PlanAppend(entry.value().id, &delta_)->append(entry.value().bytes);
      }
    }
    sqlite3_reset(r);
    if (!status.ok()) return status;
    delta_.compacted.push_back(id);
  }
  return Status::Ok();
}

Status BatchWriter::WriteSegments() {
  sqlite3* db = db_.get();
  for (const auto& f : delta_.fresh) {
    sqlite3_bind_int64(insert_segment_.get(), 1, static_cast<sqlite3_int64>(f.id));
    sql::BindBlob(insert_segment_.get(), 2, f.blob);
    if (Status s = sql::StepDone(db, insert_segment_.get(), "cannot store jobs"); !s.ok()) return s;
  }
  auto drop = [&](uint64_t id) {
    for (sqlite3_stmt* s : {delete_segment_.get(), delete_done_.get()}) {
      sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(id));
      if (Status st = sql::StepDone(db, s, "cannot delete finished jobs"); !st.ok()) return st;
    }
    return Status::Ok();
  };
  for (uint64_t id : delta_.compacted) {
    if (Status s = drop(id); !s.ok()) return s;
  }
  for (const auto& [id, state] : delta_.touched) {
    if (state.live == 0) {
      if (Status s = drop(id); !s.ok()) return s;
      continue;
    }
    // A compacted segment is gone already; the bitmap of a live one is replaced.
    if (std::find(delta_.compacted.begin(), delta_.compacted.end(), id) != delta_.compacted.end()) {
      continue;
    }
    sqlite3_stmt* s = put_done_.get();
    sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(id));
    sql::BindBlob(
        s, 2,
        std::string_view(reinterpret_cast<const char*>(state.done.data()), state.done.size()));
    if (Status st = sql::StepDone(db, s, "cannot mark jobs finished"); !st.ok()) return st;
  }
  return Status::Ok();
}

Status BatchWriter::Commit(const std::vector<WriteOp>& ops) {
  sqlite3* db = db_.get();
  Status status = sql::StepDone(db, begin_.get(), "cannot begin a transaction");
  if (status.ok()) status = Apply(ops);
  if (status.ok()) status = sql::StepDone(db, commit_.get(), "cannot commit");
  if (status.ok()) {
    index_.Apply(std::move(delta_));
    return status;
  }
  delta_.clear();
  // A failed statement or COMMIT may leave the transaction open (SQLITE_FULL, SQLITE_BUSY on
  // COMMIT); roll it back so the next batch starts clean.
  if (sqlite3_get_autocommit(db) == 0) (void)sql::StepDone(db, rollback_.get(), "rollback");
  return Status::Error("SQLite write to " + path_ + " failed: " + status.message());
}

}  // namespace roundhouse::storage
