"""A nudge between tasks: set by whoever has new work, awaited with a timeout by an idle loop
(so that polling still happens when a nudge is lost)."""

from __future__ import annotations

import asyncio


class Wakeup:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, stop: asyncio.Event, timeout: float) -> None:
        """Return when nudged, when `stop` is set, or after `timeout` seconds."""
        waiters = [asyncio.ensure_future(self._event.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            self._event.clear()
