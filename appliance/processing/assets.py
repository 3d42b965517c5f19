"""The `asset.process` job on file-processing: describe the original, make its thumbnails, queue its transcode."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.db.assets import Asset, AssetRecords
from appliance.jobs.engine import JobContext, JobEngine
from appliance.processing.notify import AssetNotifier
from appliance.processing.transcoding import TRANSCODE_KIND
from appliance.storage import ObjectStore
from transcode.describe import describe
from transcode.frames import frame_image, still_time
from transcode.images import Thumbnail, image_thumbnails, pdf_thumbnails, thumbnails_of
from transcode.ladder import LADDER_NAMES

EXTENSIONS = {"image/jpeg": ".jpg", "image/webp": ".webp"}
PROCESS_KIND = "asset.process"


def video_thumbnails(path: str, metadata: dict[str, Any]) -> list[Thumbnail]:
    return thumbnails_of(frame_image(path, still_time(metadata.get("duration"))))


THUMBNAIL_MAKERS: dict[str, Callable[[str, dict[str, Any]], list[Thumbnail]]] = {
    "image": lambda path, _: image_thumbnails(path),
    "pdf": lambda path, _: pdf_thumbnails(path),
    "video": video_thumbnails,
}


def register_asset_processing(engine: JobEngine, assets: AssetRecords, store: ObjectStore, work_dir: Path,
                              notifier: AssetNotifier) -> None:
    work_dir.mkdir(parents=True, exist_ok=True)

    @engine.register("file-processing", PROCESS_KIND)
    def process(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        asset = assets.get(payload["asset_id"])
        if asset is None:
            return {"skipped": "the asset no longer exists"}
        try:
            result = describe_and_thumbnail(asset, ctx)
        except Exception as exc:
            if ctx.is_last_failure(exc):
                notifier.finished(asset.id, error=str(exc))
            raise
        if asset.kind == "video":
            queue_transcode(asset)  # the transcode job tells the user when the video is ready
        else:
            notifier.finished(asset.id)
        return result

    def describe_and_thumbnail(asset: Asset, ctx: JobContext) -> dict[str, Any]:
        # Media libraries want a seekable file: a private temporary copy, removed after.
        with tempfile.NamedTemporaryFile(dir=work_dir, suffix=".original") as copy:
            with store.open_reader(asset.original_key) as reader:
                shutil.copyfileobj(reader, copy, 1024 * 1024)
            copy.flush()
            ctx.progress(30)
            metadata = {**asset.metadata, **describe(asset.kind, copy.name)}
            assets.set_metadata(asset.id, metadata, engine.clock())
            ctx.progress(60)
            made = []
            maker = THUMBNAIL_MAKERS.get(asset.kind)
            for thumb in maker(copy.name, metadata) if maker else []:
                key = f"assets/{asset.id}/{thumb.name}{EXTENSIONS[thumb.mime]}"
                size = store.put_bytes(key, thumb.data, thumb.mime)
                assets.set_variant(asset.id, thumb.name, "completed", engine.clock(), key, thumb.mime,
                                   thumb.width, thumb.height, size)
                made.append(thumb.name)
        return {"asset_id": asset.id, "metadata": metadata, "variants": made}

    def queue_transcode(asset: Asset) -> None:
        """The transcode job and its rungs' `waiting` rows commit together (the job id dedupes a rerun)."""
        done = {v["name"] for v in assets.variants(asset.id)}

        def mark_waiting(conn: sqlite3.Connection) -> None:
            for name in LADDER_NAMES:
                if name not in done:
                    AssetRecords.set_variant_in(conn, asset.id, name, "waiting", engine.clock())

        engine.enqueue("media-transcoding", TRANSCODE_KIND, {"asset_id": asset.id}, job_id=f"transcode-{asset.id}",
                       also=mark_waiting)
