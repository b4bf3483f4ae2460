"""The Airtable rate limit shared through PostgreSQL: never more than N requests in a window,
whoever asks, and nothing at all during a cool-down."""

from __future__ import annotations

import asyncio
import random
import time

import asyncpg
import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from service import queries
from service.airtable.client import Airtable
from service.airtable.ratelimit import SENT_MARGIN_S, AirtableRateLimit, reports_settled
from service.airtable.transport import BoundedAdapter, sent_on_kept_alive
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from service.standins.server import serve_in_thread
from tests.conftest import Running
from tests.flow import settings_for


def _frees_in(wait: float, seconds: float, answering: float) -> bool:
    """Whether `wait` is what is left of `seconds` counted from the first answer, which came
    between `answering` (time.monotonic()) and now: however slowly the test ran meanwhile."""
    return seconds - (time.monotonic() - answering) - 0.01 <= wait <= seconds + 0.01


def _take(base_id: str, *, timeout_s: float = 35.0, reserve: int = 0) -> tuple[object, ...]:
    """RATE_TAKE for five requests a second, a window of 1 s (1.02 s for a request that left on
    a kept-alive connection)."""
    return queries.RATE_TAKE.bind(
        base_id=base_id,
        max_requests=5,
        window_s=1.0,
        timeout_s=timeout_s,
        reserve=reserve,
        sent_window_s=1.02,
    )


async def test_limiters_sharing_a_base_never_exceed_the_limit(db_url: str) -> None:
    """Requests take a slot, and either go on a kept-alive connection (they arrive one path-delay
    after they leave, give or take the path's jitter, within SENT_MARGIN_S) or open one (they
    arrive anywhere from one path-delay after leaving to their answer, as far as anyone can
    tell). Airtable answers after a random while. Whatever the mix, no six arrive within one
    second."""
    pools = [await asyncpg.create_pool(db_url, min_size=1, max_size=3) for _ in range(3)]  # three "processes"
    limiters = [AirtableRateLimit(pool, "appSHARED", 5, cooldown_s=1) for pool in pools]
    rng = random.Random(4)
    arrivals: list[float] = []
    path_s = 0.04

    async def send(limiter: AirtableRateLimit, n: int) -> None:
        for _ in range(n):
            slot = await limiter.acquire()
            await asyncio.sleep(rng.uniform(0, 0.03))  # a busy process before the request leaves
            left = time.monotonic()
            kept_alive = rng.random() < 0.7
            await asyncio.sleep(rng.uniform(0.05, 0.25))  # on the way, at Airtable, and back
            answered = time.monotonic()
            if kept_alive:
                arrivals.append(left + path_s + rng.uniform(0, SENT_MARGIN_S))
                await limiter.answered(slot, time.monotonic() - left)
            else:
                earliest = left + path_s
                arrivals.append(rng.choice([earliest, answered, rng.uniform(earliest, answered)]))
                await limiter.answered(slot)

    await asyncio.gather(*(send(limiter, 5) for limiter in limiters for _ in range(2)))
    for pool in pools:
        await pool.close()
    arrivals.sort()
    assert len(arrivals) == 30
    assert min(b - a for a, b in zip(arrivals, arrivals[5:], strict=False)) > 1.0


async def test_a_slot_frees_a_window_after_its_request_left_on_a_kept_alive_connection(
    pool: asyncpg.Pool,
) -> None:
    """The rate limit is used, not wasted: a request that left on a kept-alive connection holds
    its slot a second and the margin from when it left, not through its answer time; one that
    opened a connection, a second from its answer; so does every request for a caller of an
    older version (five arguments)."""
    limiter = AirtableRateLimit(pool, "appSENT", 5, cooldown_s=1)
    slots = [await limiter.acquire() for _ in range(5)]
    answering = time.monotonic()
    for slot in slots:
        await limiter.answered(slot, 0.4)  # left 0.4 s ago, answered now
    take = {
        "base_id": "appSENT",
        "max_requests": 5,
        "window_s": limiter.window_s,
        "timeout_s": 35.0,
        "reserve": 0,
    }
    wait, slot = await pool.fetchrow(*queries.RATE_TAKE.bind(**take, sent_window_s=limiter.sent_window_s))
    assert slot is None and _frees_in(wait, limiter.sent_window_s - 0.4, answering)
    older = "SELECT wait, request_id FROM airtable_take_request($1, $2, $3, $4, $5)"
    wait, slot = await pool.fetchrow(older, *take.values())
    assert slot is None and _frees_in(wait, limiter.window_s, answering)

    await pool.execute("DELETE FROM airtable_requests WHERE base_id = 'appSENT'")
    slots = [await limiter.acquire() for _ in range(5)]
    answering = time.monotonic()
    for slot in slots:
        await limiter.answered(slot, None)  # opened a connection: counted from the answer
    wait, slot = await pool.fetchrow(*queries.RATE_TAKE.bind(**take, sent_window_s=limiter.sent_window_s))
    assert slot is None and _frees_in(wait, limiter.window_s, answering)


async def test_a_slot_taken_for_nothing_is_free_at_once(pool: asyncpg.Pool) -> None:
    """The pusher took a slot, and another process had claimed the rows: no request went."""
    limiter = AirtableRateLimit(pool, "appUNUSED", 5, cooldown_s=1)
    slots = [await limiter.acquire() for _ in range(5)]
    await limiter.unused(slots[0])
    wait, slot = await pool.fetchrow(*_take("appUNUSED"))
    assert wait == 0 and slot is not None  # taken at once, not after a wait
    await limiter.answered(slots[1])
    await limiter.unused(slots[1])  # a request that went is never taken back
    assert await pool.fetchval("SELECT count(*) FROM airtable_requests WHERE base_id = 'appUNUSED'") == 5


async def test_a_slot_reported_while_the_caller_goes_on_is_stored_once(
    db_url: str, pool: asyncpg.Pool
) -> None:
    """A request's answer is reported off its path (`report`): the slot stays taken until the
    report is stored, and counts from when the request left; a second report or an `unused` of
    it costs nothing and frees nothing. A report the database refused is made by the next one."""
    limiter = AirtableRateLimit(pool, "appREPORT", 5, cooldown_s=1)
    slots = [await limiter.acquire() for _ in range(5)]
    limiter.report(slots[0], 0.4)
    limiter.report(slots[0], 0.1)  # the same slot again: nothing more is stored
    await reports_settled()
    answered = "SELECT answered_at - sent_at FROM airtable_requests WHERE id = $1"
    assert (await pool.fetchval(answered, slots[0])).total_seconds() == pytest.approx(0.4, abs=0.05)
    await limiter.unused(slots[0])  # a request went: never taken back
    await limiter.answered(slots[0])  # nor stored again without the time it left
    assert (await pool.fetchval(answered, slots[0])).total_seconds() == pytest.approx(0.4, abs=0.05)
    wait, slot = await pool.fetchrow(*_take("appREPORT"))
    assert slot is None and wait > 0  # all five still count

    away = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    await away.close()
    limiter.pool = away  # the database went away meanwhile
    limiter.report(slots[1], 0.2)
    await reports_settled()
    limiter.pool = pool
    assert await pool.fetchval("SELECT answered_at FROM airtable_requests WHERE id = $1", slots[1]) is None
    await limiter.answered(slots[1])  # the pusher's own report, after the request's
    assert (
        await pool.fetchval("SELECT answered_at FROM airtable_requests WHERE id = $1", slots[1]) is not None
    )


async def test_a_slot_never_given_back_frees_after_the_timeout(pool: asyncpg.Pool) -> None:
    """A process that died mid-request holds its slot only until the request would have timed out."""
    for _ in range(5):
        wait, slot = await pool.fetchrow(*_take("appDEAD", timeout_s=0.5))
        assert wait == 0 and slot is not None
    wait, slot = await pool.fetchrow(*_take("appDEAD", timeout_s=0.5))
    assert slot is None and 0 < wait <= 0.05  # asked again soon: an answer may come any moment
    await asyncio.sleep(1.6)  # taken + timeout + window
    wait, slot = await pool.fetchrow(*_take("appDEAD", timeout_s=0.5))
    assert wait == 0 and slot is not None


async def test_another_base_is_not_held_back(pool: asyncpg.Pool) -> None:
    busy = AirtableRateLimit(pool, "appBUSY", 5, cooldown_s=1)
    for _ in range(5):
        await busy.acquire()  # and never answered
    wait, slot = await pool.fetchrow(*_take("appOTHER"))
    assert wait == 0 and slot is not None  # taken at once, not after a wait


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
    wait, slot = await pool.fetchrow(*_take("appPRIORITY", reserve=1))
    assert slot is None and wait > 0
    wait, slot = await pool.fetchrow(
        "SELECT wait, request_id FROM airtable_take_request($1, $2, $3, $4)", "appPRIORITY", 5, 1.0, 35.0
    )
    assert wait == 0 and slot is not None  # the fifth


async def test_requests_on_a_kept_alive_connection_are_counted_from_when_they_left(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """Over real HTTP: the first request opens a connection (its slot counts from its answer),
    the next ones reuse it (theirs from when they left, which is before their answer)."""
    airtable.standin.delay_s = 0.1
    client = Airtable(settings_for(airtable, attestr), pool)
    for _ in range(3):
        await client.whoami()
    await reports_settled()  # each answer's report is stored while the caller goes on
    rows = await pool.fetch("SELECT taken_at, sent_at, answered_at FROM airtable_requests ORDER BY id")
    assert [row["sent_at"] is None for row in rows] == [True, False, False]
    for row in rows[1:]:
        assert row["taken_at"] <= row["sent_at"]
        assert (row["answered_at"] - row["sent_at"]).total_seconds() >= 0.1  # the stand-in's delay


def test_a_request_held_back_before_it_is_written_counts_from_the_write() -> None:
    """A request on a kept-alive connection counts from when it was written whole, not from when
    it was handed to the HTTP library: a thread held back in between (the interpreter busy with
    the event loop, a loaded machine) sends it later than that, by more than SENT_MARGIN_S."""

    async def read(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    with serve_in_thread(Starlette(routes=[Route("/", read, methods=["POST"])])) as url:
        session = requests.Session()
        session.mount("http://", BoundedAdapter())
        session.post(url, data=b"opens the connection").raise_for_status()
        assert sent_on_kept_alive() is None  # a new connection: counted from its answer

        def held_back() -> object:
            time.sleep(0.3)  # the sending thread waits before its request is all written
            yield b"on the kept-alive connection"

        handed = time.monotonic()
        session.post(url, data=held_back()).raise_for_status()
        sent = sent_on_kept_alive()
        session.close()
    assert sent is not None and sent - handed >= 0.3


async def test_a_request_on_a_connection_the_server_closed_counts_from_its_answer(
    pool: asyncpg.Pool, attestr: Running[AttestrStandIn]
) -> None:
    """A server may close a connection at any time (RFC 9112, 9.6), an idle one say; the next
    request then reconnects (handshakes before it arrives) in the same connection object, and is
    counted from its answer."""
    standin = AirtableStandIn()
    with serve_in_thread(standin.app(), keep_alive_s=1) as url:
        client = Airtable(settings_for(Running(standin, url), attestr), pool)
        sent = []
        for _ in range(3):
            await client.whoami()
            await reports_settled()
            sent.append(await pool.fetchval("SELECT sent_at FROM airtable_requests ORDER BY id DESC LIMIT 1"))
            await asyncio.sleep(1.5)  # idle longer than the server keeps a connection
    assert sent == [None, None, None]
