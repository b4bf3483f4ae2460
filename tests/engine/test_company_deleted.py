"""A company record deleted by hand while its job runs, at each step: the job ends saying so
(failed, outcome `company_deleted`, logged), no row is created for it, and the rows of the people
it shares with another company stay right (linked to that one)."""

from __future__ import annotations

import asyncpg
import pytest
from structlog.testing import capture_logs

from service.engine import jobs
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from tests.conftest import Running
from tests.engine.test_engine import FAST, attestr_asked, finished_job, until
from tests.engine.test_people_edits import KONKAN, NILGIRI, VIKRAM, Base, synced
from tests.flow import enqueued, running_engine


def _assert_ended_as_deleted(job: jobs.Job, logs: list[dict]) -> None:
    assert job.status == "failed" and (job.result or {}).get("outcome") == "company_deleted", job.last_error
    assert "deleted in Airtable" in (job.last_error or "")
    assert any(line["event"] == "job.failed" and "deleted in Airtable" in line["error"] for line in logs)


@pytest.mark.parametrize("step", ["before it runs", "while Attestr answers"])
async def test_a_company_deleted_before_its_contacts_are_written(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn], step: str
) -> None:
    base = Base(airtable)
    async with running_engine(pool, airtable, attestr, **FAST):
        await synced(pool, base.konkan, KONKAN)  # Vikram's row, linked to Konkan
    konkan_rows = {r["id"] for r in base.standin.records("Contacts")}
    with capture_logs() as logs:
        if step == "before it runs":
            job, _ = await enqueued(pool, base.nilgiri, NILGIRI)
            base.standin.delete_record("Companies", base.nilgiri)
            async with running_engine(pool, airtable, attestr, **FAST):
                ended = await finished_job(pool, job.id)
        else:
            attestr.standin.delay_s = 1.0
            async with running_engine(pool, airtable, attestr, **{**FAST, "ATTESTR_TIMEOUT_S": "10"}):
                job, _ = await enqueued(pool, base.nilgiri, NILGIRI)

                await attestr_asked(attestr, NILGIRI)  # its answer takes a second
                base.standin.delete_record("Companies", base.nilgiri)
                ended = await finished_job(pool, job.id)
    _assert_ended_as_deleted(ended, logs)
    assert {r["id"] for r in base.standin.records("Contacts")} == konkan_rows  # none created for it
    assert base.row(VIKRAM)["fields"]["Company"] == [base.konkan]


async def test_a_company_deleted_after_its_first_contacts_were_written(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    base = Base(airtable)
    big = "U74999TG2017PTC118280"
    attestr.standin.companies[big] = {
        "valid": True,
        "businessName": "BIG BOARD LIMITED",
        "contacts": [{"indexId": f"{50000000 + n}", "fullName": f"Director {n}"} for n in range(14)],
    }
    record_id = base.standin.add_record("Companies", {"Company Name": "Big Board", "CIN": big})
    # One request a second: the second batch of contacts goes a second after the first.
    with capture_logs() as logs:
        async with running_engine(pool, airtable, attestr, **{**FAST, "AIRTABLE_RATE_LIMIT_RPS": "1"}):
            job, _ = await enqueued(pool, record_id, big)

            async def first_batch_in() -> bool:
                return len(base.standin.records("Contacts")) >= 10

            await until(first_batch_in)
            base.standin.delete_record("Companies", record_id)
            ended = await finished_job(pool, job.id)
    _assert_ended_as_deleted(ended, logs)
    rows = base.standin.records("Contacts")
    assert len(rows) == 10  # the first batch, written while the company existed; no more
    assert all(not row["fields"].get("Company") for row in rows)  # Airtable dropped the links


async def test_a_company_deleted_once_its_contacts_are_in_then_refreshed(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """Every person of the company has a row: Airtable drops the links to the deleted record, which
    alone would read as a person unlinking them; the service asks whether the company is still
    there before it takes it so."""
    base = Base(airtable)
    async with running_engine(pool, airtable, attestr, **FAST):
        await synced(pool, base.konkan, KONKAN)
        await synced(pool, base.nilgiri, NILGIRI)
        before = {r["id"]: r["fields"] for r in base.standin.records("Contacts")}
        base.standin.delete_record("Companies", base.nilgiri)
        with capture_logs() as logs:
            job, _ = await enqueued(pool, base.nilgiri, NILGIRI, force=True)  # Refresh Contacts
            ended = await finished_job(pool, job.id)
    _assert_ended_as_deleted(ended, logs)
    assert any(line["event"] == "airtable.company_deleted" for line in logs)
    rows = {r["id"]: r["fields"] for r in base.standin.records("Contacts")}
    assert rows.keys() == before.keys()  # none created, none lost
    for row_id, fields in rows.items():  # what each row held, but for the deleted company's links
        links = [link for link in before[row_id].get("Company", []) if link != base.nilgiri]
        assert fields.get("Company", []) == links
        assert {k: v for k, v in fields.items() if k != "Company"} == {
            k: v for k, v in before[row_id].items() if k != "Company"
        }
    assert base.row(VIKRAM)["fields"]["Company"] == [base.konkan]
