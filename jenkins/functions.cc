// Function-name derivation (doc/jenkins.md §1.2, §3.3, §4.5 label-only, §4.12 N1/N2).
#include "jenkins/functions.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

namespace roundhouse::jenkins {
namespace {

bool IsBlank(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) <= 0x20; });
}

// The atoms of `expr` that may be advertised as `build:J:A` under `rule`, before intersecting
// with a node's labels: all of atoms(E) for kPerNode; for kLabelOnly those carried by every node
// of `all_nodes` that matches E.
std::vector<bool> EligibleAtoms(const LabelExpr& expr, AtomRule rule,
                                std::span<const JenkinsNode> all_nodes) {
  const std::vector<std::string>& atoms = expr.Atoms();
  std::vector<bool> eligible(atoms.size(), true);
  if (rule == AtomRule::kPerNode) return eligible;
  for (const JenkinsNode& m : all_nodes) {
    if (!expr.Matches(m.labels)) continue;
    for (std::size_t i = 0; i < atoms.size(); ++i) {
      if (!m.labels.contains(atoms[i])) eligible[i] = false;
    }
  }
  return eligible;
}

// §3.3 steps 1-3 with the atom eligibility already computed.
std::vector<std::string> Derive(std::string_view job, const std::optional<LabelExpr>& restriction,
                                const std::vector<bool>& eligible, const JenkinsNode& node) {
  std::vector<std::string> names;
  if (!restriction) {
    if (node.mode == NodeMode::kNormal) names.push_back(BuildFunctionName(job));
    return names;
  }
  if (!restriction->Matches(node.labels)) return names;
  names.push_back(BuildFunctionName(job));
  const std::vector<std::string>& atoms = restriction->Atoms();
  for (std::size_t i = 0; i < atoms.size(); ++i) {
    if (eligible[i] && node.labels.contains(atoms[i])) {
      names.push_back(BuildFunctionName(job, atoms[i]));
    }
  }
  return names;
}

template <typename T>
std::vector<T> ToVector(std::set<T>&& s) {
  std::vector<T> v;
  v.reserve(s.size());
  while (!s.empty()) v.push_back(std::move(s.extract(s.begin()).value()));
  return v;
}

}  // namespace

std::optional<LabelExpr> ParseRestriction(const std::optional<std::string>& label_expression) {
  if (!label_expression || IsBlank(*label_expression)) return std::nullopt;
  return LabelExpr::Parse(*label_expression);
}

std::string BuildFunctionName(std::string_view job) {
  std::string name = "build:";
  name += job;
  return name;
}

std::string BuildFunctionName(std::string_view job, std::string_view atom) {
  std::string name = BuildFunctionName(job);
  name += ':';
  name += atom;
  return name;
}

bool IsRegistrableName(std::string_view name) {
  return std::none_of(name.begin(), name.end(), [](char c) {
    const auto b = static_cast<unsigned char>(c);
    return b <= 0x20 || b == 0x7F;
  });
}

std::vector<std::string> DeriveNodeFunctions(std::string_view job,
                                             const std::optional<LabelExpr>& restriction,
                                             const JenkinsNode& node, AtomRule rule,
                                             std::span<const JenkinsNode> all_nodes) {
  std::vector<bool> eligible;
  if (restriction) eligible = EligibleAtoms(*restriction, rule, all_nodes);
  return Derive(job, restriction, eligible, node);
}

FunctionTable DeriveFunctionTable(std::span<const JenkinsJob> jobs,
                                  std::span<const JenkinsNode> nodes, FunctionNaming naming,
                                  AtomRule rule) {
  FunctionTable table;

  // N2: under kShort, the smallest full name owns each short name. Key: short name; value:
  // full names in order (std::set sorts bytewise, i.e. Java String order for ASCII).
  std::vector<bool> owns_name(jobs.size(), true);
  if (naming == FunctionNaming::kShort) {
    std::map<std::string_view, std::set<std::string_view>> by_short;
    for (const JenkinsJob& j : jobs) by_short[j.name].insert(j.full_name);
    for (auto& [short_name, fulls] : by_short) {
      if (fulls.size() < 2) continue;
      NameCollision c{std::string(short_name), std::string(*fulls.begin()), {}};
      for (auto it = std::next(fulls.begin()); it != fulls.end(); ++it) {
        c.losers.emplace_back(*it);
      }
      table.collisions.push_back(std::move(c));
    }
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      owns_name[i] = *by_short[jobs[i].name].begin() == jobs[i].full_name;
    }
  }

  std::vector<std::set<std::string>> advertised(nodes.size());
  std::set<std::string> listed;
  std::set<std::string> refused;
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    const JenkinsJob& job = jobs[j];
    if (!job.enabled || !owns_name[j]) continue;
    const std::string& job_name = naming == FunctionNaming::kShort ? job.name : job.full_name;
    const std::optional<LabelExpr> restriction = ParseRestriction(job.label_expression);
    std::vector<bool> eligible;
    if (restriction) eligible = EligibleAtoms(*restriction, rule, nodes);
    for (std::size_t n = 0; n < nodes.size(); ++n) {
      for (std::string& name : Derive(job_name, restriction, eligible, nodes[n])) {
        if (!IsRegistrableName(name)) {
          refused.insert(std::move(name));
          continue;
        }
        if (!nodes[n].offline) advertised[n].insert(name);
        listed.insert(std::move(name));
      }
    }
  }

  table.advertised.reserve(nodes.size());
  for (auto& names : advertised) table.advertised.push_back(ToVector(std::move(names)));
  table.listed = ToVector(std::move(listed));
  table.refused = ToVector(std::move(refused));
  return table;
}

}  // namespace roundhouse::jenkins
