"""People as real filings write them, end to end: each case is a few companies' Attestr answers,
synced one after another through the webhook, and the Contacts rows Airtable ends with. The
cases that must stay two people are the ones an earlier rule merged; the others are one person
an earlier rule split. The rules themselves are tested as tables and properties in
tests/people; this shows that what Airtable receives keeps the promise "two different people are
never merged"."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from tests.conftest import Running
from tests.flow import Flow, running_flow


@dataclass(frozen=True)
class Case:
    kind: str
    filings: list[list[dict[str, Any]]]  # each a company's answer's contacts, synced in this order
    rows: set[tuple[str, str | None, str | None]]  # (Name, Phone Number, DIN) in Airtable


def person(
    name: str, index_id: str | None = None, phone: str | None = None, email: str | None = None
) -> dict:
    return {"indexId": index_id, "fullName": name, "mobileNumber": phone, "emailAddress": email}


CASES = [
    Case(
        "Indic names sharing consonants, on the office's phone",
        [[person("सुरेश शर्मा", phone="022 2345 1111"), person("सरिता शर्मा", phone="022 2345 1111")]],
        {("सुरेश शर्मा", "+912223451111", None), ("सरिता शर्मा", "+912223451111", None)},
    ),
    Case(
        "Tamil names on one phone",
        [[person("முருகன் ராஜா", phone="044 2811 2222"), person("மீனா ராஜா", phone="044 2811 2222")]],
        {("முருகன் ராஜா", "+914428112222", None), ("மீனா ராஜா", "+914428112222", None)},
    ),
    Case(
        "initials joined before a surname, not an honorific",
        [[person("KM RAO", phone="080 4123 3333"), person("DR RAO", phone="080 4123 3333")]],
        {("KM Rao", "+918041233333", None), ("DR Rao", "+918041233333", None)},
    ),
    Case(
        "a masked number is no phone and no key",
        [[person("ANIL JOSHI", phone="98XXXXXX45"), person("ANITA JOSHI", phone="98XXXXXX45")]],
        {("Anil Joshi", None, None), ("Anita Joshi", None, None)},
    ),
    Case(
        "a secretary and a director sharing a role mailbox",
        [
            [
                person("R SHARMA", email="info@sharmaexports.in"),
                person("RAJESH SHARMA", "03456789", email="info@sharmaexports.in"),
            ]
        ],
        {("R Sharma", None, None), ("Rajesh Sharma", None, "03456789")},
    ),
    Case(
        "a DIN holder and a PAN holder sharing a family landline and a name",
        [
            [person("ANIL MEHTA", "04567891", phone="022 2456 4444")],
            [person("ANIL MEHTA", "ABCPM1234K", phone="022 2456 4444")],
        ],
        {("Anil Mehta", "+912224564444", "04567891"), ("Anil Mehta", "+912224564444", None)},
    ),
    Case(
        "one name in NFC and in NFD",
        [
            [person(unicodedata.normalize("NFC", "JOSÉ D'COSTA"), "05678912", "98450 55501")],
            [person(unicodedata.normalize("NFD", "JOSÉ D'COSTA"), phone="98450 55501")],
        ],
        {("José D'Costa", "+919845055501", "05678912")},
    ),
    Case(
        "a DIN written inside the name",
        [
            [person("PRIYA NAIR", "06789123", "98450 55502")],
            [person("PRIYA NAIR (DIN: 06789123)", phone="98450 55502")],
        ],
        {("Priya Nair", "+919845055502", "06789123")},
    ),
    Case(
        "initials first, the full name in a later filing",
        [[person("R K SHARMA", "07891234")], [person("RAVI KUMAR SHARMA", "07891234")]],
        {("Ravi Kumar Sharma", None, "07891234")},
    ),
    Case(
        "a placeholder in a later filing keeps the real phone",
        [[person("MEERA IYER", "08912345", "98450 55503")], [person("MEERA IYER", "08912345", "9999999999")]],
        {("Meera Iyer", "+919845055503", "08912345")},
    ),
]


def test_people_in_airtable_are_who_the_filings_name(flow: Flow) -> None:
    """Every case in one service, each under its own companies, names and numbers: the cases'
    first filings synced together, then their second ones."""
    cins = (f"U72200KA2015PTC{n:06d}" for n in range(100001, 200000))
    for step in range(max(len(case.filings) for case in CASES)):
        jobs = []
        for case in CASES:
            if step < len(case.filings):
                cin = next(cins)
                flow.attestr.companies[cin] = {
                    "valid": True,
                    "businessName": case.kind.upper(),
                    "contacts": case.filings[step],
                }
                jobs.append((case, flow.webhook(flow.company(case.kind, cin), cin).json()["job_id"]))
        for case, job_id in jobs:
            job = flow.wait_for_job(job_id)
            assert job["status"] == "succeeded", (case.kind, job)
    contacts = flow.contacts()
    failed = []
    for case in CASES:
        names = {n for n, _phone, _din in case.rows}
        found = [c for c in contacts if c.get("Name") in names]
        seen = {(c.get("Name"), c.get("Phone Number"), c.get("DIN")) for c in found}
        if seen != case.rows or len(found) != len(case.rows):
            failed.append((case.kind, sorted(seen, key=str), len(found)))
    assert not failed, failed
    assert len(contacts) == sum(len(case.rows) for case in CASES)


def test_contacts_beyond_the_cap_are_counted_where_people_look(
    tmp_path: Path, db_url: str, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """A board larger than ATTESTR_MAX_CONTACTS: the first are read, and the company's status,
    the job's result and the log line say how many were not."""
    cin = "U72200KA2015PTC100000"
    attestr.standin.companies[cin] = {
        "valid": True,
        "businessName": "LARGE BOARD LIMITED",
        "contacts": [person(f"DIRECTOR {chr(65 + i)} SHAH", f"0{1000000 + i}") for i in range(5)],
    }
    with running_flow(tmp_path, db_url, airtable, attestr, ATTESTR_MAX_CONTACTS="3") as flow:
        company = flow.company("Large Board", cin)
        job = flow.wait_for_job(flow.webhook(company, cin).json()["job_id"])
        assert job["result"]["contacts_fetched"] == 3 and job["result"]["contacts_left_out"] == 2
        assert len(flow.contacts()) == 3
        # The company's status goes out just after its contacts.
        flow.wait_until(lambda: flow.company_fields(company).get("Contacts Sync Status") == "Synced")
        fields = flow.company_fields(company)
        assert fields["Contacts Sync Error"].startswith("2 more contact(s) listed by Attestr were left out")
        upserted = [line for line in flow.service.logs() if line["event"] == "contacts.upserted"]
        assert [line["left_out"] for line in upserted] == [2]
