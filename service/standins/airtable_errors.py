"""Airtable's error answers, as the Airtable stand-in gives them, and the one for a malformed body."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse


class AirtableError(Exception):
    """A refusal: HTTP status, Airtable's error type and message."""

    def __init__(self, status: int, kind: str, message: str = "") -> None:
        super().__init__(message or kind)
        self.status, self.kind, self.message = status, kind, message

    def response(self) -> JSONResponse:
        if self.kind == "RATE_LIMIT_REACHED":
            # Real 429s carry a list of errors (PipedreamHQ/pipedream#10130), although the "Errors"
            # page (https://airtable.com/developers/web/api/errors#anchor-429) shows the shape below.
            return JSONResponse(
                {"errors": [{"error": self.kind, "message": self.message}]}, status_code=self.status
            )
        # "Errors" (https://airtable.com/developers/web/api/errors): {"error": {"type", "message"}}.
        error: dict[str, str] = {"type": self.kind}
        if self.message:
            error["message"] = self.message
        return JSONResponse({"error": error}, status_code=self.status)


async def json_body(request: Request) -> dict[str, Any]:
    """A request's JSON object; anything else is refused as Airtable refuses a malformed body."""
    try:
        body = await request.json()
    except ValueError:
        raise AirtableError(
            422, "INVALID_REQUEST_UNKNOWN", "Invalid request: parameter validation failed"
        ) from None
    if not isinstance(body, dict):
        raise AirtableError(422, "INVALID_REQUEST_UNKNOWN", "Invalid request: parameter validation failed")
    return body
