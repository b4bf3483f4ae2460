"""The Airtable rate limit shared through PostgreSQL: never more than N requests in a window,
whoever asks, and nothing at all during a cool-down."""

from __future__ import annotations

import asyncio
import random
import time

import asyncpg

from service import queries
from service.airtable.ratelimit import AirtableRateLimit


async def test_limiters_sharing_a_base_never_exceed_the_limit(db_url: str) -> None:
    """Requests take a slot, spend a random while on the way and at Airtable, and give it back.
    Wherever in that while Airtable saw each one arrive, no six arrive within one second."""
    pools = [await asyncpg.create_pool(db_url, min_size=1, max_size=3) for _ in range(3)]  # three "processes"
    limiters = [AirtableRateLimit(pool, "appSHARED", 5, cooldown_s=1) for pool in pools]
    rng = random.Random(4)
    arrivals: list[float] = []

    async def send(limiter: AirtableRateLimit, n: int) -> None:
        for _ in range(n):
            slot = await limiter.acquire()
            granted = time.monotonic()
            await asyncio.sleep(rng.uniform(0, 0.15))  # a busy process, the network, Airtable
            answered = time.monotonic()
            arrivals.append(rng.choice([granted, answered, rng.uniform(granted, answered)]))
            await limiter.answered(slot)

    started = time.monotonic()
    await asyncio.gather(*(send(limiter, 5) for limiter in limiters for _ in range(2)))
    elapsed = time.monotonic() - started
    for pool in pools:
        await pool.close()
    arrivals.sort()
    assert len(arrivals) == 30
    assert min(b - a for a, b in zip(arrivals, arrivals[5:], strict=False)) > 1.0
    # And the limit is used, not wasted: each slot is held about 1.02 s + its ~75 ms on the way.
    assert elapsed < 30 / 5 * 1.2 + 1.0


async def test_a_slot_never_given_back_frees_after_the_timeout(pool: asyncpg.Pool) -> None:
    """A process that died mid-request holds its slot only until the request would have timed out."""
    for _ in range(5):
        wait, slot = await pool.fetchrow(queries.RATE_TAKE, "appDEAD", 5, 1.0, 0.5, 0)
        assert wait == 0 and slot is not None
    wait, slot = await pool.fetchrow(queries.RATE_TAKE, "appDEAD", 5, 1.0, 0.5, 0)
    assert slot is None and 0 < wait <= 0.05  # asked again soon: an answer may come any moment
    await asyncio.sleep(1.6)  # taken + timeout + window
    wait, slot = await pool.fetchrow(queries.RATE_TAKE, "appDEAD", 5, 1.0, 0.5, 0)
    assert wait == 0 and slot is not None


async def test_another_base_is_not_held_back(pool: asyncpg.Pool) -> None:
    busy = AirtableRateLimit(pool, "appBUSY", 5, cooldown_s=1)
    for _ in range(5):
        await busy.acquire()  # and never answered
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


async def test_a_background_read_never_takes_the_last_free_slot(pool: asyncpg.Pool) -> None:
    """The reconciliation sweep's reads wait behind the pusher's writes: with four slots of five
    taken, a background request waits and a normal one goes; a process still calling the
    four-argument form (an older version during a deploy) keeps the old behaviour."""
    limiter = AirtableRateLimit(pool, "appPRIORITY", 5, cooldown_s=1)
    for _ in range(3):
        await limiter.acquire(background=True)
    await limiter.acquire()  # four taken
    wait, slot = await pool.fetchrow(queries.RATE_TAKE, "appPRIORITY", 5, 1.0, 35.0, 1)
    assert slot is None and wait > 0
    wait, slot = await pool.fetchrow(
        "SELECT wait, request_id FROM airtable_take_request($1, $2, $3, $4)", "appPRIORITY", 5, 1.0, 35.0
    )
    assert wait == 0 and slot is not None  # the fifth
