// Adapter: serves one Jenkins master over its REST API (doc/jenkins.md §4) and presents its
// executors to the broker as pseudo-workers, so `build:*` jobs are dispatched to it exactly like
// jobs to network workers.
//
// What it does, in the terms of doc/jenkins.md:
//   view (§4.2)        polls R1 (health), R2 (jobs), R4 (computers), R5 (node modes) with tree=
//   functions (§4.3)   derives the function table (jenkins/functions.h), has the broker list every
//                      derived name (V1) and registers each executor pseudo-worker for its node's
//                      names (diffs only), plus the manager worker for stop:/set_description:
//   dispatch (§4.4)    in a round (Hub): while a node has free capacity (idle executors minus our
//                      reservations), an idle pseudo-worker of that node Grabs the next job
//   trigger (§4.7)     POST buildWithParameters / build with the job's defined parameters, the pin
//                      parameter and unique_param; outcomes per the §4.7 table
//   following (§4.8)   queue item (R7) → started (WORK_DATA + WORK_STATUS) → build (R9) → result
//                      (final WORK_DATA + WORK_COMPLETE); queue-wait timeout cancels the item and
//                      puts the Gearman job back invisibly
//   meta (§1.7, §1.8)  stop:<MANAGER> (with term/kill escalation for Pipelines),
//                      set_description:<MANAGER>
//   cancel (§1.9)      a withdrawn job's queue item is cancelled (W3) or its build stopped (W4);
//                      a job abandoned by its client is kept resume_window_s for it (J8)
//   failures (§4.9-11) OFFLINE_NODE_WHEN_COMPLETE taints (offline_taints.cc), grace periods,
//                      controller restarts, lost nodes, and the journal that lets a restarted
//                      server re-bind its builds instead of triggering them again
//                      (journal.cc)
//
// Health (§4.10): masters start SUSPECT; 2 consecutive successful requests make them HEALTHY;
// `unhealthy_after` consecutive failures (or 401/403 on a read) make them DOWN, which withdraws
// the pseudo-workers' registrations (names stay listed). Only a HEALTHY master gets new builds.
//
// Every decision for one master runs on the loop thread, so the reservation ledger, claims and
// triggers are serialised (D1) without locks.
//
// Thread-safety: loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "jenkins/build_state.h"
#include "jenkins/functions.h"
#include "jenkins/job_contract.h"
#include "jenkins/manager_worker.h"
#include "jenkins/master_settings.h"
#include "jenkins/name_filter.h"
#include "jenkins/offline_taints.h"
#include "jenkins/pseudo_worker.h"
#include "jenkins/rest_client.h"
#include "jenkins/rest_model.h"
#include "jenkins/summary.h"
#include "jenkins/transport.h"
#include "server/base/clock.h"
#include "server/broker/broker.h"
#include "storage/job_store.h"

namespace roundhouse::jenkins {

class AdapterHost {
 public:
  virtual ~AdapterHost() = default;
  // Run a dispatch round (for every master) soon, from a fresh loop callback.
  virtual void RequestRound() = 0;
};

enum class Health { kSuspect, kHealthy, kDown };
const char* HealthName(Health health);

class Adapter final : public PseudoWorkerOwner,
                      private ManagerWorker::Host,
                      private OfflineTaints::Host {
 public:
  // `store` (may be null: no journal) keeps the journal of dispatched builds (§4.11). The
  // master is reached through a RestTransport built from `settings`.
  Adapter(uv_loop_t* loop, broker::Broker& broker, Clock& clock, AdapterHost& host,
          MasterSettings settings, storage::JobStore* store);
  // The same over a given transport (unit tests: a scripted fake). `loop` still runs the
  // adapter's timers.
  Adapter(uv_loop_t* loop, broker::Broker& broker, Clock& clock, AdapterHost& host,
          MasterSettings settings, storage::JobStore* store, std::unique_ptr<Transport> transport);
  ~Adapter() override;
  Adapter(const Adapter&) = delete;
  Adapter& operator=(const Adapter&) = delete;

  // Starts polling. Call once.
  void Start();
  // Start-up, right after Start() and before the loop runs: this master's journal entries.
  // Background jobs the broker restored are re-bound at once (§4.11).
  void Recover(const std::vector<storage::JournalRow>& rows);
  // J5: re-binds journalled builds whose client resubmitted them; the Hub calls it for every
  // master before any dispatch round, so no other master takes such a job.
  void Resume();

  enum class JournalState { kTriggering, kQueued, kStarted };
  // Stops polling, withdraws every pseudo-worker (their jobs go back to the queue exactly as
  // they were: no retry counted), cancels HTTP requests, then calls `closed` from a later loop
  // iteration. Builds in Jenkins are left alone.
  void Close(std::function<void()> closed);

  // No new dispatch; in-flight builds are still followed (`enabled = false`, removal).
  void SetDraining(bool draining);
  bool draining() const { return draining_; }
  size_t builds_in_flight() const { return builds_.size(); }

  // One dispatch round (called by the Hub): withdrawn jobs are handled, then jobs are claimed
  // while capacity lasts.
  void Round();

  const MasterSettings& settings() const { return settings_; }
  // Function names this master had the broker list (V1).
  const std::set<std::string>& listed() const { return listed_; }
  // Ends a queued job with WORK_EXCEPTION `text` (the Hub's unroutable sweep, §4.3 F5).
  void FailQueued(const std::string& handle, const std::string& text);
  Health health() const { return health_; }
  MasterSummary Summary() const;

  // ---- PseudoWorkerOwner
  void Woken() override;
  void Withdrawn(std::string_view handle, bool cancelled) override;
  std::string_view host() const override { return settings_.base_url.host; }

 private:
  // test/unit/jenkins drives the timers' work (Tick, the view polls) on a FakeClock.
  friend struct AdapterProbe;

  struct Node;
  struct Build;
  struct Route;

  // ---- view (master_view.cc; the timers, Tick and the round: adapter.cc)
  void PollController();
  void PollJobs();
  void PollComputers();
  void PollNodeMode(const std::string& node);
  void ApplyJobs(std::vector<JobInfo> jobs);
  void ApplyComputers(std::vector<ComputerInfo> computers, int64_t requested_ms);
  void Recompute();  // function table, listed names, pseudo-workers and registrations
  void ReconcileRegistrations();
  std::set<std::string> BlockedFunctions() const;
  bool Busy() const;
  void CheckInstance();
  void AbandonInflight();
  void RequestSucceeded();
  void RequestFailed(std::string_view what, bool fatal);
  void SetHealth(Health health);
  bool Dispatchable() const;
  std::map<std::string, int> ReservationsByNode() const;
  int FreeCapacity(const Node& node, int reservations) const;
  void ArmTimer(uv_timer_t* timer, int64_t delay_ms);
  // A view poll's retry rhythm. A poll that has never succeeded (start-up), or fails while the
  // master is DOWN, is retried after 250 ms, doubling, at most its normal interval; a failure on
  // a working master keeps the normal rhythm (the health state counts it). Reset by a success.
  struct PollRetry {
    int failures = 0;
    bool succeeded = false;  // at least once
  };
  // The delay before the next run of a poll whose run just ended (`ok`: a usable answer).
  int64_t NextPollDelay(PollRetry& retry, bool ok, int64_t normal_ms) const;
  // A request succeeded: view polls waiting out a retry delay run now (the master is back).
  void KickFailedPolls();
  static void OnTimer(uv_timer_t* timer);
  void Tick();
  // Runs Tick by monotonic `due_ms` at the latest (it otherwise runs every tick_ms_).
  void TickBy(int64_t due_ms);
  // api_token_file: re-read when its modification time changes.
  void CheckTokenFile();
  std::string WorkerName(const std::string& node, int executor) const;
  // A REST call whose callback is ignored once the adapter is closing.
  void Get(std::string path, std::function<void(RestResult&&)> done,
           ReplySize size = ReplySize::kItem) override;
  void Post(std::string path, std::vector<std::pair<std::string, std::string>> form,
            std::function<void(RestResult&&)> done) override;
  Transport::Callback Accounted(bool post, std::function<void(RestResult&&)> done);

  // ---- builds (build_tracker.cc; states and transitions: build_state.h)
  void Claim(PseudoWorker& worker, const broker::Job& job, Node& node);
  void Trigger(Build& build);
  void OnTriggered(const std::string& handle, RestResult&& result);
  void SearchLostTrigger(Build& build, int attempt);
  void PollQueueItem(Build& build);
  void OnQueueItem(const std::string& handle, RestResult&& result);
  void LookupLeftItem(Build& build);
  void CancelQueued(Build& build);
  void OnStarted(Build& build, int64_t number, const std::string& url);
  void PollBuild(Build& build);
  // A running build's next read comes just after the end Jenkins' estimate gives it, when that
  // is sooner than the next regular poll (turnaround: the end is seen sooner).
  void ExpectEnd(Build& build, const BuildInfo& info);
  void OnBuild(const std::string& handle, RestResult&& result);
  void IdentifyExecutorAndStart(Build& build, const BuildInfo& info);
  void StartAndMaybeEnd(Build& build, const BuildInfo& info, const std::string& node,
                        int executor);
  // The executor index for the start JSON's worker name; -1: wait (the start is deferred).
  int ChooseWorkerIndex(const Build& build, const std::string& node, int seen);
  bool WaitedTooLong(const Build& build) const;
  void HurryPoll(Build& build);
  void ResumeDeferredStarts(const std::string& node);
  // Turnaround: one of our builds was seen over in Jenkins, so the executor that ran it is free
  // now, in the view and for dispatch, without waiting for the next computers snapshot.
  void ExecutorFreed(const Build& build);
  bool NonConcurrent(const std::string& full_name) const;
  // Builds of ours holding a reservation on `node` (the O1 check: only the one being triggered).
  int ReservedBuildsOn(const std::string& node) const;
  const Node* FindNode(const std::string& name) const;
  // W4; `transition` is kAbort, or kRecoveredAbort for an orphan read back from the journal.
  void AbortBuild(Build& build, BuildTransition transition = BuildTransition::kAbort);
  // The one way a build's state changes: along an arrow of the table (build_state.h). An
  // illegal transition asserts (release builds: logged, the state is kept).
  void Move(Build& build, BuildTransition transition);
  // Admin cancel: W3/W4 at once. Abandoned by its last client: followed on for resume_window_s
  // (J8), so a client resubmitting the same function and unique (which coalesces onto the job)
  // gets the build; then orphan_policy.
  void HandleWithdrawn(const std::string& handle, bool cancelled);
  void WithdrawNow(Build& build);
  void CheckAwaitingClients(int64_t now);
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
  Build* FindBuild(const std::string& handle);
  std::string ShortName(const Build& build) const;
  std::string BuiltinName() const;
  bool IsBuiltinNode(const std::string& node) const;

  // ---- OFFLINE_NODE_WHEN_COMPLETE (offline_taints.cc)
  // Builds waiting (on-complete) for their node to go offline, once it has or the wait is over.
  void FinishPending();
  void NodeTakenOffline() override { FinishPending(); }

  // ---- journal (journal.cc)
  std::string EncodeJournal(const Build& build, JournalState state) const;
  // Writes the entry; `done` (optional) runs once it is committed (at once without a store).
  void Journal(Build& build, JournalState state, std::function<void(Status)> done = {});
  void Unjournal(const Build& build);
  void ReconcileRecovered();

  // ---- ManagerWorker::Host (the answers live in adapter.cc)
  bool MasterReady() const override;
  // §1.7 resolution order: our own builds, a job's fullName, a short name (case-insensitive).
  std::string ResolveBuildPath(const std::string& name, int64_t number,
                               std::string* full_name) const override;
  bool IsPipeline(const std::string& full_name) const override;

  uv_loop_t* loop_;
  broker::Broker& broker_;
  Clock& clock_;
  AdapterHost& host_;
  MasterSettings settings_;
  storage::JobStore* store_;  // null: no journal
  std::optional<NameFilter> job_include_, job_exclude_, name_filter_;
  std::unique_ptr<Transport> rest_;
  // Set while closing: callbacks of requests still in flight do nothing.
  std::shared_ptr<bool> alive_;

  Health health_ = Health::kSuspect;
  std::string last_error_;  // the last failed request's cause; cleared when HEALTHY
  int successes_ = 0;
  int failures_ = 0;
  bool draining_ = false;
  bool closing_ = false;
  ControllerInfo controller_;
  bool have_jobs_ = false;
  bool have_computers_ = false;
  int64_t last_computers_ms_ = -1;
  bool computers_in_flight_ = false;
  bool jobs_in_flight_ = false;
  bool controller_in_flight_ = false;
  PollRetry controller_retry_, jobs_retry_, computers_retry_;
  int64_t jobs_requested_ms_ = 0;  // when the job list in jobs_ was requested
  int64_t down_since_ms_ = 0;      // monotonic ms the master became DOWN; 0 while not DOWN
  std::string instance_id_;        // X-Jenkins-Session last seen
  uint64_t restarts_ = 0;          // controller restarts observed

  std::vector<JobInfo> jobs_;
  std::map<std::string, size_t> job_index_;  // fullName -> jobs_ index
  std::map<std::string, Route> routes_;      // function name -> job (and atom)
  std::vector<Node> nodes_;
  std::unique_ptr<OfflineTaints> taints_;  // OFFLINE_NODE_WHEN_COMPLETE, by node
  // node -> ("NORMAL"/"EXCLUSIVE", monotonic ms fetched) from R5
  std::map<std::string, std::pair<std::string, int64_t>> node_modes_;
  std::set<std::string> modes_in_flight_;
  std::set<std::string> listed_;  // names this master had the broker create
  std::map<std::string, std::unique_ptr<PseudoWorker>> workers_;  // by pseudo-worker name
  std::unique_ptr<ManagerWorker> manager_;                        // stop: and set_description:
  std::map<std::string, int64_t> backoff_until_;  // function -> monotonic ms
  std::set<std::string> logged_once_;
  int64_t token_mtime_ns_ = 0;
  int64_t token_checked_ms_ = 0;
  int64_t cancels_pruned_ms_ = 0;

  std::map<std::string, std::unique_ptr<Build>> builds_;  // by Gearman handle
  std::vector<std::pair<std::string, bool>> withdrawn_;   // (handle, cancelled), for Round()
  std::map<std::string, int64_t> last_end_ms_;      // fullName -> when our last build ended
  // Build URLs of ours seen over (ExecutorFreed) -> monotonic ms; a snapshot requested before
  // that still shows them on an executor is corrected. Dropped once a snapshot requested after
  // the end arrives (it is the truth from then on).
  std::map<std::string, int64_t> ended_urls_;
  std::map<std::string, int64_t> dropped_logged_;   // fullName -> last dropped-keys log (P2)
  std::map<std::string, int> external_cancels_;     // handle -> queue items cancelled by others

  uv_timer_t computers_timer_{};
  uv_timer_t jobs_timer_{};
  uv_timer_t health_timer_{};
  uv_timer_t tick_timer_{};
  int64_t tick_ms_ = 1000;  // Tick's period: the shortest per-build poll interval, at most 1 s
  int open_handles_ = 0;
  std::function<void()> closed_;

  // Counters (Summary, metrics).
  uint64_t requests_ = 0;
  uint64_t request_errors_ = 0;
  uint64_t dispatches_ = 0;
  uint64_t requeues_ = 0;
  uint64_t dropped_parameters_ = 0;
};

}  // namespace roundhouse::jenkins
