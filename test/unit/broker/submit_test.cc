// Submission: handles (§3.2), coalescing (§3.3), field limits (§1.5), maxqueue (§3.12).

#include <catch2/catch.hpp>
#include <string>

#include "broker_fakes.h"

namespace roundhouse::broker::testing {
namespace {

TEST_CASE("handles are the prefix and a counter starting at the clock's microseconds", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  const std::string h1 = h.Fg(c, "f");
  const std::string h2 = h.Fg(c, "f");
  CHECK(h1 == "H:test:1700000000000000");
  CHECK(h2 == "H:test:1700000000000001");
}

TEST_CASE("the handle counter starts above the floor and every restored id", "[broker]") {
  SECTION("floor above the clock") {
    Harness h;
    h.broker->SetHandleFloor(2'000'000'000'000'000);
    FakePeer& c = h.NewPeer();
    CHECK(h.Fg(c, "f") == "H:test:2000000000000000");
  }
  SECTION("restored id above floor and clock") {
    Harness h;
    h.broker->SetHandleFloor(5);
    storage::JobRecord rec;
    rec.id = 3'000'000'000'000'000;
    rec.handle = "H:old:3000000000000000";
    rec.function = "f";
    rec.data = "d";
    h.broker->Restore(std::move(rec));
    FakePeer& c = h.NewPeer();
    CHECK(h.Fg(c, "f") == "H:test:3000000000000001");
  }
  SECTION("a floor raised after the counter started still applies") {
    Harness h;
    FakePeer& c = h.NewPeer();
    (void)h.Fg(c, "f");
    h.broker->SetHandleFloor(9'000'000'000'000'000);
    CHECK(h.Fg(c, "f") == "H:test:9000000000000000");
  }
}

TEST_CASE("the store reserves handle ids in blocks before they are issued", "[broker]") {
  Harness h(DefaultOptions(), /*with_store=*/true);
  FakePeer& c = h.NewPeer();
  const uint64_t first = 1'700'000'000'000'000;
  uint64_t cancelled = 0;
  for (uint64_t i = 0; i < 1'000'001; ++i) {
    const std::string handle = h.Fg(c, "f");
    cancelled += h.broker->CancelJob(handle) == CancelResult::kOk ? 1 : 0;
    c.work.clear();
  }
  REQUIRE(cancelled == 1'000'001);
  REQUIRE(h.store.ceilings.size() == 2);
  CHECK(h.store.ceilings[0] == first + 1'000'000);
  CHECK(h.store.ceilings[1] == first + 2'000'000);
  CHECK(h.broker->LiveJobCount() == 0);
}

TEST_CASE("an empty unique never coalesces", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  CHECK(h.Fg(c, "f", "", "x") != h.Fg(c, "f", "", "x"));
  CHECK(h.Bg(c, "f", "", "x") != h.Bg(c, "f", "", "x"));
  CHECK(h.Counts("f")->total() == 4);
}

TEST_CASE("a matching unique coalesces across priorities and foreground or background",
          "[broker]") {
  Harness h;
  FakePeer& c1 = h.NewPeer();
  FakePeer& c2 = h.NewPeer();
  const std::string handle = h.Fg(c1, "f", "u", "first", Priority::kLow);
  CHECK(h.Fg(c2, "f", "u", "second", Priority::kHigh) == handle);
  CHECK(h.Bg(c2, "f", "u", "third", Priority::kNormal) == handle);
  CHECK(h.Counts("f")->total() == 1);
  const Job* job = h.broker->JobsInCreationOrder().at(0);
  CHECK(job->data() == "first");             // the coalesced submits' DATA is ignored
  CHECK(job->priority() == Priority::kLow);  // and so is their priority
  CHECK(job->background());                  // any background submission makes it background
  CHECK(job->client_count() == 2);
}

TEST_CASE("coalescing is per function", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  CHECK(h.Fg(c, "f", "u") != h.Fg(c, "g", "u"));
}

TEST_CASE("unique '-' coalesces on DATA and stays '-'", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  const std::string a = h.Fg(c, "f", "-", "abc");
  CHECK(h.Fg(c, "f", "-", "abc") == a);
  CHECK(h.Fg(c, "f", "-", "abd") != a);
  CHECK(h.Fg(c, "f", "abc", "zzz") != a);  // a real unique equal to the DATA is another key
  CHECK(h.Fg(c, "f", "-", "") != h.Fg(c, "f", "-", ""));  // empty DATA never coalesces
  const Job* job = h.broker->JobsInCreationOrder().at(0);
  CHECK(job->handle() == a);
  CHECK(job->unique() == "-");
}

TEST_CASE("a coalesced foreground client receives only results sent after it attached",
          "[broker]") {
  Harness h;
  FakePeer& c1 = h.NewPeer();
  FakePeer& c2 = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  const std::string handle = h.Fg(c1, "f", "u");
  REQUIRE(h.Grab(w) == handle);
  const std::string d1 = handle + std::string("\0one", 4);
  REQUIRE(h.broker->Work(w, PacketType::kWorkData, handle, d1) == WorkResult::kOk);
  CHECK(h.Fg(c2, "f", "u") == handle);  // coalesces onto a running job
  REQUIRE(h.Complete(w, handle) == WorkResult::kOk);
  CHECK(c1.work.size() == 2);
  REQUIRE(c2.work.size() == 1);
  CHECK(c2.work[0].type == PacketType::kWorkComplete);
}

TEST_CASE("the unique is free again once the job ends", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  const std::string first = h.Fg(c, "f", "u");
  REQUIRE(h.Grab(w) == first);
  REQUIRE(h.Complete(w, first) == WorkResult::kOk);
  const std::string second = h.Fg(c, "f", "u");
  CHECK(!second.empty());
  CHECK(second != first);
}

TEST_CASE("a 64-byte unique is kept whole and a 65-byte one is refused", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  const std::string u64(64, 'u');
  const std::string handle = h.Fg(c, "f", u64);
  CHECK(h.Fg(c, "f", u64) == handle);  // all 64 bytes kept: it coalesces
  CHECK(h.broker->JobsInCreationOrder().at(0)->unique() == u64);

  SubmitOutcome out = h.Submit(c, "f", std::string(65, 'u'), "x");
  CHECK_FALSE(out.pending);
  CHECK_FALSE(out.reply.ok);
  CHECK(out.reply.error_code == "ARGUMENT_TOO_LARGE");
  CHECK(out.reply.error_text == "Unique value too large");
}

TEST_CASE("a reducer over the unique limit is refused and a valid one is kept", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  SubmitArgs args;
  args.reducer = std::string(65, 'r');
  SubmitOutcome out = h.Submit(c, "f", "u", "x", args);
  CHECK(out.reply.error_code == "ARGUMENT_TOO_LARGE");
  CHECK(out.reply.error_text == "Unique value too large");
  CHECK(h.broker->LiveJobCount() == 0);

  args.reducer = "count";
  CHECK(h.Submit(c, "f", "u", "x", args).reply.ok);
  CHECK(h.broker->JobsInCreationOrder().at(0)->reducer() == "count");
}

TEST_CASE("maxqueue refuses a new job once the function's total reaches the limit", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  h.broker->SetMaxQueue("f", {0, 2, 0});
  const std::string first = h.Fg(c, "f", "a");
  REQUIRE(!first.empty());
  REQUIRE(!h.Fg(c, "f", "b").empty());
  REQUIRE(h.Grab(w) == first);  // running jobs count too

  SubmitOutcome out = h.Submit(c, "f", "c", "x");
  CHECK_FALSE(out.reply.ok);
  CHECK(out.reply.error_code == "QUEUE_ERROR");
  CHECK(out.reply.error_text == "Job queue is full");

  CHECK(h.Fg(c, "f", "a") == first);  // coalesced submits are not checked
  CHECK_FALSE(h.Fg(c, "f", "d", "x", Priority::kHigh).empty());  // HIGH is unlimited

  SECTION("limits are per priority but count every priority's jobs") {
    h.broker->SetMaxQueue("f", {0, 0, 3});
    CHECK(h.Submit(c, "f", "", "x", SubmitArgs{Priority::kLow, false, 0, ""}).reply.error_code ==
          "QUEUE_ERROR");
  }
  SECTION("background submits are limited alike") {
    CHECK(h.Submit(c, "f", "", "x", SubmitArgs{Priority::kNormal, true, 0, ""}).reply.error_code ==
          "QUEUE_ERROR");
  }
  SECTION("zero removes the limit") {
    h.broker->SetMaxQueue("f", {0, 0, 0});
    CHECK(h.Submit(c, "f", "c", "x").reply.ok);
  }
}

TEST_CASE("maxqueue on an unknown function is ignored", "[broker]") {
  Harness h;
  h.broker->SetMaxQueue("nope", {1, 1, 1});
  CHECK(h.broker->FunctionsByName().empty());
}

TEST_CASE("a submit creates its function", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  (void)h.Fg(c, "new-fn");
  const Function* fn = h.Fn("new-fn");
  REQUIRE(fn != nullptr);
  CHECK(fn->total() == 1);
  CHECK(fn->queued(Priority::kNormal) == 1);
  CHECK(fn->worker_count() == 0);
}

TEST_CASE("submitted bytes may contain NULs and are kept exactly", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, std::string("f\0n", 3));
  const std::string data("a\0b\0", 4);
  (void)h.Fg(c, std::string("f\0n", 3), "", data);
  const Job* job = h.broker->Grab(w, GrabKind::kUniq);
  REQUIRE(job != nullptr);
  CHECK(job->data() == data);
  CHECK(job->function_name() == std::string("f\0n", 3));
  CHECK(job->unique().empty());
}

}  // namespace
}  // namespace roundhouse::broker::testing
