"""One job's work: the company's CIN, the Attestr answer (stored or paid for), the people stored.

Called by the worker for a claimed job. Its end is a single transaction that stores the people
and links, marks the rows Airtable must receive, and moves the job to `pushing`; the pusher
takes it from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import asyncpg
import structlog

from service import identifiers, metrics, queries
from service.airtable.client import Airtable
from service.airtable.errors import AirtableError, AirtablePaused, operator_fix
from service.airtable.pauses import AirtablePauses
from service.attestr import consent
from service.attestr.client import AttestrAnswer, AttestrClient, parse_answer
from service.attestr.consent import Consent
from service.attestr.errors import AttestrError, AttestrNotConfigured
from service.attestr.gate import AttestrGate
from service.config import Settings
from service.database import DATABASE_ERRORS, in_transaction
from service.engine import jobs
from service.engine.handoff import Handoff
from service.engine.jobs import Job
from service.engine.listener import notified_as
from service.people.companies import ensure_company
from service.people.dedup import CompanyContacts, UpsertOutcome, answer_to_store, upsert_people

log = structlog.get_logger(__name__)


class JobFailed(Exception):
    """A failure no retry can mend; the message is for the person who reads the company status.
    `outcome`: kept in the job's result (`company_deleted`), when the failure has a name."""

    def __init__(self, message: str, outcome: str | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome


class LeaseLost(Exception):
    """Another worker took the job over (this one was too slow to renew its lease)."""


UNSTORED_KEPT_S = 3600.0
# Triggers that read nothing in Airtable: the automation's webhook (its secret is readable by
# anyone who can open the base's automations) and the API. The native webhook's payloads come
# from Airtable, and reconciliation and backfill read the records themselves.
_RECORD_UNREAD = frozenset({"webhook", "manual", "contacts_fetch"})


class Syncer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        attestr: AttestrClient,
        airtable: Airtable,
        hand_off: Callable[[], Handoff] = Handoff,
        token: str = "",
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.attestr = attestr
        self.airtable = airtable
        self.hand_off = hand_off  # to this process's pusher: the stored rows go at once
        # Other processes' pushers are told by NOTIFY, this one's listener skipping it (`token`).
        self._push_payload = notified_as("push", token) if token else "push"
        self.gate = AttestrGate(pool, settings)
        self.pauses = AirtablePauses(pool, settings)
        # Answers paid for whose storing failed (the database went away right after the call),
        # by job id, with when and the consent they carried: the job's next try in this process
        # uses them instead of paying.
        self._unstored: dict[int, tuple[float, AttestrAnswer, Consent | None]] = {}
        self._naming: set[asyncio.Task[str]] = set()  # `_keep_name`

    async def run(self, job: Job, worker_id: str) -> None:
        """Sync the claimed `job` (its company already says Running: JOB_CLAIM)."""
        paid = await self.pool.fetchrow(queries.ANSWER_OF_JOB, job.id) if job.paid else None
        # A trigger that read nothing in Airtable has the record confirmed before any answer is
        # used or paid for (`_record_confirmed`); an answer an earlier try paid for is used as is.
        confirm = (
            bool(job.cin) and job.source in _RECORD_UNREAD and paid is None and job.id not in self._unstored
        )
        cin = job.cin or await self._cin_from_airtable(job.record_id)
        # A call just paid for is kept while the people are stored; the CIN's lock is held until
        # both are done (`_stored_or_paid`).
        async with contextlib.AsyncExitStack() as held:
            with structlog.contextvars.bound_contextvars(cin=cin):
                answer, called, joined, kept = await self._answer(cin, job, paid, confirm=confirm, held=held)
            handoff = self.hand_off()
            try:
                await self._store(job, worker_id, answer, called, joined, kept, handoff)
            finally:
                handoff.dropped()  # unless stored

    async def _store(
        self,
        job: Job,
        worker_id: str,
        answer: AttestrAnswer,
        called: bool,
        joined: bool | None,
        kept: asyncio.Task[None] | None,
        handoff: Handoff,
    ) -> None:
        """The answer's people and links stored, their rows marked for Airtable and the job moved
        to `pushing`, in one transaction committed only once the call it paid for is kept (`kept`);
        then handed to this process's pusher (`handoff`)."""
        cin = answer.cin  # the record's own, if it changed since the webhook
        with structlog.contextvars.bound_contextvars(cin=cin):
            if answer.outcome == "no_data":
                if kept is not None:
                    await kept
                await self._no_data(job, cin, answer, called, worker_id)
                handoff.stored(0)  # the company's status
                return
            contacts = answer.contacts[: job.max_contacts] if job.max_contacts else answer.contacts
            batch = CompanyContacts(0, contacts, replace_links=job.max_contacts is None, push_all=job.force)

            pending = [0]

            async def store(conn: asyncpg.Connection) -> UpsertOutcome:
                # The company's row (made with the job): its CIN and name are written with the job.
                batch.company_id = job.company_id or await ensure_company(conn, job.record_id, cin)
                (outcome,) = await upsert_people(conn, [batch])
                # Rows Airtable refused before are sent again with this sync.
                recorded = await conn.execute(
                    queries.JOB_ROWS_RECORD,
                    job.id,
                    outcome.person_ids,
                    outcome.person_ids + outcome.unlinked_ids,
                )
                # Rows still to send: a pusher ends the job once they are in (the people stay
                # locked until this commits, so none of them can be recorded as sent before).
                pending[0] = int(recorded.split()[-1])
                if pending[0]:  # the first request's rows, claimed here for the pusher
                    await handoff.claim(conn)
                if not handoff.claimed:  # claimed, this process sends them: no other is woken
                    await conn.execute(queries.NOTIFY, self._push_payload)
                result = _result("synced", answer, called, len(contacts), outcome)
                if joined is not None:
                    result["refresh_joined"] = joined
                # Beyond ATTESTR_MAX_CONTACTS, or the request's own max_contacts: said, not hidden.
                result["contacts_left_out"] = answer.left_out + len(answer.contacts) - len(contacts)
                stored = await conn.execute(
                    *queries.JOB_STORED.bind(
                        job_id=job.id,
                        status="pushing",
                        result=json.dumps(result),
                        person_ids=outcome.person_ids,
                        cin=cin,
                        company_name=answer.business_name,
                        worker_id=worker_id,
                    )
                )
                if stored == "UPDATE 0":
                    raise LeaseLost
                if kept is not None:  # committed only once the call is kept
                    await kept
                return outcome

            outcome = await in_transaction(self.pool, store)
            if pending[0]:
                handoff.stored(pending[0])
            log.info(
                "contacts.upserted",
                contacts=len(contacts),
                new=outcome.contacts_new,
                updated=outcome.contacts_updated,
                unlinked=outcome.unlinked,
                left_out=answer.left_out + len(answer.contacts) - len(contacts),
            )
            if not pending[0]:  # a job with nothing to send ends here; its status is handed over
                await jobs.complete_pushed_jobs(self.pool)
                handoff.stored(0)

    async def _cin_from_airtable(self, record_id: str) -> str:
        """The company record's CIN (a webhook without one, or one confirmed before paying).
        While writes to the companies wait for the operator (pauses.py), so does this read."""
        self.airtable.require_configured()
        # The pause is asked while the rate-limit slot is taken: one round trip less before the read.
        paused, slot = await asyncio.gather(
            self.pool.fetchrow(queries.AIRTABLE_COMPANIES_PAUSED),
            self.airtable.limit.acquire(),
            return_exceptions=True,
        )
        if (
            isinstance(paused, BaseException)
            or isinstance(slot, BaseException)
            or paused["scope"] is not None
        ):
            if not isinstance(slot, BaseException):
                await self.airtable.limit.unused(slot)
            for failed in (paused, slot):
                if isinstance(failed, BaseException):
                    raise failed
            raise AirtablePaused(paused["scope"], paused["reason"], kind=paused["kind"])
        try:
            value, name = await self.airtable.company_cin(record_id, slot=slot)
        except AirtableError as exc:
            if exc.status == 404 and exc.kind == "NOT_FOUND":  # "Get record": not there
                # Nothing is written for it any more (its status would create nothing either).
                await self.pool.execute(queries.COMPANIES_DELETED_IN_AIRTABLE, [record_id])
                log.warning("airtable.company_deleted", record_ids=[record_id])
                raise JobFailed(
                    f"The company record {record_id} was deleted in Airtable, or never existed: "
                    "nothing was fetched or paid for it",
                    outcome="company_deleted",
                ) from exc
            if fix := operator_fix(exc, "companies"):  # the job waits for the operator's mend
                # One pause for every process, probed by the pushers; a resume since the read
                # went out stands (the mend came meanwhile), and the job is then tried again.
                await self.pauses.pause(*fix, exc.kind, paused["at"])
                paused = await self.pool.fetchrow(queries.AIRTABLE_COMPANIES_PAUSED)
                if paused["scope"] is not None:
                    raise AirtablePaused(paused["scope"], paused["reason"], kind=paused["kind"]) from exc
            raise
        if name := identifiers.plain(name, 300):  # shown until Attestr names the company
            self._keep_name(record_id, name)
        field = self.settings.field("CIN")
        written = identifiers.plain(value)
        if written is None:
            raise JobFailed(f'The company has no CIN: fill its "{field}" field')
        cin = identifiers.cin(value)
        if cin is None:
            raise JobFailed(f'The company\'s "{field}" is not a valid CIN or LLPIN: "{written[:40]}"')
        return cin

    def _keep_name(self, record_id: str, name: str) -> None:
        """Store the name typed in the company record, beside the job rather than before its next
        step (the operator's page and alerts show it while Attestr has not named the company)."""

        def done(task: asyncio.Task[str]) -> None:
            self._naming.discard(task)
            if not task.cancelled() and (exc := task.exception()) is not None:
                log.warning("company.name_not_kept", error=type(exc).__name__)

        task = asyncio.create_task(self.pool.execute(queries.COMPANY_NAMED_IN_AIRTABLE, record_id, name))
        self._naming.add(task)  # held until done: the loop keeps only weak references to tasks
        task.add_done_callback(done)

    async def _record_confirmed(self, record_id: str, cin: str) -> str:
        """For a trigger that read nothing in Airtable (the automation's webhook, the API), the
        company record's CIN as it is now, before any answer is used or paid for: a record that
        does not exist ends the job without a call (JobFailed), and a CIN changed since is the
        one synced (a stored answer of the CIN the webhook named would link another company's
        directors to this record)."""
        now = await self._cin_from_airtable(record_id)
        if now != cin:
            log.info("job.cin_changed", cin=cin, cin_now=now)
        return now

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

    async def _answer(
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
        (`_record_confirmed`); the answer is for the CIN it holds."""
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
        reading = asyncio.create_task(self._record_confirmed(job.record_id, cin)) if confirm else None
        try:
            return await self._stored_or_paid(cin, job, reading, held)
        finally:
            if reading is None:
                pass
            elif not reading.done():  # the checks' own failure came first
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)
            elif not reading.cancelled():
                reading.exception()  # retrieved, whether or not it was raised here

    async def _stored_or_paid(
        self, cin: str, job: Job, reading: asyncio.Task[str] | None, held: contextlib.AsyncExitStack
    ) -> tuple[AttestrAnswer, bool, bool | None, asyncio.Task[None] | None]:
        """`_answer` past an answer of the job's own: under the CIN's lock, a stored answer it may
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

    async def _no_data(self, job: Job, cin: str, answer: AttestrAnswer, called: bool, worker_id: str) -> None:
        """Attestr has nothing for this CIN: not a failure. The company's links are left alone."""
        result = _result("no_data", answer, called, 0, None)
        async with self.pool.acquire() as conn, conn.transaction():
            stored = await conn.execute(
                *queries.JOB_STORED.bind(
                    job_id=job.id,
                    status="succeeded",
                    result=json.dumps(result),
                    person_ids=[],
                    cin=cin,
                    company_name=answer.business_name,
                    worker_id=worker_id,
                )
            )
            if stored == "UPDATE 0":
                raise LeaseLost
            await jobs.set_company_synced(conn, job.record_id, "No Data", None, datetime.now(timezone.utc))
        log.info("job.succeeded", **result)
        metrics.job_ended("succeeded", job.created_at)


def _count_error(exc: AttestrError) -> None:
    metrics.ATTESTR_CALLS.labels("error").inc()
    metrics.ATTESTR_ERRORS.labels(exc.code or f"http_{exc.http_status or 'none'}").inc()


def _result(
    outcome: str, answer: AttestrAnswer, called: bool, fetched: int, upsert: UpsertOutcome | None
) -> dict[str, Any]:
    return {
        "outcome": outcome,
        "business_name": answer.business_name,
        "contacts_fetched": fetched,
        "contacts_new": upsert.contacts_new if upsert else 0,
        "contacts_updated": upsert.contacts_updated if upsert else 0,
        "contacts_suppressed": upsert.contacts_suppressed if upsert else 0,
        "airtable_created": 0,
        "airtable_updated": 0,
        "airtable_failed": 0,
        "attestr_called": called,
    }
