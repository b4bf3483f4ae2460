"""Storing people, de-duplicated (the rules are `matching`'s): set-based, with advisory locks
on every key in sorted order, one query for every person the batch could match (locked `FOR
UPDATE`), the matching in memory, then one statement each to insert, update, link and mark rows
for Airtable, however many contacts the batch holds. Forgotten people are kept out here."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
import structlog

from service import queries
from service.people.matching import CompanyContacts, Person, identity_of, resolve
from service.people.names import name_key
from service.people.normalize import Contact, Email, Phone

log = structlog.get_logger(__name__)


PEOPLE_COLUMNS = (
    "din",
    "pan",
    "name",
    "name_raw",
    "phone_e164",
    "phone_raw",
    "phone_type",
    "email",
    "email_raw",
    "addresses",
)


MAX_KEY_LOCKS = 256


@dataclass
class UpsertOutcome:
    company_id: int
    person_ids: list[int]
    contacts_new: int
    contacts_updated: int
    unlinked_ids: list[int]
    contacts_suppressed: int = 0
    # Each stored contact, the person it became, and how it matched (din, pan, claim, weak,
    # conflict, new).
    matched: list[tuple[Contact, int, str]] = field(default_factory=list)

    @property
    def unlinked(self) -> int:
        return len(self.unlinked_ids)


def _lock_keys(batches: list[CompanyContacts]) -> list[int]:
    """64-bit advisory lock keys for every key the batch may read or write, sorted so that two
    transactions always take shared locks in the same order."""
    keys: set[str] = set()
    for batch in batches:
        keys.add(f"company:{batch.company_id}")
        for c in batch.contacts:
            nk = name_key(c.name)
            candidates = (
                c.din and f"din:{c.din}",
                c.pan and f"pan:{c.pan}",
                c.phone.e164 and f"phone:{c.phone.e164}",
                c.email.address and f"email:{c.email.address}",
                nk and f"name:{batch.company_id}:{nk}",
            )
            keys.update(k for k in candidates if k)
    return sorted(
        int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "big", signed=True) for k in keys
    )


def suppression_hash(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


async def _drop_suppressed(conn: asyncpg.Connection, batches: list[CompanyContacts]) -> None:
    """Keep forgotten people out. A contact whose DIN or PAN was forgotten, or one without either
    whose phone or email was, is dropped; a person with an identity of their own only loses the
    forgotten phone or email (a secretary's, say, that a forgotten person shared)."""
    wanted = {
        (kind, suppression_hash(kind, value))
        for b in batches
        for c in b.contacts
        for kind, value in _keys(c)
        if value
    }
    if not wanted:
        return
    kinds, hashes = zip(*wanted, strict=True)
    rows = await conn.fetch(queries.SUPPRESSED_KEYS, list(kinds), list(hashes))
    if not rows:
        return
    suppressed = {(r["key_kind"], r["key_hash"]) for r in rows}

    def gone(kind: str, value: str | None) -> bool:
        return bool(value) and (kind, suppression_hash(kind, value or "")) in suppressed

    for b in batches:
        kept = []
        for c in b.contacts:
            if (
                gone("din", c.din)
                or gone("pan", c.pan)
                or (not identity_of(c) and (gone("phone", c.phone.e164) or gone("email", c.email.address)))
            ):
                b.suppressed += 1
                continue
            if gone("phone", c.phone.e164):
                c = replace(c, phone=Phone(None))
            if gone("email", c.email.address):
                c = replace(c, email=Email(None))
            kept.append(c)
        b.contacts = kept


def _keys(c: Contact) -> tuple[tuple[str, str | None], ...]:
    return (("din", c.din), ("pan", c.pan), ("phone", c.phone.e164), ("email", c.email.address))


def _person_from_row(row: asyncpg.Record) -> Person:
    values = {c: row[c] for c in PEOPLE_COLUMNS}
    values["addresses"] = (
        json.loads(row["addresses"]) if isinstance(row["addresses"], str) else row["addresses"]
    )
    return Person(id=row["id"], age=row["id"], company_ids=set(row["company_ids"]), **values)


def _column_arrays(people: list[Person]) -> list[list[Any]]:
    return [
        [json.dumps(p.addresses) if c == "addresses" else getattr(p, c) for p in people]
        for c in PEOPLE_COLUMNS
    ]


async def upsert_people(conn: asyncpg.Connection, batches: list[CompanyContacts]) -> list[UpsertOutcome]:
    """Store the batches' people and links, marking for Airtable every row it must receive.

    Runs inside the caller's transaction (so a job can change its own state in the same one);
    the caller retries the transaction on `asyncpg.DeadlockDetectedError`.
    """
    keys = _lock_keys(batches)
    if len(keys) <= MAX_KEY_LOCKS:
        await conn.execute(queries.LOCK_KEYS_SHARED_BULK)
        await conn.execute(queries.LOCK_KEYS, keys)
    else:
        # A bulk load would need more locks than PostgreSQL's lock table holds: it takes the
        # one bulk lock exclusively instead, which every smaller upsert holds shared.
        await conn.execute(queries.LOCK_BULK)
    await _drop_suppressed(conn, batches)
    company_ids = [b.company_id for b in batches]
    contacts = [c for b in batches for c in b.contacts]
    rows = await conn.fetch(
        queries.PEOPLE_CANDIDATES,
        list({c.din for c in contacts if c.din}),
        list({c.phone.e164 for c in contacts if c.phone.e164}),
        list({c.email.address for c in contacts if c.email.address}),
        company_ids,
        list({c.pan for c in contacts if c.pan}),
    )
    known = [_person_from_row(r) for r in rows]
    was_linked = {p.id: set(p.company_ids) for p in known}
    plan = resolve(batches, known)
    for conflict in plan.conflicts:
        log.warning("contacts.dedup_conflict", **conflict)

    new = [p for p in plan.index.people if p.id is None]
    if new:
        ids = sorted(r[0] for r in await conn.fetch(queries.PEOPLE_NEW_IDS, len(new)))
        for person, person_id in zip(new, ids, strict=True):
            person.id = person_id
        await conn.execute(queries.PEOPLE_INSERT, ids, *_column_arrays(new))
    changed = [p for p in plan.index.people if p.id in was_linked and p.changed]
    if changed:
        await conn.execute(
            queries.PEOPLE_UPDATE,
            [p.id for p in changed],
            *_column_arrays(changed),
            [p.visible for p in changed],
        )

    link_companies: list[int] = []
    link_people: list[int] = []
    for company_id, people in plan.links.items():
        link_companies += [company_id] * len(people)
        link_people += [p.id for p in people]  # type: ignore[misc]
    added = await conn.fetch(queries.LINKS_INSERT, link_companies, link_people)
    replace = [b.company_id for b in batches if b.replace_links]
    removed = (
        await conn.fetch(queries.LINKS_REMOVE_OTHERS, replace, link_companies, link_people) if replace else []
    )

    # Airtable's Company field lists every company of a person: a link added or removed means
    # the row must be pushed again, as does every linked row of a forced sync.
    already = {p.id for p in new} | {p.id for p in changed if p.visible}
    bump = {r["person_id"] for r in added} | {r["person_id"] for r in removed}
    for b in batches:
        if b.push_all:
            bump.update(p.id for p in plan.links[b.company_id])  # type: ignore[misc]
    bump -= already
    if bump:
        await conn.execute(queries.PEOPLE_MARK_FOR_PUSH, sorted(bump))

    removed_by_company: dict[int, list[int]] = defaultdict(list)
    for r in removed:
        removed_by_company[r["company_id"]].append(r["person_id"])
    new_ids = {p.id for p in new}
    changed_ids = {p.id for p in changed}
    return [
        UpsertOutcome(
            company_id=company_id,
            person_ids=[p.id for p in people],  # type: ignore[misc]
            contacts_new=sum(1 for p in people if p.id in new_ids),
            contacts_updated=sum(1 for p in people if p.id in changed_ids),
            unlinked_ids=removed_by_company[company_id],
            contacts_suppressed=sum(b.suppressed for b in batches if b.company_id == company_id),
            matched=[(c, p.id, how) for c, p, how in plan.matched[company_id]],  # type: ignore[misc]
        )
        for company_id, people in plan.links.items()
    ]
