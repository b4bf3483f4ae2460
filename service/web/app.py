"""The web application: routes, and the lifespan that owns the runtime (pool, worker, pusher)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service import queries
from service.attestr import consent
from service.config import MIN_SECRET_LENGTH, Settings
from service.database import DATABASE_ERRORS, BoundedPool, bounded_pool
from service.engine.jobs import QueueCap
from service.migrations import pending_migrations
from service.triggers.runtime import Runtime
from service.web import api, metrics, openapi, ops, webhooks
from service.web.errors import EXCEPTION_HANDLERS, CatchAll, error_response
from service.web.webhooks import ScriptVersions

log = structlog.get_logger(__name__)

# Requests hold a connection only for a few statements; beyond this wait for one, or for a
# statement, the database is taken to be away and the answer is 503 with Retry-After.
REQUEST_CONNECTIONS = 10
REQUEST_DATABASE_WAIT_S = 5.0


def missing_settings(settings: Settings) -> list[str]:
    """Variables the service runs without, but cannot do its work without."""
    wanted = {
        "WEBHOOK_SECRETS": settings.webhook_secrets,
        "API_KEYS": settings.api_keys,
        "ATTESTR_API_KEY": settings.attestr_api_key,
        "AIRTABLE_API_KEY": settings.airtable_api_key,
        "AIRTABLE_BASE_ID": settings.airtable_base_id,
    }
    return [
        f"{name} (every value is shorter than {MIN_SECRET_LENGTH} characters)"
        if not value and name in settings.short_secrets
        else name
        for name, value in wanted.items()
        if not value
    ] + consent.missing(settings)  # V3: a consent, as a credential


async def health(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> JSONResponse:
    pool: BoundedPool = request.app.state.pool
    try:
        async with pool.acquire(timeout=2) as conn:
            pending = await pending_migrations(conn)
            read_only = await conn.fetchval(queries.DATABASE_READ_ONLY)
    except DATABASE_ERRORS as exc:
        return error_response(503, "unavailable", f"The database is not reachable ({type(exc).__name__})")
    if read_only:  # a failover to a replica: every webhook would be refused
        return error_response(
            503, "unavailable", "The database accepts no writes (a read-only replica?): check DATABASE_URL"
        )
    if pending:
        return error_response(503, "unavailable", f"Migrations not applied: {', '.join(pending)}")
    missing = missing_settings(request.app.state.settings)
    body: dict[str, Any] = {"status": "ready", "database": "ok", "missing_settings": missing}
    return JSONResponse(body)


ROUTES = [
    Route("/health", health),
    Route("/ready", ready),
    Route("/webhooks/airtable", webhooks.airtable_webhook, methods=["POST"]),
    Route("/webhooks/airtable/notifications", webhooks.airtable_notification, methods=["POST"]),
    Route("/companies/{record_id}/sync", api.sync_company, methods=["POST"]),
    Route("/contacts/fetch", api.contacts_fetch, methods=["POST"]),
    Route("/jobs", api.list_jobs),
    Route("/jobs/{job_id}", api.get_job),
    Route("/jobs/{job_id}/retry", api.retry_job, methods=["POST"]),
    Route("/stats", api.stats_endpoint),
    Route("/metrics", metrics.endpoint),
    Route("/openapi.json", openapi.endpoint),
    *ops.ROUTES,  # the operator's page, behind its own sign-in
]


async def _not_served(request: Request, exc: Exception) -> Response:
    """404 and 405: a page under /ops (the operator's page is read in a browser), JSON elsewhere."""
    if request.url.path == ops.PATH or request.url.path.startswith(f"{ops.PATH}/"):
        return await ops.http_error(request, exc)
    return await EXCEPTION_HANDLERS[HTTPException](request, exc)


def create_app(settings: Settings, database_url: str) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = await Runtime.open(settings, database_url)
        requests = await bounded_pool(
            database_url, max_size=REQUEST_CONNECTIONS, wait_s=REQUEST_DATABASE_WAIT_S
        )
        app.state.settings = settings
        app.state.pool = requests
        app.state.wake_worker = runtime.jobs_stored
        app.state.queue_cap = QueueCap(requests, settings.queue_max_jobs)
        app.state.script_versions = ScriptVersions(requests)
        app.state.wake_reader = runtime.reader.wake if settings.worker_in_web else (lambda: None)
        await ops.end_removed_keys(requests, settings.api_keys)
        runtime.start_notifier()
        if settings.worker_in_web:
            runtime.start_background()

        if missing := missing_settings(settings):
            log.warning("service.not_configured", missing=missing)
        log.info("service.started", port=settings.port, worker_in_web=settings.worker_in_web)
        try:
            yield
        finally:
            await requests.close()
            await runtime.close()

    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers={**EXCEPTION_HANDLERS, HTTPException: _not_served},
        middleware=[Middleware(CatchAll)],
    )
    # No redirect from `/webhooks/airtable/` to `/webhooks/airtable`: Starlette builds its Location
    # from the Host header the caller sent, and the automation script would not follow it anyway.
    app.router.redirect_slashes = False
    # Whether the server is stopping (`contact-sync serve` sets it): a request waiting for its job
    # answers at once, as a job still running, rather than hold the stop for its whole wait.
    app.state.stopping = lambda: False
    return app
