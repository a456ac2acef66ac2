// The Adapter's private data types, shared by adapter.cc (view, functions, workers),
// adapter_builds.cc (claim, trigger, following, cancel) and adapter_meta.cc (manager worker).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "jenkins/adapter.h"
#include "jenkins/job_contract.h"
#include "jenkins/label_expr.h"
#include "jenkins/rest_model.h"

namespace roundhouse::jenkins {

// One node as the latest computers snapshot (R4) and mode lookup (R5) show it.
struct Adapter::Node {
  ComputerInfo info;
  LabelSet labels;
  // `build:*` names this node's executors register (empty while offline or mode unknown).
  std::vector<std::string> functions;
  bool mode_known = false;
  bool exclusive = false;
  int idle = 0;                 // idle executors in the snapshot
  int64_t cooldown_until = 0;   // contention cooldown (§4.8 Q2), monotonic ms
};

// A node reserved whole for an OFFLINE_NODE_WHEN_COMPLETE build (§4.9 O1): no capacity until it
// has been seen offline and then online again.
struct Adapter::NodeTaint {
  std::string handle;            // the build it was taken for
  bool offline_applied = false;  // W6 confirmed (or the node is gone)
  bool request_in_flight = false;
  bool seen_offline = false;
  int64_t retry_ms = 0;     // current back-off
  int64_t next_try_ms = 0;  // monotonic; 0 = no retry scheduled
};

// A function this master offers: which job it triggers.
struct Adapter::Route {
  std::string full_name;
};

// doc/jenkins.md §4.8 states of a build the adapter handles.
enum class Adapter::BuildState {
  kClaimed,     // grabbed, about to trigger
  kTriggering,  // POST in flight
  kQueued,      // Jenkins queue item known; polling R7
  kCancelling,  // W3 sent (queue-wait timeout or admin cancel); confirming with R7
  kStarted,     // WORK_DATA + WORK_STATUS sent; polling R9
  kAborting,    // withdrawn while started: W4 sent; confirming with R9, nothing reported
};

const char* BuildStateName(int state);

// The body of a WORK_* packet from a pseudo-worker: "HANDLE\0" + `body` (WORK_STATUS: body is
// "NUM\0DEN"); WORK_FAIL is the handle alone.
std::string WorkPayload(std::string_view handle, protocol::PacketType type, std::string_view body);

struct Adapter::Build {
  std::string handle;
  std::string unique;    // as submitted (may be empty)
  std::string function;
  std::string data;
  std::string full_name;  // Jenkins job
  std::string job_path;   // "job/a/job/b/"
  std::string node;       // node charged with the reservation (and pinned to, unless label-only)
  PseudoWorker* holder = nullptr;  // null once the broker no longer has the job (withdrawn)
  BuildState state = BuildState::kClaimed;
  bool reserved = true;   // may hold an executor of `node` (ReservationsByNode)
  bool withdrawn = false;  // admin cancel or abandoned: end silently
  bool request_in_flight = false;
  bool start_sent = false;      // WORK_DATA + WORK_STATUS of §1.5 steps 1-2 sent
  bool cancel_pending = false;  // withdrawn while a poll was in flight: W3 at the next tick
  bool awaiting_client = false;  // abandoned by its last client, kept for a resubmission (J8)
  bool unpinned = false;         // no pin parameter sent: Jenkins chose the node
  // The executor of `node` Jenkins showed running the build (snapshot or R11); -1 unknown.
  int executor = -1;
  // The index in the start JSON's `worker` (`<node>_exec-<i>`), set when the start is sent;
  // equals `executor` when that was known, else a free index (ChooseWorkerIndex). While the
  // client has not seen the build end, no other build is reported on the same index.
  int worker_index = -1;
  int64_t start_deferred_ms = 0;     // monotonic; the start waits for another build's end report
  bool offline_requested = false;    // OFFLINE_NODE_WHEN_COMPLETE (§4.9)
  bool offline_on_complete = false;  // else on-start
  bool finishing = false;            // result known, waiting for the node to go offline
  std::string final_result;
  int64_t finish_deadline_ms = 0;
  int64_t node_lost_ms = 0;     // when the node was seen disconnected under the build (M5)
  bool across_restart = false;  // started before a controller restart (M3)
  // Journal (§4.11).
  bool journaled = false;        // an entry exists (or is being written)
  bool recovering = false;       // from the journal, not reconciled yet
  JournalState recovered = JournalState::kTriggering;
  int64_t resume_until_ms = 0;   // J5 window for a foreground client to resubmit
  bool forget_orphan = false;    // orphan_policy = ignore
  std::string rebound_handle;    // resubmitted under this handle (Resume)
  int64_t claimed_ms = 0;       // monotonic
  int64_t queued_ms = 0;        // monotonic, when the queue item became known
  int64_t started_ms = 0;       // monotonic, when the start was observed
  int64_t next_poll_ms = 0;     // monotonic
  int64_t poll_interval_ms = 0;
  int64_t queue_id = 0;
  int64_t number = 0;
  std::string url;        // build URL
  std::string build_path;  // relative path of the build
  StartInfo start;
  int not_found = 0;      // lookups of a vanished queue item (R7 404 → R10), §4.8 Q4
};

}  // namespace roundhouse::jenkins
