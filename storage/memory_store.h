// An in-memory JobStore for tests of the layers above storage (the broker, the server). No
// thread, no libuv, no file: Add() queues, and the test decides when the "commit" happens by
// calling Commit(), which runs the queued callbacks in Add order. A failure can be injected for
// the next commit. The committed jobs are visible through jobs() and come back from Replay().
//
// Thread-safety: one thread (the test's).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "base/status.h"
#include "storage/job_store.h"

namespace roundhouse::storage {

class MemoryStore final : public JobStore {
 public:
  MemoryStore() = default;
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  using JobStore::Replay;  // the ReplayOptions overload: nothing to import here
  // Streams the committed jobs in id order. ReplayInfo::imported is always 0.
  Result<ReplayInfo> Replay(const std::function<void(JobRecord&&)>& sink) override;
  void Add(JobRecord rec, std::function<void(Status)> done) override;
  void Remove(uint64_t id) override;
  void SetHandleCeiling(uint64_t ceiling) override;
  // A Commit(). The store stays usable afterwards (a test may "restart" on the same store).
  void Close() override;

  // Applies everything queued, in order, then runs each queued Add's callback: Ok, or the
  // injected failure (whose Adds are then not stored; removes and the ceiling still apply, as
  // SqliteStore retries them). Callbacks may queue more; those wait for the next Commit().
  // Returns the number of callbacks run.
  size_t Commit();
  // The next Commit() fails its Adds with `status`.
  void FailNextCommit(Status status) { fail_next_ = std::move(status); }

  const std::map<uint64_t, JobRecord>& jobs() const { return jobs_; }
  uint64_t handle_ceiling() const { return ceiling_; }
  size_t queued_adds() const { return queued_adds_; }
  size_t commits() const { return commits_; }
  // Each Commit() counts as one commit (failed when a failure was injected); latency as measured.
  StoreStats Stats() const override {
    StoreStats stats = stats_;
    stats.pending_adds = queued_adds_;
    return stats;
  }

 private:
  struct Op {
    enum class Kind { kAdd, kRemove, kCeiling } kind;
    JobRecord rec;                     // kAdd
    uint64_t value;                    // kRemove: id; kCeiling: ceiling
    std::function<void(Status)> done;  // kAdd
  };

  std::vector<Op> queue_;
  size_t queued_adds_ = 0;
  std::optional<Status> fail_next_;
  std::map<uint64_t, JobRecord> jobs_;
  uint64_t ceiling_ = 0;
  size_t commits_ = 0;
  StoreStats stats_;
};

}  // namespace roundhouse::storage
