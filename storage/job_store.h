// The durable queue as the broker sees it (spec gearman.md §6, ../shared/DESIGN.md "Storage").
//
// Only background jobs are stored. The broker calls Add() when a background job is created and
// acknowledges the job (JOB_CREATED, grabbable) only when `done` reports success. Removes are
// fire-and-forget and batched with the next commit. A store commits on its own thread and runs
// every callback on the loop thread, never inside the call that registered it.
//
// Thread-safety: every method is called on the loop thread, except where noted.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "protocol/status.h"

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

// How Replay() turns rows of a gearmand libsqlite3 table into jobs (spec gearman.md §6.4).
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

  // Commits everything queued, runs every `done` still owed, and stops the writer (shutdown).
  // Blocking. Owners call it before destroying the store.
  virtual void Close() = 0;
};

}  // namespace roundhouse::storage
