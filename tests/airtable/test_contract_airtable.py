"""Airtable's behaviour the service relies on, through the HTTP API only, so that the same tests
run against the stand-in (always) and a real scratch base (`pytest -m live`, tests/contract.py).
Each test names the documented rule it checks; docs/reference/relies-on.md ("What the service
relies on") lists them with their sources."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from pyairtable import formulas as F
from requests import HTTPError

from tests.contract import CONTACTS, AirtableTarget


def _error(exc: pytest.ExceptionInfo[HTTPError]) -> tuple[int, str, str]:
    """(status, type, message): Airtable's error is `{"error": {"type", "message"}}` or, for some
    404s, `{"error": "NOT_FOUND"}` ("Errors")."""
    response = exc.value.response
    error = response.json().get("error")
    if isinstance(error, str):
        return response.status_code, error, ""
    return response.status_code, error["type"], error.get("message", "")


def _key() -> str:
    return f"ct_live_{uuid.uuid4().hex[:10]}"


def test_a_wrong_token_or_base_is_a_4xx_the_service_does_not_retry(target: AirtableTarget) -> None:
    """The service reads only the status: a 4xx is a refusal to report, never retried."""
    wrong = target.api_with("patWrongToken.0000")
    with pytest.raises(HTTPError) as exc:
        wrong.table(target.base_id, CONTACTS).first()
    assert exc.value.response.status_code == 401
    with pytest.raises(HTTPError) as exc:
        target.api.table("appNoSuchBase0000", CONTACTS).first()
    assert exc.value.response.status_code in (403, 404)


def test_the_schema_gives_field_types_links_and_options(target: AirtableTarget) -> None:
    """ "Get base schema": the service checks types and options, and finds field ids for webhooks."""
    schema = target.schema()
    contacts, companies = schema.table(CONTACTS), schema.table(target.companies.name)
    assert contacts.field("Company").type == "multipleRecordLinks"
    assert contacts.field("Company").options.linked_table_id == companies.id
    assert contacts.field("Phone Number").type == "phoneNumber" and contacts.field("Email").type == "email"
    assert {c.name for c in contacts.field("Phone Type").options.choices} == {"Mobile", "Landline"}
    assert companies.field("Contacts Sync Status").type == "singleSelect"
    assert contacts.primary_field_id == contacts.field("Name").id


def test_upsert_creates_then_updates_on_the_merge_field_and_patch_merges(target: AirtableTarget) -> None:
    """ "Update multiple records": performUpsert on fieldsToMergeOn, no match creates and one
    updates, with createdRecords and updatedRecords; PATCH leaves the fields it does not name."""
    company = target.companies.create({"Company Name": "Acme"})
    key = _key()
    first = target.contacts.batch_upsert(
        [{"fields": {"Contact Key": key, "Name": "Ravi", "Company": [company["id"]]}}],
        key_fields=["Contact Key"],
    )
    (first["records"])
    assert len(first["createdRecords"]) == 1 and first["updatedRecords"] == []
    target.contacts.update(first["createdRecords"][0], {"Status": "Contacted"})  # a person's edit
    second = target.contacts.batch_upsert(
        [{"fields": {"Contact Key": key, "Name": "Ravi Kumar"}}], key_fields=["Contact Key"]
    )
    assert second["updatedRecords"] == first["createdRecords"] and second["createdRecords"] == []
    record = target.contacts.get(first["createdRecords"][0])
    assert record["fields"] == {
        "Contact Key": key,
        "Name": "Ravi Kumar",
        "Company": [company["id"]],
        "Status": "Contacted",
    }


def test_an_upsert_matching_two_records_is_refused(target: AirtableTarget) -> None:
    key = _key()
    (target.contacts.batch_create([{"Contact Key": key, "Name": n} for n in "AB"]))
    with pytest.raises(HTTPError) as exc:
        target.contacts.batch_upsert(
            [{"fields": {"Contact Key": key, "Name": "C"}}], key_fields=["Contact Key"]
        )
    assert exc.value.response.status_code == 422  # "If multiple matches are found, the request will fail."
    assert sorted(
        r["fields"]["Name"] for r in target.contacts.all(formula=F.EQ(F.Field("Contact Key"), key))
    ) == [
        "A",
        "B",
    ]


def test_at_most_ten_records_per_write(target: AirtableTarget) -> None:
    eleven = [{"fields": {"Name": f"P{i}"}} for i in range(11)]
    with pytest.raises(HTTPError) as exc:
        target.api.request("POST", target.contacts.urls.records, json={"records": eleven})
    assert exc.value.response.status_code == 422
    assert target.contacts.all() == []


def test_an_unknown_field_is_refused(target: AirtableTarget) -> None:
    with pytest.raises(HTTPError) as exc:
        target.contacts.create({"Name": "X", "Mobile": "+919845067321"})
    assert _error(exc)[:2] == (422, "UNKNOWN_FIELD_NAME") and "Mobile" in _error(exc)[2]


def test_a_link_must_name_an_existing_record(target: AirtableTarget) -> None:
    """Without typecast a link to a record that is gone is refused, naming it: the pusher reads
    the id from the message to tell a deleted company from a deleted contact."""
    company = target.companies.create({"Company Name": "Gone soon"})
    target.companies.delete(company["id"])
    with pytest.raises(HTTPError) as exc:
        target.contacts.create({"Name": "X", "Company": [company["id"]]})
    status, kind, message = _error(exc)
    assert (status, kind) == (422, "ROW_DOES_NOT_EXIST") and company["id"] in message


def test_typecast_links_by_primary_text_and_makes_new_records(target: AirtableTarget) -> None:
    """Why the service never writes with typecast: the id of a company deleted by hand would come
    back as a new company named after it."""
    acme = target.companies.create({"Company Name": "Acme Live"})
    gone = "recDeletedByHand1"
    row = target.contacts.create({"Name": "A", "Company": ["Acme Live", gone]}, typecast=True)
    junk = [r for r in target.companies.all() if r["fields"].get("Company Name") == gone]
    assert len(junk) == 1 and row["fields"]["Company"] == [acme["id"], junk[0]["id"]]


def test_a_missing_select_option_fails_the_whole_batch_without_typecast(target: AirtableTarget) -> None:
    """ "Field types and cell values": a value that is not an option is refused with
    INVALID_MULTIPLE_CHOICE_OPTIONS unless typecast is on; a request is written whole or not at all."""
    rows = [{"fields": {"Contact Key": _key(), "Name": f"P{i}"}} for i in range(5)]
    rows[3]["fields"]["Phone Type"] = "Satellite"
    with pytest.raises(HTTPError) as exc:
        target.contacts.batch_upsert(rows, key_fields=["Contact Key"])
    assert _error(exc)[:2] == (422, "INVALID_MULTIPLE_CHOICE_OPTIONS")
    assert target.contacts.all() == []


def test_typecast_adds_a_select_option_for_a_creator(target: AirtableTarget) -> None:
    """What `doctor --fix` does to add an option (the API cannot edit a field's options)."""
    option = f"run {time.strftime('%Y-%m-%d %H:%M:%S')} {uuid.uuid4().hex[:4]}"
    target.contacts.create({"Name": "probe", "Option Probe": option}, typecast=True)
    choices = {c.name for c in target.schema().table(CONTACTS).field("Option Probe").options.choices}
    assert option in choices


def test_a_deleted_row_is_named_in_a_batch_and_404_alone(target: AirtableTarget) -> None:
    record = target.contacts.create({"Name": "Gone"})
    target.contacts.delete(record["id"])  # as a person would
    with pytest.raises(HTTPError) as exc:
        target.contacts.batch_update([{"id": record["id"], "fields": {"Name": "Back"}}])
    status, kind, message = _error(exc)
    assert (status, kind) == (422, "ROW_DOES_NOT_EXIST") and record["id"] in message
    with pytest.raises(HTTPError) as exc:
        target.contacts.update(record["id"], {"Name": "Back"})
    assert exc.value.response.status_code == 404  # the pusher reads the status, not the type
    with pytest.raises(HTTPError) as exc:
        target.contacts.batch_delete([record["id"]])
    assert exc.value.response.status_code in (404, 422)  # `forget` counts such a row as deleted


def test_a_company_status_as_the_pusher_writes_it(target: AirtableTarget) -> None:
    """Every status field with the value shapes the pusher sends (an ISO time with its offset,
    a whole number, a checkbox cleared), without typecast."""
    company = target.companies.create({"Company Name": "Acme"})
    at = datetime(2026, 11, 30, 10, 15, 30, tzinfo=timezone.utc)
    fields = {
        "Contacts Sync Status": "Synced",
        "Contacts Sync Error": 'Airtable\'s "Phone Type" field has no option "Landline"',
        "Contacts Synced At": at.isoformat(),
        "Contacts Found": 3,
        "Refresh Contacts": False,
    }
    shown = target.companies.batch_update([{"id": company["id"], "fields": fields}])[0]["fields"]
    assert shown["Contacts Sync Status"] == "Synced" and shown["Contacts Found"] == 3
    assert datetime.fromisoformat(shown["Contacts Synced At"].replace("Z", "+00:00")) == at
    assert shown["Contacts Sync Error"] == fields["Contacts Sync Error"] and "Refresh Contacts" not in shown
    cleared = target.companies.batch_update([{"id": company["id"], "fields": {"Contacts Sync Error": None}}])
    assert "Contacts Sync Error" not in cleared[0]["fields"]  # None clears a field


@pytest.mark.parametrize(
    ("field", "value"),
    [("Contacts Found", "three"), ("Contacts Found", True), ("Refresh Contacts", "yes"), ("CIN", 12345)],
)
def test_values_must_suit_the_field_type(target: AirtableTarget, field: str, value: Any) -> None:
    with pytest.raises(HTTPError) as exc:
        target.companies.create({"Company Name": "X", field: value})
    assert exc.value.response.status_code == 422


def test_empty_values_are_left_out_of_answers(target: AirtableTarget) -> None:
    record = target.companies.create(
        {"Company Name": "X", "CIN": "", "Refresh Contacts": False, "Contacts Found": 0}
    )
    assert record["fields"] == {"Company Name": "X", "Contacts Found": 0}


def test_a_listing_pages_through_every_record_with_an_offset(target: AirtableTarget) -> None:
    created = target.contacts.batch_create([{"Name": f"P{i:03d}"} for i in range(110)])
    first = target.api.request("GET", target.contacts.urls.records, params={"pageSize": 50})
    assert len(first["records"]) == 50 and isinstance(first["offset"], str)
    names = sorted(r["fields"]["Name"] for r in target.contacts.all(page_size=50))
    assert names == [f"P{i:03d}" for i in range(110)] and len(created) == 110


def test_filter_by_formula_as_pyairtable_writes_it(target: AirtableTarget) -> None:
    for name, cin in (
        ("O'Brien & Sons", "U11111MH2011PTC111111"),
        ('Şahin "Quoted" Ltd', ""),
        ("Ünïcode", "U2"),
    ):
        target.companies.create({"Company Name": name, "CIN": cin})

    def names(formula: F.Formula) -> list[str]:
        return sorted(r["fields"]["Company Name"] for r in target.companies.all(formula=formula))

    assert names(F.NOT(F.EQ(F.Field("CIN"), ""))) == ["O'Brien & Sons", "Ünïcode"]
    assert names(F.match({"Company Name": 'Şahin "Quoted" Ltd'})) == ['Şahin "Quoted" Ltd']
    assert names(F.OR(F.match({"CIN": "U2"}), F.EQ(F.Field("Company Name"), "O'Brien & Sons"))) == [
        "O'Brien & Sons",
        "Ünïcode",
    ]
