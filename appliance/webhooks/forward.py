"""Forwarding a webhook's original body to `forward_to`, with our headers and an optional HMAC."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import urllib3

from appliance.db.webhooks import WebhookEvent

SIGNATURE_HEADERS = {"stripe": "Stripe-Signature", "github": "X-Hub-Signature-256"}
TIMEOUT = urllib3.Timeout(connect=5, read=10)


class ForwardFailed(RuntimeError):
    """The receiver did not answer 2xx in time: a failed attempt."""


def forward_headers(event: WebhookEvent, forward_secret: str | None) -> dict[str, str]:
    headers = {
        "Content-Type": event.content_type,
        "X-Ingestbox-Event-Id": event.id,
        "X-Ingestbox-Source": event.source,
        "X-Ingestbox-Event-Type": event.type,
        SIGNATURE_HEADERS[event.source]: event.signature_header,
        "User-Agent": "ingestbox-forwarder",
    }
    if event.source == "github":
        headers["X-GitHub-Event"] = event.type
        headers["X-GitHub-Delivery"] = event.id
    if forward_secret:
        digest = hmac.new(forward_secret.encode(), event.body, hashlib.sha256).hexdigest()
        headers["X-Ingestbox-Signature"] = f"sha256={digest}"
    return headers


class Forwarder:
    """One connection pool for all forwarding; redirects are not followed (a 3xx is a failure)."""

    def __init__(self) -> None:
        self.http = urllib3.PoolManager(num_pools=8, maxsize=10, retries=False, timeout=TIMEOUT)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            response: Any = self.http.request("POST", url, body=body, headers=headers, redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            raise ForwardFailed(f"POST {url} failed: {exc}") from exc
        if not 200 <= response.status < 300:
            text = response.data[:200].decode("utf-8", "replace")
            raise ForwardFailed(f"POST {url} answered {response.status}: {text}")
        return int(response.status)

    def forward(self, event: WebhookEvent, url: str, forward_secret: str | None) -> int:
        return self.post(url, event.body, forward_headers(event, forward_secret))
