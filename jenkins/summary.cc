// The one executor-count rule of summary.h.
#include "jenkins/summary.h"

namespace roundhouse::jenkins {

ExecutorCounts CountExecutors(const NodeSummary& node) {
  ExecutorCounts c;
  const bool offline = node.offline || node.temporarily_offline;
  for (const ExecutorSummary& e : node.executors) {
    ++c.total;
    if (!e.idle) {
      ++c.busy;
    } else if (offline) {
      ++c.offline;
    } else {
      ++c.idle;
    }
  }
  return c;
}

void CountExecutors(MasterSummary& master) {
  master.executors = {};
  for (NodeSummary& node : master.nodes) {
    node.counts = CountExecutors(node);
    master.executors.total += node.counts.total;
    master.executors.busy += node.counts.busy;
    master.executors.idle += node.counts.idle;
    master.executors.offline += node.counts.offline;
  }
}

}  // namespace roundhouse::jenkins
