"""`contact-sync serve` inside the test's own process: the same app, worker, pusher and web
server, on a thread with its own event loop, writing its JSON log lines to its own file.

For the tests of what the service does (`flow`), which need no signal and no second process:
starting one costs milliseconds instead of the second a child spends importing the package.
Tests of signals, kill -9, several workers and start-up itself use `conftest.run_service`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import io
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from service import logs
from service.commands.context import migrated
from service.commands.process import http_server, listening_socket
from service.config import Settings, load_settings
from tests.command_line import logging_restored
from tests.conftest import Service

# The log file of the service whose thread (or task, or worker thread: each copies the context)
# is writing; None: the test's own lines, which go where pytest captures them.
_LOG_FILE: contextvars.ContextVar[TextIO | None] = contextvars.ContextVar("service_log", default=None)


class _EachServiceItsFile(io.TextIOBase):
    """One stream for the whole process's logging, writing each line to its service's file."""

    def write(self, text: str) -> int:
        target = _LOG_FILE.get()
        if target is None:
            return sys.stdout.write(text)
        written = target.write(text)
        target.flush()  # read back by the test as it goes
        return written


@contextlib.contextmanager
def service_in_thread(tmp_path: Path, env: dict[str, str]) -> Iterator[Service]:
    """The service configured by `env` (over the test's environment, as a child would inherit
    it; DATABASE_URL set), answering on a free port of 127.0.0.1 until the block ends."""
    settings = load_settings({**os.environ, "DATA_DIR": str(tmp_path / "data"), **env}, env_file=None)
    url = settings.database_url
    assert url, "a service in the test's process needs DATABASE_URL"
    listening = listening_socket("127.0.0.1", 0)
    port = listening.getsockname()[1]
    settings = Settings(**{**settings.__dict__, "port": port})
    log_path = tmp_path / f"service-{port}.log"
    with listening, log_path.open("w") as log_file, _logging_to_files(settings):
        token = _LOG_FILE.set(log_file)
        try:
            asyncio.run(migrated(settings, url))
            server = http_server(settings, url)
            # The thread starts with a copy of this context: the service's lines go to its file.
            thread = threading.Thread(
                target=contextvars.copy_context().run,
                args=(server.run,),
                kwargs={"sockets": [listening]},
                name=f"service-{port}",
                daemon=True,
            )
        finally:
            _LOG_FILE.reset(token)
        thread.start()
        service = Service(f"http://127.0.0.1:{port}", log_path)
        try:
            deadline = time.monotonic() + 60
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not start:\n{log_path.read_text()}")
                time.sleep(0.01)
            yield service
        finally:
            server.should_exit = True
            thread.join(60)
            assert not thread.is_alive(), f"the service did not stop:\n{log_path.read_text()}"


@contextlib.contextmanager
def _logging_to_files(settings: Settings) -> Iterator[None]:
    """structlog and the standard library set up as `serve` sets them up, each line going to
    its service's file; the test's set-up again afterwards."""
    with logging_restored():
        logs.configure_logging(
            settings.log_format,
            settings.log_level,
            secrets=settings.secrets,
            stream=_EachServiceItsFile(),
        )
        yield
