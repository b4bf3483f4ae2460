"""The whole flow for end-to-end tests: `contact-sync serve` as a child process, with its worker
and pusher, talking HTTP to the Attestr and Airtable stand-ins running in the test process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from service.config import Settings, load_settings
from service.engine import jobs
from service.engine.jobs import Job
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import PATH, AttestrStandIn
from service.triggers.runtime import Runtime
from tests.conftest import Running, Service
from tests.service_thread import service_in_thread

SECRET = "webhook-secret-for-tests"
API_KEY = "api-key-for-tests"


@dataclass
class Flow:
    service: Service
    airtable: AirtableStandIn
    attestr: AttestrStandIn
    http: httpx.Client
    service_env: dict[str, str]

    def company(self, name: str, cin: str | None = None) -> str:
        """A company record, as a person creates it in Airtable."""
        fields = {"Company Name": name} if cin is None else {"Company Name": name, "CIN": cin}
        return self.airtable.add_record("Companies", fields)

    def webhook(self, record_id: str, cin: str | None = None, **extra: Any) -> httpx.Response:
        """The automation's webhook for `record_id`. A CIN sent for a record whose CIN cell is
        empty is typed into it first, as the person whose typing fired the automation did: the
        worker reads the record before paying for its CIN."""
        body: dict[str, Any] = {"record_id": record_id, **extra}
        if cin is not None:
            body["cin"] = cin
            self._typed(record_id, cin)
        return self.http.post("/webhooks/airtable", json=body, headers={"X-Webhook-Secret": SECRET})

    def _typed(self, record_id: str, cin: str) -> None:
        record = next((r for r in self.airtable.records("Companies") if r["id"] == record_id), None)
        if record is not None and not record["fields"].get("CIN"):
            self.airtable.edit("Companies", {record_id: {"CIN": cin}})

    def job(self, job_id: str) -> dict[str, Any]:
        """The job, as a well-behaved client reads it: after a 429, once its Retry-After passed."""
        while True:
            response = self.http.get(f"/jobs/{job_id}", headers={"X-API-Key": API_KEY})
            if response.status_code != 429:
                return response.json()
            time.sleep(float(response.headers["Retry-After"]))

    def wait_for_job(self, job_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] in ("succeeded", "failed"):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} did not end: {job}")
            time.sleep(0.1)

    def wait_until(self, predicate: Any, timeout: float = 30, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}: {[c.get('Name') for c in self.contacts()]}"
                )
            time.sleep(0.1)

    def contacts(self) -> list[dict[str, Any]]:
        return [r["fields"] | {"id": r["id"]} for r in self.airtable.records("Contacts")]

    def company_fields(self, record_id: str) -> dict[str, Any]:
        return next(r["fields"] for r in self.airtable.records("Companies") if r["id"] == record_id)

    def contact_writes(self) -> list[int]:
        """Records per write request to the Contacts table, in order."""
        return [r["records"] for r in self.airtable.write_requests() if r["path"].endswith("/Contacts")]


def service_env(
    db_url: str, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> dict[str, str]:
    return {
        "DATABASE_URL": db_url,
        "WEBHOOK_SECRETS": f"an-older-webhook-secret,{SECRET}",
        "API_KEYS": API_KEY,
        "ATTESTR_API_KEY": attestr.standin.token,
        "ATTESTR_API_URL": attestr.url + PATH,
        "AIRTABLE_API_KEY": airtable.standin.token,
        "AIRTABLE_BASE_ID": airtable.standin.base_id,
        "AIRTABLE_API_URL": airtable.url,
        "AIRTABLE_COOLDOWN_S": "1",
        "LOG_LEVEL": "info",
    }


@contextmanager
def running_flow(
    tmp_path: Path,
    db_url: str,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    **env: str,
) -> Iterator[Flow]:
    with (
        service_in_thread(tmp_path, {**service_env(db_url, airtable, attestr), **env}) as service,
        httpx.Client(base_url=service.url, timeout=60) as http,
    ):
        if env.get("RECONCILE_INTERVAL_S", "900") != "0":
            # The start-up sweep sets the baseline first: a company the test then creates with
            # its CIN is the test's to trigger, not also the sweep's.
            deadline = time.monotonic() + 30
            while not any(line["event"] == "reconcile.finished" for line in service.logs()):
                assert time.monotonic() < deadline, "the start-up sweep did not finish"
                time.sleep(0.05)
        yield Flow(
            service,
            airtable.standin,
            attestr.standin,
            http,
            {**service_env(db_url, airtable, attestr), **env},
        )


def settings_for(
    airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn], **env: str
) -> Settings:
    """Settings pointing at the stand-ins, for a runtime inside the test process."""
    return load_settings({**service_env("", airtable, attestr), **env}, env_file=None)


@asynccontextmanager
async def running_engine(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn], **env: str
) -> AsyncIterator[Runtime]:
    """The worker and the pusher inside the test process, on the test's database, polling fast."""
    runtime = Runtime(settings_for(airtable, attestr, **{"JOB_RETRY_BASE_S": "0.05", **env}), pool)
    runtime.worker.poll_s = 0.05
    runtime.pusher.poll_s = 0.05
    runtime.start_background()
    try:
        yield runtime
    finally:
        runtime.stop()
        await asyncio.wait_for(runtime.wait(), 30)
        await runtime.attestr.aclose()


async def enqueued(pool: asyncpg.Pool, record_id: str, cin: str | None, **options: Any) -> tuple[Job, bool]:
    """`jobs.enqueue`, then the stored job as a whole."""
    job_id, deduplicated = await jobs.enqueue(pool, record_id, cin, **options)
    job = await jobs.get(pool, job_id)
    assert job is not None
    return job, deduplicated
