// The durable queue as the broker sees it (doc/protocol.md §6, format in doc/storage.md).
//
// Only background jobs are stored. The broker calls Add() when a background job is created and
// acknowledges the job (JOB_CREATED, grabbable) only when `done` reports success. Removes are
// fire-and-forget and batched with the next commit. A store commits on its own thread and runs
// every callback on the loop thread, never inside the call that registered it.
//
// Thread-safety: every method is called on the loop thread, except where noted.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "base/status.h"

namespace roundhouse::storage {

// One durable job. `id` is the number in the job's handle and never repeats (handles are never
// reissued), so it is the row key; empty uniques never collide.
struct JobRecord {
  uint64_t id = 0;
  std::string handle;
  std::string function;
  std::string unique;   // may be empty
  std::string reducer;  // SUBMIT_REDUCE_JOB_BACKGROUND only; else empty
  std::string data;
  uint8_t priority = 1;  // 0 HIGH, 1 NORMAL, 2 LOW
  int64_t when = 0;      // Unix seconds; 0 = runnable now
};

// What start-up replay hands back besides the jobs.
struct ReplayInfo {
  uint64_t handle_ceiling = 0;  // every handle id ever issued is below this
  uint64_t jobs = 0;            // records replayed
  uint64_t imported = 0;        // of which imported from a gearmand table this start
};

// How Replay() turns rows of a gearmand libsqlite3 table into jobs (doc/protocol.md §6.4).
// Imported jobs get fresh ids and handles; stores that never import ignore these.
struct ReplayOptions {
  // Lowest id an imported job may get. The store raises it above its persisted handle ceiling
  // and above every stored id, so imported ids never collide with issued ones. The server passes
  // its start-up floor (Unix time in microseconds, §3.2); 0 means "just above what is stored".
  uint64_t first_import_id = 0;
  // An imported job's handle is `handle_prefix + ":" + id`, e.g. "H:host:1700000000000000".
  // Empty: "H:" + nodename, the nodename cut to 40 bytes (the server should pass its own).
  std::string handle_prefix;
};

// Upper bounds (microseconds, inclusive) of the commit-latency histogram's buckets; a last,
// implicit bucket holds everything slower. Prometheus-style, but counts are per bucket here
// (not cumulative); the metrics endpoint accumulates them.
inline constexpr std::array<int64_t, 12> kCommitLatencyBoundsUs = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000};

// Counters of a store since it was opened, read on the loop thread (status API, metrics).
struct StoreStats {
  uint64_t commits = 0;         // transactions attempted (group commits), failed ones included
  uint64_t failed_commits = 0;  // of which rolled back
  uint64_t pending_adds = 0;    // Adds whose outcome has not reached the loop thread yet
  // Commit latency as measured around the transaction on the committing thread.
  std::array<uint64_t, kCommitLatencyBoundsUs.size() + 1> latency_buckets{};
  uint64_t latency_sum_us = 0;

  // Counts one commit that took `micros` (negative clamps to 0).
  void RecordCommit(int64_t micros, bool ok) {
    if (micros < 0) micros = 0;
    ++commits;
    if (!ok) ++failed_commits;
    latency_sum_us += static_cast<uint64_t>(micros);
    size_t i = 0;
    while (i < kCommitLatencyBoundsUs.size() && micros > kCommitLatencyBoundsUs[i]) ++i;
    ++latency_buckets[i];
  }
};

struct JournalRow {
  std::string master;
  std::string handle;
  std::string entry;
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  // Start-up, before the loop runs connections: calls `sink` for every stored job (and imports a
  // gearmand table first, if configured). Blocking is allowed here.
  virtual Result<ReplayInfo> Replay(const std::function<void(JobRecord&&)>& sink) = 0;

  // Replay() with explicit import options; the plain form uses ReplayOptions{}. Imported jobs
  // reach `sink` like the others (after every earlier stored job, in gearmand row order) and
  // count in ReplayInfo::imported; ReplayInfo::handle_ceiling covers their ids. The default
  // implementation ignores `options`, for stores that have nothing to import.
  virtual Result<ReplayInfo> Replay(const ReplayOptions& options,
                                    const std::function<void(JobRecord&&)>& sink) {
    (void)options;
    return Replay(sink);
  }

  // Queues `rec` for the next group commit. `done` runs on the loop thread after the commit with
  // Ok, or with the store's error (nothing was stored). Never called synchronously. Every `done`
  // runs exactly once, at the latest inside Close(): callers may rely on it to release state they
  // handed to the callback (the broker does), so a store must never drop one unrun.
  virtual void Add(JobRecord rec, std::function<void(Status)> done) = 0;

  // A blank record to fill and pass to Add. Stores may hand back a recycled one whose strings keep
  // their capacity, so filling it with assign() allocates nothing; its fields hold stale bytes, so
  // assign every one of them. The default is a fresh record.
  virtual JobRecord NewRecord() { return JobRecord{}; }

  // Queues deletion of job `id` for the next commit. Idempotent.
  virtual void Remove(uint64_t id) = 0;

  // Persists that handle ids below `ceiling` may have been issued (reserved in blocks so this
  // is rare). Batched with the next commit.
  virtual void SetHandleCeiling(uint64_t ceiling) = 0;

  // Jenkins masters registered at runtime (admin `jenkins add`), so they survive a restart.
  // `settings` is opaque text (the caller's encoding); Put replaces, Delete is idempotent. Both
  // are batched with the next commit. The default (memory only) keeps nothing.
  virtual void PutMaster(const std::string& name, const std::string& settings) {
    (void)name;
    (void)settings;
  }
  virtual void DeleteMaster(const std::string& name) { (void)name; }
  // Start-up: every stored master as (name, settings), by name.
  virtual Result<std::vector<std::pair<std::string, std::string>>> LoadMasters() {
    return std::vector<std::pair<std::string, std::string>>{};
  }

  // The Jenkins adapters' journal (doc/jenkins.md §4.11): one opaque entry per (master, Gearman
  // handle), committed with the queue. PutJournal replaces; with `done` set, the put counts like
  // an Add: `done` runs after the commit (Ok, or the error: nothing stored), never synchronously.
  // DeleteJournal is idempotent. A store without durability keeps nothing and has no journal
  // (durable() is false), so callers skip it.
  virtual bool durable() const { return false; }
  virtual void PutJournal(const std::string& master, const std::string& handle,
                          const std::string& entry, std::function<void(Status)> done) {
    (void)master;
    (void)handle;
    (void)entry;
    (void)done;
  }
  virtual void DeleteJournal(const std::string& master, const std::string& handle) {
    (void)master;
    (void)handle;
  }
  virtual Result<std::vector<JournalRow>> LoadJournal() { return std::vector<JournalRow>{}; }

  // Counters since the store was opened. Loop thread; cheap (a copy of a small struct).
  virtual StoreStats Stats() const { return {}; }

  // Commits everything queued, runs every `done` still owed, and stops the writer (shutdown).
  // Blocking. Owners call it before destroying the store.
  virtual void Close() = 0;
};

}  // namespace roundhouse::storage
