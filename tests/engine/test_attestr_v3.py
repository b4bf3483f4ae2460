"""Attestr V3 through the whole engine, against the stand-in over HTTP: a job carries its consent;
a consent Attestr refuses (unknown, expired, revoked, not covering the lookup, a registration
refused) makes every job wait with 0 paid calls and a sentence saying what to do, and they finish
once it is mended; V2 switched off pauses, loses nothing, and resumes on V3; the record of which
consent each lookup used outlives `contacts forget`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from service.commands.forget import forget
from service.engine import jobs
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import PATH, PATH_V3, SERVICE_CODE, STANDIN_CONSENT_ID, AttestrStandIn
from service.standins.attestr_consents import standin_consent_body
from tests.conftest import Running
from tests.engine.test_engine import FAST, states, until
from tests.flow import enqueued, running_engine

NILGIRI = "U72200KA2015PTC081234"  # three directors at the stand-in


def v3(attestr: Running[AttestrStandIn], **env: str) -> dict[str, str]:
    return {**FAST, "ATTESTR_API_VERSION": "v3", "ATTESTR_API_URL": attestr.url + PATH_V3, **env}


def per_lookup(**env: str) -> dict[str, str]:
    """Settings that register a consent for each lookup."""
    return {
        "ATTESTR_CONSENT_PURPOSE": "background_verification",
        "ATTESTR_SERVICE_CODE": SERVICE_CODE,
        "ATTESTR_CONSENT_EVIDENCE_REF": "consent-forms/{cin}",
        **env,
    }


async def _company(airtable: Running[AirtableStandIn]) -> str:
    airtable.standin.rate_limit = 1000  # FAST's 50 requests a second
    return airtable.standin.add_record("Companies", {"Company Name": "Nilgiri Software", "CIN": NILGIRI})


async def _ended(pool: asyncpg.Pool, job_id: int) -> Callable[[], Any]:
    async def ended() -> bool:
        job = await jobs.get(pool, job_id)
        return job is not None and job.status == "succeeded"

    return ended


async def _waiting(pool: asyncpg.Pool, job_id: int) -> jobs.Job:
    async def waiting() -> bool:
        job = await jobs.get(pool, job_id)
        return job is not None and job.status == "queued" and bool(job.wait_reason)

    await until(waiting)
    job = await jobs.get(pool, job_id)
    assert job is not None
    return job


async def _shown(airtable: Running[AirtableStandIn], record_id: str, status: str) -> dict[str, Any]:
    """The company's fields once Airtable shows `status` (the pusher writes it a moment later)."""

    def fields() -> dict[str, Any]:
        return next(r for r in airtable.standin.records("Companies") if r["id"] == record_id)["fields"]

    async def shown() -> bool:
        return fields().get("Contacts Sync Status") == status

    await until(shown)
    return fields()


async def test_a_v3_sync_carries_its_consent_and_records_it(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    record_id = await _company(airtable)
    async with running_engine(pool, airtable, attestr, **v3(attestr, ATTESTR_CONSENT_ID=STANDIN_CONSENT_ID)):
        job, _ = await enqueued(pool, record_id, NILGIRI)
        await until(await _ended(pool, job.id))
    (call,) = attestr.standin.calls
    assert (call["version"], call["consent_id"]) == ("v3", STANDIN_CONSENT_ID)
    assert len(airtable.standin.records("Contacts")) == 3
    (lookup,) = await pool.fetch("SELECT * FROM attestr_lookups")
    assert (lookup["job_id"], lookup["cin"], lookup["api_version"]) == (job.id, NILGIRI, "v3")
    assert (lookup["consent_id"], lookup["consent_kind"], lookup["outcome"]) == (
        STANDIN_CONSENT_ID,
        "reusable",
        "synced",
    )
    assert lookup["attestr_request_id"]  # Attestr's xattestrid, for a report


async def test_a_consent_registered_for_each_lookup_is_used_once(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    record_id = await _company(airtable)
    async with running_engine(pool, airtable, attestr, **v3(attestr, **per_lookup())):
        first, _ = await enqueued(pool, record_id, NILGIRI)
        await until(await _ended(pool, first.id))
        second, _ = await enqueued(pool, record_id, NILGIRI, force=True)  # pays again: a new consent
        await until(await _ended(pool, second.id))
    used = [call["consent_id"] for call in attestr.standin.calls]
    assert len(used) == 2 and len(set(used)) == 2 and STANDIN_CONSENT_ID not in used
    assert all(attestr.standin.consent_status(consent_id) == "consumed" for consent_id in used)
    rows = await pool.fetch(
        "SELECT consent_id, consent_number, consent_kind FROM attestr_lookups ORDER BY id"
    )
    assert [r["consent_id"] for r in rows] == used
    assert all(r["consent_kind"] == "single_use" and r["consent_number"] for r in rows)


def _revoke(standin: AttestrStandIn) -> str:
    consent_id = standin.register_consent(**_reusable_body())
    standin.revoke_consent(consent_id)
    return consent_id


def _expire(standin: AttestrStandIn) -> str:
    consent_id = standin.register_consent(**_reusable_body())
    standin.expire_consent(consent_id)
    return consent_id


def _narrow(standin: AttestrStandIn) -> str:
    """A consent for another service: it does not cover the lookup."""
    body = _reusable_body()
    return standin.register_consent(**{**body, "consentOperations": ["STORE", "SHARE"]})


def _reusable_body() -> dict[str, Any]:
    return standin_consent_body(datetime.now(timezone.utc))


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda standin: "CXnoSuchConsent001", "does not know the consent"),
        (_expire, "(expired, revoked or used up)"),
        (_revoke, "(expired, revoked or used up)"),
        (_narrow, "does not cover this lookup"),
    ],
    ids=["unknown", "expired", "revoked", "not covering"],
)
async def test_a_refused_consent_makes_jobs_wait_unpaid_until_it_is_mended(
    pool: asyncpg.Pool,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    make: Callable[[AttestrStandIn], str],
    words: str,
) -> None:
    bad = make(attestr.standin)
    record_id = await _company(airtable)
    with capture_logs() as logs:
        async with running_engine(pool, airtable, attestr, **v3(attestr, ATTESTR_CONSENT_ID=bad)) as runtime:
            job, _ = await enqueued(pool, record_id, NILGIRI)
            waiting = await _waiting(pool, job.id)
            state = await runtime.syncer.gate.state()
            company = await _shown(airtable, record_id, "Waiting")
    assert attestr.standin.calls == [] and attestr.standin.refused  # refused, and nothing paid
    assert words in (waiting.wait_reason or "") and f"ATTESTR_CONSENT_ID={bad}" in (waiting.wait_reason or "")
    assert "set its id as ATTESTR_CONSENT_ID" in (waiting.wait_reason or "")
    assert "then restart the service (or run `contact-sync attestr resume`)" in (waiting.wait_reason or "")
    assert state["paused"] and words in state["reason"]
    assert len([line for line in logs if line["event"] == "attestr.paused"]) == 1
    assert words in company["Contacts Sync Error"]
    assert "failed" not in await states(pool)
    # The operator sets a consent Attestr accepts and restarts: the pause ends at once, the job runs.
    async with running_engine(pool, airtable, attestr, **v3(attestr, ATTESTR_CONSENT_ID=STANDIN_CONSENT_ID)):
        await until(await _ended(pool, job.id))
    assert [call["consent_id"] for call in attestr.standin.calls] == [STANDIN_CONSENT_ID]


async def test_a_registration_refused_waits_naming_the_setting_to_change(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    record_id = await _company(airtable)
    narrow = per_lookup(ATTESTR_CONSENT_CATEGORIES="identity:din")  # less than the lookup needs
    async with running_engine(pool, airtable, attestr, **v3(attestr, **narrow)):
        job, _ = await enqueued(pool, record_id, NILGIRI)
        waiting = await _waiting(pool, job.id)
    assert attestr.standin.calls == []
    assert "data categories" in (waiting.wait_reason or "")
    assert "ATTESTR_CONSENT_CATEGORIES" in (waiting.wait_reason or "")
    async with running_engine(pool, airtable, attestr, **v3(attestr, **per_lookup())):
        await until(await _ended(pool, job.id))
    assert len(attestr.standin.calls) == 1


async def test_v3_without_a_consent_waits_like_a_missing_credential_until_a_restart_brings_it(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    record_id = await _company(airtable)
    async with running_engine(pool, airtable, attestr, **v3(attestr)) as runtime:
        job, _ = await enqueued(pool, record_id, NILGIRI)
        waiting = await _waiting(pool, job.id)
        state = await runtime.syncer.gate.state()
    assert "ATTESTR_CONSENT_ID (or ATTESTR_CONSENT_PURPOSE" in (waiting.wait_reason or "")
    assert state["consent"].startswith("not configured: set ATTESTR_CONSENT_ID")
    assert attestr.standin.calls == [] and attestr.standin.refused == []  # not even asked
    # Its wait runs for minutes; a process started with the consent set looks again at once.
    async with running_engine(pool, airtable, attestr, **v3(attestr, ATTESTR_CONSENT_ID=STANDIN_CONSENT_ID)):
        await until(await _ended(pool, job.id))


async def test_refusals_never_use_up_the_daily_call_limit(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """A refused consent probed again and again (each a refusal, not billed) leaves the day's
    cap whole: once the consent is mended the jobs run, and the reason never turns into the cap."""
    bad = _revoke(attestr.standin)
    record_id = await _company(airtable)
    limited = {"ATTESTR_DAILY_CALL_LIMIT": "2", "ATTESTR_PROBE_INTERVAL_S": "0.1"}
    async with running_engine(
        pool, airtable, attestr, **v3(attestr, ATTESTR_CONSENT_ID=bad, **limited)
    ) as runtime:
        job, _ = await enqueued(pool, record_id, NILGIRI)

        async def refused_often() -> bool:
            return len(attestr.standin.refused) >= 5

        await until(refused_often)
        state = await runtime.syncer.gate.state()
        waiting = await jobs.get(pool, job.id)
    assert waiting is not None and "ATTESTR_DAILY_CALL_LIMIT" not in (waiting.wait_reason or "")
    assert "ATTESTR_DAILY_CALL_LIMIT" not in state["reason"] and state["calls_today"] == 0
    async with running_engine(
        pool, airtable, attestr, **v3(attestr, ATTESTR_CONSENT_ID=STANDIN_CONSENT_ID, **limited)
    ):
        await until(await _ended(pool, job.id))
    assert len(attestr.standin.calls) == 1


async def test_a_service_code_the_account_lacks_is_named_and_mended_by_a_restart(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    record_id = await _company(airtable)
    async with running_engine(
        pool, airtable, attestr, **v3(attestr, **per_lookup(ATTESTR_SERVICE_CODE="MCA_WRONG"))
    ):
        job, _ = await enqueued(pool, record_id, NILGIRI)
        waiting = await _waiting(pool, job.id)
    assert "ATTESTR_SERVICE_CODE=MCA_WRONG: not a service of this account" in (waiting.wait_reason or "")
    async with running_engine(pool, airtable, attestr, **v3(attestr, **per_lookup())):
        await until(await _ended(pool, job.id))


async def test_v2_switched_off_pauses_once_loses_nothing_and_resumes_on_v3(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    attestr.standin.v2_switched_off = True
    record_id = await _company(airtable)
    konkan = {"Company Name": "Konkan", "CIN": "U51909MH2018PTC309876"}
    other = airtable.standin.add_record("Companies", konkan)
    with capture_logs() as logs:
        async with running_engine(pool, airtable, attestr, **FAST, ATTESTR_API_URL=attestr.url + PATH):
            first, _ = await enqueued(pool, record_id, NILGIRI)
            second, _ = await enqueued(pool, other, "U51909MH2018PTC309876")
            waiting = [await _waiting(pool, first.id), await _waiting(pool, second.id)]
    reason = "V2 is switched off for this account: set ATTESTR_API_VERSION=v3"
    assert all(reason in (job.wait_reason or "") for job in waiting)
    assert len([line for line in logs if line["event"] == "attestr.paused"]) == 1
    assert await states(pool) == {"queued": 2}
    async with running_engine(pool, airtable, attestr, **v3(attestr, ATTESTR_CONSENT_ID=STANDIN_CONSENT_ID)):
        await until(await _ended(pool, first.id))
        await until(await _ended(pool, second.id))
    assert [call["version"] for call in attestr.standin.calls] == ["v3", "v3"]
    assert len(airtable.standin.records("Contacts")) == 4  # Vikram Sethi sits on both boards


async def test_the_record_of_a_lookup_outlives_forgetting_its_people(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    record_id = await _company(airtable)
    async with running_engine(
        pool, airtable, attestr, **v3(attestr, ATTESTR_CONSENT_ID=STANDIN_CONSENT_ID)
    ) as runtime:
        job, _ = await enqueued(pool, record_id, NILGIRI)
        await until(await _ended(pool, job.id))
        for din in ("07123456", "08234567", "08345678"):
            await forget(pool, runtime.airtable, {"din": din})
    assert await pool.fetchval("SELECT count(*) FROM people") == 0
    assert airtable.standin.records("Contacts") == []
    (lookup,) = await pool.fetch("SELECT job_id, cin, consent_id, called_at FROM attestr_lookups")
    assert (lookup["job_id"], lookup["cin"], lookup["consent_id"]) == (job.id, NILGIRI, STANDIN_CONSENT_ID)
