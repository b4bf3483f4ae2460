"""How long an operator waits for the command line, each beside its floor timed in the same run:
`contact-sync --help` (floor: the interpreter starting and exiting), and `contact-sync status` and
`contact-sync jobs list` with the database up (floor: the interpreter, asyncpg, a connection and
one query). Medians of several runs; the targets are absolute (what a person notices)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from harness import ROOT, Row, create_database

_RUNS = 7
_FLOOR_QUERY = (
    "import asyncio, sys, asyncpg\n"
    "async def main():\n"
    "    conn = await asyncpg.connect(sys.argv[1])\n"
    "    await conn.fetchval('SELECT count(*) FROM jobs')\n"
    "    await conn.close()\n"
    "asyncio.run(main())\n"
)


def _median_s(command: list[str], env: dict[str, str]) -> float:
    times = []
    for _ in range(_RUNS):
        started = time.perf_counter()
        subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def command_latency(server: str) -> list[Row]:
    """The three rows; the database is migrated and holds a few jobs first."""
    dsn = await create_database(server, "bench_commands")
    # Python as it runs by default: `migrate` caches the service's bytecode, as a user's first
    # command does (with PYTHONDONTWRITEBYTECODE set, every command would compile it).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"DATABASE_URL": dsn}
    cli = [sys.executable, "-m", "service"]
    subprocess.run([*cli, "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
    subprocess.run([*cli, "jobs", "list"], env=env, cwd=ROOT, check=True, capture_output=True)
    interpreter = _median_s([sys.executable, "-c", "pass"], env)
    query = _median_s([sys.executable, "-c", _FLOOR_QUERY, dsn], env)
    rows = [
        Row(
            "`contact-sync --help`",
            f"median of {_RUNS} runs; floor: the interpreter starting",
            f"{(figure := _median_s([*cli, '--help'], env)) * 1000:.0f} ms",
            f"{interpreter * 1000:.0f} ms",
            figure / interpreter,
            "≤ 300 ms",
            figure <= 0.3,
        )
    ]
    for command in (["status"], ["jobs", "list"]):
        figure = _median_s([*cli, *command], env)
        rows.append(
            Row(
                f"`contact-sync {' '.join(command)}`",
                f"database up, median of {_RUNS} runs; floor: the interpreter, asyncpg, a "
                "connection and one query",
                f"{figure * 1000:.0f} ms",
                f"{query * 1000:.0f} ms",
                figure / query,
                "≤ 500 ms",
                figure <= 0.5,
            )
        )
    return rows
