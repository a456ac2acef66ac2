"""Jenkins `tree=` parameter: parse and apply (only the named fields are kept, recursively).

Like real Jenkins, `_class` is always kept on objects that have one.
"""


class TreeSyntaxError(ValueError):
    pass


def parse_tree(text):
    """'a,b[c,d]{0,5}' -> [(name, subtree or None, (start, end) or None), ...]"""
    pos = 0

    def parse_list():
        nonlocal pos
        items = []
        while True:
            start = pos
            while pos < len(text) and text[pos] not in ",[]{}":
                pos += 1
            name = text[start:pos].strip()
            if not name:
                raise TreeSyntaxError("empty field name at %d" % start)
            sub = rng = None
            if pos < len(text) and text[pos] == "[":
                pos += 1
                sub = parse_list()
                if pos >= len(text) or text[pos] != "]":
                    raise TreeSyntaxError("missing ]")
                pos += 1
            if pos < len(text) and text[pos] == "{":
                end = text.find("}", pos)
                if end < 0:
                    raise TreeSyntaxError("missing }")
                rng = parse_range(text[pos + 1:end])
                pos = end + 1
            items.append((name, sub, rng))
            if pos < len(text) and text[pos] == ",":
                pos += 1
                continue
            return items

    items = parse_list()
    if pos != len(text):
        raise TreeSyntaxError("unexpected %r at %d" % (text[pos], pos))
    return items


def parse_range(spec):
    spec = spec.strip()
    try:
        if "," in spec:
            lo, hi = spec.split(",", 1)
            return (int(lo) if lo.strip() else 0, int(hi) if hi.strip() else None)
        n = int(spec)
        return (n, n + 1)
    except ValueError:
        raise TreeSyntaxError("bad range {%s}" % spec)


def apply_tree(value, tree):
    """Filter a JSON-like value (dicts/lists/scalars) by a parsed tree."""
    if isinstance(value, list):
        return [apply_tree(v, tree) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    if "_class" in value:
        out["_class"] = value["_class"]
    for name, sub, rng in tree or ():
        if name not in value:
            continue
        v = value[name]
        if isinstance(v, list) and rng is not None:
            v = v[rng[0]:rng[1]]
        out[name] = _leaf(v) if sub is None else apply_tree(v, sub)
    return out


def _leaf(v):
    # A named object/array-of-objects without a sub-tree: Jenkins emits only `_class`.
    if isinstance(v, dict):
        return {"_class": v["_class"]} if "_class" in v else {}
    if isinstance(v, list):
        return [_leaf(x) for x in v]
    return v


_SHALLOW = ("_class", "name", "fullName", "url", "number", "id", "displayName", "nodeName", "color")


def depth0(value):
    """Approximation of Jenkins' default (depth=0) output when no tree is given."""
    if isinstance(value, list):
        return [depth0(v) for v in value]
    if not isinstance(value, dict):
        return value
    return {k: _shallow(v) for k, v in value.items()}


def _shallow(v):
    if isinstance(v, list):
        return [_shallow(x) for x in v]
    if isinstance(v, dict):
        return {k: x for k, x in v.items() if k in _SHALLOW and not isinstance(x, (dict, list))}
    return v
