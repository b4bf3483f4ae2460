"""Attestr's error code table, row by row: what the service decides for each (the exception, its
action, whether only settings mend it, whether it was paid) and that its sentence tells the
operator what to do; then each code as the stand-in answers it over HTTP, read by the client.

Source: "API Error Codes", https://docs.attestr.com/attestr-docs/delete-media-apin80 (the
reference, /work/shared/reference/attestr-v3.md §5)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.attestr import consent
from service.attestr.client import AttestrClient
from service.attestr.errors import (
    REFUSALS,
    Action,
    AttestrAccessDenied,
    AttestrBadCredentials,
    AttestrConsentRefused,
    AttestrCreditsExhausted,
    AttestrDailyLimit,
    AttestrError,
    AttestrMalformedRequest,
    AttestrNotServed,
    AttestrRateLimited,
    AttestrUnavailable,
    AttestrUnprocessable,
    Decision,
    error_from_response,
)
from service.config import load_settings
from service.standins.attestr import PATH, AttestrStandIn
from service.standins.attestr_consents import NOT_ALLOWED
from tests.conftest import Running

CIN = "U72200KA2015PTC081234"
NAMED = "ATTESTR_CONSENT_ID=CX3oM_bNstq9xWxgRd"

# The reference's code table, verbatim (HTTP, code, message); 4293's message is cut there at
# "e[xceeded]".
DOCUMENTED: list[tuple[int, str, str]] = [
    (400, "4001", "Malformed data or missing required parameter values"),
    (400, "4002", "Consent with given reference ID does not exist"),
    (400, "40051", "This endpoint does not support the provided version."),
    (400, "4003", "Consent valid till time is less than current time"),
    (400, "4005", "Operation could not be performed due to low credits balance"),
    (400, "40015", "Missing required data categories for the provided service(s)"),
    (401, "4016", "Invalid client authorization"),
    (403, "4031", "Unauthorized access"),
    (403, "4035", "Requested service is not provisioned for your account"),
    (403, "4039", "Client's IP address is not whitelisted"),
    (403, "40398", "Invalid consent to process the request"),
    (403, "40399", "Missing or insufficient consent to process the request"),
    (403, "40399", "You are not allowed to perform the operation as per the consent"),
    (429, "4291", "Maximum account rate limit exceeded"),
    (429, "4292", "Maximum API rate limit exceeded"),
    (429, "4293", "Maximum account daily limit exceeded"),
]
# Codes the service knows besides (the stand-in answers them too).
KNOWN: list[tuple[int, str, str]] = [
    (429, "4294", "Maximum API daily limit exceeded"),
    (500, "5001", "Request could not be processed."),
]


def _fix(**env: str) -> str:
    """What consent.py tells the operator to do about a refused consent, under these settings."""
    return consent.what_to_do(load_settings({"ATTESTR_API_VERSION": "v3", **env}, env_file=None))


REUSABLE_FIX = _fix(ATTESTR_CONSENT_ID="CX3oM_bNstq9xWxgRd")
PER_LOOKUP_FIX = _fix(
    ATTESTR_CONSENT_PURPOSE="background_verification",
    ATTESTR_SERVICE_CODE="LEADX",
    ATTESTR_CONSENT_EVIDENCE_REF="forms/{cin}",
)

FAIL, PAUSE, RETRY, SOON, ONCE, RESET = (
    Action.FAIL,
    Action.PAUSE,
    Action.RETRY,
    Action.RETRY_SOON,
    Action.RETRY_ONCE,
    Action.WAIT_RESET,
)
CONSENT_FIX = [NAMED, "register a new consent", "set its id as ATTESTR_CONSENT_ID"]
NOTHING_SOON = ["nothing to do, it is tried again in a few seconds"]
NOTHING_TILL_RESET = ["nothing to do, calls resume after Attestr's daily reset"]

# What the service must decide for each case, written out here rather than read from errors.py:
# name → (exception, action, settings_fix, paid, what the sentence must say).
DECIDED: dict[str, tuple[type[AttestrError], Action, bool, bool, list[str]]] = {
    "4001": (AttestrMalformedRequest, FAIL, False, False, ["check the company's CIN", "report it"]),
    "4002": (AttestrConsentRefused, PAUSE, True, False, ["does not know the consent", *CONSENT_FIX]),
    "40051": (AttestrNotServed, PAUSE, True, False, ["check ATTESTR_API_URL and ATTESTR_API_VERSION"]),
    "40051 on v2": (
        AttestrNotServed,
        PAUSE,
        True,
        False,
        ["V2 is switched off", "set ATTESTR_API_VERSION=v3"],
    ),
    "4003": (AttestrConsentRefused, PAUSE, True, False, ["past its validity", *CONSENT_FIX]),
    "4005": (AttestrCreditsExhausted, PAUSE, False, False, ["top up the Attestr account"]),
    "40015": (
        AttestrConsentRefused,
        PAUSE,
        True,
        False,
        ["check ATTESTR_CONSENT_PURPOSE", "ATTESTR_CONSENT_CATEGORIES"],
    ),
    "4016": (AttestrBadCredentials, PAUSE, True, False, ["check ATTESTR_API_KEY"]),
    "4031": (AttestrBadCredentials, PAUSE, True, False, ["check that ATTESTR_API_KEY is the token"]),
    "4035": (AttestrAccessDenied, PAUSE, False, False, ["not provisioned", "ask Attestr to provision it"]),
    "4039": (AttestrAccessDenied, PAUSE, False, False, ["add it to the account's allowed IPs"]),
    "40398": (AttestrConsentRefused, PAUSE, True, False, ["expired, revoked or used up", *CONSENT_FIX]),
    "40399": (
        AttestrConsentRefused,
        PAUSE,
        True,
        False,
        ["does not cover", *CONSENT_FIX, "ATTESTR_CONSENT_FIELD"],
    ),
    "40399 not allowed": (
        AttestrConsentRefused,
        PAUSE,
        True,
        False,
        ["its operations do not allow it", *CONSENT_FIX],
    ),
    "4291": (AttestrRateLimited, SOON, False, False, NOTHING_SOON),
    "4292": (AttestrRateLimited, SOON, False, False, NOTHING_SOON),
    "4293": (AttestrDailyLimit, RESET, False, False, NOTHING_TILL_RESET),
    "4294": (AttestrDailyLimit, RESET, False, False, NOTHING_TILL_RESET),
    "5001": (AttestrUnprocessable, ONCE, False, True, ["tried once more, then the job fails", "report it"]),
    # By HTTP status alone.
    "HTTP 401": (AttestrBadCredentials, PAUSE, True, False, ["check ATTESTR_API_KEY"]),
    "HTTP 403": (AttestrAccessDenied, PAUSE, False, False, ["check with Attestr", "ATTESTR_API_KEY"]),
    **{
        f"HTTP {status} on v3": (AttestrNotServed, PAUSE, True, False, ["check ATTESTR_API_URL"])
        for status in (404, 405, 410)
    },
    **{
        f"HTTP {status} on v2": (
            AttestrNotServed,
            PAUSE,
            True,
            False,
            ["check ATTESTR_API_URL", "set ATTESTR_API_VERSION=v3"],
        )
        for status in (404, 405, 410)
    },
    "HTTP 429": (AttestrRateLimited, SOON, False, False, NOTHING_SOON),
    **{
        f"HTTP {status}": (AttestrUnavailable, RETRY, False, True, ["nothing to do, it is tried again later"])
        for status in (500, 502, 503, 504)
    },
    "HTTP 409": (AttestrMalformedRequest, FAIL, False, False, ["report it with this message"]),
    "unknown code": (AttestrMalformedRequest, FAIL, False, False, ["report it with this message"]),
    # The refusal of a lookup without consent seen live: HTTP 400, `details` only.
    "HTTP 400 details": (AttestrConsentRefused, PAUSE, True, False, ["does not cover", *CONSENT_FIX]),
}


def _cases() -> list[Any]:
    """(name, HTTP status, code, Attestr's message, API version) of every case in DECIDED."""
    cases = [
        ("40399 not allowed" if message == NOT_ALLOWED else code, status, code, message, "v3")
        for status, code, message in DOCUMENTED + KNOWN
    ]
    cases.append(("40051 on v2", 400, "40051", DOCUMENTED[2][2], "v2"))
    cases += [
        (f"HTTP {status}", status, None, None, "v3") for status in (401, 403, 409, 429, 500, 502, 503, 504)
    ]
    cases += [
        (f"HTTP {status} on {version}", status, None, None, version)
        for status in (404, 405, 410)
        for version in ("v2", "v3")
    ]
    cases.append(("unknown code", 400, "9999", "Something new", "v3"))
    cases.append(("HTTP 400 details", 400, None, DOCUMENTED[11][2], "v3"))
    return [pytest.param(*case, id=case[0]) for case in cases]


CASES = _cases()


@pytest.mark.parametrize(("name", "status", "code", "message", "version"), CASES)
def test_each_code_is_decided_and_says_what_to_do(
    name: str, status: int, code: str | None, message: str | None, version: str
) -> None:
    kind, action, settings_fix, paid, must_say = DECIDED[name]
    if code is None and message:
        body: Any = {"details": message}
    elif code is None:
        body = "<html>an answer without a code</html>"
    else:
        body = {"httpStatusCode": status, "code": int(code), "message": message}
    fix = PER_LOOKUP_FIX if code == "40015" else REUSABLE_FIX
    error = error_from_response(
        status, body, version=version, consent=NAMED, consent_fix=fix, request_id="req-1"
    )
    assert type(error) is kind, error
    assert (error.action, error.settings_fix, error.paid) == (action, settings_fix, paid)
    assert (error.code, error.http_status, error.request_id) == (code, status, "req-1")
    for words in must_say:
        assert words in error.message, (words, error.message)
    if kind is not AttestrConsentRefused:  # what to do about a consent is said only for one
        assert fix not in error.message
    if code is not None:  # Attestr's own words are kept for the operator to read
        assert error.message.endswith(f"(code {code}: {message})")


def test_the_table_has_every_documented_row_and_each_decision_is_its_exception_s() -> None:
    """Every row of Attestr's code table (both of 40399's messages) is in REFUSALS with the
    status and message Attestr documents; every row's stated decision is what its exception
    does; and every row is one of the cases tested above."""
    rows = {(r.http_status, r.code, r.message) for r in REFUSALS if r.code}
    assert set(DOCUMENTED + KNOWN) == rows
    assert {(r.http_status, r.code, r.message) for r in REFUSALS if r.documented and r.code} == set(
        DOCUMENTED
    )
    assert [r for r in REFUSALS if r.kind.decision() is not r.decision] == []
    tested = {(case.values[1], case.values[2]) for case in CASES}
    assert {(r.http_status, r.code) for r in REFUSALS} <= tested
    assert {case.values[0] for case in CASES} == set(DECIDED)
    # The decisions the design names, each used.
    assert {r.decision for r in REFUSALS} == set(Decision)


# The exception the client must raise for each code the stand-in answers.
KIND_OF_CODE: dict[str, type[AttestrError]] = {name: kind for name, (kind, *_rest) in DECIDED.items()}

# Each code as the stand-in answers it: (the failure injected, the status and message it must
# answer with, the exception the client must raise).
OVER_HTTP = [
    *(
        pytest.param(
            (int(code), message) if message == NOT_ALLOWED else int(code),
            status,
            message,
            KIND_OF_CODE["40399 not allowed" if message == NOT_ALLOWED else code],
            id="40399 not allowed" if message == NOT_ALLOWED else code,
        )
        for status, code, message in DOCUMENTED + KNOWN
    ),
    # The stand-in's 5xx codes, read by their status.
    pytest.param(5000, 500, "Internal server error.", AttestrUnavailable, id="5000"),
    pytest.param(5030, 503, "Service unavailable.", AttestrUnavailable, id="5030"),
]


@pytest.mark.parametrize(("failure", "status", "message", "kind"), OVER_HTTP)
async def test_the_standin_answers_each_code_as_documented_and_the_client_reads_it(
    attestr: Running[AttestrStandIn],
    failure: int | tuple[int, str],
    status: int,
    message: str,
    kind: type[AttestrError],
) -> None:
    code = failure[0] if isinstance(failure, tuple) else failure
    attestr.standin.fail_next(CIN, failure, failure)  # once for the raw request, once for the client
    headers = {"Authorization": f"Basic {attestr.standin.token}"}
    async with httpx.AsyncClient(timeout=10) as http:
        raw = await http.post(attestr.url + PATH, json={"reg": CIN}, headers=headers)
    assert raw.status_code == status
    assert raw.json() == {"httpStatusCode": status, "code": code, "message": message}
    client = AttestrClient(attestr.url + PATH, attestr.standin.token)
    try:
        with pytest.raises(kind) as raised:
            await client.fetch(CIN)
    finally:
        await client.aclose()
    assert type(raised.value) is kind
    assert (raised.value.code, raised.value.http_status) == (str(code), status)
    assert raised.value.request_id  # the stand-in's xattestrid, as Attestr sends one
    assert f"(code {code}: {message})" in raised.value.message
    assert (await _fetch(attestr)).outcome == "synced"  # the injected failures are used up


@pytest.mark.parametrize("unserved", ["a wrong path", "the lookup's path withdrawn"])
async def test_a_path_not_served_answers_404_and_the_client_pauses_naming_the_url(
    attestr: Running[AttestrStandIn], unserved: str
) -> None:
    url = attestr.url + PATH
    if unserved == "a wrong path":
        url = attestr.url + "/api/v2/public/leadx/no-such-lookup"
    else:
        attestr.standin.unserved_paths.add(PATH)
    client = AttestrClient(url, attestr.standin.token)
    try:
        with pytest.raises(AttestrNotServed) as raised:
            await client.fetch(CIN)
    finally:
        await client.aclose()
    assert raised.value.http_status == 404 and raised.value.settings_fix
    assert "check ATTESTR_API_URL" in raised.value.message
    assert [(r["method"], r["status"]) for r in attestr.standin.not_served] == [("POST", 404)]
    assert attestr.standin.calls == []  # nothing served, nothing counted as a lookup


async def _fetch(attestr: Running[AttestrStandIn]) -> Any:
    client = AttestrClient(attestr.url + PATH, attestr.standin.token)
    try:
        return await client.fetch(CIN)
    finally:
        await client.aclose()
