"""Airtable's rate limit, shared by every process of the service through PostgreSQL.

Airtable allows 5 requests per second per base and answers 429 beyond that, then refuses the
base for 30 seconds ("Rate limits"). Every request (reads too) first takes a slot with
`airtable_take_request` (migrations 004, 012, 017) and reports when its answer came. Airtable
counts a request when it arrives; when that was is known only within bounds, so a slot frees:

* a second plus SENT_MARGIN_S after the request left, when it left on a connection kept alive
  from an earlier request. It left when it was written whole (transport.py), so the sending
  process's own delays before the write (a busy interpreter, a loaded machine) are not in the
  margin. Requests on such connections travel the same path: each arrives one path-delay after it
  left, so two sent a second plus the margin apart arrive at least a second apart unless that
  delay grew by more than the margin between them. The margin covers the delay's jitter on a
  kept-alive connection (milliseconds; tens on a poor line). A TCP retransmission (200 ms and
  more) can exceed it: Airtable then answers 429 and the shared cool-down holds every process
  back, the cost being 30 s of waiting, never a lost row.
* a second (plus WINDOW_MARGIN_S) after its answer otherwise: a request that opened a
  connection (its handshakes came first), one with no answer, one of an older version. Airtable
  saw it before it answered, whatever the delays.

Both are measured with the database's clock, so that all processes agree. While a request is
unanswered its slot stays taken. After a 429 the whole base is blocked for AIRTABLE_COOLDOWN_S.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random

import asyncpg

from service import queries
from service.database import DATABASE_ERRORS

# Counting from the answer already covers any delay on the way; this covers clock rounding.
WINDOW_MARGIN_S = 0.02
# Counting from when a request left on a kept-alive connection: the jitter of the path's delay.
SENT_MARGIN_S = 0.02
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
        self.sent_window_s = self.max_requests / requests_per_second + SENT_MARGIN_S
        self.cooldown_s = cooldown_s
        # Slots this process reported answered lately: a second report (the pusher's, after the
        # request's own) costs no round trip.
        self._answered: collections.deque[int] = collections.deque(maxlen=64)
        self._reports: set[asyncio.Task[None]] = set()  # `report`, until stored

    async def acquire(self, *, background: bool = False) -> int:
        """Wait until this process may send one request to the base; the slot's id. A background
        request (the reconciliation sweep's reads) never takes the window's last free slot: the
        pusher's writes come first."""
        return (await self.take(background=background))[0]

    async def take(self, *, background: bool = False) -> tuple[int, bool]:
        """As `acquire`, with whether it had to wait for the slot (what was known before the wait
        may have changed since)."""
        waited = False
        while True:
            wait, request_id = await self._ask(background)
            if request_id is not None:
                return request_id, waited
            # Several waiting senders wake at once; the first takes the slot, the others ask again.
            await asyncio.sleep(wait + random.uniform(0, 0.002))
            waited = True

    async def free_now(self) -> int | None:
        """A slot if one is free now (its id), else None: nothing is waited for."""
        return (await self._ask(False))[1]

    async def _ask(self, background: bool) -> tuple[float, int | None]:
        """One try at a slot: (seconds to wait before the next try, None) or (0, its id)."""
        wait, request_id = await self.pool.fetchrow(
            *queries.RATE_TAKE.bind(
                base_id=self.base_id,
                max_requests=self.max_requests,
                window_s=self.window_s,
                timeout_s=REQUEST_TIMEOUT_S,
                reserve=int(background),
                sent_window_s=self.sent_window_s,
            )
        )
        return wait, request_id

    async def answered(self, slot: int | None, sent_ago_s: float | None = None) -> None:
        """The request's answer is back (or it failed). `sent_ago_s`: how many seconds ago it left
        on a kept-alive connection (None: it opened one, or got no answer)."""
        if slot in self._answered:
            return
        # If the database is away the slot frees after REQUEST_TIMEOUT_S instead.
        with contextlib.suppress(*DATABASE_ERRORS):
            await self.pool.execute(queries.RATE_ANSWERED, slot, sent_ago_s)
            if slot is not None:
                self._answered.append(slot)

    def report(self, slot: int | None, sent_ago_s: float | None = None) -> None:
        """`answered`, stored while the caller goes on with the answer: the round trip is off the
        request's path. Until stored the slot stays taken (the stricter side of the window), and
        a second report of it costs nothing."""
        if slot is None or slot in self._answered:
            return
        self._answered.append(slot)  # before it is stored: `answered` and `unused` then skip it

        async def store() -> None:
            try:
                await self.pool.execute(queries.RATE_ANSWERED, slot, sent_ago_s)
            except DATABASE_ERRORS:  # not stored: the pusher's own report tries again
                with contextlib.suppress(ValueError):
                    self._answered.remove(slot)

        task = asyncio.create_task(store(), name=_REPORT)
        self._reports.add(task)  # held until done: the loop keeps only weak references to tasks
        task.add_done_callback(self._reports.discard)

    async def unused(self, slot: int | None) -> None:
        """The slot was taken but no request went (nothing was left to send): free it now."""
        if slot in self._answered:  # a request went after all: it frees when its window ends
            return
        with contextlib.suppress(*DATABASE_ERRORS):
            await self.pool.execute(queries.RATE_UNUSED, slot)

    async def block(self) -> None:
        """Airtable answered 429: no process sends to this base until the cool-down has passed."""
        await self.pool.execute(queries.RATE_BLOCK, self.base_id, self.cooldown_s)


_REPORT = "airtable-slot-report"


async def reports_settled() -> None:
    """Every slot `report` of this event loop stored (or given up on): before a pool closes, so
    that no slot stays taken for REQUEST_TIMEOUT_S after a command or the service ends."""
    while pending := [t for t in asyncio.all_tasks() if t.get_name() == _REPORT and not t.done()]:
        await asyncio.gather(*pending, return_exceptions=True)


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

    async def free_now(self) -> int | None:
        """None (a one-off command's requests are spaced out, not counted by slot): never free."""
        return None

    async def take(self, *, background: bool = False) -> tuple[None, bool]:
        waited = self._next > asyncio.get_running_loop().time()
        await self.acquire(background=background)
        return None, waited

    async def answered(self, slot: int | None, sent_ago_s: float | None = None) -> None:
        # One request at a time from one process: spacing the sends apart is enough.
        pass

    def report(self, slot: int | None, sent_ago_s: float | None = None) -> None:
        pass

    async def unused(self, slot: int | None) -> None:
        pass

    async def block(self) -> None:
        self._next = asyncio.get_running_loop().time() + self.cooldown_s
