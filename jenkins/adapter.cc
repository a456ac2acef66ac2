// Adapter, the coordinator (see adapter.h): construction, start and close, the tick, the dispatch
// round (§4.4) and the summary. The rules live in the parts it owns.

#include "jenkins/adapter.h"

#include <sys/stat.h>

#include <algorithm>
#include <cassert>
#include <utility>

#include "base/log.h"
#include "base/text.h"
#include "protocol/http.h"

namespace roundhouse::jenkins {

Adapter::Adapter(uv_loop_t* loop, broker::Broker& broker, Clock& clock, AdapterHost& host,
                 MasterSettings settings, storage::JobStore* store)
    : Adapter(loop, broker, clock, host, settings, store,
              std::make_unique<RestTransport>(loop, settings.ToRestOptions())) {}

Adapter::Adapter(uv_loop_t* loop, broker::Broker& broker, Clock& clock, AdapterHost& host,
                 MasterSettings settings, storage::JobStore* store,
                 std::unique_ptr<Transport> transport)
    : broker_(broker),
      clock_(clock),
      host_(host),
      settings_(std::move(settings)),
      rest_(std::move(transport)),
      taints_(static_cast<OfflineTaints::Host&>(*this), clock_, settings_),
      journal_(store, settings_.name),
      view_(loop, broker_, clock_, host_, static_cast<MasterView::Builds&>(*this), *this, settings_,
            *rest_, taints_),
      tracker_(static_cast<BuildTracker::Host&>(*this), host_, broker_, clock_, settings_, view_,
               taints_, journal_, *rest_),
      manager_(static_cast<ManagerWorker::Host&>(*this), *this, broker_, clock_, settings_) {
  if (settings_.base_url.tls && !settings_.tls_verify) {
    RH_LOG(kWarning,
           "jenkins master=%s: WARNING: tls.verify=false: the certificate of %s is NOT "
           "checked; anyone on the path can read the token and forge replies",
           settings_.name.c_str(), settings_.base_url.text.c_str());
  }
  uv_timer_init(loop, &tick_timer_);
  tick_timer_.data = this;
}

Adapter::~Adapter() { assert(open_handles_ == 0 && "Adapter destroyed before Close() finished"); }

void Adapter::Start() {
  manager_.Attach();
  view_.SetDraining(!settings_.enabled);
  RH_LOG(kNotice, "jenkins master=%s: serving %s as manager %s", settings_.name.c_str(),
         settings_.base_url.text.c_str(), settings_.manager_name.c_str());
  view_.Start();
  tick_ms_ =
      std::min<int64_t>({settings_.poll_queue_item_ms, settings_.poll_build_ms, int64_t{1000}});
  uv_timer_start(&tick_timer_, OnTick, static_cast<uint64_t>(tick_ms_),
                 static_cast<uint64_t>(tick_ms_));
}

void Adapter::Close(std::function<void()> closed) {
  if (closing_) return;
  closing_ = true;
  closed_ = std::move(closed);
  open_handles_ = 3;                        // the tick timer, the view's timers, the transport
  view_.Close([this] { HandleClosed(); });  // withdraws the pseudo-workers first
  manager_.Detach();
  tracker_.Clear();
  rest_->Close([this] { HandleClosed(); });
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_timer_),
           [](uv_handle_t* h) { static_cast<Adapter*>(h->data)->HandleClosed(); });
}

void Adapter::HandleClosed() {
  if (--open_handles_ == 0 && closed_) {
    auto done = std::move(closed_);
    done();
  }
}

void Adapter::SetDraining(bool draining) {
  view_.SetDraining(draining);
  if (!draining) host_.RequestRound();
}

// ---- the tick

void Adapter::TickBy(int64_t due_ms) {
  if (closing_) return;
  const uint64_t delay = static_cast<uint64_t>(std::max<int64_t>(0, due_ms - clock_.MonotonicMs()));
  if (uv_timer_get_due_in(&tick_timer_) <= delay) return;
  uv_timer_start(&tick_timer_, OnTick, delay, static_cast<uint64_t>(tick_ms_));
}

void Adapter::OnTick(uv_timer_t* timer) {
  auto* self = static_cast<Adapter*>(timer->data);
  if (!self->closing_) self->Tick();
}

void Adapter::Tick() {
  const int64_t now = clock_.MonotonicMs();
  view_.ExpireBackOffs(now);
  tracker_.PollDue(now);
  manager_.Tick(now);
  taints_.Service();
  tracker_.FinishPending();
  tracker_.CheckAwaitingClients(now);
  view_.SpeedUpIfBusy();
  if (view_.DownLongerThan(settings_.inflight_grace_ms, now)) tracker_.AbandonInflight();
  tracker_.PruneExternalCancels(now);
  if (!settings_.api_token_file.empty() && now - token_checked_ms_ >= 5000) {
    token_checked_ms_ = now;
    CheckTokenFile();
  }
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

// ---- the dispatch round

void Adapter::Woken() { host_.RequestRound(); }

void Adapter::Withdrawn(std::string_view handle, bool cancelled) {
  withdrawn_.emplace_back(std::string(handle), cancelled);
  host_.RequestRound();
}

void Adapter::Round() {
  if (closing_) return;
  std::vector<std::pair<std::string, bool>> withdrawn;
  withdrawn.swap(withdrawn_);
  for (const auto& [handle, cancelled] : withdrawn) tracker_.HandleWithdrawn(handle, cancelled);
  manager_.Run();
  if (view_.Answering()) tracker_.ReconcileRecovered();
  if (!view_.Dispatchable()) return;

  int starting = tracker_.Starting();
  std::set<std::string> blocked = view_.BlockedFunctions();
  // Free capacity per node, recomputed as claims reserve executors.
  std::vector<std::pair<int, const MasterView::Node*>> candidates;
  const std::map<std::string, int> reserved = tracker_.ReservationsByNode();
  for (const MasterView::Node& node : view_.nodes()) {
    auto r = reserved.find(node.info.name);
    const int free = view_.FreeCapacity(node, r == reserved.end() ? 0 : r->second);
    if (free > 0 && !node.functions.empty()) candidates.emplace_back(free, &node);
  }
  while (starting < settings_.max_inflight_starts && !candidates.empty()) {
    // D3: most free first.
    auto best = std::max_element(candidates.begin(), candidates.end(),
                                 [](const auto& a, const auto& b) { return a.first < b.first; });
    // The name is copied: a claim may reconcile registrations, never the nodes, but the claim
    // takes a plain string.
    const std::string node = best->second->info.name;
    PseudoWorker* worker = view_.NextWorker(node, blocked);
    const broker::Job* job = worker != nullptr ? broker_.Grab(*worker, broker::GrabKind::kAll)
                                               : nullptr;
    if (job == nullptr) {
      if (worker != nullptr) broker_.PreSleep(*worker);  // woken when a job arrives
      candidates.erase(best);
      continue;
    }
    tracker_.Claim(*worker, *job, node);
    blocked = view_.BlockedFunctions();  // a non-concurrent job just became busy
    ++starting;
    if (--best->first == 0) candidates.erase(best);
  }
}

// ---- the manager worker's questions (ManagerWorker::Host)

void Adapter::FailQueued(const std::string& handle, const std::string& text) {
  manager_.FailQueued(handle, text);
}

std::string Adapter::ResolveBuildPath(const std::string& name, int64_t number,
                                      std::string* full_name) const {
  if (name.empty() || number <= 0) return {};
  const std::string n = std::to_string(number) + "/";
  std::string ignored;
  std::string& full = full_name != nullptr ? *full_name : ignored;
  // 1) our own builds on this master.
  if (std::string path = tracker_.FindOwnBuild(name, number, &full); !path.empty()) return path;
  // 2) a job whose fullName is `name`.
  if (view_.FindJob(name) != nullptr) {
    full = name;
    return JobPath(name) + n;
  }
  // 3) short name, case-insensitive; the first fullName in order (job_index is sorted).
  std::string first;
  int matches = 0;
  for (const auto& [full_name_of, index] : view_.job_index()) {
    if (EqualsIgnoreCase(view_.jobs()[index].name, name)) {
      if (matches++ == 0) first = full_name_of;
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
  view_.Summarize(s, tracker_.ReservationsByNode());
  CountExecutors(s);
  tracker_.Summarize(s);
  return s;
}

}  // namespace roundhouse::jenkins
