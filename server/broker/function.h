// Function: a name workers register and clients submit to (doc/protocol.md §3.1), with its three
// priority queues, counts, maxqueue limits and the wake-up ring of registered peers.
//
// Ownership: the Broker creates and owns every Function. It is freed as soon as nothing refers to
// it — no job (in any state), no registration — unless an operator pinned it (`create function`,
// a non-zero `maxqueue`); a pinned one lives until `drop function`. So peer-chosen names cost
// memory only while they have work or workers (doc/gearman-differences.md). Others hold
// `const Function*` for the duration documented by the Broker call that returned it.
//
// Thread-safety: loop thread only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/broker/job.h"

namespace roundhouse::broker {

class Peer;

class Function {
 public:
  Function(const Function&) = delete;
  Function& operator=(const Function&) = delete;
  ~Function() = default;

  std::string_view name() const { return name_; }
  // Jobs waiting (not running) at `p`, epoch jobs not yet due included (`prioritystatus`).
  uint64_t queued(Priority p) const { return queued_[PriorityIndex(p)]; }
  // Jobs assigned to a worker, except cancelled ones (admin `cancel job`: gone at once from
  // every count and status reply, although the worker may still be busy with it).
  uint64_t running() const { return running_; }
  // queued + running (`status` TOTAL).
  uint64_t total() const { return queued_[0] + queued_[1] + queued_[2] + running_; }
  // Registrations (`status` WORKERS): peers that sent CAN_DO* for it and have not withdrawn.
  uint32_t worker_count() const { return static_cast<uint32_t>(ring_.size()); }
  // maxqueue limit for new jobs of `p`; 0 = unlimited (§3.12).
  uint32_t max_queue(Priority p) const { return max_queue_[PriorityIndex(p)]; }
  // Counters since start (metrics): jobs created by a submission (a coalesced submission creates
  // none), jobs ended by WORK_COMPLETE, jobs ended by WORK_FAIL / WORK_EXCEPTION or dropped after
  // their last retry.
  uint64_t submitted() const { return submitted_; }
  uint64_t completed() const { return completed_; }
  uint64_t failed() const { return failed_; }
  // Kept although empty: created by admin `create function` or given a `maxqueue`.
  bool pinned() const { return pinned_ || max_queue_[0] != 0 || max_queue_[1] != 0 ||
                               max_queue_[2] != 0; }

 private:
  friend class Broker;

  explicit Function(std::string name) : name_(std::move(name)) {}

  std::string name_;
  // Due jobs in state kQueued, FIFO per priority. Not-yet-due epoch jobs are kept out (in the
  // broker's epoch heap) so every queue head is eligible and GRAB never scans.
  std::array<JobList<kQueueLink>, kPriorityCount> queues_;
  // Jobs in state kQueued or kWaiting per priority: queued_[p] >= queues_[p].size().
  std::array<uint64_t, kPriorityCount> queued_{};
  uint64_t running_ = 0;  // jobs in state kRunning and not cancelled
  // Every live job of this function (any state, cancelled included), in creation order. While
  // it is non-empty the function must not be freed: jobs point at it.
  JobList<kFunctionLink> jobs_;
  uint64_t pending_ = 0;  // jobs in state kPending (counted against maxqueue only)
  std::array<uint32_t, kPriorityCount> max_queue_{};
  uint64_t submitted_ = 0;
  uint64_t completed_ = 0;
  uint64_t failed_ = 0;
  bool pinned_ = false;  // admin `create function`
  // Registered peers in registration order (wake-up ring, §3.6); each peer at most once.
  std::vector<Peer*> ring_;
  // Where the next wake-up walk starts; < ring_.size() unless the ring is empty (then 0).
  size_t cursor_ = 0;
  // Ring members that are sleeping with no NOOP outstanding (would be NOOPed by a walk).
  uint32_t wakeable_ = 0;
};

}  // namespace roundhouse::broker
