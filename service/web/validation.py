"""Checks on what callers send, each failing with the design's error code and the field's name.

The order is the design's: size (413), authentication (401), JSON (400), fields (422).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from starlette.requests import Request

from service import identifiers
from service.web.errors import ApiError

MAX_BODY_BYTES = 64 * 1024
_RECORD_ID = re.compile(r"^rec[A-Za-z0-9]{14}$", re.ASCII)
# ASCII digits only: str.isdigit() also passes '²' (which int() refuses) and '١٢' (which int()
# reads as 12); 18 digits always fit PostgreSQL's bigint.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")


def whole_number(text: str) -> int | None:
    """`text` as an int when it is 1 to 18 ASCII digits and nothing else, else None."""
    return int(text) if _WHOLE_NUMBER.fullmatch(text) else None


# A body still arriving after this is a client holding a connection open (the headers' own
# time is the proxy's and the server's: see docs/reference/http.md, Limits).
BODY_TIMEOUT_S = 10.0


async def read_body(request: Request) -> bytes:
    """The raw body, refused with 413 once it passes 64 KiB (never read whole before that), and
    with 408 when it has not all arrived within BODY_TIMEOUT_S."""
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            return await _read_body(request)
    except TimeoutError:
        raise ApiError(
            408, "request_timeout", f"The body did not arrive within {BODY_TIMEOUT_S:g} s"
        ) from None


async def _read_body(request: Request) -> bytes:
    declared = whole_number(request.headers.get("content-length") or "")
    if declared is not None:
        if declared > MAX_BODY_BYTES:
            raise ApiError(413, "payload_too_large", f"The body is larger than {MAX_BODY_BYTES // 1024} KiB")
        # The server stops at the declared length: the body cannot be longer than this.
        return await request.body()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, "payload_too_large", f"The body is larger than {MAX_BODY_BYTES // 1024} KiB")
    return bytes(body)


def parse_json(body: bytes, *, optional: bool = False) -> dict[str, Any]:
    """A JSON object, or 400 `invalid_json` / 422 `invalid_field`. An empty body is `{}` when optional."""
    if optional and not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "The body is not valid JSON") from None
    except RecursionError:  # `[[[[…]]]]` a thousand deep: Python's parser gives up
        raise ApiError(400, "invalid_json", "The body's JSON is nested too deeply") from None
    if not isinstance(value, dict):
        raise ApiError(422, "invalid_field", "The body must be a JSON object", field="body")
    return value


def record_id(value: Any, field: str = "record_id") -> str:
    if value is None or value == "":
        raise ApiError(
            422, "invalid_field", f"{field} is required: the Airtable record id (rec…)", field=field
        )
    if not isinstance(value, str):
        raise ApiError(422, "invalid_field", f"{field} must be a string", field=field)
    value = value.strip()
    if not _RECORD_ID.match(value):
        raise ApiError(
            422,
            "invalid_record_id",
            f"{field} must be an Airtable record id: rec followed by 14 letters or digits",
            field=field,
        )
    return value


def cin(value: Any, field: str = "cin", *, required: bool = False) -> str | None:
    """A CIN (`U72200KA2015PTC081234`) or LLPIN (`AAB-1234`) as `identifiers.cin` reads it (a
    lookup's list, other scripts' digits, invisible characters), or a 422 naming the field."""
    items = value if isinstance(value, list | tuple) else [value]
    if any(isinstance(v, bool | dict | list | tuple) for v in items):
        raise ApiError(422, "invalid_field", f"{field} must be a string", field=field)
    if identifiers.plain(value) is None:
        if required:
            raise ApiError(422, "invalid_field", f"{field} is required", field=field)
        return None
    normalized = identifiers.cin(value)
    if normalized is None:
        raise ApiError(
            422,
            "invalid_cin",
            f"{field} is not a valid CIN (like U72200KA2015PTC081234) or LLPIN (like AAB-1234)",
            field=field,
        )
    return normalized


def integer(value: Any, field: str, low: int, high: int, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ApiError(
            422, "invalid_field", f"{field} must be a whole number from {low} to {high}", field=field
        )
    if isinstance(value, str):
        number = whole_number(value)  # int() would also read ' 1_0 ' and '١٢'
    elif isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        number = int(value)
    else:
        number = None
    if number is None or not low <= number <= high:
        raise ApiError(
            422, "invalid_field", f"{field} must be a whole number from {low} to {high}", field=field
        )
    return number


def boolean(value: Any, field: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise ApiError(422, "invalid_field", f"{field} must be true or false", field=field)


_REQUEST_KEY = re.compile(r"[!-~]{1,100}")


def request_key(value: str | None) -> str | None:
    """An `X-Request-Id` header: 1–100 printable ASCII characters, or None when absent. Raises
    ApiError 422 `invalid_field` for anything else."""
    if value is None or value == "":
        return None
    if not _REQUEST_KEY.fullmatch(value):
        raise ApiError(
            422,
            "invalid_field",
            "X-Request-Id must be 1 to 100 printable ASCII characters",
            field="X-Request-Id",
        )
    return value
