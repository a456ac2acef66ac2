// Command-line parsing (doc/protocol.md §5.1, §5.2): forms, defaults, validation, refusals.
#include "server/config.h"

#include <catch2/catch.hpp>
#include <string>

#include "test/unit/server/server_test_util.h"

using Catch::Matchers::Contains;
using roundhouse::Config;
using roundhouse::QueueType;
using roundhouse::testing::ErrorOf;
using roundhouse::testing::Parse;
using roundhouse::testing::TestEnv;
namespace broker = roundhouse::broker;
namespace rlog = roundhouse::log;

TEST_CASE("no options give gearmand's defaults and the project's sqlite queue", "[config]") {
  auto r = Parse({});
  REQUIRE(r.ok());
  const Config& c = r.value();
  CHECK(c.port == 4730);
  CHECK(c.listen.empty());
  CHECK(c.backlog == 32);
  CHECK_FALSE(c.keepalive);
  CHECK(c.keepalive_idle == -1);
  CHECK(c.keepalive_interval == -1);
  CHECK(c.keepalive_count == -1);
  CHECK_FALSE(c.daemon);
  CHECK(c.pid_file.empty());
  CHECK(c.log_file == "stderr");
  CHECK(c.verbose == rlog::Level::kError);
  CHECK(c.user.empty());
  CHECK(c.threads == 4);
  CHECK(c.file_descriptors == 0);
  CHECK_FALSE(c.syslog);
  CHECK_FALSE(c.coredump);
  CHECK_FALSE(c.check_args);
  CHECK(c.broker.job_retries == -1);
  CHECK(c.broker.worker_wakeup == 0);
  CHECK(c.broker.priority_order == broker::PriorityOrder::kGlobal);
  CHECK_FALSE(c.broker.round_robin);
  CHECK_FALSE(c.broker.exceptions_default);
  CHECK(c.broker.handle_prefix == "H:testhost");
  CHECK(c.limits.max_packet_body == 64ull * 1024 * 1024);
  CHECK(c.queue_type == QueueType::kSqlite);
  CHECK(c.sqlite_db.empty());  // roundhouse-<port>.db, chosen at start-up
  CHECK(c.sqlite_table == "gearman_queue");
  CHECK_FALSE(c.store_queue_on_shutdown);
  CHECK(c.jenkins.empty());
  CHECK_FALSE(c.http_protocol);
  CHECK(c.http_port == 8080);
  CHECK(c.status_port == 0);
  CHECK(c.status_listen == "127.0.0.1");
  CHECK_FALSE(c.show_help);
  CHECK_FALSE(c.show_version);
}

TEST_CASE("a value may follow '=' or come as the next argument, long or short", "[config]") {
  CHECK(Parse({"--port=4731"}).value().port == 4731);
  CHECK(Parse({"--port", "4732"}).value().port == 4732);
  CHECK(Parse({"-p4733"}).value().port == 4733);
  CHECK(Parse({"-p", "4734"}).value().port == 4734);
  CHECK(Parse({"-p", "0"}).value().port == 0);
}

TEST_CASE("short switches may be grouped, ending with one that takes a value", "[config]") {
  auto r = Parse({"-dRp4735"});
  REQUIRE(r.ok());
  CHECK(r.value().daemon);
  CHECK(r.value().broker.round_robin);
  CHECK(r.value().port == 4735);
}

TEST_CASE("long option names are never abbreviated", "[config]") {
  auto r = Parse({"--por=4731"});
  REQUIRE_FALSE(r.ok());
  CHECK(ErrorOf(r) == "unknown option '--por'");
  CHECK_FALSE(Parse({"--verb", "INFO"}).ok());
}

TEST_CASE("an unknown option is an error that names it", "[config]") {
  CHECK(ErrorOf(Parse({"--frobnicate"})) == "unknown option '--frobnicate'");
  CHECK(ErrorOf(Parse({"--frobnicate=3"})) == "unknown option '--frobnicate'");
  CHECK(ErrorOf(Parse({"-x"})) == "unknown option '-x'");
  CHECK(ErrorOf(Parse({"stray"})) == "unexpected argument 'stray'");
}

TEST_CASE("-v is rejected with a pointer to --verbose", "[config]") {
  for (const char* arg : {"-v", "-vvv", "-dv"}) {
    auto r = Parse({arg});
    REQUIRE_FALSE(r.ok());
    CHECK(ErrorOf(r) == "Option -v has been deprecated, please use --verbose");
  }
}

TEST_CASE("--verbose takes gearmand's level names in any case", "[config]") {
  CHECK(Parse({"--verbose=INFO"}).value().verbose == rlog::Level::kInfo);
  CHECK(Parse({"--verbose", "debug"}).value().verbose == rlog::Level::kDebug);
  CHECK(Parse({"--verbose=Notice"}).value().verbose == rlog::Level::kNotice);
  CHECK(Parse({"--verbose=FATAL"}).value().verbose == rlog::Level::kFatal);
  auto r = Parse({"--verbose=LOUD"});
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(ErrorOf(r), Contains("Invalid value for --verbose supplied") && Contains("LOUD"));
}

TEST_CASE("-j accepts -1 through 255, including -1 as a separate argument", "[config]") {
  CHECK(Parse({"-j", "-1"}).value().broker.job_retries == -1);
  CHECK(Parse({"-j0"}).value().broker.job_retries == 0);
  CHECK(Parse({"--job-retries=255"}).value().broker.job_retries == 255);
  for (const char* bad : {"256", "-2", "abc", "3x", ""}) {
    auto r = Parse({"--job-retries", bad});
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(ErrorOf(r), Contains("--job-retries") && Contains("-1 to 255"));
  }
}

TEST_CASE("numeric options reject values out of their range", "[config]") {
  CHECK(Parse({"-t", "0"}).value().threads == 0);
  CHECK_THAT(ErrorOf(Parse({"-t", "-1"})), Contains("-t"));
  CHECK_THAT(ErrorOf(Parse({"--port=65536"})), Contains("port number"));
  CHECK_THAT(ErrorOf(Parse({"-p", "-5"})), Contains("port number"));
  CHECK(Parse({"--hashtable-buckets=991"}).ok());
  CHECK(ErrorOf(Parse({"--hashtable-buckets=0"})) == "hashtable-buckets has to be greater than 0");
  CHECK_FALSE(Parse({"--hashtable-buckets=-1"}).ok());
  CHECK(Parse({"-b", "64"}).value().backlog == 64);
  CHECK_FALSE(Parse({"-b", "-1"}).ok());
  CHECK(Parse({"--keepalive-idle=30"}).value().keepalive_idle == 30);
  CHECK(Parse({"--keepalive-interval", "-1"}).value().keepalive_interval == -1);
  CHECK(Parse({"--keepalive-count=5"}).value().keepalive_count == 5);
  CHECK_FALSE(Parse({"--keepalive-count=-2"}).ok());
  CHECK(Parse({"-f", "100000"}).value().file_descriptors == 100000);
  CHECK_FALSE(Parse({"-f", "-1"}).ok());
}

TEST_CASE("-w keeps its full 32-bit value", "[config]") {
  CHECK(Parse({"-w", "256"}).value().broker.worker_wakeup == 256);
  CHECK(Parse({"--worker-wakeup=4294967295"}).value().broker.worker_wakeup == 4294967295u);
  CHECK_FALSE(Parse({"-w", "4294967296"}).ok());
}

TEST_CASE("the other peer-controlled limits are configurable within safe bounds", "[config]") {
  const Config defaults = Parse({}).value();
  CHECK(defaults.limits.max_text_line == 8191);
  CHECK(defaults.limits.max_unique == 64);
  CHECK(Parse({"--max-pending-output=65536"}).value().limits.max_pending_output == 65536);
  CHECK_FALSE(Parse({"--max-pending-output=65535"}).ok());
  CHECK(Parse({"--max-text-line=64"}).value().limits.max_text_line == 64);
  CHECK_FALSE(Parse({"--max-text-line=63"}).ok());
  CHECK(Parse({"--max-text-line=1048576"}).value().limits.max_text_line == 1048576);
  CHECK_FALSE(Parse({"--max-text-line=1048577"}).ok());
  CHECK(Parse({"--max-unique=64"}).value().limits.max_unique == 64);
  CHECK(Parse({"--max-unique=8"}).value().broker.max_unique == 8);  // the broker enforces it
  CHECK_FALSE(Parse({"--max-unique=65"}).ok());
  CHECK_FALSE(Parse({"--max-unique=0"}).ok());
}

TEST_CASE("--max-packet-body is at least 1024 and fits the 32-bit size field", "[config]") {
  CHECK(Parse({"--max-packet-body=1024"}).value().limits.max_packet_body == 1024);
  CHECK(Parse({"--max-packet-body", "4294967295"}).value().limits.max_packet_body == 4294967295u);
  CHECK_THAT(ErrorOf(Parse({"--max-packet-body=1023"})), Contains("1024"));
  CHECK_FALSE(Parse({"--max-packet-body=4294967296"}).ok());
}

TEST_CASE("-q names are case-insensitive and map to memory or sqlite", "[config]") {
  for (const char* name : {"builtin", "BUILTIN", "none", "Memory"}) {
    auto r = Parse({"-q", name});
    REQUIRE(r.ok());
    CHECK(r.value().queue_type == QueueType::kNone);
  }
  for (const char* name : {"libsqlite3", "LibSQLite3", "sqlite"}) {
    auto r = Parse({"-q", name, "--libsqlite3-db=/var/lib/q.db"});
    REQUIRE(r.ok());
    CHECK(r.value().queue_type == QueueType::kSqlite);
    CHECK(r.value().sqlite_db == "/var/lib/q.db");
  }
}

TEST_CASE("an explicit -q libsqlite3 needs --libsqlite3-db, as in gearmand", "[config]") {
  CHECK(ErrorOf(Parse({"-q", "libsqlite3"})) ==
        "missing required --libsqlite3-db=<dbfile> argument");
}

TEST_CASE("--libsqlite3-db alone selects the sqlite queue with that file", "[config]") {
  auto r = Parse({"--libsqlite3-db", "jobs.db", "--libsqlite3-table=old_queue"});
  REQUIRE(r.ok());
  CHECK(r.value().queue_type == QueueType::kSqlite);
  CHECK(r.value().sqlite_db == "jobs.db");
  CHECK(r.value().sqlite_table == "old_queue");
  CHECK_FALSE(Parse({"--libsqlite3-table=drop table"}).ok());
}

TEST_CASE("gearmand's other queue types are refused by name", "[config]") {
  for (const char* name :
       {"MySQL", "Postgres", "redis", "libmemcached", "libtokyocabinet", "libdrizzle"}) {
    auto r = Parse({"--queue-type", name});
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(ErrorOf(r), Contains(name) && Contains("roundhouse does not have"));
  }
  CHECK_THAT(ErrorOf(Parse({"-q", "floppy"})), Contains("unknown queue type"));
}

TEST_CASE("options of gearmand's other queue plugins are refused by name", "[config]") {
  auto r = Parse({"--mysql-host=db.example"});
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(ErrorOf(r), Contains("'--mysql-host'") && Contains("MySQL"));
  CHECK_THAT(ErrorOf(Parse({"--redis-server", "x"})), Contains("redis"));
}

TEST_CASE("-r http turns on gearmand's HTTP protocol on --http-port (default 8080)", "[config]") {
  auto r = Parse({"-r", "http"});
  REQUIRE(r.ok());
  CHECK(r.value().http_protocol);
  CHECK(r.value().http_port == 8080);
  CHECK(r.value().status_port == 0);
  CHECK(r.value().warnings.empty());
  r = Parse({"--protocol=HTTP", "--http-port", "18080"});
  REQUIRE(r.ok());
  CHECK(r.value().http_protocol);
  CHECK(r.value().http_port == 18080);
  CHECK_THAT(ErrorOf(Parse({"-r", "gopher"})), Contains("-r") && Contains("http"));
}

TEST_CASE("--http-port without -r http has no effect and is warned; the status API moved",
          "[config]") {
  auto r = Parse({"--http-port", "8081"});
  REQUIRE(r.ok());
  CHECK_FALSE(r.value().http_protocol);
  CHECK(r.value().status_port == 0);
  REQUIRE(r.value().warnings.size() == 1);
  CHECK_THAT(r.value().warnings[0], Contains("--status-port"));
  r = Parse({"--status-port", "4780", "--status-listen=0.0.0.0"});
  REQUIRE(r.ok());
  CHECK(r.value().status_port == 4780);
  CHECK(r.value().status_listen == "0.0.0.0");
  CHECK(r.value().warnings.empty());
  r = Parse({"--status-port", "4780", "--http-listen=0.0.0.0"});
  REQUIRE(r.ok());
  CHECK(r.value().status_listen == "0.0.0.0");
  REQUIRE(r.value().warnings.size() == 1);
  CHECK_THAT(r.value().warnings[0], Contains("--status-listen"));
}

TEST_CASE("--ssl options take gearmand's meaning and defaults", "[config]") {
  auto defaults = Parse({});
  REQUIRE(defaults.ok());
  CHECK_FALSE(defaults.value().ssl);
  CHECK(defaults.value().ssl_ca_file == "/etc/ssl/certs/gearmand-ca.pem");
  CHECK(defaults.value().ssl_certificate == "/etc/ssl/certs/gearmand.pem");
  CHECK(defaults.value().ssl_key == "/etc/ssl/certs/gearmand.key");
  CHECK(defaults.value().ssl_verify_client == "none");

  auto r = Parse({"--ssl", "--ssl-ca-file", "ca.pem", "--ssl-certificate=c.pem", "--ssl-key",
                  "k.pem", "--ssl-verify-client=required", "--ssl-require", "--status-ssl"});
  REQUIRE(r.ok());
  CHECK(r.value().ssl);
  CHECK(r.value().ssl_ca_file == "ca.pem");
  CHECK(r.value().ssl_certificate == "c.pem");
  CHECK(r.value().ssl_key == "k.pem");
  CHECK(r.value().ssl_verify_client == "required");
  CHECK(r.value().ssl_require);
  CHECK(r.value().status_ssl);

  CHECK_THAT(ErrorOf(Parse({"--ssl", "--ssl-verify-client", "sometimes"})),
             Contains("--ssl-verify-client") && Contains("none, optional or required"));
  CHECK_THAT(ErrorOf(Parse({"--ssl-require"})), Contains("--ssl-require needs --ssl"));

  auto per_listener = Parse({"--ssl", "-L", "127.0.0.1", "--ssl-require-listen", "192.0.2.10",
                             "--ssl-require-listen=::1"});
  REQUIRE(per_listener.ok());
  CHECK(per_listener.value().listen == std::vector<std::string>{"127.0.0.1"});
  CHECK(per_listener.value().ssl_require_listen == std::vector<std::string>{"192.0.2.10", "::1"});
  CHECK_FALSE(per_listener.value().ssl_require);
  CHECK_THAT(ErrorOf(Parse({"--ssl-require-listen", "::1"})),
             Contains("--ssl-require-listen needs --ssl"));
  CHECK_THAT(ErrorOf(Parse({"--ssl", "--ssl-require-listen="})), Contains("non-empty"));
  CHECK_THAT(ErrorOf(Parse({"--ssl-key="})), Contains("non-empty"));
}

TEST_CASE("switches and string options land in Config", "[config]") {
  auto r = Parse({"-d",
                  "-R",
                  "--exceptions",
                  "--keepalive",
                  "--syslog",
                  "--coredump",
                  "--store-queue-on-shutdown",
                  "--check-args",
                  "-u",
                  "gearman",
                  "-P",
                  "/run/rh.pid",
                  "-l",
                  "/var/log/rh.log",
                  "-L",
                  "127.0.0.1",
                  "--listen=::1",
                  "--priority-order=per-function",
                  "-t",
                  "8"});
  REQUIRE(r.ok());
  const Config& c = r.value();
  CHECK(c.daemon);
  CHECK(c.broker.round_robin);
  CHECK(c.broker.exceptions_default);
  CHECK(c.keepalive);
  CHECK(c.syslog);
  CHECK(c.coredump);
  CHECK(c.store_queue_on_shutdown);
  CHECK(c.check_args);
  CHECK(c.user == "gearman");
  CHECK(c.pid_file == "/run/rh.pid");
  CHECK(c.log_file == "/var/log/rh.log");
  CHECK(c.listen == std::vector<std::string>{"127.0.0.1", "::1"});
  CHECK(c.broker.priority_order == broker::PriorityOrder::kPerFunction);
  CHECK(c.threads == 8);
}

TEST_CASE("the upstream test harness and Debian command lines parse", "[config]") {
  auto harness = Parse({"--listen=localhost", "--port=30001", "--pid-file=/tmp/x.pid",
                        "--log-file=/tmp/x.log", "--verbose=INFO", "-u", "root"});
  REQUIRE(harness.ok());
  CHECK(harness.value().port == 30001);
  auto debian = Parse({"--pid-file=/run/gearman/gearmand.pid", "--listen=localhost", "--daemon",
                       "--log-file=/var/log/gearman-job-server/gearman.log"});
  REQUIRE(debian.ok());
  CHECK(debian.value().daemon);
}

TEST_CASE("--priority-order accepts only global or per-function", "[config]") {
  CHECK(Parse({"--priority-order", "global"}).value().broker.priority_order ==
        broker::PriorityOrder::kGlobal);
  CHECK_THAT(ErrorOf(Parse({"--priority-order=fifo"})), Contains("global or per-function"));
}

TEST_CASE("-h, --help, -V and --version only set flags for main", "[config]") {
  CHECK(Parse({"-h"}).value().show_help);
  CHECK(Parse({"--help"}).value().show_help);
  CHECK(Parse({"-V"}).value().show_version);
  CHECK(Parse({"--version"}).value().show_version);
}

TEST_CASE("an option that needs a value fails without one", "[config]") {
  CHECK_THAT(ErrorOf(Parse({"--port"})), Contains("--port requires a value"));
  CHECK_THAT(ErrorOf(Parse({"-p"})), Contains("-p requires a value"));
  // As in boost: the next argument is not taken when it is itself an option.
  CHECK_THAT(ErrorOf(Parse({"-p", "-d"})), Contains("-p requires a value"));
  CHECK_THAT(ErrorOf(Parse({"--log-file", "--daemon"})), Contains("requires a value"));
}

TEST_CASE("a switch given a value is an error", "[config]") {
  CHECK(ErrorOf(Parse({"--daemon=yes"})) == "option --daemon does not take a value");
}

TEST_CASE("an option given twice on the command line is an error, except -L", "[config]") {
  CHECK(ErrorOf(Parse({"-p", "1", "--port=2"})) ==
        "option '--port' cannot be specified more than once");
  CHECK(Parse({"-L", "a", "-L", "b"}).value().listen.size() == 2);
}

TEST_CASE("empty string values are refused where a name is required", "[config]") {
  CHECK_FALSE(Parse({"--log-file="}).ok());
  CHECK_FALSE(Parse({"-u", ""}).ok());
  CHECK_FALSE(Parse({"--listen="}).ok());
}

TEST_CASE("GEARMAND_PORT overrides the port while it is 4730", "[config]") {
  auto env = TestEnv();
  env.gearmand_port = "5000";
  CHECK(Parse({}, env).value().port == 5000);
  CHECK(Parse({"-p", "4731"}, env).value().port == 4731);
  // gearmand compares the value with its default, so an explicit 4730 yields too.
  CHECK(Parse({"-p", "4730"}, env).value().port == 5000);
  env.gearmand_port = "fifty";
  CHECK_THAT(ErrorOf(Parse({}, env)), Contains("GEARMAND_PORT") && Contains("fifty"));
  CHECK(Parse({"-p", "4731"}, env).ok());
}

TEST_CASE("the old signature reads GEARMAND_PORT from its third argument", "[config]") {
  const char* argv[] = {"roundhouse", "--config-file=/dev/null", "-q", "none"};
  auto r = roundhouse::ParseCommandLine(4, argv, "4999");
  REQUIRE(r.ok());
  CHECK(r.value().port == 4999);
}

TEST_CASE("the default handle prefix is H:<nodename> cut to 42 bytes", "[config]") {
  CHECK(roundhouse::kMaxHandlePrefix == 42);
  CHECK(roundhouse::DefaultHandlePrefix("build-01") == "H:build-01");
  std::string long_name(64, 'n');
  std::string prefix = roundhouse::DefaultHandlePrefix(long_name);
  CHECK(prefix.size() == 42);
  CHECK(prefix == "H:" + std::string(40, 'n'));
  // The longest handle, with a 20-digit counter, fits 63 bytes.
  CHECK((prefix + ":" + std::to_string(UINT64_MAX)).size() == 63);

  auto env = TestEnv();
  env.nodename = long_name;
  CHECK(Parse({}, env).value().broker.handle_prefix == prefix);
}

TEST_CASE("--job-handle-prefix replaces the prefix and is at most 42 bytes", "[config]") {
  CHECK(Parse({"--job-handle-prefix=J"}).value().broker.handle_prefix == "J");
  std::string ok(42, 'p');
  CHECK(Parse({"--job-handle-prefix", ok}).value().broker.handle_prefix == ok);
  auto r = Parse({"--job-handle-prefix", ok + "p"});
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(ErrorOf(r), Contains("at most 42 bytes"));
  CHECK_FALSE(Parse({"--job-handle-prefix=a b"}).ok());
  // Empty means the default, as in gearmand.
  CHECK(Parse({"--job-handle-prefix="}).value().broker.handle_prefix == "H:testhost");
}

TEST_CASE("--jenkins registers masters from NAME:KEY=VALUE lists", "[config]") {
  auto r = Parse({"--jenkins", "ci:base_url=https://ci.example/,user=bot,api_token_file=/t",
                  "--jenkins=qa:base_url=http://qa/"});
  REQUIRE(r.ok());
  const auto& masters = r.value().jenkins;
  REQUIRE(masters.size() == 2);
  CHECK(masters[0].name == "ci");
  CHECK(masters[0].settings.at("base_url") == "https://ci.example/");
  CHECK(masters[0].settings.at("user") == "bot");
  CHECK(masters[0].settings.at("api_token_file") == "/t");
  CHECK(masters[0].origin == "command line");
  CHECK(masters[1].name == "qa");
  CHECK(masters[1].settings.size() == 1);
}

TEST_CASE("--jenkins rejects empty or duplicate names and malformed settings", "[config]") {
  CHECK_THAT(ErrorOf(Parse({"--jenkins", ":base_url=x"})), Contains("NAME"));
  CHECK_THAT(ErrorOf(Parse({"--jenkins", "ci:base_url"})), Contains("KEY=VALUE"));
  CHECK_THAT(ErrorOf(Parse({"--jenkins", "ci:a=1,a=2"})), Contains("'a' given twice"));
  CHECK_THAT(ErrorOf(Parse({"--jenkins", "ci:a=1", "--jenkins", "ci:b=2"})),
             Contains("duplicate jenkins master 'ci'"));
}
