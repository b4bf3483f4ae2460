"""The native webhook as Airtable documents it, against the stand-in and a real scratch base
(`pytest -m live`): a webhook made without a notification URL (no public address needed) and its
payloads read by hand. These are the shapes the payload reader relies on."""

from __future__ import annotations

import time
from typing import Any

from service.airtable.webhooks import specification
from tests.contract import AirtableTarget


def _spec(target: AirtableTarget, watched: list[str]) -> dict[str, Any]:
    """The specification `contact-sync airtable webhook create` registers."""
    return specification(target.companies.id, watched)


def _until(target: AirtableTarget, hook_id: str, cursor: int, kind: str, ids: set[str]) -> tuple[dict, int]:
    """Payloads from `cursor` until every record of `ids` is among their `kind` records
    (changedRecordsById or createdRecordsById): Airtable makes them shortly after a change, and
    may split one action into several. Returns those records, merged in order, and the cursor."""
    found: dict[str, Any] = {}
    deadline = time.monotonic() + 90
    while not ids <= set(found):
        page = target.request("GET", f"webhooks/{hook_id}/payloads", params={"cursor": cursor})
        for payload in page["payloads"]:
            found.update(payload.get("changedTablesById", {}).get(target.companies.id, {}).get(kind, {}))
        cursor = page["cursor"]
        if not ids <= set(found) and not page["mightHaveMore"]:
            assert time.monotonic() < deadline, f"no {kind} payload came for {sorted(ids - set(found))}"
            time.sleep(1)
    return found, cursor


def test_a_webhook_without_a_url_gives_the_documented_payloads(target: AirtableTarget) -> None:
    cin, refresh = (target.field_id(target.companies.name, n) for n in ("CIN", "Refresh Contacts"))
    created = target.request("POST", "webhooks", json={"specification": _spec(target, [cin, refresh])})
    hook_id = created["id"]
    assert created["macSecretBase64"] and created["expirationTime"]  # "Create a webhook"
    listed = {h["id"]: h for h in target.request("GET", "webhooks")["webhooks"]}[hook_id]
    assert listed["isHookEnabled"] and listed["notificationUrl"] is None
    cursor = listed["cursorForNextPayload"]

    # A company created with its CIN filled: createdRecordsById.
    filled = target.companies.create({"Company Name": "Filled", "CIN": "U72200KA2015PTC081234"})
    records, cursor = _until(target, hook_id, cursor, "createdRecordsById", {filled["id"]})
    assert records[filled["id"]]["cellValuesByFieldId"][cin] == "U72200KA2015PTC081234"

    # A CIN typed into a company: the new value in current, no previous (not asked for).
    company = target.companies.create({"Company Name": "Typed"})
    target.companies.update(company["id"], {"CIN": "U51909MH2018PTC309876"})
    records, cursor = _until(target, hook_id, cursor, "changedRecordsById", {company["id"]})
    changed = records[company["id"]]
    assert changed["current"]["cellValuesByFieldId"] == {cin: "U51909MH2018PTC309876"}
    assert "previous" not in changed

    # Refresh Contacts ticked: the tick in current, the CIN in unchanged (it is included).
    target.companies.update(company["id"], {"Refresh Contacts": True})
    records, cursor = _until(target, hook_id, cursor, "changedRecordsById", {company["id"]})
    changed = records[company["id"]]
    assert changed["current"]["cellValuesByFieldId"] == {refresh: True}
    assert changed["unchanged"]["cellValuesByFieldId"][cin] == "U51909MH2018PTC309876"

    # A CIN cleared: null in current (the reader takes it for "nothing to fetch").
    target.companies.update(filled["id"], {"CIN": ""})
    records, cursor = _until(target, hook_id, cursor, "changedRecordsById", {filled["id"]})
    current = records[filled["id"]]["current"]["cellValuesByFieldId"]
    assert cin in current and current[cin] is None

    # A paste into many rows: one action; every record is in the payloads.
    rows = target.companies.batch_create([{"Company Name": f"P{i}"} for i in range(3)])
    target.companies.batch_update([{"id": r["id"], "fields": {"CIN": "U01100DL2020PTC365432"}} for r in rows])
    records, cursor = _until(target, hook_id, cursor, "changedRecordsById", {r["id"] for r in rows})
    assert all(
        records[r["id"]]["current"]["cellValuesByFieldId"][cin] == "U01100DL2020PTC365432" for r in rows
    )

    refreshed = target.request("POST", f"webhooks/{hook_id}/refresh")
    assert refreshed["expirationTime"] >= created["expirationTime"]
    target.request("DELETE", f"webhooks/{hook_id}")
    assert hook_id not in {h["id"] for h in target.request("GET", "webhooks")["webhooks"]}


def test_a_webhook_watches_only_its_table(target: AirtableTarget) -> None:
    cin = target.field_id(target.companies.name, "CIN")
    hook_id = target.request("POST", "webhooks", json={"specification": _spec(target, [cin])})["id"]
    cursor = {h["id"]: h for h in target.request("GET", "webhooks")["webhooks"]}[hook_id][
        "cursorForNextPayload"
    ]
    target.contacts.create({"Name": "Not a company"})
    time.sleep(2 if target.standin is None else 0)
    page = target.request("GET", f"webhooks/{hook_id}/payloads", params={"cursor": cursor})
    assert page["payloads"] == []
