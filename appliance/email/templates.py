"""The mails ingestbox sends, each as plain text and HTML (every user-supplied value escaped in the HTML)."""

from __future__ import annotations

import html
from typing import Any


def _links(variants: dict[str, Any]) -> list[tuple[str, str]]:
    return [(name, v["url"]) for name, v in sorted(variants.items()) if v.get("state") == "completed" and v.get("url")]


def _html(title: str, paragraphs: list[str], links: list[tuple[str, str]]) -> str:
    items = "".join(f'<li><a href="{html.escape(url)}">{html.escape(name)}</a></li>' for name, url in links)
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (f"<!doctype html><html><body><h2>{html.escape(title)}</h2>{body}"
            + (f"<ul>{items}</ul>" if items else "") + "</body></html>")


def asset_ready(document: dict[str, Any]) -> dict[str, str]:
    """"Your video is ready" (or file), with a link per finished variant."""
    name = document.get("filename") or document["id"]
    noun = "video" if document["kind"] == "video" else "file"
    links = _links(document["variants"])
    lines = [f"Your {noun} {name} is ready.", "", *[f"{label}: {url}" for label, url in links]]
    return {
        "subject": f"Your {noun} {name} is ready",
        "text": "\n".join(lines) + "\n",
        "html": _html(f"Your {noun} is ready", [f"{name} has been processed."], links),
    }


def asset_failed(document: dict[str, Any], error: str) -> dict[str, str]:
    name = document.get("filename") or document["id"]
    text = f"Processing {name} failed after every retry.\n\nReason: {error}\nAsset id: {document['id']}\n"
    return {
        "subject": f"Processing {name} failed",
        "text": text,
        "html": _html("Processing failed", [f"Processing {name} failed after every retry.", f"Reason: {error}",
                                            f"Asset id: {document['id']}"], []),
    }


def webhook_alert(source: str, event_type: str, failures: int, last_error: str) -> dict[str, str]:
    text = (f"The {source} webhook {event_type!r} failed {failures} times in the last hour.\n"
            f"Last error: {last_error}\n\nSee the webhook log and the dead letter queue on the status page.\n")
    return {
        "subject": f"[ingestbox] {source} webhook {event_type} is failing",
        "text": text,
        "html": _html("Webhooks failing", text.splitlines(), []),
    }
