// The HTTP status endpoint (issue 6): a listener on the server's loop serving the status API,
// Prometheus metrics and the dashboard. Requests are framed by protocol/http.h; documents are
// built by api.h / metrics.h from a fresh snapshot on every request.
//
// Endpoints (GET and HEAD only; anything else is 405 with Allow):
//   /               the dashboard (HTML; /dashboard.css and /dashboard.js beside it)
//   /api/status     functions, server, store      /api/workers   workers
//   /api/jobs       ?function=NAME&limit=N (1..kMaxJobsLimit, default 100)
//   /api/jenkins    masters, nodes, executors, builds (empty list without Jenkins)
//   /metrics        Prometheus text
// Unknown paths are 404; unknown query parameters or bad values 400; over-limit requests get the
// parser's 413 / 431 and the connection is closed. With a bearer token configured, a request
// for anything but the dashboard's static files without it is 401 (doc/acl.md).
//
// Limits (the Gearman port's discipline; README.md, "Status API, metrics and dashboard"):
//   - every request is bounded by HttpLimits;
//   - a whole request (head and body) must arrive within `request_timeout_ms` of its first byte,
//     or of the accept for a connection's first request, whatever the trickle: a connection that
//     sends one byte a second is answered 408 and closed;
//   - between requests a keep-alive connection is closed after `idle_timeout_ms`;
//   - one response is pending per connection at most (reading stops while it is written, so a
//     pipelining client cannot queue unbounded output); it must be written within
//     `write_timeout_ms`, else the connection (a scraper that does not read) is closed;
//   - the documents that grow with functions, workers or jobs (/api/status, /api/workers,
//     /api/jobs, /metrics) are streamed (server/reply_producer.h): a slice is produced only
//     when the previous one has left, at most about one per loop turn, so a large one costs
//     O(slice) memory and never stalls the loop. One that fits in a slice is sent with a
//     Content-Length as any response; a longer one is chunked (HTTP/1.1) or ends with the
//     connection (HTTP/1.0). A HEAD of a long one gets the headers without a length;
//   - unsent response bytes of all connections together stay under `max_pending_output_bytes`
//     (responses of at most 4 KiB, errors, excepted): a response that would pass it is replaced
//     by a 503 before any byte of it goes out, and while the budget is spent no new document is
//     built;
//   - at most `max_connections_per_address` connections per peer address (more: 503 and close);
//   - past `max_connections`, the connection that has waited longest for a request (idle or
//     trickling, never one being answered) is closed to make room; only if every connection is
//     being answered is the new one answered 503 and closed. So slow or idle peers can never
//     lock out a new request.
// Refusals and closes are logged (at most once a second per kind, with the count since).
//
// Lifetime: like the Gearman connections, a connection is freed in its close callback, never in
// the callback that noticed it failed (the listeners and the connections are a ConnectionSet,
// connection_set.h, shared with the gearmand HTTP port). The owner calls Close() and then runs the
// loop until the close callbacks ran before destroying the StatusServer.
//
// Thread-safety: loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "protocol/http.h"
#include "server/broker/broker.h"
#include "server/http/connection_set.h"
#include "server/http/status_data.h"
#include "server/listener.h"
#include "server/reply_producer.h"
#include "server/tls/tls_context.h"

namespace roundhouse::server::http {

inline constexpr size_t kMaxJobsLimit = 10000;
inline constexpr size_t kDefaultJobsLimit = 100;

struct StatusServerOptions {
  std::string address = "127.0.0.1";  // --status-listen
  uint16_t port = 0;                  // --status-port (0 here binds an ephemeral port)
  int backlog = 32;
  size_t max_connections = 64;
  size_t max_connections_per_address = 16;
  uint64_t idle_timeout_ms = 30'000;
  uint64_t request_timeout_ms = 10'000;
  uint64_t write_timeout_ms = 30'000;
  size_t max_pending_output_bytes = 16 * 1024 * 1024;
  size_t metrics_max_functions = 100;  // --metrics-max-functions (broker's part, see metrics.h)
  // --status-token-file / -env: every request but the dashboard's static files must carry
  // `Authorization: Bearer <token>`, else 401 with `WWW-Authenticate: Bearer`. Empty = open.
  std::string bearer_token;
  protocol::http::HttpLimits limits{/*max_head_bytes=*/8 * 1024, /*max_headers=*/64,
                                    /*max_body_bytes=*/1024};
  AcceptErrors* accept_errors = nullptr;  // the server's (server/listener.h); outlives this
};

// The reply to one request, before framing. Pure routing result (tests may call Route()).
struct Reply {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<protocol::http::Header> headers;  // extra ones (Allow, Cache-Control)
  // Set for the streamed documents: the body is what it produces (`body` is unused).
  std::unique_ptr<ReplyProducer> producer;
};

class StatusServer {
 public:
  // `broker` and `info` must stay valid while the server is open. `jenkins` may be empty.
  // `clock` is the broker's (job ages compare with Job::created_ms()).
  StatusServer(uv_loop_t* loop, StatusServerOptions options, const Clock& clock,
               const broker::Broker& broker, std::function<ServerInfo()> info,
               JenkinsProvider jenkins);
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  // Binds and listens (blocking bind retry as for the Gearman port); call before the loop runs.
  Status Start();
  // Closes the listeners and every connection. Idempotent.
  void Close();

  // --status-ssl: every connection accepted from now on speaks TLS with `context` (the server's
  // current one; replaced on SIGHUP) and plain text is refused; null: plain HTTP.
  void SetTls(std::shared_ptr<const tls::Context> context) { tls_ = std::move(context); }

  // Replaces the Jenkins provider (the hub may be created after the status server).
  void set_jenkins(JenkinsProvider jenkins) { jenkins_ = std::move(jenkins); }

  uint16_t port() const { return conns_.port(options_.port); }
  size_t connection_count() const { return conns_.size(); }
  // Unsent response bytes held for all connections now (bounded by max_pending_output_bytes).
  size_t pending_output_bytes() const { return pending_output_; }

  // What the limits above did, since start (for tests and the log).
  struct Counters {
    uint64_t request_timeouts = 0;    // 408: a request not complete in time
    uint64_t write_timeouts = 0;      // a response not taken by the peer in time
    uint64_t output_refusals = 0;     // a response over the pending-output budget
    uint64_t per_address_refusals = 0;
    uint64_t evictions = 0;           // waiting connections closed to admit a new one
    uint64_t full_refusals = 0;       // 503: every slot busy answering
    uint64_t unauthorized = 0;        // 401: bearer token missing or wrong
  };
  const Counters& counters() const { return counters_; }

  // The reply for `request` (method, target) from a fresh snapshot.
  Reply Route(const protocol::http::Request& request);

 private:
  class Conn;
  friend class Conn;

  static void OnSweep(uv_timer_t* timer);
  // Connections streaming a response whose last slice left at once: their next slice is due in
  // the next loop turn. The idle handle runs (and keeps the loop from blocking) only while
  // resume_ is non-empty.
  void ResumeNextTurn(Conn& conn);
  static void OnResumeIdle(uv_idle_t* handle);
  void OnAccept(Listener& listener);
  void Closed(Conn& conn);
  // Admission of a just-accepted connection from `address` (see the limits above): true to
  // serve it; false: the caller answers 503 and closes. May close a waiting connection.
  bool Admit(Conn& conn, const std::string& address);
  // Logs `what` at most once a second per `kind` (an index into last_log_), with the count of
  // lines suppressed since.
  void LogLimited(size_t kind, const char* what, const std::string& address);

  uv_loop_t* loop_;
  std::shared_ptr<const tls::Context> tls_;  // --status-ssl; null: plain HTTP
  const StatusServerOptions options_;
  const Clock& clock_;
  const broker::Broker& broker_;
  std::function<ServerInfo()> info_;
  JenkinsProvider jenkins_;
  ConnectionSet<Conn> conns_;  // the listeners and every connection until its close callback
  // Live (not closing) connections per peer address; entries erased at zero.
  std::unordered_map<std::string, size_t> per_address_;
  size_t pending_output_ = 0;  // sum of every connection's unsent response bytes
  Counters counters_;
  struct LogState {
    uint64_t last_ms = 0;
    uint64_t suppressed = 0;
  };
  LogState log_state_[6];
  uv_timer_t sweep_{};  // enforces the deadlines above
  uv_idle_t resume_idle_{};
  std::vector<Conn*> resume_;
  bool sweep_open_ = false;  // sweep_ and resume_idle_ initialised and not yet closed
  bool closed_ = false;
};

}  // namespace roundhouse::server::http
