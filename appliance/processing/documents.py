"""The JSON an asset is shown as: by GET /v1/assets/{id}, in callbacks and in notification emails."""

from __future__ import annotations

from typing import Any

from appliance.db.assets import Asset, AssetRecords
from appliance.storage import ObjectStore

VARIANT_FIELDS = ("state", "mime", "width", "height", "size")


def asset_document(assets: AssetRecords, store: ObjectStore, asset: Asset) -> dict[str, Any]:
    variants = {}
    for variant in assets.variants(asset.id):
        entry = {key: variant[key] for key in VARIANT_FIELDS}
        entry.update(variant["detail"])  # duration, codec, encoder; a skipped rung's reason
        if variant["state"] == "completed" and variant["key"]:
            entry["url"] = store.url(variant["key"])
        variants[variant["name"]] = entry
    return {
        "id": asset.id, "kind": asset.kind, "mime": asset.mime, "size": asset.size, "sha256": asset.sha256,
        "filename": asset.filename, "metadata": asset.metadata, "url": store.url(asset.original_key),
        "job_id": asset.job_id, "variants": variants,
    }
