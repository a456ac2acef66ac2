// Peer: anything the broker talks to. A network connection (client, worker, or both) or an
// in-process worker such as a Jenkins executor ("every worker is a worker", doc/design.md).
//
// The broker owns the fields of PeerState and changes them only inside Broker calls; a peer
// reads them (e.g. for `workers`) but never writes them. A peer must be Attach()ed before use
// and Detach()ed before it is destroyed.
//
// Thread-safety: loop thread only. The virtual output methods are called from inside Broker
// calls: they may queue output or schedule work, but must never call back into the Broker
// (an in-process worker that wants to Grab on SendNoop() defers the Grab to a later callback).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/packet.h"

namespace roundhouse::broker {

class Function;
class Job;

// The reply a SUBMIT_* gets: a handle, or an ERROR packet's code and text.
struct SubmitReply {
  bool ok = false;
  std::string_view handle;      // ok: valid until the next Broker call
  std::string_view error_code;  // !ok: static strings
  std::string_view error_text;  //       (except a store error text, valid until the next call)
};

struct Registration {
  Function* function = nullptr;
  int64_t timeout_ms = 0;  // 0 = no timeout; otherwise >= 1000 (doc/protocol.md §3.8)
};

// Broker-owned state of one peer. Invariants are maintained by Broker.
struct PeerState {
  // CAN_DO order, de-duplicated; round-robin moves the used entry to the end.
  std::vector<Registration> registrations;
  // Jobs assigned to this peer and not yet ended or re-queued.
  std::vector<Job*> running;
  // Foreground jobs this peer submitted (or coalesced onto) and still waits on.
  std::vector<Job*> waiting;
  std::string client_id = "-";
  // Set at Attach, never reused within a broker (a job names timed-out workers by it, so a
  // later peer at the same address is never mistaken for one). 0 before Attach.
  uint64_t serial = 0;
  bool sleeping = false;         // sent PRE_SLEEP, no GRAB since
  bool noop_sent = false;        // a NOOP is outstanding (at most one until the next GRAB)
  bool exceptions = false;       // OPTION_REQ exceptions (or --exceptions)
  bool acted_as_worker = false;  // sent CAN_DO*, GRAB_JOB*, PRE_SLEEP or SET_CLIENT_ID
  bool attached = false;
};

class Peer {
 public:
  Peer() = default;
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  virtual ~Peer() = default;

  // Wake-up: a network worker sends NOOP; an in-process worker schedules a Grab. Only peers that
  // called Broker::PreSleep() (and have not grabbed since) are woken, so an in-process worker
  // that wants wake-ups calls PreSleep() whenever Grab() returns null.
  virtual void SendNoop() = 0;

  // Forwards a WORK_* packet to a client peer. `payload` is the exact body to send (the
  // worker's bytes, or `HANDLE\0` for a downgraded WORK_EXCEPTION). In-process workers never
  // submit jobs, so they may ignore this.
  virtual void SendWork(protocol::PacketType type, std::string_view payload) = 0;

  // A submission that Submit() answered as pending (a durable write) has finished. Replies come
  // in the order the tickets were issued for this peer.
  virtual void SubmitDone(uint64_t ticket, const SubmitReply& reply) = 0;

  // A job this peer is running stopped mattering: cancelled by admin or abandoned by its last
  // client. Network workers ignore it (gearmand does not tell them); in-process workers abort.
  virtual void JobWithdrawn(const Job& job) { (void)job; }

  // For the admin `workers` listing: socket fd (-1 for in-process peers) and peer address.
  virtual int Fd() const = 0;
  virtual std::string_view Address() const = 0;
  // True for loopback network peers (admin shutdown is allowed only from those).
  virtual bool IsLoopback() const { return false; }

  const PeerState& state() const { return state_; }

 private:
  friend class Broker;

  // A submit that Submit() answered as pending. Kept in ticket order; the front is delivered
  // through SubmitDone() once it is ready, so replies never overtake each other. Tickets in the
  // deque are consecutive (issued by next_ticket_++, removed only from the front or all at
  // once), so ticket T is at index T - front().ticket.
  struct PendingSubmit {
    uint64_t ticket = 0;
    uint64_t write_id = 0;  // id of the job whose durable write it waits on
    bool ready = false;     // the write finished; `ok` and the strings are set
    bool ok = false;
    std::string handle;      // ok: the job's handle
    std::string error_text;  // !ok: the store's message (code QUEUE_ERROR)
  };

  PeerState state_;
  uint64_t next_ticket_ = 1;
  std::deque<PendingSubmit> pending_submits_;
};

}  // namespace roundhouse::broker
