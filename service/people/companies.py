"""Companies: the Airtable Companies records the service has been asked about."""

from __future__ import annotations

import asyncpg

from service import queries


async def ensure_companies(
    conn: asyncpg.Connection, companies: list[tuple[str, str | None, str | None]]
) -> dict[str, int]:
    """Create or refresh companies from (Airtable record id, CIN, name); return their ids."""
    record_ids, cins, names = (
        (list(col) for col in zip(*companies, strict=True)) if companies else ([], [], [])
    )
    rows = await conn.fetch(queries.COMPANIES_ENSURE, record_ids, cins, names)
    return {r["airtable_id"]: r["id"] for r in rows}


async def ensure_company(
    conn: asyncpg.Connection, record_id: str, cin: str | None = None, name: str | None = None
) -> int:
    return (await ensure_companies(conn, [(record_id, cin, name)]))[record_id]
