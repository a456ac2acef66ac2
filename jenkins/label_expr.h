// Jenkins label expressions (doc/jenkins.md §3.1-3.2): a lexer and recursive-descent parser
// producing a small immutable AST, evaluation against a node's label set, and the list of atoms
// an expression mentions (used to derive `build:J:A` function names, §3.3).
//
// Pure value code: no I/O, no logging, no globals. A LabelExpr is immutable after Parse() and
// may be copied and shared freely; concurrent const use from several threads is safe.
//
// The text comes from Jenkins, i.e. from a peer, so parsing never fails and never recurses
// without bound: anything unparsable (syntax error, lexical error, parentheses nested deeper than
// kMaxNesting) becomes the single literal atom of the whole string, as Jenkins' own
// `Jenkins.getLabel` does. A null or blank expression ("unrestricted job") is a different notion
// handled by the caller (see functions.h), not by this class.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace roundhouse::jenkins {

// The labels of one node (Jenkins `assignedLabels[].name`, self label included). Comparison is
// byte-wise, hence case-sensitive. std::less<> allows lookup by std::string_view.
using LabelSet = std::set<std::string, std::less<>>;

class LabelExpr {
 public:
  // Deepest parenthesis nesting accepted; one more level makes the expression unparsable. This
  // bounds the parser's and the evaluator's recursion (operators of one kind at one level are
  // stored as one n-ary node, so long chains like `a && b && ...` do not deepen the tree).
  static constexpr int kMaxNesting = 256;

  // Parses `text`. Never fails: see parsed_ok(). The result owns a copy of the text.
  static LabelExpr Parse(std::string_view text);

  // True if `text` parsed per §3.2; false if it fell back to the single literal atom `text`.
  bool parsed_ok() const { return parsed_ok_; }

  // The text given to Parse(), verbatim.
  const std::string& text() const { return text_; }

  // True iff the expression holds for a node carrying exactly `labels` (§3.2 semantics: an atom
  // is true iff it is in `labels`; `x -> y` is `!x || y`; `x <-> y` is true when both agree).
  bool Matches(const LabelSet& labels) const;

  // Every ATOM or STRING operand anywhere in the expression (under `!`, `->` and `<->`
  // included), unquoted and unescaped, without duplicates, in order of first occurrence in the
  // text. For an unparsable expression: exactly { text() }.
  const std::vector<std::string>& Atoms() const { return atoms_; }

  // A fully parenthesised rendering for logs and tests: binary operators as `(x && y)` with
  // single spaces, `!x`, n-ary chains of one operator flattened (`(a && b && c)`), `<->`
  // chains shown left-associated, atoms through QuoteAtom(). For an unparsable expression:
  // QuoteAtom(text()).
  std::string ToString() const;

  // `atom` as it must be written inside an expression: verbatim when it lexes as one ATOM,
  // otherwise as a STRING `"..."` with `\" \\ \b \t \n \f \r` escaped. Used to build pin
  // expressions such as `(<E>)&&<self label>` (§4.5).
  static std::string QuoteAtom(std::string_view atom);

 private:
  enum class Op : std::uint8_t { kAtom, kNot, kAnd, kOr, kImplies, kIff };

  // One AST node, stored in nodes_ and referring to others by index.
  struct Node {
    Op op = Op::kAtom;
    // For kAtom: index into atoms_. Unused otherwise.
    std::uint32_t atom = 0;
    // kNot: one child; kImplies: two (antecedent, consequent); kAnd / kOr / kIff: two or more,
    // kIff folded from the left. Indices into nodes_. Empty for kAtom.
    std::vector<std::uint32_t> children;
  };

  class Parser;

  LabelExpr() = default;
  bool Eval(std::uint32_t node, const std::vector<bool>& atom_true) const;
  void Render(std::uint32_t node, std::string* out) const;

  std::string text_;
  bool parsed_ok_ = false;
  // Invariant: non-empty; root_ indexes it; every child index is smaller than its parent's
  // index (children are built first), so the tree is acyclic.
  std::vector<Node> nodes_;
  std::uint32_t root_ = 0;
  // Distinct atoms in first-occurrence order; Node::atom indexes this.
  std::vector<std::string> atoms_;
};

}  // namespace roundhouse::jenkins
