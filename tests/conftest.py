"""Shared fixtures: one real PostgreSQL per test session, a fresh database per test.

With DATABASE_URL set the tests use that server; otherwise they start the embedded one from
pgserver in a temporary directory. Each test gets its own database, copied from a migrated
template, and its URL (`db_url`) can be handed to child processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import psutil
import pytest
from hypothesis import HealthCheck, settings
from starlette.responses import PlainTextResponse

from service.database import create_pool, embedded
from service.migrations import migrate
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from service.standins.server import serve_in_thread

if TYPE_CHECKING:
    from tests.flow import Flow

pytest_plugins = ["tests.contract"]  # the contract tests' targets: the stand-ins, or live services

# Every property, in any run of any module: no per-example deadline and no "too slow" check (the
# tests pass on a loaded 2-core machine, and a slow example is not a wrong one); FUZZ_EXAMPLES
# raises the examples for a longer run. A test's own @settings narrows what it needs.
settings.register_profile(
    "contact-sync",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("contact-sync")

S = TypeVar("S")
# One per pytest-xdist worker: with DATABASE_URL the workers share a server.
TEMPLATE = f"contact_sync_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


def withdatabase(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(withdatabase(url, "postgres"))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _make_template(server_url: str) -> None:
    await _admin(server_url, f"DROP DATABASE IF EXISTS {TEMPLATE}", f"CREATE DATABASE {TEMPLATE}")
    conn = await asyncpg.connect(withdatabase(server_url, TEMPLATE))
    try:
        await migrate(conn)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a PostgreSQL server with a migrated template database; an embedded one is
    stopped when the session ends, before the check that no test left one running."""
    with contextlib.ExitStack() as stack:
        # Its own folder, outside pytest's: a second pytest run on the machine resets the
        # permissions of pytest's temporary root, which would lock this server out of its data.
        folder = Path(tempfile.mkdtemp(prefix="contact-sync-tests-"))
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        _SESSION_FOLDERS.append(folder)
        url = os.environ.get("DATABASE_URL") or stack.enter_context(embedded(folder))
        asyncio.run(_make_template(url))
        yield url


@contextmanager
def database(pg_server: str, template: str) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:16]}"
    asyncio.run(_admin(pg_server, f"CREATE DATABASE {name} TEMPLATE {template}"))
    try:
        yield withdatabase(pg_server, name)
    finally:
        asyncio.run(_admin(pg_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def db_url(pg_server: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    with database(pg_server, TEMPLATE) as url:
        yield url


@pytest.fixture
def empty_db_url(pg_server: str) -> Iterator[str]:
    """A fresh database with no schema at all."""
    with database(pg_server, "template0") as url:
        yield url


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_url, max_size=10)
    yield pool
    await pool.close()


@dataclass
class Running(Generic[S]):
    """A stand-in and the URL it answers on."""

    standin: S
    url: str


class _Switch:
    """An ASGI app handing each request to the app of the test under way (`to`): one server for
    the session, and a fresh stand-in for every test without a server's start and stop."""

    def __init__(self) -> None:
        self.to: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.to is None:  # between tests: a request left over from the last one
            await PlainTextResponse("no test under way", status_code=503)(scope, receive, send)
            return
        await self.to(scope, receive, send)


@pytest.fixture(scope="session")
def _standin_servers() -> Iterator[dict[str, tuple[_Switch, str]]]:
    with contextlib.ExitStack() as stack:
        servers = {}
        for name in ("airtable", "attestr"):
            switch = _Switch()
            servers[name] = (switch, stack.enter_context(serve_in_thread(switch)))
        yield servers


@contextmanager
def _serving(servers: dict[str, tuple[_Switch, str]], name: str, standin: S) -> Iterator[Running[S]]:
    switch, url = servers[name]
    switch.to = standin.app()  # type: ignore[attr-defined]
    try:
        yield Running(standin, url)
    finally:
        switch.to = None


@pytest.fixture
def airtable(_standin_servers: dict[str, tuple[_Switch, str]]) -> Iterator[Running[AirtableStandIn]]:
    with _serving(_standin_servers, "airtable", AirtableStandIn(cooldown_s=1.0)) as running:
        yield running


@pytest.fixture
def attestr(_standin_servers: dict[str, tuple[_Switch, str]]) -> Iterator[Running[AttestrStandIn]]:
    with _serving(_standin_servers, "attestr", AttestrStandIn()) as running:
        yield running


# --- the tiers ---------------------------------------------------------------------------------

PROCESS_FIXTURES = {"quiet_service"}  # it starts `contact-sync serve`


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test in one tier: `process` (marked, or using a fixture that starts the service), else
    `db` (using PostgreSQL), else `fast`."""
    for item in items:
        needs = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("live"):  # their own tier: real services, never in CI
            continue
        if item.get_closest_marker("process") or needs & PROCESS_FIXTURES:
            item.add_marker(pytest.mark.process)
        elif "pg_server" in needs:
            item.add_marker(pytest.mark.db)
        else:
            item.add_marker(pytest.mark.fast)


class _ChildProcessUnmarked(subprocess.Popen):  # type: ignore[type-arg]
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("this test starts a child process: mark it `process` (tests/conftest.py)")


@pytest.fixture(autouse=True)
def _tier_kept(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test outside the `process` tier that starts a child process fails: the tiers stay true."""
    if not request.node.get_closest_marker("process"):
        monkeypatch.setattr(subprocess, "Popen", _ChildProcessUnmarked)


def ctrl_c_as_at_a_terminal() -> None:
    """For `preexec_fn`: in a child the test will interrupt with SIGINT, SIGINT as at a terminal.
    Tests run in the background (a script's `&`) have SIGINT ignored, and children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    """A running service: where it answers, and where it writes its JSON log lines."""

    url: str
    log_path: Path

    def logs(self) -> list[dict]:
        """The JSON log lines the service has written so far."""
        lines = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):  # a line still being written
                    lines.append(json.loads(line))
        return lines


@dataclass
class ServiceProcess(Service):
    """`contact-sync serve` or `worker` in a child process."""

    process: subprocess.Popen[str]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


_WORKERS: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_worker_left() -> Iterator[None]:
    """Whatever a test asserted, the workers it started are gone when it ends."""
    yield
    while _WORKERS:
        process = _WORKERS.pop()
        if process.poll() is None:
            process.kill()
            process.wait(10)


def start_worker(tmp_path: Path, env: dict[str, str], name: str = "worker") -> ServiceProcess:
    """`contact-sync worker` in a child process, once it has started (killed after the test if
    it is still running)."""
    log_path = tmp_path / f"{name}.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "worker"],
            env={**os.environ, **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
        )
    _WORKERS.append(process)
    worker = ServiceProcess("", log_path, process)
    deadline = time.monotonic() + 60
    while not any(line["event"] == "worker.started" for line in worker.logs()):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start:\n{log_path.read_text()}")
        time.sleep(0.05)
    return worker


@contextmanager
def run_service(tmp_path: Path, env: dict[str, str], *args: str) -> Iterator[ServiceProcess]:
    """`contact-sync serve` in a child process, on a free port, ready to take requests."""
    port = free_port()
    log_path = tmp_path / f"service-{port}.log"
    full_env = {**os.environ, "PORT": str(port), "DATA_DIR": str(tmp_path / "data"), **env}
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", *args],
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
        )
    service = ServiceProcess(f"http://127.0.0.1:{port}", log_path, process)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{service.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def quiet_service(tmp_path_factory: pytest.TempPathFactory, pg_server: str) -> Iterator[ServiceProcess]:
    """One service per test module, with no worker: for checks of what the HTTP layer answers."""
    from tests.flow import API_KEY, SECRET

    env = {"WEBHOOK_SECRETS": f"a-rotated-out-secret,{SECRET}", "API_KEYS": API_KEY, "WORKER_IN_WEB": "false"}
    with (
        database(pg_server, TEMPLATE) as url,
        run_service(tmp_path_factory.mktemp("service"), {"DATABASE_URL": url, **env}) as service,
    ):
        yield service


@pytest.fixture
def flow(
    tmp_path: Path, db_url: str, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> Iterator[Flow]:
    """`contact-sync serve` (worker and pusher inside) wired to both stand-ins."""
    from tests.flow import running_flow

    with running_flow(tmp_path, db_url, airtable, attestr) as flow:
        yield flow


def postgres_under(folder: Path) -> list[str]:
    """The PostgreSQL servers (and pg_ctl runs) whose data directory lies under `folder`, as
    "pid: command line"."""
    folder = folder.resolve()
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        args = process.info["cmdline"] or []
        if args and Path(args[0]).name in ("postgres", "pg_ctl") and "-D" in args[:-1]:
            data_dir = Path(args[args.index("-D") + 1]).resolve()
            if data_dir.is_relative_to(folder):
                found.append(f"{process.info['pid']}: {' '.join(args)}")
    return found


def processes_marked(marker: str) -> list[str]:
    """The processes whose environment holds TEST_PROCESS_MARKER=`marker`: a child process started
    with it, and every process that child started in turn, daemons included (they inherit it)."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(psutil.Error):  # gone, a zombie, or not ours to read
            if process.environ().get("TEST_PROCESS_MARKER") == marker:
                found.append(f"{process.info['pid']}: {' '.join(process.info['cmdline'] or [])}")
    return found


def stop_processes(found: list[str]) -> None:
    """Stop the processes `postgres_under` or `processes_marked` found: SIGINT (PostgreSQL's fast
    shutdown, Python's Ctrl-C), then SIGKILL for one still there after 10 s."""
    for line in found:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(int(line.split(":", 1)[0]))
            process.send_signal(signal.SIGINT)
            try:
                process.wait(10)
            except psutil.TimeoutExpired:
                process.kill()


_LEFT_RUNNING: list[str] = []
_SESSION_FOLDERS: list[Path] = []  # the session's own folders outside pytest's (the database)


@pytest.hookimpl(trylast=True)  # after the session's fixtures are gone, its own PostgreSQL stopped
def pytest_sessionfinish(session: pytest.Session) -> None:
    """A PostgreSQL that a test started (under the session's temporary folders) and left running
    fails the run: a newcomer's machine would keep it for ever. It is stopped here all the same."""
    for folder in [session.config._tmp_path_factory.getbasetemp(), *_SESSION_FOLDERS]:
        _LEFT_RUNNING.extend(postgres_under(folder))
    if not _LEFT_RUNNING:
        return
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    stop_processes(_LEFT_RUNNING)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _LEFT_RUNNING:
        terminalreporter.section("PostgreSQL left running by the tests (now stopped)", red=True)
        for line in _LEFT_RUNNING:
            terminalreporter.write_line(line)
