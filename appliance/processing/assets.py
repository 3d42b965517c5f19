"""The `asset.process` job on file-processing: fetch the original, describe it, record the metadata."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from appliance.db.assets import AssetRecords
from appliance.jobs.engine import JobContext, JobEngine
from appliance.storage import ObjectStore
from transcode.describe import describe


def register_asset_processing(engine: JobEngine, assets: AssetRecords, store: ObjectStore, work_dir: Path) -> None:
    work_dir.mkdir(parents=True, exist_ok=True)

    @engine.register("file-processing", "asset.process")
    def process(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        asset = assets.get(payload["asset_id"])
        if asset is None:
            return {"skipped": "the asset no longer exists"}
        # Media libraries want a seekable file: a private temporary copy, removed after.
        with tempfile.NamedTemporaryFile(dir=work_dir, suffix=".original") as copy:
            with store.open_reader(asset.original_key) as reader:
                shutil.copyfileobj(reader, copy, 1024 * 1024)
            copy.flush()
            ctx.progress(50)
            metadata = describe(asset.kind, copy.name)
        assets.set_metadata(asset.id, metadata, engine.clock())
        return {"asset_id": asset.id, "metadata": metadata}
