"""/v1/system (hardware report, cores, scheduler, versions) and /v1/queues (the queue table)."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from appliance.jobs.table import queue_rows

bp = Blueprint("system")


@bp.get("/v1/system")
async def system(request: Request) -> HTTPResponse:
    return json(request.app.ctx.runtime.system())


@bp.get("/v1/queues")
async def queues(request: Request) -> HTTPResponse:
    return json({"items": queue_rows(request.app.ctx.runtime.engine)})


@bp.get("/v1/stats")
async def stats(request: Request) -> HTTPResponse:
    """Per queue: completed and failed attempts per hour over the last 24 hours (the status page's charts)."""
    engine = request.app.ctx.runtime.engine
    now = engine.clock()
    return json({"items": [{"queue": name, "buckets": engine.records.history(name, now)} for name in engine.specs]})
