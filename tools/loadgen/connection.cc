#include "tools/loadgen/connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

namespace roundhouse::loadgen {
namespace {

// Read no less than this at a time, so a busy connection empties its socket in few calls.
constexpr size_t kMinReadSpace = 16 * 1024;

// SSL_get_error needs an empty error queue; ERR_clear_error walks every slot of it, so it runs
// only when something is queued (a per-record cost otherwise, on the cores the server shares).
void ClearStaleErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

}  // namespace

Connection::Connection(size_t input_capacity)
    : in_(new char[input_capacity]), in_capacity_(input_capacity) {}

Connection::~Connection() {
  SSL_free(ssl_);
  if (fd_ >= 0) ::close(fd_);
}

IoResult Connection::StartTls(SSL_CTX* context, int timeout_ms, std::string* error) {
  ssl_ = SSL_new(context);
  if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1) {
    *error = "SSL_new failed";
    errno = EPROTO;
    return IoResult::kError;
  }
  SSL_set_connect_state(ssl_);
  const int64_t deadline_ms = timeout_ms;
  int64_t waited_ms = 0;
  for (;;) {
    ERR_clear_error();
    const int rc = SSL_do_handshake(ssl_);
    if (rc == 1) return IoResult::kOk;
    const int err = SSL_get_error(ssl_, rc);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      const unsigned long code = ERR_peek_last_error();  // NOLINT(google-runtime-int)
      const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
      *error = std::string("TLS handshake: ") + (reason != nullptr ? reason : "connection closed");
      errno = EPROTO;
      return IoResult::kError;
    }
    if (waited_ms >= deadline_ms) {
      *error = "TLS handshake: no answer in time";
      errno = ETIMEDOUT;
      return IoResult::kError;
    }
    pollfd p{fd_, static_cast<short>(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    (void)::poll(&p, 1, 100);
    waited_ms += 100;
  }
}

// Decrypts as much as is buffered and fits (the loop sees one readiness event per socket
// read, and OpenSSL may already hold the next record).
IoResult Connection::ReadTls() {
  size_t got = 0;
  for (;;) {
    if (in_capacity_ == in_end_) MakeReadSpace();  // OpenSSL may hold more than fitted
    const size_t space = in_capacity_ - in_end_;
    ClearStaleErrors();
    const int n =
        SSL_read(ssl_, in_.get() + in_end_, static_cast<int>(std::min<size_t>(space, INT_MAX)));
    if (n > 0) {
      in_end_ += static_cast<size_t>(n);
      got += static_cast<size_t>(n);
      // Nothing more buffered: stop here rather than ask the socket again for an EAGAIN (the
      // poll is level-triggered, so bytes that arrive meanwhile bring the next readiness).
      if (SSL_has_pending(ssl_) == 0) return IoResult::kOk;
      continue;
    }
    const int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      return got > 0 ? IoResult::kOk : IoResult::kWouldBlock;
    }
    if (got > 0) return IoResult::kOk;
    if (err == SSL_ERROR_ZERO_RETURN) return IoResult::kClosed;
    if (err == SSL_ERROR_SYSCALL && errno == 0) return IoResult::kClosed;
    if (err == SSL_ERROR_SSL) errno = EPROTO;
    return IoResult::kError;
  }
}

IoResult Connection::FlushTls() {
  while (out_sent_ < out_.size()) {
    ClearStaleErrors();
    const int n = SSL_write(ssl_, out_.data() + out_sent_,
                            static_cast<int>(std::min<size_t>(out_.size() - out_sent_, INT_MAX)));
    if (n > 0) {
      out_sent_ += static_cast<size_t>(n);
      continue;
    }
    const int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
      if (out_sent_ > out_.size() / 2) {
        out_.erase(0, out_sent_);
        out_sent_ = 0;
      }
      return IoResult::kWouldBlock;
    }
    if (err == SSL_ERROR_SSL) errno = EPROTO;
    return IoResult::kError;
  }
  out_.clear();
  out_sent_ = 0;
  return IoResult::kOk;
}

IoResult Connection::StartConnect(const sockaddr_storage& address, socklen_t address_size) {
  fd_ = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return IoResult::kError;
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), address_size) == 0 ||
      errno == EINPROGRESS) {
    return IoResult::kOk;
  }
  return IoResult::kError;
}

IoResult Connection::FinishConnect() {
  int error = 0;
  socklen_t size = sizeof error;
  if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &size) != 0) return IoResult::kError;
  if (error != 0) {
    errno = error;
    return IoResult::kError;
  }
  return IoResult::kOk;
}

void Connection::MakeReadSpace() {
  if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
  if (in_capacity_ - in_end_ < kMinReadSpace) {
    const size_t live = in_end_ - in_begin_;
    if (in_begin_ > 0 && in_capacity_ - live >= kMinReadSpace && live <= in_capacity_ / 2) {
      std::memmove(in_.get(), in_.get() + in_begin_, live);
    } else {
      const size_t capacity =
          in_capacity_ * 2 > live + kMinReadSpace ? in_capacity_ * 2 : live + kMinReadSpace;
      std::unique_ptr<char[]> bigger(new char[capacity]);
      std::memcpy(bigger.get(), in_.get() + in_begin_, live);
      in_ = std::move(bigger);
      in_capacity_ = capacity;
    }
    in_begin_ = 0;
    in_end_ = live;
  }
}

IoResult Connection::Read() {
  MakeReadSpace();
  if (ssl_ != nullptr) return ReadTls();
  const ssize_t n = ::read(fd_, in_.get() + in_end_, in_capacity_ - in_end_);
  if (n > 0) {
    in_end_ += static_cast<size_t>(n);
    return IoResult::kOk;
  }
  if (n == 0) return IoResult::kClosed;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return IoResult::kWouldBlock;
  return IoResult::kError;
}

IoResult Connection::Flush() {
  if (ssl_ != nullptr) return FlushTls();
  while (out_sent_ < out_.size()) {
    const ssize_t n = ::send(fd_, out_.data() + out_sent_, out_.size() - out_sent_, MSG_NOSIGNAL);
    if (n > 0) {
      out_sent_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // Keep the unsent tail at the front so appends do not grow the buffer without bound.
      if (out_sent_ > out_.size() / 2) {
        out_.erase(0, out_sent_);
        out_sent_ = 0;
      }
      return IoResult::kWouldBlock;
    }
    return IoResult::kError;
  }
  out_.clear();  // keeps capacity: no allocation per turn once warmed up
  out_sent_ = 0;
  return IoResult::kOk;
}

}  // namespace roundhouse::loadgen
