"""Every bad input to `POST /webhooks/airtable` gets its status and error code, never a 500."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.command_line import contact_sync
from tests.conftest import ServiceProcess, run_service
from tests.flow import SECRET

RECORD = "recAAAAAAAAAAAAAA"
CIN = "U72200KA2015PTC081234"


@pytest.fixture
def service(quiet_service: ServiceProcess) -> ServiceProcess:
    return quiet_service


def post(
    service: ServiceProcess, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> httpx.Response:
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(
        f"{service.url}/webhooks/airtable",
        content=content,
        headers={"Content-Type": "application/json", "X-Webhook-Secret": SECRET} | (headers or {}),
    )


@pytest.mark.parametrize(
    ("body", "headers", "raw", "status", "code", "field"),
    [
        ({"record_id": RECORD, "pad": "x" * 70_000}, None, None, 413, "payload_too_large", None),
        (
            {"record_id": RECORD, "pad": "x" * 70_000},
            {"X-Webhook-Secret": "wrong"},
            None,
            413,
            "payload_too_large",
            None,
        ),
        ({"record_id": RECORD}, {"X-Webhook-Secret": ""}, None, 401, "unauthorized", None),
        ({"record_id": RECORD}, {"X-Webhook-Secret": "wrong"}, None, 401, "unauthorized", None),
        (None, {"X-Webhook-Secret": "wrong"}, b"{not json", 401, "unauthorized", None),
        (None, None, b"{not json", 400, "invalid_json", None),
        (None, None, b"\xff\xfe", 400, "invalid_json", None),
        (None, None, b"", 400, "invalid_json", None),
        ([RECORD], None, None, 422, "invalid_field", "body"),
        ("recAAAAAAAAAAAAAA", None, None, 422, "invalid_field", "body"),
        ({}, None, None, 422, "invalid_field", "record_id"),
        ({"record_id": None, "cin": CIN}, None, None, 422, "invalid_field", "record_id"),
        ({"record_id": 12345}, None, None, 422, "invalid_field", "record_id"),
        ({"record_id": "rec123"}, None, None, 422, "invalid_record_id", "record_id"),
        ({"record_id": "recAAAAAAAAAAAAAA'--"}, None, None, 422, "invalid_record_id", "record_id"),
        ({"recordId": "tblAAAAAAAAAAAAAA"}, None, None, 422, "invalid_record_id", "recordId"),
        ({"record_id": RECORD, "cin": "U72200KA2015PTC08123"}, None, None, 422, "invalid_cin", "cin"),
        ({"record_id": RECORD, "cin": "not a cin"}, None, None, 422, "invalid_cin", "cin"),
        ({"record_id": RECORD, "cin": 72200}, None, None, 422, "invalid_cin", "cin"),  # read as text
        ({"record_id": RECORD, "cin": {"value": CIN}}, None, None, 422, "invalid_field", "cin"),
        ({"record_id": RECORD, "cin": [[CIN]]}, None, None, 422, "invalid_field", "cin"),
    ],
)
def test_bad_input(
    service: ServiceProcess,
    body: Any,
    headers: dict[str, str] | None,
    raw: bytes | None,
    status: int,
    code: str,
    field: str | None,
) -> None:
    response = post(service, body, headers, raw)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error.get("field") == field


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({"record_id": RECORD, "cin": CIN}, None),
        ({"recordId": RECORD, "cin": " u72200ka2015ptc081234 "}, None),
        ({"record_id": RECORD, "cin": "AAB-1234", "unknown": {"ignored": True}}, None),
        ({"record_id": RECORD, "cin": ""}, None),
        ({"record_id": RECORD, "cin": ["", CIN]}, None),  # from a lookup field: the first usable
        ({"record_id": RECORD, "cin": "\u200bU७२२००KA२०१५PTC०८१२३४\ufeff"}, None),  # read as ASCII
        ({"record_id": RECORD}, {"X-Webhook-Secret": "a-rotated-out-secret"}),
        ({"record_id": RECORD}, {"X-Webhook-Secret": "", "Authorization": f"Bearer {SECRET}"}),
    ],
)
def test_good_input_is_stored(service: ServiceProcess, body: Any, headers: dict[str, str] | None) -> None:
    response = post(service, body, headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    assert response.json()["job_id"].isdigit()


def test_a_queued_job_is_reused_with_the_newer_cin(service: ServiceProcess) -> None:
    record = "recBBBBBBBBBBBBBB"
    first = post(service, {"record_id": record, "cin": CIN}).json()
    second = post(service, {"record_id": record, "cin": "U51909MH2018PTC309876"}).json()
    third = post(service, {"record_id": record}).json()
    assert first["deduplicated"] is False
    assert second == {"job_id": first["job_id"], "status": "queued", "deduplicated": True}
    assert third["job_id"] == first["job_id"]
    # A refusal of its own: the tests before it in this module may run in another process.
    assert post(service, {"record_id": "rec123"}).status_code == 422
    rejected = [line for line in service.logs() if line["event"] == "webhook.rejected"]
    assert rejected, "refusals are logged"
    accepted = [line for line in service.logs() if line["event"] == "webhook.accepted"]
    assert accepted[-1]["deduplicated"] is True


@pytest.mark.process
def test_webhooks_are_closed_without_secrets(tmp_path: Path, db_url: str) -> None:
    with run_service(
        tmp_path, {"DATABASE_URL": db_url, "WEBHOOK_SECRETS": "", "WORKER_IN_WEB": "false"}
    ) as svc:
        response = post(svc, {"record_id": RECORD})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "not_configured"


@pytest.mark.process
def test_a_short_secret_counts_as_not_configured(tmp_path: Path, db_url: str) -> None:
    """A secret shorter than 16 characters is guessable: it opens nothing, and /ready and doctor
    say which variable and why; a long one beside it keeps working."""
    env = {"DATABASE_URL": db_url, "WORKER_IN_WEB": "false", "API_KEYS": "short-key"}
    with run_service(tmp_path, {**env, "WEBHOOK_SECRETS": "guessable"}) as svc:
        refused = httpx.post(
            f"{svc.url}/webhooks/airtable",
            json={"record_id": RECORD},
            headers={"X-Webhook-Secret": "guessable"},
        )
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "not_configured"
        missing = httpx.get(f"{svc.url}/ready").json()["missing_settings"]
        assert "WEBHOOK_SECRETS (every value is shorter than 16 characters)" in missing
        assert "API_KEYS (every value is shorter than 16 characters)" in missing
    doctor = contact_sync("doctor", env={**os.environ, **env, "WEBHOOK_SECRETS": f"guessable,{SECRET}"})
    assert "1 value(s) shorter than 16 characters are ignored" in doctor.stdout
    assert "API_KEYS" in doctor.stdout and "every value is shorter than 16 characters" in doctor.stdout
    with run_service(tmp_path, {**env, "WEBHOOK_SECRETS": f"guessable,{SECRET}"}) as svc:
        assert post(svc, {"record_id": RECORD}).status_code == 202  # the long one works
        short = httpx.post(
            f"{svc.url}/webhooks/airtable",
            json={"record_id": RECORD},
            headers={"X-Webhook-Secret": "guessable"},
        )
        assert short.status_code == 401


def test_a_request_id_is_bound_to_what_its_request_asked(service: ServiceProcess) -> None:
    """A retry with the same X-Request-Id and the same body gets the first job; the same id with
    another record, CIN or refresh is refused (the trigger is not dropped into another's job)."""
    first = {"record_id": "recAAAAAAAAAAAAA1", "cin": "U72200KA2015PTC081234"}
    key = {"X-Request-Id": "run-7f3a-0001"}
    stored = post(service, first, key)
    assert stored.status_code == 202
    again = post(service, first, key)
    assert again.status_code == 202 and again.json() == {**stored.json(), "deduplicated": True}
    for other in (
        {**first, "record_id": "recBBBBBBBBBBBBB2"},
        {**first, "cin": "U51909MH2018PTC309876"},
        {**first, "refresh": True},
    ):
        refused = post(service, other, key)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "invalid_field"
        assert refused.json()["error"]["field"] == "X-Request-Id"


def test_a_trailing_slash_is_not_found_not_a_redirect(service: ServiceProcess) -> None:
    answer = httpx.post(
        f"{service.url}/webhooks/airtable/",
        json={"record_id": "recAAAAAAAAAAAAA1"},
        headers={"X-Webhook-Secret": SECRET, "Host": "attacker.example"},
    )
    assert answer.status_code == 404 and "location" not in answer.headers
    assert answer.json()["error"]["code"] == "not_found"
