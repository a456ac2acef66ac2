// The build state machine's table (jenkins/build_state.h): each named transition leads where
// doc/jenkins.md §4.8 says, and every pair the table does not list has no next state.
#include "jenkins/build_state.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>

namespace roundhouse::jenkins {
namespace {

using S = BuildState;
using T = BuildTransition;

constexpr S kStates[] = {S::kClaimed,    S::kRecovered, S::kTriggering, S::kQueued,  S::kCancelDue,
                         S::kCancelling, S::kStarted,   S::kFinishing,  S::kAborting};

TEST_CASE("every arrow of the build state machine", "[build_state]") {
  CHECK(NextState(S::kClaimed, T::kTrigger) == S::kTriggering);
  CHECK(NextState(S::kTriggering, T::kItemCreated) == S::kQueued);
  CHECK(NextState(S::kTriggering, T::kLostItemFound) == S::kQueued);
  CHECK(NextState(S::kTriggering, T::kLostBuildFound) == S::kStarted);
  for (S s : {S::kTriggering, S::kQueued, S::kCancelDue, S::kCancelling}) {
    CHECK(NextState(s, T::kCancelItem) == S::kCancelling);
  }
  for (S s : {S::kQueued, S::kCancelDue, S::kCancelling}) {
    CHECK(NextState(s, T::kItemStarted) == S::kStarted);
  }
  for (S s : {S::kTriggering, S::kQueued, S::kCancelDue, S::kCancelling, S::kStarted}) {
    CHECK(NextState(s, T::kAbort) == S::kAborting);
  }
  CHECK(NextState(S::kAborting, T::kAbortNotDelivered) == S::kStarted);
  CHECK(NextState(S::kRecovered, T::kRecoveredTriggering) == S::kTriggering);
  CHECK(NextState(S::kRecovered, T::kRecoveredQueued) == S::kQueued);
  CHECK(NextState(S::kRecovered, T::kRecoveredStarted) == S::kStarted);
  CHECK(NextState(S::kRecovered, T::kRecoveredAbort) == S::kAborting);
  CHECK(NextState(S::kQueued, T::kCancelLater) == S::kCancelDue);
  CHECK(NextState(S::kCancelling, T::kCancelNotDelivered) == S::kCancelDue);
  for (S s : {S::kStarted, S::kAborting}) CHECK(NextState(s, T::kAwaitOffline) == S::kFinishing);
}

TEST_CASE("the build state machine has no other arrows", "[build_state]") {
  int arrows = 0;
  std::set<std::string> names;
  for (int t = 0; t < kBuildTransitionCount; ++t) {
    const auto transition = static_cast<T>(t);
    names.insert(BuildTransitionName(transition));
    for (S s : kStates) arrows += NextState(s, transition).has_value() ? 1 : 0;
  }
  // 4 single arrows + 4 (cancel) + 3 (item started) + 5 (abort) + 1 + 4 recovered + 1 (cancel
  // later) + 1 (cancel not delivered) + 2 (await offline).
  CHECK(arrows == 25);
  CHECK(names.size() == static_cast<size_t>(kBuildTransitionCount));  // every one named
  CHECK(names.count("?") == 0);
  // Some that must never happen.
  CHECK_FALSE(NextState(S::kStarted, T::kItemCreated));
  CHECK_FALSE(NextState(S::kAborting, T::kAbort));
  CHECK_FALSE(NextState(S::kStarted, T::kCancelItem));
  CHECK_FALSE(NextState(S::kQueued, T::kTrigger));
  CHECK_FALSE(NextState(S::kStarted, T::kRecoveredStarted));
  CHECK_FALSE(NextState(S::kClaimed, T::kRecoveredStarted));  // only a journal entry recovers
  CHECK_FALSE(NextState(S::kFinishing, T::kAbort));  // the result is known: nothing to stop
  CHECK_FALSE(NextState(S::kCancelDue, T::kCancelLater));
  CHECK(std::string(BuildStateName(S::kCancelling)) == "CANCELLING");
}

}  // namespace
}  // namespace roundhouse::jenkins
