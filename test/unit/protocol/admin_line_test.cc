// Admin text lines: tokenising (doc/protocol.md §4.1), ERR encodings (§4.2, §4.3) and gearmand's
// lenient decimal parsing.
#include "protocol/admin_line.h"

#include <catch2/catch.hpp>
#include <climits>
#include <string>
#include <string_view>
#include <vector>

namespace roundhouse::protocol {
namespace {

using Tokens = std::vector<std::string_view>;

Tokens Split(std::string_view line) {
  Tokens tokens;
  REQUIRE(Tokenize(line, Limits{}, &tokens));
  return tokens;
}

TEST_CASE("tokenizer splits on single spaces", "[protocol]") {
  CHECK(Split("status") == Tokens{"status"});
  CHECK(Split("cancel job H:vm:1") == Tokens{"cancel", "job", "H:vm:1"});
}

TEST_CASE("tokenizer treats a run of spaces as one separator", "[protocol]") {
  CHECK(Split("show   unique  jobs") == Tokens{"show", "unique", "jobs"});
}

TEST_CASE("tokenizer ignores trailing spaces", "[protocol]") {
  CHECK(Split("workers   ") == Tokens{"workers"});
  CHECK(Split("maxqueue fn 3 ") == Tokens{"maxqueue", "fn", "3"});
}

TEST_CASE("tokenizer yields an empty first token for a leading space", "[protocol]") {
  CHECK(Split(" status") == Tokens{"", "status"});
  CHECK(Split("   status  x") == Tokens{"", "status", "x"});
}

TEST_CASE("tokenizer yields one empty token for an empty or all-space line", "[protocol]") {
  CHECK(Split("") == Tokens{""});
  CHECK(Split("    ") == Tokens{""});
}

TEST_CASE("tokenizer treats tabs as ordinary bytes", "[protocol]") {
  CHECK(Split("status\tx") == Tokens{"status\tx"});
  CHECK(Split("\tstatus") == Tokens{"\tstatus"});
}

TEST_CASE("tokenizer accepts five tokens and refuses six", "[protocol]") {
  Tokens tokens;
  CHECK(Tokenize("maxqueue fn 1 2 3", Limits{}, &tokens));
  CHECK(tokens.size() == 5);
  CHECK(Tokenize("maxqueue fn 1 2 3    ", Limits{}, &tokens));
  CHECK(tokens.size() == 5);
  CHECK_FALSE(Tokenize("maxqueue fn 1 2 3 4", Limits{}, &tokens));
  CHECK_FALSE(Tokenize(" a b c d e", Limits{}, &tokens));  // the empty first token counts
}

TEST_CASE("tokenizer follows Limits::max_text_tokens", "[protocol]") {
  Limits limits;
  limits.max_text_tokens = 2;
  Tokens tokens;
  CHECK(Tokenize("a b", limits, &tokens));
  CHECK_FALSE(Tokenize("a b c", limits, &tokens));
}

TEST_CASE("tokenizer replaces earlier contents and borrows from the line", "[protocol]") {
  const std::string line = "show jobs";
  Tokens tokens = {"stale", "stale", "stale"};
  REQUIRE(Tokenize(line, Limits{}, &tokens));
  REQUIRE(tokens.size() == 2);
  CHECK(tokens[0].data() == line.data());
  CHECK(tokens[1].data() == line.data() + 5);
}

std::string AdminError(std::string_view code, std::string_view text) {
  std::string out;
  AppendAdminError(&out, code, text);
  return out;
}

TEST_CASE("admin errors write spaces as + and keep printable punctuation readable",
          "[protocol]") {
  CHECK(AdminError("PERMISSION_DENIED", "shutdown only allowed from loopback") ==
        "ERR PERMISSION_DENIED shutdown+only+allowed+from+loopback\r\n");
  CHECK(AdminError("INVALID_ARGUMENTS",
                   "admin: jenkins master 'sim2': base_url: https://x/ is not supported") ==
        "ERR INVALID_ARGUMENTS admin:+jenkins+master+'sim2':+base_url:+https://x/+is+not+"
        "supported\r\n");
  CHECK(AdminError("X", "-_.~Az09 ,;=()[]{}<>!?\"#$&*@^`|\\") ==
        "ERR X -_.~Az09+,;=()[]{}<>!?\"#$&*@^`|\\\r\n");
}

TEST_CASE("admin errors escape what would break the line or the + convention", "[protocol]") {
  CHECK(AdminError("X", "a/b%c+d") == "ERR X a/b%25c%2Bd\r\n");
  CHECK(AdminError("X", "\xC3\xA9\t\n\r\x7F") == "ERR X %C3%A9%09%0A%0D%7F\r\n");
  CHECK(AdminError("X", std::string_view("a\0b", 3)) == "ERR X a%00b\r\n");
  // Every byte value: the text part never holds a space, CR, LF or byte outside printable ASCII.
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string reply = AdminError("X", all);
  const std::string_view text = std::string_view(reply).substr(6, reply.size() - 8);
  for (char c : text) {
    CHECK((c > ' ' && c < 0x7f));
  }
}

TEST_CASE("admin errors without text are the bare code", "[protocol]") {
  CHECK(AdminError("UNKNOWN_JOB", "") == "ERR UNKNOWN_JOB\r\n");
  CHECK(AdminError("UNKNOWN_SHOW_ARGUMENTS", "") == "ERR UNKNOWN_SHOW_ARGUMENTS\r\n");
}

TEST_CASE("unknown command reply glues the raw first token on", "[protocol]") {
  std::string out;
  AppendUnknownCommand(&out, "foo");
  CHECK(out == "ERR UNKNOWN_COMMAND Unknown+server+commandfoo\r\n");
  out.clear();
  AppendUnknownCommand(&out, "");
  CHECK(out == "ERR UNKNOWN_COMMAND Unknown+server+command\r\n");
  out.clear();
  AppendUnknownCommand(&out, "status\tx/%");
  CHECK(out == "ERR UNKNOWN_COMMAND Unknown+server+commandstatus\tx/%\r\n");
}

TEST_CASE("invalid arguments reply glues the raw first token on", "[protocol]") {
  std::string out = "OK\r\n";
  AppendInvalidArguments(&out, "maxqueue");
  CHECK(out ==
        "OK\r\nERR INVALID_ARGUMENTS "
        "An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue\r\n");
}

TEST_CASE("ParseLeadingInt reads leading digits like atoi", "[protocol]") {
  CHECK(ParseLeadingInt("123") == 123);
  CHECK(ParseLeadingInt("12abc") == 12);
  CHECK(ParseLeadingInt("-5") == -5);
  CHECK(ParseLeadingInt("+7") == 7);
  CHECK(ParseLeadingInt("007") == 7);
  CHECK(ParseLeadingInt(" \t42") == 42);  // atoi skips leading white space
}

TEST_CASE("ParseLeadingInt is zero without leading digits", "[protocol]") {
  CHECK(ParseLeadingInt("") == 0);
  CHECK(ParseLeadingInt("abc") == 0);
  CHECK(ParseLeadingInt("-") == 0);
  CHECK(ParseLeadingInt("+-1") == 0);
  CHECK(ParseLeadingInt("x12") == 0);
}

TEST_CASE("ParseLeadingInt clamps on overflow", "[protocol]") {
  CHECK(ParseLeadingInt("9223372036854775807") == LLONG_MAX);
  CHECK(ParseLeadingInt("9223372036854775808") == LLONG_MAX);
  CHECK(ParseLeadingInt("99999999999999999999999999") == LLONG_MAX);
  CHECK(ParseLeadingInt("-9223372036854775807") == -LLONG_MAX);
  CHECK(ParseLeadingInt("-9223372036854775808") == LLONG_MIN);
  CHECK(ParseLeadingInt("-9223372036854775809") == LLONG_MIN);
  CHECK(ParseLeadingInt("-99999999999999999999999999") == LLONG_MIN);
}

TEST_CASE("ParseDigitsOrZero reads an all-digit string", "[protocol]") {
  CHECK(ParseDigitsOrZero("0") == 0);
  CHECK(ParseDigitsOrZero("123") == 123);
  CHECK(ParseDigitsOrZero("007") == 7);
  CHECK(ParseDigitsOrZero("18446744073709551615") == ULLONG_MAX);
}

TEST_CASE("ParseDigitsOrZero is zero when any byte is not a digit", "[protocol]") {
  CHECK(ParseDigitsOrZero("") == 0);
  CHECK(ParseDigitsOrZero("12a") == 0);
  CHECK(ParseDigitsOrZero("a12") == 0);
  CHECK(ParseDigitsOrZero("-1") == 0);
  CHECK(ParseDigitsOrZero("+1") == 0);
  CHECK(ParseDigitsOrZero(" 1") == 0);
  CHECK(ParseDigitsOrZero("99999999999999999999999x") == 0);
}

TEST_CASE("ParseDigitsOrZero clamps on overflow", "[protocol]") {
  CHECK(ParseDigitsOrZero("18446744073709551616") == ULLONG_MAX);
  CHECK(ParseDigitsOrZero("99999999999999999999999999") == ULLONG_MAX);
}

}  // namespace
}  // namespace roundhouse::protocol
