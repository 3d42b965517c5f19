"""Retry policy: how many attempts a queue allows and how long to wait before each retry."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """At most `max_attempts`; the wait before retry n is base x factor^(n-1)."""

    max_attempts: int = 3
    backoff_base_seconds: float = 1.0
    backoff_factor: float = 4.0

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based) before the next one."""
        return self.backoff_base_seconds * self.backoff_factor ** (attempt - 1)

    def describe(self) -> str:
        waits = [self.delay_after(n) for n in range(1, self.max_attempts)]
        shown = ", ".join(f"{w:g}s" for w in waits) or "none"
        return f"{self.max_attempts} attempts; waits {shown}; then the dead letter queue"


# While a dependency (the object store) is down a job waits without spending its attempts:
# 2 s, 4 s, 8 s, then every 15 s (so it resumes soon after the store is back), for about an
# hour; after that its failures count again.
OUTAGE_MAX_WAITS = 240
OUTAGE_MAX_DELAY = 15.0


def outage_delay(waits_so_far: int) -> float | None:
    """Seconds to wait before the next try, or None once the outage budget is spent."""
    if waits_so_far >= OUTAGE_MAX_WAITS:
        return None
    return min(OUTAGE_MAX_DELAY, 2.0 ** (waits_so_far + 1))
