"""A stand-in for Attestr's company-contacts API: V2 (`/api/v2/public/leadx/mca-cin-contact`) and
its consent-first V3 form (`/api/v3/public/leadx/mca-cin-contact`, with the consent endpoints).

It keeps what Attestr documents ("Company Directors Contact API",
https://docs.attestr.com/attestr-docs/mca-company-director-contact-lookup, and "API Error
Codes", https://docs.attestr.com/attestr-docs/delete-media-apin80): `Authorization: Basic
<token>` (else 401, code 4016); a JSON body whose only field is `reg` (a body with anything else
is refused as malformed, 400 code 4001: the documentation is silent about unknown fields, so
the stricter answer); a 200 with `valid`, `indexId`, `businessName` and `contacts`, or `valid:
false` for a CIN it has no data for; errors as `{httpStatusCode, code, message}`.

It answers from a table of companies and can be told (through `/_standin/…` or `AttestrStandIn`
directly) to answer slowly or to fail with any of Attestr's error codes. Every paid call is
counted.

V3 (DPDPA; https://docs.attestr.com/attestr-docs/migration-guide-to-dpdpa-compliant-api-version):
a lookup carries the id of a consent registered beforehand; the consents are in
`attestr_consents.py`, which lists the rules, and their endpoints in `attestr_consent_api.py`.
Here: the V3 lookup (rules 10 to 17), the `xattestrid` header on every answer (rule 3), V2
switched off on demand (rule 19) and the injected failures, V2's and V3's alike (rule 20). Each
rule's source is named where it is kept.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .attestr_consent_api import ConsentApi, authorise, json_object
from .attestr_consents import (
    CONSENT_PATH,
    MISSING_CONSENT,
    NOT_ALLOWED,
    REQUIRED_CATEGORIES,
    SERVICE_CODE,
    STANDIN_CONSENT_ID,
    AttestrError,
    ConsentRegistry,
    standin_consent_body,
)

# Importable from here: the interface the service's tests and the demo use.
__all__ = [
    "CONSENT_PATH",
    "PATH",
    "PATH_V3",
    "REQUIRED_CATEGORIES",
    "SAMPLE_COMPANIES",
    "SERVICE_CODE",
    "STANDIN_CONSENT_ID",
    "TIMEOUT",
    "AttestrError",
    "AttestrStandIn",
]

PATH = "/api/v2/public/leadx/mca-cin-contact"
# Rule 1: not documented for this product, whose page still shows v2; every V3 page says "Use
# "v3"" in the same place of the path (https://docs.attestr.com/attestr-docs/delete-media-apin80).
PATH_V3 = "/api/v3/public/leadx/mca-cin-contact"
TIMEOUT = 0  # a "failure code" that makes the stand-in hang instead of answering
# A "failure code": a 200 whose body stops partway, the connection closed inside it (a lookup
# answered, so billed, whose answer never arrived whole).
CUT_OFF = -1
# An injected failure: an Attestr code, or (code, message) for a code the table documents with a
# second message (40399's NOT_ALLOWED; …/delete-media-apin80), or TIMEOUT.
Failure = int | tuple[int, str]

# "API Error Codes" (https://docs.attestr.com/attestr-docs/delete-media-apin80): HTTP status and
# message of each code. 40399 has a second message, NOT_ALLOWED (see `_SECOND_MESSAGES`).
_ERRORS: dict[int, tuple[int, str]] = {
    4001: (400, "Malformed data or missing required parameter values"),
    4002: (400, "Consent with given reference ID does not exist"),
    4003: (400, "Consent valid till time is less than current time"),
    4005: (400, "Operation could not be performed due to low credits balance"),
    40015: (400, "Missing required data categories for the provided service(s)"),
    40051: (400, "This endpoint does not support the provided version."),
    4016: (401, "Invalid client authorization"),
    4031: (403, "Unauthorized access"),
    4035: (403, "Requested service is not provisioned for your account"),
    4039: (403, "Client's IP address is not whitelisted"),
    40398: (403, "Invalid consent to process the request"),
    40399: (403, MISSING_CONSENT),
    4291: (429, "Maximum account rate limit exceeded"),
    4292: (429, "Maximum API rate limit exceeded"),
    4293: (429, "Maximum account daily limit exceeded"),
    4294: (429, "Maximum API daily limit exceeded"),
    5001: (500, "Request could not be processed."),
    5000: (500, "Internal server error."),
    5030: (503, "Service unavailable."),
}
_SECOND_MESSAGES: dict[int, str] = {40399: NOT_ALLOWED}


def _director(din: str, name: str, phone: str | None, email: str | None, city: str) -> dict[str, Any]:
    return {
        "indexId": din,
        "fullName": name,
        "mobileNumber": phone,
        "emailAddress": email,
        "addresses": [
            {
                "line1": "Registered office",
                "city": city,
                "state": "",
                "country": "India",
                "zip": "",
                "fullAddress": f"Registered office, {city}, India",
            }
        ],
    }


# Sample companies for `contact-sync demo` and the tests: written the way Attestr writes them
# (upper-case names, phones with and without the country code, a director on two boards).
SAMPLE_COMPANIES: dict[str, dict[str, Any]] = {
    "U72200KA2015PTC081234": {
        "valid": True,
        "indexId": "U72200KA2015PTC081234",
        "businessName": "NILGIRI SOFTWARE PRIVATE LIMITED",
        "contacts": [
            _director("07123456", "ANANYA RAO", "+91 98450 12345", "Ananya.Rao@nilgiri.example", "Bengaluru"),
            _director("08234567", "VIKRAM SETHI", "09845012346", "vikram@nilgiri.example", "Bengaluru"),
            _director("08345678", "MEERA KRISHNAN", "9845012347", None, "Mysuru"),
        ],
    },
    "U51909MH2018PTC309876": {
        "valid": True,
        "indexId": "U51909MH2018PTC309876",
        "businessName": "KONKAN TRADERS PRIVATE LIMITED",
        "contacts": [
            _director("08234567", "Vikram  Sethi", "919845012346", "VIKRAM@NILGIRI.EXAMPLE", "Mumbai"),
            _director("09456789", "FARAH KHAN", "022 2345 6789", "farah@konkan.example", "Mumbai"),
        ],
    },
    "U01100DL2020PTC365432": {
        "valid": False,
        "message": "No data found for the given CIN.",
    },
}


@dataclass
class AttestrStandIn:
    token: str = "standin-attestr-token"
    companies: dict[str, dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(SAMPLE_COMPANIES))
    delay_s: float = 0.0
    # Errors to answer with before the real answer, per CIN ("*" for every CIN): Attestr codes
    # (or (code, message), `Failure`), or TIMEOUT to answer only after `hang_s` (longer than the
    # client waits).
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    # Every call fails with this code until it is cleared (credits exhausted, say).
    persistent_failure: int | None = None
    # A share of calls fails at random with one of `random_codes`.
    failure_rate: float = 0.0
    random_codes: list[int] = field(default_factory=lambda: [5000, 5030, 4291, TIMEOUT])
    hang_s: float = 5.0
    seed: int = 7
    # Every lookup that passed authentication, body and consent checks (what is paid for):
    # {"cin", "at", "version": "v2"|"v3", "consent_id" (None for v2), "arrived" and "answered"
    # (monotonic; "answered" only for an answer with data)}.
    calls: list[dict[str, Any]] = field(default_factory=list)
    # Rule 19: every `/api/v2/…` request is refused with 40051, as once V2 is switched off.
    v2_switched_off: bool = False
    # Rule 10: also take `"consent": [{"consentId": …}]` ([3rd-party], not confirmed).
    consent_as_array: bool = False
    # Rule 11: a lookup without a consent gets the 400 `{"details": …}` seen live ([3rd-party]).
    missing_consent_as_400: bool = False
    consents: ConsentRegistry = field(default_factory=ConsentRegistry)
    # V3 lookups refused for their consent, not paid for: {"cin", "consent_id", "code", "at"}.
    refused: list[dict[str, Any]] = field(default_factory=list)
    # Paths answered 404 as a path nothing serves is (an address withdrawn, or not there yet),
    # though the stand-in serves them otherwise: the lookup's, say, until it is removed from here.
    unserved_paths: set[str] = field(default_factory=set)
    # Every request answered 404 or 405 (a path or a method not served), refused before any
    # check: {"method", "path", "status", "at"}. Attestr documents no answer for these.
    not_served: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self.consents.register(standin_consent_body(self.consents.now()), STANDIN_CONSENT_ID)

    def fail_next(self, cin: str, *codes: Failure) -> None:
        """The next lookups of `cin` ("*": of any CIN) fail with these codes, in order; a code
        with a second documented message (40399) is given with it: `(40399, NOT_ALLOWED)`."""
        self.failures.setdefault(cin, []).extend(codes)

    def calls_for(self, cin: str) -> int:
        return sum(1 for c in self.calls if c["cin"] == cin)

    # --- consents, as the register API and the controls make and change them ---

    def register_consent(self, **fields: Any) -> str:
        """The register API's body as keywords (`consentPurpose=…`) → the consent's id; a refusal
        raises AttestrError (a ValueError) whose `code` is Attestr's."""
        return self.consents.register(fields).id

    def revoke_consent(self, consent_id: str) -> None:
        self.consents.revoke(consent_id)

    def expire_consent(self, consent_id: str) -> None:
        """Its validity ends a second ago."""
        self.consents.expire(consent_id)

    def consent_status(self, consent_id: str) -> str:
        """One of "active", "consumed", "expired", "revoked" ("registered" before consentValidFrom)."""
        return self.consents.get(consent_id).status(self.consents.now())

    def _next_failure(self, cin: str) -> Failure | None:
        for key in (cin, "*"):
            if self.failures.get(key):
                return self.failures[key].pop(0)
        if self.persistent_failure is not None:
            return self.persistent_failure
        if self.failure_rate and self._random.random() < self.failure_rate:
            return self._random.choice(self.random_codes)
        return None

    # --- the lookups ---

    async def answer(self, request: Request) -> Response:
        """V2: `{"reg": CIN}` and nothing else → the company's answer."""
        authorise(request, self.token)
        cin = _cin(await json_object(request), {"reg"})
        return await self._paid(cin, "v2", None)

    async def answer_v3(self, request: Request) -> Response:
        """V3: `{"reg": CIN, "consent": {"consentId": ID}}` → once the consent admits it (rules 11 to
        15), V2's answer (rule 17: the product's page, linked above, documents one response shape)."""
        authorise(request, self.token)
        body = await json_object(request)
        cin = _cin(body, {"reg", "consent"})
        consent_id = _consent_id(body, as_array=self.consent_as_array)
        try:
            consent = self.consents.admit(consent_id, SERVICE_CODE)
        except AttestrError as refusal:
            return self._refuse(cin, consent_id, refusal)
        succeeded = False
        try:
            response = await self._paid(cin, "v3", consent.id)
            succeeded = response.status_code == 200  # rule 16: only a success uses it up
        finally:
            self.consents.settle(consent, succeeded)
        return response

    def _refuse(self, cin: str, consent_id: str | None, refusal: AttestrError) -> Response:
        """A lookup refused for its consent: noted in `refused`, not paid for."""
        self.refused.append({"cin": cin, "consent_id": consent_id, "code": refusal.code, "at": time.time()})
        if consent_id is None and self.missing_consent_as_400:
            # Rule 11's variant, [3rd-party] "observed live": HTTP 400, only `details`, no code.
            return JSONResponse({"details": MISSING_CONSENT}, status_code=400)
        return _error(refusal.code, refusal.message, refusal.details)

    async def _paid(self, cin: str, version: str, consent_id: str | None) -> Response:
        """A lookup past every check: counted, then slowed, failed as told with any code of
        …/delete-media-apin80 (rule 20), or answered."""
        # `arrived`, `answered`: this process's monotonic clock, for the benchmarks' gaps.
        call = {
            "cin": cin,
            "at": time.time(),
            "arrived": time.monotonic(),
            "version": version,
            "consent_id": consent_id,
        }
        self.calls.append(call)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if (failure := self._next_failure(cin)) is not None:
            if failure == TIMEOUT:
                await asyncio.sleep(self.hang_s)
            elif failure == CUT_OFF:
                return StreamingResponse(_cut_off(), media_type="application/json")
            else:
                return _error(*failure) if isinstance(failure, tuple) else _error(failure)
        data = copy.deepcopy(
            self.companies.get(cin) or {"valid": False, "message": "No data found for the given CIN."}
        )
        # Escaped as JSON may escape anything (RFC 8259): a lone surrogate arrives as \ud800.
        body = json.dumps(data)
        call["answered"] = time.monotonic()
        return Response(body, media_type="application/json")

    # --- control, for tests, the demo and benchmarks in other processes ---

    async def _put_company(self, request: Request) -> JSONResponse:
        self.companies[request.path_params["cin"]] = await request.json()
        return JSONResponse({"ok": True})

    async def _fail(self, request: Request) -> JSONResponse:
        body = await request.json()  # {"codes": [4005, [40399, "You are not allowed …"], …]}
        codes = [tuple(code) if isinstance(code, list) else code for code in body["codes"]]
        self.fail_next(request.path_params["cin"], *codes)
        return JSONResponse({"ok": True})

    async def _settings(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.delay_s = float(body.get("delay_s", self.delay_s))
        self.failure_rate = float(body.get("failure_rate", self.failure_rate))
        self.persistent_failure = body.get("persistent_failure", self.persistent_failure)
        for flag in _FLAGS:
            setattr(self, flag, bool(body.get(flag, getattr(self, flag))))
        return JSONResponse(
            {
                "delay_s": self.delay_s,
                "failure_rate": self.failure_rate,
                "persistent_failure": self.persistent_failure,
                **{flag: getattr(self, flag) for flag in _FLAGS},
            }
        )

    async def _register(self, request: Request) -> JSONResponse:
        """`POST /_standin/consents`: the register API's body, without authentication."""
        consent = self.consents.register(await json_object(request))
        return JSONResponse({"_id": consent.id, "number": consent.number})

    async def _change_consent(self, request: Request) -> JSONResponse:
        """`POST /_standin/consents/{id}/revoke` or `…/expire` → `{_id, status}`."""
        consent_id, verb = request.path_params["id"], request.url.path.rsplit("/", 1)[1]
        (self.revoke_consent if verb == "revoke" else self.expire_consent)(consent_id)
        return JSONResponse({"_id": consent_id, "status": self.consent_status(consent_id)})

    async def _calls(self, _request: Request) -> JSONResponse:
        return JSONResponse({"calls": self.calls, "refused": self.refused, "not_served": self.not_served})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(PATH, self.answer, methods=["POST"]),
                Route(PATH_V3, self.answer_v3, methods=["POST"]),
                *ConsentApi(self).routes(),
                Route("/_standin/companies/{cin}", self._put_company, methods=["PUT"]),
                Route("/_standin/companies/{cin}/failures", self._fail, methods=["POST"]),
                Route("/_standin/settings", self._settings, methods=["PUT"]),
                Route("/_standin/calls", self._calls, methods=["GET"]),
                Route("/_standin/consents", self._register, methods=["POST"]),
                Route("/_standin/consents/{id}/revoke", self._change_consent, methods=["POST"]),
                Route("/_standin/consents/{id}/expire", self._change_consent, methods=["POST"]),
            ],
            middleware=[Middleware(_Envelope, standin=self)],
            exception_handlers={AttestrError: _refusal},
        )


_FLAGS = ("v2_switched_off", "consent_as_array", "missing_consent_as_400")


class _Envelope:
    """Rule 3: every answer, errors and the controls' included, carries a fresh `xattestrid`
    (https://docs.attestr.com/v1/attestr-docs/api-request-tracing; its format is not documented:
    24 hex digits here). Rule 19: with V2 switched off, every `/api/v2/…` request, whatever its
    method or credentials, is 400/40051 (no answer is documented for a switched-off V2: the
    nearest documented row, https://docs.attestr.com/attestr-docs/delete-media-apin80). A path in
    `unserved_paths` is answered 404 as an unknown one is (Starlette's plain "Not Found": Attestr
    documents no answer for a path it does not serve); every 404 and 405 is noted in `not_served`."""

    def __init__(self, app: ASGIApp, standin: AttestrStandIn) -> None:
        self.app, self.standin = app, standin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace_id = secrets.token_hex(12)

        async def traced(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("xattestrid", trace_id)
                if message["status"] in (404, 405):  # a path or a method not served
                    self.standin.not_served.append(
                        {
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": message["status"],
                            "at": time.time(),
                        }
                    )
            await send(message)

        if self.standin.v2_switched_off and scope["path"].startswith("/api/v2/"):
            await _error(40051)(scope, receive, traced)
        elif scope["path"] in self.standin.unserved_paths:
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, traced)
        else:
            await self.app(scope, receive, traced)


def _cin(body: dict[str, Any], allowed: set[str]) -> str:
    """`reg`, a non-empty string; a field outside `allowed` is malformed, 4001 (the documentation
    is silent about unknown fields, so the stricter answer)."""
    cin = body.get("reg")
    if not isinstance(cin, str) or not cin or set(body) - allowed:
        raise AttestrError(4001)
    return cin


def _consent_id(body: dict[str, Any], *, as_array: bool) -> str | None:
    """Rule 10: `{"consent": {"consentId": ID}}` ([3rd-party], checked live); `[{"consentId": ID}]`
    with `as_array` ([3rd-party], not confirmed). Anywhere else (a header, another key inside
    `consent`, a bare string) is no consent: None. A `consent` object with more than `consentId`,
    or an id that is not a string, is malformed, 4001 (not documented: the stricter behaviour)."""
    consent = body.get("consent")
    if as_array and isinstance(consent, list) and len(consent) == 1:
        consent = consent[0]
    if not isinstance(consent, dict) or "consentId" not in consent:
        return None
    if set(consent) != {"consentId"} or not isinstance(consent["consentId"], str):
        raise AttestrError(4001, details="consent must be {consentId: string}")
    return consent["consentId"] or None


async def _refusal(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AttestrError)
    return _error(exc.code, exc.message, exc.details)


def _error(code: int, message: str | None = None, details: str | None = None) -> JSONResponse:
    """Rule 3 (…/delete-media-apin80): `{httpStatusCode, code, message}`, plus `details` when given."""
    status, default = _ERRORS.get(code, (500, "Internal server error."))
    body: dict[str, Any] = {
        "httpStatusCode": status,
        "code": code,
        "message": message if message and message == _SECOND_MESSAGES.get(code) else default,
    }
    if details:
        body["details"] = details
    return JSONResponse(body, status_code=status)


async def _cut_off() -> AsyncIterator[bytes]:
    yield b'{"valid": true, "businessName": "'
    raise ConnectionResetError("the stand-in cuts the answer off")  # uvicorn closes the connection
