// A client connection: submits jobs and keeps up to `window` of them in flight.
//
// Background (bg, submit-only): a job is in flight from SUBMIT_JOB_BG until its JOB_CREATED.
// Foreground (fg, latency): from SUBMIT_JOB until the WORK_COMPLETE for its handle.
// JOB_CREATED arrives in submit order (one FIFO of replies per connection, doc/protocol.md
// §1.3), so the n-th JOB_CREATED names the n-th unanswered submit; WORK_COMPLETE may arrive in
// any order and is matched by handle, searching from the oldest job (usually the one that
// finishes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/loadgen/job_maker.h"
#include "tools/loadgen/options.h"
#include "tools/loadgen/peer.h"

namespace roundhouse::loadgen {

class Client : public Peer {
 public:
  // `quota` jobs in total (0 = until told to stop).
  Client(const Options& options, int index, uint64_t run_id, int64_t quota);

  void OnConnected(Context&) override {}
  void OnPacket(const protocol::Packet& packet, Context& ctx) override;
  bool ready() const override { return true; }

  // Submits until the window is full, the quota is used, or ctx.may_submit is false.
  void Pump(Context& ctx);

  int64_t in_flight() const { return count_; }

 private:
  // One submitted job. Handles and uniques are at most 63 and 64 bytes (doc/protocol.md §1.5).
  struct Slot {
    int64_t sent_ns;
    bool done;  // foreground: WORK_COMPLETE seen (or failed); popped once it reaches the head
    uint8_t handle_size;
    uint8_t unique_size;
    char handle[64];
    char unique[kMaxUnique];
  };

  Slot& At(int64_t i) { return slots_[static_cast<size_t>((head_ + i) % window_)]; }
  void OnJobCreated(const protocol::Packet& packet, Context& ctx);
  void OnWorkResult(const protocol::Packet& packet, Context& ctx);
  void OnError(const protocol::Packet& packet, Context& ctx);
  void PopFinished();

  const bool background_;
  const ResultKind result_;
  const int64_t window_;
  const int64_t quota_;
  const std::string payload_;  // what an echoing worker sends back
  JobMaker maker_;
  int64_t started_ = 0;
  // Ring of in-flight jobs in submit order: slots [head_, head_ + count_). The first created_
  // of them have their handle (JOB_CREATED seen); the rest wait for JOB_CREATED.
  std::vector<Slot> slots_;
  int64_t head_ = 0;
  int64_t count_ = 0;
  int64_t created_ = 0;
};

}  // namespace roundhouse::loadgen
