// Background jobs with a durable store (§3.3, §6.1) and start-up replay.

#include <catch2/catch.hpp>
#include <string>

#include "broker_fakes.h"

namespace roundhouse::broker::testing {
namespace {

constexpr int64_t kNowSeconds = 1'700'000'000;

SubmitArgs BgArgs(Priority p = Priority::kNormal) { return SubmitArgs{p, true, 0, ""}; }

TEST_CASE("a background submit with a store is answered only after the commit", "[broker]") {
  Harness h(DefaultOptions(), /*with_store=*/true);
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  h.broker->PreSleep(w);
  SubmitArgs args = BgArgs(Priority::kHigh);
  args.reducer = "red";
  const SubmitOutcome out = h.Submit(c, "f", "u", "payload", args);
  REQUIRE(out.pending);
  CHECK(out.ticket == 1);
  REQUIRE(h.store.adds.size() == 1);
  const storage::JobRecord& rec = h.store.adds[0].record;
  CHECK(rec.handle == "H:test:" + std::to_string(rec.id));
  CHECK(rec.function == "f");
  CHECK(rec.unique == "u");
  CHECK(rec.reducer == "red");
  CHECK(rec.data == "payload");
  CHECK(rec.priority == 0);
  CHECK(rec.when == 0);
  const std::string handle = rec.handle;

  // Meanwhile: not grabbable, invisible, nobody woken.
  CHECK(w.noops == 0);
  CHECK(h.Grab(w).empty());
  h.broker->PreSleep(w);
  CHECK_FALSE(h.broker->GetStatus(handle).known);
  CHECK(h.broker->CancelJob(handle) == CancelResult::kUnknownJob);
  CHECK(h.broker->JobsInCreationOrder().empty());
  CHECK(h.Counts("f")->total() == 0);
  CHECK(h.broker->LiveJobCount() == 1);
  CHECK(c.done.empty());

  h.store.CommitNext();
  REQUIRE(c.done.size() == 1);
  CHECK(c.done[0].ticket == 1);
  CHECK(c.done[0].ok);
  CHECK(c.done[0].handle == handle);
  CHECK(w.noops == 1);
  const Job* job = h.broker->JobsInCreationOrder().at(0);
  CHECK(job->durable());
  CHECK(job->background());
  CHECK(h.Grab(w) == handle);
}

// Regression: with -j N, SIGTERM detached every worker through the re-queue path, which counted
// a retry, dropped the running job and deleted its durable row before the final commit.
TEST_CASE("shutdown leaves a running durable job and its row as they were, even with -j 1",
          "[broker]") {
  Options o = DefaultOptions();
  o.job_retries = 1;
  Harness h(o, /*with_store=*/true);
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  REQUIRE(h.Submit(c, "f", "u", "payload", BgArgs()).pending);
  h.store.CommitAll();
  const std::string handle = h.Grab(w);
  REQUIRE_FALSE(handle.empty());
  const uint64_t id = h.broker->JobsInCreationOrder().at(0)->id();
  FakePeer& sleeper = h.NewPeer();
  h.broker->CanDo(sleeper, "f");
  h.broker->PreSleep(sleeper);

  h.broker->BeginShutdown();
  h.broker->Detach(w);

  CHECK(h.store.removes.empty());
  CHECK(h.store.rows.count(id) == 1);
  CHECK(c.work.empty());         // no WORK_FAIL for a retry drop
  CHECK(sleeper.noops == 0);     // nobody is woken while the server goes away
  const JobStatus status = h.broker->GetStatus(handle);
  CHECK(status.known);
  CHECK_FALSE(status.running);
  CHECK(h.broker->JobsInCreationOrder().at(0)->retries() == 0);
}

TEST_CASE("pending replies reach a peer in ticket order", "[broker]") {
  Harness h(DefaultOptions(), /*with_store=*/true);
  FakePeer& q = h.NewPeer();
  FakePeer& p = h.NewPeer();
  // Add #1 (by q) creates job Y; then p submits a new job X (Add #2, ticket 1) and coalesces
  // onto Y (ticket 2). Y's commit lands first, but p must see ticket 1 first.
  REQUIRE(h.Submit(q, "f", "y", "d", BgArgs()).pending);
  const SubmitOutcome t1 = h.Submit(p, "f", "x", "d", BgArgs());
  const SubmitOutcome t2 = h.Submit(p, "f", "y", "d", BgArgs());
  REQUIRE(t1.pending);
  REQUIRE(t2.pending);
  CHECK(t1.ticket == 1);
  CHECK(t2.ticket == 2);
  REQUIRE(h.store.adds.size() == 2);  // the coalesced submit writes nothing

  h.store.CommitNext();  // Y
  CHECK(q.done.size() == 1);
  CHECK(p.done.empty());  // ticket 2 is ready but waits for ticket 1
  h.store.CommitNext();   // X
  REQUIRE(p.done.size() == 2);
  CHECK(p.done[0].ticket == 1);
  CHECK(p.done[1].ticket == 2);
  CHECK(p.done[1].handle == q.done[0].handle);
}

TEST_CASE("a failed durable write answers QUEUE_ERROR and leaves no job", "[broker]") {
  LogCapture log;
  Harness h(DefaultOptions(), /*with_store=*/true);
  FakePeer& c = h.NewPeer();
  FakePeer& bg_waiter = h.NewPeer();
  FakePeer& fg_waiter = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  REQUIRE(h.Submit(c, "f", "u", "d", BgArgs()).pending);
  REQUIRE(h.Submit(bg_waiter, "f", "u", "d", BgArgs()).pending);
  REQUIRE(h.Submit(fg_waiter, "f", "u", "d").pending);  // waits for the same write
  const uint64_t id = h.store.adds[0].record.id;
  h.store.FailNext("disk I/O error");

  for (FakePeer* p : {&c, &bg_waiter, &fg_waiter}) {
    REQUIRE(p->done.size() == 1);
    CHECK_FALSE(p->done[0].ok);
    CHECK(p->done[0].error_code == "QUEUE_ERROR");
    CHECK(p->done[0].error_text == "disk I/O error");
  }
  CHECK(h.broker->LiveJobCount() == 0);
  CHECK(h.Counts("f")->total() == 0);
  CHECK(fg_waiter.state().waiting.empty());
  CHECK(h.Grab(w).empty());
  CHECK(h.store.rows.empty());
  CHECK(log.Contains("ERROR Durable write failed for job H:test:" + std::to_string(id) +
                     ": disk I/O error"));
  // The unique is free: a new submit starts a new job.
  REQUIRE(h.Submit(c, "f", "u", "d", BgArgs()).pending);
  CHECK(h.store.adds.back().record.id != id);
}

TEST_CASE("a foreground submit onto a job being written is attached once it commits", "[broker]") {
  Harness h(DefaultOptions(), /*with_store=*/true);
  FakePeer& c = h.NewPeer();
  FakePeer& fg = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  REQUIRE(h.Submit(c, "f", "u", "d", BgArgs()).pending);
  REQUIRE(h.Submit(fg, "f", "u", "d").pending);
  h.store.CommitNext();
  REQUIRE(fg.done.size() == 1);
  CHECK(fg.done[0].ok);
  const std::string handle = fg.done[0].handle;
  CHECK(h.broker->GetStatus(handle).clients == 1);
  REQUIRE(h.Grab(w) == handle);
  REQUIRE(h.Complete(w, handle) == WorkResult::kOk);
  CHECK(fg.work.size() == 1);
}

TEST_CASE("a background submit onto a foreground job makes it durable before JOB_CREATED",
          "[broker]") {
  LogCapture log;
  Harness h(DefaultOptions(), /*with_store=*/true);
  FakePeer& fg = h.NewPeer();
  FakePeer& bg = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  const std::string handle = h.Fg(fg, "f", "u", "payload");
  REQUIRE(!handle.empty());
  CHECK(h.store.adds.empty());  // foreground jobs are never stored

  const SubmitOutcome out = h.Submit(bg, "f", "u", "other", BgArgs());
  REQUIRE(out.pending);
  REQUIRE(h.store.adds.size() == 1);
  CHECK(h.store.adds[0].record.handle == handle);
  CHECK(h.store.adds[0].record.data == "payload");
  CHECK_FALSE(h.broker->JobsInCreationOrder().at(0)->background());

  SECTION("commit: the job becomes background and durable") {
    h.store.CommitNext();
    REQUIRE(bg.done.size() == 1);
    CHECK(bg.done[0].ok);
    CHECK(bg.done[0].handle == handle);
    const Job* job = h.broker->JobsInCreationOrder().at(0);
    CHECK(job->background());
    CHECK(job->durable());
    h.broker->Detach(fg);  // no longer abandoned when the foreground client leaves
    CHECK(h.Grab(w) == handle);
    REQUIRE(h.Complete(w, handle) == WorkResult::kOk);
    CHECK(h.store.rows.empty());
  }
  SECTION("the foreground client leaving while the write is pending keeps the job") {
    h.broker->Detach(fg);
    CHECK(h.broker->GetStatus(handle).known);
    h.store.CommitNext();
    CHECK(bg.done.at(0).ok);
    CHECK(h.Grab(w) == handle);
  }
  SECTION("failure: the submitter gets QUEUE_ERROR and the job stays foreground") {
    h.store.FailNext("full");
    REQUIRE(bg.done.size() == 1);
    CHECK(bg.done[0].error_text == "full");
    const Job* job = h.broker->JobsInCreationOrder().at(0);
    CHECK_FALSE(job->background());
    CHECK_FALSE(job->durable());
    CHECK(job->client_count() == 1);
  }
  SECTION("failure after the foreground client left removes the abandoned job") {
    h.broker->Detach(fg);
    h.store.FailNext("full");
    CHECK(h.broker->LiveJobCount() == 0);
  }
  SECTION("a second background submit waits on the same write") {
    REQUIRE(h.Submit(fg, "f", "u", "x", BgArgs()).pending);
    CHECK(h.store.adds.size() == 1);
    h.store.CommitNext();
    CHECK(fg.done.size() == 1);
    CHECK(bg.done.size() == 1);
  }
  SECTION("the job ends while its write is in flight: the row is removed, the reply still comes") {
    REQUIRE(h.Grab(w) == handle);
    REQUIRE(h.Complete(w, handle) == WorkResult::kOk);
    h.store.CommitNext();
    REQUIRE(bg.done.size() == 1);
    CHECK(bg.done[0].ok);
    CHECK(h.store.rows.empty());
  }
}

TEST_CASE("a background submit onto a durable job is answered at once", "[broker]") {
  Harness h(DefaultOptions(), /*with_store=*/true);
  FakePeer& c = h.NewPeer();
  REQUIRE(h.Submit(c, "f", "u", "d", BgArgs()).pending);
  h.store.CommitNext();
  const SubmitOutcome again = h.Submit(c, "f", "u", "d", BgArgs());
  CHECK_FALSE(again.pending);
  CHECK(again.reply.ok);
  CHECK(again.reply.handle == c.done.at(0).handle);
  CHECK(h.store.adds.empty());
}

TEST_CASE("without a store background submits are answered at once", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  const SubmitOutcome out = h.Submit(c, "f", "u", "d", BgArgs());
  CHECK_FALSE(out.pending);
  CHECK(out.reply.ok);
  const Job* job = h.broker->JobsInCreationOrder().at(0);
  CHECK(job->background());
  CHECK_FALSE(job->durable());
}

TEST_CASE("ending a durable job deletes its row", "[broker]") {
  const PacketType type =
      GENERATE(PacketType::kWorkComplete, PacketType::kWorkFail, PacketType::kWorkException);
  Harness h(DefaultOptions(), /*with_store=*/true);
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  REQUIRE(h.Submit(c, "f", "u", "d", BgArgs()).pending);
  h.store.CommitNext();
  const std::string handle = c.done.at(0).handle;
  REQUIRE(h.store.rows.size() == 1);
  REQUIRE(h.Grab(w) == handle);
  CHECK(h.store.rows.size() == 1);  // not deleted while running
  REQUIRE(h.broker->Work(w, type, handle, handle) == WorkResult::kOk);
  CHECK(h.store.rows.empty());
  CHECK(h.store.removes.size() == 1);
}

TEST_CASE("a worker disconnect keeps the durable row of a re-queued job", "[broker]") {
  Harness h(DefaultOptions(), /*with_store=*/true);
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  REQUIRE(h.Submit(c, "f", "u", "d", BgArgs()).pending);
  h.store.CommitNext();
  REQUIRE(!h.Grab(w).empty());
  h.broker->Detach(w);
  CHECK(h.store.rows.size() == 1);
  CHECK(h.store.removes.empty());
}

TEST_CASE("a peer that leaves before its commit gets no reply but the job is created", "[broker]") {
  Harness h(DefaultOptions(), /*with_store=*/true);
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  REQUIRE(h.Submit(c, "f", "u", "d", BgArgs()).pending);
  h.broker->Detach(c);
  h.store.CommitNext();
  CHECK(c.done.empty());
  CHECK_FALSE(h.Grab(w).empty());
}

TEST_CASE("jobs awaiting their first write count against maxqueue", "[broker]") {
  Harness h(DefaultOptions(), /*with_store=*/true);
  FakePeer& c = h.NewPeer();
  h.broker->CreateFunction("f");
  h.broker->SetMaxQueue("f", {1, 1, 1});
  REQUIRE(h.Submit(c, "f", "", "d", BgArgs()).pending);
  const SubmitOutcome out = h.Submit(c, "f", "", "d", BgArgs());
  CHECK_FALSE(out.pending);
  CHECK(out.reply.error_text == "Job queue is full");
}

TEST_CASE("an epoch job with a store waits for its time after the commit", "[broker]") {
  Harness h(DefaultOptions(), /*with_store=*/true);
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  REQUIRE(h.Submit(c, "f", "e", "d", SubmitArgs{Priority::kNormal, true, kNowSeconds + 10, ""})
              .pending);
  CHECK(h.store.adds.at(0).record.when == kNowSeconds + 10);
  h.store.CommitNext();
  CHECK(c.done.at(0).ok);
  CHECK(h.Grab(w).empty());
  h.clock.AdvanceMs(10'000);
  h.broker->RunTimers();
  CHECK(h.Grab(w) == c.done.at(0).handle);
}

TEST_CASE("restore replays durable jobs with their handles without re-writing them", "[broker]") {
  Harness h(DefaultOptions(), /*with_store=*/true);
  auto record = [](uint64_t id, std::string unique, uint8_t prio, int64_t when) {
    storage::JobRecord r;
    r.id = id;
    r.handle = "H:oldhost:" + std::to_string(id);
    r.function = "f";
    r.unique = std::move(unique);
    r.data = "data" + std::to_string(id);
    r.priority = prio;
    r.when = when;
    return r;
  };
  h.broker->SetHandleFloor(100);
  h.broker->Restore(record(10, "u10", 2, 0));
  h.broker->Restore(record(11, "", 0, 0));
  h.broker->Restore(record(12, "u12", 1, kNowSeconds + 100));
  CHECK(h.store.adds.empty());
  CHECK(h.broker->LiveJobCount() == 3);

  const auto jobs = h.broker->JobsInCreationOrder();
  REQUIRE(jobs.size() == 3);
  CHECK(jobs[0]->handle() == "H:oldhost:10");
  CHECK(jobs[0]->durable());
  CHECK(jobs[0]->background());
  CHECK(jobs[0]->priority() == Priority::kLow);
  CHECK(jobs[1]->priority() == Priority::kHigh);
  CHECK(jobs[2]->when() == kNowSeconds + 100);

  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  // Coalescing index rebuilt.
  const SubmitOutcome again = h.Submit(c, "f", "u10", "x", BgArgs());
  CHECK(again.reply.handle == "H:oldhost:10");
  // Priorities and epoch respected.
  CHECK(h.Grab(w) == "H:oldhost:11");
  CHECK(h.Grab(w) == "H:oldhost:10");
  CHECK(h.Grab(w).empty());
  // Ending a restored job deletes its row.
  REQUIRE(h.Complete(w, "H:oldhost:10") == WorkResult::kOk);
  CHECK(h.store.removes == std::vector<uint64_t>{10});
  // New ids keep counting above the clock (itself above the restored ids here).
  CHECK(h.Fg(c, "f") == "H:test:1700000000000000");
}

TEST_CASE("restore skips duplicate ids and repairs a handle that does not carry its id",
          "[broker]") {
  LogCapture log;
  Harness h;
  storage::JobRecord a;
  a.id = 7;
  a.handle = "H:x:8";
  a.function = "f";
  storage::JobRecord b = a;
  h.broker->Restore(std::move(a));
  h.broker->Restore(std::move(b));
  const auto jobs = h.broker->JobsInCreationOrder();
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0]->handle() == "H:test:7");
}

TEST_CASE("a store callback after the broker is gone is ignored", "[broker]") {
  Harness h(DefaultOptions(), /*with_store=*/true);
  FakePeer& c = h.NewPeer();
  REQUIRE(h.Submit(c, "f", "u", "d", BgArgs()).pending);
  h.broker.reset();
  h.store.CommitNext();
  CHECK(c.done.empty());
}

}  // namespace
}  // namespace roundhouse::broker::testing

namespace roundhouse::broker::testing {
namespace {

// Graceful shutdown (doc/gearman-differences.md): what holds it, and refusal of new work.
TEST_CASE("a draining broker refuses submissions; only unfinished work holds the shutdown",
          "[broker][shutdown]") {
  Harness h(DefaultOptions(), /*with_store=*/true);
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "run");
  REQUIRE(h.Submit(c, "queued", "q", "d", BgArgs()).pending);  // durable once committed
  CHECK(h.broker->JobsHoldingShutdown() == 1);                 // awaiting its first write
  h.store.CommitAll();
  CHECK(h.broker->JobsHoldingShutdown() == 0);  // queued and durable: stays stored
  REQUIRE(h.Submit(c, "run", "r", "d", BgArgs()).pending);
  h.store.CommitAll();
  const std::string running = h.Grab(w);
  REQUIRE_FALSE(running.empty());
  CHECK(h.broker->JobsHoldingShutdown() == 1);  // running
  const SubmitOutcome fg = h.Submit(c, "queued", "fg", "d", SubmitArgs{});
  REQUIRE_FALSE(fg.pending);
  CHECK(h.broker->JobsHoldingShutdown() == 2);  // a foreground client waits

  h.broker->BeginDrain();
  CHECK(h.broker->draining());
  for (const SubmitArgs& args : {SubmitArgs{}, BgArgs(), BgArgs(Priority::kHigh)}) {
    const SubmitOutcome refused = h.Submit(c, "queued", "new", "d", args);
    CHECK_FALSE(refused.pending);
    CHECK_FALSE(refused.reply.ok);
    CHECK(refused.reply.error_code == "SHUTTING_DOWN");
  }
  // Coalescing onto a live job is a new submission too.
  CHECK(h.Submit(c, "queued", "q", "d", SubmitArgs{}).reply.error_code == "SHUTTING_DOWN");
  CHECK(h.broker->LiveJobCount() == 3);
  CHECK(h.store.adds.empty());
}

TEST_CASE("without a store every queued job holds a graceful shutdown", "[broker][shutdown]") {
  Harness h(DefaultOptions(), /*with_store=*/false);
  FakePeer& c = h.NewPeer();
  REQUIRE_FALSE(h.Submit(c, "f", "", "d", BgArgs()).pending);
  CHECK(h.broker->JobsHoldingShutdown() == 1);  // lost at exit: wait for a worker (bounded)
}

}  // namespace
}  // namespace roundhouse::broker::testing
