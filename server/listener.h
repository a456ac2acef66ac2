// Listening sockets (doc/protocol.md §5.1 -L/-p/-b, §5.3 socket options).
//
// BindListeners resolves every -L address with getaddrinfo(AI_PASSIVE) (no -L: every local
// address, IPv4 and IPv6) and binds each result with SO_REUSEADDR, IPV6_V6ONLY on IPv6 and
// TCP_NODELAY (plus SO_KEEPALIVE with --keepalive). On EADDRINUSE it retries for about 20 s as
// gearmand does, logging the conflict at once. Port 0 binds an ephemeral port; the other
// addresses then use the same port, so the server has one port number to report.
//
// Accepting is ours, not libuv's (uv_listen drops connections silently when the process is out of
// file descriptors): a uv_poll_t watches the listening socket, and each readiness accepts up to
// kMaxAcceptsPerWake connections. The callback runs once per accepted connection, which it takes
// with AcceptInto() (not taken: closed). On EMFILE / ENFILE the listener closes its spare
// descriptor, accepts the waiting connection and closes it at once (so the peer hears at once
// rather than hanging, and the level-triggered poll does not spin), and reopens the spare.
// Every failure (accept, or adopting the socket) goes to the server's AcceptErrors, the one
// place that counts and logs them for every listening port (Gearman, --http-port,
// --status-port), one report per dropped connection.
//
// Ownership: each Listener owns its socket and poll handle; Close() starts uv_close and the
// memory must stay until the close callback ran (the owner keeps it until the loop has
// finished); the socket is closed in that callback.
//
// Thread-safety: loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace roundhouse::net {
class Stream;
}  // namespace roundhouse::net

namespace roundhouse::server {

class Listener;

// Accept failures of all of a server's listeners: one count (roundhouse_accept_errors_total in
// /metrics) and at most one log line a second, naming the listener, with the number left out
// since. A process out of descriptors must neither go unnoticed nor flood the log, whichever
// port the connections come to.
class AcceptErrors {
 public:
  // Counts `status` (a libuv error) on `listener` and logs it unless a line went out less than
  // a second before `now_ms` (loop time).
  void Report(const Listener& listener, int status, uint64_t now_ms);
  uint64_t count() const { return count_; }

 private:
  uint64_t count_ = 0;
  uint64_t last_log_ms_ = 0;
  uint64_t suppressed_ = 0;  // failures not logged since last_log_ms_
  bool logged_ = false;      // last_log_ms_ is set
};

class Listener {
 public:
  // `on_connection` runs for every accepted connection; it takes it with AcceptInto().
  using AcceptCallback = std::function<void(Listener&)>;

  // `errors` (may be null: the listener's own, counted nowhere else) must outlive the listener.
  Listener(uv_loop_t* loop, AcceptCallback on_connection, AcceptErrors* errors);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Gives the connection accepted for the running callback to `stream` (net::Stream::Open).
  // False when there is none or it cannot be adopted: the socket is then closed and the failure
  // reported as an accept error; the caller closes its stream, never opened.
  bool AcceptInto(net::Stream& stream);
  // "127.0.0.1:4730" / "[::1]:4730", for logs.
  const std::string& name() const { return name_; }
  uint16_t port() const { return port_; }

  // Opens a socket for `sa` (options as described above), binds it (retrying EADDRINUSE for
  // about `retry_seconds`) and listens. On failure `*error_number` is the errno, if any.
  Status Listen(const struct sockaddr* sa, int backlog, bool keepalive, int retry_seconds,
                int* error_number);

  // Stops accepting. Idempotent.
  void Close();
  bool closed() const { return closed_; }

 private:
  static constexpr int kMaxAcceptsPerWake = 64;

  static void OnReadable(uv_poll_t* poll, int status, int events);
  static void OnClose(uv_handle_t* handle);
  // Out of descriptors: drop the waiting connection through the spare descriptor (see above).
  void Shed();
  void ReportError(int status);

  uv_loop_t* loop_;
  uv_poll_t poll_{};
  int fd_ = -1;          // the listening socket; closed in OnClose
  int pending_fd_ = -1;  // accepted, for the running callback's AcceptInto()
  int spare_fd_ = -1;    // /dev/null, held to be given up on EMFILE
  AcceptCallback on_connection_;
  AcceptErrors own_errors_;  // used when the owner gave none
  AcceptErrors* errors_;     // where failures are counted and logged
  std::string name_;
  uint16_t port_ = 0;
  bool initialized_ = false;
  bool closed_ = false;
  bool close_done_ = true;
};

struct ListenOptions {
  std::vector<std::string> addresses;  // -L; empty = all addresses
  uint16_t port = 4730;                // 0 = ephemeral
  int backlog = 32;
  bool keepalive = false;       // SO_KEEPALIVE on the listening sockets
  int bind_retry_seconds = 20;  // total EADDRINUSE retry window
  // The server's AcceptErrors (outlives the listeners); null: each listener counts its own.
  AcceptErrors* accept_errors = nullptr;
};

// Binds and listens on every resolved address; appends one Listener per socket to `out`.
// Fails if an address cannot be resolved or bound, or nothing was bound. Blocking (sleeps
// between bind retries); call before the loop runs.
Status BindListeners(uv_loop_t* loop, const ListenOptions& options,
                     const Listener::AcceptCallback& on_connection,
                     std::vector<std::unique_ptr<Listener>>* out);

}  // namespace roundhouse::server
