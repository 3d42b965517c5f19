"""Scheduler decisions: how many transcodes run at once and with how many threads, from cores and memory."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from appliance.config import QUEUE_NAMES, Settings
from appliance.jobs.engine import QueueSpec
from appliance.jobs.retry import RetryPolicy

DEFAULT_CONCURRENCY: dict[str, int | str] = {
    "file-processing": 3,
    "media-transcoding": "auto",
    "webhook-handling": 10,
    "email-sending": 5,
}
GiB = 1024**3
# A 1080p+720p+preview ladder from one decode peaks near 600 MB; leave room for the rest.
MEMORY_PER_TRANSCODE = 1 * GiB
CORES_PER_TRANSCODE = 4  # x264 scales well to about four threads per encode at 1080p


@dataclass(frozen=True, slots=True)
class SchedulerDecision:
    """What `auto` became on this machine, and why."""

    cores: int
    memory_bytes: int
    hardware_sessions: int
    transcode_concurrency: int
    threads_per_transcode: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def available_cores() -> int:
    """Cores this process may run on (affinity and cgroup-aware where the OS says so)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, psutil.cpu_count() or 1)


def decide(cores: int, memory_bytes: int, hardware_sessions: int = 0) -> SchedulerDecision:
    """Software transcodes share the cores so that threads roughly equal cores; hardware adds sessions."""
    by_cores = max(1, cores // CORES_PER_TRANSCODE)
    by_memory = max(1, memory_bytes // MEMORY_PER_TRANSCODE)
    software = min(by_cores, by_memory)
    concurrency = software + hardware_sessions
    threads = max(1, cores // software)
    bound = "cores" if by_cores <= by_memory else "memory"
    reason = (
        f"{cores} cores / {CORES_PER_TRANSCODE} per transcode and {memory_bytes / GiB:.1f} GiB / "
        f"{MEMORY_PER_TRANSCODE / GiB:.0f} GiB per transcode -> {software} software transcode(s) "
        f"(bound by {bound}) of {threads} thread(s) each"
        + (f", plus {hardware_sessions} hardware encoder session(s)" if hardware_sessions else "")
    )
    return SchedulerDecision(cores, memory_bytes, hardware_sessions, concurrency, threads, reason)


def decide_for_this_machine(hardware_sessions: int = 0) -> SchedulerDecision:
    return decide(available_cores(), psutil.virtual_memory().available, hardware_sessions)


def queue_specs(settings: Settings, decision: SchedulerDecision) -> dict[str, QueueSpec]:
    """The four queues of SPEC.md with configured or default concurrency and retry policy."""
    specs = {}
    for name in QUEUE_NAMES:
        configured = settings.queues.get(name)
        concurrency = configured.concurrency if configured.concurrency is not None else DEFAULT_CONCURRENCY[name]
        if concurrency == "auto":
            concurrency = decision.transcode_concurrency if name == "media-transcoding" else available_cores()
        policy = RetryPolicy(configured.max_attempts, configured.backoff_base_seconds, configured.backoff_factor)
        specs[name] = QueueSpec(name, int(concurrency), policy)
    return specs
