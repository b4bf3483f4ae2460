"""What Airtable's answers become: typed exceptions the pusher and the commands act on (a 429,
an outage, a refusal with Airtable's error type and message, masked). Light to import: the
command line catches these without loading pyairtable or requests."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from service.database import storable
from service.logs import mask_text

if TYPE_CHECKING:
    import requests

_RECORD_ID = re.compile(r"rec[A-Za-z0-9]{14}")


class AirtableError(Exception):
    """Airtable refused a request. `kind` is Airtable's error type (e.g. UNKNOWN_FIELD_NAME)."""

    def __init__(self, message: str, *, status: int | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind

    @property
    def record_ids(self) -> set[str]:
        """Record ids Airtable named in its message (for ROW_DOES_NOT_EXIST)."""
        return set(_RECORD_ID.findall(self.message))


class AirtableRateLimited(AirtableError):
    pass


class AirtableUnavailable(AirtableError):
    """5xx, a timeout, or no connection: worth trying again later."""


class AirtableNotConfigured(AirtableError):
    pass


def error_from(exc: requests.HTTPError) -> AirtableError:
    response = exc.response
    status = response.status_code if response is not None else None
    kind, message = None, None
    try:
        body = response.json() if response is not None else None
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        kind, message = error.get("type"), error.get("message")
    elif isinstance(error, str):
        kind = error
    elif isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0]
        kind, message = (
            (first.get("error"), first.get("message")) if isinstance(first, dict) else (None, None)
        )
    text = storable(
        mask_text(
            f"Airtable answered {status}" + (f" {kind}" if kind else "") + (f": {message}" if message else "")
        )
    )
    if status == 429:
        return AirtableRateLimited(text, status=status, kind=kind)
    if status is None or status >= 500:
        return AirtableUnavailable(text, status=status, kind=kind)
    return AirtableError(text, status=status, kind=kind)
