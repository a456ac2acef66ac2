#include "server/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "server/base/log.h"
#include "server/commands.h"

namespace roundhouse::server {
namespace {

// Write buffers larger than this are released once written, so one big reply does not pin its
// memory for the life of the connection.
constexpr size_t kKeepWriteCapacity = size_t{1024} * 1024;

uv_stream_t* AsStream(uv_tcp_t* tcp) { return reinterpret_cast<uv_stream_t*>(tcp); }
uv_handle_t* AsHandle(uv_tcp_t* tcp) { return reinterpret_cast<uv_handle_t*>(tcp); }

uint32_t LoadBigEndian32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

void SetIntOption(int fd, int level, int name, int value) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    RH_LOG(kWarning, "setsockopt(%d, %d) on fd %d failed: %s", level, name, fd,
           std::strerror(errno));
  }
}

void ReleaseIfHuge(std::string* s) {
  if (s->capacity() > kKeepWriteCapacity) std::string().swap(*s);
}

}  // namespace

Connection::Connection(ConnectionHost& host) : host_(host) {
  tcp_.data = this;
  write_req_.data = this;
}

Connection::~Connection() { assert(!attached_); }

bool Connection::Start(int keepalive_idle, int keepalive_interval, int keepalive_count) {
  uv_os_fd_t fd = -1;
  if (uv_fileno(AsHandle(&tcp_), &fd) != 0) return false;
  fd_ = fd;

  sockaddr_storage ss{};
  int len = sizeof(ss);
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  char name[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    uv_ip4_name(sin, name, sizeof(name));
    loopback_ = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
  } else if (ss.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    uv_ip6_name(sin6, name, sizeof(name));
    loopback_ = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) ||
                (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && sin6->sin6_addr.s6_addr[12] == 127);
  }
  address_ = name;

  // gearmand sets SO_KEEPALIVE on every accepted socket; the tuning only when configured.
  uv_tcp_nodelay(&tcp_, 1);
  SetIntOption(fd_, SOL_SOCKET, SO_KEEPALIVE, 1);
  if (keepalive_idle != -1) SetIntOption(fd_, IPPROTO_TCP, TCP_KEEPIDLE, keepalive_idle);
  if (keepalive_interval != -1) SetIntOption(fd_, IPPROTO_TCP, TCP_KEEPINTVL, keepalive_interval);
  if (keepalive_count != -1) SetIntOption(fd_, IPPROTO_TCP, TCP_KEEPCNT, keepalive_count);

  broker().Attach(*this);
  attached_ = true;
  ResumeReading();
  if (closing_) return false;
  RH_LOG(kDebug, "accepted connection fd %d from %s", fd_, address_.c_str());
  return true;
}

std::string* Connection::Out() {
  if (!dirty_) host_.MarkDirty(*this);
  return out_.Tail();
}

void Connection::AddPlaceholder(uint64_t ticket) {
  if (!dirty_) host_.MarkDirty(*this);
  out_.AddPlaceholder(ticket);
}

// ---- broker::Peer

void Connection::SendNoop() {
  if (closing_) return;
  protocol::AppendPacket(Out(), protocol::PacketType::kNoop, {});
}

void Connection::SendWork(protocol::PacketType type, std::string_view payload) {
  if (closing_) return;
  protocol::AppendRawPacket(Out(), type, payload);
}

void Connection::SubmitDone(uint64_t ticket, const broker::SubmitReply& reply) {
  if (closing_) return;
  const bool filled = out_.Fill(ticket, [&reply](std::string* out) {
    if (reply.ok) {
      protocol::AppendPacket(out, protocol::PacketType::kJobCreated, {reply.handle});
    } else {
      protocol::AppendError(out, reply.error_code, reply.error_text);
    }
  });
  if (!filled) {
    RH_LOG(kError, "fd %d: submit reply for unknown ticket %llu", fd_,
           static_cast<unsigned long long>(ticket));
    return;
  }
  if (!dirty_) host_.MarkDirty(*this);
}

// ---- input

void Connection::OnAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) {
  (void)suggested;
  auto* conn = static_cast<Connection*>(handle->data);
  size_t space = 0;
  char* base = conn->in_.WritableSpace(conn->ExpectedFrameSize(), &space);
  *buf = uv_buf_init(base, static_cast<unsigned int>(std::min<size_t>(space, UINT32_MAX)));
}

void Connection::OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  (void)buf;
  auto* conn = static_cast<Connection*>(stream->data);
  if (nread > 0) {
    conn->in_.Commit(static_cast<size_t>(nread));
    conn->ProcessInput();
    return;
  }
  // EAGAIN (0), end of input or an error: the block handed out for this read holds nothing, so
  // an idle or departing peer keeps no receive memory.
  conn->in_.ReleaseIfEmpty();
  if (nread == UV_EOF) {
    // The peer sent everything it will send: answer what it asked, then close.
    RH_LOG(kDebug, "fd %d: end of input", conn->fd_);
    conn->StartDraining();
    // Usually nothing is owed: close now rather than on the next flush, so the fd is free
    // before connections that arrived after this EOF are accepted.
    if (!conn->write_in_flight_ && !conn->out_.HasReady()) conn->MaybeFinishDraining();
  } else if (nread < 0) {
    RH_LOG(kDebug, "fd %d: read error: %s", conn->fd_, uv_strerror(static_cast<int>(nread)));
    conn->Close();
  }
}

size_t Connection::ExpectedFrameSize() const {
  if (discard_ > 0) return 0;
  const std::string_view data = in_.Data();
  if (data.size() < protocol::kHeaderSize || data.front() != '\0') return 0;
  const uint64_t body = LoadBigEndian32(data.data() + 8);
  if (body > limits().max_packet_body) return 0;
  return protocol::kHeaderSize + static_cast<size_t>(body);
}

void Connection::ProcessInput() {
  const protocol::Limits& lim = limits();
  while (!closing_ && !draining_) {
    if (OverOutputCap()) {
      PauseReading();
      return;
    }
    if (discard_ > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(discard_, in_.size()));
      in_.Consume(n);
      discard_ -= n;
      if (discard_ > 0) break;
      continue;
    }
    size_t consumed = 0;
    protocol::Frame frame;
    const protocol::ParseResult result = protocol::ParseFrame(in_.Data(), lim, &consumed, &frame);
    if (result == protocol::ParseResult::kNeedMore) break;
    if (result == protocol::ParseResult::kError) {
      RH_LOG(kInfo, "fd %d %s: closing: %s", fd_, address_.c_str(),
             frame.error != nullptr ? frame.error : "protocol error");
      StartDraining();
      return;
    }
    const bool keep = Dispatch(frame);
    in_.Consume(consumed);  // after Dispatch: the frame's views borrow from the buffer
    if (!keep) {
      RH_LOG(kInfo, "fd %d %s: closing after an invalid request", fd_, address_.c_str());
      StartDraining();
      return;
    }
  }
  in_.ReleaseIfEmpty();
}

bool Connection::Dispatch(const protocol::Frame& frame) {
  using protocol::FrameKind;
  const protocol::Packet& packet = frame.packet;
  switch (frame.kind) {
    case FrameKind::kText:
      return HandleAdminLine(*this, frame.text) == Disposition::kKeep;
    case FrameKind::kOversized:
      discard_ = frame.discard;
      protocol::AppendError(Out(), "DATA_TOO_LARGE", "Packet body exceeds server limit");
      return true;
    case FrameKind::kMissingArguments:
    case FrameKind::kPacket:
      break;
  }
  if (packet.magic == protocol::Magic::kResponse) {
    protocol::AppendError(Out(), "INVALID_MAGIC", "Request magic expected");
    return true;
  }
  const Family family = FamilyOf(packet.type);
  if (family == Family::kNotExpected) {
    protocol::AppendError(Out(), "INVALID_COMMAND", "Command not expected");
    return true;
  }
  if (frame.kind == FrameKind::kMissingArguments) {
    protocol::AppendError(Out(), "INVALID_PACKET", "Packet is missing arguments");
    return true;
  }
  const Disposition d = family == Family::kClient ? HandleClientPacket(*this, packet)
                                                  : HandleWorkerPacket(*this, packet);
  return d == Disposition::kKeep;
}

bool Connection::OverOutputCap() const {
  return out_.pending_bytes() + (writing_.size() - writing_offset_) > limits().max_pending_output;
}

void Connection::PauseReading() {
  paused_ = true;
  if (reading_) {
    uv_read_stop(AsStream(&tcp_));
    reading_ = false;
  }
}

void Connection::ResumeReading() {
  if (reading_ || closing_ || draining_ || paused_) return;
  const int rc = uv_read_start(AsStream(&tcp_), OnAlloc, OnRead);
  if (rc != 0) {
    RH_LOG(kWarning, "fd %d: uv_read_start: %s", fd_, uv_strerror(rc));
    Close();
    return;
  }
  reading_ = true;
}

// ---- output

void Connection::Flush() {
  if (closing_ || write_in_flight_) return;
  if (out_.HasReady()) {
    std::string& ready = out_.ready();
    uv_buf_t buf = uv_buf_init(ready.data(), static_cast<unsigned int>(ready.size()));
    int written = ready.size() <= UINT32_MAX ? uv_try_write(AsStream(&tcp_), &buf, 1) : UV_EAGAIN;
    if (written == UV_EAGAIN || written == UV_ENOSYS) written = 0;
    if (written < 0) {
      RH_LOG(kDebug, "fd %d: write error: %s", fd_, uv_strerror(written));
      Close();
      return;
    }
    if (static_cast<size_t>(written) == ready.size()) {
      ready.clear();
      ReleaseIfHuge(&ready);
    } else {
      // The rest goes through one uv_write from a buffer that stays put until it completes.
      out_.TakeReady(&writing_);
      writing_offset_ = static_cast<size_t>(written);
      uv_buf_t rest = uv_buf_init(writing_.data() + writing_offset_,
                                  static_cast<unsigned int>(writing_.size() - writing_offset_));
      const int rc = uv_write(&write_req_, AsStream(&tcp_), &rest, 1, OnWrite);
      if (rc != 0) {
        RH_LOG(kDebug, "fd %d: uv_write: %s", fd_, uv_strerror(rc));
        Close();
        return;
      }
      write_in_flight_ = true;
      return;
    }
  }
  OnOutputDrained();
}

void Connection::OnWrite(uv_write_t* req, int status) {
  auto* conn = static_cast<Connection*>(req->data);
  conn->write_in_flight_ = false;
  conn->writing_.clear();
  conn->writing_offset_ = 0;
  ReleaseIfHuge(&conn->writing_);
  if (conn->closing_) return;  // UV_ECANCELED from uv_close
  if (status < 0) {
    RH_LOG(kDebug, "fd %d: write error: %s", conn->fd_, uv_strerror(status));
    conn->Close();
    return;
  }
  conn->Flush();
}

// Nothing is being written and nothing writable is queued (placeholders may still hold bytes).
void Connection::OnOutputDrained() {
  if (paused_ && out_.pending_bytes() <= limits().max_pending_output / 2) {
    paused_ = false;
    ProcessInput();  // frames that were already buffered when reading stopped
    if (closing_) return;
    ResumeReading();
  }
  if (draining_) MaybeFinishDraining();
}

void Connection::StartDraining() {
  if (closing_ || draining_) return;
  draining_ = true;
  if (reading_) {
    uv_read_stop(AsStream(&tcp_));
    reading_ = false;
  }
  if (!dirty_) host_.MarkDirty(*this);  // the host's flush finishes the drain
}

void Connection::MaybeFinishDraining() {
  if (closing_) return;
  if (out_.HasPlaceholder()) return;  // the store still owes a reply; SubmitDone comes back here
  if (attached_) {
    // Detach first: the peer sends nothing more, so unsolicited output cannot keep it open.
    broker().Detach(*this);
    attached_ = false;
  }
  if (write_in_flight_) return;
  if (out_.HasReady()) {
    if (!dirty_) host_.MarkDirty(*this);
    return;
  }
  Close();
}

void Connection::Close() {
  if (closing_) return;
  closing_ = true;
  if (attached_) {
    broker().Detach(*this);
    attached_ = false;
  }
  if (reading_) {
    uv_read_stop(AsStream(&tcp_));
    reading_ = false;
  }
  out_.Clear();
  RH_LOG(kDebug, "closing connection fd %d from %s", fd_, address_.c_str());
  uv_close(AsHandle(&tcp_), OnClose);
}

void Connection::CloseAfterTryWrite() {
  if (closing_) return;
  if (!write_in_flight_ && out_.HasReady()) {
    std::string& ready = out_.ready();
    uv_buf_t buf = uv_buf_init(ready.data(), static_cast<unsigned int>(ready.size()));
    (void)uv_try_write(AsStream(&tcp_), &buf, 1);
  }
  Close();
}

void Connection::OnClose(uv_handle_t* handle) {
  auto* conn = static_cast<Connection*>(handle->data);
  conn->host_.Closed(*conn);
}

}  // namespace roundhouse::server
