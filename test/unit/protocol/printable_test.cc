#include "protocol/printable.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>

using roundhouse::protocol::AppendValidUtf8;
using roundhouse::protocol::Escaped;
using roundhouse::protocol::IsValidUtf8;

TEST_CASE("escaped form keeps ordinary names and valid UTF-8 as they are", "[printable]") {
  CHECK(Escaped("build:my-job") == "build:my-job");
  CHECK(Escaped("build:My Project") == "build:My Project");
  CHECK(Escaped("\xC3\xA9t\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x9A\x82") ==
        "\xC3\xA9t\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x9A\x82");
}

TEST_CASE("escaped form turns controls, DEL and invalid UTF-8 into \\xHH", "[printable]") {
  CHECK(Escaped("a\nb\tc\rd") == "a\\x0ab\\x09c\\x0dd");
  CHECK(Escaped(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(Escaped("\x7f") == "\\x7f");
  CHECK(Escaped("a\xff") == "a\\xff");
  CHECK(Escaped("\xC3") == "\\xc3");                   // truncated
  CHECK(Escaped("\xC0\xAF") == "\\xc0\\xaf");          // overlong
  CHECK(Escaped("\xED\xA0\x80") == "\\xed\\xa0\\x80");  // surrogate
  CHECK(Escaped("\xF4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
}

TEST_CASE("escaped form doubles backslashes so it stays one-to-one", "[printable]") {
  CHECK(Escaped("a\\b") == "a\\\\b");
  // A name spelled like an escape and the byte it names do not meet.
  CHECK(Escaped("a\\x0a") != Escaped("a\n"));
  std::set<std::string> seen;
  const char* names[] = {"a\n", "a\\x0a", "a\\\\x0a", "a\xff", "a\\xff", "a ", "a\\x20"};
  for (const char* n : names) CHECK(seen.insert(Escaped(n, true)).second);
}

TEST_CASE("escaped form for space-separated fields escapes the space", "[printable]") {
  CHECK(Escaped("a b", true) == "a\\x20b");
  CHECK(Escaped("a b", false) == "a b");
}

TEST_CASE("escaped output is always valid UTF-8 without control characters", "[printable]") {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  const std::string e = Escaped(all + all);
  CHECK(IsValidUtf8(e));
  for (char c : e) CHECK((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
}

TEST_CASE("valid UTF-8 replacement substitutes U+FFFD per invalid byte", "[printable]") {
  std::string out;
  AppendValidUtf8(&out, "a\xff\xfe" "b\xC3\xA9");
  CHECK(out == "a\xEF\xBF\xBD\xEF\xBF\xBD" "b\xC3\xA9");
  CHECK(IsValidUtf8(out));
  CHECK_FALSE(IsValidUtf8("a\xff"));
  CHECK(IsValidUtf8(""));
}
