"""Load on loopback, bounded: 10,000 signed webhooks and 20 concurrent 50 MB uploads while a transcode runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.load import run

pytestmark = pytest.mark.slow


def test_nothing_is_lost_and_memory_stays_bounded_under_load(tmp_path: Path) -> None:
    result = run(tmp_path, webhooks=10_000, uploads=20, upload_mb=50)
    print(result)  # the numbers, for the log (timings are reported by `python -m bench.load`, not asserted)
    assert result["webhooks_acked"] == 10_000 and result["webhooks_refused"] == 0
    assert result["webhooks_lost"] == 0
    assert result["uploads_accepted"] == 20 and result["uploads_lost"] == 0
    assert result["transcode"] == "completed"
    # Uploads stream (about two 1 MiB batches each in flight); a server that held bodies would grow by 1 GB.
    assert result["rss_growth_mb"] < 300
