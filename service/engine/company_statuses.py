"""The companies' status fields in Airtable (Contacts Sync Status, Error, Synced At, Contacts
Found, and clearing Refresh Contacts): the pusher's second kind of row, sent after contacts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import structlog

from service import metrics, queries
from service.airtable.errors import (
    AirtableError,
    AirtableNotConfigured,
    AirtableRateLimited,
    AirtableUnavailable,
)
from service.engine.outbox import BATCH, SCHEMA_CHANGED, option_note, retry_delay

log = structlog.get_logger(__name__)


class CompanyStatuses:
    """The pusher's half that writes companies' status fields. It uses the pusher's pool,
    Airtable client, settings, `settle_s`, `lease_s`, and its `_ready`, `_claimed`, `_withheld`
    and `_watch_options`."""

    async def _push_companies(self, fields: set[str], *, full_only: bool = False) -> bool:
        # Ahead of people (`full_only`), only final statuses: a passing one is not worth a request
        # that ten people could have had.
        if not await self._ready(queries.COMPANIES_PENDING, self.settle_s, full_only, full_only=full_only):
            return False
        least = BATCH if full_only else 1
        claim = (queries.COMPANIES_CLAIM_PUSH, BATCH, self.settle_s, self.lease_s, full_only, least)
        async with self._claimed(*claim) as (slot, rows):
            if not rows:
                return False
            await self._send_companies(rows, fields, slot=slot)
        return True

    def _company_fields(self, row: asyncpg.Record, fields: set[str]) -> dict[str, Any]:
        synced_at: datetime | None = row["synced_at"]
        status = row["sync_status"]
        notes = [option_note(self.settings.field(key), value) for key, value in self._company_withheld(row)]
        values: dict[str, Any] = {
            "SYNC_STATUS": None if self._withheld("SYNC_STATUS", status) else status,
            # None clears an old error; a missing option is named here until it exists.
            "SYNC_ERROR": "\n".join(filter(None, [row["sync_error"], *notes])) or None,
            "SYNCED_AT": synced_at.isoformat() if synced_at else None,
            "CONTACTS_FOUND": row["contacts_found"],
            # A ticked Refresh Contacts is cleared once the sync it asked for has ended.
            "REFRESH": False if status in ("Synced", "No Data", "Failed") else None,
        }
        return {
            self.settings.field(key): value
            for key, value in values.items()
            if self.settings.field(key) in fields and (value is not None or key == "SYNC_ERROR")
        }

    async def _send_companies(
        self,
        rows: list[asyncpg.Record],
        fields: set[str],
        *,
        refreshed: bool = False,
        slot: int | None = None,
    ) -> None:
        sending = [(row, self._company_fields(row, fields)) for row in rows]
        # A base without the optional status fields: nothing to send for those rows.
        empty = [row for row, values in sending if not values]
        if empty:
            await self._companies_done(empty, None)
        sending = [(row, values) for row, values in sending if values]
        if not sending:
            await self.airtable.limit.unused(slot)  # no request: the slot is free at once
            return
        rows = [row for row, _ in sending]
        try:
            await self.airtable.update_companies(
                [{"id": row["airtable_id"], "fields": v} for row, v in sending], slot
            )
        except (AirtableRateLimited, AirtableUnavailable) as exc:
            await self.pool.execute(
                queries.COMPANIES_RELEASE_PUSH, [row["id"] for row in rows], retry_delay(exc)
            )
            return
        except AirtableNotConfigured:
            await self.pool.execute(queries.COMPANIES_RELEASE_PUSH, [row["id"] for row in rows], 0.0)
            raise
        except AirtableError as error:
            await self._companies_refused(rows, fields, error, refreshed)
            return
        await self._companies_done(rows, None)
        metrics.AIRTABLE_RECORDS.labels("companies").inc(len(rows))
        log.info("airtable.written", table="companies", records=len(rows), created=0, updated=len(rows))

    async def _companies_refused(
        self, rows: list[asyncpg.Record], fields: set[str], error: AirtableError, refreshed: bool
    ) -> None:
        """A 4xx on a batch of statuses: deleted companies, a changed schema, or bad rows."""
        gone = error.record_ids & {row["airtable_id"] for row in rows}
        if gone and (error.kind == "ROW_DOES_NOT_EXIST" or error.status == 404):
            await self.pool.execute(queries.COMPANIES_DELETED_IN_AIRTABLE, sorted(gone))
            log.warning("airtable.company_deleted", record_ids=sorted(gone))
            rest = [row for row in rows if row["airtable_id"] not in gone]
            if rest:
                await self._send_companies(rest, fields, refreshed=refreshed)
        elif error.kind in SCHEMA_CHANGED and not refreshed:
            await self._watch_options(reread=True)
            await self._send_companies(rows, (await self.airtable.fields())["companies"], refreshed=True)
        elif len(rows) == 1:
            await self._companies_done(rows, error.message)
            log.error(
                "airtable.row_failed",
                table="companies",
                record_id=rows[0]["airtable_id"],
                error=error.message,
            )
        else:
            half = len(rows) // 2
            await self._send_companies(rows[:half], fields, refreshed=refreshed)
            await self._send_companies(rows[half:], fields, refreshed=refreshed)

    async def _companies_done(self, rows: list[asyncpg.Record], error: str | None) -> None:
        """Mark the rows sent; one that left a value out for a missing option is remembered as
        held back, to be sent again once the option exists."""
        await self.pool.execute(
            queries.COMPANIES_PUSHED,
            [row["id"] for row in rows],
            [row["push_version"] for row in rows],
            [error] * len(rows),
            [error is None and bool(self._company_withheld(row)) for row in rows],
        )

    def _company_withheld(self, row: asyncpg.Record) -> list[tuple[str, str]]:
        """The values of a company's status, and of its people's Phone Type, held back."""
        pairs = [("SYNC_STATUS", row["sync_status"])] + [("PHONE_TYPE", t) for t in row["phone_types"] or []]
        return [(key, value) for key, value in pairs if self._withheld(key, value)]
