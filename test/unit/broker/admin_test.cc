// Admin operations (§3.11, §4.3), status queries and listings.

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "broker_fakes.h"

namespace roundhouse::broker::testing {
namespace {

std::vector<std::string> Names(const Harness& h) {
  std::vector<std::string> out;
  for (const Function* f : h.broker->FunctionsByName()) out.emplace_back(f->name());
  return out;
}

TEST_CASE("cancel of a queued job fails its clients, deletes its row and removes it", "[broker]") {
  Harness h(DefaultOptions(), /*with_store=*/true);
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  REQUIRE(h.Submit(c, "f", "u", "d", SubmitArgs{Priority::kNormal, true, 0, ""}).pending);
  h.store.CommitNext();
  const std::string handle = c.done.at(0).handle;
  REQUIRE(h.Fg(c, "f", "u") == handle);

  CHECK(h.broker->CancelJob(handle) == CancelResult::kOk);
  REQUIRE(c.work.size() == 1);
  CHECK(c.work[0].type == PacketType::kWorkFail);
  CHECK(c.work[0].payload == handle);
  CHECK(h.store.rows.empty());
  CHECK_FALSE(h.broker->GetStatus(handle).known);
  CHECK(h.Counts("f")->total() == 0);
  CHECK(c.state().waiting.empty());
  CHECK(h.Grab(w).empty());
  CHECK(h.broker->CancelJob(handle) == CancelResult::kUnknownJob);
}

TEST_CASE("cancel of a running job detaches clients and discards the worker's results",
          "[broker]") {
  Harness h(DefaultOptions(), /*with_store=*/true);
  FakePeer& c = h.NewPeer();
  FakePeer& fg = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  REQUIRE(h.Submit(c, "f", "u", "d", SubmitArgs{Priority::kNormal, true, 0, ""}).pending);
  h.store.CommitNext();
  const std::string handle = c.done.at(0).handle;
  REQUIRE(h.Fg(fg, "f", "u") == handle);
  REQUIRE(h.Grab(w) == handle);

  CHECK(h.broker->CancelJob(handle) == CancelResult::kOk);
  REQUIRE(fg.work.size() == 1);
  CHECK(fg.work[0].type == PacketType::kWorkFail);
  CHECK(fg.state().waiting.empty());
  CHECK(h.store.rows.empty());
  CHECK(w.withdrawn == std::vector<std::string>{handle});

  const Job* job = h.broker->JobsInCreationOrder().at(0);
  CHECK(job->ignored());
  CHECK(job->running());
  CHECK(job->client_count() == 0);
  // Gone from every count and status reply at once (issue 12, requirement 9), although the
  // worker still holds it.
  CHECK(h.Counts("f")->total() == 0);
  CHECK(h.Counts("f")->running() == 0);
  CHECK_FALSE(h.broker->GetStatus(handle).known);
  CHECK_FALSE(h.broker->GetStatusUnique("u").known);

  // The unique is free: an identical submit creates a new job.
  FakePeer& c2 = h.NewPeer();
  const std::string fresh = h.Fg(c2, "f", "u");
  CHECK(fresh != handle);

  // The worker's later WORK_* are accepted silently and discarded; its end frees the job.
  CHECK(h.broker->Work(w, PacketType::kWorkData, handle, handle) == WorkResult::kOk);
  CHECK(h.Complete(w, handle) == WorkResult::kOk);
  CHECK(fg.work.size() == 1);
  CHECK(c2.work.empty());
  CHECK_FALSE(h.broker->GetStatus(handle).known);
  CHECK(h.store.removes.size() == 1);  // the row was deleted once, at the cancel
  CHECK(h.Counts("f")->running() == 0);   // not counted out twice
  CHECK(h.Counts("f")->completed() == 0);  // a cancelled job's result is not a completion
}

TEST_CASE("a cancelled running job is freed, not re-queued, when its worker leaves", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  const std::string handle = h.Fg(c, "f");
  REQUIRE(h.Grab(w) == handle);
  REQUIRE(h.broker->CancelJob(handle) == CancelResult::kOk);
  h.broker->Detach(w);
  CHECK(h.broker->LiveJobCount() == 0);
  CHECK(h.Counts("f")->total() == 0);
}

TEST_CASE("cancelling an abandoned running job does not withdraw it twice", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  const std::string handle = h.Fg(c, "f", "u");
  REQUIRE(h.Grab(w) == handle);
  h.broker->Detach(c);
  REQUIRE(w.withdrawn.size() == 1);
  CHECK(h.broker->CancelJob(handle) == CancelResult::kOk);
  CHECK(w.withdrawn.size() == 1);
  FakePeer& c2 = h.NewPeer();
  CHECK(h.Fg(c2, "f", "u") != handle);  // cancelled: no longer re-adoptable
}

TEST_CASE("cancel needs the exact handle", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  const std::string handle = h.Fg(c, "f");
  std::string upper = handle;
  upper[2] = 'T';
  CHECK(h.broker->CancelJob(upper) == CancelResult::kUnknownJob);
  CHECK(h.broker->CancelJob(handle + " ") == CancelResult::kUnknownJob);
  CHECK(h.broker->CancelJob("") == CancelResult::kUnknownJob);
  CHECK(h.broker->CancelJob(handle) == CancelResult::kOk);
}

TEST_CASE("drop function is refused while it has workers, running or queued jobs", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  CHECK(h.broker->DropFunction("f") == DropResult::kHasWorkersOrRunning);
  const std::string handle = h.Fg(c, "f");
  REQUIRE(h.Grab(w) == handle);
  CHECK(h.broker->DropFunction("f") == DropResult::kHasWorkersOrRunning);
  h.broker->CantDo(w, "f");  // re-queues it
  CHECK(h.broker->DropFunction("f") == DropResult::kHasQueuedJobs);
  CHECK(h.broker->DropFunction("nope") == DropResult::kNotFound);
  h.broker->CreateFunction("f");  // pinned: kept when its last job goes
  REQUIRE(h.broker->CancelJob(handle) == CancelResult::kOk);
  REQUIRE(h.Fn("f") != nullptr);
  CHECK(h.broker->DropFunction("f") == DropResult::kOk);
  CHECK(h.Fn("f") == nullptr);
  CHECK(h.broker->DropFunction("f") == DropResult::kNotFound);
  // A later submit or CAN_DO creates it afresh.
  h.broker->CanDo(w, "f");
  CHECK(h.Counts("f")->worker_count() == 1);
}

TEST_CASE("drop function with an epoch job waiting is refused as queued", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  (void)h.Handle(c, "f", "", "x", SubmitArgs{Priority::kNormal, true, 1'700'000'100, ""});
  CHECK(h.broker->DropFunction("f") == DropResult::kHasQueuedJobs);
}

TEST_CASE("drop function matches case-insensitively and an exact match wins", "[broker]") {
  Harness h;
  h.broker->CreateFunction("Fn");
  h.broker->CreateFunction("fn");
  h.broker->CreateFunction("Other");
  CHECK(h.broker->DropFunction("fn") == DropResult::kOk);
  CHECK(Names(h) == std::vector<std::string>{"Fn", "Other"});
  CHECK(h.broker->DropFunction("OTHER") == DropResult::kOk);
  CHECK(h.broker->DropFunction("FN") == DropResult::kOk);
  CHECK(h.broker->FunctionsByName().empty());
}

TEST_CASE("functions come from CAN_DO, submits and create function; unpinned ones go when empty",
          "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "zeta");
  (void)h.Fg(c, "alpha");
  h.broker->CreateFunction("\xc3\xa9t\xc3\xa9");
  h.broker->CreateFunction("Beta");
  h.broker->CreateFunction("Beta");  // already there: fine
  h.broker->CreateFunction("");
  CHECK(Names(h) ==
        std::vector<std::string>{"", "Beta", "alpha", "zeta", "\xc3\xa9t\xc3\xa9"});  // bytes
  h.broker->ResetAbilities(w);
  REQUIRE(h.broker->CancelJob(std::string(h.broker->JobsInCreationOrder().at(0)->handle())) ==
          CancelResult::kOk);
  // zeta (last worker gone) and alpha (last job gone) are freed; pinned ones stay.
  CHECK(Names(h) == std::vector<std::string>{"", "Beta", "\xc3\xa9t\xc3\xa9"});
  CHECK(h.broker->FunctionCount() == 3);
  CHECK(h.broker->retired().submitted == 1);  // alpha's counter lives on in the totals
}

TEST_CASE("a function with a maxqueue stays while empty; clearing the limit frees it",
          "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  h.broker->SetMaxQueue("f", {5, 5, 5});
  const std::string handle = h.Fg(c, "f");
  REQUIRE(h.Grab(w) == handle);
  REQUIRE(h.Complete(w, handle) == WorkResult::kOk);
  h.broker->CantDo(w, "f");
  REQUIRE(h.Fn("f") != nullptr);
  CHECK(h.Fn("f")->max_queue(Priority::kNormal) == 5);
  CHECK(h.Fn("f")->completed() == 1);
  h.broker->SetMaxQueue("f", {0, 0, 0});
  CHECK(h.Fn("f") == nullptr);
  CHECK(h.broker->retired().completed == 1);
}

TEST_CASE("200k distinct function names are freed once their jobs are gone", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  std::vector<std::string> handles;
  for (int i = 0; i < 200000; ++i) {
    handles.push_back(h.Fg(c, "fn-" + std::to_string(i)));
  }
  CHECK(h.broker->FunctionCount() == 200000);
  // The one worker takes each in turn by registering, grabbing, completing and leaving it.
  for (int i = 0; i < 200000; ++i) {
    const std::string name = "fn-" + std::to_string(i);
    h.broker->CanDo(w, name);
    REQUIRE(h.Grab(w) == handles[static_cast<size_t>(i)]);
    REQUIRE(h.Complete(w, handles[static_cast<size_t>(i)]) == WorkResult::kOk);
    h.broker->CantDo(w, name);
  }
  CHECK(h.broker->FunctionCount() == 0);
  CHECK(h.broker->FunctionsByName().empty());
  CHECK(h.broker->retired().submitted == 200000);
  CHECK(h.broker->retired().completed == 200000);
}

TEST_CASE("FunctionAfter resumes a listing by name whatever changed meanwhile", "[broker]") {
  Harness h;
  for (const char* n : {"a", "c", "e"}) h.broker->CreateFunction(n);
  CHECK(h.broker->FunctionAfter("", true)->name() == "a");
  CHECK(h.broker->FunctionAfter("a")->name() == "c");
  REQUIRE(h.broker->DropFunction("c") == DropResult::kOk);
  h.broker->CreateFunction("d");
  CHECK(h.broker->FunctionAfter("a")->name() == "d");
  CHECK(h.broker->FunctionAfter("c", true)->name() == "d");
  CHECK(h.broker->FunctionAfter("e") == nullptr);
}

TEST_CASE("a job cursor moves on when the job it points at ends, and never dangles", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  std::vector<std::string> handles;
  for (const char* u : {"j1", "j2", "j3", "j4", "j5"}) handles.push_back(h.Bg(c, "f", u));
  Broker::JobCursor cursor(*h.broker);
  Broker::JobCursor other(*h.broker);
  REQUIRE(cursor.Next()->unique() == "j1");
  // The job it would list next ends: it moves on to the one after.
  REQUIRE(h.broker->CancelJob(handles[1]) == CancelResult::kOk);
  CHECK(cursor.Next()->unique() == "j3");
  // A job is created (at the end of the list, after the cursor: listed), then one it listed
  // ends, and the next two: it goes on after them.
  h.Bg(c, "f", "j6");
  REQUIRE(h.broker->CancelJob(handles[0]) == CancelResult::kOk);
  REQUIRE(h.broker->CancelJob(handles[3]) == CancelResult::kOk);
  REQUIRE(h.broker->CancelJob(handles[4]) == CancelResult::kOk);
  CHECK(cursor.Next()->unique() == "j6");
  CHECK(cursor.Next() == nullptr);
  h.Bg(c, "f", "j7");  // after the end: not listed
  CHECK(cursor.Next() == nullptr);
  // The other cursor, untouched meanwhile, lists exactly the live jobs.
  std::vector<std::string> rest;
  while (const Job* job = other.Next()) rest.emplace_back(job->unique());
  CHECK(rest == std::vector<std::string>{"j3", "j6", "j7"});
}

TEST_CASE("WorkerPeersAfter resumes the workers listing by (fd, attach order)", "[broker]") {
  Harness h;
  FakePeer& a = h.NewPeer(5);
  FakePeer& b = h.NewPeer(3);
  FakePeer& c = h.NewPeer(5);  // same fd as `a` (a pseudo-peer, or a reused fd): after it
  FakePeer& d = h.NewPeer(9);
  for (FakePeer* p : {&a, &b, &c, &d}) h.broker->CanDo(*p, "f");
  const auto first = h.broker->WorkerPeersAfter(nullptr, 2);
  CHECK(first == std::vector<const Peer*>{&b, &a});
  const Broker::WorkerKey key = Broker::KeyOf(*first.back());
  h.broker->Detach(c);         // the next one leaves between two look-ups
  FakePeer& e = h.NewPeer(4);  // attaches before the key: not listed any more
  h.broker->CanDo(e, "f");
  CHECK(h.broker->WorkerPeersAfter(&key, 2) == std::vector<const Peer*>{&d});
  CHECK(h.broker->WorkerPeersAfter(nullptr, 10).size() == 4);
}

TEST_CASE("status counts queued, running and registrations per function", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w1 = h.NewPeer();
  FakePeer& w2 = h.NewPeer();
  h.broker->CanDo(w1, "f");
  h.broker->CanDo(w2, "f");
  h.broker->CanDo(w2, "f");  // de-duplicated
  (void)h.Fg(c, "f", "", "x", Priority::kHigh);
  (void)h.Fg(c, "f", "", "x", Priority::kNormal);
  (void)h.Fg(c, "f", "", "x", Priority::kNormal);
  (void)h.Fg(c, "f", "", "x", Priority::kLow);
  (void)h.Grab(w1);
  const Function* fn = h.Fn("f");
  CHECK(fn->total() == 4);
  CHECK(fn->running() == 1);
  CHECK(fn->worker_count() == 2);
  CHECK(fn->queued(Priority::kHigh) == 0);
  CHECK(fn->queued(Priority::kNormal) == 2);
  CHECK(fn->queued(Priority::kLow) == 1);
  h.broker->SetMaxQueue("f", {1, 2, 3});
  CHECK(fn->max_queue(Priority::kHigh) == 1);
  CHECK(fn->max_queue(Priority::kLow) == 3);
}

TEST_CASE("GET_STATUS reports known, running, NUM/DEN and clients", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  const std::string handle = h.Fg(c, "f", "u");
  JobStatus st = h.broker->GetStatus(handle);
  CHECK(st.known);
  CHECK_FALSE(st.running);
  CHECK(st.clients == 1);
  REQUIRE(h.Grab(w) == handle);
  REQUIRE(h.broker->Work(w, PacketType::kWorkStatus, handle, handle, "1", "4") == WorkResult::kOk);
  st = h.broker->GetStatus(handle);
  CHECK(st.running);
  CHECK(st.numerator == 1);
  CHECK(st.denominator == 4);

  st = h.broker->GetStatus("H:nohost:99");
  CHECK_FALSE(st.known);
  CHECK_FALSE(st.running);
  CHECK(st.numerator == 0);
  CHECK_FALSE(h.broker->GetStatus(std::string(200, 'h')).known);
}

TEST_CASE("GET_STATUS_UNIQUE finds the oldest job with that unique across functions", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& c2 = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "b");
  const std::string in_b = h.Fg(c, "b", "stu");
  (void)h.Fg(c, "a", "stu");  // newer, in another function
  REQUIRE(h.Grab(w) == in_b);
  REQUIRE(h.broker->Work(w, PacketType::kWorkStatus, in_b, in_b, "3", "7") == WorkResult::kOk);
  const JobStatus st = h.broker->GetStatusUnique("stu");
  CHECK(st.known);
  CHECK(st.running);
  CHECK(st.numerator == 3);
  CHECK(st.denominator == 7);
  CHECK(st.clients == 1);
  CHECK_FALSE(h.broker->GetStatusUnique("nope").known);
  CHECK_FALSE(h.broker->GetStatusUnique(std::string(100, 'u')).known);

  SECTION("uniques that are not indexed by their bytes are found by scanning") {
    (void)h.Fg(c2, "a", "-", "data");
    (void)h.Fg(c2, "a", "", "data");
    CHECK(h.broker->GetStatusUnique("-").known);
    CHECK(h.broker->GetStatusUnique("").known);
  }
}

TEST_CASE("workers lists peers that acted as workers, ordered by fd", "[broker]") {
  Harness h;
  FakePeer& client = h.NewPeer(5);
  FakePeer& by_can_do = h.NewPeer(9);
  FakePeer& by_grab = h.NewPeer(7);
  FakePeer& by_sleep = h.NewPeer(3);
  FakePeer& by_id = h.NewPeer(8);
  FakePeer& in_process = h.NewPeer(-1);
  (void)h.Fg(client, "f");
  h.broker->SetExceptions(client, true);
  h.broker->CanDo(by_can_do, "f");
  (void)h.Grab(by_grab);
  h.broker->PreSleep(by_sleep);
  h.broker->SetClientId(by_id, "worker one");
  h.broker->CanDo(in_process, "f");
  const auto peers = h.broker->WorkerPeers();
  std::vector<int> fds;
  fds.reserve(peers.size());
  for (const Peer* p : peers) fds.push_back(p->Fd());
  CHECK(fds == std::vector<int>{-1, 3, 7, 8, 9});
  CHECK(by_id.state().client_id == "worker one");
  CHECK(client.state().client_id == "-");
  h.broker->Detach(by_grab);
  CHECK(h.broker->WorkerPeers().size() == 4);
}

TEST_CASE("jobs are listed in creation order with retries and flags", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  const std::string a = h.Fg(c, "f", "u1");
  const std::string b = h.Bg(c, "g", "u2");
  const std::string d = h.Fg(c, "f", "");
  REQUIRE(h.Grab(w) == a);
  h.broker->ResetAbilities(w);
  const auto jobs = h.broker->JobsInCreationOrder();
  REQUIRE(jobs.size() == 3);
  CHECK(jobs[0]->handle() == a);
  CHECK(jobs[0]->retries() == 1);
  CHECK(jobs[1]->handle() == b);
  CHECK(jobs[1]->background());
  CHECK(jobs[2]->handle() == d);
  CHECK(jobs[2]->unique().empty());
  CHECK(h.broker->LiveJobCount() == 3);
}

TEST_CASE("indexes stay consistent under many interleaved submits and completions", "[broker]") {
  Harness h;
  FakePeer& c = h.NewPeer();
  FakePeer& w = h.NewPeer();
  h.broker->CanDo(w, "f");
  std::vector<std::string> live;
  uint32_t seed = 12345;
  auto next = [&seed] {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) & 0xffff;
  };
  for (int round = 0; round < 20'000; ++round) {
    const uint32_t r = next();
    if (r % 3 != 0 || live.empty()) {
      const std::string unique = "u" + std::to_string(next() % 500);
      const std::string handle = h.Fg(c, "f", unique);
      REQUIRE(!handle.empty());
      if (std::find(live.begin(), live.end(), handle) == live.end()) live.push_back(handle);
    } else {
      const size_t i = next() % live.size();
      const std::string handle = live[i];
      live[i] = live.back();
      live.pop_back();
      REQUIRE(h.broker->CancelJob(handle) == CancelResult::kOk);
      REQUIRE_FALSE(h.broker->GetStatus(handle).known);
    }
  }
  CHECK(h.broker->LiveJobCount() == live.size());
  for (const std::string& handle : live) REQUIRE(h.broker->GetStatus(handle).known);
  size_t grabbed = 0;
  while (!h.Grab(w).empty()) ++grabbed;
  CHECK(grabbed == live.size());
  CHECK(c.state().waiting.size() >= live.size());
}

}  // namespace
}  // namespace roundhouse::broker::testing
