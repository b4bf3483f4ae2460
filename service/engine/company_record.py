"""The company record in Airtable, read before a job uses or pays for any answer: its CIN (a
webhook without one, or one confirmed before paying), the name typed in it kept meanwhile."""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from service import identifiers, queries
from service.airtable.client import Airtable
from service.airtable.errors import AirtableError, AirtablePaused, operator_fix
from service.airtable.pauses import AirtablePauses
from service.config import Settings
from service.engine.job_errors import JobFailed

log = structlog.get_logger(__name__)


class CompanyRecord:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, airtable: Airtable) -> None:
        self.pool = pool
        self.settings = settings
        self.airtable = airtable
        self.pauses = AirtablePauses(pool, settings)
        self._naming: set[asyncio.Task[str]] = set()  # `_keep_name`

    async def cin(self, record_id: str) -> str:
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

    async def confirmed(self, record_id: str, cin: str) -> str:
        """For a trigger that read nothing in Airtable (the automation's webhook, the API), the
        company record's CIN as it is now, before any answer is used or paid for: a record that
        does not exist ends the job without a call (JobFailed), and a CIN changed since is the
        one synced (a stored answer of the CIN the webhook named would link another company's
        directors to this record)."""
        now = await self.cin(record_id)
        if now != cin:
            log.info("job.cin_changed", cin=cin, cin_now=now)
        return now
