"""`contacts forget|unsuppress` and `import`: people in and out."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import asyncpg
import structlog

from service.airtable.errors import AirtableError
from service.commands import forget
from service.commands.context import (
    CommandError,
    configured_airtable,
    new_console,
    reason_of,
    resolved_database_url,
    with_pool,
)
from service.config import Settings
from service.database import DATABASE_ERRORS
from service.people import importer

log = structlog.get_logger(__name__)


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
        return with_pool(settings, lambda pool: _unsuppress(pool, keys, typed))

    async def work(pool: asyncpg.Pool) -> int:
        airtable = configured_airtable(settings, pool)
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
        if not args.yes and not sys.stdin.isatty():  # no one to ask
            if not people:
                print(f"No one known carries {typed}; nothing was forgotten (--yes suppresses it anyway)")
                return 1
            print(
                f"Not at a terminal to ask whether to forget {_people(people)}: forgetting cannot be "
                "undone for the rows it deletes: add --yes to confirm",
                file=sys.stderr,
            )
            return 2
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

    return with_pool(settings, work)


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


def _import(settings: Settings, args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        try:
            source = await asyncpg.connect(args.source or resolved_database_url(settings), timeout=10)
        except (*DATABASE_ERRORS, ValueError) as exc:
            reason = reason_of(exc)
            raise CommandError(f"The older database cannot be reached ({reason}): check --source") from exc
        try:
            report = await importer.run(pool, source, args.table)
        except LookupError as exc:
            print(exc, file=sys.stderr)
            return 1
        finally:
            await source.close()
        console = new_console()
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

    return with_pool(settings, work)


def arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Fill the sub-parser of `command`, one of this module's commands (`cli.py` names them
    with their summaries)."""
    {"contacts": _contacts_arguments, "import": _import_arguments}[command](parser)


def _contacts_arguments(contacts: argparse.ArgumentParser) -> None:
    contacts.description = (
        "forget: removes a person (found by DIN, PAN, phone in any spelling, or email) "
        "from PostgreSQL and their row from Airtable, and keeps hashed suppression entries so that no "
        "later sync brings them back. It says whom it found and asks first (--yes: it does not ask).\n"
        "unsuppress: lifts the suppression of a key and of the keys forgotten with it; the next "
        "sync of a company naming that person brings them back.\n\n"
        "examples:\n  contact-sync contacts forget --din 01234567\n"
        "  contact-sync contacts forget --pan ABCPK1234F\n"
        '  contact-sync contacts forget --phone "+91 98450 12345"\n'
        "  contact-sync contacts forget --email a.person@example.com --yes\n"
        "  contact-sync contacts unsuppress --email a.person@example.com"
    )
    contacts_actions = contacts.add_subparsers(dest="action", required=True, metavar="ACTION")
    forgetting = contacts_actions.add_parser(
        "forget",
        help="remove a person for good",
        epilog="examples:\n  contact-sync contacts forget --din 01234567\n"
        "  contact-sync contacts forget --email a.person@example.com --yes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lifting = contacts_actions.add_parser(
        "unsuppress",
        help="let a forgotten person be synced again",
        epilog="example:\n  contact-sync contacts unsuppress --email a.person@example.com",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for action in (forgetting, lifting):
        action.add_argument("--din", help="the person's DIN")
        action.add_argument("--pan", help="the person's PAN (a signatory who is not a director)")
        action.add_argument("--phone", help="the person's phone, in any spelling")
        action.add_argument("--email", help="the person's email")
    forgetting.add_argument("--all", action="store_true", help="every person carrying the phone or email")
    forgetting.add_argument("--yes", action="store_true", help="do not ask first (for scripts)")
    contacts.set_defaults(run=_contacts)


def _import_arguments(imp: argparse.ArgumentParser) -> None:
    imp.description = (
        "Reads an older tool's contacts table (columns like din, full_name, mobile_number, "
        "email_address, company_airtable_id, addresses, airtable_id), and stores its people with the "
        "same de-duplication as a sync, keeping their older Airtable rows.\n\nexamples:\n"
        "  contact-sync import\n  contact-sync import --table legacy.contacts --source postgresql://old-db/app"
    )
    imp.add_argument("--table", default="contacts", help="the older table (default: contacts)")
    imp.add_argument("--source", help="the older database's URL (default: the service's own database)")
    imp.set_defaults(run=_import)
