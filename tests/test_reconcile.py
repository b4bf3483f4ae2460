"""Reconciliation: the sweep queues what no trigger brought, by state, once, and nothing older
than its baseline. In the test process against the Airtable stand-in and a real database."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from structlog.testing import capture_logs

from service import reconcile
from service.airtable import Airtable
from service.companies import ensure_company
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from tests.conftest import Running
from tests.flow import settings_for

CIN_A = "U51909MH2018PTC309876"
CIN_B = "L17110MH1973PLC019786"
CIN_C = "U72200KA2015PTC082110"


def _client(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> Airtable:
    return Airtable(settings_for(airtable, attestr), pool)


async def _jobs(pool: asyncpg.Pool) -> list[tuple[str, str, bool, str]]:
    rows = await pool.fetch("SELECT record_id, cin, force, source FROM jobs ORDER BY id")
    return [(r["record_id"], r["cin"], r["force"], r["source"]) for r in rows]


def _later() -> None:
    time.sleep(0.02)  # Airtable's times are in milliseconds


async def test_the_first_sweep_sets_the_baseline_and_queues_nothing_older(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    older = airtable.standin.add_record("Companies", {"Company Name": "Old", "CIN": CIN_A})
    edited_before = airtable.standin.add_record("Companies", {"Company Name": "Edited"})
    airtable.standin.edit("Companies", {edited_before: {"CIN": CIN_B}})
    _later()
    client, settings = _client(pool, airtable, attestr), settings_for(airtable, attestr)

    assert (await reconcile.sweep(pool, client, settings, dry_run=True)).since is None  # no baseline yet
    first = await reconcile.sweep(pool, client, settings)
    assert first is not None and first.queued == 0 and await _jobs(pool) == []
    _later()
    again = await reconcile.sweep(pool, client, settings)
    assert again is not None and again.seen == 0  # still backfill's, sweep after sweep
    assert older and await _jobs(pool) == []


async def test_a_sweep_queues_each_lost_trigger_once(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    at = airtable.standin
    client, settings = _client(pool, airtable, attestr), settings_for(airtable, attestr)
    typed_later = at.add_record("Companies", {"Company Name": "Typed later"})
    synced = at.add_record("Companies", {"Company Name": "Synced", "CIN": CIN_B})
    changed = at.add_record("Companies", {"Company Name": "Changed", "CIN": CIN_B})
    failed = at.add_record("Companies", {"Company Name": "Failed before"})
    async with pool.acquire() as conn:
        await ensure_company(conn, synced, CIN_B)
        await ensure_company(conn, changed, CIN_B)
        await conn.execute("UPDATE companies SET synced_at = now()")
    await pool.execute(
        "INSERT INTO jobs (record_id, cin, status, source) VALUES ($1, $2, 'failed', 'webhook')",
        failed,
        CIN_C,
    )
    await reconcile.sweep(pool, client, settings)  # the baseline
    _later()
    # While the service was away: CINs typed, pasted, changed, re-typed, and one not a CIN.
    new = at.add_record("Companies", {"Company Name": "New, with its CIN", "CIN": f" {CIN_C} "})
    junk = at.add_record("Companies", {"Company Name": "Junk", "CIN": "not a CIN"})
    at.edit(
        "Companies",
        {
            typed_later: {"CIN": "u51909mh2018ptc309876"},
            changed: {"CIN": CIN_A},
            synced: {"CIN": CIN_B + " "},  # the same CIN, written again: synced under it already
            failed: {"CIN": CIN_C},  # its job for this CIN failed: the operator's to replay
        },
    )
    dry = await reconcile.sweep(pool, client, settings, dry_run=True)
    assert dry is not None and sorted(dry.to_queue) == sorted(
        [(typed_later, CIN_A, False), (changed, CIN_A, False), (new, CIN_C, False)]
    )
    assert dry.attestr_calls == 2 and await _jobs(pool) == [(failed, CIN_C, False, "webhook")]

    with capture_logs() as logs:
        done = await reconcile.sweep(pool, client, settings)
    assert done is not None and done.queued == 3 and done.seen == 6
    assert dict(done.skipped) == {"invalid_cin": 1, "synced": 1, "failed": 1}
    assert sorted(j for j in await _jobs(pool) if j[3] == "reconcile") == sorted(
        [
            (typed_later, CIN_A, False, "reconcile"),
            (changed, CIN_A, False, "reconcile"),
            (new, CIN_C, False, "reconcile"),
        ]
    )
    finished = [e for e in logs if e["event"] == "reconcile.finished"]
    assert finished and finished[0]["queued"] == 3 and finished[0]["skipped"]["invalid_cin"] == 1
    assert junk

    again = await reconcile.sweep(pool, client, settings)  # the window overlaps: same companies read
    assert again is not None and again.queued == 0 and again.to_queue == []
    assert again.skipped["in_progress"] == 3 and len(await _jobs(pool)) == 4


async def test_a_tick_with_no_job_since_is_queued_as_a_refresh_once(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    at = airtable.standin
    client, settings = _client(pool, airtable, attestr), settings_for(airtable, attestr)
    answered = at.add_record("Companies", {"Company Name": "Answered", "CIN": CIN_A})
    lost = at.add_record("Companies", {"Company Name": "Lost tick", "CIN": CIN_B})
    for record_id, cin in ((answered, CIN_A), (lost, CIN_B)):
        await pool.execute(
            "INSERT INTO jobs (record_id, cin, status, source, created_at) "
            "VALUES ($1, $2, 'succeeded', 'webhook', now() - interval '10 minutes')",
            record_id,
            cin,
        )
    await reconcile.sweep(pool, client, settings)
    _later()
    at.edit("Companies", {answered: {"Refresh Contacts": True}, lost: {"Refresh Contacts": True}})
    # The automation reached the service for one tick: its job began just after the tick.
    await pool.execute(
        "INSERT INTO jobs (record_id, cin, status, force, source) "
        "VALUES ($1, $2, 'succeeded', true, 'webhook')",
        answered,
        CIN_A,
    )
    done = await reconcile.sweep(pool, client, settings)
    assert done is not None and done.to_queue == [(lost, CIN_B, True)] and done.skipped["tick_answered"] == 1
    assert done.attestr_calls == 1  # a refresh pays, even with a recent answer stored
    again = await reconcile.sweep(pool, client, settings)
    assert again is not None and again.queued == 0  # the queued refresh answers the tick
    assert await pool.fetchval("SELECT count(*) FROM jobs WHERE force AND source = 'reconcile'") == 1


async def test_a_company_shown_waiting_whose_job_was_stored_gets_its_true_status_back(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """The service stored the job but its answer was lost: the script wrote Waiting."""
    at = airtable.standin
    client, settings = _client(pool, airtable, attestr), settings_for(airtable, attestr)
    company = at.add_record("Companies", {"Company Name": "Answer lost"})
    await reconcile.sweep(pool, client, settings)
    _later()
    at.edit("Companies", {company: {"CIN": CIN_A, "Contacts Sync Status": "Waiting"}})
    async with pool.acquire() as conn:
        await ensure_company(conn, company, CIN_A)
        await conn.execute("UPDATE companies SET synced_at = now(), sync_status = 'Synced'")
    await pool.execute(
        "INSERT INTO jobs (record_id, cin, status, source) VALUES ($1, $2, 'succeeded', 'webhook')",
        company,
        CIN_A,
    )
    before = await pool.fetchval("SELECT push_version FROM companies")
    done = await reconcile.sweep(pool, client, settings)
    assert done is not None and done.to_repush == [company] and done.queued == 0
    assert await pool.fetchval("SELECT push_version FROM companies") == before + 1


async def test_one_process_sweeps_at_a_time_and_a_base_without_refresh_field_is_swept(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    at = airtable.standin
    at.remove_field("Companies", "Refresh Contacts")
    client, settings = _client(pool, airtable, attestr), settings_for(airtable, attestr)
    await reconcile.sweep(pool, client, settings)
    _later()
    at.add_record("Companies", {"Company Name": "New", "CIN": CIN_A})
    async with pool.acquire() as other:
        assert await other.fetchval("SELECT pg_try_advisory_lock(hashtextextended('reconcile', 0))")
        assert await reconcile.sweep(pool, client, settings) is None  # another process is sweeping
        await other.execute("SELECT pg_advisory_unlock(hashtextextended('reconcile', 0))")
    found = await asyncio.wait_for(reconcile.sweep(pool, client, settings), 30)
    assert found is not None and found.queued == 1
