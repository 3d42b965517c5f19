"""Alerts on repeated webhook failures: a log line, an email and a POST, once per type per hour."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from appliance.config import AlertSettings, EmailSettings
from appliance.db.webhooks import WebhookLog
from appliance.email.templates import webhook_alert
from appliance.jobs.engine import JobContext, JobEngine
from appliance.webhooks.forward import Forwarder

log = logging.getLogger("ingestbox.alerts")
THRESHOLD = 3  # more failed attempts than this within an hour raise an alert


class WebhookAlerts:
    """Counts failed attempts per (source, type) and raises at most one alert per type per hour."""

    def __init__(
        self,
        webhook_log: WebhookLog,
        engine: JobEngine,
        alerts: AlertSettings,
        email: EmailSettings,
        forwarder: Forwarder,
    ) -> None:
        self.log = webhook_log
        self.engine = engine
        self.settings = alerts
        self.email = email
        self.forwarder = forwarder
        engine.register("webhook-handling", "alert.post")(self._post)

    def failed_attempt(self, source: str, type: str, error: str | None, now: float | None = None) -> bool:
        """Record one failed attempt; True if it raised an alert."""
        now = time.time() if now is None else now
        count = self.log.failure_and_count(source, type, now)
        if count <= THRESHOLD:
            return False
        message = f"{source} webhook {type!r} failed {count} times in the last hour; last error: {error}"
        if not self.log.claim_alert(source, type, message, now):
            return False
        log.error("ALERT: %s", message)
        alert = {"alert": "webhook_failures", "source": source, "type": type, "failures_last_hour": count,
                 "last_error": error, "message": message}
        if self.settings.url:
            self.engine.enqueue("webhook-handling", "alert.post", {"url": self.settings.url, "alert": alert})
        if self.settings.email_to:
            if self.email.smtp_host:
                mail = webhook_alert(source, type, count, error or "")
                self.engine.enqueue("email-sending", "email.send", {"to": self.settings.email_to, **mail})
            else:
                log.warning("alert email to %s not sent: [email] smtp_host is not configured", self.settings.email_to)
        return True

    def _post(self, payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        body = json.dumps(payload["alert"]).encode()
        status = self.forwarder.post(payload["url"], body, {"Content-Type": "application/json"})
        return {"status": status}
