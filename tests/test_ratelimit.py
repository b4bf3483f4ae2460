"""The Airtable rate limit shared through PostgreSQL: never more than N requests in a window,
whoever asks, and nothing at all during a cool-down."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from service.ratelimit import AirtableRateLimit


async def test_limiters_sharing_a_base_never_exceed_the_limit(db_url: str) -> None:
    pools = [await asyncpg.create_pool(db_url, min_size=1, max_size=3) for _ in range(3)]  # three "processes"
    limiters = [AirtableRateLimit(pool, "appSHARED", 5, cooldown_s=1) for pool in pools]
    taken: list[float] = []

    async def take(limiter: AirtableRateLimit, n: int) -> None:
        for _ in range(n):
            await limiter.acquire()
            taken.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(take(limiter, 5) for limiter in limiters for _ in range(2)))
    elapsed = time.monotonic() - started
    for pool in pools:
        await pool.close()
    taken.sort()
    assert len(taken) == 30
    # Any five consecutive slots span more than a second (measured here, after the database's grant).
    assert min(b - a for a, b in zip(taken, taken[5:], strict=False)) > 0.95
    assert elapsed < 30 / 5 * 1.1 + 1.0  # and the limit is used, not wasted


async def test_another_base_is_not_held_back(pool: asyncpg.Pool) -> None:
    busy = AirtableRateLimit(pool, "appBUSY", 5, cooldown_s=1)
    for _ in range(5):
        await busy.acquire()
    other = AirtableRateLimit(pool, "appOTHER", 5, cooldown_s=1)
    started = time.monotonic()
    await other.acquire()
    assert time.monotonic() - started < 0.2


async def test_a_429_blocks_every_process_for_the_cool_down(db_url: str) -> None:
    first = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    second = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    blocked = AirtableRateLimit(first, "appCOOL", 5, cooldown_s=0.8)
    await blocked.block()
    started = time.monotonic()
    await AirtableRateLimit(second, "appCOOL", 5, cooldown_s=0.8).acquire()
    assert time.monotonic() - started >= 0.7
    await first.close()
    await second.close()
