// The BuildTracker's endings (see build_tracker.h): the three endings of §1.6, putting a job back,
// forgetting a build, and withdrawal (admin `cancel job`, a client that left; §1.9, J8).

#include <cinttypes>
#include <utility>

#include "base/log.h"
#include "jenkins/build_tracker.h"

namespace roundhouse::jenkins {

using protocol::PacketType;

// ---- endings (§1.6)

std::string WorkPayload(std::string_view handle, PacketType type, std::string_view body) {
  std::string payload(handle);
  if (type != PacketType::kWorkFail) {  // WORK_FAIL carries the handle alone
    payload.push_back('\0');
    payload.append(body);
  }
  return payload;
}

void BuildTracker::SendWork(Build& b, PacketType type, std::string_view body) {
  if (b.holder == nullptr) return;
  const std::string payload = WorkPayload(b.handle, type, body);
  std::string_view numerator, denominator;
  if (type == PacketType::kWorkStatus) {
    const size_t nul = body.find('\0');
    numerator = body.substr(0, nul);
    denominator = nul == std::string_view::npos ? std::string_view() : body.substr(nul + 1);
  }
  broker_.Work(*b.holder, type, b.handle, payload, numerator, denominator);
}

void BuildTracker::EndWithResult(Build& b, const std::string& result) {
  view_.ExecutorFreed(b.url);  // over in Jenkins: its executor takes the next job now
  // O3 on-complete: the node goes offline before the final packets, waiting at most
  // meta_timeout_s for Jenkins to confirm (the action is retried afterwards anyway).
  if (b.offline_requested && b.offline_on_complete && !b.node.empty() && b.start_sent &&
      b.state != BuildState::kFinishing) {
    Move(b, BuildTransition::kAwaitOffline);
    b.final_result = result;
    b.finish_deadline_ms = clock_.MonotonicMs() + settings_.meta_timeout_ms;
    taints_.TakeOffline(b.node);
    return;  // FinishPending() sends the packets once the offline action is done or times out
  }
  // §1.6 "retry" endings: the build died with its node, or with the controller.
  const bool died = result == "ABORTED" || result == "FAILURE";
  if (died && b.node_lost_ms != 0 && settings_.node_lost_policy == NodeLostPolicy::kRetry &&
      clock_.MonotonicMs() - b.node_lost_ms <= settings_.node_lost_window_ms) {
    RH_LOG(kWarning,
           "jenkins master=%s handle=%s: %s #%lld ended %s after its node disconnected: WORK_FAIL "
           "(node_lost_policy = retry)",
           settings_.name.c_str(), b.handle.c_str(), b.full_name.c_str(),
           static_cast<long long>(b.number), result.c_str());
    EndWithFail(b);
    return;
  }
  if (result == "ABORTED" && b.across_restart &&
      settings_.restart_policy == RestartPolicy::kRetry) {
    RH_LOG(kWarning,
           "jenkins master=%s handle=%s: %s #%lld was aborted by the controller restart: WORK_FAIL "
           "(restart_policy = retry)",
           settings_.name.c_str(), b.handle.c_str(), b.full_name.c_str(),
           static_cast<long long>(b.number));
    EndWithFail(b);
    return;
  }
  const std::string final_json = FinalJson(b.start, result);
  SendWork(b, PacketType::kWorkData, final_json);
  SendWork(b, PacketType::kWorkComplete, final_json);
  RH_LOG(kInfo, "jenkins master=%s handle=%s: %s #%" PRId64 " %s", settings_.name.c_str(),
         b.handle.c_str(), b.full_name.c_str(), b.number, result.c_str());
  b.holder = nullptr;
  Forget(b.handle);
}

void BuildTracker::FinishPending() {
  const int64_t now = clock_.MonotonicMs();
  std::vector<std::string> ready;
  for (const auto& [handle, b] : builds_) {
    if (b->state != BuildState::kFinishing) continue;
    if (taints_.OfflineApplied(b->node) || now >= b->finish_deadline_ms) ready.push_back(handle);
  }
  for (const std::string& handle : ready) {
    Build* b = FindBuild(handle);
    if (b == nullptr) continue;
    const std::string result = b->final_result;
    EndWithResult(*b, result);
  }
}

void BuildTracker::EndWithError(Build& b, const std::string& text) {
  RH_LOG(kWarning, "jenkins master=%s handle=%s: %s", settings_.name.c_str(), b.handle.c_str(),
         text.c_str());
  SendWork(b, PacketType::kWorkException, text);
  b.holder = nullptr;
  Forget(b.handle);
}

void BuildTracker::EndWithFail(Build& b) {
  SendWork(b, PacketType::kWorkFail, {});
  b.holder = nullptr;
  Forget(b.handle);
}

void BuildTracker::PutBack(Build& b, const char* why, int64_t backoff_ms) {
  RH_LOG(kInfo, "jenkins master=%s handle=%s: back to the queue (%s)", settings_.name.c_str(),
         b.handle.c_str(), why);
  ++requeues_;
  if (backoff_ms > 0) view_.BackOff(b.function, clock_.MonotonicMs() + backoff_ms);
  PseudoWorker* holder = b.withdrawn ? nullptr : b.holder;
  const std::string handle = b.handle;
  Forget(handle);  // `b` is gone from here on
  if (holder != nullptr) broker_.PutBack(*holder, handle);
  view_.ReconcileRegistrations();
  rounds_.RequestRound();
}

void BuildTracker::Forget(std::string handle) {
  auto it = builds_.find(handle);
  if (it == builds_.end()) return;
  const std::string full_name = it->second->full_name;
  Unrecord(*it->second);
  // A taint taken for a build that never started protects nothing.
  if (!it->second->start_sent) taints_.ForgetUnstarted(it->second->node, handle);
  view_.JobEnded(full_name, clock_.MonotonicMs());
  const bool reported = it->second->start_sent && it->second->worker_index >= 0;
  const std::string node = it->second->node;
  builds_.erase(it);
  if (reported) ResumeDeferredStarts(node);  // a worker name of `node` may be free now
  if (view_.NonConcurrent(full_name))
    view_.ReconcileRegistrations();  // D6: the job may take one again
  rounds_.RequestRound();            // capacity was released
}

// ---- withdrawal: admin `cancel job` or the last client left (§1.9, §4.11 J8 minus resume)

void BuildTracker::HandleWithdrawn(const std::string& handle, bool cancelled) {
  Build* b = FindBuild(handle);
  if (b == nullptr) return;  // a meta job: it simply runs to its end
  if (!cancelled && settings_.resume_window_ms > 0 && b->state != BuildState::kRecovered &&
      b->state != BuildState::kFinishing && b->holder != nullptr) {
    b->awaiting_client = true;
    b->resume_until_ms = clock_.MonotonicMs() + settings_.resume_window_ms;
    RH_LOG(kInfo, "jenkins master=%s handle=%s: its client left; kept %lld s for a resubmission",
           settings_.name.c_str(), handle.c_str(),
           static_cast<long long>(settings_.resume_window_ms / 1000));
    return;
  }
  WithdrawNow(*b);
}

// J8: a client that resubmits coalesces onto the job, so it gets the packets from now on; the
// start packets are sent again first. Nobody back within the window: orphan_policy.
void BuildTracker::CheckAwaitingClients(int64_t now) {
  std::vector<std::string> expired;
  for (auto& [handle, b] : builds_) {
    if (!b->awaiting_client) continue;
    if (broker_.GetStatus(handle).clients > 0) {
      b->awaiting_client = false;
      RH_LOG(kInfo, "jenkins master=%s handle=%s: a client resubmitted it; following on",
             settings_.name.c_str(), handle.c_str());
      if (b->start_sent &&
          (b->state == BuildState::kStarted || b->state == BuildState::kFinishing)) {
        b->start_sent = false;  // the next build poll sends WORK_DATA and WORK_STATUS again
        b->next_poll_ms = now;
      }
    } else if (now >= b->resume_until_ms) {
      expired.push_back(handle);
    }
  }
  for (const std::string& handle : expired) {
    Build* b = FindBuild(handle);
    if (b == nullptr) continue;
    b->awaiting_client = false;
    if (settings_.orphan_policy == OrphanPolicy::kIgnore) {
      RH_LOG(kNotice,
             "jenkins master=%s handle=%s: nobody came back; build left running "
             "(orphan_policy = ignore)",
             settings_.name.c_str(), handle.c_str());
      if (b->holder != nullptr) {
        broker_.Work(*std::exchange(b->holder, nullptr), PacketType::kWorkFail, handle, handle);
      }
      Forget(handle);
      view_.ReconcileRegistrations();
      continue;
    }
    WithdrawNow(*b);
  }
}

void BuildTracker::WithdrawNow(Build& build) {
  Build* b = &build;
  const std::string handle = b->handle;
  b->withdrawn = true;
  b->awaiting_client = false;
  // Free the broker's job now (its packets are discarded); the Jenkins side is cleaned below.
  if (b->holder != nullptr) {
    PseudoWorker* holder = b->holder;
    b->holder = nullptr;
    broker_.Work(*holder, PacketType::kWorkFail, handle, handle);
    if (b->start_sent) ResumeDeferredStarts(b->node);  // its worker name is free
  }
  RH_LOG(kInfo, "jenkins master=%s handle=%s: withdrawn in state %s", settings_.name.c_str(),
         handle.c_str(), BuildStateName(b->state));
  // ReconcileRecovered cancels or stops it once the master answers.
  if (b->state == BuildState::kRecovered) return;
  if (b->state == BuildState::kFinishing) {
    Forget(handle);  // over in Jenkins already; the node's offline action goes on regardless
    view_.ReconcileRegistrations();
    return;
  }
  switch (b->state) {
    case BuildState::kClaimed:
      Forget(handle);
      break;
    case BuildState::kTriggering:  // OnTriggered cancels what the POST created
    case BuildState::kCancelDue:   // the W3 due, then its confirmation, forget it
    case BuildState::kCancelling:  // the confirmation forgets it
    case BuildState::kAborting:
    case BuildState::kRecovered:  // (returned above)
    case BuildState::kFinishing:
      break;
    case BuildState::kQueued:
      if (!b->request_in_flight) {
        CancelQueued(*b);
      } else {
        Move(*b, BuildTransition::kCancelLater);  // W3 once the poll has answered (PollDue)
      }
      break;
    case BuildState::kStarted:
      AbortBuild(*b);
      break;
  }
  view_.ReconcileRegistrations();
}

void BuildTracker::AbortBuild(Build& b, BuildTransition transition) {
  Move(b, transition);
  b.request_in_flight = true;
  const std::string handle = b.handle;
  view_.Post(b.build_path + "stop", {}, [this, handle](RestResult&& r) {
    Build* b = FindBuild(handle);
    if (b == nullptr) return;
    b->request_in_flight = false;
    b->next_poll_ms = clock_.MonotonicMs() + settings_.poll_queue_item_ms;
    if (r.ok() && r.status() == 404) {
      Forget(handle);  // the build is gone
    } else if (!r.ok() || r.status() >= 500) {
      Move(*b, BuildTransition::kAbortNotDelivered);  // OnBuild sends it again
    }
  });
}

int BuildTracker::ReservedBuildsOn(const std::string& node) const {
  int n = 0;
  for (const auto& [handle, b] : builds_) n += b->reserved && b->node == node ? 1 : 0;
  return n;
}

std::string BuildTracker::ShortName(const Build& b) const { return view_.ShortName(b.full_name); }

}  // namespace roundhouse::jenkins
