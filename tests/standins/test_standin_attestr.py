"""The Attestr stand-in, through the real client over HTTP."""

from __future__ import annotations

import httpx
import pytest

from service.attestr.client import AttestrClient
from service.attestr.errors import AttestrAccessDenied, AttestrCreditsExhausted, AttestrUnavailable
from service.standins.attestr import PATH, AttestrStandIn
from service.standins.attestr_consents import NOT_ALLOWED
from tests.conftest import Running

CIN = "U72200KA2015PTC081234"


async def test_sample_company_answer_and_call_count(attestr: Running[AttestrStandIn]) -> None:
    client = AttestrClient(attestr.url + PATH, attestr.standin.token, max_contacts=2)
    answer = await client.fetch(CIN)
    await client.aclose()
    assert answer.outcome == "synced"
    assert [c.din for c in answer.contacts] == ["07123456", "08234567"]  # max_contacts, on our side
    assert attestr.standin.calls_for(CIN) == 1


async def test_a_body_with_more_than_reg_is_malformed(attestr: Running[AttestrStandIn]) -> None:
    """Attestr documents one field; the stand-in refuses others, so the client cannot send one."""
    headers = {"Authorization": f"Basic {attestr.standin.token}"}
    async with httpx.AsyncClient(base_url=attestr.url, headers=headers) as http:
        for body in ({"reg": CIN, "maxContacts": 5}, {}, {"reg": ""}, [CIN]):
            answer = await http.post(PATH, json=body)
            assert answer.status_code == 400 and answer.json()["code"] == 4001
        assert (await http.post(PATH, json={"reg": CIN})).json()["businessName"] == (
            "NILGIRI SOFTWARE PRIVATE LIMITED"
        )


async def test_unknown_cin_is_valid_false(attestr: Running[AttestrStandIn]) -> None:
    client = AttestrClient(attestr.url + PATH, attestr.standin.token)
    assert (await client.fetch("U00000MH2000PTC000000")).outcome == "no_data"
    await client.aclose()


async def test_wrong_token_and_injected_failures(attestr: Running[AttestrStandIn]) -> None:
    wrong = AttestrClient(attestr.url + PATH, "bm90LXRoZS10b2tlbg==")
    with pytest.raises(AttestrAccessDenied):
        await wrong.fetch(CIN)
    await wrong.aclose()
    client = AttestrClient(attestr.url + PATH, attestr.standin.token)
    attestr.standin.fail_next(CIN, 4005, 5030)
    with pytest.raises(AttestrCreditsExhausted):
        await client.fetch(CIN)
    with pytest.raises(AttestrUnavailable):
        await client.fetch(CIN)
    assert (await client.fetch(CIN)).outcome == "synced"
    await client.aclose()


async def test_control_endpoints(attestr: Running[AttestrStandIn]) -> None:
    async with httpx.AsyncClient(base_url=attestr.url) as http:
        answer = {
            "valid": True,
            "businessName": "NEW CO",
            "contacts": [{"indexId": "01234567", "fullName": "A B"}],
        }
        assert (await http.put("/_standin/companies/U11111MH2011PTC111111", json=answer)).status_code == 200
        await http.post("/_standin/companies/U11111MH2011PTC111111/failures", json={"codes": [4291]})
        await http.put("/_standin/settings", json={"delay_s": 0.05})
        client = AttestrClient(attestr.url + PATH, attestr.standin.token)
        with pytest.raises(Exception, match="per-second"):
            await client.fetch("U11111MH2011PTC111111")
        assert (await client.fetch("U11111MH2011PTC111111")).business_name == "NEW CO"
        await client.aclose()
        calls = (await http.get("/_standin/calls")).json()["calls"]
        assert [c["cin"] for c in calls] == ["U11111MH2011PTC111111"] * 2


async def test_a_second_message_and_a_path_not_served_on_demand(attestr: Running[AttestrStandIn]) -> None:
    """40399's second documented message through the control endpoint (`[code, message]`), and a
    path answered 404 (unknown, or the lookup's withdrawn) noted in `not_served`."""
    headers = {"Authorization": f"Basic {attestr.standin.token}"}
    async with httpx.AsyncClient(base_url=attestr.url, headers=headers) as http:
        await http.post(f"/_standin/companies/{CIN}/failures", json={"codes": [[40399, NOT_ALLOWED]]})
        refused = await http.post(PATH, json={"reg": CIN})
        assert (refused.status_code, refused.json()) == (
            403,
            {"httpStatusCode": 403, "code": 40399, "message": NOT_ALLOWED},
        )
        assert (await http.post(PATH + "s", json={"reg": CIN})).status_code == 404
        attestr.standin.unserved_paths.add(PATH)
        assert (await http.post(PATH, json={"reg": CIN})).status_code == 404
        attestr.standin.unserved_paths.clear()
        assert (await http.post(PATH, json={"reg": CIN})).status_code == 200
        seen = (await http.get("/_standin/calls")).json()
    assert [(r["path"], r["status"]) for r in seen["not_served"]] == [(PATH + "s", 404), (PATH, 404)]
    assert len(seen["calls"]) == 2  # the refused lookup and the answered one; the 404s are not lookups
