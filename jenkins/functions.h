// Gearman function names derived from a Jenkins master's jobs and nodes (doc/jenkins.md §1.1-1.3,
// §3.3, the `label-only` rule of §4.5, and name rules N1/N2 of §4.12).
//
// Pure functions over plain value types: no I/O, no logging, no clock. Callers (the adapter's
// view refresh) log what is reported in FunctionTable::refused and ::collisions, once.
// Not in scope here: flyweight jobs (§4.5 `flyweight_labels`) and the N3 name filter; the caller
// maps those onto JenkinsJob (e.g. `enabled = false` for a filtered-out job).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "jenkins/label_expr.h"

namespace roundhouse::jenkins {

// Jenkins node mode: EXCLUSIVE nodes run only jobs whose label expression matches them.
enum class NodeMode { kNormal, kExclusive };

// `function_naming` (§1.1): the job part of `build:<JOB>` is the short `name` or the `fullName`.
enum class FunctionNaming { kShort, kFull };

// Which `build:J:A` names a node advertises.
//   kPerNode   (§1.2, pinned modes `node:` / `label:`): every A in atoms(E) ∩ L(N).
//   kLabelOnly (§4.5 `label-only`): additionally, every known node matching E must carry A,
//              because Jenkins, not the adapter, picks the node.
enum class AtomRule { kPerNode, kLabelOnly };

// One Jenkins node as seen in the view.
struct JenkinsNode {
  std::string name;  // agent name; `built-in` / `master` for the built-in node
  LabelSet labels;   // L(N) = assignedLabels[].name; must include the self label
  NodeMode mode = NodeMode::kNormal;
  bool offline = false;  // disconnected or temporarily offline: listed (V1), never registered
};

// One Jenkins job as seen in the view.
struct JenkinsJob {
  std::string name;       // short name
  std::string full_name;  // folder path joined with '/'; equals `name` at top level
  // The job's label expression; nullopt or blank (only bytes <= 0x20) means unrestricted.
  std::optional<std::string> label_expression;
  bool enabled = true;  // false when `buildable == false` or `disabled == true`
};

// Two or more jobs sharing one short name under FunctionNaming::kShort (N2).
struct NameCollision {
  std::string short_name;
  std::string owner;                // full name of the job that keeps the name (first in order)
  std::vector<std::string> losers;  // full names of the jobs that register nothing, sorted
};

// Everything derived for one master. All name lists are sorted and free of duplicates.
struct FunctionTable {
  // Parallel to the `nodes` argument: the `build:*` names that node's executor pseudo-workers
  // register. Empty for offline nodes.
  std::vector<std::vector<std::string>> advertised;
  // V1: every name derived from the jobs and all nodes, online or not; the core creates these.
  std::vector<std::string> listed;
  // N1: names that would have been derived but contain a byte <= 0x20 or 0x7F; in neither
  // `advertised` nor `listed`.
  std::vector<std::string> refused;
  // N2: short-name collisions (kShort only), in short-name order.
  std::vector<NameCollision> collisions;
};

// A job's restriction parsed once: nullopt when `label_expression` is null or blank
// (unrestricted), else LabelExpr::Parse of it (which never fails, see label_expr.h).
std::optional<LabelExpr> ParseRestriction(const std::optional<std::string>& label_expression);

// `build:<job>` and `build:<job>:<atom>`; no validation.
std::string BuildFunctionName(std::string_view job);
std::string BuildFunctionName(std::string_view job, std::string_view atom);

// N1: false if `name` contains a byte <= 0x20 or 0x7F. Other bytes (UTF-8) are allowed.
bool IsRegistrableName(std::string_view name);

// §3.3 for one job J (function part `job`, restriction `restriction`) on node `node`, with
// `node.offline` and J's enabled flag ignored (the caller decides those). Returns `build:J`
// first, then `build:J:A` in atoms(E) order; empty when N does not take J. N1 is not applied.
// `all_nodes` is used only by AtomRule::kLabelOnly (the nodes Jenkins may choose from, offline
// ones included); `node` need not be one of them but normally is.
std::vector<std::string> DeriveNodeFunctions(std::string_view job,
                                             const std::optional<LabelExpr>& restriction,
                                             const JenkinsNode& node, AtomRule rule,
                                             std::span<const JenkinsNode> all_nodes);

// The whole table for one master: disabled jobs contribute nothing; under kShort, N2 picks one
// job per short name (among all jobs, enabled or not, by smallest full name); N1 filters names.
FunctionTable DeriveFunctionTable(std::span<const JenkinsJob> jobs,
                                  std::span<const JenkinsNode> nodes, FunctionNaming naming,
                                  AtomRule rule);

}  // namespace roundhouse::jenkins
