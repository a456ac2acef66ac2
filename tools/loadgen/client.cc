#include "tools/loadgen/client.h"

#include <cstring>
#include <string>

#include "protocol/codec.h"

namespace roundhouse::loadgen {

using protocol::Packet;
using protocol::PacketType;

Client::Client(const Options& options, int index, uint64_t run_id, int64_t quota)
    : Peer(64 * 1024),
      background_(options.mode == Mode::kBackground || options.mode == Mode::kSubmitOnly),
      result_(options.result),
      window_(options.window),
      quota_(quota),
      payload_(MakePayload(options.payload)),
      maker_(options, index, run_id),
      slots_(static_cast<size_t>(options.window)) {}

void Client::Pump(Context& ctx) {
  if (!ctx.may_submit) return;
  while (count_ < window_ && (quota_ == 0 || started_ < quota_)) {
    Slot& slot = At(count_);
    slot.sent_ns = ctx.now_ns;
    slot.done = false;
    slot.handle_size = 0;
    slot.unique_size = static_cast<uint8_t>(maker_.AppendNext(conn().output(), slot.unique));
    ++count_;
    ++started_;
    ++ctx.stats->submitted;
  }
}

void Client::OnPacket(const Packet& packet, Context& ctx) {
  switch (packet.type) {
    case PacketType::kJobCreated:
      OnJobCreated(packet, ctx);
      break;
    case PacketType::kWorkComplete:
    case PacketType::kWorkFail:
      OnWorkResult(packet, ctx);
      break;
    case PacketType::kError:
      OnError(packet, ctx);
      break;
    default:
      ctx.stats->Error("client received unexpected " + std::string(protocol::Name(packet.type)));
  }
  Pump(ctx);
}

void Client::OnJobCreated(const Packet& packet, Context& ctx) {
  const std::string_view handle = packet.arg[0];
  if (created_ == count_) {
    ctx.stats->Error("JOB_CREATED without an unanswered submit");
    return;
  }
  if (handle.empty() || handle.size() > 63) {
    ctx.stats->Error("JOB_CREATED with a handle of " + std::to_string(handle.size()) + " bytes");
  }
  ++ctx.stats->created;
  Slot& slot = At(created_);
  slot.handle_size = static_cast<uint8_t>(std::min<size_t>(handle.size(), sizeof slot.handle));
  std::memcpy(slot.handle, handle.data(), slot.handle_size);
  ++created_;
  if (background_) {
    // created_ was 0: background jobs leave the ring at JOB_CREATED, so this is the head.
    if (ctx.measuring) ctx.stats->latency.Record(static_cast<uint64_t>(ctx.now_ns - slot.sent_ns));
    if (ctx.record != nullptr) {
      ctx.record->Add(handle, std::string_view(slot.unique, slot.unique_size));
    }
    slot.done = true;
    PopFinished();
  }
}

void Client::OnWorkResult(const Packet& packet, Context& ctx) {
  const std::string_view handle = packet.arg[0];
  if (background_) {
    ctx.stats->Error("background client received " + std::string(protocol::Name(packet.type)));
    return;
  }
  for (int64_t i = 0; i < created_; ++i) {
    Slot& slot = At(i);
    if (slot.done || std::string_view(slot.handle, slot.handle_size) != handle) continue;
    slot.done = true;
    if (packet.type == PacketType::kWorkFail) {
      ctx.stats->Error("WORK_FAIL for " + std::string(handle));
    } else {
      ++ctx.stats->client_done;
      if (ctx.measuring) {
        ctx.stats->latency.Record(static_cast<uint64_t>(ctx.now_ns - slot.sent_ns));
      }
      const std::string_view data = packet.arg[1];
      const std::string_view expected =
          result_ == ResultKind::kEcho ? std::string_view(payload_) : std::string_view();
      if (data != expected) {
        ctx.stats->Error("WORK_COMPLETE carried " + std::to_string(data.size()) +
                         " unexpected bytes");
      }
    }
    PopFinished();
    return;
  }
  ctx.stats->Error(std::string(protocol::Name(packet.type)) + " for unknown handle " +
                   std::string(handle));
}

void Client::OnError(const Packet& packet, Context& ctx) {
  ++ctx.stats->error_packets;
  ctx.stats->Error("ERROR " + std::string(packet.arg[0]) + ": " + std::string(packet.arg[1]));
  // The server refused the oldest unanswered submit instead of creating it: retire it so the
  // window keeps moving.
  if (created_ < count_) {
    Slot& slot = At(created_);
    slot.handle_size = 0;
    slot.done = true;
    ++created_;
    PopFinished();
  }
}

void Client::PopFinished() {
  while (count_ > 0 && At(0).done) {
    head_ = (head_ + 1) % window_;
    --count_;
    --created_;
  }
}

}  // namespace roundhouse::loadgen
