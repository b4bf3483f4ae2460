"""The Attestr stand-in's V3 consents (DPDPA): the registry, and what a lookup needs of a consent.

The rules, numbered where they are kept (here, in `attestr_consent_api.py` and in `attestr.py`).
Each names its source where it is kept: a page under https://docs.attestr.com/attestr-docs/,
"[3rd-party]" (other customers' public integration code, checked against the live API), or "not
documented: the stricter behaviour", so that a client written against the stand-in relies on no
leniency.

 1. The endpoints: register, data categories, a consent's details, its audit export and the
    export's poll, and the lookup, all under `/api/v3/public/`.
 2. Every endpoint wants `Authorization: Basic <token>`, else 401/4016.
 3. Errors are `{httpStatusCode, code, message}` (+ `details`); every answer has an `xattestrid`.
 4. Register: `consentPurpose` one of the two purposes and non-empty `services`, else 400/4001.
 5. Register: `consentValidTill` in the past is 400/4003.
 6. Register: data categories short of what the service needs are 400/40015.
 7. Register: a service the account has not been given is 403/4035.
 8. Register: 200 `{_id, number}`; the consent is kept with its type, validity and operations.
 9. Data categories: `{type, services}` → the categories the services need.
10. Lookup: `{"reg", "consent": {"consentId"}}`; the array form behind a flag; elsewhere, missing.
11. Lookup without a consent: 403/40399 (the 400 `{details}` seen live behind a flag).
12. Lookup with an unknown consent: 400/4002.
13. Lookup with an expired, revoked or used-up consent: 403/40398.
14. Lookup whose consent does not cover the service, its purpose or categories: 403/40399.
15. Lookup whose consent's operations have neither VERIFY nor FETCH: 403/40399 (second message).
16. A single_use consent is used up by a successful lookup; multi_use lasts until expiry or revocation.
17. Lookup success: V2's answer shape; an unknown CIN `valid: false`.
18. Details: `{_id, number, requestId, status, data, metadata}`; an unknown id 400/4002.
19. V2 switched off (a flag): every `/api/v2/…` request is 400/40051.
20. Injected failures: low credits, IP not allowed, unauthorised, rate and daily limits.

The service code, its purposes and data categories are fixtures: none is documented for the CIN
lookup.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

CONSENT_PATH = "/api/v3/public/consent"
ASYNC_PATH = "/api/v3/public/common/async"
# A fixture: the CIN-contact lookup's real service code is not documented (the reference, §2).
SERVICE_CODE = "LEADX_MCA_CIN_CONTACT"
STANDIN_CONSENT_ID = "CXstandinConsent01"  # 18 characters, like the docs' sample `CX3oM_bNstq9xWxgRd`
# A fixture, the reference's "likely set" (§2): the categories are documented
# (https://docs.attestr.com/attestr-docs/dpdpa-consent-data-categories; `contact` and `location`
# [3rd-party]); which ones the CIN-contact lookup needs is not.
REQUIRED_CATEGORIES: dict[str, list[str]] = {
    "business_identity": ["business_registration_number", "business_name"],
    "personal_information": ["name"],
    "identity": ["din", "pan"],
    "contact": ["email", "phone"],
    "location": ["address"],
}

# https://docs.attestr.com/attestr-docs/dpdpa-register-consent-api: the only two purposes.
PURPOSES = ("kyc_verification", "background_verification")
CONSENT_TYPES = ("single_use", "multi_use")  # [3rd-party]
OPERATIONS = ("VERIFY", "FETCH", "STORE", "REPORT", "EXPORT", "SHARE")  # [3rd-party]
LOOKUP_OPERATIONS = frozenset({"VERIFY", "FETCH"})  # a lookup verifies and fetches
# [3rd-party]
MODES = ("checkbox", "email_otp", "mobile_otp", "digilocker", "ivr", "physical_form", "offline")
# https://docs.attestr.com/attestr-docs/delete-media-apin80: code 40399 has these two messages.
MISSING_CONSENT = "Missing or insufficient consent to process the request"
NOT_ALLOWED = "You are not allowed to perform the operation as per the consent"

# The consent details' `status` (https://docs.attestr.com/attestr-docs/dpdpa-get-consent-details-lifecycle-api
# says only "Refer to Consent Status"): fixtures. REGISTERED is a consent whose consentValidFrom
# has not come (the page's lifecycle: "registration, activation, usage, expiry, revocation").
ACTIVE, CONSUMED, EXPIRED, REVOKED, REGISTERED = "active", "consumed", "expired", "revoked", "registered"

_ID_ALPHABET = string.ascii_letters + string.digits + "_"
# The register body's optional [3rd-party] fields of a simple type, checked as such.
_TYPED = {"consentPurposeDesc": str, "consentReferenceId": str, "consentEvidenceRef": str}
_TYPED |= {"consentPrincipalUserId": str, "clientDeclaration": bool, "webhook": bool}
# Its fields: the documented ones and the [3rd-party] ones. Any other is refused (not documented:
# the stricter behaviour, as for the lookup's body).
_FIELDS = frozenset(_TYPED) | {"consentPurpose", "services", "consentDataCategories", "consentType"}
_FIELDS |= {"consentMode", "consentOperations", "consentTimestamp", "consentValidFrom", "consentValidTill"}


class AttestrError(ValueError):
    """A refusal with Attestr's `code` (`attestr._ERRORS`: its HTTP status and message); `message`
    picks a code's second message (40399), `details` the optional field (…/delete-media-apin80)."""

    def __init__(self, code: int, message: str | None = None, details: str | None = None) -> None:
        super().__init__(code)
        self.code, self.message, self.details = code, message, details

    def __str__(self) -> str:
        return f"{self.code}: {self.details}" if self.details else str(self.code)


@dataclass
class Offer:
    """A provisioned service's purposes, and the categories its consents name ({category: [value]})."""

    purposes: tuple[str, ...]
    categories: dict[str, list[str]]


def default_offers() -> dict[str, Offer]:
    """The account's services (fixtures). UDYAM [3rd-party]: a consent can be valid yet not cover
    the CIN lookup (rule 14). The CIN lookup only for background verification: no page says which
    purpose it falls under, and a director-contact lead lookup is no KYC (the reference, §2)."""
    return {
        SERVICE_CODE: Offer(("background_verification",), copy.deepcopy(REQUIRED_CATEGORIES)),
        "UDYAM": Offer(PURPOSES, {"business_identity": ["business_registration_number", "business_name"]}),
    }


@dataclass
class Consent:
    id: str
    number: str
    purpose: str
    type: str
    services: list[str]
    categories: dict[str, set[str]]
    operations: set[str] | None  # None: not given, so not limited
    valid_from: datetime | None
    valid_till: datetime | None  # None only for a single_use consent
    data: dict[str, Any]  # the register body as it was given (the details' `data`)
    revoked: bool = False
    consumed: bool = False
    in_flight: bool = False  # a lookup under this single_use consent is under way

    def status(self, now: datetime) -> str:
        if self.revoked:
            return REVOKED
        if self.consumed:
            return CONSUMED
        if self.valid_till is not None and self.valid_till <= now:
            return EXPIRED
        if self.valid_from is not None and now < self.valid_from:
            return REGISTERED
        return ACTIVE


@dataclass
class ConsentRegistry:
    """The account's consents by id, the provisioned services, and the audit exports by async id."""

    offers: dict[str, Offer] = field(default_factory=default_offers)
    consents: dict[str, Consent] = field(default_factory=dict)
    exports: dict[str, dict[str, Any]] = field(default_factory=dict)
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @staticmethod
    def now() -> datetime:
        return datetime.now(timezone.utc)

    def register(self, body: Any, consent_id: str | None = None) -> Consent:
        """Rules 4 to 8: a register body (a JSON object) → the consent kept, or AttestrError."""
        if not isinstance(body, dict) or set(body) - _FIELDS:
            raise AttestrError(4001, details="a register body takes only the documented fields")
        consent = Consent(
            id=consent_id or _new_id("CX"),
            number=f"CN{next(self._numbers):010d}",  # the number's format is not documented
            purpose=choice_of(body, "consentPurpose", PURPOSES),  # rule 4
            type=choice_of(body, "consentType", CONSENT_TYPES),  # required: the stricter behaviour
            services=service_codes(body),
            categories=_categories(body),
            operations=_operations(body),
            valid_from=_time(body, "consentValidFrom"),
            valid_till=_time(body, "consentValidTill"),
            data=copy.deepcopy(body),
        )
        _check_optional(body)
        self._check_coverage(consent)
        self.consents[consent.id] = consent
        return consent

    def _check_coverage(self, consent: Consent) -> None:
        """Rules 5 to 7, after the shape (rule 4): which refusal comes first is not documented."""
        # Rule 7 (…/delete-media-apin80, 4035): a code the account has not been given.
        if any(service not in self.offers for service in consent.services):
            raise AttestrError(4035)
        # [3rd-party] validity; whether single_use may leave it out is not documented: it may.
        if consent.valid_till is None and consent.type == "multi_use":
            raise AttestrError(4001, details="consentValidTill is required for a multi_use consent")
        # Rule 5 (…/delete-media-apin80, 4003 "Consent valid till time is less than current time").
        if consent.valid_till is not None and consent.valid_till < self.now():
            raise AttestrError(4003)
        if consent.valid_from and consent.valid_till and consent.valid_from > consent.valid_till:
            raise AttestrError(4001, details="consentValidFrom is after consentValidTill")  # the stricter
        # Rule 6 (…/delete-media-apin80, 40015): every value the stand-in's map requires.
        if not all(_covers(consent.categories, self.offers[s].categories) for s in consent.services):
            raise AttestrError(40015)

    def get(self, consent_id: str) -> Consent:
        """Rules 12 and 18: an unknown id is 400/4002 (…/delete-media-apin80)."""
        if consent_id not in self.consents:
            raise AttestrError(4002)
        return self.consents[consent_id]

    def admit(self, consent_id: str | None, service: str) -> Consent:
        """Rules 11 to 15: the consent a lookup of `service` may use (a single_use one is then
        held until `settle`), or the refusal."""
        if consent_id is None:  # rule 11: 403/40399 (…/delete-media-apin80)
            raise AttestrError(40399)
        consent = self.get(consent_id)  # rule 12
        # Rule 13: expired, revoked or used up is not documented; "Invalid consent" (40398) is
        # the nearest documented row. A single_use consent held by another lookup under way is
        # refused too (not documented: the stricter behaviour, it cannot serve two).
        if consent.status(self.now()) != ACTIVE or consent.in_flight:
            raise AttestrError(40398)
        offer = self.offers.get(service)
        # Rule 14 (…/delete-media-apin80, 40399): the consent must name the service, under a
        # purpose it is offered for, with the categories it needs now (they may have grown).
        if (
            offer is None
            or service not in consent.services
            or consent.purpose not in offer.purposes
            or not _covers(consent.categories, offer.categories)
        ):
            raise AttestrError(40399)
        # Rule 15 (…/delete-media-apin80): the operations given must include a lookup's.
        if consent.operations is not None and not consent.operations & LOOKUP_OPERATIONS:
            raise AttestrError(40399, NOT_ALLOWED)
        consent.in_flight = consent.type == "single_use"
        return consent

    def settle(self, consent: Consent, succeeded: bool) -> None:
        """Rule 16: a single_use consent is "consumed in a successful operation" ([3rd-party],
        quoting …/attestr-dpdpa-consent-definitions); a refused or failed lookup leaves it
        unused (not documented: the reading that keeps a client's retry possible)."""
        consent.in_flight = False
        consent.consumed |= succeeded and consent.type == "single_use"

    def revoke(self, consent_id: str) -> None:
        self.get(consent_id).revoked = True  # the revoke API is not documented: control only

    def expire(self, consent_id: str) -> None:
        self.get(consent_id).valid_till = self.now() - timedelta(seconds=1)

    def categories_for(self, services: list[str]) -> list[dict[str, Any]]:
        """Rule 9: [{category, values}] the services need together, in the map's order."""
        merged: dict[str, list[str]] = {}
        for service in services:
            for category, values in self.offers[service].categories.items():
                known = merged.setdefault(category, [])
                known.extend(v for v in values if v not in known)
        return [{"category": c, "values": v} for c, v in merged.items()]

    def export(self, consent_id: str) -> dict[str, Any]:
        """…/dpdpa-export-consent-audit-trail-api: an async request `{_id, number}`, done at once (a
        fixture: only "its status is updated with the file's media ID" is documented)."""
        consent = self.get(consent_id)
        job = {"_id": _new_id("AX"), "number": f"AN{next(self._numbers):010d}", "consentId": consent.id}
        self.exports[job["_id"]] = {**job, "status": "completed", "mediaId": _new_id("MX")}
        return job


def standin_consent_body(start: datetime) -> dict[str, Any]:
    """The register body of STANDIN_CONSENT_ID: multi_use, a year from `start`."""
    return {
        "consentPurpose": "background_verification",
        "services": [{"service": SERVICE_CODE}],
        "consentDataCategories": [{"category": c, "values": list(v)} for c, v in REQUIRED_CATEGORIES.items()],
        "consentType": "multi_use",
        "consentMode": "checkbox",
        "consentValidFrom": _iso(start),
        "consentValidTill": _iso(start + timedelta(days=365)),
        "consentOperations": ["VERIFY", "FETCH", "STORE"],
        "consentReferenceId": "standin-consent-01",
        "clientDeclaration": True,
    }


# --- the register body's fields; anything malformed is 400/4001 (…/delete-media-apin80) ---


def choice_of(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    if body.get(name) not in allowed:
        raise AttestrError(4001, details=f"{name} must be one of {', '.join(allowed)}")
    return body[name]


def service_codes(body: dict[str, Any]) -> list[str]:
    """Rule 4: a non-empty `[{service, options?}]` (…/dpdpa-consent-data-categories-api) → the codes."""
    services = body.get("services")
    if not isinstance(services, list) or not services:
        raise AttestrError(4001, details="services must be a non-empty list")
    for entry in services:
        if (
            not isinstance(entry, dict)
            or set(entry) - {"service", "options"}
            or not isinstance(entry.get("service"), str)
            or not entry["service"]
            or not isinstance(entry.get("options", {}), dict)  # "Reserved for future use"
        ):
            raise AttestrError(4001, details="each service is {service, options?}")
    return [entry["service"] for entry in services]


def _categories(body: dict[str, Any]) -> dict[str, set[str]]:
    """`consentDataCategories` ([3rd-party]): `[{category, values: [str]}]` → {category: values}.
    Left out, it names none, so rule 6 refuses it (40015)."""
    entries = body.get("consentDataCategories", [])
    if not isinstance(entries, list):
        raise AttestrError(4001, details="consentDataCategories must be a list")
    merged: dict[str, set[str]] = {}
    for entry in entries:
        if (
            not isinstance(entry, dict)
            or set(entry) != {"category", "values"}
            or not isinstance(entry["category"], str)
            or not isinstance(entry["values"], list)
            or not all(isinstance(v, str) for v in entry["values"])
        ):
            raise AttestrError(4001, details="each data category is {category, values: [string]}")
        merged.setdefault(entry["category"], set()).update(entry["values"])
    return merged


def _operations(body: dict[str, Any]) -> set[str] | None:
    """`consentOperations` ([3rd-party]), optional: None when left out."""
    if "consentOperations" not in body:
        return None
    operations = body["consentOperations"]
    if not isinstance(operations, list) or any(op not in OPERATIONS for op in operations):
        raise AttestrError(4001, details=f"consentOperations are among {', '.join(OPERATIONS)}")
    return set(operations)


def _time(body: dict[str, Any], name: str) -> datetime | None:
    """An ISO-8601 time with its offset, e.g. `2026-09-30T10:00:00.000Z` ([3rd-party]); a time
    without one is refused (not documented: the stricter behaviour, it names no instant)."""
    if name not in body:
        return None
    try:
        moment = datetime.fromisoformat(body[name])
    except (TypeError, ValueError):
        raise AttestrError(4001, details=f"{name} must be an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise AttestrError(4001, details=f"{name} must carry its UTC offset")
    return moment


def _check_optional(body: dict[str, Any]) -> None:
    """The optional [3rd-party] fields' types and values."""
    _time(body, "consentTimestamp")
    if "consentMode" in body:
        choice_of(body, "consentMode", MODES)
    for name, kind in _TYPED.items():
        if name in body and not isinstance(body[name], kind):
            raise AttestrError(4001, details=f"{name} must be a {kind.__name__}")


def _covers(named: dict[str, set[str]], required: dict[str, list[str]]) -> bool:
    return all(set(values) <= named.get(category, set()) for category, values in required.items())


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _new_id(prefix: str) -> str:
    """18 characters, like the docs' sample consent id `CX3oM_bNstq9xWxgRd`."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
