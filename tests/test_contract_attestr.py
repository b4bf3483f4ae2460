"""Attestr's behaviour the service relies on, against the stand-in and the real API
(`pytest -m live`: one paid call, for LIVE_ATTESTR_CIN; the two refused requests are not answers,
but Attestr does not say whether it bills them). Source: "Company Directors Contact API" and "API
Error Codes" (https://docs.attestr.com/attestr-docs/)."""

from __future__ import annotations

import httpx

from service.attestr import AttestrClient, parse_answer
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
    assert raw["valid"] is True and isinstance(raw["contacts"], list) and raw["contacts"]
    assert isinstance(raw.get("businessName"), str)
    for contact in raw["contacts"]:
        assert isinstance(contact.get("fullName"), str) and isinstance(contact.get("indexId"), str)
        for key in ("mobileNumber", "emailAddress"):
            assert contact.get(key) is None or isinstance(contact[key], str)
        assert isinstance(contact.get("addresses", []), list)
    # What the service makes of it: every contact read, named, with its DIN (or PAN).
    assert len(answer.contacts) == len(parse_answer(attestr_target.cin, raw, 100).contacts) > 0
    assert all(contact.name for contact in answer.contacts)
