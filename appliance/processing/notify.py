"""When an asset is finished or has failed: a signed POST to its callback_url and a mail to its notify_email."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

from appliance.db.assets import AssetRecords
from appliance.email.templates import asset_failed, asset_ready
from appliance.jobs.engine import JobContext, JobEngine
from appliance.processing.documents import asset_document
from appliance.storage import ObjectStore
from appliance.webhooks.forward import Forwarder

log = logging.getLogger("ingestbox.notify")
CALLBACK_KIND = "asset.callback"
SIGNATURE_HEADER = "X-Ingestbox-Signature"


def sign_callback(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>`: the receiver recomputes it and checks the age."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class AssetNotifier:
    """Queues the callback (on webhook-handling) and the mail (on email-sending); both retry like any job."""

    def __init__(self, engine: JobEngine, assets: AssetRecords, store: ObjectStore, forwarder: Forwarder,
                 secret: str, email_configured: bool) -> None:
        self.engine, self.assets, self.store, self.forwarder = engine, assets, store, forwarder
        self.secret, self.email_configured = secret, email_configured
        engine.register("webhook-handling", CALLBACK_KIND)(self._post_callback)

    def finished(self, asset_id: str, error: str | None = None) -> None:
        """Called once the asset's last job has completed (error None) or died (error set). Ids dedupe reruns."""
        asset = self.assets.get(asset_id)
        if asset is None:
            return
        status = "failed" if error else "completed"
        if asset.callback_url:
            self.engine.enqueue("webhook-handling", CALLBACK_KIND,
                                {"asset_id": asset.id, "status": status, "error": error},
                                job_id=f"callback-{status}-{asset.id}")
        if asset.notify_email:
            if not self.email_configured:
                log.warning("no mail for asset %s: [email] smtp_host is not configured", asset.id)
                return
            document = asset_document(self.assets, self.store, asset)
            mail = asset_failed(document, error) if error else asset_ready(document)
            self.engine.enqueue("email-sending", "email.send", {"to": [asset.notify_email], **mail},
                                job_id=f"notify-{status}-{asset.id}")

    def _post_callback(self, payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        asset = self.assets.get(payload["asset_id"])
        if asset is None or not asset.callback_url:
            return {"skipped": "the asset or its callback_url is gone"}
        body = json.dumps({
            "event": f"asset.{payload['status']}", "error": payload.get("error"),
            "asset": asset_document(self.assets, self.store, asset),
        }).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "ingestbox-callback",
            "X-Ingestbox-Event": f"asset.{payload['status']}",
            SIGNATURE_HEADER: sign_callback(self.secret, int(time.time()), body),
        }
        status = self.forwarder.post(asset.callback_url, body, headers)
        return {"url": asset.callback_url, "status": status}
