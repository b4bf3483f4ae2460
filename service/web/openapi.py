"""`GET /openapi.json`: every endpoint, its inputs and its answers, as OpenAPI 3.0.

Written by hand next to the routes (app.py) rather than generated: it is the contract the tests
hold the service to (schemathesis sends what it describes and checks every answer against it).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from service.web.validation import BODY_TIMEOUT_S, MAX_BODY_BYTES

RECORD_ID = {"type": "string", "pattern": "^rec[A-Za-z0-9]{14}$", "example": "recA1b2C3d4E5f6G7"}
CIN = {
    "type": "string",
    "description": "A CIN (U72200KA2015PTC081234) or an LLPIN (AAB-1234); trimmed and upper-cased",
    "example": "U72200KA2015PTC081234",
}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {
                    "type": "string",
                    "enum": [
                        "unauthorized",
                        "payload_too_large",
                        "invalid_json",
                        "invalid_field",
                        "invalid_cin",
                        "invalid_record_id",
                        "not_found",
                        "method_not_allowed",
                        "rate_limited",
                        "invalid_state",
                        "not_configured",
                        "unavailable",
                        "request_timeout",
                        "internal_error",
                    ],
                },
                "message": {"type": "string"},
                "field": {"type": "string"},
            },
        }
    },
}
_JOB = {
    "type": "object",
    "required": ["id", "status", "record_id", "attempts", "created_at", "updated_at"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "status": {"type": "string", "enum": ["queued", "running", "pushing", "succeeded", "failed"]},
        "wait_reason": {"type": "string", "nullable": True},
        "record_id": {"type": "string"},
        "cin": {"type": "string", "nullable": True},
        "attempts": {"type": "integer"},
        "last_error": {"type": "string", "nullable": True},
        "result": {"type": "object", "nullable": True},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "deduplicated": {"type": "boolean"},
    },
}
_ANY_OBJECT = {"type": "object"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _answers(ok: dict[str, tuple[str, dict[str, Any]]], *errors: int) -> dict[str, Any]:
    answers = {str(status): {"description": text, **_json(schema)} for status, (text, schema) in ok.items()}
    # Every endpoint that reads a body may also find it arriving too slowly; any may meet a bug.
    for status in (*errors, *((408,) if 413 in errors else ()), 500):
        answers[str(status)] = {"description": _ERROR_TEXT[status], **_json(_ERROR)}
    return answers


_ERROR_TEXT = {
    400: "The body is not JSON",
    401: "Missing or wrong secret or API key",
    404: "No such job",
    405: "Method not allowed",
    409: "The job is not in a state that allows this",
    408: f"The body did not arrive within {BODY_TIMEOUT_S:g} s",
    413: f"The body is larger than {MAX_BODY_BYTES // 1024} KiB",
    422: "A field is missing or wrong (`field` names it)",
    429: "Too many requests for this API key, or the queue is full (see Retry-After)",
    503: "Not configured, or the database is unreachable",
    500: "A bug: the error is logged (`http.unhandled_error`)",
}
_API_ERRORS = (400, 401, 413, 422, 429, 503)
_API_KEY = [{"apiKey": []}]


def _body(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {"required": bool(required), **_json(schema)}


def document() -> dict[str, Any]:
    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "contact-sync",
            "version": "1",
            "description": "Airtable webhooks in, directors' contacts from Attestr out to Airtable.",
        },
        "components": {
            "securitySchemes": {
                "webhookSecret": {"type": "apiKey", "in": "header", "name": "X-Webhook-Secret"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
        },
        "paths": {
            "/health": {
                "get": {"summary": "The process is up", "responses": _answers({"200": ("Up", _ANY_OBJECT)})}
            },
            "/ready": {
                "get": {
                    "summary": "The database is reachable and migrated",
                    "responses": _answers({"200": ("Ready", _ANY_OBJECT)}, 503),
                }
            },
            "/webhooks/airtable": {
                "post": {
                    "summary": "A company's CIN was set (the Airtable automation)",
                    "security": [{"webhookSecret": []}],
                    "requestBody": _body(
                        {
                            "record_id": RECORD_ID,
                            "recordId": RECORD_ID,
                            "cin": CIN,
                            "refresh": {"type": "boolean"},
                        }
                    ),
                    "responses": _answers(
                        {
                            "202": (
                                "Stored; the job runs in the background",
                                {
                                    "type": "object",
                                    "required": ["job_id", "status", "deduplicated"],
                                    "properties": {
                                        "job_id": {"type": "string"},
                                        "status": {"type": "string", "enum": ["queued"]},
                                        "deduplicated": {"type": "boolean"},
                                    },
                                },
                            )
                        },
                        *_API_ERRORS,
                    ),
                }
            },
            "/webhooks/airtable/notifications": {
                "post": {
                    "summary": "Airtable's ping for a native webhook (signed with X-Airtable-Content-MAC)",
                    "requestBody": {"required": True, **_json(_ANY_OBJECT)},
                    "responses": {
                        "204": {"description": "Verified (no body, as Airtable asks)"},
                        **_answers({}, 400, 401, 413, 422, 503),
                    },
                }
            },
            "/companies/{record_id}/sync": {
                "post": {
                    "summary": "Sync one company now; `wait` seconds for it to end",
                    "security": _API_KEY,
                    "parameters": [
                        {"name": "record_id", "in": "path", "required": True, "schema": RECORD_ID},
                        {
                            "name": "wait",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0, "maximum": 60},
                        },
                    ],
                    "requestBody": _body(
                        {
                            "cin": CIN,
                            "force": {"type": "boolean"},
                            "max_contacts": {"type": "integer", "minimum": 1, "maximum": 100},
                        }
                    ),
                    "responses": _answers(
                        {"200": ("The job ended", _JOB), "202": ("The job is still running", _JOB)},
                        *_API_ERRORS,
                    ),
                }
            },
            "/contacts/fetch": {
                "post": {
                    "summary": "The older API: fetch and sync a CIN, answering within 25 s",
                    "security": _API_KEY,
                    "requestBody": _body(
                        {
                            "cin": CIN,
                            "company_airtable_id": RECORD_ID,
                            "max_contacts": {"type": "integer", "minimum": 1, "maximum": 100},
                            "force_refresh": {"type": "boolean"},
                        },
                        ["cin", "company_airtable_id"],
                    ),
                    "responses": _answers(
                        {"200": ("The sync ended", _ANY_OBJECT), "202": ("Still fetching", _ANY_OBJECT)},
                        *_API_ERRORS,
                    ),
                }
            },
            "/jobs": {
                "get": {
                    "summary": "The latest jobs",
                    "security": _API_KEY,
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {
                                "type": "string",
                                "enum": ["queued", "running", "pushing", "succeeded", "failed"],
                            },
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                        },
                    ],
                    "responses": _answers(
                        {
                            "200": (
                                "Jobs, newest first",
                                {"type": "object", "properties": {"jobs": {"type": "array", "items": _JOB}}},
                            )
                        },
                        401,
                        422,
                        429,
                        503,
                    ),
                }
            },
            "/jobs/{job_id}": {
                "get": {
                    "summary": "One job",
                    "security": _API_KEY,
                    "parameters": [job_id],
                    "responses": _answers({"200": ("The job", _JOB)}, 401, 404, 429, 503),
                }
            },
            "/jobs/{job_id}/retry": {
                "post": {
                    "summary": "Replay a failed job",
                    "security": _API_KEY,
                    "parameters": [job_id],
                    "responses": _answers(
                        {"202": ("Queued again", _JOB)}, 400, 401, 404, 409, 413, 422, 429, 503
                    ),
                }
            },
            "/stats": {
                "get": {
                    "summary": "Counts of jobs, people, Attestr calls and the outbox",
                    "security": _API_KEY,
                    "responses": _answers({"200": ("Counts", _ANY_OBJECT)}, 401, 429, 503),
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (counts only, no personal data)",
                    "responses": {
                        "200": {
                            "description": "Prometheus text",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": _answers({"200": ("OpenAPI 3.0", _ANY_OBJECT)}),
                }
            },
        },
    }


_DOCUMENT = document()


async def endpoint(_request: Request) -> JSONResponse:
    return JSONResponse(_DOCUMENT)
