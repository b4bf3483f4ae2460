"""Attestr's refusals, each a typed exception whose `action` tells the worker what to do.

REFUSALS is the decision for every code Attestr documents ("API Error Codes",
https://docs.attestr.com/attestr-docs/delete-media-apin80), for the codes the service knows
otherwise and for answers read by their HTTP status alone: fail the job, pause every Attestr call
(until a probe works, or until the settings change), wait for the daily reset, retry soon, retry
once, or retry with backoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from service.identifiers import plain
from service.logs import mask_text


class Action(str, Enum):
    """What the worker does with a job whose Attestr call was refused."""

    FAIL = "fail"  # permanent: fail the job, no retry
    PAUSE = "pause"  # account-wide: stop calling Attestr for every job until resumed
    RETRY = "retry"  # transient: retry with exponential backoff and jitter
    RETRY_SOON = "retry_soon"  # per-second limit: retry after a short, jittered pause
    WAIT_RESET = "wait_reset"  # daily limit: wait for the reset
    RETRY_ONCE = "retry_once"  # Attestr could not process it: one more try, then fail


class Decision(str, Enum):
    """A refusal's decision as the table (REFUSALS) states it: an `Action`, with PAUSE split in
    two by `settings_fix` (a pause that also ends when a process starts with other settings)."""

    RETRY = "retry"
    RETRY_SOON = "retry soon"
    RETRY_ONCE = "retry once"
    WAIT_RESET = "wait for the reset"
    PAUSE = "pause"
    PAUSE_FOR_SETTINGS = "pause until settings change"
    FAIL = "fail"


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

    @classmethod
    def decision(cls) -> Decision:
        """What the worker does about this refusal (its `action` and `settings_fix`)."""
        if cls.action is Action.PAUSE and cls.settings_fix:
            return Decision.PAUSE_FOR_SETTINGS
        return Decision[cls.action.name]


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


class AttestrAnswerUnreadable(AttestrError):
    """A 200 whose body could not be read whole (cut off, the connection reset inside it, past the
    call's deadline) or is not a JSON object. Attestr bills a lookup it answered; nothing it
    documents says a broken answer is not billed, so asking again could pay again."""

    action = Action.FAIL
    paid = True


class AttestrUnavailable(AttestrError):
    """5xx, timeouts, connection errors, garbled answers: worth trying again later."""

    action = Action.RETRY
    paid = True


@dataclass(frozen=True)
class Refusal:
    """One row of REFUSALS. `code`: Attestr's (None: a row read by HTTP status alone);
    `http_status`: the status Attestr documents for it; `message`: Attestr's own words; `kind`:
    the exception raised, whose `decision()` is `decision`; `words`: our sentence, what it means
    and what the operator must do (`on_v2`: instead, when the call was on V2); `documented`: in
    Attestr's code table as the reference read it."""

    code: str | None
    http_status: int
    message: str | None
    kind: type[AttestrError]
    decision: Decision
    words: str
    on_v2: str | None = None
    documented: bool = True


# Attestr's "API Error Codes" (https://docs.attestr.com/attestr-docs/delete-media-apin80): every
# row of its code table (read up to 4293), then the codes the service knows from elsewhere, then
# the answers read by their HTTP status alone. One row each: the status Attestr documents, its
# own message, the exception, the decision, and our sentence: what it means, then what the
# operator must do. `{consent}` names the consent a lookup carried (a consent refusal's sentence
# goes on with what to do about it: consent.py, `what_to_do`), `{version}` the API version
# called, `{status}` the HTTP status received.
REFUSALS: tuple[Refusal, ...] = (
    Refusal(
        "4001",
        400,
        "Malformed data or missing required parameter values",
        AttestrMalformedRequest,
        Decision.FAIL,
        "Attestr refused the request as malformed: check the company's CIN; if every company is "
        "refused so, report it with this message",
    ),
    Refusal(
        "4002",
        400,
        "Consent with given reference ID does not exist",
        AttestrConsentRefused,
        Decision.PAUSE_FOR_SETTINGS,
        "Attestr does not know the consent {consent}",
    ),
    Refusal(
        "40051",
        400,
        "This endpoint does not support the provided version.",
        AttestrNotServed,
        Decision.PAUSE_FOR_SETTINGS,
        "Attestr does not serve this address in API version {version}: check ATTESTR_API_URL and "
        "ATTESTR_API_VERSION (the version in the address must be one Attestr serves)",
        # No answer is documented for a switched-off V2; this is the nearest documented row.
        on_v2=(
            "V2 is switched off for this account: set ATTESTR_API_VERSION=v3 "
            "(docs/how-to/move-to-attestr-v3.md: Moving to Attestr V3)"
        ),
    ),
    Refusal(
        "4003",
        400,
        "Consent valid till time is less than current time",
        AttestrConsentRefused,
        Decision.PAUSE_FOR_SETTINGS,
        "The consent {consent} is past its validity",
    ),
    Refusal(
        "4005",
        400,
        "Operation could not be performed due to low credits balance",
        AttestrCreditsExhausted,
        Decision.PAUSE,
        "Attestr credits are exhausted: top up the Attestr account",
    ),
    Refusal(
        "40015",
        400,
        "Missing required data categories for the provided service(s)",
        AttestrConsentRefused,
        Decision.PAUSE_FOR_SETTINGS,
        "Attestr refused to register the consent: data categories the lookup needs are missing",
    ),
    Refusal(
        "4016",
        401,
        "Invalid client authorization",
        AttestrBadCredentials,
        Decision.PAUSE_FOR_SETTINGS,
        "Attestr refused the credentials: check ATTESTR_API_KEY",
    ),
    Refusal(
        "4031",
        403,
        "Unauthorized access",
        AttestrBadCredentials,
        Decision.PAUSE_FOR_SETTINGS,
        "Attestr refused access for this token (unauthorised): check that ATTESTR_API_KEY is the "
        "token of the Attestr account that has this API",
    ),
    Refusal(
        "4035",
        403,
        "Requested service is not provisioned for your account",
        AttestrAccessDenied,
        Decision.PAUSE,
        "Attestr says this API is not provisioned for the account: ask Attestr to provision it",
    ),
    Refusal(
        "4039",
        403,
        "Client's IP address is not whitelisted",
        AttestrAccessDenied,
        Decision.PAUSE,
        "Attestr refused this server's IP address: add it to the account's allowed IPs at Attestr",
    ),
    Refusal(
        "40398",
        403,
        "Invalid consent to process the request",
        AttestrConsentRefused,
        Decision.PAUSE_FOR_SETTINGS,
        "Attestr refused the consent {consent} (expired, revoked or used up)",
    ),
    Refusal(
        "40399",
        403,
        "Missing or insufficient consent to process the request",
        AttestrConsentRefused,
        Decision.PAUSE_FOR_SETTINGS,
        "Attestr says the consent {consent} does not cover this lookup (its purpose, service, data "
        "categories or operations)",
    ),
    Refusal(
        "40399",
        403,
        "You are not allowed to perform the operation as per the consent",
        AttestrConsentRefused,
        Decision.PAUSE_FOR_SETTINGS,
        "Attestr says the consent {consent} does not cover this lookup: its operations do not allow it",
    ),
    Refusal(
        "4291",
        429,
        "Maximum account rate limit exceeded",
        AttestrRateLimited,
        Decision.RETRY_SOON,
        "Attestr's per-second limit for the account was reached: nothing to do, it is tried again "
        "in a few seconds",
    ),
    Refusal(
        "4292",
        429,
        "Maximum API rate limit exceeded",
        AttestrRateLimited,
        Decision.RETRY_SOON,
        "Attestr's per-second limit for this API was reached: nothing to do, it is tried again in "
        "a few seconds",
    ),
    Refusal(
        "4293",
        429,
        "Maximum account daily limit exceeded",  # the page's text is cut at "e…" in the reference
        AttestrDailyLimit,
        Decision.WAIT_RESET,
        "Attestr's daily limit for the account was reached: nothing to do, calls resume after "
        "Attestr's daily reset (ask Attestr to raise the limit if it is too low)",
    ),
    # Known to the service, not among the rows the reference read ("Rows after 4293 … not read").
    Refusal(
        "4294",
        429,
        "Maximum API daily limit exceeded",
        AttestrDailyLimit,
        Decision.WAIT_RESET,
        "Attestr's daily limit for this API was reached: nothing to do, calls resume after "
        "Attestr's daily reset (ask Attestr to raise the limit if it is too low)",
        documented=False,
    ),
    Refusal(
        "5001",
        500,
        "Request could not be processed.",
        AttestrUnprocessable,
        Decision.RETRY_ONCE,
        "Attestr could not process the request: it is tried once more, then the job fails; if it "
        "lasts, report it to Attestr with this message",
        documented=False,
    ),
    # By HTTP status alone: no code, or a code not above.
    Refusal(
        None,
        401,
        None,
        AttestrBadCredentials,
        Decision.PAUSE_FOR_SETTINGS,
        "Attestr refused the credentials (HTTP 401): check ATTESTR_API_KEY",
    ),
    Refusal(
        None,
        403,
        None,
        AttestrAccessDenied,
        Decision.PAUSE,
        "Attestr refused access (HTTP 403): check with Attestr that the account has this API and "
        "allows this server's IP address, and that ATTESTR_API_KEY is its token",
    ),
    *(
        Refusal(
            None,
            status,
            None,
            AttestrNotServed,
            Decision.PAUSE_FOR_SETTINGS,
            f"Attestr does not serve the address in ATTESTR_API_URL (HTTP {status}): check ATTESTR_API_URL",
            on_v2=(
                f"Attestr does not serve the address in ATTESTR_API_URL (HTTP {status}): check "
                "ATTESTR_API_URL; if Attestr has switched V2 off for this account, set ATTESTR_API_VERSION=v3"
            ),
        )
        for status in (404, 405, 410)
    ),
    Refusal(
        None,
        429,
        None,
        AttestrRateLimited,
        Decision.RETRY_SOON,
        "Attestr's rate limit was reached (HTTP 429): nothing to do, it is tried again in a few seconds",
    ),
    Refusal(
        None,
        500,  # any 5xx
        None,
        AttestrUnavailable,
        Decision.RETRY,
        "Attestr answered HTTP {status}: nothing to do, it is tried again later (report it to "
        "Attestr if it lasts)",
    ),
    Refusal(
        None,
        400,  # any other status
        None,
        AttestrMalformedRequest,
        Decision.FAIL,
        "Attestr refused the request (HTTP {status}): report it with this message",
    ),
)

# Consent refusals Attestr has been seen to send without a code (HTTP 400 `{"details": …}`).
_CONSENT_WORDS = ("consent",)

_BY_CODE: dict[str, Refusal] = {}  # a code's first row
_BY_CODE_AND_MESSAGE: dict[tuple[str, str], Refusal] = {}  # 40399's two messages
_BY_STATUS: dict[int, Refusal] = {}
for _row in REFUSALS:
    if _row.code is None:
        _BY_STATUS[_row.http_status] = _row
    else:
        _BY_CODE.setdefault(_row.code, _row)
        _BY_CODE_AND_MESSAGE[_row.code, (_row.message or "").lower()] = _row
del _row
_MISSING_CONSENT = _BY_CODE["40399"]


def _by_status(status: int) -> Refusal:
    """The row for an answer without a code of the table: by its status (any 5xx; any other)."""
    return _BY_STATUS.get(status) or _BY_STATUS[500 if status >= 500 else 400]


def refusal_for(status: int, code: str | None, detail: str | None) -> Refusal:
    """The table's row for an error answer: by its code (and, for 40399, its message), else a
    refusal without a code whose words speak of consent, else by its HTTP status."""
    if code is not None and code in _BY_CODE:
        return _BY_CODE_AND_MESSAGE.get((code, (detail or "").strip().lower())) or _BY_CODE[code]
    if code is None and detail and status < 500 and any(w in detail.lower() for w in _CONSENT_WORDS):
        return _MISSING_CONSENT
    return _by_status(status)


def error_from_response(
    status: int,
    body: Any,
    *,
    version: str = "v2",
    consent: str | None = None,
    consent_fix: str = "",
    request_id: str | None = None,
) -> AttestrError:
    """The typed error for an Attestr error answer `{httpStatusCode, code, message, details?}`,
    as REFUSALS says.

    `version`: the API version called (a 40051 on V2 means V2 is switched off); `consent`: the
    consent sent, as a consent refusal's sentence names it, and `consent_fix` what to do then.
    Attestr has been seen to refuse a missing consent with HTTP 400 and only `details` (not its
    documented 403/40399): any refusal whose words speak of consent is read as one."""
    body = body if isinstance(body, dict) else {}
    code = plain(body.get("code"), 20)
    detail = plain(body.get("message"), 300) or plain(body.get("details"), 300)
    row = refusal_for(status, code, detail)
    detail = mask_text(detail) if detail else None  # kept in jobs, logs and Airtable's Sync Error
    template = row.on_v2 if row.on_v2 and version == "v2" else row.words
    words = template.format(consent=consent or "(none sent)", version=version, status=status)
    if row.kind is AttestrConsentRefused:
        words = f"{words}: {consent_fix}" if consent_fix else words
        if row is _MISSING_CONSENT and consent:  # Attestr may not have found it in the request
            words += "; if `contact-sync doctor` says the consent is active, check ATTESTR_CONSENT_FIELD"
    if code:
        message = f"{words} (code {code}{f': {detail}' if detail else ''})"
    elif row.kind is AttestrConsentRefused and detail:
        message = f"{words} (HTTP {status}: {detail})"
    else:
        message = words
    return row.kind(message, code=code, http_status=status, request_id=request_id)
