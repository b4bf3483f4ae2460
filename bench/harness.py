"""What every benchmark row shares: the row itself, and the plumbing to run the service beside its
floor on this machine (fresh databases, free ports, child processes and their peak memory)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).parent.parent
SECRET = "bench-webhook-secret"


@dataclass
class Row:
    """One line of bench/README.md's table: a figure beside its floor, their ratio and the target."""

    what: str
    how: str
    figure: str
    floor: str
    ratio: float | None
    target: str
    met: bool | None
    correctness: bool = False  # not a speed target: a wrong answer here fails the run (and CI)


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def create_database(server: str, name: str) -> str:
    """A fresh, empty database `name` on the bench's PostgreSQL; its DSN."""
    admin = await asyncpg.connect(server)
    await admin.execute(f"DROP DATABASE IF EXISTS {name}")
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    return server.replace("/postgres?", f"/{name}?")


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    """Until the server answers at all (uvicorn accepts connections once its start-up is done)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            httpx.get(url + "/health", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("the server did not start")


@contextlib.contextmanager
def serving(env: dict[str, str]) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`contact-sync serve` with `env` on a free port, its output to a temporary file: its port
    and process once it answers, stopped when the body ends, however it ends."""
    port = free_port()
    command = [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=ROOT)
        try:
            wait_ready(f"http://127.0.0.1:{port}", process)
            yield port, process
        finally:
            process.terminate()
            process.wait(30)


def service_env(
    dsn: str, attestr: Any, attestr_url: str, airtable: Any, airtable_url: str, log_level: str
) -> dict[str, str]:
    """The environment of a `contact-sync serve` wired to the bench's stand-ins."""
    from service.standins.attestr import PATH

    return {
        **os.environ,
        "DATABASE_URL": dsn,
        "WEBHOOK_SECRETS": SECRET,
        "ATTESTR_API_KEY": attestr.token,
        "ATTESTR_API_URL": attestr_url + PATH,
        "AIRTABLE_API_KEY": airtable.token,
        "AIRTABLE_BASE_ID": airtable.base_id,
        "AIRTABLE_API_URL": airtable_url,
        "LOG_LEVEL": log_level,
    }


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
