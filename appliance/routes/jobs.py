"""Job status: GET /v1/jobs/{id}, POST /v1/jobs (selftest jobs), and the WS /v1/events feed."""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic.server.websockets.impl import WebsocketImplProtocol

from appliance.errors import BadRequest, NotFound

bp = Blueprint("jobs")
JOB_ID_MAX = 200


@bp.get("/v1/jobs/<job_id:str>")
async def get_job(request: Request, job_id: str) -> HTTPResponse:
    job = request.app.ctx.runtime.engine.records.get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return json(job.to_dict())


@bp.post("/v1/jobs")
async def create_job(request: Request) -> HTTPResponse:
    """Enqueue a `selftest` job on any queue: an end-to-end check of the job engine."""
    body = request.json if request.body else None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    engine = request.app.ctx.runtime.engine
    queue = body.get("queue")
    if queue not in engine.specs:
        raise BadRequest("queue must be one of " + ", ".join(engine.specs), field="queue")
    if body.get("kind", "selftest") != "selftest":
        raise BadRequest("only kind 'selftest' can be enqueued over the API", field="kind")
    payload = body.get("payload", {})
    if not isinstance(payload, dict):
        raise BadRequest("payload must be a JSON object", field="payload")
    job_id = body.get("id")
    if job_id is not None and (not isinstance(job_id, str) or not 0 < len(job_id) <= JOB_ID_MAX):
        raise BadRequest(f"id must be a string of 1 to {JOB_ID_MAX} characters", field="id")
    job, created = await engine.enqueue_async(queue, "selftest", payload, job_id)
    return json({"job": job.to_dict(), "duplicate": not created}, status=201 if created else 200)


@bp.websocket("/v1/events")
async def events(request: Request, ws: WebsocketImplProtocol) -> None:
    """Push {"type": "job", "job": {...}} on every state or progress change (?job_id= narrows)."""
    runtime = request.app.ctx.runtime
    job_id = request.args.get("job_id")
    subscription = runtime.events.subscribe(job_id)
    try:
        if job_id:  # a client that connects late still learns where the job stands
            job = runtime.engine.records.get(job_id)
            if job is not None:
                await ws.send(jsonlib.dumps({"type": "job", "job": job.to_dict()}))
        while True:
            event: dict[str, Any] = await subscription.queue.get()
            await ws.send(jsonlib.dumps(event))
    except asyncio.CancelledError:
        raise
    finally:
        runtime.events.unsubscribe(subscription)
        with contextlib.suppress(Exception):
            await ws.close()
