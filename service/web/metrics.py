"""`GET /metrics`: the counters of `service.metrics`, and gauges read from the database at most
every GAUGES_MAX_AGE_S for what all processes share."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from service.engine import stats
from service.metrics import (
    AIRTABLE_PAUSED,
    ATTESTR_PAUSED,
    ATTESTR_TODAY,
    JOBS,
    OLDEST_QUEUED,
    PUSH_BACKLOG,
    RECONCILE_AGE,
    ROWS_FAILED,
)

GAUGES_MAX_AGE_S = 5.0


RENDERED_MAX_AGE_S = 1.0


class _GaugeReads:
    """When this app last read the database's gauges, whether a read is under way, and the last
    page rendered (rendering every metric costs more than a webhook: reused for a second)."""

    def __init__(self) -> None:
        self.read_at = float("-inf")
        self.lock = asyncio.Lock()
        self.page = b""
        self.rendered_at = float("-inf")


async def endpoint(request: Request) -> Response:
    """The metrics, with the database's gauges read again at most every GAUGES_MAX_AGE_S by one
    scrape at a time: other scrapes meanwhile get the last values, so scraping, even by many
    clients at once and without a key, costs the database next to nothing."""
    state = request.app.state
    reads: _GaugeReads = getattr(state, "gauge_reads", None) or _GaugeReads()
    state.gauge_reads = reads
    if time.monotonic() - reads.read_at >= GAUGES_MAX_AGE_S and not reads.lock.locked():
        async with reads.lock:
            _set_gauges(await stats.collect(state.pool, state.settings, open_only=True))
            reads.read_at = time.monotonic()
            reads.rendered_at = float("-inf")  # the gauges just read are shown at once
    if time.monotonic() - reads.rendered_at >= RENDERED_MAX_AGE_S:
        reads.page, reads.rendered_at = generate_latest(), time.monotonic()
    return Response(reads.page, media_type=CONTENT_TYPE_LATEST)


def _set_gauges(found: dict[str, Any]) -> None:
    for status in ("queued", "running", "pushing", "failed"):
        JOBS.labels(status).set(found["jobs"][status])
    OLDEST_QUEUED.set(found["oldest_due_s"] or 0)
    PUSH_BACKLOG.labels("contacts").set(found["airtable"]["contacts_waiting"])
    PUSH_BACKLOG.labels("companies").set(found["airtable"]["companies_waiting"])
    ROWS_FAILED.set(found["airtable"]["rows_failed"])
    ATTESTR_PAUSED.set(1 if found["attestr"]["paused"] else 0)
    AIRTABLE_PAUSED.set(1 if found["airtable"]["pauses"] else 0)
    ATTESTR_TODAY.set(found["attestr"]["calls_today"])
    last_sweep = found["reconcile"]["last_sweep_s"]
    RECONCILE_AGE.set(-1 if last_sweep is None else last_sweep)
