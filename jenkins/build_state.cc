// The build state machine's table: see build_state.h.
#include "jenkins/build_state.h"

#include <initializer_list>

namespace roundhouse::jenkins {
namespace {

using S = BuildState;
using T = BuildTransition;

struct Arrow {
  T transition;
  std::initializer_list<S> from;
  S to;
};

// Every arrow of the machine. A failure-table row (doc/jenkins.md §5) is named where it leads
// through one; the rows that end a build (put back, error, WORK_FAIL) leave the machine instead.
const Arrow kArrows[] = {
    {T::kTrigger, {S::kClaimed}, S::kTriggering},
    {T::kItemCreated, {S::kTriggering}, S::kQueued},
    // Row "trigger response lost": search by unique_param; adopt the item or the build.
    {T::kLostItemFound, {S::kTriggering}, S::kQueued},
    {T::kLostBuildFound, {S::kTriggering}, S::kStarted},
    // Row "queue item waits": the queue-wait timeout cancels (W3). Row "`cancel job` after
    // grab, before start": W3 of a queued item, also one the POST created as it was withdrawn.
    // A W3 not delivered is sent again from CANCELLING.
    {T::kCancelItem, {S::kTriggering, S::kQueued, S::kCancelDue, S::kCancelling}, S::kCancelling},
    {T::kCancelLater, {S::kQueued}, S::kCancelDue},
    {T::kCancelNotDelivered, {S::kCancelling}, S::kCancelDue},
    // Row "LeftItem expired before seen" leads here too (R10 by queueId). A cancel that came
    // too late (the item started meanwhile) follows the build.
    {T::kItemStarted, {S::kQueued, S::kCancelDue, S::kCancelling}, S::kStarted},
    // Row "`cancel job` after grab, before start" once the build exists (W4), and row "Gearman
    // client disconnects mid-build" under orphan_policy = abort.
    {T::kAbort,
     {S::kTriggering, S::kQueued, S::kCancelDue, S::kCancelling, S::kStarted},
     S::kAborting},
    {T::kAbortNotDelivered, {S::kAborting}, S::kStarted},
    // Row "our server restarts mid-build": journal reconciliation (§4.11).
    {T::kRecoveredTriggering, {S::kRecovered}, S::kTriggering},
    {T::kRecoveredQueued, {S::kRecovered}, S::kQueued},
    {T::kRecoveredStarted, {S::kRecovered}, S::kStarted},
    {T::kRecoveredAbort, {S::kRecovered}, S::kAborting},
    // Row "OFFLINE_NODE_WHEN_COMPLETE POST fails": on-complete, the final packets wait (at most
    // meta_timeout_s) for the node to go offline. A build aborted while its start was being
    // identified may end here too (nothing is reported for it).
    {T::kAwaitOffline, {S::kStarted, S::kAborting}, S::kFinishing},
};

}  // namespace

std::optional<BuildState> NextState(BuildState from, BuildTransition transition) {
  for (const Arrow& arrow : kArrows) {
    if (arrow.transition != transition) continue;
    for (S s : arrow.from) {
      if (s == from) return arrow.to;
    }
    return std::nullopt;
  }
  return std::nullopt;
}

const char* BuildStateName(BuildState state) {
  switch (state) {
    case S::kClaimed:
      return "CLAIMED";
    case S::kRecovered:
      return "RECOVERED";
    case S::kCancelDue:
      return "CANCEL_DUE";
    case S::kFinishing:
      return "FINISHING";
    case S::kTriggering:
      return "TRIGGERING";
    case S::kQueued:
      return "QUEUED";
    case S::kCancelling:
      return "CANCELLING";
    case S::kStarted:
      return "STARTED";
    case S::kAborting:
      return "ABORTING";
  }
  return "?";
}

const char* BuildTransitionName(BuildTransition transition) {
  switch (transition) {
    case T::kTrigger:
      return "trigger";
    case T::kItemCreated:
      return "item created";
    case T::kLostItemFound:
      return "lost trigger found in the queue";
    case T::kLostBuildFound:
      return "lost trigger found as a build";
    case T::kCancelItem:
      return "cancel item";
    case T::kItemStarted:
      return "item started";
    case T::kAbort:
      return "abort";
    case T::kAbortNotDelivered:
      return "abort not delivered";
    case T::kRecoveredTriggering:
      return "recovered triggering";
    case T::kRecoveredQueued:
      return "recovered queued";
    case T::kRecoveredStarted:
      return "recovered started";
    case T::kRecoveredAbort:
      return "recovered abort";
    case T::kCancelLater:
      return "cancel later";
    case T::kCancelNotDelivered:
      return "cancel not delivered";
    case T::kAwaitOffline:
      return "await offline";
  }
  return "?";
}

}  // namespace roundhouse::jenkins
