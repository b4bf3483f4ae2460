"""airtable/automation.js, run under Node as Airtable runs it, against the running service."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.flow import SECRET, Flow

ROOT = Path(__file__).parent.parent
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")


def run_script(service_url: str, config: dict[str, Any], secret: str = SECRET) -> dict[str, Any]:
    completed = subprocess.run(
        [
            NODE or "node",
            str(ROOT / "tests" / "automation_harness.mjs"),
            str(ROOT / "airtable" / "automation.js"),
            json.dumps(config),
        ],
        env={**os.environ, "SERVICE_URL": service_url, "WEBHOOK_SECRET": secret},
        capture_output=True,
        text=True,
        timeout=30,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_the_shipped_script_brings_the_contacts_into_airtable(flow: Flow) -> None:
    company = flow.company("Konkan Traders", "U51909MH2018PTC309876")
    outcome = run_script(flow.service.url, {"recordId": company, "cin": "U51909MH2018PTC309876"})
    assert outcome["ok"] is True, outcome
    job = flow.wait_for_job(outcome["outputs"]["jobId"])
    assert job["status"] == "succeeded"
    assert sorted(c["Name"] for c in flow.contacts()) == ["Farah Khan", "Vikram Sethi"]
    assert all(c["Company"] == [company] for c in flow.contacts())


def test_a_refusal_fails_the_run_with_the_services_message(flow: Flow) -> None:
    outcome = run_script(flow.service.url, {"recordId": "recAAAAAAAAAAAAAA", "cin": "U123"})
    assert outcome["ok"] is False
    assert "not a valid CIN" in outcome["error"] and "invalid_cin" in outcome["error"]
    wrong = run_script(flow.service.url, {"recordId": "recAAAAAAAAAAAAAA", "cin": ""}, secret="guess")
    assert wrong["ok"] is False and "unauthorized" in wrong["error"]


def test_a_service_that_is_down_fails_the_run() -> None:
    outcome = run_script(f"http://127.0.0.1:{free_port()}", {"recordId": "recAAAAAAAAAAAAAA", "cin": ""})
    assert outcome["ok"] is False
    assert "could not be reached" in outcome["error"]
