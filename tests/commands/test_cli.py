"""The operator's commands against a real database: status, jobs, attestr, and every --help."""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import pytest

from service.airtable.pauses import AirtablePauses
from service.attestr.gate import AttestrGate, AttestrPaused
from service.commands.cli import _run
from service.config import SettingsError, load_settings
from service.engine import jobs
from tests.command_line import contact_sync, in_child
from tests.conftest import postgres_under
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
    env = {**os.environ, "DATABASE_URL": db_url}
    return in_child(*args, env=env) if args[0] in ("serve", "worker") else contact_sync(*args, env=env)


@pytest.mark.parametrize(
    "command",
    [
        None,
        *COMMANDS,
        "jobs list",
        "jobs show",
        "jobs retry",
        "attestr status",
        "attestr pause",
        "attestr resume",
        "contacts forget",
        "contacts unsuppress",
    ],
)
def test_help(command: str | None) -> None:
    args = ["--help"] if command is None else [*command.split(), "--help"]
    done = contact_sync(*args)
    assert done.returncode == 0
    assert "usage: contact-sync" in done.stdout
    if command is None:
        assert all(name in done.stdout for name in COMMANDS)
    else:
        assert "example" in done.stdout


# Packages a quick command never needs: loading them is most of the time a command takes.
_HEAVY = ("pyairtable", "requests", "uvicorn", "httpx", "hypothesis")


def _loaded(db_url: str, *args: str) -> set[str]:
    """The top-level packages `contact-sync *args` loaded by the time it exited."""
    code = (
        "import atexit, sys\n"
        "loaded = lambda: sorted({m.split('.')[0] for m in sys.modules})\n"
        "atexit.register(lambda: print('LOADED', *loaded(), file=sys.stderr))\n"
        "from service.commands.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**os.environ, "DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stderr.splitlines() if line.startswith("LOADED "))
    return set(line.split()[1:])


@pytest.mark.process  # a fresh interpreter, or serve
def test_commands_load_only_what_they_use(db_url: str) -> None:
    """`--help` loads neither the database driver nor logging; `status` and `jobs list` not
    pyairtable (a second on its own), nor the web server or HTTP clients."""
    top = _loaded(db_url, "--help")
    assert not top & {"asyncpg", "structlog", "rich", *_HEAVY}, top
    for command in (["status", "--json"], ["jobs", "list", "--json"], ["attestr", "status", "--json"]):
        loaded = _loaded(db_url, *command)
        assert "asyncpg" in loaded  # the command did run
        assert not loaded & set(_HEAVY), (command, loaded & set(_HEAVY))


@pytest.mark.process  # a fresh interpreter, or serve
def test_serve_loads_pyairtable_after_it_answers() -> None:
    """What `serve` imports before it answers leaves pyairtable out: the pusher loads it in a
    thread once the service is up (a quarter of a second of a start-up otherwise)."""
    code = (
        "import sys\n"
        "import service.commands.process, service.web.app, service.triggers.runtime\n"
        "print('pyairtable' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


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
    assert refused.returncode == 1
    assert refused.stderr.strip() == f"Job {queued.id} is still queued: only a failed job can be retried"
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


async def test_status_gives_spend_by_day_week_and_month_with_refusals_apart(
    db_url: str, pool: asyncpg.Pool
) -> None:
    """Calls stored as Attestr answered them, at times around India's day boundary: paid calls
    (answers, and errors Attestr may bill) per window, its 4xx refusals apart, and the jobs a
    stored answer served."""
    today = "((now() AT TIME ZONE 'Asia/Kolkata')::date::timestamp AT TIME ZONE 'Asia/Kolkata')"
    calls = [  # (days before today's start in India, outcome, HTTP status)
        (-0.01, "synced", 200),  # a minute or so into today
        (-0.01, "no_data", 200),
        (-0.02, "error", 402),  # refused: no credits
        (-0.02, "error", 503),  # an error that may have been billed
        (0.01, "synced", 200),  # just before today began: yesterday
        (5.5, "synced", 200),
        (5.9, "error", 429),  # the 7th day of the week: today and the 6 before
        (6.1, "synced", 200),  # before the week began: the last 30 days only
        (20, "synced", 200),
        (40, "synced", 200),  # outside every window
    ]
    for days, outcome, status in calls:
        await pool.execute(
            f"INSERT INTO attestr_answers (cin, outcome, http_status, called_at)"
            f" VALUES ('U72200KA2015PTC081234', $1, $2, {today} - $3 * interval '1 day')",
            outcome,
            status,
            days,
        )
    for n, days in enumerate((-0.01, 3.0, 45.0)):  # jobs a stored answer served
        job, _ = await enqueued(pool, f"recSTORED{n:08d}", "U72200KA2015PTC081234")
        await pool.execute(
            f"UPDATE jobs SET status = 'succeeded', result = '{{\"attestr_called\": false}}',"
            f" updated_at = {today} - $2 * interval '1 day' WHERE id = $1",
            job.id,
            days,
        )
    spend = json.loads(cli(db_url, "status", "--json").stdout)["attestr"]["spend"]
    assert spend == {
        "today": {"paid": 3, "refused": 1, "from_stored": 1},
        "last_7_days": {"paid": 5, "refused": 2, "from_stored": 2},
        "last_30_days": {"paid": 7, "refused": 2, "from_stored": 2},
    }
    shown = cli(db_url, "status").stdout
    assert "paid calls: today 3 (1 refused, not counted; 1 served from stored answers); 7 days 5" in " ".join(
        shown.split()
    )


async def test_outside_words_reach_the_terminal_inert(db_url: str, pool: asyncpg.Pool) -> None:
    """A reason carrying Airtable's or Attestr's words, a company name from a filing: escape
    sequences, line breaks and rich markup in them are printed as nothing, a space and brackets."""
    job, _ = await enqueued(pool, "recCCCCCCCCCCCCCC", "U72200KA2015PTC081234")
    await pool.execute(
        "UPDATE companies SET name = $2 WHERE airtable_id = $1", job.record_id, "ACME\x1b[2J [red]LTD[/red]"
    )
    await pool.execute(
        "UPDATE jobs SET status = 'failed', last_error = $2 WHERE id = $1",
        job.id,
        "Airtable answered 422: bad\r\n1   succeeded  forged line\x1b]0;title\x07 \u202eevil",
    )
    done = contact_sync("jobs", "list", env={**os.environ, "DATABASE_URL": db_url, "COLUMNS": "250"})
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout and "\u202e" not in done.stdout
    (row,) = [line for line in done.stdout.splitlines() if line.startswith(f"{job.id} ")]
    assert "[red]LTD[/red]" in row and "bad  1   succeeded  forged line" in row
    assert not any(line.startswith("1   succeeded") for line in done.stdout.splitlines())


async def test_jobs_list_fits_the_width_and_names_the_company(db_url: str, pool: asyncpg.Pool) -> None:
    await pool.execute("SELECT setval(pg_get_serial_sequence('jobs', 'id'), 999999)")  # long ids
    named, _ = await enqueued(pool, "recCCCCCCCCCCCCCC", "U72200KA2015PTC081234")
    await pool.execute(
        "UPDATE companies SET name = 'NILGIRI SOFTWARE PRIVATE LIMITED' WHERE airtable_id = $1",
        named.record_id,
    )
    await pool.execute(
        "UPDATE jobs SET status = 'succeeded', last_error = $2 WHERE id = $1",
        named.id,
        "Attestr refused the CIN: " + "a long reason " * 20,
    )
    unnamed, _ = await enqueued(pool, "recDDDDDDDDDDDDDD", "L17110MH1973PLC019786")
    for width in (80, 100, 200):
        done = contact_sync("jobs", "list", env={**os.environ, "DATABASE_URL": db_url, "COLUMNS": str(width)})
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert all(len(line) <= width for line in lines), (width, done.stdout)
        (row,) = [line for line in lines if line.startswith(f"{named.id} ")]
        # Never cut: the id, the state, the CIN, the time; the company by its name.
        assert "succeeded" in row and "U72200KA2015PTC081234" in row
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", row)
        assert "NILGIRI" in row and named.record_id not in row
        (other,) = [line for line in lines if line.startswith(f"{unnamed.id} ")]
        assert "L17110MH1973PLC019786" in other and "queued" in other
    assert named.record_id in cli(db_url, "jobs", "show", str(named.id)).stdout


@pytest.mark.parametrize(
    "args",
    [
        ("jobs", "show"),
        ("jobs", "list", "7"),
        ("jobs", "retry"),
        ("jobs", "retry", "5", "--failed"),
        ("jobs", "list", "--limit", "0"),
        ("attestr",),
        ("attestr", "stop"),
        ("contacts", "forget", "--dni", "1"),
    ],
)
def test_a_command_used_wrongly_says_how_and_exits_2(db_url: str, args: tuple[str, ...]) -> None:
    done = cli(db_url, *args)
    assert done.returncode == 2 and "error:" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


async def test_attestr_pause_stops_every_call_probes_included(db_url: str, pool: asyncpg.Pool) -> None:
    paused = cli(db_url, "attestr", "pause")
    assert paused.returncode == 0 and "no job calls Attestr (not even a probe)" in paused.stdout
    settings = load_settings({"ATTESTR_PROBE_INTERVAL_S": "0.001"}, env_file=None)
    gate = AttestrGate(pool, settings)
    for _ in range(3):  # however long it has been, no call is let through as a probe
        with pytest.raises(AttestrPaused) as waiting:
            await gate.take_call()
        assert "paused by an operator" in waiting.value.reason
    # A refusal from a call already under way does not turn it into a pause a probe can end.
    await gate.pause("credits exhausted", "credits_exhausted")
    state = json.loads(cli(db_url, "attestr", "status", "--json").stdout)
    assert (state["paused"], state["code"]) == (True, "operator")
    assert "until an operator resumes them" in cli(db_url, "attestr", "status").stdout
    assert cli(db_url, "attestr", "resume").returncode == 0
    assert await gate.take_call() is False  # calling again, not as a probe


async def test_airtable_status_pause_and_resume(db_url: str, pool: asyncpg.Pool) -> None:
    assert "nothing is written until AIRTABLE_API_KEY" in cli(db_url, "airtable", "status").stdout
    paused = cli(db_url, "airtable", "pause", "--reason", "the base is being restructured")
    assert paused.returncode == 0 and "(not even a probe)" in paused.stdout
    pauses = AirtablePauses(pool, load_settings({"AIRTABLE_PROBE_INTERVAL_S": "0.001"}, env_file=None))
    for _ in range(3):  # however long it has been, nothing is let through as a probe
        assert (await pauses.admit("contacts")).waits
    # A table refused meanwhile is paused beside it; the operator's pause still holds everything.
    await pauses.pause("contacts", "locked", "INVALID_PERMISSIONS", datetime.now(timezone.utc))
    assert (await pauses.admit("contacts")).scope == "base"
    state = json.loads(cli(db_url, "airtable", "status", "--json").stdout)
    assert state["paused"] and [p["kind"] for p in state["pauses"]] == ["operator", "INVALID_PERMISSIONS"]
    said = cli(db_url, "airtable", "status").stdout
    assert (
        "every write paused" in said
        and "restructured" in said
        and "until `contact-sync airtable resume`" in said
    )
    assert "Airtable writes" in cli(db_url, "doctor").stdout  # doctor names it too
    resumed = cli(db_url, "airtable", "resume")
    assert resumed.returncode == 0 and "base" in resumed.stdout
    assert not (await pauses.admit("contacts")).waits
    assert json.loads(cli(db_url, "airtable", "status", "--json").stdout) == {"paused": False, "pauses": []}


@pytest.mark.parametrize(
    ("variable", "value", "accepts"),
    [
        ("PORT", "abc", "PORT='abc': a whole number from 1 to 65,535"),
        ("PORT", "70000", "PORT='70000': a whole number from 1 to 65,535"),
        ("WORKER_IN_WEB", "maybe", "WORKER_IN_WEB='maybe': yes, no, true, false, 1 or 0"),
        ("JOB_LEASE_S", "nan", "JOB_LEASE_S='nan': a number above 0"),
        ("RECONCILE_INTERVAL_S", "-1", "RECONCILE_INTERVAL_S='-1': a number from 0 to 604800"),
        ("JOB_LEASE_S", "1e20", "JOB_LEASE_S='1e20': a number above 0 and at most 3600"),
        ("QUEUE_MAX_JOBS", "99999999999999999999", "a whole number from 1 to 100,000,000"),
        ("AIRTABLE_API_KEY", "pat€uro", "AIRTABLE_API_KEY (value not shown): letters, digits and"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT='xml': one of json, console"),
        ("ATTESTR_API_URL", "api.attestr.com", "ATTESTR_API_URL='api.attestr.com': a URL starting with"),
        ("AIRTABLE_BASE_ID", "Contacts", "AIRTABLE_BASE_ID='Contacts': a base id, 17 characters"),
        ("DATABASE_URL", "mysql://root:hunter2@db/x", "DATABASE_URL (value not shown): a URL starting with"),
    ],
)
@pytest.mark.parametrize("command", ["status", "serve", "worker", "doctor"])
@pytest.mark.process  # serve and worker only ever run as children
def test_a_setting_it_cannot_use_is_named_in_one_line(
    tmp_path: Path, command: str, variable: str, value: str, accepts: str
) -> None:
    env = {**os.environ, variable: value, "DATA_DIR": str(tmp_path)}
    run = in_child if command in ("serve", "worker") else contact_sync
    done = run(command, env=env, cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert accepts in line and line.startswith("contact-sync: settings it cannot use")
    assert "hunter2" not in line


@pytest.mark.parametrize("action", ["adopt", "resync", "webhook", "status", "pause", "resume"])
def test_each_airtable_action_has_its_own_help(action: str) -> None:
    done = contact_sync("airtable", action, "--help")
    assert done.returncode == 0 and done.stdout.startswith(f"usage: contact-sync airtable {action} ")


def test_version_names_the_installed_release() -> None:
    from importlib.metadata import version

    done = contact_sync("--version")
    assert (done.returncode, done.stdout) == (0, f"contact-sync {version('contact-sync')}\n")


def test_booleans_read_as_people_write_them() -> None:
    for value, meant in (("yes", True), ("No", False), ("TRUE", True), ("0", False), (" 1 ", True)):
        assert load_settings({"WORKER_IN_WEB": value}, env_file=None).worker_in_web is meant
    with pytest.raises(SettingsError) as refused:
        load_settings({"PORT": "abc", "WORKER_IN_WEB": "maybe", "API_RATE_LIMIT": "0"}, env_file=None)
    assert [p.split("=")[0] for p in refused.value.problems] == ["PORT", "WORKER_IN_WEB", "API_RATE_LIMIT"]


UNREACHABLE = "postgresql://someone:hunter2@127.0.0.1:9/contact_sync"


# Commands an operator runs against the service's database.
OPERATOR_COMMANDS = [
    ("status",),
    ("jobs", "list"),
    ("jobs", "retry", "--failed"),
    ("attestr", "pause"),
    ("reconcile", "--dry-run"),
    ("backfill", "--dry-run"),
    ("contacts", "forget", "--din", "01234567", "--yes"),
    ("airtable", "resync"),
]


@pytest.mark.parametrize(
    "args",
    [
        *OPERATOR_COMMANDS,
        ("migrate",),
        ("worker",),
        ("serve", "--host", "127.0.0.1", "--port", "18765"),
        ("import",),
    ],
)
@pytest.mark.process  # serve and worker only ever run as children
def test_an_unreachable_database_is_one_sentence(args: tuple[str, ...]) -> None:
    done = cli(UNREACHABLE, *args)
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.splitlines()
    assert line == (
        f"contact-sync {args[0]}: The database at 127.0.0.1:9/contact_sync cannot be reached (connection "
        "refused): check DATABASE_URL, or unset it to use the embedded database"
    )


@pytest.mark.parametrize("args", [*OPERATOR_COMMANDS, ("airtable", "status"), ("psql", "-c", "SELECT 1")])
def test_a_command_run_where_there_is_no_database_says_where_it_looked(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """An operator in their home folder: no new, empty database answering "No jobs", but where
    the command looked and how to point it, and nothing created there."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATA_DIR")}
    done = contact_sync(*args, env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stdout
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"contact-sync {args[0]}: No database in {tmp_path.resolve() / '.data'}: ")
    assert line.endswith("or set DATA_DIR or DATABASE_URL as the service has them")
    assert not (tmp_path / ".data").exists()


@pytest.mark.process  # migrate and psql as an operator runs them, each its own process
def test_psql_opens_the_embedded_database_the_service_made(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"DATA_DIR": str(tmp_path / "data")}
    assert in_child("migrate", env=env).returncode == 0
    done = in_child("psql", "-c", "SELECT count(*) AS jobs FROM jobs", env=env)
    assert done.returncode == 0 and done.stdout.split()[:3] == ["jobs", "------", "0"], done.stderr
    assert postgres_under(tmp_path) == []  # the command's server stopped with it


def test_doctor_names_the_missing_database_and_creates_none(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATA_DIR")}
    done = contact_sync("doctor", env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert f"No database in {tmp_path.resolve() / '.data'}" in " ".join(done.stdout.split())
    assert not (tmp_path / ".data").exists()


@pytest.mark.process  # a child process
def test_a_port_in_use_is_said_before_anything_starts(db_url: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, "DATABASE_URL": db_url},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"contact-sync serve: Port {port} is already in use on 127.0.0.1: stop what is using it, or "
        "choose another port with --port or PORT"
    ]
    assert "service.started" not in done.stdout


@pytest.mark.process  # a child whose reader goes away
def test_output_piped_into_a_reader_that_stops_early_is_no_database_failure(tmp_path: Path) -> None:
    """`contact-sync jobs list --json | head -c 1`: once `head` has its byte, the pipe is closed;
    the command stops without a word (a shell's 141), not "the database stopped answering"."""
    code = (
        "import sys\n"
        "from service.commands.cli import _run\n"
        "from service.config import load_settings\n"
        "import argparse\n"
        "def flood(_settings, _args):\n"
        "    while True:\n"
        "        print('x' * 1000)\n"
        "sys.exit(_run(argparse.Namespace(command='jobs', run=flood), load_settings({}, env_file=None)))\n"
    )
    reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    done = subprocess.run(
        [sys.executable, "-c", code], stdout=reader.stdin, stderr=subprocess.PIPE, timeout=60
    )
    assert reader.stdin is not None
    reader.stdin.close()
    reader.wait(30)
    assert (done.returncode, done.stderr) == (141, b"")


def test_a_bug_is_a_traceback_with_where_to_report_it(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(_settings: object, _args: object) -> int:
        raise RuntimeError("a bug")

    args = argparse.Namespace(command="status", run=broken)
    assert _run(args, load_settings({}, env_file=None)) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: a bug" in err
    assert err.strip().splitlines()[-1].endswith("as docs/how-to/report-a-problem.md says.")


@pytest.mark.process  # a child process
def test_a_stand_in_on_a_port_in_use_says_so_in_one_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "service.standins", "airtable", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"python -m service.standins: cannot listen on port {port} (Address already in use): use --port"
    ]


@pytest.mark.parametrize(
    "command",
    [
        ["backfill", "--dry-run"],
        ["airtable", "adopt", "--dry-run"],
        ["airtable", "webhook", "status"],
        ["contacts", "forget", "--din", "01234567", "--yes"],
    ],
)
def test_airtable_not_configured_is_a_setting_problem(db_url: str, command: list[str]) -> None:
    """Every command that needs Airtable says what to set, in one line, and exits 2 (a setting)."""
    done = contact_sync(
        *command, env={**os.environ, "DATABASE_URL": db_url, "AIRTABLE_API_KEY": "", "AIRTABLE_BASE_ID": ""}
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "Airtable is not configured: set AIRTABLE_API_KEY and AIRTABLE_BASE_ID"


def test_no_command_lists_the_commands() -> None:
    done = contact_sync()
    assert done.returncode == 2
    assert all(name in done.stderr for name in COMMANDS)


def test_a_command_on_a_stalled_database_says_so_instead_of_waiting(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The jobs table locked by another session (a stalled database, a long migration): `status`
    gives up after DATABASE_WAIT_S with one sentence, not a wait for as long as the lock lasts."""
    from service.commands import context
    from tests.web.test_bounded_waits import _jobs_locked

    monkeypatch.setattr(context, "DATABASE_WAIT_S", 0.5)
    with _jobs_locked(db_url):
        done = contact_sync("status", env={**os.environ, "DATABASE_URL": db_url})
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "contact-sync status: the database stopped answering (no answer in time); what was done "
        "before is kept: run the command again once the database is back"
    )
