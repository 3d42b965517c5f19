"""Liveness, readiness (database, storage, scanner) and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, raw

from appliance.uploads.clamd import ClamdUnavailable, ping

bp = Blueprint("health")


@bp.get("/healthz")
async def healthz(request: Request) -> HTTPResponse:
    return json({"ok": True})


@bp.get("/readyz")
async def readyz(request: Request) -> HTTPResponse:
    runtime = request.app.ctx.runtime
    loop = asyncio.get_running_loop()
    checks: dict[str, dict[str, object]] = {}

    async def check(name: str, fn: Callable[[], None]) -> None:
        try:
            await loop.run_in_executor(None, fn)
            checks[name] = {"ok": True}
        except Exception as exc:
            checks[name] = {"ok": False, "error": str(exc)}

    await check("database", runtime.db.check)
    await check("storage", runtime.store.check)
    clamd = runtime.settings.uploads.clamd
    if clamd.address:
        try:
            await loop.run_in_executor(None, ping, clamd.address, 5.0)
            checks["scanner"] = {"ok": True, "required": clamd.required}
        except ClamdUnavailable as exc:
            # An optional scanner that is down does not make the server unready.
            checks["scanner"] = {"ok": not clamd.required, "required": clamd.required, "error": str(exc)}
    else:
        checks["scanner"] = {"ok": True, "configured": False}
    ready = all(bool(c["ok"]) for c in checks.values())
    return json({"ready": ready, "checks": checks}, status=200 if ready else 503)


@bp.get("/metrics")
async def metrics(request: Request) -> HTTPResponse:
    registry = request.app.ctx.runtime.metrics.registry
    body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, registry)
    return raw(body, content_type=CONTENT_TYPE_LATEST)
