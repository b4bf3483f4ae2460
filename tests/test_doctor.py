"""`contact-sync doctor` on a base with missing and wrong fields, then `--fix`, then clean."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from service.standins.airtable import AirtableStandIn, Field
from service.standins.attestr import AttestrStandIn
from tests.conftest import Running
from tests.flow import service_env


def doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", "doctor", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def env(db_url: str, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]) -> dict[str, str]:
    airtable.standin.add_record("Companies", {"Company Name": "Acme"})
    return service_env(db_url, airtable, attestr)


def test_a_complete_set_up_is_clean(env: dict[str, str]) -> None:
    done = doctor(env)
    assert done.returncode == 0, done.stdout
    assert "Everything the service needs is in place" in done.stdout
    assert "✗" not in done.stdout and "write records: allowed" in done.stdout


def test_missing_fields_are_reported_then_created(
    env: dict[str, str], airtable: Running[AirtableStandIn]
) -> None:
    for table, name in (
        ("Contacts", "Contact Key"),
        ("Contacts", "Phone Type"),
        ("Companies", "Contacts Found"),
        ("Contacts", "Company"),
    ):
        airtable.standin.remove_field(table, name)
    first = doctor(env)
    assert first.returncode == 1
    assert "✗ Contacts.Contact Key: missing (needed)" in first.stdout
    assert "✗ Contacts.Company: missing (needed)" in first.stdout
    assert "! Contacts.Phone Type: missing (optional" in first.stdout
    assert "contact-sync doctor --fix" in first.stdout

    fixed = doctor(env, "--fix")
    assert fixed.returncode == 0, fixed.stdout
    assert "Contacts.Contact Key: created (singleLineText)" in fixed.stdout
    contacts = airtable.standin.table("Contacts")
    company = next(f for f in contacts.fields if f.name == "Company")
    assert company.type == "multipleRecordLinks"
    assert company.options["linkedTableId"] == airtable.standin.table("Companies").id
    assert [
        c["name"] for c in next(f for f in contacts.fields if f.name == "Phone Type").options["choices"]
    ] == ["Mobile", "Landline"]

    again = doctor(env)
    assert again.returncode == 0 and "created" not in again.stdout


def test_a_field_of_the_wrong_type_is_named(env: dict[str, str], airtable: Running[AirtableStandIn]) -> None:
    contacts = airtable.standin.table("Contacts")
    contacts.fields = [Field("DIN", "number") if f.name == "DIN" else f for f in contacts.fields]
    done = doctor(env, "--fix")
    assert done.returncode == 1
    assert "✗ Contacts.DIN: is number; it should be singleLineText" in done.stdout


def test_a_token_without_the_scopes_it_needs(env: dict[str, str], airtable: Running[AirtableStandIn]) -> None:
    airtable.standin.scopes -= {"data.records:write", "schema.bases:write"}
    airtable.standin.remove_field("Contacts", "Contact Key")
    done = doctor(env, "--fix")
    assert done.returncode == 1
    assert "could not be created" in done.stdout and "schema.bases:write" in done.stdout
    assert "✗ write records" in done.stdout and "data.records:write" in done.stdout


def test_nothing_configured(db_url: str) -> None:
    done = doctor(
        {"DATABASE_URL": db_url, "ATTESTR_API_KEY": "", "AIRTABLE_API_KEY": "", "AIRTABLE_BASE_ID": ""}
    )
    assert done.returncode == 1
    assert "ATTESTR_API_KEY is not set" in done.stdout
    assert "AIRTABLE_API_KEY and AIRTABLE_BASE_ID not set" in done.stdout


def test_an_unreachable_database(
    airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    env = service_env("postgresql://nobody@127.0.0.1:1/none", airtable, attestr)
    done = doctor(env)
    assert done.returncode == 1
    assert "✗ database: not reachable" in done.stdout
    assert "✓ Airtable token: valid" in done.stdout  # the other checks still run
