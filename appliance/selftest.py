"""The `selftest` job kind on every queue: sleeps, reports progress, fails on demand; for operators and tests."""

from __future__ import annotations

import time
from typing import Any

from appliance.jobs.engine import JobContext, JobEngine


class SelftestFailure(RuntimeError):
    """The failure a selftest job was asked to produce."""


def run_selftest(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Sleep `seconds` in ten steps with progress; fail the first `fail_times` attempts,
    and every attempt before the UNIX time `fail_until` (a downstream that is down for a while)."""
    seconds = float(payload.get("seconds", 0))
    fail_times = int(payload.get("fail_times", 0))
    fail_until = float(payload.get("fail_until", 0))
    steps = 10 if seconds > 0 else 0
    for step in range(steps):
        time.sleep(seconds / steps)
        ctx.progress((step + 1) * 100 / steps)
    if ctx.attempt <= fail_times:
        raise SelftestFailure(f"selftest asked to fail attempt {ctx.attempt} of the first {fail_times}")
    if time.time() < fail_until:
        raise SelftestFailure(f"selftest asked to fail until {fail_until:.0f}")
    return {"attempt": ctx.attempt, "slept": seconds}


def register_selftest(engine: JobEngine) -> None:
    for queue in engine.specs:
        engine.register(queue, "selftest")(run_selftest)
