// The master's view (see master_view.h): construction and close, the REST calls every part of the
// adapter makes and their health accounting (doc/jenkins.md §4.10, restart detection M3), and the
// rhythm of the polls of R1 (health), R2 (jobs) and R4 (computers): timers, retries, the busy
// rate. What the snapshots become: master_nodes.cc (R4 and R5: nodes, turnaround and capacity,
// §4.4 D2, D5) and master_functions.cc (R2: the job and function tables, blocked functions and the
// pseudo-workers with their registrations, §1.2, §1.3, §4.3, D6). The coordinator (the tick, the
// dispatch round) is adapter.cc.

#include "jenkins/master_view.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "base/log.h"

namespace roundhouse::jenkins {
namespace {

// The first retry of a failing view poll (PollRetry); it doubles up to the normal interval.
constexpr int64_t kFirstPollRetryMs = 250;

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
