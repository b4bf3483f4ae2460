"""Raising an alert: one outbox row, stored in the same moment as the event it tells of.

Here on the ground floor so that every wing that sees an event (Attestr's gate, Airtable's
pauses, the worker, reconciliation, the web) raises it the same way; `engine/alerts.py` sends.
"""

from __future__ import annotations

import contextlib

import asyncpg

from service import queries
from service.database import DATABASE_ERRORS
from service.logs import mask_text

# The kinds engine/alerts.py knows how to say (its KINDS).
KINDS = frozenset(
    {
        "job_failed",
        "attestr_paused",
        "airtable_paused",
        "webhook_down",
        "queue_full",
        "triggers_missed",
        "database_unreachable",
    }
)


async def raise_alert(
    conn: asyncpg.Connection | asyncpg.Pool, kind: str, subject: str, detail: str, *, ended: bool = False
) -> None:
    """Store an alert of `kind` (one of KINDS) about `subject` (a company and its CIN, a table:
    never a person), saying `detail` (what happened and what to do); `ended`: the end of what an
    earlier one began (Attestr resumed). Sent by the next sender due; never raises for a
    database that is away (the alert is lost, the work goes on). Phones, emails and PANs are
    masked."""
    assert kind in KINDS, kind
    with contextlib.suppress(*DATABASE_ERRORS):
        await conn.execute(
            queries.ALERT_RAISE, kind, ended, mask_text(subject)[:200], mask_text(detail)[:1000]
        )
