"""The JSON error shape of every HTTP answer that is not a success.

`{"error": {"code", "message", "field"?}}`, with the design's codes: `unauthorized`,
`payload_too_large`, `invalid_json`, `invalid_field`, `invalid_cin`, `invalid_record_id`,
`not_found`, `rate_limited`, `not_configured`, `unavailable`, `request_timeout`; and
`internal_error` for a bug.
"""

from __future__ import annotations

from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.database import DATABASE_ERRORS

log = structlog.get_logger(__name__)

_CODES_BY_STATUS = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


DATABASE_RETRY_AFTER_S = 5  # a restart or a failover: the automation script waits and tries again


class ApiError(Exception):
    """Raised by a handler to answer with the design's error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.headers = status, code, message, field, headers


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    error: dict[str, str] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return JSONResponse({"error": error}, status_code=status, headers=headers)


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)


async def _http_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _CODES_BY_STATUS.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


def database_away(message: str) -> ApiError:
    """The 503 for a database that did not answer in time: `unavailable`, with Retry-After."""
    return ApiError(503, "unavailable", message, headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)})


async def _database_away(request: Request, exc: Exception) -> JSONResponse:
    away = database_away(f"The service cannot reach its database ({type(exc).__name__}); try again shortly")
    return await _api_error(request, away)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ApiError: _api_error,
    HTTPException: _http_exception,
    **{error: _database_away for error in DATABASE_ERRORS},
}


class CatchAll:
    """ASGI middleware inside Starlette's own error middleware: an error no handler expected
    becomes the documented JSON 500 (not Starlette's plain text), logged once with its cause as
    `http.unhandled_error`, and is not raised further (the server would log it a second time)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            log.exception("http.unhandled_error", method=scope.get("method"), path=scope.get("path"))
            if not started:  # else the client sees the answer cut short
                response = error_response(
                    500, "internal_error", "Something went wrong in contact-sync; it has been logged"
                )
                await response(scope, receive, send)
