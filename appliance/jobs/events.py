"""Fan-out of job changes from worker threads to WebSocket subscribers on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from appliance.db.jobs import Job

log = logging.getLogger("ingestbox.events")
SUBSCRIBER_BUFFER = 1000


class Subscription:
    """One WebSocket's feed; `job_id` narrows it to one job."""

    def __init__(self, job_id: str | None) -> None:
        self.job_id = job_id
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SUBSCRIBER_BUFFER)
        self.dropped = 0

    def offer(self, event: dict[str, Any]) -> None:
        if self.job_id is not None and event["job"]["id"] != self.job_id:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # A slow client loses events rather than the server its memory; it can re-read /v1/jobs.
            self.dropped += 1


class EventHub:
    """`publish` is thread-safe and costs nothing while nobody listens."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self, job_id: str | None = None) -> Subscription:
        subscription = Subscription(job_id)
        with self._lock:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    def publish(self, job: Job) -> None:
        if not self._subscriptions or self._loop is None:
            return
        event = {"type": "job", "job": job.to_dict()}
        with contextlib.suppress(RuntimeError):  # the loop has closed during shutdown
            self._loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: dict[str, Any]) -> None:
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription.offer(event)
