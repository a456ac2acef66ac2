// Worker requests (doc/protocol.md §2, §3): registrations, sleeping, grabbing, WORK_* results,
// SET_CLIENT_ID.
#include <algorithm>
#include <cstdint>

#include "protocol/admin_line.h"
#include "protocol/codec.h"
#include "server/access.h"
#include "server/broker/broker.h"
#include "server/broker/job.h"
#include "server/commands.h"
#include "server/connection.h"

namespace roundhouse::server {

using protocol::Packet;
using protocol::PacketType;

namespace {

// CAN_DO_TIMEOUT milliseconds: atoi-like, non-numeric or <= 0 is no timeout, 1..999 is 1000
// (doc/protocol.md §3.8). The caller has already refused values over 20 characters.
int64_t TimeoutMs(std::string_view text) {
  const long long ms = protocol::ParseLeadingInt(text);
  if (ms <= 0) return 0;
  return std::max<int64_t>(ms, 1000);
}

// CAN_DO / CAN_DO_TIMEOUT: a function the connection may not serve (doc/acl.md) is answered
// ERROR INVALID_WORKER_FUNCTION "permission denied: ..." and not registered; the connection stays
// usable, and its other registrations stand.
void CanDoIfPermitted(Connection& conn, std::string_view function, int64_t timeout_ms) {
  if (!Permitted(conn, acl::Kind::kRegister, function)) {
    protocol::AppendError(
        conn.Out(), "INVALID_WORKER_FUNCTION",
        "permission denied: " + PermissionDeniedText(conn, acl::Kind::kRegister, function));
    return;
  }
  conn.broker().CanDo(conn, function, timeout_ms);
}

Disposition CanDoTimeout(Connection& conn, const Packet& packet) {
  const std::string_view ms = packet.arg[1];
  if (ms.size() > conn.limits().max_timeout_digits) return Disposition::kClose;
  CanDoIfPermitted(conn, packet.arg[0], TimeoutMs(ms));
  return Disposition::kKeep;
}

Disposition Grab(Connection& conn, broker::GrabKind kind) {
  const broker::Job* job = conn.broker().Grab(conn, kind);
  std::string* out = conn.Out();
  if (job == nullptr) {
    protocol::AppendPacket(out, PacketType::kNoJob, {});
    return Disposition::kKeep;
  }
  switch (kind) {
    case broker::GrabKind::kJob:
      protocol::AppendPacket(out, PacketType::kJobAssign,
                             {job->handle(), job->function_name(), job->data()});
      break;
    case broker::GrabKind::kAll:
      if (!job->reducer().empty()) {
        protocol::AppendPacket(
            out, PacketType::kJobAssignAll,
            {job->handle(), job->function_name(), job->unique(), job->reducer(), job->data()});
        break;
      }
      [[fallthrough]];
    case broker::GrabKind::kUniq:
      protocol::AppendPacket(out, PacketType::kJobAssignUniq,
                             {job->handle(), job->function_name(), job->unique(), job->data()});
      break;
  }
  return Disposition::kKeep;
}

// The JOB_NOT_FOUND text differs by packet type (doc/protocol.md §2.1).
std::string_view NotFoundText(PacketType type) {
  switch (type) {
    case PacketType::kWorkData:
    case PacketType::kWorkWarning:
      return "Job does not exist on server";
    case PacketType::kWorkException:
      return "An exception was received for a job that does not exist";
    default:
      return "Job given in work result not found";
  }
}

Disposition Work(Connection& conn, const Packet& packet) {
  broker::WorkResult result;
  if (packet.type == PacketType::kWorkStatus) {
    result = conn.broker().Work(conn, packet.type, packet.arg[0], packet.payload, packet.arg[1],
                                packet.arg[2]);
  } else {
    result = conn.broker().Work(conn, packet.type, packet.arg[0], packet.payload);
  }
  switch (result) {
    case broker::WorkResult::kOk:
      break;
    case broker::WorkResult::kJobNotFound:
      protocol::AppendError(conn.Out(), "JOB_NOT_FOUND", NotFoundText(packet.type));
      break;
    case broker::WorkResult::kHandleTooLarge:
      protocol::AppendError(
          conn.Out(), "ARGUMENT_TOO_LARGE",
          "Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf");
      break;
  }
  return Disposition::kKeep;
}

}  // namespace

Disposition HandleWorkerPacket(Connection& conn, const Packet& packet) {
  broker::Broker& broker = conn.broker();
  switch (packet.type) {
    case PacketType::kCanDo:
      CanDoIfPermitted(conn, packet.arg[0], 0);
      return Disposition::kKeep;
    case PacketType::kCanDoTimeout:
      return CanDoTimeout(conn, packet);
    case PacketType::kCantDo:
      broker.CantDo(conn, packet.arg[0]);
      return Disposition::kKeep;
    case PacketType::kResetAbilities:
      broker.ResetAbilities(conn);
      return Disposition::kKeep;
    case PacketType::kPreSleep:
      broker.PreSleep(conn);
      return Disposition::kKeep;
    case PacketType::kGrabJob:
      return Grab(conn, broker::GrabKind::kJob);
    case PacketType::kGrabJobUniq:
      return Grab(conn, broker::GrabKind::kUniq);
    case PacketType::kGrabJobAll:
      return Grab(conn, broker::GrabKind::kAll);
    case PacketType::kWorkStatus:
    case PacketType::kWorkComplete:
    case PacketType::kWorkFail:
    case PacketType::kWorkException:
    case PacketType::kWorkData:
    case PacketType::kWorkWarning:
      return Work(conn, packet);
    case PacketType::kSetClientId: {
      const std::string_view id = packet.arg[0];
      broker.SetClientId(conn, id.substr(0, std::min(id.size(), conn.limits().max_client_id)));
      return Disposition::kKeep;
    }
    default:
      protocol::AppendError(conn.Out(), "INVALID_COMMAND", "Command not expected");
      return Disposition::kKeep;
  }
}

}  // namespace roundhouse::server
