"""What Airtable's answers become: typed exceptions the pusher and the commands act on (a 429,
an outage, a refusal with Airtable's error type and message, masked). Light to import: the
command line catches these without loading pyairtable or requests."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from service.database import storable
from service.identifiers import plain
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


class AirtablePaused(AirtableError):
    """A refusal only the operator can fix (`operator_fix`): writes to `scope` ("base", "contacts"
    or "companies") wait, for every process, until a probe succeeds or `airtable resume`."""

    def __init__(self, scope: str, message: str, *, kind: str | None = None) -> None:
        super().__init__(message, kind=kind)
        self.scope = scope
        self.sent_at: datetime | None = None  # when the refused request went out (the database's clock)


# Refusals no retry of the same request can fix and the operator must: Airtable's status and error
# type → (what waits: the whole base, or the table written; the sentence with what to do). From
# "Errors" (https://airtable.com/developers/web/api/errors) and "Airtable API: Common
# troubleshooting" (support.airtable.com): 401 "invalid authentication token"; 403
# INVALID_PERMISSIONS ("field or table operation limits"), a scope removed or a base the token no
# longer reaches (INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND); 404 for a table or base that moved.
_TOKEN = (
    "Airtable refused the token ({status}): AIRTABLE_API_KEY was revoked, regenerated or lost its "
    "access to the base; set a valid token (writes resume by themselves once it works)"
)
_PERMISSIONS = (
    "Airtable refused to let the token's user write the {table} table ({status} {kind}): a base owner "
    "limited who may edit the table or one of its fields, the user was made read-only, or a scope was "
    "removed from the token; give it back (writes resume by themselves once they are let through)"
)
_SCHEMA = (
    "Airtable refused the token access to the base ({status} {kind}): the token lost the "
    "schema.bases:read scope or its access to the base AIRTABLE_BASE_ID; give it back (writes "
    "resume by themselves once it works)"
)
_MOVED = (
    "Airtable does not find the {table} table or the base ({status} {kind}): check AIRTABLE_BASE_ID "
    "and the table's name (AIRTABLE_{upper}_TABLE)"
)
_BASE_MOVED = "Airtable does not find the base ({status} {kind}): check AIRTABLE_BASE_ID"
# A field the service needs is not in the table's schema (checked before a write: `kind` ours).
KEY_FIELD_MISSING = "KEY_FIELD_MISSING"


def operator_fix(error: AirtableError, table: str | None) -> tuple[str, str] | None:
    """(scope, sentence) when `error`, refused on a request to `table` ("contacts" or
    "companies"; None: the base's schema), is one only the operator can fix; None when it is
    about the rows (or passing)."""
    if isinstance(error, AirtableRateLimited | AirtableUnavailable | AirtableNotConfigured):
        return None
    status, kind = error.status, error.kind or ""
    words = {
        "status": status,
        "kind": kind,
        "table": (table or "").capitalize(),
        "upper": (table or "").upper(),
    }
    if kind in (KEY_FIELD_MISSING, "TABLE_NOT_FOUND"):  # found missing in the schema: ours
        return table or "base", error.message
    if status == 401:
        return "base", _TOKEN.format(**words)
    if status == 403:
        return (table, _PERMISSIONS.format(**words)) if table else ("base", _SCHEMA.format(**words))
    if status == 404 and not error.record_ids and kind != "ROW_DOES_NOT_EXIST":
        return (table, _MOVED.format(**words)) if table else ("base", _BASE_MOVED.format(**words))
    return None


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
    # Airtable's words, as any outside text, are inert before they go anywhere (a log, a company's
    # status, a terminal).
    kind, message = plain(kind, 80), plain(message, 500)
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
