"""Who may see the operator's page: a sign-in with one of API_KEYS, kept as a session.

The cookie holds a random token (256 bits) and nothing else: neither the key nor anything
derived from it, so a copied cookie tells nothing about the key. PostgreSQL keeps the token's
SHA-256, the key's SHA-256 and when the session ends (migrations/028_ops_sessions.sql): signing out
deletes it, removing the key from API_KEYS ends its sessions, and every process agrees. The
cookie is HttpOnly, SameSite=Strict, Secure when the page is served over HTTPS, scoped to `/ops`,
and lasts OPS_SESSION_MAX_AGE_S. Every POST carries a CSRF token derived from the session token,
and is refused when the browser says it came from another site (Origin, Sec-Fetch-Site): OWASP's
"Cross-Site Request Forgery Prevention Cheat Sheet" (synchronizer token, and checking the source
origin with standard headers).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from service import queries

COOKIE = "contact_sync_ops"
PATH = "/ops"
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Session:
    """A signed-in operator: `token_hash` names the session in PostgreSQL; `key_id` names the API
    key used (its hash's first 12 hex digits, safe to log); `csrf` is the token every form of the
    session must send back."""

    token_hash: str
    key_id: str
    csrf: str


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def key_id(key: str) -> str:
    return _sha256(key)[:12]


def find_key(given: str, keys: tuple[str, ...]) -> str | None:
    """The API key typed on the sign-in form, when it is one of `keys` (constant-time compare
    with each, so the time taken says nothing about which)."""
    found = None
    for key in keys:
        if hmac.compare_digest(given.encode(), key.encode()):
            found = key
    return found


async def signed_in(
    request: Request, pool: asyncpg.Pool, keys: tuple[str, ...], max_age_s: float
) -> Session | None:
    """The request's session, or None: no cookie, an unknown, ended or expired one (older than
    `max_age_s` included), or its key no longer one of `keys`."""
    token = request.cookies.get(COOKIE)
    if not token or not keys or len(token) > 100:
        return None
    token_hash = _sha256(token)
    key_hash = await pool.fetchval(
        queries.OPS_SESSION_FIND, token_hash, [_sha256(k) for k in keys], max_age_s
    )
    if key_hash is None:
        return None
    return Session(token_hash, key_hash[:12], _sha256(f"csrf:{token}"))


async def start(response: Response, request: Request, pool: asyncpg.Pool, key: str, max_age_s: float) -> None:
    """Store a new session for `key` and set its cookie on `response`."""
    token = secrets.token_urlsafe(32)
    await pool.execute(queries.OPS_SESSION_START, _sha256(token), _sha256(key), max_age_s)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(max_age_s),
        path=PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


async def end(response: Response, pool: asyncpg.Pool, session: Session) -> None:
    """Delete the session (a copy of its cookie is refused from now on) and its cookie."""
    await pool.execute(queries.OPS_SESSION_END, session.token_hash)
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")


async def end_removed_keys(pool: asyncpg.Pool, keys: tuple[str, ...]) -> None:
    """At start: end for good the sessions of keys no longer in `keys` (API_KEYS)."""
    await pool.execute(queries.OPS_SESSIONS_OF_REMOVED_KEYS, [_sha256(k) for k in keys])


def _origin(scheme: str, host: str | None, port: int | None) -> tuple[str, str, int | None]:
    return scheme.lower(), (host or "").lower(), port or _DEFAULT_PORTS.get(scheme.lower())


def cross_site(request: Request) -> bool:
    """Whether the browser says this request came from another site (or another origin of this
    one). Requests without either header (curl, scripts) are judged by the CSRF token alone."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    try:
        given = urlsplit(origin)
        theirs = _origin(given.scheme, given.hostname, given.port)
    except ValueError:  # not a URL ("null", a port out of range)
        return True
    return theirs != _origin(request.url.scheme, request.url.hostname, request.url.port)


def token_matches(session: Session, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), session.csrf.encode())
