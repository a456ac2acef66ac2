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
// parser's 413 / 431 and the connection is closed.
//
// Limits (the Gearman port's discipline): every request is bounded by HttpLimits; one response
// is pending per connection at most (reading stops while it is written, so a pipelining client
// cannot queue unbounded output); an idle connection is closed after `idle_timeout_ms`; past
// `max_connections` a new connection is answered 503 and closed.
//
// Lifetime: like the Gearman connections, a connection is freed in its close callback, never in
// the callback that noticed it failed. The owner calls Close() and then runs the loop until the
// close callbacks ran before destroying the StatusServer.
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

#include "protocol/http.h"
#include "protocol/status.h"
#include "server/base/clock.h"
#include "server/broker/broker.h"
#include "server/http/status_data.h"
#include "server/listener.h"

namespace roundhouse::server::http {

inline constexpr size_t kMaxJobsLimit = 10000;
inline constexpr size_t kDefaultJobsLimit = 100;

struct StatusServerOptions {
  std::string address = "127.0.0.1";  // --http-listen
  uint16_t port = 0;                   // --http-port (0 here binds an ephemeral port)
  int backlog = 32;
  size_t max_connections = 64;
  uint64_t idle_timeout_ms = 30'000;
  protocol::http::HttpLimits limits{/*max_head_bytes=*/8 * 1024, /*max_headers=*/64,
                                    /*max_body_bytes=*/1024};
};

// The reply to one request, before framing. Pure routing result (tests may call Route()).
struct Reply {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<protocol::http::Header> headers;  // extra ones (Allow, Cache-Control)
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

  // Replaces the Jenkins provider (the hub may be created after the status server).
  void set_jenkins(JenkinsProvider jenkins) { jenkins_ = std::move(jenkins); }

  uint16_t port() const;
  size_t connection_count() const { return conns_.size(); }

  // The reply for `request` (method, target) from a fresh snapshot.
  Reply Route(const protocol::http::Request& request);

 private:
  class Conn;
  friend class Conn;

  static void OnSweep(uv_timer_t* timer);
  void OnAccept(Listener& listener, int status);
  void Closed(Conn& conn);

  uv_loop_t* loop_;
  const StatusServerOptions options_;
  const Clock& clock_;
  const broker::Broker& broker_;
  std::function<ServerInfo()> info_;
  JenkinsProvider jenkins_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unordered_map<Conn*, std::unique_ptr<Conn>> conns_;
  uv_timer_t sweep_{};  // closes idle connections
  bool sweep_open_ = false;
  bool closed_ = false;
};

}  // namespace roundhouse::server::http
