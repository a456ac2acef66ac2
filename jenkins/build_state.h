// The state machine of one build the adapter handles (doc/jenkins.md §4.8): one enum of states,
// and every way from one state to another named as a BuildTransition. NextState is the whole
// table: a (state, transition) pair it does not list has no next state, and the adapter refuses
// it (BuildTracker::Move asserts, and in a release build logs it and leaves the state alone).
//
// The endings of §1.6 (result, error, fail), putting a job back and forgetting a withdrawn one
// are not states: they remove the build (BuildTracker::Forget), from any state.
//
// Pure: no I/O. Thread-safety: free functions on values.
#pragma once

#include <optional>

namespace roundhouse::jenkins {

enum class BuildState {
  kClaimed,     // grabbed, not triggered yet
  kRecovered,   // read back from the journal, not reconciled yet (§4.11)
  kTriggering,  // POST in flight, or its lost answer being searched for (§4.7)
  kQueued,      // Jenkins queue item known; polling R7
  kCancelDue,   // W3 to be sent (again) at the next tick: a request was in flight, or W3 failed
  kCancelling,  // W3 sent (queue-wait timeout or withdrawal); confirming with R7
  kStarted,     // the build exists in Jenkins; polling R9 (start packets sent once seen)
  kFinishing,   // result known; its packets wait for the node to go offline (§4.9 O3)
  kAborting,    // withdrawn once started: W4 sent; confirming with R9, nothing reported
};

// Named transitions. The failure-table rows (doc/jenkins.md §5) each name theirs in the table in
// build_state.cc.
enum class BuildTransition {
  kTrigger,              // CLAIMED -> TRIGGERING: intent journalled, POST sent (§4.7)
  kItemCreated,          // TRIGGERING -> QUEUED: 201 with the item's Location
  kLostItemFound,        // TRIGGERING -> QUEUED: a lost trigger found in the queue (R8)
  kLostBuildFound,       // TRIGGERING -> STARTED: a lost trigger found as a build (R10)
  kCancelItem,           // TRIGGERING/QUEUED/CANCEL_DUE/CANCELLING -> CANCELLING: W3 sent
  kItemStarted,          // QUEUED/CANCEL_DUE/CANCELLING -> STARTED: R7 `executable`, or R10
  kAbort,                // TRIGGERING/QUEUED/CANCEL_DUE/CANCELLING/STARTED -> ABORTING: W4 sent
  kAbortNotDelivered,    // ABORTING -> STARTED: W4 failed; sent again after the next R9
  kRecoveredTriggering,  // RECOVERED -> TRIGGERING: journal entry TRIGGERING (§4.11 J4)
  kRecoveredQueued,      // RECOVERED -> QUEUED: journal entry QUEUED
  kRecoveredStarted,     // RECOVERED -> STARTED: journal entry STARTED
  kRecoveredAbort,       // RECOVERED -> ABORTING: journal entry STARTED, orphan to stop
  kCancelLater,          // QUEUED -> CANCEL_DUE: withdrawn while its R7 poll is in flight
  kCancelNotDelivered,   // CANCELLING -> CANCEL_DUE: W3 failed; sent again at the next tick
  kAwaitOffline,         // STARTED/ABORTING -> FINISHING: OFFLINE_NODE_WHEN_COMPLETE on-complete
};

inline constexpr int kBuildTransitionCount = 15;

// The state `transition` leads to from `from`; nullopt when the table has no such arrow.
std::optional<BuildState> NextState(BuildState from, BuildTransition transition);

// "CLAIMED", "TRIGGERING", ... (admin `jenkins show`, /api/jenkins, logs).
const char* BuildStateName(BuildState state);
const char* BuildTransitionName(BuildTransition transition);

}  // namespace roundhouse::jenkins
