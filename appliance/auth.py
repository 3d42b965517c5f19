"""Authentication of every /v1 route: a bearer token, or the status page's session cookie with its CSRF token."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from sanic import Request

from appliance.errors import Unauthorized
from appliance.web.session import COOKIE, CSRF_HEADER

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def token_matches(candidate: str, tokens: list[str]) -> bool:
    """True if `candidate` equals one of `tokens`; every token is compared, in constant time."""
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(candidate.encode(), token.encode())
    return matched and bool(candidate)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def same_origin(request: Request) -> bool:
    """A browser's WebSocket handshake carries no CSRF header: its Origin must be this host."""
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host", "")


def session_ok(request: Request) -> bool:
    """The status page's cookie, with the CSRF token on anything that changes state."""
    cookie = request.cookies.get(COOKIE)
    signer = request.app.ctx.sessions
    if not signer.valid(cookie):
        return False
    if request.headers.get("upgrade", "").lower() == "websocket":
        return same_origin(request)
    return request.method in SAFE_METHODS or signer.csrf_ok(cookie, request.headers.get(CSRF_HEADER))


def require_token(request: Request) -> None:
    """Request middleware: /v1 answers 401 without a valid token or session; other routes authenticate themselves."""
    path = request.path
    if not (path == "/v1" or path.startswith("/v1/")):
        return
    token = bearer_token(request)
    if token is None:
        if session_ok(request):
            return
        raise Unauthorized("missing bearer token: send Authorization: Bearer <token>")
    if not token_matches(token, request.app.ctx.runtime.tokens):
        raise Unauthorized("invalid token")
