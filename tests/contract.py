"""Where the contract tests run: the stand-ins, or a real scratch base and a real Attestr token.

`pytest -m live` runs the contract tests against what the LIVE_* variables name (never in CI,
which has none; without them every live test is skipped, saying which variables to set):

    LIVE_AIRTABLE_TOKEN, LIVE_AIRTABLE_BASE   a personal access token and a scratch base (app…)
    LIVE_AIRTABLE_URL                         default https://api.airtable.com
    LIVE_ATTESTR_TOKEN, LIVE_ATTESTR_CIN      an Attestr token and a CIN it has data for
    LIVE_ATTESTR_VERSION                      v2 (default) or v3
    LIVE_ATTESTR_CONSENT_ID                   with v3: a reusable consent covering the lookup
    LIVE_ATTESTR_URL                          default the production address of that version

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
from dataclasses import dataclass
from typing import Any

import pytest
from pyairtable import Api
from requests import HTTPError

from service.attestr.client import AttestrClient
from service.attestr.consent import Consent
from service.commands.doctor_airtable import FIELDS
from service.config import ATTESTR_DEFAULT_URL, DEFAULT_FIELDS
from service.standins.airtable import AirtableStandIn

COMPANIES = "contact-sync live Companies"
CONTACTS = "contact-sync live Contacts"

AIRTABLE_VARIABLES = ("LIVE_AIRTABLE_TOKEN", "LIVE_AIRTABLE_BASE")
ATTESTR_VARIABLES = ("LIVE_ATTESTR_TOKEN", "LIVE_ATTESTR_CIN")


def live_settings(names: tuple[str, ...], what: str) -> dict[str, str]:
    """The LIVE_* variables, or a skip that says which to set."""
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        pytest.skip(f"{what}: set {' and '.join(missing)} to run it (see tests/contract.py)")
    return {name: os.environ[name] for name in names}


# Fields people keep for themselves: the service never writes them. "Option Probe" gains one option
# a run (typecast's new options: the API cannot remove one).
_THEIRS = {
    COMPANIES: [{"name": "Notes", "type": "multilineText"}],
    CONTACTS: [
        {
            "name": "Status",
            "type": "singleSelect",
            "options": {"choices": [{"name": "New"}, {"name": "Contacted"}]},
        },
        {"name": "Notes", "type": "multilineText"},
        {"name": "Option Probe", "type": "singleSelect", "options": {"choices": [{"name": "First"}]}},
    ],
}


def _build_tables(base: Any) -> None:
    """The scratch tables, each field made the way `doctor --fix` makes it (Create field, with
    doctor's types and options); fields added to the service since an earlier run are added."""
    for table, key, kind in ((COMPANIES, "companies", "COMPANY_NAME"), (CONTACTS, "contacts", "NAME")):
        if table not in {t.name for t in base.schema(force=True).tables}:
            primary = [{"name": DEFAULT_FIELDS[kind], "type": "singleLineText"}]
            base.create_table(table, primary, "contact-sync's live contract tests")
        ids = {"companies": base.schema(force=True).table(COMPANIES).id}
        have = {f.name for f in base.schema(force=True).table(table).fields}
        wanted = [
            (DEFAULT_FIELDS[spec.key], *spec.create(ids))
            for spec in FIELDS
            if spec.table == key and spec.create
        ]
        wanted += [(f["name"], f["type"], f.get("options")) for f in _THEIRS[table]]
        for name, field_type, options in wanted:
            if name not in have:
                base.table(table).create_field(name, field_type, options=options)


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
    """A base to run the Airtable contract tests against, with scratch tables of its own, emptied
    after each test."""

    name: str  # "stand-in" or "live"
    url: str
    token: str
    base_id: str
    standin: AirtableStandIn | None = None

    def __post_init__(self) -> None:
        self.api = Api(self.token, endpoint_url=self.url, retry_strategy=None, timeout=(10, 30))
        self._pace(self.api)
        self.base = self.api.base(self.base_id)
        _build_tables(self.base)
        self.companies = self.base.table(COMPANIES)
        self.contacts = self.base.table(CONTACTS)
        self.clean()  # what an interrupted run left

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

    def clean(self) -> None:
        """Empty the scratch tables (they are the run's own) and delete the run's webhooks. A
        429 or 5xx on the way is waited out and tried again."""
        for attempt in range(4):
            try:
                for table in (self.contacts, self.companies):  # contacts first: they link to companies
                    ids = [r["id"] for r in table.all(fields=[])]
                    for start in range(0, len(ids), 10):
                        table.batch_delete(ids[start : start + 10])
                for hook in self.request("GET", "webhooks")["webhooks"]:
                    scope = hook["specification"]["options"]["filters"].get("recordChangeScope")
                    if scope in (self.companies.id, self.contacts.id):
                        self.request("DELETE", f"webhooks/{hook['id']}")
                break
            except HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else 0
                if attempt == 3 or not (status == 429 or status >= 500):
                    raise
                time.sleep(31 if status == 429 else 2)  # Airtable: wait 30 s after a 429

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
    version: str = "v2"
    consent_id: str | None = None  # v3: a reusable consent covering the lookup

    def client(self, token: str | None = None) -> AttestrClient:
        """The service's own client for this target."""
        base = self.url.removesuffix("/leadx/mca-cin-contact")
        return AttestrClient(
            self.url,
            token or self.token,
            version=self.version,
            consent_url=f"{base}/consent" if self.version == "v3" else None,
        )

    def consent(self) -> Consent | None:
        return Consent(self.consent_id, None, "reusable") if self.consent_id else None

    def body(self, cin: str) -> dict[str, Any]:
        """A lookup's body as the service sends it."""
        carried = {"consent": {"consentId": self.consent_id}} if self.consent_id else {}
        return {"reg": cin, **carried}


@pytest.fixture(
    scope="module",
    params=["stand-in v2", "stand-in v3", pytest.param("live", marks=pytest.mark.live)],
)
def attestr_target(request: pytest.FixtureRequest) -> Iterator[AttestrTarget]:
    from service.standins.attestr import PATH, PATH_V3, STANDIN_CONSENT_ID, AttestrStandIn
    from service.standins.server import serve_in_thread

    if request.param == "live":
        env = live_settings(ATTESTR_VARIABLES, "the live Attestr contract tests (one paid call)")
        version = os.environ.get("LIVE_ATTESTR_VERSION") or "v2"
        if version == "v3" and not os.environ.get("LIVE_ATTESTR_CONSENT_ID"):
            pytest.skip("the live Attestr V3 contract tests: set LIVE_ATTESTR_CONSENT_ID to run them")
        url = os.environ.get("LIVE_ATTESTR_URL") or ATTESTR_DEFAULT_URL.format(version=version)
        yield AttestrTarget(
            "live",
            url,
            env["LIVE_ATTESTR_TOKEN"],
            env["LIVE_ATTESTR_CIN"],
            version,
            os.environ.get("LIVE_ATTESTR_CONSENT_ID") if version == "v3" else None,
        )
        return
    standin = AttestrStandIn()
    v3 = request.param == "stand-in v3"
    with serve_in_thread(standin.app()) as url:
        yield AttestrTarget(
            request.param,
            url + (PATH_V3 if v3 else PATH),
            standin.token,
            "U72200KA2015PTC081234",
            "v3" if v3 else "v2",
            STANDIN_CONSENT_ID if v3 else None,
        )


@pytest.fixture
def target(airtable_target: AirtableTarget) -> Iterator[AirtableTarget]:
    """The module's base; what the test wrote is deleted after it, whatever happened."""
    try:
        yield airtable_target
    finally:
        airtable_target.clean()
