"""The operator's page in a real browser: the OS's headless Chromium, driven by Playwright.

An operator signs in, finds a failed job, reads its timeline, retries it and sees it succeed,
pauses and resumes Attestr; a page of another site cannot make the browser act for them; what
Airtable's users typed is shown as text, never run.
"""

from __future__ import annotations

import html
import os
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.async_api import Dialog, Page, async_playwright, expect

from tests.flow import API_KEY, Flow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Skipped without Chromium, but for CI (`.ci/run` installs it and sets CHROMIUM_REQUIRED).
pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(
        CHROMIUM is None and not os.environ.get("CHROMIUM_REQUIRED"),
        reason="Chromium is not installed (apt-get install chromium)",
    ),
]
NILGIRI = "U72200KA2015PTC081234"
KONKAN = "U51909MH2018PTC309876"
DELHI = "U01100DL2020PTC365432"  # Attestr has no contacts for it
# As the machine's notes give them: headless, and no connection of Chromium's own (the sandbox
# has no network but the registries; refused connections would only slow it down).
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = os.environ.get("SCREENSHOTS_DIR")  # a folder: the docs' screenshots are taken there


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    """A new page of Chromium (a browser per test: Playwright's objects live on one event loop)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        opened = await browser.new_page(viewport={"width": 1280, "height": 900})
        opened.set_default_timeout(30_000)
        dialogs: list[str] = []

        async def dismissed(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            await dialog.dismiss()

        opened.on("dialog", dismissed)
        try:
            yield opened
        finally:
            await browser.close()
    assert dialogs == [], f"a script ran in the page: {dialogs}"


async def _shot(page: Page, name: str) -> None:
    if SHOTS:
        await page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


async def _sign_in(page: Page, flow: Flow, then: str = "/ops/") -> None:
    await page.goto(flow.service.url + then)
    await expect(page).to_have_url(
        f"{flow.service.url}/ops/signin?next={then.replace('?', '%3F').replace('=', '%3D')}"
    )
    await page.fill("#api_key", API_KEY)
    await page.click("form button[type=submit]")
    await expect(page).to_have_url(flow.service.url + then)


async def test_an_operator_finds_a_failed_job_retries_it_and_pauses_attestr(flow: Flow, page: Page) -> None:
    record = flow.company("Nilgiri Hills Tea Pvt Ltd", NILGIRI)
    flow.attestr.fail_next(NILGIRI, 4001)  # Attestr refuses the request: the job fails at once
    job_id = flow.webhook(record, NILGIRI).json()["job_id"]
    assert flow.wait_for_job(job_id)["status"] == "failed"
    other = flow.company("Konkan Coast Logistics", KONKAN)
    for _ in range(2):  # the second is served from the answer stored by the first
        assert flow.wait_for_job(flow.webhook(other, KONKAN).json()["job_id"])["status"] == "succeeded"
    empty = flow.company("Delhi Dairy Farms", DELHI)
    assert flow.wait_for_job(flow.webhook(empty, DELHI).json()["job_id"])["status"] == "succeeded"

    # Signed out, the page asks for a key, and a wrong one is refused.
    await page.goto(flow.service.url + "/ops/jobs?status=failed")
    await expect(page.locator("h1")).to_have_text("Sign in")
    await _shot(page, "signin")
    await page.fill("#api_key", "not-one-of-the-api-keys")
    await page.click("form button[type=submit]")
    await expect(page.locator(".error")).to_contain_text("not one of API_KEYS")
    await page.fill("#api_key", API_KEY)
    await page.click("form button[type=submit]")
    await expect(page).to_have_url(flow.service.url + "/ops/jobs?status=failed")

    # The failed job is listed; its timeline says what happened.
    row = page.locator("table.jobs tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Nilgiri Hills Tea Pvt Ltd")  # as typed: Attestr never named it
    await expect(row).to_contain_text(NILGIRI)
    await expect(row).to_contain_text("Attestr refused the request as malformed")
    await page.click("text=Clear")
    rows = page.locator("table.jobs tbody tr")
    await expect(rows).to_have_count(4)
    await expect(rows.nth(1)).to_contain_text("stored answer")  # Konkan's second sync
    await expect(rows.nth(2)).to_contain_text("paid")
    await _shot(page, "jobs")
    await page.click("text=Failed")
    await page.click(f"a[href='/ops/jobs/{job_id}']")
    timeline = page.locator("ol.timeline")
    await expect(timeline).to_contain_text("Queued by the Airtable automation's webhook")
    await expect(timeline).to_contain_text("Attestr refused the call (not billed)")
    await expect(timeline).to_contain_text("Attempt 1 failed for good")
    await _shot(page, "job-failed")

    # Retry: it asks first (it may pay), then the job runs again and succeeds.
    await page.click("text=Retry this job")
    await expect(page.locator(".cost")).to_contain_text("may pay for up to 1 Attestr call")
    await page.click("text=Yes: Retry job")
    await expect(page.locator(".flash")).to_have_text("The job is queued again.")
    await expect(page.locator("h1 .badge")).to_have_text("succeeded")  # the page reloads itself meanwhile
    await expect(page.locator("ol.timeline")).to_contain_text("Attestr answered with contacts (paid)")
    await expect(page.locator("table").last).to_contain_text("created")
    await _shot(page, "job-succeeded")
    assert flow.attestr.calls_for(NILGIRI) == 2  # the refused one, then the retry's

    # The company's page: its jobs and its contacts, masked.
    await page.click(f"a[href='/ops/companies/{record}']")
    await expect(page.locator("h1")).to_contain_text(
        "NILGIRI SOFTWARE PRIVATE LIMITED"
    )  # as Attestr names it
    contacts = page.locator("table").last
    await expect(contacts.locator("tbody tr")).not_to_have_count(0)
    shown = await contacts.inner_text()
    assert "@" not in shown or "•••@" in shown
    await _shot(page, "company")

    # Pause and resume Attestr from the overview.
    await page.click("nav >> text=Overview")
    await page.click("text=Pause Attestr calls")
    await expect(page.locator(".flash")).to_contain_text("Attestr calls are paused")
    await expect(page.locator("#attestr .big")).to_have_text("Paused")
    assert flow.http.get("/stats", headers={"X-API-Key": API_KEY}).json()["attestr"]["paused"] is True
    await _shot(page, "overview-paused")
    await page.click("text=Resume Attestr calls")
    await expect(page.locator("#attestr .big")).to_have_text("Calling")
    assert flow.http.get("/stats", headers={"X-API-Key": API_KEY}).json()["attestr"]["paused"] is False
    await _shot(page, "overview")
    events = [line for line in flow.service.logs() if line["event"] == "ops.action"]
    assert [e["action"] for e in events] == ["retry_job", "pause_attestr", "resume_attestr"]

    # Signed out, the pages ask again.
    await page.click("text=Sign out")
    await expect(page.locator(".flash")).to_have_text("Signed out.")
    await page.goto(flow.service.url + "/ops/jobs")
    await expect(page.locator("h1")).to_have_text("Sign in")


@contextmanager
def _other_site(html: str) -> Iterator[int]:
    """A page of another origin on this machine (Chromium keeps public pages from reaching local
    addresses at all, so the attacker's page must be local too): its port."""

    class _Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


async def test_another_site_cannot_act_for_a_signed_in_operator(flow: Flow, page: Page) -> None:
    await _sign_in(page, flow)
    token = await page.locator("input[name=csrf]").first.get_attribute("value")
    paused = lambda: flow.http.get("/stats", headers={"X-API-Key": API_KEY}).json()["attestr"]["paused"]  # noqa: E731
    form = f"""<form method="post" action="{flow.service.url}/ops/attestr/pause">
               <input type="hidden" name="csrf" value="{token}"><button>win a prize</button></form>"""
    with _other_site(form) as port:
        # Another site (localhost is not 127.0.0.1's site): the browser sends no session cookie
        # (SameSite=Strict), even with the right token copied into the form.
        await page.goto(f"http://localhost:{port}/prize")
        async with page.expect_response(f"{flow.service.url}/ops/attestr/pause") as answered:
            await page.click("text=win a prize")
        assert (await answered.value).status == 401
        # Another origin of the same site (another port): the cookie goes, Origin gives it away.
        await page.goto(f"http://127.0.0.1:{port}/prize")
        async with page.expect_response(f"{flow.service.url}/ops/attestr/pause") as answered:
            await page.click("text=win a prize")
        assert (await answered.value).status == 403
        await expect(page.locator(".error")).to_have_text("Refused: this request came from another site")
    assert paused() is False

    # Framed by another page, the operator's page does not show (frame-ancestors 'none').
    with _other_site(f'<iframe id="f" src="{flow.service.url}/ops/"></iframe>') as port:
        async with page.expect_response(f"{flow.service.url}/ops/") as framed:
            await page.goto(f"http://127.0.0.1:{port}/framed")
        assert (await framed.value).headers["x-frame-options"] == "DENY"
        frame = page.frame_locator("#f")
        await expect(frame.locator("body")).not_to_contain_text("Overview")
        assert [f.url for f in page.frames][1] != f"{flow.service.url}/ops/"


async def test_what_outside_services_wrote_is_shown_never_run(flow: Flow, page: Page) -> None:
    # Markup is taken out where answers are read (identifiers.plain), but markup written as
    # entities comes out of that as markup: the page must still show it as text.
    name = '<img src=x onerror="alert(1)"><script>alert(2)</script>Konkan & Sons'
    flow.attestr.companies[KONKAN]["businessName"] = html.escape(name)
    flow.attestr.companies[KONKAN]["contacts"][1]["fullName"] = html.escape(
        "Farah <b onmouseover=alert(3)>Khan</b>"
    )
    record = flow.company("Konkan", KONKAN)
    assert flow.wait_for_job(flow.webhook(record, KONKAN).json()["job_id"])["status"] == "succeeded"
    await _sign_in(page, flow, f"/ops/companies/{record}")
    await expect(page.locator("h1")).to_contain_text(name)
    await expect(page.locator("table").last).to_contain_text("Khan</b>")
    assert await page.locator("main img, main script, main b").count() == 0
    await page.goto(f"{flow.service.url}/ops/jobs?company=Konkan+%26")
    await expect(page.locator("table.jobs tbody tr")).to_have_count(1)
    await expect(page.locator("table.jobs")).to_contain_text(name)
    # the page's `dialog` guard fails the test if any alert ran
