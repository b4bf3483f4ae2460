"""`contact-sync doctor`'s Attestr checks: the token, the API version, and on V3 the consent.

A reusable consent is looked up with the Track Consent Lifecycle API (`GET …/consent/{id}`); the
settings that register one consent per lookup are held against the Data Categories API's answer.
Neither is a lookup: nothing is paid.
"""

from __future__ import annotations

from typing import Any

from service.attestr import consent
from service.attestr.client import AttestrClient
from service.attestr.errors import AttestrConsentRefused, AttestrError, AttestrUnavailable
from service.commands.checks import FAIL, OK, WARN, Check
from service.config import Settings

_MOVE = (
    "move to V3 before Attestr switches V2 off for the account "
    "(docs/how-to/move-to-attestr-v3.md: Moving to Attestr V3)"
)


async def attestr_checks(settings: Settings) -> list[Check]:
    """The token, the version and (V3) the consent, each with what to do when it is wrong."""
    if not settings.attestr_api_key:
        return [
            Check(
                "Attestr token",
                FAIL,
                "ATTESTR_API_KEY is not set: jobs wait",
                "set ATTESTR_API_KEY to the auth token Attestr issued",
            )
        ]
    checks = [Check("Attestr token", OK, "ATTESTR_API_KEY is set (it is checked by the first call)")]
    if settings.attestr_api_version == "v2":
        checks.append(Check("Attestr API", WARN, "V2, which Attestr has deprecated", _MOVE))
        if settings.attestr_consent_id or settings.attestr_consent_purpose:
            checks.append(
                Check(
                    "Attestr consent",
                    WARN,
                    "a V3 consent is configured, but not used on V2",
                    "set ATTESTR_API_VERSION=v3 to use it",
                )
            )
        return checks
    checks.append(Check("Attestr API", OK, "V3 (consent-first)"))
    if missing := consent.missing(settings):
        return [
            *checks,
            Check(
                "Attestr consent",
                FAIL,
                f"{' and '.join(missing)} not set: jobs wait",
                "set ATTESTR_CONSENT_ID to a reusable consent's id, or ATTESTR_CONSENT_PURPOSE, "
                "ATTESTR_SERVICE_CODE and ATTESTR_CONSENT_EVIDENCE_REF to register one per lookup",
            ),
        ]
    client = AttestrClient.from_settings(settings)
    try:
        if consent.registers_per_lookup(settings):
            return [*checks, await _categories(client, settings)]
        return [*checks, await _reusable(client, settings)]
    finally:
        await client.aclose()


async def _reusable(client: AttestrClient, settings: Settings) -> Check:
    consent_id = settings.attestr_consent_id or ""
    try:
        details = await client.consent_details(consent_id)
    except AttestrConsentRefused as exc:
        return Check("Attestr consent", FAIL, exc.message, consent.what_to_do(settings))
    except AttestrUnavailable as exc:
        return Check("Attestr consent", WARN, f"Attestr could not be asked ({exc.message})", "try again")
    except AttestrError as exc:
        return Check("Attestr consent", FAIL, exc.message)
    status, usable = consent.status_of(details)
    number = f" (number {details['number']})" if isinstance(details.get("number"), str) else ""
    said = f"ATTESTR_CONSENT_ID={consent_id}{number} is {status or 'of no status Attestr gives'}"
    if usable:
        return Check("Attestr consent", OK, said)
    if usable is False:
        return Check("Attestr consent", FAIL, f"{said}: jobs wait", consent.what_to_do(settings))
    return Check(
        "Attestr consent",
        WARN,
        f"{said}, a status the service does not know",
        "check the consent in Attestr's console; jobs wait if Attestr refuses it",
    )


async def _categories(client: AttestrClient, settings: Settings) -> Check:
    purpose, service = settings.attestr_consent_purpose or "", settings.attestr_service_code or ""
    said = f"registered for each lookup: {purpose}, service {service}"
    try:
        answer = await client.data_categories(purpose, service)
    except AttestrError as exc:
        return Check("Attestr consent", FAIL, f"{said}; Attestr refused it: {exc.message}")
    wanted = _read_categories(answer)
    if wanted is None:
        return Check(
            "Attestr consent",
            WARN,
            f"{said}; Attestr's data categories for it could not be read",
            "compare ATTESTR_CONSENT_CATEGORIES with Attestr's console",
        )
    have = {(category, value) for category, values in settings.attestr_consent_categories for value in values}
    lacking = sorted(pair for pair in wanted if pair not in have)
    if not lacking:
        return Check(
            "Attestr consent",
            OK,
            f"{said}; its data categories cover what Attestr asks for (whether Attestr offers the "
            "lookup under this purpose shows at its first lookup)",
        )
    together: dict[str, list[str]] = {}
    for category, value in sorted(have | set(wanted)):
        together.setdefault(category, []).append(value)
    value = ";".join(f"{category}:{','.join(values)}" for category, values in together.items())
    return Check(
        "Attestr consent",
        FAIL,
        f"{said}; lacking {', '.join(f'{c}:{v}' for c, v in lacking)}: Attestr refuses to register it",
        f"set ATTESTR_CONSENT_CATEGORIES={value}",
    )


def _read_categories(answer: Any) -> set[tuple[str, str]] | None:
    """`(category, value)` pairs from the Data Categories API's answer, whose shape is not
    documented: a list of `{category, values}`, bare or under `categories` or `data`."""
    items = answer
    if isinstance(answer, dict):
        items = answer.get("categories", answer.get("data"))
    if not isinstance(items, list):
        return None
    pairs = set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("category"), str):
            return None
        values = item.get("values")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            return None
        pairs |= {(item["category"], value) for value in values}
    return pairs
