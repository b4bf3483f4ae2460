"""The `contact-sync` command line (also `python -m service`)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

import asyncpg
import structlog
import uvicorn

from .app import create_app
from .config import Settings, load_settings
from .database import database_url
from .logs import configure_logging
from .migrations import migrate
from .runtime import Runtime

log = structlog.get_logger(__name__)


def _exit_cleanly(_signum: int, _frame: object) -> None:
    sys.exit(0)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again; exiting
    # normally at that point (instead of being killed by it) lets the embedded database stop.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    url = database_url(settings)
    port = args.port if args.port is not None else settings.port
    settings = Settings(**{**settings.__dict__, "port": port})
    uvicorn.run(
        create_app(settings, url),
        host=args.host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=30,
    )
    return 0


def _worker(settings: Settings, _args: argparse.Namespace) -> int:
    url = database_url(settings)

    async def run() -> None:
        runtime = await Runtime.open(settings, url)
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
        conn = await asyncpg.connect(database_url(settings))
        try:
            return await migrate(conn)
        finally:
            await conn.close()

    applied = asyncio.run(run())
    print(f"applied {len(applied)} migration(s){': ' + ', '.join(applied) if applied else ''}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="contact-sync",
        description="Fetches company directors' contacts from Attestr into PostgreSQL and Airtable.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Configuration comes from the environment and .env (see .env.example).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    args = _parser().parse_args(argv)
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    sys.exit(args.run(settings, args))
