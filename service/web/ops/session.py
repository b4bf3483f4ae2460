"""Who may see the operator's page: a sign-in with one of API_KEYS, kept in a signed cookie.

The cookie holds a random session id and its time of issue, signed (itsdangerous) with the
API key that signed in: removing the key from API_KEYS ends its sessions, and no other secret
is needed. It is HttpOnly, SameSite=Strict, Secure when the page is served over HTTPS, scoped to
`/ops`, and lasts OPS_SESSION_MAX_AGE_S. Every POST carries a CSRF token derived from the session
(HMAC) and is refused when the browser says it came from another site (Origin, Sec-Fetch-Site):
OWASP's "Cross-Site Request Forgery Prevention Cheat Sheet" (synchronizer token, and checking the
source origin with standard headers).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "contact_sync_ops"
PATH = "/ops"
_SALT = "contact-sync operator's page"


@dataclass(frozen=True)
class Session:
    """A signed-in operator: `key_id` names the API key used (its hash's first 12 hex digits,
    safe to log); `csrf` is the token every form of the session must send back."""

    key_id: str
    csrf: str


def _serializer(key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(key, salt=_SALT)


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _csrf(key: str, session_id: str) -> str:
    return hmac.new(key.encode(), f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()


def find_key(given: str, keys: tuple[str, ...]) -> str | None:
    """The API key typed on the sign-in form, when it is one of `keys` (constant-time compare
    with each, so the time taken says nothing about which)."""
    found = None
    for key in keys:
        if hmac.compare_digest(given.encode(), key.encode()):
            found = key
    return found


def signed_in(request: Request, keys: tuple[str, ...], max_age_s: float) -> Session | None:
    """The request's session, or None: no cookie, a forged or expired one, or its key removed."""
    cookie = request.cookies.get(COOKIE)
    if not cookie or not keys:
        return None
    for key in keys:
        try:
            session_id = _serializer(key).loads(cookie, max_age=max_age_s)
        except BadSignature:  # SignatureExpired is one too
            continue
        if isinstance(session_id, str):
            return Session(key_id(key), _csrf(key, session_id))
    return None


def start(response: Response, request: Request, key: str, max_age_s: float) -> None:
    """Set the session cookie for `key` on `response`."""
    value = _serializer(key).dumps(secrets.token_urlsafe(16))
    response.set_cookie(
        COOKIE,
        value,
        max_age=int(max_age_s),
        path=PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def end(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")


def cross_site(request: Request) -> bool:
    """Whether the browser says this request came from another site. Requests without either
    header (curl, scripts) are judged by the CSRF token alone."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin != f"{request.url.scheme}://{request.url.netloc}"


def token_matches(session: Session, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), session.csrf.encode())
