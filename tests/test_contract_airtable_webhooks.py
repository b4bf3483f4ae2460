"""The native webhook as Airtable documents it, against the stand-in and a real scratch base
(`pytest -m live`): a webhook made without a notification URL (no public address needed) and its
payloads read by hand. These are the shapes the payload reader relies on."""

from __future__ import annotations

import time
from typing import Any

from service.airtable_webhooks import specification
from tests.contract import CONTACTS, AirtableTarget


def _spec(target: AirtableTarget, watched: list[str]) -> dict[str, Any]:
    """The specification `contact-sync airtable webhook create` registers."""
    return specification(target.companies.id, watched)


def _wait_for(target: AirtableTarget, hook_id: str, cursor: int, count: int) -> tuple[list[dict], int]:
    """Payloads from `cursor` until `count` have come (Airtable makes them shortly after a change)."""
    found: list[dict] = []
    deadline = time.monotonic() + 90
    while len(found) < count:
        page = target.request("GET", f"webhooks/{hook_id}/payloads", params={"cursor": cursor})
        found += page["payloads"]
        cursor = page["cursor"]
        if len(found) < count and not page["mightHaveMore"]:
            assert time.monotonic() < deadline, f"only {len(found)} of {count} payloads came"
            time.sleep(1)
    return found, cursor


def _records(payloads: list[dict], table_id: str, kind: str) -> dict[str, Any]:
    """The changed (or created) records of the payloads, merged in order."""
    out: dict[str, Any] = {}
    for payload in payloads:
        out.update(payload.get("changedTablesById", {}).get(table_id, {}).get(kind, {}))
    return out


def test_a_webhook_without_a_url_gives_the_documented_payloads(target: AirtableTarget) -> None:
    cin, refresh = (target.field_id(target.companies.name, n) for n in ("CIN", "Refresh Contacts"))
    created = target.request("POST", "webhooks", json={"specification": _spec(target, [cin, refresh])})
    hook_id = created["id"]
    assert created["macSecretBase64"] and created["expirationTime"]  # "Create a webhook"
    listed = {h["id"]: h for h in target.request("GET", "webhooks")["webhooks"]}[hook_id]
    assert listed["isHookEnabled"] and listed["notificationUrl"] is None
    cursor = listed["cursorForNextPayload"]

    # A company created with its CIN filled: createdRecordsById.
    filled = target.create(target.companies, {"Company Name": "Filled", "CIN": "U72200KA2015PTC081234"})
    payloads, cursor = _wait_for(target, hook_id, cursor, 1)
    (cells,) = [
        r["cellValuesByFieldId"]
        for r in _records(payloads, target.companies.id, "createdRecordsById").values()
    ]
    assert cells[cin] == "U72200KA2015PTC081234"

    # A CIN typed into a company: the new value in current, no previous (not asked for).
    company = target.create(target.companies, {"Company Name": "Typed"})
    target.companies.update(company["id"], {"CIN": "U51909MH2018PTC309876"})
    payloads, cursor = _wait_for(target, hook_id, cursor, 1)
    changed = _records(payloads, target.companies.id, "changedRecordsById")[company["id"]]
    assert changed["current"]["cellValuesByFieldId"] == {cin: "U51909MH2018PTC309876"}
    assert "previous" not in changed

    # Refresh Contacts ticked: the tick in current, the CIN in unchanged (it is included).
    target.companies.update(company["id"], {"Refresh Contacts": True})
    payloads, cursor = _wait_for(target, hook_id, cursor, 1)
    changed = _records(payloads, target.companies.id, "changedRecordsById")[company["id"]]
    assert changed["current"]["cellValuesByFieldId"] == {refresh: True}
    assert changed["unchanged"]["cellValuesByFieldId"][cin] == "U51909MH2018PTC309876"

    # A CIN cleared: null in current. A change to a field not watched: no payload at all.
    target.companies.update(filled["id"], {"CIN": ""})
    target.companies.update(filled["id"], {"Notes": "called them"})
    payloads, cursor = _wait_for(target, hook_id, cursor, 1)
    changed = _records(payloads, target.companies.id, "changedRecordsById")[filled["id"]]
    assert (
        cin in changed["current"]["cellValuesByFieldId"]
        and changed["current"]["cellValuesByFieldId"][cin] is None
    )
    time.sleep(2 if target.standin is None else 0)
    rest = target.request("GET", f"webhooks/{hook_id}/payloads", params={"cursor": cursor})
    assert rest["payloads"] == [] and rest["cursor"] == cursor and rest["mightHaveMore"] is False

    # A paste into many rows: one action; every record is in the payloads.
    rows = target.remember(
        target.companies, target.companies.batch_create([{"Company Name": f"P{i}"} for i in range(3)])
    )
    target.companies.batch_update([{"id": r["id"], "fields": {"CIN": "U01100DL2020PTC365432"}} for r in rows])
    payloads, cursor = _wait_for(target, hook_id, cursor, 1)
    assert set(_records(payloads, target.companies.id, "changedRecordsById")) == {r["id"] for r in rows}

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
    target.create(target.contacts, {"Name": "Not a company"})
    assert target.schema().table(CONTACTS).id != target.companies.id
    time.sleep(2 if target.standin is None else 0)
    page = target.request("GET", f"webhooks/{hook_id}/payloads", params={"cursor": cursor})
    assert page["payloads"] == []
