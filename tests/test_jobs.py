"""The job engine on a real SQLite file: dedupe, retries with backoff, dead letters, recovery, pruning."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.db import Database
from appliance.jobs.engine import JobContext, JobEngine, QueueSpec
from appliance.jobs.retry import RetryPolicy

DAY = 86400.0


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "jobs.db")
    yield database
    database.close()


def make_engine(db: Database, policy: RetryPolicy | None = None, **kwargs: Any) -> JobEngine:
    spec = QueueSpec("work", 4, policy or RetryPolicy())
    return JobEngine(db, {"work": spec}, **kwargs)


def test_retry_policy_waits() -> None:
    policy = RetryPolicy(max_attempts=4, backoff_base_seconds=1, backoff_factor=4)
    assert [policy.delay_after(n) for n in (1, 2, 3)] == [1, 4, 16]
    assert policy.describe() == "4 attempts; waits 1s, 4s, 16s; then the dead letter queue"


def test_duplicate_job_id_enqueues_once(db: Database) -> None:
    engine = make_engine(db)
    runs: list[str] = []

    @engine.register("work", "count")
    def count(payload: dict[str, Any], ctx: JobContext) -> None:
        runs.append(ctx.job_id)

    first, created = engine.enqueue("work", "count", {"n": 1}, job_id="evt_123")
    again, created_again = engine.enqueue("work", "count", {"n": 2}, job_id="evt_123")
    assert created and not created_again
    assert again.id == first.id and again.payload == {"n": 1}
    engine.start()
    try:
        wait_for(lambda: engine.records.get("evt_123").state == "completed")  # type: ignore[union-attr]
        time.sleep(0.2)
        assert runs == ["evt_123"]
        # a duplicate after completion still returns the existing job and runs nothing
        job, created = engine.enqueue("work", "count", {}, job_id="evt_123")
        assert not created and job.state == "completed"
        time.sleep(0.2)
        assert runs == ["evt_123"]
    finally:
        engine.stop(2)


def test_retries_wait_1s_then_4s_then_dead(db: Database) -> None:
    engine = make_engine(db)
    starts: list[float] = []

    @engine.register("work", "flaky")
    def flaky(payload: dict[str, Any], ctx: JobContext) -> None:
        starts.append(time.monotonic())
        raise ConnectionError(f"downstream refused attempt {ctx.attempt}")

    engine.start()
    try:
        engine.enqueue("work", "flaky", {}, job_id="j-flaky")
        wait_for(lambda: engine.records.get("j-flaky").state == "dead", timeout=20)  # type: ignore[union-attr]
    finally:
        engine.stop(2)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 3
    # Lower bounds are what the scheduler guarantees; the upper ones only tell each wait from the
    # next step of the backoff (4 s, 16 s), so a busy machine cannot make this test flaky.
    assert 0.95 <= gaps[0] < 4.0, gaps
    assert 3.95 <= gaps[1] < 16.0, gaps
    job = engine.records.get("j-flaky")
    assert job is not None
    assert job.attempts == 3 and job.max_attempts == 3
    assert job.error == "ConnectionError: downstream refused attempt 3"
    assert "Traceback" in (job.traceback or "") and "flaky" in (job.traceback or "")
    counts = engine.records.counts("work", time.time())
    assert (counts.dead, counts.failed_24h, counts.completed_24h) == (1, 3, 0)
    assert [j.id for j in engine.records.list_dead()] == ["j-flaky"]


def test_dlq_retry_runs_the_job_again(db: Database) -> None:
    engine = make_engine(db, RetryPolicy(max_attempts=1))
    healed = threading.Event()

    @engine.register("work", "needs-fix")
    def needs_fix(payload: dict[str, Any], ctx: JobContext) -> str:
        if not healed.is_set():
            raise RuntimeError("not yet")
        return "fixed"

    engine.start()
    try:
        engine.enqueue("work", "needs-fix", {}, job_id="j-fix")
        wait_for(lambda: engine.records.get("j-fix").state == "dead")  # type: ignore[union-attr]
        healed.set()
        revived = engine.retry_dead("j-fix")
        assert revived is not None and revived.state == "waiting" and revived.attempts == 0
        wait_for(lambda: engine.records.get("j-fix").state == "completed")  # type: ignore[union-attr]
        assert engine.records.get("j-fix").result == "fixed"  # type: ignore[union-attr]
        assert engine.retry_dead("j-fix") is None  # no longer dead
    finally:
        engine.stop(2)


def test_discard_dead(db: Database) -> None:
    engine = make_engine(db, RetryPolicy(max_attempts=1))
    engine.register("work", "boom")(lambda payload, ctx: 1 / 0)
    engine.start()
    try:
        engine.enqueue("work", "boom", {}, job_id="j-boom")
        wait_for(lambda: engine.records.get("j-boom").state == "dead")  # type: ignore[union-attr]
        assert engine.discard_dead("j-boom")
        assert engine.records.get("j-boom") is None
        assert not engine.discard_dead("j-boom")
    finally:
        engine.stop(2)


def test_dlq_pruned_after_retention_with_injected_clock(db: Database) -> None:
    clock = Clock(1_800_000_000.0)
    engine = make_engine(db, RetryPolicy(max_attempts=1), clock=clock, dlq_retention_days=7)
    engine.register("work", "boom")(lambda payload, ctx: 1 / 0)
    for name in ("old", "young"):
        engine.enqueue("work", "boom", {}, job_id=name)
        queue = engine.queues["work"]
        task = queue.dequeue()
        queue.execute(task)  # runs in this thread, on the injected clock
        clock.now += 3 * DAY
    assert engine.records.get("old").state == "dead"  # type: ignore[union-attr]
    clock.now = 1_800_000_000.0 + 7 * DAY + 60  # "old" died 7 days and a minute ago
    assert engine.prune() == (1, 0)
    assert engine.records.get("old") is None
    assert engine.records.get("young") is not None
    clock.now += 3 * DAY
    assert engine.prune() == (1, 0)
    assert engine.records.list_dead() == []


def test_interrupted_active_jobs_run_again_after_restart(tmp_path: Path) -> None:
    """A process that died mid-job leaves the row active; the next start runs it again."""
    path = tmp_path / "jobs.db"
    first_db = Database(path)
    first = make_engine(first_db)
    first.register("work", "slow")(lambda payload, ctx: None)
    first.enqueue("work", "slow", {}, job_id="was-running")
    first.enqueue("work", "slow", {}, job_id="was-waiting")
    claimed = first.records.claim("work", time.time())  # a worker took it, then the process died
    assert [job.id for job in claimed] == ["was-running"]
    first_db.close()

    second_db = Database(path)
    second = make_engine(second_db)
    ran: list[str] = []
    second.register("work", "slow")(lambda payload, ctx: ran.append(ctx.job_id))
    try:
        assert second.start() == 1
        states = lambda: {second.records.get(i).state for i in ("was-running", "was-waiting")}  # type: ignore[union-attr]  # noqa: E731
        wait_for(lambda: states() == {"completed"})
        job = second.records.get("was-running")
        assert job is not None and job.state == "completed"
        assert job.attempts == 1  # the interrupted attempt does not count against max_attempts
        assert sorted(ran) == ["was-running", "was-waiting"]
    finally:
        second.stop(2)
        second_db.close()


def test_progress_and_listeners(db: Database) -> None:
    engine = make_engine(db)
    seen: list[tuple[str, int]] = []
    engine.listeners.append(lambda job: seen.append((job.state, job.progress)))

    @engine.register("work", "steps")
    def steps(payload: dict[str, Any], ctx: JobContext) -> None:
        for pct in (25, 50, 75, 100):
            ctx.progress(pct)
            time.sleep(0.25)

    engine.start()
    try:
        engine.enqueue("work", "steps", {}, job_id="j-steps")
        wait_for(lambda: ("completed", 100) in seen)
    finally:
        engine.stop(2)
    assert seen[0] == ("waiting", 0)
    assert seen[1] == ("active", 0)
    assert [p for s, p in seen if s == "active"][1:] == [25, 50, 75, 100]
    assert seen[-1] == ("completed", 100)


def test_unknown_kind_dies_with_a_reason(db: Database) -> None:
    engine = make_engine(db)
    engine.start()
    try:
        engine.enqueue("work", "from-the-future", {}, job_id="j-unknown")
        wait_for(lambda: engine.records.get("j-unknown").state == "dead")  # type: ignore[union-attr]
        assert engine.records.get("j-unknown").error == "no handler for job kind 'from-the-future'"  # type: ignore[union-attr]
    finally:
        engine.stop(2)


def test_idle_workers_wait_to_be_woken_instead_of_polling(db: Database) -> None:
    engine = make_engine(db)
    claims: list[float] = []
    claim = engine.records.settle_and_claim

    def counting_claim(queue: str, outcomes: Any, now: float, limit: int) -> Any:
        claims.append(now)
        return claim(queue, outcomes, now, limit)

    engine.records.settle_and_claim = counting_claim  # type: ignore[method-assign]
    started = threading.Event()
    engine.register("work", "mark")(lambda payload, ctx: started.set())
    engine.start()
    try:
        wait_for(lambda: len(claims) >= 1)  # the queue's dispatcher looks once, finds nothing
        time.sleep(1.5)
        assert len(claims) == 1, "an idle queue polled the database"
        engine.enqueue("work", "mark", {}, job_id="wake")
        assert started.wait(10), "enqueue did not wake a worker"
    finally:
        engine.stop(2)


def test_graceful_stop_leaves_unfinished_jobs_for_next_start(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    database = Database(path)
    engine = make_engine(database)
    release = threading.Event()
    engine.register("work", "long")(lambda payload, ctx: release.wait(10))
    engine.register("work", "short")(lambda payload, ctx: time.sleep(0.3))
    engine.start()
    engine.enqueue("work", "long", {}, job_id="long")
    engine.enqueue("work", "short", {}, job_id="short")
    wait_for(lambda: engine.active_count("work") == 2)
    left = engine.stop(grace=1.0)
    assert left == ["long"]
    assert engine.records.get("short").state == "completed"  # type: ignore[union-attr]
    assert engine.records.get("long").state == "active"  # type: ignore[union-attr]
    release.set()
    database.close()
    again = Database(path)
    try:
        assert len(make_engine(again).records.recover_interrupted(time.time())) == 1
        assert make_engine(again).records.get("long").state == "waiting"  # type: ignore[union-attr]
    finally:
        again.close()


def test_counts_stay_cheap_with_many_finished_jobs(db: Database) -> None:
    """The queue table reads indexes and counters, not the finished rows."""
    now = time.time()
    with db.write() as conn:
        conn.executemany(
            "INSERT INTO jobs (id, queue, kind, payload, state, max_attempts, run_at, created_at, updated_at,"
            " finished_at) VALUES (?, 'work', 'x', '{}', 'completed', 3, ?, ?, ?, ?)",
            ((f"done-{i}", now, now, now, now) for i in range(200_000)),
        )
    engine = make_engine(db)
    plan = " ".join(
        str(row[3])
        for row in db.read().execute(
            "EXPLAIN QUERY PLAN SELECT"
            " (SELECT count(*) FROM jobs WHERE queue = ?1 AND state IN ('waiting', 'retrying')),"
            " (SELECT count(*) FROM jobs WHERE queue = ?1 AND state = 'active'),"
            " (SELECT count(*) FROM jobs WHERE queue = ?1 AND state = 'dead')",
            ("work",),
        )
    )
    # every count reads a partial index; none scans the table of finished jobs
    for index in ("jobs_ready", "jobs_active", "jobs_dead"):
        assert f"INDEX {index}" in plan, plan
    assert "SCAN jobs" not in plan, plan
    counts = engine.records.counts("work", now)
    assert counts.waiting == 0 and counts.active == 0


def test_enqueue_many_isolates_a_failing_item_and_dedupes_within_the_batch(db: Database) -> None:
    engine = make_engine(db)
    engine.register("work", "x")(lambda payload, ctx: None)

    def broken(conn: Any) -> None:
        raise ValueError("the producer's side write failed")

    results = engine.enqueue_many([
        engine.new_job("work", "x", {"n": 1}, job_id="a"),
        engine.new_job("work", "x", {"n": 2}, job_id="b", also=broken),
        engine.new_job("work", "x", {"n": 3}, job_id="a"),
        engine.new_job("work", "x", {"n": 4}, job_id="c"),
    ])
    assert isinstance(results[1], ValueError)
    created = [(r[0].id, r[1]) for r in results if isinstance(r, tuple)]
    assert created == [("a", True), ("a", False), ("c", True)]
    assert engine.records.get("b") is None
    assert engine.records.get("a").payload == {"n": 1}  # type: ignore[union-attr]


def test_enqueue_async_burst_goes_in_few_transactions(db: Database) -> None:
    import asyncio

    engine = make_engine(db)
    engine.register("work", "x")(lambda payload, ctx: None)
    calls: list[int] = []
    many = engine.enqueue_many

    def counting(items: Any) -> Any:
        calls.append(len(items))
        return many(items)

    engine.enqueue_many = counting  # type: ignore[method-assign]

    async def burst() -> list[tuple[Any, bool]]:
        ids = [f"evt-{n % 40}" for n in range(50)]  # ten of them are redeliveries
        return await asyncio.gather(*(engine.enqueue_async("work", "x", {}, job_id=i) for i in ids))

    outcomes = asyncio.run(burst())
    assert sum(1 for _, created in outcomes if created) == 40
    assert sum(calls) == 50 and len(calls) < 50  # batched: fewer writes than calls
    assert engine.records.counts("work", time.time()).waiting == 40
