"""Migrations: recorded, applied once, safe when two processes start at the same moment."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from service import queries
from service.airtable.client import Airtable
from service.database import create_pool
from service.engine.pusher import Pusher
from service.migrations import migrate, migration_files, pending_migrations
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from tests.conftest import Running
from tests.flow import settings_for


async def _applied(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
    finally:
        await conn.close()


async def test_migrate_twice_applies_each_file_once(empty_db_url: str) -> None:
    names = [p.name for p in migration_files()]
    conn = await asyncpg.connect(empty_db_url)
    try:
        assert await pending_migrations(conn) == names
        assert await migrate(conn) == names
        assert await migrate(conn) == []
        assert await pending_migrations(conn) == []
        assert await conn.fetchval("SELECT to_regclass('people') IS NOT NULL")
    finally:
        await conn.close()
    assert await _applied(empty_db_url) == names


def test_only_numbered_sql_and_python_files_are_migrations(tmp_path: Path) -> None:
    """An editor's backup, a helper module or a compiled file beside the migrations never runs."""
    names = ("002_b.py", "001_a.sql", "001_a.sql~", "notes.sql", "helpers.py", "003_c.pyc", "__init__.py")
    for name in names:
        (tmp_path / name).write_text("")
    (tmp_path / "__pycache__").mkdir()
    assert [p.name for p in migration_files(tmp_path)] == ["001_a.sql", "002_b.py"]


async def test_concurrent_migrations_in_one_process(empty_db_url: str) -> None:
    conns = [await asyncpg.connect(empty_db_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    assert sorted(len(r) for r in results) == [0, 0, 0, len(migration_files())]


@pytest.mark.process
def test_two_processes_migrating_at_once(empty_db_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": empty_db_url}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "service", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert sum(f"applied {len(migration_files())} migration" in o for o in outputs) == 1, outputs
    assert sum("applied 0 migration" in o for o in outputs) == 1, outputs
    assert asyncio.run(_applied(empty_db_url)) == [p.name for p in migration_files()]


async def _at(directory: Path, conn: asyncpg.Connection, upto: str) -> None:
    """Apply the migrations up to `upto` (included), as an older version of the service did."""
    for path in migration_files():
        if path.name <= upto:
            (directory / path.name).write_bytes(path.read_bytes())
    await migrate(conn, directory)


async def test_stored_identifiers_are_read_again_and_the_duplicates_merged(
    empty_db_url: str, tmp_path: Path, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """Yesterday's reader kept a DIN written in Devanagari digits as it was: one director became
    two people, two Airtable rows. The migration makes them one (the oldest, with every link),
    and the pusher deletes the other row."""
    acme, beta, gamma = (airtable.standin.add_record("Companies", {"Company Name": n}) for n in "ABC")
    rows = {
        din: airtable.standin.add_record("Contacts", {"Name": name, "DIN": din, "Contact Key": key})
        for din, name, key in (("05678912", "Meera Iyer", "ct_1"), ("०५६७८९१२", "MEERA IYER", "ct_2"))
    }
    conn = await asyncpg.connect(empty_db_url)
    try:
        await _at(tmp_path, conn, "007_select_options.sql")
        for company in (acme, beta, gamma):
            await conn.execute("INSERT INTO companies (airtable_id) VALUES ($1)", company)
        await conn.executemany(
            "INSERT INTO people (din, name, phone_e164, airtable_id, pushed_version, push_version) "
            "VALUES ($1, $2, $3, $4, 1, 1)",
            [
                ("05678912", "Meera Iyer", None, rows["05678912"]),
                ("०५६७८९१२", "MEERA IYER", "+919845012345", rows["०५६७८९१२"]),  # stored as written
                ("१२३४५६७८", "Vikram Sethi", None, None),
            ],
        )
        await conn.execute("INSERT INTO company_people VALUES (1, 1), (2, 2), (3, 2), (3, 3)")
        assert await migrate(conn) == [
            "008_identities.sql",
            "009_identities_reread.py",
            "010_weak_keys.sql",
            "011_names_shown.py",
            *(f.name for f in migration_files() if f.name > "012"),  # and every later one
        ]
        people = await conn.fetch(
            """SELECT p.id, p.din, p.name, p.phone_e164, p.airtable_id,
                      p.push_version > p.pushed_version AS marked,
                      ARRAY(SELECT company_id FROM company_people WHERE person_id = p.id ORDER BY 1)
                          AS companies
               FROM people p ORDER BY p.id"""
        )
        assert [dict(p) for p in people] == [
            {
                "id": 1,
                "din": "05678912",
                "name": "Meera Iyer",
                "phone_e164": "+919845012345",
                "airtable_id": rows["05678912"],
                "marked": True,
                "companies": [1, 2, 3],
            },
            {
                "id": 3,
                "din": "12345678",
                "name": "Vikram Sethi",
                "phone_e164": None,
                "airtable_id": None,
                "marked": True,
                "companies": [3],
            },
        ]
        assert await conn.fetchval("SELECT array_agg(airtable_id) FROM airtable_rows_to_delete") == [
            rows["०५६७८९१२"]
        ]
    finally:
        await conn.close()
    pool = await create_pool(empty_db_url)
    try:
        settings = settings_for(airtable, attestr)
        pusher = Pusher(pool, Airtable(settings, pool), settings, linger_s=0.0)
        while await pusher.push_once():
            pass
    finally:
        await pool.close()
    shown = {r["fields"]["Contact Key"]: r["fields"] for r in airtable.standin.records("Contacts")}
    assert set(shown) == {"ct_1", "ct_3"}  # the other row is gone; Vikram gets his row
    assert shown["ct_1"]["DIN"] == "05678912" and shown["ct_1"]["Company"] == [acme, beta, gamma]
    assert shown["ct_3"]["DIN"] == "12345678"


async def test_names_stored_in_capitals_are_shown_as_people_write_them(
    empty_db_url: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(empty_db_url)
    try:
        await _at(tmp_path, conn, "010_weak_keys.sql")
        await conn.executemany(
            "INSERT INTO people (name, name_raw, pushed_version, push_version) VALUES ($1, $1, 1, 1)",
            [("FARAH KHAN",), ("Vikram sethi",), ("MR. SURESH PILLAI",)],
        )
        await migrate(conn)
        rows = await conn.fetch(
            "SELECT name, name_raw, push_version > pushed_version AS marked FROM people ORDER BY id"
        )
        assert [tuple(r) for r in rows] == [
            ("Farah Khan", "FARAH KHAN", True),
            ("Vikram sethi", "Vikram sethi", False),  # mixed case: as written, not sent again
            ("Mr. Suresh Pillai", "MR. SURESH PILLAI", True),  # the title as written (022)
        ]
    finally:
        await conn.close()


async def test_people_stored_by_older_rules_are_read_again_as_filings_write_them(
    empty_db_url: str, tmp_path: Path
) -> None:
    """A masked number or a placeholder read as a phone, a placeholder email, an address behind
    a full stop, a title dropped, a DIN left in the name, a DIN holder joined to a PAN: put right,
    and the people pushed again; the joined person's companies listed for a recheck."""
    conn = await asyncpg.connect(empty_db_url)
    try:
        await _at(tmp_path, conn, "021_webhook_payload_gaps.sql")
        await conn.executemany(
            "INSERT INTO people (din, pan, name, name_raw, phone_e164, phone_raw, email, email_raw,"
            " pushed_version, push_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, 1)",
            [
                ("01000001", None, "Asha Rao", "ASHA RAO", "+919899999945", "98XXXXXX45", None, None),
                (
                    "01000002",
                    None,
                    "Ravi Kumar",
                    "Ravi Kumar",
                    "+919999999999",
                    "9999999999",
                    "na@na.com",
                    "na@na.com",
                ),
                ("01000003", None, "Nita Shah", "Nita Shah", None, None, None, "nita@acme.in."),
                (
                    "01000004",
                    None,
                    "Suresh Pillai",
                    "MR. SURESH PILLAI",
                    "+919845012345",
                    "98450 12345",
                    None,
                    None,
                ),
                (
                    "01000005",
                    None,
                    "Ananya Rao (Din: 01000005)",
                    "ANANYA RAO (DIN: 01000005)",
                    None,
                    None,
                    None,
                    None,
                ),
                (
                    "01000006",
                    "ABCPK1234F",
                    "Vikram Sethi",
                    "VIKRAM SETHI",
                    "+912223451111",
                    "022 2345 1111",
                    None,
                    None,
                ),
                ("01000007", None, "Meera Iyer", "Meera Iyer", "+919845067321", "9845067321", None, None),
            ],
        )
        await conn.execute(
            "INSERT INTO companies (airtable_id, cin, synced_at) VALUES"
            " ('recAAAAAAAAAAAAAA', 'U72200KA2015PTC081234', now()), ('recBBBBBBBBBBBBBB', NULL, now())"
        )
        await conn.execute("INSERT INTO company_people VALUES (1, 6), (1, 7), (2, 6)")
        await conn.execute("UPDATE people SET phone_type = 'Landline' WHERE id = 6")
        await conn.execute("UPDATE people SET phone_type = 'Mobile' WHERE id = 7")
        await migrate(conn)
        rows = await conn.fetch(
            "SELECT din, pan, name, phone_e164, phone_raw, email, email_raw,"
            " push_version > pushed_version AS marked FROM people ORDER BY id"
        )
        assert [tuple(r) for r in rows] == [
            ("01000001", None, "Asha Rao", None, "98XXXXXX45", None, None, True),
            ("01000002", None, "Ravi Kumar", None, None, None, None, True),
            ("01000003", None, "Nita Shah", None, None, "nita@acme.in", "nita@acme.in.", True),
            ("01000004", None, "Mr. Suresh Pillai", "+919845012345", "98450 12345", None, None, True),
            ("01000005", None, "Ananya Rao", None, None, None, None, True),
            (
                "01000006",
                None,
                "Vikram Sethi",
                "+912223451111",
                "022 2345 1111",
                None,
                None,
                False,
            ),  # its type read
            ("01000007", None, "Meera Iyer", "+919845067321", "9845067321", None, None, False),
        ]
        assert await conn.fetchval("SELECT pan FROM identities_separated WHERE person_id = 6") == "ABCPK1234F"
        listed = await conn.fetch(queries.RECHECK_CANDIDATES)
        assert [(r["airtable_id"], r["separated"]) for r in listed] == [("recAAAAAAAAAAAAAA", True)]
    finally:
        await conn.close()


async def test_merging_keeps_a_live_row_and_never_brings_back_one_deleted_by_hand(
    empty_db_url: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(empty_db_url)
    try:
        await _at(tmp_path, conn, "008_identities.sql")
        await conn.executemany(
            "INSERT INTO people (din, name, airtable_id, deleted_in_airtable) VALUES ($1, $2, $3, $4)",
            [
                ("01111111", "A", "recDeletedByHand1", True),  # the oldest: its row was deleted by hand
                ("०११११११११"[:8], "A", "recStillThere0001", False),  # the same person, a live row
                ("02222222", "B", None, False),  # never pushed
                ("०२२२२२२२", "B", "recDeletedByHand2", True),  # the same person, deleted by hand
            ],
        )
        await migrate(conn)
        rows = await conn.fetch("SELECT din, airtable_id, deleted_in_airtable FROM people ORDER BY id")
        assert [tuple(r) for r in rows] == [
            ("01111111", "recStillThere0001", False),  # the live row is the person's
            ("02222222", None, True),  # deleted by hand: not shown again
        ]
        assert await conn.fetchval("SELECT count(*) FROM airtable_rows_to_delete") == 0
    finally:
        await conn.close()
