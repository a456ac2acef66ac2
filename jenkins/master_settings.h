// The settings of one registered Jenkins master (doc/jenkins.md §4.1), parsed and validated from
// the raw key/value pairs of a `[jenkins NAME]` config section, a `--jenkins NAME:K=V,...` flag or
// an admin `jenkins add` command. Unknown keys, bad values and a missing token are errors naming
// the key. Secrets are kept here but never appear in
// Describe() or in any error text.
//
// Thread-safety: values only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "jenkins/functions.h"
#include "jenkins/rest_client.h"

namespace roundhouse::jenkins {

enum class PinMode { kNode, kLabel, kLabelOnly };
enum class ParamPolicy { kDrop, kStrict };
enum class LabelEval { kLocal, kRemote };
enum class NodeLostPolicy { kRetry, kReport };
enum class RestartPolicy { kRetry, kReport };
enum class OfflineTiming { kOnStart, kOnComplete };
enum class OrphanPolicy { kAbort, kIgnore };

struct MasterSettings {
  std::string name;  // registry id; [A-Za-z0-9._-]+, at most 64 bytes
  BaseUrl base_url;  // http:// or https://
  std::string user;
  std::string api_token;       // from `api_token`, or the contents of `api_token_file` (trimmed)
  std::string api_token_file;  // path, re-read by the adapter when it changes
  // The file was named by an untrusted source and resolved inside the token directory: it is
  // re-read without following symlinks (see SettingsTrust).
  bool api_token_file_in_dir = false;
  std::string api_token_env;  // name of the environment variable the token was read from
  std::string password;        // password mode
  std::string manager_name;    // default: name; no byte <= 0x20 or 0x7F
  bool enabled = true;
  int weight = 1;  // 1..1000
  PinMode pin_mode = PinMode::kNode;
  std::string pin_parameter = "GEARMAN_NODE";  // the <P> of node:<P> / label:<P>
  std::string unique_param = "GEARMAN_UNIQUE";
  ParamPolicy param_policy = ParamPolicy::kDrop;
  FunctionNaming function_naming = FunctionNaming::kShort;
  int folder_depth = 3;                    // 0..10
  std::optional<std::string> job_include;  // regex source (ECMAScript), validated
  std::optional<std::string> job_exclude;
  std::optional<std::string> name_filter;
  // `flyweight_labels = fullName=expr;fullName=expr` (';'-separated pairs, first '=' splits).
  std::map<std::string, std::string> flyweight_labels;
  LabelEval label_eval = LabelEval::kLocal;
  bool emit_worker_fields = false;

  // Intervals and timeouts in milliseconds (configured in seconds; fractions allowed, e.g. 0.2).
  int64_t poll_computers_ms = 3000;
  int64_t poll_computers_idle_ms = 15000;
  int64_t poll_jobs_ms = 60000;
  int64_t poll_node_modes_ms = 300000;
  int64_t poll_queue_item_ms = 1000;
  int64_t poll_build_ms = 5000;
  int64_t poll_build_max_ms = 15000;
  int64_t poll_health_ms = 10000;
  int64_t http_connect_timeout_ms = 5000;
  int64_t http_timeout_ms = 15000;
  int http_max_concurrency = 8;  // 1..64
  // https only (doc/jenkins-http.md). The files are operator-written settings only.
  bool tls_verify = true;
  std::string tls_ca_file;    // empty: the system store
  std::string tls_cert_file;  // client certificate, optional
  std::string tls_key_file;   // its key; empty: in tls_cert_file
  std::string proxy;          // empty: the environment; "none"; or http[s]://host:port
  int max_inflight_starts = 20;
  int64_t queue_wait_timeout_ms = 60000;
  int64_t contention_cooldown_ms = 30000;
  int max_requeues = 3;
  int unhealthy_after = 3;
  int64_t inflight_grace_ms = 600000;
  NodeLostPolicy node_lost_policy = NodeLostPolicy::kRetry;
  int64_t node_lost_window_ms = 120000;
  RestartPolicy restart_policy = RestartPolicy::kRetry;
  std::optional<OfflineTiming> offline_timing;  // unset: on-start (on-complete for flyweight)
  std::string offline_message = "Offline due to Gearman request";
  int64_t stop_escalation_ms = 30000;  // 0 disables
  int64_t meta_timeout_ms = 30000;
  OrphanPolicy orphan_policy = OrphanPolicy::kAbort;
  int64_t resume_window_ms = 60000;

  // The raw pairs as given (for persistence of runtime-added masters and `jenkins show`).
  std::map<std::string, std::string> raw;

  // RestOptions for this master (http client options filled from the settings).
  RestOptions ToRestOptions() const;
  // `key = value` lines for `jenkins show`, in §4.1 order, with secrets shown as "(set)".
  std::vector<std::pair<std::string, std::string>> Describe() const;
};

// What `jenkins show` prints for tls.verify = false, and the start of the warning logged when such
// a master is registered.
inline constexpr const char* kTlsVerifyOffWarning =
    "false (WARNING: the master's certificate is not checked; anyone on the path can read the "
    "token and forge replies)";

// Where a master's settings came from decides which files they may make the server read
// (doc/jenkins.md, "Secrets"). Settings the operator wrote (config file, command line) may name
// any `api_token_file` path. Settings from the admin port, and those stored from it in the
// database, may not name a path at all: `api_token_file` must be a bare file name (no '/', not
// starting with '.') inside `token_dir` (--jenkins-token-dir), read without following a symlink;
// with no token_dir it is refused. Such settings can name no other file or environment variable.
struct SettingsTrust {
  bool operator_written = true;
  std::string token_dir;  // only for !operator_written; empty: api_token_file refused
};

// Validates and converts. `origin` ("file:line", "command line", "admin") prefixes errors:
// "<origin>: jenkins master '<name>': <key>: <problem>". Reads `api_token_file` once (a missing
// or empty file is an error). The default trust is the operator's.
Result<MasterSettings> ParseMasterSettings(std::string_view name,
                                           const std::map<std::string, std::string>& raw,
                                           std::string_view origin,
                                           const SettingsTrust& trust = {});

// Reads and trims a token file; error text names the path, never the contents. Only a regular
// file of at most 64 KiB is read (a FIFO or device would block or never end); with `no_follow` a
// symlink as the last component is refused.
Result<std::string> ReadTokenFile(const std::string& path, bool no_follow = false);

// True when `settings` carry a secret in clear (api_token or password) rather than naming where
// to read it: start-up warns about such a master given on the command line (visible to every
// user in /proc/PID/cmdline and ps).
bool HasSecretInClear(const std::map<std::string, std::string>& raw);

// Every key ParseMasterSettings accepts (for --help and docs), in §4.1 order.
const std::vector<std::string_view>& MasterSettingKeys();

}  // namespace roundhouse::jenkins
