"""`contact-sync doctor` on a base with missing and wrong fields, then `--fix`, then clean."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from datetime import datetime, timezone
from typing import Any

import asyncpg
import pytest

from service.airtable import bases
from service.standins.airtable import AirtableStandIn, Field
from service.standins.airtable_errors import AirtableError
from service.standins.attestr import PATH_V3, SERVICE_CODE, STANDIN_CONSENT_ID, AttestrStandIn
from service.standins.attestr_consents import standin_consent_body
from tests.command_line import contact_sync
from tests.conftest import Running, ctrl_c_as_at_a_terminal
from tests.flow import service_env


def doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return contact_sync("doctor", *args, env={**os.environ, **env})


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


def test_missing_select_options_are_named_then_added(
    env: dict[str, str], airtable: Running[AirtableStandIn]
) -> None:
    phone_type = airtable.standin.table("Contacts").field("Phone Type")
    status = airtable.standin.table("Companies").field("Contacts Sync Status")
    phone_type.options["choices"] = [c for c in phone_type.options["choices"] if c["name"] != "Landline"]
    status.options["choices"] = [
        c for c in status.options["choices"] if c["name"] not in ("No Data", "Waiting")
    ]
    first = doctor(env)
    assert first.returncode == 0  # values are held back, nothing fails
    assert '! Contacts.Phone Type: lacks the option(s) "Landline"' in first.stdout
    assert '! Companies.Contacts Sync Status: lacks the option(s) "Waiting", "No Data"' in first.stdout

    airtable.standin.permission = "editor"  # Airtable lets only a creator add options
    refused = doctor(env, "--fix")
    assert "could not be added" in refused.stdout and "creator" in refused.stdout
    airtable.standin.permission = "creator"
    rows = {t: len(airtable.standin.records(t)) for t in ("Companies", "Contacts")}
    fixed = doctor(env, "--fix")
    assert 'Contacts.Phone Type: added the option(s) "Landline"' in fixed.stdout
    assert [c["name"] for c in phone_type.options["choices"]] == ["Mobile", "Landline"]
    assert {c["name"] for c in status.options["choices"]} >= {"No Data", "Waiting"}
    assert {t: len(airtable.standin.records(t)) for t in rows} == rows  # the throw-away rows are gone
    assert "lacks" not in doctor(env).stdout


def webhook(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return contact_sync("airtable", "webhook", *args, env={**os.environ, **env})


def test_what_the_automation_script_needs(env: dict[str, str], airtable: Running[AirtableStandIn]) -> None:
    airtable.standin.scopes.discard("webhook:manage")  # not needed without the native webhook
    done = doctor(env)
    assert done.returncode == 0, done.stdout
    assert "✓ triggering: the automation script" in done.stdout


def test_what_the_native_webhook_needs(env: dict[str, str], airtable: Running[AirtableStandIn]) -> None:
    made = webhook(env, "create", "--url", "https://sync.example.com/webhooks/airtable/notifications")
    assert made.returncode == 0, made.stderr
    (hook_id,) = airtable.standin.webhooks
    clean = doctor(env)
    assert clean.returncode == 0, clean.stdout
    for line in ("✓ webhook:manage: granted", "✓ creator on the base: yes", f"✓ webhook {hook_id}: enabled"):
        assert line in clean.stdout

    airtable.standin.permission = "editor"
    assert "✗ creator on the base: no" in doctor(env).stdout
    airtable.standin.permission = "creator"
    airtable.standin.scopes.discard("webhook:manage")
    assert "✗ webhook:manage: the native webhook's changes cannot be read" in doctor(env).stdout
    airtable.standin.scopes.add("webhook:manage")

    airtable.standin.webhooks[hook_id].notifications_enabled = False  # Airtable gave up pinging
    airtable.standin.webhooks[hook_id].last_result = {"success": False, "error": {"message": "HTTP 502"}}
    stopped = doctor(env).stdout
    assert f"! webhook {hook_id}: Airtable stopped pinging it" in stopped and "HTTP 502" in stopped

    airtable.standin.remove_field("Companies", "Refresh Contacts")  # a watched field: Airtable disables it
    broken = doctor(env)
    assert broken.returncode == 1
    assert f"✗ webhook {hook_id}: disabled by Airtable" in broken.stdout
    assert "contact-sync airtable webhook recreate" in broken.stdout


def test_an_outdated_webhook_and_a_full_base(env: dict[str, str], airtable: Running[AirtableStandIn]) -> None:
    companies = airtable.standin.table("Companies")
    refresh = companies.field("Refresh Contacts")
    airtable.standin.remove_field("Companies", "Refresh Contacts")
    assert webhook(env, "create", "--url", "https://sync.example.com/hook").returncode == 0
    companies.fields.append(refresh)  # added to the base after the webhook was made
    (ours,) = airtable.standin.webhooks.values()
    for _ in range(9):  # another integration's webhooks fill the base
        other = dataclasses.replace(
            ours, id=airtable.standin.new_id("ach"), notification_url="https://x.example"
        )
        airtable.standin.webhooks[other.id] = other
    done = doctor(env).stdout
    assert 'outdated: it does not watch "Refresh Contacts"' in done
    assert "! webhooks on the base: 10, the most Airtable allows" in done
    assert done.count("in Airtable but not stored here") == 9


def _tables(airtable: Running[AirtableStandIn]) -> dict[str, list[dict]]:
    return {t.name: airtable.standin.records(t.name) for t in airtable.standin.tables}


def test_the_write_check_writes_links_reads_and_deletes_one_row(
    env: dict[str, str], airtable: Running[AirtableStandIn]
) -> None:
    before = _tables(airtable)
    done = doctor(env, "--write-check")
    assert done.returncode == 0, done.stdout
    assert "automations on Contacts" in done.stdout
    for step in (
        "✓ write: created rec",
        "✓ write again: updated rec",
        "rows with that Contact Key: 1",
        "✓ link to a company: rec",
        "✓ read back: every value as written",
        "✓ delete: deleted rec",
    ):
        assert step in done.stdout
    assert _tables(airtable) == before
    upserts = [
        r
        for r in airtable.standin.write_requests()
        if r["method"] == "PATCH" and r["path"].endswith("/Contacts")
    ]
    assert len(upserts) == 3  # written, written again, linked: the pusher's own calls


@pytest.mark.parametrize(
    ("fault", "failed_step"),
    [
        ({"method": "PATCH", "path": "/Contacts", "skip": 1, "status": 503}, "write again"),
        (
            {
                "method": "PATCH",
                "path": "/Contacts",
                "skip": 2,
                "status": 422,
                "kind": "INVALID_VALUE_FOR_COLUMN",
            },
            "link to a company",
        ),
        ({"method": "GET", "path": "/Contacts/rec", "status": 503}, "read back"),
        ({"method": "DELETE", "path": "/Contacts", "status": 503}, "delete"),
    ],
)
def test_a_write_check_failing_midway_leaves_both_tables_as_they_were(
    env: dict[str, str], airtable: Running[AirtableStandIn], fault: dict, failed_step: str
) -> None:
    before = _tables(airtable)
    airtable.standin.faults.append(fault)
    done = doctor(env, "--write-check")
    assert done.returncode == 1
    assert f"✗ {failed_step}:" in done.stdout and "✓ clean up:" in done.stdout
    assert not airtable.standin.faults  # the refusal did come
    assert _tables(airtable) == before


def test_a_429_while_cleaning_up_waits_out_the_cool_down_and_still_deletes_the_row(
    env: dict[str, str], airtable: Running[AirtableStandIn]
) -> None:
    before = _tables(airtable)
    airtable.standin.faults += [
        {"method": "DELETE", "path": "/Contacts", "status": 503},  # the delete step fails
        {"method": "DELETE", "path": "/Contacts", "status": 429, "kind": "RATE_LIMIT_REACHED"},  # clean up
    ]
    done = doctor(env, "--write-check")
    assert "✗ delete:" in done.stdout and "✓ clean up:" in done.stdout, done.stdout
    assert not airtable.standin.faults  # both refusals did come
    assert _tables(airtable) == before


def test_a_write_check_on_an_empty_companies_table_skips_the_link(
    db_url: str, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    done = doctor(service_env(db_url, airtable, attestr), "--write-check")
    assert (
        done.returncode == 0 and "- link to a company: skipped: the Companies table is empty" in done.stdout
    )
    assert airtable.standin.records("Contacts") == []


def test_a_write_whose_answer_is_lost_is_still_cleaned_up(
    env: dict[str, str], airtable: Running[AirtableStandIn]
) -> None:
    """The first write reaches Airtable but its answer does not come back (a 502 after the work):
    the row is found by its Contact Key and deleted."""
    before = _tables(airtable)
    real_write = airtable.standin._write

    def lost_answer(table: Any, *args: object, **kwargs: object) -> dict:
        answer = real_write(table, *args, **kwargs)  # type: ignore[arg-type]
        if table.name != "Contacts":
            return answer
        airtable.standin._write = real_write  # type: ignore[method-assign]
        raise AirtableError(502, "BAD_GATEWAY", "lost on the way back")

    airtable.standin._write = lost_answer  # type: ignore[method-assign]
    done = doctor(env, "--write-check")
    assert done.returncode == 1 and "✗ write:" in done.stdout and "✓ clean up: deleted rec" in done.stdout
    assert _tables(airtable) == before


def test_adding_options_leaves_no_throw_away_row_or_says_where_it_is(
    env: dict[str, str], airtable: Running[AirtableStandIn]
) -> None:
    phone_type = airtable.standin.table("Contacts").field("Phone Type")
    phone_type.options["choices"] = [c for c in phone_type.options["choices"] if c["name"] != "Landline"]
    real_create = airtable.standin._create
    lost: list[str] = []

    def create_then_lose_the_answer(table: Any, fields: dict) -> dict:
        record = real_create(table, fields)
        if table.name == "Contacts" and not lost:
            lost.append(record["id"])
            raise AirtableError(502, "BAD_GATEWAY", "lost on the way back")
        return record

    airtable.standin._create = create_then_lose_the_answer  # type: ignore[method-assign]
    done = doctor(env, "--fix")
    assert lost and airtable.standin.records("Contacts") == []  # found by its name and deleted
    assert "could not be added" in done.stdout and "BAD_GATEWAY" in done.stdout

    airtable.standin._create = real_create  # type: ignore[method-assign]
    phone_type.options["choices"] = [c for c in phone_type.options["choices"] if c["name"] != "Landline"]
    contacts_id = airtable.standin.table("Contacts").id  # doctor addresses the table by id
    airtable.standin.faults.append({"method": "DELETE", "path": contacts_id, "status": 503})
    left = doctor(env, "--fix")
    assert "throw-away rows are left in the table" in left.stdout
    (row,) = airtable.standin.records("Contacts")
    assert row["id"] in left.stdout  # named, so that a person can delete it


@pytest.mark.process  # Ctrl-C to a child
def test_an_interrupted_write_check_leaves_no_row_and_the_next_one_sweeps_older_ones(
    env: dict[str, str], airtable: Running[AirtableStandIn]
) -> None:
    before = _tables(airtable)
    airtable.standin.delay_s = 0.3  # time to be interrupted between two steps
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "doctor", "--write-check"],
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        preexec_fn=ctrl_c_as_at_a_terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("✓ write:"):
            process.send_signal(signal.SIGINT)  # Ctrl-C, after the row was written
            break
    process.communicate(timeout=60)
    assert _tables(airtable) == before
    airtable.standin.delay_s = 0.0
    # A row an earlier run could not delete (the machine went down, say) goes first next time.
    airtable.standin.add_record(
        "Contacts", {"Name": "contact-sync write check", "Contact Key": "ct_write_check_dead"}
    )
    done = doctor(env, "--write-check")
    assert "✓ earlier rows: deleted 1 row(s)" in done.stdout and done.returncode == 0
    assert _tables(airtable) == before


def test_doctor_reads_the_v3_consent(env: dict[str, str], attestr: Running[AttestrStandIn]) -> None:
    """V3: the version, and the consent through Attestr's lifecycle API (a reusable one) or the
    data categories API (one registered per lookup); each wrong one said with what to do."""
    v3 = {**env, "ATTESTR_API_VERSION": "v3", "ATTESTR_API_URL": attestr.url + PATH_V3}
    good = doctor({**v3, "ATTESTR_CONSENT_ID": STANDIN_CONSENT_ID})
    assert good.returncode == 0, good.stdout
    assert "✓ Attestr API: V3 (consent-first)" in good.stdout
    assert f"✓ Attestr consent: ATTESTR_CONSENT_ID={STANDIN_CONSENT_ID} (number CN" in good.stdout
    assert "is active" in good.stdout

    revoked = attestr.standin.register_consent(**standin_consent_body(datetime.now(timezone.utc)))
    attestr.standin.revoke_consent(revoked)
    for consent_id, said in ((revoked, "is revoked: jobs wait"), ("CXnoSuchConsent001", "does not know")):
        bad = doctor({**v3, "ATTESTR_CONSENT_ID": consent_id})
        assert bad.returncode == 1, bad.stdout
        assert "✗ Attestr consent: " in bad.stdout and said in bad.stdout
        assert "→ register a new consent (or renew this one) with Attestr and set its id" in bad.stdout

    missing = doctor(v3)
    assert missing.returncode == 1
    assert "✗ Attestr consent: ATTESTR_CONSENT_ID (or ATTESTR_CONSENT_PURPOSE" in missing.stdout

    per_lookup = {
        **v3,
        "ATTESTR_CONSENT_PURPOSE": "background_verification",
        "ATTESTR_SERVICE_CODE": SERVICE_CODE,
        "ATTESTR_CONSENT_EVIDENCE_REF": "forms/{cin}",
    }
    assert "its data categories cover what Attestr asks for" in doctor(per_lookup).stdout
    narrow = doctor({**per_lookup, "ATTESTR_CONSENT_CATEGORIES": "identity:din,pan;contact:email,phone"})
    assert narrow.returncode == 1
    assert "lacking business_identity:business_name" in narrow.stdout
    suggested = next(line for line in narrow.stdout.splitlines() if "set ATTESTR_CONSENT_CATEGORIES=" in line)
    assert "identity:din,pan" in suggested and "location:address" in suggested
    assert attestr.standin.calls == []  # nothing paid


def test_doctor_says_v2_is_deprecated(env: dict[str, str]) -> None:
    done = doctor(env)
    assert "! Attestr API: V2, which Attestr has deprecated" in done.stdout
    assert "Moving to Attestr V3" in done.stdout
    unused = doctor({**env, "ATTESTR_CONSENT_ID": STANDIN_CONSENT_ID})
    assert "! Attestr consent: a V3 consent is configured, but not used on V2" in unused.stdout


async def test_doctor_names_the_base_rows_were_written_to_and_a_new_one(
    env: dict[str, str], pool: asyncpg.Pool
) -> None:
    await bases.settle(pool, "appTrialBase00001")
    moved = doctor(env)
    said = " ".join(moved.stdout.split())
    assert f"AIRTABLE_BASE_ID is {env['AIRTABLE_BASE_ID']}; rows were written to appTrialBase00001" in said
    assert await bases.settle(pool, env["AIRTABLE_BASE_ID"]) == "appTrialBase00001"  # the next start
    said = " ".join(doctor(env).stdout.split())
    assert f"✓ Airtable base: {env['AIRTABLE_BASE_ID']}, written to since" in said
    assert "(moved from appTrialBase00001, whose rows were left as they were)" in said
