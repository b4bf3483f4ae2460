"""The Airtable stand-in's refusals, over HTTP through pyairtable and httpx: the documented limits
of upserts' `fieldsToMergeOn`, of text cells and of `pageSize`, and the refusals a base's owner
(or the moment) imposes: a locked table or field, a revoked token, a reader's permission, and a
field reported unknown for a while (see the sources in `service/standins/airtable_records.py`,
`airtable_values.py`, `airtable_listing.py` and `airtable_restrictions.py`)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pyairtable.api.table import Table
from requests import HTTPError

from service.standins.airtable import AirtableStandIn, Field
from tests.conftest import Running
from tests.standins.test_standin_airtable import _api, _error, _table


@pytest.fixture
def unlimited(airtable: Running[AirtableStandIn]) -> Running[AirtableStandIn]:
    airtable.standin.rate_limit = 10_000
    return airtable


def _refused(call: Any) -> tuple[int, str, str]:
    with pytest.raises(HTTPError) as exc:
        call()
    return _error(exc)


def _statuses(airtable: Running[AirtableStandIn]) -> list[int]:
    return [r["status"] for r in airtable.standin.requests]


# --- performUpsert.fieldsToMergeOn ---


def _upsert(contacts: Table, merge_on: list[str], fields: dict[str, Any]) -> dict[str, Any]:
    return contacts.api.request(
        "PATCH",
        contacts.urls.records,
        json={"performUpsert": {"fieldsToMergeOn": merge_on}, "records": [{"fields": fields}]},
    )


def test_fields_to_merge_on_are_one_to_three_fields_of_the_documented_types(
    unlimited: Running[AirtableStandIn],
) -> None:
    """ "An array with at least one and at most three field names or IDs … These cannot be
    computed fields (formulas, lookups, rollups), and must be one of the following types: number,
    text, long text, single select, multiple select, date." ("Update multiple records")"""
    standin = unlimited.standin
    standin.table("Contacts").fields.append(Field("Score", "formula", {"formula": "1"}))  # made in the UI
    standin.table("Contacts").fields.append(Field("Met On", "date"))
    contacts, companies = _table(unlimited, "Contacts"), _table(unlimited, "Companies")
    fields = {"Name": "Asha", "Contact Key": "k1", "Notes": "n", "Status": "New", "Met On": "2024-01-02"}

    for merge_on, why in [
        ([], "at least one"),
        (["Name", "Contact Key", "Notes", "Status"], "at most 3"),
        (["Score"], "computed"),
        (["Email"], "email"),  # "text" read strictly: single line text only
        (["Phone Number"], "phoneNumber"),
        (["Company"], "multipleRecordLinks"),
        (["Name", "Name"], "twice"),
    ]:
        status, kind, message = _refused(lambda m=merge_on: _upsert(contacts, m, fields))
        assert (status, kind) == (422, "INVALID_REQUEST_UNKNOWN") and why in message, (merge_on, message)
    synced = {"Company Name": "Acme", "Contacts Synced At": "2024-01-02T00:00:00.000Z"}
    assert _refused(lambda: _upsert(companies, ["Contacts Synced At"], synced))[:2] == (  # dateTime
        422,
        "INVALID_REQUEST_UNKNOWN",
    )
    assert _refused(lambda: _upsert(contacts, ["Mobile"], fields))[:2] == (422, "UNKNOWN_FIELD_NAME")
    assert contacts.all() == [] and companies.all() == []  # nothing written by a refused request

    three = _upsert(contacts, ["Contact Key", "Name", "Status"], fields)  # text, text, single select
    assert len(three["createdRecords"]) == 1
    again = _upsert(contacts, ["Notes", "Met On"], {**fields, "DIN": "01234567"})  # long text, date
    assert again["updatedRecords"] == three["createdRecords"]
    assert _upsert(companies, ["Contacts Found"], {"Contacts Found": 3})["createdRecords"]  # number


# --- text length ---


def test_text_cells_are_limited_to_100000_characters(unlimited: Running[AirtableStandIn]) -> None:
    """ "Single line text fields and long text fields are limited to 100,000 characters."
    ("Using rich text with Airtable")"""
    contacts = _table(unlimited, "Contacts")
    record = contacts.create({"Name": "A", "Notes": "x" * 100_000})
    assert len(contacts.get(record["id"])["fields"]["Notes"]) == 100_000
    for fields in (
        {"Notes": "x" * 100_001},  # long text
        {"Name": "y" * 100_001},  # single line text
        {"Notes": "\N{GRINNING FACE}" * 50_001},  # 50,001 code points, 100,002 UTF-16 units
    ):
        status, kind, message = _refused(lambda f=fields: contacts.create(f))
        assert (status, kind) == (422, "INVALID_VALUE_FOR_COLUMN") and "100,000" in message
        assert _refused(lambda f=fields: contacts.update(record["id"], f))[:2] == (
            422,
            "INVALID_VALUE_FOR_COLUMN",
        )
    assert len(contacts.all()) == 1


# --- pageSize ---


def test_page_size_must_be_at_most_100(unlimited: Running[AirtableStandIn]) -> None:
    """ "pageSize … Must be less than or equal to 100. Default is 100." ("List records"), in the
    query string and in the body of listRecords alike."""
    for i in range(3):
        unlimited.standin.add_record("Contacts", {"Name": f"P{i}"})
    contacts = _table(unlimited, "Contacts")
    api, url = _api(unlimited), str(contacts.urls.records)
    status, kind, message = _refused(lambda: api.request("GET", url, params={"pageSize": 101}))
    assert (status, kind) == (422, "INVALID_REQUEST_UNKNOWN")
    assert "pageSize: 101 must be less than or equal to 100" in message
    listing = f"{url}/listRecords"
    assert _refused(lambda: api.request("POST", listing, json={"pageSize": 101}))[:2] == (
        422,
        "INVALID_REQUEST_UNKNOWN",
    )
    for bad in (0, -1, "ten"):
        assert _refused(lambda b=bad: api.request("GET", url, params={"pageSize": b}))[0] == 422
    assert len(api.request("GET", url, params={"pageSize": 100})["records"]) == 3
    assert len(api.request("POST", listing, json={"pageSize": 2})["records"]) == 2
    assert len(contacts.all(page_size=100)) == 3


# --- what a base's owner can set: locked tables and fields ---


def test_a_locked_table_refuses_the_apis_writes_and_answers_its_reads(
    unlimited: Running[AirtableStandIn],
) -> None:
    """ "Errors" (403): "You are not permitted to create records in table TABLE_NAME (TABLE_ID)",
    and "You are not permitted to perform this operation" for the other writes."""
    standin = unlimited.standin
    record = standin.add_record("Contacts", {"Name": "Asha", "Contact Key": "k1"})
    standin.lock_table("Contacts")
    contacts = _table(unlimited, "Contacts")
    table_id = standin.table("Contacts").id
    assert _refused(lambda: contacts.create({"Name": "B"})) == (
        403,
        "INVALID_PERMISSIONS",
        f"You are not permitted to create records in table Contacts ({table_id})",
    )
    forbidden = (403, "INVALID_PERMISSIONS", "You are not permitted to perform this operation")
    assert _refused(lambda: contacts.update(record, {"Name": "Asha R"})) == forbidden
    assert _refused(lambda: contacts.batch_upsert([{"fields": {"Contact Key": "k2"}}], ["Contact Key"])) == (
        forbidden
    )
    assert _refused(lambda: contacts.delete(record)) == forbidden
    assert _refused(lambda: contacts.batch_delete([record])) == forbidden
    assert [r["id"] for r in contacts.all()] == [record]  # reads go on
    assert contacts.get(record)["fields"]["Name"] == "Asha"
    standin.edit("Contacts", {record: {"Name": "Asha Rao"}})  # the owner, in the UI, still can
    assert _statuses(unlimited).count(403) == 5  # refused requests are logged with their status

    standin.unlock_table("Contacts")
    assert contacts.update(record, {"Name": "Asha R"})["fields"]["Name"] == "Asha R"


def test_a_locked_field_refuses_writes_to_it_and_a_locked_table_new_linked_records(
    unlimited: Running[AirtableStandIn],
) -> None:
    """ "You are not permitted to write cell values in field FIELD_NAME (FIELD_ID)"; and "You are
    not permitted to create records in table …" is "returned both when creating records
    directly, and when creating linked records while updating cell values" ("Errors")."""
    standin = unlimited.standin
    contacts = _table(unlimited, "Contacts")
    with_status = contacts.create({"Name": "A", "Status": "New"})
    standin.lock_field("Contacts", "Status")
    status_id = standin.table("Contacts").field("Status").id
    locked = (
        403,
        "INVALID_PERMISSIONS",
        f"You are not permitted to write cell values in field Status ({status_id})",
    )
    assert _refused(lambda: contacts.create({"Name": "B", "Status": "New"})) == locked
    assert _refused(lambda: contacts.update(with_status["id"], {"Status": "Contacted"})) == locked
    assert (
        _refused(lambda: contacts.update(with_status["id"], {"Name": "A2"}, replace=True)) == locked
    )  # clears it
    assert (
        _refused(lambda: contacts.batch_upsert([{"fields": {"Name": "A", "Status": "New"}}], ["Name"]))
        == locked
    )
    assert contacts.update(with_status["id"], {"Name": "A1"})["fields"] == {"Name": "A1", "Status": "New"}
    without = contacts.create({"Name": "C"})
    assert contacts.update(without["id"], {"Name": "C1"}, replace=True)["fields"] == {"Name": "C1"}
    standin.edit("Contacts", {with_status["id"]: {"Status": "Contacted"}})  # the owner, in the UI
    standin.unlock_field("Contacts", "Status")
    assert contacts.update(with_status["id"], {"Status": "New"})["fields"]["Status"] == "New"

    company = standin.add_record("Companies", {"Company Name": "Acme"})
    standin.lock_table("Companies")
    companies_id = standin.table("Companies").id
    assert _refused(lambda: contacts.create({"Name": "D", "Company": ["Globex"]}, typecast=True)) == (
        403,
        "INVALID_PERMISSIONS",
        f"You are not permitted to create records in table Companies ({companies_id})",
    )
    linked = contacts.create(
        {"Name": "D", "Company": ["Acme"]}, typecast=True
    )  # an existing one: no new record
    assert linked["fields"]["Company"] == [company]
    assert len(standin.records("Companies")) == 1


# --- the token and its permission ---


def test_a_revoked_token_is_401_and_a_reader_may_only_read(unlimited: Running[AirtableStandIn]) -> None:
    contacts = _table(unlimited, "Contacts")
    contacts.create({"Name": "A"})
    settings = httpx.put(f"{unlimited.url}/_standin/settings", json={"token": "patRotated.0001"})
    assert settings.json()["token"] == "patRotated.0001"
    assert _refused(contacts.all) == (401, "AUTHENTICATION_REQUIRED", "Invalid authentication token")
    rotated = _api(unlimited, "patRotated.0001").table(unlimited.standin.base_id, "Contacts")
    assert len(rotated.all()) == 1
    httpx.put(f"{unlimited.url}/_standin/settings", json={"permission": "read"})
    assert _refused(lambda: rotated.create({"Name": "B"})) == (
        403,
        "INVALID_PERMISSIONS",
        "You are not permitted to perform this operation",
    )
    assert len(rotated.all()) == 1
    assert _statuses(unlimited) == [200, 401, 200, 403, 200]


# --- a field reported unknown for a while (a reported transient, not documented) ---


def test_a_field_reported_unknown_for_a_while_while_the_schema_lists_it(
    unlimited: Running[AirtableStandIn],
) -> None:
    standin = unlimited.standin
    contacts = _table(unlimited, "Contacts")
    standin.flap_unknown_field("Contacts", "Contact Key", times=2)
    key_id = standin.table("Contacts").field("Contact Key").id
    rows = [{"fields": {"Contact Key": "k1", "Name": "A"}}]
    assert _refused(lambda: contacts.batch_upsert(rows, ["Contact Key"])) == (
        422,
        "UNKNOWN_FIELD_NAME",
        'Unknown field name: "Contact Key"',
    )
    schema = _api(unlimited).base(standin.base_id).schema(force=True)
    assert schema.table("Contacts").field("Contact Key").id == key_id  # the schema still lists it
    assert contacts.create({"Name": "Other"})["fields"] == {"Name": "Other"}  # writes not naming it pass
    assert (
        _refused(lambda: contacts.create({key_id: "k1", "Name": "A"}))[2] == f'Unknown field name: "{key_id}"'
    )
    assert contacts.batch_upsert(rows, ["Contact Key"])["createdRecords"]  # the third try passes
    assert _statuses(unlimited).count(422) == 2


def test_locks_and_unknown_fields_from_another_process(unlimited: Running[AirtableStandIn]) -> None:
    """The control API, for the demo and tests in other processes."""
    contacts = _table(unlimited, "Contacts")
    base = f"{unlimited.url}/_standin/tables"
    assert httpx.put(f"{base}/Contacts/lock").json() == {"locked": True}
    assert _refused(lambda: contacts.create({"Name": "A"}))[0] == 403
    assert httpx.delete(f"{base}/Contacts/lock").json() == {"locked": False}
    record = contacts.create({"Name": "A"})
    assert httpx.put(f"{base}/Contacts/fields/Name/lock").json() == {"locked": True}
    assert _refused(lambda: contacts.update(record["id"], {"Name": "B"}))[0] == 403
    httpx.delete(f"{base}/Contacts/fields/Name/lock")
    assert httpx.post(f"{base}/Contacts/fields/Name/unknown", json={"times": 1}).json() == {"times": 1}
    assert _refused(lambda: contacts.update(record["id"], {"Name": "B"}))[:2] == (422, "UNKNOWN_FIELD_NAME")
    assert contacts.update(record["id"], {"Name": "B"})["fields"]["Name"] == "B"
    assert httpx.put(f"{base}/Contacts/fields/Nope/lock").status_code == 422
    assert httpx.put(f"{base}/Nope/lock").status_code == 404
