// The master's view (doc/jenkins.md §4.2): the polls of R1 (health), R2 (jobs), R4 (computers)
// and R5 (node modes), the health state (§4.10), the function table and pseudo-workers with their
// registrations (§1.2, §1.3, §4.3), and capacity (§4.4 D2, D5, D6). See master_view.h; the
// coordinator (the tick, the dispatch round) is adapter.cc.

#include "jenkins/master_view.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "base/log.h"

namespace roundhouse::jenkins {
namespace {

bool IsBuiltinName(std::string_view name) { return name == "built-in" || name == "master"; }

// The first retry of a failing view poll (PollRetry); it doubles up to the normal interval.
constexpr int64_t kFirstPollRetryMs = 250;

// How long a build URL seen over is remembered at most (ended_urls_), should no snapshot
// requested after its end arrive (master unreachable).
constexpr int64_t kEndedUrlTtlMs = 60000;

}  // namespace

const char* HealthName(Health health) {
  switch (health) {
    case Health::kHealthy:
      return "HEALTHY";
    case Health::kSuspect:
      return "SUSPECT";
    case Health::kDown:
      return "DOWN";
  }
  return "?";
}

MasterView::MasterView(uv_loop_t* loop, broker::Broker& broker, Clock& clock, AdapterHost& host,
                       Builds& builds, PseudoWorkerOwner& owner, const MasterSettings& settings,
                       Transport& rest, OfflineTaints& taints)
    : broker_(broker),
      clock_(clock),
      host_(host),
      builds_(builds),
      owner_(owner),
      settings_(settings),
      rest_(rest),
      taints_(taints),
      alive_(std::make_shared<bool>(true)) {
  // Validated by ParseMasterSettings, so compiling cannot fail here; a failure would only
  // disable the filter, and is logged.
  auto compile = [this](const std::optional<std::string>& pattern, const char* key,
                        std::optional<NameFilter>* out) {
    if (!pattern) return;
    auto compiled = NameFilter::Compile(*pattern);
    if (compiled.ok()) {
      *out = std::move(compiled).value();
    } else {
      RH_LOG(kError, "jenkins master=%s: %s: %s", settings_.name.c_str(), key,
             compiled.status().message().c_str());
    }
  };
  compile(settings_.job_include, "job_include", &job_include_);
  compile(settings_.job_exclude, "job_exclude", &job_exclude_);
  compile(settings_.name_filter, "name_filter", &name_filter_);
  for (uv_timer_t* t : {&computers_timer_, &jobs_timer_, &health_timer_}) {
    uv_timer_init(loop, t);
    t->data = this;
    ++open_timers_;
  }
}

MasterView::~MasterView() {
  assert(open_timers_ == 0 && "MasterView destroyed before Close() finished");
  *alive_ = false;
}

void MasterView::Start() {
  PollController();
  PollJobs();
  PollComputers();
}

void MasterView::Close(std::function<void()> closed) {
  closing_ = true;
  closed_ = std::move(closed);
  *alive_ = false;
  // The broker takes the jobs back (at shutdown exactly as they were, see Broker::BeginShutdown).
  for (auto& [name, worker] : workers_) broker_.Detach(*worker);
  workers_.clear();
  auto on_close = [](uv_handle_t* h) {
    auto* self = static_cast<MasterView*>(h->data);
    if (--self->open_timers_ == 0 && self->closed_) {
      auto done = std::move(self->closed_);
      done();
    }
  };
  for (uv_timer_t* t : {&computers_timer_, &jobs_timer_, &health_timer_}) {
    uv_close(reinterpret_cast<uv_handle_t*>(t), on_close);
  }
}

// ---- REST with health accounting

void MasterView::Get(std::string path, Transport::Callback done, ReplySize size) {
  ++requests_;
  rest_.Get(std::move(path), Accounted(/*post=*/false, std::move(done)), size);
}

void MasterView::Post(std::string path, Transport::Form form, Transport::Callback done) {
  ++requests_;
  rest_.Post(std::move(path), std::move(form), Accounted(/*post=*/true, std::move(done)));
}

// Wraps a request's callback: nothing runs once closing; otherwise the outcome feeds the health
// state (§4.10) and restart detection before `done` sees it.
Transport::Callback MasterView::Accounted(bool post, Transport::Callback done) {
  std::weak_ptr<bool> alive = alive_;
  return [this, alive, post, done = std::move(done)](RestResult&& r) {
    auto a = alive.lock();
    if (!a || !*a) return;
    const int status = r.status();
    if (!r.ok() || status >= 500) {
      ++request_errors_;
      RequestFailed(r.ok() ? "HTTP " + std::to_string(status) : r.http.error_text, false);
    } else if (status == 401 || (status == 403 && !post)) {
      ++request_errors_;
      RequestFailed("HTTP " + std::to_string(status) + " (check user and token)", true);
    } else {
      RequestSucceeded();
    }
    CheckInstance();
    done(std::move(r));
  };
}

// ---- timers

void MasterView::ArmTimer(uv_timer_t* timer, int64_t delay_ms) {
  if (closing_) return;
  uv_timer_start(timer, OnTimer, static_cast<uint64_t>(std::max<int64_t>(delay_ms, 0)), 0);
}

void MasterView::OnTimer(uv_timer_t* timer) {
  auto* self = static_cast<MasterView*>(timer->data);
  if (self->closing_) return;
  if (timer == &self->computers_timer_) {
    self->PollComputers();
  } else if (timer == &self->jobs_timer_) {
    self->PollJobs();
  } else {
    self->PollController();
  }
}

void MasterView::ExpireBackOffs(int64_t now) {
  bool expired = false;
  for (auto it = backoff_until_.begin(); it != backoff_until_.end();) {
    if (it->second <= now) {
      it = backoff_until_.erase(it);
      expired = true;
    } else {
      ++it;
    }
  }
  for (Node& node : nodes_) {
    if (node.cooldown_until != 0 && node.cooldown_until <= now) {
      node.cooldown_until = 0;
      expired = true;
    }
  }
  if (expired) {
    ReconcileRegistrations();
    host_.RequestRound();
  }
}

void MasterView::SpeedUpIfBusy() {
  if (!computers_in_flight_ && uv_is_active(reinterpret_cast<uv_handle_t*>(&computers_timer_)) &&
      uv_timer_get_due_in(&computers_timer_) > static_cast<uint64_t>(settings_.poll_computers_ms) &&
      Busy()) {
    ArmTimer(&computers_timer_, 0);
  }
}

// ---- health

// §4.10 M3: a new X-Jenkins-Session means the controller restarted. Queue items keep their ids
// and are followed as before; builds that were running are re-read, and one that ended ABORTED
// across the restart gets restart_policy.
void MasterView::CheckInstance() {
  const std::string& id = rest_.instance_id();
  if (id.empty() || id == instance_id_) return;
  const bool restarted = !instance_id_.empty();
  instance_id_ = id;
  if (!restarted) return;
  ++restarts_;
  RH_LOG(kWarning,
         "jenkins master=%s: the controller restarted (new instance id); re-reading the builds "
         "in flight",
         settings_.name.c_str());
  builds_.ControllerRestarted();
  PollJobs();
  PollComputers();
}

void MasterView::RequestSucceeded() {
  KickFailedPolls();
  failures_ = 0;
  ++successes_;
  if (health_ != Health::kHealthy && successes_ >= 2) SetHealth(Health::kHealthy);
}

void MasterView::RequestFailed(std::string_view what, bool fatal) {
  successes_ = 0;
  ++failures_;
  last_error_ = std::string(what);
  Health next = health_;
  if (fatal || failures_ >= settings_.unhealthy_after) {
    next = Health::kDown;
  } else if (health_ == Health::kHealthy) {
    next = Health::kSuspect;
  }
  if (next != health_) {
    RH_LOG(kWarning, "jenkins master=%s: %.*s", settings_.name.c_str(),
           static_cast<int>(what.size()), what.data());
  }
  SetHealth(next);
}

void MasterView::SetHealth(Health health) {
  if (health == health_) return;
  const log::Level level = health == Health::kHealthy ? log::Level::kNotice : log::Level::kWarning;
  if (log::Enabled(level)) {
    log::Write(level, "jenkins master=%s: %s -> %s", settings_.name.c_str(), HealthName(health_),
               HealthName(health));
  }
  const bool was_down = health_ == Health::kDown;
  health_ = health;
  if (health_ == Health::kHealthy) last_error_.clear();
  down_since_ms_ = health_ == Health::kDown ? clock_.MonotonicMs() : 0;
  if (was_down || health_ == Health::kDown) Recompute();
  if (health_ == Health::kHealthy) host_.RequestRound();
}

bool MasterView::DownLongerThan(int64_t ms, int64_t now) const {
  return health_ == Health::kDown && down_since_ms_ != 0 && now - down_since_ms_ > ms;
}

bool MasterView::Dispatchable() const {
  return health_ == Health::kHealthy && !draining_ && !closing_ && !controller_.quieting_down &&
         have_jobs_ && have_computers_;
}

int64_t MasterView::NextPollDelay(PollRetry& retry, bool ok, int64_t normal_ms) const {
  if (ok) {
    retry.failures = 0;
    retry.succeeded = true;
    return normal_ms;
  }
  ++retry.failures;
  if (retry.succeeded && health_ != Health::kDown) return normal_ms;
  const int doublings = std::min(retry.failures - 1, 20);
  return std::min(normal_ms, kFirstPollRetryMs << doublings);
}

void MasterView::KickFailedPolls() {
  if (closing_) return;
  if (controller_retry_.failures > 0 && !controller_in_flight_) ArmTimer(&health_timer_, 0);
  if (jobs_retry_.failures > 0 && !jobs_in_flight_) ArmTimer(&jobs_timer_, 0);
  if (computers_retry_.failures > 0 && !computers_in_flight_) ArmTimer(&computers_timer_, 0);
}

// ---- polls

void MasterView::PollController() {
  if (controller_in_flight_) return;
  controller_in_flight_ = true;
  Get(ApiJson(kTreeController), [this](RestResult&& r) {
    controller_in_flight_ = false;
    const bool answered = r.ok() && r.status() == 200;
    Result<ControllerInfo> parsed = Status::Error("no answer");
    if (answered) parsed = ParseController(r.body());
    ArmTimer(&health_timer_,
             NextPollDelay(controller_retry_, parsed.ok(), settings_.poll_health_ms));
    if (!parsed.ok()) {
      if (answered) {
        RH_LOG(kWarning, "jenkins master=%s: controller: %s", settings_.name.c_str(),
               parsed.status().message().c_str());
      }
      return;
    }
    const bool was_quiet = controller_.quieting_down;
    controller_ = parsed.value();
    if (controller_.quieting_down != was_quiet) {
      RH_LOG(kNotice, "jenkins master=%s: %s", settings_.name.c_str(),
             controller_.quieting_down ? "quieting down: no new builds" : "quiet-down cancelled");
      if (!controller_.quieting_down) host_.RequestRound();
    }
  });
}

void MasterView::PollJobs() {
  if (jobs_in_flight_) return;
  jobs_in_flight_ = true;
  const int64_t requested = clock_.MonotonicMs();
  Get(
      ApiJson(JobsTree(settings_.folder_depth)),
      [this, requested](RestResult&& r) {
        jobs_in_flight_ = false;
        if (!r.ok() || r.status() != 200) {
          if (r.ok()) {
            RH_LOG(kWarning, "jenkins master=%s: job list: HTTP %d", settings_.name.c_str(),
                   r.status());
          }
          ArmTimer(&jobs_timer_, NextPollDelay(jobs_retry_, false, settings_.poll_jobs_ms));
          return;
        }
        auto parsed = ParseJobs(r.body());
        ArmTimer(&jobs_timer_, NextPollDelay(jobs_retry_, parsed.ok(), settings_.poll_jobs_ms));
        if (!parsed.ok()) {
          RH_LOG(kWarning, "jenkins master=%s: job list: %s", settings_.name.c_str(),
                 parsed.status().message().c_str());
          return;
        }
        jobs_requested_ms_ = requested;
        ApplyJobs(std::move(parsed).value());
      },
      ReplySize::kList);
}

void MasterView::PollComputers() {
  if (computers_in_flight_) return;
  computers_in_flight_ = true;
  const int64_t requested = clock_.MonotonicMs();
  Get(
      "computer/" + ApiJson(kTreeComputers),
      [this, requested](RestResult&& r) {
        computers_in_flight_ = false;
        const int64_t normal =
            Busy() ? settings_.poll_computers_ms : settings_.poll_computers_idle_ms;
        if (!r.ok() || r.status() != 200) {
          ArmTimer(&computers_timer_, NextPollDelay(computers_retry_, false, normal));
          return;
        }
        auto parsed = ParseComputers(r.body(), UsesLegacyBuiltinName(rest_.jenkins_version()));
        ArmTimer(&computers_timer_, NextPollDelay(computers_retry_, parsed.ok(), normal));
        if (!parsed.ok()) {
          RH_LOG(kWarning, "jenkins master=%s: computers: %s", settings_.name.c_str(),
                 parsed.status().message().c_str());
          return;
        }
        ApplyComputers(std::move(parsed).value(), requested);
      },
      ReplySize::kList);
}

// Whether the master is worth polling at the fast rate: builds in flight, or jobs waiting for a
// function it lists.
bool MasterView::Busy() const {
  if (builds_.HasBuilds()) return true;
  for (const std::string& name : listed_) {
    const broker::Function* fn = broker_.FindFunction(name);
    if (fn == nullptr) continue;
    if (fn->queued(broker::Priority::kHigh) + fn->queued(broker::Priority::kNormal) +
            fn->queued(broker::Priority::kLow) >
        0) {
      return true;
    }
  }
  return false;
}

void MasterView::PollNodeMode(const std::string& node) {
  if (!modes_in_flight_.insert(node).second) return;
  Get(LabelPath(node) + ApiJson(kTreeLabelNodes), [this, node](RestResult&& r) {
    modes_in_flight_.erase(node);
    if (!r.ok()) return;  // retried at the next computers snapshot
    std::string mode = "NORMAL";
    if (r.status() == 200) {
      auto parsed = ParseLabelNodes(r.body());
      if (parsed.ok()) {
        for (const LabelNode& n : parsed.value()) {
          const bool same = n.node_name == node || (IsBuiltinName(node) && n.node_name.empty());
          if (same) mode = n.mode;
        }
      }
    } else {
      RH_LOG(kInfo, "jenkins master=%s: node %s: mode lookup answered %d; assuming NORMAL",
             settings_.name.c_str(), node.c_str(), r.status());
    }
    node_modes_[node] = {mode, clock_.MonotonicMs()};
    for (Node& n : nodes_) {
      if (n.info.name == node) {
        n.mode_known = true;
        n.exclusive = mode == "EXCLUSIVE";
      }
    }
    Recompute();
    host_.RequestRound();
  });
}

// ---- applying snapshots

void MasterView::ApplyJobs(std::vector<JobInfo> jobs) {
  jobs_.clear();
  job_index_.clear();
  for (JobInfo& job : jobs) {
    if (job_include_ && !job_include_->Search(job.full_name)) continue;
    if (job_exclude_ && job_exclude_->Search(job.full_name)) continue;
    if (job.flyweight()) {
      auto it = settings_.flyweight_labels.find(job.full_name);
      job.label_expression = it != settings_.flyweight_labels.end()
                                 ? std::optional<std::string>(it->second)
                                 : std::nullopt;
    }
    job_index_[job.full_name] = jobs_.size();
    jobs_.push_back(std::move(job));
  }
  const bool first = !have_jobs_;
  have_jobs_ = true;
  if (first) {
    for (const JobInfo& job : jobs_) {
      if (job.parameters.empty()) continue;  // uses W2: nothing to pin or tag
      if (job.FindParameter(settings_.unique_param) == nullptr) {
        RH_LOG(kInfo,
               "jenkins master=%s: job %s has no parameter %s: Jenkins may merge identical "
               "builds of it",
               settings_.name.c_str(), job.full_name.c_str(), settings_.unique_param.c_str());
      }
    }
  }
  Recompute();
  host_.RequestRound();
}

void MasterView::ApplyComputers(std::vector<ComputerInfo> computers, int64_t requested_ms) {
  const int64_t now = clock_.MonotonicMs();
  std::map<std::string, int64_t> cooldowns;
  for (const Node& n : nodes_) cooldowns[n.info.name] = n.cooldown_until;
  nodes_.clear();
  // Our builds seen over since: a snapshot requested after that shows the truth from now on;
  // an older one may still show them running, and is corrected (ExecutorFreed).
  std::erase_if(ended_urls_, [&](const auto& ended) {
    return ended.second < requested_ms || now - ended.second > kEndedUrlTtlMs;
  });
  for (ComputerInfo& c : computers) {
    Node node;
    node.labels.insert(c.labels.begin(), c.labels.end());
    node.labels.insert(c.name);  // L(N) always has the self label
    for (ExecutorInfo& e : c.executors) {
      if (!e.idle && ended_urls_.count(e.build_url) != 0) {
        e.idle = true;
        e.build_url.clear();
      }
      node.idle += e.idle ? 1 : 0;
    }
    if (c.offline) node.idle = 0;
    auto mode = node_modes_.find(c.name);
    if (mode != node_modes_.end()) {
      node.mode_known = true;
      node.exclusive = mode->second.first == "EXCLUSIVE";
      if (now - mode->second.second > settings_.poll_node_modes_ms) PollNodeMode(c.name);
    } else {
      PollNodeMode(c.name);
    }
    auto cd = cooldowns.find(c.name);
    if (cd != cooldowns.end()) node.cooldown_until = cd->second;
    node.info = std::move(c);
    nodes_.push_back(std::move(node));
  }
  have_computers_ = true;
  last_computers_ms_ = now;
  builds_.ComputersApplied(requested_ms);
  Recompute();
  host_.RequestRound();
}

void MasterView::ExecutorFreed(const std::string& url) {
  if (url.empty()) return;
  ended_urls_[url] = clock_.MonotonicMs();
  for (Node& n : nodes_) {
    for (ExecutorInfo& e : n.info.executors) {
      if (e.idle || e.build_url != url) continue;
      e.idle = true;
      e.build_url.clear();
      if (!n.info.offline) ++n.idle;
    }
  }
  host_.RequestRound();
}

std::string MasterView::WorkerName(const std::string& node, int executor) const {
  const std::string& base = IsBuiltinName(node) ? settings_.manager_name : node;
  return base + "_exec-" + std::to_string(executor);
}

void MasterView::Recompute() {
  if (!have_jobs_ || !have_computers_ || closing_) return;
  std::vector<JenkinsJob> jobs;
  jobs.reserve(jobs_.size());
  for (const JobInfo& j : jobs_) {
    jobs.push_back({j.name, j.full_name, j.label_expression, j.enabled()});
  }
  std::vector<JenkinsNode> nodes;
  nodes.reserve(nodes_.size());
  for (const Node& n : nodes_) {
    JenkinsNode jn;
    jn.name = n.info.name;
    jn.labels = n.labels;
    // A node whose mode is still unknown (R5 not answered yet) is taken as EXCLUSIVE: it
    // registers its labelled jobs at once, and unlabelled ones (which an EXCLUSIVE node must
    // never take) once R5 says NORMAL.
    jn.mode = n.exclusive || !n.mode_known ? NodeMode::kExclusive : NodeMode::kNormal;
    jn.offline = n.info.offline;
    nodes.push_back(std::move(jn));
  }
  const AtomRule rule =
      settings_.pin_mode == PinMode::kLabelOnly ? AtomRule::kLabelOnly : AtomRule::kPerNode;
  FunctionTable table = DeriveFunctionTable(jobs, nodes, settings_.function_naming, rule);
  for (const std::string& name : table.refused) {
    if (logged_once_.insert("refused:" + name).second) {
      RH_LOG(kWarning,
             "jenkins master=%s: not registering '%s': function names cannot contain "
             "spaces or control characters",
             settings_.name.c_str(), name.c_str());
    }
  }
  for (const NameCollision& c : table.collisions) {
    if (logged_once_.insert("collision:" + c.short_name).second) {
      RH_LOG(kWarning,
             "jenkins master=%s: %zu jobs are named '%s'; build:%s runs %s (set "
             "function_naming = full to reach the others)",
             settings_.name.c_str(), c.losers.size() + 1, c.short_name.c_str(),
             c.short_name.c_str(), c.owner.c_str());
    }
  }
  if (name_filter_) {
    auto drop = [&](const std::string& name) { return !name_filter_->Search(name); };
    std::erase_if(table.listed, drop);
    for (auto& names : table.advertised) std::erase_if(names, drop);
  }
  for (size_t i = 0; i < nodes_.size(); ++i) nodes_[i].functions = std::move(table.advertised[i]);

  // Routes: the job each listed name triggers. A name is "build:<part>" or "build:<part>:<atom>";
  // the part may itself contain ':', so try every split against the job parts.
  std::map<std::string, std::string, std::less<>> part_to_job;
  std::set<std::string> losers;
  for (const NameCollision& c : table.collisions) losers.insert(c.losers.begin(), c.losers.end());
  for (const JobInfo& j : jobs_) {
    if (losers.count(j.full_name) != 0) continue;
    const std::string& part =
        settings_.function_naming == FunctionNaming::kFull ? j.full_name : j.name;
    part_to_job.emplace(part, j.full_name);
  }
  routes_.clear();
  for (const std::string& name : table.listed) {
    std::string_view rest = std::string_view(name).substr(6);  // after "build:"
    auto exact = part_to_job.find(rest);
    if (exact != part_to_job.end()) {
      routes_[name] = exact->second;
      continue;
    }
    for (size_t colon = rest.rfind(':'); colon != std::string_view::npos && colon > 0;
         colon = rest.rfind(':', colon - 1)) {
      auto it = part_to_job.find(rest.substr(0, colon));
      if (it != part_to_job.end()) {
        routes_[name] = it->second;
        break;
      }
    }
  }
  // V1: the broker lists every derived name for good.
  for (const std::string& name : table.listed) {
    if (listed_.insert(name).second) broker_.CreateFunction(name);
  }

  // Pseudo-workers: one per executor of every node that is not disconnected, while the master
  // is not DOWN (V4, V5).
  std::set<std::string> wanted;
  if (health_ != Health::kDown) {
    for (const Node& n : nodes_) {
      const bool disconnected = n.info.offline && !n.info.temporarily_offline;
      if (disconnected) continue;
      for (const ExecutorInfo& e : n.info.executors) {
        const std::string name = WorkerName(n.info.name, e.number);
        wanted.insert(name);
        auto it = workers_.find(name);
        if (it == workers_.end()) {
          auto worker = std::make_unique<PseudoWorker>(owner_, name, n.info.name, e.number);
          broker_.Attach(*worker);
          broker_.SetClientId(*worker, name);
          workers_.emplace(name, std::move(worker));
        } else {
          it->second->retired = false;
        }
      }
    }
  }
  for (auto& [name, worker] : workers_) {
    if (wanted.count(name) == 0) worker->retired = true;
  }
  ReconcileRegistrations();
}

std::set<std::string> MasterView::BlockedFunctions() const {
  std::set<std::string> blocked;
  const int64_t now = clock_.MonotonicMs();
  for (const auto& [fn, until] : backoff_until_) {
    if (until > now) blocked.insert(fn);
  }
  // D6: a non-concurrent job takes no new build while it is queued or building in Jenkins, or
  // while we have an item of it outstanding. The job list's flags are stale once our own build
  // of it ended after the list was requested.
  std::set<std::string> busy_jobs;
  for (const JobInfo& j : jobs_) {
    if (j.concurrent_build) continue;
    auto ended = last_end_ms_.find(j.full_name);
    const bool list_fresh = ended == last_end_ms_.end() || ended->second < jobs_requested_ms_;
    if (list_fresh && (j.in_queue || j.last_build_building)) busy_jobs.insert(j.full_name);
  }
  for (const JobInfo& j : jobs_) {
    if (!j.concurrent_build && builds_.HasBuildOf(j.full_name)) busy_jobs.insert(j.full_name);
  }
  if (!busy_jobs.empty()) {
    for (const auto& [fn, route] : routes_) {
      if (busy_jobs.count(route) != 0) blocked.insert(fn);
    }
  }
  return blocked;
}

void MasterView::ReconcileRegistrations() {
  if (closing_) return;
  const std::set<std::string> blocked = BlockedFunctions();
  std::map<std::string, const Node*> by_name;
  for (const Node& n : nodes_) by_name[n.info.name] = &n;
  for (auto it = workers_.begin(); it != workers_.end();) {
    PseudoWorker& w = *it->second;
    std::set<std::string> desired;
    if (!w.retired && health_ != Health::kDown) {
      auto node = by_name.find(w.node());
      if (node != by_name.end() && !node->second->info.offline) {
        for (const std::string& fn : node->second->functions) {
          if (blocked.count(fn) == 0) desired.insert(fn);
        }
      }
    }
    // Never withdraw the function of a job the worker holds: the broker would re-queue it.
    for (const broker::Job* job : w.state().running) desired.emplace(job->function_name());
    for (const std::string& fn : w.registered) {
      if (desired.count(fn) == 0) broker_.CantDo(w, fn);
    }
    for (const std::string& fn : desired) {
      if (w.registered.count(fn) == 0) broker_.CanDo(w, fn);
    }
    w.registered = std::move(desired);
    if (w.retired && w.idle()) {
      broker_.Detach(w);
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

// ---- capacity

int MasterView::FreeCapacity(const Node& node, int reservations) const {
  if (node.info.offline) return 0;
  if (node.cooldown_until > clock_.MonotonicMs()) return 0;
  if (taints_.Tainted(node.info.name)) return 0;  // §4.9 O1
  return std::max(0, node.idle - reservations);
}

const MasterView::Node* MasterView::FindNode(const std::string& name) const {
  for (const Node& n : nodes_) {
    if (n.info.name == name) return &n;
  }
  return nullptr;
}

// ---- the job table

const JobInfo* MasterView::FindJob(const std::string& full_name) const {
  auto it = job_index_.find(full_name);
  return it == job_index_.end() ? nullptr : &jobs_[it->second];
}

const std::string* MasterView::RouteOf(const std::string& function) const {
  auto it = routes_.find(function);
  return it == routes_.end() ? nullptr : &it->second;
}

bool MasterView::NonConcurrent(const std::string& full_name) const {
  const JobInfo* job = FindJob(full_name);
  return job != nullptr && !job->concurrent_build;
}

bool MasterView::IsPipeline(const std::string& full_name) const {
  const JobInfo* job = FindJob(full_name);
  return job != nullptr && job->cls.ends_with("WorkflowJob");
}

std::string MasterView::ShortName(const std::string& full_name) const {
  if (const JobInfo* job = FindJob(full_name)) return job->name;
  const size_t slash = full_name.rfind('/');
  return slash == std::string::npos ? full_name : full_name.substr(slash + 1);
}

// ---- nodes

void MasterView::Cooldown(const std::string& node, int64_t until_ms) {
  for (Node& n : nodes_) {
    if (n.info.name == node) n.cooldown_until = until_ms;
  }
}

std::string MasterView::BuiltinName() const {
  return UsesLegacyBuiltinName(rest_.jenkins_version()) ? "master" : "built-in";
}

bool MasterView::IsBuiltinNode(const std::string& node) const {
  for (const Node& n : nodes_) {
    if (n.info.name == node) return n.info.builtin;
  }
  return node == BuiltinName();
}

// An idle pseudo-worker of the node, else the least busy one: a worker still holds a job until
// its end is observed, which may be after Jenkins has freed the executor. A busy worker keeps the
// functions of the jobs it holds registered even while they are blocked (D6, back-off), so one
// holding a blocked function's job must not grab.
PseudoWorker* MasterView::NextWorker(const std::string& node,
                                     const std::set<std::string>& blocked) {
  PseudoWorker* worker = nullptr;
  for (auto& [name, w] : workers_) {
    if (w->node() != node || w->retired || w->registered.empty()) continue;
    bool holds_blocked = false;
    for (const broker::Job* held : w->state().running) {
      holds_blocked |= blocked.count(std::string(held->function_name())) != 0;
    }
    if (holds_blocked) continue;
    if (worker == nullptr || w->state().running.size() < worker->state().running.size()) {
      worker = w.get();
    }
    if (w->idle()) break;
  }
  return worker;
}

// ---- summary

void MasterView::Summarize(MasterSummary& s, const std::map<std::string, int>& reserved) const {
  s.name = settings_.name;
  s.manager = settings_.manager_name;
  s.base_url = settings_.base_url.text;
  s.health = HealthName(health_);
  s.last_error = last_error_;
  s.tls_verify = !settings_.base_url.tls || settings_.tls_verify;
  s.enabled = !draining_;
  s.quieting_down = controller_.quieting_down;
  s.version = rest_.jenkins_version();
  s.last_poll_age_ms = last_computers_ms_ < 0 ? -1 : clock_.MonotonicMs() - last_computers_ms_;
  s.functions = static_cast<int>(listed_.size());
  s.requests = requests_;
  s.request_errors = request_errors_;
  for (const Node& n : nodes_) {
    NodeSummary ns;
    ns.name = n.info.name;
    ns.mode = !n.mode_known ? "" : n.exclusive ? "EXCLUSIVE" : "NORMAL";
    ns.offline = n.info.offline;
    ns.temporarily_offline = n.info.temporarily_offline;
    ns.labels.assign(n.labels.begin(), n.labels.end());
    auto r = reserved.find(n.info.name);
    ns.reservations = r == reserved.end() ? 0 : r->second;
    ns.free = Dispatchable() ? FreeCapacity(n, ns.reservations) : 0;
    for (const ExecutorInfo& e : n.info.executors) {
      ns.executors.push_back({e.number, WorkerName(n.info.name, e.number), e.idle, e.build_url});
    }
    s.nodes.push_back(std::move(ns));
  }
}

}  // namespace roundhouse::jenkins
