// Which job a GRAB returns (§3.4) and what the worker sees.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "broker_fakes.h"

namespace roundhouse::broker::testing {
namespace {

std::vector<std::string> RegistrationNames(const FakePeer& p) {
  std::vector<std::string> out;
  for (const Registration& r : p.state().registrations) out.emplace_back(r.function->name());
  return out;
}

TEST_CASE("global order: a HIGH job of any registered function beats NORMAL and LOW", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "a");
  h.broker->CanDo(w, "b");
  const std::string low = h.Fg(c, "a", "", "x", Priority::kLow);
  const std::string normal = h.Fg(c, "a", "", "x", Priority::kNormal);
  const std::string high = h.Fg(c, "b", "", "x", Priority::kHigh);
  CHECK(h.Grab(w) == high);
  CHECK(h.Grab(w) == normal);
  CHECK(h.Grab(w) == low);
  CHECK(h.Grab(w).empty());
}

TEST_CASE("global order walks registrations in order and moves the used one to the end",
          "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "a");
  h.broker->CanDo(w, "b");
  const std::string a1 = h.Fg(c, "a");
  const std::string a2 = h.Fg(c, "a");
  const std::string b1 = h.Fg(c, "b");
  const std::string b2 = h.Fg(c, "b");
  CHECK(h.Grab(w) == a1);
  CHECK(RegistrationNames(w) == std::vector<std::string>{"b", "a"});
  CHECK(h.Grab(w) == b1);
  CHECK(h.Grab(w) == a2);
  CHECK(h.Grab(w) == b2);
}

TEST_CASE("round-robin is on in global order even without -R", "[broker]") {
  Options o = DefaultOptions();
  o.round_robin = false;
  Harness h(o);
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "a");
  h.broker->CanDo(w, "b");
  (void)h.Fg(c, "a");
  (void)h.Fg(c, "a");
  (void)h.Fg(c, "b");
  (void)h.Grab(w);
  CHECK(h.broker->Grab(w, GrabKind::kJob)->function_name() == "b");
}

TEST_CASE("jobs of one function and priority come out in FIFO order", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  std::vector<std::string> handles;
  handles.reserve(5);
  for (int i = 0; i < 5; ++i) handles.push_back(h.Fg(c, "f"));
  for (const std::string& handle : handles) CHECK(h.Grab(w) == handle);
}

TEST_CASE("per-function order: the first registration with jobs yields its highest priority",
          "[broker]") {
  Options o = DefaultOptions();
  o.priority_order = PriorityOrder::kPerFunction;
  Harness h(o);
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "a");
  h.broker->CanDo(w, "b");
  const std::string a_low = h.Fg(c, "a", "", "x", Priority::kLow);
  const std::string a_normal = h.Fg(c, "a", "", "x", Priority::kNormal);
  const std::string b_high = h.Fg(c, "b", "", "x", Priority::kHigh);
  CHECK(h.Grab(w) == a_normal);  // "a" is first and yields its highest non-empty priority
  CHECK(RegistrationNames(w) == std::vector<std::string>{"a", "b"});  // no -R: no rotation
  CHECK(h.Grab(w) == a_low);                                          // "a" starves "b"
  CHECK(h.Grab(w) == b_high);
}

TEST_CASE("per-function order with -R rotates the used registration", "[broker]") {
  Options o = DefaultOptions();
  o.priority_order = PriorityOrder::kPerFunction;
  o.round_robin = true;
  Harness h(o);
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "a");
  h.broker->CanDo(w, "b");
  const std::string a1 = h.Fg(c, "a", "", "x", Priority::kLow);
  const std::string a2 = h.Fg(c, "a", "", "x", Priority::kLow);
  const std::string b1 = h.Fg(c, "b", "", "x", Priority::kHigh);
  CHECK(h.Grab(w) == a1);
  CHECK(RegistrationNames(w) == std::vector<std::string>{"b", "a"});
  CHECK(h.Grab(w) == b1);
  CHECK(h.Grab(w) == a2);
}

TEST_CASE("GRAB without registrations or jobs returns nothing", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  CHECK(h.Grab(w).empty());
  (void)h.Fg(c, "f");
  CHECK(h.Grab(w).empty());  // not registered for f
  h.broker->CanDo(w, "g");
  CHECK(h.Grab(w).empty());
  CHECK(h.Counts("f")->queued(Priority::kNormal) == 1);
}

TEST_CASE("a worker may hold several jobs and the job records its worker", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  (void)h.Fg(c, "f");
  (void)h.Fg(c, "f");
  const Job* j1 = h.broker->Grab(w, GrabKind::kJob);
  REQUIRE(j1 != nullptr);
  CHECK(j1->running());
  CHECK(j1->worker() == &w);
  REQUIRE(h.broker->Grab(w, GrabKind::kAll) != nullptr);
  CHECK(w.state().running.size() == 2);
  const Function* fn = h.Fn("f");
  CHECK(fn->running() == 2);
  CHECK(fn->queued(Priority::kNormal) == 0);
  CHECK(fn->total() == 2);
}

TEST_CASE("the grabbed job exposes handle, function, unique, reducer and DATA", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "fn");
  SubmitArgs args;
  args.reducer = "red";
  const std::string handle = h.Handle(c, "fn", "u1", "payload1", args);
  const Job* job = h.broker->Grab(w, GrabKind::kAll);
  REQUIRE(job != nullptr);
  CHECK(job->handle() == handle);
  CHECK(job->id() == 1'700'000'000'000'000);
  CHECK(job->function_name() == "fn");
  CHECK(&job->function() == h.Fn("fn"));
  CHECK(job->unique() == "u1");
  CHECK(job->reducer() == "red");
  CHECK(job->data() == "payload1");
  CHECK(job->priority() == Priority::kNormal);
  CHECK_FALSE(job->background());
  CHECK(job->client_count() == 1);
}

}  // namespace
}  // namespace roundhouse::broker::testing
