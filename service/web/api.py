"""The manual endpoints, behind `X-API-Key`: re-trigger a company, the older `/contacts/fetch`,
and the jobs."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse

from service import queries
from service.database import DATABASE_ERRORS
from service.engine import jobs, stats
from service.engine.jobs import Job
from service.web import limits, validation
from service.web.auth import require_api_key
from service.web.errors import ApiError, database_away

FETCH_WAIT_S = 25  # under the 30 s after which proxies commonly cut a request


async def _authorized(request: Request) -> None:
    """A known API key, within its rate (429 `rate_limited` beyond it)."""
    settings = request.app.state.settings
    key = require_api_key(request, settings.api_keys)
    await limits.take_api_request(request.app.state.pool, key, settings)


async def _authorized_json(request: Request, *, optional: bool) -> dict[str, Any]:
    body = await validation.read_body(request)
    await _authorized(request)
    return validation.parse_json(body, optional=optional)


async def _enqueue(request: Request, record_id: str, cin: str | None, **options: Any) -> tuple[Job, bool]:
    pool = request.app.state.pool
    await limits.check_queue(request.app.state.queue_cap)
    try:
        job_id, deduplicated = await jobs.enqueue(pool, record_id, cin, **options)
        job = await jobs.get(pool, job_id)
    except DATABASE_ERRORS:
        raise database_away("The job could not be stored; try again shortly") from None
    request.app.state.wake_worker()
    assert job is not None  # stored just now; jobs are only deleted long after they end
    return job, deduplicated


async def _wait_for(request: Request, job: Job, seconds: float) -> Job:
    """The job once it has ended, or as it is when `seconds` have passed or the server stops."""
    pool, stopping = request.app.state.pool, request.app.state.stopping
    deadline = time.monotonic() + seconds
    while not job.finished and time.monotonic() < deadline and not stopping():
        await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        job = await jobs.get(pool, job.id) or job
    return job


async def sync_company(request: Request) -> JSONResponse:
    """`POST /companies/{record_id}/sync[?wait=s]`: sync one company now."""
    payload = await _authorized_json(request, optional=True)
    record_id = validation.record_id(request.path_params["record_id"])
    wait = validation.integer(request.query_params.get("wait"), "wait", 0, 60, default=0) or 0
    cin = validation.cin(payload.get("cin"))
    force = validation.boolean(payload.get("force"), "force")
    max_contacts = validation.integer(payload.get("max_contacts"), "max_contacts", 1, 100)
    job, deduplicated = await _enqueue(
        request, record_id, cin, force=force, max_contacts=max_contacts, source="manual"
    )
    job = await _wait_for(request, job, wait)
    return JSONResponse(
        {**job.document(), "deduplicated": deduplicated}, status_code=200 if job.finished else 202
    )


async def contacts_fetch(request: Request) -> JSONResponse:
    """`POST /contacts/fetch`: the older API, kept for existing callers; waits up to 25 s."""
    payload = await _authorized_json(request, optional=False)
    cin = validation.cin(payload.get("cin"), required=True)
    record_id = validation.record_id(payload.get("company_airtable_id"), "company_airtable_id")
    max_contacts = validation.integer(payload.get("max_contacts"), "max_contacts", 1, 100)
    force = validation.boolean(payload.get("force_refresh"), "force_refresh")
    job, _ = await _enqueue(
        request, record_id, cin, force=force, max_contacts=max_contacts, source="contacts_fetch"
    )
    job = await _wait_for(request, job, FETCH_WAIT_S)
    if not job.finished:
        return JSONResponse(
            {
                "success": False,
                "job_id": str(job.id),
                "cin": cin,
                "message": f"Still fetching after {FETCH_WAIT_S} s; follow the job at GET /jobs/{job.id}",
            },
            status_code=202,
        )
    result = job.result or {}
    rows = await request.app.state.pool.fetch(queries.PEOPLE_BY_IDS, job.person_ids)
    return JSONResponse(
        {
            "success": job.status == "succeeded",
            "message": _fetch_message(job, rows),
            "job_id": str(job.id),
            "cin": job.cin or cin,
            "business_name": result.get("business_name"),
            "total_contacts_fetched": int(result.get("contacts_fetched", 0)),
            "new_contacts": int(result.get("contacts_new", 0)),
            "updated_contacts": int(result.get("contacts_updated", 0)),
            "synced_to_airtable": int(result.get("airtable_created", 0))
            + int(result.get("airtable_updated", 0)),
            "failed_syncs": int(result.get("airtable_failed", 0)),
            "contacts": [
                {
                    "indexId": row["din"],
                    "fullName": row["name"],
                    "mobileNumber": row["phone_e164"],
                    "emailAddress": row["email"],
                    "addresses": json.loads(row["addresses"]),
                }
                for row in rows
            ],
        }
    )


def _fetch_message(job: Job, people: list[asyncpg.Record]) -> str:
    """What the older API's job did, in numbers that agree with the answer's counts and list
    (`people`: the contacts listed)."""
    result = job.result or {}
    if job.status == "failed":
        return job.last_error or "The sync failed"
    if result.get("outcome") == "no_data":
        return "Attestr has no contacts for this CIN"
    fetched, suppressed = result.get("contacts_fetched", 0), result.get("contacts_suppressed", 0)
    created, updated = result.get("airtable_created", 0), result.get("airtable_updated", 0)
    deleted = sum(1 for person in people if person["deleted_in_airtable"])
    unchanged = max(len(people) - created - updated - deleted, 0)
    said = [f"Fetched {fetched} contact(s) from Attestr"]
    if suppressed:
        said.append(f"{suppressed} left out (forgotten with `contact-sync contacts forget`)")
    if note := jobs.left_out_note(result.get("contacts_left_out", 0)):
        said.append(note)
    if len(people) != fetched - suppressed:
        said.append(f"{len(people)} people once the same person listed twice is counted once")
    said.append(
        f"{result.get('contacts_new', 0)} new and {result.get('contacts_updated', 0)} changed in "
        "PostgreSQL (new_contacts, updated_contacts)"
    )
    said.append(
        f"in Airtable {created} row(s) created and {updated} updated (synced_to_airtable), "
        f"{unchanged} already up to date"
        + (f", {deleted} deleted there by hand and not written again" if deleted else "")
    )
    return "; ".join(said)


def _job_id(request: Request) -> int:
    job_id = validation.whole_number(request.path_params["job_id"])
    if job_id is None:
        raise ApiError(404, "not_found", f"No job {request.path_params['job_id'][:40]!r}")
    return job_id


async def get_job(request: Request) -> JSONResponse:
    await _authorized(request)
    job_id = _job_id(request)
    job = await jobs.get(request.app.state.pool, job_id)
    if job is None:
        raise ApiError(404, "not_found", f"No job {job_id}")
    return JSONResponse(job.document())


async def list_jobs(request: Request) -> JSONResponse:
    await _authorized(request)
    status = request.query_params.get("status") or None
    if status is not None and status not in jobs.STATES:
        raise ApiError(
            422, "invalid_field", f"status must be one of {', '.join(jobs.STATES)}", field="status"
        )
    limit = validation.integer(request.query_params.get("limit"), "limit", 1, 500, default=100) or 100
    found = await jobs.list_jobs(request.app.state.pool, status, limit)
    return JSONResponse({"jobs": [job.document() for job in found]})


async def retry_job(request: Request) -> JSONResponse:
    """`POST /jobs/{id}/retry`: replay a failed job."""
    await _authorized_json(request, optional=True)
    try:
        job, deduplicated = await jobs.retry(request.app.state.pool, _job_id(request))
    except jobs.JobNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except jobs.JobNotRetryable as exc:
        raise ApiError(409, "invalid_state", str(exc)) from None
    request.app.state.wake_worker()
    return JSONResponse({**job.document(), "deduplicated": deduplicated}, status_code=202)


async def stats_endpoint(request: Request) -> JSONResponse:
    """`GET /stats`: jobs by state, queue age, Attestr paused or not, rows waiting for Airtable."""
    await _authorized(request)
    return JSONResponse(await stats.collect(request.app.state.pool, request.app.state.settings))
