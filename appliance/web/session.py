"""Status-page sessions: a signed, expiring cookie (HttpOnly, SameSite=Strict) and its CSRF token."""

from __future__ import annotations

import hashlib
import hmac
import time

COOKIE = "ingestbox_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_SECONDS = 12 * 3600


class SessionSigner:
    """Stateless: the cookie is `<expires>.<HMAC>` under a per-data-dir key, so a restart keeps people logged in."""

    def __init__(self, secret: bytes, seconds: int = SESSION_SECONDS) -> None:
        self.secret = secret
        self.seconds = seconds

    def _mac(self, message: str) -> str:
        return hmac.new(self.secret, message.encode(), hashlib.sha256).hexdigest()

    def issue(self, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.seconds)
        return f"{expires}.{self._mac(f'session:{expires}')}"

    def valid(self, cookie: str | None, now: float | None = None) -> bool:
        if not cookie or "." not in cookie:
            return False
        expires, _, mac = cookie.partition(".")
        if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
            return False
        return hmac.compare_digest(mac, self._mac(f"session:{expires}"))

    def csrf(self, cookie: str) -> str:
        """What the page sends back in X-CSRF-Token on every POST/DELETE (another site cannot read it)."""
        return self._mac(f"csrf:{cookie}")

    def csrf_ok(self, cookie: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf(cookie), token or "")
