// The Adapter's private data types, shared by its parts: adapter.cc (coordinator), master_view.cc
// (view, functions, workers, capacity), build_tracker.cc (claim, trigger, following, cancel),
// journal.cc, offline_taints.cc and manager_worker.cc.
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

// A function this master offers: which job it triggers.
struct Adapter::Route {
  std::string full_name;
};

// One Gearman job this master took, from its claim to the packet that ends it (or its put-back).
// Its step in §4.8 is `state` (build_state.h). start_sent, finishing, withdrawn, awaiting_client
// and recovering are conditions that cut across those steps; they are not in the table.
struct Adapter::Build {
  // ---- the Gearman job
  std::string handle;
  std::string unique;    // as submitted (may be empty)
  std::string function;
  std::string data;
  PseudoWorker* holder = nullptr;  // null once the broker no longer has the job (withdrawn)

  // ---- where it runs
  std::string full_name;  // Jenkins job
  std::string job_path;   // "job/a/job/b/"
  std::string node;       // node charged with the reservation (and pinned to, unless label-only)
  bool reserved = true;   // may hold an executor of `node` (ReservationsByNode)
  bool unpinned = false;  // no pin parameter sent: Jenkins chose the node
  // The executor of `node` Jenkins showed running the build (snapshot or R11); -1 unknown.
  int executor = -1;
  // The index in the start JSON's `worker` (`<node>_exec-<i>`), set when the start is sent;
  // equals `executor` when that was known, else a free index (ChooseWorkerIndex). While the
  // client has not seen the build end, no other build is reported on the same index.
  int worker_index = -1;

  // ---- the state machine (changed only by Adapter::Move) and its requests
  BuildState state = BuildState::kClaimed;
  bool request_in_flight = false;  // a poll or action of this build awaits its answer
  bool cancel_pending = false;     // withdrawn while a poll was in flight: W3 at the next tick
  int not_found = 0;               // lookups of a vanished queue item (R7 404 -> R10), §4.8 Q4
  int64_t claimed_ms = 0;          // monotonic
  int64_t queued_ms = 0;           // monotonic, when the queue item became known
  int64_t started_ms = 0;          // monotonic, when the start was observed
  int64_t next_poll_ms = 0;        // monotonic
  int64_t poll_interval_ms = 0;    // R9 interval, growing to poll.build_max_s
  int64_t queue_id = 0;
  int64_t number = 0;
  std::string url;         // build URL
  std::string build_path;  // relative path of the build

  // ---- what its client was told (§1.5)
  bool start_sent = false;        // WORK_DATA + WORK_STATUS of §1.5 steps 1-2 sent
  int64_t start_deferred_ms = 0;  // monotonic; the start waits for another build's end report
  StartInfo start;

  // ---- withdrawal (§1.9) and clients coming back (§4.11 J5, J8)
  bool withdrawn = false;        // admin cancel or abandoned: end silently
  bool awaiting_client = false;  // abandoned by its last client, kept for a resubmission (J8)
  // Until then a client may come back: J8 (awaiting_client) or J5 (read back from the journal).
  int64_t resume_until_ms = 0;

  // ---- OFFLINE_NODE_WHEN_COMPLETE (§4.9)
  bool offline_requested = false;
  bool offline_on_complete = false;  // else on-start
  bool finishing = false;            // result known, waiting for the node to go offline
  std::string final_result;
  int64_t finish_deadline_ms = 0;

  // ---- lost nodes and controller restarts (§4.10)
  int64_t node_lost_ms = 0;     // when the node was seen disconnected under the build (M5)
  bool across_restart = false;  // started before a controller restart (M3)

  // ---- the journal (§4.11)
  bool journaled = false;   // an entry exists (or is being written)
  bool recovering = false;  // read back from the journal, not reconciled yet
  JournalState recovered = JournalState::kTriggering;  // the entry's state, while recovering
  bool forget_orphan = false;  // J5 window over under orphan_policy = ignore: forget, not cancel
  std::string rebound_handle;  // a resubmission coalesced onto it under this handle (Resume)
};

}  // namespace roundhouse::jenkins
