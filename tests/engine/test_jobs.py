"""The job queue's rules, in SQL: one queued job per company, SKIP LOCKED claims, one running
job per company, leases that expire."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import asyncpg

from service import queries
from service.engine import jobs
from tests.flow import enqueued

A, B = "recAAAAAAAAAAAAAA", "recBBBBBBBBBBBBBB"


async def claim(pool: asyncpg.Pool, n: int = 10, worker: str = "w1", lease_s: float = 60) -> list[jobs.Job]:
    return [jobs.Job.from_row(r) for r in await pool.fetch(queries.JOB_CLAIM, n, lease_s, worker)]


async def test_a_queued_job_is_reused_and_takes_the_newer_cin(pool: asyncpg.Pool) -> None:
    first, dedup1 = await enqueued(pool, A, "U72200KA2015PTC081234")
    second, dedup2 = await enqueued(pool, A, "U51909MH2018PTC309876")
    third, dedup3 = await enqueued(pool, A, None, force=True)
    assert (dedup1, dedup2, dedup3) == (False, True, True)
    assert first.id == second.id == third.id
    assert (third.cin, third.force) == ("U51909MH2018PTC309876", True)
    assert await pool.fetchval("SELECT sync_status FROM companies WHERE airtable_id = $1", A) == "Queued"
    assert await pool.fetchval("SELECT push_version FROM companies WHERE airtable_id = $1", A) == 1


async def test_a_running_job_is_not_interrupted_a_new_one_waits_behind_it(pool: asyncpg.Pool) -> None:
    running, _ = await enqueued(pool, A, None)
    assert [j.id for j in await claim(pool)] == [running.id]
    behind, deduplicated = await enqueued(pool, A, None)
    assert not deduplicated and behind.id != running.id
    other, _ = await enqueued(pool, B, None)
    assert [j.id for j in await claim(pool, worker="w2")] == [other.id]  # A's second job waits
    await pool.execute("UPDATE jobs SET status = 'succeeded' WHERE id = $1", running.id)
    assert [j.id for j in await claim(pool, worker="w2")] == [behind.id]


async def test_concurrent_claims_never_share_a_job(pool: asyncpg.Pool) -> None:
    for i in range(40):
        await jobs.enqueue(pool, f"rec{i:014d}", None)
    claimed = await asyncio.gather(*(claim(pool, 7, worker=f"w{i}") for i in range(8)))
    ids = [j.id for batch in claimed for j in batch]
    assert len(ids) == len(set(ids)) == 40


async def test_an_expired_lease_is_claimed_again(pool: asyncpg.Pool) -> None:
    job, _ = await enqueued(pool, A, None)
    (first,) = await claim(pool, lease_s=0.05)
    assert first.id == job.id
    await asyncio.sleep(0.1)
    (again,) = await claim(pool, worker="w2")
    assert again.id == job.id and again.attempts == 2
    stored = queries.JOB_STORED.bind(
        job_id=job.id, status="pushing", result="{}", person_ids=[], cin=None, worker_id="w1"
    )
    assert await pool.execute(*stored) == "UPDATE 0"


async def test_a_retry_behind_a_newer_queued_job_hands_over_to_it(pool: asyncpg.Pool) -> None:
    job, _ = await enqueued(pool, A, None)
    await claim(pool)
    newer, _ = await enqueued(pool, A, None)
    later = datetime.now(timezone.utc) + timedelta(minutes=5)
    requeue = queries.JOB_REQUEUE.bind(
        job_id=job.id,
        reason="waiting",
        run_after=later,
        error="error",
        record_id=A,
        attempts_back=0,
        worker_id="w1",
        waiting_on=None,
    )
    status = await pool.fetchval(*requeue)
    assert status == "failed"
    assert (await jobs.get(pool, newer.id)).status == "queued"  # type: ignore[union-attr]
    assert await pool.fetchval("SELECT run_after >= $2 FROM jobs WHERE id = $1", newer.id, later)


async def test_job_document_shape(pool: asyncpg.Pool) -> None:
    job, _ = await enqueued(pool, A, "U72200KA2015PTC081234")
    assert job.document().keys() == {
        "id",
        "status",
        "wait_reason",
        "record_id",
        "cin",
        "attempts",
        "last_error",
        "result",
        "created_at",
        "updated_at",
    }
    assert job.document()["id"] == str(job.id)


async def test_a_taken_over_job_and_the_job_queued_behind_it_never_run_together(pool: asyncpg.Pool) -> None:
    first, _ = await enqueued(pool, A, None)
    await claim(pool, lease_s=0.05)
    behind, _ = await enqueued(pool, A, None)
    await asyncio.sleep(0.1)  # the first job's worker died: its lease ran out
    assert [j.id for j in await claim(pool, worker="w2")] == [first.id]
    assert await claim(pool, worker="w3") == []
    await pool.execute("UPDATE jobs SET status = 'succeeded' WHERE id = $1", first.id)
    assert [j.id for j in await claim(pool, worker="w3")] == [behind.id]
