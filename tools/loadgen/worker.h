// A worker connection, one job at a time, as libgearman workers behave:
//   CAN_DO each function, GRAB_JOB
//   JOB_ASSIGN -> WORK_COMPLETE (empty or echoing the workload), GRAB_JOB
//   NO_JOB     -> PRE_SLEEP, then wait for NOOP -> GRAB_JOB
// Roles: kWorker (throughput modes; checks the workload size), kDrain (records what it gets,
// grabbing with GRAB_JOB_UNIQ when recording so the unique is known), kIdle (registers
// --idle-function, sleeps, and never answers a NOOP: it only holds a connection open).
// A worker is ready once the server answered its first GRAB, which proves the registration was
// processed (requests are handled in order, doc/protocol.md §1.3).
#pragma once

#include <string>
#include <vector>

#include "tools/loadgen/options.h"
#include "tools/loadgen/peer.h"

namespace roundhouse::loadgen {

class Worker : public Peer {
 public:
  enum class Role { kWorker, kDrain, kIdle };

  Worker(const Options& options, Role role);

  void OnConnected(Context& ctx) override;
  void OnPacket(const protocol::Packet& packet, Context& ctx) override;
  bool ready() const override { return ready_; }

 private:
  enum class State { kGrabbing, kSleeping };

  void Grab();
  void OnAssign(const protocol::Packet& packet, Context& ctx);

  const Role role_;
  const bool grab_uniq_;
  const bool echo_;
  const bool check_payload_;
  const size_t payload_size_;
  std::vector<std::string> functions_;
  State state_ = State::kGrabbing;
  bool ready_ = false;
};

}  // namespace roundhouse::loadgen
