// The build tracker (see build_tracker.h): one Gearman job's way through Jenkins.
// Claim and parameters (§4.4–4.6), trigger outcomes (§4.7), following the queue item and the build
// (§4.8) with the packets of §1.5, the endings of §1.6, and the cancellation paths of §1.9.

#include "jenkins/build_tracker.h"

#include <algorithm>
#include <cassert>
#include <cinttypes>
#include <set>
#include <utility>

#include "base/log.h"
#include "protocol/http.h"

namespace roundhouse::jenkins {

using protocol::PacketType;

namespace {

// Back-off after trigger outcomes that will likely repeat at once (§4.7).
constexpr int64_t kShortBackoffMs = 2000;
constexpr int64_t kLongBackoffMs = 10000;
// R7 404s (LeftItem gone) tolerated before the queue id is looked up in the job's builds, and
// lookups without a match before the item counts as lost (§4.8 Q4).
constexpr int kLeftItemLookups = 5;

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

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

// ---- claim and trigger

void BuildTracker::Claim(PseudoWorker& worker, const broker::Job& job, const std::string& node) {
  if (auto old = builds_.find(std::string(job.handle())); old != builds_.end()) {
    // The job went back to the queue while its previous item here is still being cancelled
    // (abandoned while the master was DOWN): not before that is done, or both could run.
    RH_LOG(kInfo,
           "jenkins master=%s handle=%.*s: its previous item is still being cancelled; "
           "put back",
           settings_.name.c_str(), static_cast<int>(job.handle().size()), job.handle().data());
    view_.BackOff(std::string(job.function_name()), clock_.MonotonicMs() + kShortBackoffMs);
    broker_.PutBack(worker, job.handle());
    view_.ReconcileRegistrations();
    return;
  }
  auto build = std::make_unique<Build>();
  Build& b = *build;
  b.handle = std::string(job.handle());
  b.unique = std::string(job.unique());
  b.function = std::string(job.function_name());
  b.data = std::string(job.data());
  b.node = node;
  b.holder = &worker;
  b.claimed_ms = clock_.MonotonicMs();
  if (const std::string* route = view_.RouteOf(b.function)) {
    b.full_name = *route;
    b.job_path = JobPath(b.full_name);
  }
  ++dispatches_;
  builds_.emplace(b.handle, std::move(build));
  if (view_.NonConcurrent(b.full_name)) view_.ReconcileRegistrations();  // D6: no second item of it
  RH_LOG(kInfo, "jenkins master=%s handle=%s: %s claimed for node %s", settings_.name.c_str(),
         b.handle.c_str(), b.function.c_str(), b.node.c_str());
  Trigger(b);
}

void BuildTracker::Trigger(Build& b) {
  const JobInfo* found = view_.FindJob(b.full_name);
  if (b.full_name.empty() || found == nullptr) {
    PutBack(b, "its job is no longer in the view", kLongBackoffMs);
    return;
  }
  const JobInfo& job = *found;
  auto arguments = ParseBuildArguments(b.data);
  if (!arguments.ok()) {
    EndWithError(b, "Invalid build arguments: " + arguments.status().message());
    return;
  }
  // OFFLINE_NODE_WHEN_COMPLETE (§4.9): the timing, and for pinned builds (O1) a node that nobody
  // else uses, reserved whole by the taint.
  const bool pinnable_job =
      !job.flyweight() || settings_.flyweight_labels.count(job.full_name) != 0;
  const bool pinned_build = settings_.pin_mode != PinMode::kLabelOnly && pinnable_job &&
                            job.FindParameter(settings_.pin_parameter) != nullptr;
  if (arguments.value().offline_node_when_complete) {
    b.offline_requested = true;
    b.offline_on_complete = settings_.offline_timing
                                ? *settings_.offline_timing == OfflineTiming::kOnComplete
                                : job.flyweight();
    if (pinned_build) {
      const MasterView::Node* node = view_.FindNode(b.node);
      const bool whole = node != nullptr && !taints_.Tainted(b.node) &&
                         node->idle == static_cast<int>(node->info.executors.size()) &&
                         ReservedBuildsOn(b.node) == 1;  // this build only
      if (!whole) {
        PutBack(b, "OFFLINE_NODE_WHEN_COMPLETE needs a node with every executor free",
                settings_.poll_computers_ms);
        return;
      }
      taints_.Taint(b.node, b.handle);
    }
  }
  // Adapter-owned parameters (§1.4, §4.5, §4.6 P5).
  std::vector<std::pair<std::string, std::string>> overrides;
  b.unpinned = true;
  // §4.5: a flyweight job (Pipeline, matrix) is pinned only when flyweight_labels names it.
  const bool pinnable = !job.flyweight() || settings_.flyweight_labels.count(job.full_name) != 0;
  if (settings_.pin_mode != PinMode::kLabelOnly && pinnable) {
    if (job.FindParameter(settings_.pin_parameter) != nullptr) {
      b.unpinned = false;
      std::string value = b.node;
      if (settings_.pin_mode == PinMode::kLabel) {
        const std::string self = LabelExpr::QuoteAtom(b.node);
        value = job.label_expression && !job.label_expression->empty()
                    ? "(" + *job.label_expression + ")&&" + self
                    : self;
      }
      overrides.emplace_back(settings_.pin_parameter, std::move(value));
    } else if (!job.parameters.empty() && view_.FirstTime("nopin:" + job.full_name)) {
      RH_LOG(kInfo,
             "jenkins master=%s: job %s has no parameter %s: Jenkins chooses its node "
             "(label-only)",
             settings_.name.c_str(), job.full_name.c_str(), settings_.pin_parameter.c_str());
    }
  }
  overrides.emplace_back(settings_.unique_param, b.unique.empty() ? b.handle : b.unique);
  FilteredParameters params = FilterParameters(arguments.value(), job, overrides);
  if (!params.dropped.empty()) {
    dropped_parameters_ += params.dropped.size();
    if (settings_.param_policy == ParamPolicy::kStrict) {
      EndWithError(b,
                   "Job " + job.full_name + " does not define parameters: " + Join(params.dropped));
      return;
    }
    const int64_t now = clock_.MonotonicMs();
    auto& last = dropped_logged_[job.full_name];
    if (last == 0 || now - last >= 3600 * 1000) {
      last = now;
      RH_LOG(kWarning,
             "jenkins master=%s handle=%s: job %s does not define %s; not sent (logged once an "
             "hour per job)",
             settings_.name.c_str(), b.handle.c_str(), job.full_name.c_str(),
             Join(params.dropped).c_str());
    }
  }
  for (const std::string& key : params.overridden) {
    RH_LOG(kInfo,
           "jenkins master=%s handle=%s: parameter %s is set by roundhouse; the client's value is "
           "replaced",
           settings_.name.c_str(), b.handle.c_str(), key.c_str());
  }
  // P6: jobs without parameter definitions use W2.
  const std::string path =
      b.job_path + (job.parameters.empty() ? "build?delay=0sec" : "buildWithParameters?delay=0sec");
  if (job.parameters.empty()) params.sent.clear();
  Move(b, BuildTransition::kTrigger);
  b.request_in_flight = true;
  const std::string handle = b.handle;
  // J1: the intent is committed before the POST it authorises.
  Record(b, Journal::State::kTriggering,
         [this, handle, path, form = std::move(params.sent)](Status committed) mutable {
           Build* b = FindBuild(handle);
           if (b == nullptr) return;
           if (!committed.ok() || b->withdrawn) {
             b->request_in_flight = false;
             if (b->withdrawn) {
               Forget(handle);
             } else {
               PutBack(*b, "the journal could not be written", kShortBackoffMs);
             }
             return;
           }
           view_.Post(path, std::move(form),
                      [this, handle](RestResult&& r) { OnTriggered(handle, std::move(r)); });
         });
}

void BuildTracker::OnTriggered(const std::string& handle, RestResult&& r) {
  Build* b = FindBuild(handle);
  if (b == nullptr) return;
  b->request_in_flight = false;
  std::optional<int64_t> queue_id;
  if (r.ok() && r.status() == 201) queue_id = QueueIdFromLocation(r.http.response.Get("Location"));
  if (b->withdrawn) {
    // Cancelled while the POST was in flight: cancel whatever it created (§1.9).
    if (queue_id) {
      b->queue_id = *queue_id;
      CancelQueued(*b);
    } else {
      Forget(handle);
    }
    return;
  }
  if (!r.ok()) {
    if (r.http.request_sent) {
      // Ambiguous (§4.7): the POST may have queued the build. Look for it by unique_param.
      RH_LOG(kWarning,
             "jenkins master=%s handle=%s: the trigger of %s got no answer (%s); looking for it",
             settings_.name.c_str(), handle.c_str(), b->full_name.c_str(),
             r.http.error_text.c_str());
      SearchLostTrigger(*b, 0);
      return;
    }
    PutBack(*b, "trigger failed", kShortBackoffMs);
    return;
  }
  const int status = r.status();
  if (status == 201) {
    if (!queue_id) {
      EndWithError(*b, "Jenkins accepted the build without a queue item location");
      return;
    }
    for (const auto& [h, other] : builds_) {
      if (other.get() != b && other->queue_id == *queue_id) {
        RH_LOG(kWarning,
               "jenkins master=%s handle=%s: queue item %" PRId64
               " already belongs to %s (merged "
               "by Jenkins); define parameter %s on %s",
               settings_.name.c_str(), handle.c_str(), *queue_id, h.c_str(),
               settings_.unique_param.c_str(), b->full_name.c_str());
        PutBack(*b, "merged with another item", kShortBackoffMs);
        return;
      }
    }
    b->queue_id = *queue_id;
    Move(*b, BuildTransition::kItemCreated);
    b->queued_ms = clock_.MonotonicMs();
    b->next_poll_ms = b->queued_ms + settings_.poll_queue_item_ms;
    Record(*b, Journal::State::kQueued);
    RH_LOG(kInfo, "jenkins master=%s handle=%s: %s queued as item %" PRId64, settings_.name.c_str(),
           handle.c_str(), b->full_name.c_str(), b->queue_id);
    return;
  }
  switch (status) {
    case 303:
      RH_LOG(kWarning,
             "jenkins master=%s handle=%s: Jenkins merged the trigger into an existing item of %s; "
             "define parameter %s on it",
             settings_.name.c_str(), handle.c_str(), b->full_name.c_str(),
             settings_.unique_param.c_str());
      PutBack(*b, "merged (303)", kLongBackoffMs);
      return;
    case 302:
      PutBack(*b, "scheduling vetoed (302)", kLongBackoffMs);
      return;
    case 400:
    case 404:
    case 409:
      view_.PollJobs();  // the job changed: refresh the view before routing again
      PutBack(*b,
              status == 409   ? "job not buildable (409)"
              : status == 404 ? "job not found (404)"
                              : "job not parameterised (400)",
              kShortBackoffMs);
      return;
    case 401:
    case 403:
      RH_LOG(kError, "jenkins master=%s: trigger of %s answered %d: the API user needs Job/Build",
             settings_.name.c_str(), b->full_name.c_str(), status);
      PutBack(*b, "not permitted", kLongBackoffMs);
      return;
    default:
      break;
  }
  if (status >= 500) {
    PutBack(*b, "server error", kShortBackoffMs);
    return;
  }
  RH_LOG(kError, "jenkins master=%s handle=%s: unexpected answer %d to the trigger of %s",
         settings_.name.c_str(), handle.c_str(), status, b->full_name.c_str());
  EndWithError(*b, "Jenkins answered " + std::to_string(status) + " to the build request");
}

// A trigger whose answer was lost (§4.7, failure table "trigger response lost"): search the queue
// (R8) and then the job's recent builds (R10) for our unique_param value; adopt a match, else
// put the job back. Without unique_param nothing can be matched: the job goes back and a
// duplicate build is possible (logged).
void BuildTracker::SearchLostTrigger(Build& b, int attempt) {
  const JobInfo* job = view_.FindJob(b.full_name);
  const bool tagged = job != nullptr && job->FindParameter(settings_.unique_param) != nullptr;
  if (!tagged) {
    RH_LOG(kWarning,
           "jenkins master=%s handle=%s: %s has no parameter %s, so a lost trigger cannot be "
           "found: requeued, it may build twice",
           settings_.name.c_str(), b.handle.c_str(), b.full_name.c_str(),
           settings_.unique_param.c_str());
    PutBack(b, "trigger answer lost", kShortBackoffMs);
    return;
  }
  const std::string value = b.unique.empty() ? b.handle : b.unique;
  b.request_in_flight = true;
  const std::string handle = b.handle;
  view_.Get(
      "queue/" + ApiJson(kTreeQueue),
      [this, handle, value, attempt](RestResult&& r) {
        Build* b = FindBuild(handle);
        if (b == nullptr) return;
        b->request_in_flight = false;
        if (!r.ok() || r.status() != 200) {
          if (attempt < 3) {
            SearchLostTrigger(*b, attempt + 1);
          } else {
            PutBack(*b, "trigger answer lost; the master cannot be searched", kShortBackoffMs);
          }
          return;
        }
        auto queue = ParseQueue(r.body());
        if (queue.ok()) {
          for (const QueueEntry& item : queue.value()) {
            auto it = item.parameters.find(settings_.unique_param);
            if (it != item.parameters.end() && it->second == value) {
              RH_LOG(
                  kNotice,
                  "jenkins master=%s handle=%s: found the lost trigger as queue item %lld; adopted",
                  settings_.name.c_str(), handle.c_str(), static_cast<long long>(item.id));
              b->queue_id = item.id;
              Move(*b, BuildTransition::kLostItemFound);
              b->queued_ms = clock_.MonotonicMs();
              b->next_poll_ms = b->queued_ms;
              Record(*b, Journal::State::kQueued);
              if (b->withdrawn) CancelQueued(*b);
              return;
            }
          }
        }
        b->request_in_flight = true;
        view_.Get(
            b->job_path + ApiJson(kTreeBuilds),
            [this, handle, value](RestResult&& r) {
              Build* b = FindBuild(handle);
              if (b == nullptr) return;
              b->request_in_flight = false;
              if (r.ok() && r.status() == 200) {
                auto builds = ParseBuilds(r.body());
                if (builds.ok()) {
                  for (const BuildInfo& info : builds.value()) {
                    auto it = info.parameters.find(settings_.unique_param);
                    if (it != info.parameters.end() && it->second == value) {
                      RH_LOG(kNotice,
                             "jenkins master=%s handle=%s: found the lost trigger as build #%lld; "
                             "adopted",
                             settings_.name.c_str(), handle.c_str(),
                             static_cast<long long>(info.number));
                      b->queue_id = info.queue_id;
                      OnStarted(*b, info.number, info.url);
                      return;
                    }
                  }
                }
              }
              PutBack(*b, "trigger answer lost and no such item or build", 0);
            },
            ReplySize::kList);
      },
      ReplySize::kList);
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

// ---- started builds (R9)

void BuildTracker::OnStarted(Build& b, int64_t number, const std::string& url) {
  b.number = number;
  b.url = url;
  b.build_path = rest_.RelativePath(url);
  if (b.build_path.empty()) b.build_path = b.job_path + std::to_string(number) + "/";
  b.started_ms = clock_.MonotonicMs();
  b.not_found = 0;
  Record(b, Journal::State::kStarted);
  if (b.withdrawn) {
    AbortBuild(b);
    return;
  }
  Move(b, b.state == BuildState::kTriggering ? BuildTransition::kLostBuildFound
                                             : BuildTransition::kItemStarted);
  b.poll_interval_ms = settings_.poll_build_ms;
  RH_LOG(kInfo, "jenkins master=%s handle=%s: %s #%" PRId64 " started", settings_.name.c_str(),
         b.handle.c_str(), b.full_name.c_str(), number);
  // Pinned: the node is known, so ask it at once which executor took the build (Q5), before
  // a short build can end and leave no trace of it.
  if (!b.unpinned && settings_.pin_mode != PinMode::kLabelOnly) {
    b.request_in_flight = true;
    const std::string handle = b.handle;
    view_.Get(ComputerPath(b.node) + ApiJson(kTreeComputer), [this, handle](RestResult&& r) {
      Build* b = FindBuild(handle);
      if (b == nullptr) return;
      b->request_in_flight = false;
      if (r.ok() && r.status() == 200) {
        auto computer = ParseComputer(r.body());
        if (computer.ok()) {
          for (const ExecutorInfo& e : computer.value().executors) {
            if (!b->url.empty() && e.build_url == b->url) b->executor = e.number;
          }
        }
      }
      if (b->state == BuildState::kStarted) PollBuild(*b);
    });
    return;
  }
  PollBuild(b);
}

void BuildTracker::PollBuild(Build& b) {
  b.request_in_flight = true;
  const std::string handle = b.handle;
  view_.Get(b.build_path + ApiJson(kTreeBuild),
            [this, handle](RestResult&& r) { OnBuild(handle, std::move(r)); });
}

void BuildTracker::OnBuild(const std::string& handle, RestResult&& r) {
  Build* b = FindBuild(handle);
  if (b == nullptr) return;
  b->request_in_flight = false;
  const int64_t now = clock_.MonotonicMs();
  b->next_poll_ms = now + (b->start_sent ? b->poll_interval_ms : settings_.poll_queue_item_ms);
  if (!r.ok() || r.status() >= 500) return;
  if (r.status() != 200) {
    RH_LOG(kWarning, "jenkins master=%s handle=%s: build %s answered %d", settings_.name.c_str(),
           handle.c_str(), b->url.c_str(), r.status());
    return;
  }
  auto parsed = ParseBuild(r.body());
  if (!parsed.ok()) {
    RH_LOG(kWarning, "jenkins master=%s handle=%s: build: %s", settings_.name.c_str(),
           handle.c_str(), parsed.status().message().c_str());
    return;
  }
  const BuildInfo& info = parsed.value();
  if (b->state == BuildState::kFinishing) return;  // waiting for the node to go offline
  if (b->withdrawn && b->state == BuildState::kStarted) {
    if (info.building) {
      AbortBuild(*b);
    } else {
      view_.ExecutorFreed(b->url);
      Forget(handle);  // over anyway; nobody is told
    }
    return;
  }
  if (b->state == BuildState::kAborting) {
    if (!info.building) {  // aborted (or ended): nothing is reported (§1.9)
      view_.ExecutorFreed(b->url);
      Forget(handle);
    }
    return;
  }
  if (!b->start_sent) {
    IdentifyExecutorAndStart(*b, info);
    if (Build* started = FindBuild(handle); started != nullptr && started->start_sent) {
      ExpectEnd(*started, info);
    }
    return;
  }
  if (b->poll_interval_ms < settings_.poll_build_max_ms) {
    b->poll_interval_ms =
        std::min(settings_.poll_build_max_ms, b->poll_interval_ms + b->poll_interval_ms / 2);
  }
  if (!info.building && info.result) {
    EndWithResult(*b, *info.result);
    return;
  }
  ExpectEnd(*b, info);
}

void BuildTracker::ExpectEnd(Build& b, const BuildInfo& info) {
  // Read a little after the estimate: Jenkins records the result as the build's last step.
  constexpr int64_t kAfterEstimateMs = 50;
  if (!info.building || info.timestamp <= 0 || info.estimated_duration <= 0) return;
  const int64_t left = info.timestamp + info.estimated_duration - clock_.UnixMicros() / 1000;
  if (left < 0) return;  // overdue: the regular polls go on
  const int64_t due = clock_.MonotonicMs() + left + kAfterEstimateMs;
  if (due >= b.next_poll_ms) return;
  b.next_poll_ms = due;
  host_.TickBy(due);
}

// Where the build runs (§4.8 Q5): the node from builtOn (classic builds) or the pin; the
// executor from the last computers snapshot, else from R11 of that node. Then steps 1-2 of §1.5,
// and the ending if the build is already over (a build that started and ended between two polls
// still produces all four packets).
void BuildTracker::IdentifyExecutorAndStart(Build& b, const BuildInfo& info) {
  std::string node;
  bool node_known = false;
  if (info.built_on) {
    node = info.built_on->empty() ? view_.BuiltinName() : *info.built_on;
    node_known = true;
  } else if (settings_.pin_mode != PinMode::kLabelOnly && !b.unpinned) {
    node = b.node;
    node_known = true;
  }
  const std::string url = !info.url.empty() ? info.url : b.url;
  int executor = node == b.node ? b.executor : -1;  // found by OnStarted
  for (const MasterView::Node& n : view_.nodes()) {
    if (n.info.name != node) continue;
    for (const ExecutorInfo& e : n.info.executors) {
      if (executor < 0 && !url.empty() && e.build_url == url) executor = e.number;
    }
  }
  if (!node_known || executor >= 0) {
    StartAndMaybeEnd(b, info, node_known ? node : std::string(), executor);
    return;
  }
  b.request_in_flight = true;
  const std::string handle = b.handle;
  view_.Get(ComputerPath(node) + ApiJson(kTreeComputer),
            [this, handle, info, node, url](RestResult&& r) {
              Build* b = FindBuild(handle);
              if (b == nullptr) return;
              b->request_in_flight = false;
              int executor = -1;
              if (r.ok() && r.status() == 200) {
                auto computer = ParseComputer(r.body());
                if (computer.ok()) {
                  for (const ExecutorInfo& e : computer.value().executors) {
                    if (!url.empty() && e.build_url == url) executor = e.number;
                  }
                }
              }
              if (executor < 0) {
                // Already over: Jenkins keeps no record of the executor (§4.8 Q5: a free index of
                // the node is reported, see ChooseWorkerIndex).
                RH_LOG(kInfo,
                       "jenkins master=%s handle=%s: %s ended before its executor on %s was seen; "
                       "reporting a free executor index",
                       settings_.name.c_str(), handle.c_str(), url.c_str(), node.c_str());
              }
              StartAndMaybeEnd(*b, info, node, executor);
            });
}

void BuildTracker::StartAndMaybeEnd(Build& b, const BuildInfo& info, const std::string& node,
                                    int executor) {
  int index = -1;
  if (!node.empty()) {
    if (executor >= 0) b.executor = executor;
    index = ChooseWorkerIndex(b, node, executor);
    if (index < 0) {
      // Another build the client still sees running holds the name: its end is reported first,
      // then this start (the next poll of this build, or at once by ResumeDeferredStarts).
      const int64_t now = clock_.MonotonicMs();
      if (b.start_deferred_ms == 0) b.start_deferred_ms = now;
      b.next_poll_ms = now + settings_.poll_queue_item_ms;
      return;
    }
    b.start_deferred_ms = 0;
  }
  StartInfo& s = b.start;
  s.name = settings_.function_naming == FunctionNaming::kFull ? b.full_name : ShortName(b);
  s.number = b.number;
  s.manager = settings_.manager_name;
  s.url = !info.url.empty() ? info.url : b.url;
  if (!node.empty()) {
    b.worker_index = index;
    s.worker = view_.WorkerName(node, index);
    s.node_known = true;
    s.node_name = view_.IsBuiltinNode(node) ? "" : node;
    for (const MasterView::Node& n : view_.nodes()) {
      if (n.info.name == node) s.node_labels.assign(n.labels.begin(), n.labels.end());
    }
    b.node = node;
  } else {
    s.worker = settings_.manager_name + "_flyweight";
  }
  s.emit_worker_fields = settings_.emit_worker_fields;
  s.worker_hostname = node;
  s.worker_version = rest_.jenkins_version();
  if (b.offline_requested && !node.empty()) {
    taints_.Taint(node, b.handle);  // O2 for label-only builds; already done for pinned ones
    if (!b.offline_on_complete) taints_.TakeOffline(node);  // O3 on-start
  }
  SendWork(b, PacketType::kWorkData, StartJson(s));
  const int64_t elapsed =
      info.timestamp > 0 ? std::max<int64_t>(0, clock_.UnixMicros() / 1000 - info.timestamp) : 0;
  std::string status = std::to_string(elapsed);
  status.push_back('\0');
  status += std::to_string(info.estimated_duration >= 0 ? info.estimated_duration : int64_t{-1});
  SendWork(b, PacketType::kWorkStatus, status);
  b.start_sent = true;
  if (!info.building && info.result) EndWithResult(b, *info.result);
}

// Truthful worker names: the start JSON's `<node>_exec-<i>` of two builds whose reported lives
// (start packet to ending packet, as the client sees them) overlap are never the same.
//   - The index Jenkins showed (`seen`) is used when no other build is reported there.
//   - If one is and its own index was seen too, it really ran there, so it has ended in Jenkins
//     and only its end report is late: that build is read now and this start waits for it (-1).
//   - Otherwise (the executor is unknown, or the holder's index was itself a choice) a free index
//     is reported: one no build the client still sees running holds, idle in the last snapshot
//     if possible; none free: wait as above for the next end report.
//   - A start that waited longer than poll.build_max_s is reported anyway (logged): the names
//     are then no longer guaranteed apart, but the client is not kept waiting for ever.
int BuildTracker::ChooseWorkerIndex(const Build& b, const std::string& node, int seen) {
  if (b.worker_index >= 0 && b.node == node) return b.worker_index;  // sent again (J8)
  std::map<int, Build*> held;  // index -> the build reported there, its end not reported yet
  for (auto& [handle, other] : builds_) {
    if (other.get() != &b && other->start_sent && other->holder != nullptr &&
        other->worker_index >= 0 && other->node == node) {
      held[other->worker_index] = other.get();
    }
  }
  if (seen >= 0) {
    auto it = held.find(seen);
    if (it == held.end()) return seen;
    if (it->second->executor == seen) {
      if (!WaitedTooLong(b)) {
        HurryPoll(*it->second);
        return -1;
      }
      return seen;
    }
  }
  const MasterView::Node* n = view_.FindNode(node);
  int fallback = -1;
  if (n != nullptr) {
    for (const ExecutorInfo& e : n->info.executors) {
      if (held.count(e.number) != 0) continue;
      if (e.idle) return e.number;
      if (fallback < 0) fallback = e.number;
    }
  }
  if (fallback >= 0) return fallback;
  if (n == nullptr) {  // not in the snapshot any more: any index nobody holds
    int i = 0;
    while (held.count(i) != 0) ++i;
    return i;
  }
  if (!WaitedTooLong(b)) {
    for (auto& [index, other] : held) HurryPoll(*other);
    return -1;
  }
  return seen >= 0 ? seen : 0;
}

bool BuildTracker::WaitedTooLong(const Build& b) const {
  if (b.start_deferred_ms == 0 ||
      clock_.MonotonicMs() - b.start_deferred_ms <= settings_.poll_build_max_ms) {
    return false;
  }
  RH_LOG(kWarning,
         "jenkins master=%s handle=%s: the ends of the builds on %s's executors were not "
         "seen within %lld ms; reporting the start anyway",
         settings_.name.c_str(), b.handle.c_str(), b.node.c_str(),
         static_cast<long long>(settings_.poll_build_max_ms));
  return true;
}

// Reads a started build now (its end is probably due) rather than at its next poll.
void BuildTracker::HurryPoll(Build& b) {
  if (b.state != BuildState::kStarted) return;
  if (b.request_in_flight) {
    b.next_poll_ms = std::min(b.next_poll_ms, clock_.MonotonicMs());
    return;
  }
  PollBuild(b);
}

// A worker name of `node` was freed (its build's end was reported): starts that waited for one
// are tried again now.
void BuildTracker::ResumeDeferredStarts(const std::string& node) {
  std::vector<std::string> waiting;
  for (const auto& [handle, b] : builds_) {
    if (b->start_deferred_ms != 0 && b->node == node) waiting.push_back(handle);
  }
  for (const std::string& handle : waiting) {
    if (Build* b = FindBuild(handle)) HurryPoll(*b);
  }
}

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
