"""Native Airtable webhooks: an alternative to the automation script.

`contact-sync airtable webhook create` registers a webhook on the Companies table watching the
CIN field (and Refresh Contacts, when it exists) and stores its id, MAC secret and cursor in
PostgreSQL. Airtable then pings `POST /webhooks/airtable/notifications`; the ping is verified and
answered at once, and the payload reader (in every worker process) reads the payloads from the
stored cursor, queues a sync for every company whose CIN became non-empty or changed (or whose
Refresh Contacts was ticked), and moves the cursor in the same transaction: a crash neither
skips nor repeats a payload. Webhooks expire after 7 days unless refreshed; the reader refreshes
them a day before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from . import jobs, queries
from .airtable import Airtable, AirtableError
from .config import Settings
from .database import DATABASE_ERRORS, release_session_lock
from .limits import QueueCap
from .validation import normalize_cin
from .wakeup import Wakeup

log = structlog.get_logger(__name__)

REFRESH_BEFORE_S = 24 * 3600
PAGE = 50


def verify(secrets: list[str], body: bytes, header: str | None) -> bool:
    """`X-Airtable-Content-MAC: hmac-sha256=<hex>`: HMAC-SHA256 of the raw body, keyed with the
    base64-decoded secret. Compared in constant time with every stored secret."""
    if not header or not header.startswith("hmac-sha256="):
        return False
    given = header.removeprefix("hmac-sha256=").strip().lower().encode()
    found = False
    for secret in secrets:
        try:
            key = base64.b64decode(secret)
        except (binascii.Error, ValueError):
            continue
        found |= hmac.compare_digest(hmac.new(key, body, hashlib.sha256).hexdigest().encode(), given)
    return found


async def create(
    pool: asyncpg.Pool, airtable: Airtable, settings: Settings, notification_url: str
) -> dict[str, Any]:
    schema = await airtable.schema()
    table = schema.table(settings.airtable_companies_table)
    fields = {f.name: f.id for f in table.fields}
    cin_field = fields.get(settings.field("CIN"))
    if cin_field is None:
        raise AirtableError(
            f'The Companies table has no "{settings.field("CIN")}" field: run `contact-sync doctor`'
        )
    refresh_field = fields.get(settings.field("REFRESH"))
    watched = [f for f in (cin_field, refresh_field) if f]
    spec = {
        "options": {
            "filters": {
                "dataTypes": ["tableData"],
                "recordChangeScope": table.id,
                "watchDataInFieldIds": watched,
            },
            "includes": {"includeCellValuesInFieldIds": watched},
        }
    }
    created = await airtable.add_webhook(notification_url, spec)
    await pool.execute(
        queries.WEBHOOK_STORE,
        created.id,
        settings.airtable_base_id,
        table.id,
        cin_field,
        refresh_field,
        created.mac_secret_base64,
        notification_url,
        created.expiration_time,
    )
    log.info("webhook.created", webhook_id=created.id, expires_at=str(created.expiration_time))
    return {"id": created.id, "expires_at": created.expiration_time, "watching": watched}


async def refresh(pool: asyncpg.Pool, airtable: Airtable, webhook_id: str) -> datetime:
    expires = await airtable.refresh_webhook(webhook_id)
    await pool.execute(queries.WEBHOOK_EXPIRES, webhook_id, expires)
    log.info("webhook.refreshed", webhook_id=webhook_id, expires_at=expires.isoformat())
    return expires


async def delete(pool: asyncpg.Pool, airtable: Airtable, webhook_id: str) -> None:
    try:
        await airtable.delete_webhook(webhook_id)
    except AirtableError as exc:
        if exc.status != 404:
            raise
    await pool.execute(queries.WEBHOOK_DELETE, webhook_id)


async def status(pool: asyncpg.Pool, airtable: Airtable) -> list[dict[str, Any]]:
    remote = {h["id"]: h for h in await airtable.list_webhooks()}
    out = []
    for row in await pool.fetch(queries.WEBHOOKS_ALL):
        hook = remote.pop(row["id"], None)
        out.append(
            {
                "id": row["id"],
                "stored": True,
                "in_airtable": hook is not None,
                "notification_url": row["notification_url"],
                "cursor": row["cursor"],
                "expires_at": row["expires_at"].isoformat() if row["expires_at"] else None,
                "payloads_waiting": max(0, hook["cursorForNextPayload"] - row["cursor"]) if hook else None,
            }
        )
    out += [
        {"id": hook_id, "stored": False, "in_airtable": True, "notification_url": hook.get("notificationUrl")}
        for hook_id, hook in remote.items()
    ]
    return out


def syncs_for(payloads: list[dict[str, Any]], hook: asyncpg.Record) -> list[tuple[str, str | None, bool]]:
    """(company record, CIN, forced) for every company whose CIN was set or changed, or whose
    Refresh Contacts was ticked. A CIN that is not valid is passed on empty: the worker then
    reads it and fails the company with a clear reason."""
    wanted: dict[str, tuple[str | None, bool]] = {}
    for payload in payloads:
        if payload.get("error"):
            log.error("webhook.payload_error", code=payload.get("code"))
        table = (payload.get("changedTablesById") or {}).get(hook["table_id"]) or {}
        for record_id, created in (table.get("createdRecordsById") or {}).items():
            cin = (created.get("cellValuesByFieldId") or {}).get(hook["cin_field_id"])
            if isinstance(cin, str) and cin.strip():
                wanted[record_id] = (normalize_cin(cin), wanted.get(record_id, (None, False))[1])
        for record_id, change in (table.get("changedRecordsById") or {}).items():
            current = (change.get("current") or {}).get("cellValuesByFieldId") or {}
            previous = (change.get("previous") or {}).get("cellValuesByFieldId") or {}
            cin = current.get(hook["cin_field_id"])
            cin = normalize_cin(cin) if isinstance(cin, str) and cin.strip() else None
            cin_set = hook["cin_field_id"] in previous and cin is not None
            ticked = (
                bool(hook["refresh_field_id"])
                and current.get(hook["refresh_field_id"]) is True
                and not previous.get(hook["refresh_field_id"], True)
            )
            if cin_set or ticked:
                earlier = wanted.get(record_id, (None, False))
                wanted[record_id] = (cin or earlier[0], earlier[1] or ticked)
    return [(record_id, cin, force) for record_id, (cin, force) in wanted.items()]


class PayloadReader:
    def __init__(
        self, pool: asyncpg.Pool, airtable: Airtable, on_queued: Any = None, *, poll_s: float = 60.0
    ) -> None:
        self.pool = pool
        self.airtable = airtable
        self.on_queued = on_queued or (lambda: None)
        self.poll_s = poll_s
        self.queue_cap = QueueCap(pool, airtable.settings.queue_max_jobs)
        self._wakeup = Wakeup()

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self, stop: Any) -> None:
        while not stop.is_set():
            try:
                await self.read_all()
                await self.refresh_expiring()
            except (AirtableError, *DATABASE_ERRORS) as exc:
                log.warning(
                    "webhook.read_failed",
                    error=str(exc) if isinstance(exc, AirtableError) else type(exc).__name__,
                )
            except Exception:
                log.exception("webhook.reader_crashed")
            await self._wakeup.wait(stop, self.poll_s)

    async def refresh_expiring(self) -> None:
        """Airtable drops a webhook 7 days after its last refresh: refresh it a day before."""
        for row in await self.pool.fetch(queries.WEBHOOKS_EXPIRING, REFRESH_BEFORE_S):
            await refresh(self.pool, self.airtable, row["id"])

    async def read_all(self) -> int:
        """Read every stored webhook's new payloads; returns how many syncs were queued."""
        if self.airtable.missing:
            return 0
        if await self.queue_cap.full():
            # Airtable keeps the payloads for a week: they are read once the queue has room.
            log.warning("webhook.read_deferred", reason="the queue is full (QUEUE_MAX_JOBS)")
            return 0
        queued = 0
        for hook in await self.pool.fetch(queries.WEBHOOKS_ALL):
            async with self.pool.acquire() as lock:
                if not await lock.fetchval(queries.WEBHOOK_READER_LOCK, hook["id"]):
                    continue  # another process is reading this webhook's payloads
                async with release_session_lock(lock, queries.WEBHOOK_READER_UNLOCK, hook["id"]):
                    queued += await self._read(hook)
        return queued

    async def _read(self, hook: asyncpg.Record) -> int:
        cursor, queued = hook["cursor"], 0
        while True:
            page = await self.airtable.webhook_payloads(hook["id"], cursor, PAGE)
            syncs = syncs_for(page.get("payloads") or [], hook)
            next_cursor = int(page.get("cursor") or cursor)
            async with self.pool.acquire() as conn, conn.transaction():
                for record_id, cin, force in syncs:
                    await jobs.enqueue(conn, record_id, cin, force=force, source="airtable_webhook")
                moved = await conn.execute(queries.WEBHOOK_ADVANCE, hook["id"], cursor, next_cursor)
                if moved == "UPDATE 0":
                    raise AirtableError("The webhook's cursor moved under this reader; reading again later")
            if syncs:
                log.info(
                    "webhook.payloads_read",
                    webhook_id=hook["id"],
                    payloads=len(page.get("payloads") or []),
                    queued=len(syncs),
                )
                self.on_queued()
                await self.pool.execute(queries.NOTIFY_JOBS)  # workers in other processes

            queued += len(syncs)
            cursor = next_cursor
            if not page.get("mightHaveMore"):
                return queued
