"""Nudges between tasks: set by whoever has new work, awaited with a timeout by an idle loop
(so that polling still happens when a nudge is lost)."""

from __future__ import annotations

import asyncio
import collections


class Wakeup:
    """Wakes every waiting loop (the worker's one loop, the payload reader's)."""

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


class WakeOne:
    """Wakes one idle loop a nudge, the longest idle first; a nudge while none is idle is kept
    for the next to wait. For the pusher's senders: a company's few rows are one request, and
    every sender woken for it would ask PostgreSQL the same questions and take a rate-limit slot
    only to give it back. A sender that finds more than it can send nudges the next one."""

    def __init__(self) -> None:
        self._idle: collections.deque[asyncio.Future[None]] = collections.deque()
        self._kept = False

    def set(self) -> None:
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._kept = True

    async def wait(self, stop: asyncio.Event, timeout: float) -> None:
        """Return when nudged, when `stop` is set, or after `timeout` seconds."""
        if self._kept:
            self._kept = False
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle.append(waiter)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([waiter, stopping], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not waiter.done():
                waiter.cancel()
                self._idle.remove(waiter)
