// WORK_* results (§2, §3.9) and foreground client disconnects (§3.10).

#include <catch2/catch.hpp>
#include <string>

#include "broker_fakes.h"

namespace roundhouse::broker::testing {
namespace {

std::string Body(const std::string& handle, std::string_view data) {
  std::string body = handle;
  body.push_back('\0');
  body.append(data);
  return body;
}

struct Running {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  std::string handle;
  explicit Running(Options o = DefaultOptions()) : h(std::move(o)) {
    h.broker->CanDo(w, "f");
    handle = h.Fg(c, "f", "u");
    REQUIRE(h.Grab(w) == handle);
  }
};

TEST_CASE("WORK_* for a job the peer does not hold is JOB_NOT_FOUND", "[broker]") {
  Running r;
  FakePeer& other = r.h.NewPeer();
  for (PacketType t :
       {PacketType::kWorkStatus, PacketType::kWorkComplete, PacketType::kWorkFail,
        PacketType::kWorkException, PacketType::kWorkData, PacketType::kWorkWarning}) {
    CHECK(r.h.broker->Work(other, t, r.handle, r.handle) == WorkResult::kJobNotFound);
    CHECK(r.h.broker->Work(r.c, t, r.handle, r.handle) == WorkResult::kJobNotFound);
    CHECK(r.h.broker->Work(r.w, t, "H:test:1", "H:test:1") == WorkResult::kJobNotFound);
  }
  CHECK(r.h.broker->GetStatus(r.handle).running);
  CHECK(r.c.work.empty());
}

TEST_CASE("WORK_* for a queued job is JOB_NOT_FOUND", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  const std::string handle = h.Fg(c, "f");
  CHECK(h.Complete(w, handle) == WorkResult::kJobNotFound);
}

TEST_CASE("WORK_FAIL with a handle of 64 bytes or more is ARGUMENT_TOO_LARGE", "[broker]") {
  Harness h;
  FakePeer& w = h.NewPeer();
  const std::string h63(63, 'h');
  const std::string h64(64, 'h');
  CHECK(h.broker->Work(w, PacketType::kWorkFail, h63, h63) == WorkResult::kJobNotFound);
  CHECK(h.broker->Work(w, PacketType::kWorkFail, h64, h64) == WorkResult::kHandleTooLarge);
  CHECK(h.broker->Work(w, PacketType::kWorkComplete, h64, h64) == WorkResult::kJobNotFound);
}

TEST_CASE("a handle that only looks like a live one is not found", "[broker]") {
  Running r;
  const std::string number = r.handle.substr(r.handle.rfind(':') + 1);
  CHECK(r.h.Complete(r.w, "H:other:" + number) == WorkResult::kJobNotFound);
  CHECK(r.h.Complete(r.w, "H:test:0" + number) == WorkResult::kJobNotFound);
  CHECK(r.h.Complete(r.w, number) == WorkResult::kJobNotFound);
  CHECK(r.h.Complete(r.w, "H:TEST:" + number) == WorkResult::kJobNotFound);
  CHECK(r.h.broker->GetStatus(r.handle).running);
}

TEST_CASE("WORK_STATUS stores NUM/DEN and forwards the bytes unchanged", "[broker]") {
  Running r;
  const std::string body = r.handle + std::string("\0003\0007", 4);
  REQUIRE(r.h.broker->Work(r.w, PacketType::kWorkStatus, r.handle, body, "3", "7") ==
          WorkResult::kOk);
  JobStatus st = r.h.broker->GetStatus(r.handle);
  CHECK(st.numerator == 3);
  CHECK(st.denominator == 7);
  REQUIRE(r.c.work.size() == 1);
  CHECK(r.c.work[0].type == PacketType::kWorkStatus);
  CHECK(r.c.work[0].payload == body);

  REQUIRE(r.h.broker->Work(r.w, PacketType::kWorkStatus, r.handle, body, "5x", "") ==
          WorkResult::kOk);
  st = r.h.broker->GetStatus(r.handle);
  CHECK(st.numerator == 0);  // non-digits → 0
  CHECK(st.denominator == 0);
}

TEST_CASE("WORK_DATA and WORK_WARNING are forwarded and the job goes on", "[broker]") {
  Running r;
  const std::string body = Body(r.handle, std::string("d\0ata", 5));
  REQUIRE(r.h.broker->Work(r.w, PacketType::kWorkData, r.handle, body) == WorkResult::kOk);
  REQUIRE(r.h.broker->Work(r.w, PacketType::kWorkWarning, r.handle, body) == WorkResult::kOk);
  REQUIRE(r.c.work.size() == 2);
  CHECK(r.c.work[0].type == PacketType::kWorkData);
  CHECK(r.c.work[0].payload == body);
  CHECK(r.c.work[1].type == PacketType::kWorkWarning);
  CHECK(r.h.broker->GetStatus(r.handle).running);
  CHECK(r.h.broker->GetStatus(r.handle).numerator == 0);
}

TEST_CASE("WORK_COMPLETE and WORK_FAIL are forwarded and end the job", "[broker]") {
  const PacketType type = GENERATE(PacketType::kWorkComplete, PacketType::kWorkFail);
  Running r;
  const std::string body = type == PacketType::kWorkFail ? r.handle : Body(r.handle, "result");
  REQUIRE(r.h.broker->Work(r.w, type, r.handle, body) == WorkResult::kOk);
  REQUIRE(r.c.work.size() == 1);
  CHECK(r.c.work[0].type == type);
  CHECK(r.c.work[0].payload == body);
  CHECK_FALSE(r.h.broker->GetStatus(r.handle).known);
  CHECK(r.w.state().running.empty());
  CHECK(r.c.state().waiting.empty());
  CHECK(r.h.Counts("f")->total() == 0);
  CHECK(r.h.broker->Work(r.w, PacketType::kWorkData, r.handle, body) == WorkResult::kJobNotFound);
}

TEST_CASE("WORK_EXCEPTION goes as WORK_FAIL \"HANDLE\\0\" to clients without the option",
          "[broker]") {
  Harness h;
  FakePeer& plain = h.NewPeer();
  FakePeer& opted = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->SetExceptions(opted, true);
  h.broker->CanDo(w, "f");
  const std::string handle = h.Fg(plain, "f", "u");
  REQUIRE(h.Fg(opted, "f", "u") == handle);
  REQUIRE(h.Grab(w) == handle);
  const std::string body = Body(handle, "boom");
  REQUIRE(h.broker->Work(w, PacketType::kWorkException, handle, body) == WorkResult::kOk);

  REQUIRE(plain.work.size() == 1);
  CHECK(plain.work[0].type == PacketType::kWorkFail);
  CHECK(plain.work[0].payload == handle + std::string("\0", 1));
  REQUIRE(opted.work.size() == 1);
  CHECK(opted.work[0].type == PacketType::kWorkException);
  CHECK(opted.work[0].payload == body);
  CHECK_FALSE(h.broker->GetStatus(handle).known);
  // After the job ended, another exception is an unknown job (gearmand 1.1.18 crashed here).
  CHECK(h.broker->Work(w, PacketType::kWorkException, handle, body) == WorkResult::kJobNotFound);
}

TEST_CASE("--exceptions makes the option the default for every peer", "[broker]") {
  Options o = DefaultOptions();
  o.exceptions_default = true;
  Running r(o);
  CHECK(r.c.state().exceptions);
  REQUIRE(r.h.broker->Work(r.w, PacketType::kWorkException, r.handle, Body(r.handle, "e")) ==
          WorkResult::kOk);
  REQUIRE(r.c.work.size() == 1);
  CHECK(r.c.work[0].type == PacketType::kWorkException);
}

TEST_CASE("a foreground client that submitted twice gets each result twice", "[broker]") {
  Running r;
  REQUIRE(r.h.Fg(r.c, "f", "u") == r.handle);
  CHECK(r.h.broker->GetStatus(r.handle).clients == 2);
  REQUIRE(r.h.Complete(r.w, r.handle) == WorkResult::kOk);
  CHECK(r.c.work.size() == 2);
  CHECK(r.c.state().waiting.empty());
}

TEST_CASE("an abandoned queued job is removed at once", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  const std::string handle = h.Fg(c, "f", "u");
  h.broker->Detach(c);
  CHECK_FALSE(h.broker->GetStatus(handle).known);
  CHECK(h.Counts("f")->total() == 0);
  CHECK(h.broker->LiveJobCount() == 0);
  CHECK(h.Grab(w).empty());
  FakePeer& c2 = h.NewPeer();
  CHECK(h.Fg(c2, "f", "u") != handle);  // the unique is free
}

TEST_CASE("an abandoned running job runs on, is ignored, and its results are discarded",
          "[broker]") {
  Running r;
  r.h.broker->Detach(r.c);
  CHECK(r.w.withdrawn == std::vector<std::string>{r.handle});
  const Job* job = r.h.broker->JobsInCreationOrder().at(0);
  CHECK(job->ignored());
  CHECK(job->running());
  CHECK(r.h.Counts("f")->running() == 1);
  CHECK(r.h.broker->Work(r.w, PacketType::kWorkData, r.handle, r.handle) == WorkResult::kOk);

  SECTION("its end frees it") {
    CHECK(r.h.Complete(r.w, r.handle) == WorkResult::kOk);
    CHECK(r.h.broker->LiveJobCount() == 0);
  }
  SECTION("it is dropped instead of re-queued") {
    r.h.broker->Detach(r.w);
    CHECK(r.h.broker->LiveJobCount() == 0);
    CHECK(r.h.Counts("f")->total() == 0);
  }
  SECTION("an identical submission re-adopts it") {
    FakePeer& c2 = r.h.NewPeer();
    CHECK(r.h.Fg(c2, "f", "u") == r.handle);
    CHECK_FALSE(job->ignored());
    REQUIRE(r.h.Complete(r.w, r.handle) == WorkResult::kOk);
    REQUIRE(c2.work.size() == 1);
    CHECK(c2.work[0].type == PacketType::kWorkComplete);
  }
}

TEST_CASE("a job keeps running for its remaining clients when one leaves", "[broker]") {
  Running r;
  FakePeer& c2 = r.h.NewPeer();
  REQUIRE(r.h.Fg(c2, "f", "u") == r.handle);
  r.h.broker->Detach(r.c);
  CHECK(r.w.withdrawn.empty());
  CHECK(r.h.broker->GetStatus(r.handle).clients == 1);
  REQUIRE(r.h.Complete(r.w, r.handle) == WorkResult::kOk);
  CHECK(c2.work.size() == 1);
  CHECK(r.c.work.empty());
}

TEST_CASE("a background job survives a coalesced foreground client leaving", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  const std::string handle = h.Bg(c, "f", "u");
  REQUIRE(h.Fg(c, "f", "u") == handle);
  h.broker->Detach(c);
  CHECK(h.broker->GetStatus(handle).known);
  CHECK(h.Grab(w) == handle);
}

TEST_CASE("a peer that submitted and runs its own job drops it when it leaves", "[broker]") {
  Harness h;
  FakePeer& p = h.NewPeer();
  h.broker->CanDo(p, "f");
  const std::string handle = h.Fg(p, "f");
  REQUIRE(h.Grab(p) == handle);
  h.broker->Detach(p);
  CHECK(h.broker->LiveJobCount() == 0);
  CHECK(p.withdrawn.empty());
}

}  // namespace
}  // namespace roundhouse::broker::testing
