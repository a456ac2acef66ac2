// The server's configuration: gearmand's command line (doc/protocol.md §5), gearmand config
// files (option tokens) and roundhouse's own `key = value` files with `[jenkins NAME]` sections.
// Parsing is pure (no I/O besides reading the named files) so it is unit-tested directly.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/log.h"
#include "base/status.h"
#include "protocol/limits.h"
#include "server/acl.h"
#include "server/broker/broker.h"

namespace roundhouse {

// One `[jenkins NAME]` section or `--jenkins` flag: raw key/value pairs, validated by jenkins/.
struct JenkinsMasterConfig {
  std::string name;
  std::map<std::string, std::string> settings;
  std::string origin;  // "file:line" or "command line", for error messages
};

enum class QueueType { kNone, kSqlite };

struct Config {
  // Listening
  std::vector<std::string> listen;  // -L, repeatable; empty = all addresses
  uint16_t port = 4730;             // -p (GEARMAND_PORT env when left at default)
  int backlog = 32;                 // -b
  bool keepalive = false;
  int keepalive_idle = -1, keepalive_interval = -1, keepalive_count = -1;

  // TLS on the Gearman port (doc/protocol.md §5.5). The file defaults are gearmand 1.1.20's.
  bool ssl = false;          // --ssl: TLS or plain per connection, told by its first byte
  bool ssl_require = false;  // --ssl-require: plain connections are refused
  // --ssl-require-listen, repeatable: more listen addresses (same port as -L's) whose
  // connections must speak TLS; -L's stay as --ssl-require says.
  std::vector<std::string> ssl_require_listen;
  std::string ssl_ca_file = "/etc/ssl/certs/gearmand-ca.pem";
  std::string ssl_certificate = "/etc/ssl/certs/gearmand.pem";
  std::string ssl_key = "/etc/ssl/certs/gearmand.key";
  // --ssl-verify-client: "none" (gearmand's behaviour), "optional" or "required"; checked by the
  // option handler (server/tls/tls_context.h ParseClientCertificates).
  std::string ssl_verify_client = "none";
  bool status_ssl = false;  // --status-ssl: the status API over TLS with the same certificate

  // Process
  bool daemon = false;              // -d
  std::string pid_file;             // -P; empty = none
  std::string log_file = "stderr";  // -l; "stderr", "none" or a path
  log::Level verbose = log::Level::kError;
  std::string user;                 // -u
  int threads = 4;                  // -t, accepted and unused
  uint64_t file_descriptors = 0;    // -f; 0 = leave RLIMIT_NOFILE
  bool syslog = false, coredump = false;
  bool check_args = false;          // --check-args: validate and exit 0

  // Broker
  broker::Options broker;           // -j, -w, -R, --priority-order, --exceptions, prefix
  protocol::Limits limits;          // --max-packet-body and friends
  // --max-memory: budget for queued job data plus unsent output; 0 = a quarter of physical
  // memory, computed at start (server/server.cc).
  uint64_t max_memory = 0;
  // --partial-frame-timeout: a started packet or admin line must be complete this many seconds
  // after its first byte; 0 = no limit.
  int partial_frame_timeout_s = 60;

  // Storage
  QueueType queue_type = QueueType::kSqlite;  // -q
  std::string sqlite_db;  // --libsqlite3-db; empty: roundhouse-<port>.db (server/queue_file.h)
  std::string sqlite_table = "gearman_queue"; // --libsqlite3-table (gearmand import)
  bool sqlite_skip_damaged = false;           // --libsqlite3-skip-damaged
  bool store_queue_on_shutdown = false;       // accepted, no effect

  // Jenkins (issue 4)
  std::vector<JenkinsMasterConfig> jenkins;
  // doc/jenkins.md §4.3 F5: a job queued this long for a function that only Jenkins masters
  // listed and nobody serves now ends with an error; 0 = wait forever.
  int jenkins_unroutable_timeout_s = 600;
  // --shutdown-timeout: bound of a graceful shutdown in seconds; 0 = none (gearmand's behaviour).
  int shutdown_timeout_s = 30;
  // --jenkins-token-dir: the one directory whose files admin `jenkins add ... api_token_file=NAME`
  // may name (a bare file name); empty: admin-added masters cannot use api_token_file.
  std::string jenkins_token_dir;

  // gearmand's HTTP protocol (-r http, doc/protocol.md §5.4): jobs submitted over HTTP on
  // --http-port, bound to the -L addresses like the Gearman port. --http-port without -r http
  // has no effect, as in gearmand (a warning names --status-port).
  bool http_protocol = false;
  uint16_t http_port = 8080;
  // That listener's limits: connections per peer address, and the time a whole request (head
  // and body) may take from the accept (server/http/gearman_http.h).
  size_t http_max_connections_per_address = 256;
  int http_request_timeout_s = 30;

  // roundhouse's HTTP status API, metrics and dashboard (issue 6); 0 = off
  uint16_t status_port = 0;
  std::string status_listen = "127.0.0.1";
  // /metrics shows per-function series for at most this many functions (the most active); the
  // rest are summed into series labelled other="true" (README, "Status API, metrics").
  int metrics_max_functions = 100;
  // --status-token-file / --status-token-env: where the status API's bearer token comes from
  // (read at start, server/access.h); both empty = no token required.
  std::string status_token_file;
  std::string status_token_env;

  // Access control (doc/acl.md): the `[acl NAME]` sections of the config file; null = off (no
  // section), and then every connection may do everything, as with gearmand.
  std::shared_ptr<const acl::Table> acl;

  // Messages for the log once it is open (deprecated or ineffective options).
  std::vector<std::string> warnings;

  // What to do instead of serving.
  bool show_help = false;
  bool show_version = false;
};

// Parses argv (argv[0] is skipped), reading --config-file / @file / the default /etc/gearmand.conf
// (missing default is fine). `env_port` is the GEARMAND_PORT value or empty. Errors name the
// option, or the file and line.
Result<Config> ParseCommandLine(int argc, const char* const* argv, const std::string& env_port);

// `--help` text.
std::string UsageText();

// The man page roundhouse(8) in roff, generated from the same option table as UsageText() (the
// build runs server/man_page.cc to write it, so it cannot drift from --help).
std::string ManPageText();

// ---- Additions (config parsing details exposed for main, --check-args and tests).

// A handle is "<prefix>:<n>" with n at most 20 digits (uint64) and the whole handle at most
// Limits::max_handle (63) bytes, so a prefix may use 63 - 1 - 20 = 42 bytes. A longer
// --job-handle-prefix is refused.
inline constexpr size_t kMaxHandlePrefix = protocol::Limits{}.max_handle - 1 - 20;

// "H:<nodename>" with the nodename cut to its first kMaxHandlePrefix - 2 (40) bytes.
std::string DefaultHandlePrefix(std::string_view nodename);

// What ParseCommandLine reads from outside argv; tests substitute all of it.
struct ParseEnv {
  std::string gearmand_port;  // GEARMAND_PORT, or empty
  // Read when no --config-file / @PATH is given; empty = none.
  std::string default_config_file = "/etc/gearmand.conf";
  std::string nodename;  // for the default handle prefix; empty = uname(2)
};
// The full form of ParseCommandLine above, which calls this one with the real environment.
// Precedence is gearmand's: an option set on the command line ignores the config file's value
// for it, wherever --config-file appears (-L included: the command line's list replaces the
// file's); --jenkins flags and [jenkins NAME] sections from both sources all register. Within one
// source a non-repeatable option may appear once. GEARMAND_PORT applies when the resulting port
// is 4730 (gearmand compares the value, so an explicit `-p 4730` yields to it too).
Result<Config> ParseCommandLine(int argc, const char* const* argv, const ParseEnv& env);

// A config file split into its parts without validating any option (config_file.cc).
// Format (a), gearmand's: option tokens separated by spaces, tabs and newlines; a token starting
// with '#' comments out the rest of its line. Format (b), roundhouse's: one `key = value` (or a
// bare `key` for an on/off option) per line, whole-line `#` comments, values taken verbatim after
// trimming, `[jenkins NAME]` sections whose lines become that master's settings, and `[acl NAME]`
// sections (NAME may contain spaces) whose lines become that identity's grants. A file whose
// first line that is neither blank nor a comment starts with '-' is format (a).
struct ConfigText {
  struct Token {  // format (a)
    std::string text;
    int line = 0;
  };
  struct Entry {  // format (b), outside any section
    std::string key;
    std::string value;
    bool has_value = false;  // false for a bare `key`
    int line = 0;
  };
  bool option_tokens = false;  // true: format (a), `tokens` is filled; else `entries`, `jenkins`
  std::vector<Token> tokens;
  std::vector<Entry> entries;
  // One per section, in file order, `origin` = "<file_name>:<line of the header>". Duplicate
  // names are not checked here (ParseCommandLine checks them across every source).
  std::vector<JenkinsMasterConfig> jenkins;
  // `[acl NAME]` sections, likewise (checked by acl::Table::Parse).
  std::vector<acl::SectionText> acl;
};
// Errors read "<file_name>:<line>: <what>".
Result<ConfigText> SplitConfigText(std::string_view text, const std::string& file_name);

}  // namespace roundhouse
