"""The Airtable stand-in's cell values: what a write may put in a field of each type.

* Values are checked against the field's type ("Field types and cell values"): a refused one is
  422 `INVALID_VALUE_FOR_COLUMN`, as is any value for a computed field; links are arrays of
  existing record ids (else 422 `ROW_DOES_NOT_EXIST`).
* Text length ("Using rich text with Airtable", https://support.airtable.com/using-rich-text-with-airtable):
  "Single line text fields and long text fields are limited to 100,000 characters." A longer
  value (long text with rich text is `richText`) is 422 `INVALID_VALUE_FOR_COLUMN`, in the API
  and the UI alike; the error type is undocumented (the one for any refused value), and
  characters are counted as UTF-16 units, as JavaScript counts them (undocumented; never fewer
  than Python's code points, so the stricter count).
* `typecast` ("Update multiple records": "best-effort automatic data conversion"): a select
  value that is not an option becomes a new option ("Field types and cell values") but only for
  a creator, who may customise fields (else 422 `INVALID_MULTIPLE_CHOICE_OPTIONS`, as Airtable
  answers editors: airtable.js#138); a link value that is not a record id is matched to the
  linked table's primary field text, and a new record is created when none matches
  (Airtable's answer in airtable.js#130; `airtable_records.linked` does it once the request is
  known to be valid).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .airtable_errors import AirtableError
from .airtable_schema import TEXT_TYPES, Field, Table, new_id

if TYPE_CHECKING:
    from .airtable import AirtableStandIn

MAX_TEXT_CHARACTERS = 100_000  # "limited to 100,000 characters"
_LIMITED_TEXT_TYPES = {"singleLineText", "multilineText", "richText"}

COMPUTED_TYPES = {
    "formula",
    "createdTime",
    "lastModifiedTime",
    "autoNumber",
    "rollup",
    "count",
    "multipleLookupValues",
    # Also not writable: AI text's "Cell format (read only)" ("Field types and cell values"), a
    # button's "Cell write format n/a" (Extensions, "FieldType"); who created or last modified a
    # record is Airtable's to set (not found stated for the Web API: the stricter choice).
    "createdBy",
    "lastModifiedBy",
    "button",
    "aiText",
}


@dataclass(frozen=True)
class ByPrimary:
    """A typecast link value that names no record: the linked record whose primary field is `text`."""

    text: str


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value is False or value == []


def validated(standin: AirtableStandIn, table: Table, fields: Any, typecast: bool) -> dict[str, Any]:
    """Field values keyed by field id, every one checked against its field's type."""
    if fields is None:
        fields = {}
    if not isinstance(fields, dict):
        raise AirtableError(422, "INVALID_REQUEST_UNKNOWN", "fields must be an object")
    return {(f := table.field(key)).id: _value(standin, f, value, typecast) for key, value in fields.items()}


def _value(standin: AirtableStandIn, f: Field, value: Any, typecast: bool) -> Any:
    def refuse() -> AirtableError:
        return AirtableError(
            422, "INVALID_VALUE_FOR_COLUMN", f'Field "{f.name}" cannot accept the provided value'
        )

    if f.type in COMPUTED_TYPES:
        raise AirtableError(
            422,
            "INVALID_VALUE_FOR_COLUMN",
            f'Field "{f.name}" cannot accept a value because the field is computed',
        )
    if value is None:
        return None
    if isinstance(value, str) and (f.name, value) in standin.refused_values:
        raise refuse()
    if f.type in TEXT_TYPES:
        if not isinstance(value, str):
            if typecast and isinstance(value, int | float):
                return str(value)
            raise refuse()
        if f.type in _LIMITED_TEXT_TYPES and len(value.encode("utf-16-le")) // 2 > MAX_TEXT_CHARACTERS:
            raise AirtableError(
                422,
                "INVALID_VALUE_FOR_COLUMN",
                f'Field "{f.name}" cannot accept the provided value: '
                f"text is limited to {MAX_TEXT_CHARACTERS:,} characters",
            )
        return value
    if f.type == "email":
        if not isinstance(value, str) or (value and "@" not in value):
            raise refuse()
        return value
    if f.type == "number":
        if isinstance(value, str) and typecast:
            try:
                return float(value)
            except ValueError:
                raise refuse() from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise refuse()
        return value
    if f.type == "checkbox":
        if not isinstance(value, bool):
            raise refuse()
        return value
    if f.type in ("dateTime", "date"):
        if not isinstance(value, str):
            raise refuse()
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise refuse() from None
        return value
    if f.type == "singleSelect":
        if not isinstance(value, str):
            raise refuse()
        names = [c["name"] for c in f.options["choices"]]
        if value and value not in names:
            if not typecast or standin.permission != "creator":
                raise AirtableError(
                    422,
                    "INVALID_MULTIPLE_CHOICE_OPTIONS",
                    f'Insufficient permissions to create new select option ""{value}""',
                )
            f.options["choices"].append({"id": new_id("sel"), "name": value})
        return value
    if f.type == "multipleRecordLinks":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise refuse()
        linked = next(t for t in standin.tables if t.id == f.options["linkedTableId"])
        out: list[Any] = []
        for record_id in value:
            if record_id in linked.records:
                out.append(record_id)
            elif typecast:
                out.append(ByPrimary(record_id))  # matched or created once the request is valid
            else:
                raise AirtableError(
                    422, "ROW_DOES_NOT_EXIST", f"Record ID {record_id} does not exist in this table"
                )
        return out
    return value
