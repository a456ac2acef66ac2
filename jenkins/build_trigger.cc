// The BuildTracker's claim and trigger (see build_tracker.h): parameters (§4.4-4.6), the
// trigger and its outcomes (§4.7), and the search for a trigger whose answer was lost.

#include <cinttypes>
#include <utility>

#include "base/log.h"
#include "jenkins/build_tracker.h"

namespace roundhouse::jenkins {

namespace {

// Back-off after trigger outcomes that will likely repeat at once (§4.7).
constexpr int64_t kShortBackoffMs = 2000;
constexpr int64_t kLongBackoffMs = 10000;

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

}  // namespace

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

// §4.7: the claimed build's trigger, in four steps: the node reservation OFFLINE_NODE_WHEN_COMPLETE
// needs, the parameters the adapter owns, the client's parameters filtered by the job's, and the
// journalled POST.
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
  if (arguments.value().offline_node_when_complete && !ReserveForOffline(b, job)) return;
  FilteredParameters params = FilterParameters(arguments.value(), job, OwnParameters(b, job));
  if (!AcceptDropped(b, job, params)) return;
  // P6: jobs without parameter definitions use W2.
  std::string path =
      b.job_path + (job.parameters.empty() ? "build?delay=0sec" : "buildWithParameters?delay=0sec");
  if (job.parameters.empty()) params.sent.clear();
  PostTrigger(b, std::move(path), std::move(params.sent));
}

// §4.5: a flyweight job (Pipeline, matrix) is pinned only when flyweight_labels names it.
bool BuildTracker::Pinnable(const JobInfo& job) const {
  return settings_.pin_mode != PinMode::kLabelOnly &&
         (!job.flyweight() || settings_.flyweight_labels.count(job.full_name) != 0);
}

// OFFLINE_NODE_WHEN_COMPLETE (§4.9): the timing, and for pinned builds (O1) a node that nobody
// else uses, reserved whole by the taint. False: the build went back to the queue.
bool BuildTracker::ReserveForOffline(Build& b, const JobInfo& job) {
  b.offline_requested = true;
  b.offline_on_complete = settings_.offline_timing
                              ? *settings_.offline_timing == OfflineTiming::kOnComplete
                              : job.flyweight();
  if (!Pinnable(job) || job.FindParameter(settings_.pin_parameter) == nullptr) return true;
  const MasterView::Node* node = view_.FindNode(b.node);
  const bool whole = node != nullptr && !taints_.Tainted(b.node) &&
                     node->idle == static_cast<int>(node->info.executors.size()) &&
                     ReservedBuildsOn(b.node) == 1;  // this build only
  if (!whole) {
    PutBack(b, "OFFLINE_NODE_WHEN_COMPLETE needs a node with every executor free",
            settings_.poll_computers_ms);
    return false;
  }
  taints_.Taint(b.node, b.handle);
  return true;
}

// The parameters the adapter sets (§1.4, §4.5, §4.6 P5): the pin, when the job has the pin
// parameter, and the unique. Sets `b.unpinned`.
std::vector<std::pair<std::string, std::string>> BuildTracker::OwnParameters(Build& b,
                                                                             const JobInfo& job) {
  std::vector<std::pair<std::string, std::string>> overrides;
  b.unpinned = true;
  if (Pinnable(job)) {
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
  return overrides;
}

// §4.6: parameters the job does not define are dropped (logged once an hour per job), or end the
// build under param_policy=strict; replaced client values are logged. False: the build ended.
bool BuildTracker::AcceptDropped(Build& b, const JobInfo& job, const FilteredParameters& params) {
  if (!params.dropped.empty()) {
    dropped_parameters_ += params.dropped.size();
    if (settings_.param_policy == ParamPolicy::kStrict) {
      EndWithError(b,
                   "Job " + job.full_name + " does not define parameters: " + Join(params.dropped));
      return false;
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
  return true;
}

// J1: the intent is committed to the journal before the POST it authorises.
void BuildTracker::PostTrigger(Build& b, std::string path,
                               std::vector<std::pair<std::string, std::string>> form) {
  Move(b, BuildTransition::kTrigger);
  b.request_in_flight = true;
  const std::string handle = b.handle;
  Record(b, Journal::State::kTriggering,
         [this, handle, path = std::move(path), form = std::move(form)](Status committed) mutable {
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

}  // namespace roundhouse::jenkins
