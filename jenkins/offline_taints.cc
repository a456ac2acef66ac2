// Offline taints (a part of Adapter, see adapter.cc): OFFLINE_NODE_WHEN_COMPLETE (doc/jenkins.md
// §4.9). A build that asks for it taints its node: no capacity there until the node has been seen
// offline and online again (O1, O2). The node is taken offline with W6 when the build starts
// (`on-start`) or after it ends and before its final packets (`on-complete`), retried with back-off
// while the taint holds (O3, O4).

#include <algorithm>

#include "jenkins/adapter_internal.h"
#include "protocol/http.h"
#include "server/base/log.h"

namespace roundhouse::jenkins {

const Adapter::Node* Adapter::FindNode(const std::string& name) const {
  for (const Node& n : nodes_) {
    if (n.info.name == name) return &n;
  }
  return nullptr;
}

void Adapter::Taint(const std::string& node, const std::string& handle) {
  if (taints_.count(node) != 0) return;
  NodeTaint t;
  t.handle = handle;
  taints_[node] = t;
  RH_LOG(kInfo,
         "jenkins master=%s handle=%s: node %s reserved until it has gone offline and come back "
         "(OFFLINE_NODE_WHEN_COMPLETE)",
         settings_.name.c_str(), handle.c_str(), node.c_str());
}

void Adapter::TakeNodeOffline(const std::string& node) {
  auto it = taints_.find(node);
  if (it == taints_.end()) {
    NodeTaint t;
    it = taints_.emplace(node, t).first;
  }
  NodeTaint& t = it->second;
  if (t.offline_applied || t.request_in_flight) return;
  t.request_in_flight = true;
  Post(ComputerPath(node) + "changeOfflineCause?offlineMessage=" +
           protocol::http::FormEncodeComponent(settings_.offline_message),
       {}, [this, node](RestResult&& r) {
         auto it = taints_.find(node);
         if (it == taints_.end()) return;
         NodeTaint& t = it->second;
         t.request_in_flight = false;
         const int status = r.status();
         if (r.ok() && (status == 302 || status == 200 || status == 303 || status == 404)) {
           t.offline_applied = true;  // 404: the node is gone, which is as good (O4)
           RH_LOG(kInfo, "jenkins master=%s: node %s taken offline%s", settings_.name.c_str(),
                  node.c_str(), status == 404 ? " (it no longer exists)" : "");
           FinishPending();
           return;
         }
         if (r.ok() && status == 403) {
           RH_LOG(kError,
                  "jenkins master=%s: taking node %s offline answered 403: the API user needs "
                  "Computer/Disconnect",
                  settings_.name.c_str(), node.c_str());
         }
         // O4: retry with back-off; the taint holds meanwhile.
         t.retry_ms = std::min<int64_t>(t.retry_ms == 0 ? 1000 : t.retry_ms * 2, 60000);
         t.next_try_ms = clock_.MonotonicMs() + t.retry_ms;
       });
}

// Builds waiting (on-complete) for their node to go offline, once it has or the wait is over.
void Adapter::FinishPending() {
  const int64_t now = clock_.MonotonicMs();
  std::vector<std::string> ready;
  for (const auto& [handle, b] : builds_) {
    if (!b->finishing) continue;
    auto t = taints_.find(b->node);
    const bool applied = t == taints_.end() || t->second.offline_applied;
    if (applied || now >= b->finish_deadline_ms) ready.push_back(handle);
  }
  for (const std::string& handle : ready) {
    Build* b = FindBuild(handle);
    if (b == nullptr) continue;
    b->offline_requested = false;  // EndWithResult now sends the packets
    const std::string result = b->final_result;
    EndWithResult(*b, result);
  }
}

// Offline actions still owed, and builds waiting on them (called per tick).
void Adapter::ServiceTaints() {
  const int64_t now = clock_.MonotonicMs();
  for (auto& [node, t] : taints_) {
    if (!t.offline_applied && !t.request_in_flight && t.next_try_ms != 0 && t.next_try_ms <= now) {
      TakeNodeOffline(node);
    }
  }
  FinishPending();
}

// Per computers snapshot: a taint lasts until the node has been seen offline and then online
// again (or is gone), and while a build of ours still uses the node.
void Adapter::UpdateTaints() {
  for (auto it = taints_.begin(); it != taints_.end();) {
    const Node* n = FindNode(it->first);
    bool in_use = false;
    for (const auto& [handle, build] : builds_) in_use |= build->node == it->first;
    if (n != nullptr && n->info.offline) it->second.seen_offline = true;
    const bool back = n != nullptr && !n->info.offline && it->second.seen_offline;
    if (!in_use && it->second.offline_applied && (n == nullptr || back)) {
      RH_LOG(kInfo, "jenkins master=%s: node %s %s; it takes builds again", settings_.name.c_str(),
             it->first.c_str(), n == nullptr ? "was removed" : "is back online");
      it = taints_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace roundhouse::jenkins
