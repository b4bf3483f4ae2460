"""Airtable's rate limit, shared by every process of the service through PostgreSQL.

Airtable allows 5 requests per second per base and answers 429 beyond that, then refuses the
base for 30 seconds. Every request (reads too) first takes a slot with `airtable_take_slot`
(migrations/001_schema.sql), which keeps at most AIRTABLE_RATE_LIMIT_RPS in any window of one
second plus a safety margin, measured with the database's clock so that all processes agree.
After a 429 the whole base is blocked for AIRTABLE_COOLDOWN_S, for every process.
"""

from __future__ import annotations

import asyncio
import random

import asyncpg

from . import queries

# Requests leave a little after their slot is taken and arrive at Airtable with varying delays;
# the margin keeps five of them from ever landing within one of Airtable's seconds.
WINDOW_MARGIN_S = 0.1


class AirtableRateLimit:
    def __init__(
        self, pool: asyncpg.Pool, base_id: str, requests_per_second: float, cooldown_s: float
    ) -> None:
        self.pool = pool
        self.base_id = base_id
        self.max_requests = max(1, int(requests_per_second))
        self.window_s = self.max_requests / requests_per_second + WINDOW_MARGIN_S
        self.cooldown_s = cooldown_s

    async def acquire(self) -> None:
        """Wait until this process may send one request to the base."""
        while True:
            wait = await self.pool.fetchval(
                queries.RATE_TAKE_SLOT, self.base_id, self.max_requests, self.window_s
            )
            if wait <= 0:
                return
            await asyncio.sleep(wait + random.uniform(0, 0.02))

    async def block(self) -> None:
        """Airtable answered 429: no process sends to this base until the cool-down has passed."""
        await self.pool.execute(queries.RATE_BLOCK, self.base_id, self.cooldown_s)


class LocalPacing:
    """For a one-off command that runs without the database (`doctor`): requests spaced out so
    that this process alone stays under the limit."""

    def __init__(self, requests_per_second: float, cooldown_s: float) -> None:
        self.interval_s = 1.0 / requests_per_second + WINDOW_MARGIN_S / 5
        self.cooldown_s = cooldown_s
        self._next = 0.0

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self._next - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._next = max(self._next, loop.time()) + self.interval_s

    async def block(self) -> None:
        self._next = asyncio.get_running_loop().time() + self.cooldown_s
