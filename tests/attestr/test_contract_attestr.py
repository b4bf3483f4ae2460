"""Attestr's behaviour the service relies on, against the stand-in (V2 and V3) and the real API
(`pytest -m live`, V2 or V3 as LIVE_ATTESTR_VERSION says: one paid call, for LIVE_ATTESTR_CIN;
the refused requests are not answers, but Attestr does not say whether it bills them). Source:
"Company Directors Contact API", "API Error Codes", and on V3 "Register Consent API" and "Track
Consent Lifecycle API" (https://docs.attestr.com/attestr-docs/)."""

from __future__ import annotations

import httpx
import pytest

from service.attestr import consent
from service.attestr.errors import AttestrConsentRefused
from tests.contract import AttestrTarget


async def test_a_wrong_token_is_refused_with_4016(attestr_target: AttestrTarget) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            attestr_target.url,
            json=attestr_target.body(attestr_target.cin),
            headers={"Authorization": "Basic bm90LWEtdG9rZW4="},
        )
    assert answer.status_code == 401 and answer.json()["code"] == 4016


async def test_a_request_without_a_cin_is_malformed_4001(attestr_target: AttestrTarget) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            attestr_target.url,
            json=attestr_target.body(""),
            headers={"Authorization": f"Basic {attestr_target.token}"},
        )
    assert answer.status_code == 400 and answer.json()["code"] == 4001


async def test_the_answer_for_a_cin_has_the_documented_shape(attestr_target: AttestrTarget) -> None:
    """The one paid call: through the service's own client, then its raw answer field by field."""
    client = attestr_target.client()
    try:
        answer = await client.fetch(attestr_target.cin, attestr_target.consent())
    finally:
        await client.aclose()
    raw = answer.raw
    # What the service relies on (it reads every field as untrusted, so it needs no more): a
    # valid answer with a list of contacts, each a JSON object.
    assert raw["valid"] is True and isinstance(raw["contacts"], list) and raw["contacts"]
    assert all(isinstance(contact, dict) for contact in raw["contacts"])
    # What it makes of them: people, and for most an identity (a DIN, or a PAN).
    assert answer.contacts and all(contact.name for contact in answer.contacts)
    assert any(contact.din or contact.pan for contact in answer.contacts)


async def test_the_consent_is_known(attestr_target: AttestrTarget) -> None:
    """V3: the Track Consent Lifecycle API knows the consent; its status is shown as given."""
    if attestr_target.version != "v3":
        pytest.skip("V3 only")
    client = attestr_target.client()
    try:
        details = await client.consent_details(attestr_target.consent_id or "")
    finally:
        await client.aclose()
    assert details["_id"] == attestr_target.consent_id
    status, usable = consent.status_of(details)
    assert status and usable is not False, details


async def test_a_v3_lookup_without_its_consent_is_refused_for_consent(attestr_target: AttestrTarget) -> None:
    """V3: no consent, no lookup (documented 403/40399; seen as a 400 with `details`): read as a
    consent refusal either way."""
    if attestr_target.version != "v3":
        pytest.skip("V3 only")
    client = attestr_target.client()
    try:
        with pytest.raises(AttestrConsentRefused):
            await client.fetch(attestr_target.cin, None)
    finally:
        await client.aclose()
