"""The Attestr answer a job syncs: one its earlier try paid for, one stored that it may take,
or one call paid for now, under the CIN's lock, and kept (the lookup as sent and what came back)
while the job stores the people."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import asyncpg
import structlog

from service import metrics, queries
from service.attestr import consent
from service.attestr.client import AttestrAnswer, AttestrClient, parse_answer
from service.attestr.consent import Consent
from service.attestr.errors import AttestrError, AttestrNotConfigured
from service.attestr.gate import AttestrGate
from service.config import Settings
from service.database import DATABASE_ERRORS
from service.engine.company_record import CompanyRecord
from service.engine.job_errors import JobFailed
from service.engine.jobs import Job
from service.people.dedup import answer_to_store

log = structlog.get_logger(__name__)

UNSTORED_KEPT_S = 3600.0


class Answers:
    def __init__(
        self, pool: asyncpg.Pool, settings: Settings, attestr: AttestrClient, record: CompanyRecord
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.attestr = attestr
        self.record = record
        self.gate = AttestrGate(pool, settings)
        # Answers paid for whose storing failed (the database went away right after the call),
        # by job id, with when and the consent they carried: the job's next try in this process
        # uses them instead of paying.
        self._unstored: dict[int, tuple[float, AttestrAnswer, Consent | None]] = {}

    def held_unstored(self, job_id: int) -> bool:
        """Whether this process holds an answer the job paid for and could not store."""
        return job_id in self._unstored

    async def _stored(
        self, conn: asyncpg.Connection | asyncpg.Pool, cin: str, job: Job
    ) -> tuple[asyncpg.Record, bool | None] | None:
        """A stored answer this job takes instead of paying, with whether it joins a refresh
        (None: not a refresh). Unforced: one fresh within the cache TTLs. Forced: the first
        refresh of a CIN always pays (a person asked to fetch again); another within
        REFRESH_MIN_INTERVAL_S of a paid refresh joins that refresh's answer. JobFailed when
        another job's paid answer for the CIN came unreadable within that interval."""
        interval = self.settings.refresh_min_interval_s
        if broken := await conn.fetchval(queries.ANSWER_UNREADABLE_RECENTLY, cin, interval, job.id):
            raise JobFailed(
                f"Attestr's answer for {cin} at {broken:%Y-%m-%d %H:%M} UTC could not be read, and it was "
                "paid for: asked again within REFRESH_MIN_INTERVAL_S it would be paid again. "
                "`contact-sync jobs retry ID` of that company's failed job asks once more"
            )
        if job.force:
            row = await conn.fetchrow(queries.ANSWER_REFRESHED, cin, interval)
            return (row, True) if row is not None else None
        row = await conn.fetchrow(
            queries.ANSWER_CACHED,
            cin,
            self.settings.attestr_cache_ttl_days,
            self.settings.attestr_no_data_ttl_days,
        )
        return (row, None) if row is not None else None

    async def of_job(
        self,
        cin: str,
        job: Job,
        row: asyncpg.Record | None,
        *,
        confirm: bool,
        held: contextlib.AsyncExitStack,
    ) -> tuple[AttestrAnswer, bool, bool | None, asyncio.Task[None] | None]:
        """The answer this job already paid for (`row`, ANSWER_OF_JOB), else a stored one it may
        take (`_stored`), else a paid call. Then: True when this call was paid for now; for a
        refresh, whether it joined an earlier refresh's answer (else None); the keeping of a call
        paid for now, under way (`_stored_or_paid`). `confirm`: the company record is read first
        (`CompanyRecord.confirmed`); the answer is for the CIN it holds."""
        refresh = False if job.force else None
        if row is not None:
            log.info("attestr.cached", outcome=row["outcome"], called_at=row["called_at"].isoformat())
            answer = parse_answer(cin, json.loads(row["answer"]), self.settings.attestr_max_contacts)
            return answer, False, refresh, None
        if job.id in self._unstored:  # paid for at the last try, not stored: stored now, not paid again
            _at, answer, used = self._unstored[job.id]
            async with self.pool.acquire() as conn:
                await self._record_call(conn, job.id, answer.cin, used, answer)
            del self._unstored[job.id]
            log.info("attestr.fetched", outcome=answer.outcome, contacts=len(answer.contacts), probe=False)
            return answer, True, refresh, None
        # The record is read while the CIN's lock is taken and its stored answers are checked:
        # nothing is used or sent before the read confirms the CIN.
        reading = asyncio.create_task(self.record.confirmed(job.record_id, cin)) if confirm else None
        try:
            return await self._stored_or_paid(cin, job, reading, held)
        finally:
            if reading is not None and not reading.done():  # the checks' own failure came first
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)
            elif reading is not None and not reading.cancelled():
                reading.exception()  # retrieved, whether or not it was raised here

    async def _stored_or_paid(
        self, cin: str, job: Job, reading: asyncio.Task[str] | None, held: contextlib.AsyncExitStack
    ) -> tuple[AttestrAnswer, bool, bool | None, asyncio.Task[None] | None]:
        """`of_job` past an answer of the job's own: under the CIN's lock, a stored answer it may
        take, else one call counted against the day and paid for. `reading`: the record's read,
        awaited before either is used, its refusal first among failures (a CIN changed since
        starts again with that CIN, the call counted given back). A paid call is kept (its lookup
        and answer stored) while the job goes on; the lock moves to `held`, released once that
        is done: another job for the CIN then finds the answer stored."""
        refresh = False if job.force else None
        if not self.attestr.api_key or (missing := consent.missing(self.settings)):
            if reading is not None:
                await reading  # the record's own failure comes first
            if not self.attestr.api_key:
                raise AttestrNotConfigured("ATTESTR_API_KEY is not set: add the Attestr auth token")
            raise AttestrNotConfigured(
                f"{' and '.join(missing)} not set: Attestr V3 needs a consent for every lookup "
                "(docs/how-to/move-to-attestr-v3.md)"
            )
        async with contextlib.AsyncExitStack() as locked:
            conn = await locked.enter_async_context(self.gate.cin_lock(cin))
            probe: bool | None = None
            checked: Exception | None = None
            try:
                stored = await self._stored(conn, cin, job)
                if stored is None:
                    probe = await self.gate.take_call(conn)
            except Exception as exc:  # raised once the read is in: the record's failure comes first
                checked = exc
            try:
                now = cin if reading is None else await reading
            except BaseException:
                if probe is not None:  # counted, never sent
                    await self.gate.uncount(conn)
                raise
            if now != cin:
                if probe is not None:
                    await self.gate.uncount(conn)
            elif checked is not None:
                raise checked
            elif stored:
                row, joined = stored
                called_at = row["called_at"].isoformat()
                if joined:
                    log.info(
                        "attestr.refresh_joined",
                        called_at=called_at,
                        interval_s=self.settings.refresh_min_interval_s,
                        hint="this CIN was refreshed within REFRESH_MIN_INTERVAL_S: that answer is used",
                    )
                else:
                    log.info("attestr.cached", outcome=row["outcome"], called_at=called_at)
                answer = parse_answer(cin, json.loads(row["answer"]), self.settings.attestr_max_contacts)
                return answer, False, joined, None
            else:
                answer, used = await self._paid(conn, cin, job)
                kept = asyncio.create_task(self._keep(conn, job.id, cin, used, answer))
                await held.enter_async_context(locked.pop_all())
                held.push_async_callback(asyncio.gather, kept, return_exceptions=True)  # before the release
                log.info(
                    "attestr.fetched", outcome=answer.outcome, contacts=len(answer.contacts), probe=probe
                )
                metrics.ATTESTR_CALLS.labels(answer.outcome).inc()
                if probe:
                    await self.gate.resume("the probe call succeeded")
                return answer, True, refresh, kept
        with structlog.contextvars.bound_contextvars(cin=now):
            return await self._stored_or_paid(now, job, None, held)

    async def _paid(
        self, conn: asyncpg.Connection, cin: str, job: Job
    ) -> tuple[AttestrAnswer, Consent | None]:
        """One call to Attestr (counted already), with the consent it carried; a refusal is kept
        here (`_record_call`), an answer by the caller (`_keep`)."""
        used, sent = None, False
        try:
            used = await self._consent(cin, job.id)
            sent = True
            answer = await self.attestr.fetch(
                cin,
                used,
                consent_named=consent.described(used),
                consent_fix=consent.what_to_do(self.settings),
            )
        except AttestrError as exc:
            _count_error(exc)
            if not exc.paid:  # refused, so not billed: the day's cap does not count it
                await self.gate.uncount(conn)
            if sent:  # a refused registration sent no lookup
                await self._record_call(conn, job.id, cin, used, exc)
            raise
        return answer, used

    async def _keep(
        self, conn: asyncpg.Connection, job_id: int, cin: str, used: Consent | None, answer: AttestrAnswer
    ) -> None:
        """Keep an answer just paid for (`_record_call`); if the database cannot take it, it is
        held for the job's next try here (`_keep_unstored`), which must not pay again."""
        try:
            await self._record_call(conn, job_id, cin, used, answer)
        except DATABASE_ERRORS:
            self._keep_unstored(job_id, answer, used)
            raise

    async def _consent(self, cin: str, job_id: int) -> Consent | None:
        """The consent this lookup carries: none on V2, the reusable one configured, or one
        registered now for this lookup alone (consent.py)."""
        if self.settings.attestr_api_version != "v3":
            return None
        if not consent.registers_per_lookup(self.settings):
            return Consent(self.settings.attestr_consent_id or "", None, "reusable")
        registered = await self.attestr.register_consent(
            consent.registration(self.settings, cin, job_id),
            consent_fix=consent.what_to_do(self.settings),
        )
        log.info("attestr.consent_registered", consent_id=registered.id, number=registered.number)
        return registered

    async def _record_call(
        self,
        conn: asyncpg.Connection,
        job_id: int,
        cin: str,
        used: Consent | None,
        came: AttestrAnswer | AttestrError,
    ) -> None:
        """Keep one Attestr call in one statement: the lookup as sent, with the consent it carried
        (attestr_lookups), and what came back (attestr_answers: the cache and the audit)."""
        if isinstance(came, AttestrError):
            outcome, http_status, code, answer = "error", came.http_status, came.code, None
        else:
            # Without anyone forgotten; the contacts as read already, when none was left out.
            read = came.contacts if not came.left_out else None
            raw = await answer_to_store(conn, came.raw, read)
            outcome, http_status, code, answer = came.outcome, 200, None, json.dumps(raw)
        await conn.execute(
            *queries.CALL_RECORD.bind(
                job_id=job_id,
                cin=cin,
                api_version=self.settings.attestr_api_version,
                consent_id=used.id if used else None,
                consent_number=used.number if used else None,
                consent_kind=used.kind if used else None,
                outcome=outcome,
                http_status=http_status,
                error_code=code,
                attestr_request_id=came.request_id,
                answer=answer,
            )
        )

    def _keep_unstored(self, job_id: int, answer: AttestrAnswer, used: Consent | None) -> None:
        """Hold a paid answer the database could not take, for the job's next try here (an hour
        at most: a job another process took over pays again there)."""
        now = time.monotonic()
        self._unstored = {k: v for k, v in self._unstored.items() if now - v[0] < UNSTORED_KEPT_S}
        self._unstored[job_id] = (now, answer, used)


def _count_error(exc: AttestrError) -> None:
    metrics.ATTESTR_CALLS.labels("error").inc()
    metrics.ATTESTR_ERRORS.labels(exc.code or f"http_{exc.http_status or 'none'}").inc()
