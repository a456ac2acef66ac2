// ParseFrame on binary packets: framing, split reads, pipelining, magic and type checks, the body
// limit and bounded argument splitting (doc/protocol.md §1).
#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/codec.h"
#include "test/unit/protocol/wire_bytes.h"

namespace roundhouse::protocol {
namespace {

using namespace std::literals;
using testing::Header;
using testing::Hex;
using testing::Request;

// Parses exactly one frame and requires that it took all of `in`. The frame borrows from `in`,
// so a temporary string is refused at compile time.
Frame ParseWhole(std::string&& in, const Limits& limits = {}) = delete;
Frame ParseWhole(std::string_view in, const Limits& limits = {}) {
  Frame frame;
  size_t consumed = 0;
  REQUIRE(ParseFrame(in, limits, &consumed, &frame) == ParseResult::kOk);
  REQUIRE(consumed == in.size());
  return frame;
}

ParseResult ParseOnly(std::string_view in, const Limits& limits = {}) {
  Frame frame;
  size_t consumed = 0;
  return ParseFrame(in, limits, &consumed, &frame);
}

TEST_CASE("parser needs more on empty input", "[protocol]") {
  CHECK(ParseOnly("") == ParseResult::kNeedMore);
}

TEST_CASE("parser reads the SUBMIT_JOB bytes of doc/protocol.md §2.2 as function, unique and data", "[protocol]") {
  const std::string in = Hex("00 52 45 51 | 00 00 00 07 | 00 00 00 0d") + "reverse\0\0test"s;
  const Frame frame = ParseWhole(in);
  CHECK(frame.kind == FrameKind::kPacket);
  CHECK(frame.packet.magic == Magic::kRequest);
  CHECK(frame.packet.type == PacketType::kSubmitJob);
  CHECK(frame.packet.payload == "reverse\0\0test"sv);
  REQUIRE(frame.packet.count == 3);
  CHECK(frame.packet.arg[0] == "reverse");
  CHECK(frame.packet.arg[1] == "");
  CHECK(frame.packet.arg[2] == "test");
}

TEST_CASE("parser returns need-more at every split point of a packet", "[protocol]") {
  const std::string in = Request(PacketType::kSubmitJob, "reverse\0uniq\0test"sv);
  for (size_t cut = 0; cut < in.size(); ++cut) {
    INFO("cut at " << cut);
    Frame frame;
    frame.error = "untouched";
    size_t consumed = 12345;
    CHECK(ParseFrame(std::string_view(in).substr(0, cut), Limits{}, &consumed, &frame) ==
          ParseResult::kNeedMore);
    CHECK(consumed == 12345);
    CHECK(frame.error == std::string_view("untouched"));
  }
  CHECK(ParseWhole(in).packet.arg[1] == "uniq");
}

TEST_CASE("parser waits for the whole header even when the magic is already wrong", "[protocol]") {
  // gearmand decides only on a complete header; so do we.
  CHECK(ParseOnly("\0XYZ\0\0\0\x01"sv) == ParseResult::kNeedMore);
}

TEST_CASE("parser reads a thousand pipelined ECHO_REQ from one buffer", "[protocol]") {
  std::string in;
  for (int i = 0; i < 1000; ++i) in += Request(PacketType::kEchoReq, "ping " + std::to_string(i));
  std::string_view rest = in;
  for (int i = 0; i < 1000; ++i) {
    Frame frame;
    size_t consumed = 0;
    REQUIRE(ParseFrame(rest, Limits{}, &consumed, &frame) == ParseResult::kOk);
    REQUIRE(frame.kind == FrameKind::kPacket);
    REQUIRE(frame.packet.type == PacketType::kEchoReq);
    REQUIRE(frame.packet.count == 1);
    CHECK(frame.packet.arg[0] == "ping " + std::to_string(i));
    rest.remove_prefix(consumed);
  }
  CHECK(rest.empty());
}

TEST_CASE("parser decides text or binary at every frame boundary", "[protocol]") {
  const std::string in = Request(PacketType::kEchoReq, "hi") + "version\r\n" +
                         Request(PacketType::kSubmitJob, "f\0u\0d"sv) + "status\n" +
                         Request(PacketType::kGrabJob, "");
  std::string_view rest = in;
  std::vector<std::string> seen;
  while (!rest.empty()) {
    Frame frame;
    size_t consumed = 0;
    REQUIRE(ParseFrame(rest, Limits{}, &consumed, &frame) == ParseResult::kOk);
    if (frame.kind == FrameKind::kText) {
      seen.push_back("text:" + std::string(frame.text));
    } else {
      REQUIRE(frame.kind == FrameKind::kPacket);
      seen.push_back(std::string(Name(frame.packet.type)));
    }
    rest.remove_prefix(consumed);
  }
  CHECK(seen == std::vector<std::string>{"ECHO_REQ", "text:version", "SUBMIT_JOB", "text:status",
                                         "GRAB_JOB"});
}

TEST_CASE("parser accepts \\0RES magic and reports it as a response packet", "[protocol]") {
  const std::string in = Header(kResponseMagic, 16, 2) + "hi";
  const Frame frame = ParseWhole(in);
  CHECK(frame.kind == FrameKind::kPacket);
  CHECK(frame.packet.magic == Magic::kResponse);
  CHECK(frame.packet.type == PacketType::kEchoReq);
  CHECK(frame.packet.arg[0] == "hi");
}

TEST_CASE("parser closes on a bad magic", "[protocol]") {
  for (std::string_view magic : {"\0REX"sv, "\0req"sv, "\0RE\0"sv, "\0\0\0\0"sv}) {
    Frame frame;
    size_t consumed = 0;
    CHECK(ParseFrame(Header(magic, 16, 0), Limits{}, &consumed, &frame) == ParseResult::kError);
    CHECK(frame.error != nullptr);
  }
}

TEST_CASE("parser closes on type 0 and on types above 42", "[protocol]") {
  CHECK(ParseOnly(Header(kRequestMagic, 0, 0)) == ParseResult::kError);
  CHECK(ParseOnly(Header(kRequestMagic, 43, 0)) == ParseResult::kError);
  CHECK(ParseOnly(Header(kRequestMagic, 0xffffffffu, 0)) == ParseResult::kError);
  CHECK(ParseOnly(Header(kRequestMagic, 0x0100000du, 0)) == ParseResult::kError);
  CHECK(ParseOnly(Header(kRequestMagic, 42, 0)) == ParseResult::kOk);
  CHECK(ParseOnly(Header(kRequestMagic, 1, 0)) == ParseResult::kOk);
}

TEST_CASE("parser accepts a body exactly at the limit", "[protocol]") {
  Limits limits;
  limits.max_packet_body = 16;
  const std::string in = Request(PacketType::kEchoReq, std::string(16, 'x'));
  const Frame frame = ParseWhole(in, limits);
  CHECK(frame.kind == FrameKind::kPacket);
  CHECK(frame.packet.arg[0].size() == 16);
}

TEST_CASE("parser rejects a body one byte over the limit after the header alone", "[protocol]") {
  Limits limits;
  limits.max_packet_body = 16;
  const std::string in = Request(PacketType::kEchoReq, std::string(17, 'x'));
  Frame frame;
  size_t consumed = 0;
  // Decided from the header: the body is never buffered.
  REQUIRE(ParseFrame(std::string_view(in).substr(0, kHeaderSize), limits, &consumed, &frame) ==
          ParseResult::kOk);
  CHECK(frame.kind == FrameKind::kOversized);
  CHECK(consumed == kHeaderSize);
  CHECK(frame.discard == 17);
  CHECK(frame.packet.type == PacketType::kEchoReq);
}

TEST_CASE("parser applies the default 64 MiB body limit", "[protocol]") {
  constexpr uint32_t kLimit = 64u * 1024 * 1024;
  CHECK(ParseOnly(Header(kRequestMagic, 16, kLimit)) == ParseResult::kNeedMore);
  Frame frame;
  size_t consumed = 0;
  REQUIRE(ParseFrame(Header(kRequestMagic, 16, kLimit + 1), Limits{}, &consumed, &frame) ==
          ParseResult::kOk);
  CHECK(frame.kind == FrameKind::kOversized);
  CHECK(frame.discard == kLimit + 1);
  REQUIRE(ParseFrame(Header(kRequestMagic, 16, 0xffffffffu), Limits{}, &consumed, &frame) ==
          ParseResult::kOk);
  CHECK(frame.discard == 0xffffffffu);
}

// Parses `in` as one packet that lacks separators, then checks the next packet is intact.
void CheckMissingArgumentsThenNextPacket(const std::string& bad) {
  const std::string next = Request(PacketType::kEchoReq, "after");
  const std::string in = bad + next;
  Frame frame;
  size_t consumed = 0;
  REQUIRE(ParseFrame(in, Limits{}, &consumed, &frame) == ParseResult::kOk);
  CHECK(frame.kind == FrameKind::kMissingArguments);
  CHECK(consumed == bad.size());
  CHECK(frame.packet.payload == std::string_view(bad).substr(kHeaderSize));
  const Frame after = ParseWhole(std::string_view(in).substr(consumed));
  CHECK(after.packet.type == PacketType::kEchoReq);
  CHECK(after.packet.arg[0] == "after");
}

TEST_CASE("SUBMIT_JOB without separators is missing arguments and does not swallow the next",
          "[protocol]") {
  const std::string bad = Request(PacketType::kSubmitJob, "reverse");
  CheckMissingArgumentsThenNextPacket(bad);
  Frame frame;
  size_t consumed = 0;
  REQUIRE(ParseFrame(bad, Limits{}, &consumed, &frame) == ParseResult::kOk);
  CHECK(frame.packet.type == PacketType::kSubmitJob);
}

TEST_CASE("WORK_STATUS with one argument is missing arguments", "[protocol]") {
  CheckMissingArgumentsThenNextPacket(Request(PacketType::kWorkStatus, "H:lap:1"));
  CheckMissingArgumentsThenNextPacket(Request(PacketType::kWorkStatus, "H:lap:1\0"s + "1"));
}

TEST_CASE("3-argument SUBMIT_REDUCE_JOB is missing arguments", "[protocol]") {
  CheckMissingArgumentsThenNextPacket(
      Request(PacketType::kSubmitReduceJob, "fn\0uniq\0reducer\0data"sv));
}

TEST_CASE("SUBMIT_REDUCE_JOB as libgearman sends it has an empty aggregator", "[protocol]") {
  const std::string in = Request(PacketType::kSubmitReduceJob, "fn\0uniq\0reducer\0\0data"sv);
  const Frame frame = ParseWhole(in);
  REQUIRE(frame.kind == FrameKind::kPacket);
  REQUIRE(frame.packet.count == 5);
  CHECK(frame.packet.arg[2] == "reducer");
  CHECK(frame.packet.arg[3] == "");
  CHECK(frame.packet.arg[4] == "data");
}

TEST_CASE("a 0/no packet with junk payload parses with no arguments", "[protocol]") {
  const std::string in = Request(PacketType::kGrabJob, "junk");
  const Frame frame = ParseWhole(in);
  CHECK(frame.kind == FrameKind::kPacket);
  CHECK(frame.packet.type == PacketType::kGrabJob);
  CHECK(frame.packet.count == 0);
  CHECK(frame.packet.payload == "junk");
}

TEST_CASE("the last argument of an N/no packet keeps embedded separators", "[protocol]") {
  const std::string in = Request(PacketType::kWorkStatus, "H:1\0003\0004\0005"sv);
  const Frame frame = ParseWhole(in);
  REQUIRE(frame.packet.count == 3);
  CHECK(frame.packet.arg[0] == "H:1");
  CHECK(frame.packet.arg[1] == "3");
  CHECK(frame.packet.arg[2] == "4\0005"sv);
}

TEST_CASE("DATA of an N/yes packet may be empty or contain separators", "[protocol]") {
  const std::string submit = Request(PacketType::kSubmitJob, "f\0u\0"sv);
  Frame frame = ParseWhole(submit);
  REQUIRE(frame.packet.count == 3);
  CHECK(frame.packet.arg[2].empty());
  const std::string complete = Request(PacketType::kWorkComplete, "H:1\0a\0b\0"sv);
  frame = ParseWhole(complete);
  REQUIRE(frame.packet.count == 2);
  CHECK(frame.packet.arg[1] == "a\0b\0"sv);
}

TEST_CASE("ECHO_REQ with an empty body has one empty DATA argument", "[protocol]") {
  const std::string in = Request(PacketType::kEchoReq, "");
  const Frame frame = ParseWhole(in);
  REQUIRE(frame.packet.count == 1);
  CHECK(frame.packet.arg[0].empty());
}

TEST_CASE("parsed argument views point into the input buffer", "[protocol]") {
  const std::string in = Request(PacketType::kJobAssignAll, "H\0f\0u\0r\0data"sv);
  const Frame frame = ParseWhole(in);
  REQUIRE(frame.packet.count == 5);
  for (size_t i = 0; i < frame.packet.count; ++i) {
    CHECK(frame.packet.arg[i].data() >= in.data());
    CHECK(frame.packet.arg[i].data() + frame.packet.arg[i].size() <= in.data() + in.size());
  }
}

}  // namespace
}  // namespace roundhouse::protocol
