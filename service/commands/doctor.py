"""`contact-sync doctor`: the checks of `doctor_checks` and `doctor_airtable`, printed, and the
write check."""

from __future__ import annotations

import argparse
import asyncio

import asyncpg
import structlog
from rich.console import Console

from service.airtable import ratelimit, write_check
from service.airtable.client import Airtable
from service.commands import doctor_checks
from service.commands.checks import FAIL, OK, WARN
from service.commands.context import (
    CommandError,
    new_console,
    resolved_database_url,
    shown,
)
from service.config import Settings
from service.database import DATABASE_ERRORS, create_pool
from service.migrations import pending_migrations

log = structlog.get_logger(__name__)


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
            await ratelimit.reports_settled()
            await pool.close()


async def _pool_if_migrated(settings: Settings) -> asyncpg.Pool | None:
    try:
        pool = await asyncio.wait_for(
            create_pool(resolved_database_url(settings), min_size=1, max_size=2), 10
        )
    except (*DATABASE_ERRORS, ValueError, OSError, asyncio.TimeoutError, CommandError):
        return None
    async with pool.acquire() as conn:
        if not await pending_migrations(conn):
            return pool
    await pool.close()
    return None


async def _doctor_checks(settings: Settings, args: argparse.Namespace, airtable: Airtable) -> int:
    checks = await doctor_checks.run(settings, fix=args.fix, airtable=airtable)
    console = new_console()
    marks = {OK: "[green]✓[/]", WARN: "[yellow]![/]", FAIL: "[red]✗[/]"}
    for check in checks:
        console.print(f"{marks[check.status]} {check.name}: {shown(check.detail)}", highlight=False)
        if check.fix and check.status != OK:
            console.print(f"    → {shown(check.fix)}", highlight=False)
    failed = sum(1 for c in checks if c.status == FAIL)
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
        airtable,
        lambda step: console.print(f"{marks[step.ok]} {step.name}: {shown(step.detail)}", highlight=False),
    )
    return sum(1 for step in steps if step.ok is False)


def arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Fill the sub-parser of `command`, one of this module's commands (`cli.py` names them
    with their summaries)."""
    {"doctor": _doctor_arguments}[command](parser)


def _doctor_arguments(doc: argparse.ArgumentParser) -> None:
    doc.description = (
        "Checks: database reachable and migrated; Attestr token present; Airtable token "
        "valid and allowed to read the schema and read and write records; both tables and every "
        "configured field present with a suitable type, every select option the service writes; "
        "what the way of triggering needs (the native webhook's scope, a creator, the webhooks). "
        "--fix applies migrations, creates missing fields and adds missing options (the token then "
        "needs schema.bases:write, its user must be a creator). --write-check also writes one "
        "throw-away contact row the way the service does, writes it again, links it to a company, "
        "reads it back and deletes it (automations on the base see it).\n\nexamples:\n"
        "  contact-sync doctor\n  contact-sync doctor --fix\n  contact-sync doctor --write-check"
    )
    doc.add_argument("--fix", action="store_true", help="apply migrations and create missing fields")
    doc.add_argument(
        "--write-check", action="store_true", help="write, link, read and delete one throw-away contact row"
    )
    doc.set_defaults(run=_doctor)
