"""The operator's page, `/ops`: what the jobs did, one company's story, spend and health, and
the few actions an operator takes (retry, sync now, pause and resume Attestr). Server-rendered
HTML with no script, behind a sign-in with one of API_KEYS (`session.py`)."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route, Router

from service.web.ops import actions, pages
from service.web.ops.rendering import SecurityHeaders, http_error
from service.web.ops.session import PATH, end_removed_keys

__all__ = ["PATH", "ROUTES", "end_removed_keys", "http_error"]

ROUTES = [
    Route(PATH, lambda _request: RedirectResponse(f"{PATH}/", status_code=307)),
    Mount(
        PATH,
        # No trailing-slash redirect here either: Starlette builds its Location from the Host header.
        app=Router(
            redirect_slashes=False,
            routes=[
                Route("/", pages.overview),
                Route("/signin", pages.sign_in_form),
                Route("/signin", pages.sign_in, methods=["POST"]),
                Route("/signout", actions.sign_out, methods=["POST"]),
                Route("/jobs", pages.jobs_list),
                Route("/jobs/retry-failed", actions.retry_failed, methods=["POST"]),
                Route("/jobs/{job_id}", pages.job),
                Route("/jobs/{job_id}/retry", actions.retry_job, methods=["POST"]),
                Route("/companies/{record_id}", pages.company),
                Route("/companies/{record_id}/sync", actions.sync_company, methods=["POST"]),
                Route("/attestr/pause", actions.pause_attestr, methods=["POST"]),
                Route("/attestr/resume", actions.resume_attestr, methods=["POST"]),
                Route("/ops.css", pages.stylesheet),
            ],
        ),
        middleware=[Middleware(SecurityHeaders)],
    ),
]
