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
    # 2: the webhook log (raw events kept for processing and replay), payments, alert bookkeeping.
    """
    CREATE TABLE webhooks (
        id               TEXT PRIMARY KEY,
        source           TEXT NOT NULL,
        type             TEXT NOT NULL,
        received_at      REAL NOT NULL,
        status           TEXT NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        duplicates       INTEGER NOT NULL DEFAULT 0,
        last_error       TEXT,
        job_id           TEXT NOT NULL,
        content_type     TEXT NOT NULL,
        signature_header TEXT NOT NULL,
        body             BLOB NOT NULL,
        updated_at       REAL NOT NULL
    );
    CREATE INDEX webhooks_received ON webhooks(received_at);
    CREATE INDEX webhooks_source_type ON webhooks(source, type, received_at);
    CREATE TABLE webhook_failures (
        source TEXT NOT NULL,
        type   TEXT NOT NULL,
        at     REAL NOT NULL
    );
    CREATE INDEX webhook_failures_type ON webhook_failures(source, type, at);
    CREATE TABLE alerts (
        id      INTEGER PRIMARY KEY,
        source  TEXT NOT NULL,
        type    TEXT NOT NULL,
        at      REAL NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX alerts_type ON alerts(source, type, at);
    CREATE TABLE payments (
        event_id    TEXT PRIMARY KEY,
        event_type  TEXT NOT NULL,
        object_id   TEXT,
        object_type TEXT,
        amount      INTEGER,
        currency    TEXT,
        status      TEXT,
        customer    TEXT,
        livemode    INTEGER,
        created     REAL,
        recorded_at REAL NOT NULL
    );
    """,
    # 3: per-state partial indexes instead of one (queue, state) index that every state change
    # rewrote; counts read only the rows of the state they count, completed rows none.
    """
    DROP INDEX jobs_queue_state;
    DROP INDEX jobs_dead;
    CREATE INDEX jobs_active ON jobs(queue) WHERE state = 'active';
    CREATE INDEX jobs_dead ON jobs(queue, finished_at) WHERE state = 'dead';
    """,
    # 4: uploaded assets and their variants.
    """
    CREATE TABLE assets (
        id           TEXT PRIMARY KEY,
        kind         TEXT NOT NULL,
        mime         TEXT NOT NULL,
        size         INTEGER NOT NULL,
        sha256       TEXT NOT NULL,
        original_key TEXT NOT NULL,
        filename     TEXT,
        metadata     TEXT NOT NULL DEFAULT '{}',
        callback_url TEXT,
        notify_email TEXT,
        job_id       TEXT NOT NULL,
        created_at   REAL NOT NULL,
        updated_at   REAL NOT NULL
    );
    CREATE INDEX assets_created ON assets(created_at);
    CREATE TABLE variants (
        asset_id   TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
        name       TEXT NOT NULL,
        state      TEXT NOT NULL,
        key        TEXT,
        mime       TEXT,
        width      INTEGER,
        height     INTEGER,
        size       INTEGER,
        detail     TEXT NOT NULL DEFAULT '{}',
        updated_at REAL NOT NULL,
        PRIMARY KEY (asset_id, name)
    ) WITHOUT ROWID;
    """,
    # 5: storage outages postpone jobs without spending attempts; uploads in flight, for the janitor.
    """
    ALTER TABLE jobs ADD COLUMN outage_waits INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE pending_objects (
        key        TEXT PRIMARY KEY,
        started_at REAL NOT NULL
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
