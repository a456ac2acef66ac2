// Late results after a CAN_DO_TIMEOUT (doc/protocol.md, "Late results after a timeout"): the
// timed-out worker's WORK_COMPLETE / FAIL / EXCEPTION ends the job if it is still queued or
// another worker holds it; the first result wins.

#include <catch2/catch.hpp>
#include <string>

#include "broker_fakes.h"

namespace roundhouse::broker::testing {
namespace {

// Grabs `handle` with `w` and lets its 1 s CAN_DO_TIMEOUT expire.
void GrabAndExpire(Harness& h, FakePeer& w, const std::string& handle) {
  REQUIRE(h.Grab(w) == handle);
  h.clock.AdvanceMs(1000);
  h.broker->RunTimers();
  REQUIRE_FALSE(h.broker->GetStatus(handle).running);
}

TEST_CASE("a timed-out worker's late result ends the job while it is still queued", "[broker]") {
  LogCapture log;
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f", 1);
  const std::string handle = h.Fg(c, "f", "lu");
  GrabAndExpire(h, w, handle);
  REQUIRE(h.Counts("f")->queued(Priority::kNormal) == 1);

  CHECK(h.Complete(w, handle, "done") == WorkResult::kOk);
  REQUIRE(c.work.size() == 1);
  CHECK(c.work[0].type == PacketType::kWorkComplete);
  CHECK(c.work[0].payload == handle + std::string("\0done", 5));
  CHECK_FALSE(h.broker->GetStatus(handle).known);
  CHECK(h.Counts("f")->queued(Priority::kNormal) == 0);
  CHECK(h.Counts("f")->completed() == 1);
  CHECK(h.broker->LiveJobCount() == 0);
  CHECK(h.Grab(w).empty());  // nothing left to run again
  CHECK_FALSE(h.broker->NextTimerDeadline().has_value());
  CHECK(log.Contains("NOTICE Late result from a timed-out worker ends job: " + handle +
                     " lu (removed from the queue)"));
  // A second result for the same job finds nothing.
  CHECK(h.Complete(w, handle) == WorkResult::kJobNotFound);
}

TEST_CASE("a job that always outlives its timeout completes with one worker", "[broker]") {
  // The worker re-grabs the job after each expiry it notices, as a busy libgearman worker does
  // only after finishing; here the expiry fires twice before the result arrives.
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f", 1000);
  const std::string handle = h.Fg(c, "f");
  GrabAndExpire(h, w, handle);
  GrabAndExpire(h, w, handle);
  CHECK(h.broker->JobsInCreationOrder().at(0)->retries() == 2);  // -j counting unchanged
  CHECK(h.Complete(w, handle) == WorkResult::kOk);
  REQUIRE(c.work.size() == 1);
  CHECK(c.work[0].type == PacketType::kWorkComplete);
  CHECK(h.broker->LiveJobCount() == 0);
}

TEST_CASE("a late result takes the job from the worker that grabbed it since", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& a = h.NewPeer();
  FakePeer& b = h.NewPeer();
  h.broker->CanDo(a, "f", 1000);
  h.broker->CanDo(b, "f", 1000);
  const std::string handle = h.Fg(c, "f");
  GrabAndExpire(h, a, handle);
  REQUIRE(h.Grab(b) == handle);
  REQUIRE(h.Counts("f")->running() == 1);

  CHECK(h.Complete(a, handle, "from-a") == WorkResult::kOk);
  REQUIRE(c.work.size() == 1);
  CHECK(c.work[0].payload == handle + std::string("\0from-a", 7));
  CHECK(b.state().running.empty());
  CHECK(h.Counts("f")->running() == 0);
  CHECK(b.withdrawn == std::vector<std::string>{handle});
  CHECK_FALSE(h.broker->NextTimerDeadline().has_value());  // b's timer went with the job
  // The first result won: b's packets for it are not found.
  CHECK(h.broker->Work(b, PacketType::kWorkData, handle, handle) == WorkResult::kJobNotFound);
  CHECK(h.Complete(b, handle) == WorkResult::kJobNotFound);
  CHECK(c.work.size() == 1);
}

TEST_CASE("when the new worker finishes first, the late result is not found", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& a = h.NewPeer();
  FakePeer& b = h.NewPeer();
  h.broker->CanDo(a, "f", 1000);
  h.broker->CanDo(b, "f");
  const std::string handle = h.Fg(c, "f");
  GrabAndExpire(h, a, handle);
  REQUIRE(h.Grab(b) == handle);
  CHECK(h.broker->Work(b, PacketType::kWorkFail, handle, handle) == WorkResult::kOk);
  CHECK(h.Complete(a, handle) == WorkResult::kJobNotFound);
  REQUIRE(c.work.size() == 1);
  CHECK(c.work[0].type == PacketType::kWorkFail);
}

TEST_CASE("two workers that both time out on a job: either late result ends it", "[broker]") {
  const bool first_finishes = GENERATE(true, false);
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& a = h.NewPeer();
  FakePeer& b = h.NewPeer();
  h.broker->CanDo(a, "f", 1000);
  h.broker->CanDo(b, "f", 1000);
  const std::string handle = h.Fg(c, "f");
  GrabAndExpire(h, a, handle);
  GrabAndExpire(h, b, handle);
  REQUIRE(h.Grab(a) == handle);  // a holds it again (normal path), b is a late worker
  FakePeer& finisher = first_finishes ? a : b;
  FakePeer& loser = first_finishes ? b : a;
  CHECK(h.Complete(finisher, handle) == WorkResult::kOk);
  CHECK(h.Complete(loser, handle) == WorkResult::kJobNotFound);
  CHECK(c.work.size() == 1);
  CHECK(h.broker->LiveJobCount() == 0);
}

TEST_CASE("late WORK_DATA is forwarded while queued, discarded while another worker holds it",
          "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& a = h.NewPeer();
  FakePeer& b = h.NewPeer();
  h.broker->CanDo(a, "f", 1000);
  h.broker->CanDo(b, "f");
  const std::string handle = h.Fg(c, "f");
  GrabAndExpire(h, a, handle);
  std::string status = handle;
  status.append(std::string("\0" "1\0" "2", 4));
  CHECK(h.broker->Work(a, PacketType::kWorkData, handle, handle) == WorkResult::kOk);
  CHECK(h.broker->Work(a, PacketType::kWorkStatus, handle, status, "1", "2") == WorkResult::kOk);
  CHECK(c.work.size() == 2);
  CHECK(h.broker->GetStatus(handle).numerator == 1);
  CHECK(h.Counts("f")->queued(Priority::kNormal) == 1);  // progress does not take it off the queue

  REQUIRE(h.Grab(b) == handle);
  CHECK(h.broker->Work(a, PacketType::kWorkWarning, handle, handle) == WorkResult::kOk);
  CHECK(c.work.size() == 2);  // not forwarded
  CHECK(h.broker->GetStatus(handle).running);
}

TEST_CASE("a late WORK_EXCEPTION is downgraded for clients without the option", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f", 1000);
  const std::string handle = h.Fg(c, "f");
  GrabAndExpire(h, w, handle);
  CHECK(h.broker->Work(w, PacketType::kWorkException, handle, handle + std::string("\0e", 2)) ==
        WorkResult::kOk);
  REQUIRE(c.work.size() == 1);
  CHECK(c.work[0].type == PacketType::kWorkFail);
  CHECK(c.work[0].payload == handle + std::string("\0", 1));
  CHECK(h.Counts("f")->failed() == 1);
}

TEST_CASE("a late result ends a durable background job and deletes its row", "[broker]") {
  Harness h(DefaultOptions(), /*with_store=*/true);
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f", 1000);
  REQUIRE(h.Submit(c, "f", "bg", "x", SubmitArgs{Priority::kNormal, true, 0, ""}).pending);
  h.store.CommitAll();
  REQUIRE(c.done.size() == 1);
  const std::string handle = c.done[0].handle;
  GrabAndExpire(h, w, handle);
  REQUIRE(h.store.rows.size() == 1);
  CHECK(h.Complete(w, handle) == WorkResult::kOk);
  CHECK(h.store.rows.empty());
  CHECK(h.broker->LiveJobCount() == 0);
}

TEST_CASE("-j 1: the expiry drops the job and the late result is not found", "[broker]") {
  Options o = DefaultOptions();
  o.job_retries = 1;
  Harness h(o);
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f", 1000);
  const std::string handle = h.Fg(c, "f");
  REQUIRE(h.Grab(w) == handle);
  h.clock.AdvanceMs(1000);
  h.broker->RunTimers();
  REQUIRE(c.work.size() == 1);
  CHECK(c.work[0].type == PacketType::kWorkFail);
  CHECK(c.work[0].payload == handle);
  CHECK(h.Complete(w, handle) == WorkResult::kJobNotFound);
  CHECK(c.work.size() == 1);
}

TEST_CASE("only the timed-out worker may end a re-queued job", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  FakePeer& other = h.NewPeer();
  h.broker->CanDo(w, "f", 1000);
  h.broker->CanDo(other, "f");
  const std::string handle = h.Fg(c, "f");
  GrabAndExpire(h, w, handle);
  CHECK(h.Complete(other, handle) == WorkResult::kJobNotFound);
  CHECK(h.broker->Work(other, PacketType::kWorkData, handle, handle) == WorkResult::kJobNotFound);
  // A peer that attaches after the timed-out worker left is never taken for it.
  h.broker->Detach(w);
  FakePeer& newcomer = h.NewPeer();
  CHECK(h.Complete(newcomer, handle) == WorkResult::kJobNotFound);
  CHECK(h.broker->GetStatus(handle).known);
  CHECK(c.work.empty());
}

TEST_CASE("a re-queue that is not a timeout does not let the old worker end the job",
          "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f", 1000);
  const std::string handle = h.Fg(c, "f");
  REQUIRE(h.Grab(w) == handle);
  h.broker->CantDo(w, "f");
  CHECK(h.Complete(w, handle) == WorkResult::kJobNotFound);
}

TEST_CASE("a cancelled job ignores the late result", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f", 1000);
  const std::string handle = h.Fg(c, "f");
  GrabAndExpire(h, w, handle);
  REQUIRE(h.broker->CancelJob(handle) == CancelResult::kOk);
  const size_t sent = c.work.size();
  CHECK(h.Complete(w, handle) == WorkResult::kJobNotFound);
  CHECK(c.work.size() == sent);
}

TEST_CASE("a job remembers its most recent timed-out workers, bounded", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  const std::string handle = h.Fg(c, "f");
  std::vector<FakePeer*> workers;
  for (int i = 0; i < 6; ++i) {
    FakePeer& w = h.NewPeer();
    h.broker->CanDo(w, "f", 1000);
    GrabAndExpire(h, w, handle);
    workers.push_back(&w);
  }
  // The two oldest fell out of the four remembered; the newest still ends the job.
  CHECK(h.Complete(*workers[0], handle) == WorkResult::kJobNotFound);
  CHECK(h.Complete(*workers[1], handle) == WorkResult::kJobNotFound);
  CHECK(h.Complete(*workers[5], handle) == WorkResult::kOk);
  CHECK(h.broker->LiveJobCount() == 0);
}

}  // namespace
}  // namespace roundhouse::broker::testing
