// Jenkins REST models (doc/jenkins.md §2.3–2.5): the tree= strings and paths the adapter asks
// for, and the values it parses from a master's replies (R1–R11, the W0 crumb). RapidJSON inside,
// plain value types outside. The JSON exchanged with Gearman clients is in job_contract.h.
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

#include "base/status.h"

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

}  // namespace roundhouse::jenkins
