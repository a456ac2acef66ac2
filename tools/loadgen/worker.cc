#include "tools/loadgen/worker.h"

#include <string>

#include "protocol/codec.h"
#include "tools/loadgen/job_maker.h"

namespace roundhouse::loadgen {

using protocol::Magic;
using protocol::Packet;
using protocol::PacketType;

Worker::Worker(const Options& options, Role role)
    : Peer(role == Role::kIdle ? 4 * 1024 : 64 * 1024),
      role_(role),
      grab_uniq_(role == Role::kDrain && !options.record_path.empty()),
      echo_(options.result == ResultKind::kEcho),
      check_payload_(role == Role::kWorker),
      payload_size_(options.payload),
      functions_(role == Role::kIdle ? std::vector<std::string>{options.idle_function}
                                     : FunctionNames(options)) {}

void Worker::OnConnected(Context&) {
  for (const std::string& function : functions_) {
    protocol::AppendPacket(conn().output(), PacketType::kCanDo, {function}, Magic::kRequest);
  }
  Grab();
}

void Worker::Grab() {
  protocol::AppendPacket(conn().output(),
                         grab_uniq_ ? PacketType::kGrabJobUniq : PacketType::kGrabJob, {},
                         Magic::kRequest);
  state_ = State::kGrabbing;
}

void Worker::OnPacket(const Packet& packet, Context& ctx) {
  switch (packet.type) {
    case PacketType::kJobAssign:
    case PacketType::kJobAssignUniq:
      if (state_ != State::kGrabbing) {
        ctx.stats->Error("JOB_ASSIGN without GRAB_JOB");
        return;
      }
      ready_ = true;
      OnAssign(packet, ctx);
      return;
    case PacketType::kNoJob:
      if (state_ != State::kGrabbing) {
        ctx.stats->Error("NO_JOB without GRAB_JOB");
        return;
      }
      ready_ = true;
      protocol::AppendPacket(conn().output(), PacketType::kPreSleep, {}, Magic::kRequest);
      state_ = State::kSleeping;
      return;
    case PacketType::kNoop:
      // A NOOP while a GRAB is outstanding is harmless (libgearman ignores it too).
      if (state_ != State::kSleeping) return;
      if (role_ == Role::kIdle) {
        ++ctx.stats->idle_noops;
        return;
      }
      Grab();
      return;
    case PacketType::kError:
      ++ctx.stats->error_packets;
      ctx.stats->Error("worker got ERROR " + std::string(packet.arg[0]) + ": " +
                       std::string(packet.arg[1]));
      return;
    default:
      ctx.stats->Error("worker received unexpected " + std::string(protocol::Name(packet.type)));
  }
}

void Worker::OnAssign(const Packet& packet, Context& ctx) {
  // JOB_ASSIGN: HANDLE, FUNC, DATA. JOB_ASSIGN_UNIQ: HANDLE, FUNC, UNIQ, DATA.
  const std::string_view handle = packet.arg[0];
  const std::string_view data = packet.arg[packet.count - 1];
  if (role_ == Role::kIdle) ctx.stats->Error("idle connection was assigned a job");
  if (check_payload_ && data.size() != payload_size_) {
    ctx.stats->Error("JOB_ASSIGN carried " + std::to_string(data.size()) + " bytes, expected " +
                     std::to_string(payload_size_));
  }
  if (ctx.record != nullptr) {
    const std::string_view unique =
        packet.type == PacketType::kJobAssignUniq ? packet.arg[2] : std::string_view();
    ctx.record->Add(handle, unique);
  }
  protocol::AppendPacket(conn().output(), PacketType::kWorkComplete,
                         {handle, echo_ ? data : std::string_view()}, Magic::kRequest);
  ++ctx.stats->worker_done;
  Grab();
}

}  // namespace roundhouse::loadgen
