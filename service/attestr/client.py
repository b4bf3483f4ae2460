"""The Attestr client: the only module that knows Attestr's request, answer and error shapes.

Attestr has announced consent-based v3 APIs; when they come, this is the one place to change.
Every Attestr error becomes a typed exception whose `action` tells the worker what to do
(the design's error table): fail the job, pause every Attestr call, retry soon, wait for the
daily reset, or retry once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx

from service.database import storable
from service.identifiers import plain
from service.logs import mask_text
from service.people.normalize import Contact, normalize_contact

# A hundred contacts, each with a few addresses, are well under 200 KB: an answer larger than
# this is not a contact list, and is refused as it arrives rather than held in memory.
MAX_ANSWER_BYTES = 1024 * 1024


class Action(str, Enum):
    FAIL = "fail"  # permanent: fail the job, no retry
    PAUSE = "pause"  # account-wide: stop calling Attestr for every job until resumed
    RETRY = "retry"  # transient: retry with exponential backoff and jitter
    RETRY_SOON = "retry_soon"  # per-second limit: retry after a short, jittered pause
    WAIT_RESET = "wait_reset"  # daily limit: wait for the reset
    RETRY_ONCE = "retry_once"  # Attestr could not process it: one more try, then fail


class AttestrError(Exception):
    """An Attestr call that did not give an answer. `str(error)` is fit for a person to read."""

    action: Action = Action.RETRY

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status


class AttestrNotConfigured(AttestrError):
    action = Action.PAUSE


class AttestrMalformedRequest(AttestrError):
    action = Action.FAIL


class AttestrCreditsExhausted(AttestrError):
    action = Action.PAUSE


class AttestrAccessDenied(AttestrError):
    """Bad credentials, API not provisioned for the account, or this server's IP not allowed."""

    action = Action.PAUSE


class AttestrRateLimited(AttestrError):
    action = Action.RETRY_SOON


class AttestrDailyLimit(AttestrError):
    action = Action.WAIT_RESET


class AttestrUnprocessable(AttestrError):
    action = Action.RETRY_ONCE


class AttestrAnswerTooLarge(AttestrError):
    """An answer larger than MAX_ANSWER_BYTES. It was paid for: asking again would pay again."""

    action = Action.FAIL


class AttestrUnavailable(AttestrError):
    """5xx, timeouts, connection errors, garbled answers: worth trying again later."""

    action = Action.RETRY


_BY_CODE: dict[str, tuple[type[AttestrError], str]] = {
    "4001": (AttestrMalformedRequest, "Attestr rejected the request as malformed"),
    "4005": (AttestrCreditsExhausted, "Attestr credits are exhausted: top up the Attestr account"),
    "4016": (AttestrAccessDenied, "Attestr refused the credentials: check ATTESTR_API_KEY"),
    "4031": (AttestrAccessDenied, "Attestr says this API is not provisioned for the account"),
    "4035": (AttestrAccessDenied, "Attestr says this API is not provisioned for the account"),
    "4039": (AttestrAccessDenied, "Attestr refused this server's IP address: add it to the allowed IPs"),
    "4291": (AttestrRateLimited, "Attestr's per-second limit was reached"),
    "4292": (AttestrRateLimited, "Attestr's per-second limit was reached"),
    "4293": (AttestrDailyLimit, "Attestr's daily limit was reached"),
    "4294": (AttestrDailyLimit, "Attestr's daily limit was reached"),
    "5001": (AttestrUnprocessable, "Attestr could not process the request"),
}


def _by_status(status: int) -> tuple[type[AttestrError], str]:
    if status == 401:
        return AttestrAccessDenied, "Attestr refused the credentials: check ATTESTR_API_KEY"
    if status == 403:
        return AttestrAccessDenied, "Attestr refused access for this account or IP address"
    if status == 429:
        return AttestrRateLimited, "Attestr's rate limit was reached"
    if status >= 500:
        return AttestrUnavailable, f"Attestr answered HTTP {status}"
    return AttestrMalformedRequest, f"Attestr answered HTTP {status}"


def error_from_response(status: int, body: Any) -> AttestrError:
    """The typed error for an Attestr error answer `{httpStatusCode, code, message, details?}`."""
    body = body if isinstance(body, dict) else {}
    code = plain(body.get("code"), 20)
    kind, words = _BY_CODE.get(code or "") or _by_status(status)
    detail = plain(body.get("message"), 300)
    detail = mask_text(detail) if detail else None  # kept in jobs, logs and Airtable's Sync Error
    message = f"{words} (code {code}{f': {detail}' if detail else ''})" if code else words
    return kind(message, code=code, http_status=status)


@dataclass(frozen=True)
class AttestrAnswer:
    """A 200 answer: the company's contacts, or `valid: false` (no data for that CIN)."""

    cin: str
    valid: bool
    business_name: str | None
    contacts: list[Contact]
    message: str | None
    raw: dict[str, Any]

    @property
    def outcome(self) -> str:
        return "synced" if self.valid and self.contacts else "no_data"


def parse_answer(cin: str, raw: Any, max_contacts: int) -> AttestrAnswer:
    """Read a 200 answer (fresh, or from the stored cache), trusting none of its fields: no more
    than the `max_contacts` asked for are read, however many came."""
    raw = raw if isinstance(raw, dict) else {}
    valid = raw.get("valid") is True or str(raw.get("valid")).lower() == "true"
    items = raw.get("contacts")[:max_contacts] if isinstance(raw.get("contacts"), list) else []
    contacts = [c for c in map(normalize_contact, items) if c] if valid else []
    return AttestrAnswer(
        cin=cin,
        valid=valid,
        business_name=plain(raw.get("businessName"), 300),
        contacts=contacts,
        message=mask_text(plain(raw.get("message"), 300) or "") or None,
        raw=raw,
    )


class AttestrClient:
    def __init__(
        self,
        url: str,
        api_key: str | None,
        *,
        max_contacts: int = 100,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.api_key = api_key
        self.max_contacts = max_contacts
        self._http = httpx.AsyncClient(timeout=timeout_s, transport=transport)
        self._timeout_s = timeout_s

    async def aclose(self) -> None:
        await self._http.aclose()

    async def fetch(self, cin: str) -> AttestrAnswer:
        """One paid call: the contacts of the company with this CIN or LLPIN.

        The body is what Attestr documents and nothing more ("Company Directors Contact API",
        https://docs.attestr.com/attestr-docs/mca-company-director-contact-lookup: `reg`, the
        CIN or LLPIN, required): a field it does not know could be refused as malformed (4001)
        and fail every job. `max_contacts` is applied to the answer instead."""
        if not self.api_key:
            raise AttestrNotConfigured("ATTESTR_API_KEY is not set: add the Attestr auth token")
        try:
            async with self._http.stream(
                "POST",
                self.url,
                json={"reg": cin},
                # The token is sent as Attestr issues it (already encoded), never re-encoded.
                headers={"Authorization": f"Basic {self.api_key}", "Accept": "application/json"},
            ) as response:
                content = await _read_bounded(response)
        except httpx.TimeoutException as exc:
            raise AttestrUnavailable(f"Attestr did not answer within {self._timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise AttestrUnavailable(f"Attestr could not be reached ({type(exc).__name__})") from exc
        try:
            body = storable(json.loads(content))
        except (ValueError, UnicodeDecodeError, RecursionError):
            body = None
        if response.status_code != 200:
            raise error_from_response(response.status_code, body)
        if not isinstance(body, dict):
            raise AttestrUnavailable("Attestr answered 200 with a body that is not a JSON object")
        if "valid" not in body and "code" in body:  # an error carried in a 200
            status = body.get("httpStatusCode")
            raise error_from_response(status if isinstance(status, int) else 500, body)
        return parse_answer(cin, body, self.max_contacts)


async def _read_bounded(response: httpx.Response) -> bytes:
    """The answer's bytes, refused as soon as it is known to be larger than MAX_ANSWER_BYTES: by
    its Content-Length before anything is read, else by counting what arrives."""
    announced = response.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > MAX_ANSWER_BYTES:
        raise _too_large(f"{int(announced):,} bytes announced")
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise _too_large(f"more than {MAX_ANSWER_BYTES:,} bytes sent")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(how: str) -> AttestrAnswerTooLarge:
    return AttestrAnswerTooLarge(
        f"Attestr's answer was too large to be a contact list ({how}; the limit is "
        f"{MAX_ANSWER_BYTES:,}). It was paid for, so it is not asked for again: report it to Attestr"
    )
