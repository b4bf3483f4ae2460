"""The Attestr client: the only module that knows Attestr's request and answer shapes.

V2 (`/api/v2/…`, deprecated by Attestr) and V3 (consent-first) are both served, as
ATTESTR_API_VERSION says: a V3 lookup carries a consent id (consent.py) and V3's consent
endpoints are called from here too. Every Attestr error becomes a typed exception (errors.py).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from service.attestr.consent import Consent
from service.attestr.errors import (
    AttestrAccessDenied,
    AttestrAnswerTooLarge,
    AttestrAnswerUnreadable,
    AttestrConsentRefused,
    AttestrNotConfigured,
    AttestrUnavailable,
    error_from_response,
)
from service.config import Settings
from service.database import storable
from service.identifiers import plain
from service.logs import mask_text
from service.people.normalize import Contact, merged_by_identity, normalize_contact

log = structlog.get_logger(__name__)

# A hundred contacts, each with a few addresses, are well under 200 KB: an answer larger than
# this is not a contact list, and is refused as it arrives rather than held in memory.
MAX_ANSWER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class AttestrAnswer:
    """A 200 answer: the company's contacts, or `valid: false` (no data for that CIN)."""

    cin: str
    valid: bool
    business_name: str | None
    contacts: list[Contact]
    message: str | None
    raw: dict[str, Any]
    request_id: str | None = None  # Attestr's `xattestrid` for this call (not for a stored answer)
    left_out: int = 0  # contacts listed beyond ATTESTR_MAX_CONTACTS, not read

    @property
    def outcome(self) -> str:
        return "synced" if self.valid and self.contacts else "no_data"


def parse_answer(cin: str, raw: Any, max_contacts: int) -> AttestrAnswer:
    """Read a 200 answer (fresh, or from the stored cache), trusting none of its fields: no more
    than the `max_contacts` asked for are read, however many came; how many were not is
    `left_out`."""
    raw = raw if isinstance(raw, dict) else {}
    valid = raw.get("valid") is True or str(raw.get("valid")).lower() == "true"
    listed = raw.get("contacts") if isinstance(raw.get("contacts"), list) else []
    contacts = [c for c in map(normalize_contact, listed[:max_contacts]) if c] if valid else []
    contacts, merged = merged_by_identity(contacts)
    if merged:
        log.warning("attestr.duplicate_identity", merged=merged, hint="contacts sharing a DIN or PAN, merged")
    return AttestrAnswer(
        cin=cin,
        valid=valid,
        business_name=plain(raw.get("businessName"), 300),
        contacts=contacts,
        message=mask_text(plain(raw.get("message"), 300) or "") or None,
        raw=raw,
        left_out=max(len(listed) - max_contacts, 0) if valid else 0,
    )


class AttestrClient:
    """Attestr's lookup (and, on V3, its consent endpoints) over one HTTP connection pool.

    `url`: the lookup's address; `version`: "v2" or "v3"; `consent_url`: V3's consent endpoints
    (`…/api/v3/public/consent`); `consent_in_array`: send the consent as a one-item list (seen in
    one integration; the object is what the other, checked live, sends)."""

    def __init__(
        self,
        url: str,
        api_key: str | None,
        *,
        version: str = "v2",
        consent_url: str | None = None,
        consent_in_array: bool = False,
        max_contacts: int = 100,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.api_key = api_key
        self.version = version
        self.consent_url = consent_url
        self.consent_in_array = consent_in_array
        self.max_contacts = max_contacts
        self._http = httpx.AsyncClient(timeout=timeout_s, transport=transport)
        self._timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> AttestrClient:
        """The client the settings describe (ATTESTR_API_URL, _API_KEY, _API_VERSION, …)."""
        v3 = settings.attestr_api_version == "v3"
        return cls(
            settings.attestr_api_url,
            settings.attestr_api_key,
            version=settings.attestr_api_version,
            consent_url=settings.attestr_consent_url if v3 else None,
            consent_in_array=settings.attestr_consent_in_array,
            max_contacts=settings.attestr_max_contacts,
            timeout_s=settings.attestr_timeout_s,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def fetch(
        self, cin: str, consent: Consent | None = None, *, consent_named: str = "", consent_fix: str = ""
    ) -> AttestrAnswer:
        """One paid call: the contacts of the company with this CIN or LLPIN.

        The body is what Attestr documents and nothing more ("Company Directors Contact API",
        https://docs.attestr.com/attestr-docs/mca-company-director-contact-lookup: `reg`, the
        CIN or LLPIN, required): a field it does not know could be refused as malformed (4001)
        and fail every job. `max_contacts` is applied to the answer instead. On V3 the body also
        carries `consent: {"consentId": …}`: Attestr's pages say only that the id "must be
        passed"; that key and shape come from an integration checked against the live API.
        `consent_named`/`consent_fix`: how a consent refusal's sentence names the consent and
        what it tells the operator to do (consent.py)."""
        body: dict[str, Any] = {"reg": cin}
        if self.version == "v3" and consent is not None:
            carried = {"consentId": consent.id}
            body["consent"] = [carried] if self.consent_in_array else carried
        _status, answer, request_id = await self._call(
            "POST", self.url, body, consent_named=consent_named, consent_fix=consent_fix
        )
        if not isinstance(answer, dict):
            raise _unreadable("with a body that is not a JSON object", request_id)
        parsed = parse_answer(cin, answer, self.max_contacts)
        return AttestrAnswer(**{**parsed.__dict__, "request_id": request_id})

    async def register_consent(self, body: dict[str, Any], *, consent_fix: str = "") -> Consent:
        """V3's Register Consent API (`POST …/consent/register`): the new consent, `single_use`.
        Raises AttestrConsentRefused for what Attestr refuses about the consent (40015 missing
        data categories, 4003 validity), other AttestrErrors as for a lookup."""
        try:
            _status, answer, request_id = await self._call(
                "POST", f"{self._consent_base()}/register", body, consent_fix=consent_fix
            )
        except AttestrAccessDenied as exc:
            if exc.code != "4035":
                raise
            # Not provisioned: here, the service code the consent names (a setting), not the token.
            services = body.get("services") or [{}]
            raise AttestrConsentRefused(
                f"Attestr refused to register a consent for ATTESTR_SERVICE_CODE="
                f"{services[0].get('service')}: not a service of this account (code 4035): check the "
                "code in Attestr's console",
                code=exc.code,
                http_status=exc.http_status,
                request_id=exc.request_id,
            ) from exc
        consent_id = plain(answer.get("_id"), 64) if isinstance(answer, dict) else None
        if consent_id is None:
            raise AttestrUnavailable(
                "Attestr registered a consent but its answer had no `_id`", request_id=request_id
            )
        return Consent(consent_id, plain(answer.get("number"), 64), "single_use")

    async def consent_details(self, consent_id: str) -> dict[str, Any]:
        """V3's Track Consent Lifecycle API (`GET …/consent/{id}`): `{_id, number, requestId,
        status, data, metadata}` as Attestr answers it (a field may be missing)."""
        _status, answer, _request_id = await self._call(
            "GET", f"{self._consent_base()}/{consent_id}", None, consent_named=consent_id
        )
        return answer if isinstance(answer, dict) else {}

    async def data_categories(self, purpose: str, service: str) -> Any:
        """V3's Data Categories API (`POST …/consent/data-categories`, body `{type, services}`):
        its answer as given (the shape is not documented)."""
        body = {"type": purpose, "services": [{"service": service}]}
        return (await self._call("POST", f"{self._consent_base()}/data-categories", body))[1]

    def _consent_base(self) -> str:
        if not self.consent_url:
            raise AttestrNotConfigured("Attestr's consent endpoints are V3's: set ATTESTR_API_VERSION=v3")
        return self.consent_url

    async def _call(
        self,
        method: str,
        url: str,
        body: dict[str, Any] | None,
        *,
        consent_named: str = "",
        consent_fix: str = "",
    ) -> tuple[int, Any, str | None]:
        """One request: (status, the JSON answer or None, Attestr's `xattestrid`), or the typed
        error for a refusal, a timeout, or an error carried in a 200."""
        if not self.api_key:
            raise AttestrNotConfigured("ATTESTR_API_KEY is not set: add the Attestr auth token")
        response: httpx.Response | None = None
        request_id: str | None = None
        try:
            # One deadline for the whole call: httpx's timeout bounds each read, and an answer
            # trickling a byte at a time would hold the job for ever.
            async with (
                asyncio.timeout(self._timeout_s),
                self._http.stream(
                    method,
                    url,
                    json=body,
                    # The token is sent as Attestr issues it (already encoded), never re-encoded.
                    headers={"Authorization": f"Basic {self.api_key}", "Accept": "application/json"},
                ) as response,
            ):
                request_id = plain(response.headers.get("xattestrid"), 100)
                content = await _read_bounded(response)
        except (TimeoutError, httpx.HTTPError) as exc:
            if response is not None and response.status_code == 200:  # answered, so billed
                how = (
                    "past the call's deadline"
                    if isinstance(exc, TimeoutError | httpx.TimeoutException)
                    else (f"cut off ({type(exc).__name__})")
                )
                raise _unreadable(how, request_id) from exc
            if isinstance(exc, TimeoutError | httpx.TimeoutException):
                raise AttestrUnavailable(f"Attestr did not answer within {self._timeout_s:g} s") from exc
            raise AttestrUnavailable(f"Attestr could not be reached ({type(exc).__name__})") from exc
        try:
            answer = storable(json.loads(content))
        except (ValueError, UnicodeDecodeError, RecursionError):
            answer = None
        status = response.status_code
        if status == 200 and isinstance(answer, dict) and "valid" not in answer and "code" in answer:
            # An error carried in a 200.
            carried = answer.get("httpStatusCode")
            status = carried if isinstance(carried, int) and carried != 200 else 500
        if status != 200:
            raise error_from_response(
                status,
                answer,
                version=self.version,
                consent=consent_named,
                consent_fix=consent_fix,
                request_id=request_id,
            )
        return status, answer, request_id


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


def _unreadable(how: str, request_id: str | None) -> AttestrAnswerUnreadable:
    return AttestrAnswerUnreadable(
        f"Attestr answered 200 but its answer could not be read ({how}). It was paid for, so it is "
        "not asked for again: `contact-sync jobs retry` asks (and pays) once more",
        http_status=200,
        request_id=request_id,
    )


def _too_large(how: str) -> AttestrAnswerTooLarge:
    return AttestrAnswerTooLarge(
        f"Attestr's answer was too large to be a contact list ({how}; the limit is "
        f"{MAX_ANSWER_BYTES:,}). It was paid for, so it is not asked for again: report it to Attestr",
        http_status=200,
    )
