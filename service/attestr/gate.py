"""Whether a paid Attestr call may happen now.

* One call per CIN at a time: a job holds the CIN's advisory lock while it checks the stored
  answers and, if none is fresh, pays; jobs for the same CIN wait and then find the answer.
* An account-wide pause, kept in PostgreSQL so every worker sees it: credits exhausted, bad
  credentials, not provisioned, IP not allowed, a daily limit, or ATTESTR_DAILY_CALL_LIMIT.
  Jobs wait (not failing, not using attempts); every ATTESTR_PROBE_INTERVAL_S one waiting job is
  let through as the probe (Attestr has no free endpoint to probe with); its success resumes
  every job. A daily limit ends by itself at the reset; `contact-sync attestr resume` ends any.
  `contact-sync attestr pause` stops calls at once, with no probe, until `resume`.
* A pause only settings can mend (a refused consent or token, V2 switched off) also ends when a
  process starts with other settings (`resume_if_reconfigured`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from service import queries
from service.alert_outbox import raise_alert
from service.attestr import consent
from service.config import Settings
from service.database import release_session_lock

log = structlog.get_logger(__name__)


OPERATOR_PAUSE = "paused by an operator (`contact-sync attestr pause`)"
# Said after the reason of a pause only settings can mend: the jobs waiting behind it (and
# `contact-sync attestr status`) say what to do as the job that was refused does (worker.py).
MENDED_BY_SETTINGS = "then restart the service (or run `contact-sync attestr resume`)"


class AttestrPaused(Exception):
    """Attestr calls are paused; the job waits until `until` (a probe, or the daily reset)."""

    def __init__(self, reason: str, until: datetime) -> None:
        super().__init__(reason)
        self.reason = reason
        self.until = until


class AttestrGate:
    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings

    @asynccontextmanager
    async def cin_lock(self, cin: str) -> AsyncIterator[asyncpg.Connection]:
        """Hold the CIN's lock (on a connection of its own, given to the caller)."""
        async with self.pool.acquire() as conn:
            await conn.execute(queries.CIN_LOCK, cin)
            async with release_session_lock(conn, queries.CIN_UNLOCK, cin):
                yield conn

    async def take_call(self, conn: asyncpg.Connection | None = None) -> bool:
        """Count one call against the day, or raise AttestrPaused. True when it is the probe.
        `conn`: the connection holding the CIN's lock, so that a job never waits for a second
        connection while it holds one (jobs holding every connection would wait for ever)."""
        row = await (conn or self.pool).fetchrow(
            queries.ATTESTR_TAKE_CALL,
            self.settings.attestr_daily_call_limit,
            self.settings.attestr_probe_interval_s,
        )
        if row["resumed"]:
            log.info("attestr.resumed", reason="the daily limit has reset")
            await self._alert("the daily limit has reset: calls go on", ended=True)
        if row["newly_paused"]:
            log.warning("attestr.paused", reason=row["reason"], until=row["wait_until"].isoformat())
            await self._alert(f"{row['reason']}; until {row['wait_until']:%Y-%m-%d %H:%M} UTC")
        if not row["allowed"]:
            raise AttestrPaused(row["reason"], row["wait_until"])
        return row["probe"]

    async def uncount(self, conn: asyncpg.Connection | None = None) -> None:
        """A call Attestr refused (not billed) is taken off the day's count: refusals, probes of a
        pause included, never use up ATTESTR_DAILY_CALL_LIMIT."""
        await (conn or self.pool).execute(queries.ATTESTR_UNCOUNT)

    async def pause(
        self, reason: str, code: str | None, resume_at: datetime | None = None, *, settings_fix: bool = False
    ) -> None:
        """Stop every Attestr call: until `resume_at` (a daily reset), else until a probe works.
        `settings_fix`: only other settings mend it, so a process started with other settings
        ends it too, and its reason says so."""
        if settings_fix:
            reason = f"{reason}; {MENDED_BY_SETTINGS}"
        newly_paused = await self.pool.fetchval(
            queries.ATTESTR_PAUSE,
            reason,
            code,
            resume_at,
            self.settings.attestr_probe_interval_s,
            consent.fingerprint(self.settings) if settings_fix else None,
        )
        if newly_paused:
            log.warning(
                "attestr.paused", reason=reason, code=code, until=resume_at.isoformat() if resume_at else None
            )
            await self._alert(reason)

    async def pause_by_operator(self) -> None:
        """`contact-sync attestr pause`: stop every Attestr call, probes included, until `resume`.
        A call already under way finishes (and is stored)."""
        await self.pool.execute(queries.ATTESTR_PAUSE_BY_OPERATOR, OPERATOR_PAUSE)
        log.warning("attestr.paused", reason=OPERATOR_PAUSE, code="operator", until=None)

    async def resume(self, why: str) -> int:
        """End the pause and wake the jobs that waited for it; returns how many."""
        row = await self.pool.fetchrow(queries.ATTESTR_RESUME, None)
        log.info("attestr.resumed", reason=why, jobs_woken=row["woken"])
        if row["cleared"]:
            await self._alert(f"{why}: calls go on", ended=True)
        return row["woken"]

    async def resume_if_reconfigured(self) -> bool:
        """At a process's start: end a pause that only settings could mend and that happened
        under other settings than this process's (the operator changed them). True if it did."""
        row = await self.pool.fetchrow(queries.ATTESTR_RESUME, consent.fingerprint(self.settings))
        if row["cleared"]:
            log.info("attestr.resumed", reason="the settings changed", jobs_woken=row["woken"])
            await self._alert("the settings changed: calls go on", ended=True)
        return bool(row["cleared"])

    async def _alert(self, detail: str, *, ended: bool = False) -> None:
        """An alert of Attestr's pause or its end (engine/alerts.py sends it); an operator's own
        pause is not alerted. Lost, not raised, with the database away."""
        await raise_alert(self.pool, "attestr_paused", "Attestr", detail, ended=ended)

    async def state(self) -> dict[str, Any]:
        row = await self.pool.fetchrow(queries.ATTESTR_STATE)
        calls_today = await self.pool.fetchval(queries.ATTESTR_CALLS_TODAY)
        spend = {
            row["name"]: {"paid": row["paid"], "refused": row["refused"], "from_stored": row["from_stored"]}
            for row in await self.pool.fetch(queries.ATTESTR_SPEND)
        }
        return {
            "paused": row["paused_reason"] is not None,
            "reason": row["paused_reason"],
            "code": row["paused_code"],
            "paused_at": row["paused_at"].isoformat() if row["paused_at"] else None,
            "resume_at": row["resume_at"].isoformat() if row["resume_at"] else None,
            # An operator's pause lets no probe through: no next probe to show.
            "next_probe_at": (
                row["probe_after"].isoformat()
                if row["probe_after"] and row["paused_code"] != "operator"
                else None
            ),
            "calls_today": calls_today,
            # Paid calls, Attestr's refusals apart, and jobs served by a stored answer: today, the
            # last 7 and 30 days (India's calendar days).
            "spend": spend,
            "daily_call_limit": self.settings.attestr_daily_call_limit,
            "api_version": self.settings.attestr_api_version,
            # V3: the reusable consent's id, or "registered per lookup"; no consent on V2.
            "consent": (
                None
                if self.settings.attestr_api_version != "v3"
                else f"not configured: set {' and '.join(missing)}"
                if (missing := consent.missing(self.settings))
                else self.settings.attestr_consent_id or "registered per lookup"
            ),
        }
