"""Attestr V3's consent: which consent a lookup carries, and what the operator must do about it.

Attestr's V3 ("DPDPA compliant") APIs need a consent registered first ("Register Consent API",
https://docs.attestr.com/attestr-docs/dpdpa-register-consent-api): its id "must subsequently be
passed in all related verification and KYC API requests". The operator's organisation either
holds a reusable (`multi_use`) consent, configured as ATTESTR_CONSENT_ID, or has the service
register a `single_use` consent for each lookup from ATTESTR_CONSENT_PURPOSE, ATTESTR_SERVICE_CODE,
ATTESTR_CONSENT_CATEGORIES, ATTESTR_CONSENT_OPERATIONS, ATTESTR_CONSENT_MODE and
ATTESTR_CONSENT_EVIDENCE_REF. Attestr documents that a single-use consent is used up by a
successful operation; whether a failed one uses it up is not documented, so the stricter reading
is kept: a registered consent is sent with one lookup only, whatever its answer.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from service.config import Settings
from service.identifiers import plain

# How long a consent registered for one lookup is valid: the lookup follows within seconds.
SINGLE_USE_VALID = timedelta(hours=1)

# Attestr's lifecycle states ("registration, activation, usage, expiry, revocation", Track Consent
# Lifecycle API). The literal status strings are not documented: these words are read as what they
# say, and any other status as unknown (neither usable nor refused) rather than guessed.
_USABLE = ("active", "activated", "valid")
_UNUSABLE = ("expired", "revoked", "consumed", "used", "withdrawn", "rejected", "inactive", "invalid")


@dataclass(frozen=True)
class Consent:
    """The consent one lookup carries: Attestr's `_id`, its human-readable `number` when the
    service registered it, and `kind`: "reusable" (ATTESTR_CONSENT_ID) or "single_use"."""

    id: str
    number: str | None
    kind: str


def registers_per_lookup(settings: Settings) -> bool:
    return settings.attestr_api_version == "v3" and not settings.attestr_consent_id


def missing(settings: Settings) -> list[str]:
    """The variables V3 still needs before a lookup can carry a consent (empty on V2)."""
    if settings.attestr_api_version != "v3" or settings.attestr_consent_id:
        return []
    if not settings.attestr_consent_purpose:
        return ["ATTESTR_CONSENT_ID (or ATTESTR_CONSENT_PURPOSE to register one per company)"]
    wanted = {
        "ATTESTR_SERVICE_CODE": settings.attestr_service_code,
        "ATTESTR_CONSENT_EVIDENCE_REF": settings.attestr_consent_evidence_ref,
    }
    return [name for name, value in wanted.items() if not value]


def fingerprint(settings: Settings) -> str:
    """A digest of the settings a refusal can be mended by (the version, address, token and
    consent): a pause started by such a refusal ends when a process starts with other ones."""
    parts = (
        settings.attestr_api_version,
        settings.attestr_api_url,
        settings.attestr_api_key or "",
        settings.attestr_consent_id or "",
        settings.attestr_consent_purpose or "",
        settings.attestr_service_code or "",
        repr(settings.attestr_consent_categories),
        ",".join(settings.attestr_consent_operations),
        settings.attestr_consent_mode,
        settings.attestr_consent_evidence_ref or "",
        str(settings.attestr_consent_in_array),
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def described(consent: Consent | None) -> str:
    """How a sentence names the consent a lookup carried."""
    if consent is None:
        return "(none sent)"
    if consent.kind == "reusable":
        return f"ATTESTR_CONSENT_ID={consent.id}"
    return f"{consent.id} (registered for this lookup)"


def what_to_do(settings: Settings) -> str:
    """What the operator does when Attestr refuses the consent."""
    if registers_per_lookup(settings):
        return (
            "check ATTESTR_CONSENT_PURPOSE (a purpose Attestr offers this lookup under), "
            "ATTESTR_SERVICE_CODE, ATTESTR_CONSENT_CATEGORIES and ATTESTR_CONSENT_OPERATIONS "
            "(docs/how-to/move-to-attestr-v3.md: Moving to Attestr V3)"
        )
    return (
        "register a new consent (or renew this one) with Attestr and set its id as ATTESTR_CONSENT_ID "
        "(docs/how-to/move-to-attestr-v3.md: Moving to Attestr V3)"
    )


def _iso(moment: datetime) -> str:
    # The form Attestr's integrations send: UTC, milliseconds, "Z".
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def registration(settings: Settings, cin: str, job_id: int, now: datetime | None = None) -> dict[str, Any]:
    """The Register Consent body for one lookup of `cin` by job `job_id`: a `single_use` consent
    for the configured purpose, service, data categories and operations, valid from now for
    SINGLE_USE_VALID. `consentPurpose` is documented as required; the other fields follow
    integrations checked against the live API (not on Attestr's page): all are sent, the stricter
    reading. `{cin}` in ATTESTR_CONSENT_EVIDENCE_REF becomes the company's CIN."""
    now = now or datetime.now(timezone.utc)
    return {
        "consentPurpose": settings.attestr_consent_purpose,
        "consentPurposeDesc": f"Contacts of the directors and signatories of the company {cin}",
        "services": [{"service": settings.attestr_service_code}],
        "consentDataCategories": [
            {"category": category, "values": list(values)}
            for category, values in settings.attestr_consent_categories
        ],
        "consentType": "single_use",
        "consentMode": settings.attestr_consent_mode,
        "consentTimestamp": _iso(now),
        "consentValidFrom": _iso(now),
        "consentValidTill": _iso(now + SINGLE_USE_VALID),
        # Unique per registration: a retried job registers a new consent.
        "consentReferenceId": f"contact-sync-{job_id}-{uuid.uuid4().hex[:12]}",
        "consentEvidenceRef": (settings.attestr_consent_evidence_ref or "").replace("{cin}", cin),
        "consentOperations": list(settings.attestr_consent_operations),
        "clientDeclaration": True,
    }


def status_of(details: Any) -> tuple[str | None, bool | None]:
    """A consent's status from the Track Consent Lifecycle API's answer, and whether a lookup may
    use it: True, False, or None when Attestr's word is not one the service knows."""
    status = plain(details.get("status"), 60) if isinstance(details, dict) else None
    if status is None:
        return None, None
    word = status.lower()
    if word in _USABLE:
        return status, True
    if word in _UNUSABLE:
        return status, False
    return status, None
