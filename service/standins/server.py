"""Run an ASGI app on a free loopback port, in a background thread or in the foreground."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def _bound_socket(port: int = 0) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio only turns Nagle off (TCP_NODELAY) on sockets that say they
    # are TCP, and with Nagle on every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)  # connections made before the server runs wait in the backlog
    return sock


@contextmanager
def serve_in_thread(
    app: Any, port: int = 0, *, lifespan: str = "off", keep_alive_s: int = 5
) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 (a free port unless one is given); yield its base URL. An idle
    connection is closed after `keep_alive_s` (uvicorn's default: 5 s)."""
    sock = _bound_socket(port)
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan=lifespan, timeout_keep_alive=keep_alive_s
    )
    server = uvicorn.Server(config)

    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the stand-in did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve_forever(app: Any, port: int = 0, announce: str = "") -> None:
    """Serve `app` in the foreground, printing its URL first (for child processes)."""
    sock = _bound_socket(port)
    print(f"{announce}http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")).run(sockets=[sock])
