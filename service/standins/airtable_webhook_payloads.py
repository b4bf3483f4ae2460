"""What a payload of the Airtable stand-in's webhooks holds for the record changes of one action.

* Payloads (https://airtable.com/developers/web/api/model/webhooks-payload,
  …/model/webhooks-table-changed, …/model/webhooks-changed-record): "By default, the payloads
  only contain the data that changed": a changed record's `current` holds its changed cells (a
  cleared one as null); "Previous and unchanged values are only a part of the payload if the
  specification contains them in the includes object" (`includePreviousCellValues`,
  `includeCellValuesInFieldIds`). Cells are in the V2 format (a single select is
  `{id, name, color}`).
* Only changes the specification asks for: `recordChangeScope`, `watchDataInFieldIds`,
  `changeTypes`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .airtable_schema import Field, Table
    from .airtable_webhooks import Webhook

# One record's change within an action: its fields before (None: created) and after (None: destroyed).
Change = tuple[dict[str, Any] | None, dict[str, Any] | None]


def iso(at: datetime) -> str:
    """A time as the webhooks API writes it: UTC, milliseconds ("2022-08-29T07:00:00.000Z")."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def table_changes(
    hook: Webhook, table: Table, records: dict[str, Change], now: Callable[[], datetime]
) -> dict[str, Any]:
    """One table's part of a payload (`changedTablesById`): empty when the hook asked for none of it."""
    by_id = {f.id: f for f in table.fields}
    watched = set(hook.watched or by_id)
    change_types = hook.options["filters"].get("changeTypes")
    includes = hook.options.get("includes") or {}
    included = hook.included(table)
    out: dict[str, Any] = {}
    for record_id, (before, after) in records.items():
        if before is None and after is None:
            continue
        if after is None:  # destroyed
            if change_types is None or "remove" in change_types:
                out.setdefault("destroyedRecordIds", []).append(record_id)
            continue
        old = before or {}
        changed = [f for f in by_id if not _same(old.get(f), after.get(f))]
        if not watched & set(changed):
            continue
        if before is None:
            if change_types is None or "add" in change_types:
                out.setdefault("createdRecordsById", {})[record_id] = {
                    "createdTime": iso(now()),
                    "cellValuesByFieldId": {
                        f: _v2(by_id[f], after[f]) for f in by_id if not _empty(after.get(f))
                    },
                }
            continue
        if change_types is not None and "update" not in change_types:
            continue
        entry: dict[str, Any] = {
            "current": {"cellValuesByFieldId": {f: _v2(by_id[f], after.get(f)) for f in changed}}
        }
        if includes.get("includePreviousCellValues"):
            entry["previous"] = {"cellValuesByFieldId": {f: _v2(by_id[f], old.get(f)) for f in changed}}
        if included:
            entry["unchanged"] = {
                "cellValuesByFieldId": {
                    f: _v2(by_id[f], after[f])
                    for f in sorted(included - set(changed))
                    if f in by_id and not _empty(after.get(f))
                }
            }
        out.setdefault("changedRecordsById", {})[record_id] = entry
    return out


def _empty(value: Any) -> bool:
    return value is None or value == "" or value is False or value == []


def _same(a: Any, b: Any) -> bool:
    return a == b or (_empty(a) and _empty(b))


def _v2(f: Field, value: Any) -> Any:
    """A cell in the webhooks' V2 format (https://airtable.com/developers/web/api/field-model:
    "Webhooks have different cell payloads for some cell types (eg: single select)")."""
    if _empty(value):
        return None
    if f.type == "singleSelect":
        choice = next((c for c in f.options.get("choices", []) if c["name"] == value), None)
        return {"id": choice["id"] if choice else None, "name": value, "color": "blueLight2"}
    if f.type == "multipleRecordLinks":
        return [{"id": record_id} for record_id in value]
    return value
