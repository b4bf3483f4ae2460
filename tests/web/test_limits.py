"""Limits that lose nothing, through HTTP against a real service: a rate per API key (429 with
Retry-After, released after the window) and a cap on the queue (429, nothing stored)."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from structlog.testing import capture_logs

from service.airtable.client import Airtable
from service.engine import jobs
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from service.triggers.payloads import PayloadReader
from tests.conftest import Running, run_service
from tests.flow import API_KEY, SECRET, settings_for

KEY = {"X-API-Key": API_KEY}
OTHER = {"X-API-Key": "a-second-key-for-tests"}
HOOK = {"X-Webhook-Secret": SECRET}


def _env(db_url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": db_url,
        "WEBHOOK_SECRETS": SECRET,
        "API_KEYS": f"{API_KEY},{OTHER['X-API-Key']}",
        "WORKER_IN_WEB": "false",
        **extra,
    }


@pytest.mark.process
def test_an_api_key_over_its_rate_gets_429_until_the_window_passes(tmp_path: Path, db_url: str) -> None:
    with run_service(tmp_path, _env(db_url, API_RATE_LIMIT="3", API_RATE_WINDOW_S="2")) as service:
        http = httpx.Client(base_url=service.url, timeout=10)
        # Start at the beginning of a window, so that the three fit in it.
        time.sleep(2 - time.time() % 2 + 0.05)
        assert [http.get("/jobs", headers=KEY).status_code for _ in range(3)] == [200, 200, 200]
        refused = http.post("/companies/recAAAAAAAAAAAAAA/sync", headers=KEY)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 2
        assert http.get("/jobs?status=queued", headers=OTHER).json()["jobs"] == []  # nothing queued
        assert http.get("/stats", headers=OTHER).status_code == 200  # another key has its own count
        assert http.get("/jobs", headers={"X-API-Key": "wrong"}).status_code == 401  # not counted
        time.sleep(int(refused.headers["Retry-After"]))
        assert http.post("/companies/recAAAAAAAAAAAAAA/sync", headers=KEY).status_code == 202
    assert API_KEY not in service.log_path.read_text()  # the key is never written anywhere


@pytest.mark.process
def test_a_full_queue_refuses_new_work_and_stores_nothing(tmp_path: Path, db_url: str) -> None:
    with run_service(tmp_path, _env(db_url, QUEUE_MAX_JOBS="3")) as service:
        http = httpx.Client(base_url=service.url, timeout=10)
        records = [f"rec{n:014d}" for n in range(4)]
        accepted = [http.post("/webhooks/airtable", json={"record_id": r}, headers=HOOK) for r in records[:3]]
        assert [r.status_code for r in accepted] == [202, 202, 202]
        time.sleep(1.1)  # the web process recounts the queue at most once a second
        full = http.post("/webhooks/airtable", json={"record_id": records[3]}, headers=HOOK)
        assert full.status_code == 429
        assert full.json()["error"]["code"] == "rate_limited"
        assert "queue is full" in full.json()["error"]["message"]
        assert full.headers["Retry-After"] == "60"
        manual = http.post(f"/companies/{records[3]}/sync", headers=KEY)
        assert manual.status_code == 429
        queued = http.get("/jobs?status=queued", headers=KEY).json()["jobs"]
        assert sorted(j["record_id"] for j in queued) == records[:3]
        rejected = [line for line in service.logs() if line.get("event") == "webhook.rejected"]
        assert rejected and rejected[-1]["code"] == "rate_limited"


@pytest.mark.process
def test_one_company_never_holds_more_than_one_queued_job(tmp_path: Path, db_url: str) -> None:
    with run_service(tmp_path, _env(db_url)) as service:
        http = httpx.Client(base_url=service.url, timeout=10)
        answers = [
            http.post("/webhooks/airtable", json={"record_id": "recAAAAAAAAAAAAAA"}, headers=HOOK).json()
            for _ in range(20)
        ]
        assert len({a["job_id"] for a in answers}) == 1
        assert [a["deduplicated"] for a in answers] == [False] + [True] * 19
        assert len(http.get("/jobs", headers=KEY).json()["jobs"]) == 1


async def test_a_full_queue_leaves_native_webhook_changes_in_airtable(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    settings = settings_for(airtable, attestr, QUEUE_MAX_JOBS="1")
    reader = PayloadReader(pool, Airtable(settings, pool))
    await jobs.enqueue(pool, "recAAAAAAAAAAAAAA", None)
    with capture_logs() as logs:
        assert await reader.read_all() == 0
    assert [line["event"] for line in logs] == ["webhook.read_deferred"]
    assert airtable.standin.requests == []  # not even the payloads were asked for
