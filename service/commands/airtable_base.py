"""`backfill`, `reconcile` and `airtable adopt|resync|webhook|status|pause|resume`: work on the
whole base."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import asyncpg
import structlog
from rich.console import Console
from rich.progress import Progress

from service import queries
from service.airtable import webhooks as airtable_webhooks
from service.airtable.client import Airtable
from service.airtable.errors import AirtableError
from service.airtable.pauses import AirtablePauses
from service.commands import adopt
from service.commands.context import (
    LISTED,
    configured_airtable,
    http_url,
    new_console,
    print_json,
    shown,
    with_pool,
)
from service.config import Settings
from service.triggers import backfill, reconcile
from service.triggers.payloads import PayloadReader

log = structlog.get_logger(__name__)


def _backfill(settings: Settings, args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        airtable = configured_airtable(settings, pool)
        if airtable is None:
            return 2
        console = new_console()
        if args.recheck_identities:
            found = await backfill.plan_recheck(pool, settings)
            console.print(
                f"{found.with_cin} companies synced before PANs were read; {len(found.to_sync)} may have "
                "had two people merged through a shared phone or email"
            )
            for record_id, cin in found.to_sync[:LISTED]:
                console.print(f"  {record_id}  {cin}", highlight=False)
            if len(found.to_sync) > LISTED:
                console.print(f"  … and {len(found.to_sync) - LISTED} more")
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

    return with_pool(settings, work)


_SKIPPED = {
    "invalid_cin": "the CIN field holds no valid CIN or LLPIN",
    "in_progress": "a job for that CIN is queued or running",
    "synced": "already synced under that CIN",
    "failed": "its job for that CIN failed (replay it with `contact-sync jobs retry ID`)",
    "tick_answered": "Refresh Contacts ticked before its latest job began",
}


def _reconcile(settings: Settings, args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        airtable = configured_airtable(settings, pool)
        if airtable is None:
            return 2
        console = new_console()
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
        for record_id, cin, forced in found.to_queue[:LISTED]:
            console.print(f"  {record_id}  {cin}{'  (Refresh Contacts)' if forced else ''}", highlight=False)
        if len(found.to_queue) > LISTED:
            console.print(f"  … and {len(found.to_queue) - LISTED} more")
        return 0

    return with_pool(settings, work)


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
    airtable = configured_airtable(settings, pool)
    if airtable is None:
        return 2
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
            print_json(hooks) if args.json else _print_webhooks(hooks)
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
    airtable = configured_airtable(settings, pool)
    if airtable is None:
        return 2
    try:
        report = await adopt.adopt(pool, airtable, settings, dry_run=dry_run)
    except AirtableError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    console = new_console()
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


async def _pauses(pauses: AirtablePauses, args: argparse.Namespace) -> int:
    """`airtable status|pause|resume`."""
    if args.action == "resume":
        scopes = await pauses.resume("resumed by an operator")
        print(f"Airtable writes resumed ({', '.join(scopes) or 'none was paused'})")
        return 0
    if args.action == "pause":
        await pauses.pause_by_operator(args.reason)
        print(
            "Airtable writes paused: nothing is written to Airtable (not even a probe) until "
            "`contact-sync airtable resume`; jobs and rows wait, nothing fails. A request already "
            "under way finishes."
        )
        return 0
    state = await pauses.state()
    if args.json:
        print_json({"paused": bool(state), "pauses": state})
        return 0
    console = new_console()
    missing = [
        name
        for name in ("AIRTABLE_API_KEY", "AIRTABLE_BASE_ID")
        if not getattr(pauses.settings, name.lower())
    ]
    if not state and missing:
        console.print(f"Airtable: nothing is written until {' and '.join(missing)} are set")
    elif not state:
        console.print("Airtable: [green]writing[/]")
    for pause in state:
        what = "every write" if pause["scope"] == "base" else f"writes to the {pause['scope']} table"
        console.print(
            f"Airtable: [bold red]{what} paused[/] since {pause['paused_at']}: {shown(pause['reason'])}"
        )
        if pause["next_probe_at"]:
            console.print(
                f"  until a probe (next at {pause['next_probe_at']}) gets through, "
                "or `contact-sync airtable resume`"
            )
        else:
            console.print("  until `contact-sync airtable resume`")
    return 0


def _airtable(settings: Settings, args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        if args.action in ("status", "pause", "resume"):
            return await _pauses(AirtablePauses(pool, settings), args)
        if args.action == "adopt":
            return await _adopt(pool, settings, args.dry_run)
        if args.action == "webhook":
            return await _webhook(pool, settings, args)
        people, companies = await backfill.resync(
            pool, restore_deleted=args.restore_deleted, overwrite=args.overwrite
        )
        minutes = (people + companies) / (settings.airtable_rate_limit_rps * 10) / 60
        print(
            f"Marked {people} contact(s) and {companies} company status(es) for Airtable; the running "
            f"service writes them (about {minutes:.1f} min at the rate limit)."
        )
        return 0

    return with_pool(settings, work)


def arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Fill the sub-parser of `command`, one of this module's commands (`cli.py` names them
    with their summaries)."""
    {"backfill": _backfill_arguments, "reconcile": _reconcile_arguments, "airtable": _airtable_arguments}[
        command
    ](parser)


def _backfill_arguments(back: argparse.ArgumentParser) -> None:
    back.description = (
        "Reads the Companies table, skips companies that already have contacts (unless "
        "--all), says how many Attestr calls that will cost, and queues the syncs with a progress "
        "bar. --recheck-identities instead syncs again, from PostgreSQL, the companies last synced "
        "before PANs were read whose people may have been merged through a shared phone or email "
        "(their stored answer names a signatory by PAN, or a person without DIN or PAN is linked to "
        "them), and lists them; a recent stored answer is used again, free.\n\nexamples:\n"
        "  contact-sync backfill --dry-run\n"
        "  contact-sync backfill\n  contact-sync backfill --all\n"
        "  contact-sync backfill --recheck-identities --dry-run"
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


def _reconcile_arguments(rec: argparse.ArgumentParser) -> None:
    rec.description = (
        "Sweeps the Companies table as the running service does at start-up and every "
        "RECONCILE_INTERVAL_S: every company whose valid CIN was set or changed since the last sweep "
        "and has no job for that CIN, and every company whose Refresh Contacts was ticked with no job "
        "since, is queued as a webhook would queue it. CINs set before reconciliation was first "
        "enabled are backfill's; a failed job is left for `jobs retry`. --dry-run says what it would "
        "queue and what that costs in Attestr calls.\n\nexamples:\n"
        "  contact-sync reconcile --dry-run\n  contact-sync reconcile"
    )
    rec.add_argument("--dry-run", action="store_true", help="say what it would queue and its cost")
    rec.set_defaults(run=_reconcile)


def _airtable_arguments(air: argparse.ArgumentParser) -> None:
    air.description = (
        "Airtable's side: adopt an older Contacts table, write everything again, the native "
        "webhook, and pausing writes. `contact-sync airtable ACTION --help` says more of each."
        "\n\nexamples:\n  contact-sync airtable adopt --dry-run\n  contact-sync airtable resync\n"
        "  contact-sync airtable webhook status\n  contact-sync airtable status"
    )
    # Each action's own options; the others' read as not given.
    air.set_defaults(
        run=_airtable,
        verb=None,
        webhook_id=None,
        url=None,
        json=False,
        reason=None,
        dry_run=False,
        restore_deleted=False,
        overwrite=False,
    )
    actions = air.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return actions.add_parser(
            name, help=summary, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
        )

    adopt = action(
        "adopt",
        "give an older Contacts table's rows their Contact Key",
        "Rows of the Contacts table without a Contact Key (filled by an older tool) are matched to "
        "people by DIN, phone, email, then company and name, or become people, and get their "
        "Contact Key, so the first sync duplicates nothing; rows that are one person are reported. "
        "Run it with --dry-run first.\n\nexamples:\n  contact-sync airtable adopt --dry-run\n"
        "  contact-sync airtable adopt",
    )
    adopt.add_argument("--dry-run", action="store_true", help="report what it would do, write nothing")
    resync = action(
        "resync",
        "write every contact and company status to Airtable again",
        "Marks every contact and company status to be written to Airtable again (after a field was "
        "renamed, say); values people changed in Airtable stay, unless --overwrite.\n\nexamples:\n"
        "  contact-sync airtable resync\n  contact-sync airtable resync --restore-deleted\n"
        "  contact-sync airtable resync --overwrite",
    )
    resync.add_argument("--restore-deleted", action="store_true", help="bring back rows deleted by hand")
    resync.add_argument(
        "--overwrite",
        action="store_true",
        help="write the source's values over what people changed, and drop links made by hand",
    )
    webhook = action(
        "webhook",
        "Airtable's native webhook on the Companies table",
        "Airtable's native webhook on the Companies table, an alternative to the automation script "
        "(the token needs webhook:manage and data.records:read, and its user must be a creator on "
        "the base). Airtable keeps at most 10 webhooks a base and never changes one: `recreate` "
        "replaces one that is outdated or that Airtable disabled (the running service does that by "
        "itself for a disabled one).\n\nexamples:\n"
        "  contact-sync airtable webhook create --url https://sync.example.com/webhooks/airtable/notifications\n"
        "  contact-sync airtable webhook status\n  contact-sync airtable webhook recreate",
    )
    webhook.add_argument(
        "verb", nargs="?", choices=["create", "status", "refresh", "recreate", "delete"], help="what to do"
    )
    webhook.add_argument(
        "webhook_id", nargs="?", help="refresh/recreate/delete: which (default: every stored one)"
    )
    webhook.add_argument(
        "--url", type=http_url, help="create: the service's /webhooks/airtable/notifications URL"
    )
    webhook.add_argument("--json", action="store_true", help="status: print JSON")
    pauses = (
        "Writes to Airtable pause by themselves, for every process, on a refusal only the operator "
        "can fix (a revoked token, a table or field locked, a table moved, a field missing), and "
        "resume when a probe gets through (every AIRTABLE_PROBE_INTERVAL_S) or with `resume`; "
        "`pause` stops them at once (no probe either) until `resume`: jobs and rows wait, nothing fails."
    )
    status = action("status", "whether writes to Airtable are paused, and why", pauses)
    status.add_argument("--json", action="store_true", help="print JSON")
    pause = action(
        "pause",
        "stop every write to Airtable until resumed",
        pauses + "\n\nexample:\n  contact-sync airtable pause --reason 'base being restructured'",
    )
    pause.add_argument("--reason", help="why, shown with the pause")
    action(
        "resume", "let writes to Airtable go again", pauses + "\n\nexample:\n  contact-sync airtable resume"
    )
