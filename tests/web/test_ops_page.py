"""The operator's page over plain HTTP: who may see it, what a forged or cross-site request
gets, the headers on every answer, and filters that cannot be read."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from service.web.ops import rendering
from service.web.ops import session as sessions
from tests.conftest import ServiceProcess
from tests.flow import API_KEY

PAGES = ["/ops/", "/ops/jobs", "/ops/jobs/1", "/ops/companies/recAAAAAAAAAAAAAA"]
ACTIONS = [
    "/ops/jobs/1/retry",
    "/ops/jobs/retry-failed",
    "/ops/companies/recAAAAAAAAAAAAAA/sync",
    "/ops/attestr/pause",
    "/ops/attestr/resume",
    "/ops/signout",
]


@pytest.fixture
def signed_in(quiet_service: ServiceProcess) -> Iterator[tuple[httpx.Client, str]]:
    """A client holding a session cookie, and the session's CSRF token."""
    with httpx.Client(base_url=quiet_service.url) as client:
        answer = client.post("/ops/signin", data={"api_key": API_KEY, "next": "/ops/jobs"})
        assert answer.status_code == 303 and answer.headers["location"] == "/ops/jobs"
        page = client.get("/ops/jobs")
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert token is not None
        yield client, token.group(1)


def test_signed_out_nothing_answers_but_the_sign_in(quiet_service: ServiceProcess) -> None:
    for path in PAGES:
        answer = httpx.get(quiet_service.url + path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == f"/ops/signin?next={quote(path)}"
    for path in ACTIONS:
        answer = httpx.post(quiet_service.url + path, data={"csrf": "x", "confirmed": "yes"})
        assert answer.status_code == 401, path
        assert "Sign in first" in answer.text
    forged = {sessions.COOKIE: "eyJhIjoxfQ.forged.signature"}
    assert httpx.get(quiet_service.url + "/ops/", cookies=forged).status_code == 303
    signed_with_another_key = sessions.URLSafeTimedSerializer("a-key-not-in-api-keys", salt=sessions._SALT)
    cookie = {sessions.COOKIE: signed_with_another_key.dumps("a-session")}
    assert httpx.get(quiet_service.url + "/ops/", cookies=cookie).status_code == 303


def test_a_wrong_key_is_refused_and_the_cookie_is_strict(quiet_service: ServiceProcess) -> None:
    wrong = httpx.post(quiet_service.url + "/ops/signin", data={"api_key": "not-the-key-at-all"})
    assert wrong.status_code == 401
    assert "not one of API_KEYS" in wrong.text
    assert sessions.COOKIE not in wrong.cookies
    right = httpx.post(quiet_service.url + "/ops/signin", data={"api_key": API_KEY})
    cookie = right.headers["set-cookie"]
    assert right.status_code == 303 and right.headers["location"] == "/ops/"
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/ops", "Max-Age=28800"):
        assert attribute.lower() in cookie.lower(), attribute
    assert "secure" not in cookie.lower()  # plain HTTP here; behind HTTPS it is Secure
    # A sign-in elsewhere than /ops is not followed (no open redirect).
    away = httpx.post(quiet_service.url + "/ops/signin", data={"api_key": API_KEY, "next": "//evil.example/"})
    assert away.headers["location"] == "/ops/"


def test_every_answer_forbids_framing_and_caching(
    quiet_service: ServiceProcess, signed_in: tuple[httpx.Client, str]
) -> None:
    client, _ = signed_in
    answers = [
        httpx.get(quiet_service.url + "/ops/signin"),
        httpx.get(quiet_service.url + "/ops/jobs"),  # the redirect to sign in
        client.get("/ops/"),
        client.get("/ops/jobs/999999"),  # a 404 page
        client.get("/ops/ops.css"),
    ]
    for answer in answers:
        assert answer.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers.get_list("cache-control") == (
            ["max-age=3600"] if answer.url.path.endswith(".css") else ["no-store"]
        )
    assert answers[3].status_code == 404 and "No job 999999" in answers[3].text


def test_a_post_without_the_token_or_from_another_site_is_refused(
    quiet_service: ServiceProcess, signed_in: tuple[httpx.Client, str]
) -> None:
    client, token = signed_in
    assert client.post("/ops/attestr/pause", data={}).status_code == 403
    assert client.post("/ops/attestr/pause", data={"csrf": token[:-1] + "0"}).status_code == 403
    other = {"Origin": "https://elsewhere.example"}
    assert client.post("/ops/attestr/pause", data={"csrf": token}, headers=other).status_code == 403
    cross = {"Sec-Fetch-Site": "cross-site"}
    assert client.post("/ops/attestr/pause", data={"csrf": token}, headers=cross).status_code == 403
    same = {"Origin": quiet_service.url, "Sec-Fetch-Site": "same-origin"}
    paused = client.post("/ops/attestr/pause", data={"csrf": token}, headers=same)
    assert paused.status_code == 303 and paused.headers["location"] == "/ops/?done=paused"
    resumed = client.post("/ops/attestr/resume", data={"csrf": token}, headers=same)
    assert resumed.status_code == 303
    deadline = time.monotonic() + 30  # the child's lines reach its log file as it writes them
    while "resume_attestr" not in {line.get("action") for line in quiet_service.logs()}:
        assert time.monotonic() < deadline, "no ops.action line for the resume"
        time.sleep(0.05)
    events = [line for line in quiet_service.logs() if line["event"].startswith("ops.")]
    refused = [e["reason"] for e in events if e["event"] == "ops.refused"]
    assert refused == ["csrf token", "csrf token", "cross-site", "cross-site"]
    actions = [e["action"] for e in events if e["event"] == "ops.action"]
    assert actions[-2:] == ["pause_attestr", "resume_attestr"]
    assert API_KEY not in quiet_service.log_path.read_text()


def test_an_action_that_may_pay_asks_first(signed_in: tuple[httpx.Client, str]) -> None:
    client, token = signed_in
    record = "recQQQQQQQQQQQQQQ"
    asked = client.post(f"/ops/companies/{record}/sync", data={"csrf": token, "force": "yes"})
    assert asked.status_code == 200
    assert "may pay for up to 1 Attestr call" in asked.text
    assert 'name="confirmed" value="yes"' in asked.text and 'name="force" value="yes"' in asked.text
    assert client.get(f"/ops/companies/{record}").text.count("No job has named this record yet") == 1
    done = client.post(
        f"/ops/companies/{record}/sync", data={"csrf": token, "force": "yes", "confirmed": "yes"}
    )
    assert done.status_code == 303
    assert re.fullmatch(r"/ops/jobs/\d+\?done=queued", done.headers["location"])
    job = client.get(done.headers["location"])
    assert "Queued by a manual sync" in job.text and "a refresh" in job.text


def test_filters_that_cannot_be_read_are_named(signed_in: tuple[httpx.Client, str]) -> None:
    client, _ = signed_in
    for query, named in [
        ("status=lost", "state must be one of"),
        ("since=1y", "since must be one of"),
        ("before=abc", "before must be a job id"),
        ("cin=NOT-A-CIN", "cin"),
    ]:
        answer = client.get(f"/ops/jobs?{query}")
        assert answer.status_code == 422, query
        assert named in answer.text, query
    # Wildcards and quotes in a company filter are text, not patterns or SQL.
    for company in ["%", "_", "\\", "' OR 1=1 --", "<b>x</b>"]:
        answer = client.get("/ops/jobs", params={"company": company})
        assert answer.status_code == 200, company
    assert client.get("/ops/companies/not-a-record").status_code == 422


@given(st.text(max_size=40))
def test_after_sign_in_the_page_goes_nowhere_but_ops(target: str) -> None:
    went = rendering.safe_next(target)
    assert went == "/ops" or went.startswith("/ops/")
    assert not went.startswith("//") and "\\" not in went and went.isprintable()


def _request(cookie: str | None) -> Request:
    headers = [(b"cookie", f"{sessions.COOKIE}={cookie}".encode())] if cookie else []
    return Request({"type": "http", "headers": headers, "scheme": "http", "server": ("t", 80), "path": "/"})


def test_a_session_ends_when_it_expires_or_its_key_is_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    key, other = "an-api-key-long-enough", "another-api-key-long-enough"
    cookie = sessions.URLSafeTimedSerializer(key, salt=sessions._SALT).dumps("a-session")
    assert sessions.signed_in(_request(cookie), (other, key), 60) is not None
    assert sessions.signed_in(_request(cookie), (other,), 60) is None  # the key was removed
    assert sessions.signed_in(_request(None), (key,), 60) is None
    later = time.time() + 61
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: later)
    assert sessions.signed_in(_request(cookie), (key,), 60) is None  # expired
    monkeypatch.undo()
    # Each session has its own CSRF token.
    second = sessions.URLSafeTimedSerializer(key, salt=sessions._SALT).dumps("another-session")
    one, two = (sessions.signed_in(_request(c), (key,), 60) for c in (cookie, second))
    assert one is not None and two is not None and one.csrf != two.csrf
