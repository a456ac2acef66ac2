// A connection to the server playing one role (client, worker, idle worker), and the Context the
// loop passes to it. A Peer reacts to packets by appending requests to its connection's output;
// the Loop owns readiness, reading, parsing and flushing. A Peer belongs to one Loop thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "protocol/packet.h"
#include "tools/loadgen/connection.h"
#include "tools/loadgen/record_file.h"
#include "tools/loadgen/stats.h"

namespace roundhouse::loadgen {

// What the loop knows at the start of a turn. Valid for the duration of one callback.
struct Context {
  int64_t now_ns = 0;            // monotonic time taken after epoll_wait returned
  bool measuring = false;        // latency samples count (between warm-up and the end)
  bool may_submit = false;       // clients may start new jobs (run phase, backlog below its limit)
  Stats* stats = nullptr;        // this thread's counters
  RecordFile* record = nullptr;  // null unless --record
};

class Peer {
 public:
  explicit Peer(size_t input_capacity) : conn_(input_capacity) {}
  virtual ~Peer() = default;
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  Connection& conn() { return conn_; }

  // The TCP connection is established; append the opening requests (registrations).
  virtual void OnConnected(Context& ctx) = 0;
  // One well-formed response-magic packet. Its views borrow the input buffer and die when the
  // callback returns.
  virtual void OnPacket(const protocol::Packet& packet, Context& ctx) = 0;
  // The peer may take part in the measured phase (a worker's registration was confirmed).
  virtual bool ready() const = 0;

  // Loop bookkeeping, read and written only by Loop.
  bool connecting = false;  // connect(2) in progress; waiting for writability
  bool opening = false;     // holds one of the loop's opening slots (started, not yet ready)
  bool dirty = false;       // in the loop's flush list
  bool want_write = false;  // EPOLLOUT armed because the socket refused part of the output
  bool dead = false;        // failed; removed from epoll, never touched again

 private:
  Connection conn_;
};

}  // namespace roundhouse::loadgen
