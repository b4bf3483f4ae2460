"""The Attestr stand-in's V3 consent endpoints (rules 1, 2, 8, 9 and 18 of `attestr_consents`):
register, data categories, a consent's details, the audit export and its poll."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .attestr_consents import (
    ASYNC_PATH,
    CONSENT_PATH,
    PURPOSES,
    AttestrError,
    ConsentRegistry,
    choice_of,
    service_codes,
)

if TYPE_CHECKING:
    from .attestr import AttestrStandIn


def authorise(request: Request, token: str) -> None:
    """Rule 2: `Authorization: Basic <token>` on every endpoint, else 401/4016
    (…/dpdpa-register-consent-api and each V3 page; …/delete-media-apin80)."""
    if request.headers.get("authorization") != f"Basic {token}":
        raise AttestrError(4016)


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, else 400/4001 "Malformed data …" (…/delete-media-apin80)."""
    try:
        body = await request.json()
    except ValueError:
        raise AttestrError(4001) from None
    if not isinstance(body, dict):
        raise AttestrError(4001)
    return body


@dataclass
class ConsentApi:
    """The consent endpoints of `standin` (its `/_standin/consents…` controls are in `attestr`)."""

    standin: AttestrStandIn

    @property
    def registry(self) -> ConsentRegistry:
        return self.standin.consents

    async def register(self, request: Request) -> JSONResponse:
        """Rule 8: 200 `{_id, number}` ([3rd-party]; the export answers the same way, "Http Status 200")."""
        authorise(request, self.standin.token)
        consent = self.registry.register(await json_object(request))
        return JSONResponse({"_id": consent.id, "number": consent.number})

    async def data_categories(self, request: Request) -> JSONResponse:
        """Rule 9 (…/dpdpa-consent-data-categories-api): `{type, services: [{service, options?}]}` →
        `{"categories": [{category, values}]}`; the answer's shape is not documented (a fixture)."""
        authorise(request, self.standin.token)
        body = await json_object(request)
        if set(body) - {"type", "services"}:
            raise AttestrError(4001, details="the body takes type and services")
        choice_of(body, "type", PURPOSES)
        services = service_codes(body)
        if any(service not in self.registry.offers for service in services):
            raise AttestrError(4035)
        return JSONResponse({"categories": self.registry.categories_for(services)})

    async def details(self, request: Request) -> JSONResponse:
        """Rule 18 (…/dpdpa-get-consent-details-lifecycle-api): `{_id, number, requestId, status,
        data, metadata}`; `metadata` is "Populated only for hosted pages", so empty here."""
        authorise(request, self.standin.token)
        consent = self.registry.get(request.path_params["id"])
        answer = {"_id": consent.id, "number": consent.number, "requestId": secrets.token_hex(12)}
        answer |= {"status": consent.status(self.registry.now()), "data": consent.data, "metadata": {}}
        return JSONResponse(answer)

    async def export(self, request: Request) -> JSONResponse:
        """The audit export (…/dpdpa-export-consent-audit-trail-api): 200 `{_id, number}`."""
        authorise(request, self.standin.token)
        job = self.registry.export(request.path_params["id"])
        return JSONResponse({"_id": job["_id"], "number": job["number"]})

    async def async_status(self, request: Request) -> JSONResponse:
        """The export's poll; an unknown id is 400/4001 (not documented: the stricter behaviour)."""
        authorise(request, self.standin.token)
        job = self.registry.exports.get(request.path_params["id"])
        if job is None:
            raise AttestrError(4001, details="unknown async request")
        return JSONResponse(job)

    def routes(self) -> list[Route]:
        """Rule 1's consent endpoints."""
        return [
            Route(f"{CONSENT_PATH}/register", self.register, methods=["POST"]),
            Route(f"{CONSENT_PATH}/data-categories", self.data_categories, methods=["POST"]),
            Route(f"{CONSENT_PATH}/{{id}}", self.details, methods=["GET"]),
            Route(f"{CONSENT_PATH}/{{id}}/export", self.export, methods=["POST"]),
            Route(f"{ASYNC_PATH}/{{id}}", self.async_status, methods=["GET"]),
        ]
