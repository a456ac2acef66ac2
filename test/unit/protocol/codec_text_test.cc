// ParseFrame on admin text lines: line endings, the 8191-byte line limit, split reads
// (doc/protocol.md §1.3, §1.4, §4.1).
#include <catch2/catch.hpp>
#include <string>
#include <string_view>

#include "protocol/codec.h"

namespace roundhouse::protocol {
namespace {

using namespace std::literals;

struct Parsed {
  ParseResult result;
  size_t consumed = 0;
  Frame frame;
};

Parsed Parse(std::string_view in, const Limits& limits = {}) {
  Parsed p;
  p.result = ParseFrame(in, limits, &p.consumed, &p.frame);
  return p;
}

TEST_CASE("text line ending in \\n is one frame without the newline", "[protocol]") {
  const Parsed p = Parse("version\nstatus\n");
  REQUIRE(p.result == ParseResult::kOk);
  CHECK(p.frame.kind == FrameKind::kText);
  CHECK(p.frame.text == "version");
  CHECK(p.consumed == 8);
}

TEST_CASE("text line loses one \\r before its \\n", "[protocol]") {
  Parsed p = Parse("status\r\n");
  REQUIRE(p.result == ParseResult::kOk);
  CHECK(p.frame.text == "status");
  CHECK(p.consumed == 8);

  p = Parse("status\r\r\n");
  REQUIRE(p.result == ParseResult::kOk);
  CHECK(p.frame.text == "status\r");
}

TEST_CASE("empty text lines are frames with empty text", "[protocol]") {
  Parsed p = Parse("\n");
  REQUIRE(p.result == ParseResult::kOk);
  CHECK(p.frame.kind == FrameKind::kText);
  CHECK(p.frame.text.empty());
  CHECK(p.consumed == 1);

  p = Parse("\r\n");
  REQUIRE(p.result == ParseResult::kOk);
  CHECK(p.frame.text.empty());
  CHECK(p.consumed == 2);
}

TEST_CASE("text line without its newline needs more at every split point", "[protocol]") {
  const std::string line = "show unique jobs\r\n";
  for (size_t cut = 0; cut < line.size(); ++cut) {
    INFO("cut at " << cut);
    CHECK(Parse(std::string_view(line).substr(0, cut)).result == ParseResult::kNeedMore);
  }
  CHECK(Parse(line).frame.text == "show unique jobs");
}

TEST_CASE("only the first byte decides text: later NUL bytes stay in the line", "[protocol]") {
  const Parsed p = Parse("a\0b\n"sv);
  REQUIRE(p.result == ParseResult::kOk);
  CHECK(p.frame.kind == FrameKind::kText);
  CHECK(p.frame.text == "a\0b"sv);
}

TEST_CASE("text line of 8191 bytes plus newline is accepted", "[protocol]") {
  const std::string line = std::string(8191, 'a') + "\n";
  const Parsed p = Parse(line);
  REQUIRE(p.result == ParseResult::kOk);
  CHECK(p.frame.text.size() == 8191);
  CHECK(p.consumed == 8192);
}

TEST_CASE("text line of 8192 bytes plus newline closes the connection", "[protocol]") {
  const Parsed p = Parse(std::string(8192, 'a') + "\n");
  CHECK(p.result == ParseResult::kError);
  CHECK(p.frame.error != nullptr);
}

TEST_CASE("the \\r counts toward the text line limit", "[protocol]") {
  CHECK(Parse(std::string(8190, 'a') + "\r\n").result == ParseResult::kOk);
  CHECK(Parse(std::string(8191, 'a') + "\r\n").result == ParseResult::kError);
}

TEST_CASE("8191 buffered bytes without newline need more; 8192 close", "[protocol]") {
  CHECK(Parse(std::string(8191, 'a')).result == ParseResult::kNeedMore);
  CHECK(Parse(std::string(8192, 'a')).result == ParseResult::kError);
}

TEST_CASE("text line limit follows Limits::max_text_line", "[protocol]") {
  Limits limits;
  limits.max_text_line = 4;
  CHECK(Parse("abcd\n", limits).result == ParseResult::kOk);
  CHECK(Parse("abcde\n", limits).result == ParseResult::kError);
  CHECK(Parse("abcd", limits).result == ParseResult::kNeedMore);
  CHECK(Parse("abcde", limits).result == ParseResult::kError);
  limits.max_text_line = 0;
  CHECK(Parse("\n", limits).result == ParseResult::kOk);
  CHECK(Parse("a", limits).result == ParseResult::kError);
}

TEST_CASE("a newline past the limit does not rescue an overlong line", "[protocol]") {
  Limits limits;
  limits.max_text_line = 4;
  CHECK(Parse("abcdefgh\nok\n", limits).result == ParseResult::kError);
}

}  // namespace
}  // namespace roundhouse::protocol
