"""`serve`, `worker`, `migrate` and `demo`: the commands that run the service.

The service's own modules (the app, the engine, pyairtable under them) take most of a start-up to
load: they are imported by the command that runs them, `serve` while the embedded PostgreSQL starts.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib
import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import structlog

from service.commands.context import (
    CommandError,
    migrated,
    port_number,
    reason_of,
    resolved_database_url,
    unreachable,
)
from service.config import Settings
from service.database import DATABASE_ERRORS

if TYPE_CHECKING:
    import uvicorn

log = structlog.get_logger(__name__)


def _exit_cleanly(_signum: int, _frame: object) -> None:
    sys.exit(0)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    port = args.port if args.port is not None else settings.port
    settings = Settings(**{**settings.__dict__, "port": port})
    # The port first, then the database: `service.started` is logged only once both are had.
    listening = listening_socket(args.host, port)
    try:
        # pgserver mostly waits for PostgreSQL's processes: the modules load meanwhile.
        with ThreadPoolExecutor(1) as starting:
            database = starting.submit(resolved_database_url, settings, create=True)
            for module in ("uvicorn", "service.web.app"):
                importlib.import_module(module)
            url = database.result()
        asyncio.run(migrated(settings, url))
    except BaseException:
        listening.close()
        raise
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again; exiting
    # normally at that point (instead of being killed by it) lets the embedded database stop.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    server = http_server(settings, url)
    server.run(sockets=[listening])
    return 0 if server.started else 1


def http_server(settings: Settings, url: str) -> uvicorn.Server:
    """The service's web server (the app, with its worker unless WORKER_IN_WEB=false) for the
    migrated database at `url`; `run(sockets=[…])` serves until `should_exit` is set."""
    import uvicorn

    from service.web.app import create_app

    app = create_app(settings, url)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
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
    app.state.stopping = lambda: server.should_exit
    return server


def listening_socket(host: str, port: int) -> socket.socket:
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
        raise CommandError(
            f"Cannot listen on {host}:{port} ({reason_of(exc)}): check --host and PORT"
        ) from exc


def _worker(settings: Settings, _args: argparse.Namespace) -> int:
    from service.triggers.runtime import Runtime

    url = resolved_database_url(settings, create=True)

    async def run() -> None:
        try:
            runtime = await Runtime.open(settings, url)
        except DATABASE_ERRORS as exc:
            raise unreachable(settings, exc) from exc
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
    applied = asyncio.run(migrated(settings, resolved_database_url(settings, create=True)))
    print(f"applied {len(applied)} migration(s){': ' + ', '.join(applied) if applied else ''}")
    return 0


def _psql(settings: Settings, args: argparse.Namespace) -> int:
    url = resolved_database_url(settings)
    # pgserver's own psql: there on every machine the embedded database runs on.
    from pgserver._commands import POSTGRES_BIN_PATH

    command = ["-c", args.sql] if args.sql else []
    return subprocess.run([str(POSTGRES_BIN_PATH / "psql"), url, *command]).returncode


def _demo(_settings: Settings, args: argparse.Namespace) -> int:
    from rich.console import Console

    from service.commands import demo

    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, width=150)  # a log or a pipe: room for the tables
    return demo.run(console, attestr_v3=args.attestr_v3)


def arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Fill the sub-parser of `command`, one of this module's commands (`cli.py` names them
    with their summaries)."""
    {
        "demo": _demo_arguments,
        "serve": _serve_arguments,
        "worker": _worker_arguments,
        "migrate": _migrate_arguments,
        "psql": _psql_arguments,
    }[command](parser)


def _psql_arguments(psql: argparse.ArgumentParser) -> None:
    psql.description = (
        "Open psql on the database the service uses: DATABASE_URL, or the embedded one in "
        "DATA_DIR (never a new one).\n\nexamples:\n"
        "  contact-sync psql\n"
        "  contact-sync psql -c 'SELECT status, count(*) FROM jobs GROUP BY status'"
    )
    psql.add_argument("-c", "--command", dest="sql", metavar="SQL", help="run this SQL and exit, as psql -c")
    psql.set_defaults(run=_psql)


def _demo_arguments(dem: argparse.ArgumentParser) -> None:
    dem.description = (
        "Runs the real service against an embedded PostgreSQL (in a temporary directory) "
        "and the package's Attestr and Airtable stand-ins, sends webhooks for four sample companies "
        "the way the Airtable automation does, and shows the resulting Airtable rows. Your .env and "
        "database are not used.\n\nexamples:\n  contact-sync demo\n  contact-sync demo --attestr-v3"
    )
    dem.add_argument(
        "--attestr-v3",
        action="store_true",
        help="call Attestr's consent-first V3, with the stand-in's reusable consent",
    )
    dem.set_defaults(run=_demo)


def _serve_arguments(serve: argparse.ArgumentParser) -> None:
    serve.description = (
        "Start the embedded database when DATABASE_URL is unset, apply migrations, and "
        "serve HTTP.\n\nexamples:\n  contact-sync serve\n  contact-sync serve --port 9000"
    )
    serve.add_argument("--port", type=port_number, help="HTTP port (default: PORT, 8000)")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default: 0.0.0.0)")
    serve.set_defaults(run=_serve)


def _worker_arguments(worker: argparse.ArgumentParser) -> None:
    worker.description = (
        "Claim and run jobs, and write their rows to Airtable. Run it beside "
        "`serve` with WORKER_IN_WEB=false, as many as you like.\n\nexample:\n  contact-sync worker"
    )
    worker.set_defaults(run=_worker)


def _migrate_arguments(mig: argparse.ArgumentParser) -> None:
    mig.description = (
        "Apply every migration of migrations/ not yet applied, under an advisory lock."
        "\n\nexample:\n  contact-sync migrate"
    )
    mig.set_defaults(run=_migrate)
