"""POST /v1/uploads (streamed, sniffed, stored, then a file-processing job) and GET /v1/assets/{id}."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from appliance.db.assets import Asset
from appliance.db.jobs import Job
from appliance.errors import BadRequest, NotFound
from appliance.processing.assets import PROCESS_KIND
from appliance.processing.documents import asset_document
from appliance.uploads.multipart import StreamingForm, boundary_of
from appliance.uploads.receive import UploadReceiver, UploadTooLarge

bp = Blueprint("uploads")
FORM_OVERHEAD = 64 * 1024  # boundaries, part headers and the small fields around the file


@bp.post("/v1/uploads", stream=True)
async def upload(request: Request) -> HTTPResponse:
    runtime = request.app.ctx.runtime
    settings = runtime.settings.uploads
    limit = settings.max_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadTooLarge(f"the body is over the {settings.max_bytes}-byte limit", max_bytes=settings.max_bytes)
    # A stream=True route ignores REQUEST_MAX_SIZE: bound a chunked body here (Sanic answers 413).
    stream: Any = request.stream  # Sanic's HTTP/1 stream; its type stub lacks read()
    stream.request_max_size = limit
    form = StreamingForm(boundary_of(request.headers.get("content-type")))
    receiver = UploadReceiver(
        runtime.store, runtime.assets, settings.max_bytes, list(settings.allowed_types), settings.clamd
    )
    acceptance: asyncio.Task[tuple[Asset, Job]] | None = None
    try:
        while (chunk := await stream.read()) is not None:
            for kind, part, data in form.feed(chunk):
                await receiver.handle(kind, part.name, part.filename, data)
        form.finish()
        # Committing the original and recording its asset run to their end even if the client goes away
        # meanwhile: cut halfway, storage and the database would disagree.
        acceptance = asyncio.ensure_future(accept(runtime, receiver))
        asset, job = await asyncio.shield(acceptance)
    except BaseException:
        if acceptance is not None and await recorded(acceptance):
            raise  # the upload stands (its job runs); only the answer is lost with the client
        await asyncio.shield(receiver.abort())
        raise
    runtime.metrics.upload_bytes.inc(asset.size)
    return json(
        {"asset_id": asset.id, "job_id": job.id, "status_url": f"/v1/jobs/{job.id}"},
        status=202,
    )


async def accept(runtime: Any, receiver: UploadReceiver) -> tuple[Asset, Job]:
    """Scan verdict, commit, then the asset, its job and the end of "pending" in one transaction."""
    asset = await receiver.finish(job_id=f"asset-{receiver.asset_id}")
    records = runtime.assets

    def keep_asset(conn: sqlite3.Connection) -> None:
        records.insert_in(conn, asset)
        records.drop_pending_in(conn, asset.original_key)

    job, _ = await runtime.engine.enqueue_async(
        "file-processing", PROCESS_KIND, {"asset_id": asset.id}, job_id=asset.job_id, also=keep_asset,
    )
    return asset, job


async def recorded(acceptance: asyncio.Task[tuple[Asset, Job]]) -> bool:
    """Wait for the acceptance to end; True when the upload was committed and recorded."""
    await asyncio.wait({acceptance})
    return not acceptance.cancelled() and acceptance.exception() is None


@bp.get("/v1/assets")
async def list_assets(request: Request) -> HTTPResponse:
    """The newest assets first (`limit`, default 20, at most 100), each as GET /v1/assets/{id} shows it."""
    runtime = request.app.ctx.runtime
    try:
        limit = max(1, min(100, int(request.args.get("limit", "20"))))
    except ValueError:
        raise BadRequest("limit must be a number") from None
    return json({"items": [asset_document(runtime.assets, runtime.store, a) for a in runtime.assets.recent(limit)]})


@bp.get("/v1/assets/<asset_id:str>")
async def get_asset(request: Request, asset_id: str) -> HTTPResponse:
    runtime = request.app.ctx.runtime
    asset = runtime.assets.get(asset_id)
    if asset is None:
        raise NotFound(f"no asset {asset_id!r}")
    return json(asset_document(runtime.assets, runtime.store, asset))
