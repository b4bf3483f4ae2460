"""The `contact-sync` command line (also `python -m service`): the parser, and each problem
said once."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from service.config import Settings, SettingsError, load_settings

# Every command: the module that runs it (in service/commands/) and its summary. A module is
# imported only for its own command, so that `--help` and the quick commands (`status`, `jobs`)
# load none of what the others need (pyairtable alone takes a second).
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("process", "see the whole flow work on this machine, with no accounts"),
    "serve": ("process", "run the web service (and the worker, unless WORKER_IN_WEB=false)"),
    "worker": ("process", "run the worker and the Airtable pusher without HTTP"),
    "migrate": ("process", "apply database migrations and exit"),
    "psql": ("process", "psql on the database the service uses (the embedded one too)"),
    "status": ("status", "jobs by state, queue age, Attestr paused or not, rows waiting for Airtable"),
    "jobs": ("status", "list, show and retry jobs"),
    "attestr": ("status", "whether Attestr calls are paused; pause and resume them"),
    "doctor": ("doctor", "check the database, credentials and the Airtable base; --fix what it can"),
    "contacts": (
        "contacts",
        "forget a person (removed from PostgreSQL and Airtable, never synced again), or lift that",
    ),
    "import": ("contacts", "take the people of an older PostgreSQL contacts table"),
    "backfill": ("airtable_base", "queue a sync for every company with a CIN and no contacts yet"),
    "reconcile": (
        "airtable_base",
        "queue the companies whose CIN no trigger brought (the service does it every 15 minutes)",
    ),
    "airtable": ("airtable_base", "Airtable: adopt an older Contacts table, resync, native webhooks"),
    "alerts": ("alerts", "send a test alert to every configured chat and mailbox"),
}


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser, with the arguments of the command `argv` names (the others only by name)."""
    parser = argparse.ArgumentParser(
        prog="contact-sync",
        description="Fetches company directors' contacts from Attestr into PostgreSQL and Airtable.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Configuration comes from the environment and .env (see .env.example).",
    )
    parser.add_argument("--version", action="version", version=f"contact-sync {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # The top-level parser takes no option but --help and --version: the first other word is the
    # command.
    chosen = next((word for word in argv if not word.startswith("-")), None)
    for name, (module, summary) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == chosen:
            importlib.import_module(f"service.commands.{module}").arguments(name, sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("contact-sync")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> None:
    """`contact-sync …`: exits 0 when the command did its work; 2 when it was used wrongly (a bad
    setting, argument or option), 1 when it could not do its work, each said in one sentence on
    stderr; 130 when interrupted; 70, with a traceback, only for a bug."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser(argv)
    if not argv:  # what there is to run, rather than only that a command is missing
        parser.print_help(sys.stderr)
        sys.exit(2)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(
            "contact-sync: settings it cannot use (from the environment or .env): "
            f"{'; '.join(exc.problems)}. See .env.example.",
            file=sys.stderr,
        )
        sys.exit(2)
    from service.logs import configure_logging  # structlog: not for `--help`

    if args.command in ("serve", "worker"):
        configure_logging(settings.log_format, settings.log_level, cache=True, secrets=settings.secrets)
    elif args.command == "demo":  # the demo narrates; the service's own lines only when something is wrong
        configure_logging("console", "error", secrets=settings.secrets)
    else:  # an operator at a terminal: their command's output, and only warnings besides
        configure_logging("console", "warning", secrets=settings.secrets)
    sys.exit(_run(args, settings))


def _run(args: argparse.Namespace, settings: Settings) -> int:
    """The command's exit status; what went wrong said once."""
    # Imported here, not above: `--help` needs none of them.
    import asyncpg

    from service.airtable.errors import AirtableError
    from service.commands.context import CommandError, reason_of
    from service.identifiers import inert

    database_lost = (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        ConnectionError,
        TimeoutError,  # a statement past DATABASE_WAIT_S: the database stalled or locked
    )
    name = f"contact-sync {args.command}"
    try:
        return args.run(settings, args)
    except BrokenPipeError:
        # The reader went away (`| head`): not the database's doing, and nothing to say. Output
        # still buffered goes nowhere, so that the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a command stopped by SIGPIPE
    # What is said may carry Airtable's, Attestr's or the database's words: inert, on one line.
    except CommandError as exc:
        print(f"{name}: {inert(str(exc))}", file=sys.stderr)
        return exc.code
    except database_lost as exc:
        print(
            f"{name}: the database stopped answering ({inert(reason_of(exc))}); what was done before is "
            "kept: run the command again once the database is back",
            file=sys.stderr,
        )
        return 1
    except AirtableError as exc:
        print(f"{name}: Airtable refused: {inert(exc.message)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(
            f"{name} stopped on a bug in contact-sync, not on anything you did. Please report it with "
            "the lines above, as docs/how-to/report-a-problem.md says.",
            file=sys.stderr,
        )
        return 70
