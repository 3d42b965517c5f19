"""API tokens: bearer authentication of every /v1 route, compared in constant time."""

from __future__ import annotations

import hmac

from sanic import Request

from appliance.errors import Unauthorized

PROTECTED_PREFIXES = ("/v1/", "/v1")


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


def require_token(request: Request) -> None:
    """Request middleware: /v1 answers 401 without a valid token; other routes authenticate themselves."""
    path = request.path
    if not (path == "/v1" or path.startswith("/v1/")):
        return
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("missing bearer token: send Authorization: Bearer <token>")
    if not token_matches(token, request.app.ctx.runtime.tokens):
        raise Unauthorized("invalid token")
