"""People as filings write them, read again by today's rules. Earlier versions read a masked
number ("98XXXXXX45") or a placeholder ("9999999999") as a stranger's phone, a placeholder email
("na@na.com") as an address, hid an address behind a trailing full stop, dropped honorifics from
the name shown, and joined a DIN holder to a PAN holder through a shared phone or name:

* each phone is read again from its raw value: a masked number or a fax is no phone, a
  placeholder no value at all (not even a raw one), a field of several numbers gives its first
  usable one;
* each email is read again the same way;
* the name shown follows today's rule (honorifics as written, initials in capitals, a DIN written
  in the name left out) when it is the same name, so that nothing a person typed is replaced
  by another name;
* a person holding both a DIN and a PAN keeps the DIN; the PAN is let go and recorded in
  `identities_separated`, and `contact-sync backfill --recheck-identities` lists that person's
  companies: their next sync makes the PAN holder a person of their own.

Changed people are pushed to Airtable again. Runs in the migration's transaction.
"""

from __future__ import annotations

import asyncpg

from service import identifiers
from service.people.names import name_key
from service.people.names_shown import display_name
from service.people.normalize import normalize_contact, normalize_email


def _name(raw: str | None) -> str | None:
    """A name as today's rules read it: a DIN written in it and placeholders left out."""
    contact = normalize_contact({"fullName": raw}) if raw else None
    return contact.name if contact else None


def _shown(row: asyncpg.Record) -> str | None:
    """The name to show now, or the stored one when today's rule would show another name."""
    shown = display_name(_name(row["name_raw"] or row["name"]))
    if shown and name_key(shown) == name_key(_name(row["name"])):
        return shown
    return row["name"]


async def migrate(conn: asyncpg.Connection) -> None:
    await conn.execute("""
        CREATE TABLE identities_separated (
            person_id bigint NOT NULL REFERENCES people (id) ON DELETE CASCADE,
            pan text NOT NULL,
            separated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (person_id, pan)
        )""")
    await conn.execute("""
        INSERT INTO identities_separated (person_id, pan)
        SELECT id, pan FROM people WHERE din IS NOT NULL AND pan IS NOT NULL""")
    await conn.execute("""
        UPDATE people SET pan = NULL, updated_at = now()
        WHERE din IS NOT NULL AND pan IS NOT NULL""")
    rows = await conn.fetch(
        "SELECT id, name, name_raw, phone_e164, phone_raw, phone_type, email, email_raw FROM people"
    )
    changed = []
    for row in rows:
        phone = identifiers.phone(row["phone_raw"]) if row["phone_raw"] else None
        email = normalize_email(row["email_raw"]) if row["email_raw"] else None
        now = {
            "name": _shown(row),
            "phone_e164": phone.e164 if phone else row["phone_e164"],
            "phone_raw": phone.raw if phone else row["phone_raw"],
            "phone_type": phone.type if phone else row["phone_type"],
            "email": email.address if email else row["email"],
            "email_raw": email.raw if email else row["email_raw"],
        }
        if any(now[column] != row[column] for column in now):
            changed.append((row["id"], *now.values()))
    await conn.executemany(
        """UPDATE people SET name = $2, phone_e164 = $3, phone_raw = $4, phone_type = $5, email = $6,
               email_raw = $7, push_version = push_version + 1, updated_at = now()
           WHERE id = $1""",
        changed,
    )
