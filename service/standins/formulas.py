"""The part of Airtable's formula language that `filterByFormula` needs in the stand-in: field
references, string/number literals, comparisons, `&`, and AND/OR/NOT/TRUE/FALSE/BLANK/LEN/TRIM/
LOWER/UPPER/LEFT. Anything else is refused the way Airtable refuses a formula it cannot parse."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Row = Callable[[str], Any]  # field name -> value
_TOKEN = re.compile(
    r"\s*(?:(?P<field>\{(?:[^}\\]|\\.)*\})|(?P<string>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Z_]+)|(?P<op>!=|>=|<=|=|>|<|&|\(|\)|,))"
)


class FormulaError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            raise FormulaError(f"cannot parse the formula near {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", r"\1", body)


def _text(value: Any) -> str:
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _compare(op: str, a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        a, b = (
            (_truthy(a), _truthy(b)) if isinstance(a, bool) or isinstance(b, bool) else (_text(a), _text(b))
        )
    elif isinstance(a, int | float) and isinstance(b, int | float):
        pass
    else:
        a, b = _text(a), _text(b)
    return {"=": a == b, "!=": a != b, ">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]


def _truthy(value: Any) -> bool:
    return bool(value) and value != "0"


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "AND": lambda *a: all(_truthy(x) for x in a),
    "OR": lambda *a: any(_truthy(x) for x in a),
    "NOT": lambda a: not _truthy(a),
    "TRUE": lambda: True,
    "FALSE": lambda: False,
    "BLANK": lambda: None,
    "LEN": lambda a: len(_text(a)),
    "TRIM": lambda a: _text(a).strip(),
    "LOWER": lambda a: _text(a).lower(),
    "UPPER": lambda a: _text(a).upper(),
    "LEFT": lambda a, n: _text(a)[: int(n)],
}


def compile_formula(text: str) -> Callable[[Row], bool]:
    tokens = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take(value: str | None = None) -> tuple[str, str]:
        nonlocal pos
        token = peek()
        if token is None or (value is not None and token[1] != value):
            raise FormulaError(f"expected {value or 'more'} in the formula")
        pos += 1
        return token

    def comparison() -> Callable[[Row], Any]:
        left = concat()
        token = peek()
        if token and token[0] == "op" and token[1] in ("=", "!=", ">", "<", ">=", "<="):
            op = take()[1]
            right = concat()
            return lambda row: _compare(op, left(row), right(row))
        return left

    def concat() -> Callable[[Row], Any]:
        left = atom()
        while (token := peek()) and token == ("op", "&"):
            take("&")
            right, first = atom(), left
            left = lambda row, a=first, b=right: _text(a(row)) + _text(b(row))  # noqa: E731
        return left

    def atom() -> Callable[[Row], Any]:
        kind, value = take()
        if kind == "field":
            name = _unescape(value[1:-1])
            return lambda row: row(name)
        if kind == "string":
            literal = _unescape(value[1:-1])
            return lambda _row: literal
        if kind == "number":
            number = float(value) if "." in value else int(value)
            return lambda _row: number
        if kind == "name" and value in _FUNCTIONS:
            take("(")
            args: list[Callable[[Row], Any]] = []
            if peek() != ("op", ")"):
                args.append(comparison())
                while peek() == ("op", ","):
                    take(",")
                    args.append(comparison())
            take(")")
            function = _FUNCTIONS[value]
            return lambda row: function(*(arg(row) for arg in args))
        if kind == "op" and value == "(":
            inner = comparison()
            take(")")
            return inner
        raise FormulaError(f"unknown {value!r} in the formula")

    expression = comparison()
    if pos != len(tokens):
        raise FormulaError("unexpected text at the end of the formula")
    return lambda row: _truthy(expression(row))
