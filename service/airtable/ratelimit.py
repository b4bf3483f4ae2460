"""Airtable's rate limit, shared by every process of the service through PostgreSQL.

Airtable allows 5 requests per second per base and answers 429 beyond that, then refuses the
base for 30 seconds. Every request (reads too) first takes a slot with `airtable_take_request`
(migrations/004_airtable_requests.sql; 012 adds the background priority) and gives it back when
its answer has come; a slot frees a window (one second plus a small margin) after that answer,
measured with the database's clock so that all processes agree. After a 429 the whole base is
blocked for AIRTABLE_COOLDOWN_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import asyncpg

from service import queries
from service.database import DATABASE_ERRORS

# Counting from the answer already covers any delay on the way; this covers clock rounding.
WINDOW_MARGIN_S = 0.02
# pyairtable's read timeout plus its connect timeout: a request is over by then either way.
REQUEST_TIMEOUT_S = 35.0


class AirtableRateLimit:
    def __init__(
        self, pool: asyncpg.Pool, base_id: str, requests_per_second: float, cooldown_s: float
    ) -> None:
        self.pool = pool
        self.base_id = base_id
        self.max_requests = max(1, int(requests_per_second))
        self.window_s = self.max_requests / requests_per_second + WINDOW_MARGIN_S
        self.cooldown_s = cooldown_s

    async def acquire(self, *, background: bool = False) -> int:
        """Wait until this process may send one request to the base; the slot's id. A background
        request (the reconciliation sweep's reads) never takes the window's last free slot: the
        pusher's writes come first."""
        while True:
            wait, request_id = await self.pool.fetchrow(
                queries.RATE_TAKE,
                self.base_id,
                self.max_requests,
                self.window_s,
                REQUEST_TIMEOUT_S,
                int(background),
            )
            if request_id is not None:
                return request_id
            await asyncio.sleep(wait + random.uniform(0, 0.01))

    async def answered(self, slot: int | None) -> None:
        """The request's answer is back (or it failed): its slot frees a window from now."""
        # If the database is away the slot frees after REQUEST_TIMEOUT_S instead.
        with contextlib.suppress(*DATABASE_ERRORS):
            await self.pool.execute(queries.RATE_ANSWERED, slot)

    async def block(self) -> None:
        """Airtable answered 429: no process sends to this base until the cool-down has passed."""
        await self.pool.execute(queries.RATE_BLOCK, self.base_id, self.cooldown_s)


class LocalPacing:
    """For a one-off command that runs without the database (`doctor`): requests spaced out so
    that this process alone stays under the limit."""

    def __init__(self, requests_per_second: float, cooldown_s: float) -> None:
        self.interval_s = 1.0 / requests_per_second + WINDOW_MARGIN_S
        self.cooldown_s = cooldown_s
        self._next = 0.0

    async def acquire(self, *, background: bool = False) -> None:
        loop = asyncio.get_running_loop()
        wait = self._next - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._next = max(self._next, loop.time()) + self.interval_s

    async def answered(self, slot: int | None) -> None:
        # One request at a time from one process: spacing the sends apart is enough.
        pass

    async def block(self) -> None:
        self._next = asyncio.get_running_loop().time() + self.cooldown_s
