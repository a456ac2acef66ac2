#include "storage/batch_writer.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "base/log.h"
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

Result<BatchWriter> BatchWriter::Create(sql::Db db, std::string path, bool skip_damaged) {
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
       "INSERT OR REPLACE INTO roundhouse_job_segment_done(segment, done, checksum) "
       "VALUES(?1, ?2, ?3)"},
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
  if (Status s = w.LoadIndex(skip_damaged); !s.ok()) return s;
  return w;
}

Status BatchWriter::LoadIndex(bool skip_damaged) {
  sqlite3* db = db_.get();
  // With skip_damaged the damaged parts are retired inside this transaction, so take the write
  // lock from the start (a read transaction cannot always be upgraded).
  if (Status s = sql::Exec(db, skip_damaged ? "BEGIN IMMEDIATE" : "BEGIN"); !s.ok()) {
    return Status::Error(path_ + ": " + s.message());
  }
  // A damaged segment as it is to be rewritten: the readable bytes and the bitmap with every
  // damaged record marked finished.
  struct Repair {
    uint64_t id;
    std::string records;
    bool truncate;
    std::vector<uint8_t> done;
  };
  std::vector<Repair> repairs;
  std::vector<std::string> damage;
  Status status = ScanSegments(db, [&](const SegmentScan& scan) {
    std::vector<uint64_t> ids;
    ids.reserve(scan.records.size());
    for (const auto& entry : scan.records) ids.push_back(entry.intact ? entry.id : 0);
    std::vector<uint8_t> done;
    if (scan.done_intact) done.assign(scan.done.begin(), scan.done.end());
    done.resize((ids.size() + 7) / 8, 0);
    const bool damaged = scan.damaged();
    if (damaged) {
      for (std::string& line : scan.DescribeDamage()) damage.push_back(std::move(line));
    }
    for (size_t slot = 0; slot < scan.records.size(); ++slot) {
      // A damaged record never enters the index as queued (with no skip_damaged, start-up stops
      // below anyway). One already finished was never a loss.
      if (!scan.records[slot].intact) done[slot / 8] |= static_cast<uint8_t>(1u << (slot % 8));
    }
    if (damaged && skip_damaged) {
      const bool truncate = scan.readable_bytes != scan.blob.size();
      repairs.push_back(
          Repair{scan.id, truncate ? std::string(scan.blob.substr(0, scan.readable_bytes)) : "",
                 truncate, done});
      if (scan.readable_bytes == 0) return Status::Ok();  // deleted below, nothing to index
    }
    index_.Load(scan.id, std::move(ids), scan.readable_bytes, std::move(done));
    return Status::Ok();
  });
  if (status.ok()) {
    auto bitmaps = sql::Prepare(db, "SELECT max(segment) FROM roundhouse_job_segment_done");
    status = bitmaps.status();
    if (status.ok() && sqlite3_step(bitmaps.value().get()) == SQLITE_ROW) {
      index_.ReserveIdsBelow(static_cast<uint64_t>(sqlite3_column_int64(bitmaps.value().get(), 0)) +
                             1);
    }
  }
  if (status.ok() && !damage.empty() && !skip_damaged) {
    std::string message = std::to_string(damage.size()) + " damaged part" +
                          (damage.size() == 1 ? "" : "s") + " of stored jobs found:";
    constexpr size_t kListed = 5;
    for (size_t i = 0; i < damage.size() && i < kListed; ++i) message += "\n  " + damage[i];
    if (damage.size() > kListed) {
      message += "\n  ... and " + std::to_string(damage.size() - kListed) + " more";
    }
    message += std::string("\nrefusing to start; start once with ") + kSkipDamagedOption +
               " to drop the damaged jobs (each is logged) and serve the rest (doc/storage.md)";
    status = Status::Error(message);
  }
  if (status.ok() && !repairs.empty()) {
    for (const std::string& line : damage) {
      RH_LOG(kError, "storage: %s: %s (start-up goes on: %s)", path_.c_str(), line.c_str(),
             kSkipDamagedOption);
    }
    for (const Repair& r : repairs) {
      if (!status.ok()) break;
      status = RewriteDamaged(r.id, r.truncate ? &r.records : nullptr, r.done);
    }
  }
  if (status.ok()) {
    status = sql::Exec(db, "COMMIT");
  }
  if (!status.ok() && sqlite3_get_autocommit(db) == 0) (void)sql::Exec(db, "ROLLBACK");
  if (!status.ok()) return Status::Error(path_ + ": " + status.message());
  return Status::Ok();
}

Status BatchWriter::RewriteDamaged(uint64_t id, const std::string* records,
                                   const std::vector<uint8_t>& done) {
  sqlite3* db = db_.get();
  if (records != nullptr && records->empty()) {
    // Nothing readable is left: the segment goes, as a finished one would.
    for (sqlite3_stmt* s : {delete_segment_.get(), delete_done_.get()}) {
      sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(id));
      if (Status st = sql::StepDone(db, s, "cannot drop a damaged job segment"); !st.ok()) {
        return st;
      }
    }
    return Status::Ok();
  }
  if (records != nullptr) {
    auto update = sql::Prepare(db, "UPDATE roundhouse_job_segments SET records = ?2 WHERE id = ?1");
    if (!update.ok()) return update.status();
    sqlite3_bind_int64(update.value().get(), 1, static_cast<sqlite3_int64>(id));
    sql::BindBlob(update.value().get(), 2, *records);
    if (Status st = sql::StepDone(db, update.value().get(), "cannot cut a damaged job segment");
        !st.ok()) {
      return st;
    }
  }
  return PutBitmap(id, done);
}

Status BatchWriter::PutBitmap(uint64_t id, const std::vector<uint8_t>& done) {
  const std::string_view bytes(reinterpret_cast<const char*>(done.data()), done.size());
  sqlite3_stmt* s = put_done_.get();
  sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(id));
  sql::BindBlob(s, 2, bytes);
  sqlite3_bind_int64(s, 3, static_cast<sqlite3_int64>(BitmapChecksum(bytes)));
  return sql::StepDone(db_.get(), s, "cannot mark jobs finished");
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
  PlanCompaction();
  return WriteSegments();
}

void BatchWriter::PlanCompaction() {
  sqlite3* db = db_.get();
  for (uint64_t id : index_.PlanCompaction(delta_)) {
    const SegmentIndex::Segment* state = index_.Find(id, delta_);
    sqlite3_stmt* r = read_segment_.get();
    sqlite3_bind_int64(r, 1, static_cast<sqlite3_int64>(id));
    if (sqlite3_step(r) != SQLITE_ROW) {
      const Status error = sql::Error(db, "cannot read job segment " + std::to_string(id));
      sqlite3_reset(r);
      RH_LOG(kError, "storage: %s: %s; it stays as it is and is no longer compacted", path_.c_str(),
             error.message().c_str());
      index_.Pin(id);
      continue;
    }
    const void* blob = sqlite3_column_blob(r, 0);
    segment::Reader reader(blob == nullptr
                               ? std::string_view()
                               : std::string_view(static_cast<const char*>(blob),
                                                  static_cast<size_t>(sqlite3_column_bytes(r, 0))));
    // Check every live record before copying any: a segment is compacted whole or not at all.
    live_.clear();
    std::string damage;
    uint32_t slot = 0;
    for (; slot < state->slots && !reader.done(); ++slot) {
      auto entry = reader.Next();
      if (!entry.ok()) break;
      if (state->is_done(slot)) continue;  // damage to a finished record loses nothing
      if (!entry.value().intact) {
        damage = "record " + std::to_string(slot) + " of job segment " + std::to_string(id) +
                 ", still queued, is damaged on disk (" +
                 segment::DescribeDamaged(entry.value().bytes) + ")";
        break;
      }
      live_.push_back(entry.value());
    }
    if (damage.empty() && (!reader.done() || slot != state->slots)) {
      // Unreadable or missing records: harmless only if every one of them had finished.
      for (uint32_t s = slot; s < state->slots && damage.empty(); ++s) {
        if (!state->is_done(s)) {
          damage = "job segment " + std::to_string(id) + " cannot be read past byte " +
                   std::to_string(reader.offset()) + " and holds queued jobs there";
        }
      }
      if (damage.empty() && !reader.done()) {
        damage = "job segment " + std::to_string(id) + " holds more records than were written";
      }
    }
    if (!damage.empty()) {
      sqlite3_reset(r);
      RH_LOG(kError,
             "storage: %s: %s; the segment stays as it is and is no longer compacted (the jobs "
             "are still queued in memory; a restart will report them, doc/storage.md)",
             path_.c_str(), damage.c_str());
      index_.Pin(id);
      continue;
    }
    for (const auto& entry : live_) index_.PlanAppend(entry.id, &delta_)->append(entry.bytes);
    sqlite3_reset(r);
    delta_.compacted.push_back(id);
  }
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
    if (Status st = PutBitmap(id, state.done); !st.ok()) return st;
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
