// The server-wide memory budget (--max-memory, doc/protocol.md §3.12) and the per-peer output
// cap (--max-output-queue) as every peer that queues output sees them: the Gearman connections
// (server/connection.h) and the HTTP protocol port's (server/http/gearman_http.h) alike, so
// bytes owed to an HTTP submitter weigh exactly as bytes owed to a Gearman client.
// Implemented by the Server; the defaults (no budget, nothing counted) serve tests.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstddef>

#include "server/broker/peer.h"

namespace roundhouse::server {

class MemoryBudget {
 public:
  virtual ~MemoryBudget() = default;
  // True when a submission carrying `bytes` must be refused because queued job data and unsent
  // output are at the budget. The implementation counts and logs each refusal.
  virtual bool RefuseForMemory(size_t bytes) {
    (void)bytes;
    return false;
  }
  // Where every peer adds the output it holds unsent (net::Stream::set_queued_total, and what a
  // peer collects before it can write it); null = not counted.
  virtual size_t* unsent_output_total() { return nullptr; }
  // `peer` is being closed because its output passed Limits::max_output_queue (counted, logged).
  virtual void OutputOverflowed(const broker::Peer& peer) { (void)peer; }
};

}  // namespace roundhouse::server
