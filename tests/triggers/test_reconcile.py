"""Reconciliation: the sweep queues what no trigger brought, by state, once, and nothing older
than its baseline. In the test process against the Airtable stand-in and a real database."""

from __future__ import annotations

import asyncio
import copy
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from service.airtable.client import Airtable
from service.airtable.errors import AirtableError
from service.engine import jobs
from service.people.companies import ensure_company
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from service.triggers import reconcile
from tests.conftest import Running
from tests.end_to_end.test_automation import run_script
from tests.flow import Flow, running_flow, service_env, settings_for
from tests.triggers.test_backfill import cli

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


def _fields(at: AirtableStandIn, record_id: str) -> dict[str, Any]:
    return next(r["fields"] for r in at.records("Companies") if r["id"] == record_id)


def _logged(flow: Flow, event: str) -> bool:
    return any(line["event"] == event for line in flow.service.logs())


async def _ended_job(
    pool: asyncpg.Pool, record_id: str, cin: str, status: str, *, force: bool = False, minutes_ago: int = 0
) -> None:
    """A job a webhook brought earlier, ended as `status`."""
    await pool.execute(
        "INSERT INTO jobs (record_id, cin, status, force, source, created_at) "
        "VALUES ($1, $2, $3, $4, 'webhook', now() - make_interval(mins => $5))",
        record_id,
        cin,
        status,
        force,
        minutes_ago,
    )


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


async def test_a_stop_cuts_a_slow_sweep_short_and_the_next_start_sweeps_again(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """A worker asked to stop while Airtable is slow stops within its grace period: the sweep
    under way is cut short, records no end, and the next process to start sweeps again."""
    airtable.standin.add_record("Companies", {"Company Name": "Old", "CIN": CIN_A})
    client, settings = _client(pool, airtable, attestr), settings_for(airtable, attestr)
    await reconcile.sweep(pool, client, settings)  # the baseline
    ended = await pool.fetchval("SELECT finished_at FROM reconcile_state")
    airtable.standin.delay_s = 5.0  # each read takes 5 s
    asked = len(airtable.standin.requests)
    stop = asyncio.Event()
    with capture_logs() as logs:
        sweeping = asyncio.create_task(reconcile.run(pool, client, settings, stop))
        while len(airtable.standin.requests) == asked:  # the sweep's read has reached Airtable
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(sweeping, 60)
    read = airtable.standin.requests[asked]
    assert "answered" not in read  # the sweep ended before Airtable answered its read
    assert [line["event"] for line in logs if line["event"].startswith("reconcile.")] == [
        "reconcile.interrupted"
    ]
    assert await pool.fetchval("SELECT finished_at FROM reconcile_state") == ended


async def test_a_sweep_queues_each_lost_trigger_once(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    at = airtable.standin
    # Three lost triggers in one sweep are alerted (triggers are being lost).
    client, settings = (
        _client(pool, airtable, attestr),
        settings_for(airtable, attestr, ALERT_MISSED_TRIGGERS="3"),
    )
    typed_later = at.add_record("Companies", {"Company Name": "Typed later"})
    synced = at.add_record("Companies", {"Company Name": "Synced", "CIN": CIN_B})
    changed = at.add_record("Companies", {"Company Name": "Changed", "CIN": CIN_B})
    failed = at.add_record("Companies", {"Company Name": "Failed before"})
    async with pool.acquire() as conn:
        await ensure_company(conn, synced, CIN_B)
        await ensure_company(conn, changed, CIN_B)
        await conn.execute("UPDATE companies SET synced_at = now()")
    await _ended_job(pool, failed, CIN_C, "failed")
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
    (alert,) = await pool.fetch("SELECT detail FROM alerts WHERE kind = 'triggers_missed'")
    assert alert["detail"].startswith("the sweep queued 3 companies whose CIN no trigger brought")
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
        await _ended_job(pool, record_id, cin, "succeeded", minutes_ago=10)
    await reconcile.sweep(pool, client, settings)
    _later()
    at.edit("Companies", {answered: {"Refresh Contacts": True}, lost: {"Refresh Contacts": True}})
    # The automation reached the service for one tick: its job began just after the tick.
    await _ended_job(pool, answered, CIN_A, "succeeded", force=True)
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
    await _ended_job(pool, company, CIN_A, "succeeded")
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


@pytest.mark.process
def test_triggers_lost_while_the_service_was_down_are_synced_at_start_up_with_no_one_acting(
    tmp_path: Path, db_url: str, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """The issue's end-to-end case: the service stops; CINs are typed in Airtable, whose
    automation runs fail and mark the companies Waiting; the service starts again and, within its
    start-up sweep, every one is synced. No Attestr call for a company already synced under the
    CIN it holds, none for a CIN set before the baseline."""
    at = airtable.standin
    for cin in (CIN_B, CIN_C):  # two more companies Attestr knows
        answer = copy.deepcopy(attestr.standin.companies[CIN_A])
        attestr.standin.companies[cin] = {**answer, "indexId": cin, "businessName": f"COMPANY {cin}"}
    older = at.add_record("Companies", {"Company Name": "Before the baseline", "CIN": CIN_C})
    synced = at.add_record("Companies", {"Company Name": "Konkan Traders"})
    waiting = [at.add_record("Companies", {"Company Name": f"Typed while down {i}"}) for i in range(3)]

    with running_flow(tmp_path, db_url, airtable, attestr) as flow:
        flow.wait_until(lambda: _logged(flow, "reconcile.finished"), what="the first sweep (the baseline)")
        at.edit("Companies", {synced: {"CIN": CIN_A}})
        assert flow.wait_for_job(flow.webhook(synced, CIN_A).json()["job_id"])["status"] == "succeeded"
        down_url = flow.service.url
    paid_before = len(attestr.standin.calls)

    # While it is down: CINs typed (one of them the synced company's own CIN, typed again).
    typed = {waiting[0]: CIN_A, waiting[1]: CIN_B, waiting[2]: f" {CIN_C.lower()} ", synced: f"{CIN_A} "}
    at.edit("Companies", {record_id: {"CIN": cin} for record_id, cin in typed.items()})
    for record_id, cin in typed.items():
        outcome = run_script((at, airtable.url), down_url, {"recordId": record_id, "cin": cin})
        assert outcome["ok"] is False and "could not be reached" in outcome["error"]
        assert _fields(at, record_id)["Contacts Sync Status"] == "Waiting"

    started = time.monotonic()
    with running_flow(tmp_path, db_url, airtable, attestr) as flow:
        flow.wait_until(
            lambda: all(
                flow.company_fields(record_id).get("Contacts Sync Status") == "Synced"
                for record_id in (*waiting, synced)
            ),
            timeout=60,
            what="every company typed while the service was down to be synced",
        )
        elapsed = time.monotonic() - started
        sweeps = [line for line in flow.service.logs() if line["event"] == "reconcile.finished"]
    assert sweeps[0]["queued"] == 3 and sweeps[0]["skipped"] == {"synced": 1}
    assert sweeps[0]["statuses_restored"] == 1  # the synced company had been marked Waiting
    paid = [call["cin"] for call in attestr.standin.calls[paid_before:]]
    assert sorted(paid) == sorted([CIN_B, CIN_C])  # not CIN_A: its stored answer is used again
    assert "Contacts Sync Status" not in _fields(at, older)  # before the baseline: backfill's
    print(f"start-up to the last company synced: {elapsed:.1f} s")


async def test_a_sweep_that_fails_half_way_moves_nothing_on_and_the_next_one_queues(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    at = airtable.standin
    client, settings = _client(pool, airtable, attestr), settings_for(airtable, attestr)
    await reconcile.sweep(pool, client, settings)
    swept_from = await pool.fetchval("SELECT swept_from FROM reconcile_state")
    _later()
    company = at.add_record("Companies", {"Company Name": "Typed during the failure", "CIN": CIN_A})
    token, at.token = at.token, "revoked"  # Airtable refuses the sweep's read
    with pytest.raises(AirtableError):
        await reconcile.sweep(pool, client, settings)
    assert await pool.fetchval("SELECT swept_from FROM reconcile_state") == swept_from
    at.token = token
    found = await reconcile.sweep(pool, client, settings)
    assert found is not None and found.to_queue == [(company, CIN_A, False)]


def test_the_command_says_what_it_would_queue_and_then_queues_it(
    db_url: str, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    env = service_env(db_url, airtable, attestr)
    first = cli(env, "reconcile", "--dry-run")
    assert first.returncode == 0 and "has not run yet" in first.stdout, first.stderr
    assert cli(env, "reconcile").returncode == 0  # the baseline
    _later()
    company = airtable.standin.add_record("Companies", {"Company Name": "O'Brien & Sons", "CIN": CIN_A})
    airtable.standin.add_record("Companies", {"Company Name": "Junk", "CIN": "12345"})
    dry = cli(env, "reconcile", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "2 companies with a CIN set or changed" in dry.stdout
    assert "1 left alone: the CIN field holds no valid CIN or LLPIN" in dry.stdout
    assert "1 to queue, costing about 1 Attestr call(s)" in dry.stdout and f"{company}  {CIN_A}" in dry.stdout
    done = cli(env, "reconcile")
    assert done.returncode == 0 and "1 queued (1 new job(s))" in done.stdout, done.stdout + done.stderr
    again = cli(env, "reconcile")
    assert (
        "0 queued (0 new job(s))" in again.stdout
        and "a job for that CIN is queued or running" in again.stdout
    )


async def test_a_cin_changed_back_is_synced_again_and_a_bad_one_shown_waiting_says_why(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """Judged by the newest job: A, then B, then A again (no trigger) needs a job for A. A CIN
    that is no CIN, marked Waiting by the script while the service was down, is shown Failed."""
    at = airtable.standin
    client, settings = _client(pool, airtable, attestr), settings_for(airtable, attestr)
    back = at.add_record("Companies", {"Company Name": "Back and forth"})
    await reconcile.sweep(pool, client, settings)
    _later()
    await _ended_job(pool, back, CIN_A, "succeeded", minutes_ago=5)
    await _ended_job(pool, back, CIN_B, "succeeded", minutes_ago=1)
    typo = at.add_record("Companies", {"Company Name": "Typo", "CIN": "U7220OKA2015PTC081234"})
    at.edit("Companies", {back: {"CIN": CIN_A}, typo: {"Contacts Sync Status": "Waiting"}})
    found = await reconcile.sweep(pool, client, settings)
    assert found is not None and found.to_queue == [(back, CIN_A, False)] and found.queued == 1
    row = await pool.fetchrow(
        "SELECT sync_status, sync_error, push_version FROM companies WHERE airtable_id = $1", typo
    )
    assert (
        row["sync_status"] == "Failed" and "'U7220OKA2015PTC081234' is not a valid CIN" in row["sync_error"]
    )
    assert row["push_version"] > 0  # the pusher writes it over the Waiting


async def test_a_webhook_while_the_sweep_reads_wins_and_the_window_is_read_again(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """The automation's forced job for a tick is stored while the sweep reads Airtable: the
    sweep queues no second forced job (no second paid call), and reads the window again next
    time instead of moving on."""
    at = airtable.standin
    client, settings = _client(pool, airtable, attestr), settings_for(airtable, attestr)
    company = at.add_record("Companies", {"Company Name": "Ticked", "CIN": CIN_A})
    await _ended_job(pool, company, CIN_A, "succeeded", force=True, minutes_ago=10)  # an older tick
    await reconcile.sweep(pool, client, settings)
    swept_from = await pool.fetchval("SELECT swept_from FROM reconcile_state")
    _later()
    at.edit("Companies", {company: {"Refresh Contacts": True}})
    listing, listings = client.list_records, []

    async def a_webhook_arrives_meanwhile(*args: Any, **kwargs: Any) -> Any:
        records = await listing(*args, **kwargs)
        listings.append(records)
        if len(listings) == 2:  # the sweep asks when the tick came: the automation gets through
            job_id, _ = await jobs.enqueue(pool, company, CIN_A, force=True)
            await pool.execute("UPDATE jobs SET status = 'running' WHERE id = $1", job_id)  # claimed
        return records

    client.list_records = a_webhook_arrives_meanwhile  # type: ignore[method-assign]
    found = await reconcile.sweep(pool, client, settings)
    assert found is not None and found.to_queue == [(company, CIN_A, True)] and found.deferred == 1
    assert await pool.fetchval("SELECT count(*) FROM jobs WHERE force AND source = 'reconcile'") == 0
    assert await pool.fetchval("SELECT swept_from FROM reconcile_state") == swept_from


async def test_a_deleted_refresh_field_is_noticed_by_the_next_sweep(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    client, settings = _client(pool, airtable, attestr), settings_for(airtable, attestr)
    await reconcile.sweep(pool, client, settings)  # reads the schema: Refresh Contacts is there
    airtable.standin.remove_field("Companies", "Refresh Contacts")
    _later()
    company = airtable.standin.add_record("Companies", {"Company Name": "New", "CIN": CIN_A})
    found = await reconcile.sweep(pool, client, settings)
    assert found is not None and found.to_queue == [(company, CIN_A, False)]
