// The master's nodes and capacity (see master_view.h): the computers snapshot (R4) applied, node
// modes (R5, doc/jenkins.md §1.3), executors freed by our builds' ends (turnaround), contention
// cooldowns (§4.8 Q2), free capacity (§4.4 D2, D5), executor pseudo-worker names and the built-in
// node. The polls themselves are in master_view.cc.

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/log.h"
#include "jenkins/master_view.h"

namespace roundhouse::jenkins {
namespace {

bool IsBuiltinName(std::string_view name) { return name == "built-in" || name == "master"; }

// How long a build URL seen over is remembered at most (ended_urls_), should no snapshot
// requested after its end arrive (master unreachable).
constexpr int64_t kEndedUrlTtlMs = 60000;

}  // namespace

// ---- node modes (R5)

void MasterView::PollNodeMode(const std::string& node) {
  if (!modes_in_flight_.insert(node).second) return;
  Get(LabelPath(node) + ApiJson(kTreeLabelNodes), [this, node](RestResult&& r) {
    modes_in_flight_.erase(node);
    if (!r.ok()) return;  // retried at the next computers snapshot
    std::string mode = "NORMAL";
    if (r.status() == 200) {
      auto parsed = ParseLabelNodes(r.body());
      if (parsed.ok()) {
        for (const LabelNode& n : parsed.value()) {
          const bool same = n.node_name == node || (IsBuiltinName(node) && n.node_name.empty());
          if (same) mode = n.mode;
        }
      }
    } else {
      RH_LOG(kInfo, "jenkins master=%s: node %s: mode lookup answered %d; assuming NORMAL",
             settings_.name.c_str(), node.c_str(), r.status());
    }
    node_modes_[node] = {mode, clock_.MonotonicMs()};
    for (Node& n : nodes_) {
      if (n.info.name == node) {
        n.mode_known = true;
        n.exclusive = mode == "EXCLUSIVE";
      }
    }
    Recompute();
    host_.RequestRound();
  });
}

// ---- applying the computers snapshot (R4)

void MasterView::ApplyComputers(std::vector<ComputerInfo> computers, int64_t requested_ms) {
  const int64_t now = clock_.MonotonicMs();
  std::map<std::string, int64_t> cooldowns;
  for (const Node& n : nodes_) cooldowns[n.info.name] = n.cooldown_until;
  nodes_.clear();
  // Our builds seen over since: a snapshot requested after that shows the truth from now on;
  // an older one may still show them running, and is corrected (ExecutorFreed).
  std::erase_if(ended_urls_, [&](const auto& ended) {
    return ended.second < requested_ms || now - ended.second > kEndedUrlTtlMs;
  });
  for (ComputerInfo& c : computers) {
    Node node;
    node.labels.insert(c.labels.begin(), c.labels.end());
    node.labels.insert(c.name);  // L(N) always has the self label
    for (ExecutorInfo& e : c.executors) {
      if (!e.idle && ended_urls_.count(e.build_url) != 0) {
        e.idle = true;
        e.build_url.clear();
      }
      node.idle += e.idle ? 1 : 0;
    }
    if (c.offline) node.idle = 0;
    auto mode = node_modes_.find(c.name);
    if (mode != node_modes_.end()) {
      node.mode_known = true;
      node.exclusive = mode->second.first == "EXCLUSIVE";
      if (now - mode->second.second > settings_.poll_node_modes_ms) PollNodeMode(c.name);
    } else {
      PollNodeMode(c.name);
    }
    auto cd = cooldowns.find(c.name);
    if (cd != cooldowns.end()) node.cooldown_until = cd->second;
    node.info = std::move(c);
    nodes_.push_back(std::move(node));
  }
  have_computers_ = true;
  last_computers_ms_ = now;
  builds_.ComputersApplied(requested_ms);
  Recompute();
  host_.RequestRound();
}

// ---- executors

void MasterView::ExecutorFreed(const std::string& url) {
  if (url.empty()) return;
  ended_urls_[url] = clock_.MonotonicMs();
  for (Node& n : nodes_) {
    for (ExecutorInfo& e : n.info.executors) {
      if (e.idle || e.build_url != url) continue;
      e.idle = true;
      e.build_url.clear();
      if (!n.info.offline) ++n.idle;
    }
  }
  host_.RequestRound();
}

std::string MasterView::WorkerName(const std::string& node, int executor) const {
  const std::string& base = IsBuiltinName(node) ? settings_.manager_name : node;
  return base + "_exec-" + std::to_string(executor);
}

// ---- capacity

int MasterView::FreeCapacity(const Node& node, int reservations) const {
  if (node.info.offline) return 0;
  if (node.cooldown_until > clock_.MonotonicMs()) return 0;
  if (taints_.Tainted(node.info.name)) return 0;  // §4.9 O1
  return std::max(0, node.idle - reservations);
}

const MasterView::Node* MasterView::FindNode(const std::string& name) const {
  for (const Node& n : nodes_) {
    if (n.info.name == name) return &n;
  }
  return nullptr;
}

// ---- nodes

void MasterView::Cooldown(const std::string& node, int64_t until_ms) {
  for (Node& n : nodes_) {
    if (n.info.name == node) n.cooldown_until = until_ms;
  }
}

std::string MasterView::BuiltinName() const {
  return UsesLegacyBuiltinName(rest_.jenkins_version()) ? "master" : "built-in";
}

bool MasterView::IsBuiltinNode(const std::string& node) const {
  for (const Node& n : nodes_) {
    if (n.info.name == node) return n.info.builtin;
  }
  return node == BuiltinName();
}

}  // namespace roundhouse::jenkins
