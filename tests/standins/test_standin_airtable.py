"""The Airtable stand-in's own rules, through pyairtable pointed at it: what the contract tests
(tests/airtable/test_contract_airtable.py, which also run against a real base) cannot provoke there, such
as the rate limits, a reader's or an editor's permission, and list offsets that expire."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pyairtable import Api
from pyairtable import formulas as f
from pyairtable.api.table import Table
from requests import HTTPError

from service.airtable.client import Airtable
from service.airtable.errors import AirtableError
from service.airtable.transport import MAX_ANSWER_BYTES
from service.config import load_settings
from service.standins.airtable import AirtableStandIn
from tests.conftest import Running, ctrl_c_as_at_a_terminal


def _api(airtable: Running[AirtableStandIn], token: str | None = None) -> Api:
    return Api(
        token or airtable.standin.token, endpoint_url=airtable.url, retry_strategy=None, timeout=(5, 10)
    )


def _table(airtable: Running[AirtableStandIn], name: str) -> Table:
    return _api(airtable).table(airtable.standin.base_id, name)


def _error(exc: pytest.ExceptionInfo[HTTPError]) -> tuple[int, str, str]:
    response = exc.value.response
    error = response.json()["error"]
    return response.status_code, error["type"], error.get("message", "")


@pytest.fixture
def unlimited(airtable: Running[AirtableStandIn]) -> Running[AirtableStandIn]:
    airtable.standin.rate_limit = 10_000
    return airtable


def test_put_replaces_and_patch_merges(unlimited: Running[AirtableStandIn]) -> None:
    contacts = _table(unlimited, "Contacts")
    record = contacts.create({"Name": "Asha", "DIN": "01234567", "Notes": "met at expo"})
    contacts.update(record["id"], {"Name": "Asha Rao"})
    assert contacts.get(record["id"])["fields"] == {
        "Name": "Asha Rao",
        "DIN": "01234567",
        "Notes": "met at expo",
    }
    contacts.update(record["id"], {"Name": "Asha R"}, replace=True)
    assert contacts.get(record["id"])["fields"] == {"Name": "Asha R"}


def test_at_most_ten_records_per_write(unlimited: Running[AirtableStandIn]) -> None:
    contacts = _table(unlimited, "Contacts")
    api = _api(unlimited)
    eleven = [{"fields": {"Name": f"P{i}"}} for i in range(11)]
    with pytest.raises(HTTPError) as exc:
        api.request("POST", contacts.urls.records, json={"records": eleven})
    assert _error(exc)[:2] == (422, "INVALID_RECORDS")
    assert contacts.all() == []
    assert len(contacts.batch_create([{"Name": f"P{i}"} for i in range(23)])) == 23  # pyairtable splits by 10
    assert [r["records"] for r in unlimited.standin.write_requests()][-3:] == [10, 10, 3]


def test_sliding_window_rate_limit_then_cool_down(airtable: Running[AirtableStandIn]) -> None:
    airtable.standin.cooldown_s = 1.4
    contacts = _table(airtable, "Contacts")
    started = time.monotonic()
    for _ in range(5):
        contacts.all()
    with pytest.raises(HTTPError) as exc:
        contacts.all()
    assert exc.value.response.status_code == 429
    time.sleep(max(0.0, started + 1.1 - time.monotonic()))
    with pytest.raises(HTTPError):  # the window has moved on, but the base is still cooling down
        contacts.all()
    time.sleep(0.5)
    assert contacts.all() == []
    statuses = [r["status"] for r in airtable.standin.requests]
    assert statuses == [200] * 5 + [429, 429, 200]


def test_five_requests_spread_over_a_second_pass(airtable: Running[AirtableStandIn]) -> None:
    contacts = _table(airtable, "Contacts")
    for _ in range(8):
        contacts.all()
        time.sleep(0.21)
    assert {r["status"] for r in airtable.standin.requests} == {200}


@pytest.mark.process
def test_a_stand_in_runs_on_its_own_and_is_the_same_base_after_a_restart(tmp_path: Path) -> None:
    """Run on its own, the stand-in keeps its tables in the data folder: a second trial with the
    service's database kept does not meet an empty base under the same id (rows "deleted")."""
    standin = AirtableStandIn()
    with _standin_process(tmp_path) as url:
        contacts = Api(standin.token, endpoint_url=url, retry_strategy=None, timeout=(5, 10)).table(
            standin.base_id, "Contacts"
        )
        assert contacts.all() == []
        created = contacts.create({"Name": "Ananya Rao", "DIN": "01234567"})
        contacts.update(created["id"], {"Email": "ananya@nilgiri.example"})
        table_id = contacts.id
    with _standin_process(tmp_path) as url:
        api = Api(standin.token, endpoint_url=url, retry_strategy=None, timeout=(5, 10))
        again = api.table(standin.base_id, "Contacts").all()
        assert [(r["id"], r["fields"]) for r in again] == [
            (created["id"], {**created["fields"], "Email": "ananya@nilgiri.example"})
        ]
        # The same table and field ids: the service's stored schema still holds.
        assert api.base(standin.base_id).schema().table("Contacts").id == table_id


@contextmanager
def _standin_process(data_dir: Path) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "service.standins", "airtable", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_at_a_terminal,
    )
    try:
        assert process.stdout is not None
        assert str(data_dir) in process.stdout.readline()
        yield process.stdout.readline().strip().removeprefix("url: ")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)


def test_a_429_carries_a_list_of_errors(airtable: Running[AirtableStandIn]) -> None:
    contacts = _table(airtable, "Contacts")
    for _ in range(5):
        contacts.all()
    with pytest.raises(HTTPError) as exc:
        contacts.all()
    assert exc.value.response.status_code == 429
    assert exc.value.response.json() == {
        "errors": [{"error": "RATE_LIMIT_REACHED", "message": "Rate limit exceeded. Please try again later"}]
    }


def test_a_user_is_limited_to_50_requests_a_second_across_bases(unlimited: Running[AirtableStandIn]) -> None:
    contacts = _table(unlimited, "Contacts")
    started = time.monotonic()
    with pytest.raises(HTTPError) as exc:
        for _ in range(51):
            contacts.all()
    assert exc.value.response.status_code == 429
    assert time.monotonic() - started < 1.0  # the check is only meaningful if they came within a second
    assert [r["status"] for r in unlimited.standin.requests].count(200) == 50


def test_typecast_makes_a_select_option_only_for_a_creator(unlimited: Running[AirtableStandIn]) -> None:
    contacts = _table(unlimited, "Contacts")
    with pytest.raises(HTTPError) as exc:
        contacts.create({"Name": "A", "Phone Type": "Toll Free"})
    assert _error(exc) == (
        422,
        "INVALID_MULTIPLE_CHOICE_OPTIONS",
        'Insufficient permissions to create new select option ""Toll Free""',
    )
    unlimited.standin.permission = "editor"
    with pytest.raises(HTTPError) as exc:
        contacts.create({"Name": "A", "Phone Type": "Toll Free"}, typecast=True)
    assert _error(exc)[:2] == (422, "INVALID_MULTIPLE_CHOICE_OPTIONS")
    unlimited.standin.permission = "creator"
    assert (
        contacts.create({"Name": "A", "Phone Type": "Toll Free"}, typecast=True)["fields"]["Phone Type"]
        == "Toll Free"
    )
    choices = unlimited.standin.table("Contacts").field("Phone Type").options["choices"]
    assert [c["name"] for c in choices] == ["Mobile", "Landline", "Toll Free"]


def test_what_an_editor_and_a_reader_may_do(unlimited: Running[AirtableStandIn]) -> None:
    contacts = _table(unlimited, "Contacts")
    unlimited.standin.permission = "editor"
    contacts.create({"Name": "A"})
    with pytest.raises(HTTPError) as exc:
        contacts.create_field("Mobile", "phoneNumber")
    assert _error(exc)[:2] == (403, "INVALID_PERMISSIONS")
    unlimited.standin.permission = "read"
    assert len(contacts.all()) == 1
    with pytest.raises(HTTPError) as exc:
        contacts.create({"Name": "B"})
    assert _error(exc)[:2] == (403, "INVALID_PERMISSIONS")


def test_list_offsets_are_opaque_and_expire(unlimited: Running[AirtableStandIn]) -> None:
    for i in range(25):
        unlimited.standin.add_record("Contacts", {"Name": f"P{i}"})
    api = _api(unlimited)
    url = str(_table(unlimited, "Contacts").urls.records)
    first = api.request("GET", url, params={"pageSize": 10})
    assert first["offset"].startswith("itr") and "/rec" in first["offset"]
    second = api.request("GET", url, params={"pageSize": 10, "offset": first["offset"]})
    assert [r["fields"]["Name"] for r in second["records"]] == [f"P{i}" for i in range(10, 20)]
    unlimited.standin.expire_iterators()  # as after a restart of Airtable's servers
    with pytest.raises(HTTPError) as exc:
        api.request("GET", url, params={"pageSize": 10, "offset": second["offset"]})
    assert _error(exc)[:2] == (422, "LIST_RECORDS_ITERATOR_NOT_AVAILABLE")
    unlimited.standin.offset_ttl_s = 0.2
    first = api.request("GET", url, params={"pageSize": 10})
    time.sleep(0.3)
    with pytest.raises(HTTPError) as exc:
        api.request("GET", url, params={"pageSize": 10, "offset": first["offset"]})
    assert _error(exc)[:2] == (422, "LIST_RECORDS_ITERATOR_NOT_AVAILABLE")
    with pytest.raises(HTTPError) as exc:
        api.request("GET", url, params={"offset": "10"})  # not an offset Airtable gave
    assert _error(exc)[:2] == (422, "INVALID_OFFSET_VALUE")


def test_control_endpoints_for_other_processes(unlimited: Running[AirtableStandIn]) -> None:
    """What a test or a demo in another process can do as a person would, or to the clock."""
    import httpx

    settings = httpx.put(
        f"{unlimited.url}/_standin/settings", json={"permission": "editor", "clock_skew_s": 60}
    )
    assert settings.json()["permission"] == "editor" and unlimited.standin.clock_skew_s == 60
    deleted = httpx.delete(f"{unlimited.url}/_standin/tables/Companies/fields/Notes")
    assert deleted.json() == {"deleted": True}
    assert "Notes" not in {f.name for f in unlimited.standin.table("Companies").fields}
    assert httpx.delete(f"{unlimited.url}/_standin/tables/Companies/fields/Nope").status_code == 422


def test_formulas_see_when_a_field_was_changed(unlimited: Running[AirtableStandIn]) -> None:
    companies = _table(unlimited, "Companies")
    created_with_cin = companies.create({"Company Name": "Set at creation", "CIN": "U1"})
    edited = companies.create({"Company Name": "Edited later"})
    time.sleep(0.01)
    since = datetime.now(timezone.utc)
    time.sleep(0.01)
    companies.update(edited["id"], {"CIN": "U2"})
    companies.update(created_with_cin["id"], {"Company Name": "Renamed"})  # not the CIN

    def names(formula: f.Formula) -> list[str]:
        return sorted(r["fields"]["Company Name"] for r in companies.all(formula=formula))

    # A field set at creation and never changed has no modification time (the strict reading).
    assert names(f.IS_AFTER(f.LAST_MODIFIED_TIME(f.Field("CIN")), since)) == ["Edited later"]
    assert names(f.IS_BEFORE(f.LAST_MODIFIED_TIME(f.Field("CIN")), since)) == []
    assert names(f.IS_AFTER(f.LAST_MODIFIED_TIME(), since)) == ["Edited later", "Renamed"]
    assert names(f.IS_AFTER(f.CREATED_TIME(), since)) == []
    assert names(f.IS_BEFORE(f.CREATED_TIME(), since)) == ["Edited later", "Renamed"]
    assert names(f.EQ(f.RECORD_ID(), edited["id"])) == ["Edited later"]
    assert names(f.GT(f.LAST_MODIFIED_TIME(f.Field("CIN")), since)) == ["Edited later"]

    with pytest.raises(HTTPError) as exc:
        companies.all(formula=f.EQ(f.Field("No Such Field"), "x"))
    assert _error(exc) == (
        422,
        "INVALID_FILTER_BY_FORMULA",
        "The formula for filtering records is invalid: Unknown field names: No Such Field",
    )


def test_an_answer_larger_than_the_limit_is_refused_as_it_arrives(
    unlimited: Running[AirtableStandIn],
) -> None:
    """The service's client reads Airtable's answers with a limit: a page whose records hold huge
    texts is refused (a clear error, not a process holding hundreds of megabytes)."""
    companies = _table(unlimited, "Companies")
    note = "x" * 90_000
    companies.batch_create([{"Company Name": f"Big {i}", "Contacts Sync Error": note} for i in range(100)])
    settings = load_settings(
        {
            "AIRTABLE_API_KEY": unlimited.standin.token,
            "AIRTABLE_BASE_ID": unlimited.standin.base_id,
            "AIRTABLE_API_URL": unlimited.url,
        },
        env_file=None,
    )
    client = Airtable(settings, None)
    with pytest.raises(AirtableError, match="too large"):
        asyncio.run(client.list_records(client.companies))
    assert 100 * len(note) > MAX_ANSWER_BYTES
    small = asyncio.run(client.list_records(client.companies, fields=["Company Name"]))
    assert len(small) == 100
