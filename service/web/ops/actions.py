"""What an operator can do from the page (POST, CSRF-checked by `rendering.action`): retry a
failed job, retry every failed job of a window, sync a company now, pause and resume Attestr,
sign out. An action that may pay Attestr (a resume with jobs queued among them) asks first: its
first POST answers with a confirmation saying what it may cost, and only the second, with
`confirmed=yes`, does it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import structlog
from starlette.requests import Request
from starlette.responses import Response

from service import queries
from service.attestr.gate import AttestrGate
from service.engine import jobs
from service.web import limits, validation
from service.web.errors import ApiError
from service.web.ops import session as sessions
from service.web.ops.pages import SINCE
from service.web.ops.rendering import action, back_to, page, path_job_id
from service.web.ops.session import Session

log = structlog.get_logger(__name__)


async def _confirm(
    request: Request, session: Session, fields: dict[str, str], what: str, calls: int
) -> Response | None:
    """The confirmation page, unless this POST confirms; None when it does."""
    if fields.get("confirmed") == "yes":
        return None
    calls_today = await request.app.state.pool.fetchval(queries.ATTESTR_CALLS_TODAY)
    return page(
        request,
        "confirm.html",
        {
            "what": what,
            "calls": calls,
            "calls_today": calls_today,
            "limit": request.app.state.settings.attestr_daily_call_limit,
            "action": request.url.path,
            "fields": {k: v for k, v in fields.items() if k not in ("csrf", "confirmed")},
        },
        session,
    )


@action("retry_job")
async def retry_job(request: Request, session: Session, fields: dict[str, str]) -> Response:
    job_id = path_job_id(request)
    asked = await _confirm(request, session, fields, f"Retry job {job_id}", 1)
    if asked is not None:
        return asked
    try:
        job, deduplicated = await jobs.retry(request.app.state.pool, job_id)
    except jobs.JobNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except jobs.JobNotRetryable as exc:
        raise ApiError(409, "invalid_state", str(exc)) from None
    request.app.state.wake_worker()
    log.info("ops.action", action="retry_job", job_id=job_id, queued=job.id, key_id=session.key_id)
    return back_to(f"{sessions.PATH}/jobs/{job.id}", done="already_queued" if deduplicated else "retried")


@action("retry_failed")
async def retry_failed(request: Request, session: Session, fields: dict[str, str]) -> Response:
    since = fields.get("since", "")
    if since not in SINCE:
        raise ApiError(422, "invalid_field", f"since must be one of {', '.join(SINCE)}", "since")
    pool = request.app.state.pool
    # Confirmed: the jobs the operator was shown, none that failed after the question.
    asked_at = _moment(fields.get("asked_at")) if fields.get("confirmed") == "yes" else None
    ids = [int(r["id"]) for r in await pool.fetch(queries.JOBS_FAILED_IDS, float(SINCE[since]), asked_at)]
    if not ids:
        return back_to(f"{sessions.PATH}/", done="nothing_failed")
    fields = {**fields, "asked_at": (await pool.fetchval(queries.DATABASE_NOW)).isoformat()}
    asked = await _confirm(
        request, session, fields, f"Retry the {len(ids)} job(s) failed in the last {since}", len(ids)
    )
    if asked is not None:
        return asked
    queued = 0
    for job_id in ids:
        try:
            await jobs.retry(pool, job_id)
            queued += 1
        except (jobs.JobNotFound, jobs.JobNotRetryable):
            continue  # retried or deleted meanwhile
    request.app.state.wake_worker()
    log.info("ops.action", action="retry_failed", since=since, jobs=queued, key_id=session.key_id)
    return back_to(f"{sessions.PATH}/jobs", done="retried_window", n=queued)


def _moment(text: str | None) -> datetime:
    """When the question was asked: a time of the last day (a confirmation older, or not a time,
    is asked again)."""
    try:
        moment = datetime.fromisoformat(text or "")
        if moment.tzinfo is not None and timedelta(0) <= datetime.now(timezone.utc) - moment <= timedelta(
            days=1
        ):
            return moment
    except ValueError:
        pass
    raise ApiError(400, "invalid_form", "The confirmation is out of date; ask again")


@action("sync_company")
async def sync_company(request: Request, session: Session, fields: dict[str, str]) -> Response:
    record_id = validation.record_id(request.path_params["record_id"])
    force = fields.get("force") == "yes"
    named = (await jobs.company_names(request.app.state.pool, [record_id])).get(record_id)
    what = f"Sync {named or 'company'} ({record_id}) now" + (
        ", asking Attestr again even if an answer is stored" if force else ""
    )
    asked = await _confirm(request, session, fields, what, 1)
    if asked is not None:
        return asked
    await limits.check_queue(request.app.state.queue_cap)
    # "manual": the worker reads the record (and its CIN) in Airtable before paying for anything.
    job_id, deduplicated = await jobs.enqueue(
        request.app.state.pool, record_id, None, force=force, source="manual"
    )
    request.app.state.wake_worker()
    log.info(
        "ops.action",
        action="sync_company",
        record_id=record_id,
        job_id=job_id,
        force=force,
        key_id=session.key_id,
    )
    return back_to(f"{sessions.PATH}/jobs/{job_id}", done="already_queued" if deduplicated else "queued")


@action("pause_attestr")
async def pause_attestr(request: Request, session: Session, _fields: dict[str, str]) -> Response:
    await AttestrGate(request.app.state.pool, request.app.state.settings).pause_by_operator()
    log.info("ops.action", action="pause_attestr", key_id=session.key_id)
    return back_to(f"{sessions.PATH}/", done="paused")


@action("resume_attestr")
async def resume_attestr(request: Request, session: Session, fields: dict[str, str]) -> Response:
    pool = request.app.state.pool
    queued = await pool.fetchrow(queries.OPS_QUEUED_FOR_ATTESTR)
    if queued["queued"]:  # they call Attestr as soon as it goes on: that may cost
        what = f"Resume Attestr calls: {queued['queued']} queued job(s) go on"
        if queued["waiting"]:
            what += f", {queued['waiting']} of them waiting for Attestr"
        asked = await _confirm(request, session, fields, what, queued["queued"])
        if asked is not None:
            return asked
    gate = AttestrGate(pool, request.app.state.settings)
    woken = await gate.resume("resumed by an operator on /ops")
    request.app.state.wake_worker()
    log.info("ops.action", action="resume_attestr", jobs_woken=woken, key_id=session.key_id)
    return back_to(f"{sessions.PATH}/", done="resumed", n=woken)


@action("sign_out")
async def sign_out(request: Request, session: Session, _fields: dict[str, str]) -> Response:
    response = back_to(f"{sessions.PATH}/signin", done="signed_out")
    await sessions.end(response, request.app.state.pool, session)
    log.info("ops.signed_out", key_id=session.key_id)
    return response
