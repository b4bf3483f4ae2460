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

_sent = threading.local()  # each thread's last request: when it left, if on a kept-alive connection

# A page of 100 records with the fields the service asks for, or a base's schema, is well under
# this: a larger answer is refused as it arrives rather than held in memory.
MAX_ANSWER_BYTES = 8 * 1024 * 1024


class BoundedAdapter(HTTPAdapter):
    """requests' adapter, reading each answer itself up to MAX_ANSWER_BYTES: refused at once by
    its Content-Length, else when more has arrived (requests alone reads any size whole)."""

    def send(self, request: Any, stream: bool = False, **kwargs: Any) -> requests.Response:
        _sent.at = None
        leaving = time.monotonic()
        response = super().send(request, stream=True, **kwargs)
        connection = getattr(response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            # urllib3 reconnects a dropped connection in the same object: only the same socket as
            # last time means no handshake came first (a server may close a connection at any
            # time, RFC 9112 section 9.6: Airtable's idle ones, say).
            if getattr(connection, "contact_sync_socket", None) is sock:
                _sent.at = leaving
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
    alive from an earlier request; None when it opened a connection or got no answer. Read just
    before the request is handed to urllib3: taking a pooled connection and writing the request
    come after, so the real send is a little later (see SENT_MARGIN_S)."""
    return getattr(_sent, "at", None)
