// gearmand's HTTP protocol (-r http, --http-port; doc/protocol.md §5.4): a listener on the server's
// loop where each connection carries one HTTP request that submits one job. The function is the
// request path without its leading '/'s, the workload the POST/PUT body, and X-Gearman-Unique,
// X-Gearman-Background and X-Gearman-Priority choose the rest. Every connection is a broker peer
// like a Gearman client ("every worker is a worker", doc/design.md): the job runs through the
// broker, and the reply carries JOB_CREATED's handle (background) or the job's end (foreground)
// in gearmand 1.1.20's format: HTTP/1.0, X-Gearman-Job-Handle, X-Gearman-Command, the result as
// the body, and the connection closed after it (gearmand never keeps one alive).
//
// Each connection rides a net::Stream (server/net/stream.h), the primitive the Gearman connections
// and the status port use: its input grows only with bytes that arrived (a waiting or trickling
// connection holds no read block), one write is in flight, and the stream is freed only in its
// close callback. The listeners and the set of connections are a ConnectionSet
// (connection_set.h), shared with the status port.
//
// Life cycle of a connection (one enum, transitions in one place: Conn::Enter):
//   kReading   waiting for the request; it must be complete within request_timeout_ms of the
//              accept (else 408 and close)
//   kWaiting   the job was submitted; waiting for SubmitDone (a durable background write) or for
//              the foreground job's end. No deadline (a job may run for hours, as for a Gearman
//              client). Input is still read, only to notice the peer leaving (EOF or error:
//              detached, §3.10); more than kMaxStrayInput bytes after the request close it.
//   kWriting   the reply is being written; it must be taken within write_timeout_ms plus one
//              second per MiB, else the connection (a peer that does not read) is closed
//   kLingering the reply is out: our side is shut down, input is discarded until the peer's
//              EOF, for at most kLingerMs (so unread bytes do not turn the close into a reset
//              that destroys the reply)
//   kAbandoned it failed inside a Broker call (its output passed max_output_queue, or its reply
//              could not be queued): nothing more is read or written; the reaper closes it
//   kClosed    the stream is closing; freed in its close callback
// Limits: every request is bounded by HttpLimits (head 16 KiB, 64 headers, body at most
// --max-packet-body: the body becomes the job's data, as a SUBMIT_JOB's would), a reply (WORK_DATA
// chunks plus the result) by --max-pending-output (else 502), and one peer address holds at most
// max_connections_per_address connections (more are answered 503 and closed).
// Memory, as for a Gearman client (server/memory_budget.h): the reply's bytes, while collected
// and while unsent, count in the server's unsent output (the --max-memory budget); past
// max_output_queue (--max-output-queue) the connection is closed as if its peer had left; and
// at the budget a submission is refused with QUEUE_ERROR where the handle goes, as SUBMIT_* is.
// Accept failures go to the server's AcceptErrors (server/listener.h) like every listener's.
//
// Lifetime: broker output (SendWork, SubmitDone) arrives inside Broker calls, which must not
// re-enter the Broker, so those only write; a connection is closed (and detached) only from its
// own stream callbacks, the sweep, or the reaper (an idle handle) for failures noticed inside a
// Broker call. The owner calls Close() and runs the loop until the close callbacks ran before
// destroying the GearmanHttp.
//
// Thread-safety: loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "protocol/http.h"
#include "server/access.h"
#include "server/broker/broker.h"
#include "server/http/connection_set.h"
#include "server/listener.h"
#include "server/memory_budget.h"

namespace roundhouse::server::http {

struct GearmanHttpOptions {
  std::vector<std::string> addresses;  // -L; empty = all addresses
  uint16_t port = 8080;                // --http-port (0 binds an ephemeral port)
  int backlog = 32;
  size_t max_connections_per_address = 256;      // --http-max-connections-per-address
  uint64_t request_timeout_ms = 30'000;          // --http-request-timeout
  uint64_t write_timeout_ms = 30'000;            // plus 1 s per MiB of the reply (the same option)
  size_t max_unique = 64;                        // Limits::max_unique
  size_t max_reply_bytes = 64ull * 1024 * 1024;  // Limits::max_pending_output
  size_t max_output_queue = 256ull * 1024 * 1024;  // Limits::max_output_queue
  protocol::http::HttpLimits limits{/*max_head_bytes=*/16 * 1024, /*max_headers=*/64,
                                    /*max_body_bytes=*/64ull * 1024 * 1024};
  AcceptErrors* accept_errors = nullptr;  // the server's (server/listener.h); outlives this
};

class GearmanHttp {
 public:
  // `broker` must outlive the GearmanHttp (every connection is attached to it), and so must
  // `access` (may be null: every submission allowed) and `budget` (the server's). A
  // connection's identity is loopback-plain or plain, and a submission needs the submit grant
  // as SUBMIT_* does.
  GearmanHttp(uv_loop_t* loop, GearmanHttpOptions options, broker::Broker& broker,
              AccessControl* access, MemoryBudget& budget);
  ~GearmanHttp();
  GearmanHttp(const GearmanHttp&) = delete;
  GearmanHttp& operator=(const GearmanHttp&) = delete;

  // Binds and listens (blocking bind retry as for the Gearman port); call before the loop runs.
  Status Start();
  // Graceful shutdown: no new connection; those open are answered as their jobs end.
  void CloseListeners();
  // Closes the listeners and every connection (detaching each from the broker). Idempotent.
  void Close();

  uint16_t port() const { return conns_.port(options_.port); }
  size_t connection_count() const { return conns_.size(); }

 private:
  class Conn;
  friend class Conn;

  static void OnSweep(uv_timer_t* timer);
  static void OnReap(uv_idle_t* idle);
  void OnAccept(Listener& listener);
  void Closed(Conn& conn);
  // `conn` failed inside a Broker call: it is closed from the reaper, right after.
  void Reap(Conn& conn);

  uv_loop_t* loop_;
  const GearmanHttpOptions options_;
  broker::Broker& broker_;
  AccessControl* const access_;
  MemoryBudget& budget_;
  ConnectionSet<Conn> conns_;  // the listeners and every connection until its close callback
  // Live (not closed) connections per peer address; entries erased at zero.
  std::unordered_map<std::string, size_t> per_address_;
  std::vector<Conn*> to_reap_;  // each also in conns_, not yet closed
  uv_timer_t sweep_{};          // enforces the deadlines above
  uv_idle_t reaper_{};          // runs while to_reap_ is non-empty
  bool handles_open_ = false;
  bool closed_ = false;
};

}  // namespace roundhouse::server::http
