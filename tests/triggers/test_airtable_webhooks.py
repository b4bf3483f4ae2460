"""Native Airtable webhooks: creation, the MAC check, the payload reader over the documented
payload shapes, and the webhook's upkeep (refresh, pings turned on again, recreated when Airtable
disabled it), with a CIN typed in Airtable or a company created with one ending as contacts.

Payloads in the unit tests are written here by hand from Airtable's documentation
(https://airtable.com/developers/web/api/model/webhooks-table-changed,
…/model/webhooks-changed-record): `current` holds the changed cells (a cleared one as null),
`unchanged` the included cells that did not change, and `previous` only when the specification
asks for it, which ours does not.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from service import identifiers
from service.airtable import webhooks as airtable_webhooks
from service.airtable.client import Airtable
from service.airtable.errors import AirtableError
from service.engine import jobs
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from service.triggers import reconcile
from service.triggers.payloads import PayloadReader, errors_in, syncs_for
from tests.command_line import contact_sync
from tests.conftest import Running
from tests.flow import Flow, settings_for

NILGIRI = "U72200KA2015PTC081234"
KONKAN = "U51909MH2018PTC309876"
HOOK = {
    "table_id": "tblCompanies00001",
    "cin_field_id": "fldCIN00000000001",
    "refresh_field_id": "fldRefresh0000001",
}
CIN, TICK = HOOK["cin_field_id"], HOOK["refresh_field_id"]


def signed(secret: str, body: bytes) -> str:
    return "hmac-sha256=" + hmac.new(base64.b64decode(secret), body, hashlib.sha256).hexdigest()


def changed(records: dict[str, dict[str, Any]], unchanged: dict[str, dict[str, Any]] | None = None) -> dict:
    """A payload of changed records: record id → the cells that changed (current values)."""
    return {
        "timestamp": "2026-11-30T10:00:00.000Z",
        "baseTransactionNumber": 7,
        "actionMetadata": {"source": "client", "sourceMetadata": {}},
        "payloadFormat": "v0",
        "changedTablesById": {
            HOOK["table_id"]: {
                "changedRecordsById": {
                    record_id: {"current": {"cellValuesByFieldId": cells}}
                    | (
                        {"unchanged": {"cellValuesByFieldId": (unchanged or {}).get(record_id, {})}}
                        if unchanged is not None
                        else {}
                    )
                    for record_id, cells in records.items()
                }
            }
        },
    }


def created(records: dict[str, dict[str, Any]]) -> dict:
    return {
        "timestamp": "2026-11-30T10:00:00.000Z",
        "baseTransactionNumber": 8,
        "actionMetadata": {"source": "publicApi", "sourceMetadata": {}},
        "payloadFormat": "v0",
        "changedTablesById": {
            HOOK["table_id"]: {
                "createdRecordsById": {
                    record_id: {"createdTime": "2026-11-30T10:00:00.000Z", "cellValuesByFieldId": cells}
                    for record_id, cells in records.items()
                }
            }
        },
    }


def test_verify() -> None:
    secret = base64.b64encode(b"k" * 32).decode()
    body = b'{"base": {"id": "app1"}, "webhook": {"id": "ach1"}}'
    assert airtable_webhooks.verify([secret], body, signed(secret, body))
    assert airtable_webhooks.verify(["bm90LXRoaXMtb25l", secret], body, signed(secret, body))  # rotation
    assert not airtable_webhooks.verify([secret], body + b" ", signed(secret, body))
    assert not airtable_webhooks.verify([secret], body, None)
    assert not airtable_webhooks.verify([secret], body, "sha1=abc")
    assert not airtable_webhooks.verify(["%%%not base64%%%"], body, signed(secret, body))


# --- reading payloads in the documented shapes ---


def test_a_cin_in_current_is_a_cin_set_without_previous_values() -> None:
    assert syncs_for([changed({"recA": {CIN: NILGIRI.lower()}})], HOOK) == [("recA", NILGIRI, False)]
    # Changed to another CIN: the same shape, the new value.
    assert syncs_for([changed({"recA": {CIN: KONKAN}}, {"recA": {TICK: True}})], HOOK) == [
        ("recA", KONKAN, False)
    ]


def test_a_tick_takes_the_cin_from_unchanged() -> None:
    page = [changed({"recA": {TICK: True}}, {"recA": {CIN: NILGIRI}})]
    assert syncs_for(page, HOOK) == [("recA", NILGIRI, True)]
    # Ticked on a company without a CIN: the worker reads the record and says why it fails.
    assert syncs_for([changed({"recA": {TICK: True}}, {"recA": {}})], HOOK) == [("recA", None, True)]


def test_a_cleared_cin_and_the_services_own_untick_queue_nothing() -> None:
    assert syncs_for([changed({"recA": {CIN: None}}, {"recA": {}})], HOOK) == []
    assert syncs_for([changed({"recA": {TICK: None}}, {"recA": {CIN: NILGIRI}})], HOOK) == []
    assert syncs_for([changed({"recA": {TICK: False}}, {"recA": {CIN: NILGIRI}})], HOOK) == []
    # Set, then cleared a moment later in the same page: the company has no CIN now.
    assert syncs_for([changed({"recA": {CIN: NILGIRI}}), changed({"recA": {CIN: None}})], HOOK) == []
    # A tick, then the service's untick: the tick still counts.
    page = [changed({"recA": {TICK: True}}, {"recA": {CIN: NILGIRI}}), changed({"recA": {TICK: None}}, {})]
    assert syncs_for(page, HOOK) == [("recA", NILGIRI, True)]


def test_a_cin_pasted_into_many_rows_is_one_payload_and_many_syncs() -> None:
    rows = {f"rec{i:014d}": {CIN: NILGIRI} for i in range(40)}
    assert syncs_for([changed(rows)], HOOK) == [(record_id, NILGIRI, False) for record_id in rows]


def test_companies_created_with_a_cin() -> None:
    page = [
        created(
            {"recA": {CIN: NILGIRI, "fldName0000000001": "Nilgiri"}, "recB": {"fldName0000000001": "Empty"}}
        )
    ]
    assert syncs_for(page, HOOK) == [("recA", NILGIRI, False)]


def test_what_is_not_a_valid_cin_is_left_to_the_worker_and_lists_take_their_first_text() -> None:
    assert syncs_for([changed({"recA": {CIN: "not a cin"}})], HOOK) == [("recA", None, False)]
    assert syncs_for([changed({"recA": {CIN: ["", NILGIRI]}})], HOOK) == [
        ("recA", NILGIRI, False)
    ]  # a lookup


def test_error_payloads_are_found_and_queue_nothing() -> None:
    error = {
        "timestamp": "2026-11-30T10:00:00.000Z",
        "baseTransactionNumber": 9,
        "actionMetadata": {"source": "client", "sourceMetadata": {}},
        "payloadFormat": "v0",
        "error": True,
        "code": "INVALID_FILTERS",
    }
    assert syncs_for([error], HOOK) == [] and errors_in([error]) == ["INVALID_FILTERS"]


_cell = st.one_of(
    st.none(),
    st.just(NILGIRI),
    st.just("u72200ka2015ptc081234 "),
    st.text(max_size=8),
    st.booleans(),
    st.integers(),
    st.lists(st.one_of(st.none(), st.text(max_size=5), st.just(KONKAN)), max_size=3),
)
_cells = st.dictionaries(st.sampled_from([CIN, TICK, "fldOther000000001"]), _cell, max_size=3)
_records = st.dictionaries(st.sampled_from(["recA", "recB", "recC"]), _cells, min_size=1, max_size=3)
_payload = st.one_of(
    st.builds(changed, _records),
    st.builds(changed, _records, st.dictionaries(st.sampled_from(["recA", "recB", "recC"]), _cells)),
    st.builds(created, _records),
    st.dictionaries(st.text(max_size=5), st.one_of(st.none(), st.integers(), st.text(max_size=5))),
    st.just({"error": True, "code": "INVALID_HOOK"}),
)


def _touches(page: list[dict], record_id: str) -> list[tuple[dict, bool]]:
    """(cells, whether a clear counts) for each time the page changed one record, in order: a
    changed record's `current` cells, or a created record's cells."""
    out = []
    for payload in page:
        table = payload.get("changedTablesById")
        table = table.get(HOOK["table_id"]) if isinstance(table, dict) else None
        for kind, part in (("createdRecordsById", None), ("changedRecordsById", "current")):
            entry = (table or {}).get(kind, {}).get(record_id)
            if entry is not None:
                out.append(((entry[part] if part else entry)["cellValuesByFieldId"], part is not None))
    return out


def _has_text(value: object) -> bool:
    """Whether a cell holds something written (identifiers.plain, tested on its own, reads it)."""
    values = value if isinstance(value, list) else [value]
    return any(not isinstance(v, list) and identifiers.plain(v) is not None for v in values)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_payload, max_size=6))
def test_any_page_of_payloads_is_read_without_error_and_queues_exactly_what_changed(page: list[dict]) -> None:
    """A company is queued exactly when, since its CIN was last cleared, a CIN was typed (or
    came with it) or Refresh Contacts was ticked; forced exactly when ticked."""
    syncs = {record_id: (cin, force) for record_id, cin, force in syncs_for(page, HOOK)}
    assert len(syncs) == len(syncs_for(page, HOOK))  # one sync a company
    for record_id in ("recA", "recB", "recC"):
        since_cleared: list[dict] = []
        for cells, clears in _touches(page, record_id):
            cleared = clears and CIN in cells and not _has_text(cells[CIN]) and cells.get(TICK) is not True
            since_cleared = [] if cleared else [*since_cleared, cells]
        ticked = any(cells.get(TICK) is True for cells in since_cleared)
        typed = any(_has_text(cells.get(CIN)) for cells in since_cleared)
        changed_cin = any(CIN in cells for cells in since_cleared)
        if record_id in syncs:
            cin, force = syncs[record_id]
            assert cin in (None, NILGIRI, KONKAN) and force == ticked
            assert ticked or changed_cin
        else:
            assert not ticked and not typed


# --- the whole way, through the stand-in ---


def cli(flow: Flow, *args: str) -> subprocess.CompletedProcess[str]:
    return contact_sync("airtable", "webhook", *args, env={**os.environ, **flow.service_env})


def test_a_cin_typed_and_a_company_created_with_a_cin_end_as_contacts(flow: Flow) -> None:
    url = f"{flow.service.url}/webhooks/airtable/notifications"
    ping = flow.http.post("/webhooks/airtable/notifications", content=b"{}")
    assert ping.status_code == 503 and ping.json()["error"]["code"] == "not_configured"
    made = cli(flow, "create", "--url", url)
    assert made.returncode == 0, made.stderr
    (hook,) = flow.airtable.webhooks.values()
    assert hook.options["filters"]["recordChangeScope"] == flow.airtable.table("Companies").id
    assert "includePreviousCellValues" not in hook.options["includes"]

    company = flow.company("Nilgiri")  # no CIN yet: nothing to do
    # A person types the CIN in Airtable's UI (the stand-in's control endpoint):
    httpx.patch(
        f"{flow.service_env['AIRTABLE_API_URL']}/_standin/tables/Companies/records/{company}",
        json={"fields": {"CIN": NILGIRI.lower()}},
    )
    # A company arrives with its CIN filled (a form, an import):
    konkan = flow.company("Konkan Traders", KONKAN)
    flow.wait_until(lambda: len(flow.contacts()) == 4, timeout=30, what="contacts from the webhook")
    links = sorted(sorted(c["Company"]) for c in flow.contacts())
    assert links == sorted(
        [[company], [company], [konkan], sorted([company, konkan])]
    )  # one sits on both boards
    # What Airtable sent carried no previous values: the reader did not need them.
    assert all("previous" not in json.dumps(p) for p in hook.payloads)

    def succeeded() -> list[dict]:
        return flow.http.get("/jobs?status=succeeded", headers={"X-API-Key": "api-key-for-tests"}).json()[
            "jobs"
        ]

    flow.wait_until(lambda: len(succeeded()) == 2, what="both jobs to end")
    assert sorted(j["cin"] for j in succeeded()) == sorted([NILGIRI, KONKAN])
    flow.wait_until(
        lambda: flow.company_fields(konkan).get("Contacts Sync Status") == "Synced", what="status"
    )

    status = json.loads(cli(flow, "status", "--json").stdout)
    assert status[0]["in_airtable"] and status[0]["enabled"] and status[0]["problems"] == []
    assert "refreshed" in cli(flow, "refresh").stdout
    assert "deleted" in cli(flow, "delete").stdout
    assert flow.airtable.webhooks == {}


def test_the_mac_is_checked(flow: Flow) -> None:
    cli(flow, "create", "--url", f"{flow.service.url}/webhooks/airtable/notifications")
    (hook,) = flow.airtable.webhooks.values()
    body = json.dumps(
        {
            "base": {"id": flow.airtable.base_id},
            "webhook": {"id": hook.id},
            "timestamp": "2026-11-26T10:00:00.000Z",
        }
    ).encode()
    good = {"X-Airtable-Content-MAC": signed(hook.mac_secret_base64, body)}
    wrong = {"X-Airtable-Content-MAC": signed(base64.b64encode(b"x" * 32).decode(), body)}
    path = "/webhooks/airtable/notifications"
    answered = flow.http.post(path, content=body, headers=good)
    assert answered.status_code == 204 and answered.content == b""  # as the webhooks overview asks
    assert flow.http.post(path, content=body, headers=good).status_code == 204  # a repeated ping is harmless
    for headers in (wrong, {}, {"X-Airtable-Content-MAC": "hmac-sha256=zz"}):
        refused = flow.http.post(path, content=body, headers=headers)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    bad_json = flow.http.post(
        path,
        content=b"not json",
        headers={"X-Airtable-Content-MAC": signed(hook.mac_secret_base64, b"not json")},
    )
    assert bad_json.status_code == 400


@pytest.fixture
def client(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> Airtable:
    airtable.standin.rate_limit = 10_000  # the user's limit of 50 a second still holds
    return Airtable(settings_for(airtable, attestr, AIRTABLE_RATE_LIMIT_RPS="40"), pool)


@pytest.fixture
async def reader(pool: asyncpg.Pool, client: Airtable) -> PayloadReader:
    await airtable_webhooks.create(pool, client, client.settings, "http://127.0.0.1:9/nowhere")
    return PayloadReader(pool, client)


def companies(airtable: Running[AirtableStandIn]) -> Any:
    return airtable.standin.table("Companies")


async def test_payloads_over_several_pages_with_a_crash_in_the_middle(
    pool: asyncpg.Pool,
    airtable: Running[AirtableStandIn],
    reader: PayloadReader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = [airtable.standin.add_record("Companies", {"Company Name": f"C {i}"}) for i in range(120)]
    for i, record_id in enumerate(records):  # 120 CINs typed one by one: 120 payloads, three pages
        airtable.standin.edit("Companies", {record_id: {"CIN": f"U{40000 + i:05d}KA2015PTC{i:06d}"}})
    real_enqueue, calls = jobs.enqueue, []

    async def crashing_enqueue(*args: object, **kwargs: object) -> object:
        calls.append(args[1])
        if len(calls) == 60:  # in the middle of the second page
            raise ConnectionResetError("the process died here")
        return await real_enqueue(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jobs, "enqueue", crashing_enqueue)
    with pytest.raises(ConnectionResetError):
        await reader.read_all()
    assert await pool.fetchval("SELECT cursor FROM airtable_webhooks") == 51  # the first page only
    assert await pool.fetchval("SELECT count(*) FROM jobs") == 50
    await pool.execute("UPDATE jobs SET status = 'succeeded'")  # those ran meanwhile

    monkeypatch.setattr(jobs, "enqueue", real_enqueue)
    assert await reader.read_all() == 70  # the restart reads from the stored cursor
    assert await pool.fetchval("SELECT cursor FROM airtable_webhooks") == 121
    queued = await pool.fetch("SELECT record_id, cin FROM jobs WHERE status = 'queued' ORDER BY id")
    assert [r["record_id"] for r in queued] == records[50:]  # none skipped, none repeated
    assert await reader.read_all() == 0


async def test_a_full_last_page_says_it_might_have_more_and_an_empty_one_ends_the_reading(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], reader: PayloadReader
) -> None:
    records = [airtable.standin.add_record("Companies", {"Company Name": f"C {i}"}) for i in range(50)]
    for i, record_id in enumerate(records):
        airtable.standin.edit("Companies", {record_id: {"CIN": f"U{40000 + i:05d}KA2015PTC{i:06d}"}})
    assert await reader.read_all() == 50
    pages = [r for r in airtable.standin.requests if r["path"].endswith("/payloads")]
    assert len(pages) == 2  # the full page said "might have more"; the empty one ended it
    assert await pool.fetchval("SELECT cursor FROM airtable_webhooks") == 51


async def test_ticks_cin_changes_clears_and_a_paste_through_the_stand_in(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], reader: PayloadReader
) -> None:
    record = airtable.standin.add_record("Companies", {"Company Name": "Acme", "CIN": NILGIRI})
    airtable.standin.edit("Companies", {record: {"Contacts Sync Status": "Synced"}})  # not watched
    airtable.standin.edit("Companies", {record: {"Refresh Contacts": True}})
    airtable.standin.edit("Companies", {record: {"Refresh Contacts": False}})  # the service clears it
    assert await reader.read_all() == 1  # the created record and the tick: one company
    (job,) = await jobs.list_jobs(pool, "queued")
    assert (job.record_id, job.force, job.cin) == (record, True, NILGIRI)
    await pool.execute("UPDATE jobs SET status = 'succeeded'")

    airtable.standin.edit("Companies", {record: {"CIN": ""}})  # cleared: nothing
    assert await reader.read_all() == 0
    others = [airtable.standin.add_record("Companies", {"Company Name": f"P {i}"}) for i in range(12)]
    airtable.standin.edit("Companies", {r: {"CIN": KONKAN} for r in others})  # one paste, one payload
    assert await reader.read_all() == 12
    hook = next(iter(airtable.standin.webhooks.values()))
    assert len(hook.payloads[-1]["changedTablesById"][companies(airtable).id]["changedRecordsById"]) == 12


async def test_a_webhook_close_to_expiry_is_refreshed(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], reader: PayloadReader
) -> None:
    (hook,) = airtable.standin.webhooks.values()
    hook.expires_at = datetime.now(timezone.utc) + timedelta(hours=6)  # made 6¾ days ago
    await reader.maintain()
    week = datetime.now(timezone.utc) + timedelta(days=6, hours=23)
    assert hook.expires_at > week and await pool.fetchval("SELECT expires_at FROM airtable_webhooks") > week


async def test_an_expired_webhook_is_recreated_and_works(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], reader: PayloadReader
) -> None:
    (old,) = airtable.standin.webhooks
    airtable.standin.clock_skew_s = 8 * 86400  # the service was away for more than a week
    record = airtable.standin.add_record("Companies", {"Company Name": "Acme", "CIN": NILGIRI})  # not seen
    with capture_logs() as logs:
        await reader.maintain()
    (new,) = airtable.standin.webhooks
    assert new != old and await pool.fetchval("SELECT id FROM airtable_webhooks") == new
    (line,) = [entry for entry in logs if entry["event"] == "webhook.recreated"]
    assert line["replaced"] == old and "backfill" in line["hint"]
    (alert,) = await pool.fetch("SELECT detail FROM alerts WHERE kind = 'webhook_down'")
    assert "; recreated. Changes made meanwhile were not seen" in alert["detail"]
    airtable.standin.edit("Companies", {record: {"CIN": KONKAN}})
    assert await reader.read_all() == 1


async def test_a_deleted_watched_field_disables_the_webhook_and_the_reader_recreates_it(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], reader: PayloadReader
) -> None:
    (old,) = airtable.standin.webhooks
    airtable.standin.remove_field("Companies", "Refresh Contacts")
    with capture_logs() as logs:
        await reader.read_all()
        await reader.maintain()
    events = [entry["event"] for entry in logs]
    assert "webhook.payload_error" in events and "webhook.recreated" in events
    (new,) = airtable.standin.webhooks
    assert new != old and airtable.standin.webhooks[new].watched == [companies(airtable).field("CIN").id]
    record = airtable.standin.add_record("Companies", {"Company Name": "Acme", "CIN": NILGIRI})
    assert await reader.read_all() == 1
    assert [j.record_id for j in await jobs.list_jobs(pool, "queued")] == [record]


async def test_a_webhook_that_cannot_be_recreated_says_why_and_what_to_run(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], reader: PayloadReader
) -> None:
    airtable.standin.remove_field("Companies", "CIN")
    with capture_logs() as logs:
        await reader.read_all()
        await reader.maintain()
    (failed,) = [entry for entry in logs if entry["event"] == "webhook.recreate_failed"]
    problem = await pool.fetchval("SELECT problem FROM airtable_webhooks")
    assert failed["error"] == problem
    assert await pool.fetchval("SELECT detail FROM alerts WHERE kind = 'webhook_down'") == problem
    assert 'no "CIN" field' in problem and "contact-sync airtable webhook recreate" in problem
    (hook,) = await airtable_webhooks.status(pool, reader.airtable, reader.airtable.settings)
    assert not hook["enabled"] and problem in hook["problems"]


async def test_pings_turned_off_by_airtable_are_turned_on_again(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], reader: PayloadReader
) -> None:
    airtable.standin.hub.ping_retries, airtable.standin.hub.ping_backoff_s = 1, 0.01
    (hook,) = airtable.standin.webhooks.values()
    airtable.standin.add_record("Companies", {"Company Name": "Acme", "CIN": NILGIRI})  # its ping fails twice
    deadline = datetime.now() + timedelta(seconds=10)
    while hook.notifications_enabled and datetime.now() < deadline:
        await asyncio.sleep(0.05)
    assert not hook.notifications_enabled and hook.last_result["success"] is False
    (listed,) = await airtable_webhooks.status(pool, reader.airtable, reader.airtable.settings)
    assert any("stopped pinging" in p for p in listed["problems"])
    with capture_logs() as logs:
        await reader.maintain()
    assert hook.notifications_enabled
    (line,) = [entry for entry in logs if entry["event"] == "webhook.notifications_enabled"]
    assert "could not be reached" in line["last_error"]
    assert await reader.read_all() == 1  # the change made meanwhile was read all the same


async def test_what_creating_a_webhook_needs(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], client: Airtable
) -> None:
    url = "https://sync.example.com/webhooks/airtable/notifications"
    for scope in ("webhook:manage", "data.records:read"):
        airtable.standin.scopes.discard(scope)
        with pytest.raises(AirtableError, match="403"):
            await airtable_webhooks.create(pool, client, client.settings, url)
        airtable.standin.scopes.add(scope)
    airtable.standin.permission = "editor"  # "Creator level permissions are required"
    with pytest.raises(AirtableError, match="403 INVALID_PERMISSIONS"):
        await airtable_webhooks.create(pool, client, client.settings, url)
    airtable.standin.permission = "creator"
    companies_id = airtable.standin.table("Companies").id
    for _ in range(10):  # other integrations' webhooks fill the base
        await client.add_webhook(
            "https://other.example/hook", airtable_webhooks.specification(companies_id, [])
        )
    with pytest.raises(AirtableError, match="already has 10 webhooks, the most Airtable allows"):
        await airtable_webhooks.create(pool, client, client.settings, url)
    assert await pool.fetchval("SELECT count(*) FROM airtable_webhooks") == 0


def test_an_outdated_webhook_is_named_with_the_command_that_recreates_it(flow: Flow) -> None:
    """A webhook made before the base had Refresh Contacts (or by an earlier version) never sees
    a tick: `webhook status` says so and `webhook recreate` replaces it."""
    companies_table = flow.airtable.table("Companies")
    kept = companies_table.field("Refresh Contacts")
    flow.airtable.remove_field("Companies", "Refresh Contacts")
    assert cli(flow, "create", "--url", f"{flow.service.url}/webhooks/airtable/notifications").returncode == 0
    companies_table.fields.append(kept)  # the field is added to the base afterwards
    shown = cli(flow, "status")
    assert 'outdated: it does not watch "Refresh Contacts"' in shown.stdout
    assert re.search(r"; \d+ change payload\(s\) waiting to be read$", shown.stdout.splitlines()[0])
    assert "contact-sync airtable webhook recreate" in shown.stdout
    remade = cli(flow, "recreate")
    assert remade.returncode == 0 and "replaced by" in remade.stdout, remade.stderr
    (hook,) = flow.airtable.webhooks.values()
    assert set(hook.watched or []) == {companies_table.field("CIN").id, kept.id}
    assert "  ok" in cli(flow, "status").stdout


async def test_a_webhook_gone_from_airtable_stops_nothing_and_is_recreated(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], reader: PayloadReader
) -> None:
    """Away for two weeks: Airtable forgot the webhook (404). Reading it fails alone, and the
    upkeep that runs all the same recreates it."""
    (old,) = airtable.standin.webhooks
    airtable.standin.clock_skew_s = 15 * 86400  # expired, then kept 7 more days, then gone
    reader.poll_s, stop = 0.05, asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(reader.run(stop))
        for _ in range(200):
            if airtable.standin.webhooks and old not in airtable.standin.webhooks:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task
    (new,) = airtable.standin.webhooks
    assert new != old and await pool.fetchval("SELECT id FROM airtable_webhooks") == new
    failed = [e for e in logs if e["event"] == "webhook.read_failed"]
    assert failed and failed[0]["webhook_id"] == old and "404" in failed[0]["error"]
    assert any(e["event"] == "webhook.recreated" and e["reason"] == "gone from Airtable" for e in logs)
    record = airtable.standin.add_record("Companies", {"Company Name": "Acme", "CIN": NILGIRI})
    assert await reader.read_all() == 1 and [j.record_id for j in await jobs.list_jobs(pool, "queued")] == [
        record
    ]


async def test_recreating_by_hand_reads_what_the_old_webhook_still_held(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], reader: PayloadReader
) -> None:
    (old,) = airtable.standin.webhooks
    record = airtable.standin.add_record(
        "Companies", {"Company Name": "Acme", "CIN": NILGIRI}
    )  # not read yet
    created = await reader.recreate(old, "recreated by hand")
    assert list(airtable.standin.webhooks) == [created["id"]]
    assert [j.record_id for j in await jobs.list_jobs(pool, "queued")] == [record]


async def test_one_webhook_at_a_time(pool: asyncpg.Pool, client: Airtable, reader: PayloadReader) -> None:
    """Two webhooks would queue every change twice (and pay Attestr twice for a tick)."""
    (stored,) = await pool.fetch("SELECT id FROM airtable_webhooks")
    with pytest.raises(AirtableError, match="A webhook is stored already"):
        await airtable_webhooks.create(pool, client, client.settings, "https://other.example/hook")
    async with pool.acquire() as conn:  # the running service holds it (reading, or recreating it)
        await conn.fetchval("SELECT pg_advisory_lock(hashtextextended('webhook:' || $1, 0))", stored["id"])
        with pytest.raises(AirtableError, match="right now: try again in a minute"):
            await reader.recreate(stored["id"], "recreated by hand")
        await conn.fetchval("SELECT pg_advisory_unlock(hashtextextended('webhook:' || $1, 0))", stored["id"])
    assert await pool.fetchval("SELECT count(*) FROM airtable_webhooks") == 1


def test_a_deleted_cin_field_is_named_and_the_webhook_can_still_be_deleted(flow: Flow) -> None:
    assert cli(flow, "create", "--url", f"{flow.service.url}/webhooks/airtable/notifications").returncode == 0
    (hook_id,) = flow.airtable.webhooks
    flow.airtable.remove_field("Companies", "CIN")
    shown = cli(flow, "status")
    assert shown.returncode == 0 and 'no "CIN" field' in shown.stdout
    assert cli(flow, "delete", "achNoSuchWebhook1").returncode == 1
    gone = cli(flow, "delete", hook_id)
    assert gone.returncode == 0 and flow.airtable.webhooks == {}


async def test_payloads_airtable_deleted_unread_are_noticed_and_their_window_reconciled(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], client: Airtable, reader: PayloadReader
) -> None:
    """A week of full queue while upkeep keeps the webhook alive: Airtable deletes the payloads
    unread and the cursor moves past them. The reader says so and sweeps their window at once."""
    assert await reconcile.sweep(pool, client, client.settings) is not None  # the sweeps' baseline
    typed = [
        airtable.standin.add_record("Companies", {"Company Name": f"Lost {i}", "CIN": cin})
        for i, cin in enumerate([NILGIRI, KONKAN, "U74999TG2017PTC118280"])
    ]
    (hook,) = airtable.standin.webhooks.values()
    for _ in range(2):  # four days, a refresh (upkeep), four more: 8 days, the webhook alive
        airtable.standin.advance_clock(4 * 24 * 3600)
        await airtable_webhooks.refresh(pool, client, hook.id)
    later = airtable.standin.add_record("Companies", {"Company Name": "Read", "CIN": "L17110MH1973PLC019786"})
    with capture_logs() as logs:
        assert await reader.read_all() == 1  # the one payload still kept
        await reader._reconcile_lost()
    (lost,) = [line for line in logs if line["event"] == "webhook.payloads_lost"]
    assert lost["payloads"] == 3 and lost["webhook_id"] == hook.id and lost["until"]
    queued = {job.record_id for job in await jobs.list_jobs(pool, "queued")}
    assert queued == {*typed, later}  # the lost CINs too, by the sweep of their window
    assert await reader.read_all() == 0  # nothing lost twice
