"""Prometheus metrics: counters of what this process did, and the gauges `GET /metrics` sets at
each scrape from the database for what all processes share (jobs by state, queue age, rows
waiting for Airtable, Attestr paused; see `service.web.metrics`)."""

from __future__ import annotations

from datetime import datetime, timezone

from prometheus_client import Counter, Gauge, Histogram

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
AIRTABLE_PAUSED = Gauge(
    "contact_sync_airtable_paused", "1 while writes to Airtable (the base, or a table) are paused"
)
ATTESTR_TODAY = Gauge("contact_sync_attestr_calls_today", "Attestr calls today (India's day)")
RECONCILE_AGE = Gauge(
    "contact_sync_reconcile_last_sweep_seconds",
    "Seconds since a reconciliation sweep last finished (-1: never)",
)


def job_ended(status: str, created_at: datetime) -> None:
    JOBS_ENDED.labels(status).inc()
    JOB_DURATION.observe(max(0.0, (datetime.now(timezone.utc) - created_at).total_seconds()))
