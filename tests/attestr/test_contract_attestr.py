"""Attestr's behaviour the service relies on, against the stand-in and the real API
(`pytest -m live`: one paid call, for LIVE_ATTESTR_CIN; the two refused requests are not answers,
but Attestr does not say whether it bills them). Source: "Company Directors Contact API" and "API
Error Codes" (https://docs.attestr.com/attestr-docs/)."""

from __future__ import annotations

import httpx

from service.attestr.client import AttestrClient
from tests.contract import AttestrTarget


async def test_a_wrong_token_is_refused_with_4016(attestr_target: AttestrTarget) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            attestr_target.url,
            json={"reg": attestr_target.cin},
            headers={"Authorization": "Basic bm90LWEtdG9rZW4="},
        )
    assert answer.status_code == 401 and answer.json()["code"] == 4016


async def test_a_request_without_a_cin_is_malformed_4001(attestr_target: AttestrTarget) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            attestr_target.url, json={"reg": ""}, headers={"Authorization": f"Basic {attestr_target.token}"}
        )
    assert answer.status_code == 400 and answer.json()["code"] == 4001


async def test_the_answer_for_a_cin_has_the_documented_shape(attestr_target: AttestrTarget) -> None:
    """The one paid call: through the service's own client, then its raw answer field by field."""
    client = AttestrClient(attestr_target.url, attestr_target.token)
    try:
        answer = await client.fetch(attestr_target.cin)
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
