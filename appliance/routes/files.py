"""Objects of the local store, served at their signed URLs (S3 and MinIO presign their own)."""

from __future__ import annotations

import mimetypes

from sanic import Blueprint, Request
from sanic.compat import stat_async
from sanic.handlers import ContentRangeHandler
from sanic.response import ResponseStream, file_stream

from appliance.errors import NotFound, Unauthorized
from appliance.storage.local import LocalStore

bp = Blueprint("files")


@bp.get("/files/<key:path>")
async def serve_file(request: Request, key: str) -> ResponseStream:
    store = request.app.ctx.runtime.store
    if not isinstance(store, LocalStore):
        raise NotFound("files are served by the object store")
    try:
        expires = int(request.args.get("expires", "0"))
    except ValueError:
        expires = 0
    if not store.verify(key, expires, request.args.get("sig", "")):
        raise Unauthorized("invalid or expired file signature")
    path = store.path_of(key)
    if not path.is_file():
        raise NotFound("no such file")
    # Range requests let a browser's <video> seek without downloading the whole file.
    content_range = ContentRangeHandler(request, await stat_async(path)) if "range" in request.headers else None
    response = await file_stream(path, mime_type=mime_of(request, key), _range=content_range)
    # Served as what the bytes were judged to be, never as what a browser guesses from them, and never
    # able to run script on this origin (should an operator allow a type that could carry some).
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    return response


def mime_of(request: Request, key: str) -> str:
    """An original's type is the sniffed one on its asset; variants carry their extension."""
    parts = key.split("/")
    if len(parts) == 3 and parts[0] == "assets" and parts[2] == "original":
        asset = request.app.ctx.runtime.assets.get(parts[1])
        if asset is not None:
            return str(asset.mime)
    return mimetypes.guess_type(key)[0] or "application/octet-stream"
