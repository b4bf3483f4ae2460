"""What every command shares: the one-sentence error, the database, the console."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import asyncpg
import structlog
from rich.console import Console
from rich.markup import escape

from service.airtable import ratelimit
from service.airtable.errors import AirtableNotConfigured
from service.config import Settings
from service.database import DATABASE_ERRORS, NoDatabase, create_pool, database_url
from service.identifiers import inert
from service.migrations import migrate
from service.web import validation

if TYPE_CHECKING:
    from service.airtable.client import Airtable

log = structlog.get_logger(__name__)


# An operator command waits this long for one statement (a stalled or locked database is said,
# not waited on for ever); its longest statement takes a few seconds.
DATABASE_WAIT_S = 30.0


class CommandError(Exception):
    """A problem the person at the command line can fix, said in one sentence; `code` is the
    exit status (2: the command was used wrongly, 1: it could not do its work)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def reason_of(exc: BaseException) -> str:
    """Why a connection failed, in a few words."""
    if isinstance(exc, socket.gaierror):
        return "no such host"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "no answer in time"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    first = str(exc).strip().splitlines()
    return first[0] if first else type(exc).__name__


def database_named(settings: Settings) -> str:
    """Which database a command reads, without credentials: "embedded in /srv/cs/.data" or
    "at db.internal:5432/contacts"."""
    if settings.database_url is None:
        return f"embedded in {settings.data_dir.resolve()}"
    parts = urlsplit(settings.database_url)
    return f"at {parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"


def unreachable(settings: Settings, exc: BaseException) -> CommandError:
    return CommandError(
        f"The database {database_named(settings)} cannot be reached ({reason_of(exc)}): check "
        "DATABASE_URL, or unset it to use the embedded database"
    )


def resolved_database_url(settings: Settings, *, create: bool = False) -> str:
    """DATABASE_URL, or the embedded PostgreSQL's, started if need be; created only with
    `create` (`database_url`). CommandError (exit 2) when there is none to read."""
    try:
        return database_url(settings, create=create)
    except NoDatabase as exc:
        raise CommandError(str(exc), code=2) from exc
    except Exception as exc:  # pgserver fails in many ways (folder, port, binary): one thing to a user
        raise CommandError(
            f"The embedded PostgreSQL could not start in {settings.data_dir.resolve()} ({reason_of(exc)}): "
            "check that DATA_DIR is a folder you can write to, or set DATABASE_URL"
        ) from exc


async def migrated(settings: Settings, url: str) -> list[str]:
    """Apply the migrations not yet applied to the database at `url`; returns their names.
    CommandError when it cannot be reached."""
    try:
        conn = await asyncpg.connect(url, timeout=10)
    except (*DATABASE_ERRORS, ValueError) as exc:
        raise unreachable(settings, exc) from exc
    try:
        return await migrate(conn)
    finally:
        await conn.close()


async def open_pool(settings: Settings, url: str, **sizes: int) -> asyncpg.Pool:
    """A pool on the database at `url`, migrated; CommandError when it cannot be reached."""
    await migrated(settings, url)
    return await create_pool(url, timeout=10, command_timeout=DATABASE_WAIT_S, **sizes)


def with_pool(settings: Settings, work: Callable[[asyncpg.Pool], Awaitable[int]]) -> int:
    """Run an operator command against the database (migrated first)."""
    # Outside the event loop: Ctrl-C while the embedded PostgreSQL starts is then an interruption
    # (inside, asyncio would only cancel the command once the start had failed).
    url = resolved_database_url(settings)

    async def run() -> int:
        pool = await open_pool(settings, url, min_size=1, max_size=2)
        try:
            return await work(pool)
        finally:
            await ratelimit.reports_settled()
            await pool.close()

    return asyncio.run(run())


def shown(text: str) -> str:
    """Text from outside (Airtable's, Attestr's or the database's words, a company's name) for a
    rich console: inert (`identifiers.inert`), and its brackets printed, not read as markup."""
    return escape(inert(text))


def new_console() -> Console:
    # Whole lines, never wrapped: operators pipe this output into grep and logs. Tables fit a
    # terminal (or COLUMNS); in a pipe or a log they are drawn wide, cutting nothing.
    console = Console(soft_wrap=True, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(soft_wrap=True, highlight=False, width=250)
    return console


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def configured_airtable(settings: Settings, pool: asyncpg.Pool) -> Airtable | None:
    """The Airtable client, or None (having said what is missing) when it is not configured."""
    from service.airtable.client import Airtable  # pyairtable: only for the commands that write

    airtable = Airtable(settings, pool)
    try:
        airtable.require_configured()
    except AirtableNotConfigured as exc:
        print(exc.message, file=sys.stderr)
        return None
    return airtable


def positive_count(text: str) -> int:
    """An argument that counts something: 1 to 10,000."""
    number = validation.whole_number(text)
    if number is None or not 1 <= number <= 10_000:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to 10,000, not {text[:40]!r}")
    return number


def port_number(text: str) -> int:
    number = validation.whole_number(text)
    if number is None or not 1 <= number <= 65_535:
        raise argparse.ArgumentTypeError(f"a port is a whole number from 1 to 65535, not {text[:40]!r}")
    return number


def http_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"a URL starting with https:// (or http://), not {text[:60]!r}")
    return text


def job_id_argument(text: str) -> int:
    job_id = validation.whole_number(text)
    if job_id is None:
        raise argparse.ArgumentTypeError(f"a job id is a whole number like 42, not {text[:40]!r}")
    return job_id


LISTED = 50  # companies named one per line before the rest are only counted
