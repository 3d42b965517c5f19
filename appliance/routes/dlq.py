"""The dead letter queue: list, retry, discard, purge."""

from __future__ import annotations

import asyncio
import time

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from appliance.errors import BadRequest, NotFound

bp = Blueprint("dlq")


@bp.get("/v1/dlq")
async def list_dead(request: Request) -> HTTPResponse:
    engine = request.app.ctx.runtime.engine
    try:
        limit = min(1000, max(1, int(request.args.get("limit", "100"))))
        before = float(request.args["before"]) if "before" in request.args else None
    except ValueError:
        raise BadRequest("limit must be an integer and before a UNIX time") from None
    jobs = engine.records.list_dead(limit=limit + 1, before=before, queue=request.args.get("queue"))
    items = []
    for job in jobs[:limit]:
        item = job.to_dict()
        item["payload"] = job.payload
        item["traceback"] = job.traceback
        items.append(item)
    answer: dict[str, object] = {"items": items}
    if len(jobs) > limit:
        answer["next"] = f"/v1/dlq?limit={limit}&before={jobs[limit - 1].finished_at}"
    return json(answer)


@bp.post("/v1/dlq/<job_id:str>/retry")
async def retry(request: Request, job_id: str) -> HTTPResponse:
    engine = request.app.ctx.runtime.engine
    job = await asyncio.get_running_loop().run_in_executor(None, engine.retry_dead, job_id)
    if job is None:
        raise NotFound(f"no dead job {job_id!r}")
    return json(job.to_dict())


@bp.delete("/v1/dlq/<job_id:str>")
async def discard(request: Request, job_id: str) -> HTTPResponse:
    engine = request.app.ctx.runtime.engine
    if not await asyncio.get_running_loop().run_in_executor(None, engine.discard_dead, job_id):
        raise NotFound(f"no dead job {job_id!r}")
    return json({"deleted": job_id})


@bp.post("/v1/dlq/purge")
async def purge(request: Request) -> HTTPResponse:
    """Delete dead jobs older than `older_than_seconds` (default: all)."""
    body = request.json if request.body else {}
    seconds = (body or {}).get("older_than_seconds", 0)
    if not isinstance(seconds, int | float) or seconds < 0:
        raise BadRequest("older_than_seconds must be a number >= 0", field="older_than_seconds")
    engine = request.app.ctx.runtime.engine
    cutoff = time.time() - seconds
    count = await asyncio.get_running_loop().run_in_executor(None, engine.records.purge_dead, cutoff)
    return json({"purged": count})
