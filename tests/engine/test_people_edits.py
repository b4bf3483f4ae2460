"""Airtable is where people work: a value a person changed or cleared in a contact's row, and a
link a person made or removed, survive every later push (a second company naming the same
director, a Refresh); a newer filing is shown beside a person's value, not over it; the service
removes only the links it made. Against the Airtable stand-in, edits made as in its interface."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from service.engine import jobs
from service.standins.airtable import AirtableStandIn, Field
from service.standins.airtable_errors import AirtableError as StandInAirtableError
from service.standins.attestr import AttestrStandIn
from service.triggers import backfill
from tests.conftest import Running
from tests.engine.test_engine import FAST, until
from tests.flow import enqueued, running_engine

NILGIRI, KONKAN = "U72200KA2015PTC081234", "U51909MH2018PTC309876"  # Vikram Sethi sits on both boards
VIKRAM = "08234567"


class Base:
    """Two companies of the sample data in the Airtable stand-in, and what a test needs of them."""

    def __init__(self, airtable: Running[AirtableStandIn]) -> None:
        airtable.standin.rate_limit = 1000  # FAST's 50 requests a second
        self.standin = airtable.standin
        self.nilgiri = self.standin.add_record("Companies", {"Company Name": "Nilgiri", "CIN": NILGIRI})
        self.konkan = self.standin.add_record("Companies", {"Company Name": "Konkan", "CIN": KONKAN})

    def row(self, din: str) -> dict[str, Any]:
        return next(r for r in self.standin.records("Contacts") if r["fields"].get("DIN") == din)

    def keyed(self, contact_key: str) -> dict[str, Any]:
        return next(
            r for r in self.standin.records("Contacts") if r["fields"].get("Contact Key") == contact_key
        )

    def edit(self, din: str, **fields: Any) -> None:
        """Cells changed by a person in Airtable's interface (None clears one)."""
        self.standin.edit("Contacts", {self.row(din)["id"]: fields})


async def synced(pool: asyncpg.Pool, record_id: str, cin: str, **options: Any) -> None:
    job, _ = await enqueued(pool, record_id, cin, **options)

    async def ended() -> bool:
        now = await jobs.get(pool, job.id)
        return now is not None and now.status == "succeeded"

    await until(ended)


EDITS = [
    ("Name", "Vikram S. Sethi"),
    ("Phone Number", "+91 99000 11111"),
    ("Email", "vikram.sethi@gmail.com"),
    ("DIN", "0823 4567"),
    ("Address", "12 Marine Drive, Mumbai"),
    ("Phone Type", "Landline"),
]


@pytest.mark.parametrize("cleared", [False, True], ids=["edited", "cleared"])
@pytest.mark.parametrize(("field", "value"), EDITS, ids=[f for f, _ in EDITS])
async def test_a_field_a_person_changed_survives_every_later_push(
    pool: asyncpg.Pool,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    field: str,
    value: str,
    cleared: bool,
) -> None:
    base = Base(airtable)
    async with running_engine(pool, airtable, attestr, **FAST):
        await synced(pool, base.nilgiri, NILGIRI)
        before = base.row(VIKRAM)["fields"]
        base.edit(VIKRAM, **{field: None if cleared else value})
        # The same director in a second company's filing: his row is pushed again (a new link).
        await synced(pool, base.konkan, KONKAN)
        # Refresh Contacts on the first: pushed again, paid again, the same filing; then the second.
        await synced(pool, base.nilgiri, NILGIRI, force=True)
        await synced(pool, base.konkan, KONKAN, force=True)
    vikram = base.keyed(before["Contact Key"])["fields"]
    assert vikram.get(field) == (None if cleared else value)
    assert sorted(vikram["Company"]) == sorted([base.nilgiri, base.konkan])
    # What the person left alone follows the filings (both say the same name, phone and email;
    # the address differs between them, so it is the latest filing's).
    for other in {"Name", "Phone Number", "Email"} - {field}:
        assert vikram.get(other) == before.get(other)
    if field != "Address":
        assert vikram["Address"] == "Registered office, Mumbai, India"
    if field == "Address":  # the filings disagree on it: the latest one's is shown beside the person's
        assert vikram["Contacts Sync Note"] == (
            "Address: the latest filing says Registered office, Mumbai, India; yours is kept"
        )
    else:
        assert "Contacts Sync Note" not in vikram  # the filings said nothing new
    assert len(attestr.standin.calls) == 4
    assert 429 not in [r["status"] for r in base.standin.requests]


async def test_a_newer_filing_is_shown_beside_a_persons_value_not_over_it(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    base = Base(airtable)
    async with running_engine(pool, airtable, attestr, **FAST):
        await synced(pool, base.nilgiri, NILGIRI)
        base.edit(VIKRAM, **{"Phone Number": "+91 99000 11111", "Name": "Vikram S. Sethi"})
        newer = attestr.standin.companies[NILGIRI]
        (director,) = [c for c in newer["contacts"] if c["indexId"] == VIKRAM]
        director["mobileNumber"] = "9845099999"  # the latest filing gives another phone
        with capture_logs() as logs:
            await synced(pool, base.nilgiri, NILGIRI, force=True)
    vikram = base.row(VIKRAM)["fields"]
    assert vikram["Phone Number"] == "+91 99000 11111" and vikram["Name"] == "Vikram S. Sethi"
    assert vikram["Contacts Sync Note"] == "Phone Number: the latest filing says +919845099999; yours is kept"
    kept = [line for line in logs if line["event"] == "airtable.value_kept"]
    assert [line["fields"] for line in kept] == [["Phone Number"]]  # the name's filing did not move
    # The person then takes the filing's number: the note goes.
    base.edit(VIKRAM, **{"Phone Number": "+919845099999"})
    async with running_engine(pool, airtable, attestr, **FAST):
        await synced(pool, base.konkan, KONKAN)
    assert "Contacts Sync Note" not in base.row(VIKRAM)["fields"]


async def test_links_made_or_removed_by_hand_stay_and_the_service_removes_only_its_own(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    base = Base(airtable)
    venture = base.standin.add_record("Companies", {"Company Name": "A new venture"})
    async with running_engine(pool, airtable, attestr, **FAST):
        await synced(pool, base.nilgiri, NILGIRI)
        meera = base.row("08345678")
        base.edit("08345678", Company=[*meera["fields"]["Company"], venture])  # linked by hand
        base.edit(VIKRAM, Company=[venture])  # Nilgiri's link removed by hand, another made
        await synced(pool, base.konkan, KONKAN)
        # Nilgiri's next filing no longer lists Meera: the service removes its own link only.
        attestr.standin.companies[NILGIRI]["contacts"] = [
            c for c in attestr.standin.companies[NILGIRI]["contacts"] if c["indexId"] != "08345678"
        ]
        await synced(pool, base.nilgiri, NILGIRI, force=True)
    assert base.row("08345678")["fields"]["Company"] == [venture]
    assert sorted(base.row(VIKRAM)["fields"]["Company"]) == sorted([venture, base.konkan])


async def test_a_persons_edit_survives_the_field_being_renamed(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """What the service wrote is kept by field id: renamed in Airtable (and in the settings), the
    field is the same one, and the person's value in it is still theirs."""
    base = Base(airtable)
    async with running_engine(pool, airtable, attestr, **FAST):
        await synced(pool, base.nilgiri, NILGIRI)
        base.edit(VIKRAM, **{"Phone Number": "+91 99000 11111"})
    base.standin.rename_field("Contacts", "Phone Number", "Mobile")
    async with running_engine(pool, airtable, attestr, **{**FAST, "AIRTABLE_FIELD_PHONE": "Mobile"}):
        await synced(pool, base.konkan, KONKAN)  # Vikram's row pushed again, with a new link
        await synced(pool, base.nilgiri, NILGIRI, force=True)
    vikram = base.row(VIKRAM)["fields"]
    assert vikram["Mobile"] == "+91 99000 11111"
    assert sorted(vikram["Company"]) == sorted([base.nilgiri, base.konkan])


async def test_what_was_recorded_by_field_name_before_ids_is_found_after_a_rename(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """Rows recorded by field name (as migration 019 left them) are recorded by field id at the
    service's first schema read: a field renamed after that keeps people's values."""
    base = Base(airtable)
    async with running_engine(pool, airtable, attestr, **FAST):
        await synced(pool, base.nilgiri, NILGIRI)
    names = {f.id: f.name for f in base.standin.table("Contacts").fields}
    stored = json.loads(await pool.fetchval("SELECT airtable_written FROM people WHERE din = $1", VIKRAM))
    by_name = json.dumps({names[key]: value for key, value in stored.items()})
    await pool.execute("UPDATE people SET airtable_written = $2::jsonb WHERE din = $1", VIKRAM, by_name)
    async with running_engine(pool, airtable, attestr, **FAST):

        async def by_id() -> bool:
            record = await pool.fetchval("SELECT airtable_written FROM people WHERE din = $1", VIKRAM)
            return set(json.loads(record)) == set(stored)

        await until(by_id)
    base.edit(VIKRAM, **{"Phone Number": "+91 99000 11111"})
    base.standin.rename_field("Contacts", "Phone Number", "Mobile")
    async with running_engine(pool, airtable, attestr, **{**FAST, "AIRTABLE_FIELD_PHONE": "Mobile"}):
        await synced(pool, base.konkan, KONKAN)
    assert base.row(VIKRAM)["fields"]["Mobile"] == "+91 99000 11111"


async def test_resync_overwrite_puts_the_source_back_over_peoples_edits(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    base = Base(airtable)
    venture = base.standin.add_record("Companies", {"Company Name": "A new venture"})
    async with running_engine(pool, airtable, attestr, **FAST):
        await synced(pool, base.nilgiri, NILGIRI)
        before = base.row(VIKRAM)["fields"]
        base.edit(VIKRAM, **{"Phone Number": "+91 99000 11111", "Company": [base.nilgiri, venture]})
        await backfill.resync(pool)  # a plain resync keeps them
        await until(_all_pushed(pool))
        assert base.row(VIKRAM)["fields"]["Phone Number"] == "+91 99000 11111"
        await backfill.resync(pool, overwrite=True)
        await until(_all_pushed(pool))
    vikram = base.row(VIKRAM)["fields"]
    assert vikram["Phone Number"] == before["Phone Number"] and vikram["Company"] == [base.nilgiri]


def _all_pushed(pool: asyncpg.Pool) -> Any:
    async def pushed() -> bool:
        return not await pool.fetchval("SELECT count(*) FROM people WHERE push_version > pushed_version")

    return pushed


async def test_a_field_renamed_in_the_settings_is_filled_by_a_resync(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """What the service wrote is kept by field name: a field it never wrote is its own to fill."""
    base = Base(airtable)
    async with running_engine(pool, airtable, attestr, **FAST):
        await synced(pool, base.nilgiri, NILGIRI)
    base.standin.table("Contacts").fields.append(Field("Mobile", "phoneNumber"))
    async with running_engine(pool, airtable, attestr, **FAST, AIRTABLE_FIELD_PHONE="Mobile"):
        await backfill.resync(pool)
        await until(_all_pushed(pool))
    vikram = base.row(VIKRAM)["fields"]
    assert vikram["Mobile"] == vikram["Phone Number"] == "+919845012346"


# Two filings naming one person without a DIN, with two phones: two rows, until a person merges them.
ALPHA, BETA = "U72900KA2019PTC100001", "U72900KA2019PTC100002"


def _rahul(phone: str, din: str | None = None) -> dict[str, Any]:
    return {"indexId": din, "fullName": "RAHUL VERMA", "mobileNumber": phone, "emailAddress": None}


@pytest.mark.parametrize("identities", [0, 2], ids=["no identity", "two DINs"])
async def test_a_merge_made_by_hand_is_adopted(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn], identities: int
) -> None:
    dins = ("07000001", "07000002") if identities else (None, None)
    attestr.standin.companies[ALPHA] = {
        "valid": True,
        "businessName": "ALPHA",
        "contacts": [_rahul("9810000001", dins[0])],
    }
    attestr.standin.companies[BETA] = {
        "valid": True,
        "businessName": "BETA",
        "contacts": [_rahul("9810000002", dins[1])],
    }
    base = Base(airtable)
    alpha = base.standin.add_record("Companies", {"Company Name": "Alpha", "CIN": ALPHA})
    beta = base.standin.add_record("Companies", {"Company Name": "Beta", "CIN": BETA})
    async with running_engine(pool, airtable, attestr, **FAST):
        await synced(pool, alpha, ALPHA)
        await synced(pool, beta, BETA)
        first, second = base.standin.records("Contacts")
        assert first["fields"]["Company"] == [alpha] and second["fields"]["Company"] == [beta]
        # Kept: the first row, with both links and the newer phone; the second row deleted.
        base.standin.edit(
            "Contacts", {first["id"]: {"Company": [alpha, beta], "Phone Number": "+919810000002"}}
        )
        base.standin.delete_record("Contacts", second["id"])
        with capture_logs() as logs:
            await synced(pool, beta, BETA, force=True)  # Beta's filing names the merged row's person
            await synced(pool, beta, BETA, force=True)  # and again: the kept row is updated
            await synced(pool, alpha, ALPHA, force=True)
    (kept,) = base.standin.records("Contacts")  # the deleted row is never re-created
    assert kept["id"] == first["id"]
    assert sorted(kept["fields"]["Company"]) == sorted([alpha, beta])
    assert kept["fields"]["Phone Number"] == "+919810000002"  # the person's choice
    companies = {r["id"]: r["fields"] for r in base.standin.records("Companies")}
    assert companies[alpha]["Contacts Found"] == companies[beta]["Contacts Found"] == 1
    event = "airtable.hand_merge_of_two_identities" if identities else "airtable.hand_merge_adopted"
    assert [line["event"] for line in logs].count(event) == 1
    assert not any(line["event"] == "airtable.row_deleted" for line in logs)


MEERA = "08345678"  # no email in Nilgiri's filing


@pytest.mark.parametrize("pushed_between", [False, True], ids=["next filing", "after an unchanged push"])
async def test_a_value_typed_into_a_cell_the_service_left_empty_is_the_persons(
    pool: asyncpg.Pool,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    pushed_between: bool,
) -> None:
    base = Base(airtable)
    # Each refresh stands for a later filing (a day apart, not within REFRESH_MIN_INTERVAL_S).
    async with running_engine(pool, airtable, attestr, **FAST, REFRESH_MIN_INTERVAL_S="0"):
        await synced(pool, base.nilgiri, NILGIRI)
        assert "Email" not in base.row(MEERA)["fields"]
        base.edit(MEERA, Email="meera.k@gmail.com")  # the team found her email
        if pushed_between:
            await synced(pool, base.nilgiri, NILGIRI, force=True)  # the same filing
        meera = next(c for c in attestr.standin.companies[NILGIRI]["contacts"] if c["indexId"] == MEERA)
        meera["emailAddress"] = "meera@nilgiri.example"  # a newer filing has one
        await synced(pool, base.nilgiri, NILGIRI, force=True)
    fields = base.row(MEERA)["fields"]
    assert fields["Email"] == "meera.k@gmail.com"
    assert (
        fields["Contacts Sync Note"] == "Email: the latest filing says meera@nilgiri.example; yours is kept"
    )


async def test_a_write_airtable_applied_whose_answer_was_lost_stays_the_services(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """The retry reads back the service's own values: they are the service's, not a person's, so
    later filings still move them and the service's links still go when a company drops them."""
    base = Base(airtable)
    standin = base.standin
    write = standin._write
    lost = {"once": True}

    def applied_then_lost(table: Any, records: Any, *args: Any, **options: Any) -> Any:
        done = write(table, records, *args, **options)
        if lost["once"] and table.name == "Contacts":
            lost["once"] = False
            raise StandInAirtableError(503, "SERVICE_UNAVAILABLE", "the answer was lost")
        return done

    async with running_engine(pool, airtable, attestr, **FAST):
        await synced(pool, base.nilgiri, NILGIRI)
        standin._write = applied_then_lost  # type: ignore[method-assign]
        await synced(pool, base.konkan, KONKAN)
        assert not lost["once"]  # the answer was lost once, and the job went on
        standin._write = write  # type: ignore[method-assign]
        attestr.standin.companies[KONKAN]["contacts"] = [
            c for c in attestr.standin.companies[KONKAN]["contacts"] if c["indexId"] != VIKRAM
        ]
        await synced(pool, base.konkan, KONKAN, force=True)
        await synced(pool, base.nilgiri, NILGIRI, force=True)
    vikram = base.row(VIKRAM)["fields"]
    assert vikram["Company"] == [base.nilgiri]  # the service's own Konkan link went
    assert vikram["Address"] == "Registered office, Bengaluru, India"  # the latest filing's
    assert "Contacts Sync Note" not in vikram


async def test_a_phone_the_service_withdrew_is_cleared_and_a_persons_stays(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """An earlier version wrote a masked number read as keypad digits; today's rules (migration
    022) find no phone there. The cell the service wrote is cleared; a cell a person changed
    since is theirs and stays."""
    base = Base(airtable)
    ananya, meera = "07123456", "08345678"
    async with running_engine(pool, airtable, attestr, **FAST):
        await synced(pool, base.nilgiri, NILGIRI)
        base.edit(meera, **{"Phone Number": "+91 99000 22222"})
        # What 022 does to a phone read again from its raw value: none, pushed again.
        await pool.execute(
            "UPDATE people SET phone_e164 = NULL, phone_type = NULL, push_version = push_version + 1"
            " WHERE din = ANY($1::text[])",
            [ananya, meera],
        )

        async def pushed() -> bool:
            return not await pool.fetchval("SELECT count(*) FROM people WHERE push_version > pushed_version")

        await until(pushed)
    assert "Phone Number" not in base.row(ananya)["fields"] and "Phone Type" not in base.row(ananya)["fields"]
    assert base.row(meera)["fields"]["Phone Number"] == "+91 99000 22222"
    assert base.row(VIKRAM)["fields"]["Phone Number"] == "+919845012346"  # untouched
