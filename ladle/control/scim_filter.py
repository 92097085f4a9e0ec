"""SCIM list filters (RFC 7644 §3.4.2.2), the subset clients send to Databricks:
`attr op "value"` with op eq|ne|co|sw|ew, `attr pr`, joined by `and` / `or` (`and` binds
tighter; no parentheses, no `not`, no complex attribute paths). Attribute names and string
comparisons are case-insensitive, as SCIM has them for userName and displayName.

Hand-written: the grammar is a dozen lines, and the SCIM filter libraries on PyPI either
compile to SQL or pull in a parser framework for the full grammar we would not use."""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from ladle.schemas.errors import invalid

Predicate = Callable[[dict[str, Any]], bool]

_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|([^\s"()]+)|([()]))')
_OPS: dict[str, Callable[[str, str], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "co": lambda a, b: b in a,
    "sw": lambda a, b: a.startswith(b),
    "ew": lambda a, b: a.endswith(b),
}


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise invalid(f"filter: cannot read {text[pos:pos + 20]!r}")
        if m.group(3):
            raise invalid("filter: parentheses are not supported")
        out.append(("str", m.group(1)) if m.group(1) else ("word", m.group(2)))
        pos = m.end()
    return out


def _value(kind: str, raw: str) -> str:
    if kind == "str":
        try:
            return str(json.loads(raw)).lower()
        except ValueError:
            raise invalid(f"filter: bad string {raw}") from None
    if raw.lower() in ("true", "false"):
        return raw.lower()
    raise invalid(f"filter: a value must be a quoted string, true or false (got {raw!r})")


def parse(text: str, attributes: frozenset[str]) -> Predicate:
    """A predicate over a resource's attributes (lower-cased names -> values). `attributes`
    names the ones this resource may be filtered on (lower case); others are a 400."""
    toks = _tokens(text)
    if not toks:
        raise invalid("filter: empty")
    i = 0
    clauses: list[list[Predicate]] = [[]]        # or of ands
    while True:
        if i >= len(toks) or toks[i][0] != "word":
            raise invalid("filter: an attribute name is expected")
        attr = toks[i][1].lower()
        if attr not in attributes:
            raise invalid(f"filter: cannot filter on '{toks[i][1]}' (known: {', '.join(sorted(attributes))})")
        if i + 1 >= len(toks) or toks[i + 1][0] != "word":
            raise invalid(f"filter: an operator is expected after '{toks[i][1]}'")
        op = toks[i + 1][1].lower()
        if op == "pr":
            clauses[-1].append(lambda r, a=attr: r.get(a) not in (None, ""))
            i += 2
        elif op in _OPS:
            if i + 2 >= len(toks):
                raise invalid(f"filter: a value is expected after '{op}'")
            want = _value(*toks[i + 2])
            fn = _OPS[op]
            clauses[-1].append(lambda r, a=attr, f=fn, w=want: f(_text(r.get(a)), w))
            i += 3
        else:
            raise invalid(f"filter: unknown operator '{toks[i + 1][1]}' (eq, ne, co, sw, ew, pr)")
        if i == len(toks):
            break
        joiner = toks[i][1].lower() if toks[i][0] == "word" else ""
        if joiner == "or":
            clauses.append([])
        elif joiner != "and":
            raise invalid(f"filter: 'and' or 'or' expected, got {toks[i][1]!r}")
        i += 1
    return lambda r: any(all(p(r) for p in ands) for ands in clauses)


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v).lower()
