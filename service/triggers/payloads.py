"""The native webhook's payload reader: Airtable's changes to Companies become queued syncs.

After each ping (and every `poll_s` in case a ping was lost) the reader, in every worker process,
reads each stored webhook's payloads from the stored cursor, queues a sync for every company
whose CIN was set or changed (or whose Refresh Contacts was ticked), and moves the cursor in the
same transaction: a crash neither skips nor repeats a payload. Every `maintain_s` it also looks
after the webhooks themselves: refreshed before the 7-day expiry, pings turned on again when
Airtable turned them off, and a webhook Airtable disabled (or that is gone) recreated.

The payloads are read as Airtable documents them (https://airtable.com/developers/web/api/
model/webhooks-table-changed): a changed record's `current` holds the cells that changed (a
cleared one as null), `unchanged` the included cells that did not, and `previous` only when the
specification asked for it, which ours does not: a CIN in `current` is a CIN set or changed.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import structlog

from service import identifiers, queries
from service.airtable import webhooks as airtable_webhooks
from service.airtable.client import Airtable
from service.airtable.errors import AirtableError
from service.alert_outbox import raise_alert
from service.database import DATABASE_ERRORS, release_session_lock
from service.engine import jobs
from service.engine.jobs import QueueCap
from service.triggers import reconcile
from service.wakeup import Wakeup

log = structlog.get_logger(__name__)

REFRESH_BEFORE_S = 24 * 3600
PAGE = 50  # "A maximum of 50 payloads can be returned in a single request"


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _cells(entry: Any, part: str | None = None) -> dict[str, Any]:
    """`cellValuesByFieldId` of a created record, or of one part of a changed record."""
    entry = _obj(entry)
    return _obj(_obj(entry.get(part) if part else entry).get("cellValuesByFieldId"))


def syncs_for(payloads: list[dict[str, Any]], hook: Any) -> list[tuple[str, str | None, bool]]:
    """(company record, CIN, forced) for every company whose CIN was set or changed, or whose
    Refresh Contacts was ticked, in one page of payloads. A later payload about the same record
    wins; a CIN cleared afterwards queues nothing. A CIN that is not valid is passed on empty:
    the worker then reads the record and fails the company with a clear reason."""
    wanted: dict[str, tuple[str | None, bool]] = {}
    cin_field, refresh_field = hook["cin_field_id"], hook["refresh_field_id"]
    for payload in payloads:
        table = _obj(_obj(_obj(payload).get("changedTablesById")).get(hook["table_id"]))
        for record_id, entry in _obj(table.get("createdRecordsById")).items():
            cells = _cells(entry)
            written = identifiers.plain(cells.get(cin_field))
            ticked = bool(refresh_field) and cells.get(refresh_field) is True
            if written or ticked:
                forced = ticked or wanted.get(record_id, (None, False))[1]
                wanted[record_id] = (identifiers.cin(cells.get(cin_field)), forced)
        destroyed = table.get("destroyedRecordIds")
        for record_id in destroyed if isinstance(destroyed, list) else []:
            if isinstance(record_id, str):
                wanted.pop(record_id, None)  # deleted: nothing to fetch for it
        for record_id, entry in _obj(table.get("changedRecordsById")).items():
            current, unchanged = _cells(entry, "current"), _cells(entry, "unchanged")
            ticked = bool(refresh_field) and current.get(refresh_field) is True
            earlier = wanted.pop(record_id, None)
            if cin_field in current:
                if identifiers.plain(current[cin_field]) is None and not ticked:
                    continue  # cleared: nothing to fetch, and an earlier set in this page is void
                forced = ticked or bool(earlier and earlier[1])
                wanted[record_id] = (identifiers.cin(current[cin_field]), forced)
            elif ticked:
                cin = identifiers.cin(unchanged.get(cin_field))
                wanted[record_id] = (cin or (earlier or (None, False))[0], True)
            elif earlier is not None:
                wanted[record_id] = earlier
    return [(record_id, cin, force) for record_id, (cin, force) in wanted.items()]


def _timestamp(payload: Any) -> datetime | None:
    """A payload's `timestamp` (ISO 8601), None when it has none that reads."""
    try:
        moment = datetime.fromisoformat(str(_obj(payload).get("timestamp")))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def errors_in(payloads: list[dict[str, Any]]) -> list[str]:
    """The codes of error payloads: Airtable disabled the webhook ("Webhooks payload")."""
    return [str(_obj(p).get("code") or "UNKNOWN") for p in payloads if _obj(p).get("error")]


class PayloadReader:
    def __init__(
        self,
        pool: asyncpg.Pool,
        airtable: Airtable,
        on_queued: Any = None,
        *,
        poll_s: float = 60.0,
        maintain_s: float = 600.0,
    ) -> None:
        self.pool = pool
        self.airtable = airtable
        self.on_queued = on_queued or (lambda: None)
        self.poll_s = poll_s
        self.maintain_s = maintain_s
        self.queue_cap = QueueCap(pool, airtable.settings.queue_max_jobs)
        self._wakeup = Wakeup()
        self._maintained_at = float("-inf")
        self._reconcile_due = False

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self, stop: Any) -> None:
        while not stop.is_set():
            # Reading and upkeep fail apart: a webhook that cannot be read is what upkeep mends.
            for step in (self.read_all, self._reconcile_lost, self._maintain_when_due):
                try:
                    await step()
                except (AirtableError, *DATABASE_ERRORS) as exc:
                    log.warning(
                        "webhook.read_failed",
                        error=exc.message if isinstance(exc, AirtableError) else type(exc).__name__,
                    )
                except Exception:
                    log.exception("webhook.reader_crashed")
            await self._wakeup.wait(stop, self.poll_s)

    async def _maintain_when_due(self) -> None:
        if time.monotonic() - self._maintained_at >= self.maintain_s:
            await self.maintain()

    async def read_all(self) -> int:
        """Read every stored webhook's new payloads; returns how many syncs were queued."""
        if self.airtable.missing:
            return 0
        if await self.queue_cap.full():
            # Airtable keeps the payloads for a week: they are read once the queue has room.
            log.warning("webhook.read_deferred", reason="the queue is full (QUEUE_MAX_JOBS)")
            return 0
        queued = 0
        for stored in await self.pool.fetch(queries.WEBHOOKS_ALL):
            async with self.pool.acquire() as lock:
                if not await lock.fetchval(queries.WEBHOOK_READER_LOCK, stored["id"]):
                    continue  # another process is reading this webhook's payloads
                async with release_session_lock(lock, queries.WEBHOOK_READER_UNLOCK, stored["id"]):
                    hook = await lock.fetchrow(queries.WEBHOOK_BY_ID, stored["id"])  # its cursor now
                    if hook is None:
                        continue
                    try:
                        queued += await self._read(hook)
                    except AirtableError as exc:  # this one only: the others are read all the same
                        log.warning("webhook.read_failed", webhook_id=hook["id"], error=exc.message)
                        if exc.status == 404:  # gone from Airtable: upkeep recreates it, now
                            self._maintained_at = float("-inf")
        return queued

    async def _read(self, hook: asyncpg.Record) -> int:
        cursor, queued = hook["cursor"], 0
        last_read = hook["last_payload_at"] or hook["created_at"]
        while True:
            page = await self.airtable.webhook_payloads(hook["id"], cursor, PAGE)
            payloads = page.get("payloads") or []
            syncs = syncs_for(payloads, hook)
            next_cursor = int(page.get("cursor") or cursor)
            newest = _timestamp(payloads[-1]) if payloads else None
            async with self.pool.acquire() as conn, conn.transaction():
                for record_id, cin, force in syncs:
                    await jobs.enqueue(conn, record_id, cin, force=force, source="airtable_webhook")
                moved = await conn.execute(queries.WEBHOOK_ADVANCE, hook["id"], cursor, next_cursor, newest)
                if moved == "UPDATE 0":
                    raise AirtableError("The webhook's cursor moved under this reader; reading again later")
            # The cursor of the first payload given is that of the next one less how many came:
            # past the cursor asked for, Airtable deleted the ones between, unread.
            if (lost := next_cursor - len(payloads) - cursor) > 0:
                until = _timestamp(payloads[0]) if payloads else None
                await self._payloads_lost(hook["id"], lost, last_read, until)
            last_read = newest or last_read
            for code in errors_in(payloads):
                log.error(
                    "webhook.payload_error",
                    webhook_id=hook["id"],
                    code=code,
                    hint="Airtable disabled the webhook (a field it watches was deleted?); "
                    f"the reader recreates it, or run `{airtable_webhooks.RECREATE}`",
                )
                self._maintained_at = float("-inf")  # look after it now, not in ten minutes
            if syncs:
                log.info(
                    "webhook.payloads_read", webhook_id=hook["id"], payloads=len(payloads), queued=len(syncs)
                )
                self.on_queued()
                await self.pool.execute(queries.NOTIFY_JOBS)  # workers in other processes
            queued += len(syncs)
            cursor = next_cursor
            # "If mightHaveMore is true, the client should send another request immediately";
            # a page that brought nothing ends the reading even so.
            if not payloads or not page.get("mightHaveMore"):
                return queued

    async def _payloads_lost(
        self, webhook_id: str, lost: int, since: datetime, until: datetime | None
    ) -> None:
        """Payloads Airtable deleted before they were read (after a week: "List webhook
        payloads"): the CINs set meanwhile are found by a sweep of that window, now."""
        log.error(
            "webhook.payloads_lost",
            webhook_id=webhook_id,
            payloads=lost,
            since=since.isoformat(),
            until=until.isoformat() if until else None,
            hint="Airtable deleted them unread after a week; the window is reconciled now",
        )
        await self.pool.execute(queries.RECONCILE_REWIND, since - timedelta(seconds=reconcile.OVERLAP_S))
        self._reconcile_due = True

    async def _reconcile_lost(self) -> None:
        """The sweep of a window whose payloads were lost; again later if another process is
        sweeping (its window may be its own) or it failed."""
        if not self._reconcile_due:
            return
        if await reconcile.sweep(self.pool, self.airtable, self.airtable.settings) is not None:
            self._reconcile_due = False

    async def maintain(self) -> None:
        """Look after every stored webhook: refresh it before it expires, turn Airtable's pings
        on again, recreate it when Airtable disabled it or it is gone. What is wrong is stored
        for `doctor` and `airtable webhook status`."""
        self._maintained_at = time.monotonic()
        stored = await self.pool.fetch(queries.WEBHOOKS_ALL)
        if not stored or self.airtable.missing:
            return
        remote = {h["id"]: h for h in await self.airtable.list_webhooks()}
        for stored_row in stored:
            async with self.pool.acquire() as lock:
                if not await lock.fetchval(queries.WEBHOOK_READER_LOCK, stored_row["id"]):
                    continue
                async with release_session_lock(lock, queries.WEBHOOK_READER_UNLOCK, stored_row["id"]):
                    row = await lock.fetchrow(queries.WEBHOOK_BY_ID, stored_row["id"])
                    if row is None:
                        continue
                    try:
                        problem = await self._look_after(row, remote.get(row["id"]))
                    except AirtableError as exc:  # this one only: the others are looked after
                        problem = f"it could not be looked after: {exc.message}"
                        log.warning("webhook.upkeep_failed", webhook_id=row["id"], error=exc.message)
            await self.pool.execute(queries.WEBHOOK_CHECKED, row["id"], problem)

    async def recreate(self, webhook_id: str, reason: str) -> dict[str, Any]:
        """Replace a stored webhook now (`contact-sync airtable webhook recreate`), holding its
        lock so that a running service does not do the same at the same moment. Raises
        AirtableError, also when the webhook is not stored or is busy."""
        async with self.pool.acquire() as lock:
            if not await lock.fetchval(queries.WEBHOOK_READER_LOCK, webhook_id):
                raise AirtableError(
                    f"The running service is reading or looking after webhook {webhook_id} right now: "
                    "try again in a minute"
                )
            async with release_session_lock(lock, queries.WEBHOOK_READER_UNLOCK, webhook_id):
                row = await lock.fetchrow(queries.WEBHOOK_BY_ID, webhook_id)
                if row is None:
                    raise AirtableError(
                        f"Webhook {webhook_id} is not stored here: nothing to recreate it from"
                    )
                return await self._replace(row, reason)

    async def _replace(self, row: asyncpg.Record, reason: str) -> dict[str, Any]:
        """Read what the old webhook still holds (Airtable keeps a disabled one's payloads a
        week), then recreate it: no change it recorded is lost."""
        try:
            await self._read(row)
        except AirtableError as exc:
            if exc.status != 404:  # gone: nothing left to read
                raise
        return await airtable_webhooks.recreate(self.pool, self.airtable, self.airtable.settings, row, reason)

    async def _look_after(self, row: asyncpg.Record, hook: dict[str, Any] | None) -> str | None:
        if hook is None or not hook.get("isHookEnabled", True):
            reason = "gone from Airtable" if hook is None else "disabled by Airtable"
            try:
                await self._replace(row, reason)
            except AirtableError as exc:
                problem = (
                    f"{reason}, and it could not be recreated: {exc.message}. Fix that, then run "
                    f"`{airtable_webhooks.RECREATE}`"
                )
                log.error("webhook.recreate_failed", webhook_id=row["id"], error=problem)
                await raise_alert(self.pool, "webhook_down", "the native Airtable webhook", problem)
                return problem
            await raise_alert(
                self.pool,
                "webhook_down",
                "the native Airtable webhook",
                f"{reason}; recreated. Changes made meanwhile were not seen: "
                "`contact-sync backfill --dry-run` finds companies with a CIN and no contacts",
            )
            return None
        if not hook.get("areNotificationsEnabled", True):
            await self.airtable.enable_webhook_notifications(row["id"])
            log.warning(
                "webhook.notifications_enabled",
                webhook_id=row["id"],
                last_error=airtable_webhooks.last_ping_error(hook),
            )
        # No expiry time: a webhook that does not expire ("Refresh a webhook").
        expires = airtable_webhooks.parse_time(hook.get("expirationTime"))
        if expires is not None and expires.timestamp() - time.time() < REFRESH_BEFORE_S:
            await airtable_webhooks.refresh(self.pool, self.airtable, row["id"])
        return None
