// Adapter, the coordinator: construction, start and close, REST calls with health accounting,
// the timers and Tick, the dispatch round (§4.4) and Summary. Its parts, by file:
//   master_view.cc     polls, health, the function table, registrations, capacity
//   build_tracker.cc   one build's life (§4.7-4.8, §1.5-1.6, §1.9); state table: build_state.h
//   journal.cc         the journal and reconciliation after a restart (§4.11)
//   offline_taints.cc  OFFLINE_NODE_WHEN_COMPLETE (§4.9)
//   manager_worker.cc  stop:<MANAGER> and set_description:<MANAGER> (§1.7, §1.8)

#include <sys/stat.h>

#include <algorithm>
#include <cassert>
#include <utility>

#include "jenkins/adapter_internal.h"
#include "protocol/http.h"
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
  manager_ = std::make_unique<ManagerWorker>(static_cast<ManagerWorker::Host&>(*this), *this,
                                             broker_, clock_, settings_);
  taints_ =
      std::make_unique<OfflineTaints>(static_cast<OfflineTaints::Host&>(*this), clock_, settings_);
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
  if (settings_.base_url.tls && !settings_.tls_verify) {
    RH_LOG(kWarning,
           "jenkins master=%s: WARNING: tls.verify=false: the certificate of %s is NOT "
           "checked; anyone on the path can read the token and forge replies",
           settings_.name.c_str(), settings_.base_url.text.c_str());
  }
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
  manager_->Attach();
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
  manager_->Detach();
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

// ---- timers

void Adapter::ArmTimer(uv_timer_t* timer, int64_t delay_ms) {
  if (closing_) return;
  uv_timer_start(timer, OnTimer, static_cast<uint64_t>(std::max<int64_t>(delay_ms, 0)), 0);
}

void Adapter::TickBy(int64_t due_ms) {
  if (closing_) return;
  const uint64_t delay = static_cast<uint64_t>(std::max<int64_t>(0, due_ms - clock_.MonotonicMs()));
  if (uv_timer_get_due_in(&tick_timer_) <= delay) return;
  uv_timer_start(&tick_timer_, OnTimer, delay, static_cast<uint64_t>(tick_ms_));
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
  manager_->Tick(now);
  taints_->Service();
  FinishPending();
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
  manager_->Run();
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

// ---- the manager worker's questions (ManagerWorker::Host)

bool Adapter::MasterReady() const { return health_ == Health::kHealthy && have_jobs_; }

bool Adapter::IsPipeline(const std::string& full_name) const {
  auto job = job_index_.find(full_name);
  return job != job_index_.end() && jobs_[job->second].cls.ends_with("WorkflowJob");
}

void Adapter::FailQueued(const std::string& handle, const std::string& text) {
  manager_->FailQueued(handle, text);
}

std::string Adapter::ResolveBuildPath(const std::string& name, int64_t number,
                                      std::string* full_name) const {
  if (name.empty() || number <= 0) return {};
  const std::string n = std::to_string(number) + "/";
  std::string ignored;
  std::string& full = full_name != nullptr ? *full_name : ignored;
  // 1) our own builds on this master.
  for (const auto& [handle, b] : builds_) {
    if (b->number == number && (b->full_name == name || ShortName(*b) == name)) {
      full = b->full_name;
      return !b->build_path.empty() ? b->build_path : b->job_path + n;
    }
  }
  // 2) a job whose fullName is `name`.
  if (job_index_.count(name) != 0) {
    full = name;
    return JobPath(name) + n;
  }
  // 3) short name, case-insensitive; the first fullName in order (job_index_ is sorted).
  std::string first;
  int matches = 0;
  for (const auto& [full, index] : job_index_) {
    if (protocol::http::EqualsIgnoreCase(jobs_[index].name, name)) {
      if (matches++ == 0) first = full;
    }
  }
  if (matches > 1) {
    RH_LOG(kWarning, "jenkins master=%s: '%s' names %d jobs; using %s", settings_.name.c_str(),
           name.c_str(), matches, first.c_str());
  }
  full = first;
  return first.empty() ? std::string() : JobPath(first) + n;
}

// ---- summary

MasterSummary Adapter::Summary() const {
  MasterSummary s;
  s.name = settings_.name;
  s.manager = settings_.manager_name;
  s.base_url = settings_.base_url.text;
  s.health = HealthName(health_);
  s.last_error = last_error_;
  s.tls_verify = !settings_.base_url.tls || settings_.tls_verify;
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
    bs.state = BuildStateName(b->state);
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
