// The one executor-count rule (jenkins/summary.h) that every view shows.
#include "jenkins/summary.h"

#include <catch2/catch.hpp>

namespace roundhouse::jenkins {
namespace {

NodeSummary Node(bool offline, bool temporarily, std::initializer_list<bool> idle) {
  NodeSummary n;
  n.offline = offline;
  n.temporarily_offline = temporarily;
  int i = 0;
  for (bool e : idle) n.executors.push_back({i++, "", e, e ? "" : "http://j/job/x/1/"});
  return n;
}

TEST_CASE("executor counts: busy anywhere, idle only online, the rest offline", "[summary]") {
  MasterSummary m;
  m.nodes.push_back(Node(false, false, {true, false, true}));  // online: 2 idle, 1 busy
  m.nodes.push_back(Node(true, true, {true, false}));          // temporarily offline
  m.nodes.push_back(Node(true, false, {true}));                // disconnected
  m.nodes.push_back(Node(false, false, {}));                   // built-in, 0 executors
  CountExecutors(m);
  CHECK(m.executors.total == 6);
  CHECK(m.executors.busy == 2);
  CHECK(m.executors.idle == 2);
  CHECK(m.executors.offline == 2);
  CHECK(m.executors.busy + m.executors.idle + m.executors.offline == m.executors.total);
  CHECK(m.nodes[1].counts.offline == 1);
  CHECK(m.nodes[1].counts.busy == 1);
  CHECK(m.nodes[3].counts.total == 0);
}

TEST_CASE("executor counts are recomputed, not accumulated", "[summary]") {
  MasterSummary m;
  m.nodes.push_back(Node(false, false, {true}));
  CountExecutors(m);
  CountExecutors(m);
  CHECK(m.executors.total == 1);
  CHECK(m.executors.idle == 1);
}

}  // namespace
}  // namespace roundhouse::jenkins
