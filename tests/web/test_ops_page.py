"""The operator's page over plain HTTP: who may see it, what a forged or cross-site request
gets, the headers on every answer, and filters that cannot be read."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import quote, unquote

import asyncpg
import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import Response

from service.web import limits
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
    for forged in ["a-token-no-one-was-given", API_KEY, "x" * 5000]:
        answer = httpx.get(quiet_service.url + "/ops/", cookies={sessions.COOKIE: forged})
        assert answer.status_code == 303, forged[:20]


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
    assert client.post("/ops/attestr/pause", data={"other": "field"}).status_code == 403
    forged = token[:-1] + ("1" if token.endswith("0") else "0")  # one hex digit off, never the token
    assert client.post("/ops/attestr/pause", data={"csrf": forged}).status_code == 403
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
    said = client.get("/ops/jobs?done=retried_window&n=3")  # where a window's retry lands
    assert "3 failed job(s) queued again." in said.text
    assert "<script" not in client.get("/ops/jobs?done=<script>&n=<b>").text


@given(st.one_of(st.text(max_size=40), st.text(alphabet="/.%2e\\ops?=", max_size=40).map("/ops/".__add__)))
@example("/ops/../..//evil.example")
@example("/ops/%2e%2e//x")
@example("/ops/%2E%2E/%2e%2e/")
def test_after_sign_in_the_page_goes_nowhere_but_ops(target: str) -> None:
    went = rendering.safe_next(target)
    path = unquote(went.partition("?")[0])
    assert path == "/ops" or path.startswith("/ops/")
    assert "//" not in path and "\\" not in path and went.isprintable()
    assert not any(part in (".", "..") for part in path.split("/"))


def _request(cookie: str | None) -> Request:
    headers = [(b"cookie", f"{sessions.COOKIE}={cookie}".encode())] if cookie else []
    return Request({"type": "http", "headers": headers, "scheme": "http", "server": ("t", 80), "path": "/"})


async def test_a_session_ends_when_signed_out_expired_or_its_key_removed(pool: asyncpg.Pool) -> None:
    key, other = "an-api-key-long-enough", "another-api-key-long-enough"

    async def started() -> str:
        response = Response()
        await sessions.start(response, _request(None), pool, key, 60)
        (cookie,) = [v for k, v in response.raw_headers if k == b"set-cookie"]
        token = cookie.decode().split(";")[0].split("=", 1)[1]
        assert key not in cookie.decode() and sessions.key_id(key) not in cookie.decode()
        return token

    token = await started()
    session = await sessions.signed_in(_request(token), pool, (other, key), 60)
    assert session is not None and session.key_id == sessions.key_id(key)
    assert await sessions.signed_in(_request(token), pool, (other,), 60) is None  # the key was removed
    assert await sessions.signed_in(_request(None), pool, (key,), 60) is None
    second = await sessions.signed_in(_request(await started()), pool, (key,), 60)
    assert second is not None and second.csrf != session.csrf  # each session its own token
    await sessions.end(Response(), pool, session)
    assert (
        await sessions.signed_in(_request(token), pool, (key,), 60) is None
    )  # signed out: a copy is refused
    fresh = await started()
    assert await sessions.signed_in(_request(fresh), pool, (key,), 60) is not None
    await pool.execute("UPDATE ops_sessions SET expires_at = now() - interval '1 second'")
    assert await sessions.signed_in(_request(fresh), pool, (key,), 60) is None  # expired
    lowered = await started()  # OPS_SESSION_MAX_AGE_S lowered since it began: it ends sooner
    await pool.execute("UPDATE ops_sessions SET created_at = now() - interval '30 seconds'")
    assert await sessions.signed_in(_request(lowered), pool, (key,), 60) is not None
    assert await sessions.signed_in(_request(lowered), pool, (key,), 20) is None
    # A key removed from API_KEYS: its sessions end at the next start, for good.
    await sessions.end_removed_keys(pool, (other,))
    assert await sessions.signed_in(_request(lowered), pool, (other, key), 60) is None


def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(
    quiet_service: ServiceProcess, signed_in: tuple[httpx.Client, str]
) -> None:
    client, token = signed_in
    copied = dict(client.cookies)
    assert client.post("/ops/signout", data={"csrf": token}).status_code == 303
    again = httpx.Client(base_url=quiet_service.url, cookies=copied)
    assert again.get("/ops/jobs").status_code == 303
    assert again.post("/ops/attestr/pause", data={"csrf": token}).status_code == 401


def test_paths_and_methods_not_served_are_pages_with_the_headers(signed_in: tuple[httpx.Client, str]) -> None:
    client, _ = signed_in
    for method, path, status in [
        ("GET", "/ops/jobs/", 404),  # no trailing-slash redirect built from the Host header
        ("GET", "/ops/nope", 404),
        ("GET", "/ops/companies/", 404),
        ("GET", "/ops/jobs/1/retry", 405),
        ("GET", "/ops/signout", 405),
    ]:
        answer = client.request(method, path, headers={"Host": "elsewhere.example"})
        assert answer.status_code == status, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert answer.headers["x-frame-options"] == "DENY", path
        assert "location" not in answer.headers, path


def test_only_wrong_keys_count_towards_the_sign_in_limit(quiet_service: ServiceProcess) -> None:
    # One office's address of its own (the service takes X-Forwarded-For from a proxy on loopback).
    office = {"X-Forwarded-For": "203.0.113.7"}

    def sign_in(key: str, query: str = "") -> httpx.Response:
        return httpx.post(f"{quiet_service.url}/ops/signin{query}", data={"api_key": key}, headers=office)

    def window() -> int:  # the sign-in limit's window (API_RATE_WINDOW_S, 60 s here) now
        return int(time.time() // 60)

    for _ in range(limits.SIGN_IN_ATTEMPTS + 2):
        assert sign_in(API_KEY).status_code == 303
    for again in (False, True):  # a window that ends midway starts the count again: once more
        started = window()
        for _ in range(limits.SIGN_IN_ATTEMPTS):
            assert sign_in("wrong-key-guess").status_code in ((401, 429) if again else (401,))
        refused = httpx.post(
            f"{quiet_service.url}/ops/signin",
            data={"api_key": API_KEY, "next": "/ops/jobs/7"},
            headers=office,
        )  # as the form sends it: `next` in the body
        if window() == started:
            break
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert 'name="next" value="/ops/jobs/7"' in refused.text
    elsewhere = httpx.post(quiet_service.url + "/ops/signin", data={"api_key": API_KEY})
    assert elsewhere.status_code == 303  # another address is not held up


def test_a_form_of_another_kind_is_refused(signed_in: tuple[httpx.Client, str]) -> None:
    client, token = signed_in
    answer = client.post(
        "/ops/attestr/pause", content=f"csrf={token}", headers={"Content-Type": "text/plain"}
    )
    assert answer.status_code == 400 and "application/x-www-form-urlencoded" in answer.text


def test_resuming_attestr_with_jobs_queued_asks_first(signed_in: tuple[httpx.Client, str]) -> None:
    client, token = signed_in
    queued = client.post(
        "/ops/companies/recRRRRRRRRRRRRRR/sync", data={"csrf": token, "confirmed": "yes"}
    )  # no worker in this service: the job stays queued
    assert queued.status_code == 303
    asked = client.post("/ops/attestr/resume", data={"csrf": token})
    assert asked.status_code == 200 and "queued job(s) go on" in asked.text
    done = client.post("/ops/attestr/resume", data={"csrf": token, "confirmed": "yes"})
    assert done.status_code == 303 and "done=resumed" in done.headers["location"]
