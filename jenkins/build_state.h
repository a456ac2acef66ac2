// The state machine of one build the adapter handles (doc/jenkins.md §4.8): one enum of states,
// and every way from one state to another named as a BuildTransition. NextState is the whole
// table: a (state, transition) pair it does not list has no next state, and the adapter refuses
// it (Adapter::Move asserts, and in a release build logs it and leaves the state alone).
//
// The endings of §1.6 (result, error, fail), putting a job back and forgetting a withdrawn one
// are not states: they remove the build (Adapter::Forget), from any state.
//
// Pure: no I/O. Thread-safety: free functions on values.
#pragma once

#include <optional>

namespace roundhouse::jenkins {

enum class BuildState {
  kClaimed,     // grabbed (or read back from the journal), not triggered yet
  kTriggering,  // POST in flight, or its lost answer being searched for (§4.7)
  kQueued,      // Jenkins queue item known; polling R7
  kCancelling,  // W3 sent (queue-wait timeout or withdrawal); confirming with R7
  kStarted,     // the build exists in Jenkins; polling R9 (start packets sent once seen)
  kAborting,    // withdrawn once started: W4 sent; confirming with R9, nothing reported
};

// Named transitions. The failure-table rows (doc/jenkins.md §5) each name theirs in the table in
// build_state.cc.
enum class BuildTransition {
  kTrigger,              // CLAIMED -> TRIGGERING: intent journalled, POST sent (§4.7)
  kItemCreated,          // TRIGGERING -> QUEUED: 201 with the item's Location
  kLostItemFound,        // TRIGGERING -> QUEUED: a lost trigger found in the queue (R8)
  kLostBuildFound,       // TRIGGERING -> STARTED: a lost trigger found as a build (R10)
  kCancelItem,           // TRIGGERING/QUEUED/CANCELLING -> CANCELLING: W3 (again) sent
  kItemStarted,          // QUEUED/CANCELLING -> STARTED: R7 `executable`, or R10 by queueId
  kAbort,                // TRIGGERING/QUEUED/CANCELLING/STARTED -> ABORTING: W4 sent
  kAbortNotDelivered,    // ABORTING -> STARTED: W4 failed; sent again after the next R9
  kRecoveredTriggering,  // CLAIMED -> TRIGGERING: journal entry TRIGGERING (§4.11 J4)
  kRecoveredQueued,      // CLAIMED -> QUEUED: journal entry QUEUED
  kRecoveredStarted,     // CLAIMED -> STARTED: journal entry STARTED
  kRecoveredAbort,       // CLAIMED -> ABORTING: journal entry STARTED, orphan to stop
};

inline constexpr int kBuildTransitionCount = 12;

// The state `transition` leads to from `from`; nullopt when the table has no such arrow.
std::optional<BuildState> NextState(BuildState from, BuildTransition transition);

// "CLAIMED", "TRIGGERING", ... (admin `jenkins show`, /api/jenkins, logs).
const char* BuildStateName(BuildState state);
const char* BuildTransitionName(BuildTransition transition);

}  // namespace roundhouse::jenkins
