// The build tracker (see build_tracker.h): its state changes, following the queue item (R7,
// §4.8), the periodic work, and the answers it gives the view, the round and the summary. The
// rest of a build's way through Jenkins: build_trigger.cc (claim, §4.7), build_start.cc (R9,
// §1.5), build_endings.cc (§1.6, §1.9), build_recovery.cc (§4.11).

#include "jenkins/build_tracker.h"

#include <algorithm>
#include <cassert>
#include <cinttypes>
#include <set>
#include <utility>

#include "base/log.h"

namespace roundhouse::jenkins {

using protocol::PacketType;

namespace {

// R7 404s (LeftItem gone) tolerated before the queue id is looked up in the job's builds, and
// lookups without a match before the item counts as lost (§4.8 Q4).
constexpr int kLeftItemLookups = 5;

}  // namespace

void BuildTracker::Move(Build& b, BuildTransition transition) {
  const std::optional<BuildState> next = NextState(b.state, transition);
  assert(next && "a build transition the table does not have");
  if (!next) {
    RH_LOG(kError, "jenkins master=%s handle=%s: no transition '%s' from %s; state kept",
           settings_.name.c_str(), b.handle.c_str(), BuildTransitionName(transition),
           BuildStateName(b.state));
    return;
  }
  b.state = *next;
}

BuildTracker::Build* BuildTracker::FindBuild(const std::string& handle) {
  auto it = builds_.find(handle);
  return it == builds_.end() ? nullptr : it->second.get();
}

// ---- following the queue item (R7)

void BuildTracker::PollQueueItem(Build& b) {
  b.request_in_flight = true;
  const std::string handle = b.handle;
  view_.Get("queue/item/" + std::to_string(b.queue_id) + "/" + ApiJson(kTreeQueueItem),
            [this, handle](RestResult&& r) { OnQueueItem(handle, std::move(r)); });
}

void BuildTracker::OnQueueItem(const std::string& handle, RestResult&& r) {
  Build* b = FindBuild(handle);
  if (b == nullptr) return;
  b->request_in_flight = false;
  const int64_t now = clock_.MonotonicMs();
  b->next_poll_ms = now + settings_.poll_queue_item_ms;
  if (!r.ok() || r.status() >= 500) return;  // retried at the next poll
  if (r.status() == 404) {
    LookupLeftItem(*b);
    return;
  }
  if (r.status() != 200) return;
  auto parsed = ParseQueueItem(r.body());
  if (!parsed.ok()) {
    RH_LOG(kWarning, "jenkins master=%s handle=%s: queue item %" PRId64 ": %s",
           settings_.name.c_str(), handle.c_str(), b->queue_id, parsed.status().message().c_str());
    return;
  }
  const QueueItem& item = parsed.value();
  if (item.build_number) {
    OnStarted(*b, *item.build_number, item.build_url);
    return;
  }
  if (item.cancelled) {
    if (b->withdrawn) {
      Forget(handle);  // our cancel (admin or abandoned) took effect
    } else if (b->state == BuildState::kCancelling) {
      // Queue-wait timeout (§4.8 Q2): back to our queue unseen; the node rests a while.
      view_.Cooldown(b->node, now + settings_.contention_cooldown_ms);
      PutBack(*b, "queue-wait timeout", 0);
    } else {
      // Cancelled by someone else (Q3).
      const int count = ++external_cancels_[b->handle];
      if (count > settings_.max_requeues) {
        EndWithError(*b,
                     "The Jenkins queue item was cancelled " + std::to_string(count) + " times");
      } else {
        RH_LOG(kWarning,
               "jenkins master=%s handle=%s: queue item %" PRId64
               " of %s was cancelled in Jenkins; "
               "requeued (%d of %d)",
               settings_.name.c_str(), handle.c_str(), b->queue_id, b->full_name.c_str(), count,
               settings_.max_requeues);
        PutBack(*b, "cancelled in Jenkins", 0);
      }
    }
    return;
  }
  if (item.kind == QueueItemKind::kLeft) return;  // Q4: neither flag yet; keep polling
  if (b->state == BuildState::kQueued && now - b->queued_ms > settings_.queue_wait_timeout_ms) {
    RH_LOG(
        kInfo,
        "jenkins master=%s handle=%s: item %" PRId64 " waited %" PRId64 " ms (%s); cancelling it",
        settings_.name.c_str(), handle.c_str(), b->queue_id, now - b->queued_ms, item.why.c_str());
    CancelQueued(*b);
  }
}

void BuildTracker::LookupLeftItem(Build& b) {
  if (++b.not_found > kLeftItemLookups) {
    RH_LOG(kWarning,
           "jenkins master=%s handle=%s: queue item %" PRId64
           " of %s is gone and no build has its "
           "id",
           settings_.name.c_str(), b.handle.c_str(), b.queue_id, b.full_name.c_str());
    if (b.withdrawn) {
      Forget(b.handle);
    } else {
      PutBack(b, "queue item lost", 0);
    }
    return;
  }
  b.request_in_flight = true;
  const std::string handle = b.handle;
  view_.Get(
      b.job_path + ApiJson(kTreeBuilds),
      [this, handle](RestResult&& r) {
        Build* b = FindBuild(handle);
        if (b == nullptr) return;
        b->request_in_flight = false;
        if (!r.ok() || r.status() != 200) return;
        auto builds = ParseBuilds(r.body());
        if (!builds.ok()) return;
        for (const BuildInfo& info : builds.value()) {
          if (info.queue_id == b->queue_id) {
            OnStarted(*b, info.number, info.url);
            return;
          }
        }
      },
      ReplySize::kList);
}

// W3; what follows is decided when R7 confirms: withdrawn → forgotten, timeout → put back,
// started meanwhile → followed (timeout) or aborted (withdrawn).
void BuildTracker::CancelQueued(Build& b) {
  Move(b, BuildTransition::kCancelItem);
  b.request_in_flight = true;
  const std::string handle = b.handle;
  view_.Post("queue/cancelItem?id=" + std::to_string(b.queue_id), {},
             [this, handle](RestResult&& r) {
               Build* b = FindBuild(handle);
               if (b == nullptr) return;
               b->request_in_flight = false;
               b->next_poll_ms = clock_.MonotonicMs();  // confirm with R7 at the next tick
               if (!r.ok() || r.status() >= 500) {
                 Move(*b, BuildTransition::kCancelNotDelivered);  // sent again at the next tick
                 b->next_poll_ms += settings_.poll_queue_item_ms;
               }
               if (r.ok() && r.status() == 422) {
                 RH_LOG(kError,
                        "jenkins master=%s: cancelling queue item %" PRId64
                        " was refused (422): the API "
                        "user needs Job/Cancel",
                        settings_.name.c_str(), b->queue_id);
               }
             });
}

// ---- periodic work

void BuildTracker::PollDue(int64_t now) {
  // Copy the handles: a poll never calls back synchronously, but keep iteration obviously safe.
  std::vector<std::string> due;
  for (const auto& [handle, build] : builds_) {
    if (!build->request_in_flight && build->next_poll_ms <= now) due.push_back(handle);
  }
  for (const std::string& handle : due) {
    Build* build = FindBuild(handle);
    if (build == nullptr) continue;
    switch (build->state) {
      case BuildState::kCancelDue:
        CancelQueued(*build);
        break;
      case BuildState::kQueued:
      case BuildState::kCancelling:
        PollQueueItem(*build);
        break;
      case BuildState::kStarted:
      case BuildState::kAborting:
        PollBuild(*build);
        break;
      case BuildState::kClaimed:
      case BuildState::kRecovered:
      case BuildState::kTriggering:
      case BuildState::kFinishing:  // FinishPending
        break;
    }
  }
}

// §4.10 M1/M2: the master stayed DOWN beyond inflight_grace_s. Started builds end with WORK_FAIL
// (plugin-era clients retry), builds not started yet go back to our queue unseen.
void BuildTracker::AbandonInflight() {
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
        broker_.Work(*holder, PacketType::kWorkFail, handle, handle);
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
    if (b->state == BuildState::kQueued) Move(*b, BuildTransition::kCancelLater);
    // A job put back here is not claimed by this master again until this orphan is cleaned up
    // (Claim), so its old item and a new one never both run.
  }
  view_.ReconcileRegistrations();
  rounds_.RequestRound();
}

void BuildTracker::PruneExternalCancels(int64_t now) {
  if (external_cancels_.empty() || now - cancels_pruned_ms_ < 10000) return;
  cancels_pruned_ms_ = now;
  std::erase_if(external_cancels_,
                [this](const auto& entry) { return !broker_.GetStatus(entry.first).known; });
}

// ---- answers

bool BuildTracker::HasBuildOf(const std::string& full_name) const {
  for (const auto& [handle, b] : builds_) {
    if (b->full_name == full_name) return true;
  }
  return false;
}

int BuildTracker::Starting() const {
  int starting = 0;
  for (const auto& [handle, b] : builds_) {
    starting += b->state == BuildState::kStarted || b->state == BuildState::kAborting ||
                        b->state == BuildState::kFinishing
                    ? 0
                    : 1;
  }
  return starting;
}

// D5: executors a node owes to builds we triggered there that the last snapshot does not show
// running yet. A build is visible once an executor of the node runs it: by its URL when we know
// it, else (started in Jenkins but not yet seen by our queue-item poll) as a build of the same
// job that we know nothing of. So the snapshot and the ledger never count one build twice, and
// an executor is not held back for a poll after Jenkins has already started our build on it.
std::map<std::string, int> BuildTracker::ReservationsByNode() const {
  std::map<std::string, int> out;
  std::set<std::string> known_urls;
  std::map<std::string, std::map<std::string, int>> pending;  // node -> job path -> count
  for (const auto& [handle, b] : builds_) {
    if (!b->url.empty()) known_urls.insert(b->url);
    if (!b->reserved) continue;
    if (b->start_sent || b->state == BuildState::kStarted || b->state == BuildState::kAborting) {
      bool visible = false;
      if (const MasterView::Node* n = view_.FindNode(b->node)) {
        for (const ExecutorInfo& e : n->info.executors) visible |= e.build_url == b->url;
      }
      if (!visible) ++out[b->node];
    } else {
      ++pending[b->node][b->job_path];
    }
  }
  for (auto& [node, by_job] : pending) {
    if (const MasterView::Node* n = view_.FindNode(node)) {
      for (const ExecutorInfo& e : n->info.executors) {
        if (e.idle || e.build_url.empty() || known_urls.count(e.build_url) != 0) continue;
        const std::string path = rest_.RelativePath(e.build_url);  // "job/x/123/"
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

void BuildTracker::ControllerRestarted() {
  const int64_t now = clock_.MonotonicMs();
  for (auto& [handle, build] : builds_) {
    if (build->start_sent) build->across_restart = true;
    build->next_poll_ms = now;
  }
}

void BuildTracker::ComputersApplied(int64_t requested_ms) {
  const int64_t now = clock_.MonotonicMs();
  taints_.Update(
      [this](const std::string& name) {
        const MasterView::Node* n = view_.FindNode(name);
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
    const MasterView::Node* n = view_.FindNode(build->node);
    if (n != nullptr && n->info.offline && !n->info.temporarily_offline) {
      build->node_lost_ms = now;
      RH_LOG(kWarning, "jenkins master=%s handle=%s: node %s disconnected under %s #%lld",
             settings_.name.c_str(), handle.c_str(), n->info.name.c_str(), build->full_name.c_str(),
             static_cast<long long>(build->number));
    }
  }
  // D5: a reservation ends once a snapshot requested after the start shows the executor busy.
  // A started build that this snapshot shows on no executor has probably ended: read it now
  // rather than at its next poll, so its end is reported (and its worker freed) sooner.
  std::vector<std::string> ended;
  for (auto& [handle, build] : builds_) {
    const bool started =
        build->state == BuildState::kStarted || build->state == BuildState::kFinishing;
    if (!started || build->started_ms > requested_ms) continue;
    build->reserved = false;
    if (!build->start_sent || build->url.empty()) continue;
    bool running = false;
    for (const MasterView::Node& n : view_.nodes()) {
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
    if (!build->reserved || view_.FindNode(build->node) != nullptr) continue;
    RH_LOG(kWarning, "jenkins master=%s handle=%s: node %s vanished while a build was pending",
           settings_.name.c_str(), handle.c_str(), build->node.c_str());
    build->reserved = false;
  }
}

std::string BuildTracker::FindOwnBuild(const std::string& name, int64_t number,
                                       std::string* full_name) const {
  for (const auto& [handle, b] : builds_) {
    if (b->number == number && (b->full_name == name || ShortName(*b) == name)) {
      if (full_name != nullptr) *full_name = b->full_name;
      return !b->build_path.empty() ? b->build_path : b->job_path + std::to_string(number) + "/";
    }
  }
  return {};
}

void BuildTracker::Summarize(MasterSummary& s) const {
  s.dispatches = dispatches_;
  s.requeues = requeues_;
  s.dropped_parameters = dropped_parameters_;
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
}

// ---- the journal's entries

void BuildTracker::Record(Build& b, Journal::State state, std::function<void(Status)> done) {
  if (journal_.enabled()) b.journaled = true;
  Journal::Entry e;
  e.state = state;
  e.function = b.function;
  e.unique = b.unique;
  e.job = b.full_name;
  e.node = b.node;
  e.queue_id = b.queue_id;
  e.number = b.number;
  e.url = b.url;
  e.offline = b.offline_requested;
  e.offline_on_complete = b.offline_on_complete;
  journal_.Write(b.handle, e, std::move(done));
}

void BuildTracker::Unrecord(const Build& b) {
  if (b.journaled) journal_.Erase(b.handle);
}

}  // namespace roundhouse::jenkins
