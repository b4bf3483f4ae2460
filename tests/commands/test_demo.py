"""`contact-sync demo` end to end, as a newcomer runs it, and what it leaves behind: nothing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ctrl_c_as_at_a_terminal, postgres_under, processes_marked, stop_processes

pytestmark = pytest.mark.process  # starts contact-sync (or the tests) in a child process


@pytest.fixture
def marker() -> Iterator[str]:
    """A marker for the demo's environment, which its processes (and theirs) inherit: to find any
    of them still running afterwards. Those a failed test finds are stopped after it."""
    marker = uuid.uuid4().hex
    yield marker
    stop_processes(processes_marked(marker))


def demo_env(marker: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return env | {"COLUMNS": "220", "TEST_PROCESS_MARKER": marker}


def demo_folder(out: str) -> Path:
    """The temporary folder the demo says its PostgreSQL is in."""
    said = re.search(r"PostgreSQL: embedded, in (\S+) ", out)
    assert said, out
    return Path(said[1])


def assert_nothing_left(out: str, marker: str) -> None:
    """No PostgreSQL on the demo's folder, no process it started, no folder."""
    assert postgres_under(demo_folder(out)) == []
    assert processes_marked(marker) == []
    assert not demo_folder(out).exists()


@pytest.mark.parametrize("flags", [[], ["--attestr-v3"]], ids=["v2", "v3"])
def test_the_demo_shows_contacts_appearing(marker: str, flags: list[str]) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "service", "demo", *flags],
        env=demo_env(marker),
        capture_output=True,
        text=True,
        timeout=90,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Attestr (stand-in)" in out and "Airtable (stand-in)" in out
    assert ("(V3, consent CXstandinConsent01)" if flags else "(V2)") in out
    assert out.count("← 202 job") == 3
    assert "← 422 invalid_cin" in out
    assert "succeeded: 3 contacts" in out and "succeeded: 2 contacts" in out
    assert "succeeded: Attestr has no data for this CIN (No Data)" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    assert "Synced" in rows["Nilgiri Software"] and "No Data" in rows["Dormant Holdings"]
    vikram = next(line for line in out.splitlines() if "08234567" in line)
    assert "Nilgiri Software, Konkan Traders" in vikram or "Konkan Traders, Nilgiri Software" in vikram
    assert "+919845012346" in vikram and "vikram@nilgiri.example" in vikram
    contact_rows = [line for line in out.splitlines() if "Mobile" in line or "Landline" in line]
    assert len(contact_rows) == 4  # four people, although five directorships
    assert all(" ct_" in line for line in contact_rows)

    assert elapsed < 60
    assert_nothing_left(out, marker)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_demo_leaves_nothing_running(marker: str, sig: signal.Signals) -> None:
    demo = subprocess.Popen(
        [sys.executable, "-u", "-m", "service", "demo"],
        env=demo_env(marker),
        preexec_fn=ctrl_c_as_at_a_terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = ""
    try:
        assert demo.stdout is not None
        for line in demo.stdout:  # until the worker is at work
            out += line
            if line.startswith("2."):
                break
        assert postgres_under(demo_folder(out)) != []  # interrupted while its database runs
        demo.send_signal(sig)
        out += demo.communicate(timeout=60)[0]
    finally:
        demo.kill()
        demo.wait(10)
    assert demo.returncode == 130, out
    assert "Interrupted: the demo's PostgreSQL is stopped and its folder deleted." in out
    assert_nothing_left(out, marker)
