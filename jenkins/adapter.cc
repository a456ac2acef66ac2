// Adapter, part 1: the master's view (§4.2), the function table and pseudo-workers (§1.2, §1.3,
// §4.3), capacity (§4.4 D2, D5, D6), health (§4.10), timers and the dispatch round.
// Builds are in adapter_builds.cc, the manager worker in adapter_meta.cc.

#include <sys/stat.h>

#include <algorithm>
#include <cassert>
#include <utility>

#include "jenkins/adapter_internal.h"
#include "server/base/log.h"

namespace roundhouse::jenkins {

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

const char* BuildStateName(int state) {
  static const char* const kNames[] = {"CLAIMED", "TRIGGERING", "QUEUED",
                                       "CANCELLING", "STARTED", "ABORTING"};
  return state >= 0 && state < 6 ? kNames[state] : "?";
}

namespace {

bool IsBuiltinName(std::string_view name) { return name == "built-in" || name == "master"; }

// The first retry of a failing view poll (PollRetry); it doubles up to the normal interval.
constexpr int64_t kFirstPollRetryMs = 250;

// How long a build URL seen over is remembered at most (ended_urls_), should no snapshot
// requested after its end arrive (master unreachable).
constexpr int64_t kEndedUrlTtlMs = 60000;

}  // namespace

Adapter::Adapter(uv_loop_t* loop, broker::Broker& broker, Clock& clock, AdapterHost& host,
                 MasterSettings settings, storage::JobStore* store)
    : Adapter(loop, broker, clock, host, settings, store,
              std::make_unique<RestTransport>(loop, settings.ToRestOptions())) {}

Adapter::Adapter(uv_loop_t* loop, broker::Broker& broker, Clock& clock, AdapterHost& host,
                 MasterSettings settings, storage::JobStore* store,
                 std::unique_ptr<Transport> transport)
    : loop_(loop),
      broker_(broker),
      clock_(clock),
      host_(host),
      settings_(std::move(settings)),
      store_(store != nullptr && store->durable() ? store : nullptr),
      rest_(std::move(transport)),
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
  for (uv_timer_t* t : {&computers_timer_, &jobs_timer_, &health_timer_, &tick_timer_}) {
    uv_timer_init(loop_, t);
    t->data = this;
    ++open_handles_;
  }
}

Adapter::~Adapter() {
  assert(open_handles_ == 0 && "Adapter destroyed before Close() finished");
  *alive_ = false;
}

void Adapter::Start() {
  manager_ = std::make_unique<PseudoWorker>(*this, settings_.manager_name + "_manager", "", -1);
  broker_.Attach(*manager_);
  broker_.SetClientId(*manager_, manager_->name());
  for (const std::string& fn :
       {"stop:" + settings_.manager_name, "set_description:" + settings_.manager_name}) {
    broker_.CanDo(*manager_, fn);
    manager_->registered.insert(fn);
  }
  broker_.PreSleep(*manager_);
  draining_ = !settings_.enabled;
  RH_LOG(kNotice, "jenkins master=%s: serving %s as manager %s", settings_.name.c_str(),
         settings_.base_url.text.c_str(), settings_.manager_name.c_str());
  PollController();
  PollJobs();
  PollComputers();
  tick_ms_ =
      std::min<int64_t>({settings_.poll_queue_item_ms, settings_.poll_build_ms, int64_t{1000}});
  uv_timer_start(&tick_timer_, OnTimer, static_cast<uint64_t>(tick_ms_),
                 static_cast<uint64_t>(tick_ms_));
}

void Adapter::Close(std::function<void()> closed) {
  if (closing_) return;
  closing_ = true;
  closed_ = std::move(closed);
  *alive_ = false;
  // The broker takes the jobs back (at shutdown exactly as they were, see Broker::BeginShutdown).
  for (auto& [name, worker] : workers_) broker_.Detach(*worker);
  workers_.clear();
  if (manager_ != nullptr) {
    broker_.Detach(*manager_);
    manager_.reset();
  }
  builds_.clear();
  auto on_close = [](uv_handle_t* h) {
    auto* self = static_cast<Adapter*>(h->data);
    if (--self->open_handles_ == 0 && self->closed_) {
      auto done = std::move(self->closed_);
      done();
    }
  };
  ++open_handles_;  // the REST client
  rest_->Close([this] {
    if (--open_handles_ == 0 && closed_) {
      auto done = std::move(closed_);
      done();
    }
  });
  for (uv_timer_t* t : {&computers_timer_, &jobs_timer_, &health_timer_, &tick_timer_}) {
    uv_close(reinterpret_cast<uv_handle_t*>(t), on_close);
  }
}

void Adapter::SetDraining(bool draining) {
  draining_ = draining;
  if (!draining_) host_.RequestRound();
}

// ---- REST with health accounting

void Adapter::Get(std::string path, std::function<void(RestResult&&)> done, ReplySize size) {
  ++requests_;
  rest_->Get(std::move(path), Accounted(/*post=*/false, std::move(done)), size);
}

void Adapter::Post(std::string path, std::vector<std::pair<std::string, std::string>> form,
                   std::function<void(RestResult&&)> done) {
  ++requests_;
  rest_->Post(std::move(path), std::move(form), Accounted(/*post=*/true, std::move(done)));
}

// Wraps a request's callback: nothing runs once the adapter is closing; otherwise the outcome
// feeds the health state (§4.10) and restart detection before `done` sees it. A 403 on a POST is
// a missing permission for that action, not a broken master, so only reads count it.
Transport::Callback Adapter::Accounted(bool post, std::function<void(RestResult&&)> done) {
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
  RH_LOG(kWarning, "jenkins master=%s: the controller restarted (new instance id); re-reading %zu "
         "builds in flight", settings_.name.c_str(), builds_.size());
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
  Health next = health_;
  if (fatal || failures_ >= settings_.unhealthy_after) {
    next = Health::kDown;
  } else if (health_ == Health::kHealthy) {
    next = Health::kSuspect;
  }
  if (next != health_) {
    RH_LOG(kWarning, "jenkins master=%s: %.*s", settings_.name.c_str(), static_cast<int>(what.size()),
           what.data());
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
  down_since_ms_ = health_ == Health::kDown ? clock_.MonotonicMs() : 0;
  if (was_down || health_ == Health::kDown) Recompute();
  if (health_ == Health::kHealthy) host_.RequestRound();
}

bool Adapter::Dispatchable() const {
  return health_ == Health::kHealthy && !draining_ && !closing_ && !controller_.quieting_down &&
         have_jobs_ && have_computers_;
}

// ---- timers

void Adapter::ArmTimer(uv_timer_t* timer, int64_t delay_ms) {
  if (closing_) return;
  uv_timer_start(timer, OnTimer, static_cast<uint64_t>(std::max<int64_t>(delay_ms, 0)), 0);
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

void Adapter::TickBy(int64_t due_ms) {
  if (closing_) return;
  const uint64_t delay = static_cast<uint64_t>(std::max<int64_t>(0, due_ms - clock_.MonotonicMs()));
  if (uv_timer_get_due_in(&tick_timer_) <= delay) return;
  uv_timer_start(&tick_timer_, OnTimer, delay, static_cast<uint64_t>(tick_ms_));
}

void Adapter::KickFailedPolls() {
  if (closing_) return;
  if (controller_retry_.failures > 0 && !controller_in_flight_) ArmTimer(&health_timer_, 0);
  if (jobs_retry_.failures > 0 && !jobs_in_flight_) ArmTimer(&jobs_timer_, 0);
  if (computers_retry_.failures > 0 && !computers_in_flight_) ArmTimer(&computers_timer_, 0);
}

void Adapter::OnTimer(uv_timer_t* timer) {
  auto* self = static_cast<Adapter*>(timer->data);
  if (self->closing_) return;
  if (timer == &self->computers_timer_) {
    self->PollComputers();
  } else if (timer == &self->jobs_timer_) {
    self->PollJobs();
  } else if (timer == &self->health_timer_) {
    self->PollController();
  } else {
    self->Tick();
  }
}

void Adapter::Tick() {
  const int64_t now = clock_.MonotonicMs();
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
  // Copy the handles: a poll never calls back synchronously, but keep iteration obviously safe.
  std::vector<std::string> due;
  for (const auto& [handle, build] : builds_) {
    if (!build->request_in_flight && !build->finishing && build->next_poll_ms <= now) {
      due.push_back(handle);
    }
  }
  for (const std::string& handle : due) {
    Build* build = FindBuild(handle);
    if (build == nullptr) continue;
    switch (build->state) {
      case BuildState::kQueued:
      case BuildState::kCancelling:
        if (build->cancel_pending) {
          build->cancel_pending = false;
          CancelQueued(*build);
        } else {
          PollQueueItem(*build);
        }
        break;
      case BuildState::kStarted:
      case BuildState::kAborting:
        PollBuild(*build);
        break;
      default:
        break;
    }
  }
  RetryMeta(now);
  RunEscalations(now);
  ServiceTaints();
  CheckAwaitingClients(now);
  // Jobs arrived for this master while it polled at the idle rate: poll at the busy rate now,
  // so an executor freed by a foreign build is seen within poll.computers_s.
  if (!computers_in_flight_ && uv_is_active(reinterpret_cast<uv_handle_t*>(&computers_timer_)) &&
      uv_timer_get_due_in(&computers_timer_) > static_cast<uint64_t>(settings_.poll_computers_ms) &&
      Busy()) {
    ArmTimer(&computers_timer_, 0);
  }
  if (health_ == Health::kDown && down_since_ms_ != 0 &&
      now - down_since_ms_ > settings_.inflight_grace_ms) {
    AbandonInflight();
  }
  // Cancels by others are counted per job across its requeues (Q3); forget jobs that ended.
  if (!external_cancels_.empty() && now - cancels_pruned_ms_ >= 10000) {
    cancels_pruned_ms_ = now;
    std::erase_if(external_cancels_,
                  [this](const auto& entry) { return !broker_.GetStatus(entry.first).known; });
  }
  if (!settings_.api_token_file.empty() && now - token_checked_ms_ >= 5000) {
    token_checked_ms_ = now;
    CheckTokenFile();
  }
}

// §4.10 M1/M2: the master stayed DOWN beyond inflight_grace_s. Started builds end with WORK_FAIL
// (plugin-era clients retry), builds not started yet go back to our queue unseen.
void Adapter::AbandonInflight() {
  std::vector<std::string> handles;
  for (const auto& [handle, build] : builds_) {
    if (!build->withdrawn) handles.push_back(handle);
  }
  if (handles.empty()) return;
  RH_LOG(kWarning, "jenkins master=%s: DOWN for more than %lld s: abandoning %zu builds in flight",
         settings_.name.c_str(), static_cast<long long>(settings_.inflight_grace_ms / 1000),
         handles.size());
  for (const std::string& handle : handles) {
    Build* b = FindBuild(handle);
    if (b == nullptr || b->withdrawn) continue;
    // The client's side ends now: a started build fails (Zuul retries it), one not started goes
    // back to our queue unseen. Jenkins' side is an orphan (entry ABANDONED): under
    // orphan_policy = abort its item is cancelled or its build stopped once the master answers.
    if (b->holder != nullptr) {
      PseudoWorker* holder = std::exchange(b->holder, nullptr);
      if (b->start_sent) {
        broker_.Work(*holder, protocol::PacketType::kWorkFail, handle, handle);
      } else {
        broker_.PutBack(*holder, handle);
        ++requeues_;
      }
    }
    if (settings_.orphan_policy == OrphanPolicy::kIgnore) {
      Forget(handle);
      continue;
    }
    b->withdrawn = true;
    if (b->state == BuildState::kQueued) b->cancel_pending = true;
    // A job put back here is not claimed by this master again until this orphan is cleaned up
    // (Claim), so its old item and a new one never both run.
  }
  ReconcileRegistrations();
  host_.RequestRound();
}

void Adapter::CheckTokenFile() {
  struct stat st {};
  if (::stat(settings_.api_token_file.c_str(), &st) != 0) return;  // kept: the last token
  const int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (token_mtime_ns_ == 0) {
    token_mtime_ns_ = mtime;
    return;
  }
  if (mtime == token_mtime_ns_) return;
  token_mtime_ns_ = mtime;
  auto token = ReadTokenFile(settings_.api_token_file, settings_.api_token_file_in_dir);
  if (!token.ok()) {
    RH_LOG(kWarning, "jenkins master=%s: %s", settings_.name.c_str(), token.status().message().c_str());
    return;
  }
  rest_->SetApiToken(std::move(token).value());
  RH_LOG(kNotice, "jenkins master=%s: api_token_file changed: token reloaded", settings_.name.c_str());
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
  Get(ApiJson(JobsTree(settings_.folder_depth)), [this, requested](RestResult&& r) {
    jobs_in_flight_ = false;
    if (!r.ok() || r.status() != 200) {
      if (r.ok()) {
        RH_LOG(kWarning, "jenkins master=%s: job list: HTTP %d", settings_.name.c_str(), r.status());
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
  }, ReplySize::kList);
}

void Adapter::PollComputers() {
  if (computers_in_flight_) return;
  computers_in_flight_ = true;
  const int64_t requested = clock_.MonotonicMs();
  Get("computer/" + ApiJson(kTreeComputers), [this, requested](RestResult&& r) {
    computers_in_flight_ = false;
    const int64_t normal = Busy() ? settings_.poll_computers_ms : settings_.poll_computers_idle_ms;
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
  }, ReplySize::kList);
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
      job.label_expression =
          it != settings_.flyweight_labels.end() ? std::optional<std::string>(it->second)
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
        RH_LOG(kInfo, "jenkins master=%s: job %s has no parameter %s: Jenkins may merge identical "
               "builds of it", settings_.name.c_str(), job.full_name.c_str(),
               settings_.unique_param.c_str());
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
  UpdateTaints();
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
      RH_LOG(kWarning, "jenkins master=%s: not registering '%s': function names cannot contain "
             "spaces or control characters", settings_.name.c_str(), name.c_str());
    }
  }
  for (const NameCollision& c : table.collisions) {
    if (logged_once_.insert("collision:" + c.short_name).second) {
      RH_LOG(kWarning, "jenkins master=%s: %zu jobs are named '%s'; build:%s runs %s (set "
             "function_naming = full to reach the others)", settings_.name.c_str(),
             c.losers.size() + 1, c.short_name.c_str(), c.short_name.c_str(), c.owner.c_str());
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
    const std::string& part = settings_.function_naming == FunctionNaming::kFull ? j.full_name
                                                                                 : j.name;
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
  if (taints_.count(node.info.name) != 0) return 0;  // §4.9 O1
  return std::max(0, node.idle - reservations);
}

void Adapter::Woken() { host_.RequestRound(); }

void Adapter::Withdrawn(std::string_view handle, bool cancelled) {
  withdrawn_.emplace_back(std::string(handle), cancelled);
  host_.RequestRound();
}

void Adapter::Round() {
  if (closing_) return;
  std::vector<std::pair<std::string, bool>> withdrawn;
  withdrawn.swap(withdrawn_);
  for (const auto& [handle, cancelled] : withdrawn) HandleWithdrawn(handle, cancelled);
  RunManager();
  if (health_ == Health::kHealthy && have_jobs_ && have_computers_) ReconcileRecovered();
  if (!Dispatchable()) return;

  int starting = 0;
  for (const auto& [handle, build] : builds_) {
    starting += build->state == BuildState::kStarted || build->state == BuildState::kAborting ? 0
                                                                                              : 1;
  }
  std::set<std::string> blocked = BlockedFunctions();
  // Free capacity per node, recomputed as claims reserve executors.
  std::vector<std::pair<int, Node*>> candidates;
  const std::map<std::string, int> reserved = ReservationsByNode();
  for (Node& node : nodes_) {
    auto r = reserved.find(node.info.name);
    const int free = FreeCapacity(node, r == reserved.end() ? 0 : r->second);
    if (free > 0 && !node.functions.empty()) candidates.emplace_back(free, &node);
  }
  while (starting < settings_.max_inflight_starts && !candidates.empty()) {
    // D3: most free first.
    auto best = std::max_element(candidates.begin(), candidates.end(),
                                 [](const auto& a, const auto& b) { return a.first < b.first; });
    Node& node = *best->second;
    // An idle pseudo-worker of the node, else the least busy one: a worker still holds a job
    // until its end is observed, which may be after Jenkins has freed the executor. A busy
    // worker keeps the functions of the jobs it holds registered even while they are blocked
    // (D6, back-off), so one holding a blocked function's job must not grab.
    PseudoWorker* worker = nullptr;
    for (auto& [name, w] : workers_) {
      if (w->node() != node.info.name || w->retired || w->registered.empty()) continue;
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
    const broker::Job* job = worker != nullptr ? broker_.Grab(*worker, broker::GrabKind::kAll)
                                               : nullptr;
    if (job == nullptr) {
      if (worker != nullptr) broker_.PreSleep(*worker);  // woken when a job arrives
      candidates.erase(best);
      continue;
    }
    Claim(*worker, *job, node);
    blocked = BlockedFunctions();  // a non-concurrent job just became busy
    ++starting;
    if (--best->first == 0) candidates.erase(best);
  }
}

// ---- summary

MasterSummary Adapter::Summary() const {
  MasterSummary s;
  s.name = settings_.name;
  s.manager = settings_.manager_name;
  s.base_url = settings_.base_url.text;
  s.health = HealthName(health_);
  s.enabled = !draining_;
  s.quieting_down = controller_.quieting_down;
  s.version = rest_->jenkins_version();
  s.last_poll_age_ms = last_computers_ms_ < 0 ? -1 : clock_.MonotonicMs() - last_computers_ms_;
  s.functions = static_cast<int>(listed_.size());
  s.requests = requests_;
  s.request_errors = request_errors_;
  s.dispatches = dispatches_;
  s.requeues = requeues_;
  s.dropped_parameters = dropped_parameters_;
  const std::map<std::string, int> reserved = ReservationsByNode();
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
  CountExecutors(s);
  const int64_t now = clock_.MonotonicMs();
  for (const auto& [handle, b] : builds_) {
    BuildSummary bs;
    bs.handle = b->handle;
    bs.unique = b->unique;
    bs.function = b->function;
    bs.job = b->full_name;
    bs.state = BuildStateName(static_cast<int>(b->state));
    bs.queue_id = b->queue_id;
    bs.number = b->number;
    bs.url = !b->url.empty() ? b->url
             : b->queue_id != 0
                 ? settings_.base_url.text + "queue/item/" + std::to_string(b->queue_id) + "/"
                 : "";
    bs.node = b->node;
    bs.age_ms = now - b->claimed_ms;
    s.builds.push_back(std::move(bs));
  }
  return s;
}

}  // namespace roundhouse::jenkins
