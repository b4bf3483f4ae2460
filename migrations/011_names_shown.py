"""Names stored by earlier versions were shown as the filing wrote them ("VIKRAM SETHI"): each is
shown now as people write it (`service.people.names_shown.display_name`, from the newest raw spelling), and
the rows that change are pushed to Airtable again. Runs in the migration's transaction."""

from __future__ import annotations

import asyncpg

from service.people.names_shown import display_name


async def migrate(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch("SELECT id, name, name_raw FROM people WHERE name IS NOT NULL")
    changed = [
        (r["id"], shown) for r in rows if (shown := display_name(r["name_raw"] or r["name"])) != r["name"]
    ]
    if changed:
        await conn.executemany(
            "UPDATE people SET name = $2, push_version = push_version + 1, updated_at = now() WHERE id = $1",
            changed,
        )
