"""Sending one message over SMTP (STARTTLS, login) as the `email.send` job."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Any

from appliance.config import EmailSettings
from appliance.jobs.engine import JobContext, JobEngine


class EmailNotConfigured(RuntimeError):
    """[email] smtp_host is not set."""


def build_message(settings: EmailSettings, payload: dict[str, Any]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = ", ".join(payload["to"])
    message["Subject"] = payload["subject"]
    message.set_content(payload["text"])
    if payload.get("html"):
        message.add_alternative(payload["html"], subtype="html")
    return message


def send(settings: EmailSettings, payload: dict[str, Any]) -> dict[str, Any]:
    if not settings.smtp_host:
        raise EmailNotConfigured("[email] smtp_host is not configured")
    message = build_message(settings, payload)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout_seconds) as smtp:
        if settings.starttls:
            smtp.starttls()
        if settings.username and settings.password:
            smtp.login(settings.username, settings.password)
        refused = smtp.send_message(message)
    return {"sent_to": payload["to"], "refused": sorted(refused)}


def register_email(engine: JobEngine, settings: EmailSettings) -> None:
    @engine.register("email-sending", "email.send")
    def send_email(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return send(settings, payload)
