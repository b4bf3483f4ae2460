"""A job's rows passed from the job to its own process's pusher (pusher.py: `Pusher.prepare`).

The job asks for a hand-off once Attestr's answer is in and stores its people; the pusher finds
out meanwhile whether it may send them (`allow`) and takes a rate-limit slot. If it may, the
job's transaction claims the first request's rows itself (`claim`), so that they go the moment it
commits. Then `stored` (how many of the job's rows wait for Airtable, and those claimed), or
`dropped` when nothing was committed: whichever comes first counts.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg


class Handoff:
    def __init__(self, claim: tuple[str, tuple[Any, ...]] | None = None) -> None:
        self._outcome: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.allowed = False  # the pusher may send the rows once committed (`allow`)
        self._claim = claim  # the query claiming a request's worth of contacts, and its arguments
        self.claimed: list[asyncpg.Record] = []

    def allow(self) -> None:
        """The pusher may send the rows as soon as they are committed (said by the pusher)."""
        self.allowed = True

    async def claim(self, conn: asyncpg.Connection) -> None:
        """In the job's transaction: claim the first request's rows for the pusher, if it said it
        may send them by now (never waited for: the transaction holds its locks)."""
        if self.allowed and self._claim is not None:
            self.claimed = list(await conn.fetch(self._claim[0], *self._claim[1]))

    def stored(self, pending: int) -> None:
        """Committed: `pending` of the job's rows wait for Airtable (0: only its company's status)."""
        if not self._outcome.done():
            self._outcome.set_result(pending)

    def dropped(self) -> None:
        """Nothing was committed (a failure, a retry, a lease lost)."""
        if not self._outcome.done():
            self._outcome.set_result(None)

    async def outcome(self) -> int | None:
        """The rows waiting once committed, or None if dropped."""
        return await asyncio.shield(self._outcome)
