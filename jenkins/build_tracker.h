// BuildTracker: the Gearman jobs one master took, each from its claim to the packet that ends it
// (or its put-back): claim and parameters (doc/jenkins.md §4.4-4.6), trigger outcomes (§4.7),
// following the queue item and the build (§4.8) with the packets of §1.5, the endings of §1.6,
// cancellation (§1.9), and the journal's reconciliation after a restart (§4.11, in
// build_recovery.cc). A build's step is one BuildState, changed only along the named arrows of
// build_state.h (Move).
//
// Ownership: owned by its Adapter, like the MasterView, OfflineTaints and Journal it uses (all
// outlive it). It owns its Builds. Callbacks of its requests never run after the adapter began
// closing (MasterView drops them), so they may capture `this`.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "jenkins/build_state.h"
#include "jenkins/job_contract.h"
#include "jenkins/journal.h"
#include "jenkins/master_settings.h"
#include "jenkins/master_view.h"
#include "jenkins/offline_taints.h"
#include "jenkins/pseudo_worker.h"
#include "jenkins/rest_model.h"
#include "jenkins/summary.h"
#include "jenkins/transport.h"
#include "server/broker/broker.h"
#include "storage/job_store.h"

namespace roundhouse::jenkins {

class BuildTracker {
 public:
  // What the tracker asks of its adapter.
  class Host {
   public:
    virtual ~Host() = default;
    // Run the periodic work (polls due) by monotonic `due_ms` at the latest.
    virtual void TickBy(int64_t due_ms) = 0;
    // The manager pseudo-worker (holder of builds re-bound from the journal); null if detached.
    virtual PseudoWorker* manager_worker() = 0;
  };

  BuildTracker(Host& host, AdapterHost& rounds, broker::Broker& broker, Clock& clock,
               const MasterSettings& settings, MasterView& view, OfflineTaints& taints,
               Journal& journal, const Transport& rest)
      : host_(host),
        rounds_(rounds),
        broker_(broker),
        clock_(clock),
        settings_(settings),
        view_(view),
        taints_(taints),
        journal_(journal),
        rest_(rest) {}
  BuildTracker(const BuildTracker&) = delete;
  BuildTracker& operator=(const BuildTracker&) = delete;

  // A job `worker` grabbed for `node`: its build is triggered (§4.7).
  void Claim(PseudoWorker& worker, const broker::Job& job, const std::string& node);
  // The polls and resent cancels that are due at `now`.
  void PollDue(int64_t now);
  // Builds waiting (on-complete) for their node to go offline, once it has or the wait is over.
  void FinishPending();
  // Admin cancel: W3/W4 at once. Abandoned by its last client: followed on for resume_window_s
  // (J8), so a client resubmitting the same function and unique (which coalesces onto the job)
  // gets the build; then orphan_policy.
  void HandleWithdrawn(const std::string& handle, bool cancelled);
  void CheckAwaitingClients(int64_t now);
  // §4.10 M1/M2: the master stayed DOWN beyond inflight_grace_s.
  void AbandonInflight();
  // Cancels by others are counted per job across its requeues (Q3); forgets jobs that ended.
  void PruneExternalCancels(int64_t now);
  // Closing: every build is dropped (Jenkins is left alone).
  void Clear() { builds_.clear(); }

  // ---- the journal (build_recovery.cc)
  // Start-up: this master's journal entries. Background jobs the broker restored are re-bound
  // at once (§4.11).
  void Recover(const std::vector<storage::JournalRow>& rows);
  // J5: re-binds journalled builds whose client resubmitted them.
  void Resume();
  // Entries from the journal, once the master answers: pick up where they were.
  void ReconcileRecovered();

  // ---- answers for the view, the dispatch round, the manager worker and the summary
  size_t size() const { return builds_.size(); }
  bool HasBuildOf(const std::string& full_name) const;
  // Builds not started yet (max_inflight_starts).
  int Starting() const;
  // D5: executors each node owes to builds we triggered there that the last snapshot does not
  // show running yet.
  std::map<std::string, int> ReservationsByNode() const;
  // §4.10 M3: builds in flight are re-read now; started ones are marked as across the restart.
  void ControllerRestarted();
  // A new computers snapshot (MasterView::Builds::ComputersApplied).
  void ComputersApplied(int64_t requested_ms);
  // §1.7 step 1: the build path of our build of `name` (short or full) number `number`; empty
  // if none. `full_name` receives its job's fullName.
  std::string FindOwnBuild(const std::string& name, int64_t number, std::string* full_name) const;
  void Summarize(MasterSummary& s) const;

 private:
  struct Build;

  void Trigger(Build& build);
  bool Pinnable(const JobInfo& job) const;
  bool ReserveForOffline(Build& build, const JobInfo& job);
  std::vector<std::pair<std::string, std::string>> OwnParameters(Build& build, const JobInfo& job);
  bool AcceptDropped(Build& build, const JobInfo& job, const FilteredParameters& params);
  void PostTrigger(Build& build, std::string path,
                   std::vector<std::pair<std::string, std::string>> form);
  void OnTriggered(const std::string& handle, RestResult&& result);
  void SearchLostTrigger(Build& build, int attempt);
  void PollQueueItem(Build& build);
  void OnQueueItem(const std::string& handle, RestResult&& result);
  void LookupLeftItem(Build& build);
  void CancelQueued(Build& build);
  // W3 once the request in flight has answered (at the next tick).
  void CancelLater(Build& build, BuildTransition transition);
  void OnStarted(Build& build, int64_t number, const std::string& url);
  void PollBuild(Build& build);
  // A running build's next read comes just after the end Jenkins' estimate gives it, when that
  // is sooner than the next regular poll (turnaround: the end is seen sooner).
  void ExpectEnd(Build& build, const BuildInfo& info);
  void OnBuild(const std::string& handle, RestResult&& result);
  void IdentifyExecutorAndStart(Build& build, const BuildInfo& info);
  void StartAndMaybeEnd(Build& build, const BuildInfo& info, const std::string& node, int executor);
  // The executor index for the start JSON's worker name; -1: wait (the start is deferred).
  int ChooseWorkerIndex(const Build& build, const std::string& node, int seen);
  bool WaitedTooLong(const Build& build) const;
  void HurryPoll(Build& build);
  void ResumeDeferredStarts(const std::string& node);
  // Builds of ours holding a reservation on `node` (the O1 check: only the one being triggered).
  int ReservedBuildsOn(const std::string& node) const;
  // W4; `transition` is kAbort, or kRecoveredAbort for an orphan read back from the journal.
  void AbortBuild(Build& build, BuildTransition transition = BuildTransition::kAbort);
  // The one way a build's state changes: along an arrow of the table (build_state.h). An
  // illegal transition asserts (release builds: logged, the state is kept).
  void Move(Build& build, BuildTransition transition);
  void WithdrawNow(Build& build);
  // The endings of §1.6: exactly one per job; each forgets the build (`build` is gone after).
  void EndWithResult(Build& build, const std::string& result);
  void EndWithError(Build& build, const std::string& text);
  void EndWithFail(Build& build);
  // Gives the Gearman job back to the queue, unseen by its clients, and forgets the build.
  // `backoff_ms` > 0 keeps the function off this master's registrations that long.
  void PutBack(Build& build, const char* why, int64_t backoff_ms);
  void Forget(std::string handle);
  // WORK_* for the build's job; `body` is what follows "HANDLE\0" (for WORK_STATUS
  // "NUM\0DEN"; ignored for WORK_FAIL).
  void SendWork(Build& build, protocol::PacketType type, std::string_view body);
  // Writes the build's journal entry in `state`; `done` (optional) runs once it is committed.
  void Record(Build& build, Journal::State state, std::function<void(Status)> done = {});
  void Unrecord(const Build& build);
  Build* FindBuild(const std::string& handle);
  std::string ShortName(const Build& build) const;

  Host& host_;
  AdapterHost& rounds_;
  broker::Broker& broker_;
  Clock& clock_;
  const MasterSettings& settings_;
  MasterView& view_;
  OfflineTaints& taints_;
  Journal& journal_;
  const Transport& rest_;

  std::map<std::string, std::unique_ptr<Build>> builds_;  // by Gearman handle
  std::map<std::string, int64_t> dropped_logged_;         // fullName -> last dropped-keys log (P2)
  std::map<std::string, int> external_cancels_;  // handle -> queue items cancelled by others
  int64_t cancels_pruned_ms_ = 0;

  // Counters (Summary, metrics).
  uint64_t dispatches_ = 0;
  uint64_t requeues_ = 0;
  uint64_t dropped_parameters_ = 0;
};

// One Gearman job this master took, from its claim to the packet that ends it (or its put-back).
// Its step in §4.8 is `state` (build_state.h). The remaining bools are not steps of that life:
// each is said below why it is data next to the state rather than a state of its own.
struct BuildTracker::Build {
  // ---- the Gearman job
  std::string handle;
  std::string unique;  // as submitted (may be empty)
  std::string function;
  std::string data;
  PseudoWorker* holder = nullptr;  // null once the broker no longer has the job (withdrawn)

  // ---- where it runs
  std::string full_name;  // Jenkins job
  std::string job_path;   // "job/a/job/b/"
  std::string node;       // node charged with the reservation (and pinned to, unless label-only)
  // May hold an executor of `node` (ReservationsByNode). Capacity bookkeeping that ends when a
  // snapshot shows the executor busy, at no step of the build's life: not a state.
  bool reserved = true;
  bool unpinned = false;  // no pin parameter sent: Jenkins chose the node (a fact of the trigger)
  // The executor of `node` Jenkins showed running the build (snapshot or R11); -1 unknown.
  int executor = -1;
  // The index in the start JSON's `worker` (`<node>_exec-<i>`), set when the start is sent;
  // equals `executor` when that was known, else a free index (ChooseWorkerIndex). While the
  // client has not seen the build end, no other build is reported on the same index.
  int worker_index = -1;

  // ---- the state machine (changed only by BuildTracker::Move) and its requests
  BuildState state = BuildState::kClaimed;
  // A poll or action of this build awaits its answer: at most one request per build is in
  // flight, in any state; I/O bookkeeping, not a step.
  bool request_in_flight = false;
  int not_found = 0;             // lookups of a vanished queue item (R7 404 -> R10), §4.8 Q4
  int64_t claimed_ms = 0;        // monotonic
  int64_t queued_ms = 0;         // monotonic, when the queue item became known
  int64_t started_ms = 0;        // monotonic, when the start was observed
  int64_t next_poll_ms = 0;      // monotonic
  int64_t poll_interval_ms = 0;  // R9 interval, growing to poll.build_max_s
  int64_t queue_id = 0;
  int64_t number = 0;
  std::string url;         // build URL
  std::string build_path;  // relative path of the build

  // ---- what its client was told (§1.5)
  // WORK_DATA + WORK_STATUS of §1.5 steps 1-2 sent. The client's side of the build, not
  // Jenkins': a STARTED build may not have been reported yet (its start deferred, Q5), and J8
  // sends the start again to a client that came back, so it cannot be a step of `state`.
  bool start_sent = false;
  int64_t start_deferred_ms = 0;  // monotonic; the start waits for another build's end report
  StartInfo start;

  // ---- withdrawal (§1.9) and clients coming back (§4.11 J5, J8)
  // Nobody is told anything any more (admin cancel, or abandoned past the resume window). The
  // Jenkins side still runs through the same states (its item cancelled, its build stopped, or
  // a cancel that came too late followed to its end), so this is who is told, not a state.
  bool withdrawn = false;
  // Abandoned by its last client, kept for a resubmission (J8); the build goes on in whatever
  // state it is. Ends with a resubmission or at resume_until_ms.
  bool awaiting_client = false;
  // Until then a client may come back: J8 (awaiting_client) or J5 (read back from the journal).
  int64_t resume_until_ms = 0;

  // ---- OFFLINE_NODE_WHEN_COMPLETE (§4.9): what the client asked for, fixed at the trigger
  bool offline_requested = false;
  bool offline_on_complete = false;  // else on-start
  std::string final_result;          // FINISHING: the result whose packets wait
  int64_t finish_deadline_ms = 0;    // FINISHING: they are sent by then at the latest

  // ---- lost nodes and controller restarts (§4.10): facts observed, read at the ending
  int64_t node_lost_ms = 0;     // when the node was seen disconnected under the build (M5)
  bool across_restart = false;  // started before a controller restart (M3)

  // ---- the journal (§4.11)
  bool journaled = false;  // an entry exists (or is being written): Forget deletes it
  // RECOVERED: the entry's state, which picks the kRecovered* arrow once the master answers.
  Journal::State recovered = Journal::State::kTriggering;
  // RECOVERED, J5 window over under orphan_policy = ignore: the entry is forgotten when reconciled
  // rather than cancelled (with `withdrawn`, the J6 decision the reconciliation carries out).
  bool forget_orphan = false;
  std::string rebound_handle;  // a resubmission coalesced onto it under this handle (Resume)
};

}  // namespace roundhouse::jenkins
