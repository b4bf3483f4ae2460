"""The Airtable stand-in, through pyairtable pointed at it: it must refuse what Airtable refuses."""

from __future__ import annotations

import time

import pytest
from pyairtable import Api
from pyairtable.api.table import Table
from requests import HTTPError

from service.standins.airtable import AirtableStandIn
from tests.conftest import Running


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


def test_token_is_required(airtable: Running[AirtableStandIn]) -> None:
    table = _api(airtable, "patWrongToken").table(airtable.standin.base_id, "Contacts")
    with pytest.raises(HTTPError) as exc:
        table.all()
    assert _error(exc)[:2] == (401, "AUTHENTICATION_REQUIRED")


def test_unknown_base_is_refused(airtable: Running[AirtableStandIn]) -> None:
    with pytest.raises(HTTPError) as exc:
        _api(airtable).table("appNoSuchBase0000", "Contacts").all()
    assert _error(exc)[:2] == (403, "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND")


def test_schema_lists_both_tables_with_field_types(unlimited: Running[AirtableStandIn]) -> None:
    schema = _api(unlimited).base(unlimited.standin.base_id).schema()
    contacts = schema.table("Contacts")
    assert contacts.field("Company").type == "multipleRecordLinks"
    assert contacts.field("Phone Number").type == "phoneNumber"
    assert schema.table("Companies").field("Contacts Sync Status").type == "singleSelect"


def test_upsert_creates_then_updates_on_the_merge_field(unlimited: Running[AirtableStandIn]) -> None:
    companies, contacts = _table(unlimited, "Companies"), _table(unlimited, "Contacts")
    company = companies.create({"Company Name": "Acme", "CIN": "U72200KA2015PTC081234"})
    first = contacts.batch_upsert(
        [{"fields": {"Contact Key": "ct_1", "Name": "Ravi", "Company": [company["id"]]}}],
        key_fields=["Contact Key"],
    )
    assert len(first["createdRecords"]) == 1 and first["updatedRecords"] == []
    contacts.update(first["createdRecords"][0], {"Status": "Contacted"})  # a person's edit
    second = contacts.batch_upsert(
        [{"fields": {"Contact Key": "ct_1", "Name": "Ravi Kumar"}}], key_fields=["Contact Key"]
    )
    assert second["updatedRecords"] == first["createdRecords"]
    (record,) = contacts.all()
    assert record["fields"] == {
        "Contact Key": "ct_1",
        "Name": "Ravi Kumar",
        "Company": [company["id"]],
        "Status": "Contacted",  # PATCH merged: a field it did not name survives
    }


def test_upsert_with_two_matches_is_refused(unlimited: Running[AirtableStandIn]) -> None:
    contacts = _table(unlimited, "Contacts")
    contacts.batch_create([{"Contact Key": "ct_9", "Name": "A"}, {"Contact Key": "ct_9", "Name": "B"}])
    with pytest.raises(HTTPError) as exc:
        contacts.batch_upsert([{"fields": {"Contact Key": "ct_9", "Name": "C"}}], key_fields=["Contact Key"])
    assert _error(exc)[:2] == (422, "INVALID_VALUE_FOR_COLUMN")
    assert sorted(r["fields"]["Name"] for r in contacts.all()) == ["A", "B"]


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


def test_unknown_field_is_refused(unlimited: Running[AirtableStandIn]) -> None:
    with pytest.raises(HTTPError) as exc:
        _table(unlimited, "Contacts").create({"Name": "X", "Mobile": "+919876543210"})
    assert _error(exc) == (422, "UNKNOWN_FIELD_NAME", 'Unknown field name: "Mobile"')


def test_links_must_name_existing_records(unlimited: Running[AirtableStandIn]) -> None:
    contacts = _table(unlimited, "Contacts")
    with pytest.raises(HTTPError) as exc:
        contacts.create({"Name": "X", "Company": ["recDoesNotExist01"]})
    assert _error(exc)[:2] == (422, "ROW_DOES_NOT_EXIST")
    assert "recDoesNotExist01" in _error(exc)[2]
    with pytest.raises(HTTPError) as exc:
        contacts.create({"Name": "X", "Company": "Acme"})
    assert _error(exc)[:2] == (422, "INVALID_VALUE_FOR_COLUMN")


def test_a_batch_with_one_bad_row_writes_nothing(unlimited: Running[AirtableStandIn]) -> None:
    contacts = _table(unlimited, "Contacts")
    rows = [{"fields": {"Contact Key": f"ct_{i}", "Name": f"P{i}"}} for i in range(5)]
    rows[3]["fields"]["Phone Type"] = "Satellite"
    with pytest.raises(HTTPError) as exc:
        contacts.batch_upsert(rows, key_fields=["Contact Key"])
    assert _error(exc)[:2] == (422, "INVALID_MULTIPLE_CHOICE_OPTIONS")
    assert contacts.all() == []


def test_update_of_a_deleted_row(unlimited: Running[AirtableStandIn]) -> None:
    contacts = _table(unlimited, "Contacts")
    record = contacts.create({"Name": "Gone"})
    unlimited.standin.table("Contacts").records.pop(record["id"])  # deleted by hand in the UI
    with pytest.raises(HTTPError) as exc:
        contacts.batch_update([{"id": record["id"], "fields": {"Name": "Back"}}])
    assert _error(exc)[:2] == (422, "ROW_DOES_NOT_EXIST")
    with pytest.raises(HTTPError) as exc:
        contacts.update(record["id"], {"Name": "Back"})
    assert _error(exc)[:2] == (404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Contacts Found", "three"),
        ("Contacts Found", True),
        ("Refresh Contacts", "yes"),
        ("Contacts Synced At", "yesterday"),
        ("CIN", 12345),
        ("Contacts Sync Status", "Done"),
    ],
)
def test_values_must_suit_the_field_type(
    unlimited: Running[AirtableStandIn], field: str, value: object
) -> None:
    with pytest.raises(HTTPError) as exc:
        _table(unlimited, "Companies").create({"Company Name": "X", field: value})
    assert exc.value.response.status_code == 422


def test_empty_values_are_left_out_of_answers(unlimited: Running[AirtableStandIn]) -> None:
    record = _table(unlimited, "Companies").create(
        {
            "Company Name": "X",
            "CIN": "",
            "Refresh Contacts": False,
            "Contacts Sync Error": None,
            "Contacts Found": 0,
            "Contacts Synced At": "2026-11-26T10:00:00.000Z",
        }
    )
    assert record["fields"] == {
        "Company Name": "X",
        "Contacts Found": 0,
        "Contacts Synced At": "2026-11-26T10:00:00.000Z",
    }


def test_list_pages_through_every_record(unlimited: Running[AirtableStandIn]) -> None:
    contacts = _table(unlimited, "Contacts")
    for i in range(130):
        unlimited.standin.add_record("Contacts", {"Name": f"P{i}"})
    assert len(contacts.all()) == 130
    assert [r["fields"]["Name"] for r in contacts.all(page_size=7)] == [f"P{i}" for i in range(130)]


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


def test_a_stand_in_runs_on_its_own() -> None:
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "service.standins", "airtable"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()
        url = process.stdout.readline().strip().removeprefix("url: ")
        standin = AirtableStandIn()
        api = Api(standin.token, endpoint_url=url, retry_strategy=None, timeout=(5, 10))
        assert api.table(standin.base_id, "Contacts").all() == []
    finally:
        process.terminate()
        process.wait(10)


def test_filter_by_formula_as_pyairtable_writes_it(unlimited: Running[AirtableStandIn]) -> None:
    from pyairtable import formulas as F

    companies = _table(unlimited, "Companies")
    for name, cin, refresh in (
        ("O'Brien & Sons", "U11111MH2011PTC111111", True),
        ('Şahin "Quoted" Ltd', "", False),
        ("Ünïcode Pvt", "U22222MH2011PTC222222", False),
        ("Plain", None, True),
    ):
        unlimited.standin.add_record(
            "Companies", {"Company Name": name, "CIN": cin, "Refresh Contacts": refresh}
        )

    def names(formula: F.Formula) -> list[str]:
        return sorted(r["fields"]["Company Name"] for r in companies.all(formula=formula))

    assert names(F.NOT(F.EQ(F.Field("CIN"), ""))) == ["O'Brien & Sons", "Ünïcode Pvt"]
    assert names(F.match({"Company Name": "O'Brien & Sons"})) == ["O'Brien & Sons"]
    assert names(F.match({"Company Name": 'Şahin "Quoted" Ltd'})) == ['Şahin "Quoted" Ltd']
    assert names(F.AND(F.EQ(F.Field("Refresh Contacts"), True), F.NE(F.Field("CIN"), ""))) == [
        "O'Brien & Sons"
    ]
    assert names(F.OR(F.match({"CIN": "U22222MH2011PTC222222"}), F.EQ(F.Field("Company Name"), "Plain"))) == [
        "Plain",
        "Ünïcode Pvt",
    ]
    with pytest.raises(HTTPError) as exc:
        companies.all(formula="{CIN} = ")
    assert _error(exc)[:2] == (422, "INVALID_FILTER_BY_FORMULA")


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


def test_typecast_links_match_primary_text_or_make_new_records(unlimited: Running[AirtableStandIn]) -> None:
    """Why the service never writes links with typecast: a company deleted by hand becomes a junk
    company row named after its old record id."""
    companies, contacts = _table(unlimited, "Companies"), _table(unlimited, "Contacts")
    acme = companies.create({"Company Name": "Acme"})
    row = contacts.create({"Name": "A", "Company": ["Acme", "recDeletedByHand1"]}, typecast=True)
    junk = [r for r in companies.all() if r["id"] != acme["id"]]
    assert [r["fields"] for r in junk] == [{"Company Name": "recDeletedByHand1"}]
    assert row["fields"]["Company"] == [acme["id"], junk[0]["id"]]
    with pytest.raises(HTTPError) as exc:
        contacts.create({"Name": "B", "Company": ["recDeletedByHand2"]})
    assert _error(exc)[:2] == (422, "ROW_DOES_NOT_EXIST")
    assert len(companies.all()) == 2


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
