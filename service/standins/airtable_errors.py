"""Airtable's error answers, as the Airtable stand-in gives them."""

from __future__ import annotations

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
