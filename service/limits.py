"""Limits that lose nothing: a request rate per API key, and a cap on the queue.

A leaked API key must not be able to spend the Attestr credits: each key may make API_RATE_LIMIT
requests in every API_RATE_WINDOW_S, counted in PostgreSQL so that every web process agrees, and
is answered 429 `rate_limited` with `Retry-After` beyond that. The webhook is not rate-limited
(behind a router every request has the same address, and a refused webhook is a lost trigger);
instead the queue as a whole holds at most QUEUE_MAX_JOBS queued jobs. One company never holds
more than one queued job: a second webhook reuses it.
"""

from __future__ import annotations

import hashlib
import math
import time

import asyncpg

from . import queries
from .config import Settings
from .errors import ApiError

QUEUE_RECOUNT_S = 1.0  # how stale this process's view of the queue's length may be


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def take_api_request(pool: asyncpg.Pool, key: str, settings: Settings) -> None:
    """Count one request against the key's window, or refuse it with 429 `rate_limited`."""
    row = await pool.fetchrow(queries.API_RATE_TAKE, key_hash(key), settings.api_rate_window_s)
    if row["requests"] > settings.api_rate_limit:
        retry_after = max(1, math.ceil(row["resets_in_s"]))
        raise ApiError(
            429,
            "rate_limited",
            f"This API key made more than {settings.api_rate_limit} requests in "
            f"{settings.api_rate_window_s:g} s; try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


class QueueCap:
    """Whether the queue is full, recounted at most once a second (a count of a long queue is not
    free, and a second's overshoot is harmless)."""

    def __init__(self, pool: asyncpg.Pool, max_jobs: int) -> None:
        self.pool = pool
        self.max_jobs = max_jobs
        self._queued = 0
        self._counted_at = -math.inf

    async def full(self) -> bool:
        if time.monotonic() - self._counted_at > QUEUE_RECOUNT_S:
            self._queued = await self.pool.fetchval(queries.JOBS_QUEUED_COUNT, self.max_jobs)
            self._counted_at = time.monotonic()
        return self._queued >= self.max_jobs

    async def check(self) -> None:
        """Refuse with 429 `rate_limited` while the queue holds QUEUE_MAX_JOBS jobs."""
        if await self.full():
            raise ApiError(
                429,
                "rate_limited",
                f"The queue is full ({self.max_jobs} jobs waiting, QUEUE_MAX_JOBS); nothing was "
                "stored: send again in a minute",
                headers={"Retry-After": "60"},
            )
