"""The `webhook.process` job: built-in handlers, forwarding, and the log's status kept in step."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from appliance.config import WebhookSettings
from appliance.db.jobs import Job
from appliance.db.webhooks import WebhookEvent, WebhookLog
from appliance.jobs.engine import JobContext, JobEngine
from appliance.webhooks.alerts import WebhookAlerts
from appliance.webhooks.forward import Forwarder

log = logging.getLogger("ingestbox.webhooks")
KIND = "webhook.process"
QUEUE = "webhook-handling"
PAYMENT_PREFIXES = ("payment_intent.", "charge.", "invoice.")
PAYMENT_TYPES = ("checkout.session.completed",)


def is_payment_event(event_type: str) -> bool:
    return event_type.startswith(PAYMENT_PREFIXES) or event_type in PAYMENT_TYPES


class WebhookProcessor:
    """Runs stored webhooks: record payments, forward, and mirror job states into the log."""

    def __init__(
        self, webhook_log: WebhookLog, engine: JobEngine, settings: WebhookSettings, alerts: WebhookAlerts,
        forwarder: Forwarder,
    ) -> None:
        self.log = webhook_log
        self.engine = engine
        self.settings = settings
        self.alerts = alerts
        self.forwarder = forwarder
        engine.register(QUEUE, KIND)(self.process)
        engine.listeners.append(self.job_changed)
        engine.prune_hooks.append(self.prune)

    def process(self, payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        event = self.log.get(payload["event_id"])
        if event is None:
            return {"skipped": "the event left the webhook log (retention) before it ran"}
        result: dict[str, Any] = {}
        if event.source == "stripe" and is_payment_event(event.type):
            data = json.loads(event.body).get("data", {}).get("object", {})
            self.log.record_payment(event.id, event.type, data if isinstance(data, dict) else {}, self.engine.clock())
            result["payment_recorded"] = True
        target = self.settings.stripe if event.source == "stripe" else self.settings.github
        if target.forward_to:
            result["forwarded"] = self.forwarder.forward(event, target.forward_to, target.forward_secret)
        return result

    def job_changed(self, job: Job) -> None:
        """Engine listener: failed attempts count towards alerts (the log reads states by a join)."""
        if job.kind != KIND or job.state not in ("retrying", "dead"):
            return
        event_id = job.payload.get("event_id")
        event = self.log.get(event_id) if isinstance(event_id, str) else None
        if event is not None:
            self.alerts.failed_attempt(event.source, event.type, job.error)

    def replay(self, event: WebhookEvent) -> Job:
        """Run a logged event again under a new job id (the event id itself deduplicates)."""
        job_id = f"{event.id}:replay:{uuid.uuid4().hex[:12]}"
        self.log.set_job(event.id, job_id, self.engine.clock())
        job, _ = self.engine.enqueue(QUEUE, KIND, {"event_id": event.id, "replay": True}, job_id=job_id)
        return job

    def prune(self, now: float) -> None:
        self.log.snapshot_finished()
        removed = self.log.prune(now - self.settings.retention_days * 86400)
        if removed:
            log.info("pruned %d webhooks past retention", removed)
