#include "server/net/stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cassert>
#include <climits>
#include <utility>

#include "base/log.h"
#include "server/tls/tls_context.h"
#include "server/tls/tls_session.h"

namespace roundhouse::net {
namespace {

// Write buffers larger than this are released once written, so one big reply does not pin its
// memory for the life of the connection.
constexpr size_t kKeepWriteCapacity = size_t{1024} * 1024;

uv_stream_t* AsStream(uv_tcp_t* tcp) { return reinterpret_cast<uv_stream_t*>(tcp); }
uv_handle_t* AsHandle(uv_tcp_t* tcp) { return reinterpret_cast<uv_handle_t*>(tcp); }

void ReleaseIfHuge(std::string* s) {
  if (s->capacity() > kKeepWriteCapacity) std::string().swap(*s);
}

}  // namespace

Stream::Stream(uv_loop_t* loop, StreamHandler& handler) : handler_(handler) {
  uv_tcp_init(loop, &tcp_);
  tcp_.data = this;
  write_req_.data = this;
  shutdown_req_.data = this;
}

Stream::~Stream() {
  if (queued_total_ != nullptr) *queued_total_ -= accounted_;
}

// ---- TLS

void Stream::OfferTls(std::shared_ptr<const server::tls::Context> context, bool require_tls) {
  assert(!reading_ && wire_ == Wire::kPlain);
  tls_context_ = std::move(context);
  require_tls_ = require_tls;
  wire_ = Wire::kDetecting;
}

const std::string& Stream::peer_identity() const {
  static const std::string kNone;
  return tls_ != nullptr ? tls_->peer_identity() : kNone;
}

void Stream::RefuseTls(const char* why, std::string plain_reply) {
  const std::string address = PeerAddress(nullptr);
  RH_LOG(kInfo, "fd %d %s: %s", fd(), address.c_str(), why);
  wire_ = Wire::kRefused;
  if (reading_) {
    uv_read_stop(AsStream(&tcp_));
    reading_ = false;
  }
  input_.Consume(input_.size());
  if (tls_ != nullptr) {
    std::string alert;
    tls_->TakeCiphertext(&alert);
    if (!alert.empty()) (void)QueueWire(&alert);
  } else if (!plain_reply.empty()) {
    (void)QueueWire(&plain_reply);
  }
  handler_.OnStreamError(*this, UV_EPROTO);
}

void Stream::OnTlsWire(std::string_view ciphertext) {
  using State = server::tls::Session::State;
  const State before = tls_->state();
  size_t plain = 0;
  if (tls_->PutCiphertext(ciphertext)) {
    for (;;) {
      size_t space = 0;
      char* base = input_.WritableSpace(&space);
      const ssize_t n = tls_->ReadPlaintext(base, space);
      if (n <= 0) break;
      input_.Commit(static_cast<size_t>(n));
      plain += static_cast<size_t>(n);
    }
  }
  if (tls_->state() == State::kFailed) {
    const std::string why =
        (before == State::kHandshaking ? "TLS handshake failed: " : "TLS stream failed: ") +
        tls_->error();
    RefuseTls(why.c_str());
    return;
  }
  // Handshake messages and session tickets go out now.
  std::string records;
  tls_->TakeCiphertext(&records);
  if (!records.empty()) (void)QueueWire(&records);
  if (before == State::kHandshaking && tls_->state() != State::kHandshaking) {
    const std::string& cn = tls_->peer_identity();
    RH_LOG(kInfo, "fd %d %s: TLS established (%s), %s%s", fd(), PeerAddress(nullptr).c_str(),
           tls_->Description().c_str(),
           cn.empty() ? "no client certificate" : "client certificate CN=", cn.c_str());
    handler_.OnStreamTlsEstablished(*this);
    if (closing_) return;
  }
  if (plain > 0) handler_.OnStreamRead(*this);
  if (closing_ || wire_ != Wire::kTls) return;
  if (tls_->state() == State::kClosed && reading_) {
    // close_notify: the peer sends nothing more, as with a TCP end of input.
    uv_read_stop(AsStream(&tcp_));
    reading_ = false;
    handler_.OnStreamEof(*this);
  }
}

int Stream::Open(int fd) { return uv_tcp_open(&tcp_, fd); }

int Stream::fd() const {
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) != 0) return -1;
  return fd;
}

std::string Stream::PeerAddress(bool* loopback) const {
  sockaddr_storage ss{};
  int len = sizeof(ss);
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  char name[INET6_ADDRSTRLEN] = {0};
  bool is_loopback = false;
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    uv_ip4_name(sin, name, sizeof(name));
    is_loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
  } else if (ss.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    uv_ip6_name(sin6, name, sizeof(name));
    is_loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) ||
                  (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && sin6->sin6_addr.s6_addr[12] == 127);
  }
  if (loopback != nullptr) *loopback = is_loopback;
  return name;
}

// ---- input

int Stream::StartReading() {
  if (reading_ || closing_) return 0;
  const int rc = uv_read_start(AsStream(&tcp_), OnAlloc, OnReadCb);
  if (rc == 0) reading_ = true;
  return rc;
}

void Stream::StopReading() {
  if (!reading_) return;
  uv_read_stop(AsStream(&tcp_));
  reading_ = false;
  input_.Shrink();
}

void Stream::OnAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) {
  (void)suggested;
  auto* self = static_cast<Stream*>(handle->data);
  if (self->wire_ == Wire::kTls) {
    // Ciphertext is copied into the session's read BIO before the next read of any stream on
    // this thread, so one block serves them all.
    thread_local std::unique_ptr<char[]> scratch(new char[InputBuffer::kReadChunk]);
    *buf = uv_buf_init(scratch.get(), static_cast<unsigned int>(InputBuffer::kReadChunk));
    return;
  }
  size_t space = 0;
  char* base = self->input_.WritableSpace(&space);
  *buf = uv_buf_init(base, static_cast<unsigned int>(std::min<size_t>(space, UINT_MAX)));
  self->offered_ = buf->len;
}

void Stream::OnReadCb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<Stream*>(stream->data);
  if (self->closing_) return;
  if (nread > 0) {
    if (self->wire_ == Wire::kTls) {
      self->OnTlsWire(std::string_view(buf->base, static_cast<size_t>(nread)));
      return;
    }
    self->OnWire(static_cast<size_t>(nread));
    // A read shorter than the space offered emptied the socket, and libuv will not read again
    // (nor report EAGAIN) until it is readable: give the block back now, as for EAGAIN below.
    if (!self->closing_ && static_cast<size_t>(nread) < self->offered_) self->input_.Shrink();
    return;
  }
  // EAGAIN (0), end of input or an error: the socket has nothing more for now, so the block
  // handed out for this read goes back (an idle or departing peer keeps no receive memory).
  self->input_.Shrink();
  if (nread == 0) return;
  uv_read_stop(stream);
  self->reading_ = false;
  if (nread == UV_EOF) {
    self->handler_.OnStreamEof(*self);
  } else {
    self->handler_.OnStreamError(*self, static_cast<int>(nread));
  }
}

void Stream::OnWire(size_t n) {
  // The bytes were read into input() (TLS streams read elsewhere, see OnAlloc).
  input_.Commit(n);
  if (wire_ == Wire::kDetecting) {
    // The first read of the stream: input() held nothing before it.
    const std::string_view first = input_.Data();
    if (server::tls::StartsTls(static_cast<unsigned char>(first.front()))) {
      if (tls_context_ == nullptr) {
        RefuseTls("TLS handshake refused: no certificate is loaded (--ssl-certificate)");
        return;
      }
      tls_ = std::make_unique<server::tls::Session>(*tls_context_);
      tls_context_.reset();
      wire_ = Wire::kTls;
      const std::string ciphertext(first);
      input_.Consume(ciphertext.size());
      OnTlsWire(ciphertext);
      return;
    }
    tls_context_.reset();
    if (require_tls_) {
      RefuseTls(
          "plain-text connection refused (TLS required: --ssl-require or --ssl-require-listen)",
          handler_.PlainTextRefusal(first));
      return;
    }
    wire_ = Wire::kPlain;
  }
  handler_.OnStreamRead(*this);
}

// ---- output

void Stream::set_queued_total(size_t* total) {
  if (queued_total_ != nullptr) *queued_total_ -= accounted_;
  queued_total_ = total;
  accounted_ = 0;
  Account();
}

void Stream::Account() {
  if (queued_total_ == nullptr) return;
  const size_t now = queued_bytes();
  *queued_total_ = *queued_total_ - accounted_ + now;
  accounted_ = now;
}

bool Stream::Write(std::string* bytes) {
  if (closing_) {
    bytes->clear();
    return false;
  }
  if (bytes->empty()) return true;
  if (max_queued_ != 0 && queued_bytes() + bytes->size() > max_queued_) return false;
  if (wire_ == Wire::kRefused || (wire_ == Wire::kDetecting && require_tls_)) {
    // Refused: the owner is about to hear OnStreamError. TLS required and no handshake yet:
    // nothing goes to the peer in plain text.
    bytes->clear();
    return true;
  }
  if (wire_ != Wire::kTls) return QueueWire(bytes);  // plain: the consumer's bytes are the wire's
  // TLS: the session encrypts them (plaintext in) and the records are what is queued.
  const bool ok = tls_->WritePlaintext(*bytes);
  bytes->clear();
  std::string records;
  tls_->TakeCiphertext(&records);
  if (!records.empty()) (void)QueueWire(&records);
  return ok;
}

bool Stream::QueueWire(std::string* bytes) {
  if (write_in_flight_) {
    // Behind the write in flight. An empty queue takes the caller's buffer whole (no copy).
    if (queued_.empty()) {
      std::swap(queued_, *bytes);
    } else {
      queued_.append(*bytes);
    }
    bytes->clear();
    Account();
    return true;
  }
  assert(queued_.empty());
  std::swap(writing_, *bytes);
  bytes->clear();
  writing_offset_ = 0;
  WriteNext();
  Account();
  return true;
}

void Stream::WriteNext() {
  // writing_ holds the next bytes; nothing is in flight.
  uv_buf_t buf = uv_buf_init(
      writing_.data() + writing_offset_,
      static_cast<unsigned int>(std::min<size_t>(writing_.size() - writing_offset_, UINT_MAX)));
  int written = uv_try_write(AsStream(&tcp_), &buf, 1);
  if (written == UV_EAGAIN || written == UV_ENOSYS) written = 0;
  if (written < 0) {
    // Reported from a callback, never from inside the owner's call: let uv_write fail it.
    written = 0;
  }
  writing_offset_ += static_cast<size_t>(written);
  if (writing_offset_ == writing_.size()) {
    writing_.clear();
    writing_offset_ = 0;
    ReleaseIfHuge(&writing_);
    return;
  }
  // The rest goes through one uv_write from a buffer that stays put until it completes.
  uv_buf_t rest = uv_buf_init(
      writing_.data() + writing_offset_,
      static_cast<unsigned int>(std::min<size_t>(writing_.size() - writing_offset_, UINT_MAX)));
  const int rc = uv_write(&write_req_, AsStream(&tcp_), &rest, 1, OnWriteCb);
  if (rc != 0) {
    // Nothing is in flight; the owner hears of it on the loop's next turn at the latest: a
    // failed socket also fails its reads. Drop the bytes (they cannot be sent).
    writing_.clear();
    writing_offset_ = 0;
    return;
  }
  write_in_flight_ = true;
}

void Stream::OnWriteCb(uv_write_t* req, int status) {
  auto* self = static_cast<Stream*>(req->data);
  self->write_in_flight_ = false;
  if (self->closing_) return;  // UV_ECANCELED from uv_close; the queue is already dropped
  if (status < 0) {
    self->writing_.clear();
    self->writing_offset_ = 0;
    self->queued_.clear();
    self->Account();
    self->handler_.OnStreamError(*self, status);
    return;
  }
  // uv_write wrote everything it was given.
  self->writing_.clear();
  self->writing_offset_ = 0;
  std::swap(self->writing_, self->queued_);
  ReleaseIfHuge(&self->queued_);
  if (!self->writing_.empty()) self->WriteNext();
  self->Account();
  if (!self->write_in_flight_) self->handler_.OnStreamDrained(*self);
}

std::string Stream::TakeCloseNotify() {
  std::string alert;
  if (wire_ != Wire::kTls) return alert;
  tls_->SendCloseNotify();
  tls_->TakeCiphertext(&alert);
  return alert;
}

void Stream::Shutdown() {
  if (closing_ || shutdown_) return;
  shutdown_ = true;
  // TLS: the close_notify is the last record, after everything queued, before the FIN.
  if (std::string alert = TakeCloseNotify(); !alert.empty()) (void)QueueWire(&alert);
  // Queued behind the writes in flight by libuv. Its result does not matter: the owner closes
  // on the peer's EOF or its own deadline.
  if (uv_shutdown(&shutdown_req_, AsStream(&tcp_), nullptr) != 0) shutdown_ = false;
}

void Stream::Close() {
  if (closing_) return;
  closing_ = true;
  // TLS: tell the peer the stream ended here rather than was cut (a close_notify), when it can
  // be the last record: nothing is waiting to be written (a graceful close has drained; a close
  // with bytes still queued cuts them, and the peer should see that). As far as the socket takes
  // it now: the close does not wait.
  if (!write_in_flight_ && queued_.empty()) {
    if (std::string alert = TakeCloseNotify(); !alert.empty()) {
      uv_buf_t buf = uv_buf_init(alert.data(), static_cast<unsigned int>(alert.size()));
      (void)uv_try_write(AsStream(&tcp_), &buf, 1);
    }
  }
  if (reading_) {
    uv_read_stop(AsStream(&tcp_));
    reading_ = false;
  }
  // The bytes of a write in flight stay until libuv cancels it (during the close); the rest
  // goes now.
  queued_.clear();
  ReleaseIfHuge(&queued_);
  input_.Consume(input_.size());
  input_.Shrink();
  if (queued_total_ != nullptr) {
    *queued_total_ -= accounted_;
    accounted_ = 0;
    queued_total_ = nullptr;
  }
  uv_close(AsHandle(&tcp_), OnCloseCb);
}

void Stream::OnCloseCb(uv_handle_t* handle) {
  auto* self = static_cast<Stream*>(handle->data);
  self->writing_.clear();
  self->writing_offset_ = 0;
  self->handler_.OnStreamClosed(*self);
}

}  // namespace roundhouse::net
