// The BuildTracker's started builds (see build_tracker.h): following a build with R9 (§4.8), which
// executor runs it (Q5) and the truthful worker name reported for it, and the start packets of
// §1.5.

#include <algorithm>
#include <cinttypes>
#include <map>
#include <utility>

#include "base/log.h"
#include "jenkins/build_tracker.h"

namespace roundhouse::jenkins {

using protocol::PacketType;

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

}  // namespace roundhouse::jenkins
