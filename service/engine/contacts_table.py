"""The Contacts table as the pusher sends it (batches.py): one row per person, merged with what
people changed in Airtable.

A row Airtable has is read back first (one request for the batch, on the batch's slot) and merged
three ways (merge.py), so a value a person changed stays; a row Airtable lacks is written whole,
upserted on Contact Key so that a retried push never duplicates it. A row deleted by hand is a
merge made by hand (hand_merges.py) or a deletion, remembered and never re-created; a row that
would link to no company is never created.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import structlog

from service import metrics, queries
from service.airtable.client import Airtable
from service.airtable.errors import KEY_FIELD_MISSING, AirtableError
from service.config import Settings
from service.database import in_transaction
from service.engine import hand_merges
from service.engine.batches import Outgoing
from service.engine.merge import (
    LINKS,
    VALUES,
    contact_values,
    merge_row,
    recorded,
    same,
    to_record,
    written_whole,
)
from service.engine.outbox import BATCH, contact_field_names, withheld

log = structlog.get_logger(__name__)

# The fields read back before a row is updated: the merged ones, the service's own key and note.
CONTACT_READ = (*VALUES, "COMPANY", "CONTACT_KEY", "SYNC_NOTE")


class ContactsTable:
    name = "contacts"
    release_query = queries.PEOPLE_RELEASE_PUSH

    def __init__(self, pool: asyncpg.Pool, airtable: Airtable, settings: Settings) -> None:
        self.pool = pool
        self.airtable = airtable
        self.settings = settings

    def claim(self, full_only: bool, lease_s: float) -> tuple[str, tuple[Any, ...]]:
        return queries.PEOPLE_CLAIM_PUSH, (BATCH, lease_s)

    async def record_by_field_id(self) -> None:
        """Once the schema is read: what was recorded by field name (before ids were) by id."""
        pairs = [
            (name, field_id)
            for field_id, name in contact_field_names(self.airtable, self.settings).values()
            if field_id
        ]
        await self.pool.execute(
            queries.PEOPLE_WRITTEN_BY_FIELD_ID,
            [name for name, _ in pairs],
            [field_id for _, field_id in pairs],
        )

    async def prepare(
        self, rows: list[asyncpg.Record], fields: set[str], slot: int | None
    ) -> tuple[list[Outgoing], int | None]:
        """Read the rows Airtable has (their values now, for the merge) and plan each row's write.
        The read takes the batch's slot, and the write one of its own after it: a sender never
        holds two slots (senders each holding one and waiting for another would wait for ever)."""
        key = self.settings.field("CONTACT_KEY")
        if key not in fields:  # the operator's to mend: every contact waits (batches.py)
            message = (
                f'The Contacts table has no "{key}" field: add it as single line text (or run '
                "contact-sync doctor --fix)"
            )
            await self.airtable.limit.unused(slot)
            raise AirtableError(message, kind=KEY_FIELD_MISSING)
        known = [row for row in rows if row["airtable_id"]]
        current: dict[str, dict[str, Any]] = {}
        if known:
            wanted = sorted(self.settings.field(k) for k in CONTACT_READ if self.settings.field(k) in fields)
            current = await self.airtable.contacts_now([row["airtable_id"] for row in known], wanted, slot)
            slot = None
            gone = [row for row in known if row["airtable_id"] not in current]
            if gone:  # deleted by hand since the last push: a merge, or a deletion
                merged = await hand_merges.adopt(self.pool, self.airtable, self.settings, gone)
                if deleted := [row for row in gone if row["id"] not in merged]:
                    await self.deleted(deleted)
                rows = [row for row in rows if row not in gone]
            if await self._companies_deleted(rows, current):
                await self.pool.execute(self.release_query, [row["id"] for row in rows], 0.0)
                return [], None
        # A row that would link to no company (its companies deleted by hand meanwhile) is never
        # created: a contact is in Airtable for a company.
        orphans = [row for row in rows if not row["airtable_id"] and not row["company_record_ids"]]
        batch = [
            self._plan(row, fields, current.get(row["airtable_id"] or ""))
            for row in rows
            if row not in orphans
        ]
        unchanged = [item for item in batch if not item.fields]
        await self._ended(
            [*unchanged, *(Outgoing(row) for row in orphans)],
            [*(item.row["airtable_id"] for item in unchanged), *([None] * len(orphans))],
            ["updated"] * len(unchanged) + ["deleted"] * len(orphans),
        )
        return [item for item in batch if item.fields], slot

    async def _companies_deleted(
        self, rows: list[asyncpg.Record], current: dict[str, dict[str, Any]]
    ) -> bool:
        """Whether a company the service linked these rows to was deleted by hand: Airtable then
        drops its links, which the merge would take for a person's removal (a refresh of that
        company would end as if all were well). One read of the companies whose link went, only
        when one did; those deleted are remembered as such, their links dropped."""
        names = contact_field_names(self.airtable, self.settings)
        link = self.settings.field("COMPANY")
        went: set[str] = set()
        for row in rows:
            if row["airtable_id"] in current:
                written = (recorded(row["airtable_written"], names) or {}).get(LINKS) or []
                now = current[row["airtable_id"]].get(link) or []
                went |= {r for r in written if r not in now and r in row["company_record_ids"]}
        if not went:
            return False
        asked = sorted(went)[:100]  # one read; any others are asked at the next push
        gone = sorted(set(asked) - await self.airtable.companies_present(asked))
        if gone:
            await self.pool.execute(queries.COMPANIES_DELETED_IN_AIRTABLE, gone)
            log.warning("airtable.company_deleted", record_ids=gone)
        return bool(gone)

    def _plan(self, row: asyncpg.Record, fields: set[str], now: dict[str, Any] | None) -> Outgoing:
        """What to write to one row (no fields: nothing changes) and what the service has then
        written to it. A new row is written whole; a row Airtable has (`now`: its fields) is
        merged three ways (merge.py), so that a value a person changed stays."""
        field = self.settings.field
        names = contact_field_names(self.airtable, self.settings)
        source = {key: value for key, value in contact_values(row).items() if field(key) in fields}
        if withheld(self.airtable, "PHONE_TYPE", source.get("PHONE_TYPE")):
            source.pop("PHONE_TYPE")  # no option for it yet: left out, sent once it exists
        kept: list[str] = []
        if now is None:
            values = {
                key: value
                for key, value in source.items()
                if value is not None or key in ("COMPANY", "PHONE_TYPE")
            }
            written = written_whole(source)
        else:
            # None: never recorded (a row adopted from an older table): its values are people's.
            last = recorded(row["airtable_written"], names)
            pending = recorded(row["airtable_pending"], names) or {}
            merged = merge_row(
                source,
                None if last is None else {key: value for key, value in last.items() if key in source},
                {key: now.get(field(key)) for key in source},
                {key: value for key, value in pending.items() if key in source},
            )
            values, written = merged.fields, merged.written
            kept = sorted(field(key) for key in merged.notes)  # logged once the note is in Airtable
            if "PHONE_TYPE" not in source and last and "PHONE_TYPE" in last:
                written["PHONE_TYPE"] = last["PHONE_TYPE"]
            if field("SYNC_NOTE") in fields:
                note = self._note(merged.notes)
                if not _same_note(note, now.get(field("SYNC_NOTE"))):
                    values["SYNC_NOTE"] = note
                else:  # said already, in the row and in the log: a row written again says it once
                    kept = []
        record = {**_carried(row["airtable_written"], names, written), **to_record(written, names)}
        if now is not None and not values and now.get(field("CONTACT_KEY")) == row["contact_key"]:
            return Outgoing(row, {}, record)
        values["CONTACT_KEY"] = row["contact_key"]  # the service's own: always as it gave it
        return Outgoing(row, {field(key): value for key, value in values.items()}, record, kept)

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

    async def write(self, batch: list[Outgoing], slot: int | None) -> dict[str, Any]:
        """Rows Airtable has, by id; else (rows it lacks: a batch is of one kind) an upsert on
        Contact Key, so that a retried create never duplicates a row."""
        if all(item.row["airtable_id"] for item in batch):
            records = [{"id": item.row["airtable_id"], "fields": item.fields} for item in batch]
            return {"records": await self.airtable.update_contacts(records, slot)}
        return await self.airtable.upsert_contacts([{"fields": item.fields} for item in batch], slot)

    async def written(self, batch: list[Outgoing], answer: dict[str, Any]) -> None:
        key_field = self.settings.field("CONTACT_KEY")
        by_key = {r["fields"].get(key_field): r["id"] for r in answer["records"]}
        created = set(answer.get("createdRecords", []))
        airtable_ids = [
            item.row["airtable_id"] or by_key.get(item.row["contact_key"]) or answer["records"][i]["id"]
            for i, item in enumerate(batch)
        ]
        outcomes = ["created" if airtable_id in created else "updated" for airtable_id in airtable_ids]
        metrics.AIRTABLE_RECORDS.labels("contacts").inc(len(batch))  # written: counted before the jobs end
        await self._ended(batch, airtable_ids, outcomes)
        for item in batch:  # once the note beside them is in Airtable
            if item.kept:
                log.info("airtable.value_kept", contact_key=item.row["contact_key"], fields=item.kept)
        log.info(
            "airtable.written",
            table="contacts",
            records=len(batch),
            created=outcomes.count("created"),
            updated=outcomes.count("updated"),
        )

    async def unanswered(self, batch: list[Outgoing]) -> None:
        # Airtable may have applied the write: what it would have made the service's is kept,
        # for the next push's merge to recognise in the row rather than take for a person's edit.
        await self.pool.execute(
            queries.PEOPLE_PUSH_PENDING,
            [item.row["id"] for item in batch],
            [json.dumps(item.written) for item in batch],
        )

    async def _ended(
        self, batch: list[Outgoing], airtable_ids: list[str | None], outcomes: list[str]
    ) -> None:
        if not batch:
            return
        rows = [item.row for item in batch]
        ids, versions = [row["id"] for row in rows], [row["push_version"] for row in rows]
        held = [withheld(self.airtable, "PHONE_TYPE", row["phone_type"]) for row in rows]
        written = [json.dumps(item.written) for item in batch]

        async def mark(conn: asyncpg.Connection) -> None:
            await conn.execute(queries.PEOPLE_PUSHED, ids, airtable_ids, versions, held, written)
            # A statement of its own: its snapshot sees the job rows of a sync that held these
            # people and committed while PEOPLE_PUSHED waited for their locks.
            await conn.execute(queries.JOB_ROWS_OUTCOME, ids, versions, outcomes)

        # Run again on a deadlock: given up, the rows would wait out their lease before going again.
        await in_transaction(self.pool, mark)

    async def deleted(self, rows: list[asyncpg.Record]) -> None:
        ids, versions = [row["id"] for row in rows], [row["push_version"] for row in rows]

        async def mark(conn: asyncpg.Connection) -> None:
            await conn.execute(queries.PEOPLE_DELETED_IN_AIRTABLE, ids)
            await conn.execute(queries.COMPANIES_RECOUNT, ids)  # Contacts Found follows
            await conn.execute(queries.JOB_ROWS_OUTCOME, ids, versions, ["deleted"] * len(rows))

        await in_transaction(self.pool, mark)
        for row in rows:
            log.info("airtable.row_deleted", contact_key=row["contact_key"], airtable_id=row["airtable_id"])

    async def failed(self, rows: list[asyncpg.Record], message: str) -> None:
        ids, versions = [row["id"] for row in rows], [row["push_version"] for row in rows]

        async def mark(conn: asyncpg.Connection) -> None:
            await conn.execute(queries.PEOPLE_PUSH_FAILED, ids, versions, [message] * len(rows))
            await conn.execute(queries.JOB_ROWS_OUTCOME, ids, versions, ["failed"] * len(rows))

        await in_transaction(self.pool, mark)
        for row in rows:
            log.error("airtable.row_failed", table="contacts", contact_key=row["contact_key"], error=message)


def _carried(
    stored: Any, names: dict[str, tuple[str | None, str]], written: dict[str, Any]
) -> dict[str, Any]:
    """What a row's stored record holds for the fields not written now (one renamed in Airtable
    whose setting has not followed yet): kept, to be found by its id once the setting has."""
    record = json.loads(stored) if isinstance(stored, str) else stored
    if not isinstance(record, dict):
        return {}
    now = {label for key in written if key in names for label in names[key] if label}
    return {label: value for label, value in record.items() if label not in now}


def _same_note(ours: str | None, theirs: Any) -> bool:
    """Whether the note shows what it should. A long-text field made rich text gives its text back
    as markdown (escaped, a newline at the end): compared as text, not to be written each push."""
    text = theirs.replace("\\", "").strip() if isinstance(theirs, str) else theirs
    return same(ours, text)
