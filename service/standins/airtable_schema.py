"""The Airtable stand-in's tables and fields: the base's schema and the metadata API.

* "Get base schema": every table with its fields (id, name, type, options), the first field
  being the primary one.
* "Create field" (https://airtable.com/developers/web/api/create-field): a unique, non-empty
  name and a type that can be created; a link names a table of the base.
* "Create table": a unique name and at least one field, the first of a type that can be primary.
* The base the stand-in starts with: the Companies and Contacts tables the design describes.
"""

from __future__ import annotations

import copy
import random
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .airtable_errors import AirtableError, json_body

if TYPE_CHECKING:
    from .airtable import AirtableStandIn

FIELD_TYPES = {
    "singleLineText",
    "multilineText",
    "richText",
    "phoneNumber",
    "email",
    "url",
    "number",
    "checkbox",
    "date",
    "dateTime",
    "singleSelect",
    "multipleSelects",
    "multipleRecordLinks",
}
TEXT_TYPES = {"singleLineText", "multilineText", "phoneNumber", "richText", "url"}


# Not the `random` module's shared state: a test framework may seed it (hypothesis does, for
# every example), and two records with one id would overwrite each other.
_IDS = random.SystemRandom()


def new_id(prefix: str) -> str:
    return prefix + "".join(_IDS.choices(string.ascii_letters + string.digits, k=14))


@dataclass
class Field:
    name: str
    type: str
    options: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: new_id("fld"))

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "type": self.type}
        if self.options:
            out["options"] = copy.deepcopy(self.options)
        return out


@dataclass
class Table:
    name: str
    fields: list[Field]
    id: str = field(default_factory=lambda: new_id("tbl"))
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    def field(self, key: str) -> Field:
        for f in self.fields:
            if key in (f.name, f.id):
                return f
        raise AirtableError(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{key}"')

    def schema(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "primaryFieldId": self.fields[0].id,
            "fields": [f.schema() for f in self.fields],
            "views": [],
        }


def _select(*names: str) -> dict[str, Any]:
    return {"choices": [{"id": new_id("sel"), "name": n} for n in names]}


def _link(table_id: str) -> dict[str, Any]:
    return {"linkedTableId": table_id, "isReversed": False, "prefersSingleRecordLink": False}


def default_tables() -> list[Table]:
    """The Companies and Contacts tables the design describes, plus fields people edit."""
    companies = Table(
        "Companies",
        [
            Field("Company Name", "singleLineText"),
            Field("CIN", "singleLineText"),
            Field(
                "Contacts Sync Status",
                "singleSelect",
                _select("Queued", "Running", "Waiting", "Synced", "No Data", "Failed"),
            ),
            Field("Contacts Sync Error", "multilineText"),
            Field("Contacts Synced At", "dateTime", {"timeZone": "utc", "dateFormat": {"name": "iso"}}),
            Field("Contacts Found", "number", {"precision": 0}),
            Field("Refresh Contacts", "checkbox"),
            Field("Notes", "multilineText"),
        ],
    )
    contacts = Table(
        "Contacts",
        [
            Field("Name", "singleLineText"),
            Field("Phone Number", "phoneNumber"),
            Field("Email", "email"),
            Field("DIN", "singleLineText"),
            Field("Address", "multilineText"),
            Field("Company", "multipleRecordLinks", _link(companies.id)),
            Field("Contact Key", "singleLineText"),
            Field("Contacts Sync Note", "multilineText"),
            Field("Phone Type", "singleSelect", _select("Mobile", "Landline")),
            Field("Status", "singleSelect", _select("New", "Contacted", "Interested", "Not interested")),
            Field("Notes", "multilineText"),
        ],
    )
    return [companies, contacts]


async def answer(standin: AirtableStandIn, request: Request) -> Response:
    """`/v0/meta/bases/{base}/tables[/{table}/fields]`: the schema, a new table, a new field."""
    if request.url.path.endswith("/fields"):
        return JSONResponse(
            create_field(standin, standin.table(request.path_params["table"]), await json_body(request))
        )
    if request.url.path.endswith("/tables") and request.method == "POST":
        return JSONResponse(create_table(standin, await json_body(request)))
    return JSONResponse({"tables": [t.schema() for t in standin.tables]})


def create_field(standin: AirtableStandIn, table: Table, body: dict[str, Any]) -> dict[str, Any]:
    name, kind, options = body.get("name"), body.get("type"), body.get("options") or {}
    if not isinstance(name, str) or not name.strip() or any(f.name == name for f in table.fields):
        raise AirtableError(
            422, "DUPLICATE_OR_EMPTY_FIELD_NAME", f'Field name "{name}" is empty or already used'
        )
    if kind not in FIELD_TYPES:
        raise AirtableError(422, "INVALID_FIELD_TYPE", f'Field type "{kind}" cannot be created')
    if kind in ("singleSelect", "multipleSelects"):
        choices = options.get("choices") if isinstance(options, dict) else None
        options = {"choices": [{"id": new_id("sel"), "name": c["name"]} for c in choices or []]}
    if kind == "multipleRecordLinks":
        linked = options.get("linkedTableId") if isinstance(options, dict) else None
        if not any(t.id == linked for t in standin.tables):
            raise AirtableError(
                422, "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE", "linkedTableId must name a table"
            )
    if kind == "multipleRecordLinks":
        options = _link(options["linkedTableId"])
    created = Field(name, kind, options if isinstance(options, dict) else {})
    table.fields.append(created)
    return created.schema()


def create_table(standin: AirtableStandIn, body: dict[str, Any]) -> dict[str, Any]:
    """ "Create table": a unique name and at least one field, the first being the primary one
    (of a type that can be primary)."""
    name, fields = body.get("name"), body.get("fields")
    if not isinstance(name, str) or not name.strip() or any(t.name == name for t in standin.tables):
        raise AirtableError(422, "DUPLICATE_TABLE_NAME", f'Table name "{name}" is empty or already used')
    if not isinstance(fields, list) or not fields or not all(isinstance(f, dict) for f in fields):
        raise AirtableError(422, "INVALID_REQUEST_UNKNOWN", "A table needs at least one field")
    if fields[0].get("type") not in TEXT_TYPES | {"email", "number", "date", "dateTime"}:
        raise AirtableError(422, "INVALID_PRIMARY_FIELD_TYPE", "This field type cannot be the primary field")
    table = Table(name, [])
    standin.tables.append(table)
    try:
        for spec in fields:
            create_field(standin, table, spec)
    except AirtableError:
        standin.tables.remove(table)
        raise
    return table.schema()


def remove_field(standin: AirtableStandIn, table: str, name: str) -> None:
    """Delete a field, as a person can in the UI (webhooks watching it go into error)."""
    t = standin.table(table)
    for gone in [f for f in t.fields if f.name == name]:
        t.fields.remove(gone)
        standin.hub.field_deleted(t, gone)
