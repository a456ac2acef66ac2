// Wake-ups (§3.6) and epoch jobs (§3.5).

#include <catch2/catch.hpp>
#include <string>

#include "broker_fakes.h"

namespace roundhouse::broker::testing {
namespace {

constexpr int64_t kNowSeconds = 1'700'000'000;  // FakeClock's start

TEST_CASE("three sleeping workers and two new jobs: each worker gets exactly one NOOP",
          "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& a = h.NewPeer();
  FakePeer& b = h.NewPeer();
  FakePeer& d = h.NewPeer();
  for (FakePeer* w : {&a, &b, &d}) {
    h.broker->CanDo(*w, "f");
    h.broker->PreSleep(*w);
  }
  (void)h.Fg(c, "f");
  (void)h.Fg(c, "f");
  CHECK(a.noops == 1);
  CHECK(b.noops == 1);
  CHECK(d.noops == 1);
  CHECK(a.state().noop_sent);
  CHECK(a.state().sleeping);
}

TEST_CASE("-w 1 wakes one worker per runnable job and rotates the ring", "[broker]") {
  Options o = DefaultOptions();
  o.worker_wakeup = 1;
  Harness h(o);
  FakePeer& c = h.NewPeer();
  FakePeer& a = h.NewPeer();
  FakePeer& b = h.NewPeer();
  FakePeer& d = h.NewPeer();
  for (FakePeer* w : {&a, &b, &d}) {
    h.broker->CanDo(*w, "f");
    h.broker->PreSleep(*w);
  }
  auto cycle = [&](FakePeer& w) {  // the woken worker takes its job, finishes it, sleeps
    const std::string handle = h.Grab(w);
    REQUIRE(!handle.empty());
    REQUIRE(h.Complete(w, handle) == WorkResult::kOk);
    h.broker->PreSleep(w);
  };
  (void)h.Fg(c, "f");
  CHECK((a.noops == 1 && b.noops == 0 && d.noops == 0));
  cycle(a);
  (void)h.Fg(c, "f");
  CHECK((a.noops == 1 && b.noops == 1 && d.noops == 0));  // the walk resumes after a
  cycle(b);
  (void)h.Fg(c, "f");
  CHECK((a.noops == 1 && b.noops == 1 && d.noops == 1));
  (void)h.Fg(c, "f");  // d has not grabbed yet: the walk wraps around to a
  CHECK((a.noops == 2 && b.noops == 1 && d.noops == 1));
  (void)h.Fg(c, "f");
  CHECK((a.noops == 2 && b.noops == 2 && d.noops == 1));
  (void)h.Fg(c, "f");  // everyone has a NOOP outstanding: nothing more is sent
  CHECK((a.noops == 2 && b.noops == 2 && d.noops == 1));
}

TEST_CASE("-w N stops after N NOOPs per job", "[broker]") {
  Options o = DefaultOptions();
  o.worker_wakeup = 2;
  Harness h(o);
  FakePeer& c = h.NewPeer();
  std::vector<FakePeer*> workers;
  for (int i = 0; i < 5; ++i) {
    workers.push_back(&h.NewPeer());
    h.broker->CanDo(*workers.back(), "f");
    h.broker->PreSleep(*workers.back());
  }
  (void)h.Fg(c, "f");
  int total = 0;
  for (FakePeer* w : workers) total += w->noops;
  CHECK(total == 2);
  CHECK(workers[0]->noops == 1);
  CHECK(workers[1]->noops == 1);
  (void)h.Fg(c, "f");
  CHECK(workers[2]->noops == 1);
  CHECK(workers[3]->noops == 1);
  CHECK(workers[4]->noops == 0);
}

TEST_CASE("a worker that never sends PRE_SLEEP is never sent NOOP", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  (void)h.Fg(c, "f");
  (void)h.Fg(c, "f");
  CHECK(w.noops == 0);
}

TEST_CASE("only sleeping workers registered for the job's function are woken", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& f_worker = h.NewPeer();
  FakePeer& g_worker = h.NewPeer();
  h.broker->CanDo(f_worker, "f");
  h.broker->CanDo(g_worker, "g");
  h.broker->PreSleep(f_worker);
  h.broker->PreSleep(g_worker);
  (void)h.Fg(c, "f");
  CHECK(f_worker.noops == 1);
  CHECK(g_worker.noops == 0);
}

TEST_CASE("PRE_SLEEP with a due job sends NOOP at once and does not sleep", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "g");
  h.broker->CanDo(w, "f");
  (void)h.Fg(c, "f");
  h.broker->PreSleep(w);
  CHECK(w.noops == 1);
  CHECK_FALSE(w.state().sleeping);

  SECTION("even with a NOOP outstanding") {
    FakePeer& w2 = h.NewPeer();
    h.broker->CanDo(w2, "f");
    REQUIRE(h.Grab(w) != "");  // empty the queue
    h.broker->PreSleep(w2);    // sleeps
    (void)h.Fg(c, "f");        // NOOP → noop_sent
    REQUIRE(w2.noops == 1);
    REQUIRE(w2.state().noop_sent);
    h.broker->PreSleep(w2);  // a due job exists: NOOP again
    CHECK(w2.noops == 2);
  }
}

TEST_CASE("PRE_SLEEP without registrations sleeps and sends nothing", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  (void)h.Fg(c, "f");
  h.broker->PreSleep(w);
  CHECK(w.noops == 0);
  CHECK(w.state().sleeping);
  CHECK(w.state().acted_as_worker);
}

TEST_CASE("GRAB clears sleeping and NOOP-sent so the next job wakes the worker again", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  h.broker->PreSleep(w);
  (void)h.Fg(c, "f");
  REQUIRE(w.noops == 1);
  (void)h.Fg(c, "f");
  CHECK(w.noops == 1);  // one outstanding NOOP at most
  REQUIRE(!h.Grab(w).empty());
  CHECK_FALSE(w.state().sleeping);
  CHECK_FALSE(w.state().noop_sent);
  REQUIRE(!h.Grab(w).empty());
  CHECK(h.Grab(w).empty());  // NO_JOB also clears them
  h.broker->PreSleep(w);
  (void)h.Fg(c, "f");
  CHECK(w.noops == 2);
}

TEST_CASE("a sleeping worker that registers a new function is woken for it", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->PreSleep(w);
  h.broker->CanDo(w, "f");
  (void)h.Fg(c, "f");
  CHECK(w.noops == 1);
}

TEST_CASE("CANT_DO takes the worker out of the function's wake-up ring", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  h.broker->CanDo(w, "g");
  h.broker->PreSleep(w);
  h.broker->CantDo(w, "f");
  h.broker->CantDo(w, "unknown");  // ignored
  (void)h.Fg(c, "f");
  CHECK(w.noops == 0);
  CHECK(h.Counts("f")->worker_count() == 0);
  (void)h.Fg(c, "g");
  CHECK(w.noops == 1);
}

TEST_CASE("a departing worker leaves the wake-up rotation intact", "[broker]") {
  Options o = DefaultOptions();
  o.worker_wakeup = 1;
  Harness h(o);
  FakePeer& c = h.NewPeer();
  FakePeer& a = h.NewPeer();
  FakePeer& b = h.NewPeer();
  FakePeer& d = h.NewPeer();
  for (FakePeer* w : {&a, &b, &d}) {
    h.broker->CanDo(*w, "f");
    h.broker->CanDo(*w, "f");  // a repeat is not a second ring entry
    h.broker->PreSleep(*w);
  }
  (void)h.Fg(c, "f");  // a is woken; the next walk starts at b
  REQUIRE(a.noops == 1);
  h.broker->Detach(a);
  CHECK(h.Counts("f")->worker_count() == 2);
  (void)h.Fg(c, "f");
  CHECK(b.noops == 1);
  CHECK(d.noops == 0);
  (void)h.Fg(c, "f");
  CHECK(d.noops == 1);
}

TEST_CASE("an in-process worker is woken, grabs later and finishes like any worker", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer(5);
  FakePeer& executor = h.NewPeer(-1);
  h.broker->SetClientId(executor, "node_exec-0");
  h.broker->CanDo(executor, "build:job");
  h.broker->PreSleep(executor);
  const std::string handle = h.Fg(c, "build:job", "zuul-uuid", "{}");
  REQUIRE(executor.noops == 1);  // the adapter defers its Grab to a later callback
  const Job* job = h.broker->Grab(executor, GrabKind::kUniq);
  REQUIRE(job != nullptr);
  CHECK(job->unique() == "zuul-uuid");
  const std::string body = handle + std::string("\0started", 8);
  REQUIRE(h.broker->Work(executor, PacketType::kWorkData, handle, body) == WorkResult::kOk);
  REQUIRE(h.Complete(executor, handle) == WorkResult::kOk);
  CHECK(c.work.size() == 2);
  CHECK(h.broker->WorkerPeers().at(0) == &executor);
}

TEST_CASE("a not-yet-due epoch job wakes nobody, is not grabbable and blocks nothing", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  h.broker->PreSleep(w);
  SubmitArgs epoch{Priority::kNormal, true, kNowSeconds + 60, ""};
  const std::string later = h.Handle(c, "f", "ep1", "x", epoch);
  REQUIRE(!later.empty());
  CHECK(w.noops == 0);
  h.broker->PreSleep(w);  // the only job is not due: sleep
  CHECK(w.noops == 0);
  CHECK(w.state().sleeping);

  const std::string now_job = h.Fg(c, "f", "", "x", Priority::kLow);
  CHECK(w.noops == 1);
  CHECK(h.Grab(w) == now_job);  // the epoch job ahead of it never blocks it
  CHECK(h.Grab(w).empty());

  const Function* fn = h.Fn("f");
  CHECK(fn->total() == 2);
  CHECK(fn->queued(Priority::kNormal) == 1);  // epoch jobs count as queued NORMAL
  const Job* job = h.broker->JobsInCreationOrder().at(0);
  CHECK(job->when() == kNowSeconds + 60);
  CHECK_FALSE(job->running());
}

TEST_CASE("the epoch timer makes the job runnable at its time and wakes sleepers", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  h.broker->PreSleep(w);
  SubmitArgs epoch{Priority::kNormal, true, kNowSeconds + 60, ""};
  const std::string handle = h.Handle(c, "f", "", "x", epoch);
  REQUIRE(h.scheduled.size() == 1);
  CHECK(h.scheduled[0] == h.clock.MonotonicMs() + 60'000);
  CHECK(h.broker->NextTimerDeadline() == h.scheduled[0]);

  h.clock.AdvanceMs(59'999);
  h.broker->RunTimers();
  CHECK(w.noops == 0);
  CHECK(h.Grab(w).empty());
  h.broker->PreSleep(w);

  h.clock.AdvanceMs(1);
  h.broker->RunTimers();
  CHECK(w.noops == 1);
  CHECK(h.Grab(w) == handle);
  CHECK_FALSE(h.broker->NextTimerDeadline().has_value());
}

TEST_CASE("an epoch time in the past or zero is runnable at once", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  h.broker->PreSleep(w);
  const std::string past =
      h.Handle(c, "f", "", "x", SubmitArgs{Priority::kNormal, true, kNowSeconds - 5, ""});
  CHECK(w.noops == 1);
  CHECK(h.Grab(w) == past);
  const std::string same_second =
      h.Handle(c, "f", "", "x", SubmitArgs{Priority::kNormal, true, kNowSeconds, ""});
  CHECK(h.Grab(w) == same_second);
  CHECK(h.scheduled.empty());
}

TEST_CASE("a due epoch job joins the tail of NORMAL", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  const std::string a = h.Fg(c, "f");
  const std::string e =
      h.Handle(c, "f", "", "x", SubmitArgs{Priority::kNormal, true, kNowSeconds + 1, ""});
  const std::string b = h.Fg(c, "f");
  h.clock.AdvanceMs(1000);
  h.broker->RunTimers();
  CHECK(h.Grab(w) == a);
  CHECK(h.Grab(w) == b);
  CHECK(h.Grab(w) == e);
}

TEST_CASE("GRAB takes a job whose time has come even before the timer runs", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  const std::string e =
      h.Handle(c, "f", "", "x", SubmitArgs{Priority::kNormal, true, kNowSeconds + 2, ""});
  h.clock.AdvanceMs(2000);
  CHECK(h.Grab(w) == e);
}

TEST_CASE("epoch jobs become due in time order", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  const std::string late =
      h.Handle(c, "f", "", "x", SubmitArgs{Priority::kNormal, true, kNowSeconds + 30, ""});
  const std::string early =
      h.Handle(c, "f", "", "x", SubmitArgs{Priority::kNormal, true, kNowSeconds + 10, ""});
  REQUIRE(h.scheduled.size() == 2);  // the second timer is earlier: announced again
  CHECK(h.scheduled[1] < h.scheduled[0]);
  h.clock.AdvanceMs(10'000);
  h.broker->RunTimers();
  CHECK(h.scheduled.back() == h.clock.MonotonicMs() + 20'000);  // re-armed for the next one
  CHECK(h.Grab(w) == early);
  CHECK(h.Grab(w).empty());
  h.clock.AdvanceMs(20'000);
  h.broker->RunTimers();
  CHECK(h.Grab(w) == late);
}

}  // namespace
}  // namespace roundhouse::broker::testing
