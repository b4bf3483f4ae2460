"""Every wait on the request path is bounded: a stalled database is a 503 with Retry-After, not a
request (and its connection) held for as long as the stall lasts; a database that refuses writes
(a failover to a replica) is not ready."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx

from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from tests.conftest import Running
from tests.engine.test_people_edits import NILGIRI
from tests.flow import running_flow


def test_a_stalled_database_is_a_503_with_retry_after_not_a_hang(
    tmp_path: Path, db_url: str, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    with running_flow(tmp_path, db_url, airtable, attestr, RECONCILE_INTERVAL_S="0") as flow:
        company = flow.company("Nilgiri", NILGIRI)
        # Every statement on the jobs table waits, as on a stalled server; the lock is held until
        # the answer came, so a request without a bound would never answer.
        with _jobs_locked(db_url):
            stalled = flow.webhook(company, NILGIRI)
            ready = flow.http.get("/ready")
        assert stalled.status_code == 503 and stalled.json()["error"]["code"] == "unavailable"
        assert stalled.headers["Retry-After"] == "5"
        assert ready.status_code == 200  # /ready reads no table that was locked
        accepted = flow.webhook(company, NILGIRI)
        assert accepted.status_code == 202  # nothing was stored before: the retry is the trigger
        assert flow.wait_for_job(accepted.json()["job_id"])["status"] == "succeeded"
        assert asyncio.run(_count_jobs(db_url)) == 1


@contextmanager
def _jobs_locked(db_url: str) -> Iterator[None]:
    """The jobs table locked by another session (in a thread of its own) for the body's time."""
    locked, release = threading.Event(), threading.Event()

    async def hold() -> None:
        conn = await asyncpg.connect(db_url)
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
                locked.set()
                await asyncio.to_thread(release.wait)
        finally:
            await conn.close()

    holder = threading.Thread(target=asyncio.run, args=(hold(),))
    holder.start()
    try:
        assert locked.wait(30), "the lock was not taken"
        yield
    finally:
        release.set()
        holder.join(30)


def test_a_database_that_refuses_writes_is_not_ready(
    tmp_path: Path, db_url: str, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    with running_flow(tmp_path, db_url, airtable, attestr, RECONCILE_INTERVAL_S="0") as flow:
        assert flow.http.get("/ready").status_code == 200
        asyncio.run(_read_only(db_url, True))
        try:
            refused = _until_ready_is(flow.http, 503)
            assert "accepts no writes" in refused.json()["error"]["message"]
        finally:
            asyncio.run(_read_only(db_url, False))
        _until_ready_is(flow.http, 200)


async def _read_only(db_url: str, on: bool) -> None:
    """The database turned read-only for new sessions, and the service's sessions ended, as
    after a failover to a replica (a standby cannot be made in a test's database)."""
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("SET default_transaction_read_only = off")  # this session may still write
        name = await conn.fetchval("SELECT current_database()")
        await conn.execute(
            f'ALTER DATABASE "{name}" SET default_transaction_read_only = {"on" if on else "off"}'
        )
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()


def _until_ready_is(http: httpx.Client, status: int) -> httpx.Response:
    while True:  # the first request on a terminated connection may fail; the next reconnects
        response = http.get("/ready")
        if response.status_code == status and (status == 200 or "no writes" in response.text):
            return response
        time.sleep(0.1)


async def _count_jobs(db_url: str) -> int:
    conn = await asyncpg.connect(db_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM jobs")
    finally:
        await conn.close()
