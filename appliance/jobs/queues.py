"""Huey instances from one factory, each backed by the durable jobs table instead of a delete-on-read queue."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from huey import Huey
from huey.storage import MemoryStorage

from appliance.db.jobs import Job

if TYPE_CHECKING:
    from appliance.jobs.engine import JobEngine


class UnknownKind:
    """Stands in for a claimed job whose kind no handler serves (say, enqueued by a newer version)."""

    def __init__(self, job_id: str, kind: str, attempt: int) -> None:
        self.id = job_id
        self.kind = kind
        self.attempt = attempt


class DurableHuey(Huey):
    """A Huey whose queue is the engine's durable job records.

    Huey keeps what it is good at: the task registry and `execute`, which runs a task,
    decides whether a failure is retried and calls the hooks. Dequeue marks a row active
    instead of deleting it, so a job that was running when the process died is still
    there at the next start. Outcomes are written by the engine's post-execute hook, so
    Huey's own re-enqueue and schedule calls have nothing left to do. Revocations and
    locks stay in Huey's memory storage: they need not outlive the process.
    """

    storage_class = MemoryStorage

    def __init__(self, queue: str, engine: JobEngine) -> None:
        super().__init__(name=queue, results=False, utc=True)
        self.queue = queue
        self.engine = engine
        self.kinds: dict[str, type[Any]] = {}
        self.post_execute(name="durable-outcome")(engine.task_finished)

    def register_kind(self, kind: str, func: Callable[..., Any]) -> None:
        wrapper = self.task(name=kind, context=True)(func)
        self.kinds[kind] = wrapper.task_class

    def dequeue(self) -> Any:
        """Claim the next due job and build its Huey task, or return None."""
        jobs = self.engine.records.claim(self.queue, self.engine.clock())
        if not jobs:
            return None
        self.engine.job_changed(jobs[0])
        return self.task_for(jobs[0])

    def task_for(self, job: Job) -> Any:
        """The Huey task that runs a claimed job (retries left = attempts left)."""
        task_class = self.kinds.get(job.kind)
        if task_class is None:
            return UnknownKind(job.id, job.kind, job.attempts)
        task = task_class(args=(job.payload,), id=job.id, retries=job.max_attempts - job.attempts)
        task.attempt = job.attempts
        task.outage_waits = job.outage_waits
        task.queue = self.queue
        return task

    def enqueue(self, task: Any) -> None:
        """Huey's re-enqueue of a failed task: already recorded as retrying by the hook."""

    def add_schedule(self, task: Any) -> None:
        """Huey's delayed retry: already recorded with its run_at by the hook."""


def make_queue(queue: str, engine: JobEngine) -> DurableHuey:
    """The one factory for queue instances (a later multi-node mode swaps the backend here)."""
    return DurableHuey(queue, engine)
