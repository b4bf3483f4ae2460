"""Start-up: `contact-sync serve` on an existing embedded data directory until /ready answers 200
(floor: pgserver starting the same PostgreSQL alone; target: at most twice the floor)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from harness import Row, free_port


def startup(tmp: Path) -> Row:
    """`contact-sync serve` until /ready on a data directory made by a first run, best of two;
    floor: pgserver starting that PostgreSQL alone."""
    data = tmp / "startup"
    # Python as it runs by default: the first run below caches the service's bytecode, as a user's
    # first start does (a PYTHONDONTWRITEBYTECODE set here would have every start compile it).
    unset = ("DATABASE_URL", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in unset} | {"DATA_DIR": str(data)}

    def serve_once() -> float:
        port = free_port()
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                        return time.perf_counter() - started
                except httpx.TransportError:
                    pass
                time.sleep(0.01)
            raise RuntimeError("not ready")
        finally:
            process.terminate()
            process.wait(30)

    serve_once()  # creates and migrates the data directory
    figure = min(serve_once() for _ in range(2))
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pgserver; pgserver.get_server(sys.argv[1])",
            str((data / "postgres").resolve()),
        ],
        check=True,
        capture_output=True,
    )
    floor = time.perf_counter() - started
    return Row(
        "start-up to /ready",
        "`contact-sync serve` on an existing embedded data directory",
        f"{figure:.2f} s",
        f"{floor:.2f} s (pgserver starting it alone)",
        figure / floor,
        "≤ 2",
        figure / floor <= 2,
    )
