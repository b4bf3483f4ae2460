"""`contact-sync …` run in the test's own process: what a user at a terminal would see (exit
status, stdout, stderr), without the second or so a child process spends importing the package.

For the commands that need no signal and no second process (`status`, `jobs`, `doctor`,
`contacts`, `backfill`, `airtable`…). The environment, the standard streams and the logging
set-up are the command's while it runs and the test's again afterwards. Tests of signals, of
`serve`, `worker` and `demo`, and of what a fresh process imports, still start a child.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import logging
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path

import structlog

from service import logs
from service.commands.cli import main

# One command at a time: the environment, the directory and the standard streams are the process's.
_ONE_AT_A_TIME = threading.Lock()
# These run until stopped and set signal handlers: only ever in a child (`in_child`).
_LONG_RUNNING = frozenset({"serve", "worker", "demo"})


def contact_sync(
    *args: str, env: Mapping[str, str] | None = None, stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`contact-sync *args` with `env` as its whole environment (default: the test's), `stdin`
    as what the user types, run in `cwd` (where it reads `.env`); its exit status and output, as
    `subprocess.run` would give them. Raises ValueError for `serve`, `worker` and
    `demo` but for their `--help`."""
    if args and args[0] in _LONG_RUNNING and not {"-h", "--help"} & set(args):
        raise ValueError(f"`contact-sync {args[0]}` runs until stopped: start it with in_child")
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _ran(list(args), env, stdin, cwd)
    # Called from an async test: the command's own event loop runs in another thread, and the
    # test's loop waits for it (use `contact_sync_async` where the test's loop must go on).
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(_ran, list(args), env, stdin, cwd).result()


async def contact_sync_async(
    *args: str, env: Mapping[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """`contact_sync` while the test's own event loop goes on (an engine running in it)."""
    return await asyncio.to_thread(contact_sync, *args, env=env, stdin=stdin)


def _ran(
    argv: list[str], env: Mapping[str, str] | None, stdin: str, cwd: Path | None
) -> subprocess.CompletedProcess[str]:
    out, err = io.StringIO(), io.StringIO()
    with (
        _ONE_AT_A_TIME,
        _environment(env),
        _directory(cwd),
        logging_restored(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        _stdin(stdin),
    ):
        code = _exit_status(argv)
    return subprocess.CompletedProcess(["contact-sync", *argv], code, out.getvalue(), err.getvalue())


def in_child(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`contact-sync *args` as a child process (`python -m service`), for what needs one: signals,
    the long-running commands, a fresh interpreter. The test needs `@pytest.mark.process`."""
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=None if env is None else dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _exit_status(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)  # as Python does for `sys.exit("message")`
        return 1
    except BaseException:  # as an uncaught exception ends a process: a traceback, status 1
        traceback.print_exc()
        return 1
    return 0


@contextlib.contextmanager
def _environment(env: Mapping[str, str] | None) -> Iterator[None]:
    saved = dict(os.environ)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _directory(cwd: Path | None) -> Iterator[None]:
    saved = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved)


@contextlib.contextmanager
def _stdin(text: str) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = saved


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    """The command configures structlog and the root logger for a terminal; the test's set-up
    (and `capture_logs`) comes back afterwards."""
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    secrets = logs._known_secrets
    try:
        yield
    finally:
        structlog.configure(**config)
        root.handlers[:] = handlers
        root.setLevel(level)
        logs._known_secrets = secrets
