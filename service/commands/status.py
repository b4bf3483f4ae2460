"""`status`, `jobs` and `attestr`: what the service is doing, replays, pausing Attestr."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import asyncpg
import structlog
from rich.console import Console
from rich.table import Table
from rich.text import Text

from service import queries
from service.attestr.gate import AttestrGate
from service.commands.context import (
    CommandError,
    database_named,
    job_id_argument,
    new_console,
    positive_count,
    print_json,
    shown,
    with_pool,
)
from service.config import Settings
from service.engine import jobs, stats
from service.identifiers import inert

log = structlog.get_logger(__name__)


def _status(settings: Settings, args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        found = await stats.collect(pool, settings)
        if args.json:
            print_json({"database": database_named(settings), **found})
            return 0
        console = new_console()
        console.print(f"Database: {database_named(settings)}")
        table = Table(title="Jobs", show_header=True)
        for state in found["jobs"]:
            table.add_column(state, justify="right")
        table.add_row(*(str(n) for n in found["jobs"].values()))
        console.print(table)
        oldest = found["oldest_queued_s"]
        console.print(f"Oldest queued job: {'none' if oldest is None else f'{oldest:.0f} s old'}")
        _print_attestr(console, found["attestr"])
        airtable = found["airtable"]
        console.print(
            f"Airtable: {airtable['contacts_waiting']} contact(s) and {airtable['companies_waiting']} "
            f"company status(es) waiting to be written; {airtable['rows_failed']} row(s) refused; "
            f"{airtable['rows_deleted_by_hand']} deleted by hand"
        )
        for pause in airtable["pauses"]:
            what = "every write" if pause["scope"] == "base" else f"writes to the {pause['scope']} table"
            console.print(
                f"  [bold red]{what} paused[/] since {pause['paused_at']}: {shown(pause['reason'])}"
            )
            console.print("  (`contact-sync airtable status`; `contact-sync airtable resume` ends it)")
        sweep = found["reconcile"]
        if sweep["interval_s"] <= 0:
            console.print("Reconciliation: off (RECONCILE_INTERVAL_S=0)")
        elif sweep["last_sweep_s"] is None:
            console.print("Reconciliation: no sweep yet")
        else:
            counts = sweep["last_counts"] or {}
            console.print(
                f"Reconciliation: last sweep {sweep['last_sweep_s'] / 60:.0f} min ago, "
                f"{counts.get('seen', 0)} companies read, {counts.get('queued', 0)} queued"
            )
        return 0

    return with_pool(settings, work)


def _print_attestr(console: Console, state: dict[str, Any]) -> None:
    limit = state["daily_call_limit"]
    calls = f"{state['calls_today']} call(s) today of {limit} allowed (ATTESTR_DAILY_CALL_LIMIT)"
    if state["api_version"] == "v3":
        calls += f"; V3, consent {state['consent']}"
    else:
        calls += "; V2 (deprecated by Attestr: docs/how-to/move-to-attestr-v3.md)"
    if state["paused"]:
        until = (
            "an operator resumes them"
            if state["code"] == "operator"
            else state["resume_at"] or f"a probe at {state['next_probe_at']} succeeds"
        )
        console.print(f"Attestr: [bold red]paused[/] since {state['paused_at']}: {shown(state['reason'])}")
        console.print(f"  until {until}, or `contact-sync attestr resume`; {calls}")
    else:
        console.print(f"Attestr: [green]calling[/]; {calls}")
    spend = state["spend"]
    console.print(
        "  paid calls: "
        + "; ".join(
            f"{label} {spend[key]['paid']} ({spend[key]['refused']} refused, not counted; "
            f"{spend[key]['from_stored']} served from stored answers)"
            for key, label in (("today", "today"), ("last_7_days", "7 days"), ("last_30_days", "30 days"))
        )
    )


def _attestr(settings: Settings, args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        gate = AttestrGate(pool, settings)
        if args.action == "resume":
            woken = await gate.resume("resumed by an operator")
            print(f"Attestr calls resumed; {woken} waiting job(s) woken")
            return 0
        if args.action == "pause":
            await gate.pause_by_operator()
            print(
                "Attestr calls paused: no job calls Attestr (not even a probe) until "
                "`contact-sync attestr resume`; jobs wait without failing. A call already under way "
                "finishes."
            )
            return 0
        state = await gate.state()
        if args.json:
            print_json(state)
        else:
            _print_attestr(new_console(), state)
        return 0

    return with_pool(settings, work)


def _jobs(settings: Settings, args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        if args.action == "list":
            return await _jobs_list(pool, args)
        if args.action == "show":
            job = await jobs.get(pool, args.id)
            if job is None:
                print(f"No job {args.id}: `contact-sync jobs list` shows the latest ones", file=sys.stderr)
                return 1
            attempts = [
                {
                    **dict(row),
                    "started_at": row["started_at"].isoformat(),
                    "ended_at": row["ended_at"].isoformat(),
                }
                for row in await pool.fetch(queries.JOB_ATTEMPTS, job.id)
            ]
            print_json({**job.document(), "attempt_history": attempts})
            return 0
        since = getattr(args, "since", None)
        if since and not args.failed:
            raise CommandError(
                "--since goes with --failed: `contact-sync jobs retry --failed --since 10m`", code=2
            )
        ids = (
            [int(r["id"]) for r in await pool.fetch(queries.JOBS_FAILED_IDS, since, None)]
            if args.failed
            else [args.id]
        )
        if not ids:
            print("No failed jobs" + (" in that time" if since else ""))
            return 0
        status = 0
        for job_id in ids:
            try:
                job, deduplicated = await jobs.retry(pool, job_id)
            except (jobs.JobNotFound, jobs.JobNotRetryable) as exc:
                print(exc, file=sys.stderr)
                status = 1
                continue
            print(
                f"job {job_id}: "
                + (f"job {job.id} is already queued for {job.record_id}" if deduplicated else "queued again")
            )
        await pool.execute(queries.NOTIFY_JOBS)
        return status

    return with_pool(settings, work)


async def _jobs_list(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    found = await jobs.list_jobs(pool, args.status, args.limit)
    if args.json:
        print_json([job.document() for job in found])
        return 0
    if not found:
        print("No jobs" + (f" {args.status}" if args.status else ""))
        return 0
    names = await jobs.company_names(pool, sorted({job.record_id for job in found}))
    rows = [
        (
            str(job.id),
            job.status,
            job.cin or "",
            f"{job.updated_at:%Y-%m-%d %H:%M}",
            names.get(job.record_id, job.record_id),
            job.last_error or job.wait_reason or "",
        )
        for job in found
    ]
    headers = ("id", "status", "cin", "updated (UTC)", "company", "why")
    console = new_console()
    # Ids, states, CINs and times are never cut; the company and the reason share what is left
    # of the width (the company at least a third), cut with an ellipsis. Columns two spaces apart.
    needed = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    left = console.width - sum(needed[:4]) - 2 * (len(headers) - 1)
    if left < 24:  # too narrow for both: the reason is left to `jobs show`
        headers, rows = headers[:5], [row[:5] for row in rows]
        widths = [*needed[:4], max(left + 2, 8)]
    else:
        company = min(needed[4], max(left // 3, left - needed[5]))
        widths = [*needed[:4], company, left - company]
    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    for header, width in zip(headers, widths, strict=True):
        table.add_column(header, no_wrap=True, overflow="ellipsis", max_width=width)
    for row in rows:  # text, not markup: a reason may carry Airtable's or Attestr's words
        table.add_row(*(Text(inert(cell)) for cell in row))
    console.print(table)
    console.print("`contact-sync jobs show ID` shows the whole of a job.")
    return 0


def arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Fill the sub-parser of `command`, one of this module's commands (`cli.py` names them
    with their summaries)."""
    {"status": _status_arguments, "jobs": _jobs_arguments, "attestr": _attestr_arguments}[command](parser)


def _status_arguments(status: argparse.ArgumentParser) -> None:
    status.description = (
        "What the service is doing, from the database.\n\nexamples:\n  contact-sync status\n"
        "  contact-sync status --json"
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(run=_status)


def _jobs_arguments(jobs_cmd: argparse.ArgumentParser) -> None:
    jobs_cmd.description = (
        "Jobs of every process, from the database. A retried job starts again with its "
        "attempts reset and reuses the Attestr answer it already paid for.\n\nexamples:\n"
        "  contact-sync jobs list --status failed\n  contact-sync jobs show 42\n"
        "  contact-sync jobs retry 42\n  contact-sync jobs retry --failed"
    )
    jobs_actions = jobs_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = jobs_actions.add_parser(
        "list",
        help="the latest jobs, newest first",
        epilog="example:\n  contact-sync jobs list --status failed --limit 20",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    listing.add_argument("--status", choices=list(jobs.STATES), help="only jobs in this state")
    listing.add_argument("--limit", type=positive_count, default=50, help="how many (default 50)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    jobs_actions.add_parser(
        "show",
        help="one job, whole, as JSON, with each attempt and how it ended",
        epilog="example:\n  contact-sync jobs show 42",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).add_argument("id", type=job_id_argument, help="the job's id")
    retrying = jobs_actions.add_parser(
        "retry",
        help="replay a failed job, or every failed one",
        epilog="examples:\n  contact-sync jobs retry 42\n  contact-sync jobs retry --failed\n"
        "  contact-sync jobs retry --failed --since 10m",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which_jobs = retrying.add_mutually_exclusive_group(required=True)
    which_jobs.add_argument("id", type=job_id_argument, nargs="?", help="the job's id")
    which_jobs.add_argument("--failed", action="store_true", help="every failed job")
    retrying.add_argument(
        "--since",
        type=duration_argument,
        metavar="DURATION",
        help="with --failed: only those that failed within this long (30s, 10m, 2h, 1d)",
    )
    jobs_cmd.set_defaults(run=_jobs)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def duration_argument(text: str) -> float:
    """`10m` → 600.0 seconds: a whole number and one of s, m, h, d."""
    number, unit = text.strip()[:-1], text.strip()[-1:].lower()
    if not number.isdigit() or unit not in _UNITS or int(number) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30s, 10m, 2h or 1d")
    return float(int(number) * _UNITS[unit])


def _attestr_arguments(attestr: argparse.ArgumentParser) -> None:
    attestr.description = (
        "Attestr calls pause for every job when credits run out, credentials or access "
        "are refused, or a daily limit is reached. They resume when a probe call works, at the "
        "daily reset, or with `resume`. `pause` stops them at once (no probe either) until `resume`: "
        "jobs wait, nothing fails.\n\nexamples:\n  contact-sync attestr status\n"
        "  contact-sync attestr pause\n  contact-sync attestr resume"
    )
    attestr_actions = attestr.add_subparsers(dest="action", required=True, metavar="ACTION")
    attestr_actions.add_parser(
        "status",
        help="paused or not, and today's calls",
        epilog="example:\n  contact-sync attestr status --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).add_argument("--json", action="store_true", help="print JSON")
    attestr_actions.add_parser(
        "pause",
        help="stop every Attestr call now, until resumed",
        epilog="example:\n  contact-sync attestr pause",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    attestr_actions.add_parser(
        "resume",
        help="end a pause and wake the jobs waiting for it",
        epilog="example:\n  contact-sync attestr resume",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    attestr.set_defaults(run=_attestr)
