"""Migrations: recorded, applied once, safe when two processes start at the same moment."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg

from service.migrations import migrate, migration_files, pending_migrations


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


async def test_concurrent_migrations_in_one_process(empty_db_url: str) -> None:
    conns = [await asyncpg.connect(empty_db_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    assert sorted(len(r) for r in results) == [0, 0, 0, len(migration_files())]


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
