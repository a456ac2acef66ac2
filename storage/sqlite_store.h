// The SQLite JobStore (doc/protocol.md §6.4, doc/design.md "Threads and flow").
//
// One writer thread owns the write connection. Add/Remove/SetHandleCeiling append to a staged
// batch on the loop thread; once per loop iteration the staged records are handed to the writer
// (a mutex-guarded hand-off queue: the only thing the two threads share); the writer takes
// everything pending, commits it in one transaction (WAL, synchronous=FULL: durable when the
// commit returns) and posts the outcome back through a uv_async_t. While one commit is in flight
// new records accumulate and go into the next (group commit). A commit's new jobs are stored as
// one job segment row (segment_index.h). The loop-side async callback runs
// the `done` callbacks in Add order, at most kMaxCallbacksPerTurn per loop iteration (a large
// commit's callbacks are spread over iterations, with I/O polled between them); the callbacks
// never leave the loop thread.
//
// The hand-off happens in a uv_idle_t callback, not inside Add: everything queued during one
// loop iteration (the submits read from all the sockets, or the Adds that the callbacks of one
// commit make) then goes into one transaction instead of the first record going alone, and Add
// takes no lock. The cost is at most one loop iteration of latency.
//
// A failed commit (disk full, I/O error, lock timeout) fails every Add of that batch with
// SQLite's message and stores nothing of it; its removes and ceiling are kept and retried with
// the next batch, and later batches commit normally once the cause is gone.
//
// Lifetime: the store keeps the loop alive (its async handle is referenced) only while some Add
// awaits its callback, so uv_run() returns once every callback has run. Close() (or the
// destructor) must run on the loop thread before the loop is closed; the async handle's memory
// is freed in its close callback, so run the loop once more after Close() to release it.
//
// Thread-safety: every public method is called on the loop thread that owns `loop`.
#pragma once

#include <uv.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "storage/batch_writer.h"
#include "storage/job_store.h"

namespace roundhouse::storage {

struct SqliteOptions {
  std::string path;                            // --libsqlite3-db; created if missing
  std::string import_table = "gearman_queue";  // --libsqlite3-table; empty: import nothing
  int busy_timeout_ms = 6000;                  // as gearmand
  // 0: SQLite's default. Otherwise a cap on the file's size in pages; a commit that would grow
  // past it fails like a full disk (tests use it for that).
  uint32_t max_page_count = 0;
  // Start-up drops damaged stored jobs (logging each) instead of refusing to start
  // (kSkipDamagedOption; BatchWriter::Create and Replay).
  bool skip_damaged = false;
};

class SqliteStore final : public JobStore {
 public:
  // Opens (creating if missing) the database, refuses a file that is not a database or carries a
  // newer schema without writing to it, switches it to WAL, migrates our tables to the current
  // version, and starts the writer thread. `loop` must outlive the store.
  static Result<std::unique_ptr<SqliteStore>> Open(uv_loop_t* loop, const SqliteOptions& options);

  ~SqliteStore() override;  // Close()s if still open
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // Imports the gearmand table (SqliteOptions::import_table) with `options`, then calls `sink`
  // for every stored job in id order (FIFO per priority). Uses its own connection, so it may run
  // while the writer is idle; call it before any Add (records still queued are not seen).
  // ReplayInfo::handle_ceiling is above every stored id and the persisted ceiling. Holds the
  // stored segments in memory while it runs (about the size of the stored jobs), to hand the
  // jobs over in id order even after compaction moved old ones into newer segments.
  Result<ReplayInfo> Replay(const ReplayOptions& options,
                            const std::function<void(JobRecord&&)>& sink) override;
  Result<ReplayInfo> Replay(const std::function<void(JobRecord&&)>& sink) override;

  // Precondition: 0 < rec.id <= INT64_MAX (SQLite keys are signed); not after Close().
  void Add(JobRecord rec, std::function<void(Status)> done) override;
  // A record of a committed batch, strings and their capacity kept (see JobStore::NewRecord).
  JobRecord NewRecord() override;
  void Remove(uint64_t id) override;
  void SetHandleCeiling(uint64_t ceiling) override;
  bool durable() const override { return true; }
  void PutMaster(const std::string& name, const std::string& settings) override;
  void DeleteMaster(const std::string& name) override;
  // Own read connection, like Replay.
  Result<std::vector<std::pair<std::string, std::string>>> LoadMasters() override;
  void PutJournal(const std::string& master, const std::string& handle, const std::string& entry,
                  std::function<void(Status)> done) override;
  void DeleteJournal(const std::string& master, const std::string& handle) override;
  Result<std::vector<JournalRow>> LoadJournal() override;
  // Commits what is queued, stops and joins the writer, runs the callbacks still owed (on this
  // thread, before returning) and closes the async handle. Safe to call twice, and from inside
  // a `done` callback (but do not destroy the store inside one).
  void Close() override;

  // Batches holding at least one Add whose outcome (commit or failure) has reached the loop
  // thread so far: adds / delivered_batches() is the mean group-commit size. Tests and metrics.
  uint64_t delivered_batches() const { return delivered_batches_; }

  // Commits whose outcome has reached the loop thread, with their latency; the writer measures
  // each commit and sends the figure back with its completion, so nothing is shared.
  StoreStats Stats() const override {
    StoreStats stats = stats_;
    stats.pending_adds = waiting_.size();
    return stats;
  }

 private:
  // What the writer reports per batch: how many Adds it held and how the commit went.
  // `spent` is the committed batch itself, handed back so that its records are freed on the loop
  // thread that allocated them (a free from the writer thread would go through the loop's malloc
  // arena under its lock and fragment it) and its capacity is reused for staging.
  struct Completion {
    size_t adds;
    Status status;
    std::vector<WriteOp> spent;
    int64_t micros = 0;  // time spent in BatchWriter::Commit, measured on the writer thread
  };

  SqliteStore(SqliteOptions options, BatchWriter writer);
  void Enqueue(WriteOp op);
  // Moves the staged records to the writer's queue and wakes it.
  void Publish();
  void WriterMain();
  static void OnAsync(uv_async_t* handle);
  static void OnIdle(uv_idle_t* handle);
  // Runs the callbacks of the completions received so far, in order, at most `budget` of them;
  // if more remain, asks the loop (uv_async_send) to call again on its next iteration, after
  // polling, so other peers are served between slices. Re-entrant.
  void DeliverCompletions(size_t budget);
  static constexpr size_t kMaxCallbacksPerTurn = 2048;
  // Frees a batch the writer is done with and keeps its buffer for staging if that is larger.
  void Recycle(std::vector<WriteOp> spent);

  const SqliteOptions options_;
  uv_async_t* async_;  // owned; freed in its close callback. Referenced iff waiting_ non-empty.
  uv_idle_t* idle_;    // owned; freed in its close callback. Active iff staged_ non-empty.
  std::vector<WriteOp> staged_;  // loop thread only: queued this iteration, not yet published
  size_t staged_adds_ = 0;       // JobRecords in staged_
  // Loop thread only: an emptied batch buffer kept for staging (see Recycle and Publish).
  std::vector<WriteOp> spare_;
  // Loop thread only: records of delivered batches, for NewRecord (at most kMaxFreeRecords).
  std::vector<JobRecord> free_records_;
  static constexpr size_t kMaxFreeRecords = 8192;
  bool closed_ = false;

  // Loop thread only: callbacks of Adds not yet reported, in Add order, and how many of the
  // front ones belong to the completion being delivered now.
  std::deque<std::function<void(Status)>> waiting_;
  std::optional<Completion> delivering_;
  uint64_t delivered_batches_ = 0;
  StoreStats stats_;  // loop thread only; pending_adds is filled in by Stats()

  // The hand-off between the loop thread and the writer thread, guarded by mu_.
  std::mutex mu_;
  std::condition_variable wake_writer_;
  std::vector<WriteOp> pending_;      // published, not yet taken by the writer
  size_t pending_adds_ = 0;           // JobRecords in pending_
  bool stopping_ = false;             // Close() asked the writer to finish
  std::deque<Completion> completed_;  // committed (or failed) batches, not yet delivered

  // Writer thread only (after start).
  BatchWriter writer_;
  std::thread thread_;
};

}  // namespace roundhouse::storage
