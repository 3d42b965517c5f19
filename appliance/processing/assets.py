"""The `asset.process` job on file-processing: fetch the original, describe it, record the metadata."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.db.assets import AssetRecords
from appliance.jobs.engine import JobContext, JobEngine
from appliance.storage import ObjectStore
from transcode.describe import describe
from transcode.images import Thumbnail, image_thumbnails, pdf_thumbnails

THUMBNAIL_MAKERS: dict[str, Callable[[str], list[Thumbnail]]] = {"image": image_thumbnails, "pdf": pdf_thumbnails}
EXTENSIONS = {"image/jpeg": ".jpg", "image/webp": ".webp"}


PROCESS_KIND = "asset.process"


def register_asset_processing(engine: JobEngine, assets: AssetRecords, store: ObjectStore, work_dir: Path) -> None:
    work_dir.mkdir(parents=True, exist_ok=True)

    @engine.register("file-processing", PROCESS_KIND)
    def process(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        asset = assets.get(payload["asset_id"])
        if asset is None:
            return {"skipped": "the asset no longer exists"}
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
            for thumb in maker(copy.name) if maker else []:
                key = f"assets/{asset.id}/{thumb.name}{EXTENSIONS[thumb.mime]}"
                size = store.put_bytes(key, thumb.data, thumb.mime)
                assets.set_variant(asset.id, thumb.name, "completed", engine.clock(), key, thumb.mime,
                                   thumb.width, thumb.height, size)
                made.append(thumb.name)
        return {"asset_id": asset.id, "metadata": metadata, "variants": made}
