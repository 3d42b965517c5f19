"""Signature checks on the raw body: Stripe through the stripe library, GitHub by HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import time

import stripe

from appliance.errors import BadRequest, ServiceUnavailable


class InvalidSignature(BadRequest):
    code = "invalid_signature"


class WebhookNotConfigured(ServiceUnavailable):
    code = "not_configured"


def verify_stripe(body: bytes, header: str | None, secrets: list[str], tolerance: int) -> None:
    """Accept if any configured secret (several during a rotation) signed this body within `tolerance` s."""
    if not secrets:
        raise WebhookNotConfigured("no Stripe signing secret is configured ([webhooks.stripe] secrets)")
    if not header:
        raise InvalidSignature("missing Stripe-Signature header")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSignature("Stripe signature rejected: the body is not UTF-8 (Stripe signs UTF-8 JSON)") from None
    reason = "no secret matched"
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance)
        except stripe.SignatureVerificationError as exc:
            reason = str(exc.user_message or exc)
            continue
        # The library bounds only the past; a timestamp far ahead is as suspect as a stale one.
        if _stripe_timestamp(header) > time.time() + tolerance:
            raise InvalidSignature("Stripe signature rejected: timestamp is in the future beyond the tolerance")
        return
    raise InvalidSignature(f"Stripe signature rejected: {reason}")


def _stripe_timestamp(header: str) -> int:
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            return int(value)
    return 0


def github_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_github(body: bytes, header: str | None, secrets: list[str]) -> None:
    """Accept if X-Hub-Signature-256 matches the HMAC of any configured secret (constant time)."""
    if not secrets:
        raise WebhookNotConfigured("no GitHub webhook secret is configured ([webhooks.github] secrets)")
    if not header or not header.startswith("sha256="):
        raise InvalidSignature("missing or malformed X-Hub-Signature-256 header")
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(github_signature(body, secret), header)
    if not matched:
        raise InvalidSignature("X-Hub-Signature-256 does not match any configured secret")
