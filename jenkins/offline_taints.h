// OfflineTaints: OFFLINE_NODE_WHEN_COMPLETE for one master (doc/jenkins.md §4.9). A build that
// asks for it taints its node: the node has no capacity until it has been seen offline and then
// online again, or is gone (O1, O2), and while a build of ours still uses it. The node is taken
// offline with W6 (`changeOfflineCause`), retried with back-off while the taint holds (O3, O4).
//
// Ownership: owned by its Adapter, which is its Host. Callbacks of its requests never run after
// the adapter began closing (the adapter's REST calls drop them), so they may capture `this`.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "jenkins/master_settings.h"
#include "jenkins/transport.h"

namespace roundhouse::jenkins {

class OfflineTaints {
 public:
  class Host {
   public:
    virtual ~Host() = default;
    virtual void Post(std::string path, std::vector<std::pair<std::string, std::string>> form,
                      std::function<void(RestResult&&)> done) = 0;
    // A node's W6 was confirmed: builds waiting for it may send their final packets.
    virtual void NodeTakenOffline() = 0;
  };

  // What the latest computers snapshot says of a node: unknown (gone), or offline or not.
  enum class NodeSeen { kGone, kOffline, kOnline };

  // `settings` outlives the taints (their adapter owns both).
  OfflineTaints(Host& host, Clock& clock, const MasterSettings& settings)
      : host_(host), clock_(clock), settings_(settings) {}
  OfflineTaints(const OfflineTaints&) = delete;
  OfflineTaints& operator=(const OfflineTaints&) = delete;

  // O1/O2: `node` reserved for the build `handle` (a node already tainted keeps its taint).
  void Taint(const std::string& node, const std::string& handle);
  // O3: W6 for `node` (tainting it if it is not yet), unless applied or in flight.
  void TakeOffline(const std::string& node);
  // O4: W6 retries that are due.
  void Service();
  // Per computers snapshot: ends the taints whose node came back (or is gone) and is not in
  // use. `seen` and `in_use` answer for one node name.
  void Update(const std::function<NodeSeen(const std::string&)>& seen,
              const std::function<bool(const std::string&)>& in_use);
  // The build `handle` ended before it started: a taint taken for it that has sent nothing
  // protects nothing and ends.
  void ForgetUnstarted(const std::string& node, const std::string& handle);

  bool Tainted(const std::string& node) const { return taints_.count(node) != 0; }
  // No taint, or its W6 is confirmed (the node is offline or gone).
  bool OfflineApplied(const std::string& node) const;

 private:
  struct Entry {
    std::string handle;            // the build it was taken for
    bool offline_applied = false;  // W6 confirmed (or the node is gone)
    bool request_in_flight = false;
    bool seen_offline = false;
    int64_t retry_ms = 0;     // current back-off
    int64_t next_try_ms = 0;  // monotonic; 0 = no retry scheduled
  };

  Host& host_;
  Clock& clock_;
  const MasterSettings& settings_;
  std::map<std::string, Entry> taints_;  // by node name
};

}  // namespace roundhouse::jenkins
