#include "storage/memory_store.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace roundhouse::storage {

Result<ReplayInfo> MemoryStore::Replay(const std::function<void(JobRecord&&)>& sink) {
  ReplayInfo info;
  info.handle_ceiling = ceiling_;
  for (const auto& [id, rec] : jobs_) {
    JobRecord copy = rec;
    sink(std::move(copy));
    ++info.jobs;
    info.handle_ceiling = std::max(info.handle_ceiling, id + 1);
  }
  return info;
}

void MemoryStore::Add(JobRecord rec, std::function<void(Status)> done) {
  queue_.push_back(Op{Op::Kind::kAdd, std::move(rec), 0, std::move(done)});
  ++queued_adds_;
}

void MemoryStore::Remove(uint64_t id) { queue_.push_back(Op{Op::Kind::kRemove, {}, id, {}}); }

void MemoryStore::SetHandleCeiling(uint64_t ceiling) {
  queue_.push_back(Op{Op::Kind::kCeiling, {}, ceiling, {}});
}

void MemoryStore::Close() { (void)Commit(); }

size_t MemoryStore::Commit() {
  std::vector<Op> batch;
  batch.swap(queue_);
  queued_adds_ = 0;
  const std::optional<Status> failure = std::exchange(fail_next_, std::nullopt);
  ++commits_;
  const auto started = std::chrono::steady_clock::now();
  for (Op& op : batch) {
    switch (op.kind) {
      case Op::Kind::kAdd:
        if (!failure) jobs_[op.rec.id] = op.rec;
        break;
      case Op::Kind::kRemove:
        jobs_.erase(op.value);
        break;
      case Op::Kind::kCeiling:
        ceiling_ = std::max(ceiling_, op.value);
        break;
    }
  }
  stats_.RecordCommit(std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - started)
                          .count(),
                      !failure.has_value());
  size_t ran = 0;
  for (Op& op : batch) {
    if (op.kind != Op::Kind::kAdd) continue;
    ++ran;
    op.done(failure ? *failure : Status::Ok());
  }
  return ran;
}

}  // namespace roundhouse::storage
