"""The Airtable stand-in's "List records": pages, offsets and `filterByFormula`.

* At most 100 records a page; the `offset` is an opaque iterator that times out ("Iteration may
  timeout due to client inactivity or server restarts": 422 `LIST_RECORDS_ITERATOR_NOT_AVAILABLE`;
  the timeout itself is undocumented: `AirtableStandIn.offset_ttl_s`).
* `fields`: "Only data for fields whose names or IDs are in this list will be included";
  `filterByFormula` (the language: `formulas.py`); `maxRecords`.
* `pageSize` ("List records", https://airtable.com/developers/web/api/list-records#query-pagesize):
  "The number of records returned in each request. Must be less than or equal to 100. Default
  is 100." A larger one is refused, in the query string and in the body of `listRecords` alike,
  and so is one that is not a whole number from 1: 422 `INVALID_REQUEST_UNKNOWN` (the type and
  the refusal of a bad value are undocumented: the stricter choice, and the type of the "Errors"
  page's 422 example).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from .airtable_errors import AirtableError
from .airtable_records import render
from .airtable_schema import Table, new_id
from .formulas import FormulaError, compile_formula

MAX_PAGE_SIZE = 100  # "Must be less than or equal to 100. Default is 100." ("List records")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class _FormulaRow:
    """A record as `filterByFormula` sees it: fields by name, its id and times."""

    def __init__(self, record: dict[str, Any], by_name: dict[str, str]) -> None:
        self._record, self._by_name = record, by_name
        self.record_id: str = record["id"]
        self.created = _parse_iso(record["createdTime"])

    def field(self, name: str) -> Any:
        return self._record["fields"].get(self._by_name.get(name, ""))

    def modified(self, names: list[str]) -> datetime | None:
        changed = self._record["modified"]
        ids = [self._by_name.get(name, "") for name in names] if names else list(changed)
        times = [changed[i] for i in ids if i in changed]
        return _parse_iso(max(times)) if times else None


def list_page(
    table: Table, params: dict[str, Any], iterators: dict[str, dict[str, Any]], offset_ttl_s: float
) -> dict[str, Any]:
    """One page. The offset names an iterator (kept in `iterators`) over the records that matched
    when the listing began; it times out when unused for `offset_ttl_s`."""
    page_size = _page_size(params.get("pageSize"))
    offset = params.get("offset")
    now = time.monotonic()
    if offset:
        iterator_id = str(offset).split("/", 1)[0]
        if not iterator_id.startswith("itr"):
            raise AirtableError(422, "INVALID_OFFSET_VALUE", f"The value of offset {offset} is invalid")
        iterator = iterators.get(iterator_id)
        if iterator is None or iterator["table"] != table.id or now - iterator["used"] > offset_ttl_s:
            iterators.pop(iterator_id, None)
            raise AirtableError(422, "LIST_RECORDS_ITERATOR_NOT_AVAILABLE")
    else:
        iterator_id, iterator = (
            new_id("itr"),
            {"table": table.id, "ids": _matching(table, params), "at": 0},
        )
    iterator["used"] = now
    ids = [i for i in iterator["ids"][iterator["at"] :] if i in table.records]
    page, rest = ids[:page_size], ids[page_size:]
    only = params.get("fields")
    only = [only] if isinstance(only, str) else only
    out: dict[str, Any] = {"records": [render(table, table.records[i], only=only) for i in page]}
    if rest:
        iterator["ids"], iterator["at"] = rest, 0
        iterators[iterator_id] = iterator
        out["offset"] = f"{iterator_id}/{rest[0]}"
    else:
        iterators.pop(iterator_id, None)
    return out


def _page_size(value: Any) -> int:
    """ "pageSize … Must be less than or equal to 100. Default is 100." ("List records")."""
    if value is None:
        return MAX_PAGE_SIZE
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AirtableError(
            422,
            "INVALID_REQUEST_UNKNOWN",
            f"Invalid request: parameter validation failed. pageSize: {value!r} must be a whole "
            "number from 1",
        )
    if value > MAX_PAGE_SIZE:
        raise AirtableError(
            422,
            "INVALID_REQUEST_UNKNOWN",
            f"Invalid request: parameter validation failed. pageSize: {value} must be less than or "
            f"equal to {MAX_PAGE_SIZE}",
        )
    return value


def _matching(table: Table, params: dict[str, Any]) -> list[str]:
    records = list(table.records.values())
    formula = params.get("filterByFormula")
    if formula:
        try:
            matches, names = compile_formula(formula)
        except FormulaError as exc:
            raise AirtableError(
                422, "INVALID_FILTER_BY_FORMULA", f"The formula for filtering records is invalid: {exc}"
            ) from None
        # "Formulas can use field names, or field id's" ("List records").
        by_name = {**{f.id: f.id for f in table.fields}, **{f.name: f.id for f in table.fields}}
        if unknown := sorted(names - set(by_name)):
            # As Airtable answers a formula naming a field the table lacks (undocumented wording).
            raise AirtableError(
                422,
                "INVALID_FILTER_BY_FORMULA",
                "The formula for filtering records is invalid: Unknown field names: " + ", ".join(unknown),
            )
        records = [r for r in records if matches(_FormulaRow(r, by_name))]
    max_records = params.get("maxRecords")
    if max_records:
        records = records[: int(max_records)]
    return [r["id"] for r in records]
