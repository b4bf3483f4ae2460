"""Hostile bytes at the HTTP edge: every body gets a 4xx JSON error or is accepted, never a 500;
an error nothing expected is the documented JSON 500, logged once."""

from __future__ import annotations

import json
import socket
import time

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Route
from structlog.testing import capture_logs

from service.engine.outcomes import REFUSED_BY_DATABASE, refused_by_database
from service.web.errors import CatchAll
from service.web.metrics import GAUGES_MAX_AGE_S
from service.web.validation import BODY_TIMEOUT_S
from tests.conftest import ServiceProcess
from tests.flow import API_KEY, SECRET, Flow

RECORD = "recAAAAAAAAAAAAAA"
# Every endpoint that reads a JSON body, with what it needs to get as far as reading it.
JSON_ENDPOINTS = [
    ("/webhooks/airtable", {"X-Webhook-Secret": SECRET}),
    (f"/companies/{RECORD}/sync", {"X-API-Key": API_KEY}),
    ("/contacts/fetch", {"X-API-Key": API_KEY}),
    ("/jobs/1/retry", {"X-API-Key": API_KEY}),
]
# Reads its body only after Airtable's MAC is verified (tests/triggers/test_airtable_webhooks.py); without
# a registered webhook it answers 503 not_configured, with the error shape all the same.
NOTIFICATIONS = ("/webhooks/airtable/notifications", {})


def _nested(depth: int, open_: str = "[", close: str = "]") -> bytes:
    return (open_ * depth + close * depth).encode()


def _is_json_error(response: httpx.Response) -> bool:
    body = response.json()
    return isinstance(body, dict) and isinstance(body.get("error"), dict) and bool(body["error"]["code"])


@pytest.mark.parametrize(("path", "headers"), JSON_ENDPOINTS)
def test_json_nested_a_thousand_deep_is_a_4xx_on_every_endpoint(
    quiet_service: ServiceProcess, path: str, headers: dict[str, str]
) -> None:
    for body in (_nested(1000), _nested(100_000), b'{"a":' * 5000 + b"1" + b"}" * 5000):
        response = httpx.post(quiet_service.url + path, content=body, headers=headers, timeout=30)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text[:200])
        assert _is_json_error(response), response.text[:200]
    deep = httpx.post(
        quiet_service.url + "/webhooks/airtable", content=_nested(5000), headers=JSON_ENDPOINTS[0][1]
    )
    assert deep.json()["error"] == {"code": "invalid_json", "message": "The body's JSON is nested too deeply"}


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
_bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    _json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    st.fixed_dictionaries(
        {"record_id": st.text(max_size=20), "cin": _json_values, "refresh": _json_values}
    ).map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    st.integers(min_value=500, max_value=20_000).map(_nested),
    st.integers(min_value=500, max_value=5_000).map(lambda n: b'{"x":' * n + b"0" + b"}" * n),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies, endpoint=st.sampled_from(JSON_ENDPOINTS))
def test_no_body_gets_a_500(
    quiet_service: ServiceProcess, body: bytes, endpoint: tuple[str, dict[str, str]]
) -> None:
    path, headers = endpoint
    response = httpx.post(quiet_service.url + path, content=body, headers=headers, timeout=30)
    assert response.status_code < 500 or response.status_code == 503, (body[:80], response.text[:200])
    if response.status_code >= 400:
        assert _is_json_error(response), response.text[:200]


async def test_an_error_nothing_expected_is_a_json_500_logged_once() -> None:
    def broken(_request: Request) -> None:
        raise RuntimeError("a bug")

    app = Starlette(routes=[Route("/broken", broken)], middleware=[Middleware(CatchAll)])
    transport = httpx.ASGITransport(app=app)
    with capture_logs() as logs:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/broken")
    assert response.status_code == 500
    message = "Something went wrong in contact-sync; it has been logged"
    assert response.json() == {"error": {"code": "internal_error", "message": message}}
    assert [(e["event"], e["path"]) for e in logs] == [("http.unhandled_error", "/broken")]


def test_bytes_postgresql_cannot_store_are_cleaned_and_paid_for_once(flow: Flow) -> None:
    """A NUL character and a lone surrogate anywhere in an Attestr answer (names, emails,
    addresses, keys) and in the company's CIN cell: the job succeeds at its first attempt, with
    one paid call, and nothing of them reaches Airtable."""
    cin = "U72200KA2015PTC081234"
    answer = json.loads(json.dumps(flow.attestr.companies[cin]))
    answer["businessName"] = "NILGIRI\u0000 SOFTWARE"
    for contact in answer["contacts"]:
        contact["fullName"] = contact["fullName"].replace(" ", " \u0000", 1) + "\ud800"
        if contact.get("emailAddress"):
            contact["emailAddress"] = "\u0000" + contact["emailAddress"]
        contact["addresses"][0]["city\u0000"] = "Bengaluru\u0000"
    answer["extra\u0000"] = ["\u0000"]
    flow.attestr.companies[cin] = answer
    company = flow.company("Nilgiri", cin + "\u0000")
    job = flow.wait_for_job(flow.webhook(company).json()["job_id"])
    assert job["status"] == "succeeded" and job["attempts"] == 1, job
    assert flow.attestr.calls_for(cin) == 1
    names = sorted(c["Name"] for c in flow.contacts())
    assert names == ["Ananya Rao", "Meera Krishnan", "Vikram Sethi"]
    assert not any("\u0000" in json.dumps(c) for c in flow.contacts())


async def test_postgresql_refusing_data_is_said_as_such(pool: asyncpg.Pool) -> None:
    """What PostgreSQL itself answers for a character it cannot store: a refusal of the data
    (SQLSTATE class 22), which fails the job once, never "the database could not be reached"."""
    with pytest.raises(REFUSED_BY_DATABASE) as refused:
        await pool.execute("SELECT $1::text", "before\x00after")
    message = refused_by_database(refused.value)
    assert (
        message.startswith("PostgreSQL refused this company's data (")
        and "could not be reached" not in message
    )
    assert not isinstance(refused.value, asyncpg.exceptions.ConnectionDoesNotExistError)


def _gauge(text: str, name: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return float(line.split()[-1])


def test_metrics_read_the_database_at_most_every_few_seconds(quiet_service: ServiceProcess) -> None:
    """A scrape costs no more than a webhook: the gauges are read again at most every 5 s."""
    queued = 'contact_sync_jobs{status="queued"}'
    httpx.get(quiet_service.url + "/metrics")
    time.sleep(GAUGES_MAX_AGE_S + 0.2)
    before = _gauge(httpx.get(quiet_service.url + "/metrics").text, queued)  # read now
    record = "recMETRICS0000001"
    stored = httpx.post(
        quiet_service.url + "/webhooks/airtable", json={"record_id": record}, headers=JSON_ENDPOINTS[0][1]
    )
    assert stored.status_code == 202 and not stored.json()["deduplicated"]
    assert _gauge(httpx.get(quiet_service.url + "/metrics").text, queued) == before  # the last values
    time.sleep(GAUGES_MAX_AGE_S + 0.2)
    assert _gauge(httpx.get(quiet_service.url + "/metrics").text, queued) == before + 1


def test_a_slow_body_is_refused_and_an_idle_connection_closed(quiet_service: ServiceProcess) -> None:
    """A client that sends its body slowly gets 408 after 10 s (not a connection held for ever);
    one that keeps a connection open doing nothing is closed after 5 s."""
    host, port = quiet_service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as slow:
        slow.sendall(
            b"POST /webhooks/airtable HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"X-Webhook-Secret: {SECRET}\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"record_id": '
        )
        started = time.monotonic()
        answer = slow.recv(65_536).decode()
        waited = time.monotonic() - started
        while "}}" not in answer and (more := slow.recv(65_536)):
            answer += more.decode()
    assert answer.startswith("HTTP/1.1 408") and '"code":"request_timeout"' in answer, answer
    assert BODY_TIMEOUT_S - 1 < waited < BODY_TIMEOUT_S + 5
    with socket.create_connection((host, int(port)), timeout=30) as idle:
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer_bytes = idle.recv(65_536)
        while b'"ok"}' not in answer_bytes:
            answer_bytes += idle.recv(65_536)
        assert answer_bytes.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert idle.recv(65_536) == b""  # closed by the server
        assert time.monotonic() - started < 10
