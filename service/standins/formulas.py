"""The part of Airtable's formula language that `filterByFormula` needs in the stand-in: field
references, string/number literals, comparisons, `&`, AND/OR/NOT/TRUE/FALSE/BLANK/LEN/TRIM/
LOWER/UPPER/LEFT, and the record and date functions RECORD_ID, CREATED_TIME, LAST_MODIFIED_TIME,
IS_AFTER, IS_BEFORE and DATETIME_PARSE. Anything else is refused the way Airtable refuses a
formula it cannot parse.

Date rules (Airtable's function list, "Formula field reference"): LAST_MODIFIED_TIME([fields…])
"Returns the date and time of the most recent modification made by a user in a non-computed
field"; IS_AFTER(date1, date2) "Determines if [date1] is later than [date2]". Undocumented, and
kept strict here: a field set when its record was created and never changed since has no
modification time (blank), and a comparison with a blank date is false, so a query must look at
CREATED_TIME() as well; DATETIME_PARSE reads ISO 8601 only (with Z or an offset; without one, UTC).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Protocol


class Row(Protocol):
    """One record as a formula sees it."""

    record_id: str
    created: datetime

    def field(self, name: str) -> Any: ...

    def modified(self, names: list[str]) -> datetime | None:
        """When any of the named fields (every field when none) was last changed by a write."""
        ...


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
    if isinstance(a, datetime) or isinstance(b, datetime):
        first, second = _date(a), _date(b)
        if first is None or second is None:
            return False  # a blank date compares as an error: the record is not listed
        a, b = first, second
    elif isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
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


def _date(value: Any) -> datetime | None:
    """A date value, or an ISO 8601 text (as DATETIME_PARSE reads it); None when blank."""
    if isinstance(value, datetime):
        return value
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise FormulaError(f"cannot read {value!r} as a date (ISO 8601 expected)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _later(a: Any, b: Any) -> bool:
    first, second = _date(a), _date(b)
    return first is not None and second is not None and first > second


def _parse_datetime(text: Any, *formats: Any) -> datetime | None:
    if formats:
        raise FormulaError("the stand-in's DATETIME_PARSE reads ISO 8601 only, without a format")
    return _date(text)


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
    "IS_AFTER": _later,
    "IS_BEFORE": lambda a, b: _later(b, a),
    "DATETIME_PARSE": _parse_datetime,
}
# Functions of the record itself, not of values.
_RECORD_FUNCTIONS: dict[str, Callable[[Row], Any]] = {
    "RECORD_ID": lambda row: row.record_id,
    "CREATED_TIME": lambda row: row.created,
}


def compile_formula(text: str) -> tuple[Callable[[Row], bool], set[str]]:
    """The formula as a test of one record, and the field names it refers to."""
    tokens = _tokens(text)
    pos = 0
    fields: set[str] = set()

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
            fields.add(name)
            return lambda row: row.field(name)
        if kind == "string":
            literal = _unescape(value[1:-1])
            return lambda _row: literal
        if kind == "number":
            number = float(value) if "." in value else int(value)
            return lambda _row: number
        if kind == "name" and value in _RECORD_FUNCTIONS:
            take("(")
            take(")")
            return _RECORD_FUNCTIONS[value]
        if kind == "name" and value == "LAST_MODIFIED_TIME":
            take("(")
            names: list[str] = []
            while peek() != ("op", ")"):
                if names:
                    take(",")
                field_kind, field = take()
                if field_kind != "field":
                    raise FormulaError("LAST_MODIFIED_TIME takes field references only")
                names.append(_unescape(field[1:-1]))
            fields.update(names)
            take(")")
            return lambda row: row.modified(names)
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
    return (lambda row: _truthy(expression(row))), fields
