// Jenkins JSON models (doc/jenkins.md §2.3–2.5) and the JSON the adapter produces or reads from
// Gearman clients (§1.4–1.8). RapidJSON inside, plain value types outside.
//
// Pure: no I/O, no clock, no logging. Every parser is total: any bytes give either a value or an
// error Status naming what was wrong (never a crash, never an exception). Fields Jenkins may omit
// take the documented defaults; a field of the wrong type is an error only where the adapter
// cannot go on without it (e.g. a queue item without `id`).
//
// Thread-safety: free functions on values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/status.h"

namespace roundhouse::jenkins {

// ---- tree= strings (normative, §2.3)

extern const char kTreeController[];  // R1 tree value
// R2 tree value with `folder_depth` levels of nested `jobs[...]` (depth 0: no nesting).
std::string JobsTree(int folder_depth);
extern const char kTreeJob[];         // R3
extern const char kTreeComputers[];   // R4
extern const char kTreeLabelNodes[];  // R5
extern const char kTreeQueueItem[];   // R7
extern const char kTreeQueue[];       // R8
extern const char kTreeBuild[];       // R9
extern const char kTreeBuilds[];      // R10 (builds{0,50})
extern const char kTreeComputer[];    // R11

// ---- URL paths (relative to the base URL, no leading '/', each ending in '/')

// `fullName` "a/b/c" -> "job/a/job/b/job/c/", each segment percent-encoded.
std::string JobPath(std::string_view full_name);
// "computer/<name>/"; the built-in node (name "built-in" or "master") -> "computer/(built-in)/"
// or "computer/(master)/" respectively.
std::string ComputerPath(std::string_view node_name);
// "label/<percent-encoded expression>/"
std::string LabelPath(std::string_view expression);
// Queue item id from a Location header or URL ending in "/queue/item/<id>/" (slash optional).
std::optional<int64_t> QueueIdFromLocation(std::string_view location);
// "api/json?tree=<tree percent-encoded as a query component>"
std::string ApiJson(std::string_view tree);

// ---- R1

struct ControllerInfo {
  bool quieting_down = false;
  bool use_security = false;
  bool use_crumbs = false;
  int num_executors = 0;  // the built-in node's
};
Result<ControllerInfo> ParseController(std::string_view json);

// ---- R2 / R3

struct ParameterDefinition {
  std::string cls;  // `_class`, e.g. "hudson.model.StringParameterDefinition"
  std::string name;
  std::string type;  // e.g. "StringParameterDefinition", "NodeParameterDefinition"
  std::optional<std::string> default_value;  // as text (booleans "true"/"false")
};

struct JobInfo {
  std::string cls;  // `_class`
  std::string name;
  std::string full_name;  // folder path joined with '/'
  std::string url;
  bool buildable = true;
  bool disabled = false;
  bool concurrent_build = true;
  // null/absent -> nullopt (Pipelines have no field at all).
  std::optional<std::string> label_expression;
  bool in_queue = false;
  std::optional<int64_t> last_build_number;
  bool last_build_building = false;
  std::vector<ParameterDefinition> parameters;  // from every property's parameterDefinitions
  // `_class` ends in WorkflowJob or MatrixProject (§4.5).
  bool flyweight() const;
  bool enabled() const { return buildable && !disabled; }
  const ParameterDefinition* FindParameter(std::string_view name) const;
};

// R2: the job table. Folders (objects with `jobs` and without `buildable`) are descended into and
// not returned themselves; other objects without `buildable` (a folder below the tree's depth,
// which Jenkins returns without `jobs`) are skipped. Folders nested more than 64 deep are an
// error. `full_name` is taken from `fullName` or, if absent, built from the path.
Result<std::vector<JobInfo>> ParseJobs(std::string_view json);
// R3: one job.
Result<JobInfo> ParseJob(std::string_view json);

// ---- R4 / R5 / R11

struct ExecutorInfo {
  int number = 0;
  bool idle = true;
  std::string build_url;                // currentExecutable.url, empty when idle
  std::optional<int64_t> build_number;  // currentExecutable.number
};

struct ComputerInfo {
  // Agent name; for the built-in node (`_class` ending in "$MasterComputer") "built-in", or
  // "master" when `builtin_legacy_name` was passed true (Jenkins < 2.307).
  std::string name;
  bool builtin = false;
  bool offline = false;
  bool temporarily_offline = false;
  std::string offline_cause;
  int num_executors = 0;
  std::vector<std::string> labels;  // assignedLabels[].name, in order received
  std::vector<ExecutorInfo> executors;
  std::vector<ExecutorInfo> one_off_executors;
};
Result<std::vector<ComputerInfo>> ParseComputers(std::string_view json, bool builtin_legacy_name);

// True when X-Jenkins `version` is older than 2.307 (built-in node named "master"); unparsable or
// empty -> false.
bool UsesLegacyBuiltinName(std::string_view version);

struct LabelNode {
  std::string node_name;  // "" for the built-in node in some versions
  std::string mode;       // "NORMAL" / "EXCLUSIVE"
};
// R5 / R6 `nodes`.
Result<std::vector<LabelNode>> ParseLabelNodes(std::string_view json);

// R11: executors of one computer.
Result<ComputerInfo> ParseComputer(std::string_view json);

// ---- R7 / R8

enum class QueueItemKind { kWaiting, kBlocked, kBuildable, kLeft, kUnknown };

struct QueueItem {
  QueueItemKind kind = QueueItemKind::kUnknown;
  int64_t id = 0;
  std::string why;
  bool blocked = false;
  bool buildable = false;
  bool stuck = false;
  bool cancelled = false;
  int64_t in_queue_since = 0;           // ms since the epoch
  std::optional<int64_t> build_number;  // executable.number
  std::string build_url;                // executable.url
};
Result<QueueItem> ParseQueueItem(std::string_view json);  // requires `id`

struct QueueEntry {  // R8 items[]
  int64_t id = 0;
  std::string task_name;
  std::string task_url;
  std::map<std::string, std::string> parameters;  // from actions[].parameters[], as text
};
Result<std::vector<QueueEntry>> ParseQueue(std::string_view json);

// ---- R9 / R10

struct BuildInfo {
  int64_t number = 0;
  std::string url;
  bool building = false;
  std::optional<std::string> result;  // "SUCCESS", "UNSTABLE", "FAILURE", "ABORTED", "NOT_BUILT"
  int64_t timestamp = 0;              // ms since the epoch
  int64_t duration = 0;
  int64_t estimated_duration = -1;
  int64_t queue_id = 0;
  std::optional<std::string> built_on;            // classic builds only; "" = built-in
  std::map<std::string, std::string> parameters;  // R10 actions[].parameters[]
};
Result<BuildInfo> ParseBuild(std::string_view json);                // R9, requires `number`
Result<std::vector<BuildInfo>> ParseBuilds(std::string_view json);  // R10 `builds` (or `allBuilds`)

// W0
struct Crumb {
  std::string field;  // crumbRequestField
  std::string value;  // crumb
};
Result<Crumb> ParseCrumb(std::string_view json);

// ---- Gearman side (§1.4–1.8)

// §1.4: the DATA of a build:* job. Empty data = no parameters. Errors: not UTF-8, not JSON, not an
// object, a nested object/array value. Strings as is, numbers as their JSON text, booleans
// "true"/"false", null omits the key, duplicate keys: last wins (a last null omits it). Order:
// first occurrence. UTF-8 is validated strictly (no overlong forms, surrogates or NUL bytes); a
// leading UTF-8 BOM is ignored.
struct BuildArguments {
  std::vector<std::pair<std::string, std::string>> parameters;
  // OFFLINE_NODE_WHEN_COMPLETE is exactly 1, true, True or TRUE.
  bool offline_node_when_complete = false;
  const std::string* Find(std::string_view key) const;
};
Result<BuildArguments> ParseBuildArguments(std::string_view data);

// §4.6 P1: keeps the keys the job defines, in argument order; the rest are returned in `dropped`.
// `overrides` (the pin parameter, unique_param) are set last and replace client keys of the same
// name (those names are reported in `overridden`); an override whose name the job does not
// define is not sent.
struct FilteredParameters {
  std::vector<std::pair<std::string, std::string>> sent;
  std::vector<std::string> dropped;
  std::vector<std::string> overridden;
};
FilteredParameters FilterParameters(
    const BuildArguments& arguments, const JobInfo& job,
    const std::vector<std::pair<std::string, std::string>>& overrides);

// doc/jenkins.md §1.5 start JSON, compact, keys in that order. `node_name`/`node_labels` are
// omitted when `node_known` is false; labels are sorted by the function. `worker_*` only with
// `emit_worker_fields`.
struct StartInfo {
  std::string name;
  int64_t number = 0;
  std::string manager;
  std::string worker;
  std::string url;
  bool node_known = false;
  std::string node_name;
  std::vector<std::string> node_labels;
  bool emit_worker_fields = false;
  std::string worker_hostname;  // node name
  std::string worker_version;   // X-Jenkins
};
std::string StartJson(const StartInfo& info);
// Start JSON + `"result":<result>` as its last key.
std::string FinalJson(const StartInfo& info, std::string_view result);

// §1.7 / §1.8 arguments. `number` may be a JSON integer or a decimal string.
struct StopArguments {
  std::string name;
  int64_t number = 0;
};
Result<StopArguments> ParseStopArguments(std::string_view data);
struct DescriptionArguments {
  std::string name;
  int64_t number = 0;
  std::string html_description;
};
Result<DescriptionArguments> ParseDescriptionArguments(std::string_view data);

// Quotes `atom` for a label expression when it is not a plain ATOM token (§3.1, §4.5 label:).
// (Same rule as LabelExpr::QuoteAtom; kept there.)

}  // namespace roundhouse::jenkins
