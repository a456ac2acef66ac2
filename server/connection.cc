#include "server/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "base/log.h"
#include "protocol/admin_line.h"
#include "server/acl.h"
#include "server/commands.h"

namespace roundhouse::server {
namespace {

void SetIntOption(int fd, int level, int name, int value) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    RH_LOG(kWarning, "setsockopt(%d, %d) on fd %d failed: %s", level, name, fd,
           std::strerror(errno));
  }
}

}  // namespace

Connection::Connection(ConnectionHost& host, uv_loop_t* loop) : host_(host), stream_(loop, *this) {}

Connection::~Connection() { assert(!attached_); }

bool Connection::Start(int keepalive_idle, int keepalive_interval, int keepalive_count) {
  fd_ = stream_.fd();
  if (fd_ < 0) return false;
  address_ = stream_.PeerAddress(&loopback_);
  if (address_.empty()) return false;
  identity_ = acl::IdentityOf(loopback_, /*encrypted=*/false, {});

  // gearmand sets SO_KEEPALIVE on every accepted socket; the tuning only when configured.
  uv_tcp_nodelay(stream_.tcp(), 1);
  SetIntOption(fd_, SOL_SOCKET, SO_KEEPALIVE, 1);
  if (keepalive_idle != -1) SetIntOption(fd_, IPPROTO_TCP, TCP_KEEPIDLE, keepalive_idle);
  if (keepalive_interval != -1) SetIntOption(fd_, IPPROTO_TCP, TCP_KEEPINTVL, keepalive_interval);
  if (keepalive_count != -1) SetIntOption(fd_, IPPROTO_TCP, TCP_KEEPCNT, keepalive_count);

  stream_.set_queued_total(host_.unsent_output_total());
  broker().Attach(*this);
  attached_ = true;
  ResumeReading();
  if (closing_) return false;
  RH_LOG(kDebug, "accepted connection fd %d from %s", fd_, address_.c_str());
  return true;
}

std::string* Connection::Out() {
  if (!dirty_) host_.MarkDirty(*this);
  return producer_ != nullptr ? &held_back_ : out_.Tail();
}

void Connection::StartReply(std::unique_ptr<ReplyProducer> producer) {
  assert(producer_ == nullptr);
  if (producer->Produce(Out(), kReplySliceBytes)) return;  // one slice: one piece, as before
  // The rest is produced by Flush() as the output drains; ProcessInput() stops at once.
  producer_ = std::move(producer);
}

void Connection::ContinueReply() {
  // Only once what was produced before has left (the stream and any placeholder): a peer that
  // reads slowly holds one slice here, not the reply.
  if (out_.pending_bytes() + stream_.queued_bytes() >= kReplySliceBytes) return;
  if (!producer_->Produce(out_.Tail(), kReplySliceBytes)) return;
  producer_.reset();
  out_.Tail()->append(held_back_);
  std::string().swap(held_back_);
}

void Connection::AddPlaceholder(uint64_t ticket) {
  if (!dirty_) host_.MarkDirty(*this);
  out_.AddPlaceholder(ticket);
}

// ---- broker::Peer

void Connection::SendNoop() {
  if (closing_ || overflowed_) return;
  protocol::AppendPacket(Out(), protocol::PacketType::kNoop, {});
}

void Connection::SendWork(protocol::PacketType type, std::string_view payload) {
  if (closing_ || overflowed_) return;
  // Data another peer produced (a worker's WORK_DATA, a result): reading less from this peer
  // does not bound it, so the hard cap does. One packet to an idle queue always fits.
  const size_t pending = PendingOutput();
  if (pending > 0 && pending + protocol::kHeaderSize + payload.size() > limits().max_output_queue) {
    overflowed_ = true;
    if (!dirty_) host_.MarkDirty(*this);  // Flush() closes it, outside the broker's call
    return;
  }
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

void Connection::OnStreamRead(net::Stream& stream) {
  (void)stream;
  ProcessInput();
}

void Connection::OnStreamTlsEstablished(net::Stream& stream) {
  identity_ = acl::IdentityOf(loopback_, /*encrypted=*/true, stream.peer_identity());
}

std::string Connection::PlainTextRefusal(std::string_view first) {
  // In the peer's own dialect: a binary request starts with '\0' (doc/protocol.md §5.5).
  std::string reply;
  constexpr std::string_view kWhy = "this listener accepts TLS connections only";
  if (!first.empty() && first.front() == '\0') {
    protocol::AppendError(&reply, "TLS_REQUIRED", kWhy);
  } else {
    protocol::AppendAdminError(&reply, "TLS_REQUIRED", kWhy);
  }
  return reply;
}

void Connection::OnStreamEof(net::Stream& stream) {
  (void)stream;
  // The peer sent everything it will send: answer what it asked, then close.
  RH_LOG(kDebug, "fd %d: end of input", fd_);
  StartDraining();
  // Usually nothing is owed: close now rather than on the next flush, so the fd is free
  // before connections that arrived after this EOF are accepted.
  if (!stream_.write_in_flight() && !out_.HasReady()) MaybeFinishDraining();
}

void Connection::OnStreamError(net::Stream& stream, int status) {
  (void)stream;
  RH_LOG(kDebug, "fd %d: socket error: %s", fd_, uv_strerror(status));
  Close();
}

void Connection::ProcessInput() {
  const protocol::Limits& lim = limits();
  while (!closing_ && !draining_) {
    if (producer_ != nullptr) {  // a streamed reply first; Flush() resumes input after it
      partial_since_ms_ = 0;
      stream_.StopReading();
      return;
    }
    if (OverOutputCap()) {
      partial_since_ms_ = 0;  // waiting for our output, not for the peer
      PauseReading();
      return;
    }
    net::InputBuffer& in = stream_.input();
    if (discard_ > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(discard_, in.size()));
      in.Consume(n);
      discard_ -= n;
      if (discard_ > 0) {
        NotePartial();
        break;
      }
      continue;
    }
    size_t consumed = 0;
    protocol::Frame frame;
    const protocol::ParseResult result = protocol::ParseFrame(in.Data(), lim, &consumed, &frame);
    if (result == protocol::ParseResult::kNeedMore) {
      NotePartial();
      break;
    }
    if (result == protocol::ParseResult::kError) {
      RH_LOG(kInfo, "fd %d %s: closing: %s", fd_, address_.c_str(),
             frame.error != nullptr ? frame.error : "protocol error");
      StartDraining();
      return;
    }
    const bool keep = Dispatch(frame);
    in.Consume(consumed);   // after Dispatch: the frame's views borrow from the buffer
    partial_since_ms_ = 0;  // a frame ended here; the next one starts its own clock
    if (!keep) {
      RH_LOG(kInfo, "fd %d %s: closing after an invalid request", fd_, address_.c_str());
      StartDraining();
      return;
    }
  }
}

void Connection::NotePartial() {
  if (stream_.input().empty() && discard_ == 0) {
    partial_since_ms_ = 0;
  } else if (partial_since_ms_ == 0) {
    partial_since_ms_ = uv_now(stream_.tcp()->loop);
  }
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

bool Connection::OverOutputCap() const { return PendingOutput() > limits().max_pending_output; }

void Connection::PauseReading() {
  paused_ = true;
  stream_.StopReading();
}

void Connection::ResumeReading() {
  if (closing_ || draining_ || paused_ || producer_ != nullptr) return;
  const int rc = stream_.StartReading();
  if (rc != 0) {
    RH_LOG(kWarning, "fd %d: uv_read_start: %s", fd_, uv_strerror(rc));
    Close();
  }
}

// ---- output

void Connection::Flush() {
  if (closing_) return;
  if (overflowed_) {
    // As if the peer had disconnected (a foreground client's jobs are handled as gearmand does
    // when a client goes; background work is untouched).
    host_.OutputOverflowed(*this);
    Close();
    return;
  }
  const bool streaming = producer_ != nullptr;
  if (streaming) ContinueReply();
  if (out_.HasReady()) {
    // The stream keeps the bytes it cannot write now; the ready buffer comes back empty (with
    // the capacity of one the stream finished with), so steady traffic allocates nothing.
    if (!stream_.Write(&out_.ready())) {
      Close();
      return;
    }
  }
  if (producer_ != nullptr) {
    // The slice left at once: the next one in the next turn. Otherwise the write's completion
    // (OnStreamDrained) or the store's reply for a placeholder (SubmitDone) flushes again.
    if (!stream_.write_in_flight() && !out_.HasPlaceholder()) host_.ResumeNextTurn(*this);
    return;
  }
  if (streaming) {  // the reply just ended: the requests that waited behind it
    ProcessInput();
    if (closing_) return;
    ResumeReading();
  }
  if (!stream_.write_in_flight()) OnOutputDrained();
}

void Connection::OnStreamDrained(net::Stream& stream) {
  (void)stream;
  Flush();
}

// Nothing is being written and nothing writable is queued (placeholders may still hold bytes).
void Connection::OnOutputDrained() {
  if (paused_ && PendingOutput() <= limits().max_pending_output / 2) {
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
  partial_since_ms_ = 0;
  stream_.StopReading();
  if (!dirty_) host_.MarkDirty(*this);  // the host's flush finishes the drain
}

void Connection::MaybeFinishDraining() {
  if (closing_ || producer_ != nullptr) return;  // a streamed reply is finished first
  if (out_.HasPlaceholder()) return;  // the store still owes a reply; SubmitDone comes back here
  if (attached_) {
    // Detach first: the peer sends nothing more, so unsolicited output cannot keep it open.
    broker().Detach(*this);
    attached_ = false;
  }
  if (stream_.write_in_flight()) return;
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
  out_.Clear();
  producer_.reset();  // a peer gone mid-reply: the listing stops and frees what it held
  std::string().swap(held_back_);
  RH_LOG(kDebug, "closing connection fd %d from %s", fd_, address_.c_str());
  stream_.Close();
}

void Connection::CloseAfterTryWrite() {
  if (closing_) return;
  if (out_.HasReady()) (void)stream_.Write(&out_.ready());
  Close();
}

void Connection::OnStreamClosed(net::Stream& stream) {
  (void)stream;
  host_.Closed(*this);
}

}  // namespace roundhouse::server
