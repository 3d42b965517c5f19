"""Asset rows (an upload's original and what is known of it) and their variants."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from appliance.db.database import Database
from appliance.db.jobs import iso


@dataclass(frozen=True, slots=True)
class Asset:
    id: str
    kind: str
    mime: str
    size: int
    sha256: str
    original_key: str
    filename: str | None
    job_id: str
    created_at: float
    updated_at: float
    callback_url: str | None = None
    notify_email: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Asset:
        values = {key: row[key] for key in row.keys()}  # noqa: SIM118 (sqlite3.Row)
        values["metadata"] = json.loads(values["metadata"])
        return cls(**values)


class AssetRecords:
    """The assets and variants tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def insert_in(conn: sqlite3.Connection, asset: Asset) -> None:
        """Inside the caller's transaction (the asset and its processing job commit together)."""
        conn.execute(
            "INSERT INTO assets (id, kind, mime, size, sha256, original_key, filename, metadata, callback_url,"
            " notify_email, job_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                asset.id, asset.kind, asset.mime, asset.size, asset.sha256, asset.original_key, asset.filename,
                json.dumps(asset.metadata), asset.callback_url, asset.notify_email, asset.job_id,
                asset.created_at, asset.updated_at,
            ),
        )

    def add_pending(self, key: str, now: float) -> None:
        """An upload starts writing `key`: until its asset row lands, a restart deletes the object."""
        self.db.call(
            lambda conn: conn.execute("INSERT OR REPLACE INTO pending_objects (key, started_at) VALUES (?, ?)",
                                      (key, now)),
            single_statement=True,
        )

    @staticmethod
    def drop_pending_in(conn: sqlite3.Connection, key: str) -> None:
        conn.execute("DELETE FROM pending_objects WHERE key = ?", (key,))

    def drop_pending(self, key: str) -> None:
        self.db.call(lambda conn: self.drop_pending_in(conn, key), single_statement=True)

    def pending_keys(self) -> list[str]:
        return [row[0] for row in self.db.read().execute("SELECT key FROM pending_objects ORDER BY started_at")]

    def get(self, asset_id: str) -> Asset | None:
        row = self.db.read().execute("SELECT * FROM assets WHERE id = ?", (asset_id,)).fetchone()
        return Asset.from_row(row) if row is not None else None

    def recent(self, limit: int = 20) -> list[Asset]:
        rows = self.db.read().execute(
            "SELECT * FROM assets ORDER BY created_at DESC LIMIT ?", (limit,)
        ).fetchall()
        return [Asset.from_row(row) for row in rows]

    def variants(self, asset_id: str) -> list[dict[str, Any]]:
        rows = self.db.read().execute(
            "SELECT name, state, key, mime, width, height, size, detail, updated_at FROM variants"
            " WHERE asset_id = ? ORDER BY name",
            (asset_id,),
        ).fetchall()
        return [
            {**dict(row), "detail": json.loads(row["detail"]), "updated_at": iso(row["updated_at"])} for row in rows
        ]

    def set_variant(
        self, asset_id: str, name: str, state: str, now: float, key: str | None = None, mime: str | None = None,
        width: int | None = None, height: int | None = None, size: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record a variant the moment it is done (idempotent: a rerun overwrites its own row)."""
        self.db.call(lambda conn: self.set_variant_in(conn, asset_id, name, state, now, key, mime, width, height, size,
                                                      detail), single_statement=True)

    @staticmethod
    def set_variant_in(
        conn: sqlite3.Connection, asset_id: str, name: str, state: str, now: float, key: str | None = None,
        mime: str | None = None, width: int | None = None, height: int | None = None, size: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO variants (asset_id, name, state, key, mime, width, height, size, detail,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (asset_id, name, state, key, mime, width, height, size, json.dumps(detail or {}), now),
        )

    def set_metadata(self, asset_id: str, metadata: dict[str, Any], now: float) -> None:
        self.db.call(
            lambda conn: conn.execute(
                "UPDATE assets SET metadata = ?, updated_at = ? WHERE id = ?", (json.dumps(metadata), now, asset_id)
            ),
            single_statement=True,
        )
