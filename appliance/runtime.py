"""The services one ingestbox process runs, built from settings: database, store, job engine, probes."""

from __future__ import annotations

import dataclasses
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import huey
import psutil
import sanic

from appliance import __version__
from appliance.config import Settings
from appliance.db import Database
from appliance.db.assets import AssetRecords
from appliance.db.webhooks import WebhookLog
from appliance.email.smtp import register_email
from appliance.jobs.engine import JobEngine
from appliance.jobs.events import EventHub
from appliance.jobs.scheduler import SchedulerDecision, decide_for_this_machine, queue_specs
from appliance.metrics import Metrics
from appliance.processing.assets import register_asset_processing
from appliance.processing.notify import AssetNotifier
from appliance.processing.transcoding import TranscodePolicy, register_transcoding
from appliance.secrets import ensure_api_token
from appliance.selftest import register_selftest
from appliance.storage import ObjectStore, open_store
from appliance.storage.factory import data_secret
from appliance.storage.outage import is_storage_outage
from appliance.uploads.janitor import sweep_leftovers
from appliance.webhooks.alerts import WebhookAlerts
from appliance.webhooks.forward import Forwarder
from appliance.webhooks.processing import WebhookProcessor
from hwaccel.backends import Quality
from hwaccel.probe import HwaccelReport, probe_all

log = logging.getLogger("ingestbox")


def versions() -> dict[str, str]:
    return {
        "ingestbox": __version__,
        "python": platform.python_version(),
        "pyav": av.__version__,
        "ffmpeg": str(getattr(av, "ffmpeg_version_info", "unknown")),
        "sanic": sanic.__version__,
        "huey": huey.__version__,
    }


@dataclass
class Runtime:
    """Everything a request handler or a job may need, made once per process (never global)."""

    settings: Settings
    db: Database
    store: ObjectStore
    engine: JobEngine
    events: EventHub
    metrics: Metrics
    hwaccel: HwaccelReport
    scheduler: SchedulerDecision
    token_file: Path | None
    webhook_log: WebhookLog
    webhooks: WebhookProcessor
    assets: AssetRecords
    started_at: float = field(default_factory=time.time)

    @property
    def tokens(self) -> list[str]:
        return self.settings.server.api_tokens

    def system(self) -> dict[str, Any]:
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(str(self.settings.server.data_dir))
        return {
            "hwaccel": self.hwaccel.to_dict(),
            "cores": self.scheduler.cores,
            "cpu_percent": psutil.cpu_percent(interval=None),
            "memory": {"total": memory.total, "available": memory.available},
            "disk": {"path": str(self.settings.server.data_dir), "total": disk.total, "free": disk.free},
            "scheduler": self.scheduler.to_dict(),
            "queues": {
                name: {"concurrency": spec.concurrency, "retry": spec.policy.describe()}
                for name, spec in self.engine.specs.items()
            },
            "storage": self.store.describe(),
            "data_dir": str(self.settings.server.data_dir),
            "config": self.settings.source,
            "versions": versions(),
            "uptime_seconds": round(time.time() - self.started_at, 1),
        }

    def start(self) -> None:
        sweep_leftovers(self.store, self.assets)
        recovered = self.engine.start()
        if recovered:
            log.warning("recovered %d interrupted job(s); they run again", recovered)

    def stop(self) -> None:
        """Stop taking work, give running jobs the grace period, close the database."""
        left = self.engine.stop(self.settings.server.shutdown_grace_seconds)
        if left:
            log.warning("left %d job(s) active for the next start: %s", len(left), ", ".join(left))
        self.db.close()


def build_runtime(
    settings: Settings, probe_hardware: bool = True, hwaccel: HwaccelReport | None = None,
    transcode_runner: Callable[..., Any] | None = None,
) -> Runtime:
    """`hwaccel` replaces the probe (a report made earlier, or one a test wants); `transcode_runner`
    replaces the child process that runs a ladder (tests inject faults with it)."""
    data_dir = settings.server.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    token_file = ensure_api_token(settings)
    db = Database(data_dir / "ingestbox.db", synchronous=settings.server.db_synchronous)
    store = open_store(settings)
    if hwaccel is not None:
        hw = hwaccel
    else:
        hw = probe_all(settings.hwaccel.mode, list(settings.hwaccel.prefer)) if probe_hardware else probe_all("off")
    hardware_sessions = 0 if hw.chosen in ("libx264", "none") else 2
    decision = decide_for_this_machine(hardware_sessions)
    engine = JobEngine(
        db,
        queue_specs(settings, decision),
        dlq_retention_days=settings.dlq.retention_days,
        completed_retention_days=settings.jobs.completed_retention_days,
        is_outage=is_storage_outage,
    )
    events = EventHub()
    metrics = Metrics()
    engine.listeners.append(events.publish)
    engine.listeners.append(metrics.job_changed)
    engine.observers.append(metrics)
    metrics.watch_queues(engine.records, {name: spec.concurrency for name, spec in engine.specs.items()})
    register_selftest(engine)
    register_email(engine, settings.email)
    webhook_log = WebhookLog(db)
    forwarder = Forwarder()
    alerts = WebhookAlerts(webhook_log, engine, settings.alerts, settings.email, forwarder)
    webhooks = WebhookProcessor(webhook_log, engine, settings.webhooks, alerts, forwarder)
    assets = AssetRecords(db)
    callback_secret = settings.uploads.callback_secret or data_secret(data_dir, "callback-secret").hex()
    notifier = AssetNotifier(engine, assets, store, forwarder, callback_secret, bool(settings.email.smtp_host))
    register_asset_processing(engine, assets, store, data_dir / "work", notifier)
    policy = TranscodePolicy(
        hw, Quality(settings.transcode.crf, settings.transcode.preset), decision.threads_per_transcode,
        settings.transcode.min_free_memory_mb * 1024 * 1024, settings.hwaccel.hybrid_decode,
    )
    if transcode_runner is not None:
        policy = dataclasses.replace(policy, runner=transcode_runner)
    register_transcoding(engine, assets, store, data_dir / "work", policy, metrics, notifier)
    return Runtime(
        settings, db, store, engine, events, metrics, hw, decision, token_file, webhook_log, webhooks, assets
    )
