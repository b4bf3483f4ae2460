"""One job's work: the company's CIN (`company_record.py`), the Attestr answer, stored or paid for
(`answers.py`), then the people stored.

Called by the worker for a claimed job. Its end is a single transaction that stores the people
and links, marks the rows Airtable must receive, and moves the job to `pushing`; the pusher
takes it from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import asyncpg
import structlog

from service import metrics, queries
from service.airtable.client import Airtable
from service.attestr.client import AttestrAnswer, AttestrClient
from service.config import Settings
from service.database import in_transaction
from service.engine import jobs
from service.engine.answers import Answers
from service.engine.company_record import CompanyRecord
from service.engine.handoff import Handoff
from service.engine.job_errors import LeaseLost
from service.engine.jobs import Job
from service.engine.listener import notified_as
from service.people.companies import ensure_company
from service.people.dedup import CompanyContacts, UpsertOutcome, upsert_people

log = structlog.get_logger(__name__)


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
        self.hand_off = hand_off  # to this process's pusher: the stored rows go at once
        # Other processes' pushers are told by NOTIFY, this one's listener skipping it (`token`).
        self._push_payload = notified_as("push", token) if token else "push"
        self.record = CompanyRecord(pool, settings, airtable)
        self.answers = Answers(pool, settings, attestr, self.record)
        self.gate = self.answers.gate  # Attestr's account state: pause, probe, the day's calls

    async def run(self, job: Job, worker_id: str) -> None:
        """Sync the claimed `job` (its company already says Running: JOB_CLAIM)."""
        paid = await self.pool.fetchrow(queries.ANSWER_OF_JOB, job.id) if job.paid else None
        # A trigger that read nothing in Airtable has the record confirmed before any answer is
        # used or paid for (`CompanyRecord.confirmed`); an answer an earlier try paid for is used
        # as is.
        confirm = (
            bool(job.cin)
            and job.source in _RECORD_UNREAD
            and paid is None
            and not self.answers.held_unstored(job.id)
        )
        cin = job.cin or await self.record.cin(job.record_id)
        # A call just paid for is kept while the people are stored; the CIN's lock is held until
        # both are done (`Answers.of_job`).
        async with contextlib.AsyncExitStack() as held:
            with structlog.contextvars.bound_contextvars(cin=cin):
                answer, called, joined, kept = await self.answers.of_job(
                    cin, job, paid, confirm=confirm, held=held
                )
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
                # First, as in every transaction that writes a company and its people: the locks
                # are taken in one order.
                batch.company_id = await ensure_company(conn, job.record_id, cin, answer.business_name)
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
                    worker_id=worker_id,
                )
            )
            if stored == "UPDATE 0":
                raise LeaseLost
            await jobs.set_company_synced(conn, job.record_id, "No Data", None, datetime.now(timezone.utc))
        log.info("job.succeeded", **result)
        metrics.job_ended("succeeded", job.created_at)


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
