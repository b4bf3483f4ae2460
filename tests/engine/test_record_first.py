"""A job of the automation's webhook reads its company record while the CIN's lock is taken and
the stored answers are checked, and keeps a call it paid for while it stores the people: what
the record says still comes first, and what was paid is never paid again.

- A record that does not exist ends the job as deleted whatever Attestr's state, and uses none
  of the day's calls (one counted before the read answered is given back).
- A CIN changed since the webhook is the only one counted and paid for.
- The database lost right after the call (the connection keeping it closed): the people are not
  committed without the call kept, and the job's next try stores that answer, not paying again.
"""

from __future__ import annotations

import asyncpg
import pytest

from service import queries
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from tests.conftest import Running
from tests.engine.test_engine import FAST, attestr_asked, finished_job
from tests.engine.test_people_edits import KONKAN, NILGIRI, Base
from tests.flow import enqueued, running_engine


async def _calls_today(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT COALESCE(sum(calls_today), 0) FROM attestr_state")


@pytest.mark.parametrize("attestr_state", ["calling", "paused by the operator", "refusing the token"])
async def test_a_record_that_does_not_exist_ends_the_job_and_uses_none_of_the_day(
    pool: asyncpg.Pool,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    attestr_state: str,
) -> None:
    Base(airtable)
    env = {**FAST, "ATTESTR_API_KEY": ""} if attestr_state == "refusing the token" else FAST
    async with running_engine(pool, airtable, attestr, **env) as runtime:
        if attestr_state == "paused by the operator":
            await runtime.syncer.gate.pause_by_operator()
        job, _ = await enqueued(pool, "recNoSuchRecord01", NILGIRI)
        ended = await finished_job(pool, job.id)
    outcome = (ended.result or {}).get("outcome")
    assert ended.status == "failed" and outcome == "company_deleted", ended.last_error
    assert attestr.standin.calls == []
    assert await _calls_today(pool) == 0


async def test_a_cin_changed_since_the_webhook_is_the_only_one_counted(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    base = Base(airtable)
    async with running_engine(pool, airtable, attestr, **FAST):
        job, _ = await enqueued(pool, base.konkan, NILGIRI)  # the record holds Konkan's CIN
        ended = await finished_job(pool, job.id)
    assert ended.status == "succeeded" and ended.cin == KONKAN
    assert attestr.standin.calls_for(NILGIRI) == 0 and attestr.standin.calls_for(KONKAN) == 1
    assert await _calls_today(pool) == 1


async def test_the_database_lost_right_after_the_call_costs_no_second_call(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    base = Base(airtable)
    attestr.standin.delay_s = 1.0
    async with running_engine(pool, airtable, attestr, **{**FAST, "ATTESTR_TIMEOUT_S": "10"}):
        job, _ = await enqueued(pool, base.nilgiri, NILGIRI)

        await attestr_asked(attestr, NILGIRI)  # its answer takes a second
        # The connection holding the CIN's lock keeps the call once it is answered: it goes.
        closed = await pool.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = $1",
            queries.ATTESTR_TAKE_CALL,
        )
        assert closed == 1
        ended = await finished_job(pool, job.id)
    assert ended.status == "succeeded", ended.last_error
    assert attestr.standin.calls_for(NILGIRI) == 1
    kept = await pool.fetch("SELECT outcome FROM attestr_answers WHERE job_id = $1", job.id)
    assert [row["outcome"] for row in kept] == ["synced"]
    assert len(base.standin.records("Contacts")) == len(attestr.standin.companies[NILGIRI]["contacts"]) == 3
