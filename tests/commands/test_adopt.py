"""Adopting a Contacts table of 300 rows from an older tool: duplicates, near-misses, rows with
nothing to match on; then a sync that updates the adopted rows instead of adding new ones."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from tests.command_line import contact_sync
from tests.flow import Flow

SPELLINGS = ["+91 {a} {b}", "0{a}{b}", "{a}{b}", "91{a}{b}", "+91-{a}-{b}"]


def phone(number: str, variant: int) -> str:
    return SPELLINGS[variant % len(SPELLINGS)].format(a=number[:5], b=number[5:])


def adopt(flow: Flow, db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "AIRTABLE_API_KEY": flow.airtable.token,
        "AIRTABLE_BASE_ID": flow.airtable.base_id,
        "AIRTABLE_API_URL": flow.service_env["AIRTABLE_API_URL"],
        "AIRTABLE_RATE_LIMIT_RPS": "50",
    }
    return contact_sync("airtable", "adopt", *args, env=env)


def test_adopting_300_older_rows_then_syncing(flow: Flow, db_url: str) -> None:
    flow.airtable.rate_limit = 10_000
    companies = [flow.company(f"Co {i}") for i in range(60)]
    rows: list[dict[str, Any]] = []
    for i in range(250):  # the people, as the older tool wrote them
        rows.append(
            {
                "Name": f"Person {i}",
                "DIN": f"{50000000 + i}" if i % 3 else None,
                "Phone Number": phone(f"98{i:08d}", i),
                "Email": f"p{i}@old.example",
                "Company": [companies[i % 60]],
            }
        )
    for i in range(0, 60, 2):  # 30 of them again: other spellings, other case, another company
        rows.append(
            {
                "Name": f"PERSON {i}",
                "DIN": f"{50000000 + i}" if i % 3 else None,
                "Phone Number": phone(f"98{i:08d}", i + 1),
                "Email": f"P{i}@OLD.EXAMPLE",
                "Company": [companies[(i + 1) % 60]],
            }
        )
    for i in range(10):  # near-misses: a namesake elsewhere, with other phone and email
        rows.append(
            {
                "Name": f"Person {i}",
                "Phone Number": f"97{i:08d}",
                "Email": f"namesake{i}@old.example",
                "Company": [companies[(i + 30) % 60]],
            }
        )
    for i in range(5):
        rows.append({"Name": f"Orphan {i}", "Phone Number": f"96{i:08d}"})  # no company
        rows.append({"Notes": "called once", "Company": [companies[0]]})  # nothing to match on
    assert len(rows) == 300
    for fields in rows:
        flow.airtable.add_record("Contacts", {k: v for k, v in fields.items() if v is not None})

    dry = adopt(flow, db_url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert (
        "0 row(s) already have a Contact Key; would adopt 260; 30 look duplicated; 10 skipped" in dry.stdout
    )
    assert all("Contact Key" not in c for c in flow.contacts())

    done = adopt(flow, db_url)
    assert done.returncode == 0, done.stderr
    assert "adopted 260; 30 look duplicated; 10 skipped" in done.stdout
    assert 'no "Company" link' in done.stdout and "phone or email to match on" in done.stdout
    keyed = [c for c in flow.contacts() if c.get("Contact Key")]
    assert len(keyed) == 260 and len({c["Contact Key"] for c in keyed}) == 260
    again = adopt(flow, db_url)
    assert "260 row(s) already have a Contact Key; adopted 0; 30 look duplicated" in again.stdout

    # The first sync of company 1 updates the rows of the two directors it already had.
    cin = "U74999TG2017PTC118280"
    flow.attestr.companies[cin] = {
        "valid": True,
        "businessName": "CO ONE",
        "contacts": [
            {"indexId": "50000001", "fullName": "Person 1", "mobileNumber": "9800000001"},
            {"indexId": "50000061", "fullName": "Person 61", "mobileNumber": "9800000061"},
            {"indexId": "50999999", "fullName": "New Director", "mobileNumber": "9812345678"},
        ],
    }
    before = len(flow.contacts())
    job = flow.wait_for_job(flow.webhook(companies[1], cin).json()["job_id"])
    assert job["status"] == "succeeded", job
    # The two directors it had are updated and the new one added. What the adopted rows hold is
    # people's (nothing says the service wrote it): the older tool's other people of company 1
    # keep their link to it, which the service did not make and so never removes.
    assert job["result"]["airtable_created"] == 1
    assert len(flow.contacts()) == before + 1
    keyed = [c for c in flow.contacts() if c.get("Contact Key")]
    linked = sorted(c.get("DIN") or c["Name"] for c in keyed if companies[1] in c.get("Company", []))
    older = [f"{50000000 + i}" for i in range(1, 250, 60)]  # the older tool's people of company 1
    assert linked == sorted({*older, "50000061", "50999999"}), linked
    assert job["result"]["airtable_updated"] >= 2

    person_1 = [c for c in flow.contacts() if c.get("DIN") == "50000001"]
    assert len(person_1) == 1 and person_1[0]["Contact Key"]  # the adopted row, not a second one
