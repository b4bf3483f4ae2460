"""The Attestr stand-in's V3 (consent-first) API keeps its 20 rules (listed, with their sources,
in `service/standins/attestr_consents.py`), through real HTTP:
consents registered, read, exported, used up, revoked and expired; what a lookup needs of its
consent; V2 switched off; an `xattestrid` on every answer; consent refusals not paid for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.standins.attestr import (
    CONSENT_PATH,
    PATH,
    PATH_V3,
    REQUIRED_CATEGORIES,
    SERVICE_CODE,
    STANDIN_CONSENT_ID,
    AttestrStandIn,
)
from tests.conftest import Running

CIN = "U72200KA2015PTC081234"
UNKNOWN_CIN = "U00000MH2000PTC000000"
ASYNC_PATH = "/api/v3/public/common/async"
MISSING = "Missing or insufficient consent to process the request"
NOT_ALLOWED = "You are not allowed to perform the operation as per the consent"
DROP = object()  # a field left out of a body


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def in_(**delta: float) -> str:
    return iso(datetime.now(timezone.utc) + timedelta(**delta))


def consent_body(**changes: Any) -> dict[str, Any]:
    """A register body the stand-in accepts (single_use, an hour), with `changes` (DROP leaves one out)."""
    body: dict[str, Any] = {
        "consentPurpose": "background_verification",
        "services": [{"service": SERVICE_CODE}],
        "consentDataCategories": [{"category": c, "values": v} for c, v in REQUIRED_CATEGORIES.items()],
        "consentType": "single_use",
        "consentValidTill": in_(hours=1),
        "consentOperations": ["VERIFY", "FETCH"],
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not DROP}


def lookup(consent_id: str | None = STANDIN_CONSENT_ID, cin: str = CIN) -> dict[str, Any]:
    return {"reg": cin} if consent_id is None else {"reg": cin, "consent": {"consentId": consent_id}}


@pytest.fixture
async def http(attestr: Running[AttestrStandIn]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the stand-in with the right token."""
    headers = {"Authorization": f"Basic {attestr.standin.token}"}
    async with httpx.AsyncClient(base_url=attestr.url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def sync_http(attestr: Running[AttestrStandIn]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Basic {attestr.standin.token}"}
    with httpx.Client(base_url=attestr.url, headers=headers, timeout=10) as client:
        yield client


async def register(http: httpx.AsyncClient, **changes: Any) -> str:
    answer = await http.post(f"{CONSENT_PATH}/register", json=consent_body(**changes))
    assert answer.status_code == 200, answer.text
    return answer.json()["_id"]


def refusal(answer: httpx.Response, status: int, code: int, message: str | None = None) -> None:
    """Rule 3: `{httpStatusCode, code, message}` matching the HTTP status."""
    body = answer.json()
    assert (answer.status_code, body["httpStatusCode"], body["code"]) == (status, status, code), body
    assert isinstance(body["message"], str) and body["message"]
    if message is not None:
        assert body["message"] == message


async def status_of(http: httpx.AsyncClient, consent_id: str) -> str:
    return (await http.get(f"{CONSENT_PATH}/{consent_id}")).json()["status"]


# --- rules 1 to 3: the endpoints, authentication, the error body and xattestrid ---


async def test_every_v3_endpoint_is_served(http: httpx.AsyncClient) -> None:
    """Rule 1: register → details → data categories → lookup → export → its async poll."""
    consent_id = await register(http)
    assert (await http.get(f"{CONSENT_PATH}/{consent_id}")).status_code == 200
    categories = await http.post(
        f"{CONSENT_PATH}/data-categories",
        json={"type": "background_verification", "services": [{"service": SERVICE_CODE, "options": {}}]},
    )
    assert categories.status_code == 200
    assert (await http.post(PATH_V3, json=lookup(consent_id))).json()["businessName"] == (
        "NILGIRI SOFTWARE PRIVATE LIMITED"
    )
    export = await http.post(f"{CONSENT_PATH}/{consent_id}/export")
    assert export.status_code == 200 and set(export.json()) == {"_id", "number"}
    job = (await http.get(f"{ASYNC_PATH}/{export.json()['_id']}")).json()
    assert job["status"] == "completed" and job["mediaId"] and job["_id"] == export.json()["_id"]


ENDPOINTS = [
    ("POST", f"{CONSENT_PATH}/register", consent_body()),
    ("POST", f"{CONSENT_PATH}/data-categories", {"type": "kyc_verification", "services": []}),
    ("GET", f"{CONSENT_PATH}/{STANDIN_CONSENT_ID}", None),
    ("POST", f"{CONSENT_PATH}/{STANDIN_CONSENT_ID}/export", None),
    ("GET", f"{ASYNC_PATH}/AXnotAnAsyncId0001", None),
    ("POST", PATH_V3, lookup()),
    ("POST", PATH, {"reg": CIN}),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize(
    "authorization", [None, "Basic bm90LXRoZS10b2tlbg==", "Bearer standin-attestr-token"]
)
async def test_every_endpoint_needs_the_basic_token(
    attestr: Running[AttestrStandIn], method: str, path: str, body: Any, authorization: str | None
) -> None:
    """Rule 2: 401/4016 "Invalid client authorization", before anything else is looked at."""
    headers = {"Authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(base_url=attestr.url, headers=headers) as http:
        answer = await http.request(method, path, json=body)
    refusal(answer, 401, 4016, "Invalid client authorization")
    assert attestr.standin.calls == [] and attestr.standin.refused == []


async def test_every_answer_carries_a_fresh_xattestrid(
    attestr: Running[AttestrStandIn], http: httpx.AsyncClient
) -> None:
    """Rule 3: successes, refusals, V2 and V3, the controls, even an unknown path."""
    answers = [
        await http.post(PATH_V3, json=lookup()),
        await http.post(PATH_V3, json=lookup(None)),
        await http.post(PATH_V3, json=lookup("CXdoesNotExist0001")),
        await http.post(PATH, json={"reg": CIN}),
        await http.post(PATH, json={"reg": ""}),
        await http.post(f"{CONSENT_PATH}/register", json=consent_body(consentPurpose="marketing")),
        await http.get(f"{CONSENT_PATH}/{STANDIN_CONSENT_ID}"),
        await http.get("/_standin/calls"),
        await http.get("/api/v3/public/nowhere"),
    ]
    async with httpx.AsyncClient(base_url=attestr.url) as without_token:
        answers.append(await without_token.post(PATH_V3, json=lookup()))
    attestr.standin.fail_next(CIN, 5030)
    answers.append(await http.post(PATH_V3, json=lookup()))
    attestr.standin.v2_switched_off = True
    answers.append(await http.post(PATH, json={"reg": CIN}))
    ids = [answer.headers.get("xattestrid") for answer in answers]
    assert all(ids) and len(set(ids)) == len(ids)


# --- rules 4 to 9: registering a consent, the data categories ---


@pytest.mark.parametrize(
    "changes",
    [
        {"consentPurpose": DROP},
        {"consentPurpose": "marketing"},
        {"services": DROP},
        {"services": []},
        {"services": [{"options": {}}]},
        {"services": [{"service": ""}]},
        {"services": [SERVICE_CODE]},
        {"services": [{"service": SERVICE_CODE, "extra": 1}]},
        {"consentType": DROP},
        {"consentType": "forever"},
        {"consentType": "multi_use", "consentValidTill": DROP},
        {"consentValidTill": "next week"},
        {"consentValidTill": "2099-01-01T00:00:00"},  # no offset: no instant
        {"consentValidFrom": in_(hours=2)},  # after consentValidTill
        {"consentDataCategories": {"contact": ["email"]}},
        {"consentDataCategories": [{"category": "contact", "values": "email"}]},
        {"consentOperations": ["VERIFY", "PRINT"]},
        {"consentMode": "telepathy"},
        {"clientDeclaration": "yes"},
        {"consentReferenceId": 7},
        {"cin": CIN},  # a field Attestr does not list
    ],
)
async def test_a_malformed_register_body_is_4001(http: httpx.AsyncClient, changes: dict[str, Any]) -> None:
    """Rule 4 (and the other fields' shapes): 400/4001, nothing registered."""
    answer = await http.post(f"{CONSENT_PATH}/register", json=consent_body(**changes))
    refusal(answer, 400, 4001, "Malformed data or missing required parameter values")


async def test_a_validity_already_past_is_4003(
    attestr: Running[AttestrStandIn], http: httpx.AsyncClient
) -> None:
    """Rule 5, through the API, the control endpoint and `register_consent` (a ValueError)."""
    body = consent_body(consentValidTill=in_(seconds=-1))
    refusal(await http.post(f"{CONSENT_PATH}/register", json=body), 400, 4003)
    refusal(await http.post("/_standin/consents", json=body), 400, 4003)
    with pytest.raises(ValueError, match="4003") as raised:
        attestr.standin.register_consent(**body)
    assert raised.value.args[0] == 4003
    assert list(attestr.standin.consents.consents) == [STANDIN_CONSENT_ID]


PAIRS = [(category, value) for category, values in REQUIRED_CATEGORIES.items() for value in values]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sets(st.sampled_from(PAIRS), min_size=1))
def test_any_missing_required_category_value_is_40015(sync_http: httpx.Client, dropped: set) -> None:
    """Rule 6: the stand-in's map for SERVICE_CODE, every value of it; extra ones do no harm."""
    categories: dict[str, list[str]] = {"financial": ["bank_account_number"]}
    for category, value in PAIRS:
        if (category, value) not in dropped:
            categories.setdefault(category, []).append(value)
    body = consent_body(consentDataCategories=[{"category": c, "values": v} for c, v in categories.items()])
    refusal(sync_http.post(f"{CONSENT_PATH}/register", json=body), 400, 40015)


async def test_categories_may_be_split_and_left_out_categories_are_40015(http: httpx.AsyncClient) -> None:
    split = [{"category": c, "values": [v]} for c, v in PAIRS]
    assert await register(http, consentDataCategories=split)
    refusal(
        await http.post(f"{CONSENT_PATH}/register", json=consent_body(consentDataCategories=DROP)), 400, 40015
    )


async def test_an_unprovisioned_service_is_4035(http: httpx.AsyncClient) -> None:
    """Rule 7, on register and on data categories."""
    body = consent_body(services=[{"service": SERVICE_CODE}, {"service": "BANK_ACC"}])
    refusal(await http.post(f"{CONSENT_PATH}/register", json=body), 403, 4035)
    asked = {"type": "kyc_verification", "services": [{"service": "BANK_ACC"}]}
    refusal(await http.post(f"{CONSENT_PATH}/data-categories", json=asked), 403, 4035)


async def test_a_registered_consent_keeps_what_it_was_given(http: httpx.AsyncClient) -> None:
    """Rules 8 and 18: 200 `{_id (CX…, 18 characters), number}`; the details give it back."""
    body = consent_body(
        consentType="multi_use",
        consentValidFrom=in_(seconds=-5),
        consentValidTill=in_(days=30),
        consentOperations=["FETCH", "STORE"],
        consentMode="checkbox",
        consentReferenceId="ref-1",
        consentEvidenceRef="evidence-1",
        consentPrincipalUserId="user-1",
        consentPurposeDesc="directors' contacts",
        consentTimestamp=in_(seconds=-5),
        clientDeclaration=True,
        webhook=False,
    )
    answer = await http.post(f"{CONSENT_PATH}/register", json=body)
    assert answer.status_code == 200 and set(answer.json()) == {"_id", "number"}
    consent_id, number = answer.json()["_id"], answer.json()["number"]
    assert len(consent_id) == 18 and consent_id.startswith("CX") and isinstance(number, str) and number
    details = await http.get(f"{CONSENT_PATH}/{consent_id}")
    assert details.status_code == 200
    shown = details.json()
    assert set(shown) == {"_id", "number", "requestId", "status", "data", "metadata"}
    assert (shown["_id"], shown["number"], shown["status"], shown["data"]) == (
        consent_id,
        number,
        "active",
        body,
    )
    assert shown["requestId"] != (await http.get(f"{CONSENT_PATH}/{consent_id}")).json()["requestId"]
    other = await register(http)
    assert other != consent_id


async def test_data_categories_give_the_stand_ins_map(http: httpx.AsyncClient) -> None:
    """Rule 9: `{type, services}` → the map for SERVICE_CODE; the field is `type`."""
    asked = {"type": "background_verification", "services": [{"service": SERVICE_CODE}]}
    answer = await http.post(f"{CONSENT_PATH}/data-categories", json=asked)
    assert answer.status_code == 200
    assert {c["category"]: c["values"] for c in answer.json()["categories"]} == REQUIRED_CATEGORIES
    for wrong in (
        {**asked, "type": "marketing"},
        {"consentPurpose": "kyc_verification", **asked},
        {"type": "kyc_verification"},
    ):
        refusal(await http.post(f"{CONSENT_PATH}/data-categories", json=wrong), 400, 4001)


# --- rules 10 to 17: what a lookup needs of its consent ---


async def test_the_consent_goes_in_the_body_as_an_object(
    attestr: Running[AttestrStandIn], http: httpx.AsyncClient
) -> None:
    """Rule 10: anywhere else it is missing (40399); the array form only behind its flag."""
    as_array = {"reg": CIN, "consent": [{"consentId": STANDIN_CONSENT_ID}]}
    elsewhere = [
        as_array,
        {"reg": CIN, "consent": STANDIN_CONSENT_ID},
        {"reg": CIN, "consent": {"id": STANDIN_CONSENT_ID}},
        {"reg": CIN, "consent": {"consentID": STANDIN_CONSENT_ID}},
        {"reg": CIN, "consent": {"consentId": ""}},
    ]
    for body in elsewhere:
        refusal(await http.post(PATH_V3, json=body), 403, 40399, MISSING)
    header = await http.post(PATH_V3, json={"reg": CIN}, headers={"consentId": STANDIN_CONSENT_ID})
    refusal(header, 403, 40399, MISSING)
    settings = await http.put("/_standin/settings", json={"consent_as_array": True})
    assert settings.json()["consent_as_array"] is True
    assert (await http.post(PATH_V3, json=as_array)).status_code == 200
    assert (await http.post(PATH_V3, json=lookup())).status_code == 200  # the object still works
    assert [c["consent_id"] for c in attestr.standin.calls] == [STANDIN_CONSENT_ID] * 2
    assert len(attestr.standin.refused) == len(elsewhere) + 1


async def test_a_malformed_lookup_is_4001_and_neither_paid_nor_refused(
    attestr: Running[AttestrStandIn], http: httpx.AsyncClient
) -> None:
    """The body is exactly {reg, consent: {consentId}}: no other field, a string id."""
    for body in (
        {"reg": CIN, "consentId": STANDIN_CONSENT_ID},
        {"consent": {"consentId": STANDIN_CONSENT_ID}},
        {"reg": "", "consent": {"consentId": STANDIN_CONSENT_ID}},
        {"reg": CIN, "consent": {"consentId": STANDIN_CONSENT_ID, "purpose": "kyc_verification"}},
        {"reg": CIN, "consent": {"consentId": 12}},
        [CIN],
    ):
        refusal(await http.post(PATH_V3, json=body), 400, 4001)
    refusal(await http.post(PATH_V3, content=b"{not json"), 400, 4001)
    assert attestr.standin.calls == [] and attestr.standin.refused == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(
        st.text(min_size=1).filter(lambda k: k not in ("reg", "consent")),
        st.none() | st.booleans() | st.integers() | st.text(),
        min_size=1,
        max_size=3,
    )
)
def test_any_other_top_level_field_is_4001(sync_http: httpx.Client, extra: dict[str, Any]) -> None:
    """Rule 10's strictness (the documentation is silent on unknown fields), V3 as V2."""
    refusal(sync_http.post(PATH_V3, json={**lookup(), **extra}), 400, 4001)
    refusal(sync_http.post(PATH, json={"reg": CIN, **extra}), 400, 4001)


async def test_no_consent_is_40399_or_the_observed_400(
    attestr: Running[AttestrStandIn], http: httpx.AsyncClient
) -> None:
    """Rule 11: the documented 403/40399; with the flag, the 400 seen live, `details` only."""
    refusal(await http.post(PATH_V3, json=lookup(None)), 403, 40399, MISSING)
    settings = await http.put("/_standin/settings", json={"missing_consent_as_400": True})
    assert settings.json()["missing_consent_as_400"] is True
    answer = await http.post(PATH_V3, json=lookup(None))
    assert (answer.status_code, answer.json()) == (400, {"details": MISSING})
    # Only a missing consent answers so: an unknown one keeps its code.
    refusal(await http.post(PATH_V3, json=lookup("CXdoesNotExist0001")), 400, 4002)
    assert [(r["cin"], r["consent_id"], r["code"]) for r in attestr.standin.refused] == [
        (CIN, None, 40399),
        (CIN, None, 40399),
        (CIN, "CXdoesNotExist0001", 4002),
    ]
    assert attestr.standin.calls == []


async def test_an_unknown_consent_is_4002(http: httpx.AsyncClient) -> None:
    """Rules 12 and 18: on a lookup, the details and the export."""
    message = "Consent with given reference ID does not exist"
    refusal(await http.post(PATH_V3, json=lookup("CXdoesNotExist0001")), 400, 4002, message)
    refusal(await http.get(f"{CONSENT_PATH}/CXdoesNotExist0001"), 400, 4002, message)
    refusal(await http.post(f"{CONSENT_PATH}/CXdoesNotExist0001/export"), 400, 4002, message)
    refusal(await http.get(f"{ASYNC_PATH}/AXnotAnAsyncId0001"), 400, 4001)


async def test_revoked_and_expired_consents_are_40398(
    attestr: Running[AttestrStandIn], http: httpx.AsyncClient
) -> None:
    """Rule 13, the consents changed through the control endpoints; rule 18's statuses."""
    message = "Invalid consent to process the request"
    revoked = await register(http, consentType="multi_use")
    assert (await http.post(PATH_V3, json=lookup(revoked))).status_code == 200
    control = await http.post(f"/_standin/consents/{revoked}/revoke")
    assert control.json() == {"_id": revoked, "status": "revoked"}
    assert (await http.post(f"/_standin/consents/{STANDIN_CONSENT_ID}/expire")).json()["status"] == "expired"
    refusal(await http.post(PATH_V3, json=lookup(revoked)), 403, 40398, message)
    refusal(await http.post(PATH_V3, json=lookup(STANDIN_CONSENT_ID)), 403, 40398, message)
    assert await status_of(http, revoked) == "revoked"
    assert await status_of(http, STANDIN_CONSENT_ID) == "expired"
    assert attestr.standin.consent_status(STANDIN_CONSENT_ID) == "expired"
    not_yet = await register(http, consentValidFrom=in_(minutes=10))
    refusal(await http.post(PATH_V3, json=lookup(not_yet)), 403, 40398, message)
    refusal(await http.post("/_standin/consents/CXdoesNotExist0001/revoke"), 400, 4002)


async def test_a_consent_that_does_not_cover_the_lookup_is_40399(
    attestr: Running[AttestrStandIn], http: httpx.AsyncClient
) -> None:
    """Rule 14: another service, a purpose the lookup is not offered under, or a category map
    that has grown since the consent was registered."""
    udyam = await register(
        http,
        services=[{"service": "UDYAM"}],
        consentDataCategories=[
            {"category": "business_identity", "values": ["business_registration_number", "business_name"]}
        ],
    )
    kyc = await register(http, consentPurpose="kyc_verification")
    for consent_id in (udyam, kyc):
        refusal(await http.post(PATH_V3, json=lookup(consent_id)), 403, 40399, MISSING)
    attestr.standin.consents.offers[SERVICE_CODE].categories["contact"].append("whatsapp")
    refusal(await http.post(PATH_V3, json=lookup(STANDIN_CONSENT_ID)), 403, 40399, MISSING)
    assert [r["code"] for r in attestr.standin.refused] == [40399] * 3
    assert attestr.standin.calls == []
    assert {await status_of(http, c) for c in (udyam, kyc)} == {"active"}  # refused, not used up


@pytest.mark.parametrize(
    ("operations", "allowed"),
    [
        (["STORE", "REPORT", "EXPORT", "SHARE"], False),
        ([], False),
        (["FETCH"], True),
        (["VERIFY"], True),
        (DROP, True),  # none given: not limited
    ],
)
async def test_a_lookup_needs_verify_or_fetch(
    http: httpx.AsyncClient, operations: Any, allowed: bool
) -> None:
    """Rule 15: 403/40399 with the documented second message."""
    consent_id = await register(http, consentOperations=operations)
    answer = await http.post(PATH_V3, json=lookup(consent_id))
    if allowed:
        assert answer.status_code == 200
    else:
        refusal(answer, 403, 40399, NOT_ALLOWED)


async def test_a_single_use_consent_is_used_up_only_by_a_success(
    attestr: Running[AttestrStandIn], http: httpx.AsyncClient
) -> None:
    """Rule 16: refused and failed lookups leave it; the first 200 uses it up."""
    consent_id = await register(http)
    wrong_token = {"Authorization": "Basic bm90LXRoZS10b2tlbg=="}
    refusal(await http.post(PATH_V3, json=lookup(consent_id), headers=wrong_token), 401, 4016)
    refusal(await http.post(PATH_V3, json={**lookup(consent_id), "extra": 1}), 400, 4001)
    attestr.standin.fail_next(CIN, 4005, 5030)
    refusal(await http.post(PATH_V3, json=lookup(consent_id)), 400, 4005)
    refusal(await http.post(PATH_V3, json=lookup(consent_id)), 503, 5030)
    assert await status_of(http, consent_id) == "active"
    assert (await http.post(PATH_V3, json=lookup(consent_id))).status_code == 200
    assert await status_of(http, consent_id) == "consumed"
    refusal(await http.post(PATH_V3, json=lookup(consent_id)), 403, 40398)
    assert [c["consent_id"] for c in attestr.standin.calls] == [consent_id] * 3  # two failures paid
    assert [r["code"] for r in attestr.standin.refused] == [40398]


async def test_a_valid_false_answer_also_uses_a_single_use_consent_up(http: httpx.AsyncClient) -> None:
    """Rule 16 says a 200: an answer that the CIN has no data is one."""
    consent_id = await register(http)
    answer = await http.post(PATH_V3, json=lookup(consent_id, UNKNOWN_CIN))
    assert answer.status_code == 200 and answer.json()["valid"] is False
    assert await status_of(http, consent_id) == "consumed"


async def test_a_single_use_consent_serves_one_lookup_at_a_time(
    attestr: Running[AttestrStandIn], http: httpx.AsyncClient
) -> None:
    """While one lookup runs under it, another is refused; the first failing frees it."""
    consent_id = await register(http)
    attestr.standin.delay_s = 0.3
    attestr.standin.fail_next(CIN, 5030)
    first = asyncio.create_task(http.post(PATH_V3, json=lookup(consent_id)))
    while not attestr.standin.calls:
        await asyncio.sleep(0.01)
    refusal(await http.post(PATH_V3, json=lookup(consent_id)), 403, 40398)
    refusal(await first, 503, 5030)
    attestr.standin.delay_s = 0.0
    assert (await http.post(PATH_V3, json=lookup(consent_id))).status_code == 200


async def test_a_multi_use_consent_lasts_until_expiry_or_revocation(
    attestr: Running[AttestrStandIn], http: httpx.AsyncClient
) -> None:
    """Rule 16, with the stand-in's own consent: a year's validity, VERIFY, FETCH and STORE."""
    data = (await http.get(f"{CONSENT_PATH}/{STANDIN_CONSENT_ID}")).json()["data"]
    assert (data["consentType"], data["consentPurpose"]) == ("multi_use", "background_verification")
    assert data["consentOperations"] == ["VERIFY", "FETCH", "STORE"]
    till = datetime.fromisoformat(data["consentValidTill"]) - datetime.now(timezone.utc)
    assert timedelta(days=364) < till <= timedelta(days=365)
    for _ in range(3):
        assert (await http.post(PATH_V3, json=lookup())).status_code == 200
    attestr.standin.revoke_consent(STANDIN_CONSENT_ID)
    refusal(await http.post(PATH_V3, json=lookup()), 403, 40398)
    assert attestr.standin.consent_status(STANDIN_CONSENT_ID) == "revoked"


async def test_a_lookup_answers_as_v2_does(attestr: Running[AttestrStandIn], http: httpx.AsyncClient) -> None:
    """Rule 17: the V2 shape; a CIN without data is 200 `valid: false`; calls say which version."""
    v3 = await http.post(PATH_V3, json=lookup())
    v2 = await http.post(PATH, json={"reg": CIN})
    assert v3.status_code == 200 and v3.json() == v2.json()
    assert set(v3.json()) == {"valid", "indexId", "businessName", "contacts"}
    unknown = await http.post(PATH_V3, json=lookup(cin=UNKNOWN_CIN))
    assert unknown.status_code == 200 and unknown.json() == {
        "valid": False,
        "message": "No data found for the given CIN.",
    }
    assert [(c["version"], c["consent_id"]) for c in attestr.standin.calls] == [
        ("v3", STANDIN_CONSENT_ID),
        ("v2", None),
        ("v3", STANDIN_CONSENT_ID),
    ]
    assert attestr.standin.calls_for(CIN) == 2


# --- rules 19 and 20: V2 switched off, injected failures ---


async def test_v2_switched_off_is_40051_for_every_v2_request(
    attestr: Running[AttestrStandIn], http: httpx.AsyncClient
) -> None:
    """Rule 19: any path, method or credentials under /api/v2/; V3 unaffected; it can be undone."""
    settings = await http.put("/_standin/settings", json={"v2_switched_off": True})
    assert settings.json()["v2_switched_off"] is True
    message = "This endpoint does not support the provided version."
    refusal(await http.post(PATH, json={"reg": CIN}), 400, 40051, message)
    refusal(await http.get(PATH), 400, 40051, message)
    refusal(
        await http.post("/api/v2/public/corpx/udyam", json={"reg": "x"}, headers={"Authorization": ""}),
        400,
        40051,
    )
    assert (await http.post(PATH_V3, json=lookup())).status_code == 200
    assert [c["version"] for c in attestr.standin.calls] == ["v3"]  # the refused V2 calls are not paid
    await http.put("/_standin/settings", json={"v2_switched_off": False})
    assert (await http.post(PATH, json={"reg": CIN})).status_code == 200


@pytest.mark.parametrize(
    ("code", "status"),
    [
        *[(4005, 400), (4039, 403), (4031, 403), (4291, 429), (4292, 429), (4293, 429), (4016, 401)],
        *[(4002, 400), (4003, 400), (40015, 400), (40051, 400), (40398, 403), (40399, 403), (5030, 503)],
    ],
)
async def test_injected_failures_apply_to_v3_lookups(
    attestr: Running[AttestrStandIn], http: httpx.AsyncClient, code: int, status: int
) -> None:
    """Rule 20: once (fail_next) or until cleared (persistent_failure); each is a paid call."""
    attestr.standin.fail_next(CIN, code)
    refusal(await http.post(PATH_V3, json=lookup()), status, code)
    assert (await http.post(PATH_V3, json=lookup())).status_code == 200
    attestr.standin.persistent_failure = code
    refusal(await http.post(PATH_V3, json=lookup()), status, code)
    attestr.standin.persistent_failure = None
    assert len(attestr.standin.calls) == 3 and attestr.standin.refused == []


# --- the controls ---


async def test_consent_controls_and_what_calls_report(
    attestr: Running[AttestrStandIn], http: httpx.AsyncClient
) -> None:
    """`POST /_standin/consents` registers without a token; `/_standin/calls` lists the refused;
    a consent refusal is never in `calls`."""
    async with httpx.AsyncClient(base_url=attestr.url) as control:
        made = await control.post("/_standin/consents", json=consent_body(consentType="multi_use"))
        assert made.status_code == 200 and set(made.json()) == {"_id", "number"}
        refusal(await control.post("/_standin/consents", json=consent_body(consentPurpose=DROP)), 400, 4001)
        await http.post(PATH_V3, json=lookup(made.json()["_id"]))
        await control.post(f"/_standin/consents/{made.json()['_id']}/expire")
        await http.post(PATH_V3, json=lookup(made.json()["_id"]))
        await http.post(PATH_V3, json=lookup(None))
        seen = (await control.get("/_standin/calls")).json()
        settings = (await control.put("/_standin/settings", json={})).json()
    assert [(c["version"], c["consent_id"]) for c in seen["calls"]] == [("v3", made.json()["_id"])]
    assert [(r["consent_id"], r["code"]) for r in seen["refused"]] == [
        (made.json()["_id"], 40398),
        (None, 40399),
    ]
    assert set(seen["refused"][0]) == {"cin", "consent_id", "code", "at"}
    assert {k: settings[k] for k in ("v2_switched_off", "consent_as_array", "missing_consent_as_400")} == {
        "v2_switched_off": False,
        "consent_as_array": False,
        "missing_consent_as_400": False,
    }


def test_register_consent_follows_the_register_rules() -> None:
    """The Python door: same rules, the id back, the code on a refusal."""
    standin = AttestrStandIn()
    consent_id = standin.register_consent(**consent_body())
    assert len(consent_id) == 18 and standin.consent_status(consent_id) == "active"
    for changes, code in (({"consentPurpose": DROP}, 4001), ({"services": [{"service": "X"}]}, 4035)):
        with pytest.raises(ValueError) as raised:
            standin.register_consent(**consent_body(**changes))
        assert raised.value.args[0] == code and getattr(raised.value, "code", None) == code
    standin.expire_consent(consent_id)
    assert standin.consent_status(consent_id) == "expired"
    with pytest.raises(ValueError, match="4002"):
        standin.consent_status("CXdoesNotExist0001")
