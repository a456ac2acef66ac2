// The settings of one registered Jenkins master (doc/jenkins.md §4.1), parsed and validated from
// the raw key/value pairs of a `[jenkins NAME]` config section, a `--jenkins NAME:K=V,...` flag or
// an admin `jenkins add` command. Unknown keys, bad values, https:// URLs (TLS is a later issue)
// and a missing token are errors naming the key. Secrets are kept here but never appear in
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

#include "jenkins/functions.h"
#include "jenkins/rest_client.h"
#include "protocol/status.h"

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
  BaseUrl base_url;  // http:// only
  std::string user;
  std::string api_token;       // from `api_token`, or the contents of `api_token_file` (trimmed)
  std::string api_token_file;  // path, re-read by the adapter when it changes
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

// Validates and converts. `origin` ("file:line", "command line", "admin") prefixes errors:
// "<origin>: jenkins master '<name>': <key>: <problem>". Reads `api_token_file` once (a missing
// or empty file is an error).
Result<MasterSettings> ParseMasterSettings(std::string_view name,
                                           const std::map<std::string, std::string>& raw,
                                           std::string_view origin);

// Reads and trims a token file; error text names the path, never the contents.
Result<std::string> ReadTokenFile(const std::string& path);

// Every key ParseMasterSettings accepts (for --help and docs), in §4.1 order.
const std::vector<std::string_view>& MasterSettingKeys();

}  // namespace roundhouse::jenkins
