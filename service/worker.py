"""The worker: claims jobs (`FOR UPDATE SKIP LOCKED`, a lease it keeps renewing), runs up to
WORKER_CONCURRENCY of them at once, and decides what a failure means for each.

Runs inside `contact-sync serve` (WORKER_IN_WEB=true, the default) or as `contact-sync worker`.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
from datetime import datetime, timedelta, timezone

import asyncpg
import structlog

from . import jobs, queries
from .airtable import AirtableError, AirtableNotConfigured
from .attestr import Action, AttestrError
from .config import Settings
from .jobs import Job
from .sync import JobFailed, LeaseLost, Syncer
from .wakeup import Wakeup

log = structlog.get_logger(__name__)

PAUSE_RETRY_S = 300.0  # a paused Attestr (credits, credentials, access) is tried again after this


def _next_ist_midnight(now: datetime) -> datetime:
    """Attestr's daily limits reset at midnight in India (UTC+05:30)."""
    ist = timezone(timedelta(hours=5, minutes=30))
    local = now.astimezone(ist)
    return (local + timedelta(days=1)).replace(hour=0, minute=5, second=0, microsecond=0)


class Worker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        syncer: Syncer,
        *,
        poll_s: float = 1.0,
        retry_base_s: float = 2.0,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.syncer = syncer
        self.poll_s = poll_s
        self.retry_base_s = retry_base_s
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wakeup = Wakeup()
        self._running: dict[int, asyncio.Task[None]] = {}

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        renewer = asyncio.create_task(self._renew_leases(stop))
        try:
            while not stop.is_set():
                claimed = await self._claim()
                if claimed and len(self._running) < self.settings.worker_concurrency:
                    continue  # more may be due
                await self._wakeup.wait(stop, self.poll_s)
        finally:
            renewer.cancel()
            if self._running:
                # In-flight jobs finish; a job still going when the process is stopped keeps its
                # lease, which expires, and another worker takes it over.
                await asyncio.wait(self._running.values(), timeout=self.settings.job_lease_s / 2)

    async def _claim(self) -> int:
        free = self.settings.worker_concurrency - len(self._running)
        if free <= 0:
            return 0
        try:
            rows = await self.pool.fetch(queries.JOB_CLAIM, free, self.settings.job_lease_s, self.worker_id)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("worker.claim_failed", error=type(exc).__name__)
            return 0
        for row in rows:
            job = Job.from_row(row)
            task = asyncio.create_task(self._process(job))
            self._running[job.id] = task
            task.add_done_callback(lambda _t, job_id=job.id: self._finished(job_id))
        return len(rows)

    def _finished(self, job_id: int) -> None:
        self._running.pop(job_id, None)
        self._wakeup.set()  # a slot is free

    async def _renew_leases(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self.settings.job_lease_s / 3)
            if self._running:
                try:
                    await self.pool.execute(
                        queries.JOB_RENEW_LEASES,
                        list(self._running),
                        self.settings.job_lease_s,
                        self.worker_id,
                    )
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("worker.lease_renewal_failed", error=type(exc).__name__)

    async def _process(self, job: Job) -> None:
        with structlog.contextvars.bound_contextvars(
            job_id=str(job.id), record_id=job.record_id, cin=job.cin
        ):
            log.info("job.started", attempt=job.attempts, source=job.source, force=job.force)
            try:
                await self.syncer.run(job, self.worker_id)
            except LeaseLost:
                log.warning("job.lease_lost")
            except JobFailed as exc:
                await self._fail(job, str(exc))
            except AttestrError as exc:
                await self._attestr_failed(job, exc)
            except AirtableNotConfigured as exc:
                await self._wait(job, str(exc), datetime.now(timezone.utc) + timedelta(seconds=PAUSE_RETRY_S))
            except (AirtableError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                await self._retry(job, _describe(exc))
            except Exception as exc:
                log.exception("job.crashed")
                await self._retry(job, f"Internal error ({type(exc).__name__}); see the service log")

    async def _attestr_failed(self, job: Job, exc: AttestrError) -> None:
        now = datetime.now(timezone.utc)
        if exc.action is Action.FAIL:
            await self._fail(job, exc.message)
        elif exc.action is Action.PAUSE:
            log.warning("attestr.paused", reason=exc.message, code=exc.code)
            await self._wait(job, exc.message, now + timedelta(seconds=PAUSE_RETRY_S))
        elif exc.action is Action.WAIT_RESET:
            await self._wait(job, exc.message, _next_ist_midnight(now))
        elif exc.action is Action.RETRY_ONCE and job.attempts >= 2:
            await self._fail(job, exc.message)
        else:
            await self._retry(job, exc.message, soon=exc.action is Action.RETRY_SOON)

    async def _retry(self, job: Job, error: str, *, soon: bool = False) -> None:
        """Try again later with exponential backoff and jitter, or fail after the last attempt."""
        if job.attempts >= self.settings.job_max_attempts:
            await self._fail(job, f"{error} (gave up after {job.attempts} attempts)")
            return
        if soon:  # Attestr's per-second limit: a short pause is enough
            delay = random.uniform(1.0, 3.0)
        else:
            delay = min(600.0, self.retry_base_s * 2 ** (job.attempts - 1)) * random.uniform(0.5, 1.0)
        run_after = datetime.now(timezone.utc) + timedelta(seconds=delay)
        attempt = f"attempt {job.attempts + 1} of {self.settings.job_max_attempts}"
        reason = f"{error}; trying again at {run_after:%H:%M:%S} UTC ({attempt})"
        log.warning("job.retrying", error=error, attempt=job.attempts, retry_in_s=round(delay, 1))
        await self._requeue(job, reason, error, run_after, counts_as_attempt=True)

    async def _wait(self, job: Job, reason: str, until: datetime) -> None:
        """Not the job's fault (Attestr paused, credentials missing): wait without using an attempt."""
        text = f"{reason}; waiting until {until:%Y-%m-%d %H:%M} UTC"
        await self._requeue(job, text, reason, until, counts_as_attempt=False)

    async def _requeue(
        self, job: Job, reason: str, error: str, run_after: datetime, *, counts_as_attempt: bool
    ) -> None:
        status = await self.pool.fetchval(
            queries.JOB_REQUEUE,
            job.id,
            reason,
            run_after,
            error,
            job.record_id,
            0 if counts_as_attempt else 1,
            self.worker_id,
        )
        if status == "queued":
            await jobs.set_company_status(self.pool, job.record_id, "Waiting", reason)
        elif status == "failed":  # a newer job for the company carries on
            log.info("job.superseded")

    async def _fail(self, job: Job, error: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(queries.JOB_FAIL, job.id, error, None)
            await jobs.set_company_status(conn, job.record_id, "Failed", error)
        log.error("job.failed", error=error, attempts=job.attempts)


def _describe(exc: Exception) -> str:
    if isinstance(exc, AirtableError):
        return exc.message
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError | OSError):
        return f"The database could not be reached ({type(exc).__name__})"
    return str(exc)
