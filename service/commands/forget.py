"""`contact-sync contacts forget`: a person removed from PostgreSQL and from Airtable, for good.

1. In one transaction: the person's keys (DIN, PAN, phone, email) go into `suppressions` as hashes,
   and the person is marked so that the pusher never sends them again; the keys go from every
   other place that holds them: other people's rows (a shared office phone, pushed again without
   it), the stored Attestr answers (kept without the person), the PANs migration 022 set aside.
2. Their Airtable row is deleted: by its id, and by Contact Key for a row whose id the service
   never learnt (a push cut short).
3. The person is deleted from PostgreSQL (their links and job rows with them).

If Airtable cannot be reached at step 2 nothing is lost: the person is already suppressed and
hidden from the pusher, and running the command again finishes the work. A later sync drops every
contact carrying a suppressed key (dedup.py), so the person does not come back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import asyncpg
import structlog

from service import identifiers, queries
from service.airtable.client import Airtable
from service.people.dedup import answer_kept, suppression_hash
from service.people.normalize import normalize_email

log = structlog.get_logger(__name__)


_COLUMNS = {"din": "din", "pan": "pan", "phone": "phone_e164", "email": "email"}


class AmbiguousPerson(Exception):
    """A phone or email shared by several people: the operator must say which (by DIN or PAN)."""


@dataclass
class Forgotten:
    people: int = 0
    airtable_rows: int = 0
    suppressed: list[str] = field(default_factory=list)  # the kinds of key now suppressed


def keys_of(
    *, din: str | None = None, pan: str | None = None, phone: str | None = None, email: str | None = None
) -> dict[str, str]:
    """The keys an operator typed, read as `identifiers` reads them (a phone in any Indian
    spelling, digits of any script), by kind. Raises ValueError for a DIN, PAN, phone or email the
    service cannot read: it could match no one."""
    keys: dict[str, str] = {}
    for kind, typed, read in (("din", din, identifiers.din), ("pan", pan, identifiers.pan)):
        if identifiers.plain(typed):
            if (value := read(typed)) is None:
                raise ValueError(f"{typed!r} is not a {kind.upper()}")
            keys[kind] = value
    # A phone or email the service cannot read is never stored nor matched: refused too.
    if identifiers.plain(phone):
        if (e164 := identifiers.phone(phone).e164) is None:
            raise ValueError(f"{phone!r} is not a phone number")
        keys["phone"] = e164
    if email and email.strip():
        if (address := normalize_email(email).address) is None:
            raise ValueError(f"{email!r} is not an email address")
        keys["email"] = address
    return keys


def _by_kind(keys: dict[str, str]) -> tuple[str | None, ...]:
    return keys.get("din"), keys.get("phone"), keys.get("email"), keys.get("pan")


async def carrying(pool: asyncpg.Pool, keys: dict[str, str]) -> list[asyncpg.Record]:
    """The people `forget` would take for these keys: rows of (name, din, pan, in_airtable)."""
    return await pool.fetch(queries.PEOPLE_CARRYING, *_by_kind(keys))


async def forget(
    pool: asyncpg.Pool, airtable: Airtable, keys: dict[str, str], *, every: bool = False
) -> Forgotten:
    """Suppress `keys` (and every key of the people carrying them) and delete those people from
    PostgreSQL and Airtable. Raises AmbiguousPerson when several people carry them and not
    `every`; AirtableError when their rows could not be deleted (run it again)."""
    if not keys:
        raise ValueError("Say whom to forget: --din, --pan, --phone or --email")
    done = Forgotten()
    async with pool.acquire() as conn, conn.transaction():
        people = await conn.fetch(queries.PEOPLE_TO_FORGET, *_by_kind(keys))
        if len(people) > 1 and not every:
            raise AmbiguousPerson(
                f"{len(people)} people carry these keys (a shared phone or email?): forget one by "
                "--din or --pan, or all of them with --all"
            )
        # The keys typed, and every key of the people found (a DIN reached by their phone, say).
        found = {(kind, p[column]) for p in people for kind, column in _COLUMNS.items() if p[column]}
        suppress = sorted(found | set(keys.items()))
        await conn.execute(
            queries.SUPPRESS_KEYS,
            [kind for kind, _ in suppress],
            [suppression_hash(kind, value) for kind, value in suppress],
            await conn.fetchval(queries.SUPPRESSION_GROUP),
        )
        # Marked as gone from Airtable: the pusher never sends them again meanwhile; their
        # companies' Contacts Found counts them no more.
        await conn.execute(queries.PEOPLE_DELETED_IN_AIRTABLE, [p["id"] for p in people])
        await conn.execute(queries.COMPANIES_RECOUNT, [p["id"] for p in people])
        await _erase_elsewhere(conn, suppress, [p["id"] for p in people])
    done.suppressed = sorted({kind for kind, _ in suppress})
    row_ids = {p["airtable_id"] for p in people if p["airtable_id"]}
    row_ids |= set(await airtable.contact_ids_by_key([p["contact_key"] for p in people]))
    done.airtable_rows = await airtable.delete_contacts(sorted(row_ids))
    await pool.execute(queries.PEOPLE_DELETE, [p["id"] for p in people])
    done.people = len(people)
    log.info("contacts.forgotten", people=done.people, airtable_rows=done.airtable_rows, keys=done.suppressed)
    return done


async def _erase_elsewhere(conn: asyncpg.Connection, suppress: list[tuple[str, str]], ids: list[int]) -> None:
    """The forgotten keys out of every other place that holds them: other people's rows (their
    phone or email alone goes, and Airtable's cell with it at the next push), the PANs 022 kept
    aside, and the stored Attestr answers (kept without the person, so that the cache still
    serves the company's other people; `answer_kept`)."""
    by_kind: dict[str, list[str]] = {kind: [] for kind in _COLUMNS}
    for kind, value in suppress:
        by_kind[kind].append(value)
    await conn.execute(queries.PEOPLE_FORGOTTEN_KEYS_REMOVED, by_kind["phone"], by_kind["email"], ids)
    await conn.execute(queries.IDENTITIES_SEPARATED_FORGOTTEN, by_kind["pan"])
    hashed = {(kind, suppression_hash(kind, value)) for kind, value in suppress}
    rewritten: list[tuple[int, str]] = []
    async for row in conn.cursor(queries.ANSWERS_WITH_CONTACTS):
        if (kept := answer_kept(json.loads(row["answer"]), hashed)) is not None:
            rewritten.append((row["id"], json.dumps(kept)))
    if rewritten:
        ids_, answers = zip(*rewritten, strict=True)
        await conn.execute(queries.ANSWERS_REWRITTEN, list(ids_), list(answers))


async def lift(pool: asyncpg.Pool, keys: dict[str, str]) -> list[str]:
    """`contacts unsuppress`: lift the suppression of `keys` and of every key suppressed with
    one of them by the same `forget`; returns the kinds lifted (empty when none was suppressed).
    The next sync of a company naming that person brings them back."""
    hashed = [(kind, suppression_hash(kind, value)) for kind, value in sorted(keys.items())]
    rows = await pool.fetch(queries.SUPPRESSIONS_LIFT, [k for k, _ in hashed], [h for _, h in hashed])
    lifted = sorted(row["key_kind"] for row in rows)
    log.info("contacts.unsuppressed", keys=lifted)
    return lifted
