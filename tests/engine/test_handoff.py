"""A job's rows go to Airtable the moment its transaction commits, sent by its own process's
pusher with a rate-limit slot taken meanwhile, no sender's round in between (engine/handoff.py).
Left to the senders instead, claimed by no one: while another job runs (their rows may share a
request), while the Contacts table's writes wait, or when no slot is free at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import pytest

from service import queries
from service.airtable.client import Airtable
from service.attestr.client import AttestrClient
from service.engine import jobs
from service.engine.jobs import Job
from service.engine.pusher import Pusher
from service.engine.sync import Syncer
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from tests.conftest import Running
from tests.engine.test_engine import FAST
from tests.engine.test_people_edits import KONKAN, NILGIRI, Base
from tests.flow import settings_for

WORKER = "handoff-test"


@dataclass
class _Engine:
    """A syncer handing its rows to a pusher whose senders do not run: what reaches Airtable, the
    hand-off sent."""

    pool: asyncpg.Pool
    pusher: Pusher
    syncer: Syncer

    async def run(self, record_id: str, cin: str) -> Job:
        await jobs.enqueue(self.pool, record_id, cin)
        (row,) = await self.pool.fetch(queries.JOB_CLAIM, 1, 60, WORKER)
        job = Job.from_row(row)
        await self.syncer.run(job, WORKER)
        await asyncio.gather(*self.pusher._handoffs)
        return job


@asynccontextmanager
async def _engine(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn], **env: str
) -> AsyncIterator[_Engine]:
    settings = settings_for(airtable, attestr, **{**FAST, **env})
    client = Airtable(settings, pool)
    pusher = Pusher(pool, client, settings, lease_s=60)
    attestr_client = AttestrClient.from_settings(settings)
    try:
        assert not await pusher.push_once()  # a first round: the base settled, its schema read
        yield _Engine(pool, pusher, Syncer(pool, settings, attestr_client, client, hand_off=pusher.prepare))
    finally:
        await attestr_client.aclose()


async def _leased(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM people WHERE push_lease_until > now()")


async def test_a_job_alone_has_its_contacts_and_status_written_as_it_commits(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    base = Base(airtable)
    async with _engine(pool, airtable, attestr) as engine:
        job = await engine.run(base.nilgiri, NILGIRI)
    assert len(base.standin.records("Contacts")) == len(attestr.standin.companies[NILGIRI]["contacts"])
    company = next(r for r in base.standin.records("Companies") if r["id"] == base.nilgiri)
    assert company["fields"]["Contacts Sync Status"] == "Synced"
    ended = await jobs.get(pool, job.id)
    assert ended is not None and ended.status == "succeeded"


@pytest.mark.parametrize("because", ["another job runs", "contacts writes are paused", "no slot is free"])
async def test_rows_are_left_to_the_senders_claimed_by_no_one(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn], because: str
) -> None:
    base = Base(airtable)
    env = {"AIRTABLE_RATE_LIMIT_RPS": "1"} if because == "no slot is free" else {}
    async with _engine(pool, airtable, attestr, **env) as engine:
        if because == "another job runs":
            await jobs.enqueue(pool, base.konkan, KONKAN)
            await pool.fetch(queries.JOB_CLAIM, 1, 60, "another-worker")
        elif because == "contacts writes are paused":
            await engine.pusher.pauses.pause(
                "contacts", "The token cannot write there", "INVALID_PERMISSIONS", None
            )
        # With one request a second, the record's read took this second's slot.
        await engine.run(base.nilgiri, NILGIRI)
        assert base.standin.records("Contacts") == []
        assert await _leased(pool) == 0
        if because == "contacts writes are paused":
            await engine.pusher.pauses.resume("mended")
        while await engine.pusher.push_once():  # the senders' rounds send them
            pass
    assert len(base.standin.records("Contacts")) == len(attestr.standin.companies[NILGIRI]["contacts"])


@pytest.mark.parametrize(("status", "kind"), [(503, "SERVICE_UNAVAILABLE"), (403, "INVALID_PERMISSIONS")])
async def test_a_refused_handed_write_loses_nothing(
    pool: asyncpg.Pool,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    status: int,
    kind: str,
) -> None:
    """Airtable down for a moment, or a table the token may no longer write (the operator's to
    mend: writes pause): what a sender's refused write means, the hand-off's means too. The rows
    are given back; the senders' rounds send them once Airtable takes them."""
    base = Base(airtable)
    async with _engine(pool, airtable, attestr) as engine:
        base.standin.faults.append({"method": "PATCH", "path": "Contacts", "status": status, "kind": kind})
        job = await engine.run(base.nilgiri, NILGIRI)
        assert base.standin.records("Contacts") == []
        held_s = await pool.fetchval("SELECT max(extract(epoch FROM push_lease_until - now())) FROM people")
        if status == 503:  # given back until a retry's delay, not held for the claim's 60 s
            assert held_s is not None and 0 < held_s < 30
            await pool.execute("UPDATE people SET push_lease_until = NULL")  # that delay, over
        else:
            assert held_s is None or held_s <= 0
        if status == 403:
            assert (await engine.pusher.pauses.admit("contacts")).waits  # paused, the jobs told
            await engine.pusher.pauses.resume("mended")
        while await engine.pusher.push_once():
            pass
    assert len(base.standin.records("Contacts")) == 3
    ended = await jobs.get(pool, job.id)
    assert ended is not None and ended.finished
