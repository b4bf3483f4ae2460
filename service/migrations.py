"""Schema migrations: the files of `migrations/`, applied in name order, once each, each in a
transaction of its own: plain SQL, or Python (`async def migrate(conn)`) for data that must be
read the way the service reads it (identifiers, say).

They run under an advisory lock so that two processes starting at once (a web and a worker,
say) neither apply a file twice nor see a half-built schema.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import asyncpg
import structlog

from service import queries
from service.database import release_session_lock

log = structlog.get_logger(__name__)

_PACKAGED = Path(__file__).parent / "migrations"  # inside a built wheel
_SOURCE = Path(__file__).parent.parent / "migrations"  # in a checkout
MIGRATIONS_DIR = _PACKAGED if _PACKAGED.is_dir() else _SOURCE


# `NNN_name.sql` or `NNN_name.py`: an editor's backup or a helper module beside them is no migration.
_NAME = re.compile(r"[0-9]{3}_[A-Za-z0-9_]+\.(?:sql|py)")


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    """The migrations of `directory` in the order they apply (by name)."""
    return sorted((p for p in directory.iterdir() if _NAME.fullmatch(p.name)), key=lambda p: p.name)


async def _apply(conn: asyncpg.Connection, path: Path) -> None:
    if path.suffix == ".sql":
        await conn.execute(path.read_text())
        return
    spec = importlib.util.spec_from_file_location(f"contact_sync_migration_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    await module.migrate(conn)


async def migrate(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now."""
    applied_now: list[str] = []
    await conn.execute(queries.MIGRATIONS_LOCK)
    async with release_session_lock(conn, queries.MIGRATIONS_UNLOCK):
        await conn.execute(queries.MIGRATIONS_TABLE)
        done = {r["version"] for r in await conn.fetch(queries.MIGRATIONS_APPLIED)}
        for path in migration_files(directory):
            if path.name in done:
                continue
            async with conn.transaction():
                await _apply(conn, path)
                await conn.execute(queries.MIGRATION_RECORD, path.name)
            applied_now.append(path.name)
            log.info("db.migrated", migration=path.name)
    return applied_now


async def pending_migrations(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Names of migrations not yet applied (all of them when the table does not exist)."""
    if not await conn.fetchval(queries.MIGRATIONS_TABLE_EXISTS):
        return [p.name for p in migration_files(directory)]
    done = {r["version"] for r in await conn.fetch(queries.MIGRATIONS_APPLIED)}
    return [p.name for p in migration_files(directory) if p.name not in done]
