"""Airtable refusals only the operator can fix, as a pause shared by every process.

A revoked token (401), a table or field a base owner locked, a user made read-only (403), a table
or base moved (404), a field the service needs missing from the schema: no retry of the same
request mends these, and none of them is the rows' fault. So no row is failed and no batch split:
the writes they stop wait (the whole base for a token; otherwise the table refused), jobs wait,
and their companies show Waiting with the reason. One batch is let through as the probe every
AIRTABLE_PROBE_INTERVAL_S; when it gets through, the pause ends by itself. `contact-sync airtable
pause` stops every write, probes included, until `airtable resume`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from service import queries
from service.alert_outbox import raise_alert
from service.config import Settings

log = structlog.get_logger(__name__)

OPERATOR_PAUSE = "paused by an operator (`contact-sync airtable pause`)"


@dataclass
class Admission:
    """Whether a table's writes may go now: `reason` None when they may; else they wait, unless
    `probe` (the next batch is the probe of the pause of `scope`; one batch only: the pusher
    clears it once the batch is sent)."""

    at: datetime  # the database's clock when asked: a refusal of what is sent after is newer
    scope: str | None = None
    reason: str | None = None
    probe: bool = False
    paused_at: datetime | None = None

    @property
    def waits(self) -> bool:
        return self.reason is not None and not self.probe

    @classmethod
    def of(cls, row: asyncpg.Record) -> Admission:
        """From a row of `AIRTABLE_ADMIT` or `PUSH_DUE`."""
        return cls(row["at"], row["scope"], row["reason"], row["probe"], row["paused_at"])


class AirtablePauses:
    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings

    async def admit(self, table: str) -> Admission:
        """Whether writes to `table` ("contacts" or "companies") may go now."""
        row = await self.pool.fetchrow(queries.AIRTABLE_ADMIT, self.settings.airtable_probe_interval_s, table)
        return Admission.of(row)

    async def probe_now(self) -> None:
        """At a process's start: a pause (not an operator's) is probed at once, not after the rest
        of its interval: the restart may have come with the mend (a new token)."""
        await self.pool.execute(queries.AIRTABLE_PROBE_NOW)

    async def stopped(self, table: str) -> bool:
        """Whether writes to `table` wait now (checked again after a wait for a rate-limit slot:
        a pause may have begun meanwhile)."""
        return bool(await self.pool.fetchval(queries.AIRTABLE_STOPPED, table))

    async def pause(self, scope: str, reason: str, kind: str | None, sent_at: datetime | None) -> None:
        """Stop the writes of `scope` for every process until a probe gets through. `sent_at`:
        when the refused request went out; a resume since then stands (the cause was mended)."""
        newly = await self.pool.fetchval(
            queries.AIRTABLE_PAUSE, scope, reason, kind, self.settings.airtable_probe_interval_s, sent_at
        )
        if newly:
            log.warning(
                "airtable.paused",
                scope=scope,
                reason=reason,
                kind=kind,
                sent_at=sent_at.isoformat() if sent_at else None,
            )
            await self._alert(scope, reason)

    async def pause_by_operator(self, reason: str | None = None) -> None:
        """`contact-sync airtable pause`: every write waits, probes included, until `resume`. A
        request under way finishes."""
        text = f"{OPERATOR_PAUSE}: {reason}" if reason else OPERATOR_PAUSE
        await self.pool.execute(queries.AIRTABLE_PAUSE_BY_OPERATOR, text)
        log.warning("airtable.paused", scope="base", reason=text, kind="operator")

    async def probe_got_through(self, admission: Admission, why: str) -> None:
        """End the pause `admission` was a probe of; never an operator's, nor one begun since."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(queries.AIRTABLE_PROBE_RESUME, admission.scope, admission.paused_at)
            if row is not None:
                await conn.fetchval(queries.AIRTABLE_JOBS_WOKEN)
        if row is not None:
            log.info("airtable.resumed", scope=row["scope"], reason=why, was=row["reason"])
            await self._alert(row["scope"], f"{why}: writes go on", ended=True)

    async def resume(self, why: str, scopes: list[str] | None = None) -> list[str]:
        """End the pauses of `scopes` (None: every one); returns the scopes that were paused."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(queries.AIRTABLE_RESUME, scopes)
            if rows:
                await conn.fetchval(queries.AIRTABLE_JOBS_WOKEN)
        for row in rows:
            log.info("airtable.resumed", scope=row["scope"], reason=why, was=row["reason"])
            if row["kind"] != "operator":
                await self._alert(row["scope"], f"{why}: writes go on", ended=True)
        return [row["scope"] for row in rows]

    async def _alert(self, scope: str, detail: str, *, ended: bool = False) -> None:
        """An alert of the pause or its end (engine/alerts.py sends it); lost, not raised, with
        the database away."""
        subject = "the whole base" if scope == "base" else f"the {scope} table"
        await raise_alert(self.pool, "airtable_paused", subject, detail, ended=ended)

    async def state(self) -> list[dict[str, Any]]:
        """Each pause: scope, reason, kind, since, and when the next probe goes (None for an
        operator's pause, which has none)."""
        return [
            {
                "scope": row["scope"],
                "reason": row["reason"],
                "kind": row["kind"],
                "paused_at": row["paused_at"].isoformat(),
                "next_probe_at": None if row["kind"] == "operator" else _iso(row["probe_after"]),
            }
            for row in await self.pool.fetch(queries.AIRTABLE_PAUSES)
        ]


def _iso(moment: datetime) -> str | None:
    return None if moment.year == datetime.max.year else moment.isoformat()
