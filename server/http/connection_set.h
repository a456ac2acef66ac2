// The listeners and the live connections of one HTTP port: the bookkeeping the gearmand HTTP
// protocol port (gearman_http.h) and the status port (status_server.h) share, so each of them
// keeps only its protocol (request parsing, routing, producing the reply).
//
// A ConnectionSet binds the port's listeners, takes each accepted socket into a new connection
// (Listener::AcceptInto; a failure there is reported by the listener to the server's
// AcceptErrors), keeps every connection until its stream's close callback, and closes them all on
// shutdown. It owns no timers and knows no protocol: deadlines, admission caps and reply
// scheduling stay with the server.
//
// What a Conn must have: `net::Stream& stream()` (the connection's stream, server/net/stream.h)
// and `void Close()` (idempotent; closes the stream, so its close callback follows).
//
// Ownership and lifetime (close-then-free, as the Gearman connections with Server::Closed,
// server/connection.h): the set owns every connection from Accept() until Free(). A connection
// is freed only by Free(), which its owner calls from the connection's OnStreamClosed (libuv's
// close callback, when the stream is done with its memory), never from the callback that noticed
// a failure. So a Conn* taken from the set, or from any list the server keeps of them, stays
// valid until that close callback, whatever Close() calls happen before; a server that keeps
// such lists removes the connection from them before calling Free(). Close() never frees:
// ForEach() callbacks and loops over collected pointers may close connections.
//
// Listeners: owned here; closing one starts uv_close, so the set (inside its server) must live
// until the loop has run the close callbacks, as the servers' headers require of their owners.
//
// Why here and not in server/net/: net (doc/design.md, "Folders and layers") sits below the
// server and cannot see Listener (server/listener.h). Why not in server/server.cc as well: the
// Gearman port's connections are flushed once per loop turn and drain before closing
// (Connection::CloseAfterTryWrite), so Server keeps its own map beside its dirty and resume lists.
//
// Thread-safety: loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "server/listener.h"

namespace roundhouse::server::http {

template <typename Conn>
class ConnectionSet {
 public:
  ConnectionSet() = default;
  ConnectionSet(const ConnectionSet&) = delete;
  ConnectionSet& operator=(const ConnectionSet&) = delete;

  // Binds and listens on every address of `listen` (BindListeners: blocking bind retry; call
  // before the loop runs). `on_accept` runs once per accepted connection and calls Accept().
  // An error names the port's option (`option`, "--http-port").
  Status Listen(uv_loop_t* loop, const ListenOptions& listen, std::string_view option,
                const Listener::AcceptCallback& on_accept) {
    const Status s = BindListeners(loop, listen, on_accept, &listeners_);
    if (!s.ok()) return Status::Error(std::string(option) + ": " + s.message());
    return Status::Ok();
  }

  // Takes `owned` (a new connection, its stream never opened) into the set and gives it the
  // socket `listener` accepted for the running callback. Returns the connection, for the
  // server to start; or null when the socket could not be adopted: the connection is then
  // closed and, like any other, freed through Free() from its close callback.
  Conn* Accept(Listener& listener, std::unique_ptr<Conn> owned) {
    Conn* conn = owned.get();
    conns_.emplace(conn, std::move(owned));
    if (!listener.AcceptInto(conn->stream())) {
      conn->Close();
      return nullptr;
    }
    return conn;
  }

  // Frees `conn`. Only from its OnStreamClosed (see above), after the server removed it from
  // its own lists: `conn`, and the handler running, are gone when this returns.
  void Free(Conn& conn) { conns_.erase(&conn); }

  // Stops accepting; open connections go on. Idempotent.
  void CloseListeners() {
    for (auto& listener : listeners_) listener->Close();
  }

  // Closes every open connection (each is freed later, in its close callback). Idempotent.
  void CloseConnections() {
    // Collected first, so the loop does not rely on Close() leaving the map alone (it does: only
    // the close callback, later, calls Free()).
    std::vector<Conn*> open;
    open.reserve(conns_.size());
    for (auto& [conn, owned] : conns_) open.push_back(conn);
    for (Conn* conn : open) conn->Close();
  }

  // Calls `fn(Conn&)` for every connection not yet freed (closing ones included). `fn` may
  // close connections; it must not Accept() or Free().
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& [conn, owned] : conns_) fn(*conn);
  }

  size_t size() const { return conns_.size(); }

  // The port bound (an ephemeral one included); `configured` before Listen().
  uint16_t port(uint16_t configured) const {
    for (const auto& listener : listeners_) {
      if (listener->port() != 0) return listener->port();
    }
    return configured;
  }

  // The first listener's "address:port", for the start-up log line; "?" before Listen().
  std::string name() const { return listeners_.empty() ? "?" : listeners_.front()->name(); }

 private:
  std::vector<std::unique_ptr<Listener>> listeners_;
  // Keyed by the connection's own pointer, so Free() finds it in O(1); the value owns it.
  std::unordered_map<Conn*, std::unique_ptr<Conn>> conns_;
};

}  // namespace roundhouse::server::http
