"""Retention: finished jobs, stored Attestr answers and the record of Attestr lookups (a year at
least) are deleted after configurable periods.

Every worker process runs it once an hour; deleting is idempotent, so several workers doing it
at once only repeat a cheap statement. Answers are kept at least as long as the cache needs them
(config.py raises the period to the cache TTLs).
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

from service import queries
from service.config import Settings
from service.database import DATABASE_ERRORS

log = structlog.get_logger(__name__)

INTERVAL_S = 3600.0
_BATCH = 1000


async def prune(pool: asyncpg.Pool, settings: Settings) -> tuple[int, int, int]:
    """Delete what is past its period: (jobs, answers, lookup records) deleted."""
    counts = []
    for query, days in (
        (queries.JOBS_PRUNE, settings.job_retention_days),
        (queries.ANSWERS_PRUNE, settings.attestr_answer_retention_days),
        (queries.LOOKUPS_PRUNE, settings.attestr_lookup_log_days),
    ):
        total = 0
        while True:
            deleted = int((await pool.execute(query, days, _BATCH)).split()[-1])
            total += deleted
            if deleted < _BATCH:
                break
        counts.append(total)
    await pool.execute(queries.WORKERS_PRUNE)  # workers gone for good, their jobs taken over
    await pool.execute(queries.WEBHOOK_REQUESTS_PRUNE)  # a script's retries end within its run
    await pool.execute(queries.ALERTS_PRUNE)  # sent long ago; the log keeps them too
    jobs, answers, lookups = counts
    if jobs or answers or lookups:
        log.info("retention.pruned", jobs=jobs, attestr_answers=answers, attestr_lookups=lookups)
    return jobs, answers, lookups


async def run(pool: asyncpg.Pool, settings: Settings, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await prune(pool, settings)
        except DATABASE_ERRORS as exc:
            log.warning("retention.failed", error=type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), INTERVAL_S)
