// One non-blocking TCP connection to the server with an input buffer the protocol parser reads
// in place and an output buffer that collects requests until the loop flushes them (one send(2)
// per connection per loop turn, so pipelined requests leave in one segment). Owns its socket,
// and with TLS its OpenSSL session (the same reads and writes, through SSL_read / SSL_write on
// the socket).
// Not thread-safe: it belongs to the loop thread that created it.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace roundhouse::loadgen {

enum class IoResult {
  kOk,          // made progress
  kWouldBlock,  // nothing to do until the socket is ready again
  kClosed,      // the peer closed the connection (read returned 0)
  kError,       // errno-level failure; see errno
};

class Connection {
 public:
  // `input_capacity` is the initial input buffer size; it grows when a packet is larger.
  explicit Connection(size_t input_capacity);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Creates the socket and starts a non-blocking connect. kOk: connected or in progress (wait
  // for writability, then call FinishConnect). kError: errno says why.
  IoResult StartConnect(const sockaddr_storage& address, socklen_t address_size);
  // After writability: kOk when the connect succeeded, kError (errno set) when it failed.
  IoResult FinishConnect();

  // After FinishConnect: the TLS handshake with `context` (borrowed), blocking up to
  // `timeout_ms` (connections are set up before measuring). kError with errno = EPROTO on a
  // failed handshake (*error says why), ETIMEDOUT when it did not finish in time.
  IoResult StartTls(SSL_CTX* context, int timeout_ms, std::string* error);

  int fd() const { return fd_; }

  // One read(2) into the free space of the input buffer (compacting or growing it first).
  IoResult Read();
  // Bytes received and not yet consumed; valid until the next Read or Consume.
  std::string_view input() const { return {in_.get() + in_begin_, in_end_ - in_begin_}; }
  void Consume(size_t n) { in_begin_ += n; }

  // Requests are appended here; Flush sends them.
  std::string* output() { return &out_; }
  bool has_output() const { return out_.size() > out_sent_; }
  // Sends as much pending output as the socket takes.
  IoResult Flush();

 private:
  IoResult ReadTls();
  // At least kMinReadSpace free after in_end_ (moves or grows the buffer; keeps the bytes).
  void MakeReadSpace();
  IoResult FlushTls();

  int fd_ = -1;
  SSL* ssl_ = nullptr;  // owned; null without TLS
  std::unique_ptr<char[]> in_;
  size_t in_capacity_;
  size_t in_begin_ = 0;  // first unconsumed byte
  size_t in_end_ = 0;    // one past the last received byte
  std::string out_;
  size_t out_sent_ = 0;  // prefix of out_ already written to the socket
};

}  // namespace roundhouse::loadgen
