"""What an operator looks at: `GET /stats` and `contact-sync status`."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from service import queries
from service.airtable.pauses import AirtablePauses
from service.attestr.gate import AttestrGate
from service.config import Settings
from service.engine import jobs

GAUGE_CAP = 1_000_000  # /metrics counts no further: a gauge that high says enough


async def collect(pool: asyncpg.Pool, settings: Settings, *, open_only: bool = False) -> dict[str, Any]:
    """Everything `status` and `/stats` show. `open_only` (/metrics, the operator's page): jobs
    counted only in the states that need watching, each no further than GAUGE_CAP, so that an
    anonymous scrape or an open page reads indexes only (migrations/013_cheap_counts.sql)."""
    by_state = {state: 0 for state in jobs.STATES}
    counted = (
        await pool.fetch(queries.STATS_JOBS_OPEN, GAUGE_CAP)
        if open_only
        else await pool.fetch(queries.STATS_JOBS)
    )
    by_state.update({r["status"]: r["n"] for r in counted})
    oldest = await pool.fetchrow(queries.STATS_OLDEST_QUEUED)
    airtable = await pool.fetchrow(queries.STATS_AIRTABLE)
    sweep = await pool.fetchrow(queries.RECONCILE_STATE)
    return {
        "jobs": by_state,
        "oldest_queued_s": _rounded(oldest["any_s"]),
        "oldest_due_s": _rounded(oldest["due_s"]),
        "attestr": await AttestrGate(pool, settings).state(),
        "airtable": {
            "contacts_waiting": airtable["contacts"],
            "companies_waiting": airtable["companies"],
            "rows_failed": airtable["failed_rows"],
            "rows_deleted_by_hand": airtable["deleted_by_hand"],
            "pauses": await AirtablePauses(pool, settings).state(),
        },
        "reconcile": {
            "interval_s": settings.reconcile_interval_s,
            "last_sweep_s": _rounded(sweep["finished_s_ago"]) if sweep else None,
            "last_counts": json.loads(sweep["counts"]) if sweep and sweep["counts"] else None,
        },
    }


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)
