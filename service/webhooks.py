"""`POST /webhooks/airtable`: what the Airtable automation calls when a company's CIN is set.

Verify, validate, store the job, answer 202: the slow work happens in the worker. Checks run in
the design's order (size, secret, JSON, fields) and every refusal names its reason; a job that
could not be stored is a 503, never a 202.
"""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse

from . import jobs, validation
from .auth import require_webhook_secret
from .database import DATABASE_ERRORS
from .errors import ApiError

log = structlog.get_logger(__name__)


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
    except ApiError as error:
        log.warning("webhook.rejected", code=error.code, field=error.field, status=error.status)
        raise
    try:
        job, deduplicated = await jobs.enqueue(request.app.state.pool, record_id, cin, force=refresh)

    except DATABASE_ERRORS as exc:
        log.error(
            "webhook.rejected", code="unavailable", status=503, error=type(exc).__name__, record_id=record_id
        )
        raise ApiError(503, "unavailable", "The job could not be stored; try again shortly") from None
    log.info("webhook.accepted", job_id=str(job.id), record_id=record_id, cin=cin, deduplicated=deduplicated)
    request.app.state.wake_worker()
    return JSONResponse(
        {"job_id": str(job.id), "status": "queued", "deduplicated": deduplicated}, status_code=202
    )
