"""Prometheus metrics on a per-app registry: job counters and durations, queue gauges read at scrape."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from appliance.db.jobs import Job, JobRecords

DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600)


class QueueGauges(Collector):
    """Active, waiting and dead per queue, read from the job records when scraped."""

    def __init__(self, records: JobRecords, queues: list[str], concurrency: dict[str, int]) -> None:
        self.records = records
        self.queues = queues
        self.concurrency = concurrency

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = time.time()
        gauges = {
            name: GaugeMetricFamily(f"ingestbox_queue_{name}", help_text, labels=["queue"])
            for name, help_text in (
                ("active", "Jobs running now"),
                ("waiting", "Jobs waiting or waiting to retry"),
                ("dead", "Jobs in the dead letter queue"),
                ("concurrency", "Jobs the queue runs at once"),
            )
        }
        for queue in self.queues:
            counts = self.records.counts(queue, now)
            gauges["active"].add_metric([queue], counts.active)
            gauges["waiting"].add_metric([queue], counts.waiting)
            gauges["dead"].add_metric([queue], counts.dead)
            gauges["concurrency"].add_metric([queue], self.concurrency[queue])
        yield from gauges.values()


class Metrics:
    """Everything /metrics shows; one instance per app, so tests never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs_enqueued = Counter(
            "ingestbox_jobs_enqueued_total", "Jobs enqueued", ["queue"], registry=self.registry
        )
        self.job_attempts = Counter(
            "ingestbox_job_attempts_total",
            "Finished job attempts by outcome (completed, retrying, dead)",
            ["queue", "outcome"],
            registry=self.registry,
        )
        self.job_duration = Histogram(
            "ingestbox_job_duration_seconds",
            "Time a job attempt ran",
            ["queue"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )

        self.webhooks = Counter(
            "ingestbox_webhooks_total",
            "Webhooks received, by source, event type and outcome (accepted, duplicate, rejected)",
            ["source", "type", "outcome"],
            registry=self.registry,
        )

        self.upload_bytes = Counter(
            "ingestbox_upload_bytes_total", "Bytes of accepted uploads", registry=self.registry
        )
        self.transcode_seconds = Histogram(
            "ingestbox_transcode_seconds",
            "Wall time of a finished transcode, by encoder (libx264, nvenc, qsv, vaapi)",
            ["encoder"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.encoder_fallbacks = Counter(
            "ingestbox_encoder_fallbacks_total",
            "Transcodes that fell back from one encoder to the next",
            ["from_encoder", "to_encoder"],
            registry=self.registry,
        )

    def watch_queues(self, records: JobRecords, concurrency: dict[str, int]) -> None:
        self.registry.register(QueueGauges(records, list(concurrency), concurrency))

    def job_changed(self, job: Job) -> None:
        if job.state == "waiting" and job.attempts == 0 and job.created_at == job.updated_at:
            self.jobs_enqueued.labels(job.queue).inc()

    def attempt_finished(self, queue: str, kind: str, seconds: float, outcome: str) -> None:
        self.job_attempts.labels(queue, outcome).inc()
        self.job_duration.labels(queue).observe(seconds)
