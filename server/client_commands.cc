// Client requests (doc/protocol.md §2): SUBMIT_JOB*, GET_STATUS, GET_STATUS_UNIQUE, OPTION_REQ,
// ECHO_REQ. Also the family routing table (FamilyOf).
#include <charconv>
#include <cstdint>
#include <limits>

#include "base/text.h"
#include "protocol/admin_line.h"
#include "protocol/codec.h"
#include "server/access.h"
#include "server/broker/broker.h"
#include "server/commands.h"
#include "server/connection.h"

namespace roundhouse::server {

using protocol::Packet;
using protocol::PacketType;

namespace {

// A decimal number rendered on the stack (no allocation on the hot path).
class Decimal {
 public:
  explicit Decimal(uint64_t value) {
    const auto result = std::to_chars(buf_, buf_ + sizeof(buf_), value);
    size_ = static_cast<size_t>(result.ptr - buf_);
  }
  std::string_view view() const { return {buf_, size_}; }

 private:
  char buf_[24];
  size_t size_ = 0;
};

constexpr bool IsCSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// strtoll(s, NULL, 10) as gearmand applies it to SUBMIT_JOB_EPOCH: leading white space, a sign,
// then digits; anything else ends the number; no digits is 0. False when the value is outside
// the signed 64-bit range (gearmand sees ERANGE and drops the connection).
bool ParseEpoch(std::string_view s, int64_t* out) {
  size_t i = 0;
  while (i < s.size() && IsCSpace(s[i])) ++i;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    negative = s[i] == '-';
    ++i;
  }
  constexpr uint64_t kMaxMagnitude = uint64_t{std::numeric_limits<int64_t>::max()} + 1;
  uint64_t magnitude = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    const auto digit = static_cast<uint64_t>(s[i] - '0');
    if (magnitude > (kMaxMagnitude - digit) / 10) return false;
    magnitude = magnitude * 10 + digit;
  }
  if (negative) {
    *out = magnitude == kMaxMagnitude ? std::numeric_limits<int64_t>::min()
                                      : -static_cast<int64_t>(magnitude);
    return true;
  }
  if (magnitude == kMaxMagnitude) return false;
  *out = static_cast<int64_t>(magnitude);
  return true;
}

void ReplySubmit(Connection& conn, const broker::SubmitOutcome& outcome) {
  if (outcome.pending) {
    conn.AddPlaceholder(outcome.ticket);
  } else if (outcome.reply.ok) {
    protocol::AppendPacket(conn.Out(), PacketType::kJobCreated, {outcome.reply.handle});
  } else {
    protocol::AppendError(conn.Out(), outcome.reply.error_code, outcome.reply.error_text);
  }
}

// Hands `request` to the broker unless the memory budget (--max-memory) is reached: then the
// client gets ERROR QUEUE_ERROR, as at a maxqueue limit, and nothing is created. Work already
// accepted is not touched (doc/protocol.md §3.12).
void SubmitWithinBudget(Connection& conn, const broker::SubmitRequest& request) {
  const size_t bytes = request.function.size() + request.unique.size() + request.reducer.size() +
                       request.data.size();
  if (conn.host().RefuseForMemory(bytes)) {
    protocol::AppendError(conn.Out(), "QUEUE_ERROR",
                          "Server memory budget reached (--max-memory), retry later");
    return;
  }
  ReplySubmit(conn, conn.broker().Submit(conn, request));
}

// Submits `request` if the connection may submit to its function (doc/acl.md); otherwise answers
// ERROR INVALID_FUNCTION_NAME "permission denied: ..." and the job is not created. (An ERROR code
// must be one libgearman knows by name, doc/protocol.md §2.1; it has no permission code.)
void SubmitIfPermitted(Connection& conn, const broker::SubmitRequest& request) {
  if (!Permitted(conn, acl::Kind::kSubmit, request.function)) {
    protocol::AppendError(
        conn.Out(), "INVALID_FUNCTION_NAME",
        "permission denied: " + PermissionDeniedText(conn, acl::Kind::kSubmit, request.function));
    return;
  }
  SubmitWithinBudget(conn, request);
}

void ReplyUniqueTooLarge(Connection& conn) {
  protocol::AppendError(conn.Out(), "ARGUMENT_TOO_LARGE", "Unique value too large");
}

// SUBMIT_JOB, _BG, _HIGH, _HIGH_BG, _LOW, _LOW_BG: FUNC\0UNIQ\0DATA.
Disposition Submit(Connection& conn, const Packet& packet, broker::Priority priority,
                   bool background) {
  broker::SubmitRequest request;
  request.function = packet.arg[0];
  request.unique = packet.arg[1];
  request.data = packet.arg[2];
  request.priority = priority;
  request.background = background;
  if (request.unique.size() > conn.limits().max_unique) {
    ReplyUniqueTooLarge(conn);
    return Disposition::kKeep;
  }
  SubmitIfPermitted(conn, request);
  return Disposition::kKeep;
}

// SUBMIT_JOB_EPOCH: FUNC\0UNIQ\0EPOCH\0DATA; background, NORMAL.
Disposition SubmitEpoch(Connection& conn, const Packet& packet) {
  broker::SubmitRequest request;
  request.function = packet.arg[0];
  request.unique = packet.arg[1];
  request.data = packet.arg[3];
  request.priority = broker::Priority::kNormal;
  request.background = true;
  if (!ParseEpoch(packet.arg[2], &request.when)) return Disposition::kClose;
  if (request.unique.size() > conn.limits().max_unique) {
    ReplyUniqueTooLarge(conn);
    return Disposition::kKeep;
  }
  SubmitIfPermitted(conn, request);
  return Disposition::kKeep;
}

// SUBMIT_REDUCE_JOB[_BACKGROUND]: FUNC\0UNIQ\0REDUCER\0AGGREGATOR\0DATA; the aggregator is
// accepted and ignored.
Disposition SubmitReduce(Connection& conn, const Packet& packet, bool background) {
  broker::SubmitRequest request;
  request.function = packet.arg[0];
  request.unique = packet.arg[1];
  request.reducer = packet.arg[2];
  request.data = packet.arg[4];
  request.priority = broker::Priority::kNormal;
  request.background = background;
  const size_t max_unique = conn.limits().max_unique;
  if (request.unique.size() > max_unique || request.reducer.size() > max_unique) {
    ReplyUniqueTooLarge(conn);
    return Disposition::kKeep;
  }
  SubmitIfPermitted(conn, request);
  return Disposition::kKeep;
}

// GET_STATUS: STATUS_RES HANDLE\0KNOWN\0RUNNING\0NUM\0DEN. An over-long handle cannot name a
// job, so it is answered "unknown" (gearmand drops the connection).
Disposition GetStatus(Connection& conn, const Packet& packet) {
  const std::string_view handle = packet.arg[0];
  broker::JobStatus status;
  if (handle.size() <= conn.limits().max_handle) status = conn.broker().GetStatus(handle);
  const Decimal num(status.known ? status.numerator : 0);
  const Decimal den(status.known ? status.denominator : 0);
  protocol::AppendPacket(
      conn.Out(), PacketType::kStatusRes,
      {handle, status.known ? "1" : "0", status.running ? "1" : "0", num.view(), den.view()});
  return Disposition::kKeep;
}

// GET_STATUS_UNIQUE: STATUS_RES_UNIQUE UNIQ\0KNOWN\0RUNNING\0NUM\0DEN\0CLIENTS. A unique longer
// than any stored one is answered "unknown" (gearmand sends nothing).
Disposition GetStatusUnique(Connection& conn, const Packet& packet) {
  const std::string_view unique = packet.arg[0];
  broker::JobStatus status;
  if (unique.size() <= conn.limits().max_unique) status = conn.broker().GetStatusUnique(unique);
  const Decimal num(status.known ? status.numerator : 0);
  const Decimal den(status.known ? status.denominator : 0);
  const Decimal clients(status.known ? status.clients : 0);
  protocol::AppendPacket(conn.Out(), PacketType::kStatusResUnique,
                         {unique, status.known ? "1" : "0", status.running ? "1" : "0", num.view(),
                          den.view(), clients.view()});
  return Disposition::kKeep;
}

// OPTION_REQ: only `exceptions` (any case) is known; the reply echoes the bytes as sent.
Disposition OptionReq(Connection& conn, const Packet& packet) {
  const std::string_view option = packet.arg[0];
  if (option.size() < conn.limits().max_option_name && EqualsIgnoreCase(option, "exceptions")) {
    conn.broker().SetExceptions(conn, true);
    protocol::AppendPacket(conn.Out(), PacketType::kOptionRes, {option});
  } else {
    protocol::AppendError(conn.Out(), "UNKNOWN_OPTION", "Server does not recognize given option");
  }
  return Disposition::kKeep;
}

}  // namespace

Family FamilyOf(PacketType type) {
  switch (type) {
    case PacketType::kSubmitJob:
    case PacketType::kSubmitJobBg:
    case PacketType::kSubmitJobHigh:
    case PacketType::kSubmitJobHighBg:
    case PacketType::kSubmitJobLow:
    case PacketType::kSubmitJobLowBg:
    case PacketType::kSubmitJobEpoch:
    case PacketType::kSubmitReduceJob:
    case PacketType::kSubmitReduceJobBackground:
    case PacketType::kGetStatus:
    case PacketType::kGetStatusUnique:
    case PacketType::kOptionReq:
    case PacketType::kEchoReq:
      return Family::kClient;
    case PacketType::kCanDo:
    case PacketType::kCantDo:
    case PacketType::kResetAbilities:
    case PacketType::kPreSleep:
    case PacketType::kGrabJob:
    case PacketType::kGrabJobUniq:
    case PacketType::kGrabJobAll:
    case PacketType::kWorkStatus:
    case PacketType::kWorkComplete:
    case PacketType::kWorkFail:
    case PacketType::kWorkException:
    case PacketType::kWorkData:
    case PacketType::kWorkWarning:
    case PacketType::kSetClientId:
    case PacketType::kCanDoTimeout:
      return Family::kWorker;
    default:
      // 5, 6, 8, 10, 11, 17, 19, 20, 24, 27, 31, 35, 40, 42 (and 0, which never gets here).
      return Family::kNotExpected;
  }
}

Disposition HandleClientPacket(Connection& conn, const Packet& packet) {
  using broker::Priority;
  switch (packet.type) {
    case PacketType::kSubmitJob:
      return Submit(conn, packet, Priority::kNormal, false);
    case PacketType::kSubmitJobBg:
      return Submit(conn, packet, Priority::kNormal, true);
    case PacketType::kSubmitJobHigh:
      return Submit(conn, packet, Priority::kHigh, false);
    case PacketType::kSubmitJobHighBg:
      return Submit(conn, packet, Priority::kHigh, true);
    case PacketType::kSubmitJobLow:
      return Submit(conn, packet, Priority::kLow, false);
    case PacketType::kSubmitJobLowBg:
      return Submit(conn, packet, Priority::kLow, true);
    case PacketType::kSubmitJobEpoch:
      return SubmitEpoch(conn, packet);
    case PacketType::kSubmitReduceJob:
      return SubmitReduce(conn, packet, false);
    case PacketType::kSubmitReduceJobBackground:
      return SubmitReduce(conn, packet, true);
    case PacketType::kGetStatus:
      return GetStatus(conn, packet);
    case PacketType::kGetStatusUnique:
      return GetStatusUnique(conn, packet);
    case PacketType::kOptionReq:
      return OptionReq(conn, packet);
    case PacketType::kEchoReq:
      protocol::AppendRawPacket(conn.Out(), PacketType::kEchoRes, packet.payload);
      return Disposition::kKeep;
    default:
      protocol::AppendError(conn.Out(), "INVALID_COMMAND", "Command not expected");
      return Disposition::kKeep;
  }
}

}  // namespace roundhouse::server
