"""The `contact-sync` command line (also `python -m service`)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
import signal
import socket
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import structlog
import uvicorn
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from service import queries
from service.airtable import webhooks as airtable_webhooks
from service.airtable import write_check
from service.airtable.client import Airtable, AirtableError, AirtableNotConfigured
from service.attestr.gate import AttestrGate
from service.commands import adopt, demo, doctor, forget
from service.config import Settings, SettingsError, load_settings
from service.database import DATABASE_ERRORS, create_pool, database_url
from service.engine import jobs, stats
from service.logs import configure_logging
from service.migrations import migrate, pending_migrations
from service.people import importer
from service.triggers import backfill, reconcile
from service.triggers.payloads import PayloadReader
from service.triggers.runtime import Runtime
from service.web import validation
from service.web.app import create_app

log = structlog.get_logger(__name__)


class CommandError(Exception):
    """A problem the person at the command line can fix, said in one sentence; `code` is the
    exit status (2: the command was used wrongly, 1: it could not do its work)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words."""
    if isinstance(exc, socket.gaierror):
        return "no such host"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "no answer within 10 s"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    first = str(exc).strip().splitlines()
    return first[0] if first else type(exc).__name__


def _unreachable(settings: Settings, exc: BaseException) -> CommandError:
    if settings.database_url is None:
        where = f"embedded in {settings.data_dir.resolve()}"
    else:
        parts = urlsplit(settings.database_url)
        where = f"at {parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"
    return CommandError(
        f"The database {where} cannot be reached ({_reason(exc)}): check DATABASE_URL, or unset it "
        "to use the embedded database"
    )


def _database_url(settings: Settings) -> str:
    """DATABASE_URL, or the embedded PostgreSQL's, started if need be."""
    try:
        return database_url(settings)
    except Exception as exc:  # pgserver fails in many ways (folder, port, binary): one thing to a user
        raise CommandError(
            f"The embedded PostgreSQL could not start in {settings.data_dir.resolve()} ({_reason(exc)}): "
            "check that DATA_DIR is a folder you can write to, or set DATABASE_URL"
        ) from exc


async def _open_pool(settings: Settings, **sizes: int) -> asyncpg.Pool:
    """A pool on the service's database, migrated; CommandError when it cannot be reached."""
    url = _database_url(settings)
    try:
        pool = await create_pool(url, timeout=10, **sizes)
    except (*DATABASE_ERRORS, ValueError) as exc:
        raise _unreachable(settings, exc) from exc
    async with pool.acquire() as conn:
        await migrate(conn)
    return pool


def _exit_cleanly(_signum: int, _frame: object) -> None:
    sys.exit(0)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    port = args.port if args.port is not None else settings.port
    settings = Settings(**{**settings.__dict__, "port": port})
    # The port first, then the database: `service.started` is logged only once both are had.
    listening = _listen(args.host, port)
    try:
        url = _database_url(settings)
        asyncio.run(_check_database(settings))
    except BaseException:
        listening.close()
        raise
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again; exiting
    # normally at that point (instead of being killed by it) lets the embedded database stop.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, url),
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=30,
            # Slow or idle clients: an idle keep-alive connection is closed after 5 s, and beyond
            # 1,000 connections at once new ones are answered 503 rather than queued without
            # limit (a body's own time limit is validation.BODY_TIMEOUT_S).
            timeout_keep_alive=5,
            limit_concurrency=1000,
        )
    )
    server.run(sockets=[listening])
    return 0 if server.started else 1


async def _check_database(settings: Settings) -> None:
    pool = await _open_pool(settings, min_size=1, max_size=1)
    await pool.close()


def _listen(host: str, port: int) -> socket.socket:
    """The service's listening socket, or CommandError saying why the port cannot be had."""
    # IPPROTO_TCP said explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say
    # they are TCP, and with Nagle on a response can wait ~40 ms for a delayed ACK.
    sock = socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        return sock
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(
                f"Port {port} is already in use on {host}: stop what is using it, or choose another "
                "port with --port or PORT"
            ) from exc
        raise CommandError(f"Cannot listen on {host}:{port} ({_reason(exc)}): check --host and PORT") from exc


def _worker(settings: Settings, _args: argparse.Namespace) -> int:
    url = _database_url(settings)

    async def run() -> None:
        try:
            runtime = await Runtime.open(settings, url)
        except DATABASE_ERRORS as exc:
            raise _unreachable(settings, exc) from exc
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Stop claiming; in-flight jobs finish within the grace period or are handed back.
            loop.add_signal_handler(sig, runtime.stop)
        runtime.start_background()
        log.info("worker.started", concurrency=settings.worker_concurrency)
        try:
            await runtime.wait()
        finally:
            await runtime.close()
        log.info("worker.stopped")

    asyncio.run(run())
    return 0


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    async def run() -> list[str]:
        try:
            conn = await asyncpg.connect(_database_url(settings), timeout=10)
        except (*DATABASE_ERRORS, ValueError) as exc:
            raise _unreachable(settings, exc) from exc
        try:
            return await migrate(conn)
        finally:
            await conn.close()

    applied = asyncio.run(run())
    print(f"applied {len(applied)} migration(s){': ' + ', '.join(applied) if applied else ''}")
    return 0


def _with_pool(settings: Settings, work: Callable[[asyncpg.Pool], Awaitable[int]]) -> int:
    """Run an operator command against the database (migrated first)."""

    async def run() -> int:
        pool = await _open_pool(settings, min_size=1, max_size=2)
        try:
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(run())


def _console() -> Console:
    # Whole lines, never wrapped: operators pipe this output into grep and logs. Tables fit a
    # terminal (or COLUMNS); in a pipe or a log they are drawn wide, cutting nothing.
    console = Console(soft_wrap=True, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(soft_wrap=True, highlight=False, width=250)
    return console


def _print_json(value: Any) -> None:

    print(json.dumps(value, indent=2, default=str))


def _status(settings: Settings, args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        found = await stats.collect(pool, settings)
        if args.json:
            _print_json(found)
            return 0
        console = _console()
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

    return _with_pool(settings, work)


def _print_attestr(console: Console, state: dict[str, Any]) -> None:
    limit = state["daily_call_limit"]
    calls = f"{state['calls_today']} call(s) today" + (f" of {limit} allowed" if limit else "")
    if state["paused"]:
        until = (
            "an operator resumes them"
            if state["code"] == "operator"
            else state["resume_at"] or f"a probe at {state['next_probe_at']} succeeds"
        )
        console.print(f"Attestr: [bold red]paused[/] since {state['paused_at']}: {state['reason']}")
        console.print(f"  until {until}, or `contact-sync attestr resume`; {calls}")
    else:
        console.print(f"Attestr: [green]calling[/]; {calls}")


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
            _print_json(state)
        else:
            _print_attestr(_console(), state)
        return 0

    return _with_pool(settings, work)


def _jobs(settings: Settings, args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        if args.action == "list":
            return await _jobs_list(pool, args)
        if args.action == "show":
            job = await jobs.get(pool, args.id)
            if job is None:
                print(f"No job {args.id}: `contact-sync jobs list` shows the latest ones", file=sys.stderr)
                return 1
            _print_json(job.document())
            return 0
        ids = [int(r["id"]) for r in await pool.fetch(queries.JOBS_FAILED_IDS)] if args.failed else [args.id]
        if not ids:
            print("No failed jobs")
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

    return _with_pool(settings, work)


async def _jobs_list(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    found = await jobs.list_jobs(pool, args.status, args.limit)
    if args.json:
        _print_json([job.document() for job in found])
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
    console = _console()
    # Ids, states, CINs and times are never cut; the company and the reason share what is left
    # of the width (the company at least a third), cut with an ellipsis. Columns two spaces apart.
    needed = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    left = max(console.width - sum(needed[:4]) - 2 * (len(headers) - 1), 24)
    company = min(needed[4], max(left // 3, left - needed[5]))
    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    for header, width in zip(headers, [*needed[:4], company, left - company], strict=True):
        table.add_column(header, no_wrap=True, overflow="ellipsis", max_width=width)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print("`contact-sync jobs show ID` shows the whole of a job.")
    return 0


def _doctor(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_doctor_run(settings, args))


async def _doctor_run(settings: Settings, args: argparse.Namespace) -> int:
    # One client for the checks and the write check, sharing the base's rate limit with the
    # running service through the database when it can be reached (else pacing itself).
    pool = await _pool_if_migrated(settings)
    try:
        return await _doctor_checks(settings, args, Airtable(settings, pool))
    finally:
        if pool is not None:
            await pool.close()


async def _pool_if_migrated(settings: Settings) -> asyncpg.Pool | None:
    try:
        pool = await asyncio.wait_for(create_pool(_database_url(settings), min_size=1, max_size=2), 10)
    except (*DATABASE_ERRORS, ValueError, OSError, asyncio.TimeoutError, CommandError):
        return None
    async with pool.acquire() as conn:
        if not await pending_migrations(conn):
            return pool
    await pool.close()
    return None


async def _doctor_checks(settings: Settings, args: argparse.Namespace, airtable: Airtable) -> int:
    checks = await doctor.run(settings, fix=args.fix, airtable=airtable)
    console = _console()
    marks = {doctor.OK: "[green]✓[/]", doctor.WARN: "[yellow]![/]", doctor.FAIL: "[red]✗[/]"}
    for check in checks:
        console.print(f"{marks[check.status]} {check.name}: {check.detail}", highlight=False)
        if check.fix and check.status != doctor.OK:
            console.print(f"    → {check.fix}", highlight=False)
    failed = sum(1 for c in checks if c.status == doctor.FAIL)
    if args.write_check:
        failed += await _write_check(airtable, console)
    console.print(f"\n{failed} problem(s)" if failed else "\nEverything the service needs is in place.")
    return 1 if failed else 0


async def _write_check(airtable: Airtable, console: Console) -> int:
    """`doctor --write-check`: the pusher's writes tried on the base; the number of failed steps."""
    if airtable.missing:
        console.print(f"\nThe write check needs Airtable: set {' and '.join(airtable.missing)}.")
        return 1
    console.print(f"\nWrite check. {write_check.WARNING}", highlight=False)
    marks = {True: "[green]✓[/]", False: "[red]✗[/]", None: "[yellow]-[/]"}
    steps = await write_check.run(
        airtable, lambda step: console.print(f"{marks[step.ok]} {step.name}: {step.detail}", highlight=False)
    )
    return sum(1 for step in steps if step.ok is False)


def _configured_airtable(settings: Settings, pool: asyncpg.Pool) -> Airtable | None:
    """The Airtable client, or None (having said what is missing) when it is not configured."""
    airtable = Airtable(settings, pool)
    try:
        airtable.require_configured()
    except AirtableNotConfigured as exc:
        print(exc.message, file=sys.stderr)
        return None
    return airtable


def _contacts(settings: Settings, args: argparse.Namespace) -> int:
    try:
        keys = forget.keys_of(din=args.din, pan=args.pan, phone=args.phone, email=args.email)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not keys:
        print(f"Say whom to {args.action}: --din, --pan, --phone or --email", file=sys.stderr)
        return 2
    typed = " ".join(f"--{kind} {value}" for kind, value in keys.items())
    if args.action == "unsuppress":
        return _with_pool(settings, lambda pool: _unsuppress(pool, keys, typed))
    if not args.yes and not sys.stdin.isatty():
        print("Forgetting cannot be undone for the rows it deletes: add --yes to confirm", file=sys.stderr)
        return 2

    async def work(pool: asyncpg.Pool) -> int:
        airtable = _configured_airtable(settings, pool)
        if airtable is None:
            return 2
        people = await forget.carrying(pool, keys)
        if len(people) > 1 and not args.all:
            print(
                f"{len(people)} people carry {typed} (a shared phone or email?): forget one by --din "
                "or --pan, or all of them with --all",
                file=sys.stderr,
            )
            return 1
        if people:
            question = (
                f"Forget {_people(people)}: delete from PostgreSQL and Airtable, and suppress their "
                "keys so that no later sync brings them back?"
            )
        else:
            question = (
                f"No one known carries {typed}. Suppress it anyway, so that no later sync brings in a "
                "person carrying it?"
            )
        if not args.yes and not _confirmed(question):
            print("Nothing was forgotten.")
            return 1
        try:
            done = await forget.forget(pool, airtable, keys, every=args.all)
        except forget.AmbiguousPerson as exc:
            print(str(exc), file=sys.stderr)
            return 1
        except AirtableError as exc:
            print(
                f"{exc.message}. The person is suppressed and hidden from the pusher; their Airtable "
                "row is still there: run the command again.",
                file=sys.stderr,
            )
            return 1
        said = (
            f"Forgot {done.people} person(s): {done.airtable_rows} Airtable row(s) deleted"
            if done.people
            else "No one was known by these keys; nothing deleted"
        )
        print(
            f"{said}; suppressed: {', '.join(done.suppressed)} (no later sync brings them in; "
            f"`contact-sync contacts unsuppress {typed}` lifts that)"
        )
        return 0

    return _with_pool(settings, work)


def _people(people: Sequence[asyncpg.Record]) -> str:
    """`2 people: Ananya Rao (DIN 07123456, in Airtable), Nisha Kapoor (known by PAN)`."""
    described = [
        f"{p['name'] or 'a person without a name'} ("
        + (f"DIN {p['din']}" if p["din"] else "known by PAN" if p["pan"] else "no DIN or PAN")
        + (", in Airtable" if p["in_airtable"] else "")
        + ")"
        for p in people
    ]
    return f"{len(people)} {'person' if len(people) == 1 else 'people'}: {', '.join(described)}"


def _confirmed(question: str) -> bool:
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


async def _unsuppress(pool: asyncpg.Pool, keys: dict[str, str], typed: str) -> int:
    lifted = await forget.lift(pool, keys)
    if not lifted:
        print(f"Nothing is suppressed for {typed}")
        return 1
    print(
        f"Lifted {len(lifted)} suppression(s) ({', '.join(lifted)}): the next sync of a company naming "
        "this person brings them back into PostgreSQL and Airtable"
    )
    return 0


def _count(text: str) -> int:
    number = validation.whole_number(text)
    if number is None or number < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, not {text[:40]!r}")
    return number


def _job_id(text: str) -> int:
    job_id = validation.whole_number(text)
    if job_id is None:
        raise argparse.ArgumentTypeError(f"a job id is a whole number like 42, not {text[:40]!r}")
    return job_id


_LISTED = 50  # companies named one per line before the rest are only counted


def _backfill(settings: Settings, args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        airtable = _configured_airtable(settings, pool)
        if airtable is None:
            return 2
        console = _console()
        if args.recheck_identities:
            found = await backfill.plan_recheck(pool, settings)
            console.print(
                f"{found.with_cin} companies synced before PANs were read; {len(found.to_sync)} may have "
                "had two people merged through a shared phone or email"
            )
            for record_id, cin in found.to_sync[:_LISTED]:
                console.print(f"  {record_id}  {cin}", highlight=False)
            if len(found.to_sync) > _LISTED:
                console.print(f"  … and {len(found.to_sync) - _LISTED} more")
        else:
            found = await _backfill_plan(pool, airtable, settings, args, console)
            if found is None:
                return 1
        console.print(
            f"{len(found.to_sync)} to sync, costing about [bold]{found.attestr_calls}[/] Attestr "
            "call(s) (CINs answered recently are not paid for again)"
        )
        if args.dry_run or not found.to_sync:
            return 0
        with Progress(console=console) as progress:
            task = progress.add_task("Queueing", total=len(found.to_sync))
            new = await backfill.enqueue(pool, found, on_queued=lambda: progress.advance(task))
        console.print(
            f"Queued {new} job(s) ({len(found.to_sync) - new} were queued already). "
            "Follow them with `contact-sync status`."
        )
        return 0

    return _with_pool(settings, work)


_SKIPPED = {
    "invalid_cin": "the CIN field holds no valid CIN or LLPIN",
    "in_progress": "a job for that CIN is queued or running",
    "synced": "already synced under that CIN",
    "failed": "its job for that CIN failed (replay it with `contact-sync jobs retry ID`)",
    "tick_answered": "Refresh Contacts ticked before its latest job began",
}


def _reconcile(settings: Settings, args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        airtable = _configured_airtable(settings, pool)
        if airtable is None:
            return 2
        console = _console()
        try:
            with console.status("Reading the Companies table…"):
                found = await reconcile.sweep(pool, airtable, settings, dry_run=args.dry_run)
        except AirtableError as exc:
            print(f"The Companies table could not be read: {exc.message}", file=sys.stderr)
            return 1
        if found is None:
            print("Another process is sweeping right now: try again in a minute", file=sys.stderr)
            return 1
        if found.since is None:
            console.print(
                "Reconciliation has not run yet: its first sweep (the service's, or this command "
                "without --dry-run) sets the baseline. CINs set before it are backfill's: "
                "`contact-sync backfill --dry-run`."
            )
            return 0
        console.print(
            f"{found.seen} companies with a CIN set or changed, or Refresh Contacts ticked, since "
            f"{found.since:%Y-%m-%d %H:%M:%S} UTC (baseline {found.baseline_at:%Y-%m-%d %H:%M} UTC)"
        )
        for reason, count in sorted(found.skipped.items()):
            console.print(f"  {count} left alone: {_SKIPPED.get(reason, reason)}")
        verb = "to queue" if args.dry_run else f"queued ({found.queued} new job(s))"
        console.print(
            f"{len(found.to_queue)} {verb}, costing about [bold]{found.attestr_calls}[/] Attestr "
            "call(s) (CINs answered recently are not paid for again)"
        )
        for record_id, cin, forced in found.to_queue[:_LISTED]:
            console.print(f"  {record_id}  {cin}{'  (Refresh Contacts)' if forced else ''}", highlight=False)
        if len(found.to_queue) > _LISTED:
            console.print(f"  … and {len(found.to_queue) - _LISTED} more")
        return 0

    return _with_pool(settings, work)


async def _backfill_plan(
    pool: asyncpg.Pool, airtable: Airtable, settings: Settings, args: argparse.Namespace, console: Console
) -> backfill.BackfillPlan | None:
    """Backfill's plan from the Companies table, said as it is read; None when it cannot be."""
    try:
        with console.status("Reading the Companies table…") as status:
            found = await backfill.plan(
                pool,
                airtable,
                settings,
                every=args.all,
                on_page=lambda n: status.update(f"Reading the Companies table… {n} companies with a CIN"),
            )
    except AirtableError as exc:
        print(f"The Companies table could not be read: {exc.message}", file=sys.stderr)
        return None
    console.print(
        f"{found.with_cin} companies with a CIN; {found.already_synced} already have contacts"
        + (" (synced again with --all)" if args.all else "")
    )
    for record_id, raw in found.invalid:
        console.print(f"  skipped {record_id}: {raw!r} is not a valid CIN or LLPIN", highlight=False)
    return found


async def _webhook(pool: asyncpg.Pool, settings: Settings, args: argparse.Namespace) -> int:
    airtable = Airtable(settings, pool)
    verb = args.verb or "status"
    try:
        if verb == "create":
            if not args.url:
                print(
                    "Give the URL Airtable should ping: --url https://<service>/webhooks/airtable/notifications",
                    file=sys.stderr,
                )
                return 2
            created = await airtable_webhooks.create(pool, airtable, settings, args.url)
            print(
                f"Webhook {created['id']} created on the Companies table, watching "
                f"{len(created['watching'])} field(s); it expires {created['expires_at']:%Y-%m-%d %H:%M} UTC "
                "unless refreshed (the running service refreshes it a day before). Its MAC secret, which "
                "Airtable shows only once, is stored in the database."
            )
            return 0
        if verb == "status":
            hooks = await airtable_webhooks.status(pool, airtable, settings)
            _print_json(hooks) if args.json else _print_webhooks(hooks)
            return 0
        stored = [row["id"] for row in await pool.fetch(queries.WEBHOOKS_ALL)]
        targets = [args.webhook_id] if args.webhook_id else stored
        if not targets:
            print(
                "No webhook is stored: create one with `contact-sync airtable webhook create --url …`",
                file=sys.stderr,
            )
            return 1
        for webhook_id in targets:
            if verb == "refresh":
                expires = await airtable_webhooks.refresh(pool, airtable, webhook_id)
                print(f"Webhook {webhook_id} refreshed: expires {expires:%Y-%m-%d %H:%M} UTC")
            elif verb == "recreate":
                created = await PayloadReader(pool, airtable).recreate(webhook_id, "recreated by hand")
                print(
                    f"Webhook {webhook_id} replaced by {created['id']}, watching {len(created['watching'])} "
                    "field(s); the changes it still held were read first. Changes made while it was not "
                    "working were not seen: `contact-sync backfill --dry-run` finds companies with a CIN "
                    "and no contacts."
                )
            elif await airtable_webhooks.delete(pool, airtable, webhook_id):
                print(f"Webhook {webhook_id} deleted")
            else:
                print(f"No webhook {webhook_id}, here or in Airtable", file=sys.stderr)
                return 1
        return 0
    except AirtableError as exc:
        print(exc.message, file=sys.stderr)
        return 1


def _print_webhooks(hooks: list[dict[str, Any]]) -> None:
    if not hooks:
        print("No Airtable webhook. Create one with `contact-sync airtable webhook create --url …`.")
    for hook in hooks:
        if hook["stored"]:
            state = (
                "enabled" if hook["enabled"] else "disabled" if hook["in_airtable"] else "gone from Airtable"
            )
            waiting = hook["payloads_waiting"]
            print(
                f"{hook['id']}: {state}; pings {hook['notification_url']}; expires {hook['expires_at']}; "
                + (
                    "changes waiting: unknown"
                    if waiting is None
                    else f"{waiting} change payload(s) waiting to be read"
                )
            )
        else:
            print(f"{hook['id']}: pings {hook['notification_url']}")
        for problem in hook["problems"]:
            print(f"  ! {problem}")
        if hook["stored"] and not hook["problems"]:
            print("  ok")


async def _adopt(pool: asyncpg.Pool, settings: Settings, dry_run: bool) -> int:
    airtable = Airtable(settings, pool)
    try:
        report = await adopt.adopt(pool, airtable, settings, dry_run=dry_run)
    except AirtableError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    console = _console()
    verb = "would adopt" if dry_run else "adopted"
    console.print(
        f"{report.already_keyed} row(s) already have a Contact Key; {verb} {len(report.adopted)}; "
        f"{len(report.duplicates)} look duplicated; {len(report.skipped)} skipped"
    )
    for title, lines in (
        (
            "Adopted" if not dry_run else "Would adopt",
            [f"{r} → {key} ({how})" for r, key, how in report.adopted],
        ),
        (
            "Look duplicated (not changed; keep one, delete the others)",
            [f"{r} is the same person as {other} ({key})" for r, other, key in report.duplicates],
        ),
        ("Skipped", [f"{r}: {why}" for r, why in report.skipped]),
    ):
        if lines:
            console.print(f"\n{title}:")
            for line in lines[:50]:
                console.print(f"  {line}")
            if len(lines) > 50:
                console.print(f"  … and {len(lines) - 50} more")
    if dry_run:
        console.print("\nNothing was written. Run without --dry-run to adopt.")
    return 0


def _airtable(settings: Settings, args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        if args.action == "adopt":
            return await _adopt(pool, settings, args.dry_run)
        if args.action == "webhook":
            return await _webhook(pool, settings, args)
        people, companies = await backfill.resync(pool, restore_deleted=args.restore_deleted)
        minutes = (people + companies) / (settings.airtable_rate_limit_rps * 10) / 60
        print(
            f"Marked {people} contact(s) and {companies} company status(es) for Airtable; the running "
            f"service writes them (about {minutes:.1f} min at the rate limit)."
        )
        return 0

    return _with_pool(settings, work)


def _import(settings: Settings, args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        try:
            source = await asyncpg.connect(args.source or _database_url(settings), timeout=10)
        except (*DATABASE_ERRORS, ValueError) as exc:
            reason = _reason(exc)
            raise CommandError(f"The older database cannot be reached ({reason}): check --source") from exc
        try:
            report = await importer.run(pool, source, args.table)
        except LookupError as exc:
            print(exc, file=sys.stderr)
            return 1
        finally:
            await source.close()
        console = _console()
        console.print(
            f"Read {report.rows} row(s) of {args.table} (columns: "
            + ", ".join(f"{k}={v}" for k, v in report.columns.items())
            + ")"
        )
        console.print(
            f"{report.people_new} new people, {report.people_matched} matched to people already known; "
            f"{report.airtable_rows_kept} older Airtable row(s) kept as their person's row; "
            f"{len(report.skipped)} row(s) skipped"
        )
        for index, why in report.skipped[:50]:
            console.print(f"  row {index + 1}: {why}")
        console.print(
            "Run `contact-sync airtable adopt` next if the Contacts table has rows without a Contact Key."
        )
        return 0

    return _with_pool(settings, work)


def _demo(_settings: Settings, _args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, width=150)  # a log or a pipe: room for the tables
    return demo.run(console)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="contact-sync",
        description="Fetches company directors' contacts from Attestr into PostgreSQL and Airtable.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Configuration comes from the environment and .env (see .env.example).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dem = commands.add_parser(
        "demo",
        help="see the whole flow work on this machine, with no accounts",
        description="Runs the real service against an embedded PostgreSQL (in a temporary directory) "
        "and the package's Attestr and Airtable stand-ins, sends webhooks for four sample companies "
        "the way the Airtable automation does, and shows the resulting Airtable rows. Your .env and "
        "database are not used.\n\nexample:\n  contact-sync demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dem.set_defaults(run=_demo)

    serve = commands.add_parser(
        "serve",
        help="run the web service (and the worker, unless WORKER_IN_WEB=false)",
        description="Start the embedded database when DATABASE_URL is unset, apply migrations, and "
        "serve HTTP.\n\nexamples:\n  contact-sync serve\n  contact-sync serve --port 9000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--port", type=int, help="HTTP port (default: PORT, 8000)")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default: 0.0.0.0)")
    serve.set_defaults(run=_serve)

    worker = commands.add_parser(
        "worker",
        help="run the worker and the Airtable pusher without HTTP",
        description="Claim and run jobs, and write their rows to Airtable. Run it beside "
        "`serve` with WORKER_IN_WEB=false, as many as you like.\n\nexample:\n  contact-sync worker",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.set_defaults(run=_worker)

    status = commands.add_parser(
        "status",
        help="jobs by state, queue age, Attestr paused or not, rows waiting for Airtable",
        description="What the service is doing, from the database.\n\nexamples:\n  contact-sync status\n"
        "  contact-sync status --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(run=_status)

    jobs_cmd = commands.add_parser(
        "jobs",
        help="list, show and retry jobs",
        description="Jobs of every process, from the database. A retried job starts again with its "
        "attempts reset and reuses the Attestr answer it already paid for.\n\nexamples:\n"
        "  contact-sync jobs list --status failed\n  contact-sync jobs show 42\n"
        "  contact-sync jobs retry 42\n  contact-sync jobs retry --failed",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    jobs_actions = jobs_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = jobs_actions.add_parser("list", help="the latest jobs, newest first")
    listing.add_argument("--status", choices=list(jobs.STATES), help="only jobs in this state")
    listing.add_argument("--limit", type=_count, default=50, help="how many (default 50)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    jobs_actions.add_parser("show", help="one job, whole, as JSON").add_argument(
        "id", type=_job_id, help="the job's id"
    )
    retrying = jobs_actions.add_parser("retry", help="replay a failed job, or every failed one")
    which_jobs = retrying.add_mutually_exclusive_group(required=True)
    which_jobs.add_argument("id", type=_job_id, nargs="?", help="the job's id")
    which_jobs.add_argument("--failed", action="store_true", help="every failed job")
    jobs_cmd.set_defaults(run=_jobs)

    attestr = commands.add_parser(
        "attestr",
        help="whether Attestr calls are paused; pause and resume them",
        description="Attestr calls pause for every job when credits run out, credentials or access "
        "are refused, or a daily limit is reached. They resume when a probe call works, at the "
        "daily reset, or with `resume`. `pause` stops them at once (no probe either) until `resume`: "
        "jobs wait, nothing fails.\n\nexamples:\n  contact-sync attestr status\n"
        "  contact-sync attestr pause\n  contact-sync attestr resume",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    attestr_actions = attestr.add_subparsers(dest="action", required=True, metavar="ACTION")
    attestr_actions.add_parser("status", help="paused or not, and today's calls").add_argument(
        "--json", action="store_true", help="print JSON"
    )
    attestr_actions.add_parser("pause", help="stop every Attestr call now, until resumed")
    attestr_actions.add_parser("resume", help="end a pause and wake the jobs waiting for it")
    attestr.set_defaults(run=_attestr)

    contacts = commands.add_parser(
        "contacts",
        help="forget a person (removed from PostgreSQL and Airtable, never synced again), or lift that",
        description="forget: removes a person (found by DIN, PAN, phone in any spelling, or email) "
        "from PostgreSQL and their row from Airtable, and keeps hashed suppression entries so that no "
        "later sync brings them back. It says whom it found and asks first (--yes: it does not ask).\n"
        "unsuppress: lifts the suppression of a key and of the keys forgotten with it; the next "
        "sync of a company naming that person brings them back.\n\n"
        "examples:\n  contact-sync contacts forget --din 01234567\n"
        "  contact-sync contacts forget --pan ABCPK1234F\n"
        '  contact-sync contacts forget --phone "+91 98450 12345"\n'
        "  contact-sync contacts forget --email a.person@example.com --yes\n"
        "  contact-sync contacts unsuppress --email a.person@example.com",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    contacts_actions = contacts.add_subparsers(dest="action", required=True, metavar="ACTION")
    forgetting = contacts_actions.add_parser("forget", help="remove a person for good")
    lifting = contacts_actions.add_parser("unsuppress", help="let a forgotten person be synced again")
    for action in (forgetting, lifting):
        action.add_argument("--din", help="the person's DIN")
        action.add_argument("--pan", help="the person's PAN (a signatory who is not a director)")
        action.add_argument("--phone", help="the person's phone, in any spelling")
        action.add_argument("--email", help="the person's email")
    forgetting.add_argument("--all", action="store_true", help="every person carrying the phone or email")
    forgetting.add_argument("--yes", action="store_true", help="do not ask first (for scripts)")
    contacts.set_defaults(run=_contacts)

    imp = commands.add_parser(
        "import",
        help="take the people of an older PostgreSQL contacts table",
        description="Reads an older tool's contacts table (columns like din, full_name, mobile_number, "
        "email_address, company_airtable_id, addresses, airtable_id), and stores its people with the "
        "same de-duplication as a sync, keeping their older Airtable rows.\n\nexamples:\n"
        "  contact-sync import\n  contact-sync import --table legacy.contacts --source postgresql://old-db/app",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("--table", default="contacts", help="the older table (default: contacts)")
    imp.add_argument("--source", help="the older database's URL (default: the service's own database)")
    imp.set_defaults(run=_import)

    doc = commands.add_parser(
        "doctor",
        help="check the database, credentials and the Airtable base; --fix what it can",
        description="Checks: database reachable and migrated; Attestr token present; Airtable token "
        "valid and allowed to read the schema and read and write records; both tables and every "
        "configured field present with a suitable type, every select option the service writes; "
        "what the way of triggering needs (the native webhook's scope, a creator, the webhooks). "
        "--fix applies migrations, creates missing fields and adds missing options (the token then "
        "needs schema.bases:write, its user must be a creator). --write-check also writes one "
        "throw-away contact row the way the service does, writes it again, links it to a company, "
        "reads it back and deletes it (automations on the base see it).\n\nexamples:\n"
        "  contact-sync doctor\n  contact-sync doctor --fix\n  contact-sync doctor --write-check",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    doc.add_argument("--fix", action="store_true", help="apply migrations and create missing fields")
    doc.add_argument(
        "--write-check", action="store_true", help="write, link, read and delete one throw-away contact row"
    )
    doc.set_defaults(run=_doctor)

    back = commands.add_parser(
        "backfill",
        help="queue a sync for every company with a CIN and no contacts yet",
        description="Reads the Companies table, skips companies that already have contacts (unless "
        "--all), says how many Attestr calls that will cost, and queues the syncs with a progress "
        "bar. --recheck-identities instead syncs again, from PostgreSQL, the companies last synced "
        "before PANs were read whose people may have been merged through a shared phone or email "
        "(their stored answer names a signatory by PAN, or a person without DIN or PAN is linked to "
        "them), and lists them; a recent stored answer is used again, free.\n\nexamples:\n"
        "  contact-sync backfill --dry-run\n"
        "  contact-sync backfill\n  contact-sync backfill --all\n"
        "  contact-sync backfill --recheck-identities --dry-run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = back.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every company with a CIN, also those synced")
    which.add_argument(
        "--recheck-identities",
        action="store_true",
        help="the companies synced before PANs were read whose people may have been merged",
    )
    back.add_argument("--dry-run", action="store_true", help="print what it would do and the cost, then stop")
    back.set_defaults(run=_backfill)

    rec = commands.add_parser(
        "reconcile",
        help="queue the companies whose CIN no trigger brought (the service does it every 15 minutes)",
        description="Sweeps the Companies table as the running service does at start-up and every "
        "RECONCILE_INTERVAL_S: every company whose valid CIN was set or changed since the last sweep "
        "and has no job for that CIN, and every company whose Refresh Contacts was ticked with no job "
        "since, is queued as a webhook would queue it. CINs set before reconciliation was first "
        "enabled are backfill's; a failed job is left for `jobs retry`. --dry-run says what it would "
        "queue and what that costs in Attestr calls.\n\nexamples:\n"
        "  contact-sync reconcile --dry-run\n  contact-sync reconcile",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rec.add_argument("--dry-run", action="store_true", help="say what it would queue and its cost")
    rec.set_defaults(run=_reconcile)

    air = commands.add_parser(
        "airtable",
        help="Airtable: adopt an older Contacts table, resync, native webhooks",
        description="adopt: rows of the Contacts table without a Contact Key (filled by an older "
        "tool) are matched to people by DIN, phone, email, then company and name, or become people, "
        "and get their Contact Key, so the first sync duplicates nothing; rows that are one person "
        "are reported. Run it with --dry-run first.\n"
        "webhook create|status|refresh|recreate|delete: Airtable's native webhook on the Companies "
        "table, an alternative to the automation script (the token needs webhook:manage and "
        "data.records:read, and its user must be a creator on the base). Airtable keeps at most 10 "
        "webhooks a base and never changes one: `recreate` replaces one that is outdated or that "
        "Airtable disabled (the running service does that by itself for a disabled one).\n"
        "resync: mark every contact and company status to be written to Airtable again (after a "
        "field was renamed, say); --restore-deleted also re-creates rows people deleted by hand."
        "\n\nexamples:\n  contact-sync airtable adopt --dry-run\n  contact-sync airtable adopt\n"
        "  contact-sync airtable resync\n  contact-sync airtable resync --restore-deleted\n"
        "  contact-sync airtable webhook create --url https://sync.example.com/webhooks/airtable/notifications\n"
        "  contact-sync airtable webhook status\n  contact-sync airtable webhook recreate",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    air.add_argument("action", choices=["adopt", "resync", "webhook"])
    air.add_argument(
        "verb",
        nargs="?",
        choices=["create", "status", "refresh", "recreate", "delete"],
        help="webhook: what to do",
    )
    air.add_argument(
        "webhook_id", nargs="?", help="webhook refresh/recreate/delete: which (default: every stored one)"
    )
    air.add_argument("--url", help="webhook create: the service's /webhooks/airtable/notifications URL")
    air.add_argument("--json", action="store_true", help="webhook status: print JSON")
    air.add_argument("--dry-run", action="store_true", help="adopt: report what it would do, write nothing")
    air.add_argument("--restore-deleted", action="store_true", help="resync: bring back rows deleted by hand")
    air.set_defaults(run=_airtable)

    mig = commands.add_parser(
        "migrate",
        help="apply database migrations and exit",
        description="Apply every migration of migrations/ not yet applied, under an advisory lock."
        "\n\nexample:\n  contact-sync migrate",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mig.set_defaults(run=_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """`contact-sync …`: exits 0 when the command did its work; 2 when it was used wrongly (a bad
    setting, argument or option), 1 when it could not do its work, each said in one sentence on
    stderr; 130 when interrupted; 70, with a traceback, only for a bug."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(
            "contact-sync: settings it cannot use (from the environment or .env): "
            f"{'; '.join(exc.problems)}. See .env.example.",
            file=sys.stderr,
        )
        sys.exit(2)
    secrets = (
        *settings.webhook_secrets,
        *settings.api_keys,
        *(value for values in settings.short_secrets.values() for value in values),
        settings.attestr_api_key,
        settings.airtable_api_key,
    )
    if args.command in ("serve", "worker"):
        configure_logging(settings.log_format, settings.log_level, cache=True, secrets=secrets)
    elif args.command == "demo":  # the demo narrates; the service's own lines only when something is wrong
        configure_logging("console", "error", secrets=secrets)
    else:  # an operator at a terminal: their command's output, and only warnings besides
        configure_logging("console", "warning", secrets=secrets)
    sys.exit(_run(args, settings))


_DATABASE_LOST = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, ConnectionError)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    """The command's exit status; what went wrong said once."""
    name = f"contact-sync {args.command}"
    try:
        return args.run(settings, args)
    except CommandError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return exc.code
    except _DATABASE_LOST as exc:
        print(
            f"{name}: the database stopped answering ({_reason(exc)}); what was done before is kept: "
            "run the command again once the database is back",
            file=sys.stderr,
        )
        return 1
    except AirtableError as exc:
        print(f"{name}: Airtable refused: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(
            f"{name} stopped on a bug in contact-sync, not on anything you did. Please report it with "
            "the lines above, as the README's 'Reporting a problem' says.",
            file=sys.stderr,
        )
        return 70
