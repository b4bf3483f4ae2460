"""Storing people, de-duplicated (the rules are `matching`'s): set-based, with advisory locks
on every key in sorted order, one query for every person the batch could match (locked `FOR
UPDATE`), the matching in memory, then one statement each to insert, update, link and mark rows
for Airtable, however many contacts the batch holds. Forgotten people are kept out here.

`upsert_people` runs these steps in order, each a function of its own:

1. `_lock`: advisory locks on every key the batch's contacts hold (`_lock_keys`).
2. `_drop_suppressed`: forgotten people left out of the batches.
3. `_load_candidates`: the stored people the contacts could be (`_candidate_keys`), locked.
4. `matching.resolve`: the matching, in memory, on plain data (no database).
5. `_store_people`: the new people inserted, the changed ones updated.
6. `_store_links`: each company linked to its answer's people (others unlinked, unless limited).
7. `_mark_for_push`: the rows Airtable must receive again (`_to_push`).
8. `_outcomes`: what each company's sync reports.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
import structlog

from service import queries
from service.people.matching import CompanyContacts, Person, Plan, identity_of, resolve
from service.people.names import name_key
from service.people.normalize import Contact, Email, Phone, normalize_contact

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


async def upsert_people(conn: asyncpg.Connection, batches: list[CompanyContacts]) -> list[UpsertOutcome]:
    """Store the batches' people and links, marking for Airtable every row it must receive.

    Runs inside the caller's transaction (so a job can change its own state in the same one);
    the caller retries the transaction on `asyncpg.DeadlockDetectedError`. Drops forgotten
    contacts from `batches` (counting them in each batch's `suppressed`). Returns one outcome per
    company, in the order of `batches`' first appearance of each company.
    """
    await _lock(conn, batches)
    await _drop_suppressed(conn, batches)
    known = await _load_candidates(conn, _candidate_keys(batches))
    stored_ids = {p.id for p in known}  # new people get ids too, before the updates are chosen
    plan = resolve(batches, known)
    for conflict in plan.conflicts:
        log.warning("contacts.dedup_conflict", **conflict)
    written = await _store_people(conn, plan.index.people, stored_ids)
    links = await _store_links(conn, batches, plan.links)
    await _mark_for_push(conn, _to_push(batches, plan.links, written, links))
    return _outcomes(batches, plan, written, links)


# --- 1. locks ----------------------------------------------------------------------------------


async def _lock(conn: asyncpg.Connection, batches: list[CompanyContacts]) -> None:
    """Take the transaction's advisory locks on every key of the batches, in sorted order: the
    bulk lock shared and each key's lock, or, with more than `MAX_KEY_LOCKS` keys, the bulk lock
    exclusively. Blocks until had; may raise `asyncpg.DeadlockDetectedError`."""
    keys = _lock_keys(batches)
    if len(keys) <= MAX_KEY_LOCKS:
        await conn.execute(queries.LOCK_KEYS, keys)  # the bulk lock shared, then the keys
    else:
        # A bulk load would need more locks than PostgreSQL's lock table holds: it takes the
        # one bulk lock exclusively instead, which every smaller upsert holds shared.
        await conn.execute(queries.LOCK_BULK)


def _lock_keys(batches: list[CompanyContacts]) -> list[int]:
    """64-bit advisory lock keys for every key the batch may read or write, sorted so that two
    transactions always take shared locks in the same order."""
    keys: set[str] = set()
    for batch in batches:
        keys.add(f"company:{batch.company_id}")
        for c in batch.contacts:
            keys.update(_contact_keys(batch.company_id, c))
    return sorted(
        int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "big", signed=True) for k in keys
    )


def _contact_keys(company_id: int, c: Contact) -> list[str]:
    """The keys a contact can match a person by ("din:…", "pan:…", "phone:…", "email:…",
    "name:<company id>:<name key>"), its empty ones left out."""
    nk = name_key(c.name)
    candidates = (
        c.din and f"din:{c.din}",
        c.pan and f"pan:{c.pan}",
        c.phone.e164 and f"phone:{c.phone.e164}",
        c.email.address and f"email:{c.email.address}",
        nk and f"name:{company_id}:{nk}",
    )
    return [k for k in candidates if k]


# --- 2. forgotten people -----------------------------------------------------------------------


def suppression_hash(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


async def _drop_suppressed(conn: asyncpg.Connection, batches: list[CompanyContacts]) -> None:
    """Keep forgotten people out. A contact whose DIN or PAN was forgotten, or one without either
    whose phone or email was, is dropped; a person with an identity of their own only loses the
    forgotten phone or email (a secretary's, say, that a forgotten person shared).

    Changes `batches` in place: their `contacts` without the forgotten, each batch's `suppressed`
    counting the contacts it dropped."""
    suppressed = await _suppressed(conn, batches)
    if not suppressed:
        return
    for b in batches:
        kept = [c for c in (unforgotten(c, suppressed) for c in b.contacts) if c is not None]
        b.suppressed += len(b.contacts) - len(kept)
        b.contacts = kept


async def _suppressed(conn: asyncpg.Connection, batches: list[CompanyContacts]) -> set[tuple[str, str]]:
    """Which of the batches' keys were forgotten, as (kind, `suppression_hash`) pairs; no query
    when the batches hold no key."""
    wanted = {
        (kind, suppression_hash(kind, value))
        for b in batches
        for c in b.contacts
        for kind, value in _keys(c)
        if value
    }
    if not wanted:
        return set()
    kinds, hashes = zip(*wanted, strict=True)
    rows = await conn.fetch(queries.SUPPRESSED_KEYS, list(kinds), list(hashes))
    return {(r["key_kind"], r["key_hash"]) for r in rows}


def unforgotten(c: Contact, suppressed: set[tuple[str, str]]) -> Contact | None:
    """The contact as it may be stored: None when its DIN or PAN was forgotten, or, without
    either, its phone or email; otherwise without a forgotten phone or email."""

    def gone(kind: str, value: str | None) -> bool:
        return bool(value) and (kind, suppression_hash(kind, value or "")) in suppressed

    phone_gone, email_gone = gone("phone", c.phone.e164), gone("email", c.email.address)
    if gone("din", c.din) or gone("pan", c.pan) or (not identity_of(c) and (phone_gone or email_gone)):
        return None
    if phone_gone:
        c = replace(c, phone=Phone(None))
    if email_gone:
        c = replace(c, email=Email(None))
    return c


def answer_kept(raw: Any, suppressed: set[tuple[str, str]]) -> Any | None:
    """A stored Attestr answer as it may be kept once `suppressed` keys were forgotten, by
    `unforgotten`'s rule: a contact it drops is left out; one that only loses a phone or email
    keeps the rest (the field as Attestr wrote it goes whole). None when nothing in it changes."""
    listed = raw.get("contacts") if isinstance(raw, dict) else None
    if not suppressed or not isinstance(listed, list):
        return None
    kept: list[Any] = []
    for item in listed:
        if (contact := normalize_contact(item)) is not None:
            if (left := unforgotten(contact, suppressed)) is None:
                continue
            if left.phone.e164 != contact.phone.e164:
                item = {**item, "mobileNumber": None}
            if left.email.address != contact.email.address:
                item = {**item, "emailAddress": None}
        kept.append(item)
    return None if kept == listed else {**raw, "contacts": kept}


async def answer_to_store(conn: asyncpg.Connection, raw: Any, read: list[Contact] | None = None) -> Any:
    """An answer Attestr just gave, as it may be stored: the people forgotten before it came left
    out (`answer_kept`), so that no stored answer brings back what `contacts forget` erased.
    `read`: its contacts as already normalised, when each listed one is there, in order."""
    listed = raw.get("contacts") if isinstance(raw, dict) else None
    if not isinstance(listed, list):
        return raw
    if read is not None and len(read) == len(listed):
        contacts = read
    else:
        contacts = [c for c in map(normalize_contact, listed) if c is not None]
    suppressed = await _suppressed(conn, [CompanyContacts(0, contacts)])
    return answer_kept(raw, suppressed) or raw


def _keys(c: Contact) -> tuple[tuple[str, str | None], ...]:
    return (("din", c.din), ("pan", c.pan), ("phone", c.phone.e164), ("email", c.email.address))


# --- 3. the people the contacts could be -------------------------------------------------------


@dataclass(frozen=True)
class _CandidateKeys:
    """The keys that find the stored people a batch could match: `PEOPLE_CANDIDATES`' parameters,
    each without repeats, in no particular order."""

    dins: list[str]
    phones: list[str]
    emails: list[str]
    company_ids: list[int]  # the people already linked to them, for (same company, same name)
    pans: list[str]


def _candidate_keys(batches: list[CompanyContacts]) -> _CandidateKeys:
    """The keys of the batches' contacts (after forgotten ones were dropped); empty keys left out."""
    contacts = [c for b in batches for c in b.contacts]
    return _CandidateKeys(
        dins=_distinct(c.din for c in contacts),
        phones=_distinct(c.phone.e164 for c in contacts),
        emails=_distinct(c.email.address for c in contacts),
        company_ids=[b.company_id for b in batches],
        pans=_distinct(c.pan for c in contacts),
    )


def _distinct(values: Iterable[str | None]) -> list[str]:
    """The non-empty values, each once, in no particular order."""
    return list({v for v in values if v})


async def _load_candidates(conn: asyncpg.Connection, keys: _CandidateKeys) -> list[Person]:
    """Every stored person one of the keys finds, by id, locked `FOR UPDATE` until the
    transaction ends; each with the ids of the companies it is linked to."""
    rows = await conn.fetch(
        queries.PEOPLE_CANDIDATES, keys.dins, keys.phones, keys.emails, keys.company_ids, keys.pans
    )
    return [_person_from_row(r) for r in rows]


def _person_from_row(row: asyncpg.Record) -> Person:
    values = {c: row[c] for c in PEOPLE_COLUMNS}
    values["addresses"] = (
        json.loads(row["addresses"]) if isinstance(row["addresses"], str) else row["addresses"]
    )
    # Ids grow with time: the id is the person's age (the oldest wins a weak key).
    return Person(id=row["id"], age=row["id"], company_ids=set(row["company_ids"]), **values)


# --- 5. people ----------------------------------------------------------------------------------


@dataclass
class _Written:
    """The people `_store_people` wrote: inserted (now with their ids) and updated."""

    new: list[Person]
    changed: list[Person]


async def _store_people(
    conn: asyncpg.Connection, people: list[Person], stored_ids: set[int | None]
) -> _Written:
    """Insert the people without an id (giving each one, in the order of `people`) and update
    the stored ones (their id in `stored_ids`) that the matching changed: one statement each.
    An update bumps the push version when a field Airtable shows changed."""
    new = [p for p in people if p.id is None]
    if new:
        await _insert_people(conn, new)
    changed = [p for p in people if p.id in stored_ids and p.changed]
    if changed:
        await _update_people(conn, changed)
    return _Written(new, changed)


async def _insert_people(conn: asyncpg.Connection, new: list[Person]) -> None:
    """Insert the new people, each given its id (ascending in the order of `new`)."""
    ids = sorted(r[0] for r in await conn.fetch(*queries.PEOPLE_INSERT.bind(**_column_arrays(new))))
    for person, person_id in zip(new, ids, strict=True):
        person.id = person_id


async def _update_people(conn: asyncpg.Connection, changed: list[Person]) -> None:
    """Write every column of these stored people (each has an id); the push version of those
    with a `visible` change goes up."""
    await conn.execute(
        *queries.PEOPLE_UPDATE.bind(
            id=[p.id for p in changed], **_column_arrays(changed), visible=[p.visible for p in changed]
        )
    )


def _column_arrays(people: list[Person]) -> dict[str, list[Any]]:
    """Each column of `PEOPLE_COLUMNS` → its values, for `unnest` (addresses as JSON)."""
    return {
        c: [json.dumps(p.addresses) if c == "addresses" else getattr(p, c) for p in people]
        for c in PEOPLE_COLUMNS
    }


# --- 6. links -----------------------------------------------------------------------------------


@dataclass
class _LinkChanges:
    """The (company id, person id) links `_store_links` added and removed."""

    added: list[tuple[int, int]]
    removed: list[tuple[int, int]]


async def _store_links(
    conn: asyncpg.Connection, batches: list[CompanyContacts], links: dict[int, list[Person]]
) -> _LinkChanges:
    """Link each company to its people (every person has an id by now), then unlink from a
    company whose batch replaces its links everyone not among them (a sync limited by
    `max_contacts` unlinks no one)."""
    companies, people = _link_arrays(links)
    replacing = [b.company_id for b in batches if b.replace_links]
    changed = await conn.fetch(queries.LINKS_SET, replacing, companies, people)
    return _LinkChanges(
        added=[(r["company_id"], r["person_id"]) for r in changed if r["added"]],
        removed=[(r["company_id"], r["person_id"]) for r in changed if not r["added"]],
    )


def _link_arrays(links: dict[int, list[Person]]) -> tuple[list[int], list[int]]:
    """The links as two parallel arrays, company ids and person ids, for `unnest`."""
    companies: list[int] = []
    people: list[int] = []
    for company_id, linked in links.items():
        companies += [company_id] * len(linked)
        people += [p.id for p in linked]  # type: ignore[misc]
    return companies, people


# --- 7. what Airtable must receive --------------------------------------------------------------


def _to_push(
    batches: list[CompanyContacts], links: dict[int, list[Person]], written: _Written, changes: _LinkChanges
) -> set[int]:
    """Ids of the people whose row Airtable must receive again and whose push version no write
    bumped already (an insert, or an update of a field Airtable shows)."""
    # Airtable's Company field lists every company of a person: a link added or removed means
    # the row must be pushed again, as does every linked row of a forced sync.
    already = {p.id for p in written.new} | {p.id for p in written.changed if p.visible}
    bump = {person_id for _, person_id in changes.added} | {person_id for _, person_id in changes.removed}
    for b in batches:
        if b.push_all:
            bump.update(p.id for p in links[b.company_id])  # type: ignore[misc]
    return bump - already  # type: ignore[return-value]


async def _mark_for_push(conn: asyncpg.Connection, person_ids: set[int]) -> None:
    """Bump the push version of these people (one statement, in id order; none when empty)."""
    if person_ids:
        await conn.execute(queries.PEOPLE_MARK_FOR_PUSH, sorted(person_ids))


# --- 8. what is reported ------------------------------------------------------------------------


def _outcomes(
    batches: list[CompanyContacts], plan: Plan, written: _Written, changes: _LinkChanges
) -> list[UpsertOutcome]:
    """One outcome per company of `plan.links`, in its order: the company's people in the answer's
    order, how many were new or updated, whom it unlinked, how many contacts were forgotten, and
    how each contact matched."""
    unlinked: dict[int, list[int]] = defaultdict(list)
    for company_id, person_id in changes.removed:
        unlinked[company_id].append(person_id)
    suppressed: dict[int, int] = defaultdict(int)  # a company may come in more than one batch
    for b in batches:
        suppressed[b.company_id] += b.suppressed
    new_ids = {p.id for p in written.new}
    changed_ids = {p.id for p in written.changed}
    return [
        UpsertOutcome(
            company_id=company_id,
            person_ids=[p.id for p in people],  # type: ignore[misc]
            contacts_new=_how_many(people, new_ids),
            contacts_updated=_how_many(people, changed_ids),
            unlinked_ids=unlinked[company_id],
            contacts_suppressed=suppressed[company_id],
            matched=[(c, p.id, how) for c, p, how in plan.matched[company_id]],  # type: ignore[misc]
        )
        for company_id, people in plan.links.items()
    ]


def _how_many(people: list[Person], ids: set[int | None]) -> int:
    return sum(1 for p in people if p.id in ids)
