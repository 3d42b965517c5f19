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
