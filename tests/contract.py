"""Where the contract tests run: the stand-ins, or a real scratch base and a real Attestr token.

`pytest -m live` runs the contract tests against what the LIVE_* variables name (never in CI,
which has none; without them every live test is skipped, saying which variables to set):

    LIVE_AIRTABLE_TOKEN, LIVE_AIRTABLE_BASE   a personal access token and a scratch base (app…)
    LIVE_AIRTABLE_URL                         default https://api.airtable.com
    LIVE_ATTESTR_TOKEN, LIVE_ATTESTR_CIN      an Attestr token and a CIN it has data for
    LIVE_ATTESTR_URL                          default the production address

The run makes its own tables in the base ("contact-sync live Companies" and "… Contacts", kept
for the next run: Airtable's API cannot delete a table or a field) and deletes every record and
webhook it wrote, also when a test fails. It stays under Airtable's 5 requests a second.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pyairtable import Api
from pyairtable.api.table import Table

from service.standins.airtable import AirtableStandIn

COMPANIES = "contact-sync live Companies"
CONTACTS = "contact-sync live Contacts"
STATUSES = ["Queued", "Running", "Waiting", "Synced", "No Data", "Failed"]

AIRTABLE_VARIABLES = ("LIVE_AIRTABLE_TOKEN", "LIVE_AIRTABLE_BASE")
ATTESTR_VARIABLES = ("LIVE_ATTESTR_TOKEN", "LIVE_ATTESTR_CIN")


def live_settings(names: tuple[str, ...], what: str) -> dict[str, str]:
    """The LIVE_* variables, or a skip that says which to set."""
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        pytest.skip(f"{what}: set {' and '.join(missing)} to run it (see tests/contract.py)")
    return {name: os.environ[name] for name in names}


def _companies_fields() -> list[dict[str, Any]]:
    return [
        {"name": "Company Name", "type": "singleLineText"},
        {"name": "CIN", "type": "singleLineText"},
        {
            "name": "Contacts Sync Status",
            "type": "singleSelect",
            "options": {"choices": [{"name": s} for s in STATUSES]},
        },
        {"name": "Contacts Found", "type": "number", "options": {"precision": 0}},
        {
            "name": "Refresh Contacts",
            "type": "checkbox",
            "options": {"icon": "check", "color": "greenBright"},
        },
        {"name": "Notes", "type": "multilineText"},
    ]


def _contacts_fields(companies_id: str) -> list[dict[str, Any]]:
    return [
        {"name": "Name", "type": "singleLineText"},
        {"name": "Contact Key", "type": "singleLineText"},
        {"name": "Phone Number", "type": "phoneNumber"},
        {"name": "Email", "type": "email"},
        {"name": "DIN", "type": "singleLineText"},
        {
            "name": "Phone Type",
            "type": "singleSelect",
            "options": {"choices": [{"name": "Mobile"}, {"name": "Landline"}]},
        },
        {"name": "Company", "type": "multipleRecordLinks", "options": {"linkedTableId": companies_id}},
        {
            "name": "Status",
            "type": "singleSelect",
            "options": {"choices": [{"name": "New"}, {"name": "Contacted"}]},
        },
        {"name": "Notes", "type": "multilineText"},
        # Each live run adds one option here (the API cannot remove one): typecast's new options.
        {"name": "Option Probe", "type": "singleSelect", "options": {"choices": [{"name": "First"}]}},
    ]


_SENT: dict[str, deque[float]] = {}  # per base: when its requests went, shared by every target
_SENT_LOCK = threading.Lock()


def _paced(request: Callable[..., Any], base: str, per_second: float) -> Callable[..., Any]:
    """At most `per_second` requests to `base` in any sliding second (Airtable allows 5)."""
    sent = _SENT.setdefault(base, deque())

    def paced(*args: Any, **kwargs: Any) -> Any:
        with _SENT_LOCK:
            while len(sent) >= per_second:
                wait = sent[0] + 1.05 - time.monotonic()
                if wait <= 0:
                    sent.popleft()
                else:
                    time.sleep(wait)
            sent.append(time.monotonic())
        return request(*args, **kwargs)

    return paced


@dataclass
class AirtableTarget:
    """A base to run the Airtable contract tests against, with scratch tables and the records
    each test writes (deleted after it)."""

    name: str  # "stand-in" or "live"
    url: str
    token: str
    base_id: str
    standin: AirtableStandIn | None = None
    written: list[tuple[Table, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.api = Api(self.token, endpoint_url=self.url, retry_strategy=None, timeout=(10, 30))
        self._pace(self.api)
        self.base = self.api.base(self.base_id)
        tables = {t.name: t for t in self.base.schema(force=True).tables}
        if COMPANIES not in tables:
            self.base.create_table(COMPANIES, _companies_fields(), "contact-sync's live contract tests")
        companies_id = self.base.schema(force=True).table(COMPANIES).id
        if CONTACTS not in tables:
            self.base.create_table(
                CONTACTS, _contacts_fields(companies_id), "contact-sync's live contract tests"
            )
        self.companies = self.base.table(COMPANIES)
        self.contacts = self.base.table(CONTACTS)
        for table in (self.companies, self.contacts):  # what an interrupted run left
            leftovers = [r["id"] for r in table.all(fields=[])]
            if leftovers:
                table.batch_delete(leftovers)

    def _pace(self, api: Api) -> None:
        # A real base takes 5 requests a second; the in-process stand-in is told to take more, but
        # its user's 50 a second still hold.
        pace = 4 if self.standin is None else 40
        paced = _paced(api.session.request, f"{self.url} {self.base_id}", pace)
        api.session.request = paced  # type: ignore[method-assign]

    def api_with(self, token: str) -> Api:
        """Another token on the same base, paced with the rest."""
        api = Api(token, endpoint_url=self.url, retry_strategy=None, timeout=(10, 30))
        self._pace(api)
        return api

    def schema(self) -> Any:
        return self.base.schema(force=True)

    def field_id(self, table: str, name: str) -> str:
        return self.schema().table(table).field(name).id

    def create(self, table: Table, fields: dict[str, Any], **options: Any) -> dict[str, Any]:
        record = table.create(fields, **options)
        self.written.append((table, record["id"]))
        return record

    def remember(self, table: Table, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.written += [(table, r["id"]) for r in records]
        return records

    def clean(self) -> None:
        """Delete what the test wrote, the companies last (the contacts link to them)."""
        for table in (self.contacts, self.companies):
            ids = sorted({record_id for t, record_id in self.written if t is table})
            existing = {r["id"] for r in table.all(fields=[])}
            gone = [record_id for record_id in ids if record_id in existing]
            if gone:
                table.batch_delete(gone)
        self.written.clear()
        for hook in self.request("GET", "webhooks")["webhooks"]:
            scope = hook["specification"]["options"]["filters"].get("recordChangeScope")
            if scope in (self.companies.id, self.contacts.id):
                self.request("DELETE", f"webhooks/{hook['id']}")

    def request(self, method: str, path: str, **options: Any) -> Any:
        """A request to `/v0/bases/{base}/<path>` (the webhooks' endpoints)."""
        return self.api.request(
            method, str(self.api.build_url("bases", self.base_id, *path.split("/"))), **options
        )


@pytest.fixture(scope="module", params=["stand-in", pytest.param("live", marks=pytest.mark.live)])
def airtable_target(request: pytest.FixtureRequest) -> Iterator[AirtableTarget]:
    if request.param == "live":
        env = live_settings(AIRTABLE_VARIABLES, "the live Airtable contract tests")
        yield AirtableTarget(
            "live",
            os.environ.get("LIVE_AIRTABLE_URL") or "https://api.airtable.com",
            env["LIVE_AIRTABLE_TOKEN"],
            env["LIVE_AIRTABLE_BASE"],
        )
        return
    from service.standins.server import serve_in_thread

    standin = AirtableStandIn(rate_limit=10_000)
    with serve_in_thread(standin.app()) as url:
        yield AirtableTarget("stand-in", url, standin.token, standin.base_id, standin)


@dataclass
class AttestrTarget:
    name: str
    url: str
    token: str
    cin: str  # a CIN it has data for


@pytest.fixture(scope="module", params=["stand-in", pytest.param("live", marks=pytest.mark.live)])
def attestr_target(request: pytest.FixtureRequest) -> Iterator[AttestrTarget]:
    from service.standins.attestr import PATH, AttestrStandIn
    from service.standins.server import serve_in_thread

    if request.param == "live":
        env = live_settings(ATTESTR_VARIABLES, "the live Attestr contract tests (one paid call)")
        url = (
            os.environ.get("LIVE_ATTESTR_URL")
            or "https://api.attestr.com/api/v2/public/leadx/mca-cin-contact"
        )
        yield AttestrTarget("live", url, env["LIVE_ATTESTR_TOKEN"], env["LIVE_ATTESTR_CIN"])
        return
    standin = AttestrStandIn()
    with serve_in_thread(standin.app()) as url:
        yield AttestrTarget("stand-in", url + PATH, standin.token, "U72200KA2015PTC081234")


@pytest.fixture
def target(airtable_target: AirtableTarget) -> Iterator[AirtableTarget]:
    """The module's base; what the test wrote is deleted after it, whatever happened."""
    try:
        yield airtable_target
    finally:
        airtable_target.clean()
