"""Log lines: JSON, with phones and emails masked and secrets redacted."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from service.logs import configure_logging, mask_text
from tests.flow import API_KEY, SECRET, Flow


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("call +91 98450 67321 now", "98450 67321"),
        ("call 09845067321", "9845067321"),
        ("mail Ravi.Kumar@Example.com", "Ravi.Kumar"),
        ("two: 9845067321, 9123456789", "9123456789"),
    ],
)
def test_mask_text(text: str, hidden: str) -> None:
    masked = mask_text(text)
    assert hidden not in masked
    assert masked != text


def test_ids_stay_readable() -> None:
    text = "job 42 for recABCDEFGH1234567 cin U72200KA2015PTC081234 din 07123456"
    assert mask_text(text) == text


@pytest.fixture
def json_logging() -> Iterator[None]:
    configure_logging("json", "info")
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = []


@pytest.mark.usefixtures("json_logging")
def test_json_lines_mask_personal_data_and_redact_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    log = structlog.get_logger("test")
    with structlog.contextvars.bound_contextvars(job_id="7", record_id="recABCDEFGH1234567"):
        log.info(
            "attestr.fetched",
            error="Attestr said 9845067321 belongs to anita@example.in",
            contact={"phone": "+919845067321", "emails": ["x@y.example"]},
            api_key="sk-live-123",
            headers={"Authorization": "Basic abc"},
        )
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    raw = json.dumps(line)
    for secret in ("9845067321", "anita@", "x@y.example", "sk-live-123", "Basic abc"):
        assert secret not in raw
    assert line["event"] == "attestr.fetched"
    assert line["job_id"] == "7" and line["record_id"] == "recABCDEFGH1234567"
    assert line["api_key"] == "[redacted]"
    assert line["headers"] == {"Authorization": "[redacted]"}
    assert line["contact"]["phone"].endswith("21")


def test_a_failing_job_leaves_no_secret_or_phone_in_any_log_line(flow: Flow) -> None:
    """Attestr refuses the call and echoes back the token it was sent and a phone number; the job
    fails. Not one line the service wrote carries a secret, a key, a token, the phone or the email."""
    phone, email = "9845077777", "support.desk@attestr.example"
    cin = "U72900KA2019PTC123456"
    flow.attestr.companies[cin] = {
        "httpStatusCode": 400,
        "code": 4001,
        "message": f"Bad token {flow.attestr.token}; call +91 {phone[:5]} {phone[5:]} or {email}",
    }
    company = flow.company("Leaky", cin)
    response = flow.http.post(
        "/webhooks/airtable", json={"record_id": company}, headers={"Authorization": f"Bearer {SECRET}"}
    )
    job = flow.wait_for_job(response.json()["job_id"])
    assert job["status"] == "failed"
    assert "•" in job["last_error"] and phone not in job["last_error"]  # masked where people read it
    flow.http.post(
        "/webhooks/airtable", json={"record_id": company}, headers={"X-Webhook-Secret": "wrong-" + SECRET}
    )
    flow.http.get("/jobs", headers={"X-API-Key": API_KEY})
    flow.wait_until(
        lambda: flow.company_fields(company).get("Contacts Sync Status") == "Failed", what="Failed"
    )
    assert phone not in flow.company_fields(company)["Contacts Sync Error"].replace(" ", "")

    text = flow.service.log_path.read_text()
    lines = flow.service.logs()
    assert any(line.get("event") == "job.failed" for line in lines)
    for leak in (SECRET, API_KEY, flow.attestr.token, flow.airtable.token, phone, email):
        assert leak not in text.replace(" ", ""), leak
