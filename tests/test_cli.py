"""The operator's commands against a real database: status, jobs, attestr, and every --help."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import asyncpg
import pytest

from service import jobs
from tests.flow import enqueued

COMMANDS = [
    "demo",
    "serve",
    "worker",
    "migrate",
    "status",
    "jobs",
    "attestr",
    "doctor",
    "backfill",
    "airtable",
    "import",
    "contacts",
]


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env={**os.environ, "DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help(command: str | None) -> None:
    args = ["--help"] if command is None else [command, "--help"]
    done = subprocess.run(
        [sys.executable, "-m", "service", *args], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0
    assert "usage: contact-sync" in done.stdout
    if command is None:
        assert all(name in done.stdout for name in COMMANDS)
    else:
        assert "example" in done.stdout


async def test_status_jobs_and_attestr(db_url: str, pool: asyncpg.Pool) -> None:
    failed, _ = await enqueued(pool, "recAAAAAAAAAAAAAA", "U72200KA2015PTC081234")
    await pool.execute(
        "UPDATE jobs SET status = 'failed', last_error = 'Attestr said no' WHERE id = $1", failed.id
    )
    queued, _ = await enqueued(pool, "recBBBBBBBBBBBBBB", None)

    status = json.loads(cli(db_url, "status", "--json").stdout)
    assert status["jobs"]["failed"] == 1 and status["jobs"]["queued"] == 1
    assert status["oldest_queued_s"] is not None
    assert "Oldest queued job" in cli(db_url, "status").stdout

    listed = json.loads(cli(db_url, "jobs", "list", "--status", "failed", "--json").stdout)
    assert [j["id"] for j in listed] == [str(failed.id)]
    assert json.loads(cli(db_url, "jobs", "show", str(queued.id)).stdout)["status"] == "queued"
    assert cli(db_url, "jobs", "show", "999").returncode == 1
    superscript = cli(db_url, "jobs", "show", "²")
    assert superscript.returncode == 2 and "a job id is a whole number like 42, not '²'" in superscript.stderr
    assert "Traceback" not in superscript.stderr

    refused = cli(db_url, "jobs", "retry", str(queued.id))
    assert refused.returncode == 1 and "only failed jobs" in refused.stderr
    retried = cli(db_url, "jobs", "retry", "--failed")
    assert retried.returncode == 0 and f"job {failed.id}: queued again" in retried.stdout
    assert (await jobs.get(pool, failed.id)).status == "queued"  # type: ignore[union-attr]

    await pool.execute(
        "UPDATE attestr_state SET paused_reason = 'credits', paused_at = now(), probe_after = now()"
    )
    await pool.execute(
        "UPDATE jobs SET waiting_on = 'attestr', run_after = now() + interval '1 hour' WHERE id = $1",
        queued.id,
    )
    assert "paused" in cli(db_url, "attestr", "status").stdout
    assert json.loads(cli(db_url, "attestr", "status", "--json").stdout)["reason"] == "credits"
    resumed = cli(db_url, "attestr", "resume")
    assert "1 waiting job(s) woken" in resumed.stdout
    assert await pool.fetchval("SELECT paused_reason FROM attestr_state") is None
    assert await pool.fetchval("SELECT run_after <= now() FROM jobs WHERE id = $1", queued.id)
