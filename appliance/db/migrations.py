"""Schema migrations, applied in order at start; `PRAGMA user_version` records the last one."""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: durable job records and per-minute queue counters.
    """
    CREATE TABLE jobs (
        id           TEXT PRIMARY KEY,
        queue        TEXT NOT NULL,
        kind         TEXT NOT NULL,
        payload      TEXT NOT NULL,
        state        TEXT NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        progress     INTEGER NOT NULL DEFAULT 0,
        error        TEXT,
        traceback    TEXT,
        result       TEXT,
        run_at       REAL NOT NULL,
        created_at   REAL NOT NULL,
        updated_at   REAL NOT NULL,
        finished_at  REAL
    );
    -- what workers claim: only unfinished rows are in this index, however many finished ones exist
    CREATE INDEX jobs_ready ON jobs(queue, run_at) WHERE state IN ('waiting', 'retrying');
    -- counts per state without scanning finished rows
    CREATE INDEX jobs_queue_state ON jobs(queue, state);
    CREATE INDEX jobs_dead ON jobs(finished_at) WHERE state = 'dead';
    CREATE INDEX jobs_finished ON jobs(finished_at) WHERE state = 'completed';
    CREATE TABLE queue_stats (
        queue     TEXT NOT NULL,
        minute    INTEGER NOT NULL,
        completed INTEGER NOT NULL DEFAULT 0,
        failed    INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (queue, minute)
    ) WITHOUT ROWID;
    """,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations inside the caller's transaction; return the schema version."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
        version = number
    return version
