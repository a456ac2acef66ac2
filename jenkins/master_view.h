// MasterView: one master as the adapter sees it (doc/jenkins.md §4.2). It polls R1 (health), R2
// (jobs), R4 (computers) and R5 (node modes) on its own timers, keeps the health state (§4.10)
// from the outcome of every REST call the adapter's parts make (they all go through Get/Post
// here), derives the function table with its routes and listed names (§1.2, §1.3, §4.3), owns
// the executor pseudo-workers and their registrations (V1-V5), and answers capacity (§4.4 D2,
// D5 with the reservations the BuildTracker counts, D6).
//
// Implementation, by part: master_view.cc (REST calls and health, the polls' rhythm),
// master_nodes.cc (computers and node modes, turnaround, capacity), master_functions.cc (the job
// list, the function table and routes, blocked functions, pseudo-workers and registrations).
//
// Ownership: owned by its Adapter. The references given to the constructor outlive the view.
// The pseudo-workers it creates report to the adapter (PseudoWorkerOwner). Callbacks of requests
// still in flight do nothing once Close() began, so they may capture `this`.
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
#include <utility>
#include <vector>

#include "base/clock.h"
#include "jenkins/label_expr.h"
#include "jenkins/master_settings.h"
#include "jenkins/name_filter.h"
#include "jenkins/offline_taints.h"
#include "jenkins/pseudo_worker.h"
#include "jenkins/rest_model.h"
#include "jenkins/summary.h"
#include "jenkins/transport.h"
#include "server/broker/broker.h"

namespace roundhouse::jenkins {

class AdapterHost {
 public:
  virtual ~AdapterHost() = default;
  // Run a dispatch round (for every master) soon, from a fresh loop callback.
  virtual void RequestRound() = 0;
};

enum class Health { kSuspect, kHealthy, kDown };
const char* HealthName(Health health);

class MasterView {
 public:
  // One node as the latest computers snapshot (R4) and mode lookup (R5) show it.
  struct Node {
    ComputerInfo info;
    LabelSet labels;
    // `build:*` names this node's executors register (empty while offline or mode unknown).
    std::vector<std::string> functions;
    bool mode_known = false;
    bool exclusive = false;
    int idle = 0;                // idle executors in the snapshot
    int64_t cooldown_until = 0;  // contention cooldown (§4.8 Q2), monotonic ms
  };

  // What the view asks of the builds in flight (the BuildTracker, through the adapter).
  class Builds {
   public:
    virtual ~Builds() = default;
    virtual bool HasBuilds() const = 0;
    // A build of the job `full_name` is in flight (D6 for a non-concurrent job).
    virtual bool HasBuildOf(const std::string& full_name) const = 0;
    // §4.10 M3: a new instance id; every build in flight is re-read.
    virtual void ControllerRestarted() = 0;
    // A computers snapshot requested at `requested_ms` replaced the nodes (before the function
    // table is derived from it): reservations, lost nodes, builds that seem over (§4.4 D5, M5).
    virtual void ComputersApplied(int64_t requested_ms) = 0;
  };

  MasterView(uv_loop_t* loop, broker::Broker& broker, Clock& clock, AdapterHost& host,
             Builds& builds, PseudoWorkerOwner& owner, const MasterSettings& settings,
             Transport& rest, OfflineTaints& taints);
  ~MasterView();
  MasterView(const MasterView&) = delete;
  MasterView& operator=(const MasterView&) = delete;

  // Starts the three polls.
  void Start();
  // Drops the callbacks of requests in flight, detaches every pseudo-worker (their jobs go back
  // to the broker) and closes the timers; `closed` runs once they are closed.
  void Close(std::function<void()> closed);
  bool closing() const { return closing_; }

  // ---- REST calls of every part of the adapter: counted, fed into the health state and restart
  // detection, and dropped once closing. A 403 on a POST is a missing permission for that
  // action, not a broken master, so only reads count it.
  void Get(std::string path, Transport::Callback done, ReplySize size = ReplySize::kItem);
  void Post(std::string path, Transport::Form form, Transport::Callback done);

  // ---- health (§4.10)
  Health health() const { return health_; }
  // HEALTHY with a job list and a computers snapshot (journalled builds may be reconciled).
  bool Answering() const { return health_ == Health::kHealthy && have_jobs_ && have_computers_; }
  // HEALTHY with a job list (a stop:/set_description: may be resolved).
  bool Ready() const { return health_ == Health::kHealthy && have_jobs_; }
  // New builds may be triggered: HEALTHY, not draining or quieting down, snapshots in.
  bool Dispatchable() const;
  // DOWN for longer than `ms` at `now`.
  bool DownLongerThan(int64_t ms, int64_t now) const;
  void SetDraining(bool draining) { draining_ = draining; }
  bool draining() const { return draining_; }

  // ---- polls
  void PollController();
  void PollJobs();
  void PollComputers();
  // Back-offs and contention cooldowns that ended by `now` free their functions and nodes:
  // registrations are reconciled and a round is requested.
  void ExpireBackOffs(int64_t now);
  // Jobs arrived for this master while it polled at the idle rate: poll at the busy rate now,
  // so an executor freed by a foreign build is seen within poll.computers_s.
  void SpeedUpIfBusy();

  // ---- the job table
  const JobInfo* FindJob(const std::string& full_name) const;
  const std::vector<JobInfo>& jobs() const { return jobs_; }
  // fullName -> index in jobs(), sorted by fullName.
  const std::map<std::string, size_t>& job_index() const { return job_index_; }
  // The job a listed function name triggers; null if none.
  const std::string* RouteOf(const std::string& function) const;
  bool NonConcurrent(const std::string& full_name) const;
  bool IsPipeline(const std::string& full_name) const;
  // The job's short name (its last fullName segment when it is not in the view).
  std::string ShortName(const std::string& full_name) const;
  // Names this master had the broker list (V1).
  const std::set<std::string>& listed() const { return listed_; }
  // `function` takes no new build until `until_ms` (monotonic).
  void BackOff(const std::string& function, int64_t until_ms) {
    backoff_until_[function] = until_ms;
  }
  // Our build of `full_name` ended at `now`: the job list's flags are stale for it (D6).
  void JobEnded(const std::string& full_name, int64_t now) { last_end_ms_[full_name] = now; }
  // True the first time `key` is seen (logs said once).
  bool FirstTime(const std::string& key) { return logged_once_.insert(key).second; }

  // ---- nodes and capacity
  const std::vector<Node>& nodes() const { return nodes_; }
  const Node* FindNode(const std::string& name) const;
  void Cooldown(const std::string& node, int64_t until_ms);
  // §4.4 D2/D5: executors of `node` a new build may take, after `reservations`.
  int FreeCapacity(const Node& node, int reservations) const;
  // Turnaround: our build at `url` was seen over, so the executor that ran it is free now, in the
  // view and for dispatch, without waiting for the next computers snapshot.
  void ExecutorFreed(const std::string& url);
  std::string WorkerName(const std::string& node, int executor) const;
  std::string BuiltinName() const;
  bool IsBuiltinNode(const std::string& node) const;

  // ---- pseudo-workers and registrations (V1-V5, D6)
  std::set<std::string> BlockedFunctions() const;
  void ReconcileRegistrations();
  // The executor pseudo-worker of `node` that should grab next: idle, else the least busy, never
  // one holding a job of a function in `blocked`. Null if none.
  PseudoWorker* NextWorker(const std::string& node, const std::set<std::string>& blocked);

  // The view's part of the summary (settings, health, counters, nodes); `reserved` per node.
  void Summarize(MasterSummary& s, const std::map<std::string, int>& reserved) const;

 private:
  // A view poll's retry rhythm. A poll that has never succeeded (start-up), or fails while the
  // master is DOWN, is retried after 250 ms, doubling, at most its normal interval; a failure on
  // a working master keeps the normal rhythm (the health state counts it). Reset by a success.
  struct PollRetry {
    int failures = 0;
    bool succeeded = false;  // at least once
  };

  Transport::Callback Accounted(bool post, Transport::Callback done);
  void CheckInstance();
  void RequestSucceeded();
  void RequestFailed(std::string_view what, bool fatal);
  void SetHealth(Health health);
  // The delay before the next run of a poll whose run just ended (`ok`: a usable answer).
  int64_t NextPollDelay(PollRetry& retry, bool ok, int64_t normal_ms) const;
  // A request succeeded: view polls waiting out a retry delay run now (the master is back).
  void KickFailedPolls();
  void ArmTimer(uv_timer_t* timer, int64_t delay_ms);
  static void OnTimer(uv_timer_t* timer);
  bool Busy() const;
  void PollNodeMode(const std::string& node);
  void ApplyJobs(std::vector<JobInfo> jobs);
  void ApplyComputers(std::vector<ComputerInfo> computers, int64_t requested_ms);
  // The function table, listed names, routes, pseudo-workers and registrations.
  void Recompute();
  FunctionTable DeriveTable();
  void RebuildRoutes(const FunctionTable& table);
  void UpdatePseudoWorkers();

  broker::Broker& broker_;
  Clock& clock_;
  AdapterHost& host_;
  Builds& builds_;
  PseudoWorkerOwner& owner_;
  const MasterSettings& settings_;
  Transport& rest_;
  OfflineTaints& taints_;
  std::optional<NameFilter> job_include_, job_exclude_, name_filter_;
  // Cleared when closing: callbacks of requests still in flight do nothing.
  std::shared_ptr<bool> alive_;
  bool closing_ = false;
  bool draining_ = false;

  Health health_ = Health::kSuspect;
  std::string last_error_;  // the last failed request's cause; cleared when HEALTHY
  int successes_ = 0;
  int failures_ = 0;
  int64_t down_since_ms_ = 0;  // monotonic ms the master became DOWN; 0 while not DOWN
  std::string instance_id_;    // X-Jenkins-Session last seen
  uint64_t restarts_ = 0;      // controller restarts observed
  uint64_t requests_ = 0;
  uint64_t request_errors_ = 0;

  ControllerInfo controller_;
  bool have_jobs_ = false;
  bool have_computers_ = false;
  int64_t last_computers_ms_ = -1;
  // A poll of that kind awaits its answer (no second one is sent).
  bool computers_in_flight_ = false;
  bool jobs_in_flight_ = false;
  bool controller_in_flight_ = false;
  PollRetry controller_retry_, jobs_retry_, computers_retry_;
  int64_t jobs_requested_ms_ = 0;  // when the job list in jobs_ was requested

  std::vector<JobInfo> jobs_;
  std::map<std::string, size_t> job_index_;    // fullName -> jobs_ index
  std::map<std::string, std::string> routes_;  // function name -> fullName of the job
  std::vector<Node> nodes_;
  // node -> ("NORMAL"/"EXCLUSIVE", monotonic ms fetched) from R5
  std::map<std::string, std::pair<std::string, int64_t>> node_modes_;
  std::set<std::string> modes_in_flight_;
  std::set<std::string> listed_;  // names this master had the broker create
  std::map<std::string, std::unique_ptr<PseudoWorker>> workers_;  // by pseudo-worker name
  std::map<std::string, int64_t> backoff_until_;                  // function -> monotonic ms
  std::set<std::string> logged_once_;
  std::map<std::string, int64_t> last_end_ms_;  // fullName -> when our last build ended
  // Build URLs of ours seen over (ExecutorFreed) -> monotonic ms; a snapshot requested before
  // that still shows them on an executor is corrected. Dropped once a snapshot requested after
  // the end arrives (it is the truth from then on).
  std::map<std::string, int64_t> ended_urls_;

  uv_timer_t computers_timer_{};
  uv_timer_t jobs_timer_{};
  uv_timer_t health_timer_{};
  int open_timers_ = 0;
  std::function<void()> closed_;
};

}  // namespace roundhouse::jenkins
