// Adapter: serves one Jenkins master over its REST API (doc/jenkins.md §4) and presents its
// executors to the broker as pseudo-workers, so `build:*` jobs are dispatched to it exactly like
// jobs to network workers.
//
// The adapter is a coordinator: it owns the parts, wires them to each other, runs the periodic
// tick and the dispatch round (§4.4: while a node has free capacity, an idle pseudo-worker of that
// node Grabs the next job). The parts, by file:
//   master_view.h     polls, health (§4.10), the function table, pseudo-workers and their
//                     registrations, capacity; every REST call goes through it (health accounting).
//                     master_view.cc: REST, health, the polls' rhythm; master_nodes.cc: R4/R5,
//                     nodes, turnaround, capacity; master_functions.cc: R2, the function table,
//                     blocked functions, pseudo-workers and their registrations
//   build_tracker.h   one build's life (§4.7-4.8, §1.5-1.6, §1.9) as a state machine
//                     (build_state.h); re-binding after a restart (§4.11, build_recovery.cc)
//   journal.h         the journal entries in the queue database (§4.11)
//   offline_taints.h  OFFLINE_NODE_WHEN_COMPLETE (§4.9)
//   manager_worker.h  stop:<MANAGER> and set_description:<MANAGER> (§1.7, §1.8)
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

#include "base/clock.h"
#include "jenkins/build_tracker.h"
#include "jenkins/job_contract.h"
#include "jenkins/journal.h"
#include "jenkins/manager_worker.h"
#include "jenkins/master_settings.h"
#include "jenkins/master_view.h"
#include "jenkins/offline_taints.h"
#include "jenkins/pseudo_worker.h"
#include "jenkins/rest_client.h"
#include "jenkins/rest_model.h"
#include "jenkins/summary.h"
#include "jenkins/transport.h"
#include "server/broker/broker.h"
#include "storage/job_store.h"

namespace roundhouse::jenkins {

class Adapter final : public PseudoWorkerOwner,
                      private ManagerWorker::Host,
                      private OfflineTaints::Host,
                      private MasterView::Builds,
                      private BuildTracker::Host {
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
  void Recover(const std::vector<storage::JournalRow>& rows) { tracker_.Recover(rows); }
  // J5: re-binds journalled builds whose client resubmitted them; the Hub calls it for every
  // master before any dispatch round, so no other master takes such a job.
  void Resume() { tracker_.Resume(); }

  // Stops polling, withdraws every pseudo-worker (their jobs go back to the queue exactly as
  // they were: no retry counted), cancels HTTP requests, then calls `closed` from a later loop
  // iteration. Builds in Jenkins are left alone.
  void Close(std::function<void()> closed);

  // No new dispatch; in-flight builds are still followed (`enabled = false`, removal).
  void SetDraining(bool draining);
  bool draining() const { return view_.draining(); }
  size_t builds_in_flight() const { return tracker_.size(); }

  // One dispatch round (called by the Hub): withdrawn jobs are handled, then jobs are claimed
  // while capacity lasts.
  void Round();

  const MasterSettings& settings() const { return settings_; }
  // Function names this master had the broker list (V1).
  const std::set<std::string>& listed() const { return view_.listed(); }
  // Ends a queued job with WORK_EXCEPTION `text` (the Hub's unroutable sweep, §4.3 F5).
  void FailQueued(const std::string& handle, const std::string& text);
  Health health() const { return view_.health(); }
  MasterSummary Summary() const;

  // ---- PseudoWorkerOwner
  void Woken() override;
  void Withdrawn(std::string_view handle, bool cancelled) override;
  std::string_view host() const override { return settings_.base_url.host; }

 private:
  // test/unit/jenkins drives the timers' work (Tick, the view polls) on a FakeClock.
  friend struct AdapterProbe;

  static void OnTick(uv_timer_t* timer);
  void Tick();
  // api_token_file: re-read when its modification time changes.
  void CheckTokenFile();
  // A part finished closing.
  void HandleClosed();

  // ---- OfflineTaints::Host
  void NodeTakenOffline() override { tracker_.FinishPending(); }

  // ---- MasterView::Builds
  bool HasBuilds() const override { return tracker_.size() != 0; }
  bool HasBuildOf(const std::string& full_name) const override {
    return tracker_.HasBuildOf(full_name);
  }
  void ControllerRestarted() override { tracker_.ControllerRestarted(); }
  void ComputersApplied(int64_t requested_ms) override { tracker_.ComputersApplied(requested_ms); }

  // ---- BuildTracker::Host
  // Runs Tick by monotonic `due_ms` at the latest (it otherwise runs every tick_ms_).
  void TickBy(int64_t due_ms) override;
  PseudoWorker* manager_worker() override { return manager_.worker(); }

  // ---- ManagerWorker::Host and OfflineTaints::Host (the REST calls go through the view)
  bool MasterReady() const override { return view_.Ready(); }
  // §1.7 resolution order: our own builds, a job's fullName, a short name (case-insensitive).
  std::string ResolveBuildPath(const std::string& name, int64_t number,
                               std::string* full_name) const override;
  bool IsPipeline(const std::string& full_name) const override {
    return view_.IsPipeline(full_name);
  }
  void Get(std::string path, std::function<void(RestResult&&)> done,
           ReplySize size = ReplySize::kItem) override {
    view_.Get(std::move(path), std::move(done), size);
  }
  void Post(std::string path, std::vector<std::pair<std::string, std::string>> form,
            std::function<void(RestResult&&)> done) override {
    view_.Post(std::move(path), std::move(form), std::move(done));
  }

  broker::Broker& broker_;
  Clock& clock_;
  AdapterHost& host_;
  const MasterSettings settings_;
  // The parts, in the order they are built (each refers only to those above it).
  std::unique_ptr<Transport> rest_;
  OfflineTaints taints_;  // OFFLINE_NODE_WHEN_COMPLETE, by node
  Journal journal_;
  MasterView view_;
  BuildTracker tracker_;
  ManagerWorker manager_;  // stop: and set_description:

  bool closing_ = false;
  std::vector<std::pair<std::string, bool>> withdrawn_;  // (handle, cancelled), for Round()
  int64_t token_mtime_ns_ = 0;
  int64_t token_checked_ms_ = 0;

  uv_timer_t tick_timer_{};
  int64_t tick_ms_ = 1000;  // Tick's period: the shortest per-build poll interval, at most 1 s
  int open_handles_ = 0;    // the tick timer, the view's timers, the transport: until closed
  std::function<void()> closed_;
};

}  // namespace roundhouse::jenkins
