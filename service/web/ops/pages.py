"""The operator's pages (GET): overview (health and spend), jobs, one job, one company, and
the sign-in form. What they show comes from `engine/history.py` and `engine/stats.py`."""

from __future__ import annotations

from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from service import identifiers
from service.engine import history, jobs, stats
from service.engine.history import JobFilter
from service.web import limits, validation
from service.web.errors import ApiError
from service.web.ops import session as sessions
from service.web.ops.rendering import HERE, back_to, current_session, form, page, path_job_id, safe_next, view
from service.web.ops.session import Session

log = structlog.get_logger(__name__)

PAGE_SIZE = 50
# The jobs page's time filter: created within the last …
SINCE = {"1h": 3_600, "24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
# A page showing unfinished jobs reloads itself this often (no script: a meta refresh).
REFRESH_S = 3


async def stylesheet(_request: Request) -> Response:
    # Cached for an hour: a page reloading itself fetches only its HTML again.
    return FileResponse(
        HERE / "static" / "ops.css", media_type="text/css", headers={"Cache-Control": "max-age=3600"}
    )


@view
async def overview(request: Request, session: Session) -> Response:
    pool, settings = request.app.state.pool, request.app.state.settings
    found = await stats.collect(pool, settings, open_only=True)  # an open page costs little
    days = await history.spend_by_day(pool)
    failed = await history.jobs_page(pool, JobFilter(status="failed"), limit=10)
    return page(
        request,
        "overview.html",
        {
            "stats": found,
            "days": days,
            "limit": settings.attestr_daily_call_limit,
            "chart": _chart(days, settings.attestr_daily_call_limit),
            "webhooks": await history.native_webhooks(pool),
            "failed": failed,
            "since_choices": SINCE,
            "flash": _flash(request),
        },
        session,
    )


def _chart(days: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """Bars of paid calls per day, scaled so the daily limit's line is always on the chart."""
    width, height, gap = 1200, 160, 6
    top = max([limit, *(d["paid"] for d in days)]) or 1
    bar = width / max(len(days), 1)
    return {
        "width": width,
        "height": height,
        "limit_y": round(height - height * limit / top, 1),
        "bars": [
            {
                "x": round(i * bar + gap / 2, 1),
                "w": round(bar - gap, 1),
                "h": round(height * d["paid"] / top, 1),
                "y": round(height - height * d["paid"] / top, 1),
                "day": d["day"],
                "paid": d["paid"],
                "from_stored": d["from_stored"],
                "label": i % 7 == 2 or i == len(days) - 1,
            }
            for i, d in enumerate(days)
        ],
    }


def _filters(request: Request) -> JobFilter:
    """The jobs page's query string as a filter; a value that cannot be one is a 422 naming it."""
    given = request.query_params
    status = given.get("status") or None
    if status is not None and status not in jobs.STATES:
        raise ApiError(422, "invalid_field", f"state must be one of {', '.join(jobs.STATES)}", "status")
    since = given.get("since") or None
    if since is not None and since not in SINCE:
        raise ApiError(422, "invalid_field", f"since must be one of {', '.join(SINCE)}", "since")
    before = given.get("before") or None
    before_id = validation.whole_number(before) if before else None
    if before and before_id is None:
        raise ApiError(422, "invalid_field", "before must be a job id", "before")
    company = identifiers.plain(given.get("company"), 200)
    return JobFilter(
        status=status,
        company=company,
        cin=validation.cin(given.get("cin")),
        since_s=SINCE[since] if since else None,
        before=before_id,
    )


@view
async def jobs_list(request: Request, session: Session) -> Response:
    wanted = _filters(request)
    found = await history.jobs_page(request.app.state.pool, wanted, PAGE_SIZE)
    query = {k: v for k, v in request.query_params.items() if k != "before" and v}
    return page(
        request,
        "jobs.html",
        {
            "jobs": found,
            "wanted": wanted,
            "query": query,
            "since": request.query_params.get("since") or "",
            "states": jobs.STATES,
            "since_choices": SINCE,
            "next_before": found[-1].id if len(found) == PAGE_SIZE else None,
            "refresh_s": REFRESH_S if wanted.before is None and any(not j.finished for j in found) else None,
        },
        session,
    )


@view
async def job(request: Request, session: Session) -> Response:
    job_id = path_job_id(request)
    story = await history.job_story(request.app.state.pool, job_id)
    if story is None:
        raise ApiError(
            404, "not_found", f"No job {job_id}: it may have been deleted after JOB_RETENTION_DAYS"
        )
    return page(
        request,
        "job.html",
        {
            "story": story,
            "refresh_s": None if story.job.finished else REFRESH_S,
            "flash": _flash(request),
        },
        session,
    )


@view
async def company(request: Request, session: Session) -> Response:
    record_id = validation.record_id(request.path_params["record_id"])
    story = await history.company_story(request.app.state.pool, record_id)
    unfinished = any(j["status"] not in jobs.FINISHED for j in story.jobs)
    return page(
        request,
        "company.html",
        {"story": story, "refresh_s": REFRESH_S if unfinished else None, "flash": _flash(request)},
        session,
    )


# What an action's redirect says (`back_to`); `n` is the only value carried, a whole number.
_FLASHES = {
    "retried": "The job is queued again.",
    "already_queued": "The company already had a job queued: that one is shown.",
    "queued": "The company's sync is queued.",
    "retried_window": "{n} failed job(s) queued again.",
    "paused": "Attestr calls are paused: jobs wait, none fails, until you resume.",
    "resumed": "Attestr calls go on again; {n} waiting job(s) woken.",
    "signed_out": "Signed out.",
}


def _flash(request: Request) -> str | None:
    said = _FLASHES.get(request.query_params.get("done", ""))
    if said is None:
        return None
    n = validation.whole_number(request.query_params.get("n", "0")) or 0
    return said.format(n=n)


async def sign_in_form(request: Request) -> Response:
    if current_session(request) is not None:
        return back_to(safe_next(request.query_params.get("next")))
    return page(
        request,
        "signin.html",
        {"next": safe_next(request.query_params.get("next")), "flash": _flash(request)},
        None,
    )


async def sign_in(request: Request) -> Response:
    """The sign-in form's POST: one of API_KEYS starts a session; anything else is 401."""
    settings = request.app.state.settings
    if sessions.cross_site(request):
        return page(request, "signin.html", {"error": "Refused: this came from another site"}, None, 403)
    try:
        fields = await form(request)
        await limits.take_sign_in(
            request.app.state.pool, request.client.host if request.client else "", settings
        )
    except ApiError as exc:
        response = page(request, "signin.html", {"error": exc.message, "next": "/ops/"}, None, exc.status)
        response.headers.update(exc.headers or {})
        return response
    target = safe_next(fields.get("next"))
    if not settings.api_keys:
        return page(
            request,
            "signin.html",
            {"error": "The operator's page needs API_KEYS to be set", "next": target},
            None,
            503,
        )
    key = sessions.find_key(fields.get("api_key", ""), settings.api_keys)
    if key is None:
        log.warning("ops.sign_in_refused")
        return page(
            request, "signin.html", {"error": "That is not one of API_KEYS", "next": target}, None, 401
        )
    response = back_to(target)
    sessions.start(response, request, key, settings.ops_session_max_age_s)
    log.info("ops.signed_in", key_id=sessions.key_id(key))
    return response
