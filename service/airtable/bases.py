"""Which Airtable base the service's rows were written to.

The rows' record ids, what the service wrote to each, and which rows people deleted by hand are
one base's. A different `AIRTABLE_BASE_ID` (a trial base left for the production one) is a new
base: its rows are written fresh as its companies are synced, and nothing is taken as deleted by
hand there; without this record the old base's rows, missing from the new one, looked deleted by
hand and were never written again.
"""

from __future__ import annotations

import asyncpg
import structlog

from service import queries

log = structlog.get_logger(__name__)


async def settle(pool: asyncpg.Pool, base_id: str | None) -> str | None:
    """Record `base_id` as the base rows are written to. When another one was recorded, the rows
    are left to the old base (`AIRTABLE_BASE_LEFT_BEHIND`), `airtable.base_changed` is logged, and
    the old base's id is returned; else None. Every process may call it at start: the first one
    to see the change makes it."""
    if not base_id:
        return None
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(queries.AIRTABLE_BASE_FIRST, base_id)
        recorded = await conn.fetchval(queries.AIRTABLE_BASE_LOCKED)
        if recorded == base_id:
            return None
        await conn.execute(queries.AIRTABLE_BASE_SWITCHED, base_id)
        await conn.execute(queries.AIRTABLE_BASE_LEFT_BEHIND)
    log.warning(
        "airtable.base_changed",
        previous=recorded,
        base=base_id,
        hint="rows are written fresh to the new base as its companies sync; the old base is left as it is",
    )
    return recorded
