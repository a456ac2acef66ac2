// The per-type table behind RuleFor() and Name(), transcribed from doc/protocol.md §2 (which
// follows gearmand libgearman/command.cc). Index = packet type number.
#include "protocol/packet.h"

#include <cassert>

namespace roundhouse::protocol {
namespace {

struct TypeInfo {
  std::string_view name;
  ArgRule rule;
};

// `{N, true}` is N/yes, `{N, false}` is N/no; `{0, false}` means no arguments, payload ignored.
constexpr std::array<TypeInfo, kMaxPacketType + 1> kTypes = {{
    {"TEXT", {0, false}},                         // 0, internal
    {"CAN_DO", {1, false}},                       // 1
    {"CANT_DO", {1, false}},                      // 2
    {"RESET_ABILITIES", {0, false}},              // 3
    {"PRE_SLEEP", {0, false}},                    // 4
    {"UNUSED", {0, false}},                       // 5
    {"NOOP", {0, false}},                         // 6
    {"SUBMIT_JOB", {2, true}},                    // 7
    {"JOB_CREATED", {1, false}},                  // 8
    {"GRAB_JOB", {0, false}},                     // 9
    {"NO_JOB", {0, false}},                       // 10
    {"JOB_ASSIGN", {2, true}},                    // 11
    {"WORK_STATUS", {3, false}},                  // 12
    {"WORK_COMPLETE", {1, true}},                 // 13
    {"WORK_FAIL", {1, false}},                    // 14
    {"GET_STATUS", {1, false}},                   // 15
    {"ECHO_REQ", {0, true}},                      // 16
    {"ECHO_RES", {0, true}},                      // 17
    {"SUBMIT_JOB_BG", {2, true}},                 // 18
    {"ERROR", {2, false}},                        // 19
    {"STATUS_RES", {5, false}},                   // 20
    {"SUBMIT_JOB_HIGH", {2, true}},               // 21
    {"SET_CLIENT_ID", {1, false}},                // 22
    {"CAN_DO_TIMEOUT", {2, false}},               // 23
    {"ALL_YOURS", {0, false}},                    // 24
    {"WORK_EXCEPTION", {1, true}},                // 25
    {"OPTION_REQ", {1, false}},                   // 26
    {"OPTION_RES", {1, false}},                   // 27
    {"WORK_DATA", {1, true}},                     // 28
    {"WORK_WARNING", {1, true}},                  // 29
    {"GRAB_JOB_UNIQ", {0, false}},                // 30
    {"JOB_ASSIGN_UNIQ", {3, true}},               // 31
    {"SUBMIT_JOB_HIGH_BG", {2, true}},            // 32
    {"SUBMIT_JOB_LOW", {2, true}},                // 33
    {"SUBMIT_JOB_LOW_BG", {2, true}},             // 34
    {"SUBMIT_JOB_SCHED", {7, true}},              // 35
    {"SUBMIT_JOB_EPOCH", {3, true}},              // 36
    {"SUBMIT_REDUCE_JOB", {4, true}},             // 37
    {"SUBMIT_REDUCE_JOB_BACKGROUND", {4, true}},  // 38
    {"GRAB_JOB_ALL", {0, false}},                 // 39
    {"JOB_ASSIGN_ALL", {4, true}},                // 40
    {"GET_STATUS_UNIQUE", {1, false}},            // 41
    {"STATUS_RES_UNIQUE", {6, false}},            // 42
}};

// Packet::arg must hold the widest split: N arguments plus DATA.
constexpr bool FitsPacketArgs() {
  for (const TypeInfo& t : kTypes) {
    if (t.rule.args + (t.rule.data ? 1u : 0u) > std::tuple_size_v<decltype(Packet::arg)>) {
      return false;
    }
  }
  return true;
}
static_assert(FitsPacketArgs(), "Packet::arg is too small for some type's argument rule");

}  // namespace

ArgRule RuleFor(PacketType type) {
  const auto index = static_cast<uint32_t>(type);
  assert(index <= kMaxPacketType);
  if (index > kMaxPacketType) return ArgRule{0, false};
  return kTypes[index].rule;
}

std::string_view Name(PacketType type) {
  const auto index = static_cast<uint32_t>(type);
  if (index > kMaxPacketType) return "UNKNOWN";
  return kTypes[index].name;
}

}  // namespace roundhouse::protocol
