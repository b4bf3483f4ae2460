"""The operator's pages (GET): overview (health and spend), jobs, one job, one company, and
the sign-in form. What they show comes from `engine/history.py` and `engine/stats.py`."""

from __future__ import annotations

import math
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from service import identifiers
from service.database import DATABASE_ERRORS
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
# A page watching unfinished jobs reloads itself this often (no script: a meta refresh).
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
        },
        session,
    )


def _chart(days: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """Bars of paid calls per day, scaled to the busiest day (a quiet month still shows); the
    daily limit's line when it falls on that scale, else said beside it."""
    width, height, gap = 1200, 160, 6
    busiest = max((d["paid"] for d in days), default=0)
    top = max(5, math.ceil(busiest * 1.25))
    bar = width / max(len(days), 1)
    return {
        "width": width,
        "height": height,
        "top": top,
        "limit_y": round(height - height * limit / top, 1) if limit <= top else None,
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
    given = request.query_params
    live = given.get("live") == "1"
    shown = {
        "given": given,
        "live": live,
        "states": jobs.STATES,
        "since_choices": SINCE,
        "query": {k: v for k, v in given.items() if k not in ("before", "done", "n", "live") and v},
    }
    try:
        wanted = _filters(request)
    except ApiError as exc:  # the page again, with the filters to mend and what is wrong
        return page(request, "jobs.html", {**shown, "jobs": [], "error": exc.message}, session, exc.status)
    found = await history.jobs_page(request.app.state.pool, wanted, PAGE_SIZE)
    unfinished = wanted.before is None and any(not j.finished for j in found)
    return page(
        request,
        "jobs.html",
        {
            **shown,
            "jobs": found,
            "wanted": wanted,
            "unfinished": unfinished,
            "next_before": found[-1].id if len(found) == PAGE_SIZE else None,
            # Only when asked (`live=1`): a page reloading on its own would throw away a filter
            # being typed.
            "refresh_s": REFRESH_S if live and unfinished else None,
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
        },
        session,
    )


@view
async def company(request: Request, session: Session) -> Response:
    record_id = validation.record_id(request.path_params["record_id"])
    story = await history.company_story(request.app.state.pool, record_id)
    unfinished = any(j["status"] not in jobs.FINISHED for j in story.jobs)
    live = request.query_params.get("live") == "1"
    return page(
        request,
        "company.html",
        {
            "story": story,
            "triggers": history.TRIGGERS,
            "unfinished": unfinished,
            "live": live,
            "refresh_s": REFRESH_S if live and unfinished else None,
        },
        session,
    )


async def sign_in_form(request: Request) -> Response:
    target = safe_next(request.query_params.get("next"))
    try:
        if await current_session(request) is not None:
            return back_to(target)
    except DATABASE_ERRORS as exc:  # the form all the same: signing in will say what is wrong
        log.warning("ops.session_unread", error=type(exc).__name__)
    return page(request, "signin.html", {"next": target}, None)


def _sign_in_refused(request: Request, status: int, error: str, target: str) -> Response:
    return page(request, "signin.html", {"error": error, "next": target}, None, status)


async def sign_in(request: Request) -> Response:
    """The sign-in form's POST: one of API_KEYS starts a session; a wrong key is 401, and after
    limits.SIGN_IN_ATTEMPTS wrong ones a window from one address every sign-in from there is 429."""
    settings, pool = request.app.state.settings, request.app.state.pool
    address = request.client.host if request.client else ""
    target = safe_next(request.query_params.get("next"))
    if sessions.cross_site(request):
        log.warning("ops.refused", action="sign_in", reason="cross-site")
        return _sign_in_refused(request, 403, "Refused: this came from another site", target)
    try:
        fields = await form(request)
        target = safe_next(fields.get("next") or request.query_params.get("next"))
        await limits.check_sign_in(pool, address, settings)
        if not settings.api_keys:
            return _sign_in_refused(request, 503, "The operator's page needs API_KEYS to be set", target)
        key = sessions.find_key(fields.get("api_key", ""), settings.api_keys)
        if key is None:
            await limits.count_refused_sign_in(pool, address, settings)
            log.warning("ops.sign_in_refused")
            return _sign_in_refused(request, 401, "That is not one of API_KEYS", target)
        response = back_to(target)
        await sessions.start(response, request, pool, key, settings.ops_session_max_age_s)
    except ApiError as exc:
        response = _sign_in_refused(request, exc.status, exc.message, target)
        response.headers.update(exc.headers or {})
        return response
    except DATABASE_ERRORS as exc:
        away = f"The database is not answering ({type(exc).__name__}); try again shortly"
        return _sign_in_refused(request, 503, away, target)
    log.info("ops.signed_in", key_id=sessions.key_id(key))
    return response
