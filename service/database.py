"""Where the database is: the server named by DATABASE_URL, or an embedded one under DATA_DIR.

The embedded PostgreSQL comes from pgserver; its data stays in DATA_DIR between runs, and it
stops when the last process of this machine that started it exits. A server in a folder that goes
afterwards (the demo's, the tests', the bench's) is stopped before that, with `embedded`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import re
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import structlog

from service.config import Settings

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

log = structlog.get_logger(__name__)

T = TypeVar("T")

# What PostgreSQL cannot store in text or jsonb: the NUL character ("PostgreSQL: Character
# Types": "the character with code zero … cannot be stored"; jsonb refuses \u0000 too), and
# lone UTF-16 surrogates, which JSON can spell (\ud800) but UTF-8 cannot encode.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any) -> Any:
    """`value` (JSON-like: dicts, lists, text, numbers) with what PostgreSQL cannot store removed
    from every text, keys included. Applied to text from outside (an Attestr answer, Airtable's
    error messages) before it is stored: the same bytes would otherwise fail every attempt."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("", value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver stops the server when the last process using it exits, counting processes in
    `.handle_pids.json`; a process that was killed never leaves that list, which would keep the
    server running for ever after. Drop the pids of processes that are gone."""
    import psutil
    from pgserver.postgres_server import PostgresServer

    handles = pgdata / ".handle_pids.json"
    if not handles.is_file():
        return
    with PostgresServer._lock:
        try:
            pids = json.loads(handles.read_text() or "[]")
        except ValueError:
            pids = []
        handles.write_text(json.dumps([p for p in pids if isinstance(p, int) and psutil.pid_exists(p)]))


def _server(data_dir: Path) -> PostgresServer:
    """pgserver's handle on the embedded PostgreSQL under `data_dir`, started if need be; this
    process is counted among its users until it exits or leaves the handle's `with`."""
    # pgserver (through platformdirs) warns when XDG_RUNTIME_DIR is unset, as on most servers.
    # A filter, not catch_warnings(): `serve` starts the database in a thread while the main one
    # imports, and catch_warnings() would undo filters set meanwhile.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    # A failure to start is said in one sentence by the caller; pgserver's own error line would
    # print PostgreSQL's whole log (it stays in the data directory's log file).
    logging.getLogger("pgserver").setLevel(logging.CRITICAL)
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir.resolve() / "postgres"
    _forget_dead_handles(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    log.info("db.embedded", data_dir=str(data_dir.resolve()))
    return server


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL under `data_dir` and return its URL."""
    return _server(data_dir).get_uri()


@contextlib.contextmanager
def embedded(data_dir: Path) -> Iterator[str]:
    """The URL of the embedded PostgreSQL under `data_dir`, stopped when the body ends, however it
    ends (an error, Ctrl-C). For a server whose folder goes afterwards: pgserver would stop it at
    exit, but by then the folder, and the list of the server's users it keeps there, are gone, and
    the server runs on for ever."""
    pgdata = data_dir.resolve() / "postgres"
    try:
        with _server(data_dir) as server:  # leaving it stops the server if no other process uses it
            yield server.get_uri()
    finally:
        _stop_if_running(pgdata)


def _stop_if_running(pgdata: Path) -> None:
    """Stop the server running on `pgdata`, if one is. pgserver stops only the server process it
    saw start, and only if no other process uses it: not one restarted by hand (`pg_ctl start`, as
    the tests do), nor one whose start was interrupted (its postmaster.pid may be half written)."""
    import psutil
    from pgserver._commands import pg_ctl

    try:
        running = psutil.Process(int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0]))
        if running.name() != "postgres":  # a stale file, its pid since reused
            return
    except (OSError, ValueError, psutil.Error):
        return
    user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None  # as pgserver runs it
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)


class NoDatabase(Exception):
    """DATABASE_URL is unset and no embedded database was ever created in DATA_DIR: `problem`
    and `fix`, one sentence together."""

    def __init__(self, data_dir: Path) -> None:
        self.problem = (
            f"No database in {data_dir.resolve()}: DATABASE_URL is unset and no embedded database was "
            "created there (serve, worker, migrate and demo create one)"
        )
        self.fix = (
            "run the command from the folder the service runs in, or set DATA_DIR or DATABASE_URL as "
            "the service has them"
        )
        super().__init__(f"{self.problem}; {self.fix}")


def embedded_exists(data_dir: Path) -> bool:
    """Whether an embedded database was created under `data_dir`."""
    return (data_dir.resolve() / "postgres" / "PG_VERSION").is_file()


def database_url(settings: Settings, *, create: bool = False) -> str:
    """DATABASE_URL, or the embedded PostgreSQL's, started if need be. The embedded database is
    created only with `create` (serve, worker, migrate): an operator command run from another
    folder would otherwise answer from a new, empty one. NoDatabase when there is none."""
    if settings.database_url:
        return settings.database_url
    if not create and not embedded_exists(settings.data_dir):
        raise NoDatabase(settings.data_dir)
    return start_embedded(settings.data_dir)


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10, **kwargs: Any) -> asyncpg.Pool:
    # The service's statements take arrays of keys (`= ANY($1)`) whose best plan depends on how
    # many keys they hold; a cached generic plan chosen while a table was small scans it whole
    # once it is large. Planning each execution costs a fraction of a millisecond.
    settings = {"plan_cache_mode": "force_custom_plan", **kwargs.pop("server_settings", {})}
    pool = await asyncpg.create_pool(
        url, min_size=min_size, max_size=max_size, server_settings=settings, reset=_no_session_state, **kwargs
    )
    assert pool is not None
    return pool


class BoundedPool:
    """A pool on which no wait is unbounded: taking a connection gives up after `wait_s`, and
    each statement after the same (asyncpg's `command_timeout`, set when the pool is made by
    `bounded_pool`). Either raises TimeoutError, one of DATABASE_ERRORS: the web answers 503
    rather than hold a request (and its connection) while the database is stalled or a failover
    black-holes it. The request path's pool; the worker's waits (a CIN's lock) are its own."""

    def __init__(self, pool: asyncpg.Pool, wait_s: float) -> None:
        self._pool = pool
        self.wait_s = wait_s

    def acquire(self, *, timeout: float | None = None) -> Any:
        return self._pool.acquire(timeout=self.wait_s if timeout is None else timeout)

    async def execute(self, query: str, *args: Any) -> str:
        async with self.acquire() as conn:
            return await conn.execute(query, *args)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with self.acquire() as conn:
            return await conn.fetch(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        async with self.acquire() as conn:
            return await conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchval(query, *args)

    async def close(self) -> None:
        await self._pool.close()


async def bounded_pool(url: str, *, max_size: int, wait_s: float) -> BoundedPool:
    """A pool for the request path: every wait bounded by `wait_s` seconds (`BoundedPool`)."""
    return BoundedPool(await create_pool(url, max_size=max_size, command_timeout=wait_s), wait_s)


async def _no_session_state(_conn: asyncpg.Connection) -> None:
    """What a connection needs before it goes back to the pool, beyond asyncpg's own rollback of
    an open transaction: nothing. asyncpg's default (unlock all advisory locks, close cursors,
    unlisten, reset settings) is one more round trip for every pooled statement, a tenth of a
    webhook's time; the service leaves no session state behind (no SET, LISTEN only on its own
    connection, session locks released with `release_session_lock`)."""


@contextlib.asynccontextmanager
async def release_session_lock(conn: asyncpg.Connection, unlock: str, *args: Any) -> AsyncIterator[None]:
    """Run the body, then release a session-level advisory lock; a connection on which that
    did not happen (cancelled, failed) is closed rather than returned holding the lock."""
    try:
        yield
    finally:
        try:
            await conn.execute(unlock, *args)
        except BaseException:
            conn.terminate()
            raise


# What a lost, stopped or restarting database raises (InternalClientError: a connection left in
# a broken state when the server went away mid-statement).
DATABASE_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)

# Errors after which the whole transaction can simply run again: two upserts that met on a row
# or a key at the same moment.
RETRYABLE = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.UniqueViolationError,
)


async def in_transaction(
    pool: asyncpg.Pool, work: Callable[[asyncpg.Connection], Awaitable[T]], *, attempts: int = 5
) -> T:
    """Run `work(conn)` in a transaction, again (after a short random pause) on a deadlock."""
    for attempt in range(1, attempts + 1):
        try:
            async with pool.acquire() as conn, conn.transaction():
                return await work(conn)
        except RETRYABLE:
            if attempt == attempts:
                raise
            await asyncio.sleep(random.uniform(0.01, 0.05) * attempt)
    raise AssertionError("unreachable")
