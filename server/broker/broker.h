// The broker: functions, jobs, the unique index, priorities, worker registrations, dispatch,
// wake-ups, retries, timers (doc/protocol.md §3). Pure logic: no sockets, no libuv, no SQLite.
// It is driven by calls from the connection layer (one call per decoded request) and by the
// timer callback, reads time from a Clock, and reaches storage only through storage::JobStore.
//
// Thread-safety: loop thread only. Pointers and views it returns are valid until the next
// non-const Broker call unless stated otherwise.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "protocol/packet.h"
#include "server/broker/function.h"
#include "server/broker/job.h"
#include "server/broker/peer.h"
#include "storage/job_store.h"

namespace roundhouse::broker {

enum class PriorityOrder { kGlobal, kPerFunction };

struct Options {
  PriorityOrder priority_order = PriorityOrder::kGlobal;  // --priority-order
  bool round_robin = false;         // -R; meaningful in kPerFunction order (always on in kGlobal)
  int job_retries = -1;             // -j: -1 unlimited, 0..255 (§3.7)
  uint32_t worker_wakeup = 0;       // -w: NOOPs per runnable job, 0 = all
  bool exceptions_default = false;  // --exceptions
  std::string handle_prefix;        // "H:<nodename>" or --job-handle-prefix; <= 42 bytes
  size_t max_unique = 64;           // Limits::max_unique
};

struct SubmitRequest {
  std::string_view function;
  std::string_view unique;
  std::string_view data;
  std::string_view reducer;  // SUBMIT_REDUCE_JOB*; empty otherwise
  Priority priority = Priority::kNormal;
  bool background = false;
  int64_t when = 0;  // SUBMIT_JOB_EPOCH Unix seconds; 0 = now
};

// Outcome of Submit(). When `pending`, the reply comes later through Peer::SubmitDone(ticket).
struct SubmitOutcome {
  bool pending = false;
  uint64_t ticket = 0;
  SubmitReply reply;  // valid when !pending
};

enum class GrabKind { kJob, kUniq, kAll };  // GRAB_JOB, GRAB_JOB_UNIQ, GRAB_JOB_ALL

// Result of a WORK_* packet from a worker.
enum class WorkResult {
  kOk,              // accepted (forwarded / stored / discarded for an ignored job)
  kJobNotFound,     // not held by this peer: ERROR JOB_NOT_FOUND with the type's text (§2.1)
  kHandleTooLarge,  // WORK_FAIL with a handle >= 64 bytes: ARGUMENT_TOO_LARGE (§2.1)
};

struct JobStatus {  // GET_STATUS / GET_STATUS_UNIQUE
  bool known = false;
  bool running = false;
  uint64_t numerator = 0;
  uint64_t denominator = 0;
  uint32_t clients = 0;  // attached foreground clients
};

enum class CancelResult { kOk, kUnknownJob };
enum class DropResult { kOk, kNotFound, kHasWorkersOrRunning, kHasQueuedJobs };

class Broker {
 public:
  // `store` may be null (-q none): then nothing is durable and every submit answers at once.
  // `schedule` is called with a monotonic deadline (ms) whenever the earliest timer moves
  // earlier; the owner must call RunTimers() at or after that time.
  Broker(Options options, Clock& clock, storage::JobStore* store,
         std::function<void(int64_t deadline_ms)> schedule);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // ---- peers
  void Attach(Peer& peer);
  // The peer is gone: its running jobs are re-queued (§3.7), it is detached from the jobs it
  // waits on (§3.10), its registrations and pending submit tickets are dropped.
  void Detach(Peer& peer);
  // Stores `id` as given (the caller keeps the first Limits::max_client_id bytes).
  void SetClientId(Peer& peer, std::string_view id);
  void SetExceptions(Peer& peer, bool on);

  // ---- worker requests
  // Registers (or, repeated, updates the timeout of) `function`, creating it if new.
  // `timeout_ms` as parsed from CAN_DO_TIMEOUT: 1..999 becomes 1000, <= 0 none (§3.8).
  void CanDo(Peer& peer, std::string_view function, int64_t timeout_ms = 0);
  // Withdraws one registration and re-queues this peer's jobs of it; unknown names are ignored.
  void CantDo(Peer& peer, std::string_view function);
  // Withdraws every registration and re-queues every job the peer holds.
  void ResetAbilities(Peer& peer);
  // Sends NOOP through peer.SendNoop() at once if a due job exists for any registration,
  // otherwise marks the peer sleeping.
  void PreSleep(Peer& peer);
  // Assigns the next job per the priority order (§3.4), or null for NO_JOB. Clears sleeping
  // and noop_sent. The caller encodes JOB_ASSIGN / _UNIQ / _ALL from the returned job.
  const Job* Grab(Peer& peer, GrabKind kind);
  // WORK_STATUS, WORK_COMPLETE, WORK_FAIL, WORK_EXCEPTION, WORK_DATA, WORK_WARNING.
  // `handle` is the first argument, `payload` the whole packet body (forwarded unchanged).
  // For WORK_STATUS, `numerator`/`denominator` are its 2nd and 3rd arguments.
  WorkResult Work(Peer& peer, protocol::PacketType type, std::string_view handle,
                  std::string_view payload, std::string_view numerator = {},
                  std::string_view denominator = {});

  // An in-process worker takes one particular queued job (the Jenkins adapter re-binding a build
  // it had dispatched before a restart, doc/jenkins.md §4.11): assigned like a Grab, whatever
  // the peer's registrations. Null unless the job exists and is queued and due.
  const Job* GrabHandle(Peer& peer, std::string_view handle);
  // The handle of a queued (not running) job of `function` with this exact `unique`, or empty.
  std::string FindQueued(std::string_view function, std::string_view unique) const;
  // An in-process worker hands back a job it holds and has not started (the Jenkins adapter after
  // a failed trigger or a queue-wait timeout): the job returns to the head of its queue with its
  // progress reset, no retry counted, nothing sent to clients, its durable row untouched, and
  // sleeping workers are woken. A cancelled or abandoned job is freed instead. False if `peer`
  // does not hold `handle`.
  bool PutBack(Peer& peer, std::string_view handle);

  // ---- client requests
  // The request's views are copied (DATA once, into the job); they need not outlive the call.
  SubmitOutcome Submit(Peer& peer, const SubmitRequest& request);
  // Exact handle. Jobs awaiting their first durable write are unknown.
  JobStatus GetStatus(std::string_view handle) const;
  // The oldest job with this unique in any function; unknown if none.
  JobStatus GetStatusUnique(std::string_view unique) const;

  // ---- admin
  // §3.11, exact handle. Calls JobWithdrawn() on the worker of a running job.
  CancelResult CancelJob(std::string_view handle);
  // Creates the function if it does not exist (idempotent) and pins it: it is kept while empty.
  void CreateFunction(std::string_view name);
  // Exact-case name first, else ASCII case-insensitive. Refused while the function has
  // registrations or running jobs (kHasWorkersOrRunning), or queued / epoch-waiting jobs or jobs
  // awaiting their first durable write (kHasQueuedJobs).
  DropResult DropFunction(std::string_view name);
  // limits[p] for HIGH, NORMAL, LOW; 0 = unlimited. Unknown function: ignored.
  void SetMaxQueue(std::string_view name, const std::array<uint32_t, 3>& limits);

  // Exact-case lookup; null if no such function.
  const Function* FindFunction(std::string_view name) const;
  // Functions in ascending byte order of name (for `status`, `prioritystatus`).
  std::vector<const Function*> FunctionsByName() const;
  size_t FunctionCount() const;
  // The first function whose name is greater than `after` (or >= when `inclusive`), in byte
  // order; null past the end. Lets a listing resume where it stopped, in O(log n), whatever
  // was created or freed meanwhile.
  const Function* FunctionAfter(std::string_view after, bool inclusive = false) const;
  // Counters of functions that were freed (empty, not pinned): kept so totals never go back.
  struct RetiredCounts {
    uint64_t submitted = 0, completed = 0, failed = 0;
  };
  RetiredCounts retired() const;
  // Every live job in creation order (for `show jobs`, `show unique jobs`).
  std::vector<const Job*> JobsInCreationOrder() const;
  // Attached peers that acted as workers, ordered by Fd(), ties in attach order (`workers`).
  std::vector<const Peer*> WorkerPeers() const;
  // Where a listing of workers stopped: the (Fd(), attach serial) of the last one listed.
  struct WorkerKey {
    int fd = -1;
    uint64_t serial = 0;
  };
  // The next at most `max` workers in WorkerPeers() order strictly after `after` (all of them
  // from the start when `after` is null). Resumes by key, so whatever attached or detached
  // meanwhile, every worker attached throughout a listing is listed exactly once.
  // O(attached peers * log max).
  std::vector<const Peer*> WorkerPeersAfter(const WorkerKey* after, size_t max) const;
  static WorkerKey KeyOf(const Peer& peer);

  // A position in the creation order of live jobs that survives jobs ending (`show jobs`,
  // /api/jobs listed a slice at a time): the broker moves a cursor on when the job it points at
  // is destroyed, so it never dangles. Jobs created after the cursor passed the end of the list
  // are not listed; every job alive throughout the listing is listed exactly once.
  // Must be destroyed before the broker. Costs the broker O(open cursors) per job destroyed
  // while any cursor is open, nothing otherwise.
  class JobCursor;
  // Jobs queued, running, or awaiting their first durable write (graceful shutdown waits for 0).
  size_t LiveJobCount() const;
  // The highest count of live jobs plus functions since the last call (at least the current
  // count); the call starts a new period at the current count. For the server's memory check.
  size_t TakeHighWater();
  // Frees the blank jobs and write records kept for reuse (they are refilled on demand): the
  // server calls it before handing freed heap back to the system.
  void ReleaseCaches();
  // Bytes of data, handle, unique and reducer held by live jobs (the --max-memory budget).
  size_t JobBytes() const;
  // The process is exiting (SIGTERM, `shutdown`): from now on a worker leaving puts its jobs
  // back exactly as they were (no retry counted, no drop, no store change, nobody woken), so a
  // durable job's row stays and is replayed at the next start (doc/protocol.md §5.3, §6.1).
  void BeginShutdown();
  // A graceful shutdown began (doc/gearman-differences.md, "shutdown graceful"): from now on
  // every new submission is refused with ERROR SHUTTING_DOWN; work already accepted goes on.
  void BeginDrain();
  bool draining() const;
  // Jobs a graceful shutdown waits for: running, awaiting their first durable write, with a
  // foreground client attached, or not durable (they would be lost). A queued durable job does
  // not count: its row stays and is replayed at the next start. O(live jobs): call it on a
  // timer, not per packet.
  size_t JobsHoldingShutdown() const;

  // ---- timers and start-up
  // Runs every timer due at clock.MonotonicMs(): CAN_DO_TIMEOUT expiries, epoch jobs. Then
  // passes the next deadline (if any) to `schedule`, so the owner may simply re-arm there.
  void RunTimers();
  std::optional<int64_t> NextTimerDeadline() const;
  // Start-up replay of one durable job (not re-written). Call before any peer attaches.
  void Restore(storage::JobRecord&& record);
  // Start-up: the handle counter starts at or above this id (and above every restored id and
  // the start-up Unix time in microseconds).
  void SetHandleFloor(uint64_t id);

  const Options& options() const { return options_; }

 private:
  struct Impl;
  Options options_;
  std::unique_ptr<Impl> impl_;
};

class Broker::JobCursor {
 public:
  explicit JobCursor(const Broker& broker);
  ~JobCursor();
  JobCursor(const JobCursor&) = delete;
  JobCursor& operator=(const JobCursor&) = delete;
  // The next live job (jobs awaiting their first durable write skipped), or null at the end.
  // The pointer is valid until the next non-const Broker call.
  const Job* Next();

 private:
  friend class Broker;
  Impl* impl_;
  const Job* next_;  // kept valid by the broker (Impl::Destroy); null: at the end
};

}  // namespace roundhouse::broker
