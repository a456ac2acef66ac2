// The argument rule and name of every packet type (doc/protocol.md §1.2, §2), checked against a
// transcription of the table in doc/protocol.md §2 and by splitting a payload built for each rule.
#include "protocol/packet.h"

#include <catch2/catch.hpp>
#include <iterator>
#include <string>

#include "protocol/codec.h"

namespace roundhouse::protocol {
namespace {

struct SpecRow {
  const char* name;
  uint32_t type;
  uint8_t args;
  bool data;
};

// §2, column "payload (rule)"; types without a rule in the table (5, 6, 10, 24 and the
// bodiless responses) follow gearmand's command.cc as doc/protocol.md §1.2 says.
constexpr SpecRow kSpec[] = {
    {"CAN_DO", 1, 1, false},
    {"CANT_DO", 2, 1, false},
    {"RESET_ABILITIES", 3, 0, false},
    {"PRE_SLEEP", 4, 0, false},
    {"UNUSED", 5, 0, false},
    {"NOOP", 6, 0, false},
    {"SUBMIT_JOB", 7, 2, true},
    {"JOB_CREATED", 8, 1, false},
    {"GRAB_JOB", 9, 0, false},
    {"NO_JOB", 10, 0, false},
    {"JOB_ASSIGN", 11, 2, true},
    {"WORK_STATUS", 12, 3, false},
    {"WORK_COMPLETE", 13, 1, true},
    {"WORK_FAIL", 14, 1, false},
    {"GET_STATUS", 15, 1, false},
    {"ECHO_REQ", 16, 0, true},
    {"ECHO_RES", 17, 0, true},
    {"SUBMIT_JOB_BG", 18, 2, true},
    {"ERROR", 19, 2, false},
    {"STATUS_RES", 20, 5, false},
    {"SUBMIT_JOB_HIGH", 21, 2, true},
    {"SET_CLIENT_ID", 22, 1, false},
    {"CAN_DO_TIMEOUT", 23, 2, false},
    {"ALL_YOURS", 24, 0, false},
    {"WORK_EXCEPTION", 25, 1, true},
    {"OPTION_REQ", 26, 1, false},
    {"OPTION_RES", 27, 1, false},
    {"WORK_DATA", 28, 1, true},
    {"WORK_WARNING", 29, 1, true},
    {"GRAB_JOB_UNIQ", 30, 0, false},
    {"JOB_ASSIGN_UNIQ", 31, 3, true},
    {"SUBMIT_JOB_HIGH_BG", 32, 2, true},
    {"SUBMIT_JOB_LOW", 33, 2, true},
    {"SUBMIT_JOB_LOW_BG", 34, 2, true},
    {"SUBMIT_JOB_SCHED", 35, 7, true},
    {"SUBMIT_JOB_EPOCH", 36, 3, true},
    {"SUBMIT_REDUCE_JOB", 37, 4, true},
    {"SUBMIT_REDUCE_JOB_BACKGROUND", 38, 4, true},
    {"GRAB_JOB_ALL", 39, 0, false},
    {"JOB_ASSIGN_ALL", 40, 4, true},
    {"GET_STATUS_UNIQUE", 41, 1, false},
    {"STATUS_RES_UNIQUE", 42, 6, false},
};
static_assert(std::size(kSpec) == kMaxPacketType);

// Number of `\0` separators a rule requires.
size_t Separators(const SpecRow& row) {
  if (row.args == 0) return 0;
  return row.data ? row.args : row.args - 1u;
}

// "a0\0a1\0...": `separators` terminated arguments, then a tail with an embedded `\0` (the last
// argument or DATA may contain one).
std::string PayloadWith(size_t separators) {
  std::string payload;
  for (size_t i = 0; i < separators; ++i) {
    payload += "a" + std::to_string(i);
    payload.push_back('\0');
  }
  payload += std::string("tail\0end", 8);
  return payload;
}

TEST_CASE("every packet type has the argument rule of the doc/protocol.md table", "[protocol]") {
  for (const SpecRow& row : kSpec) {
    INFO("type " << row.type << " " << row.name);
    const ArgRule rule = RuleFor(static_cast<PacketType>(row.type));
    CHECK(rule.args == row.args);
    CHECK(rule.data == row.data);
  }
}

TEST_CASE("the rules doc/protocol.md singles out are right", "[protocol]") {
  CHECK(RuleFor(PacketType::kSubmitJob).args == 2);
  CHECK(RuleFor(PacketType::kSubmitJob).data);
  CHECK(RuleFor(PacketType::kSubmitReduceJob).args == 4);
  CHECK(RuleFor(PacketType::kSubmitReduceJob).data);
  CHECK(RuleFor(PacketType::kWorkStatus).args == 3);
  CHECK_FALSE(RuleFor(PacketType::kWorkStatus).data);
  CHECK(RuleFor(PacketType::kCanDoTimeout).args == 2);
  CHECK_FALSE(RuleFor(PacketType::kCanDoTimeout).data);
  CHECK(RuleFor(PacketType::kEchoReq).args == 0);
  CHECK(RuleFor(PacketType::kEchoReq).data);
  CHECK(RuleFor(PacketType::kJobAssignAll).args == 4);
  CHECK(RuleFor(PacketType::kJobAssignAll).data);
  CHECK(RuleFor(PacketType::kStatusRes).args == 5);
  CHECK_FALSE(RuleFor(PacketType::kStatusRes).data);
}

TEST_CASE("every packet type is named as in doc/protocol.md", "[protocol]") {
  for (const SpecRow& row : kSpec) {
    CHECK(Name(static_cast<PacketType>(row.type)) == row.name);
  }
  CHECK(Name(PacketType::kText) == "TEXT");
  CHECK(Name(static_cast<PacketType>(43)) == "UNKNOWN");
  CHECK(Name(static_cast<PacketType>(0xffffffffu)) == "UNKNOWN");
}

TEST_CASE("every packet type splits a payload with exactly its separators", "[protocol]") {
  for (const SpecRow& row : kSpec) {
    INFO("type " << row.type << " " << row.name);
    const auto type = static_cast<PacketType>(row.type);
    const std::string payload = PayloadWith(Separators(row));
    Packet packet;
    REQUIRE(SplitArguments(type, payload, &packet));
    if (row.args == 0 && !row.data) {
      CHECK(packet.count == 0);  // 0/no: payload ignored
      continue;
    }
    REQUIRE(packet.count == row.args + (row.data ? 1 : 0));
    for (size_t i = 0; i + 1 < packet.count; ++i) {
      CHECK(packet.arg[i] == "a" + std::to_string(i));
    }
    CHECK(packet.arg[packet.count - 1] == std::string_view("tail\0end", 8));
  }
}

TEST_CASE("every packet type with separators rejects a payload one separator short", "[protocol]") {
  for (const SpecRow& row : kSpec) {
    if (Separators(row) == 0) continue;
    INFO("type " << row.type << " " << row.name);
    std::string payload;
    for (size_t i = 0; i + 1 < Separators(row); ++i) payload += std::string("x\0", 2);
    payload += "no-separator";
    Packet packet;
    CHECK_FALSE(SplitArguments(static_cast<PacketType>(row.type), payload, &packet));
  }
}

TEST_CASE("types without separators accept an empty payload", "[protocol]") {
  Packet packet;
  REQUIRE(SplitArguments(PacketType::kCanDo, "", &packet));
  CHECK(packet.count == 1);
  CHECK(packet.arg[0].empty());
  REQUIRE(SplitArguments(PacketType::kEchoReq, "", &packet));
  CHECK(packet.count == 1);
  CHECK(packet.arg[0].empty());
  REQUIRE(SplitArguments(PacketType::kGrabJob, "", &packet));
  CHECK(packet.count == 0);
}

TEST_CASE("splitting refuses type numbers outside 1..42", "[protocol]") {
  Packet packet;
  CHECK_FALSE(SplitArguments(PacketType::kText, "x", &packet));
  CHECK_FALSE(SplitArguments(static_cast<PacketType>(43), "x", &packet));
}

}  // namespace
}  // namespace roundhouse::protocol
