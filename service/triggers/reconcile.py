"""Reconciliation: no CIN is missed when a trigger is lost.

The automation script is push-only: while the service is down, deploying, overloaded or out of
reach, a run fails and nothing tries again. So one process at a time (an advisory lock) sweeps
the Companies table, at start-up and every RECONCILE_INTERVAL_S, and queues, exactly as a webhook
would, every company whose valid CIN was set or changed since the sweep before (from a little
before it began: `OVERLAP`) and has no job for that CIN, and every company whose Refresh Contacts
was ticked with no job since the tick.

It decides by state, never by a time window alone: a company already synced, queued or failed
under the CIN it holds is left alone (a failed job is the operator's to replay), so sweeping
again costs nothing. The first sweep ever sets a baseline: CINs set before it are `backfill`'s,
never an unannounced sweep's. The reads are Airtable's `LAST_MODIFIED_TIME({CIN})` and
`CREATED_TIME()` in a formula ("Formula field reference"; a field set when its record was created
may have no modification time, hence both), only the fields needed, at the shared rate limit's
background priority. A sweep stopped half-way moves nothing on: the next one reads the same
window again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog

from service import identifiers, metrics, queries
from service.airtable.client import Airtable
from service.airtable.errors import AirtableError
from service.alert_outbox import raise_alert
from service.config import Settings
from service.database import DATABASE_ERRORS, release_session_lock
from service.engine import jobs
from service.triggers import backfill

log = structlog.get_logger(__name__)

OVERLAP_S = 600.0  # each sweep re-reads the last ten minutes of the one before
# A tick this soon after a company's newest job began is taken as the one that job answered: the
# automation's own job is created a moment after the tick, on another clock.
TICK_MARGIN = timedelta(seconds=60)
RETRY_AFTER_FAILURE_S = 60.0
_TICKS_PER_QUERY = 10


@dataclass
class Sweep:
    """What one sweep found: companies read, what it queues (record id, CIN, forced), and why
    the others were left alone (`skipped`: reason -> count)."""

    since: datetime | None = None
    baseline_at: datetime | None = None
    seen: int = 0
    to_queue: list[tuple[str, str, bool]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    to_repush: list[str] = field(default_factory=list)  # shown Waiting, but their job was stored
    refused: list[tuple[str, str]] = field(default_factory=list)  # shown Waiting, no CIN: (id, why)
    attestr_calls: int = 0
    queued: int = 0  # new jobs (the others joined a queued one)
    deferred: int = 0  # a webhook got there while the sweep read: judged again by the next sweep
    read_at: datetime | None = None  # the database's clock when the sweep began reading


async def sweep(
    pool: asyncpg.Pool, airtable: Airtable, settings: Settings, *, dry_run: bool = False
) -> Sweep | None:
    """One sweep; None when another process is sweeping now. `dry_run` queues nothing, moves
    nothing on and takes no lock (with no baseline yet it reads nothing: the first real sweep
    sets it). Raises AirtableError (nothing queued is lost: queueing is idempotent) and
    database errors."""
    airtable.require_configured()
    if dry_run:
        state = await pool.fetchrow(queries.RECONCILE_STATE)
        if state is None:
            return Sweep()
        found = await _plan(pool, airtable, settings, state["swept_from"])
        found.baseline_at = state["baseline_at"]
        return found
    async with pool.acquire() as lock:
        if not await lock.fetchval(queries.RECONCILE_LOCK):
            return None
        async with release_session_lock(lock, queries.RECONCILE_UNLOCK):
            started = time.monotonic()
            state = await pool.fetchrow(queries.RECONCILE_BEGIN)
            found = await _plan(pool, airtable, settings, state["swept_from"])
            found.baseline_at = state["baseline_at"]
            if not await _apply(pool, settings, found):
                return found  # the queue is full: nothing moves on, the next sweep reads it all again
            counts = {"seen": found.seen, "queued": found.queued, "skipped": dict(found.skipped)}
            # A company deferred (a webhook came while the sweep read) is read again next time.
            await pool.execute(queries.RECONCILE_FINISH, OVERLAP_S, json.dumps(counts), found.deferred == 0)
    metrics.RECONCILE_QUEUED.inc(found.queued)
    if found.queued >= settings.alert_missed_triggers:
        await raise_alert(
            pool,
            "triggers_missed",
            "reconciliation",
            f"the sweep queued {found.queued} companies whose CIN no trigger brought (ALERT_MISSED_TRIGGERS "
            f"is {settings.alert_missed_triggers}): the Airtable automation is failing or out of runs",
        )
    log.info(
        "reconcile.finished",
        since=found.since.isoformat() if found.since else None,
        seen=found.seen,
        queued=found.queued,
        skipped=dict(found.skipped),
        deferred=found.deferred,
        statuses_restored=len(found.to_repush) + len(found.refused),
        attestr_calls=found.attestr_calls,
        duration_ms=round((time.monotonic() - started) * 1000),
    )
    return found


async def _plan(pool: asyncpg.Pool, airtable: Airtable, settings: Settings, since: datetime) -> Sweep:
    found = Sweep(since=since, read_at=await pool.fetchval(queries.RECONCILE_NOW))
    cin_field = settings.field("CIN")
    records, refresh, status = await _read(airtable, settings, since)
    found.seen = len(records)
    read = [(r["id"], identifiers.cin(r["fields"].get(cin_field)), r["fields"]) for r in records]
    valid = [(record_id, cin) for record_id, cin, _ in read if cin]
    known = {
        row["record_id"]: row
        for row in await pool.fetch(queries.RECONCILE_JOBS, [r for r, _ in valid], [c for _, c in valid])
    }
    ticks: dict[str, tuple[str, datetime]] = {}  # record id -> (CIN, when its forced job began)
    for record_id, cin, cells in read:
        shown_waiting = bool(status) and cells.get(status) == "Waiting"
        if cin is None:
            found.skipped["invalid_cin"] += 1
            if shown_waiting:  # the script could not ask the service: say what it would have said
                raw = (identifiers.plain(cells.get(cin_field)) or "").strip()[:40]
                found.refused.append((record_id, f"{raw!r} is not a valid CIN or LLPIN"))
            continue
        row = known[record_id]
        ticked = bool(refresh and cells.get(refresh) is True)
        reason = _cin_handled(row, cin)
        if reason is None:
            found.to_queue.append((record_id, cin, ticked))
        elif ticked and row["last_status"] == "queued" and not row["last_force"]:
            found.to_queue.append((record_id, cin, True))  # joins the queued job as a refresh
        elif ticked and row["last_status"] in ("succeeded", "failed") and not row["last_force"]:
            found.to_queue.append((record_id, cin, True))  # its newest job did not refresh
        elif ticked and row["last_status"] in ("succeeded", "failed"):
            ticks[record_id] = (cin, row["last_created_at"])
        else:
            found.skipped[reason] += 1
            if shown_waiting and reason in ("synced", "failed"):
                found.to_repush.append(record_id)
    if ticks:
        assert refresh is not None
        for record_id in await _ticked_after_their_job(airtable, refresh, ticks):
            found.to_queue.append((record_id, ticks.pop(record_id)[0], True))
        if ticks:
            found.skipped["tick_answered"] += len(ticks)
    found.attestr_calls = await backfill.attestr_calls(
        pool, settings, [cin for _, cin, forced in found.to_queue if not forced]
    ) + len({cin for _, cin, forced in found.to_queue if forced})
    return found


async def _read(
    airtable: Airtable, settings: Settings, since: datetime
) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """The companies changed since `since`, with the names of the Refresh Contacts and status
    fields when the table has them. The schema is read again once when Airtable refuses the
    formula (a field deleted since it was last read)."""
    cin_field = settings.field("CIN")
    for attempt in range(2):
        fields = (await airtable.fields(refresh=attempt > 0))["companies"]
        if cin_field not in fields:
            raise AirtableError(f'The Companies table has no "{cin_field}" field', kind="UNKNOWN_FIELD_NAME")
        refresh = settings.field("REFRESH") if settings.field("REFRESH") in fields else None
        status = settings.field("SYNC_STATUS") if settings.field("SYNC_STATUS") in fields else None
        try:
            records = await airtable.list_records(
                airtable.companies,
                formula=_changed_since(cin_field, refresh, since),
                fields=[name for name in (cin_field, refresh, status) if name],
                background=True,
            )
        except AirtableError as exc:
            if attempt or exc.kind not in ("INVALID_FILTER_BY_FORMULA", "UNKNOWN_FIELD_NAME"):
                raise
            continue
        return records, refresh, status
    raise AssertionError("unreachable")


def _changed_since(cin_field: str, refresh: str | None, since: datetime) -> Any:
    """Companies with a CIN set or changed after `since`, or (with the field) a Refresh Contacts
    ticked after it. Created after it counts: a value given at creation may have no
    modification time."""
    from pyairtable import formulas  # at first use: see airtable/client.py

    created = formulas.IS_AFTER(formulas.CREATED_TIME(), since)
    cin = formulas.Field(cin_field)
    changed = formulas.AND(
        formulas.NOT(formulas.EQ(cin, "")),
        formulas.OR(formulas.IS_AFTER(formulas.LAST_MODIFIED_TIME(cin), since), created),
    )
    if refresh is None:
        return changed
    tick = formulas.Field(refresh)
    tick_changed = formulas.IS_AFTER(formulas.LAST_MODIFIED_TIME(tick), since)
    ticked = formulas.AND(tick, formulas.OR(tick_changed, created))
    return formulas.OR(changed, ticked)


def _cin_handled(row: asyncpg.Record, cin: str) -> str | None:
    """Why the company needs no job for the CIN it holds, judged by its newest job (a CIN
    changed A to B and back to A needs a job again), or None when it does."""
    if row["last_status"] is None:  # no job kept: synced under this CIN before, or never
        return "synced" if row["synced_under_cin"] else None
    if row["last_cin"] not in (cin, None):
        return None  # its newest job is for another CIN
    if row["last_status"] in ("queued", "running", "pushing"):
        return "in_progress"
    return "synced" if row["last_status"] == "succeeded" else "failed"


async def _ticked_after_their_job(
    airtable: Airtable, refresh: str, ticks: dict[str, tuple[str, datetime]]
) -> list[str]:
    """The ticked companies whose tick came after their newest job began (Airtable keeps when a
    field last changed, readable only in a formula: ten companies a request)."""
    from pyairtable import formulas  # at first use: see airtable/client.py

    tick = formulas.Field(refresh)
    found: list[str] = []
    items = sorted(ticks.items())
    for start in range(0, len(items), _TICKS_PER_QUERY):
        formula = formulas.OR(
            *(
                formulas.AND(
                    formulas.EQ(formulas.RECORD_ID(), record_id),
                    formulas.OR(
                        formulas.IS_AFTER(formulas.LAST_MODIFIED_TIME(tick), began + TICK_MARGIN),
                        formulas.IS_AFTER(formulas.CREATED_TIME(), began + TICK_MARGIN),
                    ),
                )
                for record_id, (_cin, began) in items[start : start + _TICKS_PER_QUERY]
            )
        )
        rows = await airtable.list_records(
            airtable.companies, formula=formula, fields=[refresh], background=True
        )
        found += [row["id"] for row in rows]
    return found


async def _apply(pool: asyncpg.Pool, settings: Settings, found: Sweep) -> bool:
    """Queue what the sweep found, as a webhook would. A company whose job was stored or changed
    by a webhook since the sweep began reading is left to that webhook (it brought what the
    company holds now, and a tick's forced job must not be doubled). False, queueing nothing,
    when the queue is full (QUEUE_MAX_JOBS)."""
    if found.to_queue:
        queued = await pool.fetchval(queries.JOBS_QUEUED_COUNT, settings.queue_max_jobs)
        if queued >= settings.queue_max_jobs:
            log.warning(
                "reconcile.deferred",
                reason="the queue is full (QUEUE_MAX_JOBS)",
                to_queue=len(found.to_queue),
            )
            return False
    for record_id, cin, forced in found.to_queue:
        if await pool.fetchval(queries.RECONCILE_JOB_SINCE, record_id, found.read_at):
            found.deferred += 1
            continue
        _job_id, deduplicated = await jobs.enqueue(pool, record_id, cin, force=forced, source="reconcile")
        found.queued += not deduplicated
    for record_id, reason in found.refused:
        await pool.execute(queries.COMPANY_REFUSED_CIN, record_id, reason)
    if found.to_repush:
        await pool.execute(queries.COMPANIES_REPUSH, found.to_repush)
    if found.to_repush or found.refused:
        await pool.execute(queries.NOTIFY_PUSH)
    if found.to_queue:
        await pool.execute(queries.NOTIFY_JOBS)
    return True


async def run(pool: asyncpg.Pool, airtable: Airtable, settings: Settings, stop: asyncio.Event) -> None:
    """The worker's sweeps: at start-up (a trigger lost while the service was away or deploying is
    found at once) and then every RECONCILE_INTERVAL_S, counted from the last sweep any process
    finished. Off at 0."""
    interval = settings.reconcile_interval_s
    if interval <= 0:
        return
    wait, starting = 0.0, True
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
        if stop.is_set():
            return
        if airtable.missing:  # `/ready` and doctor name what is missing; nothing to sweep yet
            wait = interval
            continue
        try:
            state = await pool.fetchrow(queries.RECONCILE_STATE)
            ago = state["finished_s_ago"] if state and state["finished_s_ago"] is not None else None
            if starting or ago is None or ago >= interval:
                if not await _swept_unless_stopped(pool, airtable, settings, stop):
                    return
                wait = interval
            else:
                wait = interval - ago
            starting = False
        except AirtableError as exc:
            metrics.RECONCILE_FAILED.inc()
            log.warning("reconcile.failed", error=exc.message)
            wait = min(interval, RETRY_AFTER_FAILURE_S)
        except DATABASE_ERRORS as exc:
            metrics.RECONCILE_FAILED.inc()
            log.warning("reconcile.failed", error=type(exc).__name__)
            wait = min(interval, RETRY_AFTER_FAILURE_S)
        except Exception:  # a bug must not end the sweeps (nor the process): log it, go on
            metrics.RECONCILE_FAILED.inc()
            log.exception("reconcile.crashed")
            wait = min(interval, RETRY_AFTER_FAILURE_S)
        wait *= random.uniform(1.0, 1.05)  # processes started together do not ask together


async def _swept_unless_stopped(
    pool: asyncpg.Pool, airtable: Airtable, settings: Settings, stop: asyncio.Event
) -> bool:
    """A sweep, cut short when the process is asked to stop (a slow Airtable must not hold a
    stopping worker past its grace period): False then. A sweep cut short records no end, so the
    next process to start sweeps again; the jobs it queued stay queued. Raises what `sweep` raises."""
    swept = asyncio.create_task(sweep(pool, airtable, settings))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({swept, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if swept.done():
        swept.result()
        return True
    swept.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await swept
    log.info("reconcile.interrupted")
    return False
