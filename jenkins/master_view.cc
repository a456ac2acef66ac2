// The master's view (doc/jenkins.md §4.2): the polls of R1 (health), R2 (jobs), R4 (computers)
// and R5 (node modes), the health state (§4.10), the function table and pseudo-workers with their
// registrations (§1.2, §1.3, §4.3), and capacity (§4.4 D2, D5, D6). Members of Adapter; the
// coordinator (timers, the dispatch round, Summary) is adapter.cc.

#include <algorithm>
#include <utility>

#include "jenkins/adapter_internal.h"
#include "server/base/log.h"

namespace roundhouse::jenkins {
namespace {

bool IsBuiltinName(std::string_view name) { return name == "built-in" || name == "master"; }

// The first retry of a failing view poll (PollRetry); it doubles up to the normal interval.
constexpr int64_t kFirstPollRetryMs = 250;

// How long a build URL seen over is remembered at most (ended_urls_), should no snapshot
// requested after its end arrive (master unreachable).
constexpr int64_t kEndedUrlTtlMs = 60000;

}  // namespace

// ---- health

// §4.10 M3: a new X-Jenkins-Session means the controller restarted. Queue items keep their ids
// and are followed as before; builds that were running are re-read, and one that ended ABORTED
// across the restart gets restart_policy.
void Adapter::CheckInstance() {
  const std::string& id = rest_->instance_id();
  if (id.empty() || id == instance_id_) return;
  const bool restarted = !instance_id_.empty();
  instance_id_ = id;
  if (!restarted) return;
  ++restarts_;
  RH_LOG(kWarning,
         "jenkins master=%s: the controller restarted (new instance id); re-reading %zu "
         "builds in flight",
         settings_.name.c_str(), builds_.size());
  const int64_t now = clock_.MonotonicMs();
  for (auto& [handle, build] : builds_) {
    if (build->start_sent) build->across_restart = true;
    build->next_poll_ms = now;
  }
  PollJobs();
  PollComputers();
}

void Adapter::RequestSucceeded() {
  KickFailedPolls();
  failures_ = 0;
  ++successes_;
  if (health_ != Health::kHealthy && successes_ >= 2) SetHealth(Health::kHealthy);
}

void Adapter::RequestFailed(std::string_view what, bool fatal) {
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

void Adapter::SetHealth(Health health) {
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

bool Adapter::Dispatchable() const {
  return health_ == Health::kHealthy && !draining_ && !closing_ && !controller_.quieting_down &&
         have_jobs_ && have_computers_;
}

int64_t Adapter::NextPollDelay(PollRetry& retry, bool ok, int64_t normal_ms) const {
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

void Adapter::KickFailedPolls() {
  if (closing_) return;
  if (controller_retry_.failures > 0 && !controller_in_flight_) ArmTimer(&health_timer_, 0);
  if (jobs_retry_.failures > 0 && !jobs_in_flight_) ArmTimer(&jobs_timer_, 0);
  if (computers_retry_.failures > 0 && !computers_in_flight_) ArmTimer(&computers_timer_, 0);
}

// ---- polls

void Adapter::PollController() {
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

void Adapter::PollJobs() {
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

void Adapter::PollComputers() {
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
        auto parsed = ParseComputers(r.body(), UsesLegacyBuiltinName(rest_->jenkins_version()));
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
bool Adapter::Busy() const {
  if (!builds_.empty()) return true;
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

void Adapter::PollNodeMode(const std::string& node) {
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

void Adapter::ApplyJobs(std::vector<JobInfo> jobs) {
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

void Adapter::ApplyComputers(std::vector<ComputerInfo> computers, int64_t requested_ms) {
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
  taints_->Update(
      [this](const std::string& name) {
        const Node* n = FindNode(name);
        return n == nullptr      ? OfflineTaints::NodeSeen::kGone
               : n->info.offline ? OfflineTaints::NodeSeen::kOffline
                                 : OfflineTaints::NodeSeen::kOnline;
      },
      [this](const std::string& name) {
        for (const auto& [handle, build] : builds_) {
          if (build->node == name) return true;
        }
        return false;
      });
  // §4.10 M5: note when a node shows disconnected under one of our started builds.
  for (auto& [handle, build] : builds_) {
    if (!build->start_sent || build->node_lost_ms != 0) continue;
    for (const Node& n : nodes_) {
      if (n.info.name == build->node && n.info.offline && !n.info.temporarily_offline) {
        build->node_lost_ms = now;
        RH_LOG(kWarning, "jenkins master=%s handle=%s: node %s disconnected under %s #%lld",
               settings_.name.c_str(), handle.c_str(), n.info.name.c_str(),
               build->full_name.c_str(), static_cast<long long>(build->number));
      }
    }
  }
  // D5: a reservation ends once a snapshot requested after the start shows the executor busy.
  // A started build that this snapshot shows on no executor has probably ended: read it now
  // rather than at its next poll, so its end is reported (and its worker freed) sooner.
  std::vector<std::string> ended;
  for (auto& [handle, build] : builds_) {
    if (build->state != BuildState::kStarted || build->started_ms > requested_ms) continue;
    build->reserved = false;
    if (!build->start_sent || build->url.empty()) continue;
    bool running = false;
    for (const Node& n : nodes_) {
      for (const ExecutorInfo& e : n.info.executors) running |= e.build_url == build->url;
      for (const ExecutorInfo& e : n.info.one_off_executors) running |= e.build_url == build->url;
    }
    if (!running) ended.push_back(handle);
  }
  for (const std::string& handle : ended) {
    if (Build* b = FindBuild(handle)) HurryPoll(*b);
  }
  // D5 invariant: reservations(N) <= our outstanding items on N, by construction (they are
  // counted from the builds themselves); report nodes the snapshot no longer has.
  for (const auto& [handle, build] : builds_) {
    if (!build->reserved) continue;
    const std::string& pending_on = build->node;  // clang 14 cannot capture a structured binding
    const bool known = std::any_of(nodes_.begin(), nodes_.end(),
                                   [&](const Node& n) { return n.info.name == pending_on; });
    if (!known) {
      RH_LOG(kWarning, "jenkins master=%s handle=%s: node %s vanished while a build was pending",
             settings_.name.c_str(), handle.c_str(), build->node.c_str());
      build->reserved = false;
    }
  }
  Recompute();
  host_.RequestRound();
}

void Adapter::ExecutorFreed(const Build& build) {
  if (build.url.empty()) return;
  ended_urls_[build.url] = clock_.MonotonicMs();
  for (Node& n : nodes_) {
    for (ExecutorInfo& e : n.info.executors) {
      if (e.idle || e.build_url != build.url) continue;
      e.idle = true;
      e.build_url.clear();
      if (!n.info.offline) ++n.idle;
    }
  }
  host_.RequestRound();
}

std::string Adapter::WorkerName(const std::string& node, int executor) const {
  const std::string& base = IsBuiltinName(node) ? settings_.manager_name : node;
  return base + "_exec-" + std::to_string(executor);
}

void Adapter::Recompute() {
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
      routes_[name] = Route{exact->second};
      continue;
    }
    for (size_t colon = rest.rfind(':'); colon != std::string_view::npos && colon > 0;
         colon = rest.rfind(':', colon - 1)) {
      auto it = part_to_job.find(rest.substr(0, colon));
      if (it != part_to_job.end()) {
        routes_[name] = Route{it->second};
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
          auto worker = std::make_unique<PseudoWorker>(*this, name, n.info.name, e.number);
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

std::set<std::string> Adapter::BlockedFunctions() const {
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
  for (const auto& [handle, build] : builds_) {
    auto it = job_index_.find(build->full_name);
    if (it != job_index_.end() && !jobs_[it->second].concurrent_build) {
      busy_jobs.insert(build->full_name);
    }
  }
  if (!busy_jobs.empty()) {
    for (const auto& [fn, route] : routes_) {
      if (busy_jobs.count(route.full_name) != 0) blocked.insert(fn);
    }
  }
  return blocked;
}

void Adapter::ReconcileRegistrations() {
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

// ---- capacity and the dispatch round

// D5: executors a node owes to builds we triggered there that the last snapshot does not show
// running yet. A build is visible once an executor of the node runs it: by its URL when we know
// it, else (started in Jenkins but not yet seen by our queue-item poll) as a build of the same
// job that we know nothing of. So the snapshot and the ledger never count one build twice, and
// an executor is not held back for a poll after Jenkins has already started our build on it.
std::map<std::string, int> Adapter::ReservationsByNode() const {
  std::map<std::string, int> out;
  std::set<std::string> known_urls;
  std::map<std::string, std::map<std::string, int>> pending;  // node -> job path -> count
  for (const auto& [handle, b] : builds_) {
    if (!b->url.empty()) known_urls.insert(b->url);
    if (!b->reserved) continue;
    if (b->start_sent || b->state == BuildState::kStarted || b->state == BuildState::kAborting) {
      bool visible = false;
      if (const Node* n = FindNode(b->node)) {
        for (const ExecutorInfo& e : n->info.executors) visible |= e.build_url == b->url;
      }
      if (!visible) ++out[b->node];
    } else {
      ++pending[b->node][b->job_path];
    }
  }
  for (auto& [node, by_job] : pending) {
    if (const Node* n = FindNode(node)) {
      for (const ExecutorInfo& e : n->info.executors) {
        if (e.idle || e.build_url.empty() || known_urls.count(e.build_url) != 0) continue;
        const std::string path = rest_->RelativePath(e.build_url);  // "job/x/123/"
        for (auto& [job_path, count] : by_job) {
          if (count > 0 && !job_path.empty() && path.starts_with(job_path)) {
            --count;
            break;
          }
        }
      }
    }
    for (const auto& [job_path, count] : by_job) out[node] += count;
  }
  return out;
}

int Adapter::FreeCapacity(const Node& node, int reservations) const {
  if (node.info.offline) return 0;
  if (node.cooldown_until > clock_.MonotonicMs()) return 0;
  if (taints_->Tainted(node.info.name)) return 0;  // §4.9 O1
  return std::max(0, node.idle - reservations);
}

const Adapter::Node* Adapter::FindNode(const std::string& name) const {
  for (const Node& n : nodes_) {
    if (n.info.name == name) return &n;
  }
  return nullptr;
}

}  // namespace roundhouse::jenkins
