"""The `contact-sync` command line (also `python -m service`): the parser, and each problem
said once."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

import asyncpg

from service.airtable.errors import AirtableError
from service.commands import airtable_base, contacts, doctor, process, status
from service.commands.context import CommandError, reason_of
from service.config import Settings, SettingsError, load_settings
from service.logs import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="contact-sync",
        description="Fetches company directors' contacts from Attestr into PostgreSQL and Airtable.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Configuration comes from the environment and .env (see .env.example).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (process, status, doctor, contacts, airtable_base):
        group.add_parsers(commands)
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
            f"{name}: the database stopped answering ({reason_of(exc)}); what was done before is kept: "
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
