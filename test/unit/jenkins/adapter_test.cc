// The Adapter's rules on a FakeClock and a scripted Transport (adapter_fakes.h): a build's life
// (doc/jenkins.md §4.7, §4.8, §1.5, §1.6), dispatch and capacity (§4.4), and the rows of the
// failure table (§5), each named by its row. No socket, no sleep: every test runs in
// milliseconds.
#include <algorithm>
#include <catch2/catch.hpp>

#include "test/unit/jenkins/adapter_fakes.h"

namespace roundhouse::jenkins::testing {
namespace {

using protocol::PacketType;

const std::string kQueueItem7 = "GET queue/item/7/";
const std::string kBuild3 = "GET job/job1/3/api/json";

std::string QueueItemStarted(int64_t id, int64_t number) {
  return "{\"_class\":\"hudson.model.Queue$LeftItem\",\"id\":" + std::to_string(id) +
         ",\"executable\":{\"number\":" + std::to_string(number) + ",\"url\":\"" +
         BuildUrl("job1", number) + "\"}}";
}

std::string QueueItemWaiting(int64_t id, bool cancelled = false) {
  return std::string("{\"_class\":\"hudson.model.Queue$") +
         (cancelled ? "LeftItem" : "WaitingItem") + "\",\"id\":" + std::to_string(id) +
         ",\"why\":\"waiting\",\"cancelled\":" + (cancelled ? "true" : "false") + "}";
}

std::string ComputerJson(int executor, std::string_view url) {
  return "{\"executors\":[{\"number\":" + std::to_string(executor) +
         ",\"currentExecutable\":{\"url\":\"" + std::string(url) + "\"}}]}";
}

// From QUEUED (item 7) to STARTED (build #3 on n1, executor 0): the start packets are sent.
void StartBuild(AdapterHarness& t) {
  t.Advance(t.settings.poll_queue_item_ms);
  REQUIRE(t.transport->Reply(kQueueItem7, 200, QueueItemStarted(7, 3)));
  REQUIRE(
      t.transport->Reply("GET computer/n1/api/json", 200, ComputerJson(0, BuildUrl("job1", 3))));
  REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1")));
  REQUIRE(t.State() == "STARTED");
}

std::vector<PacketType> Types(std::initializer_list<PacketType> types) { return types; }

const std::vector<FakeJob> kJob1 = {{"job1"}};
const std::vector<FakeNode> kNode1 = {{"n1", 1, {"linux"}}};

// The set-up most rows start from: job1 on n1, one job submitted, build #3 running on n1's
// executor 0 with its start packets sent. Returns the job's handle.
std::string Running(AdapterHarness& t) {
  const std::string handle = t.Queued(kJob1, kNode1);
  StartBuild(t);
  return handle;
}

// Fixtures for the cases on the default settings: job1 on n1 (one executor, label "linux"), the
// first snapshots in, and then (Job1Queued) build:job1 with unique "u1" triggered as queue item 7,
// or (Job1Running) its build #3 started. A case with other settings, nodes or jobs builds its
// AdapterHarness itself.
struct Job1OnN1 {
  Job1OnN1() { t.Bring(kJob1, kNode1); }
  AdapterHarness t;
};

struct Job1Queued {
  Job1Queued() { t.Queued(kJob1, kNode1); }
  AdapterHarness t;
};

struct Job1Running {
  Job1Running() { Running(t); }
  AdapterHarness t;
};

// An adapter whose journal lives in `store`, which outlives it (declared first) and so survives
// AdapterHarness::Restart.
struct Journalled {
  FakeJournalStore store;
  AdapterHarness t{{}, &store};
};

// ---- lifecycle

TEST_CASE_METHOD(Job1OnN1, "a build's life: claim, trigger, queued, started, completed",
                 "[adapter][lifecycle]") {
  CHECK(t.adapter->health() == Health::kHealthy);
  CHECK(t.adapter->listed().count("build:job1") == 1);
  CHECK(t.adapter->listed().count("stop:m1") == 0);  // the manager's names are not build names
  const std::string handle = t.Submit("build:job1", "u1", R"({"X":"1","Y":"2"})");

  t.adapter->Round();
  CHECK(t.State() == "TRIGGERING");
  REQUIRE(t.transport->Has("POST job/job1/buildWithParameters?delay=0sec"));
  REQUIRE(t.transport->Reply("POST job/job1/buildWithParameters", 201, "", Location(7)));
  // §4.6: only defined keys are sent (Y dropped); the pin and unique parameters are ours.
  const Transport::Form sent = t.transport->last_form;
  CHECK(std::count(sent.begin(), sent.end(), std::make_pair(std::string("X"), std::string("1"))) ==
        1);
  CHECK(std::count(sent.begin(), sent.end(),
                   std::make_pair(std::string("GEARMAN_NODE"), std::string("n1"))) == 1);
  CHECK(std::count(sent.begin(), sent.end(),
                   std::make_pair(std::string("GEARMAN_UNIQUE"), std::string("u1"))) == 1);
  CHECK(std::none_of(sent.begin(), sent.end(), [](const auto& p) { return p.first == "Y"; }));
  CHECK(t.State() == "QUEUED");
  CHECK(t.client->work.empty());  // nothing is reported before the build starts

  StartBuild(t);
  REQUIRE(t.Packets() == Types({PacketType::kWorkData, PacketType::kWorkStatus}));
  CHECK(t.client->work[0].payload.find("\"worker\":\"n1_exec-0\"") != std::string::npos);
  CHECK(t.client->work[0].payload.find("\"number\":3") != std::string::npos);

  // Still building at the next poll: nothing new.
  t.Advance(t.settings.poll_build_ms);
  REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1")));
  CHECK(t.client->work.size() == 2);

  t.Advance(t.settings.poll_build_ms * 2);
  REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1", "SUCCESS")));
  REQUIRE(t.Packets() == Types({PacketType::kWorkData, PacketType::kWorkStatus,
                                PacketType::kWorkData, PacketType::kWorkComplete}));
  CHECK(t.client->work[3].payload.find("\"result\":\"SUCCESS\"") != std::string::npos);
  CHECK(t.State().empty());
  CHECK_FALSE(t.h.broker->GetStatus(handle).known);
}

TEST_CASE_METHOD(Job1Queued,
                 "a build that started and ended between two polls still gets all four packets",
                 "[adapter][lifecycle]") {
  t.Advance(t.settings.poll_queue_item_ms);
  REQUIRE(t.transport->Reply(kQueueItem7, 200, QueueItemStarted(7, 3)));
  REQUIRE(t.transport->Reply("GET computer/n1/api/json", 200, "{\"executors\":[]}"));
  REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1", "FAILURE")));
  // Not in the snapshot either: R11 of the node is asked once more, and shows nothing.
  REQUIRE(t.transport->Reply("GET computer/n1/api/json", 200, "{\"executors\":[]}"));
  REQUIRE(t.Packets() == Types({PacketType::kWorkData, PacketType::kWorkStatus,
                                PacketType::kWorkData, PacketType::kWorkComplete}));
  // §4.8 Q5: the executor was never seen; a free index of the node is reported.
  CHECK(t.client->work[0].payload.find("\"worker\":\"n1_exec-0\"") != std::string::npos);
  CHECK(t.client->work[3].payload.find("\"result\":\"FAILURE\"") != std::string::npos);
}

TEST_CASE("a job without parameter definitions is triggered with W2 and no form",
          "[adapter][lifecycle]") {
  AdapterHarness t;
  t.Bring({{"job1", /*parameters=*/false}}, kNode1);
  t.Submit("build:job1", "u1", R"({"X":"1"})");
  t.adapter->Round();
  REQUIRE(t.transport->Has("POST job/job1/build?delay=0sec"));
  REQUIRE(t.transport->Reply("POST job/job1/build", 201, "", Location(7)));
  CHECK(t.transport->last_form.empty());
}

// ---- dispatch and capacity (§4.4)

TEST_CASE("dispatch claims one build per free executor, most free node first",
          "[adapter][dispatch]") {
  AdapterHarness t;
  t.Bring(kJob1, {{"n1", 2, {"linux"}}, {"n2", 1, {"linux"}}});
  for (int i = 0; i < 4; ++i) t.Submit("build:job1", "u" + std::to_string(i));
  t.adapter->Round();
  CHECK(t.transport->Count("POST job/job1/") == 3);  // 3 executors, the 4th job waits
  MasterSummary s = t.adapter->Summary();
  std::map<std::string, int> per_node;
  for (const BuildSummary& b : s.builds) ++per_node[b.node];
  CHECK(per_node["n1"] == 2);
  CHECK(per_node["n2"] == 1);
  // Reservations hold the executors until a snapshot shows them busy: a second round claims
  // nothing.
  t.adapter->Round();
  CHECK(t.transport->Count("POST job/job1/") == 3);
  for (const NodeSummary& n : s.nodes) CHECK(n.free == 0);
}

TEST_CASE("max_inflight_starts bounds the builds not yet started", "[adapter][dispatch]") {
  AdapterHarness t([](MasterSettings& s) { s.max_inflight_starts = 2; });
  t.Bring(kJob1, {{"n1", 4, {"linux"}}});
  for (int i = 0; i < 4; ++i) t.Submit("build:job1", "u" + std::to_string(i));
  t.adapter->Round();
  CHECK(t.transport->Count("POST job/job1/") == 2);
}

TEST_CASE("an executor busy with a foreign build has no capacity", "[adapter][dispatch]") {
  AdapterHarness t;
  FakeNode busy{"n1", 1, {"linux"}};
  busy.busy = {{0, BuildUrl("other", 1)}};
  t.Bring(kJob1, {busy});
  t.Submit("build:job1");
  t.adapter->Round();
  CHECK(t.transport->Count("POST ") == 0);
  // Freed in the next snapshot: dispatched.
  t.Computers(kNode1);
  t.adapter->Round();
  CHECK(t.transport->Count("POST job/job1/") == 1);
}

TEST_CASE("an EXCLUSIVE node takes only jobs whose label names it", "[adapter][dispatch]") {
  AdapterHarness t;
  t.Bring({{"job1"}, {"job2", true, true, "linux"}}, kNode1, "EXCLUSIVE");
  CHECK(t.adapter->listed().count("build:job2") == 1);
  t.Submit("build:job1", "a");
  t.adapter->Round();
  CHECK(t.transport->Count("POST ") == 0);
  t.Submit("build:job2", "b");
  t.adapter->Round();
  CHECK(t.transport->Count("POST job/job2/") == 1);
}

TEST_CASE_METHOD(
    Job1OnN1, "turnaround: an executor is free for the next job as soon as our build's end is seen",
    "[adapter][dispatch]") {
  t.Submit("build:job1", "a");
  t.TriggerQueued(7);
  StartBuild(t);
  // A snapshot requested after the start shows the build on the executor.
  FakeNode running{"n1", 1, {"linux"}};
  running.busy = {{0, BuildUrl("job1", 3)}};
  t.Computers({running});
  t.Submit("build:job1", "b");
  t.adapter->Round();
  CHECK(t.transport->Count("POST ") == 0);
  t.Advance(t.settings.poll_build_ms);
  REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1", "SUCCESS")));
  // No computers poll in between: the freed executor takes the waiting job.
  t.adapter->Round();
  CHECK(t.transport->Count("POST job/job1/") == 1);
}

TEST_CASE("the master is not dispatched to before it is HEALTHY", "[adapter][dispatch]") {
  AdapterHarness t;
  t.adapter->Start();
  REQUIRE(t.transport->Reply("GET api/json", 200, "{\"quietingDown\":false}"));
  CHECK(t.adapter->health() == Health::kSuspect);
  REQUIRE(t.transport->Fail("GET api/json", HttpError::kConnect, false));  // the job list
  REQUIRE(t.transport->Reply("GET computer/api/json", 200, ComputersJson(kNode1)));
  CHECK(t.adapter->health() == Health::kSuspect);
  t.adapter->Round();
  CHECK(t.transport->Count("POST ") == 0);
}

// ---- the failure table (doc/jenkins.md §5), by row

TEST_CASE("Row \"master unreachable (refused, timeout, 5xx)\"", "[adapter][failure]") {
  AdapterHarness t([](MasterSettings& s) { s.inflight_grace_ms = 60000; });
  Running(t);
  for (int i = 0; i < t.settings.unhealthy_after; ++i) {
    t.Advance(t.settings.poll_build_ms);
    REQUIRE(t.transport->Reply(kBuild3, 503));
  }
  CHECK(t.adapter->health() == Health::kDown);
  CHECK(t.State() == "STARTED");  // kept for inflight_grace_s
  t.Advance(t.settings.inflight_grace_ms + 1);
  CHECK(t.Packets() ==
        Types({PacketType::kWorkData, PacketType::kWorkStatus, PacketType::kWorkFail}));
}

TEST_CASE_METHOD(Job1OnN1, "Row \"401/403 from master\"", "[adapter][failure]") {
  AdapterProbe::PollController(*t.adapter);
  REQUIRE(t.transport->Reply("GET api/json", 401));
  CHECK(t.adapter->health() == Health::kDown);
  t.Submit("build:job1");
  t.adapter->Round();
  CHECK(t.transport->Count("POST ") == 0);
  CHECK(t.h.broker->GetStatus(t.client->done.empty() ? "" : t.client->done[0].handle).running ==
        false);
}

TEST_CASE_METHOD(Job1Running, "Row \"controller restarted\"", "[adapter][failure]") {
  t.transport->instance = "session-2";
  t.Advance(t.settings.poll_build_ms);
  REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1", "ABORTED")));
  // restart_policy = retry: WORK_FAIL, not a result.
  CHECK(t.Packets() ==
        Types({PacketType::kWorkData, PacketType::kWorkStatus, PacketType::kWorkFail}));
  CHECK(t.adapter->Summary().requests > 0);
}

TEST_CASE_METHOD(Job1OnN1, "Row \"Jenkins quieting down\"", "[adapter][failure]") {
  AdapterProbe::PollController(*t.adapter);
  REQUIRE(t.transport->Reply("GET api/json", 200, "{\"quietingDown\":true}"));
  t.Submit("build:job1");
  t.adapter->Round();
  CHECK(t.transport->Count("POST ") == 0);
  for (const NodeSummary& n : t.adapter->Summary().nodes) CHECK(n.free == 0);
}

TEST_CASE("Row \"queue item waits (foreign build took the executor, throttle, lock)\"",
          "[adapter][failure]") {
  AdapterHarness t([](MasterSettings& s) { s.queue_wait_timeout_ms = 5000; });
  const std::string handle = t.Queued(kJob1, kNode1);
  t.Advance(t.settings.poll_queue_item_ms);
  REQUIRE(t.transport->Reply(kQueueItem7, 200, QueueItemWaiting(7)));
  CHECK(t.State() == "QUEUED");
  t.Advance(t.settings.queue_wait_timeout_ms);
  REQUIRE(t.transport->Reply(kQueueItem7, 200, QueueItemWaiting(7)));
  CHECK(t.State() == "CANCELLING");
  REQUIRE(t.transport->Reply("POST queue/cancelItem?id=7", 302));
  t.Advance(0);
  REQUIRE(t.transport->Reply(kQueueItem7, 200, QueueItemWaiting(7, /*cancelled=*/true)));
  // Back in our queue, unseen by its client; the node rests (contention cooldown).
  CHECK(t.State().empty());
  CHECK(t.client->work.empty());
  CHECK(t.h.broker->GetStatus(handle).known);
  CHECK_FALSE(t.h.broker->GetStatus(handle).running);
  t.adapter->Round();
  CHECK(t.transport->Count("POST job/") == 0);
}

TEST_CASE("Row \"queue item cancelled in Jenkins by a person\"", "[adapter][failure]") {
  AdapterHarness t([](MasterSettings& s) { s.max_requeues = 1; });
  t.Bring(kJob1, kNode1);
  t.Submit("build:job1");
  for (int round = 0; round < 2; ++round) {
    t.TriggerQueued(7);
    t.Advance(t.settings.poll_queue_item_ms);
    REQUIRE(t.transport->Reply(kQueueItem7, 200, QueueItemWaiting(7, /*cancelled=*/true)));
  }
  // Requeued once (max_requeues), then an error.
  CHECK(t.Packets() == Types({PacketType::kWorkException}));
  CHECK(t.client->work[0].payload.find("cancelled 2 times") != std::string::npos);
}

TEST_CASE_METHOD(Job1Queued, "Row \"LeftItem expired before seen\"", "[adapter][failure]") {
  t.Advance(t.settings.poll_queue_item_ms);
  REQUIRE(t.transport->Reply(kQueueItem7, 404));
  // R10 by queueId.
  REQUIRE(t.transport->Reply("GET job/job1/api/json?tree=builds", 200,
                             "{\"builds\":[{\"number\":3,\"queueId\":7,\"building\":true,"
                             "\"url\":\"" +
                                 BuildUrl("job1", 3) + "\"}]}"));
  REQUIRE(
      t.transport->Reply("GET computer/n1/api/json", 200, ComputerJson(0, BuildUrl("job1", 3))));
  REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1")));
  CHECK(t.State() == "STARTED");
}

TEST_CASE_METHOD(Job1OnN1, "Row \"identical item merged (303)\"", "[adapter][failure]") {
  const std::string handle = t.Submit("build:job1");
  t.adapter->Round();
  REQUIRE(t.transport->Reply("POST job/job1/", 303));
  CHECK(t.State().empty());
  CHECK(t.client->work.empty());
  CHECK_FALSE(t.h.broker->GetStatus(handle).running);
  CHECK(t.adapter->Summary().requeues == 1);
}

TEST_CASE_METHOD(Job1OnN1, "Row \"trigger response lost\"", "[adapter][failure]") {
  t.Submit("build:job1", "u1");
  t.adapter->Round();
  REQUIRE(t.transport->Fail("POST job/job1/", HttpError::kTimeout, /*request_sent=*/true));
  // Searched by unique_param in the queue, and adopted.
  REQUIRE(t.transport->Reply("GET queue/api/json", 200,
                             "{\"items\":[{\"id\":9,\"task\":{\"name\":\"job1\"},\"actions\":["
                             "{\"parameters\":[{\"name\":\"GEARMAN_UNIQUE\",\"value\":\"u1\"}]}"
                             "]}]}"));
  CHECK(t.State() == "QUEUED");
  CHECK(t.adapter->Summary().builds.front().queue_id == 9);
  CHECK(t.transport->Count("POST ") == 0);  // not triggered twice
}

TEST_CASE_METHOD(Job1OnN1, "Row \"trigger response lost\": no match is dispatched again",
                 "[adapter][failure]") {
  const std::string handle = t.Submit("build:job1", "u1");
  t.adapter->Round();
  REQUIRE(t.transport->Fail("POST job/job1/", HttpError::kReset, /*request_sent=*/true));
  REQUIRE(t.transport->Reply("GET queue/api/json", 200, "{\"items\":[]}"));
  REQUIRE(t.transport->Reply("GET job/job1/api/json?tree=builds", 200, "{\"builds\":[]}"));
  CHECK(t.State().empty());
  t.adapter->Round();
  CHECK(t.transport->Count("POST job/job1/") == 1);
}

TEST_CASE_METHOD(Job1OnN1, "Row \"spurious 404 on trigger\"", "[adapter][failure]") {
  const std::string handle = t.Submit("build:job1");
  t.adapter->Round();
  REQUIRE(t.transport->Reply("POST job/job1/", 404));
  // The view is refreshed and the job put back with a short back-off, then tried again.
  CHECK(t.transport->Has("GET api/json?tree=jobs"));
  CHECK(t.h.broker->GetStatus(handle).known);
  CHECK_FALSE(t.h.broker->GetStatus(handle).running);
  REQUIRE(t.transport->Reply("GET api/json?tree=jobs", 200, JobsJson(kJob1)));
  t.adapter->Round();
  CHECK(t.transport->Count("POST job/job1/") == 0);  // backing off
  t.Advance(2000);
  t.adapter->Round();
  CHECK(t.transport->Count("POST job/job1/") == 1);
}

TEST_CASE_METHOD(Job1OnN1, "Row \"job disabled/deleted after claim\"", "[adapter][failure]") {
  const std::string handle = t.Submit("build:job1");
  t.adapter->Round();
  REQUIRE(t.transport->Reply("POST job/job1/", 409));
  CHECK(t.transport->Has("GET api/json?tree=jobs"));
  CHECK(t.client->work.empty());
  CHECK(t.h.broker->GetStatus(handle).known);
}

TEST_CASE("Row \"non-concurrent job already running\"", "[adapter][failure]") {
  AdapterHarness t;
  t.Bring({{"job1", true, /*concurrent=*/false}}, {{"n1", 2, {"linux"}}});
  t.Submit("build:job1", "a");
  t.Submit("build:job1", "b");
  t.adapter->Round();
  CHECK(t.transport->Count("POST job/job1/") == 1);  // D6
}

TEST_CASE_METHOD(Job1OnN1, "Row \"node temporarily offline before start\"", "[adapter][failure]") {
  FakeNode off{"n1", 1, {"linux"}};
  off.offline = true;
  off.temporarily_offline = true;
  t.Computers({off});
  t.Submit("build:job1");
  t.adapter->Round();
  CHECK(t.transport->Count("POST ") == 0);  // no capacity there
}

TEST_CASE("Row \"node temporarily offline during build\"", "[adapter][failure]") {
  AdapterHarness t;
  t.Bring(kJob1, {{"n1", 2, {"linux"}}});
  t.Submit("build:job1", "a");
  t.TriggerQueued(7);
  StartBuild(t);
  FakeNode off{"n1", 2, {"linux"}};
  off.offline = true;
  off.temporarily_offline = true;
  off.busy = {{0, BuildUrl("job1", 3)}};
  t.Computers({off});
  t.Submit("build:job1", "b");
  t.adapter->Round();
  CHECK(t.transport->Count("POST ") == 0);  // nothing new is sent there
  t.Advance(t.settings.poll_build_ms);
  REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1", "SUCCESS")));
  CHECK(t.Packets().back() == PacketType::kWorkComplete);  // the build continued
}

TEST_CASE_METHOD(Job1Running, "Row \"node disconnected during build\"", "[adapter][failure]") {
  FakeNode gone{"n1", 1, {"linux"}};
  gone.offline = true;
  t.Computers({gone});
  t.Advance(t.settings.poll_build_ms);
  REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1", "ABORTED")));
  // node_lost_policy = retry
  CHECK(t.Packets() ==
        Types({PacketType::kWorkData, PacketType::kWorkStatus, PacketType::kWorkFail}));
}

TEST_CASE("Row \"executor count or labels changed\"", "[adapter][failure]") {
  AdapterHarness t;
  t.Bring({{"job1"}, {"job2", true, true, "gpu"}}, kNode1);
  CHECK(t.adapter->listed().count("build:job2:gpu") == 0);
  t.Computers({{"n1", 3, {"linux", "gpu"}}});
  CHECK(t.adapter->listed().count("build:job2:gpu") == 1);
  for (int i = 0; i < 3; ++i) t.Submit("build:job2:gpu", "u" + std::to_string(i));
  t.adapter->Round();
  CHECK(t.transport->Count("POST job/job2/") == 3);
}

TEST_CASE_METHOD(Job1OnN1, "Row \"OFFLINE_NODE_WHEN_COMPLETE POST fails\"", "[adapter][failure]") {
  t.Submit("build:job1", "u1", R"({"OFFLINE_NODE_WHEN_COMPLETE":"1"})");
  t.TriggerQueued(7);
  StartBuild(t);  // on-start: W6 now
  const std::string w6 = "POST computer/n1/changeOfflineCause";
  REQUIRE(t.transport->Reply(w6, 500));
  t.Advance(999);
  CHECK_FALSE(t.transport->Has(w6));  // back-off: 1 s first
  t.Advance(1);
  REQUIRE(t.transport->Reply(w6, 500));
  t.Advance(1999);
  CHECK_FALSE(t.transport->Has(w6));  // then 2 s
  t.Advance(1);
  REQUIRE(t.transport->Reply(w6, 302));
  t.Advance(t.settings.poll_build_ms);
  REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1", "SUCCESS")));
  CHECK(t.Packets().back() == PacketType::kWorkComplete);
  // The taint holds until the node has been seen offline and back.
  t.Submit("build:job1", "u2");
  t.Computers(kNode1);
  t.adapter->Round();
  CHECK(t.transport->Count("POST job/") == 0);
  FakeNode off{"n1", 1, {"linux"}};
  off.offline = true;
  t.Computers({off});
  t.Computers(kNode1);
  t.adapter->Round();
  CHECK(t.transport->Count("POST job/") == 1);
}

TEST_CASE("Row \"single-use node deleted after the build\"", "[adapter][failure]") {
  AdapterHarness t([](MasterSettings& s) { s.offline_timing = OfflineTiming::kOnComplete; });
  t.Bring(kJob1, {{"n1", 1, {"linux"}}, {"n2", 1, {"linux"}}});
  t.Submit("build:job1", "u1", R"({"OFFLINE_NODE_WHEN_COMPLETE":"1"})");
  t.TriggerQueued(7);
  StartBuild(t);
  t.Advance(t.settings.poll_build_ms);
  REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1", "SUCCESS")));
  // on-complete: W6 before the final packets; 404 (the node is gone) counts as done.
  CHECK(t.Packets().size() == 2);
  REQUIRE(t.transport->Reply("POST computer/n1/changeOfflineCause", 404));
  REQUIRE(t.Packets().back() == PacketType::kWorkComplete);
  CHECK(t.client->work.back().payload.find("\"result\":\"SUCCESS\"") != std::string::npos);
}

TEST_CASE_METHOD(Job1OnN1, "Row \"bad JSON arguments\"", "[adapter][failure]") {
  t.Submit("build:job1", "u1", "{not json");
  t.adapter->Round();
  CHECK(t.transport->Count("POST ") == 0);
  REQUIRE(t.Packets() == Types({PacketType::kWorkException}));
  CHECK(t.client->work[0].payload.find("Invalid build arguments") != std::string::npos);
}

TEST_CASE_METHOD(Job1OnN1, "Row \"`cancel job` after grab, before start\"", "[adapter][failure]") {
  SECTION("queued: W3") {
    const std::string handle = t.Submit("build:job1");
    t.TriggerQueued(7);
    t.h.broker->CancelJob(handle);
    t.adapter->Round();
    REQUIRE(t.transport->Reply("POST queue/cancelItem?id=7", 302));
    t.Advance(0);
    REQUIRE(t.transport->Reply(kQueueItem7, 200, QueueItemWaiting(7, /*cancelled=*/true)));
    CHECK(t.State().empty());
  }
  SECTION("just started: W4") {
    const std::string handle = t.Submit("build:job1");
    t.TriggerQueued(7);
    StartBuild(t);
    t.h.broker->CancelJob(handle);
    t.adapter->Round();
    const size_t before = t.client->work.size();
    REQUIRE(t.transport->Reply("POST job/job1/3/stop", 302));
    CHECK(t.State() == "ABORTING");
    t.Advance(t.settings.poll_queue_item_ms);
    REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1", "ABORTED")));
    CHECK(t.State().empty());
    CHECK(t.client->work.size() == before);  // nothing reported (§1.9)
  }
}

TEST_CASE_METHOD(Job1OnN1, "Row \"`stop:` for a finished build / unknown build\"",
                 "[adapter][failure]") {
  t.Submit("stop:m1", "s1", R"({"name":"job1","number":3})");
  t.adapter->Round();
  REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1", "SUCCESS")));
  REQUIRE(t.Packets() == Types({PacketType::kWorkFail}));
  t.Submit("stop:m1", "s2", R"({"name":"nosuchjob","number":3})");
  t.adapter->Round();
  REQUIRE(t.Packets() == Types({PacketType::kWorkFail, PacketType::kWorkException}));
}

TEST_CASE("Row \"`stop:` while master DOWN\"", "[adapter][failure]") {
  AdapterHarness t([](MasterSettings& s) { s.meta_timeout_ms = 5000; });
  t.Bring(kJob1, kNode1);
  AdapterProbe::PollController(*t.adapter);
  REQUIRE(t.transport->Reply("GET api/json", 401));
  REQUIRE(t.adapter->health() == Health::kDown);
  t.Submit("stop:m1", "s1", R"({"name":"job1","number":3})");
  t.adapter->Round();
  t.Advance(1000);
  CHECK(t.client->work.empty());  // waiting for the master
  t.Advance(t.settings.meta_timeout_ms);
  REQUIRE(t.Packets() == Types({PacketType::kWorkException}));
  CHECK(t.client->work[0].payload.find("not reachable") != std::string::npos);
}

TEST_CASE("Row \"Gearman client disconnects mid-build\"", "[adapter][failure]") {
  AdapterHarness t([](MasterSettings& s) { s.resume_window_ms = 10000; });
  Running(t);
  t.h.broker->Detach(*t.client);
  t.adapter->Round();
  CHECK(t.State() == "STARTED");  // kept for a resubmission
  t.Advance(t.settings.resume_window_ms + 1);
  // orphan_policy = abort: W4 (the build poll answered first if it was due).
  t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1"));
  CHECK(t.transport->Has("POST job/job1/3/stop"));
}

TEST_CASE_METHOD(
    Journalled,
    "Row \"our server restarts mid-build\": a queued build is followed on, not triggered again",
    "[adapter][failure][journal]") {
  t.Queued(kJob1, kNode1);
  REQUIRE(store.rows.size() == 1);  // the QUEUED entry
  t.Restart(kJob1, kNode1);
  CHECK(t.State() == "RECOVERED");  // re-bound (the broker had the job back), not reconciled
  t.adapter->Round();               // the master answers: reconciled from its queue item
  CHECK(t.State() == "QUEUED");
  StartBuild(t);
  CHECK(t.Packets() == Types({PacketType::kWorkData, PacketType::kWorkStatus}));
  t.Advance(t.settings.poll_build_ms);
  REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1", "SUCCESS")));
  CHECK(t.Packets().back() == PacketType::kWorkComplete);
  CHECK(std::none_of(t.transport->log.begin(), t.transport->log.end(),
                     [](const std::string& r) { return r.starts_with("POST job/job1/build"); }));
  CHECK(store.rows.empty());  // done with: the entry is deleted
}

TEST_CASE_METHOD(
    Journalled,
    "Row \"our server restarts mid-build\": a trigger whose answer died with us is found",
    "[adapter][failure][journal]") {
  t.Bring(kJob1, kNode1);
  t.Submit("build:job1", "u1");
  t.adapter->Round();
  store.Commit();  // J1: the TRIGGERING entry is committed, then the POST is sent
  REQUIRE(t.transport->Has("POST job/job1/"));
  t.Restart(kJob1, kNode1);  // the POST's answer is lost with the old process
  t.adapter->Round();
  CHECK(t.State() == "TRIGGERING");
  REQUIRE(t.transport->Reply("GET queue/api/json", 200,
                             "{\"items\":[{\"id\":9,\"task\":{\"name\":\"job1\"},\"actions\":["
                             "{\"parameters\":[{\"name\":\"GEARMAN_UNIQUE\",\"value\":\"u1\"}]}"
                             "]}]}"));
  CHECK(t.State() == "QUEUED");
  CHECK(t.adapter->Summary().builds.front().queue_id == 9);
  CHECK(t.transport->Count("POST ") == 0);  // adopted, never triggered twice
}

TEST_CASE_METHOD(Journalled,
                 "Row \"our server restarts mid-build\": an orphan nobody re-binds is stopped (J6)",
                 "[adapter][failure][journal]") {
  t.Queued(kJob1, kNode1);
  StartBuild(t);
  t.h.broker->Detach(*t.client);  // the client is gone with the old process
  t.Restart(kJob1, kNode1);
  CHECK(t.State() == "RECOVERED");
  t.adapter->Resume();  // resume_window_s (0 here) is over: orphan_policy = abort
  t.adapter->Round();
  REQUIRE(t.transport->Reply("POST job/job1/3/stop", 302));
  CHECK(t.State() == "ABORTING");
  t.Advance(t.settings.poll_queue_item_ms);
  REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1", "ABORTED")));
  CHECK(t.State().empty());
  CHECK(store.rows.empty());
}

TEST_CASE_METHOD(Job1Running, "Row \"hung build\"", "[adapter][failure]") {
  for (int i = 0; i < 100; ++i) {
    t.Advance(t.settings.poll_build_max_ms);
    if (t.transport->Has(kBuild3))
      REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1")));
  }
  CHECK(t.State() == "STARTED");  // waits: build timeouts are Jenkins' business
  CHECK(t.client->work.size() == 2);
}

}  // namespace
}  // namespace roundhouse::jenkins::testing
