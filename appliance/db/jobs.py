"""Durable job records: insert with dedupe, claim, finish, retry, dead-letter, recover, count."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from appliance.db.database import Database

STATES = ("waiting", "active", "retrying", "completed", "dead")
MINUTE = 60


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored; `to_dict()` is both the API record and the WebSocket payload."""

    id: str
    queue: str
    kind: str
    payload: dict[str, Any]
    state: str
    attempts: int
    max_attempts: int
    progress: int
    error: str | None
    traceback: str | None
    result: Any
    run_at: float
    created_at: float
    updated_at: float
    finished_at: float | None
    outage_waits: int = 0  # tries postponed because the object store was down (not counted as attempts)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        return cls(
            id=row["id"],
            queue=row["queue"],
            kind=row["kind"],
            payload=json.loads(row["payload"]),
            state=row["state"],
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            progress=row["progress"],
            error=row["error"],
            traceback=row["traceback"],
            result=json.loads(row["result"]) if row["result"] is not None else None,
            run_at=row["run_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
            outage_waits=row["outage_waits"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queue": self.queue,
            "kind": self.kind,
            "state": self.state,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "progress": self.progress,
            "error": self.error,
            "result": self.result,
            "run_at": iso(self.run_at) if self.state in ("waiting", "retrying") else None,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "finished_at": iso(self.finished_at),
        }


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to insert; `also(conn)` writes beside it in the same transaction."""

    job_id: str
    queue: str
    kind: str
    payload: dict[str, Any]
    max_attempts: int
    run_at: float | None = None
    also: Callable[[sqlite3.Connection], Any] | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended: `completed`, `retrying` (at `retry_at`), `postponed` or `dead`.

    `postponed` is an attempt the object store's outage cut short: the job waits until
    `retry_at` and the attempt is not counted.
    """

    job_id: str
    state: str
    at: float
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    retry_at: float | None = None


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """The numbers of one row of the queue table."""

    active: int
    waiting: int
    completed_24h: int
    failed_24h: int
    dead: int


class JobRecords:
    """The jobs table. Every state change is one short write transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(
        self,
        job_id: str,
        queue: str,
        kind: str,
        payload: dict[str, Any],
        max_attempts: int,
        now: float,
        run_at: float | None = None,
        also: Callable[[sqlite3.Connection], Any] | None = None,
    ) -> tuple[Job, bool]:
        """Insert a waiting job; an existing id returns the existing job and False.

        `also(conn)` runs in the same transaction first: what a producer stores beside the job
        (a webhook's raw body, say) is committed together with it or not at all.
        """
        (outcome,) = self.insert_many([NewJob(job_id, queue, kind, payload, max_attempts, run_at, also)], now)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def insert_many(self, items: list[NewJob], now: float) -> list[tuple[Job, bool] | Exception]:
        """Insert several jobs in one transaction; each succeeds or fails (its exception) alone."""
        bodies = [json.dumps(item.payload, separators=(",", ":")) for item in items]
        single = len(items) == 1 and items[0].also is None

        def insert_one(conn: sqlite3.Connection, item: NewJob, body: str) -> int:
            if item.also is not None:
                item.also(conn)
            due = item.run_at if item.run_at is not None else now
            return conn.execute(
                "INSERT INTO jobs (id, queue, kind, payload, state, max_attempts, run_at, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'waiting', ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                (item.job_id, item.queue, item.kind, body, item.max_attempts, due, now, now),
            ).rowcount

        def write(conn: sqlite3.Connection) -> list[int | Exception]:
            if single:
                return [insert_one(conn, items[0], bodies[0])]
            counts: list[int | Exception] = []
            for item, body in zip(items, bodies, strict=True):
                conn.execute("SAVEPOINT item")  # one bad item does not undo its neighbours
                try:
                    counts.append(insert_one(conn, item, body))
                except Exception as exc:
                    conn.execute("ROLLBACK TO item")
                    counts.append(exc)
                conn.execute("RELEASE item")
            return counts

        results: list[tuple[Job, bool] | Exception] = []
        for item, count in zip(items, self.db.call(write, single_statement=single), strict=True):
            if isinstance(count, Exception):
                results.append(count)
            elif count == 0:
                existing = self.get(item.job_id)
                if existing is None:  # deleted between the insert and the read (a purge): again
                    results.append(self.insert_many([item], now)[0])
                else:
                    results.append((existing, False))
            else:
                # Built from what was written: reading the row back (RETURNING) costs a third of the insert.
                due = item.run_at if item.run_at is not None else now
                job = Job(item.job_id, item.queue, item.kind, item.payload, "waiting", 0, item.max_attempts, 0,
                          None, None, None, due, now, now, None)
                results.append((job, True))
        return results

    def _one(self, sql: str, args: tuple[Any, ...]) -> Job | None:
        row = self.db.call(lambda conn: conn.execute(sql, args).fetchone())
        return Job.from_row(row) if row is not None else None

    def claim(self, queue: str, now: float, limit: int = 1) -> list[Job]:
        """Mark up to `limit` of the oldest due jobs of a queue active and return them, oldest first."""
        return self.settle_and_claim(queue, [], now, limit)[1]

    def settle_and_claim(
        self, queue: str, outcomes: list[Outcome], now: float, limit: int
    ) -> tuple[list[Job], list[Job]]:
        """Record finished attempts and claim up to `limit` due jobs, in one transaction.

        Returns the settled jobs (an outcome for a job no longer active is dropped) and the
        claimed ones, oldest first.
        """

        def write(conn: sqlite3.Connection) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
            settled = [row for row in (self._settle(conn, outcome) for outcome in outcomes) if row is not None]
            return settled, self._claim(conn, queue, now, limit) if limit > 0 else []

        settled, claimed = self.db.call(write)
        return (
            [Job.from_row(row) for row in settled],
            sorted((Job.from_row(row) for row in claimed), key=lambda job: job.run_at),
        )

    @staticmethod
    def _claim(conn: sqlite3.Connection, queue: str, now: float, limit: int) -> list[sqlite3.Row]:
        # Two statements: SQLite plans `UPDATE ... WHERE id IN (SELECT ... ORDER BY ... LIMIT)`
        # three times slower than the pair.
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM jobs WHERE queue = ? AND state IN ('waiting', 'retrying') AND run_at <= ?"
                " ORDER BY run_at LIMIT ?",
                (queue, now, limit),
            )
        ]
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows: list[sqlite3.Row] = conn.execute(
            "UPDATE jobs SET state = 'active', attempts = attempts + 1, progress = 0, updated_at = ?"
            f" WHERE id IN ({marks}) RETURNING *",
            (now, *ids),
        ).fetchall()
        return rows

    def _settle(self, conn: sqlite3.Connection, outcome: Outcome) -> sqlite3.Row | None:
        if outcome.state == "completed":
            result = outcome.result
            body = json.dumps(result, separators=(",", ":"), default=str) if result is not None else None
            row: sqlite3.Row | None = conn.execute(
                "UPDATE jobs SET state = 'completed', progress = 100, result = ?, error = NULL,"
                " updated_at = ?, finished_at = ? WHERE id = ? AND state = 'active' RETURNING *",
                (body, outcome.at, outcome.at, outcome.job_id),
            ).fetchone()
            if row is not None:
                self._count(conn, row["queue"], outcome.at, completed=1)
            return row
        if outcome.state == "postponed":
            postponed: sqlite3.Row | None = conn.execute(
                "UPDATE jobs SET state = 'retrying', attempts = max(attempts - 1, 0), outage_waits = outage_waits + 1,"
                " error = ?, traceback = ?, run_at = ?, updated_at = ? WHERE id = ? AND state = 'active' RETURNING *",
                (outcome.error, outcome.traceback, outcome.retry_at, outcome.at, outcome.job_id),
            ).fetchone()
            return postponed
        dead = outcome.state == "dead"
        row = conn.execute(
            "UPDATE jobs SET state = ?, error = ?, traceback = ?, run_at = ?, updated_at = ?,"
            " finished_at = ? WHERE id = ? AND state = 'active' RETURNING *",
            (
                outcome.state,
                outcome.error,
                outcome.traceback,
                outcome.at if dead else outcome.retry_at,
                outcome.at,
                outcome.at if dead else None,
                outcome.job_id,
            ),
        ).fetchone()
        if row is not None:
            self._count(conn, row["queue"], outcome.at, failed=1)
        return row

    def next_run_at(self, queue: str) -> float | None:
        """When the next waiting or retrying job of a queue becomes due."""
        row = self.db.read().execute(
            "SELECT min(run_at) FROM jobs WHERE queue = ? AND state IN ('waiting', 'retrying')", (queue,)
        ).fetchone()
        return row[0] if row is not None else None

    def set_progress(self, job_id: str, progress: int, now: float) -> Job | None:
        return self._one(
            "UPDATE jobs SET progress = ?, updated_at = ? WHERE id = ? AND state = 'active' RETURNING *",
            (progress, now, job_id),
        )

    def recover_interrupted(self, now: float) -> list[Job]:
        """Jobs left active by a process that died: waiting again, the interrupted attempt uncounted."""
        rows = self.db.call(
            lambda conn: conn.execute(
                "UPDATE jobs SET state = 'waiting', attempts = max(attempts - 1, 0), progress = 0,"
                " run_at = ?, updated_at = ? WHERE state = 'active' RETURNING *",
                (now, now),
            ).fetchall()
        )
        return [Job.from_row(row) for row in rows]

    def get(self, job_id: str) -> Job | None:
        row = self.db.read().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row is not None else None

    def list_dead(self, limit: int = 100, before: float | None = None, queue: str | None = None) -> list[Job]:
        sql = "SELECT * FROM jobs WHERE state = 'dead'"
        args: list[Any] = []
        if before is not None:
            sql += " AND finished_at < ?"
            args.append(before)
        if queue is not None:
            sql += " AND queue = ?"
            args.append(queue)
        sql += " ORDER BY finished_at DESC LIMIT ?"
        args.append(limit)
        return [Job.from_row(row) for row in self.db.read().execute(sql, args).fetchall()]

    def revive(self, job_id: str, now: float) -> Job | None:
        """A dead job back to waiting with a fresh set of attempts."""
        return self._one(
            "UPDATE jobs SET state = 'waiting', attempts = 0, outage_waits = 0, progress = 0, run_at = ?,"
            " updated_at = ?, finished_at = NULL WHERE id = ? AND state = 'dead' RETURNING *",
            (now, now, job_id),
        )

    def _delete(self, sql: str, args: tuple[Any, ...]) -> int:
        count: int = self.db.call(lambda conn: conn.execute(sql, args).rowcount)
        return count

    def delete_dead(self, job_id: str) -> bool:
        return self._delete("DELETE FROM jobs WHERE id = ? AND state = 'dead'", (job_id,)) > 0

    def purge_dead(self, older_than: float) -> int:
        """Delete dead jobs that died before `older_than`; return how many."""
        return self._delete("DELETE FROM jobs WHERE state = 'dead' AND finished_at < ?", (older_than,))

    def purge_completed(self, older_than: float) -> int:
        """Delete completed jobs and per-minute counters older than `older_than`."""
        self._delete("DELETE FROM queue_stats WHERE minute < ?", (int(older_than // MINUTE) - 1,))
        return self._delete("DELETE FROM jobs WHERE state = 'completed' AND finished_at < ?", (older_than,))

    def counts(self, queue: str, now: float) -> QueueCounts:
        """One queue's row: index range scans over unfinished rows plus per-minute counters."""
        conn = self.db.read()
        # One query per partial index: each counts only the rows of its own states.
        waiting, active, dead = conn.execute(
            "SELECT (SELECT count(*) FROM jobs WHERE queue = ?1 AND state IN ('waiting', 'retrying')),"
            " (SELECT count(*) FROM jobs WHERE queue = ?1 AND state = 'active'),"
            " (SELECT count(*) FROM jobs WHERE queue = ?1 AND state = 'dead')",
            (queue,),
        ).fetchone()
        since = int(now // MINUTE) - 24 * 60
        completed, failed = conn.execute(
            "SELECT coalesce(sum(completed), 0), coalesce(sum(failed), 0) FROM queue_stats"
            " WHERE queue = ? AND minute > ?",
            (queue, since),
        ).fetchone()
        return QueueCounts(active=active, waiting=waiting, completed_24h=completed, failed_24h=failed, dead=dead)

    def history(self, queue: str, now: float, hours: int = 24, bucket_minutes: int = 60) -> list[dict[str, Any]]:
        """Completed and failed attempts per bucket over the last `hours`, oldest first, empty buckets included."""
        last = int(now // MINUTE) // bucket_minutes
        first = last - hours * 60 // bucket_minutes + 1
        rows = self.db.read().execute(
            "SELECT minute / ?1 AS bucket, sum(completed), sum(failed) FROM queue_stats"
            " WHERE queue = ?2 AND minute >= ?3 GROUP BY bucket",
            (bucket_minutes, queue, first * bucket_minutes),
        ).fetchall()
        found = {row[0]: (row[1], row[2]) for row in rows}
        return [
            {"start": iso(bucket * bucket_minutes * MINUTE), "completed": found.get(bucket, (0, 0))[0],
             "failed": found.get(bucket, (0, 0))[1]}
            for bucket in range(first, last + 1)
        ]

    @staticmethod
    def _count(conn: sqlite3.Connection, queue: str, now: float, completed: int = 0, failed: int = 0) -> None:
        conn.execute(
            "INSERT INTO queue_stats (queue, minute, completed, failed) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(queue, minute) DO UPDATE SET completed = completed + excluded.completed,"
            " failed = failed + excluded.failed",
            (queue, int(now // MINUTE), completed, failed),
        )
