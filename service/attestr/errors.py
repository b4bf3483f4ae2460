"""Attestr's refusals, each a typed exception whose `action` tells the worker what to do.

The design's error table: fail the job, pause every Attestr call, wait for the consent to be
fixed, retry soon, wait for the daily reset, or retry once. Codes and messages are Attestr's
("API Error Codes", https://docs.attestr.com/attestr-docs/delete-media-apin80).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from service.identifiers import plain
from service.logs import mask_text


class Action(str, Enum):
    FAIL = "fail"  # permanent: fail the job, no retry
    PAUSE = "pause"  # account-wide: stop calling Attestr for every job until resumed
    RETRY = "retry"  # transient: retry with exponential backoff and jitter
    RETRY_SOON = "retry_soon"  # per-second limit: retry after a short, jittered pause
    WAIT_RESET = "wait_reset"  # daily limit: wait for the reset
    RETRY_ONCE = "retry_once"  # Attestr could not process it: one more try, then fail


class AttestrError(Exception):
    """An Attestr call that did not give an answer. `str(error)` is fit for a person to read.

    `settings_fix`: only a change of settings mends it (a token, the version, the consent): the
    pause it starts ends by itself when a process starts with other settings (gate.py).
    `request_id`: Attestr's `xattestrid` header, which Attestr asks for when a call is reported.
    `paid`: whether the call may have been billed: a refusal (a 4xx) was not, so it does not count
    against ATTESTR_DAILY_CALL_LIMIT; a 5xx or a timeout may have been served, so it counts."""

    action: Action = Action.RETRY
    settings_fix: bool = False
    paid: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.request_id = request_id


class AttestrNotConfigured(AttestrError):
    action = Action.PAUSE


class AttestrMalformedRequest(AttestrError):
    action = Action.FAIL


class AttestrCreditsExhausted(AttestrError):
    action = Action.PAUSE


class AttestrAccessDenied(AttestrError):
    """Bad credentials, API not provisioned for the account, or this server's IP not allowed."""

    action = Action.PAUSE


class AttestrBadCredentials(AttestrAccessDenied):
    settings_fix = True


class AttestrNotServed(AttestrError):
    """The address or the API version is not served (40051, or 404 for the path): V2 switched off
    for the account, or ATTESTR_API_URL wrong. Every call would get the same answer."""

    action = Action.PAUSE
    settings_fix = True


class AttestrConsentRefused(AttestrError):
    """V3: the consent is missing, unknown, expired, revoked, used up, or does not cover this
    lookup. Nothing was paid; every job waits (like a pause) until the consent is fixed."""

    action = Action.PAUSE
    settings_fix = True


class AttestrRateLimited(AttestrError):
    action = Action.RETRY_SOON


class AttestrDailyLimit(AttestrError):
    action = Action.WAIT_RESET


class AttestrUnprocessable(AttestrError):
    action = Action.RETRY_ONCE
    paid = True


class AttestrAnswerTooLarge(AttestrError):
    """An answer larger than the client's limit. It was paid for: asking again would pay again."""

    action = Action.FAIL
    paid = True


class AttestrUnavailable(AttestrError):
    """5xx, timeouts, connection errors, garbled answers: worth trying again later."""

    action = Action.RETRY
    paid = True


# What each consent refusal means; `{consent}` names the consent, and the sentence goes on with
# what the operator must do (which depends on how the consent is configured: consent.py).
_CONSENT: dict[str, str] = {
    "4002": "Attestr does not know the consent {consent}",
    "4003": "The consent {consent} is past its validity",
    "40015": "Attestr refused to register the consent: data categories the lookup needs are missing",
    "40398": "Attestr refused the consent {consent} (expired, revoked or used up)",
    "40399": (
        "Attestr says the consent {consent} does not cover this lookup (its purpose, service, data "
        "categories or operations)"
    ),
}
# Consent refusals Attestr has been seen to send without a code (HTTP 400 `{"details": …}`).
_CONSENT_WORDS = ("consent",)

_BY_CODE: dict[str, tuple[type[AttestrError], str]] = {
    "4001": (AttestrMalformedRequest, "Attestr rejected the request as malformed"),
    "4005": (AttestrCreditsExhausted, "Attestr credits are exhausted: top up the Attestr account"),
    "4016": (AttestrBadCredentials, "Attestr refused the credentials: check ATTESTR_API_KEY"),
    "4031": (AttestrAccessDenied, "Attestr says this API is not provisioned for the account"),
    "4035": (AttestrAccessDenied, "Attestr says this API is not provisioned for the account"),
    "4039": (AttestrAccessDenied, "Attestr refused this server's IP address: add it to the allowed IPs"),
    "4291": (AttestrRateLimited, "Attestr's per-second limit was reached"),
    "4292": (AttestrRateLimited, "Attestr's per-second limit was reached"),
    "4293": (AttestrDailyLimit, "Attestr's daily limit was reached"),
    "4294": (AttestrDailyLimit, "Attestr's daily limit was reached"),
    "5001": (AttestrUnprocessable, "Attestr could not process the request"),
}


def _not_served(version: str) -> str:
    if version == "v2":
        return (
            "V2 is switched off for this account: set ATTESTR_API_VERSION=v3 (README: Moving to Attestr V3)"
        )
    return f"Attestr does not serve ATTESTR_API_URL in {version}: check ATTESTR_API_URL"


def _by_status(status: int) -> tuple[type[AttestrError], str]:
    if status == 401:
        return AttestrBadCredentials, "Attestr refused the credentials: check ATTESTR_API_KEY"
    if status == 403:
        return AttestrAccessDenied, "Attestr refused access for this account or IP address"
    if status in (404, 405, 410):
        return AttestrNotServed, f"Attestr does not serve ATTESTR_API_URL (HTTP {status}): check it"
    if status == 429:
        return AttestrRateLimited, "Attestr's rate limit was reached"
    if status >= 500:
        return AttestrUnavailable, f"Attestr answered HTTP {status}"
    return AttestrMalformedRequest, f"Attestr answered HTTP {status}"


def error_from_response(
    status: int,
    body: Any,
    *,
    version: str = "v2",
    consent: str | None = None,
    consent_fix: str = "",
    request_id: str | None = None,
) -> AttestrError:
    """The typed error for an Attestr error answer `{httpStatusCode, code, message, details?}`.

    `version`: the API version called (a 40051 on V2 means V2 is switched off); `consent`: the
    consent sent, as a consent refusal's sentence names it, and `consent_fix` what to do then.
    Attestr has been seen to refuse a missing consent with HTTP 400 and only `details` (not its
    documented 403/40399): any refusal whose words speak of consent is read as one."""
    body = body if isinstance(body, dict) else {}
    code = plain(body.get("code"), 20)
    detail = plain(body.get("message"), 300) or plain(body.get("details"), 300)
    detail = mask_text(detail) if detail else None  # kept in jobs, logs and Airtable's Sync Error
    if code in _CONSENT or (
        code is None and detail and status < 500 and any(w in detail.lower() for w in _CONSENT_WORDS)
    ):
        kind: type[AttestrError] = AttestrConsentRefused
        words = _CONSENT.get(code or "40399", _CONSENT["40399"]).format(consent=consent or "(none sent)")
        words = f"{words}: {consent_fix}" if consent_fix else words
        if code in (None, "40399") and consent:  # Attestr may not have found it in the request
            words += "; if `contact-sync doctor` says the consent is active, check ATTESTR_CONSENT_FIELD"
    elif code == "40051":
        kind, words = AttestrNotServed, _not_served(version)
    else:
        kind, words = _BY_CODE.get(code or "") or _by_status(status)
        if kind is AttestrNotServed and version == "v2":  # V2 switched off may answer so
            words += "; if Attestr has switched V2 off for this account, set ATTESTR_API_VERSION=v3"
    message = f"{words} (code {code}{f': {detail}' if detail else ''})" if code else words
    if code is None and kind is AttestrConsentRefused and detail:
        message = f"{words} (HTTP {status}: {detail})"
    return kind(message, code=code, http_status=status, request_id=request_id)
