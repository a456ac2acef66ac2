// One accepted TCP connection: a broker::Peer that speaks Gearman (binary packets and admin text
// lines on the same socket, doc/protocol.md §1.3), on a net::Stream (server/net/stream.h: the
// socket, the pooled input buffer, one write in flight, close-then-free).
//
// Input: the stream's input buffer grows only with bytes that arrived; every complete frame of a
// read is handled (by the command families in commands.h) before anything is written. Output:
// one OutputQueue per connection (reply order, placeholders for replies the store owes); the
// host flushes dirty connections once per loop turn (before the loop polls), so all replies
// produced by one read go out in one write, handed to the stream. Past Limits::
// max_pending_output queued bytes (the OutputQueue's and the stream's together) the connection
// stops reading (and stops handling buffered frames) until its output drains. A large admin
// reply is streamed (server/reply_producer.h): its producer is asked for a slice whenever the
// output has drained, at most about once per loop turn; meanwhile no input is handled (replies
// stay in request order) and unsolicited output (NOOP, WORK_* for this peer) waits behind it.
//
// Lifetime: the host owns connections. A connection that fails is marked closing, detached from
// the broker, and its stream closed; the host frees it in the close callback (ConnectionHost::
// Closed), never inside the callback that noticed the failure. A protocol error or EOF makes it
// *drain* instead: stop reading, wait for replies still owed by the store, write everything,
// then close.
//
// Thread-safety: loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/codec.h"
#include "protocol/limits.h"
#include "server/broker/broker.h"
#include "server/broker/peer.h"
#include "server/memory_budget.h"
#include "server/net/stream.h"
#include "server/output_queue.h"
#include "server/reply_producer.h"

namespace roundhouse::jenkins {
class Hub;
}  // namespace roundhouse::jenkins

namespace roundhouse::server {

class AccessControl;
class Connection;

// What a connection needs from the server that owns it, the memory budget (server/memory_budget.h)
// included. Implemented by Server; tests may fake it.
class ConnectionHost : public MemoryBudget {
 public:
  virtual ~ConnectionHost() = default;
  virtual broker::Broker& broker() = 0;
  virtual const protocol::Limits& limits() const = 0;
  // `conn` has output to write; the host calls conn.Flush() before the loop next blocks.
  virtual void MarkDirty(Connection& conn) = 0;
  // Close callback of `conn`'s handle: the host must free it now.
  virtual void Closed(Connection& conn) = 0;
  // `conn` streams a reply (Connection::StartReply) and wrote its last slice at once: the host
  // calls conn.Flush() again in the next loop turn (not in this one: one slice per turn), and
  // keeps the loop from blocking until then.
  virtual void ResumeNextTurn(Connection& conn) = 0;
  // Admin `shutdown` / `shutdown graceful`: acted on after pending output is flushed.
  virtual void RequestShutdown(bool graceful) = 0;
  // The Jenkins masters (admin `jenkins ...`); null when the host has none (tests).
  virtual jenkins::Hub* jenkins_hub() { return nullptr; }
  // Access control (server/access.h); null when the host has none (tests).
  virtual AccessControl* access() { return nullptr; }
};

class Connection final : public broker::Peer, private net::StreamHandler {
 public:
  // The caller Open()s the accepted socket in stream() and calls Start(). `host` must outlive the
  // connection.
  Connection(ConnectionHost& host, uv_loop_t* loop);
  ~Connection() override;

  net::Stream& stream() { return stream_; }

  // Reads the peer address, applies socket options, attaches to the broker, starts reading.
  // False if the socket is unusable (the caller then calls Close()).
  // Keepalive tuning values of -1 leave the system default.
  bool Start(int keepalive_idle, int keepalive_interval, int keepalive_count);

  // Hands what can be written now to the stream. Called by the host for dirty connections.
  void Flush();

  // Immediate close: detach from the broker and close the stream. Idempotent.
  void Close();

  // Best-effort final write of the ready bytes without waiting (server shutdown), then Close().
  void CloseAfterTryWrite();

  bool closing() const { return closing_; }

  // Since when (uv_now ms) the input has held an incomplete packet or admin line the peer owes
  // the rest of; 0 = none (nothing buffered, only whole frames waiting for output to drain, or
  // the connection is draining). The host closes a connection whose partial frame is too old.
  uint64_t partial_since_ms() const { return partial_since_ms_; }

  // Host bookkeeping: true while the connection is on the host's list of connections to flush,
  // so it is listed once. Only the host changes it (MarkDirty, and before calling Flush()).
  bool dirty() const { return dirty_; }
  void set_dirty(bool dirty) { dirty_ = dirty; }

  // ---- for the command handlers (commands.h)
  ConnectionHost& host() { return host_; }
  broker::Broker& broker() { return host_.broker(); }
  const protocol::Limits& limits() const { return host_.limits(); }
  // Where the next reply goes; append whole replies. Marks the connection dirty.
  std::string* Out();
  // A submit reply that the store will finish: holds back later replies.
  void AddPlaceholder(uint64_t ticket);
  // Sends the reply `producer` makes, a slice at a time (see the header comment). A reply that
  // fits in one slice leaves in one piece, as if appended to Out(). Call from a command handler,
  // as the last thing it does.
  void StartReply(std::unique_ptr<ReplyProducer> producer);
  // Scratch token vector for admin lines (reused to avoid an allocation per line).
  std::vector<std::string_view>& tokens() { return tokens_; }

  // ---- broker::Peer
  void SendNoop() override;
  void SendWork(protocol::PacketType type, std::string_view payload) override;
  void SubmitDone(uint64_t ticket, const broker::SubmitReply& reply) override;
  int Fd() const override { return fd_; }
  std::string_view Address() const override { return address_; }
  bool IsLoopback() const override { return loopback_; }

  // Who the peer is for access control (server/acl.h, doc/acl.md): "loopback-plain" or "plain"
  // from Start() on; a TLS connection replaces it, once its handshake is done and before any of
  // its requests is handled, with acl::IdentityOf(loopback, true, verified CN).
  const std::string& identity() const { return identity_; }
  void set_identity(std::string identity) { identity_ = std::move(identity); }

  // TLS (doc/protocol.md §5.5): whether the peer speaks TLS, and the subject CN of its verified
  // client certificate (empty: plain text, or no certificate). Settled before any request of
  // the connection is handled.
  bool encrypted() const { return stream_.encrypted(); }
  const std::string& peer_identity() const { return stream_.peer_identity(); }

 private:
  // ---- net::StreamHandler
  void OnStreamRead(net::Stream& stream) override;
  void OnStreamTlsEstablished(net::Stream& stream) override;
  std::string PlainTextRefusal(std::string_view first) override;
  void OnStreamEof(net::Stream& stream) override;
  void OnStreamError(net::Stream& stream, int status) override;
  void OnStreamDrained(net::Stream& stream) override;
  void OnStreamClosed(net::Stream& stream) override;

  // Handles buffered frames until none is complete, the output cap is hit, or the connection
  // stops taking input.
  void ProcessInput();
  // The input stopped at an incomplete frame (or an oversized body still being dropped):
  // starts partial_since_ms_ if it is not running; clears it when nothing is buffered.
  void NotePartial();
  // Handles one parsed frame; false when the connection must drain and close.
  bool Dispatch(const protocol::Frame& frame);
  // Nothing in flight and nothing writable queued: resume paused input, continue a drain.
  void OnOutputDrained();
  // Stop reading; finish owed replies; close once written.
  void StartDraining();
  // While draining: detach once no store reply is owed, close once everything is written.
  void MaybeFinishDraining();
  void PauseReading();
  void ResumeReading();
  bool OverOutputCap() const;
  // Bytes owed to the peer: queued here (placeholders included), held behind a streamed reply,
  // and in the stream.
  size_t PendingOutput() const {
    return out_.pending_bytes() + held_back_.size() + stream_.queued_bytes();
  }
  // While a reply streams: appends its next slice when the output before it has drained.
  // At the end: releases the output held behind it and resumes handling input.
  void ContinueReply();

  ConnectionHost& host_;
  net::Stream stream_;
  OutputQueue out_;
  // The reply being streamed (StartReply); null when none. While set, input is not handled and
  // Out() hands out held_back_, appended to out_ once the reply is complete.
  std::unique_ptr<ReplyProducer> producer_;
  std::string held_back_;
  // Body bytes of an oversized packet still to drop as they arrive (doc/protocol.md §1.1).
  uint64_t discard_ = 0;
  uint64_t partial_since_ms_ = 0;  // see partial_since_ms()
  // Output passed Limits::max_output_queue: nothing more is queued, and the next Flush() closes
  // the connection (never closed from inside a broker call that is delivering to it).
  bool overflowed_ = false;

  int fd_ = -1;
  std::string address_;
  bool loopback_ = false;
  std::string identity_;

  std::vector<std::string_view> tokens_;

  bool attached_ = false;  // Attach()ed to the broker and not yet Detach()ed
  bool paused_ = false;    // output over the cap: not reading, not handling buffered frames
  bool draining_ = false;  // no more input; close once owed replies are written
  bool closing_ = false;   // stream closed; freed in OnStreamClosed
  bool dirty_ = false;     // on the host's dirty list (set and cleared by the host only)
};

}  // namespace roundhouse::server
