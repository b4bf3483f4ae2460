"""Every stored DIN read again the way `service.identifiers` reads one now (other scripts'
digits as ASCII: `०५६७८९१२` was stored as written and made a second person beside `05678912`),
and the people this shows to be one merged: the oldest person (and Contact Key) is kept, with all
the links; its empty fields take the other's values. Of their Airtable rows a live one is kept (a
row a person deleted by hand is never brought back, nor is a live row given up for it); a second
live row is deleted by the pusher. Corrected people are pushed again. Runs in the migration's
transaction.
"""

from __future__ import annotations

from collections import defaultdict

import asyncpg

from service import identifiers

_MERGE = """
WITH moved AS (
    INSERT INTO company_people (company_id, person_id, created_at)
    SELECT company_id, $1, created_at FROM company_people WHERE person_id = $2
    ON CONFLICT DO NOTHING
)
UPDATE jobs SET person_ids = ARRAY(SELECT DISTINCT unnest(array_replace(person_ids, $2, $1)))
WHERE $2 = ANY(person_ids)"""

_FILL = """
UPDATE people k SET
    name = coalesce(k.name, d.name), name_raw = coalesce(k.name_raw, d.name_raw),
    phone_e164 = coalesce(k.phone_e164, d.phone_e164),
    phone_raw = CASE WHEN k.phone_e164 IS NULL THEN coalesce(d.phone_raw, k.phone_raw) ELSE k.phone_raw END,
    phone_type = CASE WHEN k.phone_e164 IS NULL THEN d.phone_type ELSE k.phone_type END,
    email = coalesce(k.email, d.email), email_raw = coalesce(k.email_raw, d.email_raw),
    addresses = CASE WHEN k.addresses = '[]'::jsonb THEN d.addresses ELSE k.addresses END,
    pan = coalesce(k.pan, d.pan)
FROM people d WHERE k.id = $1 AND d.id = $2"""


def _row(people: list[asyncpg.Record]) -> tuple[str | None, bool, list[str]]:
    """(the kept row, whether the person was deleted by hand, rows to delete) for one person
    seen as several: the oldest live row is kept and the other live ones go; with no live row,
    a row deleted by hand says the person is not to be shown again."""
    live = [p["airtable_id"] for p in people if p["airtable_id"] and not p["deleted_in_airtable"]]
    if live:
        return live[0], False, live[1:]
    return None, any(p["deleted_in_airtable"] for p in people), []


async def migrate(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "SELECT id, din, airtable_id, deleted_in_airtable FROM people WHERE din IS NOT NULL ORDER BY id"
    )
    groups: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for r in rows:
        groups[identifiers.din(r["din"]) or r["din"]].append(r)
    for din, people in groups.items():
        keeper, *others = people  # the oldest first
        if not others and din == keeper["din"]:
            continue
        row_id, deleted, gone = _row(people)
        for other in others:
            await conn.execute(_MERGE, keeper["id"], other["id"])
            await conn.execute(_FILL, keeper["id"], other["id"])
            await conn.execute("DELETE FROM people WHERE id = $1", other["id"])
        for airtable_id in gone:
            await conn.execute(
                "INSERT INTO airtable_rows_to_delete (airtable_id) VALUES ($1) ON CONFLICT DO NOTHING",
                airtable_id,
            )
        await conn.execute(
            "UPDATE people SET din = $2, airtable_id = $3, deleted_in_airtable = $4,"
            " push_version = push_version + 1, updated_at = now() WHERE id = $1",
            keeper["id"],
            din,
            row_id,
            deleted,
        )
