// base/text.h: ASCII case folding and strict decimal parsing, the helpers every layer shares.
#include "base/text.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

namespace roundhouse {
namespace {

TEST_CASE("EqualsIgnoreCase folds ASCII letters only", "[text]") {
  CHECK(EqualsIgnoreCase("SHOW", "show"));
  CHECK(EqualsIgnoreCase("Unique", "uNIQUE"));
  CHECK(EqualsIgnoreCase("Content-Length", "content-length"));
  CHECK(EqualsIgnoreCase("", ""));
  CHECK_FALSE(EqualsIgnoreCase("jobs", "job"));
  CHECK_FALSE(EqualsIgnoreCase("job", "jobs"));
  CHECK_FALSE(EqualsIgnoreCase("a", "b"));
  CHECK_FALSE(EqualsIgnoreCase("\xC4", "\xE4"));  // no folding outside ASCII
  CHECK_FALSE(EqualsIgnoreCase("[", "{"));        // 0x5B and 0x7B differ only in bit 5
  CHECK_FALSE(EqualsIgnoreCase("@", "`"));        // 0x40 and 0x60 likewise
}

TEST_CASE("StartsWithIgnoreCase and ToLowerAscii", "[text]") {
  CHECK(StartsWithIgnoreCase("HTTPS://host", "https://"));
  CHECK(StartsWithIgnoreCase("x", ""));
  CHECK_FALSE(StartsWithIgnoreCase("http", "https"));
  CHECK(ToLowerAscii("Jenkins.Example.COM") == "jenkins.example.com");
  CHECK(ToLowerAscii("\xC4Z[") == "\xC4z[");
}

TEST_CASE("ParseDecimal accepts whole decimal numbers that fit", "[text]") {
  CHECK(ParseDecimal<uint64_t>("0") == 0u);
  CHECK(ParseDecimal<uint64_t>("007") == 7u);
  CHECK(ParseDecimal<uint64_t>("18446744073709551615") == UINT64_MAX);
  CHECK(ParseDecimal<int64_t>("-9223372036854775808") == INT64_MIN);
  CHECK(ParseDecimal<int64_t>("9223372036854775807") == INT64_MAX);
  CHECK(ParseDecimal<uint16_t>("65535") == 65535u);
}

TEST_CASE("ParseDecimal refuses what is not exactly one number in range", "[text]") {
  for (const char* bad : {"", " 1", "1 ", "+1", "1x", "0x10", "1.0", "-", "--1", "١"}) {
    INFO(bad);
    CHECK_FALSE(ParseDecimal<int64_t>(bad).has_value());
    CHECK_FALSE(ParseDecimal<uint64_t>(bad).has_value());
  }
  CHECK_FALSE(ParseDecimal<uint64_t>("-1").has_value());  // no sign for unsigned types
  CHECK_FALSE(ParseDecimal<uint64_t>("18446744073709551616").has_value());
  CHECK_FALSE(ParseDecimal<int64_t>("9223372036854775808").has_value());
  CHECK_FALSE(ParseDecimal<int64_t>("-9223372036854775809").has_value());
  CHECK_FALSE(ParseDecimal<uint16_t>("65536").has_value());
  CHECK_FALSE(ParseDecimal<int8_t>("-129").has_value());
}

}  // namespace
}  // namespace roundhouse
