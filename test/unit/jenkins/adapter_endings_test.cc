// How a build's end reaches its client (doc/jenkins.md §1.5, §1.6), on the fake clock and
// transport of adapter_fakes.h: every Jenkins result is passed on verbatim, and the two §1.6
// policies (node_lost_policy, restart_policy) decide between a result and WORK_FAIL. These rules
// were checked only end to end (test/e2e/test_jenkins.py HappyPath, test_jenkins_failures.py
// NodeDisconnected and ControllerRestarted), one Python case per value; the e2e suites keep one
// case each for the wiring.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "test/unit/jenkins/adapter_fakes.h"

namespace roundhouse::jenkins::testing {
namespace {

using protocol::PacketType;

const std::string kBuild3 = "GET job/job1/3/api/json";

// job1 on n1, one job submitted and triggered as queue item 7, then started as build #3 on n1's
// executor 0: the start packets (WORK_DATA, WORK_STATUS) are sent.
void Running(AdapterHarness& t) {
  t.Queued({{"job1"}}, {{"n1", 1, {"linux"}}});
  t.Advance(t.settings.poll_queue_item_ms);
  REQUIRE(t.transport->Reply("GET queue/item/7/", 200,
                             "{\"_class\":\"hudson.model.Queue$LeftItem\",\"id\":7,"
                             "\"executable\":{\"number\":3,\"url\":\"" +
                                 BuildUrl("job1", 3) + "\"}}"));
  REQUIRE(t.transport->Reply("GET computer/n1/api/json", 200,
                             "{\"executors\":[{\"number\":0,\"currentExecutable\":{\"url\":\"" +
                                 BuildUrl("job1", 3) + "\"}}]}"));
  REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1")));
  REQUIRE(t.Packets() == std::vector<PacketType>{PacketType::kWorkData, PacketType::kWorkStatus});
}

// The next build poll answers that build #3 ended with `result`.
void Ends(AdapterHarness& t, const std::string& result) {
  t.Advance(t.settings.poll_build_ms);
  REQUIRE(t.transport->Reply(kBuild3, 200, BuildJson("job1", 3, "n1", result)));
}

// The client got the start packets, then the final WORK_DATA and WORK_COMPLETE, both carrying
// the start JSON with `"result":"<result>"` appended (§1.5).
void CheckReported(const AdapterHarness& t, const std::string& result) {
  REQUIRE(t.Packets() == std::vector<PacketType>{PacketType::kWorkData, PacketType::kWorkStatus,
                                                 PacketType::kWorkData, PacketType::kWorkComplete});
  const std::string& start = t.client->work[0].payload;
  REQUIRE(start.ends_with("}"));
  const std::string final_json =
      start.substr(0, start.size() - 1) + ",\"result\":\"" + result + "\"}";
  CHECK(t.client->work[2].payload == final_json);
  CHECK(t.client->work[3].payload == final_json);
  CHECK(t.State().empty());
}

void CheckFailed(const AdapterHarness& t) {
  CHECK(t.Packets() == std::vector<PacketType>{PacketType::kWorkData, PacketType::kWorkStatus,
                                               PacketType::kWorkFail});
  CHECK(t.State().empty());
}

// A poll of the computers that shows n1 disconnected (offline, not temporarily offline).
void NodeLost(AdapterHarness& t) {
  FakeNode gone{"n1", 1, {"linux"}};
  gone.offline = true;
  t.Computers({gone});
}

TEST_CASE("every Jenkins result is reported verbatim after the start JSON", "[adapter][endings]") {
  for (const std::string result : {"SUCCESS", "UNSTABLE", "FAILURE", "ABORTED", "NOT_BUILT"}) {
    DYNAMIC_SECTION(result) {
      AdapterHarness t;
      Running(t);
      Ends(t, result);
      CheckReported(t, result);
    }
  }
}

TEST_CASE("node_lost_policy = retry: a build that died with its node is WORK_FAIL",
          "[adapter][endings]") {
  for (const std::string result : {"ABORTED", "FAILURE"}) {
    DYNAMIC_SECTION(result) {
      AdapterHarness t;
      Running(t);
      NodeLost(t);
      Ends(t, result);
      CheckFailed(t);
    }
  }
}

TEST_CASE("node_lost_policy = retry: a build that succeeded despite the lost node is reported",
          "[adapter][endings]") {
  AdapterHarness t;
  Running(t);
  NodeLost(t);
  Ends(t, "SUCCESS");
  CheckReported(t, "SUCCESS");
}

TEST_CASE("node_lost_policy = report: a build that died with its node is reported",
          "[adapter][endings]") {
  AdapterHarness t([](MasterSettings& s) { s.node_lost_policy = NodeLostPolicy::kReport; });
  Running(t);
  NodeLost(t);
  Ends(t, "ABORTED");
  CheckReported(t, "ABORTED");
}

TEST_CASE("restart_policy = report: a build aborted by a controller restart is reported",
          "[adapter][endings]") {
  AdapterHarness t([](MasterSettings& s) { s.restart_policy = RestartPolicy::kReport; });
  Running(t);
  t.transport->instance = "session-2";  // the controller came back as a new instance
  Ends(t, "ABORTED");
  CheckReported(t, "ABORTED");
}

}  // namespace
}  // namespace roundhouse::jenkins::testing
