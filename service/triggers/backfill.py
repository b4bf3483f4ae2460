"""`contact-sync backfill` and `contact-sync airtable resync`: work on every company at once.

Backfill reads the Companies table (formulas through `pyairtable.formulas`, never string
formatting: a company called O'Brien must not break the query), works out which companies need a
sync and what that will cost in Attestr calls, and queues them. `--recheck-identities` picks
instead, from PostgreSQL, the companies whose people may have been merged before PANs were read.
Resync marks every row for the pusher again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from service import identifiers, queries
from service.airtable.client import Airtable
from service.attestr.client import parse_answer
from service.config import Settings
from service.engine import jobs


@dataclass
class BackfillPlan:
    with_cin: int = 0
    already_synced: int = 0
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (record id, what the CIN field holds)
    to_sync: list[tuple[str, str]] = field(default_factory=list)  # (record id, CIN)
    attestr_calls: int = 0  # distinct CINs without a recent stored answer


async def plan(
    pool: asyncpg.Pool,
    airtable: Airtable,
    settings: Settings,
    *,
    every: bool,
    on_page: Callable[[int], None] = lambda _n: None,
) -> BackfillPlan:
    from pyairtable import formulas  # at first use: see airtable/client.py

    cin_field = settings.field("CIN")
    found = BackfillPlan()
    synced = {r["airtable_id"] for r in await pool.fetch(queries.COMPANIES_WITH_CONTACTS)}
    has_cin = formulas.NOT(formulas.EQ(formulas.Field(cin_field), ""))
    for record in await airtable.list_records(
        airtable.companies, formula=has_cin, fields=[cin_field], on_page=on_page
    ):
        found.with_cin += 1
        value = record["fields"].get(cin_field)
        raw = identifiers.plain(value) or ""
        cin = identifiers.cin(value)
        if cin is None:
            found.invalid.append((record["id"], raw.strip()[:40]))
        else:
            found.already_synced += record["id"] in synced
            if every or record["id"] not in synced:
                found.to_sync.append((record["id"], cin))
    await _cost(pool, settings, found)
    return found


async def plan_recheck(pool: asyncpg.Pool, settings: Settings) -> BackfillPlan:
    """The companies whose people may have been merged through a shared phone or email before
    PANs were read (`backfill --recheck-identities`). Of the companies last synced before the
    migration `008_identities.sql` was applied (`with_cin` counts them), those whose latest stored
    Attestr answer names a signatory by PAN or by nothing, and those linked to a person with
    neither a DIN nor a PAN; and every company linked to a person whose PAN was let go because a
    shared phone or name had joined it to a DIN (migration 022), until it is synced again. From
    PostgreSQL only; syncing them again reuses a recent stored answer for free. A company whose
    answers have been pruned is found only by the second test."""
    found = BackfillPlan()
    for row in await pool.fetch(queries.RECHECK_CANDIDATES):
        found.with_cin += 1
        answer = json.loads(row["answer"]) if row["answer"] else None
        unidentified = answer is not None and any(
            not c.din for c in parse_answer(row["cin"], answer, settings.attestr_max_contacts).contacts
        )
        if row["separated"] or row["identityless"] or unidentified:
            found.to_sync.append((row["airtable_id"], row["cin"]))
        else:
            found.already_synced += 1
    await _cost(pool, settings, found)
    return found


async def _cost(pool: asyncpg.Pool, settings: Settings, found: BackfillPlan) -> None:
    found.attestr_calls = await attestr_calls(pool, settings, [cin for _, cin in found.to_sync])


async def attestr_calls(pool: asyncpg.Pool, settings: Settings, cins: list[str]) -> int:
    """How many paid Attestr calls syncing these CINs costs: the distinct ones without a stored
    answer recent enough for the cache (a forced refresh pays even then: not counted here)."""
    distinct = sorted(set(cins))
    answered = {
        r["cin"]
        for r in await pool.fetch(
            queries.CINS_ANSWERED_RECENTLY,
            distinct,
            settings.attestr_cache_ttl_days,
            settings.attestr_no_data_ttl_days,
        )
    }
    return len(set(distinct) - answered)


async def enqueue(
    pool: asyncpg.Pool, backfill: BackfillPlan, on_queued: Callable[[], None] = lambda: None
) -> int:
    """Queue a sync for every company of the plan; returns how many were new jobs."""
    new = 0
    for record_id, cin in backfill.to_sync:
        _job_id, deduplicated = await jobs.enqueue(pool, record_id, cin, source="backfill")
        new += not deduplicated
        on_queued()
    await pool.execute(queries.NOTIFY_JOBS)  # one wake-up for the running workers, not one per job
    return new


async def resync(
    pool: asyncpg.Pool, *, restore_deleted: bool = False, overwrite: bool = False
) -> tuple[int, int]:
    """Mark every contact and company status for Airtable again; returns (contacts, companies).
    `overwrite`: the source's values replace what people changed in the rows (engine/merge.py)."""
    async with pool.acquire() as conn, conn.transaction():
        if restore_deleted:
            await conn.execute(queries.RESYNC_RESTORE_DELETED)
        if overwrite:
            await conn.execute(queries.RESYNC_OVERWRITE)
        people = await conn.fetchval(queries.RESYNC_PEOPLE)
        companies = await conn.fetchval(queries.RESYNC_COMPANIES)
        await conn.execute(queries.NOTIFY_PUSH)
    return people, companies
