#include "storage/sqlite_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>
#include <utility>

#include "base/log.h"
#include "storage/gearmand_import.h"
#include "storage/segment_codec.h"
#include "storage/sqlite_schema.h"
#include "storage/sqlite_util.h"

namespace roundhouse::storage {
namespace {

// "H:<nodename>" with the nodename cut so that prefix + ":" + a 20-digit id fits in 63 bytes.
std::string DefaultHandlePrefix() {
  struct utsname name {};
  std::string node = uname(&name) == 0 ? name.nodename : "localhost";
  return "H:" + node.substr(0, 40);
}

// Calls `fn(segment, entry, in_order)` for every intact live (not removed) record of every job
// segment, in segment order. `in_order` is false for a record whose id is below one already
// seen: one that compaction moved into a newer segment. The same snapshot always gives the same
// answer. Damage (SegmentScan::damaged) is an error naming kSkipDamagedOption unless
// `skip_damaged`; then it is logged when `report`, and the damaged records are left out.
// (BatchWriter::Create has normally found and retired it already; this sees damage that came
// in between.)
Status ScanLiveRecords(
    sqlite3* db, bool skip_damaged, bool report,
    const std::function<Status(uint64_t, const segment::Reader::Entry&, bool)>& fn) {
  uint64_t highest = 0;
  return ScanSegments(db, [&](const SegmentScan& scan) {
    if (scan.damaged()) {
      const std::vector<std::string> lines = scan.DescribeDamage();
      if (!skip_damaged) {
        return Status::Error(lines.front() + "; start with " + kSkipDamagedOption +
                             " to drop it and serve the rest (doc/storage.md)");
      }
      for (const std::string& line : lines) {
        if (report) {
          RH_LOG(kError, "storage: %s (start-up goes on: %s)", line.c_str(), kSkipDamagedOption);
        }
      }
    }
    for (size_t slot = 0; slot < scan.records.size(); ++slot) {
      const segment::Reader::Entry& entry = scan.records[slot];
      if (scan.finished(slot) || !entry.intact) continue;
      const bool in_order = entry.id > highest;
      if (in_order) highest = entry.id;
      if (Status s = fn(scan.id, entry, in_order); !s.ok()) return s;
    }
    return Status::Ok();
  });
}

Status DecodeSegmentRecord(uint64_t segment, const segment::Reader::Entry& entry, JobRecord* rec) {
  Status s = segment::DecodeRecord(entry.bytes, rec);
  if (s.ok()) return s;
  // Intact (checksum matched) yet unparseable: written that way by something else than us.
  return Status::Error("job segment " + std::to_string(segment) + " holds a record that does " +
                       "not parse: " + s.message());
}

// The database may hold secrets (Jenkins tokens registered at runtime) and every queued payload,
// so it is its owner's alone. CreatePrivate makes a missing file 0600 before SQLite opens it, so
// SQLite creates the -wal and -shm files with that mode too. RestrictFileModes tightens an
// existing file (and a -wal/-shm left by an earlier run) that group or others may use to its
// owner bits, with a notice; it runs only once the file is known to be ours to use (a refused
// file is left exactly as it was). A file we may not chmod (someone else's) is used as it is,
// with a warning.
Status CreatePrivate(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Error("cannot open " + path + ": " + std::strerror(errno));
  ::close(fd);
  return Status::Ok();
}

void RestrictFileModes(const std::string& path) {
  for (const std::string& file : {path, path + "-wal", path + "-shm"}) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0 || (st.st_mode & 077) == 0) continue;
    const mode_t mode = st.st_mode & 0700;
    if (::chmod(file.c_str(), mode) != 0) {
      RH_LOG(kWarning, "storage: %s is mode %04o (open to others) and cannot be restricted: %s",
             file.c_str(), static_cast<unsigned>(st.st_mode & 07777), std::strerror(errno));
      continue;
    }
    RH_LOG(kNotice, "storage: %s was mode %04o; restricted to %04o (it may hold secrets)",
           file.c_str(), static_cast<unsigned>(st.st_mode & 07777), static_cast<unsigned>(mode));
  }
}

// Deletes the roundhouse_jobs rows `ids` in one transaction.
Status DeleteRows(sqlite3* db, const std::vector<uint64_t>& ids) {
  if (ids.empty()) return Status::Ok();
  if (Status s = sql::Exec(db, "BEGIN IMMEDIATE"); !s.ok()) return s;
  auto del = sql::Prepare(db, "DELETE FROM roundhouse_jobs WHERE id = ?1");
  Status status = del.status();
  for (size_t i = 0; status.ok() && i < ids.size(); ++i) {
    sqlite3_bind_int64(del.value().get(), 1, static_cast<sqlite3_int64>(ids[i]));
    status = sql::StepDone(db, del.value().get(), "cannot delete a damaged job row");
  }
  if (del.ok()) del.value().reset();
  if (status.ok()) status = sql::Exec(db, "COMMIT");
  if (!status.ok() && sqlite3_get_autocommit(db) == 0) (void)sql::Exec(db, "ROLLBACK");
  return status;
}

void FreeAsync(uv_handle_t* handle) { delete reinterpret_cast<uv_async_t*>(handle); }
void FreeIdle(uv_handle_t* handle) { delete reinterpret_cast<uv_idle_t*>(handle); }

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(uv_loop_t* loop,
                                                       const SqliteOptions& options) {
  if (Status s = CreatePrivate(options.path); !s.ok()) return s;
  auto db = sql::OpenDb(options.path, options.busy_timeout_ms);
  if (!db.ok()) return db.status();
  // Before PrepareSchema creates the -wal file (it takes the database's mode); not for a file
  // PrepareSchema will refuse untouched.
  if (auto version = ReadSchemaVersion(db.value().get(), options.path);
      version.ok() && version.value() <= kSchemaVersion) {
    RestrictFileModes(options.path);
  }
  if (Status s = PrepareSchema(db.value().get(), options.path, options.max_page_count); !s.ok()) {
    return s;
  }
  auto writer = BatchWriter::Create(std::move(db).value(), options.path, options.skip_damaged);
  if (!writer.ok()) return writer.status();

  std::unique_ptr<SqliteStore> store(new SqliteStore(options, std::move(writer).value()));
  // uv_idle_init and uv_async_init cannot fail on Linux for a live loop (libuv 1.x: idle always
  // returns 0; async only fails if the loop's wakeup fd cannot be created, which happened at
  // uv_loop_init). Checked anyway; on failure nothing was started.
  uv_idle_init(loop, store->idle_);
  store->idle_->data = store.get();
  if (const int rc = uv_async_init(loop, store->async_, &SqliteStore::OnAsync); rc != 0) {
    delete store->async_;  // never initialised, so not closed
    store->async_ = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(store->idle_), &FreeIdle);
    store->idle_ = nullptr;
    store->closed_ = true;
    return Status::Error(std::string("uv_async_init: ") + uv_strerror(rc));
  }
  store->async_->data = store.get();
  uv_unref(reinterpret_cast<uv_handle_t*>(store->async_));
  SqliteStore* raw = store.get();
  store->thread_ = std::thread([raw] { raw->WriterMain(); });
  RH_LOG(kInfo, "storage: %s open (schema version %d, WAL, synchronous=FULL)", options.path.c_str(),
         kSchemaVersion);
  return store;
}

SqliteStore::SqliteStore(SqliteOptions options, BatchWriter writer)
    : options_(std::move(options)),
      async_(new uv_async_t{}),
      idle_(new uv_idle_t{}),
      writer_(std::move(writer)) {}

SqliteStore::~SqliteStore() { Close(); }

Result<ReplayInfo> SqliteStore::Replay(const std::function<void(JobRecord&&)>& sink) {
  return Replay(ReplayOptions{}, sink);
}

Result<ReplayInfo> SqliteStore::Replay(const ReplayOptions& options,
                                       const std::function<void(JobRecord&&)>& sink) {
  // A connection of its own: the write connection belongs to the writer thread.
  auto opened = sql::OpenDb(options_.path, options_.busy_timeout_ms);
  if (!opened.ok()) return opened.status();
  sqlite3* db = opened.value().get();
  if (Status s = ConfigureConnection(db, options_.max_page_count); !s.ok()) return s;

  ReplayInfo info;
  ImportOptions import{
      options_.import_table, options.first_import_id,
      options.handle_prefix.empty() ? DefaultHandlePrefix() : options.handle_prefix};
  auto imported = ImportGearmandTable(db, import);
  if (!imported.ok()) return imported.status();
  info.imported = imported.value();
  if (info.imported != 0) {
    RH_LOG(kNotice, "storage: imported %llu jobs from gearmand table %s",
           static_cast<unsigned long long>(info.imported), import.table.c_str());
  }

  // One read transaction, so the ceiling and the jobs are one snapshot.
  if (Status s = sql::Exec(db, "BEGIN"); !s.ok()) return s;
  auto ceiling = ReadHandleCeiling(db);
  if (!ceiling.ok()) return ceiling.status();

  // Jobs go to `sink` in id order (FIFO per priority, as submitted), merged from three sorted
  // sources: the rows of roundhouse_jobs, the segment records in segment order, and the records
  // compaction moved out of that order. Only the last are held in memory (first pass); the rest
  // stream (second pass).
  std::vector<JobRecord> moved;
  const bool skip = options_.skip_damaged;
  Status status =
      ScanLiveRecords(db, skip, /*report=*/true,
                      [&](uint64_t segment, const segment::Reader::Entry& entry, bool in_order) {
                        if (in_order) return Status::Ok();
                        return DecodeSegmentRecord(segment, entry, &moved.emplace_back());
                      });
  if (!status.ok()) return Status::Error(options_.path + ": " + status.message());
  std::sort(moved.begin(), moved.end(),
            [](const JobRecord& a, const JobRecord& b) { return a.id < b.id; });

  auto rows = sql::Prepare(db, kSelectJobRowsSql);
  if (!rows.ok()) return rows.status();
  sqlite3_stmt* r = rows.value().get();
  int rc = sqlite3_step(r);
  size_t next_moved = 0;
  uint64_t max_id = 0;
  auto emit = [&](JobRecord&& rec) {
    max_id = std::max(max_id, rec.id);
    ++info.jobs;
    sink(std::move(rec));
  };
  auto row_id = [&] { return static_cast<uint64_t>(sqlite3_column_int64(r, 0)); };
  std::string damaged_row;             // the first damaged row, when not skipping
  std::vector<uint64_t> damaged_rows;  // ids to delete, when skipping
  // Emits the rows and moved records with ids below `id`, in id order.
  auto emit_below = [&](uint64_t id) {
    for (;;) {
      const bool have_row = rc == SQLITE_ROW && row_id() < id;
      const bool have_moved = next_moved < moved.size() && moved[next_moved].id < id;
      if (!have_row && !have_moved) return;
      if (have_moved && (!have_row || moved[next_moved].id < row_id())) {
        emit(std::move(moved[next_moved++]));
        continue;
      }
      JobRecord rec = JobFromRow(r, 0);
      const bool intact =
          sqlite3_column_type(r, 8) == SQLITE_INTEGER &&
          static_cast<uint64_t>(sqlite3_column_int64(r, 8)) == segment::RecordChecksum(rec);
      rc = sqlite3_step(r);
      if (intact) {
        emit(std::move(rec));
        continue;
      }
      const std::string line = "job row " + std::to_string(rec.id) +
                               " of roundhouse_jobs: checksum mismatch; lost handle " +
                               ErrorExcerpt(rec.handle) + ", function " +
                               ErrorExcerpt(rec.function) + ", " + std::to_string(rec.data.size()) +
                               " bytes of data (as stored, unverified)";
      if (!skip && damaged_row.empty()) {
        damaged_row = line + "; start with " + kSkipDamagedOption +
                      " to drop it and serve the rest (doc/storage.md)";
      }
      if (skip) {
        RH_LOG(kError, "storage: %s: %s (start-up goes on: %s)", options_.path.c_str(),
               line.c_str(), kSkipDamagedOption);
        damaged_rows.push_back(rec.id);
      }
    }
  };
  status =
      ScanLiveRecords(db, skip, /*report=*/false,
                      [&](uint64_t segment, const segment::Reader::Entry& entry, bool in_order) {
                        if (!in_order) return Status::Ok();  // emitted from `moved`
                        emit_below(entry.id);
                        JobRecord rec;
                        if (Status s = DecodeSegmentRecord(segment, entry, &rec); !s.ok()) return s;
                        emit(std::move(rec));
                        return Status::Ok();
                      });
  if (!status.ok()) return Status::Error(options_.path + ": " + status.message());
  emit_below(std::numeric_limits<uint64_t>::max());
  if (rc != SQLITE_DONE) return sql::Error(db, "replay of " + options_.path + " failed");
  if (!damaged_row.empty()) return Status::Error(options_.path + ": " + damaged_row);
  rows.value().reset();
  if (Status s = sql::Exec(db, "COMMIT"); !s.ok()) return s;
  if (Status s = DeleteRows(db, damaged_rows); !s.ok()) {
    return Status::Error("cannot drop damaged rows from " + options_.path + ": " + s.message());
  }
  info.handle_ceiling = std::max(ceiling.value(), info.jobs != 0 ? max_id + 1 : 0);
  return info;
}

void SqliteStore::Add(JobRecord rec, std::function<void(Status)> done) {
  assert(!closed_);
  assert(rec.id > 0 && rec.id <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
  uv_ref(reinterpret_cast<uv_handle_t*>(async_));
  waiting_.push_back(std::move(done));
  Enqueue(std::move(rec));
}

void SqliteStore::Remove(uint64_t id) {
  if (closed_) {
    RH_LOG(kWarning, "storage: remove of job id %llu after close dropped",
           static_cast<unsigned long long>(id));
    return;
  }
  Enqueue(RemoveOp{id});
}

void SqliteStore::SetHandleCeiling(uint64_t ceiling) {
  if (closed_) {
    RH_LOG(kWarning, "storage: handle ceiling %llu after close dropped",
           static_cast<unsigned long long>(ceiling));
    return;
  }
  Enqueue(CeilingOp{ceiling});
}

void SqliteStore::PutMaster(const std::string& name, const std::string& settings) {
  if (closed_) return;
  RowChange c;
  c.key = name;
  c.value = settings;
  Enqueue(RowOp{std::make_shared<const RowChange>(std::move(c))});
}

void SqliteStore::DeleteMaster(const std::string& name) {
  if (closed_) return;
  RowChange c;
  c.key = name;
  c.remove = true;
  Enqueue(RowOp{std::make_shared<const RowChange>(std::move(c))});
}

void SqliteStore::PutJournal(const std::string& master, const std::string& handle,
                             const std::string& entry, std::function<void(Status)> done) {
  if (closed_) return;
  RowChange c;
  c.table = RowChange::Table::kJournal;
  c.key = master;
  c.key2 = handle;
  c.value = entry;
  c.acked = static_cast<bool>(done);
  if (c.acked) {
    uv_ref(reinterpret_cast<uv_handle_t*>(async_));
    waiting_.push_back(std::move(done));
  }
  Enqueue(RowOp{std::make_shared<const RowChange>(std::move(c))});
}

void SqliteStore::DeleteJournal(const std::string& master, const std::string& handle) {
  if (closed_) return;
  RowChange c;
  c.table = RowChange::Table::kJournal;
  c.key = master;
  c.key2 = handle;
  c.remove = true;
  Enqueue(RowOp{std::make_shared<const RowChange>(std::move(c))});
}

Result<std::vector<JournalRow>> SqliteStore::LoadJournal() {
  auto opened = sql::OpenDb(options_.path, options_.busy_timeout_ms);
  if (!opened.ok()) return opened.status();
  sqlite3* db = opened.value().get();
  auto rows = sql::Prepare(
      db, "SELECT master, handle, entry FROM roundhouse_jenkins_journal ORDER BY master, handle");
  if (!rows.ok()) return rows.status();
  std::vector<JournalRow> out;
  sqlite3_stmt* r = rows.value().get();
  int rc;
  while ((rc = sqlite3_step(r)) == SQLITE_ROW) {
    out.push_back(
        JournalRow{sql::ColumnBytes(r, 0), sql::ColumnBytes(r, 1), sql::ColumnBytes(r, 2)});
  }
  if (rc != SQLITE_DONE) return sql::Error(db, "cannot read the jenkins journal");
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> SqliteStore::LoadMasters() {
  auto opened = sql::OpenDb(options_.path, options_.busy_timeout_ms);
  if (!opened.ok()) return opened.status();
  sqlite3* db = opened.value().get();
  auto rows =
      sql::Prepare(db, "SELECT name, settings FROM roundhouse_jenkins_masters ORDER BY name");
  if (!rows.ok()) return rows.status();
  std::vector<std::pair<std::string, std::string>> out;
  sqlite3_stmt* r = rows.value().get();
  int rc;
  while ((rc = sqlite3_step(r)) == SQLITE_ROW) {
    out.emplace_back(sql::ColumnBytes(r, 0), sql::ColumnBytes(r, 1));
  }
  if (rc != SQLITE_DONE) return sql::Error(db, "cannot read jenkins masters");
  return out;
}

void SqliteStore::Enqueue(WriteOp op) {
  if (staged_.empty()) uv_idle_start(idle_, &SqliteStore::OnIdle);
  const auto* row = std::get_if<RowOp>(&op);
  if (std::holds_alternative<JobRecord>(op) || (row != nullptr && row->change->acked)) {
    ++staged_adds_;  // an outcome the loop waits for: counted with the batch's callbacks
  }
  staged_.push_back(std::move(op));
}

void SqliteStore::OnIdle(uv_idle_t* handle) { static_cast<SqliteStore*>(handle->data)->Publish(); }

void SqliteStore::Publish() {
  uv_idle_stop(idle_);
  if (staged_.empty()) return;
  {
    std::lock_guard lock(mu_);
    if (pending_.empty()) {
      pending_.swap(staged_);  // staged_ gets the writer's spent buffer back, capacity and all
    } else {
      pending_.insert(pending_.end(), std::make_move_iterator(staged_.begin()),
                      std::make_move_iterator(staged_.end()));
      staged_.clear();
    }
    pending_adds_ += staged_adds_;
  }
  staged_adds_ = 0;
  // The writer hands its buffers back with the completions, so staged_ is often a fresh empty
  // vector here: give it the spare one rather than regrow it record by record.
  if (spare_.capacity() > staged_.capacity()) staged_.swap(spare_);
  // The writer checks pending_ under mu_ before it waits, so this notify cannot be lost.
  wake_writer_.notify_one();
}

void SqliteStore::WriterMain() {
  std::vector<WriteOp> batch;
  // Removes and the ceiling of failed batches: retried with the next batch (there is no callback
  // to report them to, and dropping a remove would bring a finished job back after a restart).
  std::vector<WriteOp> carry;
  bool failing = false;
  for (;;) {
    size_t adds;
    bool stop;
    {
      std::unique_lock lock(mu_);
      wake_writer_.wait(lock, [this] { return !pending_.empty() || stopping_; });
      stop = stopping_ && pending_.empty();
      batch.swap(pending_);
      adds = pending_adds_;
      pending_adds_ = 0;
    }
    if (stop && carry.empty()) break;
    if (!carry.empty()) {
      batch.insert(batch.begin(), std::make_move_iterator(carry.begin()),
                   std::make_move_iterator(carry.end()));
      carry.clear();
    }
    const auto started = std::chrono::steady_clock::now();
    Status status = writer_.Commit(batch);
    const int64_t micros = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::steady_clock::now() - started)
                               .count();
    if (!status.ok()) {
      RH_LOG(kError, "storage: %s (%zu adds failed)", status.message().c_str(), adds);
      failing = true;
      uint64_t ceiling = 0;
      for (WriteOp& op : batch) {
        const auto* row = std::get_if<RowOp>(&op);
        if (std::holds_alternative<RemoveOp>(op) || (row != nullptr && !row->change->acked)) {
          carry.push_back(std::move(op));
        }
        if (const auto* c = std::get_if<CeilingOp>(&op)) ceiling = std::max(ceiling, c->ceiling);
      }
      if (ceiling != 0) carry.push_back(CeilingOp{ceiling});
    } else if (failing) {
      RH_LOG(kNotice, "storage: writes to %s succeed again", options_.path.c_str());
      failing = false;
    }
    // Every commit is reported (its latency feeds Stats()); a batch of removes and ceilings only
    // has no callback to run but still goes back to the loop thread with its timing.
    {
      std::lock_guard lock(mu_);
      completed_.push_back(Completion{adds, std::move(status), std::move(batch), micros});
    }
    batch = std::vector<WriteOp>();  // the loop thread frees the records (see Completion)
    uv_async_send(async_);
    if (stop) break;
  }
  if (!carry.empty()) {
    RH_LOG(kError, "storage: %zu deletes and ceiling updates to %s were never stored", carry.size(),
           options_.path.c_str());
  }
}

void SqliteStore::OnAsync(uv_async_t* handle) {
  auto* self = static_cast<SqliteStore*>(handle->data);
  if (self != nullptr) self->DeliverCompletions(kMaxCallbacksPerTurn);
}

void SqliteStore::DeliverCompletions(size_t budget) {
  for (;;) {
    if (!delivering_ || delivering_->adds == 0) {
      {
        std::lock_guard lock(mu_);
        if (completed_.empty()) {
          delivering_.reset();
          break;
        }
        delivering_ = std::move(completed_.front());
        completed_.pop_front();
      }
      if (delivering_->adds != 0) ++delivered_batches_;
      stats_.RecordCommit(delivering_->micros, delivering_->status.ok());
      Recycle(std::move(delivering_->spent));  // outside mu_: the writer may want it meanwhile
      continue;
    }
    assert(!waiting_.empty());
    if (budget == 0) {
      // The rest in a later loop iteration, after other connections had their turn: one
      // commit of 100k pipelined submits must not hold the loop for all of their replies.
      uv_async_send(async_);
      return;
    }
    --budget;
    std::function<void(Status)> done = std::move(waiting_.front());
    waiting_.pop_front();
    --delivering_->adds;
    Status status = delivering_->status;
    // May re-enter Add() or Close() (which calls this function again); all state is in members.
    done(std::move(status));
  }
  if (!closed_ && waiting_.empty()) uv_unref(reinterpret_cast<uv_handle_t*>(async_));
}

JobRecord SqliteStore::NewRecord() {
  if (free_records_.empty()) return JobRecord{};
  JobRecord rec = std::move(free_records_.back());
  free_records_.pop_back();
  return rec;
}

void SqliteStore::Recycle(std::vector<WriteOp> spent) {
  for (WriteOp& op : spent) {
    if (free_records_.size() >= kMaxFreeRecords) break;
    if (auto* rec = std::get_if<JobRecord>(&op)) free_records_.push_back(std::move(*rec));
  }
  spent.clear();
  if (spent.capacity() > spare_.capacity()) spare_.swap(spent);
  if (staged_.empty() && spare_.capacity() > staged_.capacity()) staged_.swap(spare_);
}

void SqliteStore::Close() {
  if (closed_) return;
  closed_ = true;
  Publish();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_writer_.notify_one();
  if (thread_.joinable()) thread_.join();
  DeliverCompletions(SIZE_MAX);
  assert(waiting_.empty());
  async_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(async_), &FreeAsync);
  async_ = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(idle_), &FreeIdle);  // stops it if it was armed
  idle_ = nullptr;
}

}  // namespace roundhouse::storage
