"""Who may call: the webhook's shared secrets and the manual endpoints' API keys.

Closed when not configured (503 `not_configured`), several values accepted so that a secret can
be rotated without downtime, compared in constant time, never logged.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request

from service.web.errors import ApiError


def _matches(candidate: str, accepted: tuple[str, ...]) -> bool:
    # Compare with every accepted value, so the time taken says nothing about which matched.
    found = False
    for value in accepted:
        found |= hmac.compare_digest(candidate.encode(), value.encode())
    return found


def require_webhook_secret(request: Request, secrets: tuple[str, ...]) -> None:
    """`X-Webhook-Secret: <secret>` or `Authorization: Bearer <secret>`."""
    if not secrets:
        raise ApiError(503, "not_configured", "Webhooks are not configured: set WEBHOOK_SECRETS")
    given = request.headers.get("x-webhook-secret") or None
    if given is None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip() if scheme.lower() == "bearer" else None
    if not given or not _matches(given, secrets):
        raise ApiError(401, "unauthorized", "Missing or wrong webhook secret (X-Webhook-Secret)")


def require_api_key(request: Request, keys: tuple[str, ...]) -> str:
    """The caller's key, once it is one of API_KEYS (rate limits count per key)."""
    if not keys:
        raise ApiError(503, "not_configured", "The API is not configured: set API_KEYS")
    given = request.headers.get("x-api-key")
    if not given or not _matches(given, keys):
        raise ApiError(401, "unauthorized", "Missing or wrong API key (X-API-Key)")
    return given
