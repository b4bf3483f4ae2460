"""People edit the Contacts table: before the service updates a row it merges three ways per field
(service/engine/merge.py), for which it keeps what it last wrote to each row (`airtable_written`;
by field id since, by field name here). Rows already in Airtable and up to date hold what the
service sent them, their values now: that is their record, under the field names the settings
give (AIRTABLE_FIELD_*). A row with a push still waiting keeps none (what it last sent is not
known): at its next push a value it holds that the source does not say is taken as a person's,
with the source's shown beside it.

`airtable_pending`: what a write that got no answer would have written (Airtable may have applied
it): the next merge takes a field holding that as the service's.

`shown_in`: the row of another person that shows this one, after a person merged two rows of two
identities by hand (service/engine/hand_merges.py): the person counts as in Airtable there."""

from __future__ import annotations

import json

import asyncpg

from service.config import DEFAULT_FIELDS, SettingsError, load_settings
from service.engine.merge import contact_values


def _field_names() -> dict[str, str]:
    # The settings were checked before any migration runs; should they not load here, the
    # defaults (a field whose name differs is then taken as the service's at its next push).
    try:
        return dict(load_settings().airtable_fields)
    except SettingsError:
        return dict(DEFAULT_FIELDS)


async def migrate(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "ALTER TABLE people ADD COLUMN airtable_written jsonb, ADD COLUMN airtable_pending jsonb,"
        " ADD COLUMN shown_in text"
    )
    rows = await conn.fetch(
        """SELECT p.id, p.name, p.phone_e164, p.phone_type, p.email, p.din, p.addresses, p.push_withheld,
               ARRAY(SELECT c.airtable_id FROM company_people cp JOIN companies c ON c.id = cp.company_id
                     WHERE cp.person_id = p.id AND NOT c.deleted_in_airtable
                     ORDER BY cp.created_at, c.id) AS company_record_ids
           FROM people p
           WHERE p.airtable_id IS NOT NULL AND p.pushed_version >= p.push_version
             AND NOT p.deleted_in_airtable"""
    )
    names = _field_names()
    written = []
    for row in rows:
        values = contact_values(row)
        if row["push_withheld"]:  # its Phone Type was held back for a missing option
            values["PHONE_TYPE"] = None
        written.append((row["id"], json.dumps({names[key]: value for key, value in values.items()})))
    if written:
        await conn.executemany("UPDATE people SET airtable_written = $2::jsonb WHERE id = $1", written)
