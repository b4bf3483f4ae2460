"""Native Airtable webhooks: creation, the MAC check, the payload reader (paging, a crash in the
middle), refresh before expiry, and a CIN typed in Airtable ending as contacts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx
import pytest

from service import airtable_webhooks, jobs
from service.airtable import Airtable, AirtableError
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from tests.conftest import Running
from tests.flow import Flow, settings_for

NILGIRI = "U72200KA2015PTC081234"


def signed(secret: str, body: bytes) -> str:
    return "hmac-sha256=" + hmac.new(base64.b64decode(secret), body, hashlib.sha256).hexdigest()


def test_verify() -> None:
    secret = base64.b64encode(b"k" * 32).decode()
    body = b'{"base": {"id": "app1"}, "webhook": {"id": "ach1"}}'
    assert airtable_webhooks.verify([secret], body, signed(secret, body))
    assert airtable_webhooks.verify(["bm90LXRoaXMtb25l", secret], body, signed(secret, body))  # rotation
    assert not airtable_webhooks.verify([secret], body + b" ", signed(secret, body))
    assert not airtable_webhooks.verify([secret], body, None)
    assert not airtable_webhooks.verify([secret], body, "sha1=abc")
    assert not airtable_webhooks.verify(["%%%not base64%%%"], body, signed(secret, body))


def cli(flow: Flow, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", "airtable", "webhook", *args],
        env={**os.environ, **flow.service_env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_cin_typed_in_airtable_ends_as_contacts_without_any_automation(flow: Flow) -> None:
    url = f"{flow.service.url}/webhooks/airtable/notifications"
    ping = flow.http.post("/webhooks/airtable/notifications", content=b"{}")
    assert ping.status_code == 503 and ping.json()["error"]["code"] == "not_configured"
    created = cli(flow, "create", "--url", url)
    assert created.returncode == 0, created.stderr
    (hook,) = flow.airtable.webhooks.values()
    assert (
        hook["specification"]["options"]["filters"]["recordChangeScope"]
        == flow.airtable.table("Companies").id
    )

    company = flow.company("Nilgiri")  # no CIN yet: nothing to do
    # A person types the CIN in Airtable's UI (the stand-in's control endpoint):
    httpx.patch(
        f"{flow.service_env['AIRTABLE_API_URL']}/_standin/tables/Companies/records/{company}",
        json={"fields": {"CIN": NILGIRI.lower()}},
    )
    flow.wait_until(lambda: len(flow.contacts()) == 3, timeout=30, what="contacts from the webhook")
    assert all(c["Company"] == [company] for c in flow.contacts())

    def succeeded() -> list[dict]:
        return flow.http.get("/jobs?status=succeeded", headers={"X-API-Key": "api-key-for-tests"}).json()[
            "jobs"
        ]

    flow.wait_until(succeeded, what="the job to end")
    assert succeeded()[0]["cin"] == NILGIRI

    status = json.loads(cli(flow, "status", "--json").stdout)
    assert status[0]["in_airtable"] and status[0]["cursor"] > 1 and status[0]["payloads_waiting"] >= 0
    assert "refreshed" in cli(flow, "refresh").stdout
    assert "deleted" in cli(flow, "delete").stdout
    assert flow.airtable.webhooks == {}


def test_the_mac_is_checked(flow: Flow) -> None:
    cli(flow, "create", "--url", f"{flow.service.url}/webhooks/airtable/notifications")
    (hook,) = flow.airtable.webhooks.values()
    body = json.dumps(
        {
            "base": {"id": flow.airtable.base_id},
            "webhook": {"id": hook["id"]},
            "timestamp": "2026-11-26T10:00:00.000Z",
        }
    ).encode()
    good = {"X-Airtable-Content-MAC": signed(hook["macSecretBase64"], body)}
    wrong = {"X-Airtable-Content-MAC": signed(base64.b64encode(b"x" * 32).decode(), body)}
    path = "/webhooks/airtable/notifications"
    assert flow.http.post(path, content=body, headers=good).json() == {"ok": True}
    assert flow.http.post(path, content=body, headers=good).status_code == 200  # a repeated ping is harmless
    for headers in (wrong, {}, {"X-Airtable-Content-MAC": "hmac-sha256=zz"}):
        refused = flow.http.post(path, content=body, headers=headers)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    bad_json = flow.http.post(
        path,
        content=b"not json",
        headers={"X-Airtable-Content-MAC": signed(hook["macSecretBase64"], b"not json")},
    )
    assert bad_json.status_code == 400


@pytest.fixture
async def reader(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> airtable_webhooks.PayloadReader:
    airtable.standin.rate_limit = 10_000
    settings = settings_for(airtable, attestr, AIRTABLE_RATE_LIMIT_RPS="100")
    client = Airtable(settings, pool)
    await airtable_webhooks.create(pool, client, settings, "http://127.0.0.1:9/nowhere")
    return airtable_webhooks.PayloadReader(pool, client)


async def test_payloads_over_several_pages_with_a_crash_in_the_middle(
    pool: asyncpg.Pool,
    airtable: Running[AirtableStandIn],
    reader: airtable_webhooks.PayloadReader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = [airtable.standin.add_record("Companies", {"Company Name": f"C {i}"}) for i in range(120)]
    for i, record_id in enumerate(records):  # 120 CINs typed: 120 payloads, three pages
        airtable.standin._update(
            airtable.standin.table("Companies"),
            record_id,
            {airtable.standin.table("Companies").field("CIN").id: f"U{40000 + i:05d}KA2015PTC{i:06d}"},
            replace=False,
        )
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


async def test_refresh_ticks_and_cin_changes_but_not_status_writes(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], reader: airtable_webhooks.PayloadReader
) -> None:
    companies = airtable.standin.table("Companies")
    fid = {f.name: f.id for f in companies.fields}
    record = airtable.standin.add_record("Companies", {"Company Name": "Acme", "CIN": NILGIRI})
    airtable.standin._update(companies, record, {fid["Contacts Sync Status"]: "Synced"}, replace=False)
    airtable.standin._update(companies, record, {fid["Refresh Contacts"]: True}, replace=False)
    airtable.standin._update(companies, record, {fid["Refresh Contacts"]: False}, replace=False)  # cleared
    airtable.standin._update(companies, record, {fid["CIN"]: "not a cin"}, replace=False)
    assert await reader.read_all() == 1  # the created record, the tick and the new CIN: one company
    (job,) = await jobs.list_jobs(pool, "queued")
    assert (job.record_id, job.force, job.cin) == (
        record,
        True,
        NILGIRI,
    )  # the invalid CIN is left to the worker


async def test_a_webhook_is_refreshed_before_it_expires(
    pool: asyncpg.Pool, reader: airtable_webhooks.PayloadReader
) -> None:
    await pool.execute("UPDATE airtable_webhooks SET expires_at = now() + interval '2 hours'")
    await reader.refresh_expiring()
    expires = await pool.fetchval("SELECT expires_at FROM airtable_webhooks")
    assert expires > datetime.now(timezone.utc) + timedelta(days=6)


async def test_without_the_webhook_scope(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    airtable.standin.scopes.discard("webhook:manage")
    settings = settings_for(airtable, attestr)
    with pytest.raises(AirtableError, match="403"):
        await airtable_webhooks.create(pool, Airtable(settings, pool), settings, "https://x.example/hook")
