"""The webhook log, payments recorded from Stripe events, and alert bookkeeping."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from appliance.db.database import Database
from appliance.db.jobs import iso

HOUR = 3600.0
# A webhook's status is its latest job's state, read through a join (no second write per event);
# the stored columns hold the last snapshot, for events whose job record was pruned.
_STATUS = (
    "CASE j.state WHEN 'waiting' THEN 'queued' WHEN 'active' THEN 'processing' WHEN 'retrying' THEN 'failed'"
    " WHEN 'completed' THEN 'processed' WHEN 'dead' THEN 'dead' ELSE w.status END"
)
_SELECT = (
    f"SELECT w.id, w.source, w.type, w.received_at, {_STATUS} AS status,"
    " coalesce(j.attempts, w.attempts) AS attempts, w.duplicates,"
    " CASE WHEN j.id IS NULL THEN w.last_error ELSE j.error END AS last_error,"
    " w.job_id, w.content_type, w.signature_header, w.body,"
    " coalesce(j.updated_at, w.updated_at) AS updated_at"
    " FROM webhooks w LEFT JOIN jobs j ON j.id = w.job_id"
)


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One received webhook as logged; `body` is the raw bytes as they arrived."""

    id: str
    source: str
    type: str
    received_at: float
    status: str
    attempts: int
    duplicates: int
    last_error: str | None
    job_id: str
    content_type: str
    signature_header: str
    body: bytes
    updated_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> WebhookEvent:
        return cls(**{key: row[key] for key in row.keys()})  # noqa: SIM118 (sqlite3.Row)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "received_at": iso(self.received_at),
            "status": self.status,
            "attempts": self.attempts,
            "duplicates": self.duplicates,
            "error": self.last_error,
            "job_id": self.job_id,
            "size": len(self.body),
            "updated_at": iso(self.updated_at),
        }


class WebhookLog:
    """Rows of the webhooks, webhook_failures, alerts and payments tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def insert_in(conn: sqlite3.Connection, event: WebhookEvent) -> bool:
        """Inside the caller's transaction: log a new event; False (and a duplicate counted) if known."""
        cur = conn.execute(
            "INSERT INTO webhooks (id, source, type, received_at, status, job_id, content_type, signature_header,"
            " body, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
            (
                event.id, event.source, event.type, event.received_at, event.status, event.job_id,
                event.content_type, event.signature_header, event.body, event.updated_at,
            ),
        )
        if cur.rowcount == 1:
            return True
        conn.execute("UPDATE webhooks SET duplicates = duplicates + 1 WHERE id = ?", (event.id,))
        return False

    def get(self, event_id: str) -> WebhookEvent | None:
        row = self.db.read().execute(f"{_SELECT} WHERE w.id = ?", (event_id,)).fetchone()
        return WebhookEvent.from_row(row) if row is not None else None

    def find(
        self,
        source: str | None = None,
        type: str | None = None,
        status: str | None = None,
        before: float | None = None,
        limit: int = 100,
    ) -> list[WebhookEvent]:
        sql = f"{_SELECT} WHERE 1 = 1"
        args: list[Any] = []
        for column, value in (("w.source", source), ("w.type", type), (_STATUS, status)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        if before is not None:
            sql += " AND w.received_at < ?"
            args.append(before)
        sql += " ORDER BY w.received_at DESC LIMIT ?"
        args.append(limit)
        return [WebhookEvent.from_row(row) for row in self.db.read().execute(sql, args).fetchall()]

    def snapshot_finished(self) -> int:
        """Copy the final state of finished jobs into their webhooks, before job records are pruned."""
        count: int = self.db.call(
            lambda conn: conn.execute(
                f"UPDATE webhooks SET status = {_STATUS.replace('j.', 'f.').replace('w.', 'webhooks.')},"
                " attempts = f.attempts, last_error = f.error, updated_at = f.updated_at"
                " FROM (SELECT id, state, attempts, error, updated_at FROM jobs"
                " WHERE state IN ('completed', 'dead')) AS f WHERE f.id = webhooks.job_id"
            ).rowcount,
            single_statement=True,
        )
        return count

    def set_job(self, event_id: str, job_id: str, now: float) -> None:
        self.db.call(
            lambda conn: conn.execute(
                "UPDATE webhooks SET job_id = ?, status = 'queued', last_error = NULL, updated_at = ? WHERE id = ?",
                (job_id, now, event_id),
            ),
            single_statement=True,
        )

    def failure_and_count(self, source: str, type: str, now: float) -> int:
        """Record a failed attempt of this webhook type; return how many it had in the last hour."""

        def write(conn: sqlite3.Connection) -> int:
            conn.execute("INSERT INTO webhook_failures (source, type, at) VALUES (?, ?, ?)", (source, type, now))
            count: int = conn.execute(
                "SELECT count(*) FROM webhook_failures WHERE source = ? AND type = ? AND at > ?",
                (source, type, now - HOUR),
            ).fetchone()[0]
            return count

        return self.db.call(write)

    def claim_alert(self, source: str, type: str, message: str, now: float) -> bool:
        """Record an alert unless this type had one in the last hour; True if this one goes out."""

        def write(conn: sqlite3.Connection) -> bool:
            recent = conn.execute(
                "SELECT 1 FROM alerts WHERE source = ? AND type = ? AND at > ?", (source, type, now - HOUR)
            ).fetchone()
            if recent is not None:
                return False
            conn.execute(
                "INSERT INTO alerts (source, type, at, message) VALUES (?, ?, ?, ?)", (source, type, now, message)
            )
            return True

        return self.db.call(write)

    def alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.db.read().execute(
            "SELECT source, type, at, message FROM alerts ORDER BY at DESC LIMIT ?", (limit,)
        ).fetchall()
        return [{"source": r[0], "type": r[1], "at": iso(r[2]), "message": r[3]} for r in rows]

    def record_payment(self, event_id: str, event_type: str, obj: dict[str, Any], now: float) -> None:
        """Idempotent: a replayed event overwrites its own row."""
        amount = obj.get("amount_total", obj.get("amount", obj.get("amount_paid", obj.get("amount_due"))))
        customer = obj.get("customer")
        if isinstance(customer, dict):
            customer = customer.get("id")
        self.db.call(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO payments (event_id, event_type, object_id, object_type, amount, currency,"
                " status, customer, livemode, created, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event_id, event_type, obj.get("id"), obj.get("object"),
                    amount if isinstance(amount, int) else None, obj.get("currency"),
                    obj.get("status") or obj.get("payment_status"), customer,
                    int(bool(obj.get("livemode"))), obj.get("created"), now,
                ),
            ),
            single_statement=True,
        )

    def payments(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.db.read().execute("SELECT * FROM payments ORDER BY recorded_at DESC LIMIT ?", (limit,))
        return [dict(row) for row in rows.fetchall()]

    def prune(self, older_than: float) -> int:
        def write(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM webhook_failures WHERE at < ?", (older_than,))
            conn.execute("DELETE FROM alerts WHERE at < ?", (older_than,))
            count: int = conn.execute("DELETE FROM webhooks WHERE received_at < ?", (older_than,)).rowcount
            return count

        return self.db.call(write)
