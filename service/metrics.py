"""Prometheus metrics (`GET /metrics`): counters of what this process did, and, at each scrape,
gauges read from the database for what all processes share (jobs by state, queue age, rows
waiting for Airtable, Attestr paused)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from . import stats

WEBHOOKS = Counter(
    "contact_sync_webhooks_total",
    "Webhooks received, by outcome: accepted, deduplicated, or the error code",
    ["outcome"],
)
# Bound once: the label lookup is a measurable part of a webhook's time under load.
WEBHOOKS_ACCEPTED = WEBHOOKS.labels("accepted")
WEBHOOKS_DEDUPLICATED = WEBHOOKS.labels("deduplicated")
JOBS_ENDED = Counter("contact_sync_jobs_ended_total", "Jobs that ended, by state", ["status"])
JOB_DURATION = Histogram(
    "contact_sync_job_duration_seconds",
    "From a job's webhook to its end",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
ATTESTR_CALLS = Counter("contact_sync_attestr_calls_total", "Paid Attestr calls, by outcome", ["outcome"])
ATTESTR_ERRORS = Counter("contact_sync_attestr_errors_total", "Attestr errors, by Attestr's code", ["code"])
AIRTABLE_REQUESTS = Counter(
    "contact_sync_airtable_requests_total",
    "Airtable requests, by result: ok, rate_limited, refused, unavailable",
    ["result"],
)
AIRTABLE_RECORDS = Counter(
    "contact_sync_airtable_records_total", "Records written to Airtable, by table", ["table"]
)
RECONCILE_QUEUED = Counter(
    "contact_sync_reconcile_queued_total", "Jobs queued by reconciliation sweeps (triggers that were lost)"
)
RECONCILE_FAILED = Counter("contact_sync_reconcile_failed_total", "Reconciliation sweeps that failed")

JOBS = Gauge("contact_sync_jobs", "Jobs in each state (all processes)", ["status"])
OLDEST_QUEUED = Gauge("contact_sync_oldest_queued_job_seconds", "Age of the oldest job due to run (0: none)")
PUSH_BACKLOG = Gauge(
    "contact_sync_airtable_backlog_rows", "Rows waiting to be written to Airtable", ["table"]
)
ROWS_FAILED = Gauge("contact_sync_airtable_failed_rows", "Contact rows Airtable refused")
ATTESTR_PAUSED = Gauge("contact_sync_attestr_paused", "1 while Attestr calls are paused")
ATTESTR_TODAY = Gauge("contact_sync_attestr_calls_today", "Attestr calls today (India's day)")
RECONCILE_AGE = Gauge(
    "contact_sync_reconcile_last_sweep_seconds",
    "Seconds since a reconciliation sweep last finished (-1: never)",
)


def job_ended(status: str, created_at: datetime) -> None:
    JOBS_ENDED.labels(status).inc()
    JOB_DURATION.observe(max(0.0, (datetime.now(timezone.utc) - created_at).total_seconds()))


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
            _set_gauges(await stats.collect(state.pool, state.settings, for_metrics=True))
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
    ATTESTR_TODAY.set(found["attestr"]["calls_today"])
    last_sweep = found["reconcile"]["last_sweep_s"]
    RECONCILE_AGE.set(-1 if last_sweep is None else last_sweep)
