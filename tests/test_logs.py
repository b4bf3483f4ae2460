"""Log lines: JSON, with phones and emails masked and secrets redacted."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from service.logs import configure_logging, mask_text


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("call +91 98765 43210 now", "98765 43210"),
        ("call 09876543210", "9876543210"),
        ("mail Ravi.Kumar@Example.com", "Ravi.Kumar"),
        ("two: 9876543210, 9123456789", "9123456789"),
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
            error="Attestr said 9876543210 belongs to anita@example.in",
            contact={"phone": "+919876543210", "emails": ["x@y.example"]},
            api_key="sk-live-123",
            headers={"Authorization": "Basic abc"},
        )
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    raw = json.dumps(line)
    for secret in ("9876543210", "anita@", "x@y.example", "sk-live-123", "Basic abc"):
        assert secret not in raw
    assert line["event"] == "attestr.fetched"
    assert line["job_id"] == "7" and line["record_id"] == "recABCDEFGH1234567"
    assert line["api_key"] == "[redacted]"
    assert line["headers"] == {"Authorization": "[redacted]"}
    assert line["contact"]["phone"].endswith("10")
