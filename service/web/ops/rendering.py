"""How the operator's page answers: Jinja2 templates (every value escaped), the headers that
keep it from being framed or cached, the sign-in guard, and errors as pages, not JSON."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.database import DATABASE_ERRORS
from service.web import validation
from service.web.errors import ApiError
from service.web.ops import session as sessions
from service.web.ops.session import Session

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent
# Nothing from elsewhere: the page's own stylesheet, no script at all, forms posted only here,
# and no framing by any site (clickjacking). MDN, "Content-Security-Policy"; OWASP "Clickjacking
# Defense Cheat Sheet" (frame-ancestors, with X-Frame-Options for older browsers).
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return ""
    seconds = max(0.0, (datetime.now(timezone.utc) - moment).total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _when_iso(text: str | None) -> str:
    """An ISO 8601 time as the page shows times (`stats` gives them as text)."""
    try:
        return _when(datetime.fromisoformat(text)) if text else ""
    except ValueError:
        return text or ""


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(ago=_ago, when=_when, when_iso=_when_iso)


class SecurityHeaders:
    """ASGI middleware: HEADERS on every answer under /ops, errors and redirects included (a
    header the answer sets itself stands: the stylesheet may be cached)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                given = list(message.get("headers", []))
                named = {name.lower() for name, _ in given}
                message["headers"] = given + [
                    (k.lower().encode(), v.encode())
                    for k, v in HEADERS.items()
                    if k.lower().encode() not in named
                ]
            await send(message)

        await self.app(scope, receive, sending)


# What an action's redirect says (`back_to`): the page turns its code into one of these sentences;
# `n` is the only value carried, a whole number.
_FLASHES = {
    "retried": "The job is queued again.",
    "already_queued": "The company already had a job queued: that one is shown.",
    "queued": "The company's sync is queued.",
    "retried_window": "{n} failed job(s) queued again.",
    "paused": "Attestr calls are paused: jobs wait, none fails, until you resume.",
    "resumed": "Attestr calls go on again; {n} waiting job(s) woken.",
    "signed_out": "Signed out.",
    "nothing_failed": "No job failed in that time: nothing to retry.",
}


def _flash(request: Request) -> str | None:
    said = _FLASHES.get(request.query_params.get("done", ""))
    if said is None:
        return None
    return said.format(n=validation.whole_number(request.query_params.get("n", "0")) or 0)


def page(
    request: Request, name: str, context: dict[str, Any], session: Session | None, status: int = 200
) -> Response:
    """The template `name` filled with `context`, the session's CSRF token and the flash (what
    the action that led here did). A page that reloads itself reloads its address without the
    flash (`done`): said once, not at each reload."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("done", "n")]
    reload_to = request.url.path + ("?" + urlencode(kept) if kept else "")
    return templates.TemplateResponse(
        request,
        name,
        {
            "session": session,
            "csrf": session.csrf if session else "",
            "reload_to": reload_to,
            "flash": _flash(request),
            **context,
        },
        status_code=status,
    )


def error_page(request: Request, status: int, message: str, session: Session | None) -> Response:
    return page(request, "error.html", {"status": status, "message": message}, session, status)


async def current_session(request: Request) -> Session | None:
    settings = request.app.state.settings
    return await sessions.signed_in(
        request, request.app.state.pool, settings.api_keys, settings.ops_session_max_age_s
    )


async def http_error(request: Request, exc: Exception) -> Response:
    """A path or a method /ops does not serve (404, 405), as a page with the page's headers: the
    answer is made outside the mount's middleware (web/app.py hands these here)."""
    assert isinstance(exc, HTTPException)
    try:
        session = await current_session(request)
    except DATABASE_ERRORS:
        session = None
    said = {404: "No such page", 405: "This address is not for that (a form's address, opened by hand?)"}
    response = error_page(request, exc.status_code, said.get(exc.status_code, str(exc.detail)), session)
    response.headers.update({**(exc.headers or {}), **HEADERS})
    return response


def _errors_as_pages(request: Request, session: Session | None) -> Callable[[Exception], Response]:
    def answer(exc: Exception) -> Response:
        if isinstance(exc, ApiError):
            response = error_page(request, exc.status, exc.message, session)
            response.headers.update(exc.headers or {})
            return response
        return error_page(
            request, 503, f"The database is not answering ({type(exc).__name__}); try again shortly", session
        )

    return answer


async def _looked_up(request: Request) -> tuple[Session | None, Response | None]:
    """The request's session (None: signed out), or the page saying the database is away."""
    try:
        return await current_session(request), None
    except DATABASE_ERRORS as exc:
        return None, _errors_as_pages(request, None)(exc)


View = Callable[[Request, Session], Awaitable[Response]]
Action = Callable[[Request, Session, dict[str, str]], Awaitable[Response]]


def view(handler: View) -> Callable[[Request], Awaitable[Response]]:
    """A page for signed-in operators; anyone else is sent to the sign-in form (303)."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        session, away = await _looked_up(request)
        if away is not None:
            return away
        if session is None:
            where = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"{sessions.PATH}/signin?next={quote(where)}", status_code=303)
        try:
            return await handler(request, session)
        except (ApiError, *DATABASE_ERRORS) as exc:
            return _errors_as_pages(request, session)(exc)

    return guarded


async def form(request: Request) -> dict[str, str]:
    """The posted form (application/x-www-form-urlencoded), first value of each field."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise ApiError(400, "invalid_form", "Send the page's own form (application/x-www-form-urlencoded)")
    body = await validation.read_body(request)
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "invalid_form", "The form could not be read") from None
    return {name: values[0] for name, values in fields.items()}


def action(name: str) -> Callable[[Action], Callable[[Request], Awaitable[Response]]]:
    """A POST of a signed-in operator: refused when signed out (401), from another site or
    without the session's CSRF token (403); `name` names it in the refusal's log line."""

    def wrap(handler: Action) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def guarded(request: Request) -> Response:
            session, away = await _looked_up(request)
            if away is not None:
                return away
            if session is None:
                return error_page(
                    request, 401, "Sign in first: this page is for the service's operators", None
                )
            errors = _errors_as_pages(request, session)
            try:
                if sessions.cross_site(request):
                    log.warning("ops.refused", action=name, reason="cross-site", key_id=session.key_id)
                    return error_page(request, 403, "Refused: this request came from another site", session)
                fields = await form(request)
                if not sessions.token_matches(session, fields.get("csrf")):
                    log.warning("ops.refused", action=name, reason="csrf token", key_id=session.key_id)
                    return error_page(
                        request,
                        403,
                        "Refused: the form is out of date; reload the page and try again",
                        session,
                    )
                return await handler(request, session, fields)
            except (ApiError, *DATABASE_ERRORS) as exc:
                return errors(exc)

        return guarded

    return wrap


def path_job_id(request: Request) -> int:
    """The `{job_id}` of the path, or a 404."""
    found = validation.whole_number(request.path_params["job_id"])
    if found is None:
        raise ApiError(404, "not_found", "No such job")
    return found


def back_to(path: str, **flash: str | int) -> RedirectResponse:
    """303 to `path` with a flash code the page turns into a sentence (never free text: a link
    must not be able to make the page say anything)."""
    query = "&".join(f"{k}={quote(str(v))}" for k, v in flash.items())
    return RedirectResponse(path + (f"?{query}" if query else ""), status_code=303)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path under /ops only (no open redirect, and no way out of
    /ops by `..`, however it is written); anything else goes to the overview."""
    home = f"{sessions.PATH}/"
    if not target or not target.isprintable() or len(target) > 2000:
        return home
    path = target.partition("?")[0]
    shown = unquote(path)
    if "\\" in shown or "//" in shown or any(part in (".", "..") for part in shown.split("/")):
        return home
    if path == sessions.PATH or path.startswith(home):
        return target
    return home
