"""The Airtable stand-in's native webhooks keep Airtable's documented rules (see the sources in
`service/standins/airtable_webhooks.py`): what a payload holds depends on the specification's
includes, one action is one payload, a base holds ten webhooks, they expire and can be disabled,
payloads are deleted after a week while their cursors go on, and pings that keep failing are
turned off."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pyairtable import Api
from requests import HTTPError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.standins.airtable import AirtableStandIn
from service.standins.server import serve_in_thread
from tests.conftest import Running


@pytest.fixture
def api(airtable: Running[AirtableStandIn]) -> Api:
    airtable.standin.rate_limit = 10_000
    return Api(airtable.standin.token, endpoint_url=airtable.url, retry_strategy=None, timeout=(5, 10))


def _hooks_url(api: Api, airtable: Running[AirtableStandIn], *rest: str) -> str:
    return str(api.build_url("bases", airtable.standin.base_id, "webhooks", *rest))


def _create(
    api: Api, airtable: Running[AirtableStandIn], includes: dict[str, Any] | None = None, **extra: Any
) -> dict:
    table = airtable.standin.table("Companies")
    spec: dict[str, Any] = {
        "options": {
            "filters": {
                "dataTypes": ["tableData"],
                "recordChangeScope": table.id,
                "watchDataInFieldIds": [table.field("CIN").id, table.field("Refresh Contacts").id],
            }
        }
    }
    if includes is not None:
        spec["options"]["includes"] = includes
    return api.request("POST", _hooks_url(api, airtable), json={"specification": spec, **extra})


def _payloads(api: Api, airtable: Running[AirtableStandIn], hook_id: str, cursor: int = 1) -> dict:
    return api.request("GET", _hooks_url(api, airtable, hook_id, "payloads"), params={"cursor": cursor})


def _changes(payload: dict, airtable: Running[AirtableStandIn]) -> dict:
    return payload["changedTablesById"][airtable.standin.table("Companies").id]


def _error(exc: pytest.ExceptionInfo[HTTPError]) -> tuple[int, str]:
    return exc.value.response.status_code, exc.value.response.json()["error"]["type"]


def test_what_a_payload_holds_follows_the_specifications_includes(
    api: Api, airtable: Running[AirtableStandIn]
) -> None:
    table = airtable.standin.table("Companies")
    cin, refresh, status = (table.field(n).id for n in ("CIN", "Refresh Contacts", "Contacts Sync Status"))
    bare = _create(api, airtable)
    cells = _create(api, airtable, {"includeCellValuesInFieldIds": [cin, refresh, status]})
    everything = _create(
        api, airtable, {"includeCellValuesInFieldIds": "all", "includePreviousCellValues": True}
    )
    companies = api.table(airtable.standin.base_id, "Companies")
    record = companies.create(
        {"Company Name": "Acme", "CIN": "U72200KA2015PTC081234", "Contacts Sync Status": "Queued"}
    )
    companies.update(record["id"], {"Refresh Contacts": True})
    companies.update(record["id"], {"CIN": ""})

    created, ticked, cleared = _payloads(api, airtable, bare["id"])["payloads"]
    assert _changes(created, airtable)["createdRecordsById"][record["id"]]["cellValuesByFieldId"][cin] == (
        "U72200KA2015PTC081234"
    )
    assert _changes(ticked, airtable)["changedRecordsById"][record["id"]] == {
        "current": {"cellValuesByFieldId": {refresh: True}}  # only what changed; no previous, no unchanged
    }
    assert _changes(cleared, airtable)["changedRecordsById"][record["id"]] == {
        "current": {"cellValuesByFieldId": {cin: None}}  # a cleared cell is null
    }
    _created, ticked, _cleared = _payloads(api, airtable, cells["id"])["payloads"]
    unchanged = _changes(ticked, airtable)["changedRecordsById"][record["id"]]["unchanged"][
        "cellValuesByFieldId"
    ]
    assert unchanged[cin] == "U72200KA2015PTC081234"
    assert unchanged[status]["name"] == "Queued"  # the webhooks' V2 cell format for a select
    _created, ticked, cleared = _payloads(api, airtable, everything["id"])["payloads"]
    assert _changes(ticked, airtable)["changedRecordsById"][record["id"]]["previous"] == {
        "cellValuesByFieldId": {refresh: None}
    }
    assert _changes(cleared, airtable)["changedRecordsById"][record["id"]]["previous"] == {
        "cellValuesByFieldId": {cin: "U72200KA2015PTC081234"}
    }


def test_one_action_is_one_payload_and_unwatched_changes_none(
    api: Api, airtable: Running[AirtableStandIn]
) -> None:
    hook = _create(api, airtable)
    companies = api.table(airtable.standin.base_id, "Companies")
    records = companies.batch_create(
        [{"Company Name": f"C{i}"} for i in range(3)]
    )  # no watched cell: nothing
    companies.batch_update([{"id": r["id"], "fields": {"CIN": "U72200KA2015PTC081234"}} for r in records])
    companies.batch_update([{"id": r["id"], "fields": {"Contacts Sync Status": "Synced"}} for r in records])
    (payload,) = _payloads(api, airtable, hook["id"])["payloads"]
    assert len(_changes(payload, airtable)["changedRecordsById"]) == 3
    assert payload["actionMetadata"]["source"] == "publicApi"


def test_a_base_holds_ten_webhooks(api: Api, airtable: Running[AirtableStandIn]) -> None:
    for _ in range(10):
        _create(api, airtable)
    with pytest.raises(HTTPError) as exc:
        _create(api, airtable)
    assert exc.value.response.status_code == 422


def test_scopes_and_the_creator_permission(api: Api, airtable: Running[AirtableStandIn]) -> None:
    hook = _create(api, airtable)
    airtable.standin.scopes.discard("data.records:read")  # needed for tableData webhooks and their payloads
    for call in (lambda: _create(api, airtable), lambda: _payloads(api, airtable, hook["id"])):
        with pytest.raises(HTTPError) as exc:
            call()
        assert _error(exc) == (403, "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND")
    airtable.standin.scopes.add("data.records:read")
    airtable.standin.permission = "editor"
    assert len(api.request("GET", _hooks_url(api, airtable))["webhooks"]) == 1  # reading is allowed
    for call in (
        lambda: _create(api, airtable),
        lambda: api.request("POST", _hooks_url(api, airtable, hook["id"], "refresh")),
        lambda: api.request("DELETE", _hooks_url(api, airtable, hook["id"])),
    ):
        with pytest.raises(HTTPError) as exc:
            call()
        assert _error(exc) == (403, "INVALID_PERMISSIONS")


def test_expiry_refresh_and_listing_payloads(api: Api, airtable: Running[AirtableStandIn]) -> None:
    hook = _create(api, airtable)
    listed = api.request("GET", _hooks_url(api, airtable))["webhooks"][0]
    assert listed["isHookEnabled"] and listed["cursorForNextPayload"] == 1
    airtable.standin.clock_skew_s = 3 * 86400
    first = _payloads(api, airtable, hook["id"])  # listing payloads extends the life by 7 days
    assert first == {"payloads": [], "cursor": 1, "mightHaveMore": False}
    airtable.standin.clock_skew_s = 9 * 86400  # within 7 days of the listing: still enabled
    assert api.request("GET", _hooks_url(api, airtable))["webhooks"][0]["isHookEnabled"]
    airtable.standin.clock_skew_s = 11 * 86400
    assert not api.request("GET", _hooks_url(api, airtable))["webhooks"][0]["isHookEnabled"]
    airtable.standin.add_record("Companies", {"Company Name": "X", "CIN": "U72200KA2015PTC081234"})
    assert _payloads(api, airtable, hook["id"])["payloads"] == []  # a disabled webhook sees nothing
    with pytest.raises(HTTPError) as exc:
        api.request("POST", _hooks_url(api, airtable, hook["id"], "refresh"))
    assert exc.value.response.status_code == 422
    with pytest.raises(HTTPError):
        api.request("GET", _hooks_url(api, airtable, hook["id"], "payloads"), params={"limit": 51})


def test_payloads_are_deleted_after_a_week_and_cursors_are_never_reset(
    api: Api, airtable: Running[AirtableStandIn]
) -> None:
    """ "Payloads are deleted from Airtable's servers after 1 week whether or not the client has
    seen them. The cursor value for the next payload is never reset, even if payloads are
    deleted." ("List webhook payloads")"""
    hook = _create(api, airtable)
    day = 86400
    for name in ("Old 1", "Old 2"):  # two payloads on day 0
        airtable.standin.add_record("Companies", {"Company Name": name, "CIN": "U72200KA2015PTC081234"})
    airtable.standin.advance_clock(4 * day)
    seen = _payloads(api, airtable, hook["id"])  # read on day 4, which also keeps the hook alive
    assert len(seen["payloads"]) == 2 and seen["cursor"] == 3
    airtable.standin.add_record("Companies", {"Company Name": "New", "CIN": "U72200KA2015PTC081234"})
    airtable.standin.advance_clock(4 * day)  # day 8: the first two are over a week old

    kept = _payloads(api, airtable, hook["id"], cursor=1)  # the old cursor names a deleted payload
    (payload,) = kept["payloads"]
    ((created,),) = [_changes(payload, airtable)["createdRecordsById"].values()]
    name_id = airtable.standin.table("Companies").field("Company Name").id
    assert created["cellValuesByFieldId"][name_id] == "New"
    assert kept["cursor"] == 4 > seen["cursor"]  # numbering goes on past the deleted ones
    assert _payloads(api, airtable, hook["id"], cursor=3)["payloads"] == [payload]
    assert _payloads(api, airtable, hook["id"], cursor=4) == {
        "payloads": [],
        "cursor": 4,
        "mightHaveMore": False,
    }
    listed = api.request("GET", _hooks_url(api, airtable))["webhooks"][0]
    assert listed["cursorForNextPayload"] == 4

    airtable.standin.add_record("Companies", {"Company Name": "Newer", "CIN": "U72200KA2015PTC081234"})
    airtable.standin.advance_clock(3 * day)
    assert _payloads(api, airtable, hook["id"], cursor=5)["payloads"] == []  # day 11: keeps it alive
    airtable.standin.advance_clock(5 * day)  # day 16: every payload made so far is gone
    assert _payloads(api, airtable, hook["id"], cursor=1) == {
        "payloads": [],
        "cursor": 1,  # "If there are no returned payloads … the same as the cursor specified"
        "mightHaveMore": False,
    }
    assert api.request("GET", _hooks_url(api, airtable))["webhooks"][0]["cursorForNextPayload"] == 5
    airtable.standin.add_record("Companies", {"Company Name": "Later", "CIN": "U72200KA2015PTC081234"})
    (later,) = _payloads(api, airtable, hook["id"], cursor=4)["payloads"]
    assert _payloads(api, airtable, hook["id"], cursor=4)["cursor"] == 6  # the 5th payload, kept
    assert later["baseTransactionNumber"] > payload["baseTransactionNumber"]


def test_deleting_a_watched_field_sends_an_error_payload(
    api: Api, airtable: Running[AirtableStandIn]
) -> None:
    table = airtable.standin.table("Companies")
    watching = _create(api, airtable)
    including = api.request(
        "POST",
        _hooks_url(api, airtable),
        json={
            "specification": {
                "options": {
                    "filters": {
                        "dataTypes": ["tableData"],
                        "recordChangeScope": table.id,
                        "watchDataInFieldIds": [table.field("CIN").id],
                    },
                    "includes": {
                        "includeCellValuesInFieldIds": [table.field("CIN").id, table.field("Notes").id]
                    },
                }
            }
        },
    )
    airtable.standin.remove_field("Companies", "Refresh Contacts")
    airtable.standin.remove_field("Companies", "Notes")  # only included: no error
    (error,) = _payloads(api, airtable, watching["id"])["payloads"]
    assert error["error"] is True and error["code"] == "INVALID_FILTERS"
    listed = {h["id"]: h for h in api.request("GET", _hooks_url(api, airtable))["webhooks"]}
    assert not listed[watching["id"]]["isHookEnabled"] and listed[including["id"]]["isHookEnabled"]
    assert _payloads(api, airtable, including["id"])["payloads"] == []


class _Receiver:
    """A notification URL that answers as told and keeps what it got."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b""
        self.got: list[tuple[bytes, str]] = []
        self.lock = threading.Lock()

    async def receive(self, request: Request) -> Response:
        with self.lock:
            self.got.append((await request.body(), request.headers.get("x-airtable-content-mac", "")))
        return Response(content=self.body, status_code=self.status)


@pytest.fixture
def receiver() -> Iterator[tuple[_Receiver, str]]:
    receiver = _Receiver()
    with serve_in_thread(Starlette(routes=[Route("/ping", receiver.receive, methods=["POST"])])) as url:
        yield receiver, f"{url}/ping"


def _wait(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_pings_are_signed_retried_then_turned_off_until_enabled(
    api: Api, airtable: Running[AirtableStandIn], receiver: tuple[_Receiver, str]
) -> None:
    got, url = receiver
    hub = airtable.standin.hub
    hub.ping_retries, hub.ping_backoff_s = 2, 0.01
    hook = _create(api, airtable, notificationUrl=url)
    airtable.standin.add_record("Companies", {"Company Name": "X", "CIN": "U72200KA2015PTC081234"})
    _wait(lambda: got.got)
    body, mac = got.got[0]
    assert json.loads(body) == {
        "base": {"id": airtable.standin.base_id},
        "webhook": {"id": hook["id"]},
        "timestamp": json.loads(body)["timestamp"],
    }
    secret = base64.b64decode(hook["macSecretBase64"])
    assert mac == "hmac-sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()

    got.status = 503
    airtable.standin.add_record("Companies", {"Company Name": "Y", "CIN": "U72200KA2015PTC081234"})
    _wait(lambda: not airtable.standin.webhooks[hook["id"]].notifications_enabled)
    assert len(got.got) == 1 + 3  # the first try and two retries
    listed = api.request("GET", _hooks_url(api, airtable))["webhooks"][0]
    assert listed["areNotificationsEnabled"] is False
    assert (
        listed["lastNotificationResult"]["success"] is False
        and listed["lastNotificationResult"]["willBeRetried"] is False
    )
    airtable.standin.add_record("Companies", {"Company Name": "Z", "CIN": "U72200KA2015PTC081234"})
    time.sleep(0.2)
    assert len(got.got) == 4  # no pings while they are off; the payloads are still made
    assert len(_payloads(api, airtable, hook["id"])["payloads"]) == 3
    got.status = 204
    api.request("POST", _hooks_url(api, airtable, hook["id"], "enableNotifications"), json={"enable": True})
    airtable.standin.add_record("Companies", {"Company Name": "W", "CIN": "U72200KA2015PTC081234"})
    _wait(lambda: len(got.got) == 5)


def test_each_pings_answer_is_kept_for_tests_of_the_receiver(
    api: Api, airtable: Running[AirtableStandIn], receiver: tuple[_Receiver, str]
) -> None:
    """ "The recipient of this request should respond with an HTTP 200 or 204 status code and an
    empty response body" ("Webhooks overview"): the hub keeps what each ping was answered."""
    got, url = receiver
    hub = airtable.standin.hub
    hook = _create(api, airtable, notificationUrl=url)
    got.status = 204
    airtable.standin.add_record("Companies", {"Company Name": "X", "CIN": "U72200KA2015PTC081234"})
    _wait(lambda: len(hub.pings) == 1)
    assert hub.pings[0]["webhook"] == hook["id"]
    assert (hub.pings[0]["status"], hub.pings[0]["body_bytes"], hub.pings[0]["success"]) == (204, 0, True)
    got.status, got.body = 200, b'{"ok": true}'
    airtable.standin.add_record("Companies", {"Company Name": "Y", "CIN": "U72200KA2015PTC081234"})
    _wait(lambda: len(hub.pings) == 2)
    assert (hub.pings[1]["status"], hub.pings[1]["body_bytes"]) == (200, 12)  # a body: not as asked
