"""POST /webhooks/stripe and /webhooks/github (verify, store, answer); the /v1/webhooks log and replay."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from appliance.db.webhooks import WebhookEvent
from appliance.errors import BadRequest, IngestboxError, NotFound
from appliance.webhooks.processing import KIND, QUEUE
from appliance.webhooks.verify import verify_github, verify_stripe

log = logging.getLogger("ingestbox.webhooks")
bp = Blueprint("webhooks")
MAX_ID = 200


class WebhookTooLarge(IngestboxError):
    status, code, quiet = 413, "too_large", True


def _body(request: Request) -> bytes:
    body = request.body or b""
    limit = request.app.ctx.runtime.settings.webhooks.max_body_bytes
    if len(body) > limit:
        raise WebhookTooLarge(f"webhook body of {len(body)} bytes is over the {limit}-byte limit")
    return body


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(document, dict):
        raise BadRequest("body is not a JSON object")
    return document


def _short_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID or not value.isprintable():
        raise BadRequest(f"{what} is missing or invalid")
    return value


async def _accept(request: Request, event: WebhookEvent) -> HTTPResponse:
    """Store the raw event and its job in one transaction, then answer."""
    runtime = request.app.ctx.runtime
    store = runtime.webhook_log.insert_in
    _, created = await runtime.engine.enqueue_async(
        QUEUE, KIND, {"event_id": event.id}, job_id=event.id, also=lambda conn: store(conn, event)
    )
    runtime.metrics.webhooks.labels(event.source, event.type, "accepted" if created else "duplicate").inc()
    if not created:
        log.info("%s webhook %s (%s) is a duplicate; not processed again", event.source, event.id, event.type)
    return json_response({"received": True, "duplicate": not created})


def _verify(request: Request, source: str, check: Callable[[], None]) -> None:
    try:
        check()
    except IngestboxError as exc:
        # The type is not known before the signature holds; nothing of an unverified body is kept.
        request.app.ctx.runtime.metrics.webhooks.labels(source, "", "rejected").inc()
        log.warning("%s webhook rejected from %s: %s", source, request.remote_addr or request.ip, exc.message)
        raise


def _event(request: Request, source: str, event_id: str, event_type: str, header: str, body: bytes) -> WebhookEvent:
    now = time.time()
    return WebhookEvent(
        id=event_id, source=source, type=event_type, received_at=now, status="queued", attempts=0,
        duplicates=0, last_error=None, job_id=event_id, content_type=request.content_type or "application/json",
        signature_header=header, body=body, updated_at=now,
    )


@bp.post("/webhooks/stripe")
async def stripe_webhook(request: Request) -> HTTPResponse:
    settings = request.app.ctx.runtime.settings.webhooks.stripe
    body = _body(request)
    header = request.headers.get("stripe-signature", "")
    _verify(request, "stripe", lambda: verify_stripe(body, header, settings.secrets, settings.tolerance_seconds))
    document = _json_object(body)
    event_id = _short_id(document.get("id"), "event id")
    event_type = _short_id(document.get("type"), "event type")
    return await _accept(request, _event(request, "stripe", event_id, event_type, header, body))


@bp.post("/webhooks/github")
async def github_webhook(request: Request) -> HTTPResponse:
    settings = request.app.ctx.runtime.settings.webhooks.github
    body = _body(request)
    header = request.headers.get("x-hub-signature-256", "")
    _verify(request, "github", lambda: verify_github(body, header, settings.secrets))
    delivery = _short_id(request.headers.get("x-github-delivery"), "X-GitHub-Delivery header")
    event_type = _short_id(request.headers.get("x-github-event"), "X-GitHub-Event header")
    if (request.content_type or "application/json").startswith("application/json"):
        _json_object(body)
    return await _accept(request, _event(request, "github", delivery, event_type, header, body))


@bp.get("/v1/webhooks")
async def list_webhooks(request: Request) -> HTTPResponse:
    runtime = request.app.ctx.runtime
    try:
        limit = min(1000, max(1, int(request.args.get("limit", "100"))))
        before = float(request.args["before"]) if "before" in request.args else None
    except ValueError:
        raise BadRequest("limit must be an integer and before a UNIX time") from None
    events = runtime.webhook_log.find(
        source=request.args.get("source"), type=request.args.get("type"), status=request.args.get("status"),
        before=before, limit=limit + 1,
    )
    answer: dict[str, Any] = {"items": [event.to_dict() for event in events[:limit]]}
    if len(events) > limit:
        answer["next"] = f"/v1/webhooks?limit={limit}&before={events[limit - 1].received_at}"
    return json_response(answer)


@bp.post("/v1/webhooks/<event_id:str>/replay")
async def replay(request: Request, event_id: str) -> HTTPResponse:
    runtime = request.app.ctx.runtime
    event = runtime.webhook_log.get(event_id)
    if event is None:
        raise NotFound(f"no webhook {event_id!r} in the log")
    job = await asyncio.get_running_loop().run_in_executor(None, runtime.webhooks.replay, event)
    return json_response({"webhook": event_id, "job": job.to_dict()}, status=202)


@bp.get("/v1/alerts")
async def alerts(request: Request) -> HTTPResponse:
    return json_response({"items": request.app.ctx.runtime.webhook_log.alerts()})
