"""The Companies table as the pusher sends it (batches.py): a company's status fields (Contacts
Sync Status, Error, Synced At, Contacts Found, and clearing Refresh Contacts), sent after its
contacts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import structlog

from service import metrics, queries
from service.airtable.client import Airtable
from service.config import Settings
from service.database import in_transaction
from service.engine.batches import Outgoing
from service.engine.outbox import BATCH, option_note, withheld

log = structlog.get_logger(__name__)


class CompanyStatuses:
    name = "companies"
    release_query = queries.COMPANIES_RELEASE_PUSH

    def __init__(
        self, pool: asyncpg.Pool, airtable: Airtable, settings: Settings, *, settle_s: float
    ) -> None:
        self.pool = pool
        self.airtable = airtable
        self.settings = settings
        self.settle_s = settle_s

    # Ahead of people (`full_only`), only final statuses, and only a full request's worth: a
    # passing status is not worth a request that ten people could have had.
    def claim(self, full_only: bool, lease_s: float) -> tuple[str, tuple[Any, ...]]:
        least = BATCH if full_only else 1
        return queries.COMPANIES_CLAIM_PUSH, (BATCH, self.settle_s, lease_s, full_only, least, least)

    def claim_final(self, lease_s: float, *, behind_contacts: bool = False) -> tuple[str, tuple[Any, ...]]:
        """Only final statuses (those of jobs just ended); `behind_contacts`: only a full
        request's worth of them while contacts are still to be sent (people first: under a
        backlog, statuses share requests)."""
        behind = BATCH if behind_contacts else 1
        return queries.COMPANIES_CLAIM_PUSH, (BATCH, self.settle_s, lease_s, True, 1, behind)

    async def prepare(
        self, rows: list[asyncpg.Record], fields: set[str], slot: int | None
    ) -> tuple[list[Outgoing], int | None]:
        batch = [Outgoing(row, self._status_fields(row, fields)) for row in rows]
        # A base without the optional status fields: nothing to send for those rows.
        await self._ended([item.row for item in batch if not item.fields], None)
        return [item for item in batch if item.fields], slot

    def _status_fields(self, row: asyncpg.Record, fields: set[str]) -> dict[str, Any]:
        synced_at: datetime | None = row["synced_at"]
        status = row["sync_status"]
        notes = [option_note(self.settings.field(key), value) for key, value in self._withheld(row)]
        values: dict[str, Any] = {
            "SYNC_STATUS": None if withheld(self.airtable, "SYNC_STATUS", status) else status,
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

    async def write(self, batch: list[Outgoing], slot: int | None) -> Any:
        records = [{"id": item.row["airtable_id"], "fields": item.fields} for item in batch]
        return await self.airtable.update_companies(records, slot)

    async def written(self, batch: list[Outgoing], answer: Any) -> None:
        metrics.AIRTABLE_RECORDS.labels("companies").inc(len(batch))
        await self._ended([item.row for item in batch], None)
        log.info("airtable.written", table="companies", records=len(batch), created=0, updated=len(batch))

    async def unanswered(self, batch: list[Outgoing]) -> None:
        """Nothing to remember: the statuses are written whole again."""

    async def deleted(self, rows: list[asyncpg.Record]) -> None:
        ids = sorted(row["airtable_id"] for row in rows)
        await self.pool.execute(queries.COMPANIES_DELETED_IN_AIRTABLE, ids)
        log.warning("airtable.company_deleted", record_ids=ids)

    async def failed(self, rows: list[asyncpg.Record], message: str) -> None:
        await self._ended(rows, message)
        for row in rows:
            log.error("airtable.row_failed", table="companies", record_id=row["airtable_id"], error=message)

    async def _ended(self, rows: list[asyncpg.Record], error: str | None) -> None:
        """Mark the rows sent; one that left a value out for a missing option is remembered as
        held back, to be sent again once the option exists."""
        if not rows:
            return
        args = (
            [row["id"] for row in rows],
            [row["push_version"] for row in rows],
            [error] * len(rows),
            [error is None and bool(self._withheld(row)) for row in rows],
        )
        # Run again on a deadlock: given up, the rows would wait out their lease before going again.
        await in_transaction(self.pool, lambda conn: conn.execute(queries.COMPANIES_PUSHED, *args))

    def _withheld(self, row: asyncpg.Record) -> list[tuple[str, str]]:
        """The values of a company's status, and of its people's Phone Type, held back."""
        pairs = [("SYNC_STATUS", row["sync_status"])] + [("PHONE_TYPE", t) for t in row["phone_types"] or []]
        return [(key, value) for key, value in pairs if withheld(self.airtable, key, value)]
