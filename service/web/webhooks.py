"""`POST /webhooks/airtable`: what the Airtable automation calls when a company's CIN is set.

Verify, validate, store the job, answer 202: the slow work happens in the worker. Checks run in
the design's order (size, secret, JSON, fields) and every refusal names its reason; a job that
could not be stored is a 503, never a 202.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time

import asyncpg
import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service import metrics, queries
from service.airtable import webhooks as airtable_webhooks
from service.database import DATABASE_ERRORS
from service.engine import jobs
from service.web import limits, validation
from service.web.auth import require_webhook_secret
from service.web.errors import ApiError, database_away

log = structlog.get_logger(__name__)

# airtable/automation.js's SCRIPT_VERSION: automations still running an older script are logged
# (`webhook.script_outdated`) and named by `contact-sync doctor`.
SCRIPT_VERSION = "2"
_SCRIPT_HEADER = "x-contact-sync-script"
_SEEN_EVERY_S = 60.0


def is_outdated(version: str) -> bool:
    """Older than this service's script ("" : sent no version, from before version 2); a newer
    one is not outdated (the service is older than the script)."""
    return not version or int(version) < int(SCRIPT_VERSION)


class ScriptVersions:
    """Which versions of the automation script call the service: stored (and an older one
    logged) at most once a minute per version and process, so a burst of webhooks costs nothing.
    A call without the header counts as version "" (a script before version 2, or another client)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._seen: dict[str, float] = {}

    async def seen(self, header: str | None) -> None:
        version = (header or "").strip()
        version = version if validation.whole_number(version) is not None else ""
        now = time.monotonic()
        if now - self._seen.get(version, float("-inf")) < _SEEN_EVERY_S:
            return
        self._seen[version] = now
        if is_outdated(version):
            log.warning("webhook.script_outdated", version=version or None, current=SCRIPT_VERSION)
        with contextlib.suppress(*DATABASE_ERRORS):
            await self.pool.execute(queries.AUTOMATION_SCRIPT_SEEN, version)


async def airtable_webhook(request: Request) -> JSONResponse:
    try:
        body = await validation.read_body(request)
        require_webhook_secret(request, request.app.state.settings.webhook_secrets)
        payload = validation.parse_json(body)
        record_id = validation.record_id(
            payload.get("record_id", payload.get("recordId")),
            "record_id" if "record_id" in payload or "recordId" not in payload else "recordId",
        )
        cin = validation.cin(payload.get("cin"))
        # Sent when a person ticks Refresh Contacts: fetch again even if a recent answer is stored.
        refresh = validation.boolean(payload.get("refresh"), "refresh")
        request_key = validation.request_key(request.headers.get("x-request-id"))
    except ApiError as error:
        log.warning("webhook.rejected", code=error.code, field=error.field, status=error.status)
        metrics.WEBHOOKS.labels(error.code).inc()
        raise
    try:
        await limits.check_queue(request.app.state.queue_cap)
        if request_key is None:
            job_id, deduplicated = await jobs.enqueue(request.app.state.pool, record_id, cin, force=refresh)
        else:
            job_id, deduplicated = await _enqueue_once(
                request.app.state.pool, request_key, record_id, cin, refresh
            )
    except ApiError as error:  # the queue is full: nothing stored, the automation run shows it
        log.warning("webhook.rejected", code=error.code, status=error.status, record_id=record_id)
        metrics.WEBHOOKS.labels(error.code).inc()
        raise
    except asyncpg.DataError:  # the input itself, not an outage: asking again would not help
        metrics.WEBHOOKS.labels("invalid_field").inc()
        raise ApiError(422, "invalid_field", "The request holds text the database cannot store") from None
    except DATABASE_ERRORS as exc:
        log.error(
            "webhook.rejected", code="unavailable", status=503, error=type(exc).__name__, record_id=record_id
        )
        metrics.WEBHOOKS.labels("unavailable").inc()

        raise database_away("The job could not be stored; try again shortly") from None
    log.info("webhook.accepted", job_id=str(job_id), record_id=record_id, cin=cin, deduplicated=deduplicated)
    await request.app.state.script_versions.seen(request.headers.get(_SCRIPT_HEADER))
    (metrics.WEBHOOKS_DEDUPLICATED if deduplicated else metrics.WEBHOOKS_ACCEPTED).inc()
    request.app.state.wake_worker()
    return JSONResponse(
        {"job_id": str(job_id), "status": "queued", "deduplicated": deduplicated}, status_code=202
    )


async def _enqueue_once(
    pool: asyncpg.Pool, key: str, record_id: str, cin: str | None, refresh: bool
) -> tuple[int, bool]:
    """Enqueue, unless a request with this X-Request-Id (a retry of the same automation run)
    stored a job already: then that job, as deduplicated. The id is bound to what was asked: the
    same id with another record, CIN or refresh is refused (422), not given the first one's job."""
    asked = hashlib.sha256(json.dumps([record_id, cin, refresh]).encode()).hexdigest()
    async with pool.acquire() as conn, conn.transaction():
        stored = await conn.fetchrow(queries.WEBHOOK_REQUEST_JOB, key)
        if stored is not None:
            if stored["asked"] not in (None, asked):
                raise ApiError(
                    422,
                    "invalid_field",
                    "X-Request-Id was already used for another request (another record, CIN or refresh): "
                    "send a new id for a new request",
                    "X-Request-Id",
                )
            return stored["job_id"], True
        job_id, deduplicated = await jobs.enqueue(conn, record_id, cin, force=refresh)
        await conn.execute(queries.WEBHOOK_REQUEST_RECORD, key, job_id, asked)
        return job_id, deduplicated


async def airtable_notification(request: Request) -> Response:
    """`POST /webhooks/airtable/notifications`: Airtable's ping for a native webhook. Verified and
    answered at once, 204 with an empty body ("Webhooks overview": "The recipient of this request
    should respond with an HTTP 200 or 204 status code and an empty response body"); the payloads
    are read by the payload reader. A repeated ping is harmless."""
    pool = request.app.state.pool
    try:
        body = await validation.read_body(request)
        try:
            hooks = await pool.fetch(queries.WEBHOOKS_ALL)
        except DATABASE_ERRORS:
            raise database_away("The service cannot reach its database; Airtable will ping again") from None
        if not hooks:
            raise ApiError(
                503,
                "not_configured",
                "No Airtable webhook is registered: run `contact-sync airtable webhook create`",
            )
        if not airtable_webhooks.verify(
            [h["mac_secret"] for h in hooks], body, request.headers.get("x-airtable-content-mac")
        ):
            raise ApiError(401, "unauthorized", "Missing or wrong X-Airtable-Content-MAC")
        validation.parse_json(body)
    except ApiError as error:
        log.warning("webhook.rejected", code=error.code, status=error.status, source="airtable_webhook")
        raise
    request.app.state.wake_reader()
    with contextlib.suppress(*DATABASE_ERRORS):
        await pool.execute(queries.NOTIFY_PAYLOADS)  # readers in other processes
    return Response(status_code=204)
