"""SQLite connection handling: WAL, one writer at a time with group commit, a reader connection per thread."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from appliance.db.migrations import migrate

T = TypeVar("T")
MAX_BATCH = 256


class DatabaseClosed(RuntimeError):
    """A write was submitted after close()."""


class _WriteOp:
    """One write waiting for its turn, and its outcome."""

    __slots__ = ("done", "error", "fn", "result", "single")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], single: bool) -> None:
        self.fn = fn
        self.single = single
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class Database:
    """One SQLite file in WAL mode, one writer at a time, with group commit.

    Writers line up; the one at the front is the leader: it applies every write queued
    behind it in one transaction, on its own thread, and wakes the others. Alone, a
    writer commits its own write with no thread hand-off; under load, forty concurrent
    writers cost one commit, not forty. Each caller returns only once its write is
    committed. Reads use a connection per thread and never wait for the writer.
    """

    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        self.path = path
        self.synchronous = synchronous
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer = self._connect()
        self._closed = False
        self._line: deque[_WriteOp] = deque()
        self._turn = threading.Condition(threading.Lock())
        with self.write() as conn:
            migrate(conn)
        self._stop_checkpoints = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="db-checkpoint", daemon=True)
        self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        """Copy the WAL back into the database once a second, beside the writers, never in their way.

        SQLite's automatic checkpoint runs inside whichever commit crosses the threshold, and
        that commit (an acknowledged webhook, say) then waits for the copy and its fsync.
        """
        conn = self._connect()
        try:
            while not self._stop_checkpoints.wait(1.0):
                with contextlib.suppress(sqlite3.Error):  # busy or locked: the next second tries again
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL survives a process crash (kill -9); a power cut may lose the
        # transactions committed since the last checkpoint. FULL syncs every commit.
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA mmap_size=268435456")
        conn.execute("PRAGMA cache_size=-65536")
        # Checkpoints run on their own thread (see _checkpoint_loop), not inside a commit.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def call(self, fn: Callable[[sqlite3.Connection], T], single_statement: bool = False) -> T:
        """Run `fn(conn)` in a write transaction; return once it is committed.

        `single_statement` promises that `fn` writes with one statement: alone in its batch,
        it then runs in SQLite's autocommit, without BEGIN and COMMIT round trips.
        """
        if self._closed:
            raise DatabaseClosed(f"the database {self.path} is closed")
        op = _WriteOp(fn, single_statement)
        with self._turn:
            self._line.append(op)
            while not op.done and self._line[0] is not op:
                self._turn.wait()
            # Unless another leader did its write, this thread leads: everything queued
            # behind it goes in one transaction.
            batch = [] if op.done else [self._line[i] for i in range(min(len(self._line), MAX_BATCH))]
        if batch:
            self._apply(batch)
            with self._turn:
                for _ in batch:
                    self._line.popleft()
                for done in batch:
                    done.done = True
                self._turn.notify_all()
        if op.error is not None:
            raise op.error
        result: T = op.result
        return result

    def _apply(self, batch: list[_WriteOp]) -> None:
        conn = self._writer
        with self._write_lock:
            if len(batch) == 1 and batch[0].single:
                # One statement is its own transaction. Each sqlite3 call gives the GIL up and
                # must win it back, which under load costs far more than the statement itself.
                try:
                    batch[0].result = batch[0].fn(conn)
                except Exception as exc:
                    batch[0].error = exc
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
                if len(batch) == 1:
                    op = batch[0]
                    try:
                        op.result = op.fn(conn)
                    except Exception as exc:
                        op.error = exc
                        conn.execute("ROLLBACK")
                        return
                else:
                    for op in batch:
                        # A savepoint per op: one failing write does not undo its neighbours.
                        conn.execute("SAVEPOINT op")
                        try:
                            op.result = op.fn(conn)
                        except Exception as exc:
                            conn.execute("ROLLBACK TO op")
                            op.error = exc
                        conn.execute("RELEASE op")
                conn.execute("COMMIT")
            except Exception as exc:  # the transaction itself failed (disk full, I/O error)
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                for op in batch:
                    op.error = op.error or exc

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the writer connection, for rare multi-statement work."""
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def read(self) -> sqlite3.Connection:
        """This thread's reader connection (WAL readers never block the writer)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def check(self) -> None:
        """Raise if the database cannot answer a query."""
        self.read().execute("SELECT 1").fetchone()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_checkpoints.set()
        self._checkpointer.join(5)
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._write_lock:
            self._writer.close()
