// Job: one unit of work known to the broker (doc/protocol.md §3.1), with the read-only view the
// admin layer and workers use (`show jobs`, JOB_ASSIGN*, STATUS_RES).
//
// Ownership: the Broker creates, owns and frees every Job; others hold `const Job*` only for the
// duration documented by the Broker call that returned it. A Job's bytes (handle, unique,
// reducer, DATA) live in one buffer owned by the job, so the views its accessors return are valid
// as long as the job is.
//
// Thread-safety: loop thread only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace roundhouse::broker {

class Function;
class Peer;

enum class Priority : uint8_t { kHigh = 0, kNormal = 1, kLow = 2 };
inline constexpr size_t kPriorityCount = 3;

inline constexpr size_t PriorityIndex(Priority p) { return static_cast<size_t>(p); }

template <int kLink>
class JobList;
template <typename Less>
class JobHeap;

class Job {
 public:
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;
  ~Job() = default;

  std::string_view handle() const { return {bytes_.data() + data_len_, handle_len_}; }
  // The number in the handle; never reissued, the durable row key.
  uint64_t id() const { return id_; }
  const Function& function() const { return *function_; }
  std::string_view function_name() const;
  std::string_view unique() const { return {bytes_.data() + UniqueAt(), unique_len_}; }
  std::string_view data() const { return {bytes_.data(), data_len_}; }
  std::string_view reducer() const {
    return {bytes_.data() + UniqueAt() + unique_len_, reducer_len_};
  }
  Priority priority() const { return priority_; }
  // SUBMIT_JOB_EPOCH time in Unix seconds; 0 = runnable at once.
  int64_t when() const { return when_; }
  // Clock::MonotonicMs() when the broker created it (restored jobs: when they were replayed).
  int64_t created_ms() const { return created_ms_; }
  // Times the job was re-queued (§3.7).
  uint32_t retries() const { return retries_; }
  // `show jobs` IGNORE: cancelled by admin, or a running foreground job whose clients all left.
  bool ignored() const { return cancelled_ || (state_ == State::kRunning && Abandoned()); }
  // Cancelled by admin `cancel job` (as opposed to abandoned by its last client).
  bool cancelled() const { return cancelled_; }
  // Some submission for it was background (with a store: once its durable write committed).
  bool background() const { return background_; }
  // Its durable row is committed (`show jobs` QUEUED).
  bool durable() const { return durable_; }
  // Assigned to a worker (a cancelled job still is until its worker lets go, but is no longer
  // counted or reported as running: see cancelled()).
  bool running() const { return state_ == State::kRunning; }
  // Due and waiting in its function's queue.
  bool queued_now() const { return state_ == State::kQueued; }
  const Peer* worker() const { return worker_; }
  size_t client_count() const { return clients_.size(); }
  uint64_t numerator() const { return numerator_; }
  uint64_t denominator() const { return denominator_; }

 private:
  friend class Broker;
  template <int>
  friend class JobList;
  template <typename>
  friend class JobHeap;

  enum class State : uint8_t {
    kPending,  // new background job awaiting its first durable write: invisible, not grabbable
    kWaiting,  // epoch job not yet due: in the broker's epoch heap, not in a queue
    kQueued,   // due and waiting in its function's queue for `priority_`
    kRunning,  // assigned to `worker_`
  };

  // One attachment of a foreground client. Invariant: client->state().waiting[slot] == this job.
  struct ClientRef {
    Peer* peer;
    uint32_t slot;
  };

  // Intrusive links: [0] the function's priority queue (kQueued only), [1] the broker's list of
  // all jobs in creation order, [2] the function's list of all its jobs in creation order.
  struct Link {
    Job* prev = nullptr;
    Job* next = nullptr;
  };

  static constexpr size_t kNoHeapPos = static_cast<size_t>(-1);

  Job() = default;

  size_t UniqueAt() const { return data_len_ + handle_len_ + 1; }
  // A foreground job nobody waits for any more (and no background submit pending on it).
  bool Abandoned() const {
    return !background_ && !write_pending_ && !cancelled_ && clients_.empty();
  }
  // Back to a blank job for reuse; keeps small buffers' capacity.
  void ResetForReuse();

  // Layout: DATA, handle, one NUL (so handle + "\0" is a view for the WORK_EXCEPTION downgrade),
  // unique, reducer. Written once at creation.
  std::string bytes_;
  size_t data_len_ = 0;
  uint32_t handle_len_ = 0;
  uint32_t unique_len_ = 0;
  uint32_t reducer_len_ = 0;

  uint64_t id_ = 0;
  Function* function_ = nullptr;  // never null for a live job; the function outlives its jobs
  int64_t when_ = 0;
  int64_t created_ms_ = 0;
  uint64_t numerator_ = 0;  // last WORK_STATUS; reset on re-queue
  uint64_t denominator_ = 0;
  uint32_t retries_ = 0;
  Priority priority_ = Priority::kNormal;
  State state_ = State::kQueued;
  bool background_ = false;
  bool durable_ = false;        // row committed; the store must be told Remove(id_) at the end
  bool write_pending_ = false;  // a store Add for this job is in flight (Broker::Impl::writes_)
  bool cancelled_ = false;      // admin cancel while running: results are discarded
  bool indexed_ = false;        // present in the (function, unique) coalescing index

  // Workers whose CAN_DO_TIMEOUT expired while they held this job (PeerState::serial, 0 = empty
  // slot), newest overwriting the oldest. Their WORK_COMPLETE / FAIL / EXCEPTION still ends the
  // job while it is queued or held by another worker (doc/protocol.md, "Late results").
  static constexpr size_t kMaxTimedOut = 4;
  std::array<uint64_t, kMaxTimedOut> timed_out_by_{};
  uint8_t timed_out_next_ = 0;  // slot the next expiry overwrites

  // kRunning only: the peer holding it; worker_->state().running[worker_slot_] == this.
  Peer* worker_ = nullptr;
  uint32_t worker_slot_ = 0;
  // Attached foreground clients, one entry per attaching submission.
  std::vector<ClientRef> clients_;

  Link links_[3];
  // Position in the epoch heap (kWaiting) or the timeout heap (kRunning with a timeout).
  size_t heap_pos_ = kNoHeapPos;
  int64_t deadline_ms_ = 0;  // monotonic CAN_DO_TIMEOUT deadline while in the timeout heap
};

// Intrusive FIFO of jobs threaded through Job::links_[kLink]. Does not own the jobs. O(1) push,
// pop and removal of any member.
template <int kLink>
class JobList {
 public:
  bool empty() const { return head_ == nullptr; }
  size_t size() const { return size_; }
  Job* front() const { return head_; }
  static Job* Next(const Job* job) { return job->links_[kLink].next; }

  void PushBack(Job* job) {
    Job::Link& l = job->links_[kLink];
    l.prev = tail_;
    l.next = nullptr;
    if (tail_ != nullptr) {
      tail_->links_[kLink].next = job;
    } else {
      head_ = job;
    }
    tail_ = job;
    ++size_;
  }

  void PushFront(Job* job) {
    Job::Link& l = job->links_[kLink];
    l.prev = nullptr;
    l.next = head_;
    if (head_ != nullptr) {
      head_->links_[kLink].prev = job;
    } else {
      tail_ = job;
    }
    head_ = job;
    ++size_;
  }

  // Precondition: `job` is in this list.
  void Remove(Job* job) {
    Job::Link& l = job->links_[kLink];
    if (l.prev != nullptr) {
      l.prev->links_[kLink].next = l.next;
    } else {
      head_ = l.next;
    }
    if (l.next != nullptr) {
      l.next->links_[kLink].prev = l.prev;
    } else {
      tail_ = l.prev;
    }
    l.prev = l.next = nullptr;
    --size_;
  }

 private:
  Job* head_ = nullptr;
  Job* tail_ = nullptr;
  size_t size_ = 0;
};

inline constexpr int kQueueLink = 0;
inline constexpr int kCreationLink = 1;
inline constexpr int kFunctionLink = 2;

}  // namespace roundhouse::broker
