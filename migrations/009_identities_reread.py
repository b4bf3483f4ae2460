"""Every stored DIN read again the way `service.identifiers` reads one now (other scripts'
digits as ASCII: `०५६७८९१२` was stored as written and made a second person beside `05678912`),
and the people this shows to be one merged: the oldest person (and Contact Key) is kept, with all
the links; its empty fields take the other's values; the other's Airtable row becomes the kept
person's row when it has none, else it is deleted by the pusher. Corrected people are pushed
again. Runs in the migration's transaction.
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
UPDATE jobs SET person_ids = array_replace(person_ids, $2, $1) WHERE $2 = ANY(person_ids)"""

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


async def migrate(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch("SELECT id, din, airtable_id FROM people WHERE din IS NOT NULL ORDER BY id")
    read = {r["id"]: identifiers.din(r["din"]) or r["din"] for r in rows}
    groups: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for r in rows:
        groups[read[r["id"]]].append(r)
    for din, people in groups.items():
        keeper, *others = people  # the oldest first
        row_id = keeper["airtable_id"]
        for other in others:
            await conn.execute(_MERGE, keeper["id"], other["id"])
            await conn.execute(_FILL, keeper["id"], other["id"])
            await conn.execute("DELETE FROM people WHERE id = $1", other["id"])
            if other["airtable_id"] and row_id is None:
                row_id = other["airtable_id"]  # the other's row becomes the kept person's
            elif other["airtable_id"]:
                await conn.execute(
                    "INSERT INTO airtable_rows_to_delete (airtable_id) VALUES ($1) ON CONFLICT DO NOTHING",
                    other["airtable_id"],
                )
        if others or din != keeper["din"]:
            await conn.execute(
                "UPDATE people SET din = $2, airtable_id = $3, push_version = push_version + 1, "
                "updated_at = now() WHERE id = $1",
                keeper["id"],
                din,
                row_id,
            )
