"""Jobs: one sync of one company. Stored in PostgreSQL before any answer is given.

States: `queued` (also while waiting for a retry; `wait_reason` says why), `running` (a worker
holds the lease), `pushing` (database work done, rows waiting for the pusher), `succeeded`,
`failed`. The state changes are single SQL statements in `queries.py`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from service import metrics, queries

log = structlog.get_logger(__name__)

STATES = ("queued", "running", "pushing", "succeeded", "failed")
FINISHED = ("succeeded", "failed")


@dataclass(frozen=True)
class Job:
    id: int
    record_id: str
    cin: str | None
    status: str
    wait_reason: str | None
    force: bool
    max_contacts: int | None
    source: str
    attempts: int
    last_error: str | None
    result: dict[str, Any] | None
    person_ids: list[int]
    created_at: datetime
    updated_at: datetime
    paid: bool = False  # claimed with an answer an earlier try paid for (JOB_CLAIM)

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Job:
        result = row["result"]
        return cls(
            id=row["id"],
            record_id=row["record_id"],
            cin=row["cin"],
            status=row["status"],
            wait_reason=row["wait_reason"],
            force=row["force"],
            max_contacts=row["max_contacts"],
            source=row["source"],
            attempts=row["attempts"],
            last_error=row["last_error"],
            result=json.loads(result) if isinstance(result, str) else result,
            person_ids=list(row["person_ids"] or []),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            paid=bool(row.get("paid")),
        )

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def document(self) -> dict[str, Any]:
        """The job as `GET /jobs/{id}` shows it."""
        return {
            "id": str(self.id),
            "status": self.status,
            "wait_reason": self.wait_reason,
            "record_id": self.record_id,
            "cin": self.cin,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "result": self.result,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


async def enqueue(
    conn: asyncpg.Connection | asyncpg.Pool,
    record_id: str,
    cin: str | None,
    *,
    force: bool = False,
    max_contacts: int | None = None,
    source: str = "webhook",
) -> tuple[int, bool]:
    """Store a job for the company (or reuse its queued one): the job's id, and True when reused."""
    row = await conn.fetchrow(queries.JOB_ENQUEUE, record_id, cin, force, max_contacts, source)
    return row["id"], row["deduplicated"]


async def get(conn: asyncpg.Connection | asyncpg.Pool, job_id: int) -> Job | None:
    row = await conn.fetchrow(queries.JOB_GET, job_id)
    return Job.from_row(row) if row else None


async def list_jobs(
    conn: asyncpg.Connection | asyncpg.Pool, status: str | None, limit: int = 100
) -> list[Job]:
    return [Job.from_row(r) for r in await conn.fetch(queries.JOB_LIST, status, limit)]


# A job's state in a sentence: "Job 5 succeeded", "Job 6 is still queued".
_SAID = {
    "queued": "is still queued",
    "running": "is running now",
    "pushing": "is having its rows written to Airtable",
    "succeeded": "succeeded",
    "failed": "failed",
}


async def company_names(conn: asyncpg.Connection | asyncpg.Pool, record_ids: list[str]) -> dict[str, str]:
    """The companies' names as Attestr gave them, by Airtable record id (none before a sync)."""
    return {r["airtable_id"]: r["name"] for r in await conn.fetch(queries.COMPANY_NAMES, record_ids)}


class JobNotFound(Exception):
    pass


class JobNotRetryable(Exception):
    pass


async def retry(pool: asyncpg.Pool, job_id: int) -> tuple[Job, bool]:
    """Replay a failed job (attempts reset; it reuses what it already paid Attestr for). When the
    company already has a queued job, that one is returned instead, with True."""
    row = await pool.fetchrow(queries.JOB_RETRY, job_id)
    if row is not None:
        job = Job.from_row(row)
        await set_company_status(pool, job.record_id, "Queued")
        log.info("job.replayed", job_id=str(job.id), record_id=job.record_id, cin=job.cin)
        return job, False
    job = await get(pool, job_id)
    if job is None:
        raise JobNotFound(f"No job {job_id}")
    if job.status != "failed":
        raise JobNotRetryable(f"Job {job_id} {_SAID[job.status]}: only a failed job can be retried")
    queued = await pool.fetchrow(queries.JOB_QUEUED_FOR_COMPANY, job.record_id)
    return Job.from_row(queued), True


async def set_company_status(
    conn: asyncpg.Connection | asyncpg.Pool,
    record_id: str,
    status: str,
    error: str | None = None,
    *,
    synced_at: datetime | None = None,
    contacts_found: int | None = None,
) -> None:
    await conn.execute(queries.COMPANY_SET_STATUS, record_id, status, error, synced_at, contacts_found)


async def set_company_synced(
    conn: asyncpg.Connection, record_id: str, status: str, note: str | None, synced_at: datetime
) -> None:
    """A sync's end on its company ("Synced", "No Data"), with its contacts in Airtable counted
    in the same statement (Contacts Found)."""
    await conn.execute(queries.COMPANY_SET_STATUS_COUNTED, record_id, status, note, synced_at)


def left_out_note(left_out: int) -> str | None:
    """What a synced company's status says when Attestr listed more contacts than were read."""
    if not left_out:
        return None
    return (
        f"{left_out} more contact(s) listed by Attestr were left out: at most ATTESTR_MAX_CONTACTS "
        "(or the request's max_contacts) are read; docs/reference/settings.md says how to raise it"
    )


async def complete_pushed_jobs(pool: asyncpg.Pool) -> list[Job]:
    """Finish every job whose rows are all in Airtable, and say so on its company."""
    return (await complete_and_claim(pool, None))[0]


async def complete_and_claim(
    pool: asyncpg.Pool, claim: Callable[[asyncpg.Connection], Awaitable[list[asyncpg.Record]]] | None
) -> tuple[list[Job], list[asyncpg.Record]]:
    """`complete_pushed_jobs`, with the companies' statuses then claimed in the same transaction
    when some job ended (`claim`, the pusher's): the jobs ended, and the rows claimed."""
    claimed: list[asyncpg.Record] = []
    async with pool.acquire() as conn, conn.transaction():
        finished = [Job.from_row(r) for r in await conn.fetch(queries.JOBS_COMPLETE)]
        for job in finished:
            if job.status == "succeeded":
                note = left_out_note((job.result or {}).get("contacts_left_out", 0))
                await set_company_synced(conn, job.record_id, "Synced", note, job.updated_at)
            else:
                await set_company_status(conn, job.record_id, "Failed", job.last_error)
        if finished and claim is not None:
            claimed = await claim(conn)
    for job in finished:
        metrics.job_ended(job.status, job.created_at)
        context = {"job_id": str(job.id), "record_id": job.record_id, "cin": job.cin}
        if job.status == "succeeded":
            log.info("job.succeeded", **context, **(job.result or {}))
        else:
            log.error("job.failed", **context, error=job.last_error)
    return finished, claimed


# How stale this process's view of the queue's length may be.
QUEUE_RECOUNT_S = 1.0


class QueueCap:
    """Whether the queue is full, recounted at most once a second (a count of a long queue is not
    free, and a second's overshoot is harmless)."""

    def __init__(self, pool: asyncpg.Pool, max_jobs: int) -> None:
        self.pool = pool
        self.max_jobs = max_jobs
        self._queued = 0
        self._counted_at = -math.inf
        self.alerted_at = -math.inf  # when its being full was last alerted (web/limits.py)

    async def full(self) -> bool:
        if time.monotonic() - self._counted_at > QUEUE_RECOUNT_S:
            self._queued = await self.pool.fetchval(queries.JOBS_QUEUED_COUNT, self.max_jobs)
            self._counted_at = time.monotonic()
        return self._queued >= self.max_jobs
