"""`schema.sql` is the schema the migrations build, as pg_dump prints it: a newcomer reads the
tables in one file, and this test keeps it true. After a new migration, write it again with
`SCHEMA_WRITE=1 .venv/bin/python -m pytest tests/ground/test_schema.py`."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pgserver
import pytest

from tests.conftest import TEMPLATE, withdatabase

pytestmark = pytest.mark.process  # pg_dump

SCHEMA = Path(__file__).resolve().parent.parent.parent / "schema.sql"
HEADER = """\
-- The schema the migrations (migrations/) build, as pg_dump prints it: read it here, change it
-- with a new migration. tests/ground/test_schema.py keeps this file true.
"""
# pg_dump's own settings and bookkeeping, which say nothing about the schema.
_NOISE = re.compile(r"^(SET |SELECT pg_catalog\.set_config|--|\\restrict|\\unrestrict)")


_NOT_SCHEMA = ["--exclude-table=schema_migrations"]  # which migrations ran: data


def _dumped(url: str) -> str:
    pg_dump = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_dump"
    done = subprocess.run(
        [str(pg_dump), "--schema-only", "--no-owner", "--no-privileges", *_NOT_SCHEMA, url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [line for line in done.stdout.splitlines() if not _NOISE.match(line)]
    return HEADER + "\n" + re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def test_schema_sql_is_the_schema_the_migrations_build(pg_server: str) -> None:
    built = _dumped(withdatabase(pg_server, TEMPLATE))
    if os.environ.get("SCHEMA_WRITE"):
        SCHEMA.write_text(built)
    assert SCHEMA.read_text() == built, "schema.sql differs from the migrations: write it again (see above)"
