"""How requests reach Airtable: pyairtable's session with an adapter that reads each answer up
to MAX_ANSWER_BYTES (requests alone reads an answer of any size whole), and notes when a request
left on a connection kept alive from an earlier one (the rate limit counts such a request's
window from then: `sent_on_kept_alive`)."""

from __future__ import annotations

import threading
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_sent = threading.local()  # each thread's last request: when it left, if on a kept-alive connection


class _WrittenAt:
    """A connection noting when its request was written whole (handed to the kernel), or None
    while it is being written or when writing it failed."""

    written_at: float | None = None

    def request(self, *args: Any, **kwargs: Any) -> None:
        self.written_at = None
        super().request(*args, **kwargs)  # type: ignore[misc]
        self.written_at = time.monotonic()


class _HTTPConnection(_WrittenAt, HTTPConnection):
    pass


class _HTTPSConnection(_WrittenAt, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


# A page of 100 records with the fields the service asks for, or a base's schema, is well under
# this: a larger answer is refused as it arrives rather than held in memory.
MAX_ANSWER_BYTES = 8 * 1024 * 1024


class BoundedAdapter(HTTPAdapter):
    """requests' adapter, reading each answer itself up to MAX_ANSWER_BYTES: refused at once by
    its Content-Length, else when more has arrived (requests alone reads any size whole)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        # Connections that note when their request was written (a proxy's pools do not: their
        # requests count from their answers, the safe side).
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def send(self, request: Any, stream: bool = False, **kwargs: Any) -> requests.Response:
        _sent.at = None
        response = super().send(request, stream=True, **kwargs)
        connection = getattr(response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            # urllib3 reconnects a dropped connection in the same object: only the same socket as
            # last time means no handshake came first (a server may close a connection at any
            # time, RFC 9112 section 9.6: Airtable's idle ones, say).
            if getattr(connection, "contact_sync_socket", None) is sock:
                # Once written, not when handed to urllib3: a thread held back before the write
                # (the interpreter busy with the event loop, a loaded machine) sends later than
                # that, by more than the margin the rate limit allows for.
                _sent.at = getattr(connection, "written_at", None)
            connection.contact_sync_socket = sock
        announced = response.headers.get("Content-Length", "")
        if announced.isdigit() and int(announced) > MAX_ANSWER_BYTES:
            response.close()
            raise AnswerTooLarge(f"{int(announced):,} bytes announced")
        content = bytearray()
        for chunk in response.iter_content(65_536):
            content += chunk
            if len(content) > MAX_ANSWER_BYTES:
                response.close()
                raise AnswerTooLarge(f"more than {MAX_ANSWER_BYTES:,} bytes sent")
        response._content = bytes(content)  # what requests would have read, read with a limit
        return response


class AnswerTooLarge(requests.RequestException):
    pass


def sent_on_kept_alive() -> float | None:
    """When (time.monotonic()) this thread's last request left, if it went on a connection kept
    alive from an earlier request; None when it opened a connection, got no answer, or went
    through a proxy. Read once urllib3 has written the request whole: its first bytes may have
    arrived a little before, which only errs on the safe side (see SENT_MARGIN_S)."""
    return getattr(_sent, "at", None)
