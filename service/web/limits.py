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

from service import queries
from service.alert_outbox import raise_alert
from service.config import Settings
from service.engine.jobs import QueueCap
from service.web.errors import ApiError


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def take_api_request(pool: asyncpg.Pool, key: str, settings: Settings) -> None:
    """Count one request against the key's window, or refuse it with 429 `rate_limited`."""
    row = await pool.fetchrow(queries.API_RATE_TAKE, key_hash(key), settings.api_rate_window_s)
    if row["requests"] > settings.api_rate_limit:
        raise _rate_limited(
            f"This API key made more than {settings.api_rate_limit} requests in "
            f"{settings.api_rate_window_s:g} s",
            row["resets_in_s"],
        )


def _rate_limited(what: str, resets_in_s: float) -> ApiError:
    """429 `rate_limited`: `what` happened, and when to try again (also as Retry-After)."""
    retry_after = max(1, math.ceil(resets_in_s))
    return ApiError(
        429,
        "rate_limited",
        f"{what}; try again in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


# Wrong keys typed on the operator's sign-in form from one address, per API_RATE_WINDOW_S, before
# every sign-in from there is refused until the window ends. API keys are long (MIN_SECRET_LENGTH):
# this only keeps a guesser from filling the log. Right keys are not counted.
SIGN_IN_ATTEMPTS = 10


def _sign_in_name(address: str) -> str:
    return key_hash(f"sign-in:{address}")


async def check_sign_in(pool: asyncpg.Pool, address: str, settings: Settings) -> None:
    """429 `rate_limited` while `address` has typed SIGN_IN_ATTEMPTS wrong keys this window."""
    row = await pool.fetchrow(queries.API_RATE_PEEK, _sign_in_name(address), settings.api_rate_window_s)
    if row is not None and row["requests"] >= SIGN_IN_ATTEMPTS:
        raise _rate_limited(
            f"{SIGN_IN_ATTEMPTS} wrong keys from this address in {settings.api_rate_window_s:g} s",
            row["resets_in_s"],
        )


async def count_refused_sign_in(pool: asyncpg.Pool, address: str, settings: Settings) -> None:
    await pool.fetchrow(queries.API_RATE_TAKE, _sign_in_name(address), settings.api_rate_window_s)


QUEUE_FULL_ALERT_S = 60.0


async def check_queue(cap: QueueCap) -> None:
    """Refuse with 429 `rate_limited` while the queue holds QUEUE_MAX_JOBS jobs."""
    if await cap.full():
        if time.monotonic() - cap.alerted_at > QUEUE_FULL_ALERT_S:  # not one row per refusal
            cap.alerted_at = time.monotonic()
            await raise_alert(
                cap.pool,
                "queue_full",
                f"{cap.max_jobs} jobs waiting",
                "a webhook was refused (429): QUEUE_MAX_JOBS jobs are queued; is the worker running and "
                "keeping up? `contact-sync status`",
            )
        raise ApiError(
            429,
            "rate_limited",
            f"The queue is full ({cap.max_jobs} jobs waiting, QUEUE_MAX_JOBS); nothing was "
            "stored: send again in a minute",
            headers={"Retry-After": "60"},
        )
