// Gearman binary packet types and the table that says how each payload splits into arguments
// (doc/protocol.md §1.2, §2). Pure data; no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace roundhouse::protocol {

enum class PacketType : uint32_t {
  kText = 0,  // internal marker, never valid on the wire
  kCanDo = 1,
  kCantDo = 2,
  kResetAbilities = 3,
  kPreSleep = 4,
  kUnused5 = 5,
  kNoop = 6,
  kSubmitJob = 7,
  kJobCreated = 8,
  kGrabJob = 9,
  kNoJob = 10,
  kJobAssign = 11,
  kWorkStatus = 12,
  kWorkComplete = 13,
  kWorkFail = 14,
  kGetStatus = 15,
  kEchoReq = 16,
  kEchoRes = 17,
  kSubmitJobBg = 18,
  kError = 19,
  kStatusRes = 20,
  kSubmitJobHigh = 21,
  kSetClientId = 22,
  kCanDoTimeout = 23,
  kAllYours = 24,
  kWorkException = 25,
  kOptionReq = 26,
  kOptionRes = 27,
  kWorkData = 28,
  kWorkWarning = 29,
  kGrabJobUniq = 30,
  kJobAssignUniq = 31,
  kSubmitJobHighBg = 32,
  kSubmitJobLow = 33,
  kSubmitJobLowBg = 34,
  kSubmitJobSched = 35,
  kSubmitJobEpoch = 36,
  kSubmitReduceJob = 37,
  kSubmitReduceJobBackground = 38,
  kGrabJobAll = 39,
  kJobAssignAll = 40,
  kGetStatusUnique = 41,
  kStatusResUnique = 42,
};

inline constexpr uint32_t kMaxPacketType = 42;
inline constexpr size_t kHeaderSize = 12;
inline constexpr std::string_view kRequestMagic{"\0REQ", 4};
inline constexpr std::string_view kResponseMagic{"\0RES", 4};

enum class Magic : uint8_t { kRequest, kResponse };

// How a payload splits (gearmand libgearman/command.cc): `args` arguments, and whether the rest of
// the payload after them is a separate DATA part (N/yes) or the last argument itself (N/no).
struct ArgRule {
  uint8_t args;
  bool data;
};

// Rule for a type in 1..kMaxPacketType. Precondition: type is in range.
ArgRule RuleFor(PacketType type);

// Upper-case protocol name ("SUBMIT_JOB"), or "UNKNOWN" out of range. For logs and tests.
std::string_view Name(PacketType type);

// A packet's arguments split out of the payload. The string_views borrow from the input buffer
// the packet was parsed from; they are valid until that buffer is consumed or modified.
struct Packet {
  Magic magic = Magic::kRequest;
  PacketType type = PacketType::kText;
  std::string_view payload;              // whole body, as received
  std::array<std::string_view, 8> arg;   // arg[0..count-1]; DATA (N/yes rule) is arg[count-1]
  uint8_t count = 0;                     // number of filled entries in arg
};

}  // namespace roundhouse::protocol
