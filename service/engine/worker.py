"""The worker: claims jobs (`FOR UPDATE SKIP LOCKED`, a lease it keeps renewing), runs up to
WORKER_CONCURRENCY of them at once, and decides what a failure means for each.

Runs inside `contact-sync serve` (WORKER_IN_WEB=true, the default) or as `contact-sync worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import time
from datetime import datetime, timedelta, timezone

import asyncpg
import structlog

from service import metrics, queries
from service.alert_outbox import raise_alert
from service.config import Settings
from service.database import DATABASE_ERRORS
from service.engine import jobs
from service.engine.jobs import Job
from service.engine.outcomes import Intervals, Outcome, Then, decide
from service.engine.sync import Syncer
from service.wakeup import Wakeup

log = structlog.get_logger(__name__)

LIVENESS_CHECK_S = 2.0  # how often the liveness connection is checked while all is quiet


class Worker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        syncer: Syncer,
        *,
        poll_s: float = 1.0,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.syncer = syncer
        self.poll_s = poll_s
        self.retry_base_s = settings.job_retry_base_s
        self._intervals = Intervals(
            settings.attestr_probe_interval_s,
            settings.airtable_probe_interval_s,
            airtable_cooldown_s=settings.airtable_cooldown_s,
        )
        # Well inside the ~30 s a platform waits between SIGTERM and SIGKILL.
        self.grace_s = min(25.0, settings.job_lease_s / 2)
        self.worker_id = self._new_id()
        self._wakeup = Wakeup()
        self._running: dict[int, asyncio.Task[None]] = {}
        self._alive = asyncio.Event()  # this worker's liveness lock is held: it may claim jobs

    def _new_id(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}:{id(self):x}:{random.getrandbits(24):06x}"

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        try:  # the operator may have mended what paused Attestr by changing settings
            await self.syncer.gate.resume_if_reconfigured()
        except DATABASE_ERRORS as exc:
            log.warning("worker.resume_check_failed", error=type(exc).__name__)
        renewer = asyncio.create_task(self._renew_leases(stop))
        liveness = asyncio.create_task(self._hold_liveness(stop))
        try:
            while not stop.is_set():
                try:
                    more = await self._claim() if self._alive.is_set() else False
                except Exception:  # a bug must not stop the worker: log it and carry on
                    log.exception("worker.loop_error")
                    more = False
                if more and len(self._running) < self.settings.worker_concurrency:
                    continue  # more may be due, and places are free again
                await self._wakeup.wait(stop, self.poll_s)
        finally:
            renewer.cancel()
            await self._finish_or_release()
            await asyncio.gather(liveness, return_exceptions=True)

    async def _hold_liveness(self, stop: asyncio.Event) -> None:
        """Hold this worker's session advisory lock on a connection of its own for as long as it
        runs (migrations/014_worker_liveness.sql): if the process dies, PostgreSQL drops the lock
        with its connection and other workers take its jobs over within a poll. If the connection
        is lost while this process lives, its jobs may be taken over and it carries on under a
        new id once the database is back."""
        while not stop.is_set():
            lost = asyncio.Event()
            try:
                async with self.pool.acquire() as conn:
                    conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                    if not await conn.fetchval(queries.WORKER_LOCK, self.worker_id):
                        raise RuntimeError("a worker id is taken")  # cannot happen: ids are random
                    try:
                        await conn.execute(queries.WORKER_REGISTER, self.worker_id)
                        self._alive.set()
                        self._wakeup.set()
                        while not stop.is_set() and not lost.is_set():
                            with contextlib.suppress(TimeoutError):
                                await asyncio.wait_for(stop.wait(), LIVENESS_CHECK_S)
                            if not stop.is_set():
                                await conn.execute("SELECT 1")  # a dead connection shows here
                    finally:
                        if stop.is_set() and not lost.is_set():
                            await conn.execute(queries.WORKER_LEAVE, self.worker_id)
                            await conn.execute(queries.WORKER_UNLOCK, self.worker_id)
                if stop.is_set():
                    return
                log.warning("worker.liveness_lost", error="the connection closed", jobs=len(self._running))
            except (*DATABASE_ERRORS, RuntimeError) as exc:
                if stop.is_set():
                    return
                log.warning("worker.liveness_lost", error=type(exc).__name__, jobs=len(self._running))
            self._alive.clear()
            self._give_up_running_jobs()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), random.uniform(0.5, 1.5))

    def _give_up_running_jobs(self) -> None:
        """The liveness lock is gone: other workers may take these jobs over (their claim moves
        each job to their id, and every write of a job checks its id, so nothing more is written
        for them from here). This worker carries on under a new id. Its running jobs are not
        cancelled: one waiting on Attestr keeps the answer it paid for (`Syncer`), for whichever
        try of the job comes next in this process."""
        self.worker_id = self._new_id()

    async def _finish_or_release(self) -> None:
        """Stopping: in-flight jobs get a grace period to finish; the others are handed back
        (their lease ends at once) for another worker to take over. Nothing stays `running`."""
        if not self._running:
            return
        _done, pending = await asyncio.wait(list(self._running.values()), timeout=self.grace_s)
        if not pending:
            return
        ids = [job_id for job_id, task in self._running.items() if task in pending]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        try:
            await self.pool.execute(queries.JOB_RELEASE, ids, self.worker_id)
            log.info("worker.released", jobs=[str(i) for i in ids])
        except DATABASE_ERRORS as exc:
            # Their leases run out by themselves instead.
            log.warning("worker.release_failed", jobs=[str(i) for i in ids], error=type(exc).__name__)

    async def _claim(self) -> bool:
        """Claim as many due jobs as there are free places, each run in a task of its own. True
        when every place asked for was filled: more may be due (fewer came: none are due now)."""
        free = self.settings.worker_concurrency - len(self._running)
        if free <= 0:
            return False
        try:
            rows = await self.pool.fetch(queries.JOB_CLAIM, free, self.settings.job_lease_s, self.worker_id)
        except DATABASE_ERRORS as exc:
            log.warning("worker.claim_failed", error=type(exc).__name__)
            return False
        for row in rows:
            job = Job.from_row(row)
            task = asyncio.create_task(self._process(job))
            self._running[job.id] = task
            task.add_done_callback(lambda _t, job_id=job.id: self._finished(job_id))
        return len(rows) == free

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
                except DATABASE_ERRORS as exc:
                    log.warning("worker.lease_renewal_failed", error=type(exc).__name__)

    async def _process(self, job: Job) -> None:
        with structlog.contextvars.bound_contextvars(
            job_id=str(job.id), record_id=job.record_id, cin=job.cin
        ):
            log.info("job.started", attempt=job.attempts, source=job.source, force=job.force)
            try:
                await self._run(job)
            except DATABASE_ERRORS:
                await self._retry_when_the_database_is_back(job)
            except Exception:
                log.exception("job.crashed")  # its lease runs out and another worker takes it over

    async def _retry_when_the_database_is_back(self, job: Job) -> None:
        """The database went away mid-job, so even recording the failure failed: keep trying to
        put the job back in the queue, rather than leave it `running` until its lease runs out."""
        deadline = time.monotonic() + self.settings.job_lease_s
        delay = 0.5
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            try:
                await self._retry(job, "The database could not be reached")
                return
            except DATABASE_ERRORS:
                delay = min(delay * 2, 5.0)
        log.warning("job.left_to_lease", reason="the database stayed unreachable")

    async def _run(self, job: Job) -> None:
        started = datetime.now(timezone.utc)
        try:
            await self.syncer.run(job, self.worker_id)
        except Exception as exc:
            now = datetime.now(timezone.utc)
            outcome = decide(exc, job.attempts, self.settings.job_max_attempts, self._intervals, now)
            if outcome.unexpected:
                log.exception("job.error")
            await self._carry_out(job, outcome)
            ended, error = outcome.then.value, outcome.error  # fail, retry, retry soon, wait, nothing
        else:
            ended, error = "synced", None
        # Kept for `jobs show`; an attempt whose end could not be stored is only in the log.
        with contextlib.suppress(*DATABASE_ERRORS):
            await self.pool.execute(queries.JOB_ATTEMPT_ENDED, job.id, job.attempts, started, ended, error)

    async def _carry_out(self, job: Job, outcome: Outcome) -> None:
        """What `decide` said: fail, try again, or wait (starting Attestr's pause if it says so)."""
        if outcome.then is Then.NOTHING:
            log.warning("job.lease_lost")
        elif outcome.then is Then.FAIL:
            await self._fail(job, outcome.error, outcome.named)
        elif outcome.then is Then.WAIT:
            assert outcome.until is not None
            if pause := outcome.pause:
                await self.syncer.gate.pause(
                    pause.message, pause.code, pause.until, settings_fix=pause.settings_fix
                )
            await self._wait(
                job,
                outcome.error,
                outcome.until,
                outcome.waiting_on,
                mended_by_settings=outcome.mended_by_settings,
            )
        else:
            await self._retry(job, outcome.error, soon=outcome.then is Then.RETRY_SOON)

    async def _retry(self, job: Job, error: str, *, soon: bool = False) -> None:
        """Try again later with exponential backoff and jitter (an attempt is left: `decide`)."""
        if soon:  # Attestr's per-second limit: a short pause is enough
            delay = random.uniform(1.0, 3.0)
        else:
            delay = min(600.0, self.retry_base_s * 2 ** (job.attempts - 1)) * random.uniform(0.5, 1.0)
        run_after = datetime.now(timezone.utc) + timedelta(seconds=delay)
        attempt = f"attempt {job.attempts + 1} of {self.settings.job_max_attempts}"
        reason = f"{error}; trying again at {run_after:%H:%M:%S} UTC ({attempt})"
        log.warning("job.retrying", error=error, attempt=job.attempts, retry_in_s=round(delay, 1))
        await self._requeue(job, reason, error, run_after, counts_as_attempt=True)

    async def _wait(
        self,
        job: Job,
        reason: str,
        until: datetime,
        waiting_on: str | None = None,
        *,
        mended_by_settings: bool = False,
    ) -> None:
        """Not the job's fault (Attestr paused, credentials missing): wait without using an
        attempt. `waiting_on`: what wakes it ("attestr": a resume; "settings": a resume, or a
        process starting); `mended_by_settings`: the sentence says the settings must change."""
        at = f"{until.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"
        # An operator's pause has no end of its own ('infinity', read as the last datetime).
        if until.year == datetime.max.year:
            text = f"{reason}; waiting until it is resumed"
        elif mended_by_settings:
            text = (
                f"{reason}; then restart the service (or run `contact-sync attestr resume`). "
                f"Attestr is asked again at {at} in case it was mended there"
            )
        else:
            text = f"{reason}; waiting until {at}"
        await self._requeue(job, text, reason, until, counts_as_attempt=False, waiting_on=waiting_on)

    async def _requeue(
        self,
        job: Job,
        reason: str,
        error: str,
        run_after: datetime,
        *,
        counts_as_attempt: bool,
        waiting_on: str | None = None,
    ) -> None:
        status = await self.pool.fetchval(
            *queries.JOB_REQUEUE.bind(
                job_id=job.id,
                reason=reason,
                run_after=run_after,
                error=error,
                record_id=job.record_id,
                attempts_back=0 if counts_as_attempt else 1,
                worker_id=self.worker_id,
                waiting_on=waiting_on,
            )
        )
        if status == "queued":
            await jobs.set_company_status(self.pool, job.record_id, "Waiting", reason)
        elif status == "failed":  # a newer job for the company carries on
            log.info("job.superseded")

    async def _fail(self, job: Job, error: str, named: str | None = None) -> None:
        result = json.dumps({"outcome": named}) if named else None
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(queries.JOB_FAIL, job.id, error, result)
            await jobs.set_company_status(conn, job.record_id, "Failed", error)
        log.error("job.failed", error=error, attempts=job.attempts)
        metrics.job_ended("failed", job.created_at)
        if named == "company_deleted":  # a person deleted the company: nothing to mend or replay
            return
        names = await jobs.company_names(self.pool, [job.record_id])
        await raise_alert(
            self.pool,
            "job_failed",
            f"{names.get(job.record_id) or 'company ' + job.record_id} ({job.cin or 'no CIN'})",
            f"{error}. To replay it: `contact-sync jobs retry {job.id}`",
        )
