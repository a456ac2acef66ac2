// Label expressions: tokens (doc/jenkins.md §3.1), grammar and precedence (§3.2), semantics,
// the unparsable fallback, atoms, and robustness against hostile input.
#include "jenkins/label_expr.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace roundhouse::jenkins {
namespace {

using Atoms = std::vector<std::string>;

std::string Shape(std::string_view text) {
  LabelExpr e = LabelExpr::Parse(text);
  INFO(text);
  REQUIRE(e.parsed_ok());
  return e.ToString();
}

// Checks the Jenkins.getLabel fallback: one literal atom, matching only that label.
void CheckLiteralFallback(const std::string& text) {
  INFO("expression: " << text);
  LabelExpr e = LabelExpr::Parse(text);
  CHECK_FALSE(e.parsed_ok());
  CHECK(e.text() == text);
  CHECK(e.Atoms() == Atoms{text});
  CHECK(e.Matches(LabelSet{text}));
  CHECK_FALSE(e.Matches(LabelSet{"a", "b", "c", "bogus", "x", "y"}));
  CHECK_FALSE(e.Matches(LabelSet{}));
}

TEST_CASE("precedence table of doc/jenkins.md §3.2 parses row by row", "[jenkins]") {
  CHECK(Shape("a || b && c") == "(a || (b && c))");
  CHECK(Shape("!a && b") == "(!a && b)");
  CHECK(Shape("a -> b || c") == "(a -> (b || c))");
  CHECK(Shape("a <-> b -> c") == "(a <-> (b -> c))");
  CHECK(Shape("a<->b") == "(a <-> b)");
}

TEST_CASE("precedence decides evaluation, not just shape", "[jenkins]") {
  // a || (b && c), not (a || b) && c.
  CHECK(LabelExpr::Parse("a || b && c").Matches({"a"}));
  // (!a) && b, not !(a && b).
  CHECK_FALSE(LabelExpr::Parse("!a && b").Matches({}));
  // a -> (b || c) (equivalent to (a -> b) || c, so the shape test above is what decides).
  CHECK(LabelExpr::Parse("a -> b || c").Matches({"a", "c"}));
  CHECK_FALSE(LabelExpr::Parse("a -> b || c").Matches({"a"}));
  // a <-> (b -> c) is F <-> T on {c}; (a <-> b) -> c would be true.
  CHECK_FALSE(LabelExpr::Parse("a <-> b -> c").Matches({"c"}));
}

TEST_CASE("operators of one kind chain and associate left", "[jenkins]") {
  CHECK(Shape("a && b && c") == "(a && b && c)");
  CHECK(Shape("a || b || c") == "(a || b || c)");
  CHECK(Shape("a <-> b <-> c") == "((a <-> b) <-> c)");
  CHECK(Shape("(a || b) && !(c -> d)") == "((a || b) && !(c -> d))");
  CHECK(Shape("((a))") == "a");
}

TEST_CASE("semantics follow the truth tables of doc/jenkins.md §3.2", "[jenkins]") {
  const LabelExpr implies = LabelExpr::Parse("x -> y");
  CHECK(implies.Matches({}));
  CHECK(implies.Matches({"y"}));
  CHECK(implies.Matches({"x", "y"}));
  CHECK_FALSE(implies.Matches({"x"}));

  const LabelExpr iff = LabelExpr::Parse("x <-> y");
  CHECK(iff.Matches({}));
  CHECK(iff.Matches({"x", "y"}));
  CHECK_FALSE(iff.Matches({"x"}));
  CHECK_FALSE(iff.Matches({"y"}));

  CHECK(LabelExpr::Parse("!linux").Matches({"windows"}));
  CHECK_FALSE(LabelExpr::Parse("!linux").Matches({"linux"}));
  CHECK(LabelExpr::Parse("a && b").Matches({"a", "b", "c"}));
  CHECK_FALSE(LabelExpr::Parse("a && b").Matches({"a"}));
}

TEST_CASE("atoms match case-sensitively", "[jenkins]") {
  CHECK_FALSE(LabelExpr::Parse("Linux").Matches({"linux"}));
  CHECK(LabelExpr::Parse("Linux").Matches({"Linux"}));
}

TEST_CASE("a hyphen belongs to an atom unless it starts ->", "[jenkins]") {
  LabelExpr one = LabelExpr::Parse("x-y");
  REQUIRE(one.parsed_ok());
  CHECK(one.Atoms() == Atoms{"x-y"});
  CHECK(one.Matches({"x-y"}));
  CHECK_FALSE(one.Matches({"x", "y"}));

  CHECK(Shape("x->y") == "(x -> y)");
  CHECK(LabelExpr::Parse("x->y").Atoms() == Atoms{"x", "y"});
  CHECK(LabelExpr::Parse("x--y").Atoms() == Atoms{"x--y"});
  CHECK(LabelExpr::Parse("-x").Atoms() == Atoms{"-x"});
  CHECK(LabelExpr::Parse("x-").Atoms() == Atoms{"x-"});
  CHECK(Shape("x-->y") == "(x- -> y)");
  CHECK(Shape("bare-trusty&&gcc-12") == "(bare-trusty && gcc-12)");
}

TEST_CASE("iff and other operators need no surrounding spaces", "[jenkins]") {
  CHECK(Shape("a<->b") == "(a <-> b)");
  CHECK(Shape("a&&b||!c") == "((a && b) || !c)");
  CHECK(Shape("(a)->(b)") == "(a -> b)");
}

TEST_CASE("tabs and spaces separate tokens", "[jenkins]") {
  CHECK(Shape("\ta\t&&\t b  ") == "(a && b)");
  CHECK(Shape("  linux  ") == "linux");
}

TEST_CASE("quoted atoms keep spaces and operator characters", "[jenkins]") {
  LabelExpr e = LabelExpr::Parse("\"my label\" && \"a&&b\" || \"x->y\"");
  REQUIRE(e.parsed_ok());
  CHECK(e.Atoms() == Atoms{"my label", "a&&b", "x->y"});
  CHECK(e.Matches({"x->y"}));
  CHECK(e.Matches({"my label", "a&&b"}));
  CHECK_FALSE(e.Matches({"my", "label", "a&&b"}));
  CHECK(LabelExpr::Parse("\"it's\"").Atoms() == Atoms{"it's"});
  CHECK(LabelExpr::Parse("\"\"").Atoms() == Atoms{""});
}

TEST_CASE("quoted atoms unescape every listed escape", "[jenkins]") {
  LabelExpr e = LabelExpr::Parse(R"("q\"\\\'\b\t\n\f\r end")");
  REQUIRE(e.parsed_ok());
  CHECK(e.Atoms() == Atoms{"q\"\\'\b\t\n\f\r end"});
}

TEST_CASE("a quoted atom equals the same bare atom", "[jenkins]") {
  LabelExpr e = LabelExpr::Parse("\"linux\" && linux");
  REQUIRE(e.parsed_ok());
  CHECK(e.Atoms() == Atoms{"linux"});
  CHECK(e.Matches({"linux"}));
}

TEST_CASE("atoms are deduplicated in first-occurrence order, under every operator", "[jenkins]") {
  LabelExpr e = LabelExpr::Parse("b && (a || !b) -> \"c d\" <-> a || e");
  REQUIRE(e.parsed_ok());
  CHECK(e.Atoms() == Atoms{"b", "a", "c d", "e"});
}

TEST_CASE("syntax errors fall back to the literal atom", "[jenkins]") {
  for (const char* text :
       {"a -> b -> c", "bogus(", "!!a", "()", "a && ()", "\"unterminated", "a b", "a &&", "&& a",
        ")", "(a", "a)", "!", "a <-> ", "-> a", "a || || b", "!(!a) !b"}) {
    CheckLiteralFallback(text);
  }
}

TEST_CASE("lexical errors fall back to the literal atom", "[jenkins]") {
  for (const char* text :
       {"a & b", "a | b", "a < b", "a > b", "a <- b", "'a'", "a'b", R"("bad \q escape")",
        "\"trailing backslash\\", "\"raw\nnewline\"", "\"raw\rreturn\""}) {
    CheckLiteralFallback(text);
  }
}

TEST_CASE("an empty expression is the empty literal atom", "[jenkins]") {
  // Blank expressions mean "unrestricted" and never reach Parse (see functions.h); if one does,
  // it must still be harmless.
  CheckLiteralFallback("");
  CheckLiteralFallback("   ");
}

TEST_CASE("negated parentheses are how to write a double negation", "[jenkins]") {
  LabelExpr e = LabelExpr::Parse("!(!a)");
  REQUIRE(e.parsed_ok());
  CHECK(e.ToString() == "!!a");
  CHECK(e.Matches({"a"}));
  CHECK_FALSE(e.Matches({}));
}

TEST_CASE("nesting up to the limit parses and one more level falls back", "[jenkins]") {
  const int limit = LabelExpr::kMaxNesting;
  const std::string at_limit = std::string(limit, '(') + "a" + std::string(limit, ')');
  LabelExpr ok = LabelExpr::Parse(at_limit);
  CHECK(ok.parsed_ok());
  CHECK(ok.Matches({"a"}));

  const std::string over = "(" + at_limit + ")";
  CheckLiteralFallback(over);
}

TEST_CASE("very deep nesting does not crash", "[jenkins]") {
  const int n = 200000;
  CheckLiteralFallback(std::string(n, '(') + "a" + std::string(n, ')'));
  std::string negations;
  for (int i = 0; i < n; ++i) negations += "!(";
  negations += "a" + std::string(n, ')');
  CheckLiteralFallback(negations);
  CheckLiteralFallback(std::string(n, '('));
}

TEST_CASE("very long operator chains parse and evaluate without deep recursion", "[jenkins]") {
  const int n = 200000;
  std::string ands = "a";
  std::string iffs = "a";
  std::string ors = "x0";
  for (int i = 1; i < n; ++i) {
    ands += " && a";
    iffs += "<->a";
    ors += "||x" + std::to_string(i);
  }
  LabelExpr and_chain = LabelExpr::Parse(ands);
  REQUIRE(and_chain.parsed_ok());
  CHECK(and_chain.Atoms() == Atoms{"a"});
  CHECK(and_chain.Matches({"a"}));
  CHECK_FALSE(and_chain.Matches({}));

  LabelExpr iff_chain = LabelExpr::Parse(iffs);
  REQUIRE(iff_chain.parsed_ok());
  // n operands all true: the left fold stays true.
  CHECK(iff_chain.Matches({"a"}));

  LabelExpr or_chain = LabelExpr::Parse(ors);
  REQUIRE(or_chain.parsed_ok());
  CHECK(or_chain.Atoms().size() == static_cast<std::size_t>(n));
  CHECK(or_chain.Matches({"x" + std::to_string(n - 1)}));
}

TEST_CASE("QuoteAtom leaves plain atoms bare and quotes the rest", "[jenkins]") {
  CHECK(LabelExpr::QuoteAtom("linux") == "linux");
  CHECK(LabelExpr::QuoteAtom("bare-trusty") == "bare-trusty");
  CHECK(LabelExpr::QuoteAtom("my label") == "\"my label\"");
  CHECK(LabelExpr::QuoteAtom("x->y") == "\"x->y\"");
  CHECK(LabelExpr::QuoteAtom("a\"b\\c") == R"("a\"b\\c")");
  CHECK(LabelExpr::QuoteAtom("") == "\"\"");
}

TEST_CASE("QuoteAtom output parses back to the same single atom", "[jenkins]") {
  for (const std::string atom :
       {"linux", "x-", "x-y", "my label", "x->y", "a&&b", "(", "it's", "tab\there", "line\nfeed",
        "cr\rhere", "q\"uote", "back\\slash", "\b\f", "", "日本語"}) {
    INFO(atom);
    LabelExpr e = LabelExpr::Parse(LabelExpr::QuoteAtom(atom));
    CHECK(e.parsed_ok());
    CHECK(e.Atoms() == Atoms{atom});
    // And it stays one atom inside a larger expression (the §4.5 pin form).
    LabelExpr pinned = LabelExpr::Parse("(a || b)&&" + LabelExpr::QuoteAtom(atom));
    CHECK(pinned.parsed_ok());
    CHECK(pinned.Matches({"a", atom}));
  }
}

TEST_CASE("non-ASCII UTF-8 atoms are ordinary atom bytes", "[jenkins]") {
  LabelExpr e = LabelExpr::Parse("日本 && !ünïcode");
  REQUIRE(e.parsed_ok());
  CHECK(e.Atoms() == Atoms{"日本", "ünïcode"});
  CHECK(e.Matches({"日本"}));
}

TEST_CASE("a parsed expression is an immutable value that copies", "[jenkins]") {
  LabelExpr original = LabelExpr::Parse("a && !b");
  LabelExpr copy = original;
  CHECK(copy.ToString() == original.ToString());
  CHECK(copy.Matches({"a"}));
  CHECK_FALSE(copy.Matches({"a", "b"}));
}

}  // namespace
}  // namespace roundhouse::jenkins
