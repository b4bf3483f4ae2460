"""What only the operator (or Attestr) can mend pauses the work, end to end through both
stand-ins: ATTESTR_API_URL at a path that answers 404, and Attestr answering 40051 ("This
endpoint does not support the provided version.", https://docs.attestr.com/attestr-docs/delete-media-apin80)
to every lookup. Several companies are queued each time: no job fails; each company shows
Waiting, in PostgreSQL and in Airtable, with a reason that says what to check; while it lasts at
most one refused request goes out per ATTESTR_PROBE_INTERVAL_S, and none counts against the day's
calls; once it is mended every company syncs (by the next probe, by a restart with the right
settings, or by `resume`)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import asyncpg
import pytest
from structlog.testing import capture_logs

from service.engine import jobs
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import PATH, PATH_V3, STANDIN_CONSENT_ID, AttestrStandIn
from tests.conftest import Running
from tests.engine.test_engine import FAST, many_companies, states, until
from tests.flow import running_engine

INTERVAL_S = 1.0  # ATTESTR_PROBE_INTERVAL_S while the refusals are counted
N = 4  # companies queued


async def _enqueue_all(pool: asyncpg.Pool, companies: list[tuple[str, str]]) -> None:
    for record_id, cin in companies:
        await jobs.enqueue(pool, record_id, cin)


async def _waiting_in_postgresql(pool: asyncpg.Pool, companies: list[tuple[str, str]], *words: str) -> None:
    """Every job waits on Attestr, none failed, and every company shows Waiting with a reason
    holding each of `words` in PostgreSQL (`companies.sync_status`, `sync_error`)."""
    record_ids = [record_id for record_id, _cin in companies]

    async def waiting() -> bool:
        count = await pool.fetchval(
            "SELECT count(*) FROM jobs WHERE status = 'queued' AND waiting_on = 'attestr'"
        )
        return count == len(companies)

    await until(waiting)
    assert "failed" not in await states(pool)

    # At each probe every waiting job wakes and its company shows Running for a moment.
    async def all_waiting() -> bool:
        rows = await pool.fetch(
            "SELECT sync_status, sync_error FROM companies WHERE airtable_id = ANY($1)", record_ids
        )
        return len(rows) == len(companies) and all(
            row["sync_status"] == "Waiting" and all(w in row["sync_error"] for w in words) for row in rows
        )

    await until(all_waiting)


async def _waiting_in_airtable(
    airtable: Running[AirtableStandIn], companies: list[tuple[str, str]], *words: str
) -> None:
    """Airtable's Companies records show Waiting, and the reason in Contacts Sync Error. The
    pusher sends a passing status once it has held a moment (2 s): with probes further apart
    than that, which is why the tests look here under a longer ATTESTR_PROBE_INTERVAL_S."""
    record_ids = {record_id for record_id, _cin in companies}

    async def all_shown() -> bool:
        shown = [r["fields"] for r in airtable.standin.records("Companies") if r["id"] in record_ids]
        return len(shown) == len(record_ids) and all(
            f.get("Contacts Sync Status") == "Waiting"
            and all(w in (f.get("Contacts Sync Error") or "") for w in words)
            for f in shown
        )

    await until(all_shown)


async def _spaced_by_the_interval(times: Callable[[], list[float]]) -> None:
    """Once every job waits, only probes go out: wait for three more refused requests (two
    intervals between them) and check that no two came within a probe interval of each other."""
    before = len(times())

    async def three_more() -> bool:
        return len(times()) >= before + 3

    await until(three_more, timeout=60)
    probes = times()[before:]
    gaps = [later - earlier for earlier, later in pairwise(probes)]
    assert all(gap >= 0.9 * INTERVAL_S for gap in gaps), gaps


async def _synced(pool: asyncpg.Pool, airtable: Running[AirtableStandIn], n: int) -> None:
    """Every job succeeded and Airtable shows every company Synced, with its two directors."""

    async def all_synced() -> bool:
        return await states(pool) == {"succeeded": n} and all(
            r["fields"].get("Contacts Sync Status") == "Synced" for r in airtable.standin.records("Companies")
        )

    await until(all_synced)
    assert len(airtable.standin.records("Contacts")) == 2 * n


async def _refusals_uncounted(pool: asyncpg.Pool, paid: int) -> None:
    """Only the `paid` answers count against the day (ATTESTR_DAILY_CALL_LIMIT's counter and
    `calls_today`), however many requests were refused; each refusal is kept as an error."""
    assert await pool.fetchval("SELECT calls_today FROM attestr_state") == paid
    assert await pool.fetchval("SELECT count(*) FROM attestr_answers WHERE outcome = 'synced'") == paid


async def test_a_wrong_address_waits_for_the_operator_and_a_restart_with_the_right_one_resumes_at_once(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    companies = many_companies(airtable, attestr, N)
    wrong = {**FAST, "ATTESTR_API_URL": attestr.url + PATH + "s"}  # a typo: nothing there but 404
    says = ("HTTP 404", "check ATTESTR_API_URL", "then restart the service")
    async with running_engine(
        pool, airtable, attestr, **wrong, ATTESTR_PROBE_INTERVAL_S=str(INTERVAL_S)
    ) as runtime:
        await _enqueue_all(pool, companies)
        await _waiting_in_postgresql(pool, companies, *says)
        await _spaced_by_the_interval(lambda: [r["at"] for r in attestr.standin.not_served])
        state = await runtime.syncer.gate.state()
    assert state["paused"] and "check ATTESTR_API_URL" in state["reason"] and state["calls_today"] == 0
    await _refusals_uncounted(pool, 0)
    assert attestr.standin.calls == []

    # Restarted with the same wrong address (probing hourly, so that Airtable is shown a status
    # that holds): the pause goes on, the companies show it in Airtable.
    async with running_engine(pool, airtable, attestr, **wrong, ATTESTR_PROBE_INTERVAL_S="3600") as runtime:
        await _waiting_in_postgresql(pool, companies, *says)
        await _waiting_in_airtable(airtable, companies, *says)
        assert (await runtime.syncer.gate.state())["paused"]
    refused = len(attestr.standin.not_served)
    assert refused == await pool.fetchval("SELECT count(*) FROM attestr_answers WHERE http_status = 404")

    # The operator sets the right address and restarts: the pause ends before any job runs.
    with capture_logs() as logs:
        async with running_engine(
            pool, airtable, attestr, **FAST, ATTESTR_PROBE_INTERVAL_S="3600"
        ) as runtime:
            await _synced(pool, airtable, N)
            state = await runtime.syncer.gate.state()
    resumed = [line for line in logs if line["event"] == "attestr.resumed"]
    assert resumed[0]["reason"] == "the settings changed" and resumed[0]["jobs_woken"] == N, resumed
    assert not state["paused"]
    assert len(attestr.standin.calls) == N and len(attestr.standin.not_served) == refused  # one call each
    await _refusals_uncounted(pool, N)


async def test_an_address_answering_404_until_mended_at_attestr_resumes_at_once_on_resume(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """The address is right but answers 404 for a while (mended on Attestr's side, not in the
    settings): `resume` ends the pause at once. The probe is an hour away, so only it can."""
    companies = many_companies(airtable, attestr, N)
    attestr.standin.unserved_paths.add(PATH)
    async with running_engine(pool, airtable, attestr, **FAST, ATTESTR_PROBE_INTERVAL_S="3600") as runtime:
        await _enqueue_all(pool, companies)
        await _waiting_in_postgresql(pool, companies, "HTTP 404", "check ATTESTR_API_URL")
        await _waiting_in_airtable(airtable, companies, "HTTP 404", "check ATTESTR_API_URL")
        refused = len(attestr.standin.not_served)
        assert 1 <= refused <= N  # the calls already under way when the pause began, no more
        attestr.standin.unserved_paths.clear()
        assert await runtime.syncer.gate.resume("the address is served again") == N
        await _synced(pool, airtable, N)
    assert len(attestr.standin.calls) == N and len(attestr.standin.not_served) == refused
    await _refusals_uncounted(pool, N)


@pytest.mark.parametrize(
    ("version", "says"),
    [
        ("v2", ["V2 is switched off for this account: set ATTESTR_API_VERSION=v3"]),
        ("v3", ["API version v3", "check ATTESTR_API_URL and ATTESTR_API_VERSION"]),
    ],
)
async def test_40051_to_every_lookup_waits_probing_once_an_interval_and_the_next_probe_resumes_all(
    pool: asyncpg.Pool,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    version: str,
    says: list[str],
) -> None:
    companies = many_companies(airtable, attestr, N)
    attestr.standin.persistent_failure = 40051  # every lookup, until cleared
    env = dict(FAST)
    if version == "v3":
        env |= {
            "ATTESTR_API_VERSION": "v3",
            "ATTESTR_API_URL": attestr.url + PATH_V3,
            "ATTESTR_CONSENT_ID": STANDIN_CONSENT_ID,
        }
    says = [*says, "code 40051", "then restart the service"]
    with capture_logs() as logs:
        async with running_engine(
            pool, airtable, attestr, **env, ATTESTR_PROBE_INTERVAL_S=str(INTERVAL_S)
        ) as runtime:
            await _enqueue_all(pool, companies)
            await _waiting_in_postgresql(pool, companies, *says)
            await _spaced_by_the_interval(lambda: [call["at"] for call in attestr.standin.calls])
            state = await runtime.syncer.gate.state()
        assert state["paused"] and state["code"] == "40051" and state["calls_today"] == 0
        await _refusals_uncounted(pool, 0)

        # Restarted with the same settings, probing every 5 s (Airtable is shown a status that
        # holds 2 s): the pause goes on until Attestr mends it; then the next probe resumes all.
        async with running_engine(pool, airtable, attestr, **env, ATTESTR_PROBE_INTERVAL_S="5") as runtime:
            await _waiting_in_airtable(airtable, companies, *says)
            assert (await runtime.syncer.gate.state())["paused"]
            attestr.standin.persistent_failure = None  # mended at Attestr: no command, no restart
            await _synced(pool, airtable, N)
            assert not (await runtime.syncer.gate.state())["paused"]
    resumed = [line for line in logs if line["event"] == "attestr.resumed"]
    assert [line["reason"] for line in resumed] == ["the probe call succeeded"]
    refused = await pool.fetchval("SELECT count(*) FROM attestr_answers WHERE error_code = '40051'")
    assert len(attestr.standin.calls) == refused + N  # after the probe, one call per company
    await _refusals_uncounted(pool, N)
