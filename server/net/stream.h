// One TCP connection's byte stream on the loop: the one place that owns a uv_tcp_t after
// accept. Used by the Gearman connections (server/connection.h) and the HTTP status port's
// connections (server/http/status_server.cc); each of them adds only its protocol.
//
// Input: reads land in input() (an InputBuffer: pooled standard blocks, grown only with bytes
// that arrived, never with a length a peer declared). After every read the handler's
// OnStreamRead() parses and Consume()s what it can; when the socket has nothing more for now
// the stream gives back the block (an empty buffer holds nothing, a small remainder is moved to
// a right-sized allocation), so an idle or trickling peer holds a few KiB at most.
//
// Output: Write() queues bytes behind everything queued before. At most one uv_write is in
// flight; uv_try_write is tried first, so a reply usually leaves without being copied. What
// cannot be written now waits in one queue (queued_bytes() counts it, the write in flight
// included). Back-pressure is the owner's: it reads queued_bytes() and stops reading its peer.
// The hard cap (set_max_queued) is the stream's: a Write() that would pass it queues nothing
// and returns false; the owner then treats the peer as gone (it never read what it asked for).
// When a write completes and nothing else is queued, the handler's OnStreamDrained() runs.
//
// Lifetime: the owner embeds the stream (or owns it) and must keep it until OnStreamClosed().
// Close() stops reading, drops what is queued and hands the handle to uv_close; the stream never
// calls the handler again except OnStreamClosed(), from the close callback, where the owner may
// free both. Errors (read or write) are reported once through OnStreamError(); the stream is not
// closed by itself, the owner decides (usually Close()). No callback runs from inside a call the
// owner made (Write, StartReading, Close): only from libuv callbacks, so the owner's state is
// never re-entered.
//
// The TLS seam (OfferTls below; server/tls/tls_session.h). Between the socket and the consumer
// the stream moves bytes at exactly two points, and the TLS layer (OpenSSL with memory BIOs)
// sits at both without the consumer knowing:
//   - inbound, OnWire(): the bytes a read returned. Plain, and the first read of a stream offered
//     TLS: they were read straight into input() and are committed there; that first read's
//     first byte decides plain or TLS (a TLS one moves them into the session). TLS: reads go to
//     a per-thread scratch block, OnTlsWire() puts them into the session (ciphertext in) and
//     appends the plaintext it yields to input(); handshake messages it produces go out at once.
//   - outbound, Write(): plain bytes are queued / written as they are (QueueWire); TLS: the
//     session encrypts them (plaintext in) and its records (ciphertext out) are queued.
// queued_bytes() and the cap count wire bytes; input() holds consumer bytes. Everything else
// (one write in flight, back-pressure, close-then-free, the block pool) is shared as it is.
//
// Thread-safety: loop thread only.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "server/net/input_buffer.h"

namespace roundhouse::server::tls {
class Context;
class Session;
}  // namespace roundhouse::server::tls

namespace roundhouse::net {

class Stream;

// What the owner of a stream hears from it. Every call comes from a libuv callback.
class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // New bytes are in stream.input(); Consume() what was handled.
  virtual void OnStreamRead(Stream& stream) = 0;
  // The peer closed its sending side. Reading has stopped; writing may continue.
  virtual void OnStreamEof(Stream& stream) = 0;
  // A read or write failed (`status` is a libuv error). The stream stays open until Close().
  virtual void OnStreamError(Stream& stream, int status) = 0;
  // A write completed and nothing is queued any more (not called for writes that completed
  // inside Write()).
  virtual void OnStreamDrained(Stream& stream) = 0;
  // A TLS handshake completed (OfferTls): encrypted() and peer_identity() are final. Comes
  // before the first OnStreamRead of the stream's plaintext.
  virtual void OnStreamTlsEstablished(Stream& stream) { (void)stream; }
  // A stream that requires TLS (OfferTls) got plain text first (`first`: that first read): what
  // to send the peer, in plain text, before it is refused (a protocol error that says TLS is
  // required), or nothing. The stream then reports OnStreamError(UV_EPROTO).
  virtual std::string PlainTextRefusal(std::string_view first) {
    (void)first;
    return {};
  }
  // The close callback: the stream is done with its memory; the owner may free it now.
  virtual void OnStreamClosed(Stream& stream) = 0;
};

class Stream {
 public:
  // Initialises the TCP handle on `loop`. `handler` must outlive the stream.
  Stream(uv_loop_t* loop, StreamHandler& handler);
  // Must not run before OnStreamClosed() (or before Close() for a handle never opened).
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Adopts a connected socket (an accepted one, server/listener.h). A libuv error, or 0; on an
  // error the socket is not adopted and the caller closes it.
  int Open(int fd);

  uv_tcp_t* tcp() { return &tcp_; }
  // The socket's fd, -1 if none.
  int fd() const;
  // The peer's address ("127.0.0.1", "::1"), empty if unknown; `loopback` set when given.
  std::string PeerAddress(bool* loopback) const;

  // ---- input
  // Starts / stops delivering OnStreamRead. Both idempotent; no-ops once closing. StartReading
  // returns a libuv error (the owner closes) or 0.
  int StartReading();
  void StopReading();
  bool reading() const { return reading_; }
  InputBuffer& input() { return input_; }

  // ---- output
  // Queues `bytes` (taking its contents; *bytes is left empty, possibly with another buffer's
  // capacity for reuse) and writes what the socket takes now. False, queuing nothing, when the
  // queue would pass the hard cap or the stream is closing; a write error is reported later
  // through OnStreamError.
  bool Write(std::string* bytes);
  // Bytes given to Write() and not yet taken by the kernel (the write in flight included).
  size_t queued_bytes() const { return writing_.size() - writing_offset_ + queued_.size(); }
  bool write_in_flight() const { return write_in_flight_; }
  // 0 (the default) = no hard cap.
  void set_max_queued(size_t max) { max_queued_ = max; }
  // Counts queued bytes of all streams sharing `total` (the global memory budget); may be null.
  void set_queued_total(size_t* total);

  // ---- TLS (doc/protocol.md §5.5; server/tls)
  // Call before StartReading. The first byte from the peer decides: a TLS handshake record
  // (0x16) makes this a TLS stream (a session from `context`, the server's current one; null
  // while no certificate is loaded: the handshake is refused), anything else a plain one, or,
  // with `require_tls`, a refused one. A refused first byte or a failed handshake is logged at
  // INFO and reported as OnStreamError(UV_EPROTO) after OpenSSL's alert was offered to the
  // socket; a close_notify from the peer is reported as OnStreamEof.
  void OfferTls(std::shared_ptr<const server::tls::Context> context, bool require_tls);
  // True once the stream speaks TLS (the peer's first byte was a handshake record).
  bool encrypted() const { return wire_ == Wire::kTls; }
  // The verified client certificate's subject CN (empty: plain, no certificate, or the handshake
  // has not completed).
  const std::string& peer_identity() const;

  // Half-close after everything queued is written (uv_shutdown); a TLS stream sends its
  // close_notify first. Reading continues.
  void Shutdown();
  // Immediate close: stop reading, drop the queue, uv_close. Idempotent. A TLS stream with
  // nothing queued first offers the socket its close_notify (a graceful close: the peer sees
  // the end of the stream, not a truncation).
  void Close();
  bool closing() const { return closing_; }

 private:
  static void OnAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void OnReadCb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void OnWriteCb(uv_write_t* req, int status);
  static void OnCloseCb(uv_handle_t* handle);

  // The inbound seam: `n` bytes were read into the space OnAlloc gave.
  void OnWire(size_t n);
  // TLS inbound: `ciphertext` goes into the session, the plaintext it yields into input_.
  void OnTlsWire(std::string_view ciphertext);
  // Refuses the stream (logged with `why`): OpenSSL's alert, if any, else `plain_reply`, is
  // offered to the socket, then the owner hears OnStreamError(UV_EPROTO).
  void RefuseTls(const char* why, std::string plain_reply = {});
  // TLS: the session's close_notify alert (once; empty for a plain stream, a failed session, or
  // one that sent it already).
  std::string TakeCloseNotify();
  // The outbound seam: wire bytes to send after everything queued (see the header comment).
  bool QueueWire(std::string* bytes);
  // Starts one uv_write of writing_[writing_offset_..], after trying to write it at once.
  void WriteNext();
  // Brings this stream's share of *queued_total_ up to date.
  void Account();

  // How the bytes on the wire relate to the consumer's: one life cycle per stream.
  //   kPlain (no TLS offered, or a plain first byte) and kTls (a handshake record first) are
  //   final; kDetecting (TLS offered) becomes one of them, or kRefused, at the first byte.
  enum class Wire { kPlain, kDetecting, kTls, kRefused };

  uv_tcp_t tcp_{};
  uv_write_t write_req_{};
  uv_shutdown_t shutdown_req_{};
  StreamHandler& handler_;
  InputBuffer input_;
  size_t offered_ = 0;  // bytes of read space the last OnAlloc offered
  // Output: writing_[writing_offset_..] is what the uv_write in flight was given (stays put until
  // it completes); queued_ is what came after it.
  std::string writing_;
  size_t writing_offset_ = 0;
  std::string queued_;
  size_t max_queued_ = 0;
  size_t* queued_total_ = nullptr;
  size_t accounted_ = 0;  // this stream's share of *queued_total_

  Wire wire_ = Wire::kPlain;
  bool require_tls_ = false;  // OfferTls(.., true): a plain first byte is refused
  std::shared_ptr<const server::tls::Context> tls_context_;  // kDetecting: for the session
  std::unique_ptr<server::tls::Session> tls_;                // kTls only

  bool reading_ = false;          // uv_read_start active
  bool write_in_flight_ = false;  // write_req_ is with libuv
  bool shutdown_ = false;         // uv_shutdown requested
  bool closing_ = false;          // uv_close called; OnStreamClosed comes next
};

}  // namespace roundhouse::net
