"""The queue table of SPEC.md: rows as data for /v1/queues, and as text for `ingestbox status`."""

from __future__ import annotations

import time
from typing import Any

from appliance.jobs.engine import JobEngine

HEADER = ("Queue", "Active", "Waiting", "Completed (24h)", "Failed (24h)", "DLQ")
WIDTHS = (20, 10, 11, 19, 16, 0)


def queue_rows(engine: JobEngine, now: float | None = None) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    rows = []
    for name, spec in engine.specs.items():
        counts = engine.records.counts(name, now)
        rows.append(
            {
                "name": name,
                "concurrency": spec.concurrency,
                "active": counts.active,
                "waiting": counts.waiting,
                "completed_24h": counts.completed_24h,
                "failed_24h": counts.failed_24h,
                "dead": counts.dead,
                "max_attempts": spec.policy.max_attempts,
                "retry": spec.policy.describe(),
            }
        )
    return rows


def render_table(rows: list[dict[str, Any]]) -> str:
    """The fixed-width table, numbers with thousands separators."""

    def line(cells: tuple[str, ...]) -> str:
        return "".join(cell.ljust(width) if width else cell for cell, width in zip(cells, WIDTHS, strict=True))

    out = [line(HEADER)]
    for row in rows:
        out.append(
            line(
                (
                    row["name"],
                    f"{row['active']}/{row['concurrency']}",
                    f"{row['waiting']:,}",
                    f"{row['completed_24h']:,}",
                    f"{row['failed_24h']:,}",
                    f"{row['dead']:,}",
                )
            )
        )
    return "\n".join(out)
