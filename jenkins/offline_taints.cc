// OfflineTaints: see offline_taints.h.

#include "jenkins/offline_taints.h"

#include <algorithm>

#include "base/log.h"
#include "jenkins/rest_model.h"
#include "protocol/http.h"

namespace roundhouse::jenkins {

void OfflineTaints::Taint(const std::string& node, const std::string& handle) {
  if (taints_.count(node) != 0) return;
  Entry t;
  t.handle = handle;
  taints_[node] = t;
  RH_LOG(kInfo,
         "jenkins master=%s handle=%s: node %s reserved until it has gone offline and come back "
         "(OFFLINE_NODE_WHEN_COMPLETE)",
         settings_.name.c_str(), handle.c_str(), node.c_str());
}

void OfflineTaints::TakeOffline(const std::string& node) {
  auto it = taints_.find(node);
  if (it == taints_.end()) it = taints_.emplace(node, Entry{}).first;
  Entry& t = it->second;
  if (t.offline_applied || t.request_in_flight) return;
  t.request_in_flight = true;
  host_.Post(ComputerPath(node) + "changeOfflineCause?offlineMessage=" +
                 protocol::http::FormEncodeComponent(settings_.offline_message),
             {}, [this, node](RestResult&& r) {
               auto it = taints_.find(node);
               if (it == taints_.end()) return;
               Entry& t = it->second;
               t.request_in_flight = false;
               const int status = r.status();
               if (r.ok() && (status == 302 || status == 200 || status == 303 || status == 404)) {
                 t.offline_applied = true;  // 404: the node is gone, which is as good (O4)
                 RH_LOG(kInfo, "jenkins master=%s: node %s taken offline%s", settings_.name.c_str(),
                        node.c_str(), status == 404 ? " (it no longer exists)" : "");
                 host_.NodeTakenOffline();
                 return;
               }
               if (r.ok() && status == 403) {
                 RH_LOG(kError,
                        "jenkins master=%s: taking node %s offline answered 403: the API user "
                        "needs Computer/Disconnect",
                        settings_.name.c_str(), node.c_str());
               }
               // O4: retry with back-off; the taint holds meanwhile.
               t.retry_ms = std::min<int64_t>(t.retry_ms == 0 ? 1000 : t.retry_ms * 2, 60000);
               t.next_try_ms = clock_.MonotonicMs() + t.retry_ms;
             });
}

void OfflineTaints::Service() {
  const int64_t now = clock_.MonotonicMs();
  std::vector<std::string> due;
  for (const auto& [node, t] : taints_) {
    if (!t.offline_applied && !t.request_in_flight && t.next_try_ms != 0 && t.next_try_ms <= now) {
      due.push_back(node);
    }
  }
  for (const std::string& node : due) TakeOffline(node);
}

void OfflineTaints::Update(const std::function<NodeSeen(const std::string&)>& seen,
                           const std::function<bool(const std::string&)>& in_use) {
  for (auto it = taints_.begin(); it != taints_.end();) {
    const NodeSeen s = seen(it->first);
    if (s == NodeSeen::kOffline) it->second.seen_offline = true;
    const bool back = s == NodeSeen::kOnline && it->second.seen_offline;
    if (!in_use(it->first) && it->second.offline_applied && (s == NodeSeen::kGone || back)) {
      RH_LOG(kInfo, "jenkins master=%s: node %s %s; it takes builds again", settings_.name.c_str(),
             it->first.c_str(), s == NodeSeen::kGone ? "was removed" : "is back online");
      it = taints_.erase(it);
    } else {
      ++it;
    }
  }
}

void OfflineTaints::ForgetUnstarted(const std::string& node, const std::string& handle) {
  auto it = taints_.find(node);
  if (it != taints_.end() && it->second.handle == handle && !it->second.offline_applied &&
      !it->second.request_in_flight) {
    taints_.erase(it);
  }
}

bool OfflineTaints::OfflineApplied(const std::string& node) const {
  auto it = taints_.find(node);
  return it == taints_.end() || it->second.offline_applied;
}

}  // namespace roundhouse::jenkins
