// Broker::Impl: the broker's state and its internal operations. Internal to server/broker/; the
// rest of the server uses broker.h. Split by concept over several files:
//   broker.cc     construction, the public forwarding layer, peers and registrations
//   submit.cc     submission, coalescing, durable writes, handles, start-up replay
//   dispatch.cc   GRAB selection, wake-ups, WORK_*, re-queue and retries, timers
//   admin.cc      cancel, functions, status queries and listings
//
// Thread-safety: loop thread only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/broker/broker.h"
#include "server/broker/job_heap.h"
#include "server/broker/job_table.h"

namespace roundhouse::broker {

// ERROR codes and texts the broker produces (doc/protocol.md §2.1).
inline constexpr std::string_view kArgumentTooLarge = "ARGUMENT_TOO_LARGE";
inline constexpr std::string_view kUniqueTooLarge = "Unique value too large";
inline constexpr std::string_view kQueueError = "QUEUE_ERROR";
inline constexpr std::string_view kQueueFull = "Job queue is full";

// Handles are at most 63 bytes (doc/protocol.md §1.5); WORK_FAIL with a longer one is
// ARGUMENT_TOO_LARGE.
inline constexpr size_t kMaxHandle = 63;
// Handle ids are reserved with the store in blocks of this many (doc/protocol.md §3.2).
inline constexpr uint64_t kHandleCeilingBlock = 1'000'000;
// Free jobs kept for reuse, and the largest buffer a reused job keeps (so the pool holds at
// most ~16 MiB of payload capacity while saving the common job its allocations).
inline constexpr size_t kMaxFreeJobs = 4096;
// Hash tables with more buckets than this shrink when they are 1/8 full (memory of a burst of
// names or writes is given back, not kept at the high-water mark).
inline constexpr size_t kMinShrinkBuckets = 1024;
inline constexpr size_t kMaxReusedBytes = 4096;

struct Broker::Impl {
  Impl(const Options& options, Clock& clock, storage::JobStore* store,
       std::function<void(int64_t)> schedule);
  ~Impl();

  // ---- index traits (nested here for access to Job's private fields)
  struct IdTraits {
    using Key = uint64_t;
    static Key KeyOf(const Job* job) { return job->id_; }
    static uint64_t Hash(Key id) { return MixBits(id); }
    static bool Equal(Key a, Key b) { return a == b; }
  };
  // Coalescing key (§3.3): (function, unique), or (function, DATA) for unique "-".
  struct UniqueKey {
    const Function* function;
    bool by_data;
    std::string_view bytes;
  };
  struct UniqueTraits {
    using Key = UniqueKey;
    static Key KeyOf(const Job* job) {
      const bool by_data = job->unique() == "-";
      return {job->function_, by_data, by_data ? job->data() : job->unique()};
    }
    static uint64_t Hash(const Key& k) {
      return std::hash<std::string_view>()(k.bytes) ^
             MixBits(reinterpret_cast<uintptr_t>(k.function) + (k.by_data ? 1 : 0));
    }
    static bool Equal(const Key& a, const Key& b) {
      return a.function == b.function && a.by_data == b.by_data && a.bytes == b.bytes;
    }
  };
  // Epoch heap order: earliest `when`, then submission order.
  struct EpochLess {
    bool operator()(const Job* a, const Job* b) const {
      return a->when_ != b->when_ ? a->when_ < b->when_ : a->id_ < b->id_;
    }
  };
  struct DeadlineLess {
    bool operator()(const Job* a, const Job* b) const {
      return a->deadline_ms_ != b->deadline_ms_ ? a->deadline_ms_ < b->deadline_ms_
                                                : a->id_ < b->id_;
    }
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };

  // A durable write (store Add) in flight, keyed in writes_ by job id, and who waits for it.
  struct Waiter {
    Peer* peer;
    uint64_t ticket;
    bool foreground;  // attach as a client when the write succeeds
  };
  struct PendingWrite {
    Job* job = nullptr;    // null once the job ended or stopped mattering (its Remove is queued)
    bool creates = false;  // the job is kPending: it exists only if this write succeeds
    std::string handle;
    std::vector<Waiter> waiters;
  };

  // ---- peers and registrations (broker.cc)
  void Attach(Peer& peer);
  void Detach(Peer& peer);
  void CanDo(Peer& peer, std::string_view name, int64_t timeout_ms);
  void CantDo(Peer& peer, std::string_view name);
  void ResetAbilities(Peer& peer);
  void RemoveRegistration(Peer& peer, size_t index);
  // Sets a peer's sleeping / NOOP-sent flags, keeping every ring's wakeable_ count right.
  void SetSleepFlags(Peer& peer, bool sleeping, bool noop_sent);
  static bool Wakeable(const Peer& peer) { return peer.state_.sleeping && !peer.state_.noop_sent; }
  // Attaches `peer` as a foreground client of `job`.
  void AttachClient(Job* job, Peer& peer);
  // Removes the last client entry of `job` (and the job from that peer's waiting list).
  void PopClient(Job* job);
  // Removes peer.waiting[slot] (swap-remove), fixing the moved job's back-reference.
  static void RemoveWaitingSlot(Peer& peer, uint32_t slot);
  // After a client left `job`: an abandoned job is removed (queued) or withdrawn (running).
  void OnClientLeft(Job* job, const Peer* detaching);
  Function* GetOrCreateFunction(std::string_view name);
  Function* FindFunction(std::string_view name) const;
  // Frees `fn` if nothing refers to it (no job, no registration) and it is not pinned. Callers
  // must not use `fn` afterwards.
  void MaybeFree(Function* fn);
  void FreeFunction(Function* fn);

  // ---- submission and durability (submit.cc)
  SubmitOutcome Submit(Peer& peer, const SubmitRequest& request);
  SubmitOutcome Coalesce(Peer& peer, Job* job, const SubmitRequest& request);
  // Registers `peer` to be answered when the write for `job` lands.
  SubmitOutcome Pend(Peer& peer, Job* job, bool foreground);
  void StartWrite(Job* job, bool creates);
  void OnWriteDone(uint64_t id, const Status& status);
  // OnWriteDone after the write left writes_ (`w` is owned by the caller).
  void FinishWrite(PendingWrite& w, const Status& status);
  // Marks the peer's pending ticket ready and delivers every ready reply at the front.
  static void ResolveTicket(Waiter waiter, bool ok, std::string_view handle,
                            std::string_view error_text);
  // The job no longer needs its in-flight write to matter (ended, cancelled).
  void DetachWrite(Job* job);
  static bool MakeUniqueKey(const Function* fn, std::string_view unique, std::string_view data,
                            UniqueKey* key);
  Job* CreateJob(Function* fn, uint64_t id, std::string_view handle, std::string_view unique,
                 std::string_view reducer, std::string_view data, Priority priority, int64_t when);
  uint64_t NextId();
  void Restore(storage::JobRecord&& record);
  void SetHandleFloor(uint64_t id);

  // ---- dispatch, work, retries, timers (dispatch.cc)
  const Job* Grab(Peer& peer);
  void PreSleep(Peer& peer);
  WorkResult Work(Peer& peer, protocol::PacketType type, std::string_view handle,
                  std::string_view payload, std::string_view numerator,
                  std::string_view denominator);
  // A job became runnable: due → tail of its queue and wake-ups; not due → epoch heap.
  void MakeRunnable(Job* job);
  // Appends a runnable job to its queue tail; wakes sleeping workers unless `wake` is false.
  void Enqueue(Job* job, bool wake = true);
  void Wake(Function* fn);
  void PromoteDueEpochJobs();
  void Assign(Peer& peer, Job* job, int64_t timeout_ms);
  // WORK_* from a worker whose CAN_DO_TIMEOUT expired on `job` (the late-result rule).
  WorkResult LateWork(Job* job, protocol::PacketType type, std::string_view payload,
                      std::string_view numerator, std::string_view denominator);
  static bool TimedOutBy(const Job* job, const Peer& peer);
  // WORK_STATUS / DATA / WARNING: records the progress and forwards it to the clients.
  void Progress(Job* job, protocol::PacketType type, std::string_view payload,
                std::string_view numerator, std::string_view denominator);
  // WORK_COMPLETE / FAIL / EXCEPTION: counts, forwards (downgrading exceptions) and destroys.
  void Finish(Job* job, protocol::PacketType type, std::string_view payload);
  // Takes a running job away from its worker (timer cancelled, counts adjusted).
  void Unassign(Job* job);
  // §3.7: the worker stopped holding a running job without ending it.
  void Requeue(Job* job);
  bool PutBack(Peer& peer, std::string_view handle);
  // Ends a job: removes it from every structure, deletes its durable row, frees it.
  void Destroy(Job* job);
  void Forward(const Job* job, protocol::PacketType type, std::string_view payload);
  void RunTimers();
  std::optional<int64_t> NextTimerDeadline() const;
  int64_t EpochDeadlineMs(const Job* job) const;
  // A timer at `deadline_ms` exists: tell the owner if it is earlier than the last one announced.
  void Announce(int64_t deadline_ms);
  Job* FindByHandle(std::string_view handle) const;

  // ---- admin (admin.cc)
  CancelResult CancelJob(std::string_view handle);
  DropResult DropFunction(std::string_view name);
  void SetMaxQueue(std::string_view name, const std::array<uint32_t, 3>& limits);
  JobStatus GetStatus(std::string_view handle) const;
  JobStatus GetStatusUnique(std::string_view unique) const;
  std::vector<const Function*> FunctionsByName() const;
  std::vector<const Job*> JobsInCreationOrder() const;
  std::vector<const Peer*> WorkerPeers() const;

  // ---- job memory
  Job* AllocJob();
  void FreeJob(Job* job);

  const Options& options;
  Clock& clock;
  storage::JobStore* const store;  // null: nothing is durable (-q builtin)
  const std::function<void(int64_t)> schedule;

  // Every function by exact name; owns them.
  std::unordered_map<std::string, std::unique_ptr<Function>, StringHash, std::equal_to<>>
      functions_;
  // The same functions in ascending byte order of name (listings resume by name).
  struct NameLess {
    using is_transparent = void;
    static std::string_view Name(const Function* f) { return f->name(); }
    static std::string_view Name(std::string_view s) { return s; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const { return Name(a) < Name(b); }
  };
  std::set<const Function*, NameLess> by_name_;
  Broker::RetiredCounts retired_;
  // Highest jobs + functions count since the server last asked (Broker::TakeHighWater); kept
  // at each insertion so a peak that comes and goes between two memory checks is still seen.
  size_t high_water_ = 0;
  void NoteGrowth() { high_water_ = std::max(high_water_, by_id_.size() + functions_.size()); }
  // Every live job (any state) by id.
  JobTable<IdTraits> by_id_;
  // Live jobs with a coalescing key, except cancelled ones; at most one job per key.
  JobTable<UniqueTraits> by_unique_;
  // Every live job in creation order. Owns them (freed through FreeJob).
  JobList<kCreationLink> all_jobs_;
  // Jobs in state kWaiting, by due time.
  JobHeap<EpochLess> epoch_heap_;
  // Running jobs with a CAN_DO_TIMEOUT, by deadline.
  JobHeap<DeadlineLess> timeout_heap_;
  // Last deadline passed to `schedule` and not yet run (nullopt: none outstanding).
  std::optional<int64_t> announced_;
  // Durable writes in flight by job id.
  std::unordered_map<uint64_t, PendingWrite> writes_;
  // Spent writes_ nodes kept for reuse, with their handle and waiters capacity: a durable submit
  // then allocates nothing for its PendingWrite (bounded by kMaxFreeWrites).
  std::vector<std::unordered_map<uint64_t, PendingWrite>::node_type> free_writes_;
  static constexpr size_t kMaxFreeWrites = 4096;
  // Open listing cursors (Broker::JobCursor): moved on when the job they point at is destroyed.
  std::vector<Broker::JobCursor*> cursors_;
  // Attached peers in attach order.
  std::vector<Peer*> peers_;
  // Last PeerState::serial handed out.
  uint64_t last_peer_serial_ = 0;
  // Blank jobs for reuse (bounded by kMaxFreeJobs).
  std::vector<std::unique_ptr<Job>> free_jobs_;
  // Sum of live jobs' bytes_ sizes (Broker::JobBytes, the --max-memory budget).
  size_t job_bytes_ = 0;
  std::string scratch_;  // handle formatting

  // Handle counter (§3.2): starts at the first NextId() at max(floor_, max_restored_ + 1, now).
  bool counter_started_ = false;
  // Set by BeginShutdown(): re-queues no longer count retries, drop jobs or wake anyone.
  bool stopping = false;
  // Set by BeginDrain(): Submit refuses every new submission.
  bool draining = false;
  uint64_t next_id_ = 0;
  uint64_t floor_ = 0;
  uint64_t max_restored_ = 0;
  uint64_t ceiling_ = 0;  // ids below this are reserved with the store

  // What store callbacks point at, so they are ignored after the broker is gone: ~Impl clears
  // `impl`, and the token lives on until the last outstanding callback has run. A plain pointer
  // and an id keep the callback small and trivially copyable, so std::function stores it inline
  // instead of allocating per durable write (a weak_ptr would not fit).
  struct WriteToken {
    Impl* impl;
    size_t outstanding = 0;  // Adds whose callback has not run yet
  };
  WriteToken* write_token_;
};

}  // namespace roundhouse::broker
