"""`contact-sync import` from an older PostgreSQL contacts table, messy as such tables are."""

from __future__ import annotations

import os

import asyncpg

from tests.command_line import contact_sync

A, B = "recAAAAAAAAAAAAAA", "recBBBBBBBBBBBBBB"


async def test_import_an_older_contacts_table(db_url: str, pool: asyncpg.Pool) -> None:
    await pool.execute("""
        CREATE TABLE contacts (id serial, index_id text, full_name text, mobile_number text,
                               email_address text, company_airtable_id text, addresses jsonb,
                               airtable_id text)""")

    rows = [
        (
            "07123456",
            "ANANYA RAO",
            "+91 98450 12345",
            "Ananya@X.example",
            A,
            '[{"city": "Pune"}]',
            "recOLD00000000001",
        ),
        ("07123456", "Ananya Rao", "09845012345", None, B, None, "recOLD00000000002"),  # on two boards
        (None, "Secretary", "98450 99999", "cs@x.example", A, None, None),
        (None, "secretary", "+919845099999", "CS@X.EXAMPLE ", A, None, None),  # the same, written again
        ("08000001", "Director One", "98450 99999", None, B, None, None),  # shares the secretary's phone
        (None, None, None, None, A, None, None),  # nothing usable
        ("08000002", "No Company", "9845011111", None, None, None, None),
    ]
    await pool.executemany(
        "INSERT INTO contacts (index_id, full_name, mobile_number, email_address, company_airtable_id, "
        "addresses, airtable_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        rows,
    )
    done = contact_sync("import", env={**os.environ, "DATABASE_URL": db_url})
    assert done.returncode == 0, done.stderr
    assert "Read 7 row(s) of contacts" in done.stdout
    assert "3 new people" in done.stdout and "2 row(s) skipped" in done.stdout
    assert "1 older Airtable row(s) kept" in done.stdout
    people = await pool.fetch("""
        SELECT p.din, p.name, p.phone_e164, p.email, p.airtable_id,
               ARRAY(SELECT c.airtable_id FROM company_people cp JOIN companies c ON c.id = cp.company_id
                     WHERE cp.person_id = p.id ORDER BY 1) AS companies
        FROM people p ORDER BY p.id""")
    assert [tuple(p) for p in people] == [
        ("07123456", "Ananya Rao", "+919845012345", "ananya@x.example", "recOLD00000000001", [A, B]),
        (None, "Secretary", "+919845099999", "cs@x.example", None, [A]),
        ("08000001", "Director One", "+919845099999", None, None, [B]),
    ]
    missing = contact_sync("import", "--table", "no_such_table", env={**os.environ, "DATABASE_URL": db_url})
    assert missing.returncode == 1 and "There is no table" in missing.stderr
