// Function-name derivation: registration rules (doc/jenkins.md §1.2), V1 listing (§1.3), the
// §3.3 steps and §3.4 worked examples, the label-only rule (§4.5), names N1/N2 (§4.12).
#include "jenkins/functions.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace roundhouse::jenkins {
namespace {

using Names = std::vector<std::string>;

// "J :a :b" -> sorted {"build:J", "build:J:a", "build:J:b"}; "" -> {}. Job name is J.
Names Cell(const std::string& cell) {
  Names names;
  std::istringstream in(cell);
  std::string word;
  while (in >> word) names.push_back(word == "J" ? "build:J" : "build:J" + word);
  std::sort(names.begin(), names.end());
  return names;
}

JenkinsNode Node(std::string name, LabelSet labels, NodeMode mode = NodeMode::kNormal,
                 bool offline = false) {
  labels.insert(name);  // the self label
  return JenkinsNode{std::move(name), std::move(labels), mode, offline};
}

JenkinsJob Job(std::string name, std::optional<std::string> label, bool enabled = true) {
  std::string full = name;
  return JenkinsJob{std::move(name), std::move(full), std::move(label), enabled};
}

// The nodes of §3.4, in the order u1, w1, x1, y1.
std::vector<JenkinsNode> WorkedExampleNodes() {
  return {Node("u1", {"ubuntu", "gcc", "linux"}), Node("w1", {"windows"}), Node("x1", {"a", "b"}),
          Node("y1", {"a"}, NodeMode::kExclusive)};
}

FunctionTable TableFor(const JenkinsJob& job, const std::vector<JenkinsNode>& nodes,
                       AtomRule rule = AtomRule::kPerNode) {
  std::vector<JenkinsJob> jobs{job};
  return DeriveFunctionTable(jobs, nodes, FunctionNaming::kShort, rule);
}

TEST_CASE("worked examples of §3.4 advertise and list exactly the table", "[jenkins]") {
  struct Row {
    std::optional<std::string> label;
    const char* u1;
    const char* w1;
    const char* x1;
    const char* y1;
    const char* listed;
  };
  const std::vector<Row> rows = {
      {std::nullopt, "J", "J", "J", "", "J"},
      {"linux", "J :linux", "", "", "", "J :linux"},
      {"a && b", "", "", "J :a :b", "", "J :a :b"},
      {"a || b", "", "", "J :a :b", "J :a", "J :a :b"},
      {"!linux", "", "J", "J", "J", "J"},
      {"u1", "J :u1", "", "", "", "J :u1"},
      {"linux && !gcc", "", "", "", "", ""},
      {"a -> b", "J", "J", "J :a :b", "", "J :a :b"},
      {"(a || linux) && !b", "J :linux", "", "", "J :a", "J :linux :a"},
      {"bogus", "", "", "", "", ""},
  };
  const std::vector<JenkinsNode> nodes = WorkedExampleNodes();
  for (const Row& row : rows) {
    INFO("label of J: " << row.label.value_or("(none)"));
    const FunctionTable t = TableFor(Job("J", row.label), nodes);
    REQUIRE(t.advertised.size() == 4);
    CHECK(t.advertised[0] == Cell(row.u1));
    CHECK(t.advertised[1] == Cell(row.w1));
    CHECK(t.advertised[2] == Cell(row.x1));
    CHECK(t.advertised[3] == Cell(row.y1));
    CHECK(t.listed == Cell(row.listed));
    CHECK(t.refused.empty());
    CHECK(t.collisions.empty());
  }
}

TEST_CASE("per-node derivation emits build:J first, then atoms in expression order", "[jenkins]") {
  const std::vector<JenkinsNode> nodes = WorkedExampleNodes();
  const auto e = ParseRestriction("b || a");
  CHECK(DeriveNodeFunctions("J", e, nodes[2], AtomRule::kPerNode, nodes) ==
        Names{"build:J", "build:J:b", "build:J:a"});
  CHECK(DeriveNodeFunctions("J", e, nodes[0], AtomRule::kPerNode, nodes).empty());
}

TEST_CASE("a matching job gets build:J even when no atom is on the node", "[jenkins]") {
  const std::vector<JenkinsNode> nodes = {Node("n", {"linux"})};
  CHECK(TableFor(Job("J", "!windows"), nodes).advertised[0] == Names{"build:J"});
  CHECK(TableFor(Job("J", "windows -> gpu"), nodes).advertised[0] == Names{"build:J"});
}

TEST_CASE("atoms under negation and implication count when on the node", "[jenkins]") {
  // linux is on the node and occurs in E only under `<->`.
  const std::vector<JenkinsNode> nodes = {Node("n", {"linux", "gcc"})};
  CHECK(TableFor(Job("J", "linux <-> gcc"), nodes).advertised[0] ==
        Names{"build:J", "build:J:gcc", "build:J:linux"});
  CHECK(TableFor(Job("J", "!windows || linux"), nodes).advertised[0] ==
        Names{"build:J", "build:J:linux"});
}

TEST_CASE("a job restricted to a node's name registers build:J:<node> there", "[jenkins]") {
  const std::vector<JenkinsNode> nodes = {Node("built-in", {}), Node("agent-1", {"linux"})};
  const FunctionTable t = TableFor(Job("J", "built-in"), nodes);
  CHECK(t.advertised[0] == Names{"build:J", "build:J:built-in"});
  CHECK(t.advertised[1].empty());
}

TEST_CASE("exclusive nodes take only jobs whose expression matches them", "[jenkins]") {
  const std::vector<JenkinsNode> nodes = {Node("ex", {"gpu"}, NodeMode::kExclusive)};
  CHECK(TableFor(Job("J", std::nullopt), nodes).advertised[0].empty());
  CHECK(TableFor(Job("J", std::nullopt), nodes).listed.empty());
  CHECK(TableFor(Job("J", "gpu"), nodes).advertised[0] == Names{"build:J", "build:J:gpu"});
  CHECK(TableFor(Job("J", "!cpu"), nodes).advertised[0] == Names{"build:J"});
}

TEST_CASE("a blank label expression means unrestricted", "[jenkins]") {
  CHECK_FALSE(ParseRestriction(std::nullopt).has_value());
  CHECK_FALSE(ParseRestriction("").has_value());
  CHECK_FALSE(ParseRestriction(" \t ").has_value());
  const std::vector<JenkinsNode> nodes = {Node("n", {}), Node("e", {}, NodeMode::kExclusive)};
  const FunctionTable t = TableFor(Job("J", "  "), nodes);
  CHECK(t.advertised[0] == Names{"build:J"});
  CHECK(t.advertised[1].empty());
}

TEST_CASE("offline nodes list their names but register none", "[jenkins]") {
  const std::vector<JenkinsNode> nodes = {
      Node("off", {"linux"}, NodeMode::kNormal, /*offline=*/true), Node("on", {"windows"})};
  const FunctionTable t = TableFor(Job("J", "linux"), nodes);
  CHECK(t.advertised[0].empty());
  CHECK(t.advertised[1].empty());
  CHECK(t.listed == Names{"build:J", "build:J:linux"});

  const FunctionTable any = TableFor(Job("K", std::nullopt), nodes);
  CHECK(any.advertised[0].empty());
  CHECK(any.advertised[1] == Names{"build:K"});
  CHECK(any.listed == Names{"build:K"});
}

TEST_CASE("disabled jobs contribute nothing", "[jenkins]") {
  const std::vector<JenkinsNode> nodes = WorkedExampleNodes();
  const FunctionTable t = TableFor(Job("J", std::nullopt, /*enabled=*/false), nodes);
  for (const Names& names : t.advertised) CHECK(names.empty());
  CHECK(t.listed.empty());
}

TEST_CASE("an unparsable expression matches only a node carrying it literally", "[jenkins]") {
  const std::vector<JenkinsNode> nodes = {Node("plain", {"a", "b", "c"}), Node("odd", {"bogus("})};
  const FunctionTable bad = TableFor(Job("J", "a -> b -> c"), nodes);
  CHECK(bad.advertised[0].empty());
  CHECK(bad.listed.empty());
  const FunctionTable literal = TableFor(Job("J", "bogus("), nodes);
  CHECK(literal.advertised[0].empty());
  CHECK(literal.advertised[1] == Names{"build:J", "build:J:bogus("});
}

TEST_CASE("function names use the unquoted atom text", "[jenkins]") {
  const std::vector<JenkinsNode> nodes = {Node("n", {"x->y"})};
  CHECK(TableFor(Job("J", "\"x->y\""), nodes).advertised[0] == Names{"build:J", "build:J:x->y"});
}

TEST_CASE("names with whitespace or control bytes are refused and reported", "[jenkins]") {
  const std::vector<JenkinsNode> nodes = {Node("n", {"a b", "tab\tx", "del\x7f", "ok"})};

  SECTION("job name with a space") {
    const FunctionTable t = TableFor(Job("my job", "ok"), nodes);
    CHECK(t.advertised[0].empty());
    CHECK(t.listed.empty());
    CHECK(t.refused == Names{"build:my job", "build:my job:ok"});
  }
  SECTION("job name with DEL or a low control byte") {
    CHECK(TableFor(Job("del\x7f", std::nullopt), nodes).refused == Names{"build:del\x7f"});
    CHECK(TableFor(Job(std::string("nul\0", 4), std::nullopt), nodes).refused ==
          Names{std::string("build:nul\0", 10)});
    CHECK(TableFor(Job("cr\r", std::nullopt), nodes).listed.empty());
  }
  SECTION("atoms with a space, a tab or DEL; the rest still registers") {
    // The expression escapes the tab; DEL is a raw byte inside the quotes.
    const FunctionTable t =
        TableFor(Job("J", "\"a b\" && \"tab\\tx\" && \"del\x7f\" && ok"), nodes);
    CHECK(t.advertised[0] == Names{"build:J", "build:J:ok"});
    CHECK(t.listed == Names{"build:J", "build:J:ok"});
    CHECK(t.refused == Names{"build:J:a b", "build:J:del\x7f", "build:J:tab\tx"});
  }
}

TEST_CASE("IsRegistrableName draws the line at 0x20 and 0x7F", "[jenkins]") {
  CHECK(IsRegistrableName("build:J"));
  CHECK(IsRegistrableName("build:J:!\"~"));
  CHECK_FALSE(IsRegistrableName("build:J "));
  CHECK_FALSE(IsRegistrableName("build:\x1f"));
  CHECK_FALSE(IsRegistrableName("build:\x7f"));
  CHECK(IsRegistrableName("build:\x80\xff"));
}

TEST_CASE("non-ASCII UTF-8 job names and atoms are accepted", "[jenkins]") {
  const std::vector<JenkinsNode> nodes = {Node("nœud", {"日本"})};
  const FunctionTable t = TableFor(Job("déploiement", "日本"), nodes);
  CHECK(t.advertised[0] == Names{"build:déploiement", "build:déploiement:日本"});
  CHECK(t.refused.empty());
}

TEST_CASE("label-only advertises an atom only if every matching node carries it", "[jenkins]") {
  const std::vector<JenkinsNode> nodes = WorkedExampleNodes();

  SECTION("a || b: y1 lacks b, so build:J:b is withheld everywhere") {
    const FunctionTable t = TableFor(Job("J", "a || b"), nodes, AtomRule::kLabelOnly);
    CHECK(t.advertised[2] == Names{"build:J", "build:J:a"});
    CHECK(t.advertised[3] == Names{"build:J", "build:J:a"});
    CHECK(t.listed == Names{"build:J", "build:J:a"});
  }
  SECTION("a && b: x1 is the only match, so both atoms stay") {
    const FunctionTable t = TableFor(Job("J", "a && b"), nodes, AtomRule::kLabelOnly);
    CHECK(t.advertised[2] == Names{"build:J", "build:J:a", "build:J:b"});
  }
  SECTION("(a || linux) && !b: u1 and y1 match, neither atom is on both") {
    const FunctionTable t = TableFor(Job("J", "(a || linux) && !b"), nodes, AtomRule::kLabelOnly);
    CHECK(t.advertised[0] == Names{"build:J"});
    CHECK(t.advertised[3] == Names{"build:J"});
    CHECK(t.listed == Names{"build:J"});
  }
  SECTION("an offline matching node still counts, since Jenkins may use it later") {
    std::vector<JenkinsNode> with_offline = nodes;
    with_offline.push_back(Node("z1", {"b"}, NodeMode::kNormal, /*offline=*/true));
    const FunctionTable t = TableFor(Job("J", "a && b || b"), with_offline, AtomRule::kLabelOnly);
    CHECK(t.advertised[2] == Names{"build:J", "build:J:b"});
    CHECK(t.advertised[4].empty());
  }
  SECTION("unrestricted jobs are unaffected") {
    const FunctionTable t = TableFor(Job("J", std::nullopt), nodes, AtomRule::kLabelOnly);
    CHECK(t.advertised[0] == Names{"build:J"});
    CHECK(t.advertised[3].empty());
  }
  SECTION("single-node derivation agrees") {
    CHECK(DeriveNodeFunctions("J", ParseRestriction("a || b"), nodes[2], AtomRule::kLabelOnly,
                              nodes) == Names{"build:J", "build:J:a"});
  }
}

TEST_CASE("short naming gives a shared short name to the first full name", "[jenkins]") {
  const std::vector<JenkinsNode> nodes = {Node("n", {"linux"})};
  const std::vector<JenkinsJob> jobs = {
      JenkinsJob{"build-it", "zeta/build-it", "linux", true},
      JenkinsJob{"build-it", "alpha/build-it", std::nullopt, true},
      JenkinsJob{"other", "other", std::nullopt, true},
      JenkinsJob{"build-it", "mid/build-it", std::nullopt, false},
  };
  const FunctionTable t =
      DeriveFunctionTable(jobs, nodes, FunctionNaming::kShort, AtomRule::kPerNode);
  // alpha/build-it (unrestricted) owns the name; zeta's `linux` atom must not appear.
  CHECK(t.advertised[0] == Names{"build:build-it", "build:other"});
  REQUIRE(t.collisions.size() == 1);
  CHECK(t.collisions[0].short_name == "build-it");
  CHECK(t.collisions[0].owner == "alpha/build-it");
  CHECK(t.collisions[0].losers == Names{"mid/build-it", "zeta/build-it"});
}

TEST_CASE("full naming uses the folder path and has no collisions", "[jenkins]") {
  const std::vector<JenkinsNode> nodes = {Node("n", {"linux"})};
  const std::vector<JenkinsJob> jobs = {
      JenkinsJob{"build-it", "zeta/build-it", "linux", true},
      JenkinsJob{"build-it", "alpha/build-it", std::nullopt, true},
  };
  const FunctionTable t =
      DeriveFunctionTable(jobs, nodes, FunctionNaming::kFull, AtomRule::kPerNode);
  CHECK(t.advertised[0] ==
        Names{"build:alpha/build-it", "build:zeta/build-it", "build:zeta/build-it:linux"});
  CHECK(t.listed == t.advertised[0]);
  CHECK(t.collisions.empty());
}

TEST_CASE("an empty view derives nothing", "[jenkins]") {
  const FunctionTable t = DeriveFunctionTable({}, {}, FunctionNaming::kShort, AtomRule::kPerNode);
  CHECK(t.advertised.empty());
  CHECK(t.listed.empty());
  CHECK(t.refused.empty());
}

}  // namespace
}  // namespace roundhouse::jenkins
