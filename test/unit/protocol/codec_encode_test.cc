// Packet encoders, byte for byte against doc/protocol.md §2.1 and §2.2.
#include <catch2/catch.hpp>
#include <string>
#include <string_view>

#include "protocol/codec.h"
#include "test/unit/protocol/wire_bytes.h"

namespace roundhouse::protocol {
namespace {

using namespace std::literals;
using testing::Hex;

std::string Encode(PacketType type, std::initializer_list<std::string_view> args,
                   Magic magic = Magic::kResponse) {
  std::string out;
  AppendPacket(&out, type, args, magic);
  return out;
}

TEST_CASE("encoders reproduce the byte examples of doc/protocol.md §2.2", "[protocol]") {
  CHECK(Encode(PacketType::kCanDo, {"reverse"}, Magic::kRequest) ==
        Hex("00 52 45 51 | 00 00 00 01 | 00 00 00 07") + "reverse");
  CHECK(Encode(PacketType::kGrabJob, {}, Magic::kRequest) ==
        Hex("00 52 45 51 | 00 00 00 09 | 00 00 00 00"));
  CHECK(Encode(PacketType::kNoJob, {}) == Hex("00 52 45 53 | 00 00 00 0a | 00 00 00 00"));
  CHECK(Encode(PacketType::kPreSleep, {}, Magic::kRequest) ==
        Hex("00 52 45 51 | 00 00 00 04 | 00 00 00 00"));
  CHECK(Encode(PacketType::kSubmitJob, {"reverse", "", "test"}, Magic::kRequest) ==
        Hex("00 52 45 51 | 00 00 00 07 | 00 00 00 0d") + "reverse" + Hex("00 | 00") + "test");
  CHECK(Encode(PacketType::kJobCreated, {"H:lap:1"}) ==
        Hex("00 52 45 53 | 00 00 00 08 | 00 00 00 07") + "H:lap:1");
  CHECK(Encode(PacketType::kNoop, {}) == Hex("00 52 45 53 | 00 00 00 06 | 00 00 00 00"));
  CHECK(Encode(PacketType::kJobAssign, {"H:lap:1", "reverse", "test"}) ==
        Hex("00 52 45 53 | 00 00 00 0b | 00 00 00 14") + "H:lap:1" + Hex("00") + "reverse" +
            Hex("00") + "test");
  CHECK(Encode(PacketType::kWorkComplete, {"H:lap:1", "tset"}, Magic::kRequest) ==
        Hex("00 52 45 51 | 00 00 00 0d | 00 00 00 0c") + "H:lap:1" + Hex("00") + "tset");
  CHECK(Encode(PacketType::kWorkComplete, {"H:lap:1", "tset"}) ==
        Hex("00 52 45 53 | 00 00 00 0d | 00 00 00 0c") + "H:lap:1" + Hex("00") + "tset");
}

// The body of a single encoded packet.
std::string Body(const std::string& packet) { return packet.substr(kHeaderSize); }

TEST_CASE("encoders reproduce the payloads gearmand produces", "[protocol]") {
  std::string out;
  AppendError(&out, "UNKNOWN_OPTION", "Server does not recognize given option");
  CHECK(Body(out) == "UNKNOWN_OPTION\x00Server does not recognize given option"s);
  CHECK(Body(Encode(PacketType::kStatusRes, {"H:nohost:99", "0", "0", "0", "0"})) ==
        "H:nohost:99\x00"
        "0\x00"
        "0\x00"
        "0\x00"
        "0"s);
  CHECK(Body(Encode(PacketType::kStatusRes, {"H:vm:5", "1", "1", "1", "4"})) ==
        "H:vm:5\x00"
        "1\x00"
        "1\x00"
        "1\x00"
        "4"s);
  CHECK(Body(Encode(PacketType::kStatusResUnique, {"stu", "1", "1", "3", "7", "1"})) ==
        "stu\x00"
        "1\x00"
        "1\x00"
        "3\x00"
        "7\x00"
        "1"s);
  CHECK(Body(Encode(PacketType::kJobAssignUniq, {"H:vm:2", "fn", "", "hi"})) ==
        "H:vm:2\x00"
        "fn\x00\x00"
        "hi"s);
  CHECK(Body(Encode(PacketType::kJobAssignUniq, {"H:vm:1", "fn", "u1", "payload1"})) ==
        "H:vm:1\x00"
        "fn\x00"
        "u1\x00"
        "payload1"s);
}

TEST_CASE("AppendError writes an ERROR response with CODE and TEXT", "[protocol]") {
  std::string out;
  AppendError(&out, "INVALID_PACKET", "Packet is missing arguments");
  const std::string body = "INVALID_PACKET\0Packet is missing arguments"s;
  CHECK(out == Hex("00 52 45 53 | 00 00 00 13") + Hex("00 00 00") +
                   std::string(1, static_cast<char>(body.size())) + body);
}

TEST_CASE("AppendRawPacket forwards a payload unchanged", "[protocol]") {
  std::string raw;
  AppendRawPacket(&raw, PacketType::kWorkStatus,
                  "H:1\0"
                  "1\0"
                  "4"sv);
  CHECK(raw == Encode(PacketType::kWorkStatus, {"H:1", "1", "4"}));
  std::string request;
  AppendRawPacket(&request, PacketType::kEchoReq, "", Magic::kRequest);
  CHECK(request == Hex("00 52 45 51 | 00 00 00 10 | 00 00 00 00"));
}

TEST_CASE("encoders append after existing output", "[protocol]") {
  std::string out = "before";
  AppendPacket(&out, PacketType::kNoop, {});
  AppendRawPacket(&out, PacketType::kEchoRes, "x");
  CHECK(out == "before" + Hex("00 52 45 53 00 00 00 06 00 00 00 00") +
                   Hex("00 52 45 53 00 00 00 11 00 00 00 01") + "x");
}

TEST_CASE("a single empty argument encodes as an empty body", "[protocol]") {
  CHECK(Encode(PacketType::kEchoRes, {""}) == Encode(PacketType::kEchoRes, {}));
}

TEST_CASE("encoded packets parse back into the same arguments", "[protocol]") {
  const std::string bytes =
      Encode(PacketType::kSubmitJobSched, {"f", "u", "1", "2", "3", "4", "5", "da\0ta"sv},
             Magic::kRequest);
  Frame frame;
  size_t consumed = 0;
  REQUIRE(ParseFrame(bytes, Limits{}, &consumed, &frame) == ParseResult::kOk);
  CHECK(consumed == bytes.size());
  REQUIRE(frame.kind == FrameKind::kPacket);
  REQUIRE(frame.packet.count == 8);
  CHECK(frame.packet.arg[0] == "f");
  CHECK(frame.packet.arg[6] == "5");
  CHECK(frame.packet.arg[7] == "da\0ta"sv);
}

}  // namespace
}  // namespace roundhouse::protocol
