"""Jenkins label expressions (doc/jenkins.md §3), written independently of the C++ parser.

parse(text) -> AST tuple, or raises LabelSyntaxError.
compile_label(text) -> Label (parsed, or the whole string as one atom when unparsable), or None
for a null/blank expression (unrestricted).
"""


class LabelSyntaxError(ValueError):
    pass


_SPECIAL = set('&|!<>()"\' \t')
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


def tokenize(text):
    toks = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t":
            i += 1
        elif text.startswith("&&", i):
            toks.append(("AND", "&&")); i += 2
        elif text.startswith("||", i):
            toks.append(("OR", "||")); i += 2
        elif text.startswith("<->", i):
            toks.append(("IFF", "<->")); i += 3
        elif text.startswith("->", i):
            toks.append(("IMPLIES", "->")); i += 2
        elif c == "!":
            toks.append(("NOT", "!")); i += 1
        elif c == "(":
            toks.append(("LPAREN", "(")); i += 1
        elif c == ")":
            toks.append(("RPAREN", ")")); i += 1
        elif c == '"':
            i += 1
            out = []
            while True:
                if i >= n:
                    raise LabelSyntaxError("unterminated string")
                c = text[i]
                if c == '"':
                    i += 1
                    break
                if c in "\r\n":
                    raise LabelSyntaxError("newline in string")
                if c == "\\":
                    if i + 1 >= n or text[i + 1] not in _ESCAPES:
                        raise LabelSyntaxError("bad escape")
                    out.append(_ESCAPES[text[i + 1]]); i += 2
                    continue
                out.append(c); i += 1
            toks.append(("ATOM", "".join(out)))
        elif c in _SPECIAL:
            raise LabelSyntaxError("unexpected %r" % c)
        else:
            j = i
            while j < n and text[j] not in _SPECIAL:
                if text[j] == "-" and j + 1 < n and text[j + 1] == ">":
                    break
                j += 1
            if j == i:  # '-' directly followed by '>' was handled above; cannot happen
                raise LabelSyntaxError("empty atom")
            toks.append(("ATOM", text[i:j])); i = j
    toks.append(("EOF", ""))
    return toks


class _Parser:
    def __init__(self, toks):
        self.toks, self.pos = toks, 0

    def peek(self):
        return self.toks[self.pos][0]

    def take(self, kind):
        if self.peek() != kind:
            raise LabelSyntaxError("expected %s, got %s" % (kind, self.peek()))
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def expr(self):
        node = self.iff()
        self.take("EOF")
        return node

    def iff(self):
        node = self.implies()
        while self.peek() == "IFF":
            self.pos += 1
            node = ("iff", node, self.implies())
        return node

    def implies(self):
        node = self.or_()
        if self.peek() == "IMPLIES":
            self.pos += 1
            node = ("implies", node, self.or_())
        return node

    def or_(self):
        node = self.and_()
        while self.peek() == "OR":
            self.pos += 1
            node = ("or", node, self.and_())
        return node

    def and_(self):
        node = self.unary()
        while self.peek() == "AND":
            self.pos += 1
            node = ("and", node, self.unary())
        return node

    def unary(self):
        if self.peek() == "NOT":
            self.pos += 1
            return ("not", self.primary())
        return self.primary()

    def primary(self):
        if self.peek() == "LPAREN":
            self.pos += 1
            node = self.iff()
            self.take("RPAREN")
            return node
        return ("atom", self.take("ATOM")[1])


def parse(text):
    return _Parser(tokenize(text)).expr()


def evaluate(node, labels):
    op = node[0]
    if op == "atom":
        return node[1] in labels
    if op == "not":
        return not evaluate(node[1], labels)
    a = evaluate(node[1], labels)
    b = evaluate(node[2], labels)
    if op == "and":
        return a and b
    if op == "or":
        return a or b
    if op == "implies":
        return (not a) or b
    if op == "iff":
        return a == b
    raise AssertionError(op)


def atoms_of(node, out=None):
    out = [] if out is None else out
    if node[0] == "atom":
        if node[1] not in out:
            out.append(node[1])
    else:
        for child in node[1:]:
            atoms_of(child, out)
    return out


class Label:
    """A label expression as Jenkins' getLabel() would see it."""

    def __init__(self, text):
        self.text = text
        try:
            self.ast = parse(text)
            self.valid = True
        except LabelSyntaxError:
            self.ast = ("atom", text)  # Jenkins falls back to one literal atom
            self.valid = False

    def matches(self, labels):
        return evaluate(self.ast, set(labels))

    def atoms(self):
        return atoms_of(self.ast)

    def is_atom(self):
        return self.ast[0] == "atom"


def compile_label(text):
    if text is None or text.strip() == "":
        return None
    return Label(text.strip())
