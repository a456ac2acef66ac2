// Access control's pure parts (server/acl.h, doc/acl.md): glob patterns, the grant table and its
// fallback to [acl default], the admin command groups, [acl NAME] sections in a config file, and
// the status API's bearer token check.
#include "server/acl.h"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "server/config.h"
#include "test/unit/server/server_test_util.h"

using Catch::Matchers::Contains;
using roundhouse::acl::AdminKindOf;
using roundhouse::acl::BearerAuthorized;
using roundhouse::acl::GlobMatch;
using roundhouse::acl::Kind;
using roundhouse::acl::SectionText;
using roundhouse::acl::Table;
using roundhouse::testing::ErrorOf;
using roundhouse::testing::Parse;
using roundhouse::testing::TempDir;

namespace {

Table MustParse(const std::vector<SectionText>& sections) {
  auto r = Table::Parse(sections);
  INFO((r.ok() ? std::string() : r.status().message()));
  REQUIRE(r.ok());
  return std::move(r).value();
}

std::string ParseError(const std::vector<SectionText>& sections) {
  auto r = Table::Parse(sections);
  REQUIRE_FALSE(r.ok());
  return r.status().message();
}

std::vector<std::string_view> Tokens(std::initializer_list<std::string_view> t) { return t; }

}  // namespace

TEST_CASE("glob: literal names match only themselves", "[acl]") {
  CHECK(GlobMatch("build:deploy", "build:deploy"));
  CHECK_FALSE(GlobMatch("build:deploy", "build:deplo"));
  CHECK_FALSE(GlobMatch("build:deploy", "build:deploy2"));
  CHECK_FALSE(GlobMatch("Build:deploy", "build:deploy"));  // function names are case-sensitive
}

TEST_CASE("glob: * matches any run, including empty and ':'", "[acl]") {
  CHECK(GlobMatch("build:*", "build:"));
  CHECK(GlobMatch("build:*", "build:a:b:c"));
  CHECK_FALSE(GlobMatch("build:*", "build"));
  CHECK_FALSE(GlobMatch("build:*", "xbuild:a"));
  CHECK(GlobMatch("*", ""));
  CHECK(GlobMatch("*", "anything at all"));
  CHECK(GlobMatch("*:deploy", "build:deploy"));
  CHECK(GlobMatch("a*b*c", "aXXbYYc"));
  CHECK(GlobMatch("a*b*c", "abc"));
  CHECK_FALSE(GlobMatch("a*b*c", "aXXbYY"));
  CHECK(GlobMatch("a**", "a"));
  // Backtracking: the first 'b' is not the one that lets the rest match.
  CHECK(GlobMatch("*bc", "abbc"));
  CHECK(GlobMatch("a*bcd", "abcbcd"));
}

TEST_CASE("glob: ? matches exactly one byte; \\ makes the next byte literal", "[acl]") {
  CHECK(GlobMatch("job?", "job1"));
  CHECK_FALSE(GlobMatch("job?", "job"));
  CHECK_FALSE(GlobMatch("job?", "job12"));
  CHECK(GlobMatch("a\\*", "a*"));
  CHECK_FALSE(GlobMatch("a\\*", "ab"));
  CHECK(GlobMatch("a\\?", "a?"));
  CHECK_FALSE(GlobMatch("a\\?", "ab"));
  CHECK(GlobMatch(std::string_view("a\0*", 3),
                  std::string_view("a\0zz", 4)));  // bytes, not C strings
}

TEST_CASE("glob: a pathological pattern stays polynomial", "[acl]") {
  const std::string text(5000, 'a');
  CHECK_FALSE(GlobMatch("*a*a*a*a*a*a*a*a*b", text));
  CHECK(GlobMatch("*a*a*a*a*a*a*a*a*", text));
}

TEST_CASE("grant table: patterns per permission, admin per group", "[acl]") {
  Table t = MustParse(
      {{"CN=ci-worker", {{"register", "build:* test:*"}, {"submit", "notify,log:*"}}, "f:1"},
       {"loopback-plain", {{"admin", "read, control"}, {"submit", "*"}}, "f:5"}});
  CHECK(t.size() == 2);
  CHECK(t.Allows("CN=ci-worker", Kind::kRegister, "build:deploy"));
  CHECK(t.Allows("CN=ci-worker", Kind::kRegister, "test:unit"));
  CHECK_FALSE(t.Allows("CN=ci-worker", Kind::kRegister, "deploy"));
  CHECK(t.Allows("CN=ci-worker", Kind::kSubmit, "notify"));
  CHECK(t.Allows("CN=ci-worker", Kind::kSubmit, "log:x"));
  CHECK_FALSE(t.Allows("CN=ci-worker", Kind::kSubmit, "build:deploy"));
  for (Kind admin : {Kind::kAdminRead, Kind::kAdminControl, Kind::kAdminOperator}) {
    CHECK_FALSE(t.Allows("CN=ci-worker", admin, ""));
  }
  CHECK(t.Allows("loopback-plain", Kind::kAdminRead, ""));
  CHECK(t.Allows("loopback-plain", Kind::kAdminControl, ""));
  CHECK_FALSE(t.Allows("loopback-plain", Kind::kAdminOperator, ""));
  CHECK_FALSE(t.Allows("loopback-plain", Kind::kRegister, "anything"));
  CHECK(t.Allows("loopback-plain", Kind::kSubmit, "anything"));
}

TEST_CASE("grant table: an unlisted identity gets default's grants, or nothing", "[acl]") {
  Table with_default = MustParse(
      {{"default", {{"submit", "public:*"}}, "f:1"}, {"CN=admin", {{"admin", "all"}}, "f:3"}});
  CHECK(with_default.Allows("plain", Kind::kSubmit, "public:x"));
  CHECK(with_default.Allows("loopback-plain", Kind::kSubmit, "public:x"));
  CHECK(with_default.Allows("CN=someone-else", Kind::kSubmit, "public:x"));
  CHECK_FALSE(with_default.Allows("plain", Kind::kSubmit, "private:x"));
  // A section replaces default rather than adding to it.
  CHECK_FALSE(with_default.Allows("CN=admin", Kind::kSubmit, "public:x"));
  CHECK(with_default.Allows("CN=admin", Kind::kAdminOperator, ""));
  CHECK(with_default.Find("CN=someone-else") == with_default.Find("default"));

  Table without_default = MustParse({{"CN=admin", {{"admin", "operator"}}, "f:1"}});
  CHECK(without_default.Find("plain") == nullptr);
  for (Kind k : roundhouse::acl::kAllKinds) CHECK_FALSE(without_default.Allows("plain", k, "x"));
}

TEST_CASE("grant table: empty values and empty sections grant nothing", "[acl]") {
  Table t = MustParse({{"default", {}, "f:1"}, {"plain", {{"submit", ""}, {"admin", ""}}, "f:2"}});
  for (Kind k : roundhouse::acl::kAllKinds) {
    CHECK_FALSE(t.Allows("plain", k, "x"));
    CHECK_FALSE(t.Allows("CN=x", k, "x"));
  }
}

TEST_CASE("grant table: mistakes are refused with file and line", "[acl]") {
  CHECK_THAT(ParseError({{"loopback", {}, "rh.conf:4"}}),
             Contains("rh.conf:4: [acl loopback]: unknown identity"));
  CHECK_THAT(ParseError({{"CN=", {}, "rh.conf:4"}}), Contains("unknown identity"));
  CHECK_THAT(ParseError({{"default", {{"admin", "read,write"}}, "rh.conf:2"}}),
             Contains("rh.conf:2: [acl default]: admin: unknown group 'write'"));
  CHECK_THAT(ParseError({{"default", {{"submitt", "*"}}, "rh.conf:2"}}),
             Contains("unknown key 'submitt'"));
  CHECK_THAT(ParseError({{"default", {{"submit", "a\\"}}, "rh.conf:2"}}), Contains("lone '\\'"));
  CHECK_THAT(ParseError({{"plain", {}, "rh.conf:2"}, {"plain", {}, "rh.conf:9"}}),
             Contains("rh.conf:9: [acl plain]: identity listed twice"));
}

TEST_CASE("a connection's identity: certificate CN, else transport and address", "[acl]") {
  using roundhouse::acl::IdentityOf;
  CHECK(IdentityOf(true, false, "") == "loopback-plain");
  CHECK(IdentityOf(false, false, "") == "plain");
  CHECK(IdentityOf(true, true, "") == "loopback-tls");
  CHECK(IdentityOf(false, true, "") == "tls");
  CHECK(IdentityOf(false, true, "zuul-executor") == "CN=zuul-executor");
  CHECK(IdentityOf(true, true, "Build Worker 1") == "CN=Build Worker 1");
  // A CN is only believed from an encrypted connection.
  CHECK(IdentityOf(false, false, "zuul-executor") == "plain");
  // No certificate can pass for a fixed identity: a CN always carries the prefix.
  CHECK(IdentityOf(false, true, "plain") == "CN=plain");
  Table t = MustParse({{"tls", {{"submit", "*"}}, "f:1"}, {"loopback-tls", {}, "f:2"}});
  CHECK(t.Allows("tls", Kind::kSubmit, "x"));
  CHECK_FALSE(t.Allows("loopback-tls", Kind::kSubmit, "x"));
  CHECK_FALSE(t.Allows("plain", Kind::kSubmit, "x"));
}

TEST_CASE("admin commands fall into read-only, control and operator groups", "[acl]") {
  for (auto cmd : {"status", "prioritystatus", "workers", "version", "getpid", "STATUS"}) {
    CHECK(AdminKindOf(Tokens({cmd})) == Kind::kAdminRead);
  }
  CHECK(AdminKindOf(Tokens({"show", "jobs"})) == Kind::kAdminRead);
  CHECK(AdminKindOf(Tokens({"show", "unique", "jobs"})) == Kind::kAdminRead);
  CHECK(AdminKindOf(Tokens({"jenkins", "list"})) == Kind::kAdminRead);
  CHECK(AdminKindOf(Tokens({"jenkins", "show", "ci"})) == Kind::kAdminRead);
  CHECK(AdminKindOf(Tokens({"cancel", "job", "H:x:1"})) == Kind::kAdminControl);
  CHECK(AdminKindOf(Tokens({"maxqueue", "f", "3"})) == Kind::kAdminControl);
  CHECK(AdminKindOf(Tokens({"drop", "function", "f"})) == Kind::kAdminControl);
  CHECK(AdminKindOf(Tokens({"create", "function", "f"})) == Kind::kAdminControl);
  CHECK(AdminKindOf(Tokens({"shutdown"})) == Kind::kAdminOperator);
  CHECK(AdminKindOf(Tokens({"shutdown", "graceful"})) == Kind::kAdminOperator);
  CHECK(AdminKindOf(Tokens({"verbose"})) == Kind::kAdminOperator);
  CHECK(AdminKindOf(Tokens({"jenkins", "add", "ci", "base_url=x"})) == Kind::kAdminOperator);
  CHECK(AdminKindOf(Tokens({"jenkins", "remove", "ci"})) == Kind::kAdminOperator);
  CHECK(AdminKindOf(Tokens({"jenkins"})) == Kind::kAdminOperator);
  CHECK(AdminKindOf(Tokens({"jenkins", "frobnicate"})) == Kind::kAdminOperator);
  CHECK_FALSE(AdminKindOf(Tokens({"frobnicate"})).has_value());
  CHECK_FALSE(AdminKindOf(Tokens({})).has_value());
}

TEST_CASE("[acl NAME] sections in a roundhouse config file turn access control on", "[acl]") {
  TempDir dir;
  std::string path = dir.Write("rh.conf",
                               "port = 4731\n"
                               "[acl default]\n"
                               "submit = public:*\n"
                               "\n"
                               "[acl CN=Build Worker 1]\n"
                               "register = build:*\n"
                               "[jenkins ci]\n"
                               "base_url = http://ci.example:8080/\n"
                               "[acl loopback-plain]\n"
                               "admin = all\n");
  auto r = Parse({"--config-file", path});
  REQUIRE(r.ok());
  const roundhouse::Config& c = r.value();
  REQUIRE(c.acl != nullptr);
  CHECK(c.port == 4731);
  CHECK(c.jenkins.size() == 1);
  CHECK(c.jenkins[0].settings.size() == 1);
  CHECK(c.acl->size() == 3);
  CHECK(c.acl->Allows("CN=Build Worker 1", Kind::kRegister, "build:x"));
  CHECK(c.acl->Allows("plain", Kind::kSubmit, "public:x"));
  CHECK(c.acl->Allows("loopback-plain", Kind::kAdminOperator, ""));
  CHECK_FALSE(c.acl->Allows("loopback-plain", Kind::kSubmit, "public:x"));
}

TEST_CASE("without [acl NAME] sections access control is off", "[acl]") {
  TempDir dir;
  auto r = Parse({"--config-file", dir.Write("rh.conf", "port = 4731\n")});
  REQUIRE(r.ok());
  CHECK(r.value().acl == nullptr);
  CHECK(Parse({}).value().acl == nullptr);
}

TEST_CASE("an [acl] section mistake stops start-up with file and line", "[acl]") {
  TempDir dir;
  std::string path = dir.Write("rh.conf", "[acl default]\nadmin = everything\n");
  CHECK_THAT(ErrorOf(Parse({"--config-file", path})),
             Contains("rh.conf:1: [acl default]: admin: unknown group 'everything'"));
  path = dir.Write("rh2.conf", "[acl]\nsubmit = *\n");
  CHECK_THAT(ErrorOf(Parse({"--config-file", path})), Contains("rh2.conf:1: [acl NAME] needs"));
  path = dir.Write("rh3.conf", "[acl plain]\nsubmit = *\nsubmit = x\n");
  CHECK_THAT(ErrorOf(Parse({"--config-file", path})),
             Contains("rh3.conf:3: duplicate key 'submit' in [acl plain]"));
}

TEST_CASE("status token options: one source at a time", "[acl]") {
  CHECK(Parse({"--status-token-file", "/x"}).value().status_token_file == "/x");
  CHECK(Parse({"--status-token-env", "RH_TOKEN"}).value().status_token_env == "RH_TOKEN");
  CHECK_THAT(ErrorOf(Parse({"--status-token-file", "/x", "--status-token-env", "V"})),
             Contains("exclusive"));
}

TEST_CASE("bearer token: exact token, any-case scheme, nothing else", "[acl]") {
  const std::string token = "s3cret-token";
  CHECK(BearerAuthorized("Bearer s3cret-token", token));
  CHECK(BearerAuthorized("bearer s3cret-token", token));
  CHECK(BearerAuthorized("BEARER   s3cret-token", token));
  CHECK_FALSE(BearerAuthorized("", token));
  CHECK_FALSE(BearerAuthorized("Bearer", token));
  CHECK_FALSE(BearerAuthorized("Bearer ", token));
  CHECK_FALSE(BearerAuthorized("s3cret-token", token));
  CHECK_FALSE(BearerAuthorized("Basic s3cret-token", token));
  CHECK_FALSE(BearerAuthorized("Bearers3cret-token", token));
  CHECK_FALSE(BearerAuthorized("Bearer s3cret-toke", token));    // a prefix
  CHECK_FALSE(BearerAuthorized("Bearer s3cret-token2", token));  // longer
  CHECK_FALSE(BearerAuthorized("Bearer s3cret-tokeN", token));   // last byte differs
  CHECK_FALSE(BearerAuthorized("Bearer S3cret-token", token));   // first byte differs
  CHECK_FALSE(BearerAuthorized(std::string_view("Bearer s3cret-token\0", 20), token));
  CHECK_FALSE(BearerAuthorized("Bearer ", ""));
}
