// Label expression lexer, parser and evaluator (doc/jenkins.md §3.1-3.2).
#include "jenkins/label_expr.h"

#include <cassert>
#include <optional>
#include <unordered_map>
#include <utility>

namespace roundhouse::jenkins {
namespace {

enum class Tok : std::uint8_t { kAnd, kOr, kNot, kImplies, kIff, kLParen, kRParen, kAtom, kEnd };

struct Token {
  Tok kind = Tok::kEnd;
  std::string atom;  // kAtom only: the unquoted, unescaped operand
};

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

// Characters that end (or cannot start) a bare ATOM; `-` is handled separately.
bool IsAtomStop(char c) {
  switch (c) {
    case '&':
    case '|':
    case '!':
    case '<':
    case '>':
    case '(':
    case ')':
    case '"':
    case '\'':
    case ' ':
    case '\t':
      return true;
    default:
      return false;
  }
}

// Whether the bare-atom character at `i` may be part of an ATOM: not a stop character, and not
// a `-` that starts `->`.
bool IsAtomChar(std::string_view s, std::size_t i) {
  if (IsAtomStop(s[i])) return false;
  return !(s[i] == '-' && i + 1 < s.size() && s[i + 1] == '>');
}

// Splits `s` into tokens ending with kEnd. Returns false on a lexical error (lone `&`, `|`,
// `<`, `>`, a `'`, a bad escape, raw CR/LF in or no closing quote of a STRING).
bool Lex(std::string_view s, std::vector<Token>* out) {
  std::size_t i = 0;
  auto starts = [&](std::string_view t) { return s.substr(i, t.size()) == t; };
  while (i < s.size()) {
    const char c = s[i];
    if (IsSpace(c)) {
      ++i;
    } else if (starts("&&")) {
      out->push_back({Tok::kAnd, {}});
      i += 2;
    } else if (starts("||")) {
      out->push_back({Tok::kOr, {}});
      i += 2;
    } else if (c == '!') {
      out->push_back({Tok::kNot, {}});
      ++i;
    } else if (starts("->")) {
      out->push_back({Tok::kImplies, {}});
      i += 2;
    } else if (starts("<->")) {
      out->push_back({Tok::kIff, {}});
      i += 3;
    } else if (c == '(') {
      out->push_back({Tok::kLParen, {}});
      ++i;
    } else if (c == ')') {
      out->push_back({Tok::kRParen, {}});
      ++i;
    } else if (c == '"') {
      std::string atom;
      ++i;
      for (;;) {
        if (i >= s.size()) return false;  // unterminated
        const char d = s[i++];
        if (d == '"') break;
        if (d == '\r' || d == '\n') return false;
        if (d != '\\') {
          atom.push_back(d);
          continue;
        }
        if (i >= s.size()) return false;
        switch (s[i++]) {
          case 'b':
            atom.push_back('\b');
            break;
          case 't':
            atom.push_back('\t');
            break;
          case 'n':
            atom.push_back('\n');
            break;
          case 'f':
            atom.push_back('\f');
            break;
          case 'r':
            atom.push_back('\r');
            break;
          case '"':
            atom.push_back('"');
            break;
          case '\'':
            atom.push_back('\'');
            break;
          case '\\':
            atom.push_back('\\');
            break;
          default:
            return false;
        }
      }
      out->push_back({Tok::kAtom, std::move(atom)});
    } else if (IsAtomChar(s, i)) {
      const std::size_t begin = i;
      while (i < s.size() && IsAtomChar(s, i)) ++i;
      out->push_back({Tok::kAtom, std::string(s.substr(begin, i - begin))});
    } else {
      return false;  // lone &, |, <, >, or '
    }
  }
  out->push_back({Tok::kEnd, {}});
  return true;
}

}  // namespace

// Recursive descent over the token list, one method per grammar rule of §3.2. Each returns the
// index of the node it built, or nullopt on a syntax error (the whole parse is then abandoned).
class LabelExpr::Parser {
 public:
  Parser(const std::vector<Token>& tokens, LabelExpr* expr) : tokens_(tokens), expr_(expr) {}

  // expr := iff EOF
  std::optional<std::uint32_t> ParseExpr() {
    auto root = ParseIff();
    if (!root || Peek() != Tok::kEnd) return std::nullopt;
    return root;
  }

 private:
  Tok Peek() const { return tokens_[pos_].kind; }

  // Parses `sub (op sub)*` into one n-ary node of `op` (or just the single operand).
  template <typename Sub>
  std::optional<std::uint32_t> ParseChain(Tok tok, Op op, Sub sub) {
    auto first = (this->*sub)();
    if (!first) return std::nullopt;
    if (Peek() != tok) return first;
    Node node{op, 0, {*first}};
    while (Peek() == tok) {
      ++pos_;
      auto next = (this->*sub)();
      if (!next) return std::nullopt;
      node.children.push_back(*next);
    }
    return Add(std::move(node));
  }

  // iff := implies ( "<->" implies )*
  std::optional<std::uint32_t> ParseIff() {
    return ParseChain(Tok::kIff, Op::kIff, &Parser::ParseImplies);
  }

  // implies := or ( "->" or )?   -- a second "->" is left for the caller, which rejects it.
  std::optional<std::uint32_t> ParseImplies() {
    auto lhs = ParseOr();
    if (!lhs || Peek() != Tok::kImplies) return lhs;
    ++pos_;
    auto rhs = ParseOr();
    if (!rhs) return std::nullopt;
    return Add(Node{Op::kImplies, 0, {*lhs, *rhs}});
  }

  // or := and ( "||" and )*
  std::optional<std::uint32_t> ParseOr() {
    return ParseChain(Tok::kOr, Op::kOr, &Parser::ParseAnd);
  }

  // and := unary ( "&&" unary )*
  std::optional<std::uint32_t> ParseAnd() {
    return ParseChain(Tok::kAnd, Op::kAnd, &Parser::ParseUnary);
  }

  // unary := "!" primary | primary   -- so "!!a" fails in ParsePrimary.
  std::optional<std::uint32_t> ParseUnary() {
    if (Peek() != Tok::kNot) return ParsePrimary();
    ++pos_;
    auto operand = ParsePrimary();
    if (!operand) return std::nullopt;
    return Add(Node{Op::kNot, 0, {*operand}});
  }

  // primary := "(" iff ")" | ATOM | STRING
  std::optional<std::uint32_t> ParsePrimary() {
    const Token& t = tokens_[pos_];
    if (t.kind == Tok::kAtom) {
      ++pos_;
      return Add(Node{Op::kAtom, InternAtom(t.atom), {}});
    }
    if (t.kind != Tok::kLParen || depth_ >= kMaxNesting) return std::nullopt;
    ++pos_;
    ++depth_;
    auto inner = ParseIff();
    --depth_;
    if (!inner || Peek() != Tok::kRParen) return std::nullopt;
    ++pos_;
    return inner;
  }

  std::uint32_t InternAtom(const std::string& atom) {
    auto [it, inserted] =
        atom_index_.try_emplace(atom, static_cast<std::uint32_t>(expr_->atoms_.size()));
    if (inserted) expr_->atoms_.push_back(atom);
    return it->second;
  }

  std::uint32_t Add(Node node) {
    expr_->nodes_.push_back(std::move(node));
    return static_cast<std::uint32_t>(expr_->nodes_.size() - 1);
  }

  const std::vector<Token>& tokens_;  // ends with kEnd, so Peek() never runs past the end
  LabelExpr* expr_;                   // receives nodes_ and atoms_
  std::size_t pos_ = 0;
  int depth_ = 0;  // current parenthesis nesting
  std::unordered_map<std::string, std::uint32_t> atom_index_;
};

LabelExpr LabelExpr::Parse(std::string_view text) {
  LabelExpr expr;
  expr.text_ = std::string(text);
  std::vector<Token> tokens;
  if (Lex(text, &tokens)) {
    Parser parser(tokens, &expr);
    if (auto root = parser.ParseExpr()) {
      expr.root_ = *root;
      expr.parsed_ok_ = true;
      return expr;
    }
  }
  // Jenkins.getLabel: an expression that does not parse is one literal atom.
  expr.nodes_.assign(1, Node{Op::kAtom, 0, {}});
  expr.atoms_.assign(1, expr.text_);
  expr.root_ = 0;
  expr.parsed_ok_ = false;
  return expr;
}

bool LabelExpr::Matches(const LabelSet& labels) const {
  std::vector<bool> atom_true(atoms_.size());
  for (std::size_t i = 0; i < atoms_.size(); ++i) atom_true[i] = labels.contains(atoms_[i]);
  return Eval(root_, atom_true);
}

bool LabelExpr::Eval(std::uint32_t index, const std::vector<bool>& atom_true) const {
  const Node& n = nodes_[index];
  switch (n.op) {
    case Op::kAtom:
      return atom_true[n.atom];
    case Op::kNot:
      return !Eval(n.children[0], atom_true);
    case Op::kAnd:
      for (std::uint32_t c : n.children) {
        if (!Eval(c, atom_true)) return false;
      }
      return true;
    case Op::kOr:
      for (std::uint32_t c : n.children) {
        if (Eval(c, atom_true)) return true;
      }
      return false;
    case Op::kImplies:
      return !Eval(n.children[0], atom_true) || Eval(n.children[1], atom_true);
    case Op::kIff: {
      bool value = Eval(n.children[0], atom_true);
      for (std::size_t i = 1; i < n.children.size(); ++i) {
        value = (value == Eval(n.children[i], atom_true));
      }
      return value;
    }
  }
  assert(false && "unknown label expression op");
  return false;
}

std::string LabelExpr::ToString() const {
  std::string out;
  Render(root_, &out);
  return out;
}

void LabelExpr::Render(std::uint32_t index, std::string* out) const {
  const Node& n = nodes_[index];
  switch (n.op) {
    case Op::kAtom:
      *out += QuoteAtom(atoms_[n.atom]);
      return;
    case Op::kNot:
      *out += '!';
      Render(n.children[0], out);
      return;
    case Op::kIff:
      // Left-associated: ((a <-> b) <-> c).
      out->append(n.children.size() - 1, '(');
      Render(n.children[0], out);
      for (std::size_t i = 1; i < n.children.size(); ++i) {
        *out += " <-> ";
        Render(n.children[i], out);
        *out += ')';
      }
      return;
    case Op::kAnd:
    case Op::kOr:
    case Op::kImplies: {
      const char* sep = n.op == Op::kAnd ? " && " : n.op == Op::kOr ? " || " : " -> ";
      *out += '(';
      for (std::size_t i = 0; i < n.children.size(); ++i) {
        if (i > 0) *out += sep;
        Render(n.children[i], out);
      }
      *out += ')';
      return;
    }
  }
}

std::string LabelExpr::QuoteAtom(std::string_view atom) {
  bool bare = !atom.empty();
  for (std::size_t i = 0; bare && i < atom.size(); ++i) {
    const char c = atom[i];
    // CR/LF would lex as an ATOM, but a quoted form survives line-oriented transport.
    bare = IsAtomChar(atom, i) && c != '\r' && c != '\n';
  }
  if (bare) return std::string(atom);
  std::string out = "\"";
  for (char c : atom) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace roundhouse::jenkins
