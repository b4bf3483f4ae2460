"""The pusher: sends to Airtable every row marked for it (an outbox), ten at a time.

PostgreSQL is the source of truth and Airtable a copy. A job's transaction bumps the push
version of each row Airtable must receive; the pusher claims marked rows (a lease, `SKIP LOCKED`,
so several processes share the work), reads them as they are now (a later link set is never
overwritten by an older one), sends them, and clears the mark up to the version it sent.

* Rows of many jobs share a request: ten when ten are ready, or fewer after a short linger while
  any job is still running, or at once when none is. People go before companies' status fields
  unless ten final statuses are waiting; a company's final status goes as soon as its contacts
  are in, and a status on the way (Queued, Running) only once it has held for a moment: the
  final one is the write that counts.
* Each table is a small description (contacts_table.py, company_statuses.py) sent by one batch
  sender (batches.py), which reads every refusal in one place: no answer and 429s leave the rows
  marked for a later try (a 429 blocks the base for every process for the cool-down), a 422 on a
  batch is split to find the bad rows, rows deleted by hand are remembered and never re-created.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import asyncpg
import structlog

from service import queries
from service.airtable import bases
from service.airtable.client import Airtable
from service.airtable.errors import AirtableError, AirtablePaused, operator_fix
from service.airtable.pauses import Admission, AirtablePauses
from service.config import Settings
from service.database import DATABASE_ERRORS
from service.engine import jobs
from service.engine.batches import BatchSender, Table
from service.engine.company_statuses import CompanyStatuses
from service.engine.contacts_table import ContactsTable
from service.engine.handoff import Handoff
from service.engine.outbox import BATCH, RETRY_AFTER_S, option_note
from service.wakeup import WakeOne

log = structlog.get_logger(__name__)

# While Airtable cannot be written, the reason is logged when it changes, and again this often.
WAITING_REPEAT_S = 300.0
# How long a stopping process lets a request under way end (Airtable answers within seconds).
STOP_GRACE_S = 3.0


class Pusher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        airtable: Airtable,
        settings: Settings,
        *,
        linger_s: float = 0.25,
        settle_s: float = 2.0,
        lease_s: float = 60.0,
        poll_s: float = 1.0,
        options_recheck_s: float = 60.0,
    ) -> None:
        self.pool = pool
        self.airtable = airtable
        self.settings = settings
        self.linger_s = linger_s
        self.settle_s = settle_s
        self.lease_s = lease_s
        self._base_settled = False  # bases.settle, once before the first push
        self.poll_s = poll_s
        self.options_recheck_s = options_recheck_s
        self.contacts = ContactsTable(pool, airtable, settings)
        self.companies = CompanyStatuses(pool, airtable, settings, settle_s=settle_s)
        self.sender = BatchSender(pool, airtable, lambda: self._watch_options(reread=True))
        self.pauses = AirtablePauses(pool, settings)
        self._jobs_told_at = float("-inf")
        self._recorded_by_id = False  # what was recorded by field name, by id (once a process)
        self._wakeup = WakeOne()
        self._missing: frozenset[tuple[str, str]] | None = None  # as last stored in PostgreSQL
        self._delete_failures = 0  # merged people's rows: refusals in a row, and when to try again
        self._deletes_after = 0.0
        self._waiting: tuple[str, float] | None = None  # the reason last logged, and when
        self._handoffs: set[asyncio.Task[None]] = set()  # `prepare`
        self._handing_off = False  # once a round got through its first steps (`push_once`)
        # Enough requests in flight to use the whole rate limit when Airtable answers slowly, but
        # not a task per request of a generous limit: each one polls the outbox.
        self.senders = min(10, max(1, round(settings.airtable_rate_limit_rps)))

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop`; then a request under way has STOP_GRACE_S to end, and a sender
        still waiting (for a slot, or out a 429's cool-down) is stopped: its rows stay marked and
        leased, and are sent after their lease by whichever process runs next."""
        with contextlib.suppress(*DATABASE_ERRORS):  # else the pause's own interval holds
            await self.pauses.probe_now()
        senders = [asyncio.create_task(self._sender(stop, polls=i == 0)) for i in range(self.senders)]
        await stop.wait()
        tasks = [*senders, *self._handoffs]
        _, waiting = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
        for task in waiting:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _sender(self, stop: asyncio.Event, *, polls: bool) -> None:
        """Send while there is work; when there is none, wait for a nudge (`wake`), or look again
        after `poll_s` if this is the sender that `polls` (the others sleep ten times as long):
        rows whose time came (a status that held, a lease that ran out) are found by one sender
        a second, which nudges the others if it finds more than a request's worth."""
        failures = 0
        while not stop.is_set():
            busy = await self._guarded(self.push_once())
            failures = failures + 1 if busy is None else 0
            if not busy:
                idle_s = self.poll_s if polls else 10 * self.poll_s
                await self._wakeup.wait(stop, idle_s if not failures else min(60.0, RETRY_AFTER_S * failures))

    async def _guarded(self, sends: Awaitable[bool]) -> bool | None:
        """Await `sends` (a round of requests), carrying out what a refusal of it means. True when
        there was work, False when there was none or writes wait, None when it failed (the caller
        waits the longer the more it fails)."""
        try:
            busy = await sends
        except AirtablePaused as paused:  # the base's schema refused: every write waits
            await self.pauses.pause(paused.scope, paused.message, paused.kind, paused.sent_at)
            await self._jobs_wait(paused.message)
            return False
        except (AirtableError, *DATABASE_ERRORS) as exc:
            await self._say_why_jobs_wait(exc)
            return None
        except Exception:  # a bug must not stop every later push: log it and carry on
            log.exception("pusher.crashed")
            return None
        if busy and self._waiting is not None:
            self._waiting = None
            log.info("airtable.push_resumed")
        return busy

    async def _say_why_jobs_wait(self, exc: Exception) -> None:
        reason = (
            exc.message
            if isinstance(exc, AirtableError)
            else f"Airtable writes wait for the database ({type(exc).__name__})"
        )
        if isinstance(exc, AirtableError):
            await self._jobs_wait(reason)
        else:
            self._log_waiting(reason)

    def _log_waiting(self, reason: str) -> None:
        now = time.monotonic()
        if self._waiting is None or self._waiting[0] != reason or now - self._waiting[1] >= WAITING_REPEAT_S:
            self._waiting = (reason, now)
            log.warning("airtable.push_waiting", reason=reason)

    async def _jobs_wait(self, reason: str) -> None:
        """Every job waiting for its contacts to be written says why, and so does its company
        (Waiting, with the reason) where the Companies table can still be written."""
        self._log_waiting(reason)
        now = time.monotonic()
        if now - self._jobs_told_at < self.poll_s:  # the senders of a process tell them once a poll
            return
        self._jobs_told_at = now
        with contextlib.suppress(*DATABASE_ERRORS):
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(queries.JOBS_PUSHING_WAIT, reason)
                await conn.execute(queries.COMPANIES_WAITING_ON_AIRTABLE, reason)

    async def push_once(self) -> bool:
        """Send one request's worth of marked rows, if any. True when there was work. A table
        whose writes are paused (pauses.py) is skipped, but for its probe."""
        self.airtable.require_configured()
        if not self._base_settled:  # a new base: nothing of the old one is read or written there
            await bases.settle(self.pool, self.settings.airtable_base_id)
            self._base_settled = True
        people, statuses = await self._due()
        contacts, companies = Admission.of(people), Admission.of(statuses)
        if contacts.waits:
            await self._jobs_wait(contacts.reason or "")
        if contacts.waits and companies.waits:
            return False
        probing = {a.scope for a in (contacts, companies) if a.probe}
        try:
            fields = await self.airtable.fields(force=bool(probing))
            if await self._watch_options():  # rows were marked again: counted anew
                people, statuses = await self._due()
        except AirtableError as exc:
            if fix := operator_fix(exc, None):
                paused = AirtablePaused(*fix, kind=exc.kind)
                paused.sent_at = contacts.at
                raise paused from exc
            raise
        if not self._recorded_by_id:
            await self.contacts.record_by_field_id()
            self._recorded_by_id = True
        self._handing_off = True
        for admission in (contacts, companies):  # the schema could be read: the token, the base are back
            if admission.probe and admission.scope == "base":
                await self.pauses.probe_got_through(admission, "Airtable answered again")
                admission.probe = False
        # People first, but never a full request's worth of companies' statuses behind them:
        # under a backlog the first companies show "Synced" soon, not when the last one is done.
        busy = (
            (
                not companies.waits
                and statuses["final_ready"] >= BATCH
                and await self._push(self.companies, fields["companies"], companies, BATCH, full_only=True)
            )
            or (
                not contacts.waits
                and people["ready"]
                and await self._push(
                    self.contacts, fields["contacts"], contacts, await self._lingered(people)
                )
            )
            or (
                not companies.waits
                and statuses["ready"]
                and await self._push(self.companies, fields["companies"], companies, statuses["ready"])
            )
            or (not contacts.waits and await self._delete_merged_rows())
        )
        if busy:
            await self._jobs_ended(fields, companies, alone=not people["more_coming"])
        return busy

    async def _jobs_ended(self, fields: dict[str, set[str]], companies: Admission, *, alone: bool) -> None:
        """End the jobs whose rows are all in; their companies' statuses, claimed as they end, go
        at once, not after another round's questions. Only final statuses are claimed so, and
        only a full request's worth while contacts are still to be sent (people first: under a
        backlog, statuses share requests). `alone`: no job is running, so a free slot is taken
        meanwhile (under a backlog it would keep other senders waiting for nothing)."""
        if companies.waits:
            await jobs.complete_pushed_jobs(self.pool)
            return
        claim = self.companies.claim_final(self.lease_s, behind_contacts=True)

        async def final_statuses(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            return list(await conn.fetch(claim[0], *claim[1]))

        # A slot free now is taken meanwhile: a status due goes as the transaction commits.
        free = asyncio.ensure_future(self.airtable.limit.free_now() if alone else asyncio.sleep(0))
        try:
            _, claimed = await jobs.complete_and_claim(self.pool, final_statuses)
        finally:
            slot = (await asyncio.gather(free, return_exceptions=True))[0]
            if not isinstance(slot, int):
                slot = None
        if not claimed:
            await self.airtable.limit.unused(slot)
            return
        try:
            taken = (slot, False) if slot is not None else await self.airtable.limit.take()
        except BaseException:
            await self._give_back(self.companies, claimed)
            raise
        await self._push(
            self.companies,
            fields["companies"],
            companies,
            1,
            taken=taken,
            claimed=claimed,
            claim=claim,
        )

    # --- rows handed over by a job of this process ---

    def prepare(self) -> Handoff:
        """A job of this process is about to store its people: what their first request needs
        (whether writes may go, a rate-limit slot) is had while it does, and the request goes as
        soon as they are committed (`Handoff.stored`)."""
        handoff = Handoff(self.contacts.claim(False, self.lease_s))
        task = asyncio.create_task(self._handed(handoff))
        self._handoffs.add(task)  # held until done: the loop keeps only weak references to tasks
        task.add_done_callback(self._handoffs.discard)
        return handoff

    async def _handed(self, handoff: Handoff) -> None:
        """Send a job's rows (or, with none waiting, its company's status) once committed. When
        other jobs are running or other rows wait (they may share the request: `_lingered`),
        writes are paused, or no round got through its first steps yet, a sender is woken
        instead, as for rows stored by another process."""
        if not self._handing_off:
            if await handoff.outcome() is not None:
                self.wake()
            return
        # A slot free now, and writes not paused: else the rows are left to the senders (a slot
        # waited for would hold the rows back from them meanwhile).
        due, slot = await asyncio.gather(
            self.pool.fetchrow(queries.PUSH_HANDED), self.airtable.limit.free_now(), return_exceptions=True
        )
        sending = (
            not isinstance(due, BaseException)
            and isinstance(slot, int)
            and not due["contacts_paused"]
            and due["running"] <= 1
            and not due["contacts_waiting"]
        )
        if sending:
            handoff.allow()
        pending = await handoff.outcome()
        if pending is None or not sending:
            # Nothing was claimed for the pusher (a transaction rolled back took its claim along).
            if isinstance(slot, int):
                await self.airtable.limit.unused(slot)
            if pending is not None:
                self.wake()
            return
        assert not isinstance(due, BaseException) and isinstance(slot, int)
        contacts = Admission(due["at"])
        companies = Admission(due["at"], reason="paused" if due["companies_paused"] else None)
        await self._guarded(self._send_handed(pending, handoff.claimed, contacts, companies, (slot, False)))

    async def _send_handed(
        self,
        pending: int,
        claimed: list[asyncpg.Record],
        contacts: Admission,
        companies: Admission,
        taken: tuple[int | None, bool],
    ) -> bool:
        try:
            fields = await self.airtable.fields()  # read by the first round already
        except BaseException:
            await self.airtable.limit.unused(taken[0])
            await self._give_back(self.contacts, claimed)
            raise
        if pending:
            busy = await self._push(
                self.contacts, fields["contacts"], contacts, pending, taken=taken, claimed=claimed
            )
            if busy:
                await self._jobs_ended(fields, companies, alone=True)
            return busy
        if companies.waits:
            await self.airtable.limit.unused(taken[0])
            return False
        final = self.companies.claim_final(self.lease_s)  # its company's, ended
        return await self._push(self.companies, fields["companies"], companies, 1, taken=taken, claim=final)

    async def _due(self) -> list[asyncpg.Record]:
        """PUSH_DUE's rows: the contacts' then the companies' (a pause's probe, if due, is taken)."""
        return await self.pool.fetch(
            queries.PUSH_DUE, self.settings.airtable_probe_interval_s, self.settle_s, BATCH
        )

    async def _delete_merged_rows(self) -> bool:
        """The Airtable rows of people merged into another (one person, one row). The rows stay
        locked while they are deleted, so two senders never delete one twice; a refusal is logged
        and tried again later (up to a minute on), holding up none of the other pushes."""
        if asyncio.get_running_loop().time() < self._deletes_after or await self.pauses.stopped("contacts"):
            return False
        async with self.pool.acquire() as conn, conn.transaction():
            ids = [row["airtable_id"] for row in await conn.fetch(queries.ROWS_TO_DELETE)]
            if not ids:
                return False
            try:
                await self.airtable.delete_contacts(ids)  # a row already gone counts as deleted
            except AirtableError as exc:
                self._delete_failures += 1
                wait_s = min(60.0, RETRY_AFTER_S * self._delete_failures)
                self._deletes_after = asyncio.get_running_loop().time() + wait_s
                log.warning("airtable.merged_rows_delete_failed", records=len(ids), reason=exc.message)
                return False
            await conn.execute(queries.ROWS_DELETED, ids)
        self._delete_failures = 0
        log.info("airtable.merged_rows_deleted", records=len(ids))
        return True

    # --- select options the base lacks ---

    async def _watch_options(self, *, reread: bool = False) -> bool:
        """Follow the single select options the service writes that the base lacks. While one
        is missing, the schema is read again every `options_recheck_s`. When what this process
        finds missing changes, rows held back (by any process) for an option that exists now are
        marked to be sent again, and companies using an option that went are sent without it.
        True when that happened (rows may have been marked)."""
        if reread or (self.airtable.missing_options and self.airtable.schema_age_s > self.options_recheck_s):
            await self.airtable.fields(refresh=True)
        missing = self.airtable.missing_options
        if missing == self._missing:
            return False
        went = missing - (self._missing or frozenset())
        async with self.pool.acquire() as conn, conn.transaction():
            keys = sorted(missing)
            changes = await conn.fetch(
                queries.MISSING_OPTIONS_NOW, [k for k, _ in keys], [o for _, o in keys]
            )
            await conn.execute(queries.REPUSH_WITHHELD, _by_field(missing)[1])
            if went:
                await conn.execute(queries.COMPANIES_REPUSH_FOR_OPTIONS, *_by_field(went))
        self._missing = missing
        for change in changes:  # each once, whichever process saw it first
            field = self.settings.field(change["field_key"])
            if change["change"] == "missing":
                log.warning(
                    "airtable.option_missing",
                    field=field,
                    option=change["option"],
                    hint=option_note(field, change["option"]),
                )
            else:
                log.info("airtable.option_added", field=field, option=change["option"])
        self.wake()
        return True

    # --- one table's rows ---

    async def _push(
        self,
        table: Table,
        fields: set[str],
        admission: Admission,
        ready: int,
        *,
        full_only: bool = False,
        taken: tuple[int | None, bool] | None = None,
        claimed: list[asyncpg.Record] | None = None,
        claim: tuple[str, tuple[Any, ...]] | None = None,
    ) -> bool:
        """Send one batch of `table`'s marked rows, `ready` of which were counted (PUSH_DUE). True
        when there was work. A batch let through as a pause's probe ends the pause when a write
        gets through. `full_only`: only a full request's worth; `taken`: a rate-limit slot had
        already, and `claimed` rows, claimed by `claim` (`_claimed`)."""
        probe, admission.probe = admission.probe, False  # one batch is the probe, no more
        claim = claim or table.claim(full_only, self.lease_s)
        recheck = None if probe else table.name
        async with self._claimed(table, claim, recheck=recheck, taken=taken, claimed=claimed) as (slot, rows):
            if not rows:
                return False
            if len(rows) < ready or len(rows) == BATCH:  # more than this request takes: a sender helps
                self.wake()
            try:
                wrote = await self.sender.send(table, rows, fields, slot=slot)
            except AirtablePaused as paused:
                await self.pauses.pause(paused.scope, paused.message, paused.kind, admission.at)
                if paused.scope != "companies":
                    await self._jobs_wait(paused.message)
                return False
        if probe and wrote and admission.scope in ("contacts", "companies"):
            await self.pauses.probe_got_through(admission, f"a write to the {table.name} table got through")
            self.wake()
        return True

    async def _lingered(self, people: asyncpg.Record) -> int:
        """The contacts ready (`people`: PUSH_DUE's row), once they may go. While fewer than a full
        batch are and a job that may add more is still running, it lingers briefly: the rows of
        many jobs then share a request. Otherwise they go at once (no job is running; a company's
        status never lingers); when requests must wait for a slot, what waited with them goes too
        (`_claimed`)."""
        if people["ready"] < BATCH and people["oldest_s"] < self.linger_s and people["more_coming"]:
            await asyncio.sleep(self.linger_s - people["oldest_s"])
        return int(people["ready"])

    @contextlib.asynccontextmanager
    async def _claimed(
        self,
        table: Table,
        claim: tuple[str, tuple[Any, ...]],
        *,
        recheck: str | None = None,
        taken: tuple[int | None, bool] | None = None,
        claimed: list[asyncpg.Record] | None = None,
    ) -> AsyncIterator[tuple[int | None, list[asyncpg.Record]]]:
        """A rate-limit slot (unless `taken`: the slot, and whether it had to wait) and the rows
        of one request (`claim`: the query and its arguments; unless `claimed` by it), at once. A
        slot that had to wait has the rows (given back, if claimed) claimed once it is had: their
        lease runs while the request does, not while it waits, and what came meanwhile goes in
        the same request; `recheck`: a table whose pause, begun during the wait, means none are
        claimed then. A slot for which no rows were left is freed at once; else it is given back
        once the body is done, in any case (after the request's own report, or `unused`)."""
        query, args = claim
        rows: list[asyncpg.Record] = []
        if taken is None:
            took, claimed = await asyncio.gather(
                self.airtable.limit.take(), self.pool.fetch(query, *args), return_exceptions=True
            )
            if isinstance(took, BaseException) or isinstance(claimed, BaseException):
                if not isinstance(took, BaseException):
                    await self.airtable.limit.unused(took[0])
                if not isinstance(claimed, BaseException):
                    await self._give_back(table, claimed)
                raise took if isinstance(took, BaseException) else claimed  # type: ignore[misc]
            (slot, waited), rows = took, list(claimed)
            claim_now = waited
        else:
            (slot, waited), rows = taken, list(claimed or [])
            claim_now = waited or not rows
        try:
            if claim_now:
                await self._give_back(table, rows)
                rows = []
                if recheck is None or not waited or not await self.pauses.stopped(recheck):
                    rows = list(await self.pool.fetch(query, *args))
            yield slot, rows
        finally:
            if rows:
                await self.airtable.limit.answered(slot)
            else:
                await self.airtable.limit.unused(slot)

    async def _give_back(self, table: Table, rows: list[asyncpg.Record]) -> None:
        """Rows claimed but not sent: due again at once."""
        if rows:
            await self.pool.execute(table.release_query, [row["id"] for row in rows], 0.0)


def _by_field(options: frozenset[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(statuses, phone types) among (field key, option) pairs."""
    return (
        [o for k, o in options if k == "SYNC_STATUS"],
        [o for k, o in options if k == "PHONE_TYPE"],
    )
