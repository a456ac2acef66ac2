// Config files: gearmand's option-token format, roundhouse's `key = value` format with
// [jenkins NAME] sections, precedence against the command line, line-numbered errors, and the
// --help text generated from the option table.
#include <catch2/catch.hpp>
#include <string>

#include "server/config.h"
#include "server/config_options.h"
#include "test/unit/server/server_test_util.h"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using roundhouse::Config;
using roundhouse::QueueType;
using roundhouse::SplitConfigText;
using roundhouse::testing::ErrorOf;
using roundhouse::testing::Parse;
using roundhouse::testing::TempDir;
using roundhouse::testing::TestEnv;
namespace rlog = roundhouse::log;

TEST_CASE("a gearmand config file of option tokens is applied", "[config]") {
  TempDir dir;
  std::string path = dir.Write("gearmand.conf",
                               "# gearmand options\n"
                               "--port=4731 --verbose=INFO\n"
                               "\n"
                               "-L 127.0.0.1   --listen ::1\t-j 3  # trailing comment -p 9\n"
                               "-q builtin\n");
  auto r = Parse({"--config-file", path});
  REQUIRE(r.ok());
  const Config& c = r.value();
  CHECK(c.port == 4731);
  CHECK(c.verbose == rlog::Level::kInfo);
  CHECK(c.listen == std::vector<std::string>{"127.0.0.1", "::1"});
  CHECK(c.broker.job_retries == 3);
  CHECK(c.queue_type == QueueType::kNone);
}

TEST_CASE("@PATH is a synonym of --config-file PATH", "[config]") {
  TempDir dir;
  std::string path = dir.Write("g.conf", "--port=4740\n");
  CHECK(Parse({"@" + path}).value().port == 4740);
}

TEST_CASE("errors in a gearmand-format file name the file and line", "[config]") {
  TempDir dir;
  std::string path = dir.Write("gearmand.conf", "--port=4731\n\n--prot=1\n");
  auto r = Parse({"--config-file=" + path});
  REQUIRE_FALSE(r.ok());
  CHECK(ErrorOf(r) == path + ":3: unknown option '--prot'");

  path = dir.Write("bad-value.conf", "--verbose=INFO\n--job-retries\n300\n");
  CHECK_THAT(ErrorOf(Parse({"--config-file=" + path})),
             StartsWith(path + ":2: invalid value '300' for --job-retries"));
}

TEST_CASE("a roundhouse key = value file is applied", "[config]") {
  TempDir dir;
  std::string path = dir.Write("roundhouse.conf",
                               "# roundhouse\n"
                               "port = 4731\n"
                               "queue-type = sqlite\n"
                               "libsqlite3-db = /var/lib/roundhouse/roundhouse.db\n"
                               "  verbose=notice  \n"
                               "daemon\n"
                               "keepalive = false\n"
                               "exceptions = yes\n"
                               "listen = 10.0.0.1\n"
                               "listen = 10.0.0.2\n"
                               "log-file = /var/log/rh.log # not a comment\n");
  auto r = Parse({"--config-file", path});
  REQUIRE(r.ok());
  const Config& c = r.value();
  CHECK(c.port == 4731);
  CHECK(c.queue_type == QueueType::kSqlite);
  CHECK(c.sqlite_db == "/var/lib/roundhouse/roundhouse.db");
  CHECK(c.verbose == rlog::Level::kNotice);
  CHECK(c.daemon);
  CHECK_FALSE(c.keepalive);
  CHECK(c.broker.exceptions_default);
  CHECK(c.listen == std::vector<std::string>{"10.0.0.1", "10.0.0.2"});
  CHECK(c.log_file == "/var/log/rh.log # not a comment");
}

TEST_CASE("errors in a roundhouse file name the file and line", "[config]") {
  TempDir dir;
  std::string path = dir.Write("roundhouse.conf",
                               "port = 4731\n"
                               "# 2\n# 3\n# 4\n# 5\n# 6\n# 7\n# 8\n# 9\n# 10\n# 11\n"
                               "prot = 4731\n");
  CHECK(ErrorOf(Parse({"--config-file", path})) == path + ":12: unknown key 'prot'");

  path = dir.Write("value.conf", "verbose = INFO\nport = abc\n");
  CHECK_THAT(ErrorOf(Parse({"--config-file", path})),
             StartsWith(path + ":2: invalid value 'abc' for port"));

  path = dir.Write("bare.conf", "daemon\nport\n");
  CHECK(ErrorOf(Parse({"--config-file", path})) == path + ":2: 'port' needs a value (port = PORT)");

  path = dir.Write("switch.conf", "daemon = maybe\n");
  CHECK_THAT(ErrorOf(Parse({"--config-file", path})),
             StartsWith(path + ":1: 'daemon' is on or off"));

  path = dir.Write("twice.conf", "port = 1\n\nport = 2\n");
  CHECK(ErrorOf(Parse({"--config-file", path})) ==
        path + ":3: option '--port' cannot be specified more than once");

  path = dir.Write("nested.conf", "config-file = /etc/other.conf\n");
  CHECK_THAT(ErrorOf(Parse({"--config-file", path})),
             StartsWith(path + ":1: option '--config-file' is only allowed on the command line"));

  path = dir.Write("ssl.conf", "port = 1\nssl-verify-client = maybe\n");
  CHECK_THAT(ErrorOf(Parse({"--config-file", path})), StartsWith(path + ":2: invalid value"));

  path = dir.Write("queue.conf", "port = 1\nqueue-type = sqlite\n");
  CHECK(ErrorOf(Parse({"--config-file", path})) ==
        path + ":2: missing required --libsqlite3-db=<dbfile> argument");
  CHECK(Parse({"--config-file", path, "--libsqlite3-db=q.db"}).ok());

  path = dir.Write("key.conf", "= 3\n");
  CHECK(ErrorOf(Parse({"--config-file", path})) == path + ":1: missing key before '='");
}

TEST_CASE("[jenkins NAME] sections become masters with verbatim settings", "[config]") {
  TempDir dir;
  std::string path = dir.Write("roundhouse.conf",
                               "port = 4731\n"
                               "\n"
                               "[jenkins ci]\n"
                               "base_url = https://ci.example/jenkins/\n"
                               "user = gearman\n"
                               "api_token_file = /etc/roundhouse/ci.token\n"
                               "poll.computers_s = 3\n"
                               "offline_message = Offline due to Gearman request\n"
                               "empty =\n"
                               "# comment inside a section\n"
                               "[jenkins qa]\n"
                               "base_url=http://qa:8080/\n");
  auto r = Parse({"--config-file", path});
  REQUIRE(r.ok());
  const auto& masters = r.value().jenkins;
  REQUIRE(masters.size() == 2);
  CHECK(masters[0].name == "ci");
  CHECK(masters[0].origin == path + ":3");
  CHECK(masters[0].settings.size() == 6);
  CHECK(masters[0].settings.at("base_url") == "https://ci.example/jenkins/");
  CHECK(masters[0].settings.at("poll.computers_s") == "3");
  CHECK(masters[0].settings.at("offline_message") == "Offline due to Gearman request");
  CHECK(masters[0].settings.at("empty").empty());
  CHECK(masters[1].name == "qa");
  CHECK(masters[1].origin == path + ":11");
  CHECK(masters[1].settings.at("base_url") == "http://qa:8080/");
  CHECK(r.value().port == 4731);
}

TEST_CASE("jenkins sections reject empty and duplicate names", "[config]") {
  TempDir dir;
  std::string path = dir.Write("empty.conf", "[jenkins]\nbase_url = x\n");
  CHECK(ErrorOf(Parse({"--config-file", path})) == path + ":1: [jenkins NAME] needs a master name");

  path = dir.Write("blank.conf", "[jenkins   ]\n");
  CHECK(ErrorOf(Parse({"--config-file", path})) == path + ":1: [jenkins NAME] needs a master name");

  path = dir.Write("dup.conf", "[jenkins ci]\na = 1\n[jenkins ci]\na = 2\n");
  CHECK(ErrorOf(Parse({"--config-file", path})) ==
        path + ":3: duplicate jenkins master 'ci' (first defined at " + path + ":1)");

  path = dir.Write("flag.conf", "[jenkins ci]\na = 1\n");
  CHECK(ErrorOf(Parse({"--config-file", path, "--jenkins", "ci:a=2"})) ==
        "command line: duplicate jenkins master 'ci' (first defined at " + path + ":1)");

  path = dir.Write("dupkey.conf", "[jenkins ci]\na = 1\na = 2\n");
  CHECK(ErrorOf(Parse({"--config-file", path})) == path + ":3: duplicate key 'a' in [jenkins ci]");

  path = dir.Write("section.conf", "[server]\n");
  CHECK_THAT(ErrorOf(Parse({"--config-file", path})),
             StartsWith(path + ":1: unknown section '[server]'"));

  path = dir.Write("bare.conf", "[jenkins ci]\nbase_url\n");
  CHECK_THAT(ErrorOf(Parse({"--config-file", path})),
             StartsWith(path + ":2: expected 'key = value'"));
}

TEST_CASE("file sections and --jenkins flags with different names all register", "[config]") {
  TempDir dir;
  std::string path = dir.Write("r.conf", "jenkins = a:base_url=http://a/\n[jenkins b]\nx = 1\n");
  auto r = Parse({"--config-file", path, "--jenkins", "c:base_url=http://c/"});
  REQUIRE(r.ok());
  REQUIRE(r.value().jenkins.size() == 3);
  CHECK(r.value().jenkins[0].name == "b");
  CHECK(r.value().jenkins[1].name == "a");
  CHECK(r.value().jenkins[1].origin == path + ":1");
  CHECK(r.value().jenkins[2].name == "c");
}

TEST_CASE("command-line options win over the file's wherever --config-file appears", "[config]") {
  TempDir dir;
  std::string path = dir.Write("r.conf", "port = 4731\nverbose = DEBUG\nlisten = 10.0.0.1\n");
  auto before = Parse({"-p", "4732", "--config-file", path, "-L", "127.0.0.1"});
  auto after = Parse({"--config-file", path, "-p", "4732"});
  REQUIRE(before.ok());
  REQUIRE(after.ok());
  CHECK(before.value().port == 4732);
  CHECK(after.value().port == 4732);
  // Options only the file sets still apply.
  CHECK(before.value().verbose == rlog::Level::kDebug);
  CHECK(after.value().verbose == rlog::Level::kDebug);
  // A repeatable option given on the command line replaces the file's list.
  CHECK(before.value().listen == std::vector<std::string>{"127.0.0.1"});
  CHECK(after.value().listen == std::vector<std::string>{"10.0.0.1"});
}

TEST_CASE("a file value the command line overrides is not applied, even a bad one", "[config]") {
  // As in gearmand, where boost skips options that already have a command-line value.
  TempDir dir;
  std::string path = dir.Write("r.conf", "port = abc\n");
  CHECK(Parse({"--config-file", path, "-p", "1"}).value().port == 1);
  CHECK_FALSE(Parse({"--config-file", path}).ok());
}

TEST_CASE("a missing explicit config file is fatal, a missing default is not", "[config]") {
  auto r = Parse({"--config-file=/nonexistent-roundhouse-test/x.conf"});
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(ErrorOf(r), Contains("cannot read config file '/nonexistent-roundhouse-test/x.conf'"));
  CHECK_FALSE(Parse({"@/nonexistent-roundhouse-test/x.conf"}).ok());
  CHECK(Parse({}).ok());  // TestEnv's default file does not exist
}

TEST_CASE("the default config file is read when it exists", "[config]") {
  TempDir dir;
  auto env = TestEnv();
  env.default_config_file = dir.Write("gearmand.conf", "--port=4750\n");
  CHECK(Parse({}, env).value().port == 4750);
  // An explicit file replaces the default one.
  std::string other = dir.Write("other.conf", "port = 4751\n");
  CHECK(Parse({"--config-file", other}, env).value().port == 4751);
}

TEST_CASE("--check-args is set by the command line for main to exit 0", "[config]") {
  TempDir dir;
  std::string path = dir.Write("r.conf", "port = 4731\n");
  auto r = Parse({"--check-args", "--config-file", path});
  REQUIRE(r.ok());
  CHECK(r.value().check_args);
  path = dir.Write("bad.conf", "port = x\n");
  CHECK_FALSE(Parse({"--check-args", "--config-file", path}).ok());
}

TEST_CASE("format detection looks at the first line that is not blank or a comment", "[config]") {
  auto tokens = SplitConfigText("\n# comment\n   --port=1 -d\n", "f");
  REQUIRE(tokens.ok());
  CHECK(tokens.value().option_tokens);
  REQUIRE(tokens.value().tokens.size() == 2);
  CHECK(tokens.value().tokens[0].text == "--port=1");
  CHECK(tokens.value().tokens[0].line == 3);
  CHECK(tokens.value().tokens[1].text == "-d");

  auto entries = SplitConfigText("# -p 1\nport = 1\r\n", "f");
  REQUIRE(entries.ok());
  CHECK_FALSE(entries.value().option_tokens);
  REQUIRE(entries.value().entries.size() == 1);
  CHECK(entries.value().entries[0].key == "port");
  CHECK(entries.value().entries[0].value == "1");
  CHECK(entries.value().entries[0].line == 2);

  auto empty = SplitConfigText("", "f");
  REQUIRE(empty.ok());
  CHECK(empty.value().entries.empty());
  CHECK(empty.value().tokens.empty());
}

TEST_CASE("--help lists every option of the spec", "[config]") {
  std::string help = roundhouse::UsageText();
  const char* const expected[] = {
      "-p, --port",
      "-L, --listen",
      "-d, --daemon",
      "-P, --pid-file",
      "-l, --log-file",
      "--verbose",
      "-u, --user",
      "-t, --threads",
      "-j, --job-retries",
      "-R, --round-robin",
      "-w, --worker-wakeup",
      "--keepalive ",
      "--keepalive-idle",
      "--keepalive-interval",
      "--keepalive-count",
      "-q, --queue-type",
      "--libsqlite3-db",
      "--libsqlite3-table",
      "--store-queue-on-shutdown",
      "--config-file",
      "--job-handle-prefix",
      "--hashtable-buckets",
      "-V, --version",
      "-h, --help",
      "--priority-order",
      "--max-packet-body",
      "-b, --backlog",
      "--exceptions",
      "-f, --file-descriptors",
      "--check-args",
      "--syslog",
      "--coredump",
      "-r, --protocol",
      "--http-port",
      "--http-listen",
      "--status-port",
      "--status-listen",
      "--ssl ",
      "--ssl-ca-file",
      "--ssl-certificate",
      "--ssl-key",
      "--ssl-verify-client",
      "--ssl-require",
      "--jenkins",
      "@PATH",
      "[jenkins NAME]",
      "GEARMAND_PORT",
  };
  for (const char* text : expected) {
    INFO(text);
    CHECK_THAT(help, Contains(text));
  }
}

TEST_CASE("--help shows every entry of the option table with its default", "[config]") {
  std::string help = roundhouse::UsageText();
  for (const auto& o : roundhouse::config_internal::AllOptions()) {
    std::string name = "--" + std::string(o.name);
    INFO(name);
    CHECK_THAT(help, Contains(name));
    if (o.short_name != 0)
      CHECK_THAT(help, Contains(std::string("-") + o.short_name + ", " + name));
  }
  CHECK_THAT(help, Contains("[default: 4730]"));
  CHECK_THAT(help, Contains("[default: libsqlite3]"));
  CHECK_THAT(help, Contains("[default: roundhouse-PORT.db]"));
  CHECK_THAT(help, Contains("[default: ERROR]"));
  CHECK_THAT(help, Contains("[default: -1]"));
}

TEST_CASE("--help states each default once", "[config]") {
  // The "[default: X]" suffix comes from the table; a help text must not repeat it in prose.
  for (const auto& o : roundhouse::config_internal::AllOptions()) {
    if (o.default_text == nullptr) continue;
    INFO(o.name);
    CHECK_THAT(std::string(o.help), !Contains("Default") && !Contains("(default"));
  }
}

TEST_CASE("the man page lists every option of the table with its default", "[config]") {
  const std::string page = roundhouse::ManPageText();
  CHECK_THAT(page, Contains(".TH ROUNDHOUSE 8"));
  const roundhouse::Config defaults;
  auto roff = [](std::string_view text) {
    std::string out;
    for (char c : text) {
      if (c == '-') out += "\\-";
      else if (c == '\\') out += "\\e";
      else out.push_back(c);
    }
    return out;
  };
  for (const auto& o : roundhouse::config_internal::AllOptions()) {
    INFO(o.name);
    CHECK_THAT(page, Contains("\\fB\\-\\-" + roff(o.name) + "\\fR"));
    if (o.default_text != nullptr) {
      CHECK_THAT(page, Contains("Default: " + roff(o.default_text(defaults)) + "."));
    }
  }
}
