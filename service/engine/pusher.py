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
* Known Airtable id: update by id. Otherwise upsert on `Contact Key`, so a retried push never
  duplicates a row. A row deleted by hand in Airtable is remembered and never re-created.
* A 422 on a batch is split to find the bad rows; they are marked failed with Airtable's
  message and the others go through. A 429 blocks the base for every process for the
  cool-down; 5xx and timeouts leave the rows marked for a later try.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import structlog

from service import metrics, queries
from service.airtable.client import Airtable
from service.airtable.errors import (
    AirtableError,
    AirtableNotConfigured,
    AirtableRateLimited,
    AirtableUnavailable,
)
from service.config import Settings
from service.database import DATABASE_ERRORS
from service.engine import hand_merges, jobs
from service.engine.company_statuses import CompanyStatuses
from service.engine.merge import VALUES, contact_values, merge_row, same, written_whole
from service.engine.outbox import BATCH, RETRY_AFTER_S, SCHEMA_CHANGED, option_note, retry_delay
from service.wakeup import Wakeup

log = structlog.get_logger(__name__)

# The fields read back before a row is updated: the merged ones, the service's own key and note.
CONTACT_READ = (*VALUES, "COMPANY", "CONTACT_KEY", "SYNC_NOTE")
# While Airtable cannot be written, the reason is logged when it changes, and again this often.
WAITING_REPEAT_S = 300.0
# How long a stopping process lets a request under way end (Airtable answers within seconds).
STOP_GRACE_S = 3.0


class Pusher(CompanyStatuses):
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
        self.poll_s = poll_s
        self.options_recheck_s = options_recheck_s
        self._wakeup = Wakeup()
        self._missing: frozenset[tuple[str, str]] | None = None  # as last stored in PostgreSQL
        self._delete_failures = 0  # merged people's rows: refusals in a row, and when to try again
        self._deletes_after = 0.0
        self._waiting: tuple[str, float] | None = None  # the reason last logged, and when
        # Enough requests in flight to use the whole rate limit when Airtable answers slowly, but
        # not a task per request of a generous limit: each one polls the outbox.
        self.senders = min(10, max(1, round(settings.airtable_rate_limit_rps)))

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop`; then a request under way has STOP_GRACE_S to end, and a sender
        still waiting (for a slot, or out a 429's cool-down) is stopped: its rows stay marked and
        leased, and are sent after their lease by whichever process runs next."""
        senders = [asyncio.create_task(self._sender(stop)) for _ in range(self.senders)]
        await stop.wait()
        _, waiting = await asyncio.wait(senders, timeout=STOP_GRACE_S)
        for sender in waiting:
            sender.cancel()
        await asyncio.gather(*senders, return_exceptions=True)

    async def _sender(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                busy = await self.push_once()
                failures = 0
                if self._waiting is not None:
                    self._waiting = None
                    log.info("airtable.push_resumed")
            except (AirtableError, *DATABASE_ERRORS) as exc:
                failures += 1
                await self._say_why_jobs_wait(exc)
                busy = False
            except Exception:  # a bug must not stop every later push: log it and carry on
                failures += 1
                log.exception("pusher.crashed")
                busy = False
            if not busy:
                await self._wakeup.wait(
                    stop, self.poll_s if not failures else min(60.0, RETRY_AFTER_S * failures)
                )

    async def _say_why_jobs_wait(self, exc: Exception) -> None:
        reason = (
            exc.message
            if isinstance(exc, AirtableError)
            else f"Airtable writes are paused ({type(exc).__name__})"
        )
        now = time.monotonic()
        if self._waiting is None or self._waiting[0] != reason or now - self._waiting[1] >= WAITING_REPEAT_S:
            self._waiting = (reason, now)
            log.warning("airtable.push_waiting", reason=reason)
        if isinstance(exc, AirtableError):
            with contextlib.suppress(*DATABASE_ERRORS):
                await self.pool.execute(queries.JOBS_PUSHING_WAIT, reason)

    async def push_once(self) -> bool:
        """Send one request's worth of marked rows, if any. True when there was work."""
        self.airtable.require_configured()
        fields = await self.airtable.fields()
        await self._watch_options()
        # People first, but never a full request's worth of companies' statuses behind them:
        # under a backlog the first companies show "Synced" soon, not when the last one is done.
        busy = (
            await self._push_companies(fields["companies"], full_only=True)
            or await self._push_contacts(fields["contacts"])
            or await self._push_companies(fields["companies"])
            or await self._delete_merged_rows()
        )
        if busy:
            await jobs.complete_pushed_jobs(self.pool)
        return busy

    async def _delete_merged_rows(self) -> bool:
        """The Airtable rows of people merged into another (one person, one row). The rows stay
        locked while they are deleted, so two senders never delete one twice; a refusal is logged
        and tried again later (up to a minute on), holding up none of the other pushes."""
        if asyncio.get_running_loop().time() < self._deletes_after:
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

    async def _watch_options(self, *, reread: bool = False) -> None:
        """Follow the single select options the service writes that the base lacks. While one
        is missing, the schema is read again every `options_recheck_s`. When what this process
        finds missing changes, rows held back (by any process) for an option that exists now are
        marked to be sent again, and companies using an option that went are sent without it."""
        if reread or (self.airtable.missing_options and self.airtable.schema_age_s > self.options_recheck_s):
            await self.airtable.fields(refresh=True)
        missing = self.airtable.missing_options
        if missing == self._missing:
            return
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

    def _withheld(self, key: str, value: Any) -> bool:
        return isinstance(value, str) and (key, value) in self.airtable.missing_options

    async def _ready(self, pending_query: str, *args: Any, full_only: bool = False) -> bool:
        """Whether rows are waiting. While fewer than a full batch are and a job that may add
        more is still running, it lingers briefly: the rows of many jobs then share a request.
        Otherwise they go at once (no job is running; a company's status never lingers); when
        requests must wait for a slot, what waited with them goes too (`_claimed`). `full_only`:
        only when a full request's worth is ready."""
        row = await self.pool.fetchrow(pending_query, BATCH, *args)
        if not row["ready"] or (full_only and row["ready"] < BATCH):
            return False
        if row["ready"] < BATCH and row["oldest_s"] < self.linger_s and row["more_coming"]:
            await asyncio.sleep(self.linger_s - row["oldest_s"])
        return True

    # --- contacts ---

    async def _push_contacts(self, fields: set[str]) -> bool:
        if not await self._ready(queries.PEOPLE_PENDING):
            return False
        async with self._claimed(queries.PEOPLE_CLAIM_PUSH, BATCH, self.lease_s) as (slot, rows):
            if not rows:
                return False
            if self.settings.field("CONTACT_KEY") not in fields:
                message = (
                    f'The Contacts table has no "{self.settings.field("CONTACT_KEY")}" field: add it '
                    "as single line text (or run contact-sync doctor --fix)"
                )
                await self._contacts_failed(rows, message)
                await self.airtable.limit.unused(slot)
                return True
            await self._send_contacts(rows, fields, slot=slot)
        return True

    @contextlib.asynccontextmanager
    async def _claimed(
        self, claim_query: str, *args: Any
    ) -> AsyncIterator[tuple[int | None, list[asyncpg.Record]]]:
        """A rate-limit slot first, then the rows: their lease runs while the request does, not
        while it waits for a slot, and what waited for a slot goes in the same request. A slot
        for which no rows were left is freed at once; else it is given back once the body is
        done, in any case (after the request's own report, or `unused`, harmless)."""
        slot = await self.airtable.limit.acquire()
        rows: list[asyncpg.Record] = []
        try:
            rows = list(await self.pool.fetch(claim_query, *args))
            yield slot, rows
        finally:
            if rows:
                await self.airtable.limit.answered(slot)
            else:
                await self.airtable.limit.unused(slot)

    async def _send_contacts(
        self,
        rows: list[asyncpg.Record],
        fields: set[str],
        *,
        refreshed: bool = False,
        slot: int | None = None,
    ) -> None:
        """Read the rows Airtable has (their values now, for the merge), then write what changes.
        The read takes the claimed slot, and the write one of its own after it: a sender never
        holds two slots (senders each holding one and waiting for another would wait for ever)."""
        known = [row for row in rows if row["airtable_id"]]
        current: dict[str, dict[str, Any]] = {}
        if known:
            wanted = sorted(
                self.settings.field(key) for key in CONTACT_READ if self.settings.field(key) in fields
            )
            try:
                current = await self.airtable.contacts_now(
                    [row["airtable_id"] for row in known], wanted, slot
                )
            except AirtableError as error:
                await self._contacts_not_sent(rows, fields, error, refreshed, None)
                return
            slot = None
            gone = [row for row in known if row["airtable_id"] not in current]
            if gone:  # deleted by hand since the last push: a merge, or a deletion
                merged = await hand_merges.adopt(self.pool, self.airtable, self.settings, gone)
                if deleted := [row for row in gone if row["id"] not in merged]:
                    await self._contacts_deleted(deleted)
                rows = [row for row in rows if row not in gone]
        if rows:
            await self._write_contacts(rows, fields, current, refreshed=refreshed, slot=slot)

    def _plan(
        self, row: asyncpg.Record, fields: set[str], now: dict[str, Any] | None
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """What to write to one row (None: nothing changes) and what the service has then written
        to it. A new row is written whole; a row Airtable has (`now`: its fields) is merged three
        ways (merge.py), so that a value a person changed stays."""
        field = self.settings.field
        source = {key: value for key, value in contact_values(row).items() if field(key) in fields}
        if self._withheld("PHONE_TYPE", source.get("PHONE_TYPE")):
            source.pop("PHONE_TYPE")  # no option for it yet: left out, sent once it exists
        if now is None:
            values = {
                key: value
                for key, value in source.items()
                if value is not None or key in ("COMPANY", "PHONE_TYPE")
            }
            written = written_whole(source)
        else:
            # What was written last is kept by field name: a field renamed since is the service's.
            by_name = _json(row["airtable_written"]) or {}
            last = {key: by_name[field(key)] for key in source if field(key) in by_name}
            sent = _json(row["airtable_pending"]) or {}
            pending = {key: sent[field(key)] for key in source if field(key) in sent}
            merged = merge_row(source, last, {key: now.get(field(key)) for key in source}, pending)
            values, written = merged.fields, merged.written
            if "PHONE_TYPE" not in source and field("PHONE_TYPE") in by_name:
                written["PHONE_TYPE"] = by_name[field("PHONE_TYPE")]
            if merged.notes:
                log.info(
                    "airtable.value_kept",
                    contact_key=row["contact_key"],
                    fields=sorted(field(key) for key in merged.notes),
                )
            if field("SYNC_NOTE") in fields:
                note = self._note(merged.notes)
                if not same(note, now.get(field("SYNC_NOTE"))):
                    values["SYNC_NOTE"] = note
        by_field = {field(key): value for key, value in written.items()}
        if now is not None and not values and now.get(field("CONTACT_KEY")) == row["contact_key"]:
            return None, by_field
        values["CONTACT_KEY"] = row["contact_key"]  # the service's own: always as it gave it
        return {field(key): value for key, value in values.items()}, by_field

    def _note(self, kept: dict[str, tuple[Any, Any]]) -> str | None:
        """The Contacts Sync Note: for each value a person changed that the source changed too,
        what the source says now (the person's value stays in its field)."""
        lines = []
        for key, (_theirs, sources) in kept.items():
            said = ", ".join(sources) if isinstance(sources, list) else sources
            lines.append(
                f"{self.settings.field(key)}: the latest filing says {said or '(nothing)'}; yours is kept"
            )
        return "\n".join(lines) or None

    async def _write_contacts(
        self,
        rows: list[asyncpg.Record],
        fields: set[str],
        current: dict[str, dict[str, Any]],
        *,
        refreshed: bool = False,
        slot: int | None = None,
    ) -> None:
        # A row that would link to no company (its companies deleted by hand meanwhile) is never
        # created: a contact is in Airtable for a company.
        orphans = [row for row in rows if not row["airtable_id"] and not row["company_record_ids"]]
        if orphans:
            await self._contacts_pushed(
                orphans, [None] * len(orphans), [{}] * len(orphans), ["deleted"] * len(orphans)
            )
            rows = [row for row in rows if row not in orphans]
        plans = [self._plan(row, fields, current.get(row["airtable_id"] or "")) for row in rows]
        sending = [
            (row, record, written)
            for row, (record, written) in zip(rows, plans, strict=True)
            if record is not None
        ]
        unchanged = [
            (row, written) for row, (record, written) in zip(rows, plans, strict=True) if record is None
        ]
        if unchanged:
            await self._contacts_pushed(
                [row for row, _ in unchanged],
                [row["airtable_id"] for row, _ in unchanged],
                [written for _, written in unchanged],
                ["updated"] * len(unchanged),
            )
        if not sending:
            if slot is not None:
                await self.airtable.limit.unused(slot)
            return
        rows = [row for row, _, _ in sending]
        records = [
            {"fields": record, **({"id": row["airtable_id"]} if row["airtable_id"] else {})}
            for row, record, _ in sending
        ]
        try:
            result = await self.airtable.upsert_contacts(records, slot)
        except AirtableError as error:
            if isinstance(error, AirtableUnavailable):  # no answer: the write may have been applied
                await self.pool.execute(
                    queries.PEOPLE_PUSH_PENDING,
                    [row["id"] for row in rows],
                    [json.dumps(written) for _, _, written in sending],
                )
            await self._contacts_not_sent(rows, fields, error, refreshed, current)
            return
        key_field = self.settings.field("CONTACT_KEY")
        by_key = {r["fields"].get(key_field): r["id"] for r in result["records"]}
        created = set(result.get("createdRecords", []))
        airtable_ids = [
            row["airtable_id"] or by_key.get(row["contact_key"]) or result["records"][i]["id"]
            for i, row in enumerate(rows)
        ]
        outcomes = ["created" if airtable_id in created else "updated" for airtable_id in airtable_ids]
        await self._contacts_pushed(rows, airtable_ids, [written for _, _, written in sending], outcomes)
        metrics.AIRTABLE_RECORDS.labels("contacts").inc(len(rows))
        log.info(
            "airtable.written",
            table="contacts",
            records=len(rows),
            created=outcomes.count("created"),
            updated=outcomes.count("updated"),
        )

    async def _contacts_pushed(
        self,
        rows: list[asyncpg.Record],
        airtable_ids: list[str | None],
        written: list[dict[str, Any]],
        outcomes: list[str],
    ) -> None:
        ids, versions = [row["id"] for row in rows], [row["push_version"] for row in rows]
        withheld = [self._withheld("PHONE_TYPE", row["phone_type"]) for row in rows]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                queries.PEOPLE_PUSHED, ids, airtable_ids, versions, withheld, [json.dumps(w) for w in written]
            )
            await conn.execute(queries.JOB_ROWS_OUTCOME, ids, versions, outcomes)

    async def _contacts_not_sent(
        self,
        rows: list[asyncpg.Record],
        fields: set[str],
        error: AirtableError,
        refreshed: bool,
        current: dict[str, dict[str, Any]] | None,
    ) -> None:
        """A read (`current` None) or a write refused or not answered. No answer, or no
        credentials: the rows stay marked for later. A 4xx: deleted rows, deleted companies, a
        renamed field, or bad rows; what is tried again is read again unless the read succeeded."""
        if isinstance(error, AirtableRateLimited | AirtableUnavailable | AirtableNotConfigured):
            delay = 0.0 if isinstance(error, AirtableNotConfigured) else retry_delay(error)
            await self.pool.execute(queries.PEOPLE_RELEASE_PUSH, [row["id"] for row in rows], delay)
            if isinstance(error, AirtableNotConfigured):
                raise error
            return

        async def again(part: list[asyncpg.Record], fields: set[str], refreshed: bool) -> None:
            if current is None:
                await self._send_contacts(part, fields, refreshed=refreshed)
            else:
                await self._write_contacts(part, fields, current, refreshed=refreshed)

        if error.kind == "ROW_DOES_NOT_EXIST" or error.status == 404:
            deleted = [row for row in rows if row["airtable_id"] and row["airtable_id"] in error.record_ids]
            if deleted:
                await self._contacts_deleted(deleted)
                rest = [row for row in rows if row not in deleted]
                if rest:
                    await again(rest, fields, refreshed)
                return
            companies = error.record_ids - {row["airtable_id"] for row in rows}
            if companies:
                # A company was deleted by hand: drop its links; the rows go again without it.
                await self.pool.execute(queries.COMPANIES_DELETED_IN_AIRTABLE, sorted(companies))
                await self.pool.execute(queries.PEOPLE_RELEASE_PUSH, [row["id"] for row in rows], 0.0)
                log.warning("airtable.company_deleted", record_ids=sorted(companies))
                return
        if error.kind in SCHEMA_CHANGED and not refreshed:
            # A field renamed or removed, or an option removed, since the schema was read.
            await self._watch_options(reread=True)
            fields = (await self.airtable.fields())["contacts"]
            await self._send_contacts(rows, fields, refreshed=True)  # read again: the fields moved
            return
        if len(rows) == 1:
            await self._contacts_failed(rows, error.message)
            return
        half = len(rows) // 2
        await again(rows[:half], fields, refreshed)
        await again(rows[half:], fields, refreshed)

    async def _contacts_deleted(self, rows: list[asyncpg.Record]) -> None:
        ids = [row["id"] for row in rows]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(queries.PEOPLE_DELETED_IN_AIRTABLE, ids)
            await conn.execute(queries.COMPANIES_RECOUNT, ids)  # Contacts Found follows
            await conn.execute(
                queries.JOB_ROWS_OUTCOME, ids, [row["push_version"] for row in rows], ["deleted"] * len(rows)
            )
        for row in rows:
            log.info("airtable.row_deleted", contact_key=row["contact_key"], airtable_id=row["airtable_id"])

    async def _contacts_failed(self, rows: list[asyncpg.Record], message: str) -> None:
        ids, versions = [row["id"] for row in rows], [row["push_version"] for row in rows]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(queries.PEOPLE_PUSH_FAILED, ids, versions, [message] * len(rows))
            await conn.execute(queries.JOB_ROWS_OUTCOME, ids, versions, ["failed"] * len(rows))
        for row in rows:
            log.error("airtable.row_failed", table="contacts", contact_key=row["contact_key"], error=message)


def _by_field(options: frozenset[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(statuses, phone types) among (field key, option) pairs."""
    return (
        [o for k, o in options if k == "SYNC_STATUS"],
        [o for k, o in options if k == "PHONE_TYPE"],
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
