"""A stand-in for Attestr's company-contacts API (`/api/v2/public/leadx/mca-cin-contact`).

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
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PATH = "/api/v2/public/leadx/mca-cin-contact"
TIMEOUT = 0  # a "failure code" that makes the stand-in hang instead of answering

# "API Error Codes": HTTP status and message of each code.
_ERRORS: dict[int, tuple[int, str]] = {
    4001: (400, "Malformed data or missing required parameter values"),
    4005: (400, "Operation could not be performed due to low credits balance"),
    4016: (401, "Invalid client authorization"),
    4031: (403, "Unauthorized access"),
    4035: (403, "Requested service is not provisioned for your account"),
    4039: (403, "Client's IP address is not whitelisted"),
    4291: (429, "Maximum account rate limit exceeded"),
    4292: (429, "Maximum API rate limit exceeded"),
    4293: (429, "Maximum account daily limit exceeded"),
    4294: (429, "Maximum API daily limit exceeded"),
    5001: (500, "Request could not be processed."),
    5000: (500, "Internal server error."),
    5030: (503, "Service unavailable."),
}


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
    # Errors to answer with before the real answer, per CIN ("*" for every CIN): Attestr codes,
    # or TIMEOUT to answer only after `hang_s` (longer than the client waits).
    failures: dict[str, list[int]] = field(default_factory=dict)
    # Every call fails with this code until it is cleared (credits exhausted, say).
    persistent_failure: int | None = None
    # A share of calls fails at random with one of `random_codes`.
    failure_rate: float = 0.0
    random_codes: list[int] = field(default_factory=lambda: [5000, 5030, 4291, TIMEOUT])
    hang_s: float = 5.0
    seed: int = 7
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def fail_next(self, cin: str, *codes: int) -> None:
        self.failures.setdefault(cin, []).extend(codes)

    def calls_for(self, cin: str) -> int:
        return sum(1 for c in self.calls if c["cin"] == cin)

    def _next_failure(self, cin: str) -> int | None:
        for key in (cin, "*"):
            if self.failures.get(key):
                return self.failures[key].pop(0)
        if self.persistent_failure is not None:
            return self.persistent_failure
        if self.failure_rate and self._random.random() < self.failure_rate:
            return self._random.choice(self.random_codes)
        return None

    async def answer(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Basic {self.token}":
            return _error(4016)
        try:
            body = await request.json()
        except ValueError:
            return _error(4001)
        cin = body.get("reg") if isinstance(body, dict) else None
        if not isinstance(cin, str) or not cin or set(body) != {"reg"}:
            return _error(4001)
        self.calls.append({"cin": cin, "at": time.time()})
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if (code := self._next_failure(cin)) is not None:
            if code == TIMEOUT:
                await asyncio.sleep(self.hang_s)
            else:
                return _error(code)
        data = copy.deepcopy(
            self.companies.get(cin) or {"valid": False, "message": "No data found for the given CIN."}
        )
        # Escaped as JSON may escape anything (RFC 8259): a lone surrogate arrives as \ud800.
        return Response(json.dumps(data), media_type="application/json")

    # --- control, for tests, the demo and benchmarks in other processes ---

    async def _put_company(self, request: Request) -> JSONResponse:
        self.companies[request.path_params["cin"]] = await request.json()
        return JSONResponse({"ok": True})

    async def _fail(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.fail_next(request.path_params["cin"], *body["codes"])
        return JSONResponse({"ok": True})

    async def _settings(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.delay_s = float(body.get("delay_s", self.delay_s))
        self.failure_rate = float(body.get("failure_rate", self.failure_rate))
        self.persistent_failure = body.get("persistent_failure", self.persistent_failure)
        return JSONResponse(
            {
                "delay_s": self.delay_s,
                "failure_rate": self.failure_rate,
                "persistent_failure": self.persistent_failure,
            }
        )

    async def _calls(self, _request: Request) -> JSONResponse:
        return JSONResponse({"calls": self.calls})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(PATH, self.answer, methods=["POST"]),
                Route("/_standin/companies/{cin}", self._put_company, methods=["PUT"]),
                Route("/_standin/companies/{cin}/failures", self._fail, methods=["POST"]),
                Route("/_standin/settings", self._settings, methods=["PUT"]),
                Route("/_standin/calls", self._calls, methods=["GET"]),
            ]
        )


def _error(code: int) -> JSONResponse:
    status, message = _ERRORS.get(code, (500, "Internal server error."))
    return JSONResponse({"httpStatusCode": status, "code": code, "message": message}, status_code=status)
