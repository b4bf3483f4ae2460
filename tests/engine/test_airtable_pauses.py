"""Refusals only the operator can fix pause the work instead of failing it: a token revoked in the
middle of a backlog (401), the token's user made read-only, the Contacts table or one of its fields
locked, the Companies table locked (403). In each: no job fails and no row is failed, the companies
show Waiting with the reason where the Companies table can still be written, at most one refused
request goes out a probe interval, and once the cause is gone every row lands with no command (or
at once with `airtable resume`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from service.airtable.pauses import AirtablePauses
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from tests.conftest import Running
from tests.engine.test_engine import FAST, many_companies, until
from tests.flow import enqueued, running_engine, settings_for

PROBE_S = 1.0
ACTIVE = "SELECT {} FROM airtable_pauses WHERE resumed_at IS NULL"  # the pauses in force


def _revoke(standin: AirtableStandIn) -> Callable[[], None]:
    token = standin.token
    standin.token = "revoked"

    def mend() -> None:
        standin.token = token

    return mend


def _read_only(standin: AirtableStandIn) -> Callable[[], None]:
    standin.permission = "read"

    def mend() -> None:
        standin.permission = "creator"

    return mend


def _lock_contacts(standin: AirtableStandIn) -> Callable[[], None]:
    standin.lock_table("Contacts")
    return lambda: standin.unlock_table("Contacts")


def _lock_phone(standin: AirtableStandIn) -> Callable[[], None]:
    standin.lock_field("Contacts", "Phone Number")
    return lambda: standin.unlock_field("Contacts", "Phone Number")


def _lock_companies(standin: AirtableStandIn) -> Callable[[], None]:
    standin.lock_table("Companies")
    return lambda: standin.unlock_table("Companies")


CAUSES: dict[str, tuple[Callable[[AirtableStandIn], Callable[[], None]], int, str]] = {
    # cause: (how, the status refused, what the reason says)
    "token revoked": (_revoke, 401, "refused the token"),
    "user made read-only": (_read_only, 403, "token's user write the"),
    "Contacts table locked": (_lock_contacts, 403, "write the Contacts table"),
    "a field locked": (_lock_phone, 403, "write the Contacts table"),
    "Companies table locked": (_lock_companies, 403, "write the Companies table"),
}


def _succeeded(pool: asyncpg.Pool, job_ids: list[int]) -> Callable[[], Any]:
    async def succeeded() -> bool:
        done = await pool.fetchval(
            "SELECT count(*) FROM jobs WHERE id = ANY($1::bigint[]) AND status = 'succeeded'", job_ids
        )
        return done == len(job_ids)

    return succeeded


def _paused(pool: asyncpg.Pool) -> Callable[[], Any]:
    async def paused() -> bool:
        return bool(await pool.fetchval(ACTIVE.format("count(*)")))

    return paused


def _refused(standin: AirtableStandIn, status: int) -> list[dict[str, Any]]:
    return [r for r in standin.requests if r.get("status") == status]


@pytest.mark.parametrize("cause", list(CAUSES))
async def test_a_refusal_the_operator_must_fix_pauses_the_work_and_a_probe_resumes_it(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn], cause: str
) -> None:
    how, status, words = CAUSES[cause]
    standin = airtable.standin
    companies = many_companies(airtable, attestr, 12)  # two directors each
    env = {**FAST, "AIRTABLE_PROBE_INTERVAL_S": str(PROBE_S)}
    with capture_logs() as logs:
        async with running_engine(pool, airtable, attestr, **env):
            job_ids = [(await enqueued(pool, record_id, cin))[0].id for record_id, cin in companies[:4]]

            async def first_in() -> bool:  # the backlog under way: some written already
                return len(standin.records("Contacts")) >= 4

            await until(first_in)
            mend = how(standin)
            job_ids += [(await enqueued(pool, record_id, cin))[0].id for record_id, cin in companies[4:]]

            await until(_paused(pool))
            reasons = await pool.fetchval(ACTIVE.format("array_agg(reason)"))
            assert any(words in reason for reason in reasons), reasons

            def probes() -> dict[str, list[float]]:
                """The refused requests of each pause after the requests under way when it began
                were answered (from one probe interval on), by arrival."""
                found: dict[str, list[float]] = {}
                for r in _refused(standin, status):
                    scope = "base" if status == 401 else r["path"].split("/")[3].lower()
                    if scope in began and r["at"] >= began[scope] + PROBE_S * 0.9:
                        found.setdefault(scope, []).append(r["arrived"])
                return found

            began: dict[str, float] = {}

            async def probed_twice() -> bool:  # two probes refused since the pause began
                for row in await pool.fetch(ACTIVE.format("scope, paused_at")):
                    began.setdefault(row["scope"], row["paused_at"].timestamp())  # a second may begin later
                return any(len(times) >= 2 for times in probes().values())

            await until(probed_twice)
            # While paused: one refused request a probe interval, no job failed, no row failed.
            for times in probes().values():
                gaps = [b - a for a, b in itertools.pairwise(times)]
                assert all(gap >= PROBE_S * 0.9 for gap in gaps), gaps
            assert not await pool.fetchval("SELECT count(*) FROM jobs WHERE status = 'failed'")
            assert not await pool.fetchval("SELECT count(*) FROM people WHERE push_error IS NOT NULL")
            if cause in ("Contacts table locked", "a field locked"):
                # The companies waiting for their contacts say why, in Airtable too.
                async def shown_waiting() -> bool:
                    return any(
                        r["fields"].get("Contacts Sync Status") == "Waiting"
                        and words in (r["fields"].get("Contacts Sync Error") or "")
                        for r in standin.records("Companies")
                    )

                await until(shown_waiting)
            mend()

            async def all_done() -> bool:  # and every final status written
                pending = await pool.fetchval(
                    "SELECT count(*) FROM companies WHERE push_version > pushed_version"
                )
                return await _succeeded(pool, job_ids)() and not pending

            await until(all_done)
    assert len(standin.records("Contacts")) == 24
    assert not await pool.fetchval(ACTIVE.format("count(*)"))
    assert all(r["fields"].get("Contacts Sync Status") == "Synced" for r in standin.records("Companies"))
    events = [line["event"] for line in logs]
    assert events.count("airtable.paused") >= 1 and "airtable.resumed" in events
    assert "airtable.row_failed" not in events


async def test_resume_ends_a_pause_at_once(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    standin = airtable.standin
    companies = many_companies(airtable, attestr, 3)
    env = {**FAST, "AIRTABLE_PROBE_INTERVAL_S": "3600"}
    async with running_engine(pool, airtable, attestr, **env) as runtime:
        mend = _revoke(standin)  # the service started with the token, then it was revoked
        job_ids = [(await enqueued(pool, record_id, cin))[0].id for record_id, cin in companies]

        await until(_paused(pool))
        mend()
        await AirtablePauses(pool, runtime.settings).resume("resumed by an operator")

        await until(_succeeded(pool, job_ids))
    assert len(standin.records("Contacts")) == 6


async def test_an_operators_pause_lets_nothing_through_until_resumed(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    standin = airtable.standin
    companies = many_companies(airtable, attestr, 2)
    env = {**FAST, "AIRTABLE_PROBE_INTERVAL_S": str(PROBE_S)}
    async with running_engine(pool, airtable, attestr, **env) as runtime:
        pauses = AirtablePauses(pool, runtime.settings)
        await pauses.pause_by_operator("the base is being restructured")
        writes = len(standin.write_requests())
        job_ids = [(await enqueued(pool, record_id, cin))[0].id for record_id, cin in companies]

        async def pushing() -> bool:
            return (
                await pool.fetchval(
                    "SELECT count(*) FROM jobs WHERE id = ANY($1::bigint[]) AND status = 'pushing'"
                    " AND wait_reason LIKE '%restructured%'",
                    job_ids,
                )
                == 2
            )

        await until(pushing)  # the jobs wait, saying why
        (state,) = await pauses.state()
        assert state["next_probe_at"] is None and "restructured" in state["reason"]
        assert len(standin.write_requests()) == writes  # nothing written, not even a probe
        await pauses.resume("resumed by an operator")

        await until(_succeeded(pool, job_ids))
    assert len(standin.records("Contacts")) == 4


async def test_a_field_airtable_calls_unknown_for_a_moment_delays_the_rows_and_fails_nothing(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """422 UNKNOWN_FIELD_NAME while the schema, read again, still lists the field: the rows are
    tried again a little later, never failed."""
    standin = airtable.standin
    companies = many_companies(airtable, attestr, 3)
    standin.flap_unknown_field("Contacts", "Phone Number", times=3)
    with capture_logs() as logs:
        async with running_engine(pool, airtable, attestr, **FAST) as runtime:
            runtime.pusher.sender.contradicted_retry_s = 0.2
            job_ids = [(await enqueued(pool, record_id, cin))[0].id for record_id, cin in companies]

            await until(_succeeded(pool, job_ids))
    assert len(standin.records("Contacts")) == 6
    assert all(r["fields"].get("Phone Number") for r in standin.records("Contacts"))
    assert not await pool.fetchval("SELECT count(*) FROM people WHERE push_error IS NOT NULL")
    assert any(line["event"] == "airtable.schema_contradicted" for line in logs)
    assert not any(line["event"] == "airtable.row_failed" for line in logs)


async def test_a_probe_ends_only_the_pause_it_was_let_through_for(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """A probe under way when the operator pauses everything, or when a newer refusal paused the
    table again, ends neither."""
    pauses = AirtablePauses(pool, settings_for(airtable, attestr, AIRTABLE_PROBE_INTERVAL_S="0.001"))
    refused = await pauses.admit("contacts")
    await pauses.pause("base", "token revoked", "AUTHENTICATION_REQUIRED", refused.at)
    await pauses.probe_now()  # the interval passed
    probe = await pauses.admit("contacts")
    assert probe.probe and probe.scope == "base"
    await pauses.pause_by_operator("restructuring the base")  # while the probe is under way
    await pauses.probe_got_through(probe, "Airtable answered again")
    assert [p["kind"] for p in await pauses.state()] == ["operator"]
    await pauses.resume("resumed by an operator")
    # A refusal of a request sent before the resume does not pause again; one sent after does.
    await pauses.pause("contacts", "locked", "INVALID_PERMISSIONS", refused.at)
    assert not await pauses.state()
    await pauses.pause("contacts", "locked", "INVALID_PERMISSIONS", (await pauses.admit("contacts")).at)
    assert [p["scope"] for p in await pauses.state()] == ["contacts"]


async def test_a_restart_probes_at_once(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """The operator mends the cause and restarts the service (a new token, say): the pause is
    probed at the start, not an hour later."""
    standin = airtable.standin
    companies = many_companies(airtable, attestr, 2)
    env = {**FAST, "AIRTABLE_PROBE_INTERVAL_S": "3600"}
    async with running_engine(pool, airtable, attestr, **env):
        mend = _revoke(standin)
        job_ids = [(await enqueued(pool, record_id, cin))[0].id for record_id, cin in companies]
        await until(_paused(pool))
    mend()
    async with running_engine(pool, airtable, attestr, **env):
        await until(_succeeded(pool, job_ids))
    assert len(standin.records("Contacts")) == 4
