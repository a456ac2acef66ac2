// Request handlers, one family per file (doc/protocol.md §2, §4):
//   client_commands.cc  submits, GET_STATUS*, OPTION_REQ, ECHO_REQ
//   worker_commands.cc  CAN_DO*, CANT_DO, RESET_ABILITIES, PRE_SLEEP, GRAB_JOB*, WORK_*,
//                       SET_CLIENT_ID
//   admin_commands.cc   the admin text lines
// Each handler reads one decoded request, calls the broker, and appends the complete reply (if
// any) to the connection's output in one piece. Views in the request borrow from the
// connection's input buffer and are valid only during the call.
//
// Thread-safety: loop thread only.
#pragma once

#include <string_view>

#include "protocol/packet.h"

namespace roundhouse::server {

class Connection;

// Flow control for the connection after a request: keep going, or flush and close
// (doc/protocol.md §1.4).
enum class Disposition { kKeep, kClose };

enum class Family { kClient, kWorker, kNotExpected };

// Which family handles a request of `type` (1..42). kNotExpected: INVALID_COMMAND.
Family FamilyOf(protocol::PacketType type);

Disposition HandleClientPacket(Connection& conn, const protocol::Packet& packet);
Disposition HandleWorkerPacket(Connection& conn, const protocol::Packet& packet);
// `line` excludes the line ending.
Disposition HandleAdminLine(Connection& conn, std::string_view line);

}  // namespace roundhouse::server
