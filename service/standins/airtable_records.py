"""The Airtable stand-in's records: get, create, update (and upsert), delete.

* "Create records", "Update multiple records": at most 10 records; PATCH merges, PUT replaces;
  `performUpsert.fieldsToMergeOn` (no match creates, one updates, several fail); each request
  applied whole or not at all; 422 `UNKNOWN_FIELD_NAME`; values checked against the field's type
  (`airtable_values.py`).
* `fieldsToMergeOn` ("Update multiple records",
  https://airtable.com/developers/web/api/update-multiple-records#request-performupsert-fieldstomergeon):
  "An array with at least one and at most three field names or IDs. IDs must uniquely identify
  a single record. These cannot be computed fields (formulas, lookups, rollups), and must be one
  of the following types: number, text, long text, single select, multiple select, date." Read
  strictly: "text" is `singleLineText` only (not email, phone, url or rich text), "date" is `date`
  only (not `dateTime`), and a field named twice is refused. The refusal's type is undocumented:
  422 `INVALID_REQUEST_UNKNOWN`, the type of the "Errors" page's 422 example.
* Editing permissions set on a table or a field, and a field reported unknown for a moment:
  `airtable_restrictions.py`.
* "Get record", "Delete record": a record that is not there is 404 `NOT_FOUND`; in a request for
  several it is 422 `ROW_DOES_NOT_EXIST`.
* Empty values are left out of answers. "List records" is `airtable_listing.py`.

The stand-in's `_create`, `_write` and `_list` are called through the stand-in, never directly,
so that a test can wrap them (an answer lost on the way back).
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import airtable_restrictions as restrictions
from .airtable_errors import AirtableError, json_body
from .airtable_schema import Field, Table, new_id
from .airtable_values import COMPUTED_TYPES, ByPrimary, is_empty, validated

if TYPE_CHECKING:
    from .airtable import AirtableStandIn

MAX_RECORDS_PER_WRITE = 10
MAX_FIELDS_TO_MERGE_ON = 3  # "at least one and at most three field names or IDs"
# "must be one of the following types: number, text, long text, single select, multiple select, date"
MERGEABLE_TYPES = {"number", "singleLineText", "multilineText", "singleSelect", "multipleSelects", "date"}


def _now_iso() -> str:
    """A time as the API writes it: UTC, milliseconds ("2022-08-29T07:00:00.000Z")."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def answer(standin: AirtableStandIn, request: Request, entry: dict[str, Any]) -> Response:
    """`/v0/{base}/{table}[/{record}]`: get, list, create, update, upsert, delete. `entry`, the
    request as the stand-in logs it, gets the number of records written."""
    table = standin.table(request.path_params["table"])
    record_id = request.path_params.get("record")
    method = request.method
    if method == "GET" and record_id:
        return JSONResponse(render(table, get(table, record_id)))
    if method == "GET" or (method == "POST" and record_id == "listRecords"):
        if method == "GET":
            params: dict[str, Any] = dict(request.query_params)
            params["fields"] = request.query_params.getlist("fields[]") or None
        else:
            params = await json_body(request)
        return JSONResponse(standin._list(table, params))
    restrictions.check_table(standin, table, method)
    if method == "DELETE":
        ids = [record_id] if record_id else request.query_params.getlist("records[]")
        entry["records"] = len(ids)
        return JSONResponse(delete(standin, table, ids, single=bool(record_id)))
    body = await json_body(request)
    restrictions.check_unknown_for_a_while(standin, table, body)
    typecast = body.get("typecast") is True
    if record_id:  # one record: PATCH/PUT /table/rec…
        entry["records"] = 1
        fields = validated(standin, table, body.get("fields"), typecast)
        get(table, record_id)
        restrictions.check_cells(standin, table, fields, record_id, replace=method == "PUT")
        return JSONResponse(
            render(table, update(standin, table, record_id, fields, method == "PUT", single=True))
        )
    if "records" not in body:  # POST with a single {"fields": …}
        if method != "POST":
            raise AirtableError(422, "INVALID_REQUEST_MISSING_FIELDS", 'Could not find field "records"')
        entry["records"] = 1
        fields = validated(standin, table, body.get("fields"), typecast)
        restrictions.check_cells(standin, table, fields, None, replace=False)
        return JSONResponse(render(table, standin._create(table, fields)))
    records = body["records"]
    if not isinstance(records, list) or not records:
        raise AirtableError(422, "INVALID_RECORDS", "records must be a non-empty array")
    entry["records"] = len(records)
    if len(records) > MAX_RECORDS_PER_WRITE:
        raise AirtableError(
            422, "INVALID_RECORDS", f"You can write at most {MAX_RECORDS_PER_WRITE} records per request"
        )
    if method == "POST":
        fields_list = [
            validated(standin, table, r.get("fields") if isinstance(r, dict) else None, typecast)
            for r in records
        ]
        for fields in fields_list:
            restrictions.check_cells(standin, table, fields, None, replace=False)
        return JSONResponse({"records": [render(table, standin._create(table, f)) for f in fields_list]})
    return JSONResponse(
        standin._write(table, records, body.get("performUpsert"), typecast, replace=method == "PUT")
    )


def get(table: Table, record_id: str) -> dict[str, Any]:
    if record_id not in table.records:
        raise AirtableError(404, "NOT_FOUND", "Could not find what you are looking for")
    return table.records[record_id]


def render(
    table: Table, record: dict[str, Any], by_id: bool = False, only: list[str] | None = None
) -> dict[str, Any]:
    """A record as the API answers it; `only`: the `fields` asked for ("List records": "Only
    data for fields whose names or IDs are in this list will be included")."""
    fields = {}
    for f in table.fields:
        if only is not None and f.name not in only and f.id not in only:
            continue
        value = record["fields"].get(f.id)
        if not is_empty(value):
            fields[f.id if by_id else f.name] = copy.deepcopy(value)
    return {"id": record["id"], "createdTime": record["createdTime"], "fields": fields}


def create(standin: AirtableStandIn, table: Table, fields: dict[str, Any]) -> dict[str, Any]:
    record = {
        "id": new_id("rec"),
        "fields": linked(standin, table, fields),
        "createdTime": _now_iso(),
        "modified": {},  # field id -> when a write last changed it (LAST_MODIFIED_TIME)
    }
    table.records[record["id"]] = record
    standin.hub.record_changed(table, record["id"], None, record["fields"])
    return record


def update(
    standin: AirtableStandIn,
    table: Table,
    record_id: str,
    fields: dict[str, Any],
    replace: bool,
    single: bool = False,
) -> dict[str, Any]:
    if record_id not in table.records:
        if single:
            raise AirtableError(404, "NOT_FOUND", "Could not find what you are looking for")
        raise AirtableError(422, "ROW_DOES_NOT_EXIST", f"Record ID {record_id} does not exist in this table")
    record = table.records[record_id]
    before = record["fields"]
    fields = linked(standin, table, fields)
    record["fields"] = dict(fields) if replace else {**record["fields"], **fields}
    now = _now_iso()
    for field_id in {*before, *record["fields"]}:
        if before.get(field_id) != record["fields"].get(field_id):
            record["modified"][field_id] = now
    standin.hub.record_changed(table, record_id, before, record["fields"])
    return record


def linked(standin: AirtableStandIn, table: Table, fields: dict[str, Any]) -> dict[str, Any]:
    """Typecast links, once the whole request is known to be valid: a text that names no
    record is matched to the linked table's primary field, or becomes a new record there."""
    out = dict(fields)
    for f in table.fields:
        value = out.get(f.id)
        if f.type != "multipleRecordLinks" or not isinstance(value, list):
            continue
        target = next(t for t in standin.tables if t.id == f.options["linkedTableId"])
        primary = target.fields[0].id
        ids = []
        for item in value:
            if isinstance(item, ByPrimary):
                match = next(
                    (r for r in target.records.values() if r["fields"].get(primary) == item.text), None
                )
                item = match["id"] if match else standin._create(target, {primary: item.text})["id"]
            ids.append(item)
        out[f.id] = list(dict.fromkeys(ids))
    return out


def delete(standin: AirtableStandIn, table: Table, ids: list[str], single: bool) -> dict[str, Any]:
    if len(ids) > MAX_RECORDS_PER_WRITE:
        raise AirtableError(
            422, "INVALID_RECORDS", f"You can delete at most {MAX_RECORDS_PER_WRITE} records per request"
        )
    for record_id in ids:
        if single:
            get(table, record_id)
        elif record_id not in table.records:
            raise AirtableError(
                422, "ROW_DOES_NOT_EXIST", f"Record ID {record_id} does not exist in this table"
            )
    for record_id in ids:
        standin.hub.record_changed(table, record_id, table.records.pop(record_id)["fields"], None)
    _unlink(standin, table, set(ids))
    deleted = [{"id": i, "deleted": True} for i in ids]
    return deleted[0] if single else {"records": deleted}


def _unlink(standin: AirtableStandIn, table: Table, gone: set[str]) -> None:
    """A deleted record leaves every link cell that named it, in every table ("Linked record
    fields": a link is to a record; deleting it removes it from the cells linking to it, as
    integrators describe Airtable's behaviour). Not sent to webhooks: what Airtable sends for
    those cells is not documented."""
    for other in standin.tables:
        links = [
            f
            for f in other.fields
            if f.type == "multipleRecordLinks" and f.options["linkedTableId"] == table.id
        ]
        for record in other.records.values():
            for f in links:
                cell = record["fields"].get(f.id)
                if isinstance(cell, list) and gone & set(cell):
                    record["fields"][f.id] = [linked for linked in cell if linked not in gone]


def write(
    standin: AirtableStandIn, table: Table, records: list[Any], upsert: Any, typecast: bool, replace: bool
) -> dict[str, Any]:
    """PATCH/PUT of up to ten records, with or without performUpsert: checked whole, then applied."""
    merge_on = _fields_to_merge_on(table, upsert) if upsert is not None else []
    plan: list[tuple[str | None, dict[str, Any]]] = []
    seen_keys: set[tuple[Any, ...]] = set()
    for item in records:
        if not isinstance(item, dict):
            raise AirtableError(422, "INVALID_RECORDS", "Each record must be an object")
        fields = validated(standin, table, item.get("fields"), typecast)
        record_id = item.get("id")
        if record_id is not None:
            if not isinstance(record_id, str) or record_id not in table.records:
                raise AirtableError(
                    422, "ROW_DOES_NOT_EXIST", f"Record ID {record_id} does not exist in this table"
                )
            plan.append((record_id, fields))
            continue
        if not merge_on:
            raise AirtableError(422, "INVALID_RECORDS", "Each record to update needs an id")
        if any(is_empty(fields.get(f.id)) for f in merge_on):
            raise AirtableError(
                422,
                "INVALID_VALUE_FOR_COLUMN",
                "Each record needs a value for every field of fieldsToMergeOn",
            )
        key = tuple(repr(fields[f.id]) for f in merge_on)
        if key in seen_keys:
            raise AirtableError(
                422, "INVALID_RECORDS", "Two records of the request have the same fieldsToMergeOn values"
            )
        seen_keys.add(key)
        matches = [
            r["id"]
            for r in table.records.values()
            if tuple(repr(r["fields"].get(f.id)) for f in merge_on) == key
        ]
        if len(matches) > 1:
            raise AirtableError(
                422,
                "INVALID_VALUE_FOR_COLUMN",
                f"{len(matches)} records match the fieldsToMergeOn values of one record",
            )
        plan.append((matches[0] if matches else None, fields))
    for record_id, fields in plan:
        restrictions.check_cells(standin, table, fields, record_id, replace)
    out: dict[str, Any] = {"records": []}
    if merge_on:
        out["createdRecords"], out["updatedRecords"] = [], []
    for record_id, fields in plan:
        if record_id is None:
            record = standin._create(table, fields)
            out["createdRecords"].append(record["id"])
        else:
            record = update(standin, table, record_id, fields, replace)
            if merge_on:
                out["updatedRecords"].append(record_id)
        out["records"].append(render(table, record))
    return out


def _fields_to_merge_on(table: Table, upsert: Any) -> list[Field]:
    """ "An array with at least one and at most three field names or IDs … These cannot be
    computed fields (formulas, lookups, rollups), and must be one of the following types: number,
    text, long text, single select, multiple select, date" ("Update multiple records"). The
    refusals' type is undocumented (`INVALID_REQUEST_UNKNOWN`)."""

    def refuse(why: str) -> AirtableError:
        return AirtableError(
            422, "INVALID_REQUEST_UNKNOWN", f"Invalid request: performUpsert.fieldsToMergeOn {why}"
        )

    keys = upsert.get("fieldsToMergeOn") if isinstance(upsert, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise refuse("must be an array of field names or IDs")
    if not 1 <= len(keys) <= MAX_FIELDS_TO_MERGE_ON:
        raise refuse(f"must name at least one and at most {MAX_FIELDS_TO_MERGE_ON} fields, not {len(keys)}")
    merge_on = [table.field(k) for k in keys]
    for f in merge_on:
        if f.type in COMPUTED_TYPES:
            raise refuse(f'cannot name the computed field "{f.name}" ({f.type})')
        if f.type not in MERGEABLE_TYPES:
            raise refuse(
                f'cannot name "{f.name}": a {f.type} field; only number, text, long text, single '
                "select, multiple select and date fields"
            )
    if len({f.id for f in merge_on}) < len(merge_on):  # undocumented: the stricter choice
        raise refuse("names a field twice")
    return merge_on
