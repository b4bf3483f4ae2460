"""The Airtable stand-in's refusals that a person sets rather than the request: the editing
permissions a base's owner gives a table or a field in Airtable's interface, and a field reported
unknown for a moment.

* Editing permissions ("Errors", https://airtable.com/developers/web/api/errors#anchor-403, which
  sends the reader to "Using field and table editing permissions",
  https://support.airtable.com/docs/using-field-and-table-editing-permissions): 403
  `INVALID_PERMISSIONS` with "You are not permitted to create records in table TABLE_NAME
  (TABLE_ID)" ("returned both when creating records directly, and when creating linked records
  while updating cell values"), "You are not permitted to write cell values in field FIELD_NAME
  (FIELD_ID)", or "You are not permitted to perform this operation" ("You don't have the right
  permission for the action").
  - A locked table (`AirtableStandIn.lock_table`) refuses the API every write: creating records
    (the first message; also a typecast link that would create a record in it), and updating,
    upserting or deleting them (the third: which message Airtable gives for those is
    undocumented, the generic one is kept).
  - A locked field (`lock_field`) refuses a write that sets it (the second message), and a PUT
    that would clear it (undocumented; the stricter reading: a PUT "will perform a destructive
    update and clear all unincluded cell values", "Update multiple records", which writes it).
  - Reads go on. The person in the UI (`/_standin/…`, `add_record`, `edit`) is the owner who set
    the permissions and is not refused.
* A field reported unknown (`flap_unknown_field`): the next N write requests that name the field
  (in `fields` or `fieldsToMergeOn`) are refused with 422 `UNKNOWN_FIELD_NAME`, `Unknown field
  name: "X"` (the format of Airtable's answer for a field the table lacks), while the schema
  still lists the field. This reproduces a reported transient, NOT a documented behaviour: for
  tests of a caller that must re-read the schema and retry rather than fail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .airtable_errors import AirtableError
from .airtable_values import ByPrimary, is_empty

if TYPE_CHECKING:
    from .airtable import AirtableStandIn
    from .airtable_schema import Field, Table


def _refuse(message: str) -> AirtableError:
    return AirtableError(403, "INVALID_PERMISSIONS", message)


def _cannot_create(table: Table) -> AirtableError:
    return _refuse(f"You are not permitted to create records in table {table.name} ({table.id})")


def check_table(standin: AirtableStandIn, table: Table, method: str) -> None:
    """A write to a table its owner locked: refused before anything is read of the request."""
    if table.id not in standin.locked_tables:
        return
    if method == "POST":
        raise _cannot_create(table)
    raise _refuse("You are not permitted to perform this operation")


def check_cells(
    standin: AirtableStandIn, table: Table, fields: dict[str, Any], record_id: str | None, replace: bool
) -> None:
    """One record's checked values (by field id) against locked fields and tables; `record_id`
    None when the record is to be created."""
    for f in table.fields:
        if f.id not in standin.locked_fields:
            continue
        clears = replace and record_id is not None and f.id not in fields
        if f.id in fields or (clears and not is_empty(table.records[record_id]["fields"].get(f.id))):
            raise _refuse(f"You are not permitted to write cell values in field {f.name} ({f.id})")
    for f in table.fields:
        value = fields.get(f.id)
        if f.type == "multipleRecordLinks" and isinstance(value, list):
            _check_new_links(standin, f, value)


def _check_new_links(standin: AirtableStandIn, f: Field, value: list[Any]) -> None:
    """A typecast link naming no record creates one in the linked table: refused if it is locked."""
    target = next(t for t in standin.tables if t.id == f.options["linkedTableId"])
    if target.id not in standin.locked_tables:
        return
    primary = target.fields[0].id
    for item in value:
        if isinstance(item, ByPrimary) and not any(
            r["fields"].get(primary) == item.text for r in target.records.values()
        ):
            raise _cannot_create(target)


def check_unknown_for_a_while(standin: AirtableStandIn, table: Table, body: dict[str, Any]) -> None:
    """A write naming a field `flap_unknown_field` made unknown for its next writes (a reported
    transient, not a documented behaviour): one of them used up, 422 `UNKNOWN_FIELD_NAME`."""
    if not standin.unknown_for_a_while:
        return
    for key in _named_fields(body):
        f = next((f for f in table.fields if key in (f.name, f.id)), None)
        if f is not None and standin.unknown_for_a_while.get(f.id, 0) > 0:
            standin.unknown_for_a_while[f.id] -= 1
            if not standin.unknown_for_a_while[f.id]:
                del standin.unknown_for_a_while[f.id]
            raise AirtableError(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{key}"')


def _named_fields(body: dict[str, Any]) -> list[str]:
    """The field names or ids a write's body names: its records' `fields` and `fieldsToMergeOn`."""
    names: list[str] = []
    records = body.get("records")
    for item in [body, *(records if isinstance(records, list) else [])]:
        fields = item.get("fields") if isinstance(item, dict) else None
        if isinstance(fields, dict):
            names.extend(k for k in fields if isinstance(k, str))
    upsert = body.get("performUpsert")
    keys = upsert.get("fieldsToMergeOn") if isinstance(upsert, dict) else None
    if isinstance(keys, list):
        names.extend(k for k in keys if isinstance(k, str))
    return names
