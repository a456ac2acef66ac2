// The option table (config_options.h): names, help, defaults and one handler per option that
// validates the value and stores it in Config. doc/protocol.md §5.1, §5.2.
#include "server/config_options.h"

#include <charconv>
#include <climits>
#include <cstdint>
#include <limits>
#include <string>

#include "base/text.h"

namespace roundhouse::config_internal {
namespace {

std::string Quote(std::string_view v) { return "'" + std::string(v) + "'"; }

Status Invalid(const Setting& s, const std::string& why) {
  return Fail(s, "invalid value " + Quote(s.value) + " for " + s.display + ": " + why);
}

bool IsSpaceOrControl(char c) {
  auto u = static_cast<unsigned char>(c);
  return u <= 0x20 || u == 0x7f;
}

bool HasSpace(std::string_view v) {
  for (char c : v) {
    if (IsSpaceOrControl(c)) return true;
  }
  return false;
}

// Whole-string decimal integers only: no sign but '-', no spaces, no trailing bytes.
Status Signed(const Setting& s, int64_t lo, int64_t hi, int64_t* out) {
  const std::optional<int64_t> n = ParseDecimal<int64_t>(s.value);
  if (!n || *n < lo || *n > hi) {
    return Invalid(s,
                   "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  *out = *n;
  return Status::Ok();
}

Status Unsigned(const Setting& s, uint64_t lo, uint64_t hi, uint64_t* out) {
  const std::optional<uint64_t> n = ParseDecimal<uint64_t>(s.value);
  if (!n || *n < lo || *n > hi) {
    return Invalid(s,
                   "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  *out = *n;
  return Status::Ok();
}

template <typename T>
Status SignedInto(const Setting& s, int64_t lo, int64_t hi, T* field) {
  int64_t n = 0;
  Status st = Signed(s, lo, hi, &n);
  if (st.ok()) *field = static_cast<T>(n);
  return st;
}

template <typename T>
Status UnsignedInto(const Setting& s, uint64_t lo, uint64_t hi, T* field) {
  uint64_t n = 0;
  Status st = Unsigned(s, lo, hi, &n);
  if (st.ok()) *field = static_cast<T>(n);
  return st;
}

// A byte count: decimal digits with an optional binary suffix K, M, G or T (any case, an
// optional trailing 'B' or 'iB'), e.g. 512M, 2G, 1048576.
Status SizeInto(const Setting& s, uint64_t lo, uint64_t* field) {
  const std::string& v = s.value;
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  std::string_view rest(end, static_cast<size_t>(v.data() + v.size() - end));
  uint64_t unit = 1;
  if (!rest.empty()) {
    const char c = static_cast<char>(rest[0] | 0x20);
    unit = c == 'k'   ? 1ull << 10
           : c == 'm' ? 1ull << 20
           : c == 'g' ? 1ull << 30
           : c == 't' ? 1ull << 40
                      : 0;
    rest.remove_prefix(1);
    if (EqualsIgnoreCase(rest, "ib") || EqualsIgnoreCase(rest, "b")) rest = {};
  }
  if (v.empty() || v[0] == '-' || ec != std::errc() || unit == 0 || !rest.empty() ||
      n > UINT64_MAX / unit || n * unit < lo) {
    return Invalid(s, "expected a size of at least " + std::to_string(lo) +
                          " bytes, such as 1048576, 512M or 2G");
  }
  *field = n * unit;
  return Status::Ok();
}

Status PortInto(const Setting& s, uint16_t* field) {
  uint64_t n = 0;
  if (!Unsigned(s, 0, 65535, &n).ok()) return Invalid(s, "expected a port number from 0 to 65535");
  *field = static_cast<uint16_t>(n);
  return Status::Ok();
}

Status NonEmptyInto(const Setting& s, std::string* field) {
  if (s.value.empty()) return Fail(s, s.display + " needs a non-empty value");
  *field = s.value;
  return Status::Ok();
}

template <bool Config::*Field>
Status SetSwitch(const Setting& s, Config& c, ParseState&) {
  c.*Field = s.on;
  return Status::Ok();
}

template <std::string Config::*Field>
Status SetString(const Setting& s, Config& c, ParseState&) {
  return NonEmptyInto(s, &(c.*Field));
}

Status ApplyQueueType(const Setting& s, Config& c, ParseState& st) {
  static constexpr std::string_view kNone[] = {"builtin", "none", "memory"};
  static constexpr std::string_view kSqlite[] = {"libsqlite3", "sqlite"};
  static constexpr std::string_view kForeign[] = {"mysql",      "postgres",     "libpq",
                                                  "redis",      "libmemcached", "libtokyocabinet",
                                                  "libdrizzle", "drizzle"};
  for (auto name : kNone) {
    if (EqualsIgnoreCase(s.value, name)) {
      c.queue_type = QueueType::kNone;
      st.sqlite_requested = false;
      return Status::Ok();
    }
  }
  for (auto name : kSqlite) {
    if (EqualsIgnoreCase(s.value, name)) {
      c.queue_type = QueueType::kSqlite;
      st.sqlite_requested = true;
      st.sqlite_requested_at = s.where;
      return Status::Ok();
    }
  }
  for (auto name : kForeign) {
    if (EqualsIgnoreCase(s.value, name)) {
      return Fail(s, "queue type " + Quote(s.value) +
                         " is a gearmand plugin roundhouse does not have; use libsqlite3 (durable) "
                         "or builtin (memory only)");
    }
  }
  return Invalid(s, "unknown queue type (expected builtin, none, libsqlite3 or sqlite)");
}

Status ApplyVerbose(const Setting& s, Config& c, ParseState&) {
  if (!log::ParseLevel(s.value, &c.verbose)) {
    return Fail(s, "Invalid value for --verbose supplied: " + Quote(s.value) +
                       " (expected FATAL, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFO or DEBUG)");
  }
  return Status::Ok();
}

Status ApplyPriorityOrder(const Setting& s, Config& c, ParseState&) {
  if (EqualsIgnoreCase(s.value, "global")) {
    c.broker.priority_order = broker::PriorityOrder::kGlobal;
  } else if (EqualsIgnoreCase(s.value, "per-function")) {
    c.broker.priority_order = broker::PriorityOrder::kPerFunction;
  } else {
    return Invalid(s, "expected global or per-function");
  }
  return Status::Ok();
}

Status ApplyHandlePrefix(const Setting& s, Config& c, ParseState&) {
  if (s.value.size() > kMaxHandlePrefix) {
    return Invalid(s, "a job handle prefix is at most " + std::to_string(kMaxHandlePrefix) +
                          " bytes (handles are at most 63 bytes with a 20-digit counter), this "
                          "one has " +
                          std::to_string(s.value.size()));
  }
  if (HasSpace(s.value)) {
    return Invalid(s, "a job handle prefix cannot contain spaces or control characters");
  }
  c.broker.handle_prefix = s.value;  // empty = the default, as in gearmand
  return Status::Ok();
}

Status ApplySqliteTable(const Setting& s, Config& c, ParseState&) {
  if (s.value.empty()) return Fail(s, s.display + " needs a non-empty value");
  for (char ch : s.value) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_';
    if (!ok) return Invalid(s, "a table name may contain only letters, digits and '_'");
  }
  c.sqlite_table = s.value;
  return Status::Ok();
}

// NAME:KEY=VALUE,KEY=VALUE,... (values cannot contain ','; use a [jenkins NAME] section then).
Status ApplyJenkins(const Setting& s, Config& c, ParseState&) {
  constexpr std::string_view kForm = " (expected NAME:KEY=VALUE[,KEY=VALUE...])";
  std::string_view v = s.value;
  size_t colon = v.find(':');
  std::string_view name = v.substr(0, colon);
  if (name.empty()) return Invalid(s, "missing the master NAME" + std::string(kForm));
  if (HasSpace(name)) return Invalid(s, "the master NAME contains whitespace");
  JenkinsMasterConfig master{std::string(name), {}, s.where.empty() ? "command line" : s.where};
  std::string_view rest =
      colon == std::string_view::npos ? std::string_view() : v.substr(colon + 1);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return Invalid(s, "setting " + Quote(item) + " is not KEY=VALUE" + std::string(kForm));
    }
    auto [it, inserted] =
        master.settings.emplace(std::string(item.substr(0, eq)), std::string(item.substr(eq + 1)));
    if (!inserted) return Invalid(s, "key " + Quote(it->first) + " given twice");
  }
  c.jenkins.push_back(std::move(master));
  return Status::Ok();
}

std::string QueueTypeName(const Config& c) {
  return c.queue_type == QueueType::kSqlite ? "libsqlite3" : "builtin";
}

// The table. Order is --help order within each group.
const OptionSpec kOptions[] = {
    // ---- Listening
    {"port", 'p', "PORT", Group::kListen, kNoFlags,
     "Port to listen on (0 = any free port). While it is 4730, the GEARMAND_PORT environment "
     "variable overrides it.",
     [](const Setting& s, Config& c, ParseState&) { return PortInto(s, &c.port); },
     [](const Config& c) { return std::to_string(c.port); }},
    {"listen", 'L', "ADDR", Group::kListen, kRepeatable,
     "Address to listen on; repeat for several. Every address getaddrinfo() returns for ADDR is "
     "bound. Default: all addresses.",
     [](const Setting& s, Config& c, ParseState&) {
       if (s.value.empty()) return Fail(s, s.display + " needs a non-empty value");
       c.listen.push_back(s.value);
       return Status::Ok();
     },
     nullptr},
    {"backlog", 'b', "N", Group::kListen, kNoFlags, "Listen backlog.",
     [](const Setting& s, Config& c, ParseState&) { return SignedInto(s, 0, INT_MAX, &c.backlog); },
     [](const Config& c) { return std::to_string(c.backlog); }},
    {"keepalive", 0, "", Group::kListen, kNoFlags,
     "Set SO_KEEPALIVE on the listening sockets too (accepted sockets always have it).",
     SetSwitch<&Config::keepalive>, nullptr},
    {"keepalive-idle", 0, "N", Group::kListen, kNoFlags,
     "TCP_KEEPIDLE in seconds for accepted sockets; -1 = system default.",
     [](const Setting& s, Config& c, ParseState&) {
       return SignedInto(s, -1, INT_MAX, &c.keepalive_idle);
     },
     [](const Config& c) { return std::to_string(c.keepalive_idle); }},
    {"keepalive-interval", 0, "N", Group::kListen, kNoFlags,
     "TCP_KEEPINTVL in seconds for accepted sockets; -1 = system default.",
     [](const Setting& s, Config& c, ParseState&) {
       return SignedInto(s, -1, INT_MAX, &c.keepalive_interval);
     },
     [](const Config& c) { return std::to_string(c.keepalive_interval); }},
    {"keepalive-count", 0, "N", Group::kListen, kNoFlags,
     "TCP_KEEPCNT for accepted sockets; -1 = system default.",
     [](const Setting& s, Config& c, ParseState&) {
       return SignedInto(s, -1, INT_MAX, &c.keepalive_count);
     },
     [](const Config& c) { return std::to_string(c.keepalive_count); }},
    {"max-packet-body", 0, "BYTES", Group::kListen, kNoFlags,
     "Largest packet body accepted (at least 1024); a larger packet is answered "
     "ERROR DATA_TOO_LARGE and discarded.",
     [](const Setting& s, Config& c, ParseState&) {
       return UnsignedInto(s, 1024, UINT32_MAX, &c.limits.max_packet_body);
     },
     [](const Config& c) { return std::to_string(c.limits.max_packet_body); }},
    {"max-pending-output", 0, "BYTES", Group::kListen, kNoFlags,
     "Output queued for one peer before the server stops reading from it until it catches up "
     "(at least 65536).",
     [](const Setting& s, Config& c, ParseState&) {
       return UnsignedInto(s, 65536, UINT64_MAX, &c.limits.max_pending_output);
     },
     [](const Config& c) { return std::to_string(c.limits.max_pending_output); }},
    {"max-memory", 0, "SIZE", Group::kListen, kNoFlags,
     "Memory budget for queued job data and unsent output of all connections (K, M, G "
     "suffixes). At the budget new submissions get ERROR QUEUE_ERROR; accepted work goes on. "
     "0 = a quarter of physical memory.",
     [](const Setting& s, Config& c, ParseState&) { return SizeInto(s, 0, &c.max_memory); },
     [](const Config& c) {
       return c.max_memory == 0 ? std::string("0") : std::to_string(c.max_memory);
     }},
    {"max-output-queue", 0, "SIZE", Group::kListen, kNoFlags,
     "Hard cap on output queued for one connection, whoever produced it (a worker's WORK_DATA "
     "to a client that does not read): past it the connection is closed as if its peer had left "
     "(K, M, G suffixes; at least 65536; one reply to an idle queue is always taken).",
     [](const Setting& s, Config& c, ParseState&) {
       return SizeInto(s, 65536, &c.limits.max_output_queue);
     },
     [](const Config& c) { return std::to_string(c.limits.max_output_queue); }},
    {"partial-frame-timeout", 0, "SECONDS", Group::kListen, kNoFlags,
     "A connection that sent part of a packet or admin line must complete it within this many "
     "seconds of its first byte, else it is closed; idle connections between packets stay. "
     "0 = no limit (gearmand).",
     [](const Setting& s, Config& c, ParseState&) {
       return SignedInto(s, 0, INT_MAX, &c.partial_frame_timeout_s);
     },
     [](const Config& c) { return std::to_string(c.partial_frame_timeout_s); }},
    {"max-text-line", 0, "BYTES", Group::kListen, kNoFlags,
     "Longest admin text line (without its newline); a longer one closes the connection, as in "
     "gearmand (64 to 1048576).",
     [](const Setting& s, Config& c, ParseState&) {
       return UnsignedInto(s, 64, 1048576, &c.limits.max_text_line);
     },
     [](const Config& c) { return std::to_string(c.limits.max_text_line); }},
    {"max-unique", 0, "BYTES", Group::kListen, kNoFlags,
     "Longest unique id (and reducer) accepted; longer ones get ARGUMENT_TOO_LARGE. At most 64: "
     "libgearman clients hold uniques in 64-byte buffers.",
     [](const Setting& s, Config& c, ParseState&) {
       return UnsignedInto(s, 1, 64, &c.limits.max_unique);
     },
     [](const Config& c) { return std::to_string(c.limits.max_unique); }},

    // ---- TLS
    {"ssl", 0, "", Group::kTls, kNoFlags,
     "Offer TLS on the Gearman port (gearmand's option). Each connection is TLS or plain by its "
     "first byte, so clients built without TLS (Debian's gearman -S, gearadmin -S) keep working "
     "unless --ssl-require is given. SIGHUP reloads the certificate, key and CA file for new "
     "handshakes.",
     SetSwitch<&Config::ssl>, nullptr},
    {"ssl-ca-file", 0, "FILE", Group::kTls, kNoFlags,
     "PEM CA certificates that client certificates are verified against (read only with "
     "--ssl-verify-client optional or required).",
     SetString<&Config::ssl_ca_file>, [](const Config& c) { return c.ssl_ca_file; }},
    {"ssl-certificate", 0, "FILE", Group::kTls, kNoFlags,
     "PEM server certificate, followed by any intermediate certificates.",
     SetString<&Config::ssl_certificate>, [](const Config& c) { return c.ssl_certificate; }},
    {"ssl-key", 0, "FILE", Group::kTls, kNoFlags, "PEM private key of the server certificate.",
     SetString<&Config::ssl_key>, [](const Config& c) { return c.ssl_key; }},
    {"ssl-verify-client", 0, "MODE", Group::kTls, kNoFlags,
     "Client certificates: 'none' (not asked for, as in gearmand), 'optional' (asked for; one "
     "that is sent must verify against --ssl-ca-file) or 'required'. A verified certificate's "
     "subject CN is the connection's identity.",
     [](const Setting& s, Config& c, ParseState&) {
       if (s.value != "none" && s.value != "optional" && s.value != "required") {
         return Invalid(s, "expected none, optional or required");
       }
       c.ssl_verify_client = s.value;
       return Status::Ok();
     },
     [](const Config& c) { return c.ssl_verify_client; }},
    {"ssl-require", 0, "", Group::kTls, kNoFlags,
     "With --ssl: close plain-text connections on the Gearman port (logged) instead of serving "
     "them.",
     SetSwitch<&Config::ssl_require>, nullptr},
    {"ssl-require-listen", 0, "ADDR", Group::kTls, kRepeatable,
     "With --ssl: also listen on ADDR (as -L ADDR, same port) and accept only TLS there: a "
     "plain-text peer gets one Gearman ERROR TLS_REQUIRED (or an ERR line) and is closed. "
     "Repeat for several; -L addresses keep serving plain text (unless --ssl-require). Without "
     "-L, only the ADDRs given here are listened on.",
     [](const Setting& s, Config& c, ParseState&) {
       if (s.value.empty()) return Fail(s, s.display + " needs a non-empty value");
       c.ssl_require_listen.push_back(s.value);
       return Status::Ok();
     },
     nullptr},
    {"status-ssl", 0, "", Group::kTls, kNoFlags,
     "Serve the HTTP status API (--status-port) over TLS only, with the same certificate, key and "
     "client-certificate policy.",
     SetSwitch<&Config::status_ssl>, nullptr},

    // ---- Process
    {"daemon", 'd', "", Group::kProcess, kNoFlags,
     "Detach and run in the background; the starting process exits once the listeners are bound "
     "and the queue is replayed.",
     SetSwitch<&Config::daemon>, nullptr},
    {"pid-file", 'P', "PATH", Group::kProcess, kNoFlags,
     "Write the process id to PATH (failure is fatal). Default: no pid file.",
     SetString<&Config::pid_file>, nullptr},
    {"log-file", 'l', "PATH", Group::kProcess, kNoFlags,
     "Log to PATH, or 'stderr', or 'none'. SIGHUP reopens it.", SetString<&Config::log_file>,
     [](const Config& c) { return c.log_file; }},
    {"verbose", 0, "LEVEL", Group::kProcess, kNoFlags,
     "Log level: FATAL, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFO or DEBUG (any case). "
     "-v is not accepted.",
     ApplyVerbose, [](const Config& c) { return std::string(log::LevelName(c.verbose)); }},
    {"syslog", 0, "", Group::kProcess, kNoFlags, "Also send log lines to syslog.",
     SetSwitch<&Config::syslog>, nullptr},
    {"user", 'u', "NAME", Group::kProcess, kNoFlags,
     "Switch to user NAME after binding the listeners (only when started as root).",
     SetString<&Config::user>, nullptr},
    {"threads", 't', "N", Group::kProcess, kNoFlags,
     "Accepted for gearmand compatibility (N >= 0) and ignored: one event loop serves everything.",
     [](const Setting& s, Config& c, ParseState&) { return SignedInto(s, 0, INT_MAX, &c.threads); },
     [](const Config& c) { return std::to_string(c.threads); }},
    {"file-descriptors", 'f', "N", Group::kProcess, kNoFlags,
     "Raise the open-file limit (RLIMIT_NOFILE) to N; 0 leaves it as it is.",
     [](const Setting& s, Config& c, ParseState&) {
       return UnsignedInto(s, 0, UINT64_MAX, &c.file_descriptors);
     },
     nullptr},
    {"coredump", 0, "", Group::kProcess, kNoFlags,
     "Allow core dumps (raise RLIMIT_CORE, stay dumpable after -u).", SetSwitch<&Config::coredump>,
     nullptr},
    {"shutdown-timeout", 0, "SECONDS", Group::kProcess, kNoFlags,
     "Bound of a graceful shutdown (SIGUSR1, admin 'shutdown graceful'): new submissions are "
     "refused, running and foreground jobs may finish for at most this long, queued durable jobs "
     "stay stored. Then the server exits as with SIGTERM. 0 = no bound (gearmand).",
     [](const Setting& s, Config& c, ParseState&) {
       return SignedInto(s, 0, INT_MAX, &c.shutdown_timeout_s);
     },
     [](const Config& c) { return std::to_string(c.shutdown_timeout_s); }},
    {"config-file", 0, "PATH", Group::kProcess, kCommandLineOnly,
     "Read options from PATH; '@PATH' is the same. A missing default file is fine, a missing "
     "named file is an error. Options given on the command line win over the file's.",
     [](const Setting& s, Config&, ParseState&) {
       // ParseCommandLine reads the file; this only vets the value.
       return s.value.empty() ? Fail(s, s.display + " needs a file name") : Status::Ok();
     },
     [](const Config&) { return std::string("/etc/gearmand.conf"); }},
    {"check-args", 0, "", Group::kProcess, kCommandLineOnly,
     "Check the command line and the config file, then exit (0 if they are valid).",
     SetSwitch<&Config::check_args>, nullptr},

    // ---- Broker
    {"job-retries", 'j', "N", Group::kBroker, kNoFlags,
     "Drop a job at its N-th re-queue (a worker died, gave it back or timed out) and fail it: "
     "-1 = never, 0 = at the first re-queue, up to 255.",
     [](const Setting& s, Config& c, ParseState&) {
       return SignedInto(s, -1, 255, &c.broker.job_retries);
     },
     [](const Config& c) { return std::to_string(c.broker.job_retries); }},
    {"worker-wakeup", 'w', "N", Group::kBroker, kNoFlags,
     "Sleeping workers woken (NOOP) per new job; 0 = all of them.",
     [](const Setting& s, Config& c, ParseState&) {
       return UnsignedInto(s, 0, UINT32_MAX, &c.broker.worker_wakeup);
     },
     [](const Config& c) { return std::to_string(c.broker.worker_wakeup); }},
    {"priority-order", 0, "ORDER", Group::kBroker, kNoFlags,
     "'global': a HIGH job of any function a worker can do goes first (gearmand 2.0); "
     "'per-function': the worker's first registered function with jobs goes first (1.1.x).",
     ApplyPriorityOrder,
     [](const Config& c) {
       return std::string(
           c.broker.priority_order == broker::PriorityOrder::kGlobal ? "global" : "per-function");
     }},
    {"round-robin", 'R', "", Group::kBroker, kNoFlags,
     "Rotate a worker's functions after each assignment. Always on with --priority-order=global.",
     [](const Setting& s, Config& c, ParseState&) {
       c.broker.round_robin = s.on;
       return Status::Ok();
     },
     nullptr},
    {"exceptions", 0, "", Group::kBroker, kNoFlags,
     "Turn the 'exceptions' option on for every connection.",
     [](const Setting& s, Config& c, ParseState&) {
       c.broker.exceptions_default = s.on;
       return Status::Ok();
     },
     nullptr},
    {"job-handle-prefix", 0, "PREFIX", Group::kBroker, kNoFlags,
     "Job handles are PREFIX:<n>. At most 42 bytes, so that a handle with a 20-digit counter fits "
     "in 63 bytes. Default: H:<nodename>, the nodename cut to 40 bytes.",
     ApplyHandlePrefix, nullptr},
    {"hashtable-buckets", 0, "N", Group::kBroker, kNoFlags,
     "Accepted for gearmand compatibility (N > 0) and ignored.",
     [](const Setting& s, Config&, ParseState&) -> Status {
       uint64_t n = 0;
       if (!Unsigned(s, 0, UINT32_MAX, &n).ok()) {
         return Invalid(s, "expected an integer from 1 to " + std::to_string(UINT32_MAX));
       }
       if (n == 0) return Fail(s, "hashtable-buckets has to be greater than 0");
       return Status::Ok();
     },
     [](const Config&) { return std::string("991"); }},

    // ---- Storage
    {"queue-type", 'q', "TYPE", Group::kStorage, kNoFlags,
     "Durable queue (any case): 'libsqlite3' or 'sqlite' = SQLite; 'builtin', 'none' or "
     "'memory' = jobs live in memory only. gearmand's other queue plugins are refused.",
     ApplyQueueType, QueueTypeName},
    {"libsqlite3-db", 0, "PATH", Group::kStorage, kNoFlags,
     "SQLite database file, owned by one server at a time (a second server on it refuses to "
     "start). Required when -q libsqlite3 is given explicitly, as in gearmand. Without it the "
     "file is in the working directory, and an existing ./roundhouse.db (the old default name) "
     "is renamed to it when that file does not exist yet.",
     [](const Setting& s, Config& c, ParseState& st) {
       st.sqlite_db_given = true;
       return NonEmptyInto(s, &c.sqlite_db);
     },
     [](const Config& c) {
       return c.sqlite_db.empty() ? std::string("roundhouse-PORT.db") : c.sqlite_db;
     }},
    {"libsqlite3-table", 0, "NAME", Group::kStorage, kNoFlags,
     "gearmand queue table in that database whose rows are imported at start-up.", ApplySqliteTable,
     [](const Config& c) { return c.sqlite_table; }},
    {"libsqlite3-skip-damaged", 0, "", Group::kStorage, kNoFlags,
     "Start even when stored jobs are damaged (checksum mismatch): log each damaged job with "
     "its handle and function, drop it for good, and serve the rest. Without it such a database "
     "is refused at start-up (doc/storage.md).",
     SetSwitch<&Config::sqlite_skip_damaged>, nullptr},
    {"store-queue-on-shutdown", 0, "", Group::kStorage, kNoFlags,
     "Accepted and without effect: every background job is written before it is acknowledged.",
     SetSwitch<&Config::store_queue_on_shutdown>, nullptr},

    // ---- Jenkins
    {"jenkins", 0, "NAME:KEY=VALUE,...", Group::kJenkins, kAccumulate,
     "Register a Jenkins master NAME with comma-separated settings (keys: doc/jenkins.md; "
     "http:// URLs only). Repeatable. Values cannot contain ','; use a [jenkins NAME] section "
     "in a roundhouse config file for those. Admin 'jenkins add|remove|list|show' manage "
     "masters at runtime. "
     "Example: ci:base_url=http://ci.example:8080/,user=bot,api_token_file=/etc/rh/ci.token",
     ApplyJenkins, nullptr},
    {"jenkins-unroutable-timeout", 0, "SECONDS", Group::kJenkins, kNoFlags,
     "A job queued this long for a build: function that Jenkins masters listed but no master "
     "or worker serves now ends with an error (WORK_EXCEPTION) so its client can react. "
     "0 = wait forever.",
     [](const Setting& s, Config& c, ParseState&) {
       return SignedInto(s, 0, INT_MAX, &c.jenkins_unroutable_timeout_s);
     },
     [](const Config& c) { return std::to_string(c.jenkins_unroutable_timeout_s); }},
    {"jenkins-token-dir", 0, "DIR", Group::kJenkins, kNoFlags,
     "Directory whose files admin 'jenkins add ... api_token_file=NAME' may name (NAME is a "
     "bare file name in DIR; symlinks are refused). Without it the admin port cannot make the "
     "server read any file. Masters from the config file or command line may name any path.",
     [](const Setting& s, Config& c, ParseState&) { return NonEmptyInto(s, &c.jenkins_token_dir); },
     [](const Config& c) { return c.jenkins_token_dir; }},

    // ---- HTTP: gearmand's HTTP protocol, and roundhouse's status API
    {"protocol", 'r', "NAME", Group::kHttp, kRepeatable,
     "Load a gearmand protocol: 'http' (the only one) submits jobs over HTTP on --http-port "
     "(doc/protocol.md §5.4).",
     [](const Setting& s, Config& c, ParseState&) {
       if (!EqualsIgnoreCase(s.value, "http")) {
         return Invalid(s, "the only protocol is 'http' (gearmand's HTTP protocol)");
       }
       c.http_protocol = true;
       return Status::Ok();
     },
     nullptr},
    {"http-port", 0, "PORT", Group::kHttp, kNoFlags,
     "Port of gearmand's HTTP protocol (with -r http), bound on the --listen addresses. Without "
     "-r http it has no effect, as in gearmand. (roundhouse's status API, which this option "
     "used to enable, is --status-port now.)",
     [](const Setting& s, Config& c, ParseState& st) {
       st.http_port_given = true;
       return PortInto(s, &c.http_port);
     },
     [](const Config& c) { return std::to_string(c.http_port); }},
    {"http-max-connections-per-address", 0, "N", Group::kHttp, kNoFlags,
     "Connections one peer address may hold on --http-port; the next one is answered 503 and "
     "closed (1 to 65535).",
     [](const Setting& s, Config& c, ParseState&) {
       return UnsignedInto(s, 1, 65535, &c.http_max_connections_per_address);
     },
     [](const Config& c) { return std::to_string(c.http_max_connections_per_address); }},
    {"http-request-timeout", 0, "SECONDS", Group::kHttp, kNoFlags,
     "A request on --http-port (head and body) must arrive within SECONDS of the connection's "
     "accept, or it is answered 408 and closed; a reply must be taken by the peer within SECONDS "
     "plus one per MiB, or the connection is closed (1 to 3600).",
     [](const Setting& s, Config& c, ParseState&) {
       return SignedInto(s, 1, 3600, &c.http_request_timeout_s);
     },
     [](const Config& c) { return std::to_string(c.http_request_timeout_s); }},
    {"status-port", 0, "PORT", Group::kHttp, kNoFlags,
     "Serve roundhouse's HTTP status API, Prometheus metrics (/metrics) and dashboard (/) on "
     "PORT; 0 = off.",
     [](const Setting& s, Config& c, ParseState&) { return PortInto(s, &c.status_port); },
     [](const Config& c) { return std::to_string(c.status_port); }},
    {"status-listen", 0, "ADDR", Group::kHttp, kNoFlags,
     "Address the status API binds to; the default is loopback only, as the API has no "
     "authentication.",
     SetString<&Config::status_listen>, [](const Config& c) { return c.status_listen; }},
    {"http-listen", 0, "ADDR", Group::kHttp, kNoFlags,
     "Deprecated name of --status-listen (warned at start-up).",
     [](const Setting& s, Config& c, ParseState&) {
       c.warnings.push_back(s.display + " is deprecated: use --status-listen (and --status-port)");
       return NonEmptyInto(s, &c.status_listen);
     },
     nullptr},
    {"metrics-max-functions", 0, "N", Group::kHttp, kNoFlags,
     "/metrics has per-function series for at most N functions, the most active ones (queued + "
     "running jobs + workers, then jobs submitted); all others, and functions freed since the "
     "start, are summed into series labelled other=\"true\" (no function label). 0 = only those "
     "sums.",
     [](const Setting& s, Config& c, ParseState&) {
       return SignedInto(s, 0, 100000, &c.metrics_max_functions);
     },
     [](const Config& c) { return std::to_string(c.metrics_max_functions); }},

    {"status-token-file", 0, "FILE", Group::kHttp, kNoFlags,
     "Require 'Authorization: Bearer TOKEN' on every status API request except the dashboard's "
     "static files, TOKEN being this file's content (surrounding blanks trimmed; a regular file "
     "of at most 64 KiB, read at start). Wrong or missing: 401. See doc/acl.md.",
     [](const Setting& s, Config& c, ParseState&) { return NonEmptyInto(s, &c.status_token_file); },
     nullptr},
    {"status-token-env", 0, "VAR", Group::kHttp, kNoFlags,
     "As --status-token-file, with the token taken from the environment variable VAR (the "
     "token itself is never an option, so it never shows in ps).",
     [](const Setting& s, Config& c, ParseState&) { return NonEmptyInto(s, &c.status_token_env); },
     nullptr},

    // ---- Information
    {"help", 'h', "", Group::kInfo, kCommandLineOnly, "Print this help and exit.",
     SetSwitch<&Config::show_help>, nullptr},
    {"version", 'V', "", Group::kInfo, kCommandLineOnly, "Print the version and exit.",
     SetSwitch<&Config::show_version>, nullptr},

    // ---- gearmand options refused at start-up
};

}  // namespace

std::span<const OptionSpec> AllOptions() { return kOptions; }

const OptionSpec* FindLong(std::string_view name) {
  for (const OptionSpec& o : kOptions) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

const OptionSpec* FindShort(char c) {
  if (c == 0) return nullptr;
  for (const OptionSpec& o : kOptions) {
    if (o.short_name == c) return &o;
  }
  return nullptr;
}

std::string ForeignPluginOption(std::string_view name) {
  struct Plugin {
    std::string_view prefix, queue;
  };
  static constexpr Plugin kPlugins[] = {
      {"mysql-", "MySQL"},
      {"libpq-", "Postgres"},
      {"postgres-", "Postgres"},
      {"redis-", "redis"},
      {"libmemcached-", "libmemcached"},
      {"libtokyocabinet-", "libtokyocabinet"},
      {"libdrizzle-", "libdrizzle"},
      {"drizzle-", "libdrizzle"},
  };
  for (const Plugin& p : kPlugins) {
    if (name.substr(0, p.prefix.size()) == p.prefix) {
      return "option '--" + std::string(name) + "' belongs to gearmand's " + std::string(p.queue) +
             " queue, which roundhouse does not have (its queues: libsqlite3, builtin)";
    }
  }
  return {};
}

Status Fail(const Setting& s, const std::string& text) {
  return Status::Error(s.where.empty() ? text : s.where + ": " + text);
}

}  // namespace roundhouse::config_internal
