"""Merges made by hand in Airtable: a person keeps one row of the service's and deletes another,
having moved the deleted row's company links onto the kept one (as Airtable's Dedupe extension
does). The service learns that the two are one person instead of taking the row as deleted.

When the pusher finds a row gone, it reads the rows of the people who could be the same person
(a name that agrees, or the same phone or email) and looks for one that now holds every company
link the service had made on the gone row, links the service did not make there itself. Exactly
one such row is a merge; none, or several (the service cannot tell which), is a deletion.

* One person or no identity between them: the gone row's person is merged into the kept row's in
  PostgreSQL (links moved, empty fields filled, the DIN or PAN taken over), so later syncs update
  the kept row and never re-create the other; both companies count the person.
* Two identities (two DINs, a DIN and a PAN): both stay people in PostgreSQL, since two
  identities are never merged by the service, but the person's choice is kept: the gone row is
  not re-created, the kept row's person is linked to the other's companies, and it is logged.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog

from service import queries
from service.airtable.client import Airtable
from service.config import Settings
from service.engine.merge import LINKS, recorded
from service.engine.outbox import contact_field_names
from service.people.dedup import PEOPLE_COLUMNS
from service.people.names import names_agree

log = structlog.get_logger(__name__)

# The most rows read back to look for the kept one (one request).
CANDIDATES = 100


async def adopt(
    pool: asyncpg.Pool, airtable: Airtable, settings: Settings, gone: list[asyncpg.Record]
) -> set[int]:
    """Look for a merge made by hand behind each row found gone (rows from PEOPLE_CLAIM_PUSH);
    returns the ids of the people merged into another (the others are deletions). Reads one
    request a gone row that has candidates."""
    company = settings.field("COMPANY")
    names = contact_field_names(airtable, settings)
    adopted: set[int] = set()
    for row in gone:
        links = set(_service_links(row, names))
        if not links:
            continue
        candidates = [
            c
            for c in await pool.fetch(queries.MERGE_CANDIDATES, row["id"], CANDIDATES)
            if names_agree(c["name"], row["name"])
        ]
        if not candidates:
            continue
        now = await airtable.contacts_now([c["airtable_id"] for c in candidates], [company])
        keepers = [
            c
            for c in candidates
            if c["airtable_id"] in now
            and links <= set(now[c["airtable_id"]].get(company) or [])
            and not links <= set(_service_links(c, names))
        ]
        if len(keepers) == 1:
            await _merge(pool, keepers[0], row)
            adopted.add(row["id"])
    return adopted


def _service_links(row: Any, names: dict[str, tuple[str | None, str]]) -> list[str]:
    """The company links the service last wrote to the row (else the ones it means to)."""
    links = (recorded(row["airtable_written"], names) or {}).get(LINKS)
    return links if isinstance(links, list) else list(row["company_record_ids"] or [])


def _identity(person: asyncpg.Record) -> tuple[str, str] | None:
    if person["din"]:
        return "din", person["din"]
    return ("pan", person["pan"]) if person["pan"] else None


async def _merge(pool: asyncpg.Pool, keeper: asyncpg.Record, gone: asyncpg.Record) -> None:
    async with pool.acquire() as conn, conn.transaction():
        kept = await conn.fetchrow(queries.PERSON_FOR_MERGE, keeper["id"])
        other = await conn.fetchrow(queries.PERSON_FOR_MERGE, gone["id"])
        await conn.execute(queries.MERGE_LINKS, keeper["id"], gone["id"])
        two = _identity(kept) and _identity(other) and _identity(kept) != _identity(other)
        if two:
            # Two identities are never one person to the service; the person's choice stands.
            await conn.execute(queries.PERSON_SHOWN_IN, gone["id"], keeper["airtable_id"])
        else:
            await conn.execute(queries.PEOPLE_DELETE, [gone["id"]])
            await conn.execute(
                *queries.MERGE_FILL.bind(id=keeper["id"], **{c: other[c] for c in PEOPLE_COLUMNS})
            )
        await conn.execute(queries.COMPANIES_RECOUNT, [keeper["id"]])
    if two:
        log.warning(
            "airtable.hand_merge_of_two_identities",
            kept_contact_key=keeper["contact_key"],
            gone_contact_key=gone["contact_key"],
            note="two identities merged by hand: both kept in PostgreSQL, the kept row linked to both",
        )
    else:
        log.info(
            "airtable.hand_merge_adopted",
            kept_contact_key=keeper["contact_key"],
            gone_contact_key=gone["contact_key"],
        )
