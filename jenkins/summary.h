// A read-only snapshot of every registered Jenkins master, for the status API, the metrics and
// the dashboard and for admin `jenkins list|show`. Produced by jenkins::Hub::Summaries();
// plain values, so consumers need no other jenkins/ header.
//
// Executor counts are computed once, by CountExecutors when the summary is made, and every view
// (admin `jenkins list|show`, /api/jenkins, /metrics, the dashboard) shows those fields rather
// than counting again: a user sees one number.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace roundhouse::jenkins {

struct ExecutorSummary {
  int number = 0;
  std::string worker;     // pseudo-worker name, e.g. "u1_exec-0"
  bool idle = true;       // as Jenkins last reported it
  std::string build_url;  // the build on it, if any (ours or foreign)
};

// One rule for every view. busy + idle + offline == total.
struct ExecutorCounts {
  int total = 0;    // every executor of every node in the adapter's view
  int busy = 0;     // running a build (ours or foreign), whatever the node's state
  int idle = 0;     // not running a build, on a node that is online: could take one
  int offline = 0;  // not running a build, on a node that is offline (disconnected or
                    // temporarily offline): cannot take one
};

struct NodeSummary {
  std::string name;  // "built-in" / "master" for the built-in node
  std::string mode;  // "NORMAL" / "EXCLUSIVE"
  bool offline = false;
  bool temporarily_offline = false;
  std::vector<std::string> labels;
  int free = 0;          // idle executors minus our reservations (0 when not dispatchable)
  int reservations = 0;  // claimed by us, not yet seen started
  std::vector<ExecutorSummary> executors;
  ExecutorCounts counts;  // CountExecutors(*this)
};

ExecutorCounts CountExecutors(const NodeSummary& node);

struct BuildSummary {  // one Gearman job the adapter is handling
  std::string handle;
  std::string unique;
  std::string function;
  std::string job;    // Jenkins fullName
  std::string state;  // CLAIMED, TRIGGERING, QUEUED, CANCELLING, STARTED, ABORTING, FINISHED
  int64_t queue_id = 0;
  int64_t number = 0;    // build number once known
  std::string url;       // build URL once known, else the queue item URL
  std::string node;      // chosen or actual node
  int64_t age_ms = 0;    // since the claim
};

struct MasterSummary {
  std::string name;
  std::string manager;
  std::string base_url;  // without credentials
  std::string health;    // "HEALTHY", "SUSPECT", "DOWN"
  // Why the last request failed (e.g. "TLS: the server's certificate has expired"), while the
  // master is not HEALTHY; empty once it is.
  std::string last_error;
  bool tls_verify = true;  // false: https without certificate checks (warned about)
  bool enabled = true;
  bool quieting_down = false;
  std::string version;      // X-Jenkins
  int64_t last_poll_age_ms = -1;  // since the last successful computers poll; -1 never
  int functions = 0;        // functions this master lists
  // Counters since start.
  uint64_t requests = 0;
  uint64_t request_errors = 0;  // transport errors and 5xx
  uint64_t dispatches = 0;      // jobs claimed
  uint64_t requeues = 0;        // jobs put back (any cause)
  uint64_t dropped_parameters = 0;
  std::vector<NodeSummary> nodes;
  ExecutorCounts executors;  // sum of the nodes' counts
  std::vector<BuildSummary> builds;
};

// Fills every node's `counts` and the master's `executors` from the executor lists.
void CountExecutors(MasterSummary& master);

}  // namespace roundhouse::jenkins
