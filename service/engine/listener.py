"""LISTEN/NOTIFY: wakes idle workers and pushers in every process as soon as there is work.

It uses a connection of its own: a pooled connection is reset with UNLISTEN when returned, and
LISTEN does not pass through PgBouncer in transaction mode. The connection can drop, so it
reconnects, and the worker and pusher keep polling as the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
import structlog

from service import queries
from service.database import DATABASE_ERRORS

log = structlog.get_logger(__name__)

CHANNEL = "contact_sync"
_CHECK_S = 15.0  # how often an idle connection is checked for being alive


class Listener:
    def __init__(
        self, database_url: str, handlers: dict[str, Callable[[], None]], *, own: str | None = None
    ) -> None:
        self.database_url = database_url
        self.handlers = handlers  # payload ("jobs", "push") -> what to wake
        # This process's token (`notified_as`): what it said itself it has woken already.
        self.own = own

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        kind, _, sender = payload.partition(" ")
        if sender and sender == self.own:
            return
        handler = self.handlers.get(kind)
        if handler:
            handler()

    async def run(self, stop: asyncio.Event) -> None:
        delay = 0.5
        while not stop.is_set():
            try:
                conn = await asyncpg.connect(self.database_url, timeout=10)
            except DATABASE_ERRORS:
                await _sleep_unless(stop, delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 0.5
            try:
                await self._listen(conn, stop)
            except DATABASE_ERRORS:
                pass
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 5)
            if not stop.is_set():
                log.warning("listener.lost")

    async def _listen(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(CHANNEL, self._notified)
        for wake in self.handlers.values():  # work that arrived while nobody listened
            wake()
        while not stop.is_set() and not lost.is_set():
            await _sleep_unless(stop, _CHECK_S, lost)
            if not stop.is_set() and not lost.is_set():
                await conn.fetchval("SELECT 1", timeout=5)


async def _sleep_unless(stop: asyncio.Event, seconds: float, other: asyncio.Event | None = None) -> None:
    waiters = [asyncio.ensure_future(stop.wait())]
    if other is not None:
        waiters.append(asyncio.ensure_future(other.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def notified_as(kind: str, token: str) -> str:
    """The payload of a NOTIFY of `kind` ("jobs", "push") sent by the process holding `token`:
    its own listener skips it (the process wakes its own tasks directly, at once), the others'
    wake theirs."""
    return f"{kind} {token}"


class Notifier:
    """Sends `NOTIFY contact_sync, 'jobs'` for the jobs this process stores, at most once per
    `interval_s`: NOTIFY serialises committing transactions, so one per webhook would halve the
    intake; one per short batch wakes other processes just as well. `token`: this process's
    (`notified_as`). `head_start_s`: how long this process's own worker, woken at once, has to
    claim the job before the others are told: their claims and this NOTIFY's commit would
    otherwise contend with its claim."""

    def __init__(
        self, pool: asyncpg.Pool, token: str = "", interval_s: float = 0.05, head_start_s: float = 0.0
    ) -> None:
        self.pool = pool
        self.payload = notified_as("jobs", token) if token else "jobs"
        self.interval_s = interval_s
        self.head_start_s = head_start_s
        self._pending = asyncio.Event()

    def nudge(self) -> None:
        self._pending.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await _sleep_unless(stop, 3600, self._pending)
            if not self._pending.is_set():
                continue
            if self.head_start_s:
                await _sleep_unless(stop, self.head_start_s)
            self._pending.clear()
            with contextlib.suppress(*DATABASE_ERRORS):  # the workers' polling covers a lost one
                await self.pool.execute(queries.NOTIFY, self.payload)
            await asyncio.sleep(self.interval_s)
