"""airtable/automation.js, run under Node as Airtable runs it (tests/automation_harness.mjs: only
the globals an automation script has, a run stopped at Airtable's time limit and a fetch at
its limit, `base` writing through the Airtable stand-in), against the running service, and
against the service behind a proxy that fails as real ones do."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from service.standins.airtable import AirtableStandIn
from service.web.webhooks import SCRIPT_VERSION, is_outdated
from tests.conftest import free_port
from tests.flow import API_KEY, SECRET, Flow

ROOT = Path(__file__).parent.parent.parent
SCRIPT = ROOT / "airtable" / "automation.js"
NODE = shutil.which("node")
# Skipped without Node.js, but for CI (`.ci/run` sets NODE_REQUIRED): there a skip is no pass.
pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(
        NODE is None and not os.environ.get("NODE_REQUIRED"),
        reason="Node.js is not installed (apt-get install nodejs): the automation script runs under it",
    ),
]
SCALE = 0.2  # Airtable's 30 s run and 12 s fetch limits become 6 s and 2.4 s
CIN = "U51909MH2018PTC309876"


def run_script(
    airtable: tuple[AirtableStandIn, str] | None,
    service_url: str,
    config: dict[str, Any],
    *,
    secret: str = SECRET,
    timers: bool = False,
) -> dict[str, Any]:
    """One automation run; `airtable`: the stand-in and its URL, for the script's `base`."""
    standin, url = airtable or (None, "http://127.0.0.1:9")
    env = {
        **os.environ,
        "SERVICE_URL": service_url,
        "WEBHOOK_SECRET": secret,
        "TIME_SCALE": str(SCALE),
        "HARNESS_TIMERS": "1" if timers else "0",
        "AIRTABLE_URL": url,
        "AIRTABLE_BASE_ID": standin.base_id if standin else "appNone",
        "AIRTABLE_TOKEN": standin.token if standin else "none",
    }
    completed = subprocess.run(
        [NODE or "node", str(ROOT / "tests" / "automation_harness.mjs"), str(SCRIPT), json.dumps(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.stdout.strip(), completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def script(flow: Flow, service_url: str, config: dict[str, Any], **options: Any) -> dict[str, Any]:
    """The script run by this flow's base."""
    return run_script((flow.airtable, flow.service_env["AIRTABLE_API_URL"]), service_url, config, **options)


class _Proxy(BaseHTTPRequestHandler):
    """Answers each POST with the next planned fault, then passes them on to the service."""

    plan: ClassVar[list[tuple[str, int, str, dict[str, str]]]] = []
    upstream = ""
    seen = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen += 1
        if type(self).plan:
            kind, status, text, headers = type(self).plan.pop(0)
            if kind == "hang":
                threading.Event().wait(30)
                return
            if kind == "forward":  # the service stores it, but its answer is lost on the way back
                httpx.post(
                    type(self).upstream + self.path,
                    content=body,
                    headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
                )
            if kind == "slow":  # the headers at once, the body a byte every few seconds
                self.send_response(status)
                self.send_header("Content-Length", str(len(text.encode())))
                self.end_headers()
                for byte in text.encode():
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    threading.Event().wait(3)
                return
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(text.encode())))
            self.end_headers()
            self.wfile.write(text.encode())
            return
        answer = httpx.post(
            type(self).upstream + self.path,
            content=body,
            headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
        )
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def log_message(self, *_args: Any) -> None:
        pass


HTML_503 = ("status", 503, "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>", {})


@contextmanager
def faulty(flow: Flow, *plan: tuple[str, int, str, dict[str, str]]) -> Iterator[tuple[str, type[_Proxy]]]:
    handler = type("Proxy", (_Proxy,), {"plan": list(plan), "upstream": flow.service.url, "seen": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_the_shipped_script_brings_the_contacts_into_airtable(flow: Flow) -> None:
    company = flow.company("Konkan Traders", CIN)
    outcome = script(flow, flow.service.url, {"recordId": company, "cin": CIN})
    assert outcome["ok"] is True, outcome
    job = flow.wait_for_job(outcome["outputs"]["jobId"])
    assert job["status"] == "succeeded"
    assert sorted(c["Name"] for c in flow.contacts()) == ["Farah Khan", "Vikram Sethi"]
    assert all(c["Company"] == [company] for c in flow.contacts())


def test_a_cin_from_a_lookup_or_a_number_is_read_as_its_single_value(flow: Flow) -> None:
    company = flow.company("Konkan Traders", CIN)  # the value the lookup shows
    outcome = script(flow, flow.service.url, {"recordId": company, "cin": [f" {CIN} ", CIN, None]})
    assert outcome["ok"] is True, outcome
    assert flow.job(outcome["outputs"]["jobId"])["cin"] == CIN
    # That sync's own "Synced" first: the script writes "Failed" into Airtable itself, and a sync
    # still running when the CIN became unreadable would write over it (the service never hears
    # of a CIN the script refused).
    flow.wait_until(
        lambda: flow.company_fields(company).get("Contacts Sync Status") == "Synced", what="the first sync"
    )
    # The harness's `base` goes through the Web API: a second with none of the sync's requests.
    time.sleep(1.1)
    several = script(flow, flow.service.url, {"recordId": company, "cin": [CIN, "L17110MH1973PLC019786"]})
    assert several["ok"] is False and "several values" in several["error"]
    assert flow.company_fields(company)["Contacts Sync Status"] == "Failed"


def test_an_empty_cin_is_reported_not_sent(flow: Flow) -> None:
    company = flow.company("No CIN yet")
    with faulty(flow) as (url, handler):
        for empty in ("", "   ", [], [None, ""], None):
            outcome = script(flow, url, {"recordId": company, "cin": empty})
            assert outcome["ok"] is True and outcome["outputs"] == {"result": "empty CIN: nothing sent"}
        assert handler.seen == 0


def test_a_refusal_is_written_on_the_company_and_not_tried_again(flow: Flow) -> None:
    company = flow.company("Typo Ltd")
    with faulty(flow) as (url, handler):
        outcome = script(flow, url, {"recordId": company, "cin": "U123"})
        assert handler.seen == 1
    assert outcome["ok"] is False
    assert "refused this CIN" in outcome["error"] and "not a valid CIN" in outcome["error"]
    fields = flow.company_fields(company)
    assert fields["Contacts Sync Status"] == "Failed"
    assert "not a valid CIN" in fields["Contacts Sync Error"]
    wrong = script(flow, flow.service.url, {"recordId": company, "cin": CIN}, secret="guess")
    assert wrong["ok"] is False and "unauthorized" in wrong["error"]


def test_an_html_503_from_a_proxy_then_success(flow: Flow) -> None:
    company = flow.company("Konkan Traders", CIN)
    with faulty(flow, HTML_503, HTML_503) as (url, handler):
        outcome = script(flow, url, {"recordId": company, "cin": CIN})
        assert handler.seen == 3
    assert outcome["ok"] is True, outcome
    assert any("trying again" in line and "503" in line for line in outcome["logs"])
    assert not any("refus" in line for line in outcome["logs"])
    assert flow.wait_for_job(outcome["outputs"]["jobId"])["status"] == "succeeded"


def test_a_429_waits_as_long_as_retry_after_says(flow: Flow) -> None:
    company = flow.company("Konkan Traders", CIN)
    busy = (
        "status",
        429,
        json.dumps({"error": {"code": "rate_limited", "message": "Slow down"}}),
        {
            "Retry-After": "1",
            "Content-Type": "application/json",
        },
    )
    with faulty(flow, busy) as (url, handler):
        outcome = script(flow, url, {"recordId": company, "cin": CIN})
        assert handler.seen == 2
    assert outcome["ok"] is True, outcome
    assert outcome["elapsed_ms"] >= 1000  # Retry-After is not scaled: it is the service's word
    too_long = ("status", 429, "{}", {"Retry-After": "120"})
    with faulty(flow, too_long) as (url, handler):
        waited = script(flow, url, {"recordId": company, "cin": CIN})
        assert handler.seen == 1
    assert waited["ok"] is False and "longer than this run may last" in waited["error"]
    assert flow.company_fields(company)["Contacts Sync Status"] == "Waiting"


@pytest.mark.parametrize("timers", [False, True], ids=["no timers", "timers"])
def test_an_unreachable_service_marks_the_company_waiting_within_the_run(flow: Flow, timers: bool) -> None:
    company = flow.company("Konkan Traders", CIN)
    nowhere = f"http://127.0.0.1:{free_port()}"
    outcome = script(flow, nowhere, {"recordId": company, "cin": CIN}, timers=timers)
    assert outcome["ok"] is False and "stopped" not in outcome
    assert "could not be reached" in outcome["error"] and "within 15 minutes" in outcome["error"]
    assert "refus" not in outcome["error"]
    assert outcome["elapsed_ms"] < 30000 * SCALE
    assert re.search(r"\(\d+ attempts\)", outcome["error"]) and len(outcome["logs"]) >= 3
    fields = flow.company_fields(company)
    assert fields["Contacts Sync Status"] == "Waiting"
    assert "pick this company up by itself" in fields["Contacts Sync Error"]


def test_a_hanging_service_is_given_up_on_inside_the_run(flow: Flow) -> None:
    """With timers, each call ends at the script's own limit, inside Airtable's 12 s: the company
    shows Waiting. Without them, Airtable's fetch limit ends the whole run (its failure is in the
    run history; reconciliation still picks the company up)."""
    company = flow.company("Konkan Traders", CIN)
    hang = ("hang", 0, "", {})
    with faulty(flow, hang, hang, hang) as (url, _handler):
        timed = script(flow, url, {"recordId": company, "cin": CIN}, timers=True)
    assert timed["ok"] is False and "stopped" not in timed, timed
    assert "no answer within" in timed["error"] and timed["elapsed_ms"] < 30000 * SCALE
    assert flow.company_fields(company)["Contacts Sync Status"] == "Waiting"
    with faulty(flow, hang) as (url, _handler):
        untimed = script(flow, url, {"recordId": company, "cin": CIN})
    assert untimed["ok"] is False and untimed["stopped"] == "fetch"


def test_a_non_json_answer_is_not_taken_for_the_service(flow: Flow) -> None:
    company = flow.company("Konkan Traders", CIN)
    page = ("status", 200, "<html>Welcome to nginx!</html>", {"Content-Type": "text/html"})
    with faulty(flow, page) as (url, handler):
        outcome = script(flow, url, {"recordId": company, "cin": CIN})
        assert handler.seen == 2
    assert outcome["ok"] is True, outcome  # tried again, and the second answer was the service's
    not_found = ("status", 404, "<html>Not Found</html>", {"Content-Type": "text/html"})
    with faulty(flow, not_found) as (url, handler):
        wrong_url = script(flow, url, {"recordId": company, "cin": CIN})
        assert handler.seen == 1  # a wrong address: asking again does not help
    assert wrong_url["ok"] is False and "check SERVICE_URL" in wrong_url["error"]
    assert "refus" not in wrong_url["error"]


def test_the_script_says_its_version_and_the_service_knows_the_current_one(flow: Flow) -> None:
    assert f'const SCRIPT_VERSION = "{SCRIPT_VERSION}";' in SCRIPT.read_text()
    company = flow.company("Konkan Traders", CIN)
    assert script(flow, flow.service.url, {"recordId": company, "cin": CIN})["ok"] is True
    flow.http.post(
        "/webhooks/airtable",
        json={"record_id": company, "cin": CIN},
        headers={"X-Webhook-Secret": SECRET},
    )  # an older script sends no version
    flow.wait_until(
        lambda: any(line["event"] == "webhook.script_outdated" for line in flow.service.logs()),
        what="the outdated script logged",
    )
    doctor = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "service", "doctor"],
        env={**os.environ, **flow.service_env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "calls without a version" in doctor.stdout and "Upgrading the automation script" in doctor.stdout
    # When the warning stops by itself, a manual call being all it saw.
    said = " ".join(doctor.stdout.split())
    days = {f"{datetime.now(timezone.utc) + timedelta(days=14, seconds=s):%Y-%m-%d}" for s in (-120, 0)}
    assert any(f"(said until {day}, unless it calls again)" in said for day in days), said  # midnight


def test_the_outcome_is_written_in_the_fields_the_base_has(flow: Flow) -> None:
    """A status kept as text, no error field: the script writes what the table can take."""
    flow.airtable.remove_field("Companies", "Contacts Sync Error")
    flow.airtable.remove_field("Companies", "Contacts Sync Status")
    url = flow.service_env["AIRTABLE_API_URL"]
    table_id = flow.airtable.table("Companies").id
    created = httpx.post(
        f"{url}/v0/meta/bases/{flow.airtable.base_id}/tables/{table_id}/fields",
        json={"name": "Contacts Sync Status", "type": "singleLineText"},
        headers={"Authorization": f"Bearer {flow.airtable.token}"},
    )
    assert created.status_code == 200, created.text
    company = flow.company("Typo Ltd")
    outcome = script(flow, flow.service.url, {"recordId": company, "cin": "U123"})
    assert outcome["ok"] is False and "could not be marked" not in outcome["error"], outcome
    assert flow.company_fields(company) == {"Company Name": "Typo Ltd", "Contacts Sync Status": "Failed"}


def test_an_answer_lost_after_the_job_was_stored_does_not_store_it_twice(flow: Flow) -> None:
    """A Refresh Contacts tick: the service stores the forced job, a proxy loses the answer, the
    script tries again with the same X-Request-Id and is given the same job: one paid call."""
    company = flow.company("Konkan Traders", CIN)
    paid = flow.attestr.calls_for(CIN)
    lost = ("forward", 502, "<html>502 Bad Gateway</html>", {})
    with faulty(flow, lost) as (url, handler):
        outcome = script(flow, url, {"recordId": company, "cin": CIN, "refresh": True})
        assert handler.seen == 2
    assert outcome["ok"] is True and outcome["outputs"]["deduplicated"] is True, outcome
    assert flow.wait_for_job(outcome["outputs"]["jobId"])["status"] == "succeeded"
    assert len(flow.http.get("/jobs", headers={"X-API-Key": API_KEY}).json()["jobs"]) == 1
    assert flow.attestr.calls_for(CIN) == paid + 1


def test_an_answer_read_slowly_still_ends_inside_the_run(flow: Flow) -> None:
    company = flow.company("Konkan Traders", CIN)
    slow = ("slow", 503, "<html>Service Unavailable, slowly</html>", {})
    with faulty(flow, slow, slow, slow) as (url, _handler):
        timed = script(flow, url, {"recordId": company, "cin": CIN}, timers=True)
    assert timed["ok"] is False and "stopped" not in timed and timed["elapsed_ms"] < 30000 * SCALE, timed
    assert flow.company_fields(company)["Contacts Sync Status"] == "Waiting"


def test_what_is_not_a_refusal_of_the_cin_leaves_the_company_to_the_sweep(flow: Flow) -> None:
    """A wrong address (the service's own 404), a wrong secret, a redirect: the company shows
    Waiting (the service's sweep picks it up), never Failed; asking again would not help."""
    company = flow.company("Konkan Traders", CIN)
    for url, secret in (
        (flow.service.url + "/wrong/prefix", SECRET),
        (flow.service.url, "a-wrong-secret-here"),
    ):
        outcome = script(flow, url, {"recordId": company, "cin": CIN}, secret=secret)
        assert outcome["ok"] is False and "refused" not in outcome["error"], outcome
        assert "check SERVICE_URL and WEBHOOK_SECRET" in outcome["error"]
        assert flow.company_fields(company)["Contacts Sync Status"] == "Waiting"
    moved = ("status", 301, "", {"Location": flow.service.url + "/webhooks/airtable"})
    with faulty(flow, moved) as (url, handler):
        redirected = script(flow, url, {"recordId": company, "cin": CIN})
        assert handler.seen == 1
    assert "answered HTTP 301" in redirected["error"] and "refused" not in redirected["error"]


def test_retry_after_zero_still_waits_between_attempts(flow: Flow) -> None:
    company = flow.company("Konkan Traders", CIN)
    now = ("status", 503, "{}", {"Retry-After": "0"})
    with faulty(flow, *[now] * 50) as (url, handler):
        outcome = script(flow, url, {"recordId": company, "cin": CIN})
        assert handler.seen <= 6  # 1, 2, 4… seconds apart, not as fast as it can
    assert outcome["ok"] is False and "stopped" not in outcome


def test_one_cin_written_differently_in_a_lookup_is_one_cin(flow: Flow) -> None:
    company = flow.company("Konkan Traders", CIN)
    variants = [CIN.lower(), f"\u200b{CIN}\ufeff", f" {CIN} "]
    outcome = script(flow, flow.service.url, {"recordId": company, "cin": variants})
    assert outcome["ok"] is True, outcome
    empty = script(flow, flow.service.url, {"recordId": company, "cin": "\u200b\u00ad"})
    assert empty["outputs"] == {"result": "empty CIN: nothing sent"}


def test_a_newer_script_is_not_called_outdated() -> None:
    assert [is_outdated(v) for v in ("", "1", SCRIPT_VERSION, str(int(SCRIPT_VERSION) + 1))] == [
        True,
        True,
        False,
        False,
    ]
