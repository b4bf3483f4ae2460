"""One way to send a table's marked rows to Airtable, the same for both tables the service writes.

A table (`contacts_table.py`, `company_statuses.py`) says which rows wait, how they become
records and how a row's push ends; `BatchSender` does the rest for both. It sends a batch in
one request and reads a refusal once, in one place:

* no answer, or a 429: the rows go back to the outbox (the shared cool-down holds every request);
* no credentials: the rows go back and the sender stops until the operator sets them;
* a refusal only the operator can fix (a revoked token, a locked table or field, a table moved, a
  field missing: `airtable.errors.operator_fix`): the rows go back, and `AirtablePaused` tells the
  pusher to pause that part of the base for every process (pauses.py); nothing is split or failed;
* rows deleted by hand: the table is told, the others go again;
* a company the rows link to deleted by hand: its links are dropped, the rows go again without it;
* the schema changed (a field renamed, an option removed): it is read again, and the batch sent
  again once with the fields as they are now; a refusal the schema read again contradicts (the
  field is there) is tried again later, never failed;
* anything else is a bad row: the batch is split to find it, and a row refused on its own is
  failed with Airtable's words.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import structlog

from service import queries
from service.airtable.client import Airtable
from service.airtable.errors import (
    AirtableError,
    AirtableNotConfigured,
    AirtablePaused,
    AirtableRateLimited,
    AirtableUnavailable,
    operator_fix,
)
from service.engine.outbox import SCHEMA_CHANGED, retry_delay

log = structlog.get_logger(__name__)

# A field Airtable calls unknown that the schema, read again, lists: tried again after this long.
SCHEMA_CONTRADICTED_RETRY_S = 30.0


@dataclass
class Outgoing:
    """One row on its way: the outbox row, the record's `fields` by field name as sent, and (for
    contacts) what the service has written to the Airtable row once this write lands."""

    row: asyncpg.Record
    fields: dict[str, Any] = field(default_factory=dict)
    written: dict[str, Any] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)  # fields whose person's value stays (logged once sent)


class Table(Protocol):
    """What the sender needs to know of one Airtable table."""

    name: str  # the table's key in `Airtable.fields()`, the metrics' label and the logs' `table`
    release_query: str  # gives rows back to the outbox: ($1 row ids, $2 seconds until they are due)

    async def prepare(
        self, rows: list[asyncpg.Record], fields: set[str], slot: int | None
    ) -> tuple[list[Outgoing], int | None]:
        """The records to write for `rows`, given the table's fields now, and the rate-limit slot
        left for the write (None once a read took it). Rows with nothing to write are ended here.
        May raise AirtableError for a read."""
        ...

    async def write(self, batch: list[Outgoing], slot: int | None) -> Any:
        """One request; raises AirtableError."""
        ...

    async def written(self, batch: list[Outgoing], answer: Any) -> None: ...

    async def unanswered(self, batch: list[Outgoing]) -> None:
        """A write whose answer never came: Airtable may have applied it."""
        ...

    async def deleted(self, rows: list[asyncpg.Record]) -> None:
        """Rows whose own Airtable record was deleted by hand."""
        ...

    async def failed(self, rows: list[asyncpg.Record], message: str) -> None: ...


class BatchSender:
    """Sends batches of any `Table`. `schema_changed` reads the base's schema again (and follows
    the select options it lacks) before a batch is sent once more."""

    def __init__(
        self, pool: asyncpg.Pool, airtable: Airtable, schema_changed: Callable[[], Awaitable[None]]
    ) -> None:
        self.pool = pool
        self.airtable = airtable
        self._schema_changed = schema_changed
        self.contradicted_retry_s = SCHEMA_CONTRADICTED_RETRY_S

    async def send(
        self,
        table: Table,
        rows: list[asyncpg.Record],
        fields: set[str],
        *,
        refreshed: bool = False,
        slot: int | None = None,
    ) -> bool:
        """Prepare `rows` and write what they need; `slot` is a rate-limit slot already taken
        for this batch (else the requests take their own). True when a write got through.
        Raises AirtablePaused (the rows given back) and AirtableNotConfigured."""
        try:
            batch, slot = await table.prepare(rows, fields, slot)
        except AirtableError as error:  # a read before the write

            async def again(part: list[Outgoing], refreshed: bool) -> bool:
                return await self.send(table, [item.row for item in part], fields, refreshed=refreshed)

            return await self._refused(table, [Outgoing(row) for row in rows], error, refreshed, again)
        if batch:
            return await self._write(table, batch, fields, refreshed=refreshed, slot=slot)
        await self.airtable.limit.unused(slot)  # no request: the slot is free at once
        return False

    async def _write(
        self,
        table: Table,
        batch: list[Outgoing],
        fields: set[str],
        *,
        refreshed: bool,
        slot: int | None = None,
    ) -> bool:
        try:
            answer = await table.write(batch, slot)
        except AirtableError as error:
            if isinstance(error, AirtableUnavailable):
                await table.unanswered(batch)

            async def again(part: list[Outgoing], refreshed: bool) -> bool:
                return await self._write(table, part, fields, refreshed=refreshed)

            return await self._refused(table, batch, error, refreshed, again)
        await table.written(batch, answer)
        return True

    async def _refused(
        self,
        table: Table,
        batch: list[Outgoing],
        error: AirtableError,
        refreshed: bool,
        again: Callable[[list[Outgoing], bool], Awaitable[bool]],
    ) -> bool:
        rows = [item.row for item in batch]
        ids = [row["id"] for row in rows]
        if isinstance(error, AirtableRateLimited | AirtableUnavailable | AirtableNotConfigured):
            delay = 0.0 if isinstance(error, AirtableNotConfigured) else retry_delay(error)
            await self.pool.execute(table.release_query, ids, delay)
            if isinstance(error, AirtableNotConfigured):
                raise error
            return False
        if fix := operator_fix(error, table.name):
            await self.pool.execute(table.release_query, ids, 0.0)  # they wait on the pause
            raise AirtablePaused(*fix, kind=error.kind)
        if error.kind == "ROW_DOES_NOT_EXIST" or error.status == 404:
            own = {row["airtable_id"] for row in rows} & error.record_ids
            if own:
                await table.deleted([row for row in rows if row["airtable_id"] in own])
                rest = [item for item in batch if item.row["airtable_id"] not in own]
                return bool(rest) and await again(rest, refreshed)
            if error.record_ids:
                # A company the rows link to was deleted by hand: its links are dropped, and the
                # rows go again without it (read again: what they hold has changed).
                await self.pool.execute(queries.COMPANIES_DELETED_IN_AIRTABLE, sorted(error.record_ids))
                await self.pool.execute(table.release_query, ids, 0.0)
                log.warning("airtable.company_deleted", record_ids=sorted(error.record_ids))
                return False
        if error.kind in SCHEMA_CHANGED:
            if refreshed:  # the schema read again says the field is there: passing, not the rows'
                await self.pool.execute(table.release_query, ids, self.contradicted_retry_s)
                log.warning("airtable.schema_contradicted", table=table.name, reason=error.message)
                return False
            try:
                await self._schema_changed()
                fields = (await self.airtable.fields())[table.name]
            except AirtableError as reread:  # the schema itself refused: the operator's to mend
                if not (fix := operator_fix(reread, None)):
                    raise
                await self.pool.execute(table.release_query, ids, 0.0)
                raise AirtablePaused(*fix, kind=reread.kind) from reread
            return await self.send(table, rows, fields, refreshed=True)  # planned again: fields moved
        if len(batch) == 1:
            await table.failed(rows, error.message)
            return False
        half = len(batch) // 2
        first = await again(batch[:half], refreshed)
        return await again(batch[half:], refreshed) or first
