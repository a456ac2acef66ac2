// Re-queue and retries (§3.7), CAN_DO_TIMEOUT (§3.8).

#include <catch2/catch.hpp>
#include <string>

#include "broker_fakes.h"

namespace roundhouse::broker::testing {
namespace {

std::string StatusBody(const std::string& handle, std::string_view num, std::string_view den) {
  std::string body = handle;
  body.push_back('\0');
  body.append(num);
  body.push_back('\0');
  body.append(den);
  return body;
}

TEST_CASE("a worker disconnect re-queues its job at the tail, clients stay attached", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w1 = h.NewPeer();
  FakePeer& w2 = h.NewPeer();
  h.broker->CanDo(w1, "f");
  h.broker->CanDo(w2, "f");
  h.broker->PreSleep(w2);
  const std::string first = h.Fg(c, "f");
  const std::string second = h.Fg(c, "f");
  REQUIRE(w2.noops == 1);
  REQUIRE(h.Grab(w1) == first);
  REQUIRE(h.broker->Work(w1, PacketType::kWorkStatus, first, StatusBody(first, "1", "4"), "1",
                         "4") == WorkResult::kOk);
  REQUIRE(h.broker->GetStatus(first).numerator == 1);
  REQUIRE(!h.Grab(w2).empty());  // takes `second`
  h.broker->PreSleep(w2);

  h.broker->Detach(w1);
  CHECK(w2.noops == 2);  // the re-queue woke the sleeping worker
  const JobStatus st = h.broker->GetStatus(first);
  CHECK(st.known);
  CHECK_FALSE(st.running);
  CHECK(st.numerator == 0);  // NUM/DEN reset
  CHECK(st.denominator == 0);
  CHECK(st.clients == 1);
  const Job* job = h.broker->JobsInCreationOrder().at(0);
  CHECK(job->retries() == 1);
  CHECK(c.work.size() == 1);  // only the WORK_STATUS; the client is told nothing about it

  REQUIRE(h.Grab(w2) == first);
  REQUIRE(h.Complete(w2, first) == WorkResult::kOk);
  REQUIRE(c.work.size() == 2);
  CHECK(c.work[1].type == PacketType::kWorkComplete);
}

TEST_CASE("a re-queued job goes behind jobs already queued", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  const std::string a = h.Fg(c, "f");
  const std::string b = h.Fg(c, "f");
  REQUIRE(h.Grab(w) == a);
  h.broker->ResetAbilities(w);
  h.broker->CanDo(w, "f");
  CHECK(h.Grab(w) == b);
  CHECK(h.Grab(w) == a);
}

TEST_CASE("CANT_DO re-queues only the jobs of that function", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  h.broker->CanDo(w, "g");
  const std::string f1 = h.Fg(c, "f");
  const std::string g1 = h.Fg(c, "g");
  const std::string f2 = h.Fg(c, "f");
  REQUIRE(!h.Grab(w).empty());
  REQUIRE(!h.Grab(w).empty());
  REQUIRE(!h.Grab(w).empty());
  h.broker->CantDo(w, "f");
  CHECK(w.state().running.size() == 1);
  CHECK(h.broker->GetStatus(g1).running);
  CHECK_FALSE(h.broker->GetStatus(f1).running);
  CHECK_FALSE(h.broker->GetStatus(f2).running);
  CHECK(h.Counts("f")->queued(Priority::kNormal) == 2);
  CHECK(h.Complete(w, f1) == WorkResult::kJobNotFound);  // the old worker lost it
}

TEST_CASE("RESET_ABILITIES re-queues every job the worker holds", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  h.broker->CanDo(w, "g");
  (void)h.Fg(c, "f");
  (void)h.Fg(c, "g");
  REQUIRE(!h.Grab(w).empty());
  REQUIRE(!h.Grab(w).empty());
  h.broker->ResetAbilities(w);
  CHECK(w.state().running.empty());
  CHECK(w.state().registrations.empty());
  CHECK(h.Counts("f")->queued(Priority::kNormal) == 1);
  CHECK(h.Counts("g")->queued(Priority::kNormal) == 1);
  CHECK(h.Counts("f")->worker_count() == 0);
}

// Runs the job through `starts` grabs, each ended by a worker disconnect; returns the number of
// grabs that succeeded.
int StartsBeforeDrop(Harness& h, FakePeer& c, const std::string& handle) {
  int starts = 0;
  for (int i = 0; i < 10; ++i) {
    FakePeer& w = h.NewPeer();
    h.broker->CanDo(w, "f");
    if (h.Grab(w) != handle) break;
    ++starts;
    h.broker->Detach(w);
  }
  (void)c;
  return starts;
}

TEST_CASE("-j 0 drops a job at its first re-queue", "[broker]") {
  LogCapture log;
  Options o = DefaultOptions();
  o.job_retries = 0;
  Harness h(o);
  FakePeer& c = h.NewPeer();
  const std::string handle = h.Fg(c, "f", "uniq0");
  CHECK(StartsBeforeDrop(h, c, handle) == 1);
  REQUIRE(c.work.size() == 1);
  CHECK(c.work[0].type == PacketType::kWorkFail);
  CHECK(c.work[0].payload == handle);  // no trailing NUL
  CHECK_FALSE(h.broker->GetStatus(handle).known);
  CHECK(h.Counts("f")->total() == 0);
  CHECK(log.Contains("NOTICE Dropped job due to max retry count: " + handle + " uniq0"));
}

TEST_CASE("-j 1 behaves like 0", "[broker]") {
  Options o = DefaultOptions();
  o.job_retries = 1;
  Harness h(o);
  FakePeer& c = h.NewPeer();
  CHECK(StartsBeforeDrop(h, c, h.Fg(c, "f")) == 1);
}

TEST_CASE("-j N drops at the N-th re-queue: at most N starts", "[broker]") {
  Options o = DefaultOptions();
  o.job_retries = 3;
  Harness h(o);
  FakePeer& c = h.NewPeer();
  const std::string handle = h.Fg(c, "f");
  CHECK(StartsBeforeDrop(h, c, handle) == 3);
  CHECK(c.work.size() == 1);
}

TEST_CASE("-j -1 never drops", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  const std::string handle = h.Fg(c, "f");
  CHECK(StartsBeforeDrop(h, c, handle) == 10);
  CHECK(h.broker->JobsInCreationOrder().at(0)->retries() == 10);
  CHECK(c.work.empty());
}

TEST_CASE("a retry drop deletes the durable row", "[broker]") {
  Options o = DefaultOptions();
  o.job_retries = 0;
  Harness h(o, /*with_store=*/true);
  FakePeer& c = h.NewPeer();
  REQUIRE(h.Submit(c, "f", "u", "x", SubmitArgs{Priority::kNormal, true, 0, ""}).pending);
  h.store.CommitAll();
  REQUIRE(c.done.size() == 1);
  const std::string handle = c.done[0].handle;
  REQUIRE(h.store.rows.size() == 1);
  CHECK(StartsBeforeDrop(h, c, handle) == 1);
  CHECK(h.store.rows.empty());
  CHECK(h.broker->LiveJobCount() == 0);
}

TEST_CASE("CAN_DO_TIMEOUT expiry re-queues the job and wakes sleeping workers", "[broker]") {
  LogCapture log;
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  FakePeer& w2 = h.NewPeer();
  h.broker->CanDo(w, "f", 5000);
  h.broker->CanDo(w2, "f");
  h.broker->PreSleep(w2);
  const std::string handle = h.Fg(c, "f", "tu");
  REQUIRE(h.Grab(w) == handle);
  REQUIRE(h.Grab(w2).empty());  // answers its NOOP, finds nothing, sleeps again
  h.broker->PreSleep(w2);
  REQUIRE(h.scheduled.back() == h.clock.MonotonicMs() + 5000);

  h.clock.AdvanceMs(4999);
  h.broker->RunTimers();
  CHECK(h.broker->GetStatus(handle).running);

  h.clock.AdvanceMs(1);
  h.broker->RunTimers();
  CHECK_FALSE(h.broker->GetStatus(handle).running);
  CHECK(w.state().running.empty());
  CHECK(w2.noops == 2);   // woken for the re-queued job
  CHECK(c.work.empty());  // the client is not told
  CHECK(log.Contains("WARNING Worker timeout reached on job, requeueing: " + handle + " tu"));
  CHECK(h.broker->JobsInCreationOrder().at(0)->retries() == 1);
  CHECK(h.Grab(w2) == handle);
}

TEST_CASE("a CAN_DO_TIMEOUT of 1..999 ms is one second and <= 0 is none", "[broker]") {
  Harness h;
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "a", 1);
  h.broker->CanDo(w, "b", 999);
  h.broker->CanDo(w, "c", 0);
  h.broker->CanDo(w, "d", -5);
  h.broker->CanDo(w, "e", 1000);
  const auto& regs = w.state().registrations;
  REQUIRE(regs.size() == 5);
  CHECK(regs[0].timeout_ms == 1000);
  CHECK(regs[1].timeout_ms == 1000);
  CHECK(regs[2].timeout_ms == 0);
  CHECK(regs[3].timeout_ms == 0);
  CHECK(regs[4].timeout_ms == 1000);

  FakePeer& c = h.NewPeer();
  const std::string handle = h.Fg(c, "c");
  REQUIRE(h.Grab(w) == handle);
  CHECK_FALSE(h.broker->NextTimerDeadline().has_value());
}

TEST_CASE("a repeated CAN_DO keeps its position and updates the timeout", "[broker]") {
  Harness h;
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "a");
  h.broker->CanDo(w, "b");
  h.broker->CanDo(w, "a", 3000);
  const auto& regs = w.state().registrations;
  REQUIRE(regs.size() == 2);
  CHECK(regs[0].function->name() == "a");
  CHECK(regs[0].timeout_ms == 3000);
  CHECK(h.Counts("a")->worker_count() == 1);
}

TEST_CASE("WORK_COMPLETE, WORK_FAIL and WORK_EXCEPTION cancel the timeout", "[broker]") {
  const PacketType type =
      GENERATE(PacketType::kWorkComplete, PacketType::kWorkFail, PacketType::kWorkException);
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f", 2000);
  const std::string handle = h.Fg(c, "f");
  REQUIRE(h.Grab(w) == handle);
  REQUIRE(h.broker->NextTimerDeadline().has_value());
  REQUIRE(h.broker->Work(w, type, handle, handle) == WorkResult::kOk);
  CHECK_FALSE(h.broker->NextTimerDeadline().has_value());
  h.clock.AdvanceMs(5000);
  h.broker->RunTimers();
  CHECK(h.broker->LiveJobCount() == 0);
}

TEST_CASE("PRE_SLEEP, WORK_STATUS and WORK_DATA do not affect the timeout", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f", 2000);
  const std::string handle = h.Fg(c, "f");
  REQUIRE(h.Grab(w) == handle);
  const int64_t deadline = *h.broker->NextTimerDeadline();
  h.clock.AdvanceMs(1000);
  h.broker->PreSleep(w);
  REQUIRE(h.broker->Work(w, PacketType::kWorkStatus, handle, StatusBody(handle, "1", "2"), "1",
                         "2") == WorkResult::kOk);
  REQUIRE(h.broker->Work(w, PacketType::kWorkData, handle, handle) == WorkResult::kOk);
  CHECK(*h.broker->NextTimerDeadline() == deadline);
  h.clock.AdvanceMs(1000);
  h.broker->RunTimers();
  CHECK_FALSE(h.broker->GetStatus(handle).running);
}

TEST_CASE("each assigned job has its own timeout", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f", 2000);
  const std::string a = h.Fg(c, "f");
  const std::string b = h.Fg(c, "f");
  REQUIRE(h.Grab(w) == a);
  h.clock.AdvanceMs(1000);
  REQUIRE(h.Grab(w) == b);
  h.clock.AdvanceMs(1000);
  h.broker->RunTimers();
  CHECK_FALSE(h.broker->GetStatus(a).running);
  CHECK(h.broker->GetStatus(b).running);
  CHECK(h.broker->NextTimerDeadline() == h.clock.MonotonicMs() + 1000);
  h.clock.AdvanceMs(1000);
  h.broker->RunTimers();
  CHECK_FALSE(h.broker->GetStatus(b).running);
}

TEST_CASE("the timeout comes from the registration the job was assigned through", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "slow", 60'000);
  h.broker->CanDo(w, "fast", 1000);
  const std::string s = h.Fg(c, "slow");
  REQUIRE(h.Grab(w) == s);
  CHECK(h.broker->NextTimerDeadline() == h.clock.MonotonicMs() + 60'000);
}

TEST_CASE("timeout expiries count toward -j", "[broker]") {
  Options o = DefaultOptions();
  o.job_retries = 2;
  Harness h(o);
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f", 1000);
  const std::string handle = h.Fg(c, "f");
  for (int i = 0; i < 2; ++i) {
    REQUIRE(h.Grab(w) == handle);
    h.clock.AdvanceMs(1000);
    h.broker->RunTimers();
  }
  CHECK_FALSE(h.broker->GetStatus(handle).known);
  REQUIRE(c.work.size() == 1);
  CHECK(c.work[0].type == PacketType::kWorkFail);
}

TEST_CASE("schedule is called only when the earliest timer moves earlier", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "a", 5000);
  h.broker->CanDo(w, "b", 2000);
  (void)h.Fg(c, "a");
  (void)h.Fg(c, "a");
  (void)h.Fg(c, "b");
  REQUIRE(!h.Grab(w).empty());  // a: +5000
  REQUIRE(h.scheduled.size() == 1);
  REQUIRE(!h.Grab(w).empty());  // b (round-robin): +2000, earlier
  REQUIRE(h.scheduled.size() == 2);
  CHECK(h.scheduled[1] == h.clock.MonotonicMs() + 2000);
  REQUIRE(!h.Grab(w).empty());  // a: +5000, later: not announced
  CHECK(h.scheduled.size() == 2);
}


// Broker::PutBack: the in-process (Jenkins) worker's "not started, take it back".
TEST_CASE("PutBack returns a job to the head of its queue, unseen, with no retry", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  FakePeer& other = h.NewPeer();
  h.broker->CanDo(w, "f");
  h.broker->CanDo(other, "f");
  const std::string first = h.Fg(c, "f");
  REQUIRE(h.Grab(w) == first);
  REQUIRE(h.broker->Work(w, PacketType::kWorkStatus, first, StatusBody(first, "1", "4"), "1",
                         "4") == WorkResult::kOk);
  h.broker->PreSleep(other);  // nothing due: sleeps
  const auto noops = other.noops;
  const std::string second = h.Fg(c, "f");  // wakes `other`, stays queued behind nothing
  REQUIRE(other.noops == noops + 1);
  h.broker->PreSleep(other);  // `second` is due: NOOP at once, not sleeping

  REQUIRE(h.broker->PutBack(w, first));
  CHECK(w.state().running.empty());
  const JobStatus st = h.broker->GetStatus(first);
  CHECK(st.known);
  CHECK_FALSE(st.running);
  CHECK(st.numerator == 0);
  CHECK(h.broker->JobsInCreationOrder().at(0)->retries() == 0);
  CHECK(c.work.size() == 1);  // only the WORK_STATUS sent before
  // Head of the queue: handed out before `second`, which was queued first now.
  CHECK(h.Grab(other) == first);
  CHECK(h.Grab(other) == second);
}

TEST_CASE("PutBack wakes sleeping workers", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  FakePeer& other = h.NewPeer();
  h.broker->CanDo(w, "f");
  h.broker->CanDo(other, "f");
  const std::string job = h.Fg(c, "f");
  REQUIRE(h.Grab(w) == job);
  h.broker->PreSleep(other);
  const auto noops = other.noops;
  REQUIRE(h.broker->PutBack(w, job));
  CHECK(other.noops == noops + 1);
}

TEST_CASE("PutBack refuses a job the peer does not hold and frees a cancelled one", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  FakePeer& other = h.NewPeer();
  h.broker->CanDo(w, "f");
  const std::string job = h.Fg(c, "f");
  CHECK_FALSE(h.broker->PutBack(w, job));  // queued, not held
  REQUIRE(h.Grab(w) == job);
  CHECK_FALSE(h.broker->PutBack(other, job));
  CHECK_FALSE(h.broker->PutBack(w, "H:nope:1"));
  REQUIRE(h.broker->CancelJob(job) == CancelResult::kOk);
  CHECK(h.broker->PutBack(w, job));
  CHECK_FALSE(h.broker->GetStatus(job).known);  // freed, not re-queued
  CHECK(h.broker->LiveJobCount() == 0);
}

// Broker::GrabHandle / FindQueued: re-binding a journalled Jenkins build after a restart.
TEST_CASE("GrabHandle assigns one particular queued job, whatever the peer registered", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  FakePeer& manager = h.NewPeer();
  h.broker->CanDo(w, "f");
  const std::string first = h.Fg(c, "f", "u1");
  const std::string second = h.Fg(c, "f", "u2");
  CHECK(h.broker->FindQueued("f", "u2") == second);
  CHECK(h.broker->FindQueued("f", "nope").empty());
  CHECK(h.broker->FindQueued("g", "u2").empty());
  const Job* job = h.broker->GrabHandle(manager, second);
  REQUIRE(job != nullptr);
  CHECK(job->handle() == second);
  CHECK(job->running());
  CHECK(h.broker->FindQueued("f", "u2").empty());  // running now
  CHECK(h.broker->GrabHandle(manager, second) == nullptr);
  CHECK(h.broker->GrabHandle(manager, "H:nope:1") == nullptr);
  CHECK(h.Grab(w) == first);  // the other job is still handed out normally
  CHECK(h.Complete(manager, second) == WorkResult::kOk);
  CHECK(c.work.back().type == PacketType::kWorkComplete);
}

}  // namespace
}  // namespace roundhouse::broker::testing
