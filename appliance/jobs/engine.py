"""The job engine: enqueue with dedupe, in-process workers woken at enqueue, retries, recovery, pruning."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from queue import SimpleQueue
from typing import Any, Protocol

from appliance.db.database import Database
from appliance.db.jobs import Job, JobRecords, NewJob, Outcome, iso
from appliance.errors import BadRequest
from appliance.jobs.queues import DurableHuey, UnknownKind, make_queue
from appliance.jobs.retry import RetryPolicy, outage_delay

log = logging.getLogger("ingestbox.jobs")

DAY = 86400.0
PROGRESS_INTERVAL = 0.2  # seconds between progress writes of one job (the last one always goes)
BUSY_WINDOW = 0.002  # a dispatcher writing again within this is under load...
BATCH_PAUSE = 0.001  # ...and waits this long to batch what arrives meanwhile


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue as configured: name, how many jobs run at once, and its retry policy."""

    name: str
    concurrency: int
    policy: RetryPolicy


class AttemptObserver(Protocol):
    def attempt_finished(self, queue: str, kind: str, seconds: float, outcome: str) -> None: ...


class JobContext:
    """What a handler gets besides its payload: its id, attempt number and a progress reporter."""

    def __init__(
        self, engine: JobEngine, job_id: str, queue: str, attempt: int, max_attempts: int, outage_waits: int = 0
    ) -> None:
        self.engine = engine
        self.outage_waits = outage_waits
        self.job_id = job_id
        self.queue = queue
        self.attempt = attempt
        self.max_attempts = max_attempts
        self._last_progress = (-1, 0.0)

    def progress(self, percent: float) -> None:
        """Report 0-100; writes are throttled, a change to 100 always goes through."""
        value = max(0, min(100, int(percent)))
        last_value, last_at = self._last_progress
        now = time.monotonic()
        if value == last_value or (value < 100 and now - last_at < PROGRESS_INTERVAL):
            return
        self._last_progress = (value, now)
        job = self.engine.records.set_progress(self.job_id, value, self.engine.clock())
        if job is not None:
            self.engine.job_changed(job)

    def is_last_failure(self, exception: BaseException) -> bool:
        """Whether failing with `exception` sends this job to the DLQ (handlers tell users only then)."""
        return self.attempt >= self.max_attempts and self.engine.outage_wait(exception, self.outage_waits) is None


Handler = Callable[[dict[str, Any], JobContext], Any]


class UnknownQueue(BadRequest):
    code = "unknown_queue"


class JobEngine:
    """Runs the four queues in this process on durable records (at-least-once delivery)."""

    def __init__(
        self,
        db: Database,
        specs: Mapping[str, QueueSpec],
        clock: Callable[[], float] = time.time,
        dlq_retention_days: float = 7.0,
        completed_retention_days: float = 7.0,
        is_outage: Callable[[BaseException], bool] = lambda exc: False,
    ) -> None:
        """`is_outage(exc)`: the failure is a dependency being down (the object store), so the job
        waits for it to come back instead of spending its attempts (see storage/outage.py)."""
        self.records = JobRecords(db)
        self.clock = clock
        self.specs = dict(specs)
        self.dlq_retention_days = dlq_retention_days
        self.completed_retention_days = completed_retention_days
        self.is_outage = is_outage
        self.queues: dict[str, DurableHuey] = {name: make_queue(name, self) for name in self.specs}
        self.listeners: list[Callable[[Job], None]] = []
        self.prune_hooks: list[Callable[[float], Any]] = []  # more retention: prune_hooks(now)
        self.observers: list[AttemptObserver] = []
        self._conditions = {name: threading.Condition() for name in self.specs}
        self._signals = dict.fromkeys(self.specs, 0)
        self._free = dict.fromkeys(self.specs, 0)
        self._outcomes: dict[str, list[Outcome]] = {name: [] for name in self.specs}
        self._dispatching = dict.fromkeys(self.specs, False)
        self._tasks: dict[str, SimpleQueue[Job | None]] = {name: SimpleQueue() for name in self.specs}
        self._running: dict[str, dict[str, float]] = {name: {} for name in self.specs}
        self._running_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        # Producers on the event loop hand their writes to these threads (never block the loop).
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="enqueue")
        self._async_pending: list[tuple[NewJob, asyncio.Future[tuple[Job, bool] | Exception]]] = []
        self._async_flushing = False
        self._async_flusher: asyncio.Task[None] | None = None

    # --- registration and producers ---------------------------------------------------------

    def policy(self, queue: str) -> RetryPolicy:
        return self.specs[queue].policy

    def register(self, queue: str, kind: str) -> Callable[[Handler], Handler]:
        """Decorator: `fn(payload, ctx)` handles jobs of `kind` on `queue`."""
        huey = self.queues[queue]

        def decorator(fn: Handler) -> Handler:
            def run(payload: dict[str, Any], task: Any) -> Any:
                ctx = JobContext(self, task.id, queue, task.attempt, task.attempt + task.retries,
                                 getattr(task, "outage_waits", 0))
                return fn(payload, ctx)

            run.__name__ = kind
            huey.register_kind(kind, run)
            return fn

        return decorator

    def enqueue(
        self,
        queue: str,
        kind: str,
        payload: dict[str, Any],
        job_id: str | None = None,
        delay: float = 0.0,
        also: Callable[[sqlite3.Connection], Any] | None = None,
    ) -> tuple[Job, bool]:
        """Store a job durably and wake a worker. An existing `job_id` returns that job and False.

        `also(conn)` writes in the same transaction (see JobRecords.insert).
        """
        (outcome,) = self.enqueue_many([self.new_job(queue, kind, payload, job_id, delay, also)])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def new_job(
        self,
        queue: str,
        kind: str,
        payload: dict[str, Any],
        job_id: str | None = None,
        delay: float = 0.0,
        also: Callable[[sqlite3.Connection], Any] | None = None,
    ) -> NewJob:
        spec = self.specs.get(queue)
        if spec is None:
            raise UnknownQueue(f"unknown queue {queue!r}", allowed=sorted(self.specs))
        run_at = self.clock() + delay if delay else None
        return NewJob(job_id or str(uuid.uuid4()), queue, kind, payload, spec.policy.max_attempts, run_at, also)

    def enqueue_many(self, items: list[NewJob]) -> list[tuple[Job, bool] | Exception]:
        """Store several jobs in one transaction; each result is (job, created) or its own exception."""
        results = self.records.insert_many(items, self.clock())
        woken = set()
        for result in results:
            if isinstance(result, tuple) and result[1]:
                self.job_changed(result[0])
                woken.add(result[0].queue)
        for queue in woken:
            self._wake(queue)
        return results

    async def enqueue_async(
        self,
        queue: str,
        kind: str,
        payload: dict[str, Any],
        job_id: str | None = None,
        delay: float = 0.0,
        also: Callable[[sqlite3.Connection], Any] | None = None,
    ) -> tuple[Job, bool]:
        """`enqueue` from the event loop, without blocking it.

        Calls that arrive while a write is under way wait and go together in the next one:
        one thread hop and one transaction for a burst of webhooks, not one each.
        """
        item = self.new_job(queue, kind, payload, job_id, delay, also)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Job, bool] | Exception] = loop.create_future()
        self._async_pending.append((item, future))
        if not self._async_flushing:
            self._async_flushing = True
            self._async_flusher = loop.create_task(self._flush_async())  # a reference keeps it alive
        outcome = await future
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _flush_async(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._async_pending:
                batch, self._async_pending = self._async_pending, []
                try:
                    results = await loop.run_in_executor(
                        self._executor, self.enqueue_many, [item for item, _ in batch]
                    )
                except Exception as exc:  # the transaction itself failed: every caller hears it
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._async_flushing = False

    # --- the dead letter queue ------------------------------------------------------------

    def retry_dead(self, job_id: str) -> Job | None:
        job = self.records.revive(job_id, self.clock())
        if job is not None:
            log.info("dead job %s (%s) sent back to %s", job.id, job.kind, job.queue)
            self.job_changed(job)
            self._wake(job.queue)
        return job

    def discard_dead(self, job_id: str) -> bool:
        return self.records.delete_dead(job_id)

    def prune(self, now: float | None = None) -> tuple[int, int]:
        """Drop dead jobs past the DLQ retention and completed ones past theirs."""
        now = self.clock() if now is None else now
        for hook in self.prune_hooks:  # first: a hook may keep what it needs of the jobs pruned next
            hook(now)
        dead = self.records.purge_dead(now - self.dlq_retention_days * DAY)
        done = self.records.purge_completed(now - self.completed_retention_days * DAY)
        if dead or done:
            log.info("pruned %d dead and %d completed jobs", dead, done)
        return dead, done

    # --- state -----------------------------------------------------------------------------

    def active_count(self, queue: str) -> int:
        with self._running_lock:
            return len(self._running[queue])

    def job_changed(self, job: Job) -> None:
        for listener in self.listeners:
            try:
                listener(job)
            except Exception:
                log.exception("job listener failed")

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> int:
        """Recover jobs a dead process left active, then start the workers; return how many recovered."""
        self._stopping.clear()
        recovered = self.records.recover_interrupted(self.clock())
        for job in recovered:
            log.warning("job %s (%s on %s) was interrupted by a restart; it runs again", job.id, job.kind, job.queue)
        for name, spec in self.specs.items():
            self._free[name] = spec.concurrency
            self._dispatching[name] = True
            self._spawn(self._dispatch, name, f"{name}-dispatch")
            for index in range(spec.concurrency):
                self._spawn(self._work, name, f"{name}-{index}")
        self._spawn(self._prune_loop, None, "job-pruner")
        return len(recovered)

    def _spawn(self, target: Callable[..., None], queue: str | None, name: str) -> None:
        thread = threading.Thread(target=target, args=(queue,) if queue else (), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, grace: float) -> list[str]:
        """Take no more work, wait up to `grace` seconds for running jobs; return ids still running.

        Jobs still running when the grace ends stay `active` in the database and run again at
        the next start.
        """
        self._stopping.set()
        for cond in self._conditions.values():
            with cond:
                cond.notify_all()
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]
        self._executor.shutdown(wait=False)
        with self._running_lock:
            left = [job_id for running in self._running.values() for job_id in running]
        if left:
            log.warning("shutdown grace over with %d jobs running; they run again at next start", len(left))
        return left

    # --- dispatch and workers --------------------------------------------------------------

    def _wake(self, queue: str) -> None:
        cond = self._conditions[queue]
        with cond:
            self._signals[queue] += 1
            cond.notify()

    def _dispatch(self, queue: str) -> None:
        """One claimer per queue: records finished attempts and claims as many due jobs as there
        are idle workers, all in one write.

        Workers never touch the database themselves: ten threads racing for the same rows
        cost more in lock hand-offs than the jobs do, and folding "job A finished" into the
        write that claims job B halves the transactions per job.
        """
        cond = self._conditions[queue]
        tasks = self._tasks[queue]
        last_write = 0.0
        while not self._stopping.is_set():
            try:
                with cond:
                    while not self._outcomes[queue] and self._free[queue] == 0 and not self._stopping.is_set():
                        cond.wait()
                    outcomes, self._outcomes[queue] = self._outcomes[queue], []
                    free, seen = self._free[queue], self._signals[queue]
                if self._stopping.is_set():
                    with cond:
                        outcomes += self._outcomes[queue]
                        self._outcomes[queue] = []
                    self._settle(queue, outcomes, claim=0)
                    break
                if time.monotonic() - last_write < BUSY_WINDOW:
                    # Busy queue: let a little more arrive so one write settles and claims many
                    # (at low rates this never triggers, so pickup latency stays sub-millisecond).
                    time.sleep(BATCH_PAUSE)
                    with cond:
                        outcomes += self._outcomes[queue]
                        self._outcomes[queue] = []
                        free = self._free[queue]
                last_write = time.monotonic()
                claimed = self._settle(queue, outcomes, claim=free)
                if claimed:
                    with cond:
                        self._free[queue] -= len(claimed)
                    for job in claimed:
                        tasks.put(job)
                    continue
                if outcomes:
                    continue
                next_at = self.records.next_run_at(queue)
                timeout = None if next_at is None else max(0.0, next_at - self.clock())
                with cond:
                    if self._signals[queue] == seen and not self._stopping.is_set():
                        cond.wait(timeout)
            except Exception:
                # The claimer must survive anything (a locked database, a bad row): log and go on.
                log.exception("dispatcher of %s hit an error; continuing", queue)
                self._stopping.wait(0.5)
        with cond:
            self._dispatching[queue] = False  # from now on, finishing workers write their own outcomes
            late, self._outcomes[queue] = self._outcomes[queue], []
        self._settle(queue, late, claim=0)
        for _ in range(self.specs[queue].concurrency):
            tasks.put(None)

    def _settle(self, queue: str, outcomes: list[Outcome], claim: int) -> list[Job]:
        """Write outcomes (and claim), then tell listeners; returns the claimed jobs."""
        if not outcomes and not claim:
            return []
        settled, claimed = self.records.settle_and_claim(queue, outcomes, self.clock(), claim)
        postponed = {outcome.job_id for outcome in outcomes if outcome.state == "postponed"}  # logged already
        for job in settled:
            if job.id not in postponed:
                self._log_outcome(job)
            self.job_changed(job)
        for job in claimed:
            self.job_changed(job)
        return claimed

    @staticmethod
    def _log_outcome(job: Job) -> None:
        if job.state == "dead":
            log.error("job %s (%s) is dead after %d attempt(s): %s", job.id, job.kind, job.attempts, job.error)
        elif job.state == "retrying":
            log.warning("job %s (%s) attempt %d failed, retry at %s: %s",
                        job.id, job.kind, job.attempts, iso(job.run_at), job.error)

    def _work(self, queue: str) -> None:
        huey = self.queues[queue]
        tasks = self._tasks[queue]
        cond = self._conditions[queue]
        while True:
            job = tasks.get()
            if job is None:
                return
            try:
                self._run(huey, huey.task_for(job))
            except Exception:
                log.exception("worker %s hit an error running %s; continuing", threading.current_thread().name, job.id)
            finally:
                with cond:
                    self._free[queue] += 1
                    cond.notify()

    def _run(self, huey: DurableHuey, task: Any) -> None:
        queue = huey.queue
        with self._running_lock:
            self._running[queue][task.id] = time.monotonic()
        started = time.monotonic()
        try:
            if isinstance(task, UnknownKind):
                error = f"no handler for job kind {task.kind!r}"
                self._finish(queue, Outcome(task.id, "dead", self.clock(), error=error, traceback=""))
                outcome = "dead"
            else:
                huey.execute(task)
                outcome = getattr(task, "outcome", "completed")
        finally:
            with self._running_lock:
                self._running[queue].pop(task.id, None)
        kind = getattr(task, "kind", None) or task.name
        for observer in self.observers:
            observer.attempt_finished(queue, kind, time.monotonic() - started, outcome)

    def task_finished(self, task: Any, value: Any, exception: BaseException | None) -> None:
        """Huey's post-execute hook: hand the attempt's outcome to the queue's dispatcher."""
        queue: str = task.queue
        now = self.clock()
        wait = self.outage_wait(exception, getattr(task, "outage_waits", 0))
        if exception is None:
            outcome = Outcome(task.id, "completed", now, result=value)
        elif wait is not None:
            error = f"waiting for storage ({wait:g}s): {type(exception).__name__}: {exception}"
            log.warning("job %s (%s): the object store is unavailable; trying again in %gs without spending an"
                        " attempt: %s", task.id, task.name, wait, exception)
            trace = "".join(traceback.format_exception(exception))
            outcome = Outcome(task.id, "postponed", now, error=error, traceback=trace, retry_at=now + wait)
        elif task.retries:  # Huey retries while retries are left
            retry_at = now + self.policy(queue).delay_after(task.attempt)
            error = f"{type(exception).__name__}: {exception}"
            trace = "".join(traceback.format_exception(exception))
            outcome = Outcome(task.id, "retrying", now, error=error, traceback=trace, retry_at=retry_at)
        else:
            error = f"{type(exception).__name__}: {exception}"
            trace = "".join(traceback.format_exception(exception))
            outcome = Outcome(task.id, "dead", now, error=error, traceback=trace)
        task.outcome = outcome.state
        self._finish(queue, outcome)

    def outage_wait(self, exception: BaseException | None, outage_waits: int) -> float | None:
        """Seconds a job failed by an outage waits (not an attempt), or None when the failure counts."""
        if exception is None or not self.is_outage(exception):
            return None
        return outage_delay(outage_waits)

    def _finish(self, queue: str, outcome: Outcome) -> None:
        cond = self._conditions[queue]
        with cond:
            if self._dispatching[queue]:
                # The dispatcher writes it with its next claim; if the process dies first, the
                # job is still active on disk and runs again (at-least-once).
                self._outcomes[queue].append(outcome)
                self._signals[queue] += 1
                cond.notify()
                return
        self._settle(queue, [outcome], claim=0)  # no dispatcher (stopping, or driven by hand)

    def _prune_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.prune()
            except Exception:
                log.exception("pruning jobs failed; trying again in an hour")
            self._stopping.wait(3600)
