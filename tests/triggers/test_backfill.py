"""Backfill over a few hundred companies (quotes and non-ASCII in names), and resync."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from structlog.testing import capture_logs

from service.airtable.client import Airtable
from service.airtable.errors import AirtableError
from service.people.companies import ensure_company
from service.people.dedup import CompanyContacts, upsert_people
from service.people.normalize import normalize_contact
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from service.triggers import backfill
from tests.command_line import contact_sync
from tests.conftest import Running
from tests.flow import Flow, service_env, settings_for

NAMES = ["O'Brien & Sons", 'Şahin "Quoted" Ltd', "Ünïcode Pvt", "Back\\slash {Braces}", "Plain"]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return contact_sync(*args, env={**os.environ, **env})


async def test_backfill_dry_run_then_queue(
    db_url: str, pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    records = []
    for i in range(260):
        cin = f"U{30000 + i // 2:05d}KA2015PTC{i // 2:06d}"  # two companies per CIN
        if i % 20 == 0:
            cin = ""  # no CIN yet
        elif i % 37 == 0:
            cin = "not-a-cin"
        records.append(
            (
                airtable.standin.add_record("Companies", {"Company Name": f"{NAMES[i % 5]} {i}", "CIN": cin}),
                cin,
            )
        )
    synced = records[1]  # already has contacts
    async with pool.acquire() as conn:
        company_id = await ensure_company(conn, synced[0], synced[1])
        await upsert_people(conn, [CompanyContacts(company_id, [normalize_contact({"indexId": "01234567"})])])
        await conn.execute(
            "INSERT INTO attestr_answers (cin, outcome, answer) VALUES ($1, 'synced', '{}')", records[3][1]
        )  # answered yesterday: not paid for again
    env = service_env(db_url, airtable, attestr)

    dry = cli(env, "backfill", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    with_cin = sum(1 for _, cin in records if cin)
    invalid = sum(1 for _, cin in records if cin == "not-a-cin")
    to_sync = with_cin - invalid - 1
    assert f"{with_cin} companies with a CIN; 1 already have contacts" in dry.stdout
    every = cli(env, "backfill", "--dry-run", "--all")
    assert (
        f"{with_cin} companies with a CIN; 1 already have contacts (synced again with --all)" in every.stdout
    )
    assert f"{to_sync + 1} to sync" in every.stdout
    assert dry.stdout.count("is not a valid CIN") == invalid
    distinct = len(
        {cin for record_id, cin in records if cin and cin != "not-a-cin" and record_id != synced[0]}
    )
    assert f"{to_sync} to sync, costing about {distinct - 1} Attestr call(s)" in dry.stdout
    assert await pool.fetchval("SELECT count(*) FROM jobs") == 0

    done = cli(env, "backfill")
    assert done.returncode == 0, done.stderr
    assert f"Queued {to_sync} job(s)" in done.stdout
    assert await pool.fetchval("SELECT count(*) FROM jobs WHERE source = 'backfill'") == to_sync
    again = cli(env, "backfill")
    assert f"Queued 0 job(s) ({to_sync} were queued already)" in again.stdout
    requests = [r for r in airtable.standin.requests if "Companies" in r["path"]]
    assert {r["status"] for r in requests} == {200} and len(requests) == 3 * 4  # three pages, four runs


def test_resync_brings_every_row_up_to_date_again(flow: Flow, db_url: str) -> None:
    company = flow.company("Nilgiri", "U72200KA2015PTC081234")
    flow.wait_for_job(flow.webhook(company, "U72200KA2015PTC081234").json()["job_id"])
    gone = flow.contacts()[0]
    del flow.airtable.table("Contacts").records[gone["id"]]
    flow.wait_for_job(
        flow.http.post(
            f"/companies/{company}/sync?wait=20",
            json={"force": True},
            headers={"X-API-Key": "api-key-for-tests"},
        ).json()["id"]
    )
    assert len(flow.contacts()) == 2
    writes = len(flow.contact_writes())

    env = {"DATABASE_URL": db_url}
    changed = flow.contacts()[0]["id"]
    flow.airtable.table("Contacts").records[changed]["fields"][
        flow.airtable.table("Contacts").field("Contact Key").id
    ] = "typed over"  # the service's own field, changed in the base: the resync puts it back
    done = cli(env, "airtable", "resync")
    assert "Marked 2 contact(s) and 1 company status(es)" in done.stdout
    flow.wait_until(lambda: len(flow.contact_writes()) > writes, what="the resync")
    assert "typed over" not in [c["Contact Key"] for c in flow.contacts()]
    assert len(flow.contacts()) == 2  # the row deleted by hand stays deleted

    restored = cli(env, "airtable", "resync", "--restore-deleted")
    assert "Marked 3 contact(s)" in restored.stdout
    flow.wait_until(lambda: len(flow.contacts()) == 3, what="the deleted row to come back")
    assert json.loads(cli(env, "status", "--json").stdout)["airtable"]["rows_deleted_by_hand"] == 0


async def test_an_expired_list_offset_starts_the_listing_again(
    pool: asyncpg.Pool,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Airtable's list offsets time out ("List records": LIST_RECORDS_ITERATOR_NOT_AVAILABLE):
    the listing starts again and every company is counted once; one that keeps expiring fails
    with Airtable's words after a few tries."""
    for i in range(250):
        airtable.standin.add_record(
            "Companies", {"Company Name": f"C {i}", "CIN": f"U{30000 + i:05d}KA2015PTC{i:06d}"}
        )
    real_list, pages = airtable.standin._list, []

    def expiring_list(table: object, params: dict) -> dict:
        pages.append(params.get("offset"))
        if len(pages) == 2:  # Airtable restarted between the first and second page
            airtable.standin.expire_iterators()
        return real_list(table, params)  # type: ignore[arg-type]

    monkeypatch.setattr(airtable.standin, "_list", expiring_list)
    settings = settings_for(airtable, attestr)
    with capture_logs() as logs:
        plan = await backfill.plan(pool, Airtable(settings, pool), settings, every=False)
    assert plan.with_cin == 250 and len({record_id for record_id, _ in plan.to_sync}) == 250
    assert [line["event"] for line in logs] == ["airtable.listing_restarted"]
    assert pages[2] is None  # it started again from the first page

    def always_expiring(table: object, params: dict) -> dict:
        answer = real_list(table, params)  # type: ignore[arg-type]
        airtable.standin.expire_iterators()
        return answer

    monkeypatch.setattr(airtable.standin, "_list", always_expiring)
    with pytest.raises(AirtableError, match="422 LIST_RECORDS_ITERATOR_NOT_AVAILABLE"):
        await backfill.plan(pool, Airtable(settings, pool), settings, every=False)


def test_recheck_identities_separates_people_merged_before_pans_were_read(flow: Flow, db_url: str) -> None:
    """Yesterday NISHA KAPOOR and DEEPAK GUPTA, known by PANs that were thrown away, shared the
    office phone and became one person. The stored answer still names them: rechecking the
    company reuses it (no call paid) and makes them two."""
    answer = {
        "valid": True,
        "businessName": "KAPOOR GUPTA ASSOCIATES",
        "contacts": [
            {"indexId": "ABCPK1234F", "fullName": "NISHA KAPOOR", "mobileNumber": "022 2345 1111"},
            {"indexId": "BCDPG2345K", "fullName": "DEEPAK GUPTA", "mobileNumber": "022 2345 1111"},
        ],
    }
    merged, directors, since = (
        flow.company("Kapoor Gupta", "U74999MH2019PTC334455"),
        flow.company("Nilgiri", "U72200KA2015PTC081234"),
        flow.company("Synced since", "L17110MH1973PLC019786"),
    )

    async def yesterday() -> None:
        conn = await asyncpg.connect(db_url)
        now = datetime.now(UTC)
        try:
            directors_answer = {
                "valid": True,
                "contacts": [{"indexId": "07123456", "fullName": "ANANYA RAO"}],
            }
            for record_id, cin, stored, synced in (
                (merged, "U74999MH2019PTC334455", answer, now - timedelta(days=1)),
                (directors, "U72200KA2015PTC081234", directors_answer, now - timedelta(days=1)),
                (since, "L17110MH1973PLC019786", answer, now + timedelta(minutes=1)),  # today's rules
            ):
                await conn.execute(
                    "INSERT INTO companies (airtable_id, cin, synced_at) VALUES ($1, $2, $3)",
                    record_id,
                    cin,
                    synced,
                )
                await conn.execute(
                    "INSERT INTO attestr_answers (cin, outcome, answer) VALUES ($1, 'synced', $2)",
                    cin,
                    json.dumps(stored),
                )
            await conn.execute(
                "INSERT INTO people (name, phone_e164) VALUES ('NISHA KAPOOR', '+912223451111');"
                " INSERT INTO people (din, name) VALUES ('07123456', 'ANANYA RAO');"
                " INSERT INTO company_people VALUES (1, 1), (2, 2)"
            )
        finally:
            await conn.close()

    asyncio.run(yesterday())
    dry = cli(flow.service_env, "backfill", "--recheck-identities", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "2 companies synced before PANs were read; 1 may have had two people merged" in dry.stdout
    assert f"  {merged}  U74999MH2019PTC334455\n" in dry.stdout
    assert "1 to sync, costing about 0 Attestr call(s)" in dry.stdout
    both = cli(flow.service_env, "backfill", "--recheck-identities", "--all")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    done = cli(flow.service_env, "backfill", "--recheck-identities")
    assert "Queued 1 job(s)" in done.stdout, done.stderr
    # Her row (pushed as it was stored) is updated and his created: two requests, one of each kind.
    expected = {"Nisha Kapoor", "Deepak Gupta", "ANANYA RAO"}  # Ananya's row, as stored, untouched
    flow.wait_until(lambda: {c.get("Name") for c in flow.contacts()} == expected, what="the three rows")
    rows = {c["Name"]: c for c in flow.contacts()}
    assert len(flow.contacts()) == 3
    assert rows["Nisha Kapoor"]["Company"] == rows["Deepak Gupta"]["Company"] == [merged]
    assert flow.attestr.calls == []  # the stored answer served
