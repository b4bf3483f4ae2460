"""The worker's reading of failures (the design's Attestr table), with the real queue and the
stand-ins: retry with backoff, fail at once, or wait without using an attempt."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable

import asyncpg
from structlog.testing import capture_logs

from service.engine import jobs
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from tests.command_line import contact_sync
from tests.conftest import Running
from tests.flow import enqueued, running_engine

CIN = "U72200KA2015PTC081234"


async def until(
    pool: asyncpg.Pool, job_id: int, done: Callable[[jobs.Job], bool], timeout: float = 20
) -> jobs.Job:
    deadline = time.monotonic() + timeout
    while True:
        job = await jobs.get(pool, job_id)
        assert job is not None
        if done(job):
            return job
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.05)


async def company_status(pool: asyncpg.Pool, record_id: str) -> tuple[str, str | None]:
    row = await pool.fetchrow(
        "SELECT sync_status, sync_error FROM companies WHERE airtable_id = $1", record_id
    )
    return row["sync_status"], row["sync_error"]


async def test_transient_errors_are_retried_until_the_answer_comes(
    db_url: str, pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    record = airtable.standin.add_record("Companies", {"Company Name": "Nilgiri", "CIN": CIN})
    attestr.standin.fail_next(CIN, 5030, 5000)
    with capture_logs() as logs:
        async with running_engine(pool, airtable, attestr):
            job, _ = await enqueued(pool, record, CIN)
            job = await until(pool, job.id, lambda j: j.finished)
    assert job.status == "succeeded" and job.attempts == 3
    assert [e["event"] for e in logs].count("job.retrying") == 2
    outcomes = [r["outcome"] for r in await pool.fetch("SELECT outcome FROM attestr_answers ORDER BY id")]
    assert outcomes == ["error", "error", "synced"]  # every paid call is on record
    # What an operator reads: each attempt and how it ended, not only the last error.
    shown = json.loads(
        contact_sync("jobs", "show", str(job.id), env={**os.environ, "DATABASE_URL": db_url}).stdout
    )
    history = shown["attempt_history"]
    assert [(a["attempt"], a["outcome"]) for a in history] == [(1, "retry"), (2, "retry"), (3, "synced")]
    assert all(a["error"] for a in history[:2]) and history[2]["error"] is None
    assert all(a["started_at"] <= a["ended_at"] for a in history)


async def test_a_malformed_request_fails_at_once(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    record = airtable.standin.add_record("Companies", {"Company Name": "Nilgiri", "CIN": CIN})
    attestr.standin.fail_next(CIN, 4001)
    async with running_engine(pool, airtable, attestr):
        job, _ = await enqueued(pool, record, CIN)
        job = await until(pool, job.id, lambda j: j.finished)
    assert (job.status, job.attempts) == ("failed", 1)
    assert "malformed" in (job.last_error or "")
    assert await company_status(pool, record) == ("Failed", job.last_error)


async def test_could_not_be_processed_fails_after_one_retry(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    record = airtable.standin.add_record("Companies", {"Company Name": "Nilgiri", "CIN": CIN})
    attestr.standin.fail_next(CIN, 5001, 5001, 5001)
    async with running_engine(pool, airtable, attestr):
        job, _ = await enqueued(pool, record, CIN)
        job = await until(pool, job.id, lambda j: j.finished)
    assert (job.status, job.attempts) == ("failed", 2)
    assert attestr.standin.calls_for(CIN) == 2


async def test_attempts_run_out(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    record = airtable.standin.add_record("Companies", {"Company Name": "Nilgiri", "CIN": CIN})
    attestr.standin.fail_next(CIN, *[5030] * 10)
    async with running_engine(pool, airtable, attestr, JOB_MAX_ATTEMPTS="3"):
        job, _ = await enqueued(pool, record, CIN)
        job = await until(pool, job.id, lambda j: j.finished)
    assert (job.status, job.attempts) == ("failed", 3)
    assert "gave up after 3 attempts" in (job.last_error or "")


async def test_exhausted_credits_make_jobs_wait_not_fail(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    record = airtable.standin.add_record("Companies", {"Company Name": "Nilgiri", "CIN": CIN})
    attestr.standin.fail_next(CIN, 4005)
    with capture_logs() as logs:
        async with running_engine(pool, airtable, attestr):
            job, _ = await enqueued(pool, record, CIN)
            job = await until(pool, job.id, lambda j: j.wait_reason is not None)
    assert (job.status, job.attempts) == ("queued", 0)
    assert "credits are exhausted" in (job.wait_reason or "")
    status, reason = await company_status(pool, record)
    assert status == "Waiting" and "credits are exhausted" in (reason or "")
    assert any(e["event"] == "attestr.paused" for e in logs)


async def test_a_missing_attestr_token_waits_naming_the_variable(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    record = airtable.standin.add_record("Companies", {"Company Name": "Nilgiri", "CIN": CIN})
    async with running_engine(pool, airtable, attestr, ATTESTR_API_KEY=""):
        job, _ = await enqueued(pool, record, CIN)
        job = await until(pool, job.id, lambda j: j.wait_reason is not None)
    assert job.status == "queued" and "ATTESTR_API_KEY" in (job.wait_reason or "")
    assert attestr.standin.calls == []


async def test_per_second_limits_retry_soon(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    record = airtable.standin.add_record("Companies", {"Company Name": "Nilgiri", "CIN": CIN})
    attestr.standin.fail_next(CIN, 4291)
    async with running_engine(pool, airtable, attestr):
        job, _ = await enqueued(pool, record, CIN)
        job = await until(pool, job.id, lambda j: j.wait_reason is not None)
        delay = await pool.fetchval(
            "SELECT EXTRACT(epoch FROM run_after - updated_at) FROM jobs WHERE id = $1", job.id
        )
    assert 0.9 <= delay <= 3.1
