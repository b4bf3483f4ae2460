"""Attestr V3 in the client and the settings, against pytest-httpx: where the consent goes, how
each refusal is read (every consent code Attestr documents, and the undocumented 400 seen in
practice), V2 switched off, the consent endpoints; and the settings that choose all that."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpx import HTTPXMock

from service.attestr import consent
from service.attestr.client import AttestrClient
from service.attestr.consent import Consent
from service.attestr.errors import (
    Action,
    AttestrBadCredentials,
    AttestrConsentRefused,
    AttestrMalformedRequest,
    AttestrNotServed,
    error_from_response,
)
from service.config import SettingsError, load_settings

BASE = "https://attestr.test/api/v3/public"
URL = f"{BASE}/leadx/mca-cin-contact"
CIN = "U74999TG2017PTC118280"
REUSABLE = Consent("CX3oM_bNstq9xWxgRd", None, "reusable")
ANSWER = {"valid": True, "businessName": "ACME PRIVATE LIMITED", "contacts": [{"indexId": "07864946"}]}


def _client(**options: object) -> AttestrClient:
    return AttestrClient(URL, "dG9rZW4=", version="v3", consent_url=f"{BASE}/consent", **options)  # type: ignore[arg-type]


async def test_a_v3_lookup_carries_the_consent_in_the_body_and_nothing_else(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, json=ANSWER, headers={"xattestrid": "req-123"})
    client = _client()
    answer = await client.fetch(CIN, REUSABLE)
    await client.aclose()
    request = httpx_mock.get_request()
    assert request is not None and request.headers["Authorization"] == "Basic dG9rZW4="
    assert json.loads(request.read()) == {"reg": CIN, "consent": {"consentId": "CX3oM_bNstq9xWxgRd"}}
    assert answer.request_id == "req-123" and answer.outcome == "synced"


async def test_the_array_form_is_a_setting(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, json=ANSWER)
    client = _client(consent_in_array=True)
    await client.fetch(CIN, REUSABLE)
    await client.aclose()
    request = httpx_mock.get_request()
    assert request is not None
    assert json.loads(request.read())["consent"] == [{"consentId": "CX3oM_bNstq9xWxgRd"}]


async def test_a_v2_lookup_carries_no_consent(httpx_mock: HTTPXMock) -> None:
    url = "https://attestr.test/api/v2/public/leadx/mca-cin-contact"
    httpx_mock.add_response(url=url, json=ANSWER)
    client = AttestrClient(url, "dG9rZW4=")
    await client.fetch(CIN, REUSABLE)
    await client.aclose()
    request = httpx_mock.get_request()
    assert request is not None and json.loads(request.read()) == {"reg": CIN}


# "API Error Codes" (https://docs.attestr.com/attestr-docs/delete-media-apin80): the consent rows,
# and the 400 with only `details` that an integration saw for a lookup without consent.
CONSENT_REFUSALS = [
    (400, {"httpStatusCode": 400, "code": 4002, "message": "Consent with given reference ID does not exist"}),
    (
        400,
        {"httpStatusCode": 400, "code": 4003, "message": "Consent valid till time is less than current time"},
    ),
    (
        400,
        {
            "httpStatusCode": 400,
            "code": 40015,
            "message": "Missing required data categories for the provided service(s)",
        },
    ),
    (403, {"httpStatusCode": 403, "code": 40398, "message": "Invalid consent to process the request"}),
    (
        403,
        {
            "httpStatusCode": 403,
            "code": 40399,
            "message": "Missing or insufficient consent to process the request",
        },
    ),
    (
        403,
        {
            "httpStatusCode": 403,
            "code": 40399,
            "message": "You are not allowed to perform the operation as per the consent",
        },
    ),
    (400, {"details": "Missing or insufficient consent to process the request"}),
]


@pytest.mark.parametrize(("status", "body"), CONSENT_REFUSALS)
async def test_every_consent_refusal_waits_naming_the_consent_and_what_to_do(
    httpx_mock: HTTPXMock, status: int, body: dict[str, object]
) -> None:
    httpx_mock.add_response(url=URL, status_code=status, json=body, headers={"xattestrid": "req-9"})
    client = _client()
    with pytest.raises(AttestrConsentRefused) as refused:
        await client.fetch(
            CIN, REUSABLE, consent_named="ATTESTR_CONSENT_ID=CX3oM_bNstq9xWxgRd", consent_fix="do X"
        )
    await client.aclose()
    error = refused.value
    assert error.action is Action.PAUSE and error.settings_fix and error.request_id == "req-9"
    assert "do X" in error.message
    if body.get("code") != 40015:  # a registration's refusal names no consent yet
        assert "ATTESTR_CONSENT_ID=CX3oM_bNstq9xWxgRd" in error.message


@pytest.mark.parametrize(
    ("version", "words"),
    [
        ("v2", "V2 is switched off for this account: set ATTESTR_API_VERSION=v3"),
        ("v3", "check ATTESTR_API_URL"),
    ],
)
def test_a_version_not_served_pauses_with_what_to_set(version: str, words: str) -> None:
    body = {
        "httpStatusCode": 400,
        "code": 40051,
        "message": "This endpoint does not support the provided version.",
    }
    error = error_from_response(400, body, version=version)
    assert isinstance(error, AttestrNotServed) and error.action is Action.PAUSE and error.settings_fix
    assert words in error.message


@pytest.mark.parametrize("status", [404, 405, 410])
def test_an_address_not_served_pauses_rather_than_failing_every_job(status: int) -> None:
    error = error_from_response(status, "<html>Not Found</html>")
    assert isinstance(error, AttestrNotServed) and "ATTESTR_API_URL" in error.message
    assert "ATTESTR_API_VERSION=v3" in error.message  # on V2 it may be V2 switched off
    assert "ATTESTR_API_VERSION" not in error_from_response(status, None, version="v3").message


def test_a_refused_token_is_mended_by_settings_and_a_malformed_request_is_not_a_consent_refusal() -> None:
    assert error_from_response(401, {"code": 4016, "message": "Invalid client authorization"}).settings_fix
    assert isinstance(error_from_response(401, None), AttestrBadCredentials)
    malformed = error_from_response(400, {"code": 4001, "message": "Malformed data"})
    assert isinstance(malformed, AttestrMalformedRequest) and not malformed.settings_fix


@given(st.text(max_size=80), st.sampled_from([400, 403, 409, 422]))
def test_a_refusal_without_a_code_is_a_consent_refusal_exactly_when_it_speaks_of_consent(
    words: str, status: int
) -> None:
    error = error_from_response(status, {"details": words}, consent="C", consent_fix="fix it")
    speaks = "consent" in words.lower() and bool(words.strip())
    assert isinstance(error, AttestrConsentRefused) == speaks


async def test_registering_a_consent_and_reading_one(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{BASE}/consent/register", json={"_id": "CXnewConsent000001", "number": "C-17"}
    )
    httpx_mock.add_response(
        url=f"{BASE}/consent/CXnewConsent000001",
        method="GET",
        json={"_id": "CXnewConsent000001", "status": "active"},
    )
    client = _client()
    registered = await client.register_consent({"consentPurpose": "kyc_verification"})
    details = await client.consent_details(registered.id)
    await client.aclose()
    assert registered == Consent("CXnewConsent000001", "C-17", "single_use")
    assert consent.status_of(details) == ("active", True)


async def test_a_registration_answer_without_an_id_is_not_a_consent(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/consent/register", json={"number": "C-17"})
    client = _client()
    with pytest.raises(Exception, match="no `_id`"):
        await client.register_consent({})
    await client.aclose()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("active", True),
        ("ACTIVE", True),
        ("expired", False),
        ("Revoked", False),
        ("consumed", False),
        ("pending", None),
    ],
)
def test_a_consent_status_is_read_as_it_says_and_an_unknown_one_is_not_guessed(
    status: str, expected: bool | None
) -> None:
    assert consent.status_of({"status": status}) == (status, expected)
    assert consent.status_of({"status": None}) == (None, None)
    assert consent.status_of(["junk"]) == (None, None)


# --- the settings ---------------------------------------------------------------------------------


def test_v2_stays_the_default_and_v3_finds_its_consent_endpoints_beside_the_lookup() -> None:
    v2 = load_settings({}, env_file=None)
    assert v2.attestr_api_version == "v2"
    assert v2.attestr_api_url == "https://api.attestr.com/api/v2/public/leadx/mca-cin-contact"
    v3 = load_settings(
        {"ATTESTR_API_VERSION": "V3", "ATTESTR_CONSENT_ID": "CX3oM_bNstq9xWxgRd"}, env_file=None
    )
    assert v3.attestr_api_url == "https://api.attestr.com/api/v3/public/leadx/mca-cin-contact"
    assert v3.attestr_consent_url == "https://api.attestr.com/api/v3/public/consent"
    placeholder = "http://127.0.0.1:8801/api/{version}/public/leadx/mca-cin-contact"
    local = load_settings({"ATTESTR_API_VERSION": "v3", "ATTESTR_API_URL": placeholder}, env_file=None)
    assert local.attestr_consent_url == "http://127.0.0.1:8801/api/v3/public/consent"


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"ATTESTR_API_VERSION": "v4"}, "ATTESTR_API_VERSION='v4': one of v2, v3"),
        ({"ATTESTR_API_VERSION": "3"}, "ATTESTR_API_VERSION='3': one of v2, v3"),
        (
            {
                "ATTESTR_API_VERSION": "v3",
                "ATTESTR_API_URL": "https://api.attestr.com/api/v2/public/leadx/mca-cin-contact",
            },
            "it names v2, but ATTESTR_API_VERSION is v3",
        ),
        ({"ATTESTR_API_VERSION": "v3", "ATTESTR_API_URL": "https://proxy.example/attestr"}, "must end in"),
        ({"ATTESTR_CONSENT_ID": "CX 3oM/../x"}, "ATTESTR_CONSENT_ID='CX 3oM/../x': a consent id"),
        (
            {"ATTESTR_CONSENT_ID": "CX3oM_bNstq9xWxgRd", "ATTESTR_CONSENT_PURPOSE": "kyc_verification"},
            "both set",
        ),
        (
            {"ATTESTR_CONSENT_PURPOSE": "marketing"},
            "ATTESTR_CONSENT_PURPOSE='marketing': one of kyc_verification",
        ),
        ({"ATTESTR_CONSENT_CATEGORIES": "identity=din"}, "ATTESTR_CONSENT_CATEGORIES='identity=din'"),
        ({"ATTESTR_CONSENT_OPERATIONS": "STORE"}, "with VERIFY or FETCH"),
        ({"ATTESTR_CONSENT_FIELD": "header"}, "one of object, array"),
        ({"ATTESTR_CONSENT_MODE": "telepathy"}, "ATTESTR_CONSENT_MODE='telepathy'"),
    ],
)
def test_each_wrong_v3_setting_is_named_with_what_it_accepts(env: dict[str, str], said: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(env, env_file=None)
    assert said in str(refused.value)
    assert len(refused.value.problems) == 1, refused.value.problems  # one sentence, not a knock-on


def test_v3_without_a_consent_is_missing_a_credential_not_a_wrong_setting() -> None:
    settings = load_settings({"ATTESTR_API_VERSION": "v3"}, env_file=None)
    assert consent.missing(settings) == [
        "ATTESTR_CONSENT_ID (or ATTESTR_CONSENT_PURPOSE to register one per company)"
    ]
    per_company = load_settings(
        {"ATTESTR_API_VERSION": "v3", "ATTESTR_CONSENT_PURPOSE": "background_verification"}, env_file=None
    )
    assert consent.missing(per_company) == ["ATTESTR_SERVICE_CODE", "ATTESTR_CONSENT_EVIDENCE_REF"]
    assert consent.missing(load_settings({}, env_file=None)) == []  # V2 needs none


def test_a_registration_names_what_the_operator_chose_and_is_for_one_lookup() -> None:
    settings = load_settings(
        {
            "ATTESTR_API_VERSION": "v3",
            "ATTESTR_CONSENT_PURPOSE": "background_verification",
            "ATTESTR_SERVICE_CODE": "LEADX_MCA_CIN_CONTACT",
            "ATTESTR_CONSENT_CATEGORIES": "identity:din; contact:email,phone",
            "ATTESTR_CONSENT_EVIDENCE_REF": "dms://consents/{cin}",
        },
        env_file=None,
    )
    now = datetime(2026, 12, 6, 10, 0, 0, 123456, tzinfo=timezone.utc)
    body = consent.registration(settings, CIN, 42, now)
    assert body["consentPurpose"] == "background_verification"
    assert body["services"] == [{"service": "LEADX_MCA_CIN_CONTACT"}]
    assert body["consentDataCategories"] == [
        {"category": "identity", "values": ["din"]},
        {"category": "contact", "values": ["email", "phone"]},
    ]
    assert body["consentType"] == "single_use" and body["consentOperations"] == ["FETCH", "STORE"]
    assert (body["consentValidFrom"], body["consentValidTill"]) == (
        "2026-12-06T10:00:00.123Z",
        "2026-12-06T11:00:00.123Z",
    )
    assert body["consentEvidenceRef"] == f"dms://consents/{CIN}"
    assert body["consentReferenceId"] != consent.registration(settings, CIN, 42, now)["consentReferenceId"]


def test_the_settings_digest_changes_with_every_setting_that_can_mend_a_refusal() -> None:
    base = {"ATTESTR_API_VERSION": "v3", "ATTESTR_CONSENT_ID": "CX3oM_bNstq9xWxgRd", "ATTESTR_API_KEY": "a"}
    digest = consent.fingerprint(load_settings(base, env_file=None))
    assert digest == consent.fingerprint(load_settings(base, env_file=None))
    for change in (
        {"ATTESTR_CONSENT_ID": "CXotherConsent0001"},
        {"ATTESTR_API_KEY": "b"},
        {"ATTESTR_API_VERSION": "v2", "ATTESTR_CONSENT_ID": "CX3oM_bNstq9xWxgRd"},
        {"ATTESTR_CONSENT_FIELD": "array"},
    ):
        assert consent.fingerprint(load_settings({**base, **change}, env_file=None)) != digest
