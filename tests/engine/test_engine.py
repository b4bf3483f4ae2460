"""The job engine inside one process, with the real queue and both stand-ins: Attestr failing at
random, credits running out mid-batch, the probe, the daily spend cap, replays."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from structlog.testing import capture_logs

from service.engine import jobs
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from tests.conftest import Running
from tests.flow import enqueued, running_engine

FAST = {"ATTESTR_TIMEOUT_S": "0.3", "AIRTABLE_RATE_LIMIT_RPS": "50"}


def many_companies(
    airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn], n: int
) -> list[tuple[str, str]]:
    """n companies in Airtable, each with its own CIN and two directors at Attestr."""
    airtable.standin.rate_limit = 1000
    out = []
    for i in range(n):
        cin = f"U{10000 + i:05d}KA2015PTC{i:06d}"
        attestr.standin.companies[cin] = {
            "valid": True,
            "businessName": f"COMPANY {i}",
            "contacts": [
                {
                    "indexId": f"{30000000 + 2 * i + k}",
                    "fullName": f"Director {i}-{k}",
                    "mobileNumber": f"97{i:04d}{k:04d}",
                }
                for k in range(2)
            ],
        }
        out.append(
            (airtable.standin.add_record("Companies", {"Company Name": f"Company {i}", "CIN": cin}), cin)
        )
    return out


async def states(pool: asyncpg.Pool) -> dict[str, int]:
    return {
        r["status"]: r["n"] for r in await pool.fetch("SELECT status, count(*) AS n FROM jobs GROUP BY 1")
    }


async def until(condition: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def attestr_asked(attestr: Running[AttestrStandIn], cin: str) -> None:
    """Once the Attestr stand-in has the CIN's request (its answer may take a while yet)."""

    async def asked() -> bool:
        return attestr.standin.calls_for(cin) == 1

    await until(asked)


async def finished_job(pool: asyncpg.Pool, job_id: int) -> jobs.Job:
    """The job once it has ended (succeeded or failed)."""

    async def ended() -> bool:
        job = await jobs.get(pool, job_id)
        return job is not None and job.finished

    await until(ended)
    job = await jobs.get(pool, job_id)
    assert job is not None
    return job


async def test_attestr_failing_at_random_every_job_ends_and_none_is_stuck(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    companies = many_companies(airtable, attestr, 16)
    attestr.standin.failure_rate = 0.5  # 5xx, per-second limits and timeouts
    attestr.standin.hang_s = 1.0
    async with running_engine(pool, airtable, attestr, **FAST, JOB_MAX_ATTEMPTS="4"):
        for record_id, cin in companies:
            await jobs.enqueue(pool, record_id, cin)

        async def all_ended() -> bool:
            return set(await states(pool)) <= {"succeeded", "failed"}

        await until(all_ended, timeout=120)
    ended = await jobs.list_jobs(pool, None, 100)
    assert len(ended) == 16
    assert all(job.attempts <= 4 for job in ended)
    for job in ended:
        if job.status == "failed":
            assert "gave up after 4 attempts" in (job.last_error or ""), job
    succeeded = [job for job in ended if job.status == "succeeded"]
    assert len(succeeded) >= 12  # with half the calls failing, four tries are nearly always enough
    assert len(airtable.standin.records("Contacts")) == 2 * len(succeeded)


async def test_credits_exhausted_mid_batch_no_job_fails_calls_stop_and_resume_completes_them(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    companies = many_companies(airtable, attestr, 10)
    async with running_engine(pool, airtable, attestr, **FAST, WORKER_CONCURRENCY="2") as runtime:
        with capture_logs() as logs:
            for record_id, cin in companies[:3]:
                await jobs.enqueue(pool, record_id, cin)

            async def first_three_done() -> bool:
                return (await states(pool)).get("succeeded") == 3

            await until(first_three_done)
            attestr.standin.persistent_failure = 4005  # credits run out
            for record_id, cin in companies[3:]:
                await jobs.enqueue(pool, record_id, cin)

            async def all_waiting() -> bool:
                row = await pool.fetchrow(
                    "SELECT count(*) FILTER (WHERE waiting_on = 'attestr') AS waiting, count(*) AS queued "
                    "FROM jobs WHERE status = 'queued'"
                )
                return row["waiting"] == row["queued"] == 7

            await until(all_waiting)
            calls = len(attestr.standin.calls)
            await asyncio.sleep(1.0)
            # Only the calls already in flight when credits ran out (at most one per worker slot)
            # were refused; then none at all.
            assert len(attestr.standin.calls) == calls
            refused = calls - 3
            assert 1 <= refused <= 2
            assert "failed" not in await states(pool)
            assert [e["event"] for e in logs].count("attestr.paused") == 1
            state = await runtime.syncer.gate.state()
            assert state["paused"] and "credits are exhausted" in state["reason"]
            record_id = companies[5][0]
            status = await pool.fetchrow(
                "SELECT sync_status, sync_error FROM companies WHERE airtable_id = $1", record_id
            )
            assert status["sync_status"] == "Waiting" and "credits are exhausted" in status["sync_error"]

            attestr.standin.persistent_failure = None  # credits topped up
            assert await runtime.syncer.gate.resume("test") == 7

            async def all_done() -> bool:
                return await states(pool) == {"succeeded": 10}

            await until(all_done)
    assert len(attestr.standin.calls) == 3 + refused + 7
    assert len(airtable.standin.records("Contacts")) == 20


async def test_the_probe_lets_one_job_through_and_its_success_resumes_the_others(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    companies = many_companies(airtable, attestr, 5)
    attestr.standin.persistent_failure = 4016  # bad credentials
    async with running_engine(pool, airtable, attestr, **FAST, ATTESTR_PROBE_INTERVAL_S="1"):
        for record_id, cin in companies:
            await jobs.enqueue(pool, record_id, cin)

        async def paused_and_waiting() -> bool:
            return await pool.fetchval("SELECT count(*) FROM jobs WHERE waiting_on = 'attestr'") == 5

        await until(paused_and_waiting)
        before = len(attestr.standin.calls)  # the calls already in flight when the pause began
        await asyncio.sleep(2.5)  # still refused: one probe a second, not one call per job
        probes = len(attestr.standin.calls) - before
        assert 1 <= probes <= 3
        assert "failed" not in await states(pool)
        refused = len(attestr.standin.calls)
        attestr.standin.persistent_failure = None  # the token was fixed

        async def all_done() -> bool:
            return await states(pool) == {"succeeded": 5}

        await until(all_done)
    # After the refused calls nothing was called until the probe; the probe's success woke the
    # others: one call per company, no more.
    assert len(attestr.standin.calls) == refused + 5


async def test_the_daily_call_limit_pauses_until_the_reset(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    companies = many_companies(airtable, attestr, 4)
    async with running_engine(
        pool, airtable, attestr, **FAST, ATTESTR_DAILY_CALL_LIMIT="2", WORKER_CONCURRENCY="1"
    ) as runtime:
        for record_id, cin in companies:
            await jobs.enqueue(pool, record_id, cin)

        async def two_done_two_waiting() -> bool:
            found = await states(pool)
            return found.get("succeeded") == 2 and found.get("queued") == 2

        await until(two_done_two_waiting)
        state = await runtime.syncer.gate.state()
    assert len(attestr.standin.calls) == 2
    assert state["paused"] and "ATTESTR_DAILY_CALL_LIMIT" in state["reason"]
    assert state["resume_at"] is not None and state["calls_today"] == 2
    waiting = await jobs.list_jobs(pool, "queued")
    assert all("ATTESTR_DAILY_CALL_LIMIT" in (job.wait_reason or "") for job in waiting)


async def test_a_replayed_job_reuses_what_it_paid_for(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    ((record_id, cin),) = many_companies(airtable, attestr, 1)
    airtable.standin.refused_values.add(("Name", "Director 0-1"))
    async with running_engine(pool, airtable, attestr, **FAST):
        job, _ = await enqueued(pool, record_id, cin, force=True)

        async def failed() -> bool:
            return (await jobs.get(pool, job.id)).status == "failed"  # type: ignore[union-attr]

        await until(failed)
        airtable.standin.refused_values.clear()  # someone fixed the base
        replayed, deduplicated = await jobs.retry(pool, job.id)
        assert (replayed.id, replayed.status, replayed.attempts, deduplicated) == (job.id, "queued", 0, False)

        async def succeeded() -> bool:  # no listener here: the worker finds it by polling
            return (await jobs.get(pool, replayed.id)).status == "succeeded"  # type: ignore[union-attr]

        await until(succeeded)
    assert len(attestr.standin.calls) == 1  # the replay did not pay again, although forced
    assert len(airtable.standin.records("Contacts")) == 2


async def test_jobs_sharing_directors_count_each_row_they_created_once(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """Companies sharing directors, synced at once: each job's `airtable_created` and
    `contacts_new` count what that job did, so they add up to the rows and people created. The
    first writes to Contacts are refused with a 503, so that every job is stored before the
    pusher writes a row that several of them share."""
    shared = [
        {"indexId": f"{40000000 + k}", "fullName": f"Shared {k}", "mobileNumber": f"9600{k:06d}"}
        for k in range(2)
    ]
    record_ids = []
    for i in range(4):
        cin = f"U{20000 + i:05d}MH2018PTC{i:06d}"
        own = {"indexId": f"{41000000 + i}", "fullName": f"Own {i}", "mobileNumber": f"9500{i:06d}"}
        attestr.standin.companies[cin] = {
            "valid": True,
            "businessName": f"SHARED {i}",
            "contacts": [*shared[: 1 + i % 2], own],
        }
        record_ids.append(
            (airtable.standin.add_record("Companies", {"Company Name": f"Shared {i}", "CIN": cin}), cin)
        )
    airtable.standin.rate_limit = 1000
    attestr.standin.delay_s = 0.2
    airtable.standin.faults += [{"method": "PATCH", "path": "/Contacts", "status": 503}] * 2
    async with running_engine(pool, airtable, attestr, **FAST):
        stored = [await enqueued(pool, record_id, cin) for record_id, cin in record_ids]

        async def ended() -> bool:
            return all([(await jobs.get(pool, job.id)).finished for job, _ in stored])  # type: ignore[union-attr]

        await until(ended)
    results = [(await jobs.get(pool, job.id)).result for job, _ in stored]  # type: ignore[union-attr]
    rows = airtable.standin.records("Contacts")
    assert len(rows) == 6
    assert sum(r["airtable_created"] for r in results) == 6, results
    assert sum(r["contacts_new"] for r in results) == 6, results
    # Every job saw its rows written: the shared ones count as updated for all but one job.
    assert [r["airtable_created"] + r["airtable_updated"] for r in results] == [2, 3, 2, 3], results
